// PageAllocator: a deterministic model of the Linux buddy page allocator with
// migratetypes (reference/kernel-page-allocator.md §1, §2, §4, §5): zones,
// pageblocks, free lists per order and type with the kernel's head/tail
// placement, split and merge, the fallback path of three kernel eras,
// HIGHATOMIC reserves, per-CPU lists, watermarks, boosting, ALLOC_NOFRAGMENT
// and defrag_mode.
//
// It never reads a clock or makes a syscall: events carry the logical time
// set with set_time(); events go to an optional EventSink and decisions to an
// optional Narrator (both may be null; with neither, nothing is formatted).
//
// Memory: a state byte and an owner/list byte per page of the covered pfn
// range, the list links (ListLinks::kPerPage: 8 bytes per page;
// kChunked: 0.25 byte per page plus 128 bytes per 16-page chunk ever
// listed), one byte per pageblock and small per-zone tables. A free or
// per-CPU block is represented by its first page only; so is an allocated
// block (with its owner kind).
//
// Not thread-safe; one instance models one machine.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bpf/fraglab_events.h"
#include "common/event_sink.h"
#include "sim/config.h"
#include "sim/narrator.h"
#include "sim/page_user.h"
#include "sim/types.h"

namespace fraglab::sim {

// One allocation request (alloc_pages).
struct AllocRequest {
  int order = 0;
  uint64_t gfp = gfp::kKernel;  // decides type, highest zone and alloc flags
  int node = 0;                 // preferred node
  int cpu = 0;                  // CPU the request runs on (its pcp lists)
  OwnerKind owner = OwnerKind::kUnknown;
};

// What one pfn is, as seen by the model.
struct PageInfo {
  enum class Kind : uint8_t {
    kNone,       // tail page of a block, or a page outside every zone / absent
    kFree,       // first page of a free buddy block
    kPcp,        // first page of a block on a per-CPU list
    kAllocated,  // first page of an allocated block
  };
  Kind kind = Kind::kNone;
  int order = 0;
  MigrateType list_type = kUnmovable;   // kFree: list it is on; kPcp: cached type
  OwnerKind owner = OwnerKind::kUnknown;  // kAllocated
  MigrateType alloc_type = kUnmovable;  // kAllocated: requested type
};

// A kswapd wake-up the allocator asked for (§5.2, §5.5); reclaim is modelled
// elsewhere, which takes these with TakeKswapdWakeups().
struct KswapdWakeup {
  int node = 0;
  int order = 0;
  int highest_zoneidx = 0;
  bool from_boost = false;  // woken because a fallback boosted the watermark
};

// Compaction priorities (enum compact_priority): lower is more thorough.
inline constexpr int kCompactPrioSyncFull = 0;
inline constexpr int kCompactPrioSyncLight = 1;
inline constexpr int kCompactPrioAsync = 2;

// /proc/vmstat-style event counters of the reclaim and compaction model
// (names as in the kernel's vmstat). Monotonic over the allocator's life.
struct VmEventCounters {
  uint64_t allocstall = 0;            // direct reclaim entries
  uint64_t pgscan_kswapd = 0, pgscan_direct = 0;
  uint64_t pgsteal_kswapd = 0, pgsteal_direct = 0;
  uint64_t kswapd_wake = 0;           // kswapd runs (balance_pgdat passes)
  uint64_t compact_stall = 0;         // direct compaction attempts
  uint64_t compact_fail = 0, compact_success = 0;
  uint64_t compact_migrate_scanned = 0, compact_free_scanned = 0, compact_isolated = 0;
  uint64_t compact_daemon_wake = 0;   // kcompactd runs
  uint64_t compact_daemon_migrate_scanned = 0, compact_daemon_free_scanned = 0;
  uint64_t pgmigrate_success = 0, pgmigrate_fail = 0;
  uint64_t alloc_fail = 0;            // requests that returned no page after the slow path
};

// Read-only view of one zone's bookkeeping.
struct ZoneStats {
  int node = 0;
  ZoneType type = kZoneNormal;
  uint64_t start_pfn = 0;
  uint64_t spanned = 0;
  uint64_t present = 0;
  uint64_t managed = 0;
  uint64_t free_pages = 0;                  // NR_FREE_PAGES (buddy, not isolated, not pcp)
  uint64_t nr_free[kNumOrders] = {};        // buddyinfo
  uint64_t wmark_min = 0, wmark_low = 0, wmark_high = 0, wmark_promo = 0;  // without boost
  uint64_t boost = 0;
  uint64_t lowmem_reserve[kNumZoneTypes] = {};
  uint64_t nr_reserved_highatomic = 0;
  uint64_t pcp_pages = 0;                   // pages on all CPUs' lists of this zone
};

// Per-CPU list state of one (zone, CPU).
struct PcpStats {
  int count = 0, high = 0, high_min = 0, high_max = 0, batch = 0;
  int alloc_factor = 0, free_factor = 0, free_count = 0;
};

// How the allocator stores the links of its free and pcp lists. Behaviour
// is the same with either; only speed and memory differ.
enum class ListLinks : uint8_t {
  // Two u32 per page in a flat array: the fastest list operations, 8 bytes
  // of memory per page, touched wherever a block is ever listed.
  kPerPage,
  // Links in chunks of 16 neighbouring pages taken from a pool the first
  // time one of them is listed, found through a directory (0.25 byte a
  // page): each list operation costs one more load, but a machine whose
  // free blocks are scattered over all of memory (a real machine's start
  // state) touches a few MB instead of 8 bytes per page (50 MB for 24 GiB).
  kChunked,
};

class PageAllocator {
 public:
  // Builds the machine and releases every managed page to the buddy lists
  // (boot state, §1: all pageblocks MOVABLE, tail insertion in ascending pfn
  // order). InvalidArgument when `config` is inconsistent. `sink` and
  // `narrator` may be null and must outlive the allocator. `links` chooses
  // the list storage (see ListLinks).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PageAllocator>> Create(
      const MachineConfig& config, EventSink* sink = nullptr, Narrator* narrator = nullptr,
      ListLinks links = ListLinks::kPerPage);

