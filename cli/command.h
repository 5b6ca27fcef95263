// Subcommand registry for the fraglab binary. Each cli/cmd_<name>.cc
// registers itself with FRAGLAB_COMMAND; main.cc builds the CLI11 app from the
// registry in `order`, parses, and runs the chosen command's runner.
//
// Exit codes (all commands): 0 success, 1 failure (including bad input
// files), 2 usage error (bad flags; CLI11 parse errors).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace fraglab::cli {

using CommandRunner = std::function<int()>;
// Adds the subcommand (with its options bound to state the returned runner
// captures) to `app` and returns the runner.
using CommandSetup = std::function<CommandRunner(CLI::App& app)>;

struct CommandEntry {
  const char* name;
  int order;  // position in `fraglab --help`
  CommandSetup setup;
};

std::vector<CommandEntry>& Registry();

struct CommandRegistrar {
  CommandRegistrar(const char* name, int order, CommandSetup setup) {
    Registry().push_back({name, order, std::move(setup)});
  }
};

// Prints "fraglab <cmd>: <message>" to stderr and returns the exit code for
// `status` (0 for OK, 2 for a usage problem flagged by the caller, else 1).
int ReportStatus(const char* command, const absl::Status& status);

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

}  // namespace fraglab::cli

#define FRAGLAB_COMMAND_CONCAT_INNER(a, b) a##b
#define FRAGLAB_COMMAND_CONCAT(a, b) FRAGLAB_COMMAND_CONCAT_INNER(a, b)
#define FRAGLAB_COMMAND(name, order, setup)                             \
  static ::fraglab::cli::CommandRegistrar FRAGLAB_COMMAND_CONCAT(       \
      fraglab_command_registrar_, __LINE__)(name, order, setup)
