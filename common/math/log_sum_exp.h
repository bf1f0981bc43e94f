// Log-space reductions: log(exp(a) + exp(b)), log(sum exp(x_i)) and log(mean exp(x_i)), computed
// without overflow or underflow as m + log(sum exp(x_i - m)) with m = max x_i.
//
// Edge cases (each is tested):
//   LogAddExp(a, b)      -inf if both are -inf; +inf if either is +inf; NaN if either is NaN.
//   LogSumExp(x)         empty -> -inf (the log of an empty sum, 0);
//                        all -inf -> -inf; any +inf -> +inf; any NaN -> NaN (NaN wins over +inf);
//                        huge finite values (e.g. 1e308) neither overflow nor lose precision.
//   LogMeanExp(x)        LogSumExp(x) - log(n); empty -> NaN (the mean of nothing is undefined);
//                        otherwise the same cases as LogSumExp.
//
// Each function takes any Eigen vector expression (VectorXd, a block, a row, ...), an
// absl::Span<const double> or anything convertible to one (std::vector<double>, a C array).
#ifndef MAAS_COMMON_MATH_LOG_SUM_EXP_H_
#define MAAS_COMMON_MATH_LOG_SUM_EXP_H_

#include <Eigen/Core>

#include "absl/types/span.h"

namespace maas::math {

// log(exp(a) + exp(b)).
double LogAddExp(double a, double b);

// log(sum_i exp(values[i])).
double LogSumExp(absl::Span<const double> values);
double LogSumExp(const Eigen::Ref<const Eigen::VectorXd>& values);

// log((1/n) sum_i exp(values[i])), n = values.size().
double LogMeanExp(absl::Span<const double> values);
double LogMeanExp(const Eigen::Ref<const Eigen::VectorXd>& values);

// Eigen expressions also convert to absl::Span (they have data() and size()), so an Eigen argument
// would be ambiguous between the two overloads above; these templates take every Eigen vector
// expression and forward it to the Eigen::Ref overload.
template <typename Derived>
double LogSumExp(const Eigen::MatrixBase<Derived>& values) {
  return LogSumExp(Eigen::Ref<const Eigen::VectorXd>(values));
}
template <typename Derived>
double LogMeanExp(const Eigen::MatrixBase<Derived>& values) {
  return LogMeanExp(Eigen::Ref<const Eigen::VectorXd>(values));
}

}  // namespace maas::math

#endif  // MAAS_COMMON_MATH_LOG_SUM_EXP_H_