  PageAllocator(const PageAllocator&) = delete;
  PageAllocator& operator=(const PageAllocator&) = delete;
  ~PageAllocator();

  // ---- Operations -------------------------------------------------------
  // alloc_pages(): fast path (LOW watermark, NOFRAGMENT), then the slow
  // path: kswapd wake-ups, the MIN watermark with the slow-path flags, async
  // compaction first for costly or non-movable high orders, direct reclaim,
  // direct compaction with rising priority and the kernel's retry rules
  // (__GFP_NORETRY, __GFP_RETRY_MAYFAIL, atomic requests neither reclaim nor
  // compact). Where the kernel would invoke the OOM killer the request fails
  // and alloc_fail counts. Returns the first pfn of the block, or kNoPfn.
  // Emits mm_page_alloc either way. Requests with an
  // order > 10, a CPU or node out of range, or both mobility gfp bits set
  // are rejected with kNoPfn and an InvalidArgument kept in last_error().
  uint64_t Allocate(const AllocRequest& req);
  // The same with explicit alloc flags (alloc:: bits) and no slow path: one
  // get_page_from_freelist walk. For callers that model the slow path.
  uint64_t AllocateWithFlags(const AllocRequest& req, uint32_t alloc_flags);

  // __free_pages(): frees the allocated block that starts at `pfn` and has
  // order `order`, through CPU `cpu`'s lists when pcp is on and the order is
  // a pcp order. InvalidArgument when pfn is not the first page of an
  // allocated block of exactly that order (double free, wrong order...).
  [[nodiscard]] absl::Status Free(uint64_t pfn, int order, int cpu = 0);

  // Re-types the pageblock containing `pfn` to `type` and moves its free
  // blocks to the tail of that type's lists (move_freepages_block +
  // set_pageblock_migratetype): what compaction, isolation and a trace
  // replay do to a block. InvalidArgument for a pfn outside every zone or a
  // block not fully inside its zone.
  [[nodiscard]] absl::Status ConvertPageblock(uint64_t pfn, MigrateType type);

  // Changes the owner kind recorded for the allocated block at `pfn`.
  [[nodiscard]] absl::Status SetOwner(uint64_t pfn, OwnerKind owner);

  // Takes the free range [pfn, pfn + 2^order) out of the buddy lists
  // (splitting the free block that contains it, halves back on their lists)
  // and records it as one allocated block of `order` with `owner` and
  // requested type `type`. No events, no watermark check: this builds a
  // start state (a snapshot's used pages) or pins a range. FailedPrecondition
  // naming the first page that is not free in the buddy (allocated, on a pcp
  // list, outside every zone); InvalidArgument for an order > 10 or a pfn
  // not aligned to 2^order.
  [[nodiscard]] absl::Status AllocateAt(uint64_t pfn, int order, OwnerKind owner, MigrateType type);

  // split_page(): the allocated block of order k at `pfn` becomes 2^k
  // allocated order-0 blocks with the same owner kind and type (what a THP
  // split does before part of it is freed). InvalidArgument when `pfn` does
  // not start an allocated block.
  [[nodiscard]] absl::Status SplitAllocated(uint64_t pfn);

