// Per-row linear algebra kernels of the families' samplers and densities.
//
// Why not Eigen's blocked products here: the determinism contract says sample i and the estimate of
// row r are pure functions of (seed, i) and (x_r, settings), whatever the batch. Eigen's GEMM,
// triangular solves and vectorized reductions choose their summation order from the matrix sizes,
// the position of a row inside a micro-panel and the memory alignment, so the same row can round
// differently in a batch of 1 and a batch of 1000. These kernels give each row's values in a fixed
// order, whatever the rows beside it: axpy updates (each output element accumulates its terms in
// index order; the loops vectorize across elements without reordering) and sequential sums. Some
// work on a block of rows at once (row_kernels_simd.h: each row's sums one SIMD lane, in the same
// order as the row alone). No -ffast-math.
#ifndef MAAS_SERVICES_GENERATIVE_CORE_ROW_KERNELS_H_
#define MAAS_SERVICES_GENERATIVE_CORE_ROW_KERNELS_H_

#include <algorithm>
#include <cmath>

#include "Eigen/Dense"
#include "services/generative/core/row_kernels_simd.h"

namespace maas::generative::rows {

// out[j] += sum_{i} a(j, i) * v[i] for a column-major matrix a (rows x cols), accumulated column by
// column (i ascending) for every j.
inline void AddMatrixTimesVector(const Eigen::MatrixXd& a, const double* v, double* out) {
  const Eigen::Index rows = a.rows();
  for (Eigen::Index i = 0; i < a.cols(); ++i) {
    const double vi = v[i];
    const double* col = a.data() + i * rows;
    for (Eigen::Index j = 0; j < rows; ++j) out[j] += col[j] * vi;
  }
}

// out[j] += sum_{i <= j} lower(j, i) * v[i] for a column-major lower-triangular `lower`.
inline void AddLowerTimesVector(const Eigen::MatrixXd& lower, const double* v, double* out) {
  const Eigen::Index d = lower.rows();
  for (Eigen::Index i = 0; i < d; ++i) {
    const double vi = v[i];
    const double* col = lower.data() + i * d;
    for (Eigen::Index j = i; j < d; ++j) out[j] += col[j] * vi;
  }
}

// Solves lower * y = r in place (r becomes y) by forward substitution (column oriented) and
// returns ||y||^2 summed in index order. `lower` is column-major with a positive diagonal.
inline double ForwardSubstituteSquaredNorm(const Eigen::MatrixXd& lower, double* r) {
  double sum = 0.0;
  BestSimdKernels().forward_substitute_squared_norms(lower.data(), lower.rows(), r, 1, &sum);
  return sum;
}

// ForwardSubstituteSquaredNorm of m right-hand sides at once (r: m vectors of d values, the b-th
// at r + b * d), adding each one's ||y||^2 to sums[b]: each column of `lower` is read once for all
// of them, and each vector goes through exactly the operations, in the order, it would alone:
//   for j < d: y_j = r_j / lower(j, j); sum += y_j * y_j; r_i -= lower(i, j) * y_j for i > j.
// (row_kernels_simd.h: the inner update at the CPU's SIMD width.)
inline void ForwardSubstituteSquaredNorms(const Eigen::MatrixXd& lower, double* r, Eigen::Index m,
                                          double* sums) {
  BestSimdKernels().forward_substitute_squared_norms(lower.data(), lower.rows(), r, m, sums);
}

// Solves lower^T * y = v in place (v becomes y) by back substitution; `lower` column-major.
inline void BackSubstituteTransposed(const Eigen::MatrixXd& lower, double* v) {
  const Eigen::Index d = lower.rows();
  for (Eigen::Index i = d - 1; i >= 0; --i) {
    const double* col = lower.data() + i * d;
    double s = v[i];
    for (Eigen::Index j = i + 1; j < d; ++j) s -= col[j] * v[j];
    v[i] = s / col[i];
  }
}

// sum_i a[i] * b[i] in index order.
inline double Dot(const double* a, const double* b, Eigen::Index n) {
  double s = 0.0;
  for (Eigen::Index i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// out[t] = Dot(a, b[t], n) for t < m <= 4, each sum in index order as Dot's (the same bits), the
// m chains interleaved: a sequential sum is bound by the latency of its adds, so 4 of them take
// about the time of one.
inline void DotRows(const double* a, const double* const* b, int m, Eigen::Index n, double* out) {
  if (m == 1) {
    out[0] = Dot(a, b[0], n);
    return;
  }
  const double* b0 = b[0];
  const double* b1 = b[1];
  const double* b2 = m > 2 ? b[2] : b[0];
  const double* b3 = m > 3 ? b[3] : b[0];
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  for (Eigen::Index i = 0; i < n; ++i) {
    s0 += a[i] * b0[i];
    s1 += a[i] * b1[i];
    s2 += a[i] * b2[i];
    s3 += a[i] * b3[i];
  }
  const double sums[4] = {s0, s1, s2, s3};
  for (int t = 0; t < m; ++t) out[t] = sums[t];
}

// out[k] = Dot(columns + k * n, v, n) for k < count (the columns of a column-major n x count
// matrix), 4 sums interleaved at a time (DotRows; a product's operands commute): the same bits.
inline void DotColumns(const double* columns, Eigen::Index count, const double* v, Eigen::Index n,
                       double* out) {
  for (Eigen::Index k = 0; k < count; k += 4) {
    const int m = static_cast<int>(std::min<Eigen::Index>(4, count - k));
    const double* cols[4];
    for (int t = 0; t < m; ++t) cols[t] = columns + (k + t) * n;
    DotRows(v, cols, m, n, out + k);
  }
}

// Whether a computed lower factor is usable: every pivot positive and finite, every value finite.
inline bool IsCholeskyFactor(const Eigen::MatrixXd& lower) {
  for (Eigen::Index i = 0; i < lower.rows(); ++i) {
    const double pivot = lower(i, i);
    if (!(pivot > 0.0) || !std::isfinite(pivot)) return false;
  }
  return lower.allFinite();
}

// Lower Cholesky factor of a symmetric matrix (only its lower triangle is read), or false when it
// is not positive definite (a non-positive or non-finite pivot). The strictly upper part of
// `lower` is zero.
inline bool CholeskyLower(const Eigen::Ref<const Eigen::MatrixXd>& a, Eigen::MatrixXd* lower) {
  const Eigen::LLT<Eigen::MatrixXd, Eigen::Lower> llt(a);
  if (llt.info() != Eigen::Success) return false;
  *lower = llt.matrixL();
  return IsCholeskyFactor(*lower);
}

}  // namespace maas::generative::rows

#endif  // MAAS_SERVICES_GENERATIVE_CORE_ROW_KERNELS_H_
