// fraglab report on small hand-written traces: the timeline it extracts, the
// gnuplot data files and the HTML, "no data" where the trace lacks events,
// determinism, and the atomic output directory (gnuplot is run for real).
#include "analysis/report.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "analysis/report_timeline.h"
#include "common/event_sink.h"
#include "common/trace_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fraglab::analysis {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

TraceHeader Header(bool simulated) {
  TraceHeader h;
  h.tool_version = "test";
  h.simulated = simulated;
  h.kernel_release = simulated ? "6.18-sim" : "6.18.0-test";
  h.kernel_era = "CLAIM";
  h.machine = simulated ? "simulated" : "testbox";
  h.nr_cpus = 2;
  h.zones = {{0, 2, "Normal", 0x100000, 262144, 262144, 260000}};
  h.migratetype_names = {"Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"};
  h.scenario_name = "unit-report";
  h.seed = 7;
  return h;
}

class Writer {
 public:
  explicit Writer(EventSink* sink) : sink_(sink) {}
  void Phase(uint64_t ts, uint32_t index, bool begin, const char* label) {
    fl_phase r;
    InitRecord(r, FL_EV_PHASE, ts, 0);
    r.index = index;
    r.begin = begin;
    std::strncpy(r.label, label, sizeof(r.label) - 1);
    Emit(r.hdr);
  }
  // Zone snapshot: `free9` order-9 blocks, `free0` order-0 pages, pageblocks U/M.
  void Snapshot(uint64_t ts, uint64_t free0, uint64_t free9, uint32_t pb_u, uint32_t pb_m, bool types = true) {
    fl_snapshot_zone r;
    InitRecord(r, FL_EV_SNAPSHOT_ZONE, ts, 0);
    r.nid = 0;
    r.zone_idx = 2;
    r.flags = types ? 0 : FL_SNAP_NO_TYPES;
    r.nr_migratetypes = 5;
    r.managed = 260000;
    r.nr_free[0] = free0;
    r.nr_free[9] = free9;
    r.nr_free_pages = free0 + (free9 << 9);
    r.pageblocks[0] = pb_u;
    r.pageblocks[1] = pb_m;
    Emit(r.hdr);
  }
  void Extfrag(uint64_t ts, int cls, int from, int to) {
    fl_extfrag r;
    InitRecord(r, FL_EV_EXTFRAG, ts, 0);
    r.alloc_migratetype = from;
    r.fallback_migratetype = to;
    r.extfrag_class = static_cast<uint8_t>(cls);
    Emit(r.hdr);
  }
  void CompactTry(uint64_t ts, int order) {
    fl_compact_try r;
    InitRecord(r, FL_EV_COMPACT_TRY, ts, 0);
    r.order = order;
    Emit(r.hdr);
  }
  void CompactFinished(uint64_t ts, int order, int ret) {
    fl_compact_result r;
    InitRecord(r, FL_EV_COMPACT_FINISHED, ts, 0);
    r.order = order;
    r.ret = ret;
    Emit(r.hdr);
  }
  void CompactBeginEnd(uint64_t ts, bool begin, uint32_t pid) {
    fl_compact_begin_end r;
    InitRecord(r, begin ? FL_EV_COMPACT_BEGIN : FL_EV_COMPACT_END, ts, 0);
    r.pid = pid;
    Emit(r.hdr);
  }
  void Emit(const fl_record_header& h) { ASSERT_TRUE(sink_->Emit(h).ok()); }

 private:
  EventSink* sink_;
};

// Kernel-like trace (ns clock from 1 s): start snapshot, phase 0 with two
// steals and one claim Unmovable<-Movable, one order-9 compaction that
// succeeded after 3 us, phase 1 with a pollute and a failed compaction.
void KernelRecords(EventSink* sink) {
  Writer w(sink);
  const uint64_t s = 1000000000;
  w.Snapshot(s, 1000, 100, 10, 500);
  w.Phase(s + 10, 0, true, "0:fill");
  w.Extfrag(s + 100, FL_EXTFRAG_STEAL, 0, 1);
  w.Extfrag(s + 200, FL_EXTFRAG_STEAL, 0, 1);
  w.Extfrag(s + 300, FL_EXTFRAG_CLAIM, 0, 1);
  w.CompactTry(s + 400, 9);
  w.CompactBeginEnd(s + 500, true, 42);
  w.CompactFinished(s + 3000, 9, 4);  // continue: not an outcome
  w.CompactFinished(s + 3400, 9, 8);  // success
  w.CompactBeginEnd(s + 3500, false, 42);
  w.Snapshot(s + 500000000, 2000, 40, 14, 496);
  w.Phase(s + 500000000, 0, false, "0:fill");
  w.Phase(s + 500000010, 1, true, "1:release");
  w.Extfrag(s + 600000000, FL_EXTFRAG_POLLUTE, 2, 1);
  w.CompactTry(s + 700000000, 9);
  w.CompactFinished(s + 700000100, 9, 5);  // complete: failure
  w.Snapshot(s + 900000000, 500, 80, 14, 496);
  w.Phase(s + 900000000, 1, false, "1:release");
}

