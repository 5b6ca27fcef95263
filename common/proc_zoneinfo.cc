#include "common/proc_zoneinfo.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/proc_file.h"
#include "common/status.h"

namespace fraglab::procfs {

std::optional<uint64_t> ZoneInfoZone::Stat(const std::string& name) const {
  auto it = stats.find(name);
  if (it == stats.end()) return std::nullopt;
  return it->second;
}

uint64_t ZoneInfoZone::PcpPages() const {
  uint64_t sum = 0;
  for (const Pageset& p : pagesets) sum += p.count;
  return sum;
}

const ZoneInfoZone* ZoneInfo::Find(int nid, absl::string_view zone) const {
  for (const ZoneInfoZone& z : zones) {
    if (z.nid == nid && z.zone == zone) return &z;
  }
  return nullptr;
}

namespace {

enum class Mode { kZone, kNodeStats, kPagesets };

}  // namespace

absl::StatusOr<ZoneInfo> ParseZoneInfo(absl::string_view text, absl::string_view source) {
  ZoneInfo info;
  ZoneInfoZone* zone = nullptr;
  Pageset* pageset = nullptr;
  Mode mode = Mode::kZone;
  bool saw_free = false;

  auto finish_zone = [&](int line) -> absl::Status {
    if (zone != nullptr && !saw_free) {
      return LineError(source, line, absl::StrCat("zone ", zone->zone, " ended without a 'pages free' line"));
    }
    return absl::OkStatus();
  };

  const std::vector<TextLine> lines = SplitLines(text);
  for (const TextLine& line : lines) {
    const auto& w = line.words;
    if (w.empty()) continue;
    auto u64 = [&](absl::string_view word, absl::string_view what) {
      return ParseU64Word(word, source, line.number, what);
    };
    if (w[0] == "Node") {
      if (w.size() != 4 || w[2] != "zone") {
        return LineError(source, line.number, absl::StrCat("expected 'Node N, zone NAME', got '", line.text, "'"));
      }
      RETURN_IF_ERROR(finish_zone(line.number));
      ASSIGN_OR_RETURN(uint64_t nid, u64(StripComma(w[1]), "node id"));
      ZoneInfoZone z;
      z.nid = static_cast<int>(nid);
      z.zone = std::string(w[3]);
      for (const ZoneInfoZone& other : info.zones) {
        if (other.nid == z.nid) ++z.zone_idx;
        if (other.nid == z.nid && other.zone == z.zone) {
          return LineError(source, line.number, absl::StrCat("node ", nid, " zone ", z.zone, " appears twice"));
        }
      }
      info.zones.push_back(std::move(z));
      zone = &info.zones.back();
      pageset = nullptr;
      mode = Mode::kZone;
      saw_free = false;
      continue;
    }
    if (zone == nullptr) return LineError(source, line.number, "line before the first 'Node N, zone NAME'");

    if (w.size() == 2 && w[0] == "per-node" && w[1] == "stats") {
      mode = Mode::kNodeStats;
      continue;
    }
    if (w.size() == 3 && w[0] == "pages" && w[1] == "free") {
      ASSIGN_OR_RETURN(zone->free, u64(w[2], "pages free"));
      saw_free = true;
      mode = Mode::kZone;
      continue;
    }
    if (mode == Mode::kNodeStats) {
      if (w.size() != 2) return LineError(source, line.number, absl::StrCat("expected 'name value', got '", line.text, "'"));
      ASSIGN_OR_RETURN(uint64_t v, u64(w[1], w[0]));
      info.node_stats[zone->nid][std::string(w[0])] = v;
      continue;
    }
    if (w[0] == "protection:") {
      // protection: (0, 3019, 4683, 4683, 4683)
      absl::string_view rest = absl::StripAsciiWhitespace(line.text);
      rest.remove_prefix(std::string_view("protection:").size());
      rest = absl::StripAsciiWhitespace(rest);
      if (!absl::ConsumePrefix(&rest, "(") || !absl::ConsumeSuffix(&rest, ")")) {
        return LineError(source, line.number, "protection: expected '(a, b, ...)'");
      }
      zone->protection.clear();
      for (absl::string_view part : absl::StrSplit(rest, ',')) {
        ASSIGN_OR_RETURN(uint64_t v, u64(absl::StripAsciiWhitespace(part), "protection entry"));
        zone->protection.push_back(v);
      }
      continue;
    }
    if (w.size() == 1 && w[0] == "pagesets") {
      mode = Mode::kPagesets;
      continue;
    }
    if (w.size() == 2 && w[0] == "cpu:") {
      if (mode != Mode::kPagesets) return LineError(source, line.number, "'cpu:' outside 'pagesets'");
      ASSIGN_OR_RETURN(uint64_t cpu, u64(w[1], "cpu"));
      zone->pagesets.push_back(Pageset{});
      pageset = &zone->pagesets.back();
      pageset->cpu = static_cast<int>(cpu);
      continue;
    }
    if (w.size() == 4 && w[0] == "vm" && w[1] == "stats" && w[2] == "threshold:") {
      if (pageset == nullptr) return LineError(source, line.number, "'vm stats threshold' before any 'cpu:'");
      ASSIGN_OR_RETURN(pageset->stat_threshold, u64(w[3], "vm stats threshold"));
      continue;
    }
    if (w.size() != 2) {
      return LineError(source, line.number, absl::StrCat("unexpected line '", line.text, "'"));
    }
    const absl::string_view key = w[0];
    ASSIGN_OR_RETURN(uint64_t v, u64(w[1], key));
    if (mode == Mode::kPagesets && pageset != nullptr) {
      if (key == "count:") { pageset->count = v; continue; }
      if (key == "high:") { pageset->high = v; continue; }
      if (key == "batch:") { pageset->batch = v; continue; }
      if (key == "high_min:") { pageset->high_min = v; continue; }
      if (key == "high_max:") { pageset->high_max = v; continue; }
    }
    if (key == "node_unreclaimable:") { zone->node_unreclaimable = v; continue; }
    if (key == "start_pfn:") { zone->start_pfn = v; continue; }
    if (key == "boost") { zone->boost = v; continue; }
    if (key == "min") { zone->min = v; continue; }
    if (key == "low") { zone->low = v; continue; }
    if (key == "high") { zone->high = v; continue; }
    if (key == "promo") { zone->promo = v; continue; }
    if (key == "spanned") { zone->spanned = v; continue; }
    if (key == "present") { zone->present = v; continue; }
    if (key == "managed") { zone->managed = v; continue; }
    if (key == "cma") { zone->cma = v; continue; }
    if (key.back() == ':') {
      return LineError(source, line.number, absl::StrCat("unexpected field '", key, "'"));
    }
    zone->stats[std::string(key)] = v;
  }
  RETURN_IF_ERROR(finish_zone(static_cast<int>(lines.size())));
  if (info.zones.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no zones"));
  return info;
}

absl::StatusOr<ZoneInfo> ReadZoneInfo(const std::string& root) {
  const std::string path = PathUnderRoot(root, "/proc/zoneinfo");
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  return ParseZoneInfo(text, path);
}

}  // namespace fraglab::procfs
