// Trace file throughput and memory: BM_TraceWrite / BM_TraceRead in records
// per second, raw and zstd, and BM_TraceMemory5M, which writes and reads five
// million records and fails if the process's resident memory grows by more
// than kRssBoundMiB (the writer and reader hold one chunk each, whatever the
// trace length). Files go to $TMPDIR (default /tmp) and are removed.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "benchmark/benchmark.h"
#include "common/event_sink.h"
#include "common/trace_file.h"

namespace fraglab {
namespace {

constexpr double kRssBoundMiB = 64;

std::string TempPath(const char* name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/fraglab_bench_" + name + "_" +
         std::to_string(::getpid()) + ".fltrace";
}

// Resident set size in MiB (VmRSS) or its peak (VmHWM).
double ProcStatusMiB(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::atof(line.c_str() + std::strlen(field)) / 1024.0;
  }
  return 0;
}

// Resets VmHWM to the current RSS so the peak of what follows can be read.
void ResetPeakRss() {
  std::ofstream("/proc/self/clear_refs") << "5";
}

TraceHeader BenchHeader() {
  TraceHeader h;
  h.kernel_release = "bench";
  h.migratetype_names = {"Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"};
  return h;
}

// A plausible allocation stream: alloc/free pairs with varying pfns, so zstd
// sees realistic (not constant) data.
bool WriteRecords(const std::string& path, int64_t n, bool compress) {
  TraceWriterOptions opts;
  opts.compress = compress;
  auto w = TraceWriter::Open(path, BenchHeader(), opts);
  if (!w.ok()) return false;
  uint64_t pfn = 0x100000;
  for (int64_t i = 0; i < n; ++i) {
    pfn = (pfn * 2862933555777941757ull + 3037000493ull) & 0xfffffff;
    if (i % 2 == 0) {
      fl_page_alloc r;
      InitRecord(r, FL_EV_PAGE_ALLOC, static_cast<uint64_t>(i) * 250, static_cast<uint16_t>(i & 1));
      r.pfn = pfn;
      r.order = static_cast<uint32_t>(i % 4 == 0 ? 0 : i % 10);
      r.migratetype = 1;
      r.gfp_flags = 0x140cca;
      if (!(*w)->Emit(r.hdr).ok()) return false;
    } else {
      fl_page_free r;
      InitRecord(r, FL_EV_PAGE_FREE, static_cast<uint64_t>(i) * 250, static_cast<uint16_t>(i & 1));
      r.pfn = pfn;
      if (!(*w)->Emit(r.hdr).ok()) return false;
    }
  }
  return (*w)->Close().ok();
}

int64_t ReadRecords(const std::string& path) {
  auto r = TraceReader::Open(path);
  if (!r.ok()) return -1;
  int64_t n = 0;
  uint64_t sum = 0;
  while (true) {
    auto rec = (*r)->Next();
    if (!rec.ok()) return -1;
    if (*rec == nullptr) break;
    sum += (*rec)->ts_ns;
    ++n;
  }
  benchmark::DoNotOptimize(sum);
  return n;
}

void BM_TraceWrite(benchmark::State& state) {
  const bool compress = state.range(0) != 0;
  const int64_t n = state.range(1);
  const std::string path = TempPath("write");
  for (auto _ : state) {
    if (!WriteRecords(path, n, compress)) {
      state.SkipWithError("write failed");
      break;
    }
  }
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  state.counters["file_MiB"] = static_cast<double>(f.tellg()) / 1048576.0;
  state.SetItemsProcessed(state.iterations() * n);
  std::remove(path.c_str());
}
BENCHMARK(BM_TraceWrite)
    ->ArgNames({"zstd", "records"})
    ->Args({0, 1 << 20})
    ->Args({1, 1 << 20})
    ->Unit(benchmark::kMillisecond);

void BM_TraceRead(benchmark::State& state) {
  const bool compress = state.range(0) != 0;
  const int64_t n = state.range(1);
  const std::string path = TempPath("read");
  if (!WriteRecords(path, n, compress)) {
    state.SkipWithError("write failed");
    return;
  }
  for (auto _ : state) {
    if (ReadRecords(path) != n) {
      state.SkipWithError("read failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * n);
  std::remove(path.c_str());
}
BENCHMARK(BM_TraceRead)
    ->ArgNames({"zstd", "records"})
    ->Args({0, 1 << 20})
    ->Args({1, 1 << 20})
    ->Unit(benchmark::kMillisecond);

void BM_TraceMemory5M(benchmark::State& state) {
  const bool compress = state.range(0) != 0;
  constexpr int64_t kRecords = 5'000'000;
  const std::string path = TempPath("mem");
  for (auto _ : state) {
    const double before = ProcStatusMiB("VmRSS:");
    ResetPeakRss();
    if (!WriteRecords(path, kRecords, compress) || ReadRecords(path) != kRecords) {
      state.SkipWithError("write or read failed");
      break;
    }
    const double growth = ProcStatusMiB("VmHWM:") - before;
    state.counters["rss_growth_MiB"] = growth;
    if (growth > kRssBoundMiB) {
      state.SkipWithError("resident memory grew with trace length (more than 64 MiB)");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * kRecords * 2);  // written + read
  std::remove(path.c_str());
}
BENCHMARK(BM_TraceMemory5M)->ArgName("zstd")->Arg(0)->Arg(1)->Iterations(1)->Unit(
    benchmark::kMillisecond);

}  // namespace
}  // namespace fraglab

BENCHMARK_MAIN();
