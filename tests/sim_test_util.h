// Helpers shared by the simulator's tests: small one-zone machines as
// scenario text, parsing that fails the test on error, building a
// ScenarioSimulator, TOML phases that several tests repeat (scenario_sim_test,
// sim_kernel_model_test), and a page-cache owner for reclaim on hand-built
// allocators (sim_reclaim_test, sim_slowpath_test).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/event_sink.h"
#include "common/scenario.h"
#include "common/scenario_parser.h"
#include "sim/page_allocator.h"
#include "sim/page_user.h"
#include "sim/scenario_sim.h"

namespace fraglab::sim::testing {

// The head of a scenario for one Normal zone of `size`: one CPU, no per-CPU
// lists (frees reach the buddy at once), the CLAIM era, tiny watermarks
// (min_free_kbytes 128); `extra` (e.g. a [machine.thp] table) follows.
inline std::string OneZoneMachine(const std::string& name, uint64_t seed, const std::string& size,
                                  const std::string& extra = "") {
  return absl::StrCat("name = \"", name, "\"\nseed = ", seed, R"(
[machine]
cpus = 1
pcp = false
era = "CLAIM"
zones = [{ name = "Normal", size = ")",
                      size, R"(" }]
[machine.vm]
min_free_kbytes = 128
)",
                      extra);
}

// Parses scenario text as if read from `file` (messages name it); a parse
// error fails the calling test and gives an empty scenario.
inline scenario::Scenario ParseOrFail(const std::string& text, const std::string& file) {
  absl::StatusOr<scenario::Scenario> s = scenario::ParseScenarioString(text, file);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : scenario::Scenario{};
}

// A simulator of `s` writing to `sink` (may be null), with `seed` replacing
// the scenario's when given; null (and a test failure) when Create fails.
// `s` must outlive the simulator.
inline std::unique_ptr<ScenarioSimulator> MakeSimulator(const scenario::Scenario& s, EventSink* sink = nullptr,
                                                        std::optional<uint64_t> seed = std::nullopt) {
  ScenarioSimulator::Options o;
  o.sink = sink;
  o.seed = seed;
  absl::StatusOr<std::unique_ptr<ScenarioSimulator>> sim = ScenarioSimulator::Create(s, o);
  EXPECT_TRUE(sim.ok()) << sim.status();
  return sim.ok() ? std::move(*sim) : nullptr;
}

// Positions in `sink` of the phase begin markers, in order.
inline std::vector<size_t> PhaseBegins(const VectorSink& sink) {
  std::vector<size_t> out;
  for (size_t i = 0; i < sink.size(); ++i) {
    if (sink.at(i).kind == FL_EV_PHASE && sink.as<fl_phase>(i).begin) out.push_back(i);
  }
  return out;
}

// An expect phase: exactly `count` free blocks of `order` and `migratetype`
// in zone Normal.
inline std::string ExpectFreeBlocks(int order, const std::string& migratetype, int count) {
  return absl::StrCat(R"(
[[phases]]
op = "expect"
check = "free_blocks"
zone = "Normal"
order = )",
                      order, "\nmigratetype = \"", migratetype, "\"\ncount = ", count);
}

// Owns order-0 page-cache pages on a hand-built allocator: Reclaim frees the
// oldest first (each request is kept in `requests`), migrations are followed.
class FakeFileOwner final : public PageUser {
 public:
  explicit FakeFileOwner(PageAllocator* a) : a_(a) {}
  void Add(uint64_t pfn) { pages_.push_back(pfn); }
  void OnMigrated(uint64_t old_pfn, uint64_t new_pfn, int /*order*/) override {
    std::replace(pages_.begin(), pages_.end(), old_pfn, new_pfn);
  }
  uint64_t Reclaim(const ReclaimRequest& req) override {
    requests.push_back(req);
    uint64_t freed = 0;
    while (freed < req.nr_to_reclaim && !pages_.empty()) {
      EXPECT_TRUE(a_->Free(pages_.front(), 0).ok());
      pages_.pop_front();
      ++freed;
    }
    return freed;
  }
  size_t size() const { return pages_.size(); }
  std::vector<ReclaimRequest> requests;

 private:
  PageAllocator* a_;
  std::deque<uint64_t> pages_;
};

}  // namespace fraglab::sim::testing
