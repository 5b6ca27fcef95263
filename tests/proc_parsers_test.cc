// Parsers of /proc/{buddyinfo,pagetypeinfo,zoneinfo,vmstat,meminfo} and the
// debugfs extfrag files, on inline text and on the captured/constructed
// fixtures of several kernels (tests/fixtures/proc/README.md).
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "common/frag_index.h"
#include "common/proc_buddyinfo.h"
#include "common/proc_extfrag.h"
#include "common/proc_file.h"
#include "common/proc_meminfo.h"
#include "common/proc_pagetypeinfo.h"
#include "common/proc_vmstat.h"
#include "common/proc_zoneinfo.h"
#include "gtest/gtest.h"

namespace fraglab::procfs {
namespace {

std::string Fixture(const std::string& kernel) { return std::string(FRAGLAB_FIXTURE_DIR) + "/proc/" + kernel; }

TEST(ProcFileTest, PathUnderRoot) {
  EXPECT_EQ(PathUnderRoot("/", "/proc/buddyinfo"), "/proc/buddyinfo");
  EXPECT_EQ(PathUnderRoot("", "/proc/buddyinfo"), "/proc/buddyinfo");
  EXPECT_EQ(PathUnderRoot("/a/b/", "/proc/x"), "/a/b/proc/x");
  EXPECT_EQ(PathUnderRoot("rel", "/proc/x"), "rel/proc/x");
}

TEST(ProcFileTest, MissingFileIsNotFoundNamingPath) {
  auto r = ReadWholeFile("/nonexistent/fraglab/file");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "/nonexistent/fraglab/file"));
}

// ---- buddyinfo ----

TEST(BuddyInfoTest, ParsesLiveCapture) {
  auto b = ReadBuddyInfo(Fixture("6.18"));
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->zones.size(), 3u);
  EXPECT_EQ(b->num_orders(), 11u);
  EXPECT_EQ(b->zones[0].zone, "DMA");
  EXPECT_EQ(b->zones[0].nr_free[10], 3u);
  EXPECT_EQ(b->zones[1].zone, "DMA32");
  EXPECT_EQ(b->zones[1].nr_free[10], 752u);
  ASSERT_NE(b->Find(0, "Normal"), nullptr);
  EXPECT_EQ(b->Find(1, "Normal"), nullptr);
}

TEST(BuddyInfoTest, TwoNodes) {
  auto b = ReadBuddyInfo(Fixture("6.1"));
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->zones.size(), 4u);
  const BuddyZone* n1 = b->Find(1, "Normal");
  ASSERT_NE(n1, nullptr);
  EXPECT_EQ(n1->nr_free[0], 123456u + 3110 + 1204);
}

TEST(BuddyInfoTest, TwelveOrders) {
  // arm64 configurations can have more orders; the parser takes the count from the text.
  auto b = ParseBuddyInfo("Node 0, zone    DMA32    753    750    565    400    893    433    167     93     40     13      1     71 \n");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->num_orders(), 12u);
  EXPECT_EQ(b->zones[0].nr_free[11], 71u);
}

TEST(BuddyInfoTest, ErrorsNameFileAndLine) {
  auto r = ParseBuddyInfo("Node 0, zone DMA 1 2 3\nNode 0, zone Normal 1 2\n", "bi");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(r.status().message(), "bi:2: ")) << r.status();

  r = ParseBuddyInfo("Node 0, zone DMA 1 x 3\n", "bi");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "bi:1: order 1 count")) << r.status();

  r = ParseBuddyInfo("Nodes 0, zone DMA 1 2 3\n", "bi");
  EXPECT_FALSE(r.ok());
  r = ParseBuddyInfo("", "bi");
  EXPECT_FALSE(r.ok());
  r = ParseBuddyInfo("Node 0, zone DMA 1 2\nNode 0, zone DMA 1 2\n", "bi");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "appears twice"));
}

// ---- pagetypeinfo ----

