#include "analysis/export.h"

#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "common/trace_records.h"
#include "nlohmann/json.hpp"

namespace fraglab::analysis {
namespace {

using nlohmann::json;

absl::Status WriteFailed(const char* what) {
  return absl::DataLossError(absl::StrCat("write failed while exporting ", what,
                                          " (disk full or output closed?)"));
}

// Drives `fn` over every selected record; fills the summary from the reader.
template <typename Fn>
absl::StatusOr<ExportSummary> ForEachRecord(TraceReader& reader, const ExportOptions& options,
                                            Fn&& fn) {
  std::vector<bool> selected(65536, options.kinds.empty());
  for (uint16_t k : options.kinds) selected[k] = true;
  ExportSummary sum;
  while (true) {
    ASSIGN_OR_RETURN(const fl_record_header* rec, reader.Next());
    if (rec == nullptr) break;
    ++sum.records_read;
    if (!selected[rec->kind]) continue;
    RETURN_IF_ERROR(fn(*rec));
    ++sum.records_exported;
  }
  sum.truncated = reader.truncated();
  sum.truncation_note = reader.truncation_note();
  sum.closed = reader.closed();
  return sum;
}

// The record's JSON without the fields every event format carries itself.
json RecordArgs(const fl_record_header& rec, const TraceHeader& header) {
  json j = RecordToJson(rec, header);
  j.erase("kind");
  j.erase("ts_ns");
  j.erase("cpu");
  return j;
}

// ---------------------------------------------------------------- CSV

// Flattens `v` into (dotted name, CSV text) pairs in key order.
void Flatten(const json& v, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>* out) {
  auto name = [&](const std::string& key) { return prefix.empty() ? key : prefix + "." + key; };
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) Flatten(it.value(), name(it.key()), out);
  } else if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) Flatten(v[i], name(std::to_string(i)), out);
  } else if (v.is_null()) {
    out->emplace_back(prefix, "");
  } else if (v.is_string()) {
    out->emplace_back(prefix, v.get<std::string>());
  } else {
    out->emplace_back(prefix, JsonDump(v));  // numbers, true/false
  }
}

class CsvTable {
 public:
  explicit CsvTable(std::ostream* out) : out_(out) {}

  absl::Status Row(const std::vector<std::string>& header, const std::vector<std::string>& cells) {
    if (!wrote_header_) {
      WriteLine(header);
      wrote_header_ = true;
    }
    WriteLine(cells);
    return *out_ ? absl::OkStatus() : WriteFailed("CSV");
  }

  // Generic kinds: columns come from the first record; every later record of
  // the kind must flatten to the same names (RecordToJson guarantees it).
  absl::Status GenericRow(const fl_record_header& rec, const TraceHeader& header,
                          const std::string& kind_name) {
    std::vector<std::pair<std::string, std::string>> flat;
    flat.emplace_back("ts_ns", std::to_string(rec.ts_ns));
    flat.emplace_back("cpu", std::to_string(rec.cpu));
    Flatten(RecordArgs(rec, header), "", &flat);
    std::vector<std::string> names, cells;
    names.reserve(flat.size());
    cells.reserve(flat.size());
    for (auto& [n, c] : flat) {
      names.push_back(std::move(n));
      cells.push_back(std::move(c));
    }
    if (!wrote_header_) {
      columns_ = names;
    } else if (names != columns_) {
      return absl::InternalError(absl::StrCat("CSV table ", kind_name, ": record at ts ",
                                              rec.ts_ns,
                                              " has different fields than the first one"));
    }
    return Row(columns_, cells);
  }

 private:
  void WriteLine(const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i > 0) line += ',';
      line += CsvField(cells[i]);
    }
    line += '\n';
    out_->write(line.data(), static_cast<std::streamsize>(line.size()));
  }

  std::ostream* out_;
  bool wrote_header_ = false;
  std::vector<std::string> columns_;
};

