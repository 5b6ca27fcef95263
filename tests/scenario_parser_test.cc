// Scenario parser: the model it builds, defaults, repeat expansion, and one
// bad file per error class (tests/fixtures/scenarios/) whose message must
// name the exact file:line:col and field. Also: every shipped scenario
// (scenarios/**/*.toml) must parse.
#include "common/scenario_parser.h"

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/scenario.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fraglab::scenario {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

absl::StatusOr<Scenario> Parse(const std::string& text) {
  return ParseScenarioString(text, "test.toml");
}

// Phases both "every operation" tests use: an mTHP anon region and a stride
// release of it, an XFS page cache phase, and raw alloc/free of tagged blocks.
constexpr const char* kAnonAndStrideRelease = R"([[phases]]
op = "anon"
tag = "a"
size = "25%"
page_size = "mthp:64KiB"
touch = "reverse"
[[phases]]
op = "release"
region = "a"
pattern = "stride"
stride = "2MiB"
length = "512 pages"
unit = "4k"
method = "pageout"
)";
constexpr const char* kXfsPagecache = R"([[phases]]
op = "pagecache"
fs = { type = "xfs", block_size = "16KiB", size = "1GiB" }
size = "256MiB"
files = 4
mode = "read"
cycles = 3
fadvise = "dontneed"
)";
constexpr const char* kAllocAndFreeBlocks = R"([[phases]]
op = "alloc"
count = 3
order = 2
gfp = "GFP_HIGHUSER_MOVABLE|__GFP_COMP"
zone = "DMA32"
cpu = 1
tag = "blocks"
[[phases]]
op = "free"
tag = "blocks"
pattern = "last"
k = 2
cpu = 1
)";

std::string ErrorOf(const std::string& text) {
  absl::StatusOr<Scenario> s = Parse(text);
  EXPECT_FALSE(s.ok()) << "expected an error for:\n" << text;
  return s.ok() ? std::string() : std::string(s.status().message());
}

