// validate's pieces that need no kernel: tolerances (defaults, --tolerance
// specs, TOML files), metric classes, the kernel-vs-simulator comparison on
// hand-made metrics (mean, spread, missing events, one-sided metrics), the
// simulator side on a teaching scenario, and the simulator-only run.
#include "analysis/validate.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "analysis/metrics.h"
#include "common/event_sink.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fraglab::analysis {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(ToleranceTest, DefaultsSpecsAndErrors) {
  ToleranceSet t;
  EXPECT_DOUBLE_EQ(t.Get("free_blocks_high").abs, 2);
  EXPECT_DOUBLE_EQ(t.Get("free_blocks_high").rel, 0.10);
  ASSERT_TRUE(ParseToleranceSpec("fallbacks=10,25%", t).ok());
  EXPECT_DOUBLE_EQ(t.Get("fallbacks").abs, 10);
  EXPECT_DOUBLE_EQ(t.Get("fallbacks").rel, 0.25);
  ASSERT_TRUE(ParseToleranceSpec("pageblocks=3", t).ok());
  EXPECT_DOUBLE_EQ(t.Get("pageblocks").abs, 3);
  EXPECT_DOUBLE_EQ(t.Get("pageblocks").rel, 0.05);  // unchanged
  ASSERT_TRUE(ParseToleranceSpec("probe=0,0.2", t).ok());
  EXPECT_DOUBLE_EQ(t.Get("probe").rel, 0.2);
  absl::Status st = ParseToleranceSpec("nonsense=1", t);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("unknown tolerance class 'nonsense'"));
  EXPECT_THAT(ParseToleranceSpec("fallbacks", t).message(), HasSubstr("no CLASS="));
  EXPECT_THAT(ParseToleranceSpec("fallbacks=x", t).message(), HasSubstr("'x' is not a number"));
  EXPECT_THAT(ParseToleranceSpec("fallbacks=-1", t).message(), HasSubstr("must not be negative"));
}

TEST(ToleranceTest, FileSetsClassesAndNamesTheLineOfAnError) {
  char tmpl[] = "/tmp/fraglab-validate-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::ofstream(dir + "/ok.toml") << "[free_blocks_high]\nabs = 4\nrel = 0.2\n\n[fallbacks]\nrel = 1.0\n";
  ToleranceSet t;
  ASSERT_TRUE(LoadToleranceFile(dir + "/ok.toml", t).ok());
  EXPECT_DOUBLE_EQ(t.Get("free_blocks_high").abs, 4);
  EXPECT_DOUBLE_EQ(t.Get("free_blocks_high").rel, 0.2);
  EXPECT_DOUBLE_EQ(t.Get("fallbacks").abs, 5);  // default kept
  EXPECT_DOUBLE_EQ(t.Get("fallbacks").rel, 1.0);
  std::ofstream(dir + "/bad.toml") << "[fallbacks]\nabs = 1\nslack = 2\n";
  absl::Status st = LoadToleranceFile(dir + "/bad.toml", t);
  EXPECT_THAT(st.message(), HasSubstr("bad.toml:3: unknown key fallbacks.slack"));
  std::ofstream(dir + "/cls.toml") << "[fallbacks]\nabs = 1\n[typo]\nabs = 1\n";
  EXPECT_THAT(LoadToleranceFile(dir + "/cls.toml", t).message(), HasSubstr("unknown tolerance class 'typo'"));
  std::ofstream(dir + "/syntax.toml") << "[fallbacks\n";
  EXPECT_THAT(LoadToleranceFile(dir + "/syntax.toml", t).message(), HasSubstr("syntax.toml:1"));
  fs::remove_all(dir);
}

