// The Box–Muller transform of maas's normals, written once for scalars and SIMD vectors so that
// every code path (ItemRng::Normal one pair at a time, and the AVX-512 / AVX2 / SSE2 bulk kernels
// of normal_kernels.h) computes the same IEEE operations in the same order and therefore returns
// the same bits on every x86-64 CPU.
//
// Why not libm: glibc's log/sin/cos differ between glibc releases and, through ifunc dispatch,
// between CPUs of one machine park (e.g. the FMA variants __log_fma/__sin_fma on CPUs with FMA), so
// samples drawn through them are not a pure function of (seed, index). These kernels use only
// +, -, *, / and sqrt (all correctly rounded by IEEE 754) and integer bit operations, no FMA. The
// files that instantiate them must be compiled with -ffp-contract=off (see CMakeLists.txt).
//
//   log(u) for u in (0, 1): fdlibm's e_log.c algorithm (u = 2^k m, m in [sqrt(2)/2, sqrt(2)),
//     f = m - 1, s = f / (2 + f), degree-14 minimax polynomial R(s^2); error < 1 ulp).
//   cos/sin(2 pi u): exact reduction in u: y = 4u, q = nearest integer to y, r = y - q in
//     [-1/2, 1/2] (all exact), a = r * pi/2 in [-pi/4, pi/4], fdlibm's __kernel_sin / __kernel_cos
//     polynomials (|error| < 2^-58 on the interval), then the quadrant q mod 4 swaps and negates.
//
// Internal: only common/random's files include this header. Everything is in an unnamed namespace
// so that each translation unit (compiled for a different instruction set) has its own copy and the
// linker can never pick an AVX-512 instance for baseline code.
#ifndef MAAS_COMMON_RANDOM_BOX_MULLER_KERNEL_H_
#define MAAS_COMMON_RANDOM_BOX_MULLER_KERNEL_H_

#include <cstdint>
#include <cstring>

