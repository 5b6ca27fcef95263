// Vocabulary of the page-allocator model: kernel eras, migratetypes and their
// numbering, gfp bits, zone indices, allocation flags and page-owner kinds.
// Numbers follow the modelled kernel (reference/kernel-page-allocator.md §1,
// §2.1) so that events carry the kernel's own values.
#pragma once

#include <cstdint>

namespace fraglab::sim {

// Fallback policy of the modelled kernel (reference §0).
enum class Era : uint8_t {
  kLegacy,   // <= 6.9 and all 6.1.y: whole foreign buddy moved to the requester
  kHygiene,  // 6.10-6.14, 6.12.0-6.12.28: convert the block or cut exactly the request
  kClaim,    // >= 6.15, 6.12.29+: claim phase then steal phase
};

// Per-CPU list sizing rules (reference §4).
enum class PcpTuning : uint8_t {
  kStatic,  // <= 6.6: high fixed from the low watermark
  kAuto,    // 6.7+: high floats between high_min and high_max
};

// Migratetypes by meaning. The kernel's *number* of a type depends on
// CONFIG_CMA (ISOLATE is 4 without CMA, 5 with it): see MigratetypeNumbering.
// Inside the simulator types are kept as these values; numbers are produced
// only where they leave the simulator (events, snapshots, /proc text).
enum MigrateType : uint8_t {
  kUnmovable = 0,
  kMovable = 1,
  kReclaimable = 2,
  kHighAtomic = 3,
  kCma = 4,
  kIsolate = 5,
};
inline constexpr int kNumMigrateTypes = 6;  // internal slots (CMA slot unused without CMA)
inline constexpr int kNumPcpTypes = 3;      // MIGRATE_PCPTYPES

// "Mergeable" types may merge across pageblocks of differing type (§1.1).
inline constexpr bool IsMergeable(MigrateType t) { return t <= kHighAtomic; }

// Maps internal types to the modelled kernel's enum numbers and back.
class MigratetypeNumbering {
 public:
  explicit constexpr MigratetypeNumbering(bool with_cma) : cma_(with_cma) {}
  bool with_cma() const { return cma_; }
  // Kernel MIGRATE_TYPES: 5 without CMA, 6 with.
  constexpr int count() const { return cma_ ? 6 : 5; }
  // Kernel number of `t`; kCma must not be used without CMA.
  constexpr int Number(MigrateType t) const {
    return (t == kIsolate && !cma_) ? 4 : static_cast<int>(t);
  }
  // Internal type of kernel number `n` (0 <= n < count()).
  constexpr MigrateType FromNumber(int n) const {
    return (!cma_ && n == 4) ? kIsolate : static_cast<MigrateType>(n);
  }
  // The kernel's migratetype_names[] entry for kernel number `n`.
  const char* Name(int n) const;

