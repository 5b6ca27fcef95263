// Live tests of the eBPF tracker on the running kernel: load and attach,
// UNMOVABLE->MOVABLE fallbacks from a fragmenting workload, aggregates equal
// to the full events, drops counted with a tiny ring, and `fraglab trace`
// writing a file that reads back and exports. Each test skips with the
// precise reason when this machine cannot run it (not root, no BTF, no
// tracefs, built without BPF, not enough free memory).
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "bpf/trace_summary.h"
#include "bpf/tracker.h"
#include "common/snapshot_machine.h"
#include "common/trace_file.h"
#include "common/trace_records.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fraglab::tracker {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

// Why this machine cannot run the live tracker tests, or "".
std::string SkipReason() {
  if (!BuiltWithBpf()) return "fraglab was built with FRAGLAB_BPF=OFF";
  if (geteuid() != 0) return "needs root to load BPF programs";
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) return "no kernel BTF (/sys/kernel/btf/vmlinux)";
  absl::StatusOr<std::string> tracefs = FindTracefs();
  if (!tracefs.ok()) return std::string(tracefs.status().message());
  return "";
}

#define SKIP_UNLESS_LIVE()                              \
  do {                                                  \
    std::string reason = SkipReason();                  \
    if (!reason.empty()) GTEST_SKIP() << reason;        \
  } while (0)

uint64_t MemAvailableBytes() {
  FILE* f = std::fopen("/proc/meminfo", "r");
  if (f == nullptr) return 0;
  char line[256];
  uint64_t kb = 0;
  while (std::fgets(line, sizeof(line), f)) {
    if (std::sscanf(line, "MemAvailable: %lu kB", &kb) == 1) break;
  }
  std::fclose(f);
  return kb * 1024;
}

int TypeNumber(const TraceHeader& h, const std::string& name) {
  for (size_t i = 0; i < h.migratetype_names.size(); ++i) {
    if (h.migratetype_names[i] == name) return static_cast<int>(i);
  }
  return -1;
}

