// KernelModel (sim/kernel_model.h): the allocations of each scenario
// operation on small machines, with hand-computed expectations: THP and
// base-page faults with their page tables, splits on partial release,
// mTHP sizes, pins, slab geometry, page cache and drop_caches, reclaim in
// LRU order, migration bookkeeping, probes, collapse and settings.
#include "sim/kernel_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/scenario_parser.h"
#include "sim/config_from_scenario.h"
#include "sim/scenario_sim.h"
#include "tests/sim_test_util.h"

namespace fraglab::sim {
namespace {

using ::testing::HasSubstr;
using testing::ExpectFreeBlocks;
using testing::PhaseBegins;
namespace sc = scenario;

// One Normal zone of `size` (sim_test_util.h); THP settings from `thp`.
std::string Machine(const std::string& size = "64MiB", const std::string& thp = "") {
  return testing::OneZoneMachine("km", 3, size, thp);
}

sc::Scenario Parse(const std::string& text) { return testing::ParseOrFail(text, "km.toml"); }

// On Machine("16MiB") (8 pageblocks): 14 MiB of base pages, every other page
// given back, so no 2 MiB block is free; then a THP fault in region "h".
constexpr const char* kFragmentedFill = R"(
[[phases]]
op = "anon"
tag = "fill"
size = "14MiB"
[[phases]]
op = "release"
region = "fill"
pattern = "every-nth"
n = 2)";
constexpr const char* kThpFault = R"(
[[phases]]
op = "anon"
tag = "h"
size = "2MiB"
page_size = "thp")";

// Allocation and free events of a run, as (order, migratetype) counts.
struct Calls {
  std::map<std::pair<int, int>, int> allocs;  // (order, mt) -> successful allocations
  std::map<int, int> frees;                   // order -> frees
  std::vector<uint64_t> freed_pfns;
  std::vector<fl_probe> probes;
};

Calls Count(const VectorSink& sink, size_t from = 0) {
  Calls c;
  for (size_t i = from; i < sink.size(); ++i) {
    const fl_record_header& h = sink.at(i);
    if (h.kind == FL_EV_PAGE_ALLOC) {
      auto e = sink.as<fl_page_alloc>(i);
      if (e.pfn != FL_NO_PFN) c.allocs[{e.order, e.migratetype}]++;
    } else if (h.kind == FL_EV_PAGE_FREE) {
      auto e = sink.as<fl_page_free>(i);
      c.frees[e.order]++;
      c.freed_pfns.push_back(e.pfn);
    } else if (h.kind == FL_EV_PROBE) {
      c.probes.push_back(sink.as<fl_probe>(i));
    }
  }
  return c;
}

// Runs the scenario `machine + phases` to the end.
struct Run {
  sc::Scenario s;
  VectorSink sink;
  std::unique_ptr<ScenarioSimulator> sim;
  absl::Status status;
};

std::unique_ptr<Run> RunScenario(const std::string& text) {
  auto r = std::make_unique<Run>();
  r->s = Parse(text);
  r->sim = testing::MakeSimulator(r->s, &r->sink);
  if (r->sim != nullptr) r->status = r->sim->Run();
  return r;
}

constexpr int kUnmovable = 0, kMovableMt = 1, kReclaimableMt = 2;

TEST(KernelModelTest, AnonThpOnEmptyZoneIsTwoOrder9FoliosAndTwoPageTables) {
  auto r = RunScenario(Machine("64MiB", "[machine.thp]\nenabled = \"madvise\"\n") + R"(
[[phases]]
op = "anon"
tag = "h"
size = "4MiB"
page_size = "thp"
)");
  ASSERT_TRUE(r->status.ok()) << r->status;
  const Calls c = Count(r->sink);
  EXPECT_EQ(c.allocs, (std::map<std::pair<int, int>, int>{{{9, kMovableMt}, 2}, {{0, kUnmovable}, 2}}));
  const KernelModel& m = r->sim->model();
  EXPECT_EQ(m.counters().thp_fault_alloc, 2u);
  EXPECT_EQ(m.counters().thp_fault_fallback, 0u);
  EXPECT_EQ(m.counters().anon_fault_alloc[9], 2u);
  EXPECT_EQ(m.PageTables("h").size(), 2u);
  const auto pages = m.AnonPages("h");
  ASSERT_EQ(pages.size(), 1024u);
  EXPECT_EQ(pages[0].second, 9);
  EXPECT_EQ(pages[0].first % 512, 0u);
  EXPECT_EQ(m.pages().anon_thp, 2u);
}

