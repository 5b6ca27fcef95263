// fraglab run: the generator on this kernel. Parses a scenario, prepares a
// known start, runs the phases with the eBPF tracker attached (or, without
// BPF, with /proc snapshots only, saying what is missing), writes a trace and
// prints a per-phase summary. The work lives in gen/runner.h.
#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "bpf/tracker.h"
#include "cli/command.h"
#include "common/scenario_parser.h"
#include "common/snapshot_machine.h"
#include "common/trace_file.h"
#include "common/units.h"
#include "gen/runner.h"

namespace fraglab::cli {
namespace {

struct RunCliOptions {
  std::string scenario;
  std::string output = "fraglab-run.trace";
  std::string budget;
  std::string arena;
  std::string state_dir;
  bool no_prepare = false;
  bool no_tracker = false;
  bool all_events = false;
  bool quiet = false;
};

int RunRun(const RunCliOptions& opt) {
  const char* kCmd = "run";
  absl::StatusOr<scenario::Scenario> sc = scenario::ParseScenarioFile(opt.scenario);
  if (!sc.ok()) return ReportStatus(kCmd, sc.status());
  gen::RunOptions ro;
  ro.state_dir = opt.state_dir;
  ro.prepare = !opt.no_prepare;
  ro.progress = !opt.quiet;
  if (!opt.budget.empty()) {
    absl::StatusOr<Size> sz = ParseSize(opt.budget);
    if (!sz.ok() || sz->unit == SizeUnit::kPercent || sz->amount == 0) {
      std::fprintf(stderr, "fraglab run: --budget '%s': %s\n", opt.budget.c_str(),
                   sz.ok() ? "must be a positive size such as 1GiB"
                           : std::string(sz.status().message()).c_str());
      return kExitUsage;
    }
    absl::StatusOr<uint64_t> bytes = ResolveSizeBytes(*sz, 0);
    if (!bytes.ok()) return ReportStatus(kCmd, bytes.status());
    ro.budget_bytes = *bytes;
  }
  if (!opt.arena.empty()) {
    absl::StatusOr<Size> sz = ParseSize(opt.arena);
    if (!sz.ok() || sz->unit == SizeUnit::kPercent || sz->amount == 0) {
      std::fprintf(stderr, "fraglab run: --arena '%s': %s\n", opt.arena.c_str(),
                   sz.ok() ? "must be a positive size such as 3GiB"
                           : std::string(sz.status().message()).c_str());
      return kExitUsage;
    }
    absl::StatusOr<uint64_t> bytes = ResolveSizeBytes(*sz, 0);
    if (!bytes.ok()) return ReportStatus(kCmd, bytes.status());
    ro.arena_bytes = *bytes;
  }
  // Refuse what the generator cannot run before creating any file.
  if (absl::Status st = gen::CheckGeneratorCanRun(*sc); !st.ok()) return ReportStatus(kCmd, st);
  if (auto budget = gen::DecideBudget(*sc, ro); !budget.ok()) return ReportStatus(kCmd, budget.status());

  absl::StatusOr<TraceHeader> header = snapshot::TraceHeaderForThisMachine();
  if (!header.ok()) return ReportStatus(kCmd, header.status());
  header->scenario_name = sc->name;
  header->seed = sc->seed;
  {
    std::ifstream in(opt.scenario);
    std::stringstream ss;
    ss << in.rdbuf();
    header->scenario_text = ss.str();
  }
  header->extra["recorder"] = "fraglab run";
  absl::StatusOr<std::unique_ptr<TraceWriter>> writer = TraceWriter::Open(opt.output, *header);
  if (!writer.ok()) return ReportStatus(kCmd, writer.status());
  gen::RunSink sink(writer->get());

  std::unique_ptr<tracker::Tracker> tr;
  std::string tracker_note;
  if (opt.no_tracker) {
    tracker_note = "tracker disabled (--no-tracker)";
  } else {
    tracker::TrackerOptions topt;
    topt.all_events = opt.all_events;
    auto started = tracker::StartForMachine(topt, *header, &sink);
    if (started.ok()) {
      tr = std::move(*started);
      for (const std::string& n : tr->Notes()) {
        std::fprintf(stderr, "fraglab run: tracker note: %s\n", n.c_str());
      }
    } else {
      tracker_note = tracker::NoTrackerNote(started.status());
    }
  }
  if (!tr) {
    std::fprintf(stderr,
                 "fraglab run: %s; the trace holds /proc snapshots and phase markers only "
                 "(no fallback, page alloc/free or compaction events: fallback counts read 0)\n",
                 tracker_note.c_str());
  }

  // The tracker is polled on its own thread; the runner drains it before
  // each phase marker so events land in the right phase.
  gen::RunHooks hooks;
  hooks.sink = &sink;
  absl::StatusOr<gen::RunReport> report = absl::InternalError("the generator did not run");
  absl::Status poll_status = tracker::RunWhilePolling(tr.get(), [&](std::function<void()> drain) {
    hooks.drain = std::move(drain);
    report = gen::RunScenario(*sc, ro, hooks);
  });
  absl::Status close_status;
  if (tr) {
    close_status.Update(tr->Stop());
    if (tr->stats().lost > 0) {
      std::fprintf(stderr, "fraglab run: tracker lost %llu events (ring buffer full)\n",
                   static_cast<unsigned long long>(tr->stats().lost));
    }
  }
  close_status.Update((*writer)->Close());
  if (!report.ok()) {
    std::fprintf(stderr, "fraglab run: trace (partial) in %s\n", opt.output.c_str());
    return ReportStatus(kCmd, report.status());
  }
  std::string text = gen::FormatRunReport(*report);
  if (!tr) absl::StrAppend(&text, "note: ", tracker_note, "\n");
  std::fputs(text.c_str(), stdout);
  std::fprintf(stderr, "fraglab run: trace written to %s\n", opt.output.c_str());
  if (!poll_status.ok()) return ReportStatus(kCmd, poll_status);
  if (!close_status.ok()) return ReportStatus(kCmd, close_status);
  if (!report->stop_reason.empty()) {
    return ReportStatus(kCmd, absl::AbortedError(absl::StrCat("run stopped early: ", report->stop_reason,
                                                              " (everything was released and restored)")));
  }
  for (const auto& p : report->phases) {
    if (absl::StartsWith(p.outcome, "failed")) return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

FRAGLAB_COMMAND("run", 20, [](CLI::App& app) -> CommandRunner {
  auto opt = std::make_shared<RunCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "run", "Run a scenario on this kernel (generator + tracker), write a trace, summarise each phase");
  sub->add_option("scenario", opt->scenario, "Scenario file (scenarios/*.toml)")->required();
  sub->add_option("-o,--output", opt->output, "Trace file to write")->capture_default_str();
  sub->add_option("--budget", opt->budget,
                  "Memory budget (e.g. 1GiB); default: the scenario's [budget] (50% of MemAvailable)");
  sub->add_option("--arena", opt->arena,
                  "Leave only this much free memory to the buddy allocator for the run (the rest is "
                  "taken out first and given back at the end); default: the scenario's [budget] arena");
  sub->add_option("--state-dir", opt->state_dir,
                  "Restore journal and scratch files (default $FRAGLAB_STATE_DIR or /var/lib/fraglab)");
  sub->add_flag("--no-prepare", opt->no_prepare, "Skip drop caches / compact / settle before the start");
  sub->add_flag("--no-tracker", opt->no_tracker, "Do not attach the eBPF tracker (/proc snapshots only)");
  sub->add_flag("--all-events", opt->all_events, "Record every page alloc/free (large traces)");
  sub->add_flag("-q,--quiet", opt->quiet, "No per-phase progress on stderr");
  return [opt]() { return RunRun(*opt); };
});

}  // namespace fraglab::cli
