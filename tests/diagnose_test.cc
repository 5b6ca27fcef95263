// fraglab diagnose: each fixture under tests/fixtures/diagnose/<case> is the
// real 6.18 capture edited to one known condition (make_fixtures.py there);
// each test asserts the finding, its severity and its evidence numbers, and
// that the healthy capture raises nothing above info.
#include "analysis/diagnose.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace fraglab::diagnose {
namespace {

using ::testing::HasSubstr;

const std::string kDir = std::string(FRAGLAB_FIXTURE_DIR) + "/diagnose/";

struct Loaded {
  snapshot::MachineSnapshot snap;
  DiagnoseInput input;
};

std::unique_ptr<Loaded> Load(const std::string& name) {
  auto l = std::make_unique<Loaded>();
  absl::StatusOr<snapshot::MachineSnapshot> s = snapshot::ReadMachineSnapshot(kDir + name);
  EXPECT_TRUE(s.ok()) << name << ": " << s.status();
  if (s.ok()) l->snap = *std::move(s);
  l->input.now = &l->snap;
  l->input.tunables = ReadTunables(kDir + name);
  return l;
}

const Finding* Find(const std::vector<Finding>& fs, const std::string& id) {
  for (const auto& f : fs)
    if (f.id == id) return &f;
  return nullptr;
}

double Ev(const Finding& f, const std::string& name, const std::string& where = "") {
  for (const auto& e : f.evidence)
    if (e.name == name && (where.empty() || e.where == where)) return e.value;
  ADD_FAILURE() << "no evidence " << name << " in " << f.id;
  return -1;
}

std::vector<std::string> Ids(const std::vector<Finding>& fs, Severity at_least) {
  std::vector<std::string> ids;
  for (const auto& f : fs)
    if (f.severity >= at_least) ids.push_back(f.id);
  return ids;
}

TEST(DiagnoseTest, TunablesAreRead) {
  const Tunables t = ReadTunables(kDir + "healthy");
  EXPECT_EQ(t.min_free_kbytes, 67584u);
  EXPECT_EQ(t.watermark_boost_factor, 15000u);
  EXPECT_EQ(t.defrag_mode, 0u);
  EXPECT_EQ(t.thp_enabled, "madvise");
  EXPECT_EQ(t.thp_defrag, "madvise");
  EXPECT_EQ(SelectedChoice("always defer [defer+madvise] madvise never\n"), "defer+madvise");
  EXPECT_EQ(SelectedChoice(" 17\n"), "17");
  const Tunables none = ReadTunables(kDir + "does-not-exist");
  EXPECT_FALSE(none.min_free_kbytes.has_value());
  EXPECT_EQ(none.thp_enabled, "");
}

TEST(DiagnoseTest, HealthyCaptureHasNoWarnings) {
  auto l = Load("healthy");
  const std::vector<Finding> fs = Diagnose(l->input);
  EXPECT_EQ(WorstSeverity(fs), Severity::kInfo);
  EXPECT_THAT(Ids(fs, Severity::kWarning), ::testing::IsEmpty());
  // Normal alone is fragmented at order 9 (debugfs said 0.906) but DMA32 has
  // 756 free order>=9 blocks, so it is only noted.
  const Finding* z = Find(fs, "zone_high_order_shortage");
  ASSERT_NE(z, nullptr);
  EXPECT_EQ(z->scope, "node 0 zone Normal");
  EXPECT_DOUBLE_EQ(Ev(*z, "zone_unusable_index_order9"), 0.906);
  EXPECT_DOUBLE_EQ(Ev(*z, "zone_free_order9_blocks"), 37 + 2 * 17);
  // Node 0: 811008 of 1167497 free pages are in order>=9 blocks.
  EXPECT_DOUBLE_EQ(Ev(*z, "node_free_order9_blocks"), 811008 / 512);
  EXPECT_DOUBLE_EQ(Ev(*z, "node_unusable_index_order9"), 0.305);
  const std::string text = FindingsText(l->input, fs);
  EXPECT_THAT(text, HasSubstr("No problems found."));
  EXPECT_THAT(text, HasSubstr("kernel 6.18.44-fc-v669"));
}

TEST(DiagnoseTest, FragmentedNodeLacksOrder9Blocks) {
  auto l = Load("fragmented");
  const std::vector<Finding> fs = Diagnose(l->input);
  const Finding* f = Find(fs, "high_order_shortage");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->severity, Severity::kCritical);
  EXPECT_EQ(f->scope, "node 0");
  EXPECT_EQ(&fs.front(), f);  // most severe first
  // Free pages: DMA 443 + DMA32 482000 + Normal 160880.
  constexpr double kFree = 443 + 482000 + 160880;
  EXPECT_NEAR(Ev(*f, "free_memory"), kFree * 4096 / (1 << 20), 1e-9);
  EXPECT_NEAR(Ev(*f, "free_share_of_managed"), kFree / (3840 + 772915 + 622592), 1e-12);
  EXPECT_EQ(Ev(*f, "free_order9_blocks"), 0);
  EXPECT_EQ(Ev(*f, "unusable_index_order9"), 1.0);
  // Pages in blocks below order 4: DMA 11, DMA32 162000, Normal 134000.
  EXPECT_DOUBLE_EQ(Ev(*f, "unusable_index_order4"), static_cast<int>(1000 * 296011 / 643323) / 1000.0);
  EXPECT_EQ(Ev(*f, "zone_unusable_index_order9", "node 0 zone DMA32"), 1.0);
  EXPECT_EQ(Ev(*f, "zone_unusable_index_order9", "node 0 zone Normal"), 1.0);
  // Actions fit this kernel and its tunables.
  const std::string actions = ::testing::PrintToString(f->actions);
  EXPECT_THAT(actions, HasSubstr("/sys/devices/system/node/node0/compact"));
  EXPECT_THAT(actions, HasSubstr("min_free_kbytes (now 67584 kB)"));
  EXPECT_THAT(actions, HasSubstr("watermark_boost_factor (now 15000"));
  EXPECT_THAT(actions, HasSubstr("This kernel has vm.defrag_mode (now 0)"));
  EXPECT_THAT(actions, HasSubstr("hugepages=N"));
  EXPECT_FALSE(f->measure_after.empty());
  EXPECT_THAT(f->measure_after[0], HasSubstr("free order-9 blocks on node 0 (now 0)"));
}

