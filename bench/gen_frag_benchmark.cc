// Generator numbers on this machine (root; real memory, so these are not run
// by the test suite):
//  BM_FragmentToTarget/<strategy>: time to take the machine from a prepared
//    start to a fragmentation target (order-9 free blocks < 5 % of the
//    start's, while at least 40 % of memory stays free), in 256 MiB steps:
//    strategy 0 faults base pages and releases every other page; strategy 1
//    faults THPs (each takes one free 2 MiB block) and unmaps all but one
//    4 KiB page per 2 MiB, so each step removes 128 order-9 blocks while the
//    run holds only 512 KiB. Reported per GiB faulted and per GiB held.
//    Stops at the budget (FRAGLAB_BENCH_BUDGET, default 2GiB) and reports
//    reached=0 when the target was not reached within it.
//  BM_ScenarioRepeatability/<name>: runs a scenario 5 times (fraglab run
//    without the tracker) and reports the coefficient of variation of the
//    key metrics: order>=9 free blocks at the end, hugetlb and THP probe
//    results, and the run time. Scenarios: FRAGLAB_BENCH_SCENARIOS
//    (comma-separated names in scenarios/, default "quick").
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/scenario_parser.h"
#include "common/snapshot_machine.h"
#include "common/units.h"
#include "gen/anon.h"
#include "gen/release.h"
#include "gen/runner.h"
#include "gen/safety.h"
#include "gen/system_ops.h"

