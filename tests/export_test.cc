#include "analysis/export.h"

#include <filesystem>
#include <map>
#include <sstream>

#include "common/trace_records.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/trace_test_util.h"

namespace fraglab::analysis {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fraglab::testing::MakeTempDir(); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes the sample records (shifted to start at 5 ms) plus `extra`.
  std::string WriteTrace(int n, const std::vector<const fl_record_header*>& extra = {},
                         bool close = true) {
    const std::string path = dir_ + "/t.fltrace";
    auto w = TraceWriter::Open(path, fraglab::testing::SampleHeader());
    EXPECT_TRUE(w.ok());
    VectorSink recs;
    fraglab::testing::SampleRecords(recs, n);
    for (size_t i = 0; i < recs.size(); ++i) {
      std::vector<uint64_t> copy(recs.at(i).size / 8);
      std::memcpy(copy.data(), &recs.at(i), recs.at(i).size);
      reinterpret_cast<fl_record_header*>(copy.data())->ts_ns += 5'000'000;
      EXPECT_TRUE((*w)->Emit(*reinterpret_cast<fl_record_header*>(copy.data())).ok());
    }
    for (const fl_record_header* r : extra) EXPECT_TRUE((*w)->Emit(*r).ok());
    if (close) {
      EXPECT_TRUE((*w)->Close().ok());
    } else {
      EXPECT_TRUE((*w)->Flush().ok());
      // Leak-free "kill": drop the end marker by truncating after Close.
      EXPECT_TRUE((*w)->Close().ok());
      std::filesystem::resize_file(path, std::filesystem::file_size(path) - 48);
    }
    return path;
  }

  std::unique_ptr<TraceReader> Open(const std::string& path) {
    auto r = TraceReader::Open(path);
    EXPECT_TRUE(r.ok()) << r.status();
    return std::move(*r);
  }

  std::string dir_;
};

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST_F(ExportTest, JsonlHeaderLineThenOneObjectPerRecord) {
  const std::string path = WriteTrace(40);
  auto reader = Open(path);
  std::ostringstream out;
  auto sum = ExportJsonl(*reader, out);
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(sum->records_exported, 40u);
  EXPECT_TRUE(sum->closed);
  const auto lines = Lines(out.str());
  ASSERT_EQ(lines.size(), 41u);
  const json head = json::parse(lines[0]);
  EXPECT_EQ(head["fraglab_trace_header"]["scenario_name"], "unit");
  EXPECT_EQ(head["fraglab_trace_header"]["migratetype_names"][1], "Movable");
  const json extfrag = json::parse(lines[3]);
  EXPECT_EQ(extfrag["kind"], "extfrag");
  EXPECT_EQ(extfrag["ts_ns"], 5'002'000u);
  EXPECT_EQ(extfrag["alloc_migratetype"], "Unmovable");
  EXPECT_EQ(extfrag["fallback_migratetype"], "Movable");
  EXPECT_EQ(extfrag["class"], "steal");
  const json pbmap = json::parse(lines[6]);
  EXPECT_EQ(pbmap["kind"], "pageblock_map");
  EXPECT_EQ(pbmap["count"], 1 + 5 % 5);
  for (size_t i = 1; i < lines.size(); ++i) EXPECT_NO_THROW(json::parse(lines[i])) << i;
}

TEST_F(ExportTest, KindFilterAndKindListParsing) {
  const std::string path = WriteTrace(40);
  auto reader = Open(path);
  std::ostringstream out;
  ExportOptions opts;
  auto kinds = ParseKindList("extfrag,phase");
  ASSERT_TRUE(kinds.ok());
  opts.kinds = *kinds;
  auto sum = ExportJsonl(*reader, out, opts);
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(sum->records_read, 40u);
  EXPECT_EQ(sum->records_exported, 10u);
  EXPECT_THAT(ParseKindList("extfrag,bogus").status().message(),
              HasSubstr("unknown record kind 'bogus'"));
  EXPECT_FALSE(ParseKindList(",").ok());
  EXPECT_FALSE(ParseExportFormat("xml").ok());
  EXPECT_EQ(*ParseExportFormat("chrome"), ExportFormat::kChrome);
}

