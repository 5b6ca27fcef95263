// Releasing parts of an anonymous region in a pattern, so the free holes land
// where the scenario says: every n-th unit, a random fraction of units,
// strides (a run of units released every stride), or the whole region. A unit
// is a page or a larger aligned block (e.g. 2 MiB to free whole pageblocks).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gen/anon.h"

namespace fraglab::gen {

enum class ReleasePattern {
  kEveryNth,        // units i with i % n == offset
  kRandomFraction,  // round(fraction * units) distinct units, chosen by seed
  kStride,          // units [k*stride + offset, k*stride + offset + run) for k = 0, 1, ...
  kWhole,           // every unit
};

struct ReleaseParams {
  ReleasePattern pattern = ReleasePattern::kWhole;
  uint64_t unit_pages = 1;  // pages per unit (512 = 2 MiB)
  uint64_t n = 2;           // kEveryNth
  uint64_t offset = 0;      // kEveryNth, kStride: first unit
  double fraction = 0.5;    // kRandomFraction, in [0, 1]
  uint64_t stride = 2;      // kStride: units from one run's start to the next
  uint64_t run = 1;         // kStride: units released per stride
  bool unmap = false;       // munmap instead of MADV_DONTNEED
  uint64_t seed = 1;        // kRandomFraction
};

// A run of consecutive units [first, first + count).
struct UnitRange {
  uint64_t first = 0;
  uint64_t count = 0;
  bool operator==(const UnitRange& o) const { return first == o.first && count == o.count; }
};

// The units to release out of `num_units`, as sorted, merged, non-empty
// ranges. InvalidArgument for n == 0, offset >= n, stride == 0, run == 0,
// run > stride or a fraction outside [0, 1]. Deterministic for a seed.
[[nodiscard]] absl::StatusOr<std::vector<UnitRange>> ReleaseRanges(uint64_t num_units,
                                                                   const ReleaseParams& params);

struct ReleaseResult {
  uint64_t ranges = 0;          // contiguous runs given back
  uint64_t pages_selected = 0;  // pages the pattern selected
  uint64_t pages_released = 0;  // of them, pages that were populated
  uint64_t duration_ns = 0;
};

// Applies the pattern to `region` (units counted from its start; a partial
// last unit counts as a unit). Stops early with Cancelled on a stop request.
[[nodiscard]] absl::StatusOr<ReleaseResult> Release(AnonRegion& region,
                                                    const ReleaseParams& params,
                                                    const StopFlag& stop);

}  // namespace fraglab::gen
