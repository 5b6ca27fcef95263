#include "gen/release.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/rng.h"
#include "common/status.h"

namespace fraglab::gen {
namespace {

uint64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

void Append(std::vector<UnitRange>* out, uint64_t first, uint64_t count) {
  if (count == 0) return;
  if (!out->empty() && out->back().first + out->back().count == first) {
    out->back().count += count;
  } else {
    out->push_back({first, count});
  }
}

}  // namespace

absl::StatusOr<std::vector<UnitRange>> ReleaseRanges(uint64_t num_units,
                                                     const ReleaseParams& p) {
  std::vector<UnitRange> out;
  switch (p.pattern) {
    case ReleasePattern::kWhole:
      Append(&out, 0, num_units);
      return out;
    case ReleasePattern::kEveryNth: {
      if (p.n == 0) return absl::InvalidArgumentError("release every_nth: n must be >= 1");
      if (p.offset >= p.n) {
        return absl::InvalidArgumentError(
            absl::StrCat("release every_nth: offset ", p.offset, " must be < n = ", p.n));
      }
      for (uint64_t i = p.offset; i < num_units; i += p.n) Append(&out, i, 1);
      return out;
    }
    case ReleasePattern::kStride: {
      if (p.stride == 0 || p.run == 0 || p.run > p.stride) {
        return absl::InvalidArgumentError(absl::StrCat(
            "release stride: need 1 <= run <= stride, got run ", p.run, " stride ", p.stride));
      }
      for (uint64_t s = p.offset; s < num_units; s += p.stride) {
        Append(&out, s, std::min(p.run, num_units - s));
      }
      return out;
    }
    case ReleasePattern::kRandomFraction: {
      if (!(p.fraction >= 0 && p.fraction <= 1)) {
        return absl::InvalidArgumentError(
            absl::StrCat("release random: fraction ", p.fraction, " is outside [0, 1]"));
      }
      const uint64_t k =
          static_cast<uint64_t>(std::llround(p.fraction * static_cast<double>(num_units)));
      // Partial Fisher-Yates: the first k slots are a uniform k-subset.
      std::vector<uint64_t> idx(num_units);
      std::iota(idx.begin(), idx.end(), 0);
      Rng rng(p.seed);
      for (uint64_t i = 0; i < k; ++i) {
        uint64_t j = i + rng.Uniform(num_units - i);
        std::swap(idx[i], idx[j]);
      }
      idx.resize(k);
      std::sort(idx.begin(), idx.end());
      for (uint64_t u : idx) Append(&out, u, 1);
      return out;
    }
  }
  return absl::InternalError("unknown release pattern");
}

absl::StatusOr<ReleaseResult> Release(AnonRegion& region, const ReleaseParams& params,
                                      const StopFlag& stop) {
  if (params.unit_pages == 0) return absl::InvalidArgumentError("release: unit of 0 pages");
  const uint64_t units = (region.pages() + params.unit_pages - 1) / params.unit_pages;
  ASSIGN_OR_RETURN(std::vector<UnitRange> ranges, ReleaseRanges(units, params));
  ReleaseResult r;
  const uint64_t t0 = NowNs();
  for (const UnitRange& u : ranges) {
    if (stop.requested()) return stop.StoppedStatus("release");
    const uint64_t first = u.first * params.unit_pages;
    const uint64_t count = std::min(u.count * params.unit_pages, region.pages() - first);
    ASSIGN_OR_RETURN(uint64_t released, region.Discard(first, count, params.unmap));
    r.pages_selected += count;
    r.pages_released += released;
    ++r.ranges;
  }
  r.duration_ns = NowNs() - t0;
  return r;
}

}  // namespace fraglab::gen
