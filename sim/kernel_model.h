// KernelModel: what the kernel allocates, on the page-allocator model
// (sim/page_allocator.h), for each scenario operation that stands for user
// or kernel activity (anon, release, pin, slab, pagecache, thp, probe,
// compact, drop_caches, sysctl, hold). docs/kernel-model.md describes each
// operation's allocations and the kernel code it follows.
//
// The model keeps the records reclaim and compaction need: which pfns back
// which anonymous region page, page-cache folios in LRU order, slab pages
// with their object counts, pins. It is the allocator's PageUser: it learns
// about migrated blocks (OnMigrated) and gives back clean page cache and
// unused dentries when reclaim asks (Reclaim).
//
// Deterministic: random choices use common/rng.h seeded by the caller; all
// containers are vectors or ordered maps, so no hash order reaches output.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/event_sink.h"
#include "common/rng.h"
#include "common/scenario.h"
#include "sim/page_allocator.h"
#include "sim/page_user.h"

namespace fraglab::sim {

// Cumulative event counters the model keeps (vmstat names; the per-size
// anon_fault_* are /sys/kernel/mm/transparent_hugepage/hugepages-<N>kB/stats,
// indexed by order, 9 = the PMD size).
struct KernelModelCounters {
  uint64_t thp_fault_alloc = 0;
  uint64_t thp_fault_fallback = 0;
  uint64_t thp_collapse_alloc = 0;
  uint64_t thp_collapse_alloc_failed = 0;
  uint64_t thp_split_page = 0;
  uint64_t anon_fault_alloc[kNumOrders] = {};
  uint64_t anon_fault_fallback[kNumOrders] = {};
  uint64_t htlb_buddy_alloc_success = 0;
  uint64_t htlb_buddy_alloc_fail = 0;
  uint64_t drop_pagecache = 0;
  uint64_t drop_slab = 0;
};

// Pages the model holds right now, by what they are.
struct KernelModelPages {
  uint64_t anon = 0;            // anonymous pages (4 KiB units, THPs included)
  uint64_t anon_thp = 0;        // order-9 anonymous folios
  uint64_t file = 0;            // page cache pages
  uint64_t page_table = 0;      // page-table pages
  uint64_t slab_reclaimable = 0;
  uint64_t slab_unreclaimable = 0;
  uint64_t pipe = 0;            // pipe buffer pages and rings
  uint64_t socket = 0;          // skb fragment pages
  uint64_t pinned = 0;          // long-term pinned anon pages
};

// Slab geometry of one cache: bytes per object, objects per slab, slab
// order. The defaults are this VM's /proc/slabinfo (Linux 6.18).
struct SlabGeometry {
  const char* name;
  uint32_t object_size;
  uint32_t objects_per_slab;
  int order;
  bool reclaimable;  // SLAB_RECLAIM_ACCOUNT: pages are __GFP_RECLAIMABLE
};
inline constexpr SlabGeometry kDentrySlab = {"dentry", 192, 21, 0, true};
inline constexpr SlabGeometry kShmemInodeSlab = {"shmem_inode_cache", 752, 21, 2, false};

class KernelModel final : public PageUser {
 public:
  // What the model needs from whoever runs it.
  struct Hooks {
    // Called before every allocator call the model makes (allocation or
    // free): advances the logical clock by one unit. Required.
    std::function<void()> tick;
    // One narrated step of an operation (a batch of similar calls), and its
    // outcome. Optional.
    std::function<void(const std::string&)> step;
    // Called at points where the model holds no pfn outside its records:
    // the runner may run background work (kswapd, kcompactd) that reclaims
    // or migrates the model's pages. Optional.
    std::function<void()> background;
    std::function<void(const std::string&)> step_done;
  };

  // `allocator`, `sink` (may be null) and `s` must outlive the model. The
  // model registers nothing by itself: the caller makes it (or a wrapper)
  // the allocator's page user. `seed` drives random touch orders and
  // releases. Percent sizes are of the budget, and a percent budget is of
  // the machine's present memory (see docs/kernel-model.md).
  KernelModel(PageAllocator* allocator, EventSink* sink, const scenario::Scenario& s, uint64_t seed,
              Hooks hooks);
  KernelModel(const KernelModel&) = delete;
  KernelModel& operator=(const KernelModel&) = delete;

