#include "analysis/pageblock_picture.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analysis/png_writer.h"
#include "common/trace_records.h"
#include "nlohmann/json.hpp"

namespace fraglab::picture {
namespace {

// ---- colours -------------------------------------------------------------

// Blocks of unknown type are mostly memory that is not online (holes,
// unplugged virtio-mem ranges): drawn as a flat pale grey so they recede
// instead of dominating the picture.
constexpr Rgb kUnknownColor = {232, 232, 236};

Rgb BaseColor(const std::string& name) {
  if (name == "Unmovable") return {200, 30, 30};
  if (name == "Movable") return {30, 150, 50};
  if (name == "Reclaimable") return {20, 130, 200};
  if (name == "HighAtomic") return {215, 180, 0};
  if (name == "CMA") return {140, 50, 180};
  if (name == "Isolate") return {110, 110, 110};
  return kUnknownColor;
}

// How far a fully free block is mixed toward white: not all the way, so a
// free block keeps a visible tint of its type.
constexpr double kMaxLighten = 0.82;

std::string Hex(Rgb c) { return absl::StrFormat("#%02x%02x%02x", c.r, c.g, c.b); }

double FreeFraction(const Block& b, uint32_t pages_per_block) {
  return std::min(1.0, static_cast<double>(b.free_pages) / static_cast<double>(pages_per_block));
}

// Types that appear in the map, in kernel-number order, plus "unknown" if any.
std::vector<std::string> PresentTypes(const PageblockMap& map) {
  std::vector<bool> seen(256, false);
  for (const auto& z : map.zones)
    for (const auto& b : z.blocks) seen[b.migratetype] = true;
  std::vector<std::string> out;
  for (size_t i = 0; i < map.migratetype_names.size() && i < 255; ++i) out.push_back(map.migratetype_names[i]);
  bool unknown = seen[255];
  for (size_t i = map.migratetype_names.size(); i < 255; ++i) unknown = unknown || seen[i];
  if (unknown) out.push_back("unknown");
  return out;
}

uint64_t MiB(uint64_t pages, uint32_t page_size) { return pages * page_size >> 20; }

std::string ZoneLabel(const PageblockMap& map, const ZoneBlocks& z) {
  const uint64_t pages = z.blocks.size() * uint64_t{map.PagesPerBlock()};
  uint64_t free = 0;
  for (const auto& b : z.blocks) free += b.free_pages;
  return absl::StrFormat("Node %d zone %s  pfn %#x-%#x  %u MiB (%u MiB free)  %u pageblocks", z.nid, z.name,
                         z.first_pfn, z.first_pfn + pages, MiB(pages, map.page_size),
                         MiB(free, map.page_size), z.blocks.size());
}

std::string FlagText(uint8_t flags) {
  std::string s;
  if (flags & FL_PB_MIXED) s += " mixed";
  if (flags & FL_PB_ESTIMATED) s += " estimated";
  if (flags & FL_PB_PARTIAL) s += " partial";
  return s;
}

// ---- layout shared by SVG and PNG ----------------------------------------

constexpr int kMargin = 12;
constexpr int kLine = 18;       // height of a text line
constexpr int kCharW = 7;       // advance of one character (SVG 11px monospace, PNG 5x7 font + 2)
constexpr int kSwatch = 11;

struct TextItem {
  int x, y;  // top-left
  std::string text;
};
struct RectItem {
  int x, y, w, h;
  Rgb color;
};
struct CellItem {
  int x, y;
  const Block* block;
  const ZoneBlocks* zone;
  size_t index;
};
struct Layout {
  int width = 0, height = 0;
  std::vector<TextItem> texts;
  std::vector<RectItem> rects;  // legend swatches
  std::vector<CellItem> cells;
};

absl::Status CheckOptions(const PictureOptions& o) {
  if (o.cells_per_row < 8 || o.cells_per_row > 4096) {
    return absl::InvalidArgumentError(absl::StrCat("cells per row ", o.cells_per_row, " outside 8..4096"));
  }
  if (o.cell_px < 3 || o.cell_px > 64) {
    return absl::InvalidArgumentError(absl::StrCat("cell size ", o.cell_px, " px outside 3..64"));
  }
  return absl::OkStatus();
}

Layout MakeLayout(const PageblockMap& map, const PictureOptions& o) {
  Layout l;
  const int grid_w = o.cells_per_row * o.cell_px;
  int width = std::max(grid_w, 480);
  int y = kMargin;
  l.texts.push_back({kMargin, y, map.title.empty() ? "pageblock map" : map.title});
  y += kLine + 4;
  // Legend: one swatch per type (full colour), then the free ramp of Movable.
  int x = kMargin;
  for (const std::string& name : PresentTypes(map)) {
    const int item_w = kSwatch + 4 + static_cast<int>(name.size()) * kCharW + 12;
    if (x + item_w > kMargin + width) {
      x = kMargin;
      y += kLine;
    }
    l.rects.push_back({x, y + 1, kSwatch, kSwatch, CellColor(name, 0.0)});
    l.texts.push_back({x + kSwatch + 4, y, name});
    x += item_w;
  }
  y += kLine;
  x = kMargin;
  const std::string ramp_label = "free part of block: 0%";
  l.texts.push_back({x, y, ramp_label});
  x += static_cast<int>(ramp_label.size()) * kCharW + 6;
  for (int i = 0; i <= 8; ++i) {
    l.rects.push_back({x, y + 1, kSwatch, kSwatch, CellColor("Movable", i / 8.0)});
    x += kSwatch + 2;
  }
  l.texts.push_back({x + 4, y, "100%   dark corner = mixed block"});
  y += kLine + 8;
  for (const auto& z : map.zones) {
    l.texts.push_back({kMargin, y, ZoneLabel(map, z)});
    width = std::max(width, static_cast<int>(ZoneLabel(map, z).size()) * kCharW);
    y += kLine;
    for (size_t i = 0; i < z.blocks.size(); ++i) {
      const int col = static_cast<int>(i % static_cast<size_t>(o.cells_per_row));
      const int row = static_cast<int>(i / static_cast<size_t>(o.cells_per_row));
      l.cells.push_back({kMargin + col * o.cell_px, y + row * o.cell_px, &z.blocks[i], &z, i});
    }
    const int rows = static_cast<int>((z.blocks.size() + static_cast<size_t>(o.cells_per_row) - 1) /
                                      static_cast<size_t>(o.cells_per_row));
    y += rows * o.cell_px + 10;
  }
  l.width = width + 2 * kMargin;
  l.height = y + kMargin;
  return l;
}

// ---- 5x7 pixel font for PNG labels (our own glyphs; rows top to bottom,
// bit 4 = leftmost column). Lower case is drawn as upper case. ------------

struct Glyph {
  char ch;
  std::array<uint8_t, 7> rows;
};

constexpr Glyph kFont[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}}, {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
    {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}}, {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}}, {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}}, {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}}, {'\'', {0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}}, {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
    {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}}, {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}},
    {'[', {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E}}, {']', {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E}},
    {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}}, {'#', {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A}},
};

