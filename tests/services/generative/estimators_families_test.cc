// The estimators on the served latent-variable families, with the reference's models A–D (§2.1):
// exact-posterior importance sampling has zero variance (every weight equals the exact log p(x)),
// and PRIOR / AIS are calibrated against the family's exact log p(x) over 200 seeds.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "common/random/item_rng.h"
#include "services/generative/core/estimators.h"
#include "services/generative/core/families.h"
#include "tests/services/generative/thread_executor.h"

namespace maas::generative {
namespace {

void SetMatrix(const Eigen::MatrixXd& m, common::v1::Matrix* out) {
  out->set_rows(static_cast<uint32_t>(m.rows()));
  out->set_cols(static_cast<uint32_t>(m.cols()));
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j) out->add_values(m(i, j));
}

Eigen::MatrixXd LoadingsA() {
  Eigen::MatrixXd w(5, 2);
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 2; ++j) w(i, j) = std::sin(0.7 * (i + 1) * (j + 1));
  return w;
}

Eigen::MatrixXd RowA() {
  Eigen::MatrixXd x(1, 5);
  for (int i = 0; i < 5; ++i) x(0, i) = std::cos(1.3 * (i + 1));
  return x;
}

// Model A: PPCA D = 5, L = 2.
std::shared_ptr<const GenerativeModel> ModelA() {
  v1::GenerativeModelSpec spec;
  SetMatrix(LoadingsA(), spec.mutable_ppca()->mutable_loadings());
  for (int i = 0; i < 5; ++i) spec.mutable_ppca()->add_mean(0.1 * (i + 1) - 0.3);
  spec.mutable_ppca()->set_noise_variance(0.25);
  auto model = MakeModel(spec);
  REQUIRE(model.ok());
  return *model;
}

// Model B: factor analysis with Psi_i = 0.1 + 0.05 i.
std::shared_ptr<const GenerativeModel> ModelB() {
  v1::GenerativeModelSpec spec;
  SetMatrix(LoadingsA(), spec.mutable_factor_analysis()->mutable_loadings());
  for (int i = 0; i < 5; ++i) {
    spec.mutable_factor_analysis()->add_mean(0.1 * (i + 1) - 0.3);
    spec.mutable_factor_analysis()->add_noise_variance(0.1 + 0.05 * i);
  }
  auto model = MakeModel(spec);
  REQUIRE(model.ok());
  return *model;
}

// Model C: full-covariance GMM, K = 3, D = 2.
std::shared_ptr<const GenerativeModel> ModelC() {
  v1::GenerativeModelSpec spec;
  auto* gmm = spec.mutable_gaussian_mixture();
  gmm->set_covariance_type(v1::FULL);
  for (double w : {0.5, 0.3, 0.2}) gmm->add_weights(w);
  Eigen::MatrixXd means(3, 2), covariances(6, 2);
  means << 0, 0, 3, 1, -2, 2.5;
  covariances << 1, .3, .3, .5, .6, -.2, -.2, 1.2, 2, 0, 0, .3;
  SetMatrix(means, gmm->mutable_means());
  SetMatrix(covariances, gmm->mutable_covariances());
  auto model = MakeModel(spec);
  REQUIRE(model.ok());
  return *model;
}

// Model D: Bernoulli mixture, K = 2, D = 6.
std::shared_ptr<const GenerativeModel> ModelD() {
  v1::GenerativeModelSpec spec;
  auto* bmm = spec.mutable_bernoulli_mixture();
  for (double w : {0.6, 0.4}) bmm->add_weights(w);
  Eigen::MatrixXd p(2, 6);
  for (int k = 0; k < 2; ++k)
    for (int d = 0; d < 6; ++d) p(k, d) = 0.5 + 0.4 * std::sin((k + 1.0) * (d + 1.0));
  SetMatrix(p, bmm->mutable_probabilities());
  auto model = MakeModel(spec);
  REQUIRE(model.ok());
  return *model;
}

std::vector<std::vector<double>> Weights(const GenerativeModel& model, const Eigen::MatrixXd& x,
                                         EstimateSettings settings) {
  testing::ThreadExecutor executor(2);
  std::vector<std::vector<double>> weights;
  auto rows = EstimateRowsWithWeights(model, x, settings, executor, exec::StopToken(), &weights);
  REQUIRE(rows.ok());
  return weights;
}

