// `fraglab validate SCENARIO`: the same scenario on this kernel (generator +
// tracker, repeated N times) and in the simulator, compared phase by phase
// metric by metric with documented tolerances (docs/validate.md).
//
// Pieces, usable on their own:
//   ToleranceSet / ParseToleranceSpec / LoadToleranceFile   what "agree" means
//   CompareKernelAndSim        flat metrics (analysis/metrics.h) of the kernel
//                              runs vs the simulator -> one row per metric
//   MeasureNoise               the kernel's buddy state drifting while nothing
//                              of ours runs (page reporting, hotplug, others)
//   RunKernelSide              one generator + tracker run writing a trace
//   RunSimulatorSide           the simulator writing a trace
//   Validate                   all of it, as the command does
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "analysis/metrics.h"
#include "common/scenario.h"
#include "nlohmann/json.hpp"

namespace fraglab::analysis {

// A metric agrees when |sim - kernel| <= max(abs, rel * |kernel|).
struct Tolerance {
  double abs = 0;
  double rel = 0;  // fraction (0.1 = 10%)
};

// Metric classes with a tolerance each. A flat metric name maps to exactly
// one class (ClassOfMetric); metrics of no class are not validated.
//   free_blocks       free blocks of one order below the pageblock order
//   free_blocks_high  free blocks of order >= pageblock order (and the
//                     order-9-plus total): the number that matters for THP
//   free_pages        free pages of a zone
//   pageblocks        pageblocks of one migratetype
//   fallbacks         fallback events (per class, per pair, total)
//   compaction        compaction attempts, deferrals and end results
//   probe             probe success (obtained fraction)
class ToleranceSet {
 public:
  // The documented defaults (docs/validate.md).
  ToleranceSet();
  // InvalidArgument for an unknown class.
  [[nodiscard]] absl::Status Set(const std::string& cls, Tolerance t);
  const Tolerance& Get(const std::string& cls) const;
  const std::map<std::string, Tolerance>& all() const { return by_class_; }