const Glyph* FindGlyph(char ch) {
  if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
  for (const Glyph& g : kFont)
    if (g.ch == ch) return &g;
  return nullptr;
}

void DrawText(RgbImage& img, int x, int y, const std::string& text) {
  // Vertically centre the 7-row glyphs in a text line.
  const int top = y + 4;
  for (char ch : text) {
    if (ch != ' ') {
      const Glyph* g = FindGlyph(ch);
      if (g == nullptr) g = FindGlyph('?');
      for (int r = 0; r < 7; ++r)
        for (int c = 0; c < 5; ++c)
          if (g->rows[static_cast<size_t>(r)] & (0x10 >> c)) img.Set(x + c, top + r, 20, 20, 20);
    }
    x += kCharW;
  }
}

std::string XmlEscape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(ch);
    }
  }
  return out;
}

// Index of the nearest colour in the xterm 256-colour 6x6x6 cube.
int Ansi256(Rgb c) {
  auto level = [](uint8_t v) { return v < 48 ? 0 : v < 115 ? 1 : (v - 35) / 40; };
  return 16 + 36 * level(c.r) + 6 * level(c.g) + level(c.b);
}

}  // namespace

Rgb CellColor(const std::string& migratetype_name, double free_fraction) {
  const Rgb base = BaseColor(migratetype_name);
  if (base == kUnknownColor) return base;
  const double f = std::clamp(free_fraction, 0.0, 1.0) * kMaxLighten;
  auto mix = [f](uint8_t v) { return static_cast<uint8_t>(std::lround(v + (255.0 - v) * f)); };
  return {mix(base.r), mix(base.g), mix(base.b)};
}

