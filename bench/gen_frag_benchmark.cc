// Generator numbers on this machine (root; real memory, so these are not run
// by the test suite; the machine may be shared: compare ratios and per-GiB
// figures measured in one run):
//  BM_FragmentToTarget/<strategy>: time to take the machine from a prepared
//    start to a fragmentation target: order-9 free blocks under 5 % of the
//    start's while at least 40 % of the start's free memory stays free. The
//    start is an arena (gen/arena.h) of FRAGLAB_BENCH_ARENA (default 2GiB)
//    free memory, so the target concerns the arena, not the memory the arena
//    took out. Steps of 256 MiB: strategy 0 faults base pages and releases
//    every other page (MADV_DONTNEED); strategy 1 faults THPs (each takes one
//    free 2 MiB block) and unmaps all but one 4 KiB page per 2 MiB, then
//    runs the shrinkers (drop_caches=2) so the deferred THP split frees the
//    rest at once: each step removes 128 order-9 blocks while the run holds
//    512 KiB. Stops at
//    the budget (FRAGLAB_BENCH_BUDGET, default 2GiB; faulted bytes count
//    until unmapped) and reports reached=0 when the target was not reached
//    within it. hotplug_MiB is memory virtio-mem plugged in meanwhile.
//  BM_ScenarioRepeatability/<name>: runs a scenario 5 times with the tracker
//    attached (as `fraglab run`) and reports the coefficient of variation of
//    the key metrics: the deepest drop of order>=9 free blocks against the
//    start (start minus the lowest count at any phase end: how far the
//    scenario fragmented the arena), order>=9 free blocks at the end (after
//    the scenario's releases and probes: mostly background noise such as
//    virtio-mem plugging memory in), fallbacks by class
//    (claim/steal/pollute) over the run, hugetlb and THP probe successes
//    (each probe phase summed), and the run time. Scenarios:
//    FRAGLAB_BENCH_SCENARIOS (comma-separated names in scenarios/, default
//    all shipped ones).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <thread>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/scenario_parser.h"
#include "common/snapshot_machine.h"
#include "common/units.h"
#include "bpf/tracker.h"
#include "gen/anon.h"
#include "gen/arena.h"
#include "gen/release.h"
#include "gen/runner.h"
#include "gen/safety.h"
#include "gen/sysfs.h"
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

uint64_t EnvBytes(const char* name, uint64_t dflt) {
  const char* env = std::getenv(name);
  if (env != nullptr) {
    auto sz = ParseSize(env);
    if (sz.ok()) {
      auto b = ResolveSizeBytes(*sz, 0);
      if (b.ok()) return *b;
    }
  }
  return dflt;
}

