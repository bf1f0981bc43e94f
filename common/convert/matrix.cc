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

// dst (cols x rows, row-major) = the transpose of src (rows x cols, row-major, rows `stride`
// apart), in 8 x 8 tiles: each tile's reads and writes are runs of 8 contiguous doubles (a cache
// line), so a large matrix moves at memory speed either way. Element by element, one side took a
// cache miss per value (a large request converted at ~0.3 GB/s, the 2026-12-06 performance hunt).
void TransposeTiled(const double* src, int64_t rows, int64_t cols, int64_t stride, double* dst) {
  constexpr int64_t kTile = 8;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
    const int64_t r1 = std::min(rows, r0 + kTile);
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const int64_t c1 = std::min(cols, c0 + kTile);
      for (int64_t c = c0; c < c1; ++c) {
        for (int64_t r = r0; r < r1; ++r) dst[c * rows + r] = src[r * stride + c];
      }
    }
  }
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
  Eigen::MatrixXd out(rows, cols);
  // The values are a row-major rows x cols matrix; its transpose, row-major, is `out` column-major.
  TransposeTiled(src, static_cast<int64_t>(rows), static_cast<int64_t>(cols),
                 static_cast<int64_t>(cols), out.data());
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
  // m column-major is a row-major cols x rows matrix (rows outerStride apart); its transpose,
  // row-major, is the proto's values.
  TransposeTiled(m.data(), cols, rows, m.outerStride(), dst);
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
