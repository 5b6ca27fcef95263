// fraglab snapshot: this machine's buddy allocator state now, per node and
// zone (free blocks by order and migratetype, pageblocks per type,
// watermarks, the kernel's fragmentation indices). Text by default, --json
// for machines, -o appends FL_EV_SNAPSHOT_ZONE + FL_EV_COUNTERS records to a
// trace (created if missing). --map adds the per-pageblock map
// (common/snapshot_map.h).
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>

#include "cli/command.h"
#include <unistd.h>

#include "common/snapshot_machine.h"
#include "common/snapshot_map.h"
#include "common/snapshot_render.h"
#include "common/trace_file.h"

namespace fraglab::cli {
namespace {

struct SnapshotOptions {
  bool json = false;
  std::string output;
  std::string root = "/";
  bool map = false;
  std::string color = "auto";
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
  std::optional<snapshot::MachineMap> map;
  if (opt.map) {
    auto m = snapshot::ReadMachineMap(*snap, opt.root);
    if (!m.ok()) return ReportStatus("snapshot", m.status());
    map = std::move(*m);
  }
  if (!opt.output.empty()) {
    TraceHeader header = snapshot::TraceHeaderFromSnapshot(*snap);
    header.created_unix_s = static_cast<uint64_t>(std::time(nullptr));
    std::string note;
    auto writer = TraceWriter::OpenAppend(opt.output, header, {}, &note);
    if (!writer.ok()) return ReportStatus("snapshot", writer.status());
    if (!note.empty()) std::fprintf(stderr, "fraglab snapshot: %s: %s\n", opt.output.c_str(), note.c_str());
    absl::Status st = snapshot::EmitSnapshotRecords(*snap, **writer);
    if (st.ok() && map) st = snapshot::EmitPageblockMapRecords(*map, **writer);
    if (st.ok()) st = (*writer)->Close();
    if (!st.ok()) return ReportStatus("snapshot", st);
  }
  std::string text;
  if (map) {
    const bool color = opt.color == "always" || (opt.color == "auto" && ::isatty(STDOUT_FILENO));
    text = opt.json ? snapshot::MapJson(*map) + "\n" : snapshot::MapText(*map, color);
  } else {
    text = opt.json ? snapshot::SnapshotJson(*snap) + "\n" : snapshot::SnapshotText(*snap);
  }
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
  cmd->add_flag("--map", opt->map,
                "Instead of the order tables, map every pageblock from /proc/kpageflags (root): "
                "page classes, free blocks reconstructed vs buddyinfo, estimated pageblock types vs "
                "pagetypeinfo; with -o also FL_EV_PAGEBLOCK_MAP records; with --json the map as JSON");
  cmd->add_option("--color", opt->color, "Colour the map: auto (when stdout is a terminal), always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}));
  return [opt]() { return RunSnapshot(*opt); };
});

}  // namespace fraglab::cli
