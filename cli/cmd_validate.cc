// fraglab validate SCENARIO: the scenario on this kernel (generator +
// tracker, --repeat N times) and in the simulator, per phase kernel vs sim vs
// difference with tolerances; exit 1 when a metric disagrees
// (analysis/validate.h, docs/validate.md).
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "analysis/validate.h"
#include "cli/command.h"

namespace fraglab::cli {
namespace {

struct ValidateFlags {
  analysis::ValidateOptions options;
  std::vector<std::string> tolerance_specs;
  std::string tolerance_file;
  bool json = false;
  bool all = false;
  bool quiet = false;
};

int RunValidate(ValidateFlags& flags) {
  // A file first, then single flags on top of it.
  if (!flags.tolerance_file.empty()) {
    if (absl::Status st = analysis::LoadToleranceFile(flags.tolerance_file, flags.options.tolerances); !st.ok()) {
      std::fprintf(stderr, "fraglab validate: %s\n", std::string(st.message()).c_str());
      return kExitUsage;
    }
  }
  for (const std::string& spec : flags.tolerance_specs) {
    if (absl::Status st = analysis::ParseToleranceSpec(spec, flags.options.tolerances); !st.ok()) {
      std::fprintf(stderr, "fraglab validate: %s\n", std::string(st.message()).c_str());
      return kExitUsage;
    }
  }
  flags.options.progress = !flags.quiet;
  absl::StatusOr<analysis::ValidateResult> r = analysis::Validate(flags.options);
  if (!r.ok()) return ReportStatus("validate", r.status());
  if (flags.json) {
    std::cout << analysis::ValidateToJson(*r, flags.options.tolerances).dump(2) << "\n";
  } else {
    std::cout << analysis::FormatValidateText(*r, flags.options.tolerances, flags.all);
  }
  if (!flags.options.report_dir.empty() && r->ok) {
    std::fprintf(stderr, "fraglab validate: report in %s/index.html\n", flags.options.report_dir.c_str());
  }
  return r->ok ? kExitOk : kExitFailure;
}

}  // namespace

FRAGLAB_COMMAND("validate", 45, [](CLI::App& app) -> CommandRunner {
  auto flags = std::make_shared<ValidateFlags>();
  CLI::App* sub = app.add_subcommand(
      "validate",
      "Run a scenario on this kernel (generator + tracker) and in the simulator; per phase kernel vs sim vs "
      "difference with tolerances; exit 1 when a metric disagrees. Simulator only (with a note) without root "
      "or BPF.");
  sub->add_option("scenario", flags->options.scenario, "Scenario file (scenarios/*.toml)")->required();
  sub->add_option("-o,--output", flags->options.out_dir, "Directory for kernel-N.fltrace and sim.fltrace")
      ->capture_default_str();
  sub->add_option("--repeat", flags->options.repeat, "Kernel runs (their spread is shown)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  sub->add_option("--tolerance", flags->tolerance_specs,
                  "CLASS=ABS[,REL%] (classes: free_blocks, free_blocks_high, free_pages, pageblocks, fallbacks, "
                  "compaction, probe); repeatable")
      ->allow_extra_args(false);  // one value per --tolerance, so the scenario may follow
  sub->add_option("--tolerance-file", flags->tolerance_file, "TOML file with [CLASS] abs = .. rel = .. tables");
  sub->add_option("--report", flags->options.report_dir, "Also write the HTML report (fraglab report) here");
  sub->add_option("--noise-window", flags->options.noise_window_s,
                  "Seconds of idle measurement of the kernel's own buddy changes before each run")
      ->check(CLI::Range(0.0, 60.0))
      ->capture_default_str();
  sub->add_flag("--sim-only", flags->options.sim_only, "Do not run the kernel side");
  sub->add_flag("--all", flags->all, "List every metric, also those zero on both sides");
  sub->add_flag("--json", flags->json, "JSON output");
  sub->add_flag("-q,--quiet", flags->quiet, "No per-phase progress of the kernel run on stderr");
  return [flags] { return RunValidate(*flags); };
});

}  // namespace fraglab::cli