TEST(DiagnoseTest, DefragModeAdviceDependsOnKernel) {
  auto l = Load("fragmented");
  l->snap.kernel_release = "6.1.0-13-amd64";
  l->input.tunables.defrag_mode.reset();
  const Finding* f = nullptr;
  const std::vector<Finding> fs = Diagnose(l->input);
  f = Find(fs, "high_order_shortage");
  ASSERT_NE(f, nullptr);
  EXPECT_THAT(::testing::PrintToString(f->actions), HasSubstr("vm.defrag_mode needs kernel 6.15+"));
}

TEST(DiagnoseTest, CompactionFailuresAndThpFallbacks) {
  auto l = Load("compaction_thp");
  const std::vector<Finding> fs = Diagnose(l->input);
  const Finding* c = Find(fs, "compaction_failing");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->severity, Severity::kWarning);
  EXPECT_EQ(Ev(*c, "compact_stall"), 1000);
  EXPECT_EQ(Ev(*c, "compact_fail"), 800);
  EXPECT_EQ(Ev(*c, "compact_success"), 150);
  EXPECT_DOUBLE_EQ(Ev(*c, "fail_ratio"), 0.8);
  EXPECT_DOUBLE_EQ(Ev(*c, "success_ratio"), 0.15);
  EXPECT_EQ(Ev(*c, "compact_migrate_scanned"), 4500000);
  EXPECT_THAT(c->title, HasSubstr("80%"));
  EXPECT_THAT(::testing::PrintToString(c->actions), HasSubstr("(now 'madvise')"));
  // A machine-wide finding compacts every node.
  EXPECT_THAT(c->actions[0], HasSubstr("echo 1 > /proc/sys/vm/compact_memory (all nodes)"));

  const Finding* t = Find(fs, "thp_fallback");
  ASSERT_NE(t, nullptr);
  // 3000 fallbacks minus 500 memcg-charge ones, over 2000 + 2500 attempts.
  EXPECT_EQ(t->severity, Severity::kCritical);
  EXPECT_DOUBLE_EQ(Ev(*t, "fallback_rate"), 2500.0 / 4500.0);
  EXPECT_EQ(Ev(*t, "thp_fault_fallback_charge"), 500);
  EXPECT_THAT(t->title, HasSubstr("(2500 of 4500)"));
  // Nothing else is wrong with this machine.
  EXPECT_THAT(Ids(fs, Severity::kWarning), ::testing::UnorderedElementsAre("compaction_failing", "thp_fallback"));
}

