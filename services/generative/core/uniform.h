// The `uniform` family: a box [low, high] per dimension, no latent variable.
//   density p(x) = prod_d 1 / (high_d - low_d) inside the box (boundaries included), 0 outside.
//   Sample: x_d = low_d + (high_d - low_d) * u_d, u_d ~ U(0,1) drawn in dimension order.
//   Fit (maximum likelihood): low = per-dimension minimum, high = per-dimension maximum of the
//   rows.
#ifndef MAAS_SERVICES_GENERATIVE_CORE_UNIFORM_H_
#define MAAS_SERVICES_GENERATIVE_CORE_UNIFORM_H_

#include <memory>

#include "absl/status/statusor.h"
#include "maas/generative/v1/generative.pb.h"
#include "services/generative/core/family.h"
#include "services/generative/core/model.h"

namespace maas::generative {

// The registry entry of the family (build from UniformSpec, fit with UniformFit).
Family UniformFamily();

class UniformModel final : public GenerativeModel {
 public:
  // Validates the spec: D >= 1, equal lengths, finite bounds, high > low in every dimension.
  static absl::StatusOr<std::unique_ptr<UniformModel>> Create(const v1::UniformSpec& spec);

  std::string family() const override { return "uniform"; }
  int64_t MemoryBytes() const override { return sizeof(*this) + EigenBytes(low_, high_, width_); }
  int dimension() const override { return static_cast<int>(low_.size()); }
  int latent_width() const override { return 0; }
  void Sample(uint64_t seed, uint64_t first_index, Eigen::Ref<RowMatrixXd> x,
              RowMatrixXd* latents) const override;
  bool tractable() const override { return true; }
  Eigen::VectorXd ExactLogLikelihood(const Eigen::Ref<const Eigen::MatrixXd>& x) const override;

 private:
  UniformModel(Eigen::VectorXd low, Eigen::VectorXd high);
  Eigen::VectorXd low_;
  Eigen::VectorXd high_;  // as given: low_ + width_ can round below it
  Eigen::VectorXd width_;
  double log_volume_;
};

// Streaming maximum-likelihood fit: per-dimension running min and max.
class UniformFitter {
 public:
  // Adds rows (N x D, finite). The first call fixes D; later calls must match it.
  absl::Status AddRows(const Eigen::Ref<const Eigen::MatrixXd>& rows);
  // The fitted spec. FAILED_PRECONDITION when no rows were added or a dimension is constant (high
  // == low has no density).
  absl::StatusOr<v1::UniformSpec> Finish() const;
  // Mean log-likelihood per row of the training data under the fitted box.
  uint64_t num_rows() const { return num_rows_; }

 private:
  Eigen::VectorXd min_;
  Eigen::VectorXd max_;
  uint64_t num_rows_ = 0;
};

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_CORE_UNIFORM_H_
