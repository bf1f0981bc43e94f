#include "services/generative/core/linear_gaussian.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/math/gaussian.h"
#include "common/random/distributions.h"
#include "common/random/item_rng.h"
#include "services/generative/core/row_kernels.h"
#include "services/generative/core/sample_product.h"

namespace maas::generative {
namespace {

// The exact posterior N(m, (L_M L_M^T)^-1) of one row.
class GaussianPosterior final : public LatentProposal {
 public:
  GaussianPosterior(Eigen::VectorXd mean, Eigen::MatrixXd lower, double log_det_precision)
      : mean_(std::move(mean)),
        lower_(std::move(lower)),
        log_norm_(-0.5 *
                  (static_cast<double>(mean_.size()) * math::kLogTwoPi - log_det_precision)) {}

  void Sample(random::ItemRng& rng, Eigen::Ref<Eigen::VectorXd> z) const override {
    Eigen::VectorXd eps(mean_.size());
    random::FillNormal(rng, eps);
    rows::BackSubstituteTransposed(lower_, eps.data());
    for (Eigen::Index j = 0; j < mean_.size(); ++j) z(j) = mean_(j) + eps(j);
  }

  double LogDensity(const Eigen::Ref<const Eigen::VectorXd>& z) const override {
    const Eigen::Index l = mean_.size();
    Eigen::VectorXd d(l);
    for (Eigen::Index j = 0; j < l; ++j) d(j) = z(j) - mean_(j);
    double quad = 0.0;
    for (Eigen::Index i = 0; i < l; ++i) {
      // (L_M^T d)_i = sum_{j >= i} L_M(j, i) d_j.
      const double t = rows::Dot(lower_.data() + i * l + i, d.data() + i, l - i);
      quad += t * t;
    }
    return log_norm_ - 0.5 * quad;
  }