TEST(ScenarioParserTest, MinimalScenarioHasDocumentedDefaults) {
  absl::StatusOr<Scenario> s = Parse("name = \"m\"\n[[phases]]\nop = \"compact\"\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->name, "m");
  EXPECT_EQ(s->description, "");
  EXPECT_EQ(s->seed, 0u);
  EXPECT_EQ(s->source_file, "test.toml");
  EXPECT_EQ(s->machine.memory_bytes, uint64_t{24} << 30);
  EXPECT_EQ(s->machine.cpus, 2);
  EXPECT_EQ(s->machine.nodes, 1);
  EXPECT_EQ(s->machine.era, Era::kClaim);
  EXPECT_FALSE(s->machine.cma);
  EXPECT_TRUE(s->machine.pcp);
  EXPECT_EQ(s->machine.pcp_tuning, PcpTuning::kAuto);
  EXPECT_TRUE(s->machine.zones.empty());
  EXPECT_EQ(s->machine.vm.min_free_kbytes, 67584);
  EXPECT_EQ(s->machine.vm.watermark_boost_factor, 15000);
  EXPECT_EQ(s->machine.thp.enabled, ThpEnabled::kMadvise);
  EXPECT_EQ(s->budget.memory, Size::Percent(50000));
  EXPECT_EQ(s->budget.max_duration, absl::Minutes(10));
  ASSERT_EQ(s->phases.size(), 1u);
  const Phase& p = std::get<Phase>(s->phases[0].node);
  EXPECT_EQ(KindOf(p.op), OpKind::kCompact);
  EXPECT_EQ(p.path, "phases[0]");
  EXPECT_EQ(p.pos.line, 2);
}

TEST(ScenarioParserTest, DefaultZoneLayoutFollowsKernelBoundaries) {
  std::vector<ZoneSpec> zones = DefaultZoneLayout(uint64_t{24} << 30, 1);
  ASSERT_EQ(zones.size(), 3u);
  EXPECT_EQ(zones[0], (ZoneSpec{ZoneType::kDma, 0, 0, 4096}));
  EXPECT_EQ(zones[1], (ZoneSpec{ZoneType::kDma32, 0, 4096, 0x100000}));
  EXPECT_EQ(zones[2], (ZoneSpec{ZoneType::kNormal, 0, 0x100000, 0x600000}));

  zones = DefaultZoneLayout(uint64_t{1} << 30, 1);  // 1 GiB: no Normal zone
  ASSERT_EQ(zones.size(), 2u);
  EXPECT_EQ(zones[1].end_pfn, 0x40000u);

  zones = DefaultZoneLayout(uint64_t{16} << 30, 2);
  ASSERT_EQ(zones.size(), 4u);
  EXPECT_EQ(zones[3], (ZoneSpec{ZoneType::kNormal, 1, 0x200000, 0x400000}));
}

TEST(ScenarioParserTest, ExplicitZonesSetMemoryAndNodes) {
  absl::StatusOr<Scenario> s = Parse(R"(
name = "tiny"
[machine]
cpus = 1
pcp = false
[[machine.zones]]
name = "DMA32"
size = "8MiB"
[[machine.zones]]
name = "Normal"
start_pfn = 4096
end_pfn = 6144
[[machine.zones]]
name = "Normal"
node = 1
size = "4MiB"
[[phases]]
op = "alloc"
zone = "DMA32"
node = 0
)");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->machine.zones.size(), 3u);
  EXPECT_EQ(s->machine.zones[0], (ZoneSpec{ZoneType::kDma32, 0, 0, 2048}));
  EXPECT_EQ(s->machine.zones[1], (ZoneSpec{ZoneType::kNormal, 0, 4096, 6144}));
  // A zone without start_pfn starts where the previous one ended.
  EXPECT_EQ(s->machine.zones[2], (ZoneSpec{ZoneType::kNormal, 1, 6144, 7168}));
  EXPECT_EQ(s->machine.nodes, 2);
  EXPECT_EQ(s->machine.memory_bytes, uint64_t{5120} * 4096);
  EXPECT_EQ(ResolvedZones(s->machine), s->machine.zones);
}

TEST(ScenarioParserTest, EveryOperationParses) {
  absl::StatusOr<Scenario> s = Parse(R"(
name = "all-ops"
description = "every op"
seed = 42
[machine]
cma = true
[machine.vm]
defrag_mode = 1
[machine.thp]
defrag = "defer+madvise"
[machine.thp.mthp]
64KiB = "always"
16KiB = "never"
[budget]
memory = "2GiB"
max_duration = "90s"
)" + std::string(kAnonAndStrideRelease) + R"([[phases]]
op = "pin"
kind = "longterm"
size = "1M"
tag = "p"
[[phases]]
op = "slab"
kind = "inode"
count = 1000
)" + kXfsPagecache + R"([[phases]]
op = "pagecache"
path = "/var/tmp"
size = "1MiB"
[[phases]]
op = "thp"
action = "collapse"
region = "a"
[[phases]]
op = "probe"
kind = "thp"
count = 8
page_size = "mthp:1MiB"
[[phases]]
op = "compact"
node = 0
[[phases]]
op = "drop_caches"
what = "slab"
[[phases]]
op = "snapshot"
label = "mid"
[[phases]]
op = "hold"
duration = "250ms"
[[phases]]
op = "sysctl"
setting = "thp.mthp.2MiB"
value = "always"
[[phases]]
op = "sysctl"
setting = "thp.mthp.128KiB"
value = "inherit"
)" + kAllocAndFreeBlocks + R"([[phases]]
op = "expect"
check = "fallback"
alloc_order = 0
fallback_order = 9
alloc_migratetype = "unmovable"
fallback_migratetype = "movable"
change_ownership = true
class = "claim"
min = 1
)");
  ASSERT_FALSE(s.ok());
  // thp.mthp.2MiB is the PMD size, not an mTHP size.
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("field 'phases[12].setting'"));
}

