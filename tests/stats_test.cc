#include "analysis/stats.h"

#include <cmath>

#include "gtest/gtest.h"

namespace fraglab::analysis {
namespace {

TEST(StatsTest, StudentTCdfKnownValues) {
  // Values from standard t tables.
  EXPECT_NEAR(StudentTCdf(0, 5), 0.5, 1e-12);
  EXPECT_NEAR(StudentTCdf(2.015048, 5), 0.95, 1e-6);
  EXPECT_NEAR(StudentTCdf(2.570582, 5), 0.975, 1e-6);
  EXPECT_NEAR(StudentTCdf(-2.570582, 5), 0.025, 1e-6);
  EXPECT_NEAR(StudentTCdf(1.959964, 1e7), 0.975, 1e-5);  // -> normal
  EXPECT_NEAR(StudentTCdf(1.0, 1), 0.75, 1e-12);          // Cauchy: 1/2 + atan(1)/pi
}

TEST(StatsTest, StudentTQuantileInvertsCdf) {
  EXPECT_NEAR(StudentTQuantile(0.975, 4), 2.776445, 1e-5);
  EXPECT_NEAR(StudentTQuantile(0.975, 9), 2.262157, 1e-5);
  EXPECT_NEAR(StudentTQuantile(0.025, 9), -2.262157, 1e-5);
  for (double df : {1.0, 2.5, 10.0, 100.0}) {
    for (double p : {0.01, 0.3, 0.5, 0.9, 0.999}) {
      EXPECT_NEAR(StudentTCdf(StudentTQuantile(p, df), df), p, 1e-9) << df << " " << p;
    }
  }
}

TEST(StatsTest, IncompleteBetaSymmetryAndEdges) {
  EXPECT_EQ(RegularizedIncompleteBeta(2, 3, 0), 0);
  EXPECT_EQ(RegularizedIncompleteBeta(2, 3, 1), 1);
  // I_x(1,1) = x; I_x(a,b) = 1 - I_{1-x}(b,a).
  EXPECT_NEAR(RegularizedIncompleteBeta(1, 1, 0.3), 0.3, 1e-12);
  EXPECT_NEAR(RegularizedIncompleteBeta(2.5, 4, 0.2),
              1 - RegularizedIncompleteBeta(4, 2.5, 0.8), 1e-12);
  // I_x(2,1) = x^2.
  EXPECT_NEAR(RegularizedIncompleteBeta(2, 1, 0.6), 0.36, 1e-12);
}

TEST(StatsTest, SummarizeComputesMeanStddevCi) {
  Summary s = Summarize({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_EQ(s.n, 8u);
  EXPECT_DOUBLE_EQ(s.mean, 5);
  EXPECT_NEAR(s.stddev, 2.138090, 1e-6);
  const double half = 2.364624 * 2.138090 / std::sqrt(8.0);  // t(0.975, 7)
  EXPECT_NEAR(s.ci_low, 5 - half, 1e-4);
  EXPECT_NEAR(s.ci_high, 5 + half, 1e-4);
  EXPECT_DOUBLE_EQ(s.min, 2);
  EXPECT_DOUBLE_EQ(s.max, 9);
  EXPECT_NEAR(s.cv, 2.138090 / 5, 1e-6);
}

TEST(StatsTest, SummarizeDegenerate) {
  EXPECT_EQ(Summarize({}).n, 0u);
  Summary one = Summarize({3});
  EXPECT_EQ(one.stddev, 0);
  EXPECT_EQ(one.ci_low, 3);
  EXPECT_EQ(one.ci_high, 3);
}

TEST(StatsTest, WelchMatchesHandComputation) {
  // a: mean 20, var 2.5 (n=5); b: mean 23, var 10 (n=5).
  std::vector<double> a{18, 19, 20, 21, 22};
  std::vector<double> b{18, 21, 23, 25, 28};
  WelchResult r = WelchTTest(a, b);
  ASSERT_TRUE(r.valid);
  const double va = 2.5 / 5, vb = 14.5 / 5;
  EXPECT_NEAR(r.diff, 3.0, 1e-12);
  EXPECT_NEAR(r.t, 3.0 / std::sqrt(va + vb), 1e-12);
  const double df = (va + vb) * (va + vb) / (va * va / 4 + vb * vb / 4);
  EXPECT_NEAR(r.df, df, 1e-9);
  EXPECT_NEAR(r.p_value, 2 * (1 - StudentTCdf(r.t, df)), 1e-12);
  EXPECT_GT(r.p_value, 0.05);  // t ~ 1.63 with ~4.7 df is not significant
  EXPECT_LT(r.diff_ci_low, 0);
  EXPECT_GT(r.diff_ci_high, 0);
}

TEST(StatsTest, WelchDetectsClearShift) {
  std::vector<double> a{100, 101, 99, 100, 102};
  std::vector<double> b{110, 111, 109, 112, 110};
  WelchResult r = WelchTTest(a, b);
  ASSERT_TRUE(r.valid);
  EXPECT_LT(r.p_value, 1e-4);
  EXPECT_GT(r.diff_ci_low, 0);
}

TEST(StatsTest, WelchZeroVariance) {
  WelchResult same = WelchTTest({5, 5, 5}, {5, 5});
  EXPECT_FALSE(same.valid);
  EXPECT_EQ(same.p_value, 1);
  WelchResult differ = WelchTTest({5, 5, 5}, {6, 6});
  EXPECT_FALSE(differ.valid);
  EXPECT_EQ(differ.p_value, 0);
}

}  // namespace
}  // namespace fraglab::analysis
