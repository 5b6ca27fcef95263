// fraglab restore: replays the generator's restore journal, undoing every
// setting, mount, loop device and file a run changed and did not restore
// (because it was killed or the machine crashed). Safe to run any time.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "gen/restore_journal.h"

namespace fraglab::cli {
namespace {

int RunRestore(const std::string& state_dir_opt) {
  const std::string dir = state_dir_opt.empty() ? gen::RestoreJournal::DefaultDir() : state_dir_opt;
  absl::StatusOr<gen::ReplayReport> r = gen::ReplayJournalAt(dir);
  if (!r.ok()) return ReportStatus("restore", r.status());
  if (r->entries == 0) {
    std::printf("nothing to restore (journal in %s is empty)\n", dir.c_str());
    return kExitOk;
  }
  for (const std::string& a : r->actions) std::printf("%s\n", a.c_str());
  std::printf("restored %zu of %zu journal entries\n", r->undone, r->entries);
  return kExitOk;
}

}  // namespace

FRAGLAB_COMMAND("restore", 21, [](CLI::App& app) -> CommandRunner {
  auto dir = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand(
      "restore", "Undo what an interrupted 'fraglab run' left changed (settings, mounts, loop devices)");
  sub->add_option("--state-dir", *dir,
                  "Where the journal is (default $FRAGLAB_STATE_DIR or /var/lib/fraglab)");
  return [dir]() { return RunRestore(*dir); };
});

}  // namespace fraglab::cli
