#include "analysis/report_timeline.h"

#include <bit>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace fraglab::analysis {
namespace {

template <typename T>
T Load(const fl_record_header& rec) {
  T out;
  std::memcpy(&out, &rec, sizeof(T));
  return out;
}

// Kernel compact_result values (reference section 3) used for outcomes.
constexpr int kCompactComplete = 5;
constexpr int kCompactPartialSkipped = 6;
constexpr int kCompactContended = 7;
constexpr int kCompactSuccess = 8;

bool IsTrackerKind(uint16_t kind) {
  switch (kind) {
    case FL_EV_SNAPSHOT_ZONE:
    case FL_EV_COUNTERS:
    case FL_EV_PHASE:
    case FL_EV_PAGEBLOCK_MAP:
    case FL_EV_PROBE:
      return false;  // written by the generator/snapshotter without BPF too
    default:
      return true;
  }
}

}  // namespace

TimeBins::TimeBins(size_t bins, size_t series) : series_(series < 1 ? 1 : series) {
  if (bins < 2) bins = 2;
  bins += bins % 2;
  counts_.assign(bins, std::vector<uint64_t>(series_, 0));
}

void TimeBins::Add(uint64_t ts, size_t series, uint64_t n) {
  FRAGLAB_CHECK(series < series_);
  const uint64_t rel = ts > origin_ ? ts - origin_ : 0;
  while (rel / width_ >= counts_.size()) {
    // Merge pairs: bin i of the new layout holds old bins 2i and 2i+1.
    const size_t half = counts_.size() / 2;
    for (size_t i = 0; i < half; ++i) {
      for (size_t s = 0; s < series_; ++s) counts_[i][s] = counts_[2 * i][s] + counts_[2 * i + 1][s];
    }
    for (size_t i = half; i < counts_.size(); ++i) counts_[i].assign(series_, 0);
    width_ *= 2;
    used_ = (used_ + 1) / 2;
  }
  const size_t bin = static_cast<size_t>(rel / width_);
  counts_[bin][series] += n;
  if (bin + 1 > used_) used_ = bin + 1;
}

uint64_t TimeBins::total(size_t series) const {
  uint64_t sum = 0;
  for (const auto& row : counts_) sum += row[series];
  return sum;
}

void LatencyHistogram::Add(uint64_t ns) {
  const int bucket = ns == 0 ? 0 : 63 - std::countl_zero(ns);
  buckets_[static_cast<size_t>(bucket)]++;
  ++count_;
  sum_ += ns;
  if (ns < min_) min_ = ns;
  if (ns > max_) max_ = ns;
}

uint64_t LatencyHistogram::QuantileUpperBound(double q) const {
  if (count_ == 0) return 0;
  const double want = q * static_cast<double>(count_);
  uint64_t seen = 0;
  for (size_t k = 0; k < buckets_.size(); ++k) {
    seen += buckets_[k];
    if (static_cast<double>(seen) >= want && buckets_[k] > 0) {
      return k >= 63 ? UINT64_MAX : (uint64_t{1} << (k + 1));
    }
  }
  return max_;
}

TimelineBuilder::TimelineBuilder(const TraceHeader& header) : metrics_(header) { t_.header = header; }