TEST(PagetypeInfoTest, LiveCaptureWithoutCma) {
  auto p = ReadPagetypeInfo(Fixture("6.18"));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->pageblock_order, 9);
  EXPECT_EQ(p->pages_per_block, 512u);
  EXPECT_EQ(p->num_orders, 11u);
  EXPECT_EQ(p->migratetypes,
            (std::vector<std::string>{"Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"}));
  EXPECT_EQ(p->TypeNumber("Isolate"), 4);
  EXPECT_EQ(p->TypeNumber("CMA"), -1);
  const PagetypeZone* dma32 = p->Find(0, "DMA32");
  ASSERT_NE(dma32, nullptr);
  EXPECT_EQ(dma32->blocks[1], 1528u);
  EXPECT_EQ(dma32->free[1][10], 752u);
  EXPECT_FALSE(dma32->AnySaturated());
  EXPECT_FALSE(p->has_mixed_blocks);
}

TEST(PagetypeInfoTest, CmaShiftsIsolate) {
  auto p = ReadPagetypeInfo(Fixture("6.12"));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->TypeNumber("CMA"), 4);
  EXPECT_EQ(p->TypeNumber("Isolate"), 5);
  EXPECT_EQ(p->Find(0, "Normal")->free[3][3], 12u);  // HighAtomic order 3
  EXPECT_EQ(p->Find(0, "Normal")->blocks[3], 4u);
}

TEST(PagetypeInfoTest, PerNodeRepetitionAndSaturation) {
  auto p = ReadPagetypeInfo(Fixture("6.1"));
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->zones.size(), 4u);
  const PagetypeZone* n1 = p->Find(1, "Normal");
  ASSERT_NE(n1, nullptr);
  EXPECT_EQ(n1->free[1][0], kPagetypeCountCap);
  EXPECT_EQ(n1->saturated[1][0], 1);
  EXPECT_EQ(n1->saturated[1][1], 0);
  EXPECT_TRUE(n1->AnySaturated());
  EXPECT_FALSE(p->Find(0, "Normal")->AnySaturated());
  EXPECT_EQ(n1->blocks[1], 7390u);
}

TEST(PagetypeInfoTest, MixedBlocksTable) {
  auto p = ReadPagetypeInfo(Fixture("6.18-cma"));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->has_mixed_blocks);
  const PagetypeZone* dma32 = p->Find(0, "DMA32");
  ASSERT_NE(dma32, nullptr);
  EXPECT_EQ(dma32->mixed_blocks[1], 3u);
  EXPECT_EQ(dma32->blocks[4], 128u);  // CMA pageblocks
  EXPECT_EQ(dma32->blocks[5], 1u);    // isolated
  EXPECT_EQ(dma32->free[5][9], 1u);
}

TEST(PagetypeInfoTest, NoIsolateColumnAndOldTypeOrder) {
  // Without CONFIG_MEMORY_ISOLATION there is no Isolate column; pre-4.x kernels
  // ordered Reclaimable before Movable and had Reserve. Column order decides.
  const char* text =
      "Page block order: 9\n"
      "Pages per block:  512\n"
      "\n"
      "Free pages count per migrate type at order       0      1      2 \n"
      "Node    0, zone   Normal, type    Unmovable      1      2      3 \n"
      "Node    0, zone   Normal, type  Reclaimable      4      5      6 \n"
      "Node    0, zone   Normal, type      Movable      7      8      9 \n"
      "Node    0, zone   Normal, type      Reserve      0      0      1 \n"
      "\n"
      "Number of blocks type     Unmovable  Reclaimable      Movable      Reserve \n"
      "Node 0, zone   Normal           10           20           30            1 \n";
  auto p = ParsePagetypeInfo(text);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->TypeNumber("Movable"), 2);
  EXPECT_EQ(p->TypeNumber("Isolate"), -1);
  EXPECT_EQ(p->num_orders, 3u);
  EXPECT_EQ(p->zones[0].free[2][1], 8u);
  EXPECT_EQ(p->zones[0].blocks[2], 30u);
}

