// Unit tests of the tracker's pure parts: the latency histogram and the
// closing summary built from synthetic records (no BPF needed).
#include <string>

#include "bpf/trace_summary.h"
#include "bpf/tracker.h"
#include "common/event_sink.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fraglab::tracker {
namespace {

using testing::HasSubstr;

constexpr uint64_t kUs = 1000;

TEST(LatencyHistogramTest, BucketsArePowersOfTwoMicroseconds) {
  EXPECT_EQ(LatencyHistogram::BucketOf(0), 0);
  EXPECT_EQ(LatencyHistogram::BucketOf(1999), 0);      // 1 us
  EXPECT_EQ(LatencyHistogram::BucketOf(2 * kUs), 1);   // [2, 4)
  EXPECT_EQ(LatencyHistogram::BucketOf(3999), 1);
  EXPECT_EQ(LatencyHistogram::BucketOf(4 * kUs), 2);
  EXPECT_EQ(LatencyHistogram::BucketOf(1024 * kUs), 10);
  EXPECT_EQ(LatencyHistogram::BucketOf(~0ull), LatencyHistogram::kBuckets - 1);
  EXPECT_EQ(LatencyHistogram::BucketLowUs(0), 0u);
  EXPECT_EQ(LatencyHistogram::BucketLowUs(5), 32u);
}

TEST(LatencyHistogramTest, CountsTotalsAndQuantiles) {
  LatencyHistogram h;
  EXPECT_EQ(h.QuantileUpperUs(0.5), 0u);
  for (int i = 0; i < 99; ++i) h.Add(10 * kUs);  // bucket 3: [8, 16)
  h.Add(5000 * kUs);                              // bucket 12: [4096, 8192)
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.bucket(3), 99u);
  EXPECT_EQ(h.bucket(12), 1u);
  EXPECT_EQ(h.total_ns(), 99 * 10 * kUs + 5000 * kUs);
  EXPECT_EQ(h.max_ns(), 5000 * kUs);
  EXPECT_EQ(h.QuantileUpperUs(0.5), 16u);
  EXPECT_EQ(h.QuantileUpperUs(0.99), 16u);
  EXPECT_EQ(h.QuantileUpperUs(1.0), 8192u);
  std::string text = h.Format("x");
  EXPECT_THAT(text, HasSubstr("x: 100 samples"));
  EXPECT_THAT(text, HasSubstr("[8, 16)"));
  EXPECT_THAT(text, HasSubstr("[4096, 8192)"));
}

// Builders of synthetic records.
fl_extfrag Extfrag(uint64_t ts, int alloc_mt, int fallback_mt, int fallback_order, bool change) {
  fl_extfrag e;
  InitRecord(e, FL_EV_EXTFRAG, ts, 0);
  e.alloc_order = 0;
  e.fallback_order = fallback_order;
  e.alloc_migratetype = alloc_mt;
  e.fallback_migratetype = fallback_mt;
  e.change_ownership = change;
  e.fragmenting = fallback_order < 9;
  e.extfrag_class = !e.fragmenting ? FL_EXTFRAG_CLAIM : (change ? FL_EXTFRAG_STEAL : FL_EXTFRAG_POLLUTE);
  return e;
}

fl_compact_begin_end Compact(uint16_t kind, uint64_t ts, uint32_t pid, int status) {
  fl_compact_begin_end e;
  InitRecord(e, kind, ts, 0);
  e.pid = pid;
  e.status = status;
  return e;
}

fl_compact_try Try(uint64_t ts, uint32_t pid, int order) {
  fl_compact_try e;
  InitRecord(e, FL_EV_COMPACT_TRY, ts, 0);
  e.pid = pid;
  e.order = order;
  return e;
}

fl_direct_reclaim Reclaim(uint16_t kind, uint64_t ts, uint32_t pid, uint64_t reclaimed) {
  fl_direct_reclaim e;
  InitRecord(e, kind, ts, 0);
  e.pid = pid;
  e.nr_reclaimed = reclaimed;
  return e;
}

fl_drops Drops(uint64_t ts, uint16_t cpu, uint64_t lost) {
  fl_drops e;
  InitRecord(e, FL_EV_DROPS, ts, cpu);
  e.lost = lost;
  return e;
}

fl_counters Counters(uint64_t ts, uint64_t thp_alloc, uint64_t thp_fallback) {
  fl_counters e;
  InitRecord(e, FL_EV_COUNTERS, ts, 0);
  e.present_mask = (1ull << FL_CTR_THP_FAULT_ALLOC) | (1ull << FL_CTR_THP_FAULT_FALLBACK);
  e.value[FL_CTR_THP_FAULT_ALLOC] = thp_alloc;
  e.value[FL_CTR_THP_FAULT_FALLBACK] = thp_fallback;
  return e;
}