TEST(DiagnoseTest, CountersBecomeDeltasWithAnEarlierSnapshot) {
  auto before = Load("compaction_thp");
  auto now = Load("compaction_thp");
  now->input.before = &before->snap;
  // Same counters at both ends: nothing happened in the interval.
  std::vector<Finding> fs = Diagnose(now->input);
  EXPECT_EQ(Find(fs, "compaction_failing"), nullptr);
  EXPECT_EQ(Find(fs, "thp_fallback"), nullptr);
  // 100 more stalls, 40 of them failed: 40% is below the warning line.
  now->snap.vmstat.values["compact_stall"] += 100;
  now->snap.vmstat.values["compact_fail"] += 40;
  fs = Diagnose(now->input);
  EXPECT_EQ(Find(fs, "compaction_failing"), nullptr);
  now->snap.vmstat.values["compact_fail"] += 30;
  fs = Diagnose(now->input);
  const Finding* c = Find(fs, "compaction_failing");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(Ev(*c, "compact_stall"), 100);
  EXPECT_DOUBLE_EQ(Ev(*c, "fail_ratio"), 0.7);
  EXPECT_EQ(c->evidence[0].where, "vmstat, increase over the interval");
}

TEST(DiagnoseTest, WatermarkBoostIsReported) {
  auto l = Load("boost");
  const std::vector<Finding> fs = Diagnose(l->input);
  const Finding* b = Find(fs, "watermark_boost");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->scope, "node 0 zone Normal");
  EXPECT_EQ(Ev(*b, "boost"), 5632);
  EXPECT_EQ(Ev(*b, "wmark_high"), 11275);
  EXPECT_EQ(Ev(*b, "watermark_boost_factor"), 15000);
  EXPECT_THAT(b->title, HasSubstr("22.0 MiB"));
  EXPECT_THAT(Ids(fs, Severity::kWarning), ::testing::ElementsAre("watermark_boost"));
}

TEST(DiagnoseTest, UnmovablePageblocksFarBeyondNeed) {
  auto l = Load("unmovable_spread");
  const std::vector<Finding> fs = Diagnose(l->input);
  const Finding* u = Find(fs, "unmovable_spread");
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->severity, Severity::kWarning);
  // DMA has 1 Unmovable block, Normal 700 (+40 Reclaimable).
  EXPECT_EQ(Ev(*u, "unmovable_pageblocks"), 701);
  EXPECT_EQ(Ev(*u, "reclaimable_pageblocks"), 40);
  // meminfo: SUnreclaim 23784 + SReclaimable 72084 + KernelStack 1532 +
  // PageTables 2420 + SecPageTables 0 + Percpu 688 kB = 100508 kB -> 50 blocks.
  EXPECT_EQ(Ev(*u, "pageblocks_needed"), 50);
  EXPECT_DOUBLE_EQ(Ev(*u, "nonmovable_memory"), 100508 / 1024.0);
  // The healthy capture: 51 + 40 blocks for the same need is not a finding.
  auto h = Load("healthy");
  const std::vector<Finding> healthy = Diagnose(h->input);
  EXPECT_EQ(Find(healthy, "unmovable_spread"), nullptr);
}

TEST(DiagnoseTest, UnreclaimableSlabAndItsGrowth) {
  auto l = Load("slab");
  std::vector<Finding> fs = Diagnose(l->input);
  const Finding* s = Find(fs, "slab_unreclaimable_large");
  ASSERT_NE(s, nullptr);
  EXPECT_NEAR(Ev(*s, "unreclaimable_share"), 3000000.0 / 24684084.0, 1e-12);
  EXPECT_NEAR(Ev(*s, "SUnreclaim"), 3000000 / 1024.0, 1e-9);
  EXPECT_EQ(Find(fs, "slab_growth"), nullptr);  // needs an interval
  auto before = Load("healthy");
  before->snap.monotonic_ns = 1'000'000'000;
  l->snap.monotonic_ns = 11'000'000'000;
  l->input.before = &before->snap;
  fs = Diagnose(l->input);
  const Finding* g = Find(fs, "slab_growth");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->severity, Severity::kWarning);
  EXPECT_NEAR(Ev(*g, "SUnreclaim_delta"), (3000000 - 23784) / 1024.0, 1e-9);
  EXPECT_EQ(Ev(*g, "SReclaimable_delta"), 0);
  EXPECT_EQ(Ev(*g, "interval"), 10);
}

