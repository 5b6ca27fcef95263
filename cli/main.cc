// fraglab: one binary, subcommands in the style of perf/bpftool. This file
// only parses options and dispatches; the work lives in the libraries.
#include <algorithm>
#include <cstdio>
#include <map>

#include "cli/command.h"
#include "common/version.h"

namespace fraglab::cli {

std::vector<CommandEntry>& Registry() {
  static std::vector<CommandEntry> registry;
  return registry;
}

int ReportStatus(const char* command, const absl::Status& status) {
  if (status.ok()) return kExitOk;
  std::fprintf(stderr, "fraglab %s: %s\n", command, std::string(status.message()).c_str());
  return kExitFailure;
}

}  // namespace fraglab::cli

int main(int argc, char** argv) {
  using namespace fraglab::cli;
  CLI::App app{
      "fraglab: make Linux physical-memory fragmentation reproducible, explainable and "
      "measurable.\nA generator and a simulator of the page allocator share one trace format "
      "and one eBPF tracker.",
      "fraglab"};
  app.set_version_flag("--version", std::string("fraglab ") + FRAGLAB_VERSION);
  app.require_subcommand(1);
  app.footer("Run 'fraglab <command> --help' for a command's options. Exit codes: 0 ok, "
             "1 failure, 2 usage error.");

  auto& registry = Registry();
  std::sort(registry.begin(), registry.end(), [](const CommandEntry& a, const CommandEntry& b) {
    return a.order != b.order ? a.order < b.order : std::string(a.name) < b.name;
  });
  std::map<std::string, CommandRunner> runners;
  for (const auto& entry : registry) runners[entry.name] = entry.setup(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  for (CLI::App* sub : app.get_subcommands()) {
    auto it = runners.find(sub->get_name());
    if (it != runners.end() && it->second) return it->second();
  }
  std::fprintf(stderr, "fraglab: no command given (see fraglab --help)\n");
  return kExitUsage;
}
