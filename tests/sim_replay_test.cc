// Trace replay (sim/replay.h) on hand-made traces with known answers: a
// "kernel" that is itself the model (same start, same requests) must be
// replayed with every fallback agreeing; a changed fallback must be found as
// the first divergence at its allocation record; events the replay cannot
// reproduce must be counted under their kind; traces without a snapshot or
// without page events are refused with a message saying what to record.
#include "sim/replay.h"

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/rng.h"
#include "common/trace_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/scenario_sim.h"
#include "sim/start_state.h"

namespace fraglab::sim {
namespace {

using ::testing::HasSubstr;

// A hand-made kernel trace: the start snapshot of a 32 MiB one-zone machine
// then the records of a workload run on the model from that start.
struct HandTrace {
  TraceHeader header;
  VectorSink records;           // snapshot set first, then the workload's records
  size_t first_event = 0;       // index of the first workload record
};

TraceHeader Header(const PageAllocator& a) {
  TraceHeader h;
  h.kernel_release = "6.18.0-test";
  h.kernel_era = "CLAIM";
  h.machine = "hand-made";
  h.nr_cpus = static_cast<uint32_t>(a.config().cpus);
  SetAllocatorLayout(a, h);
  return h;
}

HandTrace MakeTrace(uint64_t seed) {
  HandTrace t;
  MachineConfig boot = SingleZoneMachine(8192, 0, 2);
  auto b = PageAllocator::Create(boot);
  EXPECT_TRUE(b.ok());
  t.header = Header(**b);
  (*b)->set_sink(&t.records);
  (*b)->EmitSnapshots();
  // The "kernel": the model loaded from that snapshot, as the replay will.
  StartSnapshotCollector c(t.header);
  for (size_t i = 0; i < t.records.size(); ++i) EXPECT_TRUE(c.Emit(t.records.at(i)).ok());
  auto start = c.Finish();
  EXPECT_TRUE(start.ok());
  auto cfg = MachineConfigFromStart(*start);
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  auto k = PageAllocator::Create(*cfg);
  EXPECT_TRUE(k.ok());
  EXPECT_TRUE(ApplyStartState(*start, **k).ok());
  t.first_event = t.records.size();
  PageAllocator& kernel = **k;
  kernel.set_sink(&t.records);
  Rng rng(seed);
  std::vector<std::pair<uint64_t, int>> live;
  uint64_t now = 10;
  // Fill with movable pages, free every other one, then unmovable and
  // reclaimable requests fall back into the holes.
  for (int i = 0; i < 6000; ++i) {
    ++now;
    kernel.AdvanceTime(now);
    kernel.set_time(now);
    const uint64_t pfn = kernel.Allocate({.order = 0, .gfp = gfp::kHighuserMovable, .cpu = i % 2,
                                          .owner = OwnerKind::kAnon});
    if (pfn != kNoPfn) live.emplace_back(pfn, 0);
  }
  for (size_t i = 0; i < live.size(); i += 2) {
    ++now;
    kernel.AdvanceTime(now);
    kernel.set_time(now);
    EXPECT_TRUE(kernel.Free(live[i].first, 0, static_cast<int>(i % 2)).ok());
  }
  for (int i = 0; i < 1500; ++i) {
    ++now;
    kernel.AdvanceTime(now);
    kernel.set_time(now);
    const uint64_t g = rng.Uniform(3) == 0 ? gfp::kKernelReclaimable : gfp::kKernel;
    (void)kernel.Allocate({.order = static_cast<int>(rng.Uniform(2)), .gfp = g, .cpu = static_cast<int>(rng.Uniform(2))});
  }
  return t;
}

// Digests of tests/fixtures/replay/pipe-prefix.trace's replay (see
// RecordedKernelTraceGivesThePinnedResult), from the replay before its
// speed work (commit 0075422; the state digest from the allocator of
// commit 85319e6, whose decisions the stream digest pins to that one).
constexpr uint64_t kPinnedModelRecords = 81509;
constexpr uint64_t kPinnedModelStream = 0x5aba10a42cf73749;
constexpr uint64_t kPinnedModelState = 0xfd4ef02ee1b72e4e;

absl::StatusOr<ReplayResult> Replay(const TraceHeader& h, const VectorSink& recs) {
  TraceReplayer r(h, {});
  for (size_t i = 0; i < recs.size(); ++i) {
    absl::Status st = r.Emit(recs.at(i));
    if (!st.ok()) return st;
  }
  return r.Finish();
}

TEST(ReplayTest, ModelReplayingItselfAgreesEverywhere) {
  HandTrace t = MakeTrace(1);
  auto r = Replay(t.header, t.records);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->allocs_replayed, 7000u);
  EXPECT_EQ(r->allocs_sim_failed, 0u);
  EXPECT_GT(r->frees_replayed, 2900u);
  EXPECT_GT(r->kernel_extfrag_events, 0u);
  EXPECT_EQ(r->kernel_fallbacks, r->sim_fallbacks);
  EXPECT_GT(r->allocs_with_fallback, 0u);
  EXPECT_EQ(r->allocs_fallback_agree, r->allocs_with_fallback);
  EXPECT_FALSE(r->first_divergence.has_value()) << r->first_divergence->kernel_did << " / "
                                                << r->first_divergence->sim_did;
  EXPECT_EQ(r->start.FreeBlockOrderDiff(), 0u);
  // The model's own pcp refills show up as recorded zone_locked events: they
  // are listed (the replay lets the model refill by its own rules), never
  // replayed twice.
  EXPECT_GT(r->unexplained.count(
                "pcp refill from the buddy (zone_locked percpu_refill; the model refills its own)"),
            0u);
  const std::string text = FormatReplayResult(*r);
  EXPECT_THAT(text, HasSubstr("no divergence"));
  EXPECT_THAT(text, HasSubstr("class alloc<-fallback"));
}

TEST(ReplayTest, ChangedFallbackIsTheFirstDivergence) {
  HandTrace t = MakeTrace(2);
  // Rewrite the first recorded fallback as a different class; the allocation
  // it belongs to is the next alloc record on the same CPU.
  VectorSink edited;
  size_t extfrag_at = 0, alloc_at = 0;
  bool changed = false, found_alloc = false;
  uint16_t cpu = 0;
  for (size_t i = 0; i < t.records.size(); ++i) {
    const fl_record_header& h = t.records.at(i);
    if (!changed && h.kind == FL_EV_EXTFRAG) {
      fl_extfrag e = t.records.as<fl_extfrag>(i);
      e.extfrag_class = e.extfrag_class == FL_EXTFRAG_CLAIM ? FL_EXTFRAG_POLLUTE : FL_EXTFRAG_CLAIM;
      ASSERT_TRUE(edited.Emit(e.hdr).ok());
      changed = true;
      extfrag_at = i;
      cpu = h.cpu;
      continue;
    }
    if (changed && !found_alloc && h.kind == FL_EV_PAGE_ALLOC && h.cpu == cpu) {
      found_alloc = true;
      alloc_at = i;
    }
    ASSERT_TRUE(edited.Emit(h).ok());
  }
  ASSERT_TRUE(changed && found_alloc);
  auto r = Replay(t.header, edited);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->first_divergence.has_value());
  EXPECT_EQ(r->first_divergence->record_index, alloc_at);
  EXPECT_GT(alloc_at, extfrag_at);
  EXPECT_EQ(r->first_divergence->cpu, cpu);
  EXPECT_NE(r->first_divergence->kernel_did, r->first_divergence->sim_did);
  EXPECT_NE(r->kernel_fallbacks, r->sim_fallbacks);
  EXPECT_EQ(r->allocs_fallback_agree + 1, r->allocs_with_fallback);
  EXPECT_THAT(FormatReplayResult(*r), HasSubstr("first divergence: record"));
}

