// Watermarks, lowmem reserves, boosting, NOFRAGMENT and defrag_mode
// (reference §5), plus the /proc renderings, snapshots and narration.
#include <memory>
#include <string>
#include <vector>

#include <fstream>
#include <sstream>

#include "absl/strings/str_split.h"
#include "common/event_sink.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/config.h"
#include "sim/page_allocator.h"
#include "sim/proc_render.h"
#include "sim/testing_util.h"

namespace fraglab::sim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The zones of the 6.18 VM this project runs on (from its /proc/zoneinfo).
MachineConfig ThisVm() {
  MachineConfig c;
  c.cpus = 2;
  c.pcp_tuning = PcpTuning::kStatic;
  c.zones = {{.node = 0, .type = kZoneDma, .start_pfn = 1, .spanned = 4095, .present = 3998, .managed = 3840},
             {.node = 0, .type = kZoneDma32, .start_pfn = 4096, .spanned = 1044480, .present = 782336, .managed = 772915},
             {.node = 0, .type = kZoneNormal, .start_pfn = 0x100000, .spanned = 5505024, .present = 5505024, .managed = 458752}};
  return c;
}

// §5.1 numbers checked against the VM's /proc/zoneinfo (min/low/high/protection).
TEST(SimWatermarks, MatchTheKernelOnThisVm) {
  MachineConfig c = ThisVm();
  EXPECT_EQ(DefaultMinFreeKbytes(c), 67584);  // THP raise: 11 blocks x 3 zones
  auto a = *PageAllocator::Create(c);
  ZoneStats dma = a->zone_stats(0), d32 = a->zone_stats(1), nor = a->zone_stats(2);
  EXPECT_EQ(dma.wmark_min, 52u);
  EXPECT_EQ(dma.wmark_low, 65u);
  EXPECT_EQ(dma.wmark_high, 78u);
  EXPECT_EQ(d32.wmark_min, 10569u);
  EXPECT_EQ(d32.wmark_low, 13211u);
  EXPECT_EQ(d32.wmark_high, 15853u);
  EXPECT_EQ(nor.wmark_min, 6273u);
  EXPECT_EQ(nor.wmark_low, 7841u);
  EXPECT_EQ(nor.wmark_high, 9409u);
  EXPECT_EQ(nor.wmark_promo, 10977u);
  EXPECT_THAT(dma.lowmem_reserve, ElementsAre(0, 3019, 4811, 4811));
  EXPECT_THAT(d32.lowmem_reserve, ElementsAre(0, 0, 1792, 1792));
  EXPECT_THAT(nor.lowmem_reserve, ElementsAre(0, 0, 0, 0));
  EXPECT_EQ(a->pcp_stats(2, 0).batch, 63);
  EXPECT_EQ(a->pcp_stats(2, 0).high, 3920);  // <= 6.6: low / CPUs of the node
  EXPECT_EQ(a->pcp_stats(0, 0).batch, 1);
  // Managed pages only are free at boot; reserved and absent pages are not.
  EXPECT_EQ(dma.free_pages, 3840u);
  EXPECT_EQ(d32.free_pages, 772915u);
  EXPECT_EQ(nor.free_pages, 458752u);
  // The DMA zone steps pageblocks from pfn 1: 8 blocks, as the VM's pagetypeinfo.
  EXPECT_EQ(a->PageblockCounts(0)[1], 8u);
  EXPECT_TRUE(a->CheckInvariants().ok());
}

// §5.1: the high-order part of the check needs a free block >= order on a
// PCP-type list, whatever the free page count.
TEST(SimWatermarks, HighOrderCheckNeedsAFreeBlock) {
  MachineConfig c = SingleZoneMachine(4096);
  c.pcp = false;
  c.min_free_kbytes = 128;
  auto a = *PageAllocator::Create(c);
  for (uint64_t p = 0; p < 4096; ++p)
    ASSERT_EQ(a->AllocateWithFlags({0, gfp::kHighuserMovable, 0, 0, OwnerKind::kAnon}, alloc::kNoWatermarks), p);
  for (uint64_t p = 0; p < 4096; p += 2) ASSERT_TRUE(a->Free(p, 0).ok());
  EXPECT_EQ(a->zone_stats(0).free_pages, 2048u);
  EXPECT_EQ(a->AllocateWithFlags({1, gfp::kHighuserMovable, 0, 0, OwnerKind::kAnon}, alloc::kWmarkMin), kNoPfn);
  // Order 0 passes; it gets the head of the order-0 list, the last page freed.
  EXPECT_EQ(a->AllocateWithFlags({0, gfp::kHighuserMovable, 0, 0, OwnerKind::kAnon}, alloc::kWmarkMin), 4094u);
}

