// Probes of high-order availability on the real kernel: grow the hugetlb pool
// by N order-9 pages (how many came, how long it took; then give them back),
// and fault N THPs in a MADV_HUGEPAGE region (how many were THP).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gen/context.h"

namespace fraglab::gen {

struct HugetlbProbeResult {
  uint64_t requested = 0;       // order-9 pages asked for
  uint64_t obtained = 0;        // pool growth actually achieved
  uint64_t duration_ns = 0;     // time of the growing write
  uint64_t buddy_alloc_success = 0;  // htlb_buddy_alloc_success delta (vmstat)
  uint64_t buddy_alloc_fail = 0;     // htlb_buddy_alloc_fail delta
  uint64_t compact_stall = 0;        // compact_stall delta during the probe
  uint64_t given_back = 0;      // pages returned afterwards
  std::vector<std::string> notes;
};

// The 2 MiB hugetlb pool size file.
inline constexpr char kNrHugepages2M[] = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages";

// Grows nr_hugepages (2 MiB) by `pages` and shrinks it back to the value it
// had. The old value is journalled before the change. Needs root and the
// journal; reserves pages * 2 MiB from the ledger while the pool is grown.
[[nodiscard]] absl::StatusOr<HugetlbProbeResult> ProbeHugetlb(uint64_t pages, OpContext& ctx);

struct ThpProbeResult {
  uint64_t requested = 0;        // 2 MiB ranges faulted
  uint64_t obtained = 0;         // of them backed by a THP (smaps AnonHugePages / 2 MiB)
  uint64_t fault_alloc = 0;      // thp_fault_alloc delta
  uint64_t fault_fallback = 0;   // thp_fault_fallback delta
  uint64_t duration_ns = 0;
  std::vector<std::string> notes;
};

// Maps `pages` 2 MiB-aligned ranges with MADV_HUGEPAGE, write-faults the first
// byte of each, counts THPs from smaps, and unmaps.
[[nodiscard]] absl::StatusOr<ThpProbeResult> ProbeThp(uint64_t pages, OpContext& ctx);

}  // namespace fraglab::gen
