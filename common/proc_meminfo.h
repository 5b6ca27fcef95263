// /proc/meminfo: "Name:   value kB" (or a plain count) per line.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fraglab::procfs {

struct MemInfo {
  // Name (without ':') -> value as printed: kB for lines ending in "kB",
  // plain counts for the others (HugePages_Total, ...).
  std::map<std::string, uint64_t> values;
  std::optional<uint64_t> Get(const std::string& name) const;
};

// Parses /proc/meminfo text.
[[nodiscard]] absl::StatusOr<MemInfo> ParseMemInfo(absl::string_view text,
                                                   absl::string_view source = "/proc/meminfo");
// Reads and parses <root>/proc/meminfo.
[[nodiscard]] absl::StatusOr<MemInfo> ReadMemInfo(const std::string& root = "/");

}  // namespace fraglab::procfs
