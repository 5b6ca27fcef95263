// Reclaim (reference §5.5): kswapd woken by the allocator and run by
// AdvanceTime, balancing to the high watermark (+ boost) through
// PageUser::Reclaim; boosted reclaim; hopeless nodes; time order of the
// background work. Expected amounts are worked out by hand in comments.
#include <algorithm>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "common/event_sink.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/config.h"
#include "sim/page_allocator.h"
#include "sim/page_user.h"
#include "sim/testing_util.h"
#include "tests/sim_test_util.h"

namespace fraglab::sim {
namespace {

using ::testing::ElementsAre;

using testing::FakeFileOwner;

// 4096-page Normal zone, pcp off, min_free_kbytes 128: min 32, low 40,
// high 48 (d = max(32 / 4, 4096 * 10 / 10000) = 8).
std::unique_ptr<PageAllocator> Make(VectorSink* sink, int64_t boost_factor = 0, Narrator* narrator = nullptr) {
  MachineConfig c = SingleZoneMachine(4096);
  c.pcp = false;
  c.min_free_kbytes = 128;
  c.watermark_boost_factor = boost_factor;
  auto a = PageAllocator::Create(c, sink, narrator);
  EXPECT_TRUE(a.ok()) << a.status();
  return std::move(a).value();
}

// Allocates pfns 0..n-1 (boot order makes them sequential) as file pages.
void FillWithFile(PageAllocator& a, FakeFileOwner& f, uint64_t n) {
  for (uint64_t k = 0; k < n; ++k) {
    uint64_t pfn = a.AllocateWithFlags({0, gfp::kHighuserMovable, 0, 0, OwnerKind::kFile}, alloc::kNoWatermarks);
    ASSERT_EQ(pfn, k);
    f.Add(pfn);
  }
}

std::vector<int> Kinds(const VectorSink& sink) {
  std::vector<int> out;
  for (size_t i = 0; i < sink.size(); ++i) {
    int k = sink.at(i).kind;
    if (k != FL_EV_PAGE_FREE) out.push_back(k);
  }
  return out;
}

// An atomic (GFP_NOWAIT) request below MIN fails without reclaiming and
// wakes kswapd; kswapd then reclaims exactly the shortfall to the high
// watermark: free must exceed high 48, so from 10 free pages it needs
// 48 + 1 - 10 = 39 pages (more than SWAP_CLUSTER_MAX, so 39 are asked for).
TEST(SimReclaim, KswapdReclaimsToTheHighWatermarkAtomicNeverReclaims) {
  VectorSink sink;
  auto a = Make(&sink);
  FakeFileOwner f(a.get());
  a->set_page_user(&f);
  FillWithFile(*a, f, 4086);
  ASSERT_EQ(a->zone_stats(0).free_pages, 10u);
  sink.clear();
  EXPECT_EQ(a->Allocate({0, gfp::kNowait, 0, 0, OwnerKind::kKernel}), kNoPfn);
  EXPECT_EQ(a->vm_events().alloc_fail, 1u);
  EXPECT_EQ(a->vm_events().allocstall, 0u);
  EXPECT_TRUE(f.requests.empty());
  ASSERT_EQ(sink.size(), 2u);
  ASSERT_EQ(sink.at(0).kind, FL_EV_KSWAPD_WAKEUP);
  auto w = sink.as<fl_kswapd>(0);
  EXPECT_EQ(w.nid, 0);
  EXPECT_EQ(w.zid, kZoneNormal);
  EXPECT_EQ(w.order, 0);
  EXPECT_EQ(w.gfp_flags, gfp::kNowait);
  EXPECT_EQ(sink.at(1).kind, FL_EV_PAGE_ALLOC);
  sink.clear();

  a->AdvanceTime(100);
  EXPECT_EQ(a->time(), 100u);
  ASSERT_EQ(f.requests.size(), 1u);
  EXPECT_EQ(f.requests[0].nr_to_reclaim, 39u);
  EXPECT_FALSE(f.requests[0].direct);
  EXPECT_EQ(f.requests[0].highest_zone_type, kZoneNormal);
  EXPECT_EQ(a->zone_stats(0).free_pages, 49u);
  EXPECT_EQ(a->vm_events().pgsteal_kswapd, 39u);
  EXPECT_EQ(a->vm_events().pgscan_kswapd, 39u);
  EXPECT_EQ(a->vm_events().kswapd_wake, 1u);
  EXPECT_EQ(a->vm_events().pgsteal_direct, 0u);
  EXPECT_THAT(Kinds(sink), ElementsAre(FL_EV_KSWAPD_WAKE, FL_EV_KSWAPD_SLEEP));
  // The wake events carry the time the clock stood at when AdvanceTime
  // was called (the wake-up's time), the frees in between too.
  EXPECT_EQ(sink.at(0).ts_ns, 0u);
  // Balanced now: a second AdvanceTime does not run kswapd again.
  sink.clear();
  a->AdvanceTime(200);
  EXPECT_EQ(a->vm_events().kswapd_wake, 1u);
  EXPECT_EQ(sink.size(), 0u);
  absl::Status s = a->CheckInvariants();
  EXPECT_TRUE(s.ok()) << s;
}

// `fraglab explain` narrates kswapd: woken by the failed atomic request,
// then its run with the 39 pages of the test above and the node balanced.
TEST(SimReclaim, NarratesKswapdWokenAndItsRun) {
  testing::RecordingNarrator n;
  auto a = Make(nullptr, 0, &n);
  FakeFileOwner f(a.get());
  a->set_page_user(&f);
  FillWithFile(*a, f, 4086);
  n.decisions.clear();
  EXPECT_EQ(a->Allocate({0, gfp::kNowait, 0, 0, OwnerKind::kKernel}), kNoPfn);
  a->AdvanceTime(100);
  std::vector<const Decision*> k;
  for (const Decision& d : n.decisions) {
    if (d.kind == DecisionKind::kKswapd) k.push_back(&d);
  }
  ASSERT_EQ(k.size(), 2u);
  EXPECT_NE(k[0]->text.find("kswapd0 woken for order 0"), std::string::npos) << k[0]->text;
  EXPECT_EQ(k[1]->value, 39);
  EXPECT_TRUE(k[1]->yes);
  EXPECT_NE(k[1]->text.find("39 pages reclaimed; node balanced"), std::string::npos) << k[1]->text;
  // The atomic request says why it did not retry.
  bool said = false;
  for (const Decision& d : n.decisions) {
    said |= d.kind == DecisionKind::kRetry && !d.yes && d.text.find("no __GFP_DIRECT_RECLAIM") != std::string::npos;
  }
  EXPECT_TRUE(said);
}

// A woken kswapd that has not run yet is not woken again (no event).
TEST(SimReclaim, PendingKswapdIsNotWokenTwice) {
  VectorSink sink;
  auto a = Make(&sink);
  FakeFileOwner f(a.get());
  a->set_page_user(&f);
  FillWithFile(*a, f, 4086);
  sink.clear();
  EXPECT_EQ(a->Allocate({0, gfp::kNowait, 0, 0, OwnerKind::kKernel}), kNoPfn);
  EXPECT_EQ(a->Allocate({0, gfp::kNowait, 0, 0, OwnerKind::kKernel}), kNoPfn);
  int wakeups = 0;
  for (size_t i = 0; i < sink.size(); ++i) wakeups += sink.at(i).kind == FL_EV_KSWAPD_WAKEUP;
  EXPECT_EQ(wakeups, 1);
  EXPECT_EQ(a->TakeKswapdWakeups().size(), 2u);  // both requests are recorded
  EXPECT_EQ(a->vm_events().alloc_fail, 2u);
}

// Direct reclaim in the slow path: from 20 free pages a GFP_KERNEL order-0
// request fails MIN (20 <= 32), reclaims SWAP_CLUSTER_MAX = 32 pages (the
// oldest file pages, pfns 0..31, merging into one order-5 block). The
// request is UNMOVABLE and every block MOVABLE: no claim succeeds (blocks 0
// and 7 hold 32 and 20 free pages, nothing alike), so the steal phase cuts
// one page from the smallest MOVABLE buddy, the order-2 block at 4076 (the
// 20 free pages are 4076..4079 and 4080..4095): one extfrag event.
TEST(SimReclaim, DirectReclaimFreesOneClusterThenAllocates) {
  VectorSink sink;
  auto a = Make(&sink);
  FakeFileOwner f(a.get());
  a->set_page_user(&f);
  FillWithFile(*a, f, 4076);
  sink.clear();
  EXPECT_EQ(a->Allocate({0, gfp::kKernel, 0, 0, OwnerKind::kKernel}), 4076u);
  EXPECT_EQ(a->vm_events().allocstall, 1u);
  EXPECT_EQ(a->vm_events().pgsteal_direct, 32u);
  EXPECT_EQ(a->vm_events().pgscan_direct, 32u);
  EXPECT_EQ(a->vm_events().alloc_fail, 0u);
  EXPECT_EQ(a->zone_stats(0).free_pages, 20u + 32u - 1u);
  EXPECT_THAT(a->FreeList(0, 5, kMovable), ElementsAre(0));
  ASSERT_EQ(f.requests.size(), 1u);
  EXPECT_TRUE(f.requests[0].direct);
  EXPECT_EQ(f.requests[0].nr_to_reclaim, 32u);
  EXPECT_THAT(Kinds(sink), ElementsAre(FL_EV_KSWAPD_WAKEUP, FL_EV_DIRECT_RECLAIM_BEGIN,
                                       FL_EV_DIRECT_RECLAIM_END, FL_EV_EXTFRAG, FL_EV_PAGE_ALLOC));
  for (size_t i = 0; i < sink.size(); ++i) {
    if (sink.at(i).kind == FL_EV_DIRECT_RECLAIM_BEGIN) {
      EXPECT_EQ(sink.as<fl_direct_reclaim>(i).gfp_flags, gfp::kKernel);
      EXPECT_EQ(sink.as<fl_direct_reclaim>(i).order, 0);
    }
    if (sink.at(i).kind == FL_EV_DIRECT_RECLAIM_END) {
      EXPECT_EQ(sink.as<fl_direct_reclaim>(i).nr_reclaimed, 32u);
    }
  }
  absl::Status s = a->CheckInvariants();
  EXPECT_TRUE(s.ok()) << s;
}

// Boost (§5.2, §5.5): every pageblock holds a free order-8 block and 256
// file pages. An UNMOVABLE request cannot be served without fragmenting
// (no free pageblock), so it claims a MOVABLE order-8 block, which boosts
// the zone by one pageblock (512; max(512, 48 * 1.5)) and wakes kswapd with
// gfp 0. The node is balanced (2047 free > 48 + 512), so kswapd reclaims the
// boost: 512 pages, then clears it.
TEST(SimReclaim, BoostedKswapdReclaimsTheBoostThenClearsIt) {
  VectorSink sink;
  auto a = Make(&sink, /*boost_factor=*/15000);
  FakeFileOwner f(a.get());
  a->set_page_user(&f);
  for (uint64_t k = 0; k < 4096; ++k) {
    ASSERT_EQ(a->AllocateWithFlags({0, gfp::kHighuserMovable, 0, 0, OwnerKind::kFile}, alloc::kNoWatermarks), k);
  }
  for (uint64_t k = 0; k < 4096; ++k) {
    if ((k & 511) < 256) {
      ASSERT_TRUE(a->Free(k, 0).ok());
    } else {
      f.Add(k);
    }
  }
  ASSERT_EQ(a->FreeCount(0, 8, kMovable), 8u);
  sink.clear();
  uint64_t pfn = a->Allocate({0, gfp::kKernel, 0, 0, OwnerKind::kKernel});
  ASSERT_NE(pfn, kNoPfn);
  EXPECT_EQ(a->zone_stats(0).boost, 512u);
  std::vector<KswapdWakeup> w = a->TakeKswapdWakeups();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_TRUE(w[0].from_boost);
  bool saw_wakeup = false;
  for (size_t i = 0; i < sink.size(); ++i) {
    if (sink.at(i).kind == FL_EV_KSWAPD_WAKEUP) {
      saw_wakeup = true;
      EXPECT_EQ(sink.as<fl_kswapd>(i).gfp_flags, 0u);
    }
  }
  EXPECT_TRUE(saw_wakeup);
  a->AdvanceTime(10);
  ASSERT_GE(f.requests.size(), 1u);
  EXPECT_EQ(f.requests[0].nr_to_reclaim, 512u);
  EXPECT_EQ(a->vm_events().pgsteal_kswapd, 512u);
  EXPECT_EQ(a->vm_events().kswapd_wake, 1u);
  EXPECT_EQ(a->zone_stats(0).boost, 0u);
  EXPECT_EQ(f.size(), 2048u - 512u);
  absl::Status s = a->CheckInvariants();
  EXPECT_TRUE(s.ok()) << s;
}

// kswapd_failures: a node whose kswapd ran 16 times without reclaiming a
// page is hopeless; further wake-ups are not delivered (no WAKEUP event).
TEST(SimReclaim, HopelessNodeStopsWakingKswapd) {
  VectorSink sink;
  auto a = Make(&sink);
  for (uint64_t k = 0; k < 4086; ++k) {
    ASSERT_NE(a->AllocateWithFlags({0, gfp::kKernel, 0, 0, OwnerKind::kKernel}, alloc::kNoWatermarks), kNoPfn);
  }
  int wakeups = 0;
  for (int round = 0; round < 20; ++round) {
    sink.clear();
    EXPECT_EQ(a->Allocate({0, gfp::kNowait, 0, 0, OwnerKind::kKernel}), kNoPfn);
    for (size_t i = 0; i < sink.size(); ++i) wakeups += sink.at(i).kind == FL_EV_KSWAPD_WAKEUP;
    a->AdvanceTime(static_cast<uint64_t>(round + 1) * 1000);
  }
  EXPECT_EQ(wakeups, 16);
  EXPECT_EQ(a->vm_events().kswapd_wake, 16u);
  EXPECT_EQ(a->vm_events().pgsteal_kswapd, 0u);
}

// AdvanceTime runs the pcp decay once per simulated second, like calling
// PcpDecayTick at each second boundary, and never moves the clock back.
TEST(SimReclaim, AdvanceTimeRunsPcpDecayPerSecond) {
  auto build = [] {
    MachineConfig c = SingleZoneMachine(65536);
    c.pcp = true;
    c.pcp_tuning = PcpTuning::kAuto;
    c.min_free_kbytes = 1024;
    auto a = PageAllocator::Create(c);
    EXPECT_TRUE(a.ok());
    auto p = std::move(a).value();
    // Grow cpu0's high with a burst of frees.
    std::vector<uint64_t> pfns;
    for (int k = 0; k < 3000; ++k) pfns.push_back(p->Allocate({0, gfp::kHighuserMovable, 0, 0, OwnerKind::kAnon}));
    for (uint64_t pfn : pfns) EXPECT_TRUE(p->Free(pfn, 0).ok());
    return p;
  };
  auto a = build();
  auto b = build();
  ASSERT_GT(a->pcp_stats(0, 0).high, a->pcp_stats(0, 0).high_min);
  a->AdvanceTime(3500000000ull);  // ticks at 1 s, 2 s, 3 s
  for (int k = 0; k < 3; ++k) b->PcpDecayTick();
  EXPECT_EQ(a->pcp_stats(0, 0).high, b->pcp_stats(0, 0).high);
  EXPECT_EQ(a->pcp_stats(0, 0).count, b->pcp_stats(0, 0).count);
  EXPECT_NE(a->pcp_stats(0, 0).high, build()->pcp_stats(0, 0).high);
  EXPECT_EQ(a->time(), 3500000000ull);
  a->AdvanceTime(1000);
  EXPECT_EQ(a->time(), 3500000000ull);
  a->AdvanceTime(4000000000ull);  // the tick at 4 s
  b->PcpDecayTick();
  EXPECT_EQ(a->pcp_stats(0, 0).high, b->pcp_stats(0, 0).high);
}

// Sysctls during a run: min_free_kbytes 512 gives min 128, low 160, high
// 192 on the 4096-page zone (d = max(128 / 4, 4)); a bad value is refused.
TEST(SimReclaim, VmSysctlsRecomputeWatermarks) {
  auto a = Make(nullptr);
  ASSERT_TRUE(a->SetVmSysctl("min_free_kbytes", 512).ok());
  EXPECT_EQ(a->zone_stats(0).wmark_min, 128u);
  EXPECT_EQ(a->zone_stats(0).wmark_low, 160u);
  EXPECT_EQ(a->zone_stats(0).wmark_high, 192u);
  // d = max(32, 4096 * 1000 / 10000 = 409) with scale factor 1000.
  ASSERT_TRUE(a->SetVmSysctl("watermark_scale_factor", 1000).ok());
  EXPECT_EQ(a->zone_stats(0).wmark_low, 128u + 409u);
  EXPECT_TRUE(a->SetVmSysctl("watermark_boost_factor", 0).ok());
  EXPECT_TRUE(a->SetVmSysctl("defrag_mode", 1).ok());
  EXPECT_EQ(a->SetVmSysctl("watermark_scale_factor", 0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a->SetVmSysctl("percpu_pagelist_high_fraction", 3).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a->SetVmSysctl("swappiness", 60).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a->zone_stats(0).wmark_low, 128u + 409u);
}

}  // namespace
}  // namespace fraglab::sim