// Simulator-like trace of the same scenario (logical time).
void SimRecords(EventSink* sink) {
  Writer w(sink);
  w.Phase(1, 0, true, "0:fill");
  w.Extfrag(2, FL_EXTFRAG_STEAL, 0, 1);
  w.Snapshot(3, 1800, 50, 12, 498);
  w.Phase(4, 0, false, "0:fill");
  w.Phase(5, 1, true, "1:release");
  w.Snapshot(6, 600, 70, 12, 498);
  w.Phase(7, 1, false, "1:release");
}

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fraglab-report-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string WriteTrace(const std::string& name, bool simulated, void (*records)(EventSink*)) {
    const std::string path = dir_ + "/" + name;
    auto w = TraceWriter::Open(path, Header(simulated));
    EXPECT_TRUE(w.ok()) << w.status();
    records(w->get());
    EXPECT_TRUE((*w)->Close().ok());
    return path;
  }

  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::string dir_;
};

TEST(TimeBinsTest, MergesBinsWhenEventsRunPastTheEnd) {
  TimeBins bins(4, 2);
  bins.SetOrigin(100);
  bins.Add(100, 0);
  bins.Add(103, 1);
  EXPECT_EQ(bins.width(), 1u);
  EXPECT_EQ(bins.used_bins(), 4u);
  bins.Add(115, 0, 5);  // needs width 4: bins [100,104) [104,108) [108,112) [112,116)
  EXPECT_EQ(bins.width(), 4u);
  EXPECT_EQ(bins.count(0, 0), 1u);
  EXPECT_EQ(bins.count(0, 1), 1u);
  EXPECT_EQ(bins.count(3, 0), 5u);
  EXPECT_EQ(bins.total(0), 6u);
  EXPECT_EQ(bins.used_bins(), 4u);
  bins.Add(50, 1);  // before the origin: first bin
  EXPECT_EQ(bins.count(0, 1), 2u);
}

TEST(LatencyHistogramTest, Log2BucketsAndQuantiles) {
  LatencyHistogram h;
  for (uint64_t ns : {0, 1, 3, 1000, 1023, 1024}) h.Add(ns);
  EXPECT_EQ(h.count(), 6u);
  EXPECT_EQ(h.buckets()[0], 2u);   // 0 and 1
  EXPECT_EQ(h.buckets()[1], 1u);   // 3
  EXPECT_EQ(h.buckets()[9], 2u);   // 1000, 1023
  EXPECT_EQ(h.buckets()[10], 1u);  // 1024
  EXPECT_EQ(h.max_ns(), 1024u);
  EXPECT_EQ(h.QuantileUpperBound(0.5), 4u);
  EXPECT_EQ(h.QuantileUpperBound(1.0), 2048u);
}

TEST_F(ReportTest, TimelineCountsFallbacksCompactionAndStalls) {
  auto t = ReadTimeline(WriteTrace("k.fltrace", false, KernelRecords));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(t->has_tracker_events);
  EXPECT_EQ(t->fallbacks.total(FL_EXTFRAG_STEAL), 2u);
  EXPECT_EQ(t->fallbacks.total(FL_EXTFRAG_CLAIM), 1u);
  EXPECT_EQ(t->fallbacks.total(FL_EXTFRAG_POLLUTE), 1u);
  EXPECT_EQ((t->fallback_pairs[{0, 1}][FL_EXTFRAG_STEAL]), 2u);
  EXPECT_EQ((t->fallback_pairs[{2, 1}][FL_EXTFRAG_POLLUTE]), 1u);
  ASSERT_EQ(t->compaction.count(9), 1u);
  EXPECT_EQ(t->compaction[9].attempts, 2u);
  EXPECT_EQ(t->compaction[9].successes, 1u);
  EXPECT_EQ(t->compaction[9].failures, 1u);
  EXPECT_EQ(t->compaction_stalls.count(), 1u);
  EXPECT_EQ(t->compaction_stalls.max_ns(), 3000u);
  EXPECT_EQ(t->reclaim_stalls.count(), 0u);
  ASSERT_EQ(t->zones.size(), 1u);
  EXPECT_EQ((t->zones[{0, 2}].size()), 3u);
  EXPECT_DOUBLE_EQ(TimelineX(*t, 1000000000 + 500000000), 0.5);
}

