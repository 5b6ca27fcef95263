// fraglab replay: drives the simulator, built from a kernel trace's first
// snapshot, with the page allocations and frees the kernel recorded, and
// compares the fallbacks both made (sim/replay.h). Text or --json to stdout;
// the replay's own duration and its ratio to the trace's time span go to
// the output too (the benchmark reads them).
#include <sys/resource.h>

#include <cstdio>
#include <ctime>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "common/trace_file.h"
#include "common/trace_records.h"
#include "nlohmann/json.hpp"
#include "sim/replay.h"

namespace fraglab::cli {
namespace {

struct ReplayOptions {
  std::string trace;
  bool json = false;
  bool check = false;
};

double MonotonicSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// User + system CPU seconds of this process so far: on a loaded machine the
// wall clock also counts other processes' turns.
double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

nlohmann::json FallbacksJson(const TraceHeader& h, const sim::ReplayFallbacks& f) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [k, n] : f) {
    const auto& [cls, a, fb] = k;
    out.push_back({{"class", ExtfragClassName(static_cast<uint32_t>(cls))},
                   {"alloc_migratetype", MigratetypeName(h, a)},
                   {"fallback_migratetype", MigratetypeName(h, fb)},
                   {"count", n}});
  }
  return out;
}

nlohmann::json ResultJson(const sim::ReplayResult& r, double seconds, double cpu_seconds) {
  const TraceHeader& h = r.header;
  nlohmann::json j;
  j["kernel_release"] = h.kernel_release;
  j["kernel_era"] = h.kernel_era;
  j["records"] = r.records;
  j["trace_span_ns"] = r.span_ns;
  j["replay_seconds"] = seconds;
  j["replay_cpu_seconds"] = cpu_seconds;
  j["speedup"] = seconds > 0 ? static_cast<double>(r.span_ns) / 1e9 / seconds : 0.0;
  j["speedup_cpu"] = cpu_seconds > 0 ? static_cast<double>(r.span_ns) / 1e9 / cpu_seconds : 0.0;
  nlohmann::json start;
  start["from_map"] = r.start.from_map;
  start["free_block_order_diff"] = r.start.FreeBlockOrderDiff();
  start["pageblock_type_agreement"] = r.start.PageblockTypeAgreement();
  nlohmann::json zones = nlohmann::json::array();
  for (const sim::ZoneAgreement& z : r.start.zones) {
    nlohmann::json zj;
    zj["zone"] = ZoneLabelByIndex(h, z.nid, z.zone_idx);
    zj["recorded_nr_free"] = z.recorded_nr_free;
    zj["sim_nr_free"] = z.sim_nr_free;
    zj["recorded_pageblocks"] = z.recorded_pageblocks;
    zj["sim_pageblocks"] = z.sim_pageblocks;
    zj["free_blocks_off_type"] = z.free_blocks_off_type;
    zj["free_blocks_unplaced"] = z.free_blocks_unplaced;
    zj["pageblocks_unassigned"] = z.pageblocks_unassigned;
    zj["recorded_wmark_min_low_high"] = {z.recorded_wmark[0], z.recorded_wmark[1], z.recorded_wmark[2]};
    zj["sim_wmark_min_low_high"] = {z.sim_wmark[0], z.sim_wmark[1], z.sim_wmark[2]};
    if (z.map_blocks > 0) {
      zj["map_blocks"] = z.map_blocks;
      zj["map_type_equal"] = z.map_type_equal;
      zj["map_free_abs_diff"] = z.map_free_abs_diff;
    }
    zones.push_back(zj);
  }
  start["zones"] = zones;
  start["notes"] = r.start.notes;
  start["machine_notes"] = r.machine_notes;
  j["start_state"] = start;
  j["allocs_replayed"] = r.allocs_replayed;
  j["allocs_sim_failed"] = r.allocs_sim_failed;
  j["frees_replayed"] = r.frees_replayed;
  j["allocs_with_fallback"] = r.allocs_with_fallback;
  j["allocs_fallback_agree"] = r.allocs_fallback_agree;
  j["kernel_extfrag_events"] = r.kernel_extfrag_events;
  j["sim_extfrag_events"] = r.sim_extfrag_events;
  j["kernel_fallbacks"] = FallbacksJson(h, r.kernel_fallbacks);
  j["sim_fallbacks"] = FallbacksJson(h, r.sim_fallbacks);
  if (r.first_divergence) {
    const sim::ReplayDivergence& d = *r.first_divergence;
    j["first_divergence"] = {{"record_index", d.record_index},
                             {"ts_ns", d.ts_ns},
                             {"cpu", d.cpu},
                             {"order", d.order},
                             {"gfp", d.gfp},
                             {"kernel", d.kernel_did},
                             {"sim", d.sim_did}};
  } else {
    j["first_divergence"] = nullptr;
  }
  nlohmann::json snaps = nlohmann::json::array();
  for (const sim::ReplaySnapshotCheck& c : r.snapshots) {
    snaps.push_back({{"record_index", c.record_index},
                     {"ts_ns", c.ts_ns},
                     {"zone", ZoneLabelByIndex(h, c.nid, c.zone_idx)},
                     {"kernel_nr_free", c.kernel_nr_free},
                     {"sim_nr_free", c.sim_nr_free},
                     {"untraced_free_pages", c.untraced_free_pages}});
  }
  j["snapshots"] = snaps;
  nlohmann::json unexplained = nlohmann::json::object();
  for (const auto& [kind, n] : r.unexplained) unexplained[kind] = n;
  j["unexplained"] = unexplained;
  return j;
}