 private:
  std::map<std::string, Tolerance> by_class_;
};

// The class of a flat metric name (see FlattenMetrics), or "" when it is not
// one `validate` compares. `pageblock_order` decides free_blocks vs _high.
std::string ClassOfMetric(const std::string& metric, uint32_t pageblock_order = 9);

// Applies "CLASS=ABS[,REL%]" (e.g. "fallbacks=10,50%", "pageblocks=2",
// "probe=0.05") to `set`; REL without '%' is a fraction; a REL left out keeps
// the class's current one. InvalidArgument naming the spec on error.
[[nodiscard]] absl::Status ParseToleranceSpec(const std::string& spec, ToleranceSet& set);

// Applies a TOML tolerance file: one table per class,
//   [free_blocks_high]
//   abs = 2
//   rel = 0.10
// InvalidArgument naming the file, line and key on error.
[[nodiscard]] absl::Status LoadToleranceFile(const std::string& path, ToleranceSet& set);

// One compared metric.
struct ValidateRow {
  std::string phase;     // "start", "0:fill", ...
  std::string metric;    // name without the phase ("free_blocks/node0_Normal/order9")
  std::string cls;       // tolerance class
  bool high_order = false;
  std::optional<double> kernel_mean;  // absent: no kernel run has it
  double kernel_min = 0, kernel_max = 0;
  size_t kernel_runs = 0;             // runs that have the metric
  std::optional<double> sim;          // absent: the simulator does not have it
  double diff = 0;                    // sim - kernel_mean when both exist
  double allowed = 0;                 // max(abs, rel * |kernel_mean|)
  bool compared = false;              // both sides have a value
  bool agree = false;                 // compared and within tolerance
};

struct ValidateComparison {
  std::vector<ValidateRow> rows;  // phase order, then metric name
  size_t compared = 0;
  size_t agreeing = 0;
  size_t disagreeing = 0;
  size_t one_sided = 0;           // metric on one side only (not part of the verdict)
};

// Compares the kernel runs' metrics with the simulator's. Per metric the
// kernel value is the mean over the runs that have it; the simulator agrees
// when it is within tolerance of that mean or within the runs' [min, max]
// widened by the tolerance. Event counts (fallbacks, compaction) missing on a
// side that recorded events count as 0; state metrics (free blocks,
// pageblocks, probes) missing on a side are one-sided and not judged.
// Event counts of the "start" pseudo-phase (the kernel run's preparation)
// are not compared, only its state.
// `kernel_has_events` / `sim_has_events`: whether each side recorded tracker
// events at all (without them event counts are unknown, not 0).
ValidateComparison CompareKernelAndSim(const std::vector<TraceMetrics>& kernel, const TraceMetrics& sim,
                                       const ToleranceSet& tolerances, bool kernel_has_events = true,
                                       bool sim_has_events = true);

// Background noise on this kernel over an idle window.
struct NoiseReport {
  double window_s = 0;
  std::vector<std::string> sources;       // "virtio-balloon free page reporting", "virtio-mem", ...
  int64_t free_pages_delta = 0;           // all zones
  uint64_t free_blocks_abs_change = 0;    // sum over zones and orders of |delta nr_free|
  int64_t high_order_delta = 0;           // free memory in blocks >= pageblock order, in pageblocks
  uint64_t pageblocks_retyped = 0;        // sum over zones and types of |delta pageblocks| / 2
  int64_t managed_pages_delta = 0;        // hotplug
  uint64_t pgalloc_delta = 0;             // pages allocated by anyone during the window
  uint64_t pgfree_delta = 0;
  std::string Summary() const;
};

// Snapshots this machine, waits `window_s` seconds doing nothing, snapshots
// again. FailedPrecondition when /proc cannot be read.
[[nodiscard]] absl::StatusOr<NoiseReport> MeasureNoise(double window_s);

struct KernelSideResult {
  std::string trace;
  bool tracker = false;     // the eBPF tracker was attached
  std::string note;         // why not, or tracker notes
  uint64_t lost_events = 0;
  std::string run_text;     // gen::FormatRunReport
  std::string stop_reason;  // "" when the run completed
};

// Runs `s` with the generator and the tracker (as `fraglab run` does) and
// writes `trace_path`. `scenario_text` goes into the trace header.
[[nodiscard]] absl::StatusOr<KernelSideResult> RunKernelSide(const scenario::Scenario& s,
                                                             const std::string& scenario_text,
                                                             const std::string& trace_path, bool progress);

struct SimSideResult {
  std::string trace;
  std::string start;        // where the simulator started ("the kernel run's start state ..." or boot)
  std::vector<std::string> start_notes;  // approximations of the start state (sim/start_state.h)
  std::string era;
  std::string stopped;      // "" when every phase ran; else the error that stopped it
};

// Runs the simulator on `s` and writes `trace_path`. When `kernel_trace` is
// given, the simulator starts from that run's first snapshot (machine, era of
// its release, free lists, pageblock types: sim/start_state.h); otherwise
// from the scenario's [machine] at boot. A phase the simulator cannot run
// stops it (SimSideResult::stopped), not an error.
[[nodiscard]] absl::StatusOr<SimSideResult> RunSimulatorSide(const scenario::Scenario& s,
                                                             const std::string& scenario_text,
                                                             const std::string& trace_path,
                                                             const std::string& kernel_trace);

struct ValidateOptions {
  std::string scenario;         // path
  std::string out_dir = "fraglab-validate";
  int repeat = 1;
  double noise_window_s = 3;    // longer than page reporting's 2 s period
  bool sim_only = false;        // force simulator only
  std::string report_dir;       // "" = no report
  ToleranceSet tolerances;
  bool progress = true;
};

struct ValidateResult {
  bool kernel_ran = false;
  std::string kernel_skipped;                 // why the kernel side did not run
  std::vector<KernelSideResult> kernel;
  std::vector<NoiseReport> noise;             // one per kernel run
  SimSideResult sim;
  ValidateComparison comparison;
  std::vector<std::string> notes;
  // 0 agree, 1 a metric disagrees or a side failed.
  bool ok = false;
};

// Everything the command does; prints nothing. Errors for bad input or an
// unusable output directory; a side that fails mid-run is reported in the
// result (notes, ok=false) with whatever it wrote.
[[nodiscard]] absl::StatusOr<ValidateResult> Validate(const ValidateOptions& options);

// The per-phase text table (kernel, sim, difference, tolerance, verdict),
// with the noise and the notes.
std::string FormatValidateText(const ValidateResult& r, const ToleranceSet& tolerances, bool all_rows);
nlohmann::json ValidateToJson(const ValidateResult& r, const ToleranceSet& tolerances);

}  // namespace fraglab::analysis
