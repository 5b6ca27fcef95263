// Cost of the pageblock map: the pure part (classification already done,
// free-run reconstruction + per-block votes) on a synthetic 24 GiB zone, and
// the whole ReadMachineMap on this machine (dominated by the kernel producing
// /proc/kpageflags; needs root, skipped otherwise).
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <vector>

#include "common/snapshot_machine.h"
#include "common/snapshot_map.h"

namespace fraglab::snapshot {
namespace {

// 24 GiB = 6291456 pfns: a fragmented mix of free runs, anon, file, slab and
// unflagged kernel pages, deterministic.
void BM_BuildZoneMap24GiB(benchmark::State& state) {
  constexpr uint64_t kPfns = uint64_t{24} << 18;
  MachineSnapshot s;
  s.migratetype_names = {"Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"};
  ZoneSnapshot z;
  z.start_pfn = 0;
  z.spanned = kPfns;
  z.nr_free.assign(11, 0);
  std::vector<PageClass> classes(kPfns);
  uint64_t x = 88172645463325252ULL;
  for (uint64_t pfn = 0; pfn < kPfns;) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const uint64_t run = 1 + (x >> 40) % 700;
    static constexpr PageClass kKinds[] = {PageClass::kFree, PageClass::kAnon, PageClass::kFile,
                                           PageClass::kFree, PageClass::kSlab, PageClass::kUnflagged};
    const PageClass c = kKinds[(x >> 20) % 6];
    for (uint64_t i = 0; i < run && pfn < kPfns; ++i) classes[pfn++] = c;
  }
  for (auto _ : state) {
    ZoneMap m = BuildZoneMap(z, s, 0, classes);
    benchmark::DoNotOptimize(m.blocks.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kPfns));
}
BENCHMARK(BM_BuildZoneMap24GiB)->Unit(benchmark::kMillisecond);

void BM_ReadMachineMapLive(benchmark::State& state) {
  if (geteuid() != 0) {
    state.SkipWithError("needs root: /proc/kpageflags is root-only");
    return;
  }
  auto s = ReadMachineSnapshot("/", {.pagetypeinfo = false});
  if (!s.ok()) {
    state.SkipWithError(std::string(s.status().message()).c_str());
    return;
  }
  uint64_t pfns = 0;
  for (auto _ : state) {
    auto m = ReadMachineMap(*s);
    if (!m.ok()) {
      state.SkipWithError(std::string(m.status().message()).c_str());
      return;
    }
    pfns = m->pfns_read;
    benchmark::DoNotOptimize(m->zones.data());
  }
  state.counters["pfns"] = static_cast<double>(pfns);
}
BENCHMARK(BM_ReadMachineMapLive)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace fraglab::snapshot

BENCHMARK_MAIN();