absl::Status TimelineBuilder::Emit(const fl_record_header& rec) {
  ++t_.records;
  if (!have_first_) {
    have_first_ = true;
    t_.first_ts = rec.ts_ns;
    t_.last_ts = rec.ts_ns;
    t_.fallbacks.SetOrigin(rec.ts_ns);
  }
  if (rec.ts_ns > t_.last_ts) t_.last_ts = rec.ts_ns;
  if (IsTrackerKind(rec.kind)) t_.has_tracker_events = true;
  switch (rec.kind) {
    case FL_EV_SNAPSHOT_ZONE: {
      const auto s = Load<fl_snapshot_zone>(rec);
      ZoneSample z;
      z.ts = rec.ts_ns;
      z.nr_free_pages = s.nr_free_pages;
      z.has_types = !(s.flags & FL_SNAP_NO_TYPES);
      for (int o = 0; o < FL_MAX_ORDERS; ++o) z.nr_free[o] = s.nr_free[o];
      for (int m = 0; m < FL_MAX_MIGRATETYPES; ++m) z.pageblocks[m] = s.pageblocks[m];
      t_.zones[{s.nid, s.zone_idx}].push_back(z);
      break;
    }
    case FL_EV_EXTFRAG: {
      const auto e = Load<fl_extfrag>(rec);
      if (e.extfrag_class < kFallbackSeries) {
        t_.fallbacks.Add(rec.ts_ns, e.extfrag_class);
        t_.fallback_pairs[{e.alloc_migratetype, e.fallback_migratetype}][e.extfrag_class]++;
      }
      break;
    }
    case FL_EV_COMPACT_TRY: {
      t_.has_compaction_events = true;
      t_.compaction[Load<fl_compact_try>(rec).order].attempts++;
      break;
    }
    case FL_EV_COMPACT_DEFERRED: {
      t_.has_compaction_events = true;
      t_.compaction[Load<fl_compact_defer>(rec).order].deferred++;
      break;
    }
    case FL_EV_KCOMPACTD_WAKEUP: {
      t_.has_compaction_events = true;
      t_.compaction[Load<fl_kcompactd>(rec).order].kcompactd_wakeups++;
      break;
    }
    case FL_EV_COMPACT_FINISHED: {
      t_.has_compaction_events = true;
      const auto r = Load<fl_compact_result>(rec);
      CompactionOrder& c = t_.compaction[r.order];
      if (r.ret == kCompactSuccess) {
        c.successes++;
      } else if (r.ret == kCompactComplete || r.ret == kCompactPartialSkipped ||
                 r.ret == kCompactContended) {
        c.failures++;
      }
      break;
    }
    case FL_EV_COMPACT_OUTCOME: {
      // The out-of-tree tracepoint reports the allocation-level outcome; the
      // per-zone FINISHED results are then only detail, so they are replaced.
      t_.has_compaction_events = true;
      const auto o = Load<fl_compact_outcome>(rec);
      auto& [ok, failed] = outcome_by_order_[o.order];
      (o.success ? ok : failed)++;
      break;
    }
    case FL_EV_COMPACT_BEGIN: {
      t_.has_compaction_events = true;
      compact_begin_by_pid_[Load<fl_compact_begin_end>(rec).pid] = rec.ts_ns;
      break;
    }
    case FL_EV_COMPACT_END: {
      const auto e = Load<fl_compact_begin_end>(rec);
      auto it = compact_begin_by_pid_.find(e.pid);
      if (it == compact_begin_by_pid_.end()) {
        t_.unmatched_stall_ends++;
      } else {
        t_.compaction_stalls.Add(rec.ts_ns >= it->second ? rec.ts_ns - it->second : 0);
        compact_begin_by_pid_.erase(it);
      }
      break;
    }
    case FL_EV_DIRECT_RECLAIM_BEGIN:
      reclaim_begin_by_pid_[Load<fl_direct_reclaim>(rec).pid] = rec.ts_ns;
      break;
    case FL_EV_DIRECT_RECLAIM_END: {
      const auto e = Load<fl_direct_reclaim>(rec);
      auto it = reclaim_begin_by_pid_.find(e.pid);
      if (it == reclaim_begin_by_pid_.end()) {
        t_.unmatched_stall_ends++;
      } else {
        t_.reclaim_stalls.Add(rec.ts_ns >= it->second ? rec.ts_ns - it->second : 0);
        reclaim_begin_by_pid_.erase(it);
      }
      break;
    }
    default:
      break;
  }
  return metrics_.Emit(rec);
}

TraceTimeline TimelineBuilder::Finish() {
  if (!outcome_by_order_.empty()) {
    for (auto& [order, c] : t_.compaction) c.successes = c.failures = 0;
    for (const auto& [order, counts] : outcome_by_order_) {
      t_.compaction[order].successes = counts.first;
      t_.compaction[order].failures = counts.second;
    }
    t_.compaction_outcome_source = "compact_outcome";
  }
  t_.metrics = metrics_.Finish();
  return std::move(t_);
}

absl::StatusOr<TraceTimeline> ReadTimeline(const std::string& path) {
  absl::StatusOr<std::unique_ptr<TraceReader>> reader = TraceReader::Open(path);
  if (!reader.ok()) return reader.status();
  TimelineBuilder builder((*reader)->header());
  uint64_t n = 0;
  while (true) {
    absl::StatusOr<const fl_record_header*> rec = (*reader)->Next();
    if (!rec.ok()) {
      return absl::Status(rec.status().code(),
                          absl::StrCat("trace ", path, ": after record ", n, ": ", rec.status().message()));
    }
    if (*rec == nullptr) break;
    ++n;
    if (absl::Status st = builder.Emit(**rec); !st.ok()) {
      return absl::Status(st.code(), absl::StrCat("trace ", path, ": record ", n, " (chunk at offset ",
                                                  (*reader)->offset(), "): ", st.message()));
    }
  }
  TraceTimeline t = builder.Finish();
  t.path = path;
  t.truncated = (*reader)->truncated();
  t.truncation_note = (*reader)->truncation_note();
  t.closed = (*reader)->closed();
  return t;
}

double TimelineX(const TraceTimeline& t, uint64_t ts) {
  const double rel = ts >= t.first_ts ? static_cast<double>(ts - t.first_ts) : 0.0;
  return t.header.simulated ? rel : rel / 1e9;
}

std::string TimelineXLabel(const TraceTimeline& t) {
  return t.header.simulated ? "logical time (allocator calls)" : "time (s)";
}

}  // namespace fraglab::analysis
