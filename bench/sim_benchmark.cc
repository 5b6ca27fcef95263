// Speed and memory of the page-allocator model (sim/page_allocator.h).
// Targets (issue 3): order-0 alloc+free pairs on a 4 GiB zone with pcp off
// >= 30 M pairs/s; mixed orders 0-10, three types, under pressure with
// fallbacks >= 10 M ops/s; <= 16 bytes per simulated page, so a 1 TiB
// machine fits in 4 GiB. Issue 4: `fraglab sim` throughput in events per
// second (BM_SimShippedScenario: the kernel model and the allocator on a
// shipped scenario, every record counted).
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "common/event_sink.h"
#include "common/rng.h"
#include "common/scenario_parser.h"
#include "sim/config.h"
#include "sim/page_allocator.h"
#include "sim/scenario_sim.h"

namespace fraglab::sim {
namespace {

constexpr uint64_t kPages4GiB = uint64_t{1} << 20;

std::unique_ptr<PageAllocator> Make(uint64_t pages, bool pcp, EventSink* sink = nullptr) {
  MachineConfig c = SingleZoneMachine(pages);
  c.pcp = pcp;
  c.era = Era::kClaim;
  auto a = PageAllocator::Create(c, sink);
  if (!a.ok()) std::abort();
  return std::move(a).value();
}

// Counts extfrag records only (cheap), to show fallbacks happen.
class CountingSink final : public EventSink {
 public:
  absl::Status Emit(const fl_record_header& rec) override {
    if (rec.kind == FL_EV_EXTFRAG) ++extfrag;
    return absl::OkStatus();
  }
  uint64_t extfrag = 0;
};

// Steady state of a used machine: every page allocated at order 0, then
// every other page freed, so the order-0 lists are long and every free
// page's buddy is in use. Each pair allocates the head of the order-0 list
// and frees it again (no split, no merge): the allocator's own path cost.
void Order0Pairs(benchmark::State& state, bool pcp) {
  auto a = Make(kPages4GiB, pcp);
  const AllocRequest req{0, gfp::kHighuserMovable, 0, 0, OwnerKind::kAnon};
  for (uint64_t p = 0; p < kPages4GiB; ++p) {
    if (a->AllocateWithFlags(req, alloc::kNoWatermarks) == kNoPfn) std::abort();
  }
  for (uint64_t p = 0; p < kPages4GiB; p += 2) (void)a->Free(p, 0);
  for (auto _ : state) {
    uint64_t pfn = a->Allocate(req);
    benchmark::DoNotOptimize(pfn);
    (void)a->Free(pfn, 0);
  }
  state.counters["pairs_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_Order0AllocFreePairs_PcpOff(benchmark::State& state) { Order0Pairs(state, false); }
void BM_Order0AllocFreePairs_PcpOn(benchmark::State& state) { Order0Pairs(state, true); }
BENCHMARK(BM_Order0AllocFreePairs_PcpOff);
BENCHMARK(BM_Order0AllocFreePairs_PcpOn);

// Random churn: half the zone live in a scattered pattern; each iteration
// frees a random live page and allocates one (cache-miss bound: the page
// arrays of a 4 GiB zone are 10 MiB).
void BM_Order0RandomChurn_PcpOff(benchmark::State& state) {
  auto a = Make(kPages4GiB, false);
  Rng rng(1);
  std::vector<uint64_t> live;
  live.reserve(kPages4GiB);
  const AllocRequest req{0, gfp::kHighuserMovable, 0, 0, OwnerKind::kAnon};
  for (uint64_t p = 0; p < kPages4GiB / 2; ++p) live.push_back(a->Allocate(req));
  rng.Shuffle(live.begin(), live.end());
  size_t keep = live.size() / 2;
  for (size_t i = keep; i < live.size(); ++i) (void)a->Free(live[i], 0);
  live.resize(keep);
  std::vector<uint32_t> victims(1 << 16);
  for (auto& v : victims) v = static_cast<uint32_t>(rng.Next());
  size_t k = 0;
  for (auto _ : state) {
    size_t idx = victims[k++ & 0xffff] % live.size();
    (void)a->Free(live[idx], 0);
    live[idx] = a->Allocate(req);
  }
  state.counters["pairs_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Order0RandomChurn_PcpOff);

// The simplest pair: allocate and immediately free (one full split of an
// order-10 block and its full merge every time: the worst case).
void BM_Order0AllocFreeImmediate_PcpOff(benchmark::State& state) {
  auto a = Make(kPages4GiB, false);
  const AllocRequest req{0, gfp::kHighuserMovable, 0, 0, OwnerKind::kAnon};
  for (auto _ : state) {
    uint64_t pfn = a->Allocate(req);
    (void)a->Free(pfn, 0);
  }
  state.counters["pairs_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Order0AllocFreeImmediate_PcpOff);

// Mixed orders 0..10 (small ones far more likely), all three types, memory
// kept near its watermarks so that fallbacks keep happening.
void Mixed(benchmark::State& state, bool pcp) {
  const uint64_t pages = uint64_t{1} << 18;  // 1 GiB
  CountingSink sink;
  auto a = Make(pages, pcp, &sink);
  Rng rng(7);
  struct Live {
    uint64_t pfn;
    int order;
  };
  std::vector<Live> live;
  live.reserve(pages);
  // Precomputed request stream.
  static const int kWeights[11] = {600, 80, 60, 40, 10, 6, 4, 3, 2, 8, 2};
  std::vector<AllocRequest> reqs(1 << 16);
  const OwnerKind owners[3] = {OwnerKind::kKernel, OwnerKind::kAnon, OwnerKind::kSlabReclaimable};
  for (auto& r : reqs) {
    uint64_t w = rng.Uniform(815), acc = 0;
    int order = 0;
    for (int o = 0; o < 11; ++o) {
      acc += kWeights[o];
      if (w < acc) {
        order = o;
        break;
      }
    }
    auto t = static_cast<MigrateType>(rng.Uniform(3));
    r = {order, GfpForMigratetype(t), 0, 0, owners[t]};
  }
  std::vector<uint32_t> rnd(1 << 16);
  for (auto& v : rnd) v = static_cast<uint32_t>(rng.Next());
  const uint64_t target_free = pages / 16;  // keep ~6 % free: pressure
  size_t k = 0;
  uint64_t failures = 0;
  for (auto _ : state) {
    const uint64_t free_pages = a->zone_stats(0).free_pages;
    if (free_pages > target_free || live.empty() || (rnd[k & 0xffff] & 3) == 0) {
      const AllocRequest& r = reqs[k & 0xffff];
      uint64_t pfn = a->Allocate(r);
      if (pfn != kNoPfn) {
        live.push_back({pfn, r.order});
      } else {
        ++failures;
      }
    } else {
      size_t idx = rnd[k & 0xffff] % live.size();
      (void)a->Free(live[idx].pfn, live[idx].order);
      live[idx] = live.back();
      live.pop_back();
    }
    ++k;
  }
  state.counters["ops_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["extfrag"] = static_cast<double>(sink.extfrag);
  state.counters["alloc_failures"] = static_cast<double>(failures);
}
void BM_MixedOrdersUnderPressure_PcpOff(benchmark::State& state) { Mixed(state, false); }
void BM_MixedOrdersUnderPressure_PcpOn(benchmark::State& state) { Mixed(state, true); }
BENCHMARK(BM_MixedOrdersUnderPressure_PcpOff);
BENCHMARK(BM_MixedOrdersUnderPressure_PcpOn);

// A 1 TiB machine (268 M pages): simulator bytes per page, and driving it.
void BM_TerabyteMachine(benchmark::State& state) {
  MachineConfig c = StandardMachine(uint64_t{1} << 40, 4);
  c.era = Era::kClaim;
  auto created = PageAllocator::Create(c);
  if (!created.ok()) {
    state.SkipWithError(std::string(created.status().message()).c_str());
    return;
  }
  PageAllocator& a = **created;
  Rng rng(3);
  std::vector<std::pair<uint64_t, int>> live;
  size_t k = 0;
  for (auto _ : state) {
    if (live.size() < 100000 || (k & 1)) {
      int order = static_cast<int>(rng.Uniform(4));
      auto t = static_cast<MigrateType>(rng.Uniform(3));
      uint64_t pfn = a.Allocate({order, GfpForMigratetype(t), 0, static_cast<int>(k & 3), OwnerKind::kAnon});
      if (pfn != kNoPfn) live.push_back({pfn, order});
    } else {
      size_t idx = rng.Uniform(live.size());
      (void)a.Free(live[idx].first, live[idx].second, static_cast<int>(k & 3));
      live[idx] = live.back();
      live.pop_back();
    }
    ++k;
  }
  uint64_t pages = 0;
  for (int z = 0; z < a.num_zones(); ++z) pages += a.zone_stats(z).spanned;
  state.counters["simulated_pages"] = static_cast<double>(pages);
  state.counters["sim_bytes"] = static_cast<double>(a.MemoryBytes());
  state.counters["bytes_per_page"] = static_cast<double>(a.MemoryBytes()) / static_cast<double>(pages);
  state.counters["ops_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_TerabyteMachine)->Iterations(2000000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace fraglab::sim

namespace fraglab::sim {
namespace {

// `fraglab sim` without the file writer: a shipped scenario through the
// kernel model on its default machine; items = records emitted, so the
// reported rate is events per second.
class RecordCounter final : public EventSink {
 public:
  [[nodiscard]] absl::Status Emit(const fl_record_header& rec) override {
    (void)rec;
    ++records_;
    return absl::OkStatus();
  }
  uint64_t records() const { return records_; }

 private:
  uint64_t records_ = 0;
};

void BM_SimShippedScenario(benchmark::State& state, const char* name) {
  absl::StatusOr<scenario::Scenario> s =
      scenario::ParseScenarioFile(absl::StrCat(FRAGLAB_SOURCE_DIR, "/scenarios/", name, ".toml"));
  if (!s.ok()) {
    state.SkipWithError(std::string(s.status().message()).c_str());
    return;
  }
  uint64_t records = 0;
  for (auto _ : state) {
    RecordCounter sink;
    ScenarioSimulator::Options o;
    o.sink = &sink;
    auto sim = ScenarioSimulator::Create(*s, o);
    if (!sim.ok() || !(*sim)->Run().ok()) {
      state.SkipWithError("the scenario failed in the simulator");
      return;
    }
    records += sink.records();
  }
  state.SetItemsProcessed(static_cast<int64_t>(records));
  state.counters["records_per_run"] =
      static_cast<double>(records) / static_cast<double>(state.iterations());
}
BENCHMARK_CAPTURE(BM_SimShippedScenario, quick, "quick")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SimShippedScenario, unmovable_pinning, "unmovable-pinning")
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace fraglab::sim

BENCHMARK_MAIN();
