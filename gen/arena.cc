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
  uint64_t unmovable_pages = 0;      // free pages on the UNMOVABLE lists, any order
};

// What MemAvailable leaves out of free memory (the kernel's
// totalreserve_pages): per zone its high watermark plus its largest lowmem
// protection, at most what the zone manages. The arena keeps this much on top
// of what it was asked for, so MemAvailable during the run starts near the
// arena's size and the watchdog's raw floor keeps its margin.
uint64_t ReservePages(const snapshot::MachineSnapshot& s) {
  uint64_t n = 0;
  for (const auto& z : s.zones) {
    uint64_t prot = 0;
    for (uint64_t p : z.protection) prot = std::max(prot, p);
    n += std::min(z.managed, z.wmark_high + prot);
  }
  return n;
}

int TypeIndex(const snapshot::MachineSnapshot& s, const char* name) {
  for (size_t i = 0; i < s.migratetype_names.size(); ++i) {
    if (s.migratetype_names[i] == name) return static_cast<int>(i);
  }
  return -1;
}

ZoneTotals Totals(const snapshot::MachineSnapshot& s, const std::vector<size_t>& zones) {
  ZoneTotals t;
  const int movable = TypeIndex(s, "Movable");
  const int unmovable = TypeIndex(s, "Unmovable");
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
    if (unmovable >= 0 && static_cast<size_t>(unmovable) < z.free_by_type.size()) {
      const auto& f = z.free_by_type[unmovable];
      for (size_t o = 0; o < f.size(); ++o) t.unmovable_pages += f[o] << o;
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
  r.reserve_bytes = ReservePages(s0) * kPageBytes;
  const uint64_t kept_bytes = arena_bytes + r.reserve_bytes;
  if (r.free_before <= kept_bytes) {
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
      std::min(t0z.small_movable_pages * kPageBytes, r.free_before - kept_bytes);
  if (ballast >= kPmdBytes) {
    RETURN_IF_ERROR(a->AddBallast(ballast, ctx, &r.ballast_bytes));
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
  const uint64_t keep = kept_bytes / kPmdBytes;
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
  if (ctx.stop->requested()) return ctx.stop->StoppedStatus("arena");

  // 3. Pipe buffers over nine tenths of the UNMOVABLE free lists.
  ASSIGN_OR_RETURN(snapshot::MachineSnapshot s2a, snapshot::ReadMachineSnapshot("/"));
  const uint64_t unmovable_take = Totals(s2a, all_zones).unmovable_pages * 9 / 10 * kPageBytes;
  if (unmovable_take >= kPmdBytes) {
    OpContext pctx = ctx;
    pctx.ledger = &a->ballast_ledger_;
    auto pipes = PinPipes(unmovable_take, pctx);
    if (!pipes.ok()) {
      return absl::Status(pipes.status().code(),
                          absl::StrCat("arena pipe buffers of ", HumanBytes(unmovable_take), " over the ",
                                       "UNMOVABLE free lists: ", pipes.status().message()));
    }
    std::lock_guard<std::mutex> lock(a->mu_);
    a->pipes_ = std::move(*pipes);
    r.pipe_bytes = a->pipes_->result().pages_measured * kPageBytes;
    if (a->given_back_) a->pipes_.reset();
  }
  if (ctx.stop->requested()) return ctx.stop->StoppedStatus("arena");

  // 4. A second ballast over the small MOVABLE blocks left in any zone,
  // never more than the free memory beyond the arena and the reserve.
  ASSIGN_OR_RETURN(snapshot::MachineSnapshot s2b, snapshot::ReadMachineSnapshot("/"));
  const ZoneTotals t2b = Totals(s2b, all_zones);
  const uint64_t free_now = t2b.free_pages * kPageBytes;
  const uint64_t topup =
      std::min(t2b.small_movable_pages * kPageBytes, free_now > kept_bytes ? free_now - kept_bytes : 0);
  if (topup >= kPmdBytes) {
    RETURN_IF_ERROR(a->AddBallast(topup, ctx, &r.topup_bytes));
  }

  ASSIGN_OR_RETURN(snapshot::MachineSnapshot s2, snapshot::ReadMachineSnapshot("/"));
  const ZoneTotals t2 = Totals(s2, all_zones);
  r.free_after = t2.free_pages * kPageBytes;
  r.order9_after = t2.order9;
  r.duration_ns = NowNs() - t0;
  unpublish.armed = false;
  return a;
}

absl::Status Arena::AddBallast(uint64_t bytes, OpContext& ctx, uint64_t* counted) {
  OpContext bctx = ctx;
  bctx.ledger = &ballast_ledger_;
  AnonParams p;
  p.bytes = bytes;
  p.page_size = AnonPageSize::kBase;
  std::unique_ptr<AnonRegion> region;
  auto touched = MapAndTouch(p, bctx, &region);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (region != nullptr) {
      *counted += region->populated_pages() * kPageBytes;
      // Given back while it was being faulted: drop it now.
      if (given_back_) (void)region->Discard(0, region->bytes() / kPageBytes, /*unmap=*/false);
      ballasts_.push_back(std::move(region));
    }
  }
  if (!touched.ok()) {
    return absl::Status(touched.status().code(), absl::StrCat("arena ballast of ", HumanBytes(bytes), ": ",
                                                              touched.status().message()));
  }
  return absl::OkStatus();
}

Arena::~Arena() {
  GiveBack();
  std::lock_guard<std::mutex> lock(mu_);
  ballasts_.clear();
  pipes_.reset();
}

uint64_t Arena::held_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (given_back_) return 0;
  return result_.pool_pages * kPmdBytes + result_.ballast_bytes + result_.pipe_bytes + result_.topup_bytes;
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

  for (auto& b : ballasts_) {
    auto st = b->Discard(0, b->bytes() / kPageBytes, /*unmap=*/false);
    if (!st.ok() && error_.empty()) error_ = std::string(st.status().message());
  }
  pipes_.reset();  // closes the pipes: their buffers are freed
}

std::string Arena::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

}  // namespace fraglab::gen
