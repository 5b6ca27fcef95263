#!/bin/bash
# trace_overhead.sh - overhead of the eBPF tracker on a page-fault-heavy load,
# measured in one run and printed as ratios to the untraced time.
#
# Conditions, interleaved round by round (the order rotates each round so
# slow drift of a noisy VM does not favour one condition):
#   untraced     the workload alone
#   default      under `fraglab trace` (full low-rate events, in-kernel alloc/free aggregates)
#   all-events   under `fraglab trace --all-events` (every page alloc/free in the ring)
#   bpftrace     under a bpftrace script counting the same tracepoints
# Each time is the workload's own loop time (bench/trace_overhead_workload.c),
# so tracer start-up and shutdown are excluded. The primary measure is the
# loop's CPU time (user + system): the BPF programs run in the faulting task,
# so their cost lands there, while time spent waiting for a CPU on a shared
# machine does not. Wall time is reported too. Reports the median per
# condition, the ratios, the drops fraglab recorded, and the issue's targets.
#
# usage: sudo bench/trace_overhead.sh [path/to/fraglab]
#   env: ROUNDS (default 5), SIZE_MIB (default 64), LOOPS (default 16)
# Needs root; installs bpftrace from Debian if it is missing (benchmark only).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fraglab=${1:-$here/../build/cli/fraglab}
rounds=${ROUNDS:-5}
size_mib=${SIZE_MIB:-64}
loops=${LOOPS:-16}

if [ "$(id -u)" -ne 0 ]; then
  echo "trace_overhead: needs root (BPF)" >&2
  exit 1
fi
if [ ! -x "$fraglab" ]; then
  echo "trace_overhead: fraglab binary not found at $fraglab (pass its path)" >&2
  exit 1
fi
if ! command -v bpftrace >/dev/null 2>&1; then
  echo "trace_overhead: installing bpftrace (for the comparison only)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y bpftrace >/dev/null
fi
cc=${CC:-cc}

