// Page-allocator model. Section numbers (§) refer to
// shared/reference/kernel-page-allocator.md; kernel function names say which
// kernel routine a piece of code follows (described in our own words).
#include "sim/page_allocator.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/check.h"
#include "common/status.h"

namespace fraglab::sim {
namespace {

// state_ byte: two kind bits and the order.
constexpr uint8_t kKindShift = 6;
constexpr uint8_t kKindNone = 0;
constexpr uint8_t kKindAlloc = 1;
constexpr uint8_t kKindFree = 2;
constexpr uint8_t kKindPcp = 3;
constexpr uint8_t kOrderMask = 0x0f;
constexpr uint8_t MakeState(uint8_t kind, int order) {
  return static_cast<uint8_t>((kind << kKindShift) | order);
}
constexpr uint8_t KindOf(uint8_t s) { return s >> kKindShift; }
constexpr int OrderOf(uint8_t s) { return s & kOrderMask; }

constexpr uint8_t kBlockTypeMask = 0x07;

constexpr int kNumLists = kNumOrders * kNumMigrateTypes;
constexpr int kMaxPcpLists = 14;
constexpr uint32_t kNil = 0xffffffffu;
constexpr int kPcpBatchScaleMax = 5;  // CONFIG_PCP_BATCH_SCALE_MAX

// The fallback table (§2.4): rows for the three PCP types.
constexpr MigrateType kFallbacks[kNumPcpTypes][2] = {
    {kReclaimable, kMovable},    // UNMOVABLE
    {kReclaimable, kUnmovable},  // MOVABLE
    {kUnmovable, kMovable},      // RECLAIMABLE
};

const char* kUpperTypeNames[kNumMigrateTypes] = {"UNMOVABLE", "MOVABLE",  "RECLAIMABLE",
                                                 "HIGHATOMIC", "CMA", "ISOLATE"};

uint64_t RoundDownPow2(uint64_t x) { return x == 0 ? 0 : uint64_t{1} << (63 - std::countl_zero(x)); }

// Lowmem reserve ratios per zone type (sysctl_lowmem_reserve_ratio defaults).
constexpr uint64_t kLowmemRatio[kNumZoneTypes] = {256, 256, 32, 0};

}  // namespace

// ---------------------------------------------------------------------------
// Internal state

struct PageAllocator::Pcp {
  int count = 0;
  int high = 0;
  int high_min = 0;
  int high_max = 0;
  int batch = 1;
  int alloc_factor = 0;   // 6.7+
  int free_factor = 0;    // <= 6.6
  int free_count = 0;     // 6.7+
  bool prev_free_high_order = false;  // PCPF_PREV_FREE_HIGH_ORDER
  uint32_t list_base = 0;  // sentinel of list index 0
};

struct PageAllocator::Zone {
  int node = 0;
  ZoneType type = kZoneNormal;
  uint64_t start_pfn = 0;
  uint64_t end_pfn = 0;
  uint64_t present = 0;
  uint64_t managed = 0;
  uint32_t start = 0;  // index of start_pfn
  uint32_t end = 0;    // index of end_pfn
  uint32_t list_base = 0;
  uint32_t count[kNumOrders][kNumMigrateTypes] = {};
  uint64_t nr_free[kNumOrders] = {};
  uint16_t mask[kNumMigrateTypes] = {};  // bit o: list (o, type) non-empty
  int64_t free_pages = 0;                // NR_FREE_PAGES
  int64_t free_highatomic = 0;           // free pages on HIGHATOMIC lists
  uint64_t wmark[4] = {};                // min, low, high, promo
  uint64_t boost = 0;
  uint64_t lowmem_reserve[kNumZoneTypes] = {};
  uint64_t nr_reserved_highatomic = 0;
  bool boosted_flag = false;  // ZONE_BOOSTED_WATERMARK
  bool below_high = false;    // ZONE_BELOW_HIGH (6.7+)
  std::vector<Pcp> pcp;       // per CPU
};

// ---------------------------------------------------------------------------
// Vocabulary helpers (types.h)

const char* MigratetypeNumbering::Name(int n) const {
  static const char* kNoCma[] = {"Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"};
  static const char* kWithCma[] = {"Unmovable", "Movable", "Reclaimable",
                                   "HighAtomic", "CMA",     "Isolate"};
  if (n < 0 || n >= count()) return "?";
  return cma_ ? kWithCma[n] : kNoCma[n];
}

const char* ZoneTypeName(ZoneType z) {
  switch (z) {
    case kZoneDma: return "DMA";
    case kZoneDma32: return "DMA32";
    case kZoneNormal: return "Normal";
    case kZoneMovable: return "Movable";
  }
  return "?";
}

ZoneType GfpZone(uint64_t g) {
  if (g & gfp::kDma) return kZoneDma;
  if (g & gfp::kDma32) return kZoneDma32;
  if ((g & (gfp::kHighmem | gfp::kMovable)) == (gfp::kHighmem | gfp::kMovable)) return kZoneMovable;
  return kZoneNormal;
}

uint64_t GfpForMigratetype(MigrateType t) {
  switch (t) {
    case kMovable: return gfp::kHighuserMovable;
    case kReclaimable: return gfp::kKernelReclaimable;
    default: return gfp::kKernel;
  }
}

const char* OwnerKindName(OwnerKind k) {
  static const char* kNames[kNumOwnerKinds] = {
      "unknown", "anon",   "file",   "slab_reclaimable", "slab_unmovable",
      "page_table", "pipe", "pinned", "socket", "kernel", "movable_ops", "hugetlb", "reserved"};
  auto i = static_cast<int>(k);
  return i < kNumOwnerKinds ? kNames[i] : "?";
}

// ---------------------------------------------------------------------------
// Construction

PageAllocator::PageAllocator(const MachineConfig& config)
    : config_(config), numbering_(config.with_cma) {}

PageAllocator::~PageAllocator() = default;

absl::StatusOr<std::unique_ptr<PageAllocator>> PageAllocator::Create(const MachineConfig& config,
                                                                     EventSink* sink,
                                                                     Narrator* narrator, ListLinks links) {
  RETURN_IF_ERROR(config.Validate());
  std::unique_ptr<PageAllocator> a(new PageAllocator(config));
  a->links_mode_ = links;
  RETURN_IF_ERROR(a->Init());
  // Boot is not narrated and emits nothing.
  a->sink_ = sink;
  a->narrator_ = narrator;
  return a;
}

absl::Status PageAllocator::Init() {
  const auto& zc = config_.zones;
  uint64_t lo = ~uint64_t{0}, hi = 0;
  for (const auto& z : zc) {
    lo = std::min(lo, z.start_pfn);
    hi = std::max(hi, z.start_pfn + z.spanned);
  }
  base_pfn_ = lo & ~uint64_t{(1u << kMaxOrder) - 1};
  uint64_t top = (hi + (1u << kMaxOrder) - 1) & ~uint64_t{(1u << kMaxOrder) - 1};
  uint64_t pages = top - base_pfn_;
  const int cpus = config_.cpus;
  nr_pcp_lists_ = kNumPcpTypes * (kCostlyOrder + 1) + (config_.thp ? (config_.pcp_thp_split ? 2 : 1) : 0);
  uint64_t sentinels = zc.size() * (kNumLists + static_cast<uint64_t>(cpus) * kMaxPcpLists);
  if (pages + sentinels >= kNil) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "machine covers %d pages (pfn %#x..%#x); the model indexes at most 2^32 - 1 - %d",
        pages, base_pfn_, top, sentinels));
  }
  n_pages_ = static_cast<uint32_t>(pages);
  n_links_ = static_cast<uint32_t>(pages + sentinels);
  links_.Init(links_mode_, n_pages_, n_links_);
  state_.reset(new uint8_t[n_pages_]);
  aux_.reset(new uint8_t[n_pages_]);
  const uint64_t nblocks = pages >> kPageblockOrder;
  block_.reset(new uint8_t[nblocks]);
  std::memset(state_.get(), 0, n_pages_);
  std::memset(aux_.get(), 0, n_pages_);
  // Boot: every pageblock is initialised MOVABLE (§1); with grouping disabled
  // set_pageblock_migratetype turns PCP types into UNMOVABLE.
  uint64_t total_managed = 0;
  for (const auto& z : zc) total_managed += z.managed ? z.managed : (z.present ? z.present : z.spanned);
  // build_all_zonelists: grouping by mobility is off when the pages usable
  // for movable allocations are fewer than one pageblock per migratetype.
  grouping_disabled_ = total_managed < kPageblockPages * static_cast<uint64_t>(numbering_.count());
  std::memset(block_.get(), grouping_disabled_ ? kUnmovable : kMovable, nblocks);

  uint32_t next_sentinel = n_pages_;
  zones_.resize(zc.size());
  for (size_t k = 0; k < zc.size(); ++k) {
    Zone& z = zones_[k];
    const ZoneConfig& c = zc[k];
    z.node = c.node;
    z.type = c.type;
    z.start_pfn = c.start_pfn;
    z.end_pfn = c.start_pfn + c.spanned;
    z.present = c.present ? c.present : c.spanned;
    z.managed = c.managed ? c.managed : z.present;
    z.start = static_cast<uint32_t>(z.start_pfn - base_pfn_);
    z.end = static_cast<uint32_t>(z.end_pfn - base_pfn_);
    z.list_base = next_sentinel;
    next_sentinel += kNumLists;  // each list starts empty (Links::Init)
    z.pcp.resize(cpus);
    for (int cpu = 0; cpu < cpus; ++cpu) {
      z.pcp[cpu].list_base = next_sentinel;
      next_sentinel += kMaxPcpLists;
    }
  }
  zone_by_start_.resize(zones_.size());
  for (size_t k = 0; k < zones_.size(); ++k) zone_by_start_[k] = static_cast<int>(k);
  std::sort(zone_by_start_.begin(), zone_by_start_.end(),
            [&](int a, int b) { return zones_[a].start_pfn < zones_[b].start_pfn; });

  // Lay out absent and reserved pages, then release the managed ones.
  for (size_t k = 0; k < zc.size(); ++k) {
    Zone& z = zones_[k];
    const ZoneConfig& c = zc[k];
    std::vector<PfnRange> holes = c.holes, reserved = c.reserved;
    if (holes.empty() && z.present < c.spanned) {
      holes.push_back({z.end_pfn - (c.spanned - z.present), c.spanned - z.present});
    }
    if (reserved.empty() && z.managed < z.present) {
      // Lowest present pfns.
      uint64_t need = z.present - z.managed;
      uint64_t pfn = z.start_pfn;
      std::vector<PfnRange> sorted_holes = holes;
      std::sort(sorted_holes.begin(), sorted_holes.end(),
                [](const PfnRange& a, const PfnRange& b) { return a.start < b.start; });
      size_t h = 0;
      while (need > 0 && pfn < z.end_pfn) {
        while (h < sorted_holes.size() && sorted_holes[h].start + sorted_holes[h].count <= pfn) ++h;
        if (h < sorted_holes.size() && sorted_holes[h].start <= pfn) {
          pfn = sorted_holes[h].start + sorted_holes[h].count;
          continue;
        }
        uint64_t run_end = h < sorted_holes.size() ? sorted_holes[h].start : z.end_pfn;
        uint64_t n = std::min(need, run_end - pfn);
        reserved.push_back({pfn, n});
        need -= n;
        pfn += n;
      }
    }
    // Mark: 1 = hole, 2 = reserved, using aux_ as scratch (cleared below).
    for (const auto& r : holes)
      for (uint64_t p = r.start; p < r.start + r.count; ++p) aux_[p - base_pfn_] = 1;
    for (const auto& r : reserved)
      for (uint64_t p = r.start; p < r.start + r.count; ++p) aux_[p - base_pfn_] = 2;
    // Walk the zone: reserved runs become allocated blocks owned by
    // kReserved; managed runs are freed in maximal aligned chunks with tail
    // placement, ascending (memblock_free_all -> __free_pages_core).
    uint32_t i = z.start;
    while (i < z.end) {
      uint8_t tag = aux_[i];
      uint32_t j = i;
      while (j < z.end && aux_[j] == tag) ++j;
      // Run [i, j) of one tag.
      uint32_t p = i;
      while (p < j) {
        int o = std::min<int>(kMaxOrder, p == 0 ? kMaxOrder : std::countr_zero(p));
        while ((uint64_t{1} << o) > j - p) --o;
        if (tag == 0) {
          aux_[p] = 0;
          FreeOnePage(z, p, o, BlockType(p), /*to_tail=*/true);
        } else {
          for (uint32_t q = p; q < p + (1u << o); ++q) aux_[q] = 0;
          if (tag == 2) {
            state_[p] = MakeState(kKindAlloc, o);
            aux_[p] = static_cast<uint8_t>(OwnerKind::kReserved);
          }
        }
        p += 1u << o;
      }
      i = j;
    }
  }
  kswapd_.assign(static_cast<size_t>(config_.nodes), KswapdState{});
  zonelists_.resize(static_cast<size_t>(config_.nodes) * kNumZoneTypes);
  for (int node = 0; node < config_.nodes; ++node) {
    for (int highest = 0; highest < kNumZoneTypes; ++highest) {
      auto& zl = zonelists_[static_cast<size_t>(node) * kNumZoneTypes + highest];
      for (int k = 0; k < config_.nodes; ++k) {
        int n = (node + k) % config_.nodes;
        for (int zt = highest; zt >= 0; --zt) {
          int zi = FindZone(n, static_cast<ZoneType>(zt));
          if (zi >= 0 && zones_[zi].managed > 0) zl.push_back(zi);
        }
      }
    }
  }
  SetupWatermarks();
  SetupPcp();
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Watermarks (§5.1) and pcp sizing (§4)

void PageAllocator::SetupWatermarks() {
  int64_t min_free_kbytes =
      config_.min_free_kbytes >= 0 ? config_.min_free_kbytes : DefaultMinFreeKbytes(config_);
  // __setup_per_zone_wmarks: the min watermark is shared among the non-Movable
  // zones in proportion to their managed pages.
  uint64_t pages_min = static_cast<uint64_t>(min_free_kbytes) >> 2;
  uint64_t lowmem = 0;
  for (const Zone& z : zones_)
    if (z.type != kZoneMovable) lowmem += z.managed;
  if (lowmem == 0) lowmem = 1;
  for (Zone& z : zones_) {
    uint64_t share = static_cast<uint64_t>((static_cast<unsigned __int128>(pages_min) * z.managed) / lowmem);
    uint64_t min;
    if (z.type == kZoneMovable) {
      min = std::clamp<uint64_t>(z.managed / 1024, 32, 128);
    } else {
      min = share;
    }
    uint64_t d = std::max<uint64_t>(share >> 2, z.managed * static_cast<uint64_t>(config_.watermark_scale_factor) / 10000);
    z.wmark[0] = min;
    z.wmark[1] = min + d;
    z.wmark[2] = min + 2 * d;
    z.wmark[3] = min + 3 * d;
    z.boost = 0;
  }
  // setup_per_zone_lowmem_reserve: zone i holds back managed(i+1..j)/ratio[i]
  // from requests whose highest zone is j (same node only).
  for (Zone& z : zones_) {
    for (int j = 0; j < kNumZoneTypes; ++j) z.lowmem_reserve[j] = 0;
    uint64_t ratio = kLowmemRatio[z.type];
    if (ratio == 0 || z.managed == 0) continue;
    uint64_t sum = 0;
    for (int j = z.type + 1; j < kNumZoneTypes; ++j) {
      int up = FindZone(z.node, static_cast<ZoneType>(j));
      if (up >= 0) sum += zones_[up].managed;
      z.lowmem_reserve[j] = sum / ratio;
    }
  }
}

