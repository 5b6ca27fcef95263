// Page classification, free-block reconstruction, pageblock type estimates,
// records and rendering of the pageblock map, on synthetic page arrays and a
// synthetic /proc/kpageflags under a scratch root.
#include "common/snapshot_map.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "common/event_sink.h"
#include "gtest/gtest.h"

namespace fraglab::snapshot {
namespace {

constexpr uint64_t F(int bit) { return uint64_t{1} << bit; }

TEST(SnapshotMapTest, ClassifyPage) {
  EXPECT_EQ(ClassifyPage(F(kKpfNoPage), 0), PageClass::kAbsent);
  EXPECT_EQ(ClassifyPage(F(kKpfBuddy), 0), PageClass::kFree);
  EXPECT_EQ(ClassifyPage(F(kKpfBuddy) | F(3), 0), PageClass::kFree);  // head with a stale uptodate bit
  EXPECT_EQ(ClassifyPage(F(kKpfAnon) | F(kKpfMmap) | F(kKpfLru), 1), PageClass::kAnon);
  EXPECT_EQ(ClassifyPage(F(kKpfAnon) | F(kKpfThp) | F(kKpfCompoundHead), 1), PageClass::kThp);
  EXPECT_EQ(ClassifyPage(F(kKpfLru) | F(3), 0), PageClass::kFile);
  EXPECT_EQ(ClassifyPage(F(kKpfMmap), 2), PageClass::kFile);
  EXPECT_EQ(ClassifyPage(F(kKpfSlab), 0), PageClass::kSlab);
  EXPECT_EQ(ClassifyPage(F(kKpfPgtable) | F(2), 0), PageClass::kPageTable);
  EXPECT_EQ(ClassifyPage(F(kKpfHuge) | F(kKpfCompoundHead), 0), PageClass::kHugetlb);
  EXPECT_EQ(ClassifyPage(F(kKpfUnevictable) | F(kKpfLru) | F(kKpfAnon), 1), PageClass::kUnevictable);
  EXPECT_EQ(ClassifyPage(F(kKpfReserved), 0), PageClass::kReserved);
  EXPECT_EQ(ClassifyPage(F(kKpfOffline), 0), PageClass::kOffline);
  EXPECT_EQ(ClassifyPage(0, 0), PageClass::kUnflagged);
  EXPECT_EQ(ClassifyPage(F(3), 0), PageClass::kKernelOther);
  EXPECT_EQ(ClassifyPage(0, 1), PageClass::kKernelOther);
  EXPECT_STREQ(PageClassName(PageClass::kPageTable), "pagetable");
}

TEST(SnapshotMapTest, EstimateBlockType) {
  const TypeNumbers t = TypeNumbersFor({"Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate"});
  EXPECT_EQ(t.movable, 1);
  EXPECT_EQ(t.reclaimable, 2);
  BlockVote free_block{.free = 512, .in_zone = 512};
  EXPECT_EQ(EstimateBlockType(free_block, t).migratetype, 1);
  BlockVote absent{.absent = 512, .in_zone = 512};
  EXPECT_EQ(EstimateBlockType(absent, t).migratetype, 0xff);
  BlockVote mov{.movable = 300, .unmovable = 2, .free = 210, .in_zone = 512};
  EXPECT_EQ(EstimateBlockType(mov, t).migratetype, 1);
  EXPECT_TRUE(EstimateBlockType(mov, t).mixed);
  BlockVote slab{.movable = 10, .unmovable = 20, .slab = 200, .in_zone = 512};
  EXPECT_EQ(EstimateBlockType(slab, t).migratetype, 2);
  BlockVote unmov{.movable = 0, .unmovable = 50, .slab = 20, .in_zone = 512};
  EXPECT_EQ(EstimateBlockType(unmov, t).migratetype, 0);
  EXPECT_TRUE(EstimateBlockType(unmov, t).mixed);
  BlockVote pure{.unmovable = 50, .in_zone = 512};
  EXPECT_FALSE(EstimateBlockType(pure, t).mixed);
  BlockVote tie{.movable = 5, .unmovable = 5, .in_zone = 512};
  EXPECT_EQ(EstimateBlockType(tie, t).migratetype, 1);
}

// A 4096-page zone at pfn 512 (8 pageblocks, the first partial if the zone
// starts at 600) built page by page.
struct Synthetic {
  MachineSnapshot s;
  std::vector<PageClass> classes;  // from pfn 512
};

Synthetic MakeSynthetic() {
  Synthetic x;
  x.s.pageblock_order = 9;
  x.s.migratetype_names = {"Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"};
  ZoneSnapshot z;
  z.nid = 0;
  z.zone_idx = 2;
  z.name = "Normal";
  z.start_pfn = 512;
  z.spanned = 4096;
  z.nr_free.assign(11, 0);
  z.pageblocks = {2, 4, 1, 0, 0};
  x.classes.assign(4096, PageClass::kUnflagged);
  auto set = [&](uint64_t from, uint64_t to, PageClass c) {
    for (uint64_t p = from; p < to; ++p) x.classes[p - 512] = c;
  };
  set(512, 1024, PageClass::kFree);                // block 0: all free (one order-9 block)
  set(1024, 1536, PageClass::kAnon);               // block 1: anon ...
  set(1100, 1104, PageClass::kSlab);               //   ... with 4 slab pages: mixed
  set(1536, 1536 + 300, PageClass::kSlab);         // block 2: slab majority
  set(1536 + 300, 2048, PageClass::kFree);         //   rest free: run [1836, 2048)
  // block 3 [2048, 2560): all zero -> absent
  set(2560, 2560 + 100, PageClass::kPageTable);    // block 4: page tables + unflagged kernel
  set(2563, 2576, PageClass::kFree);               //   a 13-page free run: orders 0, 2, 3
  set(3072, 4608, PageClass::kFile);               // blocks 5-7: page cache
  z.nr_free[9] = 1;
  // [1836, 2048): 1836 = 4*459 -> order 2 (1836..1840), 1840 order 4 (..1856),
  // 1856 order 6 (..1920), 1920 order 7 (..2048).
  z.nr_free[2] = 2;  // 1836 and 2564
  z.nr_free[4] = 1;
  z.nr_free[6] = 1;
  z.nr_free[7] = 1;
  z.nr_free[0] = 1;  // 2563
  z.nr_free[3] = 1;  // 2568
  x.s.zones.push_back(z);
  return x;
}

TEST(SnapshotMapTest, BuildZoneMapReconstructsAndEstimates) {
  Synthetic x = MakeSynthetic();
  ZoneMap m = BuildZoneMap(x.s.zones[0], x.s, 512, x.classes);
  ASSERT_EQ(m.blocks.size(), 8u);
  EXPECT_EQ(m.first_block_pfn, 512u);
  EXPECT_EQ(m.free_blocks, x.s.zones[0].nr_free);
  EXPECT_EQ(m.free_residual_pages, 0);
  // Block 0: free, Movable.
  EXPECT_EQ(m.blocks[0].migratetype, 1);
  EXPECT_EQ(m.blocks[0].free_pages, 512);
  EXPECT_TRUE(m.blocks[0].flags & FL_PB_ESTIMATED);
  // Block 1: Movable, mixed (slab pages).
  EXPECT_EQ(m.blocks[1].migratetype, 1);
  EXPECT_TRUE(m.blocks[1].flags & FL_PB_MIXED);
  // Block 2: Reclaimable, not mixed (slab + free only).
  EXPECT_EQ(m.blocks[2].migratetype, 2);
  EXPECT_FALSE(m.blocks[2].flags & FL_PB_MIXED);
  EXPECT_EQ(m.blocks[2].free_pages, 212);
  // Block 3: nothing online.
  EXPECT_EQ(m.blocks[3].migratetype, 0xff);
  // Block 4: Unmovable.
  EXPECT_EQ(m.blocks[4].migratetype, 0);
  EXPECT_EQ(m.blocks[4].free_pages, 13);
  for (int b = 5; b < 8; ++b) EXPECT_EQ(m.blocks[b].migratetype, 1) << b;
  EXPECT_EQ(m.pages_by_class[static_cast<size_t>(PageClass::kAbsent)], 512u);
  EXPECT_EQ(m.pages_by_class[static_cast<size_t>(PageClass::kFree)], 512u + 212 + 13);
  uint64_t total = 0;
  for (uint64_t n : m.pages_by_class) total += n;
  EXPECT_EQ(total, 4096u);
  EXPECT_EQ(m.unknown_blocks, 1u);
  EXPECT_EQ(m.estimated_blocks[0], 1u);
  EXPECT_EQ(m.estimated_blocks[1], 5u);
  EXPECT_EQ(m.estimated_blocks[2], 1u);
  // Reported {2,4,1,0,0}: agreement = (1 + 4 + 1) / 7.
  EXPECT_NEAR(m.type_agreement, 6.0 / 7.0, 1e-9);
}

TEST(SnapshotMapTest, ResidualWhenBuddyinfoDisagrees) {
  Synthetic x = MakeSynthetic();
  x.s.zones[0].nr_free[9] = 2;  // buddyinfo saw one more free order-9 block
  ZoneMap m = BuildZoneMap(x.s.zones[0], x.s, 512, x.classes);
  EXPECT_EQ(m.free_residual_pages, 512);
}

TEST(SnapshotMapTest, PartialBlocksAtZoneEdges) {
  Synthetic x = MakeSynthetic();
  x.s.zones[0].start_pfn = 600;  // first block starts at 512, zone at 600
  x.s.zones[0].spanned = 4096 - 88 - 100;
  ZoneMap m = BuildZoneMap(x.s.zones[0], x.s, 512, x.classes);
  ASSERT_EQ(m.blocks.size(), 8u);
  EXPECT_TRUE(m.blocks[0].flags & FL_PB_PARTIAL);
  EXPECT_FALSE(m.blocks[1].flags & FL_PB_PARTIAL);
  EXPECT_TRUE(m.blocks[7].flags & FL_PB_PARTIAL);
  EXPECT_EQ(m.blocks[0].free_pages, 512 - 88);
  uint64_t total = 0;
  for (uint64_t n : m.pages_by_class) total += n;
  EXPECT_EQ(total, x.s.zones[0].spanned);
}

TEST(SnapshotMapTest, RecordsAndRendering) {
  Synthetic x = MakeSynthetic();
  MachineMap map;
  map.monotonic_ns = 77;
  map.migratetype_names = x.s.migratetype_names;
  map.zones.push_back(BuildZoneMap(x.s.zones[0], x.s, 512, x.classes));
  VectorSink sink;
  ASSERT_TRUE(EmitPageblockMapRecords(map, sink).ok());
  ASSERT_EQ(sink.size(), 1u);
  EXPECT_EQ(sink.at(0).kind, FL_EV_PAGEBLOCK_MAP);
  EXPECT_EQ(sink.at(0).size, 40u + 8 * 4);
  EXPECT_EQ(sink.at(0).ts_ns, 77u);
  const auto rec = sink.as<fl_pageblock_map>(0);
  EXPECT_EQ(rec.count, 8u);
  EXPECT_EQ(rec.first_pfn, 512u);
  EXPECT_EQ(rec.zone_idx, 2);
  fl_pageblock_entry e2;
  std::memcpy(&e2, reinterpret_cast<const char*>(&sink.at(0)) + 40 + 2 * 4, sizeof e2);
  EXPECT_EQ(e2.migratetype, 2);
  EXPECT_EQ(e2.free_pages, 212);

  const std::string text = MapText(map, /*color=*/false);
  EXPECT_TRUE(absl::StrContains(text, "  0x00000200  .mR UMMM\n")) << text;
  EXPECT_TRUE(absl::StrContains(text, "agreement 85.7%")) << text;
  EXPECT_FALSE(absl::StrContains(text, "\x1b["));
  EXPECT_TRUE(absl::StrContains(MapText(map, /*color=*/true), "\x1b[32m"));
  auto j = nlohmann::json::parse(MapJson(map));
  EXPECT_EQ(j["zones"][0]["blocks"], ".mR UMMM");
  EXPECT_EQ(j["zones"][0]["free_residual_pages"], 0);
}

TEST(SnapshotMapTest, ManyBlocksSplitIntoSeveralRecords) {
  MachineSnapshot s;
  s.migratetype_names = {"Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"};
  ZoneSnapshot z;
  z.start_pfn = 0;
  z.spanned = uint64_t{FL_PB_MAP_MAX_ENTRIES + 5} * 512;
  z.nr_free.assign(11, 0);
  z.nr_free[10] = z.spanned / 1024;
  z.nr_free[9] = z.spanned / 512 % 2;
  s.zones.push_back(z);
  std::vector<PageClass> classes(z.spanned, PageClass::kFree);
  MachineMap map;
  map.migratetype_names = s.migratetype_names;
  map.zones.push_back(BuildZoneMap(z, s, 0, classes));
  EXPECT_EQ(map.zones[0].free_residual_pages, 0);
  VectorSink sink;
  ASSERT_TRUE(EmitPageblockMapRecords(map, sink).ok());
  ASSERT_EQ(sink.size(), 2u);
  EXPECT_EQ(sink.as<fl_pageblock_map>(0).count, static_cast<uint32_t>(FL_PB_MAP_MAX_ENTRIES));
  EXPECT_EQ(sink.as<fl_pageblock_map>(1).count, 5u);
  EXPECT_EQ(sink.as<fl_pageblock_map>(1).first_pfn, uint64_t{FL_PB_MAP_MAX_ENTRIES} * 512);
  EXPECT_EQ(sink.at(1).size, 40u + 24);  // 5 entries = 20 bytes, padded to 24
}

// ReadMachineMap against a scratch root holding synthetic kpageflags/kpagecount.
class ScratchProc {
 public:
  ScratchProc() {
    dir_ = std::filesystem::temp_directory_path() / ("fraglab_map_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_ / "proc");
  }
  ~ScratchProc() { std::filesystem::remove_all(dir_); }
  void WriteWords(const std::string& name, const std::vector<uint64_t>& words) {
    std::ofstream out(dir_ / "proc" / name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(words.data()), static_cast<std::streamsize>(words.size() * 8));
  }
  std::string root() const { return dir_.string(); }
  std::string path(const std::string& name) const { return (dir_ / "proc" / name).string(); }

 private:
  std::filesystem::path dir_;
};

TEST(SnapshotMapTest, ReadMachineMapFromFiles) {
  Synthetic x = MakeSynthetic();
  // Flags words for pfns [0, 4608): pfns before the zone are never read as zone pages.
  std::vector<uint64_t> flags(4608, 0), counts(4608, 0);
  for (uint64_t pfn = 512; pfn < 4608; ++pfn) {
    switch (x.classes[pfn - 512]) {
      case PageClass::kFree: flags[pfn] = F(kKpfBuddy); break;
      case PageClass::kAnon: flags[pfn] = F(kKpfAnon) | F(kKpfMmap) | F(kKpfLru); counts[pfn] = 1; break;
      case PageClass::kSlab: flags[pfn] = F(kKpfSlab); break;
      case PageClass::kPageTable: flags[pfn] = F(kKpfPgtable); break;
      case PageClass::kFile: flags[pfn] = F(kKpfLru) | (pfn % 2 ? F(kKpfMmap) : 0); counts[pfn] = pfn % 2 ? 2 : 0; break;
      default: break;
    }
  }
  ScratchProc proc;
  proc.WriteWords("kpageflags", flags);
  proc.WriteWords("kpagecount", counts);
  auto map = ReadMachineMap(x.s, proc.root());
  ASSERT_TRUE(map.ok()) << map.status();
  ASSERT_EQ(map->zones.size(), 1u);
  const ZoneMap& z = map->zones[0];
  EXPECT_EQ(z.free_residual_pages, 0);
  EXPECT_EQ(z.blocks[2].migratetype, 2);
  EXPECT_EQ(map->pfns_read, 4096u);
  EXPECT_EQ(z.mapped_pages, 508u + 768);  // anon pages of block 1 + odd file pages
  EXPECT_EQ(z.shared_pages, 768u);
  EXPECT_GT(map->kpagecount_pfns_read, 0u);

  // Pfns past the end of the file read as no page.
  x.s.zones[0].spanned += 1024;
  auto longer = ReadMachineMap(x.s, proc.root());
  ASSERT_TRUE(longer.ok()) << longer.status();
  EXPECT_EQ(longer->zones[0].blocks.size(), 10u);
  EXPECT_EQ(longer->zones[0].blocks[9].migratetype, 0xff);
}

TEST(SnapshotMapTest, MissingOrForbiddenKpageflags) {
  Synthetic x = MakeSynthetic();
  ScratchProc proc;
  auto r = ReadMachineMap(x.s, proc.root());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "kpageflags"));

