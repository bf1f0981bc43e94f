// Running statistics of importance weights kept in log space, mergeable across shards.
//
// For weights w_i = exp(log_w_i), i = 1..N:
//   log_sum_w   = log sum w_i          log_sum_w2 = log sum w_i^2
//   LogMean     = log Z_hat = log_sum_w - log N
//   Ess         = (sum w)^2 / sum w^2 = exp(2 log_sum_w - log_sum_w2), in [1, N]
//   StandardError = sqrt(max(0, 1/ESS - 1/N)), the delta-method standard error of log Z_hat;
//                   +inf for N = 1 (one weight says nothing about their spread: undefined).
// The sums are held as a shift m (the largest log weight seen), the scaled sum S = sum exp(log_w_i
// - m), and the scaled weights' running mean and centred second moment M2 = sum (w_i - mean)^2
// (Welford's update; Chan's merge), so log weights of +-1e300 neither overflow nor underflow, equal
// weights give ESS = N and a standard error of 0 exactly, and weights equal but for rounding give a
// standard error of rounding's size: StandardError = sqrt(M2) / S and ESS = 1 / (M2 / S^2 + 1 / N)
// <= N, where sqrt(1/ESS - 1/N) of the plain sums of w and w^2 read ~sqrt(eps / N) (1e-9 for N =
// 100) and ESS could pass N. log_sum_w2 = log(M2 + S^2 / N) + 2 m.
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
      AddScaled(log_w == -kInf ? 0.0 : std::exp(log_w - shift_));
      return;
    }
    if (log_w == kInf) {
      if (!std::isnan(special_)) special_ = kInf;
      return;
    }
    // New largest weight: rescale to the new shift (by 0 from no positive weight yet).
    Rescale(std::exp(shift_ - log_w));
    shift_ = log_w;
    AddScaled(1.0);
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

  // Welford's update with the scaled weight x = exp(log_w - shift_) (0 for a zero weight), count_
  // already counting it. (A NaN or +inf weight counts without entering the moments; every
  // statistic is then NaN or +inf whatever they hold.)
  void AddScaled(double x) {
    sum_w_ += x;
    const double delta = x - mean_;
    mean_ += delta / static_cast<double>(count_);
    m2_ += delta * (x - mean_);
  }
  // The scaled moments at a shift larger by -log(factor).
  void Rescale(double factor) {
    sum_w_ *= factor;
    mean_ *= factor;
    m2_ *= factor * factor;
  }
  // M2 / S^2 = 1/ESS - 1/N, the squared standard error (REQUIRES: sum_w_ > 0).
  double RelativeVariance() const { return m2_ / (sum_w_ * sum_w_); }

  int64_t count_ = 0;
  double shift_ = -kInf;  // The largest finite log weight seen (or the shift from FromParts).
  double sum_w_ = 0.0;    // sum exp(log_w - shift_) over finite log weights.
  double mean_ = 0.0;     // sum_w_ / count_, as Welford's running mean.
  double m2_ = 0.0;       // sum (exp(log_w - shift_) - mean)^2 over finite and -inf log weights.
  double special_ = 0.0;  // 0 if all log weights were finite or -inf; else NaN or +inf.
};

}  // namespace maas::math

#endif  // MAAS_COMMON_MATH_WEIGHT_STATS_H_
