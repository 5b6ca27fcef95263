// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fraglab.bpf.c - the tracker's BPF programs: one classic tracepoint program
 * per kernel event, each turning the tracepoint record into a record of the
 * shared schema (bpf/fraglab_events.h) in one ring buffer.
 *
 * Recording levels: low-rate events always go to the ring in full; the
 * high-rate page alloc/free are counted in a per-CPU aggregate map
 * (zone x order x migratetype) and additionally emitted in full only when
 * userspace set cfg_all_events, which also enables the equally frequent
 * zone_locked (pcp refill) and pcpu_drain events. Every record the programs try to emit is
 * counted per CPU, and so is every failed reservation: drops are never
 * silent.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpf/tracker_maps.h"
#include "bpf/tracepoint_compat.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by userspace between open and load (.rodata). */
const volatile __u32 cfg_all_events = 0;
const volatile __u32 cfg_pageblock_order = 9;
const volatile __u32 cfg_nr_zones = 0;
const volatile __u64 cfg_zone_start[FL_MAX_ZONES] = {};
const volatile __u64 cfg_zone_end[FL_MAX_ZONES] = {};
/* Wake the consumer only once this much data waits: at high event rates a
 * wakeup per record costs more than the record itself. Userspace also polls
 * with a timeout, so nothing waits longer than that. */
const volatile __u64 cfg_wakeup_bytes = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24); /* resized by userspace before load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fl_bpf_cpu_stats);
} cpu_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fl_bpf_agg);
} aggregates SEC(".maps");

static __always_inline void *fl_reserve(__u32 size)
{
	__u32 zero = 0;
	struct fl_bpf_cpu_stats *st = bpf_map_lookup_elem(&cpu_stats, &zero);
	void *rec;

	if (st)
		st->attempted++;
	rec = bpf_ringbuf_reserve(&events, size, 0);
	if (!rec && st)
		st->dropped++;
	return rec;
}

static __always_inline void fl_submit(void *rec)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= cfg_wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(rec, flags);
}

/* Reserves a zeroed record of struct `type` named `e` with its header filled
 * in, or returns from the program (the drop is already counted). */
#define FL_EMIT_BEGIN(type, record_kind)                           \
	struct type *e = fl_reserve(sizeof(struct type));          \
	if (!e)                                                    \
		return 0;                                          \
	__builtin_memset(e, 0, sizeof(*e));                        \
	e->hdr.kind = (record_kind);                               \
	e->hdr.cpu = bpf_get_smp_processor_id();                   \
	e->hdr.size = sizeof(struct type);                         \
	e->hdr.ts_ns = bpf_ktime_get_ns()

static __always_inline __u32 fl_pid(void)
{
	return bpf_get_current_pid_tgid() & 0xffffffff;
}

/* Position of pfn's zone in the rodata zone table, or -1. */
static __always_inline int fl_zone_of(__u64 pfn)
{
	for (int i = 0; i < FL_MAX_ZONES; i++) {
		if (i >= cfg_nr_zones)
			break;
		if (pfn >= cfg_zone_start[i] && pfn < cfg_zone_end[i])
			return i;
	}
	return -1;
}

static __always_inline struct fl_bpf_agg *fl_agg(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&aggregates, &zero);
}

/* ---- kmem ---- */

SEC("tracepoint/kmem/mm_page_alloc")
int fl_page_alloc(struct trace_event_raw_mm_page_alloc *ctx)
{
	__u64 pfn = ctx->pfn;
	__u32 order = ctx->order;
	__s32 mt = ctx->migratetype;
	__u32 slot = (mt >= 0 && mt < FL_MAX_MIGRATETYPES) ? mt : FL_MT_UNKNOWN;
	struct fl_bpf_agg *agg = fl_agg();
	int failed = pfn == ~0UL;

	if (agg && order < FL_MAX_ORDERS && slot < FL_MAX_MIGRATETYPES) {
		if (failed) {
			agg->alloc_failed[order][slot]++;
		} else {
			int z = fl_zone_of(pfn);

			if (z >= 0 && z < FL_MAX_ZONES)
				agg->alloc[z][order][slot]++;
			else
				agg->unknown_zone++;
		}
	}
	if (!cfg_all_events)
		return 0;

	FL_EMIT_BEGIN(fl_page_alloc, FL_EV_PAGE_ALLOC);
	e->pfn = failed ? FL_NO_PFN : pfn;
	e->gfp_flags = ctx->gfp_flags;
	e->order = order;
	e->migratetype = mt;
	fl_submit(e);
	return 0;
}

