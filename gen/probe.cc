#include "gen/probe.h"

#include <sys/mman.h>
#include <time.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "gen/anon.h"
#include "gen/sysfs.h"

namespace fraglab::gen {
namespace {

uint64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t Delta(const absl::StatusOr<std::map<std::string, uint64_t>>& a,
               const absl::StatusOr<std::map<std::string, uint64_t>>& b, const std::string& key) {
  if (!a.ok() || !b.ok()) return 0;
  const uint64_t x = ValueOr0(*a, key), y = ValueOr0(*b, key);
  return y > x ? y - x : 0;
}

}  // namespace

absl::StatusOr<HugetlbProbeResult> ProbeHugetlb(uint64_t pages, OpContext& ctx) {
  HugetlbProbeResult r;
  r.requested = pages;
  if (pages == 0) return absl::InvalidArgumentError("probe hugetlb: 0 pages");
  RETURN_IF_ERROR(RequireJournal(ctx, "probe hugetlb"));
  auto before = ReadUint(kNrHugepages2M);
  if (!before.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "probe hugetlb: cannot read ", kNrHugepages2M, " (kernel without CONFIG_HUGETLBFS?): ",
        std::string(before.status().message())));
  }
  RETURN_IF_ERROR(ctx.ledger->Reserve(pages * kPmdBytes, "probe hugetlb"));
  const auto vm0 = ReadKeyValueFile("/proc/vmstat");
  const uint64_t t0 = NowNs();
  absl::Status grow = ctx.journal->ChangeSetting(kNrHugepages2M, std::to_string(*before + pages));
  r.duration_ns = NowNs() - t0;
  const auto vm1 = ReadKeyValueFile("/proc/vmstat");
  auto after = ReadUint(kNrHugepages2M);
  if (after.ok() && *after > *before) r.obtained = *after - *before;
  r.buddy_alloc_success = Delta(vm0, vm1, "htlb_buddy_alloc_success");
  r.buddy_alloc_fail = Delta(vm0, vm1, "htlb_buddy_alloc_fail");
  r.compact_stall = Delta(vm0, vm1, "compact_stall");
  // Give the pages back before reporting anything else, whatever happened.
  absl::Status shrink = WriteSetting(kNrHugepages2M, std::to_string(*before));
  auto final_value = ReadUint(kNrHugepages2M);
  if (final_value.ok() && after.ok() && *after >= *final_value) r.given_back = *after - *final_value;
  ctx.ledger->Release(pages * kPmdBytes);
  if (!grow.ok()) {
    if (grow.code() == absl::StatusCode::kPermissionDenied) {
      return absl::FailedPreconditionError(absl::StrCat(
          "probe hugetlb needs root to write ", kNrHugepages2M, ": ", std::string(grow.message())));
    }
    return grow;
  }
  if (!shrink.ok()) {
    return absl::InternalError(absl::StrCat("probe hugetlb: could not give the pool back: ",
                                            std::string(shrink.message())));
  }
  if (final_value.ok() && *final_value != *before) {
    r.notes.push_back(absl::StrCat("pool reads ", *final_value, " after shrinking to ", *before,
                                   " (pages in use elsewhere)"));
  }
  return r;
}

absl::StatusOr<ThpProbeResult> ProbeThp(uint64_t pages, OpContext& ctx) {
  ThpProbeResult r;
  r.requested = pages;
  if (pages == 0) return absl::InvalidArgumentError("probe thp: 0 pages");
  auto enabled = ReadSetting("/sys/kernel/mm/transparent_hugepage/enabled");
  if (enabled.ok() && ActiveChoice(*enabled) == "never") {
    r.notes.push_back("THP enabled=never: every fault falls back to base pages");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<AnonRegion> region,
                   AnonRegion::Map(pages * kPmdBytes, kPmdBytes, ctx.ledger));
  if (::madvise(region->base(), region->bytes(), MADV_HUGEPAGE) != 0) {
    return ErrnoStatus(errno, "probe thp: madvise(MADV_HUGEPAGE)");
  }
  const auto vm0 = ReadKeyValueFile("/proc/vmstat");
  const uint64_t t0 = NowNs();
  for (uint64_t i = 0; i < pages; ++i) {
    if (ctx.stop->requested()) return ctx.stop->StoppedStatus("probe thp");
    region->base()[i * kPmdBytes] = 1;
    region->MarkTouched(i * (kPmdBytes / kPageBytes), kPmdBytes / kPageBytes);
  }
  r.duration_ns = NowNs() - t0;
  const auto vm1 = ReadKeyValueFile("/proc/vmstat");
  ASSIGN_OR_RETURN(uint64_t huge, region->SmapsAnonHugeBytes());
  r.fault_alloc = Delta(vm0, vm1, "thp_fault_alloc");
  r.fault_fallback = Delta(vm0, vm1, "thp_fault_fallback");
  // The kernel merges the probe's VMA with an adjacent MADV_HUGEPAGE region
  // of the run, and smaps then reports the merged VMA's huge pages: bound
  // the count by the request and by the THP faults the kernel counted.
  r.obtained = std::min({huge / kPmdBytes, pages, r.fault_alloc});
  return r;
}

}  // namespace fraglab::gen
