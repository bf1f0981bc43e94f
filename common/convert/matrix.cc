#include "common/convert/matrix.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace maas::convert {

absl::StatusOr<Eigen::MatrixXd> MatrixFromProto(const maas::common::v1::Matrix& m,
                                                const std::string& what, bool require_finite) {
  const uint64_t rows = m.rows();
  const uint64_t cols = m.cols();
  if (rows * cols != static_cast<uint64_t>(m.values_size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": a ", rows, " x ", cols, " matrix needs ", rows * cols, " values (row-major), got ",
        m.values_size(), "; set rows, cols and values consistently"));
  }
  Eigen::MatrixXd out(rows, cols);
  for (uint64_t r = 0; r < rows; ++r) {
    for (uint64_t c = 0; c < cols; ++c) {
      const double v = m.values(static_cast<int>(r * cols + c));
      if (require_finite && !std::isfinite(v)) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": value at row ", r, ", column ", c,
                                                       " is ", v,
                                                       "; only finite numbers are accepted"));
      }
      out(r, c) = v;
    }
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