  // The owner model that compaction tells about moved blocks and reclaim
  // asks for pages (may be null: nothing is then reclaimable, and migration
  // still happens with no one to tell). Must outlive the allocator.
  void set_page_user(PageUser* user) { page_user_ = user; }

  // Moves logical time forward to `now` (never backwards; same unit as
  // set_time) and runs the background work that falls due on the way, in
  // time order: kswapd for pending wake-ups, kcompactd after its wake-ups
  // and timeouts, proactive compaction by the node score, pcp decay once per
  // simulated second (1e9 units).
  void AdvanceTime(uint64_t now);

  // ---- Compaction (implemented in sim/compaction.cc, reference §6) ------
  // Writing 1 to /proc/sys/vm/compact_memory: synchronous full compaction
  // of every populated zone of every node (order -1: no finish test).
  void CompactMemory();
  // Writing to /sys/devices/system/node/node<N>/compact: the same for one
  // node. InvalidArgument for a node out of range.
  [[nodiscard]] absl::Status CompactNode(int node);
  // Sets a compaction sysctl by its /proc/sys/vm name: "extfrag_threshold"
  // (0..1000, default 500), "compaction_proactiveness" (0..100, default 20),
  // "compact_unevictable_allowed" (0 or 1, default 1). InvalidArgument
  // naming the sysctl for an unknown name or a value out of range.
  [[nodiscard]] absl::Status SetCompactionSysctl(const std::string& name, int64_t value);
  // The current value of that sysctl; InvalidArgument for an unknown name.
  [[nodiscard]] absl::StatusOr<int64_t> CompactionSysctl(const std::string& name) const;
  // A zone's compaction bookkeeping (struct zone's compact_* fields).
  struct CompactionZoneState {
    uint64_t cached_migrate_pfn[2] = {0, 0};  // [0] async, [1] sync
    uint64_t cached_free_pfn = 0;
    uint64_t init_migrate_pfn = 0;  // compact_init_migrate_pfn
    uint64_t init_free_pfn = 0;     // compact_init_free_pfn
    uint32_t considered = 0;        // compact_considered
    int defer_shift = 0;            // compact_defer_shift (0..6)
    int order_failed = 0;           // compact_order_failed
    bool blockskip_flush = false;   // compact_blockskip_flush
  };
  // Bookkeeping of zone `zone` (defaults before the first compaction).
  CompactionZoneState compaction_zone_state(int zone) const;
  // fragmentation_score_node() (reference §6, proactive compaction): the
  // node's zones' extfrag_for_order(9) weighted by present pages, 0..100.
  int FragmentationScoreNode(int node) const;
  // fragmentation_index(zone, order) x1000 (-1000 when a free block of the
  // order exists, 0 with no free pages), as /sys/kernel/debug/extfrag shows.
  int FragmentationIndex(int zone, int order) const;
  // ---- End of compaction ------------------------------------------------

  // Writing /proc/sys/vm/<name> during a run, for the allocator's own
  // sysctls: "min_free_kbytes" and "watermark_scale_factor" recompute every
  // zone's watermarks (setup_per_zone_wmarks, which also drops any boost),
  // "percpu_pagelist_high_fraction" recomputes pcp batch and high,
  // "watermark_boost_factor" and "defrag_mode" (0/1) take effect at the next
  // allocation. InvalidArgument naming the setting for an unknown name or a
  // value the kernel would reject (min_free_kbytes < 0, scale factor outside
  // 1..3000, boost factor < 0, high fraction 1..7 or < 0).
  [[nodiscard]] absl::Status SetVmSysctl(const std::string& name, int64_t value);

  // Event counters of reclaim, compaction and the slow path.
  const VmEventCounters& vm_events() const { return vm_events_; }

  // drain_all_pages(): returns every CPU's pcp pages of every zone to the buddy.
  void DrainAllPcp();
  // drain_local_pages(): CPU `cpu`'s pages of every zone.
  void DrainCpuPcp(int cpu);
  // 6.7+ vmstat worker, once per simulated second: decays pcp high toward
  // high_min and frees pages above it (§4). No-op with static tuning.
  void PcpDecayTick();
  // unreserve_highatomic_pageblock() for a request of type `type` on the
  // zonelist of (node, highest zone): gives one HIGHATOMIC block back to
  // `type`; keeps the last reserved block of a zone unless `force`.
  // Returns whether a block was released.
  bool UnreserveHighAtomic(int node, ZoneType highest, MigrateType type, bool force);
  // Clears ZONE_BELOW_HIGH (kswapd found the zone balanced; 6.7+ pcp tuning).
  void ClearBelowHigh(int zone);
  // Kswapd wake-ups requested since the last call or the last AdvanceTime
  // (which consumes them), in request order, including those that found
  // the node balanced.
  std::vector<KswapdWakeup> TakeKswapdWakeups();

