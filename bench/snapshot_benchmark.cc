// Cost of a machine snapshot: parsing alone (fixture text already in the page
// cache) and reading this machine's /proc with and without pagetypeinfo (the
// kernel walks every free list for it, so it dominates on a fragmented zone).
#include <benchmark/benchmark.h>

#include <string>

#include "common/proc_buddyinfo.h"
#include "common/proc_file.h"
#include "common/proc_pagetypeinfo.h"
#include "common/proc_zoneinfo.h"
#include "common/snapshot_machine.h"

namespace fraglab::snapshot {
namespace {

// Benchmarks get no source-dir macro; the build passes absolute source paths,
// so the fixture tree is found next to this file.
std::string FixtureRoot() {
  std::string here = __FILE__;
  return here.substr(0, here.rfind("/bench/")) + "/tests/fixtures/proc/6.18";
}

void BM_ParseZoneInfo(benchmark::State& state) {
  auto text = procfs::ReadWholeFile(FixtureRoot() + "/proc/zoneinfo");
  if (!text.ok()) {
    state.SkipWithError(std::string(text.status().message()).c_str());
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(procfs::ParseZoneInfo(*text));
}
BENCHMARK(BM_ParseZoneInfo);

void BM_ParsePagetypeInfo(benchmark::State& state) {
  auto text = procfs::ReadWholeFile(FixtureRoot() + "/proc/pagetypeinfo");
  if (!text.ok()) {
    state.SkipWithError(std::string(text.status().message()).c_str());
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(procfs::ParsePagetypeInfo(*text));
}
BENCHMARK(BM_ParsePagetypeInfo);

void BM_ReadMachineSnapshotFixture(benchmark::State& state) {
  for (auto _ : state) {
    auto s = ReadMachineSnapshot(FixtureRoot());
    if (!s.ok()) state.SkipWithError(std::string(s.status().message()).c_str());
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_ReadMachineSnapshotFixture)->Unit(benchmark::kMicrosecond);

void BM_ReadMachineSnapshotLiveNoPagetypeinfo(benchmark::State& state) {
  for (auto _ : state) {
    auto s = ReadMachineSnapshot("/", {.pagetypeinfo = false});
    if (!s.ok()) state.SkipWithError(std::string(s.status().message()).c_str());
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_ReadMachineSnapshotLiveNoPagetypeinfo)->Unit(benchmark::kMicrosecond);

void BM_ReadMachineSnapshotLive(benchmark::State& state) {
  for (auto _ : state) {
    auto s = ReadMachineSnapshot("/");
    if (!s.ok()) state.SkipWithError(std::string(s.status().message()).c_str());
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_ReadMachineSnapshotLive)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace fraglab::snapshot

BENCHMARK_MAIN();
