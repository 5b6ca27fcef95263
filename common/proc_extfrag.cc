#include "common/proc_extfrag.h"

#include "absl/strings/str_cat.h"
#include "common/proc_file.h"
#include "common/status.h"

namespace fraglab::procfs {

const ExtfragZone* ExtfragTable::Find(int nid, absl::string_view zone) const {
  for (const ExtfragZone& z : zones) {
    if (z.nid == nid && z.zone == zone) return &z;
  }
  return nullptr;
}

absl::StatusOr<ExtfragTable> ParseExtfragTable(absl::string_view text, absl::string_view source) {
  ExtfragTable out;
  for (const TextLine& line : SplitLines(text)) {
    const auto& w = line.words;
    if (w.empty()) continue;
    if (w.size() < 5 || w[0] != "Node" || w[2] != "zone") {
      return LineError(source, line.number, absl::StrCat("expected 'Node N, zone NAME values...', got '", line.text, "'"));
    }
    ExtfragZone z;
    ASSIGN_OR_RETURN(uint64_t nid, ParseU64Word(StripComma(w[1]), source, line.number, "node id"));
    z.nid = static_cast<int>(nid);
    z.zone = std::string(w[3]);
    for (size_t i = 4; i < w.size(); ++i) {
      const absl::string_view word = w[i];
      const size_t dot = word.find('.');
      const std::string what = absl::StrCat("order ", i - 4, " value");
      if (dot == absl::string_view::npos) {
        return LineError(source, line.number, absl::StrCat(what, ": expected 'I.FFF', got '", word, "'"));
      }
      ASSIGN_OR_RETURN(int64_t ip, ParseI64Word(word.substr(0, dot), source, line.number, what));
      ASSIGN_OR_RETURN(int64_t fp, ParseI64Word(word.substr(dot + 1), source, line.number, what));
      if (fp <= -1000 || fp >= 1000 || (ip != 0 && fp != 0 && (ip < 0) != (fp < 0))) {
        return LineError(source, line.number, absl::StrCat(what, ": '", word, "' is not a kernel-printed index"));
      }
      z.index.push_back(static_cast<int>(ip * 1000 + fp));
      z.text.emplace_back(word);
    }
    if (!out.zones.empty() && z.index.size() != out.zones.front().index.size()) {
      return LineError(source, line.number, "number of orders differs from the first zone");
    }
    out.zones.push_back(std::move(z));
  }
  if (out.zones.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no zones"));
  return out;
}

absl::StatusOr<ExtfragTable> ReadExtfragTable(const std::string& root, absl::string_view name) {
  const std::string path = PathUnderRoot(root, absl::StrCat("/sys/kernel/debug/extfrag/", name));
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  return ParseExtfragTable(text, path);
}

}  // namespace fraglab::procfs
