// Canonical TOML for a scenario: the form `fraglab scenario print` shows and
// the form tests round-trip through the parser.
#pragma once

#include <string>

#include "common/scenario.h"

namespace fraglab::scenario {

// Writes `s` as TOML that ParseScenarioString accepts and that parses back
// to a scenario equal to `s` (operator==). Canonical: fixed section and key
// order, sizes and durations in their canonical units (common/units.h), and
// fields equal to their defaults left out (seed is always written). Comments
// of the original file are not kept. `s` must be valid (as the parser
// produces it).
std::string PrintScenario(const Scenario& s);

// A TOML basic string literal for `text`, quotes included, with the escapes
// TOML requires (", \, control characters).
std::string TomlQuote(const std::string& text);

}  // namespace fraglab::scenario
