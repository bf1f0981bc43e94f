#include "services/generative/core/mlp_decoder.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/convert/matrix.h"
#include "common/convert/take_repeated.h"
#include "common/math/gaussian.h"
#include "common/math/log_sum_exp.h"
#include "common/random/distributions.h"
#include "common/status/status_macros.h"
#include "services/generative/core/safetensors.h"

namespace maas::generative {
namespace {

constexpr double kDefensiveAlpha = 0.1;
// The IMPORTANCE proposal's mode search (MakeProposal): starts at +-kStartRadius prior standard
// deviations along at most kStartDirections directions after the prior mean's (its budgets and
// the modes it keeps: MlpDecoderModel::kFirstSearchEvaluations, kStartEvaluations,
// kMaxProposalModes).
constexpr int kStartDirections = 8;
constexpr double kStartRadius = 1.5;

// The activation in place, with math's own functions (the bits of Forward's, on every CPU).
void Activate(v1::Activation activation, Eigen::VectorXd& a) {
  const auto n = static_cast<std::size_t>(a.size());
  switch (activation) {
    case v1::TANH:
      math::Tanh(a.data(), n);
      break;
    case v1::RELU:
      math::Relu(a.data(), n);
      break;
    case v1::SIGMOID:
      math::Sigmoid(a.data(), n);
      break;
    default:
      break;
  }
}

// d activation / d a, written in terms of the activation's output h.
Eigen::VectorXd ActivationSlope(v1::Activation activation, const Eigen::VectorXd& h) {
  switch (activation) {
    case v1::TANH:
      return (1.0 - h.array().square()).matrix();
    case v1::RELU:
      return (h.array() > 0.0).cast<double>().matrix();
    case v1::SIGMOID:
      return (h.array() * (1.0 - h.array())).matrix();
    default:
      return Eigen::VectorXd::Ones(h.size());
  }
}

// BERNOULLI log p(x | logits f) = sum over d of log sigmoid(f_d) (x_d = 1) or log sigmoid(-f_d)
// (x_d = 0), i.e. -softplus(-f_d) or -softplus(f_d), with math's fixed-order kernels; `scratch` is
// resized to 2 D (the softplus arguments, then D ones to sum them with Dot). Every term is <= 0,
// so nothing cancels (x_d f_d - softplus(f_d) lost -50 to 1e20 - (1e20 + 50), and gave
// 0 * inf - inf = NaN for an infinite logit), and an infinite logit gives its exact limit: 0 when
// it agrees with x_d, -inf when it does not. REQUIRES x_d in {0, 1}.
double BernoulliLogLikelihood(const double* x, const double* f, std::size_t d,
                              std::vector<double>& scratch) {
  scratch.resize(2 * d);
  for (std::size_t j = 0; j < d; ++j) scratch[j] = x[j] != 0.0 ? -f[j] : f[j];
  std::fill(scratch.data() + d, scratch.data() + 2 * d, 1.0);
  math::Softplus(scratch.data(), d);
  return -math::Dot(scratch.data(), scratch.data() + d, d);
}

// The largest |z_j| the prior's draws reach: Box–Muller's largest normal is
// sqrt(-2 log 2^-53) = 8.58 (ItemRng's uniforms are at least 2^-53), rounded up.
constexpr double kLargestPriorDraw = 9.0;
// The bound every layer's outputs must keep for such latents. Each layer's bound grows at most
// linearly in max_j |z_j|, so a decoder within it stays finite (no inf samples, no inf - inf = NaN
// in its sums) for every latent with max_j |z_j| < 9 * DBL_MAX / 1e150 = 1.6e159: beyond any
// draw, and beyond 1.3e154, where the prior density of z underflows to 0 (so does its weight).
constexpr double kLargestActivation = 1e150;

// log p(x|z) as answered: NaN (inf - inf inside the decoder) only arises for latents beyond
// 1.6e159 (CheckActivationBound), whose prior density, hence weight, is 0: -inf there.
double DefinedLogLikelihood(double value) {
  return std::isnan(value) ? -std::numeric_limits<double>::infinity() : value;
}

// INVALID_ARGUMENT naming the first layer whose values before its activation (so every partial sum
// of them, and its outputs) are not bounded by kLargestActivation for latents with |z_j| <=
// kLargestPriorDraw, by interval arithmetic: |a_i| <= |b_i| + sum_k |W_ik|
// m_k for inputs |h_k| <= m_k; tanh and sigmoid outputs are at most 1, relu and identity keep the
// bound.
template <typename Layers>
absl::Status CheckActivationBound(const Layers& layers, int latent_dim, const std::string& what) {
  Eigen::VectorXd bound = Eigen::VectorXd::Constant(latent_dim, kLargestPriorDraw);
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& layer = layers[i];
    Eigen::VectorXd out = layer.bias.cwiseAbs() + layer.weight.cwiseAbs() * bound;
    const double largest = out.maxCoeff();
    if (!(largest <= kLargestActivation)) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ".layers[", i, "] can compute values ",
          std::isfinite(largest) ? absl::StrCat("up to ", largest) : "beyond float64's range",
          " (before its activation) for latents the prior draws (|z_j| <= ", kLargestPriorDraw,
          "), above the limit of ", kLargestActivation,
          ": float64 would overflow (infinite samples, NaN log-likelihoods); scale its weights "
          "and biases (or an earlier layer's) down"));
    }
    if (layer.activation == v1::TANH || layer.activation == v1::SIGMOID) {
      out = out.cwiseMin(1.0);
    }
    bound = std::move(out);
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Activation> ParseActivation(const std::string& name, const std::string& what) {
  if (name == "identity") return v1::IDENTITY;
  if (name == "tanh") return v1::TANH;
  if (name == "relu") return v1::RELU;
  if (name == "sigmoid") return v1::SIGMOID;
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": unknown activation '", name, "'; use identity, tanh, relu or sigmoid"));
}

