// Pageblock pictures: colour rule, SVG/PNG/terminal/HTML renderings of a
// known map, PNG structure (chunk CRCs, decoded pixels via zlib), and the
// grouping of FL_EV_PAGEBLOCK_MAP records into frames (also through a trace
// file).
#include "analysis/pageblock_picture.h"

#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "analysis/png_writer.h"
#include "common/trace_records.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fraglab::picture {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::vector<std::string> kNames = {"Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"};

// Zone "Normal" at pfn 0x100000: 10 blocks: U(full) M(free) M(half) R(used) U(mixed, 100 free)
// then 5 Movable with free 0, 128, 256, 384, 512.
PageblockMap SampleMap() {
  PageblockMap m;
  m.title = "sample";
  m.migratetype_names = kNames;
  ZoneBlocks z;
  z.nid = 0;
  z.zone_idx = 2;
  z.name = "Normal";
  z.first_pfn = 0x100000;
  z.blocks = {{0, 0, 0}, {1, 0, 512}, {1, 0, 256}, {2, 0, 0}, {0, FL_PB_MIXED, 100},
              {1, 0, 0}, {1, 0, 128}, {1, 0, 256}, {1, 0, 384}, {1, 0, 512}};
  m.zones.push_back(z);
  ZoneBlocks d;
  d.nid = 0;
  d.zone_idx = 1;
  d.name = "DMA32";
  d.first_pfn = 0x1000 - 0x1000 % 512;
  d.blocks = {{1, 0, 512}, {0xff, 0, 0}, {4, 0, 512}};
  m.zones.push_back(d);
  return m;
}

TEST(CellColorTest, FixedHuePerTypeAndLighterWhenFree) {
  const Rgb used = CellColor("Unmovable", 0.0);
  const Rgb free = CellColor("Unmovable", 1.0);
  EXPECT_GT(used.r, used.g);  // red
  EXPECT_GT(CellColor("Movable", 0).g, CellColor("Movable", 0).r);  // green
  EXPECT_GT(CellColor("Reclaimable", 0).b, CellColor("Reclaimable", 0).r);
  EXPECT_EQ(CellColor("Isolate", 0).r, CellColor("Isolate", 0).g);  // grey
  EXPECT_GT(CellColor("CMA", 0).b, CellColor("CMA", 0).g);           // purple
  EXPECT_GT(CellColor("HighAtomic", 0).g, CellColor("HighAtomic", 0).b);  // yellow
  // Lighter (sum of channels) grows monotonically with the free fraction.
  int last = -1;
  for (int i = 0; i <= 10; ++i) {
    const Rgb c = CellColor("Movable", i / 10.0);
    const int sum = c.r + c.g + c.b;
    EXPECT_GT(sum, last) << i;
    last = sum;
  }
  EXPECT_LT(used.g, free.g);
  EXPECT_LT(free.r, 255);  // still tinted
  EXPECT_EQ(CellColor("Movable", 2.0), CellColor("Movable", 1.0));  // clamped
  // Unknown (offline) blocks: one flat pale colour, distinct from every type.
  EXPECT_EQ(CellColor("unknown", 0.0), CellColor("unknown", 1.0));
  EXPECT_EQ(CellColor("mt9", 0.3), CellColor("unknown", 0.0));
  EXPECT_NE(CellColor("unknown", 0.0), CellColor("Isolate", 1.0));
}

TEST(PageblockPictureTest, TerminalOneCharacterPerBlockWithCase) {
  TerminalOptions o;
  o.width = 8;
  const std::string t = RenderTerminal(SampleMap(), o);
  // 10 blocks at width 8 wrap after 8.
  EXPECT_THAT(t, HasSubstr("\nUmmRUMMm\nmm\n"));
  EXPECT_THAT(t, HasSubstr("\nm?i\n"));
  EXPECT_THAT(t, HasSubstr("Node 0 zone Normal  pfn 0x100000-0x101400  20 MiB"));
  EXPECT_THAT(t, HasSubstr("M Movable (8)"));
  EXPECT_THAT(t, HasSubstr("U Unmovable (2)"));
  EXPECT_THAT(t, HasSubstr("? unknown (1)"));
  EXPECT_THAT(t, Not(HasSubstr("\033[")));
  o.color = true;
  const std::string c = RenderTerminal(SampleMap(), o);
  EXPECT_THAT(c, HasSubstr("\033[97;48;5;"));  // dark cell -> white letter
  EXPECT_THAT(c, HasSubstr("\033[0m\n"));
}