TEST(ClassOfMetricTest, MapsFlatNames) {
  EXPECT_EQ(ClassOfMetric("2:fill/free_blocks/node0_Normal/order3"), "free_blocks");
  EXPECT_EQ(ClassOfMetric("2:fill/free_blocks/node0_Normal/order9"), "free_blocks_high");
  EXPECT_EQ(ClassOfMetric("2:fill/free_blocks/node0_Normal/order10"), "free_blocks_high");
  EXPECT_EQ(ClassOfMetric("2:fill/free_blocks/node0_Normal/order8", 8), "free_blocks_high");
  EXPECT_EQ(ClassOfMetric("start/free_pageblocks_order9plus/node0_Normal"), "free_blocks_high");
  EXPECT_EQ(ClassOfMetric("start/pageblocks/node0_Normal/Movable"), "pageblocks");
  EXPECT_EQ(ClassOfMetric("1:x/fallbacks/steal/Unmovable->Movable"), "fallbacks");
  EXPECT_EQ(ClassOfMetric("1:x/compaction/order9/direct_attempts"), "compaction");
  EXPECT_EQ(ClassOfMetric("1:x/probe/thp/order9/obtained_fraction"), "probe");
  EXPECT_EQ(ClassOfMetric("1:x/probe/thp/order9/obtained"), "");
  EXPECT_EQ(ClassOfMetric("trace/drops"), "");
}

TraceHeader Header(bool simulated) {
  TraceHeader h;
  h.simulated = simulated;
  h.zones = {{0, 2, "Normal", 0, 262144, 262144, 260000}};
  h.migratetype_names = {"Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"};
  return h;
}

// One phase `label` with a zone snapshot (order-9 blocks, Movable
// pageblocks) and `steals` steal fallbacks Unmovable<-Movable.
TraceMetrics Metrics(bool simulated, uint64_t order9, uint32_t movable_blocks, int steals,
                     const char* label = "0:fill") {
  MetricsBuilder b(Header(simulated));
  fl_phase ph;
  InitRecord(ph, FL_EV_PHASE, 1, 0);
  ph.index = 0;
  ph.begin = 1;
  std::strcpy(ph.label, label);
  EXPECT_TRUE(b.Emit(ph.hdr).ok());
  for (int i = 0; i < steals; ++i) {
    fl_extfrag e;
    InitRecord(e, FL_EV_EXTFRAG, 2, 0);
    e.alloc_migratetype = 0;
    e.fallback_migratetype = 1;
    e.extfrag_class = FL_EXTFRAG_STEAL;
    EXPECT_TRUE(b.Emit(e.hdr).ok());
  }
  fl_snapshot_zone z;
  InitRecord(z, FL_EV_SNAPSHOT_ZONE, 3, 0);
  z.zone_idx = 2;
  z.nr_free[9] = order9;
  z.nr_free_pages = order9 << 9;
  z.pageblocks[1] = movable_blocks;
  EXPECT_TRUE(b.Emit(z.hdr).ok());
  ph.hdr.ts_ns = 4;
  ph.begin = 0;
  EXPECT_TRUE(b.Emit(ph.hdr).ok());
  return b.Finish();
}

const ValidateRow* Find(const ValidateComparison& c, const std::string& metric) {
  for (const ValidateRow& r : c.rows) {
    if (r.metric == metric) return &r;
  }
  return nullptr;
}

