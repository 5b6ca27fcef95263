// The arena: shrinks the free memory the buddy allocator has to work with
// before a run, so that a workload of one or two GiB changes the
// machine-wide picture decisively instead of being served from a sea of
// untouched free pageblocks.
//
// Why several steps: an order-0 movable allocation is served from the
// smallest free block on the MOVABLE lists first, so the many free blocks of
// order < 9 scattered through a used machine absorb a small workload before
// any free pageblock is touched; likewise an unmovable allocation is served
// from the free space inside UNMOVABLE pageblocks (a few hundred MiB after a
// build freed its slab) and never falls back while that lasts.
//  1. The ballast (base pages, MADV_NOHUGEPAGE) takes the small MOVABLE
//     blocks of the zones user memory comes from first (Normal/Movable when
//     the machine has them).
//  2. The hugetlb pool grows by every free order-9 block but the arena's,
//     counted over all zones; the kernel fills the pool from the highest zone
//     down, so the arena's free pageblocks end up in the lowest zone that has
//     them (DMA32 on x86-64).
//  3. Pipe buffers (unmovable order-0 pages, filled and never read) take
//     nine tenths of the free pages on the UNMOVABLE lists, so a scenario's
//     unmovable work falls back into MOVABLE pageblocks as it would on a busy
//     machine instead of depending on how much slab the last build freed.
//     The tenth left keeps the ballast itself from falling back.
//  4. A second ballast takes the small MOVABLE blocks still free in any zone
//     (the lower zone's, which step 1 could not reach while the higher zone
//     had free pageblocks).
// All is given back at the end: the pool through the restore journal (so a
// crash is undone by the next run or `fraglab restore`), the ballasts and the
// pipes with the process.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gen/anon.h"
#include "gen/context.h"
#include "gen/pin.h"

namespace fraglab::gen {

struct ArenaResult {
  uint64_t requested_bytes = 0;   // the arena asked for
  uint64_t free_before = 0;       // buddy free bytes, all zones, before
  uint64_t free_after = 0;        // ... after: what the run works with
  uint64_t order9_before = 0;     // free order-9 blocks (order 10 counts 2), all zones
  uint64_t order9_after = 0;
  uint64_t ballast_bytes = 0;     // step 1: base pages over the small MOVABLE free blocks
  uint64_t pipe_bytes = 0;        // step 3: pipe buffers over the UNMOVABLE free lists
  uint64_t topup_bytes = 0;       // step 4: base pages over the small blocks left in all zones
  uint64_t reserve_bytes = 0;     // the kernel's reserve (high watermarks + lowmem protection),
                                  // kept free on top of the arena: MemAvailable leaves it out
  uint64_t pool_before = 0;       // nr_hugepages (2 MiB) before
  uint64_t pool_pages = 0;        // hugetlb pages the arena added to the pool
  uint64_t duration_ns = 0;
  std::vector<std::string> zones; // the zones the ballast covered
  std::vector<std::string> notes;
};

// Owns the ballast and the pool pages. Thread-safe: the watchdog may call
// GiveBack() while the run is busy on another thread.
class Arena {
 public:
  // Leaves about `arena_bytes` of free memory plus the kernel's reserve
  // (what MemAvailable does not count: high watermarks and lowmem
  // protection), as free order-9 blocks plus whatever small free blocks the
  // ballasts could not take. Needs root (the pool) and the journal; FailedPrecondition
  // otherwise. The ballast is reserved in its own accounting, not in
  // ctx.ledger (the scenario's budget is for the scenario). When the arena is
  // as large as the free memory already, nothing is taken and a note says so.
  // `publish`, when given, points at the arena from the moment it holds
  // anything (and is cleared before an error return destroys it), so the
  // watchdog can count and give back what is taken out while it is taken.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Arena>> Shrink(
      uint64_t arena_bytes, OpContext& ctx, std::atomic<Arena*>* publish = nullptr);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  const ArenaResult& result() const { return result_; }
  // Bytes still taken out (0 after GiveBack).
  uint64_t held_bytes() const;
  // Shrinks the pool back to its value before and drops the ballast's pages;
  // idempotent. Errors are kept for error().
  void GiveBack();
  // The first error GiveBack met ("" when none).
  std::string error() const;

 private:
  Arena() = default;

  ArenaResult result_;
  // Faults `bytes` of base pages into ballasts_ (step 1 or 4); adds what was
  // populated to *counted.
  [[nodiscard]] absl::Status AddBallast(uint64_t bytes, OpContext& ctx, uint64_t* counted);

  MemoryLedger ballast_ledger_{UINT64_MAX};
  std::vector<std::unique_ptr<AnonRegion>> ballasts_;
  std::unique_ptr<Pin> pipes_;
  mutable std::mutex mu_;
  bool given_back_ = false;
  std::string error_;
};

}  // namespace fraglab::gen