std::string TypeName(const PageblockMap& map, uint8_t mt) {
  if (mt != 0xff && mt < map.migratetype_names.size()) return map.migratetype_names[mt];
  return "unknown";
}

char TypeLetter(const std::string& name) {
  if (name == "Unmovable") return 'U';
  if (name == "Movable") return 'M';
  if (name == "Reclaimable") return 'R';
  if (name == "HighAtomic") return 'H';
  if (name == "CMA") return 'C';
  if (name == "Isolate") return 'I';
  return '?';
}

std::vector<std::pair<std::string, uint64_t>> CountByType(const PageblockMap& map) {
  std::map<std::string, uint64_t> counts;
  for (const auto& z : map.zones)
    for (const auto& b : z.blocks) ++counts[TypeName(map, b.migratetype)];
  return {counts.begin(), counts.end()};
}

absl::StatusOr<std::string> RenderSvg(const PageblockMap& map, const PictureOptions& options) {
  if (absl::Status st = CheckOptions(options); !st.ok()) return st;
  const Layout l = MakeLayout(map, options);
  std::string out = absl::StrFormat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
      "font-family=\"monospace\" font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n",
      l.width, l.height, l.width, l.height);
  for (const auto& t : l.texts) {
    absl::StrAppendFormat(&out, "<text x=\"%d\" y=\"%d\">%s</text>\n", t.x, t.y + 12, XmlEscape(t.text));
  }
  for (const auto& r : l.rects) {
    absl::StrAppendFormat(&out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" stroke=\"#444\" stroke-width=\"0.5\"/>\n",
                          r.x, r.y, r.w, r.h, Hex(r.color));
  }
  const int s = options.cell_px - 1;
  const uint32_t ppb = map.PagesPerBlock();
  for (const auto& c : l.cells) {
    const std::string name = TypeName(map, c.block->migratetype);
    absl::StrAppendFormat(&out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"><title>pfn %#x %s free %u/%u%s</title></rect>\n",
                          c.x, c.y, s, s, Hex(CellColor(name, FreeFraction(*c.block, ppb))),
                          c.zone->first_pfn + c.index * ppb, name, c.block->free_pages, ppb,
                          FlagText(c.block->flags));
    if (c.block->flags & FL_PB_MIXED) {
      const int m = std::max(1, s / 3);
      absl::StrAppendFormat(&out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#000\"/>\n", c.x, c.y, m, m);
    }
  }
  out += "</svg>\n";
  return out;
}

absl::StatusOr<std::string> RenderPng(const PageblockMap& map, const PictureOptions& options) {
  if (absl::Status st = CheckOptions(options); !st.ok()) return st;
  const Layout l = MakeLayout(map, options);
  RgbImage img(l.width, l.height);
  for (const auto& t : l.texts) DrawText(img, t.x, t.y, t.text);
  for (const auto& r : l.rects) {
    img.FillRect(r.x, r.y, r.w, r.h, 68, 68, 68);
    img.FillRect(r.x + 1, r.y + 1, r.w - 2, r.h - 2, r.color.r, r.color.g, r.color.b);
  }
  const int s = options.cell_px - 1;
  const uint32_t ppb = map.PagesPerBlock();
  for (const auto& c : l.cells) {
    const Rgb col = CellColor(TypeName(map, c.block->migratetype), FreeFraction(*c.block, ppb));
    img.FillRect(c.x, c.y, s, s, col.r, col.g, col.b);
    if (c.block->flags & FL_PB_MIXED) {
      const int m = std::max(1, s / 3);
      img.FillRect(c.x, c.y, m, m, 0, 0, 0);
    }
  }
  return EncodePng(img, {{"Title", map.title}, {"Software", "fraglab"}});
}