// One Gaussian of the Laplace mixture: N(mean, S) with S = V diag(1 / lambda) V^T, where V and
// lambda are the eigenvectors and (clamped) eigenvalues of -Hessian of log p(z, x) at `mean`.
struct LaplaceComponent {
  Eigen::VectorXd mean;
  Eigen::MatrixXd vectors;      // V
  Eigen::VectorXd sqrt_lambda;  // sqrt(lambda): whitened d = sqrt_lambda .* (V^T d)
  double log_det = 0;           // log det S = -sum(log lambda)
  double log_weight = 0;        // log of its share of the Laplace part

  template <typename Vector>
  double WhitenedSquaredDistance(const Vector& z) const {
    return (sqrt_lambda.array() * (vectors.transpose() * (z - mean)).array())
        .matrix()
        .squaredNorm();
  }
  // The same with every direction's scale capped at one prior standard deviation: a mode's basin,
  // for the mode search, is never wider than that (a saddle's clamped curvature would otherwise
  // claim a basin of 30 prior standard deviations).
  double BasinSquaredDistance(const Eigen::VectorXd& z) const {
    return (sqrt_lambda.cwiseMax(1.0).array() * (vectors.transpose() * (z - mean)).array())
        .matrix()
        .squaredNorm();
  }
};

// The defensive Laplace mixture proposal q = alpha N(0, I) + (1 - alpha) sum_k w_k N(m_k, S_k).
// One uniform picks the part (the number of words a draw consumes does not depend on it), then L
// normals; with one component this is the single defensive Laplace proposal, draw for draw.
class DefensiveLaplaceProposal final : public LatentProposal {
 public:
  explicit DefensiveLaplaceProposal(std::vector<LaplaceComponent> components)
      : components_(std::move(components)) {
    double cumulative = 0;
    for (const LaplaceComponent& c : components_) {
      cumulative += std::exp(c.log_weight);
      cumulative_.push_back(cumulative);
    }
  }
  void Sample(random::ItemRng& rng, Eigen::Ref<Eigen::VectorXd> z) const override {
    const double u = rng.Uniform();
    Eigen::VectorXd eps(components_.front().mean.size());
    random::FillNormal(rng, eps);
    if (u < kDefensiveAlpha) {
      z = eps;
      return;
    }
    const double t = (u - kDefensiveAlpha) / (1.0 - kDefensiveAlpha) * cumulative_.back();
    std::size_t k = 0;
    while (k + 1 < components_.size() && t >= cumulative_[k]) ++k;
    const LaplaceComponent& c = components_[k];
    z = c.mean + c.vectors * (eps.array() / c.sqrt_lambda.array()).matrix();
  }
  double LogDensity(const Eigen::Ref<const Eigen::VectorXd>& z) const override {
    const double l = static_cast<double>(z.size());
    double laplace = -std::numeric_limits<double>::infinity();
    for (const LaplaceComponent& c : components_) {
      laplace = math::LogAddExp(laplace, c.log_weight - 0.5 * (l * math::kLogTwoPi + c.log_det +
                                                               c.WhitenedSquaredDistance(z)));
    }
    const double prior = -0.5 * (l * math::kLogTwoPi + z.squaredNorm());
    return math::LogAddExp(std::log1p(-kDefensiveAlpha) + laplace,
                           std::log(kDefensiveAlpha) + prior);
  }

 private:
  std::vector<LaplaceComponent> components_;
  std::vector<double> cumulative_;  // running sums of the weights
};

}  // namespace

absl::StatusOr<std::unique_ptr<MlpDecoderModel>> MlpDecoderModel::Create(
    const v1::MlpDecoderSpec& spec) {
  return Build(spec, nullptr);
}

absl::StatusOr<std::unique_ptr<MlpDecoderModel>> MlpDecoderModel::Create(v1::MlpDecoderSpec* spec) {
  return Build(*spec, spec);
}

