// Speed of `fraglab replay` (sim/replay.h) without root: the benchmark writes
// its own "kernel" trace once and replays it from the file, as the command
// does (trace decoding, the start state from the snapshot, every record).
//
// The trace: an 8 GiB, 2-CPU machine (the model itself standing in for the
// kernel) fragmented by movable pages of which every third is freed again,
// its snapshot (no pageblock map, like `fraglab trace`), then bursts of
// pipe-like traffic: unmovable order-0 pages allocated on both CPUs and freed
// again, with the allocator's own pcp refills and drains, 1 ms of logical
// time per 64 operations. The real-trace ratio against the kernel's time
// needs root (bench/replay_ratio.sh); this tracks records/s.
//
//   BM_ReplayTrace       the whole replay: records/s, alloc+free/s
//   BM_ReplayStartState  up to the model built from the start snapshot
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/rng.h"
#include "common/trace_file.h"
#include "sim/config.h"
#include "sim/page_allocator.h"
#include "sim/scenario_sim.h"
#include "sim/replay.h"

namespace fraglab::sim {
namespace {

constexpr uint64_t kMachineBytes = uint64_t{8} << 30;
constexpr int kBursts = 24;
constexpr int kBurstPages = 8192;

TraceHeader HeaderOf(const PageAllocator& a) {
  TraceHeader h;
  h.kernel_release = "6.18.0-bench";
  h.kernel_era = "CLAIM";
  h.machine = "replay benchmark";
  h.nr_cpus = static_cast<uint32_t>(a.config().cpus);
  SetAllocatorLayout(a, h);
  return h;
}

// The trace written once per process: its path and counts.
struct BenchTrace {
  std::string path;
  uint64_t records = 0;
  uint64_t page_events = 0;
};

class CountingTee final : public EventSink {
 public:
  explicit CountingTee(EventSink* next) : next_(next) {}
  absl::Status Emit(const fl_record_header& rec) override {
    ++records;
    if (rec.kind == FL_EV_PAGE_ALLOC || rec.kind == FL_EV_PAGE_FREE) ++page_events;
    return next_->Emit(rec);
  }
  uint64_t records = 0;
  uint64_t page_events = 0;

 private:
  EventSink* next_;
};

std::string written_path;  // removed at exit

const BenchTrace& Trace() {
  static const BenchTrace* trace = [] {
    auto* t = new BenchTrace;
    auto k = PageAllocator::Create(StandardMachine(kMachineBytes, 2));
    if (!k.ok()) std::abort();
    PageAllocator& kernel = **k;
    // Fragment: movable pages everywhere, every third one freed again.
    Rng rng(7);
    std::vector<uint64_t> anon;
    const AllocRequest movable{0, gfp::kHighuserMovable, 0, 0, OwnerKind::kAnon};
    for (uint64_t n = 0; n < kMachineBytes / 4096 * 3 / 4; ++n) {
      const uint64_t pfn = kernel.AllocateWithFlags(movable, alloc::kWmarkMin);
      if (pfn == kNoPfn) break;
      anon.push_back(pfn);
    }
    for (size_t i = 0; i < anon.size(); i += 3) (void)kernel.Free(anon[i], 0);
    char path[] = "/tmp/fraglab_replay_bench_XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0) std::abort();
    close(fd);
    t->path = path;
    written_path = path;
    auto w = TraceWriter::Open(t->path, HeaderOf(kernel));
    if (!w.ok()) std::abort();
    CountingTee tee(w->get());
    kernel.set_sink(&tee);
    uint64_t now = 1000;
    kernel.set_time(now);
    kernel.EmitSnapshots();
    std::vector<std::pair<uint64_t, int>> pipe;
    uint64_t ops = 0;
    auto tick = [&] {
      if (++ops % 64 == 0) {
        now += 1000000;
        kernel.AdvanceTime(now);
      }
      kernel.set_time(now);
    };
    for (int b = 0; b < kBursts; ++b) {
      for (int i = 0; i < kBurstPages; ++i) {
        tick();
        const int cpu = static_cast<int>(rng.Uniform(2));
        const uint64_t pfn = kernel.Allocate({0, gfp::kKernel, 0, cpu, OwnerKind::kPipe});
        if (pfn != kNoPfn) pipe.emplace_back(pfn, cpu);
      }
      for (const auto& [pfn, cpu] : pipe) {
        tick();
        (void)kernel.Free(pfn, 0, 1 - cpu);
      }
      pipe.clear();
    }
    kernel.set_sink(nullptr);
    if (!(*w)->Close().ok()) std::abort();
    t->records = tee.records;
    t->page_events = tee.page_events;
    return t;
  }();
  return *trace;
}

// Feeds the trace file to a replayer; with `start_only`, stops once the
// model is built. Returns the records fed.
uint64_t ReplayFile(const std::string& path, bool start_only) {
  auto reader = TraceReader::Open(path);
  if (!reader.ok()) std::abort();
  TraceReplayer replayer((*reader)->header(), {});
  uint64_t n = 0;
  for (;;) {
    auto rec = (*reader)->Next();
    if (!rec.ok()) std::abort();
    if (*rec == nullptr) break;
    if (!replayer.Emit(**rec).ok()) std::abort();
    ++n;
    if (start_only && replayer.allocator() != nullptr) return n;
  }
  auto r = replayer.Finish();
  if (!r.ok()) std::abort();
  benchmark::DoNotOptimize(r->allocs_replayed);
  return n;
}

void BM_ReplayTrace(benchmark::State& state) {
  const BenchTrace& t = Trace();
  uint64_t records = 0;
  for (auto _ : state) records += ReplayFile(t.path, false);
  state.counters["records_per_s"] = benchmark::Counter(static_cast<double>(records), benchmark::Counter::kIsRate);
  state.counters["alloc_free_per_s"] = benchmark::Counter(
      static_cast<double>(t.page_events) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["records"] = static_cast<double>(t.records);
}
BENCHMARK(BM_ReplayTrace)->Unit(benchmark::kMillisecond);

void BM_ReplayStartState(benchmark::State& state) {
  const BenchTrace& t = Trace();
  for (auto _ : state) benchmark::DoNotOptimize(ReplayFile(t.path, true));
}
BENCHMARK(BM_ReplayStartState)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace fraglab::sim

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (!fraglab::sim::written_path.empty()) unlink(fraglab::sim::written_path.c_str());
  return 0;
}
