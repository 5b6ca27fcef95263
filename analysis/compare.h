// `fraglab compare A... -- B...`: two sets of runs (trace files or metrics
// summary JSON files), compared metric by metric with Welch's t-test. This is
// the regression benchmark: each metric has a direction (is an increase good
// or bad?) and a significant change in the bad direction larger than the
// threshold is a regression.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "analysis/stats.h"
#include "nlohmann/json.hpp"

namespace fraglab::analysis {

enum class MetricDirection {
  kHigherIsWorse,  // fallbacks, failures, drops, stalls
  kLowerIsWorse,   // free high-order blocks, probe success
  kNeutral,        // reported, never a regression
};

// Direction of a flat metric name (see FlattenMetrics).
MetricDirection DirectionOf(const std::string& metric);

struct CompareOptions {
  double alpha = 0.05;             // significance level of the two-sided test
  double threshold_pct = 5.0;      // minimum relative change (of |mean A|) to count
  double min_abs_change = 0;       // and minimum absolute change
  std::string metric_filter;       // RE2-free substring filter; empty: all metrics
  bool include_unchanged = false;  // list metrics that are identical in every run
};

struct MetricComparison {
  std::string name;
  MetricDirection direction = MetricDirection::kNeutral;
  Summary a;
  Summary b;
  WelchResult test;
  double change_pct = 0;  // (mean B - mean A) / |mean A| * 100; 0 if mean A is 0 and B is too
  bool significant = false;
  bool regression = false;
  bool improvement = false;
  bool missing_in_a = false;  // metric absent from some run of A (counted as absent, not 0)
  bool missing_in_b = false;
};

struct CompareResult {
  size_t runs_a = 0;
  size_t runs_b = 0;
  std::vector<MetricComparison> metrics;  // sorted by name
  size_t regressions = 0;
  size_t improvements = 0;
};

// One run's flat metrics: from a trace file (computed) or from a JSON summary
// written by `--json` of run/sim/validate/info (its "metrics" object). The
// kind is detected from the file's first bytes.
absl::StatusOr<std::map<std::string, double>> LoadRunMetrics(const std::string& path);

// Compares the runs; every run of a side should come from the same scenario.
CompareResult CompareRuns(const std::vector<std::map<std::string, double>>& a,
                          const std::vector<std::map<std::string, double>>& b,
                          const CompareOptions& options);

// Text table (one line per metric with a change, regressions marked) and JSON.
std::string FormatCompareText(const CompareResult& r, const CompareOptions& options);
nlohmann::json CompareToJson(const CompareResult& r, const CompareOptions& options);

}  // namespace fraglab::analysis
