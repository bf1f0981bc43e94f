#include "common/math/gaussian.h"

#include <Eigen/Cholesky>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace maas::math {
namespace {

// A broken REQUIRES is a programming error: fail loudly rather than read out of bounds.
void CheckColumns(const char* who, Eigen::Index cols, int dim) {
  if (cols != dim) {
    std::fprintf(stderr, "%s::LogDensity: x_rows has %lld columns, the density has dimension %d\n",
                 who, static_cast<long long>(cols), dim);
    std::abort();
  }
}

absl::Status CheckMean(const char* who, const Eigen::Ref<const Eigen::VectorXd>& mean) {
  if (mean.size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": mean must not be empty"));
  }
  for (Eigen::Index i = 0; i < mean.size(); ++i) {
    if (!std::isfinite(mean[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": mean[", i, "] = ", mean[i], " is not finite"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

GaussianDensity::GaussianDensity(Eigen::VectorXd mean, Eigen::MatrixXd upper, double log_det)
    : mean_(std::move(mean)),
      upper_(std::move(upper)),
      log_det_(log_det),
      log_normalizer_(-0.5 * (static_cast<double>(mean_.size()) * kLogTwoPi + log_det)) {}

absl::StatusOr<GaussianDensity> GaussianDensity::Create(
    const Eigen::Ref<const Eigen::VectorXd>& mean,
    const Eigen::Ref<const Eigen::MatrixXd>& covariance) {
  constexpr const char* kWho = "GaussianDensity";
  if (absl::Status status = CheckMean(kWho, mean); !status.ok()) return status;
  const Eigen::Index dim = mean.size();
  if (covariance.rows() != dim || covariance.cols() != dim) {
    return absl::InvalidArgumentError(absl::StrCat(kWho, ": covariance must be ", dim, "x", dim,
                                                   " to match a mean of size ", dim, ", got ",
                                                   covariance.rows(), "x", covariance.cols()));
  }
  double max_abs = 0.0;
  for (Eigen::Index j = 0; j < dim; ++j) {
    for (Eigen::Index i = 0; i < dim; ++i) {
      const double v = covariance(i, j);
      if (!std::isfinite(v)) {
        return absl::InvalidArgumentError(
            absl::StrCat(kWho, ": covariance(", i, ", ", j, ") = ", v, " is not finite"));
      }
      max_abs = std::max(max_abs, std::abs(v));
    }
  }
  const double tolerance = 1e-10 * max_abs;
  for (Eigen::Index j = 0; j < dim; ++j) {
    for (Eigen::Index i = j + 1; i < dim; ++i) {
      if (std::abs(covariance(i, j) - covariance(j, i)) > tolerance) {
        return absl::InvalidArgumentError(absl::StrCat(
            kWho, ": covariance is not symmetric: covariance(", i, ", ", j,
            ") = ", covariance(i, j), " but covariance(", j, ", ", i, ") = ", covariance(j, i)));
      }
    }
  }
  const Eigen::LLT<Eigen::MatrixXd, Eigen::Lower> llt(covariance);
  Eigen::MatrixXd upper = llt.matrixU();
  bool positive_pivots = llt.info() == Eigen::Success;
  double log_det = 0.0;
  for (Eigen::Index i = 0; positive_pivots && i < dim; ++i) {
    const double pivot = upper(i, i);
    positive_pivots = pivot > 0.0 && std::isfinite(pivot);
    log_det += 2.0 * std::log(pivot);
  }
  if (!positive_pivots || !std::isfinite(log_det)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWho, ": covariance (", dim, "x", dim,
                     ") is not positive definite: its Cholesky factorization failed"));
  }
  return GaussianDensity(mean, std::move(upper), log_det);
}

Eigen::VectorXd GaussianDensity::LogDensity(const Eigen::Ref<const Eigen::MatrixXd>& x_rows) const {
  CheckColumns("GaussianDensity", x_rows.cols(), dim());
  if (x_rows.rows() == 0) return Eigen::VectorXd(0);  // Eigen's triangular solve needs a row.
  // Z = (X - 1 mu^T) U^-1 row by row is z_i = L^-1 (x_i - mu), so ||z_i||^2 is the Mahalanobis
  // distance. One right-hand triangular solve for the whole block.
  Eigen::MatrixXd centered = x_rows.rowwise() - mean_.transpose();
  upper_.triangularView<Eigen::Upper>().solveInPlace<Eigen::OnTheRight>(centered);
  return (log_normalizer_ - 0.5 * centered.rowwise().squaredNorm().array()).matrix();
}

DiagonalGaussianDensity::DiagonalGaussianDensity(Eigen::VectorXd mean, Eigen::VectorXd variances)
    : mean_(std::move(mean)),
      variances_(std::move(variances)),
      inv_stddev_(variances_.array().rsqrt().matrix()),
      // std::log per element: Eigen's vectorized log() takes a subnormal variance for 2.2e-308.
      log_det_(variances_.array().unaryExpr([](double v) { return std::log(v); }).sum()),
      log_normalizer_(-0.5 * (static_cast<double>(mean_.size()) * kLogTwoPi + log_det_)) {}

absl::StatusOr<DiagonalGaussianDensity> DiagonalGaussianDensity::Create(
    const Eigen::Ref<const Eigen::VectorXd>& mean,
    const Eigen::Ref<const Eigen::VectorXd>& variances) {
  constexpr const char* kWho = "DiagonalGaussianDensity";
  if (absl::Status status = CheckMean(kWho, mean); !status.ok()) return status;
  if (variances.size() != mean.size()) {
    return absl::InvalidArgumentError(absl::StrCat(kWho, ": variances has size ", variances.size(),
                                                   ", the mean has size ", mean.size()));
  }
  for (Eigen::Index i = 0; i < variances.size(); ++i) {
    if (!(variances[i] > 0.0) || !std::isfinite(variances[i])) {
      return absl::InvalidArgumentError(absl::StrCat(kWho, ": variances[", i, "] = ", variances[i],
                                                     " must be positive and finite"));
    }
  }
  DiagonalGaussianDensity density(mean, variances);
  if (!std::isfinite(density.log_det_)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWho, ": log det of the covariance is not finite (", density.log_det_, ")"));
  }
  return density;
}

Eigen::VectorXd DiagonalGaussianDensity::LogDensity(
    const Eigen::Ref<const Eigen::MatrixXd>& x_rows) const {
  CheckColumns("DiagonalGaussianDensity", x_rows.cols(), dim());
  const Eigen::MatrixXd scaled = (x_rows.rowwise() - mean_.transpose()) * inv_stddev_.asDiagonal();
  return (log_normalizer_ - 0.5 * scaled.rowwise().squaredNorm().array()).matrix();
}

}  // namespace maas::math
