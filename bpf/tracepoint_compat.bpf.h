/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * tracepoint_compat.bpf.h - the tracepoint record layouts fraglab reads, in
 * one place.
 *
 * We do not include a vmlinux.h generated on the build machine: each layout
 * below is a minimal local copy of the kernel's struct trace_event_raw_<name>
 * marked preserve_access_index, so libbpf relocates every field offset
 * against the BTF of the kernel the binary runs on (CO-RE). A field that is
 * not present in every kernel from 6.1 to 6.18 is only read through the
 * FL_READ_OPT() accessor, which yields a default where the running kernel lacks it;
 * each such field carries a comment naming the kernel change.
 *
 * CO-RE matches fields by name and by compatible kind: enum-typed fields must
 * stay enums here (libbpf does not treat an int as compatible with an enum).
 */
#ifndef FRAGLAB_TRACEPOINT_COMPAT_BPF_H
#define FRAGLAB_TRACEPOINT_COMPAT_BPF_H

#include <bpf/bpf_core_read.h>

#define FL_CORE __attribute__((preserve_access_index))

/* Reads an optional field of the tracepoint context: its value when the
 * running kernel's BTF has it, otherwise `dflt` (the load is then dead code
 * the verifier discards). Direct ctx loads, relocated by CO-RE. */
#define FL_READ_OPT(ptr, field, dflt) \
	(bpf_core_field_exists((ptr)->field) ? (ptr)->field : (dflt))

/* Local stand-ins for kernel enums; only their names matter to CO-RE. */
enum zone_type { FL_ZONE_TYPE_DUMMY___ };
enum migrate_mode { FL_MIGRATE_MODE_DUMMY___ };

struct trace_entry {
	unsigned short type;
	unsigned char flags;
	unsigned char preempt_count;
	int pid;
} FL_CORE;

/* ---- kmem ---- */

struct trace_event_raw_mm_page_alloc {
	struct trace_entry ent;
	unsigned long pfn;
	unsigned int order;
	unsigned long gfp_flags;
	int migratetype;
} FL_CORE;

struct trace_event_raw_mm_page_free {
	struct trace_entry ent;
	unsigned long pfn;
	unsigned int order;
} FL_CORE;

struct trace_event_raw_mm_page_alloc_extfrag {
	struct trace_entry ent;
	unsigned long pfn;
	int alloc_order;
	int fallback_order;
	int alloc_migratetype;
	int fallback_migratetype;
	int change_ownership;
} FL_CORE;

/* Class of mm_page_alloc_zone_locked. percpu_refill came with "mm/page_alloc:
 * fix tracepoint mm_page_alloc_zone_locked()" (2022, before 6.1); read as
 * optional so kernels or backports without it still load. */
struct trace_event_raw_mm_page {
	struct trace_entry ent;
	unsigned long pfn;
	unsigned int order;
	int migratetype;
	int percpu_refill;
} FL_CORE;

struct trace_event_raw_mm_page_pcpu_drain {
	struct trace_entry ent;
	unsigned long pfn;
	unsigned int order;
	int migratetype;
} FL_CORE;

/* ---- compaction ---- */

struct trace_event_raw_mm_compaction_begin {
	struct trace_entry ent;
	unsigned long zone_start;
	unsigned long migrate_pfn;
	unsigned long free_pfn;
	unsigned long zone_end;
	_Bool sync;
} FL_CORE;

struct trace_event_raw_mm_compaction_end {
	struct trace_entry ent;
	unsigned long zone_start;
	unsigned long migrate_pfn;
	unsigned long free_pfn;
	unsigned long zone_end;
	_Bool sync;
	int status;
} FL_CORE;

/* mm_compaction_suitable / mm_compaction_finished */
struct trace_event_raw_mm_compaction_suitable_template {
	struct trace_entry ent;
	int nid;
	enum zone_type idx;
	int order;
	int ret;
} FL_CORE;

/* mm_compaction_deferred / _defer_compaction / _defer_reset */
struct trace_event_raw_mm_compaction_defer_template {
	struct trace_entry ent;
	int nid;
	enum zone_type idx;
	int order;
	unsigned int considered;
	unsigned int defer_shift;
	int order_failed;
} FL_CORE;

