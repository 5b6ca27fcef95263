// fraglab sim: runs a scenario on the simulated page allocator
// (sim/scenario_sim.h), optionally writes the trace, and prints per phase
// what `validate` and `compare` look at: free blocks per order, pageblocks
// per migratetype, fallbacks by class and migratetype pair, probe results.
// Exit 1 when an `expect` phase fails (its message says what was expected
// and what the simulator has) or the scenario cannot be simulated.
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "analysis/metrics.h"
#include "cli/command.h"
#include "common/event_sink.h"
#include "common/proc_file.h"
#include "common/scenario_parser.h"
#include "common/trace_file.h"
#include "sim/pageblock_map.h"
#include "sim/scenario_sim.h"
#include "sim/start_state.h"

namespace fraglab::cli {
namespace {

struct SimOptions {
  std::string scenario;
  std::string output;
  uint64_t seed = 0;
  bool seed_given = false;
  const CLI::Option* seed_option = nullptr;  // set while building the command
  bool quiet = false;
  std::string start_from;           // trace whose first snapshot is the start state
  std::string maps = "snapshots";   // pageblock maps into the trace: none, snapshots, phases
};

// Writes pageblock maps of the model into the trace (at the end of snapshot
// phases, or of every phase) so `fraglab map` draws them, and shows progress
// on stderr when it is a terminal and the run takes a while.
class SimObserver final : public sim::RunObserver {
 public:
  SimObserver() : start_(Now()) {}
  // Where maps go (null: nowhere), whether after every phase or only after
  // snapshot phases, the number of phases and whether to show progress.
  void Configure(EventSink* maps_sink, bool every_phase, size_t phases, bool progress) {
    maps_sink_ = maps_sink;
    every_phase_ = every_phase;
    phases_ = phases;
    progress_ = progress;
  }

  void OnPhaseBegin(const scenario::ExpandedPhase& phase) override {
    if (!progress_) return;
    const double now = Now();
    // Only after a second, at most 10 updates a second: short runs print nothing.
    if (now - start_ < 1.0 || now - last_ < 0.1) return;
    last_ = now;
    shown_ = true;
    std::fprintf(stderr, "\r\033[K[fraglab sim] phase %zu/%zu %s  %.1f s", phase.index + 1, phases_,
                 phase.label.c_str(), now - start_);
    std::fflush(stderr);
  }

  void OnPhaseEnd(const scenario::ExpandedPhase& phase, const sim::PageAllocator& allocator,
                  const absl::Status& outcome) override {
    (void)outcome;
    if (maps_sink_ == nullptr) return;
    const bool snapshot = std::holds_alternative<scenario::SnapshotOp>(phase.phase->op);
    if (!every_phase_ && !snapshot) return;
    if (absl::Status st = sim::EmitAllocatorPageblockMap(allocator, *maps_sink_); !st.ok() && status_.ok()) {
      status_ = st;
    }
  }

  // Clears the progress line.
  void Done() {
    if (shown_) std::fprintf(stderr, "\r\033[K");
  }
  const absl::Status& status() const { return status_; }

