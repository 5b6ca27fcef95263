// What `fraglab report` plots, extracted from one trace in one streaming
// pass: zone snapshots over time, phase spans, fallback events binned over
// time and counted per migratetype pair, compaction outcomes per order, and
// stall latencies from begin/end pairs. Memory stays bounded by the number of
// snapshots (one per zone per phase boundary in kernel and simulator runs),
// never by the number of events: events go into fixed-size bins.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "analysis/metrics.h"
#include "bpf/fraglab_events.h"
#include "common/event_sink.h"
#include "common/trace_file.h"

namespace fraglab::analysis {

// Counts of several series over time in a fixed number of equal-width bins
// starting at `origin`. When an event lands past the last bin, the bin width
// doubles and neighbouring bins merge, so any trace length fits and the
// result depends only on the events (deterministic).
class TimeBins {
 public:
  // `bins` >= 2 (forced even), `series` >= 1. Starting width: 1 time unit.
  TimeBins(size_t bins, size_t series);

  // Sets the time origin; events before it count into bin 0.
  void SetOrigin(uint64_t origin) { origin_ = origin; }
  void Add(uint64_t ts, size_t series, uint64_t n = 1);

  uint64_t origin() const { return origin_; }
  uint64_t width() const { return width_; }
  size_t bins() const { return counts_.size(); }
  size_t series() const { return series_; }
  // Bins up to and including the last one holding an event (0 when empty).
  size_t used_bins() const { return used_; }
  uint64_t count(size_t bin, size_t series) const { return counts_[bin][series]; }
  uint64_t total(size_t series) const;

 private:
  size_t series_;
  uint64_t origin_ = 0;
  uint64_t width_ = 1;
  size_t used_ = 0;
  std::vector<std::vector<uint64_t>> counts_;
};

// Durations on a log2 scale: bucket k holds durations in [2^k, 2^(k+1)) ns
// (bucket 0 also holds 0).
class LatencyHistogram {
 public:
  void Add(uint64_t ns);
  uint64_t count() const { return count_; }
  uint64_t min_ns() const { return count_ ? min_ : 0; }
  uint64_t max_ns() const { return max_; }
  double mean_ns() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0; }
  const std::array<uint64_t, 64>& buckets() const { return buckets_; }
  // Upper bound of the bucket holding the q-quantile (0 < q <= 1).
  uint64_t QuantileUpperBound(double q) const;

 private:
  std::array<uint64_t, 64> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

// One zone at one moment (an FL_EV_SNAPSHOT_ZONE record).
struct ZoneSample {
  uint64_t ts = 0;
  uint64_t nr_free_pages = 0;
  bool has_types = false;
  std::array<uint64_t, FL_MAX_ORDERS> nr_free{};
  std::array<uint32_t, FL_MAX_MIGRATETYPES> pageblocks{};
};

// Compaction outcomes of one order. Attempts are direct compaction calls
// (FL_EV_COMPACT_TRY). Outcomes come from the out-of-tree
// FL_EV_COMPACT_OUTCOME when the kernel has it, else from the final
// FL_EV_COMPACT_FINISHED of each zone run: "success" counts as a success;
// "complete" (scanners met), "partial_skipped" and "contended" as failures.
struct CompactionOrder {
  uint64_t attempts = 0;
  uint64_t successes = 0;
  uint64_t failures = 0;
  uint64_t deferred = 0;       // FL_EV_COMPACT_DEFERRED
  uint64_t kcompactd_wakeups = 0;
};

// Fallback series in TimeBins (the fl_extfrag_class values).
inline constexpr size_t kFallbackSeries = 3;

struct TraceTimeline {
  std::string path;
  TraceHeader header;
  uint64_t records = 0;
  uint64_t first_ts = 0;  // of the first record
  uint64_t last_ts = 0;   // largest timestamp seen
  bool truncated = false;
  std::string truncation_note;
  bool closed = false;
  // Kinds only the tracker writes were seen (page alloc/free, aggregates,
  // extfrag, compaction, reclaim, drops): without them a zero fallback count
  // means "not recorded", not "none happened".
  bool has_tracker_events = false;
  std::map<std::pair<int, int>, std::vector<ZoneSample>> zones;  // (nid, zone_idx)
  TimeBins fallbacks{256, kFallbackSeries};
  // (alloc migratetype, fallback migratetype) -> count per class.
  std::map<std::pair<int, int>, std::array<uint64_t, kFallbackSeries>> fallback_pairs;
  std::map<int, CompactionOrder> compaction;  // by order
  bool has_compaction_events = false;
  // Where successes/failures came from: "compact_finished" or, on kernels
  // with the out-of-tree tracepoint, "compact_outcome".
  std::string compaction_outcome_source = "compact_finished";
  LatencyHistogram compaction_stalls;  // FL_EV_COMPACT_BEGIN -> _END, per pid
  LatencyHistogram reclaim_stalls;     // FL_EV_DIRECT_RECLAIM_BEGIN -> _END, per pid
  uint64_t unmatched_stall_ends = 0;   // an END with no BEGIN before it (recording started mid-stall)
  TraceMetrics metrics;                // per-phase metrics (analysis/metrics.h)
};

// Builds a TraceTimeline from records fed in order.
class TimelineBuilder final : public EventSink {
 public:
  explicit TimelineBuilder(const TraceHeader& header);
  [[nodiscard]] absl::Status Emit(const fl_record_header& rec) override;
  // The result; the builder must not be used afterwards.
  TraceTimeline Finish();

 private:
  TraceTimeline t_;
  MetricsBuilder metrics_;
  bool have_first_ = false;
  std::map<uint32_t, uint64_t> compact_begin_by_pid_;
  std::map<uint32_t, uint64_t> reclaim_begin_by_pid_;
  std::map<int, std::pair<uint64_t, uint64_t>> outcome_by_order_;  // (successes, failures)
};

// Reads `path` through TimelineBuilder. Errors name the trace, the record
// number and the reader's offset.
[[nodiscard]] absl::StatusOr<TraceTimeline> ReadTimeline(const std::string& path);

// Seconds (kernel traces) or logical ticks (simulated traces) of `ts` after
// the timeline's first record: the x axis of every time plot.
double TimelineX(const TraceTimeline& t, uint64_t ts);
// "time (s)" or "logical time (allocator calls)".
std::string TimelineXLabel(const TraceTimeline& t);

}  // namespace fraglab::analysis