struct trace_event_raw_mm_compaction_try_to_compact_pages {
	struct trace_entry ent;
	int order;
	unsigned long gfp_mask;
	int prio;
} FL_CORE;

/* mm_compaction_wakeup_kcompactd / mm_compaction_kcompactd_wake */
struct trace_event_raw_kcompactd_wake_template {
	struct trace_entry ent;
	int nid;
	int order;
	enum zone_type highest_zoneidx;
} FL_CORE;

struct trace_event_raw_mm_compaction_kcompactd_sleep {
	struct trace_entry ent;
	int nid;
} FL_CORE;

/* isolate_migratepages / isolate_freepages / fast_isolate_freepages */
struct trace_event_raw_mm_compaction_isolate_template {
	struct trace_entry ent;
	unsigned long start_pfn;
	unsigned long end_pfn;
	unsigned long nr_scanned;
	unsigned long nr_taken;
} FL_CORE;

struct trace_event_raw_mm_compaction_migratepages {
	struct trace_entry ent;
	unsigned long nr_migrated;
	unsigned long nr_failed;
} FL_CORE;

/*
 * Out-of-tree: "mm: add compaction success/failure tracepoints and
 * fragmentation tracking" (Luis Chamberlain's 20250903-compaction-tracepoints
 * branch, used by mcgrof/plot-fragmentation) adds page_alloc:
 * mm_compaction_success and mm_compaction_failure carrying the order and the
 * zone's fragmentation index. Its exact layout is not in any release, so
 * every field is optional and matched by name; absent ones read as 0 and the
 * userspace side marks the fragmentation index unknown when neither spelling
 * exists.
 */
struct trace_event_raw_mm_compaction_success {
	struct trace_entry ent;
	int nid;
	int idx;
	int order;
	int ret;
	int fragindex;
} FL_CORE;

struct trace_event_raw_mm_compaction_failure {
	struct trace_entry ent;
	int nid;
	int idx;
	int order;
	int ret;
	int fragindex;
} FL_CORE;

/* ---- migrate ---- */

/* large_folio_split is absent in 6.1: it came with the large-folio split
 * accounting of migrate_pages() (present in 6.12). The `reason` numbering
 * also differs (6.1 has no MR_DAMON); the trace keeps the raw number. */
struct trace_event_raw_mm_migrate_pages {
	struct trace_entry ent;
	unsigned long succeeded;
	unsigned long failed;
	unsigned long thp_succeeded;
	unsigned long thp_failed;
	unsigned long thp_split;
	unsigned long large_folio_split;
	enum migrate_mode mode;
	int reason;
} FL_CORE;

/* ---- vmscan ---- */

struct trace_event_raw_mm_vmscan_direct_reclaim_begin_template {
	struct trace_entry ent;
	int order;
	unsigned long gfp_flags;
} FL_CORE;

struct trace_event_raw_mm_vmscan_direct_reclaim_end_template {
	struct trace_entry ent;
	unsigned long nr_reclaimed;
} FL_CORE;

struct trace_event_raw_mm_vmscan_kswapd_wake {
	struct trace_entry ent;
	int nid;
	int zid;
	int order;
} FL_CORE;

struct trace_event_raw_mm_vmscan_kswapd_sleep {
	struct trace_entry ent;
	int nid;
} FL_CORE;

struct trace_event_raw_mm_vmscan_wakeup_kswapd {
	struct trace_entry ent;
	int nid;
	int zid;
	int order;
	unsigned long gfp_flags;
} FL_CORE;

/* ---- oom ---- */

/* Mainline 6.1 has only pid; comm (a __data_loc string), the rss counters
 * (in kB) and oom_score_adj came with "mm: update mark_victim tracepoints
 * fields" (72ba14deb40a, v6.8; also backported to some stable series). */
struct trace_event_raw_mark_victim {
	struct trace_entry ent;
	int pid;
	unsigned int __data_loc_comm;
	unsigned long total_vm;
	unsigned long anon_rss;
	unsigned long file_rss;
	short oom_score_adj;
} FL_CORE;

/* ---- huge_memory ---- */

struct mm_struct;
struct trace_event_raw_mm_collapse_huge_page {
	struct trace_entry ent;
	struct mm_struct *mm;
	int isolated;
	int status;
} FL_CORE;

#endif /* FRAGLAB_TRACEPOINT_COMPAT_BPF_H */