std::string RenderTerminal(const PageblockMap& map, const TerminalOptions& options) {
  const int width = std::max(8, options.width);
  const uint32_t ppb = map.PagesPerBlock();
  std::string out = (map.title.empty() ? std::string("pageblock map") : map.title) + "\n";
  for (const auto& z : map.zones) {
    out += ZoneLabel(map, z) + "\n";
    for (size_t i = 0; i < z.blocks.size(); ++i) {
      const Block& b = z.blocks[i];
      const std::string name = TypeName(map, b.migratetype);
      const double f = FreeFraction(b, ppb);
      char ch = TypeLetter(name);
      if (f >= 0.5 && ch != '?') ch = static_cast<char>(ch - 'A' + 'a');
      if (options.color) {
        const Rgb c = CellColor(name, f);
        // Black letters on light cells, white on dark ones.
        const bool light = (c.r * 299 + c.g * 587 + c.b * 114) / 1000 > 140;
        absl::StrAppendFormat(&out, "\033[%d;48;5;%dm%c", light ? 30 : 97, Ansi256(c), ch);
      } else {
        out.push_back(ch);
      }
      if ((i + 1) % static_cast<size_t>(width) == 0 || i + 1 == z.blocks.size()) {
        if (options.color) out += "\033[0m";
        out += "\n";
      }
    }
  }
  out += "legend:";
  for (const auto& [name, count] : CountByType(map)) {
    const char ch = TypeLetter(name);
    if (options.color) {
      absl::StrAppendFormat(&out, " \033[97;48;5;%dm%c\033[0m %s (%u)", Ansi256(CellColor(name, 0.0)), ch, name, count);
    } else {
      absl::StrAppendFormat(&out, " %c %s (%u)", ch, name, count);
    }
  }
  out += "\n        upper case: less than half of the pageblock free; lower case: half or more free\n";
  return out;
}

