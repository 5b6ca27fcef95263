// Pure parts of the scenario runner: the declared peak the budget check uses,
// refusal of simulator-only phases, setting names to files, and the sink that
// counts fallbacks for the per-phase summary.
#include "gen/runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/scenario_parser.h"
#include "common/scenario_printer.h"

namespace fraglab::gen {
namespace {

using ::testing::HasSubstr;
constexpr uint64_t kMiB = 1ULL << 20;

scenario::Scenario Parse(const std::string& body) {
  auto s = scenario::ParseScenarioString("name = \"t\"\n" + body, "t.toml");
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : scenario::Scenario{};
}

// DeclaredPeakBytes of the scenario `body` under a `budget` of 4 GiB unless
// given; 0 and a test failure when it cannot be computed.
uint64_t PeakOf(const std::string& body, uint64_t budget = 4096 * kMiB) {
  absl::StatusOr<uint64_t> peak = DeclaredPeakBytes(Parse(body), budget);
  EXPECT_TRUE(peak.ok()) << peak.status();
  return peak.ok() ? *peak : 0;
}

// Anon region "a" of `size`, then every other page of it released with
// MADV_DONTNEED (which the peak does not credit).
std::string AnonWithEveryOtherPageReleased(const std::string& size) {
  return absl::StrCat(R"(
[[phases]]
op = "anon"
tag = "a"
size = ")",
                      size, R"("
[[phases]]
op = "release"
region = "a"
pattern = "every-nth"
n = 2)");
}

TEST(RunnerTest, DeclaredPeakCreditsWholeReleasesOnly) {
  const uint64_t peak = PeakOf(AnonWithEveryOtherPageReleased("512MiB") + R"(
[[phases]]
op = "pin"
kind = "pipe"
size = "64MiB"
tag = "p"
[[phases]]
op = "release"
region = "a"
pattern = "whole"
[[phases]]
op = "anon"
size = "256MiB"
[[phases]]
op = "probe"
kind = "hugetlb"
count = 100
)");
  // 512 + 64 held; the whole release returns 512; then 64 + 256 + 200 (probe).
  EXPECT_EQ(peak, 576 * kMiB);
  EXPECT_EQ(PeakOf(R"(
[[phases]]
op = "anon"
size = "256MiB"
[[phases]]
op = "probe"
kind = "hugetlb"
count = 256
)"),
            768 * kMiB);
}

TEST(RunnerTest, DeclaredPeakCreditsPageCacheDroppedByDropCaches) {
  const uint64_t peak = PeakOf(R"(
[[phases]]
op = "repeat"
count = 4
  [[phases.phases]]
  op = "pagecache"
  path = "/tmp"
  size = "512MiB"
  tag = "c"
  [[phases.phases]]
  op = "drop_caches"
  what = "pagecache"
[[phases]]
op = "release"
region = "c"
pattern = "whole"
[[phases]]
op = "pagecache"
path = "/tmp"
size = "256MiB"
[[phases]]
op = "drop_caches"
what = "slab"
[[phases]]
op = "pagecache"
path = "/tmp"
size = "256MiB"
)");
  EXPECT_EQ(peak, 512 * kMiB);  // dropping slab does not drop the page cache
}

TEST(RunnerTest, DeclaredPeakResolvesPercentOfBudgetAndRepeats) {
  EXPECT_EQ(PeakOf(R"(
[[phases]]
op = "repeat"
count = 3
  [[phases.phases]]
  op = "anon"
  size = "10%"
)",
                   1000 * kMiB),
            3 * (100 * kMiB / 4096 * 4096));
}

TEST(RunnerTest, SimulatorOnlyPhasesAreRefusedWithTheirLabel) {
  auto s = Parse(R"(
[[phases]]
op = "anon"
size = "16MiB"
[[phases]]
op = "alloc"
order = 3
count = 2
)");
  auto st = CheckGeneratorCanRun(s);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("t.toml:"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("phase 1:alloc"));
  EXPECT_TRUE(CheckGeneratorCanRun(Parse("[[phases]]\nop = \"compact\"\n")).ok());
}

TEST(RunnerTest, SettingPaths) {
  EXPECT_EQ(*SettingPath("vm.defrag_mode"), "/proc/sys/vm/defrag_mode");
  EXPECT_EQ(*SettingPath("thp.enabled"), "/sys/kernel/mm/transparent_hugepage/enabled");
  EXPECT_EQ(*SettingPath("thp.defrag"), "/sys/kernel/mm/transparent_hugepage/defrag");
  EXPECT_EQ(*SettingPath("thp.mthp.64KiB"),
            "/sys/kernel/mm/transparent_hugepage/hugepages-64kB/enabled");
  EXPECT_FALSE(SettingPath("kernel.panic").ok());
  EXPECT_FALSE(SettingPath("thp.mthp.3KiB").ok());
}

TEST(RunnerTest, RunSinkCountsFallbacksAndForwards) {
  VectorSink inner;
  RunSink sink(&inner);
  fl_extfrag e;
  InitRecord(e, FL_EV_EXTFRAG, 1, 0);
  e.alloc_migratetype = 0;
  e.fallback_migratetype = 1;
  e.extfrag_class = FL_EXTFRAG_STEAL;
  ASSERT_TRUE(sink.Emit(e.hdr).ok());
  e.extfrag_class = FL_EXTFRAG_POLLUTE;
  ASSERT_TRUE(sink.Emit(e.hdr).ok());
  fl_phase p;
  InitRecord(p, FL_EV_PHASE, 2, 0);
  ASSERT_TRUE(sink.Emit(p.hdr).ok());
  EXPECT_EQ(inner.size(), 3u);
  EXPECT_EQ(sink.records(), 3u);
  auto fb = sink.fallbacks();
  EXPECT_EQ(fb[FL_EXTFRAG_CLAIM], 0u);
  EXPECT_EQ(fb[FL_EXTFRAG_STEAL], 1u);
  EXPECT_EQ(fb[FL_EXTFRAG_POLLUTE], 1u);
  EXPECT_EQ(sink.fallback_pairs()[0 * 8 + 1], 2u);
}

TEST(RunnerTest, Order9Blocks) {
  BuddySummary b;
  b.free_blocks = {5, 0, 0, 0, 0, 0, 0, 0, 0, 3, 4};
  EXPECT_EQ(b.Order9Blocks(), 11u);
}

TEST(RunnerTest, DeclaredPeakCreditsPartialMunmapOncePerRegion) {
  // Two regions under one tag (a repeat); each is credited for its first
  // partial munmap: a stride of 32 KiB in 64 KiB gives half back.
  const uint64_t peak = PeakOf(R"(
[[phases]]
op = "repeat"
count = 2
  [[phases.phases]]
  op = "anon"
  tag = "a"
  size = "256MiB"
  [[phases.phases]]
  op = "release"
  region = "a"
  pattern = "stride"
  stride = "64KiB"
  length = "32KiB"
  method = "munmap"
[[phases]]
op = "pin"
kind = "pipe"
size = "64MiB"
)");
  // 256 -> 128 after the first release; 128 + 256 = 384 -> 256; + 64 = 320.
  EXPECT_EQ(peak, 384 * kMiB);
  // The same with MADV_DONTNEED: nothing credited (the ledger keeps it).
  EXPECT_EQ(PeakOf(AnonWithEveryOtherPageReleased("256MiB") + R"(
[[phases]]
op = "pin"
kind = "pipe"
size = "64MiB"
)"),
            320 * kMiB);
}

TEST(RunnerTest, ArenaParsesPrintsAndIsCheckedAgainstThePeak) {
  auto s = Parse(R"(
[budget]
memory = "2GiB"
arena = "75%"
[[phases]]
op = "anon"
size = "512MiB"
)");
  ASSERT_TRUE(s.budget.arena.has_value());
  const std::string printed = scenario::PrintScenario(s);
  EXPECT_THAT(printed, HasSubstr("arena = \"75%\""));
  auto again = scenario::ParseScenarioString(printed, "printed.toml");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(*again == s);

  char tmpl[] = "/tmp/fraglab-runner-test-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string meminfo = dir + "/meminfo";
  std::ofstream(meminfo) << "MemTotal: 25165824 kB\nMemFree: 20971520 kB\nMemAvailable: 20971520 kB\n";
  RunOptions ro;
  ro.watchdog.meminfo_path = meminfo;
  ro.watchdog.psi_path = dir + "/no-psi";
  // 75 % of 2 GiB = 1.5 GiB >= 512 MiB + 640 MiB margin.
  auto ok = DecideBudget(s, ro);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->arena_bytes, 1536 * kMiB);
  // An explicit arena below peak + margin is refused, saying the minimum.
  ro.arena_bytes = 1024 * kMiB;
  auto small = DecideBudget(s, ro);
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(small.status().message(), HasSubstr("must be at least 1.1 GiB"));
  std::remove(meminfo.c_str());
  ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace fraglab::gen
