#include "gen/system_ops.h"

#include <time.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "gen/sysfs.h"

namespace fraglab::gen {
namespace {

uint64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

absl::Status NeedsRoot(absl::Status s, absl::string_view what) {
  if (s.code() == absl::StatusCode::kPermissionDenied) {
    return absl::FailedPreconditionError(absl::StrCat(what, " needs root: ", std::string(s.message())));
  }
  return s;
}

uint64_t Delta(const std::map<std::string, uint64_t>& a, const std::map<std::string, uint64_t>& b,
               const std::string& key) {
  const uint64_t x = ValueOr0(a, key), y = ValueOr0(b, key);
  return y > x ? y - x : 0;
}

}  // namespace

absl::StatusOr<CompactResult> Compact(int node) {
  const std::string path = node < 0 ? "/proc/sys/vm/compact_memory"
                                    : absl::StrCat("/sys/devices/system/node/node", node, "/compact");
  ASSIGN_OR_RETURN(auto vm0, ReadKeyValueFile("/proc/vmstat"));
  const uint64_t t0 = NowNs();
  RETURN_IF_ERROR(NeedsRoot(WriteSetting(path, "1"), "compact"));
  CompactResult r;
  r.duration_ns = NowNs() - t0;
  ASSIGN_OR_RETURN(auto vm1, ReadKeyValueFile("/proc/vmstat"));
  r.migrate_scanned = Delta(vm0, vm1, "compact_migrate_scanned");
  r.free_scanned = Delta(vm0, vm1, "compact_free_scanned");
  r.isolated = Delta(vm0, vm1, "compact_isolated");
  r.pgmigrate_success = Delta(vm0, vm1, "pgmigrate_success");
  r.pgmigrate_fail = Delta(vm0, vm1, "pgmigrate_fail");
  return r;
}

absl::StatusOr<uint64_t> DropCaches(int mode) {
  if (mode < 1 || mode > 3) {
    return absl::InvalidArgumentError(absl::StrCat("drop_caches mode ", mode, " is not 1, 2 or 3"));
  }
  const uint64_t t0 = NowNs();
  ::sync();
  RETURN_IF_ERROR(NeedsRoot(WriteSetting("/proc/sys/vm/drop_caches", std::to_string(mode)),
                            "drop_caches"));
  return NowNs() - t0;
}

absl::Status SetSysctl(const std::string& name_or_path, const std::string& value, OpContext& ctx) {
  RETURN_IF_ERROR(RequireJournal(ctx, absl::StrCat("sysctl ", name_or_path)));
  const std::string path = SysctlPath(name_or_path);
  return NeedsRoot(ctx.journal->ChangeSetting(path, value), absl::StrCat("sysctl ", name_or_path));
}

absl::Status Hold(uint64_t duration_ns, const StopFlag& stop) {
  const uint64_t end = NowNs() + duration_ns;
  for (;;) {
    if (stop.requested()) return stop.StoppedStatus("hold");
    const uint64_t now = NowNs();
    if (now >= end) return absl::OkStatus();
    const uint64_t left = end - now;
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<uint64_t>(left, 50000000)));
  }
}

absl::StatusOr<uint64_t> Settle(const StopFlag& stop, uint64_t tolerance_pages, int window_ms,
                                int timeout_ms) {
  const uint64_t t0 = NowNs();
  ASSIGN_OR_RETURN(auto mi, ReadKeyValueFile("/proc/meminfo"));
  uint64_t last = ValueOr0(mi, "MemFree");
  for (;;) {
    if (stop.requested()) return stop.StoppedStatus("settle");
    std::this_thread::sleep_for(std::chrono::milliseconds(window_ms));
    ASSIGN_OR_RETURN(auto mi2, ReadKeyValueFile("/proc/meminfo"));
    const uint64_t now = ValueOr0(mi2, "MemFree");
    const uint64_t diff = now > last ? now - last : last - now;
    last = now;
    const uint64_t elapsed = NowNs() - t0;
    if (diff / 4096 < tolerance_pages || elapsed >= static_cast<uint64_t>(timeout_ms) * 1000000) {
      return elapsed;
    }
  }
}

}  // namespace fraglab::gen
