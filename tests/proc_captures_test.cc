// The snapshot parsers against real captures of other kernels
// (tests/fixtures/proc/*-qemu*/, made by tests/fixtures/proc/capture.sh in a
// qemu guest). Each capture read buddyinfo, the two debugfs extfrag files and
// pagetypeinfo between two identical buddyinfo reads, so the files describe
// one buddy state and the kernel's own index text is the oracle for ours.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/frag_index.h"
#include "common/proc_buddyinfo.h"
#include "common/proc_extfrag.h"
#include "common/proc_file.h"
#include "common/proc_pagetypeinfo.h"
#include "common/proc_zoneinfo.h"
#include "common/snapshot_machine.h"
#include "gtest/gtest.h"

namespace fraglab::snapshot {
namespace {

struct Capture {
  const char* dir;                  // under tests/fixtures/proc/
  const char* release;              // uname -r of the guest
  bool cma;                         // CONFIG_CMA=y (a CMA column) and a cma=64M area
  std::vector<std::pair<int, std::string>> zones;  // populated zones, buddyinfo order
};

// What each capture must contain; see tests/fixtures/proc/README.md. Debian's
// amd64 kernels are built without CONFIG_CMA, so the CMA captures are of its
// arm64 kernels (qemu virt), where all 2 GiB of RAM lie in ZONE_DMA.
const std::vector<Capture>& Captures() {
  static const auto* captures = new std::vector<Capture>{
      {"6.1-qemu", "6.1.0-56-amd64", false, {{0, "DMA"}, {0, "DMA32"}}},
      {"6.1-qemu-numa", "6.1.0-56-amd64", false, {{0, "DMA"}, {0, "DMA32"}, {1, "DMA32"}}},
      {"6.12-qemu", "6.12.117+deb12-amd64", false, {{0, "DMA"}, {0, "DMA32"}}},
      {"6.12-qemu-numa", "6.12.117+deb12-amd64", false, {{0, "DMA"}, {0, "DMA32"}, {1, "DMA32"}}},
      {"6.1-arm64-qemu-cma", "6.1.0-56-arm64", true, {{0, "DMA"}}},
      {"6.12-arm64-qemu-cma", "6.12.117+deb12-arm64", true, {{0, "DMA"}}},
  };
  return *captures;
}

std::string Root(const Capture& c) { return absl::StrCat(FRAGLAB_FIXTURE_DIR, "/proc/", c.dir); }

class ProcCapturesTest : public ::testing::TestWithParam<Capture> {};

TEST_P(ProcCapturesTest, SnapshotHasExpectedReleaseZonesAndNumbering) {
  const Capture& c = GetParam();
  auto s = ReadMachineSnapshot(Root(c));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->kernel_release, c.release);
  EXPECT_TRUE(s->HasTypes()) << s->pagetypeinfo_error;
  EXPECT_FALSE(s->migratetypes_inferred);
  EXPECT_EQ(s->pageblock_order, 9);
  EXPECT_EQ(s->num_orders, 11u);
  EXPECT_EQ(s->nr_cpus, 2u);
  ASSERT_EQ(s->zones.size(), c.zones.size());
  for (size_t i = 0; i < c.zones.size(); ++i) {
    EXPECT_EQ(s->zones[i].nid, c.zones[i].first) << i;
    EXPECT_EQ(s->zones[i].name, c.zones[i].second) << i;
    // Kernel zone index on x86-64 and arm64: DMA 0, DMA32 1.
    EXPECT_EQ(s->zones[i].zone_idx, c.zones[i].second == "DMA" ? 0 : 1) << c.zones[i].second;
  }
  std::vector<std::string> expected_types = {"Unmovable", "Movable", "Reclaimable", "HighAtomic"};
  if (c.cma) expected_types.push_back("CMA");
  expected_types.push_back("Isolate");
  EXPECT_EQ(s->migratetype_names, expected_types);

