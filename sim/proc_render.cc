#include "sim/proc_render.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_format.h"

namespace fraglab::sim {
namespace {

// Zones of `node` with present pages, lowest zone type first (walk_zones_in_node).
std::vector<int> PopulatedZones(const PageAllocator& a, int node) {
  std::vector<int> out;
  for (int t = 0; t < kNumZoneTypes; ++t) {
    int z = a.FindZone(node, static_cast<ZoneType>(t));
    if (z >= 0 && a.zone_stats(z).present > 0) out.push_back(z);
  }
  return out;
}

}  // namespace

std::string RenderBuddyinfo(const PageAllocator& a) {
  std::string out;
  for (int node = 0; node < a.config().nodes; ++node) {
    for (int z : PopulatedZones(a, node)) {
      ZoneStats s = a.zone_stats(z);
      absl::StrAppendFormat(&out, "Node %d, zone %8s ", node, ZoneTypeName(s.type));
      for (int o = 0; o < kNumOrders; ++o) absl::StrAppendFormat(&out, "%6d ", s.nr_free[o]);
      out += '\n';
    }
  }
  return out;
}

std::string RenderPagetypeinfo(const PageAllocator& a) {
  std::string out;
  const MigratetypeNumbering& num = a.numbering();
  for (int node = 0; node < a.config().nodes; ++node) {
    std::vector<int> zones = PopulatedZones(a, node);
    if (zones.empty()) continue;  // memoryless node prints nothing
    absl::StrAppendFormat(&out, "Page block order: %d\n", kPageblockOrder);
    absl::StrAppendFormat(&out, "Pages per block:  %d\n", kPageblockPages);
    out += '\n';
    absl::StrAppendFormat(&out, "%-43s ", "Free pages count per migrate type at order");
    for (int o = 0; o < kNumOrders; ++o) absl::StrAppendFormat(&out, "%6d ", o);
    out += '\n';
    for (int z : zones) {
      const char* zname = ZoneTypeName(a.zone_stats(z).type);
      for (int n = 0; n < num.count(); ++n) {
        absl::StrAppendFormat(&out, "Node %4d, zone %8s, type %12s ", node, zname, num.Name(n));
        MigrateType t = num.FromNumber(n);
        for (int o = 0; o < kNumOrders; ++o) {
          uint64_t c = a.FreeCount(z, o, t);
          bool overflow = c >= 100000;
          absl::StrAppendFormat(&out, "%s%6d ", overflow ? ">" : "", overflow ? 100000 : c);
        }
        out += '\n';
      }
    }
    absl::StrAppendFormat(&out, "\n%-23s", "Number of blocks type ");
    for (int n = 0; n < num.count(); ++n) absl::StrAppendFormat(&out, "%12s ", num.Name(n));
    out += '\n';
    for (int z : zones) {
      std::vector<uint64_t> counts = a.PageblockCounts(z);
      absl::StrAppendFormat(&out, "Node %d, zone %8s ", node, ZoneTypeName(a.zone_stats(z).type));
      for (int n = 0; n < num.count(); ++n) absl::StrAppendFormat(&out, "%12d ", counts[n]);
      out += '\n';
    }
  }
  return out;
}

}  // namespace fraglab::sim