void PageAllocator::SetupPcp() {
  for (Zone& z : zones_) {
    // zone_batchsize: about a quarter of a MiB-per-GiB of the zone, at most
    // 64 pages, rounded to 2^n - 1 to avoid cache aliasing.
    int64_t b = static_cast<int64_t>(std::min<uint64_t>(z.managed >> 10, 256)) / 4;
    if (b < 1) b = 1;
    b = static_cast<int64_t>(RoundDownPow2(static_cast<uint64_t>(b + b / 2))) - 1;
    int batch = static_cast<int>(std::max<int64_t>(1, b));
    int ncpus = 0;
    for (int c = 0; c < config_.cpus; ++c)
      if (config_.NodeOfCpu(c) == z.node) ++ncpus;
    if (ncpus == 0) ncpus = config_.cpus;
    auto highsize = [&](int64_t fraction) {
      uint64_t total = fraction ? z.managed / static_cast<uint64_t>(fraction) : z.wmark[1];
      int64_t high = static_cast<int64_t>(total / static_cast<uint64_t>(ncpus));
      return static_cast<int>(std::max<int64_t>(high, int64_t{batch} << 2));
    };
    int high_min = highsize(config_.percpu_pagelist_high_fraction);
    int high_max = config_.percpu_pagelist_high_fraction ? high_min : highsize(8);
    for (Pcp& p : z.pcp) {
      p.batch = batch;
      if (config_.pcp_tuning == PcpTuning::kStatic) {
        p.high = p.high_min = p.high_max = high_min;
      } else {
        p.high_min = high_min;
        p.high_max = high_max;
        p.high = high_min;
      }
    }
  }
}

int64_t PageAllocator::UnusableFree(const Zone& z, int order, uint32_t flags) const {
  // __zone_watermark_unusable_free: the request's own 2^order - 1 pages, and
  // HIGHATOMIC reserves unless the request may use them.
  int64_t unusable = (int64_t{1} << order) - 1;
  if (!(flags & alloc::kReserves)) {
    unusable += config_.era == Era::kLegacy ? static_cast<int64_t>(z.nr_reserved_highatomic)
                                            : z.free_highatomic;
  }
  return unusable;
}

bool PageAllocator::WatermarkOk(const Zone& z, int order, int64_t mark, int highest, uint32_t flags,
                                int64_t free_pages) const {
  // __zone_watermark_ok (§5.1).
  int64_t min = mark;
  free_pages -= UnusableFree(z, order, flags);
  if (flags & alloc::kReserves) {
    if (flags & alloc::kMinReserve) {
      min -= min / 2;
      if (flags & alloc::kNonBlock) min -= min / 4;
    }
    if (flags & alloc::kOom) min -= min / 2;
  }
  if (free_pages <= min + static_cast<int64_t>(z.lowmem_reserve[highest])) return false;
  if (order == 0) return true;
  // A free block of at least `order` must exist on a list the request may use.
  for (int o = order; o < kNumOrders; ++o) {
    if (z.nr_free[o] == 0) continue;
    for (int t = 0; t < kNumPcpTypes; ++t)
      if (z.count[o][t]) return true;
    if ((flags & (alloc::kHighAtomic | alloc::kOom)) && z.count[o][kHighAtomic]) return true;
  }
  return false;
}

bool PageAllocator::WatermarkFast(const Zone& z, int order, int64_t mark, int highest,
                                  uint32_t flags) const {
  // zone_watermark_fast: order-0 shortcut, the full check, then a second
  // chance without boost for __GFP_HIGH order-0 requests at the MIN mark.
  int64_t free_pages = z.free_pages;
  if (order == 0) {
    int64_t usable = free_pages;
    int64_t reserved = UnusableFree(z, 0, flags);
    usable -= std::min(usable, reserved);
    if (usable > mark + static_cast<int64_t>(z.lowmem_reserve[highest])) return true;
  }
  if (WatermarkOk(z, order, mark, highest, flags, free_pages)) return true;
  if (order == 0 && (flags & alloc::kMinReserve) && z.boost &&
      (flags & alloc::kWmarkMask) == alloc::kWmarkMin) {
    return WatermarkOk(z, order, static_cast<int64_t>(z.wmark[0]), highest, flags, free_pages);
  }
  return false;
}

int64_t PageAllocator::Mark(const Zone& z, uint32_t flags) const {
  return static_cast<int64_t>(z.wmark[flags & alloc::kWmarkMask] + z.boost);
}

// ---------------------------------------------------------------------------
// List primitives

void PageAllocator::Links::Init(ListLinks mode, uint32_t first_sentinel, uint32_t n_links) {
  chunked_ = mode == ListLinks::kChunked;
  n_links_ = n_links;
  if (chunked_) {
    dir_.assign((size_t{n_links} + kChunkPages - 1) >> kChunkShift, kNoChunk);
    pool_.clear();
  } else {
    flat_.reset(new Link[n_links]);  // default-initialised: not touched
  }
  for (uint32_t s = first_sentinel; s < n_links; ++s) Insert(s, s, s);
}

void PageAllocator::Links::NewChunk(uint32_t i) {
  dir_[i >> kChunkShift] = static_cast<uint32_t>(pool_.size());
  pool_.resize(pool_.size() + kChunkPages);
}

size_t PageAllocator::Links::MemoryBytes() const {
  if (!chunked_) return size_t{n_links_} * sizeof(Link);
  return dir_.capacity() * sizeof(uint32_t) + pool_.capacity() * sizeof(Link);
}

inline void PageAllocator::LinkHead(uint32_t s, uint32_t i) {
  const uint32_t n = links_.Next(s);
  links_.Insert(i, n, s);
  links_.SetPrev(n, i);
  links_.SetNext(s, i);
}

inline void PageAllocator::LinkTail(uint32_t s, uint32_t i) {
  const uint32_t p = links_.Prev(s);
  links_.Insert(i, s, p);
  links_.SetNext(p, i);
  links_.SetPrev(s, i);
}

inline void PageAllocator::Unlink(uint32_t i) {
  const uint32_t n = links_.Next(i), p = links_.Prev(i);
  links_.SetNext(p, n);
  links_.SetPrev(n, p);
}

inline uint32_t PageAllocator::ListSentinel(const Zone& z, int order, int type) const {
  return z.list_base + static_cast<uint32_t>(order * kNumMigrateTypes + type);
}

inline MigrateType PageAllocator::BlockType(uint32_t i) const {
  return static_cast<MigrateType>(block_[i >> kPageblockOrder] & kBlockTypeMask);
}

inline void PageAllocator::SetBlockType(uint32_t i, MigrateType t) {
  // set_pageblock_migratetype: without grouping every PCP type is UNMOVABLE.
  if (grouping_disabled_ && t < kNumPcpTypes) t = kUnmovable;
  uint8_t& b = block_[i >> kPageblockOrder];
  b = static_cast<uint8_t>((b & ~kBlockTypeMask) | t);
}

void PageAllocator::ChangeBlockRange(uint32_t i, int order, MigrateType t) {
  // change_pageblock_range: every pageblock of an order >= 9 block.
  uint32_t n = order >= kPageblockOrder ? 1u << (order - kPageblockOrder) : 1u;
  for (uint32_t b = 0; b < n; ++b) SetBlockType(i + (b << kPageblockOrder), t);
}

inline void PageAllocator::AddFree(Zone& z, uint32_t i, int order, MigrateType t, bool tail) {
  state_[i] = MakeState(kKindFree, order);
  aux_[i] = t;
  uint32_t s = ListSentinel(z, order, t);
  if (tail) {
    LinkTail(s, i);
  } else {
    LinkHead(s, i);
  }
  if (z.count[order][t]++ == 0) z.mask[t] |= static_cast<uint16_t>(1u << order);
  z.nr_free[order]++;
  // account_freepages: isolated pages are not free for watermark purposes.
  if (t != kIsolate) z.free_pages += int64_t{1} << order;
  if (t == kHighAtomic) z.free_highatomic += int64_t{1} << order;
}

inline void PageAllocator::DelFree(Zone& z, uint32_t i) {
  DelFreeKnown(z, i, OrderOf(state_[i]), static_cast<MigrateType>(aux_[i]));
}

inline void PageAllocator::DelFreeKnown(Zone& z, uint32_t i, int order, MigrateType t) {
  Unlink(i);
  state_[i] = 0;
  if (--z.count[order][t] == 0) z.mask[t] &= static_cast<uint16_t>(~(1u << order));
  z.nr_free[order]--;
  if (t != kIsolate) z.free_pages -= int64_t{1} << order;
  if (t == kHighAtomic) z.free_highatomic -= int64_t{1} << order;
}

void PageAllocator::MoveFreeToTail(Zone& z, uint32_t i, MigrateType t) {
  // move_to_free_list: moved blocks always go to the tail (§1.1 step 3).
  int order = OrderOf(state_[i]);
  DelFree(z, i);
  AddFree(z, i, order, t, /*tail=*/true);
}

inline void PageAllocator::Expand(Zone& z, uint32_t i, int low, int high, MigrateType t) {
  // expand (§1.2): keep the low half, put each upper half at the list head.
  while (high > low) {
    --high;
    AddFree(z, i + (1u << high), high, t, /*tail=*/false);
    if (narrating()) [[unlikely]] NarrateSplit(z, i + (1u << high), high, t);
  }
}

void PageAllocator::NarrateSplit(const Zone& z, uint32_t half, int order, MigrateType t) {
  Say({.kind = DecisionKind::kSplit, .zone = ZoneIndexOf(z), .pfn = PfnOf(half), .order = order,
       .type = Num(t),
       .text = absl::StrFormat("split: upper half pfn %#x order %d to the head of the %s list",
                               PfnOf(half), order, TName(t))});
}

// ---------------------------------------------------------------------------
// Freeing and merging (§1.1, __free_one_page)

void PageAllocator::FreeOnePage(Zone& z, uint32_t i, int order, MigrateType t, bool to_tail) {
  const bool rety = config_.era != Era::kLegacy;
  while (order < kMaxOrder) {
    uint32_t b = i ^ (1u << order);
    // The buddy must be a free block of exactly this order in the same zone.
    if (b < z.start || b + (1u << order) > z.end) break;
    if (state_[b] != MakeState(kKindFree, order)) break;
    if (order >= kPageblockOrder) {
      // Across pageblocks only mergeable types may merge with each other.
      MigrateType bt = BlockType(b);
      if (bt != t && (!IsMergeable(t) || !IsMergeable(bt))) break;
      // [H][C]: the buddy's block takes the freed block's type.
      if (rety && bt != t) SetBlockType(b, t);
    }
    DelFree(z, b);
    if (narrating()) [[unlikely]] NarrateMerge(z, i, b, order);
    i &= b;
    ++order;
  }
  bool tail = to_tail;
  if (!tail && order < kMaxOrder - 1) {
    // "Merge likely": if the parent's buddy is free at order+1, the block
    // will probably merge soon; keep it at the tail so it is not reused.
    uint32_t b = i ^ (1u << order);
    uint32_t parent = i & b;
    uint32_t pb = parent ^ (1u << (order + 1));
    if (pb >= z.start && pb + (1u << (order + 1)) <= z.end &&
        state_[pb] == MakeState(kKindFree, order + 1)) {
      tail = true;
    }
  }
  AddFree(z, i, order, t, tail);
  if (narrating()) [[unlikely]] NarratePlace(z, i, order, t, tail, to_tail);
}

void PageAllocator::NarrateMerge(const Zone& z, uint32_t i, uint32_t b, int order) {
  Say({.kind = DecisionKind::kMerge, .zone = ZoneIndexOf(z), .pfn = PfnOf(i & b), .order = order,
       .order2 = order + 1,
       .text = absl::StrFormat("merge: pfn %#x order %d with buddy %#x -> order %d at %#x", PfnOf(i),
                               order, PfnOf(b), order + 1, PfnOf(i & b))});
}

void PageAllocator::NarratePlace(const Zone& z, uint32_t i, int order, MigrateType t, bool tail,
                                 bool to_tail) {
  Say({.kind = DecisionKind::kPlace, .zone = ZoneIndexOf(z), .pfn = PfnOf(i), .order = order,
       .type = Num(t), .yes = tail,
       .text = absl::StrFormat("place: pfn %#x order %d at the %s of the %s list%s", PfnOf(i), order,
                               tail ? "tail" : "head", TName(t),
                               (tail && !to_tail) ? " (merge likely)" : "")});
}

inline void PageAllocator::FreeToBuddy(Zone& z, uint32_t i, int order) {
  // __free_pages_ok / free_one_page. 6.10+ frees blocks above pageblock order
  // one pageblock at a time, each with its own type (§1.1 step 4).
  if (config_.era != Era::kLegacy && order > kPageblockOrder) {
    for (uint32_t p = i; p < i + (1u << order); p += kPageblockPages) {
      FreeOnePage(z, p, kPageblockOrder, BlockType(p), false);
    }
    return;
  }
  FreeOnePage(z, i, order, BlockType(i), false);
}

// ---------------------------------------------------------------------------
// Pageblock counting and moving (§2.4)

bool PageAllocator::BlockInZone(const Zone& z, uint32_t block_start) const {
  return block_start >= z.start && block_start + kPageblockPages <= z.end;
}

bool PageAllocator::CountBlock(const Zone& z, uint32_t i, int* free_pages,
                               int* movable_pages) const {
  // prep_move_freepages_block: free pages are the sizes of free buddies in the
  // block; movable pages are non-free pages on an LRU or with movable ops.
  uint32_t start = i & ~static_cast<uint32_t>(kPageblockPages - 1);
  if (!BlockInZone(z, start)) return false;
  uint32_t end = start + kPageblockPages;
  int nfree = 0, nmov = 0;
  uint32_t p = start;
  // A block allocated at order 10 may cover this pageblock from the one before.
  if (state_[p] == 0) {
    uint32_t h = p & ~((1u << kMaxOrder) - 1);
    if (h != p && KindOf(state_[h]) == kKindAlloc && OrderOf(state_[h]) == kMaxOrder) {
      if (OwnerCountsMovable(static_cast<OwnerKind>(aux_[h] & 0x1f))) nmov = kPageblockPages;
      *free_pages = 0;
      *movable_pages = nmov;
      return true;
    }
  }
  while (p < end) {
    uint8_t s = state_[p];
    uint8_t kind = KindOf(s);
    if (kind == kKindNone) {
      ++p;
      continue;
    }
    uint32_t n = std::min<uint32_t>(1u << OrderOf(s), end - p);
    if (kind == kKindFree) {
      nfree += static_cast<int>(n);
    } else if (kind == kKindAlloc && OwnerCountsMovable(static_cast<OwnerKind>(aux_[p] & 0x1f))) {
      nmov += static_cast<int>(n);
    }
    p += n;
  }
  *free_pages = nfree;
  *movable_pages = nmov;
  return true;
}

int PageAllocator::MoveFreeBlocksOfBlock(Zone& z, uint32_t block_start, MigrateType to) {
  // move_freepages_block: every free buddy starting inside the pageblock
  // goes to the tail of list `to`.
  uint32_t end = block_start + kPageblockPages;
  int moved = 0;
  uint32_t p = block_start;
  while (p < end) {
    uint8_t s = state_[p];
    if (KindOf(s) == kKindNone) {
      ++p;
      continue;
    }
    int o = OrderOf(s);
    if (KindOf(s) == kKindFree) {
      MoveFreeToTail(z, p, to);
      moved += 1 << o;
    }
    p += 1u << o;
  }
  return moved;
}

// ---------------------------------------------------------------------------
// Allocation from the buddy lists (§2.3-§2.5)

[[gnu::always_inline]] inline uint32_t PageAllocator::RmqueueSmallest(Zone& z, int order, MigrateType t, int cpu) {
  // __rmqueue_smallest: head of the first non-empty list of type t at an
  // order >= the request.
  uint32_t m = static_cast<uint32_t>(z.mask[t]) >> order;
  if (m == 0) {
    if (narrating()) [[unlikely]] NarrateListSearch(z, order, -1, t, kNil);
    return kNil;
  }
  int o = order + std::countr_zero(m);
  uint32_t i = links_.Next(ListSentinel(z, o, t));
  if (narrating()) [[unlikely]] NarrateListSearch(z, order, o, t, i);
  DelFreeKnown(z, i, o, t);
  if (o > order) Expand(z, i, order, o, t);
  if (sink_) EmitZoneLocked(i, order, t, cpu);
  return i;
}

