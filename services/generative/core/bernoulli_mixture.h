// The `bernoulli_mixture` family: p(x) = sum_k pi_k prod_d mu_kd^x_d (1 - mu_kd)^(1 - x_d) over
// binary x in {0, 1}^D. Latent: the component index k (LatentKind::kDiscrete, z(0) = k).
//
//   Sample i (draw order, the determinism contract): ItemRng(seed, kSampleStream, start_index + i):
//     one Uniform -> k (CategoricalFromCumulative over the weights), then D Uniforms u_d;
//     x_d = 1 if u_d < mu_kd else 0. Latent returned: k as a double.
//   Exact log p(x) = logsumexp_k(log pi_k + sum_d [x_d log mu_kd + (1 - x_d) log(1 - mu_kd)]);
//     a row with a value other than 0 or 1 has probability 0 (log p = -inf; the service refuses
//     such rows before, binary_data()).
//   Fit: EM. Initialisation (ItemRng(seed, kFitStream, 0)): greedy k-means++ seeding (squared
//     Euclidean = Hamming distance on binary rows), every row assigned to its nearest seed, then an
//     M-step. E-step / M-step as scikit-learn's mixtures (nk = sum of responsibilities + 10 eps,
//     weights nk / sum nk, mu = responsibility-weighted means clipped to [min_probability,
//     1 - min_probability]); stop when the mean log-likelihood (computed in the E-step, before the
//     M-step) changes by less than tol or after max_iter iterations.
#ifndef MAAS_SERVICES_GENERATIVE_CORE_BERNOULLI_MIXTURE_H_
#define MAAS_SERVICES_GENERATIVE_CORE_BERNOULLI_MIXTURE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "maas/generative/v1/generative.pb.h"
#include "services/generative/core/family.h"
#include "services/generative/core/model.h"

namespace maas::generative {

// The registry entry (BernoulliMixtureSpec, BernoulliMixtureFit).
Family BernoulliMixtureFamily();

class BernoulliMixtureModel final : public GenerativeModel {
 public:
  // Validates: K >= 1 weights > 0 summing to 1 within 1e-9; probabilities K x D (D >= 1), each a
  // finite number in [0, 1]. INVALID_ARGUMENT naming the field otherwise.
  static absl::StatusOr<std::unique_ptr<BernoulliMixtureModel>> Create(
      const v1::BernoulliMixtureSpec& spec);

  std::string family() const override { return "bernoulli_mixture"; }
  int64_t MemoryBytes() const override {
    return sizeof(*this) + EigenBytes(weights_, log_weights_, cumulative_, prob_, log_p_, log_1mp_);
  }
  int dimension() const override { return static_cast<int>(prob_.cols()); }
  int latent_width() const override { return 1; }
  bool binary_data() const override { return true; }
  void Sample(uint64_t seed, uint64_t first_index, Eigen::Ref<RowMatrixXd> x,
              RowMatrixXd* latents) const override;
  bool tractable() const override { return true; }
  Eigen::VectorXd ExactLogLikelihood(const Eigen::Ref<const Eigen::MatrixXd>& x) const override;

  LatentKind latent_kind() const override { return LatentKind::kDiscrete; }
  int latent_dim() const override { return static_cast<int>(weights_.size()); }
  void SamplePrior(random::ItemRng& rng, Eigen::Ref<Eigen::VectorXd> z) const override;
  double LogPrior(const Eigen::Ref<const Eigen::VectorXd>& z) const override;
  void LogLikelihoodGivenLatent(const Eigen::Ref<const Eigen::VectorXd>& x,
                                const Eigen::Ref<const Eigen::MatrixXd>& z,
                                Eigen::Ref<Eigen::VectorXd> out) const override;
  bool has_proposal() const override { return true; }
  std::unique_ptr<LatentProposal> MakeProposal(
      const Eigen::Ref<const Eigen::VectorXd>& x) const override;
  // A latent is a component: its log p(x | k) is looked up in the row's table, which each call
  // (and each proposal) fills for n_components x D.
  double LatentEvaluationCost() const override { return 1; }
  double LatentCallCost() const override { return static_cast<double>(latent_dim()) * dimension(); }
  double ProposalCost() const override { return LatentCallCost(); }

  // log p(x | k) for one row x (length D), k = 0..K-1 (all -inf when x is not binary).
  Eigen::VectorXd ComponentLogLikelihoods(const double* x) const;

 private:
  BernoulliMixtureModel() = default;

  Eigen::VectorXd weights_;
  Eigen::VectorXd log_weights_;
  Eigen::VectorXd cumulative_;
  RowMatrixXd prob_;         // K x D, a component's probabilities contiguous (Sample)
  Eigen::MatrixXd log_p_;    // log mu
  Eigen::MatrixXd log_1mp_;  // log (1 - mu)
};

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_CORE_BERNOULLI_MIXTURE_H_
