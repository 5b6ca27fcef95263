#include "gen/safety.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <csignal>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "gen/sysfs.h"

namespace fraglab::gen {
namespace {
uint64_t MonotonicNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}
}  // namespace
namespace {

volatile sig_atomic_t g_stop_signal = 0;

extern "C" void OnStopSignal(int sig) { g_stop_signal = sig; }

constexpr uint64_t kMiB = 1ULL << 20;

}  // namespace

std::string HumanBytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return absl::StrCat(bytes, " B");
  if (v == static_cast<double>(static_cast<uint64_t>(v))) {
    return absl::StrCat(static_cast<uint64_t>(v), " ", kUnits[u]);
  }
  return absl::StrFormat("%.1f %s", v, kUnits[u]);
}

void StopFlag::Request(absl::string_view reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!requested_.load()) reason_ = std::string(reason);
  requested_.store(true);
}

bool StopFlag::requested() const { return requested_.load() || g_stop_signal != 0; }

std::string StopFlag::reason() const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (requested_.load()) return reason_;
  }
  int sig = g_stop_signal;
  if (sig == SIGINT) return "signal SIGINT";
  if (sig == SIGTERM) return "signal SIGTERM";
  if (sig != 0) return absl::StrCat("signal ", sig);
  return "";
}

absl::Status StopFlag::StoppedStatus(absl::string_view what) const {
  return absl::CancelledError(absl::StrCat(what, ": stopped (", reason(), ")"));
}

void InstallStopSignalHandlers() {
  struct sigaction sa = {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a sleep or blocking write returns early
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int ReceivedStopSignal() { return g_stop_signal; }
void ClearReceivedStopSignal() { g_stop_signal = 0; }

absl::Status ParsePsi(const std::string& text, double* some_avg10, double* full_avg10) {
  bool have_some = false;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (parts.size() < 2) continue;
    for (absl::string_view p : parts) {
      if (!absl::ConsumePrefix(&p, "avg10=")) continue;
      double v = 0;
      if (!absl::SimpleAtod(p, &v)) {
        return absl::InvalidArgumentError(absl::StrCat("bad avg10 value in PSI line '", line, "'"));
      }
      if (parts[0] == "some") {
        *some_avg10 = v;
        have_some = true;
      } else if (parts[0] == "full") {
        *full_avg10 = v;
      }
    }
  }
  if (!have_some) return absl::InvalidArgumentError("PSI text has no 'some avg10=' line");
  return absl::OkStatus();
}

absl::StatusOr<MemorySample> ReadMemorySample(const std::string& meminfo_path,
                                              const std::string& psi_path) {
  ASSIGN_OR_RETURN(auto kv, ReadKeyValueFile(meminfo_path));
  MemorySample s;
  s.mem_total = ValueOr0(kv, "MemTotal");
  s.mem_available = ValueOr0(kv, "MemAvailable");
  s.mem_free = ValueOr0(kv, "MemFree");
  if (s.mem_total == 0 || kv.find("MemAvailable") == kv.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat(meminfo_path, ": no MemTotal/MemAvailable lines"));
  }
  auto psi = ReadSetting(psi_path);
  if (psi.ok() && ParsePsi(*psi, &s.psi_some_avg10, &s.psi_full_avg10).ok()) {
    s.psi_available = true;
  }
  return s;
}

uint64_t DefaultAvailableFloor(uint64_t mem_total) {
  return std::max<uint64_t>(512 * kMiB, mem_total / 20);
}

absl::StatusOr<uint64_t> ComputeBudget(const MemorySample& sample, const BudgetOptions& options,
                                       uint64_t available_floor) {
  const uint64_t usable =
      sample.mem_available > available_floor ? sample.mem_available - available_floor : 0;
  if (options.bytes != 0) {
    if (options.bytes > usable) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "memory budget ", HumanBytes(options.bytes), " exceeds what this machine can give: ",
          "MemAvailable ", HumanBytes(sample.mem_available), " minus the watchdog floor ",
          HumanBytes(available_floor), " = ", HumanBytes(usable)));
    }
    return options.bytes;
  }
  if (!(options.fraction > 0 && options.fraction <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("budget fraction must be in (0, 1], got ", options.fraction));
  }
  uint64_t b = static_cast<uint64_t>(static_cast<double>(sample.mem_available) * options.fraction);
  return std::min(b, usable);
}

absl::Status CheckDeclared(uint64_t declared, uint64_t budget, absl::string_view what) {
  if (declared <= budget) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat(what, " declares ", HumanBytes(declared), " but the memory budget is ",
                   HumanBytes(budget), ": over by ", HumanBytes(declared - budget),
                   " (raise it with --budget, or scale the scenario down)"));
}

