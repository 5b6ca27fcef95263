#include "analysis/compare.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analysis/metrics.h"
#include "common/status.h"

namespace fraglab::analysis {

MetricDirection DirectionOf(const std::string& m) {
  if (absl::StrContains(m, "/fallbacks/") || absl::StrContains(m, "/deferred") ||
      absl::StrContains(m, "alloc_failures") || m == "trace/drops" ||
      absl::StrContains(m, "/direct_attempts")) {
    return MetricDirection::kHigherIsWorse;
  }
  if (absl::StrContains(m, "/probe/") || absl::StrContains(m, "/free_pageblocks_order9plus/")) {
    return MetricDirection::kLowerIsWorse;
  }
  if (absl::StrContains(m, "/free_blocks/")) {
    // Only pageblock-sized and larger free blocks are what fragmentation costs.
    if (absl::EndsWith(m, "/order9") || absl::EndsWith(m, "/order10")) {
      return MetricDirection::kLowerIsWorse;
    }
  }
  return MetricDirection::kNeutral;
}

absl::StatusOr<std::map<std::string, double>> LoadRunMetrics(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoStatus(errno, absl::StrCat("cannot open ", path));
  char first = 0;
  in >> first;  // skips whitespace
  if (first != '{') {
    ASSIGN_OR_RETURN(TraceMetrics m, ComputeTraceMetrics(path));
    return FlattenMetrics(m);
  }
  in.seekg(0);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  }
  const nlohmann::json* metrics = &j;
  if (j.contains("metrics")) metrics = &j["metrics"];
  if (!metrics->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": field 'metrics' must be an object of name -> number"));
  }
  std::map<std::string, double> out;
  for (auto it = metrics->begin(); it != metrics->end(); ++it) {
    if (!it.value().is_number()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": metric '", it.key(), "' is not a number"));
    }
    out[it.key()] = it.value().get<double>();
  }
  return out;
}

CompareResult CompareRuns(const std::vector<std::map<std::string, double>>& a,
                          const std::vector<std::map<std::string, double>>& b,
                          const CompareOptions& options) {
  CompareResult r;
  r.runs_a = a.size();
  r.runs_b = b.size();
  std::set<std::string> names;
  for (const auto* side : {&a, &b}) {
    for (const auto& run : *side) {
      for (const auto& [name, v] : run) {
        if (options.metric_filter.empty() || absl::StrContains(name, options.metric_filter)) {
          names.insert(name);
        }
      }
    }
  }
  for (const std::string& name : names) {
    MetricComparison c;
    c.name = name;
    c.direction = DirectionOf(name);
    std::vector<double> va, vb;
    for (const auto& run : a) {
      auto it = run.find(name);
      if (it == run.end()) {
        c.missing_in_a = true;
      } else {
        va.push_back(it->second);
      }
    }
    for (const auto& run : b) {
      auto it = run.find(name);
      if (it == run.end()) {
        c.missing_in_b = true;
      } else {
        vb.push_back(it->second);
      }
    }
    c.a = Summarize(va);
    c.b = Summarize(vb);
    c.test = WelchTTest(va, vb);
    const double diff = c.b.mean - c.a.mean;
    if (c.a.mean != 0) {
      c.change_pct = diff / std::fabs(c.a.mean) * 100.0;
    } else if (diff != 0) {
      c.change_pct = diff > 0 ? INFINITY : -INFINITY;
    }
    const bool same_everywhere = diff == 0 && c.a.stddev == 0 && c.b.stddev == 0;
    if (same_everywhere && !options.include_unchanged) continue;
    // With single runs there is no test: a change is never "significant".
    const bool enough = va.size() >= 2 && vb.size() >= 2;
    c.significant = enough && c.test.p_value < options.alpha &&
                    std::fabs(c.change_pct) >= options.threshold_pct &&
                    std::fabs(diff) >= options.min_abs_change;
    if (c.significant && c.direction != MetricDirection::kNeutral) {
      const bool worse = c.direction == MetricDirection::kHigherIsWorse ? diff > 0 : diff < 0;
      c.regression = worse;
      c.improvement = !worse;
    }
    r.regressions += c.regression;
    r.improvements += c.improvement;
    r.metrics.push_back(std::move(c));
  }
  return r;
}

