// /proc/buddyinfo: per populated zone, the number of free buddy blocks of
// each order summed over every free list (all migratetypes, including
// HighAtomic, CMA and Isolate); pages on per-CPU lists are not included.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fraglab::procfs {

struct BuddyZone {
  int nid = 0;
  std::string zone;               // kernel zone name: "DMA", "DMA32", "Normal", ...
  std::vector<uint64_t> nr_free;  // index = order; same length for every zone
};

struct BuddyInfo {
  std::vector<BuddyZone> zones;   // file order (node, then zone index)
  // Number of orders (columns); 11 on x86-64, other counts on other configs.
  size_t num_orders() const { return zones.empty() ? 0 : zones.front().nr_free.size(); }
  // The zone (nid, name) or nullptr.
  const BuddyZone* Find(int nid, absl::string_view zone) const;
};

// Parses the text of /proc/buddyinfo ("Node N, zone NAME c0 c1 ..."). Every
// line must have the same number of counts. Errors are InvalidArgument naming
// `source` and the line.
[[nodiscard]] absl::StatusOr<BuddyInfo> ParseBuddyInfo(absl::string_view text,
                                                       absl::string_view source = "/proc/buddyinfo");

// Reads and parses <root>/proc/buddyinfo.
[[nodiscard]] absl::StatusOr<BuddyInfo> ReadBuddyInfo(const std::string& root = "/");

}  // namespace fraglab::procfs
