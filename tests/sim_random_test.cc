// Randomised operation sequences with the invariant checker after every
// step; saved regression inputs (tests/fixtures/sim/regressions/*.ops); and
// determinism: the same sequence gives byte-identical event streams, across
// runs and across builds (the hashes are pinned in
// tests/fixtures/sim/determinism_golden.txt, which Debug and Release builds
// both check).
//
// Operation file format, one operation per line ('#' starts a comment):
//   machine <legacy|hygiene|claim> <pcp 0|1> <static|auto> <cpus> [defrag]
//   alloc <order> <type 0..2> <cpu> <fast|nowm|atomic>
//   free <k> <cpu>          frees live allocation number k mod #live
//   drain | decay
//   convert <k> <type>      re-types the pageblock of pfn k mod covered
//   unreserve <type> <force 0|1>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/event_sink.h"
#include "common/rng.h"
#include "gtest/gtest.h"
#include "sim/config.h"
#include "sim/page_allocator.h"

namespace fraglab::sim {
namespace {

struct Op {
  std::string text;
};

struct RunResult {
  absl::Status status;      // first invariant failure
  size_t failed_step = 0;
  uint64_t hash = 0;        // FNV-1a of the event bytes
  uint64_t events = 0;
  uint64_t extfrag[3] = {}; // by fl_extfrag_class
};

MachineConfig ParseMachine(const std::vector<std::string>& f) {
  MachineConfig c;
  c.zones = {{.node = 0, .type = kZoneDma32, .start_pfn = 0x1000, .spanned = 4096},
             {.node = 0, .type = kZoneNormal, .start_pfn = 0x100000, .spanned = 8192}};
  c.era = f[1] == "legacy" ? Era::kLegacy : f[1] == "hygiene" ? Era::kHygiene : Era::kClaim;
  c.pcp = f[2] == "1";
  c.pcp_tuning = f[3] == "static" ? PcpTuning::kStatic : PcpTuning::kAuto;
  c.cpus = std::stoi(f[4]);
  c.defrag_mode = f.size() > 5 && f[5] == "defrag";
  c.min_free_kbytes = 512;
  return c;
}

class HashSink final : public EventSink {
 public:
  absl::Status Emit(const fl_record_header& rec) override {
    const auto* p = reinterpret_cast<const uint8_t*>(&rec);
    for (uint32_t i = 0; i < rec.size; ++i) hash = (hash ^ p[i]) * 0x100000001b3ull;
    ++count;
    if (rec.kind == FL_EV_EXTFRAG) {
      fl_extfrag e;
      std::memcpy(&e, &rec, sizeof(e));
      ++extfrag[e.extfrag_class];
    }
    return absl::OkStatus();
  }
  uint64_t extfrag[3] = {};
  uint64_t hash = 0xcbf29ce484222325ull;
  uint64_t count = 0;
};

// Runs `ops` (first line a machine line), checking invariants after each.
RunResult RunOps(const std::vector<std::string>& ops) {
  RunResult r;
  std::vector<std::string> m = absl::StrSplit(ops[0], ' ', absl::SkipEmpty());
  HashSink sink;
  auto created = PageAllocator::Create(ParseMachine(m), &sink);
  if (!created.ok()) {
    r.status = created.status();
    return r;
  }
  PageAllocator& a = **created;
  struct Live {
    uint64_t pfn;
    int order;
  };
  std::vector<Live> live;
  for (size_t step = 1; step < ops.size(); ++step) {
    a.set_time(step);
    std::vector<std::string> f = absl::StrSplit(ops[step], ' ', absl::SkipEmpty());
    if (f.empty() || f[0][0] == '#') continue;
    if (f[0] == "alloc") {
      int order = std::stoi(f[1]);
      auto type = static_cast<MigrateType>(std::stoi(f[2]));
      int cpu = std::stoi(f[3]) % a.config().cpus;
      static const OwnerKind kOwners[] = {OwnerKind::kKernel, OwnerKind::kAnon, OwnerKind::kSlabReclaimable};
      AllocRequest req{order, GfpForMigratetype(type), 0, cpu, kOwners[type]};
      uint64_t pfn;
      if (f[4] == "nowm") {
        pfn = a.AllocateWithFlags(req, alloc::kNoWatermarks);
      } else if (f[4] == "atomic") {
        req.gfp = gfp::kAtomic;
        pfn = a.Allocate(req);
      } else {
        pfn = a.Allocate(req);
      }
      if (pfn != kNoPfn) live.push_back({pfn, order});
    } else if (f[0] == "free") {
      if (!live.empty()) {
        size_t k = std::stoull(f[1]) % live.size();
        absl::Status s = a.Free(live[k].pfn, live[k].order, std::stoi(f[2]) % a.config().cpus);
        if (!s.ok()) {
          r.status = s;
          r.failed_step = step;
          return r;
        }
        live[k] = live.back();
        live.pop_back();
      }
    } else if (f[0] == "drain") {
      a.DrainAllPcp();
    } else if (f[0] == "decay") {
      a.PcpDecayTick();
    } else if (f[0] == "convert") {
      uint64_t pfn = 0x100000 + std::stoull(f[1]) % 8192;
      (void)a.ConvertPageblock(pfn, static_cast<MigrateType>(std::stoi(f[2])));
    } else if (f[0] == "unreserve") {
      a.UnreserveHighAtomic(0, kZoneNormal, static_cast<MigrateType>(std::stoi(f[1])), f[2] == "1");
    }
    absl::Status s = a.CheckInvariants();
    if (!s.ok()) {
      r.status = absl::InternalError(absl::StrCat("after step ", step, " (", ops[step], "): ", s.message()));
      r.failed_step = step;
      return r;
    }
  }
  r.hash = sink.hash;
  r.events = sink.count;
  for (int c = 0; c < 3; ++c) r.extfrag[c] = sink.extfrag[c];
  return r;
}

// A seeded random sequence: allocations of orders 0..10 (small orders far
// more likely) of all three types, frees, drains, decays, conversions and
// highatomic releases; memory pressure comes from the allocation bias.
std::vector<std::string> RandomOps(const std::string& machine, uint64_t seed, int n) {
  Rng rng(seed);
  std::vector<std::string> ops{machine};
  static const int kOrderWeights[] = {200, 20, 10, 6, 2, 1, 1, 1, 1, 2, 1};
  for (int i = 0; i < n; ++i) {
    // First 40 %: mostly allocations, to fill memory; then churn.
    uint64_t r = rng.Uniform(100);
    if (i < n * 2 / 5 && r < 90) r = 0;
    if (r < 55) {
      uint64_t w = rng.Uniform(245), acc = 0;
      int order = 0;
      for (int o = 0; o <= 10; ++o) {
        acc += kOrderWeights[o];
        if (w < acc) {
          order = o;
          break;
        }
      }
      uint64_t mode = rng.Uniform(20);
      ops.push_back(absl::StrFormat("alloc %d %d %d %s", order, rng.Uniform(3), rng.Uniform(4),
                                    mode == 0 ? "atomic" : mode < 4 ? "nowm" : "fast"));
    } else if (r < 95) {
      ops.push_back(absl::StrFormat("free %d %d", rng.Uniform(1u << 20), rng.Uniform(4)));
    } else if (r < 96) {
      ops.push_back("drain");
    } else if (r < 97) {
      ops.push_back("decay");
    } else if (r < 99) {
      ops.push_back(absl::StrFormat("convert %d %d", rng.Uniform(8192), rng.Uniform(3)));
    } else {
      ops.push_back(absl::StrFormat("unreserve %d %d", rng.Uniform(3), rng.Uniform(2)));
    }
  }
  return ops;
}

std::string SaveFailure(const std::vector<std::string>& ops, const std::string& name) {
  const char* dir = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  std::string path = absl::StrCat(dir ? dir : "/tmp", "/fraglab_sim_regression_", name, ".ops");
  std::ofstream out(path);
  for (const auto& l : ops) out << l << "\n";
  return path;
}

const char* kMachines[] = {
    "machine legacy 0 static 1",  "machine hygiene 0 static 1", "machine claim 0 static 1",
    "machine legacy 1 static 2",  "machine hygiene 1 auto 2",   "machine claim 1 auto 2",
    "machine claim 1 static 3",   "machine claim 1 auto 2 defrag",
};

TEST(SimRandom, InvariantsHoldAfterEveryStep) {
  for (const char* m : kMachines) {
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      std::vector<std::string> ops = RandomOps(m, seed, 4000);
      RunResult r = RunOps(ops);
      if (!r.status.ok()) {
        std::string name = absl::StrCat(absl::StrReplaceAll(m, {{" ", "_"}}), "_seed", seed);
        ops.resize(r.failed_step + 1);
        ADD_FAILURE() << m << " seed " << seed << ": " << r.status << "\nsequence saved to "
                      << SaveFailure(ops, name) << " (add it to tests/fixtures/sim/regressions/)";
      }
    }
  }
}

TEST(SimRandom, RegressionInputsStillPass) {
  std::string dir = std::string(FRAGLAB_FIXTURE_DIR) + "/sim/regressions";
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".ops") continue;
    std::ifstream in(entry.path());
    std::vector<std::string> ops;
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && line[0] != '#') ops.push_back(line);
    ASSERT_FALSE(ops.empty()) << entry.path();
    RunResult r = RunOps(ops);
    EXPECT_TRUE(r.status.ok()) << entry.path() << ": " << r.status;
    ++n;
  }
  EXPECT_GT(n, 0) << "no regression inputs in " << dir;
}

