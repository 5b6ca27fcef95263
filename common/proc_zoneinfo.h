// /proc/zoneinfo: per zone (populated or not) the free page count,
// watermarks and boost, sizes, lowmem protection, the zone's vmstat counters
// and the per-CPU page list settings; plus each node's "per-node stats".
// Fields that older kernels lack are optional: promo (printed by 6.12, not
// by 6.1), high_min/high_max (printed by 6.18, not by 6.12),
// nr_free_pages_blocks (6.15+); boost and cma are printed by 6.1 and later
// (cma is 0 without CONFIG_CMA).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fraglab::procfs {

// One CPU's per-CPU page list of a zone ("pagesets" / "cpu: N").
struct Pageset {
  int cpu = 0;
  uint64_t count = 0;                      // pages currently on the lists
  uint64_t high = 0;
  uint64_t batch = 0;
  std::optional<uint64_t> high_min;        // printed after 6.12
  std::optional<uint64_t> high_max;        // printed after 6.12
  std::optional<uint64_t> stat_threshold;  // "vm stats threshold"
};

struct ZoneInfoZone {
  int nid = 0;
  std::string zone;
  int zone_idx = 0;                        // position within its node = kernel zone index
  uint64_t free = 0;                       // "pages free"
  std::optional<uint64_t> boost;
  uint64_t min = 0, low = 0, high = 0;
  std::optional<uint64_t> promo;
  uint64_t spanned = 0, present = 0, managed = 0;
  std::optional<uint64_t> cma;
  std::vector<uint64_t> protection;        // lowmem_reserve per class zone
  std::map<std::string, uint64_t> stats;   // nr_free_pages, nr_free_pages_blocks, ...
  std::vector<Pageset> pagesets;           // empty for unpopulated zones
  std::optional<uint64_t> node_unreclaimable;
  std::optional<uint64_t> start_pfn;       // absent for unpopulated zones

  // stats[name] or nullopt.
  std::optional<uint64_t> Stat(const std::string& name) const;
  // Sum of pageset counts: free pages held on per-CPU lists (not in buddyinfo).
  uint64_t PcpPages() const;
};

struct ZoneInfo {
  std::vector<ZoneInfoZone> zones;                          // file order
  std::map<int, std::map<std::string, uint64_t>> node_stats;  // nid -> per-node stats
  const ZoneInfoZone* Find(int nid, absl::string_view zone) const;
};

// Parses the text of /proc/zoneinfo. Unknown "name value" lines are kept in
// `stats` (so new kernel counters do not break parsing); anything else that is
// not understood is an InvalidArgument naming `source` and the line.
[[nodiscard]] absl::StatusOr<ZoneInfo> ParseZoneInfo(absl::string_view text,
                                                     absl::string_view source = "/proc/zoneinfo");

// Reads and parses <root>/proc/zoneinfo.
[[nodiscard]] absl::StatusOr<ZoneInfo> ReadZoneInfo(const std::string& root = "/");

}  // namespace fraglab::procfs
