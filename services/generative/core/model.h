// The generative model interface: a prior p(z), a likelihood p(x|z), a sampler and, where
// tractable, the exact marginal log p(x). Families implement it; the service core never looks
// inside a family.
#ifndef MAAS_SERVICES_GENERATIVE_CORE_MODEL_H_
#define MAAS_SERVICES_GENERATIVE_CORE_MODEL_H_

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "Eigen/Dense"
#include "common/exec/stop_token.h"
#include "common/random/item_rng.h"

namespace maas::generative {

// Counter streams of the determinism contract (the `stream` word of every Philox counter).
// Sample i of a Sample request draws only from (seed, kSampleStream, start_index + i).
inline constexpr uint32_t kSampleStream = 0;

// What kind of latent variable a family has, as the Monte Carlo estimators see it.
//   kNone:       no latent variable (uniform); only EXACT applies.
//   kDiscrete:   z is a category k in [0, latent_dim()), stored as z(0) = k (mixtures).
//   kContinuous: z in R^latent_dim() with prior N(0, I) (ppca, factor_analysis, mlp_decoder).
enum class LatentKind { kNone, kDiscrete, kContinuous };

// Row-major float64 matrices: the layout Sample writes, the same as the packed values of a
// maas.common.v1.Matrix on the wire, so that a sampled batch is sent as it is (no transposition).
using RowMatrixXd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// A proposal distribution q(z) for importance sampling one data row x (see
// GenerativeModel::MakeProposal). Immutable after construction; thread-safe to use concurrently
// with separate generators.
class LatentProposal {
 public:
  virtual ~LatentProposal() = default;
  // Draws z ~ q from `rng` into `z` (length latent_dim()). The number of words consumed may depend
  // only on the proposal, never on the values drawn.
  virtual void Sample(random::ItemRng& rng, Eigen::Ref<Eigen::VectorXd> z) const = 0;
  // log q(z).
  virtual double LogDensity(const Eigen::Ref<const Eigen::VectorXd>& z) const = 0;
};

class GenerativeModel {
 public:
  virtual ~GenerativeModel() = default;

  // Family name as in ModelInfo.family, e.g. "uniform".
  virtual std::string family() const = 0;
  // Data dimension D >= 1.
  virtual int dimension() const = 0;
  // Width of the latent value returned by Sample (0: the family has no latent variable).
  virtual int latent_width() const = 0;
  // Bytes this model holds in memory (the object and its parameter arrays, derived ones included),
  // for the model cache's byte budget; -1 = not known (the cache then charges the size of the spec
  // the model was built from).
  virtual int64_t MemoryBytes() const { return -1; }

  // Fills row i of `x` (and of `latents` when not null: resized to x.rows() x latent_width()) with
  // sample number first_index + i of the stream keyed by `seed`. A pure function of (seed,
  // first_index + i): the result does not depend on how a request is split into calls. Row-major
  // (each sample's values contiguous), as the wire carries them. REQUIRES: x.cols() ==
  // dimension().
  virtual void Sample(uint64_t seed, uint64_t first_index, Eigen::Ref<RowMatrixXd> x,
                      RowMatrixXd* latents) const = 0;

  // Whether every value of x must be 0 or 1 (a Bernoulli likelihood): the service refuses other
  // values of x before it evaluates log p(x) (as FitModel refuses them in training rows).
  virtual bool binary_data() const { return false; }

  // Whether ExactLogLikelihood is available.
  virtual bool tractable() const = 0;
  // log p(x) per row of x (N x D). REQUIRES: tractable(), x.cols() == dimension().
  virtual Eigen::VectorXd ExactLogLikelihood(const Eigen::Ref<const Eigen::MatrixXd>& x) const = 0;

  // ---- The latent-variable view used by the Monte Carlo estimators (PRIOR, IMPORTANCE, AIS). ----
  // Families without a latent variable keep these defaults.

  virtual LatentKind latent_kind() const { return LatentKind::kNone; }
  // Number of categories (kDiscrete) or latent dimension L (kContinuous); 0 for kNone.
  virtual int latent_dim() const { return 0; }

  // Draws z ~ p(z) into `z` (length latent_dim()). Word consumption is fixed per family.
  // REQUIRES: latent_kind() != kNone.
  virtual void SamplePrior(random::ItemRng& rng, Eigen::Ref<Eigen::VectorXd> z) const;
  // log p(z). REQUIRES: latent_kind() != kNone.
  virtual double LogPrior(const Eigen::Ref<const Eigen::VectorXd>& z) const;

  // out(s) = log p(x | z_s) for one data row x (length dimension()) and the latents in the rows of
  // z (S x latent_dim()). Batched because it is the estimators' hot loop.
  // REQUIRES: latent_kind() != kNone, out.size() == z.rows().
  virtual void LogLikelihoodGivenLatent(const Eigen::Ref<const Eigen::VectorXd>& x,
                                        const Eigen::Ref<const Eigen::MatrixXd>& z,
                                        Eigen::Ref<Eigen::VectorXd> out) const;