TEST(ScenarioParserTest, EveryOperationParsesAndBuildsTheModel) {
  absl::StatusOr<Scenario> s = Parse(R"(
name = "all-ops"
seed = 42
[machine]
cma = true
[machine.thp.mthp]
64KiB = "always"
16KiB = "never"
[budget]
memory = "2GiB"
max_duration = "90s"
)" + std::string(kAnonAndStrideRelease) + kXfsPagecache + R"([[phases]]
op = "sysctl"
setting = "vm.watermark_boost_factor"
value = 0
)" + kAllocAndFreeBlocks + R"([[phases]]
op = "expect"
check = "pageblocks"
zone = "Normal"
migratetype = "cma"
max = 4
)");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->seed, 42u);
  EXPECT_EQ(s->machine.thp.mthp.size(), 1u);  // "never" is the absent state
  EXPECT_EQ(s->machine.thp.mthp.at(4), MthpEnabled::kAlways);
  EXPECT_EQ(s->budget.memory, Size::Bytes(uint64_t{2} << 30));
  EXPECT_EQ(s->budget.max_duration, absl::Seconds(90));
  std::vector<ExpandedPhase> run = Expand(*s);
  ASSERT_EQ(run.size(), 7u);

  const auto& anon = std::get<AnonOp>(run[0].phase->op);
  EXPECT_EQ(anon.size, Size::Percent(25000));
  EXPECT_EQ(anon.page_size, PageSize::Mthp(4));
  EXPECT_EQ(anon.touch, TouchOrder::kReverse);

  const auto& rel = std::get<ReleaseOp>(run[1].phase->op);
  EXPECT_EQ(rel.pattern, ReleasePattern::kStride);
  EXPECT_EQ(rel.length, Size::Pages(512));
  EXPECT_EQ(rel.unit, Size::Bytes(4096));
  EXPECT_EQ(rel.method, ReleaseMethod::kPageout);

  const auto& pc = std::get<PagecacheOp>(run[2].phase->op);
  ASSERT_TRUE(pc.fs.has_value());
  EXPECT_EQ(pc.fs->type, FsType::kXfs);
  EXPECT_EQ(pc.fs->block_size, 16384u);
  EXPECT_EQ(pc.fs->size, Size::Bytes(uint64_t{1} << 30));
  EXPECT_EQ(pc.cycles, 3u);
  EXPECT_EQ(pc.fadvise, Fadvise::kDontneed);

  EXPECT_EQ(std::get<SysctlOp>(run[3].phase->op).value, "0");

  const auto& alloc = std::get<AllocOp>(run[4].phase->op);
  ASSERT_TRUE(alloc.gfp.has_value());
  EXPECT_EQ(alloc.gfp->value, 0x100CCAu | 0x40000u);
  EXPECT_EQ(alloc.gfp->text, "GFP_HIGHUSER_MOVABLE | __GFP_COMP");
  EXPECT_EQ(GfpMigratetype(alloc.gfp->value), Migratetype::kMovable);
  EXPECT_EQ(alloc.zone, ZoneType::kDma32);
  EXPECT_TRUE(IsSimulatorOnly(run[4].phase->op));
  EXPECT_FALSE(IsSimulatorOnly(run[0].phase->op));

  const auto& fr = std::get<FreeOp>(run[5].phase->op);
  EXPECT_EQ(fr.pattern, FreePattern::kLast);
  EXPECT_EQ(fr.k, 2u);

  const auto& ex = std::get<ExpectOp>(run[6].phase->op);
  const auto& pb = std::get<ExpectPageblocks>(ex.check);
  EXPECT_EQ(pb.migratetype, Migratetype::kCma);
  EXPECT_EQ(pb.bound.max, 4u);
  EXPECT_EQ(MigratetypeNumber(Migratetype::kIsolate, true), 5);
  EXPECT_EQ(MigratetypeNumber(Migratetype::kIsolate, false), 4);
}

TEST(ScenarioParserTest, RepeatGroupsExpandWithLabels) {
  absl::StatusOr<Scenario> s = Parse(R"(
name = "r"
[[phases]]
op = "anon"
tag = "a"
size = "1MiB"
[[phases]]
op = "repeat"
count = 2
  [[phases.phases]]
  op = "snapshot"
  [[phases.phases]]
  op = "repeat"
  count = 3
    [[phases.phases.phases]]
    op = "release"
    region = "a"
    pattern = "random"
    fraction = 0.25
[[phases]]
op = "compact"
)");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(ExpandedCount(s->phases), 1u + 2 * (1 + 3) + 1);
  std::vector<ExpandedPhase> run = Expand(*s);
  ASSERT_EQ(run.size(), 10u);
  EXPECT_EQ(run[0].label, "0:anon");
  EXPECT_EQ(run[1].label, "1:snapshot[rep 1/2]");
  EXPECT_EQ(run[2].label, "2:release[rep 1/2, rep 1/3]");
  EXPECT_EQ(run[4].label, "4:release[rep 1/2, rep 3/3]");
  EXPECT_EQ(run[5].label, "5:snapshot[rep 2/2]");
  EXPECT_EQ(run[8].label, "8:release[rep 2/2, rep 3/3]");
  EXPECT_EQ(run[9].label, "9:compact");
  EXPECT_EQ(run[2].phase, run[7].phase);  // same declared phase
  EXPECT_EQ(run[2].phase->path, "phases[1].phases[1].phases[0]");
  EXPECT_EQ(run[2].reps.size(), 2u);
  EXPECT_EQ(run[3].reps[1].rep, 2u);

  // Run-time messages point back at the declared field.
  EXPECT_EQ(DescribeField(*s, *run[2].phase, "fraction"),
            "test.toml:19:16: field 'phases[1].phases[1].phases[0].fraction'");
  EXPECT_EQ(std::string(FieldError(*s, *run[2].phase, "fraction", "too big").message()),
            "test.toml:19:16: field 'phases[1].phases[1].phases[0].fraction': too big");
  // A field not written falls back to the phase's own position.
  EXPECT_EQ(DescribeField(*s, *run[0].phase, "touch"), "test.toml:3:1: field 'phases[0].touch'");
}