absl::StatusOr<std::unique_ptr<MlpDecoderModel>> MlpDecoderModel::Build(
    const v1::MlpDecoderSpec& spec, v1::MlpDecoderSpec* take) {
  const std::string what = "spec.mlp_decoder";
  std::unique_ptr<MlpDecoderModel> model(new MlpDecoderModel());
  const bool from_safetensors = !spec.safetensors().empty();  // taking it empties the field
  if (from_safetensors) {
    if (spec.layers_size() > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": set either layers or safetensors, not both"));
    }
    // Taken, the file's bytes leave the spec, and are freed once parsed into tensors.
    std::string taken;
    if (take != nullptr) taken.swap(*take->mutable_safetensors());
    MAAS_ASSIGN_OR_RETURN(
        SafetensorsFile file,
        ParseSafetensors(take != nullptr ? taken : spec.safetensors(), what + ".safetensors"));
    std::string().swap(taken);
    std::vector<v1::Activation> activations;
    if (auto it = file.metadata.find("activations"); it != file.metadata.end()) {
      for (absl::string_view name : absl::StrSplit(it->second, ',')) {
        MAAS_ASSIGN_OR_RETURN(v1::Activation a,
                              ParseActivation(std::string(name), what + ".safetensors metadata"));
        activations.push_back(a);
      }
    }
    for (int i = 0;; ++i) {
      const std::string w_name = absl::StrCat("layers.", i, ".weight");
      const std::string b_name = absl::StrCat("layers.", i, ".bias");
      auto w = file.tensors.find(w_name);
      if (w == file.tensors.end()) break;
      auto b = file.tensors.find(b_name);
      if (b == file.tensors.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ".safetensors: tensor '", b_name, "' is missing"));
      }
      if (w->second.shape.size() != 2 || b->second.shape.size() != 1 ||
          w->second.shape[0] != b->second.shape[0] || w->second.shape[0] == 0 ||
          w->second.shape[1] == 0) {
        return absl::InvalidArgumentError(absl::StrCat(what, ".safetensors: ", w_name,
                                                       " must have shape [out, in] and ", b_name,
                                                       " shape [out] with out, in >= 1"));
      }
      Layer layer;
      layer.weight =
          Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
              w->second.values.data(), w->second.shape[0], w->second.shape[1]);
      layer.bias = Eigen::Map<const Eigen::VectorXd>(b->second.values.data(), b->second.shape[0]);
      layer.activation = v1::IDENTITY;
      model->layers_.push_back(std::move(layer));
      // Each layer's tensors are freed once converted: the file's values and the layers' are
      // not all held at once.
      file.tensors.erase(w);
      file.tensors.erase(b);
    }
    if (model->layers_.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ".safetensors: no tensor 'layers.0.weight'"));
    }
    if (!file.tensors.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ".safetensors: ", file.tensors.size(),
          " tensor(s) are not layers.<i>.weight / layers.<i>.bias with consecutive i"));
    }
    const size_t n = model->layers_.size();
    if (!activations.empty() && activations.size() != n) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ".safetensors metadata: activations has ", activations.size(),
                       " entries for ", n, " layers"));
    }
    for (size_t i = 0; i < n; ++i) {
      model->layers_[i].activation =
          activations.empty() ? (i + 1 < n ? v1::TANH : v1::IDENTITY) : activations[i];
    }
  } else {
    if (spec.layers_size() == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ".layers is empty; give at least one layer (or safetensors)"));
    }
    for (int i = 0; i < spec.layers_size(); ++i) {
      const v1::DenseLayer& in = spec.layers(i);
      const std::string name = absl::StrCat(what, ".layers[", i, "]");
      Layer layer;
      MAAS_ASSIGN_OR_RETURN(layer.weight, convert::MatrixFromProto(in.weight(), name + ".weight"));
      // Freed once converted: the spec's weights and the layers' are not all held at once.
      if (take != nullptr) {
        convert::FreeRepeated(take->mutable_layers(i)->mutable_weight()->mutable_values());
      }
      if (layer.weight.size() == 0) {
        return absl::InvalidArgumentError(absl::StrCat(name, ".weight is empty"));
      }
      if (in.bias_size() != layer.weight.rows()) {
        return absl::InvalidArgumentError(absl::StrCat(name, ".bias has ", in.bias_size(),
                                                       " values but weight has ",
                                                       layer.weight.rows(), " rows"));
      }
      layer.bias = Eigen::Map<const Eigen::VectorXd>(in.bias().data(), in.bias_size());
      if (!layer.bias.allFinite()) {
        return absl::InvalidArgumentError(absl::StrCat(name, ".bias has a non-finite value"));
      }
      if (!v1::Activation_IsValid(in.activation())) {
        return absl::InvalidArgumentError(absl::StrCat(name, ".activation is not a known value"));
      }
      layer.activation =
          in.activation() == v1::ACTIVATION_UNSPECIFIED ? v1::IDENTITY : in.activation();
      model->layers_.push_back(std::move(layer));
    }
  }
  model->latent_dim_ = spec.latent_dim() == 0 && from_safetensors
                           ? static_cast<int>(model->layers_[0].weight.cols())
                           : static_cast<int>(spec.latent_dim());
  if (model->latent_dim_ < 1) {
    return absl::InvalidArgumentError(absl::StrCat(what, ".latent_dim must be >= 1"));
  }
  if (model->layers_[0].weight.cols() != model->latent_dim_) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ".layers[0].weight has ", model->layers_[0].weight.cols(),
                     " columns but latent_dim is ", model->latent_dim_));
  }
  for (size_t i = 1; i < model->layers_.size(); ++i) {
    if (model->layers_[i].weight.cols() != model->layers_[i - 1].weight.rows()) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ".layers[", i, "].weight has ", model->layers_[i].weight.cols(),
          " columns but layer ", i - 1, " has ", model->layers_[i - 1].weight.rows(), " outputs"));
    }
  }
  model->dimension_ = static_cast<int>(model->layers_.back().weight.rows());
  switch (spec.likelihood()) {
    case v1::DECODER_LIKELIHOOD_UNSPECIFIED:
    case v1::GAUSSIAN:
      if (!(spec.noise_variance() > 0.0) || !std::isfinite(spec.noise_variance())) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ".noise_variance is ", spec.noise_variance(),
                         "; a GAUSSIAN decoder needs a finite variance > 0"));
      }
      model->noise_variance_ = spec.noise_variance();
      break;
    case v1::BERNOULLI:
      model->bernoulli_ = true;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(what, ".likelihood is not a known value"));
  }
  MAAS_RETURN_IF_ERROR(CheckActivationBound(model->layers_, model->latent_dim_, what));
  model->Prepare();
  return model;
}

void MlpDecoderModel::Prepare() {
  for (Layer& layer : layers_) {
    layer.packed =
        math::PackedMatrix(static_cast<std::size_t>(layer.weight.cols()),
                           static_cast<std::size_t>(layer.weight.rows()), layer.weight.data(),
                           static_cast<std::size_t>(layer.weight.rows()), math::Transpose::kNo);
  }
  const Layer& last = layers_.back();
  const std::size_t d = static_cast<std::size_t>(dimension_);
  const std::size_t h = static_cast<std::size_t>(last.weight.cols());
  gram_ = false;
  if (bernoulli_ || last.activation != v1::IDENTITY || h >= d) return;
  // G = W^T W (H x H) with the fixed-order kernel, then its Cholesky factor; a (numerically)
  // singular G keeps the direct form.
  Eigen::MatrixXd gram(h, h);
  math::Gemm(h, h, d, last.weight.data(), d, last.weight.data(), d, math::Transpose::kYes,
             gram.data(), h, /*accumulate=*/false);
  const Eigen::LLT<Eigen::MatrixXd> llt(gram);
  if (llt.info() != Eigen::Success) return;
  const Eigen::MatrixXd factor = llt.matrixL();
  const Eigen::VectorXd diagonal = factor.diagonal();
  if (!factor.allFinite() || !(diagonal.minCoeff() > 1e-6 * diagonal.maxCoeff())) return;
  // C is lower triangular: column j of C^T h needs k >= j only (h is finite: tanh / sigmoid
  // outputs, or a row that overflowed goes the direct way), and u starts at +0.
  gram_factor_ = math::PackedMatrix(h, h, factor.data(), h, math::Transpose::kYes,
                                    math::SimdPath::kAuto, /*trim_zero_rows=*/true);
  gram_ = true;
}