  // ---- Time, outputs ----------------------------------------------------
  // Logical time stamped on events and decisions from now on.
  void set_time(uint64_t t) { now_ = t; }
  uint64_t time() const { return now_; }
  void set_sink(EventSink* sink) { sink_ = sink; }
  void set_narrator(Narrator* n) { narrator_ = n; }
  // First error an event sink returned (events after it are still offered).
  const absl::Status& sink_status() const { return sink_status_; }
  // Why the last rejected request was rejected (OK if none).
  const absl::Status& last_error() const { return last_error_; }
  // Emits one FL_EV_SNAPSHOT_ZONE record per zone with present pages.
  void EmitSnapshots();
  // The snapshot record of zone `zone` (what EmitSnapshots emits).
  fl_snapshot_zone Snapshot(int zone) const;

  // ---- Queries ----------------------------------------------------------
  const MachineConfig& config() const { return config_; }
  const MigratetypeNumbering& numbering() const { return numbering_; }
  int num_zones() const;
  // Index of the zone of (node, type), or -1.
  int FindZone(int node, ZoneType type) const;
  // Index of the zone containing pfn, or -1.
  int ZoneOfPfn(uint64_t pfn) const;
  ZoneStats zone_stats(int zone) const;
  std::string ZoneName(int zone) const;
  // Free blocks on list (order, type) of `zone`.
  uint64_t FreeCount(int zone, int order, MigrateType type) const;
  // First pfns of the blocks on list (order, type), head first.
  std::vector<uint64_t> FreeList(int zone, int order, MigrateType type) const;
  // Pageblock type of the block containing pfn.
  MigrateType PageblockType(uint64_t pfn) const;
  // Pageblocks per type, counted as /proc/pagetypeinfo does (§8).
  std::vector<uint64_t> PageblockCounts(int zone) const;
  PageInfo Page(uint64_t pfn) const;
  PcpStats pcp_stats(int zone, int cpu) const;
  // First pfns on pcp list (order, type) of (zone, cpu), head first. For
  // order 9 the type selects the movable / non-movable THP list.
  std::vector<uint64_t> PcpList(int zone, int cpu, int order, MigrateType type) const;
  bool grouping_disabled() const { return grouping_disabled_; }
  // Bytes of simulator memory, every container counted.
  size_t MemoryBytes() const;
  // Pages covered by the per-page arrays.
  uint64_t covered_pages() const { return n_pages_; }

  // Checks every structural invariant: each free block on exactly one list,
  // of a valid order, aligned, inside its zone, not overlapping another block;
  // list counts, nr_free, masks and free page counters consistent; pcp counts
  // consistent; [H][C] free blocks on the list of their pageblock's type.
  // Internal naming the first violation found. O(pages).
  [[nodiscard]] absl::Status CheckInvariants() const;

 private:
  struct Pcp;
  struct Zone;
  enum class RmqMode : uint8_t { kNormal, kSteal };

  explicit PageAllocator(const MachineConfig& config);
  absl::Status Init();

  // List primitives on the link arrays.
  void LinkHead(uint32_t sentinel, uint32_t i);
  void LinkTail(uint32_t sentinel, uint32_t i);
  void Unlink(uint32_t i);
  uint32_t ListSentinel(const Zone& z, int order, int type) const;

