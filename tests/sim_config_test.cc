// MachineConfig validation and the scenario [machine] mapping.
#include "gtest/gtest.h"
#include "common/scenario.h"
#include "sim/config.h"
#include "sim/config_from_scenario.h"
#include "sim/page_allocator.h"

namespace fraglab::sim {
namespace {

TEST(SimConfig, ValidateNamesTheBadField) {
  MachineConfig c = SingleZoneMachine(4096);
  c.watermark_scale_factor = 0;
  EXPECT_NE(c.Validate().message().find("watermark_scale_factor"), absl::string_view::npos);
  c = SingleZoneMachine(4096);
  c.zones[0].managed = 5000;
  EXPECT_EQ(c.Validate().code(), absl::StatusCode::kInvalidArgument);
  c = SingleZoneMachine(4096);
  c.zones.push_back(c.zones[0]);
  c.zones[1].type = kZoneMovable;
  EXPECT_NE(c.Validate().message().find("overlap"), absl::string_view::npos);
  c = SingleZoneMachine(4096);
  c.era = Era::kLegacy;
  c.defrag_mode = true;
  EXPECT_NE(c.Validate().message().find("defrag_mode"), absl::string_view::npos);
  c = SingleZoneMachine(8192);
  c.zones[0].type = kZoneDma;
  EXPECT_NE(c.Validate().message().find("DMA limit"), absl::string_view::npos);
  EXPECT_FALSE(PageAllocator::Create(c).ok());
}

TEST(SimConfig, ExplicitHolesAndReservedRanges) {
  MachineConfig c = SingleZoneMachine(4096);
  c.pcp = false;
  c.zones[0].present = 4096 - 512;
  c.zones[0].managed = 4096 - 512 - 16;
  c.zones[0].holes = {{1024, 512}};
  c.zones[0].reserved = {{0, 16}};
  auto a = PageAllocator::Create(c);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->zone_stats(0).free_pages, 4096u - 512 - 16);
  EXPECT_EQ((*a)->Page(0).kind, PageInfo::Kind::kAllocated);
  EXPECT_EQ((*a)->Page(0).owner, OwnerKind::kReserved);
  EXPECT_EQ((*a)->Page(1024).kind, PageInfo::Kind::kNone);
  EXPECT_FALSE((*a)->Free(0, 4).ok());  // reserved memory cannot be freed
  EXPECT_TRUE((*a)->CheckInvariants().ok());
  c.zones[0].reserved = {{0, 15}};
  EXPECT_FALSE(PageAllocator::Create(c).ok());
}

// pagetypeinfo skips pfns without a memmap: a pageblock wholly inside a hole
// is not counted, one partly present is.
TEST(SimConfig, PageblockCountsLeaveOutBlocksWhollyInAHole) {
  MachineConfig c = SingleZoneMachine(8192);  // 16 pageblocks
  c.pcp = false;
  c.zones[0].present = 8192 - 1024 - 256;
  c.zones[0].holes = {{1024, 1024}, {4096 + 128, 256}};  // blocks 2-3 absent; block 8 partly
  auto a = PageAllocator::Create(c);
  ASSERT_TRUE(a.ok()) << a.status();
  uint64_t total = 0;
  for (uint64_t n : (*a)->PageblockCounts(0)) total += n;
  EXPECT_EQ(total, 14u);
  // The default layout puts spanned - present at the top of the zone.
  c.zones[0].holes.clear();
  c.zones[0].present = 8192 - 1536;  // the top 3 blocks absent
  auto b = PageAllocator::Create(c);
  ASSERT_TRUE(b.ok()) << b.status();
  total = 0;
  for (uint64_t n : (*b)->PageblockCounts(0)) total += n;
  EXPECT_EQ(total, 13u);
}

TEST(SimConfig, FromScenarioMachine) {
  scenario::Scenario s;
  s.machine.memory_bytes = uint64_t{8} << 30;
  s.machine.cpus = 4;
  s.machine.era = scenario::Era::kLegacy;
  s.machine.pcp_tuning = scenario::PcpTuning::kStatic;
  s.machine.vm.watermark_boost_factor = 0;
  auto c = MachineConfigFromScenario(s);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->era, Era::kLegacy);
  EXPECT_EQ(c->cpus, 4);
  EXPECT_EQ(c->pcp_tuning, PcpTuning::kStatic);
  EXPECT_EQ(c->watermark_boost_factor, 0);
  EXPECT_EQ(c->min_free_kbytes, 67584);
  ASSERT_EQ(c->zones.size(), 3u);
  EXPECT_EQ(c->zones[0].type, kZoneDma);
  EXPECT_EQ(c->zones[1].type, kZoneDma32);
  EXPECT_EQ(c->zones[2].type, kZoneNormal);
  EXPECT_EQ(c->zones[2].start_pfn + c->zones[2].spanned, (uint64_t{8} << 30) >> 12);
  EXPECT_TRUE(PageAllocator::Create(*c).ok());
  s.machine.vm.defrag_mode = 1;  // not in the LEGACY era
  s.source_file = "x.toml";
  auto bad = MachineConfigFromScenario(s);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("x.toml"), absl::string_view::npos);
  EXPECT_NE(bad.status().message().find("defrag_mode"), absl::string_view::npos);
}

}  // namespace
}  // namespace fraglab::sim

namespace fraglab::sim {
namespace {

// With check_invariants_every_op the allocator checks itself after each
// operation (a broken invariant aborts, which a death test would show; here
// a normal run must simply survive).
TEST(SimConfig, CheckEveryOpRuns) {
  MachineConfig c = SingleZoneMachine(4096, 0, 2);
  c.check_invariants_every_op = true;
  auto a = *PageAllocator::Create(c);
  for (int i = 0; i < 50; ++i) {
    uint64_t p = a->Allocate({i % 4, GfpForMigratetype(static_cast<MigrateType>(i % 3)), 0, i % 2, OwnerKind::kAnon});
    ASSERT_NE(p, kNoPfn);
    if (i % 3 == 0) {
      ASSERT_TRUE(a->Free(p, i % 4, (i + 1) % 2).ok());
    }
  }
  a->DrainAllPcp();
}

}  // namespace
}  // namespace fraglab::sim
