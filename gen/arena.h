// The arena: shrinks the free memory the buddy allocator has to work with
// before a run, so that a workload of one or two GiB changes the
// machine-wide picture decisively instead of being served from a sea of
// untouched free pageblocks.
//
// Why two steps: an order-0 movable allocation is served from the smallest
// free block on the MOVABLE lists first, so the many free blocks of order < 9
// scattered through a used machine absorb a small workload before any free
// pageblock is touched. The ballast (base pages, MADV_NOHUGEPAGE) takes those
// small blocks out first; then the hugetlb pool grows by every free order-9
// block but the arena's, which takes whole free pageblocks out. Both are
// given back at the end: the pool through the restore journal (so a crash is undone
// by the next run or `fraglab restore`), the ballast with the process.
//
// The ballast covers the zones user memory comes from first (Normal/Movable
// when the machine has them); the pool counts free order-9 blocks over all
// zones and takes them from the highest zone down, so the arena's free
// pageblocks end up in the lowest zone that has them (DMA32 on x86-64).
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

namespace fraglab::gen {

struct ArenaResult {
  uint64_t requested_bytes = 0;   // the arena asked for
  uint64_t free_before = 0;       // buddy free bytes, all zones, before
  uint64_t free_after = 0;        // ... after: what the run works with
  uint64_t order9_before = 0;     // free order-9 blocks (order 10 counts 2), all zones
  uint64_t order9_after = 0;
  uint64_t ballast_bytes = 0;     // base pages faulted over the small free blocks
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
  // Leaves about `arena_bytes` of free memory (as free order-9 blocks plus
  // whatever small free blocks the ballast could not take) in the arena
  // zones. Needs root (the pool) and the journal; FailedPrecondition
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
  MemoryLedger ballast_ledger_{UINT64_MAX};
  std::unique_ptr<AnonRegion> ballast_;
  mutable std::mutex mu_;
  bool given_back_ = false;
  std::string error_;
};

}  // namespace fraglab::gen
