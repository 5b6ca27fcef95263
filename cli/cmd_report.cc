// fraglab report TRACE... [-- TRACE...] -o DIR: plots and an HTML page
// (analysis/report.h). One set of traces gets a section per trace (and a
// kernel-vs-simulator section for a kernel + simulator pair, an overlay for
// several runs); two sets separated by '--' are compared (A vs B overlaid on
// phase markers, with the compare table).
#include <cstdio>
#include <string>
#include <vector>

#include "analysis/report.h"
#include "cli/command.h"

namespace fraglab::cli {
namespace {

struct ReportFlags {
  CLI::App* sub = nullptr;  // remaining() holds the traces (prefix-command mode)
  std::string output;
  std::string gnuplot = "gnuplot";
};

int RunReport(const ReportFlags& flags) {
  std::vector<std::string> a, b;
  std::string output = flags.output;
  bool in_b = false;
  const std::vector<std::string> args = flags.sub->remaining();
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& f = args[i];
    // -o may also follow the traces (prefix-command mode leaves it to us).
    if (f == "-o" || f == "--output") {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "fraglab report: %s needs a directory\n", f.c_str());
        return kExitUsage;
      }
      output = args[++i];
      continue;
    }
    if (f.rfind("--output=", 0) == 0) {
      output = f.substr(9);
      continue;
    }
    if (f == "--") {
      if (in_b) {
        std::fprintf(stderr, "fraglab report: '--' given twice\n");
        return kExitUsage;
      }
      in_b = true;
      continue;
    }
    if (f.size() > 1 && f[0] == '-') {
      std::fprintf(stderr, "fraglab report: unknown option '%s' (options: -o DIR, --gnuplot PROGRAM)\n", f.c_str());
      return kExitUsage;
    }
    (in_b ? b : a).push_back(f);
  }
  if (output.empty()) {
    std::fprintf(stderr, "fraglab report: give the output directory with -o DIR\n");
    return kExitUsage;
  }
  if (a.empty() || (in_b && b.empty())) {
    std::fprintf(stderr,
                 "fraglab report: give one or more traces, or two sets separated by '--' "
                 "(e.g. fraglab report -o out a1.fltrace a2.fltrace -- b1.fltrace b2.fltrace)\n");
    return kExitUsage;
  }
  analysis::ReportOptions options;
  options.gnuplot = flags.gnuplot;
  if (absl::Status st = analysis::WriteReport(a, b, output, options); !st.ok()) {
    return ReportStatus("report", st);
  }
  std::printf("%s/index.html\n", output.c_str());
  return kExitOk;
}

}  // namespace

FRAGLAB_COMMAND("report", 75, [](CLI::App& app) -> CommandRunner {
  auto flags = std::make_shared<ReportFlags>();
  CLI::App* sub = app.add_subcommand(
      "report",
      "Plots (PNG and SVG, drawn by gnuplot) and an index.html with per-phase tables for one or more traces; "
      "a kernel + simulator pair side by side; two sets (A -- B) overlaid on phase markers");
  flags->sub = sub;
  sub->prefix_command();
  sub->footer("Usage: fraglab report -o DIR TRACE... [-- TRACE...]\n"
              "The directory is written atomically; an existing one is replaced only if it is empty or an "
              "earlier report.\n");
  sub->add_option("-o,--output", flags->output, "Output directory (index.html, plots/, data/, plots.gp)");
  sub->add_option("--gnuplot", flags->gnuplot, "gnuplot program to run")->capture_default_str();
  return [flags] { return RunReport(*flags); };
});

}  // namespace fraglab::cli