  proc.WriteWords("kpageflags", std::vector<uint64_t>(16, 0));
  proc.WriteWords("kpagecount", std::vector<uint64_t>(16, 0));
  ::chmod(proc.path("kpageflags").c_str(), 0);
  ::chmod(proc.root().c_str(), 0755);
  // Check the message as an unprivileged user (root ignores the mode).
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(10);
    auto denied = ReadMachineMap(x.s, proc.root());
    if (denied.ok()) ::_exit(11);
    if (denied.status().code() != absl::StatusCode::kPermissionDenied) ::_exit(12);
    if (!absl::StrContains(denied.status().message(), "needs root")) ::_exit(13);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace fraglab::snapshot

namespace fraglab::snapshot {
namespace {

TEST(SnapshotMapTest, TextStaysWithinHundredColumns) {
  MachineMap map;
  map.migratetype_names = {"Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate"};
  ZoneMap z;
  z.name = "Normal";
  z.free_blocks.assign(11, 123456789);
  z.buddyinfo.assign(11, 123456789);
  z.estimated_blocks.assign(6, 123456);
  z.reported_blocks.assign(6, 123456);
  z.type_agreement = 1;
  for (uint64_t& n : z.pages_by_class) n = 1234567890;
  z.blocks.assign(300, fl_pageblock_entry{1, 0, 0});
  map.zones.push_back(z);
  const std::string text = MapText(map, false);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    EXPECT_LE(end - start, 100u) << text.substr(start, end - start);
    start = end + 1;
  }
}

}  // namespace
}  // namespace fraglab::snapshot
