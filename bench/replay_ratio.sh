#!/bin/bash
# replay_ratio.sh - how much faster `fraglab replay` replays a kernel trace
# than the kernel took to produce it, measured in one run on this machine.
#
# 1. records a trace with `fraglab trace --all-events` (every page alloc and
#    free) around a workload: DURATION seconds of pipe traffic in bursts
#    (unmovable pipe buffers allocated and freed) with pauses, so the trace
#    holds what a busy-then-idle machine does; the tracker's first snapshot
#    is the replay's start state;
# 2. replays it with `fraglab replay --json`;
# 3. prints the trace's time span, the replay's wall and CPU time (wall time
#    on a shared machine also counts other processes' turns; CPU time is the
#    replay's own cost) and both ratios, against the target of 100x.
#
# usage: sudo bench/replay_ratio.sh [path/to/fraglab]
#   env: DURATION (seconds of workload, default 10), BURST_MIB (per burst, default 256)
# Needs root (BPF); prints the reason and exits 0 without it (a skip).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fraglab=${1:-$here/../build/rel/cli/fraglab}
duration=${DURATION:-10}
burst_mib=${BURST_MIB:-256}

if [ "$(id -u)" -ne 0 ]; then
  echo "replay_ratio: skipped: needs root to load the tracker's BPF programs" >&2
  exit 0
fi
if [ ! -x "$fraglab" ]; then
  echo "replay_ratio: $fraglab is not an executable fraglab binary" >&2
  exit 1
fi
if ! mount | grep -q ' type tracefs '; then
  mount -t tracefs nodev /sys/kernel/tracing
fi

dir=$(mktemp -d /tmp/fraglab-replay-ratio.XXXXXX)
trap 'rm -rf "$dir"' EXIT
trace=$dir/kernel.trace

# The workload: bursts of pipe traffic (page allocations and frees on both
# CPUs), half a second apart.
workload="end=\$((\$(date +%s) + $duration)); while [ \$(date +%s) -lt \$end ]; do \
  head -c ${burst_mib}M /dev/zero | cat > /dev/null; sleep 0.5; done"

"$fraglab" trace --all-events -o "$trace" -- sh -c "$workload" > "$dir/trace.out" 2>&1 || {
  echo "replay_ratio: fraglab trace failed:" >&2
  cat "$dir/trace.out" >&2
  exit 1
}
"$fraglab" replay --json "$trace" > "$dir/replay.json"

python3 - "$dir/replay.json" "$trace" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))
span = r["trace_span_ns"] / 1e9
wall, cpu = r["replay_seconds"], r["replay_cpu_seconds"]
events = r["allocs_replayed"] + r["frees_replayed"]
print(f"trace: {r['records']} records ({os.path.getsize(sys.argv[2]) / 1e6:.1f} MB), "
      f"{r['allocs_replayed']} allocations and {r['frees_replayed']} frees replayed, span {span:.3f} s")
print(f"replay: {wall:.3f} s wall, {cpu:.3f} s CPU ({events / cpu / 1e6:.2f} M alloc+free/s of CPU)")
print(f"ratio: {span / wall:.0f}x by wall time, {span / cpu:.0f}x by CPU time (target >= 100x: "
      f"{'met' if span / cpu >= 100 else 'NOT met'} by CPU time)")
print(f"fallbacks: kernel {r['kernel_extfrag_events']}, model {r['sim_extfrag_events']}; "
      f"first divergence at record {r['first_divergence']['record_index'] if r['first_divergence'] else '-'}")
PY
