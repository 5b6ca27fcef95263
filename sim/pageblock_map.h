// Pageblock maps of the simulated machine: the allocator's state as
// FL_EV_PAGEBLOCK_MAP records, laid out exactly as `fraglab snapshot --map`
// writes them for the real machine (common/snapshot_map.h), so `fraglab map`
// draws simulator snapshots with the same code (analysis/pageblock_picture.h).
//
// Per pageblock: the block's migratetype in the modelled kernel's numbering
// (0xff when no page of the block is present), free_pages = pages in free
// buddy blocks (pages cached on per-CPU lists count as used, as they read in
// /proc/kpageflags), and flags: FL_PB_PARTIAL for a block not wholly inside
// its zone, FL_PB_MIXED when an allocated block in it was requested with
// another migratetype than the block's (page_owner's "mixed block" rule).
// FL_PB_ESTIMATED is never set: the simulator knows every type exactly.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "bpf/fraglab_events.h"
#include "common/event_sink.h"
#include "sim/page_allocator.h"

namespace fraglab::sim {

// One zone's pageblocks, from the pageblock containing its first pfn.
struct ZonePageblocks {
  int nid = 0;
  int zone_idx = 0;                        // kernel zone index (ZoneType)
  uint64_t first_pfn = 0;                  // start_pfn rounded down to a pageblock
  std::vector<fl_pageblock_entry> blocks;  // one per pageblock
};

// The map of every zone with present pages, in the allocator's zone order.
// O(pages) time; no allocator state changes.
std::vector<ZonePageblocks> BuildPageblockMap(const PageAllocator& allocator);

// Emits FL_EV_PAGEBLOCK_MAP records of `map` stamped `ts` (per zone, runs of
// at most FL_PB_MAP_MAX_ENTRIES entries, size 40 + 4 * count rounded up to 8),
// on CPU 0. Returns the sink's first error.
[[nodiscard]] absl::Status EmitPageblockMap(const std::vector<ZonePageblocks>& map, uint64_t ts,
                                            EventSink& sink);

// BuildPageblockMap + EmitPageblockMap at the allocator's current time.
[[nodiscard]] absl::Status EmitAllocatorPageblockMap(const PageAllocator& allocator, EventSink& sink);

}  // namespace fraglab::sim
