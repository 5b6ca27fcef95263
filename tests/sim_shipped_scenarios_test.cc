// Every shipped scenario (scenarios/*.toml and scenarios/teaching/*.toml)
// runs in the simulator to the end, and twice with the same seed gives
// byte-identical trace files. A scenario the simulator cannot run fully
// fails here; none is skipped. The scenarios run at their real sizes on the
// default 24 GiB machine (a few seconds each), so no scaling is needed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/scenario_parser.h"
#include "common/trace_file.h"
#include "sim/scenario_sim.h"

namespace fraglab::sim {
namespace {

namespace fs = std::filesystem;
namespace sc = scenario;

std::vector<std::string> ShippedScenarios() {
  std::vector<std::string> out;
  for (const char* dir : {"scenarios", "scenarios/teaching"}) {
    const fs::path d = fs::path(FRAGLAB_SOURCE_DIR) / dir;
    for (const auto& e : fs::directory_iterator(d)) {
      if (e.is_regular_file() && e.path().extension() == ".toml") {
        out.push_back(fs::relative(e.path(), FRAGLAB_SOURCE_DIR).string());
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Runs `s` into a trace file at `path`; returns the run's status.
absl::Status RunToFile(const sc::Scenario& s, const std::string& text, const std::string& path) {
  struct Late final : EventSink {
    EventSink* to = nullptr;
    absl::Status Emit(const fl_record_header& r) override { return to->Emit(r); }
  } late;
  ScenarioSimulator::Options o;
  o.sink = &late;
  absl::StatusOr<std::unique_ptr<ScenarioSimulator>> sim = ScenarioSimulator::Create(s, o);
  if (!sim.ok()) return sim.status();
  absl::StatusOr<std::unique_ptr<TraceWriter>> w =
      TraceWriter::Open(path, SimTraceHeader(s, (*sim)->allocator(), text, (*sim)->seed()));
  if (!w.ok()) return w.status();
  late.to = w->get();
  absl::Status st = (*sim)->Run();
  absl::Status closed = (*w)->Close();
  if (!st.ok()) return st;
  return closed;
}

bool SameBytes(const std::string& a, const std::string& b, uint64_t* size) {
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  std::vector<char> ba(1 << 20), bb(1 << 20);
  *size = 0;
  for (;;) {
    fa.read(ba.data(), static_cast<std::streamsize>(ba.size()));
    fb.read(bb.data(), static_cast<std::streamsize>(bb.size()));
    const std::streamsize na = fa.gcount(), nb = fb.gcount();
    if (na != nb || !std::equal(ba.begin(), ba.begin() + na, bb.begin())) return false;
    *size += static_cast<uint64_t>(na);
    if (na == 0) return true;
  }
}

class ShippedScenarioTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ShippedScenarioTest, RunsToTheEndTwiceWithByteIdenticalTraces) {
  const std::string file = (fs::path(FRAGLAB_SOURCE_DIR) / GetParam()).string();
  std::ifstream in(file);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  absl::StatusOr<sc::Scenario> s = sc::ParseScenarioFile(file);
  ASSERT_TRUE(s.ok()) << s.status();
  std::string base = GetParam();
  std::replace(base.begin(), base.end(), '/', '_');
  const std::string a = absl::StrCat(::testing::TempDir(), "/shipped_", base, "_a.fltrace");
  const std::string b = absl::StrCat(::testing::TempDir(), "/shipped_", base, "_b.fltrace");
  absl::Status ra = RunToFile(*s, text, a);
  absl::Status rb = RunToFile(*s, text, b);
  EXPECT_TRUE(ra.ok()) << GetParam() << ": " << ra;
  EXPECT_TRUE(rb.ok()) << GetParam() << ": " << rb;
  uint64_t size = 0;
  EXPECT_TRUE(SameBytes(a, b, &size)) << GetParam() << ": the two traces differ";
  EXPECT_GT(size, 1000u);
  std::remove(a.c_str());
  std::remove(b.c_str());
}

std::string Name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  for (char& c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return n;
}

INSTANTIATE_TEST_SUITE_P(Shipped, ShippedScenarioTest, ::testing::ValuesIn(ShippedScenarios()), Name);

TEST(ShippedScenarioSetTest, FindsTheGeneratorAndTeachingScenarios) {
  const std::vector<std::string> all = ShippedScenarios();
  EXPECT_NE(std::find(all.begin(), all.end(), "scenarios/quick.toml"), all.end());
  EXPECT_NE(std::find(all.begin(), all.end(), "scenarios/teaching/claim.toml"), all.end());
  EXPECT_GE(all.size(), 16u);
}

}  // namespace
}  // namespace fraglab::sim
