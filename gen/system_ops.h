// Machine-wide operations: compaction, dropping caches, sysctls (journalled),
// and holding still for a while (watching the stop flag).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gen/context.h"

namespace fraglab::gen {

struct CompactResult {
  uint64_t duration_ns = 0;
  uint64_t migrate_scanned = 0;  // compact_migrate_scanned delta
  uint64_t free_scanned = 0;     // compact_free_scanned delta
  uint64_t isolated = 0;         // compact_isolated delta
  uint64_t pgmigrate_success = 0;
  uint64_t pgmigrate_fail = 0;
};

// Writes 1 to /proc/sys/vm/compact_memory (node < 0) or to
// /sys/devices/system/node/node<N>/compact. Needs root.
[[nodiscard]] absl::StatusOr<CompactResult> Compact(int node = -1);

// sync(2), then writes `mode` (1 page cache, 2 slab, 3 both) to
// /proc/sys/vm/drop_caches. Needs root. Returns the time it took (ns).
[[nodiscard]] absl::StatusOr<uint64_t> DropCaches(int mode = 3);

// Sets a sysctl ("vm.defrag_mode") or a sysfs/procfs path, journalling the old
// value first. FailedPrecondition naming the path when not root.
[[nodiscard]] absl::Status SetSysctl(const std::string& name_or_path, const std::string& value,
                                     OpContext& ctx);

// Sleeps `duration_ns`, waking every 50 ms for the stop flag (Cancelled).
[[nodiscard]] absl::Status Hold(uint64_t duration_ns, const StopFlag& stop);

// Waits until MemFree changes by less than `tolerance_pages` over `window_ms`
// or `timeout_ms` passes; returns how long it took (ns). Lets kcompactd,
// kswapd and page reporting finish after a drop/compact before a start
// snapshot is taken.
[[nodiscard]] absl::StatusOr<uint64_t> Settle(const StopFlag& stop, uint64_t tolerance_pages = 256,
                                              int window_ms = 500, int timeout_ms = 5000);

}  // namespace fraglab::gen