  // Buddy lists.
  void AddFree(Zone& z, uint32_t i, int order, MigrateType t, bool tail);
  void DelFree(Zone& z, uint32_t i);
  void DelFreeKnown(Zone& z, uint32_t i, int order, MigrateType t);
  void MoveFreeToTail(Zone& z, uint32_t i, MigrateType t);
  void Expand(Zone& z, uint32_t i, int low, int high, MigrateType t);
  void FreeOnePage(Zone& z, uint32_t i, int order, MigrateType t, bool to_tail);
  void FreeToBuddy(Zone& z, uint32_t i, int order);
  // Narration and event emission of the hot paths live in separate cold
  // functions so that the fast path keeps a small frame (order-0 speed).
  [[gnu::cold, gnu::noinline]] void NarrateSplit(const Zone& z, uint32_t half, int order, MigrateType t);
  [[gnu::cold, gnu::noinline]] void NarrateMerge(const Zone& z, uint32_t i, uint32_t b, int order);
  [[gnu::cold, gnu::noinline]] void NarratePlace(const Zone& z, uint32_t i, int order, MigrateType t,
                                                 bool tail, bool to_tail);
  [[gnu::cold, gnu::noinline]] void NarrateListSearch(const Zone& z, int order, int found_order,
                                                      MigrateType t, uint32_t i);
  [[gnu::noinline]] void EmitZoneLocked(uint32_t i, int order, MigrateType t, int cpu);
  [[gnu::cold, gnu::noinline]] void NarrateNoFragmentDropped(int zone);
  [[gnu::cold, gnu::noinline]] void NarrateZone(int zi, int order, bool pass, int64_t mark, int highest,
                                                uint32_t flags);
  [[gnu::cold, gnu::noinline]] void NarrateAllocBegin(const AllocRequest& req, MigrateType t);
  [[gnu::noinline]] void ReportAllocEnd(const AllocRequest& req, MigrateType t, uint64_t pfn);
  [[gnu::noinline]] void ReportFree(uint64_t pfn, int order, int cpu);

  // Pageblocks.
  MigrateType BlockType(uint32_t i) const;
  void SetBlockType(uint32_t i, MigrateType t);
  void ChangeBlockRange(uint32_t i, int order, MigrateType t);
  bool BlockInZone(const Zone& z, uint32_t block_start) const;
  bool CountBlock(const Zone& z, uint32_t i, int* free_pages, int* movable_pages) const;
  int MoveFreeBlocksOfBlock(Zone& z, uint32_t block_start, MigrateType to);
  // Head of the block (free, pcp or allocated) covering index i; false when
  // no block covers it (absent page, or a page outside the model).
  bool CoveringBlock(uint32_t i, uint32_t* head) const;

  // Allocation.
  uint32_t RmqueueSmallest(Zone& z, int order, MigrateType t, int cpu);
  uint32_t Rmqueue(Zone& z, int order, MigrateType t, uint32_t flags, RmqMode* mode, int cpu);
  int FindFallback(const Zone& z, int order, MigrateType t) const;
  bool CanClaim(int order, MigrateType t) const;
  // Fallback candidate of the pre-6.15 eras (§2.5 steps 1-2): sets order,
  // fallback type and the claim predicate; false when no list can serve.
  bool FindOldFallbackCandidate(const Zone& z, int order, MigrateType t, uint32_t flags, int* o,
                                int* f, bool* can) const;
  bool FallbackLegacy(Zone& z, int order, MigrateType t, uint32_t flags, int cpu);
  uint32_t FallbackHygiene(Zone& z, int order, MigrateType t, uint32_t flags, int cpu);
  uint32_t RmqueueClaim(Zone& z, int order, MigrateType t, uint32_t flags, int cpu);
  uint32_t RmqueueSteal(Zone& z, int order, MigrateType t, int cpu);
  void Boost(Zone& z, uint32_t flags);
  void EmitExtfrag(uint32_t i, int alloc_order, int fallback_order, MigrateType t,
                   MigrateType fallback, int cpu);
  uint32_t RmqueueZone(Zone& z, int order, MigrateType t, uint32_t flags, int cpu);
  uint32_t RmqueueBuddy(Zone& z, int order, MigrateType t, uint32_t flags, int cpu);
  uint32_t RmqueuePcp(Zone& z, int order, MigrateType t, uint32_t flags, int cpu);
  int NrPcpAlloc(Pcp& p, Zone& z, int order);
  uint32_t GetPageFromFreelist(const AllocRequest& req, MigrateType t, int highest,
                               uint32_t flags, int* zone_out);
  void ReserveHighAtomic(Zone& z, uint32_t i, int order);
  uint32_t NoFragmentFlags(const Zone& preferred, uint64_t gfp) const;
  uint32_t GfpToAllocFlags(uint64_t gfp, int order) const;
  uint64_t FinishAlloc(const AllocRequest& req, MigrateType t, uint32_t i);
  // Counts alloc_fail and finishes a failed request (event, narration).
  uint64_t FailAlloc(const AllocRequest& req, MigrateType t);