void MlpDecoderModel::Forward(std::size_t rows, const double* z, std::size_t num_layers,
                              std::vector<std::vector<double>>& work) const {
  if (work.size() < num_layers) work.resize(num_layers);
  const double* in = z;
  std::size_t in_width = static_cast<std::size_t>(latent_dim_);
  for (std::size_t l = 0; l < num_layers; ++l) {
    const Layer& layer = layers_[l];
    const std::size_t out = static_cast<std::size_t>(layer.weight.rows());
    std::vector<double>& a = work[l];
    a.resize(rows * out);
    for (std::size_t r = 0; r < rows; ++r) {
      std::copy(layer.bias.data(), layer.bias.data() + out, a.data() + r * out);
    }
    math::Gemm(rows, in, in_width, layer.packed, a.data(), out, /*accumulate=*/true);
    switch (layer.activation) {
      case v1::TANH:
        math::Tanh(a.data(), a.size());
        break;
      case v1::SIGMOID:
        math::Sigmoid(a.data(), a.size());
        break;
      case v1::RELU:
        math::Relu(a.data(), a.size());
        break;
      default:
        break;
    }
    in = a.data();
    in_width = out;
  }
}

Eigen::MatrixXd MlpDecoderModel::Decode(const Eigen::Ref<const Eigen::MatrixXd>& z) const {
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const RowMajor rows = z;
  std::vector<std::vector<double>> work;
  Forward(static_cast<std::size_t>(z.rows()), rows.data(), layers_.size(), work);
  return Eigen::Map<const RowMajor>(work.back().data(), z.rows(), dimension_);
}

double MlpDecoderModel::LogLikelihoodOfOutput(const Eigen::Ref<const Eigen::VectorXd>& x,
                                              const Eigen::Ref<const Eigen::RowVectorXd>& f) const {
  if (bernoulli_) {
    const Eigen::VectorXd xc = x, fc = f.transpose();
    std::vector<double> scratch;
    return BernoulliLogLikelihood(xc.data(), fc.data(), static_cast<std::size_t>(fc.size()),
                                  scratch);
  }
  const double sq = (x.transpose() - f).squaredNorm();
  return -0.5 * (static_cast<double>(dimension_) * (math::kLogTwoPi + std::log(noise_variance_)) +
                 sq / noise_variance_);
}

void MlpDecoderModel::Sample(uint64_t seed, uint64_t first_index, Eigen::Ref<RowMatrixXd> x,
                             RowMatrixXd* latents) const {
  const Eigen::Index n = x.rows();
  std::vector<random::ItemRng> rngs;
  rngs.reserve(n);
  RowMatrixXd z(n, latent_dim_);
  Eigen::VectorXd one(latent_dim_);
  for (Eigen::Index i = 0; i < n; ++i) {
    rngs.emplace_back(seed, kSampleStream, first_index + static_cast<uint64_t>(i));
    random::FillNormal(rngs.back(), one);
    z.row(i) = one.transpose();
  }
  // The decoder on blocks of ForwardBlockRows() rows (Forward keeps every layer's activations of a
  // block: a 1 -> 10^6 -> 1 decoder took 8 GB for a batch of 1 024): math::Gemm's fixed summation
  // order makes each row's f independent of the block and batch sizes, so the samples do not
  // depend on how a request is batched.
  RowMatrixXd f(n, dimension_);
  {
    const std::size_t block = ForwardBlockRows();
    const std::size_t l = static_cast<std::size_t>(latent_dim_);
    std::vector<std::vector<double>> work;
    for (std::size_t first = 0; first < static_cast<std::size_t>(n); first += block) {
      const std::size_t rows = std::min(block, static_cast<std::size_t>(n) - first);
      Forward(rows, z.data() + first * l, layers_.size(), work);
      std::copy(work.back().data(), work.back().data() + rows * dimension_,
                f.data() + first * dimension_);
    }
  }
  const double stddev = std::sqrt(noise_variance_);
  // Bernoulli means for all values at once (math::Sigmoid works value by value, the same bits
  // for one value or many; a call per value cost a whole vector's exponential: 56 ns a value).
  if (bernoulli_) math::Sigmoid(f.data(), static_cast<std::size_t>(f.size()));
  // Each row's D uniforms or normals first, into its row of x (FillUniforms / FillNormals: many
  // Philox blocks a step, the values of as many Uniform() / Normal() calls), then used in place.
  for (Eigen::Index i = 0; i < n; ++i) {
    double* row = &x(i, 0);
    if (bernoulli_) {
      rngs[i].FillUniforms(row, static_cast<std::size_t>(dimension_));
      for (Eigen::Index d = 0; d < dimension_; ++d) row[d] = row[d] < f(i, d) ? 1.0 : 0.0;
    } else {
      rngs[i].FillNormals(row, static_cast<std::size_t>(dimension_));
      for (Eigen::Index d = 0; d < dimension_; ++d) row[d] = f(i, d) + stddev * row[d];
    }
  }
  if (latents != nullptr) *latents = std::move(z);
}

Eigen::VectorXd MlpDecoderModel::ExactLogLikelihood(
    const Eigen::Ref<const Eigen::MatrixXd>&) const {
  std::abort();  // REQUIRES tractable(): the core never calls it for this family.
}

