// ScenarioSimulator: phase markers and snapshots, raw alloc/free/expect,
// free patterns, preferred zones, error messages of failed expectations and
// of operations the simulator does not model, and determinism of the trace.
#include "sim/scenario_sim.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "common/scenario_parser.h"
#include "common/trace_file.h"
#include "tests/sim_test_util.h"

namespace fraglab::sim {
namespace {

using ::testing::HasSubstr;
using testing::ExpectFreeBlocks;
using testing::MakeSimulator;
namespace sc = scenario;

// A one-zone 16 MiB machine (8 pageblocks), one CPU, no pcp, tiny watermarks.
std::string Tiny() { return testing::OneZoneMachine("t", 7, "16MiB"); }

sc::Scenario Parse(const std::string& phases, const std::string& machine = Tiny()) {
  return testing::ParseOrFail(machine + phases, "t.toml");
}

// Eight order-9 movable requests, one per pageblock of Tiny().
constexpr const char* kEightOrder9Movable = R"(
[[phases]]
op = "alloc"
count = 8
order = 9
migratetype = "movable")";

TEST(ScenarioSimTest, PhaseMarkersWrapEachPhaseWithSnapshotsBeforeTheEnd) {
  sc::Scenario s = Parse(R"(
[[phases]]
op = "alloc"
count = 2
migratetype = "movable"
tag = "a"
[[phases]]
op = "snapshot"
)");
  VectorSink sink;
  auto sim = MakeSimulator(s, &sink);
  ASSERT_NE(sim, nullptr);
  ASSERT_TRUE(sim->Run().ok());
  std::vector<uint16_t> kinds;
  for (size_t i = 0; i < sink.size(); ++i) kinds.push_back(sink.at(i).kind);
  // Each allocation: zone_locked (the buddy list taken from) then page_alloc.
  const std::vector<uint16_t> want = {FL_EV_PHASE,       FL_EV_ZONE_LOCKED,   FL_EV_PAGE_ALLOC,
                                      FL_EV_ZONE_LOCKED, FL_EV_PAGE_ALLOC,    FL_EV_SNAPSHOT_ZONE,
                                      FL_EV_PHASE,       FL_EV_PHASE,         FL_EV_SNAPSHOT_ZONE,
                                      FL_EV_PHASE};
  EXPECT_EQ(kinds, want);
  const fl_phase b = sink.as<fl_phase>(0);
  EXPECT_EQ(b.begin, 1u);
  EXPECT_EQ(b.index, 0u);
  EXPECT_STREQ(b.label, "0:alloc");
  const fl_phase e = sink.as<fl_phase>(6);
  EXPECT_EQ(e.begin, 0u);
  // Logical time strictly increases across allocator calls and markers.
  for (size_t i = 1; i < sink.size(); ++i) EXPECT_GE(sink.at(i).ts_ns, sink.at(i - 1).ts_ns);
  EXPECT_LT(sink.at(2).ts_ns, sink.at(4).ts_ns);  // one tick per allocator call
  // Two order-0 movable allocations from a fresh zone: pfns 0 and 1 (§1.2).
  std::vector<TaggedBlock> a = sim->Tagged("a");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].pfn, 0u);
  EXPECT_EQ(a[1].pfn, 1u);
  EXPECT_TRUE(sim->done());
  EXPECT_EQ(sim->Step().code(), absl::StatusCode::kOutOfRange);
}