TEST(KernelModelTest, AnonBasePagesAreMovableOrder0WithOnePageTablePer2MiB) {
  auto r = RunScenario(Machine() + R"(
[[phases]]
op = "anon"
tag = "b"
size = "3MiB"
touch = "random"
)");
  ASSERT_TRUE(r->status.ok()) << r->status;
  const Calls c = Count(r->sink);
  EXPECT_EQ(c.allocs, (std::map<std::pair<int, int>, int>{{{0, kMovableMt}, 768}, {{0, kUnmovable}, 2}}));
  EXPECT_EQ(r->sim->model().AnonPages("b").size(), 768u);
  EXPECT_EQ(r->sim->model().pages().page_table, 2u);
}

TEST(KernelModelTest, PartialReleaseOfAThpSplitsItAndFreesExactlyTheReleasedPages) {
  auto r = RunScenario(Machine() + R"(
[[phases]]
op = "anon"
tag = "h"
size = "2MiB"
page_size = "thp"
[[phases]]
op = "release"
region = "h"
pattern = "every-nth"
n = 2
offset = 1
unit = "4KiB"
)");
  ASSERT_TRUE(r->status.ok()) << r->status;
  const KernelModel& m = r->sim->model();
  EXPECT_EQ(m.counters().thp_split_page, 1u);
  const Calls c = Count(r->sink);
  EXPECT_EQ(c.frees, (std::map<int, int>{{0, 256}}));
  const auto pages = m.AnonPages("h");
  ASSERT_EQ(pages.size(), 256u);
  const uint64_t base = pages[0].first;
  std::set<uint64_t> freed(c.freed_pfns.begin(), c.freed_pfns.end());
  for (uint64_t j = 0; j < 512; ++j) {
    EXPECT_EQ(freed.count(base + j), j % 2 == 1 ? 1u : 0u) << j;
  }
  for (const auto& [pfn, order] : pages) {
    EXPECT_EQ(order, 0);
    EXPECT_EQ((pfn - base) % 2, 0u);
  }
  // DONTNEED keeps the page table.
  EXPECT_EQ(m.pages().page_table, 1u);
}

TEST(KernelModelTest, MunmapOfAWhole2MiBFreesItsPageTable) {
  auto r = RunScenario(Machine() + R"(
[[phases]]
op = "anon"
tag = "b"
size = "4MiB"
[[phases]]
op = "release"
region = "b"
pattern = "every-nth"
n = 2
unit = "2MiB"
method = "munmap"
)");
  ASSERT_TRUE(r->status.ok()) << r->status;
  const Calls c = Count(r->sink);
  // 512 anon pages and the first 2 MiB's page table.
  EXPECT_EQ(c.frees, (std::map<int, int>{{0, 513}}));
  EXPECT_EQ(r->sim->model().pages().page_table, 1u);
  EXPECT_EQ(r->sim->model().AnonPages("b").size(), 512u);
}

TEST(KernelModelTest, MthpRegionFaultsItsSize) {
  auto r = RunScenario(Machine("64MiB", "[machine.thp.mthp]\n64KiB = \"always\"\n") + R"(
[[phases]]
op = "anon"
tag = "m"
size = "1MiB"
page_size = "mthp:64KiB"
)");
  ASSERT_TRUE(r->status.ok()) << r->status;
  const Calls c = Count(r->sink);
  EXPECT_EQ(c.allocs, (std::map<std::pair<int, int>, int>{{{4, kMovableMt}, 16}, {{0, kUnmovable}, 1}}));
  EXPECT_EQ(r->sim->model().counters().anon_fault_alloc[4], 16u);
}