absl::StatusOr<std::string> RenderHtmlSteps(const std::vector<PageblockMap>& frames,
                                            const PictureOptions& options) {
  if (frames.empty()) return absl::InvalidArgumentError("no pageblock maps to show");
  if (absl::Status st = CheckOptions(options); !st.ok()) return st;
  // Colour table: every (type name, free level 0..10) the frames use, so the
  // page uses exactly CellColor's colours without reimplementing it in JS.
  constexpr int kLevels = 10;
  std::vector<std::string> type_names;
  auto type_id = [&type_names](const std::string& n) {
    auto it = std::find(type_names.begin(), type_names.end(), n);
    if (it != type_names.end()) return static_cast<int>(it - type_names.begin());
    type_names.push_back(n);
    return static_cast<int>(type_names.size() - 1);
  };
  nlohmann::json jframes = nlohmann::json::array();
  for (const auto& f : frames) {
    nlohmann::json jf;
    jf["title"] = f.title;
    jf["zones"] = nlohmann::json::array();
    const uint32_t ppb = f.PagesPerBlock();
    for (const auto& z : f.zones) {
      // Two characters per block: type id ('0'+id) and free level
      // ('a'+level, upper case for a mixed block).
      std::string cells;
      cells.reserve(z.blocks.size() * 2);
      for (const auto& b : z.blocks) {
        const int id = type_id(TypeName(f, b.migratetype));
        const int level = static_cast<int>(std::lround(FreeFraction(b, ppb) * kLevels));
        cells.push_back(static_cast<char>('0' + id));
        cells.push_back(static_cast<char>(((b.flags & FL_PB_MIXED) ? 'A' : 'a') + level));
      }
      jf["zones"].push_back({{"label", ZoneLabel(f, z)}, {"cells", cells}});
    }
    std::string counts;
    for (const auto& [name, n] : CountByType(f)) counts += absl::StrCat(counts.empty() ? "" : ", ", name, " ", n);
    jf["counts"] = "pageblocks: " + counts;
    jframes.push_back(std::move(jf));
  }
  nlohmann::json palette = nlohmann::json::array();
  for (const auto& n : type_names) {
    nlohmann::json levels = nlohmann::json::array();
    for (int i = 0; i <= kLevels; ++i) levels.push_back(Hex(CellColor(n, i / static_cast<double>(kLevels))));
    palette.push_back({{"name", n}, {"colors", levels}});
  }
  nlohmann::json data = {{"frames", jframes}, {"palette", palette},
                         {"perRow", options.cells_per_row}, {"cell", options.cell_px}};
  std::string js = data.dump();
  // Keep "</script>" inside strings from closing the script element.
  for (size_t p = js.find("</"); p != std::string::npos; p = js.find("</", p + 3)) js.replace(p, 2, "<\\/");

  std::string html = R"(<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>fraglab pageblock maps</title>
<style>
body{font-family:monospace;margin:12px;background:#fff;color:#111}
button{font-family:monospace;margin-right:4px}
#legend span.sw{display:inline-block;width:11px;height:11px;border:1px solid #444;margin:0 4px 0 10px;vertical-align:middle}
</style></head><body>
<h3 id="title"></h3>
<div><button id="first">|&lt;</button><button id="prev">&lt; prev</button><button id="play">play</button><button id="next">next &gt;</button><button id="last">&gt;|</button>
<input id="slider" type="range" min="0" value="0" style="width:300px;vertical-align:middle"> <span id="pos"></span></div>
<div id="legend"></div><div id="counts"></div>
<canvas id="map"></canvas>
<script>
const D = )";
  html += js;
  html += R"(;
const cv = document.getElementById('map'), cx = cv.getContext('2d');
const slider = document.getElementById('slider');
slider.max = D.frames.length - 1;
let cur = 0, timer = null;
const lg = document.getElementById('legend');
lg.innerHTML = D.palette.map(p => '<span class="sw" style="background:' + p.colors[0] + '"></span>' + p.name).join('') +
  ' &nbsp; free 0%' + [0,2,4,6,8,10].map(i => '<span class="sw" style="background:' + D.palette[0].colors[i] + '"></span>').join('') +
  ' 100% (shade of the first type); dark corner = mixed block';
function draw(i) {
  cur = Math.max(0, Math.min(D.frames.length - 1, i));
  const f = D.frames[cur], n = D.perRow, c = D.cell;
  let h = 0;
  for (const z of f.zones) h += 18 + Math.ceil(z.cells.length / 2 / n) * c + 10;
  cv.width = Math.max(n * c + 24, 480); cv.height = h + 12;
  cx.fillStyle = '#fff'; cx.fillRect(0, 0, cv.width, cv.height);
  cx.font = '11px monospace';
  let y = 6;
  for (const z of f.zones) {
    cx.fillStyle = '#111'; cx.fillText(z.label, 12, y + 12); y += 18;
    for (let k = 0; k < z.cells.length / 2; k++) {
      const t = z.cells.charCodeAt(2 * k) - 48, lv = z.cells.charCodeAt(2 * k + 1);
      const mixed = lv < 97, level = mixed ? lv - 65 : lv - 97;
      const x0 = 12 + (k % n) * c, y0 = y + Math.floor(k / n) * c;
      cx.fillStyle = D.palette[t].colors[level]; cx.fillRect(x0, y0, c - 1, c - 1);
      if (mixed) { cx.fillStyle = '#000'; cx.fillRect(x0, y0, Math.max(1, Math.floor((c - 1) / 3)), Math.max(1, Math.floor((c - 1) / 3))); }
    }
    y += Math.ceil(z.cells.length / 2 / n) * c + 10;
  }
  document.getElementById('title').textContent = f.title;
  document.getElementById('counts').textContent = f.counts;
  document.getElementById('pos').textContent = (cur + 1) + ' / ' + D.frames.length;
  slider.value = cur;
}
function stop() { if (timer) { clearInterval(timer); timer = null; document.getElementById('play').textContent = 'play'; } }
document.getElementById('first').onclick = () => { stop(); draw(0); };
document.getElementById('prev').onclick = () => { stop(); draw(cur - 1); };
document.getElementById('next').onclick = () => { stop(); draw(cur + 1); };
document.getElementById('last').onclick = () => { stop(); draw(D.frames.length - 1); };
slider.oninput = () => { stop(); draw(+slider.value); };
document.getElementById('play').onclick = () => {
  if (timer) { stop(); return; }
  if (cur >= D.frames.length - 1) draw(0);
  document.getElementById('play').textContent = 'pause';
  timer = setInterval(() => { if (cur >= D.frames.length - 1) stop(); else draw(cur + 1); }, 700);
};
document.onkeydown = e => { if (e.key === 'ArrowLeft') { stop(); draw(cur - 1); } if (e.key === 'ArrowRight') { stop(); draw(cur + 1); } };
draw(0);
</script></body></html>
)";
  return html;
}