TEST(ScenarioSimTest, FreePatternsPickBlocksInAllocationOrder) {
  sc::Scenario s = Parse(R"(
[[phases]]
op = "alloc"
count = 10
migratetype = "unmovable"
tag = "a"
[[phases]]
op = "free"
tag = "a"
pattern = "every-nth"
n = 3
offset = 1
[[phases]]
op = "free"
tag = "a"
pattern = "first"
k = 2
[[phases]]
op = "free"
tag = "a"
pattern = "last"
k = 1
)");
  auto sim = MakeSimulator(s);
  ASSERT_NE(sim, nullptr);
  ASSERT_TRUE(sim->Step().ok());
  ASSERT_EQ(sim->Tagged("a").size(), 10u);
  ASSERT_TRUE(sim->Step().ok());  // frees indices 1, 4, 7
  std::vector<uint64_t> pfns;
  for (const TaggedBlock& b : sim->Tagged("a")) pfns.push_back(b.pfn);
  EXPECT_EQ(pfns, (std::vector<uint64_t>{0, 2, 3, 5, 6, 8, 9}));
  ASSERT_TRUE(sim->Step().ok());  // first 2: pfns 0, 2
  ASSERT_TRUE(sim->Step().ok());  // last 1: pfn 9
  pfns.clear();
  for (const TaggedBlock& b : sim->Tagged("a")) pfns.push_back(b.pfn);
  EXPECT_EQ(pfns, (std::vector<uint64_t>{3, 5, 6, 8}));
  EXPECT_TRUE(sim->allocator().CheckInvariants().ok());
}

TEST(ScenarioSimTest, RandomFreeTakesRoundedFractionAndDependsOnTheSeed) {
  sc::Scenario s = Parse(R"(
[[phases]]
op = "alloc"
count = 40
tag = "a"
[[phases]]
op = "free"
tag = "a"
pattern = "random"
fraction = 0.25
)");
  auto kept = [&](uint64_t seed) {
    auto sim = MakeSimulator(s, nullptr, seed);
    EXPECT_TRUE(sim->Run().ok());
    std::vector<uint64_t> pfns;
    for (const TaggedBlock& b : sim->Tagged("a")) pfns.push_back(b.pfn);
    return pfns;
  };
  EXPECT_EQ(kept(1).size(), 30u);
  EXPECT_EQ(kept(1), kept(1));
  EXPECT_NE(kept(1), kept(2));
}

TEST(ScenarioSimTest, FailedFreeBlocksExpectationSaysWhatTheSimulatorHas) {
  sc::Scenario s = Parse(R"(
[[phases]]
op = "alloc"
migratetype = "movable")" + ExpectFreeBlocks(10, "movable", 4));
  VectorSink sink;
  auto sim = MakeSimulator(s, &sink);
  absl::Status st = sim->Run();
  ASSERT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(st.message(), HasSubstr("phase 1:expect (t.toml:14)"));
  EXPECT_THAT(st.message(), HasSubstr("expected 4 free order-10 movable blocks in node 0 zone Normal"));
  EXPECT_THAT(st.message(), HasSubstr("the simulator has 3 (pfns 1024, 2048, 3072)"));
  EXPECT_THAT(st.message(), HasSubstr("per order 0..10: 1 1 1 1 1 1 1 1 1 1 3"));
  // The failing phase is still closed in the trace.
  EXPECT_EQ(sink.at(sink.size() - 1).kind, FL_EV_PHASE);
  EXPECT_EQ(sink.as<fl_phase>(sink.size() - 1).begin, 0u);
  EXPECT_EQ(sim->expectations_passed(), 0u);
}

