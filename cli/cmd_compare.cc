// fraglab compare A... -- B...: regression comparison of two sets of runs.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "analysis/compare.h"
#include "cli/command.h"

namespace fraglab::cli {
namespace {

struct CompareFlags {
  CLI::App* sub = nullptr;  // its remaining() holds the runs (prefix-command mode)
  analysis::CompareOptions options;
  bool json = false;
};

int RunCompare(const CompareFlags& flags) {
  std::vector<std::string> a, b;
  bool in_b = false;
  for (const auto& f : flags.sub->remaining()) {
    if (f.size() > 2 && f[0] == '-' && f[1] == '-') {
      std::fprintf(stderr, "fraglab compare: option '%s' must come before the run files\n",
                   f.c_str());
      return kExitUsage;
    }
    if (f == "--") {
      if (in_b) {
        std::fprintf(stderr, "fraglab compare: '--' given twice\n");
        return kExitUsage;
      }
      in_b = true;
      continue;
    }
    (in_b ? b : a).push_back(f);
  }
  if (!in_b || a.empty() || b.empty()) {
    std::fprintf(stderr,
                 "fraglab compare: give the runs of A, then '--', then the runs of B "
                 "(e.g. fraglab compare a1.trace a2.trace -- b1.trace b2.trace)\n");
    return kExitUsage;
  }
  std::vector<std::map<std::string, double>> ma, mb;
  for (const auto* side : {&a, &b}) {
    for (const auto& path : *side) {
      auto m = analysis::LoadRunMetrics(path);
      if (!m.ok()) return ReportStatus("compare", m.status());
      (side == &a ? ma : mb).push_back(*std::move(m));
    }
  }
  analysis::CompareResult r = analysis::CompareRuns(ma, mb, flags.options);
  if (flags.json) {
    std::cout << analysis::CompareToJson(r, flags.options).dump(2) << "\n";
  } else {
    std::cout << analysis::FormatCompareText(r, flags.options);
  }
  if (r.regressions > 0) {
    std::fprintf(stderr, "fraglab compare: %zu significant regression(s)\n", r.regressions);
    return kExitFailure;
  }
  return kExitOk;
}

FRAGLAB_COMMAND("compare", 70, [](CLI::App& app) -> CommandRunner {
  auto flags = std::make_shared<CompareFlags>();
  CLI::App* sub = app.add_subcommand(
      "compare",
      "Compare two sets of runs (traces or --json summaries): per metric mean, standard "
      "deviation and 95% confidence interval per side, the change, and Welch's t-test. "
      "Exits 1 when a metric changed significantly in its bad direction by more than the "
      "threshold (a regression), 0 otherwise.");
  flags->sub = sub;
  // Everything after the first file is taken verbatim so that '--' can
  // separate the two sides; options therefore come first.
  sub->prefix_command();
  sub->footer("Usage: fraglab compare [OPTIONS] A-RUN... -- B-RUN...  (options before the runs)\n");
  sub->add_option("--alpha", flags->options.alpha, "Significance level (two-sided)")
      ->check(CLI::Range(1e-9, 0.5))
      ->capture_default_str();
  sub->add_option("--threshold", flags->options.threshold_pct,
                  "Smallest relative change, in percent of A's mean, that can be a regression")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--min-change", flags->options.min_abs_change,
                  "Smallest absolute change that can be a regression")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--metric", flags->options.metric_filter,
                  "Only metrics whose name contains this text (e.g. 'fallbacks/')");
  sub->add_flag("--all", flags->options.include_unchanged, "Also list metrics that never changed");
  sub->add_flag("--json", flags->json, "JSON output instead of the text table");
  return [flags] { return RunCompare(*flags); };
});

}  // namespace
}  // namespace fraglab::cli