TEST_F(ReportTest, DataFilesHoldTheTraceNumbers) {
  auto t = ReadTimeline(WriteTrace("k.fltrace", false, KernelRecords));
  ASSERT_TRUE(t.ok()) << t.status();
  auto files = BuildReportFiles({*t}, {});
  ASSERT_TRUE(files.ok()) << files.status();
  const auto& f = files->files;
  // Heatmap: order-9 free MiB (100 blocks * 2 MiB) from t=0 to the next snapshot at 0.5 s.
  ASSERT_TRUE(f.count("data/t1_free_node0_Normal.dat"));
  EXPECT_THAT(f.at("data/t1_free_node0_Normal.dat"), HasSubstr("\n0 0.5 9 200\n"));
  EXPECT_THAT(f.at("data/t1_free_node0_Normal.dat"), HasSubstr("\n0.5 0.9 9 80\n"));
  EXPECT_THAT(f.at("data/t1_free_node0_Normal.dat"), HasSubstr("\n0 0.5 0 3.90625\n"));
  // Compaction per order: order attempts successes failures deferred wakeups.
  EXPECT_THAT(f.at("data/t1_compaction.dat"), HasSubstr("\n9 2 1 1 0 0\n"));
  // Pageblocks per type over time (x, then one column per named type).
  EXPECT_THAT(f.at("data/t1_pageblocks_node0_Normal.dat"), HasSubstr("\n0.5 14 496 0 0 0\n"));
  // Matrix: Unmovable (0) row, Movable (1) column: 1 claim, 2 steal.
  EXPECT_THAT(f.at("data/t1_fallback_matrix.dat"), HasSubstr("\n0 1 1 2 0 \"Unmovable\" \"Movable\"\n"));
  EXPECT_THAT(f.at("data/t1_fallback_matrix.dat"), HasSubstr("\n2 1 0 0 1 \"Reclaimable\" \"Movable\"\n"));
  // Stalls: the 3000 ns compaction falls in bucket 11 ([2048, 4096) ns).
  EXPECT_THAT(f.at("data/t1_stalls.dat"), HasSubstr("\n11 \"2.05 us\" 1 0\n"));
  // Fallbacks over time: 4 events in total across the bins.
  const std::string& ft = f.at("data/t1_fallbacks_time.dat");
  uint64_t sum = 0;
  std::istringstream in(ft);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream row(line);
    double x;
    uint64_t a, b, c;
    row >> x >> a >> b >> c;
    sum += a + b + c;
  }
  EXPECT_EQ(sum, 4u);
  // The script draws every image the HTML shows, as PNG and SVG.
  for (const std::string& img : files->images) {
    EXPECT_THAT(f.at("plots.gp"), HasSubstr("set output '" + img + "'"));
  }
}

TEST_F(ReportTest, HtmlShowsTablesImagesAndPhaseNames) {
  auto t = ReadTimeline(WriteTrace("k.fltrace", false, KernelRecords));
  ASSERT_TRUE(t.ok()) << t.status();
  auto files = BuildReportFiles({*t}, {});
  ASSERT_TRUE(files.ok());
  const std::string& html = files->files.at("index.html");
  EXPECT_THAT(html, HasSubstr("<meta name=\"generator\" content=\"fraglab report\">"));
  EXPECT_THAT(html, HasSubstr("<h1>fraglab report: unit-report</h1>"));
  EXPECT_THAT(html, HasSubstr("<td class=\"l\">start</td>"));
  EXPECT_THAT(html, HasSubstr("<td class=\"l\">0:fill</td>"));
  EXPECT_THAT(html, HasSubstr("<td class=\"l\">1:release</td>"));
  // Phase 0 row: 500 ms, free pages 2000+40*512, order>=9 40, then the fallback columns 1 2 0.
  EXPECT_THAT(html, HasSubstr("<td>500 ms</td><td>22480</td><td>40</td>"));
  EXPECT_THAT(html, HasSubstr("<td>1</td><td>2</td><td>0</td><td>1</td>"));
  for (const std::string& img : files->images) {
    const std::string want = img.ends_with(".png") ? "<img src=\"" + img + "\"" : "<a href=\"" + img + "\">SVG</a>";
    EXPECT_THAT(html, HasSubstr(want));
  }
  // Heatmap, fallbacks over time, pair matrix, compaction, stalls, pageblocks.
  EXPECT_EQ(files->images.size(), 2u * 6);
  EXPECT_THAT(html, Not(HasSubstr("No data")));
}

