// The `mlp_decoder` family (VAE-style decoder): z ~ N(0, I_L); f(z) = layers applied in order,
// each h <- activation(W h + b); x | z ~ N(f(z), sigma^2 I_D) (GAUSSIAN) or
// x_d | z ~ Bernoulli(sigmoid(f_d(z))) (BERNOULLI, f are logits). No closed-form log p(x): the
// Monte Carlo estimators apply (PRIOR, IMPORTANCE with a defensive Laplace proposal, AIS with the
// analytic gradient d/dz log p(x|z) by backpropagation).
//   Sample i (stream kSampleStream, index i): L normals for z, then D normals (GAUSSIAN) or D
//   Uniforms (BERNOULLI: x_d = 1 if u_d < sigmoid(f_d)) in dimension order.
//   Proposal for row x: the posterior mode m (gradient ascent from z = 0 with backtracking) and
//   the Laplace covariance S = H^-1 (H = the finite-difference Hessian of -log p(z, x) at m,
//   eigenvalues floored at 1e-3), mixed with the prior: q = 0.9 N(m, S) + 0.1 N(0, I). A draw
//   takes one Uniform (the component) and L normals, whichever component is chosen.
//   Arithmetic: the decoder (Sample, Decode, log p(x|z)) runs on common/math/gemm.h's fixed-order
//   GEMM and own activations, so its values do not depend on the CPU, the SIMD width or how the
//   latents are batched (docs/determinism.md).
#ifndef MAAS_SERVICES_GENERATIVE_CORE_MLP_DECODER_H_
#define MAAS_SERVICES_GENERATIVE_CORE_MLP_DECODER_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/math/gemm.h"
#include "maas/generative/v1/generative.pb.h"
#include "services/generative/core/family.h"
#include "services/generative/core/model.h"

namespace maas::generative {

class MlpDecoderModel final : public GenerativeModel {
 public:
  // Validates the spec (naming the field): latent_dim >= 1, at least one layer, shapes chaining
  // from latent_dim to D, finite weights, noise_variance > 0 for GAUSSIAN; layers from
  // `safetensors` when set (see the proto). Every layer's outputs must stay within 1e150 for the
  // latents the prior draws (|z_j| <= 9), by interval arithmetic (INVALID_ARGUMENT naming the
  // layer): the decoder then never overflows float64 in sampling, and log p(x|z) is never NaN.
  static absl::StatusOr<std::unique_ptr<MlpDecoderModel>> Create(const v1::MlpDecoderSpec& spec);
  // The same, taking *spec's large fields (the safetensors bytes, the layers' weights), each freed
  // once converted, so that a load never holds the whole spec beside the model. *spec's large
  // fields are then unspecified.
  static absl::StatusOr<std::unique_ptr<MlpDecoderModel>> Create(v1::MlpDecoderSpec* spec);

  std::string family() const override { return "mlp_decoder"; }
  int64_t MemoryBytes() const override {
    int64_t bytes = sizeof(*this) + layers_.capacity() * sizeof(Layer);
    for (const Layer& layer : layers_) {
      bytes +=
          EigenBytes(layer.weight, layer.bias) + static_cast<int64_t>(layer.packed.MemoryBytes());
    }
    return bytes + static_cast<int64_t>(gram_factor_.MemoryBytes());
  }
  int dimension() const override { return dimension_; }
  int latent_width() const override { return latent_dim_; }
  bool binary_data() const override { return bernoulli_; }
  void Sample(uint64_t seed, uint64_t first_index, Eigen::Ref<RowMatrixXd> x,
              RowMatrixXd* latents) const override;
  bool tractable() const override { return false; }
  Eigen::VectorXd ExactLogLikelihood(const Eigen::Ref<const Eigen::MatrixXd>& x) const override;

  LatentKind latent_kind() const override { return LatentKind::kContinuous; }
  int latent_dim() const override { return latent_dim_; }
  void SamplePrior(random::ItemRng& rng, Eigen::Ref<Eigen::VectorXd> z) const override;
  double LogPrior(const Eigen::Ref<const Eigen::VectorXd>& z) const override;
  void LogLikelihoodGivenLatent(const Eigen::Ref<const Eigen::VectorXd>& x,
                                const Eigen::Ref<const Eigen::MatrixXd>& z,
                                Eigen::Ref<Eigen::VectorXd> out) const override;
  bool has_latent_gradient() const override { return true; }
  double LogLikelihoodGradient(const Eigen::Ref<const Eigen::VectorXd>& x,
                               const Eigen::Ref<const Eigen::VectorXd>& z,
                               Eigen::Ref<Eigen::VectorXd> grad) const override;
  bool has_proposal() const override { return true; }
  std::unique_ptr<LatentProposal> MakeProposal(
      const Eigen::Ref<const Eigen::VectorXd>& x) const override;
  // What one MakeProposal's mode search did, for tests.
  struct ProposalSearch {
    int64_t evaluations = 0;  // of log p(z, x) and its gradient, the Hessians' included
    int modes_found = 0;      // the first search's point and each new mode a further start reached
    int modes_kept = 0;       // the mixture's components
  };
  // With `stop`: nullptr once it asks to stop (search->evaluations then says how far it got),
  // asked before each start's search and each mode's Hessian and every kStopCheckEvaluations
  // evaluations within them; what can still overrun a stop is one Hessian's eigendecomposition.
  std::unique_ptr<LatentProposal> MakeProposal(
      const Eigen::Ref<const Eigen::VectorXd>& x, ProposalSearch* search,
      const exec::StopToken& stop = exec::StopToken()) const;
  std::unique_ptr<LatentProposal> MakeProposalUnlessStopped(
      const Eigen::Ref<const Eigen::VectorXd>& x, const exec::StopToken& stop) const override {
    return MakeProposal(x, nullptr, stop);
  }