void MlpDecoderModel::SamplePrior(random::ItemRng& rng, Eigen::Ref<Eigen::VectorXd> z) const {
  random::FillNormal(rng, z);
}

double MlpDecoderModel::LogPrior(const Eigen::Ref<const Eigen::VectorXd>& z) const {
  return -0.5 * (static_cast<double>(latent_dim_) * math::kLogTwoPi + z.squaredNorm());
}

// Latents are processed in blocks of kBlock rows through all layers (the activations stay in
// cache). GAUSSIAN with an identity output layer and H < D (gram_) never forms f: with the output
// layer's input h (H), b its bias, W its weight (D x H), c = W^T (x - b) and W^T W = C C^T,
//   |x - f|^2 = |x - b|^2 - 2 c . h + |C^T h|^2,
// 2 H (L + H) flops per latent instead of 2 H (L + D). The cancellation in this sum costs
// ~eps (|x - b|^2 + 2 |c . h| + |C^T h|^2) / (2 sigma^2) nats; a row where a generous bound on it
// (64 eps) exceeds 1e-9 nats is recomputed directly. Every term uses math's fixed-order kernels, so
// the result depends only on (model, x, z), not on the CPU or the batch.
void MlpDecoderModel::LogLikelihoodGivenLatent(const Eigen::Ref<const Eigen::VectorXd>& x,
                                               const Eigen::Ref<const Eigen::MatrixXd>& z,
                                               Eigen::Ref<Eigen::VectorXd> out) const {
  // At most 64 rows, and fewer for wide layers: Forward keeps every layer's activations for the
  // block (ForwardBlockRows). Rows are independent of the block (Forward's fixed order).
  const std::size_t kBlock = std::min<std::size_t>(64, ForwardBlockRows());
  constexpr double kGramErrorPerUnit = 64 * 2.220446049250313e-16;
  constexpr double kGramTolerance = 1e-9;
  const std::size_t total = static_cast<std::size_t>(z.rows());
  const std::size_t l = static_cast<std::size_t>(latent_dim_);
  const std::size_t d = static_cast<std::size_t>(dimension_);
  const double constant =
      static_cast<double>(dimension_) * (math::kLogTwoPi + std::log(noise_variance_));
  const Layer& last = layers_.back();
  const std::size_t h_width = static_cast<std::size_t>(last.weight.cols());
  const Eigen::VectorXd x_copy = x;  // contiguous
  // Per-call quantities of the Gram form.
  double base = 0.0;  // |x - b|^2
  std::vector<double> c, u, zeros, f_row;
  if (gram_) {
    const Eigen::VectorXd centered = x_copy - last.bias;
    base = math::SquaredDistance(x_copy.data(), last.bias.data(), d);
    c.resize(h_width);
    for (std::size_t j = 0; j < h_width; ++j) {  // c_j = W(:, j) . (x - b); W is column-major
      c[j] = math::Dot(last.weight.data() + j * d, centered.data(), d);
    }
    zeros.assign(h_width, 0.0);
    f_row.resize(d);
  }
  std::vector<double> z_block(kBlock * l);
  std::vector<std::vector<double>> work;
  for (std::size_t s0 = 0; s0 < total; s0 += kBlock) {
    const std::size_t rows = std::min(kBlock, total - s0);
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t j = 0; j < l; ++j) z_block[r * l + j] = z(s0 + r, j);
    }
    if (gram_) {
      Forward(rows, z_block.data(), layers_.size() - 1, work);
      const double* h = layers_.size() > 1 ? work[layers_.size() - 2].data() : z_block.data();
      u.resize(rows * h_width);
      math::Gemm(rows, h, h_width, gram_factor_, u.data(), h_width, /*accumulate=*/false);
      for (std::size_t r = 0; r < rows; ++r) {
        const double quadratic =
            math::SquaredDistance(u.data() + r * h_width, zeros.data(), h_width);
        const double dot = math::Dot(c.data(), h + r * h_width, h_width);
        double sq = (base - 2.0 * dot) + quadratic;
        const double bound =
            kGramErrorPerUnit * (base + 2.0 * std::abs(dot) + quadratic) / (2 * noise_variance_);
        if (!(bound <= kGramTolerance)) {  // also NaN: the direct form says what it is
          std::copy(last.bias.data(), last.bias.data() + d, f_row.data());
          math::Gemm(1, h + r * h_width, h_width, last.packed, f_row.data(), d, true);
          sq = math::SquaredDistance(x_copy.data(), f_row.data(), d);
        }
        out(static_cast<Eigen::Index>(s0 + r)) =
            DefinedLogLikelihood(-0.5 * (constant + std::max(sq, 0.0) / noise_variance_));
      }
      continue;
    }
    Forward(rows, z_block.data(), layers_.size(), work);
    const double* f = work[layers_.size() - 1].data();
    for (std::size_t r = 0; r < rows; ++r) {
      const double* fr = f + r * d;
      double value;
      if (bernoulli_) {
        value = BernoulliLogLikelihood(x_copy.data(), fr, d, f_row);
      } else {
        value = -0.5 * (constant + math::SquaredDistance(x_copy.data(), fr, d) / noise_variance_);
      }
      out(static_cast<Eigen::Index>(s0 + r)) = DefinedLogLikelihood(value);
    }
  }
}

double MlpDecoderModel::LogLikelihoodGradient(const Eigen::Ref<const Eigen::VectorXd>& x,
                                              const Eigen::Ref<const Eigen::VectorXd>& z,
                                              Eigen::Ref<Eigen::VectorXd> grad) const {
  std::vector<Eigen::VectorXd> h(layers_.size() + 1);
  h[0] = z;
  for (size_t l = 0; l < layers_.size(); ++l) {
    Eigen::VectorXd a = layers_[l].weight * h[l] + layers_[l].bias;
    Activate(layers_[l].activation, a);
    h[l + 1] = std::move(a);
  }
  const Eigen::VectorXd& f = h.back();
  const double log_lik = LogLikelihoodOfOutput(x, f.transpose());
  Eigen::VectorXd g;
  if (bernoulli_) {
    Eigen::VectorXd p = f;
    math::Sigmoid(p.data(), static_cast<std::size_t>(p.size()));
    g = x - p;
  } else {
    g = (x - f) / noise_variance_;
  }
  for (size_t l = layers_.size(); l-- > 0;) {
    const Eigen::VectorXd da =
        (g.array() * ActivationSlope(layers_[l].activation, h[l + 1]).array()).matrix();
    g = layers_[l].weight.transpose() * da;
  }
  grad = g;
  return DefinedLogLikelihood(log_lik);
}

