#include "common/frag_index.h"

#include "absl/strings/str_format.h"

namespace fraglab::procfs {

ContigPageInfo FillContigPageInfo(absl::Span<const uint64_t> nr_free, unsigned order) {
  ContigPageInfo info;
  for (unsigned k = 0; k < nr_free.size(); ++k) {
    const uint64_t blocks = nr_free[k];
    info.free_blocks_total += blocks;
    info.free_pages += blocks << k;
    if (k >= order) info.free_blocks_suitable += blocks << (k - order);
  }
  return info;
}

int UnusableIndex(absl::Span<const uint64_t> nr_free, unsigned order) {
  const ContigPageInfo info = FillContigPageInfo(nr_free, order);
  if (info.free_pages == 0) return 1000;
  // Unsigned 64-bit like the kernel's div_u64; S_j * 2^j <= F so no wrap.
  return static_cast<int>((info.free_pages - (info.free_blocks_suitable << order)) * 1000ULL /
                          info.free_pages);
}

int FragmentationIndex(absl::Span<const uint64_t> nr_free, unsigned order) {
  if (order >= nr_free.size()) return 0;
  const ContigPageInfo info = FillContigPageInfo(nr_free, order);
  if (info.free_blocks_total == 0) return 0;
  if (info.free_blocks_suitable != 0) return -1000;
  const uint64_t requested = uint64_t{1} << order;
  const uint64_t scaled = 1000 + info.free_pages * 1000ULL / requested;
  return 1000 - static_cast<int>(scaled / info.free_blocks_total);
}

int ExtfragForOrder(absl::Span<const uint64_t> nr_free, unsigned order) {
  const ContigPageInfo info = FillContigPageInfo(nr_free, order);
  if (info.free_pages == 0) return 0;
  return static_cast<int>((info.free_pages - (info.free_blocks_suitable << order)) * 100 /
                          info.free_pages);
}

std::string FormatUnusableIndex(int index) {
  return absl::StrFormat("%d.%03d", index / 1000, index % 1000);
}

std::string FormatFragmentationIndex(int index) {
  return absl::StrFormat("%2d.%03d", index / 1000, index % 1000);
}

}  // namespace fraglab::procfs
