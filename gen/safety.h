// Safety guard of the generator: a memory budget checked before anything is
// touched and accounted while the run holds memory, a watchdog thread that
// stops the run cleanly (well before the OOM killer could act) when
// MemAvailable falls under a floor or memory pressure (PSI) climbs, and a
// stop flag that SIGINT/SIGTERM, the watchdog and the budget all raise.
// This machine has no swap: running out of memory means the OOM killer.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fraglab::gen {

// "512 MiB", "1.5 GiB", "4 KiB", "12 B".
std::string HumanBytes(uint64_t bytes);

// Raised once, read often. Also reports a stop after SIGINT/SIGTERM once
// InstallStopSignalHandlers() ran. Thread-safe.
class StopFlag {
 public:
  // Records the first reason; later calls keep it.
  void Request(absl::string_view reason);
  bool requested() const;
  // The reason given to Request, or "signal SIGINT"/"signal SIGTERM".
  std::string reason() const;
  // Cancelled status "<what>: stopped (<reason>)" for operations to return.
  absl::Status StoppedStatus(absl::string_view what) const;

 private:
  std::atomic<bool> requested_{false};
  mutable std::mutex mu_;
  std::string reason_;
};

// Installs async-signal-safe SIGINT/SIGTERM handlers that only set a flag
// every StopFlag sees. The run then unwinds and replays its journal.
void InstallStopSignalHandlers();
// The signal number received (0 when none).
int ReceivedStopSignal();
// Forgets a received signal (tests).
void ClearReceivedStopSignal();

// One reading of the machine's memory state.
struct MemorySample {
  uint64_t mem_total = 0;      // bytes
  uint64_t mem_available = 0;  // bytes
  uint64_t mem_free = 0;       // bytes
  bool psi_available = false;  // /proc/pressure/memory readable
  double psi_some_avg10 = 0;   // percent of time some task stalled on memory
  double psi_full_avg10 = 0;   // percent of time all non-idle tasks stalled
};

// Parses /proc/pressure/memory text into the avg10 values (percent).
[[nodiscard]] absl::Status ParsePsi(const std::string& text, double* some_avg10,
                                    double* full_avg10);

// Reads meminfo (required) and PSI (optional: kernels without CONFIG_PSI).
[[nodiscard]] absl::StatusOr<MemorySample> ReadMemorySample(
    const std::string& meminfo_path = "/proc/meminfo",
    const std::string& psi_path = "/proc/pressure/memory");

// max(512 MiB, 5 % of MemTotal): below this the watchdog stops the run.
uint64_t DefaultAvailableFloor(uint64_t mem_total);

struct BudgetOptions {
  uint64_t bytes = 0;      // explicit budget; 0 = fraction of MemAvailable
  double fraction = 0.5;   // of MemAvailable at start, when bytes == 0
};

// The budget for this run. An explicit budget larger than MemAvailable minus
// the watchdog floor is refused (the watchdog would stop the run anyway).
[[nodiscard]] absl::StatusOr<uint64_t> ComputeBudget(const MemorySample& sample,
                                                     const BudgetOptions& options,
                                                     uint64_t available_floor);

// ResourceExhausted when `declared` > `budget`, saying by how much.
[[nodiscard]] absl::Status CheckDeclared(uint64_t declared, uint64_t budget,
                                         absl::string_view what);

// Memory the run holds right now, against the budget. Operations reserve
// before they allocate and release after they give memory back, so the run
// can never hold more than the budget even when releases are partial.
class MemoryLedger {
 public:
  explicit MemoryLedger(uint64_t budget) : budget_(budget) {}
  // ResourceExhausted naming `what` when `bytes` more would exceed the budget.
  [[nodiscard]] absl::Status Reserve(uint64_t bytes, absl::string_view what);
  void Release(uint64_t bytes);
  uint64_t budget() const { return budget_; }
  uint64_t held() const { return held_.load(); }
  uint64_t peak() const { return peak_.load(); }

 private:
  const uint64_t budget_;
  std::atomic<uint64_t> held_{0};
  std::atomic<uint64_t> peak_{0};
};

struct WatchdogOptions {
  uint64_t available_floor = 0;     // bytes; 0 = DefaultAvailableFloor(MemTotal)
  double max_psi_full_avg10 = 25.0; // percent; <= 0 disables the PSI check
  int interval_ms = 50;
  std::string meminfo_path = "/proc/meminfo";
  std::string psi_path = "/proc/pressure/memory";
  // Memory the run can give back at once (the arena's hugetlb pool and
  // ballast), counted as available against the floor; empty = none. Called
  // on the watchdog thread: must be thread-safe.
  std::function<uint64_t()> releasable;
  // Called once on the watchdog thread right after it raises the stop, before
  // the run unwinds: the arena gives its memory back here, at once. Must be
  // thread-safe.
  std::function<void()> on_stop;
  // The run is stopped after this long (the scenario's max_duration); 0 = no limit.
  uint64_t max_run_ns = 0;
};

// With memory the run can give back at once, the floor applies to
// MemAvailable plus that memory, but raw MemAvailable must still stay above
// this (so the rest of the machine never waits for our release).
inline constexpr uint64_t kReleasableRawFloor = 512ULL << 20;

// Why the run must stop now, or nullopt. Pure: tests feed samples.
std::optional<std::string> WatchdogVerdict(const MemorySample& sample, uint64_t available_floor,
                                           double max_psi_full_avg10);
// The same with `releasable` bytes the run can give back at once: stop when
// MemAvailable + releasable < floor, or when releasable > 0 and MemAvailable
// alone < kReleasableRawFloor.
std::optional<std::string> WatchdogVerdict(const MemorySample& sample, uint64_t available_floor,
                                           double max_psi_full_avg10, uint64_t releasable);

// Polls memory state on its own thread and raises `stop` with the reason.
class Watchdog {
 public:
  Watchdog(WatchdogOptions options, StopFlag* stop) : options_(std::move(options)), stop_(stop) {}
  ~Watchdog() { Stop(); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Takes a first sample (an error when meminfo is unreadable), resolves the
  // floor, and starts polling. A first sample already under the floor raises
  // the stop flag at once.
  [[nodiscard]] absl::Status Start();
  // Joins the thread; idempotent.
  void Stop();

  uint64_t available_floor() const { return floor_; }
  uint64_t min_available_seen() const { return min_available_.load(); }
  double max_psi_full_seen() const;
  bool psi_available() const { return psi_available_; }

 private:
  void Loop();
  void Raise(const std::string& why);

  WatchdogOptions options_;
  StopFlag* stop_;
  uint64_t floor_ = 0;
  bool psi_available_ = false;
  std::atomic<bool> quit_{false};
  std::atomic<uint64_t> min_available_{UINT64_MAX};
  std::atomic<uint64_t> max_psi_full_milli_{0};
  std::atomic<bool> on_stop_called_{false};
  uint64_t start_ns_ = 0;
  std::thread thread_;
};

}  // namespace fraglab::gen