  // Reclaim and the slow path (§5, §5.5; page_allocator.cc "Reclaim").
  // wakeup_kswapd: records the request, updates the node's pending order
  // and class zone, and marks kswapd to run at the next AdvanceTime unless
  // the node is hopeless or balanced and unboosted (then kcompactd may be
  // woken instead). gfp 0 for the boost wake-up after a fallback. With
  // `record`, the request is kept for TakeKswapdWakeups (a slow path records
  // its first wake-up round only, not the repeats of its retries).
  void WakeKswapd(int node, int order, int highest, bool from_boost, uint64_t gfp_flags, bool record);
  // wake_all_kswapds: each node of the request's zonelist once.
  void WakeAllKswapds(const AllocRequest& req, int order, int highest, bool record);
  // pgdat_balanced / pgdat_watermark_boosted for zones up to `highest`.
  bool NodeBalanced(int node, int order, int highest) const;
  bool NodeBoosted(int node, int highest) const;
  // One call of PageUser::Reclaim with the counters it feeds; 0 without a
  // page user.
  uint64_t ReclaimFromOwners(int node, int highest, uint64_t nr_to_reclaim, int order, bool direct);
  // Pages one kswapd pass asks for (shortfall to the nearest balanced zone,
  // at least SWAP_CLUSTER_MAX).
  uint64_t KswapdDeficit(int node, int order, int highest) const;
  // balance_pgdat; returns the order kswapd ended at (0 after a high-order
  // pass reclaimed compact_gap pages).
  int BalanceNode(int node, int order, int highest);
  // One run of a woken kswapd: wake event, balance, sleep event.
  void RunKswapd(int node);
  // try_to_free_pages for a request: allocstall, begin/end events; returns
  // the pages reclaimed.
  uint64_t DirectReclaim(const AllocRequest& req, int highest);
  // zone_reclaimable_pages: allocated file pages of the zone. O(blocks).
  uint64_t ZoneReclaimablePages(int zone) const;
  bool ShouldReclaimRetry(const AllocRequest& req, int highest, uint32_t flags, bool progress,
                          int* no_progress_loops);
  bool ShouldCompactRetry(const AllocRequest& req, int highest, uint32_t flags, int compact_result, int* prio,
                          int* retries);
  // __alloc_pages_slowpath after the fast path failed; returns the pfn (the
  // request is finished: event emitted) or kNoPfn.
  [[gnu::noinline]] uint64_t AllocateSlow(const AllocRequest& req, MigrateType t, int highest);
  bool ValidateRequest(const AllocRequest& req);
  // The slow part of ValidateRequest: sets last_error_ and returns false.
  [[gnu::cold, gnu::noinline]] bool RejectRequest(const AllocRequest& req);
  // With config_.check_invariants_every_op (or FRAGLAB_SIM_CHECK_EVERY_OP in
  // a Debug build), aborts on the first broken invariant after `what`.
  void MaybeCheck(const char* what) const;
  [[gnu::cold, gnu::noinline]] void CheckOrDie(const char* what) const;

  // Watermarks.
  void SetupWatermarks();
  void SetupPcp();
  int64_t UnusableFree(const Zone& z, int order, uint32_t flags) const;
  bool WatermarkOk(const Zone& z, int order, int64_t mark, int highest, uint32_t flags,
                   int64_t free_pages) const;
  bool WatermarkFast(const Zone& z, int order, int64_t mark, int highest, uint32_t flags) const;
  int64_t Mark(const Zone& z, uint32_t flags) const;

  // Per-CPU lists.
  int PcpIndex(int order, MigrateType t) const;
  int PcpIndexOrder(int pindex) const;
  void FreeToPcp(Zone& z, uint32_t i, int order, int cpu);
  void FreePcpBulk(Zone& z, Pcp& p, int count, int pindex, int cpu);
  void DrainPcp(Zone& z, Pcp& p, int cpu);

  // Outputs.
  void Emit(const fl_record_header& rec);
  bool narrating() const { return narrator_ != nullptr; }
  void Say(Decision d);
  // A kRetry decision: whether the slow path goes round again, and why.
  void NarrateRetry(const AllocRequest& req, bool retry, const std::string& why);
  int Num(MigrateType t) const { return numbering_.Number(t); }
  const char* TName(MigrateType t) const;

  uint64_t PfnOf(uint32_t i) const { return base_pfn_ + i; }
  int ZoneIndexOf(const Zone& z) const;

  MachineConfig config_;
  MigratetypeNumbering numbering_;
  EventSink* sink_ = nullptr;
  Narrator* narrator_ = nullptr;
  absl::Status sink_status_;
  absl::Status last_error_;
  uint64_t now_ = 0;
  bool grouping_disabled_ = false;
  int nr_pcp_lists_ = 12;

