#include "gen/anon.h"

#include <numa.h>
#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <numeric>

#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/rng.h"
#include "common/status.h"
#include "gen/sysfs.h"

namespace fraglab::gen {
namespace {

uint64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

// How often (in pages) long loops look at the stop flag.
constexpr uint64_t kStopCheckPages = 512;

// Sizes other than `kb` that apply to a VMA without MADV_HUGEPAGE ("always",
// or "inherit" while the top-level setting is "always") are set to "never";
// returns (path, old value) to put back.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> PauseOtherMthpSizes(
    uint64_t kb, OpContext& ctx) {
  std::vector<std::pair<std::string, std::string>> paused;
  const auto top = ReadSetting("/sys/kernel/mm/transparent_hugepage/enabled");
  const bool top_always = top.ok() && ActiveChoice(*top) == "always";
  for (uint64_t other = 8; other <= 2048; other *= 2) {
    if (other == kb) continue;
    const std::string path = MthpDir(other) + "/enabled";
    auto v = ReadSetting(path);
    if (!v.ok()) continue;
    const std::string cur = ActiveChoice(*v);
    if (cur == "always" || (cur == "inherit" && top_always)) {
      RETURN_IF_ERROR(ctx.journal->ChangeSetting(path, "never"));
      paused.push_back({path, cur});
    }
  }
  return paused;
}

}  // namespace

std::string MthpDir(uint64_t kb) {
  return absl::StrCat("/sys/kernel/mm/transparent_hugepage/hugepages-", kb, "kB");
}

AnonRegion::AnonRegion(char* base, uint64_t pages, char* map_base, uint64_t map_bytes,
                       MemoryLedger* ledger)
    : base_(base),
      pages_(pages),
      map_base_(map_base),
      map_bytes_(map_bytes),
      ledger_(ledger),
      populated_(pages, false),
      unmapped_(pages, false) {}

absl::StatusOr<std::unique_ptr<AnonRegion>> AnonRegion::Map(uint64_t bytes, uint64_t align,
                                                            MemoryLedger* ledger) {
  if (bytes == 0) return absl::InvalidArgumentError("anonymous region of 0 bytes");
  if (align < kPageBytes || (align & (align - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("alignment ", align, " is not a power of two >= 4096"));
  }
  const uint64_t pages = (bytes + kPageBytes - 1) / kPageBytes;
  const uint64_t size = pages * kPageBytes;
  RETURN_IF_ERROR(ledger->Reserve(size, "anonymous region"));
  const uint64_t map_bytes = size + align - kPageBytes;
  void* p = ::mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    ledger->Release(size);
    return ErrnoStatus(err, absl::StrCat("mmap ", HumanBytes(map_bytes), " anonymous"));
  }
  char* raw = static_cast<char*>(p);
  char* base = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(raw) + align - 1) & ~(align - 1));
  // Trim the slack on both sides so the VMA is exactly the region.
  if (base > raw) ::munmap(raw, static_cast<size_t>(base - raw));
  char* end = base + size;
  char* raw_end = raw + map_bytes;
  if (raw_end > end) ::munmap(end, static_cast<size_t>(raw_end - end));
  return std::unique_ptr<AnonRegion>(new AnonRegion(base, pages, base, size, ledger));
}

AnonRegion::~AnonRegion() {
  // Unmap maximal runs of still-mapped pages only.
  uint64_t i = 0;
  while (i < pages_) {
    if (unmapped_[i]) {
      ++i;
      continue;
    }
    uint64_t j = i;
    while (j < pages_ && !unmapped_[j]) ++j;
    ::munmap(base_ + i * kPageBytes, (j - i) * kPageBytes);
    i = j;
  }
  (void)map_base_;
  (void)map_bytes_;
  uint64_t still_reserved = 0;
  for (uint64_t k = 0; k < pages_; ++k) still_reserved += unmapped_[k] ? 0 : 1;
  ledger_->Release(still_reserved * kPageBytes);
}

void AnonRegion::MarkTouched(uint64_t first, uint64_t count) {
  for (uint64_t i = first; i < first + count && i < pages_; ++i) {
    if (!populated_[i] && !unmapped_[i]) {
      populated_[i] = true;
      ++populated_count_;
    }
  }
}

uint64_t AnonRegion::mapped_pages() const {
  return static_cast<uint64_t>(std::count(unmapped_.begin(), unmapped_.end(), false));
}