absl::Status PageblockMapRows(const fl_record_header& rec, const TraceHeader& header,
                              CsvTable& table) {
  static const std::vector<std::string> kCols = {"ts_ns", "cpu",         "nid",   "zone",
                                                 "pfn",   "migratetype", "flags", "free_pages"};
  fl_pageblock_map m;
  std::memcpy(&m, &rec, sizeof(m));
  const uint64_t stride = uint64_t{1} << (header.pageblock_order & 63);
  const std::string zone = ZoneLabelByIndex(header, m.nid, m.zone_idx);
  const auto* entries = reinterpret_cast<const uint8_t*>(&rec) + sizeof(fl_pageblock_map);
  for (uint32_t i = 0; i < m.count; ++i) {
    fl_pageblock_entry e;
    std::memcpy(&e, entries + i * sizeof(e), sizeof(e));
    RETURN_IF_ERROR(table.Row(
        kCols, {std::to_string(rec.ts_ns), std::to_string(rec.cpu), std::to_string(m.nid), zone,
                std::to_string(m.first_pfn + i * stride), MigratetypeName(header, e.migratetype),
                std::to_string(e.flags), std::to_string(e.free_pages)}));
  }
  return absl::OkStatus();
}

absl::Status AggregateRows(const fl_record_header& rec, const TraceHeader& header,
                           CsvTable& table) {
  static const std::vector<std::string> kCols = {
      "ts_ns", "cpu",   "interval_ns", "zone",         "migratetype",
      "order", "alloc", "free",        "alloc_failed", "unknown_zone"};
  auto a = std::make_unique<fl_aggregate>();
  std::memcpy(a.get(), &rec, sizeof(fl_aggregate));
  const std::string ts = std::to_string(rec.ts_ns), cpu = std::to_string(rec.cpu);
  const std::string interval = std::to_string(a->interval_ns);
  const std::string unknown = std::to_string(a->unknown_zone);
  bool any = false;
  for (uint32_t z = 0; z < a->nr_zones && z < FL_MAX_ZONES; ++z) {
    const std::string zone = ZoneLabel(header, z);
    for (int m = 0; m < FL_MAX_MIGRATETYPES; ++m) {
      for (int o = 0; o < FL_MAX_ORDERS; ++o) {
        const uint32_t al = a->alloc[z][o][m], fr = a->free[z][o][m];
        if (al == 0 && fr == 0) continue;
        any = true;
        RETURN_IF_ERROR(table.Row(kCols, {ts, cpu, interval, zone, MigratetypeName(header, m),
                                          std::to_string(o), std::to_string(al),
                                          std::to_string(fr), "", unknown}));
      }
    }
  }
  for (int m = 0; m < FL_MAX_MIGRATETYPES; ++m) {
    for (int o = 0; o < FL_MAX_ORDERS; ++o) {
      if (a->alloc_failed[o][m] == 0) continue;
      any = true;
      RETURN_IF_ERROR(table.Row(kCols, {ts, cpu, interval, "", MigratetypeName(header, m),
                                        std::to_string(o), "", "",
                                        std::to_string(a->alloc_failed[o][m]), unknown}));
    }
  }
  // An interval with no activity still gets a row, so intervals can be counted.
  if (!any) {
    RETURN_IF_ERROR(table.Row(kCols, {ts, cpu, interval, "", "", "", "0", "0", "0", unknown}));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------- Chrome

// Microseconds with exactly three decimals from a signed ns delta, built
// from integers so output is exact and byte-identical across runs.
std::string MicrosFromNs(int64_t ns) {
  const bool neg = ns < 0;
  const uint64_t mag = neg ? static_cast<uint64_t>(-(ns + 1)) + 1 : static_cast<uint64_t>(ns);
  std::string frac = std::to_string(mag % 1000);
  frac.insert(0, 3 - frac.size(), '0');
  return absl::StrCat(neg ? "-" : "", mag / 1000, ".", frac);
}

constexpr int kPidCpu = 1;
constexpr int kPidPhases = 2;
constexpr int kPidCounters = 3;

class ChromeWriter {
 public:
  ChromeWriter(std::ostream& out, const TraceHeader& header) : out_(out), header_(header) {}

  void Begin() {
    out_ << "{\"traceEvents\":[\n";
    Meta(kPidCpu, "cpu events", 1);
    Meta(kPidPhases, "scenario phases", 0);
    Meta(kPidCounters, "vmstat counters", 2);
    Event(json{{"name", "thread_name"}, {"ph", "M"}, {"pid", kPidPhases}, {"tid", 1},
               {"args", {{"name", "phases"}}}});
  }

  void End() {
    json other = TraceHeaderToJson(header_);
    other["exported_by"] = "fraglab export --format chrome";
    out_ << "\n],\"displayTimeUnit\":\"ns\",\"otherData\":" << JsonDump(other) << "}\n";
  }

  absl::Status Record(const fl_record_header& rec) {
    if (!have_base_) {
      base_ = rec.ts_ns;
      have_base_ = true;
    }
    ts_ = MicrosFromNs(static_cast<int64_t>(rec.ts_ns - base_));
    switch (rec.kind) {
      case FL_EV_PHASE: {
        fl_phase p;
        std::memcpy(&p, &rec, sizeof(p));
        json args = RecordArgs(rec, header_);
        const std::string label = args["label"].get<std::string>();
        Event(json{{"name", label.empty() ? absl::StrCat("phase ", p.index) : label},
                   {"ph", p.begin ? "B" : "E"},
                   {"pid", kPidPhases},
                   {"tid", 1},
                   {"args", args}});
        break;
      }
      case FL_EV_COUNTERS: {
        fl_counters c;
        std::memcpy(&c, &rec, sizeof(c));
        for (uint32_t id = 0; id < FL_CTR_MAX; ++id) {
          const char* name = CounterName(id);
          if (name == nullptr || ((c.present_mask >> id) & 1) == 0) continue;
          Counter(kPidCounters, name, json{{"value", c.value[id]}});
        }
        break;
      }
      case FL_EV_DROPS: {
        fl_drops d;
        std::memcpy(&d, &rec, sizeof(d));
        Counter(kPidCounters, "events lost", json{{absl::StrCat("cpu", rec.cpu), d.lost}});
        break;
      }
      case FL_EV_SNAPSHOT_ZONE:
        SnapshotCounters(rec);
        break;
      case FL_EV_AGGREGATE:
        AggregateCounters(rec);
        break;
      default:
        Instant(rec);
        break;
    }
    return out_ ? absl::OkStatus() : WriteFailed("Chrome trace JSON");
  }

 private:
  void Event(const json& ev) {
    if (!first_) out_ << ",\n";
    first_ = false;
    out_ << JsonDump(ev);
  }

  // An event with the current timestamp first, spliced in as exact text.
  void TimedEvent(const json& ev) {
    if (!first_) out_ << ",\n";
    first_ = false;
    const std::string body = JsonDump(ev);  // "{...}", never empty
    out_ << "{\"ts\":" << ts_ << "," << body.substr(1);
  }

  void Meta(int pid, const std::string& name, int sort_index) {
    Event(json{{"name", "process_name"}, {"ph", "M"}, {"pid", pid}, {"args", {{"name", name}}}});
    Event(json{{"name", "process_sort_index"},
               {"ph", "M"},
               {"pid", pid},
               {"args", {{"sort_index", sort_index}}}});
  }

  void Counter(int pid, const std::string& name, const json& args) {
    TimedEvent(json{{"name", name}, {"ph", "C"}, {"pid", pid}, {"args", args}});
  }

  // pid of a zone: 10 + its position in the header, or 100 + 16*nid + idx.
  int ZonePid(int32_t nid, int32_t zone_idx) {
    for (size_t i = 0; i < header_.zones.size(); ++i) {
      if (header_.zones[i].nid == nid && header_.zones[i].zone_idx == zone_idx) {
        return NameZonePid(10 + static_cast<int>(i), ZoneLabel(header_, static_cast<uint32_t>(i)));
      }
    }
    const int pid = 100 + 16 * (nid & 0xffff) + (zone_idx & 15);
    return NameZonePid(pid, ZoneLabelByIndex(header_, nid, zone_idx));
  }

  int NameZonePid(int pid, const std::string& label) {
    if (named_pids_.insert(pid).second) Meta(pid, "zone " + label, 10 + pid);
    return pid;
  }

  void SnapshotCounters(const fl_record_header& rec) {
    auto s = std::make_unique<fl_snapshot_zone>();
    std::memcpy(s.get(), &rec, sizeof(*s));
    const int pid = ZonePid(s->nid, s->zone_idx);
    json by_order = json::object();
    for (int o = 0; o < FL_MAX_ORDERS; ++o) by_order[absl::StrCat("o", o < 10 ? "0" : "", o)] = s->nr_free[o];
    Counter(pid, "free blocks by order", by_order);
    Counter(pid, "free pages",
            json{{"nr_free_pages", s->nr_free_pages},
                 {"wmark_min", s->wmark_min},
                 {"wmark_low", s->wmark_low},
                 {"wmark_high", s->wmark_high}});
    if ((s->flags & FL_SNAP_NO_TYPES) == 0) {
      json blocks = json::object(), free_by_type = json::object();
      for (uint32_t m = 0; m < s->nr_migratetypes && m < FL_MAX_MIGRATETYPES; ++m) {
        const std::string name = MigratetypeName(header_, m);
        blocks[name] = s->pageblocks[m];
        uint64_t pages = 0;
        for (int o = 0; o < FL_MAX_ORDERS; ++o) pages += uint64_t{s->free_by_type[o][m]} << o;
        free_by_type[name] = pages;
      }
      Counter(pid, "pageblocks by migratetype", blocks);
      Counter(pid, "free pages by migratetype", free_by_type);
    }
  }

  void AggregateCounters(const fl_record_header& rec) {
    auto a = std::make_unique<fl_aggregate>();
    std::memcpy(a.get(), &rec, sizeof(*a));
    for (uint32_t z = 0; z < a->nr_zones && z < FL_MAX_ZONES; ++z) {
      const int pid = z < header_.zones.size()
                          ? ZonePid(header_.zones[z].nid, header_.zones[z].zone_idx)
                          : NameZonePid(10 + static_cast<int>(z), ZoneLabel(header_, z));
      json allocs = json::object(), frees = json::object();
      for (int o = 0; o < FL_MAX_ORDERS; ++o) {
        uint64_t al = 0, fr = 0;
        for (int m = 0; m < FL_MAX_MIGRATETYPES; ++m) {
          al += a->alloc[z][o][m];
          fr += a->free[z][o][m];
        }
        const std::string key = absl::StrCat("o", o < 10 ? "0" : "", o);
        allocs[key] = al;
        frees[key] = fr;
      }
      Counter(pid, "allocs by order per interval", allocs);
      Counter(pid, "frees by order per interval", frees);
    }
  }

  void Instant(const fl_record_header& rec) {
    if (named_cpus_.insert(rec.cpu).second) {
      Event(json{{"name", "thread_name"},
                 {"ph", "M"},
                 {"pid", kPidCpu},
                 {"tid", rec.cpu},
                 {"args", {{"name", absl::StrCat("cpu ", rec.cpu)}}}});
    }
    json args = RecordArgs(rec, header_);
    const char* kind = RecordKindName(rec.kind);
    std::string name = kind ? kind : absl::StrCat("kind", rec.kind);
    if (rec.kind == FL_EV_EXTFRAG) name = absl::StrCat("extfrag ", args["class"].get<std::string>());
    if (rec.kind == FL_EV_PAGEBLOCK_MAP) {
      // Thousands of per-block values do not belong in an event's args:
      // summarize as blocks per migratetype.
      std::map<std::string, uint64_t> per_type;
      for (const json& t : args["migratetype"]) ++per_type[t.get<std::string>()];
      json summary = {{"zone", args["zone"]},
                      {"first_pfn", args["first_pfn"]},
                      {"count", args["count"]},
                      {"blocks_by_migratetype", per_type}};
      args = summary;
    }
    TimedEvent(json{{"name", name},
                    {"ph", "i"},
                    {"s", "t"},
                    {"pid", kPidCpu},
                    {"tid", rec.cpu},
                    {"args", args}});
  }

  std::ostream& out_;
  const TraceHeader& header_;
  bool first_ = true;
  bool have_base_ = false;
  uint64_t base_ = 0;
  std::string ts_;
  std::set<int> named_pids_;
  std::set<uint16_t> named_cpus_;
};

}  // namespace

absl::StatusOr<ExportFormat> ParseExportFormat(const std::string& name) {
  if (name == "jsonl") return ExportFormat::kJsonl;
  if (name == "csv") return ExportFormat::kCsv;
  if (name == "chrome") return ExportFormat::kChrome;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown export format '", name, "' (expected jsonl, csv or chrome)"));
}

absl::StatusOr<std::vector<uint16_t>> ParseKindList(const std::string& list) {
  std::vector<uint16_t> kinds;
  for (absl::string_view part : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    const std::string name(part);
    const uint16_t k = RecordKindFromName(name);
    if (k == FL_EV_INVALID) {
      return absl::InvalidArgumentError(absl::StrCat("unknown record kind '", name, "'"));
    }
    kinds.push_back(k);
  }
  if (kinds.empty()) return absl::InvalidArgumentError("empty list of record kinds");
  return kinds;
}

std::string CsvField(const std::string& value) {
  if (value.find_first_of(",\"\r\n") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

absl::StatusOr<ExportSummary> ExportJsonl(TraceReader& reader, std::ostream& out,
                                          const ExportOptions& options) {
  json first = {{"fraglab_trace_header", TraceHeaderToJson(reader.header())}};
  out << JsonDump(first) << '\n';
  if (!out) return WriteFailed("JSON lines");
  const TraceHeader& header = reader.header();
  return ForEachRecord(reader, options, [&](const fl_record_header& rec) -> absl::Status {
    out << JsonDump(RecordToJson(rec, header)) << '\n';
    return out ? absl::OkStatus() : WriteFailed("JSON lines");
  });
}

absl::StatusOr<ExportSummary> ExportChrome(TraceReader& reader, std::ostream& out,
                                           const ExportOptions& options) {
  ChromeWriter writer(out, reader.header());
  writer.Begin();
  ASSIGN_OR_RETURN(ExportSummary sum,
                   ForEachRecord(reader, options,
                                 [&](const fl_record_header& rec) { return writer.Record(rec); }));
  writer.End();
  if (!out) return WriteFailed("Chrome trace JSON");
  return sum;
}

absl::StatusOr<ExportSummary> ExportCsv(TraceReader& reader, const CsvTableOpener& open_table,
                                        const ExportOptions& options) {
  std::map<uint16_t, CsvTable> tables;
  const TraceHeader& header = reader.header();
  return ForEachRecord(reader, options, [&](const fl_record_header& rec) -> absl::Status {
    auto it = tables.find(rec.kind);
    if (it == tables.end()) {
      ASSIGN_OR_RETURN(std::ostream * stream, open_table(rec.kind));
      if (stream == nullptr) {
        return absl::InternalError(absl::StrCat("no CSV output for kind ", rec.kind));
      }
      it = tables.emplace(rec.kind, CsvTable(stream)).first;
    }
    switch (rec.kind) {
      case FL_EV_PAGEBLOCK_MAP:
        return PageblockMapRows(rec, header, it->second);
      case FL_EV_AGGREGATE:
        return AggregateRows(rec, header, it->second);
      default: {
        const char* name = RecordKindName(rec.kind);
        return it->second.GenericRow(rec, header, name ? name : absl::StrCat("kind", rec.kind));
      }
    }
  });
}

}  // namespace fraglab::analysis