  uint64_t base_pfn_ = 0;   // pfn of index 0 (aligned to 2^10)
  uint32_t n_pages_ = 0;    // covered pages
  uint32_t n_links_ = 0;    // n_pages_ + sentinels
  // Links of the doubly linked free and pcp lists (ListLinks). A list
  // member is a page index (< n_pages_) or a list head (a sentinel,
  // >= n_pages_). Chunked: chunks of 16 neighbouring indices, taken from a
  // pool the first time one of the 16 joins a list and kept (giving them
  // back would cost every split and merge a chunk allocation), found through
  // a directory with one entry per 16 indices; neighbouring pages (pcp
  // refills, splits) still share cache lines.
  class Links {
   public:
    // Indices [0, n_links); the sentinels [first_sentinel, n_links) are
    // empty lists (linked to themselves); no page is on a list.
    void Init(ListLinks mode, uint32_t first_sentinel, uint32_t n_links);
    uint32_t Next(uint32_t i) const { return At(i).next; }
    uint32_t Prev(uint32_t i) const { return At(i).prev; }
    void SetNext(uint32_t i, uint32_t v) { At(i).next = v; }
    void SetPrev(uint32_t i, uint32_t v) { At(i).prev = v; }
    // Page i joins a list between prev and next (only its own links set).
    void Insert(uint32_t i, uint32_t next, uint32_t prev) {
      if (chunked_ && dir_[i >> kChunkShift] == kNoChunk) [[unlikely]] NewChunk(i);
      Link& l = At(i);
      l.next = next;
      l.prev = prev;
    }
    size_t MemoryBytes() const;

   private:
    static constexpr int kChunkShift = 4;
    static constexpr uint32_t kChunkPages = 1u << kChunkShift;
    static constexpr uint32_t kNoChunk = 0xffffffffu;
    // No initialisers: the per-page array must stay untouched (not faulted
    // in) until a page is listed.
    struct Link {
      uint32_t next;
      uint32_t prev;
    };
    // Links of index i; chunked, its chunk must exist (i is or was listed).
    Link& At(uint32_t i) { return chunked_ ? pool_[ChunkSlot(i)] : flat_[i]; }
    const Link& At(uint32_t i) const { return chunked_ ? pool_[ChunkSlot(i)] : flat_[i]; }
    size_t ChunkSlot(uint32_t i) const { return size_t{dir_[i >> kChunkShift]} + (i & (kChunkPages - 1)); }
    void NewChunk(uint32_t i);

    bool chunked_ = false;
    std::unique_ptr<Link[]> flat_;  // kPerPage: per index
    std::vector<uint32_t> dir_;     // kChunked: per 16 indices, first pool slot of their chunk or kNoChunk
    std::vector<Link> pool_;        // kChunked: chunks of 16, in the order first used
    uint32_t n_links_ = 0;
  };
  ListLinks links_mode_ = ListLinks::kPerPage;
  Links links_;
  // Per-page arrays, indexed by pfn - base_pfn_.
  std::unique_ptr<uint8_t[]> state_;  // kind (2 bits) | order (4 bits)
  std::unique_ptr<uint8_t[]> aux_;    // free: list type; pcp: cached type; allocated: owner | type << 5
  std::unique_ptr<uint8_t[]> block_;  // per pageblock: migratetype (3 bits) | skip bit
  std::vector<Zone> zones_;
  std::vector<int> zone_by_start_;  // zone indices sorted by start pfn
  // Zonelists per (preferred node, highest zone type): managed zones in walk
  // order (local node from the highest type down, then the other nodes).
  std::vector<std::vector<int>> zonelists_;
  const std::vector<int>& Zonelist(int node, int highest) const {
    return zonelists_[static_cast<size_t>(node) * kNumZoneTypes + static_cast<size_t>(highest)];
  }
  std::vector<KswapdWakeup> kswapd_wakeups_;
  // Per node: kswapd's pending wake-up (kswapd_order, kswapd_highest_zoneidx
  // with -1 for none) and kswapd_failures.
  struct KswapdState {
    bool pending = false;
    int order = 0;
    int highest_zoneidx = -1;
    int failures = 0;
  };
  std::vector<KswapdState> kswapd_;
  uint64_t next_pcp_decay_ = 1000000000;  // logical time of the next PcpDecayTick in AdvanceTime
  PageUser* page_user_ = nullptr;
  VmEventCounters vm_events_;

