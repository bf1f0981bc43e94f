#include "services/discriminative/core/exp_simd.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "services/discriminative/core/count_simd.h"  // the AVX-512 warning guard

namespace maas::discriminative {
namespace {

// Below this every result is 0 (exp(-746) < 2^-1075, half the smallest subnormal); -inf maps here.
constexpr double kMin = -746.0;
constexpr double kLog2e = 1.4426950408889634;
// 1.5 * 2^52: x log2(e) + kShifter rounds x log2(e) to the nearest integer n, kept in the low bits.
constexpr double kShifter = 6755399441055744.0;
// ln 2 = kLn2Hi + kLn2Lo, kLn2Hi with 32 significant bits (n kLn2Hi is exact for |n| < 2^21).
constexpr double kLn2Hi = 6.93147180369123816490e-01;
constexpr double kLn2Lo = 1.90821492927058770002e-10;
// Below 2^-1000 the scale 2^n is applied as 2^(n + 64) times 2^-64.
constexpr double kSmall = -1000.0;
constexpr double kBiasNormal = 1023.0;
constexpr double kBiasSmall = 1023.0 + 64.0;
constexpr double kTwoToMinus64 = 5.421010862427522e-20;  // 2^-64 exactly

// The Taylor coefficients 1 / j! for j = 0 .. kDegree (j! exact in a double for j <= 18).
constexpr int kDegree = 13;
constexpr double Factorial(int j) { return j <= 1 ? 1.0 : j * Factorial(j - 1); }
struct Coefficients {
  double c[kDegree + 1];
  constexpr Coefficients() : c() {
    for (int j = 0; j <= kDegree; ++j) c[j] = 1.0 / Factorial(j);
  }
};
constexpr Coefficients kCoefficients;
constexpr double Coefficient(int j) { return kCoefficients.c[j]; }

double FromBits(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof(d));
  return d;
}
uint64_t ToBits(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof(bits));
  return bits;
}

// The reference: each vector lane below performs these operations in this order (x - shift in the
// lane: a vector load of what the caller just wrote lane by lane would wait for the stores).
double ExpOne(double in, double shift) {
  const double d = in - shift;
  const double x = d < kMin ? kMin : d;
  const double t = x * kLog2e + kShifter;
  const double n = t - kShifter;
  const double r = (x - n * kLn2Hi) - n * kLn2Lo;
  // Estrin's scheme (a short dependency chain: one text's k exponentials are one vector).
  const double r2 = r * r;
  const double r4 = r2 * r2;
  const double r8 = r4 * r4;
  double q[7];
  for (int i = 0; i < 7; ++i) q[i] = Coefficient(2 * i) + Coefficient(2 * i + 1) * r;
  const double s0 = q[0] + q[1] * r2, s1 = q[2] + q[3] * r2, s2 = q[4] + q[5] * r2;
  const double p = (s0 + s1 * r4) + (s2 + q[6] * r4) * r8;
  const bool small = n < kSmall;
  // t + bias = 1.5 * 2^52 + (n + bias) exactly; its low 12 bits shifted up are 2^(n + bias - 1023).
  const double scale = FromBits(ToBits(t + (small ? kBiasSmall : kBiasNormal)) << 52);
  return p * scale * (small ? kTwoToMinus64 : 1.0);
}

void ExpBaseline(const double* x, double shift, size_t n, double* out) {
  for (size_t i = 0; i < n; ++i) out[i] = ExpOne(x[i], shift);
}

