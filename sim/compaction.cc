// Memory compaction of the page-allocator model (reference §6): the migrate
// and free scanners with cached positions and pageblock skip bits, the
// isolation rules by page owner, migration to isolated free pages, the
// suitability and finish tests, capture, deferral, direct compaction,
// kcompactd and proactive compaction. Kernel function names say which
// routine of mm/compaction.c a piece follows (described in our own words).
//
// struct Zone is private to page_allocator.cc, so this file reads zones
// through zone_stats()/FreeCount() and moves pages through the allocator's
// own operations (AllocateAt for free-page isolation, Free for the pages
// migrated away, GetPageFromFreelist/FinishAlloc for the allocation after
// compaction). It reads the per-page state_/aux_ bytes and the pageblock
// bytes directly; their encoding is restated below and checked by the tests
// through Page().
#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/check.h"
#include "common/status.h"
#include "sim/page_allocator.h"

namespace fraglab::sim {
namespace {

// The per-page encoding of page_allocator.cc: state_ = kind << 6 | order;
// aux_ of an allocated block = owner | requested type << 5; block_ =
// migratetype (3 bits) | the compaction skip bit.
constexpr int kKindShift = 6;
constexpr uint8_t kKindNone = 0;
constexpr uint8_t kKindAlloc = 1;
constexpr uint8_t kKindFree = 2;
constexpr uint8_t kOrderMask = 0x0f;
constexpr uint8_t kOwnerMask = 0x1f;
constexpr uint8_t kBlockSkip = 0x08;  // PB_migrate_skip

constexpr uint8_t KindOf(uint8_t s) { return static_cast<uint8_t>(s >> kKindShift); }
constexpr int OrderOf(uint8_t s) { return s & kOrderMask; }
constexpr uint8_t AllocState(int order) { return static_cast<uint8_t>((kKindAlloc << kKindShift) | order); }

// compact_result (reference §3).
constexpr int kNotSuitableZone = 0;
constexpr int kSkipped = 1;
constexpr int kDeferred = 2;
constexpr int kNoSuitablePage = 3;
constexpr int kContinue = 4;
constexpr int kComplete = 5;
constexpr int kPartialSkipped = 6;
constexpr int kContended = 7;
constexpr int kSuccess = 8;

const char* ResultName(int r) {
  static const char* kNames[] = {"NOT_SUITABLE_ZONE", "SKIPPED",  "DEFERRED",        "NO_SUITABLE_PAGE", "CONTINUE",
                                 "COMPLETE",          "PARTIAL_SKIPPED", "CONTENDED", "SUCCESS"};
  return (r >= 0 && r <= kSuccess) ? kNames[r] : "?";
}

// enum migrate_mode as mm_migrate_pages reports it.
constexpr int kMigrateAsync = 0;
constexpr int kMigrateSyncLight = 1;
constexpr int kMigrateSync = 2;

constexpr int kCompactClusterMax = 32;   // COMPACT_CLUSTER_MAX
constexpr int kMaxDeferShift = 6;        // COMPACT_MAX_DEFER_SHIFT
constexpr uint64_t kProactivePeriodNs = 500'000'000;  // HPAGE_FRAG_CHECK_INTERVAL_MSEC

// The fallback table (§2.4), for the finish test's find_suitable_fallback.
constexpr MigrateType kFallbacks[kNumPcpTypes][2] = {
    {kReclaimable, kMovable},
    {kReclaimable, kUnmovable},
    {kUnmovable, kMovable},
};

// Pageblock type from the pageblock byte (BlockType is inline in
// page_allocator.cc and not visible here).
MigrateType TypeOfBlock(const uint8_t* blocks, uint32_t i) {
  return static_cast<MigrateType>(blocks[i >> kPageblockOrder] & 0x07);
}

uint64_t BlockStart(uint64_t pfn) { return pfn & ~(kPageblockPages - 1); }
uint64_t BlockEnd(uint64_t pfn) { return BlockStart(pfn) + kPageblockPages; }  // pageblock_end_pfn

// Owners whose pages compaction may isolate (isolate_migratepages_block):
// LRU folios (anon; file only when the caller may enter the filesystem) and
// non-LRU pages with movable ops. Pinned anon has extra references and is
// skipped; slab, page tables, pipe and socket buffers, other kernel memory,
// hugetlb (not migrated in this model) and reserved pages never move.
bool OwnerMigratable(OwnerKind k, uint64_t gfp) {
  switch (k) {
    case OwnerKind::kAnon:
    case OwnerKind::kMovableOps:
      return true;
    case OwnerKind::kFile:
      return (gfp & gfp::kFs) != 0;
    default:
      return false;
  }
}

bool OwnerOnLru(OwnerKind k) {
  return k == OwnerKind::kAnon || k == OwnerKind::kFile || k == OwnerKind::kPinned;
}

}  // namespace

// struct compact_control plus the capture_control of direct compaction.
struct PageAllocator::CompactControl {
  int zone = 0;
  int nid = 0;
  int zone_idx = 0;  // zone type index
  uint64_t zone_start = 0, zone_end = 0;
  int order = -1;  // -1: compact_memory / proactive (no finish test)
  uint64_t gfp = gfp::kKernel;
  MigrateType migratetype = kUnmovable;
  uint32_t alloc_flags = alloc::kWmarkMin;
  int highest_zoneidx = 0;
  int mode = kMigrateSyncLight;
  int cpu = 0;
  bool direct_compaction = false;
  bool whole_zone = false;
  bool ignore_skip_hint = false;
  bool ignore_block_suitable = false;
  bool proactive = false;
  bool finish_pageblock = false;
  bool kcompactd = false;
  uint64_t migrate_pfn = 0, free_pfn = 0;
  std::vector<uint64_t> migratepages;  // isolated source blocks, in isolation order
  uint64_t nr_migratepages = 0;        // pages
  std::deque<uint64_t> freepages[kNumOrders];  // isolated free blocks per order
  uint64_t nr_freepages = 0;
  uint64_t total_migrate_scanned = 0, total_free_scanned = 0;
  // Capture (direct compaction only).
  bool capture = false;
  uint64_t captured = kNoPfn;
  std::vector<uint64_t> freed;  // migrated-away pfns since the last drain
};

// ---------------------------------------------------------------------------
// Bookkeeping

void PageAllocator::EnsureCompactionState() {
  if (compact_zones_.size() != static_cast<size_t>(num_zones())) {
    compact_zones_.resize(static_cast<size_t>(num_zones()));
    for (int zi = 0; zi < num_zones(); ++zi) {
      // reset_cached_positions at zone init.
      ZoneStats s = zone_stats(zi);
      CompactionZoneState& c = compact_zones_[zi];
      c.cached_migrate_pfn[0] = c.cached_migrate_pfn[1] = s.start_pfn;
      c.cached_free_pfn = s.spanned ? BlockStart(s.start_pfn + s.spanned - 1) : s.start_pfn;
      c.init_migrate_pfn = s.start_pfn;
      c.init_free_pfn = c.cached_free_pfn;
    }
  }
  if (kcompactd_.size() != static_cast<size_t>(config_.nodes)) {
    kcompactd_.resize(config_.nodes);
    for (KcompactdState& k : kcompactd_) {
      k.highest_zoneidx = kNumZoneTypes - 1;
      k.next_proactive = now_ + kProactivePeriodNs;
    }
  }
}

PageAllocator::CompactionZoneState PageAllocator::compaction_zone_state(int zone) const {
  if (zone >= 0 && static_cast<size_t>(zone) < compact_zones_.size()) return compact_zones_[zone];
  CompactionZoneState c;
  if (zone < 0 || zone >= num_zones()) return c;
  ZoneStats s = zone_stats(zone);
  c.cached_migrate_pfn[0] = c.cached_migrate_pfn[1] = c.init_migrate_pfn = s.start_pfn;
  c.cached_free_pfn = c.init_free_pfn = s.spanned ? BlockStart(s.start_pfn + s.spanned - 1) : s.start_pfn;
  return c;
}

absl::Status PageAllocator::SetCompactionSysctl(const std::string& name, int64_t value) {
  auto range = [&](int64_t lo, int64_t hi) -> absl::Status {
    if (value < lo || value > hi) {
      return absl::InvalidArgumentError(
          absl::StrFormat("sysctl vm.%s = %d: outside %d..%d", name, value, lo, hi));
    }
    return absl::OkStatus();
  };
  if (name == "extfrag_threshold") {
    RETURN_IF_ERROR(range(0, 1000));
    extfrag_threshold_ = static_cast<int>(value);
  } else if (name == "compaction_proactiveness") {
    RETURN_IF_ERROR(range(0, 100));
    compaction_proactiveness_ = static_cast<int>(value);
    // compaction_proactiveness_sysctl_handler: a non-zero write wakes every
    // kcompactd for an immediate proactive check.
    if (value > 0) {
      EnsureCompactionState();
      for (int n = 0; n < config_.nodes; ++n) {
        kcompactd_[n].next_proactive = now_;
        if (sink_) {
          fl_kcompactd e;
          InitRecord(e, FL_EV_KCOMPACTD_WAKEUP, now_, 0);
          e.nid = n;
          e.order = -1;
          e.highest_zoneidx = kNumZoneTypes - 1;
          Emit(e.hdr);
        }
      }
    }
  } else if (name == "compact_unevictable_allowed") {
    RETURN_IF_ERROR(range(0, 1));
    compact_unevictable_allowed_ = static_cast<int>(value);
  } else {
    return absl::InvalidArgumentError(absl::StrFormat(
        "sysctl vm.%s: not a compaction sysctl (extfrag_threshold, compaction_proactiveness, "
        "compact_unevictable_allowed)",
        name));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> PageAllocator::CompactionSysctl(const std::string& name) const {
  if (name == "extfrag_threshold") return extfrag_threshold_;
  if (name == "compaction_proactiveness") return compaction_proactiveness_;
  if (name == "compact_unevictable_allowed") return compact_unevictable_allowed_;
  return absl::InvalidArgumentError(absl::StrFormat("sysctl vm.%s: not a compaction sysctl", name));
}

void PageAllocator::EmitCompactResult(uint16_t kind, int zone, int order, int ret) {
  if (!sink_) return;
  fl_compact_result e;
  InitRecord(e, kind, now_, 0);
  ZoneStats s = zone_stats(zone);
  e.nid = s.node;
  e.zone_idx = s.type;
  e.order = order;
  e.ret = ret;
  Emit(e.hdr);
}

void PageAllocator::EmitDefer(uint16_t kind, int zone, int order) {
  const CompactionZoneState& c = compact_zones_[zone];
  if (narrating()) [[unlikely]] {
    const char* what = kind == FL_EV_COMPACT_DEFERRED ? "compaction deferred (skipped)"
                       : kind == FL_EV_COMPACT_DEFER  ? "compaction failed: defer"
                                                      : "compaction succeeded: defer reset";
    Say({.kind = DecisionKind::kCompactDefer, .zone = zone, .order = order, .order2 = c.order_failed,
         .value = c.considered, .value2 = c.defer_shift,
         .text = absl::StrFormat("zone %s order %d: %s (considered %d, defer_shift %d, order_failed %d)",
                                 ZoneName(zone), order, what, c.considered, c.defer_shift, c.order_failed)});
  }
  if (!sink_) return;
  fl_compact_defer e;
  InitRecord(e, kind, now_, 0);
  ZoneStats s = zone_stats(zone);
  e.nid = s.node;
  e.zone_idx = s.type;
  e.order = order;
  e.considered = c.considered;
  e.defer_shift = static_cast<uint32_t>(c.defer_shift);
  e.order_failed = c.order_failed;
  Emit(e.hdr);
}

// ---------------------------------------------------------------------------
// Deferral (defer_compaction, compaction_deferred, compaction_defer_reset)

void PageAllocator::DeferCompaction(int zone, int order) {
  CompactionZoneState& c = compact_zones_[zone];
  c.considered = 0;
  c.defer_shift = std::min(c.defer_shift + 1, kMaxDeferShift);
  if (order < c.order_failed) c.order_failed = order;
  EmitDefer(FL_EV_COMPACT_DEFER, zone, order);
}

bool PageAllocator::CompactionDeferred(int zone, int order) {
  CompactionZoneState& c = compact_zones_[zone];
  if (order < c.order_failed) return false;
  const uint32_t limit = 1u << c.defer_shift;
  // Avoid possible overflow, as the kernel does.
  if (++c.considered >= limit) {
    c.considered = limit;
    return false;
  }
  EmitDefer(FL_EV_COMPACT_DEFERRED, zone, order);
  return true;
}

void PageAllocator::CompactionDeferReset(int zone, int order, bool alloc_success) {
  CompactionZoneState& c = compact_zones_[zone];
  if (alloc_success) {
    c.considered = 0;
    c.defer_shift = 0;
  }
  if (order >= c.order_failed) c.order_failed = order + 1;
  EmitDefer(FL_EV_COMPACT_DEFER_RESET, zone, order);
}

bool PageAllocator::CompactionRestarting(int zone, int order) const {
  const CompactionZoneState& c = compact_zones_[zone];
  if (order < c.order_failed) return false;
  return c.defer_shift == kMaxDeferShift && c.considered >= (1u << c.defer_shift);
}

// ---------------------------------------------------------------------------
// Indices and suitability

int PageAllocator::FragmentationIndex(int zone, int order) const {
  // fragmentation_index() over the buddy lists (§6), integer arithmetic.
  ZoneStats s = zone_stats(zone);
  uint64_t free_pages = 0, blocks = 0, suitable = 0;
  for (int k = 0; k < kNumOrders; ++k) {
    free_pages += s.nr_free[k] << k;
    blocks += s.nr_free[k];
    if (k >= order) suitable += s.nr_free[k] << (k - order);
  }
  if (blocks == 0) return 0;
  if (suitable > 0) return -1000;
  return 1000 - static_cast<int>((1000 + (free_pages * 1000 >> order)) / blocks);
}

int PageAllocator::FragmentationScoreZone(int zone) const {
  // extfrag_for_order(zone, COMPACTION_HPAGE_ORDER).
  ZoneStats s = zone_stats(zone);
  uint64_t free_pages = 0, suitable = 0;
  for (int k = 0; k < kNumOrders; ++k) {
    free_pages += s.nr_free[k] << k;
    if (k >= kPageblockOrder) suitable += s.nr_free[k] << k;
  }
  if (free_pages == 0) return 0;
  return static_cast<int>((free_pages - suitable) * 100 / free_pages);
}

int PageAllocator::FragmentationScoreNode(int node) const {
  // fragmentation_score_node: each populated zone's score weighted by its
  // present pages over the node's present pages + 1.
  uint64_t node_present = 0;
  for (int zi = 0; zi < num_zones(); ++zi) {
    ZoneStats s = zone_stats(zi);
    if (s.node == node) node_present += s.present;
  }
  uint64_t score = 0;
  for (int zi = 0; zi < num_zones(); ++zi) {
    ZoneStats s = zone_stats(zi);
    if (s.node != node || s.present == 0) continue;
    score += s.present * static_cast<uint64_t>(FragmentationScoreZone(zi)) / (node_present + 1);
  }
  return static_cast<int>(score);
}

int64_t PageAllocator::FreePagesBlocks(int zone) const {
  int64_t n = 0;
  for (int o = kPageblockOrder; o < kNumOrders; ++o) {
    for (int t = 0; t < kNumMigrateTypes; ++t) {
      if (t != kIsolate) n += static_cast<int64_t>(FreeCount(zone, o, static_cast<MigrateType>(t))) << o;
    }
  }
  return n;
}

bool PageAllocator::CompactWatermarkOk(int zone, int order, int64_t mark, int highest, uint32_t alloc_flags,
                                       int64_t free_override) const {
  // __zone_watermark_ok with NR_FREE_PAGES (or the count given), as
  // WatermarkOk computes it.
  ZoneStats s = zone_stats(zone);
  int64_t free_pages = free_override >= 0 ? free_override : static_cast<int64_t>(s.free_pages);
  free_pages -= (int64_t{1} << order) - 1;
  if (!(alloc_flags & alloc::kReserves)) {
    if (config_.era == Era::kLegacy) {
      free_pages -= static_cast<int64_t>(s.nr_reserved_highatomic);
    } else {
      for (int k = 0; k < kNumOrders; ++k)
        free_pages -= static_cast<int64_t>(FreeCount(zone, k, kHighAtomic)) << k;
    }
  }
  int64_t min = mark;
  if (alloc_flags & alloc::kReserves) {
    if (alloc_flags & alloc::kMinReserve) {
      min -= min / 2;
      if (alloc_flags & alloc::kNonBlock) min -= min / 4;
    }
    if (alloc_flags & alloc::kOom) min -= min / 2;
  }
  if (free_pages <= min + static_cast<int64_t>(s.lowmem_reserve[highest])) return false;
  if (order == 0) return true;
  for (int k = order; k < kNumOrders; ++k) {
    for (int t = 0; t < kNumPcpTypes; ++t)
      if (FreeCount(zone, k, static_cast<MigrateType>(t))) return true;
    if ((alloc_flags & (alloc::kHighAtomic | alloc::kOom)) && FreeCount(zone, k, kHighAtomic)) return true;
  }
  return false;
}

int PageAllocator::CompactionSuitAllocationOrder(int zone, int order, int highest, uint32_t alloc_flags,
                                                 bool async, bool kcompactd) {
  // compaction_suit_allocation_order + compaction_suitable (6.15+), or the
  // older compaction_suitable (§6 "Suitability"). Returns SUCCESS (the
  // allocation would already succeed), CONTINUE, SKIPPED or, in the old form
  // before it is folded into SKIPPED, NOT_SUITABLE_ZONE.
  ZoneStats s = zone_stats(zone);
  const uint32_t wm = alloc_flags & alloc::kWmarkMask;
  const int64_t boost = static_cast<int64_t>(s.boost);
  const int64_t marks[3] = {static_cast<int64_t>(s.wmark_min) + boost, static_cast<int64_t>(s.wmark_low) + boost,
                            static_cast<int64_t>(s.wmark_high) + boost};
  const int64_t mark = wm < 3 ? marks[wm] : 0;
  const int64_t gap = int64_t{2} << order;  // compact_gap
  int ret = kContinue;
  // 6.15+ defrag_mode: kcompactd judges the first check by free pages in
  // whole pageblocks.
  const int64_t first_free = (config_.era == Era::kClaim && config_.defrag_mode && kcompactd)
                                 ? FreePagesBlocks(zone)
                                 : -1;
  if (CompactWatermarkOk(zone, order, mark, highest, alloc_flags, first_free)) {
    ret = kSuccess;
    // 6.15+ returns before tracing; the older form traces SUCCESS.
    if (config_.era == Era::kClaim) return ret;
  } else if (config_.era == Era::kClaim) {
    if (order > kCostlyOrder && async && !(alloc_flags & alloc::kCma)) {
      // Costly async requests that may not use CMA first need the caller's
      // mark plus the gap in non-CMA free pages (checked without ALLOC_CMA).
      if (!CompactWatermarkOk(zone, 0, mark + gap, highest, 0)) {
        // Returned before compaction_suitable: not traced.
        return kSkipped;
      }
    }
    // __compaction_suitable, given the caller's mark (not the one above):
    // order-0 pages for the targets beyond it.
    int64_t need = mark + gap;
    if (order > kCostlyOrder) need += static_cast<int64_t>(s.wmark_low) - static_cast<int64_t>(s.wmark_min);
    ret = CompactWatermarkOk(zone, 0, need, highest, alloc::kCma) ? kContinue : kSkipped;
  } else {
    int64_t need = (order > kCostlyOrder ? marks[1] : marks[0]) + gap;
    ret = CompactWatermarkOk(zone, 0, need, highest, alloc::kCma) ? kContinue : kSkipped;
  }
  if (ret == kContinue && order > kCostlyOrder) {
    // A low fragmentation index means the failure is for lack of memory,
    // not fragmentation: compaction would not help.
    int fi = FragmentationIndex(zone, order);
    if (fi >= 0 && fi <= extfrag_threshold_) ret = kNotSuitableZone;
  }
  {
    EmitCompactResult(FL_EV_COMPACT_SUITABLE, zone, order, ret);
    if (narrating()) [[unlikely]] {
      Say({.kind = DecisionKind::kCompactSuitable, .zone = zone, .order = order,
                 .value = static_cast<int64_t>(s.free_pages), .value2 = ret,
                 .text = absl::StrFormat("compaction_suitable(zone %s, order %d): %s (%d free pages, "
                                         "fragmentation index %d, extfrag_threshold %d)",
                                         ZoneName(zone), order, ResultName(ret), s.free_pages,
                                         order > kCostlyOrder ? FragmentationIndex(zone, order) : 0,
                                         extfrag_threshold_)});
    }
  }
  if (ret == kNotSuitableZone) ret = kSkipped;
  return ret;
}

// ---------------------------------------------------------------------------
// Skip bits (__reset_isolation_suitable)

void PageAllocator::ResetIsolationSuitable(int zone) {
  CompactionZoneState& c = compact_zones_[zone];
  if (!c.blockskip_flush) return;
  c.blockskip_flush = false;
  ZoneStats s = zone_stats(zone);
  const uint64_t zstart = s.start_pfn, zend = s.start_pfn + s.spanned;
  // The head of the block covering pfn (PageLRU of a tail page reads its
  // head), or kNoPfn for a page no block covers.
  auto covering = [&](uint64_t pfn) -> uint64_t {
    const uint32_t i = static_cast<uint32_t>(pfn - base_pfn_);
    for (int k = 0; k <= kMaxOrder; ++k) {
      const uint32_t h = i & ~((1u << k) - 1);
      const uint8_t sh = state_[h];
      if (KindOf(sh) == kKindNone) continue;
      if (OrderOf(sh) >= k) return PfnOf(h);
      return kNoPfn;  // a smaller block starts at h, before pfn
    }
    return kNoPfn;
  };
  // __reset_isolation_pfn: clears the skip bit of the block of pfn when a
  // sample (every 8th page) is an LRU page (source) or a free page (target).
  auto reset_pfn = [&](uint64_t pfn, bool check_source, bool check_target) {
    uint64_t bstart = std::max(BlockStart(pfn), zstart);
    uint32_t bi = static_cast<uint32_t>(bstart - base_pfn_);
    uint8_t head = state_[bi];
    if (KindOf(head) == kKindAlloc && OrderOf(head) >= kPageblockOrder) return false;  // persistent skip
    uint8_t& b = block_[bi >> kPageblockOrder];
    if (check_source && check_target && !(b & kBlockSkip)) return true;
    if (!check_source && check_target && TypeOfBlock(block_.get(), bi) != kMovable) return false;
    uint64_t bend = std::min(BlockEnd(pfn), zend);
    for (uint64_t p = bstart; p < bend; p += uint64_t{1} << kCostlyOrder) {
      const uint64_t h = covering(p);
      bool lru = h != kNoPfn && KindOf(state_[h - base_pfn_]) == kKindAlloc &&
                 OwnerOnLru(static_cast<OwnerKind>(aux_[h - base_pfn_] & kOwnerMask));
      bool buddy = KindOf(state_[p - base_pfn_]) == kKindFree;  // PageBuddy: first page only
      if ((check_source && lru) || (check_target && buddy)) {
        b = static_cast<uint8_t>(b & ~kBlockSkip);
        return true;
      }
    }
    return false;
  };
  uint64_t migrate_pfn = zstart, free_pfn = zend - 1;
  uint64_t reset_migrate = free_pfn, reset_free = migrate_pfn;
  bool source_set = false, free_set = false;
  for (; migrate_pfn < free_pfn; migrate_pfn += kPageblockPages, free_pfn -= kPageblockPages) {
    if (reset_pfn(migrate_pfn, true, source_set) && migrate_pfn < reset_migrate) {
      source_set = true;
      reset_migrate = migrate_pfn;
      c.init_migrate_pfn = c.cached_migrate_pfn[0] = c.cached_migrate_pfn[1] = reset_migrate;
    }
    if (reset_pfn(free_pfn, free_set, true) && free_pfn > reset_free) {
      free_set = true;
      reset_free = free_pfn;
      c.init_free_pfn = c.cached_free_pfn = reset_free;
    }
    if (free_pfn < kPageblockPages) break;
  }
  if (reset_migrate >= reset_free) {
    c.cached_migrate_pfn[0] = c.cached_migrate_pfn[1] = migrate_pfn;
    c.cached_free_pfn = free_pfn;
  }
}

void PageAllocator::ResetIsolationSuitableNode(int node) {
  EnsureCompactionState();
  for (int zt = 0; zt < kNumZoneTypes; ++zt) {
    const int zi = FindZone(node, static_cast<ZoneType>(zt));
    if (zi >= 0 && zone_stats(zi).present > 0) ResetIsolationSuitable(zi);
  }
}

// ---------------------------------------------------------------------------
// The migrate scanner (isolate_migratepages, isolate_migratepages_block)

void PageAllocator::IsolateMigratepagesBlock(CompactControl& cc, uint64_t low_pfn, uint64_t end_pfn) {
  const uint64_t start_pfn = low_pfn;
  uint64_t nr_scanned = 0, nr_isolated = 0;
  // Async direct compaction gives up on an order-aligned chunk at its first
  // page that cannot be isolated.
  const bool skip_on_failure = cc.direct_compaction && cc.mode == kMigrateAsync && cc.order > 0;
  const uint64_t chunk = cc.order > 0 ? uint64_t{1} << cc.order : 1;
  uint64_t next_skip_pfn = skip_on_failure ? (low_pfn & ~(chunk - 1)) + chunk : 0;
  for (; low_pfn < end_pfn; ++low_pfn) {
    if (skip_on_failure && low_pfn >= next_skip_pfn) {
      // The previous chunk is done; stop if it gave something to migrate.
      if (nr_isolated) break;
      next_skip_pfn = (low_pfn & ~(chunk - 1)) + chunk;
    }
    ++nr_scanned;
    const uint32_t i = static_cast<uint32_t>(low_pfn - base_pfn_);
    const uint8_t s = state_[i];
    bool fail = true;
    if (KindOf(s) == kKindFree) {
      // Free pages are skipped by their order.
      int o = OrderOf(s);
      low_pfn += (uint64_t{1} << o) - 1;
      nr_scanned += (uint64_t{1} << o) - 1;
      continue;
    }
    if (KindOf(s) == kKindAlloc) {
      const int o = OrderOf(s);
      const OwnerKind owner = static_cast<OwnerKind>(aux_[i] & kOwnerMask);
      // skip_isolation_on_order (6.9+): folios of pageblock order or more,
      // and (except for compact_memory) folios of the target order or more.
      // Before 6.9 (LEGACY era here) every compound page is skipped.
      const bool old_kernel = config_.era == Era::kLegacy;
      if (o > 0 && (old_kernel || o >= kPageblockOrder || (cc.order >= 0 && o >= cc.order))) {
        low_pfn += (uint64_t{1} << o) - 1;
        nr_scanned += (uint64_t{1} << o) - 1;
      } else if (OwnerMigratable(owner, cc.gfp)) {
        cc.migratepages.push_back(low_pfn);
        cc.nr_migratepages += uint64_t{1} << o;
        nr_isolated += uint64_t{1} << o;
        low_pfn += (uint64_t{1} << o) - 1;
        nr_scanned += (uint64_t{1} << o) - 1;
        fail = false;
        if (cc.nr_migratepages >= kCompactClusterMax && !cc.finish_pageblock) {
          ++low_pfn;
          break;
        }
        continue;
      }
    }
    if (fail && skip_on_failure) {
      // isolate_fail: put back what this chunk isolated, go to the next chunk.
      while (!cc.migratepages.empty() && cc.migratepages.back() >= next_skip_pfn - chunk) {
        uint64_t p = cc.migratepages.back();
        uint64_t n = uint64_t{1} << OrderOf(state_[p - base_pfn_]);
        cc.nr_migratepages -= n;
        nr_isolated -= n;
        cc.migratepages.pop_back();
      }
      if (low_pfn < next_skip_pfn) {
        low_pfn = next_skip_pfn - 1;
        next_skip_pfn += chunk;
      }
    }
  }
  if (low_pfn > end_pfn) low_pfn = end_pfn;
  // The whole block scanned with nothing isolated (or rescanned): mark it to
  // be skipped and move the cached position past it.
  if (low_pfn == end_pfn && (nr_isolated == 0 || cc.finish_pageblock)) {
    block_[(start_pfn - base_pfn_) >> kPageblockOrder] |= kBlockSkip;
    // update_cached_migrate: the kernel's pageblock_end_pfn of the block end.
    uint64_t pfn = BlockEnd(low_pfn);
    CompactionZoneState& c = compact_zones_[cc.zone];
    if (pfn > c.cached_migrate_pfn[0]) c.cached_migrate_pfn[0] = pfn;
    if (cc.mode != kMigrateAsync && pfn > c.cached_migrate_pfn[1]) c.cached_migrate_pfn[1] = pfn;
  }
  if (sink_) {
    fl_compact_isolate e;
    InitRecord(e, FL_EV_COMPACT_ISOLATE, now_, static_cast<uint16_t>(cc.cpu));
    e.start_pfn = start_pfn;
    e.end_pfn = low_pfn;
    e.nr_scanned = nr_scanned;
    e.nr_taken = nr_isolated;
    e.which = FL_ISOLATE_MIGRATEPAGES;
    Emit(e.hdr);
  }
  if (narrating() && nr_isolated) [[unlikely]] {
    Say({.kind = DecisionKind::kCompactIsolate, .zone = cc.zone, .pfn = start_pfn, .value = static_cast<int64_t>(nr_scanned),
         .value2 = static_cast<int64_t>(nr_isolated), .yes = false,
         .text = absl::StrFormat("migrate scanner: pfns %#x..%#x, %d scanned, %d pages isolated to move",
                                 start_pfn, low_pfn, nr_scanned, nr_isolated)});
  }
  cc.total_migrate_scanned += nr_scanned;
  if (cc.kcompactd || cc.proactive) vm_events_.compact_daemon_migrate_scanned += nr_scanned;
  vm_events_.compact_isolated += nr_isolated;
  cc.migrate_pfn = low_pfn;
}

int PageAllocator::IsolateMigratepages(CompactControl& cc) {
  // Returns 1 when something was isolated (ISOLATE_SUCCESS), 0 otherwise.
  uint64_t low_pfn = cc.migrate_pfn;
  uint64_t block_start = std::max(BlockStart(low_pfn), cc.zone_start);
  uint64_t block_end = BlockEnd(low_pfn);
  for (; block_end <= cc.free_pfn;
       cc.migrate_pfn = low_pfn = block_end, block_start = block_end, block_end += kPageblockPages) {
    const uint64_t end = std::min(block_end, cc.zone_end);
    const uint32_t bi = static_cast<uint32_t>(block_start - base_pfn_);
    // isolation_suitable, checked once per block.
    if ((low_pfn == BlockStart(low_pfn) || low_pfn == cc.zone_start) && !cc.ignore_skip_hint &&
        (block_[bi >> kPageblockOrder] & kBlockSkip)) {
      continue;
    }
    // suitable_migration_source: a block headed by a pageblock-sized folio
    // never is; async direct compaction only scans blocks of the request's
    // mobility.
    const uint8_t head = state_[static_cast<uint32_t>(BlockStart(block_start) - base_pfn_)];
    bool suitable = !(KindOf(head) == kKindAlloc && OrderOf(head) >= kPageblockOrder);
    if (suitable && cc.mode == kMigrateAsync && cc.direct_compaction) {
      MigrateType bt = TypeOfBlock(block_.get(), bi);
      suitable = cc.migratetype == kMovable ? (bt == kMovable || bt == kCma) : bt == cc.migratetype;
    }
    if (!suitable) {
      uint64_t pfn = BlockEnd(block_end);
      CompactionZoneState& c = compact_zones_[cc.zone];
      if (pfn > c.cached_migrate_pfn[0]) c.cached_migrate_pfn[0] = pfn;
      if (cc.mode != kMigrateAsync && pfn > c.cached_migrate_pfn[1]) c.cached_migrate_pfn[1] = pfn;
      continue;
    }
    IsolateMigratepagesBlock(cc, low_pfn, end);
    break;
  }
  return cc.nr_migratepages ? 1 : 0;
}

// ---------------------------------------------------------------------------
// The free scanner (isolate_freepages, isolate_freepages_block)

int PageAllocator::IsolateFreepagesBlock(CompactControl& cc, uint64_t* start_pfn, uint64_t end_pfn, int stride) {
  uint64_t blockpfn = *start_pfn;
  uint64_t nr_scanned = 0, total_isolated = 0;
  for (; blockpfn < end_pfn; blockpfn += static_cast<uint64_t>(stride)) {
    ++nr_scanned;
    const uint32_t i = static_cast<uint32_t>(blockpfn - base_pfn_);
    const uint8_t s = state_[i];
    if (KindOf(s) == kKindAlloc) {
      // A compound page: skip it whole.
      int o = OrderOf(s);
      blockpfn += (uint64_t{1} << o) - 1;
      nr_scanned += (uint64_t{1} << o) - 1;
      continue;
    }
    if (KindOf(s) != kKindFree) continue;
    const int o = OrderOf(s);
    // __isolate_free_page: the zone must stay above its min watermark
    // (without boost) plus the block.
    ZoneStats zs = zone_stats(cc.zone);
    if (!CompactWatermarkOk(cc.zone, 0, static_cast<int64_t>(zs.wmark_min) + (int64_t{1} << o), 0, alloc::kCma)) {
      break;
    }
    absl::Status st = AllocateAt(blockpfn, o, OwnerKind::kKernel, kMovable);
    FRAGLAB_CHECK_MSG(st.ok(), "compaction isolating free pfn %#llx order %d: %s",
                      static_cast<unsigned long long>(blockpfn), o, std::string(st.message()).c_str());
    // Isolating a large free block hands its pageblock(s) to MOVABLE.
    if (o >= kPageblockOrder - 1) {
      for (uint64_t p = blockpfn; p < blockpfn + (uint64_t{1} << o); p += kPageblockPages) {
        uint32_t pi = static_cast<uint32_t>(p - base_pfn_);
        // set_pageblock_migratetype; without grouping by mobility every
        // PCP type is stored as UNMOVABLE.
        if (IsMergeable(TypeOfBlock(block_.get(), pi)) && !grouping_disabled_) {
          uint8_t& b = block_[pi >> kPageblockOrder];
          b = static_cast<uint8_t>((b & ~0x07) | kMovable);
        }
      }
    }
    const uint64_t isolated = uint64_t{1} << o;
    nr_scanned += isolated - 1;
    total_isolated += isolated;
    cc.nr_freepages += isolated;
    if (config_.era == Era::kLegacy) {
      // Before 6.9 isolated blocks are split into order-0 pages at once
      // (split_map_pages), queued in pfn order.
      for (uint64_t p = blockpfn; p < blockpfn + isolated; ++p) {
        state_[p - base_pfn_] = AllocState(0);
        aux_[p - base_pfn_] = aux_[blockpfn - base_pfn_];
        cc.freepages[0].push_back(p);
      }
    } else {
      cc.freepages[o].push_back(blockpfn);
    }
    if (cc.nr_migratepages <= cc.nr_freepages) {
      blockpfn += isolated;
      break;
    }
    blockpfn += isolated - 1;
  }
  if (blockpfn > end_pfn) blockpfn = end_pfn;
  if (sink_) {
    fl_compact_isolate e;
    InitRecord(e, FL_EV_COMPACT_ISOLATE, now_, static_cast<uint16_t>(cc.cpu));
    e.start_pfn = *start_pfn;
    e.end_pfn = blockpfn;
    e.nr_scanned = nr_scanned;
    e.nr_taken = total_isolated;
    e.which = FL_ISOLATE_FREEPAGES;
    Emit(e.hdr);
  }
  if (narrating() && total_isolated) [[unlikely]] {
    Say({.kind = DecisionKind::kCompactIsolate, .zone = cc.zone, .pfn = *start_pfn,
         .value = static_cast<int64_t>(nr_scanned), .value2 = static_cast<int64_t>(total_isolated), .yes = true,
         .text = absl::StrFormat("free scanner: pfns %#x..%#x, %d scanned, %d free pages isolated as targets",
                                 *start_pfn, blockpfn, nr_scanned, total_isolated)});
  }
  *start_pfn = blockpfn;
  cc.total_free_scanned += nr_scanned;
  if (cc.kcompactd || cc.proactive) vm_events_.compact_daemon_free_scanned += nr_scanned;
  vm_events_.compact_isolated += total_isolated;
  return static_cast<int>(total_isolated);
}

void PageAllocator::IsolateFreepages(CompactControl& cc) {
  uint64_t block_start = BlockStart(cc.free_pfn);
  uint64_t block_end = std::min(block_start + kPageblockPages, cc.zone_end);
  uint64_t isolate_start = cc.free_pfn;
  const uint64_t low_pfn = BlockEnd(cc.migrate_pfn);
  int stride = cc.mode == kMigrateAsync ? kCompactClusterMax : 1;
  // The loop runs while block_start >= low_pfn; unsigned wrap is guarded.
  for (; block_start >= low_pfn && block_start >= cc.zone_start;
       block_end = block_start, block_start -= kPageblockPages, isolate_start = block_start) {
    const uint32_t bi = static_cast<uint32_t>(block_start - base_pfn_);
    bool next = false;
    // suitable_migration_target: not a block headed by a free block of the
    // target order (pageblock order for compact_memory); MOVABLE/CMA only
    // unless SYNC_FULL direct compaction.
    const uint8_t head = state_[bi];
    const int big = cc.order > 0 ? cc.order : kPageblockOrder;
    if (KindOf(head) == kKindFree && OrderOf(head) >= big) next = true;
    if (!next && !cc.ignore_block_suitable) {
      MigrateType bt = TypeOfBlock(block_.get(), bi);
      if (bt != kMovable && bt != kCma) next = true;
    }
    if (!next && !cc.ignore_skip_hint && (block_[bi >> kPageblockOrder] & kBlockSkip)) next = true;
    if (next) {
      if (block_start < kPageblockPages) break;
      continue;
    }
    int nr_isolated = IsolateFreepagesBlock(cc, &isolate_start, block_end, stride);
    if (isolate_start == block_end) {
      // update_pageblock_skip for the free scanner.
      block_[bi >> kPageblockOrder] |= kBlockSkip;
      uint64_t prev = block_start >= kPageblockPages ? block_start - kPageblockPages : 0;
      if (prev < compact_zones_[cc.zone].cached_free_pfn) compact_zones_[cc.zone].cached_free_pfn = prev;
    }
    if (cc.nr_freepages >= cc.nr_migratepages) {
      // Enough: restart at the previous block next time if this one is done.
      if (isolate_start >= block_end) isolate_start = block_start >= kPageblockPages ? block_start - kPageblockPages : 0;
      break;
    } else if (isolate_start < block_end) {
      break;  // isolation stopped early (watermark)
    }
    if (nr_isolated) {
      stride = 1;
    } else {
      stride = std::min(kCompactClusterMax, stride << 1);
    }
    if (block_start < kPageblockPages) {
      isolate_start = 0;
      break;
    }
  }
  cc.free_pfn = isolate_start;
}

// ---------------------------------------------------------------------------
// Migration (migrate_pages with compaction_alloc / compaction_free)

void PageAllocator::TryCapture(CompactControl& cc, uint64_t src) {
  // compaction_capture, checked after the fact: the kernel hands over the
  // block when a freed page's merging reaches the requested order; here, a
  // freed page that now lies in a free buddy of at least that order gives
  // the order-aligned part of it that contains the page. Pages still on a
  // per-CPU list are not in the buddy and cannot be captured (the kernel
  // captures them when the compactor drains its CPU's lists).
  if (!cc.capture || cc.captured != kNoPfn || cc.order <= 0) return;
  const uint64_t chunk = uint64_t{1} << cc.order;
  const uint64_t c = src & ~(chunk - 1);
  for (int k = cc.order; k <= kMaxOrder; ++k) {
    const uint64_t h = src & ~((uint64_t{1} << k) - 1);
    if (h < cc.zone_start) return;
    const uint8_t hs = state_[h - base_pfn_];
    if (KindOf(hs) == kKindNone) continue;
    if (KindOf(hs) != kKindFree || OrderOf(hs) < k) return;
    const MigrateType mt = TypeOfBlock(block_.get(), static_cast<uint32_t>(h - base_pfn_));
    // Never CMA or isolated blocks; a MOVABLE block below pageblock order
    // only for a movable request.
    if (mt == kCma || mt == kIsolate) return;
    if (cc.order < kPageblockOrder && mt == kMovable && cc.migratetype != kMovable) return;
    absl::Status st = AllocateAt(c, cc.order, OwnerKind::kKernel, cc.migratetype);
    FRAGLAB_CHECK_MSG(st.ok(), "capture of pfn %#llx: %s", static_cast<unsigned long long>(c),
                      std::string(st.message()).c_str());
    cc.captured = c;
    // 6.15+ reports a capture from a block of another type as a fallback.
    if (mt != cc.migratetype && config_.era == Era::kClaim) {
      EmitExtfrag(static_cast<uint32_t>(c - base_pfn_), cc.order, cc.order, cc.migratetype, mt, cc.cpu);
    }
    if (narrating()) [[unlikely]] {
      Say({.kind = DecisionKind::kCompactCapture, .zone = cc.zone, .pfn = c, .order = cc.order, .type = Num(mt),
           .text = absl::StrFormat("captured: the freed pages at pfn %#x form an order-%d block that goes "
                                   "straight to the waiting allocation",
                                   c, cc.order)});
    }
    return;
  }
}

bool PageAllocator::MigratePages(CompactControl& cc) {
  // Returns false on -ENOMEM (no target for a source block).
  uint64_t succeeded = 0, failed = 0, thp_succeeded = 0, thp_failed = 0;
  bool enomem = false;
  bool isolated_again = false;
  for (size_t k = 0; k < cc.migratepages.size(); ++k) {
    const uint64_t src = cc.migratepages[k];
    const uint32_t si = static_cast<uint32_t>(src - base_pfn_);
    const int o = OrderOf(state_[si]);
    const uint8_t src_aux = aux_[si];
    // compaction_alloc: the smallest isolated block of at least order o,
    // split down with the upper halves back on the isolated lists.
    int start = o;
    for (;;) {
      while (start < kNumOrders && cc.freepages[start].empty()) ++start;
      if (start < kNumOrders || isolated_again) break;
      IsolateFreepages(cc);
      isolated_again = true;
      start = o;
    }
    if (start >= kNumOrders) {
      // -ENOMEM: this block fails; the rest are put back untried.
      failed += uint64_t{1} << o;
      if (o >= kPageblockOrder) ++thp_failed;
      enomem = true;
      if (narrating()) [[unlikely]] {
        Say({.kind = DecisionKind::kCompactMigrate, .zone = cc.zone, .pfn = src, .order = o, .yes = false,
             .text = absl::StrFormat("no isolated free block of order >= %d left: the %s block at pfn %#x stays",
                                     o, OwnerKindName(static_cast<OwnerKind>(src_aux & kOwnerMask)), src)});
      }
      break;
    }
    uint64_t dst = cc.freepages[start].front();
    cc.freepages[start].pop_front();
    while (start > o) {
      --start;
      uint64_t upper = dst + (uint64_t{1} << start);
      state_[upper - base_pfn_] = AllocState(start);
      aux_[upper - base_pfn_] = static_cast<uint8_t>(OwnerKind::kKernel) | (kMovable << 5);
      cc.freepages[start].push_front(upper);
    }
    cc.nr_freepages -= uint64_t{1} << o;
    // The target becomes the block: same owner, same requested type.
    state_[dst - base_pfn_] = AllocState(o);
    aux_[dst - base_pfn_] = src_aux;
    const OwnerKind owner = static_cast<OwnerKind>(src_aux & kOwnerMask);
    if (narrating()) [[unlikely]] {
      Say({.kind = DecisionKind::kCompactMigrate, .zone = cc.zone, .pfn = src, .order = o,
           .value = static_cast<int64_t>(dst), .yes = true,
           .text = absl::StrFormat("migrate scanner moved the %s %s at pfn %#x to %#x (free scanner's target)",
                                   OwnerKindName(owner), o ? absl::StrCat("order-", o, " block") : "page", src,
                                   dst)});
    }
    if (page_user_ != nullptr) page_user_->OnMigrated(src, dst, o);
    // The old folio is freed as any freed page is.
    absl::Status st = Free(src, o, cc.cpu);
    FRAGLAB_CHECK_MSG(st.ok(), "compaction freeing migrated pfn %#llx: %s", static_cast<unsigned long long>(src),
                      std::string(st.message()).c_str());
    succeeded += uint64_t{1} << o;
    if (o >= kPageblockOrder) ++thp_succeeded;
    if (cc.capture) cc.freed.push_back(src);
    TryCapture(cc, src);
  }
  const uint64_t tried = cc.nr_migratepages;
  cc.migratepages.clear();
  cc.nr_migratepages = 0;
  vm_events_.pgmigrate_success += succeeded;
  vm_events_.pgmigrate_fail += failed;
  if (sink_) {
    fl_migrate_pages m;
    InitRecord(m, FL_EV_MIGRATE_PAGES, now_, static_cast<uint16_t>(cc.cpu));
    m.succeeded = succeeded;
    m.failed = failed;
    m.thp_succeeded = thp_succeeded;
    m.thp_failed = thp_failed;
    m.mode = static_cast<uint32_t>(cc.mode);
    m.reason = 0;  // MR_COMPACTION
    Emit(m.hdr);
    fl_compact_migratepages e;
    InitRecord(e, FL_EV_COMPACT_MIGRATEPAGES, now_, static_cast<uint16_t>(cc.cpu));
    e.nr_migrated = succeeded;
    e.nr_failed = tried - succeeded;
    Emit(e.hdr);
  }
  return !enomem;
}

void PageAllocator::ReleaseFreepages(CompactControl& cc) {
  // release_free_list: unused targets go back as ordinary frees; the free
  // scanner restarts at the highest of them next time.
  uint64_t high = 0;
  for (int o = 0; o < kNumOrders; ++o) {
    for (uint64_t pfn : cc.freepages[o]) {
      high = std::max(high, pfn);
      absl::Status st = Free(pfn, o, cc.cpu);
      FRAGLAB_CHECK_MSG(st.ok(), "compaction releasing free pfn %#llx: %s", static_cast<unsigned long long>(pfn),
                        std::string(st.message()).c_str());
    }
    cc.freepages[o].clear();
  }
  if (cc.nr_freepages > 0) {
    uint64_t free_pfn = BlockStart(high);
    CompactionZoneState& c = compact_zones_[cc.zone];
    if (free_pfn > c.cached_free_pfn) c.cached_free_pfn = free_pfn;
  }
  cc.nr_freepages = 0;
}

// ---------------------------------------------------------------------------
// compact_finished and compact_zone

int PageAllocator::CompactFinished(CompactControl& cc) {
  int ret;
  CompactionZoneState& c = compact_zones_[cc.zone];
  if (BlockStart(cc.free_pfn) <= BlockStart(cc.migrate_pfn)) {
    // The scanners met: the next run starts anew.
    c.cached_migrate_pfn[0] = c.cached_migrate_pfn[1] = cc.zone_start;
    c.cached_free_pfn = BlockStart(cc.zone_end - 1);
    if (cc.direct_compaction) c.blockskip_flush = true;
    ret = cc.whole_zone ? kComplete : kPartialSkipped;
  } else if (cc.proactive) {
    // Proactive compaction runs until the zone's score is at the low mark.
    ret = FragmentationScoreZone(cc.zone) > FragmentationScoreWmark(true) ? kContinue : kSuccess;
  } else if (cc.order < 0) {
    ret = kContinue;
  } else if (cc.migrate_pfn != BlockStart(cc.migrate_pfn)) {
    // Always finish the pageblock being scanned.
    ret = kContinue;
  } else if (config_.era == Era::kClaim && config_.defrag_mode && !cc.direct_compaction) {
    // 6.15+ defrag_mode: kcompactd works until the watermark holds in
    // whole free pageblocks (which can be taken without polluting).
    ZoneStats zs = zone_stats(cc.zone);
    const int64_t high = static_cast<int64_t>(zs.wmark_high + zs.boost);
    ret = CompactWatermarkOk(cc.zone, cc.order, high, cc.highest_zoneidx, cc.alloc_flags, FreePagesBlocks(cc.zone))
              ? kSuccess
              : kContinue;
  } else {
    ret = kNoSuitablePage;
    const MigrateType mt = cc.migratetype;
    for (int o = cc.order; o < kNumOrders && ret == kNoSuitablePage; ++o) {
      if (FreeCount(cc.zone, o, mt)) ret = kSuccess;
      if (numbering_.with_cma() && mt == kMovable && FreeCount(cc.zone, o, kCma)) ret = kSuccess;
      if (ret == kNoSuitablePage && mt < kNumPcpTypes && CanClaim(o, mt)) {
        for (MigrateType f : kFallbacks[mt])
          if (FreeCount(cc.zone, o, f)) ret = kSuccess;
      }
    }
  }
  EmitCompactResult(FL_EV_COMPACT_FINISHED, cc.zone, cc.order, ret);
  if (ret == kNoSuitablePage) ret = kContinue;
  return ret;
}

int PageAllocator::FragmentationScoreWmark(bool low) const {
  // fragmentation_score_wmark: ≤6.12 keeps the low mark at least 5 and a
  // leeway of 10; 6.18 uses min(10, low/2).
  int wmark_low = 100 - compaction_proactiveness_;
  int leeway = 10;
  if (config_.era == Era::kClaim) {
    leeway = std::min(10, wmark_low / 2);
  } else {
    wmark_low = std::max(wmark_low, 5);
  }
  return low ? wmark_low : std::min(wmark_low + leeway, 100);
}

int PageAllocator::CompactZone(CompactControl& cc) {
  EnsureCompactionState();
  ZoneStats zs = zone_stats(cc.zone);
  cc.nid = zs.node;
  cc.zone_idx = zs.type;
  cc.zone_start = zs.start_pfn;
  cc.zone_end = zs.start_pfn + zs.spanned;
  CompactionZoneState& c = compact_zones_[cc.zone];
  int ret;
  if (cc.order >= 0) {
    ret = CompactionSuitAllocationOrder(cc.zone, cc.order, cc.highest_zoneidx, cc.alloc_flags,
                                        cc.mode == kMigrateAsync, !cc.direct_compaction);
    if (ret != kContinue) return ret;
  }
  // Restarting after maximal deferral: forget the skip bits.
  if (CompactionRestarting(cc.zone, cc.order)) ResetIsolationSuitable(cc.zone);
  const int sync = cc.mode != kMigrateAsync ? 1 : 0;
  if (cc.whole_zone) {
    cc.migrate_pfn = cc.zone_start;
    cc.free_pfn = BlockStart(cc.zone_end - 1);
  } else {
    cc.migrate_pfn = c.cached_migrate_pfn[sync];
    cc.free_pfn = c.cached_free_pfn;
    if (cc.free_pfn < cc.zone_start || cc.free_pfn >= cc.zone_end) {
      cc.free_pfn = BlockStart(cc.zone_end - 1);
      c.cached_free_pfn = cc.free_pfn;
    }
    if (cc.migrate_pfn < cc.zone_start || cc.migrate_pfn >= cc.zone_end) {
      cc.migrate_pfn = cc.zone_start;
      c.cached_migrate_pfn[0] = c.cached_migrate_pfn[1] = cc.migrate_pfn;
    }
    if (cc.migrate_pfn <= c.init_migrate_pfn) cc.whole_zone = true;
  }
  uint64_t last_migrated_pfn = 0;
  bool update_cached = !sync && c.cached_migrate_pfn[0] == c.cached_migrate_pfn[1];
  if (sink_) {
    fl_compact_begin_end e;
    InitRecord(e, FL_EV_COMPACT_BEGIN, now_, static_cast<uint16_t>(cc.cpu));
    e.zone_start = cc.zone_start;
    e.migrate_pfn = cc.migrate_pfn;
    e.free_pfn = cc.free_pfn;
    e.zone_end = cc.zone_end;
    e.sync = static_cast<uint32_t>(sync);
    Emit(e.hdr);
  }
  if (narrating()) [[unlikely]] {
    Say({.kind = DecisionKind::kCompactBegin, .zone = cc.zone, .pfn = cc.migrate_pfn, .order = cc.order,
         .value = static_cast<int64_t>(cc.free_pfn), .yes = sync != 0,
         .text = absl::StrFormat("compaction of zone %s for order %d (%s): migrate scanner at pfn %#x, "
                                 "free scanner at pfn %#x",
                                 ZoneName(cc.zone), cc.order,
                                 cc.mode == kMigrateAsync       ? "async"
                                 : cc.mode == kMigrateSyncLight ? "sync-light"
                                                                : "sync",
                                 cc.migrate_pfn, cc.free_pfn)});
  }
  while ((ret = CompactFinished(cc)) == kContinue) {
    const uint64_t iteration_start = cc.migrate_pfn;
    // A block whose migration was tried before is scanned whole this time.
    cc.finish_pageblock = last_migrated_pfn != 0 && BlockStart(last_migrated_pfn) == BlockStart(iteration_start);
    bool rescan = true;
    bool stop = false;
    while (rescan) {
      rescan = false;
      if (!IsolateMigratepages(cc)) {
        if (update_cached) c.cached_migrate_pfn[1] = c.cached_migrate_pfn[0];
        break;
      }
      update_cached = false;
      last_migrated_pfn = std::max(cc.zone_start, BlockStart(cc.migrate_pfn - 1));
      const bool ok = MigratePages(cc);
      if (!ok) {
        if (BlockStart(cc.free_pfn) > BlockStart(cc.migrate_pfn)) {
          ret = kContended;
          stop = true;
        }
        // The scanners met: compact_finished reports it.
      }
      if (stop) break;
      if (cc.capture && cc.captured != kNoPfn) {
        ret = kSuccess;
        stop = true;
      }
    }
    if (stop) break;
    // Left the order-aligned block last migrated from: flush this CPU's
    // lists so the freed pages merge and the finish test can see them.
    if (cc.order > 0 && last_migrated_pfn) {
      uint64_t chunk = uint64_t{1} << cc.order;
      if (last_migrated_pfn < (cc.migrate_pfn & ~(chunk - 1))) {
        if (config_.pcp) {
          DrainCpuPcp(cc.cpu);
          for (uint64_t p : cc.freed) TryCapture(cc, p);
          if (cc.capture && cc.captured != kNoPfn) {
            ret = kSuccess;
            break;
          }
        }
        cc.freed.clear();
        last_migrated_pfn = 0;
      }
    }
  }
  if (cc.nr_migratepages) {
    cc.migratepages.clear();
    cc.nr_migratepages = 0;
  }
  ReleaseFreepages(cc);
  vm_events_.compact_migrate_scanned += cc.total_migrate_scanned;
  vm_events_.compact_free_scanned += cc.total_free_scanned;
  if (sink_) {
    fl_compact_begin_end e;
    InitRecord(e, FL_EV_COMPACT_END, now_, static_cast<uint16_t>(cc.cpu));
    e.zone_start = cc.zone_start;
    e.migrate_pfn = cc.migrate_pfn;
    e.free_pfn = cc.free_pfn;
    e.zone_end = cc.zone_end;
    e.sync = static_cast<uint32_t>(sync);
    e.status = ret;
    Emit(e.hdr);
  }
  if (narrating()) [[unlikely]] {
    Say({.kind = DecisionKind::kCompactEnd, .zone = cc.zone, .order = cc.order, .value = ret,
         .value2 = static_cast<int64_t>(cc.total_migrate_scanned),
         .text = absl::StrFormat("compaction of zone %s ends: %s (%d pages scanned by the migrate scanner, "
                                 "%d by the free scanner)",
                                 ZoneName(cc.zone), ResultName(ret), cc.total_migrate_scanned,
                                 cc.total_free_scanned)});
  }
  return ret;
}

// ---------------------------------------------------------------------------
// Direct compaction (try_to_compact_pages, compact_zone_order)

int PageAllocator::CompactZoneOrder(int zone, const AllocRequest& req, int prio, uint32_t alloc_flags,
                                    int highest, uint64_t* capture) {
  CompactControl cc;
  cc.zone = zone;
  cc.order = req.order;
  cc.gfp = req.gfp;
  cc.migratetype = grouping_disabled_ ? kUnmovable : GfpMigratetype(req.gfp);
  cc.mode = prio == kCompactPrioAsync ? kMigrateAsync : kMigrateSyncLight;
  cc.alloc_flags = alloc_flags;
  cc.highest_zoneidx = highest;
  cc.direct_compaction = true;
  cc.whole_zone = cc.ignore_skip_hint = cc.ignore_block_suitable = prio == kCompactPrioSyncFull;
  cc.cpu = req.cpu;
  cc.capture = true;
  int ret = CompactZone(cc);
  *capture = cc.captured;
  if (cc.captured != kNoPfn) ret = kSuccess;
  return ret;
}

int PageAllocator::TryDirectCompaction(const AllocRequest& req, MigrateType t, int highest, uint32_t alloc_flags,
                                       int prio, uint64_t* page_out) {
  EnsureCompactionState();
  if (page_out) *page_out = kNoPfn;
  // gfp_compaction_allowed: compaction needs __GFP_IO.
  if (!(req.gfp & gfp::kIo) || req.order <= 0) return kSkipped;
  if (sink_) {
    fl_compact_try e;
    InitRecord(e, FL_EV_COMPACT_TRY, now_, static_cast<uint16_t>(req.cpu));
    e.gfp_mask = req.gfp;
    e.order = req.order;
    e.prio = prio;
    Emit(e.hdr);
  }
  int rc = kSkipped;
  uint64_t captured = kNoPfn;
  int captured_zone = -1;
  for (int zi : Zonelist(req.node, highest)) {
    if (prio > kCompactPrioSyncFull && CompactionDeferred(zi, req.order)) {
      rc = std::max(rc, kDeferred);
      continue;
    }
    uint64_t cap = kNoPfn;
    int status = CompactZoneOrder(zi, req, prio, alloc_flags, highest, &cap);
    rc = std::max(rc, status);
    if (cap != kNoPfn) {
      captured = cap;
      captured_zone = zi;
    }
    if (status == kSuccess) {
      // The allocation should succeed here (not certain yet).
      CompactionDeferReset(zi, req.order, false);
      break;
    }
    if (prio != kCompactPrioAsync && (status == kComplete || status == kPartialSkipped)) {
      DeferCompaction(zi, req.order);
    }
  }
  // __alloc_pages_direct_compact.
  if (rc == kSkipped) return rc;
  ++vm_events_.compact_stall;
  uint32_t i = 0xffffffffu;
  int zone = captured_zone;
  if (captured != kNoPfn) {
    // The captured block is already out of the buddy; turn it into the
    // allocation (prep_new_page).
    i = static_cast<uint32_t>(captured - base_pfn_);
  } else {
    uint32_t flags = alloc_flags;
    if ((flags & alloc::kWmarkMask) == alloc::kNoWatermarks) flags &= ~alloc::kWmarkMask;
    i = GetPageFromFreelist(req, t, highest, flags, &zone);
  }
  if (i == 0xffffffffu) {
    ++vm_events_.compact_fail;
    return rc;
  }
  if (zone >= 0) {
    compact_zones_[zone].blockskip_flush = false;
    CompactionDeferReset(zone, req.order, true);
  }
  ++vm_events_.compact_success;
  uint64_t pfn = FinishAlloc(req, t, i);
  if (page_out) *page_out = pfn;
  return rc;
}

bool PageAllocator::CompactionZonelistSuitable(const AllocRequest& req, int highest, uint32_t alloc_flags) const {
  // compaction_zonelist_suitable: free pages plus a share of the
  // reclaimable (file LRU) pages would pass the order-0 check with the gap.
  (void)alloc_flags;
  if (req.order <= 0) return false;
  for (int zi : Zonelist(req.node, highest)) {
    ZoneStats s = zone_stats(zi);
    uint64_t file = 0;
    for (uint64_t pfn = s.start_pfn; pfn < s.start_pfn + s.spanned;) {
      uint8_t st = state_[pfn - base_pfn_];
      if (KindOf(st) == kKindNone) {
        ++pfn;
        continue;
      }
      uint64_t n = uint64_t{1} << OrderOf(st);
      if (KindOf(st) == kKindAlloc && static_cast<OwnerKind>(aux_[pfn - base_pfn_] & kOwnerMask) == OwnerKind::kFile)
        file += n;
      pfn += n;
    }
    const int64_t available = static_cast<int64_t>(file / static_cast<uint64_t>(req.order) + s.free_pages);
    const int64_t gap = int64_t{2} << req.order;
    int64_t mark = static_cast<int64_t>(s.wmark_min + s.boost) + gap;
    if (config_.era == Era::kClaim) {
      if (req.order > kCostlyOrder) mark += static_cast<int64_t>(s.wmark_low) - static_cast<int64_t>(s.wmark_min);
    } else {
      // Older kernels ask __compaction_suitable with the request's flags:
      // an order that already passes reports SUCCESS, not CONTINUE.
      if (CompactWatermarkOk(zi, req.order, static_cast<int64_t>(s.wmark_min + s.boost), highest, alloc_flags))
        continue;
      mark = static_cast<int64_t>((req.order > kCostlyOrder ? s.wmark_low : s.wmark_min) + s.boost) + gap;
    }
    // __zone_watermark_ok at order 0 with `available` free pages.
    int64_t usable = available;
    if (config_.era == Era::kLegacy) {
      usable -= static_cast<int64_t>(s.nr_reserved_highatomic);
    } else {
      for (int k = 0; k < kNumOrders; ++k) usable -= static_cast<int64_t>(FreeCount(zi, k, kHighAtomic)) << k;
    }
    if (usable > mark + static_cast<int64_t>(s.lowmem_reserve[highest])) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Whole-node compaction, kcompactd and proactive compaction

void PageAllocator::CompactNodeInternal(int node, bool proactive) {
  // compact_node: every populated zone, order -1, skip bits ignored.
  EnsureCompactionState();
  for (int zt = 0; zt < kNumZoneTypes; ++zt) {
    int zi = FindZone(node, static_cast<ZoneType>(zt));
    if (zi < 0 || zone_stats(zi).present == 0) continue;
    CompactControl cc;
    cc.zone = zi;
    cc.order = -1;
    cc.mode = proactive ? kMigrateSyncLight : kMigrateSync;
    cc.ignore_skip_hint = true;
    cc.whole_zone = true;
    cc.gfp = gfp::kKernel;
    cc.migratetype = kUnmovable;
    cc.proactive = proactive;
    CompactZone(cc);
  }
}

void PageAllocator::CompactMemory() {
  for (int n = 0; n < config_.nodes; ++n) CompactNodeInternal(n, false);
  MaybeCheck("CompactMemory");
}

absl::Status PageAllocator::CompactNode(int node) {
  if (node < 0 || node >= config_.nodes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("compact node %d: node outside 0..%d", node, config_.nodes - 1));
  }
  CompactNodeInternal(node, false);
  MaybeCheck("CompactNode");
  return absl::OkStatus();
}

void PageAllocator::WakeupKcompactd(int node, int order, int highest_zone_type) {
  EnsureCompactionState();
  if (order <= 0 || node < 0 || node >= config_.nodes) return;
  KcompactdState& k = kcompactd_[node];
  if (k.order < order) k.order = order;
  if (k.highest_zoneidx > highest_zone_type) k.highest_zoneidx = highest_zone_type;
  // kcompactd_node_suitable: some zone up to the class zone where
  // compaction could make progress.
  bool suitable = false;
  for (int zt = 0; zt <= k.highest_zoneidx && !suitable; ++zt) {
    int zi = FindZone(node, static_cast<ZoneType>(zt));
    if (zi < 0 || zone_stats(zi).present == 0) continue;
    uint32_t flags = config_.defrag_mode ? alloc::kWmarkHigh : alloc::kWmarkMin;
    suitable = CompactionSuitAllocationOrder(zi, k.order, k.highest_zoneidx, flags, false, true) == kContinue;
  }
  if (!suitable) return;
  k.pending = true;
  if (sink_) {
    fl_kcompactd e;
    InitRecord(e, FL_EV_KCOMPACTD_WAKEUP, now_, 0);
    e.nid = node;
    e.order = order;
    e.highest_zoneidx = highest_zone_type;
    Emit(e.hdr);
  }
  if (narrating()) [[unlikely]] {
    Say({.kind = DecisionKind::kKcompactd, .order = order, .value = node,
         .text = absl::StrFormat("kcompactd%d woken for order %d (zones up to %s)", node, order,
                                 ZoneTypeName(static_cast<ZoneType>(highest_zone_type)))});
  }
}

void PageAllocator::KcompactdDoWork(int node) {
  KcompactdState& k = kcompactd_[node];
  const int order = k.order;
  const int highest = k.highest_zoneidx;
  if (sink_) {
    fl_kcompactd e;
    InitRecord(e, FL_EV_KCOMPACTD_WAKE, now_, 0);
    e.nid = node;
    e.order = order;
    e.highest_zoneidx = highest;
    Emit(e.hdr);
  }
  if (narrating()) [[unlikely]] {
    Say({.kind = DecisionKind::kKcompactd, .order = order, .value = node,
         .text = absl::StrFormat("kcompactd%d runs for order %d", node, order)});
  }
  ++vm_events_.compact_daemon_wake;
  for (int zt = 0; zt <= highest; ++zt) {
    int zi = FindZone(node, static_cast<ZoneType>(zt));
    if (zi < 0 || zone_stats(zi).present == 0) continue;
    if (CompactionDeferred(zi, order)) continue;
    const uint32_t flags = config_.defrag_mode ? alloc::kWmarkHigh : alloc::kWmarkMin;
    if (CompactionSuitAllocationOrder(zi, order, zt, flags, false, true) != kContinue) continue;
    CompactControl cc;
    cc.zone = zi;
    cc.order = order;
    cc.highest_zoneidx = highest;
    cc.mode = kMigrateSyncLight;
    cc.gfp = gfp::kKernel;
    cc.migratetype = kUnmovable;
    cc.alloc_flags = flags;
    cc.kcompactd = true;
    int status = CompactZone(cc);
    if (status == kSuccess) {
      CompactionDeferReset(zi, order, false);
    } else if (status == kPartialSkipped || status == kComplete) {
      // Pages stranded on per-CPU lists could have merged: drain, defer.
      if (config_.pcp) DrainAllPcp();
      DeferCompaction(zi, order);
    }
  }
  if (k.order <= order) k.order = 0;
  if (k.highest_zoneidx >= highest) k.highest_zoneidx = kNumZoneTypes - 1;
  k.pending = false;
}

void PageAllocator::KcompactdBackground(uint64_t now) {
  EnsureCompactionState();
  const uint64_t saved = now_;
  for (int n = 0; n < config_.nodes; ++n) {
    KcompactdState& k = kcompactd_[n];
    if (k.pending) {
      // A woken kcompactd runs at once; its timeout restarts afterwards.
      KcompactdDoWork(n);
      if (sink_) {
        fl_kcompactd e;
        InitRecord(e, FL_EV_KCOMPACTD_SLEEP, now_, 0);
        e.nid = n;
        Emit(e.hdr);
      }
      k.next_proactive = now_ + kProactivePeriodNs;
    }
    if (compaction_proactiveness_ == 0) {
      // No timeout while proactive compaction is off.
      if (k.next_proactive <= now) k.next_proactive = now + kProactivePeriodNs;
      continue;
    }
    while (k.next_proactive <= now) {
      now_ = std::max(saved, k.next_proactive);
      uint64_t timeout = kProactivePeriodNs;
      // should_proactive_compact_node (kswapd is not running between
      // operations in this model).
      const int score = FragmentationScoreNode(n);
      if (score > FragmentationScoreWmark(false)) {
        if (narrating()) [[unlikely]] {
          Say({.kind = DecisionKind::kKcompactd, .order = -1, .value = n, .value2 = score,
               .text = absl::StrFormat("kcompactd%d: node fragmentation score %d above %d: proactive compaction",
                                       n, score, FragmentationScoreWmark(false))});
        }
        CompactNodeInternal(n, true);
        const int after = FragmentationScoreNode(n);
        // No progress: wait 64 periods before the next check.
        if (after >= score) timeout = kProactivePeriodNs << kMaxDeferShift;
      }
      if (sink_) {
        fl_kcompactd e;
        InitRecord(e, FL_EV_KCOMPACTD_SLEEP, now_, 0);
        e.nid = n;
        Emit(e.hdr);
      }
      k.next_proactive += timeout;
    }
  }
  now_ = saved;
  MaybeCheck("KcompactdBackground");
}

}  // namespace fraglab::sim