void PageAllocator::NarrateListSearch(const Zone& z, int order, int found_order, MigrateType t,
                                      uint32_t i) {
  if (i == kNil) {
    Say({.kind = DecisionKind::kListSearch, .zone = ZoneIndexOf(z), .order = order, .type = Num(t),
         .yes = false, .text = absl::StrFormat("%s lists empty at orders %d..10", TName(t), order)});
    return;
  }
  Say({.kind = DecisionKind::kListSearch, .zone = ZoneIndexOf(z), .pfn = PfnOf(i), .order = order,
       .order2 = found_order, .type = Num(t), .yes = true,
       .text = absl::StrFormat("%s list: head of order %d is pfn %#x", TName(t), found_order, PfnOf(i))});
}

void PageAllocator::EmitZoneLocked(uint32_t i, int order, MigrateType t, int cpu) {
  fl_zone_locked e;
  InitRecord(e, FL_EV_ZONE_LOCKED, now_, static_cast<uint16_t>(cpu));
  e.pfn = PfnOf(i);
  e.order = static_cast<uint32_t>(order);
  e.migratetype = Num(t);
  // A property of the request (pcp order and PCP type), §3.
  bool pcp_order = order <= kCostlyOrder || (config_.thp && order == kPageblockOrder);
  e.percpu_refill = (pcp_order && t < kNumPcpTypes) ? 1 : 0;
  Emit(e.hdr);
}

int PageAllocator::FindFallback(const Zone& z, int order, MigrateType t) const {
  for (MigrateType f : kFallbacks[t])
    if (z.count[order][f]) return f;
  return -1;
}

bool PageAllocator::CanClaim(int order, MigrateType t) const {
  // can_steal_fallback / should_try_claim_block (§2.4).
  return order >= kPageblockOrder / 2 || t == kUnmovable || t == kReclaimable ||
         grouping_disabled_;
}

void PageAllocator::Boost(Zone& z, uint32_t flags) {
  // boost_watermark (§5.2).
  if (config_.watermark_boost_factor == 0) return;
  if (kPageblockPages * 4 > z.managed) return;
  uint64_t max_boost = z.wmark[2] * static_cast<uint64_t>(config_.watermark_boost_factor) / 10000;
  if (max_boost == 0) return;
  max_boost = std::max<uint64_t>(kPageblockPages, max_boost);
  z.boost = std::min(z.boost + kPageblockPages, max_boost);
  if (flags & alloc::kKswapd) z.boosted_flag = true;
  if (narrating()) [[unlikely]] {
    Say({.kind = DecisionKind::kBoost, .zone = ZoneIndexOf(z), .value = static_cast<int64_t>(z.boost),
         .value2 = static_cast<int64_t>(max_boost),
         .text = absl::StrFormat("watermark boost of %s raised to %d pages (max %d)",
                                 ZoneName(ZoneIndexOf(z)), z.boost, max_boost)});
  }
}

void PageAllocator::EmitExtfrag(uint32_t i, int alloc_order, int fallback_order, MigrateType t,
                                MigrateType fallback, int cpu) {
  bool owner = BlockType(i) == t;  // change_ownership is read at emit time (§3)
  if (narrating()) [[unlikely]] {
    const char* cls = fallback_order >= kPageblockOrder ? "claim" : owner ? "steal" : "pollute";
    Say({.kind = DecisionKind::kSteal, .pfn = PfnOf(i), .order = alloc_order,
         .order2 = fallback_order, .type = Num(t), .type2 = Num(fallback), .yes = owner,
         .text = absl::StrFormat(
             "extfrag: pfn %#x alloc_order %d fallback_order %d %s from %s, change_ownership %d (%s)",
             PfnOf(i), alloc_order, fallback_order, TName(t), TName(fallback), owner ? 1 : 0, cls)});
  }
  if (!sink_) return;
  fl_extfrag e;
  InitRecord(e, FL_EV_EXTFRAG, now_, static_cast<uint16_t>(cpu));
  e.pfn = PfnOf(i);
  e.alloc_order = alloc_order;
  e.fallback_order = fallback_order;
  e.alloc_migratetype = Num(t);
  e.fallback_migratetype = Num(fallback);
  e.change_ownership = owner ? 1 : 0;
  e.fragmenting = fallback_order < kPageblockOrder ? 1 : 0;
  e.extfrag_class = fallback_order >= kPageblockOrder ? FL_EXTFRAG_CLAIM
                    : owner                           ? FL_EXTFRAG_STEAL
                                                      : FL_EXTFRAG_POLLUTE;
  Emit(e.hdr);
}

// Narration of a fallback candidate and the claim predicate.
#define FRAGLAB_SAY_CANDIDATE(z, i, o, t, f, can)                                              \
  do {                                                                                         \
    if (narrating()) [[unlikely]] {                                                            \
      Say({.kind = DecisionKind::kFallbackCandidate, .zone = ZoneIndexOf(z), .pfn = PfnOf(i),   \
           .order = (o), .type = Num(t), .type2 = Num(f), .yes = (can),                        \
           .text = absl::StrFormat("fallback candidate: head of %s order %d is pfn %#x "        \
                                   "(pageblock %d, type %s); can_claim(order %d, %s) = %s",    \
                                   TName(f), (o), PfnOf(i), PfnOf(i) >> kPageblockOrder,       \
                                   TName(BlockType(i)), (o), TName(t), (can) ? "yes" : "no")}); \
    }                                                                                          \
  } while (0)

void PageAllocator::Emit(const fl_record_header& rec) {
  absl::Status s = sink_->Emit(rec);
  if (!s.ok() && sink_status_.ok()) sink_status_ = s;
}

bool PageAllocator::FindOldFallbackCandidate(const Zone& z, int order, MigrateType t,
                                             uint32_t flags, int* o, int* f, bool* can) const {
  // Steps 1-2 of __rmqueue_fallback before 6.15, shared by LEGACY and HYGIENE
  // (§2.5): the largest order with a fallback list wins, except that movable
  // requests which cannot claim take the smallest fallback instead.
  const int min_order =
      (order < kPageblockOrder && (flags & alloc::kNoFragment)) ? kPageblockOrder : order;
  for (int c = kMaxOrder; c >= min_order; --c) {
    int fc = FindFallback(z, c, t);
    if (fc < 0) continue;
    if (CanClaim(c, t) || t != kMovable || c <= order) {
      *o = c;
      *f = fc;
      *can = CanClaim(c, t);
      return true;
    }
    for (int s = order; s < kNumOrders; ++s) {
      fc = FindFallback(z, s, t);
      if (fc >= 0) {
        *o = s;
        *f = fc;
        *can = CanClaim(s, t);
        return true;
      }
    }
    return false;
  }
  return false;
}

bool PageAllocator::FallbackLegacy(Zone& z, int order, MigrateType t, uint32_t flags, int cpu) {
  // __rmqueue_fallback + steal_suitable_fallback of <= 6.9 (§2.5 LEGACY).
  int o = -1, f = -1;
  bool can = false;
  if (!FindOldFallbackCandidate(z, order, t, flags, &o, &f, &can)) return false;
  const auto ft = static_cast<MigrateType>(f);
  uint32_t p = links_.Next(ListSentinel(z, o, ft));
  FRAGLAB_SAY_CANDIDATE(z, p, o, t, ft, can);
  MigrateType bt = BlockType(p);
  bool single = false;
  if (bt == kHighAtomic) {
    single = true;
  } else if (o >= kPageblockOrder) {
    ChangeBlockRange(p, o, t);
    if (narrating()) [[unlikely]] {
      Say({.kind = DecisionKind::kConvert, .pfn = PfnOf(p), .order = o, .type = Num(bt), .type2 = Num(t),
           .text = absl::StrFormat("order %d >= pageblock order: pageblock(s) at %#x become %s", o,
                                   PfnOf(p), TName(t))});
    }
    single = true;
  } else {
    Boost(z, flags);
    if (!can) {
      single = true;
    } else {
      int nfree = 0, nmov = 0;
      uint32_t start = p & ~static_cast<uint32_t>(kPageblockPages - 1);
      if (!CountBlock(z, p, &nfree, &nmov)) {
        single = true;
      } else {
        int alike = t == kMovable ? nmov : bt == kMovable ? static_cast<int>(kPageblockPages) - nfree - nmov : 0;
        // 6.1 moves every free page of the block to t whether or not the
        // block changes type.
        MoveFreeBlocksOfBlock(z, start, t);
        bool convert = nfree + alike >= static_cast<int>(kPageblockPages / 2) || grouping_disabled_;
        if (narrating()) [[unlikely]] {
          Say({.kind = DecisionKind::kBlockCount, .pfn = PfnOf(start), .type = Num(bt), .type2 = Num(t),
               .value = nfree, .value2 = alike, .yes = convert,
               .text = absl::StrFormat("pageblock %d: free %d + alike %d %s 256 -> %s; all its free "
                                       "pages moved to the %s lists",
                                       PfnOf(start) >> kPageblockOrder, nfree, alike,
                                       convert ? ">=" : "<", convert ? "convert" : "keep type",
                                       TName(t))});
        }
        if (convert) SetBlockType(start, t);
      }
    }
  }
  if (single) {
    MoveFreeToTail(z, p, t);
    if (narrating()) [[unlikely]] {
      Say({.kind = DecisionKind::kSteal, .pfn = PfnOf(p), .order = o, .type = Num(t), .type2 = Num(ft),
           .text = absl::StrFormat("whole order-%d buddy pfn %#x moved to the %s list, block type "
                                   "unchanged",
                                   o, PfnOf(p), TName(t))});
    }
  }
  EmitExtfrag(p, order, o, t, ft, cpu);
  return true;
}

uint32_t PageAllocator::FallbackHygiene(Zone& z, int order, MigrateType t, uint32_t flags, int cpu) {
  // 6.10-6.14 __rmqueue_fallback + steal_suitable_fallback (§2.5 HYGIENE).
  int o = -1, f = -1;
  bool can = false;
  if (!FindOldFallbackCandidate(z, order, t, flags, &o, &f, &can)) return kNil;
  const auto ft = static_cast<MigrateType>(f);
  uint32_t p = links_.Next(ListSentinel(z, o, ft));
  FRAGLAB_SAY_CANDIDATE(z, p, o, t, ft, can);
  MigrateType bt = BlockType(p);
  uint32_t page = kNil;
  if (bt != kHighAtomic) {
    if (o >= kPageblockOrder) {
      DelFree(z, p);
      ChangeBlockRange(p, o, t);
      Expand(z, p, order, o, t);
      if (narrating()) [[unlikely]] {
        Say({.kind = DecisionKind::kConvert, .pfn = PfnOf(p), .order = o, .type = Num(bt), .type2 = Num(t),
             .text = absl::StrFormat("order %d >= pageblock order: take pfn %#x, its pageblock(s) "
                                     "become %s",
                                     o, PfnOf(p), TName(t))});
      }
      page = p;
    } else {
      Boost(z, flags);
      int nfree = 0, nmov = 0;
      uint32_t start = p & ~static_cast<uint32_t>(kPageblockPages - 1);
      if (can && CountBlock(z, p, &nfree, &nmov)) {
        int alike = t == kMovable ? nmov : bt == kMovable ? static_cast<int>(kPageblockPages) - nfree - nmov : 0;
        bool convert = nfree + alike >= static_cast<int>(kPageblockPages / 2) || grouping_disabled_;
        if (narrating()) [[unlikely]] {
          Say({.kind = DecisionKind::kBlockCount, .pfn = PfnOf(start), .type = Num(bt), .type2 = Num(t),
               .value = nfree, .value2 = alike, .yes = convert,
               .text = absl::StrFormat("pageblock %d: free %d + alike %d %s 256 -> %s",
                                       PfnOf(start) >> kPageblockOrder, nfree, alike,
                                       convert ? ">=" : "<", convert ? "convert" : "take single")});
        }
        if (convert) {
          MoveFreeBlocksOfBlock(z, start, t);
          SetBlockType(start, t);
          page = RmqueueSmallest(z, order, t, cpu);
        }
      }
    }
  }
  if (page == kNil) {
    // Cut exactly the request from the foreign buddy; the rest stays on the
    // block's own list.
    DelFree(z, p);
    Expand(z, p, order, o, bt);
    if (narrating()) [[unlikely]] {
      Say({.kind = DecisionKind::kSteal, .pfn = PfnOf(p), .order = order, .order2 = o, .type = Num(t),
           .type2 = Num(bt),
           .text = absl::StrFormat("take order %d from order-%d buddy pfn %#x; remainder stays %s",
                                   order, o, PfnOf(p), TName(bt))});
    }
    page = p;
  }
  EmitExtfrag(page, order, o, t, ft, cpu);
  return page;
}

uint32_t PageAllocator::RmqueueClaim(Zone& z, int order, MigrateType t, uint32_t flags, int cpu) {
  // __rmqueue_claim + try_to_claim_block (§2.5 CLAIM, phase 1).
  int min_order = (order < kPageblockOrder && (flags & alloc::kNoFragment)) ? kPageblockOrder : order;
  for (int o = kMaxOrder; o >= min_order; --o) {
    if (z.nr_free[o] == 0) continue;
    if (!CanClaim(o, t)) {
      if (narrating()) [[unlikely]] {
        Say({.kind = DecisionKind::kClaimPredicate, .order = o, .type = Num(t), .yes = false,
             .text = absl::StrFormat("claim phase stops at order %d: cannot claim for %s", o, TName(t))});
      }
      break;
    }
    int f = FindFallback(z, o, t);
    if (f < 0) continue;
    const auto ft = static_cast<MigrateType>(f);
    uint32_t p = links_.Next(ListSentinel(z, o, ft));
    FRAGLAB_SAY_CANDIDATE(z, p, o, t, ft, true);
    MigrateType bt = BlockType(p);
    if (bt == kHighAtomic) continue;
    uint32_t page = kNil;
    if (o >= kPageblockOrder) {
      DelFree(z, p);
      ChangeBlockRange(p, o, t);
      Expand(z, p, order, o, t);
      if (narrating()) [[unlikely]] {
        Say({.kind = DecisionKind::kConvert, .pfn = PfnOf(p), .order = o, .type = Num(bt), .type2 = Num(t),
             .text = absl::StrFormat("claim whole order-%d block pfn %#x: pageblock(s) become %s", o,
                                     PfnOf(p), TName(t))});
      }
      page = p;
    } else {
      Boost(z, flags);
      int nfree = 0, nmov = 0;
      uint32_t start = p & ~static_cast<uint32_t>(kPageblockPages - 1);
      if (CountBlock(z, p, &nfree, &nmov)) {
        int alike = t == kMovable ? nmov : bt == kMovable ? static_cast<int>(kPageblockPages) - nfree - nmov : 0;
        bool convert = nfree + alike >= static_cast<int>(kPageblockPages / 2) || grouping_disabled_;
        if (narrating()) [[unlikely]] {
          Say({.kind = DecisionKind::kBlockCount, .pfn = PfnOf(start), .type = Num(bt), .type2 = Num(t),
               .value = nfree, .value2 = alike, .yes = convert,
               .text = absl::StrFormat("pageblock %d: free %d + alike %d %s 256 -> %s",
                                       PfnOf(start) >> kPageblockOrder, nfree, alike,
                                       convert ? ">=" : "<",
                                       convert ? "convert" : "no claim, try lower orders")});
        }
        if (convert) {
          MoveFreeBlocksOfBlock(z, start, t);
          SetBlockType(start, t);
          page = RmqueueSmallest(z, order, t, cpu);
        }
      }
    }
    if (page != kNil) {
      EmitExtfrag(page, order, o, t, ft, cpu);
      return page;
    }
  }
  return kNil;
}