TEST(SimDeterminism, SameSequenceSameBytes) {
  for (const char* m : kMachines) {
    std::vector<std::string> ops = RandomOps(m, 42, 4000);
    RunResult a = RunOps(ops), b = RunOps(ops);
    ASSERT_TRUE(a.status.ok()) << a.status;
    EXPECT_GT(a.events, 1000u);
    // The sequences are meant to exercise fragmenting fallbacks.
    EXPECT_GT(a.extfrag[FL_EXTFRAG_STEAL] + a.extfrag[FL_EXTFRAG_POLLUTE], 0u) << m;
    std::printf("%s: %llu events, extfrag claim %llu steal %llu pollute %llu\n", m,
                (unsigned long long)a.events, (unsigned long long)a.extfrag[0],
                (unsigned long long)a.extfrag[1], (unsigned long long)a.extfrag[2]);
    EXPECT_EQ(a.hash, b.hash) << m;
    EXPECT_EQ(a.events, b.events) << m;
  }
}

// Pinned hashes: a Debug and a Release build (and any compiler flags) must
// produce the same bytes. Regenerate deliberately when behaviour changes:
// the failure message prints the line to put in the golden file.
TEST(SimDeterminism, MatchesGoldenAcrossBuilds) {
  std::ifstream in(std::string(FRAGLAB_FIXTURE_DIR) + "/sim/determinism_golden.txt");
  std::map<std::string, std::string> golden;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    size_t bar = line.find('|');
    if (bar != std::string::npos) golden[line.substr(0, bar)] = line.substr(bar + 1);
  }
  for (const char* m : kMachines) {
    RunResult r = RunOps(RandomOps(m, 42, 4000));
    std::string got = absl::StrFormat("%016x %d", r.hash, r.events);
    EXPECT_EQ(golden[m], got) << "golden line: " << m << "|" << got;
  }
}

}  // namespace
}  // namespace fraglab::sim
