/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * fraglab_events.h - the one event schema shared by the BPF tracker, the
 * simulator, the generator and every reader of a fraglab trace.
 *
 * Usable from BPF C (compiled with clang -target bpf, where vmlinux-style
 * __u8.. types come from <linux/types.h> or the BPF program's own typedefs)
 * and from C++ (where the same names come from <linux/types.h>).
 *
 * Rules:
 *  - every record starts with struct fl_record_header; header.size is the
 *    total record size in bytes (header included), a multiple of 8;
 *  - fields are fixed width, naturally aligned, little endian (x86-64);
 *  - kinds have fixed numeric values that never change meaning; new kinds
 *    get new numbers and bump FL_SCHEMA_VERSION's minor;
 *  - migratetype numbers are the *source kernel's* numbers; the trace header
 *    names them (CMA shifts ISOLATE from 4 to 5, see reference section 1);
 *  - ts_ns is CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns) for kernel
 *    traces and logical time for simulated ones.
 * Layout is pinned by static asserts at the end of this file, which run on
 * both the BPF and the C++ side.
 */
#ifndef FRAGLAB_EVENTS_H
#define FRAGLAB_EVENTS_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define FL_SCHEMA_VERSION_MAJOR 1
#define FL_SCHEMA_VERSION_MINOR 1

#define FL_MAX_ORDERS 11       /* NR_PAGE_ORDERS on x86-64: orders 0..10 */
#define FL_MAX_MIGRATETYPES 8  /* room for UNMOVABLE..ISOLATE with CMA, plus spare */
#define FL_MAX_ZONES 8         /* zones across all nodes in one aggregate record */
#define FL_MT_UNKNOWN 7        /* aggregate slot for frees whose type the kernel does not report */
#define FL_PHASE_LABEL_LEN 64
#define FL_COMM_LEN 16
#define FL_PB_MAP_MAX_ENTRIES 4096 /* pageblocks per pageblock-map record */
#define FL_NO_PFN 0xffffffffffffffffULL /* failed allocation (kernel prints pfn=0x0) */

/* Record kinds. Values are part of the file format: never renumber. */
enum fl_event_kind {
	FL_EV_INVALID = 0,
	/* page allocator (kmem:) */
	FL_EV_PAGE_ALLOC = 1,        /* mm_page_alloc */
	FL_EV_PAGE_FREE = 2,         /* mm_page_free / mm_page_free_batched */
	FL_EV_EXTFRAG = 3,           /* mm_page_alloc_extfrag */
	FL_EV_ZONE_LOCKED = 4,       /* mm_page_alloc_zone_locked (pcp refill when percpu_refill) */
	FL_EV_PCP_DRAIN = 5,         /* mm_page_pcpu_drain */
	/* compaction (compaction:) */
	FL_EV_COMPACT_BEGIN = 10,
	FL_EV_COMPACT_END = 11,
	FL_EV_COMPACT_SUITABLE = 12,
	FL_EV_COMPACT_FINISHED = 13,
	FL_EV_COMPACT_DEFERRED = 14,      /* mm_compaction_deferred */
	FL_EV_COMPACT_DEFER = 15,         /* mm_compaction_defer_compaction */
	FL_EV_COMPACT_DEFER_RESET = 16,   /* mm_compaction_defer_reset */
	FL_EV_COMPACT_TRY = 17,           /* mm_compaction_try_to_compact_pages */
	FL_EV_KCOMPACTD_WAKEUP = 18,      /* mm_compaction_wakeup_kcompactd (someone wakes it) */
	FL_EV_KCOMPACTD_WAKE = 19,        /* mm_compaction_kcompactd_wake (it runs) */
	FL_EV_KCOMPACTD_SLEEP = 20,
	FL_EV_COMPACT_ISOLATE = 21,       /* isolate_migratepages / isolate_freepages / fast_isolate_freepages */
	FL_EV_COMPACT_MIGRATEPAGES = 22,  /* mm_compaction_migratepages */
	FL_EV_COMPACT_OUTCOME = 23,       /* out-of-tree mm_compaction_success/_failure (minor 1) */
	/* migration, reclaim, THP, OOM */
	FL_EV_MIGRATE_PAGES = 30,         /* migrate:mm_migrate_pages */
	FL_EV_DIRECT_RECLAIM_BEGIN = 31,
	FL_EV_DIRECT_RECLAIM_END = 32,
	FL_EV_KSWAPD_WAKE = 33,           /* mm_vmscan_kswapd_wake (it runs) */
	FL_EV_KSWAPD_SLEEP = 34,
	FL_EV_KSWAPD_WAKEUP = 35,         /* mm_vmscan_wakeup_kswapd (someone wakes it) */
	FL_EV_THP_COLLAPSE = 36,          /* huge_memory:mm_collapse_huge_page */
	FL_EV_OOM_VICTIM = 37,            /* oom:mark_victim */
	/* recorder / scenario / snapshot records */
	FL_EV_AGGREGATE = 50,             /* per-interval alloc/free counts */
	FL_EV_SNAPSHOT_ZONE = 51,         /* one zone's buddy/pageblock/watermark state */
	FL_EV_COUNTERS = 52,              /* vmstat-style counters */
	FL_EV_PHASE = 53,                 /* scenario phase begin/end */
	FL_EV_DROPS = 54,                 /* events lost by the recorder */
	FL_EV_PAGEBLOCK_MAP = 55,         /* per-pageblock type and free pages */
	FL_EV_PROBE = 56,                 /* high-order availability probe result */
	FL_EV_KIND_MAX = 57,
};