double MlpDecoderModel::LatentEvaluationCost() const {
  double cost = dimension_;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Eigen::MatrixXd& w = layers_[i].weight;
    const bool shortcut = gram_ && i + 1 == layers_.size();
    cost += shortcut ? static_cast<double>(w.cols()) * w.cols() : static_cast<double>(w.size());
  }
  return cost;
}

double MlpDecoderModel::ProposalCost() const {
  const double l = latent_dim_;
  const double starts = 2 * std::min(latent_dim_, kStartDirections);
  const double searches = kFirstSearchEvaluations + starts * kStartEvaluations;
  // Per search step, its gradient and the basin checks against up to kMaxProposalModes modes
  // (L^2 each); per mode, the finite-difference Hessian's 2 L gradients and the symmetric
  // eigendecomposition with eigenvectors, ~9 L^3 (Golub & Van Loan's count; counted as L^3, it
  // was a fifth of what a proposal at L = 2 360 took, 12.8 s, so --max_estimate_work admitted ~5x
  // the work it allows).
  return searches * (2 * LatentEvaluationCost() + kMaxProposalModes * l * l) +
         kMaxProposalModes * (2 * l * 2 * LatentEvaluationCost() + 9 * l * l * l);
}

std::unique_ptr<LatentProposal> MlpDecoderModel::MakeProposal(
    const Eigen::Ref<const Eigen::VectorXd>& x) const {
  return MakeProposal(x, nullptr);
}