 private:
  bool cma_;
};

// Kernel zone indices (ZONE_DMA..ZONE_MOVABLE, reference §1).
enum ZoneType : uint8_t { kZoneDma = 0, kZoneDma32 = 1, kZoneNormal = 2, kZoneMovable = 3 };
inline constexpr int kNumZoneTypes = 4;
const char* ZoneTypeName(ZoneType z);

inline constexpr int kMaxOrder = 10;        // MAX_PAGE_ORDER
inline constexpr int kNumOrders = 11;       // NR_PAGE_ORDERS
inline constexpr int kPageblockOrder = 9;   // pageblock_order
inline constexpr uint64_t kPageblockPages = uint64_t{1} << kPageblockOrder;
inline constexpr int kCostlyOrder = 3;      // PAGE_ALLOC_COSTLY_ORDER
inline constexpr uint64_t kNoPfn = ~uint64_t{0};

// gfp bits (identical 6.1-6.18 for the bits used here, reference §2.1).
namespace gfp {
inline constexpr uint64_t kDma = 0x01;
inline constexpr uint64_t kHighmem = 0x02;
inline constexpr uint64_t kDma32 = 0x04;
inline constexpr uint64_t kMovable = 0x08;
inline constexpr uint64_t kReclaimable = 0x10;
inline constexpr uint64_t kHigh = 0x20;
inline constexpr uint64_t kIo = 0x40;
inline constexpr uint64_t kFs = 0x80;
inline constexpr uint64_t kDirectReclaim = 0x400;
inline constexpr uint64_t kKswapdReclaim = 0x800;
inline constexpr uint64_t kRetryMayfail = 0x4000;
inline constexpr uint64_t kNoretry = 0x10000;
inline constexpr uint64_t kComp = 0x40000;
inline constexpr uint64_t kNomemalloc = 0x80000;
inline constexpr uint64_t kHardwall = 0x100000;
inline constexpr uint64_t kThisnode = 0x200000;

inline constexpr uint64_t kReclaim = kDirectReclaim | kKswapdReclaim;
inline constexpr uint64_t kKernel = kReclaim | kIo | kFs;                   // GFP_KERNEL 0xcc0
inline constexpr uint64_t kAtomic = kHigh | kKswapdReclaim;                 // GFP_ATOMIC 0x820
inline constexpr uint64_t kNowait = kKswapdReclaim;                         // GFP_NOWAIT
inline constexpr uint64_t kUser = kKernel | kHardwall;                      // GFP_USER
inline constexpr uint64_t kHighuserMovable = kUser | kHighmem | kMovable;   // 0x100cca
inline constexpr uint64_t kKernelReclaimable = kKernel | kReclaimable;      // slab caches
}  // namespace gfp

// gfp -> requested migratetype (gfp_migratetype; §2.1). Both mobility bits
// set is invalid in the kernel; it maps to RECLAIMABLE|MOVABLE = 3 there, we
// treat it as MOVABLE and the allocator rejects it before this is reached.
inline MigrateType GfpMigratetype(uint64_t g) {
  return static_cast<MigrateType>((g & (gfp::kMovable | gfp::kReclaimable)) >> 3);
}
// gfp -> highest allowed zone (gfp_zone on x86-64 without HIGHMEM).
ZoneType GfpZone(uint64_t g);
// A typical gfp for a request of type `t`: GFP_KERNEL, GFP_HIGHUSER_MOVABLE or
// GFP_KERNEL|__GFP_RECLAIMABLE.
uint64_t GfpForMigratetype(MigrateType t);

// Allocation flags (the kernel's ALLOC_*; our own bit values, never exported).
namespace alloc {
inline constexpr uint32_t kWmarkMin = 0;
inline constexpr uint32_t kWmarkLow = 1;
inline constexpr uint32_t kWmarkHigh = 2;
inline constexpr uint32_t kNoWatermarks = 3;
inline constexpr uint32_t kWmarkMask = 3;
inline constexpr uint32_t kOom = 1u << 2;
inline constexpr uint32_t kNonBlock = 1u << 3;
inline constexpr uint32_t kMinReserve = 1u << 4;
inline constexpr uint32_t kHighAtomic = 1u << 5;
inline constexpr uint32_t kCma = 1u << 6;
inline constexpr uint32_t kKswapd = 1u << 7;
inline constexpr uint32_t kNoFragment = 1u << 8;
inline constexpr uint32_t kReserves = kNonBlock | kMinReserve | kHighAtomic | kOom;
}  // namespace alloc

// What an allocated block holds (the simulator's page_owner). Decides whether
// the block's pages count as "movable" in the fallback block count (§2.4:
// pages on an LRU or with movable ops) and, later, whether compaction can
// migrate them.
enum class OwnerKind : uint8_t {
  kUnknown = 0,      // allocated with no owner given
  kAnon = 1,         // anonymous memory (LRU)
  kFile = 2,         // page cache (LRU)
  kSlabReclaimable = 3,
  kSlabUnmovable = 4,
  kPageTable = 5,
  kPipe = 6,
  kPinned = 7,       // long-term pinned anon (on the LRU, but not migratable)
  kSocket = 8,
  kKernel = 9,       // other unmovable kernel memory (vmalloc, drivers...)
  kMovableOps = 10,  // non-LRU movable (zsmalloc, balloon)
  kHugetlb = 11,
  kReserved = 12,    // present but never given to the buddy allocator (memblock)
};
inline constexpr int kNumOwnerKinds = 13;
const char* OwnerKindName(OwnerKind k);
// Pages the kernel's block count treats as movable: PageLRU or __PageMovable.
inline constexpr bool OwnerCountsMovable(OwnerKind k) {
  return k == OwnerKind::kAnon || k == OwnerKind::kFile || k == OwnerKind::kPinned ||
         k == OwnerKind::kMovableOps;
}

}  // namespace fraglab::sim