  auto pti = procfs::ReadPagetypeInfo(Root(c));
  ASSERT_TRUE(pti.ok()) << pti.status();
  EXPECT_EQ(pti->TypeNumber("Isolate"), c.cma ? 5 : 4);
  EXPECT_EQ(pti->TypeNumber("CMA"), c.cma ? 4 : -1);
  EXPECT_EQ(pti->pages_per_block, 512u);
  EXPECT_FALSE(pti->has_mixed_blocks);  // Debian kernels: page_owner not enabled at boot
  if (c.cma) {
    EXPECT_EQ(s->meminfo.Get("CmaTotal"), std::optional<uint64_t>(64u * 1024)) << "kB";
  }
}

// pagetypeinfo_showblockcount walks the zone from start_pfn in steps of
// pageblock_nr_pages and counts each step whose pfn is valid: ceil(spanned /
// 512) steps, fewer only over memory holes. Allow one block for a partial
// block at either end; x86 DMA (pfn 1..4095) has such a partial first block.
TEST_P(ProcCapturesTest, PageblockCountsMatchZoneSpan) {
  const Capture& c = GetParam();
  auto pti = procfs::ReadPagetypeInfo(Root(c));
  ASSERT_TRUE(pti.ok()) << pti.status();
  auto zi = procfs::ReadZoneInfo(Root(c));
  ASSERT_TRUE(zi.ok()) << zi.status();
  for (const auto& [nid, name] : c.zones) {
    const procfs::PagetypeZone* pz = pti->Find(nid, name);
    const procfs::ZoneInfoZone* zz = zi->Find(nid, name);
    ASSERT_NE(pz, nullptr) << nid << " " << name;
    ASSERT_NE(zz, nullptr) << nid << " " << name;
    ASSERT_EQ(pz->blocks.size(), pti->migratetypes.size()) << name;
    uint64_t total = 0;
    for (uint64_t b : pz->blocks) total += b;
    const uint64_t implied = (zz->spanned + pti->pages_per_block - 1) / pti->pages_per_block;
    EXPECT_LE(total, implied + 1) << "node " << nid << " " << name << " spanned " << zz->spanned;
    EXPECT_GE(total + 1, implied) << "node " << nid << " " << name << " spanned " << zz->spanned;
    // Nothing isolated at rest.
    EXPECT_EQ(pz->blocks[pti->TypeNumber("Isolate")], 0u) << name;
    if (c.cma) {
      // The 64 MiB area is whole pageblocks of type CMA, as zoneinfo's "cma"
      // (pages) says; CMA free pages are counted by nr_free_cma.
      ASSERT_TRUE(zz->cma.has_value()) << name;
      EXPECT_EQ(*zz->cma, 64u * 1024 * 1024 / 4096) << name;
      EXPECT_EQ(pz->blocks[pti->TypeNumber("CMA")] * pti->pages_per_block, *zz->cma) << name;
      uint64_t cma_free = 0;
      const auto& cma_lists = pz->free[pti->TypeNumber("CMA")];
      for (size_t order = 0; order < cma_lists.size(); ++order) cma_free += cma_lists[order] << order;
      EXPECT_EQ(zz->Stat("nr_free_cma"), std::optional<uint64_t>(cma_free)) << name;
    } else {
      // zoneinfo prints "cma" in every config; zone_cma_pages() is 0 without CMA.
      EXPECT_EQ(zz->cma, std::optional<uint64_t>(0)) << name;
    }
    // Most of a freshly booted zone is Movable.
    EXPECT_GT(pz->blocks[pti->TypeNumber("Movable")], total / 2) << name;
  }
}

// Captured between two equal buddyinfo reads, so each order's free count in
// buddyinfo is exactly the sum over the migratetype lists (no cell here is
// saturated at ">100000").
TEST_P(ProcCapturesTest, BuddyinfoEqualsPagetypeinfoSums) {
  const Capture& c = GetParam();
  auto s = ReadMachineSnapshot(Root(c));
  ASSERT_TRUE(s.ok()) << s.status();
  for (const ZoneSnapshot& z : s->zones) {
    ASSERT_EQ(z.free_by_type.size(), s->migratetype_names.size()) << z.name;
    for (size_t order = 0; order < z.nr_free.size(); ++order) {
      uint64_t sum = 0;
      for (size_t t = 0; t < z.free_by_type.size(); ++t) {
        ASSERT_EQ(z.saturated[t][order], 0) << z.name << " type " << t << " order " << order;
        sum += z.free_by_type[t][order];
      }
      EXPECT_EQ(sum, z.nr_free[order]) << "node " << z.nid << " " << z.name << " order " << order;
    }
  }
}

// Our unusable and fragmentation indices, computed from buddyinfo with the
// kernel's integer formulas and printed in its format, equal the debugfs
// files of the same moment: per value, and for the whole file text.
TEST_P(ProcCapturesTest, ComputedIndicesEqualCapturedDebugfsTextExactly) {
  const Capture& c = GetParam();
  const std::string root = Root(c);
  auto buddy = procfs::ReadBuddyInfo(root);
  ASSERT_TRUE(buddy.ok()) << buddy.status();
  auto unusable = procfs::ReadExtfragTable(root, "unusable_index");
  ASSERT_TRUE(unusable.ok()) << unusable.status();
  auto extfrag = procfs::ReadExtfragTable(root, "extfrag_index");
  ASSERT_TRUE(extfrag.ok()) << extfrag.status();
  auto s = ReadMachineSnapshot(root);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(unusable->zones.size(), buddy->zones.size());
  ASSERT_EQ(extfrag->zones.size(), buddy->zones.size());

  std::string unusable_text, extfrag_text;
  size_t compared = 0;
  for (size_t zi = 0; zi < buddy->zones.size(); ++zi) {
    const procfs::BuddyZone& b = buddy->zones[zi];
    const procfs::ExtfragZone* u = unusable->Find(b.nid, b.zone);
    const procfs::ExtfragZone* f = extfrag->Find(b.nid, b.zone);
    ASSERT_NE(u, nullptr) << b.zone;
    ASSERT_NE(f, nullptr) << b.zone;
    ASSERT_EQ(u->text.size(), b.nr_free.size()) << b.zone;
    ASSERT_EQ(f->text.size(), b.nr_free.size()) << b.zone;
    absl::StrAppendFormat(&unusable_text, "Node %d, zone %8s ", b.nid, b.zone);
    absl::StrAppendFormat(&extfrag_text, "Node %d, zone %8s ", b.nid, b.zone);
    for (unsigned order = 0; order < b.nr_free.size(); ++order) {
      const int ui = procfs::UnusableIndex(b.nr_free, order);
      const int fi = procfs::FragmentationIndex(b.nr_free, order);
      EXPECT_EQ(procfs::FormatUnusableIndex(ui), u->text[order]) << b.zone << " order " << order;
      EXPECT_EQ(procfs::FormatFragmentationIndex(fi), f->text[order]) << b.zone << " order " << order;
      EXPECT_EQ(ui, u->index[order]) << b.zone << " order " << order;
      EXPECT_EQ(fi, f->index[order]) << b.zone << " order " << order;
      // The snapshot carries the same numbers.
      EXPECT_EQ(s->zones[zi].unusable_index[order], ui) << b.zone << " order " << order;
      EXPECT_EQ(s->zones[zi].fragmentation_index[order], fi) << b.zone << " order " << order;
      absl::StrAppend(&unusable_text, procfs::FormatUnusableIndex(ui), " ");
      absl::StrAppend(&extfrag_text, procfs::FormatFragmentationIndex(fi), " ");
      ++compared;
    }
    unusable_text += "\n";
    extfrag_text += "\n";
  }
  EXPECT_EQ(compared, c.zones.size() * 11);
  auto unusable_file = procfs::ReadWholeFile(root + "/sys/kernel/debug/extfrag/unusable_index");
  ASSERT_TRUE(unusable_file.ok()) << unusable_file.status();
  auto extfrag_file = procfs::ReadWholeFile(root + "/sys/kernel/debug/extfrag/extfrag_index");
  ASSERT_TRUE(extfrag_file.ok()) << extfrag_file.status();
  EXPECT_EQ(unusable_text, *unusable_file);
  EXPECT_EQ(extfrag_text, *extfrag_file);
}

// zoneinfo agrees with buddyinfo where the kernel keeps them equal at rest:
// "pages free" and nr_free_pages are the zone's NR_FREE_PAGES counter, which
// counts the buddy lists (isolated pageblocks aside; none here). zoneinfo was
// read after the stable trio, so allow the few pages a `cat` process moves.
TEST_P(ProcCapturesTest, ZoneinfoFreePagesCloseToBuddyPages) {
  const Capture& c = GetParam();
  auto s = ReadMachineSnapshot(Root(c));
  ASSERT_TRUE(s.ok()) << s.status();
  for (const ZoneSnapshot& z : s->zones) {
    const uint64_t buddy = z.BuddyFreePages();
    EXPECT_EQ(z.free_pages, z.nr_free_pages) << z.name;
    const uint64_t diff = buddy > z.free_pages ? buddy - z.free_pages : z.free_pages - buddy;
    EXPECT_LE(diff, 1024u) << "node " << z.nid << " " << z.name << " buddy " << buddy << " zoneinfo "
                           << z.free_pages;
    EXPECT_LE(z.managed, z.present) << z.name;
    EXPECT_LE(z.present, z.spanned) << z.name;
    EXPECT_GT(z.managed, 0u) << z.name;
    // NR_FREE_CMA_PAGES is a zone counter in every config (zero without CMA).
    ASSERT_TRUE(z.nr_free_cma.has_value()) << z.name;
    if (!c.cma) {
      EXPECT_EQ(*z.nr_free_cma, 0u) << z.name;
    }
  }
}

// gtest names allow only [A-Za-z0-9_]: "6.12-qemu" -> "6_12_qemu".
std::string CaptureTestName(const ::testing::TestParamInfo<Capture>& param_info) {
  std::string name = param_info.param.dir;
  for (char& ch : name) {
    if (ch == '.' || ch == '-') ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Captured, ProcCapturesTest, ::testing::ValuesIn(Captures()), CaptureTestName);

}  // namespace
}  // namespace fraglab::snapshot
