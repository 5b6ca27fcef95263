// Sizes, durations and counts: parsing, canonical formatting, resolution.
#include "common/units.h"

#include <cstdint>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fraglab {
namespace {

using ::testing::HasSubstr;

TEST(ParseSizeTest, BinaryUnits) {
  EXPECT_EQ(*ParseSize("64KiB"), Size::Bytes(64 * 1024));
  EXPECT_EQ(*ParseSize("1 MiB"), Size::Bytes(1 << 20));
  EXPECT_EQ(*ParseSize("2GiB"), Size::Bytes(uint64_t{2} << 30));
  EXPECT_EQ(*ParseSize("3TiB"), Size::Bytes(uint64_t{3} << 40));
  EXPECT_EQ(*ParseSize("100B"), Size::Bytes(100));
  EXPECT_EQ(*ParseSize("  8 kib  "), Size::Bytes(8192));
}

TEST(ParseSizeTest, ShortUnitsAreBinary) {
  EXPECT_EQ(*ParseSize("4k"), Size::Bytes(4096));
  EXPECT_EQ(*ParseSize("4K"), Size::Bytes(4096));
  EXPECT_EQ(*ParseSize("2M"), Size::Bytes(2 << 20));
  EXPECT_EQ(*ParseSize("1G"), Size::Bytes(1 << 30));
  EXPECT_EQ(*ParseSize("1T"), Size::Bytes(uint64_t{1} << 40));
}

TEST(ParseSizeTest, FractionsMustBeWholeBytes) {
  EXPECT_EQ(*ParseSize("1.5 GiB"), Size::Bytes(1610612736));
  EXPECT_EQ(*ParseSize("0.5KiB"), Size::Bytes(512));
  absl::StatusOr<Size> bad = ParseSize("0.3KiB");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("not a whole number of bytes"));
  EXPECT_FALSE(ParseSize("1.5 pages").ok());
}

TEST(ParseSizeTest, PagesAndPercent) {
  EXPECT_EQ(*ParseSize("512 pages"), Size::Pages(512));
  EXPECT_EQ(*ParseSize("1 page"), Size::Pages(1));
  EXPECT_EQ(*ParseSize("25%"), Size::Percent(25000));
  EXPECT_EQ(*ParseSize("12.5 %"), Size::Percent(12500));
  EXPECT_EQ(*ParseSize("0.125%"), Size::Percent(125));
  EXPECT_EQ(*ParseSize("100%"), Size::Percent(100000));
  EXPECT_FALSE(ParseSize("100.5%").ok());
  EXPECT_FALSE(ParseSize("0.0001%").ok());
}

TEST(ParseSizeTest, RejectsAmbiguousAndMissingUnits) {
  absl::StatusOr<Size> kb = ParseSize("4KB");
  ASSERT_FALSE(kb.ok());
  EXPECT_THAT(kb.status().message(), HasSubstr("ambiguous"));
  EXPECT_THAT(kb.status().message(), HasSubstr("KiB"));
  absl::StatusOr<Size> bare = ParseSize("4096");
  ASSERT_FALSE(bare.ok());
  EXPECT_THAT(bare.status().message(), HasSubstr("missing unit"));
  EXPECT_THAT(bare.status().message(), HasSubstr("allowed units"));
  EXPECT_FALSE(ParseSize("").ok());
  EXPECT_FALSE(ParseSize("-4KiB").ok());
  EXPECT_FALSE(ParseSize("4 furlongs").ok());
  EXPECT_FALSE(ParseSize("1e3KiB").ok());
  EXPECT_FALSE(ParseSize(".5KiB").ok());
  EXPECT_FALSE(ParseSize("5.KiB").ok());
}

TEST(ParseSizeTest, Overflow) {
  EXPECT_FALSE(ParseSize("16777216TiB").ok());  // 2^64 bytes
  EXPECT_TRUE(ParseSize("16777215TiB").ok());
  EXPECT_FALSE(ParseSize("99999999999999999999999999999999999999B").ok());
  EXPECT_FALSE(ParseSize("18446744073709551616 pages").ok());
}

TEST(FormatSizeTest, Canonical) {
  EXPECT_EQ(FormatSize(Size::Bytes(64 * 1024)), "64KiB");
  EXPECT_EQ(FormatSize(Size::Bytes(1610612736)), "1536MiB");
  EXPECT_EQ(FormatSize(Size::Bytes(100)), "100B");
  EXPECT_EQ(FormatSize(Size::Bytes(0)), "0B");
  EXPECT_EQ(FormatSize(Size::Bytes(uint64_t{5} << 40)), "5TiB");
  EXPECT_EQ(FormatSize(Size::Bytes(uint64_t{2048} << 40)), "2048TiB");
  EXPECT_EQ(FormatSize(Size::Pages(1)), "1 page");
  EXPECT_EQ(FormatSize(Size::Pages(512)), "512 pages");
  EXPECT_EQ(FormatSize(Size::Percent(25000)), "25%");
  EXPECT_EQ(FormatSize(Size::Percent(12500)), "12.5%");
  EXPECT_EQ(FormatSize(Size::Percent(125)), "0.125%");
}

