// The closing summary of a trace: fallbacks by class and migratetype pair,
// compaction attempts and outcomes per order, direct reclaim and compaction
// stall latency histograms, THP fault success/fallback, page alloc/free
// totals and drops. Built from records of the shared schema, so it works on a
// live tracker (as an EventSink next to the trace writer) and on a trace file
// read back later (`fraglab info`, reports).
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "bpf/fraglab_events.h"
#include "common/event_sink.h"
#include "common/trace_file.h"

namespace fraglab::tracker {

// Latency histogram with power-of-two microsecond buckets: bucket 0 holds
// samples below 2 us, bucket i >= 1 holds [2^i, 2^(i+1)) us; the last bucket
// is open-ended.
class LatencyHistogram {
 public:
  static constexpr int kBuckets = 32;

  void Add(uint64_t ns);
  // Bucket a latency of `ns` nanoseconds falls in.
  static int BucketOf(uint64_t ns);
  // Lower bound of bucket i in microseconds (0 for bucket 0).
  static uint64_t BucketLowUs(int i);

  uint64_t count() const { return count_; }
  uint64_t total_ns() const { return total_ns_; }
  uint64_t max_ns() const { return max_ns_; }
  uint64_t bucket(int i) const { return buckets_[static_cast<size_t>(i)]; }
  // Upper bound (us, exclusive) of the bucket holding the p-quantile sample,
  // p in (0, 1]; 0 when empty.
  uint64_t QuantileUpperUs(double p) const;
  // Multi-line rendering: one row per non-empty bucket range with a bar.
  std::string Format(const std::string& title) const;

 private:
  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t total_ns_ = 0;
  uint64_t max_ns_ = 0;
};

// One fallback kind: class x (requested type, type taken from).
struct FallbackKey {
  uint32_t extfrag_class = 0;   // enum fl_extfrag_class
  int32_t alloc_migratetype = 0;
  int32_t fallback_migratetype = 0;
  auto operator<=>(const FallbackKey&) const = default;
};

// Compaction at one order.
struct CompactionOrderStats {
  uint64_t direct_tries = 0;          // mm_compaction_try_to_compact_pages
  uint64_t kcompactd_wakeups = 0;     // mm_compaction_wakeup_kcompactd
  std::map<int32_t, uint64_t> suitable;    // mm_compaction_suitable ret -> count
  uint64_t deferred = 0;              // mm_compaction_deferred (zone skipped)
  std::map<int32_t, uint64_t> direct_runs; // end status of direct runs at this order
  uint64_t outcome_success = 0;       // out-of-tree mm_compaction_success
  uint64_t outcome_failure = 0;       // out-of-tree mm_compaction_failure
};

struct TraceSummary {
  uint64_t records = 0;
  uint64_t first_ts_ns = 0;
  uint64_t last_ts_ns = 0;
  std::array<uint64_t, FL_EV_KIND_MAX> by_kind{};

  // Fallbacks (FL_EV_EXTFRAG).
  std::map<FallbackKey, uint64_t> fallbacks;
  std::array<uint64_t, 3> fallbacks_by_class{};

  // Compaction.
  std::map<int32_t, CompactionOrderStats> compaction;      // by order
  std::map<int32_t, uint64_t> other_runs;                  // kcompactd/proactive/manual run end status
  LatencyHistogram direct_compaction;                      // begin->end of direct runs
  LatencyHistogram other_compaction;                       // begin->end of other runs

  // Reclaim.
  LatencyHistogram direct_reclaim;                         // begin->end per task
  uint64_t direct_reclaimed_pages = 0;
  uint64_t kswapd_wakes = 0;

  // Migration, THP, OOM.
  uint64_t migrate_succeeded = 0;
  uint64_t migrate_failed = 0;
  std::map<int32_t, uint64_t> thp_collapse_status;         // mm_collapse_huge_page status
  uint64_t oom_victims = 0;

  // vmstat counters: the first and last FL_EV_COUNTERS records.
  bool have_counters = false;
  fl_counters first_counters{};
  fl_counters last_counters{};

  // Page alloc/free: from the aggregates, and from full events if recorded.
  uint64_t agg_allocs = 0;
  uint64_t agg_frees = 0;
  uint64_t agg_alloc_failures = 0;
  uint64_t agg_unknown_zone = 0;
  uint64_t full_allocs = 0;
  uint64_t full_frees = 0;

  // Drops: the largest cumulative count seen per CPU.
  std::map<uint16_t, uint64_t> lost_per_cpu;
  uint64_t lost() const;

  // Delta of counter `id` between the first and last counters record; false
  // when either record lacks it.
  bool CounterDelta(int id, uint64_t* delta) const;
};

// Accumulates a TraceSummary from records in trace order. Direct compaction
// is told apart from kcompactd/proactive/manual compaction by the task: a
// task's compaction run (begin/end) belongs to the order of that task's last
// mm_compaction_try_to_compact_pages, until the task enters direct reclaim
// (the allocator's slow path calls try_to_compact_pages again afterwards).
class TraceSummaryBuilder final : public EventSink {
 public:
  // Adds one record; records of unknown kinds or too short for their kind
  // are counted but otherwise ignored. Never fails.
  [[nodiscard]] absl::Status Emit(const fl_record_header& rec) override;
  void Add(const fl_record_header& rec);
  const TraceSummary& summary() const { return summary_; }

 private:
  TraceSummary summary_;
  std::map<uint32_t, int32_t> direct_order_;     // pid -> order of its open direct compaction
  std::map<uint32_t, uint64_t> compact_begin_;   // pid -> ts of its running compaction
  std::map<uint32_t, uint64_t> reclaim_begin_;   // pid -> ts of its running direct reclaim
};

// Reads a whole trace file into a summary.
[[nodiscard]] absl::StatusOr<TraceSummary> SummarizeTraceFile(const std::string& path,
                                                              TraceHeader* header = nullptr);

// The summary as text for a terminal, migratetypes named by `header`.
std::string FormatTraceSummary(const TraceSummary& s, const TraceHeader& header);

}  // namespace fraglab::tracker
