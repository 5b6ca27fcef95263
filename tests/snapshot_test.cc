// MachineSnapshot assembly from fixture trees, its schema records, trace
// header, JSON and text renderings.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/event_sink.h"
#include "common/frag_index.h"
#include "common/snapshot_machine.h"
#include "common/snapshot_render.h"
#include "gtest/gtest.h"

namespace fraglab::snapshot {
namespace {

namespace fs = std::filesystem;

std::string Fixture(const std::string& kernel) { return std::string(FRAGLAB_FIXTURE_DIR) + "/proc/" + kernel; }

// A scratch copy of a fixture tree that a test may modify.
class ScratchRoot {
 public:
  explicit ScratchRoot(const std::string& kernel) {
    dir_ = fs::temp_directory_path() / ("fraglab_snapshot_test_" + std::to_string(::getpid()) + "_" + kernel);
    fs::remove_all(dir_);
    fs::copy(Fixture(kernel), dir_, fs::copy_options::recursive);
  }
  ~ScratchRoot() { fs::remove_all(dir_); }
  std::string path() const { return dir_.string(); }
  void Remove(const std::string& rel) { fs::remove(dir_ / rel); }
  void Write(const std::string& rel, const std::string& text) { std::ofstream(dir_ / rel) << text; }
  std::string Read(const std::string& rel) {
    std::ifstream in(dir_ / rel);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  fs::path dir_;
};

TEST(SnapshotTest, LiveCapture618) {
  auto s = ReadMachineSnapshot(Fixture("6.18"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->kernel_release, "6.18.44-fc-v669");
  EXPECT_EQ(s->pageblock_order, 9);
  EXPECT_EQ(s->num_orders, 11u);
  EXPECT_FALSE(s->migratetypes_inferred);
  EXPECT_TRUE(s->HasTypes());
  EXPECT_EQ(s->nr_cpus, 2u);
  ASSERT_EQ(s->zones.size(), 3u);
  const ZoneSnapshot& normal = s->zones[2];
  EXPECT_EQ(normal.name, "Normal");
  EXPECT_EQ(normal.zone_idx, 2);
  EXPECT_EQ(normal.start_pfn, 1048576u);
  EXPECT_TRUE(normal.nr_free_pages_blocks.has_value());
  EXPECT_TRUE(normal.wmark_promo.has_value());
  EXPECT_EQ(normal.unusable_index.size(), 11u);
  EXPECT_EQ(normal.pageblocks.size(), 5u);
  // Indices equal the kernel's own output of the same moment.
  for (const ZoneSnapshot& z : s->zones) {
    for (size_t k = 0; k < z.nr_free.size(); ++k) {
      EXPECT_EQ(z.unusable_index[k], procfs::UnusableIndex(z.nr_free, static_cast<unsigned>(k)));
    }
  }
  EXPECT_EQ(s->zones[0].compaction_score, procfs::ExtfragForOrder(s->zones[0].nr_free, 9));
}

TEST(SnapshotTest, TwoNodesAndSaturation61) {
  auto s = ReadMachineSnapshot(Fixture("6.1"));
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->zones.size(), 4u);
  const ZoneSnapshot& n1 = s->zones[3];
  EXPECT_EQ(n1.nid, 1);
  EXPECT_EQ(n1.zone_idx, 2);
  EXPECT_FALSE(n1.wmark_promo.has_value());
  EXPECT_FALSE(n1.nr_free_pages_blocks.has_value());
  EXPECT_EQ(n1.boost, 9216u);
  EXPECT_EQ(s->kernel_release, "6.1.192-constructed");
  auto rec = ZoneRecord(*s, 3);
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->hdr.kind, FL_EV_SNAPSHOT_ZONE);
  EXPECT_EQ(rec->hdr.size, sizeof(fl_snapshot_zone));
  EXPECT_EQ(rec->nid, 1);
  EXPECT_EQ(rec->zone_idx, 2);
  EXPECT_TRUE(rec->flags & FL_SNAP_SATURATED);
  EXPECT_FALSE(rec->flags & FL_SNAP_NO_TYPES);
  EXPECT_EQ(rec->nr_migratetypes, 5u);
  EXPECT_EQ(rec->free_by_type[0][1], 100000u);  // order 0, Movable: the kernel's cap
  EXPECT_EQ(rec->nr_free[0], 123456u + 3110 + 1204);
  EXPECT_EQ(rec->wmark_promo, 0u);
  EXPECT_EQ(rec->boost, 9216u);
  EXPECT_EQ(rec->pageblocks[1], 7390u);
  auto rec0 = ZoneRecord(*s, 0);
  ASSERT_TRUE(rec0.ok());
  EXPECT_FALSE(rec0->flags & FL_SNAP_SATURATED);
  EXPECT_FALSE(ZoneRecord(*s, 4).ok());
}

TEST(SnapshotTest, CmaNumbering) {
  auto s = ReadMachineSnapshot(Fixture("6.18-cma"));
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->migratetype_names.size(), 6u);
  EXPECT_EQ(s->migratetype_names[4], "CMA");
  EXPECT_EQ(s->migratetype_names[5], "Isolate");
  const ZoneSnapshot& dma32 = s->zones[1];
  EXPECT_EQ(dma32.pageblocks[4], 128u);
  EXPECT_EQ(dma32.mixed_blocks[1], 3u);
  ASSERT_TRUE(dma32.nr_free_cma.has_value());
  EXPECT_GT(*dma32.nr_free_cma, 0u);
  auto rec = ZoneRecord(*s, 1);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->nr_migratetypes, 6u);
  EXPECT_EQ(rec->pageblocks[4], 128u);
  EXPECT_EQ(rec->free_by_type[10][4], 62u);  // CMA order 10
}

