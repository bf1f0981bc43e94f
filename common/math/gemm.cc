// Compiled with -ffp-contract=off (common/math/CMakeLists.txt): inside the AVX2/AVX-512 target
// functions the compiler would otherwise fuse a * b + c into an FMA where the baseline path
// rounds twice, and the paths would stop giving the same bits. Every fused multiply-add here is
// explicit (intrinsics or std::fma).
#include "common/math/gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "common/random/simd_level.h"

// The 4- and 8-lane vector types below only cross function boundaries between functions of the
// same target (and are inlined): the ABI note GCC gives for them does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace maas::math {
namespace {

// k is split into consecutive blocks of kKc (each element continues its sum from C), rows of A
// into blocks of kMc. Neither changes any element's summation order; they only size the working
// set (a kKc x NR panel of B stays in L1 while the kMc x kKc block of A streams from L2).
constexpr std::size_t kKc = 128;
constexpr std::size_t kMc = 96;

struct Shape {
  std::size_t mr;
  std::size_t nr;
};

Shape ShapeOf(SimdPath path) {
  switch (path) {
    case SimdPath::kAvx512:
      return {8, 24};
    case SimdPath::kAvx2:
      return {4, 12};
    default:
      return {4, 4};
  }
}

// ---- Micro-kernels: C tile (mr x nr, row stride ldc) (+)= A panel * B panel over kc. The A panel
// holds kc groups of MR values (column kk of the tile's rows), the B panel kc groups of NR values.
// Full tiles only; Tile() below handles the edges through a scratch tile.

void KernelBaseline(std::size_t kc, const double* ap, const double* bp, double* c, std::size_t ldc,
                    bool accumulate) {
  constexpr int kMr = 4, kNr = 4;
  double t[kMr][kNr];
  for (int r = 0; r < kMr; ++r) {
    for (int j = 0; j < kNr; ++j) t[r][j] = accumulate ? c[r * ldc + j] : 0.0;
  }
  for (std::size_t kk = 0; kk < kc; ++kk) {
    for (int r = 0; r < kMr; ++r) {
      for (int j = 0; j < kNr; ++j) t[r][j] = std::fma(ap[r], bp[j], t[r][j]);
    }
    ap += kMr;
    bp += kNr;
  }
  for (int r = 0; r < kMr; ++r) {
    for (int j = 0; j < kNr; ++j) c[r * ldc + j] = t[r][j];
  }
}

__attribute__((target("avx2,fma"))) void KernelAvx2(std::size_t kc, const double* ap,
                                                    const double* bp, double* c, std::size_t ldc,
                                                    bool accumulate) {
  __m256d c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32;
  if (accumulate) {
    c00 = _mm256_loadu_pd(c), c01 = _mm256_loadu_pd(c + 4), c02 = _mm256_loadu_pd(c + 8);
    c10 = _mm256_loadu_pd(c + ldc), c11 = _mm256_loadu_pd(c + ldc + 4);
    c12 = _mm256_loadu_pd(c + ldc + 8);
    c20 = _mm256_loadu_pd(c + 2 * ldc), c21 = _mm256_loadu_pd(c + 2 * ldc + 4);
    c22 = _mm256_loadu_pd(c + 2 * ldc + 8);
    c30 = _mm256_loadu_pd(c + 3 * ldc), c31 = _mm256_loadu_pd(c + 3 * ldc + 4);
    c32 = _mm256_loadu_pd(c + 3 * ldc + 8);
  } else {
    c00 = c01 = c02 = c10 = c11 = c12 = c20 = c21 = c22 = c30 = c31 = c32 = _mm256_setzero_pd();
  }
  for (std::size_t kk = 0; kk < kc; ++kk) {
    const __m256d b0 = _mm256_loadu_pd(bp), b1 = _mm256_loadu_pd(bp + 4),
                  b2 = _mm256_loadu_pd(bp + 8);
    __m256d a = _mm256_broadcast_sd(ap);
    c00 = _mm256_fmadd_pd(a, b0, c00), c01 = _mm256_fmadd_pd(a, b1, c01);
    c02 = _mm256_fmadd_pd(a, b2, c02);
    a = _mm256_broadcast_sd(ap + 1);
    c10 = _mm256_fmadd_pd(a, b0, c10), c11 = _mm256_fmadd_pd(a, b1, c11);
    c12 = _mm256_fmadd_pd(a, b2, c12);
    a = _mm256_broadcast_sd(ap + 2);
    c20 = _mm256_fmadd_pd(a, b0, c20), c21 = _mm256_fmadd_pd(a, b1, c21);
    c22 = _mm256_fmadd_pd(a, b2, c22);
    a = _mm256_broadcast_sd(ap + 3);
    c30 = _mm256_fmadd_pd(a, b0, c30), c31 = _mm256_fmadd_pd(a, b1, c31);
    c32 = _mm256_fmadd_pd(a, b2, c32);
    ap += 4;
    bp += 12;
  }
  _mm256_storeu_pd(c, c00), _mm256_storeu_pd(c + 4, c01), _mm256_storeu_pd(c + 8, c02);
  _mm256_storeu_pd(c + ldc, c10), _mm256_storeu_pd(c + ldc + 4, c11);
  _mm256_storeu_pd(c + ldc + 8, c12);
  _mm256_storeu_pd(c + 2 * ldc, c20), _mm256_storeu_pd(c + 2 * ldc + 4, c21);
  _mm256_storeu_pd(c + 2 * ldc + 8, c22);
  _mm256_storeu_pd(c + 3 * ldc, c30), _mm256_storeu_pd(c + 3 * ldc + 4, c31);
  _mm256_storeu_pd(c + 3 * ldc + 8, c32);
}

__attribute__((target("avx512f"))) void KernelAvx512(std::size_t kc, const double* ap,
                                                     const double* bp, double* c, std::size_t ldc,
                                                     bool accumulate) {
  __m512d acc[8][3];
#pragma GCC unroll 8
  for (int r = 0; r < 8; ++r) {
#pragma GCC unroll 3
    for (int v = 0; v < 3; ++v) {
      acc[r][v] = accumulate ? _mm512_loadu_pd(c + r * ldc + 8 * v) : _mm512_setzero_pd();
    }
  }
  for (std::size_t kk = 0; kk < kc; ++kk) {
    const __m512d b0 = _mm512_loadu_pd(bp), b1 = _mm512_loadu_pd(bp + 8),
                  b2 = _mm512_loadu_pd(bp + 16);
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) {
      const __m512d a = _mm512_set1_pd(ap[r]);
      acc[r][0] = _mm512_fmadd_pd(a, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_pd(a, b1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_pd(a, b2, acc[r][2]);
    }
    ap += 8;
    bp += 24;
  }
#pragma GCC unroll 8
  for (int r = 0; r < 8; ++r) {
#pragma GCC unroll 3
    for (int v = 0; v < 3; ++v) _mm512_storeu_pd(c + r * ldc + 8 * v, acc[r][v]);
  }
}

using Kernel = void (*)(std::size_t, const double*, const double*, double*, std::size_t, bool);

Kernel KernelOf(SimdPath path) {
  switch (path) {
    case SimdPath::kAvx512:
      return KernelAvx512;
    case SimdPath::kAvx2:
      return KernelAvx2;
    default:
      return KernelBaseline;
  }
}

SimdPath Resolve(SimdPath path) {
  if (path == SimdPath::kAuto) return BestSimdPath();
  if (!SimdPathSupported(path)) std::abort();  // REQUIRES: a supported path.
  return path;
}

}  // namespace

bool SimdPathSupported(SimdPath path) {
  switch (path) {
    case SimdPath::kAvx512:
      return __builtin_cpu_supports("avx512f");
    case SimdPath::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    default:
      return true;
  }
}

SimdPath BestSimdPath() {
  // The process's one SIMD level (random::BestSimdLevel: CPUID, capped by MAAS_SIMD), mapped onto
  // this file's paths; its AVX2 path also needs FMA.
  static const SimdPath best = [] {
    switch (random::BestSimdLevel()) {
      case random::SimdLevel::kAvx512:
        return SimdPath::kAvx512;
      case random::SimdLevel::kAvx2:
        return SimdPathSupported(SimdPath::kAvx2) ? SimdPath::kAvx2 : SimdPath::kBaseline;
      default:
        return SimdPath::kBaseline;
    }
  }();
  return best;
}

const char* SimdPathName(SimdPath path) {
  switch (path == SimdPath::kAuto ? BestSimdPath() : path) {
    case SimdPath::kAvx512:
      return "avx512";
    case SimdPath::kAvx2:
      return "avx2";
    default:
      return "baseline";
  }
}

// Layout: for each k-block (kKc rows of op(B), the last one shorter), for each panel of NR
// columns, kc groups of NR values (columns past n are zero; their results are discarded).
PackedMatrix::PackedMatrix(std::size_t k, std::size_t n, const double* b, std::size_t ldb,
                           Transpose transpose_b, SimdPath path, bool trim_zero_rows)
    : k_(k), n_(n), path_(Resolve(path)) {
  const std::size_t nr = ShapeOf(path_).nr;
  const std::size_t panels = (n + nr - 1) / nr;
  data_.assign(k * panels * nr, 0.0);
  first_k_.assign(panels, 0);
  end_k_.assign(panels, k);
  if (trim_zero_rows) {
    for (std::size_t p = 0; p < panels; ++p) {
      const std::size_t j0 = p * nr, cols = std::min(nr, n - j0);
      const auto zero_row = [&](std::size_t kk) {
        for (std::size_t j = 0; j < cols; ++j) {
          const double v =
              transpose_b == Transpose::kNo ? b[kk * ldb + j0 + j] : b[(j0 + j) * ldb + kk];
          if (v != 0.0) return false;
        }
        return true;
      };
      std::size_t first = 0, end = k;
      while (first < k && zero_row(first)) ++first;
      while (end > first && zero_row(end - 1)) --end;
      first_k_[p] = first;
      end_k_[p] = end;
    }
  }
  double* out = data_.data();
  for (std::size_t pc = 0; pc < k; pc += kKc) {
    const std::size_t kc = std::min(kKc, k - pc);
    for (std::size_t p = 0; p < panels; ++p) {
      const std::size_t j0 = p * nr, cols = std::min(nr, n - j0);
      for (std::size_t kk = 0; kk < kc; ++kk) {
        for (std::size_t j = 0; j < cols; ++j) {
          out[kk * nr + j] = transpose_b == Transpose::kNo ? b[(pc + kk) * ldb + j0 + j]
                                                           : b[(j0 + j) * ldb + pc + kk];
        }
      }
      out += kc * nr;
    }
  }
}

void Gemm(std::size_t m, const double* a, std::size_t lda, const PackedMatrix& b, double* c,
          std::size_t ldc, bool accumulate) {
  const std::size_t n = b.n_, k = b.k_;
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate) {
      for (std::size_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0);
    }
    return;
  }
  const auto [mr, nr] = ShapeOf(b.path_);
  const Kernel kernel = KernelOf(b.path_);
  const std::size_t panels = (n + nr - 1) / nr;
  const std::size_t mc_max = std::min(kMc, (m + mr - 1) / mr * mr);
  std::vector<double> a_pack(mc_max * std::min(kKc, k));
  std::vector<double> tile(mr * nr);
  for (std::size_t pc = 0; pc < k; pc += kKc) {
    const std::size_t kc = std::min(kKc, k - pc);
    const double* b_block = b.data_.data() + pc * panels * nr;
    const bool acc = accumulate || pc > 0;
    for (std::size_t ic = 0; ic < m; ic += kMc) {
      const std::size_t mc = std::min(kMc, m - ic);
      // Pack A[ic .. ic + mc, pc .. pc + kc) into panels of MR rows (rows past m are zero).
      double* out = a_pack.data();
      for (std::size_t i0 = 0; i0 < mc; i0 += mr) {
        const std::size_t rows = std::min(mr, mc - i0);
        for (std::size_t kk = 0; kk < kc; ++kk) {
          for (std::size_t r = 0; r < mr; ++r) {
            out[kk * mr + r] = r < rows ? a[(ic + i0 + r) * lda + pc + kk] : 0.0;
          }
        }
        out += kc * mr;
      }
      for (std::size_t p = 0; p < panels; ++p) {
        const std::size_t j0 = p * nr, cols = std::min(nr, n - j0);
        // Only rows [lo, hi) of this block hold nonzeros of this panel (see trim_zero_rows).
        const std::size_t lo = std::min(std::max(b.first_k_[p], pc), pc + kc) - pc;
        const std::size_t hi = std::min(std::max(b.end_k_[p], pc), pc + kc) - pc;
        if (lo >= hi) {  // none: the sum stays at its initial value
          if (!acc) {
            for (std::size_t r = 0; r < mc; ++r) {
              std::fill(c + (ic + r) * ldc + j0, c + (ic + r) * ldc + j0 + cols, 0.0);
            }
          }
          continue;
        }
        const double* bp = b_block + p * kc * nr + lo * nr;
        for (std::size_t i0 = 0; i0 < mc; i0 += mr) {
          const std::size_t rows = std::min(mr, mc - i0);
          const double* ap = a_pack.data() + (i0 / mr) * kc * mr + lo * mr;
          double* ct = c + (ic + i0) * ldc + j0;
          if (rows == mr && cols == nr) {
            kernel(hi - lo, ap, bp, ct, ldc, acc);
            continue;
          }
          // Edge tile through the scratch tile: the padded rows/columns are computed and dropped.
          std::fill(tile.begin(), tile.end(), 0.0);
          if (acc) {
            for (std::size_t r = 0; r < rows; ++r) {
              std::copy(ct + r * ldc, ct + r * ldc + cols, tile.data() + r * nr);
            }
          }
          kernel(hi - lo, ap, bp, tile.data(), nr, acc);
          for (std::size_t r = 0; r < rows; ++r) {
            std::copy(tile.data() + r * nr, tile.data() + r * nr + cols, ct + r * ldc);
          }
        }
      }
    }
  }
}