/* Common record header: 16 bytes. */
struct fl_record_header {
	__u16 kind;   /* enum fl_event_kind */
	__u16 cpu;    /* CPU the event happened on (simulated CPU for sim) */
	__u32 size;   /* total record size in bytes, header included, multiple of 8 */
	__u64 ts_ns;  /* CLOCK_MONOTONIC ns (kernel) or logical time (sim) */
};

/* FL_EV_PAGE_ALLOC: kmem:mm_page_alloc, emitted after fast+slow path, also on failure. */
struct fl_page_alloc {
	struct fl_record_header hdr;
	__u64 pfn;          /* FL_NO_PFN when the allocation failed */
	__u64 gfp_flags;
	__u32 order;
	__s32 migratetype;  /* requested type (gfp -> migratetype) */
};

/* FL_EV_PAGE_FREE */
struct fl_page_free {
	struct fl_record_header hdr;
	__u64 pfn;
	__u32 order;
	__u32 batched;      /* 1 when from mm_page_free_batched */
};

/* Derived class of a fallback, after Weiner's taxonomy (reference section 2.5). */
enum fl_extfrag_class {
	FL_EXTFRAG_CLAIM = 0,    /* fallback_order >= pageblock_order: whole block(s) taken */
	FL_EXTFRAG_STEAL = 1,    /* fallback_order < pageblock_order and the block changed owner */
	FL_EXTFRAG_POLLUTE = 2,  /* fallback_order < pageblock_order and the block kept its type */
};

/* FL_EV_EXTFRAG: kmem:mm_page_alloc_extfrag */
struct fl_extfrag {
	struct fl_record_header hdr;
	__u64 pfn;
	__s32 alloc_order;
	__s32 fallback_order;
	__s32 alloc_migratetype;
	__s32 fallback_migratetype;
	__u8 change_ownership;
	__u8 fragmenting;        /* fallback_order < pageblock_order */
	__u8 extfrag_class;      /* enum fl_extfrag_class */
	__u8 pad[5];
};

/* FL_EV_ZONE_LOCKED: kmem:mm_page_alloc_zone_locked */
struct fl_zone_locked {
	struct fl_record_header hdr;
	__u64 pfn;
	__u32 order;
	__s32 migratetype;       /* list searched */
	__u32 percpu_refill;
	__u32 pad;
};