TEST(SnapshotTest, WithoutPagetypeinfoInfersNumbering) {
  ScratchRoot root("6.12");
  root.Remove("proc/pagetypeinfo");
  auto s = ReadMachineSnapshot(root.path());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->HasTypes());
  EXPECT_TRUE(absl::StrContains(s->pagetypeinfo_error, "pagetypeinfo")) << s->pagetypeinfo_error;
  EXPECT_TRUE(s->migratetypes_inferred);
  // meminfo has CmaTotal: CONFIG_CMA, so Isolate is 5.
  EXPECT_EQ(s->migratetype_names,
            (std::vector<std::string>{"Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate"}));
  auto rec = ZoneRecord(*s, 2);
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->flags & FL_SNAP_NO_TYPES);
  EXPECT_EQ(rec->pageblocks[1], 0u);
  TraceHeader h = TraceHeaderFromSnapshot(*s);
  EXPECT_EQ(h.extra.count("migratetypes"), 1u);
  // The text says the per-type data is missing and still shows the rest.
  const std::string text = SnapshotText(*s);
  EXPECT_TRUE(absl::StrContains(text, "no per-migratetype data"));
  EXPECT_TRUE(absl::StrContains(text, "Node 0, zone Normal"));
}

TEST(SnapshotTest, WithoutCmaInferenceUsesIsolate4) {
  ScratchRoot root("6.18");
  root.Remove("proc/pagetypeinfo");
  auto s = ReadMachineSnapshot(root.path());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->migratetype_names.size(), 5u);
  EXPECT_EQ(s->migratetype_names[4], "Isolate");
}

TEST(SnapshotTest, BrokenFileIsAnErrorNamingIt) {
  ScratchRoot root("6.18");
  root.Write("proc/pagetypeinfo", "Page block order: 9\nPages per block:  512\nNode 0, zone DMA, type X 1\n");
  auto s = ReadMachineSnapshot(root.path());
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.status().message(), "proc/pagetypeinfo:3:")) << s.status();

  ScratchRoot root2("6.18");
  root2.Remove("proc/zoneinfo");
  s = ReadMachineSnapshot(root2.path());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
}

TEST(SnapshotTest, TooManyOrdersForTheSchema) {
  ScratchRoot root("6.18");
  root.Remove("proc/pagetypeinfo");
  std::string b;
  for (const char* zone : {"DMA", "DMA32", "Normal"}) {
    b += std::string("Node 0, zone ") + zone + " 1 1 1 1 1 1 1 1 1 1 1 1\n";
  }
  root.Write("proc/buddyinfo", b);
  auto s = ReadMachineSnapshot(root.path());
  ASSERT_TRUE(s.ok()) << s.status();
  auto rec = ZoneRecord(*s, 0);
  ASSERT_FALSE(rec.ok());
  EXPECT_TRUE(absl::StrContains(rec.status().message(), "12 orders"));
  // The text rendering still works.
  EXPECT_TRUE(absl::StrContains(SnapshotText(*s), "   11 "));
}