// ---- reading records ------------------------------------------------------

PageblockMapReader::PageblockMapReader(const TraceHeader& header) : header_(header) {}

void PageblockMapReader::CloseFrame() {
  if (!have_current_) return;
  const double t = static_cast<double>(current_.ts_ns - first_ts_) / 1e9;
  current_.title = absl::StrFormat("map %d%s - t=%.3f s%s", frames_.size() + 1,
                                   current_phase_.empty() ? "" : absl::StrCat(" - phase '", current_phase_, "'"),
                                   t, header_.simulated ? " (simulated)" : "");
  frames_.push_back(std::move(current_));
  current_ = PageblockMap{};
  have_current_ = false;
}

absl::Status PageblockMapReader::Emit(const fl_record_header& rec) {
  if (!have_first_ts_) {
    first_ts_ = rec.ts_ns;
    have_first_ts_ = true;
  }
  if (rec.kind == FL_EV_PHASE && rec.size >= sizeof(fl_phase)) {
    fl_phase p;
    std::memcpy(&p, &rec, sizeof(p));
    if (p.begin) phase_.assign(p.label, strnlen(p.label, sizeof(p.label)));
    return absl::OkStatus();
  }
  if (rec.kind != FL_EV_PAGEBLOCK_MAP) return absl::OkStatus();
  if (absl::Status st = ValidateRecord(rec, rec.size); !st.ok()) return st;
  fl_pageblock_map m;
  std::memcpy(&m, &rec, sizeof(m));
  const uint32_t ppb = 1u << header_.pageblock_order;
  if (m.first_pfn % ppb != 0) {
    return absl::InvalidArgumentError(absl::StrCat("pageblock_map record at ts ", rec.ts_ns, ": first_pfn ",
                                                   m.first_pfn, " is not a multiple of ", ppb));
  }
  // Find this record's zone in the current frame; a zone whose pieces already
  // cover this range (or a new timestamp) means a new frame.
  if (have_current_ && current_.ts_ns != rec.ts_ns) CloseFrame();
  ZoneBlocks* zone = nullptr;
  if (have_current_) {
    for (auto& z : current_.zones) {
      if (z.nid == m.nid && z.zone_idx == m.zone_idx) zone = &z;
    }
    if (zone != nullptr && m.first_pfn < zone->first_pfn + zone->blocks.size() * uint64_t{ppb}) {
      CloseFrame();
      zone = nullptr;
    }
  }
  if (!have_current_) {
    current_.ts_ns = rec.ts_ns;
    current_.pageblock_order = header_.pageblock_order;
    current_.page_size = header_.page_size;
    current_.migratetype_names = header_.migratetype_names;
    current_phase_ = phase_;
    have_current_ = true;
  }
  if (zone == nullptr) {
    ZoneBlocks z;
    z.nid = m.nid;
    z.zone_idx = m.zone_idx;
    z.name = absl::StrCat("zone", m.zone_idx);
    for (const auto& l : header_.zones) {
      if (l.nid == m.nid && l.zone_idx == m.zone_idx) z.name = l.name;
    }
    z.first_pfn = m.first_pfn;
    current_.zones.push_back(std::move(z));
    zone = &current_.zones.back();
  }
  // A later piece of the zone: fill any gap with unknown blocks so cell
  // positions stay proportional to pfns.
  const uint64_t at = (m.first_pfn - zone->first_pfn) / ppb;
  if (at > zone->blocks.size()) zone->blocks.resize(at, Block{});
  const auto* entries = reinterpret_cast<const uint8_t*>(&rec) + sizeof(fl_pageblock_map);
  for (uint32_t i = 0; i < m.count; ++i) {
    fl_pageblock_entry e;
    std::memcpy(&e, entries + i * sizeof(e), sizeof(e));
    zone->blocks.push_back({e.migratetype, e.flags, e.free_pages});
  }
  return absl::OkStatus();
}

