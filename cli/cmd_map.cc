// fraglab map: pictures of every pageblock (colour = migratetype, lightness =
// free share) from the FL_EV_PAGEBLOCK_MAP records of a trace, or, with no
// trace, from this machine now (/proc/kpageflags via common/snapshot_map.h,
// root). PNG, SVG, a self-contained HTML step-through over all maps, or text
// for the terminal. The drawing lives in analysis/pageblock_picture.h.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analysis/pageblock_picture.h"
#include "cli/command.h"
#include "common/snapshot_machine.h"
#include "common/snapshot_map.h"

namespace fraglab::cli {
namespace {

struct MapOptions {
  std::string trace;
  std::string output;
  std::string root = "/";
  bool terminal = false;
  bool all = false;
  int snapshot = 0;  // 1-based; 0 = last
  std::string color = "auto";
  int width = 0;     // terminal: 0 = from $COLUMNS or 100
  int cells_per_row = 128;
  int cell_px = 7;
};

absl::Status WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::InvalidArgumentError(absl::StrCat("cannot open '", path, "' for writing"));
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("writing '", path, "' failed"));
  return absl::OkStatus();
}

// Frames of this machine now: the same records `fraglab snapshot --map -o`
// writes, read back through the picture reader, so live and recorded maps
// take one path.
absl::StatusOr<std::vector<picture::PageblockMap>> LiveFrames(const std::string& root) {
  absl::StatusOr<snapshot::MachineSnapshot> snap = snapshot::ReadMachineSnapshot(root);
  if (!snap.ok()) return snap.status();
  absl::StatusOr<snapshot::MachineMap> map = snapshot::ReadMachineMap(*snap, root);
  if (!map.ok()) return map.status();
  const TraceHeader header = snapshot::TraceHeaderFromSnapshot(*snap);
  picture::PageblockMapReader reader(header);
  if (absl::Status st = snapshot::EmitPageblockMapRecords(*map, reader); !st.ok()) return st;
  std::vector<picture::PageblockMap> frames = reader.TakeFrames();
  for (auto& f : frames) {
    f.title = absl::StrCat("this machine (", snap->kernel_release,
                           "), pageblock types estimated from /proc/kpageflags");
  }
  return frames;
}

std::string Numbered(const std::string& path, size_t index) {
  const size_t dot = path.rfind('.');
  const std::string stem = dot == std::string::npos ? path : path.substr(0, dot);
  const std::string ext = dot == std::string::npos ? "" : path.substr(dot);
  return absl::StrFormat("%s-%03d%s", stem, index + 1, ext);
}

