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
  values->Resize(static_cast<int>(m.rows() * m.cols()), 0.0);
  double* dst = values->mutable_data();
  for (Eigen::Index r = 0; r < m.rows(); ++r) {
    for (Eigen::Index c = 0; c < m.cols(); ++c) *dst++ = m(r, c);
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
