// Pareto k-hat against known tail indices: the reference notes' known-answer case (target N(0,1),
// proposal N(0, 0.8^2): k = 1 - 0.8^2 = 0.36), exact Pareto weights, and bounded weights.
#include "common/math/pareto_k.h"

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "common/random/item_rng.h"

namespace maas::math {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// log w = log N(z | 0, 1) - log N(z | 0, sigma_q^2) for z ~ N(0, sigma_q^2).
std::vector<double> NormalProposalLogWeights(double sigma_q, int n, uint64_t index) {
  random::ItemRng rng(/*seed=*/1234, /*stream=*/0, index);
  std::vector<double> log_w(n);
  for (double& v : log_w) {
    const double z = sigma_q * rng.Normal();
    v = -0.5 * z * z + 0.5 * z * z / (sigma_q * sigma_q) + std::log(sigma_q);
  }
  return log_w;
}

TEST_CASE("k-hat of N(0,1) weighted by a N(0, 0.8^2) proposal is 1 - 0.8^2 = 0.36") {
  // Reference notes section 1.2: measured 0.367 at N = 1e5; tolerance +-0.05 (about 1 sd of the
  // estimator for M = 949 tail draws, so also check the average of 4 independent runs).
  double sum = 0.0;
  for (uint64_t index = 0; index < 4; ++index) {
    const double k = ParetoKHat(NormalProposalLogWeights(0.8, 100000, index));
    INFO("run " << index << " k-hat " << k);
    CHECK(std::abs(k - 0.36) < 0.1);
    sum += k;
  }
  CHECK(std::abs(sum / 4 - 0.36) < 0.05);
}

TEST_CASE("k-hat of exact Pareto weights recovers the tail index") {
  // w = U^-k has a Pareto tail with shape k exactly.
  for (double k_true : {0.3, 0.7, 1.2}) {
    double sum = 0.0;
    for (uint64_t index = 0; index < 4; ++index) {
      random::ItemRng rng(77, 1, index);
      Eigen::VectorXd log_w(40000);
      for (Eigen::Index i = 0; i < log_w.size(); ++i) log_w[i] = -k_true * std::log(rng.Uniform());
      sum += ParetoKHat(log_w);
    }
    INFO("k " << k_true << " mean k-hat " << sum / 4);
    // Estimator sd ~ (1 + k) / sqrt(600) / 2 for the mean of 4 runs: 0.027 to 0.045 here.
    CHECK(std::abs(sum / 4 - k_true) < 0.12);
  }
}

TEST_CASE("k-hat of bounded weights is negative") {
  random::ItemRng rng(5, 0, 0);
  std::vector<double> log_w(10000);
  for (double& v : log_w) v = std::log(rng.Uniform());  // w ~ U(0, 1): GPD shape -1.
  const double k = ParetoKHat(log_w);
  CHECK(k < 0.0);
  CHECK(k > -1.2);
  // Shifting all log weights does not change k-hat; neither does a scale of +-1000.
  std::vector<double> shifted = log_w;
  for (double& v : shifted) v += 1000.0;
  CHECK(ParetoKHat(shifted) == Approx(k).margin(1e-9));
}

TEST_CASE("k-hat edge cases") {
  CHECK(ParetoKHat(std::vector<double>{}) == kInf);
  CHECK(ParetoKHat(std::vector<double>(50, 2.0)) == -kInf);  // Constant weights.
  CHECK(ParetoKHat(std::vector<double>(50, -kInf)) == kInf);
  CHECK(ParetoKHat(std::vector<double>{0.0, 1.0, 2.0}) == kInf);  // Too few for a tail fit.
  CHECK(std::isnan(ParetoKHat(std::vector<double>{0.0, std::nan(""), 1.0})));
  CHECK(ParetoKHat(std::vector<double>{0.0, kInf, 1.0}) == kInf);
  CHECK(std::isnan(ParetoKHat(NormalProposalLogWeights(0.8, 100, 0), 0.0)));
  CHECK(std::isfinite(ParetoKHat(NormalProposalLogWeights(0.8, 100, 0))));
}

// n log weights equal to `base` up to rounding: base plus -spread .. spread ulps of base.
std::vector<double> RoundedEqual(double base, int n, int spread, uint64_t index) {
  random::ItemRng rng(99, 2, index);
  const double ulp = std::nextafter(std::abs(base), kInf) - std::abs(base);
  std::vector<double> log_w(n);
  for (double& v : log_w) {
    v = base + ulp * std::floor((2 * spread + 1) * rng.Uniform() - spread);
  }
  return log_w;
}

TEST_CASE("k-hat of weights equal up to rounding is -inf, not +inf or NaN") {
  // What an exact-posterior proposal gives: every weight is p(x) in exact arithmetic, the
  // computed log weights differ by a few ulps.
  for (double base : {-7.25, -2.6182705741661, 0.001, -1234.5678, 3.0e5}) {
    for (int n : {25, 100, 1000, 5000}) {
      for (uint64_t index = 0; index < 4; ++index) {
        const std::vector<double> log_w = RoundedEqual(base, n, 40, index);
        INFO("base " << base << " n " << n << " run " << index);
        CHECK(ParetoKHat(log_w) == -kInf);
        std::vector<double> top = log_w;
        const std::size_t keep = ParetoTailSize(n);
        std::nth_element(top.begin(), top.begin() + (keep - 1), top.end(), std::greater<double>());
        top.resize(keep);
        CHECK(ParetoKHatFromLargest(top, n) == -kInf);
      }
    }
  }
  // An atom at the largest weight (the M + 1 largest equal up to rounding), smaller weights below:
  // a bounded tail.
  std::vector<double> atom = RoundedEqual(-7.25, 900, 40, 7);
  atom.resize(1000, -20.0);
  CHECK(ParetoKHat(atom) == -kInf);
  // Genuinely different weights are not swallowed by the tolerance.
  std::vector<double> varied = NormalProposalLogWeights(0.8, 1000, 5);
  for (double& v : varied) v = -7.25 + 1e-9 * v;
  CHECK(std::isfinite(ParetoKHat(varied)));
}

TEST_CASE("k-hat of two-valued weights is never NaN") {
  // Equal exceedances make one candidate of the fit b = 0 exactly for 100 .. 120 of them
  // (sqrt(m / (j + 0.5)) = 4 for m = 40, j = 2); that candidate takes the b -> 0 limit.
  for (int top = 5; top <= 300; top += 5) {
    std::vector<double> log_w(5000, -3.0);
    for (int i = 0; i < top; ++i) log_w[i] = 2.0;
    INFO(top << " of 5000 at the larger value");
    const double k = ParetoKHat(log_w);
    CHECK(!std::isnan(k));
    CHECK(k < 0.0);  // two values: bounded
  }
}

TEST_CASE("k-hat from the largest weights equals k-hat from all of them") {
  for (int n : {30, 1000, 20000}) {
    std::vector<double> log_w = NormalProposalLogWeights(0.8, n, 3);
    const double full = ParetoKHat(log_w);
    const std::size_t keep = ParetoTailSize(n);
    REQUIRE(keep <= log_w.size());
    std::vector<double> top = log_w;
    std::nth_element(top.begin(), top.begin() + (keep - 1), top.end(), std::greater<double>());
    top.resize(keep);
    CHECK(ParetoKHatFromLargest(top, n) == full);
    CHECK(ParetoKHatFromLargest(log_w, n) == full);
    top.pop_back();
    CHECK(std::isnan(ParetoKHatFromLargest(top, n)));  // Not enough of the tail.
  }
  CHECK(ParetoTailSize(0) == 0);
  CHECK(ParetoTailSize(10) == 3);  // ceil(min(2, 9.49)) + 1
  CHECK(ParetoKHatFromLargest(std::vector<double>(50, 2.0), 50) == -kInf);
}

}  // namespace
}  // namespace maas::math
