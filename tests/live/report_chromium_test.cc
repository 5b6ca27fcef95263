// Opens a `fraglab report` page in headless Chromium (Debian's chromium):
// it loads without console messages, the DOM holds every image the page
// names, each image file exists and decodes in the browser (checked by a
// probe copy of the page that records naturalWidth after load), and a
// screenshot has the requested size and is not blank. Skips when chromium is
// not installed.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "bpf/fraglab_events.h"
#include "common/event_sink.h"
#include "common/trace_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/live/live_test_util.h"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using fraglab::testing::ReadWholeFile;

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs a shell command line (fixed words and our temp paths only); stdout and
// stderr (through `err_file`) captured separately.
Result Shell(const std::string& cmd, const std::string& err_file) {
  fraglab::testing::CommandResult c = fraglab::testing::RunShell(cmd + " 2>" + err_file);
  return Result{c.exit_code, std::move(c.out), ReadWholeFile(err_file)};
}

std::string FindChromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "";
}

// A kernel-like trace with every kind the report plots: snapshots, phases,
// fallbacks, compaction tries/results and begin/end pairs, direct reclaim.
void WriteKernelTrace(const std::string& path) {
  fraglab::TraceHeader h;
  h.kernel_release = "6.18.0-test";
  h.kernel_era = "CLAIM";
  h.machine = "test";
  h.nr_cpus = 2;
  h.zones = {{0, 2, "Normal", 0x100000, 262144, 262144, 260000}};
  h.migratetype_names = {"Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"};
  h.scenario_name = "claim";
  auto w = fraglab::TraceWriter::Open(path, h);
  ASSERT_TRUE(w.ok()) << w.status();
  fraglab::EventSink& s = **w;
  const uint64_t sec = 1000000000;
  auto snap = [&](uint64_t ts, uint64_t o9, uint32_t u) {
    fl_snapshot_zone z;
    fraglab::InitRecord(z, FL_EV_SNAPSHOT_ZONE, ts, 0);
    z.zone_idx = 2;
    z.nr_free[0] = 300;
    z.nr_free[3] = 40;
    z.nr_free[9] = o9;
    z.nr_free_pages = 300 + 40 * 8 + (o9 << 9);
    z.pageblocks[0] = u;
    z.pageblocks[1] = 500 - u;
    ASSERT_TRUE(s.Emit(z.hdr).ok());
  };
  auto phase = [&](uint64_t ts, uint32_t i, bool begin, const char* label) {
    fl_phase p;
    fraglab::InitRecord(p, FL_EV_PHASE, ts, 0);
    p.index = i;
    p.begin = begin;
    std::strncpy(p.label, label, sizeof(p.label) - 1);
    ASSERT_TRUE(s.Emit(p.hdr).ok());
  };
  snap(sec, 200, 10);
  for (uint32_t i = 0; i < 3; ++i) {
    const uint64_t t0 = sec * (2 + i);
    const std::string label = std::to_string(i) + (i == 1 ? ":expect" : ":alloc");
    phase(t0, i, true, label.c_str());
    for (int k = 0; k < 20; ++k) {
      fl_extfrag e;
      fraglab::InitRecord(e, FL_EV_EXTFRAG, t0 + k * 1000000, 0);
      e.alloc_migratetype = k % 3 == 2 ? 2 : 0;
      e.fallback_migratetype = 1;
      e.extfrag_class = static_cast<uint8_t>(k % 3);
      ASSERT_TRUE(s.Emit(e.hdr).ok());
      fl_compact_try t;
      fraglab::InitRecord(t, FL_EV_COMPACT_TRY, t0 + k * 1000000 + 1, 0);
      t.order = 9;
      ASSERT_TRUE(s.Emit(t.hdr).ok());
      fl_compact_begin_end b;
      fraglab::InitRecord(b, FL_EV_COMPACT_BEGIN, t0 + k * 1000000 + 2, 0);
      b.pid = 100 + k;
      ASSERT_TRUE(s.Emit(b.hdr).ok());
      fl_compact_result f;
      fraglab::InitRecord(f, FL_EV_COMPACT_FINISHED, t0 + k * 1000000 + 1000 * (k + 1), 0);
      f.order = 9;
      f.ret = k % 2 ? 8 : 5;
      ASSERT_TRUE(s.Emit(f.hdr).ok());
      b.hdr.kind = FL_EV_COMPACT_END;
      b.hdr.ts_ns = t0 + k * 1000000 + 1000 * (k + 1) + 1;
      ASSERT_TRUE(s.Emit(b.hdr).ok());
      fl_direct_reclaim d;
      fraglab::InitRecord(d, FL_EV_DIRECT_RECLAIM_BEGIN, t0 + k * 1000000 + 3, 0);
      d.pid = 200 + k;
      ASSERT_TRUE(s.Emit(d.hdr).ok());
      d.hdr.kind = FL_EV_DIRECT_RECLAIM_END;
      d.hdr.ts_ns = t0 + k * 1000000 + 50000 * (k + 1);
      ASSERT_TRUE(s.Emit(d.hdr).ok());
    }
    snap(t0 + sec / 2, 200 - 30 * (i + 1), 10 + 3 * (i + 1));
    phase(t0 + sec / 2, i, false, label.c_str());
  }
  ASSERT_TRUE((*w)->Close().ok());
}

class ReportChromiumTest : public fraglab::testing::TempDirTest {
 protected:
  ReportChromiumTest() : TempDirTest("fraglab-chromium") {}
  void SetUp() override {
    chromium_ = FindChromium();
    if (chromium_.empty()) {
      GTEST_SKIP() << "chromium is not installed (apt-get install chromium; scripts/setup.sh lists it)";
    }
    TempDirTest::SetUp();
  }

