#include "common/proc_buddyinfo.h"

#include "absl/strings/str_cat.h"
#include "common/proc_file.h"
#include "common/status.h"

namespace fraglab::procfs {

const BuddyZone* BuddyInfo::Find(int nid, absl::string_view zone) const {
  for (const BuddyZone& z : zones) {
    if (z.nid == nid && z.zone == zone) return &z;
  }
  return nullptr;
}

absl::StatusOr<BuddyInfo> ParseBuddyInfo(absl::string_view text, absl::string_view source) {
  BuddyInfo info;
  for (const TextLine& line : SplitLines(text)) {
    const auto& w = line.words;
    if (w.empty()) continue;
    if (w.size() < 5 || w[0] != "Node" || w[2] != "zone") {
      return LineError(source, line.number,
                       absl::StrCat("expected 'Node N, zone NAME counts...', got '", line.text, "'"));
    }
    BuddyZone zone;
    ASSIGN_OR_RETURN(uint64_t nid, ParseU64Word(StripComma(w[1]), source, line.number, "node id"));
    zone.nid = static_cast<int>(nid);
    zone.zone = std::string(w[3]);
    for (size_t i = 4; i < w.size(); ++i) {
      ASSIGN_OR_RETURN(uint64_t v, ParseU64Word(w[i], source, line.number,
                                                 absl::StrCat("order ", i - 4, " count")));
      zone.nr_free.push_back(v);
    }
    if (zone.nr_free.size() > 64) {
      return LineError(source, line.number, absl::StrCat(zone.nr_free.size(), " orders is not plausible"));
    }
    if (!info.zones.empty() && zone.nr_free.size() != info.zones.front().nr_free.size()) {
      return LineError(source, line.number,
                       absl::StrCat("zone ", zone.zone, " has ", zone.nr_free.size(),
                                    " orders but the first zone has ",
                                    info.zones.front().nr_free.size()));
    }
    if (info.Find(zone.nid, zone.zone) != nullptr) {
      return LineError(source, line.number,
                       absl::StrCat("node ", zone.nid, " zone ", zone.zone, " appears twice"));
    }
    info.zones.push_back(std::move(zone));
  }
  if (info.zones.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no zones"));
  return info;
}

absl::StatusOr<BuddyInfo> ReadBuddyInfo(const std::string& root) {
  const std::string path = PathUnderRoot(root, "/proc/buddyinfo");
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  return ParseBuddyInfo(text, path);
}

}  // namespace fraglab::procfs