  // Performs one kernel-model operation. `where` prefixes messages
  // ("phase 3:anon (x.toml:12)"). InvalidArgument for raw allocator
  // operations (alloc/free/expect), an unknown region, a setting the model
  // cannot honour or a size it cannot resolve; ResourceExhausted when an
  // allocation the kernel could not do without (a base page, a page table,
  // a min-order page-cache folio) fails: the kernel would OOM-kill there.
  [[nodiscard]] absl::Status Apply(const scenario::Operation& op, const std::string& where);

  // PageUser.
  void OnMigrated(uint64_t old_pfn, uint64_t new_pfn, int order) override;
  uint64_t Reclaim(const ReclaimRequest& req) override;
  // OnMigrated that reports whether the block was one of the model's.
  bool Migrated(uint64_t old_pfn, uint64_t new_pfn, int order);

  const KernelModelCounters& counters() const { return counters_; }
  KernelModelPages pages() const { return pages_; }
  const scenario::ThpSettings& thp() const { return spec_.thp; }
  uint64_t budget_bytes() const { return budget_bytes_; }
  // The cumulative FL_EV_COUNTERS record (model counters, allocator vm
  // events, page counts) stamped with `time`.
  fl_counters CountersRecord(uint64_t time) const;

  // ---- Introspection for tests --------------------------------------
  // Present pages of the anon regions of `tag`, in region then address
  // order: (pfn of the page, order of its folio). Empty if none.
  std::vector<std::pair<uint64_t, int>> AnonPages(const std::string& tag) const;
  // Page-table pages held for the anon regions of `tag`.
  std::vector<uint64_t> PageTables(const std::string& tag) const;
  // Page-cache folios in LRU order, oldest first: (pfn, order).
  std::vector<std::pair<uint64_t, int>> FileLru() const;
  // Live slab objects of a slab tag.
  uint64_t SlabObjects(const std::string& tag) const;

 private:
  static constexpr uint8_t kTail = 0xff;  // order[] value of non-head pages
  static constexpr uint32_t kNone32 = 0xffffffffu;

  struct AnonRegion {
    std::string tag;
    scenario::PageSize page_size;
    bool madvised = false;                 // MADV_HUGEPAGE
    std::vector<uint64_t> pfn;             // per 4 KiB page; kNoPfn = not present
    std::vector<uint8_t> order;            // folio order at its first page, kTail elsewhere
    std::vector<uint8_t> unmapped;         // 1 = munmapped (never faulted again)
    std::vector<uint64_t> pt;              // page-table pfn per 2 MiB of address space
    std::vector<uint32_t> unmapped_in_pt;  // munmapped pages per 2 MiB
  };
  struct FileFolio {
    uint64_t pfn = kNoPfn;  // kNoPfn once freed
    int order = 0;
    uint32_t set = 0;       // FileSet index
    uint32_t prev = kNone32, next = kNone32;  // LRU links
  };
  struct FileSet {  // the files of one pagecache phase
    std::string tag;
    std::vector<std::vector<uint32_t>> files;  // folio ids per file, in file order
  };
  struct Slab {
    uint64_t pfn = kNoPfn;
    uint32_t inuse = 0;
    bool partial_queued = false;
  };
  struct SlabCache {
    SlabGeometry geo;
    std::vector<Slab> slabs;
    uint32_t current = kNone32;            // slab new objects go to first
    std::vector<uint32_t> partial;         // FIFO of slabs with free objects
    size_t partial_head = 0;
  };
  struct SlabObject {
    uint8_t cache = 0;  // 0 dentry, 1 shmem inode
    uint32_t slab = 0;
    bool alive = false;
    bool pinned = false;  // a dentry of a live tmpfs file: not dropped by reclaim
  };
  struct Block {
    uint64_t pfn = kNoPfn;
    int order = 0;
  };
  struct PinSet {
    std::string tag;
    scenario::PinKind kind;
    std::vector<Block> blocks;  // in allocation order
    std::vector<size_t> regions;  // anon regions backing long-term pins (page tables)
  };

  // Ops.
  absl::Status DoAnon(const scenario::AnonOp& op, const std::string& where);
  absl::Status DoRelease(const scenario::ReleaseOp& op, const std::string& where);
  absl::Status DoPin(const scenario::PinOp& op, const std::string& where);
  absl::Status DoSlab(const scenario::SlabOp& op, const std::string& where);
  absl::Status DoPagecache(const scenario::PagecacheOp& op, const std::string& where);
  absl::Status DoThp(const scenario::ThpOp& op, const std::string& where);
  absl::Status DoProbe(const scenario::ProbeOp& op, const std::string& where);
  absl::Status DoDropCaches(const scenario::DropCachesOp& op);
  absl::Status DoSysctl(const scenario::SysctlOp& op, const std::string& where);

