// Batched multivariate normal log-densities.
//
//   log N(x | mu, Sigma) = -1/2 (D log(2 pi) + log det Sigma + (x - mu)^T Sigma^-1 (x - mu)).
//
// GaussianDensity factors Sigma = L L^T (Cholesky) once at creation; LogDensity then evaluates
// many points at once with one triangular solve on the whole block of rows, so the cost per point
// is D^2 flops with no per-point allocation. DiagonalGaussianDensity is the O(D) fast path for a
// diagonal covariance.
//
//   MAAS_ASSIGN_OR_RETURN(GaussianDensity density, GaussianDensity::Create(mean, covariance));
//   Eigen::VectorXd log_p = density.LogDensity(x_rows);  // x_rows: N x D, one point per row
#ifndef MAAS_COMMON_MATH_GAUSSIAN_H_
#define MAAS_COMMON_MATH_GAUSSIAN_H_

#include <Eigen/Core>

#include "absl/status/statusor.h"

namespace maas::math {

// log(2 pi).
inline constexpr double kLogTwoPi = 1.8378770664093454835606594728112;

class GaussianDensity {
 public:
  // N(mean, covariance). Returns INVALID_ARGUMENT, with a message naming the problem, if mean is
  // empty, covariance is not D x D for D = mean.size(), any entry is not finite, covariance is not
  // symmetric (|S_ij - S_ji| > 1e-10 * max_kl |S_kl|), or it is not positive definite (the
  // Cholesky factorization fails or has a non-positive pivot). Only the lower triangle is used
  // after the symmetry check.
  static absl::StatusOr<GaussianDensity> Create(
      const Eigen::Ref<const Eigen::VectorXd>& mean,
      const Eigen::Ref<const Eigen::MatrixXd>& covariance);

  // The log-density of each row of x_rows (N x D): an N-vector. N = 0 gives an empty vector.
  // REQUIRES: x_rows.cols() == dim() (a programming error otherwise: the process aborts with a
  // message; validate request shapes at the boundary).
  Eigen::VectorXd LogDensity(const Eigen::Ref<const Eigen::MatrixXd>& x_rows) const;

  int dim() const { return static_cast<int>(mean_.size()); }
  const Eigen::VectorXd& mean() const { return mean_; }
  // The upper Cholesky factor U = L^T, Sigma = U^T U.
  const Eigen::MatrixXd& cholesky_upper() const { return upper_; }
  // log det Sigma = 2 sum_i log U_ii.
  double log_det_covariance() const { return log_det_; }

 private:
  GaussianDensity(Eigen::VectorXd mean, Eigen::MatrixXd upper, double log_det);

  Eigen::VectorXd mean_;
  Eigen::MatrixXd upper_;
  double log_det_;
  double log_normalizer_;  // -1/2 (D log 2 pi + log det Sigma)
};

class DiagonalGaussianDensity {
 public:
  // N(mean, diag(variances)). Returns INVALID_ARGUMENT if mean is empty, the sizes differ, any
  // entry is not finite, or a variance is not > 0.
  static absl::StatusOr<DiagonalGaussianDensity> Create(
      const Eigen::Ref<const Eigen::VectorXd>& mean,
      const Eigen::Ref<const Eigen::VectorXd>& variances);

  // As GaussianDensity::LogDensity (same REQUIRES), in O(N D).
  Eigen::VectorXd LogDensity(const Eigen::Ref<const Eigen::MatrixXd>& x_rows) const;

  int dim() const { return static_cast<int>(mean_.size()); }
  const Eigen::VectorXd& mean() const { return mean_; }
  const Eigen::VectorXd& variances() const { return variances_; }
  double log_det_covariance() const { return log_det_; }

 private:
  DiagonalGaussianDensity(Eigen::VectorXd mean, Eigen::VectorXd variances);

  Eigen::VectorXd mean_;
  Eigen::VectorXd variances_;
  Eigen::VectorXd inv_stddev_;
  double log_det_;
  double log_normalizer_;
};

}  // namespace maas::math

#endif  // MAAS_COMMON_MATH_GAUSSIAN_H_
