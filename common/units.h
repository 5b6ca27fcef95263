// Quantities written in scenario files and on the command line: sizes
// ("64KiB", "1.5 GiB", "512 pages", "25%"), durations ("500ms", "2s", "1m")
// and counts ("10_000"), with one canonical text form each.
//
// Size syntax: <number>[ ]<unit>, number = digits with an optional decimal
// fraction (no sign, no exponent); the value must come out as a whole number
// of bytes (or pages). Units (case-insensitive):
//   B                       bytes
//   KiB MiB GiB TiB         binary multiples (1024^1..4)
//   K   M   G   T           the same binary multiples (kernel memparse style,
//                           so "4k" and "2M" mean 4 KiB and 2 MiB)
//   page, pages             4 KiB base pages
//   %                       percent of a base given at resolution time
//                           (up to 3 decimals, 0 < p <= 100)
// Decimal "KB/MB/GB/TB" are rejected: they are ambiguous (1000 or 1024).
// A bare number without a unit is rejected: bytes or pages would be a guess.
//
// Duration syntax: <number>[ ]<unit>, units ns, us, ms, s, m|min, h; the value
// must be a whole number of nanoseconds.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fraglab {

// The base page size of the machines we model (x86-64).
inline constexpr uint64_t kBasePageBytes = 4096;

enum class SizeUnit {
  kBytes,    // amount = bytes
  kPages,    // amount = 4 KiB pages
  kPercent,  // amount = thousandths of a percent (25% -> 25000)
};

// A size as written: bytes, pages, or a percentage of something decided by
// the field that holds it. Passive data; equality compares unit and amount
// (so "1MiB" == "1024KiB" but "256 pages" != "1MiB").
struct Size {
  SizeUnit unit = SizeUnit::kBytes;
  uint64_t amount = 0;

  friend bool operator==(const Size&, const Size&) = default;

  static Size Bytes(uint64_t bytes) { return {SizeUnit::kBytes, bytes}; }
  static Size Pages(uint64_t pages) { return {SizeUnit::kPages, pages}; }
  // `milli_percent` thousandths of a percent: Percent(25000) is 25%.
  static Size Percent(uint64_t milli_percent) { return {SizeUnit::kPercent, milli_percent}; }
};

// Parses a size (syntax above). Errors are InvalidArgument and say what is
// allowed, e.g. "size '4KB': unit 'KB' is ambiguous; write KiB (1024) ...".
// Does not check for zero: callers decide whether 0 is meaningful.
[[nodiscard]] absl::StatusOr<Size> ParseSize(absl::string_view text);

// Canonical text: bytes in the largest binary unit that keeps the value whole
// ("64KiB", "1536MiB", "100B"), pages as "1 page"/"512 pages", percent as
// "25%"/"12.5%". ParseSize(FormatSize(s)) == s for every s.
std::string FormatSize(const Size& size);

// Canonical text for a byte count (as FormatSize(Size::Bytes(bytes))).
std::string FormatBytes(uint64_t bytes);

// Resolves `size` to bytes. Pages are 4 KiB; a percentage is taken of
// `percent_base_bytes` and rounded down to a whole number of 4 KiB pages.
// InvalidArgument if the result overflows 64 bits.
[[nodiscard]] absl::StatusOr<uint64_t> ResolveSizeBytes(const Size& size,
                                                        uint64_t percent_base_bytes);

// Parses a duration (syntax above). Negative durations cannot be written.
[[nodiscard]] absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text);

// Canonical text: the largest unit of h, m, s, ms, us, ns that keeps the value
// whole. (Not named FormatDuration: absl::FormatDuration would be found by
// argument-dependent lookup and make calls ambiguous.) ("90s" -> "90s", "120s" -> "2m", 0 -> "0s").
std::string FormatDurationCanonical(absl::Duration d);

// Parses a non-negative decimal count; '_' may separate digit groups as in
// TOML ("10_000"). No units, signs or hex.
[[nodiscard]] absl::StatusOr<uint64_t> ParseCount(absl::string_view text);

// Decimal text of a count, without separators.
std::string FormatCount(uint64_t count);

}  // namespace fraglab