TEST(PagetypeInfoTest, Errors) {
  const std::string head =
      "Page block order: 9\nPages per block:  512\n\n"
      "Free pages count per migrate type at order       0      1 \n"
      "Node    0, zone   Normal, type    Unmovable      1      2 \n"
      "Node    0, zone   Normal, type      Movable      3      4 \n";
  // Block table names differ from the free table's.
  auto r = ParsePagetypeInfo(head + "\nNumber of blocks type     Movable    Unmovable \nNode 0, zone   Normal  1 2\n", "pti");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StartsWith(r.status().message(), "pti:8: ")) << r.status();
  // Wrong number of counts.
  r = ParsePagetypeInfo(head + "Node    0, zone   Normal, type  Reclaimable      3 \n", "pti");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StartsWith(r.status().message(), "pti:7: expected 2 counts")) << r.status();
  // Saturation marker on garbage.
  r = ParsePagetypeInfo(head + "Node    0, zone   Normal, type  Reclaimable      >x 1 \n", "pti");
  EXPECT_FALSE(r.ok());
  // Missing header.
  r = ParsePagetypeInfo("Free pages count per migrate type at order 0\n", "pti");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "Page block order"));
  // Pages per block inconsistent with the order.
  r = ParsePagetypeInfo("Page block order: 9\nPages per block:  500\nFree pages count per migrate type at order 0\n", "pti");
  EXPECT_FALSE(r.ok());
  // Block-table zone missing from the free table.
  r = ParsePagetypeInfo(head + "\nNumber of blocks type     Unmovable      Movable \nNode 0, zone      DMA  1 2\n", "pti");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "not in the free table"));
}

TEST(PagetypeInfoTest, NotRootIsPermissionDenied) {
  if (geteuid() == 0) GTEST_SKIP() << "running as root: /proc/pagetypeinfo is readable";
  auto r = ReadPagetypeInfo("/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
}

// ---- zoneinfo ----

TEST(ZoneInfoTest, LiveCapture618) {
  auto zi = ReadZoneInfo(Fixture("6.18"));
  ASSERT_TRUE(zi.ok()) << zi.status();
  ASSERT_EQ(zi->zones.size(), 5u);  // DMA DMA32 Normal Movable Device
  const ZoneInfoZone* dma = zi->Find(0, "DMA");
  ASSERT_NE(dma, nullptr);
  EXPECT_EQ(dma->zone_idx, 0);
  EXPECT_EQ(dma->min, 46u);
  EXPECT_EQ(dma->promo, std::optional<uint64_t>(79));
  EXPECT_EQ(dma->spanned, 4095u);
  EXPECT_EQ(dma->protection, (std::vector<uint64_t>{0, 3019, 5451, 5451, 5451}));
  EXPECT_EQ(dma->start_pfn, std::optional<uint64_t>(1));
  ASSERT_EQ(dma->pagesets.size(), 2u);
  EXPECT_EQ(dma->pagesets[1].cpu, 1);
  EXPECT_EQ(dma->pagesets[0].high_min, std::optional<uint64_t>(28));
  EXPECT_EQ(dma->pagesets[0].high_max, std::optional<uint64_t>(240));
  EXPECT_EQ(dma->pagesets[0].stat_threshold, std::optional<uint64_t>(4));
  EXPECT_TRUE(dma->Stat("nr_free_pages_blocks").has_value());
  const ZoneInfoZone* movable = zi->Find(0, "Movable");
  ASSERT_NE(movable, nullptr);
  EXPECT_EQ(movable->zone_idx, 3);
  EXPECT_EQ(movable->present, 0u);
  EXPECT_FALSE(movable->start_pfn.has_value());
  EXPECT_TRUE(movable->pagesets.empty());
  EXPECT_EQ(zi->Find(0, "Device")->zone_idx, 4);
  EXPECT_TRUE(zi->node_stats.at(0).count("nr_inactive_anon"));
  // Per-node stats are not mixed into the zone's counters.
  EXPECT_FALSE(dma->Stat("nr_inactive_anon").has_value());
}

TEST(ZoneInfoTest, Kernel61HasNoPromoNoHighMinTwoNodes) {
  auto zi = ReadZoneInfo(Fixture("6.1"));
  ASSERT_TRUE(zi.ok()) << zi.status();
  ASSERT_EQ(zi->zones.size(), 10u);
  const ZoneInfoZone* n1 = zi->Find(1, "Normal");
  ASSERT_NE(n1, nullptr);
  EXPECT_EQ(n1->zone_idx, 2);
  EXPECT_FALSE(n1->promo.has_value());
  EXPECT_EQ(n1->boost, std::optional<uint64_t>(9216));
  ASSERT_EQ(n1->pagesets.size(), 2u);
  EXPECT_FALSE(n1->pagesets[0].high_min.has_value());
  EXPECT_EQ(n1->pagesets[0].high, 3740u);
  EXPECT_EQ(n1->pagesets[0].batch, 63u);
  EXPECT_FALSE(n1->Stat("nr_free_pages_blocks").has_value());
  EXPECT_EQ(n1->start_pfn, std::optional<uint64_t>(4194304));
  EXPECT_TRUE(zi->node_stats.count(1));
  EXPECT_EQ(n1->PcpPages(), n1->pagesets[0].count + n1->pagesets[1].count);
}

TEST(ZoneInfoTest, Kernel612HasPromo) {
  auto zi = ReadZoneInfo(Fixture("6.12"));
  ASSERT_TRUE(zi.ok()) << zi.status();
  const ZoneInfoZone* normal = zi->Find(0, "Normal");
  ASSERT_NE(normal, nullptr);
  EXPECT_TRUE(normal->promo.has_value());
  EXPECT_EQ(normal->pagesets.size(), 4u);
  EXPECT_FALSE(normal->pagesets[3].high_max.has_value());
  EXPECT_EQ(normal->boost, std::optional<uint64_t>(7680));
}

TEST(ZoneInfoTest, Errors) {
  auto r = ParseZoneInfo("  pages free 3\n", "zi");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StartsWith(r.status().message(), "zi:1: ")) << r.status();
  r = ParseZoneInfo("Node 0, zone DMA\n  pages free 3\n        protection: 0, 1\n", "zi");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StartsWith(r.status().message(), "zi:3: protection")) << r.status();
  r = ParseZoneInfo("Node 0, zone DMA\n        min 3\n", "zi");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "without a 'pages free'")) << r.status();
  r = ParseZoneInfo("Node 0, zone DMA\n  pages free x\n", "zi");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "zi:2: pages free")) << r.status();
  r = ParseZoneInfo("Node 0, zone DMA\n  pages free 1\n  this is odd\n", "zi");
  EXPECT_FALSE(r.ok());
  r = ParseZoneInfo("Node 0, zone DMA\n  pages free 1\n    cpu: 0\n", "zi");
  EXPECT_FALSE(r.ok());  // cpu outside pagesets
}

