// The row kernels whose speed depends on the SIMD width, one copy per instruction-set level
// (row_kernels_{baseline,avx2,avx512}.cc, compiled from row_kernels_impl.inc with their -m flags
// and -ffp-contract=off), chosen at run time by random::BestSimdLevel(). Every level gives the same
// bits: each output element goes through the same operations in the same order as in the plain
// loops of row_kernels.h (a product, then its addition or subtraction, rounded apart; no FMA);
// the levels only put more elements in one instruction (for NaN-free inputs: a NaN's sign and
// payload may differ by level).
//
// The "across" kernels work on a block of kAcross rows stored coordinate-major (coordinate j of
// row t at j * kAcross + t), so that a row's sequential sum is one SIMD lane and kAcross of them
// advance together: a sequential sum is bound by the latency of its additions, and 4 rows at a
// time (DotRows) left ppca EXACT at ~1 G multiply-adds a second.
#ifndef MAAS_SERVICES_GENERATIVE_CORE_ROW_KERNELS_SIMD_H_
#define MAAS_SERVICES_GENERATIVE_CORE_ROW_KERNELS_SIMD_H_

#include <cstdint>

// Declared, not included: the per-level files include this header and must see no
// standard-library inline code (simd_level.h pulls in <string> and <vector>).
namespace maas::random {
enum class SimdLevel;
}  // namespace maas::random

namespace maas::generative::rows {

// Rows per block of the across kernels.
inline constexpr int64_t kAcross = 16;

struct SimdKernels {
  // ForwardSubstituteSquaredNorms (row_kernels.h) on a column-major d x d lower factor: the m
  // right-hand sides at r + b * d are solved in place, each ||y||^2 added to sums[b].
  void (*forward_substitute_squared_norms)(const double* lower, int64_t d, double* r, int64_t m,
                                           double* sums);
  // out[k * kAcross + t] = sum_{i < n} a[k * a_stride + i] * across[i * kAcross + t] for k < count
  // and t < kAcross, each sum from +0 in ascending i (rows::Dot's order and bits).
  void (*dot_across)(const double* a, int64_t a_stride, int64_t count, const double* across,
                     int64_t n, double* out);
  // out[j * kAcross + t] += sum_{i < cols} a[i * rows + j] * v[i * kAcross + t] for j < rows,
  // added in ascending i (rows::AddMatrixTimesVector of each row's vector v_t; `a` column-major).
  void (*add_matrix_times_across)(const double* a, int64_t rows, int64_t cols, const double* v,
                                  double* out);
  // quad[t] += sum_{j < d} ((xt[j * 8 + t] - mean[j]) / stddev[j])^2 for t < 8, in ascending j
  // (a diagonal Gaussian's quadratic form for 8 rows stored coordinate-major, 8 to a block).
  void (*scaled_squares8)(const double* xt, const double* mean, const double* stddev, int64_t d,
                          double* quad);
  // quad[t] += sum_{j < d} ((xt[j * 8 + t] - mean[j]) * scale[j])^2 for t < 8, in ascending j
  // (scaled_squares8 with a precision's square root for the standard deviation: the diagonal EM
  // step's quadratic forms).
  void (*scaled_squares8_by)(const double* xt, const double* mean, const double* scale, int64_t d,
                             double* quad);
  // out[j] += sum_{t < rows} w[t] * ((x[t * d + j] - mean[j])^2) for j < d, added in ascending t
  // (x row-major, rows x d: the diagonal EM step's weighted squared deviations).
  void (*add_weighted_squares)(const double* x, int64_t rows, int64_t d, const double* w,
                               const double* mean, double* out);
};

// The kernels of `level` (which the CPU must support).
const SimdKernels& SimdKernelsAt(random::SimdLevel level);
// The kernels of random::BestSimdLevel().
const SimdKernels& BestSimdKernels();

namespace internal {
extern const SimdKernels kBaselineKernels;
extern const SimdKernels kAvx2Kernels;
extern const SimdKernels kAvx512Kernels;
}  // namespace internal

}  // namespace maas::generative::rows

#endif  // MAAS_SERVICES_GENERATIVE_CORE_ROW_KERNELS_SIMD_H_