TEST_F(ExportTest, CsvOneTablePerKindWithQuotingAndTidyKinds) {
  fl_phase label;
  InitRecord(label, FL_EV_PHASE, 9'000'000, 0);
  std::snprintf(label.label, sizeof(label.label), "%s", "a,b \"quoted\"");
  auto agg = std::make_unique<fl_aggregate>();
  InitRecord(*agg, FL_EV_AGGREGATE, 9'500'000, 0);
  agg->interval_ns = 1000;
  agg->nr_zones = 2;
  agg->alloc[1][3][1] = 7;   // Normal, order 3, Movable
  agg->free[1][3][1] = 2;
  agg->alloc_failed[9][1] = 4;
  const std::string path = WriteTrace(40, {&label.hdr, &agg->hdr});
  auto reader = Open(path);
  std::map<uint16_t, std::ostringstream> tables;
  auto sum = ExportCsv(*reader, [&](uint16_t kind) -> absl::StatusOr<std::ostream*> {
    EXPECT_EQ(tables.count(kind), 0u) << "opened twice";
    return &tables[kind];
  });
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(tables.size(), 10u);  // 9 kinds of sample records + aggregate

  const auto alloc = Lines(tables[FL_EV_PAGE_ALLOC].str());
  ASSERT_EQ(alloc.size(), 6u);
  EXPECT_EQ(alloc[0], "ts_ns,cpu,failed,gfp_flags,migratetype,order,pfn");
  EXPECT_EQ(alloc[1], "5000000,0,false,3264,Unmovable,0,1048576");

  const auto phase = Lines(tables[FL_EV_PHASE].str());
  EXPECT_EQ(phase[0], "ts_ns,cpu,begin,index,label");
  EXPECT_EQ(phase.back(), "9000000,0,0,0,\"a,b \"\"quoted\"\"\"");

  const auto snap = Lines(tables[FL_EV_SNAPSHOT_ZONE].str());
  EXPECT_THAT(snap[0], HasSubstr(",nr_free.0,nr_free.1,"));
  EXPECT_THAT(snap[0], HasSubstr(",free_by_type.Movable.10,"));
  EXPECT_THAT(snap[0], HasSubstr(",pageblocks.Unmovable,"));
  // Every row has as many cells as the header (no quoting needed here).
  for (const std::string& row : snap) {
    EXPECT_EQ(std::count(row.begin(), row.end(), ','), std::count(snap[0].begin(), snap[0].end(), ','));
  }

  const auto pb = Lines(tables[FL_EV_PAGEBLOCK_MAP].str());
  EXPECT_EQ(pb[0], "ts_ns,cpu,nid,zone,pfn,migratetype,flags,free_pages");
  // Records 5, 13, 21, 29, 37 carry 1, 4, 2, 5, 3 entries.
  EXPECT_EQ(pb.size(), 1u + 1 + 4 + 2 + 5 + 3);
  EXPECT_EQ(pb[3], "5013000,0,0,node0_Normal,1049088,Movable,0,10");  // second block: +512 pfns

  const auto ag = Lines(tables[FL_EV_AGGREGATE].str());
  ASSERT_EQ(ag.size(), 3u);
  EXPECT_EQ(ag[0], "ts_ns,cpu,interval_ns,zone,migratetype,order,alloc,free,alloc_failed,unknown_zone");
  EXPECT_EQ(ag[1], "9500000,0,1000,node0_Normal,Movable,3,7,2,,0");
  EXPECT_EQ(ag[2], "9500000,0,1000,,Movable,9,,,4,0");

  EXPECT_EQ(CsvField("plain"), "plain");
  EXPECT_EQ(CsvField("line\nbreak"), "\"line\nbreak\"");
}

