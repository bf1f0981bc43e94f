#include "common/math/pareto_k.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "common/math/log_sum_exp.h"

namespace maas::math {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Log weights closer than kRoundingTolerance * max(1, |largest log weight|) count as equal: a log
// weight is a sum of terms, each rounded, so weights that are equal in exact arithmetic (e.g. an
// exact-posterior proposal: every weight is p(x)) differ by a few ulps of the terms, up to ~35
// ulps of the result on ppca and factor analysis. 1024 ulps leaves a wide margin and is still a
// relative weight difference of 2.3e-13, immaterial to the estimate.
constexpr double kRoundingTolerance = 1024 * std::numeric_limits<double>::epsilon();

// Zhang & Stephens (2009) estimate of the GPD shape k for exceedances x (sorted ascending, > 0),
// with the weak prior towards 0.5 of arviz/loo.
double FitGeneralizedParetoShape(const std::vector<double>& x) {
  const std::size_t n = x.size();
  const std::size_t m = 30 + static_cast<std::size_t>(std::sqrt(static_cast<double>(n)));
  const double x_max = x.back();
  const double quartile = x[static_cast<std::size_t>(static_cast<double>(n) / 4.0 + 0.5) - 1];
  double x_mean = 0.0;
  for (double xi : x) x_mean += xi;
  x_mean /= static_cast<double>(n);
  std::vector<double> b(m), log_lik(m);
  for (std::size_t j = 0; j < m; ++j) {
    b[j] = 1.0 / x_max + (1.0 - std::sqrt(static_cast<double>(m) / (j + 0.5))) / (3.0 * quartile);
    double k = 0.0;
    for (double xi : x) k += std::log1p(-b[j] * xi);
    k /= static_cast<double>(n);
    // -b / k -> 1 / mean(x) as b -> 0 (the exponential limit; b is exactly 0 e.g. for 100..120
    // equal exceedances, where j = 2 of m = 40 gives sqrt(m / (j + 0.5)) = 4).
    const double scale = k != 0.0 ? -b[j] / k : 1.0 / x_mean;
    log_lik[j] = static_cast<double>(n) * (std::log(scale) - k - 1.0);
    // A candidate whose profile likelihood overflows (exceedances over hundreds of orders of
    // magnitude) gets no weight.
    if (!std::isfinite(log_lik[j])) log_lik[j] = -kInf;
  }
  // Posterior weights w_j = exp(log_lik_j - logsumexp(log_lik)); drop negligible ones as arviz
  // does, renormalize, and take the posterior mean of b.
  const double log_total = LogSumExp(log_lik);
  if (!std::isfinite(log_total)) return kInf;  // No candidate could be evaluated: no fit.
  double weight_sum = 0.0, b_post = 0.0;
  for (std::size_t j = 0; j < m; ++j) {
    const double w = std::exp(log_lik[j] - log_total);
    if (!(w >= 10 * std::numeric_limits<double>::epsilon())) continue;
    weight_sum += w;
    b_post += w * b[j];
  }
  b_post /= weight_sum;
  double k = 0.0;
  for (double xi : x) k += std::log1p(-b_post * xi);
  k /= static_cast<double>(n);
  return (static_cast<double>(n) * k + 10.0 * 0.5) / (static_cast<double>(n) + 10.0);
}

size_t TailSize(double n, double r_eff) {
  return static_cast<size_t>(std::ceil(std::min(0.2 * n, 3.0 * std::sqrt(n / r_eff))));
}

// The fit on `sorted` (ascending, shifted so the max is 0): the largest values of `total` log
// weights whose largest was `max` before the shift; REQUIRES sorted.size() >= min(total, TailSize
// + 1).
double FitTail(const std::vector<double>& sorted, double max, std::size_t total, double r_eff) {
  const std::size_t size = sorted.size();
  const std::size_t tail = TailSize(static_cast<double>(total), r_eff);
  if (tail + 1 > total) return kInf;
  // Log weights within rounding of each other are equal (kRoundingTolerance).
  const double rounding = kRoundingTolerance * std::max(1.0, std::abs(max));
  // The tail and its cutoff all equal the largest weight: a flat, bounded tail (all weights
  // equal, or an atom at the largest): the limit k -> -inf.
  if (-sorted[size - 1 - tail] <= rounding) return -kInf;
  const double cutoff =
      std::max(sorted[size - 1 - tail], std::log(std::numeric_limits<double>::min()));
  const double exp_cutoff = std::exp(cutoff);
  std::vector<double> exceedances;
  for (double v : sorted) {
    if (v - cutoff > rounding) exceedances.push_back(std::exp(v) - exp_cutoff);
  }
  if (exceedances.size() <= 4) return kInf;
  return FitGeneralizedParetoShape(exceedances);  // Already ascending.
}

double ParetoKHatImpl(const double* data, std::size_t size, double r_eff) {
  if (!(r_eff > 0.0)) return kNaN;
  double max = -kInf;
  for (std::size_t i = 0; i < size; ++i) {
    if (std::isnan(data[i])) return kNaN;
    max = std::max(max, data[i]);
  }
  if (max == kInf) return kInf;
  if (max == -kInf) return kInf;  // Empty or all weights zero: nothing to fit.
  if (std::all_of(data, data + size, [max](double v) { return v == max; })) return -kInf;
  std::vector<double> sorted(data, data + size);
  for (double& v : sorted) v -= max;
  std::sort(sorted.begin(), sorted.end());
  return FitTail(sorted, max, size, r_eff);
}

}  // namespace

double ParetoKHat(absl::Span<const double> log_weights, double r_eff) {
  return ParetoKHatImpl(log_weights.data(), log_weights.size(), r_eff);
}

double ParetoKHat(const Eigen::Ref<const Eigen::VectorXd>& log_weights, double r_eff) {
  return ParetoKHatImpl(log_weights.data(), static_cast<std::size_t>(log_weights.size()), r_eff);
}

}  // namespace maas::math

namespace maas::math {

std::size_t ParetoTailSize(int64_t total_count, double r_eff) {
  if (total_count <= 0 || !(r_eff > 0.0)) return 0;
  return std::min<std::size_t>(static_cast<std::size_t>(total_count),
                               TailSize(static_cast<double>(total_count), r_eff) + 1);
}

double ParetoKHatFromLargest(absl::Span<const double> largest, int64_t total_count, double r_eff) {
  if (!(r_eff > 0.0) || total_count < 0) return kNaN;
  if (largest.size() < ParetoTailSize(total_count, r_eff)) return kNaN;
  if (static_cast<int64_t>(largest.size()) >= total_count) {
    return ParetoKHatImpl(largest.data(), largest.size(), r_eff);
  }
  double max = -kInf;
  for (double v : largest) {
    if (std::isnan(v)) return kNaN;
    max = std::max(max, v);
  }
  if (max == kInf || max == -kInf) return kInf;
  std::vector<double> sorted(largest.begin(), largest.end());
  for (double& v : sorted) v -= max;
  std::sort(sorted.begin(), sorted.end());
  return FitTail(sorted, max, static_cast<std::size_t>(total_count), r_eff);
}

}  // namespace maas::math