SEC("tracepoint/kmem/mm_page_free")
int fl_page_free(struct trace_event_raw_mm_page_free *ctx)
{
	__u64 pfn = ctx->pfn;
	__u32 order = ctx->order;
	struct fl_bpf_agg *agg = fl_agg();

	if (agg && order < FL_MAX_ORDERS) {
		int z = fl_zone_of(pfn);

		if (z >= 0 && z < FL_MAX_ZONES)
			agg->free[z][order][FL_MT_UNKNOWN]++;
		else
			agg->unknown_zone++;
	}
	if (!cfg_all_events)
		return 0;

	FL_EMIT_BEGIN(fl_page_free, FL_EV_PAGE_FREE);
	e->pfn = pfn;
	e->order = order;
	fl_submit(e);
	return 0;
}

SEC("tracepoint/kmem/mm_page_alloc_extfrag")
int fl_extfrag(struct trace_event_raw_mm_page_alloc_extfrag *ctx)
{
	__s32 fallback_order = ctx->fallback_order;
	__u8 change = ctx->change_ownership != 0;

	FL_EMIT_BEGIN(fl_extfrag, FL_EV_EXTFRAG);
	e->pfn = ctx->pfn;
	e->alloc_order = ctx->alloc_order;
	e->fallback_order = fallback_order;
	e->alloc_migratetype = ctx->alloc_migratetype;
	e->fallback_migratetype = ctx->fallback_migratetype;
	e->change_ownership = change;
	/* Weiner's taxonomy (reference section 2.5): a whole pageblock or more
	 * is a claim; below that, a block that changed owner is a steal and
	 * one that kept its type is polluted. */
	e->fragmenting = fallback_order < (__s32)cfg_pageblock_order;
	if (!e->fragmenting)
		e->extfrag_class = FL_EXTFRAG_CLAIM;
	else if (change)
		e->extfrag_class = FL_EXTFRAG_STEAL;
	else
		e->extfrag_class = FL_EXTFRAG_POLLUTE;
	fl_submit(e);
	return 0;
}

SEC("tracepoint/kmem/mm_page_alloc_zone_locked")
int fl_zone_locked(struct trace_event_raw_mm_page *ctx)
{
	/* One per page a pcp refill takes from the buddy: as frequent as the
	 * allocations themselves, so only at the full level. */
	if (!cfg_all_events)
		return 0;
	FL_EMIT_BEGIN(fl_zone_locked, FL_EV_ZONE_LOCKED);
	e->pfn = ctx->pfn;
	e->order = ctx->order;
	e->migratetype = ctx->migratetype;
	e->percpu_refill = FL_READ_OPT(ctx, percpu_refill, 0);
	fl_submit(e);
	return 0;
}

SEC("tracepoint/kmem/mm_page_pcpu_drain")
int fl_pcp_drain(struct trace_event_raw_mm_page_pcpu_drain *ctx)
{
	if (!cfg_all_events)
		return 0;
	FL_EMIT_BEGIN(fl_pcp_drain, FL_EV_PCP_DRAIN);
	e->pfn = ctx->pfn;
	e->order = ctx->order;
	e->migratetype = ctx->migratetype;
	fl_submit(e);
	return 0;
}

/* ---- compaction ---- */

SEC("tracepoint/compaction/mm_compaction_begin")
int fl_compact_begin(struct trace_event_raw_mm_compaction_begin *ctx)
{
	FL_EMIT_BEGIN(fl_compact_begin_end, FL_EV_COMPACT_BEGIN);
	e->zone_start = ctx->zone_start;
	e->migrate_pfn = ctx->migrate_pfn;
	e->free_pfn = ctx->free_pfn;
	e->zone_end = ctx->zone_end;
	e->sync = ctx->sync;
	e->pid = fl_pid();
	fl_submit(e);
	return 0;
}