void BM_FragmentToTarget(benchmark::State& state) {
  if (::geteuid() != 0) {
    state.SkipWithError("needs root (drop caches, compact, hugetlb pool)");
    return;
  }
  const uint64_t budget = BenchBudget();
  const uint64_t arena_bytes = EnvBytes("FRAGLAB_BENCH_ARENA", 2 * kGiB);
  auto sample = ReadMemorySample();
  if (!sample.ok() || sample->mem_available < arena_bytes + DefaultAvailableFloor(sample->mem_total)) {
    state.SkipWithError("not enough MemAvailable for the bench arena");
    return;
  }
  for (auto _ : state) {
    state.PauseTiming();
    char tmpl[] = "/tmp/fraglab-bench-XXXXXX";
    const std::string dir = ::mkdtemp(tmpl);
    auto journal = RestoreJournal::Open(dir);
    if (!journal.ok()) {
      state.SkipWithError(std::string(journal.status().message()).c_str());
      return;
    }
    StopFlag stop;
    MemoryLedger ledger(budget);
    std::unique_ptr<Arena> arena;
    std::atomic<Arena*> arena_ptr{nullptr};
    WatchdogOptions wo;
    wo.releasable = [&] { Arena* a = arena_ptr.load(); return a ? a->held_bytes() : 0; };
    wo.on_stop = [&] { if (Arena* a = arena_ptr.load()) a->GiveBack(); };
    Watchdog wd(wo, &stop);
    (void)wd.Start();
    OpContext ctx{&stop, &ledger, journal->get(), dir};
    (void)DropCaches(3);
    (void)Compact();
    (void)Settle(stop);
    auto a = Arena::Shrink(arena_bytes, ctx, &arena_ptr);
    if (!a.ok()) {
      wd.Stop();
      (void)(*journal)->Replay();
      state.SkipWithError(std::string(a.status().message()).c_str());
      return;
    }
    arena = std::move(*a);
    uint64_t free0 = 0, managed0 = 0;
    const uint64_t start9 = Order9Now(&free0, &managed0);
    state.ResumeTiming();
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::unique_ptr<AnonRegion>> regions;
    uint64_t now9 = start9, free_pages = free0, managed = managed0, faulted = 0;
    bool reached = false;
    bool split_failed = false;
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
      if (state.range(0) == 1) {
        // A partly unmapped THP is only queued for a deferred split, which a
        // shrinker runs under memory pressure: until then all 2 MiB stay
        // allocated. drop_caches=2 runs every shrinker, the split one too.
        // (debugfs split_huge_pages would be precise but refuses writes,
        // EPERM, on this VM.)
        if (!DropCaches(2).ok()) split_failed = true;
      }
      regions.push_back(std::move(r));
      now9 = Order9Now(&free_pages, &managed);
      if (now9 * 20 < start9 && free_pages * 10 >= free0 * 4) {
        reached = true;
        break;
      }
      if (free_pages * 10 < free0 * 4) break;  // below 40 % free: target unreachable
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    uint64_t held = 0;
    for (const auto& r : regions) held += r->populated_pages() * kPageBytes;
    state.PauseTiming();
    regions.clear();
    wd.Stop();
    arena_ptr.store(nullptr);
    arena.reset();
    (void)(*journal)->Replay();
    std::system(("rm -rf '" + dir + "'").c_str());
    state.ResumeTiming();
    const double gib = static_cast<double>(held) / static_cast<double>(kGiB);
    state.counters["reached"] = reached ? 1 : 0;
    state.counters["seconds"] = secs;
    state.counters["GiB_held"] = gib;
    state.counters["GiB_faulted"] = static_cast<double>(faulted) / static_cast<double>(kGiB);
    state.counters["s_per_GiB_faulted"] = faulted ? secs * static_cast<double>(kGiB) / static_cast<double>(faulted) : 0;
    state.counters["order9_start"] = static_cast<double>(start9);
    state.counters["order9_end"] = static_cast<double>(now9);
    state.counters["free_pct_end"] = free0 ? 100.0 * static_cast<double>(free_pages) / static_cast<double>(free0) : 0;
    state.counters["split_failed"] = split_failed ? 1 : 0;
    state.counters["hotplug_MiB"] = static_cast<double>(managed > managed0 ? managed - managed0 : 0) * 4096.0 / (1 << 20);
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

// Sum over the phases of the first number after `prefix` in each detail.
double DetailSum(const RunReport& r, const std::string& prefix) {
  double sum = 0;
  for (const auto& p : r.phases) {
    auto pos = p.detail.find(prefix);
    if (pos != std::string::npos) sum += std::atof(p.detail.c_str() + pos + prefix.size());
  }
  return sum;
}

// One run as `fraglab run` does it: the tracker attached when it can be.
absl::StatusOr<RunReport> RunTracked(const scenario::Scenario& sc, const std::string& state_dir,
                                     bool* tracked) {
  RunSink sink(nullptr);
  std::unique_ptr<tracker::Tracker> tr;
  *tracked = false;
  tracker::TrackerOptions topt;
  topt.snapshots = false;
  // A machine that cannot trace still runs the scenario; `tracked` says so.
  if (auto started = tracker::StartForThisMachine(topt, &sink); started.ok()) tr = std::move(*started);
  RunHooks hooks;
  hooks.sink = &sink;
  RunOptions ro;
  ro.progress = false;
  ro.state_dir = state_dir;
  absl::StatusOr<RunReport> rep = absl::InternalError("the generator did not run");
  // Poll errors show as lost events in the trace; the benchmark reads the report.
  (void)tracker::RunWhilePolling(tr.get(), [&](std::function<void()> drain) {
    hooks.drain = std::move(drain);
    rep = RunScenario(sc, ro, hooks);
  });
  if (tr) {
    (void)tr->Stop();
    *tracked = true;
  }
  return rep;
}

double Mean(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m += x;
  return v.empty() ? 0 : m / static_cast<double>(v.size());
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
    std::vector<double> order9, drop, hugetlb, thp, secs;
    std::vector<double> fb[3];
    bool tracked = false;
    for (int i = 0; i < kRuns; ++i) {
      char tmpl[] = "/tmp/fraglab-bench-XXXXXX";
      const std::string dir = ::mkdtemp(tmpl);
      auto rep = RunTracked(*sc, dir, &tracked);
      std::system(("rm -rf '" + dir + "'").c_str());
      if (!rep.ok()) {
        state.SkipWithError(std::string(rep.status().message()).c_str());
        return;
      }
      if (!rep->stop_reason.empty()) {
        state.SkipWithError(("stopped early: " + rep->stop_reason).c_str());
        return;
      }
      order9.push_back(rep->phases.empty() ? 0 : static_cast<double>(rep->phases.back().end.Order9Blocks()));
      uint64_t lowest = rep->start.Order9Blocks();
      for (const auto& p : rep->phases) lowest = std::min<uint64_t>(lowest, p.end.Order9Blocks());
      drop.push_back(static_cast<double>(rep->start.Order9Blocks() - lowest));
      hugetlb.push_back(DetailSum(*rep, "probe hugetlb: "));
      thp.push_back(DetailSum(*rep, "probe thp: "));
      secs.push_back(static_cast<double>(rep->total_ns) / 1e9);
      std::array<uint64_t, 3> n{};
      for (const auto& p : rep->phases) {
        for (int c = 0; c < 3; ++c) n[c] += p.fallbacks[c];
      }
      for (int c = 0; c < 3; ++c) fb[c].push_back(static_cast<double>(n[c]));
    }
    state.counters["tracked"] = tracked ? 1 : 0;
    state.counters["mean_order9_drop"] = Mean(drop);
    state.counters["cv_order9_drop"] = Cv(drop);
    state.counters["mean_order9_end"] = Mean(order9);
    state.counters["cv_order9_end"] = Cv(order9);
    state.counters["mean_claim"] = Mean(fb[0]);
    state.counters["cv_claim"] = Cv(fb[0]);
    state.counters["mean_steal"] = Mean(fb[1]);
    state.counters["cv_steal"] = Cv(fb[1]);
    state.counters["mean_pollute"] = Mean(fb[2]);
    state.counters["cv_pollute"] = Cv(fb[2]);
    state.counters["mean_hugetlb"] = Mean(hugetlb);
    state.counters["cv_hugetlb"] = Cv(hugetlb);
    state.counters["mean_thp"] = Mean(thp);
    state.counters["cv_thp"] = Cv(thp);
    state.counters["mean_seconds"] = Mean(secs);
    state.counters["cv_seconds"] = Cv(secs);
  }
}

int Register() {
  const char* env = std::getenv("FRAGLAB_BENCH_SCENARIOS");
  std::string list = env != nullptr ? env
                                    : "quick,mixed-sizes,unmovable-pinning,slab-interleave,"
                                      "pagecache-churn,pagecache-lbs,thp-after-fragmentation";
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