/* FL_EV_PCP_DRAIN: kmem:mm_page_pcpu_drain */
struct fl_pcp_drain {
	struct fl_record_header hdr;
	__u64 pfn;
	__u32 order;
	__s32 migratetype;
};

/* FL_EV_COMPACT_BEGIN / FL_EV_COMPACT_END */
struct fl_compact_begin_end {
	struct fl_record_header hdr;
	__u64 zone_start;
	__u64 migrate_pfn;
	__u64 free_pfn;
	__u64 zone_end;
	__u32 sync;
	__s32 status;            /* END only: compact_result (reference section 3) */
	__u32 pid;
	__u32 pad;
};

/* FL_EV_COMPACT_SUITABLE / FL_EV_COMPACT_FINISHED */
struct fl_compact_result {
	struct fl_record_header hdr;
	__s32 nid;
	__s32 zone_idx;
	__s32 order;
	__s32 ret;               /* compact_result */
};

/* FL_EV_COMPACT_DEFERRED / _DEFER / _DEFER_RESET */
struct fl_compact_defer {
	struct fl_record_header hdr;
	__s32 nid;
	__s32 zone_idx;
	__s32 order;
	__u32 considered;
	__u32 defer_shift;
	__s32 order_failed;
};

/* FL_EV_COMPACT_TRY: mm_compaction_try_to_compact_pages */
struct fl_compact_try {
	struct fl_record_header hdr;
	__u64 gfp_mask;
	__s32 order;
	__s32 prio;              /* SYNC_FULL=0, SYNC_LIGHT=1, ASYNC=2 */
	__u32 pid;
	__u32 pad;
};

/* FL_EV_KCOMPACTD_WAKEUP / _WAKE / _SLEEP (sleep: only nid meaningful) */
struct fl_kcompactd {
	struct fl_record_header hdr;
	__s32 nid;
	__s32 order;
	__s32 highest_zoneidx;
	__u32 pad;
};

enum fl_isolate_which {
	FL_ISOLATE_MIGRATEPAGES = 0,
	FL_ISOLATE_FREEPAGES = 1,
	FL_ISOLATE_FAST_FREEPAGES = 2,
};

/* FL_EV_COMPACT_ISOLATE */
struct fl_compact_isolate {
	struct fl_record_header hdr;
	__u64 start_pfn;
	__u64 end_pfn;
	__u64 nr_scanned;
	__u64 nr_taken;
	__u32 which;             /* enum fl_isolate_which */
	__u32 pad;
};

/* FL_EV_COMPACT_MIGRATEPAGES */
struct fl_compact_migratepages {
	struct fl_record_header hdr;
	__u64 nr_migrated;
	__u64 nr_failed;
};

#define FL_FRAGINDEX_UNKNOWN (-2147483647 - 1) /* INT32_MIN: source has no fragmentation index */

/* FL_EV_COMPACT_OUTCOME: out-of-tree page_alloc:mm_compaction_success / _failure
 * (schema minor 1); recorded only on kernels carrying that patch. */
struct fl_compact_outcome {
	struct fl_record_header hdr;
	__s32 nid;               /* -1 when the tracepoint lacks it */
	__s32 zone_idx;          /* -1 when the tracepoint lacks it */
	__s32 order;
	__u32 success;           /* 1 = mm_compaction_success, 0 = mm_compaction_failure */
	__s32 fragindex;         /* fragmentation index x1000, FL_FRAGINDEX_UNKNOWN if absent */
	__s32 ret;               /* the tracepoint's ret field, 0 if absent */
};

/* FL_EV_MIGRATE_PAGES: migrate:mm_migrate_pages */
struct fl_migrate_pages {
	struct fl_record_header hdr;
	__u64 succeeded;
	__u64 failed;
	__u64 thp_succeeded;
	__u64 thp_failed;
	__u64 thp_split;
	__u64 large_folio_split;  /* 0 where the kernel lacks the field (6.1) */
	__u32 mode;
	__s32 reason;
};