// §5.1 lowmem reserve: DMA32 keeps managed(Normal)/256 pages from requests
// that could have used Normal.
TEST(SimWatermarks, LowmemReserveProtectsLowerZone) {
  MachineConfig c;
  c.pcp = false;
  c.min_free_kbytes = 128;  // 32 pages shared: min 16, low 24 per zone
  c.zones = {{.node = 0, .type = kZoneDma32, .start_pfn = 0x1000, .spanned = 8192},
             {.node = 0, .type = kZoneNormal, .start_pfn = 0x100000, .spanned = 8192}};
  auto a = *PageAllocator::Create(c);
  EXPECT_EQ(a->zone_stats(0).lowmem_reserve[kZoneNormal], 32u);
  // Fill Normal completely and DMA32 down to 50 free pages.
  for (int i = 0; i < 8; ++i) a->AllocateWithFlags({10, gfp::kKernel, 0, 0, OwnerKind::kKernel}, alloc::kNoWatermarks);
  for (int i = 0; i < 8 * 1024 - 40; ++i)
    ASSERT_NE(a->AllocateWithFlags({0, gfp::kKernel | gfp::kDma32, 0, 0, OwnerKind::kKernel}, alloc::kNoWatermarks), kNoPfn);
  ASSERT_EQ(a->zone_stats(0).free_pages, 40u);
  ASSERT_EQ(a->zone_stats(1).free_pages, 0u);
  // GFP_KERNEL (highest zone Normal): 40 <= low 24 + reserve 32 and
  // 40 <= min 16 + 32 -> refused on both paths.
  EXPECT_EQ(a->Allocate({0, gfp::kKernel, 0, 0, OwnerKind::kKernel}), kNoPfn);
  // GFP_DMA32 (highest zone DMA32, no reserve): 40 > 24 -> served.
  EXPECT_NE(a->Allocate({0, gfp::kKernel | gfp::kDma32, 0, 0, OwnerKind::kKernel}), kNoPfn);
}

// §5.2: a fallback below order 9 boosts the watermark by a pageblock (capped
// at max(512, high * 15000 / 10000)), wakes kswapd, and later requests see
// the boosted marks; __GFP_HIGH order-0 requests ignore the boost at MIN.
TEST(SimWatermarks, BoostRaisesMarksAndWakesKswapd) {
  MachineConfig c = SingleZoneMachine(4096);
  c.pcp = false;
  c.era = Era::kLegacy;
  c.min_free_kbytes = 128;  // min 32, low 40, high 48
  auto a = *PageAllocator::Create(c);
  auto mov = [&](int order) {
    return a->AllocateWithFlags({order, gfp::kHighuserMovable, 0, 0, OwnerKind::kAnon}, alloc::kNoWatermarks);
  };
  ASSERT_EQ(mov(10), 0u);
  ASSERT_EQ(mov(10), 1024u);
  ASSERT_EQ(mov(10), 2048u);
  ASSERT_EQ(mov(9), 3072u);
  ASSERT_EQ(mov(8), 3584u);  // 256 free pages left, all in block 7 (3584..4095)
  EXPECT_EQ(a->zone_stats(0).boost, 0u);
  ASSERT_EQ(a->AllocateWithFlags({0, gfp::kKernel, 0, 0, OwnerKind::kKernel}, alloc::kNoWatermarks | alloc::kKswapd),
            3840u);
  EXPECT_EQ(a->zone_stats(0).boost, 512u);
  std::vector<KswapdWakeup> w = a->TakeKswapdWakeups();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_TRUE(w[0].from_boost);
  // 255 free pages: fine for low 40, not for low 40 + boost 512.
  EXPECT_EQ(a->Allocate({0, gfp::kKernel, 0, 0, OwnerKind::kKernel}), kNoPfn);
  w = a->TakeKswapdWakeups();
  ASSERT_EQ(w.size(), 1u);  // the slow path woke kswapd for order 0
  EXPECT_FALSE(w[0].from_boost);
  EXPECT_NE(a->Allocate({0, gfp::kAtomic, 0, 0, OwnerKind::kKernel}), kNoPfn);
}