absl::StatusOr<uint64_t> AnonRegion::Discard(uint64_t first, uint64_t count, bool unmap) {
  if (first > pages_ || count > pages_ - first) {
    return absl::InvalidArgumentError(absl::StrCat("release of pages [", first, ", ",
                                                   first + count, ") outside a region of ",
                                                   pages_, " pages"));
  }
  uint64_t released = 0;
  uint64_t i = first;
  const uint64_t end = first + count;
  while (i < end) {
    if (unmapped_[i] || (!unmap && !populated_[i])) {
      ++i;
      continue;
    }
    uint64_t j = i;
    while (j < end && !unmapped_[j] && (unmap || populated_[j])) ++j;
    char* addr = base_ + i * kPageBytes;
    const size_t len = (j - i) * kPageBytes;
    int rc = unmap ? ::munmap(addr, len) : ::madvise(addr, len, MADV_DONTNEED);
    if (rc != 0) {
      return ErrnoStatus(errno, absl::StrCat(unmap ? "munmap" : "madvise(MADV_DONTNEED)", " of ",
                                             j - i, " pages at page ", i));
    }
    for (uint64_t k = i; k < j; ++k) {
      if (populated_[k]) {
        populated_[k] = false;
        --populated_count_;
        ++released;
      }
      if (unmap) unmapped_[k] = true;
    }
    // munmap returns the reservation; DONTNEED pages may be touched again.
    if (unmap) ledger_->Release(len);
    i = j;
  }
  return released;
}

uint64_t SumSmapsField(const std::string& smaps_text, uintptr_t start, uintptr_t end,
                       const std::string& field) {
  uint64_t total = 0;
  bool in_range = false;
  const std::string prefix = field + ":";
  for (absl::string_view line : absl::StrSplit(smaps_text, '\n')) {
    if (line.empty()) continue;
    // A VMA header starts with "start-end " in hex; field lines start with a name.
    size_t dash = line.find('-');
    size_t space = line.find(' ');
    if (dash != absl::string_view::npos && space != absl::string_view::npos && dash < space) {
      uint64_t lo = 0, hi = 0;
      if (absl::SimpleHexAtoi(line.substr(0, dash), &lo) &&
          absl::SimpleHexAtoi(line.substr(dash + 1, space - dash - 1), &hi)) {
        in_range = lo < end && hi > start;
        continue;
      }
    }
    if (!in_range || !absl::StartsWith(line, prefix)) continue;
    std::vector<absl::string_view> parts =
        absl::StrSplit(line.substr(prefix.size()), ' ', absl::SkipEmpty());
    uint64_t v = 0;
    if (!parts.empty() && absl::SimpleAtoi(parts[0], &v)) {
      total += (parts.size() > 1 && parts[1] == "kB") ? v * 1024 : v;
    }
  }
  return total;
}

absl::StatusOr<uint64_t> AnonRegion::SmapsAnonHugeBytes() const {
  ASSIGN_OR_RETURN(std::string text, ReadSetting("/proc/self/smaps"));
  auto s = reinterpret_cast<uintptr_t>(base_);
  return SumSmapsField(text, s, s + bytes(), "AnonHugePages");
}

absl::StatusOr<uint64_t> AnonRegion::SmapsRssBytes() const {
  ASSIGN_OR_RETURN(std::string text, ReadSetting("/proc/self/smaps"));
  auto s = reinterpret_cast<uintptr_t>(base_);
  return SumSmapsField(text, s, s + bytes(), "Rss");
}