  // Whether LogLikelihoodGradient is available (continuous latents with a differentiable p(x|z);
  // needed by AIS's HMC transitions).
  virtual bool has_latent_gradient() const { return false; }
  // Returns log p(x | z) and sets grad = d/dz log p(x | z) (length latent_dim()).
  // REQUIRES: has_latent_gradient().
  virtual double LogLikelihoodGradient(const Eigen::Ref<const Eigen::VectorXd>& x,
                                       const Eigen::Ref<const Eigen::VectorXd>& z,
                                       Eigen::Ref<Eigen::VectorXd> grad) const;

  // The family's importance proposal q(z | x) for one row x: the exact posterior p(z | x) for the
  // mixture and linear-Gaussian families (every weight then equals p(x)), a Laplace approximation
  // mixed with 10% prior for mlp_decoder. nullptr when the family has none (has_proposal() false:
  // IMPORTANCE is then refused). REQUIRES: latent_kind() != kNone.
  virtual std::unique_ptr<LatentProposal> MakeProposal(
      const Eigen::Ref<const Eigen::VectorXd>& x) const {
    (void)x;
    return nullptr;
  }
  // Whether MakeProposal gives a proposal (IMPORTANCE is refused when not), known without
  // building one.
  virtual bool has_proposal() const { return false; }
  // MakeProposal that may give up, returning nullptr, once `stop` asks to stop: a family whose
  // proposal takes long (mlp_decoder's mode searches and Hessian eigendecompositions, seconds each
  // at a large L) asks it between those steps. The default builds the proposal whole.
  virtual std::unique_ptr<LatentProposal> MakeProposalUnlessStopped(
      const Eigen::Ref<const Eigen::VectorXd>& x, const exec::StopToken& stop) const {
    (void)stop;
    return MakeProposal(x);
  }
  // Bytes one MakeProposal forms and its result holds (e.g. L x L factors), known without building
  // one: IMPORTANCE estimates hold one proposal per row of a group and bound the group by it, and
  // refuse a model whose single proposal is above --max_model_bytes. 0 when small (O(latent)).
  virtual int64_t ProposalBytes() const { return 0; }

  // ---- Approximate costs, in multiply-adds, for the estimators' work cap (EstimateWork). ----
  // Never enter a value; they only decide whether a request is refused up front, so an order of
  // magnitude is what matters.

  // One log p(x | z) of LogLikelihoodGivenLatent for one latent z, beyond the call's own work
  // (LatentCallCost): e.g. D x L for the linear-Gaussian families, every layer's in x out for
  // mlp_decoder, a table lookup for the mixtures. The gradient of LogLikelihoodGradient is
  // counted as twice this.
  virtual double LatentEvaluationCost() const { return dimension(); }
  // The work of one LogLikelihoodGivenLatent call whatever its number of latents (e.g. the
  // mixtures' component densities of the row: n_components x D, or x D^2 with full covariances).
  virtual double LatentCallCost() const { return 0; }
  // One MakeProposal (IMPORTANCE builds one per row): e.g. mlp_decoder's posterior-mode search
  // and finite-difference Hessian, typically ~100 + 2 L gradients.
  virtual double ProposalCost() const { return 0; }
};

// Bytes of the values of Eigen arrays (for MemoryBytes).
template <class... Arrays>
int64_t EigenBytes(const Arrays&... arrays) {
  return (int64_t{0} + ... + static_cast<int64_t>(arrays.size() * sizeof(typename Arrays::Scalar)));
}

// Defaults for families without a latent variable: calling them breaks the REQUIRES above, which
// is a programming error (the core checks latent_kind() first), so they abort loudly.
inline void GenerativeModel::SamplePrior(random::ItemRng&, Eigen::Ref<Eigen::VectorXd>) const {
  std::abort();
}
inline double GenerativeModel::LogPrior(const Eigen::Ref<const Eigen::VectorXd>&) const {
  std::abort();
}
inline void GenerativeModel::LogLikelihoodGivenLatent(const Eigen::Ref<const Eigen::VectorXd>&,
                                                      const Eigen::Ref<const Eigen::MatrixXd>&,
                                                      Eigen::Ref<Eigen::VectorXd>) const {
  std::abort();
}
inline double GenerativeModel::LogLikelihoodGradient(const Eigen::Ref<const Eigen::VectorXd>&,
                                                     const Eigen::Ref<const Eigen::VectorXd>&,
                                                     Eigen::Ref<Eigen::VectorXd>) const {
  std::abort();
}

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_CORE_MODEL_H_