TEST(ScenarioParserTest, RepeatLimits) {
  std::string deep = "name = \"d\"\n";
  std::string table = "phases";
  for (int i = 0; i < kMaxRepeatDepth + 1; ++i) {
    absl::StrAppend(&deep, "[[", table, "]]\nop = \"repeat\"\ncount = 1\n");
    table += ".phases";
  }
  absl::StrAppend(&deep, "[[", table, "]]\nop = \"compact\"\n");
  EXPECT_THAT(ErrorOf(deep), HasSubstr("nested more than 8 deep"));

  EXPECT_THAT(ErrorOf(R"(
name = "big"
[[phases]]
op = "repeat"
count = 1000000
  [[phases.phases]]
  op = "repeat"
  count = 1000
    [[phases.phases.phases]]
    op = "compact"
)"),
              StartsWith("test.toml:3:1: field 'phases': repeat groups expand to 1000000000 "
                         "phases (allowed: at most 1000000)"));
}

TEST(ScenarioParserTest, TagsMayBeRedeclaredByTheSameKind) {
  absl::StatusOr<Scenario> s = Parse(R"(
name = "t"
[[phases]]
op = "repeat"
count = 3
  [[phases.phases]]
  op = "alloc"
  tag = "x"
  [[phases.phases]]
  op = "free"
  tag = "x"
  pattern = "random"
  fraction = 0.5
)");
  EXPECT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(ErrorOf(R"(
name = "t"
[[phases]]
op = "alloc"
tag = "x"
[[phases]]
op = "pin"
kind = "pipe"
size = "1MiB"
tag = "x"
)"),
              StartsWith("test.toml:10:7: field 'phases[1].tag': tag 'x' already names alloc "
                         "memory (declared at test.toml:5)"));
}

TEST(ScenarioParserTest, SysctlOperationValidatesAgainstTheSettingTable) {
  EXPECT_TRUE(Parse("name=\"s\"\n[[phases]]\nop=\"sysctl\"\nsetting=\"thp.defrag\"\n"
                    "value=\"defer+madvise\"\n")
                  .ok());
  EXPECT_THAT(ErrorOf("name=\"s\"\n[[phases]]\nop=\"sysctl\"\nsetting=\"thp.enabled\"\n"
                      "value=\"sometimes\"\n"),
              HasSubstr("field 'phases[0].value': setting 'thp.enabled': unknown value "
                        "'sometimes' (allowed: always, madvise, never)"));
  EXPECT_THAT(ErrorOf("name=\"s\"\n[[phases]]\nop=\"sysctl\"\nsetting=\"vm.defrag_mode\"\n"
                      "value=\"01\"\n"),
              HasSubstr("is not an integer"));
  EXPECT_THAT(ErrorOf("name=\"s\"\n[[phases]]\nop=\"sysctl\"\n"
                      "setting=\"vm.percpu_pagelist_high_fraction\"\nvalue=4\n"),
              HasSubstr("allowed: 0 or 8.."));
  SimMachineSpec m;
  EXPECT_TRUE(ApplySysctl(m, "vm.extfrag_threshold", "-1000").ok());
  EXPECT_EQ(m.vm.extfrag_threshold, -1000);
  EXPECT_TRUE(ApplySysctl(m, "thp.mthp.64KiB", "madvise").ok());
  EXPECT_EQ(m.thp.mthp.at(4), MthpEnabled::kMadvise);
  EXPECT_TRUE(ApplySysctl(m, "thp.mthp.64KiB", "never").ok());
  EXPECT_TRUE(m.thp.mthp.empty());
}