absl::Status MemoryLedger::Reserve(uint64_t bytes, absl::string_view what) {
  uint64_t cur = held_.load();
  for (;;) {
    if (cur + bytes > budget_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          what, ": needs ", HumanBytes(bytes), " more while the run holds ", HumanBytes(cur),
          " of its ", HumanBytes(budget_), " budget (over by ", HumanBytes(cur + bytes - budget_),
          ")"));
    }
    if (held_.compare_exchange_weak(cur, cur + bytes)) break;
  }
  uint64_t now = cur + bytes;
  uint64_t p = peak_.load();
  while (now > p && !peak_.compare_exchange_weak(p, now)) {
  }
  return absl::OkStatus();
}

void MemoryLedger::Release(uint64_t bytes) {
  uint64_t cur = held_.load();
  for (;;) {
    uint64_t next = bytes > cur ? 0 : cur - bytes;
    if (held_.compare_exchange_weak(cur, next)) break;
  }
}

std::optional<std::string> WatchdogVerdict(const MemorySample& sample, uint64_t available_floor,
                                           double max_psi_full_avg10, uint64_t releasable) {
  if (releasable > 0) {
    if (sample.mem_available < kReleasableRawFloor) {
      return absl::StrCat("watchdog: MemAvailable ", HumanBytes(sample.mem_available), " fell under ",
                          HumanBytes(kReleasableRawFloor), " while the run holds ",
                          HumanBytes(releasable), " it can give back at once (the arena)");
    }
    if (sample.mem_available + releasable < available_floor) {
      return absl::StrCat("watchdog: MemAvailable ", HumanBytes(sample.mem_available), " + ",
                          HumanBytes(releasable), " the arena can give back fell under the floor ",
                          HumanBytes(available_floor));
    }
    MemorySample rest = sample;
    rest.mem_available = available_floor;  // the floor is met; check pressure only
    return WatchdogVerdict(rest, available_floor, max_psi_full_avg10);
  }
  return WatchdogVerdict(sample, available_floor, max_psi_full_avg10);
}

std::optional<std::string> WatchdogVerdict(const MemorySample& sample, uint64_t available_floor,
                                           double max_psi_full_avg10) {
  if (sample.mem_available < available_floor) {
    return absl::StrCat("watchdog: MemAvailable ", HumanBytes(sample.mem_available),
                        " fell under the floor ", HumanBytes(available_floor));
  }
  if (max_psi_full_avg10 > 0 && sample.psi_available &&
      sample.psi_full_avg10 > max_psi_full_avg10) {
    return absl::StrFormat("watchdog: memory pressure full avg10=%.2f%% exceeds %.2f%%",
                           sample.psi_full_avg10, max_psi_full_avg10);
  }
  return std::nullopt;
}

absl::Status Watchdog::Start() {
  if (thread_.joinable()) return absl::InternalError("watchdog started twice");
  ASSIGN_OR_RETURN(MemorySample first, ReadMemorySample(options_.meminfo_path, options_.psi_path));
  floor_ = options_.available_floor != 0 ? options_.available_floor
                                         : DefaultAvailableFloor(first.mem_total);
  psi_available_ = first.psi_available;
  min_available_.store(first.mem_available);
  start_ns_ = MonotonicNs();
  const uint64_t releasable = options_.releasable ? options_.releasable() : 0;
  if (auto why = WatchdogVerdict(first, floor_, options_.max_psi_full_avg10, releasable)) Raise(*why);
  quit_.store(false);
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void Watchdog::Stop() {
  quit_.store(true);
  if (thread_.joinable()) thread_.join();
}

double Watchdog::max_psi_full_seen() const {
  return static_cast<double>(max_psi_full_milli_.load()) / 1000.0;
}

void Watchdog::Raise(const std::string& why) {
  stop_->Request(why);
  // Give back what can be given back at once, before the run unwinds.
  if (options_.on_stop && !on_stop_called_.exchange(true)) options_.on_stop();
}

void Watchdog::Loop() {
  while (!quit_.load()) {
    auto sample = ReadMemorySample(options_.meminfo_path, options_.psi_path);
    if (sample.ok()) {
      if (sample->mem_available < min_available_.load()) {
        min_available_.store(sample->mem_available);
      }
      uint64_t milli = static_cast<uint64_t>(sample->psi_full_avg10 * 1000);
      if (milli > max_psi_full_milli_.load()) max_psi_full_milli_.store(milli);
      const uint64_t releasable = options_.releasable ? options_.releasable() : 0;
      if (auto why = WatchdogVerdict(*sample, floor_, options_.max_psi_full_avg10, releasable)) {
        Raise(*why);
      }
    } else {
      // Losing sight of memory is itself a reason to stop: we cannot guard.
      Raise(absl::StrCat("watchdog: cannot read memory state: ",
                         std::string(sample.status().message())));
    }
    if (options_.max_run_ns > 0 && MonotonicNs() - start_ns_ > options_.max_run_ns) {
      Raise(absl::StrCat("max_duration ", absl::FormatDuration(absl::Nanoseconds(options_.max_run_ns)),
                         " reached"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(options_.interval_ms));
  }
}

}  // namespace fraglab::gen