namespace maas::random::internal {
namespace {

// Scalar bit casts; the vector kernels use GCC vector casts, which are bit casts too.
inline uint64_t BitsOf(double x) {
  uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
inline double DoubleOf(uint64_t u) {
  double x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// The uniform of words (first, second) exactly as UniformFromWords (item_rng.h) computes it:
// ((first << 32 | second) >> 12) + 0.5) * 2^-52, for 32-bit values held in 64-bit lanes. The
// 52-bit integer k becomes a double through the exponent trick (2^52 + k) - 2^52 = k, exact, which
// needs no int64 -> double conversion instruction (AVX2 has none).
template <class D, class U, class AsDouble>
inline D UniformOfWords(U first, U second, AsDouble as_double) {
  const U k = (first << 20) | (second >> 12);
  const D two52 = as_double(k | uint64_t{0x4330000000000000});
  // (2^52 + k) - (2^52 - 1/2) = k + 1/2 exactly (representable, so the subtraction is exact): the
  // same value as (two52 - 2^52) + 0.5 in one operation.
  return (two52 - (0x1.0p52 - 0.5)) * 0x1.0p-52;
}

// log(u) for u in [2^-53, 1) (positive normal numbers below 1).
template <class D, class U, class AsDouble, class AsBits>
inline D LogOpenUnit(D u, AsDouble as_double, AsBits as_bits) {
  constexpr double kLn2Hi = 6.93147180369123816490e-01;
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  constexpr double kLg1 = 6.666666666666735130e-01;
  constexpr double kLg2 = 3.999999999940941908e-01;
  constexpr double kLg3 = 2.857142874366239149e-01;
  constexpr double kLg4 = 2.222219843214978396e-01;
  constexpr double kLg5 = 1.818357216161805012e-01;
  constexpr double kLg6 = 1.531383769920937332e-01;
  constexpr double kLg7 = 1.479819860511658591e-01;
  // Shift the mantissa range to [sqrt(2)/2, sqrt(2)): adding (1 - 0x3fe6a09e...) to the bits
  // carries into the exponent exactly when the mantissa is >= sqrt(2)/2's.
  const U ix = as_bits(u) + (uint64_t{0x3ff0000000000000} - uint64_t{0x3fe6a09e00000000});
  // k = biased exponent of ix - 1023, as a double (exact: the exponent trick again).
  const D k = as_double((ix >> 52) | uint64_t{0x4330000000000000}) - (0x1.0p52 + 1023.0);
  const D m = as_double((ix & uint64_t{0x000fffffffffffff}) + uint64_t{0x3fe6a09e00000000});
  const D f = m - 1.0;
  const D hfsq = 0.5 * f * f;
  const D s = f / (2.0 + f);
  const D z = s * s;
  const D w = z * z;
  const D t1 = w * (kLg2 + w * (kLg4 + w * kLg6));
  const D t2 = z * (kLg1 + w * (kLg3 + w * (kLg5 + w * kLg7)));
  const D r = t2 + t1;
  return s * (hfsq + r) + k * kLn2Lo - hfsq + f + k * kLn2Hi;
}

// (cos(2 pi u), sin(2 pi u)) for u in (0, 1).
template <class D, class U, class AsDouble, class AsBits>
inline void CosSinTwoPi(D u, D* cos_out, D* sin_out, AsDouble as_double, AsBits as_bits) {
  constexpr double kPiOver2 = 1.57079632679489655800e+00;
  constexpr double kS1 = -1.66666666666666324348e-01;
  constexpr double kS2 = 8.33333333332248946124e-03;
  constexpr double kS3 = -1.98412698298579493134e-04;
  constexpr double kS4 = 2.75573137070700676789e-06;
  constexpr double kS5 = -2.50507602534068634195e-08;
  constexpr double kS6 = 1.58969099521155010221e-10;
  constexpr double kC1 = 4.16666666666666019037e-02;
  constexpr double kC2 = -1.38888888888741095749e-03;
  constexpr double kC3 = 2.48015872894767294178e-05;
  constexpr double kC4 = -2.75573143513906633035e-07;
  constexpr double kC5 = 2.08757232129817482790e-09;
  constexpr double kC6 = -1.13596475577881948265e-11;
  constexpr double kRound = 0x1.8p52;  // y + 1.5 * 2^52 rounds y to an integer in the low bits
  const D y = u * 4.0;                 // exact
  const D shifted = y + kRound;
  const D q = shifted - kRound;  // nearest integer to y (0 .. 4), exact
  const U quadrant = as_bits(shifted) & uint64_t{3};
  const D x = (y - q) * kPiOver2;  // y - q exact, in [-1/2, 1/2]
  const D z = x * x;
  // fdlibm __kernel_sin(x, 0, 0) and __kernel_cos(x, 0) for |x| <= pi/4.
  const D sr = kS2 + z * (kS3 + z * (kS4 + z * (kS5 + z * kS6)));
  const D sv = z * x;
  const D sin_x = x + sv * (kS1 + z * sr);
  const D cr = z * (kC1 + z * (kC2 + z * (kC3 + z * (kC4 + z * (kC5 + z * kC6)))));
  const D hz = 0.5 * z;
  const D cw = 1.0 - hz;
  const D cos_x = cw + (((1.0 - cw) - hz) + z * cr);
  // Angle 2 pi u = x + quadrant * pi/2: (cos, sin) = (c, s), (-s, c), (-c, -s), (s, -c).
  // The sign flips as bit 63: quadrants 1 and 2 negate the cosine, 2 and 3 the sine.
  const auto swap = (quadrant & uint64_t{1}) != 0;
  const U negate_cos = ((quadrant + uint64_t{1}) & uint64_t{2}) << 62;
  const U negate_sin = (quadrant & uint64_t{2}) << 62;
  const D c = swap ? sin_x : cos_x;
  const D s = swap ? cos_x : sin_x;
  *cos_out = as_double(as_bits(c) ^ negate_cos);
  *sin_out = as_double(as_bits(s) ^ negate_sin);
}

// The Box–Muller pair of uniforms (u1, u2):
// (sqrt(-2 log u1) cos(2 pi u2), sqrt(-2 log u1) sin(2 pi u2)).
template <class D, class U, class AsDouble, class AsBits, class Sqrt>
inline void BoxMullerKernel(D u1, D u2, D* z0, D* z1, AsDouble as_double, AsBits as_bits,
                            Sqrt sqrt) {
  const D radius = sqrt(-2.0 * LogOpenUnit<D, U>(u1, as_double, as_bits));
  D c, s;
  CosSinTwoPi<D, U>(u2, &c, &s, as_double, as_bits);
  *z0 = radius * c;
  *z1 = radius * s;
}

}  // namespace
}  // namespace maas::random::internal

#endif  // MAAS_COMMON_RANDOM_BOX_MULLER_KERNEL_H_