TraceHeader Header() {
  TraceHeader h;
  h.migratetype_names = {"Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"};
  return h;
}

TEST(TraceSummaryTest, FallbacksByClassAndMigratetypePair) {
  TraceSummaryBuilder b;
  b.Add(Extfrag(1, 0, 1, 10, true).hdr);   // claim U<-M
  b.Add(Extfrag(2, 0, 1, 10, true).hdr);   // claim U<-M
  b.Add(Extfrag(3, 0, 1, 3, true).hdr);    // steal U<-M
  b.Add(Extfrag(4, 1, 0, 0, false).hdr);   // pollute M<-U
  const TraceSummary& s = b.summary();
  EXPECT_EQ(s.records, 4u);
  EXPECT_EQ(s.fallbacks_by_class[FL_EXTFRAG_CLAIM], 2u);
  EXPECT_EQ(s.fallbacks_by_class[FL_EXTFRAG_STEAL], 1u);
  EXPECT_EQ(s.fallbacks_by_class[FL_EXTFRAG_POLLUTE], 1u);
  EXPECT_EQ((s.fallbacks.at({FL_EXTFRAG_CLAIM, 0, 1})), 2u);
  EXPECT_EQ((s.fallbacks.at({FL_EXTFRAG_POLLUTE, 1, 0})), 1u);
  std::string text = FormatTraceSummary(s, Header());
  EXPECT_THAT(text, HasSubstr("Fallbacks (mm_page_alloc_extfrag): 4  claim 2  steal 1  pollute 1"));
  EXPECT_THAT(text, testing::ContainsRegex("claim +Unmovable +Movable +2"));
  EXPECT_THAT(text, testing::ContainsRegex("pollute +Movable +Unmovable +1"));
}

TEST(TraceSummaryTest, DirectCompactionIsAttributedToTheTasksOrder) {
  TraceSummaryBuilder b;
  // Task 7 compacts directly for order 9: one run of 100 us ending SUCCESS (8).
  b.Add(Try(10 * kUs, 7, 9).hdr);
  b.Add(Compact(FL_EV_COMPACT_BEGIN, 20 * kUs, 7, 0).hdr);
  b.Add(Compact(FL_EV_COMPACT_END, 120 * kUs, 7, 8).hdr);
  // kcompactd (pid 50) runs without a try: another kind of run, 3 ms, COMPLETE (5).
  b.Add(Compact(FL_EV_COMPACT_BEGIN, 200 * kUs, 50, 0).hdr);
  b.Add(Compact(FL_EV_COMPACT_END, 3200 * kUs, 50, 5).hdr);
  // Task 7 then reclaims (ending its compaction attempt) and a later run of
  // it without a new try counts as "other".
  b.Add(Reclaim(FL_EV_DIRECT_RECLAIM_BEGIN, 4000 * kUs, 7, 0).hdr);
  b.Add(Reclaim(FL_EV_DIRECT_RECLAIM_END, 4500 * kUs, 7, 32).hdr);
  b.Add(Compact(FL_EV_COMPACT_BEGIN, 5000 * kUs, 7, 0).hdr);
  b.Add(Compact(FL_EV_COMPACT_END, 5001 * kUs, 7, 7).hdr);
  const TraceSummary& s = b.summary();
  ASSERT_EQ(s.compaction.count(9), 1u);
  EXPECT_EQ(s.compaction.at(9).direct_tries, 1u);
  EXPECT_EQ(s.compaction.at(9).direct_runs.at(8), 1u);
  EXPECT_EQ(s.direct_compaction.count(), 1u);
  EXPECT_EQ(s.direct_compaction.total_ns(), 100 * kUs);
  EXPECT_EQ(s.other_compaction.count(), 2u);
  EXPECT_EQ(s.other_runs.at(5), 1u);
  EXPECT_EQ(s.other_runs.at(7), 1u);
  EXPECT_EQ(s.direct_reclaim.count(), 1u);
  EXPECT_EQ(s.direct_reclaim.total_ns(), 500 * kUs);
  EXPECT_EQ(s.direct_reclaimed_pages, 32u);
  std::string text = FormatTraceSummary(s, Header());
  EXPECT_THAT(text, HasSubstr("order  9: direct tries 1"));
  EXPECT_THAT(text, HasSubstr("direct runs ended: success=1"));
  EXPECT_THAT(text, HasSubstr("direct reclaim stall: 1 samples"));
}

