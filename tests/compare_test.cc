#include "analysis/compare.h"

#include <cstdio>
#include <fstream>

#include "gtest/gtest.h"

namespace fraglab::analysis {
namespace {

using RunMetrics = std::map<std::string, double>;

TEST(CompareTest, Directions) {
  EXPECT_EQ(DirectionOf("0:fill/fallbacks/pollute/Unmovable->Movable"),
            MetricDirection::kHigherIsWorse);
  EXPECT_EQ(DirectionOf("2:probe/probe/hugetlb/order9/obtained_fraction"),
            MetricDirection::kLowerIsWorse);
  EXPECT_EQ(DirectionOf("1:x/free_blocks/node0_Normal/order9"), MetricDirection::kLowerIsWorse);
  EXPECT_EQ(DirectionOf("1:x/free_blocks/node0_Normal/order3"), MetricDirection::kNeutral);
  EXPECT_EQ(DirectionOf("1:x/pageblocks/node0_Normal/Movable"), MetricDirection::kNeutral);
  EXPECT_EQ(DirectionOf("trace/drops"), MetricDirection::kHigherIsWorse);
}

TEST(CompareTest, FlagsSignificantRegressionOnly) {
  std::vector<RunMetrics> a, b;
  const double fa[] = {100, 102, 98, 101, 99};
  const double fb[] = {130, 128, 133, 131, 129};
  const double pa[] = {0.9, 0.91, 0.89, 0.9, 0.9};
  const double pb[] = {0.9, 0.89, 0.91, 0.9, 0.9};
  for (int i = 0; i < 5; ++i) {
    a.push_back({{"p/fallbacks/total", fa[i]}, {"p/probe/hugetlb/order9/obtained_fraction", pa[i]},
                 {"p/pageblocks/node0_Normal/Movable", 500.0 + i}});
    b.push_back({{"p/fallbacks/total", fb[i]}, {"p/probe/hugetlb/order9/obtained_fraction", pb[i]},
                 {"p/pageblocks/node0_Normal/Movable", 900.0 + i}});
  }
  CompareResult r = CompareRuns(a, b, CompareOptions{});
  ASSERT_EQ(r.metrics.size(), 3u);
  EXPECT_EQ(r.regressions, 1u);
  for (const auto& m : r.metrics) {
    if (m.name == "p/fallbacks/total") {
      EXPECT_TRUE(m.significant);
      EXPECT_TRUE(m.regression);
      EXPECT_NEAR(m.change_pct, 30.2, 0.1);
    } else if (m.name == "p/pageblocks/node0_Normal/Movable") {
      EXPECT_TRUE(m.significant);  // changed, but neutral: not a regression
      EXPECT_FALSE(m.regression);
    } else {
      EXPECT_FALSE(m.significant);
    }
  }
}

TEST(CompareTest, ImprovementIsNotRegression) {
  std::vector<RunMetrics> a, b;
  for (int i = 0; i < 4; ++i) {
    a.push_back({{"p/fallbacks/total", 100.0 + i}});
    b.push_back({{"p/fallbacks/total", 50.0 + i}});
  }
  CompareResult r = CompareRuns(a, b, CompareOptions{});
  EXPECT_EQ(r.regressions, 0u);
  EXPECT_EQ(r.improvements, 1u);
}

TEST(CompareTest, ThresholdSuppressesSmallSignificantChanges) {
  std::vector<RunMetrics> a, b;
  for (int i = 0; i < 6; ++i) {
    a.push_back({{"p/fallbacks/total", 1000.0 + (i % 2)}});
    b.push_back({{"p/fallbacks/total", 1010.0 + (i % 2)}});  // +1%, very consistent
  }
  CompareOptions o;
  o.threshold_pct = 5;
  EXPECT_EQ(CompareRuns(a, b, o).regressions, 0u);
  o.threshold_pct = 0.5;
  EXPECT_EQ(CompareRuns(a, b, o).regressions, 1u);
}

TEST(CompareTest, SingleRunsAreNeverSignificant) {
  CompareResult r = CompareRuns({{{"p/fallbacks/total", 1}}}, {{{"p/fallbacks/total", 100}}},
                                CompareOptions{});
  ASSERT_EQ(r.metrics.size(), 1u);
  EXPECT_FALSE(r.metrics[0].significant);
  EXPECT_EQ(r.regressions, 0u);
}

TEST(CompareTest, MissingMetricIsFlagged) {
  CompareResult r = CompareRuns({{{"x/fallbacks/total", 1}}, {}},
                                {{{"x/fallbacks/total", 1}}, {{"x/fallbacks/total", 2}}},
                                CompareOptions{});
  ASSERT_EQ(r.metrics.size(), 1u);
  EXPECT_TRUE(r.metrics[0].missing_in_a);
  EXPECT_FALSE(r.metrics[0].missing_in_b);
}

TEST(CompareTest, LoadsJsonSummaryAndRejectsBadOnes) {
  const std::string dir = ::testing::TempDir();
  const std::string good = dir + "/good.json";
  std::ofstream(good) << R"({"metrics": {"a/fallbacks/total": 3, "b": 1.5}})";
  auto m = LoadRunMetrics(good);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["a/fallbacks/total"], 3);
  EXPECT_EQ((*m)["b"], 1.5);

  const std::string bad = dir + "/bad.json";
  std::ofstream(bad) << R"({"metrics": {"a": "three"}})";
  auto e = LoadRunMetrics(bad);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("metric 'a' is not a number"), std::string::npos);

  const std::string broken = dir + "/broken.json";
  std::ofstream(broken) << "{ not json";
  EXPECT_FALSE(LoadRunMetrics(broken).ok());
  EXPECT_FALSE(LoadRunMetrics(dir + "/does-not-exist.json").ok());
}

TEST(CompareTest, TextAndJsonOutputs) {
  std::vector<RunMetrics> a{{{"p/fallbacks/total", 1}}, {{"p/fallbacks/total", 2}}};
  std::vector<RunMetrics> b{{{"p/fallbacks/total", 10}}, {{"p/fallbacks/total", 11}}};
  CompareOptions o;
  CompareResult r = CompareRuns(a, b, o);
  std::string text = FormatCompareText(r, o);
  EXPECT_NE(text.find("p/fallbacks/total"), std::string::npos);
  EXPECT_NE(text.find("REGRESSION"), std::string::npos);
  auto j = CompareToJson(r, o);
  EXPECT_EQ(j["regressions"], 1);
  EXPECT_EQ(j["metrics"][0]["a"]["n"], 2);
  EXPECT_TRUE(j["metrics"][0]["regression"].get<bool>());
}

}  // namespace
}  // namespace fraglab::analysis