TEST(ReplayTest, UnexplainedEventsAreCountedByKind) {
  HandTrace t = MakeTrace(3);
  // The start snapshot only: the hand-made records below are the whole workload.
  VectorSink recs;
  for (size_t i = 0; i < t.first_event; ++i) ASSERT_TRUE(recs.Emit(t.records.at(i)).ok());
  uint64_t ts = 1'000'000;
  // An order-2 allocation whose pages are later freed one by one (split_page).
  fl_page_alloc a;
  InitRecord(a, FL_EV_PAGE_ALLOC, ts++, 0);
  a.pfn = 0x1f00;  // any kernel pfn inside the zone; the model picks its own
  a.order = 2;
  a.gfp_flags = gfp::kKernel;
  ASSERT_TRUE(recs.Emit(a.hdr).ok());
  for (uint64_t p = 0x1f00; p < 0x1f04; ++p) {
    fl_page_free f;
    InitRecord(f, FL_EV_PAGE_FREE, ts++, 0);
    f.pfn = p;
    f.order = 0;
    ASSERT_TRUE(recs.Emit(f.hdr).ok());
  }
  // A free of a page nobody allocated in the trace, twice (once batched).
  fl_page_free f;
  InitRecord(f, FL_EV_PAGE_FREE, ts++, 1);
  f.pfn = 0x1ff0;
  ASSERT_TRUE(recs.Emit(f.hdr).ok());
  f.batched = 1;
  ASSERT_TRUE(recs.Emit(f.hdr).ok());
  // A failed kernel allocation, a drop count, a free outside the zone.
  fl_page_alloc failed;
  InitRecord(failed, FL_EV_PAGE_ALLOC, ts++, 1);
  failed.pfn = FL_NO_PFN;
  failed.order = 9;
  failed.gfp_flags = gfp::kHighuserMovable;
  ASSERT_TRUE(recs.Emit(failed.hdr).ok());
  fl_drops d;
  InitRecord(d, FL_EV_DROPS, ts++, 1);
  d.lost = 17;
  ASSERT_TRUE(recs.Emit(d.hdr).ok());
  fl_page_free outside;
  InitRecord(outside, FL_EV_PAGE_FREE, ts++, 0);
  outside.pfn = 1u << 30;
  ASSERT_TRUE(recs.Emit(outside.hdr).ok());
  // A later snapshot with fewer managed pages (memory unplugged).
  fl_snapshot_zone z = t.records.as<fl_snapshot_zone>(0);
  z.hdr.ts_ns = ts++;
  z.managed -= 512;
  ASSERT_TRUE(recs.Emit(z.hdr).ok());

  auto r = Replay(t.header, recs);
  ASSERT_TRUE(r.ok()) << r.status();
  auto count = [&](const std::string& prefix) -> uint64_t {
    uint64_t n = 0;
    for (const auto& [k, v] : r->unexplained)
      if (k.rfind(prefix, 0) == 0) n += v;
    return n;
  };
  EXPECT_EQ(count("free of part of a traced block"), 1u);
  EXPECT_EQ(count("free of a page not allocated in the trace"), 1u);
  EXPECT_EQ(count("batched free of a page already freed"), 1u);
  EXPECT_EQ(count("failed kernel allocation"), 1u);
  EXPECT_EQ(count("events lost by the recorder"), 17u);
  EXPECT_EQ(count("alloc/free outside every modelled zone"), 1u);
  EXPECT_EQ(count("zone size change between snapshots"), 1u);
  ASSERT_EQ(r->snapshots.size(), 1u);
  EXPECT_THAT(FormatReplayResult(*r), HasSubstr("recorded events not replayed one to one"));
}

