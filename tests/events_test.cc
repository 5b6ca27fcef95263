// The event schema is a file format: these tests pin the numbers and offsets
// that readers in other tools (and older fraglab versions) rely on.
#include <cstddef>

#include "bpf/fraglab_events.h"
#include "common/event_sink.h"
#include "gtest/gtest.h"

namespace fraglab {
namespace {

TEST(EventsTest, KindNumbersAreStable) {
  EXPECT_EQ(FL_EV_PAGE_ALLOC, 1);
  EXPECT_EQ(FL_EV_PAGE_FREE, 2);
  EXPECT_EQ(FL_EV_EXTFRAG, 3);
  EXPECT_EQ(FL_EV_ZONE_LOCKED, 4);
  EXPECT_EQ(FL_EV_PCP_DRAIN, 5);
  EXPECT_EQ(FL_EV_COMPACT_BEGIN, 10);
  EXPECT_EQ(FL_EV_MIGRATE_PAGES, 30);
  EXPECT_EQ(FL_EV_AGGREGATE, 50);
  EXPECT_EQ(FL_EV_PAGEBLOCK_MAP, 55);
  EXPECT_EQ(FL_EV_PROBE, 56);
}

TEST(EventsTest, HeaderLayout) {
  EXPECT_EQ(offsetof(fl_record_header, kind), 0u);
  EXPECT_EQ(offsetof(fl_record_header, cpu), 2u);
  EXPECT_EQ(offsetof(fl_record_header, size), 4u);
  EXPECT_EQ(offsetof(fl_record_header, ts_ns), 8u);
}

TEST(EventsTest, ExtfragLayout) {
  EXPECT_EQ(offsetof(fl_extfrag, pfn), 16u);
  EXPECT_EQ(offsetof(fl_extfrag, alloc_order), 24u);
  EXPECT_EQ(offsetof(fl_extfrag, fallback_migratetype), 36u);
  EXPECT_EQ(offsetof(fl_extfrag, change_ownership), 40u);
  EXPECT_EQ(offsetof(fl_extfrag, extfrag_class), 42u);
}

TEST(EventsTest, EveryFixedRecordIsMultipleOfEight) {
  EXPECT_EQ(sizeof(fl_aggregate) % 8, 0u);
  EXPECT_EQ(sizeof(fl_snapshot_zone) % 8, 0u);
  EXPECT_EQ(sizeof(fl_counters) % 8, 0u);
  EXPECT_EQ(sizeof(fl_phase) % 8, 0u);
  EXPECT_EQ(sizeof(fl_pageblock_map) % 8, 0u);
}

TEST(EventsTest, VectorSinkKeepsRecordsInOrder) {
  VectorSink sink;
  fl_page_alloc a;
  InitRecord(a, FL_EV_PAGE_ALLOC, 5, 1);
  a.pfn = 0x1234;
  a.order = 3;
  fl_page_free f;
  InitRecord(f, FL_EV_PAGE_FREE, 6, 0);
  f.pfn = 0x1234;
  ASSERT_TRUE(sink.Emit(a.hdr).ok());
  ASSERT_TRUE(sink.Emit(f.hdr).ok());
  ASSERT_EQ(sink.size(), 2u);
  EXPECT_EQ(sink.at(0).kind, FL_EV_PAGE_ALLOC);
  EXPECT_EQ(sink.as<fl_page_alloc>(0).order, 3u);
  EXPECT_EQ(sink.at(1).ts_ns, 6u);
  EXPECT_EQ(sink.as<fl_page_free>(1).pfn, 0x1234u);
}

}  // namespace
}  // namespace fraglab
