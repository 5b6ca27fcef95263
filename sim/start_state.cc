#include "sim/start_state.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/snapshot_machine.h"
#include "common/status.h"
#include "sim/pageblock_map.h"

namespace fraglab::sim {
namespace {

// ---------------------------------------------------------------------------
// Collector helpers

bool SameZone(const fl_snapshot_zone& a, int nid, int zone_idx) {
  return a.nid == nid && a.zone_idx == zone_idx;
}

// "6.18.44-foo" -> 618, or -1.
int ReleaseVersion(const std::string& release) {
  int major = 0, minor = 0;
  if (std::sscanf(release.c_str(), "%d.%d", &major, &minor) != 2) return -1;
  return major * 100 + minor;
}

// ---------------------------------------------------------------------------
// Start-state construction

constexpr uint8_t kPgUnavail = 0;  // absent, reserved, or not in the buddy at boot
constexpr uint8_t kPgAvail = 1;    // free at boot, not yet given a role
constexpr uint8_t kPgFree = 2;     // stays free: part of a placed free block
constexpr uint8_t kPgPinned = 3;   // must be allocated: keeps a placed block from merging
constexpr uint8_t kNoType = 0xff;

// Types in the order free blocks are placed: Movable first (most blocks, the
// bulk of the free memory), then the rest.
constexpr MigrateType kPlaceOrder[] = {kMovable, kUnmovable, kReclaimable, kHighAtomic, kCma};
// Non-movable block types in the order they take the lowest blocks when only
// counts are known.
constexpr MigrateType kLowBlockOrder[] = {kUnmovable, kReclaimable, kHighAtomic, kCma};

OwnerKind OwnerForBlock(MigrateType t) {
  switch (t) {
    case kMovable:
    case kCma:
      return OwnerKind::kAnon;
    case kReclaimable:
      return OwnerKind::kSlabReclaimable;
    default:
      return OwnerKind::kKernel;
  }
}

MigrateType RequestTypeForBlock(MigrateType t) {
  switch (t) {
    case kMovable:
    case kCma:
      return kMovable;
    case kReclaimable:
      return kReclaimable;
    default:
      return kUnmovable;
  }
}

// The absent pages of a zone as PageAllocator::Init lays them out: the
// configured holes, or by default the spanned - present pages at the top of
// the zone.
std::vector<PfnRange> ZoneHoles(const ZoneConfig& c) {
  const uint64_t present = c.present ? c.present : c.spanned;
  if (c.holes.empty() && present < c.spanned) {
    return {{c.start_pfn + c.spanned - (c.spanned - present), c.spanned - present}};
  }
  return c.holes;
}

class ZoneLoader {
 public:
  ZoneLoader(PageAllocator& a, int zi, const RecordedZone& rz, const TraceHeader& header, bool use_map,
             ZoneAgreement* agreement, std::vector<std::string>* notes)
      : a_(a), zi_(zi), rz_(rz), header_(header), use_map_(use_map), ag_(*agreement), notes_(*notes) {}

  absl::Status Load();

 private:
  uint64_t Idx(uint64_t pfn) const { return pfn - base_; }
  uint64_t BlockOf(uint64_t pfn) const { return (pfn - base_) / kPageblockPages; }
  bool BlockFullyInZone(uint64_t b) const {
    const uint64_t s = base_ + b * kPageblockPages;
    return s >= start_ && s + kPageblockPages <= end_;
  }
  // Internal type of recorded kernel number n (Isolate -> Movable), or kNoType.
  uint8_t InternalType(int n) const;
  void MarkAvailable();
  void AssignBlockTypes();
  void ComputeTargets(std::array<std::array<uint64_t, kNumMigrateTypes>, kNumOrders>* targets);
  bool TryPlaceInBlock(uint64_t b, int order, bool use_budget);
  bool TryPlacePair(uint64_t b, bool use_budget, int pass_type);
  void MarkPlaced(uint64_t pfn, int order);
  absl::Status PlaceFreeBlocks();
  absl::Status AllocateRest();
  absl::Status ConvertBlocks();

 public:
  // Whether this zone is loaded from a pageblock map (Measure then needs
  // the model's map).
  bool uses_map() const { return use_map_; }
  // Fills the agreement from the loaded zone; `sim_map` is the model's map
  // (BuildPageblockMap), built once for all zones.
  void Measure(const std::vector<ZonePageblocks>& sim_map);

 private:
  PageAllocator& a_;
  const int zi_;
  const RecordedZone& rz_;
  const TraceHeader& header_;
  const bool use_map_;
  ZoneAgreement& ag_;
  std::vector<std::string>& notes_;