TEST(KernelModelTest, ThpFallsBackToBasePagesWhenNoOrder9BlockIsFree) {
  // 16 MiB = 8 pageblocks: 14 MiB of base pages, every other page given
  // back, leaves no free 2 MiB block (the expect phases check that);
  // defrag=never tries the free lists only.
  auto r = RunScenario(Machine("16MiB", "[machine.thp]\nenabled = \"always\"\ndefrag = \"never\"\n") +
                       kFragmentedFill + ExpectFreeBlocks(9, "movable", 0) + ExpectFreeBlocks(10, "movable", 0) +
                       kThpFault);
  ASSERT_TRUE(r->status.ok()) << r->status;
  const KernelModel& m = r->sim->model();
  EXPECT_EQ(m.counters().thp_fault_alloc, 0u);
  EXPECT_EQ(m.counters().thp_fault_fallback, 1u);
  const auto pages = m.AnonPages("h");
  ASSERT_EQ(pages.size(), 512u);
  for (const auto& p : pages) EXPECT_EQ(p.second, 0);
}

TEST(KernelModelTest, ThpEnabledNeverFaultsBasePagesWithoutFallbackCounts) {
  auto r = RunScenario(Machine() + R"(
[[phases]]
op = "sysctl"
setting = "thp.enabled"
value = "never"
[[phases]]
op = "anon"
tag = "h"
size = "2MiB"
page_size = "thp"
)");
  ASSERT_TRUE(r->status.ok()) << r->status;
  EXPECT_EQ(r->sim->model().counters().thp_fault_fallback, 0u);
  EXPECT_EQ(r->sim->model().AnonPages("h").size(), 512u);
  EXPECT_EQ(Count(r->sink).allocs.count({9, kMovableMt}), 0u);
}

TEST(KernelModelTest, PinKinds) {
  auto r = RunScenario(Machine() + R"(
[[phases]]
op = "pin"
kind = "pipe"
size = "1MiB"
tag = "p"
[[phases]]
op = "pin"
kind = "socket"
size = "64KiB"
tag = "s"
[[phases]]
op = "pin"
kind = "pagetable"
size = "16KiB"
tag = "t"
[[phases]]
op = "pin"
kind = "longterm"
size = "64KiB"
tag = "l"
)");
  ASSERT_TRUE(r->status.ok()) << r->status;
  const Calls c = Count(r->sink);
  // pipe: 1 ring (order 2) + 256 pages; socket: 2 order-3 fragments;
  // pagetable: 4 pages; longterm: 16 movable anon pages + 1 page table.
  EXPECT_EQ(c.allocs, (std::map<std::pair<int, int>, int>{{{2, kUnmovable}, 1},
                                                          {{0, kUnmovable}, 256 + 4 + 1},
                                                          {{3, kUnmovable}, 2},
                                                          {{0, kMovableMt}, 16}}));
  const KernelModelPages p = r->sim->model().pages();
  EXPECT_EQ(p.pipe, 260u);
  EXPECT_EQ(p.socket, 16u);
  EXPECT_EQ(p.pinned, 16u);
  EXPECT_EQ(p.page_table, 5u);
  const PageAllocator& a = r->sim->allocator();
  uint64_t pinned_blocks = 0;
  for (uint64_t pfn = 0; pfn < 16384; ++pfn) {
    const PageInfo i = a.Page(pfn);
    if (i.kind == PageInfo::Kind::kAllocated && i.owner == OwnerKind::kPinned) ++pinned_blocks;
  }
  EXPECT_EQ(pinned_blocks, 16u);
}

