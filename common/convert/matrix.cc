#include "common/convert/matrix.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace maas::convert {

namespace {

// Index of the first value of values[0, n) that is not finite, or n. Chunks are screened with
// integer operations the compiler vectorises (exponent bits all ones: inf or NaN); only a chunk
// with such a value is searched one value at a time.
uint64_t FirstNonFinite(const double* values, uint64_t n) {
  constexpr uint64_t kExponent = 0x7ff0000000000000ULL;
  constexpr uint64_t kChunk = 1024;
  for (uint64_t i0 = 0; i0 < n; i0 += kChunk) {
    const uint64_t i1 = std::min(n, i0 + kChunk);
    uint64_t bad = 0;
    for (uint64_t i = i0; i < i1; ++i) {
      uint64_t bits;
      std::memcpy(&bits, values + i, sizeof bits);
      bad |= static_cast<uint64_t>((bits & kExponent) == kExponent);
    }
    if (bad == 0) continue;
    for (uint64_t i = i0; i < i1; ++i) {
      if (!std::isfinite(values[i])) return i;
    }
  }
  return n;
}

}  // namespace

absl::StatusOr<Eigen::MatrixXd> MatrixFromProto(const maas::common::v1::Matrix& m,
                                                const std::string& what, bool require_finite) {
  const uint64_t rows = m.rows();
  const uint64_t cols = m.cols();
  if (rows * cols != static_cast<uint64_t>(m.values_size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": a ", rows, " x ", cols, " matrix needs ", rows * cols, " values (row-major), got ",
        m.values_size(), "; set rows, cols and values consistently"));
  }
  const double* src = m.values().data();
  if (require_finite) {
    const uint64_t bad = FirstNonFinite(src, rows * cols);
    if (bad < rows * cols) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": value at row ", bad / cols,
                                                     ", column ", bad % cols, " is ", src[bad],
                                                     "; only finite numbers are accepted"));
    }
  }
  // Column-major out of row-major values, 8 rows at a time: each write to `out` is one contiguous
  // run of 8 doubles (a cache line) and the reads advance 8 rows in step (MatrixToProto's
  // transposition the other way). Element by element, a large request converted at ~0.3 GB/s,
  // one cache miss per value (the 2026-12-06 performance hunt).
  Eigen::MatrixXd out(rows, cols);
  const Eigen::Index n = static_cast<Eigen::Index>(rows), d = static_cast<Eigen::Index>(cols);
  constexpr Eigen::Index kBlock = 8;
  Eigen::Index r0 = 0;
  for (; r0 + kBlock <= n; r0 += kBlock) {
    const double* block = src + r0 * d;
    for (Eigen::Index c = 0; c < d; ++c) {
      double* dst = out.data() + c * n + r0;
      for (Eigen::Index i = 0; i < kBlock; ++i) dst[i] = block[i * d + c];
    }
  }
  for (; r0 < n; ++r0) {
    for (Eigen::Index c = 0; c < d; ++c) out(r0, c) = src[r0 * d + c];
  }
  return out;
}

void MatrixToProto(const Eigen::Ref<const Eigen::MatrixXd>& m, maas::common::v1::Matrix* out) {
  out->Clear();
  out->set_rows(static_cast<uint32_t>(m.rows()));
  out->set_cols(static_cast<uint32_t>(m.cols()));
  auto* values = out->mutable_values();
  const Eigen::Index rows = m.rows(), cols = m.cols();
  values->Reserve(static_cast<int>(rows * cols));
  // Every element is written below: no zero fill first.
  double* dst = values->AddNAlreadyReserved(static_cast<int>(rows * cols));
  // Row-major out of a column-major matrix, 8 rows at a time: each read of m is one contiguous
  // run of 8 doubles (a cache line) and the writes advance 8 rows in step, so a large batch is
  // transposed at memory speed instead of one cache miss per element.
  constexpr Eigen::Index kBlock = 8;
  Eigen::Index r0 = 0;
  for (; r0 + kBlock <= rows; r0 += kBlock) {
    double* block = dst + r0 * cols;
    for (Eigen::Index c = 0; c < cols; ++c) {
      const double* src = m.data() + c * m.outerStride() + r0;
      for (Eigen::Index i = 0; i < kBlock; ++i) block[i * cols + c] = src[i];
    }
  }
  for (; r0 < rows; ++r0) {
    for (Eigen::Index c = 0; c < cols; ++c) dst[r0 * cols + c] = m(r0, c);
  }
}

absl::StatusOr<Eigen::VectorXd> VectorFromRepeated(const google::protobuf::RepeatedField<double>& v,
                                                   const std::string& what, bool require_finite) {
  Eigen::VectorXd out(v.size());
  for (int i = 0; i < v.size(); ++i) {
    if (require_finite && !std::isfinite(v[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, "[", i, "] is ", v[i], "; only finite numbers are accepted"));
    }
    out(i) = v[i];
  }
  return out;
}

}  // namespace maas::convert
