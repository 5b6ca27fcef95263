#include "common/units.h"

#include <cctype>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace fraglab {
namespace {

using u128 = unsigned __int128;
constexpr u128 kU64Max = std::numeric_limits<uint64_t>::max();

constexpr const char* kSizeUnitsHelp =
    "allowed units: B, KiB, MiB, GiB, TiB (or K, M, G, T), pages, %";
constexpr const char* kDurationUnitsHelp = "allowed units: ns, us, ms, s, m (or min), h";

// A decimal number split into an exact rational mantissa / 10^decimals.
struct Decimal {
  u128 mantissa = 0;
  int decimals = 0;
};

// Reads "<digits>[.<digits>]" from the front of `text`, leaving the rest.
// Exact arithmetic so that "1.5GiB" is exactly 1610612736 bytes.
absl::StatusOr<Decimal> ReadDecimal(absl::string_view& text, absl::string_view whole,
                                    absl::string_view what) {
  Decimal d;
  size_t i = 0;
  int int_digits = 0;
  bool seen_point = false;
  int total_digits = 0;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c >= '0' && c <= '9') {
      // 36 significant digits fit in 128 bits; more is never a real size.
      if (++total_digits > 36) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " '", whole, "': number has too many digits"));
      }
      d.mantissa = d.mantissa * 10 + static_cast<unsigned>(c - '0');
      if (seen_point) {
        // Keeps remainder * unit within 128 bits in Scale().
        if (++d.decimals > 18) {
          return absl::InvalidArgumentError(
              absl::StrCat(what, " '", whole, "': more than 18 decimals"));
        }
      } else {
        ++int_digits;
      }
    } else if (c == '.' && !seen_point) {
      seen_point = true;
    } else {
      break;
    }
  }
  if (int_digits == 0 || (seen_point && d.decimals == 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " '", whole, "': expected a number such as 64 or 1.5 followed by a unit"));
  }
  text.remove_prefix(i);
  return d;
}

u128 Pow10(int n) {
  u128 r = 1;
  for (int i = 0; i < n; ++i) r *= 10;
  return r;
}

// mantissa * multiplier / 10^decimals if it is a whole number that fits.
absl::StatusOr<uint64_t> Scale(const Decimal& d, uint64_t multiplier, absl::string_view what,
                               absl::string_view whole, absl::string_view whole_of) {
  const u128 den = Pow10(d.decimals);
  // mantissa < 10^36 < 2^120; multiplier < 2^64 may overflow 128 bits, so
  // divide first where possible.
  const u128 q = d.mantissa / den;
  const u128 r = d.mantissa % den;
  if (q > 0 && multiplier > kU64Max / q) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", whole, "': too large (more than 2^64 ", whole_of, ")"));
  }
  u128 frac_num = r * multiplier;  // r < 10^18 and multiplier < 2^64: fits in 128 bits
  if (frac_num % den != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", whole, "': not a whole number of ", whole_of));
  }
  u128 value = q * multiplier + frac_num / den;
  if (value > kU64Max) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", whole, "': too large (more than 2^64 ", whole_of, ")"));
  }
  return static_cast<uint64_t>(value);
}

}  // namespace

absl::StatusOr<Size> ParseSize(absl::string_view text) {
  const absl::string_view whole = text;
  text = absl::StripAsciiWhitespace(text);
  if (text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("size '", whole, "': empty (write e.g. 64KiB, 512 pages, 25%)"));
  }
  if (text[0] == '-' || text[0] == '+') {
    return absl::InvalidArgumentError(
        absl::StrCat("size '", whole, "': sizes cannot have a sign"));
  }
  absl::StatusOr<Decimal> num = ReadDecimal(text, whole, "size");
  if (!num.ok()) return num.status();
  text = absl::StripLeadingAsciiWhitespace(text);
  if (text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("size '", whole, "': missing unit (", kSizeUnitsHelp, ")"));
  }
  const std::string unit = absl::AsciiStrToLower(text);
  if (unit == "%") {
    if (num->decimals > 3) {
      return absl::InvalidArgumentError(
          absl::StrCat("size '", whole, "': percentages have at most 3 decimals"));
    }
    absl::StatusOr<uint64_t> milli = Scale(*num, 1000, "size", whole, "thousandths of a percent");
    if (!milli.ok()) return milli.status();
    if (*milli > 100000) {
      return absl::InvalidArgumentError(
          absl::StrCat("size '", whole, "': percentage above 100%"));
    }
    return Size::Percent(*milli);
  }
  if (unit == "page" || unit == "pages") {
    absl::StatusOr<uint64_t> pages = Scale(*num, 1, "size", whole, "pages");
    if (!pages.ok()) return pages.status();
    return Size::Pages(*pages);
  }
  uint64_t multiplier = 0;
  if (unit == "b") {
    multiplier = 1;
  } else if (unit == "kib" || unit == "k") {
    multiplier = uint64_t{1} << 10;
  } else if (unit == "mib" || unit == "m") {
    multiplier = uint64_t{1} << 20;
  } else if (unit == "gib" || unit == "g") {
    multiplier = uint64_t{1} << 30;
  } else if (unit == "tib" || unit == "t") {
    multiplier = uint64_t{1} << 40;
  } else if (unit == "kb" || unit == "mb" || unit == "gb" || unit == "tb") {
    return absl::InvalidArgumentError(absl::StrCat(
        "size '", whole, "': unit '", text, "' is ambiguous (1000 or 1024?); write ",
        std::string(1, static_cast<char>(std::toupper(static_cast<unsigned char>(unit[0])))),
        "iB for the binary unit (", kSizeUnitsHelp, ")"));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("size '", whole, "': unknown unit '", text, "' (", kSizeUnitsHelp, ")"));
  }
  absl::StatusOr<uint64_t> bytes = Scale(*num, multiplier, "size", whole, "bytes");
  if (!bytes.ok()) return bytes.status();
  return Size::Bytes(*bytes);
}

