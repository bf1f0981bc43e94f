// Pareto k-hat: the PSIS tail diagnostic of importance weights (Vehtari, Simpson, Gelman, Yao,
// Gabry, "Pareto Smoothed Importance Sampling"), as in arviz `_psislw`/`_gpdfit` and Pyro's
// `psis_diagnostic`.
//
// Steps: subtract the max log weight; tail size M = ceil(min(0.2 N, 3 sqrt(N / r_eff))); the cutoff
// is the (M+1)-th largest log weight, floored at log(DBL_MIN); fit a generalized Pareto
// distribution to exp(tail) - exp(cutoff) for the log weights strictly above the cutoff with the
// Zhang & Stephens (2009) estimator (m = 30 + floor(sqrt(n)) candidate b values, profile
// log-likelihood weights computed stably, posterior mean of b), then shrink with the weak prior k
// <- (n k + 10 * 0.5) / (n + 10).
//
// Reading k-hat: k < 0 bounded weights; k < 0.5 (or min(1 - 1/log10(N), 0.7)) reliable;
// 0.5..0.7 usable; > 0.7 the standard error of the estimate is not trustworthy; >= 1 the mean of
// the weights does not exist.
//
// Rounding: log weights closer than 1024 ulps of max(1, |largest log weight|) count as equal, so
// weights that are equal in exact arithmetic but were computed with rounding behave as equal ones
// (the cutoff is then not exceeded).
//
// Edge cases: NaN if any log weight is NaN or r_eff is not positive; +inf if a log weight is +inf;
// -inf if the M + 1 largest log weights are equal and finite (all weights equal, e.g. an
// exact-posterior proposal, or an atom at the largest weight: bounded, the best case); otherwise
// +inf when at most 4 log weights are strictly above the cutoff (too few for the fit, as arviz;
// this includes empty input and all weights zero) or when no candidate of the fit can be
// evaluated. Never NaN otherwise. -inf log weights (zero weights) are allowed.
#ifndef MAAS_COMMON_MATH_PARETO_K_H_
#define MAAS_COMMON_MATH_PARETO_K_H_

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"

namespace maas::math {

double ParetoKHat(absl::Span<const double> log_weights, double r_eff = 1.0);
double ParetoKHat(const Eigen::Ref<const Eigen::VectorXd>& log_weights, double r_eff = 1.0);
template <typename Derived>
double ParetoKHat(const Eigen::MatrixBase<Derived>& log_weights, double r_eff = 1.0) {
  return ParetoKHat(Eigen::Ref<const Eigen::VectorXd>(log_weights), r_eff);
}

// How many of the largest log weights ParetoKHatFromLargest needs for `total_count` weights:
// min(total_count, M + 1) with M the tail size above (0 for total_count <= 0).
std::size_t ParetoTailSize(int64_t total_count, double r_eff = 1.0);

// The same k-hat as ParetoKHat over `total_count` log weights, computed from only the largest of
// them (`largest`, any order, at least ParetoTailSize(total_count) values): what a stream needs to
// keep instead of every weight. With fewer values, or a negative count, NaN. Constant weights are
// recognised from the tail (-inf as ParetoKHat).
double ParetoKHatFromLargest(absl::Span<const double> largest, int64_t total_count,
                             double r_eff = 1.0);

}  // namespace maas::math

#endif  // MAAS_COMMON_MATH_PARETO_K_H_
