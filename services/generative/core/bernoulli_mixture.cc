#include "services/generative/core/bernoulli_mixture.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/convert/matrix.h"
#include "common/math/log_sum_exp.h"
#include "common/random/distributions.h"
#include "common/random/item_rng.h"
#include "common/status/status_macros.h"
#include "services/generative/core/kmeans.h"

namespace maas::generative {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// The most rows ComponentTermsRows takes at once.
constexpr int kTermRows = 16;

// out[r * k + c0 + c] = sum over j ascending of column[r * d + j][c0 + c], from 0, for r < R and
// c < C: R x C sums in registers, each adding its terms in ascending j.
template <int R, int C>
void AddColumnBlock(const double* const* column, Eigen::Index d, Eigen::Index c0, Eigen::Index k,
                    double* out) {
  double acc[R][C] = {};
  for (Eigen::Index j = 0; j < d; ++j) {
    for (int r = 0; r < R; ++r) {
      const double* t = column[r * d + j] + c0;
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[r][c] += t[c];
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) out[r * k + c0 + c] = acc[r][c];
  }
}

// AddColumnBlock<R, C> for the chunk of C = `chunk` components (8, 4, 2 or 1) at c0.
template <int R>
void AddColumnChunk(int chunk, const double* const* column, Eigen::Index d, Eigen::Index c0,
                    Eigen::Index k, double* out) {
  switch (chunk) {
    case 8:
      return AddColumnBlock<R, 8>(column, d, c0, k, out);
    case 4:
      return AddColumnBlock<R, 4>(column, d, c0, k, out);
    case 2:
      return AddColumnBlock<R, 2>(column, d, c0, k, out);
    default:
      return AddColumnBlock<R, 1>(column, d, c0, k, out);
  }
}

// log p(x_r | c) for m <= kTermRows adjacent rows x_r of a column-major batch (value j of row r at
// x[r + j * x_stride]) and every component c < K, into out[r * K + c]: the sum over j ascending
// of (x_j == 1 ? log_p(c, j) : log_1mp(c, j)), from 0; -inf for every c when x_r is not binary.
// Each row's table column per j is picked first (by index: a branch on random binary data
// mispredicts half the time), then blocks of up to 4 rows x 8 components are summed in registers
// (AddColumnBlock), the components' chunk of the tables in cache across the rows: the same bits as
// one sum after another, without one chain of dependent additions per sum nor accumulators in
// memory. `column` is scratch.
void ComponentTermsRows(const Eigen::MatrixXd& log_p, const Eigen::MatrixXd& log_1mp,
                        const double* x, int m, Eigen::Index x_stride, double* out,
                        std::vector<const double*>& column) {
  const Eigen::Index k = log_p.rows(), d = log_p.cols();
  const double* const tables[2] = {log_1mp.data(), log_p.data()};
  column.resize(static_cast<size_t>(m * d));
  int other[kTermRows] = {};  // whether a value of the row is neither 0 nor 1
  // j outer: the rows are adjacent for each j.
  for (Eigen::Index j = 0; j < d; ++j) {
    for (int r = 0; r < m; ++r) {
      const double v = x[r + j * x_stride];
      const int one = v == 1.0 ? 1 : 0;
      other[r] |= (v != 0.0 ? 1 : 0) & (one ^ 1);
      column[static_cast<size_t>(r * d + j)] = tables[one] + j * k;
    }
  }
  for (Eigen::Index c0 = 0; c0 < k;) {
    const Eigen::Index left = k - c0;
    const int chunk = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
    for (int r0 = 0; r0 < m;) {
      const double* const* rows = column.data() + r0 * d;
      if (m - r0 >= 4) {
        AddColumnChunk<4>(chunk, rows, d, c0, k, out + r0 * k);
        r0 += 4;
      } else {
        AddColumnChunk<1>(chunk, rows, d, c0, k, out + r0 * k);
        r0 += 1;
      }
    }
    c0 += chunk;
  }
  for (int r = 0; r < m; ++r) {
    if (other[r] != 0) std::fill(out + r * k, out + (r + 1) * k, kNegInf);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<BernoulliMixtureModel>> BernoulliMixtureModel::Create(
    const v1::BernoulliMixtureSpec& spec) {
  std::unique_ptr<BernoulliMixtureModel> m(new BernoulliMixtureModel());
  MAAS_ASSIGN_OR_RETURN(m->weights_,
                        MixtureWeightsFromProto(spec.weights(), "bernoulli_mixture.weights"));
  const Eigen::Index k = m->weights_.size();
  MAAS_ASSIGN_OR_RETURN(m->prob_, MatrixFieldFromProto(spec.probabilities(),
                                                       "bernoulli_mixture.probabilities", k, -1));
  for (Eigen::Index c = 0; c < k; ++c) {
    for (Eigen::Index j = 0; j < m->prob_.cols(); ++j) {
      const double p = m->prob_(c, j);
      if (!(p >= 0.0 && p <= 1.0)) {
        return absl::InvalidArgumentError(absl::StrCat("bernoulli_mixture.probabilities(", c, ", ",
                                                       j, ") = ", p,
                                                       "; probabilities must lie in [0, 1]"));
      }
    }
  }
  m->log_weights_ = ExactLog(m->weights_.array());
  m->cumulative_.resize(k);
  double running = 0.0;
  for (Eigen::Index c = 0; c < k; ++c) {
    running += m->weights_(c);
    m->cumulative_(c) = running;
  }
  m->log_p_ = ExactLog(m->prob_.array());
  m->log_1mp_ = (-m->prob_.array()).log1p();
  return m;
}

Eigen::VectorXd BernoulliMixtureModel::ComponentLogLikelihoods(const double* x) const {
  Eigen::VectorXd out(weights_.size());
  std::vector<const double*> column;
  ComponentTermsRows(log_p_, log_1mp_, x, 1, 1, out.data(), column);
  return out;
}

void BernoulliMixtureModel::Sample(uint64_t seed, uint64_t first_index, Eigen::Ref<RowMatrixXd> x,
                                   RowMatrixXd* latents) const {
  const Eigen::Index d = prob_.cols();
  if (latents != nullptr) latents->resize(x.rows(), 1);
  // Each row's uniforms go to its row of x first (FillUniforms: many Philox blocks a step), then
  // are compared in place with the component's probabilities (a row of the row-major prob_).
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    random::ItemRng rng(seed, kSampleStream, first_index + static_cast<uint64_t>(i));
    const int c = random::CategoricalFromCumulative(rng, cumulative_);
    double* row = &x(i, 0);
    rng.FillUniforms(row, static_cast<size_t>(d));
    const double* p = prob_.data() + c * d;
    for (Eigen::Index j = 0; j < d; ++j) row[j] = row[j] < p[j] ? 1.0 : 0.0;
    if (latents != nullptr) (*latents)(i, 0) = c;
  }
}

Eigen::VectorXd BernoulliMixtureModel::ExactLogLikelihood(
    const Eigen::Ref<const Eigen::MatrixXd>& x) const {
  const Eigen::Index k = log_weights_.size();
  Eigen::VectorXd out(x.rows());
  Eigen::MatrixXd terms(k, kTermRows);  // column r: row i + r's log p(x | c)
  std::vector<const double*> column;
  for (Eigen::Index i = 0; i < x.rows(); i += kTermRows) {
    const int m = static_cast<int>(std::min<Eigen::Index>(kTermRows, x.rows() - i));
    ComponentTermsRows(log_p_, log_1mp_, x.data() + i, m, x.outerStride(), terms.data(), column);
    for (int r = 0; r < m; ++r) out(i + r) = math::LogSumExp(terms.col(r) + log_weights_);
  }
  return out;
}

void BernoulliMixtureModel::SamplePrior(random::ItemRng& rng, Eigen::Ref<Eigen::VectorXd> z) const {
  z.setZero();
  z(0) = random::CategoricalFromCumulative(rng, cumulative_);
}

double BernoulliMixtureModel::LogPrior(const Eigen::Ref<const Eigen::VectorXd>& z) const {
  const int c = ComponentIndex(z(0), latent_dim());
  return c < 0 ? kNegInf : log_weights_(c);
}

void BernoulliMixtureModel::LogLikelihoodGivenLatent(const Eigen::Ref<const Eigen::VectorXd>& x,
                                                     const Eigen::Ref<const Eigen::MatrixXd>& z,
                                                     Eigen::Ref<Eigen::VectorXd> out) const {
  const Eigen::VectorXd row = x;
  const Eigen::VectorXd terms = ComponentLogLikelihoods(row.data());
  for (Eigen::Index s = 0; s < z.rows(); ++s) {
    const int c = ComponentIndex(z(s, 0), latent_dim());
    out(s) = c < 0 ? kNegInf : terms(c);
  }
}

std::unique_ptr<LatentProposal> BernoulliMixtureModel::MakeProposal(
    const Eigen::Ref<const Eigen::VectorXd>& x) const {
  const Eigen::VectorXd row = x;
  // A non-binary row or an impossible value has p(x) = 0: the prior proposal then.
  return MixturePosteriorProposal(ComponentLogLikelihoods(row.data()) + log_weights_, log_weights_);
}

// ---------------------------------------------------------------------------------------------------------
// EM.

namespace {

class BernoulliMixtureFitter final : public FamilyFitter {
 public:
  BernoulliMixtureFitter(int k, double tol, int max_iter, double min_probability, uint64_t seed)
      : k_(k), tol_(tol), max_iter_(max_iter), min_probability_(min_probability), seed_(seed) {}

  absl::Status AddRows(const Eigen::Ref<const Eigen::MatrixXd>& rows, uint64_t first_row) override {
    for (Eigen::Index i = 0; i < rows.rows(); ++i) {
      for (Eigen::Index j = 0; j < rows.cols(); ++j) {
        const double v = rows(i, j);
        if (v != 0.0 && v != 1.0) {
          return absl::InvalidArgumentError(absl::StrCat(
              "bernoulli_mixture: training row ", first_row + static_cast<uint64_t>(i), ", column ",
              j, " is ", v, "; a Bernoulli mixture needs binary data (0 or 1)"));
        }
      }
    }
    rows_.Add(rows);
    return absl::OkStatus();
  }

  absl::StatusOr<FitResult> Finish(const exec::StopToken& stop) override {
    const int64_t n = rows_.rows(), d = rows_.cols();
    if (k_ > n) {
      return absl::InvalidArgumentError(
          absl::StrCat("bernoulli_mixture.n_components is ", k_, " but only ", n,
                       " training rows arrived; use n_components <= the number of rows"));
    }
    const Eigen::MatrixXd x = rows_.Take();
    // Initialisation: k-means++ seeds, hard assignment to the nearest seed.
    random::ItemRng rng(seed_, kFitStream, 0);
    MAAS_ASSIGN_OR_RETURN(const std::vector<int> seeds, KMeansPlusPlus(x, k_, rng, stop));
    Eigen::MatrixXd centres(k_, d);
    for (int c = 0; c < k_; ++c) centres.row(c) = x.row(seeds[static_cast<size_t>(c)]);
    const Eigen::MatrixXd dist = SquaredDistances(x, centres);
    Eigen::MatrixXd resp = Eigen::MatrixXd::Zero(n, k_);
    for (Eigen::Index i = 0; i < n; ++i) {
      Eigen::Index best;
      dist.row(i).minCoeff(&best);
      resp(i, best) = 1.0;
    }
    MStep(x, resp);
    FitResult result;
    double lower_bound = kNegInf;
    bool converged = false;
    int iter = 0;
    Eigen::VectorXd terms(k_);
    Eigen::MatrixXd block_terms(k_, kTermRows);  // column r: row i + r's log p(x | c)
    std::vector<const double*> column;
    for (iter = 1; iter <= max_iter_; ++iter) {
      MAAS_RETURN_IF_ERROR(stop.Check());
      const double previous = lower_bound;
      const Eigen::MatrixXd log_p = ExactLog(prob_.array());
      const Eigen::MatrixXd log_1mp = (-prob_.array()).log1p();
      const Eigen::VectorXd log_w = ExactLog(weights_.array());
      double total = 0.0;
      for (Eigen::Index i0 = 0; i0 < n; i0 += kTermRows) {
        const int m = static_cast<int>(std::min<Eigen::Index>(kTermRows, n - i0));
        ComponentTermsRows(log_p, log_1mp, x.data() + i0, m, n, block_terms.data(), column);
        for (int r = 0; r < m; ++r) {
          const Eigen::Index i = i0 + r;
          terms = block_terms.col(r) + log_w;
          const double norm = math::LogSumExp(terms);
          resp.row(i) = (terms.array() - norm).exp().matrix().transpose();
          total += norm;
        }
      }
      lower_bound = total / static_cast<double>(n);
      if (!std::isfinite(lower_bound)) {
        return absl::FailedPreconditionError(
            "bernoulli_mixture: a training row has probability 0 under every component (a "
            "probability reached exactly 0 or 1); set min_probability > 0");
      }
      MStep(x, resp);
      result.trace.add_log_likelihood(lower_bound);
      if (std::abs(lower_bound - previous) < tol_) {
        converged = true;
        break;
      }
    }
    v1::BernoulliMixtureSpec* spec = result.spec.mutable_bernoulli_mixture();
    for (int c = 0; c < k_; ++c) spec->add_weights(weights_(c));
    convert::MatrixToProto(prob_, spec->mutable_probabilities());
    result.trace.set_converged(converged);
    result.trace.set_n_iter(static_cast<uint32_t>(std::min(iter, max_iter_)));
    return result;
  }

 private:
  void MStep(const Eigen::MatrixXd& x, const Eigen::MatrixXd& resp) {
    const double eps10 = 10.0 * std::numeric_limits<double>::epsilon();
    const Eigen::VectorXd nk = (resp.colwise().sum().array() + eps10).matrix().transpose();
    weights_ = nk / nk.sum();
    prob_ = ResponsibilityWeightedSums(resp, x).array().colwise() / nk.array();
    prob_ = prob_.cwiseMax(min_probability_).cwiseMin(1.0 - min_probability_);
  }

  int k_;
  double tol_;
  int max_iter_;
  double min_probability_;
  uint64_t seed_;
  RowBuffer rows_;
  Eigen::VectorXd weights_;
  Eigen::MatrixXd prob_;
};

}  // namespace

Family BernoulliMixtureFamily() {
  Family family;
  family.name = "bernoulli_mixture";
  family.spec_case = v1::GenerativeModelSpec::kBernoulliMixture;
  family.build =
      [](const v1::GenerativeModelSpec& spec) -> absl::StatusOr<std::unique_ptr<GenerativeModel>> {
    MAAS_ASSIGN_OR_RETURN(std::unique_ptr<BernoulliMixtureModel> model,
                          BernoulliMixtureModel::Create(spec.bernoulli_mixture()));
    return std::unique_ptr<GenerativeModel>(std::move(model));
  };
  // Its parameters, as fit_size counts them.
  family.model_size = [](const v1::GenerativeModelSpec& spec) {
    const v1::BernoulliMixtureSpec& m = spec.bernoulli_mixture();
    ModelSize size;
    size.bytes =
        Float64Bytes(static_cast<double>(m.weights_size()) + m.probabilities().values_size());
    size.what = absl::StrCat(m.weights_size(), " components, probabilities ",
                             m.probabilities().rows(), " x ", m.probabilities().cols());
    size.smaller = "use fewer components or fewer dimensions";
    return size;
  };
  family.fit_case = v1::FitConfig::kBernoulliMixture;
  family.make_fitter = [](const v1::FitConfig& config,
                          uint64_t seed) -> absl::StatusOr<std::unique_ptr<FamilyFitter>> {
    const v1::BernoulliMixtureFit& fit = config.bernoulli_mixture();
    if (fit.n_components() > 100000) {
      return absl::InvalidArgumentError("bernoulli_mixture.n_components must be at most 100000");
    }
    const int k = fit.n_components() == 0 ? 1 : static_cast<int>(fit.n_components());
    double tol = 1e-3;
    if (fit.has_tol()) {
      if (!(fit.tol() >= 0.0) || !std::isfinite(fit.tol())) {
        return absl::InvalidArgumentError(
            absl::StrCat("bernoulli_mixture.tol is ", fit.tol(), "; it must be finite and >= 0"));
      }
      tol = fit.tol();
    }
    if (fit.max_iter() > 1000000) {
      return absl::InvalidArgumentError("bernoulli_mixture.max_iter must be at most 1000000");
    }
    const int max_iter = fit.max_iter() == 0 ? 100 : static_cast<int>(fit.max_iter());
    double min_probability = 1e-6;
    if (fit.has_min_probability()) {
      if (!(fit.min_probability() >= 0.0 && fit.min_probability() < 0.5)) {
        return absl::InvalidArgumentError(absl::StrCat("bernoulli_mixture.min_probability is ",
                                                       fit.min_probability(),
                                                       "; it must lie in [0, 0.5)"));
      }
      min_probability = fit.min_probability();
    }
    return std::unique_ptr<FamilyFitter>(
        std::make_unique<BernoulliMixtureFitter>(k, tol, max_iter, min_probability, seed));
  };
  // Weights and the K x D probabilities.
  family.fit_size = [](const v1::FitConfig& config, int64_t dimension) {
    const uint32_t n = config.bernoulli_mixture().n_components();
    const double k = n == 0 ? 1.0 : static_cast<double>(n);
    FitSize size;
    size.bytes = Float64Bytes(k + k * static_cast<double>(dimension));
    size.per_row_bytes = Float64Bytes(3 * k);  // log responsibilities, responsibilities, a copy
    size.what = absl::StrCat(k, " components of ", dimension, " probabilities each");
    size.smaller = "use fewer n_components";
    return size;
  };
  return family;
}

}  // namespace maas::generative
