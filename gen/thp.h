// THP on an existing anonymous region: MADV_HUGEPAGE (later faults and
// khugepaged may use huge pages) or MADV_COLLAPSE (6.1+: collapse now,
// synchronously). Counts the huge pages the region holds before and after
// from /proc/self/smaps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gen/anon.h"

namespace fraglab::gen {

struct ThpResult {
  uint64_t huge_before = 0;   // 2 MiB pages in the region before
  uint64_t huge_after = 0;    // and after
  uint64_t collapse_alloc = 0;         // thp_collapse_alloc delta (vmstat)
  uint64_t collapse_alloc_failed = 0;  // thp_collapse_alloc_failed delta
  uint64_t duration_ns = 0;
  std::vector<std::string> notes;
};

// MADV_HUGEPAGE over the region's mapped parts.
[[nodiscard]] absl::StatusOr<ThpResult> MadviseHugepage(AnonRegion& region);

// MADV_HUGEPAGE then MADV_COLLAPSE over the region's mapped parts. A
// collapse the kernel could not complete (EAGAIN, ENOMEM: no free 2 MiB block)
// is not an error: the result tells how many huge pages were obtained.
// FailedPrecondition when the kernel lacks MADV_COLLAPSE (EINVAL before 6.1).
[[nodiscard]] absl::StatusOr<ThpResult> Collapse(AnonRegion& region, const StopFlag& stop);

}  // namespace fraglab::gen