 private:
  Eigen::VectorXd mean_;
  Eigen::MatrixXd lower_;  // L_M (a copy: the proposal may outlive the model)
  double log_norm_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<LinearGaussianModel>> LinearGaussianModel::Create(
    const std::string& family, Eigen::MatrixXd loadings, Eigen::VectorXd mean,
    Eigen::VectorXd noise_variance) {
  const Eigen::Index d = loadings.rows(), l = loadings.cols();
  if (d < 1 || l < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(family, ".loadings is ", d, " x ", l, "; it must be D x L with D, L >= 1"));
  }
  if (!loadings.allFinite()) {
    return absl::InvalidArgumentError(
        absl::StrCat(family, ".loadings has a NaN or infinite value"));
  }
  if (mean.size() != d) {
    return absl::InvalidArgumentError(absl::StrCat(family, ".mean has ", mean.size(),
                                                   " values but loadings has D = ", d, " rows"));
  }
  if (!mean.allFinite()) {
    return absl::InvalidArgumentError(absl::StrCat(family, ".mean has a NaN or infinite value"));
  }
  if (noise_variance.size() != d) {
    return absl::InvalidArgumentError(
        absl::StrCat(family, ".noise_variance has ", noise_variance.size(), " values, needs ", d));
  }
  for (Eigen::Index j = 0; j < d; ++j) {
    if (!(noise_variance(j) > 0.0) || !std::isfinite(noise_variance(j))) {
      return absl::InvalidArgumentError(absl::StrCat(
          family, ".noise_variance is ", noise_variance(j), "; it must be a finite number > 0"));
    }
  }
  std::unique_ptr<LinearGaussianModel> m(new LinearGaussianModel());
  m->family_ = family;
  m->loadings_ = std::move(loadings);
  m->mean_ = std::move(mean);
  m->psi_ = std::move(noise_variance);
  m->stddev_ = m->psi_.array().sqrt();
  m->inv_psi_ = m->psi_.cwiseInverse();
  m->scaled_ = m->inv_psi_.asDiagonal() * m->loadings_;
  m->loadings_panels_ = PackPanels(l, d, /*triangular=*/false, [&](int64_t k, int64_t j) {
    return m->loadings_(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(k));
  });
  m->gram_ = m->loadings_.transpose() * m->scaled_;
  m->gram_ = (0.5 * (m->gram_ + m->gram_.transpose())).eval();
  const Eigen::MatrixXd precision = Eigen::MatrixXd::Identity(l, l) + m->gram_;
  if (!rows::CholeskyLower(precision, &m->post_lower_)) {
    return absl::InvalidArgumentError(
        absl::StrCat(family,
                     ": I + W^T Psi^-1 W is not positive definite in float64 (loadings "
                     "or noise_variance out of range)"));
  }
  m->post_log_det_ = 2.0 * m->post_lower_.diagonal().array().log().sum();
  Eigen::MatrixXd cov = m->loadings_ * m->loadings_.transpose();
  cov.diagonal() += m->psi_;
  if (!rows::CholeskyLower(cov, &m->cov_lower_)) {
    return absl::InvalidArgumentError(absl::StrCat(
        family,
        ": W W^T + diag(noise_variance) is not positive definite in float64 (loadings or "
        "noise_variance out of range)"));
  }
  const double dd = static_cast<double>(d);
  const double log_det_cov = 2.0 * m->cov_lower_.diagonal().array().log().sum();
  m->log_norm_marginal_ = -0.5 * (dd * math::kLogTwoPi + log_det_cov);
  m->log_norm_likelihood_ = -0.5 * (dd * math::kLogTwoPi + m->psi_.array().log().sum());
  if (!std::isfinite(m->log_norm_marginal_) || !std::isfinite(m->log_norm_likelihood_) ||
      !std::isfinite(m->post_log_det_)) {
    return absl::InvalidArgumentError(
        absl::StrCat(family, ": the log-determinant of the covariance is not finite"));
  }
  return m;
}

void LinearGaussianModel::Sample(uint64_t seed, uint64_t first_index, Eigen::Ref<RowMatrixXd> x,
                                 RowMatrixXd* latents) const {
  const Eigen::Index d = dimension(), l = latent_dim();
  if (latents != nullptr) latents->resize(x.rows(), l);
  // Samples in chunks: each sample's L + D normals (z, then eps) side by side, then one product
  // x = mu + W z + sqrt(psi) .* eps for the chunk (sample_product.h: fixed order per element).
  constexpr Eigen::Index kChunk = 96;  // its normals stay in L2 for the product
  const Eigen::Index width = l + d;
  // Not zero-filled (every value is drawn before it is read): a served batch of ~170 rows would
  // otherwise pay a 640 KB memset per call.
  const std::unique_ptr<double[]> normals(
      new double[static_cast<size_t>(std::min(kChunk, x.rows()) * width)]);
  std::vector<const double*> rows(static_cast<size_t>(std::min(kChunk, x.rows())));
  std::vector<double*> out_rows(rows.size());
  for (Eigen::Index c0 = 0; c0 < x.rows(); c0 += kChunk) {
    const Eigen::Index m = std::min(kChunk, x.rows() - c0);
    for (Eigen::Index i = 0; i < m; ++i) {
      double* row = normals.get() + i * width;
      random::ItemRng rng(seed, kSampleStream, first_index + static_cast<uint64_t>(c0 + i));
      rng.FillNormals(row, static_cast<size_t>(width));
      rows[static_cast<size_t>(i)] = row;
      out_rows[static_cast<size_t>(i)] = x.row(c0 + i).data();
      if (latents != nullptr) std::copy(row, row + l, latents->row(c0 + i).data());
    }
    SampleProductArgs args;
    args.b = &loadings_panels_;
    args.m = m;
    args.a = rows.data();
    args.bias = mean_.data();
    args.noise_scale = stddev_.data();
    args.noise_offset = l;
    args.out_rows = out_rows.data();
    SampleProduct(args);
  }
}

Eigen::VectorXd LinearGaussianModel::ExactLogLikelihood(
    const Eigen::Ref<const Eigen::MatrixXd>& x) const {
  const Eigen::Index d = dimension();
  Eigen::VectorXd out(x.rows());
  Eigen::VectorXd r(d);
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    for (Eigen::Index j = 0; j < d; ++j) r(j) = x(i, j) - mean_(j);
    out(i) = log_norm_marginal_ - 0.5 * rows::ForwardSubstituteSquaredNorm(cov_lower_, r.data());
  }
  return out;
}

void LinearGaussianModel::SamplePrior(random::ItemRng& rng, Eigen::Ref<Eigen::VectorXd> z) const {
  random::FillNormal(rng, z);
}

double LinearGaussianModel::LogPrior(const Eigen::Ref<const Eigen::VectorXd>& z) const {
  const Eigen::VectorXd v = z;
  return -0.5 * (static_cast<double>(v.size()) * math::kLogTwoPi +
                 rows::Dot(v.data(), v.data(), v.size()));
}

void LinearGaussianModel::LogLikelihoodGivenLatent(const Eigen::Ref<const Eigen::VectorXd>& x,
                                                   const Eigen::Ref<const Eigen::MatrixXd>& z,
                                                   Eigen::Ref<Eigen::VectorXd> out) const {
  const Eigen::Index d = dimension(), l = latent_dim();
  Eigen::VectorXd r(d);
  double c = 0.0;
  for (Eigen::Index j = 0; j < d; ++j) {
    r(j) = x(j) - mean_(j);
    c += r(j) * r(j) * inv_psi_(j);
  }
  Eigen::VectorXd b(l);
  for (Eigen::Index k = 0; k < l; ++k) b(k) = rows::Dot(scaled_.data() + k * d, r.data(), d);
  Eigen::VectorXd zs(l), gz(l);
  for (Eigen::Index s = 0; s < z.rows(); ++s) {
    for (Eigen::Index k = 0; k < l; ++k) zs(k) = z(s, k);
    gz.setZero();
    rows::AddMatrixTimesVector(gram_, zs.data(), gz.data());
    const double quad =
        c - 2.0 * rows::Dot(b.data(), zs.data(), l) + rows::Dot(zs.data(), gz.data(), l);
    out(s) = log_norm_likelihood_ - 0.5 * quad;
  }
}

double LinearGaussianModel::LogLikelihoodGradient(const Eigen::Ref<const Eigen::VectorXd>& x,
                                                  const Eigen::Ref<const Eigen::VectorXd>& z,
                                                  Eigen::Ref<Eigen::VectorXd> grad) const {
  const Eigen::Index d = dimension(), l = latent_dim();
  const Eigen::VectorXd zs = z;
  Eigen::VectorXd acc = Eigen::VectorXd::Zero(d);
  rows::AddMatrixTimesVector(loadings_, zs.data(), acc.data());
  Eigen::VectorXd r(d);
  double quad = 0.0;
  for (Eigen::Index j = 0; j < d; ++j) {
    r(j) = (x(j) - mean_(j)) - acc(j);
    quad += r(j) * r(j) * inv_psi_(j);
  }
  for (Eigen::Index k = 0; k < l; ++k) grad(k) = rows::Dot(scaled_.data() + k * d, r.data(), d);
  return log_norm_likelihood_ - 0.5 * quad;
}

std::unique_ptr<LatentProposal> LinearGaussianModel::MakeProposal(
    const Eigen::Ref<const Eigen::VectorXd>& x) const {
  const Eigen::Index d = dimension(), l = latent_dim();
  Eigen::VectorXd r(d);
  for (Eigen::Index j = 0; j < d; ++j) r(j) = x(j) - mean_(j);
  Eigen::VectorXd m(l);
  for (Eigen::Index k = 0; k < l; ++k) m(k) = rows::Dot(scaled_.data() + k * d, r.data(), d);
  // m = (L_M L_M^T)^-1 b: forward then back substitution.
  rows::ForwardSubstituteSquaredNorm(post_lower_, m.data());
  rows::BackSubstituteTransposed(post_lower_, m.data());
  return std::make_unique<GaussianPosterior>(std::move(m), post_lower_, post_log_det_);
}

}  // namespace maas::generative