TEST(KernelModelTest, SlabGeometryAndDropCachesKeepsPinnedDentries) {
  auto r = RunScenario(Machine() + R"(
[[phases]]
op = "slab"
kind = "dentry"
count = 42
tag = "d"
[[phases]]
op = "slab"
kind = "inode"
count = 21
tag = "i"
[[phases]]
op = "drop_caches"
what = "slab"
)");
  ASSERT_TRUE(r->status.ok()) << r->status;
  const Calls c = Count(r->sink);
  // 42 dentries: 2 order-0 reclaimable slabs; 21 tmpfs files: one order-2
  // unmovable shmem_inode_cache slab and one more dentry slab.
  EXPECT_EQ(c.allocs, (std::map<std::pair<int, int>, int>{{{0, kReclaimableMt}, 3}, {{2, kUnmovable}, 1}}));
  // drop_caches frees the two negative-dentry slabs only.
  EXPECT_EQ(c.frees, (std::map<int, int>{{0, 2}}));
  const KernelModel& m = r->sim->model();
  EXPECT_EQ(m.SlabObjects("d"), 0u);
  EXPECT_EQ(m.SlabObjects("i"), 42u);
  EXPECT_EQ(m.pages().slab_reclaimable, 1u);
  EXPECT_EQ(m.pages().slab_unreclaimable, 4u);
  EXPECT_EQ(m.counters().drop_slab, 1u);
}

TEST(KernelModelTest, SlabPageIsFreedOnlyWhenItsLastObjectGoes) {
  auto r = RunScenario(Machine() + R"(
[[phases]]
op = "slab"
kind = "dentry"
count = 42
tag = "d"
[[phases]]
op = "release"
region = "d"
pattern = "every-nth"
n = 2
[[phases]]
op = "release"
region = "d"
pattern = "whole"
)");
  ASSERT_TRUE(r->status.ok()) << r->status;
  // Objects 0..20 are on slab 0, 21..41 on slab 1 (the cache's active
  // slab). The every-nth release leaves objects on both: nothing freed. The
  // whole release empties both; slab 0 goes back to the allocator, the
  // empty active slab stays with the cache (SLUB's CPU slab).
  const std::vector<size_t> begins = PhaseBegins(r->sink);
  ASSERT_EQ(begins.size(), 3u);
  EXPECT_TRUE(Count(r->sink, begins[1]).freed_pfns.size() == Count(r->sink, begins[2]).freed_pfns.size());
  EXPECT_EQ(Count(r->sink, begins[2]).frees, (std::map<int, int>{{0, 1}}));
  EXPECT_EQ(r->sim->model().SlabObjects("d"), 0u);
  EXPECT_EQ(r->sim->model().pages().slab_reclaimable, 1u);
}

TEST(KernelModelTest, DropCachesFreesExactlyTheCleanFilePages) {
  auto r = RunScenario(Machine() + R"(
[[phases]]
op = "anon"
tag = "a"
size = "1MiB"
[[phases]]
op = "pagecache"
fs = { type = "tmpfs" }
size = "1MiB"
files = 4
tag = "c"
[[phases]]
op = "drop_caches"
what = "pagecache"
)");
  ASSERT_TRUE(r->status.ok()) << r->status;
  const KernelModel& m = r->sim->model();
  EXPECT_EQ(m.pages().file, 0u);
  EXPECT_EQ(m.AnonPages("a").size(), 256u);
  EXPECT_TRUE(m.FileLru().empty());
  // Only the last phase's frees: 256 order-0 file pages.
  const std::vector<size_t> begins = PhaseBegins(r->sink);
  ASSERT_EQ(begins.size(), 3u);
  EXPECT_EQ(Count(r->sink, begins.back()).frees, (std::map<int, int>{{0, 256}}));
}

TEST(KernelModelTest, LargeBlockSizeAndLargeFolioFilesystems) {
  auto r = RunScenario(Machine() + R"(
[[phases]]
op = "pagecache"
fs = { type = "xfs", block_size = "16KiB" }
size = "1MiB"
tag = "x"
[[phases]]
op = "pagecache"
fs = { type = "btrfs" }
size = "64KiB"
tag = "b"
)");
  ASSERT_TRUE(r->status.ok()) << r->status;
  const Calls c = Count(r->sink);
  // XFS: 64 KiB writes -> order-4 folios (16 of them for 1 MiB); btrfs: order 0.
  EXPECT_EQ(c.allocs, (std::map<std::pair<int, int>, int>{{{4, kMovableMt}, 16}, {{0, kMovableMt}, 16}}));
}

