// Pageblock map of physical memory from /proc/kpageflags and /proc/kpagecount
// (root only): every page classified, free blocks reconstructed, each
// pageblock's migratetype estimated from its contents and checked against
// /proc/pagetypeinfo's per-zone counts.
//
// What the kernel exports (fs/proc/page.c, 6.1-6.18): KPF_BUDDY is set on
// *every* page of a free buddy block (heads, and tails through
// is_free_buddy_page), not on pages cached on per-CPU lists. Orders are not
// exported: a maximal run of free pages is split into the largest aligned
// power-of-two blocks (what the buddy allocator's merging produces, except
// where merging stops at pageblock boundaries between Isolate/CMA and other
// blocks) and the result is reconciled with /proc/buddyinfo per order.
// Pages with no flags at all are pcp pages, kernel allocations that carry no
// flag (vmalloc, kernel stacks, driver pages), or memory that is not online
// (holes, unplugged virtio-mem ranges read as 0 on this VM): a pageblock whose
// pages all read 0 is reported as absent, isolated zero pages as "unflagged".
// Pageblock migratetypes are not exported per block; the estimate is a vote
// of the allocated pages' mobility (see EstimateBlockType).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "bpf/fraglab_events.h"
#include "common/event_sink.h"
#include "common/snapshot_machine.h"