  // ---- Compaction state and internals (sim/compaction.cc) ---------------
  // Entry points the slow path and AdvanceTime (sim/page_allocator.cc) call.
  // try_to_compact_pages() for `req` over the zonelist walk of (req.node,
  // highest) with `alloc_flags` (for the watermark checks) at `prio`
  // (kCompactPrio* below). Returns the best compact_result over the zones
  // (the kernel's numbering, reference §3) and, when a zone captured or
  // freed a suitable block and the allocation then succeeded, its pfn in
  // *page_out (kNoPfn otherwise). Counts compact_stall/_fail/_success.
  // A page returned in *page_out is already allocated to `req` through
  // FinishAlloc (mm_page_alloc emitted): the caller returns it as it is.
  int TryDirectCompaction(const AllocRequest& req, MigrateType t, int highest,
                          uint32_t alloc_flags, int prio, uint64_t* page_out);
  // wakeup_kcompactd(): asks kcompactd of `node` to compact for `order`
  // (after a boosted reclaim or a failed high-order allocation, §5.5).
  void WakeupKcompactd(int node, int order, int highest_zone_type);
  // Runs kcompactd work due by `now`: woken nodes, and proactive compaction
  // by the node fragmentation score every 500 ms (sysctl
  // compaction_proactiveness). Called by AdvanceTime in time order.
  void KcompactdBackground(uint64_t now);
  // True when AdvanceTime(now) has nothing to run: no kswapd or kcompactd
  // wake-up pending, no kcompactd timeout and no pcp decay tick due by now.
  bool NothingDueBy(uint64_t now) const;
  // compaction_suitable()/compaction_zonelist_suitable() for the slow path's
  // should_compact_retry: whether compaction could make progress for
  // `order` in some zone of the zonelist.
  bool CompactionZonelistSuitable(const AllocRequest& req, int highest, uint32_t alloc_flags) const;
  // reset_isolation_suitable(pgdat): what kswapd does before it sleeps:
  // clears the skip bits of each zone of `node` where direct compaction
  // finished a full pass since (compact_blockskip_flush).
  void ResetIsolationSuitableNode(int node);

  // One compaction run's state (struct compact_control), in sim/compaction.cc.
  struct CompactControl;
  // Tests reach the private entry points through this peer.
  friend class CompactionTestPeer;
  // kcompactd of one node: a pending wake-up and the proactive timer.
  struct KcompactdState {
    bool pending = false;          // woken and not yet run
    int order = 0;                 // kcompactd_max_order
    int highest_zoneidx = 0;       // kcompactd_highest_zoneidx
    uint64_t next_proactive = 0;   // logical time of the next proactive check
    uint32_t proactive_defer = 0;  // remaining 500 ms periods to skip
  };
  void EnsureCompactionState();
  int CompactZone(CompactControl& cc);
  int CompactFinished(CompactControl& cc);
  int IsolateMigratepages(CompactControl& cc);
  void IsolateMigratepagesBlock(CompactControl& cc, uint64_t low_pfn, uint64_t end_pfn);
  void IsolateFreepages(CompactControl& cc);
  int IsolateFreepagesBlock(CompactControl& cc, uint64_t* start_pfn, uint64_t end_pfn, int stride);
  bool MigratePages(CompactControl& cc);
  void ReleaseFreepages(CompactControl& cc);
  int CompactionSuitAllocationOrder(int zone, int order, int highest, uint32_t alloc_flags,
                                    bool async, bool kcompactd);
  int FragmentationScoreWmark(bool low) const;
  void TryCapture(CompactControl& cc, uint64_t src);
  // __zone_watermark_ok with NR_FREE_PAGES, or with `free_pages` when >= 0.
  bool CompactWatermarkOk(int zone, int order, int64_t mark, int highest, uint32_t alloc_flags,
                          int64_t free_pages = -1) const;
  // NR_FREE_PAGES_BLOCKS (6.15+): free pages in buddies of order >= 9.
  int64_t FreePagesBlocks(int zone) const;
  void ResetIsolationSuitable(int zone);
  bool CompactionDeferred(int zone, int order);
  void DeferCompaction(int zone, int order);
  void CompactionDeferReset(int zone, int order, bool alloc_success);
  bool CompactionRestarting(int zone, int order) const;
  int CompactZoneOrder(int zone, const AllocRequest& req, int prio, uint32_t alloc_flags, int highest,
                       uint64_t* capture);
  void CompactNodeInternal(int node, bool proactive);
  int FragmentationScoreZone(int zone) const;
  void KcompactdDoWork(int node);
  void EmitCompactResult(uint16_t kind, int zone, int order, int ret);
  void EmitDefer(uint16_t kind, int zone, int order);

  std::vector<CompactionZoneState> compact_zones_;  // per zone, sized on first use
  std::vector<KcompactdState> kcompactd_;            // per node, sized on first use
  int extfrag_threshold_ = 500;
  int compaction_proactiveness_ = 20;
  int compact_unevictable_allowed_ = 1;
  // ---- End of compaction internals --------------------------------------
};

}  // namespace fraglab::sim