std::unique_ptr<LatentProposal> MlpDecoderModel::MakeProposal(
    const Eigen::Ref<const Eigen::VectorXd>& x, ProposalSearch* search,
    const exec::StopToken& stop) const {
  const int l = latent_dim_;
  Eigen::VectorXd grad(l);
  // log p(z, x) up to a constant and its gradient.
  int64_t evaluations = 0;
  // Whether `stop` asked to stop: asked every kStopCheckEvaluations evaluations, so that neither a
  // search nor a Hessian runs on whole after a deadline or cancel (at L = 2 360 either took
  // seconds); the searches, their line searches and the Hessian's columns end when it is set.
  bool stopped = false;
  const auto objective = [&](const Eigen::VectorXd& z, Eigen::VectorXd* g) {
    if (++evaluations % kStopCheckEvaluations == 0 && !stopped) stopped = stop.stop_requested();
    const double log_lik = LogLikelihoodGradient(x, z, grad);
    if (g != nullptr) *g = grad - z;
    return log_lik - 0.5 * z.squaredNorm();
  };
  std::vector<LaplaceComponent> modes;
  modes.reserve(kMaxProposalModes);
  // Whether z is inside the basin of a mode already found (within one posterior standard deviation
  // of it by its Laplace shape, and within one prior standard deviation).
  const auto known = [&](const Eigen::VectorXd& z) {
    for (const LaplaceComponent& mode : modes) {
      if (std::isfinite(mode.log_weight) && mode.BasinSquaredDistance(z) < 1.0) return true;
    }
    return false;
  };
  // A posterior mode from `z`: limited-memory BFGS ascent (the last kMemory steps) with
  // backtracking (Armijo). No step moves z by more than kMaxMove (prior standard deviations): a
  // steep start (a sharp likelihood) had jumped past the mode nearest the start into another
  // basin, whose Laplace proposal then missed most of the posterior mass with weights that looked
  // healthy; and a first step at the cap reaches any gradient's scale (at a noise variance of
  // 1e-24, 60 halvings of a step of 1 had not, and the search stayed at z = 0). Plain gradient
  // ascent took its 500 iterations on every posterior narrower than the prior (~1 000 gradients,
  // 20 times the 1 000 samples of an estimate at L = 50). At most `budget` evaluations of the
  // objective (a piecewise-quadratic relu posterior can keep L-BFGS from converging in 500
  // iterations of up to 120 evaluations each).
  constexpr double kMaxMove = 0.5;
  constexpr int kMemory = 8;
  Eigen::VectorXd g(l), trial_g(l), direction(l);
  std::vector<Eigen::VectorXd> steps, changes;  // s_i = z_{i+1} - z_i, y_i = g_i - g_{i+1}
  std::vector<double> rho, alpha;
  enum class Ascent { kKnownBasin, kMode, kUnfinished, kStopped };
  const auto ascend = [&](Eigen::VectorXd& z, double& value, int64_t budget) {
    const int64_t end = evaluations + budget;
    steps.clear();
    changes.clear();
    rho.clear();
    value = objective(z, &g);
    for (int iteration = 0; g.norm() > 1e-9; ++iteration) {
      if (stopped) return Ascent::kStopped;
      if (known(z)) return Ascent::kKnownBasin;
      if (iteration == 500 || evaluations >= end) return Ascent::kUnfinished;
      bool moved = false;
      // The quasi-Newton direction (two-loop recursion), then, if it fails, the gradient's.
      for (bool quasi_newton : {!steps.empty(), false}) {
        if (quasi_newton) {
          direction = g;
          alpha.assign(steps.size(), 0.0);
          for (size_t i = steps.size(); i-- > 0;) {
            alpha[i] = rho[i] * steps[i].dot(direction);
            direction -= alpha[i] * changes[i];
          }
          direction *= steps.back().dot(changes.back()) / changes.back().squaredNorm();
          for (size_t i = 0; i < steps.size(); ++i) {
            direction += (alpha[i] - rho[i] * changes[i].dot(direction)) * steps[i];
          }
          if (!(g.dot(direction) > 0) || !direction.allFinite()) continue;
          // The full step's predicted gain, g^T H^-1 g / 2, is within float64's rounding of
          // log p(z, x): z is the mode as closely as its value can tell.
          if (0.5 * g.dot(direction) <= 1e-14 * (1.0 + std::abs(value))) break;
        } else {
          direction = g;
        }
        const double slope = g.dot(direction);
        double step = std::min(1.0, kMaxMove / direction.norm());
        for (int halving = 0; halving < 60 && evaluations < end && !stopped; ++halving) {
          Eigen::VectorXd trial = z + step * direction;
          const double trial_value = objective(trial, &trial_g);
          if (std::isfinite(trial_value) && trial_value >= value + 1e-4 * step * slope) {
            Eigen::VectorXd s_i = trial - z, y_i = g - trial_g;
            const double curvature = s_i.dot(y_i);
            z = std::move(trial);
            value = trial_value;
            g = trial_g;
            if (curvature > 0 && std::isfinite(curvature)) {  // keeps the update positive definite
              if (static_cast<int>(steps.size()) == kMemory) {
                steps.erase(steps.begin());
                changes.erase(changes.begin());
                rho.erase(rho.begin());
              }
              steps.push_back(std::move(s_i));
              changes.push_back(std::move(y_i));
              rho.push_back(1.0 / curvature);
            }
            moved = true;
            break;
          }
          step *= 0.5;
        }
        if (moved) break;
        steps.clear();  // a failed quasi-Newton step: start the memory again
        changes.clear();
        rho.clear();
      }
      if (!moved) break;  // at the mode within float64's rounding, out of budget or stopped
    }
    if (stopped) return Ascent::kStopped;
    if (known(z)) return Ascent::kKnownBasin;
    return evaluations >= end ? Ascent::kUnfinished : Ascent::kMode;
  };
  // The Laplace shape at z: -Hessian of log p(z, x) by central differences of the gradient, its
  // eigenvalues clamped at 1e-3 (a variance of at most 1000 prior variances). Nothing once
  // `stopped` is set.
  const auto laplace = [&](Eigen::VectorXd z, double value) -> std::optional<LaplaceComponent> {
    Eigen::MatrixXd hessian(l, l);
    for (int j = 0; j < l; ++j) {
      if (stopped) return std::nullopt;
      const double h = 1e-5 * std::max(1.0, std::abs(z(j)));
      Eigen::VectorXd plus = z, minus = z, g_plus(l), g_minus(l);
      plus(j) += h;
      minus(j) -= h;
      objective(plus, &g_plus);
      objective(minus, &g_minus);
      hessian.col(j) = -(g_plus - g_minus) / (2 * h);
    }
    if (stopped) return std::nullopt;
    hessian = 0.5 * (hessian + hessian.transpose()).eval();
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(hessian);
    hessian.resize(0, 0);
    Eigen::VectorXd lambda = eigen.eigenvalues().cwiseMax(1e-3);
    LaplaceComponent mode;
    if (!lambda.allFinite() || !z.allFinite() || !eigen.eigenvectors().allFinite() ||
        !std::isfinite(value)) {
      // Degenerate: the prior's shape, with no evidence of its own.
      mode.mean = Eigen::VectorXd::Zero(l);
      mode.vectors = Eigen::MatrixXd::Identity(l, l);
      lambda = Eigen::VectorXd::Ones(l);
      value = -std::numeric_limits<double>::infinity();
    } else {
      mode.mean = std::move(z);
      mode.vectors = eigen.eigenvectors();
    }
    mode.sqrt_lambda = lambda.cwiseSqrt();
    mode.log_det = -lambda.array().log().sum();
    // Laplace's evidence of the mode, log p(m, x) + log det(2 pi S) / 2 up to a shared constant.
    mode.log_weight = value + 0.5 * mode.log_det;
    return mode;
  };
  // Starts: the prior mean, then +-kStartRadius prior standard deviations along the directions in
  // which the first mode's posterior is widest but not the prior's (kStartDirections of them at
  // most): where the data leave the latent least determined, another mode is most likely (a
  // decoder that folds z, such as |z1|, has its modes on both sides of the fold), while along a
  // direction the likelihood does not inform (a latent the decoder ignores: curvature exactly
  // the prior's) there is none, and such directions used to take every start. A start that enters
  // a known mode's basin, or does not reach a mode within its budget, adds none.
  // Returns nullptr once stopped, the evaluations so far in *search.
  const auto give_up = [&]() -> std::unique_ptr<LatentProposal> {
    if (search != nullptr) search->evaluations = evaluations;
    return nullptr;
  };
  {
    Eigen::VectorXd z = Eigen::VectorXd::Zero(l);
    double value = 0;
    ascend(z, value, kFirstSearchEvaluations);
    if (stopped || stop.stop_requested()) return give_up();
    std::optional<LaplaceComponent> mode = laplace(std::move(z), value);
    if (!mode.has_value()) return give_up();
    modes.push_back(*std::move(mode));
  }
  std::vector<int> directions;
  for (int k = 0; k < l && static_cast<int>(directions.size()) < kStartDirections; ++k) {
    // Eigenvalues ascend: column k has the k-th largest variance.
    const double lambda = modes.front().sqrt_lambda(k) * modes.front().sqrt_lambda(k);
    if (std::abs(lambda - 1.0) > 1e-6) directions.push_back(k);
  }
  for (int k : directions) {
    for (double sign : {1.0, -1.0}) {
      if (static_cast<int>(modes.size()) >= kMaxProposalModes) break;
      if (stop.stop_requested()) return give_up();
      Eigen::VectorXd z = sign * kStartRadius * modes.front().vectors.col(k);
      double value = 0;
      const Ascent ascent = ascend(z, value, kStartEvaluations);
      if (ascent == Ascent::kStopped) return give_up();
      if (ascent == Ascent::kMode) {
        if (stop.stop_requested()) return give_up();
        std::optional<LaplaceComponent> mode = laplace(std::move(z), value);
        if (!mode.has_value()) return give_up();
        modes.push_back(*std::move(mode));
      }
    }
  }
  // Weights: half by Laplace's evidence, half shared equally among the modes whose evidence is at
  // least 1e-3 of the total (so a mode whose Laplace evidence is off still gets samples); modes
  // below that (saddles, far minor modes) are left to the defensive prior part.
  double largest = -std::numeric_limits<double>::infinity();
  for (const LaplaceComponent& mode : modes) largest = std::max(largest, mode.log_weight);
  std::vector<LaplaceComponent> kept;
  if (!std::isfinite(largest)) {
    kept.push_back(std::move(modes.front()));
    kept.front().log_weight = 0;
  } else {
    double total = 0;
    for (const LaplaceComponent& mode : modes) total += std::exp(mode.log_weight - largest);
    std::vector<double> shares;  // of the evidence, of the modes kept
    double kept_share = 0;
    for (LaplaceComponent& mode : modes) {
      const double share = std::exp(mode.log_weight - largest) / total;
      if (share >= 1e-3) {
        kept.push_back(std::move(mode));
        shares.push_back(share);
        kept_share += share;
      }
    }
    const double equal = 1.0 / static_cast<double>(kept.size());
    for (size_t k = 0; k < kept.size(); ++k) {
      kept[k].log_weight = std::log(0.5 * shares[k] / kept_share + 0.5 * equal);
    }
  }
  if (search != nullptr) {
    search->evaluations = evaluations;
    search->modes_found = static_cast<int>(modes.size());
    search->modes_kept = static_cast<int>(kept.size());
  }
  return std::make_unique<DefensiveLaplaceProposal>(std::move(kept));
}

