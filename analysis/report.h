// `fraglab report`: plots (gnuplot, PNG and SVG) and one index.html that
// shows them beside the numbers, for one or more traces.
//
// Inputs and sections:
//   * every trace gets its own section: per-phase metrics, free memory per
//     order over time (a heatmap per zone, phase markers), fallbacks over
//     time by class and a migratetype-pair matrix per class, compaction
//     attempts/successes/failures per order, stall latency distributions,
//     pageblocks per migratetype over time;
//   * exactly two traces of which one is a kernel run and one a simulation
//     (what `fraglab validate` writes): a kernel-vs-simulator section, per
//     phase side by side;
//   * two sets (A -- B, as `fraglab compare` takes them), or several traces
//     otherwise: an overlay section where the runs are aligned on their
//     phase markers (x = phase), and for A -- B the compare table.
// Where a trace lacks the events a plot needs, the page says so in words and
// draws nothing.
//
// Building the files (BuildReportFiles) is pure and deterministic; writing
// (WriteReport) runs gnuplot in a temporary directory next to the output and
// renames it into place only when everything succeeded.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "analysis/report_timeline.h"

namespace fraglab::analysis {

struct ReportFiles {
  // Relative path -> contents: "index.html", "plots.gp", "data/*.dat".
  std::map<std::string, std::string> files;
  // Images plots.gp writes, relative paths ("plots/<name>.png" and ".svg").
  std::vector<std::string> images;
};

// The report's files for set `a` and, when non-empty, set `b` (comparison
// mode). InvalidArgument when `a` is empty. The same timelines give the same
// bytes (no clock, no host data beyond what the traces hold).
[[nodiscard]] absl::StatusOr<ReportFiles> BuildReportFiles(const std::vector<TraceTimeline>& a,
                                                           const std::vector<TraceTimeline>& b);

struct ReportOptions {
  std::string gnuplot = "gnuplot";  // program to run (looked up in PATH)
};

// Reads the traces, builds the files, renders the plots with gnuplot and
// moves the result to `out_dir` atomically: the directory is built as a
// sibling temporary and renamed; an existing `out_dir` is replaced only when
// it is empty or an earlier fraglab report (it holds index.html with our
// generator tag), else FailedPrecondition. Errors name the trace and record
// (reading), the gnuplot script line (rendering), or the path (writing).
// FailedPrecondition when gnuplot cannot be run.
[[nodiscard]] absl::Status WriteReport(const std::vector<std::string>& a,
                                       const std::vector<std::string>& b, const std::string& out_dir,
                                       const ReportOptions& options = {});

// Tag written into index.html's <meta name="generator"> (recognises a
// report directory that may be replaced).
inline constexpr char kReportGeneratorTag[] = "fraglab report";

}  // namespace fraglab::analysis
