// The linear-Gaussian latent model shared by `ppca` and `factor_analysis`:
//   z ~ N(0, I_L),  x | z ~ N(W z + mu, diag(psi)),  so  x ~ N(mu, W W^T + diag(psi)).
// ppca has psi = sigma^2 (isotropic), factor_analysis one psi_d per dimension.
//
//   Sample i (draw order, the determinism contract): ItemRng(seed, kSampleStream, start_index + i):
//     L normals z_0..z_{L-1}, then D normals eps_0..eps_{D-1} (ItemRng::Normal);
//     x_j = (mu_j + sum_k W_jk z_k) + sqrt(psi_j) eps_j, the sum in ascending k from 0 without FMA
//     (sample_product.h; computed for blocks of samples, same bits). Latents returned: z.
//   With r = x - mu, G = W^T Psi^-1 W, the posterior N(m, S), S = (I + G)^-1, m = S W^T Psi^-1 r,
//   and rho = r - W m (computed directly; it is small where x is near the model's subspace):
//   Exact log p(x) = log N(x | mu, W W^T + diag(psi)) in float64 from the Woodbury identity
//     r^T C^-1 r = rho^T Psi^-1 rho + m^T m  and  log det C = log det (I + G) + sum log psi,
//     O(D L + L^2) per row, never factoring the D x D covariance (condition number ~ SNR^2).
//   Latent view (kContinuous, prior N(0, I_L)): log p(x|z) expanded around m (d = z - m):
//     -1/2 (D log 2 pi + sum log psi + rho^T Psi^-1 rho - 2 (W^T Psi^-1 rho)^T d + d^T G d)
//     (O(L^2) per z); its gradient; and the exact posterior as the importance proposal (every
//     weight = p(x), to rounding).
#ifndef MAAS_SERVICES_GENERATIVE_CORE_LINEAR_GAUSSIAN_H_
#define MAAS_SERVICES_GENERATIVE_CORE_LINEAR_GAUSSIAN_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/generative/core/family.h"
#include "services/generative/core/model.h"
#include "services/generative/core/sample_product.h"

namespace maas::generative {

class LinearGaussianModel final : public GenerativeModel {
 public:
  // `family` names the family in messages ("ppca"). Validates: W D x L (1 <= L <= D) finite, mean
  // of size D finite, psi of size D finite and > 0, and I + W^T Psi^-1 W positive definite in
  // float64; INVALID_ARGUMENT naming `<family>.<field>` otherwise.
  static absl::StatusOr<std::unique_ptr<LinearGaussianModel>> Create(
      const std::string& family, Eigen::MatrixXd loadings, Eigen::VectorXd mean,
      Eigen::VectorXd noise_variance);

  std::string family() const override { return family_; }
  int64_t MemoryBytes() const override {
    return sizeof(*this) +
           EigenBytes(loadings_, mean_, psi_, stddev_, inv_psi_, scaled_, gram_, post_lower_) +
           loadings_panels_.MemoryBytes();
  }
  int dimension() const override { return static_cast<int>(mean_.size()); }
  int latent_width() const override { return latent_dim(); }
  void Sample(uint64_t seed, uint64_t first_index, Eigen::Ref<RowMatrixXd> x,
              RowMatrixXd* latents) const override;
  bool tractable() const override { return true; }
  Eigen::VectorXd ExactLogLikelihood(const Eigen::Ref<const Eigen::MatrixXd>& x) const override;

