// Runs every scenarios/teaching/*.toml on the simulator and requires each to
// finish with all its `expect` phases passing (each file demonstrates one
// allocator behaviour; its comment derives the expected values from the
// reference). Also checks that the generator refuses them, naming the phase.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "common/scenario_parser.h"
#include "gen/runner.h"
#include "sim/scenario_sim.h"

namespace fraglab {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::vector<std::string> TeachingFiles() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(fs::path(FRAGLAB_SOURCE_DIR) / "scenarios" / "teaching")) {
    if (e.path().extension() == ".toml") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class TeachingScenarioTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TeachingScenarioTest, AllExpectationsPass) {
  absl::StatusOr<scenario::Scenario> s = scenario::ParseScenarioFile(GetParam());
  ASSERT_TRUE(s.ok()) << s.status();
  uint64_t expects = 0;
  for (const scenario::ExpandedPhase& e : scenario::Expand(*s)) {
    expects += std::holds_alternative<scenario::ExpectOp>(e.phase->op) ? 1 : 0;
  }
  ASSERT_GT(expects, 0u) << GetParam() << " demonstrates nothing without expect phases";
  absl::StatusOr<std::unique_ptr<sim::ScenarioSimulator>> sim = sim::ScenarioSimulator::Create(*s, {});
  ASSERT_TRUE(sim.ok()) << sim.status();
  absl::Status st = (*sim)->Run();
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ((*sim)->expectations_passed(), expects);
  EXPECT_TRUE((*sim)->allocator().CheckInvariants().ok()) << (*sim)->allocator().CheckInvariants();
}

TEST_P(TeachingScenarioTest, GeneratorRefusesNamingThePhase) {
  absl::StatusOr<scenario::Scenario> s = scenario::ParseScenarioFile(GetParam());
  ASSERT_TRUE(s.ok()) << s.status();
  absl::Status st = gen::CheckGeneratorCanRun(*s);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("phase 0:"));
  EXPECT_THAT(st.message(), HasSubstr("only the simulator can perform"));
}

INSTANTIATE_TEST_SUITE_P(Teaching, TeachingScenarioTest, ::testing::ValuesIn(TeachingFiles()),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           std::string n = fs::path(param_info.param).stem().string();
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

TEST(TeachingScenarios, TheSetIsComplete) {
  std::vector<std::string> names;
  for (const std::string& f : TeachingFiles()) names.push_back(fs::path(f).stem().string());
  for (const char* want : {"split", "merge", "claim", "steal_legacy", "steal_claim", "claim_threshold",
                           "boost", "nofragment", "pcp_refill", "compaction"}) {
    EXPECT_THAT(names, ::testing::Contains(want)) << "scenarios/teaching/" << want << ".toml is missing";
  }
}

}  // namespace
}  // namespace fraglab