// The sum of Softmax: eight partial sums a_j of the e_i with i = j mod 8 (each in order of
// i), then ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)), what a vector of 8 accumulates and
// SumLanes reduces.
double SumOfPartials(const double (&a)[8]) {
  return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

// The maximum of x[0 .. n) in *max and true, or false if one is NaN or the maximum's magnitude is
// not below `bound` (never below +inf: +inf, or all -inf). REQUIRES: n >= 1.
bool BoundedMax(const double* x, size_t n, double bound, double* max) {
  double m = x[0];
  bool nan = false;
  for (size_t i = 0; i < n; ++i) {
    nan |= std::isnan(x[i]);
    m = x[i] > m ? x[i] : m;
  }
  *max = m;
  return !nan && std::fabs(m) < bound;
}

// The first i with x[i] == max. REQUIRES: there is one.
size_t FirstAt(const double* x, double max) {
  size_t i = 0;
  while (x[i] != max) ++i;
  return i;
}

void DivideAllBaseline(double* values, size_t n, double divisor) {
  for (size_t i = 0; i < n; ++i) values[i] = values[i] / divisor;
}

void SoftmaxBaseline(const double* x, double shift, size_t n, double* out) {
  double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (size_t i = 0; i < n; ++i) {
    out[i] = ExpOne(x[i], shift);
    a[i % 8] += out[i];
  }
  DivideAllBaseline(out, n, SumOfPartials(a));
}

#if defined(__x86_64__)
MAAS_COUNT_AVX512_WARNINGS_OFF
// ExpOne of the 8 lanes of d (x - shift already taken).
__attribute__((target("avx512f"), always_inline)) inline __m512d Exp8(__m512d d) {
  const __m512d v = _mm512_max_pd(d, _mm512_set1_pd(kMin));
  const __m512d shifter = _mm512_set1_pd(kShifter);
  const __m512d t = _mm512_add_pd(_mm512_mul_pd(v, _mm512_set1_pd(kLog2e)), shifter);
  const __m512d k = _mm512_sub_pd(t, shifter);
  const __m512d r = _mm512_sub_pd(_mm512_sub_pd(v, _mm512_mul_pd(k, _mm512_set1_pd(kLn2Hi))),
                                  _mm512_mul_pd(k, _mm512_set1_pd(kLn2Lo)));
  const __m512d r2 = _mm512_mul_pd(r, r);
  const __m512d r4 = _mm512_mul_pd(r2, r2);
  const __m512d r8 = _mm512_mul_pd(r4, r4);
  __m512d q[7];
  for (int j = 0; j < 7; ++j) {
    q[j] = _mm512_add_pd(_mm512_set1_pd(Coefficient(2 * j)),
                         _mm512_mul_pd(_mm512_set1_pd(Coefficient(2 * j + 1)), r));
  }
  const __m512d s0 = _mm512_add_pd(q[0], _mm512_mul_pd(q[1], r2));
  const __m512d s1 = _mm512_add_pd(q[2], _mm512_mul_pd(q[3], r2));
  const __m512d s2 = _mm512_add_pd(q[4], _mm512_mul_pd(q[5], r2));
  const __m512d p = _mm512_add_pd(_mm512_add_pd(s0, _mm512_mul_pd(s1, r4)),
                                  _mm512_mul_pd(_mm512_add_pd(s2, _mm512_mul_pd(q[6], r4)), r8));
  const __mmask8 small = _mm512_cmp_pd_mask(k, _mm512_set1_pd(kSmall), _CMP_LT_OQ);
  const __m512d bias =
      _mm512_mask_blend_pd(small, _mm512_set1_pd(kBiasNormal), _mm512_set1_pd(kBiasSmall));
  const __m512d scale =
      _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_castpd_si512(_mm512_add_pd(t, bias)), 52));
  const __m512d tail =
      _mm512_mask_blend_pd(small, _mm512_set1_pd(1.0), _mm512_set1_pd(kTwoToMinus64));
  return _mm512_mul_pd(_mm512_mul_pd(p, scale), tail);
}

__attribute__((target("avx512f"), always_inline)) inline __mmask8 LanesFrom(size_t i, size_t n) {
  return n - i >= 8 ? 0xFF : static_cast<__mmask8>((1u << (n - i)) - 1);
}

