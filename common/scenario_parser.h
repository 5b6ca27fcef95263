// Scenario files (TOML) -> the scenario model (common/scenario.h), with
// validation. Every error names the file, line, column and field and says
// what is allowed, e.g.
//   quick.toml:31:11: field 'phases[3].pattern': unknown value 'evry-nth'
//   (allowed: every-nth, random, stride, whole)
// Unknown keys are errors (typos must not pass silently). The parser keeps
// going after an error in one phase or section and reports up to
// kMaxReportedErrors errors, one per line of the status message.
// docs/scenario-format.md is the user-facing description of the format.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/scenario.h"

namespace fraglab::scenario {

inline constexpr int kMaxReportedErrors = 20;

// Reads and parses the file at `path`. NotFound/PermissionDenied if it cannot
// be read (with the path and errno text), InvalidArgument for bad content.
// The returned scenario's source_file is `path` as given.
[[nodiscard]] absl::StatusOr<Scenario> ParseScenarioFile(const std::string& path);

// Parses `text`; `filename` is only used in messages and as source_file.
[[nodiscard]] absl::StatusOr<Scenario> ParseScenarioString(absl::string_view text,
                                                           absl::string_view filename);

}  // namespace fraglab::scenario
