#include "common/proc_pagetypeinfo.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/proc_file.h"
#include "common/status.h"

namespace fraglab::procfs {

bool PagetypeZone::AnySaturated() const {
  for (const auto& row : saturated) {
    for (uint8_t s : row) {
      if (s) return true;
    }
  }
  return false;
}

int PagetypeInfo::TypeNumber(absl::string_view name) const {
  for (size_t i = 0; i < migratetypes.size(); ++i) {
    if (migratetypes[i] == name) return static_cast<int>(i);
  }
  return -1;
}

const PagetypeZone* PagetypeInfo::Find(int nid, absl::string_view zone) const {
  for (const PagetypeZone& z : zones) {
    if (z.nid == nid && z.zone == zone) return &z;
  }
  return nullptr;
}

namespace {

enum class Section { kHeader, kFree, kBlocks, kMixed, kUnknown };

// "Node N, zone NAME" prefix shared by all tables; returns false if absent.
bool ParseZonePrefix(const TextLine& line, int* nid, std::string* zone, absl::Status* error,
                     absl::string_view source) {
  const auto& w = line.words;
  if (w.size() < 4 || w[0] != "Node" || w[2] != "zone") return false;
  auto n = ParseU64Word(StripComma(w[1]), source, line.number, "node id");
  if (!n.ok()) {
    *error = n.status();
    return true;
  }
  *nid = static_cast<int>(*n);
  *zone = std::string(StripComma(w[3]));
  return true;
}

PagetypeZone* FindMutable(PagetypeInfo& info, int nid, absl::string_view zone) {
  for (PagetypeZone& z : info.zones) {
    if (z.nid == nid && z.zone == zone) return &z;
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<PagetypeInfo> ParsePagetypeInfo(absl::string_view text, absl::string_view source) {
  PagetypeInfo info;
  bool saw_order = false, saw_pages = false, saw_free_header = false;
  Section section = Section::kHeader;
  // Types as listed per zone in the free table, to derive/check numbering.
  std::vector<std::string> free_types;
  bool free_types_complete = false;
  std::vector<std::string> table_types;  // header of the current blocks/mixed table

  for (const TextLine& line : SplitLines(text)) {
    const auto& w = line.words;
    if (w.empty()) continue;
    if (absl::StartsWith(line.text, "Page block order:")) {
      if (w.size() != 4) return LineError(source, line.number, "malformed 'Page block order' line");
      ASSIGN_OR_RETURN(uint64_t v, ParseU64Word(w[3], source, line.number, "page block order"));
      if (v > 20) return LineError(source, line.number, absl::StrCat("page block order ", v, " is not plausible"));
      // The kernel repeats the header for every node with memory.
      if (saw_order && static_cast<int>(v) != info.pageblock_order) {
        return LineError(source, line.number, "page block order differs from an earlier node's");
      }
      info.pageblock_order = static_cast<int>(v);
      saw_order = true;
      continue;
    }
    if (absl::StartsWith(line.text, "Pages per block:")) {
      if (w.size() != 4) return LineError(source, line.number, "malformed 'Pages per block' line");
      ASSIGN_OR_RETURN(uint64_t v, ParseU64Word(w[3], source, line.number, "pages per block"));
      if (saw_pages && v != info.pages_per_block) {
        return LineError(source, line.number, "pages per block differs from an earlier node's");
      }
      info.pages_per_block = v;
      saw_pages = true;
      continue;
    }
    if (absl::StartsWith(line.text, "Free pages count per migrate type at order")) {
      // Words: Free pages count per migrate type at order 0 1 2 ...
      for (size_t i = 8; i < w.size(); ++i) {
        ASSIGN_OR_RETURN(uint64_t order, ParseU64Word(w[i], source, line.number, "order column"));
        if (order != i - 8) {
          return LineError(source, line.number,
                           absl::StrCat("order columns must be 0, 1, ...; column ", i - 8, " is ", order));
        }
      }
      if (saw_free_header && w.size() - 8 != info.num_orders) {
        return LineError(source, line.number, "number of orders differs from an earlier node's");
      }
      info.num_orders = w.size() - 8;
      if (info.num_orders == 0) return LineError(source, line.number, "no order columns");
      saw_free_header = true;
      section = Section::kFree;
      continue;
    }
    if (absl::StartsWith(line.text, "Number of blocks type") ||
        absl::StartsWith(line.text, "Number of mixed blocks")) {
      const bool mixed = absl::StartsWith(line.text, "Number of mixed blocks");
      table_types.clear();
      for (size_t i = 4; i < w.size(); ++i) table_types.emplace_back(w[i]);
      if (table_types.empty()) return LineError(source, line.number, "table header lists no migratetypes");
      if (!mixed) {
        if (!free_types.empty() && table_types != free_types) {
          return LineError(source, line.number,
                           absl::StrCat("block table types (", absl::StrJoin(table_types, " "),
                                        ") differ from the free table's (", absl::StrJoin(free_types, " "), ")"));
        }
        if (!info.migratetypes.empty() && table_types != info.migratetypes) {
          return LineError(source, line.number, "block table types differ from an earlier node's");
        }
        info.migratetypes = table_types;
        section = Section::kBlocks;
      } else {
        if (!info.migratetypes.empty() && table_types != info.migratetypes) {
          return LineError(source, line.number, "mixed-block table types differ from the block table's");
        }
        info.has_mixed_blocks = true;
        section = Section::kMixed;
      }
      continue;
    }

    int nid = 0;
    std::string zone;
    absl::Status prefix_error;
    if (!ParseZonePrefix(line, &nid, &zone, &prefix_error, source)) {
      return LineError(source, line.number, absl::StrCat("unexpected line '", line.text, "'"));
    }
    RETURN_IF_ERROR(prefix_error);

    if (section == Section::kFree) {
      // Node N, zone NAME, type TYPE c0 c1 ...
      if (w.size() < 6 || w[4] != "type") {
        return LineError(source, line.number, "expected 'Node N, zone NAME, type TYPE counts...'");
      }
      const std::string type(w[5]);
      if (w.size() - 6 != info.num_orders) {
        return LineError(source, line.number,
                         absl::StrCat("expected ", info.num_orders, " counts, got ", w.size() - 6));
      }
      PagetypeZone* z = FindMutable(info, nid, zone);
      if (z == nullptr) {
        if (!info.zones.empty()) free_types_complete = true;
        info.zones.push_back(PagetypeZone{});
        z = &info.zones.back();
        z->nid = nid;
        z->zone = zone;
      } else if (&info.zones.back() != z) {
        return LineError(source, line.number, absl::StrCat("zone ", zone, " rows are not contiguous"));
      }
      const size_t type_index = z->free.size();
      if (!free_types_complete) {
        free_types.push_back(type);
      } else if (type_index >= free_types.size() || free_types[type_index] != type) {
        return LineError(source, line.number,
                         absl::StrCat("type '", type, "' out of the order seen for the first zone"));
      }
      std::vector<uint64_t> counts;
      std::vector<uint8_t> sat;
      for (size_t i = 6; i < w.size(); ++i) {
        absl::string_view cell = w[i];
        uint8_t s = 0;
        if (!cell.empty() && cell.front() == '>') {
          cell.remove_prefix(1);
          s = 1;
        }
        ASSIGN_OR_RETURN(uint64_t v, ParseU64Word(cell, source, line.number,
                                                   absl::StrCat("type ", type, " order ", i - 6)));
        counts.push_back(v);
        sat.push_back(s);
      }
      z->free.push_back(std::move(counts));
      z->saturated.push_back(std::move(sat));
      continue;
    }
    if (section == Section::kBlocks || section == Section::kMixed) {
      if (w.size() - 4 != table_types.size()) {
        return LineError(source, line.number,
                         absl::StrCat("expected ", table_types.size(), " counts, got ", w.size() - 4));
      }
      std::vector<uint64_t> counts;
      for (size_t i = 4; i < w.size(); ++i) {
        ASSIGN_OR_RETURN(uint64_t v, ParseU64Word(w[i], source, line.number,
                                                   absl::StrCat("blocks of type ", table_types[i - 4])));
        counts.push_back(v);
      }
      PagetypeZone* z = FindMutable(info, nid, zone);
      if (z == nullptr) {
        return LineError(source, line.number,
                         absl::StrCat("node ", nid, " zone ", zone, " is not in the free table"));
      }
      (section == Section::kBlocks ? z->blocks : z->mixed_blocks) = std::move(counts);
      continue;
    }
    return LineError(source, line.number, "zone line before the 'Free pages count' header");
  }
  if (!saw_order || !saw_pages) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": missing 'Page block order' / 'Pages per block' header"));
  }
  if (!saw_free_header) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": missing 'Free pages count' table"));
  }
  if (info.pages_per_block != (uint64_t{1} << info.pageblock_order)) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": pages per block ", info.pages_per_block,
                                                   " is not 2^", info.pageblock_order));
  }
  if (info.migratetypes.empty()) info.migratetypes = free_types;
  for (const PagetypeZone& z : info.zones) {
    if (z.free.size() != info.migratetypes.size()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": node ", z.nid, " zone ", z.zone, " lists ",
                                                     z.free.size(), " types, expected ",
                                                     info.migratetypes.size()));
    }
  }
  return info;
}

absl::StatusOr<PagetypeInfo> ReadPagetypeInfo(const std::string& root) {
  const std::string path = PathUnderRoot(root, "/proc/pagetypeinfo");
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  return ParsePagetypeInfo(text, path);
}

}  // namespace fraglab::procfs