  uint64_t start_ = 0, end_ = 0;  // zone span
  uint64_t base_ = 0;             // start rounded down to a pageblock
  uint64_t nblocks_ = 0;
  std::vector<uint8_t> page_;     // kPg* per pfn from base_
  // Per block: its pages that are kPgAvail. A block with fewer than 2^k
  // cannot take a free block of order k, whatever the layout: placement
  // skips it without scanning its pages.
  std::vector<uint16_t> avail_;
  std::vector<uint8_t> target_;   // per block: internal type or kNoType
  std::vector<int32_t> budget_;   // per block: recorded free pages left to place (map only)
  std::vector<uint16_t> cursor_;  // per block and order: next offset to try
  std::vector<std::pair<uint64_t, int>> boot_free_;  // free blocks at boot (pfn, order)
};

uint8_t ZoneLoader::InternalType(int n) const {
  const MigratetypeNumbering& num = a_.numbering();
  if (n < 0 || n >= num.count()) return kNoType;
  MigrateType t = num.FromNumber(n);
  if (t == kIsolate) t = kMovable;  // transient isolation (page reporting, compaction): see docs/replay.md
  return static_cast<uint8_t>(t);
}

void ZoneLoader::MarkAvailable() {
  for (int o = 0; o <= kMaxOrder; ++o) {
    for (int t = 0; t < kNumMigrateTypes; ++t) {
      if (t == kCma && !a_.numbering().with_cma()) continue;
      for (uint64_t pfn : a_.FreeList(zi_, o, static_cast<MigrateType>(t))) {
        boot_free_.emplace_back(pfn, o);
        const uint64_t n = uint64_t{1} << o;
        std::fill(page_.begin() + static_cast<int64_t>(Idx(pfn)), page_.begin() + static_cast<int64_t>(Idx(pfn) + n),
                  kPgAvail);
        // Free blocks are aligned: one of order >= 9 covers whole blocks,
        // a smaller one lies inside a single block.
        for (uint64_t p = pfn; p < pfn + n; p += std::min(n, kPageblockPages)) {
          avail_[BlockOf(p)] += static_cast<uint16_t>(std::min(n, kPageblockPages));
        }
      }
    }
  }
  std::sort(boot_free_.begin(), boot_free_.end());
}

void ZoneLoader::AssignBlockTypes() {
  const fl_snapshot_zone& s = rz_.snapshot;
  if (use_map_) {
    for (uint64_t b = 0; b < nblocks_; ++b) {
      const uint64_t pfn = base_ + b * kPageblockPages;
      if (pfn < rz_.map_first_pfn) continue;
      const uint64_t m = (pfn - rz_.map_first_pfn) / kPageblockPages;
      if (m >= rz_.blocks.size()) continue;
      const fl_pageblock_entry& e = rz_.blocks[m];
      target_[b] = e.migratetype == 0xff ? kNoType : InternalType(e.migratetype);
      budget_[b] = e.free_pages;
    }
    return;
  }
  if (s.flags & FL_SNAP_NO_TYPES) {
    notes_.push_back(absl::StrCat("zone ", ag_.name,
                                  ": no pagetypeinfo in the record; every pageblock stays Movable"));
    return;
  }
  // Counts only: every block starts Movable; the non-movable types take the
  // lowest blocks that lie wholly in the zone, Unmovable first (early kernel
  // allocations come from the lowest pfns, which boot freed first).
  std::array<uint64_t, kNumMigrateTypes> want{};
  for (uint32_t n = 0; n < s.nr_migratetypes && n < FL_MAX_MIGRATETYPES; ++n) {
    const uint8_t t = InternalType(static_cast<int>(n));
    if (t != kNoType) want[t] += s.pageblocks[n];
  }
  for (uint64_t b = 0; b < nblocks_; ++b) target_[b] = kMovable;
  // Candidates: blocks wholly in the zone, those whose pages are all in the
  // buddy first (reserved memblock ranges cannot hold the free blocks the
  // type needs), then partly free ones, then the rest; pfn order within each.
  std::vector<uint64_t> order;
  for (int tier = 0; tier < 3; ++tier) {
    for (uint64_t b = 0; b < nblocks_; ++b) {
      if (!BlockFullyInZone(b)) continue;
      const uint64_t avail = avail_[b];
      const int t = avail == kPageblockPages ? 0 : avail > 0 ? 1 : 2;
      if (t == tier) order.push_back(b);
    }
  }
  size_t next = 0;
  for (MigrateType t : kLowBlockOrder) {
    for (uint64_t k = 0; k < want[t]; ++k) {
      if (next >= order.size()) {
        ag_.pageblocks_unassigned += want[t] - k;
        break;
      }
      target_[order[next++]] = static_cast<uint8_t>(t);
    }
  }
}

void ZoneLoader::ComputeTargets(std::array<std::array<uint64_t, kNumMigrateTypes>, kNumOrders>* targets) {
  const fl_snapshot_zone& s = rz_.snapshot;
  const bool types = !(s.flags & FL_SNAP_NO_TYPES) && s.nr_migratetypes > 0;
  for (int o = 0; o <= kMaxOrder; ++o) {
    auto& row = (*targets)[o];
    row.fill(0);
    uint64_t sum = 0;
    if (types) {
      for (uint32_t n = 0; n < s.nr_migratetypes && n < FL_MAX_MIGRATETYPES; ++n) {
        const uint8_t t = InternalType(static_cast<int>(n));
        if (t == kNoType) continue;
        row[t] += s.free_by_type[o][n];
        sum += s.free_by_type[o][n];
      }
    }
    // The per-order total is buddyinfo's; pagetypeinfo read a moment later
    // (or saturated at 100000) may differ: the difference goes to or comes
    // from the type with the most blocks at this order.
    const uint64_t total = s.nr_free[o];
    if (sum != total) {
      if (types) {
        notes_.push_back(absl::StrFormat("zone %s order %d: pagetypeinfo lists %d free blocks, buddyinfo %d; "
                                         "buddyinfo's total is used",
                                         ag_.name, o, sum, total));
      }
      int best = kMovable;
      for (int t = 0; t < kNumMigrateTypes; ++t)
        if (row[t] > row[best]) best = t;
      if (sum < total) {
        row[best] += total - sum;
      } else {
        uint64_t excess = sum - total;
        while (excess > 0) {
          int big = kMovable;
          for (int t = 0; t < kNumMigrateTypes; ++t)
            if (row[t] > row[big]) big = t;
          const uint64_t take = std::min<uint64_t>(excess, row[big]);
          row[big] -= take;
          excess -= take;
        }
      }
    }
  }
}

void ZoneLoader::MarkPlaced(uint64_t pfn, int order) {
  const uint64_t n = uint64_t{1} << order;
  // Every page of the range was kPgAvail (the callers checked).
  std::fill(page_.begin() + static_cast<int64_t>(Idx(pfn)), page_.begin() + static_cast<int64_t>(Idx(pfn) + n),
            kPgFree);
  for (uint64_t p = pfn; p < pfn + n; p += std::min(n, kPageblockPages)) {
    avail_[BlockOf(p)] -= static_cast<uint16_t>(std::min(n, kPageblockPages));
  }
  if (order < kMaxOrder) {
    // Keep the buddy from ever being wholly free, or the placed block would
    // merge with it (__free_one_page): unless some page of the buddy can
    // never be free (outside the zone, absent, reserved, already pinned),
    // its last page is reserved for allocation.
    const uint64_t buddy = pfn ^ n;
    if (buddy < base_ || buddy + n > base_ + page_.size()) return;
    for (uint64_t p = buddy; p < buddy + n; ++p) {
      if (page_[Idx(p)] == kPgUnavail || page_[Idx(p)] == kPgPinned) return;
    }
    if (page_[Idx(buddy + n - 1)] == kPgAvail) avail_[BlockOf(buddy + n - 1)]--;
    page_[Idx(buddy + n - 1)] = kPgPinned;
  }
}

bool ZoneLoader::TryPlaceInBlock(uint64_t b, int order, bool use_budget) {
  const uint64_t n = uint64_t{1} << order;
  if (use_budget && budget_[b] < static_cast<int32_t>(n)) return false;
  const uint64_t bstart = base_ + b * kPageblockPages;
  uint16_t& cur = cursor_[b * kNumOrders + static_cast<uint64_t>(order)];
  if (avail_[b] < n) {  // no room for 2^order available pages: the scan below would find nothing
    cur = static_cast<uint16_t>(kPageblockPages);
    return false;
  }
  for (uint64_t off = cur; off + n <= kPageblockPages; off += n) {
    const uint64_t pfn = bstart + off;
    bool ok = true;
    for (uint64_t p = pfn; p < pfn + n; ++p) {
      if (page_[Idx(p)] != kPgAvail) {
        ok = false;
        break;
      }
    }
    if (ok && order < kMaxOrder) {
      // A placed free buddy of the same order would merge with this one.
      const uint64_t buddy = pfn ^ n;
      if (buddy >= base_ && buddy < base_ + page_.size() && page_[Idx(buddy)] == kPgFree) ok = false;
    }
    if (!ok) continue;
    MarkPlaced(pfn, order);
    budget_[b] -= static_cast<int32_t>(n);
    cur = static_cast<uint16_t>(off + n);
    return true;
  }
  cur = static_cast<uint16_t>(kPageblockPages);
  return false;
}

// Order 10: the pageblock pair starting at block b (pfn aligned to 2^10).
// pass_type: the type both blocks must have, or -1 for "the same, any".
bool ZoneLoader::TryPlacePair(uint64_t b, bool use_budget, int pass_type) {
  const uint64_t pfn = base_ + b * kPageblockPages;
  if (pfn % (uint64_t{1} << kMaxOrder) != 0 || b + 1 >= nblocks_) return false;
  if (pass_type >= 0 && (target_[b] != pass_type || target_[b + 1] != pass_type)) return false;
  if (pass_type < 0 && target_[b] != target_[b + 1]) return false;
  if (use_budget && (budget_[b] < static_cast<int32_t>(kPageblockPages) ||
                     budget_[b + 1] < static_cast<int32_t>(kPageblockPages))) {
    return false;
  }
  if (avail_[b] < kPageblockPages || avail_[b + 1] < kPageblockPages) return false;
  for (uint64_t p = pfn; p < pfn + (uint64_t{1} << kMaxOrder); ++p) {
    if (page_[Idx(p)] != kPgAvail) return false;
  }
  MarkPlaced(pfn, kMaxOrder);
  budget_[b] -= static_cast<int32_t>(kPageblockPages);
  budget_[b + 1] -= static_cast<int32_t>(kPageblockPages);
  return true;
}

absl::Status ZoneLoader::PlaceFreeBlocks() {
  std::array<std::array<uint64_t, kNumMigrateTypes>, kNumOrders> targets{};
  ComputeTargets(&targets);
  for (int o = kMaxOrder; o >= 0; --o) {
    for (MigrateType t : kPlaceOrder) {
      uint64_t left = targets[o][t];
      if (left == 0) continue;
      // Pass 0 (map only): blocks of type t with recorded free pages left;
      // pass 1: blocks of type t; pass 2: any block (another type's list).
      for (int pass = use_map_ ? 0 : 1; pass <= 2 && left > 0; ++pass) {
        for (uint64_t b = 0; b < nblocks_ && left > 0;) {
          bool placed = false;
          if (o == kMaxOrder) {
            placed = TryPlacePair(b, pass == 0, pass == 2 ? -1 : static_cast<int>(t));
          } else if (pass == 2 || target_[b] == t || (target_[b] == kNoType && t == kMovable)) {
            placed = TryPlaceInBlock(b, o, pass == 0);
          }
          if (placed) {
            --left;
            if (pass == 2) ag_.free_blocks_off_type++;
          } else {
            ++b;
          }
        }
      }
      ag_.free_blocks_unplaced += left;
    }
  }
  return absl::OkStatus();
}

absl::Status ZoneLoader::AllocateRest() {
  // Every page free at boot that was not placed as free is allocated, in
  // aligned chunks of at most a pageblock (one owner per pageblock).
  for (const auto& [head, order] : boot_free_) {
    const uint64_t stop = head + (uint64_t{1} << order);
    uint64_t p = head;
    while (p < stop) {
      if (page_[Idx(p)] == kPgFree) {
        // Most of a real machine's memory can be free: skip placed free
        // pages eight at a time.
        constexpr uint64_t kEightFree = 0x0101010101010101ull * kPgFree;
        for (uint64_t word = 0; p + 8 <= stop; p += 8) {
          std::memcpy(&word, page_.data() + Idx(p), sizeof(word));
          if (word != kEightFree) break;
        }
        while (p < stop && page_[Idx(p)] == kPgFree) ++p;
        continue;
      }
      // The run to allocate ends at the next page placed free.
      const uint8_t* from = page_.data() + Idx(p);
      const void* f = std::memchr(from, kPgFree, stop - p);
      const uint64_t q = f == nullptr ? stop : p + static_cast<uint64_t>(static_cast<const uint8_t*>(f) - from);
      // Allocate [p, q).
      while (p < q) {
        int o = 0;
        while (o < kPageblockOrder && (p & ((uint64_t{2} << o) - 1)) == 0 && p + (uint64_t{2} << o) <= q) ++o;
        const uint8_t bt = target_[BlockOf(p)];
        const MigrateType t = bt == kNoType ? a_.PageblockType(p) : static_cast<MigrateType>(bt);
        absl::Status st = a_.AllocateAt(p, o, OwnerForBlock(t), RequestTypeForBlock(t));
        if (!st.ok()) {
          return absl::InternalError(absl::StrCat("start state: zone ", ag_.name, ": ", st.message()));
        }
        p += uint64_t{1} << o;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ZoneLoader::ConvertBlocks() {
  uint64_t partial = 0;
  for (uint64_t b = 0; b < nblocks_; ++b) {
    if (target_[b] == kNoType) continue;
    const uint64_t pfn = base_ + b * kPageblockPages;
    const MigrateType t = static_cast<MigrateType>(target_[b]);
    if (a_.PageblockType(std::max(pfn, start_)) == t) continue;
    if (!BlockFullyInZone(b)) {
      ++partial;
      continue;
    }
    absl::Status st = a_.ConvertPageblock(pfn, t);
    if (!st.ok()) return absl::InternalError(absl::StrCat("start state: zone ", ag_.name, ": ", st.message()));
  }
  // Converting the halves of a free order-10 block to a type that does not
  // merge across pageblocks (CMA) leaves two order-9 halves (the model splits
  // them like move_freepages_block_isolate); the kernel's CMA area holds them
  // as one order-10 block: take one half and free it again so it merges.
  bool refreed = false;
  for (uint64_t b = 0; b + 1 < nblocks_; ++b) {
    const uint64_t pfn = base_ + b * kPageblockPages;
    if (pfn % (uint64_t{1} << kMaxOrder) != 0 || target_[b] == kNoType ||
        IsMergeable(static_cast<MigrateType>(target_[b])) || target_[b] != target_[b + 1]) {
      continue;
    }
    const PageInfo lo = a_.Page(pfn), hi = a_.Page(pfn + kPageblockPages);
    if (lo.kind != PageInfo::Kind::kFree || hi.kind != PageInfo::Kind::kFree || lo.order != kPageblockOrder ||
        hi.order != kPageblockOrder) {
      continue;
    }
    const MigrateType t = static_cast<MigrateType>(target_[b]);
    absl::Status st = a_.AllocateAt(pfn, kPageblockOrder, OwnerForBlock(t), RequestTypeForBlock(t));
    if (st.ok()) st = a_.Free(pfn, kPageblockOrder, 0);
    if (!st.ok()) return absl::InternalError(absl::StrCat("start state: zone ", ag_.name, ": ", st.message()));
    refreed = true;
  }
  if (refreed) a_.DrainAllPcp();
  if (partial > 0) {
    ag_.pageblocks_unassigned += partial;
    notes_.push_back(absl::StrFormat("zone %s: %d pageblock(s) only partly inside the zone keep the boot type",
                                     ag_.name, partial));
  }
  return absl::OkStatus();
}

void ZoneLoader::Measure(const std::vector<ZonePageblocks>& sim_map) {
  const fl_snapshot_zone& s = rz_.snapshot;
  const MigratetypeNumbering& num = a_.numbering();
  const ZoneStats st = a_.zone_stats(zi_);
  ag_.has_types = !(s.flags & FL_SNAP_NO_TYPES) && s.nr_migratetypes > 0;
  for (int o = 0; o <= kMaxOrder; ++o) {
    ag_.recorded_nr_free[o] = s.nr_free[o];
    ag_.sim_nr_free[o] = st.nr_free[o];
    ag_.recorded_free_pages += s.nr_free[o] << o;
    ag_.sim_free_pages += st.nr_free[o] << o;
    for (uint32_t n = 0; n < s.nr_migratetypes && n < FL_MAX_MIGRATETYPES; ++n) {
      ag_.recorded_free_by_type[o][n] = s.free_by_type[o][n];
    }
    for (int n = 0; n < num.count() && n < FL_MAX_MIGRATETYPES; ++n) {
      ag_.sim_free_by_type[o][n] = a_.FreeCount(zi_, o, num.FromNumber(n));
    }
  }
  for (uint32_t n = 0; n < s.nr_migratetypes && n < FL_MAX_MIGRATETYPES; ++n) {
    ag_.recorded_pageblocks[n] = s.pageblocks[n];
  }
  // Blocks with a present page, by type: what pagetypeinfo counts (the
  // model's PageblockCounts also counts blocks that are wholly holes).
  if (sim_map.empty()) {
    // No map was built (no zone loads one): the same count from the
    // zone's holes, without walking every page.
    const std::vector<PfnRange> holes = ZoneHoles(a_.config().zones[static_cast<size_t>(zi_)]);
    for (uint64_t b = 0; b < nblocks_; ++b) {
      const uint64_t lo = std::max(start_, base_ + b * kPageblockPages);
      const uint64_t hi = std::min(end_, base_ + (b + 1) * kPageblockPages);
      uint64_t absent = 0;
      for (const PfnRange& h : holes) {
        const uint64_t hs = std::max(lo, h.start), he = std::min(hi, h.start + h.count);
        if (hs < he) absent += he - hs;
      }
      if (lo >= hi || absent == hi - lo) continue;
      const int n = num.Number(a_.PageblockType(base_ + b * kPageblockPages));
      if (n >= 0 && n < FL_MAX_MIGRATETYPES) ag_.sim_pageblocks[n]++;
    }
  }
  for (const ZonePageblocks& z : sim_map) {
    if (z.nid != s.nid || z.zone_idx != s.zone_idx) continue;
    for (const fl_pageblock_entry& e : z.blocks)
      if (e.migratetype < FL_MAX_MIGRATETYPES) ag_.sim_pageblocks[e.migratetype]++;
  }
  // Recorded marks include the boost of the moment (min_wmark_pages()); the
  // model's are without it.
  const uint64_t boost = std::min<uint64_t>(s.boost, s.wmark_min);
  ag_.recorded_wmark[0] = s.wmark_min - boost;
  ag_.recorded_wmark[1] = s.wmark_low - boost;
  ag_.recorded_wmark[2] = s.wmark_high - boost;
  ag_.sim_wmark[0] = st.wmark_min;
  ag_.sim_wmark[1] = st.wmark_low;
  ag_.sim_wmark[2] = st.wmark_high;
  if (use_map_) {
    // Compare block by block with the simulator's own map.
    for (const ZonePageblocks& z : sim_map) {
      if (z.nid != s.nid || z.zone_idx != s.zone_idx) continue;
      for (size_t i = 0; i < z.blocks.size(); ++i) {
        const uint64_t pfn = z.first_pfn + i * kPageblockPages;
        if (pfn < rz_.map_first_pfn) continue;
        const uint64_t m = (pfn - rz_.map_first_pfn) / kPageblockPages;
        if (m >= rz_.blocks.size()) continue;
        const fl_pageblock_entry& rec = rz_.blocks[m];
        // A block the map could not type (no online page, or only pages
        // with no flag at all: pcp pages, vmalloc and pipe buffers read as
        // zero) has nothing to compare with.
        if (rec.migratetype == 0xff) continue;
        ag_.map_blocks++;
        // Isolate blocks are loaded as Movable (see InternalType).
        const int rec_type = rec.migratetype == 0xff ? -1 : InternalType(rec.migratetype);
        const int sim_type = z.blocks[i].migratetype == 0xff ? -1 : InternalType(z.blocks[i].migratetype);
        if (rec_type == sim_type) ag_.map_type_equal++;
        const int64_t d = static_cast<int64_t>(z.blocks[i].free_pages) - static_cast<int64_t>(rec.free_pages);
        ag_.map_free_abs_diff += static_cast<uint64_t>(d < 0 ? -d : d);
      }
    }
  }
}

absl::Status ZoneLoader::Load() {
  const ZoneStats st = a_.zone_stats(zi_);
  start_ = st.start_pfn;
  end_ = st.start_pfn + st.spanned;
  base_ = start_ & ~(kPageblockPages - 1);
  nblocks_ = (end_ - base_ + kPageblockPages - 1) / kPageblockPages;
  // Pages up to the end of the last block (outside the zone they stay unavailable).
  page_.assign(nblocks_ * kPageblockPages, kPgUnavail);
  target_.assign(nblocks_, kNoType);
  avail_.assign(nblocks_, 0);
  budget_.assign(nblocks_, 0);
  cursor_.assign(nblocks_ * kNumOrders, 0);
  MarkAvailable();
  AssignBlockTypes();
  RETURN_IF_ERROR(PlaceFreeBlocks());
  RETURN_IF_ERROR(AllocateRest());
  RETURN_IF_ERROR(ConvertBlocks());
  (void)header_;
  return absl::OkStatus();
}

// Holes of a zone from its pageblock map: blocks with no online page
// (type 0xff), clipped to the zone, reconciled with spanned - present.
// Empty when the map says nothing usable (the default placement is used).
std::vector<PfnRange> HolesFromMap(const RecordedZone& rz, uint64_t start, uint64_t end, uint64_t absent) {
  std::vector<PfnRange> holes;
  if (absent == 0) return holes;
  uint64_t total = 0;
  for (size_t i = 0; i < rz.blocks.size(); ++i) {
    if (rz.blocks[i].migratetype != 0xff) continue;
    const uint64_t s = std::max(start, rz.map_first_pfn + i * kPageblockPages);
    const uint64_t e = std::min(end, rz.map_first_pfn + (i + 1) * kPageblockPages);
    if (s >= e) continue;
    if (!holes.empty() && holes.back().start + holes.back().count == s) {
      holes.back().count += e - s;
    } else {
      holes.push_back({s, e - s});
    }
    total += e - s;
  }
  // Too many: give back pages from the highest holes (a block read as absent
  // may still hold a few present pages).
  while (total > absent && !holes.empty()) {
    const uint64_t cut = std::min(total - absent, holes.back().count);
    holes.back().count -= cut;
    total -= cut;
    if (holes.back().count == 0) holes.pop_back();
  }
  // Too few: the rest at the top of the zone, below any hole already there.
  uint64_t need = absent - total;
  uint64_t top = end;
  std::vector<PfnRange> extra;
  for (auto it = holes.rbegin(); need > 0; ++it) {
    const uint64_t floor = it == holes.rend() ? start : it->start + it->count;
    if (top > floor) {
      const uint64_t take = std::min(need, top - floor);
      extra.push_back({top - take, take});
      need -= take;
    }
    if (it == holes.rend()) break;
    top = it->start;
  }
  if (need > 0) return {};
  holes.insert(holes.end(), extra.begin(), extra.end());
  std::sort(holes.begin(), holes.end(), [](const PfnRange& x, const PfnRange& y) { return x.start < y.start; });
  // Merge neighbours.
  std::vector<PfnRange> merged;
  for (const PfnRange& h : holes) {
    if (!merged.empty() && merged.back().start + merged.back().count == h.start) {
      merged.back().count += h.count;
    } else {
      merged.push_back(h);
    }
  }
  return merged;
}

std::string ZoneNameOf(const TraceHeader& h, int nid, int zone_idx) {
  for (const ZoneLayout& z : h.zones)
    if (z.nid == nid && z.zone_idx == zone_idx && !z.name.empty()) return z.name;
  if (zone_idx >= 0 && zone_idx < kNumZoneTypes) return ZoneTypeName(static_cast<ZoneType>(zone_idx));
  return absl::StrCat("zone", zone_idx);
}

}  // namespace

// ---------------------------------------------------------------------------
// StartSnapshotCollector

StartSnapshotCollector::StartSnapshotCollector(TraceHeader header) { start_.header = std::move(header); }

absl::Status StartSnapshotCollector::Emit(const fl_record_header& rec) {
  if (done_) return absl::FailedPreconditionError("start snapshot already complete");
  const uint16_t kind = rec.kind;
  if (!started_ && kind != FL_EV_SNAPSHOT_ZONE) {
    if (kind < FL_EV_KIND_MAX) skipped_[kind]++;
    start_.records++;
    return absl::OkStatus();
  }
  switch (kind) {
    case FL_EV_SNAPSHOT_ZONE: {
      if (rec.size < sizeof(fl_snapshot_zone)) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "snapshot zone record at record %d has size %d, expected %d", start_.records, rec.size,
            sizeof(fl_snapshot_zone)));
      }
      fl_snapshot_zone z;
      std::memcpy(&z, &rec, sizeof(z));
      for (const RecordedZone& have : start_.zones) {
        if (SameZone(have.snapshot, z.nid, z.zone_idx)) {
          done_ = true;  // the second snapshot begins
          return absl::FailedPreconditionError("start snapshot complete");
        }
      }
      if (!started_) start_.ts_ns = rec.ts_ns;
      started_ = true;
      RecordedZone rz;
      rz.snapshot = z;
      start_.zones.push_back(std::move(rz));
      zone_has_map_records_.push_back(false);
      break;
    }
    case FL_EV_PAGEBLOCK_MAP: {
      if (rec.size < sizeof(fl_pageblock_map)) {
        return absl::InvalidArgumentError(
            absl::StrFormat("pageblock map record at record %d is too short (%d bytes)", start_.records, rec.size));
      }
      fl_pageblock_map m;
      std::memcpy(&m, &rec, sizeof(m));
      if (m.count > FL_PB_MAP_MAX_ENTRIES || sizeof(m) + m.count * sizeof(fl_pageblock_entry) > rec.size) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "pageblock map record at record %d: %d entries do not fit in %d bytes", start_.records, m.count, rec.size));
      }
      size_t zi = start_.zones.size();
      for (size_t i = 0; i < start_.zones.size(); ++i) {
        if (SameZone(start_.zones[i].snapshot, m.nid, m.zone_idx)) zi = i;
      }
      if (zi == start_.zones.size()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "pageblock map record at record %d is for node %d zone %d, which the snapshot does not have",
            start_.records, m.nid, m.zone_idx));
      }
      RecordedZone& rz = start_.zones[zi];
      if (!rz.blocks.empty()) {
        const uint64_t expect = rz.map_first_pfn + rz.blocks.size() * kPageblockPages;
        if (m.first_pfn != expect) {
          if (m.first_pfn < expect) {  // a second map of the zone: the start set is over
            done_ = true;
            return absl::FailedPreconditionError("start snapshot complete");
          }
          return absl::InvalidArgumentError(absl::StrFormat(
              "pageblock map record at record %d: node %d zone %d piece starts at pfn %#x, expected %#x",
              start_.records, m.nid, m.zone_idx, m.first_pfn, expect));
        }
      } else {
        rz.map_first_pfn = m.first_pfn;
      }
      const auto* entries =
          reinterpret_cast<const fl_pageblock_entry*>(reinterpret_cast<const uint8_t*>(&rec) + sizeof(m));
      for (uint32_t i = 0; i < m.count; ++i) {
        fl_pageblock_entry e;
        std::memcpy(&e, entries + i, sizeof(e));
        rz.blocks.push_back(e);
      }
      zone_has_map_records_[zi] = true;
      break;
    }
    case FL_EV_COUNTERS:
    case FL_EV_PHASE:
    case FL_EV_DROPS:
      break;
    default:
      done_ = true;
      return absl::FailedPreconditionError("start snapshot complete");
  }
  start_.records++;
  return absl::OkStatus();
}

