// PageAllocator::AllocateAt and SplitAllocated: building start states from a
// snapshot's used pages. Expected lists are worked out by hand in comments.
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/config.h"
#include "sim/page_allocator.h"

namespace fraglab::sim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::unique_ptr<PageAllocator> Make(Era era, bool pcp = false) {
  MachineConfig c = SingleZoneMachine(4096);  // boot: order-10 blocks 0, 1024, 2048, 3072
  c.era = era;
  c.pcp = pcp;
  c.min_free_kbytes = 128;
  auto a = PageAllocator::Create(c);
  EXPECT_TRUE(a.ok()) << a.status();
  return std::move(a).value();
}

void ExpectInvariants(const PageAllocator& a) {
  absl::Status s = a.CheckInvariants();
  EXPECT_TRUE(s.ok()) << s;
}

class AllocateAtAllEras : public ::testing::TestWithParam<Era> {};
INSTANTIATE_TEST_SUITE_P(Eras, AllocateAtAllEras,
                         ::testing::Values(Era::kLegacy, Era::kHygiene, Era::kClaim));

// Taking pfn 5 out of the order-10 block at 0 splits it down: at each order
// the half not holding pfn 5 goes to the head of its list. Order 9 gives
// 512, ..., order 3 gives 8; order 2: 5 is in the upper half [4, 8), 0 goes
// back; order 1: 5 in [4, 6), 6 goes back; order 0: 4 goes back.
TEST_P(AllocateAtAllEras, SplitsTheContainingBlockAroundTheRange) {
  auto a = Make(GetParam());
  ASSERT_TRUE(a->AllocateAt(5, 0, OwnerKind::kAnon, kMovable).ok());
  ExpectInvariants(*a);
  EXPECT_THAT(a->FreeList(0, 10, kMovable), ElementsAre(1024, 2048, 3072));
  EXPECT_THAT(a->FreeList(0, 9, kMovable), ElementsAre(512));
  EXPECT_THAT(a->FreeList(0, 8, kMovable), ElementsAre(256));
  EXPECT_THAT(a->FreeList(0, 3, kMovable), ElementsAre(8));
  EXPECT_THAT(a->FreeList(0, 2, kMovable), ElementsAre(0));
  EXPECT_THAT(a->FreeList(0, 1, kMovable), ElementsAre(6));
  EXPECT_THAT(a->FreeList(0, 0, kMovable), ElementsAre(4));
  EXPECT_EQ(a->zone_stats(0).free_pages, 4095u);
  PageInfo p = a->Page(5);
  EXPECT_EQ(p.kind, PageInfo::Kind::kAllocated);
  EXPECT_EQ(p.order, 0);
  EXPECT_EQ(p.owner, OwnerKind::kAnon);
  EXPECT_EQ(p.alloc_type, kMovable);
  // Freeing it merges everything back into the order-10 block at the head.
  ASSERT_TRUE(a->Free(5, 0).ok());
  ExpectInvariants(*a);
  EXPECT_THAT(a->FreeList(0, 10, kMovable), ElementsAre(0, 1024, 2048, 3072));
  for (int o = 0; o < 10; ++o) EXPECT_THAT(a->FreeList(0, o, kMovable), IsEmpty()) << o;
}

// A range that is exactly one free block is taken off its list whole.
TEST_P(AllocateAtAllEras, TakesAnExactFreeBlock) {
  auto a = Make(GetParam());
  ASSERT_TRUE(a->AllocateAt(5, 0, OwnerKind::kAnon, kMovable).ok());
  ASSERT_TRUE(a->AllocateAt(8, 3, OwnerKind::kSlabUnmovable, kUnmovable).ok());
  ExpectInvariants(*a);
  EXPECT_THAT(a->FreeList(0, 3, kMovable), IsEmpty());
  EXPECT_EQ(a->zone_stats(0).free_pages, 4095u - 8u);
  EXPECT_EQ(a->Page(8).owner, OwnerKind::kSlabUnmovable);
  EXPECT_EQ(a->Page(8).alloc_type, kUnmovable);
  EXPECT_EQ(a->Page(8).order, 3);
  // The pageblock type is not changed by building a start state.
  EXPECT_EQ(a->PageblockType(8), kMovable);
}