void Gemm(std::size_t m, std::size_t n, std::size_t k, const double* a, std::size_t lda,
          const double* b, std::size_t ldb, Transpose transpose_b, double* c, std::size_t ldc,
          bool accumulate, SimdPath path) {
  if (m == 0 || n == 0) return;
  Gemm(m, a, lda, PackedMatrix(k, n, b, ldb, transpose_b, path), c, ldc, accumulate);
}

// ---- Elementwise functions. One template body per function, instantiated for double (baseline),
// 4-lane (AVX2) and 8-lane (AVX-512) GCC vectors: the same IEEE operations in the same order on
// every lane of every path (no FMA: this file is compiled with -ffp-contract=off), so the same
// bits. Vector conditionals `m ? a : b` evaluate both sides; both are finite or NaN-propagating.

namespace {

using V4 = double __attribute__((vector_size(32)));
using I4 = std::int64_t __attribute__((vector_size(32)));
using V8 = double __attribute__((vector_size(64)));
using I8 = std::int64_t __attribute__((vector_size(64)));

template <typename V>
struct IntOf;
template <>
struct IntOf<double> {
  using type = std::int64_t;
};
template <>
struct IntOf<V4> {
  using type = I4;
};
template <>
struct IntOf<V8> {
  using type = I8;
};

// The unsigned integer lanes of the same width (shifts that must not be signed overflows).
using U4 = std::uint64_t __attribute__((vector_size(32)));
using U8 = std::uint64_t __attribute__((vector_size(64)));
template <typename V>
struct UintOf;
template <>
struct UintOf<double> {
  using type = std::uint64_t;
};
template <>
struct UintOf<V4> {
  using type = U4;
};
template <>
struct UintOf<V8> {
  using type = U8;
};

#define MAAS_INLINE inline __attribute__((always_inline))

template <typename V>
MAAS_INLINE typename IntOf<V>::type BitsOf(V v) {
  typename IntOf<V>::type i;
  std::memcpy(&i, &v, sizeof(v));
  return i;
}
template <typename V>
MAAS_INLINE V FromBits(typename IntOf<V>::type i) {
  V v;
  std::memcpy(&v, &i, sizeof(v));
  return v;
}
// 2^e as a double: the bits (e + 1023) << 52, computed on unsigned lanes so that the garbage e of
// a NaN lane is no signed overflow (same bits as the signed form for every e in range).
template <typename V>
MAAS_INLINE V PowerOfTwo(typename IntOf<V>::type e) {
  typename UintOf<V>::type u;
  std::memcpy(&u, &e, sizeof(u));
  u = (u + 1023) << 52;
  V v;
  std::memcpy(&v, &u, sizeof(v));
  return v;
}
template <typename V>
MAAS_INLINE V Splat(double x) {
  V v;  // not V{} + x: that turns -0.0 into +0.0
  for (std::size_t i = 0; i < sizeof(V) / sizeof(double); ++i) v[i] = x;
  return v;
}
template <>
MAAS_INLINE double Splat<double>(double x) {
  return x;
}
template <typename V>
MAAS_INLINE V Select(decltype(V{} < V{}) mask, V a, V b) {
  return mask ? a : b;
}
// exp(r) = 2^n (1 + pm1) for r in [-745.2, 709.8] (callers clamp): r = n ln2 + y with
// |y| <= ln2/2 (Cody-Waite: n * kLn2Hi is exact), pm1 = expm1(y) = y (1 + y/2! + ... + y^12/13!)
// (truncation < 1e-17 relative; no cancellation, so pm1 is accurate also for tiny y), and 2^n
// returned as the two normal powers of two scale1 * scale2 (n in [-1075, 1024]).
template <typename V, typename I = typename IntOf<V>::type>
MAAS_INLINE void ExpParts(V r, V& pm1, V& scale1, V& scale2) {
  constexpr double kLog2e = 1.4426950408889634074;
  constexpr double kLn2Hi = 6.93147180369123816490e-01;  // 32 trailing zero bits
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  constexpr double kShift = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
  const V shifted = r * Splat<V>(kLog2e) + Splat<V>(kShift);
  const V n = shifted - Splat<V>(kShift);
  const V y = (r - n * Splat<V>(kLn2Hi)) - n * Splat<V>(kLn2Lo);
  V q = Splat<V>(1.0 / 6227020800.0);  // 1/13!
  q = q * y + Splat<V>(1.0 / 479001600.0);
  q = q * y + Splat<V>(1.0 / 39916800.0);
  q = q * y + Splat<V>(1.0 / 3628800.0);
  q = q * y + Splat<V>(1.0 / 362880.0);
  q = q * y + Splat<V>(1.0 / 40320.0);
  q = q * y + Splat<V>(1.0 / 5040.0);
  q = q * y + Splat<V>(1.0 / 720.0);
  q = q * y + Splat<V>(1.0 / 120.0);
  q = q * y + Splat<V>(1.0 / 24.0);
  q = q * y + Splat<V>(1.0 / 6.0);
  q = q * y + Splat<V>(0.5);
  q = q * y + Splat<V>(1.0);
  pm1 = q * y;
  // n = bits(shifted) - bits(kShift); 2^n = 2^h * 2^(n - h), h = n >> 1.
  const I ni = BitsOf(shifted) - BitsOf(Splat<V>(kShift));
  const I h = ni >> 1;
  scale1 = PowerOfTwo<V>(h);
  scale2 = PowerOfTwo<V>(ni - h);
}

// exp(r); r > 709.8: +inf, r < -745.2: 0, NaN: NaN.
template <typename V>
MAAS_INLINE V Exp(V r) {
  const V clamped = Select<V>(r > Splat<V>(709.8), Splat<V>(709.8),
                              Select<V>(r < Splat<V>(-745.2), Splat<V>(-745.2), r));
  V pm1, scale1, scale2;
  ExpParts(clamped, pm1, scale1, scale2);
  const V result = (Splat<V>(1.0) + pm1) * scale1 * scale2;
  return Select<V>(r > Splat<V>(709.8), Splat<V>(HUGE_VAL),
                   Select<V>(r < Splat<V>(-745.2), Splat<V>(0.0), result));
}

// tanh(x) = sign(x) * (-e) / (2 + e), e = expm1(-2|x|) = 2^n pm1 + (2^n - 1) from ExpParts (for
// |x| < 0.17, n = 0 and e = pm1: accurate near 0). For |x| > 20, tanh(x) rounds to +-1 and
// exp(-40) keeps that.
template <typename V>
MAAS_INLINE V Tanh(V x) {
  const V minus_zero = Splat<V>(-0.0);
  const auto sign = BitsOf(x) & BitsOf(minus_zero);
  const V ax = FromBits<V>(BitsOf(x) & ~BitsOf(minus_zero));
  const V y = Splat<V>(-2.0) * Select<V>(ax > Splat<V>(20.0), Splat<V>(20.0), ax);
  V pm1, scale1, scale2;
  ExpParts(y, pm1, scale1, scale2);
  const V scale = scale1 * scale2;  // 2^n, n in [-58, 0]: exact
  const V e = scale * pm1 + (scale - Splat<V>(1.0));
  const V t = -e / (Splat<V>(2.0) + e);  // >= 0 (or -0: the sign comes from x alone)
  return FromBits<V>((BitsOf(t) & ~BitsOf(minus_zero)) | sign);
}

template <typename V>
MAAS_INLINE V Sigmoid(V x) {
  return Splat<V>(1.0) / (Splat<V>(1.0) + Exp(-x));
}

// log1p(e) for e in [0, 1]: u = 1 + e rounded, log1p(e) = log(u) + (e - (u - 1)) / u (the
// second term restores what rounding u lost); log(u) = k ln2 + log(m), m = u / 2^k in
// [0.707, 1.415], log(m) = 2 atanh(s) = 2 s (1 + s^2/3 + ... + s^22/23), s = (m - 1) / (m + 1),
// |s| <= 0.172 (truncation < 1e-18 relative).
template <typename V>
MAAS_INLINE V Log1pUnit(V e) {
  constexpr double kLn2Hi = 6.93147180369123816490e-01;
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  const V one = Splat<V>(1.0);
  const V u = one + e;
  const V correction = (e - (u - one)) / u;
  const auto halve = u > Splat<V>(1.4142135623730951);
  const V m = Select<V>(halve, u * Splat<V>(0.5), u);
  const V s = (m - one) / (m + one);
  const V w = s * s;
  V p = Splat<V>(1.0 / 23.0);
  p = p * w + Splat<V>(1.0 / 21.0);
  p = p * w + Splat<V>(1.0 / 19.0);
  p = p * w + Splat<V>(1.0 / 17.0);
  p = p * w + Splat<V>(1.0 / 15.0);
  p = p * w + Splat<V>(1.0 / 13.0);
  p = p * w + Splat<V>(1.0 / 11.0);
  p = p * w + Splat<V>(1.0 / 9.0);
  p = p * w + Splat<V>(1.0 / 7.0);
  p = p * w + Splat<V>(1.0 / 5.0);
  p = p * w + Splat<V>(1.0 / 3.0);
  const V log_m = Splat<V>(2.0) * s + Splat<V>(2.0) * s * (w * p);
  const V k = Select<V>(halve, one, Splat<V>(0.0));
  return k * Splat<V>(kLn2Hi) + ((log_m + correction) + k * Splat<V>(kLn2Lo));
}

template <typename V>
MAAS_INLINE V Softplus(V x) {
  const V minus_zero = Splat<V>(-0.0);
  const V ax = FromBits<V>(BitsOf(x) & ~BitsOf(minus_zero));
  const V positive = Select<V>(x > Splat<V>(0.0), x, Splat<V>(0.0));
  return positive + Log1pUnit(Exp(-ax));
}

template <typename V>
MAAS_INLINE V Relu(V x) {
  return Select<V>(x > Splat<V>(0.0), x, Select<V>(x == x, Splat<V>(0.0), x));
}

// Applies F to x[0 .. n) in V-sized chunks, four independent ones at a time (their dependency
// chains overlap); the tail goes through a zero-padded V.
template <typename V, V (*F)(V)>
MAAS_INLINE void Map(double* x, std::size_t n) {
  constexpr std::size_t w = sizeof(V) / sizeof(double);
  std::size_t i = 0;
  for (; i + 4 * w <= n; i += 4 * w) {
    V v[4];
    std::memcpy(v, x + i, sizeof(v));
    for (V& e : v) e = F(e);
    std::memcpy(x + i, v, sizeof(v));
  }
  for (; i + w <= n; i += w) {
    V v;
    std::memcpy(&v, x + i, sizeof(V));
    v = F(v);
    std::memcpy(x + i, &v, sizeof(V));
  }
  if (i < n) {
    V v{};
    std::memcpy(&v, x + i, (n - i) * sizeof(double));
    v = F(v);
    std::memcpy(x + i, &v, (n - i) * sizeof(double));
  }
}

// 8 partial sums s_p over j = p mod 8 of Term(x_j, y_j), reduced as documented in the header.
template <typename V>
MAAS_INLINE V SquareOfDifference(V a, V b) {
  const V d = a - b;
  return d * d;
}
template <typename V>
MAAS_INLINE V Product(V a, V b) {
  return a * b;
}
template <typename V, V (*Term)(V, V)>
MAAS_INLINE double PartialSums(const double* x, const double* y, std::size_t n) {
  constexpr std::size_t w = sizeof(V) / sizeof(double);
  constexpr std::size_t kGroups = 8 / w;
  V s[kGroups] = {};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (std::size_t g = 0; g < kGroups; ++g) {
      V a, b;
      std::memcpy(&a, x + i + g * w, sizeof(V));
      std::memcpy(&b, y + i + g * w, sizeof(V));
      s[g] = s[g] + Term(a, b);
    }
  }
  if (i < n) {
    double a[8] = {}, b[8] = {};
    std::memcpy(a, x + i, (n - i) * sizeof(double));
    std::memcpy(b, y + i, (n - i) * sizeof(double));
    for (std::size_t g = 0; g < kGroups; ++g) {
      V va, vb;
      std::memcpy(&va, a + g * w, sizeof(V));
      std::memcpy(&vb, b + g * w, sizeof(V));
      s[g] = s[g] + Term(va, vb);
    }
  }
  double p[8];
  std::memcpy(p, s, sizeof(p));
  return ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
}

