#include "analysis/metrics.h"

#include <cstring>

#include "gtest/gtest.h"

namespace fraglab::analysis {
namespace {

TraceHeader TestHeader() {
  TraceHeader h;
  h.migratetype_names = {"Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"};
  h.zones.push_back({0, 2, "Normal", 0x100000, 0x100000, 0x100000, 0xf0000});
  return h;
}

fl_phase Phase(uint32_t index, bool begin, const char* label, uint64_t ts) {
  fl_phase p;
  InitRecord(p, FL_EV_PHASE, ts, 0);
  p.index = index;
  p.begin = begin;
  std::strncpy(p.label, label, sizeof(p.label) - 1);
  return p;
}

fl_extfrag Extfrag(int cls, int from, int to, uint64_t ts) {
  fl_extfrag e;
  InitRecord(e, FL_EV_EXTFRAG, ts, 0);
  e.extfrag_class = static_cast<uint8_t>(cls);
  e.alloc_migratetype = from;
  e.fallback_migratetype = to;
  e.alloc_order = 0;
  e.fallback_order = cls == FL_EXTFRAG_CLAIM ? 9 : 3;
  return e;
}

fl_snapshot_zone Snapshot(uint64_t order9, uint32_t unmovable_blocks, uint64_t ts) {
  fl_snapshot_zone s;
  InitRecord(s, FL_EV_SNAPSHOT_ZONE, ts, 0);
  s.nid = 0;
  s.zone_idx = 2;
  s.nr_free[9] = order9;
  s.nr_free[10] = 1;
  s.pageblocks[0] = unmovable_blocks;
  s.pageblocks[1] = 1000 - unmovable_blocks;
  s.nr_migratetypes = 5;
  return s;
}

fl_counters Counters(uint64_t stall, uint64_t ts) {
  fl_counters c;
  InitRecord(c, FL_EV_COUNTERS, ts, 0);
  c.present_mask = 1ull << FL_CTR_COMPACT_STALL;
  c.value[FL_CTR_COMPACT_STALL] = stall;
  return c;
}

TEST(MetricsTest, SplitsByPhaseAndCounts) {
  MetricsBuilder b(TestHeader());
  ASSERT_TRUE(b.Emit(Snapshot(100, 10, 1).hdr).ok());
  ASSERT_TRUE(b.Emit(Counters(5, 1).hdr).ok());
  ASSERT_TRUE(b.Emit(Phase(0, true, "fill", 2).hdr).ok());
  ASSERT_TRUE(b.Emit(Extfrag(FL_EXTFRAG_POLLUTE, 0, 1, 3).hdr).ok());
  ASSERT_TRUE(b.Emit(Extfrag(FL_EXTFRAG_POLLUTE, 0, 1, 4).hdr).ok());
  ASSERT_TRUE(b.Emit(Extfrag(FL_EXTFRAG_CLAIM, 1, 0, 5).hdr).ok());
  ASSERT_TRUE(b.Emit(Counters(8, 6).hdr).ok());
  ASSERT_TRUE(b.Emit(Snapshot(40, 14, 6).hdr).ok());
  ASSERT_TRUE(b.Emit(Phase(0, false, "fill", 7).hdr).ok());
  ASSERT_TRUE(b.Emit(Phase(1, true, "probe", 8).hdr).ok());
  fl_probe pr;
  InitRecord(pr, FL_EV_PROBE, 9, 0);
  pr.probe_kind = FL_PROBE_HUGETLB;
  pr.order = 9;
  pr.requested = 10;
  pr.obtained = 4;
  ASSERT_TRUE(b.Emit(pr.hdr).ok());
  TraceMetrics m = b.Finish();

  ASSERT_EQ(m.phases.size(), 3u);
  EXPECT_EQ(m.phases[0].label, "start");
  EXPECT_EQ(m.phases[1].label, "fill");
  EXPECT_EQ(m.phases[1].begin_ts, 2u);
  EXPECT_EQ(m.phases[1].end_ts, 7u);
  EXPECT_TRUE(m.phases[1].ended);
  EXPECT_EQ((m.phases[1].fallbacks[{FL_EXTFRAG_POLLUTE, 0, 1}]), 2u);
  EXPECT_EQ((m.phases[1].fallbacks[{FL_EXTFRAG_CLAIM, 1, 0}]), 1u);
  EXPECT_EQ(m.phases[1].counter_delta[FL_CTR_COMPACT_STALL], 3u);
  EXPECT_EQ((m.phases[1].zones[{0, 2}].nr_free[9]), 40u);
  EXPECT_EQ((m.phases[0].zones[{0, 2}].nr_free[9]), 100u);
  // Phase 2 carries the last zone state forward.
  EXPECT_EQ((m.phases[2].zones[{0, 2}].pageblocks[0]), 14u);
  ASSERT_EQ(m.phases[2].probes.size(), 1u);

  auto flat = FlattenMetrics(m);
  // Labels that already carry the index are not prefixed twice.
  MetricsBuilder b2(TestHeader());
  ASSERT_TRUE(b2.Emit(Phase(3, true, "3:release", 1).hdr).ok());
  auto flat2 = FlattenMetrics(b2.Finish());
  EXPECT_EQ(flat2.count("3:release/fallbacks/total"), 1u);
  EXPECT_EQ(flat2.count("3:3:release/fallbacks/total"), 0u);
  EXPECT_EQ(flat["0:fill/fallbacks/pollute/Unmovable->Movable"], 2);
  EXPECT_EQ(flat["0:fill/fallbacks/claim"], 1);
  EXPECT_EQ(flat["0:fill/fallbacks/total"], 3);
  EXPECT_EQ(flat["0:fill/free_blocks/node0_Normal/order9"], 40);
  EXPECT_EQ(flat["0:fill/free_pageblocks_order9plus/node0_Normal"], 42);  // 40 + 1 order-10 = 2 blocks
  EXPECT_EQ(flat["start/pageblocks/node0_Normal/Unmovable"], 10);
  EXPECT_DOUBLE_EQ(flat["1:probe/probe/hugetlb/order9/obtained_fraction"], 0.4);
}

TEST(MetricsTest, DropsSumLatestPerCpu) {
  MetricsBuilder b(TestHeader());
  for (uint16_t cpu = 0; cpu < 2; ++cpu) {
    for (uint64_t lost : {3u, 7u}) {
      fl_drops d;
      InitRecord(d, FL_EV_DROPS, lost, cpu);
      d.lost = lost + cpu;
      ASSERT_TRUE(b.Emit(d.hdr).ok());
    }
  }
  EXPECT_EQ(b.Finish().drops, 7u + 8u);
}

TEST(MetricsTest, JsonHasPhasesAndFlatMetrics) {
  MetricsBuilder b(TestHeader());
  ASSERT_TRUE(b.Emit(Phase(0, true, "x", 1).hdr).ok());
  ASSERT_TRUE(b.Emit(Extfrag(FL_EXTFRAG_STEAL, 2, 1, 2).hdr).ok());
  auto j = MetricsToJson(b.Finish());
  ASSERT_EQ(j["phases"].size(), 2u);
  EXPECT_EQ(j["phases"][1]["fallbacks"][0]["class"], "steal");
  EXPECT_EQ(j["phases"][1]["fallbacks"][0]["from"], "Reclaimable");
  EXPECT_EQ(j["metrics"]["0:x/fallbacks/steal/Reclaimable->Movable"], 1.0);
}

}  // namespace
}  // namespace fraglab::analysis
