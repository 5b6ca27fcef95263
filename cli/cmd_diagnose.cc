// fraglab diagnose: reads buddyinfo, pagetypeinfo, zoneinfo, vmstat, meminfo
// and the vm tunables, optionally traces the allocator for D seconds, and
// prints findings with their evidence, the actions that apply and what to
// measure afterwards (analysis/diagnose.h). Text by default, --json for
// machines. Exit 0 when the diagnosis ran (whatever it found), 1 on failure,
// 2 on usage errors.
#include <csignal>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "analysis/diagnose.h"
#include "bpf/trace_summary.h"
#include "bpf/tracker.h"
#include "cli/command.h"
#include "common/event_sink.h"
#include "common/snapshot_machine.h"
#include "common/trace_file.h"
#include "common/units.h"

namespace fraglab::cli {
namespace {

struct DiagnoseOptions {
  bool json = false;
  std::string root = "/";
  std::string trace;         // duration ("30", "30s", "2m"); "" = no trace
  std::string trace_output;  // keep the recorded trace here
};

volatile sig_atomic_t g_diag_stop = 0;
void OnDiagStop(int sig) { g_diag_stop = sig; }

uint64_t MonoNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// A plain number means seconds; anything else goes through ParseDuration.
absl::StatusOr<uint64_t> TraceDurationNs(const std::string& text) {
  double secs = 0;
  if (absl::SimpleAtod(text, &secs)) {
    if (!(secs > 0)) return absl::InvalidArgumentError("must be positive");
    return static_cast<uint64_t>(secs * 1e9);
  }
  absl::StatusOr<absl::Duration> d = ParseDuration(text);
  if (!d.ok()) return d.status();
  if (*d <= absl::ZeroDuration()) return absl::InvalidArgumentError("must be positive");
  return static_cast<uint64_t>(absl::ToInt64Nanoseconds(*d));
}

// Records `duration_ns` of allocator events into `summary` (and the optional
// trace file). Returns the status that stopped it; FailedPrecondition when
// the machine cannot trace (not root, no BTF, no BPF in this build).
absl::Status RecordTrace(const snapshot::MachineSnapshot& before, uint64_t duration_ns, const std::string& output,
                         tracker::TraceSummaryBuilder& summary, TraceHeader& header) {
  if (absl::Status st = tracker::CheckPrerequisites(); !st.ok()) return st;
  header = snapshot::TraceHeaderFromSnapshot(before);
  header.created_unix_s = static_cast<uint64_t>(std::time(nullptr));
  header.extra["recorder"] = "fraglab diagnose";
  std::unique_ptr<TraceWriter> writer;
  if (!output.empty()) {
    auto w = TraceWriter::Open(output, header);
    if (!w.ok()) return w.status();
    writer = *std::move(w);
  }
  std::vector<EventSink*> sinks = {&summary};
  if (writer) sinks.push_back(writer.get());
  TeeSink tee(sinks);
  tracker::TrackerOptions topt;
  topt.snapshot_root = "/";
  auto tr = tracker::StartForMachine(topt, header, &tee);
  if (!tr.ok()) return tr.status();
  for (const std::string& note : (*tr)->Notes()) std::fprintf(stderr, "fraglab diagnose: %s\n", note.c_str());
  g_diag_stop = 0;
  auto old_int = std::signal(SIGINT, OnDiagStop);
  auto old_term = std::signal(SIGTERM, OnDiagStop);
  std::fprintf(stderr, "fraglab diagnose: tracing for %.1f s (Ctrl-C stops early)\n", duration_ns / 1e9);
  const uint64_t end = MonoNs() + duration_ns;
  absl::Status st;
  while (st.ok() && !g_diag_stop && MonoNs() < end) st = (*tr)->Poll(200);
  absl::Status stop = (*tr)->Stop();
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  if (st.ok()) st = stop;
  if (writer && st.ok()) st = writer->Close();
  if (st.ok() && (*tr)->stats().lost > 0) {
    std::fprintf(stderr, "fraglab diagnose: %llu events lost (ring full); fallback counts are lower bounds\n",
                 static_cast<unsigned long long>((*tr)->stats().lost));
  }
  return st;
}

int RunDiagnose(const DiagnoseOptions& opt) {
  const char* kCmd = "diagnose";
  uint64_t duration_ns = 0;
  if (!opt.trace.empty()) {
    absl::StatusOr<uint64_t> d = TraceDurationNs(opt.trace);
    if (!d.ok()) {
      std::fprintf(stderr, "fraglab diagnose: --trace '%s': %s\n", opt.trace.c_str(),
                   std::string(d.status().message()).c_str());
      return kExitUsage;
    }
    if (opt.root != "/") {
      std::fprintf(stderr, "fraglab diagnose: --trace traces this machine; it cannot be combined with --root\n");
      return kExitUsage;
    }
    duration_ns = *d;
  } else if (!opt.trace_output.empty()) {
    std::fprintf(stderr, "fraglab diagnose: --trace-output needs --trace D\n");
    return kExitUsage;
  }

  absl::StatusOr<snapshot::MachineSnapshot> first = snapshot::ReadMachineSnapshot(opt.root);
  if (!first.ok()) return ReportStatus(kCmd, first.status());
  diagnose::DiagnoseInput in;
  in.tunables = diagnose::ReadTunables(opt.root);

  snapshot::MachineSnapshot after;
  tracker::TraceSummaryBuilder summary;
  TraceHeader header;
  if (duration_ns > 0) {
    absl::Status st = RecordTrace(*first, duration_ns, opt.trace_output, summary, header);
    if (absl::IsFailedPrecondition(st)) {
      // No tracing here: say why, then diagnose from /proc over the same
      // interval (waiting keeps the counter deltas meaningful).
      in.trace_note = std::string(st.message());
      std::fprintf(stderr, "fraglab diagnose: cannot trace (%s); diagnosing from /proc over %.1f s instead\n",
                   in.trace_note.c_str(), duration_ns / 1e9);
      timespec ts{static_cast<time_t>(duration_ns / 1'000'000'000ull),
                  static_cast<long>(duration_ns % 1'000'000'000ull)};
      while (nanosleep(&ts, &ts) != 0) {
      }
    } else if (!st.ok()) {
      return ReportStatus(kCmd, st);
    } else {
      in.trace = &summary.summary();
      in.trace_header = &header;
    }
    absl::StatusOr<snapshot::MachineSnapshot> second = snapshot::ReadMachineSnapshot(opt.root);
    if (!second.ok()) return ReportStatus(kCmd, second.status());
    after = *std::move(second);
    in.before = &*first;
    in.now = &after;
  } else {
    in.now = &*first;
  }
  if (!in.now->pagetypeinfo_error.empty()) {
    std::fprintf(stderr, "fraglab diagnose: /proc/pagetypeinfo unavailable (%s); pageblock findings skipped\n",
                 in.now->pagetypeinfo_error.c_str());
  }
  const std::vector<diagnose::Finding> findings = diagnose::Diagnose(in);
  const std::string out =
      opt.json ? diagnose::FindingsJson(in, findings) + "\n" : diagnose::FindingsText(in, findings);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

}  // namespace

FRAGLAB_COMMAND("diagnose", 61, [](CLI::App& app) -> CommandRunner {
  auto opt = std::make_shared<DiagnoseOptions>();
  CLI::App* cmd = app.add_subcommand(
      "diagnose",
      "Findings about this machine's memory with their evidence: missing high-order memory per node, "
      "pageblocks lost to non-movable allocations, compaction failures, THP fallbacks, watermark boosts, "
      "slab growth, NUMA imbalance; each with the actions that apply and what to measure after.");
  cmd->add_flag("--json", opt->json, "Print one JSON object instead of text");
  cmd->add_option("--root", opt->root,
                  "Read <DIR>/proc/... and <DIR>/sys/... instead of this machine (captured files)")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--trace", opt->trace,
                  "Also trace the allocator for D (seconds, or e.g. 30s, 2m; needs root and BPF) and report "
                  "fallbacks by migratetype pair; counters become increases over that interval");
  cmd->add_option("--trace-output", opt->trace_output, "With --trace: keep the recorded trace in this file");
  return [opt]() { return RunDiagnose(*opt); };
});

}  // namespace fraglab::cli