uint32_t PageAllocator::RmqueueSteal(Zone& z, int order, MigrateType t, int cpu) {
  // __rmqueue_steal (§2.5 CLAIM, phase 2): smallest foreign buddy, exactly the
  // request taken, remainder stays on the foreign list, no boost.
  for (int o = order; o < kNumOrders; ++o) {
    int f = FindFallback(z, o, t);
    if (f < 0) continue;
    const auto ft = static_cast<MigrateType>(f);
    uint32_t p = links_.Next(ListSentinel(z, o, ft));
    DelFree(z, p);
    Expand(z, p, order, o, ft);
    if (narrating()) [[unlikely]] {
      Say({.kind = DecisionKind::kSteal, .pfn = PfnOf(p), .order = order, .order2 = o, .type = Num(t),
           .type2 = Num(ft),
           .text = absl::StrFormat("steal phase: take order %d from %s order-%d buddy pfn %#x", order,
                                   TName(ft), o, PfnOf(p))});
    }
    EmitExtfrag(p, order, o, t, ft, cpu);
    return p;
  }
  return kNil;
}

[[gnu::always_inline]] inline uint32_t PageAllocator::Rmqueue(Zone& z, int order, MigrateType t,
                                                             uint32_t flags, RmqMode* mode, int cpu) {
  // __rmqueue for the era (§2.3, §2.5).
  switch (config_.era) {
    case Era::kLegacy:
      for (;;) {
        uint32_t i = RmqueueSmallest(z, order, t, cpu);
        if (i != kNil) return i;
        if (!FallbackLegacy(z, order, t, flags, cpu)) return kNil;
      }
    case Era::kHygiene: {
      uint32_t i = RmqueueSmallest(z, order, t, cpu);
      if (i != kNil) return i;
      return FallbackHygiene(z, order, t, flags, cpu);
    }
    case Era::kClaim: {
      uint32_t i = kNil;
      if (*mode == RmqMode::kNormal) {
        i = RmqueueSmallest(z, order, t, cpu);
        if (i != kNil) return i;
        i = RmqueueClaim(z, order, t, flags, cpu);
        if (i != kNil) return i;
      }
      if (!(flags & alloc::kNoFragment)) {
        i = RmqueueSteal(z, order, t, cpu);
        // Within one bulk refill, later pages go straight to stealing.
        if (i != kNil) *mode = RmqMode::kSteal;
      }
      return i;
    }
  }
  return kNil;
}

[[gnu::always_inline]] inline uint32_t PageAllocator::RmqueueBuddy(Zone& z, int order, MigrateType t, uint32_t flags, int cpu) {
  // rmqueue_buddy: high-order atomic requests try the reserve first; OOM and
  // non-blocking requests may dip into it when all else fails (§2.2).
  uint32_t i = kNil;
  if (flags & alloc::kHighAtomic) i = RmqueueSmallest(z, order, kHighAtomic, cpu);
  if (i == kNil) {
    RmqMode mode = RmqMode::kNormal;
    i = Rmqueue(z, order, t, flags, &mode, cpu);
    if (i == kNil && (flags & (alloc::kOom | alloc::kNonBlock)))
      i = RmqueueSmallest(z, order, kHighAtomic, cpu);
  }
  return i;
}

[[gnu::always_inline]] inline uint32_t PageAllocator::RmqueueZone(Zone& z, int order, MigrateType t, uint32_t flags, int cpu) {
  uint32_t i = kNil;
  bool pcp_order = order <= kCostlyOrder || (config_.thp && order == kPageblockOrder);
  if (config_.pcp && pcp_order) i = RmqueuePcp(z, order, t, flags, cpu);
  if (i == kNil) i = RmqueueBuddy(z, order, t, flags, cpu);
  // A fallback boosted the watermark: wake kswapd once the zone lock is gone.
  if ((flags & alloc::kKswapd) && z.boosted_flag) {
    z.boosted_flag = false;
    WakeKswapd(z.node, 0, z.type, /*from_boost=*/true, 0, true);
  }
  return i;
}

// ---------------------------------------------------------------------------
// Per-CPU lists (§4)

int PageAllocator::PcpIndex(int order, MigrateType t) const {
  if (order > kCostlyOrder) {
    // THP lists: movable and non-movable (or one shared list).
    return kNumPcpTypes * (kCostlyOrder + 1) + ((config_.pcp_thp_split && t == kMovable) ? 1 : 0);
  }
  return kNumPcpTypes * order + t;
}

int PageAllocator::PcpIndexOrder(int pindex) const {
  return pindex >= kNumPcpTypes * (kCostlyOrder + 1) ? kPageblockOrder : pindex / kNumPcpTypes;
}

int PageAllocator::NrPcpAlloc(Pcp& p, Zone& z, int order) {
  if (config_.pcp_tuning == PcpTuning::kStatic) {
    int batch = p.batch;
    if (batch > 1) batch = std::max(batch >> order, 2);
    return batch;
  }
  // nr_pcp_alloc (6.7+): refill grows while order-0 allocations keep coming.
  int base = p.batch;
  int high = p.high = std::clamp(p.high, p.high_min, p.high_max);
  if (high < base) return 1;
  int batch = order ? base : base << p.alloc_factor;
  if (p.high_min != p.high_max && !z.below_high) high = p.high = std::min(high + batch, p.high_max);
  if (order == 0) {
    int max_nr = std::max(high - p.count - base, base);
    if (batch <= max_nr && p.alloc_factor < kPcpBatchScaleMax) p.alloc_factor++;
    batch = std::min(batch, max_nr);
  }
  if (batch > 1) batch = std::max(batch >> order, 2);
  return batch;
}

uint32_t PageAllocator::RmqueuePcp(Zone& z, int order, MigrateType t, uint32_t flags, int cpu) {
  Pcp& p = z.pcp[cpu];
  if (config_.pcp_tuning == PcpTuning::kStatic) {
    p.free_factor >>= 1;
  } else {
    p.free_count >>= 1;
  }
  int pindex = PcpIndex(order, t);
  uint32_t s = p.list_base + static_cast<uint32_t>(pindex);
  if (links_.Next(s) == s) {
    // rmqueue_bulk: one zone-lock hold; pages appended in obtained order.
    int want = NrPcpAlloc(p, z, order);
    RmqMode mode = RmqMode::kNormal;
    int got = 0;
    for (; got < want; ++got) {
      uint32_t i = Rmqueue(z, order, t, flags, &mode, cpu);
      if (i == kNil) break;
      state_[i] = MakeState(kKindPcp, order);
      aux_[i] = t;  // <= 6.9 caches the list type the page came from
      LinkTail(s, i);
    }
    p.count += got << order;
    if (narrating()) [[unlikely]] {
      Say({.kind = DecisionKind::kPcpRefill, .cpu = cpu, .zone = ZoneIndexOf(z), .order = order,
           .type = Num(t), .value = got, .value2 = want,
           .text = absl::StrFormat("cpu%d pcp %s order %d empty: refilled %d of %d blocks", cpu,
                                   TName(t), order, got, want)});
    }
    if (links_.Next(s) == s) return kNil;
  }
  uint32_t i = links_.Next(s);
  Unlink(i);
  state_[i] = 0;
  p.count -= 1 << order;
  if (narrating()) [[unlikely]] {
    Say({.kind = DecisionKind::kPcpHit, .cpu = cpu, .zone = ZoneIndexOf(z), .pfn = PfnOf(i),
         .order = order, .type = Num(t),
         .text = absl::StrFormat("cpu%d pcp %s order %d: take head pfn %#x", cpu, TName(t), order,
                                 PfnOf(i))});
  }
  return i;
}

void PageAllocator::FreePcpBulk(Zone& z, Pcp& p, int count, int pindex, int cpu) {
  // free_pcppages_bulk: from list tails, lists visited round robin starting
  // with the one just freed to, each emptied until the count is met.
  count = std::min(p.count, count);
  pindex -= 1;
  int drained = 0;
  while (count > 0) {
    uint32_t s;
    do {
      if (++pindex > nr_pcp_lists_ - 1) pindex = 0;
      s = p.list_base + static_cast<uint32_t>(pindex);
    } while (links_.Next(s) == s);
    int order = PcpIndexOrder(pindex);
    do {
      uint32_t i = links_.Prev(s);
      Unlink(i);
      count -= 1 << order;
      p.count -= 1 << order;
      // <= 6.9 frees with the type cached on the page; later kernels re-read
      // the pageblock.
      MigrateType mt = config_.era == Era::kLegacy ? static_cast<MigrateType>(aux_[i]) : BlockType(i);
      state_[i] = 0;
      aux_[i] = 0;
      FreeOnePage(z, i, order, mt, false);
      drained += 1 << order;
      if (sink_) {
        fl_pcp_drain e;
        InitRecord(e, FL_EV_PCP_DRAIN, now_, static_cast<uint16_t>(cpu));
        e.pfn = PfnOf(i);
        e.order = static_cast<uint32_t>(order);
        e.migratetype = Num(mt);
        Emit(e.hdr);
      }
    } while (count > 0 && links_.Next(s) != s);
  }
  if (narrating() && drained) [[unlikely]] {
    Say({.kind = DecisionKind::kPcpDrain, .cpu = cpu, .zone = ZoneIndexOf(z), .value = drained,
         .text = absl::StrFormat("cpu%d pcp of %s: %d pages returned to the buddy lists", cpu,
                                 ZoneName(ZoneIndexOf(z)), drained)});
  }
}

void PageAllocator::FreeToPcp(Zone& z, uint32_t i, int order, int cpu) {
  // free_unref_page + free_unref_page_commit.
  MigrateType bt = BlockType(i);
  MigrateType mt = bt;
  if (mt > kReclaimable) {
    if (mt == kIsolate) {
      FreeOnePage(z, i, order, mt, false);
      return;
    }
    mt = kMovable;  // HIGHATOMIC / CMA pages use the movable list
  }
  Pcp& p = z.pcp[cpu];
  int pindex = PcpIndex(order, mt);
  LinkHead(p.list_base + static_cast<uint32_t>(pindex), i);
  state_[i] = MakeState(kKindPcp, order);
  aux_[i] = bt;
  p.count += 1 << order;
  if (narrating()) [[unlikely]] {
    Say({.kind = DecisionKind::kPcpFree, .cpu = cpu, .zone = ZoneIndexOf(z), .pfn = PfnOf(i),
         .order = order, .type = Num(mt), .value = p.count,
         .text = absl::StrFormat("cpu%d: pfn %#x order %d to the head of pcp list %s (count %d)", cpu,
                                 PfnOf(i), order, TName(mt), p.count)});
  }
  const int batch = p.batch;
  if (config_.pcp_tuning == PcpTuning::kStatic) {
    // <= 6.6: fixed high, free batch doubling while frees keep coming.
    bool free_high = p.free_factor && order && order <= kCostlyOrder;
    int high = free_high ? 0 : p.high;
    if (p.count >= high) {
      int n;
      if (free_high) {
        n = p.count;
      } else if (high < batch) {
        n = 1;
      } else {
        int max_nr = high - batch;
        int b = batch << p.free_factor;
        if (b < max_nr) p.free_factor++;
        n = std::clamp(b, batch, max_nr);
      }
      FreePcpBulk(z, p, n, pindex, cpu);
    }
    return;
  }
  // 6.7+ (nr_pcp_high / nr_pcp_free).
  p.alloc_factor >>= 1;
  bool free_high = false;
  if (order && order <= kCostlyOrder) {
    free_high = p.free_count >= batch + p.high_min / 2 && p.prev_free_high_order;
    p.prev_free_high_order = true;
  } else {
    p.prev_free_high_order = false;
  }
  if (p.free_count < (batch << kPcpBatchScaleMax)) p.free_count += 1 << order;
  int high = p.high = std::clamp(p.high, p.high_min, p.high_max);
  if (high == 0) {
    high = 0;
  } else if (free_high) {
    p.high = std::max(high - (batch << kPcpBatchScaleMax), p.high_min);
    high = 0;
  } else if (p.high_min != p.high_max) {
    if (z.below_high) {
      int fc = std::max(p.free_count, batch);
      p.high = std::max(high - fc, p.high_min);
      high = std::max(p.count, p.high_min);
    } else if (p.count >= high) {
      int need = p.free_count + batch;
      if (p.high < need) p.high = std::clamp(need, p.high_min, p.high_max);
    }
  }
  if (p.count >= high) {
    int n;
    if (free_high) {
      n = std::min(p.count, batch << kPcpBatchScaleMax);
    } else if (high < batch) {
      n = 1;
    } else {
      n = std::clamp(p.free_count, batch, high - batch);
    }
    FreePcpBulk(z, p, n, pindex, cpu);
    if (z.below_high &&
        WatermarkOk(z, 0, static_cast<int64_t>(z.wmark[2] + z.boost), kZoneMovable, 0, z.free_pages)) {
      z.below_high = false;
    }
  }
}

void PageAllocator::DrainPcp(Zone& z, Pcp& p, int cpu) {
  if (p.count > 0) FreePcpBulk(z, p, p.count, 0, cpu);
}

void PageAllocator::DrainAllPcp() {
  for (Zone& z : zones_)
    for (int c = 0; c < config_.cpus; ++c) DrainPcp(z, z.pcp[c], c);
  MaybeCheck("DrainAllPcp");
}

void PageAllocator::DrainCpuPcp(int cpu) {
  if (cpu < 0 || cpu >= config_.cpus) return;
  for (Zone& z : zones_) DrainPcp(z, z.pcp[cpu], cpu);
}

void PageAllocator::ClearBelowHigh(int zone) {
  if (zone >= 0 && zone < num_zones()) zones_[zone].below_high = false;
}

void PageAllocator::PcpDecayTick() {
  if (config_.pcp_tuning != PcpTuning::kAuto) return;
  // decay_pcp_high.
  for (Zone& z : zones_) {
    for (int c = 0; c < config_.cpus; ++c) {
      Pcp& p = z.pcp[c];
      if (p.high > p.high_min) {
        p.high = std::max({p.count - (p.batch << kPcpBatchScaleMax), p.high - (p.high >> 3), p.high_min});
      }
      int excess = p.count - p.high;
      if (excess > 0) FreePcpBulk(z, p, excess, 0, c);
    }
  }
}

// ---------------------------------------------------------------------------
// HIGHATOMIC (§2.7)

void PageAllocator::ReserveHighAtomic(Zone& z, uint32_t i, int order) {
  uint64_t max_reserve = config_.era == Era::kLegacy
                             ? z.managed / 100 + kPageblockPages
                             : (z.managed / 100 + kPageblockPages - 1) & ~(kPageblockPages - 1);
  if (z.nr_reserved_highatomic >= max_reserve) return;
  MigrateType mt = BlockType(i);
  if (!IsMergeable(mt) || mt == kHighAtomic) return;
  uint32_t start = i & ~static_cast<uint32_t>(kPageblockPages - 1);
  if (config_.era == Era::kLegacy || order < kPageblockOrder) {
    if (config_.era != Era::kLegacy && !BlockInZone(z, start)) return;
    SetBlockType(start, kHighAtomic);
    if (BlockInZone(z, start)) MoveFreeBlocksOfBlock(z, start, kHighAtomic);
    z.nr_reserved_highatomic += kPageblockPages;
  } else {
    ChangeBlockRange(i, order, kHighAtomic);
    z.nr_reserved_highatomic += uint64_t{1} << order;
  }
  if (narrating()) [[unlikely]] {
    Say({.kind = DecisionKind::kHighAtomic, .zone = ZoneIndexOf(z), .pfn = PfnOf(start),
         .type = Num(mt), .value = static_cast<int64_t>(z.nr_reserved_highatomic),
         .text = absl::StrFormat("pageblock %d reserved as HIGHATOMIC (reserve now %d pages)",
                                 PfnOf(start) >> kPageblockOrder, z.nr_reserved_highatomic)});
  }
}