TEST(CompareKernelAndSimTest, WithinToleranceAgreesOutsideDisagrees) {
  ToleranceSet tol;
  // Order 9: kernel 100, sim 108 -> allowed max(2, 10) = 10: agree.
  // Movable pageblocks: kernel 500, sim 450 -> allowed max(2, 25): disagree.
  // Steals: kernel 10, sim 12 -> allowed max(5, 5): agree.
  const ValidateComparison c =
      CompareKernelAndSim({Metrics(false, 100, 500, 10)}, Metrics(true, 108, 450, 12), tol);
  const ValidateRow* o9 = Find(c, "free_blocks/node0_Normal/order9");
  ASSERT_NE(o9, nullptr);
  EXPECT_EQ(o9->phase, "0:fill");
  EXPECT_TRUE(o9->high_order);
  EXPECT_TRUE(o9->compared);
  EXPECT_DOUBLE_EQ(o9->diff, 8);
  EXPECT_DOUBLE_EQ(o9->allowed, 10);
  EXPECT_TRUE(o9->agree);
  const ValidateRow* pb = Find(c, "pageblocks/node0_Normal/Movable");
  ASSERT_NE(pb, nullptr);
  EXPECT_FALSE(pb->agree);
  EXPECT_DOUBLE_EQ(pb->diff, -50);
  const ValidateRow* st = Find(c, "fallbacks/steal/Unmovable->Movable");
  ASSERT_NE(st, nullptr);
  EXPECT_TRUE(st->agree);
  // Loosening the pageblock tolerance turns the verdict.
  // (Free pages: 51200 vs 55296 is outside max(1024, 5%) as well.)
  const ValidateRow* fp = Find(c, "free_pages/node0_Normal");
  ASSERT_NE(fp, nullptr);
  EXPECT_FALSE(fp->agree);
  EXPECT_EQ(c.disagreeing, 2u);
  ASSERT_TRUE(ParseToleranceSpec("pageblocks=60", tol).ok());
  ASSERT_TRUE(ParseToleranceSpec("free_pages=0,10%", tol).ok());
  const ValidateComparison c2 =
      CompareKernelAndSim({Metrics(false, 100, 500, 10)}, Metrics(true, 108, 450, 12), tol);
  EXPECT_EQ(c2.disagreeing, 0u);
  EXPECT_GT(c2.agreeing, 0u);
}

// Phases inside a `repeat` are labelled "2:pin[rep 1/3]": the '/' must not
// cut the flat name, or the whole phase drops out of the comparison.
TEST(CompareKernelAndSimTest, PhasesWithASlashInTheirLabelAreCompared) {
  const ValidateComparison c = CompareKernelAndSim({Metrics(false, 100, 500, 10, "0:pin[rep 1/3]")},
                                                   Metrics(true, 100, 500, 10, "0:pin[rep 1/3]"), ToleranceSet());
  const ValidateRow* o9 = Find(c, "free_blocks/node0_Normal/order9");
  ASSERT_NE(o9, nullptr);
  EXPECT_EQ(o9->phase, "0:pin[rep 1 of 3]");
  EXPECT_TRUE(o9->compared);
  EXPECT_TRUE(o9->agree);
  const ValidateRow* st = Find(c, "fallbacks/steal/Unmovable->Movable");
  ASSERT_NE(st, nullptr);
  EXPECT_TRUE(st->compared);
  EXPECT_EQ(c.disagreeing, 0u);
}

TEST(CompareKernelAndSimTest, RepeatsGiveMeanAndSpreadAndMissingEventsAreZero) {
  ToleranceSet tol;
  ASSERT_TRUE(ParseToleranceSpec("free_blocks_high=0,0%", tol).ok());
  ASSERT_TRUE(ParseToleranceSpec("fallbacks=0,0%", tol).ok());
  // Kernel runs with 90 and 110 order-9 blocks; sim 105: not the mean (100),
  // but inside the runs' spread, so it agrees even with zero tolerance.
  // Steals: the sim has none (no record at all) -> 0 vs mean 2: disagree.
  const ValidateComparison c = CompareKernelAndSim(
      {Metrics(false, 90, 500, 1), Metrics(false, 110, 500, 3)}, Metrics(true, 105, 500, 0), tol);
  const ValidateRow* o9 = Find(c, "free_blocks/node0_Normal/order9");
  ASSERT_NE(o9, nullptr);
  EXPECT_EQ(o9->kernel_runs, 2u);
  EXPECT_DOUBLE_EQ(*o9->kernel_mean, 100);
  EXPECT_DOUBLE_EQ(o9->kernel_min, 90);
  EXPECT_DOUBLE_EQ(o9->kernel_max, 110);
  EXPECT_TRUE(o9->agree);
  const ValidateRow* st = Find(c, "fallbacks/steal/Unmovable->Movable");
  ASSERT_NE(st, nullptr);
  ASSERT_TRUE(st->sim.has_value());
  EXPECT_DOUBLE_EQ(*st->sim, 0);
  EXPECT_FALSE(st->agree);
  // Without tracker events on the kernel side, event counts are not judged.
  const ValidateComparison c2 =
      CompareKernelAndSim({Metrics(false, 100, 500, 0)}, Metrics(true, 100, 500, 4), tol, false, true);
  const ValidateRow* st2 = Find(c2, "fallbacks/steal/Unmovable->Movable");
  ASSERT_NE(st2, nullptr);
  EXPECT_FALSE(st2->compared);
  EXPECT_FALSE(st2->kernel_mean.has_value());
}

