// MachineConfig: everything the page-allocator model needs to build a
// machine (zones and their pfn layout, CPUs, kernel era, per-CPU list and
// watermark settings). Plain data; PageAllocator::Create validates it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sim/types.h"

namespace fraglab::sim {

// Pfns [start, start + count).
struct PfnRange {
  uint64_t start = 0;
  uint64_t count = 0;
};

// One zone of one node. The zone spans [start_pfn, start_pfn + spanned);
// `present` pages exist, `managed` of them are given to the buddy allocator
// at boot (the rest are memblock reservations, allocated forever).
struct ZoneConfig {
  int node = 0;
  ZoneType type = kZoneNormal;
  uint64_t start_pfn = 0;
  uint64_t spanned = 0;
  uint64_t present = 0;  // 0 = spanned
  uint64_t managed = 0;  // 0 = present
  // Where the absent and reserved pages are. Empty = defaults: the
  // spanned - present absent pages are the top of the zone (like the PCI
  // hole below 4 GiB), the present - managed reserved pages the lowest
  // present pfns (like early boot allocations). When given, the ranges must
  // lie inside the zone, not overlap and add up to spanned - present and
  // present - managed.
  std::vector<PfnRange> holes;
  std::vector<PfnRange> reserved;
};

struct MachineConfig {
  // Zones, any order; at most one zone per (node, type), no two overlap.
  std::vector<ZoneConfig> zones;
  int nodes = 1;
  int cpus = 1;
  // Node of each CPU; empty = CPUs spread over nodes in blocks (cpu * nodes / cpus).
  std::vector<int> cpu_node;

  Era era = Era::kClaim;
  bool defrag_mode = false;  // vm.defrag_mode (meaningful for kClaim only, 6.15+)
  bool with_cma = false;     // kernel numbering with MIGRATE_CMA (ISOLATE = 5)
  bool thp = true;           // CONFIG_TRANSPARENT_HUGEPAGE: order-9 pcp lists, min_free_kbytes raise

  // Per-CPU lists (§4). pcp = false frees and allocates straight from the
  // buddy lists: faster and simpler, but less faithful (see docs/simulator.md).
  bool pcp = true;
  PcpTuning pcp_tuning = PcpTuning::kAuto;
  // Two THP pcp lists (movable / non-movable), as 6.10+ and 6.1.y/6.6.y
  // stable; false = one shared THP list (older stable kernels).
  bool pcp_thp_split = true;

  // Sysctls. min_free_kbytes < 0 = the kernel's boot-time default (with the
  // THP raise when `thp`), computed from the zones' managed pages.
  int64_t min_free_kbytes = -1;
  int64_t watermark_scale_factor = 10;
  int64_t watermark_boost_factor = 15000;
  int64_t percpu_pagelist_high_fraction = 0;

  // Run CheckInvariants() after every public operation and abort on a
  // violation (O(pages) per operation: for tests and debugging only).
  bool check_invariants_every_op = false;

  // Returns OK or InvalidArgument naming the first bad field.
  [[nodiscard]] absl::Status Validate() const;

  // The node of `cpu`.
  int NodeOfCpu(int cpu) const;
};

// A one-zone machine for tests and benchmarks: one Normal zone of `pages`
// pages starting at `start_pfn`, all managed.
MachineConfig SingleZoneMachine(uint64_t pages, uint64_t start_pfn = 0, int cpus = 1);

// The usual x86-64 layout for `bytes` of RAM on one node: DMA [1, 4096),
// DMA32 up to pfn 0x100000 (or less), Normal above. No holes.
MachineConfig StandardMachine(uint64_t bytes, int cpus = 1);

// The kernel's boot default of vm.min_free_kbytes (§5.1): clamp(isqrt(16 *
// lowmem_kB), 128, 262144), raised by khugepaged's recommendation when
// `config.thp` (capped at 5 % of lowmem).
int64_t DefaultMinFreeKbytes(const MachineConfig& config);

}  // namespace fraglab::sim
