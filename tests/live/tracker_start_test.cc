// Live tests of StartForMachine / StartForThisMachine (bpf/tracker.h): the
// tracker they start takes its zone table and pageblock order from the
// machine's trace header and keeps the rest of the caller's options. Skips
// with CheckPrerequisites()'s reason where this machine cannot trace.
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bpf/tracker.h"
#include "common/event_sink.h"
#include "common/snapshot_machine.h"
#include "common/trace_file.h"
#include "gtest/gtest.h"

namespace fraglab::tracker {
namespace {

#define SKIP_UNLESS_TRACING_WORKS()                                              \
  do {                                                                           \
    if (absl::Status pre = CheckPrerequisites(); !pre.ok()) GTEST_SKIP() << pre; \
  } while (0)

bool SameZones(const std::vector<ZoneLayout>& a, const std::vector<ZoneLayout>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].nid != b[i].nid || a[i].zone_idx != b[i].zone_idx || a[i].name != b[i].name ||
        a[i].start_pfn != b[i].start_pfn || a[i].spanned != b[i].spanned || a[i].present != b[i].present ||
        a[i].managed != b[i].managed) {
      return false;
    }
  }
  return true;
}

TEST(StartForMachineLiveTest, TakesZonesAndPageblockOrderFromTheHeaderAndKeepsTheRest) {
  SKIP_UNLESS_TRACING_WORKS();
  absl::StatusOr<TraceHeader> header = snapshot::TraceHeaderForThisMachine();
  ASSERT_TRUE(header.ok()) << header.status();
  ASSERT_FALSE(header->zones.empty());
  TrackerOptions base;
  base.zones = {};                 // replaced
  base.pageblock_order = 3;        // replaced
  base.snapshots = false;          // kept
  base.interval_ns = 250'000'000;  // kept
  VectorSink sink;
  absl::StatusOr<std::unique_ptr<Tracker>> tr = StartForMachine(base, *header, &sink);
  ASSERT_TRUE(tr.ok()) << tr.status();
  const TrackerOptions& o = (*tr)->options();
  EXPECT_TRUE(SameZones(o.zones, header->zones));
  EXPECT_EQ(o.pageblock_order, header->pageblock_order);
  EXPECT_FALSE(o.snapshots);
  EXPECT_EQ(o.interval_ns, 250'000'000u);
  EXPECT_TRUE((*tr)->Stop().ok());
}

TEST(StartForMachineLiveTest, StartForThisMachineReadsTheRunningMachine) {
  SKIP_UNLESS_TRACING_WORKS();
  TrackerOptions base;
  base.snapshots = false;
  base.all_events = true;
  VectorSink sink;
  absl::StatusOr<std::unique_ptr<Tracker>> tr = StartForThisMachine(base, &sink);
  ASSERT_TRUE(tr.ok()) << tr.status();
  absl::StatusOr<TraceHeader> header = snapshot::TraceHeaderForThisMachine();
  ASSERT_TRUE(header.ok()) << header.status();
  const TrackerOptions& o = (*tr)->options();
  // Zone spans can move under virtio-mem between the two reads: compare the
  // zone list by identity, and the pageblock order exactly.
  ASSERT_EQ(o.zones.size(), header->zones.size());
  for (size_t i = 0; i < o.zones.size(); ++i) {
    EXPECT_EQ(o.zones[i].nid, header->zones[i].nid) << i;
    EXPECT_EQ(o.zones[i].zone_idx, header->zones[i].zone_idx) << i;
    EXPECT_EQ(o.zones[i].name, header->zones[i].name) << i;
  }
  EXPECT_EQ(o.pageblock_order, header->pageblock_order);
  EXPECT_TRUE(o.all_events);
  EXPECT_TRUE((*tr)->Stop().ok());
}

}  // namespace
}  // namespace fraglab::tracker
