// libFuzzer target for the scenario parser and printer. For any input the
// parser must not crash and must either fail with InvalidArgument whose
// every line starts with "fuzz.toml:<line>:<col>: " (or names the error
// count), or succeed with a scenario that prints to TOML which parses back
// to an equal model and prints identically (the printer's contract).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/check.h"
#include "common/scenario.h"
#include "common/scenario_parser.h"
#include "common/scenario_printer.h"

namespace {

bool HasPositionPrefix(absl::string_view line) {
  // "fuzz.toml:<digits>:<digits>: " or the "N more errors" trailer.
  if (!absl::ConsumePrefix(&line, "fuzz.toml:")) return false;
  if (absl::StrContains(line, "more errors")) return true;
  for (int part = 0; part < 2; ++part) {
    size_t digits = 0;
    while (digits < line.size() && line[digits] >= '0' && line[digits] <= '9') ++digits;
    if (digits == 0 || digits >= line.size() || line[digits] != ':') return false;
    line.remove_prefix(digits + 1);
  }
  return absl::StartsWith(line, " ");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fraglab::scenario;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Scenario> s = ParseScenarioString(text, "fuzz.toml");
  if (!s.ok()) {
    FRAGLAB_CHECK(s.status().code() == absl::StatusCode::kInvalidArgument);
    for (absl::string_view line : absl::StrSplit(s.status().message(), '\n')) {
      FRAGLAB_CHECK_MSG(HasPositionPrefix(line), "error line without position: %.*s",
                        static_cast<int>(line.size()), line.data());
    }
    return 0;
  }
  const std::string printed = PrintScenario(*s);
  absl::StatusOr<Scenario> back = ParseScenarioString(printed, "printed.toml");
  FRAGLAB_CHECK_MSG(back.ok(), "printed form does not parse: %s\n%s",
                    std::string(back.status().message()).c_str(), printed.c_str());
  FRAGLAB_CHECK_MSG(*back == *s, "printed form parses to a different model:\n%s",
                    printed.c_str());
  FRAGLAB_CHECK(PrintScenario(*back) == printed);
  // Expansion is bounded by the parser; keep the fuzzer fast on big ones.
  const uint64_t count = ExpandedCount(s->phases);
  FRAGLAB_CHECK(count >= 1 && count <= kMaxExpandedPhases);
  if (count <= 10000) FRAGLAB_CHECK(Expand(*s).size() == count);
  return 0;
}
