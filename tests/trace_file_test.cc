#include "common/trace_file.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "common/trace_crc32c.h"
#include "common/trace_records.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/trace_test_util.h"

namespace fraglab {
namespace {

using ::testing::HasSubstr;
using testing::ReadFileBytes;
using testing::SampleHeader;
using testing::SampleRecords;
using testing::WriteFileBytes;

class TraceFileTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir(); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // Writes `n` sample records; returns the file bytes.
  std::string WriteSample(const std::string& path, int n, TraceWriterOptions opts = {},
                          int flush_every = 0) {
    auto w = TraceWriter::Open(path, SampleHeader(), opts);
    EXPECT_TRUE(w.ok()) << w.status();
    VectorSink records;
    SampleRecords(records, n);
    for (size_t i = 0; i < records.size(); ++i) {
      EXPECT_TRUE((*w)->Emit(records.at(i)).ok());
      if (flush_every > 0 && (i + 1) % flush_every == 0) {
        EXPECT_TRUE((*w)->Flush().ok());
      }
    }
    EXPECT_TRUE((*w)->Close().ok());
    return ReadFileBytes(path);
  }

  struct ReadResult {
    absl::Status status;  // Open or Next error
    uint64_t records = 0;
    bool truncated = false;
    bool closed = false;
    std::string note;
  };
  static ReadResult ReadAll(const std::string& path, VectorSink* out = nullptr) {
    ReadResult res;
    auto r = TraceReader::Open(path);
    if (!r.ok()) {
      res.status = r.status();
      return res;
    }
    while (true) {
      auto rec = (*r)->Next();
      if (!rec.ok()) {
        res.status = rec.status();
        break;
      }
      if (*rec == nullptr) break;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(*rec) % 8, 0u);
      if (out != nullptr) {
        EXPECT_TRUE(out->Emit(**rec).ok());
      }
      ++res.records;
    }
    res.truncated = (*r)->truncated();
    res.closed = (*r)->closed();
    res.note = (*r)->truncation_note();
    return res;
  }

  std::string dir_;
};

TEST(Crc32cTest, KnownVectorsAndIncremental) {
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32c("", 0), 0u);
  // 32 zero bytes: published iSCSI test vector (RFC 3720 B.4).
  const std::string zeros(32, '\0');
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  const std::string ones(32, '\xff');
  EXPECT_EQ(Crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  std::string text = "The quick brown fox jumps over the lazy dog, twice over.";
  for (size_t split = 0; split <= text.size(); ++split) {
    const uint32_t a = Crc32c(text.data(), split);
    EXPECT_EQ(Crc32c(text.data() + split, text.size() - split, a), Crc32c(text.data(), text.size()));
  }
}

TEST_F(TraceFileTest, RoundTripKeepsHeaderAndRecords) {
  for (bool compress : {false, true}) {
    SCOPED_TRACE(compress ? "zstd" : "raw");
    const std::string path = Path(compress ? "z.fltrace" : "r.fltrace");
    TraceWriterOptions opts;
    opts.compress = compress;
    opts.chunk_bytes = 4096;  // several chunks
    WriteSample(path, 500, opts);

    VectorSink expected, got;
    SampleRecords(expected, 500);
    const ReadResult res = ReadAll(path, &got);
    ASSERT_TRUE(res.status.ok()) << res.status;
    EXPECT_TRUE(res.closed);
    EXPECT_FALSE(res.truncated);
    EXPECT_EQ(res.note, "");
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got.at(i).size, expected.at(i).size);
      ASSERT_EQ(std::memcmp(&got.at(i), &expected.at(i), got.at(i).size), 0) << "record " << i;
    }

    auto r = TraceReader::Open(path);
    ASSERT_TRUE(r.ok());
    const TraceHeader& h = (*r)->header();
    const TraceHeader want = SampleHeader();
    EXPECT_EQ(h.schema_major, uint32_t{FL_SCHEMA_VERSION_MAJOR});
    EXPECT_EQ(h.schema_minor, uint32_t{FL_SCHEMA_VERSION_MINOR});
    EXPECT_EQ(h.tool_version, "test");
    EXPECT_TRUE(h.simulated);
    EXPECT_EQ(h.kernel_release, want.kernel_release);
    EXPECT_EQ(h.kernel_era, want.kernel_era);
    EXPECT_EQ(h.nr_cpus, 2u);
    ASSERT_EQ(h.zones.size(), 2u);
    EXPECT_EQ(h.zones[1].name, "Normal");
    EXPECT_EQ(h.zones[1].start_pfn, 1048576u);
    EXPECT_EQ(h.zones[1].managed, 500000u);
    EXPECT_EQ(h.migratetype_names, want.migratetype_names);
    EXPECT_EQ(h.scenario_text, want.scenario_text);
    EXPECT_EQ(h.seed, 42u);
    EXPECT_EQ(h.extra, want.extra);
    while (true) {
      auto rec = (*r)->Next();
      ASSERT_TRUE(rec.ok());
      if (*rec == nullptr) break;
    }
    EXPECT_GT((*r)->chunks_read(), 3u);
    EXPECT_EQ((*r)->records_read(), 500u);
    if (compress) {
      EXPECT_LT((*r)->stored_payload_bytes(), (*r)->raw_payload_bytes());
    } else {
      EXPECT_EQ((*r)->stored_payload_bytes(), (*r)->raw_payload_bytes());
    }
  }
}