TEST(KernelModelTest, ReclaimThroughTheAllocatorTakesTheOldestFilePagesFirst) {
  // 16 MiB: 8 MiB of page cache, then 4 MiB more, then 8 MiB of anon,
  // which only fits if reclaim (kswapd or direct) gives page cache back.
  const sc::Scenario s = Parse(Machine("16MiB") + R"(
[[phases]]
op = "pagecache"
fs = { type = "tmpfs" }
size = "8MiB"
tag = "old"
[[phases]]
op = "pagecache"
fs = { type = "tmpfs" }
size = "4MiB"
tag = "new"
[[phases]]
op = "anon"
tag = "a"
size = "8MiB"
)");
  absl::StatusOr<std::unique_ptr<ScenarioSimulator>> sim = ScenarioSimulator::Create(s, {});
  ASSERT_TRUE(sim.ok()) << sim.status();
  ASSERT_TRUE((*sim)->Step().ok());
  ASSERT_TRUE((*sim)->Step().ok());
  const auto before = (*sim)->model().FileLru();
  ASSERT_EQ(before.size(), 3072u);
  absl::Status st = (*sim)->Step();
  ASSERT_TRUE(st.ok()) << st;
  const auto after = (*sim)->model().FileLru();
  ASSERT_LT(after.size(), before.size());
  // Nothing touched the cache in between: what is left is exactly the young
  // end of the old LRU order.
  const std::vector<std::pair<uint64_t, int>> tail(before.end() - static_cast<ptrdiff_t>(after.size()),
                                                   before.end());
  EXPECT_EQ(after, tail);
  EXPECT_EQ((*sim)->model().AnonPages("a").size(), 2048u);
  const VmEventCounters& v = (*sim)->allocator().vm_events();
  EXPECT_GT(v.pgsteal_kswapd + v.pgsteal_direct, 0u);
}

TEST(KernelModelTest, DirectCompactionForAThpMovesAnonPagesAndTheRecordsFollow) {
  // As in the fallback case, but defrag=madvise on a madvised region:
  // direct compaction migrates base pages to make an order-9 block. The
  // later whole release must free exactly the migrated pages' new pfns.
  auto r = RunScenario(Machine("16MiB") + kFragmentedFill + kThpFault + R"(
[[phases]]
op = "release"
region = "fill"
pattern = "whole"
method = "munmap"
)");
  ASSERT_TRUE(r->status.ok()) << r->status;
  const KernelModel& m = r->sim->model();
  EXPECT_EQ(m.counters().thp_fault_alloc, 1u);
  EXPECT_GT(r->sim->allocator().vm_events().pgmigrate_success, 0u);
  EXPECT_TRUE(m.AnonPages("fill").empty());
  EXPECT_EQ(m.pages().anon, 512u);
  EXPECT_TRUE(r->sim->allocator().CheckInvariants().ok());
  // Every page the model still holds is allocated in the allocator.
  for (const auto& [pfn, order] : m.AnonPages("h")) {
    (void)order;
    const PageInfo head = r->sim->allocator().Page(pfn & ~uint64_t{511});
    EXPECT_EQ(head.kind, PageInfo::Kind::kAllocated);
  }
}

// A model driven directly, for Reclaim and OnMigrated.
struct Direct {
  sc::Scenario s;
  std::unique_ptr<PageAllocator> a;
  std::unique_ptr<KernelModel> m;
  uint64_t now = 0;
};

std::unique_ptr<Direct> MakeDirect() {
  auto d = std::make_unique<Direct>();
  d->s = Parse(Machine() + "[[phases]]\nop = \"snapshot\"\n");
  absl::StatusOr<MachineConfig> cfg = MachineConfigFromScenario(d->s);
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  absl::StatusOr<std::unique_ptr<PageAllocator>> a = PageAllocator::Create(*cfg);
  EXPECT_TRUE(a.ok()) << a.status();
  d->a = std::move(*a);
  KernelModel::Hooks h;
  Direct* p = d.get();
  h.tick = [p] { p->a->set_time(++p->now); };
  d->m = std::make_unique<KernelModel>(d->a.get(), nullptr, d->s, 1, h);
  d->a->set_page_user(d->m.get());
  return d;
}

