// Per-phase metrics computed from a stream of schema records, the same for
// kernel and simulator traces: what `run` and `sim` print per phase, what
// `validate` compares, what `compare` tests across repeated runs, and what
// `report` plots.
//
// Phases are delimited by FL_EV_PHASE begin/end markers. Records before the
// first marker belong to the pseudo-phase "start" (index -1 in JSON: "start").
// The zone state of a phase is the last FL_EV_SNAPSHOT_ZONE of each zone seen
// up to the phase's end marker; counter deltas use the last FL_EV_COUNTERS
// before the phase began and the last one before it ended.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "bpf/fraglab_events.h"
#include "common/event_sink.h"
#include "common/trace_file.h"
#include "common/trace_records.h"
#include "nlohmann/json.hpp"

namespace fraglab::analysis {

// One zone's state from a snapshot record.
struct ZoneState {
  int nid = 0;
  int zone_idx = 0;
  uint64_t managed = 0;
  uint64_t nr_free_pages = 0;
  uint64_t boost = 0;
  uint64_t wmark_min = 0, wmark_low = 0, wmark_high = 0;
  bool has_types = false;  // pagetypeinfo data present
  std::array<uint64_t, FL_MAX_ORDERS> nr_free{};
  std::array<std::array<uint32_t, FL_MAX_MIGRATETYPES>, FL_MAX_ORDERS> free_by_type{};
  std::array<uint32_t, FL_MAX_MIGRATETYPES> pageblocks{};
};

// (class, alloc migratetype, fallback migratetype) -> count.
using FallbackKey = std::tuple<int, int, int>;

struct CompactionStats {
  uint64_t direct_attempts = 0;                 // FL_EV_COMPACT_TRY
  uint64_t deferred = 0;                        // FL_EV_COMPACT_DEFERRED
  uint64_t kcompactd_wakeups = 0;               // FL_EV_KCOMPACTD_WAKEUP
  std::map<int, uint64_t> suitable_by_result;   // compact_result -> count
  std::map<int, uint64_t> finished_by_result;
};

struct ProbeResult {
  uint32_t kind = 0;  // enum fl_probe_kind
  uint32_t order = 0;
  uint64_t requested = 0;
  uint64_t obtained = 0;
  uint64_t duration_ns = 0;
};

struct PhaseMetrics {
  int index = -1;          // -1: before the first phase marker
  std::string label = "start";
  uint64_t begin_ts = 0;
  uint64_t end_ts = 0;
  bool ended = false;      // an end marker was seen
  std::map<std::pair<int, int>, ZoneState> zones;  // (nid, zone_idx) -> state at phase end
  std::map<FallbackKey, uint64_t> fallbacks;
  std::map<int, CompactionStats> compaction_by_order;  // order (-1 = unknown/manual)
  std::map<int, uint64_t> compaction_end_status;        // compact_result -> count
  std::vector<ProbeResult> probes;
  std::array<uint64_t, FL_MAX_ORDERS> allocs_by_order{};  // page_alloc events + aggregates
  std::array<uint64_t, FL_MAX_ORDERS> alloc_failures_by_order{};
  std::array<uint64_t, FL_MAX_ORDERS> frees_by_order{};
  uint64_t migrate_succeeded = 0;
  uint64_t migrate_failed = 0;
  uint64_t direct_reclaims = 0;
  uint64_t kswapd_wakes = 0;
  uint64_t oom_victims = 0;
  uint64_t thp_collapses = 0;
  std::map<int, uint64_t> counter_delta;  // fl_counter_id -> delta over the phase
  uint64_t records = 0;
};

struct TraceMetrics {
  TraceHeader header;
  std::vector<PhaseMetrics> phases;  // "start" first, then phases in order
  uint64_t drops = 0;                // sum over CPUs of the latest FL_EV_DROPS
  uint64_t records = 0;
};

// Builds TraceMetrics from records fed one at a time (an EventSink, so a
// simulator can feed it directly without a file).
class MetricsBuilder final : public EventSink {
 public:
  explicit MetricsBuilder(TraceHeader header);
  [[nodiscard]] absl::Status Emit(const fl_record_header& rec) override;
  // Finishes the open phase and returns the result; the builder is then empty.
  TraceMetrics Finish();

 private:
  PhaseMetrics& current() { return metrics_.phases.back(); }
  void StartPhase(int index, const std::string& label, uint64_t ts);
  void ApplyCounters(const fl_counters& c);

  TraceMetrics metrics_;
  std::map<std::pair<int, int>, ZoneState> zones_;  // latest per zone
  std::map<uint16_t, uint64_t> drops_by_cpu_;
  bool have_counters_ = false;
  fl_counters phase_start_counters_{};
  fl_counters last_counters_{};
};

// Reads a whole trace file through MetricsBuilder (streaming).
absl::StatusOr<TraceMetrics> ComputeTraceMetrics(const std::string& path);

// Names come from common/trace_records.h so that metrics, exports and
// summaries spell migratetypes, classes and results the same way.
using ::fraglab::CompactResultName;
using ::fraglab::MigratetypeName;
inline const char* ExtfragClassLabel(int cls) { return ExtfragClassName(static_cast<uint32_t>(cls)); }

// Flat metric names -> values, for compare/validate. Names look like
//   "<phase label>/free_blocks/<zone>/order<k>", "<phase>/pageblocks/<zone>/<Type>",
//   "<phase>/fallbacks/<class>/<From>-><To>", "<phase>/fallbacks/total",
//   "<phase>/probe/<kind>/order<k>/obtained_fraction", "<phase>/compaction/...".
// Zone names are "node<nid>_<name>" (ZoneLabelByIndex in common/trace_records.h).
std::map<std::string, double> FlattenMetrics(const TraceMetrics& m);

// The phase part of FlattenMetrics' names: "start" before the first phase,
// else "<index>:<label>" (scenario labels already carry the index). A '/'
// in the label is written " of " ("2:pin[rep 1/3]" -> "2:pin[rep 1 of 3]"),
// so every name splits into phase and metric at its first '/'.
std::string PhaseKey(const PhaseMetrics& p);

// JSON form (the "summary file" `compare` accepts besides traces).
nlohmann::json MetricsToJson(const TraceMetrics& m);

}  // namespace fraglab::analysis
