// Anonymous memory, mapped and touched for real: base pages, PMD THP or one
// mTHP size, touched in sequential or random order, optionally placed on a
// NUMA node. The region stays mapped until released (gen/release.h) or
// destroyed, so later phases can punch holes into it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gen/context.h"

namespace fraglab::gen {

enum class AnonPageSize {
  kBase,     // MADV_NOHUGEPAGE: 4 KiB folios only (also no mTHP)
  kThp,      // MADV_HUGEPAGE: PMD-size THP where the kernel can
  kMthp,     // one mTHP size, enabled (always) for the run via the journal
  kDefault,  // no madvise: whatever the machine's settings give
};

enum class TouchOrder { kSequential, kRandom };

struct AnonParams {
  uint64_t bytes = 0;                 // rounded up to whole 4 KiB pages
  AnonPageSize page_size = AnonPageSize::kBase;
  uint64_t mthp_kb = 0;               // kMthp: 8..1024, a power of two, < 2048
  TouchOrder order = TouchOrder::kSequential;
  int numa_node = -1;                 // -1: local policy
  uint64_t seed = 1;                  // random touch order
};

// Base page size the generator reasons in.
inline constexpr uint64_t kPageBytes = 4096;
inline constexpr uint64_t kPmdBytes = 2ULL << 20;

// An anonymous mapping owned by the run. Tracks which of its pages are
// mapped and populated so holes can be punched (MADV_DONTNEED keeps the
// range mapped, munmap removes it) and the destructor unmaps only what is
// still mapped (never an address another mapping may since have taken).
class AnonRegion {
 public:
  // Maps `bytes` (page-rounded) of anonymous private memory aligned to
  // `align` (a power of two >= 4 KiB) and reserves the size in the ledger.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<AnonRegion>> Map(uint64_t bytes,
                                                                        uint64_t align,
                                                                        MemoryLedger* ledger);
  ~AnonRegion();
  AnonRegion(const AnonRegion&) = delete;
  AnonRegion& operator=(const AnonRegion&) = delete;

  char* base() const { return base_; }
  uint64_t bytes() const { return pages_ * kPageBytes; }
  uint64_t pages() const { return pages_; }

  // Marks pages [first, first+count) as populated (the toucher calls this).
  void MarkTouched(uint64_t first, uint64_t count);
  // Gives pages [first, first+count) back: MADV_DONTNEED, or munmap when
  // `unmap`. Already released pages are skipped. Returns pages released that
  // were populated. InvalidArgument when the range is outside the region.
  [[nodiscard]] absl::StatusOr<uint64_t> Discard(uint64_t first, uint64_t count, bool unmap);
  // Pages populated and not released.
  uint64_t populated_pages() const { return populated_count_; }
  uint64_t mapped_pages() const;

  // AnonHugePages (bytes) summed over this region's VMAs in /proc/self/smaps.
  [[nodiscard]] absl::StatusOr<uint64_t> SmapsAnonHugeBytes() const;
  // Rss (bytes) over this region's VMAs in /proc/self/smaps.
  [[nodiscard]] absl::StatusOr<uint64_t> SmapsRssBytes() const;

 private:
  AnonRegion(char* base, uint64_t pages, char* map_base, uint64_t map_bytes,
             MemoryLedger* ledger);

  char* base_;
  uint64_t pages_;
  char* map_base_;     // what mmap returned (alignment slack is trimmed)
  uint64_t map_bytes_;
  MemoryLedger* ledger_;
  std::vector<bool> populated_;
  std::vector<bool> unmapped_;
  uint64_t populated_count_ = 0;
};

// Sums `field` ("AnonHugePages", "Rss", ...) over the VMAs of smaps text
// that overlap [start, end). Pure: tests feed text.
uint64_t SumSmapsField(const std::string& smaps_text, uintptr_t start, uintptr_t end,
                       const std::string& field);

struct AnonResult {
  uint64_t bytes = 0;
  uint64_t pages_touched = 0;
  uint64_t thp_bytes = 0;         // AnonHugePages of the region after touching
  uint64_t mthp_faults = 0;       // kMthp: anon_fault_alloc delta at that size
  uint64_t mthp_fallbacks = 0;    // kMthp: anon_fault_fallback delta
  uint64_t thp_fault_alloc = 0;   // vmstat delta
  uint64_t thp_fault_fallback = 0;
  uint64_t duration_ns = 0;
  std::vector<std::string> notes;
};

// Maps a region per `params`, touches every page (one write per 4 KiB page),
// and hands the region to *region. On a stop request it returns Cancelled
// and the partly touched region is still handed over (the caller frees it).
[[nodiscard]] absl::StatusOr<AnonResult> MapAndTouch(const AnonParams& params, OpContext& ctx,
                                                     std::unique_ptr<AnonRegion>* region);

// sysfs directory of one mTHP size: /sys/kernel/mm/transparent_hugepage/hugepages-<kb>kB.
std::string MthpDir(uint64_t kb);

}  // namespace fraglab::gen
