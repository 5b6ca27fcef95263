// Exports a trace file to JSON lines, CSV, or Chrome trace JSON (opens in the
// Perfetto UI and chrome://tracing). Every exporter streams: it writes each
// record as it is read and keeps only O(kinds + zones + CPUs) state, never
// the trace. Formats are described in docs/trace-format.md ("Exports").
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/trace_file.h"

namespace fraglab::analysis {

enum class ExportFormat { kJsonl, kCsv, kChrome };

// "jsonl", "csv" or "chrome"; InvalidArgument otherwise.
absl::StatusOr<ExportFormat> ParseExportFormat(const std::string& name);

struct ExportOptions {
  // Kinds to export (FL_EV_*); empty exports every kind.
  std::vector<uint16_t> kinds;
};

// What an export saw; the reader's truncation state is copied so callers can
// warn after the export.
struct ExportSummary {
  uint64_t records_read = 0;
  uint64_t records_exported = 0;
  bool truncated = false;      // the file ended inside a chunk
  std::string truncation_note;
  bool closed = false;         // the writer's end marker was read
};

// Parses a comma-separated list of kind names ("page_alloc,extfrag") into
// kind numbers; InvalidArgument naming an unknown kind.
absl::StatusOr<std::vector<uint16_t>> ParseKindList(const std::string& list);

// JSON lines: first line {"fraglab_trace_header": {...header...}}, then one
// object per record (common/trace_records.h RecordToJson). Errors name the
// trace file and offset (reader) or the output ("write failed").
[[nodiscard]] absl::StatusOr<ExportSummary> ExportJsonl(TraceReader& reader, std::ostream& out,
                                                        const ExportOptions& options = {});

// Chrome trace JSON object format: {"traceEvents": [...], "displayTimeUnit":
// "ns", "otherData": {header}}. Timestamps are microseconds (3 decimals, i.e.
// ns exact) relative to the first exported record. pid/tid mapping:
//   pid 1 "cpu events", tid = CPU: instant events ("i") for every point
//        event (allocations, frees, extfrag "extfrag <class>", compaction
//        begin/end and results, reclaim, kswapd, THP, OOM, probes,
//        pageblock-map summaries), args = the record's fields;
//   pid 2 "scenario phases", tid 1: FL_EV_PHASE as "B"/"E" slices;
//   pid 3 "vmstat counters": FL_EV_COUNTERS as one "C" track per counter,
//        FL_EV_DROPS as "events lost" (one series per CPU);
//   pid 10+i the i-th zone of the trace header (100 + 16*nid + zone_idx for a
//        zone the header does not list): FL_EV_SNAPSHOT_ZONE as "C" tracks
//        "free blocks by order", "free pages" (with watermarks), "free blocks
//        by migratetype", "pageblocks by migratetype"; FL_EV_AGGREGATE as
//        "allocs by order" / "frees by order" per interval.
[[nodiscard]] absl::StatusOr<ExportSummary> ExportChrome(TraceReader& reader, std::ostream& out,
                                                         const ExportOptions& options = {});

// CSV, one table per kind (RFC 4180 quoting, header row, one row per record):
// columns ts_ns, cpu, then the record's JSON fields flattened with dotted
// names ("nr_free.3", "free_by_type.Movable.3", "values.compact_stall"),
// empty for null. Two kinds are written "tidy" instead: pageblock_map one row
// per pageblock (ts_ns,cpu,nid,zone,pfn,migratetype,flags,free_pages) and
// aggregate one row per non-zero (zone, migratetype, order) cell
// (ts_ns,cpu,interval_ns,zone,migratetype,order,alloc,free,alloc_failed,unknown_zone;
// alloc_failed rows have an empty zone). `open_table` is called once per kind,
// the first time a record of it is exported, and returns the stream for its
// table (or an error, which ends the export).
using CsvTableOpener = std::function<absl::StatusOr<std::ostream*>(uint16_t kind)>;
[[nodiscard]] absl::StatusOr<ExportSummary> ExportCsv(TraceReader& reader,
                                                      const CsvTableOpener& open_table,
                                                      const ExportOptions& options = {});

// Quotes one CSV field when it holds a comma, quote, CR or LF (RFC 4180).
std::string CsvField(const std::string& value);

}  // namespace fraglab::analysis