bool PageAllocator::UnreserveHighAtomic(int node, ZoneType highest, MigrateType type, bool force) {
  if (node < 0 || node >= config_.nodes || type >= kNumPcpTypes) return false;
  // Same zonelist as an allocation: local node first, highest zone down.
  for (int k = 0; k < config_.nodes; ++k) {
    int n = (node + k) % config_.nodes;
    for (int zt = highest; zt >= 0; --zt) {
      int zi = FindZone(n, static_cast<ZoneType>(zt));
      if (zi < 0 || zones_[zi].managed == 0) continue;
      Zone& z = zones_[zi];
      if (!force && z.nr_reserved_highatomic <= kPageblockPages) continue;
      for (int o = 0; o < kNumOrders; ++o) {
        uint32_t s = ListSentinel(z, o, kHighAtomic);
        if (links_.Next(s) == s) continue;
        uint32_t i = links_.Next(s);
        if (BlockType(i) == kHighAtomic) {
          uint64_t size = config_.era == Era::kLegacy ? kPageblockPages
                                                      : std::max<uint64_t>(kPageblockPages, uint64_t{1} << o);
          z.nr_reserved_highatomic -= std::min(size, z.nr_reserved_highatomic);
        }
        bool moved;
        if (config_.era == Era::kLegacy || o < kPageblockOrder) {
          uint32_t start = i & ~static_cast<uint32_t>(kPageblockPages - 1);
          if (config_.era == Era::kLegacy) SetBlockType(start, type);
          moved = BlockInZone(z, start) && MoveFreeBlocksOfBlock(z, start, type) > 0;
          if (config_.era != Era::kLegacy && BlockInZone(z, start)) SetBlockType(start, type);
        } else {
          MoveFreeToTail(z, i, type);
          ChangeBlockRange(i, o, type);
          moved = true;
        }
        if (narrating()) [[unlikely]] {
          Say({.kind = DecisionKind::kHighAtomic, .zone = zi, .pfn = PfnOf(i), .type = Num(type),
               .value = static_cast<int64_t>(z.nr_reserved_highatomic),
               .text = absl::StrFormat("HIGHATOMIC block of pfn %#x released to %s", PfnOf(i),
                                       TName(type))});
        }
        if (moved) return true;
      }
    }
  }
  return false;
}

// ---------------------------------------------------------------------------
// Zone walk and the public allocation API (§2.1, §2.2, §5.3, §5.4)

uint32_t PageAllocator::NoFragmentFlags(const Zone& preferred, uint64_t g) const {
  // alloc_flags_nofragment.
  uint32_t flags = (g & gfp::kKswapdReclaim) ? alloc::kKswapd : 0;
  if (config_.defrag_mode) return flags | alloc::kNoFragment;
  if (preferred.type != kZoneNormal) return flags;
  if (config_.nodes > 1) {
    int d = FindZone(preferred.node, kZoneDma32);
    if (d < 0 || zones_[d].present == 0) return flags;
  }
  return flags | alloc::kNoFragment;
}

uint32_t PageAllocator::GfpToAllocFlags(uint64_t g, int order) const {
  // gfp_to_alloc_flags (6.4+ form, §2.1).
  uint32_t flags = alloc::kWmarkMin;
  if (g & gfp::kHigh) flags |= alloc::kMinReserve;
  if (g & gfp::kKswapdReclaim) flags |= alloc::kKswapd;
  if (!(g & gfp::kDirectReclaim)) {
    if (!(g & gfp::kNomemalloc)) {
      flags |= alloc::kNonBlock;
      if (order > 0 && (flags & alloc::kMinReserve)) flags |= alloc::kHighAtomic;
    }
  }
  if (config_.defrag_mode) flags |= alloc::kNoFragment;
  return flags;
}

std::vector<KswapdWakeup> PageAllocator::TakeKswapdWakeups() {
  std::vector<KswapdWakeup> out;
  out.swap(kswapd_wakeups_);
  return out;
}

uint32_t PageAllocator::GetPageFromFreelist(const AllocRequest& req, MigrateType t, int highest,
                                            uint32_t flags, int* zone_out) {
  // get_page_from_freelist over the zonelist: local node from the highest
  // allowed zone down, then the other nodes in id order.
  const std::vector<int>& zl = Zonelist(req.node, highest);
  if (zl.empty()) return kNil;
  const int preferred = zl[0];
  for (;;) {
    const bool no_fallback = flags & alloc::kNoFragment;
    bool restart = false;
    for (int zi : zl) {
      Zone& z = zones_[zi];
      if (no_fallback && !config_.defrag_mode && config_.nodes > 1 && z.node != zones_[preferred].node) {
        // Leaving the local node: fragmenting locally beats remote memory.
        flags &= ~alloc::kNoFragment;
        restart = true;
        if (narrating()) [[unlikely]] NarrateNoFragmentDropped(zi);
        break;
      }
      if ((flags & alloc::kWmarkMask) != alloc::kNoWatermarks) {
        bool ok = false;
        if (config_.pcp && config_.pcp_tuning == PcpTuning::kAuto && !z.below_high) {
          // 6.7+: note whether the zone is below its high watermark.
          if (WatermarkFast(z, req.order, static_cast<int64_t>(z.wmark[2] + z.boost), highest, flags)) {
            ok = true;
          } else {
            z.below_high = true;
          }
        }
        if (!ok) {
          int64_t mark = Mark(z, flags);
          if (!WatermarkFast(z, req.order, mark, highest, flags)) {
            if (narrating()) [[unlikely]] NarrateZone(zi, req.order, false, mark, highest, flags);
            continue;
          }
        }
      }
      if (narrating()) [[unlikely]] NarrateZone(zi, req.order, true, 0, highest, flags);
      uint32_t i = RmqueueZone(z, req.order, t, flags, req.cpu);
      if (i != kNil) {
        if (flags & alloc::kHighAtomic) ReserveHighAtomic(z, i, req.order);
        *zone_out = zi;
        return i;
      }
    }
    if (restart) continue;
    if (no_fallback && !config_.defrag_mode) {
      // Every zone refused to serve without fragmenting: allow it now.
      flags &= ~alloc::kNoFragment;
      if (narrating()) [[unlikely]] NarrateNoFragmentDropped(-1);
      continue;
    }
    return kNil;
  }
}

void PageAllocator::NarrateNoFragmentDropped(int zone) {
  Say({.kind = DecisionKind::kNoFragment, .zone = zone, .yes = false,
       .text = zone >= 0 ? "ALLOC_NOFRAGMENT dropped: the walk reached another node"
                         : "ALLOC_NOFRAGMENT dropped: no zone could serve without fragmenting; retry"});
}

void PageAllocator::NarrateZone(int zi, int order, bool pass, int64_t mark, int highest, uint32_t flags) {
  const Zone& z = zones_[zi];
  if (!pass) {
    Say({.kind = DecisionKind::kZoneSkip, .zone = zi, .order = order, .value = z.free_pages, .value2 = mark,
         .text = absl::StrFormat("zone %s skipped: %d free pages fail watermark %d + reserve %d",
                                 ZoneName(zi), z.free_pages, mark, z.lowmem_reserve[highest])});
    return;
  }
  Say({.kind = DecisionKind::kZoneTry, .zone = zi, .order = order, .value = z.free_pages,
       .text = absl::StrFormat("zone %s passes its watermark (%d free)%s", ZoneName(zi), z.free_pages,
                               (flags & alloc::kNoFragment) ? ", NOFRAGMENT" : "")});
}

inline bool PageAllocator::ValidateRequest(const AllocRequest& req) {
  if (static_cast<unsigned>(req.order) <= kMaxOrder && static_cast<unsigned>(req.cpu) < static_cast<unsigned>(config_.cpus) &&
      static_cast<unsigned>(req.node) < static_cast<unsigned>(config_.nodes) &&
      (req.gfp & (gfp::kMovable | gfp::kReclaimable)) != (gfp::kMovable | gfp::kReclaimable)) [[likely]] {
    return true;
  }
  return RejectRequest(req);
}

bool PageAllocator::RejectRequest(const AllocRequest& req) {
  if (req.order < 0 || req.order > kMaxOrder) {
    last_error_ = absl::InvalidArgumentError(absl::StrFormat("allocation order %d outside 0..10", req.order));
    return false;
  }
  if (req.cpu < 0 || req.cpu >= config_.cpus) {
    last_error_ = absl::InvalidArgumentError(
        absl::StrFormat("allocation cpu %d outside 0..%d", req.cpu, config_.cpus - 1));
    return false;
  }
  if (req.node < 0 || req.node >= config_.nodes) {
    last_error_ = absl::InvalidArgumentError(
        absl::StrFormat("allocation node %d outside 0..%d", req.node, config_.nodes - 1));
    return false;
  }
  if ((req.gfp & (gfp::kMovable | gfp::kReclaimable)) == (gfp::kMovable | gfp::kReclaimable)) {
    last_error_ = absl::InvalidArgumentError(
        absl::StrFormat("gfp %#x sets both __GFP_MOVABLE and __GFP_RECLAIMABLE", req.gfp));
    return false;
  }
  return true;
}

uint64_t PageAllocator::FinishAlloc(const AllocRequest& req, MigrateType t, uint32_t i) {
  uint64_t pfn = kNoPfn;
  if (i != kNil) {
    state_[i] = MakeState(kKindAlloc, req.order);
    aux_[i] = static_cast<uint8_t>(static_cast<uint8_t>(req.owner) | (t << 5));
    pfn = PfnOf(i);
  }
  if (narrator_ || sink_) [[unlikely]] ReportAllocEnd(req, t, pfn);
  return pfn;
}

void PageAllocator::ReportAllocEnd(const AllocRequest& req, MigrateType t, uint64_t pfn) {
  const bool ok = pfn != kNoPfn;
  if (narrating()) {
    Say({.kind = DecisionKind::kAllocEnd, .cpu = req.cpu, .pfn = pfn, .order = req.order, .type = Num(t),
         .yes = ok,
         .text = ok ? absl::StrFormat("allocated pfn %#x order %d", pfn, req.order)
                           : absl::StrFormat("allocation of order %d failed", req.order)});
  }
  if (sink_) {
    fl_page_alloc e;
    InitRecord(e, FL_EV_PAGE_ALLOC, now_, static_cast<uint16_t>(req.cpu));
    e.pfn = pfn;
    e.gfp_flags = req.gfp;
    e.order = static_cast<uint32_t>(req.order);
    e.migratetype = Num(t);
    Emit(e.hdr);
  }
}

uint64_t PageAllocator::AllocateWithFlags(const AllocRequest& req, uint32_t alloc_flags) {
  if (!ValidateRequest(req)) return kNoPfn;
  MigrateType t = grouping_disabled_ ? kUnmovable : GfpMigratetype(req.gfp);
  int zone = -1;
  uint32_t i = GetPageFromFreelist(req, t, GfpZone(req.gfp), alloc_flags, &zone);
  uint64_t pfn = FinishAlloc(req, t, i);
  MaybeCheck("AllocateWithFlags");
  return pfn;
}

void PageAllocator::MaybeCheck(const char* what) const {
#if !defined(NDEBUG) && defined(FRAGLAB_SIM_CHECK_EVERY_OP)
  constexpr bool kForced = true;
#else
  constexpr bool kForced = false;
#endif
  if (!kForced && !config_.check_invariants_every_op) [[likely]] return;
  CheckOrDie(what);
}

void PageAllocator::CheckOrDie(const char* what) const {
  absl::Status s = CheckInvariants();
  FRAGLAB_CHECK_MSG(s.ok(), "after %s at time %llu: %s", what, static_cast<unsigned long long>(now_),
                    std::string(s.message()).c_str());
}

void PageAllocator::NarrateAllocBegin(const AllocRequest& req, MigrateType t) {
  Say({.kind = DecisionKind::kAllocBegin, .cpu = req.cpu, .order = req.order, .type = Num(t),
       .text = absl::StrFormat("alloc order-%d %s cpu%d gfp %#x (%s)", req.order, TName(t), req.cpu, req.gfp,
                               OwnerKindName(req.owner))});
}

uint64_t PageAllocator::Allocate(const AllocRequest& req) {
  if (!ValidateRequest(req)) return kNoPfn;
  MigrateType t = grouping_disabled_ ? kUnmovable : GfpMigratetype(req.gfp);
  int highest = GfpZone(req.gfp);
  // Preferred zone: the first zone of the zonelist.
  const std::vector<int>& zl = Zonelist(req.node, highest);
  const int preferred = zl.empty() ? -1 : zl[0];
  if (narrating()) [[unlikely]] NarrateAllocBegin(req, t);
  if (preferred < 0) return FinishAlloc(req, t, kNil);
  int zone = -1;
  // Fast path: LOW watermark, ALLOC_NOFRAGMENT when the preferred zone is Normal.
  uint32_t flags = alloc::kWmarkLow | NoFragmentFlags(zones_[preferred], req.gfp);
  uint32_t i = kNil;
  if (!narrator_ && !config_.pcp) [[likely]] {
    // The common case of the zonelist walk, written out: the preferred zone
    // passes its watermark and has a block of the requested type. This is
    // exactly what the first iteration of GetPageFromFreelist does without
    // pcp lists (no HIGHATOMIC flag on the fast path, nothing narrated);
    // when either test fails nothing has changed and the full walk runs.
    Zone& z = zones_[preferred];
    if (WatermarkFast(z, req.order, Mark(z, flags), highest, flags)) {
      i = RmqueueSmallest(z, req.order, t, req.cpu);
      if (i != kNil && (flags & alloc::kKswapd) && z.boosted_flag) [[unlikely]] {
        z.boosted_flag = false;
        WakeKswapd(z.node, 0, z.type, /*from_boost=*/true, 0, true);
      }
    }
  }
  if (i == kNil) i = GetPageFromFreelist(req, t, highest, flags, &zone);
  uint64_t pfn = i != kNil ? FinishAlloc(req, t, i) : AllocateSlow(req, t, highest);
  MaybeCheck("Allocate");
  return pfn;
}

void PageAllocator::ReportFree(uint64_t pfn, int order, int cpu) {
  const uint32_t i = static_cast<uint32_t>(pfn - base_pfn_);
  if (narrating()) {
    Say({.kind = DecisionKind::kFree, .cpu = cpu, .pfn = pfn, .order = order,
         .type = Num(BlockType(i)),
         .text = absl::StrFormat("free pfn %#x order %d cpu%d (pageblock type %s)", pfn, order, cpu,
                                 TName(BlockType(i)))});
  }
  if (sink_) {
    fl_page_free e;
    InitRecord(e, FL_EV_PAGE_FREE, now_, static_cast<uint16_t>(cpu));
    e.pfn = pfn;
    e.order = static_cast<uint32_t>(order);
    Emit(e.hdr);
  }
}

absl::Status PageAllocator::Free(uint64_t pfn, int order, int cpu) {
  if (pfn < base_pfn_ || pfn - base_pfn_ >= n_pages_) {
    return absl::InvalidArgumentError(absl::StrFormat("free of pfn %#x: outside the machine", pfn));
  }
  if (cpu < 0 || cpu >= config_.cpus) {
    return absl::InvalidArgumentError(
        absl::StrFormat("free of pfn %#x: cpu %d outside 0..%d", pfn, cpu, config_.cpus - 1));
  }
  uint32_t i = static_cast<uint32_t>(pfn - base_pfn_);
  uint8_t s = state_[i];
  if (KindOf(s) != kKindAlloc || static_cast<OwnerKind>(aux_[i] & 0x1f) == OwnerKind::kReserved) {
    return absl::InvalidArgumentError(
        absl::StrFormat("free of pfn %#x order %d: not the first page of an allocated block", pfn, order));
  }
  if (OrderOf(s) != order) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "free of pfn %#x order %d: the block there was allocated with order %d", pfn, order, OrderOf(s)));
  }
  Zone& z = zones_[ZoneOfPfn(pfn)];
  if (narrator_ || sink_) [[unlikely]] ReportFree(pfn, order, cpu);
  state_[i] = 0;
  aux_[i] = 0;
  bool pcp_order = order <= kCostlyOrder || (config_.thp && order == kPageblockOrder);
  if (config_.pcp && pcp_order) {
    FreeToPcp(z, i, order, cpu);
  } else {
    FreeToBuddy(z, i, order);
  }
  MaybeCheck("Free");
  return absl::OkStatus();
}