double TanhD(double v) { return Tanh(v); }
double SigmoidD(double v) { return Sigmoid(v); }
double ReluD(double v) { return Relu(v); }
double SoftplusD(double v) { return Softplus(v); }
// The vector forms carry no target attribute of their own: inlined (like the templates they call)
// into the Avx2 / Avx512 functions below, which have one. (A target function calling a function
// without that target with a 256- or 512-bit vector argument is an ABI error in clang.)
MAAS_INLINE V4 TanhV4(V4 v) { return Tanh(v); }
MAAS_INLINE V4 SigmoidV4(V4 v) { return Sigmoid(v); }
MAAS_INLINE V4 ReluV4(V4 v) { return Relu(v); }
MAAS_INLINE V4 SoftplusV4(V4 v) { return Softplus(v); }
MAAS_INLINE V8 TanhV8(V8 v) { return Tanh(v); }
MAAS_INLINE V8 SigmoidV8(V8 v) { return Sigmoid(v); }
MAAS_INLINE V8 ReluV8(V8 v) { return Relu(v); }
MAAS_INLINE V8 SoftplusV8(V8 v) { return Softplus(v); }

#undef MAAS_INLINE

void MapBaseline(double (*f)(double), double* x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) x[i] = f(x[i]);
}
__attribute__((target("avx2,fma"))) void TanhAvx2(double* x, std::size_t n) {
  Map<V4, TanhV4>(x, n);
}
__attribute__((target("avx2,fma"))) void SigmoidAvx2(double* x, std::size_t n) {
  Map<V4, SigmoidV4>(x, n);
}
__attribute__((target("avx2,fma"))) void ReluAvx2(double* x, std::size_t n) {
  Map<V4, ReluV4>(x, n);
}
__attribute__((target("avx2,fma"))) void SoftplusAvx2(double* x, std::size_t n) {
  Map<V4, SoftplusV4>(x, n);
}
__attribute__((target("avx512f"))) void TanhAvx512(double* x, std::size_t n) {
  Map<V8, TanhV8>(x, n);
}
__attribute__((target("avx512f"))) void SigmoidAvx512(double* x, std::size_t n) {
  Map<V8, SigmoidV8>(x, n);
}
__attribute__((target("avx512f"))) void ReluAvx512(double* x, std::size_t n) {
  Map<V8, ReluV8>(x, n);
}
__attribute__((target("avx512f"))) void SoftplusAvx512(double* x, std::size_t n) {
  Map<V8, SoftplusV8>(x, n);
}
__attribute__((target("avx2,fma"))) double SquaredDistanceAvx2(const double* x, const double* y,
                                                               std::size_t n) {
  return PartialSums<V4, SquareOfDifference<V4>>(x, y, n);
}
__attribute__((target("avx2,fma"))) double DotAvx2(const double* x, const double* y,
                                                   std::size_t n) {
  return PartialSums<V4, Product<V4>>(x, y, n);
}
__attribute__((target("avx512f"))) double SquaredDistanceAvx512(const double* x, const double* y,
                                                                std::size_t n) {
  return PartialSums<V8, SquareOfDifference<V8>>(x, y, n);
}
__attribute__((target("avx512f"))) double DotAvx512(const double* x, const double* y,
                                                    std::size_t n) {
  return PartialSums<V8, Product<V8>>(x, y, n);
}

}  // namespace

