#include "analysis/report.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "analysis/compare.h"
#include "analysis/pageblock_picture.h"
#include "common/status.h"

namespace fraglab::analysis {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- text helpers

std::string Html(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// A gnuplot single-quoted string literal (only '' needs escaping there).
std::string Gq(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "''";
    } else if (c == '\n' || c == '\r') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "'";
}

// File-name-safe form of a label ("node0_Normal" stays, "3:release" -> "3_release").
std::string Slug(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') ? c : '_';
  return out;
}

// Up to 10 significant digits: exact for page and event counts below 10^10.
std::string Num(double v) { return absl::StrFormat("%.10g", v); }

std::string HexColor(const picture::Rgb& c) { return absl::StrFormat("#%02x%02x%02x", c.r, c.g, c.b); }

std::string MigratetypeColor(const std::string& name) {
  return HexColor(picture::CellColor(name, 0.0));
}

const char* kClassColors[kFallbackSeries] = {"#d62728", "#ff7f0e", "#1f77b4"};  // claim steal pollute

// gnuplot settings for side-by-side bars per x value (every histogram here).
constexpr const char* kClusteredBars =
    "set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
    "set boxwidth 0.9\n";

std::string DurationText(uint64_t ns) {
  if (ns < 1000) return absl::StrCat(ns, " ns");
  if (ns < 1000000) return absl::StrFormat("%.3g us", static_cast<double>(ns) / 1e3);
  if (ns < 1000000000) return absl::StrFormat("%.3g ms", static_cast<double>(ns) / 1e6);
  return absl::StrFormat("%.3g s", static_cast<double>(ns) / 1e9);
}

// ------------------------------------------------------------ per-phase rows

// What the tables show for one phase, summed over zones.
struct PhaseRow {
  int index = -1;
  std::string label;
  uint64_t begin_ts = 0, end_ts = 0;
  bool has_zones = false;
  bool has_types = false;
  uint64_t free_pages = 0;
  uint64_t high_order_blocks = 0;  // free memory in blocks >= pageblock order, in pageblocks
  std::array<uint64_t, FL_MAX_ORDERS> free_blocks{};
  std::array<uint64_t, FL_MAX_MIGRATETYPES> pageblocks{};
  std::array<uint64_t, kFallbackSeries> fallbacks{};
  uint64_t compact_attempts = 0;
  uint64_t compact_stall = 0, compact_success = 0, compact_fail = 0;
  bool has_compact_counters = false;
  std::vector<ProbeResult> probes;
  uint64_t records = 0;
};

std::vector<PhaseRow> PhaseRows(const TraceTimeline& t) {
  std::vector<PhaseRow> rows;
  const uint32_t pbo = t.header.pageblock_order;
  for (const PhaseMetrics& p : t.metrics.phases) {
    PhaseRow r;
    r.index = p.index;
    r.label = p.label;
    r.begin_ts = p.begin_ts;
    r.end_ts = p.end_ts;
    r.records = p.records;
    r.has_zones = !p.zones.empty();
    r.has_types = r.has_zones;
    for (const auto& [key, z] : p.zones) {
      r.free_pages += z.nr_free_pages;
      for (int o = 0; o < FL_MAX_ORDERS; ++o) {
        r.free_blocks[o] += z.nr_free[o];
        if (static_cast<uint32_t>(o) >= pbo) r.high_order_blocks += z.nr_free[o] << (o - pbo);
      }
      if (!z.has_types) r.has_types = false;
      for (int m = 0; m < FL_MAX_MIGRATETYPES; ++m) r.pageblocks[m] += z.pageblocks[m];
    }
    for (const auto& [key, n] : p.fallbacks) {
      const int cls = std::get<0>(key);
      if (cls >= 0 && static_cast<size_t>(cls) < kFallbackSeries) r.fallbacks[cls] += n;
    }
    for (const auto& [order, c] : p.compaction_by_order) r.compact_attempts += c.direct_attempts;
    auto ctr = [&](int id, uint64_t* out) {
      auto it = p.counter_delta.find(id);
      if (it != p.counter_delta.end()) {
        *out = it->second;
        r.has_compact_counters = true;
      }
    };
    ctr(FL_CTR_COMPACT_STALL, &r.compact_stall);
    ctr(FL_CTR_COMPACT_SUCCESS, &r.compact_success);
    ctr(FL_CTR_COMPACT_FAIL, &r.compact_fail);
    r.probes = p.probes;
    // The pseudo-phase before the first marker is shown only when it holds
    // something (the kernel run's start snapshot; the simulator has none).
    // The begin marker of the first phase is counted in it, hence <= 1.
    if (r.index < 0 && !r.has_zones && r.records <= 1) continue;
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string PhaseName(const PhaseRow& r) { return r.index < 0 ? std::string("start") : r.label; }

std::string ProbeText(const std::vector<ProbeResult>& probes) {
  std::vector<std::string> parts;
  static const char* kKinds[] = {"hugetlb", "thp", "order"};
  for (const ProbeResult& p : probes) {
    parts.push_back(absl::StrCat(p.kind < 3 ? kKinds[p.kind] : "probe", " order ", p.order, ": ",
                                 p.obtained, "/", p.requested));
  }
  return parts.empty() ? "" : absl::StrJoin(parts, "; ");
}

// Number of migratetype columns worth showing: the names the header gives.
size_t TypeCount(const TraceHeader& h) { return std::min<size_t>(h.migratetype_names.size(), FL_MAX_MIGRATETYPES); }

std::string ZoneName(const TraceHeader& h, const std::pair<int, int>& key) {
  return ZoneLabelByIndex(h, key.first, key.second);
}

// ------------------------------------------------------------ plot builder

struct PlotSpec {
  std::string name;   // plots/<name>.png and .svg
  int width = 900;
  int height = 420;
  std::string body;   // gnuplot commands after the terminal and output are set
};

class ReportBuilder {
 public:
  ReportFiles Build(const std::vector<TraceTimeline>& a, const std::vector<TraceTimeline>& b);

 private:
  void TraceSection(const TraceTimeline& t, const std::string& id, const std::string& heading);
  void PhaseTable(const TraceTimeline& t);
  void FreeHeatmaps(const TraceTimeline& t, const std::string& id);
  void Fallbacks(const TraceTimeline& t, const std::string& id);
  void Compaction(const TraceTimeline& t, const std::string& id);
  void Stalls(const TraceTimeline& t, const std::string& id);
  void Pageblocks(const TraceTimeline& t, const std::string& id);
  void KernelVsSim(const TraceTimeline& kernel, const TraceTimeline& sim);
  void Overlay(const std::vector<const TraceTimeline*>& a, const std::vector<const TraceTimeline*>& b,
               const std::string& a_name, const std::string& b_name);
  void CompareTable(const std::vector<TraceTimeline>& a, const std::vector<TraceTimeline>& b);

  std::string PhaseMarkers(const TraceTimeline& t) const;
  void Figure(const PlotSpec& spec, const std::string& caption);
  void NoData(const std::string& what);

  ReportFiles out_;
  std::string html_;
  std::vector<PlotSpec> plots_;
};

void ReportBuilder::Figure(const PlotSpec& spec, const std::string& caption) {
  plots_.push_back(spec);
  const std::string png = "plots/" + spec.name + ".png";
  const std::string svg = "plots/" + spec.name + ".svg";
  out_.images.push_back(png);
  out_.images.push_back(svg);
  absl::StrAppend(&html_, "<figure><img src=\"", Html(png), "\" width=\"", spec.width, "\" height=\"",
                  spec.height, "\" alt=\"", Html(caption), "\"><figcaption>", Html(caption),
                  " (<a href=\"", Html(svg), "\">SVG</a>)</figcaption></figure>\n");
}

void ReportBuilder::NoData(const std::string& what) {
  absl::StrAppend(&html_, "<p class=\"nodata\">No data: ", Html(what), "</p>\n");
}

// The x range of time plots: the whole trace (gnuplot would round the end up).
std::string XRange(const TraceTimeline& t) {
  const double end = TimelineX(t, t.last_ts);
  return end > 0 ? absl::StrCat("set xrange [0:", Num(end), "]\n") : "set xrange [0:*]\n";
}

// Dashed vertical lines and labels at each phase begin.
std::string ReportBuilder::PhaseMarkers(const TraceTimeline& t) const {
  std::string s;
  for (const PhaseMetrics& p : t.metrics.phases) {
    if (p.index < 0) continue;
    const double x = TimelineX(t, p.begin_ts);
    absl::StrAppend(&s, "set arrow from ", Num(x), ", graph 0 to ", Num(x),
                    ", graph 1 nohead dt 2 lw 1 lc rgb '#666666' front\n");
    absl::StrAppend(&s, "set label ", Gq(p.label), " at ", Num(x),
                    ", graph 1.02 rotate by 30 left font ',7' tc rgb '#333333'\n");
  }
  return s;
}

void ReportBuilder::PhaseTable(const TraceTimeline& t) {
  const std::vector<PhaseRow> rows = PhaseRows(t);
  const TraceHeader& h = t.header;
  const size_t ntypes = TypeCount(h);
  absl::StrAppend(&html_, "<h3>Per-phase metrics</h3>\n<p>State at each phase's end, summed over zones; "
                          "counts are events during the phase. Free order&ge;", h.pageblock_order,
                  " is free memory in blocks of at least a pageblock, counted in pageblocks.</p>\n");
  absl::StrAppend(&html_, "<table class=\"num\"><tr><th>phase</th><th>duration</th><th>free pages</th>"
                          "<th>free order&ge;", h.pageblock_order, "</th>");
  for (uint32_t o = 0; o <= h.max_order && o < FL_MAX_ORDERS; ++o) absl::StrAppend(&html_, "<th>o", o, "</th>");
  for (size_t m = 0; m < ntypes; ++m) absl::StrAppend(&html_, "<th>pb ", Html(h.migratetype_names[m]), "</th>");
  absl::StrAppend(&html_, "<th>claim</th><th>steal</th><th>pollute</th><th>compact tries</th>"
                          "<th>compact stall/success/fail (vmstat)</th><th>probes</th></tr>\n");
  for (const PhaseRow& r : rows) {
    const uint64_t dur = r.end_ts >= r.begin_ts ? r.end_ts - r.begin_ts : 0;
    absl::StrAppend(&html_, "<tr><td class=\"l\">", Html(PhaseName(r)), "</td><td>",
                    h.simulated ? absl::StrCat(dur, " ticks") : DurationText(dur), "</td>");
    if (r.has_zones) {
      absl::StrAppend(&html_, "<td>", r.free_pages, "</td><td>", r.high_order_blocks, "</td>");
      for (uint32_t o = 0; o <= h.max_order && o < FL_MAX_ORDERS; ++o) {
        absl::StrAppend(&html_, "<td>", r.free_blocks[o], "</td>");
      }
    } else {
      absl::StrAppend(&html_, "<td colspan=\"", 2 + std::min<uint32_t>(h.max_order + 1, FL_MAX_ORDERS),
                      "\" class=\"l\">no snapshot</td>");
    }
    for (size_t m = 0; m < ntypes; ++m) {
      absl::StrAppend(&html_, "<td>", r.has_types ? absl::StrCat(r.pageblocks[m]) : "&ndash;", "</td>");
    }
    for (size_t c = 0; c < kFallbackSeries; ++c) {
      absl::StrAppend(&html_, "<td>", t.has_tracker_events ? absl::StrCat(r.fallbacks[c]) : "&ndash;", "</td>");
    }
    absl::StrAppend(&html_, "<td>", t.has_tracker_events ? absl::StrCat(r.compact_attempts) : "&ndash;", "</td>");
    absl::StrAppend(&html_, "<td>",
                    r.has_compact_counters
                        ? absl::StrCat(r.compact_stall, " / ", r.compact_success, " / ", r.compact_fail)
                        : "&ndash;",
                    "</td><td class=\"l\">", Html(ProbeText(r.probes)), "</td></tr>\n");
  }
  absl::StrAppend(&html_, "</table>\n");
  if (!t.has_tracker_events) {
    absl::StrAppend(&html_, "<p class=\"note\">&ndash; : not recorded. This trace holds no tracker events "
                            "(recorded without BPF), so fallback and compaction counts are unknown, not "
                            "zero.</p>\n");
  }
}

void ReportBuilder::FreeHeatmaps(const TraceTimeline& t, const std::string& id) {
  absl::StrAppend(&html_, "<h3>Free memory per order over time</h3>\n");
  if (t.zones.empty()) {
    NoData("the trace has no zone snapshots (FL_EV_SNAPSHOT_ZONE)");
    return;
  }
  const double page_mib = static_cast<double>(t.header.page_size) / (1024.0 * 1024.0);
  const double x_end_trace = TimelineX(t, t.last_ts);
  for (const auto& [key, samples] : t.zones) {
    const std::string zone = ZoneName(t.header, key);
    std::string dat = absl::StrCat("# ", zone, ": free memory per order between snapshots\n",
                                   "# x_begin x_end order free_MiB (rows with 0 MiB omitted)\n");
    bool any = false;
    const double span = std::max(x_end_trace, 1e-9);
    for (size_t i = 0; i < samples.size(); ++i) {
      const double x0 = TimelineX(t, samples[i].ts);
      double x1 = i + 1 < samples.size() ? TimelineX(t, samples[i + 1].ts) : x_end_trace;
      if (x1 <= x0) x1 = x0 + std::max(span * 0.01, t.header.simulated ? 1.0 : 1e-3);
      for (uint32_t o = 0; o <= t.header.max_order && o < FL_MAX_ORDERS; ++o) {
        const double mib = static_cast<double>(samples[i].nr_free[o] << o) * page_mib;
        if (samples[i].nr_free[o] == 0) continue;
        any = true;
        absl::StrAppend(&dat, Num(x0), " ", Num(x1), " ", o, " ", Num(mib), "\n");
      }
    }
    const std::string name = absl::StrCat(id, "_free_", Slug(zone));
    const std::string caption = absl::StrCat("Zone ", zone, ": free MiB held in blocks of each order, ",
                                             samples.size(), " snapshot(s); white: no free block of that order");
    if (!any) {
      NoData(absl::StrCat("zone ", zone, " has no free blocks in any of its ", samples.size(), " snapshot(s)"));
      continue;
    }
    out_.files["data/" + name + ".dat"] = dat;
    PlotSpec p;
    p.name = name;
    p.height = 380;
    p.body = absl::StrCat(
        "set title ", Gq(absl::StrCat("Free memory per order - ", zone)), " offset 0,1.5\n",
        "set tmargin 5\nset xlabel ", Gq(TimelineXLabel(t)), "\nset ylabel 'order'\n",
        "set yrange [-0.5:", t.header.max_order, ".5]\nset ytics 1\n", XRange(t),
        "set logscale cb\nset cblabel 'free MiB'\n",
        "set palette defined (0 '#deebf7', 1 '#6baed6', 2 '#08519c', 3 '#08306b')\n", PhaseMarkers(t),
        "plot 'data/", name, ".dat' using (($1+$2)/2):3:(($2-$1)/2):(0.5):4 with boxxyerror "
        "fs solid 1.0 noborder lc palette notitle\n");
    Figure(p, caption);
  }
}

void ReportBuilder::Fallbacks(const TraceTimeline& t, const std::string& id) {
  absl::StrAppend(&html_, "<h3>Fallbacks</h3>\n");
  const TimeBins& bins = t.fallbacks;
  uint64_t total = 0;
  for (size_t c = 0; c < kFallbackSeries; ++c) total += bins.total(c);
  if (total == 0) {
    NoData(t.has_tracker_events
               ? "the tracker recorded no fallback (extfrag) events in this trace: none happened"
               : "the trace has no tracker events (recorded without BPF), so fallbacks were not recorded");
    return;
  }
  // Over time.
  {
    const double width = t.header.simulated ? static_cast<double>(bins.width())
                                            : static_cast<double>(bins.width()) / 1e9;
    const double origin = TimelineX(t, bins.origin());
    std::string dat = absl::StrCat("# fallbacks per bin of ", Num(width), t.header.simulated ? " ticks" : " s",
                                   "\n# x_begin claim steal pollute\n");
    for (size_t i = 0; i < bins.used_bins(); ++i) {
      absl::StrAppend(&dat, Num(origin + width * static_cast<double>(i)), " ", bins.count(i, 0), " ",
                      bins.count(i, 1), " ", bins.count(i, 2), "\n");
    }
    // Closing row so the last step is drawn to its end.
    absl::StrAppend(&dat, Num(origin + width * static_cast<double>(bins.used_bins())), " 0 0 0\n");
    const std::string name = id + "_fallbacks_time";
    out_.files["data/" + name + ".dat"] = dat;
    PlotSpec p;
    p.name = name;
    std::string plot = "plot ";
    for (size_t c = 0; c < kFallbackSeries; ++c) {
      absl::StrAppend(&plot, c ? ", " : "", "'data/", name, ".dat' using 1:", c + 2, " with steps lw 2 lc rgb '",
                      kClassColors[c], "' title '", ExtfragClassLabel(static_cast<int>(c)), " (",
                      bins.total(c), ")'");
    }
    p.body = absl::StrCat("set title ", Gq("Fallbacks over time by class"), " offset 0,1.5\nset tmargin 5\n",
                          "set xlabel ", Gq(TimelineXLabel(t)), "\nset ylabel ",
                          Gq(absl::StrCat("fallbacks per ", Num(width), t.header.simulated ? " ticks" : " s")),
                          "\nset key top right\n", XRange(t), "set yrange [0:*]\n", PhaseMarkers(t), plot, "\n");
    Figure(p, absl::StrCat("Fallbacks over time: ", bins.total(0), " claim, ", bins.total(1), " steal, ",
                           bins.total(2), " pollute"));
  }
  // Migratetype-pair matrix, one panel per class.
  {
    const TraceHeader& h = t.header;
    std::set<int> types;
    for (size_t m = 0; m < TypeCount(h); ++m) types.insert(static_cast<int>(m));
    for (const auto& [pair, counts] : t.fallback_pairs) {
      types.insert(pair.first);
      types.insert(pair.second);
    }
    std::vector<int> order(types.begin(), types.end());
    auto pos = [&](int mt) { return static_cast<int>(std::find(order.begin(), order.end(), mt) - order.begin()); };
    std::string dat = "# alloc_pos fallback_pos claim steal pollute alloc_type fallback_type\n";
    uint64_t max_count = 1;
    for (int from : order) {
      for (int to : order) {
        std::array<uint64_t, kFallbackSeries> c{};
        auto it = t.fallback_pairs.find({from, to});
        if (it != t.fallback_pairs.end()) c = it->second;
        for (uint64_t v : c) max_count = std::max(max_count, v);
        absl::StrAppend(&dat, pos(from), " ", pos(to), " ", c[0], " ", c[1], " ", c[2], " \"",
                        MigratetypeName(h, from), "\" \"", MigratetypeName(h, to), "\"\n");
      }
    }
    const std::string name = id + "_fallback_matrix";
    out_.files["data/" + name + ".dat"] = dat;
    std::string tics;
    for (size_t i = 0; i < order.size(); ++i) {
      absl::StrAppend(&tics, i ? ", " : "", Gq(MigratetypeName(h, order[i])), " ", i);
    }
    PlotSpec p;
    p.name = name;
    p.width = 1200;
    p.height = 440;
    std::string body = absl::StrCat(
        "set multiplot layout 1,3 title 'Fallbacks by migratetype pair (row: allocation type, column: type of the "
        "block it fell back to)'\n",
        "set xtics (", tics, ") rotate by 30 right font ',8'\nset ytics (", tics, ") font ',8'\n",
        "set xrange [-0.5:", order.size() - 0.5, "]\nset yrange [", order.size() - 0.5, ":-0.5]\n",
        "set cbrange [0:", max_count, "]\nset palette defined (0 '#ffffff', 1 '#fdd0a2', 2 '#f16913', 3 '#7f2704')\n",
        "unset colorbox\nset xlabel 'fallback type'\nset ylabel 'allocation type'\nset size ratio -1\n");
    for (size_t c = 0; c < kFallbackSeries; ++c) {
      absl::StrAppend(&body, "set title ", Gq(absl::StrCat(ExtfragClassLabel(static_cast<int>(c)), " (",
                                                           bins.total(c), ")")),
                      "\nplot 'data/", name, ".dat' using 2:1:(0.5):(0.5):", c + 3,
                      " with boxxyerror fs solid 1.0 border lc rgb '#bbbbbb' lc palette notitle, '' using 2:1:(($",
                      c + 3, ")>0 ? sprintf('%d', $", c + 3, ") : '') with labels font ',8' tc rgb '#1f4e79' notitle\n");
    }
    absl::StrAppend(&body, "unset multiplot\n");
    p.body = body;
    Figure(p, "Fallbacks by (allocation type, fallback type) pair, per class");
    // The same numbers as a table.
    absl::StrAppend(&html_, "<table class=\"num\"><tr><th>allocation type</th><th>fallback type</th>"
                            "<th>claim</th><th>steal</th><th>pollute</th></tr>\n");
    for (const auto& [pair, c] : t.fallback_pairs) {
      absl::StrAppend(&html_, "<tr><td class=\"l\">", Html(MigratetypeName(h, pair.first)), "</td><td class=\"l\">",
                      Html(MigratetypeName(h, pair.second)), "</td><td>", c[0], "</td><td>", c[1], "</td><td>",
                      c[2], "</td></tr>\n");
    }
    absl::StrAppend(&html_, "</table>\n");
  }
}

void ReportBuilder::Compaction(const TraceTimeline& t, const std::string& id) {
  absl::StrAppend(&html_, "<h3>Compaction per order</h3>\n");
  if (!t.has_compaction_events || t.compaction.empty()) {
    NoData(t.has_tracker_events
               ? "the tracker recorded no compaction events in this trace: no compaction ran"
               : "the trace has no tracker events (recorded without BPF), so compaction was not recorded");
    return;
  }
  std::string dat = "# order attempts successes failures deferred kcompactd_wakeups\n";
  for (const auto& [order, c] : t.compaction) {
    absl::StrAppend(&dat, order, " ", c.attempts, " ", c.successes, " ", c.failures, " ", c.deferred, " ",
                    c.kcompactd_wakeups, "\n");
  }
  const std::string name = id + "_compaction";
  out_.files["data/" + name + ".dat"] = dat;
  PlotSpec p;
  p.name = name;
  p.body = absl::StrCat(
      "set title 'Compaction per order (order -1: manual/proactive)'\n", kClusteredBars,
      "set xlabel 'order'\nset ylabel 'count'\nset yrange [0:*]\nset key top left\n",
      "plot 'data/", name, ".dat' using 2:xtic(1) title 'direct attempts' lc rgb '#7f7f7f', "
      "'' using 3 title 'successes' lc rgb '#2ca02c', '' using 4 title 'failures' lc rgb '#d62728', "
      "'' using 5 title 'deferred' lc rgb '#9467bd'\n");
  Figure(p, absl::StrCat("Compaction attempts and outcomes per order (outcomes from ", t.compaction_outcome_source,
                         ")"));
  absl::StrAppend(&html_, "<table class=\"num\"><tr><th>order</th><th>direct attempts</th><th>successes</th>"
                          "<th>failures</th><th>deferred</th><th>kcompactd wakeups</th></tr>\n");
  for (const auto& [order, c] : t.compaction) {
    absl::StrAppend(&html_, "<tr><td>", order, "</td><td>", c.attempts, "</td><td>", c.successes, "</td><td>",
                    c.failures, "</td><td>", c.deferred, "</td><td>", c.kcompactd_wakeups, "</td></tr>\n");
  }
  absl::StrAppend(&html_, "</table>\n");
}

void ReportBuilder::Stalls(const TraceTimeline& t, const std::string& id) {
  absl::StrAppend(&html_, "<h3>Stall latency</h3>\n");
  const LatencyHistogram& ch = t.compaction_stalls;
  const LatencyHistogram& rh = t.reclaim_stalls;
  if (ch.count() + rh.count() == 0) {
    NoData(absl::StrCat("the trace has no compaction begin/end or direct reclaim begin/end pairs",
                        t.unmatched_stall_ends ? absl::StrCat(" (", t.unmatched_stall_ends,
                                                              " end event(s) without a begin)")
                                               : "",
                        t.has_tracker_events ? "" : "; it was recorded without the tracker"));
    return;
  }
  size_t lo = 63, hi = 0;
  for (size_t k = 0; k < 64; ++k) {
    if (ch.buckets()[k] + rh.buckets()[k] == 0) continue;
    lo = std::min(lo, k);
    hi = std::max(hi, k);
  }
  std::string dat = "# bucket [2^k, 2^(k+1)) ns: k label compaction direct_reclaim\n";
  for (size_t k = lo; k <= hi; ++k) {
    absl::StrAppend(&dat, k, " \"", DurationText(uint64_t{1} << k), "\" ", ch.buckets()[k], " ", rh.buckets()[k],
                    "\n");
  }
  const std::string name = id + "_stalls";
  out_.files["data/" + name + ".dat"] = dat;
  PlotSpec p;
  p.name = name;
  p.body = absl::StrCat(
      "set title 'Stall latency (log2 buckets; label = bucket start)'\n", kClusteredBars,
      "set xlabel 'duration'\nset ylabel 'stalls'\nset yrange [0:*]\nset xtics rotate by 30 right\n",
      "plot 'data/", name, ".dat' using 3:xtic(2) title ", Gq(absl::StrCat("compaction (", ch.count(), ")")),
      " lc rgb '#9467bd', '' using 4 title ", Gq(absl::StrCat("direct reclaim (", rh.count(), ")")),
      " lc rgb '#8c564b'\n");
  Figure(p, "Stall latency distribution: compaction runs (begin to end, per pid) and direct reclaim");
  absl::StrAppend(&html_, "<table class=\"num\"><tr><th>stall</th><th>count</th><th>min</th><th>mean</th>"
                          "<th>p50 &le;</th><th>p99 &le;</th><th>max</th></tr>\n");
  for (const auto& [label, hist] : {std::pair<const char*, const LatencyHistogram*>{"compaction", &ch},
                                    {"direct reclaim", &rh}}) {
    if (hist->count() == 0) {
      absl::StrAppend(&html_, "<tr><td class=\"l\">", label, "</td><td>0</td><td colspan=\"5\" class=\"l\">"
                              "no data</td></tr>\n");
      continue;
    }
    absl::StrAppend(&html_, "<tr><td class=\"l\">", label, "</td><td>", hist->count(), "</td><td>",
                    DurationText(hist->min_ns()), "</td><td>",
                    DurationText(static_cast<uint64_t>(hist->mean_ns())), "</td><td>",
                    DurationText(hist->QuantileUpperBound(0.5)), "</td><td>",
                    DurationText(hist->QuantileUpperBound(0.99)), "</td><td>", DurationText(hist->max_ns()),
                    "</td></tr>\n");
  }
  absl::StrAppend(&html_, "</table>\n");
}

void ReportBuilder::Pageblocks(const TraceTimeline& t, const std::string& id) {
  absl::StrAppend(&html_, "<h3>Pageblocks per migratetype over time</h3>\n");
  const TraceHeader& h = t.header;
  const size_t ntypes = TypeCount(h);
  bool drew = false;
  for (const auto& [key, samples] : t.zones) {
    const std::string zone = ZoneName(h, key);
    std::string dat = absl::StrCat("# ", zone, ": pageblocks per migratetype\n# x");
    for (size_t m = 0; m < ntypes; ++m) absl::StrAppend(&dat, " ", h.migratetype_names[m]);
    absl::StrAppend(&dat, "\n");
    size_t rows = 0;
    std::array<uint64_t, FL_MAX_MIGRATETYPES> seen{};
    for (const ZoneSample& s : samples) {
      if (!s.has_types) continue;
      ++rows;
      absl::StrAppend(&dat, Num(TimelineX(t, s.ts)));
      for (size_t m = 0; m < ntypes; ++m) {
        absl::StrAppend(&dat, " ", s.pageblocks[m]);
        seen[m] += s.pageblocks[m];
      }
      absl::StrAppend(&dat, "\n");
    }
    if (rows == 0) {
      NoData(absl::StrCat("zone ", zone, ": no snapshot has per-migratetype pageblock counts (pagetypeinfo was "
                          "unreadable when the trace was recorded)"));
      continue;
    }
    const std::string name = absl::StrCat(id, "_pageblocks_", Slug(zone));
    out_.files["data/" + name + ".dat"] = dat;
    std::string plot = "plot ";
    bool first = true;
    for (size_t m = 0; m < ntypes; ++m) {
      if (seen[m] == 0) continue;  // a type this zone never had
      absl::StrAppend(&plot, first ? "" : ", ", "'data/", name, ".dat' using 1:", m + 2,
                      " with linespoints lw 2 pt 7 ps 0.6 lc rgb '", MigratetypeColor(h.migratetype_names[m]),
                      "' title ", Gq(h.migratetype_names[m]));
      first = false;
    }
    if (first) {
      NoData(absl::StrCat("zone ", zone, ": every pageblock count is zero"));
      continue;
    }
    PlotSpec p;
    p.name = name;
    p.body = absl::StrCat("set title ", Gq(absl::StrCat("Pageblocks per migratetype - ", zone)),
                          " offset 0,1.5\nset tmargin 5\nset xlabel ", Gq(TimelineXLabel(t)),
                          "\nset ylabel 'pageblocks'\n", XRange(t), "set yrange [0:*]\nset key outside right\n",
                          PhaseMarkers(t), plot, "\n");
    Figure(p, absl::StrCat("Zone ", zone, ": pageblocks per migratetype at each of ", rows, " snapshot(s)"));
    drew = true;
  }
  if (t.zones.empty()) NoData("the trace has no zone snapshots (FL_EV_SNAPSHOT_ZONE)");
  (void)drew;
}

void ReportBuilder::TraceSection(const TraceTimeline& t, const std::string& id, const std::string& heading) {
  const TraceHeader& h = t.header;
  absl::StrAppend(&html_, "<section id=\"", id, "\">\n<h2>", Html(heading), "</h2>\n<table class=\"info\">\n");
  auto row = [&](const std::string& k, const std::string& v) {
    absl::StrAppend(&html_, "<tr><th>", Html(k), "</th><td>", Html(v), "</td></tr>\n");
  };
  row("file", t.path);
  row("source", h.simulated ? "simulator" : "kernel (generator + tracker)");
  row("scenario", absl::StrCat(h.scenario_name, " (seed ", h.seed, ")"));
  row("kernel", absl::StrCat(h.kernel_release, ", era ", h.kernel_era));
  row("machine", absl::StrCat(h.machine, ", ", h.nr_cpus, " CPUs, pageblock order ", h.pageblock_order));
  std::vector<std::string> zones;
  for (const ZoneLayout& z : h.zones) {
    zones.push_back(absl::StrCat("node", z.nid, "_", z.name, " ", z.managed, " pages managed"));
  }
  row("zones", absl::StrJoin(zones, "; "));
  if (h.created_unix_s != 0) row("recorded (unix time)", absl::StrCat(h.created_unix_s));
  row("records", absl::StrCat(t.records, t.closed ? "" : " (writer did not finish the file)",
                              t.truncated ? absl::StrCat(" (truncated: ", t.truncation_note, ")") : ""));
  row("events lost by the recorder", absl::StrCat(t.metrics.drops));
  absl::StrAppend(&html_, "</table>\n");
  PhaseTable(t);
  FreeHeatmaps(t, id);
  Fallbacks(t, id);
  Compaction(t, id);
  Stalls(t, id);
  Pageblocks(t, id);
  absl::StrAppend(&html_, "</section>\n");
}

// Metric per phase used by the side-by-side and overlay views.
struct PhaseMetricDef {
  const char* name;
  const char* title;
  double (*get)(const PhaseRow&);
};

const PhaseMetricDef kPhaseMetrics[] = {
    {"high_order", "free blocks >= pageblock order (in pageblocks)",
     [](const PhaseRow& r) { return static_cast<double>(r.high_order_blocks); }},
    {"free_pages", "free pages", [](const PhaseRow& r) { return static_cast<double>(r.free_pages); }},
    {"claim", "claim fallbacks", [](const PhaseRow& r) { return static_cast<double>(r.fallbacks[0]); }},
    {"steal", "steal fallbacks", [](const PhaseRow& r) { return static_cast<double>(r.fallbacks[1]); }},
    {"pollute", "pollute fallbacks", [](const PhaseRow& r) { return static_cast<double>(r.fallbacks[2]); }},
};

// Phase rows keyed by phase index ("start" = -1), only phases with state.
std::map<int, PhaseRow> RowsByIndex(const TraceTimeline& t) {
  std::map<int, PhaseRow> out;
  for (PhaseRow& r : PhaseRows(t)) out[r.index] = std::move(r);
  return out;
}

void ReportBuilder::KernelVsSim(const TraceTimeline& kernel, const TraceTimeline& sim) {
  absl::StrAppend(&html_, "<section id=\"kernel-vs-sim\">\n<h2>Kernel vs simulator, per phase</h2>\n<p>Kernel: ",
                  Html(kernel.path), " (", Html(kernel.header.kernel_release), "). Simulator: ", Html(sim.path),
                  " (era ", Html(sim.header.kernel_era), "). Phases are matched by their index.</p>\n");
  if (kernel.header.scenario_name != sim.header.scenario_name) {
    absl::StrAppend(&html_, "<p class=\"note\">The traces come from different scenarios (",
                    Html(kernel.header.scenario_name), " vs ", Html(sim.header.scenario_name), ").</p>\n");
  }
  const std::map<int, PhaseRow> kr = RowsByIndex(kernel);
  const std::map<int, PhaseRow> sr = RowsByIndex(sim);
  std::set<int> indices;
  for (const auto& [i, r] : kr) indices.insert(i);
  for (const auto& [i, r] : sr) indices.insert(i);
  // Table.
  absl::StrAppend(&html_, "<table class=\"num\"><tr><th>phase</th><th>metric</th><th>kernel</th><th>simulator</th>"
                          "<th>difference (sim - kernel)</th></tr>\n");
  const size_t ntypes = std::min(TypeCount(kernel.header), TypeCount(sim.header));
  for (int i : indices) {
    auto k = kr.find(i);
    auto s = sr.find(i);
    const std::string label = k != kr.end() ? PhaseName(k->second) : PhaseName(s->second);
    auto line = [&](const std::string& metric, std::optional<double> kv, std::optional<double> sv) {
      absl::StrAppend(&html_, "<tr><td class=\"l\">", Html(label), "</td><td class=\"l\">", Html(metric), "</td><td>",
                      kv ? Num(*kv) : "&ndash;", "</td><td>", sv ? Num(*sv) : "&ndash;", "</td><td>",
                      kv && sv ? Num(*sv - *kv) : "&ndash;", "</td></tr>\n");
    };
    auto val = [&](const std::map<int, PhaseRow>::const_iterator& it, const std::map<int, PhaseRow>& m,
                   bool need_zones, bool tracker, auto fn) -> std::optional<double> {
      if (it == m.end()) return std::nullopt;
      if (need_zones && !it->second.has_zones) return std::nullopt;
      if (!tracker) return std::nullopt;
      return fn(it->second);
    };
    for (const PhaseMetricDef& d : kPhaseMetrics) {
      const bool zone_metric = std::string(d.name) == "high_order" || std::string(d.name) == "free_pages";
      line(d.title, val(k, kr, zone_metric, zone_metric || kernel.has_tracker_events, d.get),
           val(s, sr, zone_metric, zone_metric || sim.has_tracker_events, d.get));
    }
    for (size_t m = 0; m < ntypes; ++m) {
      auto pb = [m](const PhaseRow& r) { return static_cast<double>(r.pageblocks[m]); };
      const bool kt = k != kr.end() && k->second.has_types;
      const bool st = s != sr.end() && s->second.has_types;
      line(absl::StrCat("pageblocks ", kernel.header.migratetype_names[m]),
           kt ? std::optional<double>(pb(k->second)) : std::nullopt,
           st ? std::optional<double>(pb(s->second)) : std::nullopt);
    }
  }
  absl::StrAppend(&html_, "</table>\n");
  // Grouped bars per phase for the high-order metric and each fallback class.
  std::string dat = "# index phase kernel_high_order sim_high_order kernel_claim sim_claim kernel_steal sim_steal "
                    "kernel_pollute sim_pollute (NaN: no value)\n";
  for (int i : indices) {
    auto k = kr.find(i);
    auto s = sr.find(i);
    const std::string label = k != kr.end() ? PhaseName(k->second) : PhaseName(s->second);
    absl::StrAppend(&dat, i, " \"", label, "\"");
    for (const PhaseMetricDef& d : kPhaseMetrics) {
      const std::string n = d.name;
      if (n == "free_pages") continue;
      const bool zone_metric = n == "high_order";
      auto v = [&](const std::map<int, PhaseRow>& m, const std::map<int, PhaseRow>::const_iterator& it,
                   bool tracker) -> std::string {
        if (it == m.end() || (zone_metric && !it->second.has_zones) || (!zone_metric && !tracker)) return "NaN";
        return Num(d.get(it->second));
      };
      absl::StrAppend(&dat, " ", v(kr, k, kernel.has_tracker_events), " ", v(sr, s, sim.has_tracker_events));
    }
    absl::StrAppend(&dat, "\n");
  }
  const std::string name = "kernel_vs_sim";
  out_.files["data/" + name + ".dat"] = dat;
  PlotSpec p;
  p.name = name;
  p.width = 1200;
  p.height = 520;
  std::string body = absl::StrCat("set multiplot layout 2,2 title 'Kernel vs simulator per phase'\n",
                                  kClusteredBars,
                                  "set xtics rotate by 30 right font ',7'\nset yrange [0:*]\n"
                                  "set key top left font ',8'\n");
  const char* titles[] = {"free blocks >= pageblock order (pageblocks)", "claim fallbacks", "steal fallbacks",
                          "pollute fallbacks"};
  for (int panel = 0; panel < 4; ++panel) {
    absl::StrAppend(&body, "set title ", Gq(titles[panel]), "\nplot 'data/", name, ".dat' using ", 3 + 2 * panel,
                    ":xtic(2) title 'kernel' lc rgb '#1f77b4', '' using ", 4 + 2 * panel,
                    " title 'simulator' lc rgb '#ff7f0e'\n");
  }
  absl::StrAppend(&body, "unset multiplot\n");
  p.body = body;
  Figure(p, "Kernel and simulator side by side at each phase's end (fallbacks: during the phase)");
  absl::StrAppend(&html_, "</section>\n");
}

void ReportBuilder::Overlay(const std::vector<const TraceTimeline*>& a, const std::vector<const TraceTimeline*>& b,
                            const std::string& a_name, const std::string& b_name) {
  absl::StrAppend(&html_, "<section id=\"overlay\">\n<h2>", Html(b.empty() ? "Runs overlaid" : a_name + " vs " + b_name),
                  ", aligned on phase markers</h2>\n<p>Each thin line is one run, the thick lines the mean of "
                  "each set; x is the phase index, the value is taken at the phase's end (fallbacks: during "
                  "the phase), so runs of different length and clock line up phase by phase.</p>\n");
  std::set<int> indices;
  std::map<int, std::string> labels;
  std::vector<std::map<int, PhaseRow>> rows_a, rows_b;
  for (const TraceTimeline* t : a) rows_a.push_back(RowsByIndex(*t));
  for (const TraceTimeline* t : b) rows_b.push_back(RowsByIndex(*t));
  for (const auto* set : {&rows_a, &rows_b}) {
    for (const auto& m : *set) {
      for (const auto& [i, r] : m) {
        indices.insert(i);
        labels.emplace(i, PhaseName(r));
      }
    }
  }
  std::string tics;
  for (int i : indices) absl::StrAppend(&tics, tics.empty() ? "" : ", ", Gq(labels[i]), " ", i);
  for (const PhaseMetricDef& d : kPhaseMetrics) {
    const std::string metric = d.name;
    const bool zone_metric = metric == "high_order" || metric == "free_pages";
    const std::string name = "overlay_" + metric;
    std::string dat = absl::StrCat("# ", d.title, " per phase index; columns: index, then one per run (",
                                   a.size(), " of ", a_name, b.empty() ? "" : absl::StrCat(", ", b.size(), " of ", b_name),
                                   "), then the mean of each set; NaN: no value\n");
    bool any = false;
    for (int i : indices) {
      absl::StrAppend(&dat, i);
      auto side = [&](const std::vector<std::map<int, PhaseRow>>& rows,
                      const std::vector<const TraceTimeline*>& traces) {
        double sum = 0;
        int n = 0;
        for (size_t r = 0; r < rows.size(); ++r) {
          auto it = rows[r].find(i);
          if (it == rows[r].end() || (zone_metric && !it->second.has_zones) ||
              (!zone_metric && !traces[r]->has_tracker_events)) {
            absl::StrAppend(&dat, " NaN");
            continue;
          }
          const double v = d.get(it->second);
          absl::StrAppend(&dat, " ", Num(v));
          sum += v;
          ++n;
          any = true;
        }
        return n ? Num(sum / n) : std::string("NaN");
      };
      const std::string ma = side(rows_a, a);
      const std::string mb = b.empty() ? "" : side(rows_b, b);
      absl::StrAppend(&dat, " ", ma, b.empty() ? "" : " " + mb, "\n");
    }
    if (!any) {
      NoData(absl::StrCat(d.title, ": no run has this metric (no snapshots or no tracker events)"));
      continue;
    }
    out_.files["data/" + name + ".dat"] = dat;
    const size_t na = a.size(), nb = b.size();
    std::string plot = "plot ";
    for (size_t r = 0; r < na + nb; ++r) {
      const bool is_a = r < na;
      const TraceTimeline* t = is_a ? a[r] : b[r - na];
      const std::string run_title = b.empty() ? fs::path(t->path).filename().string() : "";
      absl::StrAppend(&plot, r ? ", " : "", "'data/", name, ".dat' using 1:", r + 2, " with linespoints lw 1 pt 7 ps 0.5 ",
                      b.empty() ? absl::StrCat("lc ", r + 1, " title ", Gq(run_title))
                                : absl::StrCat("lc rgb '", is_a ? "#9ecae1" : "#fdae6b", "' notitle"));
    }
    if (!b.empty()) {
      absl::StrAppend(&plot, ", '' using 1:", na + nb + 2, " with linespoints lw 3 pt 7 lc rgb '#08519c' title ",
                      Gq(absl::StrCat(a_name, " mean (", na, " runs)")), ", '' using 1:", na + nb + 3,
                      " with linespoints lw 3 pt 7 lc rgb '#d94801' title ",
                      Gq(absl::StrCat(b_name, " mean (", nb, " runs)")));
    }
    PlotSpec p;
    p.name = name;
    p.body = absl::StrCat("set title ", Gq(d.title), "\nset xtics (", tics, ") rotate by 30 right font ',7'\n",
                          "set xrange [", *indices.begin() - 0.5, ":", *indices.rbegin() + 0.5, "]\n",
                          "set yrange [0:*]\nset key outside right font ',8'\nset datafile missing 'NaN'\n", plot,
                          "\n");
    Figure(p, absl::StrCat(d.title, " per phase"));
  }
  absl::StrAppend(&html_, "</section>\n");
}

void ReportBuilder::CompareTable(const std::vector<TraceTimeline>& a, const std::vector<TraceTimeline>& b) {
  std::vector<std::map<std::string, double>> ma, mb;
  for (const TraceTimeline& t : a) ma.push_back(FlattenMetrics(t.metrics));
  for (const TraceTimeline& t : b) mb.push_back(FlattenMetrics(t.metrics));
  CompareOptions opt;
  const CompareResult r = CompareRuns(ma, mb, opt);
  absl::StrAppend(&html_, "<section id=\"compare\">\n<h2>A vs B: metrics that changed</h2>\n<p>", r.runs_a,
                  " run(s) in A, ", r.runs_b, " in B; Welch's t-test at alpha ", Num(opt.alpha), ", threshold ",
                  Num(opt.threshold_pct), "% (as <code>fraglab compare</code> with its defaults): ", r.regressions,
                  " regression(s), ", r.improvements, " improvement(s).</p>\n");
  absl::StrAppend(&html_, "<table class=\"num\"><tr><th>metric</th><th>A mean</th><th>A sd</th><th>B mean</th>"
                          "<th>B sd</th><th>change</th><th>p</th><th>verdict</th></tr>\n");
  size_t shown = 0;
  for (const MetricComparison& m : r.metrics) {
    if (m.a.mean == m.b.mean && m.a.stddev == 0 && m.b.stddev == 0) continue;
    ++shown;
    const char* verdict = m.regression ? "regression" : m.improvement ? "improvement" : m.significant ? "significant" : "";
    absl::StrAppend(&html_, "<tr", m.regression ? " class=\"bad\"" : m.improvement ? " class=\"good\"" : "",
                    "><td class=\"l\">", Html(m.name), "</td><td>", Num(m.a.mean), "</td><td>", Num(m.a.stddev),
                    "</td><td>", Num(m.b.mean), "</td><td>", Num(m.b.stddev), "</td><td>",
                    absl::StrFormat("%+.1f%%", m.change_pct), "</td><td>", Num(m.test.p_value), "</td><td>",
                    verdict, "</td></tr>\n");
  }
  if (shown == 0) absl::StrAppend(&html_, "<tr><td colspan=\"8\" class=\"l\">no metric differs</td></tr>\n");
  absl::StrAppend(&html_, "</table>\n</section>\n");
}

std::string PageHead(const std::string& title) {
  return absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"generator\" content=\"",
      kReportGeneratorTag, "\">\n<link rel=\"icon\" href=\"data:,\">\n<title>", Html(title), "</title>\n<style>\n",
      "body{font-family:sans-serif;margin:1.5em;max-width:1300px;color:#222}\n"
      "table{border-collapse:collapse;margin:0.5em 0 1em 0;font-size:12px}\n"
      "th,td{border:1px solid #ccc;padding:2px 6px}\nth{background:#f0f0f0}\n"
      "table.num td{text-align:right}\ntd.l{text-align:left}\ntable.info th{text-align:left}\n"
      "figure{margin:0.5em 0 1.5em 0}\nfigure img{max-width:100%;height:auto;border:1px solid #ddd}\n"
      "figcaption{font-size:12px;color:#444}\n.nodata{color:#a00;font-style:italic}\n.note{color:#555}\n"
      "tr.bad td{background:#fde0dd}\ntr.good td{background:#e5f5e0}\nsection{margin-bottom:2em}\n",
      "</style>\n</head>\n<body>\n");
}

ReportFiles ReportBuilder::Build(const std::vector<TraceTimeline>& a, const std::vector<TraceTimeline>& b) {
  const std::string scenario = a.front().header.scenario_name;
  html_ = PageHead(absl::StrCat("fraglab report: ", scenario));
  absl::StrAppend(&html_, "<h1>fraglab report: ", Html(scenario), "</h1>\n<ul>\n");
  auto list = [&](const std::vector<TraceTimeline>& set, const std::string& prefix, const std::string& side) {
    for (size_t i = 0; i < set.size(); ++i) {
      absl::StrAppend(&html_, "<li><a href=\"#", prefix, i + 1, "\">", Html(side), Html(set[i].path), "</a> (",
                      set[i].header.simulated ? "simulator" : "kernel ", set[i].header.simulated ? "" :
                      Html(set[i].header.kernel_release), ")</li>\n");
    }
  };
  list(a, b.empty() ? "t" : "a", b.empty() ? "" : "A: ");
  list(b, "b", "B: ");
  absl::StrAppend(&html_, "</ul>\n");

  std::vector<const TraceTimeline*> pa, pb;
  for (const TraceTimeline& t : a) pa.push_back(&t);
  for (const TraceTimeline& t : b) pb.push_back(&t);
  if (!b.empty()) {
    CompareTable(a, b);
    Overlay(pa, pb, "A", "B");
  } else if (a.size() == 2 && a[0].header.simulated != a[1].header.simulated) {
    const TraceTimeline& kernel = a[0].header.simulated ? a[1] : a[0];
    const TraceTimeline& sim = a[0].header.simulated ? a[0] : a[1];
    KernelVsSim(kernel, sim);
  } else if (a.size() > 1) {
    Overlay(pa, {}, "runs", "");
  }
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string id = absl::StrCat(b.empty() ? "t" : "a", i + 1);
    TraceSection(a[i], id, absl::StrCat(b.empty() ? "Trace " : "A run ", i + 1, ": ", a[i].path));
  }
  for (size_t i = 0; i < b.size(); ++i) {
    TraceSection(b[i], absl::StrCat("b", i + 1), absl::StrCat("B run ", i + 1, ": ", b[i].path));
  }
  absl::StrAppend(&html_, "<p class=\"note\">Written by ", kReportGeneratorTag,
                  " with gnuplot; the numbers behind each plot are in data/.</p>\n</body>\n</html>\n");
  out_.files["index.html"] = html_;

  std::string gp = "# gnuplot script written by fraglab report: every plot as PNG and SVG.\n";
  for (const PlotSpec& p : plots_) {
    for (const char* ext : {"png", "svg"}) {
      absl::StrAppend(&gp, "reset\n",
                      std::string(ext) == "png"
                          ? absl::StrCat("set terminal pngcairo size ", p.width, ",", p.height,
                                         " font 'sans,9' noenhanced\n")
                          : absl::StrCat("set terminal svg size ", p.width, ",", p.height,
                                         " fixed font 'sans,9' noenhanced background rgb 'white'\n"),
                      "set output 'plots/", p.name, ".", ext, "'\nset grid lc rgb '#dddddd'\n", p.body,
                      "unset output\n");
    }
  }
  out_.files["plots.gp"] = gp;
  return std::move(out_);
}

// -------------------------------------------------------------- writing

absl::Status WriteFile(const std::string& path, const std::string& contents) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create directory for ", path, ": ", ec.message()));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return ErrnoStatus(errno, absl::StrCat("cannot create ", path));
  out << contents;
  out.close();
  if (!out) return ErrnoStatus(errno, absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

// Runs gnuplot on `script` in `dir`; its stderr goes to a file whose text is
// returned in the error.
absl::Status RunGnuplot(const std::string& gnuplot, const std::string& dir, const std::string& script) {
  const std::string log = dir + "/gnuplot.log";
  const pid_t pid = fork();
  if (pid < 0) return ErrnoStatus(errno, "fork for gnuplot");
  if (pid == 0) {
    if (chdir(dir.c_str()) != 0) _exit(126);
    const int fd = open("gnuplot.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execlp(gnuplot.c_str(), gnuplot.c_str(), script.c_str(), static_cast<char*>(nullptr));
    _exit(errno == ENOENT ? 127 : 126);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus(errno, "waitpid for gnuplot");
  }
  std::string text;
  {
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  std::error_code ec;
  fs::remove(log, ec);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot run '", gnuplot, "': not found (install gnuplot-nox: scripts/setup.sh)"));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat("gnuplot failed on ", script, " (exit ",
                                            WIFEXITED(status) ? WEXITSTATUS(status) : -1, "): ", text));
  }
  return absl::OkStatus();
}

bool IsReplaceableReportDir(const std::string& dir) {
  std::error_code ec;
  if (fs::is_empty(dir, ec) && !ec) return true;
  std::ifstream in(dir + "/index.html");
  if (!in) return false;
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  return head.find(absl::StrCat("<meta name=\"generator\" content=\"", kReportGeneratorTag, "\">")) !=
         std::string::npos;
}

}  // namespace

absl::StatusOr<ReportFiles> BuildReportFiles(const std::vector<TraceTimeline>& a,
                                             const std::vector<TraceTimeline>& b) {
  if (a.empty()) return absl::InvalidArgumentError("report: no trace given");
  ReportBuilder builder;
  return builder.Build(a, b);
}

absl::Status WriteReport(const std::vector<std::string>& a, const std::vector<std::string>& b,
                         const std::string& out_dir, const ReportOptions& options) {
  if (a.empty()) return absl::InvalidArgumentError("report: no trace given");
  if (out_dir.empty()) return absl::InvalidArgumentError("report: empty output directory");
  std::vector<TraceTimeline> ta, tb;
  for (const auto& [paths, out] : {std::pair{&a, &ta}, std::pair{&b, &tb}}) {
    for (const std::string& p : *paths) {
      ASSIGN_OR_RETURN(TraceTimeline t, ReadTimeline(p));
      out->push_back(std::move(t));
    }
  }
  ASSIGN_OR_RETURN(ReportFiles files, BuildReportFiles(ta, tb));

  fs::path target = fs::path(out_dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  const bool exists = fs::exists(target, ec);
  if (exists && !fs::is_directory(target, ec)) {
    return absl::FailedPreconditionError(absl::StrCat("report: ", target.string(), " exists and is not a directory"));
  }
  if (exists && !IsReplaceableReportDir(target.string())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "report: ", target.string(), " exists and is neither empty nor an earlier fraglab report; not replacing it"));
  }
  std::string tmpl = (parent / (target.filename().string() + ".tmp-XXXXXX")).string();
  if (mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus(errno, absl::StrCat("report: cannot create ", tmpl));
  const std::string tmp = tmpl;
  auto cleanup = [&] {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
  };
  absl::Status st;
  for (const auto& [rel, contents] : files.files) {
    st = WriteFile(tmp + "/" + rel, contents);
    if (!st.ok()) break;
  }
  if (st.ok()) {
    fs::create_directories(tmp + "/plots", ec);
    if (ec) st = absl::InternalError(absl::StrCat("report: cannot create ", tmp, "/plots: ", ec.message()));
  }
  if (st.ok()) st = RunGnuplot(options.gnuplot, tmp, "plots.gp");
  if (st.ok()) {
    for (const std::string& img : files.images) {
      if (fs::file_size(tmp + "/" + img, ec) == 0 || ec) {
        st = absl::InternalError(absl::StrCat("report: gnuplot did not write ", img));
        break;
      }
    }
  }
  if (st.ok() && chmod(tmp.c_str(), 0755) != 0) st = ErrnoStatus(errno, absl::StrCat("report: chmod ", tmp));
  if (!st.ok()) {
    cleanup();
    return st;
  }
  if (exists) {
    // Swap the new directory in atomically, then remove the old one.
    if (renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0) {
      const int err = errno;
      cleanup();
      return ErrnoStatus(err, absl::StrCat("report: cannot replace ", target.string()));
    }
  } else if (rename(tmp.c_str(), target.c_str()) != 0) {
    const int err = errno;
    cleanup();
    return ErrnoStatus(err, absl::StrCat("report: cannot rename ", tmp, " to ", target.string()));
  }
  cleanup();  // the old report after an exchange; nothing otherwise
  return absl::OkStatus();
}

}  // namespace fraglab::analysis
