#include "services/generative/core/linear_gaussian.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "Eigen/Eigenvalues"
#include "Eigen/QR"
#include "Eigen/SVD"
#include "absl/strings/str_cat.h"
#include "common/math/gaussian.h"
#include "common/math/gemm.h"
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
  // As the fitters require (ppca L < D, factor_analysis L <= D): more latent directions than data
  // dimensions describe no more distributions, and cost L x L matrices (L = 20 000 from a 160 KB
  // spec took 6 GB).
  if (l > d) {
    return absl::InvalidArgumentError(absl::StrCat(
        family, ".loadings is ", d, " x ", l, ": latent dimension L = ", l,
        " is above the data dimension D = ", d, "; it must be D x L with 1 <= L <= D"));
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
  m->max_abs_scaled_ = m->scaled_.cwiseAbs().maxCoeff();
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
  // log det C = log det (I + G) + sum log psi (the matrix determinant lemma): no Cholesky of the
  // D x D covariance, whose condition number grows with the square of the signal-to-noise ratio.
  const double dd = static_cast<double>(d);
  const double log_det_psi = ExactLog(m->psi_.array()).sum();
  m->log_norm_marginal_ = -0.5 * (dd * math::kLogTwoPi + m->post_log_det_ + log_det_psi);
  m->log_norm_likelihood_ = -0.5 * (dd * math::kLogTwoPi + log_det_psi);
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

LinearGaussianModel::RowExpansion LinearGaussianModel::ExpandScaled(
    const Eigen::Ref<const Eigen::VectorXd>& x, double scale) const {
  const Eigen::Index d = dimension(), l = latent_dim();
  RowExpansion e;
  e.scale = scale;
  // Dividing by a power of two is exact (scale 1: r = x - mu as it is).
  Eigen::VectorXd r(d);
  for (Eigen::Index j = 0; j < d; ++j) r(j) = x(j) / scale - mean_(j) / scale;
  // m = (I + G)^-1 W^T Psi^-1 r: its L sums interleaved, then forward and back substitution.
  e.posterior_mean.resize(l);
  rows::DotColumns(scaled_.data(), l, r.data(), d, e.posterior_mean.data());
  rows::ForwardSubstituteSquaredNorm(post_lower_, e.posterior_mean.data());
  rows::BackSubstituteTransposed(post_lower_, e.posterior_mean.data());
  // The residual at m, computed directly: it is small where x is near the model's subspace, and
  // the expansion around 0 (r^T Psi^-1 r - 2 b^T z + z^T G z) lost it to cancellation.
  Eigen::VectorXd wm = Eigen::VectorXd::Zero(d);
  rows::AddMatrixTimesVector(loadings_, e.posterior_mean.data(), wm.data());
  for (Eigen::Index j = 0; j < d; ++j) {
    r(j) -= wm(j);
    e.residual_quad += r(j) * r(j) * inv_psi_(j);
  }
  e.residual_gradient.resize(l);
  rows::DotColumns(scaled_.data(), l, r.data(), d, e.residual_gradient.data());
  return e;
}

namespace {

// The least power of two above every |v| of the given vectors and 1 (v finite), at most 2^1023.
double PowerOfTwoAbove(std::initializer_list<const Eigen::Ref<const Eigen::VectorXd>*> vectors) {
  double largest = 1.0;
  for (const auto* v : vectors) largest = std::max(largest, v->cwiseAbs().maxCoeff());
  // At most 2^1023 (2^1024 is +inf): then |v| / scale < 2.
  return std::ldexp(
      1.0, std::min(std::ilogb(largest) + 1, std::numeric_limits<double>::max_exponent - 1));
}

}  // namespace

LinearGaussianModel::RowExpansion LinearGaussianModel::Expand(
    const Eigen::Ref<const Eigen::VectorXd>& x) const {
  return RescaledIfOverflowed(x, ExpandScaled(x, 1.0));
}

LinearGaussianModel::RowExpansion LinearGaussianModel::RescaledIfOverflowed(
    const Eigen::Ref<const Eigen::VectorXd>& x, RowExpansion e) const {
  if ((e.posterior_mean.allFinite() && std::isfinite(e.residual_quad) &&
       e.residual_gradient.allFinite()) ||
      !x.allFinite()) {
    return e;
  }
  // x - mu, or W^T Psi^-1 (x - mu), or a square overflowed (which made 0 * inf = NaN further on):
  // the same on (x - mu) / scale, with |(x - mu) / scale| < 2.
  const Eigen::Ref<const Eigen::VectorXd> mean(mean_);
  return ExpandScaled(x, PowerOfTwoAbove({&x, &mean}));
}

double LinearGaussianModel::DirectLogLikelihood(const Eigen::Ref<const Eigen::VectorXd>& x,
                                                const Eigen::Ref<const Eigen::VectorXd>& z) const {
  // A non-finite z has prior density 0: its weight is 0 whatever this says.
  if (!z.allFinite() || !x.allFinite()) return -std::numeric_limits<double>::infinity();
  const Eigen::Index d = dimension();
  const Eigen::Ref<const Eigen::VectorXd> mean(mean_);
  const double scale = PowerOfTwoAbove({&x, &mean, &z});
  const Eigen::VectorXd zs = z / scale;
  Eigen::VectorXd acc = Eigen::VectorXd::Zero(d);
  rows::AddMatrixTimesVector(loadings_, zs.data(), acc.data());
  double quad = 0.0;
  for (Eigen::Index j = 0; j < d; ++j) {
    const double r = (x(j) / scale - mean_(j) / scale) - acc(j);
    quad += r * r * inv_psi_(j);
  }
  return log_norm_likelihood_ - (0.5 * quad) * scale * scale;
}

Eigen::VectorXd LinearGaussianModel::ExactLogLikelihood(
    const Eigen::Ref<const Eigen::MatrixXd>& x) const {
  // r^T C^-1 r = |r - W m|^2_{Psi^-1} + |m|^2 with m the posterior mean (Woodbury): two
  // non-negative terms, and an error in m changes the sum only to second order.
  const auto log_density = [this](const RowExpansion& e) {
    // Even (x - mu) / scale gave no finite m: |m|, hence r^T C^-1 r >= |m|^2, is beyond float64.
    if (!e.posterior_mean.allFinite()) return -std::numeric_limits<double>::infinity();
    const double prior_quad =
        rows::Dot(e.posterior_mean.data(), e.posterior_mean.data(), e.posterior_mean.size());
    // Scaled back last: a quadratic form beyond float64 is +inf here and log p(x) -inf.
    return log_norm_marginal_ - 0.5 * (e.residual_quad + prior_quad) * e.scale * e.scale;
  };
  // Expand(row) of kAcross rows at once, coordinate-major, with the across kernels (each row's
  // sums in its own SIMD lane, the same bits as alone), so the latency of the 2 L sequential sums
  // of D terms per row overlaps across the block: 4 rows at a time (rows::DotRows) ran ppca D =
  // 784, L = 50 at ~1.3 G multiply-adds a second, 6x a numpy Woodbury (2026-12-06).
  constexpr Eigen::Index kBlock = rows::kAcross;
  const Eigen::Index n = x.rows(), d = dimension(), l = latent_dim();
  const rows::SimdKernels& kernels = rows::BestSimdKernels();
  const Eigen::Ref<const Eigen::VectorXd> mean(mean_);
  // W^T Psi^-1 rho (RowExpansion::residual_gradient) matters here only through Expand's overflow
  // test, and it cannot overflow while max |Psi^-1 W| * sum_j |rho_j| is well inside float64
  // (every product and partial sum is below it): computed only for a block with a row past that.
  std::vector<double> rt(
      static_cast<size_t>(kBlock * d));  // r, then rho, of row t at j * kBlock + t
  std::vector<double> wm(static_cast<size_t>(kBlock * d));  // W m, likewise
  std::vector<double> pm(static_cast<size_t>(kBlock * l));  // m, likewise (k * kBlock + t)
  std::vector<double> grad(static_cast<size_t>(kBlock * l));
  RowExpansion expanded[kBlock];
  Eigen::VectorXd out(n);
  for (Eigen::Index i0 = 0; i0 < n; i0 += kBlock) {
    const Eigen::Index m = std::min(kBlock, n - i0);
    for (Eigen::Index j = 0; j < d; ++j) {
      double* rj = rt.data() + j * kBlock;
      for (Eigen::Index t = 0; t < m; ++t) rj[t] = x(i0 + t, j) - mean_(j);
      for (Eigen::Index t = m; t < kBlock; ++t) rj[t] = 0.0;
    }
    kernels.dot_across(scaled_.data(), d, l, rt.data(), d, pm.data());
    for (Eigen::Index t = 0; t < kBlock; ++t) {
      if (t < m) {
        RowExpansion& e = expanded[t];
        // Reset in place: the vectors keep their storage from block to block (no allocation per
        // row, which was most of a small model's EXACT time).
        e.scale = 1.0;
        e.residual_quad = 0.0;
        e.residual_gradient.resize(0);
        e.posterior_mean.resize(l);
        for (Eigen::Index k = 0; k < l; ++k) e.posterior_mean(k) = pm[k * kBlock + t];
        rows::ForwardSubstituteSquaredNorm(post_lower_, e.posterior_mean.data());
        rows::BackSubstituteTransposed(post_lower_, e.posterior_mean.data());
        for (Eigen::Index k = 0; k < l; ++k) pm[k * kBlock + t] = e.posterior_mean(k);
      } else {
        for (Eigen::Index k = 0; k < l; ++k) pm[k * kBlock + t] = 0.0;
      }
    }
    std::fill(wm.begin(), wm.end(), 0.0);
    kernels.add_matrix_times_across(loadings_.data(), d, l, pm.data(), wm.data());
    double quad[kBlock] = {}, abs_sum[kBlock] = {};
    for (Eigen::Index j = 0; j < d; ++j) {
      double* rj = rt.data() + j * kBlock;
      const double* wj = wm.data() + j * kBlock;
      for (Eigen::Index t = 0; t < kBlock; ++t) {
        rj[t] -= wj[t];
        quad[t] += rj[t] * rj[t] * inv_psi_(j);
        abs_sum[t] += std::abs(rj[t]);
      }
    }
    bool need_gradient = false;
    for (Eigen::Index t = 0; t < m; ++t) {
      expanded[t].residual_quad = quad[t];
      need_gradient |= !(max_abs_scaled_ * abs_sum[t] <= 0.25 * std::numeric_limits<double>::max());
    }
    if (need_gradient) {
      kernels.dot_across(scaled_.data(), d, l, rt.data(), d, grad.data());
      for (Eigen::Index t = 0; t < m; ++t) {
        expanded[t].residual_gradient.resize(l);
        for (Eigen::Index k = 0; k < l; ++k)
          expanded[t].residual_gradient(k) = grad[k * kBlock + t];
      }
    }
    Eigen::VectorXd row;  // row i, copied only for the rare rescaled steps below
    for (Eigen::Index t = 0; t < m; ++t) {
      const Eigen::Index i = i0 + t;
      const RowExpansion* e = &expanded[t];
      RowExpansion rescaled;
      bool copied = false;
      if (!(e->posterior_mean.allFinite() && std::isfinite(e->residual_quad) &&
            e->residual_gradient.allFinite())) {
        row = x.row(i).transpose();
        copied = true;
        rescaled = RescaledIfOverflowed(row, std::move(expanded[t]));  // as Expand
        e = &rescaled;
      }
      out(i) = log_density(*e);
      if (out(i) == -std::numeric_limits<double>::infinity() && e->scale == 1.0) {
        if (!copied) row = x.row(i).transpose();
        if (row.allFinite()) {
          // r^T C^-1 r overflowed, but half of it, log p(x), may not: once more on
          // (x - mu) / scale.
          const Eigen::Ref<const Eigen::VectorXd> row_ref(row);
          out(i) = log_density(ExpandScaled(row, PowerOfTwoAbove({&row_ref, &mean})));
        }
      }
    }
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
  const Eigen::Index l = latent_dim();
  // |r - W z|^2_{Psi^-1} expanded around the posterior mean m (d = z - m):
  //   |rho|^2_{Psi^-1} - 2 (W^T Psi^-1 rho)^T d + d^T G d,  rho = r - W m,
  // exact for any m, O(L^2) per z, and its terms stay near the size of the result for the z an
  // estimator draws (the expansion around 0 subtracted terms of size |r|^2 / psi).
  // For x far from the mean the expansion is held scaled (RowExpansion): d / scale = z / scale -
  // m / scale, the quadratic form scaled back last. Where it still cannot answer (NaN or +inf from
  // terms beyond float64), the residual itself does (DirectLogLikelihood).
  const RowExpansion e = Expand(x);
  const double scale = e.scale;
  const bool expanded = e.posterior_mean.allFinite() && e.residual_gradient.allFinite();
  Eigen::VectorXd dz(l), gz(l);
  for (Eigen::Index s = 0; s < z.rows(); ++s) {
    if (expanded) {
      for (Eigen::Index k = 0; k < l; ++k) dz(k) = z(s, k) / scale - e.posterior_mean(k);
      gz.setZero();
      rows::AddMatrixTimesVector(gram_, dz.data(), gz.data());
      const double quad = e.residual_quad -
                          2.0 * rows::Dot(e.residual_gradient.data(), dz.data(), l) +
                          rows::Dot(dz.data(), gz.data(), l);
      const double value = log_norm_likelihood_ - 0.5 * quad * scale * scale;
      if (!std::isnan(value) && value != std::numeric_limits<double>::infinity()) {
        out(s) = value;
        continue;
      }
    }
    out(s) = DirectLogLikelihood(x, z.row(s).transpose());
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
  rows::DotColumns(scaled_.data(), l, r.data(), d, grad.data());
  const double value = log_norm_likelihood_ - 0.5 * quad;
  // inf - inf in the residual of an x or z far out: the value from the scaled residual (the
  // gradient is then not finite, and HMC rejects the move).
  return std::isnan(value) ? DirectLogLikelihood(x, z) : value;
}

std::unique_ptr<LatentProposal> LinearGaussianModel::MakeProposal(
    const Eigen::Ref<const Eigen::VectorXd>& x) const {
  RowExpansion e = Expand(x);
  // The true mean, scale * m; one beyond float64 (then p(x) underflows: r^T C^-1 r >= |m|^2) is
  // held at +-DBL_MAX, a finite proposal whose draws all have prior density 0, weight 0.
  constexpr double kMax = std::numeric_limits<double>::max();
  for (Eigen::Index k = 0; k < e.posterior_mean.size(); ++k) {
    const double m = e.posterior_mean(k) * e.scale;
    e.posterior_mean(k) = std::isnan(m) ? 0.0 : std::clamp(m, -kMax, kMax);
  }
  return std::make_unique<GaussianPosterior>(std::move(e.posterior_mean), post_lower_,
                                             post_log_det_);
}

double LinearGaussianValues(double d, double l) { return 3.0 * d * l + 3.0 * l * l; }

ModelSize LinearGaussianModelSize(const std::string& family, const common::v1::Matrix& loadings) {
  const double d = loadings.rows(), l = loadings.cols();
  ModelSize size;
  size.bytes = Float64Bytes(LinearGaussianValues(d, l));
  size.what =
      absl::StrCat("loadings ", loadings.rows(), " x ", loadings.cols(), " (three D x L and three ",
                   loadings.cols(), " x ", loadings.cols(), " matrices)");
  size.smaller =
      absl::StrCat("use fewer ", family, ".loadings rows or columns (latent dimensions)");
  return size;
}

Eigen::MatrixXd ScaledGram(const Eigen::MatrixXd& y, double n) {
  const auto rows = static_cast<std::size_t>(y.rows()), cols = static_cast<std::size_t>(y.cols());
  // Column-major Y is row-major Y^T (cols x rows), so C = Y^T (Y^T)^T is a row-major product; C is
  // symmetric ((Y^T Y)_ij and (Y^T Y)_ji are the same products summed in the same order), so only
  // its part on and right of the diagonal, in row-major terms, is computed: column blocks j0..j1
  // for rows i >= j0 (math::Gemm's value of an element does not depend on how the product is cut),
  // i.e. Eigen's upper triangle, then mirrored.
  constexpr std::size_t kBlock = 64;
  Eigen::MatrixXd gram(y.cols(), y.cols());
  for (std::size_t j0 = 0; j0 < cols; j0 += kBlock) {
    const std::size_t width = std::min(kBlock, cols - j0);
    math::Gemm(cols - j0, width, rows, y.data() + j0 * rows, rows, y.data() + j0 * rows, rows,
               math::Transpose::kYes, gram.data() + j0 * cols + j0, cols, /*accumulate=*/false);
  }
  gram.triangularView<Eigen::StrictlyLower>() = gram.transpose();
  gram /= n;
  return gram;
}

namespace {

// Ritz residual bounds of the subspace iteration: each of the top l pairs' |S x - theta x| at most
// kSubspaceTolerance of its own theta, or kSubspaceFloor of the largest (the rounding of S x itself
// is ~1e-16 of it): an eigenvalue is then within that residual, so the small ones of a matrix with
// a large top are not left 1e-12 of the top off (a log-likelihood term each).
constexpr double kSubspaceTolerance = 1e-12;
constexpr double kSubspaceFloor = 1e-14;
// Below this dimension the full decomposition is as cheap as the iteration.
constexpr Eigen::Index kSubspaceMinDimension = 128;

// A D x k start basis from a fixed sequence (splitmix64): the same on every machine.
Eigen::MatrixXd FixedStartBasis(Eigen::Index d, Eigen::Index k) {
  Eigen::MatrixXd basis(d, k);
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (Eigen::Index c = 0; c < k; ++c) {
    for (Eigen::Index r = 0; r < d; ++r) {
      uint64_t z = (state += 0x9E3779B97F4A7C15ull);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      z ^= z >> 31;
      basis(r, c) = static_cast<double>(z >> 11) * 0x1.0p-53 - 0.5;
    }
  }
  return basis;
}

// An orthonormal basis of the columns of `m` (thin Q of its Householder QR).
Eigen::MatrixXd Orthonormal(const Eigen::MatrixXd& m) {
  const Eigen::HouseholderQR<Eigen::MatrixXd> qr(m);
  return qr.householderQ() * Eigen::MatrixXd::Identity(m.rows(), m.cols());
}

// The subspace iteration of TopEigenpairsOfSymmetric; nullopt when it did not converge within
// `max_steps` (or a Ritz decomposition failed).
std::optional<TopEigenpairs> TopEigenpairsBySubspace(const Eigen::MatrixXd& s, int l,
                                                     const Eigen::MatrixXd& start, int max_steps) {
  Eigen::MatrixXd v = Orthonormal(start);
  for (int step = 0; step < max_steps; ++step) {
    // Z = S V as Z^T = V^T S (row-major k x D is Z column-major; S is symmetric).
    Eigen::MatrixXd z(s.rows(), v.cols());
    math::Gemm(static_cast<std::size_t>(v.cols()), static_cast<std::size_t>(s.rows()),
               static_cast<std::size_t>(s.rows()), v.data(), static_cast<std::size_t>(v.rows()),
               s.data(), static_cast<std::size_t>(s.rows()), math::Transpose::kNo, z.data(),
               static_cast<std::size_t>(z.rows()), /*accumulate=*/false);
    Eigen::MatrixXd h = v.transpose() * z;
    h = (0.5 * (h + h.transpose())).eval();
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> ritz(h);
    if (ritz.info() != Eigen::Success) return std::nullopt;
    // Descending Ritz values, their vectors x = V u and S x = Z u.
    const Eigen::MatrixXd u = ritz.eigenvectors().rowwise().reverse();
    const Eigen::VectorXd theta = ritz.eigenvalues().reverse();
    Eigen::MatrixXd x = v * u;
    Eigen::MatrixXd sx = z * u;
    const double floor = kSubspaceFloor * std::max(theta(0), 0.0);
    bool converged = true;
    for (int j = 0; j < l && converged; ++j) {
      converged = (sx.col(j) - theta(j) * x.col(j)).norm() <=
                  std::max(kSubspaceTolerance * std::abs(theta(j)), floor);
    }
    if (converged) {
      TopEigenpairs top;
      top.values = theta.head(l);
      top.vectors = x.leftCols(l);
      top.rest = s.trace() - top.values.sum();
      top.largest = theta(0);
      return top;
    }
    if (step + 1 < max_steps) v = Orthonormal(sx);
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<TopEigenpairs> TopEigenpairsOfSymmetric(const Eigen::MatrixXd& s, int l,
                                                       EigenSolverState* state) {
  const Eigen::Index d = s.rows();
  const Eigen::Index k = std::min<Eigen::Index>(d, l + std::max(l, 16));
  if (d >= kSubspaceMinDimension && 3 * k <= d && (state == nullptr || !state->full_only)) {
    // Half of a full decomposition's ~9 D^3 flops, at 2 D^2 k + 4 D k^2 per step.
    const double dd = static_cast<double>(d), kk = static_cast<double>(k);
    const int max_steps = static_cast<int>(
        std::max(4.0, std::floor(4.5 * dd * dd * dd / (2.0 * dd * dd * kk + 4.0 * dd * kk * kk))));
    std::optional<TopEigenpairs> top =
        TopEigenpairsBySubspace(s, l, FixedStartBasis(d, k), max_steps);
    if (top.has_value()) return *std::move(top);
    if (state != nullptr) state->full_only = true;
  }
  if (state != nullptr) ++state->full_decompositions;
  return TopEigenpairsByFullDecomposition(s, l);
}

absl::StatusOr<TopEigenpairs> TopEigenpairsByFullDecomposition(const Eigen::MatrixXd& s, int l) {
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(s);
  if (eig.info() != Eigen::Success) {
    return absl::InternalError("an eigendecomposition of the scaled covariance failed");
  }
  const Eigen::Index d = s.rows();
  const Eigen::VectorXd& ascending = eig.eigenvalues();
  TopEigenpairs top;
  top.values.resize(l);
  top.vectors.resize(d, l);
  for (int j = 0; j < l; ++j) {
    top.values(j) = ascending(d - 1 - j);
    top.vectors.col(j) = eig.eigenvectors().col(d - 1 - j);
  }
  top.rest = ascending.head(d - l).sum();
  top.largest = ascending(d - 1);
  return top;
}

absl::StatusOr<TopEigenpairs> TopEigenpairsOfGram(const Eigen::MatrixXd& y, int l) {
  const Eigen::BDCSVD<Eigen::MatrixXd> svd(y, Eigen::ComputeThinV);
  if (svd.info() != Eigen::Success) {
    return absl::InternalError("a singular value decomposition of the scaled rows failed");
  }
  const Eigen::VectorXd& sigma = svd.singularValues();  // descending, min(N, D) of them
  const Eigen::Index k = sigma.size();
  TopEigenpairs top;
  top.values = Eigen::VectorXd::Zero(l);
  top.vectors = Eigen::MatrixXd::Zero(y.cols(), l);
  for (Eigen::Index j = 0; j < std::min<Eigen::Index>(l, k); ++j) {
    top.values(j) = sigma(j) * sigma(j);
    top.vectors.col(j) = svd.matrixV().col(j);
  }
  for (Eigen::Index j = k - 1; j >= l; --j) top.rest += sigma(j) * sigma(j);
  top.largest = k > 0 ? sigma(0) * sigma(0) : 0.0;
  return top;
}

FitSize LinearGaussianFitSize(int64_t dimension, uint32_t latent_dim,
                              absl::string_view decomposes) {
  const double d = static_cast<double>(dimension);
  const double l = std::min<double>(latent_dim, d);
  FitSize size;
  size.bytes = Float64Bytes(std::max(d * d, LinearGaussianValues(d, l)));
  size.what = absl::StrCat(
      "the ", dimension, " x ", dimension, " covariance the fit decomposes", decomposes,
      ", or the fitted model's D x L and L x L matrices (latent_dim ", l, ") when larger");
  size.smaller =
      "reduce the columns (e.g. a random projection or feature selection first) or latent_dim";
  return size;
}

}  // namespace maas::generative
