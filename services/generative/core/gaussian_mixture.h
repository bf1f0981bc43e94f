// The `gaussian_mixture` family: p(x) = sum_k pi_k N(x | mu_k, Sigma_k), Sigma_k full, diagonal or
// spherical. Latent: the component index k (LatentKind::kDiscrete, z(0) = k).
//
//   Sample i (draw order, the determinism contract): ItemRng(seed, kSampleStream, start_index + i):
//     one Uniform -> k (CategoricalFromCumulative over the weights), then D normals
//     eps_0..eps_{D-1} (ItemRng::Normal); x = mu_k + L_k eps with L_k the lower Cholesky factor of
//     Sigma_k: x_j = mu_kj + sum_i L_k(j, i) eps_i, the sum in ascending i from 0 without FMA over
//     i < min(D, 8 (j / 8 + 1)) (the extra terms are exact zeros; sample_product.h, computed per
//     component for blocks of samples, same bits). Diag: x_d = mu_kd + sqrt(Sigma_kd) eps_d.
//     Latent returned: k as a double.
//   Exact log p(x) = logsumexp_k(log pi_k + log N(x | mu_k, Sigma_k)), float64, Cholesky.
//   Fit: EM with scikit-learn GaussianMixture semantics (init_params, n_init, tol on the change of
//     the mean log-likelihood lower bound, reg_covar added to covariance diagonals, max_iter,
//     weights_init / means_init / precisions_init); the trace is scikit-learn's lower_bounds_.
//     Initialisation r draws from ItemRng(seed, kFitStream, r).
#ifndef MAAS_SERVICES_GENERATIVE_CORE_GAUSSIAN_MIXTURE_H_
#define MAAS_SERVICES_GENERATIVE_CORE_GAUSSIAN_MIXTURE_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "maas/generative/v1/generative.pb.h"
#include "services/generative/core/family.h"
#include "services/generative/core/model.h"
#include "services/generative/core/sample_product.h"

namespace maas::generative {

// The registry entry (GaussianMixtureSpec, GaussianMixtureFit).
Family GaussianMixtureFamily();

namespace internal {
// Rows between two questions to the stop token in a DIAG / SPHERICAL fit's E- and M-steps, for K
// components of D values: ~2^28 component-coordinate terms (so that any model asks every ~0.1-0.5
// s; a fixed 1 024-2 048 rows ran ~9 s between two at K = 10 000, D = 1 600), 32 to 2 048 rows, a
// multiple of 32 (both steps' blocks).
Eigen::Index DiagonalRowsPerCheck(Eigen::Index k, Eigen::Index d);
}  // namespace internal

class GaussianMixtureModel final : public GenerativeModel {
 public:
  // Validates the spec (INVALID_ARGUMENT naming the field): K >= 1 weights > 0 summing to 1 within
  // 1e-9; means K x D finite; covariances in the layout of covariance_type, finite, symmetric
  // positive definite (FULL) or > 0 (DIAG, SPHERICAL).
  static absl::StatusOr<std::unique_ptr<GaussianMixtureModel>> Create(
      const v1::GaussianMixtureSpec& spec);

  std::string family() const override { return "gaussian_mixture"; }
  int64_t MemoryBytes() const override {
    int64_t bytes =
        sizeof(*this) + lower_.capacity() * sizeof(Eigen::MatrixXd) +
        EigenBytes(weights_, log_weights_, cumulative_, means_, stddev_, log_normalizer_);
    for (const Eigen::MatrixXd& lower : lower_) bytes += EigenBytes(lower);
    for (const PackedPanels& panels : panels_) bytes += panels.MemoryBytes();
    for (const Eigen::VectorXd& mean : mean_rows_) bytes += EigenBytes(mean);
    return bytes;
  }
  int dimension() const override { return static_cast<int>(means_.cols()); }
  int latent_width() const override { return 1; }
  void Sample(uint64_t seed, uint64_t first_index, Eigen::Ref<RowMatrixXd> x,
              RowMatrixXd* latents) const override;
  bool tractable() const override { return true; }
  Eigen::VectorXd ExactLogLikelihood(const Eigen::Ref<const Eigen::MatrixXd>& x) const override;

  // Latent view: z(0) = k; only z(0) is read or written (z may be longer).
  LatentKind latent_kind() const override { return LatentKind::kDiscrete; }
  int latent_dim() const override { return num_components(); }
  // A latent is a component: its log density is looked up in the row's table, which each call
  // fills for n_components x D (x D with full covariances).
  double LatentEvaluationCost() const override { return 1; }
  double LatentCallCost() const override {
    const double d = dimension();
    return static_cast<double>(num_components()) * (type_ == v1::FULL ? d * d : d);
  }
  double ProposalCost() const override { return LatentCallCost(); }
  // One Uniform (2 words).
  void SamplePrior(random::ItemRng& rng, Eigen::Ref<Eigen::VectorXd> z) const override;
  double LogPrior(const Eigen::Ref<const Eigen::VectorXd>& z) const override;
  void LogLikelihoodGivenLatent(const Eigen::Ref<const Eigen::VectorXd>& x,
                                const Eigen::Ref<const Eigen::MatrixXd>& z,
                                Eigen::Ref<Eigen::VectorXd> out) const override;
  // The exact posterior (responsibilities): one Uniform per draw; every weight equals p(x).
  bool has_proposal() const override { return true; }
  std::unique_ptr<LatentProposal> MakeProposal(
      const Eigen::Ref<const Eigen::VectorXd>& x) const override;

  int num_components() const { return static_cast<int>(weights_.size()); }
  // log N(x | mu_k, Sigma_k) for one row x (length D), k = 0..K-1.
  Eigen::VectorXd ComponentLogDensities(const double* x) const;

 private:
  GaussianMixtureModel() = default;
  // The squared distance of (x - mu_c) / scale for component c (r: scratch of D values).
  double ComponentQuad(const double* x, int c, double scale, double* r) const;
  // log N(x | c) from ComponentQuad(x, c, 1, ...) = quad, recomputed scaled when it overflowed.
  double ComponentLogDensity(const double* x, int c, double quad, double* r) const;

  v1::CovarianceType type_ = v1::FULL;
  Eigen::VectorXd weights_;
  Eigen::VectorXd log_weights_;
  Eigen::VectorXd cumulative_;  // running sums of weights_
  Eigen::MatrixXd means_;       // K x D
  // FULL: lower Cholesky factors of the covariances. DIAG / SPHERICAL: stddev_ (K x D).
  std::vector<Eigen::MatrixXd> lower_;
  std::vector<PackedPanels> panels_;        // FULL: L_k^T packed for the sampler's product
  std::vector<Eigen::VectorXd> mean_rows_;  // mu_k as contiguous vectors
  RowMatrixXd stddev_;                      // a component's standard deviations contiguous
  Eigen::VectorXd log_normalizer_;          // -1/2 D log 2 pi - 1/2 log det Sigma_k
};

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_CORE_GAUSSIAN_MIXTURE_H_