absl::StatusOr<RecordedStart> StartSnapshotCollector::Finish() const {
  if (!started_) {
    return absl::FailedPreconditionError(
        "the trace has no machine snapshot (FL_EV_SNAPSHOT_ZONE record) to start from; record one with "
        "'fraglab snapshot [--map] -o FILE', or use a trace of 'fraglab run' or 'fraglab trace' "
        "(without --no-snapshots)");
  }
  RecordedStart out = start_;
  out.has_map = true;
  for (const RecordedZone& rz : out.zones) {
    const uint64_t start = rz.snapshot.start_pfn, end = start + rz.snapshot.spanned;
    if (rz.blocks.empty() || rz.map_first_pfn > start ||
        rz.map_first_pfn + rz.blocks.size() * kPageblockPages < end) {
      out.has_map = false;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Machine

absl::StatusOr<MachineConfig> MachineConfigFromStart(const RecordedStart& start, std::vector<std::string>* notes) {
  std::vector<std::string> local;
  std::vector<std::string>& n = notes ? *notes : local;
  MachineConfig c;
  const TraceHeader& h = start.header;
  if (h.pageblock_order != 0 && h.pageblock_order != kPageblockOrder) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the recorded machine has pageblock order %d; the simulator models order %d only", h.pageblock_order,
        kPageblockOrder));
  }
  if (h.page_size != 0 && h.page_size != 4096) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the recorded machine has %d-byte pages; the simulator models 4096-byte pages", h.page_size));
  }
  int max_nid = 0;
  for (const RecordedZone& rz : start.zones) {
    const fl_snapshot_zone& s = rz.snapshot;
    const std::string name = ZoneNameOf(h, s.nid, s.zone_idx);
    if (s.zone_idx < 0 || s.zone_idx >= kNumZoneTypes) {
      n.push_back(absl::StrFormat("node %d zone %s (index %d) is not modelled and was left out", s.nid, name,
                                  s.zone_idx));
      continue;
    }
    if (s.nid < 0 || s.nid > 63) {
      return absl::InvalidArgumentError(absl::StrFormat("zone %s: node %d out of range", name, s.nid));
    }
    if (s.managed == 0 || s.present == 0) {
      n.push_back(absl::StrFormat("node %d zone %s has no managed pages and was left out", s.nid, name));
      continue;
    }
    ZoneConfig z;
    z.node = s.nid;
    z.type = static_cast<ZoneType>(s.zone_idx);
    z.start_pfn = s.start_pfn;
    z.spanned = s.spanned;
    z.present = std::min<uint64_t>(s.present, s.spanned);
    z.managed = std::min<uint64_t>(s.managed, z.present);
    if (z.type != kZoneDma && !rz.blocks.empty()) {
      z.holes = HolesFromMap(rz, s.start_pfn, s.start_pfn + s.spanned, z.spanned - z.present);
    } else if (z.type == kZoneDma && z.spanned > z.present) {
      // x86's DMA hole is the legacy BIOS area below 1 MiB, near the bottom of
      // the zone; at the default place (the top) it would break up the
      // order-10 blocks the zone really has.
      z.holes = {{z.start_pfn, z.spanned - z.present}};
    }
    c.zones.push_back(z);
    max_nid = std::max(max_nid, s.nid);
  }
  if (c.zones.empty()) return absl::InvalidArgumentError("the recorded snapshot has no zone the simulator can model");
  c.nodes = max_nid + 1;
  c.cpus = std::max<int>(1, static_cast<int>(h.nr_cpus));
  if (h.nr_cpus == 0) n.push_back("the trace does not say how many CPUs the machine had; 1 is used");

  std::string era = h.kernel_era;
  if (era.empty()) era = snapshot::KernelEraForRelease(h.kernel_release);
  if (era == "LEGACY") {
    c.era = Era::kLegacy;
  } else if (era == "HYGIENE") {
    c.era = Era::kHygiene;
  } else if (era == "CLAIM") {
    c.era = Era::kClaim;
  } else {
    c.era = Era::kClaim;
    n.push_back(absl::StrCat("kernel release '", h.kernel_release, "' names no era; CLAIM (6.15+) is used"));
  }
  c.with_cma = std::find(h.migratetype_names.begin(), h.migratetype_names.end(), "CMA") != h.migratetype_names.end();
  const int version = ReleaseVersion(h.kernel_release);
  if (version >= 0 && version < 607) c.pcp_tuning = PcpTuning::kStatic;

  // min_free_kbytes: the kernel gives each lowmem zone floor(pages_min *
  // managed / lowmem_managed) (__setup_per_zone_wmarks); find the pages_min
  // that reproduces every recorded min.
  uint64_t lowmem = 0, sum_min = 0;
  int nlow = 0;
  for (const RecordedZone& rz : start.zones) {
    const fl_snapshot_zone& s = rz.snapshot;
    if (s.zone_idx < 0 || s.zone_idx >= kZoneMovable || s.managed == 0) continue;
    lowmem += s.managed;
    sum_min += s.wmark_min - std::min<uint64_t>(s.boost, s.wmark_min);
    ++nlow;
  }
  if (lowmem > 0 && sum_min > 0) {
    uint64_t found = 0;
    for (uint64_t pm = sum_min; pm <= sum_min + static_cast<uint64_t>(nlow) && found == 0; ++pm) {
      bool all = true;
      for (const RecordedZone& rz : start.zones) {
        const fl_snapshot_zone& s = rz.snapshot;
        if (s.zone_idx < 0 || s.zone_idx >= kZoneMovable || s.managed == 0) continue;
        // zoneinfo prints the marks with the boost added (min_wmark_pages()).
        if (static_cast<unsigned __int128>(pm) * s.managed / lowmem != s.wmark_min - std::min<uint64_t>(s.boost, s.wmark_min)) {
          all = false;
        }
      }
      if (all) found = pm;
    }
    if (found == 0) {
      found = sum_min;
      n.push_back(absl::StrFormat("no min_free_kbytes reproduces every recorded min watermark; %d kB is used",
                                  found * 4));
    }
    c.min_free_kbytes = static_cast<int64_t>(found * 4);
  } else {
    n.push_back("the snapshot has no watermarks; min_free_kbytes is the kernel's boot default");
  }
  // watermark_scale_factor: low - min = max(min / 4, managed * factor / 10000).
  std::vector<const fl_snapshot_zone*> scaled;
  for (const RecordedZone& rz : start.zones) {
    const fl_snapshot_zone& s = rz.snapshot;
    if (s.managed == 0 || s.wmark_low < s.wmark_min || s.zone_idx >= kZoneMovable) continue;
    if (s.wmark_low - s.wmark_min > s.wmark_min / 4) scaled.push_back(&s);
  }
  if (!scaled.empty()) {
    int64_t factor = -1;
    for (int64_t f = 1; f <= 3000 && factor < 0; ++f) {
      bool all = true;
      for (const fl_snapshot_zone* s : scaled) {
        if (s->managed * static_cast<uint64_t>(f) / 10000 != s->wmark_low - s->wmark_min) all = false;
      }
      if (all) factor = f;
    }
    if (factor > 0) {
      c.watermark_scale_factor = factor;
    } else {
      n.push_back("no watermark_scale_factor reproduces the recorded low watermarks; 10 is used");
    }
  }
  for (const RecordedZone& rz : start.zones) {
    if (rz.snapshot.boost > 0) {
      n.push_back(absl::StrFormat("zone %s had a watermark boost of %d pages; the simulator starts unboosted",
                                  ZoneNameOf(h, rz.snapshot.nid, rz.snapshot.zone_idx), rz.snapshot.boost));
    }
  }
  n.push_back("sysctls not in the trace (defrag_mode, watermark_boost_factor, THP) take their defaults");
  if (absl::Status st = c.Validate(); !st.ok()) {
    // A hole layout from the map that the model refuses: fall back to the default.
    bool retried = false;
    for (ZoneConfig& z : c.zones) {
      if (!z.holes.empty()) {
        z.holes.clear();
        retried = true;
      }
    }
    if (!retried) return st;
    RETURN_IF_ERROR(c.Validate());
    n.push_back(absl::StrCat("holes from the pageblock map were refused (", st.message(),
                             "); absent pages are placed at the top of each zone"));
  }
  return c;
}