SEC("tracepoint/compaction/mm_compaction_end")
int fl_compact_end(struct trace_event_raw_mm_compaction_end *ctx)
{
	FL_EMIT_BEGIN(fl_compact_begin_end, FL_EV_COMPACT_END);
	e->zone_start = ctx->zone_start;
	e->migrate_pfn = ctx->migrate_pfn;
	e->free_pfn = ctx->free_pfn;
	e->zone_end = ctx->zone_end;
	e->sync = ctx->sync;
	e->status = ctx->status;
	e->pid = fl_pid();
	fl_submit(e);
	return 0;
}

static __always_inline int
fl_compact_result(struct trace_event_raw_mm_compaction_suitable_template *ctx, __u16 kind)
{
	FL_EMIT_BEGIN(fl_compact_result, kind);
	e->nid = ctx->nid;
	e->zone_idx = ctx->idx;
	e->order = ctx->order;
	e->ret = ctx->ret;
	fl_submit(e);
	return 0;
}

SEC("tracepoint/compaction/mm_compaction_suitable")
int fl_compact_suitable(struct trace_event_raw_mm_compaction_suitable_template *ctx)
{
	return fl_compact_result(ctx, FL_EV_COMPACT_SUITABLE);
}

SEC("tracepoint/compaction/mm_compaction_finished")
int fl_compact_finished(struct trace_event_raw_mm_compaction_suitable_template *ctx)
{
	return fl_compact_result(ctx, FL_EV_COMPACT_FINISHED);
}

static __always_inline int
fl_compact_defer(struct trace_event_raw_mm_compaction_defer_template *ctx, __u16 kind)
{
	FL_EMIT_BEGIN(fl_compact_defer, kind);
	e->nid = ctx->nid;
	e->zone_idx = ctx->idx;
	e->order = ctx->order;
	e->considered = ctx->considered;
	e->defer_shift = ctx->defer_shift;
	e->order_failed = ctx->order_failed;
	fl_submit(e);
	return 0;
}

SEC("tracepoint/compaction/mm_compaction_deferred")
int fl_compact_deferred(struct trace_event_raw_mm_compaction_defer_template *ctx)
{
	return fl_compact_defer(ctx, FL_EV_COMPACT_DEFERRED);
}

SEC("tracepoint/compaction/mm_compaction_defer_compaction")
int fl_compact_defer_compaction(struct trace_event_raw_mm_compaction_defer_template *ctx)
{
	return fl_compact_defer(ctx, FL_EV_COMPACT_DEFER);
}

SEC("tracepoint/compaction/mm_compaction_defer_reset")
int fl_compact_defer_reset(struct trace_event_raw_mm_compaction_defer_template *ctx)
{
	return fl_compact_defer(ctx, FL_EV_COMPACT_DEFER_RESET);
}

SEC("tracepoint/compaction/mm_compaction_try_to_compact_pages")
int fl_compact_try(struct trace_event_raw_mm_compaction_try_to_compact_pages *ctx)
{
	FL_EMIT_BEGIN(fl_compact_try, FL_EV_COMPACT_TRY);
	e->gfp_mask = ctx->gfp_mask;
	e->order = ctx->order;
	e->prio = ctx->prio;
	e->pid = fl_pid();
	fl_submit(e);
	return 0;
}

static __always_inline int
fl_kcompactd(struct trace_event_raw_kcompactd_wake_template *ctx, __u16 kind)
{
	FL_EMIT_BEGIN(fl_kcompactd, kind);
	e->nid = ctx->nid;
	e->order = ctx->order;
	e->highest_zoneidx = ctx->highest_zoneidx;
	fl_submit(e);
	return 0;
}

SEC("tracepoint/compaction/mm_compaction_wakeup_kcompactd")
int fl_kcompactd_wakeup(struct trace_event_raw_kcompactd_wake_template *ctx)
{
	return fl_kcompactd(ctx, FL_EV_KCOMPACTD_WAKEUP);
}

