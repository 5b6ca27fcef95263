// fraglab sim: runs a scenario on the simulated page allocator
// (sim/scenario_sim.h), optionally writes the trace, and prints per phase
// what `validate` and `compare` look at: free blocks per order, pageblocks
// per migratetype, fallbacks by class and migratetype pair, probe results.
// Exit 1 when an `expect` phase fails (its message says what was expected
// and what the simulator has) or the scenario cannot be simulated.
#include <cstdio>
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
#include "common/proc_file.h"
#include "common/scenario_parser.h"
#include "common/trace_file.h"
#include "sim/scenario_sim.h"

namespace fraglab::cli {
namespace {

struct SimOptions {
  std::string scenario;
  std::string output;
  uint64_t seed = 0;
  bool seed_given = false;
  const CLI::Option* seed_option = nullptr;  // set while building the command
  bool quiet = false;
};

// Offers every record to each sink in turn; remembers the first error.
class FanOutSink final : public EventSink {
 public:
  void Add(EventSink* s) { sinks_.push_back(s); }
  [[nodiscard]] absl::Status Emit(const fl_record_header& rec) override {
    absl::Status first;
    for (EventSink* s : sinks_) {
      absl::Status st = s->Emit(rec);
      if (!st.ok() && first.ok()) first = st;
    }
    return first;
  }

 private:
  std::vector<EventSink*> sinks_;
};

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

  FanOutSink fan;
  sim::ScenarioSimulator::Options so;
  if (opt.seed_given) so.seed = opt.seed;
  so.sink = &fan;
  absl::StatusOr<std::unique_ptr<sim::ScenarioSimulator>> simulator = sim::ScenarioSimulator::Create(*s, so);
  if (!simulator.ok()) return ReportStatus(kCmd, simulator.status());
  const TraceHeader header =
      sim::SimTraceHeader(*s, (*simulator)->allocator(), *text, (*simulator)->seed());
  analysis::MetricsBuilder metrics(header);
  fan.Add(&metrics);
  std::unique_ptr<TraceWriter> writer;
  if (!opt.output.empty()) {
    absl::StatusOr<std::unique_ptr<TraceWriter>> w = TraceWriter::Open(opt.output, header);
    if (!w.ok()) return ReportStatus(kCmd, w.status());
    writer = std::move(*w);
    fan.Add(writer.get());
  }

  const absl::Status run = (*simulator)->Run();
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
  return [opt]() {
    opt->seed_given = opt->seed_option->count() > 0;
    return RunSim(*opt);
  };
});

}  // namespace fraglab::cli