TEST(FormatSizeTest, RoundTripsManyValues) {
  for (uint64_t v : {uint64_t{1}, uint64_t{1023}, uint64_t{1024}, uint64_t{4096},
                     uint64_t{1} << 21, (uint64_t{1} << 30) + 4096, uint64_t{123456789},
                     ~uint64_t{0}}) {
    for (Size s : {Size::Bytes(v), Size::Pages(v)}) {
      absl::StatusOr<Size> back = ParseSize(FormatSize(s));
      ASSERT_TRUE(back.ok()) << FormatSize(s) << ": " << back.status();
      EXPECT_EQ(*back, s) << FormatSize(s);
    }
  }
  for (uint64_t milli = 1; milli <= 100000; milli += 997) {
    EXPECT_EQ(*ParseSize(FormatSize(Size::Percent(milli))), Size::Percent(milli));
  }
}

TEST(ResolveSizeTest, BytesPagesPercent) {
  EXPECT_EQ(*ResolveSizeBytes(Size::Bytes(12345), 0), 12345u);
  EXPECT_EQ(*ResolveSizeBytes(Size::Pages(3), 0), 3u * 4096);
  // 25% of 1 GiB, whole pages.
  EXPECT_EQ(*ResolveSizeBytes(Size::Percent(25000), uint64_t{1} << 30), uint64_t{1} << 28);
  // 33.333% of 1 MiB = 349521.92 bytes -> rounded down to 85 pages.
  EXPECT_EQ(*ResolveSizeBytes(Size::Percent(33333), uint64_t{1} << 20), 85u * 4096);
  EXPECT_EQ(*ResolveSizeBytes(Size::Percent(100000), ~uint64_t{0}),
            ~uint64_t{0} - (~uint64_t{0} % 4096));
  EXPECT_FALSE(ResolveSizeBytes(Size::Pages(uint64_t{1} << 60), 0).ok());
}

TEST(DurationTest, ParseAndFormat) {
  EXPECT_EQ(*ParseDuration("500ms"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseDuration("2s"), absl::Seconds(2));
  EXPECT_EQ(*ParseDuration("1m"), absl::Minutes(1));
  EXPECT_EQ(*ParseDuration("1 min"), absl::Minutes(1));
  EXPECT_EQ(*ParseDuration("1.5s"), absl::Milliseconds(1500));
  EXPECT_EQ(*ParseDuration("2h"), absl::Hours(2));
  EXPECT_EQ(*ParseDuration("10us"), absl::Microseconds(10));
  EXPECT_EQ(*ParseDuration("7ns"), absl::Nanoseconds(7));
  EXPECT_FALSE(ParseDuration("5").ok());
  EXPECT_FALSE(ParseDuration("5sec").ok());
  EXPECT_FALSE(ParseDuration("-5s").ok());
  EXPECT_FALSE(ParseDuration("0.5ns").ok());
  EXPECT_THAT(ParseDuration("5 fortnights").status().message(), HasSubstr("allowed units"));

  EXPECT_EQ(FormatDurationCanonical(absl::Seconds(120)), "2m");
  EXPECT_EQ(FormatDurationCanonical(absl::Seconds(90)), "90s");
  EXPECT_EQ(FormatDurationCanonical(absl::Milliseconds(1500)), "1500ms");
  EXPECT_EQ(FormatDurationCanonical(absl::Hours(3)), "3h");
  EXPECT_EQ(FormatDurationCanonical(absl::ZeroDuration()), "0s");
  for (absl::Duration d : {absl::Nanoseconds(1), absl::Microseconds(999), absl::Seconds(61),
                           absl::Minutes(90), absl::Hours(1000)}) {
    EXPECT_EQ(*ParseDuration(FormatDurationCanonical(d)), d) << FormatDurationCanonical(d);
  }
}

TEST(CountTest, ParseAndFormat) {
  EXPECT_EQ(*ParseCount("10000"), 10000u);
  EXPECT_EQ(*ParseCount("10_000"), 10000u);
  EXPECT_EQ(*ParseCount("0"), 0u);
  EXPECT_EQ(*ParseCount("18446744073709551615"), ~uint64_t{0});
  EXPECT_FALSE(ParseCount("18446744073709551616").ok());
  EXPECT_FALSE(ParseCount("_1").ok());
  EXPECT_FALSE(ParseCount("1_").ok());
  EXPECT_FALSE(ParseCount("1__0").ok());
  EXPECT_FALSE(ParseCount("-1").ok());
  EXPECT_FALSE(ParseCount("0x10").ok());
  EXPECT_FALSE(ParseCount("").ok());
  EXPECT_EQ(FormatCount(12345), "12345");
}

}  // namespace
}  // namespace fraglab