absl::Status PageAllocator::ConvertPageblock(uint64_t pfn, MigrateType type) {
  int zi = ZoneOfPfn(pfn);
  if (zi < 0) return absl::InvalidArgumentError(absl::StrFormat("convert pageblock of pfn %#x: outside every zone", pfn));
  if (type >= kNumMigrateTypes || (type == kCma && !numbering_.with_cma()))
    return absl::InvalidArgumentError(absl::StrFormat("convert pageblock of pfn %#x: bad type %d", pfn, int{type}));
  Zone& z = zones_[zi];
  uint32_t start = static_cast<uint32_t>(pfn - base_pfn_) & ~static_cast<uint32_t>(kPageblockPages - 1);
  if (!BlockInZone(z, start))
    return absl::InvalidArgumentError(absl::StrFormat("convert pageblock of pfn %#x: block not inside zone %s", pfn, ZoneName(zi)));
  MigrateType old = BlockType(start);
  int moved = 0;
  // A pageblock inside a free order-10 buddy (6.10+ keeps free blocks on
  // the list of their pageblock type): like move_freepages_block_isolate,
  // deal with the whole buddy. Mergeable types end up as one block of the
  // new type (the kernel splits and re-merges, re-typing the buddy); an
  // isolated half is split off as its own order-9 block.
  uint32_t large = start & ~((1u << kMaxOrder) - 1);
  if (config_.era != Era::kLegacy && state_[large] == MakeState(kKindFree, kMaxOrder) &&
      large >= z.start && large + (1u << kMaxOrder) <= z.end) {
    DelFree(z, large);
    if (IsMergeable(type) && IsMergeable(BlockType(large)) && IsMergeable(BlockType(large + kPageblockPages))) {
      ChangeBlockRange(large, kMaxOrder, type);
      AddFree(z, large, kMaxOrder, type, /*tail=*/true);
    } else {
      SetBlockType(start, type);
      AddFree(z, large, kPageblockOrder, BlockType(large), /*tail=*/true);
      AddFree(z, large + kPageblockPages, kPageblockOrder, BlockType(large + kPageblockPages), /*tail=*/true);
    }
    moved = 1 << kMaxOrder;
  } else {
    moved = MoveFreeBlocksOfBlock(z, start, type);
    SetBlockType(start, type);
  }
  if (narrating()) [[unlikely]] {
    Say({.kind = DecisionKind::kConvert, .zone = zi, .pfn = PfnOf(start), .type = Num(old), .type2 = Num(type),
         .value = moved,
         .text = absl::StrFormat("pageblock %d converted %s -> %s, %d free pages moved", PfnOf(start) >> kPageblockOrder,
                                 TName(old), TName(type), moved)});
  }
  return absl::OkStatus();
}