/* FL_EV_DIRECT_RECLAIM_BEGIN / _END */
struct fl_direct_reclaim {
	struct fl_record_header hdr;
	__u64 gfp_flags;          /* BEGIN */
	__u64 nr_reclaimed;       /* END */
	__s32 order;              /* BEGIN */
	__u32 pid;
};

/* FL_EV_KSWAPD_WAKE / _SLEEP / _WAKEUP */
struct fl_kswapd {
	struct fl_record_header hdr;
	__u64 gfp_flags;          /* WAKEUP only */
	__s32 nid;
	__s32 zid;                /* WAKE(UP) */
	__s32 order;              /* WAKE(UP) */
	__u32 pad;
};

/* FL_EV_THP_COLLAPSE */
struct fl_thp_collapse {
	struct fl_record_header hdr;
	__u64 mm;
	__s32 isolated;
	__s32 status;
};

/* FL_EV_OOM_VICTIM */
struct fl_oom_victim {
	struct fl_record_header hdr;
	__u64 total_vm;
	__u64 anon_rss;
	__u64 file_rss;
	__s32 pid;
	__s16 oom_score_adj;
	__u16 pad;
	char comm[FL_COMM_LEN];
};

/*
 * FL_EV_AGGREGATE: page alloc/free counts over [hdr.ts_ns - interval_ns, hdr.ts_ns].
 * zone index z is the position in the trace header's zone list; frees are counted
 * under FL_MT_UNKNOWN when the source does not know the block type (the kernel's
 * mm_page_free has no migratetype).
 */
struct fl_aggregate {
	struct fl_record_header hdr;
	__u64 interval_ns;
	__u32 nr_zones;
	__u32 pad;
	__u32 alloc[FL_MAX_ZONES][FL_MAX_ORDERS][FL_MAX_MIGRATETYPES];
	__u32 free[FL_MAX_ZONES][FL_MAX_ORDERS][FL_MAX_MIGRATETYPES];
	__u32 alloc_failed[FL_MAX_ORDERS][FL_MAX_MIGRATETYPES];
	__u32 unknown_zone;       /* events whose pfn fell outside every known zone */
	__u32 pad2;
};

#define FL_SNAP_SATURATED 0x1   /* a pagetypeinfo cell read ">100000" (count is a lower bound) */
#define FL_SNAP_NO_TYPES 0x2    /* pagetypeinfo unreadable: free_blocks_by_type and pageblocks unset */

/* FL_EV_SNAPSHOT_ZONE: one zone at one moment. */
struct fl_snapshot_zone {
	struct fl_record_header hdr;
	__s32 nid;
	__s32 zone_idx;           /* DMA=0 DMA32=1 Normal=2 Movable=3 Device=4 */
	__u32 flags;              /* FL_SNAP_* */
	__u32 nr_migratetypes;    /* columns valid in the per-type arrays */
	__u64 start_pfn;
	__u64 spanned;
	__u64 present;
	__u64 managed;
	__u64 nr_free_pages;
	__u64 wmark_min;
	__u64 wmark_low;
	__u64 wmark_high;
	__u64 wmark_promo;        /* 0 where the kernel has none */
	__u64 boost;
	__u64 nr_free[FL_MAX_ORDERS];    /* buddyinfo: free blocks per order, all lists */
	__u32 free_by_type[FL_MAX_ORDERS][FL_MAX_MIGRATETYPES]; /* pagetypeinfo free blocks */
	__u32 pageblocks[FL_MAX_MIGRATETYPES]; /* "Number of blocks type" */
};

