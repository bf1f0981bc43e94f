// exp(x) for x <= 0, several at once, with the same bits on every SIMD level: the exponentials of
// predict_proba (ProbabilitiesFromJointLogLikelihood), k per text, which through libm's scalar exp
// cost as much as the text's joint log-likelihood. Cody-Waite reduction x = n ln2 + r (|r| <=
// ln2 / 2 + a little; n ln2 in two parts, the first exact), exp(r) by its Taylor series to degree
// 13 in Estrin's form (truncation below 0.03 ulp), then 2^n put into the exponent bits (in two
// steps below 2^-1000, so that a subnormal result is rounded once). Only IEEE multiplies, adds and
// subtractions in one fixed order (the library builds with -ffp-contract=off: no fused
// multiply-add on one level and not on another), so every level rounds alike; within 2 ulps of the
// exact value for normal results (tested against libm's exp), 0 below -745.2, and 1 for 0. Three
// paths: AVX-512 (8 lanes), AVX2 (4 lanes) and the scalar reference, which the baseline level runs.
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_EXP_SIMD_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_EXP_SIMD_H_

#include <cstddef>

#include "common/random/simd_level.h"

namespace maas::discriminative {

// out[i] = exp(x[i] - shift) for i < n on the process's level (random::BestSimdLevel). REQUIRES:
// every x[i] - shift <= 0 or -inf (not NaN); out may be x.
void ExpShifted(const double* x, double shift, size_t n, double* out);

// The same on a given level. REQUIRES: the CPU supports `level` (random::SupportedSimdLevels).
void ExpShiftedWith(random::SimdLevel level, const double* x, double shift, size_t n, double* out);

// Softmax with its maximum subtracted, predict_proba from a text's joint log-likelihoods: if n >=
// 1, no x[i] is NaN and M = max x has |M| < bound (so finite), out[i] = e_i / S with e_i =
// exp(x[i] - M) as ExpShifted and S their sum in a fixed order (eight partial sums a_j of the e_i
// with i = j mod 8, then ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)): a vector's order, the
// same on every level), *argmax the first i with x[i] == M (numpy's argmax of x), and true;
// otherwise false, out and *argmax untouched. out may be x.
bool Softmax(const double* x, size_t n, double bound, double* out, size_t* argmax);
bool SoftmaxWith(random::SimdLevel level, const double* x, size_t n, double bound, double* out,
                 size_t* argmax);

// values[i] = values[i] / divisor for i < n, 8 (AVX-512) or 4 (AVX2) at a time (a row's tf-idf or
// hashing norm: IEEE division rounds each quotient alike on every level, so the same bits).
void DivideAll(double* values, size_t n, double divisor);
void DivideAllWith(random::SimdLevel level, double* values, size_t n, double divisor);

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_EXP_SIMD_H_