TEST(ReplayTest, ThroughATraceFile) {
  HandTrace t = MakeTrace(4);
  char path[] = "/tmp/fraglab_replay_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    auto w = TraceWriter::Open(path, t.header);
    ASSERT_TRUE(w.ok());
    for (size_t i = 0; i < t.records.size(); ++i) ASSERT_TRUE((*w)->Emit(t.records.at(i)).ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  auto reader = TraceReader::Open(path);
  ASSERT_TRUE(reader.ok());
  TraceReplayer replayer((*reader)->header(), {});
  for (;;) {
    auto rec = (*reader)->Next();
    ASSERT_TRUE(rec.ok());
    if (*rec == nullptr) break;
    ASSERT_TRUE(replayer.Emit(**rec).ok());
  }
  unlink(path);
  auto r = replayer.Finish();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->first_divergence.has_value());
  EXPECT_EQ(r->records, t.records.size());
  EXPECT_GT(r->span_ns, 0u);
}

TEST(ReplayTest, RefusesTracesItCannotReplay) {
  HandTrace t = MakeTrace(5);
  {
    // No snapshot at all.
    VectorSink recs;
    for (size_t i = t.first_event; i < t.records.size(); ++i) ASSERT_TRUE(recs.Emit(t.records.at(i)).ok());
    auto r = Replay(t.header, recs);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(r.status().message(), HasSubstr("no machine snapshot"));
  }
  {
    // A snapshot and aggregates only (recorded without --all-events).
    VectorSink recs;
    ASSERT_TRUE(recs.Emit(t.records.at(0)).ok());
    fl_aggregate agg;
    InitRecord(agg, FL_EV_AGGREGATE, 100, 0);
    ASSERT_TRUE(recs.Emit(agg.hdr).ok());
    auto r = Replay(t.header, recs);
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.status().message(), HasSubstr("--all-events"));
    EXPECT_THAT(r.status().message(), HasSubstr("aggregates"));
  }
}