void Tanh(double* x, std::size_t n, SimdPath path) {
  switch (Resolve(path)) {
    case SimdPath::kAvx512:
      return TanhAvx512(x, n);
    case SimdPath::kAvx2:
      return TanhAvx2(x, n);
    default:
      return MapBaseline(TanhD, x, n);
  }
}

void Sigmoid(double* x, std::size_t n, SimdPath path) {
  switch (Resolve(path)) {
    case SimdPath::kAvx512:
      return SigmoidAvx512(x, n);
    case SimdPath::kAvx2:
      return SigmoidAvx2(x, n);
    default:
      return MapBaseline(SigmoidD, x, n);
  }
}

void Relu(double* x, std::size_t n, SimdPath path) {
  switch (Resolve(path)) {
    case SimdPath::kAvx512:
      return ReluAvx512(x, n);
    case SimdPath::kAvx2:
      return ReluAvx2(x, n);
    default:
      return MapBaseline(ReluD, x, n);
  }
}

void Softplus(double* x, std::size_t n, SimdPath path) {
  switch (Resolve(path)) {
    case SimdPath::kAvx512:
      return SoftplusAvx512(x, n);
    case SimdPath::kAvx2:
      return SoftplusAvx2(x, n);
    default:
      return MapBaseline(SoftplusD, x, n);
  }
}

double SquaredDistance(const double* x, const double* y, std::size_t n, SimdPath path) {
  switch (Resolve(path)) {
    case SimdPath::kAvx512:
      return SquaredDistanceAvx512(x, y, n);
    case SimdPath::kAvx2:
      return SquaredDistanceAvx2(x, y, n);
    default:
      return PartialSums<double, SquareOfDifference<double>>(x, y, n);
  }
}

double Dot(const double* x, const double* y, std::size_t n, SimdPath path) {
  switch (Resolve(path)) {
    case SimdPath::kAvx512:
      return DotAvx512(x, y, n);
    case SimdPath::kAvx2:
      return DotAvx2(x, y, n);
    default:
      return PartialSums<double, Product<double>>(x, y, n);
  }
}

}  // namespace maas::math
