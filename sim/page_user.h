// PageUser: the owners of allocated pages, as the page allocator sees them.
//
// The allocator (sim/page_allocator.h) knows only an owner kind per
// allocated block. Compaction and reclaim need more: compaction moves a
// block and must tell whoever holds its pfn, reclaim must ask whoever holds
// page cache and reclaimable slab to give pages back. The kernel model of
// scenario operations (sim/kernel_model.h) implements this interface and
// registers itself with PageAllocator::set_page_user().
#pragma once

#include <cstdint>

namespace fraglab::sim {

// One reclaim pass (shrink_node for kswapd, try_to_free_pages for direct
// reclaim, reference §5.5).
struct ReclaimRequest {
  int node = 0;               // node to reclaim from
  int highest_zone_type = 0;  // ZoneType index: zones of this type and below
  uint64_t nr_to_reclaim = 0; // pages wanted (a pass may free fewer or more)
  int order = 0;              // order the reclaim is for (0 for kswapd balancing)
  bool direct = false;        // true: direct reclaim in an allocation; false: kswapd
};

class PageUser {
 public:
  virtual ~PageUser() = default;

  // Compaction migrated the allocated block of `order` at `old_pfn` to
  // `new_pfn`. The allocator's own state has already moved (the old block is
  // free, the new one allocated with the same owner kind and type); the
  // owner updates its records. Must not call back into the allocator.
  virtual void OnMigrated(uint64_t old_pfn, uint64_t new_pfn, int order) = 0;

  // Frees, through PageAllocator::Free, up to about `req.nr_to_reclaim` pages
  // of what reclaim may take on `req.node` in zones up to
  // `req.highest_zone_type`: clean page cache (LRU order, oldest first) and
  // reclaimable slab pages whose objects can all be dropped; never anonymous
  // memory unless the scenario configured swap. Returns the pages freed (0
  // when nothing is reclaimable). Must not allocate.
  virtual uint64_t Reclaim(const ReclaimRequest& req) = 0;
};

}  // namespace fraglab::sim