TEST(CompareKernelAndSimTest, PreparationEventsBeforeTheFirstPhaseAreNotJudged) {
  // The kernel run's "start" pseudo-phase holds a compaction (its
  // preparation); the simulator has none there. Only phase metrics count.
  MetricsBuilder b(Header(false));
  fl_compact_begin_end end;
  InitRecord(end, FL_EV_COMPACT_END, 1, 0);
  end.status = 5;
  ASSERT_TRUE(b.Emit(end.hdr).ok());
  TraceMetrics kernel = b.Finish();
  const TraceMetrics with_phase = Metrics(false, 100, 500, 0);
  kernel.phases.insert(kernel.phases.end(), with_phase.phases.begin() + 1, with_phase.phases.end());
  ToleranceSet tol;
  ASSERT_TRUE(ParseToleranceSpec("compaction=0,0%", tol).ok());
  const ValidateComparison c = CompareKernelAndSim({kernel}, Metrics(true, 100, 500, 0), tol);
  for (const ValidateRow& r : c.rows) {
    EXPECT_FALSE(r.phase == "start" && r.cls == "compaction") << r.metric;
  }
  EXPECT_EQ(c.disagreeing, 0u);
  EXPECT_GT(c.agreeing, 0u);
}

TEST(ValidateTest, SimulatorOnlyRunWritesTheTraceAndSaysWhy) {
  char tmpl[] = "/tmp/fraglab-validate-run-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ValidateOptions opt;
  opt.scenario = std::string(FRAGLAB_SOURCE_DIR) + "/scenarios/teaching/claim.toml";
  opt.out_dir = dir + "/out";
  opt.sim_only = true;
  opt.progress = false;
  absl::StatusOr<ValidateResult> r = Validate(opt);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->kernel_ran);
  EXPECT_EQ(r->kernel_skipped, "--sim-only given");
  EXPECT_TRUE(r->ok) << r->sim.stopped;
  EXPECT_TRUE(fs::exists(dir + "/out/sim.fltrace"));
  const std::string text = FormatValidateText(*r, opt.tolerances, false);
  EXPECT_THAT(text, HasSubstr("NOTE: simulator only, no kernel comparison: --sim-only given"));
  EXPECT_THAT(text, HasSubstr("verdict: none (simulator only): the simulation ran"));
  absl::StatusOr<TraceMetrics> m = ComputeTraceMetrics(dir + "/out/sim.fltrace");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_GT(m->phases.size(), 1u);
  fs::remove_all(dir);
}

TEST(ValidateTest, BadInputIsAnError) {
  ValidateOptions opt;
  opt.scenario = "/nonexistent/scenario.toml";
  opt.sim_only = true;
  EXPECT_FALSE(Validate(opt).ok());
  opt.scenario = std::string(FRAGLAB_SOURCE_DIR) + "/scenarios/teaching/claim.toml";
  opt.repeat = 0;
  EXPECT_EQ(Validate(opt).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fraglab::analysis