// The 4 lanes of b added as halves, then the two left: (b0 + b2) + (b1 + b3).
__attribute__((target("avx2"), always_inline)) inline double SumLanes4(__m256d b) {
  const __m128d c = _mm_add_pd(_mm256_castpd256_pd128(b), _mm256_extractf128_pd(b, 1));
  return _mm_cvtsd_f64(_mm_add_sd(c, _mm_unpackhi_pd(c, c)));
}

// The largest of the 4 lanes of b (none NaN).
__attribute__((target("avx2"), always_inline)) inline double MaxLanes4(__m256d b) {
  const __m128d half = _mm_max_pd(_mm256_castpd256_pd128(b), _mm256_extractf128_pd(b, 1));
  return _mm_cvtsd_f64(_mm_max_sd(half, _mm_unpackhi_pd(half, half)));
}

// SumOfPartials of the 8 lanes of a: halves added, then quarters, then the two left.
__attribute__((target("avx512f"), always_inline)) inline double SumLanes(__m512d a) {
  return SumLanes4(_mm256_add_pd(_mm512_castpd512_pd256(a), _mm512_extractf64x4_pd(a, 1)));
}

__attribute__((target("avx512f"))) void ExpAvx512(const double* x, double shift, size_t n,
                                                  double* out) {
  const __m512d s = _mm512_set1_pd(shift);
  for (size_t i = 0; i < n; i += 8) {
    const __mmask8 lanes = LanesFrom(i, n);
    _mm512_mask_storeu_pd(out + i, lanes,
                          Exp8(_mm512_sub_pd(_mm512_maskz_loadu_pd(lanes, x + i), s)));
  }
}

__attribute__((target("avx512f"))) void DivideAllAvx512(double* values, size_t n, double divisor) {
  const __m512d d = _mm512_set1_pd(divisor);
  for (size_t i = 0; i < n; i += 8) {
    const __mmask8 lanes = LanesFrom(i, n);
    _mm512_mask_storeu_pd(values + i, lanes,
                          _mm512_div_pd(_mm512_maskz_loadu_pd(lanes, values + i), d));
  }
}

// The 8 partial sums of SumOfPartials in one vector (lanes past n add +0: exact), reduced in its
// order; up to 8 values never leave the registers.
__attribute__((target("avx512f"))) bool SoftmaxAvx512(const double* x, size_t n, double bound,
                                                      double* out, size_t* argmax) {
  const __m512d minus_inf = _mm512_set1_pd(-std::numeric_limits<double>::infinity());
  if (n <= 8) {  // one text of up to 8 classes: one load, the rest in registers
    const __mmask8 lanes = LanesFrom(0, n);
    const __m512d v = _mm512_maskz_loadu_pd(lanes, x);
    if ((_mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q) & lanes) != 0) return false;
    const double max = _mm512_reduce_max_pd(_mm512_mask_mov_pd(minus_inf, lanes, v));
    if (!(std::fabs(max) < bound)) return false;
    const __m512d top = _mm512_set1_pd(max);
    *argmax =
        static_cast<size_t>(__builtin_ctz(_mm512_mask_cmp_pd_mask(lanes, v, top, _CMP_EQ_OQ)));
    const __m512d e = _mm512_maskz_mov_pd(lanes, Exp8(_mm512_sub_pd(v, top)));
    _mm512_mask_storeu_pd(out, lanes, _mm512_div_pd(e, _mm512_set1_pd(SumLanes(e))));
    return true;
  }
  __m512d top = minus_inf;
  for (size_t i = 0; i < n; i += 8) {
    const __mmask8 lanes = LanesFrom(i, n);
    const __m512d v = _mm512_maskz_loadu_pd(lanes, x + i);
    if ((_mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q) & lanes) != 0) return false;
    top = _mm512_mask_max_pd(top, lanes, top, v);
  }
  const double max = _mm512_reduce_max_pd(top);
  if (!(std::fabs(max) < bound)) return false;
  *argmax = FirstAt(x, max);  // before out (which may be x) is written
  const __m512d s = _mm512_set1_pd(max);
  __m512d sum = _mm512_setzero_pd();
  for (size_t i = 0; i < n; i += 8) {
    const __mmask8 lanes = LanesFrom(i, n);
    const __m512d e =
        _mm512_maskz_mov_pd(lanes, Exp8(_mm512_sub_pd(_mm512_maskz_loadu_pd(lanes, x + i), s)));
    _mm512_mask_storeu_pd(out + i, lanes, e);
    sum = _mm512_add_pd(sum, e);
  }
  DivideAllAvx512(out, n, SumLanes(sum));
  return true;
}

