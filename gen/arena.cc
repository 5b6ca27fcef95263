#include "gen/arena.h"

#include <time.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/snapshot_machine.h"
#include "common/status.h"
#include "gen/probe.h"
#include "gen/sysfs.h"

namespace fraglab::gen {
namespace {

uint64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

// The zones the workload allocates from: Normal and Movable when present
// (user memory goes there first), else every populated zone.
std::vector<size_t> ArenaZones(const snapshot::MachineSnapshot& s) {
  std::vector<size_t> out;
  for (size_t z = 0; z < s.zones.size(); ++z) {
    if ((s.zones[z].name == "Normal" || s.zones[z].name == "Movable") && s.zones[z].managed > 0) {
      out.push_back(z);
    }
  }
  if (out.empty()) {
    for (size_t z = 0; z < s.zones.size(); ++z) {
      if (s.zones[z].managed > 0) out.push_back(z);
    }
  }
  return out;
}

struct ZoneTotals {
  uint64_t free_pages = 0;
  uint64_t order9 = 0;               // free order-9 blocks, order 10 counting 2
  uint64_t small_movable_pages = 0;  // free pages in MOVABLE blocks of order < 9
};

ZoneTotals Totals(const snapshot::MachineSnapshot& s, const std::vector<size_t>& zones) {
  ZoneTotals t;
  int movable = -1;
  for (size_t i = 0; i < s.migratetype_names.size(); ++i) {
    if (s.migratetype_names[i] == "Movable") movable = static_cast<int>(i);
  }
  for (size_t zi : zones) {
    const auto& z = s.zones[zi];
    t.free_pages += z.BuddyFreePages();
    for (size_t o = 9; o < z.nr_free.size(); ++o) t.order9 += z.nr_free[o] << (o - 9);
    if (movable >= 0 && static_cast<size_t>(movable) < z.free_by_type.size()) {
      const auto& f = z.free_by_type[movable];
      for (size_t o = 0; o < 9 && o < f.size(); ++o) t.small_movable_pages += f[o] << o;
    } else {
      // No per-type counts: every small free block may serve the workload.
      for (size_t o = 0; o < 9 && o < z.nr_free.size(); ++o) t.small_movable_pages += z.nr_free[o] << o;
    }
  }
  return t;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Arena>> Arena::Shrink(uint64_t arena_bytes, OpContext& ctx,
                                                     std::atomic<Arena*>* publish) {
  if (arena_bytes == 0) return absl::InvalidArgumentError("arena: size 0");
  RETURN_IF_ERROR(RequireJournal(ctx, "arena"));
  std::unique_ptr<Arena> a(new Arena());
  // Unpublished before `a` is destroyed on any error return.
  struct Unpublish {
    std::atomic<Arena*>* p;
    bool armed = true;
    ~Unpublish() {
      if (p != nullptr && armed) p->store(nullptr);
    }
  } unpublish{publish};
  if (publish != nullptr) publish->store(a.get());
  ArenaResult& r = a->result_;
  r.requested_bytes = arena_bytes;
  const uint64_t t0 = NowNs();
  auto pool = ReadUint(kNrHugepages2M);
  if (!pool.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("arena: cannot read ", kNrHugepages2M,
                     " (kernel without CONFIG_HUGETLBFS?): ", pool.status().message()));
  }
  r.pool_before = *pool;
  ASSIGN_OR_RETURN(snapshot::MachineSnapshot s0, snapshot::ReadMachineSnapshot("/"));
  const std::vector<size_t> zones = ArenaZones(s0);
  std::vector<size_t> all_zones;
  for (size_t z = 0; z < s0.zones.size(); ++z) all_zones.push_back(z);
  for (size_t z : zones) r.zones.push_back(s0.zones[z].name);
  const ZoneTotals t0z = Totals(s0, zones);
  const ZoneTotals t0all = Totals(s0, all_zones);
  r.free_before = t0all.free_pages * kPageBytes;
  r.order9_before = t0all.order9;
  if (r.free_before <= arena_bytes) {
    r.free_after = r.free_before;
    r.order9_after = r.order9_before;
    r.notes.push_back(absl::StrCat("arena: ", HumanBytes(r.free_before), " free already within the ",
                                   HumanBytes(arena_bytes), " asked for; nothing taken out"));
    r.duration_ns = NowNs() - t0;
    unpublish.armed = false;
    return a;
  }

  // 1. Ballast over the small MOVABLE free blocks (the workload's first
  // choice), never more than the surplus over the arena.
  const uint64_t ballast =
      std::min(t0z.small_movable_pages * kPageBytes, r.free_before - arena_bytes);
  if (ballast >= kPmdBytes) {
    OpContext bctx = ctx;
    bctx.ledger = &a->ballast_ledger_;
    AnonParams p;
    p.bytes = ballast;
    p.page_size = AnonPageSize::kBase;
    std::unique_ptr<AnonRegion> region;
    auto touched = MapAndTouch(p, bctx, &region);
    {
      std::lock_guard<std::mutex> lock(a->mu_);
      a->ballast_ = std::move(region);
      if (a->ballast_ != nullptr) a->result_.ballast_bytes = a->ballast_->populated_pages() * kPageBytes;
      // Given back while it was being faulted: drop it now.
      if (a->given_back_ && a->ballast_ != nullptr) {
        (void)a->ballast_->Discard(0, a->ballast_->bytes() / kPageBytes, /*unmap=*/false);
      }
    }
    if (!touched.ok()) {
      return absl::Status(touched.status().code(),
                          absl::StrCat("arena ballast of ", HumanBytes(ballast), ": ",
                                       touched.status().message()));
    }
  }
  if (ctx.stop->requested()) return ctx.stop->StoppedStatus("arena");

  // 2. The hugetlb pool takes every free order-9 block but the arena's,
  // counted over all zones: the kernel fills the pool from the highest zone
  // down, so what is left is in the lowest zones (DMA32 on x86-64), and the
  // workload, finding no free pageblock above, is served there once the
  // small blocks above are used. Only blocks free now are asked for, so the
  // kernel need not reclaim or compact. (Holding pool pages in use to steer
  // which zone keeps the arena would need every page zeroed: on this VM, with
  // free page reporting, that costs seconds per GiB.)
  ASSIGN_OR_RETURN(snapshot::MachineSnapshot s1, snapshot::ReadMachineSnapshot("/"));
  const ZoneTotals t1 = Totals(s1, all_zones);
  const uint64_t keep = arena_bytes / kPmdBytes;
  if (ctx.stop->requested()) return ctx.stop->StoppedStatus("arena");
  if (t1.order9 > keep) {
    const uint64_t want = t1.order9 - keep;
    absl::Status grow = ctx.journal->ChangeSetting(kNrHugepages2M, std::to_string(r.pool_before + want));
    auto after = ReadUint(kNrHugepages2M);
    {
      std::lock_guard<std::mutex> lock(a->mu_);
      if (after.ok() && *after > r.pool_before) r.pool_pages = *after - r.pool_before;
    }
    if (!grow.ok()) {
      // Whatever the pool got is given back by the destructor.
      if (grow.code() == absl::StatusCode::kPermissionDenied) {
        return absl::FailedPreconditionError(
            absl::StrCat("arena needs root to grow ", kNrHugepages2M, ": ", grow.message()));
      }
      return grow;
    }
    if (r.pool_pages < want) {
      r.notes.push_back(absl::StrCat("arena: the hugetlb pool got ", r.pool_pages, " of ", want,
                                     " pages (free blocks went elsewhere meanwhile)"));
    }
  } else {
    r.notes.push_back(absl::StrCat("arena: only ", t1.order9, " free order-9 blocks after the ballast, ",
                                   "not more than the ", keep, " kept; no hugetlb pages taken"));
  }
  ASSIGN_OR_RETURN(snapshot::MachineSnapshot s2, snapshot::ReadMachineSnapshot("/"));
  const ZoneTotals t2 = Totals(s2, all_zones);
  r.free_after = t2.free_pages * kPageBytes;
  r.order9_after = t2.order9;
  r.duration_ns = NowNs() - t0;
  unpublish.armed = false;
  return a;
}

Arena::~Arena() {
  GiveBack();
  std::lock_guard<std::mutex> lock(mu_);
  ballast_.reset();
}

uint64_t Arena::held_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (given_back_) return 0;
  return result_.pool_pages * kPmdBytes + result_.ballast_bytes;
}

void Arena::GiveBack() {
  std::lock_guard<std::mutex> lock(mu_);
  if (given_back_) return;
  given_back_ = true;
  if (result_.pool_pages > 0) {
    // Shrink by what the arena added, never below what is there now: another
    // run that grew the pool meanwhile keeps its pages, and one that already
    // shrank it is not undone. The journal entry stays: its replay finds the
    // value already restored when runs did not overlap.
    auto now = ReadUint(kNrHugepages2M);
    if (!now.ok()) {
      if (error_.empty()) error_ = std::string(now.status().message());
    } else {
      const uint64_t target = *now > result_.pool_pages ? *now - result_.pool_pages : 0;
      if (target < *now) {
        absl::Status st = WriteSetting(kNrHugepages2M, std::to_string(target));
        if (!st.ok() && error_.empty()) error_ = std::string(st.message());
      }
    }
  }

  if (ballast_ != nullptr) {
    auto st = ballast_->Discard(0, ballast_->bytes() / kPageBytes, /*unmap=*/false);
    if (!st.ok() && error_.empty()) error_ = std::string(st.status().message());
  }
}

std::string Arena::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

}  // namespace fraglab::gen