int RunMap(const MapOptions& opt) {
  const char* kCmd = "map";
  absl::StatusOr<std::vector<picture::PageblockMap>> frames =
      opt.trace.empty() ? LiveFrames(opt.root) : picture::ReadPageblockMaps(opt.trace);
  if (!frames.ok()) return ReportStatus(kCmd, frames.status());
  if (frames->empty()) {
    std::fprintf(stderr,
                 "fraglab map: %s has no pageblock maps (FL_EV_PAGEBLOCK_MAP records); record them with "
                 "'fraglab snapshot --map -o %s'\n",
                 opt.trace.c_str(), opt.trace.c_str());
    return kExitFailure;
  }
  if (opt.snapshot < 0 || static_cast<size_t>(opt.snapshot) > frames->size()) {
    std::fprintf(stderr, "fraglab map: --snapshot %d: the trace has %zu maps (1..%zu)\n", opt.snapshot,
                 frames->size(), frames->size());
    return kExitUsage;
  }
  // Which frames: all, or the chosen one (default the last).
  std::vector<size_t> chosen;
  if (opt.all) {
    for (size_t i = 0; i < frames->size(); ++i) chosen.push_back(i);
  } else {
    chosen.push_back(opt.snapshot == 0 ? frames->size() - 1 : static_cast<size_t>(opt.snapshot - 1));
  }
  picture::PictureOptions po;
  po.cells_per_row = opt.cells_per_row;
  po.cell_px = opt.cell_px;

  if (!opt.output.empty()) {
    const bool html = absl::EndsWithIgnoreCase(opt.output, ".html") || absl::EndsWithIgnoreCase(opt.output, ".htm");
    const bool png = absl::EndsWithIgnoreCase(opt.output, ".png");
    const bool svg = absl::EndsWithIgnoreCase(opt.output, ".svg");
    if (!html && !png && !svg) {
      std::fprintf(stderr, "fraglab map: -o '%s': the name must end in .png, .svg or .html\n", opt.output.c_str());
      return kExitUsage;
    }
    if (html) {
      // The step-through shows every map unless one was picked.
      std::vector<picture::PageblockMap> sel;
      if (opt.snapshot != 0 && !opt.all) {
        sel.push_back((*frames)[chosen[0]]);
      } else {
        sel = *frames;
      }
      absl::StatusOr<std::string> doc = picture::RenderHtmlSteps(sel, po);
      if (!doc.ok()) return ReportStatus(kCmd, doc.status());
      if (absl::Status st = WriteFile(opt.output, *doc); !st.ok()) return ReportStatus(kCmd, st);
      std::fprintf(stderr, "fraglab map: wrote %s (%zu maps)\n", opt.output.c_str(), sel.size());
    } else {
      for (size_t i : chosen) {
        absl::StatusOr<std::string> img =
            png ? picture::RenderPng((*frames)[i], po) : picture::RenderSvg((*frames)[i], po);
        if (!img.ok()) return ReportStatus(kCmd, img.status());
        const std::string path = chosen.size() > 1 ? Numbered(opt.output, i) : opt.output;
        if (absl::Status st = WriteFile(path, *img); !st.ok()) return ReportStatus(kCmd, st);
        std::fprintf(stderr, "fraglab map: wrote %s (%s)\n", path.c_str(), (*frames)[i].title.c_str());
      }
    }
    if (!opt.terminal) return kExitOk;
  }
  picture::TerminalOptions to;
  to.color = opt.color == "always" || (opt.color == "auto" && isatty(STDOUT_FILENO));
  to.width = opt.width;
  if (to.width == 0) {
    const char* cols = std::getenv("COLUMNS");
    to.width = cols != nullptr && std::atoi(cols) >= 8 ? std::atoi(cols) : 100;
  }
  for (size_t i : chosen) {
    const std::string text = picture::RenderTerminal((*frames)[i], to);
    std::fwrite(text.data(), 1, text.size(), stdout);
    if (chosen.size() > 1) std::fputc('\n', stdout);
  }
  return kExitOk;
}

}  // namespace

FRAGLAB_COMMAND("map", 62, [](CLI::App& app) -> CommandRunner {
  auto opt = std::make_shared<MapOptions>();
  CLI::App* cmd = app.add_subcommand(
      "map",
      "Pictures of every pageblock of every zone, coloured by migratetype and lightened by its free "
      "share: from a trace's pageblock maps (fraglab snapshot --map -o, or any producer of "
      "FL_EV_PAGEBLOCK_MAP records), or of this machine now when no trace is given (root). "
      "PNG, SVG, an HTML step-through over all maps, or the terminal.");
  cmd->add_option("trace", opt->trace, "Trace file with pageblock maps (omit: this machine now)")
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", opt->output,
                  "Write a picture: NAME.png, NAME.svg (one map; with --all NAME-001.png ...) or NAME.html "
                  "(step-through of every map)");
  cmd->add_flag("--terminal", opt->terminal, "Also print the map(s) as text when -o is given");
  auto* snap = cmd->add_option("--snapshot", opt->snapshot, "Which map, 1-based (default: the last)")
                   ->check(CLI::PositiveNumber);
  cmd->add_flag("--all", opt->all, "Every map of the trace")->excludes(snap);
  cmd->add_option("--color", opt->color, "Terminal colours: auto (when stdout is a terminal), always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}));
  cmd->add_option("--width", opt->width, "Terminal: pageblocks per line (default $COLUMNS or 100)")
      ->check(CLI::Range(8, 100000));
  cmd->add_option("--cells-per-row", opt->cells_per_row, "Pictures: pageblocks per row (8..4096)")
      ->check(CLI::Range(8, 4096));
  cmd->add_option("--cell-px", opt->cell_px, "Pictures: cell size in pixels incl. a 1-px gap (3..64)")
      ->check(CLI::Range(3, 64));
  cmd->add_option("--root", opt->root, "Without a trace: read <DIR>/proc/... instead of /proc")
      ->check(CLI::ExistingDirectory);
  return [opt]() { return RunMap(*opt); };
});

}  // namespace fraglab::cli
