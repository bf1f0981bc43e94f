// Dense double-precision matrix product with a FIXED summation order, and the elementwise
// functions of a dense layer, with runtime CPU dispatch (AVX-512F, AVX2+FMA, baseline x86-64).
//
//   C = A * B      or      C = A * B^T      (row-major; C += ... with accumulate = true)
//
// Every element is computed as
//
//   c = accumulate ? C[i][j] : +0.0;
//   for (k = 0; k < K; ++k) c = fma(A[i][k], B(k, j), c);   // k in increasing order, fused
//   C[i][j] = c;
//
// in every code path: the SIMD paths vectorise across independent columns j and block registers
// over rows i, and split k only into consecutive blocks that continue from the value stored in C,
// so the order above is kept exactly. Hence the result is bit-identical for every path (AVX-512,
// AVX2, baseline), every CPU, every matrix size and every way a caller splits the rows of A
// (tested against a naive reference in tests/common/math/gemm_test.cc). This is what lets the
// generative families promise estimates that do not depend on the machine (docs/determinism.md).
// The baseline path uses std::fma (correct everywhere, slow on CPUs without hardware FMA).
//
//   math::Gemm(m, n, k, a, lda, b, ldb, math::Transpose::kNo, c, ldc, /*accumulate=*/false);
//
//   // A weight matrix used for many batches: pack it once (row-major B, or an Eigen column-major
//   // W (out x in) as B = W^T with ldb = out), then Gemm(rows, a, lda, packed, c, ldc, false).
//   const math::PackedMatrix packed(k, n, b, ldb, math::Transpose::kNo);
//
// Speed on one AVX-512 core (AMD Zen 5, ~120 GFLOP/s FMA peak): 95-118 GFLOP/s for m >= 64 and
// n, k in the hundreds; AVX2 about half. m = 1 (a matrix-vector product) wastes the register
// block: use it for batches. Thread-safe (no shared mutable state); bias: preset C, accumulate.
//
// The elementwise functions (Tanh, Sigmoid, ...) are this file's own polynomial/rational
// approximations (no libm), evaluated with the same IEEE operations on every path, so they too
// give the same bits on every CPU and path; see each function's accuracy.
#ifndef MAAS_COMMON_MATH_GEMM_H_
#define MAAS_COMMON_MATH_GEMM_H_

#include <cstddef>
#include <vector>

namespace maas::math {

// A code path of the kernels. kAuto picks the widest one this CPU supports.
enum class SimdPath { kAuto, kBaseline, kAvx2, kAvx512 };

// Whether this CPU (and OS) can run `path` (kAuto and kBaseline: always).
bool SimdPathSupported(SimdPath path);
// The path kAuto resolves to: the process's SIMD level (common/random/simd_level.h: CPUID, capped
// by the environment variable MAAS_SIMD), mapped onto the paths above. Paths differ only in speed.
SimdPath BestSimdPath();
// "baseline", "avx2", "avx512" (kAuto: the resolved path's name).
const char* SimdPathName(SimdPath path);

enum class Transpose { kNo, kYes };

// C (m x n, row stride ldc) = A (m x k, row stride lda) * op(B), op(B) = B (k x n, row stride
// ldb) for kNo or B^T with B (n x k, row stride ldb) for kYes; with accumulate, C += A * op(B)
// (continuing each element's k-ordered sum from its value in C). m, n or k may be 0 (k = 0: C is
// left as is with accumulate, else set to +0). REQUIRES: the strides are >= the row lengths; C does
// not overlap A or B. `path` must be supported (tests force paths; callers use the default).
void Gemm(std::size_t m, std::size_t n, std::size_t k, const double* a, std::size_t lda,
          const double* b, std::size_t ldb, Transpose transpose_b, double* c, std::size_t ldc,
          bool accumulate, SimdPath path = SimdPath::kAuto);

// op(B) copied once into the layout the kernels of one path read (for a B that is used with many
// A's, e.g. a layer's weights): Gemm(m, a, lda, packed, c, ldc, accumulate) then computes exactly
// what the unpacked Gemm computes, without re-packing B on every call.
class PackedMatrix {
 public:
  PackedMatrix() = default;
  // op(B) as in Gemm: k x n. REQUIRES: `path` is supported.
  //
  // trim_zero_rows (for a triangular or banded op(B), e.g. a Cholesky factor or its transpose):
  // each panel of columns runs its k loop only from its first to its last row holding a nonzero,
  // skipping terms fma(a, 0, c). That changes no bit when A is finite (a * 0 = +-0; c + +-0 = c
  // for c != 0, and +0 + +-0 = +0) and, with accumulate, no element of C starts as -0; under that
  // condition the result is still the documented one on every path.
  PackedMatrix(std::size_t k, std::size_t n, const double* b, std::size_t ldb,
               Transpose transpose_b, SimdPath path = SimdPath::kAuto, bool trim_zero_rows = false);
  std::size_t rows() const { return k_; }
  std::size_t cols() const { return n_; }
  SimdPath path() const { return path_; }  // never kAuto
  // Bytes held (the packed values and panel bounds), for a model's MemoryBytes.
  std::size_t MemoryBytes() const {
    return data_.capacity() * sizeof(double) +
           (first_k_.capacity() + end_k_.capacity()) * sizeof(std::size_t);
  }

 private:
  friend void Gemm(std::size_t m, const double* a, std::size_t lda, const PackedMatrix& b,
                   double* c, std::size_t ldc, bool accumulate);
  std::size_t k_ = 0;
  std::size_t n_ = 0;
  SimdPath path_ = SimdPath::kBaseline;
  std::vector<double> data_;
  // Per panel: its rows [first_k_, end_k_) hold the nonzeros ([0, k) without trimming).
  std::vector<std::size_t> first_k_;
  std::vector<std::size_t> end_k_;
};

// C (m x b.cols()) = A (m x b.rows()) * op(B), or += with accumulate; as the unpacked Gemm, on the
// path `b` was packed for.
void Gemm(std::size_t m, const double* a, std::size_t lda, const PackedMatrix& b, double* c,
          std::size_t ldc, bool accumulate);

// In place on x[0 .. n): tanh(x), 1 / (1 + exp(-x)), max(x, 0) (NaN stays NaN). Tanh: absolute
// error <= 3e-16 and relative error <= 4 ulp; Sigmoid: relative error <= 4 ulp for outputs above
// 1e-300. NaN in, NaN out. Same bits on every path and CPU.
void Tanh(double* x, std::size_t n, SimdPath path = SimdPath::kAuto);
void Sigmoid(double* x, std::size_t n, SimdPath path = SimdPath::kAuto);
void Relu(double* x, std::size_t n, SimdPath path = SimdPath::kAuto);
// log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), in place; relative error <= 4 ulp (own log1p:
// atanh series after halving to [0.7, 1.42]). Same bits on every path and CPU.
void Softplus(double* x, std::size_t n, SimdPath path = SimdPath::kAuto);

// Sum over j of x[j] * y[j], in the order SquaredDistance documents (products rounded, no FMA).
double Dot(const double* x, const double* y, std::size_t n, SimdPath path = SimdPath::kAuto);

// Sum over j of (x[j] - y[j])^2, accumulated in a fixed order (8 interleaved partial sums:
// partial p takes j = p, p + 8, ...; then ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7))) that
// every path reproduces exactly.
double SquaredDistance(const double* x, const double* y, std::size_t n,
                       SimdPath path = SimdPath::kAuto);

}  // namespace maas::math

#endif  // MAAS_COMMON_MATH_GEMM_H_
