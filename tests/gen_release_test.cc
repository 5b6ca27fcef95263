// Pattern index math of gen/release.h: which units each release pattern frees.
#include "gen/release.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace fraglab::gen {
namespace {

using ::testing::ElementsAre;

uint64_t Total(const std::vector<UnitRange>& r) {
  uint64_t n = 0;
  for (const auto& u : r) n += u.count;
  return n;
}

TEST(ReleaseRangesTest, WholeIsOneRange) {
  ReleaseParams p;
  p.pattern = ReleasePattern::kWhole;
  auto r = ReleaseRanges(10, p);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(*r, ElementsAre(UnitRange{0, 10}));
  auto empty = ReleaseRanges(0, p);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(ReleaseRangesTest, EveryNthWithOffset) {
  ReleaseParams p;
  p.pattern = ReleasePattern::kEveryNth;
  p.n = 3;
  p.offset = 1;
  auto r = ReleaseRanges(10, p);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(*r, ElementsAre(UnitRange{1, 1}, UnitRange{4, 1}, UnitRange{7, 1}));
}

TEST(ReleaseRangesTest, EveryFirstMergesIntoOneRange) {
  ReleaseParams p;
  p.pattern = ReleasePattern::kEveryNth;
  p.n = 1;
  auto r = ReleaseRanges(5, p);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(*r, ElementsAre(UnitRange{0, 5}));
}

TEST(ReleaseRangesTest, StrideRunsAndClippedTail) {
  ReleaseParams p;
  p.pattern = ReleasePattern::kStride;
  p.stride = 4;
  p.run = 3;
  p.offset = 2;
  auto r = ReleaseRanges(12, p);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(*r, ElementsAre(UnitRange{2, 3}, UnitRange{6, 3}, UnitRange{10, 2}));
}

TEST(ReleaseRangesTest, StrideEqualRunIsContiguous) {
  ReleaseParams p;
  p.pattern = ReleasePattern::kStride;
  p.stride = 2;
  p.run = 2;
  auto r = ReleaseRanges(7, p);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(*r, ElementsAre(UnitRange{0, 7}));
}

TEST(ReleaseRangesTest, RandomFractionExactCountSortedDistinctAndSeeded) {
  ReleaseParams p;
  p.pattern = ReleasePattern::kRandomFraction;
  p.fraction = 0.3;
  p.seed = 42;
  auto a = ReleaseRanges(1000, p);
  auto b = ReleaseRanges(1000, p);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(Total(*a), 300u);
  EXPECT_EQ(*a, *b);
  for (size_t i = 1; i < a->size(); ++i) {
    // Sorted and merged: a gap of at least one unit between ranges.
    EXPECT_GT((*a)[i].first, (*a)[i - 1].first + (*a)[i - 1].count);
  }
  p.seed = 43;
  auto c = ReleaseRanges(1000, p);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(*a, *c);
}

TEST(ReleaseRangesTest, RandomFractionEdges) {
  ReleaseParams p;
  p.pattern = ReleasePattern::kRandomFraction;
  p.fraction = 0;
  EXPECT_TRUE(ReleaseRanges(100, p)->empty());
  p.fraction = 1;
  EXPECT_THAT(*ReleaseRanges(100, p), ElementsAre(UnitRange{0, 100}));
}

TEST(ReleaseRangesTest, BadParametersAreInvalidArgument) {
  ReleaseParams p;
  p.pattern = ReleasePattern::kEveryNth;
  p.n = 0;
  EXPECT_EQ(ReleaseRanges(10, p).status().code(), absl::StatusCode::kInvalidArgument);
  p.n = 2;
  p.offset = 2;
  EXPECT_EQ(ReleaseRanges(10, p).status().code(), absl::StatusCode::kInvalidArgument);
  p.pattern = ReleasePattern::kStride;
  p.offset = 0;
  p.stride = 2;
  p.run = 3;
  EXPECT_EQ(ReleaseRanges(10, p).status().code(), absl::StatusCode::kInvalidArgument);
  p.pattern = ReleasePattern::kRandomFraction;
  p.fraction = 1.5;
  auto s = ReleaseRanges(10, p).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("1.5"));
}

}  // namespace
}  // namespace fraglab::gen
