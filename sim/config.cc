#include "sim/config.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"

namespace fraglab::sim {
namespace {

uint64_t ISqrt(uint64_t x) {
  uint64_t r = static_cast<uint64_t>(std::sqrt(static_cast<double>(x)));
  while (r * r > x) --r;
  while ((r + 1) * (r + 1) <= x) ++r;
  return r;
}

constexpr uint64_t kDmaEndPfn = 4096;
constexpr uint64_t kDma32EndPfn = 0x100000;

}  // namespace

absl::Status MachineConfig::Validate() const {
  if (zones.empty()) return absl::InvalidArgumentError("machine: no zones");
  if (nodes < 1 || nodes > 64) return absl::InvalidArgumentError(absl::StrFormat("machine: nodes %d outside 1..64", nodes));
  if (cpus < 1 || cpus > 1024) return absl::InvalidArgumentError(absl::StrFormat("machine: cpus %d outside 1..1024", cpus));
  if (!cpu_node.empty()) {
    if (static_cast<int>(cpu_node.size()) != cpus)
      return absl::InvalidArgumentError(absl::StrFormat("machine: cpu_node has %d entries for %d cpus", cpu_node.size(), cpus));
    for (size_t c = 0; c < cpu_node.size(); ++c)
      if (cpu_node[c] < 0 || cpu_node[c] >= nodes)
        return absl::InvalidArgumentError(absl::StrFormat("machine: cpu %d on node %d outside 0..%d", c, cpu_node[c], nodes - 1));
  }
  if (min_free_kbytes > 4194304)
    return absl::InvalidArgumentError(absl::StrFormat("machine: min_free_kbytes %d above 4194304", min_free_kbytes));
  if (watermark_scale_factor < 1 || watermark_scale_factor > 3000)
    return absl::InvalidArgumentError(absl::StrFormat("machine: watermark_scale_factor %d outside 1..3000", watermark_scale_factor));
  if (watermark_boost_factor < 0)
    return absl::InvalidArgumentError("machine: watermark_boost_factor is negative");
  if (percpu_pagelist_high_fraction != 0 && percpu_pagelist_high_fraction < 8)
    return absl::InvalidArgumentError(absl::StrFormat(
        "machine: percpu_pagelist_high_fraction %d must be 0 or >= 8", percpu_pagelist_high_fraction));
  if (defrag_mode && era != Era::kClaim)
    return absl::InvalidArgumentError("machine: defrag_mode exists only in the CLAIM era (6.15+)");
  for (size_t k = 0; k < zones.size(); ++k) {
    const ZoneConfig& z = zones[k];
    const char* name = ZoneTypeName(z.type);
    if (z.node < 0 || z.node >= nodes)
      return absl::InvalidArgumentError(absl::StrFormat("zone %d (%s): node %d outside 0..%d", k, name, z.node, nodes - 1));
    if (z.type > kZoneMovable) return absl::InvalidArgumentError(absl::StrFormat("zone %d: bad zone type", k));
    if (z.spanned == 0) return absl::InvalidArgumentError(absl::StrFormat("zone %d (%s): spanned is 0", k, name));
    uint64_t present = z.present ? z.present : z.spanned;
    uint64_t managed = z.managed ? z.managed : present;
    if (present > z.spanned || managed > present)
      return absl::InvalidArgumentError(absl::StrFormat(
          "zone %d (%s): need managed (%d) <= present (%d) <= spanned (%d)", k, name, managed, present, z.spanned));
    uint64_t end = z.start_pfn + z.spanned;
    if (z.type == kZoneDma && end > kDmaEndPfn)
      return absl::InvalidArgumentError(absl::StrFormat("zone %d (DMA): ends at pfn %#x, above the DMA limit %#x", k, end, kDmaEndPfn));
    if (z.type == kZoneDma32 && end > kDma32EndPfn)
      return absl::InvalidArgumentError(absl::StrFormat("zone %d (DMA32): ends at pfn %#x, above the 4 GiB limit %#x", k, end, kDma32EndPfn));
    for (size_t j = 0; j < k; ++j) {
      const ZoneConfig& o = zones[j];
      if (o.node == z.node && o.type == z.type)
        return absl::InvalidArgumentError(absl::StrFormat("zones %d and %d: both %s on node %d", j, k, name, z.node));
      if (z.start_pfn < o.start_pfn + o.spanned && o.start_pfn < end)
        return absl::InvalidArgumentError(absl::StrFormat("zones %d and %d overlap", j, k));
    }
    auto check_ranges = [&](const std::vector<PfnRange>& rs, uint64_t want, const char* what) -> absl::Status {
      if (rs.empty()) return absl::OkStatus();
      uint64_t sum = 0;
      for (const auto& r : rs) {
        if (r.start < z.start_pfn || r.start + r.count > end)
          return absl::InvalidArgumentError(absl::StrFormat("zone %d (%s): %s range at pfn %#x outside the zone", k, name, what, r.start));
        sum += r.count;
      }
      if (sum != want)
        return absl::InvalidArgumentError(absl::StrFormat("zone %d (%s): %s ranges add up to %d pages, expected %d", k, name, what, sum, want));
      return absl::OkStatus();
    };
    absl::Status s = check_ranges(z.holes, z.spanned - present, "hole");
    if (!s.ok()) return s;
    s = check_ranges(z.reserved, present - managed, "reserved");
    if (!s.ok()) return s;
    // Holes and reserved ranges must not overlap each other.
    std::vector<PfnRange> all = z.holes;
    all.insert(all.end(), z.reserved.begin(), z.reserved.end());
    std::sort(all.begin(), all.end(), [](const PfnRange& a, const PfnRange& b) { return a.start < b.start; });
    for (size_t i = 1; i < all.size(); ++i)
      if (all[i].start < all[i - 1].start + all[i - 1].count)
        return absl::InvalidArgumentError(absl::StrFormat("zone %d (%s): hole/reserved ranges overlap at pfn %#x", k, name, all[i].start));
    if (!z.holes.empty() && z.reserved.empty() && managed < present) {
      // Default reserved placement works around explicit holes; fine.
    }
  }
  return absl::OkStatus();
}

int MachineConfig::NodeOfCpu(int cpu) const {
  if (!cpu_node.empty()) return cpu_node[cpu];
  return static_cast<int>(static_cast<int64_t>(cpu) * nodes / cpus);
}

MachineConfig SingleZoneMachine(uint64_t pages, uint64_t start_pfn, int cpus) {
  MachineConfig c;
  c.cpus = cpus;
  ZoneConfig z;
  z.type = kZoneNormal;
  z.start_pfn = start_pfn;
  z.spanned = pages;
  c.zones.push_back(z);
  return c;
}

MachineConfig StandardMachine(uint64_t bytes, int cpus) {
  MachineConfig c;
  c.cpus = cpus;
  uint64_t end = bytes >> 12;
  ZoneConfig dma;
  dma.type = kZoneDma;
  dma.start_pfn = 1;  // pfn 0 is never given to the kernel on x86
  dma.spanned = std::min(end, kDmaEndPfn) - 1;
  c.zones.push_back(dma);
  if (end > kDmaEndPfn) {
    ZoneConfig d32;
    d32.type = kZoneDma32;
    d32.start_pfn = kDmaEndPfn;
    d32.spanned = std::min(end, kDma32EndPfn) - kDmaEndPfn;
    c.zones.push_back(d32);
  }
  if (end > kDma32EndPfn) {
    ZoneConfig n;
    n.type = kZoneNormal;
    n.start_pfn = kDma32EndPfn;
    n.spanned = end - kDma32EndPfn;
    c.zones.push_back(n);
  }
  return c;
}

int64_t DefaultMinFreeKbytes(const MachineConfig& config) {
  // calculate_min_free_kbytes over lowmem (zones up to Normal).
  uint64_t lowmem_pages = 0;
  int populated = 0;
  for (const auto& z : config.zones) {
    if (z.type == kZoneMovable) continue;
    uint64_t present = z.present ? z.present : z.spanned;
    uint64_t managed = z.managed ? z.managed : present;
    lowmem_pages += managed;
    if (managed > 0) ++populated;
  }
  int64_t kb = static_cast<int64_t>(ISqrt(lowmem_pages * 4 * 16));
  kb = std::clamp<int64_t>(kb, 128, 262144);
  if (config.thp) {
    // set_recommended_min_free_kbytes: two free pageblocks per zone plus
    // room for MIGRATE_PCPTYPES^2 fallback blocks, at most 5 % of lowmem.
    uint64_t rec = 512ull * populated * 2 + 512ull * populated * 3 * 3;
    rec = std::min<uint64_t>(rec, lowmem_pages / 20);
    int64_t rec_kb = static_cast<int64_t>(rec * 4);
    if (rec_kb > kb) kb = rec_kb;
  }
  return kb;
}

}  // namespace fraglab::sim
