// One small hand-built zone per rule of reference/kernel-page-allocator.md
// (§1.1 merge and placement, §1.2 split, §2.3-§2.7 allocation and fallback
// per era). Every expected pfn, list and event below was worked out by hand
// from the rule text; comments show the working.
#include <memory>
#include <string>
#include <vector>

#include "common/event_sink.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/config.h"
#include "sim/page_allocator.h"
#include "sim/testing_util.h"

namespace fraglab::sim {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::DescribeEvents;

class Rig {
 public:
  // One Normal zone of `pages` pages at pfn 0, pcp off, tiny watermarks.
  explicit Rig(Era era, uint64_t pages = 4096) {
    MachineConfig c = SingleZoneMachine(pages);
    c.era = era;
    c.pcp = false;
    c.min_free_kbytes = 128;
    auto a = PageAllocator::Create(c, &sink);
    EXPECT_TRUE(a.ok()) << a.status();
    a_ = std::move(a).value();
  }
  PageAllocator& a() { return *a_; }
  // One get_page_from_freelist walk without watermarks or NOFRAGMENT, so a
  // test sees the rule it is about and nothing else.
  uint64_t Alloc(int order, MigrateType t, OwnerKind owner = OwnerKind::kAnon) {
    uint64_t pfn = a_->AllocateWithFlags({order, GfpForMigratetype(t), 0, 0, owner}, alloc::kNoWatermarks);
    Check();
    return pfn;
  }
  void Free(uint64_t pfn, int order) {
    EXPECT_TRUE(a_->Free(pfn, order).ok());
    Check();
  }
  void Check() {
    absl::Status s = a_->CheckInvariants();
    EXPECT_TRUE(s.ok()) << s;
  }
  std::vector<uint64_t> List(int order, MigrateType t) { return a_->FreeList(0, order, t); }
  std::vector<std::string> Events() {
    auto e = DescribeEvents(sink);
    sink.clear();
    return e;
  }
  VectorSink sink;

