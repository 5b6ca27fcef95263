// The generator's operations on the real kernel, small (<= 256 MiB each) and
// short. Every test restores what it changes (its own journal in a temp state
// dir) and frees what it maps; tests that need root skip when not root.
#include <sys/mman.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gen/anon.h"
#include "gen/pin.h"
#include "gen/probe.h"
#include "gen/release.h"
#include "gen/restore_journal.h"
#include "gen/safety.h"
#include "gen/sysfs.h"
#include "gen/system_ops.h"
#include "tests/live/live_test_util.h"

namespace fraglab::gen {
namespace {

constexpr uint64_t kMiB = 1ULL << 20;

// The journal shares the work dir.
class GenOpsTest : public testing::GenContextTest {
 protected:
  GenOpsTest() : GenContextTest("fraglab-gen-live", "", "writes kernel settings") {}
  void SetUp() override {
    auto sample = ReadMemorySample();
    ASSERT_TRUE(sample.ok()) << sample.status();
    if (sample->mem_available < 2048 * kMiB) {
      GTEST_SKIP() << "MemAvailable " << HumanBytes(sample->mem_available)
                   << " < 2 GiB: too little memory for the live generator tests";
    }
    GenContextTest::SetUp();
  }
};

TEST_F(GenOpsTest, AnonBasePagesTouchedAndReleasedInAPattern) {
  AnonParams p;
  p.bytes = 64 * kMiB;
  p.page_size = AnonPageSize::kBase;
  p.order = TouchOrder::kRandom;
  std::unique_ptr<AnonRegion> region;
  auto r = MapAndTouch(p, ctx_, &region);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->pages_touched, 64 * kMiB / kPageBytes);
  EXPECT_EQ(r->thp_bytes, 0u);  // MADV_NOHUGEPAGE
  EXPECT_EQ(ledger_->held(), 64 * kMiB);
  auto rss = region->SmapsRssBytes();
  ASSERT_TRUE(rss.ok());
  EXPECT_EQ(*rss, 64 * kMiB);

  ReleaseParams rp;
  rp.pattern = ReleasePattern::kEveryNth;
  rp.n = 2;
  auto rel = Release(*region, rp, stop_);
  ASSERT_TRUE(rel.ok()) << rel.status();
  EXPECT_EQ(rel->pages_released, 64 * kMiB / kPageBytes / 2);
  EXPECT_EQ(*region->SmapsRssBytes(), 32 * kMiB);  // every other page is a hole now

  rp.pattern = ReleasePattern::kStride;
  rp.unit_pages = 512;
  rp.stride = 4;
  rp.run = 1;
  rp.unmap = true;
  auto rel2 = Release(*region, rp, stop_);
  ASSERT_TRUE(rel2.ok()) << rel2.status();
  EXPECT_EQ(rel2->pages_selected, 8u * 512);  // 32 blocks of 2 MiB, every 4th
  EXPECT_EQ(region->mapped_pages(), 64 * kMiB / kPageBytes - 8 * 512);
  EXPECT_EQ(ledger_->held(), 64 * kMiB - 16 * kMiB);  // munmap returned its share
  region.reset();
  EXPECT_EQ(ledger_->held(), 0u);
}

TEST_F(GenOpsTest, AnonThpGetsHugePagesWhenMadvised) {
  auto enabled = ReadSetting("/sys/kernel/mm/transparent_hugepage/enabled");
  if (!enabled.ok() || ActiveChoice(*enabled) == "never") {
    GTEST_SKIP() << "THP is disabled on this kernel (transparent_hugepage/enabled)";
  }
  AnonParams p;
  p.bytes = 64 * kMiB;
  p.page_size = AnonPageSize::kThp;
  std::unique_ptr<AnonRegion> region;
  auto r = MapAndTouch(p, ctx_, &region);
  ASSERT_TRUE(r.ok()) << r.status();
  // With 20+ GiB free nearly every 2 MiB range gets a THP; demand at least half.
  EXPECT_GE(r->thp_bytes, 32 * kMiB) << "fault_alloc " << r->thp_fault_alloc << " fallback "
                                     << r->thp_fault_fallback;
  EXPECT_GE(r->thp_fault_alloc, r->thp_bytes / kPmdBytes / 2);
}

TEST_F(GenOpsTest, AnonMthpSizeEnabledForTheRunAndRestored) {
  NeedRoot();
  const std::string enabled = MthpDir(64) + "/enabled";
  auto before = ReadSetting(enabled);
  if (!before.ok()) GTEST_SKIP() << "no mTHP 64 kB on this kernel (" << enabled << ")";
  AnonParams p;
  p.bytes = 16 * kMiB;
  p.page_size = AnonPageSize::kMthp;
  p.mthp_kb = 64;
  std::unique_ptr<AnonRegion> region;
  auto r = MapAndTouch(p, ctx_, &region);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ActiveChoice(*ReadSetting(enabled)), "always");
  EXPECT_GE(r->mthp_faults, 16 * kMiB / (64 * 1024) / 2) << "fallbacks " << r->mthp_fallbacks;
  region.reset();
  ASSERT_TRUE(journal_->Replay().ok());
  EXPECT_EQ(*ReadSetting(enabled), *before);
}

TEST_F(GenOpsTest, AnonStopsOnRequestAndHandsTheRegionBack) {
  stop_.Request("test stop");
  AnonParams p;
  p.bytes = 8 * kMiB;
  std::unique_ptr<AnonRegion> region;
  auto r = MapAndTouch(p, ctx_, &region);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  ASSERT_NE(region, nullptr);
  EXPECT_EQ(region->populated_pages(), 0u);
}