 private:
  static double Now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  }
  EventSink* maps_sink_ = nullptr;
  bool every_phase_ = false;
  size_t phases_ = 0;
  bool progress_ = false;
  double start_;
  double last_ = 0;
  bool shown_ = false;
  absl::Status status_;
};

// The start state of --start-from: the trace's first snapshot.
absl::StatusOr<sim::RecordedStart> ReadStart(const std::string& path) {
  absl::StatusOr<std::unique_ptr<TraceReader>> reader = TraceReader::Open(path);
  if (!reader.ok()) return reader.status();
  sim::StartSnapshotCollector collector((*reader)->header());
  while (!collector.done()) {
    absl::StatusOr<const fl_record_header*> rec = (*reader)->Next();
    if (!rec.ok()) return rec.status();
    if (*rec == nullptr) break;
    absl::Status st = collector.Emit(**rec);
    if (!st.ok() && !collector.done()) return absl::Status(st.code(), absl::StrCat(path, ": ", st.message()));
  }
  absl::StatusOr<sim::RecordedStart> start = collector.Finish();
  if (!start.ok()) return absl::Status(start.status().code(), absl::StrCat(path, ": ", start.status().message()));
  return start;
}

std::string ZoneLabel(const TraceHeader& h, int nid, int zone_idx) {
  for (const ZoneLayout& z : h.zones) {
    if (z.nid == nid && z.zone_idx == zone_idx) return absl::StrCat("node ", nid, " ", z.name);
  }
  return absl::StrCat("node ", nid, " zone ", zone_idx);
}

void PrintPhase(const TraceHeader& h, const analysis::PhaseMetrics& p) {
  std::printf("phase %s\n", p.label.c_str());
  uint64_t allocs = 0, failures = 0, frees = 0;
  for (int o = 0; o < FL_MAX_ORDERS; ++o) {
    allocs += p.allocs_by_order[o];
    failures += p.alloc_failures_by_order[o];
    frees += p.frees_by_order[o];
  }
  if (allocs + frees > 0) {
    std::printf("  allocations %llu (%llu failed), frees %llu\n", static_cast<unsigned long long>(allocs),
                static_cast<unsigned long long>(failures), static_cast<unsigned long long>(frees));
  }
  for (const auto& [key, z] : p.zones) {
    std::vector<std::string> orders;
    for (int o = 0; o <= static_cast<int>(h.max_order); ++o) orders.push_back(absl::StrCat(z.nr_free[o]));
    std::printf("  %-14s free blocks by order 0..%u: %s  (free pages %llu, boost %llu)\n",
                ZoneLabel(h, key.first, key.second).c_str(), h.max_order, absl::StrJoin(orders, " ").c_str(),
                static_cast<unsigned long long>(z.nr_free_pages), static_cast<unsigned long long>(z.boost));
    std::vector<std::string> blocks;
    for (size_t mt = 0; mt < h.migratetype_names.size(); ++mt) {
      if (z.pageblocks[mt] > 0) blocks.push_back(absl::StrCat(h.migratetype_names[mt], " ", z.pageblocks[mt]));
    }
    std::printf("  %-14s pageblocks: %s\n", "", blocks.empty() ? "none" : absl::StrJoin(blocks, ", ").c_str());
  }
  if (!p.fallbacks.empty()) {
    std::vector<std::string> parts;
    for (const auto& [k, n] : p.fallbacks) {
      const auto& [cls, alloc_mt, fallback_mt] = k;
      parts.push_back(absl::StrCat(analysis::ExtfragClassLabel(cls), " ", analysis::MigratetypeName(h, alloc_mt),
                                   "<-", analysis::MigratetypeName(h, fallback_mt), " ", n));
    }
    std::printf("  fallbacks: %s\n", absl::StrJoin(parts, ", ").c_str());
  }
  if (!p.compaction_by_order.empty() || !p.compaction_end_status.empty()) {
    std::vector<std::string> parts;
    for (const auto& [order, c] : p.compaction_by_order) {
      std::string part = absl::StrCat(order < 0 ? std::string("manual") : absl::StrCat("order ", order), ": ",
                                      c.direct_attempts, " direct, ", c.kcompactd_wakeups, " kcompactd wake-ups, ",
                                      c.deferred, " deferred");
      for (const auto& [res, n] : c.finished_by_result) {
        absl::StrAppend(&part, ", finished ", analysis::CompactResultName(res), " ", n);
      }
      parts.push_back(part);
    }
    std::printf("  compaction: %s\n", parts.empty() ? "-" : absl::StrJoin(parts, "; ").c_str());
    if (!p.compaction_end_status.empty()) {
      std::vector<std::string> ends;
      for (const auto& [res, n] : p.compaction_end_status) {
        ends.push_back(absl::StrCat(analysis::CompactResultName(res), " ", n));
      }
      std::printf("  compaction runs ended: %s\n", absl::StrJoin(ends, ", ").c_str());
    }
  }
  if (p.migrate_succeeded + p.migrate_failed > 0) {
    std::printf("  pages migrated %llu, failed %llu\n", static_cast<unsigned long long>(p.migrate_succeeded),
                static_cast<unsigned long long>(p.migrate_failed));
  }
  for (const analysis::ProbeResult& r : p.probes) {
    std::printf("  probe order %u: %llu of %llu obtained\n", r.order, static_cast<unsigned long long>(r.obtained),
                static_cast<unsigned long long>(r.requested));
  }
}

int RunSim(const SimOptions& opt) {
  const char* kCmd = "sim";
  absl::StatusOr<std::string> text = procfs::ReadWholeFile(opt.scenario);
  if (!text.ok()) return ReportStatus(kCmd, text.status());
  absl::StatusOr<scenario::Scenario> s = scenario::ParseScenarioString(*text, opt.scenario);
  if (!s.ok()) return ReportStatus(kCmd, s.status());

  if (opt.maps != "none" && opt.maps != "snapshots" && opt.maps != "phases") {
    std::fprintf(stderr, "fraglab sim: --maps '%s': expected none, snapshots or phases\n", opt.maps.c_str());
    return kExitUsage;
  }
  // Metrics first, then the trace writer: the metrics builder never fails,
  // so both see every record even though the tee stops at the first error.
  TeeSink tee;
  sim::ScenarioSimulator::Options so;
  if (opt.seed_given) so.seed = opt.seed;
  so.sink = &tee;
  SimObserver observer;
  so.observer = &observer;
  std::optional<sim::RecordedStart> start;
  std::vector<std::string> machine_notes;
  std::optional<sim::StartStateReport> start_report;
  if (!opt.start_from.empty()) {
    absl::StatusOr<sim::RecordedStart> st = ReadStart(opt.start_from);
    if (!st.ok()) return ReportStatus(kCmd, st.status());
    start = std::move(*st);
    absl::StatusOr<sim::MachineConfig> machine = sim::MachineConfigFromStart(*start, &machine_notes);
    if (!machine.ok()) {
      return ReportStatus(kCmd, absl::Status(machine.status().code(),
                                             absl::StrCat(opt.start_from, ": ", machine.status().message())));
    }
    so.machine = *machine;
    so.prepare = [&start, &start_report](sim::PageAllocator& a) -> absl::Status {
      absl::StatusOr<sim::StartStateReport> r = sim::ApplyStartState(*start, a);
      if (!r.ok()) return r.status();
      start_report = std::move(*r);
      return absl::OkStatus();
    };
  }
  absl::StatusOr<std::unique_ptr<sim::ScenarioSimulator>> simulator = sim::ScenarioSimulator::Create(*s, so);
  if (!simulator.ok()) return ReportStatus(kCmd, simulator.status());
  const TraceHeader header =
      sim::SimTraceHeader(*s, (*simulator)->allocator(), *text, (*simulator)->seed());
  analysis::MetricsBuilder metrics(header);
  tee.Add(&metrics);
  std::unique_ptr<TraceWriter> writer;
  if (!opt.output.empty()) {
    absl::StatusOr<std::unique_ptr<TraceWriter>> w = TraceWriter::Open(opt.output, header);
    if (!w.ok()) return ReportStatus(kCmd, w.status());
    writer = std::move(*w);
    tee.Add(writer.get());
  }
  observer.Configure(opt.maps == "none" ? nullptr : writer.get(), opt.maps == "phases",
                     (*simulator)->phases().size(), !opt.quiet && isatty(STDERR_FILENO) != 0);
  if (writer && opt.maps != "none") {
    // The state the run starts from (boot or --start-from), before any phase.
    if (absl::Status st = sim::EmitAllocatorPageblockMap((*simulator)->allocator(), *writer); !st.ok()) {
      return ReportStatus(kCmd, st);
    }
  }
  if (start_report && !opt.quiet) {
    std::printf("start state from %s\n%s", opt.start_from.c_str(),
                sim::FormatStartStateReport(*start_report, header.migratetype_names).c_str());
    for (const std::string& n : machine_notes) std::printf("  machine note: %s\n", n.c_str());
  }

  const absl::Status run = (*simulator)->Run();
  observer.Done();
  if (writer && opt.maps != "none" && observer.status().ok()) {
    // The final state, unless the last phase already wrote it.
    const auto& phases = (*simulator)->phases();
    const bool last_wrote = !phases.empty() && (opt.maps == "phases" ||
                                                std::holds_alternative<scenario::SnapshotOp>(phases.back().phase->op));
    if (!last_wrote || !run.ok()) {
      if (absl::Status st = sim::EmitAllocatorPageblockMap((*simulator)->allocator(), *writer); !st.ok()) {
        return ReportStatus(kCmd, st);
      }
    }
  }
  if (!observer.status().ok()) return ReportStatus(kCmd, observer.status());
  absl::Status closed;
  if (writer) closed = writer->Close();
  const analysis::TraceMetrics m = metrics.Finish();
  if (!opt.quiet) {
    std::printf("scenario %s (seed %llu, era %s, %zu phases)\n", s->name.c_str(),
                static_cast<unsigned long long>((*simulator)->seed()), header.kernel_era.c_str(),
                (*simulator)->phases().size());
    const std::vector<scenario::ExpandedPhase>& phases = (*simulator)->phases();
    for (const analysis::PhaseMetrics& p : m.phases) {
      if (p.index < 0) continue;  // the simulator emits nothing before its first phase
      const bool is_expect = static_cast<size_t>(p.index) < phases.size() &&
                             std::holds_alternative<scenario::ExpectOp>(phases[p.index].phase->op);
      if (is_expect) {
        // An expectation changes nothing; the state is the previous phase's.
        const bool failed = !run.ok() && static_cast<size_t>(p.index) + 1 == (*simulator)->next_phase();
        std::printf("phase %s: %s\n", p.label.c_str(), failed ? "FAILED" : "ok");
        continue;
      }
      PrintPhase(header, p);
    }
    std::printf("%llu expectation(s) passed\n",
                static_cast<unsigned long long>((*simulator)->expectations_passed()));
  }
  if (!run.ok()) return ReportStatus(kCmd, run);
  if (!closed.ok()) return ReportStatus(kCmd, closed);
  return kExitOk;
}

}  // namespace

FRAGLAB_COMMAND("sim", 40, [](CLI::App& app) -> CommandRunner {
  auto opt = std::make_shared<SimOptions>();
  CLI::App* cmd = app.add_subcommand(
      "sim", "Run a scenario on the simulated page allocator: trace, per-phase state, expectations");
  cmd->add_option("scenario", opt->scenario, "Scenario file (TOML)")->required();
  cmd->add_option("-o,--output", opt->output, "Write the trace to this file");
  opt->seed_option =
      cmd->add_option("--seed", opt->seed, "Seed for random choices (default: the scenario's seed)");
  cmd->add_flag("-q,--quiet", opt->quiet, "Print nothing but errors");
  cmd->add_option("--start-from", opt->start_from,
                  "Start from the first snapshot of this trace (fraglab snapshot [--map] -o, run, trace) "
                  "instead of the scenario's boot state; its machine replaces the scenario's");
  cmd->add_option("--maps", opt->maps,
                  "Pageblock maps written into the -o trace for 'fraglab map': none, snapshots (start, "
                  "snapshot phases, end; the default) or phases (after every phase)");
  return [opt]() {
    opt->seed_given = opt->seed_option->count() > 0;
    return RunSim(*opt);
  };
});

}  // namespace fraglab::cli
