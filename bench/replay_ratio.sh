#!/bin/bash
# replay_ratio.sh - how much faster `fraglab replay` replays a kernel trace
# than the kernel took to produce it, measured in one run on this machine.
#
# 1. records a trace with `fraglab trace --all-events` (every page alloc and
#    free) around a workload: DURATION seconds of pipe traffic in bursts
#    (unmovable pipe buffers allocated and freed) with pauses, so the trace
#    holds what a busy-then-idle machine does; the tracker's first snapshot
#    is the replay's start state;
# 2. replays it with `fraglab replay --json`, REPLAYS times (the output must
#    be the same every time; timings aside);
# 3. prints the trace's time span, each replay's wall and CPU time (wall time
#    on a shared machine also counts other processes' turns; CPU time is the
#    replay's own cost) and ratios, against the target of 100x: the first
#    run's and the median's.
#
# usage: sudo bench/replay_ratio.sh [path/to/fraglab]
#   env: DURATION (seconds of workload, default 10), BURST_MIB (per burst, default 256),
#        REPLAYS (default 5), TRACE (replay this existing trace instead of recording one)
# Needs root (BPF); prints the reason and exits 0 without it (a skip).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fraglab=${1:-$here/../build/rel/cli/fraglab}
duration=${DURATION:-10}
burst_mib=${BURST_MIB:-256}
replays=${REPLAYS:-5}

if [ -z "${TRACE:-}" ] && [ "$(id -u)" -ne 0 ]; then
  echo "replay_ratio: skipped: needs root to load the tracker's BPF programs" >&2
  exit 0
fi
if [ ! -x "$fraglab" ]; then
  echo "replay_ratio: $fraglab is not an executable fraglab binary" >&2
  exit 1
fi
dir=$(mktemp -d /tmp/fraglab-replay-ratio.XXXXXX)
trap 'rm -rf "$dir"' EXIT
trace=${TRACE:-$dir/kernel.trace}

# The workload: bursts of pipe traffic (page allocations and frees on both
# CPUs), half a second apart.
workload="end=\$((\$(date +%s) + $duration)); while [ \$(date +%s) -lt \$end ]; do \
  head -c ${burst_mib}M /dev/zero | cat > /dev/null; sleep 0.5; done"

if [ -z "${TRACE:-}" ]; then
  if ! mount | grep -q ' type tracefs '; then
    mount -t tracefs nodev /sys/kernel/tracing
  fi
  "$fraglab" trace --all-events -o "$trace" -- sh -c "$workload" > "$dir/trace.out" 2>&1 || {
    echo "replay_ratio: fraglab trace failed:" >&2
    cat "$dir/trace.out" >&2
    exit 1
  }
fi
for i in $(seq "$replays"); do
  "$fraglab" replay --json "$trace" > "$dir/replay.$i.json"
done

runs=()
for i in $(seq "$replays"); do runs+=("$dir/replay.$i.json"); done
python3 - "$trace" "${runs[@]}" <<'PY'
import json, os, statistics, sys
runs = [json.load(open(p)) for p in sys.argv[2:]]
timing = ("replay_seconds", "replay_cpu_seconds", "speedup", "speedup_cpu")
same = all({k: v for k, v in r.items() if k not in timing} ==
           {k: v for k, v in runs[0].items() if k not in timing} for r in runs)
r = runs[0]
span = r["trace_span_ns"] / 1e9
events = r["allocs_replayed"] + r["frees_replayed"]
print(f"trace: {r['records']} records ({os.path.getsize(sys.argv[1]) / 1e6:.1f} MB), "
      f"{r['allocs_replayed']} allocations and {r['frees_replayed']} frees replayed, span {span:.3f} s")
for i, x in enumerate(runs, 1):
    wall, cpu = x["replay_seconds"], x["replay_cpu_seconds"]
    print(f"replay {i}: {wall:.3f} s wall, {cpu:.3f} s CPU ({events / cpu / 1e6:.2f} M alloc+free/s of CPU): "
          f"{span / wall:.0f}x by wall time, {span / cpu:.0f}x by CPU time")
wall = statistics.median(x["replay_seconds"] for x in runs)
cpu = statistics.median(x["replay_cpu_seconds"] for x in runs)
first = span / r["replay_cpu_seconds"]
print(f"ratio: first run {first:.0f}x by CPU time; median of {len(runs)}: {span / wall:.0f}x by wall time, "
      f"{span / cpu:.0f}x by CPU time (target >= 100x: {'met' if span / cpu >= 100 else 'NOT met'} by CPU time)")
print(f"fallbacks: kernel {r['kernel_extfrag_events']}, model {r['sim_extfrag_events']}; "
      f"first divergence at record {r['first_divergence']['record_index'] if r['first_divergence'] else '-'}; "
      f"output {'the same in every run' if same else 'DIFFERS between runs'}")
sys.exit(0 if same else 1)
PY