// ---------------------------------------------------------------------------
// Applying the state

uint64_t StartStateReport::FreeBlockOrderDiff() const {
  uint64_t d = 0;
  for (const ZoneAgreement& z : zones) {
    for (int o = 0; o < FL_MAX_ORDERS; ++o) {
      d += z.sim_nr_free[o] > z.recorded_nr_free[o] ? z.sim_nr_free[o] - z.recorded_nr_free[o]
                                                      : z.recorded_nr_free[o] - z.sim_nr_free[o];
    }
  }
  return d;
}

double StartStateReport::PageblockTypeAgreement() const {
  uint64_t match = 0, total = 0;
  for (const ZoneAgreement& z : zones) {
    for (int t = 0; t < FL_MAX_MIGRATETYPES; ++t) {
      match += std::min(z.sim_pageblocks[t], z.recorded_pageblocks[t]);
      total += z.recorded_pageblocks[t];
    }
  }
  return total == 0 ? 1.0 : static_cast<double>(match) / static_cast<double>(total);
}

absl::StatusOr<StartStateReport> ApplyStartState(const RecordedStart& start, PageAllocator& allocator) {
  StartStateReport report;
  report.from_map = start.has_map;
  // Agreements live in report.zones; loaders keep pointers to them, so the
  // vector is sized first and never grows while they work.
  size_t loadable = 0;
  for (const RecordedZone& rz : start.zones) {
    const fl_snapshot_zone& s = rz.snapshot;
    if (!(s.zone_idx < 0 || s.zone_idx >= kNumZoneTypes || s.managed == 0 || s.present == 0)) ++loadable;
  }
  report.zones.reserve(loadable);
  std::vector<std::unique_ptr<ZoneLoader>> loaders;
  for (const RecordedZone& rz : start.zones) {
    const fl_snapshot_zone& s = rz.snapshot;
    if (s.zone_idx < 0 || s.zone_idx >= kNumZoneTypes || s.managed == 0 || s.present == 0) continue;
    const int zi = allocator.FindZone(s.nid, static_cast<ZoneType>(s.zone_idx));
    if (zi < 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "the allocator has no zone for node %d zone index %d of the record", s.nid, s.zone_idx));
    }
    const ZoneStats st = allocator.zone_stats(zi);
    if (st.start_pfn != s.start_pfn || st.spanned != s.spanned) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "zone %s: the allocator spans pfn %#x+%d, the record %#x+%d (build it with MachineConfigFromStart)",
          allocator.ZoneName(zi), st.start_pfn, st.spanned, s.start_pfn, s.spanned));
    }
    report.zones.emplace_back();
    ZoneAgreement& ag = report.zones.back();
    ag.nid = s.nid;
    ag.zone_idx = s.zone_idx;
    ag.name = ZoneNameOf(start.header, s.nid, s.zone_idx);
    loaders.push_back(std::make_unique<ZoneLoader>(allocator, zi, rz, start.header,
                                                   start.has_map && !rz.blocks.empty(), &ag, &report.notes));
    RETURN_IF_ERROR(loaders.back()->Load());
    if (s.flags & FL_SNAP_SATURATED) {
      report.notes.push_back(absl::StrCat("zone ", ag.name, ": some pagetypeinfo counts were saturated (>100000)"));
    }
  }
  // Agreement once every zone is loaded. The model's whole map (a walk over
  // every page) only when some zone compares block by block with a map.
  bool any_map = false;
  for (const auto& l : loaders) any_map |= l->uses_map();
  const std::vector<ZonePageblocks> sim_map = any_map ? BuildPageblockMap(allocator) : std::vector<ZonePageblocks>{};
  for (auto& l : loaders) l->Measure(sim_map);
  bool isolate = false;
  for (const RecordedZone& rz : start.zones) {
    for (uint32_t n = 0; n < rz.snapshot.nr_migratetypes && n < FL_MAX_MIGRATETYPES; ++n) {
      if (n < start.header.migratetype_names.size() && start.header.migratetype_names[n] == "Isolate" &&
          rz.snapshot.pageblocks[n] > 0) {
        isolate = true;
      }
    }
  }
  if (isolate) {
    report.notes.push_back(
        "isolated pageblocks (page reporting, compaction, hotplug in progress) are loaded as Movable");
  }
  return report;
}