TEST(DiagnoseTest, NumaImbalanceAndLowWatermark) {
  // The constructed 6.1 fixture has two nodes; make node 1 nearly full.
  snapshot::MachineSnapshot s = *snapshot::ReadMachineSnapshot(std::string(FRAGLAB_FIXTURE_DIR) + "/proc/6.1");
  DiagnoseInput in;
  in.now = &s;
  for (auto& z : s.zones) {
    if (z.nid == 1) z.free_pages = z.wmark_low - 1;
  }
  const std::vector<Finding> fs = Diagnose(in);
  const Finding* n = Find(fs, "numa_imbalance");
  ASSERT_NE(n, nullptr);
  EXPECT_THAT(n->title, HasSubstr("node 1 only"));
  const Finding* w = Find(fs, "below_low_watermark");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->scope, "node 1 zone Normal");
  EXPECT_EQ(w->severity, Severity::kWarning);
  EXPECT_EQ(Ev(*w, "free_pages"), Ev(*w, "wmark_low") - 1);
}

TEST(DiagnoseTest, TraceSummaryNamesPollutingPairs) {
  auto l = Load("healthy");
  tracker::TraceSummary t;
  t.first_ts_ns = 0;
  t.last_ts_ns = 30'000'000'000;
  // Unmovable (0) polluting Movable (1) 400 times, stealing 50; a claim.
  t.fallbacks[{FL_EXTFRAG_POLLUTE, 0, 1}] = 400;
  t.fallbacks[{FL_EXTFRAG_STEAL, 2, 1}] = 50;
  t.fallbacks[{FL_EXTFRAG_CLAIM, 0, 1}] = 3;
  t.fallbacks_by_class = {3, 50, 400};
  l->input.trace = &t;
  const std::vector<Finding> fs = Diagnose(l->input);
  const Finding* f = Find(fs, "fallbacks");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->severity, Severity::kWarning);
  EXPECT_EQ(Ev(*f, "nonmovable_into_movable"), 450);
  EXPECT_EQ(Ev(*f, "pollute Unmovable from Movable"), 400);
  EXPECT_EQ(Ev(*f, "steal Reclaimable from Movable"), 50);
  EXPECT_EQ(f->evidence[5].name, "pollute Unmovable from Movable");  // most frequent pair first
  EXPECT_THAT(f->title, HasSubstr("453 fallbacks in 30.0 s"));
  // Without a trace but with a reason: an info note.
  l->input.trace = nullptr;
  l->input.trace_note = "needs root";
  const std::vector<Finding> without = Diagnose(l->input);
  const Finding* note = Find(without, "no_trace");
  ASSERT_NE(note, nullptr);
  EXPECT_THAT(note->title, HasSubstr("needs root"));
}

TEST(DiagnoseTest, JsonCarriesEveryFinding) {
  auto l = Load("compaction_thp");
  const std::vector<Finding> fs = Diagnose(l->input);
  const nlohmann::json j = nlohmann::json::parse(FindingsJson(l->input, fs));
  EXPECT_EQ(j["kernel"], "6.18.44-fc-v669");
  EXPECT_EQ(j["worst_severity"], "critical");
  ASSERT_EQ(j["findings"].size(), fs.size());
  EXPECT_EQ(j["findings"][0]["id"], "thp_fallback");
  EXPECT_EQ(j["findings"][0]["severity"], "critical");
  bool found = false;
  for (const auto& f : j["findings"]) {
    if (f["id"] != "compaction_failing") continue;
    found = true;
    EXPECT_EQ(f["evidence"][0]["name"], "compact_stall");
    EXPECT_EQ(f["evidence"][0]["value"], 1000.0);
    EXPECT_FALSE(f["actions"].empty());
    EXPECT_FALSE(f["measure_after"].empty());
  }
  EXPECT_TRUE(found);
  const std::string text = FindingsText(l->input, fs);
  EXPECT_THAT(text, HasSubstr("[CRITICAL] "));
  EXPECT_THAT(text, HasSubstr("compact_stall"));
  EXPECT_THAT(text, HasSubstr("measure after:"));
}

TEST(DiagnoseTest, WithoutPagetypeinfoSaysSo) {
  auto l = Load("healthy");
  l->snap.pagetypeinfo_error = "permission denied";
  l->snap.zones[2].pageblocks.clear();
  const std::vector<Finding> fs = Diagnose(l->input);
  const Finding* f = Find(fs, "no_migratetype_data");
  ASSERT_NE(f, nullptr);
  EXPECT_THAT(f->title, HasSubstr("permission denied"));
  EXPECT_EQ(WorstSeverity(fs), Severity::kInfo);
}

}  // namespace
}  // namespace fraglab::diagnose
