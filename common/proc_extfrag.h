// debugfs extfrag/unusable_index and extfrag/extfrag_index: per populated
// zone, one value per order printed as index/1000 "." index%1000 (C integer
// division, so small negative fragmentation indices print as " 0.-500").
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fraglab::procfs {

struct ExtfragZone {
  int nid = 0;
  std::string zone;
  std::vector<int> index;          // per order, in thousandths (the kernel's integer)
  std::vector<std::string> text;   // per order, the word as printed (for string-exact checks)
};

struct ExtfragTable {
  std::vector<ExtfragZone> zones;
  const ExtfragZone* Find(int nid, absl::string_view zone) const;
};

// Parses either file ("Node N, zone NAME v0 v1 ..."). A value "I.F" is
// decoded as I*1000 + F with F's own sign, which inverts the kernel's
// "%d.%03d" of (index/1000, index%1000).
[[nodiscard]] absl::StatusOr<ExtfragTable> ParseExtfragTable(absl::string_view text, absl::string_view source);

// Reads <root>/sys/kernel/debug/extfrag/<name> where name is "unusable_index"
// or "extfrag_index". NotFound when debugfs is not mounted there.
[[nodiscard]] absl::StatusOr<ExtfragTable> ReadExtfragTable(const std::string& root, absl::string_view name);

}  // namespace fraglab::procfs