TEST_F(ReportTest, MissingEventsSayNoDataAndDrawNothing) {
  // Only snapshots and phase markers (a run without BPF), one without types.
  auto path = WriteTrace("nobpf.fltrace", false, [](EventSink* sink) {
    Writer w(sink);
    w.Phase(10, 0, true, "0:only");
    w.Snapshot(20, 5, 1, 0, 0, /*types=*/false);
    w.Phase(30, 0, false, "0:only");
  });
  auto t = ReadTimeline(path);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_FALSE(t->has_tracker_events);
  auto files = BuildReportFiles({*t}, {});
  ASSERT_TRUE(files.ok());
  const std::string& html = files->files.at("index.html");
  EXPECT_THAT(html, HasSubstr("No data: the trace has no tracker events (recorded without BPF), so fallbacks"));
  EXPECT_THAT(html, HasSubstr("No data: the trace has no tracker events (recorded without BPF), so compaction"));
  EXPECT_THAT(html, HasSubstr("No data: the trace has no compaction begin/end or direct reclaim begin/end pairs"));
  EXPECT_THAT(html, HasSubstr("no snapshot has per-migratetype pageblock counts"));
  EXPECT_EQ(files->files.count("data/t1_fallbacks_time.dat"), 0u);
  EXPECT_EQ(files->files.count("data/t1_compaction.dat"), 0u);
  EXPECT_EQ(files->files.count("data/t1_stalls.dat"), 0u);
  // Only the heatmap is drawn.
  ASSERT_EQ(files->images.size(), 2u);
  EXPECT_EQ(files->images[0], "plots/t1_free_node0_Normal.png");
}

TEST_F(ReportTest, KernelAndSimulatorSideBySide) {
  auto k = ReadTimeline(WriteTrace("k.fltrace", false, KernelRecords));
  auto s = ReadTimeline(WriteTrace("s.fltrace", true, SimRecords));
  ASSERT_TRUE(k.ok() && s.ok());
  auto files = BuildReportFiles({*s, *k}, {});
  ASSERT_TRUE(files.ok());
  const std::string& html = files->files.at("index.html");
  EXPECT_THAT(html, HasSubstr("<h2>Kernel vs simulator, per phase</h2>"));
  // Phase 0 high-order: kernel 40, sim 50, difference 10.
  EXPECT_THAT(html, HasSubstr("<td class=\"l\">0:fill</td><td class=\"l\">free blocks &gt;= pageblock order "
                              "(in pageblocks)</td><td>40</td><td>50</td><td>10</td>"));
  // Steal fallbacks in phase 0: kernel 2, sim 1.
  EXPECT_THAT(html, HasSubstr("<td class=\"l\">steal fallbacks</td><td>2</td><td>1</td><td>-1</td>"));
  // The start snapshot exists only on the kernel side.
  EXPECT_THAT(html, HasSubstr("<td class=\"l\">start</td><td class=\"l\">free pages</td><td>52200</td>"
                              "<td>&ndash;</td>"));
  EXPECT_THAT(files->files.at("data/kernel_vs_sim.dat"), HasSubstr("\n0 \"0:fill\" 40 50 1 0 2 1 0 0\n"));
  EXPECT_THAT(files->files.at("data/kernel_vs_sim.dat"), HasSubstr("\n-1 \"start\" 100 NaN 0 NaN 0 NaN 0 NaN\n"));
}