SEC("tracepoint/compaction/mm_compaction_kcompactd_wake")
int fl_kcompactd_wake(struct trace_event_raw_kcompactd_wake_template *ctx)
{
	return fl_kcompactd(ctx, FL_EV_KCOMPACTD_WAKE);
}

SEC("tracepoint/compaction/mm_compaction_kcompactd_sleep")
int fl_kcompactd_sleep(struct trace_event_raw_mm_compaction_kcompactd_sleep *ctx)
{
	FL_EMIT_BEGIN(fl_kcompactd, FL_EV_KCOMPACTD_SLEEP);
	e->nid = ctx->nid;
	fl_submit(e);
	return 0;
}

static __always_inline int
fl_isolate(struct trace_event_raw_mm_compaction_isolate_template *ctx, __u32 which)
{
	FL_EMIT_BEGIN(fl_compact_isolate, FL_EV_COMPACT_ISOLATE);
	e->start_pfn = ctx->start_pfn;
	e->end_pfn = ctx->end_pfn;
	e->nr_scanned = ctx->nr_scanned;
	e->nr_taken = ctx->nr_taken;
	e->which = which;
	fl_submit(e);
	return 0;
}

SEC("tracepoint/compaction/mm_compaction_isolate_migratepages")
int fl_isolate_migratepages(struct trace_event_raw_mm_compaction_isolate_template *ctx)
{
	return fl_isolate(ctx, FL_ISOLATE_MIGRATEPAGES);
}

SEC("tracepoint/compaction/mm_compaction_isolate_freepages")
int fl_isolate_freepages(struct trace_event_raw_mm_compaction_isolate_template *ctx)
{
	return fl_isolate(ctx, FL_ISOLATE_FREEPAGES);
}

SEC("tracepoint/compaction/mm_compaction_fast_isolate_freepages")
int fl_fast_isolate_freepages(struct trace_event_raw_mm_compaction_isolate_template *ctx)
{
	return fl_isolate(ctx, FL_ISOLATE_FAST_FREEPAGES);
}

SEC("tracepoint/compaction/mm_compaction_migratepages")
int fl_compact_migratepages(struct trace_event_raw_mm_compaction_migratepages *ctx)
{
	FL_EMIT_BEGIN(fl_compact_migratepages, FL_EV_COMPACT_MIGRATEPAGES);
	e->nr_migrated = ctx->nr_migrated;
	e->nr_failed = ctx->nr_failed;
	fl_submit(e);
	return 0;
}

/* Out-of-tree (see tracepoint_compat.bpf.h); attached only where present. */
SEC("tracepoint/page_alloc/mm_compaction_success")
int fl_compact_success(struct trace_event_raw_mm_compaction_success *ctx)
{
	FL_EMIT_BEGIN(fl_compact_outcome, FL_EV_COMPACT_OUTCOME);
	e->nid = FL_READ_OPT(ctx, nid, -1);
	e->zone_idx = FL_READ_OPT(ctx, idx, -1);
	e->order = FL_READ_OPT(ctx, order, -1);
	e->success = 1;
	e->ret = FL_READ_OPT(ctx, ret, 0);
	/* The patch's published user reads the index from `ret`. */
	if (bpf_core_field_exists(ctx->fragindex))
		e->fragindex = ctx->fragindex;
	else if (bpf_core_field_exists(ctx->ret))
		e->fragindex = ctx->ret;
	else
		e->fragindex = FL_FRAGINDEX_UNKNOWN;
	fl_submit(e);
	return 0;
}

SEC("tracepoint/page_alloc/mm_compaction_failure")
int fl_compact_failure(struct trace_event_raw_mm_compaction_failure *ctx)
{
	FL_EMIT_BEGIN(fl_compact_outcome, FL_EV_COMPACT_OUTCOME);
	e->nid = FL_READ_OPT(ctx, nid, -1);
	e->zone_idx = FL_READ_OPT(ctx, idx, -1);
	e->order = FL_READ_OPT(ctx, order, -1);
	e->success = 0;
	e->ret = FL_READ_OPT(ctx, ret, 0);
	e->fragindex = FL_READ_OPT(ctx, fragindex, FL_FRAGINDEX_UNKNOWN);
	fl_submit(e);
	return 0;
}

