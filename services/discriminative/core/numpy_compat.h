// Floating-point reductions in numpy's exact operation order, so results match scikit-learn to the
// bit (given the same libm).
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_NUMPY_COMPAT_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_NUMPY_COMPAT_H_

#include <cstddef>
#include <vector>

namespace maas::discriminative {

// np.sum of a contiguous float64 array (numpy's pairwise summation: sequential below 8 elements, 8
// interleaved accumulators up to 128, recursive halving (rounded down to a multiple of 8) above).
// Verified against numpy 2.4 for n up to 1e5 (no 8192-element chunking there, unlike numpy 1.24).
double NumpySum(const double* values, size_t n);
// np.sum(values + add): NumpySum of the n values values[i] + add, each rounded as numpy rounds the
// array sum, without the array.
double NumpySumPlus(const double* values, size_t n, double add);

// numpy.argmax over `values`: the first maximum; the first NaN if any. REQUIRES: n >= 1.
size_t NumpyArgmax(const double* values, size_t n);

// scikit-learn 1.9's _logsumexp over one row of joint log-likelihoods, then jll - lse
// (predict_log_proba):
//   M = max(jll); m = #{c : jll_c == M}; shift = isfinite(M) ? M : 0;
//   s = np.sum(exp(jll_c - shift) for jll_c != M, 0 for the maxima); s = s == 0 ? s : s / m;
//   lse = log1p(s) + log(m) + M; out_c = jll_c - lse.
// All -inf gives NaN (as scikit-learn).
std::vector<double> LogProbabilitiesFromJointLogLikelihood(const std::vector<double>& jll);
// The same into out[0 .. k) (no allocation; out may not alias jll).
void LogProbabilitiesFromJointLogLikelihood(const double* jll, size_t k, double* out);

// predict_proba, exp(log probabilities), into out[0 .. k). With M = max(jll) finite and |M| below
// kSoftmaxBound, as t_c / sum(t) with t_c = exp(jll_c - M) (1 for the maxima): k exponentials
// instead of 2k, all at once (Softmax: vectorized, the same bits on every SIMD level, within 2 ulps
// of libm's). It differs from scikit-learn's exp(jll_c - lse) by a relative 8 (1 + |M|) ulps at
// most (tested): the reference rounds jll_c - lse at the magnitude of jll, where jll_c - M loses
// nothing, so this form is the closer one to the exact value, but past |M| ~ 9000 (long texts)
// the two would be more than 1e-12 apart. So from kSoftmaxBound on, and otherwise (NaN, all
// -inf, +inf), exactly exp(LogProbabilitiesFromJointLogLikelihood) with libm's exp: scikit-learn's
// bits. Returns NumpyArgmax(jll, k) (0 for k == 0), the predicted class, which the fast form
// finds with the maximum it subtracts. out may not alias jll.
inline constexpr double kSoftmaxBound = 2048.0;
size_t ProbabilitiesFromJointLogLikelihood(const double* jll, size_t k, double* out);

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_NUMPY_COMPAT_H_
