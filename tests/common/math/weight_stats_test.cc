// WeightStats against direct sums on moderate values, exact merges, and extreme log weights.
#include "common/math/weight_stats.h"

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/random/item_rng.h"

namespace maas::math {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Moderate log weights (|log w| < ~10): exp() of them is exact enough for a direct computation.
std::vector<double> ModerateLogWeights(int n, uint64_t index) {
  random::ItemRng rng(/*seed=*/99, /*stream=*/0, index);
  std::vector<double> log_w(n);
  for (double& v : log_w) v = 1.5 * rng.Normal() - 0.7;
  return log_w;
}

struct Direct {
  double log_sum_w, log_sum_w2, ess, se;
};

Direct DirectStats(const std::vector<double>& log_w, double offset = 0.0) {
  double s1 = 0.0, s2 = 0.0;
  for (double v : log_w) {
    s1 += std::exp(v);
    s2 += std::exp(2 * v);
  }
  const double n = static_cast<double>(log_w.size());
  const double ess = s1 * s1 / s2;
  return {std::log(s1) + offset, std::log(s2) + 2 * offset, ess, std::sqrt(1 / ess - 1 / n)};
}

void CheckClose(const WeightStats& a, const WeightStats& b, double tolerance) {
  CHECK(a.count() == b.count());
  CHECK(a.log_sum_w() == Approx(b.log_sum_w()).margin(tolerance).epsilon(tolerance));
  CHECK(a.log_sum_w2() == Approx(b.log_sum_w2()).margin(tolerance).epsilon(tolerance));
  CHECK(a.Ess() == Approx(b.Ess()).epsilon(tolerance));
  CHECK(a.StandardError() == Approx(b.StandardError()).margin(tolerance).epsilon(tolerance));
}

TEST_CASE("Empty statistics") {
  const WeightStats stats;
  CHECK(stats.count() == 0);
  CHECK(stats.log_sum_w() == -kInf);
  CHECK(stats.log_sum_w2() == -kInf);
  CHECK(std::isnan(stats.LogMean()));
  CHECK(stats.Ess() == 0.0);
  CHECK(std::isnan(stats.StandardError()));
}

TEST_CASE("Equal weights give ESS = N and a standard error of 0") {
  WeightStats stats;
  for (int i = 0; i < 1000; ++i) stats.Add(3.7);
  CHECK(stats.count() == 1000);
  CHECK(stats.Ess() == 1000.0);
  CHECK(stats.StandardError() == 0.0);
  CHECK(stats.LogMean() == Approx(3.7).epsilon(1e-15));
  CHECK(stats.log_sum_w() == Approx(3.7 + std::log(1000.0)).epsilon(1e-15));
  CHECK(stats.log_sum_w2() == Approx(7.4 + std::log(1000.0)).epsilon(1e-15));
  WeightStats single;
  single.Add(-2.0);
  CHECK(single.Ess() == 1.0);
  CHECK(single.LogMean() == -2.0);
}

// The spread of the weights themselves, two-pass in long double (the oracle for weights so close
// that one-pass sums of w and w^2 cancel).
double TwoPassStandardError(const std::vector<double>& log_w) {
  long double sum = 0;
  for (double v : log_w) sum += std::exp(static_cast<long double>(v));
  const long double mean = sum / log_w.size();
  long double m2 = 0;
  for (double v : log_w) {
    const long double d = std::exp(static_cast<long double>(v)) - mean;
    m2 += d * d;
  }
  return static_cast<double>(std::sqrt(m2) / sum);
}

TEST_CASE("Weights equal but for rounding give a standard error of rounding's size and ESS <= N") {
  // A zero-variance proposal's log weights, computed with rounding: one value and its neighbours
  // (one-pass sums of w and w^2 gave a standard error of ~1e-9 and an ESS above N here).
  for (const int n : {10, 100, 1000, 100000}) {
    INFO("N = " << n);
    std::vector<double> log_w(n);
    random::ItemRng rng(/*seed=*/7, /*stream=*/0, /*index=*/static_cast<uint64_t>(n));
    for (double& v : log_w) {
      v = -3.2;
      for (int k = static_cast<int>(rng.Uniform() * 5); k > 0; --k) v = std::nextafter(v, 0.0);
    }
    WeightStats stats;
    stats.AddAll(log_w);
    CHECK(stats.StandardError() < 1e-15);
    CHECK(stats.Ess() <= static_cast<double>(n));
    CHECK(stats.Ess() >= static_cast<double>(n) * (1 - 1e-14));
    WeightStats first, second;
    first.AddAll(std::vector<double>(log_w.begin(), log_w.begin() + n / 3));
    second.AddAll(std::vector<double>(log_w.begin() + n / 3, log_w.end()));
    first.Merge(second);
    CHECK(first.StandardError() < 1e-15);
    CHECK(first.Ess() <= static_cast<double>(n));
  }
}

TEST_CASE("Weights within 1e-6 of each other: the standard error against a two-pass oracle") {
  // 1/ESS - 1/N is ~1e-17 here, below the rounding of sum w^2 / (sum w)^2 - 1/N.
  for (const int n : {100, 1000, 100000}) {
    INFO("N = " << n);
    std::vector<double> log_w(n);
    random::ItemRng rng(/*seed=*/8, /*stream=*/0, /*index=*/static_cast<uint64_t>(n));
    for (double& v : log_w) v = std::log1p(1e-6 * rng.Uniform()) - 3.2;
    const double oracle = TwoPassStandardError(log_w);
    WeightStats stats;
    stats.AddAll(log_w);
    CHECK(stats.StandardError() == Approx(oracle).epsilon(1e-6));
    CHECK(stats.Ess() <= static_cast<double>(n));
    WeightStats first, second;
    first.AddAll(std::vector<double>(log_w.begin(), log_w.begin() + n / 3));
    second.AddAll(std::vector<double>(log_w.begin() + n / 3, log_w.end()));
    first.Merge(second);
    CHECK(first.StandardError() == Approx(oracle).epsilon(1e-6));
  }
}

TEST_CASE("One weight gives an undefined (+inf) standard error, two give a defined one") {
  // sqrt(1/ESS - 1/N) is 0 at N = 1, but one weight says nothing about their spread.
  WeightStats single;
  single.Add(-2.0);
  CHECK(single.StandardError() == kInf);
  const auto parts = WeightStats::FromParts(1, -2.0, -4.0);
  REQUIRE(parts.ok());
  CHECK(parts->StandardError() == kInf);
  WeightStats two = single;
  two.Add(-2.0);
  CHECK(two.StandardError() == 0.0);
  WeightStats merged = single;
  merged.Merge(single);
  CHECK(merged.StandardError() == 0.0);
}

TEST_CASE("Moderate weights match the direct computation") {
  const std::vector<double> log_w = ModerateLogWeights(5000, 0);
  const Direct direct = DirectStats(log_w);
  WeightStats stats;
  stats.AddAll(log_w);
  CHECK(stats.count() == 5000);
  CHECK(stats.log_sum_w() == Approx(direct.log_sum_w).epsilon(1e-12));
  CHECK(stats.log_sum_w2() == Approx(direct.log_sum_w2).epsilon(1e-12));
  CHECK(stats.LogMean() == Approx(direct.log_sum_w - std::log(5000.0)).epsilon(1e-12));
  CHECK(stats.Ess() == Approx(direct.ess).epsilon(1e-12));
  CHECK(stats.Ess() == Approx(std::exp(2 * stats.log_sum_w() - stats.log_sum_w2())).epsilon(1e-12));
  CHECK(stats.StandardError() == Approx(direct.se).epsilon(1e-12));
  CHECK(stats.Ess() > 1.0);
  CHECK(stats.Ess() < 5000.0);
}

TEST_CASE("Order does not matter: increasing (rescale every step) vs decreasing") {
  std::vector<double> log_w = ModerateLogWeights(2000, 1);
  std::sort(log_w.begin(), log_w.end());
  WeightStats increasing;
  increasing.AddAll(log_w);
  std::reverse(log_w.begin(), log_w.end());
  WeightStats decreasing;
  decreasing.AddAll(log_w);
  CheckClose(increasing, decreasing, 1e-12);
}

TEST_CASE("AddAll overloads equal repeated Add") {
  const std::vector<double> log_w = ModerateLogWeights(100, 2);
  WeightStats one_by_one, from_vector, from_eigen, from_block;
  for (double v : log_w) one_by_one.Add(v);
  from_vector.AddAll(log_w);
  const Eigen::VectorXd eigen = Eigen::Map<const Eigen::VectorXd>(log_w.data(), 100);
  from_eigen.AddAll(eigen);
  from_block.AddAll(eigen.head(40));
  from_block.AddAll(eigen.tail(60));
  CheckClose(from_vector, one_by_one, 0.0);
  CheckClose(from_eigen, one_by_one, 0.0);
  CheckClose(from_block, one_by_one, 0.0);
}

TEST_CASE("Merging two halves equals the whole") {
  const std::vector<double> log_w = ModerateLogWeights(3001, 3);
  WeightStats whole, first, second;
  whole.AddAll(log_w);
  for (size_t i = 0; i < log_w.size(); ++i) (i < 1200 ? first : second).Add(log_w[i]);
  WeightStats merged = first;
  merged.Merge(second);
  CheckClose(merged, whole, 1e-12);
  WeightStats reversed = second;  // The half with the other maximum merged the other way.
  reversed.Merge(first);
  CheckClose(reversed, whole, 1e-12);
  // Merging with empty statistics changes nothing.
  WeightStats empty;
  empty.Merge(whole);
  CheckClose(empty, whole, 0.0);
  merged.Merge(WeightStats());
  CheckClose(merged, whole, 1e-12);
}

TEST_CASE("FromParts round-trips and merges shards exactly") {
  const std::vector<double> log_w = ModerateLogWeights(4000, 4);
  WeightStats whole, a, b;
  whole.AddAll(log_w);
  for (size_t i = 0; i < log_w.size(); ++i) (i % 3 == 0 ? a : b).Add(log_w[i]);
  const auto a_parts = WeightStats::FromParts(a.count(), a.log_sum_w(), a.log_sum_w2());
  const auto b_parts = WeightStats::FromParts(b.count(), b.log_sum_w(), b.log_sum_w2());
  REQUIRE(a_parts.ok());
  REQUIRE(b_parts.ok());
  CheckClose(*a_parts, a, 1e-14);
  WeightStats merged = *a_parts;
  merged.Merge(*b_parts);
  CheckClose(merged, whole, 1e-12);
  // Adding more weights after FromParts.
  WeightStats continued = *a_parts;
  for (size_t i = 0; i < log_w.size(); ++i) {
    if (i % 3 != 0) continued.Add(log_w[i]);
  }
  CheckClose(continued, whole, 1e-12);

  const auto equal = WeightStats::FromParts(10, std::log(10.0), std::log(10.0));  // ESS = N
  REQUIRE(equal.ok());
  CHECK(equal->Ess() == Approx(10.0).epsilon(1e-14));
  const auto empty = WeightStats::FromParts(0, -kInf, -kInf);
  REQUIRE(empty.ok());
  CHECK(empty->count() == 0);
  const auto zeros = WeightStats::FromParts(4, -kInf, -kInf);
  REQUIRE(zeros.ok());
  CHECK(zeros->LogMean() == -kInf);
}

void CheckInvalid(const absl::StatusOr<WeightStats>& result, const std::string& fragment) {
  INFO(result.status().ToString());
  CHECK(result.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(result.status().message()).find(fragment) != std::string::npos);
}

TEST_CASE("FromParts rejects impossible parts") {
  CheckInvalid(WeightStats::FromParts(-1, 0.0, 0.0), "count must be >= 0");
  CheckInvalid(WeightStats::FromParts(2, std::nan(""), 0.0), "NaN or +inf");
  CheckInvalid(WeightStats::FromParts(2, 0.0, kInf), "NaN or +inf");
  CheckInvalid(WeightStats::FromParts(2, -kInf, 0.0), "both be -inf");
  CheckInvalid(WeightStats::FromParts(0, 1.0, 2.0), "count 0");
  CheckInvalid(WeightStats::FromParts(2, 0.0, -10.0), "outside [1, count]");  // ESS = e^10 > 2
  CheckInvalid(WeightStats::FromParts(2, 0.0, 1.0), "outside [1, count]");    // ESS = e^-1 < 1
}

TEST_CASE("Extreme log weights (+-1000, +-1e300) neither overflow nor underflow") {
  const std::vector<double> log_w = ModerateLogWeights(1000, 5);
  for (double offset : {1000.0, -1000.0, 1e5, -1e5}) {
    INFO("offset " << offset);
    // v + offset rounds; (v + offset) - offset is exact, so the direct computation sees the same
    // weights as WeightStats.
    std::vector<double> rounded;
    WeightStats stats;
    for (double v : log_w) {
      stats.Add(v + offset);
      rounded.push_back((v + offset) - offset);
    }
    const Direct direct = DirectStats(rounded);
    CHECK(stats.log_sum_w() == Approx(direct.log_sum_w + offset).epsilon(1e-12));
    CHECK(stats.log_sum_w2() == Approx(direct.log_sum_w2 + 2 * offset).epsilon(1e-12));
    CHECK(stats.Ess() == Approx(direct.ess).epsilon(1e-12));
    CHECK(stats.StandardError() == Approx(direct.se).epsilon(1e-12));
    const auto parts = WeightStats::FromParts(stats.count(), stats.log_sum_w(), stats.log_sum_w2());
    REQUIRE(parts.ok());
    CHECK(parts->Ess() == Approx(direct.ess).epsilon(1e-10));
  }
  // Half the weights at exp(1000), half at exp(-1000): the small ones vanish relative to the big.
  WeightStats mixed;
  for (int i = 0; i < 10; ++i) {
    mixed.Add(-1000.0);
    mixed.Add(1000.0);
  }
  CHECK(mixed.log_sum_w() == Approx(1000.0 + std::log(10.0)).epsilon(1e-15));
  CHECK(mixed.LogMean() == Approx(1000.0 - std::log(2.0)).epsilon(1e-15));
  CHECK(mixed.Ess() == Approx(10.0).epsilon(1e-14));
  CHECK(mixed.StandardError() == Approx(std::sqrt(0.1 - 0.05)).epsilon(1e-14));
  WeightStats huge;
  huge.Add(1e300);
  huge.Add(1e300);
  huge.Add(-1e300);
  CHECK(huge.LogMean() == 1e300);
  CHECK(huge.Ess() == 2.0);
}

TEST_CASE("Zero, NaN and infinite weights") {
  WeightStats zeros;
  zeros.AddAll(std::vector<double>{-kInf, -kInf});
  CHECK(zeros.count() == 2);
  CHECK(zeros.LogMean() == -kInf);
  CHECK(zeros.Ess() == 0.0);
  CHECK(zeros.StandardError() == kInf);

  WeightStats some_zero;
  some_zero.AddAll(std::vector<double>{-kInf, 0.0, std::log(3.0)});
  CHECK(some_zero.LogMean() == Approx(std::log(4.0 / 3.0)).epsilon(1e-15));
  CHECK(some_zero.Ess() == Approx(16.0 / 10.0).epsilon(1e-15));

  WeightStats with_nan;
  with_nan.AddAll(std::vector<double>{0.0, std::nan(""), kInf});
  CHECK(std::isnan(with_nan.LogMean()));
  CHECK(std::isnan(with_nan.Ess()));
  CHECK(std::isnan(with_nan.StandardError()));

  WeightStats with_inf;
  with_inf.AddAll(std::vector<double>{0.0, kInf, 1.0});
  CHECK(with_inf.log_sum_w() == kInf);
  CHECK(with_inf.log_sum_w2() == kInf);
  CHECK(with_inf.LogMean() == kInf);
  CHECK(std::isnan(with_inf.Ess()));

  WeightStats merged = some_zero;
  merged.Merge(with_inf);
  CHECK(merged.LogMean() == kInf);
  merged.Merge(with_nan);
  CHECK(std::isnan(merged.LogMean()));
  merged.Merge(with_inf);
  CHECK(std::isnan(merged.LogMean()));  // NaN wins over +inf.
  CHECK(merged.count() == 12);
}

}  // namespace
}  // namespace maas::math
