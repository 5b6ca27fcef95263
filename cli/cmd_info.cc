// fraglab info FILE [--json]: what a trace holds — its header (source,
// kernel, machine, zones, migratetype numbering, scenario), record counts per
// kind, time span, chunks and compression, and whether the file is complete.
// Reads the whole file once (streaming) so every checksum is verified.
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/command.h"
#include "common/trace_file.h"
#include "common/trace_records.h"
#include "nlohmann/json.hpp"

namespace fraglab::cli {
namespace {

struct InfoOptions {
  std::string file;
  bool json = false;
};

struct Scan {
  std::map<uint16_t, uint64_t> per_kind;
  uint64_t records = 0;
  uint64_t first_ts = 0, last_ts = 0, min_ts = 0, max_ts = 0;
  absl::Status error;  // corruption found while reading (counts are up to it)
};

Scan ScanRecords(TraceReader& reader) {
  Scan s;
  while (true) {
    absl::StatusOr<const fl_record_header*> rec = reader.Next();
    if (!rec.ok()) {
      s.error = rec.status();
      break;
    }
    if (*rec == nullptr) break;
    const uint64_t ts = (*rec)->ts_ns;
    if (s.records == 0) s.first_ts = s.min_ts = s.max_ts = ts;
    s.last_ts = ts;
    s.min_ts = std::min(s.min_ts, ts);
    s.max_ts = std::max(s.max_ts, ts);
    ++s.per_kind[(*rec)->kind];
    ++s.records;
  }
  return s;
}

std::string KindLabel(uint16_t kind) {
  const char* name = RecordKindName(kind);
  return name ? std::string(name) : absl::StrCat("kind", kind);
}

std::string StatusText(const TraceReader& reader, const Scan& scan) {
  if (!scan.error.ok()) return absl::StrCat("corrupt: ", scan.error.message());
  if (reader.truncated()) return absl::StrCat("truncated: ", reader.truncation_note());
  if (!reader.closed()) return "incomplete: no end marker (writer killed, crashed or still writing)";
  return "complete";
}

std::string Bytes(uint64_t n) {
  if (n < 10 * 1024) return absl::StrCat(n, " B");
  if (n < 10 * 1024 * 1024) return absl::StrFormat("%.1f KiB", n / 1024.0);
  return absl::StrFormat("%.1f MiB", n / 1048576.0);
}

double Ratio(const TraceReader& r) {
  return r.stored_payload_bytes() == 0
             ? 1.0
             : static_cast<double>(r.raw_payload_bytes()) /
                   static_cast<double>(r.stored_payload_bytes());
}

nlohmann::json InfoJson(const std::string& file, const TraceReader& reader, const Scan& scan) {
  nlohmann::json j;
  j["file"] = file;
  j["file_size"] = reader.file_size();
  j["format_version"] = absl::StrCat(kTraceFormatMajor, ".", reader.format_minor());
  j["header"] = TraceHeaderToJson(reader.header());
  nlohmann::json counts = nlohmann::json::object();
  for (const auto& [kind, n] : scan.per_kind) counts[KindLabel(kind)] = n;
  j["records"] = scan.records;
  j["records_per_kind"] = counts;
  j["first_ts_ns"] = scan.first_ts;
  j["last_ts_ns"] = scan.last_ts;
  j["min_ts_ns"] = scan.min_ts;
  j["max_ts_ns"] = scan.max_ts;
  j["chunks"] = reader.chunks_read();
  j["payload_bytes"] = reader.raw_payload_bytes();
  j["stored_bytes"] = reader.stored_payload_bytes();
  j["compression_ratio"] = Ratio(reader);
  j["closed"] = reader.closed();
  j["truncated"] = reader.truncated();
  j["truncation_note"] = reader.truncation_note();
  j["status"] = StatusText(reader, scan);
  return j;
}

std::string InfoText(const std::string& file, const TraceReader& reader, const Scan& scan) {
  const TraceHeader& h = reader.header();
  std::string out;
  auto line = [&](const char* key, const std::string& value) {
    absl::StrAppend(&out, absl::StrFormat("%-16s %s\n", key, value));
  };
  line("trace:", absl::StrCat(file, " (", reader.file_size(), " bytes)"));
  line("format:", absl::StrCat(kTraceFormatMajor, ".", reader.format_minor(), ", event schema ",
                               h.schema_major, ".", h.schema_minor));
  line("source:", h.simulated ? "simulated" : "real kernel");
  line("tool version:", h.tool_version);
  line("kernel:", absl::StrCat(h.kernel_release.empty() ? "-" : h.kernel_release,
                               h.kernel_era.empty() ? "" : absl::StrCat(" (era ", h.kernel_era, ")")));
  line("machine:", absl::StrCat(h.machine.empty() ? "-" : h.machine, ", ", h.nr_cpus, " cpus"));
  line("pages:", absl::StrCat(h.page_size, " bytes, pageblock order ", h.pageblock_order,
                              ", max order ", h.max_order));
  line("scenario:", absl::StrCat(h.scenario_name.empty() ? "-" : h.scenario_name, " (seed ",
                                 h.seed, h.scenario_text.empty() ? "" : ", text included", ")"));
  if (h.created_unix_s != 0) {
    char buf[64];
    const time_t t = static_cast<time_t>(h.created_unix_s);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
    line("created:", buf);
  }
  std::string zones;
  for (const ZoneLayout& z : h.zones) {
    absl::StrAppend(&zones, absl::StrFormat(
                                "\n  node%d %-8s idx %d  pfn 0x%x-0x%x  spanned %d present %d "
                                "managed %d",
                                z.nid, z.name, z.zone_idx, z.start_pfn, z.start_pfn + z.spanned,
                                z.spanned, z.present, z.managed));
  }
  line("zones:", zones.empty() ? "-" : absl::StrCat(h.zones.size(), zones));
  std::string mts;
  for (size_t i = 0; i < h.migratetype_names.size(); ++i) {
    absl::StrAppend(&mts, i ? " " : "", i, "=", h.migratetype_names[i]);
  }
  line("migratetypes:", mts.empty() ? "-" : mts);
  for (const auto& [k, v] : h.extra) line("extra:", absl::StrCat(k, "=", v));
  line("records:", absl::StrCat(scan.records, " in ", reader.chunks_read(), " chunks"));
  for (const auto& [kind, n] : scan.per_kind) {
    absl::StrAppend(&out, absl::StrFormat("  %-24s %12d\n", KindLabel(kind), n));
  }
  if (scan.records > 0) {
    line("time:", absl::StrFormat("first %d ns, last %d ns, span %.6f s%s", scan.first_ts,
                                  scan.last_ts, (scan.max_ts - scan.min_ts) / 1e9,
                                  scan.min_ts != scan.first_ts || scan.max_ts != scan.last_ts
                                      ? absl::StrFormat(" (min %d, max %d: not in order)",
                                                        scan.min_ts, scan.max_ts)
                                      : ""));
  }
  line("payload:", absl::StrFormat("%s raw, %s stored in chunks (ratio %.2fx)",
                                   Bytes(reader.raw_payload_bytes()),
                                   Bytes(reader.stored_payload_bytes()), Ratio(reader)));
  line("status:", StatusText(reader, scan));
  return out;
}

int RunInfo(const InfoOptions& opt) {
  auto reader = TraceReader::Open(opt.file);
  if (!reader.ok()) return ReportStatus("info", reader.status());
  const Scan scan = ScanRecords(**reader);
  const std::string text = opt.json ? JsonDump(InfoJson(opt.file, **reader, scan), 2) + "\n"
                                    : InfoText(opt.file, **reader, scan);
  std::fwrite(text.data(), 1, text.size(), stdout);
  // What was read up to the damage is shown; the damage itself is a failure.
  if (!scan.error.ok()) return ReportStatus("info", scan.error);
  return kExitOk;
}

}  // namespace

FRAGLAB_COMMAND("info", 90, [](CLI::App& app) -> CommandRunner {
  auto opt = std::make_shared<InfoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "info",
      "Describe a trace file: header (source, kernel, zones, migratetype numbering, scenario), "
      "records per kind, time span, chunks, compression, and whether it is complete.");
  cmd->add_option("FILE", opt->file, "Trace file")->required();
  cmd->add_flag("--json", opt->json, "Print one JSON object instead of text");
  return [opt]() { return RunInfo(*opt); };
});

}  // namespace fraglab::cli