// FNV-1a 64 over every record the model emits: pins each of its decisions.
class HashingSink final : public EventSink {
 public:
  [[nodiscard]] absl::Status Emit(const fl_record_header& rec) override {
    const auto* p = reinterpret_cast<const uint8_t*>(&rec);
    for (uint32_t i = 0; i < rec.size; ++i) hash_ = (hash_ ^ p[i]) * 0x100000001b3ull;
    ++count_;
    return absl::OkStatus();
  }
  uint64_t hash() const { return hash_; }
  uint64_t count() const { return count_; }

 private:
  uint64_t hash_ = 0xcbf29ce484222325ull;
  uint64_t count_ = 0;
};

// FNV-1a 64 of the model's free lists (every zone, order and type, in list
// order) and the type of every pageblock: the state the next allocation
// would see.
uint64_t StateDigest(const PageAllocator& a) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i) h = (h ^ ((v >> (8 * i)) & 0xff)) * 0x100000001b3ull;
  };
  for (int z = 0; z < a.num_zones(); ++z) {
    for (int o = 0; o < kNumOrders; ++o) {
      for (int t = 0; t < kNumMigrateTypes; ++t) {
        if (t == kCma && !a.numbering().with_cma()) continue;
        for (uint64_t pfn : a.FreeList(z, o, static_cast<MigrateType>(t))) mix(pfn);
        mix(~uint64_t{0});
      }
    }
    const ZoneStats st = a.zone_stats(z);
    for (uint64_t pfn = st.start_pfn; pfn < st.start_pfn + st.spanned; pfn += kPageblockPages) {
      mix(static_cast<uint64_t>(a.PageblockType(pfn)));
    }
  }
  return h;
}

struct PinnedReplay {
  std::string text;
  uint64_t state = 0;
};

PinnedReplay ReplayFile(const std::string& path, EventSink* sim_sink) {
  PinnedReplay out;
  auto reader = TraceReader::Open(path);
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return out;
  ReplayOptions o;
  o.sim_sink = sim_sink;
  TraceReplayer replayer((*reader)->header(), o);
  for (;;) {
    auto rec = (*reader)->Next();
    EXPECT_TRUE(rec.ok()) << rec.status();
    if (!rec.ok() || *rec == nullptr) break;
    EXPECT_TRUE(replayer.Emit(**rec).ok());
  }
  auto r = replayer.Finish();
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return out;
  out.text = FormatReplayResult(*r);
  out.state = StateDigest(*replayer.allocator());
  // The replay's model keeps its list links in chunks (ListLinks::kChunked):
  // every list must still be whole and consistent.
  const absl::Status check = replayer.allocator()->CheckInvariants();
  EXPECT_TRUE(check.ok()) << check;
  return out;
}