std::vector<PageblockMap> PageblockMapReader::TakeFrames() {
  CloseFrame();
  std::vector<PageblockMap> out = std::move(frames_);
  frames_.clear();
  return out;
}

absl::StatusOr<std::vector<PageblockMap>> ReadPageblockMaps(const std::string& path, TraceHeader* header) {
  auto reader = TraceReader::Open(path);
  if (!reader.ok()) return reader.status();
  if (header != nullptr) *header = (*reader)->header();
  PageblockMapReader maps((*reader)->header());
  for (;;) {
    absl::StatusOr<const fl_record_header*> rec = (*reader)->Next();
    if (!rec.ok()) return rec.status();
    if (*rec == nullptr) break;
    absl::Status st = maps.Emit(**rec);
    if (!st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": record ", (*reader)->records_read(), ": ", st.message()));
    }
  }
  return maps.TakeFrames();
}

absl::Status EmitZoneBlocks(const ZoneBlocks& zone, uint32_t pageblock_order, uint64_t ts_ns, EventSink& sink) {
  const uint64_t ppb = uint64_t{1} << pageblock_order;
  std::vector<uint64_t> buf(PageblockMapSize(FL_PB_MAP_MAX_ENTRIES) / 8);
  for (size_t start = 0; start < zone.blocks.size(); start += FL_PB_MAP_MAX_ENTRIES) {
    const uint32_t count = static_cast<uint32_t>(std::min<size_t>(FL_PB_MAP_MAX_ENTRIES, zone.blocks.size() - start));
    std::fill(buf.begin(), buf.end(), 0);
    auto* m = reinterpret_cast<fl_pageblock_map*>(buf.data());
    m->hdr.kind = FL_EV_PAGEBLOCK_MAP;
    m->hdr.size = static_cast<uint32_t>(PageblockMapSize(count));
    m->hdr.ts_ns = ts_ns;
    m->nid = zone.nid;
    m->zone_idx = zone.zone_idx;
    m->first_pfn = zone.first_pfn + start * ppb;
    m->count = count;
    auto* entries = reinterpret_cast<uint8_t*>(buf.data()) + sizeof(fl_pageblock_map);
    for (uint32_t i = 0; i < count; ++i) {
      const Block& b = zone.blocks[start + i];
      fl_pageblock_entry e{b.migratetype, b.flags, b.free_pages};
      std::memcpy(entries + i * sizeof(e), &e, sizeof(e));
    }
    if (absl::Status st = sink.Emit(m->hdr); !st.ok()) return st;
  }
  return absl::OkStatus();
}

}  // namespace fraglab::picture
