// Canonical printer: parse -> print -> parse gives an equal model, and
// print(parse(print(x))) == print(x), for every shipped scenario and for
// random valid scenarios built here.
#include "common/scenario_printer.h"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/rng.h"
#include "common/scenario.h"
#include "common/scenario_parser.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fraglab::scenario {
namespace {

using ::testing::HasSubstr;

// Checks both round-trip properties for `s`; returns the printed text.
std::string ExpectRoundTrip(const Scenario& s, const std::string& what) {
  const std::string printed = PrintScenario(s);
  absl::StatusOr<Scenario> back = ParseScenarioString(printed, "printed.toml");
  EXPECT_TRUE(back.ok()) << what << ": printed form does not parse: " << back.status() << "\n"
                         << printed;
  if (!back.ok()) return printed;
  EXPECT_TRUE(*back == s) << what << ": re-parsed model differs\n" << printed;
  EXPECT_EQ(PrintScenario(*back), printed) << what;
  return printed;
}

TEST(ScenarioPrinterTest, ShippedScenariosRoundTrip) {
  namespace fs = std::filesystem;
  int n = 0;
  for (const auto& entry :
       fs::recursive_directory_iterator(fs::path(FRAGLAB_SOURCE_DIR) / "scenarios")) {
    if (entry.path().extension() != ".toml") continue;
    absl::StatusOr<Scenario> s = ParseScenarioFile(entry.path().string());
    ASSERT_TRUE(s.ok()) << s.status();
    ExpectRoundTrip(*s, entry.path().string());
    ++n;
  }
  EXPECT_GE(n, 10);
}

TEST(ScenarioPrinterTest, CanonicalForm) {
  absl::StatusOr<Scenario> s = ParseScenarioString(R"(
seed = 3
name = "c"
[budget]
max_duration = "120s"
memory = "1.5 GiB"
[machine]
cpus = 4
era = "LEGACY"
[machine.thp.mthp]
64K = "always"
[[phases]]
op = "hold"
duration = "1000ms"
[[phases]]
op = "release"
pattern = "random"
region = "x"
fraction = 0.1
)",
                                                   "c.toml");
  ASSERT_FALSE(s.ok());  // region 'x' was never declared
  s = ParseScenarioString(R"(
seed = 3
name = "c"
[budget]
max_duration = "120s"
memory = "1.5 GiB"
[machine]
cpus = 4
era = "LEGACY"
[machine.thp.mthp]
64K = "always"
[[phases]]
op = "anon"
size = "2048KiB"
tag = "x"
touch = "sequential"
[[phases]]
op = "hold"
duration = "1000ms"
[[phases]]
op = "release"
pattern = "random"
region = "x"
fraction = 0.1
)",
                          "c.toml");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(PrintScenario(*s),
            R"(name = "c"
seed = 3

[machine]
cpus = 4
era = "LEGACY"

[machine.thp.mthp]
64KiB = "always"

[budget]
memory = "1536MiB"
max_duration = "2m"

[[phases]]
op = "anon"
tag = "x"
size = "2MiB"

[[phases]]
op = "hold"
duration = "1s"

[[phases]]
op = "release"
region = "x"
pattern = "random"
fraction = 0.1
)");
}