std::size_t MlpDecoderModel::ForwardBlockRows() const {
  std::size_t widths = 0;
  for (const Layer& layer : layers_) widths += static_cast<std::size_t>(layer.weight.rows());
  return std::max<std::size_t>(1, kForwardBudgetBytes / (8 * std::max<std::size_t>(widths, 1)));
}

namespace {

// Bookkeeping of one layer beyond its values (the Layer, its Eigen and packed buffers' headers and
// alignment, the spec's message): about 1 KiB, so depth counts even with 1 x 1 layers (10^6 of
// them took 1.9 GB).
constexpr double kLayerOverheadValues = 128;

// Family::model_size: every layer's weight (and its packed copy) and bias, the Gram factor (H x H
// for a last layer of H < D inputs) and the latent_dim x latent_dim matrices of an IMPORTANCE
// proposal (MlpDecoderModel::ProposalBytes). Reads only sizes (for safetensors, the header's
// shapes); a spec that does not parse counts 0 and `build` says what is wrong.
ModelSize MlpDecoderModelSize(const v1::MlpDecoderSpec& spec) {
  std::vector<std::pair<double, double>> shapes;  // (out, in) per layer
  if (!spec.safetensors().empty()) {
    absl::StatusOr<SafetensorsFile> file =
        ParseSafetensors(spec.safetensors(), "safetensors", /*read_values=*/false);
    if (file.ok()) {
      for (int i = 0;; ++i) {
        const auto it = file->tensors.find(absl::StrCat("layers.", i, ".weight"));
        if (it == file->tensors.end() || it->second.shape.size() != 2) break;
        shapes.emplace_back(it->second.shape[0], it->second.shape[1]);
      }
    }
  } else {
    for (const v1::DenseLayer& layer : spec.layers()) {
      shapes.emplace_back(layer.weight().rows(), layer.weight().cols());
    }
  }
  const double latent =
      spec.latent_dim() == 0 && !shapes.empty() ? shapes[0].second : spec.latent_dim();
  double values = MlpDecoderModel::ProposalValues(latent);
  for (const auto& [out, in] : shapes) values += 2 * out * in + out + kLayerOverheadValues;
  if (!shapes.empty() && shapes.back().second < shapes.back().first) {
    values += shapes.back().second * shapes.back().second;  // the Gram factor
  }
  ModelSize size;
  size.bytes = Float64Bytes(values);
  size.what =
      absl::StrCat(shapes.size(), " layers and latent_dim ", latent,
                   " (its IMPORTANCE proposal forms four ", latent, " x ", latent, " matrices)");
  size.smaller = "use a smaller latent_dim, fewer or narrower layers";
  return size;
}

}  // namespace

Family MlpDecoderFamily() {
  Family family;
  family.name = "mlp_decoder";
  family.spec_case = v1::GenerativeModelSpec::kMlpDecoder;
  family.build =
      [](const v1::GenerativeModelSpec& spec) -> absl::StatusOr<std::unique_ptr<GenerativeModel>> {
    MAAS_ASSIGN_OR_RETURN(std::unique_ptr<MlpDecoderModel> model,
                          MlpDecoderModel::Create(spec.mlp_decoder()));
    return std::unique_ptr<GenerativeModel>(std::move(model));
  };
  family.build_taking =
      [](v1::GenerativeModelSpec* spec) -> absl::StatusOr<std::unique_ptr<GenerativeModel>> {
    MAAS_ASSIGN_OR_RETURN(std::unique_ptr<MlpDecoderModel> model,
                          MlpDecoderModel::Create(spec->mutable_mlp_decoder()));
    return std::unique_ptr<GenerativeModel>(std::move(model));
  };
  family.model_size = [](const v1::GenerativeModelSpec& spec) {
    return MlpDecoderModelSize(spec.mlp_decoder());
  };
  return family;
}

}  // namespace maas::generative