TEST(ZoneInfoTest, UnknownCountersAreKept) {
  auto r = ParseZoneInfo("Node 0, zone DMA\n  pages free 1\n      nr_brand_new 42\n", "zi");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->zones[0].Stat("nr_brand_new"), std::optional<uint64_t>(42));
}

// ---- vmstat / meminfo ----

TEST(VmStatTest, FixturesAndErrors) {
  auto v = ReadVmStat(Fixture("6.18"));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->Get("nr_free_pages_blocks").has_value());
  EXPECT_TRUE(v->Get("compact_stall").has_value());
  auto v61 = ReadVmStat(Fixture("6.1"));
  ASSERT_TRUE(v61.ok()) << v61.status();
  EXPECT_FALSE(v61->Get("nr_free_pages_blocks").has_value());
  auto bad = ParseVmStat("a 1\nb\n", "vm");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StartsWith(bad.status().message(), "vm:2: "));
  bad = ParseVmStat("a 1\na 2\n", "vm");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "twice"));
  bad = ParseVmStat("a -1\n", "vm");
  EXPECT_FALSE(bad.ok());
}

TEST(MemInfoTest, FixturesAndErrors) {
  auto m = ReadMemInfo(Fixture("6.18"));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_GT(*m->Get("MemTotal"), 0u);
  EXPECT_EQ(m->Get("HugePages_Total"), std::optional<uint64_t>(0));
  EXPECT_FALSE(m->Get("CmaTotal").has_value());
  auto cma = ReadMemInfo(Fixture("6.18-cma"));
  ASSERT_TRUE(cma.ok()) << cma.status();
  EXPECT_EQ(cma->Get("CmaTotal"), std::optional<uint64_t>(262144));
  auto p = ParseMemInfo("MemTotal:       24684084 kB\nHugePages_Free:        3\n");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->Get("HugePages_Free"), std::optional<uint64_t>(3));
  auto bad = ParseMemInfo("MemTotal 1 kB\n", "mi");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StartsWith(bad.status().message(), "mi:1: "));
}