namespace fraglab::snapshot {

// Bits of /proc/kpageflags (include/uapi/linux/kernel-page-flags.h).
inline constexpr int kKpfLru = 5;
inline constexpr int kKpfSlab = 7;
inline constexpr int kKpfBuddy = 10;
inline constexpr int kKpfMmap = 11;
inline constexpr int kKpfAnon = 12;
inline constexpr int kKpfSwapcache = 13;
inline constexpr int kKpfCompoundHead = 15;
inline constexpr int kKpfHuge = 17;
inline constexpr int kKpfUnevictable = 18;
inline constexpr int kKpfNoPage = 20;
inline constexpr int kKpfThp = 22;
inline constexpr int kKpfOffline = 23;
inline constexpr int kKpfPgtable = 26;
inline constexpr int kKpfReserved = 32;

enum class PageClass : uint8_t {
  kFree = 0,       // in a free buddy block (KPF_BUDDY)
  kAnon,           // anonymous, not THP
  kFile,           // page cache (LRU or mapped, not anonymous)
  kSlab,
  kPageTable,
  kThp,            // head or tail of a THP / large anonymous or file folio
  kHugetlb,
  kUnevictable,    // mlocked or otherwise unevictable LRU page
  kReserved,       // PG_reserved (memblock, kernel image, zero page ...); no vote
  kOffline,        // PageOffline (balloon, virtio-mem unplugged)
  kKernelOther,    // flags set but none of the above (e.g. mapped driver memory)
  kUnflagged,      // no flag at all: kernel allocation, pcp page, or not online
  kAbsent,         // no page (KPF_NOPAGE) or a pageblock that reads all zero
  kCount,
};
inline constexpr size_t kNumPageClasses = static_cast<size_t>(PageClass::kCount);

// Short lower-case name ("free", "anon", "file", ...).
const char* PageClassName(PageClass c);

// Class of one page from its kpageflags word and kpagecount (mapcount).
PageClass ClassifyPage(uint64_t flags, uint64_t mapcount);

// Mobility an allocated page implies for its pageblock.
enum class Mobility : uint8_t { kNone, kMovable, kUnmovable, kSlab };
Mobility MobilityOf(PageClass c);

// Migratetype numbers of the snapshot's numbering for the three PCP types.
struct TypeNumbers {
  int unmovable = 0;
  int movable = 1;
  int reclaimable = 2;
};
TypeNumbers TypeNumbersFor(const std::vector<std::string>& migratetype_names);

// Counts of one block's in-zone pages by mobility, and the estimate:
// entirely free -> Movable (boot state; page reporting re-types free blocks
// to Movable); otherwise the largest of movable / unmovable-kernel / slab
// pages, ties to Movable, slab-majority -> Reclaimable (most slab is
// reclaimable dentries/inodes; kpageflags cannot tell the two apart);
// no online page -> 0xff. `mixed` when pages of another mobility are present.
struct BlockVote {
  uint32_t movable = 0, unmovable = 0, slab = 0, free = 0, unflagged = 0, absent = 0, in_zone = 0;
};
struct BlockEstimate {
  uint8_t migratetype = 0xff;
  bool mixed = false;
};
BlockEstimate EstimateBlockType(const BlockVote& v, const TypeNumbers& numbers);

struct ZoneMap {
  int nid = 0;
  int zone_idx = 0;
  std::string name;
  uint64_t start_pfn = 0, end_pfn = 0;          // zone span
  uint64_t first_block_pfn = 0;                 // start_pfn rounded down to a pageblock
  std::vector<fl_pageblock_entry> blocks;       // from first_block_pfn, one per pageblock
  std::array<uint64_t, kNumPageClasses> pages_by_class{};
  uint64_t mapped_pages = 0;                    // kpagecount > 0
  uint64_t shared_pages = 0;                    // kpagecount > 1
  std::vector<uint64_t> free_blocks;            // reconstructed free blocks per order
  std::vector<uint64_t> buddyinfo;              // the snapshot's nr_free per order
  int64_t free_residual_pages = 0;              // buddyinfo free pages - reconstructed
  std::vector<uint64_t> estimated_blocks;       // [migratetype] estimated (0xff blocks excluded)
  uint64_t unknown_blocks = 0;                  // blocks with no online page
  std::vector<uint64_t> reported_blocks;        // pagetypeinfo [migratetype]; empty if unread
  // Sum over types of min(estimated, reported) / sum of reported; -1 without pagetypeinfo.
  double type_agreement = -1;
};

struct MachineMap {
  uint64_t monotonic_ns = 0;
  int pageblock_order = 9;
  std::vector<std::string> migratetype_names;
  std::vector<ZoneMap> zones;
  uint64_t pfns_read = 0;
  uint64_t kpagecount_pfns_read = 0;  // read only in 4096-pfn runs holding a KPF_MMAP page:
                                      // a mapcount > 0 implies KPF_MMAP, so elsewhere it is 0
};

// Builds one zone's map from page classes covering [first_pfn, first_pfn +
// classes.size()), which must include the zone's pageblock-aligned span.
// Pure (no I/O): the core of ReadMachineMap, used directly by tests.
// `mapcounts` is empty or parallel to `classes` (kpagecount values).
ZoneMap BuildZoneMap(const ZoneSnapshot& zone, const MachineSnapshot& s, uint64_t first_pfn,
                     absl::Span<const PageClass> classes, absl::Span<const uint64_t> mapcounts = {});

// Reads <root>/proc/kpageflags for every pfn of every zone of `s` (and
// kpagecount where needed) and builds the map. PermissionDenied with a clear
// message when not root.
[[nodiscard]] absl::StatusOr<MachineMap> ReadMachineMap(const MachineSnapshot& s,
                                                        const std::string& root = "/");

// FL_EV_PAGEBLOCK_MAP records, per zone in runs of <= FL_PB_MAP_MAX_ENTRIES
// blocks (hdr.size = 40 + 4 * count rounded up to 8).
[[nodiscard]] absl::Status EmitPageblockMapRecords(const MachineMap& m, EventSink& sink);

// Terminal rendering: per zone a summary, then one character per pageblock,
// `columns` per row prefixed by the row's first pfn: M/U/R (estimated type,
// lower case when mixed), '.' free, ' ' absent; runs of absent rows are
// collapsed. ANSI colours when `color`.
std::string MapText(const MachineMap& m, bool color, int columns = 64);

// JSON object with per-zone summaries and the block strings (no colours).
std::string MapJson(const MachineMap& m, int indent = 2);

}  // namespace fraglab::snapshot