int RunReplay(const ReplayOptions& opt) {
  const char* kCmd = "replay";
  absl::StatusOr<std::unique_ptr<TraceReader>> reader = TraceReader::Open(opt.trace);
  if (!reader.ok()) return ReportStatus(kCmd, reader.status());
  const TraceHeader& header = (*reader)->header();
  if (header.simulated) {
    std::fprintf(stderr, "fraglab replay: note: %s is a simulated trace; replaying it compares the model with itself\n",
                 opt.trace.c_str());
  }
  const double t0 = MonotonicSeconds();
  const double c0 = CpuSeconds();
  sim::ReplayOptions ro;
  ro.check_invariants = opt.check;
  sim::TraceReplayer replayer(header, ro);
  for (;;) {
    absl::StatusOr<const fl_record_header*> rec = (*reader)->Next();
    if (!rec.ok()) return ReportStatus(kCmd, rec.status());
    if (*rec == nullptr) break;
    if (absl::Status st = replayer.Emit(**rec); !st.ok()) {
      return ReportStatus(kCmd, absl::Status(st.code(), absl::StrCat(opt.trace, ": ", st.message())));
    }
  }
  if ((*reader)->truncated()) {
    std::fprintf(stderr, "fraglab replay: note: %s: %s; replayed what was readable\n", opt.trace.c_str(),
                 (*reader)->truncation_note().c_str());
  }
  absl::StatusOr<sim::ReplayResult> result = replayer.Finish();
  if (!result.ok()) {
    return ReportStatus(kCmd, absl::Status(result.status().code(),
                                           absl::StrCat(opt.trace, ": ", result.status().message())));
  }
  const double seconds = MonotonicSeconds() - t0;
  const double cpu_seconds = CpuSeconds() - c0;
  if (opt.json) {
    std::printf("%s\n", ResultJson(*result, seconds, cpu_seconds).dump(2).c_str());
  } else {
    std::printf("%s", sim::FormatReplayResult(*result).c_str());
    const double span = static_cast<double>(result->span_ns) / 1e9;
    std::printf("replayed in %.3f s (%.3f s of CPU); the kernel took %.3f s (%.0fx, %.0fx by CPU time)\n", seconds,
                cpu_seconds, span, seconds > 0 ? span / seconds : 0.0, cpu_seconds > 0 ? span / cpu_seconds : 0.0);
  }
  return kExitOk;
}

}  // namespace

FRAGLAB_COMMAND("replay", 45, [](CLI::App& app) -> CommandRunner {
  auto opt = std::make_shared<ReplayOptions>();
  CLI::App* cmd = app.add_subcommand(
      "replay", "Drive the simulator with a kernel trace's allocations and frees; compare their fallbacks");
  cmd->add_option("trace", opt->trace, "Trace recorded with 'fraglab trace --all-events' (or run)")->required();
  cmd->add_flag("--json", opt->json, "Print the comparison as JSON");
  cmd->add_flag("--check", opt->check, "Check the model's invariants after every operation (slow)");
  return [opt]() { return RunReplay(*opt); };
});

}  // namespace fraglab::cli