TEST(ScenarioParserTest, GfpParsing) {
  absl::StatusOr<Gfp> g = ParseGfp("GFP_KERNEL");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->value, kGfpKernel);
  EXPECT_EQ(GfpMigratetype(g->value), Migratetype::kUnmovable);
  g = ParseGfp(" 0x10 |GFP_NOFS ");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->text, "0x10 | GFP_NOFS");
  EXPECT_EQ(GfpMigratetype(g->value), Migratetype::kReclaimable);
  g = ParseGfp("3264");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->value, 0xcc0u);
  EXPECT_EQ(g->text, "0xcc0");
  EXPECT_FALSE(ParseGfp("").ok());
  EXPECT_FALSE(ParseGfp("GFP_KERNEL||__GFP_COMP").ok());
  EXPECT_FALSE(ParseGfp("0xzz").ok());
  EXPECT_FALSE(ParseGfp("__GFP_DMA | __GFP_DMA32").ok());
  // Integer gfp in TOML.
  absl::StatusOr<Scenario> s =
      Parse("name=\"g\"\n[[phases]]\nop=\"alloc\"\ngfp=3264\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(std::get<AllocOp>(std::get<Phase>(s->phases[0].node).op).gfp->value, 0xcc0u);
}

TEST(ScenarioParserTest, CollectsSeveralErrors) {
  std::string msg = ErrorOf(R"(
name = "e"
[[phases]]
op = "bogus1"
[[phases]]
op = "bogus2"
)");
  std::vector<std::string> lines = absl::StrSplit(msg, '\n');
  ASSERT_EQ(lines.size(), 2u) << msg;
  EXPECT_THAT(lines[0], StartsWith("test.toml:4:6: field 'phases[0].op'"));
  EXPECT_THAT(lines[1], StartsWith("test.toml:6:6: field 'phases[1].op'"));
}

TEST(ScenarioParserTest, EveryErrorStaysOnOneLine) {
  // A user string with a newline, and a toml++ message quoting one.
  EXPECT_THAT(ErrorOf("name = \"x\"\n[[phases]]\nop = \"an\\non\"\n"),
              HasSubstr("unknown value 'an\\non'"));
  std::string msg = ErrorOf("name = \"x\"\n[[phases]]\nop = n\non\"a\"");
  EXPECT_THAT(msg, StartsWith("test.toml:3:7: TOML syntax error: "));
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(ScenarioParserTest, FileNotFound) {
  absl::StatusOr<Scenario> s = ParseScenarioFile("/nonexistent/dir/x.toml");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("/nonexistent/dir/x.toml"));
}

// ---------------------------------------------------------------------------
// One fixture per error class.

struct BadFile {
  const char* file;
  int line;
  int column;
  const char* field;  // "" for errors that are not about a field (syntax)
  const char* text;   // must appear after the prefix
};

