// Unit tests of the tracker's start-up helpers (bpf/tracker.h) that need no
// BPF: the note for callers that run on without a tracker, and the
// prerequisite check StartForMachine makes before anything else.
#include <string>

#include "absl/status/status.h"
#include "bpf/tracker.h"
#include "common/event_sink.h"
#include "common/trace_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fraglab::tracker {
namespace {

using ::testing::HasSubstr;

TEST(NoTrackerNoteTest, SaysUnavailableForAMissingPrerequisite) {
  EXPECT_EQ(NoTrackerNote(absl::FailedPreconditionError("tracing needs root")),
            "tracker unavailable: tracing needs root");
}

TEST(NoTrackerNoteTest, SaysFailedToStartForOtherErrors) {
  EXPECT_EQ(NoTrackerNote(absl::InvalidArgumentError("ring size 12345 bytes: must be a power of two")),
            "tracker failed to start: ring size 12345 bytes: must be a power of two");
  EXPECT_EQ(NoTrackerNote(absl::PermissionDeniedError("perf_event_open: EACCES")),
            "tracker failed to start: perf_event_open: EACCES");
}

TEST(StartForMachineTest, MissingPrerequisiteIsReturnedUnchangedBeforeAnythingElse) {
  // A tracefs path that cannot exist fails the check on any machine (built
  // without BPF, not root or root alike); the ring size, invalid too, is
  // never looked at because the prerequisites come first.
  TrackerOptions o;
  o.tracefs = "/nonexistent/fraglab-tracefs";
  o.ring_bytes = 12345;
  const absl::Status want = CheckPrerequisites(o.tracefs);
  ASSERT_TRUE(absl::IsFailedPrecondition(want)) << want;
  VectorSink sink;
  TraceHeader h;
  absl::StatusOr<std::unique_ptr<Tracker>> tr = StartForMachine(o, h, &sink);
  ASSERT_FALSE(tr.ok());
  EXPECT_EQ(tr.status(), want);
  tr = StartForThisMachine(o, &sink);
  ASSERT_FALSE(tr.ok());
  EXPECT_EQ(tr.status(), want);
  EXPECT_THAT(NoTrackerNote(tr.status()), HasSubstr("tracker unavailable: "));
}

}  // namespace
}  // namespace fraglab::tracker