/* ---- migrate ---- */

SEC("tracepoint/migrate/mm_migrate_pages")
int fl_migrate_pages(struct trace_event_raw_mm_migrate_pages *ctx)
{
	FL_EMIT_BEGIN(fl_migrate_pages, FL_EV_MIGRATE_PAGES);
	e->succeeded = ctx->succeeded;
	e->failed = ctx->failed;
	e->thp_succeeded = ctx->thp_succeeded;
	e->thp_failed = ctx->thp_failed;
	e->thp_split = ctx->thp_split;
	e->large_folio_split = FL_READ_OPT(ctx, large_folio_split, 0);
	e->mode = ctx->mode;
	e->reason = ctx->reason;
	fl_submit(e);
	return 0;
}

/* ---- vmscan ---- */

SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_begin")
int fl_direct_reclaim_begin(struct trace_event_raw_mm_vmscan_direct_reclaim_begin_template *ctx)
{
	FL_EMIT_BEGIN(fl_direct_reclaim, FL_EV_DIRECT_RECLAIM_BEGIN);
	e->gfp_flags = ctx->gfp_flags;
	e->order = ctx->order;
	e->pid = fl_pid();
	fl_submit(e);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_end")
int fl_direct_reclaim_end(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template *ctx)
{
	FL_EMIT_BEGIN(fl_direct_reclaim, FL_EV_DIRECT_RECLAIM_END);
	e->nr_reclaimed = ctx->nr_reclaimed;
	e->pid = fl_pid();
	fl_submit(e);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_kswapd_wake")
int fl_kswapd_wake(struct trace_event_raw_mm_vmscan_kswapd_wake *ctx)
{
	FL_EMIT_BEGIN(fl_kswapd, FL_EV_KSWAPD_WAKE);
	e->nid = ctx->nid;
	e->zid = ctx->zid;
	e->order = ctx->order;
	fl_submit(e);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_kswapd_sleep")
int fl_kswapd_sleep(struct trace_event_raw_mm_vmscan_kswapd_sleep *ctx)
{
	FL_EMIT_BEGIN(fl_kswapd, FL_EV_KSWAPD_SLEEP);
	e->nid = ctx->nid;
	fl_submit(e);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_wakeup_kswapd")
int fl_kswapd_wakeup(struct trace_event_raw_mm_vmscan_wakeup_kswapd *ctx)
{
	FL_EMIT_BEGIN(fl_kswapd, FL_EV_KSWAPD_WAKEUP);
	e->gfp_flags = ctx->gfp_flags;
	e->nid = ctx->nid;
	e->zid = ctx->zid;
	e->order = ctx->order;
	fl_submit(e);
	return 0;
}

/* ---- oom ---- */

SEC("tracepoint/oom/mark_victim")
int fl_oom_victim(struct trace_event_raw_mark_victim *ctx)
{
	FL_EMIT_BEGIN(fl_oom_victim, FL_EV_OOM_VICTIM);
	e->pid = ctx->pid;
	e->total_vm = FL_READ_OPT(ctx, total_vm, 0);
	e->anon_rss = FL_READ_OPT(ctx, anon_rss, 0);
	e->file_rss = FL_READ_OPT(ctx, file_rss, 0);
	e->oom_score_adj = FL_READ_OPT(ctx, oom_score_adj, 0);
	if (bpf_core_field_exists(ctx->__data_loc_comm)) {
		/* __data_loc: low 16 bits offset from the record start, high 16 length. */
		__u32 loc = ctx->__data_loc_comm;

		bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), (void *)ctx + (loc & 0xffff));
	}
	fl_submit(e);
	return 0;
}

/* ---- huge_memory ---- */

SEC("tracepoint/huge_memory/mm_collapse_huge_page")
int fl_thp_collapse(struct trace_event_raw_mm_collapse_huge_page *ctx)
{
	FL_EMIT_BEGIN(fl_thp_collapse, FL_EV_THP_COLLAPSE);
	e->mm = (__u64)(unsigned long)ctx->mm;
	e->isolated = ctx->isolated;
	e->status = ctx->status;
	fl_submit(e);
	return 0;
}