TEST_F(TraceFileTest, EmptyTraceIsClosedAndHasNoRecords) {
  auto w = TraceWriter::Open(Path("empty"), SampleHeader());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Flush().ok());  // nothing to seal: no empty chunk
  ASSERT_TRUE((*w)->Close().ok());
  const ReadResult res = ReadAll(Path("empty"));
  EXPECT_TRUE(res.status.ok()) << res.status;
  EXPECT_EQ(res.records, 0u);
  EXPECT_TRUE(res.closed);
}

TEST_F(TraceFileTest, SameInputGivesIdenticalBytes) {
  for (bool compress : {false, true}) {
    TraceWriterOptions opts;
    opts.compress = compress;
    opts.chunk_bytes = 8192;
    const std::string a = WriteSample(Path("a"), 2000, opts);
    const std::string b = WriteSample(Path("b"), 2000, opts);
    EXPECT_EQ(a, b) << (compress ? "zstd" : "raw");
  }
}

TEST_F(TraceFileTest, EmitRejectsMalformedRecords) {
  auto w = TraceWriter::Open(Path("bad"), SampleHeader());
  ASSERT_TRUE(w.ok());
  fl_page_alloc r;
  InitRecord(r, FL_EV_PAGE_ALLOC, 1, 0);
  r.hdr.kind = 999;
  EXPECT_THAT((*w)->Emit(r.hdr).message(), HasSubstr("unknown record kind 999"));
  r.hdr.kind = FL_EV_PAGE_ALLOC;
  r.hdr.size = 36;
  EXPECT_THAT((*w)->Emit(r.hdr).message(), HasSubstr("not a multiple of 8"));
  r.hdr.size = 32;
  EXPECT_THAT((*w)->Emit(r.hdr).message(), HasSubstr("expected 40"));
  fl_pageblock_map m;
  InitRecord(m, FL_EV_PAGEBLOCK_MAP, 1, 0);
  m.count = 3;  // needs 56 bytes, record says 40
  EXPECT_THAT((*w)->Emit(m.hdr).message(), HasSubstr("does not match count 3"));
  r.hdr.size = 40;
  EXPECT_TRUE((*w)->Emit(r.hdr).ok());
  EXPECT_EQ((*w)->records_written(), 1u);
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_FALSE((*w)->Emit(r.hdr).ok());  // closed
}