absl::Status PageAllocator::SetOwner(uint64_t pfn, OwnerKind owner) {
  if (pfn < base_pfn_ || pfn - base_pfn_ >= n_pages_ ||
      KindOf(state_[pfn - base_pfn_]) != kKindAlloc) {
    return absl::InvalidArgumentError(
        absl::StrFormat("set owner of pfn %#x: not the first page of an allocated block", pfn));
  }
  uint8_t& a = aux_[pfn - base_pfn_];
  a = static_cast<uint8_t>((a & 0xe0) | static_cast<uint8_t>(owner));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Reclaim: kswapd and direct reclaim (§5.5, mm/vmscan.c), and the slow path
// (__alloc_pages_slowpath, §5). Model choices, all deterministic:
// - kswapd never runs inside an allocation. A wake-up marks the node's
//   kswapd pending; AdvanceTime runs pending kswapds first, at the time the
//   clock stood at when it was called (node order), before anything due
//   later. Within one operation of the caller, pressure is therefore met by
//   the slow path (MIN watermark, then direct reclaim), as on a kernel
//   whose kswapd cannot keep up.
// - Reclaim asks the owner model (PageUser::Reclaim) for pages. It reports
//   only what it freed, so pgscan_* counts the same pages as pgsteal_*.
// - A kswapd pass asks for the pages still missing to the watermark
//   (at least SWAP_CLUSTER_MAX); it stops when the node is balanced, after
//   the boost was reclaimed, or when a pass frees nothing (the owner model
//   gave all it had: further priorities would find nothing either).

namespace {
constexpr int kMaxReclaimRetries = 16;   // MAX_RECLAIM_RETRIES
constexpr int kMaxCompactRetries = 16;   // MAX_COMPACT_RETRIES
constexpr uint64_t kSwapClusterMax = 32; // SWAP_CLUSTER_MAX
// compact_result values (reference §3) the slow path looks at.
constexpr int kCompactResultSkipped = 1;
constexpr int kCompactResultDeferred = 2;
constexpr int kCompactResultSuccess = 8;
constexpr uint64_t kPcpDecayPeriod = 1000000000;  // one simulated second
constexpr int kMaxKswapdPasses = 1 << 16;
}  // namespace

bool PageAllocator::NodeBalanced(int node, int order, int highest) const {
  // pgdat_balanced: one eligible zone at its high watermark (boost
  // included) for `order` is enough; a node without eligible zones is
  // balanced by definition.
  bool any = false;
  for (int zt = 0; zt <= highest; ++zt) {
    int zi = FindZone(node, static_cast<ZoneType>(zt));
    if (zi < 0 || zones_[zi].managed == 0) continue;
    any = true;
    const Zone& z = zones_[zi];
    if (WatermarkOk(z, order, static_cast<int64_t>(z.wmark[2] + z.boost), highest, 0, z.free_pages)) return true;
  }
  return !any;
}

bool PageAllocator::NodeBoosted(int node, int highest) const {
  for (int zt = highest; zt >= 0; --zt) {
    int zi = FindZone(node, static_cast<ZoneType>(zt));
    if (zi >= 0 && zones_[zi].managed > 0 && zones_[zi].boost > 0) return true;
  }
  return false;
}

void PageAllocator::WakeKswapd(int node, int order, int highest, bool from_boost, uint64_t gfp_flags,
                               bool record) {
  if (record) kswapd_wakeups_.push_back({node, order, highest, from_boost});
  if (node < 0 || node >= config_.nodes) return;
  // wakeup_kswapd for the node's first zone of the walk (its highest
  // populated zone up to `highest`).
  int zid = -1;
  for (int zt = highest; zt >= 0 && zid < 0; --zt) {
    int zi = FindZone(node, static_cast<ZoneType>(zt));
    if (zi >= 0 && zones_[zi].managed > 0) zid = zt;
  }
  if (zid < 0) return;
  KswapdState& k = kswapd_[node];
  k.order = std::max(k.order, order);
  k.highest_zoneidx = std::max(k.highest_zoneidx, highest);
  // Already woken and not yet run: nothing more to do (no event).
  if (k.pending) return;
  // Hopeless node, or balanced and not boosted: kswapd stays asleep; a
  // caller that cannot reclaim directly gets kcompactd instead.
  if (k.failures >= kMaxReclaimRetries || (NodeBalanced(node, order, highest) && !NodeBoosted(node, highest))) {
    if (!(gfp_flags & gfp::kDirectReclaim)) WakeupKcompactd(node, order, highest);
    return;
  }
  if (sink_) {
    fl_kswapd e;
    InitRecord(e, FL_EV_KSWAPD_WAKEUP, now_, 0);
    e.gfp_flags = gfp_flags;
    e.nid = node;
    e.zid = zid;
    e.order = order;
    Emit(e.hdr);
  }
  if (narrating()) [[unlikely]] {
    Say({.kind = DecisionKind::kKswapd, .order = order, .value = node, .yes = true,
         .text = absl::StrFormat("kswapd%d woken for order %d%s", node, order,
                                 from_boost ? " (watermark boost)" : " (a zone is below its low watermark)")});
  }
  k.pending = true;
}

void PageAllocator::WakeAllKswapds(const AllocRequest& req, int order, int highest, bool record) {
  // wake_all_kswapds: every node of the zonelist once, in walk order.
  if (config_.defrag_mode) order = std::max(order, kPageblockOrder);
  int last_node = -1;
  for (int zi : Zonelist(req.node, highest)) {
    if (zones_[zi].node == last_node) continue;
    last_node = zones_[zi].node;
    WakeKswapd(last_node, order, highest, /*from_boost=*/false, req.gfp, record);
  }
}

uint64_t PageAllocator::ReclaimFromOwners(int node, int highest, uint64_t nr_to_reclaim, int order, bool direct) {
  if (page_user_ == nullptr || nr_to_reclaim == 0) return 0;
  ReclaimRequest r;
  r.node = node;
  r.highest_zone_type = highest;
  r.nr_to_reclaim = nr_to_reclaim;
  r.order = order;
  r.direct = direct;
  uint64_t freed = page_user_->Reclaim(r);
  if (direct) {
    vm_events_.pgscan_direct += freed;
    vm_events_.pgsteal_direct += freed;
  } else {
    vm_events_.pgscan_kswapd += freed;
    vm_events_.pgsteal_kswapd += freed;
  }
  // shrink_node: a node that gave pages back is not hopeless any more.
  if (freed > 0) kswapd_[node].failures = 0;
  return freed;
}

uint64_t PageAllocator::KswapdDeficit(int node, int order, int highest) const {
  // Pages missing until the first eligible zone would be balanced (the
  // smallest shortfall over the eligible zones), at least SWAP_CLUSTER_MAX.
  uint64_t best = ~uint64_t{0};
  for (int zt = 0; zt <= highest; ++zt) {
    int zi = FindZone(node, static_cast<ZoneType>(zt));
    if (zi < 0 || zones_[zi].managed == 0) continue;
    const Zone& z = zones_[zi];
    int64_t need = static_cast<int64_t>(z.wmark[2] + z.boost + z.lowmem_reserve[highest]) + 1 +
                   UnusableFree(z, order, 0) - z.free_pages;
    best = std::min(best, static_cast<uint64_t>(std::max<int64_t>(need, 0)));
  }
  if (best == ~uint64_t{0}) best = 0;
  return std::max(best, kSwapClusterMax);
}

int PageAllocator::BalanceNode(int node, int order, int highest) {
  // balance_pgdat. The boost of each eligible zone is noted first: boosted
  // reclaim frees that many pages even when the node is balanced, and the
  // noted boost is taken off the zones at the end.
  uint64_t zone_boosts[kNumZoneTypes] = {};
  uint64_t nr_boost_reclaim = 0;
  for (int zt = 0; zt <= highest; ++zt) {
    int zi = FindZone(node, static_cast<ZoneType>(zt));
    if (zi < 0 || zones_[zi].managed == 0) continue;
    zone_boosts[zt] = zones_[zi].boost;
    nr_boost_reclaim += zones_[zi].boost;
  }
  const bool boosted = nr_boost_reclaim > 0;
  uint64_t total = 0;
  // Each pass must free pages to continue; the cap only guards against an
  // owner model that reports pages it did not free.
  for (int pass = 0; pass < kMaxKswapdPasses; ++pass) {
    bool balanced = NodeBalanced(node, order, highest);
    // An imbalanced node is reclaimed normally; boosting waits.
    if (!balanced && nr_boost_reclaim) nr_boost_reclaim = 0;
    if (!nr_boost_reclaim && balanced) break;
    uint64_t want = nr_boost_reclaim ? std::max(nr_boost_reclaim, kSwapClusterMax) : KswapdDeficit(node, order, highest);
    uint64_t freed = ReclaimFromOwners(node, highest, want, order, /*direct=*/false);
    total += freed;
    if (freed == 0) break;
    nr_boost_reclaim -= std::min(nr_boost_reclaim, freed);
    // kswapd_shrink_node: a high-order kswapd falls back to order 0 once
    // it reclaimed compact_gap(order) pages; compaction does the rest.
    if (order > 0 && total >= (uint64_t{2} << order)) order = 0;
  }
  if (total == 0 && !NodeBalanced(node, order, highest)) ++kswapd_[node].failures;
  if (boosted) {
    for (int zt = 0; zt <= highest; ++zt) {
      int zi = FindZone(node, static_cast<ZoneType>(zt));
      if (zi < 0) continue;
      zones_[zi].boost -= std::min(zones_[zi].boost, zone_boosts[zt]);
    }
    // There is likely room now: let kcompactd defragment pageblocks.
    WakeupKcompactd(node, kPageblockOrder, highest);
  }
  return order;
}

void PageAllocator::RunKswapd(int node) {
  KswapdState& k = kswapd_[node];
  if (!k.pending) return;
  const int order = k.order;
  const int highest = k.highest_zoneidx < 0 ? kNumZoneTypes - 1 : k.highest_zoneidx;
  k.pending = false;
  k.order = 0;
  k.highest_zoneidx = -1;
  if (sink_) {
    fl_kswapd e;
    InitRecord(e, FL_EV_KSWAPD_WAKE, now_, 0);
    e.nid = node;
    e.zid = highest;
    e.order = order;
    Emit(e.hdr);
  }
  ++vm_events_.kswapd_wake;
  const uint64_t stolen_before = vm_events_.pgsteal_kswapd;
  const int reclaim_order = BalanceNode(node, order, highest);
  if (narrating()) [[unlikely]] {
    Say({.kind = DecisionKind::kKswapd, .order = reclaim_order,
         .value = static_cast<int64_t>(vm_events_.pgsteal_kswapd - stolen_before),
         .yes = NodeBalanced(node, reclaim_order, highest),
         .text = absl::StrFormat("kswapd%d ran: %d pages reclaimed; node %s at order %d", node,
                                 vm_events_.pgsteal_kswapd - stolen_before,
                                 NodeBalanced(node, reclaim_order, highest) ? "balanced" : "still unbalanced",
                                 reclaim_order)});
  }
  // kswapd_try_to_sleep: a balanced node clears ZONE_BELOW_HIGH on its
  // zones that are at their high watermark and wakes kcompactd for the
  // order kswapd was asked for.
  if (NodeBalanced(node, reclaim_order, highest)) {
    for (int zt = 0; zt <= highest; ++zt) {
      int zi = FindZone(node, static_cast<ZoneType>(zt));
      if (zi < 0 || zones_[zi].managed == 0) continue;
      const Zone& z = zones_[zi];
      if (WatermarkOk(z, 0, static_cast<int64_t>(z.wmark[2] + z.boost), highest, 0, z.free_pages)) ClearBelowHigh(zi);
    }
    WakeupKcompactd(node, order, highest);
  }
  if (sink_) {
    fl_kswapd e;
    InitRecord(e, FL_EV_KSWAPD_SLEEP, now_, 0);
    e.nid = node;
    Emit(e.hdr);
  }
}

uint64_t PageAllocator::DirectReclaim(const AllocRequest& req, int highest) {
  // __perform_reclaim -> try_to_free_pages: SWAP_CLUSTER_MAX pages from the
  // nodes of the zonelist, in walk order, stopping once enough came back.
  ++vm_events_.allocstall;
  if (sink_) {
    fl_direct_reclaim e;
    InitRecord(e, FL_EV_DIRECT_RECLAIM_BEGIN, now_, static_cast<uint16_t>(req.cpu));
    e.gfp_flags = req.gfp;
    e.order = req.order;
    Emit(e.hdr);
  }
  uint64_t freed = 0;
  int last_node = -1;
  for (int zi : Zonelist(req.node, highest)) {
    if (zones_[zi].node == last_node) continue;
    last_node = zones_[zi].node;
    freed += ReclaimFromOwners(last_node, highest, kSwapClusterMax - freed, req.order, /*direct=*/true);
    if (freed >= kSwapClusterMax) break;
  }
  if (sink_) {
    fl_direct_reclaim e;
    InitRecord(e, FL_EV_DIRECT_RECLAIM_END, now_, static_cast<uint16_t>(req.cpu));
    e.nr_reclaimed = freed;
    Emit(e.hdr);
  }
  if (narrating()) [[unlikely]] {
    Say({.kind = DecisionKind::kDirectReclaim, .cpu = req.cpu, .order = req.order,
         .value = static_cast<int64_t>(freed),
         .text = absl::StrFormat("direct reclaim: %d pages of clean page cache and reclaimable slab freed "
                                 "(asked for %d)",
                                 freed, kSwapClusterMax)});
  }
  return freed;
}

uint64_t PageAllocator::ZoneReclaimablePages(int zone) const {
  // zone_reclaimable_pages: the file LRU of the zone (anonymous pages only
  // count with swap, which the owner model does not reclaim here).
  const Zone& z = zones_[zone];
  uint64_t n = 0;
  for (uint32_t i = z.start; i < z.end;) {
    uint8_t s = state_[i];
    if (KindOf(s) == kKindNone) {
      ++i;
      continue;
    }
    if (KindOf(s) == kKindAlloc && static_cast<OwnerKind>(aux_[i] & 0x1f) == OwnerKind::kFile) {
      n += uint64_t{1} << OrderOf(s);
    }
    i += 1u << OrderOf(s);
  }
  return n;
}

bool PageAllocator::ShouldReclaimRetry(const AllocRequest& req, int highest, uint32_t flags, bool progress,
                                       int* no_progress_loops) {
  // should_reclaim_retry: costly orders always count as no progress.
  if (progress && req.order <= kCostlyOrder) {
    *no_progress_loops = 0;
  } else {
    ++*no_progress_loops;
  }
  if (*no_progress_loops > kMaxReclaimRetries) {
    // Before giving up, the HIGHATOMIC reserve is handed back.
    return UnreserveHighAtomic(req.node, static_cast<ZoneType>(highest), GfpMigratetype(req.gfp), true);
  }
  // Would the request pass the MIN watermark in some zone if everything
  // reclaimable there were freed?
  // The free pages alone are tried first: counting the reclaimable pages
  // walks the zone, and without a page user nothing is reclaimable.
  for (int zi : Zonelist(req.node, highest)) {
    const Zone& z = zones_[zi];
    const auto mark = static_cast<int64_t>(z.wmark[0]);
    if (WatermarkOk(z, req.order, mark, highest, flags, z.free_pages)) return true;
    if (page_user_ == nullptr) continue;
    int64_t available = z.free_pages + static_cast<int64_t>(ZoneReclaimablePages(zi));
    if (WatermarkOk(z, req.order, mark, highest, flags, available)) return true;
  }
  return false;
}

bool PageAllocator::ShouldCompactRetry(const AllocRequest& req, int highest, uint32_t flags, int compact_result,
                                       int* prio, int* retries) {
  // should_compact_retry.
  if (req.order == 0) return false;
  // Skipped for want of order-0 targets: retry if reclaim can give them.
  if (compact_result == kCompactResultSkipped) return CompactionZonelistSuitable(req, highest, flags);
  if (compact_result == kCompactResultSuccess) {
    // Compaction made a block but someone else got it: a few more tries
    // (a quarter as many for costly orders, which may fail).
    int max_retries = req.order > kCostlyOrder ? kMaxCompactRetries / 4 : kMaxCompactRetries;
    if (++*retries <= max_retries) return true;
  }
  // Otherwise try harder: costly orders stop at SYNC_LIGHT.
  int min_prio = req.order > kCostlyOrder ? kCompactPrioSyncLight : kCompactPrioSyncFull;
  if (*prio > min_prio) {
    --*prio;
    *retries = 0;
    return true;
  }
  return false;
}

uint64_t PageAllocator::AllocateSlow(const AllocRequest& req, MigrateType t, int highest) {
  // __alloc_pages_slowpath (§5). No OOM killer: where the kernel would
  // kill a task and retry, the request fails (alloc_fail).
  const bool can_direct_reclaim = req.gfp & gfp::kDirectReclaim;
  const bool costly = req.order > kCostlyOrder;
  // gfp_compaction_allowed. Without a page user nobody could be told that a
  // block moved (a bare allocator driven by pfns: allocator tests, replay),
  // so the slow path does not compact then.
  const bool can_compact = (req.gfp & gfp::kIo) && req.order > 0 && page_user_ != nullptr;
  int zone = -1;
  uint32_t flags = GfpToAllocFlags(req.gfp, req.order);
  if (narrating()) [[unlikely]] {
    Say({.kind = DecisionKind::kSlowPath, .cpu = req.cpu, .order = req.order, .type = Num(t),
         .yes = can_direct_reclaim,
         .text = absl::StrFormat("slow path: order %d %s, MIN watermark%s%s; %s", req.order, TName(t),
                                 (flags & alloc::kKswapd) ? ", kswapd woken" : "",
                                 (flags & alloc::kNoFragment) ? ", no fragmenting fallback" : "",
                                 can_direct_reclaim ? "may reclaim and compact directly"
                                                    : "may not reclaim or compact (atomic)")});
  }
  if (flags & alloc::kKswapd) WakeAllKswapds(req, req.order, highest, /*record=*/true);
  uint32_t i = GetPageFromFreelist(req, t, highest, flags, &zone);
  if (i != kNil) return FinishAlloc(req, t, i);

  int compact_prio = kCompactPrioSyncLight;  // DEF_COMPACT_PRIORITY
  int compact_result = kCompactResultSkipped;
  int compaction_retries = 0;
  int no_progress_loops = 0;
  // Costly orders, and non-movable high orders, try async compaction
  // before reclaiming.
  if (can_direct_reclaim && can_compact && (costly || t != kMovable)) {
    uint64_t pfn = kNoPfn;
    compact_result = TryDirectCompaction(req, t, highest, flags, kCompactPrioAsync, &pfn);
    if (pfn != kNoPfn) return pfn;
    if (costly && (req.gfp & gfp::kNoretry)) {
      // Whole-pageblock requests whose compaction was skipped (zones below
      // their watermarks) or deferred give up at once; otherwise they keep
      // to async compaction.
      if (compact_result == kCompactResultSkipped || compact_result == kCompactResultDeferred) {
        if (narrating()) [[unlikely]] {
          NarrateRetry(req, false, "costly __GFP_NORETRY request whose async compaction was skipped or deferred: fail");
        }
        return FailAlloc(req, t);
      }
      compact_prio = kCompactPrioAsync;
    }
  }
  // Whether the retries ran out (as opposed to a rule that gives up at
  // once): only then may defrag_mode fragment.
  bool exhausted = false;
  for (;;) {
    if (flags & alloc::kKswapd) WakeAllKswapds(req, req.order, highest, /*record=*/false);
    i = GetPageFromFreelist(req, t, highest, flags, &zone);
    if (i != kNil) return FinishAlloc(req, t, i);
    // Atomic requests neither reclaim nor compact.
    if (!can_direct_reclaim) {
      if (narrating()) [[unlikely]] NarrateRetry(req, false, "cannot reclaim (no __GFP_DIRECT_RECLAIM): fail");
      break;
    }
    // __alloc_pages_direct_reclaim: after progress, one retry, and if that
    // fails hand back a HIGHATOMIC block and drain the pcp lists, then once
    // more.
    const uint64_t progress = DirectReclaim(req, highest);
    if (progress > 0) {
      i = GetPageFromFreelist(req, t, highest, flags, &zone);
      if (i == kNil) {
        UnreserveHighAtomic(req.node, static_cast<ZoneType>(highest), t, false);
        DrainAllPcp();
        i = GetPageFromFreelist(req, t, highest, flags, &zone);
      }
      if (i != kNil) return FinishAlloc(req, t, i);
    }
    if (can_compact) {
      uint64_t pfn = kNoPfn;
      compact_result = TryDirectCompaction(req, t, highest, flags, compact_prio, &pfn);
      if (pfn != kNoPfn) return pfn;
    }
    if (req.gfp & gfp::kNoretry) {
      if (narrating()) [[unlikely]] NarrateRetry(req, false, "__GFP_NORETRY: no retry, fail");
      break;
    }
    // Costly requests retry only with __GFP_RETRY_MAYFAIL and compaction.
    if (costly && (!can_compact || !(req.gfp & gfp::kRetryMayfail))) {
      if (narrating()) [[unlikely]] {
        NarrateRetry(req, false, "costly order without __GFP_RETRY_MAYFAIL and compaction: no retry, fail");
      }
      break;
    }
    if (ShouldReclaimRetry(req, highest, flags, progress > 0, &no_progress_loops)) {
      if (narrating()) [[unlikely]] {
        NarrateRetry(req, true, absl::StrFormat("should_reclaim_retry: reclaimable pages could meet the MIN "
                                                "watermark (%d loops without progress): retry",
                                                no_progress_loops));
      }
      continue;
    }
    if (progress > 0 && can_compact &&
        ShouldCompactRetry(req, highest, flags, compact_result, &compact_prio, &compaction_retries)) {
      if (narrating()) [[unlikely]] {
        NarrateRetry(req, true, absl::StrFormat("should_compact_retry: compaction result %d, priority %d, "
                                                "%d retries: retry",
                                                compact_result, compact_prio, compaction_retries));
      }
      continue;
    }
    // defrag_mode (6.15+): only now, with reclaim and compaction exhausted,
    // may a blocking request fragment; the whole retry loop runs again
    // without NOFRAGMENT.
    if (config_.defrag_mode && (flags & alloc::kNoFragment) && !exhausted) {
      exhausted = true;
      flags &= ~alloc::kNoFragment;
      if (narrating()) [[unlikely]] {
        NarrateRetry(req, true, "defrag_mode: reclaim and compaction exhausted, retry allowing fragmenting fallbacks");
      }
      continue;
    }
    if (narrating()) [[unlikely]] NarrateRetry(req, false, "no reclaim or compaction retry left: fail");
    break;
  }
  return FailAlloc(req, t);
}

void PageAllocator::NarrateRetry(const AllocRequest& req, bool retry, const std::string& why) {
  Say({.kind = DecisionKind::kRetry, .cpu = req.cpu, .order = req.order, .yes = retry, .text = why});
}

uint64_t PageAllocator::FailAlloc(const AllocRequest& req, MigrateType t) {
  ++vm_events_.alloc_fail;
  return FinishAlloc(req, t, kNil);
}

void PageAllocator::AdvanceTime(uint64_t now) {
  if (now < now_) now = now_;
  if (NothingDueBy(now)) [[likely]] {
    // What the full walk below does when no kswapd or kcompactd is pending
    // and no timer falls due: only the clock moves (a replay calls this for
    // nearly every record).
    kswapd_wakeups_.clear();
    now_ = now;
    MaybeCheck("AdvanceTime");
    return;
  }
  // kswapd first, at the time its wake-ups were made (the clock as it
  // stands); what it wakes (kcompactd) follows.
  for (int n = 0; n < config_.nodes; ++n) RunKswapd(n);
  kswapd_wakeups_.clear();
  KcompactdBackground(now_);
  // Then, in time order, kcompactd's timeouts and the pcp decay ticks; at
  // equal times kcompactd goes first.
  while (next_pcp_decay_ <= now) {
    const uint64_t tick = next_pcp_decay_;
    if (tick > now_) KcompactdBackground(tick);
    now_ = std::max(now_, tick);
    PcpDecayTick();
    next_pcp_decay_ += kPcpDecayPeriod;
  }
  KcompactdBackground(now);
  now_ = now;
  MaybeCheck("AdvanceTime");
}

bool PageAllocator::NothingDueBy(uint64_t now) const {
  if (next_pcp_decay_ <= now) return false;
  // Before the first KcompactdBackground the compaction state is not sized.
  if (kcompactd_.size() != static_cast<size_t>(config_.nodes) ||
      compact_zones_.size() != static_cast<size_t>(num_zones())) {
    return false;
  }
  for (int n = 0; n < config_.nodes; ++n) {
    if (kswapd_[n].pending || kcompactd_[n].pending || kcompactd_[n].next_proactive <= now) return false;
  }
  return true;
}

absl::Status PageAllocator::SetVmSysctl(const std::string& name, int64_t value) {
  auto bad = [&](const char* why) {
    return absl::InvalidArgumentError(absl::StrFormat("sysctl vm.%s = %d: %s", name, value, why));
  };
  if (name == "min_free_kbytes") {
    if (value < 0) return bad("must be >= 0");
    config_.min_free_kbytes = value;
    SetupWatermarks();
  } else if (name == "watermark_scale_factor") {
    if (value < 1 || value > 3000) return bad("must be in 1..3000");
    config_.watermark_scale_factor = value;
    SetupWatermarks();
  } else if (name == "watermark_boost_factor") {
    if (value < 0) return bad("must be >= 0");
    config_.watermark_boost_factor = value;
  } else if (name == "percpu_pagelist_high_fraction") {
    if (value < 0 || (value > 0 && value < 8)) return bad("must be 0 or >= 8");
    config_.percpu_pagelist_high_fraction = value;
    SetupPcp();
  } else if (name == "defrag_mode") {
    if (value != 0 && value != 1) return bad("must be 0 or 1");
    config_.defrag_mode = value == 1;
  } else {
    return absl::InvalidArgumentError(
        absl::StrFormat("sysctl vm.%s: not a setting of the allocator model", name));
  }
  MaybeCheck("SetVmSysctl");
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Building start states (AllocateAt, SplitAllocated)

bool PageAllocator::CoveringBlock(uint32_t i, uint32_t* head) const {
  // The block that covers index i is the first block head found at or below
  // i when going up the orders: blocks never overlap, so a head of smaller
  // order that does not reach i rules out every larger one too.
  for (int o = 0; o <= kMaxOrder; ++o) {
    uint32_t h = i & ~((1u << o) - 1);
    uint8_t s = state_[h];
    if (KindOf(s) == kKindNone) continue;
    if (h + (1u << OrderOf(s)) > i) {
      *head = h;
      return true;
    }
    return false;
  }
  return false;
}

absl::Status PageAllocator::AllocateAt(uint64_t pfn, int order, OwnerKind owner, MigrateType type) {
  if (order < 0 || order > kMaxOrder) {
    return absl::InvalidArgumentError(
        absl::StrFormat("allocate at pfn %#x: order %d outside 0..10", pfn, order));
  }
  if (pfn & ((uint64_t{1} << order) - 1)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("allocate at pfn %#x: not aligned to order %d (2^%d pages)", pfn, order, order));
  }
  if (static_cast<int>(owner) >= kNumOwnerKinds) {
    return absl::InvalidArgumentError(
        absl::StrFormat("allocate at pfn %#x: owner kind %d unknown", pfn, static_cast<int>(owner)));
  }
  if (type >= kNumMigrateTypes || (type == kCma && !numbering_.with_cma())) {
    return absl::InvalidArgumentError(
        absl::StrFormat("allocate at pfn %#x: migratetype %d invalid for this machine", pfn, int{type}));
  }
  const uint64_t count = uint64_t{1} << order;
  const int zi = ZoneOfPfn(pfn);
  if (zi < 0 || pfn + count > zones_[zi].end_pfn) {
    uint64_t bad = pfn;
    if (zi >= 0) bad = zones_[zi].end_pfn;
    return absl::FailedPreconditionError(absl::StrFormat(
        "allocate at pfn %#x order %d: pfn %#x is outside every zone (or in another zone)", pfn, order, bad));
  }
  Zone& z = zones_[zi];
  const uint32_t first = static_cast<uint32_t>(pfn - base_pfn_);
  const uint32_t end = first + static_cast<uint32_t>(count);
  // Validate the whole range before changing anything.
  for (uint32_t p = first; p < end;) {
    uint32_t h = 0;
    if (!CoveringBlock(p, &h)) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "allocate at pfn %#x order %d: pfn %#x is not free (absent page, not in the buddy)", pfn, order,
          PfnOf(p)));
    }
    uint8_t s = state_[h];
    if (KindOf(s) == kKindAlloc) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "allocate at pfn %#x order %d: pfn %#x is allocated (order-%d block at %#x, owner %s)", pfn, order,
          PfnOf(p), OrderOf(s), PfnOf(h), OwnerKindName(static_cast<OwnerKind>(aux_[h] & 0x1f))));
    }
    if (KindOf(s) == kKindPcp) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "allocate at pfn %#x order %d: pfn %#x is on a per-CPU list (order-%d block at %#x)", pfn, order,
          PfnOf(p), OrderOf(s), PfnOf(h)));
    }
    p = h + (1u << OrderOf(s));
  }
  // Take every free block that overlaps the range. A block containing the
  // range is split down to it, the other halves going back to the head of
  // their lists (as take_page_off_buddy/break_down_buddy_pages do).
  for (uint32_t p = first; p < end;) {
    uint32_t h = 0;
    CoveringBlock(p, &h);
    int o = OrderOf(state_[h]);
    MigrateType lt = static_cast<MigrateType>(aux_[h]);
    DelFreeKnown(z, h, o, lt);
    if (o <= order) {
      p = h + (1u << o);
      continue;
    }
    uint32_t cur = h;
    while (o > order) {
      --o;
      uint32_t lower = cur, upper = cur + (1u << o);
      uint32_t keep = first >= upper ? upper : lower;
      uint32_t give = keep == upper ? lower : upper;
      // 6.10+ keeps each free block on the list of its pageblock's type.
      MigrateType t = (config_.era != Era::kLegacy && o >= kPageblockOrder) ? BlockType(give) : lt;
      AddFree(z, give, o, t, /*tail=*/false);
      cur = keep;
    }
    p = end;
  }
  state_[first] = MakeState(kKindAlloc, order);
  aux_[first] = static_cast<uint8_t>(static_cast<uint8_t>(owner) | (type << 5));
  MaybeCheck("AllocateAt");
  return absl::OkStatus();
}

