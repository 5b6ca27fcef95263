// The allocation slow path (__alloc_pages_slowpath, reference §5): retry
// rules for __GFP_NORETRY, __GFP_RETRY_MAYFAIL, costly orders, atomic
// requests, defrag_mode, async compaction first for costly orders. Machines
// are built by hand; the number of reclaim rounds is worked out in comments.
#include <algorithm>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "common/event_sink.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/config.h"
#include "sim/page_allocator.h"
#include "sim/testing_util.h"
#include "tests/sim_test_util.h"
#include "sim/page_user.h"

namespace fraglab::sim {
namespace {

using testing::FakeFileOwner;

constexpr uint64_t kNoio = gfp::kReclaim;  // GFP_NOIO: may reclaim, no __GFP_IO (so no compaction)

// 4096-page Normal zone, pcp off, no boosting; min_free_kbytes 512 gives
// min 128, low 160, high 192.
std::unique_ptr<PageAllocator> Make(bool defrag_mode = false, int64_t min_free_kbytes = 512) {
  MachineConfig c = SingleZoneMachine(4096);
  c.pcp = false;
  c.min_free_kbytes = min_free_kbytes;
  c.watermark_boost_factor = 0;
  c.defrag_mode = defrag_mode;
  auto a = PageAllocator::Create(c);
  EXPECT_TRUE(a.ok()) << a.status();
  return std::move(a).value();
}

// Every pfn allocated at order 0 (pfn k by the k-th call); odd pfns are
// file pages owned by `f` except those in [hole, hole + 2^hole_order),
// which are freed again; even pfns are unmovable kernel pages. Free memory
// is then exactly one block of hole_order at `hole`, and reclaim frees
// single odd pages that cannot merge.
void Build(PageAllocator& a, FakeFileOwner& f, uint64_t hole, int hole_order) {
  for (uint64_t k = 0; k < 4096; ++k) {
    OwnerKind o = (k & 1) ? OwnerKind::kFile : OwnerKind::kKernel;
    ASSERT_EQ(a.AllocateWithFlags({0, gfp::kHighuserMovable, 0, 0, o}, alloc::kNoWatermarks), k);
  }
  const uint64_t end = hole + (uint64_t{1} << hole_order);
  for (uint64_t k = 0; k < 4096; ++k) {
    if (k >= hole && k < end) {
      ASSERT_TRUE(a.Free(k, 0).ok());
    } else if (k & 1) {
      f.Add(k);
    }
  }
  ASSERT_EQ(a.zone_stats(0).free_pages, end - hole);
}

// Order 3, one free order-3 block at 96, min 128. The request passes MIN
// once free - 7 > 128, i.e. free >= 136: each reclaim round frees 32
// single pages, so 8 + 32k >= 136 needs k = 4 rounds. should_reclaim_retry
// keeps going meanwhile (progress at a non-costly order; the order-3 block
// exists and free + reclaimable passes MIN). With __GFP_NORETRY the request
// gives up after the first round.
TEST(SimSlowPath, NoretryGivesUpAfterOneRound) {
  auto a = Make();
  FakeFileOwner f(a.get());
  a->set_page_user(&f);
  Build(*a, f, 96, 3);
  EXPECT_EQ(a->Allocate({3, kNoio | gfp::kNoretry, 0, 0, OwnerKind::kKernel}), kNoPfn);
  EXPECT_EQ(a->vm_events().allocstall, 1u);
  EXPECT_EQ(a->vm_events().pgsteal_direct, 32u);
  EXPECT_EQ(a->vm_events().alloc_fail, 1u);
  EXPECT_EQ(a->vm_events().compact_stall, 0u);  // no __GFP_IO: no compaction
}

// `fraglab explain` narrates the slow path: its start, each direct reclaim
// round with the pages it freed, and every retry decision with its rule.
TEST(SimSlowPath, NarratesTheSlowPathReclaimRoundsAndEachRetryDecision) {
  for (const bool noretry : {false, true}) {
    SCOPED_TRACE(noretry ? "__GFP_NORETRY" : "may retry");
    MachineConfig c = SingleZoneMachine(4096);
    c.pcp = false;
    c.min_free_kbytes = 512;
    c.watermark_boost_factor = 0;
    testing::RecordingNarrator n;
    auto a = PageAllocator::Create(c, nullptr, &n);
    ASSERT_TRUE(a.ok()) << a.status();
    FakeFileOwner f(a->get());
    (*a)->set_page_user(&f);
    Build(**a, f, 96, 3);
    n.decisions.clear();
    const uint64_t pfn =
        (*a)->Allocate({3, kNoio | (noretry ? gfp::kNoretry : 0), 0, 0, OwnerKind::kKernel});
    EXPECT_EQ(pfn, noretry ? kNoPfn : 96u);
    int slow = 0, reclaim = 0, retry_yes = 0, retry_no = 0;
    std::string last_retry;
    for (const Decision& d : n.decisions) {
      slow += d.kind == DecisionKind::kSlowPath;
      if (d.kind == DecisionKind::kDirectReclaim) {
        ++reclaim;
        EXPECT_EQ(d.value, 32);
        EXPECT_NE(d.text.find("32 pages"), std::string::npos) << d.text;
      }
      if (d.kind == DecisionKind::kRetry) {
        (d.yes ? retry_yes : retry_no)++;
        last_retry = d.text;
      }
    }
    EXPECT_EQ(slow, 1);
    // Four rounds as worked out above; the fourth allocates.
    EXPECT_EQ(reclaim, noretry ? 1 : 4);
    EXPECT_EQ(retry_yes, noretry ? 0 : 3);
    EXPECT_EQ(retry_no, noretry ? 1 : 0);
    if (noretry) {
      EXPECT_NE(last_retry.find("__GFP_NORETRY"), std::string::npos) << last_retry;
    } else {
      EXPECT_NE(last_retry.find("should_reclaim_retry"), std::string::npos) << last_retry;
    }
  }
}

TEST(SimSlowPath, NonCostlyRequestRetriesWhileReclaimProgresses) {
  auto a = Make();
  FakeFileOwner f(a.get());
  a->set_page_user(&f);
  Build(*a, f, 96, 3);
  EXPECT_EQ(a->Allocate({3, kNoio, 0, 0, OwnerKind::kKernel}), 96u);
  EXPECT_EQ(a->vm_events().allocstall, 4u);
  EXPECT_EQ(a->vm_events().pgsteal_direct, 128u);
  EXPECT_EQ(a->vm_events().alloc_fail, 0u);
  EXPECT_EQ(a->zone_stats(0).free_pages, 8u + 128u - 8u);
  absl::Status s = a->CheckInvariants();
  EXPECT_TRUE(s.ok()) << s;
}

// Costly orders (> 3) never retry without __GFP_RETRY_MAYFAIL, and not
// even with it when compaction is impossible (no __GFP_IO): one round.
TEST(SimSlowPath, CostlyOrderRetriesOnlyWithRetryMayfailAndCompaction) {
  for (uint64_t extra : {uint64_t{0}, gfp::kRetryMayfail}) {
    auto a = Make();
    FakeFileOwner f(a.get());
    a->set_page_user(&f);
    Build(*a, f, 96 + 32, 4);  // one free order-4 block at 128
    EXPECT_EQ(a->Allocate({4, kNoio | extra, 0, 0, OwnerKind::kKernel}), kNoPfn);
    EXPECT_EQ(a->vm_events().allocstall, 1u) << extra;
    EXPECT_EQ(a->vm_events().alloc_fail, 1u);
  }
}

// Atomic requests (no __GFP_DIRECT_RECLAIM) neither reclaim nor compact;
// an order-0 GFP_KERNEL request without anything reclaimable does one
// fruitless round (should_reclaim_retry: free alone fails MIN) and fails
// where the kernel would call the OOM killer.
TEST(SimSlowPath, AtomicNeverReclaimsKernelFailsAfterOneFruitlessRound) {
  auto a = Make();
  FakeFileOwner f(a.get());  // owns nothing reclaimable below
  a->set_page_user(&f);
  for (uint64_t k = 0; k < 4096 - 100; ++k) {
    ASSERT_NE(a->AllocateWithFlags({0, gfp::kKernel, 0, 0, OwnerKind::kKernel}, alloc::kNoWatermarks), kNoPfn);
  }
  // 100 free pages: below min 128 even for GFP_ATOMIC's reduced mark?
  // ATOMIC: min 128 - 64 (__GFP_HIGH) - 16 (non-blocking) = 48 < 100: it
  // succeeds from the reserve, without reclaim.
  EXPECT_NE(a->Allocate({0, gfp::kAtomic, 0, 0, OwnerKind::kKernel}), kNoPfn);
  EXPECT_EQ(a->Allocate({0, gfp::kNowait, 0, 0, OwnerKind::kKernel}), kNoPfn);
  EXPECT_EQ(a->vm_events().allocstall, 0u);
  EXPECT_EQ(f.requests.size(), 0u);
  EXPECT_EQ(a->Allocate({0, gfp::kKernel, 0, 0, OwnerKind::kKernel}), kNoPfn);
  EXPECT_EQ(a->vm_events().allocstall, 1u);
  EXPECT_EQ(f.requests.size(), 1u);
  EXPECT_EQ(a->vm_events().alloc_fail, 2u);
}

// defrag_mode (§5.4): the only free memory is the order-8 block at 256 in
// MOVABLE pageblock 0; an UNMOVABLE request could only fragment. Nothing is
// reclaimable, but free + reclaimable passes MIN, so should_reclaim_retry
// allows MAX_RECLAIM_RETRIES more rounds: it gives up when the no-progress
// count exceeds 16, i.e. after 17 reclaim rounds; only then may the
// request fragment (a claim of block 0: 256 free >= half a block).
// Without defrag_mode the fast path fragments at once.
TEST(SimSlowPath, DefragModeFragmentsOnlyAfterReclaimRetries) {
  for (bool defrag : {true, false}) {
    auto a = Make(defrag, 128);
    for (uint64_t k = 0; k < 4096; ++k) {
      ASSERT_EQ(a->AllocateWithFlags({0, gfp::kHighuserMovable, 0, 0, OwnerKind::kAnon}, alloc::kNoWatermarks), k);
    }
    for (uint64_t k = 256; k < 512; ++k) ASSERT_TRUE(a->Free(k, 0).ok());
    EXPECT_EQ(a->Allocate({0, gfp::kKernel, 0, 0, OwnerKind::kKernel}), 256u) << defrag;
    EXPECT_EQ(a->vm_events().allocstall, defrag ? 17u : 0u);
    EXPECT_EQ(a->PageblockType(256), kUnmovable);
  }
}

// A __GFP_NORETRY request gives up before the retries run out, so in
// defrag_mode it never fragments: one reclaim round, then failure.
TEST(SimSlowPath, DefragModeNoretryNeverFragments) {
  auto a = Make(/*defrag_mode=*/true, 128);
  for (uint64_t k = 0; k < 4096; ++k) {
    ASSERT_EQ(a->AllocateWithFlags({0, gfp::kHighuserMovable, 0, 0, OwnerKind::kAnon}, alloc::kNoWatermarks), k);
  }
  for (uint64_t k = 256; k < 512; ++k) ASSERT_TRUE(a->Free(k, 0).ok());
  EXPECT_EQ(a->Allocate({0, gfp::kKernel | gfp::kNoretry, 0, 0, OwnerKind::kKernel}), kNoPfn);
  EXPECT_EQ(a->vm_events().allocstall, 1u);
  EXPECT_EQ(a->PageblockType(256), kMovable);
}

// THP-style requests (order 9, __GFP_NORETRY): without direct reclaim
// (defrag=never-like) no reclaim at all; with it and no page user (so no
// compaction), one round and the request fails.
TEST(SimSlowPath, ThpStyleCostlyNoretry) {
  for (bool direct : {false, true}) {
    auto a = Make();
    for (uint64_t k = 0; k < 4096; k += 2) {
      ASSERT_NE(a->AllocateWithFlags({1, gfp::kHighuserMovable, 0, 0, OwnerKind::kAnon}, alloc::kNoWatermarks),
                kNoPfn);
    }
    for (uint64_t k = 0; k < 4096; k += 4) ASSERT_TRUE(a->Free(k, 1).ok());
    uint64_t g = gfp::kHighuserMovable | gfp::kComp | gfp::kNoretry;
    if (!direct) g &= ~gfp::kDirectReclaim;
    EXPECT_EQ(a->Allocate({9, g, 0, 0, OwnerKind::kAnon}), kNoPfn);
    EXPECT_EQ(a->vm_events().allocstall, direct ? 1u : 0u);
    EXPECT_EQ(a->vm_events().compact_stall, 0u);
  }
}

// Costly orders try async compaction before any reclaim. Case "sparse":
// pageblocks 0..3 have every other page free (1024 free, no free order >=
// 1), the rest is file pages. Async compaction for order 9 needs the free
// pages to pass low + 2 * 512 = 1184 (sim/compaction.cc, 6.15+ rule): it is
// skipped, and a costly __GFP_NORETRY request then fails at once, without
// reclaim and without a compaction stall. Case "dense": in every pageblock
// only every fourth page is a file page (3072 free): compaction runs first
// (async), then one reclaim round, then compaction again still at async
// priority (__GFP_NORETRY keeps costly requests async), then the request
// gives up. Whether compaction finds a block is sim/compaction.cc's
// business; the order of the steps is the slow path's.
TEST(SimSlowPath, CostlyOrderTriesAsyncCompactionBeforeReclaim) {
  for (bool dense : {false, true}) {
    VectorSink sink;
    MachineConfig c = SingleZoneMachine(4096);
    c.pcp = false;
    c.min_free_kbytes = 512;
    c.watermark_boost_factor = 0;
    auto a = std::move(PageAllocator::Create(c, &sink)).value();
    FakeFileOwner f(a.get());
    a->set_page_user(&f);
    for (uint64_t k = 0; k < 4096; ++k) {
      ASSERT_EQ(a->AllocateWithFlags({0, gfp::kHighuserMovable, 0, 0, OwnerKind::kFile}, alloc::kNoWatermarks), k);
    }
    for (uint64_t k = 0; k < 4096; ++k) {
      bool free_it = dense ? (k % 4 != 3) : (k < 2048 && !(k & 1));
      if (free_it) {
        ASSERT_TRUE(a->Free(k, 0).ok());
      } else {
        f.Add(k);
      }
    }
    sink.clear();
    uint64_t pfn = a->Allocate({9, gfp::kHighuserMovable | gfp::kNoretry, 0, 0, OwnerKind::kAnon});
    const VmEventCounters& v = a->vm_events();
    if (!dense) {
      EXPECT_EQ(pfn, kNoPfn);
      EXPECT_EQ(v.allocstall, 0u);
      EXPECT_EQ(f.requests.size(), 0u);
      EXPECT_EQ(v.compact_stall, 0u);  // skipped compaction is no stall
      EXPECT_EQ(v.alloc_fail, 1u);
      continue;
    }
    // Steps in event order: compaction tries (with their priorities) and
    // reclaim rounds.
    std::vector<std::string> steps;
    for (size_t i = 0; i < sink.size(); ++i) {
      if (sink.at(i).kind == FL_EV_COMPACT_TRY) {
        steps.push_back("compact prio " + std::to_string(sink.as<fl_compact_try>(i).prio));
      } else if (sink.at(i).kind == FL_EV_DIRECT_RECLAIM_BEGIN) {
        steps.push_back("reclaim");
      } else if (sink.at(i).kind == FL_EV_PAGE_ALLOC) {
        steps.push_back(sink.as<fl_page_alloc>(i).pfn == kNoPfn ? "fail" : "alloc");
      }
    }
    if (pfn != kNoPfn) {
      EXPECT_THAT(steps, ::testing::ElementsAre("compact prio 2", "alloc"));
      EXPECT_EQ(v.allocstall, 0u);
    } else {
      EXPECT_THAT(steps, ::testing::ElementsAre("compact prio 2", "reclaim", "compact prio 2", "fail"));
      EXPECT_EQ(v.allocstall, 1u);
    }
    absl::Status s = a->CheckInvariants();
    EXPECT_TRUE(s.ok()) << s;
  }
}

}  // namespace
}  // namespace fraglab::sim