TEST_F(TraceFileTest, BadOptionsAndPaths) {
  TraceWriterOptions opts;
  opts.chunk_bytes = 100;
  EXPECT_THAT(TraceWriter::Open(Path("x"), SampleHeader(), opts).status().message(),
              HasSubstr("chunk_bytes 100"));
  opts = {};
  opts.zstd_level = 1000;
  EXPECT_THAT(TraceWriter::Open(Path("x"), SampleHeader(), opts).status().message(),
              HasSubstr("zstd level 1000"));
  EXPECT_EQ(TraceWriter::Open(Path("no/such/dir"), SampleHeader()).status().code(),
            absl::StatusCode::kNotFound);
  auto r = TraceReader::Open(Path("missing"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr(Path("missing")));
  EXPECT_THAT(TraceReader::Open(dir_).status().message(), HasSubstr("not a regular file"));
  WriteFileBytes(Path("text"), "hello world, this is not a trace at all");
  EXPECT_THAT(TraceReader::Open(Path("text")).status().message(),
              HasSubstr("not a fraglab trace (bad magic at offset 0)"));
  WriteFileBytes(Path("zero"), "");
  EXPECT_THAT(TraceReader::Open(Path("zero")).status().message(), HasSubstr("not a fraglab trace"));
}

// Byte offsets of the file layout (docs/trace-format.md), for the tests
// that damage files on purpose.
constexpr size_t kFixed = 24;
constexpr size_t kChunkHeader = 48;

uint32_t LoadU32(const std::string& b, size_t off) {
  uint32_t v;
  std::memcpy(&v, b.data() + off, 4);
  return v;
}

// Offsets at which each chunk (including the end marker) starts.
std::vector<size_t> ChunkOffsets(const std::string& b) {
  std::vector<size_t> out;
  size_t off = kFixed + LoadU32(b, 12);
  while (off < b.size()) {
    out.push_back(off);
    off += kChunkHeader + LoadU32(b, off + 8);
  }
  EXPECT_EQ(off, b.size());
  return out;
}

// A file with header JSON `json` and, after it, the chunk bytes of `tail`.
std::string CraftFile(const std::string& json, uint16_t major = kTraceFormatMajor,
                      const std::string& tail = "") {
  std::string b(kFixed, '\0');
  std::memcpy(b.data(), "FLTRACE\0", 8);
  const uint16_t minor = 0;
  const uint32_t len = static_cast<uint32_t>(json.size());
  const uint32_t crc = Crc32c(json.data(), json.size());
  std::memcpy(b.data() + 8, &major, 2);
  std::memcpy(b.data() + 10, &minor, 2);
  std::memcpy(b.data() + 12, &len, 4);
  std::memcpy(b.data() + 16, &crc, 4);
  const uint32_t fixed_crc = Crc32c(b.data(), 20);
  std::memcpy(b.data() + 20, &fixed_crc, 4);
  return b + json + tail;
}

// One uncompressed chunk holding `payload` with `count` records.
std::string CraftChunk(const std::string& payload, uint32_t count, uint64_t first_ts,
                       uint64_t last_ts, uint32_t flags = 0) {
  std::string c(kChunkHeader, '\0');
  const uint32_t magic = 0x4b434c46, len = static_cast<uint32_t>(payload.size());
  const uint32_t pcrc = Crc32c(payload.data(), payload.size());
  std::memcpy(c.data(), &magic, 4);
  std::memcpy(c.data() + 4, &flags, 4);
  std::memcpy(c.data() + 8, &len, 4);
  std::memcpy(c.data() + 12, &len, 4);
  std::memcpy(c.data() + 16, &count, 4);
  std::memcpy(c.data() + 24, &first_ts, 8);
  std::memcpy(c.data() + 32, &last_ts, 8);
  std::memcpy(c.data() + 40, &pcrc, 4);
  const uint32_t hcrc = Crc32c(c.data(), 44);
  std::memcpy(c.data() + 44, &hcrc, 4);
  return c + payload;
}

TEST_F(TraceFileTest, NewerFormatOrSchemaVersionIsAClearError) {
  WriteFileBytes(Path("v3"), CraftFile(R"({"schema_major":1})", 3));
  EXPECT_THAT(TraceReader::Open(Path("v3")).status().message(),
              HasSubstr(": format version 3 is newer than this fraglab (1); upgrade"));
  WriteFileBytes(Path("s9"), CraftFile(R"({"schema_major":9})"));
  auto r = TraceReader::Open(Path("s9"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(),
              HasSubstr("trace " + Path("s9") + ": event schema version 9 is newer"));
  WriteFileBytes(Path("s0"), CraftFile(R"({"schema_major":0})"));
  EXPECT_THAT(TraceReader::Open(Path("s0")).status().message(), HasSubstr("is older"));
}

TEST_F(TraceFileTest, HeaderJsonIsForwardCompatibleAndTypeChecked) {
  // Unknown keys (a newer writer's) are ignored; absent keys keep defaults.
  WriteFileBytes(Path("fwd"), CraftFile(R"({"schema_major":1,"future_key":{"x":[1,2]},
      "page_size":16384,"zones":[{"name":"Normal","zone_idx":2,"new_zone_field":1}]})"));
  auto r = TraceReader::Open(Path("fwd"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->header().page_size, 16384u);
  EXPECT_EQ((*r)->header().pageblock_order, 9u);
  ASSERT_EQ((*r)->header().zones.size(), 1u);
  EXPECT_EQ((*r)->header().zones[0].zone_idx, 2);
  auto rec = (*r)->Next();
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(*rec, nullptr);
  EXPECT_FALSE((*r)->closed());

  WriteFileBytes(Path("type"), CraftFile(R"({"schema_major":1,"page_size":"big"})"));
  EXPECT_THAT(TraceReader::Open(Path("type")).status().message(),
              HasSubstr("header at offset 24: field 'page_size' is not an unsigned integer"));
  WriteFileBytes(Path("ztype"), CraftFile(R"({"schema_major":1,"zones":[{"spanned":-4}]})"));
  EXPECT_THAT(TraceReader::Open(Path("ztype")).status().message(),
              HasSubstr("field 'zones[0].spanned'"));
  WriteFileBytes(Path("nojson"), CraftFile("{not json"));
  EXPECT_THAT(TraceReader::Open(Path("nojson")).status().message(),
              HasSubstr("header JSON does not parse"));
  WriteFileBytes(Path("noschema"), CraftFile("{}"));
  EXPECT_THAT(TraceReader::Open(Path("noschema")).status().message(),
              HasSubstr("no 'schema_major'"));
}

TEST_F(TraceFileTest, UnknownKindsOnlyFromANewerSchemaMinor) {
  std::string rec(24, '\0');
  const uint16_t kind = 200;
  const uint32_t size = 24;
  const uint64_t ts = 7;
  std::memcpy(rec.data(), &kind, 2);
  std::memcpy(rec.data() + 4, &size, 4);
  std::memcpy(rec.data() + 8, &ts, 8);
  const std::string chunk = CraftChunk(rec, 1, 7, 7);
  WriteFileBytes(Path("newer"),
                 CraftFile(absl::StrCat(R"({"schema_major":1,"schema_minor":)",
                                        FL_SCHEMA_VERSION_MINOR + 1, "}"),
                           kTraceFormatMajor, chunk));
  ReadResult res = ReadAll(Path("newer"));
  EXPECT_TRUE(res.status.ok()) << res.status;
  EXPECT_EQ(res.records, 1u);

  WriteFileBytes(Path("same"), CraftFile(R"({"schema_major":1})", kTraceFormatMajor, chunk));
  res = ReadAll(Path("same"));
  EXPECT_THAT(std::string(res.status.message()),
              HasSubstr("corrupt at offset 42: record 0 at payload byte 0: unknown record kind 200"));
}

TEST_F(TraceFileTest, ChunkConsistencyChecks) {
  fl_drops d;
  InitRecord(d, FL_EV_DROPS, 5, 0);
  const std::string rec(reinterpret_cast<const char*>(&d), sizeof(d));
  const std::string json = R"({"schema_major":1})";
  const size_t chunk_off = kFixed + json.size();
  struct Case {
    std::string tail;
    std::string message;
  } cases[] = {
      {CraftChunk(rec, 2, 5, 5), "chunk of 24 bytes cannot hold 2 records"},
      {CraftChunk(rec + rec, 1, 5, 5), "chunk holds 2 records, header says 1"},
      {CraftChunk(rec, 1, 5, 6), "timestamps do not match"},
      {CraftChunk(rec, 1, 5, 5, 0x80), "unknown chunk flags 0x80"},
      {CraftChunk(rec.substr(0, 16), 1, 5, 5), "runs past the 16 bytes available"},
      {CraftChunk(rec, 1, 5, 5, 0x1), "zstd"},
      {CraftChunk("", 0, 0, 0, 0x2) + CraftChunk(rec, 1, 5, 5), "data after the end marker"},
  };
  for (const Case& c : cases) {
    WriteFileBytes(Path("c"), CraftFile(json, kTraceFormatMajor, c.tail));
    const ReadResult res = ReadAll(Path("c"));
    EXPECT_EQ(res.status.code(), absl::StatusCode::kDataLoss) << c.message;
    EXPECT_THAT(res.status.message(), HasSubstr(c.message));
    EXPECT_THAT(res.status.message(), HasSubstr("trace " + Path("c") + ": corrupt at offset "));
  }
  (void)chunk_off;
}

TEST_F(TraceFileTest, TruncationAtEveryOffsetNeverCrashes) {
  for (bool compress : {false, true}) {
    SCOPED_TRACE(compress ? "zstd" : "raw");
    TraceWriterOptions opts;
    opts.compress = compress;
    const std::string full = WriteSample(Path("full"), 40, opts, /*flush_every=*/10);
    const std::vector<size_t> chunks = ChunkOffsets(full);
    ASSERT_EQ(chunks.size(), 5u);  // 4 data chunks + end marker
    const size_t header_end = chunks[0];
    for (size_t len = 0; len <= full.size(); ++len) {
      WriteFileBytes(Path("cut"), full.substr(0, len));
      const ReadResult res = ReadAll(Path("cut"));
      if (len < header_end) {
        ASSERT_FALSE(res.status.ok()) << len;
        ASSERT_THAT(res.status.message(), HasSubstr(Path("cut"))) << len;
        continue;
      }
      ASSERT_TRUE(res.status.ok()) << len << ": " << res.status;
      // Complete chunks before `len` are read, 10 records each.
      size_t complete = 0;
      for (size_t k = 0; k + 1 < chunks.size(); ++k) {
        if (chunks[k + 1] <= len) ++complete;
      }
      ASSERT_EQ(res.records, complete * 10) << len;
      const bool on_boundary =
          len == full.size() || std::find(chunks.begin(), chunks.end(), len) != chunks.end();
      ASSERT_EQ(res.truncated, !on_boundary) << len;
      ASSERT_EQ(res.closed, len == full.size()) << len;
      if (res.truncated) {
        size_t start = 0;
        for (size_t c : chunks) {
          if (c < len) start = c;
        }
        ASSERT_EQ(res.note, absl::StrCat("file ends inside chunk at offset ", start, " (",
                                         len - start, " bytes lost)"));
      }
    }
  }
}

TEST_F(TraceFileTest, EveryFlippedByteIsDetected) {
  for (bool compress : {false, true}) {
    SCOPED_TRACE(compress ? "zstd" : "raw");
    TraceWriterOptions opts;
    opts.compress = compress;
    const std::string full = WriteSample(Path("full"), 24, opts, /*flush_every=*/8);
    for (size_t off = 0; off < full.size(); ++off) {
      std::string bad = full;
      bad[off] ^= 0x20;
      WriteFileBytes(Path("flip"), bad);
      const ReadResult res = ReadAll(Path("flip"));
      ASSERT_FALSE(res.status.ok()) << "flip at " << off << " went unnoticed";
      ASSERT_THAT(res.status.message(), HasSubstr("trace " + Path("flip") + ": ")) << off;
      if (off >= 24 && off >= kFixed + LoadU32(full, 12)) {
        ASSERT_THAT(res.status.message(), HasSubstr("corrupt at offset ")) << off;
      }
    }
  }
}

TEST_F(TraceFileTest, CorruptionMessagesNameTheDamage) {
  const std::string full = WriteSample(Path("full"), 16, {}, 8);
  const std::vector<size_t> chunks = ChunkOffsets(full);
  auto flip = [&](size_t off) {
    std::string bad = full;
    bad[off] ^= 1;
    WriteFileBytes(Path("bad"), bad);
    return ReadAll(Path("bad")).status;
  };
  EXPECT_THAT(flip(10).message(), HasSubstr("corrupt at offset 8: file header checksum mismatch"));
  EXPECT_THAT(flip(30).message(), HasSubstr("corrupt at offset 24: header JSON checksum mismatch"));
  EXPECT_THAT(flip(chunks[1]).message(),
              HasSubstr(absl::StrCat("corrupt at offset ", chunks[1], ": bad chunk magic")));
  EXPECT_THAT(flip(chunks[1] + 9).message(),
              HasSubstr(absl::StrCat("offset ", chunks[1], ": chunk header checksum mismatch")));
  EXPECT_THAT(flip(chunks[1] + 60).message(),
              HasSubstr(absl::StrCat("offset ", chunks[1], ": chunk payload checksum mismatch")));
  // Records of the chunk before the damage were read.
  VectorSink got;
  std::string bad = full;
  bad[chunks[1] + 60] ^= 1;
  WriteFileBytes(Path("bad"), bad);
  EXPECT_FALSE(ReadAll(Path("bad"), &got).status.ok());
  EXPECT_EQ(got.size(), 8u);
}

TEST_F(TraceFileTest, ErrorIsSticky) {
  const std::string full = WriteSample(Path("full"), 16, {}, 8);
  std::string bad = full;
  bad[ChunkOffsets(full)[0] + 60] ^= 1;
  WriteFileBytes(Path("bad"), bad);
  auto r = TraceReader::Open(Path("bad"));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE((*r)->Next().ok());
  EXPECT_FALSE((*r)->Next().ok());
}

TEST_F(TraceFileTest, KilledWriterLeavesReadablePrefix) {
  const std::string path = Path("killed");
  constexpr int kPerFlush = 100;
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    TraceWriterOptions opts;
    opts.chunk_bytes = 1 << 20;  // only Flush() seals: 100 records are 4000 bytes
    auto w = TraceWriter::Open(path, SampleHeader(), opts);
    if (!w.ok()) _exit(2);
    for (uint64_t i = 0; i < 100'000'000; ++i) {
      fl_page_alloc r;
      InitRecord(r, FL_EV_PAGE_ALLOC, i, 0);
      r.pfn = i;
      if (!(*w)->Emit(r.hdr).ok()) _exit(3);
      if ((i + 1) % kPerFlush == 0 && !(*w)->Flush().ok()) _exit(4);
    }
    _exit(5);  // not reached in practice: the parent kills us first
  }
  // Let it write a few thousand records, then kill it mid-stream.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  struct stat st;
  while (std::chrono::steady_clock::now() < deadline) {
    if (stat(path.c_str(), &st) == 0 && st.st_size > 400'000) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited with " << WEXITSTATUS(wstatus);

  VectorSink got;
  const ReadResult res = ReadAll(path, &got);
  ASSERT_TRUE(res.status.ok()) << res.status;
  EXPECT_FALSE(res.closed);
  EXPECT_GE(res.records, 1000u);
  EXPECT_EQ(res.records % kPerFlush, 0u);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got.at(i).ts_ns, i);
  }
  if (res.truncated) {
    EXPECT_THAT(res.note, HasSubstr("file ends inside chunk at offset"));
  }

  // Cut the file in the middle of its last chunk as a kill inside write(2) would.
  const std::string bytes = ReadFileBytes(path);
  WriteFileBytes(path, bytes.substr(0, bytes.size() - 100));
  const ReadResult torn = ReadAll(path);
  ASSERT_TRUE(torn.status.ok()) << torn.status;
  EXPECT_TRUE(torn.truncated);
  EXPECT_EQ(torn.records, res.records - kPerFlush);
  EXPECT_THAT(torn.note, HasSubstr("bytes lost)"));
}

TEST_F(TraceFileTest, OpenAppendCreatesWhenMissing) {
  const std::string path = Path("new");
  std::string note = "stale";
  auto w = TraceWriter::OpenAppend(path, SampleHeader(), {}, &note);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(note, "");
  SampleRecords(**w, 10);
  ASSERT_TRUE((*w)->Close().ok());
  const ReadResult res = ReadAll(path);
  EXPECT_EQ(res.records, 10u);
  EXPECT_TRUE(res.closed);

  WriteFileBytes(Path("zero"), "");  // an empty file counts as missing
  auto z = TraceWriter::OpenAppend(Path("zero"), SampleHeader());
  ASSERT_TRUE(z.ok()) << z.status();
  ASSERT_TRUE((*z)->Close().ok());
  EXPECT_TRUE(ReadAll(Path("zero")).closed);
}

TEST_F(TraceFileTest, OpenAppendContinuesAClosedTraceAndKeepsItsHeader) {
  const std::string path = Path("app");
  WriteSample(path, 20);
  TraceHeader other = SampleHeader();
  other.scenario_name = "other";
  std::string note;
  auto w = TraceWriter::OpenAppend(path, other, {}, &note);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(note, "");
  EXPECT_EQ((*w)->header().scenario_name, "unit");
  SampleRecords(**w, 30);
  ASSERT_TRUE((*w)->Close().ok());

  VectorSink got, want;
  SampleRecords(want, 20);
  SampleRecords(want, 30);
  const ReadResult res = ReadAll(path, &got);
  ASSERT_TRUE(res.status.ok()) << res.status;
  EXPECT_TRUE(res.closed);
  ASSERT_EQ(got.size(), 50u);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(std::memcmp(&got.at(i), &want.at(i), got.at(i).size), 0) << i;
  }
  auto r = TraceReader::Open(path);
  EXPECT_EQ((*r)->header().scenario_name, "unit");
}

TEST_F(TraceFileTest, OpenAppendCutsATornTail) {
  const std::string path = Path("torn");
  const std::string full = WriteSample(path, 30, {}, 10);
  const std::vector<size_t> chunks = ChunkOffsets(full);
  // Keep two whole chunks and 20 bytes of the third.
  WriteFileBytes(path, full.substr(0, chunks[2] + 20));
  std::string note;
  auto w = TraceWriter::OpenAppend(path, SampleHeader(), {}, &note);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(note, absl::StrCat("file ends inside chunk at offset ", chunks[2],
                               " (20 bytes lost); cut off before appending"));
  SampleRecords(**w, 5);
  ASSERT_TRUE((*w)->Close().ok());
  const ReadResult res = ReadAll(path);
  ASSERT_TRUE(res.status.ok()) << res.status;
  EXPECT_EQ(res.records, 25u);
  EXPECT_TRUE(res.closed);
  EXPECT_FALSE(res.truncated);
}

TEST_F(TraceFileTest, OpenAppendRefusesACorruptTrace) {
  const std::string path = Path("corrupt");
  std::string full = WriteSample(path, 30, {}, 10);
  full[ChunkOffsets(full)[1] + 70] ^= 4;
  WriteFileBytes(path, full);
  auto w = TraceWriter::OpenAppend(path, SampleHeader());
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(w.status().message(), HasSubstr("cannot append: trace " + path));
  EXPECT_EQ(ReadFileBytes(path), full);  // untouched
}

TEST(TraceRecordsTest, KindTableAndJson) {
  EXPECT_STREQ(RecordKindName(FL_EV_PAGE_ALLOC), "page_alloc");
  EXPECT_STREQ(RecordKindName(FL_EV_EXTFRAG), "extfrag");
  EXPECT_EQ(RecordKindName(0), nullptr);
  EXPECT_EQ(RecordKindName(FL_EV_KIND_MAX), nullptr);
  EXPECT_EQ(RecordKindFromName("snapshot_zone"), FL_EV_SNAPSHOT_ZONE);
  EXPECT_EQ(RecordKindFromName("nope"), FL_EV_INVALID);
  for (uint16_t k = 1; k < FL_EV_KIND_MAX; ++k) {
    if (RecordKindName(k) != nullptr) {
      EXPECT_EQ(RecordKindFromName(RecordKindName(k)), k);
    }
  }
  EXPECT_STREQ(ExtfragClassName(FL_EXTFRAG_POLLUTE), "pollute");
  EXPECT_STREQ(CounterName(FL_CTR_COMPACT_STALL), "compact_stall");
  EXPECT_EQ(CounterName(FL_CTR_MAX - 1), nullptr);

  const TraceHeader h = SampleHeader();
  fl_extfrag e;
  InitRecord(e, FL_EV_EXTFRAG, 5, 1);
  e.alloc_migratetype = 0;
  e.fallback_migratetype = 1;
  e.extfrag_class = FL_EXTFRAG_CLAIM;
  const nlohmann::json j = RecordToJson(e.hdr, h);
  EXPECT_EQ(j["kind"], "extfrag");
  EXPECT_EQ(j["alloc_migratetype"], "Unmovable");
  EXPECT_EQ(j["fallback_migratetype"], "Movable");
  EXPECT_EQ(j["class"], "claim");
  EXPECT_EQ(j["cpu"], 1);
  EXPECT_EQ(MigratetypeName(h, 4), "Isolate");
  EXPECT_EQ(MigratetypeName(h, 6), "mt6");
  EXPECT_EQ(MigratetypeName(h, FL_MT_UNKNOWN), "unknown");
  EXPECT_EQ(ZoneLabelByIndex(h, 0, 2), "node0_Normal");
  EXPECT_EQ(ZoneLabelByIndex(h, 1, 2), "node1_zone2");

  // Same key set for every record of a kind (CSV columns depend on it).
  VectorSink recs;
  SampleRecords(recs, 64);
  std::map<uint16_t, std::vector<std::string>> keys;
  for (size_t i = 0; i < recs.size(); ++i) {
    const nlohmann::json rj = RecordToJson(recs.at(i), h);
    std::vector<std::string> k;
    for (auto it = rj.begin(); it != rj.end(); ++it) k.push_back(it.key());
    auto [pos, inserted] = keys.emplace(recs.at(i).kind, k);
    if (!inserted) {
      EXPECT_EQ(pos->second, k) << RecordKindName(recs.at(i).kind);
    }
  }
}

}  // namespace
}  // namespace fraglab