std::string FormatStartStateReport(const StartStateReport& report, const std::vector<std::string>& names) {
  std::string out;
  auto type_name = [&](int n) { return n < static_cast<int>(names.size()) ? names[n] : absl::StrCat("type", n); };
  absl::StrAppend(&out, "start state (", report.from_map ? "pageblock map: exact block types" :
                                                         "per-type pageblock counts: placed deterministically",
                  ")\n");
  for (const ZoneAgreement& z : report.zones) {
    std::vector<std::string> rec, sim;
    for (int o = 0; o < FL_MAX_ORDERS; ++o) {
      rec.push_back(absl::StrCat(z.recorded_nr_free[o]));
      sim.push_back(absl::StrCat(z.sim_nr_free[o]));
    }
    absl::StrAppendFormat(&out, "  node %d %-7s free blocks by order  recorded %s\n", z.nid, z.name,
                          absl::StrJoin(rec, " "));
    absl::StrAppendFormat(&out, "  %-14s                       simulated %s\n", "", absl::StrJoin(sim, " "));
    absl::StrAppendFormat(&out, "  %-14s free pages recorded %d, simulated %d\n", "", z.recorded_free_pages,
                          z.sim_free_pages);
    std::vector<std::string> pb;
    for (int t = 0; t < FL_MAX_MIGRATETYPES; ++t) {
      if (z.recorded_pageblocks[t] == 0 && z.sim_pageblocks[t] == 0) continue;
      pb.push_back(absl::StrCat(type_name(t), " ", z.recorded_pageblocks[t], "/", z.sim_pageblocks[t]));
    }
    absl::StrAppendFormat(&out, "  %-14s pageblocks recorded/simulated: %s\n", "",
                          pb.empty() ? "none" : absl::StrJoin(pb, ", "));
    if (z.has_types) {
      uint64_t diff = 0, total = 0;
      for (int o = 0; o < FL_MAX_ORDERS; ++o) {
        for (int t = 0; t < FL_MAX_MIGRATETYPES; ++t) {
          const uint64_t r = z.recorded_free_by_type[o][t], s = z.sim_free_by_type[o][t];
          diff += r > s ? r - s : s - r;
          total += r;
        }
      }
      absl::StrAppendFormat(&out, "  %-14s free blocks per (order, type): %d differ of %d recorded\n", "", diff / 2,
                            total);
    }
    if (z.map_blocks > 0) {
      absl::StrAppendFormat(&out, "  %-14s map: %d of %d blocks of the recorded type, free pages off by %d in total\n",
                            "", z.map_type_equal, z.map_blocks, z.map_free_abs_diff);
    }
    absl::StrAppendFormat(&out, "  %-14s watermarks min/low/high recorded %d/%d/%d, simulated %d/%d/%d\n", "",
                          z.recorded_wmark[0], z.recorded_wmark[1], z.recorded_wmark[2], z.sim_wmark[0],
                          z.sim_wmark[1], z.sim_wmark[2]);
    if (z.free_blocks_off_type + z.free_blocks_unplaced + z.pageblocks_unassigned > 0) {
      absl::StrAppendFormat(&out,
                            "  %-14s residual: %d free blocks on another type's list, %d not placed, %d "
                            "pageblock types not assigned\n",
                            "", z.free_blocks_off_type, z.free_blocks_unplaced, z.pageblocks_unassigned);
    }
  }
  for (const std::string& n : report.notes) absl::StrAppend(&out, "  note: ", n, "\n");
  return out;
}

}  // namespace fraglab::sim