  // Posterior modes the IMPORTANCE proposal keeps at most (a Laplace mixture).
  static constexpr int kMaxProposalModes = 4;
  // Gradient evaluations its mode search may take: the first search (from z = 0), and each of the
  // up to 16 further starts.
  static constexpr int64_t kFirstSearchEvaluations = 1000;
  static constexpr int64_t kStartEvaluations = 150;
  // Evaluations of log p(z, x) and its gradient between two questions to the proposal's stop
  // token (a question may read the clock: one per evaluation would cost small decoders ~10 %).
  static constexpr int64_t kStopCheckEvaluations = 16;
  // Float64 values MakeProposal forms for latent dimension L: one L x L Hessian and its
  // eigenvectors at a time, and the eigenvectors of each mode kept ((kMaxProposalModes + 2) L^2).
  static double ProposalValues(double latent_dim) {
    return (kMaxProposalModes + 2.0) * latent_dim * latent_dim;
  }
  int64_t ProposalBytes() const override {
    return static_cast<int64_t>(8 * ProposalValues(latent_dim_));
  }
  // Every layer's in x out (with the Gram shortcut the output layer's H x H instead) and the
  // likelihood's D.
  double LatentEvaluationCost() const override;
  // An upper bound: the posterior-mode searches' budgets of gradients (kFirstSearchEvaluations
  // and kStartEvaluations per further start) with each step's basin checks (L^2 per mode), and per
  // mode the 2 L gradients of the Hessian and its ~9 L^3 eigendecomposition.
  double ProposalCost() const override;

  // Bytes of activations Forward may keep for one block of rows (every layer's, rows x width x 8).
  static constexpr std::size_t kForwardBudgetBytes = std::size_t{64} << 20;
  // Rows per block of Sample and LogLikelihoodGivenLatent: at least 1, and at most
  // kForwardBudgetBytes / (8 x the sum of the layers' output widths). Never enters a value.
  std::size_t ForwardBlockRows() const;

  // f(z) for the latents in the rows of z (S x L): S x D.
  Eigen::MatrixXd Decode(const Eigen::Ref<const Eigen::MatrixXd>& z) const;

  // Whether log p(x|z) takes the Gram shortcut (see LogLikelihoodGivenLatent in the .cc); for
  // tests and benchmarks.
  bool uses_gram_form() const { return gram_; }

 private:
  struct Layer {
    Eigen::MatrixXd weight;  // out x in
    Eigen::VectorXd bias;
    v1::Activation activation;
    math::PackedMatrix packed;  // weight^T for math::Gemm: activations (rows) * weight^T
  };
  MlpDecoderModel() = default;
  // Create's work: from `spec`, and when `take` is not null (it is &spec) taking its large fields.
  static absl::StatusOr<std::unique_ptr<MlpDecoderModel>> Build(const v1::MlpDecoderSpec& spec,
                                                                v1::MlpDecoderSpec* take);
  // Packs the layers for math::Gemm and sets up the Gram shortcut; after the layers are final.
  void Prepare();
  // The activations of layers [0, num_layers) for `rows` latents (row-major rows x L in `z`),
  // into the row-major buffers `work[l]` (rows x width of layer l). Every output element is
  // bias + sum_k in order (math::Gemm's fixed order), so it does not depend on `rows`, on how a
  // batch is split or on the CPU.
  void Forward(std::size_t rows, const double* z, std::size_t num_layers,
               std::vector<std::vector<double>>& work) const;
  // log p(x | f) for one row of decoder outputs.
  double LogLikelihoodOfOutput(const Eigen::Ref<const Eigen::VectorXd>& x,
                               const Eigen::Ref<const Eigen::RowVectorXd>& f) const;

  int latent_dim_ = 0;
  int dimension_ = 0;
  std::vector<Layer> layers_;
  bool bernoulli_ = false;
  double noise_variance_ = 1.0;
  // Gram shortcut (GAUSSIAN, identity output layer W h + b, H < D): |x - b - W h|^2 =
  // |x - b|^2 - 2 (W^T (x - b)) . h + |C^T h|^2 with W^T W = C C^T (Cholesky, H x H).
  bool gram_ = false;
  math::PackedMatrix gram_factor_;  // C for math::Gemm: h (rows) * C
};

// The registry entry (MlpDecoderSpec; created from weights, no fit).
Family MlpDecoderFamily();

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_CORE_MLP_DECODER_H_