  // Chromium with a private profile, no GPU, no sandbox (we run as root).
  std::string Chromium(const std::string& args) const {
    return "timeout 120 " + chromium_ + " --headless --disable-gpu --no-sandbox --no-first-run " +
           "--user-data-dir=" + dir_ + "/profile --enable-logging=stderr --v=0 " + args;
  }

  std::string chromium_;
};

// Console messages of the page: Chromium logs them as "...:CONSOLE:<line>] ...".
std::vector<std::string> ConsoleLines(const std::string& err) {
  std::vector<std::string> out;
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);) {
    if (line.find(":CONSOLE") != std::string::npos) out.push_back(line);
  }
  return out;
}

std::set<std::string> ImgSources(const std::string& html) {
  std::set<std::string> out;
  const std::regex re("<img src=\"([^\"]+)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), re); it != std::sregex_iterator(); ++it) {
    out.insert((*it)[1]);
  }
  return out;
}

// Width and height from a PNG's IHDR; {0, 0} when not a PNG.
std::pair<uint32_t, uint32_t> PngSize(const std::string& bytes) {
  if (bytes.size() < 24 || bytes.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) != 0) return {0, 0};
  auto be32 = [&](size_t off) {
    return (static_cast<uint32_t>(static_cast<uint8_t>(bytes[off])) << 24) |
           (static_cast<uint32_t>(static_cast<uint8_t>(bytes[off + 1])) << 16) |
           (static_cast<uint32_t>(static_cast<uint8_t>(bytes[off + 2])) << 8) |
           static_cast<uint32_t>(static_cast<uint8_t>(bytes[off + 3]));
  };
  return {be32(16), be32(20)};
}

// The probe: after load, the body records how many images there are and
// which did not decode (complete with a natural width).
const char kProbe[] =
    "<script>window.addEventListener('load', () => {"
    "const imgs = [...document.images];"
    "document.body.setAttribute('data-images', String(imgs.length));"
    "document.body.setAttribute('data-broken', imgs.filter(i => !(i.complete && i.naturalWidth > 0))"
    ".map(i => i.getAttribute('src')).join(' '));});</script>";

std::string WithProbe(const std::string& html) {
  std::string out = html;
  const size_t pos = out.rfind("</body>");
  out.insert(pos == std::string::npos ? out.size() : pos, kProbe);
  return out;
}

TEST_F(ReportChromiumTest, PageLoadsCleanlyWithEveryImage) {
  const std::string kernel = dir_ + "/kernel.fltrace";
  const std::string sim = dir_ + "/sim.fltrace";
  WriteKernelTrace(kernel);
  Result r = Shell(std::string(FRAGLAB_BINARY) + " sim " + FRAGLAB_SOURCE_DIR + "/scenarios/teaching/claim.toml -q -o " +
                     sim,
                 dir_ + "/sim.err");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string out = dir_ + "/report";
  r = Shell(std::string(FRAGLAB_BINARY) + " report -o " + out + " " + kernel + " " + sim, dir_ + "/report.err");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string html = ReadWholeFile(out + "/index.html");
  const std::set<std::string> imgs = ImgSources(html);
  // Both traces' sections plus the side-by-side view.
  ASSERT_GE(imgs.size(), 10u);
  EXPECT_TRUE(imgs.count("plots/kernel_vs_sim.png"));
  EXPECT_TRUE(imgs.count("plots/t1_stalls.png") || imgs.count("plots/t2_stalls.png"));

  // 1. The page itself: loads, no console output, the DOM holds every image.
  r = Shell(Chromium("--dump-dom file://" + out + "/index.html"), dir_ + "/dom.err");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(ConsoleLines(r.err), ::testing::IsEmpty()) << r.err;
  EXPECT_THAT(r.out, HasSubstr("<h1>fraglab report: claim</h1>"));
  EXPECT_EQ(ImgSources(r.out), imgs);
  for (const std::string& src : imgs) {
    const std::pair<uint32_t, uint32_t> size = PngSize(ReadWholeFile(out + "/" + src));
    EXPECT_GT(size.first, 100u) << src;
    EXPECT_GT(size.second, 100u) << src;
    const std::string svg = out + "/" + src.substr(0, src.size() - 3) + "svg";
    EXPECT_THAT(ReadWholeFile(svg), HasSubstr("</svg>")) << svg;
  }

  // 2. A probe copy next to it: every image decoded in the browser.
  std::ofstream(out + "/probe.html") << WithProbe(html);
  r = Shell(Chromium("--dump-dom file://" + out + "/probe.html"), dir_ + "/probe.err");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(ConsoleLines(r.err), ::testing::IsEmpty()) << r.err;
  EXPECT_THAT(r.out, HasSubstr("data-images=\"" + std::to_string(imgs.size()) + "\""));
  EXPECT_THAT(r.out, HasSubstr("data-broken=\"\""));

  // The probe does notice a missing image (so the check above can fail).
  fs::remove(out + "/plots/kernel_vs_sim.png");
  r = Shell(Chromium("--dump-dom file://" + out + "/probe.html"), dir_ + "/probe2.err");
  EXPECT_THAT(r.out, HasSubstr("data-broken=\"plots/kernel_vs_sim.png\""));

  // 3. A screenshot of the requested size that is not blank.
  r = Shell(Chromium("--screenshot=" + dir_ + "/shot.png --window-size=1280,3000 file://" + out + "/index.html"),
          dir_ + "/shot.err");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string shot = ReadWholeFile(dir_ + "/shot.png");
  EXPECT_EQ(PngSize(shot), (std::pair<uint32_t, uint32_t>{1280, 3000}));
  // A blank page of this size compresses to a few KB; tables and plots do not.
  EXPECT_GT(shot.size(), 60u * 1024) << "screenshot looks blank";
}

}  // namespace