const BadFile kBadFiles[] = {
    {"syntax-error.toml", 2, 0, "", "TOML syntax error"},
    {"unknown-top-field.toml", 2, 1, "descripton",
     "unknown field (allowed here: name, description, seed, machine, budget, phases)"},
    {"unknown-phase-field.toml", 5, 1, "phases[0].szie",
     "unknown field (allowed here: op, tag, size, page_size, touch)"},
    {"unknown-op.toml", 7, 6, "phases[1].op", "unknown value 'anonn' (allowed: anon, release,"},
    {"unknown-enum-value.toml", 18, 11, "phases[3].pattern",
     "unknown value 'evry-nth' (allowed: every-nth, random, stride, whole)"},
    {"missing-field.toml", 3, 1, "phases[0].size", "missing (required)"},
    {"missing-name.toml", 1, 1, "name", "missing (required)"},
    {"wrong-type.toml", 6, 9, "phases[0].count", "expected an integer, got a string"},
    {"out-of-range.toml", 5, 9, "phases[0].order", "value 11 out of range (allowed: 0..10)"},
    {"bad-size-unit.toml", 6, 8, "phases[0].size", "unit 'KB' is ambiguous"},
    {"percent-not-allowed.toml", 4, 10, "machine.memory", "a percentage is not allowed here"},
    {"zero-size.toml", 5, 8, "phases[0].size", "size must be greater than 0"},
    {"bad-mthp-size.toml", 6, 13, "phases[0].page_size",
     "mTHP size '12KiB' is not a power of two from 8KiB to 1MiB"},
    {"bad-era.toml", 4, 7, "machine.era", "unknown value 'CLAM' (allowed: LEGACY, HYGIENE, CLAIM)"},
    {"unknown-tag.toml", 10, 10, "phases[1].region",
     "unknown tag 'fil' (allowed: a tag of an earlier anon/pin/slab/pagecache phase: fill)"},
    {"tag-declared-later.toml", 6, 10, "phases[0].region",
     "unknown tag 'later' (allowed: a tag of an earlier anon phase: none declared so far)"},
    {"tag-wrong-kind.toml", 10, 7, "phases[1].tag",
     "tag 'fill' names anon memory (allowed: a tag of an earlier alloc phase)"},
    {"field-not-in-pattern.toml", 13, 12, "phases[1].fraction",
     "not used by pattern 'every-nth' (its fields: n, offset)"},
    {"fraction-range.toml", 12, 12, "phases[1].fraction",
     "value 1.5 out of range (allowed: 0 < fraction <= 1)"},
    {"cpu-not-on-machine.toml", 8, 7, "phases[0].cpu",
     "cpu 2 does not exist (allowed: 0..1; machine.cpus = 2)"},
    {"zone-not-on-machine.toml", 8, 8, "phases[0].zone",
     "zone DMA32 does not exist on node 0 of the machine (allowed: Normal)"},
    {"dma-zone-too-big.toml", 7, 11, "machine.zones[0].end_pfn",
     "DMA zone ends at pfn 5000 (allowed: DMA ends at or below pfn 4096, 16MiB)"},
    {"zones-out-of-order.toml", 8, 8, "machine.zones[1].name",
     "zone DMA32 on node 0 must come after Normal"},
    {"memory-vs-zones.toml", 4, 10, "machine.memory",
     "memory 1GiB differs from the zones' total 16MiB"},
    {"bad-gfp.toml", 5, 7, "phases[0].gfp", "unknown flag '__GFP_MOVEABLE' (allowed: numbers and"},
    {"gfp-two-types.toml", 5, 7, "phases[0].gfp",
     "__GFP_MOVABLE and __GFP_RECLAIMABLE together name no migratetype"},
    {"unknown-sysctl.toml", 5, 11, "phases[0].setting",
     "unknown setting 'vm.watermark_boost' (allowed: vm.min_free_kbytes,"},
    {"sysctl-value-range.toml", 6, 9, "phases[0].value",
     "setting 'vm.compaction_proactiveness': value 101 out of range (allowed: 0..100)"},
    {"machine-vm-unknown.toml", 5, 1, "machine.vm.swappiness",
     "unknown field (allowed here: min_free_kbytes,"},
    {"bad-duration.toml", 5, 12, "phases[0].duration", "unknown unit 'sec'"},
    {"repeat-without-phases.toml", 3, 1, "phases[0].phases",
     "missing (required; the phases op 'repeat' repeats)"},
    {"nested-error.toml", 12, 10, "phases[0].phases[1].what",
     "unknown value 'everything' (allowed: pagecache, slab, all)"},
    {"last-alloc-without-alloc.toml", 5, 9, "phases[0].check",
     "'last_alloc' needs an earlier alloc phase"},
    {"cma-without-cma.toml", 7, 15, "phases[0].migratetype",
     "migratetype 'cma' needs machine.cma = true"},
    {"pagecache-path-and-fs.toml", 6, 6, "phases[0].fs", "give exactly one of path"},
    {"tmpfs-block-size.toml", 5, 37, "phases[0].fs.block_size", "tmpfs has no block size"},
    {"fs-block-size.toml", 5, 35, "phases[0].fs.block_size",
     "'12KiB' not allowed (allowed: a power of two from 512B to 64KiB)"},
    {"expect-missing-bound.toml", 3, 1, "phases[0].count",
     "missing (required; this check needs count, or min and/or max)"},
    {"no-phases.toml", 1, 1, "phases", "missing (required; at least one [[phases]] table)"},
    {"two-errors.toml", 5, 8, "phases[0].size", "unit 'GB' is ambiguous"},
};

