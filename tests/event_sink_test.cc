// Unit tests of common/event_sink.h: InitRecord, VectorSink and TeeSink's
// order and error rule.
#include "common/event_sink.h"

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace fraglab {
namespace {

fl_drops Drops(uint64_t ts, uint64_t lost) {
  fl_drops d;
  InitRecord(d, FL_EV_DROPS, ts, 3);
  d.lost = lost;
  return d;
}

// Records the timestamps it is offered and fails those in `fail_ts`.
class ScriptedSink final : public EventSink {
 public:
  ScriptedSink(std::string name, std::vector<uint64_t>* log, std::vector<uint64_t> fail_ts = {})
      : name_(std::move(name)), log_(log), fail_ts_(std::move(fail_ts)) {}
  [[nodiscard]] absl::Status Emit(const fl_record_header& rec) override {
    seen_.push_back(rec.ts_ns);
    if (log_ != nullptr) log_->push_back(rec.ts_ns * 10 + tag());
    for (uint64_t ts : fail_ts_) {
      if (ts == rec.ts_ns) return absl::DataLossError(name_ + " failed");
    }
    return absl::OkStatus();
  }
  const std::vector<uint64_t>& seen() const { return seen_; }

 private:
  // 1 for "a", 2 for "b"...: lets the shared log show the order of calls.
  uint64_t tag() const { return static_cast<uint64_t>(name_[0] - 'a' + 1); }

  std::string name_;
  std::vector<uint64_t>* log_;
  std::vector<uint64_t> fail_ts_;
  std::vector<uint64_t> seen_;
};

TEST(InitRecordTest, FillsTheHeaderAndZeroesThePayload) {
  fl_drops d;
  std::memset(&d, 0xab, sizeof(d));
  InitRecord(d, FL_EV_DROPS, 1234, 5);
  EXPECT_EQ(d.hdr.kind, FL_EV_DROPS);
  EXPECT_EQ(d.hdr.size, sizeof(fl_drops));
  EXPECT_EQ(d.hdr.ts_ns, 1234u);
  EXPECT_EQ(d.hdr.cpu, 5u);
  EXPECT_EQ(d.lost, 0u);
}

TEST(VectorSinkTest, KeepsRecordsInOrderAndClears) {
  VectorSink v;
  ASSERT_TRUE(v.Emit(Drops(1, 10).hdr).ok());
  ASSERT_TRUE(v.Emit(Drops(2, 20).hdr).ok());
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v.at(0).ts_ns, 1u);
  EXPECT_EQ(v.as<fl_drops>(1).lost, 20u);
  v.clear();
  EXPECT_EQ(v.size(), 0u);
}

TEST(TeeSinkTest, EmptyTeeAcceptsEverything) {
  TeeSink tee;
  EXPECT_TRUE(tee.Emit(Drops(1, 0).hdr).ok());
}

TEST(TeeSinkTest, SendsEveryRecordToEverySinkInOrder) {
  std::vector<uint64_t> log;
  ScriptedSink a("a", &log), b("b", &log), c("c", &log);
  TeeSink tee({&a, &b});
  tee.Add(&c);  // after the constructor's sinks
  ASSERT_TRUE(tee.Emit(Drops(1, 7).hdr).ok());
  ASSERT_TRUE(tee.Emit(Drops(2, 8).hdr).ok());
  EXPECT_EQ(log, (std::vector<uint64_t>{11, 12, 13, 21, 22, 23}));
}

TEST(TeeSinkTest, CopiesTheWholeRecordToEachSink) {
  VectorSink a, b;
  TeeSink tee({&a, &b});
  ASSERT_TRUE(tee.Emit(Drops(9, 42).hdr).ok());
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(a.as<fl_drops>(0).lost, 42u);
  EXPECT_EQ(b.as<fl_drops>(0).lost, 42u);
  EXPECT_EQ(b.at(0).cpu, 3u);
}

TEST(TeeSinkTest, FirstErrorEndsTheRecordAndIsReturned) {
  ScriptedSink a("a", nullptr), b("b", nullptr, {2}), c("c", nullptr, {2});
  TeeSink tee({&a, &b, &c});
  ASSERT_TRUE(tee.Emit(Drops(1, 0).hdr).ok());
  absl::Status st = tee.Emit(Drops(2, 0).hdr);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(st.message(), "b failed");  // not c's: c never saw record 2
  // The sink before the failing one got the record, the one after did not.
  EXPECT_EQ(a.seen(), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(b.seen(), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(c.seen(), (std::vector<uint64_t>{1}));
  // A failure is per record: the next one goes everywhere again.
  ASSERT_TRUE(tee.Emit(Drops(3, 0).hdr).ok());
  EXPECT_EQ(c.seen(), (std::vector<uint64_t>{1, 3}));
}

TEST(TeeSinkDeathTest, RefusesANullSink) {
  TeeSink tee;
  EXPECT_DEATH(tee.Add(nullptr), "sink != nullptr");
  EXPECT_DEATH(TeeSink(std::vector<EventSink*>{nullptr}), "s != nullptr");
}

}  // namespace
}  // namespace fraglab