  // Allocator wrappers (tick first).
  uint64_t Alloc(int order, uint64_t gfp, OwnerKind owner);
  // `tick` false inside Reclaim (the allocator is in the middle of a call).
  void FreeBlock(uint64_t pfn, int order, bool tick = true);
  void Background();
  absl::StatusOr<uint64_t> Bytes(const Size& size, const std::string& where, const char* field) const;
  void Step(const std::string& what);
  void StepDone(const std::string& result);

  // Anon.
  size_t NewRegion(const std::string& tag, scenario::PageSize ps, uint64_t pages, bool madvised);
  // Faults the page at `idx` of region `r` (no-op when present or
  // unmapped). Sets *got_order to the folio order obtained.
  absl::Status Fault(size_t r, uint64_t idx, const std::string& where, int* got_order);
  absl::Status EnsurePageTable(size_t r, uint64_t idx, const std::string& where);
  void MapFolio(size_t r, uint64_t idx, uint64_t pfn, int order);
  // THP gfp for the current defrag setting (reference §7).
  uint64_t ThpGfp(bool madvised) const;
  bool ThpEligible(const AnonRegion& reg) const;
  // Orders a fault in region `reg` tries before order 0, highest first.
  std::vector<int> FaultOrders(const AnonRegion& reg) const;
  // Frees the present pages of [first, end) of region `r`, splitting
  // folios that stick out; `unmap` also marks them unmapped and frees page
  // tables whose 2 MiB are all unmapped. Returns pages freed.
  uint64_t ReleaseRange(size_t r, uint64_t first, uint64_t end, bool unmap);
  void FreeRegionAll(size_t r);
  // Units chosen by a release pattern, as sorted [first, end) unit ranges.
  absl::StatusOr<std::vector<std::pair<uint64_t, uint64_t>>> PickUnits(const scenario::ReleaseOp& op,
                                                                       uint64_t units,
                                                                       uint64_t unit_bytes,
                                                                       const std::string& where);

  // Page cache.
  uint32_t NewFolio(uint64_t pfn, int order, uint32_t set);
  void FreeFolio(uint32_t id, bool tick = true);
  void LruUnlink(uint32_t id);
  void LruAppend(uint32_t id);

  // Slab.
  absl::StatusOr<uint32_t> SlabAlloc(uint8_t cache, bool pinned, const std::string& where);
  void SlabFree(uint32_t object, bool tick = true);
  // Frees unused (unpinned) dentries oldest first until `max_pages` slab
  // pages were freed or none are left; returns the pages freed.
  uint64_t DropDentries(uint64_t max_pages, bool tick);

  // rmap: per pfn, which record a migratable block belongs to.
  enum RmapKind : uint64_t { kRmapNone = 0, kRmapAnon = 1, kRmapFile = 2 };
  static uint64_t RmapEntry(RmapKind k, uint64_t holder, uint64_t index) {
    return (static_cast<uint64_t>(k) << 60) | (holder << 32) | index;
  }
  void SetRmap(uint64_t pfn, uint64_t entry);

  PageAllocator* a_;
  EventSink* sink_;
  const scenario::Scenario& scenario_;
  Hooks hooks_;
  Rng rng_;
  scenario::SimMachineSpec spec_;  // current settings (sysctl phases applied)
  uint64_t budget_bytes_ = 0;
  int cpu_ = 0;

  std::vector<AnonRegion> regions_;
  std::map<std::string, std::vector<size_t>> anon_tags_;
  std::vector<FileFolio> folios_;
  std::vector<FileSet> file_sets_;
  std::map<std::string, std::vector<uint32_t>> file_tags_;
  uint32_t lru_head_ = kNone32, lru_tail_ = kNone32;
  SlabCache caches_[2];
  std::vector<SlabObject> objects_;
  // Units of each slab tag: (object, second object or kNone32); a tmpfs
  // file is its inode and its dentry.
  std::map<std::string, std::vector<std::pair<uint32_t, uint32_t>>> slab_tags_;
  std::vector<uint32_t> dentry_lru_;  // dentry object ids, oldest first (may hold dead ids)
  size_t dentry_lru_head_ = 0;
  std::vector<PinSet> pins_;
  std::map<std::string, std::vector<size_t>> pin_tags_;
  std::vector<uint64_t> rmap_;  // indexed by pfn, 8 bytes per page up to end_pfn_
  uint64_t end_pfn_ = 0;        // end of the highest zone

  KernelModelCounters counters_;
  KernelModelPages pages_;
};

}  // namespace fraglab::sim