namespace {

std::string FormatPct(double pct) {
  if (std::isinf(pct)) return pct > 0 ? "+inf%" : "-inf%";
  return absl::StrFormat("%+.1f%%", pct);
}

const char* DirectionName(MetricDirection d) {
  switch (d) {
    case MetricDirection::kHigherIsWorse:
      return "higher_is_worse";
    case MetricDirection::kLowerIsWorse:
      return "lower_is_worse";
    case MetricDirection::kNeutral:
      return "neutral";
  }
  return "neutral";
}

}  // namespace

std::string FormatCompareText(const CompareResult& r, const CompareOptions& options) {
  std::ostringstream out;
  out << absl::StrFormat("A: %zu run(s)   B: %zu run(s)   alpha %.3g   threshold %.1f%%\n",
                         r.runs_a, r.runs_b, options.alpha, options.threshold_pct);
  if (r.runs_a < 2 || r.runs_b < 2) {
    out << "note: fewer than 2 runs on a side: differences are shown but none can be "
           "significant (use --repeat or more files)\n";
  }
  size_t width = 6;
  for (const auto& c : r.metrics) width = std::max(width, c.name.size());
  width = std::min<size_t>(width, 64);
  out << absl::StrFormat("%-*s %12s %10s %12s %10s %9s %9s  %s\n", static_cast<int>(width),
                         "metric", "mean A", "sd A", "mean B", "sd B", "change", "p", "verdict");
  for (const auto& c : r.metrics) {
    std::string verdict = c.regression ? "REGRESSION" : c.improvement ? "improved"
                                                      : c.significant ? "changed" : "";
    if (c.missing_in_a || c.missing_in_b) {
      verdict += verdict.empty() ? "" : " ";
      verdict += c.missing_in_a ? "(missing in some A runs)" : "(missing in some B runs)";
    }
    std::string p = c.test.valid ? absl::StrFormat("%.3g", c.test.p_value) : "-";
    out << absl::StrFormat("%-*s %12.6g %10.4g %12.6g %10.4g %9s %9s  %s\n",
                           static_cast<int>(width), c.name, c.a.mean, c.a.stddev, c.b.mean,
                           c.b.stddev, FormatPct(c.change_pct), p, verdict);
  }
  out << absl::StrFormat("%zu metric(s) compared: %zu regression(s), %zu improvement(s)\n",
                         r.metrics.size(), r.regressions, r.improvements);
  return out.str();
}

nlohmann::json CompareToJson(const CompareResult& r, const CompareOptions& options) {
  nlohmann::json j;
  j["runs_a"] = r.runs_a;
  j["runs_b"] = r.runs_b;
  j["alpha"] = options.alpha;
  j["threshold_pct"] = options.threshold_pct;
  j["regressions"] = r.regressions;
  j["improvements"] = r.improvements;
  nlohmann::json ms = nlohmann::json::array();
  auto side = [](const Summary& s) {
    return nlohmann::json{{"n", s.n},         {"mean", s.mean},       {"stddev", s.stddev},
                          {"ci_low", s.ci_low}, {"ci_high", s.ci_high}, {"min", s.min},
                          {"max", s.max}};
  };
  for (const auto& c : r.metrics) {
    nlohmann::json m;
    m["name"] = c.name;
    m["direction"] = DirectionName(c.direction);
    m["a"] = side(c.a);
    m["b"] = side(c.b);
    m["diff"] = c.test.diff;
    m["diff_ci"] = {c.test.diff_ci_low, c.test.diff_ci_high};
    m["change_pct"] = std::isinf(c.change_pct) ? nlohmann::json(nullptr) : nlohmann::json(c.change_pct);
    m["t"] = c.test.t;
    m["df"] = c.test.df;
    m["p_value"] = c.test.p_value;
    m["test_valid"] = c.test.valid;
    m["significant"] = c.significant;
    m["regression"] = c.regression;
    m["improvement"] = c.improvement;
    ms.push_back(m);
  }
  j["metrics"] = ms;
  return j;
}

}  // namespace fraglab::analysis
