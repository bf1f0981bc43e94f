// Distributions: exact agreement with the documented consumption, and statistical sanity with fixed
// seeds. The statistical bounds are critical values at significance 0.001 (or >= 5 standard
// deviations), so a wrong distribution fails them while the fixed seeds keep the tests
// deterministic.
#include "common/random/distributions.h"

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "common/random/item_rng.h"

namespace maas::random {
namespace {

constexpr uint64_t kSeed = 20260101;

// Kolmogorov–Smirnov statistic of a sample against a continuous CDF.
template <typename Cdf>
double KolmogorovSmirnov(std::vector<double> sample, Cdf cdf) {
  std::sort(sample.begin(), sample.end());
  const double n = static_cast<double>(sample.size());
  double d = 0.0;
  for (size_t i = 0; i < sample.size(); ++i) {
    const double f = cdf(sample[i]);
    d = std::max({d, (i + 1) / n - f, f - i / n});
  }
  return d;
}

double StandardNormalCdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

// The KS critical value at significance 0.001 for large n: 1.9495 / sqrt(n).
double KsCritical(size_t n) { return 1.9495 / std::sqrt(static_cast<double>(n)); }

TEST_CASE("Fill functions draw in the documented order") {
  ItemRng a(kSeed, 0, 5);
  ItemRng b(kSeed, 0, 5);
  Eigen::VectorXd uniforms(7);
  FillUniform(a, uniforms);
  for (int i = 0; i < 7; ++i) CHECK(uniforms[i] == b.Uniform());

  Eigen::VectorXd normals(5);  // An odd count leaves a cached value for the next call.
  FillNormal(a, normals);
  for (int i = 0; i < 5; ++i) CHECK(normals[i] == Normal(b));
  CHECK(Normal(a) == Normal(b));

  Eigen::MatrixXd block(3, 4);
  FillNormalRowMajor(a, block);
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 4; ++c) CHECK(block(r, c) == b.Normal());  // Row-major.
  }
  CHECK(a.words_consumed() == b.words_consumed());

  // A block of a matrix (Eigen::Ref) is filled in place.
  Eigen::MatrixXd big = Eigen::MatrixXd::Zero(4, 4);
  FillNormalRowMajor(a, big.block(1, 1, 2, 2));
  CHECK(big(0, 0) == 0.0);
  CHECK(big(1, 1) == b.Normal());
  CHECK(big(1, 2) == b.Normal());
}

TEST_CASE("Normal with mean and stddev scales the standard normal") {
  ItemRng a(kSeed, 3, 0);
  ItemRng b(kSeed, 3, 0);
  for (int i = 0; i < 10; ++i) CHECK(Normal(a, 2.0, 0.5) == 2.0 + 0.5 * Normal(b));
}

TEST_CASE("Uniforms within one item pass Kolmogorov-Smirnov and a 100-bin chi-square") {
  const int n = 100000;
  ItemRng rng(kSeed, 0, 0);
  std::vector<double> sample(n);
  std::vector<int> bins(100, 0);
  for (double& u : sample) {
    u = Uniform(rng);
    REQUIRE(u > 0.0);
    REQUIRE(u < 1.0);
    ++bins[static_cast<int>(u * 100)];
  }
  CHECK(KolmogorovSmirnov(sample, [](double x) { return x; }) < KsCritical(n));
  double chi2 = 0.0;
  for (int count : bins) chi2 += (count - n / 100.0) * (count - n / 100.0) / (n / 100.0);
  CHECK(chi2 < 148.23);  // chi-square, 99 degrees of freedom, upper 0.001 point.
}

TEST_CASE("Normals within one item have N(0,1) moments and pass Kolmogorov-Smirnov") {
  const int n = 100000;
  ItemRng rng(kSeed, 1, 7);
  std::vector<double> sample(n);
  double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
  for (double& z : sample) {
    z = Normal(rng);
    s1 += z, s2 += z * z, s3 += z * z * z, s4 += z * z * z * z;
  }
  const double mean = s1 / n;
  const double variance = s2 / n - mean * mean;
  // Standard errors: mean 1/sqrt(n) = 0.0032, variance sqrt(2/n) = 0.0045, third moment
  // sqrt(15/n) = 0.012, fourth moment sqrt(96/n) = 0.031. Bounds are >= 5 standard errors.
  CHECK(std::abs(mean) < 0.016);
  CHECK(std::abs(variance - 1.0) < 0.023);
  CHECK(std::abs(s3 / n) < 0.06);
  CHECK(std::abs(s4 / n - 3.0) < 0.16);
  CHECK(KolmogorovSmirnov(sample, StandardNormalCdf) < KsCritical(n));
}