sc::Operation Op(const std::string& phase_toml) {
  sc::Scenario s = Parse(Machine() + phase_toml);
  return s.phases.empty() ? sc::Operation{} : std::get<sc::Phase>(s.phases[0].node).op;
}

TEST(KernelModelTest, ReclaimFreesFilePagesInLruOrder) {
  auto d = MakeDirect();
  ASSERT_TRUE(d->m->Apply(Op("[[phases]]\nop = \"pagecache\"\nfs = { type = \"tmpfs\" }\nsize = \"64KiB\"\ntag = \"a\"\n"), "t").ok());
  ASSERT_TRUE(d->m->Apply(Op("[[phases]]\nop = \"pagecache\"\nfs = { type = \"tmpfs\" }\nsize = \"64KiB\"\ntag = \"b\"\n"), "t").ok());
  const auto before = d->m->FileLru();
  ASSERT_EQ(before.size(), 32u);
  ReclaimRequest req;
  req.node = 0;
  req.highest_zone_type = kZoneNormal;
  req.nr_to_reclaim = 20;
  EXPECT_EQ(d->m->Reclaim(req), 20u);
  const auto after = d->m->FileLru();
  const std::vector<std::pair<uint64_t, int>> rest(before.begin() + 20, before.end());
  EXPECT_EQ(after, rest);
  for (size_t i = 0; i < 20; ++i) EXPECT_NE(d->a->Page(before[i].first).kind, PageInfo::Kind::kAllocated);
  // Zones above the highest allowed type are left alone (there are none
  // below Normal here: nothing is reclaimable for DMA32).
  req.highest_zone_type = kZoneDma32;
  EXPECT_EQ(d->m->Reclaim(req), 0u);
}

TEST(KernelModelTest, OnMigratedUpdatesRecordsSoAReleaseFreesTheNewPfn) {
  auto d = MakeDirect();
  ASSERT_TRUE(d->m->Apply(Op("[[phases]]\nop = \"anon\"\ntag = \"x\"\nsize = \"16KiB\"\n"), "t").ok());
  const auto pages = d->m->AnonPages("x");
  ASSERT_EQ(pages.size(), 4u);
  const uint64_t old_pfn = pages[2].first;
  // What compaction does: the destination becomes allocated with the same
  // owner, the source free; then the owner is told.
  const uint64_t new_pfn = 10000;
  ASSERT_TRUE(d->a->AllocateAt(new_pfn, 0, OwnerKind::kAnon, kMovable).ok());
  ASSERT_TRUE(d->a->Free(old_pfn, 0).ok());
  d->m->OnMigrated(old_pfn, new_pfn, 0);
  EXPECT_EQ(d->m->AnonPages("x")[2].first, new_pfn);
  sc::ReleaseOp whole;
  whole.region = "x";
  whole.pattern = sc::ReleasePattern::kWhole;
  ASSERT_TRUE(d->m->Apply(whole, "t").ok());
  EXPECT_NE(d->a->Page(new_pfn).kind, PageInfo::Kind::kAllocated);  // free (possibly merged)
  EXPECT_TRUE(d->a->CheckInvariants().ok());
  EXPECT_FALSE(d->m->Migrated(123456, 1, 0));  // not the model's
}

TEST(KernelModelTest, HugetlbProbeCountsAndGivesBack) {
  auto r = RunScenario(Machine() + R"(
[[phases]]
op = "probe"
kind = "hugetlb"
count = 4
[[phases]]
op = "probe"
kind = "thp"
count = 3
)");
  ASSERT_TRUE(r->status.ok()) << r->status;
  const Calls c = Count(r->sink);
  ASSERT_EQ(c.probes.size(), 2u);
  EXPECT_EQ(c.probes[0].probe_kind, static_cast<uint32_t>(FL_PROBE_HUGETLB));
  EXPECT_EQ(c.probes[0].order, 9u);
  EXPECT_EQ(c.probes[0].requested, 4u);
  EXPECT_EQ(c.probes[0].obtained, 4u);
  EXPECT_EQ(c.probes[1].probe_kind, static_cast<uint32_t>(FL_PROBE_THP));
  EXPECT_EQ(c.probes[1].obtained, 3u);
  EXPECT_EQ(r->sim->model().counters().htlb_buddy_alloc_success, 4u);
  // Everything was given back: 4 + 3 order-9 blocks and 3 page tables.
  EXPECT_EQ(c.frees, (std::map<int, int>{{9, 7}, {0, 3}}));
}