TEST(TraceSummaryTest, ReclaimEndWithoutBeginIsNotTimed) {
  TraceSummaryBuilder b;
  b.Add(Reclaim(FL_EV_DIRECT_RECLAIM_END, 100, 3, 5).hdr);
  EXPECT_EQ(b.summary().direct_reclaim.count(), 0u);
  EXPECT_EQ(b.summary().direct_reclaimed_pages, 5u);
}

TEST(TraceSummaryTest, DropsUseTheLatestCumulativeCountPerCpu) {
  TraceSummaryBuilder b;
  b.Add(Drops(1, 0, 3).hdr);
  b.Add(Drops(1, 1, 0).hdr);
  b.Add(Drops(2, 0, 10).hdr);
  b.Add(Drops(2, 1, 4).hdr);
  EXPECT_EQ(b.summary().lost(), 14u);
  std::string text = FormatTraceSummary(b.summary(), Header());
  EXPECT_THAT(text, HasSubstr("Drops: 14 events lost (cpu0 10, cpu1 4)"));
}

TEST(TraceSummaryTest, NoDropRecordsMeansUnknownNotZero) {
  TraceSummaryBuilder b;
  b.Add(Extfrag(1, 0, 1, 10, true).hdr);
  EXPECT_THAT(FormatTraceSummary(b.summary(), Header()), HasSubstr("Drops: unknown"));
}

TEST(TraceSummaryTest, ThpFaultsFromCounterDeltas) {
  TraceSummaryBuilder b;
  b.Add(Counters(1, 100, 10).hdr);
  b.Add(Counters(2, 130, 20).hdr);
  b.Add(Counters(3, 160, 50).hdr);
  uint64_t d = 0;
  ASSERT_TRUE(b.summary().CounterDelta(FL_CTR_THP_FAULT_ALLOC, &d));
  EXPECT_EQ(d, 60u);
  EXPECT_FALSE(b.summary().CounterDelta(FL_CTR_COMPACT_STALL, &d));  // not present
  EXPECT_THAT(FormatTraceSummary(b.summary(), Header()),
              HasSubstr("faults: 60 succeeded, 40 fell back (0 for memcg charge), success rate 60.0%"));
}

TEST(TraceSummaryTest, AggregatesAreSummedOverZonesOrdersAndTypes) {
  TraceSummaryBuilder b;
  auto a = std::make_unique<fl_aggregate>();
  InitRecord(*a, FL_EV_AGGREGATE, 5, 0);
  a->nr_zones = 2;
  a->alloc[0][0][1] = 100;
  a->alloc[1][9][1] = 2;
  a->free[1][0][FL_MT_UNKNOWN] = 50;
  a->alloc_failed[3][0] = 1;
  a->unknown_zone = 4;
  b.Add(a->hdr);
  b.Add(a->hdr);
  const TraceSummary& s = b.summary();
  EXPECT_EQ(s.agg_allocs, 204u);
  EXPECT_EQ(s.agg_frees, 100u);
  EXPECT_EQ(s.agg_alloc_failures, 2u);
  EXPECT_EQ(s.agg_unknown_zone, 8u);
  EXPECT_THAT(FormatTraceSummary(s, Header()), HasSubstr("Pages: 204 allocations (2 failed), 100 frees"));
}

TEST(TraceSummaryTest, ShortRecordsAreCountedButIgnored) {
  TraceSummaryBuilder b;
  fl_record_header h{};
  h.kind = FL_EV_EXTFRAG;
  h.size = sizeof(fl_record_header);
  b.Add(h);
  EXPECT_EQ(b.summary().records, 1u);
  EXPECT_EQ(b.summary().by_kind[FL_EV_EXTFRAG], 1u);
  EXPECT_TRUE(b.summary().fallbacks.empty());
}

TEST(TeeSinkTest, SendsEveryRecordToEverySink) {
  VectorSink a, c;
  TraceSummaryBuilder b;
  TeeSink tee({&a, &b, &c});
  fl_drops d = Drops(1, 0, 2);
  ASSERT_TRUE(tee.Emit(d.hdr).ok());
  EXPECT_EQ(a.size(), 1u);
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(b.summary().lost(), 2u);
}

TEST(TrackerOptionsTest, RejectsBadRingSizesBeforeTouchingTheKernel) {
  VectorSink sink;
  TrackerOptions o;
  o.ring_bytes = 12345;  // not a power of two
  auto tr = Tracker::Start(o, &sink);
  ASSERT_FALSE(tr.ok());
  if (BuiltWithBpf()) {
    EXPECT_EQ(tr.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(tr.status().message()), HasSubstr("power of two"));
  } else {
    EXPECT_THAT(std::string(tr.status().message()), HasSubstr("without BPF support"));
  }
  EXPECT_FALSE(Tracker::Start(TrackerOptions{}, nullptr).ok());
}

}  // namespace
}  // namespace fraglab::tracker