TEST_CASE("The first normal of each of many items is N(0,1) (across-item independence)") {
  const int n = 50000;
  std::vector<double> first(n), second(n);
  for (int i = 0; i < n; ++i) {
    ItemRng rng(kSeed, 0, static_cast<uint64_t>(i));
    first[i] = rng.Normal();
    second[i] = rng.Normal();
  }
  CHECK(KolmogorovSmirnov(first, StandardNormalCdf) < KsCritical(n));
  CHECK(KolmogorovSmirnov(second, StandardNormalCdf) < KsCritical(n));
  // The two values of a Box–Muller pair are uncorrelated (sd of the correlation 1/sqrt(n)).
  double cross = 0.0;
  for (int i = 0; i < n; ++i) cross += first[i] * second[i];
  CHECK(std::abs(cross / n) < 5.0 / std::sqrt(n));
}

TEST_CASE("Categorical frequencies match the weights (chi-square)") {
  Eigen::VectorXd weights(5);
  weights << 0.3, 0.0, 0.75, 1.2, 0.75;  // Unnormalized; sum 3.
  const int n = 100000;
  ItemRng rng(kSeed, 2, 0);
  std::vector<int> counts(5, 0);
  for (int i = 0; i < n; ++i) {
    const int k = Categorical(rng, weights);
    REQUIRE(k >= 0);
    REQUIRE(k < 5);
    ++counts[k];
  }
  CHECK(counts[1] == 0);  // A zero weight is never drawn.
  double chi2 = 0.0;
  for (int k = 0; k < 5; ++k) {
    if (weights[k] == 0.0) continue;
    const double expected = n * weights[k] / 3.0;
    chi2 += (counts[k] - expected) * (counts[k] - expected) / expected;
  }
  CHECK(chi2 < 16.27);  // chi-square, 3 degrees of freedom, upper 0.001 point.
}

TEST_CASE("Categorical consumes one Uniform and picks the first running sum above u * total") {
  Eigen::VectorXd weights(4);
  weights << 1.0, 2.0, 0.0, 1.0;
  ItemRng a(kSeed, 0, 11);
  ItemRng b(kSeed, 0, 11);
  for (int i = 0; i < 1000; ++i) {
    const double t = b.Uniform() * 4.0;
    const int expected = t < 1.0 ? 0 : (t < 3.0 ? 1 : 3);
    REQUIRE(Categorical(a, weights) == expected);
  }
  CHECK(a.words_consumed() == 2000);
}

TEST_CASE("CategoricalFromCumulative draws exactly what Categorical draws") {
  Eigen::VectorXd weights(6);
  weights << 0.1, 0.0, 3.7, 1e-9, 2.2, 0.0;
  Eigen::VectorXd cumulative(6);
  double running = 0.0;
  for (int k = 0; k < 6; ++k) cumulative[k] = running += weights[k];
  ItemRng a(kSeed, 4, 1);
  ItemRng b(kSeed, 4, 1);
  for (int i = 0; i < 20000; ++i) {
    const int k = CategoricalFromCumulative(a, cumulative);
    REQUIRE(k == Categorical(b, weights));
    REQUIRE(weights[k] > 0.0);
  }
}

TEST_CASE("Categorical of empty or degenerate weights returns -1 and still consumes a Uniform") {
  ItemRng rng(kSeed, 0, 0);
  const Eigen::VectorXd empty(0);
  const Eigen::VectorXd zeros = Eigen::VectorXd::Zero(3);
  Eigen::VectorXd with_nan(2);
  with_nan << 1.0, std::nan("");
  Eigen::VectorXd with_inf(2);
  with_inf << 1.0, HUGE_VAL;
  CHECK(Categorical(rng, empty) == -1);
  CHECK(Categorical(rng, zeros) == -1);
  CHECK(Categorical(rng, with_nan) == -1);
  CHECK(Categorical(rng, with_inf) == -1);
  CHECK(CategoricalFromCumulative(rng, empty) == -1);
  CHECK(CategoricalFromCumulative(rng, zeros) == -1);
  CHECK(rng.words_consumed() == 12);
  const Eigen::VectorXd one = Eigen::VectorXd::Constant(1, 0.5);
  CHECK(Categorical(rng, one) == 0);
  CHECK(CategoricalFromCumulative(rng, one) == 0);
}

}  // namespace
}  // namespace maas::random
