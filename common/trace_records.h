// Per-kind knowledge of the event schema (bpf/fraglab_events.h) shared by
// every reader: names, sizes, validation of raw records, and a JSON view of a
// record whose migratetypes and zones are named by the trace header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "bpf/fraglab_events.h"
#include "common/trace_file.h"
#include "nlohmann/json.hpp"

namespace fraglab {

// Largest record any known kind can have (a full FL_EV_PAGEBLOCK_MAP).
inline constexpr size_t kMaxRecordBytes =
    (sizeof(fl_pageblock_map) + FL_PB_MAP_MAX_ENTRIES * sizeof(fl_pageblock_entry) + 7) / 8 * 8;

// Snake-case name of a kind ("page_alloc", "extfrag", ...), or nullptr when
// `kind` is not a kind of this schema.
const char* RecordKindName(uint16_t kind);

// The kind called `name` (as RecordKindName spells it), or FL_EV_INVALID.
uint16_t RecordKindFromName(const std::string& name);

// Exact record size of a fixed-size kind; 0 for variable-size kinds
// (FL_EV_PAGEBLOCK_MAP) and for unknown kinds.
size_t RecordFixedSize(uint16_t kind);

// Size a FL_EV_PAGEBLOCK_MAP record with `count` entries must have
// (header + entries, padded with zeros to a multiple of 8).
size_t PageblockMapSize(uint32_t count);

// Checks one raw record whose first `available_bytes` bytes are readable:
// kind known (or, with `allow_unknown_kind`, any kind > 0, for files of a newer
// schema minor), size a multiple of 8, at least the header, within
// `available_bytes`, exact for fixed-size kinds, pageblock-map `count` within
// FL_PB_MAP_MAX_ENTRIES and matching the size, array bounds used by readers
// (aggregate nr_zones, snapshot nr_migratetypes) within the schema's limits.
// InvalidArgument describing the first problem (no file context: callers add
// where the record was).
[[nodiscard]] absl::Status ValidateRecord(const fl_record_header& rec, size_t available_bytes,
                                          bool allow_unknown_kind = false);

// "claim", "steal", "pollute", or "unknown".
const char* ExtfragClassName(uint32_t extfrag_class);

// Name of a FL_CTR_* counter ("nr_free_pages", "compact_stall", ...), or
// nullptr for an id with no name (spare slots up to FL_CTR_MAX).
const char* CounterName(uint32_t id);

// Name of a kernel compact_result value ("skipped", "success", ...) or "unknown".
const char* CompactResultName(int32_t result);

// Name of migratetype `mt` in the source kernel's numbering given by
// `header.migratetype_names`; FL_MT_UNKNOWN (when the header does not name
// it) and 0xff in pageblock maps are "unknown"; other unnamed numbers "mt<N>".
std::string MigratetypeName(const TraceHeader& header, int64_t mt);

// "node<nid>_<name>" for the zone with index `zone_pos` in header.zones, or
// "zone<zone_pos>" when the header lists fewer zones.
std::string ZoneLabel(const TraceHeader& header, uint32_t zone_pos);

// Label of the zone (nid, zone_idx) as named by the header ("node0_Normal"),
// or "node<nid>_zone<idx>" when the header does not list it.
std::string ZoneLabelByIndex(const TraceHeader& header, int32_t nid, int32_t zone_idx);

// String-keyed JSON object for one record that passed ValidateRecord:
// "kind", "ts_ns", "cpu", then the payload fields under their schema names
// (padding omitted); migratetype fields hold names from the header's
// numbering, zones are named by ZoneLabel, counters by CounterName. For a
// given header every record of a kind yields the same set of keys, except
// the sparse "alloc"/"free"/"alloc_failed" maps of FL_EV_AGGREGATE (only
// non-zero rows). Unknown kinds give {"kind": "kind<N>", "ts_ns", "cpu",
// "size"}.
nlohmann::json RecordToJson(const fl_record_header& rec, const TraceHeader& header);

// Serializes a header as the JSON object stored in the file (sorted keys).
nlohmann::json TraceHeaderToJson(const TraceHeader& header);

// nlohmann's dump() that never throws: invalid UTF-8 in strings (a corrupt
// label, a scenario file in another encoding) becomes U+FFFD.
std::string JsonDump(const nlohmann::json& j, int indent = -1);

}  // namespace fraglab