TEST(ScenarioPrinterTest, QuotesStrings) {
  EXPECT_EQ(TomlQuote("plain"), "\"plain\"");
  EXPECT_EQ(TomlQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(TomlQuote("line1\nline2\ttab"), "\"line1\\nline2\\ttab\"");
  EXPECT_EQ(TomlQuote(std::string("\x01\x7f", 2)), "\"\\u0001\\u007F\"");
  EXPECT_EQ(TomlQuote("Größe"), "\"Größe\"");
}

// ---------------------------------------------------------------------------
// Random valid scenarios.

class RandomScenarioBuilder {
 public:
  explicit RandomScenarioBuilder(uint64_t seed) : rng_(seed) {}

  Scenario Build() {
    Scenario s;
    s.name = RandomText(true);
    s.description = rng_.Bernoulli(0.5) ? RandomText(false) : "";
    s.seed = rng_.Uniform(uint64_t{1} << 63);
    s.machine = RandomMachine();
    machine_ = s.machine;
    if (rng_.Bernoulli(0.5)) {
      s.budget.memory = RandomSize(true);
      s.budget.max_duration = RandomDuration();
    }
    int n = 1 + static_cast<int>(rng_.Uniform(12));
    for (int i = 0; i < n; ++i) s.phases.push_back(RandomStep(0));
    return s;
  }

 private:
  template <typename T>
  T Pick(std::initializer_list<T> options) {
    return *(options.begin() + rng_.Uniform(options.size()));
  }

  std::string RandomText(bool nonempty) {
    static const char* kPieces[] = {"frag", " ", "\"q\"", "\\", "\n", "\t", "ü", "λ", "#",
                                    "[x]", "=", "'", "\x01", "end"};
    std::string out;
    int n = static_cast<int>(rng_.Uniform(6)) + (nonempty ? 1 : 0);
    for (int i = 0; i < n; ++i) out += kPieces[rng_.Uniform(std::size(kPieces))];
    return out;
  }

  Size RandomSize(bool allow_percent) {
    switch (rng_.Uniform(allow_percent ? 3 : 2)) {
      case 0: return Size::Bytes(1 + rng_.Uniform(uint64_t{1} << (10 + rng_.Uniform(30))));
      case 1: return Size::Pages(1 + rng_.Uniform(1 << 20));
      default: return Size::Percent(1 + rng_.Uniform(100000));
    }
  }

  absl::Duration RandomDuration() {
    switch (rng_.Uniform(3)) {
      case 0: return absl::Milliseconds(1 + static_cast<int64_t>(rng_.Uniform(100000)));
      case 1: return absl::Seconds(1 + static_cast<int64_t>(rng_.Uniform(1000)));
      default: return absl::Nanoseconds(1 + static_cast<int64_t>(rng_.Uniform(1000000000)));
    }
  }

  PageSize RandomPageSize(bool allow_base) {
    switch (rng_.Uniform(allow_base ? 3 : 2)) {
      case 0: return PageSize::Thp();
      case 1: return PageSize::Mthp(1 + static_cast<int>(rng_.Uniform(8)));
      default: return PageSize::Base();
    }
  }

  double RandomFraction() { return 1.0 - rng_.UniformDouble(); }  // (0, 1]

  SimMachineSpec RandomMachine() {
    SimMachineSpec m;
    if (rng_.Bernoulli(0.3)) return m;
    m.cpus = 1 + static_cast<int>(rng_.Uniform(8));
    m.era = static_cast<Era>(rng_.Uniform(3));
    if (rng_.Bernoulli(0.3)) m.kernel_release = "6.18.0-test";
    m.pcp = rng_.Bernoulli(0.5);
    m.pcp_tuning = static_cast<PcpTuning>(rng_.Uniform(2));
    m.cma = rng_.Bernoulli(0.3);
    if (rng_.Bernoulli(0.4)) {
      // A tiny machine: one or two zones on one node.
      uint64_t blocks = 5 + rng_.Uniform(20);
      m.zones.push_back({ZoneType::kNormal, 0, 0, blocks * 512});
      if (rng_.Bernoulli(0.5)) {
        m.zones.insert(m.zones.begin(), {ZoneType::kDma32, 0, 0, 2048});
        m.zones[1].start_pfn = 2048;
        m.zones[1].end_pfn += 2048;
      }
      uint64_t pages = 0;
      for (const ZoneSpec& z : m.zones) pages += z.end_pfn - z.start_pfn;
      m.memory_bytes = pages * kBasePageBytes;
    } else {
      m.memory_bytes = (uint64_t{1} << 30) * (1 + rng_.Uniform(64));
      m.nodes = 1 + static_cast<int>(rng_.Uniform(2));
    }
    if (rng_.Bernoulli(0.5)) {
      m.vm.min_free_kbytes = static_cast<int64_t>(rng_.Uniform(4194305));
      m.vm.watermark_scale_factor = 1 + static_cast<int64_t>(rng_.Uniform(3000));
      m.vm.watermark_boost_factor = static_cast<int64_t>(rng_.Uniform(100000));
      m.vm.defrag_mode = static_cast<int64_t>(rng_.Uniform(2));
      m.vm.extfrag_threshold = -1000 + static_cast<int64_t>(rng_.Uniform(2001));
      m.vm.compaction_proactiveness = static_cast<int64_t>(rng_.Uniform(101));
      m.vm.percpu_pagelist_high_fraction = rng_.Bernoulli(0.5) ? 0 : 8 + rng_.Uniform(100);
    }
    m.thp.enabled = static_cast<ThpEnabled>(rng_.Uniform(3));
    m.thp.defrag = static_cast<ThpDefrag>(rng_.Uniform(5));
    for (int order = 1; order <= 8; ++order) {
      if (rng_.Bernoulli(0.3)) m.thp.mthp[order] = static_cast<MthpEnabled>(rng_.Uniform(3));
    }
    return m;
  }

  std::string Tag(OpKind kind) {
    // Reuse an existing tag of this kind sometimes (adds to the group).
    for (const auto& [tag, k] : tags_) {
      if (k == kind && rng_.Bernoulli(0.3)) return tag;
    }
    std::string tag = absl::StrCat(OpName(kind), "-", tags_.size());
    tags_[tag] = kind;
    return tag;
  }

  std::optional<std::string> ExistingTag(std::initializer_list<OpKind> kinds) {
    std::vector<std::string> found;
    for (const auto& [tag, k] : tags_) {
      for (OpKind want : kinds) {
        if (k == want) found.push_back(tag);
      }
    }
    if (found.empty()) return std::nullopt;
    return found[rng_.Uniform(found.size())];
  }

  CountBound RandomBound(bool optional) {
    CountBound b;
    switch (rng_.Uniform(optional ? 4 : 3)) {
      case 0: b.count = rng_.Uniform(1000); break;
      case 1: b.min = rng_.Uniform(10); break;
      case 2:
        b.min = rng_.Uniform(10);
        b.max = *b.min + rng_.Uniform(10);
        break;
      default: break;
    }
    return b;
  }

  Step RandomStep(int depth) {
    if (depth < 2 && rng_.Bernoulli(0.1)) {
      RepeatGroup g;
      g.count = 1 + rng_.Uniform(4);
      int n = 1 + static_cast<int>(rng_.Uniform(3));
      for (int i = 0; i < n; ++i) g.body.push_back(RandomStep(depth + 1));
      return Step{std::move(g)};
    }
    Phase p;
    p.op = RandomOp();
    return Step{std::move(p)};
  }

  Operation RandomOp() {
    for (;;) {
      switch (static_cast<OpKind>(rng_.Uniform(kNumOpKinds))) {
        case OpKind::kAnon: {
          AnonOp op;
          if (rng_.Bernoulli(0.8)) op.tag = Tag(OpKind::kAnon);
          op.size = RandomSize(true);
          op.page_size = RandomPageSize(true);
          op.touch = static_cast<TouchOrder>(rng_.Uniform(4));
          return op;
        }
        case OpKind::kRelease: {
          auto tag = ExistingTag({OpKind::kAnon, OpKind::kPin, OpKind::kSlab, OpKind::kPagecache});
          if (!tag) continue;
          ReleaseOp op;
          op.region = *tag;
          op.pattern = static_cast<ReleasePattern>(rng_.Uniform(4));
          if (op.pattern == ReleasePattern::kEveryNth) {
            op.n = 1 + rng_.Uniform(16);
            op.offset = rng_.Uniform(op.n);
          } else if (op.pattern == ReleasePattern::kRandom) {
            op.fraction = RandomFraction();
          } else if (op.pattern == ReleasePattern::kStride) {
            uint64_t stride = 1 + rng_.Uniform(1024);
            op.stride = Size::Pages(stride);
            op.length = Size::Bytes(4096 * (1 + rng_.Uniform(stride)));
          }
          if (rng_.Bernoulli(0.3)) op.unit = RandomSize(false);
          op.method = static_cast<ReleaseMethod>(rng_.Uniform(4));
          return op;
        }
        case OpKind::kPin: {
          PinOp op;
          op.kind = static_cast<PinKind>(rng_.Uniform(4));
          op.size = RandomSize(true);
          if (rng_.Bernoulli(0.5)) op.tag = Tag(OpKind::kPin);
          return op;
        }
        case OpKind::kSlab: {
          SlabOp op;
          op.kind = static_cast<SlabKind>(rng_.Uniform(2));
          op.count = 1 + rng_.Uniform(1000000);
          if (rng_.Bernoulli(0.5)) op.tag = Tag(OpKind::kSlab);
          return op;
        }
        case OpKind::kPagecache: {
          PagecacheOp op;
          if (rng_.Bernoulli(0.5)) {
            op.path = "/tmp/" + RandomText(true);
          } else {
            FsSpec fs;
            fs.type = static_cast<FsType>(rng_.Uniform(4));
            if (fs.type != FsType::kTmpfs && rng_.Bernoulli(0.5)) {
              fs.block_size = uint64_t{512} << rng_.Uniform(8);
            }
            if (rng_.Bernoulli(0.5)) fs.size = RandomSize(false);
            op.fs = fs;
          }
          op.size = RandomSize(true);
          op.files = 1 + rng_.Uniform(100);
          op.mode = static_cast<IoMode>(rng_.Uniform(2));
          op.cycles = 1 + rng_.Uniform(5);
          op.fadvise = static_cast<Fadvise>(rng_.Uniform(7));
          if (rng_.Bernoulli(0.5)) op.tag = Tag(OpKind::kPagecache);
          return op;
        }
        case OpKind::kThp: {
          auto tag = ExistingTag({OpKind::kAnon});
          if (!tag) continue;
          return ThpOp{static_cast<ThpAction>(rng_.Uniform(2)), *tag};
        }
        case OpKind::kProbe: {
          ProbeOp op;
          op.kind = static_cast<ProbeKind>(rng_.Uniform(2));
          op.count = 1 + rng_.Uniform(512);
          if (op.kind == ProbeKind::kThp) op.page_size = RandomPageSize(false);
          return op;
        }
        case OpKind::kCompact: {
          CompactOp op;
          if (rng_.Bernoulli(0.5)) op.node = static_cast<int>(rng_.Uniform(machine_.nodes));
          return op;
        }
        case OpKind::kDropCaches: return DropCachesOp{static_cast<DropWhat>(rng_.Uniform(3))};
        case OpKind::kSnapshot: return SnapshotOp{rng_.Bernoulli(0.5) ? RandomText(false) : ""};
        case OpKind::kHold: return HoldOp{RandomDuration()};
        case OpKind::kSysctl: {
          switch (rng_.Uniform(4)) {
            case 0: return SysctlOp{"vm.watermark_boost_factor", absl::StrCat(rng_.Uniform(50000))};
            case 1: return SysctlOp{"vm.extfrag_threshold",
                                    absl::StrCat(-1000 + static_cast<int64_t>(rng_.Uniform(2001)))};
            case 2: return SysctlOp{"thp.defrag", ThpDefragName(static_cast<ThpDefrag>(rng_.Uniform(5)))};
            default:
              return SysctlOp{absl::StrCat("thp.mthp.", MthpSizeName(1 + static_cast<int>(rng_.Uniform(8)))),
                              MthpEnabledName(static_cast<MthpEnabled>(rng_.Uniform(4)))};
          }
        }
        case OpKind::kAlloc: {
          AllocOp op;
          op.count = 1 + rng_.Uniform(100);
          op.order = static_cast<int>(rng_.Uniform(11));
          if (rng_.Bernoulli(0.4)) {
            op.migratetype = static_cast<Migratetype>(rng_.Uniform(3));
          } else if (rng_.Bernoulli(0.6)) {
            const char* choices[] = {"GFP_KERNEL", "GFP_HIGHUSER_MOVABLE | __GFP_COMP",
                                     "0x10 | __GFP_HIGH", "GFP_ATOMIC", "GFP_TRANSHUGE"};
            op.gfp = *ParseGfp(choices[rng_.Uniform(std::size(choices))]);
          }
          std::vector<ZoneSpec> zones = ResolvedZones(machine_);
          const ZoneSpec& z = zones[rng_.Uniform(zones.size())];
          if (rng_.Bernoulli(0.5)) {
            op.zone = z.type;
            op.node = z.node;
          }
          op.cpu = static_cast<int>(rng_.Uniform(machine_.cpus));
          if (rng_.Bernoulli(0.8)) op.tag = Tag(OpKind::kAlloc);
          seen_alloc_ = true;
          return op;
        }
        case OpKind::kFree: {
          auto tag = ExistingTag({OpKind::kAlloc});
          if (!tag) continue;
          FreeOp op;
          op.tag = *tag;
          op.pattern = static_cast<FreePattern>(rng_.Uniform(5));
          if (op.pattern == FreePattern::kEveryNth) {
            op.n = 1 + rng_.Uniform(8);
            op.offset = rng_.Uniform(op.n);
          } else if (op.pattern == FreePattern::kRandom) {
            op.fraction = RandomFraction();
          } else if (op.pattern == FreePattern::kFirst || op.pattern == FreePattern::kLast) {
            op.k = 1 + rng_.Uniform(50);
          }
          op.cpu = static_cast<int>(rng_.Uniform(machine_.cpus));
          return op;
        }
        case OpKind::kExpect: {
          ExpectOp op;
          std::vector<ZoneSpec> zones = ResolvedZones(machine_);
          const ZoneSpec& z = zones[rng_.Uniform(zones.size())];
          Migratetype mt = static_cast<Migratetype>(rng_.Uniform(6));
          if (mt == Migratetype::kCma && !machine_.cma) mt = Migratetype::kIsolate;
          switch (rng_.Uniform(4)) {
            case 0:
              op.check = ExpectFreeBlocks{z.type, z.node, static_cast<int>(rng_.Uniform(11)), mt,
                                          RandomBound(false)};
              break;
            case 1:
              op.check = ExpectPageblocks{z.type, z.node, mt, RandomBound(false)};
              break;
            case 2: {
              if (!seen_alloc_) continue;
              ExpectLastAlloc l;
              if (rng_.Bernoulli(0.5)) {
                l.failed = true;
              } else {
                l.pfn = rng_.Uniform(1 << 20);
              }
              op.check = l;
              break;
            }
            default: {
              ExpectFallback f;
              if (rng_.Bernoulli(0.5)) f.alloc_order = static_cast<int>(rng_.Uniform(5));
              if (rng_.Bernoulli(0.5)) f.fallback_order = 5 + static_cast<int>(rng_.Uniform(6));
              if (rng_.Bernoulli(0.5)) f.alloc_migratetype = Migratetype::kUnmovable;
              if (rng_.Bernoulli(0.5)) f.fallback_migratetype = Migratetype::kMovable;
              if (rng_.Bernoulli(0.5)) f.change_ownership = rng_.Bernoulli(0.5);
              if (rng_.Bernoulli(0.5)) f.fallback_class = static_cast<FallbackClass>(rng_.Uniform(3));
              f.bound = RandomBound(true);
              op.check = f;
            }
          }
          return op;
        }
      }
    }
  }

  Rng rng_;
  SimMachineSpec machine_;
  std::map<std::string, OpKind> tags_;
  bool seen_alloc_ = false;
};

void CountKinds(const std::vector<Step>& steps, std::vector<int>& kinds, int& groups) {
  for (const Step& step : steps) {
    if (const auto* p = std::get_if<Phase>(&step.node)) {
      ++kinds[static_cast<int>(KindOf(p->op))];
    } else {
      ++groups;
      CountKinds(std::get<RepeatGroup>(step.node).body, kinds, groups);
    }
  }
}

TEST(ScenarioPrinterTest, RandomValidScenariosRoundTrip) {
  std::vector<int> kinds(kNumOpKinds, 0);
  int groups = 0;
  int explicit_zones = 0;
  for (uint64_t seed = 1; seed <= 500; ++seed) {
    Scenario s = RandomScenarioBuilder(seed).Build();
    CountKinds(s.phases, kinds, groups);
    explicit_zones += s.machine.zones.empty() ? 0 : 1;
    ExpectRoundTrip(s, absl::StrCat("random scenario seed ", seed));
    if (HasFailure()) break;  // one printed example is enough to debug
  }
  // The generator must reach every operation kind and the tree shapes.
  for (int k = 0; k < kNumOpKinds; ++k) {
    EXPECT_GT(kinds[k], 10) << OpName(static_cast<OpKind>(k));
  }
  EXPECT_GT(groups, 50);
  EXPECT_GT(explicit_zones, 50);
}

TEST(ScenarioPrinterTest, PrintedFormKeepsSimulatorOnlyPhases) {
  absl::StatusOr<Scenario> s = ParseScenarioString(R"(
name = "raw"
[machine]
cpus = 1
pcp = false
zones = [{ name = "Normal", size = "16MiB" }]
[[phases]]
op = "alloc"
count = 8
order = 9
migratetype = "movable"
tag = "blocks"
[[phases]]
op = "alloc"
gfp = 3264
[[phases]]
op = "free"
tag = "blocks"
pattern = "every-nth"
n = 2
)",
                                                   "raw.toml");
  ASSERT_TRUE(s.ok()) << s.status();
  const std::string printed = PrintScenario(*s);
  EXPECT_THAT(printed, HasSubstr("op = \"alloc\"\ncount = 8\norder = 9\nmigratetype = \"movable\""));
  EXPECT_THAT(printed, HasSubstr("[[machine.zones]]\nname = \"Normal\"\nstart_pfn = 0\nend_pfn = 4096"));
  EXPECT_THAT(printed, HasSubstr("gfp = \"0xcc0\""));
  EXPECT_THAT(printed, HasSubstr("op = \"free\"\ntag = \"blocks\"\npattern = \"every-nth\"\nn = 2\n"));
  ExpectRoundTrip(*s, "raw");
}

}  // namespace
}  // namespace fraglab::scenario
