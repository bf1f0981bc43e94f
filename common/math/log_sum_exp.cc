#include "common/math/log_sum_exp.h"

#include <cmath>
#include <cstddef>
#include <limits>

namespace maas::math {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Two passes over a contiguous array: the max (with NaN and +inf detection), then the shifted sum.
double LogSumExpImpl(const double* values, std::size_t n) {
  double max = -kInf;
  bool has_nan = false;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = values[i];
    if (std::isnan(v)) has_nan = true;
    if (v > max) max = v;
  }
  if (has_nan) return kNaN;
  if (max == kInf) return kInf;
  if (max == -kInf) return -kInf;  // Empty, or every value is -inf.
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) sum += std::exp(values[i] - max);
  return max + std::log(sum);  // sum >= 1: the max term contributes exp(0).
}

double LogMeanExpImpl(const double* values, std::size_t n) {
  if (n == 0) return kNaN;
  return LogSumExpImpl(values, n) - std::log(static_cast<double>(n));
}

}  // namespace

double LogAddExp(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return kNaN;
  const double max = a > b ? a : b;
  const double min = a > b ? b : a;
  if (max == kInf) return kInf;
  if (min == -kInf) return max;  // Also covers both -inf.
  return max + std::log1p(std::exp(min - max));
}

double LogSumExp(absl::Span<const double> values) {
  return LogSumExpImpl(values.data(), values.size());
}

double LogSumExp(const Eigen::Ref<const Eigen::VectorXd>& values) {
  return LogSumExpImpl(values.data(), static_cast<std::size_t>(values.size()));
}

double LogMeanExp(absl::Span<const double> values) {
  return LogMeanExpImpl(values.data(), values.size());
}

double LogMeanExp(const Eigen::Ref<const Eigen::VectorXd>& values) {
  return LogMeanExpImpl(values.data(), static_cast<std::size_t>(values.size()));
}

}  // namespace maas::math