absl::StatusOr<AnonResult> MapAndTouch(const AnonParams& params, OpContext& ctx,
                                       std::unique_ptr<AnonRegion>* region_out) {
  AnonResult result;
  std::vector<std::pair<std::string, std::string>> paused_sizes;
  // Whatever happens below, sizes paused for the touch get their value back.
  struct Resume {
    std::vector<std::pair<std::string, std::string>>* paused;
    ~Resume() {
      for (const auto& [path, value] : *paused) (void)WriteSetting(path, value);
    }
  } resume{&paused_sizes};
  if (params.bytes == 0) return absl::InvalidArgumentError("anon: size is 0");
  std::string mthp_dir;
  if (params.page_size == AnonPageSize::kMthp) {
    const uint64_t kb = params.mthp_kb;
    if (kb < 8 || kb >= 2048 || (kb & (kb - 1)) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("anon: mTHP size ", kb, " kB is not a power of two in [8, 1024] kB"));
    }
    mthp_dir = MthpDir(kb);
    if (!ReadSetting(mthp_dir + "/enabled").ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "anon: this kernel has no mTHP size ", kb, " kB (", mthp_dir, " missing; mTHP needs 6.8+)"));
    }
    RETURN_IF_ERROR(RequireJournal(ctx, "anon with an mTHP size"));
    // "always" so the size applies without MADV_HUGEPAGE, which would also
    // make the region eligible for PMD THP (the 2 MiB size inherits madvise).
    RETURN_IF_ERROR(ctx.journal->ChangeSetting(mthp_dir + "/enabled", "always"));
    result.notes.push_back(absl::StrCat("mTHP ", kb, " kB enabled (always) for the run"));
    // The kernel faults the largest enabled size that fits, so other sizes
    // enabled for every VMA would take this region: switch them off while it
    // is touched (journalled; put back right after).
    ASSIGN_OR_RETURN(paused_sizes, PauseOtherMthpSizes(kb, ctx));
    for (const auto& [path, value] : paused_sizes) {
      result.notes.push_back(absl::StrCat(path, " (", value, ") set to never while the region is touched"));
    }
  }
  const auto thp_enabled = ReadSetting("/sys/kernel/mm/transparent_hugepage/enabled");
  if (params.page_size == AnonPageSize::kThp && thp_enabled.ok() &&
      ActiveChoice(*thp_enabled) == "never") {
    result.notes.push_back("THP enabled=never: the region gets base pages");
  }

  const uint64_t align = params.page_size == AnonPageSize::kBase ? kPageBytes : kPmdBytes;
  ASSIGN_OR_RETURN(std::unique_ptr<AnonRegion> region,
                   AnonRegion::Map(params.bytes, align, ctx.ledger));
  int advice = -1;
  if (params.page_size == AnonPageSize::kBase) advice = MADV_NOHUGEPAGE;
  if (params.page_size == AnonPageSize::kThp) advice = MADV_HUGEPAGE;
  if (advice >= 0 && ::madvise(region->base(), region->bytes(), advice) != 0) {
    return ErrnoStatus(errno, advice == MADV_HUGEPAGE ? "madvise(MADV_HUGEPAGE)"
                                                      : "madvise(MADV_NOHUGEPAGE)");
  }
  if (params.numa_node >= 0) {
    if (numa_available() < 0 || numa_max_node() == 0) {
      result.notes.push_back(absl::StrCat("NUMA node ", params.numa_node,
                                          " requested but this machine has one node: placement ignored"));
    } else if (params.numa_node > numa_max_node()) {
      return absl::InvalidArgumentError(absl::StrCat("anon: NUMA node ", params.numa_node,
                                                     " does not exist (highest is ",
                                                     numa_max_node(), ")"));
    } else {
      numa_tonode_memory(region->base(), region->bytes(), params.numa_node);
    }
  }

  const auto vm0 = ReadKeyValueFile("/proc/vmstat");
  std::map<std::string, uint64_t> mthp0;
  if (!mthp_dir.empty()) {
    for (const char* f : {"anon_fault_alloc", "anon_fault_fallback"}) {
      auto v = ReadUint(absl::StrCat(mthp_dir, "/stats/", f));
      if (v.ok()) mthp0[f] = *v;
    }
  }

  const uint64_t t0 = NowNs();
  const uint64_t n = region->pages();
  char* base = region->base();
  absl::Status stopped = absl::OkStatus();
  if (params.order == TouchOrder::kSequential) {
    for (uint64_t i = 0; i < n; ++i) {
      if (i % kStopCheckPages == 0 && ctx.stop->requested()) {
        region->MarkTouched(0, i);
        result.pages_touched = i;
        stopped = ctx.stop->StoppedStatus("anon");
        break;
      }
      base[i * kPageBytes] = static_cast<char>(i | 1);
    }
    if (stopped.ok()) {
      region->MarkTouched(0, n);
      result.pages_touched = n;
    }
  } else {
    std::vector<uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0u);
    Rng rng(params.seed);
    rng.Shuffle(order.begin(), order.end());
    for (uint64_t k = 0; k < n; ++k) {
      if (k % kStopCheckPages == 0 && ctx.stop->requested()) {
        stopped = ctx.stop->StoppedStatus("anon");
        break;
      }
      base[static_cast<uint64_t>(order[k]) * kPageBytes] = static_cast<char>(k | 1);
      region->MarkTouched(order[k], 1);
      ++result.pages_touched;
    }
  }
  result.duration_ns = NowNs() - t0;
  result.bytes = region->bytes();
  auto huge = region->SmapsAnonHugeBytes();
  if (huge.ok()) result.thp_bytes = *huge;
  const auto vm1 = ReadKeyValueFile("/proc/vmstat");
  if (vm0.ok() && vm1.ok()) {
    result.thp_fault_alloc = ValueOr0(*vm1, "thp_fault_alloc") - ValueOr0(*vm0, "thp_fault_alloc");
    result.thp_fault_fallback =
        ValueOr0(*vm1, "thp_fault_fallback") - ValueOr0(*vm0, "thp_fault_fallback");
  }
  if (!mthp_dir.empty()) {
    auto a = ReadUint(mthp_dir + "/stats/anon_fault_alloc");
    auto f = ReadUint(mthp_dir + "/stats/anon_fault_fallback");
    if (a.ok() && mthp0.count("anon_fault_alloc")) result.mthp_faults = *a - mthp0["anon_fault_alloc"];
    if (f.ok() && mthp0.count("anon_fault_fallback")) {
      result.mthp_fallbacks = *f - mthp0["anon_fault_fallback"];
    }
  }
  *region_out = std::move(region);
  if (!stopped.ok()) return stopped;
  return result;
}

}  // namespace fraglab::gen