TEST(KernelModelTest, CollapseReplacesSmallPagesWithOneThp) {
  auto r = RunScenario(Machine() + R"(
[[phases]]
op = "anon"
tag = "s"
size = "2MiB"
[[phases]]
op = "release"
region = "s"
pattern = "every-nth"
n = 4
[[phases]]
op = "thp"
action = "madvise"
region = "s"
[[phases]]
op = "thp"
action = "collapse"
region = "s"
)");
  ASSERT_TRUE(r->status.ok()) << r->status;
  const KernelModel& m = r->sim->model();
  EXPECT_EQ(m.counters().thp_collapse_alloc, 1u);
  const auto pages = m.AnonPages("s");
  ASSERT_EQ(pages.size(), 512u);
  EXPECT_EQ(pages[0].second, 9);
  EXPECT_EQ(m.pages().anon, 512u);
  EXPECT_EQ(m.pages().page_table, 1u);
}

TEST(KernelModelTest, AllocatorSysctlsChangeTheRunningMachine) {
  // watermark_scale_factor sets the min->low gap to managed * factor / 10000
  // pages (when that beats min/4 = 8 pages here): doubling it doubles the gap.
  auto before = RunScenario(Machine() + R"(
[[phases]]
op = "snapshot"
)");
  auto after = RunScenario(Machine() + R"(
[[phases]]
op = "sysctl"
setting = "vm.watermark_scale_factor"
value = "20"
)");
  ASSERT_TRUE(before->status.ok()) << before->status;
  ASSERT_TRUE(after->status.ok()) << after->status;
  const ZoneStats z0 = before->sim->allocator().zone_stats(0);
  const ZoneStats z1 = after->sim->allocator().zone_stats(0);
  EXPECT_EQ(z0.wmark_min, z1.wmark_min);
  EXPECT_EQ(z0.wmark_low - z0.wmark_min, z0.managed * 10 / 10000);
  EXPECT_EQ(z1.wmark_low - z1.wmark_min, z1.managed * 20 / 10000);
  // The other allocator settings apply as well (out-of-range values never
  // get here: the scenario parser refuses them with the file line).
  auto other = RunScenario(Machine() + R"(
[[phases]]
op = "sysctl"
setting = "vm.defrag_mode"
value = "1"
[[phases]]
op = "sysctl"
setting = "vm.min_free_kbytes"
value = "128"
)");
  EXPECT_TRUE(other->status.ok()) << other->status;
}

TEST(KernelModelTest, PercentSizesAreOfTheBudgetAndAPercentBudgetOfTheMachine) {
  // Budget 50% of 64 MiB = 32 MiB; 25% of it = 8 MiB.
  auto r = RunScenario(Machine() + R"(
[budget]
memory = "50%"
[[phases]]
op = "anon"
tag = "p"
size = "25%"
)");
  ASSERT_TRUE(r->status.ok()) << r->status;
  EXPECT_EQ(r->sim->model().budget_bytes(), uint64_t{32} << 20);
  EXPECT_EQ(r->sim->model().AnonPages("p").size(), 2048u);
}

TEST(KernelModelTest, OutOfMemoryIsResourceExhaustedNamingThePhase) {
  auto r = RunScenario(Machine("16MiB") + R"(
[[phases]]
op = "anon"
tag = "big"
size = "32MiB"
)");
  EXPECT_EQ(r->status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(r->status.message(), HasSubstr("phase 0:anon (km.toml:"));
}

}  // namespace
}  // namespace fraglab::sim
