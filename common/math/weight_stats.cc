#include "common/math/weight_stats.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace maas::math {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kPartsSlack = 1e-6;  // Tolerated rounding in log ESS when validating parts.

}  // namespace

absl::StatusOr<WeightStats> WeightStats::FromParts(int64_t count, double log_sum_w,
                                                   double log_sum_w2) {
  const auto parts = [&] {
    return absl::StrCat("(count=", count, ", log_sum_w=", log_sum_w, ", log_sum_w2=", log_sum_w2,
                        ")");
  };
  if (count < 0) {
    return absl::InvalidArgumentError(absl::StrCat("WeightStats: count must be >= 0 ", parts()));
  }
  if (std::isnan(log_sum_w) || std::isnan(log_sum_w2) || log_sum_w == kInf || log_sum_w2 == kInf) {
    return absl::InvalidArgumentError(
        absl::StrCat("WeightStats: log_sum_w and log_sum_w2 must not be NaN or +inf ", parts()));
  }
  if ((log_sum_w == -kInf) != (log_sum_w2 == -kInf)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "WeightStats: log_sum_w and log_sum_w2 must both be -inf (all weights zero) or both "
        "finite ",
        parts()));
  }
  if (count == 0 && log_sum_w != -kInf) {
    return absl::InvalidArgumentError(
        absl::StrCat("WeightStats: with count 0, log_sum_w and log_sum_w2 must be -inf ", parts()));
  }
  WeightStats stats;
  stats.count_ = count;
  if (log_sum_w == -kInf) return stats;
  // log ESS = 2 log_sum_w - log_sum_w2 must lie in [0, log count].
  const double log_ess = 2.0 * log_sum_w - log_sum_w2;
  if (!(log_ess >= -kPartsSlack) ||
      !(log_ess <= std::log(static_cast<double>(count)) + kPartsSlack)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "WeightStats: inconsistent parts, the implied effective sample size exp(2 log_sum_w - "
        "log_sum_w2) = ",
        std::exp(log_ess), " is outside [1, count] ", parts()));
  }
  // Scaled by the sum: S = 1, sum w^2 = 1 / ESS, M2 = sum w^2 - S^2 / N (the parts carry no more
  // precision than that difference).
  const double n = static_cast<double>(count);
  stats.shift_ = log_sum_w;
  stats.sum_w_ = 1.0;
  stats.mean_ = 1.0 / n;
  stats.m2_ = std::max(0.0, std::exp(-log_ess) - 1.0 / n);
  return stats;
}

void WeightStats::Merge(const WeightStats& other) {
  const int64_t own = count_;
  count_ += other.count_;
  if (std::isnan(other.special_) || (other.special_ == kInf && !std::isnan(special_))) {
    special_ = other.special_;
  }
  if (other.count_ == 0) return;
  if (own == 0) {
    shift_ = other.shift_;
    sum_w_ = other.sum_w_;
    mean_ = other.mean_;
    m2_ = other.m2_;
    return;
  }
  // Both sides at the larger shift (a side of zero weights only has zero moments at any shift).
  double other_sum = other.sum_w_, other_mean = other.mean_, other_m2 = other.m2_;
  if (other.sum_w_ > 0.0 && sum_w_ > 0.0) {
    if (other.shift_ > shift_) {
      Rescale(std::exp(shift_ - other.shift_));
      shift_ = other.shift_;
    } else {
      const double factor = std::exp(other.shift_ - shift_);
      other_sum *= factor;
      other_mean *= factor;
      other_m2 *= factor * factor;
    }
  } else if (sum_w_ == 0.0) {
    shift_ = other.shift_;
  }
  // Chan et al.'s pairwise update of the centred second moment.
  const double na = static_cast<double>(own);
  const double nb = static_cast<double>(other.count_);
  const double n = na + nb;
  const double delta = other_mean - mean_;
  m2_ += other_m2 + delta * delta * (na * nb / n);
  mean_ += delta * (nb / n);
  sum_w_ += other_sum;
}

double WeightStats::log_sum_w() const {
  if (special_ != 0.0) return special_;  // NaN or +inf.
  if (sum_w_ == 0.0) return -kInf;
  return shift_ + std::log(sum_w_);
}

double WeightStats::log_sum_w2() const {
  if (special_ != 0.0) return special_;
  if (sum_w_ == 0.0) return -kInf;
  return 2.0 * shift_ + std::log(m2_ + sum_w_ * sum_w_ / static_cast<double>(count_));
}

double WeightStats::LogMean() const {
  if (count_ == 0) return kNaN;
  return log_sum_w() - std::log(static_cast<double>(count_));
}

double WeightStats::Ess() const {
  if (count_ == 0) return 0.0;
  if (special_ != 0.0) return kNaN;
  if (sum_w_ == 0.0) return 0.0;
  // In [1, N]: <= N as M2 >= 0; >= 1 (Cauchy-Schwarz) but for rounding.
  return std::max(1.0, 1.0 / (RelativeVariance() + 1.0 / static_cast<double>(count_)));
}

double WeightStats::StandardError() const {
  if (count_ == 0 || special_ != 0.0) return kNaN;
  if (sum_w_ == 0.0 || count_ < 2) return kInf;  // All weights zero, or one weight: no spread.
  return std::sqrt(m2_) / sum_w_;
}

}  // namespace maas::math