TEST(SnapshotTest, CountersRecord) {
  auto s = ReadMachineSnapshot(Fixture("6.18"));
  ASSERT_TRUE(s.ok());
  fl_counters c = CountersRecord(*s);
  EXPECT_EQ(c.hdr.kind, FL_EV_COUNTERS);
  EXPECT_EQ(c.hdr.size, sizeof(fl_counters));
  EXPECT_TRUE(c.present_mask & (1ull << FL_CTR_NR_FREE_PAGES));
  EXPECT_TRUE(c.present_mask & (1ull << FL_CTR_NR_FREE_PAGES_BLOCKS));
  EXPECT_EQ(c.value[FL_CTR_NR_FREE_PAGES], *s->vmstat.Get("nr_free_pages"));
  EXPECT_EQ(c.value[FL_CTR_COMPACT_STALL], *s->vmstat.Get("compact_stall"));
  EXPECT_EQ(c.value[FL_CTR_PGALLOC_NORMAL], *s->vmstat.Get("pgalloc_normal"));
  EXPECT_STREQ(CounterName(FL_CTR_THP_FAULT_ALLOC), "thp_fault_alloc");
  EXPECT_EQ(CounterName(FL_CTR_MAX), nullptr);
  for (int id = 0; id <= FL_CTR_NR_ANON_TRANSPARENT_HUGEPAGES; ++id) EXPECT_NE(CounterName(id), nullptr) << id;

  // 6.1 lacks nr_free_pages_blocks: not present, value 0.
  auto s61 = ReadMachineSnapshot(Fixture("6.1"));
  ASSERT_TRUE(s61.ok());
  fl_counters c61 = CountersRecord(*s61);
  EXPECT_FALSE(c61.present_mask & (1ull << FL_CTR_NR_FREE_PAGES_BLOCKS));
  EXPECT_EQ(c61.value[FL_CTR_NR_FREE_PAGES_BLOCKS], 0u);
}

TEST(SnapshotTest, CountersFallBackToMeminfo) {
  ScratchRoot root("6.18");
  std::string vm = root.Read("proc/vmstat");
  std::string kept;
  for (absl::string_view line : absl::StrSplit(vm, '\n')) {
    if (line.empty() || absl::StartsWith(line, "nr_slab_reclaimable ")) continue;
    kept += std::string(line) + "\n";
  }
  root.Write("proc/vmstat", kept);
  auto s = ReadMachineSnapshot(root.path());
  ASSERT_TRUE(s.ok()) << s.status();
  fl_counters c = CountersRecord(*s);
  EXPECT_TRUE(c.present_mask & (1ull << FL_CTR_NR_SLAB_RECLAIMABLE));
  EXPECT_EQ(c.value[FL_CTR_NR_SLAB_RECLAIMABLE], *s->meminfo.Get("SReclaimable") / 4);
}

