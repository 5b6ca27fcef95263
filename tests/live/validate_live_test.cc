// `fraglab validate` end to end on this machine: as root with BPF, a small
// kernel scenario runs on the kernel and in the simulator started from the
// kernel run's start state; the output has the per-phase table, the noise
// line and a verdict that matches the exit code; both traces and the report
// are written; a tolerance wide enough for everything makes it agree (the
// disagreeing direction is covered by validate_test on fixed metrics).
// Without root, the simulator-only path is checked instead.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "bpf/tracker.h"
#include "common/scenario_parser.h"
#include "gen/runner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/live/live_test_util.h"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using Result = fraglab::testing::CommandResult;

// Runs fraglab with fixed arguments; stdout only (progress goes to stderr).
Result Fraglab(const std::string& args) {
  return fraglab::testing::RunFraglab(args, fraglab::testing::Stderr::kDropped);
}

class ValidateLiveTest : public fraglab::testing::TempDirTest {
 protected:
  ValidateLiveTest() : TempDirTest("fraglab-validate-live") {}
  void SetUp() override {
    TempDirTest::SetUp();
    if (HasFatalFailure()) return;
    // A small kernel scenario: 256 MiB of anon memory, half released, a probe.
    std::ofstream(dir_ + "/small.toml") << R"(name = "validate-live"
seed = 1

[budget]
memory = "512MiB"
max_duration = "2m"

[[phases]]
op = "anon"
tag = "fill"
size = "256MiB"

[[phases]]
op = "release"
region = "fill"
pattern = "stride"
stride = "64KiB"
length = "32KiB"
method = "munmap"

[[phases]]
op = "probe"
kind = "thp"
count = 4
)";
  }
};

TEST_F(ValidateLiveTest, KernelAndSimulatorSideBySide) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (the generator and the BPF tracker)";
  if (absl::Status st = fraglab::tracker::CheckPrerequisites(); !st.ok()) {
    GTEST_SKIP() << "BPF tracker unavailable: " << st.message();
  }
  const std::string scenario = dir_ + "/small.toml";
  // Scenario check first: if the format differs the test says so plainly.
  Result check = Fraglab("scenario check " + scenario);
  ASSERT_EQ(check.exit_code, 0) << "test scenario rejected: " << check.out;
  // The generator refuses a budget the machine cannot give right now (other
  // processes hold the memory): that is the machine's state, not a failure.
  absl::StatusOr<fraglab::scenario::Scenario> sc = fraglab::scenario::ParseScenarioFile(scenario);
  ASSERT_TRUE(sc.ok()) << sc.status();
  if (auto budget = fraglab::gen::DecideBudget(*sc, {}); !budget.ok()) {
    GTEST_SKIP() << "this machine cannot give the 512 MiB test budget now: " << budget.status().message();
  }

  Result r = Fraglab("validate -q --noise-window 1 -o " + dir_ + "/out --report " + dir_ + "/report " + scenario);
  ASSERT_TRUE(r.exit_code == 0 || r.exit_code == 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("simulator: era "));
  EXPECT_THAT(r.out, HasSubstr("started from the kernel run's start state"));
  EXPECT_THAT(r.out, HasSubstr("kernel run 1: " + dir_ + "/out/kernel-1.fltrace (tracker attached)"));
  EXPECT_THAT(r.out, HasSubstr("kernel noise before run 1: 1.0 s idle: free pages"));
  EXPECT_THAT(r.out, HasSubstr("phase 0:anon"));
  EXPECT_THAT(r.out, HasSubstr("free_blocks/node0_Normal/order9 *"));
  EXPECT_THAT(r.out, HasSubstr(r.exit_code == 0 ? ": AGREE\n" : ": DISAGREE\n"));
  EXPECT_TRUE(fs::exists(dir_ + "/out/kernel-1.fltrace"));
  EXPECT_TRUE(fs::exists(dir_ + "/out/sim.fltrace"));
  EXPECT_TRUE(fs::exists(dir_ + "/report/index.html"));
  EXPECT_TRUE(fs::exists(dir_ + "/report/plots/kernel_vs_sim.png"));

  // Tolerances wide enough for anything: every compared metric agrees, exit 0.
  Result wide = Fraglab("validate -q --json --noise-window 0 -o " + dir_ + "/out2 " +
                        "--tolerance free_blocks=1e12 --tolerance free_blocks_high=1e12 --tolerance free_pages=1e12 "
                        "--tolerance pageblocks=1e12 --tolerance fallbacks=1e12 --tolerance compaction=1e12 "
                        "--tolerance probe=1 " + scenario);
  ASSERT_EQ(wide.exit_code, 0) << wide.out;
  nlohmann::json j = nlohmann::json::parse(wide.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << wide.out;
  EXPECT_TRUE(j["ok"].get<bool>());
  EXPECT_TRUE(j["kernel_ran"].get<bool>());
  EXPECT_GT(j["compared"].get<int>(), 10);
  EXPECT_EQ(j["disagreeing"].get<int>(), 0);
}

TEST_F(ValidateLiveTest, SimulatorOnlyWithANote) {
  Result r = Fraglab("validate --sim-only -o " + dir_ + "/out " + dir_ + "/small.toml");
  EXPECT_THAT(r.out, HasSubstr("NOTE: simulator only, no kernel comparison: --sim-only given"));
  EXPECT_THAT(r.out, HasSubstr("verdict: none (simulator only)"));
  EXPECT_TRUE(fs::exists(dir_ + "/out/sim.fltrace"));
  EXPECT_EQ(r.exit_code, r.out.find("the simulation ran") != std::string::npos ? 0 : 1) << r.out;
}

}  // namespace