class BadFileTest : public ::testing::TestWithParam<BadFile> {};

TEST_P(BadFileTest, ErrorNamesFileLineAndField) {
  const BadFile& bad = GetParam();
  const std::string path = absl::StrCat(FRAGLAB_FIXTURE_DIR, "/scenarios/", bad.file);
  absl::StatusOr<Scenario> s = ParseScenarioFile(path);
  ASSERT_FALSE(s.ok()) << path << " parsed but should not";
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string msg(s.status().message());
  const std::string first_line = msg.substr(0, msg.find('\n'));
  std::string prefix = absl::StrCat(path, ":", bad.line, ":");
  if (bad.column > 0) absl::StrAppend(&prefix, bad.column, ": ");
  if (*bad.field) absl::StrAppend(&prefix, "field '", bad.field, "': ");
  EXPECT_THAT(first_line, StartsWith(prefix)) << msg;
  EXPECT_THAT(first_line, HasSubstr(bad.text)) << msg;
}

std::string BadFileName(const ::testing::TestParamInfo<BadFile>& info) {
  std::string name = info.param.file;
  name = name.substr(0, name.find('.'));
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, BadFileTest, ::testing::ValuesIn(kBadFiles), BadFileName);

TEST(BadFileTest, EveryFixtureIsCovered) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(FRAGLAB_FIXTURE_DIR) / "scenarios";
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".toml") continue;
    ++files;
    bool listed = false;
    for (const BadFile& bad : kBadFiles) listed = listed || entry.path().filename() == bad.file;
    EXPECT_TRUE(listed) << entry.path() << " has no expectation in kBadFiles";
  }
  EXPECT_EQ(files, static_cast<int>(std::size(kBadFiles)));
}

TEST(BadFileTest, SecondErrorIsReportedToo) {
  const std::string path = absl::StrCat(FRAGLAB_FIXTURE_DIR, "/scenarios/two-errors.toml");
  absl::StatusOr<Scenario> s = ParseScenarioFile(path);
  ASSERT_FALSE(s.ok());
  std::vector<std::string> lines = absl::StrSplit(s.status().message(), '\n');
  ASSERT_EQ(lines.size(), 2u) << s.status();
  EXPECT_EQ(lines[1], absl::StrCat(path, ":10:9: field 'phases[1].count': value 0 out of range "
                                         "(allowed: 1..1099511627776)"));
}

// ---------------------------------------------------------------------------
// Shipped scenarios.

std::vector<std::string> ShippedScenarios() {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  for (const auto& entry :
       fs::recursive_directory_iterator(fs::path(FRAGLAB_SOURCE_DIR) / "scenarios")) {
    if (entry.path().extension() == ".toml") out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ShippedScenariosTest, AllParse) {
  std::vector<std::string> files = ShippedScenarios();
  ASSERT_GE(files.size(), 10u);  // 7 scenarios + 3 teaching examples
  for (const std::string& file : files) {
    absl::StatusOr<Scenario> s = ParseScenarioFile(file);
    EXPECT_TRUE(s.ok()) << s.status();
    if (!s.ok()) continue;
    EXPECT_FALSE(s->description.empty()) << file;
    bool sim_only = false;
    for (const ExpandedPhase& e : Expand(*s)) sim_only = sim_only || IsSimulatorOnly(e.phase->op);
    // Teaching examples are raw allocator scripts; the others run on a kernel.
    EXPECT_EQ(sim_only, absl::StrContains(file, "/teaching/")) << file;
  }
}

TEST(ShippedScenariosTest, QuickIsSmallEnoughForCi) {
  absl::StatusOr<Scenario> s =
      ParseScenarioFile(absl::StrCat(FRAGLAB_SOURCE_DIR, "/scenarios/quick.toml"));
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<uint64_t> budget = ResolveSizeBytes(s->budget.memory, 0);
  ASSERT_TRUE(budget.ok());
  EXPECT_LE(*budget, uint64_t{2} << 30);
  // A bound, not the usual time (about 40 s here): taking the arena out can
  // fault gigabytes that free page reporting gave back to the host, at
  // 4-13 s per GiB on this VM (docs/generator.md).
  EXPECT_LE(s->budget.max_duration, absl::Minutes(5));
}

}  // namespace
}  // namespace fraglab::scenario