// Builds a Normal-only CLAIM machine in defrag_mode whose free memory is 255
// MOVABLE pages in small blocks of one pageblock (claim impossible).
std::unique_ptr<PageAllocator> FragmentedDefragMode(bool defrag_mode) {
  MachineConfig c = SingleZoneMachine(4096);
  c.pcp = false;
  c.era = Era::kClaim;
  c.defrag_mode = defrag_mode;
  c.min_free_kbytes = 128;
  c.watermark_boost_factor = 0;
  auto a = *PageAllocator::Create(c);
  auto mov = [&](int order) {
    return a->AllocateWithFlags({order, gfp::kHighuserMovable, 0, 0, OwnerKind::kAnon}, alloc::kNoWatermarks);
  };
  for (int i = 0; i < 4; ++i) mov(10);
  EXPECT_TRUE(a->Free(0, 10).ok());
  mov(8);
  mov(9);
  mov(0);
  return a;
}

// §5.4: defrag_mode keeps NOFRAGMENT on both paths; non-blocking requests
// fail instead of fragmenting, blocking ones fragment after the slow path.
TEST(SimWatermarks, DefragModeRefusesNonBlockingFragmentation) {
  auto a = FragmentedDefragMode(true);
  EXPECT_EQ(a->Allocate({0, gfp::kNowait, 0, 0, OwnerKind::kKernel}), kNoPfn);
  std::vector<KswapdWakeup> w = a->TakeKswapdWakeups();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].order, 9);  // kswapd is woken at max(order, 9)
  EXPECT_EQ(a->Allocate({0, gfp::kKernel, 0, 0, OwnerKind::kKernel}), 257u);  // steal phase
  // Without defrag_mode the non-blocking request fragments right away.
  auto b = FragmentedDefragMode(false);
  EXPECT_EQ(b->Allocate({0, gfp::kNowait, 0, 0, OwnerKind::kKernel}), 257u);
}

TEST(SimRender, BuddyinfoAndPagetypeinfoUseKernelLayout) {
  MachineConfig c = SingleZoneMachine(4096);
  c.pcp = false;
  auto a = *PageAllocator::Create(c);
  EXPECT_EQ(RenderBuddyinfo(*a),
            "Node 0, zone   Normal      0      0      0      0      0      0      0      0      0      0      4 \n");
  std::string want =
      "Page block order: 9\n"
      "Pages per block:  512\n"
      "\n"
      "Free pages count per migrate type at order       0      1      2      3      4      5      6      7      8      9     10 \n"
      "Node    0, zone   Normal, type    Unmovable      0      0      0      0      0      0      0      0      0      0      0 \n"
      "Node    0, zone   Normal, type      Movable      0      0      0      0      0      0      0      0      0      0      4 \n"
      "Node    0, zone   Normal, type  Reclaimable      0      0      0      0      0      0      0      0      0      0      0 \n"
      "Node    0, zone   Normal, type   HighAtomic      0      0      0      0      0      0      0      0      0      0      0 \n"
      "Node    0, zone   Normal, type      Isolate      0      0      0      0      0      0      0      0      0      0      0 \n"
      "\n"
      "Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic      Isolate \n"
      "Node 0, zone   Normal            0            8            0            0            0 \n";
  EXPECT_EQ(RenderPagetypeinfo(*a), want);
}

