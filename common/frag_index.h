// The kernel's fragmentation metrics (mm/vmstat.c), with the same unsigned
// integer arithmetic and the same text formatting, so that our numbers and
// strings equal debugfs extfrag/{unusable_index,extfrag_index} exactly.
// Inputs are a zone's free block counts per order over the buddy lists only
// (buddyinfo's nr_free); pages on per-CPU lists are not seen by the kernel's
// formulas either.
#pragma once

#include <cstdint>
#include <string>

#include "absl/types/span.h"

namespace fraglab::procfs {

// The kernel's contig_page_info for a requested order j.
struct ContigPageInfo {
  uint64_t free_pages = 0;            // F = sum_k nr_free[k] * 2^k
  uint64_t free_blocks_total = 0;     // B = sum_k nr_free[k]
  uint64_t free_blocks_suitable = 0;  // S_j = sum_{k>=j} nr_free[k] * 2^(k-j)
};

// Fills the sums for order `order` (like fill_contig_page_info).
ContigPageInfo FillContigPageInfo(absl::Span<const uint64_t> nr_free, unsigned order);

// Unusable free space index of `order` in thousandths: 1000 when nothing is
// free, else floor(1000 * (F - S_j * 2^j) / F). Range 0..1000.
int UnusableIndex(absl::Span<const uint64_t> nr_free, unsigned order);

// Fragmentation index of `order` in thousandths: 0 when no block is free,
// -1000 when a block of order >= j exists (the request would succeed), else
// 1000 - floor((1000 + floor(1000 * F / 2^j)) / B). Values in (-1000, 0) occur
// (few large-ish blocks) and are printed oddly by the kernel. `order` beyond
// the span gives 0, as the kernel does for order > MAX_PAGE_ORDER.
int FragmentationIndex(absl::Span<const uint64_t> nr_free, unsigned order);

// extfrag_for_order: percent of free memory unusable for `order` (0 when
// nothing is free), the per-zone score of proactive compaction.
int ExtfragForOrder(absl::Span<const uint64_t> nr_free, unsigned order);

// "%d.%03d" of (index / 1000, index % 1000), as in unusable_index.
std::string FormatUnusableIndex(int index);
// "%2d.%03d" of (index / 1000, index % 1000), as in extfrag_index; e.g.
// -1000 -> "-1.000", -500 -> " 0.-500", 850 -> " 0.850".
std::string FormatFragmentationIndex(int index);

}  // namespace fraglab::procfs
