// Pictures of pageblocks: every pageblock of every zone as one cell, coloured
// by migratetype and lightened by how much of it is free. The one input is
// FL_EV_PAGEBLOCK_MAP records (bpf/fraglab_events.h), written for the real
// machine by `fraglab snapshot --map` and by any other producer of the schema,
// so the same code draws a real machine and a simulated one.
//
// Outputs: SVG text, PNG bytes (our own encoder over zlib's deflate), text for
// a terminal (one character per pageblock, ANSI colours on request) and a
// self-contained HTML page that steps through a sequence of maps.
//
// Entry points:
//   PageblockMapReader / ReadPageblockMaps(path)   records -> PageblockMap frames
//   RenderSvg, RenderPng, RenderTerminal, RenderHtmlSteps
//   CellColor                                      the colour rule, for tests and legends
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bpf/fraglab_events.h"
#include "common/event_sink.h"
#include "common/trace_file.h"

namespace fraglab::picture {

// One pageblock as recorded (fl_pageblock_entry).
struct Block {
  uint8_t migratetype = 0xff;  // source kernel numbering; 0xff unknown
  uint8_t flags = 0;           // FL_PB_*
  uint16_t free_pages = 0;     // 0..pages per block
};

// One zone's pageblocks, in pfn order from first_pfn.
struct ZoneBlocks {
  int nid = 0;
  int zone_idx = 0;
  std::string name;            // "Normal"; "zone<idx>" when the header does not name it
  uint64_t first_pfn = 0;
  std::vector<Block> blocks;
};

// One picture: all zones at one moment.
struct PageblockMap {
  std::string title;           // e.g. "snapshot 3 — phase 'fragment' — t=1.250 s"
  uint64_t ts_ns = 0;
  uint32_t pageblock_order = 9;
  uint32_t page_size = 4096;
  std::vector<std::string> migratetype_names;  // index = source kernel number
  std::vector<ZoneBlocks> zones;               // in the order first seen

  uint32_t PagesPerBlock() const { return 1u << pageblock_order; }
};

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

// Colour of a block: a fixed hue per migratetype *name* (Unmovable red,
// Movable green, Reclaimable cyan-blue, HighAtomic yellow, CMA purple,
// Isolate grey), mixed toward white by the free fraction (a fully used block
// is the full colour, a fully free one a pale tint, so free space reads as
// "light"). Unknown types (0xff: mostly memory that is not online) are a flat
// pale grey whatever the fraction.
Rgb CellColor(const std::string& migratetype_name, double free_fraction);

// Name of migratetype `mt` in `map` ("unknown" for 0xff or unnamed numbers).
std::string TypeName(const PageblockMap& map, uint8_t mt);

struct PictureOptions {
  int cells_per_row = 128;  // pageblocks per row of a zone (>= 8)
  int cell_px = 7;          // cell edge in pixels incl. a 1-px gap (>= 3)
};

// SVG document: title, legend (type colours; free-fraction ramp), and per
// zone a label "Node N zone NAME  pfn A-B  S MiB  K pageblocks" above rows
// of cells. Cells with FL_PB_MIXED get a dark corner mark; each cell has a
// <title> tooltip with pfn, type, free pages and flags. InvalidArgument for
// bad options.
[[nodiscard]] absl::StatusOr<std::string> RenderSvg(const PageblockMap& map,
                                                    const PictureOptions& options = {});

// The same layout as an 8-bit RGB PNG (labels in a built-in 5x7 pixel font,
// upper case). InvalidArgument for bad options; Internal when deflate fails.
[[nodiscard]] absl::StatusOr<std::string> RenderPng(const PageblockMap& map,
                                                    const PictureOptions& options = {});

struct TerminalOptions {
  int width = 100;     // characters per row of cells (>= 8)
  bool color = false;  // ANSI 256-colour backgrounds (callers pass isatty(1))
};

// Text: per zone a label line then rows of `width` characters, one per
// pageblock: the type's letter (U M R H C I, '?' unknown), upper case when
// less than half of the block is free, lower case when at least half is free
// ('*' after the letter is not used: one cell stays one character); with
// colour the background follows CellColor. A legend ends it.
std::string RenderTerminal(const PageblockMap& map, const TerminalOptions& options = {});

// Letter of a migratetype name in terminal maps ('U', 'M', 'R', 'H', 'C',
// 'I', '?').
char TypeLetter(const std::string& migratetype_name);

// One HTML file with every frame: a canvas redrawn by a small script from
// compact per-frame data, buttons first/prev/play/next/last, a slider, the
// frame's title, the legend, and per zone counts of pageblocks by type. No
// network access. InvalidArgument when `frames` is empty or options are bad.
[[nodiscard]] absl::StatusOr<std::string> RenderHtmlSteps(const std::vector<PageblockMap>& frames,
                                                          const PictureOptions& options = {});

// Pageblocks per migratetype name over all zones of `map` (sorted by name),
// for legends and tests.
std::vector<std::pair<std::string, uint64_t>> CountByType(const PageblockMap& map);

// Groups FL_EV_PAGEBLOCK_MAP records into frames. A frame is the run of map
// records sharing one timestamp; a record for a zone range already present in
// the current frame also starts a new frame (two maps taken within one clock
// tick). Phase-begin records (FL_EV_PHASE) name the frames that follow.
// Records of other kinds are ignored.
class PageblockMapReader final : public EventSink {
 public:
  explicit PageblockMapReader(const TraceHeader& header);

  // Adds one record. InvalidArgument for a malformed pageblock map (count
  // beyond the record, pfn not on a pageblock boundary, out-of-order pieces).
  [[nodiscard]] absl::Status Emit(const fl_record_header& rec) override;

  // Completed frames so far plus the one being built. Titles are
  // "map K" + the current phase + the time since the first record.
  std::vector<PageblockMap> TakeFrames();

 private:
  void CloseFrame();
  TraceHeader header_;
  std::vector<PageblockMap> frames_;
  PageblockMap current_;
  bool have_current_ = false;
  std::string phase_;
  std::string current_phase_;
  uint64_t first_ts_ = 0;
  bool have_first_ts_ = false;
};

// Reads a trace file and returns its pageblock-map frames (possibly none).
// Errors of the trace reader are passed on with the path.
[[nodiscard]] absl::StatusOr<std::vector<PageblockMap>> ReadPageblockMaps(const std::string& path,
                                                                          TraceHeader* header = nullptr);

// Appends FL_EV_PAGEBLOCK_MAP records for `zone` (split into pieces of at most
// FL_PB_MAP_MAX_ENTRIES) stamped with `ts_ns`. For tests and producers that
// hold a map in this form.
[[nodiscard]] absl::Status EmitZoneBlocks(const ZoneBlocks& zone, uint32_t pageblock_order,
                                          uint64_t ts_ns, EventSink& sink);

}  // namespace fraglab::picture