  LatentKind latent_kind() const override { return LatentKind::kContinuous; }
  int latent_dim() const override { return static_cast<int>(loadings_.cols()); }
  // L normals.
  void SamplePrior(random::ItemRng& rng, Eigen::Ref<Eigen::VectorXd> z) const override;
  double LogPrior(const Eigen::Ref<const Eigen::VectorXd>& z) const override;
  void LogLikelihoodGivenLatent(const Eigen::Ref<const Eigen::VectorXd>& x,
                                const Eigen::Ref<const Eigen::MatrixXd>& z,
                                Eigen::Ref<Eigen::VectorXd> out) const override;
  bool has_latent_gradient() const override { return true; }
  double LogLikelihoodGradient(const Eigen::Ref<const Eigen::VectorXd>& x,
                               const Eigen::Ref<const Eigen::VectorXd>& z,
                               Eigen::Ref<Eigen::VectorXd> grad) const override;
  // The exact posterior N(m, S); Sample draws L normals eps and returns m + L_M^-T eps, where
  // L_M L_M^T = I + G = S^-1.
  bool has_proposal() const override { return true; }
  std::unique_ptr<LatentProposal> MakeProposal(
      const Eigen::Ref<const Eigen::VectorXd>& x) const override;
  // Each proposal copies the L x L factor L_M.
  int64_t ProposalBytes() const override { return EigenBytes(post_lower_); }
  // W z against x: D x L; the proposal's mean W^T (x - mu) and its solve: D x L + L^2.
  double LatentEvaluationCost() const override {
    return static_cast<double>(dimension()) * latent_dim();
  }
  double ProposalCost() const override {
    const double l = latent_dim();
    return static_cast<double>(dimension()) * l + l * l;
  }

  const Eigen::MatrixXd& loadings() const { return loadings_; }
  const Eigen::VectorXd& mean() const { return mean_; }
  const Eigen::VectorXd& noise_variance() const { return psi_; }

 private:
  LinearGaussianModel() = default;

  // One row's posterior mean m, rho^T Psi^-1 rho and W^T Psi^-1 rho (see the file comment), held
  // for the residual r = x - mu divided by `scale`, a power of two: 1 unless r, or a product of
  // it, overflows (x far from the mean), then the least power of two above max(|x|, |mu|). m and
  // W^T Psi^-1 rho are linear in r and rho^T Psi^-1 rho is quadratic, so the true values are
  // scale times those held (scale^2 for residual_quad): formed at the end, a true value beyond
  // float64 becomes +-inf and a log density -inf, never NaN.
  struct RowExpansion {
    double scale = 1.0;
    Eigen::VectorXd posterior_mean;
    double residual_quad = 0.0;
    Eigen::VectorXd residual_gradient;
  };
  RowExpansion Expand(const Eigen::Ref<const Eigen::VectorXd>& x) const;
  // Expand's second step: `e` (ExpandScaled(x, 1)) as it is, or, when it overflowed and x is
  // finite, the expansion of (x - mu) / scale.
  RowExpansion RescaledIfOverflowed(const Eigen::Ref<const Eigen::VectorXd>& x,
                                    RowExpansion e) const;
  RowExpansion ExpandScaled(const Eigen::Ref<const Eigen::VectorXd>& x, double scale) const;
  // log p(x|z) from the residual x - mu - W z itself, scaled like RowExpansion: a sum of
  // non-negative terms, so never NaN (-inf when it underflows, or when z is not finite).
  double DirectLogLikelihood(const Eigen::Ref<const Eigen::VectorXd>& x,
                             const Eigen::Ref<const Eigen::VectorXd>& z) const;