namespace fraglab {
namespace {

// The fuzzer's seed corpus (fuzz/corpus/trace_reader/) is produced by this
// test when FRAGLAB_REGEN_CORPUS=1; otherwise the test checks that the
// committed seeds still read as intended (so a format change that forgets
// to regenerate them fails here).
TEST(TraceSeedCorpusTest, SeedsReadAsIntended) {
  const std::string dir = std::string(FRAGLAB_SOURCE_DIR) + "/fuzz/corpus/trace_reader";
  struct Seed {
    const char* name;
    bool compress;
    int records;
    int flush_every;
    int cut;  // bytes removed from the end (a torn tail)
  } seeds[] = {
      {"raw_closed.fltrace", false, 24, 8, 0},
      {"zstd_closed.fltrace", true, 40, 16, 0},
      {"raw_torn.fltrace", false, 16, 8, 30},
      {"zstd_unclosed.fltrace", true, 16, 8, 48},  // end marker cut off exactly
      {"empty_closed.fltrace", false, 0, 0, 0},
  };
  const bool regen = std::getenv("FRAGLAB_REGEN_CORPUS") != nullptr;
  for (const Seed& s : seeds) {
    SCOPED_TRACE(s.name);
    const std::string path = dir + "/" + s.name;
    if (regen) {
      TraceWriterOptions opts;
      opts.compress = s.compress;
      TraceHeader h = testing::SampleHeader();
      h.scenario_text.clear();  // keep seeds small
      auto w = TraceWriter::Open(path, h, opts);
      ASSERT_TRUE(w.ok()) << w.status();
      VectorSink recs;
      testing::SampleRecords(recs, s.records);
      for (size_t i = 0; i < recs.size(); ++i) {
        ASSERT_TRUE((*w)->Emit(recs.at(i)).ok());
        if (s.flush_every && (i + 1) % s.flush_every == 0) {
          ASSERT_TRUE((*w)->Flush().ok());
        }
      }
      ASSERT_TRUE((*w)->Close().ok());
      const std::string bytes = testing::ReadFileBytes(path);
      testing::WriteFileBytes(path, bytes.substr(0, bytes.size() - s.cut));
    }
    auto r = TraceReader::Open(path);
    ASSERT_TRUE(r.ok()) << r.status();
    uint64_t n = 0;
    while (true) {
      auto rec = (*r)->Next();
      ASSERT_TRUE(rec.ok()) << rec.status();
      if (*rec == nullptr) break;
      ++n;
    }
    EXPECT_EQ((*r)->truncated(), s.cut != 0 && s.cut != 48);
    EXPECT_EQ((*r)->closed(), s.cut == 0);
    EXPECT_LE(testing::ReadFileBytes(path).size(), 8192u);
    if (s.cut == 0) {
      EXPECT_EQ(n, static_cast<uint64_t>(s.records));
    }
  }
}

}  // namespace
}  // namespace fraglab
