// Builds the allocator model's MachineConfig from a scenario's [machine]
// section (common/scenario.h).
#pragma once

#include "absl/status/statusor.h"
#include "common/scenario.h"
#include "sim/config.h"

namespace fraglab::sim {

// Maps the zone layout (ResolvedZones: explicit zones or the default layout),
// nodes, CPUs, era, pcp switches, CMA numbering and the vm.* sysctls. Every
// zone is fully present and managed (the scenario format has no holes).
// InvalidArgument, naming the field, when the result is not a valid machine
// (for example defrag_mode outside the CLAIM era).
[[nodiscard]] absl::StatusOr<MachineConfig> MachineConfigFromScenario(const scenario::Scenario& s);
[[nodiscard]] absl::StatusOr<MachineConfig> MachineConfigFromSpec(const scenario::SimMachineSpec& m);

}  // namespace fraglab::sim
