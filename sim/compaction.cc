// Memory compaction of the page-allocator model (reference §6). Work in
// progress: the entry points exist so the tree links; the scanners follow.
#include "absl/strings/str_format.h"
#include "sim/page_allocator.h"

namespace fraglab::sim {

void PageAllocator::CompactMemory() {}

absl::Status PageAllocator::CompactNode(int node) {
  if (node < 0 || node >= config_.nodes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("compact node %d: node outside 0..%d", node, config_.nodes - 1));
  }
  return absl::OkStatus();
}

int PageAllocator::TryDirectCompaction(const AllocRequest&, MigrateType, int, uint32_t, int,
                                       uint64_t* page_out) {
  if (page_out) *page_out = kNoPfn;
  return 1;  // COMPACT_SKIPPED
}

void PageAllocator::WakeupKcompactd(int, int, int) {}

void PageAllocator::KcompactdBackground(uint64_t) {}

bool PageAllocator::CompactionZonelistSuitable(const AllocRequest&, int, uint32_t) const {
  return false;
}

}  // namespace fraglab::sim