 private:
  std::unique_ptr<PageAllocator> a_;
};

class AllEras : public ::testing::TestWithParam<Era> {};
INSTANTIATE_TEST_SUITE_P(Eras, AllEras, ::testing::Values(Era::kLegacy, Era::kHygiene, Era::kClaim));

// §1 boot: every block MOVABLE, memory released ascending with tail insertion.
TEST_P(AllEras, BootStateIsOrderTenBlocksInPfnOrder) {
  Rig r(GetParam());
  EXPECT_THAT(r.List(10, kMovable), ElementsAre(0, 1024, 2048, 3072));
  for (int o = 0; o < 10; ++o) EXPECT_THAT(r.List(o, kMovable), IsEmpty());
  EXPECT_THAT(r.a().PageblockCounts(0), ElementsAre(0, 8, 0, 0, 0));
  EXPECT_EQ(r.a().zone_stats(0).free_pages, 4096u);
  EXPECT_FALSE(r.a().grouping_disabled());
  r.Check();
}

// §1 boot of a zone starting at pfn 1 (as DMA): pfn 0 is outside the zone,
// so the low chunks cannot merge and one block of each order 0..9 remains.
TEST(SimRules, BootOfZoneStartingAtPfnOne) {
  MachineConfig c = SingleZoneMachine(4095, 1);
  c.pcp = false;
  auto a = PageAllocator::Create(c);
  ASSERT_TRUE(a.ok()) << a.status();
  for (int o = 0; o < 10; ++o) EXPECT_THAT((*a)->FreeList(0, o, kMovable), ElementsAre(uint64_t{1} << o)) << o;
  EXPECT_THAT((*a)->FreeList(0, 10, kMovable), ElementsAre(1024, 2048, 3072));
  EXPECT_TRUE((*a)->CheckInvariants().ok());
}

// §1: grouping by mobility is disabled below pageblock_nr_pages * MIGRATE_TYPES
// pages (512 * 5 = 2560): every block and request is UNMOVABLE.
TEST(SimRules, TinyMachineDisablesGrouping) {
  MachineConfig c = SingleZoneMachine(2048);
  c.pcp = false;
  c.min_free_kbytes = 128;
  auto a = PageAllocator::Create(c);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE((*a)->grouping_disabled());
  EXPECT_THAT((*a)->FreeList(0, 10, kUnmovable), ElementsAre(0, 1024));
  uint64_t pfn = (*a)->AllocateWithFlags({0, gfp::kHighuserMovable, 0, 0, OwnerKind::kAnon}, alloc::kNoWatermarks);
  EXPECT_EQ(pfn, 0u);
  EXPECT_EQ((*a)->Page(0).alloc_type, kUnmovable);
  // 4096 pages is enough for grouping.
  EXPECT_FALSE((*PageAllocator::Create(SingleZoneMachine(4096)))->grouping_disabled());
}

// §1.2: the low part is kept, each upper half goes to the head of the list
// of the requested type; consecutive order-0 requests return ascending pfns.
TEST_P(AllEras, SplitKeepsLowHalfAndPutsUpperHalvesAtHead) {
  Rig r(GetParam());
  EXPECT_EQ(r.Alloc(0, kMovable), 0u);
  for (int o = 0; o < 10; ++o) EXPECT_THAT(r.List(o, kMovable), ElementsAre(uint64_t{1} << o)) << o;
  EXPECT_THAT(r.List(10, kMovable), ElementsAre(1024, 2048, 3072));
  EXPECT_EQ(r.Alloc(0, kMovable), 1u);
  EXPECT_EQ(r.Alloc(0, kMovable), 2u);  // order-1 block at 2 split, 3 to the head of order 0
  EXPECT_THAT(r.List(0, kMovable), ElementsAre(3));
  EXPECT_EQ(r.Alloc(0, kMovable), 3u);
  // §2.3: order 2 is served from the smallest order that has a block.
  EXPECT_EQ(r.Alloc(2, kMovable), 4u);
  EXPECT_EQ(r.Alloc(2, kMovable), 8u);  // order-3 block at 8 split; 12 to the order-2 head
  EXPECT_THAT(r.List(2, kMovable), ElementsAre(12));
  EXPECT_THAT(r.Events(), ElementsAre("zone_locked pfn=0x0 order=0 mt=1 refill=1", "alloc pfn=0x0 order=0 mt=1",
                                      "zone_locked pfn=0x1 order=0 mt=1 refill=1", "alloc pfn=0x1 order=0 mt=1",
                                      "zone_locked pfn=0x2 order=0 mt=1 refill=1", "alloc pfn=0x2 order=0 mt=1",
                                      "zone_locked pfn=0x3 order=0 mt=1 refill=1", "alloc pfn=0x3 order=0 mt=1",
                                      "zone_locked pfn=0x4 order=2 mt=1 refill=1", "alloc pfn=0x4 order=2 mt=1",
                                      "zone_locked pfn=0x8 order=2 mt=1 refill=1", "alloc pfn=0x8 order=2 mt=1"));
}

// §1.1: merging with free buddies, and the "merge likely" tail placement.
TEST_P(AllEras, FreeMergesAndPlacesByMergeLikelihood) {
  Rig r(GetParam());
  for (int i = 0; i < 8; ++i) ASSERT_EQ(r.Alloc(0, kMovable), uint64_t(i));
  // Free lists now: order 3 [8], order 4 [16], ...
  r.Free(1, 0);  // buddy 0 allocated; parent 0's buddy at order 1 (pfn 2) allocated -> head
  EXPECT_THAT(r.List(0, kMovable), ElementsAre(1));
  r.Free(4, 0);  // buddy 5 allocated; parent 4's buddy at order 1 (6) allocated -> head
  EXPECT_THAT(r.List(0, kMovable), ElementsAre(4, 1));
  r.Free(5, 0);  // merges with 4 -> order 1 at 4; buddy 6 allocated; order-2 buddy 0 not free -> head
  EXPECT_THAT(r.List(0, kMovable), ElementsAre(1));
  EXPECT_THAT(r.List(1, kMovable), ElementsAre(4));
  r.Free(6, 0);  // buddy 7 allocated; parent 6's buddy at order 1 is 4, free at order 1 -> TAIL
  EXPECT_THAT(r.List(0, kMovable), ElementsAre(1, 6));
  r.Free(3, 0);  // buddy 2 allocated; parent 2's buddy at order 1 (0) allocated -> head
  EXPECT_THAT(r.List(0, kMovable), ElementsAre(3, 1, 6));
  r.Free(7, 0);  // 6+7 -> order 1 at 6, + 4 -> order 2 at 4; buddy 0 (order 2) not free;
                 // parent 0's buddy at order 3 is 8, free at order 3 -> TAIL
  EXPECT_THAT(r.List(0, kMovable), ElementsAre(3, 1));
  EXPECT_THAT(r.List(1, kMovable), IsEmpty());
  EXPECT_THAT(r.List(2, kMovable), ElementsAre(4));
  r.Free(0, 0);
  r.Free(2, 0);  // everything merges back to the order-10 block at 0, placed at the head
  EXPECT_THAT(r.List(10, kMovable), ElementsAre(0, 1024, 2048, 3072));
  for (int o = 0; o < 10; ++o) EXPECT_THAT(r.List(o, kMovable), IsEmpty());
}

// §1.1 step 1: at order >= 9 buddies of different mergeable types merge;
// 6.10+ re-types the buddy's block, <= 6.9 leaves a mixed pair.
TEST_P(AllEras, MergeAcrossPageblocksOfDifferentType) {
  Rig r(GetParam());
  ASSERT_EQ(r.Alloc(9, kMovable), 0u);  // order-10 at 0 split, 512 to MOVABLE order 9
  ASSERT_TRUE(r.a().ConvertPageblock(0, kUnmovable).ok());
  r.Free(0, 9);  // freed as UNMOVABLE (its block type); buddy 512 is MOVABLE
  EXPECT_THAT(r.List(10, kUnmovable), ElementsAre(0));
  EXPECT_THAT(r.List(10, kMovable), ElementsAre(1024, 2048, 3072));
  EXPECT_EQ(r.a().PageblockType(0), kUnmovable);
  EXPECT_EQ(r.a().PageblockType(512), GetParam() == Era::kLegacy ? kMovable : kUnmovable);
}

// §1.1 step 1: a non-mergeable type (ISOLATE) stops merging at order 9.
TEST_P(AllEras, IsolatedBlockDoesNotMergeAcrossPageblocks) {
  Rig r(GetParam());
  ASSERT_EQ(r.Alloc(9, kMovable), 0u);
  ASSERT_TRUE(r.a().ConvertPageblock(0, kIsolate).ok());
  r.Free(0, 9);
  EXPECT_THAT(r.List(9, kIsolate), ElementsAre(0));
  EXPECT_THAT(r.List(9, kMovable), ElementsAre(512));
  // Isolated pages are not free for watermark purposes.
  EXPECT_EQ(r.a().zone_stats(0).free_pages, 4096u - 512u);
}

// §1.1 step 4: freeing an order-10 block; 6.10+ frees it per pageblock, each
// with its own type, so the merged result takes the second block's type.
TEST_P(AllEras, FreeAbovePageblockOrder) {
  Rig r(GetParam());
  ASSERT_EQ(r.Alloc(10, kMovable), 0u);
  ASSERT_TRUE(r.a().ConvertPageblock(512, kUnmovable).ok());
  r.Free(0, 10);
  if (GetParam() == Era::kLegacy) {
    // Whole block freed with the first block's type.
    EXPECT_THAT(r.List(10, kMovable), ElementsAre(0, 1024, 2048, 3072));
    EXPECT_EQ(r.a().PageblockType(512), kUnmovable);
  } else {
    // 0 freed MOVABLE (no buddy yet), then 512 freed UNMOVABLE merges with it
    // and re-types block 0.
    EXPECT_THAT(r.List(10, kUnmovable), ElementsAre(0));
    EXPECT_EQ(r.a().PageblockType(0), kUnmovable);
    EXPECT_EQ(r.a().PageblockType(512), kUnmovable);
  }
}

// §2.5 fallback from an order-10 block (o >= 9): the whole range changes type.
TEST_P(AllEras, FallbackFromOrderTenClaimsBothPageblocks) {
  Rig r(GetParam());
  EXPECT_EQ(r.Alloc(0, kUnmovable), 0u);
  EXPECT_EQ(r.a().PageblockType(0), kUnmovable);
  EXPECT_EQ(r.a().PageblockType(512), kUnmovable);
  for (int o = 0; o < 10; ++o) EXPECT_THAT(r.List(o, kUnmovable), ElementsAre(uint64_t{1} << o)) << o;
  EXPECT_THAT(r.List(10, kMovable), ElementsAre(1024, 2048, 3072));
  EXPECT_EQ(r.a().zone_stats(0).boost, 0u);  // no boost for order >= 9 candidates
  if (GetParam() == Era::kLegacy) {
    // §2.6 [L]: extfrag for the foreign buddy, then zone_locked from the retry.
    EXPECT_THAT(r.Events(), ElementsAre("extfrag pfn=0x0 ao=0 fo=10 at=0 ft=1 co=1 cls=0",
                                        "zone_locked pfn=0x0 order=0 mt=0 refill=1", "alloc pfn=0x0 order=0 mt=0"));
  } else {
    // §2.6 [H][C]: order >= 9 claim emits extfrag only.
    EXPECT_THAT(r.Events(), ElementsAre("extfrag pfn=0x0 ao=0 fo=10 at=0 ft=1 co=1 cls=0", "alloc pfn=0x0 order=0 mt=0"));
  }
}

// Builds: blocks 0 and 1 UNMOVABLE (claimed from the order-10 block at 0 by
// an UNMOVABLE order-0 request at pfn 0), all MOVABLE memory allocated, and
// UNMOVABLE orders 4..9 consumed, so the only free blocks are UNMOVABLE ones
// at orders 0..3: [1], [2], [4], [8].
void SmallUnmovableLeftovers(Rig& r) {
  ASSERT_EQ(r.Alloc(0, kUnmovable), 0u);
  ASSERT_EQ(r.Alloc(10, kMovable), 1024u);
  ASSERT_EQ(r.Alloc(10, kMovable), 2048u);
  ASSERT_EQ(r.Alloc(10, kMovable), 3072u);
  for (int o = 9; o >= 4; --o) ASSERT_EQ(r.Alloc(o, kUnmovable), uint64_t{1} << o);
  ASSERT_THAT(r.List(0, kUnmovable), ElementsAre(1));
  ASSERT_THAT(r.List(3, kUnmovable), ElementsAre(8));
  r.sink.clear();
}

// §2.5: a MOVABLE order-0 request that cannot claim (order < 4) when the
// exact order exists as a foreign block.
TEST_P(AllEras, MovableFallbackBelowClaimOrderSameOrder) {
  Rig r(GetParam());
  SmallUnmovableLeftovers(r);
  EXPECT_EQ(r.Alloc(0, kMovable), 1u);
  EXPECT_EQ(r.a().PageblockType(0), kUnmovable);  // nothing converted
  EXPECT_THAT(r.List(1, kUnmovable), ElementsAre(2));
  switch (GetParam()) {
    case Era::kLegacy:
      // Largest fallback is order 3 but MOVABLE cannot claim there: smallest
      // (order 0, pfn 1) moved to the MOVABLE list, then taken by the retry.
      EXPECT_THAT(r.Events(), ElementsAre("extfrag pfn=0x1 ao=0 fo=0 at=1 ft=0 co=0 cls=2",
                                          "zone_locked pfn=0x1 order=0 mt=1 refill=1", "alloc pfn=0x1 order=0 mt=1"));
      EXPECT_EQ(r.a().zone_stats(0).boost, 512u);  // every fallback below order 9 boosts
      break;
    case Era::kHygiene:
      EXPECT_THAT(r.Events(), ElementsAre("extfrag pfn=0x1 ao=0 fo=0 at=1 ft=0 co=0 cls=2", "alloc pfn=0x1 order=0 mt=1"));
      EXPECT_EQ(r.a().zone_stats(0).boost, 512u);
      break;
    case Era::kClaim:
      // Claim phase stops at order 3 (cannot claim); steal phase takes pfn 1.
      EXPECT_THAT(r.Events(), ElementsAre("extfrag pfn=0x1 ao=0 fo=0 at=1 ft=0 co=0 cls=2", "alloc pfn=0x1 order=0 mt=1"));
      EXPECT_EQ(r.a().zone_stats(0).boost, 0u);  // steals never boost
      break;
  }
}

// §2.5: the same request when the smallest foreign block is order 1: LEGACY
// moves the whole buddy to MOVABLE (remainder lands on MOVABLE lists);
// HYGIENE and CLAIM cut exactly one page (remainder stays UNMOVABLE).
TEST_P(AllEras, MovableFallbackBelowClaimOrderRemainderPlacement) {
  Rig r(GetParam());
  SmallUnmovableLeftovers(r);
  ASSERT_EQ(r.Alloc(0, kUnmovable), 1u);  // consume the order-0 UNMOVABLE block
  r.sink.clear();
  EXPECT_EQ(r.Alloc(0, kMovable), 2u);
  if (GetParam() == Era::kLegacy) {
    EXPECT_THAT(r.List(0, kMovable), ElementsAre(3));
    EXPECT_THAT(r.List(0, kUnmovable), IsEmpty());
    EXPECT_THAT(r.Events(), ElementsAre("extfrag pfn=0x2 ao=0 fo=1 at=1 ft=0 co=0 cls=2",
                                        "zone_locked pfn=0x2 order=0 mt=1 refill=1", "alloc pfn=0x2 order=0 mt=1"));
  } else {
    EXPECT_THAT(r.List(0, kMovable), IsEmpty());
    EXPECT_THAT(r.List(0, kUnmovable), ElementsAre(3));
    EXPECT_THAT(r.Events(), ElementsAre("extfrag pfn=0x2 ao=0 fo=1 at=1 ft=0 co=0 cls=2", "alloc pfn=0x2 order=0 mt=1"));
  }
  EXPECT_EQ(r.a().PageblockType(0), kUnmovable);
}

// Builds block 0 with pfn 0..255 (order 8) and 256 (order 0) allocated as
// anon, the rest of block 0 free (255 pages at orders 0..7), and every other
// block allocated. Free MOVABLE lists: order k holds 256 + 2^k for k=0..7.
void MovableBlockBelowThreshold(Rig& r, OwnerKind owner) {
  for (int i = 0; i < 4; ++i) ASSERT_EQ(r.Alloc(10, kMovable, owner), uint64_t(1024 * i));
  r.Free(0, 10);
  ASSERT_EQ(r.Alloc(8, kMovable, owner), 0u);
  ASSERT_EQ(r.Alloc(9, kMovable, owner), 512u);
  ASSERT_EQ(r.Alloc(0, kMovable, owner), 256u);
  for (int k = 0; k <= 7; ++k) ASSERT_THAT(r.List(k, kMovable), ElementsAre(256 + (1u << k))) << k;
  r.sink.clear();
}

// §2.4 block count below the threshold: free 255 + alike 0 < 256.
TEST_P(AllEras, UnmovableFallbackBlockCountBelowThreshold) {
  Rig r(GetParam());
  MovableBlockBelowThreshold(r, OwnerKind::kAnon);
  switch (GetParam()) {
    case Era::kLegacy:
      // Largest candidate: order 7 at 384. All free pages of block 0 move to
      // the UNMOVABLE tails (ascending pfn), the type stays MOVABLE; the
      // retry takes the smallest UNMOVABLE block (257).
      EXPECT_EQ(r.Alloc(0, kUnmovable), 257u);
      EXPECT_THAT(r.Events(), ElementsAre("extfrag pfn=0x180 ao=0 fo=7 at=0 ft=1 co=0 cls=2",
                                          "zone_locked pfn=0x101 order=0 mt=0 refill=1", "alloc pfn=0x101 order=0 mt=0"));
      EXPECT_THAT(r.List(7, kUnmovable), ElementsAre(384));
      EXPECT_THAT(r.List(7, kMovable), IsEmpty());
      break;
    case Era::kHygiene:
      // Not converted: exactly one page cut from 384; its halves stay MOVABLE.
      EXPECT_EQ(r.Alloc(0, kUnmovable), 384u);
      EXPECT_THAT(r.Events(), ElementsAre("extfrag pfn=0x180 ao=0 fo=7 at=0 ft=1 co=0 cls=2", "alloc pfn=0x180 order=0 mt=0"));
      EXPECT_THAT(r.List(6, kMovable), ElementsAre(448, 320));
      EXPECT_THAT(r.List(0, kMovable), ElementsAre(385, 257));
      break;
    case Era::kClaim:
      // Claims at orders 7..0 all fail the count; the steal phase takes the
      // smallest foreign block, order 0 at 257.
      EXPECT_EQ(r.Alloc(0, kUnmovable), 257u);
      EXPECT_THAT(r.Events(), ElementsAre("extfrag pfn=0x101 ao=0 fo=0 at=0 ft=1 co=0 cls=2", "alloc pfn=0x101 order=0 mt=0"));
      EXPECT_THAT(r.List(7, kMovable), ElementsAre(384));
      break;
  }
  EXPECT_EQ(r.a().PageblockType(0), kMovable);
  EXPECT_EQ(r.a().zone_stats(0).boost, 512u);  // claim attempts at order < 9 boost in every era
}

// §2.4 block count: pages that are neither free nor movable count as
// "alike" for an UNMOVABLE request in a MOVABLE block: 255 free + 257
// unmovable-owned pages >= 256 -> the block converts.
TEST_P(AllEras, UnmovableFallbackConvertsWhenAlikePagesCount) {
  Rig r(GetParam());
  MovableBlockBelowThreshold(r, OwnerKind::kSlabUnmovable);
  uint64_t pfn = r.Alloc(0, kUnmovable);
  EXPECT_EQ(pfn, 257u);  // block converted; smallest UNMOVABLE block is 257
  EXPECT_EQ(r.a().PageblockType(0), kUnmovable);
  EXPECT_THAT(r.List(7, kUnmovable), ElementsAre(384));
  if (GetParam() == Era::kLegacy) {
    EXPECT_THAT(r.Events(), ElementsAre("extfrag pfn=0x180 ao=0 fo=7 at=0 ft=1 co=1 cls=1",
                                        "zone_locked pfn=0x101 order=0 mt=0 refill=1", "alloc pfn=0x101 order=0 mt=0"));
  } else {
    // §2.6 [H][C] converted block: zone_locked, then extfrag with the same pfn.
    EXPECT_THAT(r.Events(), ElementsAre("zone_locked pfn=0x101 order=0 mt=0 refill=1",
                                        "extfrag pfn=0x101 ao=0 fo=7 at=0 ft=1 co=1 cls=1", "alloc pfn=0x101 order=0 mt=0"));
  }
}

// §2.4 alike for a MOVABLE request = movable pages; a RECLAIMABLE block holding
// movable pages converts to MOVABLE at order >= 4 (claimable for MOVABLE).
TEST_P(AllEras, MovableClaimCountsMovablePagesAsAlike) {
  Rig r(GetParam());
  MovableBlockBelowThreshold(r, OwnerKind::kAnon);
  ASSERT_TRUE(r.a().ConvertPageblock(0, kReclaimable).ok());
  ASSERT_THAT(r.List(7, kReclaimable), ElementsAre(384));
  // Orders 7..4 are claimable for MOVABLE; block 0: free 255 + movable 257.
  // Every era converts at order 7 and then takes the smallest MOVABLE block.
  EXPECT_EQ(r.Alloc(0, kMovable), 257u);
  EXPECT_EQ(r.a().PageblockType(0), kMovable);
  EXPECT_THAT(r.List(7, kMovable), ElementsAre(384));
}

// §2.7 HIGHATOMIC: a successful ALLOC_HIGHATOMIC allocation reserves its block;
// the reserve serves the next one; release gives it back.
TEST_P(AllEras, HighAtomicReserveAndRelease) {
  Rig r(GetParam());
  const uint32_t flags = alloc::kWmarkMin | alloc::kMinReserve | alloc::kNonBlock | alloc::kHighAtomic;
  uint64_t pfn = r.a().AllocateWithFlags({1, gfp::kAtomic, 0, 0, OwnerKind::kKernel}, flags);
  EXPECT_EQ(pfn, 0u);
  r.Check();
  EXPECT_EQ(r.a().PageblockType(0), kHighAtomic);
  EXPECT_EQ(r.a().zone_stats(0).nr_reserved_highatomic, 512u);
  EXPECT_THAT(r.List(1, kHighAtomic), ElementsAre(2));
  EXPECT_THAT(r.List(8, kHighAtomic), ElementsAre(256));
  // GFP_ATOMIC is UNMOVABLE: the order-10 block at 0 was claimed (both
  // pageblocks UNMOVABLE), then only block 0 became the reserve.
  EXPECT_THAT(r.List(9, kUnmovable), ElementsAre(512));
  EXPECT_EQ(r.a().PageblockType(512), kUnmovable);
  // The next high-order atomic request is served from the reserve first.
  EXPECT_EQ(r.a().AllocateWithFlags({1, gfp::kAtomic, 0, 0, OwnerKind::kKernel}, flags), 2u);
  r.Check();
  // Normal requests do not see HIGHATOMIC lists.
  EXPECT_EQ(r.Alloc(2, kUnmovable), 512u);  // smallest UNMOVABLE block >= order 2 is 512
  // Release keeps the last reserved block unless forced.
  EXPECT_FALSE(r.a().UnreserveHighAtomic(0, kZoneNormal, kUnmovable, false));
  EXPECT_TRUE(r.a().UnreserveHighAtomic(0, kZoneNormal, kUnmovable, true));
  r.Check();
  EXPECT_EQ(r.a().PageblockType(0), kUnmovable);
  EXPECT_EQ(r.a().zone_stats(0).nr_reserved_highatomic, 0u);
  EXPECT_THAT(r.List(2, kUnmovable).back(), 4u);
}

// §2.4 fallback table order: UNMOVABLE tries RECLAIMABLE before MOVABLE.
TEST_P(AllEras, FallbackTablePrefersReclaimableForUnmovable) {
  Rig r(GetParam());
  for (int i = 0; i < 4; ++i) ASSERT_EQ(r.Alloc(10, kMovable), uint64_t(1024 * i));
  r.Free(1024, 10);
  ASSERT_TRUE(r.a().ConvertPageblock(1024, kReclaimable).ok());
  ASSERT_TRUE(r.a().ConvertPageblock(1536, kReclaimable).ok());
  r.Free(2048, 10);
  // Order 10 has RECLAIMABLE [1024] and MOVABLE [2048]: RECLAIMABLE wins.
  EXPECT_EQ(r.Alloc(0, kUnmovable), 1024u);
  EXPECT_EQ(r.a().PageblockType(1024), kUnmovable);
  EXPECT_EQ(r.a().PageblockType(2048), kMovable);
}

// §2.2: ALLOC_NOFRAGMENT steers an UNMOVABLE request that would fragment
// Normal into DMA32, where a whole free block can be claimed.
TEST_P(AllEras, NoFragmentTriesDma32BeforeFragmentingNormal) {
  MachineConfig c;
  c.era = GetParam();
  c.pcp = false;
  c.min_free_kbytes = 128;
  c.zones = {{.node = 0, .type = kZoneDma32, .start_pfn = 0x1000, .spanned = 8192},
             {.node = 0, .type = kZoneNormal, .start_pfn = 0x100000, .spanned = 8192}};
  VectorSink sink;
  auto a = PageAllocator::Create(c, &sink);
  ASSERT_TRUE(a.ok()) << a.status();
  PageAllocator& pa = **a;
  // Fill Normal except 511 pages of its last pageblock.
  for (int i = 0; i < 7; ++i)
    ASSERT_EQ(pa.Allocate({10, gfp::kHighuserMovable, 0, 0, OwnerKind::kAnon}), 0x100000u + 1024 * i);
  ASSERT_EQ(pa.Allocate({9, gfp::kHighuserMovable, 0, 0, OwnerKind::kAnon}), 0x100000u + 7168);
  ASSERT_EQ(pa.Allocate({0, gfp::kHighuserMovable, 0, 0, OwnerKind::kAnon}), 0x100000u + 7680);
  // Normal cannot serve UNMOVABLE without fragmenting (no free order >= 9):
  // the walk moves on to DMA32 and claims its first order-10 block.
  EXPECT_EQ(pa.Allocate({0, gfp::kKernel, 0, 0, OwnerKind::kKernel}), 0x1000u);
  EXPECT_EQ(pa.PageblockType(0x1000), kUnmovable);
  EXPECT_EQ(pa.PageblockType(0x100000 + 7680), kMovable);
  EXPECT_TRUE(pa.CheckInvariants().ok());
  // With DMA32 exhausted as well, the second walk (NOFRAGMENT dropped) fragments Normal.
  for (int i = 1; i < 8; ++i) pa.Allocate({10, gfp::kKernel | gfp::kDma32, 0, 0, OwnerKind::kKernel});
  for (int o = 9; o >= 0; --o) pa.Allocate({o, gfp::kKernel | gfp::kDma32, 0, 0, OwnerKind::kKernel});
  uint64_t pfn = pa.Allocate({0, gfp::kKernel, 0, 0, OwnerKind::kKernel});
  EXPECT_GE(pfn, 0x100000u + 7680);
  EXPECT_LT(pfn, 0x100000u + 8192);
  EXPECT_TRUE(pa.CheckInvariants().ok());
}

}  // namespace
}  // namespace fraglab::sim
