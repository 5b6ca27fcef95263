#include "gen/thp.h"

#include <sys/mman.h>
#include <time.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "gen/sysfs.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

namespace fraglab::gen {
namespace {

uint64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

// madvise over every 2 MiB-aligned, fully mapped chunk of the region (holes
// punched with munmap would make one call over the whole region fail).
absl::Status MadviseMapped(AnonRegion& region, int advice, const StopFlag* stop,
                           std::vector<std::string>* notes) {
  const uint64_t chunk_pages = kPmdBytes / kPageBytes;
  uint64_t soft_failures = 0;
  int last_err = 0;
  for (uint64_t first = 0; first < region.pages(); first += chunk_pages) {
    if (stop != nullptr && stop->requested()) return stop->StoppedStatus("thp collapse");
    const uint64_t count = std::min(chunk_pages, region.pages() - first);
    char* addr = region.base() + first * kPageBytes;
    if (::madvise(addr, count * kPageBytes, advice) == 0) continue;
    const int err = errno;
    if (err == ENOMEM || err == EAGAIN || err == EINVAL) {
      // ENOMEM: unmapped hole or no huge page to be had; EAGAIN: pages busy;
      // EINVAL on a partial chunk. The count from smaps tells the outcome.
      if (err == EINVAL && advice == MADV_COLLAPSE && first == 0 && count == chunk_pages) {
        return absl::FailedPreconditionError(
            "thp collapse: MADV_COLLAPSE refused (EINVAL): the kernel lacks it (6.1+) or THP is off");
      }
      ++soft_failures;
      last_err = err;
      continue;
    }
    return ErrnoStatus(err, absl::StrCat("madvise(", advice, ") at page ", first));
  }
  if (soft_failures > 0 && notes != nullptr) {
    notes->push_back(absl::StrCat(soft_failures, " chunk(s) of 2 MiB not advised/collapsed (last errno ",
                                  last_err, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ThpResult> MadviseHugepage(AnonRegion& region) {
  ThpResult r;
  ASSIGN_OR_RETURN(uint64_t before, region.SmapsAnonHugeBytes());
  r.huge_before = before / kPmdBytes;
  const uint64_t t0 = NowNs();
  RETURN_IF_ERROR(MadviseMapped(region, MADV_HUGEPAGE, nullptr, &r.notes));
  r.duration_ns = NowNs() - t0;
  ASSIGN_OR_RETURN(uint64_t after, region.SmapsAnonHugeBytes());
  r.huge_after = after / kPmdBytes;
  return r;
}

absl::StatusOr<ThpResult> Collapse(AnonRegion& region, const StopFlag& stop) {
  ThpResult r;
  ASSIGN_OR_RETURN(uint64_t before, region.SmapsAnonHugeBytes());
  r.huge_before = before / kPmdBytes;
  auto vm0 = ReadKeyValueFile("/proc/vmstat");
  const uint64_t t0 = NowNs();
  RETURN_IF_ERROR(MadviseMapped(region, MADV_HUGEPAGE, &stop, &r.notes));
  RETURN_IF_ERROR(MadviseMapped(region, MADV_COLLAPSE, &stop, &r.notes));
  r.duration_ns = NowNs() - t0;
  auto vm1 = ReadKeyValueFile("/proc/vmstat");
  if (vm0.ok() && vm1.ok()) {
    r.collapse_alloc = ValueOr0(*vm1, "thp_collapse_alloc") - ValueOr0(*vm0, "thp_collapse_alloc");
    r.collapse_alloc_failed =
        ValueOr0(*vm1, "thp_collapse_alloc_failed") - ValueOr0(*vm0, "thp_collapse_alloc_failed");
  }
  ASSIGN_OR_RETURN(uint64_t after, region.SmapsAnonHugeBytes());
  r.huge_after = after / kPmdBytes;
  return r;
}

}  // namespace fraglab::gen
