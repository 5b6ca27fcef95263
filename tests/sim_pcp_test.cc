// Per-CPU page lists (reference §4): sizing, bulk refill, head/tail use,
// drains, and the burst behaviour of fallbacks under pcp refills.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/event_sink.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/config.h"
#include "sim/page_allocator.h"
#include "sim/testing_util.h"

namespace fraglab::sim {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

// 65536 pages (256 MiB): batch = rounddown_pow2(16 + 8) - 1 = 15;
// min_free_kbytes 1024 -> min 256, low 321, high 386; static high = 321;
// auto: high_min 321, high_max 65536 / 8 = 8192.
std::unique_ptr<PageAllocator> Make(PcpTuning tuning, int cpus, VectorSink* sink, Era era = Era::kClaim) {
  MachineConfig c = SingleZoneMachine(65536, 0, cpus);
  c.era = era;
  c.pcp = true;
  c.pcp_tuning = tuning;
  c.min_free_kbytes = 1024;
  auto a = PageAllocator::Create(c, sink);
  EXPECT_TRUE(a.ok()) << a.status();
  return std::move(a).value();
}

AllocRequest Movable0(int cpu = 0) { return {0, gfp::kHighuserMovable, 0, cpu, OwnerKind::kAnon}; }

TEST(SimPcp, BatchAndHighForBothTunings) {
  auto s = Make(PcpTuning::kStatic, 1, nullptr);
  EXPECT_EQ(s->zone_stats(0).wmark_low, 321u);
  PcpStats ps = s->pcp_stats(0, 0);
  EXPECT_EQ(ps.batch, 15);
  EXPECT_EQ(ps.high, 321);
  auto a = Make(PcpTuning::kAuto, 2, nullptr);
  PcpStats pa = a->pcp_stats(0, 1);
  EXPECT_EQ(pa.batch, 15);
  EXPECT_EQ(pa.high_min, 160);   // 321 / 2 CPUs
  EXPECT_EQ(pa.high_max, 4096);  // 65536 / 8 / 2 CPUs
  EXPECT_EQ(pa.high, 160);
}

TEST(SimPcp, RefillInBulkThenTakeHead) {
  VectorSink sink;
  auto a = Make(PcpTuning::kStatic, 1, &sink);
  EXPECT_EQ(a->Allocate(Movable0()), 0u);
  // One refill of batch = 15 pages under one lock hold, in obtained order.
  std::vector<std::string> want;
  for (int p = 0; p < 15; ++p) want.push_back(absl::StrFormat("zone_locked pfn=0x%x order=0 mt=1 refill=1", p));
  want.push_back("alloc pfn=0x0 order=0 mt=1");
  EXPECT_THAT(testing::DescribeEvents(sink), ElementsAreArray(want));
  std::vector<uint64_t> rest;
  for (uint64_t p = 1; p < 15; ++p) rest.push_back(p);
  EXPECT_THAT(a->PcpList(0, 0, 0, kMovable), ElementsAreArray(rest));
  EXPECT_EQ(a->pcp_stats(0, 0).count, 14);
  // pcp pages are not free for the buddy allocator or buddyinfo.
  EXPECT_EQ(a->zone_stats(0).free_pages, 65536u - 15);
  // Frees go to the head.
  ASSERT_TRUE(a->Free(0, 0).ok());
  EXPECT_EQ(a->PcpList(0, 0, 0, kMovable).front(), 0u);
  EXPECT_EQ(a->Allocate(Movable0()), 0u);  // LIFO
  EXPECT_TRUE(a->CheckInvariants().ok());
}

TEST(SimPcp, StaticDrainFromTailWhenAboveHigh) {
  VectorSink sink;
  auto a = Make(PcpTuning::kStatic, 1, &sink);
  for (uint64_t p = 0; p < 400; ++p) ASSERT_EQ(a->Allocate(Movable0()), p);
  // 27 refills of 15: 400..404 remain on the list.
  EXPECT_THAT(a->PcpList(0, 0, 0, kMovable), ElementsAre(400, 401, 402, 403, 404));
  sink.clear();
  for (uint64_t p = 0; p < 316; ++p) ASSERT_TRUE(a->Free(p, 0).ok());
  // count reached high 321 at the 316th free: drain batch << 0 = 15 pages from
  // the tail: the refill leftovers (404..400), then the oldest frees 0..9.
  std::vector<std::string> drains;
  for (size_t i = 0; i < sink.size(); ++i)
    if (sink.at(i).kind == FL_EV_PCP_DRAIN) drains.push_back(testing::DescribeEvent(sink, i));
  std::vector<std::string> want;
  for (int p : {404, 403, 402, 401, 400, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
    want.push_back(absl::StrFormat("drain pfn=0x%x order=0 mt=1", p));
  EXPECT_THAT(drains, ElementsAreArray(want));
  EXPECT_EQ(a->pcp_stats(0, 0).count, 306);
  EXPECT_EQ(a->pcp_stats(0, 0).free_factor, 1);
  // 15 more frees reach 321 again; now 15 << 1 = 30 pages go (10..39).
  sink.clear();
  for (uint64_t p = 316; p < 331; ++p) ASSERT_TRUE(a->Free(p, 0).ok());
  drains.clear();
  for (size_t i = 0; i < sink.size(); ++i)
    if (sink.at(i).kind == FL_EV_PCP_DRAIN) drains.push_back(testing::DescribeEvent(sink, i));
  ASSERT_EQ(drains.size(), 30u);
  EXPECT_EQ(drains.front(), "drain pfn=0xa order=0 mt=1");
  EXPECT_EQ(drains.back(), "drain pfn=0x27 order=0 mt=1");
  EXPECT_EQ(a->pcp_stats(0, 0).count, 291);
  EXPECT_TRUE(a->CheckInvariants().ok());
}

TEST(SimPcp, AutoTuningGrowsRefills) {
  VectorSink sink;
  auto a = Make(PcpTuning::kAuto, 1, &sink);
  std::vector<int> refills;
  int locked = 0;
  for (int i = 0; i < 466; ++i) {
    sink.clear();
    ASSERT_NE(a->Allocate(Movable0()), kNoPfn);
    locked = 0;
    for (size_t k = 0; k < sink.size(); ++k) locked += sink.at(k).kind == FL_EV_ZONE_LOCKED;
    if (locked) refills.push_back(locked);
  }
  // batch << alloc_factor, alloc_factor growing to CONFIG_PCP_BATCH_SCALE_MAX = 5.
  EXPECT_THAT(refills, ElementsAre(15, 30, 60, 120, 240, 480));
  EXPECT_EQ(a->pcp_stats(0, 0).high, 321 + 15 + 30 + 60 + 120 + 240 + 480);
  EXPECT_TRUE(a->CheckInvariants().ok());
}

TEST(SimPcp, ThpRefillTakesTwoBlocks) {
  auto a = Make(PcpTuning::kStatic, 1, nullptr);
  EXPECT_EQ(a->Allocate({9, gfp::kHighuserMovable, 0, 0, OwnerKind::kAnon}), 0u);
  EXPECT_THAT(a->PcpList(0, 0, 9, kMovable), ElementsAre(512));
  EXPECT_THAT(a->PcpList(0, 0, 9, kUnmovable), ElementsAre());  // separate non-movable THP list
  EXPECT_EQ(a->pcp_stats(0, 0).count, 512);
  ASSERT_TRUE(a->Free(0, 9).ok());
  // count 1024 >= high 321: a drain of 15 pages takes the tail block (512),
  // which alone covers the amount.
  EXPECT_THAT(a->PcpList(0, 0, 9, kMovable), ElementsAre(0));
  EXPECT_EQ(a->pcp_stats(0, 0).count, 512);
  EXPECT_TRUE(a->CheckInvariants().ok());
}

TEST(SimPcp, PagesFreedOnOneCpuAreInvisibleToAnother) {
  auto a = Make(PcpTuning::kStatic, 2, nullptr);
  EXPECT_EQ(a->Allocate(Movable0(0)), 0u);  // cpu0 holds 1..14
  ASSERT_TRUE(a->Free(0, 0, 1).ok());       // freed through cpu1
  EXPECT_THAT(a->PcpList(0, 1, 0, kMovable), ElementsAre(0));
  EXPECT_EQ(a->Allocate(Movable0(0)), 1u);  // cpu0 does not see pfn 0
  EXPECT_EQ(a->Allocate(Movable0(1)), 0u);
  a->DrainAllPcp();
  EXPECT_EQ(a->pcp_stats(0, 0).count, 0);
  EXPECT_EQ(a->zone_stats(0).free_pages, 65536u - 2);
  EXPECT_TRUE(a->CheckInvariants().ok());
}

TEST(SimPcp, PcpOffGoesStraightToBuddy) {
  MachineConfig c = SingleZoneMachine(65536);
  c.pcp = false;
  c.min_free_kbytes = 1024;
  VectorSink sink;
  auto a = *PageAllocator::Create(c, &sink);
  EXPECT_EQ(a->Allocate(Movable0()), 0u);
  EXPECT_THAT(testing::DescribeEvents(sink),
              ElementsAre("zone_locked pfn=0x0 order=0 mt=1 refill=1", "alloc pfn=0x0 order=0 mt=1"));
  ASSERT_TRUE(a->Free(0, 0).ok());
  EXPECT_EQ(a->zone_stats(0).free_pages, 65536u);
}

// §4 (a): under CLAIM each page of a refill can be a separate steal, one
// extfrag per page; LEGACY moves the whole block's free pages at once and
// emits one.
class SimPcpBurst : public ::testing::TestWithParam<Era> {};
INSTANTIATE_TEST_SUITE_P(Eras, SimPcpBurst, ::testing::Values(Era::kLegacy, Era::kClaim));

TEST_P(SimPcpBurst, RefillFallbacks) {
  VectorSink sink;
  auto a = Make(PcpTuning::kStatic, 1, &sink, GetParam());
  // Allocate every page as anon, then free every fourth: each block holds
  // 128 free MOVABLE order-0 pages and 384 movable pages (below the claim
  // threshold for UNMOVABLE: 128 + 0 alike < 256).
  for (uint64_t p = 0; p < 65536; ++p)
    ASSERT_EQ(a->AllocateWithFlags(Movable0(), alloc::kNoWatermarks), p);
  ASSERT_EQ(a->AllocateWithFlags(Movable0(), alloc::kNoWatermarks), kNoPfn);
  for (uint64_t p = 0; p < 65536; p += 4) ASSERT_TRUE(a->Free(p, 0).ok());
  a->DrainAllPcp();
  ASSERT_EQ(a->zone_stats(0).nr_free[0], 16384u);
  sink.clear();
  ASSERT_NE(a->Allocate({0, gfp::kKernel, 0, 0, OwnerKind::kKernel}), kNoPfn);
  int extfrag = 0, locked = 0;
  for (size_t i = 0; i < sink.size(); ++i) {
    if (sink.at(i).kind == FL_EV_EXTFRAG) {
      ++extfrag;
      auto e = sink.as<fl_extfrag>(i);
      EXPECT_EQ(e.fallback_order, 0);
      EXPECT_EQ(e.extfrag_class, FL_EXTFRAG_POLLUTE);
    }
    locked += sink.at(i).kind == FL_EV_ZONE_LOCKED;
  }
  if (GetParam() == Era::kClaim) {
    EXPECT_EQ(extfrag, 15);  // the whole refill is stolen page by page
    EXPECT_EQ(locked, 0);
  } else {
    EXPECT_EQ(extfrag, 1);   // one fallback moved the block's 128 free pages
    EXPECT_EQ(locked, 15);
  }
  EXPECT_TRUE(a->CheckInvariants().ok());
}

TEST(SimPcp, DecayTickShrinksHighAndFreesExcess) {
  auto a = Make(PcpTuning::kAuto, 1, nullptr);
  for (int i = 0; i < 100; ++i) ASSERT_NE(a->Allocate(Movable0()), kNoPfn);
  int high = a->pcp_stats(0, 0).high;
  ASSERT_GT(high, 321);
  a->PcpDecayTick();
  PcpStats s = a->pcp_stats(0, 0);
  EXPECT_EQ(s.high, std::max({s.count - (15 << 5), high - (high >> 3), 321}));
  EXPECT_LE(s.count, s.high);
  EXPECT_TRUE(a->CheckInvariants().ok());
}

}  // namespace
}  // namespace fraglab::sim