TEST(PageblockPictureTest, SvgHasCellsLegendAndLabels) {
  absl::StatusOr<std::string> svg = RenderSvg(SampleMap());
  ASSERT_TRUE(svg.ok()) << svg.status();
  EXPECT_THAT(*svg, HasSubstr("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_THAT(*svg, HasSubstr(">sample</text>"));
  EXPECT_THAT(*svg, HasSubstr("Node 0 zone DMA32"));
  EXPECT_THAT(*svg, HasSubstr("<title>pfn 0x100400 Movable free 256/512</title>"));
  EXPECT_THAT(*svg, HasSubstr("<title>pfn 0x100800 Unmovable free 100/512 mixed</title>"));
  // 13 cells + one mixed mark + legend swatches.
  size_t titles = 0;
  for (size_t p = svg->find("<title>"); p != std::string::npos; p = svg->find("<title>", p + 1)) ++titles;
  EXPECT_EQ(titles, 13u);
  const Rgb c = CellColor("Movable", 0.5);
  char hex[8];
  std::snprintf(hex, sizeof(hex), "#%02x%02x%02x", c.r, c.g, c.b);
  EXPECT_THAT(*svg, HasSubstr(std::string("fill=\"") + hex + "\"><title>pfn 0x100400"));
  EXPECT_THAT(*svg, HasSubstr(">Reclaimable</text>"));
  EXPECT_THAT(*svg, HasSubstr(">unknown</text>"));
  EXPECT_EQ(svg->substr(svg->size() - 7), "</svg>\n");

  PictureOptions bad;
  bad.cells_per_row = 2;
  EXPECT_EQ(RenderSvg(SampleMap(), bad).status().code(), absl::StatusCode::kInvalidArgument);
}

uint32_t Be32(const std::string& s, size_t at) {
  return (uint32_t{static_cast<uint8_t>(s[at])} << 24) | (uint32_t{static_cast<uint8_t>(s[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(s[at + 2])} << 8) | uint32_t{static_cast<uint8_t>(s[at + 3])};
}

// Walks the chunks (checking every CRC with zlib's crc32, independent of
// ours), inflates IDAT and returns the raw scanlines.
std::string DecodePng(const std::string& png, uint32_t* w, uint32_t* h, std::vector<std::string>* types) {
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  std::string idat;
  size_t at = 8;
  while (at + 12 <= png.size()) {
    const uint32_t len = Be32(png, at);
    const std::string type = png.substr(at + 4, 4);
    types->push_back(type);
    const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(png.data() + at + 4), len + 4);
    EXPECT_EQ(Be32(png, at + 8 + len), crc) << type;
    if (type == "IHDR") {
      *w = Be32(png, at + 8);
      *h = Be32(png, at + 12);
      EXPECT_EQ(png[at + 16], 8);
      EXPECT_EQ(png[at + 17], 2);
    }
    if (type == "IDAT") idat += png.substr(at + 8, len);
    at += 12 + len;
  }
  EXPECT_EQ(at, png.size());
  std::string raw(static_cast<size_t>(*w * 3 + 1) * *h, '\0');
  uLongf raw_len = raw.size();
  EXPECT_EQ(uncompress(reinterpret_cast<Bytef*>(raw.data()), &raw_len,
                       reinterpret_cast<const Bytef*>(idat.data()), idat.size()),
            Z_OK);
  EXPECT_EQ(raw_len, raw.size());
  return raw;
}

TEST(PngWriterTest, CrcMatchesZlib) {
  const std::string s = "IEND";
  EXPECT_EQ(PngCrc32(reinterpret_cast<const uint8_t*>(s.data()), s.size()), 0xAE426082u);
  const std::string t = "123456789";
  EXPECT_EQ(PngCrc32(reinterpret_cast<const uint8_t*>(t.data()), t.size()), 0xCBF43926u);
}

TEST(PngWriterTest, RoundTripsPixels) {
  RgbImage img(3, 2, 0, 0, 0);
  img.Set(2, 1, 10, 20, 30);
  img.FillRect(0, 0, 2, 1, 255, 0, 0);
  img.Set(9, 9, 1, 1, 1);  // clipped, no crash
  absl::StatusOr<std::string> png = EncodePng(img, {{"Title", "t"}});
  ASSERT_TRUE(png.ok()) << png.status();
  uint32_t w = 0, h = 0;
  std::vector<std::string> types;
  const std::string raw = DecodePng(*png, &w, &h, &types);
  EXPECT_EQ(w, 3u);
  EXPECT_EQ(h, 2u);
  EXPECT_EQ(types, (std::vector<std::string>{"IHDR", "tEXt", "IDAT", "IEND"}));
  EXPECT_EQ(raw[0], 0);  // filter type None
  EXPECT_EQ(static_cast<uint8_t>(raw[1]), 255);
  EXPECT_EQ(static_cast<uint8_t>(raw[7]), 0);                // pixel (2,0) black
  EXPECT_EQ(static_cast<uint8_t>(raw[10 + 1 + 6 + 1]), 20);  // pixel (2,1) green channel
  EXPECT_EQ(EncodePng(RgbImage(0, 5)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PageblockPictureTest, PngCellsHaveTheirColours) {
  PictureOptions o;
  o.cells_per_row = 8;
  o.cell_px = 6;
  absl::StatusOr<std::string> png = RenderPng(SampleMap(), o);
  ASSERT_TRUE(png.ok()) << png.status();
  uint32_t w = 0, h = 0;
  std::vector<std::string> types;
  const std::string raw = DecodePng(*png, &w, &h, &types);
  ASSERT_GT(w, 100u);
  auto pixel = [&](uint32_t x, uint32_t y) {
    const size_t i = static_cast<size_t>(y) * (w * 3 + 1) + 1 + x * 3;
    return Rgb{static_cast<uint8_t>(raw[i]), static_cast<uint8_t>(raw[i + 1]), static_cast<uint8_t>(raw[i + 2])};
  };
  // Find the first pixel of the Unmovable (used) colour: it is the zone's first cell.
  const Rgb u = CellColor("Unmovable", 0.0);
  uint32_t fx = 0, fy = 0;
  bool found = false;
  for (uint32_t y = 0; y < h && !found; ++y)
    for (uint32_t x = 0; x < w && !found; ++x)
      if (pixel(x, y) == u) {
        fx = x;
        fy = y;
        found = true;
      }
  ASSERT_TRUE(found);
  // Legend swatch of Unmovable comes first (it is above the cells); skip to
  // the cell grid: the first Unmovable cell is followed by a free Movable cell.
  bool grid = false;
  for (uint32_t y = fy; y < h && !grid; ++y)
    for (uint32_t x = 0; x + 6 < w && !grid; ++x)
      if (pixel(x, y) == u && pixel(x + 6, y) == CellColor("Movable", 1.0)) {
        fx = x;
        fy = y;
        grid = true;
      }
  ASSERT_TRUE(grid);
  EXPECT_EQ(pixel(fx + 12, fy), CellColor("Movable", 0.5));
  EXPECT_EQ(pixel(fx + 18, fy), CellColor("Reclaimable", 0.0));
  EXPECT_EQ(pixel(fx + 24, fy), Rgb{});  // mixed mark, top-left corner is black
  EXPECT_EQ(pixel(fx + 24 + 4, fy + 4), CellColor("Unmovable", 100.0 / 512));
  EXPECT_EQ(pixel(fx + 5, fy), Rgb(255, 255, 255));  // 1-px gap between cells
  // Second row of the zone (8 per row): blocks 8 and 9.
  EXPECT_EQ(pixel(fx, fy + 6), CellColor("Movable", 384.0 / 512));
  EXPECT_EQ(types.front(), "IHDR");
  EXPECT_EQ(types.back(), "IEND");
}

TEST(PageblockPictureTest, HtmlStepThroughIsSelfContained) {
  PageblockMap a = SampleMap();
  PageblockMap b = SampleMap();
  b.title = "second </script> frame";
  b.zones[0].blocks[1].migratetype = 0;
  absl::StatusOr<std::string> html = RenderHtmlSteps({a, b});
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_THAT(*html, HasSubstr("<canvas id=\"map\">"));
  EXPECT_THAT(*html, HasSubstr("id=\"play\""));
  EXPECT_THAT(*html, HasSubstr("id=\"prev\""));
  EXPECT_THAT(*html, HasSubstr("id=\"next\""));
  EXPECT_THAT(*html, Not(HasSubstr("http://")));
  EXPECT_THAT(*html, Not(HasSubstr("https://")));
  EXPECT_THAT(*html, Not(HasSubstr("second </script>")));  // escaped inside the script
  EXPECT_THAT(*html, HasSubstr("second <\\/script> frame"));
  // Frame 1, zone Normal: U used (0a) M free (1k) ...; frame 2 has U at block 1.
  EXPECT_THAT(*html, HasSubstr("\"cells\":\"0a1k1f2a0C"));
  EXPECT_THAT(*html, HasSubstr("\"cells\":\"0a0k1f2a0C"));
  EXPECT_THAT(*html, HasSubstr("pageblocks: Isolate 1, Movable 7, Reclaimable 1, Unmovable 3, unknown 1"));
  EXPECT_EQ(RenderHtmlSteps({}).status().code(), absl::StatusCode::kInvalidArgument);
}

// Runs the page's script under node with a stub DOM: the first frame draws
// every cell, "next" moves to frame 2, the slider and labels follow.
TEST(PageblockPictureTest, HtmlScriptRunsUnderNode) {
  if (std::system("node --version > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "node (nodejs) not installed: the page's script is checked only where node exists";
  }
  PageblockMap a = SampleMap();
  PageblockMap b = SampleMap();
  b.title = "frame two";
  const std::string dir = testing::TempDir() + "/pb_html_" + std::to_string(getpid());
  ASSERT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
  {
    std::ofstream(dir + "/page.html") << *RenderHtmlSteps({a, b});
    std::ofstream(dir + "/check.js") << R"JS(
const fs = require('fs');
const html = fs.readFileSync(process.argv[2], 'utf8');
const script = html.split('<script>')[1].split('</script>')[0];
const els = {};
let fills = 0;
const texts = [];
function el(id) {
  if (!els[id]) els[id] = {textContent: '', innerHTML: '', value: 0, max: 0, width: 0, height: 0,
    getContext: () => ({fillRect: () => { fills++; }, fillText: (t) => texts.push(t)})};
  return els[id];
}
global.document = {getElementById: el};
eval(script + ';globalThis.D = D;');
const out = [D.frames.length, fills, els.pos.textContent, els.title.textContent, texts[0]];
els.next.onclick();
out.push(els.pos.textContent, els.title.textContent, els.slider.value);
els.next.onclick();
out.push(els.pos.textContent);
console.log(out.join('|'));
)JS";
  }
  const std::string cmd = "node " + dir + "/check.js " + dir + "/page.html > " + dir + "/out.txt 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream in(dir + "/out.txt");
  std::string line;
  std::getline(in, line);
  // 13 cells + 1 mixed mark + the background = 15 fillRect calls.
  EXPECT_EQ(line,
            "2|15|1 / 2|sample|Node 0 zone Normal  pfn 0x100000-0x101400  20 MiB (8 MiB free)  10 pageblocks"
            "|2 / 2|frame two|1|2 / 2");
  std::system(("rm -rf " + dir).c_str());
}

TraceHeader Header() {
  TraceHeader h;
  h.migratetype_names = kNames;
  h.pageblock_order = 9;
  h.zones = {{0, 1, "DMA32", 0x1000, 0xff000, 0, 0}, {0, 2, "Normal", 0x100000, 0x500000, 0, 0}};
  return h;
}

fl_phase Phase(const char* label, uint64_t ts) {
  fl_phase p;
  InitRecord(p, FL_EV_PHASE, ts, 0);
  p.begin = 1;
  std::snprintf(p.label, sizeof(p.label), "%s", label);
  return p;
}

TEST(PageblockMapReaderTest, GroupsRecordsIntoFramesAndJoinsPieces) {
  const PageblockMap m = SampleMap();
  VectorSink sink;
  ASSERT_TRUE(sink.Emit(Phase("fragment", 5).hdr).ok());
  // Frame 1 at ts 10: Normal split into 3-block pieces by hand.
  ZoneBlocks p1 = m.zones[0], p2 = m.zones[0];
  p1.blocks.resize(3);
  p2.blocks.erase(p2.blocks.begin(), p2.blocks.begin() + 3);
  p2.first_pfn += 3 * 512;
  ASSERT_TRUE(EmitZoneBlocks(p1, 9, 10, sink).ok());
  ASSERT_TRUE(EmitZoneBlocks(p2, 9, 10, sink).ok());
  ASSERT_TRUE(EmitZoneBlocks(m.zones[1], 9, 10, sink).ok());
  // Frame 2: same ts but the zone repeats (two maps in one clock tick).
  ASSERT_TRUE(EmitZoneBlocks(m.zones[1], 9, 10, sink).ok());
  // Frame 3 at a new ts, after a new phase.
  ASSERT_TRUE(sink.Emit(Phase("compact", 20).hdr).ok());
  ASSERT_TRUE(EmitZoneBlocks(m.zones[0], 9, 1'500'000'005, sink).ok());

  PageblockMapReader reader(Header());
  for (size_t i = 0; i < sink.size(); ++i) ASSERT_TRUE(reader.Emit(sink.at(i)).ok()) << i;
  std::vector<PageblockMap> frames = reader.TakeFrames();
  ASSERT_EQ(frames.size(), 3u);
  ASSERT_EQ(frames[0].zones.size(), 2u);
  EXPECT_EQ(frames[0].zones[0].name, "Normal");
  EXPECT_EQ(frames[0].zones[0].first_pfn, 0x100000u);
  ASSERT_EQ(frames[0].zones[0].blocks.size(), 10u);
  EXPECT_EQ(frames[0].zones[0].blocks[4].flags, FL_PB_MIXED);
  EXPECT_EQ(frames[0].zones[0].blocks[9].free_pages, 512);
  EXPECT_EQ(frames[0].zones[1].name, "DMA32");
  EXPECT_EQ(frames[0].title, "map 1 - phase 'fragment' - t=0.000 s");
  EXPECT_EQ(frames[1].zones.size(), 1u);
  EXPECT_EQ(frames[2].title, "map 3 - phase 'compact' - t=1.500 s");
  EXPECT_EQ(frames[2].zones[0].blocks.size(), 10u);
}

TEST(PageblockMapReaderTest, RejectsMisalignedPfn) {
  ZoneBlocks z = SampleMap().zones[0];
  z.first_pfn += 3;
  VectorSink sink;
  ASSERT_TRUE(EmitZoneBlocks(z, 9, 1, sink).ok());
  PageblockMapReader reader(Header());
  absl::Status st = reader.Emit(sink.at(0));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("not a multiple of 512"));
}

TEST(PageblockMapReaderTest, LargeZoneSplitsIntoSchemaSizedRecordsAndReadsBackFromTrace) {
  ZoneBlocks z;
  z.nid = 0;
  z.zone_idx = 2;
  z.first_pfn = 0x100000;
  for (int i = 0; i < 10000; ++i) z.blocks.push_back({static_cast<uint8_t>(i % 3), 0, static_cast<uint16_t>(i % 513)});
  const std::string path = testing::TempDir() + "/pb_picture_" + std::to_string(getpid()) + ".trace";
  {
    auto w = TraceWriter::Open(path, Header());
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE(EmitZoneBlocks(z, 9, 7, **w).ok());
    ASSERT_TRUE(EmitZoneBlocks(z, 9, 8, **w).ok());
    ASSERT_EQ((*w)->records_written(), 6u);  // 4096 + 4096 + 1808, twice
    ASSERT_TRUE((*w)->Close().ok());
  }
  TraceHeader h;
  absl::StatusOr<std::vector<PageblockMap>> frames = ReadPageblockMaps(path, &h);
  ASSERT_TRUE(frames.ok()) << frames.status();
  ASSERT_EQ(frames->size(), 2u);
  ASSERT_EQ((*frames)[1].zones[0].blocks.size(), 10000u);
  EXPECT_EQ((*frames)[1].zones[0].blocks[9999].free_pages, 9999 % 513);
  EXPECT_EQ((*frames)[1].zones[0].blocks[5000].migratetype, 5000 % 3);
  std::remove(path.c_str());
  EXPECT_FALSE(ReadPageblockMaps(path).ok());
}

}  // namespace
}  // namespace fraglab::picture