std::vector<std::string> FixtureLines(const char* name) {
  std::ifstream in(std::string(FRAGLAB_FIXTURE_DIR) + "/sim/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return absl::StrSplit(ss.str(), '\n');
}

// The VM's real /proc text (tests/fixtures/sim/vm_*.txt, copied from this
// machine; values differ, layout must not): same lines, same lengths, same
// headers, for our rendering of the same zones.
TEST(SimRender, LayoutMatchesRealProcFiles) {
  auto a = *PageAllocator::Create(ThisVm());
  std::vector<std::string> ours = absl::StrSplit(RenderPagetypeinfo(*a), '\n');
  std::vector<std::string> real = FixtureLines("vm_pagetypeinfo.txt");
  ASSERT_EQ(ours.size(), real.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_EQ(ours[i].size(), real[i].size()) << "line " << i << "\nours: " << ours[i] << "\nreal: " << real[i];
    if (real[i].rfind("Node", 0) != 0) EXPECT_EQ(ours[i], real[i]);  // headers verbatim
    else EXPECT_EQ(ours[i].substr(0, 30), real[i].substr(0, 30));  // zone/type labels
  }
  ours = absl::StrSplit(RenderBuddyinfo(*a), '\n');
  real = FixtureLines("vm_buddyinfo.txt");
  ASSERT_EQ(ours.size(), real.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_EQ(ours[i].size(), real[i].size()) << ours[i];
    EXPECT_EQ(ours[i].substr(0, 22), real[i].substr(0, 22));
  }
}

TEST(SimRender, CmaNumberingAddsAColumn) {
  MachineConfig c = SingleZoneMachine(4096);
  c.with_cma = true;
  auto a = *PageAllocator::Create(c);
  EXPECT_THAT(RenderPagetypeinfo(*a),
              HasSubstr("Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic          CMA      Isolate \n"));
  EXPECT_EQ(a->numbering().Number(kIsolate), 5);
}

TEST(SimSnapshot, FillsZoneRecord) {
  MachineConfig c = SingleZoneMachine(4096);
  c.pcp = false;
  c.min_free_kbytes = 128;
  VectorSink sink;
  auto a = *PageAllocator::Create(c, &sink);
  ASSERT_EQ(a->AllocateWithFlags({0, gfp::kKernel, 0, 0, OwnerKind::kKernel}, alloc::kNoWatermarks), 0u);
  a->set_time(77);
  sink.clear();
  a->EmitSnapshots();
  ASSERT_EQ(sink.size(), 1u);
  ASSERT_EQ(sink.at(0).kind, FL_EV_SNAPSHOT_ZONE);
  auto s = sink.as<fl_snapshot_zone>(0);
  EXPECT_EQ(s.hdr.ts_ns, 77u);
  EXPECT_EQ(s.zone_idx, 2);
  EXPECT_EQ(s.nr_migratetypes, 5u);
  EXPECT_EQ(s.spanned, 4096u);
  EXPECT_EQ(s.nr_free_pages, 4095u);
  EXPECT_EQ(s.wmark_min, 32u);
  EXPECT_EQ(s.wmark_low, 40u);
  EXPECT_EQ(s.wmark_high, 48u);
  EXPECT_EQ(s.nr_free[10], 3u);
  EXPECT_EQ(s.nr_free[0], 1u);
  EXPECT_EQ(s.free_by_type[0][0], 1u);   // UNMOVABLE order 0
  EXPECT_EQ(s.free_by_type[10][1], 3u);  // MOVABLE order 10
  EXPECT_EQ(s.pageblocks[0], 2u);        // blocks 0 and 1 claimed
  EXPECT_EQ(s.pageblocks[1], 6u);
}

// The narrator sees each decision of a CLAIM fallback in order.
TEST(SimNarration, ClaimFallbackIsNarrated) {
  MachineConfig c = SingleZoneMachine(4096);
  c.pcp = false;
  c.era = Era::kClaim;
  c.min_free_kbytes = 128;
  testing::RecordingNarrator n;
  auto a = *PageAllocator::Create(c, nullptr, &n);
  auto mov = [&](int order) {
    return a->AllocateWithFlags({order, gfp::kHighuserMovable, 0, 0, OwnerKind::kAnon}, alloc::kNoWatermarks);
  };
  for (int i = 0; i < 4; ++i) mov(10);
  ASSERT_TRUE(a->Free(0, 10).ok());
  mov(8);
  mov(9);
  mov(0);
  n.decisions.clear();
  a->set_time(5);
  ASSERT_EQ(a->AllocateWithFlags({0, gfp::kKernel, 0, 0, OwnerKind::kKernel}, alloc::kNoWatermarks), 257u);
  int candidates = 0, counts = 0, boosts = 0, steals = 0;
  for (const Decision& d : n.decisions) {
    EXPECT_EQ(d.time, 5u);
    candidates += d.kind == DecisionKind::kFallbackCandidate;
    boosts += d.kind == DecisionKind::kBoost;
    steals += d.kind == DecisionKind::kSteal;
    if (d.kind == DecisionKind::kBlockCount) {
      ++counts;
      EXPECT_EQ(d.value, 255);
      EXPECT_EQ(d.value2, 0);
      EXPECT_FALSE(d.yes);
      EXPECT_EQ(d.text, "pageblock 0: free 255 + alike 0 < 256 -> no claim, try lower orders");
    }
  }
  EXPECT_EQ(candidates, 8);  // orders 7..0
  EXPECT_EQ(counts, 8);
  EXPECT_EQ(boosts, 8);      // every claim attempt below order 9 boosts
  EXPECT_EQ(steals, 2);      // the steal decision and its extfrag line
  EXPECT_EQ(n.decisions[0].kind, DecisionKind::kZoneTry);
  EXPECT_EQ(n.decisions[1].kind, DecisionKind::kListSearch);
  EXPECT_EQ(n.decisions[1].text, "UNMOVABLE lists empty at orders 0..10");
  EXPECT_EQ(n.decisions.back().kind, DecisionKind::kAllocEnd);
}

}  // namespace
}  // namespace fraglab::sim