TEST_P(AllocateAtAllEras, RefusesPagesThatAreNotFreeNamingTheFirst) {
  auto a = Make(GetParam());
  ASSERT_TRUE(a->AllocateAt(5, 0, OwnerKind::kAnon, kMovable).ok());
  absl::Status s = a->AllocateAt(5, 0, OwnerKind::kAnon, kMovable);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("pfn 0x5 is allocated"));
  // [4, 6): pfn 4 is free, 5 is not; nothing is changed by the refusal.
  s = a->AllocateAt(4, 1, OwnerKind::kAnon, kMovable);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("pfn 0x5 is allocated"));
  EXPECT_THAT(a->FreeList(0, 0, kMovable), ElementsAre(4));
  ExpectInvariants(*a);
  s = a->AllocateAt(4096, 0, OwnerKind::kAnon, kMovable);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("outside every zone"));
  s = a->AllocateAt(3, 1, OwnerKind::kAnon, kMovable);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("not aligned to order 1"));
  s = a->AllocateAt(0, 11, OwnerKind::kAnon, kMovable);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("order 11 outside 0..10"));
  s = a->AllocateAt(0, 0, OwnerKind::kAnon, kCma);  // no CMA on this machine
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a->zone_stats(0).free_pages, 4095u);
}

TEST(SimAllocateAt, RefusesPagesOnPerCpuLists) {
  auto a = Make(Era::kClaim, /*pcp=*/true);
  ASSERT_TRUE(a->AllocateAt(100, 0, OwnerKind::kAnon, kMovable).ok());
  ASSERT_TRUE(a->Free(100, 0).ok());  // to cpu0's pcp list (below high)
  ASSERT_EQ(a->Page(100).kind, PageInfo::Kind::kPcp);
  absl::Status s = a->AllocateAt(96, 3, OwnerKind::kAnon, kMovable);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("pfn 0x64 is on a per-CPU list"));
  ExpectInvariants(*a);
}

// 6.10+: isolating pageblock 1 of the free order-10 block at 0 leaves two
// order-9 blocks that cannot merge (ISOLATE is not mergeable). An order-10
// range over both takes both blocks.
TEST(SimAllocateAt, RangeOverSeveralFreeBlocks) {
  auto a = Make(Era::kClaim);
  ASSERT_TRUE(a->ConvertPageblock(512, kIsolate).ok());
  ASSERT_THAT(a->FreeList(0, 9, kMovable), ElementsAre(0));
  ASSERT_THAT(a->FreeList(0, 9, kIsolate), ElementsAre(512));
  ASSERT_TRUE(a->AllocateAt(0, 10, OwnerKind::kHugetlb, kMovable).ok());
  ExpectInvariants(*a);
  EXPECT_THAT(a->FreeList(0, 9, kMovable), IsEmpty());
  EXPECT_THAT(a->FreeList(0, 9, kIsolate), IsEmpty());
  EXPECT_EQ(a->zone_stats(0).free_pages, 3072u);
  EXPECT_EQ(a->Page(0).order, 10);
}

TEST_P(AllocateAtAllEras, SplitAllocatedMakesOrderZeroBlocks) {
  auto a = Make(GetParam());
  ASSERT_TRUE(a->AllocateAt(1024, 9, OwnerKind::kAnon, kMovable).ok());
  ASSERT_TRUE(a->SplitAllocated(1024).ok());
  ExpectInvariants(*a);
  for (uint64_t p = 1024; p < 1024 + 512; ++p) {
    PageInfo info = a->Page(p);
    ASSERT_EQ(info.kind, PageInfo::Kind::kAllocated) << p;
    EXPECT_EQ(info.order, 0);
    EXPECT_EQ(info.owner, OwnerKind::kAnon);
    EXPECT_EQ(info.alloc_type, kMovable);
  }
  // Freeing one page: its buddy 1024 is allocated, so it stays order 0.
  ASSERT_TRUE(a->Free(1025, 0).ok());
  EXPECT_THAT(a->FreeList(0, 0, kMovable), ElementsAre(1025));
  EXPECT_EQ(a->Free(1024, 9).code(), absl::StatusCode::kInvalidArgument);  // now order 0
  for (uint64_t p = 1024; p < 1024 + 512; ++p) {
    if (p != 1025) {
      ASSERT_TRUE(a->Free(p, 0).ok()) << p;
    }
  }
  ExpectInvariants(*a);
  EXPECT_THAT(a->FreeList(0, 10, kMovable), ElementsAre(1024, 0, 2048, 3072));
  EXPECT_EQ(a->zone_stats(0).free_pages, 4096u);
}

TEST(SimAllocateAt, SplitAllocatedRefusesFreeAndTailPages) {
  auto a = Make(Era::kClaim);
  absl::Status s = a->SplitAllocated(0);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("split of pfn 0: not the first page"));
  ASSERT_TRUE(a->AllocateAt(8, 3, OwnerKind::kAnon, kMovable).ok());
  EXPECT_EQ(a->SplitAllocated(9).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a->SplitAllocated(1 << 20).code(), absl::StatusCode::kInvalidArgument);
  ExpectInvariants(*a);
}

}  // namespace
}  // namespace fraglab::sim