TEST_CASE("exact-posterior IMPORTANCE has zero variance on ppca, factor_analysis, mixtures") {
  Eigen::MatrixXd x_c(1, 2), x_d(1, 6);
  x_c << 1, .5;
  x_d << 1, 0, 1, 1, 0, 0;
  struct Case {
    const char* name;
    std::shared_ptr<const GenerativeModel> model;
    Eigen::MatrixXd x;
    double reference;  // the reference's known answer (§2.1)
  };
  for (const Case& c : {Case{"A ppca", ModelA(), RowA(), -5.801951563756},
                        Case{"B factor_analysis", ModelB(), RowA(), -6.105376530445},
                        Case{"C gaussian_mixture", ModelC(), x_c, -2.618270574166},
                        Case{"D bernoulli_mixture", ModelD(), x_d, -2.927741807981}}) {
    INFO(c.name);
    const double exact = c.model->ExactLogLikelihood(c.x)(0);
    CHECK(exact == Approx(c.reference).margin(1e-10));
    EstimateSettings settings;
    settings.estimator = McEstimator::kImportance;
    settings.num_samples = 500;
    settings.seed = 77;
    const std::vector<std::vector<double>> weights = Weights(*c.model, c.x, settings);
    REQUIRE(weights.size() == 1);
    REQUIRE(weights[0].size() == 500);
    for (double w : weights[0]) CHECK(std::abs(w - exact) < 1e-10);
  }
}

TEST_CASE("exact-posterior IMPORTANCE reports Pareto k-hat -inf: its weights are equal") {
  // The weights differ only by rounding; k-hat must say "all weights equal" on every row, not +inf
  // or NaN from a tail fit to rounding noise.
  struct Case {
    const char* name;
    std::shared_ptr<const GenerativeModel> model;
    bool binary;
  };
  for (const Case& c :
       {Case{"A ppca", ModelA(), false}, Case{"B factor_analysis", ModelB(), false},
        Case{"C gaussian_mixture", ModelC(), false}, Case{"D bernoulli_mixture", ModelD(), true}}) {
    INFO(c.name);
    const int d = c.model->dimension();
    Eigen::MatrixXd x(100, d);
    for (int i = 0; i < x.rows(); ++i) {
      random::ItemRng rng(5, 9, static_cast<uint64_t>(i));
      for (int j = 0; j < d; ++j) {
        x(i, j) = c.binary ? (rng.Uniform() < 0.5 ? 1.0 : 0.0) : 3.0 * rng.Normal();
      }
    }
    EstimateSettings settings;
    settings.estimator = McEstimator::kImportance;
    settings.num_samples = 1000;
    settings.seed = 1;
    testing::ThreadExecutor executor(2);
    auto rows = EstimateRows(*c.model, x, settings, executor, exec::StopToken());
    REQUIRE(rows.ok());
    int equal = 0;
    for (const RowResult& row : *rows)
      equal += row.pareto_k == -std::numeric_limits<double>::infinity();
    CHECK(equal == x.rows());
  }
}

double Coverage(const GenerativeModel& model, const Eigen::MatrixXd& x, EstimateSettings settings,
                int seeds) {
  const double exact = model.ExactLogLikelihood(x)(0);
  testing::ThreadExecutor executor(1);
  int inside = 0;
  for (int seed = 1; seed <= seeds; ++seed) {
    settings.seed = 0x2545F4914F6CDD1Dull * static_cast<uint64_t>(seed);
    auto rows = EstimateRows(model, x, settings, executor, exec::StopToken());
    REQUIRE(rows.ok());
    const math::WeightStats& stats = (*rows)[0].stats;
    if (std::abs(stats.LogMean() - exact) <= 2 * stats.StandardError()) ++inside;
  }
  return static_cast<double>(inside) / seeds;
}