MAAS_COUNT_AVX512_WARNINGS_ON

// ExpOne of the 4 lanes of d (x - shift already taken): Exp8's operations on 4 lanes. The target
// has no "fma", so no multiply and add can be fused even where contraction were allowed.
__attribute__((target("avx2"), always_inline)) inline __m256d Exp4(__m256d d) {
  const __m256d v = _mm256_max_pd(d, _mm256_set1_pd(kMin));
  const __m256d shifter = _mm256_set1_pd(kShifter);
  const __m256d t = _mm256_add_pd(_mm256_mul_pd(v, _mm256_set1_pd(kLog2e)), shifter);
  const __m256d k = _mm256_sub_pd(t, shifter);
  const __m256d r = _mm256_sub_pd(_mm256_sub_pd(v, _mm256_mul_pd(k, _mm256_set1_pd(kLn2Hi))),
                                  _mm256_mul_pd(k, _mm256_set1_pd(kLn2Lo)));
  const __m256d r2 = _mm256_mul_pd(r, r);
  const __m256d r4 = _mm256_mul_pd(r2, r2);
  const __m256d r8 = _mm256_mul_pd(r4, r4);
  __m256d q[7];
  for (int j = 0; j < 7; ++j) {
    q[j] = _mm256_add_pd(_mm256_set1_pd(Coefficient(2 * j)),
                         _mm256_mul_pd(_mm256_set1_pd(Coefficient(2 * j + 1)), r));
  }
  const __m256d s0 = _mm256_add_pd(q[0], _mm256_mul_pd(q[1], r2));
  const __m256d s1 = _mm256_add_pd(q[2], _mm256_mul_pd(q[3], r2));
  const __m256d s2 = _mm256_add_pd(q[4], _mm256_mul_pd(q[5], r2));
  const __m256d p = _mm256_add_pd(_mm256_add_pd(s0, _mm256_mul_pd(s1, r4)),
                                  _mm256_mul_pd(_mm256_add_pd(s2, _mm256_mul_pd(q[6], r4)), r8));
  const __m256d small = _mm256_cmp_pd(k, _mm256_set1_pd(kSmall), _CMP_LT_OQ);
  const __m256d bias =
      _mm256_blendv_pd(_mm256_set1_pd(kBiasNormal), _mm256_set1_pd(kBiasSmall), small);
  const __m256d scale =
      _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(_mm256_add_pd(t, bias)), 52));
  const __m256d tail = _mm256_blendv_pd(_mm256_set1_pd(1.0), _mm256_set1_pd(kTwoToMinus64), small);
  return _mm256_mul_pd(_mm256_mul_pd(p, scale), tail);
}

// All-ones in the lanes i .. min(i + 4, n) - 1.
__attribute__((target("avx2"), always_inline)) inline __m256i Lanes4From(size_t i, size_t n) {
  const int64_t left = static_cast<int64_t>(n - i);
  return _mm256_cmpgt_epi64(_mm256_set1_epi64x(left), _mm256_setr_epi64x(0, 1, 2, 3));
}