TEST_F(ReportTest, TwoSetsAreOverlaidOnPhasesWithTheCompareTable) {
  auto k1 = ReadTimeline(WriteTrace("a1.fltrace", false, KernelRecords));
  auto k2 = ReadTimeline(WriteTrace("b1.fltrace", true, SimRecords));
  ASSERT_TRUE(k1.ok() && k2.ok());
  auto files = BuildReportFiles({*k1, *k1}, {*k2});
  ASSERT_TRUE(files.ok());
  const std::string& html = files->files.at("index.html");
  EXPECT_THAT(html, HasSubstr("<h2>A vs B: metrics that changed</h2>"));
  EXPECT_THAT(html, HasSubstr("<h2>A vs B, aligned on phase markers</h2>"));
  EXPECT_THAT(html, HasSubstr("B run 1:"));
  // Columns: index, two A runs, one B run, A mean, B mean.
  EXPECT_THAT(files->files.at("data/overlay_high_order.dat"), HasSubstr("\n0 40 40 50 40 50\n"));
  EXPECT_THAT(files->files.at("data/overlay_high_order.dat"), HasSubstr("\n1 80 80 70 80 70\n"));
  EXPECT_THAT(files->files.at("data/overlay_high_order.dat"), HasSubstr("\n-1 100 100 NaN 100 NaN\n"));
  EXPECT_THAT(html, HasSubstr("0:fill/free_blocks/node0_Normal/order9"));
}

TEST_F(ReportTest, SameInputsGiveIdenticalFiles) {
  auto t = ReadTimeline(WriteTrace("k.fltrace", false, KernelRecords));
  ASSERT_TRUE(t.ok());
  auto a = BuildReportFiles({*t}, {});
  auto b = BuildReportFiles({*t}, {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->files, b->files);
}

TEST_F(ReportTest, WriteReportRendersPlotsAndReplacesOnlyReports) {
  const std::string k = WriteTrace("k.fltrace", false, KernelRecords);
  const std::string out = dir_ + "/out";
  absl::Status st = WriteReport({k}, {}, out);
  ASSERT_TRUE(st.ok()) << st;
  auto files = BuildReportFiles({*ReadTimeline(k)}, {});
  ASSERT_TRUE(files.ok());
  for (const std::string& img : files->images) {
    const std::string bytes = Read(out + "/" + img);
    ASSERT_FALSE(bytes.empty()) << img;
    if (img.ends_with(".png")) {
      EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << img;
    } else {
      EXPECT_THAT(bytes, HasSubstr("<svg")) << img;
    }
  }
  EXPECT_EQ(Read(out + "/index.html"), files->files.at("index.html"));
  // Rendering again gives the same bytes everywhere (plots included), and
  // replaces the earlier report.
  std::map<std::string, std::string> first;
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    if (e.is_regular_file()) first[fs::relative(e.path(), out).string()] = Read(e.path().string());
  }
  ASSERT_TRUE(WriteReport({k}, {}, out).ok());
  std::map<std::string, std::string> second;
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    if (e.is_regular_file()) second[fs::relative(e.path(), out).string()] = Read(e.path().string());
  }
  EXPECT_EQ(first, second);
  // No temporary directory is left next to the output.
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_THAT(e.path().filename().string(), Not(HasSubstr(".tmp-")));
  }
  // A directory that is not a report is not replaced.
  const std::string other = dir_ + "/mine";
  fs::create_directories(other);
  std::ofstream(other + "/notes.txt") << "keep me";
  st = WriteReport({k}, {}, other);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("neither empty nor an earlier fraglab report"));
  EXPECT_EQ(Read(other + "/notes.txt"), "keep me");
}

TEST_F(ReportTest, ErrorsNameTheTraceAndLeaveNothing) {
  const std::string k = WriteTrace("k.fltrace", false, KernelRecords);
  // Corrupt a byte inside the first chunk's payload.
  std::string bytes = Read(k);
  ASSERT_GT(bytes.size(), 200u);
  bytes[bytes.size() - 40] ^= 0x5a;
  const std::string bad = dir_ + "/bad.fltrace";
  std::ofstream(bad, std::ios::binary) << bytes;
  const std::string out = dir_ + "/out";
  absl::Status st = WriteReport({k, bad}, {}, out);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr(bad));
  EXPECT_FALSE(fs::exists(out));
  st = WriteReport({dir_ + "/missing.fltrace"}, {}, out);
  EXPECT_THAT(st.message(), HasSubstr("missing.fltrace"));
  // gnuplot that cannot be run.
  ReportOptions opt;
  opt.gnuplot = "/nonexistent/gnuplot";
  st = WriteReport({k}, {}, out, opt);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace fraglab::analysis
