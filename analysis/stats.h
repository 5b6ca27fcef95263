// Small-sample statistics for `fraglab compare` and repeated runs: summary
// statistics, Student-t confidence intervals and Welch's unequal-variance
// t-test. Everything is computed here (no statistics library in Debian's
// C++ archive fits), from the textbook definitions.
#pragma once

#include <cstddef>
#include <vector>

namespace fraglab::analysis {

struct Summary {
  size_t n = 0;
  double mean = 0;
  double stddev = 0;     // sample standard deviation (n-1); 0 when n < 2
  double min = 0;
  double max = 0;
  double ci_low = 0;     // confidence interval of the mean (Student t)
  double ci_high = 0;    // equal to mean when n < 2
  double cv = 0;         // coefficient of variation stddev/|mean|; 0 when mean == 0
};

// Summary of `values` with a two-sided confidence interval at `confidence`
// (e.g. 0.95). Empty input gives n == 0 and zeros.
Summary Summarize(const std::vector<double>& values, double confidence = 0.95);

struct WelchResult {
  double t = 0;          // (mean_b - mean_a) / standard error
  double df = 0;         // Welch-Satterthwaite degrees of freedom
  double p_value = 1;    // two-sided
  double diff = 0;       // mean_b - mean_a
  double diff_ci_low = 0;
  double diff_ci_high = 0;
  bool valid = false;    // false when either side has n < 2 or both variances are 0
};

// Welch's t-test of B against A. When both samples have zero variance the
// test is undefined: valid=false, and p_value is 0 if the means differ, else 1.
WelchResult WelchTTest(const std::vector<double>& a, const std::vector<double>& b,
                       double confidence = 0.95);

// Student t distribution with `df` > 0 degrees of freedom.
double StudentTCdf(double t, double df);
// Quantile: the t with StudentTCdf(t, df) == p, for 0 < p < 1.
double StudentTQuantile(double p, double df);

// Regularized incomplete beta function I_x(a, b), 0 <= x <= 1, a, b > 0.
double RegularizedIncompleteBeta(double a, double b, double x);

}  // namespace fraglab::analysis