TEST(ScenarioSimTest, FailedFallbackExpectationListsTheEventsSeen) {
  sc::Scenario s = Parse(kEightOrder9Movable + std::string(R"(
[[phases]]
op = "alloc"
migratetype = "unmovable"
[[phases]]
op = "expect"
check = "fallback"
class = "steal"
)"));
  auto sim = MakeSimulator(s);
  absl::Status st = sim->Run();
  // The eighth order-9 request fails its watermark (512 - 511 free pages is
  // not above low 40), so the unmovable request claims that last free
  // pageblock: one fallback event, of class claim, not steal.
  ASSERT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(st.message(), HasSubstr("expected at least 1 fallback event(s) with class steal"));
  EXPECT_THAT(st.message(), HasSubstr("the simulator has 0 matching of 1 fallback event(s): {pfn 3584 order 0<-9 "
                                      "Unmovable<-Movable change_ownership 1 claim}"));
}

TEST(ScenarioSimTest, FallbackWindowIsSharedByConsecutiveExpects) {
  sc::Scenario s = Parse(R"(
[[phases]]
op = "alloc"
migratetype = "unmovable"
[[phases]]
op = "expect"
check = "last_alloc"
pfn = 0
[[phases]]
op = "expect"
check = "fallback"
alloc_migratetype = "unmovable"
fallback_migratetype = "movable"
fallback_order = 10
class = "claim"
change_ownership = true
count = 1
[[phases]]
op = "alloc"
migratetype = "unmovable"
[[phases]]
op = "expect"
check = "fallback"
count = 0
[[phases]]
op = "expect"
check = "last_alloc"
pfn = 1
)");
  auto sim = MakeSimulator(s);
  absl::Status st = sim->Run();
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ(sim->expectations_passed(), 4u);
}

TEST(ScenarioSimTest, LastAllocFailedAndPageblocks) {
  sc::Scenario s = Parse(kEightOrder9Movable + std::string(R"(
[[phases]]
op = "alloc"
order = 9
migratetype = "movable"
[[phases]]
op = "expect"
check = "last_alloc"
failed = true
[[phases]]
op = "expect"
check = "pageblocks"
zone = "Normal"
migratetype = "unmovable"
count = 1
)"));
  auto sim = MakeSimulator(s);
  absl::Status st = sim->Run();
  ASSERT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(st.message(), HasSubstr("phase 3:expect"));
  EXPECT_THAT(st.message(), HasSubstr("expected 1 unmovable pageblocks"));
  EXPECT_THAT(st.message(), HasSubstr("the simulator has 0 (pageblocks by type: Unmovable 0, Movable 8"));
  EXPECT_EQ(sim->expectations_passed(), 1u);
}

TEST(ScenarioSimTest, HoldAdvancesTheClockAndKernelModelPhasesRunWithCounters) {
  sc::Scenario s = Parse(R"(
[[phases]]
op = "hold"
duration = "1s"
[[phases]]
op = "anon"
size = "1MiB"
)");
  VectorSink sink;
  auto sim = MakeSimulator(s, &sink);
  absl::Status st = sim->Run();
  ASSERT_TRUE(st.ok()) << st;
  // Phase 0: begin marker, counters, snapshot, counters, end marker; the
  // end marker carries the time after the 1 s hold.
  uint64_t end0 = 0;
  size_t counters = 0;
  for (size_t i = 0; i < sink.size(); ++i) {
    const fl_record_header& h = sink.at(i);
    if (h.kind == FL_EV_COUNTERS) ++counters;
    if (h.kind == FL_EV_PHASE && !sink.as<fl_phase>(i).begin && end0 == 0) end0 = h.ts_ns;
  }
  EXPECT_GE(end0, uint64_t{1000000000});
  EXPECT_EQ(counters, 4u);  // after each begin marker and before each end marker
  EXPECT_EQ(sim->model().AnonPages("").size(), 256u);
}

TEST(ScenarioSimTest, ReplacedMachineAndPrepareHook) {
  sc::Scenario s = Parse(R"(
[[phases]]
op = "alloc"
migratetype = "movable"
[[phases]]
op = "expect"
check = "last_alloc"
pfn = 1
)");
  ScenarioSimulator::Options o;
  o.machine = SingleZoneMachine(4096, 0, 1);
  o.machine->pcp = false;
  o.prepare = [](PageAllocator& a) { return a.AllocateAt(0, 0, OwnerKind::kKernel, kUnmovable); };
  absl::StatusOr<std::unique_ptr<ScenarioSimulator>> sim = ScenarioSimulator::Create(s, o);
  ASSERT_TRUE(sim.ok()) << sim.status();
  EXPECT_EQ((*sim)->allocator().zone_stats(0).spanned, 4096u);
  absl::Status st = (*sim)->Run();
  EXPECT_TRUE(st.ok()) << st;
  // A failing prepare stops Create with its own error.
  o.prepare = [](PageAllocator&) { return absl::DataLossError("bad start"); };
  EXPECT_EQ(ScenarioSimulator::Create(s, o).status().code(), absl::StatusCode::kDataLoss);
}

TEST(ScenarioSimTest, PreferredZoneDma32ReachesTheLowerZone) {
  const std::string machine = R"(name = "t"
[machine]
cpus = 1
pcp = false
zones = [{ name = "DMA32", start_pfn = 0, size = "16MiB" }, { name = "Normal", size = "16MiB" }]
[machine.vm]
min_free_kbytes = 128
)";
  sc::Scenario s = Parse(R"(
[[phases]]
op = "alloc"
migratetype = "movable"
[[phases]]
op = "expect"
check = "last_alloc"
pfn = 4096
[[phases]]
op = "alloc"
migratetype = "movable"
zone = "DMA32"
[[phases]]
op = "expect"
check = "last_alloc"
pfn = 0
)",
                         machine);
  auto sim = MakeSimulator(s);
  absl::Status st = sim->Run();
  EXPECT_TRUE(st.ok()) << st;
}