absl::Status PageAllocator::SplitAllocated(uint64_t pfn) {
  if (pfn < base_pfn_ || pfn - base_pfn_ >= n_pages_ || KindOf(state_[pfn - base_pfn_]) != kKindAlloc) {
    return absl::InvalidArgumentError(
        absl::StrFormat("split of pfn %#x: not the first page of an allocated block", pfn));
  }
  const uint32_t i = static_cast<uint32_t>(pfn - base_pfn_);
  const int order = OrderOf(state_[i]);
  const uint8_t a = aux_[i];
  for (uint32_t p = i; p < i + (1u << order); ++p) {
    state_[p] = MakeState(kKindAlloc, 0);
    aux_[p] = a;
  }
  MaybeCheck("SplitAllocated");
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Queries

int PageAllocator::FindZone(int node, ZoneType type) const {
  for (size_t k = 0; k < zones_.size(); ++k)
    if (zones_[k].node == node && zones_[k].type == type) return static_cast<int>(k);
  return -1;
}

int PageAllocator::ZoneOfPfn(uint64_t pfn) const {
  if (zones_.size() == 1) return (pfn >= zones_[0].start_pfn && pfn < zones_[0].end_pfn) ? 0 : -1;
  for (int k : zone_by_start_)
    if (pfn >= zones_[k].start_pfn && pfn < zones_[k].end_pfn) return k;
  return -1;
}

int PageAllocator::num_zones() const { return static_cast<int>(zones_.size()); }

int PageAllocator::ZoneIndexOf(const Zone& z) const { return static_cast<int>(&z - zones_.data()); }

std::string PageAllocator::ZoneName(int zone) const {
  return ZoneTypeName(zones_[zone].type);
}

const char* PageAllocator::TName(MigrateType t) const { return kUpperTypeNames[t]; }

void PageAllocator::Say(Decision d) {
  d.time = now_;
  narrator_->Narrate(d);
}

ZoneStats PageAllocator::zone_stats(int zone) const {
  const Zone& z = zones_[zone];
  ZoneStats s;
  s.node = z.node;
  s.type = z.type;
  s.start_pfn = z.start_pfn;
  s.spanned = z.end_pfn - z.start_pfn;
  s.present = z.present;
  s.managed = z.managed;
  s.free_pages = static_cast<uint64_t>(z.free_pages);
  for (int o = 0; o < kNumOrders; ++o) s.nr_free[o] = z.nr_free[o];
  s.wmark_min = z.wmark[0];
  s.wmark_low = z.wmark[1];
  s.wmark_high = z.wmark[2];
  s.wmark_promo = z.wmark[3];
  s.boost = z.boost;
  for (int j = 0; j < kNumZoneTypes; ++j) s.lowmem_reserve[j] = z.lowmem_reserve[j];
  s.nr_reserved_highatomic = z.nr_reserved_highatomic;
  for (const Pcp& p : z.pcp) s.pcp_pages += static_cast<uint64_t>(p.count);
  return s;
}

uint64_t PageAllocator::FreeCount(int zone, int order, MigrateType type) const {
  return zones_[zone].count[order][type];
}

std::vector<uint64_t> PageAllocator::FreeList(int zone, int order, MigrateType type) const {
  std::vector<uint64_t> out;
  uint32_t s = ListSentinel(zones_[zone], order, type);
  for (uint32_t i = links_.Next(s); i != s; i = links_.Next(i)) out.push_back(PfnOf(i));
  return out;
}

MigrateType PageAllocator::PageblockType(uint64_t pfn) const {
  return BlockType(static_cast<uint32_t>(pfn - base_pfn_));
}

std::vector<uint64_t> PageAllocator::PageblockCounts(int zone) const {
  // pagetypeinfo_showblockcount_print: step 512 pfns from the zone start,
  // skipping pfns without a memmap (absent memory sections, such as the PCI
  // hole below 4 GiB). The model's equivalent: a block whose pages in the
  // zone are all absent is not counted.
  const Zone& z = zones_[zone];
  const ZoneConfig& c = config_.zones[static_cast<size_t>(zone)];
  std::vector<PfnRange> holes = c.holes;
  const uint64_t present = c.present ? c.present : c.spanned;
  if (holes.empty() && present < c.spanned) {
    holes.push_back({c.start_pfn + present, c.spanned - present});
  }
  std::vector<uint64_t> counts(numbering_.count(), 0);
  for (uint64_t pfn = z.start_pfn; pfn < z.end_pfn; pfn += kPageblockPages) {
    const uint64_t lo = pfn, hi = std::min(z.end_pfn, pfn + kPageblockPages);
    uint64_t absent = 0;
    for (const PfnRange& h : holes) {
      const uint64_t hs = std::max(lo, h.start), he = std::min(hi, h.start + h.count);
      if (hs < he) absent += he - hs;
    }
    if (absent == hi - lo) continue;
    counts[numbering_.Number(PageblockType(pfn))]++;
  }
  return counts;
}

PageInfo PageAllocator::Page(uint64_t pfn) const {
  PageInfo info;
  if (pfn < base_pfn_ || pfn - base_pfn_ >= n_pages_) return info;
  uint32_t i = static_cast<uint32_t>(pfn - base_pfn_);
  uint8_t s = state_[i];
  info.order = OrderOf(s);
  switch (KindOf(s)) {
    case kKindNone: info.kind = PageInfo::Kind::kNone; info.order = 0; break;
    case kKindFree:
      info.kind = PageInfo::Kind::kFree;
      info.list_type = static_cast<MigrateType>(aux_[i]);
      break;
    case kKindPcp:
      info.kind = PageInfo::Kind::kPcp;
      info.list_type = static_cast<MigrateType>(aux_[i]);
      break;
    case kKindAlloc:
      info.kind = PageInfo::Kind::kAllocated;
      info.owner = static_cast<OwnerKind>(aux_[i] & 0x1f);
      info.alloc_type = static_cast<MigrateType>(aux_[i] >> 5);
      break;
  }
  return info;
}

PcpStats PageAllocator::pcp_stats(int zone, int cpu) const {
  const Pcp& p = zones_[zone].pcp[cpu];
  return {p.count, p.high, p.high_min, p.high_max, p.batch, p.alloc_factor, p.free_factor, p.free_count};
}

std::vector<uint64_t> PageAllocator::PcpList(int zone, int cpu, int order, MigrateType type) const {
  std::vector<uint64_t> out;
  const Pcp& p = zones_[zone].pcp[cpu];
  uint32_t s = p.list_base + static_cast<uint32_t>(PcpIndex(order, type));
  for (uint32_t i = links_.Next(s); i != s; i = links_.Next(i)) out.push_back(PfnOf(i));
  return out;
}

size_t PageAllocator::MemoryBytes() const {
  size_t bytes = sizeof(*this);
  bytes += links_.MemoryBytes();
  bytes += size_t{n_pages_} * 2;                          // state_, aux_
  bytes += size_t{n_pages_ >> kPageblockOrder};            // block_
  bytes += zones_.capacity() * sizeof(Zone);
  for (const Zone& z : zones_) bytes += z.pcp.capacity() * sizeof(Pcp);
  bytes += zone_by_start_.capacity() * sizeof(int);
  bytes += kswapd_wakeups_.capacity() * sizeof(KswapdWakeup);
  bytes += kswapd_.capacity() * sizeof(KswapdState);
  bytes += config_.zones.capacity() * sizeof(ZoneConfig) + config_.cpu_node.capacity() * sizeof(int);
  for (const auto& zc : config_.zones)
    bytes += (zc.holes.capacity() + zc.reserved.capacity()) * sizeof(PfnRange);
  return bytes;
}

// ---------------------------------------------------------------------------
// Snapshot (§3, fl_snapshot_zone)

fl_snapshot_zone PageAllocator::Snapshot(int zone) const {
  const Zone& z = zones_[zone];
  fl_snapshot_zone r;
  InitRecord(r, FL_EV_SNAPSHOT_ZONE, now_, 0);
  r.nid = z.node;
  r.zone_idx = z.type;
  r.flags = 0;
  r.nr_migratetypes = static_cast<uint32_t>(numbering_.count());
  r.start_pfn = z.start_pfn;
  r.spanned = z.end_pfn - z.start_pfn;
  r.present = z.present;
  r.managed = z.managed;
  r.nr_free_pages = static_cast<uint64_t>(z.free_pages);
  r.wmark_min = z.wmark[0];
  r.wmark_low = z.wmark[1];
  r.wmark_high = z.wmark[2];
  r.wmark_promo = z.wmark[3];
  r.boost = z.boost;
  for (int o = 0; o < kNumOrders; ++o) {
    r.nr_free[o] = z.nr_free[o];
    for (int t = 0; t < kNumMigrateTypes; ++t) {
      if (t == kCma && !numbering_.with_cma()) continue;
      r.free_by_type[o][Num(static_cast<MigrateType>(t))] = z.count[o][t];
    }
  }
  std::vector<uint64_t> counts = PageblockCounts(zone);
  for (size_t n = 0; n < counts.size(); ++n) r.pageblocks[n] = static_cast<uint32_t>(counts[n]);
  return r;
}

void PageAllocator::EmitSnapshots() {
  if (!sink_) return;
  for (int k : zone_by_start_) {
    if (zones_[k].present == 0) continue;
    fl_snapshot_zone r = Snapshot(k);
    Emit(r.hdr);
  }
}

// ---------------------------------------------------------------------------
// Invariants

absl::Status PageAllocator::CheckInvariants() const {
  auto fail = [](auto&&... args) { return absl::InternalError(absl::StrCat(args...)); };
  // Walk every page range of every zone: heads tile the zone without overlap.
  for (size_t k = 0; k < zones_.size(); ++k) {
    const Zone& z = zones_[k];
    uint64_t counted[kNumOrders][kNumMigrateTypes] = {};
    int64_t free_pages = 0, free_ha = 0;
    uint32_t covered_until = z.start;  // first index not covered by a previous block
    for (uint32_t i = z.start; i < z.end; ++i) {
      uint8_t s = state_[i];
      if (KindOf(s) == kKindNone) continue;
      int o = OrderOf(s);
      if (o > kMaxOrder) return fail("pfn ", PfnOf(i), ": order ", o, " > 10");
      if (i & ((1u << o) - 1)) return fail("pfn ", PfnOf(i), ": order-", o, " block not aligned");
      if (i < covered_until)
        return fail("pfn ", PfnOf(i), ": block head inside the block before it (overlap)");
      if (i + (1u << o) > z.end) return fail("pfn ", PfnOf(i), ": order-", o, " block crosses zone end");
      covered_until = i + (1u << o);
      if (KindOf(s) == kKindFree) {
        auto t = aux_[i];
        if (t >= kNumMigrateTypes) return fail("pfn ", PfnOf(i), ": bad list type ", int{t});
        counted[o][t]++;
        if (t != kIsolate) free_pages += int64_t{1} << o;
        if (t == kHighAtomic) free_ha += int64_t{1} << o;
        if (config_.era != Era::kLegacy && t != BlockType(i) && BlockType(i) != kIsolate) {
          return fail("pfn ", PfnOf(i), ": free order-", o, " block on list ", TName(static_cast<MigrateType>(t)),
                      " but its pageblock is ", TName(BlockType(i)));
        }
        // Buddies must have merged: a free buddy of the same order would
        // have been merged unless a pageblock-type rule forbade it.
        if (o < kMaxOrder) {
          uint32_t b = i ^ (1u << o);
          if (b >= z.start && b + (1u << o) <= z.end && state_[b] == MakeState(kKindFree, o)) {
            bool forbidden = o >= kPageblockOrder && BlockType(b) != BlockType(i) &&
                             (!IsMergeable(BlockType(b)) || !IsMergeable(BlockType(i)));
            // <= 6.9 merges with the type passed in; blocks of a mergeable
            // pair always merge, so an unmerged pair needs a type barrier.
            if (!forbidden)
              return fail("pfn ", PfnOf(i), " and its buddy ", PfnOf(b), " are both free at order ", o,
                          " and not merged");
          }
        }
      }
    }
    // List walks: membership, order, counts.
    for (int o = 0; o < kNumOrders; ++o) {
      uint64_t nr = 0;
      for (int t = 0; t < kNumMigrateTypes; ++t) {
        uint32_t s = ListSentinel(z, o, t);
        uint64_t n = 0;
        uint32_t prev = s;
        for (uint32_t i = links_.Next(s); i != s; i = links_.Next(i)) {
          if (i >= n_pages_) return fail("zone ", k, " list (", o, ",", t, "): link to a sentinel");
          if (links_.Prev(i) != prev) return fail("pfn ", PfnOf(i), ": broken prev link");
          if (state_[i] != MakeState(kKindFree, o) || aux_[i] != t)
            return fail("pfn ", PfnOf(i), " on list (order ", o, ", ", TName(static_cast<MigrateType>(t)),
                        ") is not a free block of that order/type");
          if (i < z.start || i >= z.end) return fail("pfn ", PfnOf(i), " on a list of another zone");
          prev = i;
          if (++n > n_pages_) return fail("zone ", k, " list cycle");
        }
        if (n != z.count[o][t] || n != counted[o][t])
          return fail("zone ", k, " order ", o, " type ", t, ": list holds ", n, ", count says ",
                      z.count[o][t], ", heads found ", counted[o][t]);
        bool bit = (z.mask[t] >> o) & 1;
        if (bit != (n > 0)) return fail("zone ", k, " order ", o, " type ", t, ": mask bit wrong");
        nr += n;
      }
      if (nr != z.nr_free[o]) return fail("zone ", k, " order ", o, ": nr_free ", z.nr_free[o], " != ", nr);
    }
    if (free_pages != z.free_pages) return fail("zone ", k, ": free_pages ", z.free_pages, " != ", free_pages);
    if (free_ha != z.free_highatomic) return fail("zone ", k, ": free highatomic mismatch");
    // Per-CPU lists.
    for (int c = 0; c < config_.cpus; ++c) {
      const Pcp& p = z.pcp[c];
      int64_t pages = 0;
      for (int l = 0; l < kMaxPcpLists; ++l) {
        uint32_t s = p.list_base + static_cast<uint32_t>(l);
        uint32_t prev = s;
        uint64_t n = 0;
        for (uint32_t i = links_.Next(s); i != s; i = links_.Next(i)) {
          if (l >= nr_pcp_lists_) return fail("pcp list ", l, " used but not configured");
          if (links_.Prev(i) != prev) return fail("pcp pfn ", PfnOf(i), ": broken prev link");
          if (KindOf(state_[i]) != kKindPcp || OrderOf(state_[i]) != PcpIndexOrder(l))
            return fail("pfn ", PfnOf(i), " on pcp list ", l, " is not a pcp block of its order");
          if (i < z.start || i >= z.end) return fail("pcp pfn ", PfnOf(i), " of another zone");
          pages += int64_t{1} << OrderOf(state_[i]);
          prev = i;
          if (++n > n_pages_) return fail("pcp list cycle");
        }
      }
      if (pages != p.count) return fail("zone ", k, " cpu ", c, ": pcp count ", p.count, " != ", pages);
    }
  }
  return absl::OkStatus();
}

}  // namespace fraglab::sim