TEST_CASE("PRIOR and AIS are calibrated on ppca, PRIOR on the mixtures") {
  Eigen::MatrixXd x_c(1, 2), x_d(1, 6);
  x_c << 1, .5;
  x_d << 1, 0, 1, 1, 0, 0;
  EstimateSettings prior;
  prior.estimator = McEstimator::kPrior;
  prior.num_samples = 4000;
  for (auto [name, model, x] :
       {std::tuple{"A ppca", ModelA(), RowA()}, std::tuple{"C gaussian_mixture", ModelC(), x_c},
        std::tuple{"D bernoulli_mixture", ModelD(), x_d}}) {
    INFO(name);
    const double coverage = Coverage(*model, x, prior, 200);
    CHECK(coverage >= 0.90);
    CHECK(coverage <= 0.99);
  }
  EstimateSettings ais;
  ais.estimator = McEstimator::kAis;
  ais.num_samples = 48;
  ais.ais.num_temperatures = 100;
  ais.ais.initial_step_size = 0.1;
  const double coverage = Coverage(*ModelA(), RowA(), ais, 200);
  CHECK(coverage >= 0.90);
  CHECK(coverage <= 0.99);
}

TEST_CASE("IMPORTANCE on a row of p(x) = 0 answers -inf as PRIOR and EXACT do, never NaN") {
  // Rows finite but so far from every component (or not binary) that each component's density
  // underflows to 0: the posterior is undefined, the estimate must still be the exact -inf with
  // standard error +inf and ESS 0 (all weights zero), not NaN from -inf - -inf.
  v1::GenerativeModelSpec diag_spec;
  auto* diag = diag_spec.mutable_gaussian_mixture();
  diag->set_covariance_type(v1::DIAG);
  for (double w : {0.5, 0.5}) diag->add_weights(w);
  SetMatrix(Eigen::MatrixXd{{0.0}, {1.0}}, diag->mutable_means());
  SetMatrix(Eigen::MatrixXd{{1.0}, {1.0}}, diag->mutable_covariances());
  v1::GenerativeModelSpec narrow_spec;
  auto* narrow = narrow_spec.mutable_gaussian_mixture();
  narrow->set_covariance_type(v1::SPHERICAL);
  narrow->add_weights(1.0);
  SetMatrix(Eigen::MatrixXd{{0.0, 0.0}}, narrow->mutable_means());
  SetMatrix(Eigen::MatrixXd{{1e-300}}, narrow->mutable_covariances());
  auto diag_model = MakeModel(diag_spec);
  auto narrow_model = MakeModel(narrow_spec);
  REQUIRE(diag_model.ok());
  REQUIRE(narrow_model.ok());
  Eigen::MatrixXd far(1, 1), off(1, 2), full_far(1, 2), non_binary(1, 6);
  far << 1e160;
  off << 1e5, 0;
  full_far << 1e200, -1e200;
  non_binary << 1, 0, 0.5, 1, 0, 0;
  const double kInf = std::numeric_limits<double>::infinity();
  for (auto [name, model, x] : {std::tuple{"diag gaussian_mixture", *diag_model, far},
                                std::tuple{"spherical gaussian_mixture", *narrow_model, off},
                                std::tuple{"full gaussian_mixture", ModelC(), full_far},
                                std::tuple{"bernoulli_mixture", ModelD(), non_binary}}) {
    INFO(name);
    REQUIRE(model->ExactLogLikelihood(x)(0) == -kInf);
    for (McEstimator estimator : {McEstimator::kPrior, McEstimator::kImportance}) {
      INFO("estimator " << static_cast<int>(estimator));
      EstimateSettings settings;
      settings.estimator = estimator;
      settings.num_samples = 100;
      settings.seed = 1;
      testing::ThreadExecutor executor(2);
      auto rows = EstimateRows(*model, x, settings, executor, exec::StopToken());
      REQUIRE(rows.ok());
      const math::WeightStats& stats = (*rows)[0].stats;
      CHECK(stats.LogMean() == -kInf);
      CHECK(stats.StandardError() == kInf);
      CHECK(stats.Ess() == 0.0);
      CHECK_FALSE(std::isnan((*rows)[0].pareto_k));
    }
  }
}

TEST_CASE("AIS is refused on the discrete-latent families") {
  for (auto model : {ModelC(), ModelD()}) {
    CHECK(CheckEstimatorSupported(*model, McEstimator::kAis).code() ==
          absl::StatusCode::kInvalidArgument);
    CHECK(CheckEstimatorSupported(*model, McEstimator::kImportance).ok());
  }
}

}  // namespace
}  // namespace maas::generative
