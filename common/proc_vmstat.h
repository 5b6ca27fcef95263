// /proc/vmstat: "name value" per line, the global vm counters.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fraglab::procfs {

// name -> value; sorted so that any output built from it is deterministic.
struct VmStat {
  std::map<std::string, uint64_t> values;
  std::optional<uint64_t> Get(const std::string& name) const;
};

// Parses /proc/vmstat text. Values are unsigned (the kernel prints them so).
[[nodiscard]] absl::StatusOr<VmStat> ParseVmStat(absl::string_view text,
                                                 absl::string_view source = "/proc/vmstat");
// Reads and parses <root>/proc/vmstat.
[[nodiscard]] absl::StatusOr<VmStat> ReadVmStat(const std::string& root = "/");

}  // namespace fraglab::procfs