namespace fraglab::gen {
namespace {

constexpr uint64_t kGiB = 1ULL << 30;

uint64_t Order9Now(uint64_t* free_pages, uint64_t* managed) {
  auto s = snapshot::ReadMachineSnapshot("/");
  if (!s.ok()) return 0;
  uint64_t n = 0;
  *free_pages = 0;
  *managed = 0;
  for (const auto& z : s->zones) {
    for (size_t o = 9; o < z.nr_free.size(); ++o) n += z.nr_free[o] << (o - 9);
    *free_pages += z.BuddyFreePages();
    *managed += z.managed;
  }
  return n;
}

uint64_t BenchBudget() {
  const char* env = std::getenv("FRAGLAB_BENCH_BUDGET");
  if (env != nullptr) {
    auto sz = ParseSize(env);
    if (sz.ok()) {
      auto b = ResolveSizeBytes(*sz, 0);
      if (b.ok()) return *b;
    }
  }
  return 2 * kGiB;
}

void BM_FragmentToTarget(benchmark::State& state) {
  if (::geteuid() != 0) {
    state.SkipWithError("needs root (drop caches, compact)");
    return;
  }
  const uint64_t budget = BenchBudget();
  auto sample = ReadMemorySample();
  if (!sample.ok() || sample->mem_available < budget + DefaultAvailableFloor(sample->mem_total)) {
    state.SkipWithError("not enough MemAvailable for the bench budget");
    return;
  }
  for (auto _ : state) {
    state.PauseTiming();
    StopFlag stop;
    MemoryLedger ledger(budget);
    WatchdogOptions wo;
    Watchdog wd(wo, &stop);
    (void)wd.Start();
    OpContext ctx{&stop, &ledger, nullptr, "/tmp"};
    (void)DropCaches(3);
    (void)Compact();
    (void)Settle(stop);
    uint64_t free0 = 0, managed = 0;
    const uint64_t start9 = Order9Now(&free0, &managed);
    state.ResumeTiming();
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::unique_ptr<AnonRegion>> regions;
    uint64_t now9 = start9, free_pages = free0, faulted = 0;
    bool reached = false;
    while (!stop.requested()) {
      AnonParams p;
      p.bytes = 256ULL << 20;
      ReleaseParams rp;
      if (state.range(0) == 0) {
        rp.pattern = ReleasePattern::kEveryNth;
        rp.n = 2;
      } else {
        p.page_size = AnonPageSize::kThp;
        rp.pattern = ReleasePattern::kStride;
        rp.stride = 512;
        rp.run = 511;
        rp.offset = 1;
        rp.unmap = true;
      }
      std::unique_ptr<AnonRegion> r;
      if (!MapAndTouch(p, ctx, &r).ok()) break;
      faulted += r->bytes();
      if (!Release(*r, rp, stop).ok()) break;
      regions.push_back(std::move(r));
      now9 = Order9Now(&free_pages, &managed);
      if (now9 * 20 < start9 && free_pages * 10 >= managed * 4) {
        reached = true;
        break;
      }
      if (free_pages * 10 < managed * 4) break;  // below 40 % free: target unreachable
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    uint64_t held = 0;
    for (const auto& r : regions) held += r->populated_pages() * kPageBytes;
    state.PauseTiming();
    regions.clear();
    wd.Stop();
    state.ResumeTiming();
    const double gib = static_cast<double>(held) / static_cast<double>(kGiB);
    state.counters["reached"] = reached ? 1 : 0;
    state.counters["seconds"] = secs;
    state.counters["GiB_held"] = gib;
    state.counters["GiB_faulted"] = static_cast<double>(faulted) / static_cast<double>(kGiB);
    state.counters["s_per_GiB_faulted"] = faulted ? secs * static_cast<double>(kGiB) / static_cast<double>(faulted) : 0;
    state.counters["s_per_GiB_held"] = gib > 0 ? secs / gib : 0;
    state.counters["order9_start"] = static_cast<double>(start9);
    state.counters["order9_end"] = static_cast<double>(now9);
    state.counters["free_pct_end"] = managed ? 100.0 * static_cast<double>(free_pages) / static_cast<double>(managed) : 0;
  }
}
BENCHMARK(BM_FragmentToTarget)->Arg(0)->Arg(1)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

// The source tree, from this file's path (bench/ has no source-dir define);
// FRAGLAB_SOURCE_DIR in the environment overrides it.
std::string SourceDir() {
  if (const char* env = std::getenv("FRAGLAB_SOURCE_DIR")) return env;
  std::string f = __FILE__;
  const std::string tail = "/bench/gen_frag_benchmark.cc";
  if (f.size() > tail.size() && f.compare(f.size() - tail.size(), tail.size(), tail) == 0) {
    return f.substr(0, f.size() - tail.size());
  }
  return ".";
}

double Cv(const std::vector<double>& v) {
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  if (mean == 0) return 0;
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  return std::sqrt(ss / static_cast<double>(v.size() - 1)) / mean;
}

// First number after `prefix` in the phase details of the report.
double DetailNumber(const RunReport& r, const std::string& prefix) {
  for (const auto& p : r.phases) {
    auto pos = p.detail.find(prefix);
    if (pos != std::string::npos) return std::atof(p.detail.c_str() + pos + prefix.size());
  }
  return 0;
}

void BM_ScenarioRepeatability(benchmark::State& state, std::string name) {
  if (::geteuid() != 0) {
    state.SkipWithError("needs root");
    return;
  }
  auto sc = scenario::ParseScenarioFile(SourceDir() + "/scenarios/" + name + ".toml");
  if (!sc.ok()) {
    state.SkipWithError(std::string(sc.status().message()).c_str());
    return;
  }
  constexpr int kRuns = 5;
  for (auto _ : state) {
    std::vector<double> order9, hugetlb, thp, secs;
    for (int i = 0; i < kRuns; ++i) {
      RunSink sink(nullptr);
      RunHooks hooks;
      hooks.sink = &sink;
      RunOptions ro;
      ro.progress = false;
      char tmpl[] = "/tmp/fraglab-bench-XXXXXX";
      ro.state_dir = ::mkdtemp(tmpl);
      auto rep = RunScenario(*sc, ro, hooks);
      std::system(("rm -rf '" + ro.state_dir + "'").c_str());
      if (!rep.ok()) {
        state.SkipWithError(std::string(rep.status().message()).c_str());
        return;
      }
      order9.push_back(rep->phases.empty() ? 0 : static_cast<double>(rep->phases.back().end.Order9Blocks()));
      hugetlb.push_back(DetailNumber(*rep, "probe hugetlb: "));
      thp.push_back(DetailNumber(*rep, "probe thp: "));
      secs.push_back(static_cast<double>(rep->total_ns) / 1e9);
    }
    state.counters["cv_order9_end"] = Cv(order9);
    state.counters["cv_hugetlb"] = Cv(hugetlb);
    state.counters["cv_thp"] = Cv(thp);
    state.counters["cv_seconds"] = Cv(secs);
    state.counters["mean_seconds"] = [&] { double m = 0; for (double x : secs) m += x; return m / kRuns; }();
    state.counters["mean_hugetlb"] = [&] { double m = 0; for (double x : hugetlb) m += x; return m / kRuns; }();
  }
}

int Register() {
  const char* env = std::getenv("FRAGLAB_BENCH_SCENARIOS");
  std::string list = env != nullptr ? env : "quick";
  for (absl::string_view n : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    std::string name(n);
    benchmark::RegisterBenchmark(("BM_ScenarioRepeatability/" + name).c_str(), BM_ScenarioRepeatability, name)
        ->Iterations(1)
        ->Unit(benchmark::kSecond)
        ->UseRealTime();
  }
  return 0;
}
const int kRegistered = Register();

}  // namespace
}  // namespace fraglab::gen

BENCHMARK_MAIN();
