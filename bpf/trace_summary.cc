#include "bpf/trace_summary.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "common/trace_records.h"

namespace fraglab::tracker {
namespace {

// Typed copy of a record; false when it is too short for T.
template <typename T>
bool Load(const fl_record_header& rec, T* out) {
  if (rec.size < sizeof(T)) return false;
  std::memcpy(out, &rec, sizeof(T));
  return true;
}

}  // namespace

int LatencyHistogram::BucketOf(uint64_t ns) {
  uint64_t us = ns / 1000;
  if (us < 2) return 0;
  int b = 63 - __builtin_clzll(us);
  return std::min(b, kBuckets - 1);
}

uint64_t LatencyHistogram::BucketLowUs(int i) { return i == 0 ? 0 : (1ull << i); }

void LatencyHistogram::Add(uint64_t ns) {
  buckets_[static_cast<size_t>(BucketOf(ns))]++;
  count_++;
  total_ns_ += ns;
  max_ns_ = std::max(max_ns_, ns);
}

uint64_t LatencyHistogram::QuantileUpperUs(double p) const {
  if (count_ == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(std::ceil(p * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[static_cast<size_t>(i)];
    if (seen >= rank) return i == 0 ? 2 : (2ull << i);
  }
  return 2ull << (kBuckets - 1);
}

std::string LatencyHistogram::Format(const std::string& title) const {
  std::string out = absl::StrFormat("%s: %d samples", title, count_);
  if (count_ == 0) return out + "\n";
  absl::StrAppendFormat(&out, ", mean %.1f us, max %.1f us, p50 < %d us, p99 < %d us\n",
                        static_cast<double>(total_ns_) / static_cast<double>(count_) / 1000.0,
                        static_cast<double>(max_ns_) / 1000.0, QuantileUpperUs(0.5),
                        QuantileUpperUs(0.99));
  int lo = 0, hi = kBuckets - 1;
  while (buckets_[static_cast<size_t>(lo)] == 0) ++lo;
  while (buckets_[static_cast<size_t>(hi)] == 0) --hi;
  uint64_t peak = *std::max_element(buckets_.begin(), buckets_.end());
  for (int i = lo; i <= hi; ++i) {
    uint64_t n = buckets_[static_cast<size_t>(i)];
    int bar = static_cast<int>((n * 40 + peak - 1) / peak);
    std::string range = i == kBuckets - 1 ? absl::StrCat("[", BucketLowUs(i), ", ...)")
                                          : absl::StrCat("[", BucketLowUs(i), ", ",
                                                         i == 0 ? 2 : (2ull << i), ")");
    absl::StrAppendFormat(&out, "  %-22s us %10d |%s\n", range, n, std::string(static_cast<size_t>(bar), '@'));
  }
  return out;
}

uint64_t TraceSummary::lost() const {
  uint64_t total = 0;
  for (const auto& [cpu, n] : lost_per_cpu) total += n;
  return total;
}

bool TraceSummary::CounterDelta(int id, uint64_t* delta) const {
  if (!have_counters || id < 0 || id >= FL_CTR_MAX) return false;
  uint64_t bit = 1ull << id;
  if (!(first_counters.present_mask & bit) || !(last_counters.present_mask & bit)) return false;
  *delta = last_counters.value[id] - first_counters.value[id];
  return true;
}

absl::Status TraceSummaryBuilder::Emit(const fl_record_header& rec) {
  Add(rec);
  return absl::OkStatus();
}

void TraceSummaryBuilder::Add(const fl_record_header& rec) {
  TraceSummary& s = summary_;
  if (s.records == 0 || rec.ts_ns < s.first_ts_ns) s.first_ts_ns = rec.ts_ns;
  s.last_ts_ns = std::max<uint64_t>(s.last_ts_ns, rec.ts_ns);
  s.records++;
  if (rec.kind >= FL_EV_KIND_MAX) return;
  s.by_kind[rec.kind]++;
  switch (rec.kind) {
    case FL_EV_PAGE_ALLOC:
      s.full_allocs++;
      break;
    case FL_EV_PAGE_FREE:
      s.full_frees++;
      break;
    case FL_EV_EXTFRAG: {
      fl_extfrag e;
      if (!Load(rec, &e)) break;
      s.fallbacks[{e.extfrag_class, e.alloc_migratetype, e.fallback_migratetype}]++;
      if (e.extfrag_class < s.fallbacks_by_class.size()) s.fallbacks_by_class[e.extfrag_class]++;
      break;
    }
    case FL_EV_COMPACT_TRY: {
      fl_compact_try e;
      if (!Load(rec, &e)) break;
      s.compaction[e.order].direct_tries++;
      direct_order_[e.pid] = e.order;
      break;
    }
    case FL_EV_KCOMPACTD_WAKEUP: {
      fl_kcompactd e;
      if (!Load(rec, &e)) break;
      s.compaction[e.order].kcompactd_wakeups++;
      break;
    }
    case FL_EV_COMPACT_SUITABLE: {
      fl_compact_result e;
      if (!Load(rec, &e)) break;
      s.compaction[e.order].suitable[e.ret]++;
      break;
    }
    case FL_EV_COMPACT_DEFERRED: {
      fl_compact_defer e;
      if (!Load(rec, &e)) break;
      s.compaction[e.order].deferred++;
      break;
    }
    case FL_EV_COMPACT_OUTCOME: {
      fl_compact_outcome e;
      if (!Load(rec, &e)) break;
      if (e.success) {
        s.compaction[e.order].outcome_success++;
      } else {
        s.compaction[e.order].outcome_failure++;
      }
      break;
    }
    case FL_EV_COMPACT_BEGIN: {
      fl_compact_begin_end e;
      if (!Load(rec, &e)) break;
      compact_begin_[e.pid] = rec.ts_ns;
      break;
    }
    case FL_EV_COMPACT_END: {
      fl_compact_begin_end e;
      if (!Load(rec, &e)) break;
      auto begin = compact_begin_.find(e.pid);
      auto direct = direct_order_.find(e.pid);
      bool timed = begin != compact_begin_.end() && rec.ts_ns >= begin->second;
      uint64_t dur = timed ? rec.ts_ns - begin->second : 0;
      if (direct != direct_order_.end()) {
        s.compaction[direct->second].direct_runs[e.status]++;
        if (timed) s.direct_compaction.Add(dur);
      } else {
        s.other_runs[e.status]++;
        if (timed) s.other_compaction.Add(dur);
      }
      if (begin != compact_begin_.end()) compact_begin_.erase(begin);
      break;
    }
    case FL_EV_DIRECT_RECLAIM_BEGIN: {
      fl_direct_reclaim e;
      if (!Load(rec, &e)) break;
      reclaim_begin_[e.pid] = rec.ts_ns;
      direct_order_.erase(e.pid);
      break;
    }
    case FL_EV_DIRECT_RECLAIM_END: {
      fl_direct_reclaim e;
      if (!Load(rec, &e)) break;
      s.direct_reclaimed_pages += e.nr_reclaimed;
      auto it = reclaim_begin_.find(e.pid);
      if (it != reclaim_begin_.end()) {
        if (rec.ts_ns >= it->second) s.direct_reclaim.Add(rec.ts_ns - it->second);
        reclaim_begin_.erase(it);
      }
      break;
    }
    case FL_EV_KSWAPD_WAKE:
      s.kswapd_wakes++;
      break;
    case FL_EV_MIGRATE_PAGES: {
      fl_migrate_pages e;
      if (!Load(rec, &e)) break;
      s.migrate_succeeded += e.succeeded;
      s.migrate_failed += e.failed;
      break;
    }
    case FL_EV_THP_COLLAPSE: {
      fl_thp_collapse e;
      if (!Load(rec, &e)) break;
      s.thp_collapse_status[e.status]++;
      break;
    }
    case FL_EV_OOM_VICTIM:
      s.oom_victims++;
      break;
    case FL_EV_COUNTERS: {
      fl_counters e;
      if (!Load(rec, &e)) break;
      if (!s.have_counters) s.first_counters = e;
      s.last_counters = e;
      s.have_counters = true;
      break;
    }
    case FL_EV_AGGREGATE: {
      if (rec.size < sizeof(fl_aggregate)) break;
      auto a = std::make_unique<fl_aggregate>();
      std::memcpy(a.get(), &rec, sizeof(fl_aggregate));
      uint32_t zones = std::min<uint32_t>(a->nr_zones, FL_MAX_ZONES);
      for (uint32_t z = 0; z < zones; ++z) {
        for (int o = 0; o < FL_MAX_ORDERS; ++o) {
          for (int m = 0; m < FL_MAX_MIGRATETYPES; ++m) {
            s.agg_allocs += a->alloc[z][o][m];
            s.agg_frees += a->free[z][o][m];
          }
        }
      }
      for (int o = 0; o < FL_MAX_ORDERS; ++o) {
        for (int m = 0; m < FL_MAX_MIGRATETYPES; ++m) s.agg_alloc_failures += a->alloc_failed[o][m];
      }
      s.agg_unknown_zone += a->unknown_zone;
      break;
    }
    case FL_EV_DROPS: {
      fl_drops e;
      if (!Load(rec, &e)) break;
      uint64_t& lost = s.lost_per_cpu[rec.cpu];
      lost = std::max<uint64_t>(lost, e.lost);
      break;
    }
    default:
      break;
  }
}

absl::StatusOr<TraceSummary> SummarizeTraceFile(const std::string& path, TraceHeader* header) {
  ASSIGN_OR_RETURN(std::unique_ptr<TraceReader> reader, TraceReader::Open(path));
  if (header != nullptr) *header = reader->header();
  TraceSummaryBuilder builder;
  while (true) {
    ASSIGN_OR_RETURN(const fl_record_header* rec, reader->Next());
    if (rec == nullptr) break;
    builder.Add(*rec);
  }
  return builder.summary();
}

std::string FormatTraceSummary(const TraceSummary& s, const TraceHeader& header) {
  std::string out;
  double secs = s.records ? static_cast<double>(s.last_ts_ns - s.first_ts_ns) / 1e9 : 0.0;
  absl::StrAppendFormat(&out, "fraglab trace summary: %d records over %.3f s\n", s.records, secs);

  // Fallbacks.
  uint64_t fallbacks = s.fallbacks_by_class[0] + s.fallbacks_by_class[1] + s.fallbacks_by_class[2];
  absl::StrAppendFormat(&out, "\nFallbacks (mm_page_alloc_extfrag): %d  claim %d  steal %d  pollute %d\n",
                        fallbacks, s.fallbacks_by_class[FL_EXTFRAG_CLAIM],
                        s.fallbacks_by_class[FL_EXTFRAG_STEAL], s.fallbacks_by_class[FL_EXTFRAG_POLLUTE]);
  if (!s.fallbacks.empty()) {
    absl::StrAppendFormat(&out, "  %-8s %-12s %-12s %10s\n", "class", "requested", "taken from", "count");
    for (const auto& [k, n] : s.fallbacks) {
      absl::StrAppendFormat(&out, "  %-8s %-12s %-12s %10d\n", ExtfragClassName(k.extfrag_class),
                            MigratetypeName(header, k.alloc_migratetype),
                            MigratetypeName(header, k.fallback_migratetype), n);
    }
  }

  // Compaction.
  out += "\nCompaction per order:\n";
  if (s.compaction.empty()) {
    out += "  none\n";
  } else {
    for (const auto& [order, c] : s.compaction) {
      absl::StrAppendFormat(&out, "  order %2d: direct tries %d, kcompactd wakeups %d, deferred %d",
                            order, c.direct_tries, c.kcompactd_wakeups, c.deferred);
      if (!c.suitable.empty()) {
        out += "; suitable:";
        for (const auto& [ret, n] : c.suitable) absl::StrAppendFormat(&out, " %s=%d", CompactResultName(ret), n);
      }
      if (!c.direct_runs.empty()) {
        out += "; direct runs ended:";
        for (const auto& [st, n] : c.direct_runs) absl::StrAppendFormat(&out, " %s=%d", CompactResultName(st), n);
      }
      if (c.outcome_success + c.outcome_failure > 0) {
        absl::StrAppendFormat(&out, "; outcome success=%d failure=%d", c.outcome_success, c.outcome_failure);
      }
      out += "\n";
    }
  }
  if (!s.other_runs.empty()) {
    out += "  kcompactd/proactive/manual runs ended:";
    for (const auto& [st, n] : s.other_runs) absl::StrAppendFormat(&out, " %s=%d", CompactResultName(st), n);
    out += "\n";
  }
  uint64_t stall = 0, success = 0, fail = 0;
  if (s.CounterDelta(FL_CTR_COMPACT_STALL, &stall) && s.CounterDelta(FL_CTR_COMPACT_SUCCESS, &success) &&
      s.CounterDelta(FL_CTR_COMPACT_FAIL, &fail)) {
    absl::StrAppendFormat(&out, "  vmstat: compact_stall %d, compact_success %d, compact_fail %d\n", stall,
                          success, fail);
  }

  // Latencies.
  out += "\nLatency:\n";
  out += s.direct_compaction.Format("  direct compaction stall (per run)");
  out += s.other_compaction.Format("  other compaction runs");
  out += s.direct_reclaim.Format("  direct reclaim stall");
  absl::StrAppendFormat(&out, "  direct reclaim freed %d pages; kswapd woke %d times\n",
                        s.direct_reclaimed_pages, s.kswapd_wakes);

  // THP.
  out += "\nTHP:\n";
  uint64_t thp_alloc = 0, thp_fallback = 0, thp_charge = 0;
  bool have_thp = s.CounterDelta(FL_CTR_THP_FAULT_ALLOC, &thp_alloc) &&
                  s.CounterDelta(FL_CTR_THP_FAULT_FALLBACK, &thp_fallback);
  if (have_thp) {
    s.CounterDelta(FL_CTR_THP_FAULT_FALLBACK_CHARGE, &thp_charge);
    uint64_t faults = thp_alloc + thp_fallback;
    absl::StrAppendFormat(&out, "  faults: %d succeeded, %d fell back (%d for memcg charge)", thp_alloc,
                          thp_fallback, thp_charge);
    if (faults > 0) {
      absl::StrAppendFormat(&out, ", success rate %.1f%%",
                            100.0 * static_cast<double>(thp_alloc) / static_cast<double>(faults));
    }
    out += "\n";
  } else {
    out += "  faults: unknown (no vmstat counter records in the trace)\n";
  }
  if (!s.thp_collapse_status.empty()) {
    out += "  khugepaged collapses by status:";
    for (const auto& [st, n] : s.thp_collapse_status) absl::StrAppendFormat(&out, " %d=%d", st, n);
    out += "\n";
  }

  // Page alloc/free, migration, OOM.
  absl::StrAppendFormat(&out, "\nPages: %d allocations (%d failed), %d frees", s.agg_allocs,
                        s.agg_alloc_failures, s.agg_frees);
  if (s.full_allocs + s.full_frees > 0) {
    absl::StrAppendFormat(&out, "; full events: %d allocs, %d frees", s.full_allocs, s.full_frees);
  }
  if (s.agg_unknown_zone > 0) absl::StrAppendFormat(&out, "; %d outside known zones", s.agg_unknown_zone);
  absl::StrAppendFormat(&out, "\nMigration: %d pages migrated, %d failed\n", s.migrate_succeeded,
                        s.migrate_failed);
  absl::StrAppendFormat(&out, "OOM victims: %d\n", s.oom_victims);

  // Drops.
  uint64_t lost = s.lost();
  if (s.lost_per_cpu.empty()) {
    out += "\nDrops: unknown (no drop records in the trace)\n";
  } else {
    absl::StrAppendFormat(&out, "\nDrops: %d events lost", lost);
    if (lost > 0) {
      out += " (";
      bool first = true;
      for (const auto& [cpu, n] : s.lost_per_cpu) {
        if (n == 0) continue;
        absl::StrAppendFormat(&out, "%scpu%d %d", first ? "" : ", ", cpu, n);
        first = false;
      }
      out += "): the ring buffer was too small, rerun with a larger --ring-size";
    }
    out += "\n";
  }
  return out;
}

}  // namespace fraglab::tracker