TEST_F(GenOpsTest, BudgetRefusesAnOversizedRegion) {
  AnonParams p;
  p.bytes = 2048 * kMiB;  // the ledger holds 1 GiB
  std::unique_ptr<AnonRegion> region;
  auto r = MapAndTouch(p, ctx_, &region);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(region, nullptr);
  EXPECT_EQ(ledger_->held(), 0u);
}

TEST_F(GenOpsTest, PipesPinMeasuredPages) {
  auto pin = PinPipes(8 * kMiB, ctx_);
  ASSERT_TRUE(pin.ok()) << pin.status();
  const PinResult& r = (*pin)->result();
  EXPECT_EQ(r.pages_measured, 8 * kMiB / kPageBytes);
  EXPECT_GE(r.objects, 8u);  // at most 1 MiB per pipe
  EXPECT_EQ(ledger_->held(), 8 * kMiB);
  pin->reset();
  EXPECT_EQ(ledger_->held(), 0u);
}

TEST_F(GenOpsTest, PageTablesFromSparseTouches) {
  auto pin = PinPageTables(PinKind::kPageTable2M, 2048, ctx_);
  ASSERT_TRUE(pin.ok()) << pin.status();
  const PinResult& r = (*pin)->result();
  EXPECT_EQ(r.objects, 2048u);
  // One PTE page per touch, plus a PMD page per 1 GiB crossed (VmPTE is this
  // process's own count, so other processes cannot disturb it).
  EXPECT_GE(r.pages_measured, 2048u);
  EXPECT_LE(r.pages_measured, 2048u + 2048u / 512 + 4);
  auto pin1g = PinPageTables(PinKind::kPageTable1G, 64, ctx_);
  ASSERT_TRUE(pin1g.ok()) << pin1g.status();
  // A PMD page and a PTE page per 1 GiB touched, a PUD page per 512 GiB.
  EXPECT_GE((*pin1g)->result().pages_measured, 64u * 2);
  EXPECT_LE((*pin1g)->result().pages_measured, 64u * 2 + 2);
}

TEST_F(GenOpsTest, SocketsHoldUnreadData) {
  auto pin = PinSockets(8 * kMiB, ctx_);
  ASSERT_TRUE(pin.ok()) << pin.status();
  const PinResult& r = (*pin)->result();
  EXPECT_GE(r.objects, 1u);
  // TCP accounts whole pages per skb; at least half the data must show.
  EXPECT_GE(r.pages_measured, 8 * kMiB / kPageBytes / 2) << r.notes[0];
}

TEST_F(GenOpsTest, LongtermPinsViaIoUring) {
  auto disabled = ReadUint("/proc/sys/kernel/io_uring_disabled");
  if (disabled.ok() && *disabled == 2) GTEST_SKIP() << "io_uring disabled (kernel.io_uring_disabled=2)";
  auto pin = PinLongterm(16 * kMiB, ctx_);
  ASSERT_TRUE(pin.ok()) << pin.status();
  EXPECT_EQ((*pin)->result().pages_measured, 16 * kMiB / kPageBytes);
  auto vmpin0 = ReadKeyValueFile("/proc/self/status");
  pin->reset();
  auto vmpin1 = ReadKeyValueFile("/proc/self/status");
  EXPECT_EQ(ValueOr0(*vmpin0, "VmPin") - ValueOr0(*vmpin1, "VmPin"), 16 * kMiB);
}

TEST_F(GenOpsTest, HugetlbProbeGrowsAndGivesBack) {
  NeedRoot();
  auto before = ReadUint(kNrHugepages2M);
  ASSERT_TRUE(before.ok());
  auto r = ProbeHugetlb(16, ctx_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LE(r->obtained, 16u);
  EXPECT_GE(r->obtained, 1u) << "not one free 2 MiB block on a machine with 2+ GiB available";
  EXPECT_EQ(r->given_back, r->obtained);
  EXPECT_EQ(*ReadUint(kNrHugepages2M), *before);
  EXPECT_EQ(ledger_->held(), 0u);
}

TEST_F(GenOpsTest, ThpProbeCountsHugePages) {
  auto r = ProbeThp(16, ctx_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LE(r->obtained, 16u);
  EXPECT_EQ(ledger_->held(), 0u);
  auto enabled = ReadSetting("/sys/kernel/mm/transparent_hugepage/enabled");
  if (enabled.ok() && ActiveChoice(*enabled) != "never") {
    EXPECT_GE(r->obtained, 8u);
  }
}

TEST_F(GenOpsTest, CompactDropCachesAndSysctlRestore) {
  NeedRoot();
  auto c = Compact();
  ASSERT_TRUE(c.ok()) << c.status();
  auto d = DropCaches(1);
  ASSERT_TRUE(d.ok()) << d.status();
  const std::string path = "/proc/sys/vm/compaction_proactiveness";
  auto before = ReadSetting(path);
  ASSERT_TRUE(before.ok());
  const std::string other = *before == "0" ? "1" : "0";
  ASSERT_TRUE(SetSysctl("vm.compaction_proactiveness", other, ctx_).ok());
  EXPECT_EQ(*ReadSetting(path), other);
  ASSERT_TRUE(journal_->Replay().ok());
  EXPECT_EQ(*ReadSetting(path), *before);
  EXPECT_EQ(SetSysctl("vm.no_such_knob_fraglab", "1", ctx_).code(), absl::StatusCode::kNotFound);
}

TEST_F(GenOpsTest, HoldWakesOnStop) {
  StopFlag s;
  EXPECT_TRUE(Hold(20'000'000, s).ok());
  s.Request("now");
  EXPECT_EQ(Hold(10'000'000'000ULL, s).code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace fraglab::gen