// ---- extfrag debugfs ----

TEST(ExtfragTest, ParsesKernelNumbersIncludingOddNegatives) {
  auto t = ParseExtfragTable(
      "Node 0, zone      DMA -1.000  0.-500  0.438  0.-05  1.000 \n", "ef");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->zones[0].index, (std::vector<int>{-1000, -500, 438, -5, 1000}));
  EXPECT_EQ(t->zones[0].text[1], "0.-500");
  auto bad = ParseExtfragTable("Node 0, zone DMA 0.5x0\n", "ef");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StartsWith(bad.status().message(), "ef:1: order 0 value")) << bad.status();
  bad = ParseExtfragTable("Node 0, zone DMA 1\n", "ef");
  EXPECT_FALSE(bad.ok());
  bad = ParseExtfragTable("Node 0, zone DMA -1.500\n", "ef");
  EXPECT_FALSE(bad.ok());
}

// The real capture's debugfs files equal our formulas applied to its
// buddyinfo, value by value and string by string.
TEST(ExtfragTest, LiveCaptureMatchesOurFormulas) {
  auto b = ReadBuddyInfo(Fixture("6.18"));
  auto ui = ReadExtfragTable(Fixture("6.18"), "unusable_index");
  auto fi = ReadExtfragTable(Fixture("6.18"), "extfrag_index");
  ASSERT_TRUE(b.ok() && ui.ok() && fi.ok());
  ASSERT_EQ(ui->zones.size(), b->zones.size());
  ASSERT_EQ(fi->zones.size(), b->zones.size());
  int compared = 0;
  for (const BuddyZone& z : b->zones) {
    const ExtfragZone* u = ui->Find(z.nid, z.zone);
    const ExtfragZone* f = fi->Find(z.nid, z.zone);
    ASSERT_NE(u, nullptr);
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(u->index.size(), z.nr_free.size());
    for (unsigned order = 0; order < z.nr_free.size(); ++order) {
      EXPECT_EQ(UnusableIndex(z.nr_free, order), u->index[order]) << z.zone << " order " << order;
      EXPECT_EQ(FormatUnusableIndex(UnusableIndex(z.nr_free, order)), u->text[order]);
      EXPECT_EQ(FragmentationIndex(z.nr_free, order), f->index[order]) << z.zone << " order " << order;
      // Whitespace splitting drops the %2d padding; compare the trimmed word.
      std::string ours = FormatFragmentationIndex(FragmentationIndex(z.nr_free, order));
      EXPECT_EQ(ours.substr(ours.find_first_not_of(' ')), f->text[order]);
      ++compared;
    }
  }
  EXPECT_EQ(compared, 33);
}

// Constructed fixtures are consistent: buddyinfo = per-type sums of
// pagetypeinfo, except saturated cells where buddyinfo holds more.
TEST(FixtureConsistencyTest, BuddyinfoEqualsPagetypeSums) {
  for (const char* kernel : {"6.1", "6.12", "6.18-cma"}) {
    auto b = ReadBuddyInfo(Fixture(kernel));
    auto p = ReadPagetypeInfo(Fixture(kernel));
    ASSERT_TRUE(b.ok() && p.ok()) << kernel;
    for (const BuddyZone& z : b->zones) {
      const PagetypeZone* pz = p->Find(z.nid, z.zone);
      ASSERT_NE(pz, nullptr) << kernel << " " << z.zone;
      for (size_t k = 0; k < z.nr_free.size(); ++k) {
        uint64_t sum = 0;
        bool sat = false;
        for (size_t t = 0; t < pz->free.size(); ++t) {
          sum += pz->free[t][k];
          sat |= pz->saturated[t][k] != 0;
        }
        if (sat) {
          EXPECT_GE(z.nr_free[k], sum) << kernel << " " << z.zone << " order " << k;
        } else {
          EXPECT_EQ(z.nr_free[k], sum) << kernel << " " << z.zone << " order " << k;
        }
      }
    }
  }
}

}  // namespace
}  // namespace fraglab::procfs