// x[i .. i + 4), lanes at or past n read as +0; and its inverse, which writes only the lanes below
// n. A partial vector goes through a small buffer: a masked store is slow on some CPUs (Zen 3), and
// one or two classes short of a whole vector (a binary classifier's two) are common.
__attribute__((target("avx2"), always_inline)) inline __m256d Load4(const double* x, size_t i,
                                                                    size_t n) {
  if (i + 4 <= n) return _mm256_loadu_pd(x + i);
  alignas(32) double part[4] = {0.0, 0.0, 0.0, 0.0};
  std::memcpy(part, x + i, (n - i) * sizeof(double));
  return _mm256_load_pd(part);
}
__attribute__((target("avx2"), always_inline)) inline void Store4(double* out, size_t i, size_t n,
                                                                  __m256d v) {
  if (i + 4 <= n) {
    _mm256_storeu_pd(out + i, v);
    return;
  }
  alignas(32) double part[4];
  _mm256_store_pd(part, v);
  std::memcpy(out + i, part, (n - i) * sizeof(double));
}

__attribute__((target("avx2"))) void ExpAvx2(const double* x, double shift, size_t n, double* out) {
  const __m256d s = _mm256_set1_pd(shift);
  for (size_t i = 0; i < n; i += 4) Store4(out, i, n, Exp4(_mm256_sub_pd(Load4(x, i, n), s)));
}

__attribute__((target("avx2"))) void DivideAllAvx2(double* values, size_t n, double divisor) {
  const __m256d d = _mm256_set1_pd(divisor);
  for (size_t i = 0; i < n; i += 4) Store4(values, i, n, _mm256_div_pd(Load4(values, i, n), d));
}

// SoftmaxAvx512 on 4-lane vectors: the eight partial sums of SumOfPartials are two vectors (i mod
// 8 in 0..3 and in 4..7; lanes past n add +0), reduced in its order: (low + high) pairs a_j with
// a_(j+4), then its halves pair (a0 + a4) with (a2 + a6) and (a1 + a5) with (a3 + a7).
__attribute__((target("avx2"))) bool SoftmaxAvx2(const double* x, size_t n, double bound,
                                                 double* out, size_t* argmax) {
  const __m256d minus_inf = _mm256_set1_pd(-std::numeric_limits<double>::infinity());
  if (n <= 8) {  // one text of up to 8 classes: two loads, the rest in registers
    const __m256d lanes_lo = _mm256_castsi256_pd(Lanes4From(0, n));
    const __m256d lanes_hi = _mm256_castsi256_pd(Lanes4From(4, n));
    const __m256d v_lo = _mm256_blendv_pd(minus_inf, Load4(x, 0, n), lanes_lo);
    const __m256d v_hi = n > 4 ? _mm256_blendv_pd(minus_inf, Load4(x, 4, n), lanes_hi) : minus_inf;
    const __m256d unordered = _mm256_or_pd(_mm256_cmp_pd(v_lo, v_lo, _CMP_UNORD_Q),
                                           _mm256_cmp_pd(v_hi, v_hi, _CMP_UNORD_Q));
    if (_mm256_movemask_pd(unordered) != 0) return false;
    const double max = MaxLanes4(_mm256_max_pd(v_lo, v_hi));
    if (!(std::fabs(max) < bound)) return false;
    const __m256d top = _mm256_set1_pd(max);
    // Lanes past n hold -inf, never the (finite) maximum.
    *argmax = static_cast<size_t>(__builtin_ctz(
        static_cast<unsigned>(_mm256_movemask_pd(_mm256_cmp_pd(v_lo, top, _CMP_EQ_OQ))) |
        static_cast<unsigned>(_mm256_movemask_pd(_mm256_cmp_pd(v_hi, top, _CMP_EQ_OQ))) << 4));
    // Lanes past n are +0: they add nothing to the partial sums.
    const __m256d e_lo = _mm256_and_pd(Exp4(_mm256_sub_pd(v_lo, top)), lanes_lo);
    const __m256d e_hi = _mm256_and_pd(Exp4(_mm256_sub_pd(v_hi, top)), lanes_hi);
    const __m256d sum = _mm256_set1_pd(SumLanes4(_mm256_add_pd(e_lo, e_hi)));
    Store4(out, 0, n, _mm256_div_pd(e_lo, sum));
    if (n > 4) Store4(out, 4, n, _mm256_div_pd(e_hi, sum));
    return true;
  }
  __m256d top = minus_inf;
  __m256d unordered = _mm256_setzero_pd();
  for (size_t i = 0; i < n; i += 4) {
    const __m256d v = i + 4 <= n ? _mm256_loadu_pd(x + i)
                                 : _mm256_blendv_pd(minus_inf, Load4(x, i, n),
                                                    _mm256_castsi256_pd(Lanes4From(i, n)));
    unordered = _mm256_or_pd(unordered, _mm256_cmp_pd(v, v, _CMP_UNORD_Q));
    top = _mm256_max_pd(top, v);
  }
  if (_mm256_movemask_pd(unordered) != 0) return false;
  const double max = MaxLanes4(top);
  if (!(std::fabs(max) < bound)) return false;
  *argmax = FirstAt(x, max);  // before out (which may be x) is written
  const __m256d s = _mm256_set1_pd(max);
  __m256d even = _mm256_setzero_pd(), odd = _mm256_setzero_pd();  // i mod 8 in 0..3, in 4..7
  for (size_t i = 0; i < n; i += 8) {
    __m256d e = Exp4(_mm256_sub_pd(Load4(x, i, n), s));
    if (i + 4 > n) e = _mm256_and_pd(e, _mm256_castsi256_pd(Lanes4From(i, n)));
    Store4(out, i, n, e);
    even = _mm256_add_pd(even, e);
    if (i + 4 >= n) break;
    e = Exp4(_mm256_sub_pd(Load4(x, i + 4, n), s));
    if (i + 8 > n) e = _mm256_and_pd(e, _mm256_castsi256_pd(Lanes4From(i + 4, n)));
    Store4(out, i + 4, n, e);
    odd = _mm256_add_pd(odd, e);
  }
  DivideAllAvx2(out, n, SumLanes4(_mm256_add_pd(even, odd)));
  return true;
}
#endif

}  // namespace

