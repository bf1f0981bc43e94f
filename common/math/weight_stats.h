// Running statistics of importance weights kept in log space, mergeable across shards.
//
// For weights w_i = exp(log_w_i), i = 1..N:
//   log_sum_w   = log sum w_i          log_sum_w2 = log sum w_i^2
//   LogMean     = log Z_hat = log_sum_w - log N
//   Ess         = (sum w)^2 / sum w^2 = exp(2 log_sum_w - log_sum_w2), in [1, N]
//   StandardError = sqrt(max(0, 1/ESS - 1/N)), the delta-method standard error of log Z_hat;
//                   +inf for N = 1 (one weight says nothing about their spread: undefined).
// The sums are held as a shift m (the largest log weight seen) and the scaled sums
// sum exp(log_w_i - m) and sum exp(2 (log_w_i - m)), so log weights of +-1e300 neither overflow nor
// underflow, and equal weights give ESS = N and a standard error of 0 exactly.
//
// A standard error of 0 means the weights did not vary among the draws, not that log Z_hat is
// exact (e.g. every draw of a discrete latent on one component).
//
// Edge cases: count() == 0 -> LogMean() NaN, Ess() 0, StandardError() NaN. count() == 1 ->
// StandardError() +inf. All weights zero (every log_w = -inf) -> LogMean() -inf, Ess() 0,
// StandardError() +inf. A NaN log weight makes every statistic NaN; a +inf log weight (and no NaN)
// makes log_sum_w, log_sum_w2 and LogMean +inf and Ess, StandardError NaN.
//
//   WeightStats stats;
//   for (double log_w : log_weights) stats.Add(log_w);
//   shard_total.Merge(stats);
//
// Thread safety: none (a value type; merge per-thread instances).
#ifndef MAAS_COMMON_MATH_WEIGHT_STATS_H_
#define MAAS_COMMON_MATH_WEIGHT_STATS_H_

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <limits>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace maas::math {

class WeightStats {
 public:
  // No weights: count 0, log_sum_w = log_sum_w2 = -inf.
  WeightStats() = default;

  // Rebuilds the statistics of a shard from its mergeable parts, e.g. received from another
  // replica. Returns INVALID_ARGUMENT if count < 0; if a part is NaN or +inf; if count == 0 and a
  // part is not -inf; if exactly one part is -inf; or if the parts are inconsistent with count
  // (the implied ESS is outside [1, count] by more than a relative 1e-6).
  static absl::StatusOr<WeightStats> FromParts(int64_t count, double log_sum_w, double log_sum_w2);

  // Adds one weight given as its logarithm.
  void Add(double log_w) {
    ++count_;
    if (!(log_w > shift_)) {  // The common case, and -inf / NaN.
      if (std::isnan(log_w)) {
        special_ = log_w;
        return;
      }
      if (log_w == -kInf) return;
      const double scaled = std::exp(log_w - shift_);
      sum_w_ += scaled;
      sum_w2_ += scaled * scaled;
      return;
    }
    if (log_w == kInf) {
      if (!std::isnan(special_)) special_ = kInf;
      return;
    }
    // New largest weight: rescale the sums to the new shift.
    const double rescale = std::exp(shift_ - log_w);
    sum_w_ = sum_w_ * rescale + 1.0;
    sum_w2_ = sum_w2_ * rescale * rescale + 1.0;
    shift_ = log_w;
  }

  // Adds each log weight in order (the same result as calling Add for each).
  void AddAll(absl::Span<const double> log_w) {
    for (double v : log_w) Add(v);
  }
  void AddAll(const Eigen::Ref<const Eigen::VectorXd>& log_w) {
    for (Eigen::Index i = 0; i < log_w.size(); ++i) Add(log_w[i]);
  }
  template <typename Derived>
  void AddAll(const Eigen::MatrixBase<Derived>& log_w) {  // Disambiguates Eigen arguments.
    AddAll(Eigen::Ref<const Eigen::VectorXd>(log_w));
  }

  // Adds the weights summarized by `other` (the statistics of the union of both sets).
  void Merge(const WeightStats& other);

  int64_t count() const { return count_; }
  double log_sum_w() const;
  double log_sum_w2() const;
  double LogMean() const;
  double Ess() const;
  double StandardError() const;

 private:
  static constexpr double kInf = std::numeric_limits<double>::infinity();

  int64_t count_ = 0;
  double shift_ = -kInf;  // The largest finite log weight seen (or the shift from FromParts).
  double sum_w_ = 0.0;    // sum exp(log_w - shift_) over finite log weights.
  double sum_w2_ = 0.0;   // sum exp(2 (log_w - shift_)).
  double special_ = 0.0;  // 0 if all log weights were finite or -inf; else NaN or +inf.
};

}  // namespace maas::math

#endif  // MAAS_COMMON_MATH_WEIGHT_STATS_H_
