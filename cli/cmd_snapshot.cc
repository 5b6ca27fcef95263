// fraglab snapshot: this machine's buddy allocator state now, per node and
// zone (free blocks by order and migratetype, pageblocks per type,
// watermarks, the kernel's fragmentation indices). Text by default, --json
// for machines, -o appends FL_EV_SNAPSHOT_ZONE + FL_EV_COUNTERS records to a
// trace (created if missing).
#include <cstdio>
#include <ctime>
#include <string>

#include "cli/command.h"
#include "common/snapshot_machine.h"
#include "common/snapshot_render.h"
#include "common/trace_file.h"

namespace fraglab::cli {
namespace {

struct SnapshotOptions {
  bool json = false;
  std::string output;
  std::string root = "/";
};

int RunSnapshot(const SnapshotOptions& opt) {
  absl::StatusOr<snapshot::MachineSnapshot> snap = snapshot::ReadMachineSnapshot(opt.root);
  if (!snap.ok()) return ReportStatus("snapshot", snap.status());
  if (!snap->pagetypeinfo_error.empty()) {
    std::fprintf(stderr,
                 "fraglab snapshot: per-migratetype data unavailable (%s); /proc/pagetypeinfo is "
                 "readable by root only. Showing buddyinfo/zoneinfo data.\n",
                 snap->pagetypeinfo_error.c_str());
  }
  if (!opt.output.empty()) {
    TraceHeader header = snapshot::TraceHeaderFromSnapshot(*snap);
    header.created_unix_s = static_cast<uint64_t>(std::time(nullptr));
    std::string note;
    auto writer = TraceWriter::OpenAppend(opt.output, header, {}, &note);
    if (!writer.ok()) return ReportStatus("snapshot", writer.status());
    if (!note.empty()) std::fprintf(stderr, "fraglab snapshot: %s: %s\n", opt.output.c_str(), note.c_str());
    absl::Status st = snapshot::EmitSnapshotRecords(*snap, **writer);
    if (st.ok()) st = (*writer)->Close();
    if (!st.ok()) return ReportStatus("snapshot", st);
  }
  const std::string text = opt.json ? snapshot::SnapshotJson(*snap) + "\n" : snapshot::SnapshotText(*snap);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kExitOk;
}

}  // namespace

FRAGLAB_COMMAND("snapshot", 60, [](CLI::App& app) -> CommandRunner {
  auto opt = std::make_shared<SnapshotOptions>();
  CLI::App* cmd = app.add_subcommand(
      "snapshot",
      "Print this machine's free memory per node/zone: free blocks by order and migratetype, "
      "pageblocks per migratetype, watermarks, and the kernel's unusable-free-space and "
      "fragmentation indices per order.");
  cmd->add_flag("--json", opt->json, "Print one JSON object instead of text");
  cmd->add_option("-o,--output", opt->output,
                  "Append a snapshot record set to this trace file (created if missing)");
  cmd->add_option("--root", opt->root,
                  "Read <DIR>/proc/... instead of /proc (captured files, e.g. tests/fixtures/proc/6.1)")
      ->check(CLI::ExistingDirectory);
  return [opt]() { return RunSnapshot(*opt); };
});

}  // namespace fraglab::cli
