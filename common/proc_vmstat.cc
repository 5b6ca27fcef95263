#include "common/proc_vmstat.h"

#include "absl/strings/str_cat.h"
#include "common/proc_file.h"
#include "common/status.h"

namespace fraglab::procfs {

std::optional<uint64_t> VmStat::Get(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<VmStat> ParseVmStat(absl::string_view text, absl::string_view source) {
  VmStat out;
  for (const TextLine& line : SplitLines(text)) {
    if (line.words.empty()) continue;
    if (line.words.size() != 2) {
      return LineError(source, line.number, absl::StrCat("expected 'name value', got '", line.text, "'"));
    }
    ASSIGN_OR_RETURN(uint64_t v, ParseU64Word(line.words[1], source, line.number, line.words[0]));
    if (!out.values.emplace(std::string(line.words[0]), v).second) {
      return LineError(source, line.number, absl::StrCat("'", line.words[0], "' appears twice"));
    }
  }
  if (out.values.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no counters"));
  return out;
}

absl::StatusOr<VmStat> ReadVmStat(const std::string& root) {
  const std::string path = PathUnderRoot(root, "/proc/vmstat");
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  return ParseVmStat(text, path);
}

}  // namespace fraglab::procfs