/* Counter ids for FL_EV_COUNTERS (a fixed set; 0 where the source lacks one). */
enum fl_counter_id {
	FL_CTR_NR_FREE_PAGES = 0,
	FL_CTR_NR_FREE_PAGES_BLOCKS,
	FL_CTR_PGALLOC_DMA,
	FL_CTR_PGALLOC_DMA32,
	FL_CTR_PGALLOC_NORMAL,
	FL_CTR_PGALLOC_MOVABLE,
	FL_CTR_PGFREE,
	FL_CTR_COMPACT_STALL,
	FL_CTR_COMPACT_FAIL,
	FL_CTR_COMPACT_SUCCESS,
	FL_CTR_COMPACT_MIGRATE_SCANNED,
	FL_CTR_COMPACT_FREE_SCANNED,
	FL_CTR_COMPACT_ISOLATED,
	FL_CTR_COMPACT_DAEMON_WAKE,
	FL_CTR_COMPACT_DAEMON_MIGRATE_SCANNED,
	FL_CTR_COMPACT_DAEMON_FREE_SCANNED,
	FL_CTR_PGMIGRATE_SUCCESS,
	FL_CTR_PGMIGRATE_FAIL,
	FL_CTR_THP_FAULT_ALLOC,
	FL_CTR_THP_FAULT_FALLBACK,
	FL_CTR_THP_FAULT_FALLBACK_CHARGE,
	FL_CTR_THP_COLLAPSE_ALLOC,
	FL_CTR_THP_COLLAPSE_ALLOC_FAILED,
	FL_CTR_THP_SPLIT_PAGE,
	FL_CTR_ALLOCSTALL_DMA32,
	FL_CTR_ALLOCSTALL_NORMAL,
	FL_CTR_ALLOCSTALL_MOVABLE,
	FL_CTR_PGSTEAL_KSWAPD,
	FL_CTR_PGSTEAL_DIRECT,
	FL_CTR_PGSCAN_KSWAPD,
	FL_CTR_PGSCAN_DIRECT,
	FL_CTR_KSWAPD_LOW_WMARK_HIT_QUICKLY,
	FL_CTR_KSWAPD_HIGH_WMARK_HIT_QUICKLY,
	FL_CTR_DROP_PAGECACHE,
	FL_CTR_DROP_SLAB,
	FL_CTR_OOM_KILL,
	FL_CTR_HTLB_BUDDY_ALLOC_SUCCESS,
	FL_CTR_HTLB_BUDDY_ALLOC_FAIL,
	FL_CTR_NR_SLAB_RECLAIMABLE,     /* pages */
	FL_CTR_NR_SLAB_UNRECLAIMABLE,   /* pages */
	FL_CTR_NR_FILE_PAGES,
	FL_CTR_NR_ANON_PAGES,
	FL_CTR_NR_PAGE_TABLE_PAGES,
	FL_CTR_NR_ANON_TRANSPARENT_HUGEPAGES,
	FL_CTR_MAX = 64,
};

/* FL_EV_COUNTERS: cumulative counter values at hdr.ts_ns (not deltas). */
struct fl_counters {
	struct fl_record_header hdr;
	__u64 present_mask;       /* bit i set: value[i] was read from the source */
	__u64 value[FL_CTR_MAX];
};

/* FL_EV_PHASE */
struct fl_phase {
	struct fl_record_header hdr;
	__u32 index;              /* phase position in the scenario (after repeat expansion) */
	__u32 begin;              /* 1 = begin, 0 = end */
	char label[FL_PHASE_LABEL_LEN]; /* NUL-terminated, truncated */
};

/* FL_EV_DROPS: cumulative events lost on one CPU (cpu in the header). */
struct fl_drops {
	struct fl_record_header hdr;
	__u64 lost;
};

struct fl_pageblock_entry {
	__u8 migratetype;         /* source kernel numbering; 0xff unknown */
	__u8 flags;               /* FL_PB_* */
	__u16 free_pages;         /* 0..512 pages of the block that are free */
};

#define FL_PB_ESTIMATED 0x1       /* type estimated from page contents, not read */
#define FL_PB_MIXED 0x2           /* holds pages of another mobility than its type */
#define FL_PB_PARTIAL 0x4         /* block not fully inside the zone */