void DivideAllWith(random::SimdLevel level, double* values, size_t n, double divisor) {
#if defined(__x86_64__)
  if (level == random::SimdLevel::kAvx512) return DivideAllAvx512(values, n, divisor);
  if (level == random::SimdLevel::kAvx2) return DivideAllAvx2(values, n, divisor);
#endif
  (void)level;
  DivideAllBaseline(values, n, divisor);
}

void DivideAll(double* values, size_t n, double divisor) {
  DivideAllWith(random::BestSimdLevel(), values, n, divisor);
}

void ExpShiftedWith(random::SimdLevel level, const double* x, double shift, size_t n, double* out) {
#if defined(__x86_64__)
  if (level == random::SimdLevel::kAvx512) return ExpAvx512(x, shift, n, out);
  if (level == random::SimdLevel::kAvx2) return ExpAvx2(x, shift, n, out);
#endif
  (void)level;
  ExpBaseline(x, shift, n, out);
}

void ExpShifted(const double* x, double shift, size_t n, double* out) {
  ExpShiftedWith(random::BestSimdLevel(), x, shift, n, out);
}

bool SoftmaxWith(random::SimdLevel level, const double* x, size_t n, double bound, double* out,
                 size_t* argmax) {
  if (n == 0) return false;
#if defined(__x86_64__)
  if (level == random::SimdLevel::kAvx512) return SoftmaxAvx512(x, n, bound, out, argmax);
  if (level == random::SimdLevel::kAvx2) return SoftmaxAvx2(x, n, bound, out, argmax);
#endif
  double max;
  if (!BoundedMax(x, n, bound, &max)) return false;
  (void)level;
  *argmax = FirstAt(x, max);
  SoftmaxBaseline(x, max, n, out);
  return true;
}

bool Softmax(const double* x, size_t n, double bound, double* out, size_t* argmax) {
  return SoftmaxWith(random::BestSimdLevel(), x, n, bound, out, argmax);
}

}  // namespace maas::discriminative
