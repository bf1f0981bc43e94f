#include "services/discriminative/core/numpy_compat.h"

#include <cmath>
#include <limits>
#include <vector>

#include "services/discriminative/core/exp_simd.h"

namespace maas::discriminative {

namespace {

// np.sum's pairwise order over the n values at(0), ..., at(n - 1), from `first`.
template <typename At>
double PairwiseSum(const At& at, size_t first, size_t n) {
  if (n < 8) {
    double r = 0.0;
    for (size_t i = 0; i < n; ++i) r += at(first + i);
    return r;
  }
  if (n <= 128) {
    double r[8];
    for (size_t k = 0; k < 8; ++k) r[k] = at(first + k);
    size_t i = 8;
    for (; i < n - n % 8; i += 8) {
      for (size_t k = 0; k < 8; ++k) r[k] += at(first + i + k);
    }
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += at(first + i);
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return PairwiseSum(at, first, n2) + PairwiseSum(at, first + n2, n - n2);
}

}  // namespace

double NumpySum(const double* a, size_t n) {
  return PairwiseSum([a](size_t i) { return a[i]; }, 0, n);
}

double NumpySumPlus(const double* a, size_t n, double add) {
  return PairwiseSum([a, add](size_t i) { return a[i] + add; }, 0, n);
}

size_t NumpyArgmax(const double* values, size_t n) {
  size_t best = 0;
  if (std::isnan(values[0])) return 0;
  for (size_t i = 1; i < n; ++i) {
    if (std::isnan(values[i])) return i;
    if (values[i] > values[best]) best = i;
  }
  return best;
}

void LogProbabilitiesFromJointLogLikelihood(const double* jll, size_t k, double* out) {
  if (k == 0) return;
  // np.max propagates NaN.
  double max = jll[0];
  for (size_t c = 0; c < k; ++c) {
    if (std::isnan(jll[c])) {
      for (size_t j = 0; j < k; ++j) out[j] = std::numeric_limits<double>::quiet_NaN();
      return;
    }
    if (jll[c] > max) max = jll[c];
  }
  double m = 0.0;
  const double shift = std::isfinite(max) ? max : 0.0;
  for (size_t c = 0; c < k; ++c) {  // out holds the exp terms first
    if (jll[c] == max) {
      m += 1.0;
      out[c] = 0.0;  // exp(-inf)
    } else {
      out[c] = std::exp(jll[c] - shift);
    }
  }
  double s = NumpySum(out, k);
  s = s == 0.0 ? s : s / m;
  const double lse = std::log1p(s) + std::log(m) + max;
  for (size_t c = 0; c < k; ++c) out[c] = jll[c] - lse;
}

std::vector<double> LogProbabilitiesFromJointLogLikelihood(const std::vector<double>& jll) {
  std::vector<double> out(jll.size(), std::numeric_limits<double>::quiet_NaN());
  LogProbabilitiesFromJointLogLikelihood(jll.data(), jll.size(), out.data());
  return out;
}

size_t ProbabilitiesFromJointLogLikelihood(const double* jll, size_t k, double* out) {
  if (k == 0) return 0;
  size_t argmax;
  // exp(0) == 1 for the maxima.
  if (Softmax(jll, k, kSoftmaxBound, out, &argmax)) return argmax;
  // A long text's |jll| (see the header), NaN, all -inf or +inf.
  LogProbabilitiesFromJointLogLikelihood(jll, k, out);
  for (size_t c = 0; c < k; ++c) out[c] = std::exp(out[c]);
  return NumpyArgmax(jll, k);
}

}  // namespace maas::discriminative
