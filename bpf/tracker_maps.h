/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * tracker_maps.h - value layouts of the tracker's BPF maps, shared by
 * fraglab.bpf.c and the userspace tracker (bpf/tracker.cc). Not part of the
 * trace format: userspace turns these into FL_EV_AGGREGATE / FL_EV_DROPS
 * records of bpf/fraglab_events.h.
 */
#ifndef FRAGLAB_TRACKER_MAPS_H
#define FRAGLAB_TRACKER_MAPS_H

#include "bpf/fraglab_events.h"

/* One CPU's cumulative page alloc/free counts (the "aggregates" map, a
 * single-entry per-CPU array). Zone z = position in the zone table the
 * tracker put in .rodata (= the trace header's zone list). */
struct fl_bpf_agg {
	__u64 alloc[FL_MAX_ZONES][FL_MAX_ORDERS][FL_MAX_MIGRATETYPES];
	__u64 free[FL_MAX_ZONES][FL_MAX_ORDERS][FL_MAX_MIGRATETYPES];
	__u64 alloc_failed[FL_MAX_ORDERS][FL_MAX_MIGRATETYPES];
	__u64 unknown_zone;
};

/* One CPU's ring-buffer accounting (the "cpu_stats" map, single-entry
 * per-CPU array): every record the programs tried to emit, and those lost
 * because bpf_ringbuf_reserve failed. attempted - dropped were submitted. */
struct fl_bpf_cpu_stats {
	__u64 attempted;
	__u64 dropped;
};

#endif /* FRAGLAB_TRACKER_MAPS_H */