  std::string family_;
  Eigen::MatrixXd loadings_;  // W, D x L
  Eigen::VectorXd mean_;
  Eigen::VectorXd psi_;
  Eigen::VectorXd stddev_;            // sqrt(psi)
  Eigen::VectorXd inv_psi_;           // 1 / psi
  PackedPanels loadings_panels_;      // W^T packed for the sampler's product
  Eigen::MatrixXd scaled_;            // Psi^-1 W, D x L (column j: W_j / psi)
  double max_abs_scaled_ = 0.0;       // max |Psi^-1 W| (ExactLogLikelihood's overflow bound)
  Eigen::MatrixXd gram_;              // G = W^T Psi^-1 W, L x L
  Eigen::MatrixXd post_lower_;        // L_M, lower Cholesky of I + G
  double post_log_det_ = 0.0;         // log det (I + G) = -log det S
  double log_norm_marginal_ = 0.0;    // -1/2 (D log 2 pi + log det C)
  double log_norm_likelihood_ = 0.0;  // -1/2 (D log 2 pi + sum log psi)
};

// The top `l` eigenpairs of a D x D scaled covariance S, and the sum of its other eigenvalues: what
// the ppca and factor_analysis fits take from it (scikit-learn takes the same from an SVD of the N
// x D rows).
struct TopEigenpairs {
  Eigen::VectorXd values;   // the l largest eigenvalues, descending (0 past S's N - 1 ... N)
  Eigen::MatrixXd vectors;  // D x l, their unit eigenvectors (0 columns past them), any sign
  double rest = 0.0;        // the sum of the other D - l eigenvalues
  double largest = 0.0;     // the largest eigenvalue
};

// Y^T Y / n for the N x D matrix `y` (column-major, N >= 1), with math::Gemm's fixed-order FMA sums
// (the CPU's widest SIMD path, the same bits on every path): the covariance the fits of at least as
// many rows as columns decompose. Exactly symmetric.
Eigen::MatrixXd ScaledGram(const Eigen::MatrixXd& y, double n);

// What TopEigenpairsOfSymmetric keeps between the calls of one fit (factor_analysis decomposes a
// matrix per iteration).
struct EigenSolverState {
  bool full_only =
      false;  // a subspace iteration ran out of its budget: decompose fully from now on
  int full_decompositions = 0;  // how many calls decomposed fully (for tests)
};

// TopEigenpairs of the symmetric positive semidefinite D x D matrix `s`, for fits of at least as
// many rows as columns. Where l is small against D, by block subspace iteration with Rayleigh-Ritz
// (O(D^2 k) per step for k = l + max(l, 16) columns, always from the same fixed pseudo-random
// basis: a start from the previous call's vectors can lack a direction that has become a top one,
// and a Ritz residual test cannot see what the subspace lacks), until each of the top l Ritz pairs
// (theta, x) has |S x - theta x| <= max(1e-12 |theta|, 1e-14 theta_1); the rest is then trace(S)
// minus the top l (as scikit-learn's randomized SVD takes it). Otherwise, or when the iteration has
// not converged within about half the work of a full eigendecomposition (its products counted;
// ~0.65 with its QR and Ritz steps) because eigenvalues l and k + 1 are too close (which `state`
// then remembers for the fit's later calls), from the full eigendecomposition, O(D^3), with the
// rest summed from the smallest eigenvalue up. INTERNAL if a decomposition fails.
absl::StatusOr<TopEigenpairs> TopEigenpairsOfSymmetric(const Eigen::MatrixXd& s, int l,
                                                       EigenSolverState* state = nullptr);
// The same from the full eigendecomposition only.
absl::StatusOr<TopEigenpairs> TopEigenpairsByFullDecomposition(const Eigen::MatrixXd& s, int l);

// TopEigenpairs of S = Y^T Y for the N x D matrix `y` from the thin SVD of y (S's eigenvalues are
// the squared singular values, the eigenvectors the right singular vectors), O(N^2 D) and no D x D
// matrix: for fits of fewer rows than columns, where a D x D decomposition of a few rows cost
// minutes (D in the thousands) that no deadline could interrupt. INTERNAL if the SVD fails.
absl::StatusOr<TopEigenpairs> TopEigenpairsOfGram(const Eigen::MatrixXd& y, int l);

// Float64 values a linear-Gaussian model with D x L loadings forms: the loadings, Psi^-1 W and the
// sampler's packed W^T (D x L each), and G, I + G and its Cholesky factor (L x L each).
double LinearGaussianValues(double d, double l);

// Family::model_size of ppca / factor_analysis (loadings D x L): LinearGaussianValues, from the
// Matrix header alone.
ModelSize LinearGaussianModelSize(const std::string& family, const common::v1::Matrix& loadings);

// Family::fit_size of ppca / factor_analysis for rows of `dimension` columns and `latent_dim`: the
// D x D covariance the fit decomposes (`decomposes` says how, for the message), or the fitted
// model's LinearGaussianValues when larger, so that a fit this passes is stored and loaded.
FitSize LinearGaussianFitSize(int64_t dimension, uint32_t latent_dim, absl::string_view decomposes);

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_CORE_LINEAR_GAUSSIAN_H_
