// Conversions between maas.common.v1.Matrix and Eigen, with validation of untrusted input.
//
//   MAAS_ASSIGN_OR_RETURN(Eigen::MatrixXd x, MatrixFromProto(request.x(), "x"));
#ifndef MAAS_COMMON_CONVERT_MATRIX_H_
#define MAAS_COMMON_CONVERT_MATRIX_H_

#include <string>

#include "Eigen/Dense"
#include "absl/status/statusor.h"
#include "maas/common/v1/common.pb.h"

namespace maas::convert {

// Row-major proto -> Eigen. INVALID_ARGUMENT (naming `what`) when values.size() != rows * cols, or
// when `require_finite` and a value is NaN or infinite (the message names the first offending row
// and column).
absl::StatusOr<Eigen::MatrixXd> MatrixFromProto(const maas::common::v1::Matrix& m,
                                                const std::string& what,
                                                bool require_finite = true);

// Eigen -> row-major proto. Overwrites `out`.
void MatrixToProto(const Eigen::Ref<const Eigen::MatrixXd>& m, maas::common::v1::Matrix* out);

// A repeated double field -> Eigen vector; INVALID_ARGUMENT naming `what` on NaN/Inf when
// `require_finite`.
absl::StatusOr<Eigen::VectorXd> VectorFromRepeated(const google::protobuf::RepeatedField<double>& v,
                                                   const std::string& what,
                                                   bool require_finite = true);

}  // namespace maas::convert

#endif  // MAAS_COMMON_CONVERT_MATRIX_H_
