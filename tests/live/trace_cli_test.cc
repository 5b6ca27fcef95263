// End-to-end checks of `fraglab info` and `fraglab export` on the committed
// seed traces (fuzz/corpus/trace_reader): exit codes, output, and that a
// failed export leaves no output file. Needs only the built binary.

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/live/live_test_util.h"

namespace {

using ::testing::HasSubstr;
using Result = fraglab::testing::CommandResult;
using fraglab::testing::RunFraglab;

std::string Seed(const char* name) {
  return std::string(FRAGLAB_SOURCE_DIR) + "/fuzz/corpus/trace_reader/" + name;
}

class TraceCliTest : public fraglab::testing::TempDirTest {
 protected:
  TraceCliTest() : TempDirTest("fraglab-trace-cli") {}
};

TEST_F(TraceCliTest, InfoDescribesCompleteTruncatedAndUnclosedTraces) {
  Result r = RunFraglab("info " + Seed("zstd_closed.fltrace"));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("migratetypes:    0=Unmovable 1=Movable"));
  EXPECT_THAT(r.out, HasSubstr("node0 Normal"));
  EXPECT_THAT(r.out, HasSubstr("records:         40 in 3 chunks"));
  EXPECT_THAT(r.out, HasSubstr("status:          complete"));

  r = RunFraglab("info " + Seed("raw_torn.fltrace"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("truncated: file ends inside chunk at offset"));

  r = RunFraglab("info --json " + Seed("zstd_unclosed.fltrace"));
  EXPECT_EQ(r.exit_code, 0);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["closed"], false);
  EXPECT_EQ(j["records"], 16);
  EXPECT_EQ(j["records_per_kind"]["extfrag"], 2);
  EXPECT_EQ(j["header"]["seed"], 42);

  r = RunFraglab("info " + dir_ + "/missing");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("fraglab info: trace " + dir_ + "/missing: open"));
}

TEST_F(TraceCliTest, ExportFormatsAndAtomicOutput) {
  const std::string out = dir_ + "/t.json";
  Result r = RunFraglab("export " + Seed("zstd_closed.fltrace") + " --format chrome -o " + out);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::ifstream in(out);
  const nlohmann::json doc = nlohmann::json::parse(in);
  EXPECT_GT(doc["traceEvents"].size(), 40u);

  r = RunFraglab("export " + Seed("raw_closed.fltrace") + " --format jsonl --kinds extfrag");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("\"class\":\"steal\""));

  r = RunFraglab("export " + Seed("raw_closed.fltrace") + " --format csv");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("give -o DIR"));

  r = RunFraglab("export " + Seed("raw_closed.fltrace") + " --format csv -o " + dir_ + "/csv");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/csv/snapshot_zone.csv"));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/csv/pageblock_map.csv"));

  r = RunFraglab("export " + Seed("raw_torn.fltrace") + " --format jsonl -o " + dir_ + "/torn.jsonl");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("warning:"));

  // A corrupt trace: the export fails and leaves neither OUT nor its temp file.
  std::ifstream src(Seed("zstd_closed.fltrace"), std::ios::binary);
  std::stringstream ss;
  ss << src.rdbuf();
  std::string bytes = ss.str();
  bytes[bytes.size() - 100] ^= 1;
  std::ofstream(dir_ + "/bad.fltrace", std::ios::binary) << bytes;
  r = RunFraglab("export " + dir_ + "/bad.fltrace --format chrome -o " + dir_ + "/bad.json");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("checksum mismatch"));
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    EXPECT_THAT(e.path().filename().string(), ::testing::Not(HasSubstr("bad.json")));
    ++entries;
  }
  EXPECT_GT(entries, 0);

  r = RunFraglab("export " + Seed("raw_closed.fltrace") + " --format xml");
  EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
