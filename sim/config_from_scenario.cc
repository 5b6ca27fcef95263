#include "sim/config_from_scenario.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace fraglab::sim {

absl::StatusOr<MachineConfig> MachineConfigFromSpec(const scenario::SimMachineSpec& m) {
  MachineConfig c;
  c.nodes = m.nodes;
  c.cpus = m.cpus;
  switch (m.era) {
    case scenario::Era::kLegacy: c.era = Era::kLegacy; break;
    case scenario::Era::kHygiene: c.era = Era::kHygiene; break;
    case scenario::Era::kClaim: c.era = Era::kClaim; break;
  }
  c.pcp = m.pcp;
  c.pcp_tuning = m.pcp_tuning == scenario::PcpTuning::kStatic ? PcpTuning::kStatic : PcpTuning::kAuto;
  c.with_cma = m.cma;
  c.thp = true;  // CONFIG_TRANSPARENT_HUGEPAGE: the order-9 pcp lists exist whatever thp.enabled says
  c.min_free_kbytes = m.vm.min_free_kbytes;
  c.watermark_scale_factor = m.vm.watermark_scale_factor;
  c.watermark_boost_factor = m.vm.watermark_boost_factor;
  c.defrag_mode = m.vm.defrag_mode != 0;
  c.percpu_pagelist_high_fraction = m.vm.percpu_pagelist_high_fraction;
  for (const scenario::ZoneSpec& z : scenario::ResolvedZones(m)) {
    if (z.end_pfn <= z.start_pfn) {
      return absl::InvalidArgumentError(absl::StrCat("machine.zones: zone ", scenario::ZoneName(z.type), " on node ",
                                                     z.node, " is empty (start_pfn ", z.start_pfn, ", end_pfn ",
                                                     z.end_pfn, ")"));
    }
    ZoneConfig zc;
    zc.node = z.node;
    zc.type = static_cast<ZoneType>(static_cast<int>(z.type));
    zc.start_pfn = z.start_pfn;
    zc.spanned = z.end_pfn - z.start_pfn;
    c.zones.push_back(zc);
  }
  absl::Status s = c.Validate();
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("machine: ", s.message()));
  return c;
}

absl::StatusOr<MachineConfig> MachineConfigFromScenario(const scenario::Scenario& s) {
  absl::StatusOr<MachineConfig> c = MachineConfigFromSpec(s.machine);
  if (!c.ok() && !s.source_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(s.source_file, ": ", c.status().message()));
  }
  return c;
}

}  // namespace fraglab::sim