std::string RunToFile(const sc::Scenario& s, const std::string& path, uint64_t seed) {
  ScenarioSimulator::Options o;
  o.seed = seed;
  struct Late final : EventSink {
    EventSink* to = nullptr;
    absl::Status Emit(const fl_record_header& r) override { return to->Emit(r); }
  } late;
  o.sink = &late;
  auto sim = ScenarioSimulator::Create(s, o);
  EXPECT_TRUE(sim.ok());
  auto w = TraceWriter::Open(path, SimTraceHeader(s, (*sim)->allocator(), "text", seed));
  EXPECT_TRUE(w.ok()) << w.status();
  late.to = w->get();
  EXPECT_TRUE((*sim)->Run().ok());
  EXPECT_TRUE((*w)->Close().ok());
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  std::remove(path.c_str());
  return ss.str();
}

TEST(ScenarioSimTest, SameScenarioAndSeedGiveByteIdenticalTraces) {
  sc::Scenario s = Parse(R"(
[[phases]]
op = "alloc"
count = 300
tag = "a"
[[phases]]
op = "alloc"
count = 50
order = 2
migratetype = "movable"
tag = "b"
[[phases]]
op = "free"
tag = "a"
pattern = "random"
fraction = 0.5
[[phases]]
op = "free"
tag = "b"
pattern = "random"
fraction = 0.7
)");
  const std::string dir = ::testing::TempDir();
  const std::string a = RunToFile(s, dir + "/det_a.fltrace", 11);
  const std::string b = RunToFile(s, dir + "/det_b.fltrace", 11);
  const std::string c = RunToFile(s, dir + "/det_c.fltrace", 12);
  ASSERT_GT(a.size(), 100u);
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a == c);
}

TEST(ScenarioSimTest, TraceHeaderIsDeterministicAndDescribesTheMachine) {
  sc::Scenario s = Parse(R"(
[[phases]]
op = "snapshot"
)");
  auto sim = MakeSimulator(s);
  TraceHeader h = SimTraceHeader(s, sim->allocator(), "x", 5);
  EXPECT_TRUE(h.simulated);
  EXPECT_EQ(h.created_unix_s, 0u);
  EXPECT_EQ(h.kernel_era, "CLAIM");
  ASSERT_EQ(h.zones.size(), 1u);
  EXPECT_EQ(h.zones[0].name, "Normal");
  EXPECT_EQ(h.zones[0].spanned, 4096u);
  EXPECT_EQ(h.migratetype_names,
            (std::vector<std::string>{"Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"}));
  EXPECT_EQ(h.seed, 5u);
  EXPECT_EQ(h.scenario_name, "t");
}

}  // namespace
}  // namespace fraglab::sim
