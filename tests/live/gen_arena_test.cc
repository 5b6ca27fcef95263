// The arena (gen/arena.h) on the real kernel: what it takes out and that it
// gives everything back. Needs root (the hugetlb pool) and at least 6 GiB of
// MemAvailable; takes the machine down to about 2 GiB free for a second.
#include "gen/arena.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "common/snapshot_machine.h"
#include "gen/probe.h"
#include "gen/safety.h"
#include "gen/sysfs.h"
#include "tests/live/live_test_util.h"

namespace fraglab::gen {
namespace {

constexpr uint64_t kMiB = 1ULL << 20;

struct FreeByKind {
  uint64_t unmovable = 0;      // free pages on the UNMOVABLE lists, any order
  uint64_t small_movable = 0;  // free pages in MOVABLE blocks of order < 9
};

FreeByKind ReadFreeByKind() {
  FreeByKind out;
  auto s = snapshot::ReadMachineSnapshot("/");
  if (!s.ok()) return out;
  int unmovable = -1, movable = -1;
  for (size_t i = 0; i < s->migratetype_names.size(); ++i) {
    if (s->migratetype_names[i] == "Unmovable") unmovable = static_cast<int>(i);
    if (s->migratetype_names[i] == "Movable") movable = static_cast<int>(i);
  }
  for (const auto& z : s->zones) {
    if (unmovable >= 0 && static_cast<size_t>(unmovable) < z.free_by_type.size()) {
      const auto& f = z.free_by_type[unmovable];
      for (size_t o = 0; o < f.size(); ++o) out.unmovable += f[o] << o;
    }
    if (movable >= 0 && static_cast<size_t>(movable) < z.free_by_type.size()) {
      const auto& f = z.free_by_type[movable];
      for (size_t o = 0; o < 9 && o < f.size(); ++o) out.small_movable += f[o] << o;
    }
  }
  return out;
}

uint64_t SelfRss() {
  auto kv = ReadKeyValueFile("/proc/self/status");
  return kv.ok() ? ValueOr0(*kv, "VmRSS") : 0;
}

class GenArenaTest : public testing::GenContextTest {
 protected:
  GenArenaTest() : GenContextTest("fraglab-arena-live", "", "grows the hugetlb pool") {}
  void SetUp() override {
    GenContextTest::SetUp();
    if (HasFatalFailure()) return;
    NeedRoot();
    if (IsSkipped()) return;
    if (!ReadSetting(kNrHugepages2M).ok()) GTEST_SKIP() << "no " << kNrHugepages2M << " (no hugetlbfs)";
    auto sample = ReadMemorySample();
    ASSERT_TRUE(sample.ok()) << sample.status();
    if (sample->mem_available < 6 * 1024 * kMiB) {
      GTEST_SKIP() << "MemAvailable " << HumanBytes(sample->mem_available)
                   << " < 6 GiB: the arena needs room to take memory out";
    }
  }
};

TEST_F(GenArenaTest, TakesTheSmallBlocksAndTheUnmovableListsAndGivesAllBack) {
  const uint64_t arena_bytes = 2048 * kMiB;
  auto pool_before = ReadUint(kNrHugepages2M);
  ASSERT_TRUE(pool_before.ok());
  const uint64_t rss_before = SelfRss();
  const FreeByKind before = ReadFreeByKind();

  auto a = Arena::Shrink(arena_bytes, ctx_);
  ASSERT_TRUE(a.ok()) << a.status();
  const FreeByKind after = ReadFreeByKind();
  const ArenaResult& r = (*a)->result();
  for (const auto& n : r.notes) std::fprintf(stderr, "note: %s\n", n.c_str());
  std::fprintf(stderr,
               "arena: free %s -> %s, reserve %s, ballast %s, pool +%lu, pipes %s, top-up %s; "
               "UNMOVABLE free %s -> %s, small MOVABLE free %s -> %s\n",
               HumanBytes(r.free_before).c_str(), HumanBytes(r.free_after).c_str(),
               HumanBytes(r.reserve_bytes).c_str(), HumanBytes(r.ballast_bytes).c_str(),
               static_cast<unsigned long>(r.pool_pages), HumanBytes(r.pipe_bytes).c_str(),
               HumanBytes(r.topup_bytes).c_str(), HumanBytes(before.unmovable * kPageBytes).c_str(),
               HumanBytes(after.unmovable * kPageBytes).c_str(),
               HumanBytes(before.small_movable * kPageBytes).c_str(),
               HumanBytes(after.small_movable * kPageBytes).c_str());

  // The pool took the free pageblocks beyond the arena and the reserve.
  EXPECT_GT(r.pool_pages, 0u);
  EXPECT_GT(r.reserve_bytes, 0u);
  const uint64_t kept = arena_bytes + r.reserve_bytes;
  // Other processes allocate and free meanwhile (in CI, right after the
  // build, freed slab and exiting test processes refill the free lists
  // while the arena is taken), virtio-mem plugs memory in: the bounds on what
  // is free afterwards are wide; the arena's own accounting is checked
  // closely. Measured in CI: free 19.7 -> 2.8 GiB for 2.2 GiB kept; here,
  // run twice in a row: 21.7 -> 3.4 GiB.
  // At least 85 % of the free memory beyond the arena and the reserve was
  // taken out (94-97 % measured; free page reporting holds blocks off the
  // lists while the pool grows and gives them back afterwards).
  ASSERT_GT(r.free_before, kept);
  EXPECT_GE(static_cast<double>(r.free_before - std::min(r.free_before, r.free_after)),
            0.85 * static_cast<double>(r.free_before - kept))
      << HumanBytes(r.free_before) << " -> " << HumanBytes(r.free_after) << ", kept " << HumanBytes(kept);
  EXPECT_GT(r.free_after + 512 * kMiB, kept) << HumanBytes(r.free_after);
  EXPECT_LT(r.order9_after, r.order9_before);
  // The pipes asked for nine tenths of the UNMOVABLE free lists as the arena
  // measured them. What the lists hold afterwards is no measure right after a
  // build: in CI they went 334 -> 329 MiB while the pipes took 300 MiB, others
  // freeing unmovable pages as fast (quiet: 578 -> 107 MiB). Whether the
  // scenarios' unmovable work then falls back is what the unmovable-pinning
  // effect test checks.
  if (before.unmovable * kPageBytes >= 4 * kMiB) {
    EXPECT_GE(r.pipe_bytes, before.unmovable * kPageBytes / 2);
    EXPECT_LE(r.pipe_bytes, before.unmovable * kPageBytes + 256 * kMiB);
  }
  // Small MOVABLE blocks are left only where the arena's size stopped the
  // top-up (+ 64 MiB of noise).
  const uint64_t room = r.free_after > kept ? r.free_after - kept : 0;
  EXPECT_LE(after.small_movable * kPageBytes, room + 128 * kMiB)
      << "small MOVABLE free " << HumanBytes(after.small_movable * kPageBytes);
  EXPECT_EQ((*a)->held_bytes(),
            r.pool_pages * kPmdBytes + r.ballast_bytes + r.pipe_bytes + r.topup_bytes);

  (*a)->GiveBack();
  EXPECT_EQ((*a)->error(), "");
  EXPECT_EQ((*a)->held_bytes(), 0u);
  auto pool_after = ReadUint(kNrHugepages2M);
  ASSERT_TRUE(pool_after.ok());
  EXPECT_EQ(*pool_after, *pool_before);
  (*a)->GiveBack();  // idempotent
  EXPECT_EQ((*a)->error(), "");
  a->reset();
  EXPECT_LT(SelfRss(), rss_before + 64 * kMiB);
}

TEST_F(GenArenaTest, AnArenaAsLargeAsFreeMemoryTakesNothing) {
  auto a = Arena::Shrink(uint64_t{1} << 50, ctx_);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->held_bytes(), 0u);
  ASSERT_EQ((*a)->result().notes.size(), 1u);
  EXPECT_NE((*a)->result().notes[0].find("nothing taken out"), std::string::npos);
}

}  // namespace
}  // namespace fraglab::gen