work=$(mktemp -d /tmp/fraglab_trace_overhead.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$cc" -O2 -o "$work/workload" "$here/trace_overhead_workload.c"
workload=("$work/workload" "$size_mib" "$loops")

# The tracepoints fraglab attaches on this kernel, each counted in its own map.
tracefs=/sys/kernel/tracing
[ -d $tracefs/events ] || tracefs=/sys/kernel/debug/tracing
probes=(kmem:mm_page_alloc kmem:mm_page_free kmem:mm_page_alloc_extfrag
        kmem:mm_page_alloc_zone_locked kmem:mm_page_pcpu_drain
        migrate:mm_migrate_pages
        vmscan:mm_vmscan_direct_reclaim_begin vmscan:mm_vmscan_direct_reclaim_end
        vmscan:mm_vmscan_kswapd_wake vmscan:mm_vmscan_kswapd_sleep vmscan:mm_vmscan_wakeup_kswapd
        oom:mark_victim huge_memory:mm_collapse_huge_page)
for d in "$tracefs"/events/compaction/mm_compaction_*; do
  probes+=("compaction:$(basename "$d")")
done
script='BEGIN { printf("ready\n"); }'
for p in "${probes[@]}"; do
  present=$tracefs/events/${p%%:*}/${p#*:}
  [ -d "$present" ] || continue
  script+=$'\n'"tracepoint:$p { @${p#*:} = count(); }"
done

wall_of() { sed -n 's/^workload_seconds=//p' "$1" | tail -n1; }
cpu_of() { sed -n 's/^workload_cpu_seconds=//p' "$1" | tail -n1; }
drops_of() { sed -n 's/^Drops: \([0-9]*\) events lost.*/\1/p' "$1" | tail -n1; }

# Each run prints "<wall> <cpu> <drops>".
run_untraced() { "${workload[@]}" >"$work/out"; echo "$(wall_of "$work/out") $(cpu_of "$work/out") -"; }
run_fraglab() {  # $@: extra fraglab trace flags
  "$fraglab" trace -o "$work/t.trace" --no-snapshots "$@" -- "${workload[@]}" >"$work/out" 2>"$work/err" ||
    { echo "fraglab trace failed: $(cat "$work/err")" >&2; exit 1; }
  echo "$(wall_of "$work/out") $(cpu_of "$work/out") $(drops_of "$work/out")"
}
run_bpftrace() {
  bpftrace -e "$script" >"$work/bt.out" 2>&1 &
  local bt=$!
  # bpftrace compiles its programs with LLVM first: on a busy machine that
  # takes a while.
  for _ in $(seq 1 1200); do
    grep -q '^ready' "$work/bt.out" 2>/dev/null && break
    kill -0 $bt 2>/dev/null || break
    sleep 0.1
  done
  grep -q '^ready' "$work/bt.out" || { echo "bpftrace did not start: $(cat "$work/bt.out")" >&2; kill $bt 2>/dev/null; exit 1; }
  "${workload[@]}" >"$work/out"
  kill -INT $bt
  wait $bt || true
  echo "$(wall_of "$work/out") $(cpu_of "$work/out") -"
}

declare -A walls cpus drops
conditions=(untraced default all-events bpftrace)
for ((r = 0; r < rounds; r++)); do
  for ((i = 0; i < ${#conditions[@]}; i++)); do
    c=${conditions[$(((i + r) % ${#conditions[@]}))]}
    case $c in
      untraced) read -r w t d < <(run_untraced) ;;
      default) read -r w t d < <(run_fraglab) ;;
      all-events) read -r w t d < <(run_fraglab --all-events) ;;
      bpftrace) read -r w t d < <(run_bpftrace) ;;
    esac
    walls[$c]+="$w "
    cpus[$c]+="$t "
    drops[$c]+="$d "
    printf 'round %d %-10s cpu %8.3f s  wall %8.3f s  drops %s\n' "$r" "$c" "$t" "$w" "$d" >&2
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
base=$(echo "${cpus[untraced]}" | median)
wbase=$(echo "${walls[untraced]}" | median)
echo "trace_overhead: ${size_mib} MiB x ${loops} loops of map/touch/unmap (4 KiB faults), $rounds rounds, medians"
printf '%-12s %9s %9s %9s %9s  %s\n' condition cpu_s cpu_ratio wall_s wall_ratio drops
declare -A ratio
for c in "${conditions[@]}"; do
  m=$(echo "${cpus[$c]}" | median)
  wm=$(echo "${walls[$c]}" | median)
  ratio[$c]=$(awk -v m="$m" -v b="$base" 'BEGIN {printf "%.3f", m / b}')
  wratio=$(awk -v m="$wm" -v b="$wbase" 'BEGIN {printf "%.3f", m / b}')
  printf '%-12s %9.3f %8sx %9.3f %8sx  %s\n' "$c" "$m" "${ratio[$c]}" "$wm" "$wratio" "${drops[$c]}"
done
check() {  # $1 description, $2 awk condition
  if awk "BEGIN {exit !($2)}"; then echo "  PASS $1"; else echo "  FAIL $1"; fi
}
echo "targets (CPU-time ratios):"
check "default <= 1.10x untraced (${ratio[default]}x)" "${ratio[default]} <= 1.10"
check "default below bpftrace (${ratio[default]}x < ${ratio[bpftrace]}x)" "${ratio[default]} < ${ratio[bpftrace]}"
check "all-events <= 1.5x untraced (${ratio[all-events]}x)" "${ratio[all-events]} <= 1.5"
total_drops=$(echo "${drops[default]}" | tr ' ' '\n' | grep -v '^$' | awk '{s+=$1} END {print s+0}')
check "no drops at the default ring size, default level ($total_drops)" "$total_drops == 0"
total_drops_all=$(echo "${drops[all-events]}" | tr ' ' '\n' | grep -v '^$' | awk '{s+=$1} END {print s+0}')
echo "  info: drops with --all-events at its default ring size: $total_drops_all"