// Position of pfn's zone in the header, or -1.
int ZoneOf(const TraceHeader& h, uint64_t pfn) {
  for (size_t i = 0; i < h.zones.size(); ++i) {
    if (pfn >= h.zones[i].start_pfn && pfn < h.zones[i].start_pfn + h.zones[i].spanned) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

// Maps, touches and unmaps `bytes` of anonymous memory `rounds` times: a
// page-fault-heavy load of order-0 movable allocations and frees.
void FaultLoop(size_t bytes, int rounds) {
  for (int r = 0; r < rounds; ++r) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    madvise(p, bytes, MADV_NOHUGEPAGE);
    for (size_t off = 0; off < bytes; off += 4096) static_cast<char*>(p)[off] = 1;
    munmap(p, bytes);
  }
}

// Runs `work` in a child process while polling the tracker; returns the
// child's exit status. Memory the child takes is released when it exits.
int RunChildWhileTracing(Tracker& tracker, const std::function<int()>& work) {
  pid_t pid = fork();
  if (pid == 0) _exit(work());
  EXPECT_GT(pid, 0);
  int status = 0;
  while (true) {
    absl::Status st = tracker.Poll(50);
    EXPECT_TRUE(st.ok()) << st;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
  }
  return status;
}

// The fragmenting workload (child side): fill `anon_bytes` of anonymous
// memory with base pages, release every other page (scattered holes in
// movable pageblocks), then create unmovable kernel memory as pipe buffers
// (1 MiB per pipe) worth `unmovable_bytes`. Exits 0 on success.
int FragmentThenAllocateUnmovable(size_t anon_bytes, size_t unmovable_bytes) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  size_t pipes = unmovable_bytes / kMiB;
  if (rl.rlim_max < 2 * pipes + 64) return 10;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return 11;
  char* p = static_cast<char*>(
      mmap(nullptr, anon_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (p == MAP_FAILED) return 12;
  madvise(p, anon_bytes, MADV_NOHUGEPAGE);
  std::memset(p, 1, anon_bytes);
  for (size_t off = 0; off < anon_bytes; off += 8192) madvise(p + off, 4096, MADV_DONTNEED);
  static char buf[65536];
  std::memset(buf, 2, sizeof(buf));
  for (size_t i = 0; i < pipes; ++i) {
    int fds[2];
    if (pipe(fds) != 0) return 13;
    if (fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(kMiB)) < 0) return 14;
    for (size_t done = 0; done < kMiB; done += sizeof(buf)) {
      if (write(fds[1], buf, sizeof(buf)) != static_cast<ssize_t>(sizeof(buf))) return 15;
    }
  }
  return 0;
}

TrackerOptions OptionsFor(const TraceHeader& h) {
  TrackerOptions o;
  o.zones = h.zones;
  o.pageblock_order = h.pageblock_order;
  o.interval_ns = 200'000'000;
  return o;
}

TEST(TrackerLiveTest, LoadsAndAttachesEveryProgram) {
  SKIP_UNLESS_LIVE();
  absl::StatusOr<TraceHeader> header = snapshot::TraceHeaderForThisMachine();
  ASSERT_TRUE(header.ok()) << header.status();
  VectorSink sink;
  absl::StatusOr<std::unique_ptr<Tracker>> tr = Tracker::Start(OptionsFor(*header), &sink);
  ASSERT_TRUE(tr.ok()) << tr.status();
  std::string tracefs = *FindTracefs();
  int attached = 0;
  for (const TracepointState& tp : (*tr)->tracepoints()) {
    bool present = access((tracefs + "/events/" + tp.category + "/" + tp.name).c_str(), F_OK) == 0;
    // Everything the kernel has is attached; only absent tracepoints are
    // skipped, and they say so.
    EXPECT_EQ(tp.attached, present) << tp.category << ":" << tp.name << " " << tp.note;
    if (!tp.attached) {
      EXPECT_THAT(tp.note, testing::HasSubstr("not in this kernel"));
    }
    if (tp.required) {
      EXPECT_TRUE(tp.attached) << tp.name;
    }
    attached += tp.attached;
  }
  EXPECT_GE(attached, 28);  // 30 programs, 2 of them for out-of-tree tracepoints
  EXPECT_EQ((*tr)->Notes().size(), (*tr)->tracepoints().size() - static_cast<size_t>(attached));
  ASSERT_TRUE((*tr)->Stop().ok());
  // The starting snapshot and the final periodic set are there.
  std::map<uint16_t, int> kinds;
  for (size_t i = 0; i < sink.size(); ++i) kinds[sink.at(i).kind]++;
  EXPECT_GE(kinds[FL_EV_SNAPSHOT_ZONE], 2 * static_cast<int>(header->zones.size()));
  EXPECT_GE(kinds[FL_EV_COUNTERS], 2);
  EXPECT_EQ(kinds[FL_EV_AGGREGATE], 1);
  EXPECT_EQ(kinds[FL_EV_DROPS], static_cast<int>((*tr)->stats().lost_per_cpu.size()));
}

TEST(TrackerLiveTest, RecordsUnmovableFallingBackToMovable) {
  SKIP_UNLESS_LIVE();
  absl::StatusOr<snapshot::MachineSnapshot> snap = snapshot::ReadMachineSnapshot("/");
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_TRUE(snap->HasTypes()) << snap->pagetypeinfo_error;
  TraceHeader header = snapshot::TraceHeaderFromSnapshot(*snap);
  const int unmovable = TypeNumber(header, "Unmovable");
  const int movable = TypeNumber(header, "Movable");
  const int reclaimable = TypeNumber(header, "Reclaimable");
  ASSERT_GE(unmovable, 0);
  ASSERT_GE(movable, 0);

  // An unmovable request falls back once the UNMOVABLE lists and then the
  // RECLAIMABLE lists (its first fallback) are empty, so the pipe buffers
  // must outgrow all free pages on those lists plus what the per-CPU lists
  // hold. On this kind of machine that is tens of MiB; a fixed 2 GiB of
  // anonymous memory would not get there by itself.
  uint64_t free_pages = 0;
  for (const auto& z : snap->zones) {
    for (int t : {unmovable, reclaimable}) {
      if (t < 0 || static_cast<size_t>(t) >= z.free_by_type.size()) continue;
      for (size_t o = 0; o < z.free_by_type[static_cast<size_t>(t)].size(); ++o) {
        free_pages += z.free_by_type[static_cast<size_t>(t)][o] << o;
      }
    }
    free_pages += z.pcp_pages;
  }
  const uint64_t unmovable_bytes = (free_pages * 4096 / kMiB + 128) * kMiB;
  const uint64_t anon_bytes = 512 * kMiB;
  if (unmovable_bytes > 1536 * kMiB) {
    GTEST_SKIP() << "free unmovable/reclaimable list space is " << free_pages * 4096 / kMiB
                 << " MiB; exhausting it would exceed the 2 GiB test budget";
  }
  if (MemAvailableBytes() < anon_bytes + unmovable_bytes + 2048 * kMiB) {
    GTEST_SKIP() << "not enough MemAvailable for " << (anon_bytes + unmovable_bytes) / kMiB
                 << " MiB plus a 2 GiB margin";
  }

  VectorSink sink;
  absl::StatusOr<std::unique_ptr<Tracker>> tr = Tracker::Start(OptionsFor(header), &sink);
  ASSERT_TRUE(tr.ok()) << tr.status();
  const uint64_t t0 = sink.at(0).ts_ns;
  int status = RunChildWhileTracing(**tr, [&] {
    return FragmentThenAllocateUnmovable(anon_bytes, unmovable_bytes);
  });
  ASSERT_TRUE((*tr)->Stop().ok());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "workload status " << status;

  const uint64_t nr_cpus = static_cast<uint64_t>(sysconf(_SC_NPROCESSORS_CONF));
  int matching = 0;
  uint64_t last_ts = 0;
  for (size_t i = 0; i < sink.size(); ++i) {
    const fl_record_header& h = sink.at(i);
    last_ts = std::max<uint64_t>(last_ts, h.ts_ns);
    if (h.kind != FL_EV_EXTFRAG) continue;
    auto e = sink.as<fl_extfrag>(i);
    // Consistent fields: sizes, time, CPU, orders, derived flags and the pfn
    // inside a zone of this machine.
    ASSERT_EQ(h.size, sizeof(fl_extfrag));
    EXPECT_GE(h.ts_ns, t0);
    EXPECT_LT(h.cpu, nr_cpus);
    EXPECT_GE(e.alloc_order, 0);
    EXPECT_LE(e.alloc_order, e.fallback_order);
    EXPECT_LE(e.fallback_order, static_cast<int>(header.max_order));
    EXPECT_NE(e.alloc_migratetype, e.fallback_migratetype);
    EXPECT_GE(ZoneOf(header, e.pfn), 0) << "pfn " << e.pfn;
    EXPECT_EQ(e.pfn % (1ull << e.alloc_order), 0u);
    EXPECT_EQ(e.fragmenting, e.fallback_order < static_cast<int>(header.pageblock_order));
    uint8_t cls = !e.fragmenting ? FL_EXTFRAG_CLAIM
                                 : (e.change_ownership ? FL_EXTFRAG_STEAL : FL_EXTFRAG_POLLUTE);
    EXPECT_EQ(e.extfrag_class, cls);
    if (e.alloc_migratetype == unmovable && e.fallback_migratetype == movable) ++matching;
  }
  EXPECT_GT(matching, 0) << "no UNMOVABLE request fell back to MOVABLE after "
                         << unmovable_bytes / kMiB << " MiB of pipe buffers";
  EXPECT_EQ((*tr)->stats().lost, 0u);
  EXPECT_GE(last_ts, t0);
}

TEST(TrackerLiveTest, AggregatesEqualFullEvents) {
  SKIP_UNLESS_LIVE();
  if (MemAvailableBytes() < 2048 * kMiB) GTEST_SKIP() << "needs 2 GiB MemAvailable";
  absl::StatusOr<TraceHeader> header = snapshot::TraceHeaderForThisMachine();
  ASSERT_TRUE(header.ok()) << header.status();
  TrackerOptions o = OptionsFor(*header);
  o.all_events = true;
  o.ring_bytes = 256 * kMiB;  // large enough that nothing is lost
  o.snapshots = false;
  VectorSink sink;
  absl::StatusOr<std::unique_ptr<Tracker>> tr = Tracker::Start(o, &sink);
  ASSERT_TRUE(tr.ok()) << tr.status();
  int status = RunChildWhileTracing(**tr, [] {
    FaultLoop(128 * kMiB, 4);
    return 0;
  });
  ASSERT_TRUE((*tr)->Stop().ok());
  ASSERT_EQ(status, 0);
  const TrackerStats& st = (*tr)->stats();
  ASSERT_EQ(st.lost, 0u) << "the equality below only holds without drops";
  EXPECT_EQ(st.attempted, st.ring_records_total);

  constexpr size_t kCells = FL_MAX_ZONES * FL_MAX_ORDERS * FL_MAX_MIGRATETYPES;
  std::vector<uint64_t> agg_alloc(kCells), agg_free(kCells), full_alloc(kCells), full_free(kCells);
  std::vector<uint64_t> agg_failed(FL_MAX_ORDERS * FL_MAX_MIGRATETYPES), full_failed(agg_failed.size());
  uint64_t agg_unknown = 0, full_unknown = 0, full_allocs = 0;
  auto cell = [](int z, uint32_t order, int mt) {
    return (static_cast<size_t>(z) * FL_MAX_ORDERS + order) * FL_MAX_MIGRATETYPES + static_cast<size_t>(mt);
  };
  for (size_t i = 0; i < sink.size(); ++i) {
    const fl_record_header& h = sink.at(i);
    if (h.kind == FL_EV_AGGREGATE) {
      auto a = std::make_unique<fl_aggregate>(sink.as<fl_aggregate>(i));
      EXPECT_EQ(a->nr_zones, header->zones.size());
      for (int z = 0; z < FL_MAX_ZONES; ++z) {
        for (uint32_t ord = 0; ord < FL_MAX_ORDERS; ++ord) {
          for (int m = 0; m < FL_MAX_MIGRATETYPES; ++m) {
            agg_alloc[cell(z, ord, m)] += a->alloc[z][ord][m];
            agg_free[cell(z, ord, m)] += a->free[z][ord][m];
          }
        }
      }
      for (uint32_t ord = 0; ord < FL_MAX_ORDERS; ++ord) {
        for (int m = 0; m < FL_MAX_MIGRATETYPES; ++m) {
          agg_failed[ord * FL_MAX_MIGRATETYPES + static_cast<size_t>(m)] += a->alloc_failed[ord][m];
        }
      }
      agg_unknown += a->unknown_zone;
    } else if (h.kind == FL_EV_PAGE_ALLOC) {
      auto e = sink.as<fl_page_alloc>(i);
      ASSERT_LT(e.order, static_cast<uint32_t>(FL_MAX_ORDERS));
      int mt = (e.migratetype >= 0 && e.migratetype < FL_MAX_MIGRATETYPES) ? e.migratetype : FL_MT_UNKNOWN;
      ++full_allocs;
      if (e.pfn == FL_NO_PFN) {
        full_failed[e.order * FL_MAX_MIGRATETYPES + static_cast<size_t>(mt)]++;
      } else if (int z = ZoneOf(*header, e.pfn); z >= 0) {
        full_alloc[cell(z, e.order, mt)]++;
      } else {
        ++full_unknown;
      }
    } else if (h.kind == FL_EV_PAGE_FREE) {
      auto e = sink.as<fl_page_free>(i);
      ASSERT_LT(e.order, static_cast<uint32_t>(FL_MAX_ORDERS));
      if (int z = ZoneOf(*header, e.pfn); z >= 0) {
        full_free[cell(z, e.order, FL_MT_UNKNOWN)]++;
      } else {
        ++full_unknown;
      }
    }
  }
  EXPECT_GT(full_allocs, (4 * 128 * kMiB) / 4096) << "the fault loop alone allocates this many pages";
  EXPECT_EQ(agg_alloc, full_alloc);
  EXPECT_EQ(agg_free, full_free);
  EXPECT_EQ(agg_failed, full_failed);
  EXPECT_EQ(agg_unknown, full_unknown);
}

TEST(TrackerLiveTest, CountsDropsWithATinyRing) {
  SKIP_UNLESS_LIVE();
  absl::StatusOr<TraceHeader> header = snapshot::TraceHeaderForThisMachine();
  ASSERT_TRUE(header.ok()) << header.status();
  TrackerOptions o = OptionsFor(*header);
  o.all_events = true;
  o.ring_bytes = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  o.snapshots = false;
  VectorSink sink;
  TraceSummaryBuilder summary;
  TeeSink tee({&sink, &summary});
  absl::StatusOr<std::unique_ptr<Tracker>> tr = Tracker::Start(o, &tee);
  ASSERT_TRUE(tr.ok()) << tr.status();
  int status = RunChildWhileTracing(**tr, [] {
    FaultLoop(64 * kMiB, 2);
    return 0;
  });
  ASSERT_TRUE((*tr)->Stop().ok());
  ASSERT_EQ(status, 0);
  const TrackerStats& st = (*tr)->stats();
  EXPECT_GT(st.lost, 0u) << "a one-page ring cannot hold a 64 MiB fault loop's events";
  // Exact accounting: every record was either delivered or counted lost.
  EXPECT_EQ(st.attempted, st.ring_records_total + st.lost);
  uint64_t per_cpu = 0;
  for (uint64_t n : st.lost_per_cpu) per_cpu += n;
  EXPECT_EQ(per_cpu, st.lost);
  // And the trace says so: the drop records and the summary carry the count.
  EXPECT_EQ(summary.summary().lost(), st.lost);
  EXPECT_THAT(FormatTraceSummary(summary.summary(), *header),
              testing::HasSubstr(std::to_string(st.lost) + " events lost"));
}

// Runs `fraglab trace` and returns its exit status; stdout/stderr go to files.
int RunFraglab(const std::vector<std::string>& args, const std::string& out, const std::string& err,
               int signal_after_ms = -1) {
  pid_t pid = fork();
  if (pid == 0) {
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(FRAGLAB_BINARY));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(FRAGLAB_BINARY, argv.data());
    _exit(127);
  }
  if (signal_after_ms >= 0) {
    usleep(static_cast<useconds_t>(signal_after_ms) * 1000);
    kill(pid, SIGINT);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

std::string ReadAll(const std::string& path) {
  std::string s;
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return s;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) s.append(buf, n);
  std::fclose(f);
  return s;
}

std::string TempPath(const std::string& name) {
  return testing::TempDir() + "/fraglab_tracker_" + std::to_string(getpid()) + "_" + name;
}

TEST(TrackerLiveTest, TraceCommandWritesAFileThatReadsBackAndExports) {
  SKIP_UNLESS_LIVE();
  const std::string trace = TempPath("cmd.trace");
  const std::string out = TempPath("cmd.out"), err = TempPath("cmd.err");
  int status = RunFraglab({"trace", "-o", trace, "--interval", "250ms", "--", "sh", "-c",
                           "echo 1 > /proc/sys/vm/compact_memory; sleep 1"},
                          out, err);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  ASSERT_EQ(WEXITSTATUS(status), 0) << ReadAll(err);
  std::string summary_text = ReadAll(out);
  EXPECT_THAT(summary_text, testing::HasSubstr("Fallbacks (mm_page_alloc_extfrag)"));
  EXPECT_THAT(summary_text, testing::HasSubstr("Drops: 0 events lost"));

  absl::StatusOr<std::unique_ptr<TraceReader>> reader = TraceReader::Open(trace);
  ASSERT_TRUE(reader.ok()) << reader.status();
  const TraceHeader& h = (*reader)->header();
  EXPECT_FALSE(h.simulated);
  EXPECT_FALSE(h.zones.empty());
  EXPECT_FALSE(h.migratetype_names.empty());
  EXPECT_EQ(h.extra.at("recording_level"), "default");
  std::map<uint16_t, int> kinds;
  int records = 0;
  while (true) {
    absl::StatusOr<const fl_record_header*> rec = (*reader)->Next();
    ASSERT_TRUE(rec.ok()) << rec.status();
    if (*rec == nullptr) break;
    ++records;
    kinds[(*rec)->kind]++;
    // The export view of every record names its kind.
    nlohmann::json j = RecordToJson(**rec, h);
    EXPECT_EQ(j["kind"], RecordKindName((*rec)->kind));
  }
  EXPECT_FALSE((*reader)->truncated());
  EXPECT_GT(records, 0);
  // Manual compaction ran: its begin/end pair is in the trace, as are the
  // periodic records (a 250 ms interval over >1 s).
  EXPECT_GE(kinds[FL_EV_COMPACT_BEGIN], 1);
  EXPECT_GE(kinds[FL_EV_COMPACT_END], 1);
  EXPECT_GE(kinds[FL_EV_AGGREGATE], 3);
  EXPECT_GE(kinds[FL_EV_COUNTERS], 3);
  EXPECT_GE(kinds[FL_EV_DROPS], 3);
  // The summary of the file equals the one printed live.
  TraceHeader file_header;
  absl::StatusOr<TraceSummary> from_file = SummarizeTraceFile(trace, &file_header);
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  EXPECT_EQ(FormatTraceSummary(*from_file, file_header), summary_text);

  // `fraglab export` turns the same file into JSON lines, one per record.
  const std::string jsonl = TempPath("cmd.jsonl");
  int export_status = RunFraglab({"export", "--format", "jsonl", "-o", jsonl, trace}, out, err);
  ASSERT_TRUE(WIFEXITED(export_status) && WEXITSTATUS(export_status) == 0) << ReadAll(err);
  std::string lines = ReadAll(jsonl);
  int extfrag_lines = 0, line_count = 0;
  size_t pos = 0;
  while (pos < lines.size()) {
    size_t end = lines.find('\n', pos);
    if (end == std::string::npos) end = lines.size();
    nlohmann::json j = nlohmann::json::parse(lines.substr(pos, end - pos), nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << lines.substr(pos, end - pos);
    if (j.contains("kind")) {
      ++line_count;
      extfrag_lines += j["kind"] == "extfrag";
    }
    pos = end + 1;
  }
  EXPECT_GE(line_count, records);
  EXPECT_EQ(extfrag_lines, kinds[FL_EV_EXTFRAG]);
  std::remove(trace.c_str());
  std::remove(jsonl.c_str());
  std::remove(out.c_str());
  std::remove(err.c_str());
}

TEST(TrackerLiveTest, SigintEndsTheTraceWithACompleteFile) {
  SKIP_UNLESS_LIVE();
  const std::string trace = TempPath("sigint.trace");
  const std::string out = TempPath("sigint.out"), err = TempPath("sigint.err");
  int status = RunFraglab({"trace", "-o", trace, "--duration", "60s", "--interval", "200ms"}, out,
                          err, /*signal_after_ms=*/1500);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by the signal instead of stopping: " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << ReadAll(err);
  EXPECT_THAT(ReadAll(err), testing::HasSubstr("received, stopping"));
  absl::StatusOr<std::unique_ptr<TraceReader>> reader = TraceReader::Open(trace);
  ASSERT_TRUE(reader.ok()) << reader.status();
  int drops = 0;
  while (true) {
    absl::StatusOr<const fl_record_header*> rec = (*reader)->Next();
    ASSERT_TRUE(rec.ok()) << rec.status();
    if (*rec == nullptr) break;
    drops += (*rec)->kind == FL_EV_DROPS;
  }
  EXPECT_FALSE((*reader)->truncated()) << (*reader)->truncation_note();
  EXPECT_GT(drops, 0) << "the final drop records are written on SIGINT";
  EXPECT_THAT(ReadAll(out), testing::HasSubstr("fraglab trace summary"));
  std::remove(trace.c_str());
  std::remove(out.c_str());
  std::remove(err.c_str());
}

TEST(TrackerLiveTest, MissingRequiredTracepointIsAPreciseError) {
  SKIP_UNLESS_LIVE();
  // A tracefs without the kmem events (as on a kernel without them).
  char dir_template[] = "/tmp/fraglab_fake_tracefs_XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string dir = dir_template;
  ASSERT_EQ(mkdir((dir + "/events").c_str(), 0755), 0);
  TrackerOptions o;
  o.tracefs = dir;
  VectorSink sink;
  absl::StatusOr<std::unique_ptr<Tracker>> tr = Tracker::Start(o, &sink);
  ASSERT_FALSE(tr.ok());
  EXPECT_EQ(tr.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(tr.status().message()),
              testing::HasSubstr("required tracepoint kmem:mm_page_alloc is missing"));
  rmdir((dir + "/events").c_str());
  rmdir(dir.c_str());

  o.tracefs = "/nonexistent-tracefs";
  tr = Tracker::Start(o, &sink);
  ASSERT_FALSE(tr.ok());
  EXPECT_THAT(std::string(tr.status().message()), testing::HasSubstr("mount -t tracefs"));
}

TEST(TrackerLiveTest, NonRootGetsAPreciseError) {
  SKIP_UNLESS_LIVE();
  // Drop to nobody in a child (setuid clears the effective capabilities).
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(2);
    absl::Status st = CheckPrerequisites();
    std::string msg = st.ok() ? "OK" : std::string(st.message());
    (void)!write(pipefd[1], msg.data(), msg.size());
    _exit(st.code() == absl::StatusCode::kFailedPrecondition ? 0 : 1);
  }
  close(pipefd[1]);
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) msg.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << msg;
  EXPECT_THAT(msg, testing::HasSubstr("needs root"));
}

}  // namespace
}  // namespace fraglab::tracker