// A real kernel trace (the first 90000 records of 11.5 s of pipe traffic
// recorded with `fraglab trace --all-events` on a 24 GiB 6.18 VM: start
// snapshot without a map, 25677 allocations, 24831 frees, one later
// snapshot) replayed on the full-size model. The report must stay the one
// in the golden file and the model's event stream and final free lists the
// pinned digests: speed work on the replay, the start state or the
// allocator must not change what the model does.
TEST(ReplayTest, RecordedKernelTraceGivesThePinnedResult) {
  const std::string dir = std::string(FRAGLAB_FIXTURE_DIR) + "/replay/";
  std::ifstream in(dir + "pipe-prefix.golden.txt");
  ASSERT_TRUE(in.good()) << "missing " << dir << "pipe-prefix.golden.txt";
  std::stringstream golden;
  golden << in.rdbuf();
  HashingSink sink;
  const PinnedReplay with_sink = ReplayFile(dir + "pipe-prefix.trace", &sink);
  EXPECT_EQ(with_sink.text, golden.str());
  EXPECT_EQ(sink.count(), kPinnedModelRecords);
  EXPECT_EQ(sink.hash(), kPinnedModelStream) << std::hex << "actual stream digest 0x" << sink.hash();
  EXPECT_EQ(with_sink.state, kPinnedModelState) << std::hex << "actual state digest 0x" << with_sink.state;
  // Without a sink of its own (what `fraglab replay` does) the model must
  // decide exactly the same.
  const PinnedReplay plain = ReplayFile(dir + "pipe-prefix.trace", nullptr);
  EXPECT_EQ(plain.text, golden.str());
  EXPECT_EQ(plain.state, kPinnedModelState) << std::hex << "actual state digest 0x" << plain.state;
}

// Chunked list links (what the replay uses) must make every decision the
// per-page links make: the same random workload of allocations of every
// order and type, frees, pcp drains and time steps (kswapd, kcompactd,
// compaction) gives the same event stream and the same final lists.
TEST(ReplayTest, ChunkedListLinksDecideLikePerPageLinks) {
  MachineConfig c = StandardMachine(uint64_t{512} << 20, 2);
  uint64_t stream[2] = {0, 0}, state[2] = {0, 0}, events[2] = {0, 0};
  const ListLinks modes[2] = {ListLinks::kPerPage, ListLinks::kChunked};
  for (int m = 0; m < 2; ++m) {
    HashingSink sink;
    auto a = PageAllocator::Create(c, &sink, nullptr, modes[m]);
    ASSERT_TRUE(a.ok()) << a.status();
    PageAllocator& p = **a;
    Rng rng(11);
    std::vector<std::pair<uint64_t, int>> live;
    uint64_t now = 0;
    for (int i = 0; i < 60000; ++i) {
      now += 20000;
      p.AdvanceTime(now);
      p.set_time(now);
      if (live.empty() || rng.Uniform(100) < 55) {
        const int order = rng.Uniform(10) < 8 ? 0 : static_cast<int>(rng.Uniform(kNumOrders));
        const uint64_t types[3] = {gfp::kHighuserMovable, gfp::kKernel, gfp::kKernelReclaimable};
        const uint64_t pfn = p.Allocate({.order = order, .gfp = types[rng.Uniform(3)],
                                         .cpu = static_cast<int>(rng.Uniform(2)), .owner = OwnerKind::kAnon});
        if (pfn != kNoPfn) live.emplace_back(pfn, order);
      } else {
        const size_t k = rng.Uniform(live.size());
        ASSERT_TRUE(p.Free(live[k].first, live[k].second, static_cast<int>(rng.Uniform(2))).ok());
        live[k] = live.back();
        live.pop_back();
      }
      if (i % 10000 == 9999) p.DrainAllPcp();
    }
    const absl::Status check = p.CheckInvariants();
    ASSERT_TRUE(check.ok()) << check;
    stream[m] = sink.hash();
    events[m] = sink.count();
    state[m] = StateDigest(p);
  }
  EXPECT_GT(events[0], 60000u);
  EXPECT_EQ(events[1], events[0]);
  EXPECT_EQ(stream[1], stream[0]);
  EXPECT_EQ(state[1], state[0]);
}

}  // namespace
}  // namespace fraglab::sim