std::string FormatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  uint64_t v = bytes;
  while (u < 4 && v != 0 && v % 1024 == 0) {
    v /= 1024;
    ++u;
  }
  return absl::StrCat(v, kUnits[u]);
}

std::string FormatSize(const Size& size) {
  switch (size.unit) {
    case SizeUnit::kBytes:
      return FormatBytes(size.amount);
    case SizeUnit::kPages:
      return absl::StrCat(size.amount, size.amount == 1 ? " page" : " pages");
    case SizeUnit::kPercent: {
      std::string out = absl::StrCat(size.amount / 1000);
      uint64_t frac = size.amount % 1000;
      if (frac != 0) {
        std::string digits = absl::StrFormat("%03d", static_cast<int>(frac));
        while (!digits.empty() && digits.back() == '0') digits.pop_back();
        absl::StrAppend(&out, ".", digits);
      }
      return absl::StrCat(out, "%");
    }
  }
  return "?";
}

absl::StatusOr<uint64_t> ResolveSizeBytes(const Size& size, uint64_t percent_base_bytes) {
  switch (size.unit) {
    case SizeUnit::kBytes:
      return size.amount;
    case SizeUnit::kPages:
      if (size.amount > kU64Max / kBasePageBytes) {
        return absl::InvalidArgumentError(
            absl::StrCat("size '", FormatSize(size), "' does not fit in 64 bits of bytes"));
      }
      return size.amount * kBasePageBytes;
    case SizeUnit::kPercent: {
      u128 bytes = static_cast<u128>(percent_base_bytes) * size.amount / 100000;
      bytes -= bytes % kBasePageBytes;
      return static_cast<uint64_t>(bytes);  // <= percent_base_bytes
    }
  }
  return absl::InternalError("ResolveSizeBytes: unknown size unit");
}

absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text) {
  const absl::string_view whole = text;
  text = absl::StripAsciiWhitespace(text);
  if (text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("duration '", whole, "': empty (write e.g. 500ms, 2s, 1m)"));
  }
  if (text[0] == '-' || text[0] == '+') {
    return absl::InvalidArgumentError(
        absl::StrCat("duration '", whole, "': durations cannot have a sign"));
  }
  absl::StatusOr<Decimal> num = ReadDecimal(text, whole, "duration");
  if (!num.ok()) return num.status();
  text = absl::StripLeadingAsciiWhitespace(text);
  if (text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("duration '", whole, "': missing unit (", kDurationUnitsHelp, ")"));
  }
  const std::string unit = absl::AsciiStrToLower(text);
  uint64_t ns_per_unit = 0;
  if (unit == "ns") {
    ns_per_unit = 1;
  } else if (unit == "us") {
    ns_per_unit = 1000;
  } else if (unit == "ms") {
    ns_per_unit = 1000 * 1000;
  } else if (unit == "s") {
    ns_per_unit = 1000ull * 1000 * 1000;
  } else if (unit == "m" || unit == "min") {
    ns_per_unit = 60ull * 1000 * 1000 * 1000;
  } else if (unit == "h") {
    ns_per_unit = 3600ull * 1000 * 1000 * 1000;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("duration '", whole, "': unknown unit '", text, "' (", kDurationUnitsHelp, ")"));
  }
  absl::StatusOr<uint64_t> ns = Scale(*num, ns_per_unit, "duration", whole, "nanoseconds");
  if (!ns.ok()) return ns.status();
  if (*ns > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return absl::InvalidArgumentError(absl::StrCat("duration '", whole, "': too long"));
  }
  return absl::Nanoseconds(static_cast<int64_t>(*ns));
}

std::string FormatDurationCanonical(absl::Duration d) {
  int64_t ns = absl::ToInt64Nanoseconds(d);
  if (ns == 0) return "0s";
  struct UnitDef {
    int64_t ns;
    const char* name;
  };
  static constexpr UnitDef kUnits[] = {
      {3600LL * 1000 * 1000 * 1000, "h"}, {60LL * 1000 * 1000 * 1000, "m"},
      {1000LL * 1000 * 1000, "s"},        {1000LL * 1000, "ms"},
      {1000LL, "us"},                     {1, "ns"}};
  for (const UnitDef& u : kUnits) {
    if (ns % u.ns == 0) return absl::StrCat(ns / u.ns, u.name);
  }
  return absl::StrCat(ns, "ns");
}

absl::StatusOr<uint64_t> ParseCount(absl::string_view text) {
  const absl::string_view whole = text;
  text = absl::StripAsciiWhitespace(text);
  if (text.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("count '", whole, "': empty"));
  }
  u128 value = 0;
  bool prev_digit = false;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      value = value * 10 + static_cast<unsigned>(c - '0');
      if (value > kU64Max) {
        return absl::InvalidArgumentError(absl::StrCat("count '", whole, "': too large"));
      }
      prev_digit = true;
    } else if (c == '_' && prev_digit) {
      prev_digit = false;  // an underscore must sit between digits
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "count '", whole, "': expected a non-negative decimal number (digits, '_' between them)"));
    }
  }
  if (!prev_digit) {
    return absl::InvalidArgumentError(
        absl::StrCat("count '", whole, "': '_' must be between digits"));
  }
  return static_cast<uint64_t>(value);
}

std::string FormatCount(uint64_t count) { return absl::StrCat(count); }

}  // namespace fraglab
