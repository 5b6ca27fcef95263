#include "common/proc_meminfo.h"

#include "absl/strings/str_cat.h"
#include "common/proc_file.h"
#include "common/status.h"

namespace fraglab::procfs {

std::optional<uint64_t> MemInfo::Get(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<MemInfo> ParseMemInfo(absl::string_view text, absl::string_view source) {
  MemInfo out;
  for (const TextLine& line : SplitLines(text)) {
    const auto& w = line.words;
    if (w.empty()) continue;
    const bool kb = w.size() == 3 && w[2] == "kB";
    if ((w.size() != 2 && !kb) || w[0].size() < 2 || w[0].back() != ':') {
      return LineError(source, line.number, absl::StrCat("expected 'Name: value [kB]', got '", line.text, "'"));
    }
    absl::string_view name = w[0].substr(0, w[0].size() - 1);
    ASSIGN_OR_RETURN(uint64_t v, ParseU64Word(w[1], source, line.number, name));
    if (!out.values.emplace(std::string(name), v).second) {
      return LineError(source, line.number, absl::StrCat("'", name, "' appears twice"));
    }
  }
  if (out.values.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no entries"));
  return out;
}

absl::StatusOr<MemInfo> ReadMemInfo(const std::string& root) {
  const std::string path = PathUnderRoot(root, "/proc/meminfo");
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  return ParseMemInfo(text, path);
}

}  // namespace fraglab::procfs