TEST(SnapshotTest, EmitsZonesThenCounters) {
  auto s = ReadMachineSnapshot(Fixture("6.1"));
  ASSERT_TRUE(s.ok());
  VectorSink sink;
  ASSERT_TRUE(EmitSnapshotRecords(*s, sink).ok());
  ASSERT_EQ(sink.size(), 5u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(sink.at(i).kind, FL_EV_SNAPSHOT_ZONE);
  EXPECT_EQ(sink.at(4).kind, FL_EV_COUNTERS);
  EXPECT_EQ(sink.as<fl_snapshot_zone>(3).nid, 1);
  EXPECT_EQ(sink.at(0).ts_ns, s->monotonic_ns);
}

TEST(SnapshotTest, TraceHeader) {
  auto s = ReadMachineSnapshot(Fixture("6.12"));
  ASSERT_TRUE(s.ok());
  TraceHeader h = TraceHeaderFromSnapshot(*s);
  EXPECT_EQ(h.kernel_release, "6.12.117-constructed");
  EXPECT_EQ(h.kernel_era, "CLAIM");
  EXPECT_FALSE(h.simulated);
  EXPECT_EQ(h.nr_cpus, 4u);
  EXPECT_EQ(h.pageblock_order, 9u);
  EXPECT_EQ(h.max_order, 10u);
  ASSERT_EQ(h.zones.size(), 3u);
  EXPECT_EQ(h.zones[2].name, "Normal");
  EXPECT_EQ(h.zones[2].zone_idx, 2);
  EXPECT_EQ(h.zones[2].start_pfn, 1048576u);
  EXPECT_EQ(h.zones[2].spanned, 2097152u);
  EXPECT_EQ(h.migratetype_names.size(), 6u);
  EXPECT_TRUE(absl::StrContains(h.machine, "6.12"));
}

TEST(SnapshotTest, KernelEra) {
  EXPECT_EQ(KernelEraForRelease("6.1.0-27-amd64"), "LEGACY");
  EXPECT_EQ(KernelEraForRelease("6.9.12"), "LEGACY");
  EXPECT_EQ(KernelEraForRelease("5.15.0-100-generic"), "LEGACY");
  EXPECT_EQ(KernelEraForRelease("6.10"), "HYGIENE");
  EXPECT_EQ(KernelEraForRelease("6.12.28"), "HYGIENE");
  EXPECT_EQ(KernelEraForRelease("6.12.29"), "CLAIM");
  EXPECT_EQ(KernelEraForRelease("6.14.3-arch1"), "HYGIENE");
  EXPECT_EQ(KernelEraForRelease("6.15.0"), "CLAIM");
  EXPECT_EQ(KernelEraForRelease("6.18.44-fc-v669"), "CLAIM");
  EXPECT_EQ(KernelEraForRelease("7.0-rc1"), "CLAIM");
  EXPECT_EQ(KernelEraForRelease("garbage"), "");
}

TEST(SnapshotTest, Json) {
  auto s = ReadMachineSnapshot(Fixture("6.12"));
  ASSERT_TRUE(s.ok());
  auto j = nlohmann::json::parse(SnapshotJson(*s));
  EXPECT_EQ(j["kernel_release"], "6.12.117-constructed");
  EXPECT_EQ(j["migratetypes"][4], "CMA");
  ASSERT_EQ(j["zones"].size(), 3u);
  const auto& dma = j["zones"][0];
  EXPECT_EQ(dma["zone"], "DMA");
  EXPECT_EQ(dma["fragmentation_index_milli"][8], -500);
  EXPECT_EQ(dma["fragmentation_index_text"][8], " 0.-500");
  EXPECT_EQ(dma["unusable_index_text"][8], "1.000");
  const auto& normal = j["zones"][2];
  EXPECT_EQ(normal["free_by_type"]["HighAtomic"][3], 12);
  EXPECT_EQ(normal["pageblocks"]["Movable"], 3230);
  EXPECT_EQ(normal["watermarks"]["boost"], 7680);
  EXPECT_TRUE(normal["nr_free_pages_blocks"].is_null());
  EXPECT_TRUE(j["counters"].contains("compact_stall"));
  EXPECT_TRUE(j["pagetypeinfo_error"].is_null());
  // One-line form for streams.
  EXPECT_EQ(SnapshotJson(*s, -1).find('\n'), std::string::npos);

  auto s61 = ReadMachineSnapshot(Fixture("6.1"));
  ASSERT_TRUE(s61.ok());
  auto j61 = nlohmann::json::parse(SnapshotJson(*s61));
  EXPECT_EQ(j61["zones"][3]["saturated_orders"]["Movable"][0], 0);
  EXPECT_TRUE(j61["zones"][3]["watermarks"]["promo"].is_null());
}

TEST(SnapshotTest, TextFitsHundredColumns) {
  for (const char* kernel : {"6.1", "6.12", "6.18", "6.18-cma"}) {
    auto s = ReadMachineSnapshot(Fixture(kernel));
    ASSERT_TRUE(s.ok()) << kernel;
    const std::string text = SnapshotText(*s);
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      EXPECT_LE(line.size(), 100u) << kernel << ": " << line;
    }
    EXPECT_TRUE(absl::StrContains(text, "unusable")) << kernel;
    EXPECT_TRUE(absl::StrContains(text, "pageblocks")) << kernel;
  }
  auto s = ReadMachineSnapshot(Fixture("6.12"));
  ASSERT_TRUE(s.ok());
  const std::string text = SnapshotText(*s);
  EXPECT_TRUE(absl::StrContains(text, " 0.-500")) << text;
  EXPECT_TRUE(absl::StrContains(text, "boost 7680"));
  auto s61 = ReadMachineSnapshot(Fixture("6.1"));
  ASSERT_TRUE(s61.ok());
  EXPECT_TRUE(absl::StrContains(SnapshotText(*s61), ">100000"));
  EXPECT_TRUE(absl::StrContains(SnapshotText(*s61), "Node 1, zone Normal"));
}

}  // namespace
}  // namespace fraglab::snapshot

namespace fraglab::snapshot {
namespace {

TEST(SnapshotTest, PagetypeinfoCanBeSkipped) {
  auto s = ReadMachineSnapshot(std::string(FRAGLAB_FIXTURE_DIR) + "/proc/6.18-cma", {.pagetypeinfo = false});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->HasTypes());
  EXPECT_TRUE(absl::StrContains(s->pagetypeinfo_error, "not requested"));
  EXPECT_EQ(s->migratetype_names.size(), 6u);  // CmaTotal in meminfo
  EXPECT_TRUE(s->zones[1].free_by_type.empty());
}

}  // namespace
}  // namespace fraglab::snapshot
