// fraglab scenario check FILE... | print FILE | list [--dir DIR]
// Validates scenario files, prints their canonical form, and lists the
// shipped scenarios (from the source tree's scenarios/ when the binary runs
// from a build directory inside it, else from the installed share dir).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/command.h"
#include "common/scenario.h"
#include "common/scenario_parser.h"
#include "common/scenario_printer.h"
#include "common/version.h"

namespace fraglab::cli {
namespace {

namespace fs = std::filesystem;
using scenario::Scenario;

struct ScenarioArgs {
  std::vector<std::string> files;
  std::string file;
  std::string dir;
};

// Parses `file`; on error prints the message (it names the file, line and
// field) to stderr and returns nothing.
std::optional<Scenario> ParseOrReport(const std::string& file) {
  absl::StatusOr<Scenario> s = scenario::ParseScenarioFile(file);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.status().message()).c_str());
    return std::nullopt;
  }
  return std::move(*s);
}

// Whether some phase, after repeats, runs only in the simulator
// (alloc/free/expect).
bool SimulatorOnly(const Scenario& s) {
  bool sim_only = false;
  for (const auto& e : scenario::Expand(s)) sim_only = sim_only || scenario::IsSimulatorOnly(e.phase->op);
  return sim_only;
}

bool HasTomlFiles(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".toml") return true;
  }
  return false;
}

// Where the shipped scenarios are: --dir, $FRAGLAB_SCENARIO_DIR, a
// scenarios/ directory next to or above the running binary (a build tree
// inside the source tree), then the installed FRAGLAB_DATADIR/scenarios.
std::vector<fs::path> ScenarioDirCandidates(const std::string& flag_dir) {
  std::vector<fs::path> out;
  if (!flag_dir.empty()) {
    out.emplace_back(flag_dir);
    return out;
  }
  if (const char* env = std::getenv("FRAGLAB_SCENARIO_DIR"); env && *env) out.emplace_back(env);
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path dir = exe.parent_path();
    for (int i = 0; i < 5 && !dir.empty(); ++i) {
      out.push_back(dir / "scenarios");
      if (dir == dir.root_path()) break;
      dir = dir.parent_path();
    }
  }
  out.push_back(fs::path(FRAGLAB_DATADIR) / "scenarios");
  return out;
}

int RunCheck(const ScenarioArgs& args) {
  int failed = 0;
  for (const std::string& file : args.files) {
    std::optional<Scenario> s = ParseOrReport(file);
    if (!s) {
      ++failed;
      continue;
    }
    std::printf("%s: ok: '%s', %llu phases after repeats%s\n", file.c_str(), s->name.c_str(),
                static_cast<unsigned long long>(scenario::ExpandedCount(s->phases)),
                SimulatorOnly(*s) ? ", simulator only (alloc/free/expect)" : "");
  }
  if (failed > 0) {
    std::fprintf(stderr, "fraglab scenario check: %d of %zu file(s) invalid\n", failed,
                 args.files.size());
    return kExitFailure;
  }
  return kExitOk;
}

int RunPrint(const ScenarioArgs& args) {
  std::optional<Scenario> s = ParseOrReport(args.file);
  if (!s) return kExitFailure;
  std::fputs(scenario::PrintScenario(*s).c_str(), stdout);
  return kExitOk;
}

int RunList(const ScenarioArgs& args) {
  fs::path dir;
  for (const fs::path& candidate : ScenarioDirCandidates(args.dir)) {
    if (HasTomlFiles(candidate)) {
      dir = candidate;
      break;
    }
  }
  if (dir.empty()) {
    std::string tried;
    for (const fs::path& c : ScenarioDirCandidates(args.dir)) absl::StrAppend(&tried, " ", c.string());
    std::fprintf(stderr,
                 "fraglab scenario list: no scenario files found (looked in:%s); use --dir or "
                 "FRAGLAB_SCENARIO_DIR\n",
                 tried.c_str());
    return kExitFailure;
  }
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec) && it->path().extension() == ".toml") files.push_back(it->path());
  }
  if (ec) {
    std::fprintf(stderr, "fraglab scenario list: cannot read %s: %s\n", dir.string().c_str(),
                 ec.message().c_str());
    return kExitFailure;
  }
  std::sort(files.begin(), files.end());
  std::printf("# scenarios in %s\n", dir.string().c_str());
  int failed = 0;
  for (const fs::path& file : files) {
    const std::string rel = fs::relative(file, dir, ec).string();
    std::optional<Scenario> s = ParseOrReport(file.string());
    if (!s) {
      ++failed;
      continue;
    }
    std::vector<std::string> lines = absl::StrSplit(s->description, '\n');
    std::printf("%-40s %s%s\n", rel.c_str(), SimulatorOnly(*s) ? "[sim only] " : "",
                lines.empty() ? "" : lines[0].c_str());
  }
  return failed > 0 ? kExitFailure : kExitOk;
}

CommandRunner SetupScenarioCommand(CLI::App& app) {
  auto args = std::make_shared<ScenarioArgs>();
  CLI::App* cmd = app.add_subcommand(
      "scenario", "Validate, print and list scenario files (docs/scenario-format.md)");
  cmd->require_subcommand(1);
  CLI::App* check = cmd->add_subcommand(
      "check", "Validate scenario files; prints every error with file:line:col and field; "
               "exit 1 if any file is invalid");
  check->add_option("FILE", args->files, "Scenario files (TOML)")->required();
  CLI::App* print = cmd->add_subcommand("print", "Print a scenario in canonical TOML form");
  print->add_option("FILE", args->file, "Scenario file (TOML)")->required();
  CLI::App* list = cmd->add_subcommand("list", "List the shipped scenarios with their descriptions");
  list->add_option("--dir", args->dir, "Directory to list instead of the shipped scenarios");
  return [args, check, print, list]() -> int {
    if (check->parsed()) return RunCheck(*args);
    if (print->parsed()) return RunPrint(*args);
    if (list->parsed()) return RunList(*args);
    std::fprintf(stderr, "fraglab scenario: give one of check, print, list\n");
    return kExitUsage;
  };
}

}  // namespace

FRAGLAB_COMMAND("scenario", 80, SetupScenarioCommand);

}  // namespace fraglab::cli