TEST_F(ExportTest, ChromeTraceHasCountersSlicesAndInstants) {
  // One record earlier than the first: timestamps may go negative, exactly.
  fl_drops early;
  InitRecord(early, FL_EV_DROPS, 5'000'000 - 1500, 1);
  early.lost = 3;
  const std::string path = WriteTrace(40, {&early.hdr});
  auto reader = Open(path);
  std::ostringstream out;
  auto sum = ExportChrome(*reader, out);
  ASSERT_TRUE(sum.ok()) << sum.status();
  const json doc = json::parse(out.str());
  EXPECT_EQ(doc["displayTimeUnit"], "ns");
  EXPECT_EQ(doc["otherData"]["kernel_release"], "6.18.0-sim");
  const json& events = doc["traceEvents"];
  std::map<std::string, int> by_ph;
  bool saw_zone_counter = false, saw_steal = false, saw_begin_slice = false, saw_vmstat = false;
  bool saw_zone_name = false;
  for (const json& e : events) {
    by_ph[e["ph"].get<std::string>()]++;
    if (e["ph"] == "C" && e["pid"] == 11 && e["name"] == "free blocks by order" &&
        !saw_zone_counter) {
      saw_zone_counter = true;
      EXPECT_EQ(e["args"]["o10"], 14);  // record 4: nr_free[o] = o + 4
      EXPECT_EQ(e["ts"], 4.0);          // 4 us after the first record
    }
    if (e["ph"] == "M" && e["pid"] == 11 && e["name"] == "process_name") {
      saw_zone_name = e["args"]["name"] == "zone node0_Normal";
    }
    if (e["ph"] == "i" && e["name"] == "extfrag steal") {
      saw_steal = true;
      EXPECT_EQ(e["args"]["fallback_migratetype"], "Movable");
      EXPECT_EQ(e["pid"], 1);
      EXPECT_EQ(e["s"], "t");
    }
    if (e["ph"] == "B" && e["pid"] == 2) saw_begin_slice = e["name"] == "phase-0" || saw_begin_slice;
    if (e["ph"] == "C" && e["pid"] == 3 && e["name"] == "compact_stall") saw_vmstat = true;
  }
  EXPECT_TRUE(saw_zone_counter);
  EXPECT_TRUE(saw_zone_name);
  EXPECT_TRUE(saw_steal);
  EXPECT_TRUE(saw_begin_slice);
  EXPECT_TRUE(saw_vmstat);
  EXPECT_EQ(by_ph["B"], 3);  // phase records 3, 19, 35 begin; 11, 27 end
  EXPECT_EQ(by_ph["E"], 2);
  EXPECT_THAT(out.str(), HasSubstr("{\"ts\":-1.500,\"args\":{\"cpu1\":3},\"name\":\"events lost\""));
  EXPECT_THAT(out.str(), HasSubstr("{\"ts\":0.000,"));

  // Deterministic: the same trace exports to the same bytes.
  auto again = Open(path);
  std::ostringstream out2;
  ASSERT_TRUE(ExportChrome(*again, out2).ok());
  EXPECT_EQ(out.str(), out2.str());
}

TEST_F(ExportTest, TruncatedAndUnclosedTracesAreReported) {
  const std::string path = WriteTrace(16, {}, /*close=*/false);
  auto reader = Open(path);
  std::ostringstream out;
  auto sum = ExportJsonl(*reader, out);
  ASSERT_TRUE(sum.ok());
  EXPECT_FALSE(sum->closed);
  EXPECT_FALSE(sum->truncated);
  EXPECT_EQ(sum->records_exported, 16u);

  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 10);
  auto torn = Open(path);
  std::ostringstream out2;
  sum = ExportChrome(*torn, out2);
  ASSERT_TRUE(sum.ok());
  EXPECT_TRUE(sum->truncated);
  EXPECT_EQ(sum->records_exported, 0u);
  EXPECT_THAT(sum->truncation_note, HasSubstr("bytes lost"));
  EXPECT_NO_THROW(json::parse(out2.str()));  // still a complete JSON document
}

TEST_F(ExportTest, CorruptTraceAndWriteFailuresAreErrors) {
  const std::string path = WriteTrace(16);
  std::string bytes = fraglab::testing::ReadFileBytes(path);
  bytes[bytes.size() - 100] ^= 1;  // inside the only data chunk's payload
  fraglab::testing::WriteFileBytes(path, bytes);
  auto reader = Open(path);
  std::ostringstream out;
  auto sum = ExportJsonl(*reader, out);
  ASSERT_FALSE(sum.ok());
  EXPECT_THAT(sum.status().message(), HasSubstr("checksum mismatch"));

  const std::string good = WriteTrace(16);
  auto r2 = Open(good);
  std::ostringstream bad;
  bad.setstate(std::ios::badbit);
  sum = ExportJsonl(*r2, bad);
  ASSERT_FALSE(sum.ok());
  EXPECT_THAT(sum.status().message(), HasSubstr("write failed"));
}

}  // namespace
}  // namespace fraglab::analysis