/* FL_EV_PAGEBLOCK_MAP: entries for pageblocks [first_block, first_block+count). */
struct fl_pageblock_map {
	struct fl_record_header hdr;
	__s32 nid;
	__s32 zone_idx;
	__u64 first_pfn;          /* pfn of the first block's first page */
	__u32 count;              /* entries following, <= FL_PB_MAP_MAX_ENTRIES */
	__u32 pad;
	/* struct fl_pageblock_entry entries[count]; then zero padding to 8 bytes */
};

enum fl_probe_kind {
	FL_PROBE_HUGETLB = 0,     /* grow nr_hugepages by requested pages */
	FL_PROBE_THP = 1,         /* THP faults */
	FL_PROBE_ORDER = 2,       /* raw order-N allocations (simulator) */
};

/* FL_EV_PROBE */
struct fl_probe {
	struct fl_record_header hdr;
	__u32 probe_kind;         /* enum fl_probe_kind */
	__u32 order;
	__u64 requested;
	__u64 obtained;
	__u64 duration_ns;
};

/* Layout checks, on both sides. */
#ifdef __cplusplus
#define FL_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define FL_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif
FL_STATIC_ASSERT(sizeof(struct fl_record_header) == 16, "record header");
FL_STATIC_ASSERT(sizeof(struct fl_page_alloc) == 40, "page_alloc");
FL_STATIC_ASSERT(sizeof(struct fl_page_free) == 32, "page_free");
FL_STATIC_ASSERT(sizeof(struct fl_extfrag) == 48, "extfrag");
FL_STATIC_ASSERT(sizeof(struct fl_zone_locked) == 40, "zone_locked");
FL_STATIC_ASSERT(sizeof(struct fl_pcp_drain) == 32, "pcp_drain");
FL_STATIC_ASSERT(sizeof(struct fl_compact_begin_end) == 64, "compact_begin_end");
FL_STATIC_ASSERT(sizeof(struct fl_compact_result) == 32, "compact_result");
FL_STATIC_ASSERT(sizeof(struct fl_compact_defer) == 40, "compact_defer");
FL_STATIC_ASSERT(sizeof(struct fl_compact_try) == 40, "compact_try");
FL_STATIC_ASSERT(sizeof(struct fl_kcompactd) == 32, "kcompactd");
FL_STATIC_ASSERT(sizeof(struct fl_compact_isolate) == 56, "compact_isolate");
FL_STATIC_ASSERT(sizeof(struct fl_compact_migratepages) == 32, "compact_migratepages");
FL_STATIC_ASSERT(sizeof(struct fl_compact_outcome) == 40, "compact_outcome");
FL_STATIC_ASSERT(sizeof(struct fl_migrate_pages) == 72, "migrate_pages");
FL_STATIC_ASSERT(sizeof(struct fl_direct_reclaim) == 40, "direct_reclaim");
FL_STATIC_ASSERT(sizeof(struct fl_kswapd) == 40, "kswapd");
FL_STATIC_ASSERT(sizeof(struct fl_thp_collapse) == 32, "thp_collapse");
FL_STATIC_ASSERT(sizeof(struct fl_oom_victim) == 64, "oom_victim");
FL_STATIC_ASSERT(sizeof(struct fl_aggregate) % 8 == 0, "aggregate");
FL_STATIC_ASSERT(sizeof(struct fl_snapshot_zone) % 8 == 0, "snapshot_zone");
FL_STATIC_ASSERT(sizeof(struct fl_counters) == 16 + 8 + 8 * FL_CTR_MAX, "counters");
FL_STATIC_ASSERT(sizeof(struct fl_phase) == 24 + FL_PHASE_LABEL_LEN, "phase");
FL_STATIC_ASSERT(sizeof(struct fl_drops) == 24, "drops");
FL_STATIC_ASSERT(sizeof(struct fl_pageblock_entry) == 4, "pageblock_entry");
FL_STATIC_ASSERT(sizeof(struct fl_pageblock_map) == 40, "pageblock_map");
FL_STATIC_ASSERT(sizeof(struct fl_probe) == 48, "probe");

#endif /* FRAGLAB_EVENTS_H */
