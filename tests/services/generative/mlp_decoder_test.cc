// The mlp_decoder family: the reference's model E (L = 2, H = 8, D = 4, tanh) against 2-D grid
// quadrature computed here, PRIOR / IMPORTANCE / AIS against it, calibration of the defensive
// Laplace proposal, the analytic gradient against finite differences, and the safetensors reader
// (round trip and every malformation).
#include "services/generative/core/mlp_decoder.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <utility>

#include "common/math/log_sum_exp.h"
#include "services/generative/core/estimators.h"
#include "services/generative/core/safetensors.h"
#include "tests/services/generative/thread_executor.h"

namespace maas::generative {
namespace {

void SetMatrix(const Eigen::MatrixXd& m, common::v1::Matrix* out) {
  out->set_rows(static_cast<uint32_t>(m.rows()));
  out->set_cols(static_cast<uint32_t>(m.cols()));
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j) out->add_values(m(i, j));
}

// Model E of the reference (§2.1).
v1::MlpDecoderSpec ModelE(bool bernoulli) {
  Eigen::MatrixXd w1(8, 2), w2(4, 8);
  std::vector<double> b1(8), b2(4);
  for (int h = 0; h < 8; ++h) {
    for (int l = 0; l < 2; ++l) w1(h, l) = std::sin(1.0 + h + 2.0 * l);
    b1[h] = 0.1 * std::cos(h);
  }
  for (int d = 0; d < 4; ++d) {
    for (int h = 0; h < 8; ++h) w2(d, h) = std::cos(0.5 + d + 0.3 * h) / std::sqrt(8.0);
    b2[d] = 0.05 * d;
  }
  v1::MlpDecoderSpec spec;
  spec.set_latent_dim(2);
  v1::DenseLayer* hidden = spec.add_layers();
  SetMatrix(w1, hidden->mutable_weight());
  for (double v : b1) hidden->add_bias(v);
  hidden->set_activation(v1::TANH);
  v1::DenseLayer* out = spec.add_layers();
  SetMatrix(w2, out->mutable_weight());
  for (double v : b2) out->add_bias(v);
  out->set_activation(v1::IDENTITY);
  spec.set_likelihood(bernoulli ? v1::BERNOULLI : v1::GAUSSIAN);
  spec.set_noise_variance(0.1);
  return spec;
}

Eigen::VectorXd ModelEData(bool bernoulli) {
  Eigen::VectorXd x(4);
  if (bernoulli) {
    x << 1, 0, 1, 0;
  } else {
    for (int d = 0; d < 4; ++d) x(d) = 0.3 * std::sin(d + 1.0);
  }
  return x;
}

std::unique_ptr<MlpDecoderModel> Make(const v1::MlpDecoderSpec& spec) {
  auto model = MlpDecoderModel::Create(spec);
  REQUIRE(model.ok());
  return *std::move(model);
}

// log p(x) by a Riemann sum over an n x n grid on [-9, 9]^2 (spectrally accurate for this smooth,
// Gaussian-decaying integrand).
double Quadrature(const GenerativeModel& model, const Eigen::VectorXd& x, int n) {
  const double h = 18.0 / (n - 1);
  Eigen::MatrixXd z(static_cast<Eigen::Index>(n) * n, 2);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) z.row(i * n + j) << -9.0 + i * h, -9.0 + j * h;
  Eigen::VectorXd log_lik(z.rows());
  model.LogLikelihoodGivenLatent(x, z, log_lik);
  for (Eigen::Index s = 0; s < z.rows(); ++s) log_lik(s) += model.LogPrior(z.row(s).transpose());
  return math::LogSumExp(log_lik) + 2.0 * std::log(h);
}

RowResult Estimate(const GenerativeModel& model, const Eigen::VectorXd& x,
                   const EstimateSettings& settings) {
  testing::ThreadExecutor executor(2);
  auto rows = EstimateRows(model, x.transpose(), settings, executor, exec::StopToken());
  REQUIRE(rows.ok());
  return (*rows)[0];
}

TEST_CASE("model E: quadrature matches the reference, and PRIOR, IMPORTANCE, AIS agree with it") {
  for (bool bernoulli : {false, true}) {
    INFO((bernoulli ? "Bernoulli" : "Gaussian"));
    auto model = Make(ModelE(bernoulli));
    const Eigen::VectorXd x = ModelEData(bernoulli);
    const double exact = Quadrature(*model, x, 801);
    // Grid convergence, and the reference's known answers (1601^2 grid).
    CHECK(std::abs(exact - Quadrature(*model, x, 601)) < 1e-12);
    CHECK(exact == Approx(bernoulli ? -2.843141651382 : -0.077468294319).margin(1e-10));

    EstimateSettings settings;
    settings.seed = 31337;
    settings.num_samples = 20000;
    for (McEstimator e : {McEstimator::kPrior, McEstimator::kImportance}) {
      settings.estimator = e;
      const RowResult row = Estimate(*model, x, settings);
      INFO(McEstimatorName(e) << " estimate " << row.stats.LogMean() << " SE "
                              << row.stats.StandardError() << " k " << row.pareto_k);
      CHECK(std::abs(row.stats.LogMean() - exact) < 3 * row.stats.StandardError());
      CHECK(row.pareto_k < 0.7);
    }
    settings.estimator = McEstimator::kAis;
    settings.num_samples = 64;
    settings.ais.num_temperatures = 200;
    const RowResult ais = Estimate(*model, x, settings);
    INFO("AIS estimate " << ais.stats.LogMean() << " SE " << ais.stats.StandardError()
                         << " acceptance " << ais.acceptance_rate);
    CHECK(std::abs(ais.stats.LogMean() - exact) < 3 * ais.stats.StandardError());
    CHECK(ais.stats.StandardError() < 0.05);
    CHECK(ais.acceptance_rate > 0.3);
    CHECK(ais.acceptance_rate <= 1.0);
  }
}

TEST_CASE("model E: the defensive Laplace proposal and prior sampling are calibrated") {
  auto model = Make(ModelE(false));
  const Eigen::VectorXd x = ModelEData(false);
  const double exact = Quadrature(*model, x, 801);
  for (McEstimator e : {McEstimator::kImportance, McEstimator::kPrior}) {
    INFO(McEstimatorName(e));
    EstimateSettings settings;
    settings.estimator = e;
    settings.num_samples = 2000;
    int inside = 0;
    const int seeds = 200;
    for (int seed = 0; seed < seeds; ++seed) {
      settings.seed = 1000003ull * static_cast<uint64_t>(seed + 1);
      const RowResult row = Estimate(*model, x, settings);
      if (std::abs(row.stats.LogMean() - exact) <= 2 * row.stats.StandardError()) ++inside;
    }
    const double coverage = static_cast<double>(inside) / seeds;
    CHECK(coverage >= 0.90);
    CHECK(coverage <= 0.99);
  }
}

// A GAUSSIAN decoder with one hidden layer (`activation`) and an identity output layer.
v1::MlpDecoderSpec OneHiddenLayer(const Eigen::MatrixXd& w1, const Eigen::VectorXd& b1,
                                  v1::Activation activation, const Eigen::MatrixXd& w2,
                                  const Eigen::VectorXd& b2, double noise_variance) {
  v1::MlpDecoderSpec spec;
  spec.set_latent_dim(static_cast<int>(w1.cols()));
  v1::DenseLayer* hidden = spec.add_layers();
  SetMatrix(w1, hidden->mutable_weight());
  for (double v : b1) hidden->add_bias(v);
  hidden->set_activation(activation);
  v1::DenseLayer* out = spec.add_layers();
  SetMatrix(w2, out->mutable_weight());
  for (double v : b2) out->add_bias(v);
  out->set_activation(v1::IDENTITY);
  spec.set_likelihood(v1::GAUSSIAN);
  spec.set_noise_variance(noise_variance);
  return spec;
}

// IMPORTANCE estimates of `rows` copies of x (each row its own draws): the rows' estimates
// within `tolerance` of `exact` with k-hat below `max_pareto_k`, and at least 85 % within 2 SE.
void CheckImportanceReplicas(const GenerativeModel& model, const Eigen::VectorXd& x, double exact,
                             int rows, uint64_t num_samples, uint64_t seed, double tolerance,
                             double max_pareto_k) {
  const Eigen::MatrixXd replicas = x.transpose().replicate(rows, 1);
  EstimateSettings settings;
  settings.estimator = McEstimator::kImportance;
  settings.num_samples = num_samples;
  settings.seed = seed;
  testing::ThreadExecutor executor(2);
  auto results = EstimateRows(model, replicas, settings, executor, exec::StopToken());
  REQUIRE(results.ok());
  int inside = 0;
  for (int r = 0; r < rows; ++r) {
    const RowResult& row = (*results)[r];
    INFO("row " << r << " estimate " << row.stats.LogMean() << " SE " << row.stats.StandardError()
                << " k " << row.pareto_k << " exact " << exact);
    CHECK(std::abs(row.stats.LogMean() - exact) < tolerance);
    CHECK(row.pareto_k < max_pareto_k);
    if (std::abs(row.stats.LogMean() - exact) <= 2 * row.stats.StandardError()) ++inside;
  }
  CHECK(inside >= rows * 85 / 100);
}

// A decoder whose posterior for `x` has a dominant mode near z = (0.1, 0.86) and a minor one near
// (3.64, 0.48) (helper-97's hunt, gensimd #1): L = 2, 10 sigmoid units, identity output, noise
// 0.05.
v1::MlpDecoderSpec TwoModeDecoder() {
  const double w1[10][2] = {
      {7.389396096315678, -0.7384006621944398},  {-1.6675973423806636, -3.513470502076629},
      {-4.005032872678148, 1.574949703692678},   {2.5524090983356578, 0.0275241626474706},
      {0.9977279660286252, 0.3477497325213119},  {0.4159645381416625, -4.578477157748543},
      {-1.3743548191476633, 0.3344379227698432}, {-2.3495003416910563, -1.4292892315794523},
      {-2.4573605409832036, -1.000490022595324}, {2.559324822975408, -1.2197410519667944}};
  const double b1[10] = {-0.15387068019710476, 0.813718359438118,   0.6447702141569163,
                         1.6952075589596332,   -2.090485078128588,  0.856858944523106,
                         -0.4822840867730822,  0.13469181881788084, 0.837719384899064,
                         1.0832531556913447};
  const double w2[4][10] = {
      {2.0787013806176717, 0.3102133821565055, 3.2193253660366277, -0.5659484544322734,
       -0.28196382614157345, 1.5987023777881724, -1.1027448159609274, 4.321812517402494,
       2.038413130709244, 4.3511506452407875},
      {-0.053178374311559605, -0.7661771005226143, 0.33409600433385117, 1.4691530052123813,
       -1.174855373748023, 0.7594034939448948, -0.03360855784166852, 3.2313635211528875,
       -1.3254036246017313, 2.092323543457438},
      {-1.2877270710800175, -1.9212683862148447, -1.4205988547512465, -2.3803717236844943,
       0.2927007201329042, 2.062521592157329, 0.3286297570695966, 1.2486502243697513,
       3.2643483911502646, 0.5400528943577033},
      {0.39032472192618917, -0.5501229359205493, -3.216484570022565, 1.5194778637361674,
       -3.5129208952519577, 1.3053528727676562, -0.02864067146790881, 2.2535629016208696,
       -0.135540521020924, -1.6464003159153338}};
  const double b2[4] = {0.3579102667525859, -0.5602361357081261, -0.1809568246618137,
                        0.0418707868620003};
  Eigen::MatrixXd m1(10, 2), m2(4, 10);
  for (int h = 0; h < 10; ++h)
    for (int l = 0; l < 2; ++l) m1(h, l) = w1[h][l];
  for (int d = 0; d < 4; ++d)
    for (int h = 0; h < 10; ++h) m2(d, h) = w2[d][h];
  return OneHiddenLayer(m1, Eigen::Map<const Eigen::VectorXd>(b1, 10), v1::SIGMOID, m2,
                        Eigen::Map<const Eigen::VectorXd>(b2, 4), 0.05);
}

TEST_CASE("IMPORTANCE finds the posterior's dominant mode when the likelihood is steep") {
  // The mode search from z = 0 (gradient ~(78, 471) there) used to jump into the minor mode's
  // basin: 48 of 200 rows of n = 400 came out ~8 nats low with SE ~0.03 and k-hat ~0.5.
  auto model = Make(TwoModeDecoder());
  Eigen::VectorXd x(4);
  x << 7.38686888900618, 2.2297860282397637, -2.015086008297655, -2.3284759313662935;
  const double exact = Quadrature(*model, x, 1801);  // h = 0.01; the posterior's sd is ~0.03
  CHECK(std::abs(exact - Quadrature(*model, x, 2401)) < 1e-6);
  CheckImportanceReplicas(*model, x, exact, 64, 400, 5, 0.5,
                          std::numeric_limits<double>::infinity());
}

TEST_CASE("IMPORTANCE reaches the mode of a posterior of any width") {
  // x = z + noise with z ~ N(0, 1): log p(x) = log N(x; 0, 1 + noise). The step of the mode search
  // starts at its cap, so a gradient of 1e24 takes no 80 halvings (the search used to give up at
  // z = 0 after 60). (Below ~1e-32 the posterior is narrower than the doubles around its mode: no
  // float64 estimator resolves it, and ESS ~1 says so.)
  for (double noise : {1e-24, 1e-6, 0.1}) {
    v1::MlpDecoderSpec spec;
    spec.set_latent_dim(1);
    v1::DenseLayer* layer = spec.add_layers();
    SetMatrix(Eigen::MatrixXd::Ones(1, 1), layer->mutable_weight());
    layer->add_bias(0.0);
    layer->set_activation(v1::IDENTITY);
    spec.set_likelihood(v1::GAUSSIAN);
    spec.set_noise_variance(noise);
    auto model = Make(spec);
    Eigen::VectorXd x(1);
    x << 0.7;
    const double variance = 1.0 + noise;
    const double exact = -0.5 * (std::log(2 * M_PI * variance) + x(0) * x(0) / variance);
    EstimateSettings settings;
    settings.estimator = McEstimator::kImportance;
    settings.num_samples = 1000;
    settings.seed = 11;
    const RowResult row = Estimate(*model, x, settings);
    INFO("noise " << noise << " estimate " << row.stats.LogMean() << " SE "
                  << row.stats.StandardError() << " exact " << exact);
    CHECK(std::abs(row.stats.LogMean() - exact) < 0.05);
  }
}

// A decoder whose posterior has two separated modes of comparable mass: x = (|z1 - c|, z2, ...,
// zL) + noise (relu units), so for x1 = 1.5 the latent z1 is near c + 1.5 or c - 1.5. With c = 0
// the prior mean is a stationary point of the likelihood in z1 (both relus have slope 0 there).
// `ignored` further latents the decoder does not use (their posterior is the prior).
v1::MlpDecoderSpec FoldedDecoder(double c, int latent, int ignored = 0) {
  Eigen::MatrixXd w1 = Eigen::MatrixXd::Zero(latent + 1, latent + ignored);
  Eigen::MatrixXd w2 = Eigen::MatrixXd::Zero(latent, latent + 1);
  Eigen::VectorXd b1 = Eigen::VectorXd::Constant(latent + 1, 10.0);  // relu(z + 10) = z + 10
  Eigen::VectorXd b2 = Eigen::VectorXd::Constant(latent, -10.0);
  w1(0, 0) = 1;
  w1(1, 0) = -1;
  b1(0) = -c;
  b1(1) = c;
  w2(0, 0) = w2(0, 1) = 1;
  b2(0) = 0;
  for (int j = 1; j < latent; ++j) w1(j + 1, j) = w2(j, j + 1) = 1;
  return OneHiddenLayer(w1, b1, v1::RELU, w2, b2, 0.01);
}

TEST_CASE("IMPORTANCE covers every mode of a posterior with separated modes") {
  // The mode search used to start once, from z = 0: with c = 0.1 it found one mode (z1 ~ -1.4)
  // and its proposal missed the other (~43 % of the mass); with c = 0 it stopped at the saddle
  // z1 = 0 and the proposal spread z1 over a variance of 1000. For L = 6 the fold is one of six
  // directions of equal posterior width; with 8 latents the decoder ignores (the widest
  // directions, the prior's) the further starts all went along those and none along the fold.
  const Eigen::VectorXd data = (Eigen::VectorXd(6) << 1.5, 0.3, -0.2, 0.8, 0.1, -1.0).finished();
  const double exact_2 = [&] {
    auto model = Make(FoldedDecoder(0.1, 2));
    const double exact = Quadrature(*model, data.head(2), 1801);  // h = 0.01; sd ~0.1
    CHECK(std::abs(exact - Quadrature(*model, data.head(2), 2401)) < 1e-6);
    return exact;
  }();
  for (auto [latent, ignored] : {std::pair{2, 0}, std::pair{6, 0}, std::pair{2, 8}}) {
    for (double c : {0.0, 0.1, -0.4}) {
      auto model = Make(FoldedDecoder(c, latent, ignored));
      const Eigen::VectorXd x = data.head(latent);
      // The folded coordinate's part by quadrature, the others' closed form: x_j ~ N(0, 1.01).
      double exact = c == 0.1 ? exact_2 : Quadrature(*Make(FoldedDecoder(c, 2)), x.head(2), 1801);
      for (int j = 2; j < latent; ++j) {
        exact += -0.5 * (std::log(2 * M_PI * 1.01) + x(j) * x(j) / 1.01);
      }
      INFO("L " << latent << " + " << ignored << " ignored, c " << c);
      CheckImportanceReplicas(*model, x, exact, 32, 1000, 17, 0.1, 0.7);
    }
  }
}

TEST_CASE("the analytic gradient of log p(x|z) matches central differences") {
  for (v1::Activation activation : {v1::TANH, v1::SIGMOID, v1::RELU, v1::IDENTITY}) {
    for (bool bernoulli : {false, true}) {
      v1::MlpDecoderSpec spec = ModelE(bernoulli);
      spec.mutable_layers(0)->set_activation(activation);
      spec.mutable_layers(1)->set_activation(bernoulli ? v1::IDENTITY : v1::TANH);
      auto model = Make(spec);
      const Eigen::VectorXd x = ModelEData(bernoulli);
      Eigen::VectorXd z(2), grad(2), unused(2);
      z << 0.37, -0.81;
      const double value = model->LogLikelihoodGradient(x, z, grad);
      Eigen::VectorXd batch(1);
      model->LogLikelihoodGivenLatent(x, z.transpose(), batch);
      CHECK(value == Approx(batch(0)).epsilon(1e-12));
      for (int j = 0; j < 2; ++j) {
        Eigen::VectorXd plus = z, minus = z;
        plus(j) += 1e-6;
        minus(j) -= 1e-6;
        const double numeric = (model->LogLikelihoodGradient(x, plus, unused) -
                                model->LogLikelihoodGradient(x, minus, unused)) /
                               2e-6;
        CHECK(grad(j) == Approx(numeric).epsilon(1e-6).margin(1e-7));
      }
    }
  }
}

TEST_CASE("sampling is a pure function of (seed, index) and follows the decoder") {
  auto model = Make(ModelE(false));
  RowMatrixXd all(50, 4), part(20, 4), latents;
  model->Sample(5, 100, all, &latents);
  model->Sample(5, 130, part, nullptr);
  CHECK(part == all.bottomRows(20));
  REQUIRE(latents.rows() == 50);
  // Residuals x - f(z) have the noise variance 0.1.
  RowMatrixXd many(20000, 4), z;
  model->Sample(6, 0, many, &z);
  const Eigen::MatrixXd residual = many - model->Decode(z);
  const double variance = residual.array().square().mean();
  CHECK(variance == Approx(0.1).epsilon(0.03));
  auto bern = Make(ModelE(true));
  RowMatrixXd bits(100, 4);
  bern->Sample(7, 0, bits, nullptr);
  CHECK((bits.array() == 0.0 || bits.array() == 1.0).all());
}

// A random decoder L -> hidden... -> D (identity output layer) with the given hidden activation.
v1::MlpDecoderSpec RandomDecoder(int l, const std::vector<int>& hidden, int d,
                                 v1::Activation activation, double noise_variance,
                                 std::mt19937_64& gen) {
  std::normal_distribution<double> normal;
  v1::MlpDecoderSpec spec;
  spec.set_latent_dim(l);
  spec.set_noise_variance(noise_variance);
  int in = l;
  std::vector<int> widths = hidden;
  widths.push_back(d);
  for (size_t i = 0; i < widths.size(); ++i) {
    Eigen::MatrixXd w(widths[i], in);
    for (Eigen::Index r = 0; r < w.rows(); ++r)
      for (Eigen::Index c = 0; c < w.cols(); ++c) w(r, c) = normal(gen) / std::sqrt(in);
    v1::DenseLayer* layer = spec.add_layers();
    SetMatrix(w, layer->mutable_weight());
    for (int j = 0; j < widths[i]; ++j) layer->add_bias(0.3 * normal(gen));
    layer->set_activation(i + 1 < widths.size() ? activation : v1::IDENTITY);
    in = widths[i];
  }
  return spec;
}

// The 2026-12-06 amplification hunt: a decoder with L = 2 360 (a 303 KB spec) spent 12.8 s of CPU
// per IMPORTANCE proposal where ProposalCost counted each mode's eigendecomposition as L^3 (its
// basin checks not at all): --max_estimate_work admitted 92 rows, ~10 minutes of both cores where
// the flag's documented scale is ~2. Each mode's eigendecomposition is now ~9 L^3. (The proposal
// CheckEstimatorSupported built for row 0 is no longer built: estimators_test.)
TEST_CASE("an IMPORTANCE estimate counts each proposal's eigendecompositions") {
  std::mt19937_64 gen(5);
  const int l = 300;
  auto model = Make(RandomDecoder(l, {16}, 8, v1::RELU, 1e-2, gen));
  const double cubed = static_cast<double>(l) * l * l;
  CHECK(model->ProposalCost() >= MlpDecoderModel::kMaxProposalModes * 9 * cubed);
  EstimateSettings settings;
  settings.estimator = McEstimator::kImportance;
  settings.num_samples = 1;
  const double one_row = EstimateWork(*model, settings, 1);
  CHECK(EstimateWork(*model, settings, 10) == Approx(10 * one_row).epsilon(1e-12));
  CHECK(one_row >= model->ProposalCost());
}

// The same hunt: a proposal ran whole after its estimate's deadline or cancel (the rows loop asked
// only between rows), one per worker, ~13 s each at L = 2 360. It now asks before each start's
// search and each mode's Hessian and eigendecomposition.
TEST_CASE("an IMPORTANCE proposal gives up between its mode searches when told to stop") {
  std::mt19937_64 gen(7);
  auto model = Make(RandomDecoder(6, {24}, 6, v1::TANH, 1e-2, gen));
  Eigen::VectorXd z(6);
  for (Eigen::Index j = 0; j < z.size(); ++j) z(j) = 1.5;
  const Eigen::VectorXd x = model->Decode(z.transpose()).row(0).transpose();
  MlpDecoderModel::ProposalSearch whole;
  REQUIRE(model->MakeProposal(x, &whole) != nullptr);
  REQUIRE(whole.evaluations > 0);
  for (int allowed : {0, 1, 2}) {
    INFO("checks allowed " << allowed);
    int checks = 0;
    const exec::StopToken stop(
        [&] { return ++checks > allowed ? absl::CancelledError("stop") : absl::OkStatus(); });
    MlpDecoderModel::ProposalSearch stopped;
    CHECK(model->MakeProposal(x, &stopped, stop) == nullptr);
    CHECK(stopped.evaluations < whole.evaluations);
    CHECK(model->MakeProposalUnlessStopped(x, stop) == nullptr);
  }
  CHECK(model->MakeProposalUnlessStopped(x, exec::StopToken()) != nullptr);
}

// A later stop: the searches and Hessians between those questions still ran whole (one search or
// Hessian, ~3 s at L = 2 360, per worker after a deadline), and a stopped proposal reported no
// evaluations. The token is now also asked every kStopCheckEvaluations evaluations within them:
// stopped after any number of answers, the proposal does at most that many (+ the other half of a
// Hessian column) evaluations past the last answer.
TEST_CASE("an IMPORTANCE proposal stops within a few evaluations of its stop token's answer") {
  std::mt19937_64 gen(11);
  const int l = 20;  // a Hessian of 2 L = 40 evaluations, more than kStopCheckEvaluations
  auto model = Make(RandomDecoder(l, {24}, 12, v1::TANH, 1e-2, gen));
  Eigen::VectorXd z(l);
  for (Eigen::Index j = 0; j < z.size(); ++j) z(j) = 1.5;
  const Eigen::VectorXd x = model->Decode(z.transpose()).row(0).transpose();
  int total = 0;
  MlpDecoderModel::ProposalSearch whole;
  REQUIRE(model->MakeProposal(x, &whole, exec::StopToken([&] {
                                ++total;
                                return absl::OkStatus();
                              })) != nullptr);
  REQUIRE(whole.evaluations > 4 * l);
  const int64_t step = MlpDecoderModel::kStopCheckEvaluations + 1;
  int64_t previous = 0;
  for (int allowed = 0; allowed < total; ++allowed) {
    INFO("answers allowed " << allowed << " of " << total);
    int checks = 0;
    const exec::StopToken stop(
        [&] { return ++checks > allowed ? absl::CancelledError("stop") : absl::OkStatus(); });
    MlpDecoderModel::ProposalSearch stopped;
    CHECK(model->MakeProposal(x, &stopped, stop) == nullptr);
    CHECK(stopped.evaluations > 0);
    CHECK(stopped.evaluations >= previous);
    CHECK(stopped.evaluations - previous <= step);
    CHECK(stopped.evaluations < whole.evaluations);
    previous = stopped.evaluations;
  }
  CHECK(whole.evaluations - previous <= step);
}

TEST_CASE("the IMPORTANCE mode search stays within the evaluations ProposalCost counts") {
  // On relu decoders (a piecewise-quadratic posterior) L-BFGS need not converge: every start ran
  // 500 iterations of up to 120 evaluations (relu L = 8 at noise 1e-12: ~30 000, 1/60 of the time
  // ProposalCost counted, so --max_estimate_work admitted requests that ran for minutes).
  std::mt19937_64 gen(3);
  std::normal_distribution<double> normal;
  struct Case {
    int l;
    v1::Activation activation;
    double noise_variance;
  };
  for (const Case& c : {Case{8, v1::RELU, 1e-12}, Case{8, v1::RELU, 1e-24},
                        Case{32, v1::RELU, 1e-2}, Case{1, v1::TANH, 1e-24}}) {
    const v1::MlpDecoderSpec spec =
        RandomDecoder(c.l, {4 * c.l}, c.l, c.activation, c.noise_variance, gen);
    auto model = Make(spec);
    for (int trial = 0; trial < 3; ++trial) {
      Eigen::VectorXd z(c.l);
      for (Eigen::Index j = 0; j < z.size(); ++j) z(j) = 2 * normal(gen);
      const Eigen::VectorXd x = model->Decode(z.transpose()).row(0).transpose();
      MlpDecoderModel::ProposalSearch search;
      REQUIRE(model->MakeProposal(x, &search) != nullptr);
      const int64_t starts = 2 * std::min(c.l, 8);
      INFO("L " << c.l << " noise " << c.noise_variance << " trial " << trial << " evaluations "
                << search.evaluations << " modes " << search.modes_found);
      CHECK(search.evaluations <= MlpDecoderModel::kFirstSearchEvaluations +
                                      starts * MlpDecoderModel::kStartEvaluations +
                                      search.modes_found * 2 * c.l);
      // Each evaluation is a gradient: about two of LatentEvaluationCost.
      CHECK(static_cast<double>(search.evaluations) * 2 * model->LatentEvaluationCost() <=
            model->ProposalCost());
    }
  }
}

// The textbook form, with Eigen and libm: f = layers(z), -1/2 (D log(2 pi s2) + |x - f|^2 / s2).
double DirectLogLikelihood(const v1::MlpDecoderSpec& spec, const Eigen::VectorXd& x,
                           const Eigen::VectorXd& z) {
  Eigen::VectorXd h = z;
  for (const v1::DenseLayer& layer : spec.layers()) {
    const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>
        w(layer.weight().values().data(), layer.weight().rows(), layer.weight().cols());
    Eigen::VectorXd a =
        w * h + Eigen::Map<const Eigen::VectorXd>(layer.bias().data(), layer.bias_size());
    if (layer.activation() == v1::TANH) a = a.array().tanh();
    if (layer.activation() == v1::RELU) a = a.array().max(0.0);
    h = a;
  }
  const double s2 = spec.noise_variance();
  return -0.5 *
         (static_cast<double>(x.size()) * std::log(2 * M_PI * s2) + (x - h).squaredNorm() / s2);
}

TEST_CASE("the Gram form of log p(x|z) (H < D) equals the direct form and ignores batching") {
  std::mt19937_64 gen(5);
  std::normal_distribution<double> normal;
  struct Case {
    int l;
    std::vector<int> hidden;
    int d;
    v1::Activation activation;
    double noise_variance;
  };
  // Two layers (tanh, relu), one layer (h = z), two hidden layers, and a noise variance so small
  // that the cancellation bound sends every row the direct way.
  for (const Case& c : {Case{3, {5}, 12, v1::TANH, 0.2}, Case{2, {7}, 30, v1::RELU, 0.05},
                        Case{4, {}, 9, v1::IDENTITY, 0.5}, Case{3, {6, 5}, 11, v1::TANH, 0.1},
                        Case{3, {5}, 12, v1::TANH, 1e-14}}) {
    const v1::MlpDecoderSpec spec =
        RandomDecoder(c.l, c.hidden, c.d, c.activation, c.noise_variance, gen);
    auto model = Make(spec);
    CHECK(model->uses_gram_form());
    const int s = 37;
    Eigen::MatrixXd z(s, c.l);
    for (Eigen::Index i = 0; i < z.size(); ++i) z(i) = 2.0 * normal(gen);
    RowMatrixXd xs(1, c.d);
    model->Sample(3, 0, xs, nullptr);
    const Eigen::VectorXd x = xs.row(0).transpose();
    Eigen::VectorXd all(s);
    model->LogLikelihoodGivenLatent(x, z, all);
    Eigen::VectorXd grad(c.l);
    for (Eigen::Index i = 0; i < s; ++i) {
      const double want = DirectLogLikelihood(spec, x, z.row(i).transpose());
      INFO("case d=" << c.d << " s2=" << c.noise_variance << " row " << i);
      CHECK(all(i) == Approx(want).epsilon(1e-11).margin(1e-10));
      CHECK(model->LogLikelihoodGradient(x, z.row(i).transpose(), grad) ==
            Approx(all(i)).epsilon(1e-11).margin(1e-10));
    }
    for (Eigen::Index chunk : {1, 7}) {
      Eigen::VectorXd pieces(s);
      for (Eigen::Index i0 = 0; i0 < s; i0 += chunk) {
        const Eigen::Index n = std::min(chunk, s - i0);
        Eigen::VectorXd part(n);
        model->LogLikelihoodGivenLatent(x, z.middleRows(i0, n), part);
        pieces.segment(i0, n) = part;
      }
      CHECK(std::memcmp(pieces.data(), all.data(), s * sizeof(double)) == 0);
    }
  }
  // No Gram form: BERNOULLI, a non-identity output layer, or H >= D.
  v1::MlpDecoderSpec spec = RandomDecoder(3, {5}, 12, v1::TANH, 0.2, gen);
  spec.set_likelihood(v1::BERNOULLI);
  CHECK_FALSE(Make(spec)->uses_gram_form());
  spec = RandomDecoder(3, {5}, 12, v1::TANH, 0.2, gen);
  spec.mutable_layers(1)->set_activation(v1::TANH);
  CHECK_FALSE(Make(spec)->uses_gram_form());
  CHECK_FALSE(Make(ModelE(false))->uses_gram_form());
}

TEST_CASE("bad mlp_decoder specs are refused, naming the field") {
  const auto message = [](const v1::MlpDecoderSpec& spec) {
    auto model = MlpDecoderModel::Create(spec);
    REQUIRE_FALSE(model.ok());
    CHECK(model.status().code() == absl::StatusCode::kInvalidArgument);
    return std::string(model.status().message());
  };
  v1::MlpDecoderSpec spec = ModelE(false);
  spec.set_noise_variance(-1);
  CHECK_THAT(message(spec), Catch::Contains("noise_variance"));
  spec = ModelE(false);
  spec.set_latent_dim(3);
  CHECK_THAT(message(spec), Catch::Contains("latent_dim"));
  spec = ModelE(false);
  spec.mutable_layers(1)->add_bias(1.0);
  CHECK_THAT(message(spec), Catch::Contains("layers[1].bias"));
  spec = ModelE(false);
  spec.mutable_layers(0)->mutable_weight()->set_values(3, NAN);
  CHECK_THAT(message(spec), Catch::Contains("layers[0].weight"));
  spec = ModelE(false);
  spec.clear_layers();
  CHECK_THAT(message(spec), Catch::Contains("layers"));
}

// An audit found decoders with finite but huge weights (1e200) accepted, then streaming +-inf
// samples (RELU: NaN) and answering NaN log-likelihoods and standard errors.
TEST_CASE("decoders whose outputs can overflow for prior draws are refused, naming the layer") {
  const auto decoder = [](double w0, double w1, v1::Activation first, double bias = 0.0) {
    v1::MlpDecoderSpec spec;
    spec.set_latent_dim(1);
    spec.set_noise_variance(1.0);
    v1::DenseLayer* a = spec.add_layers();
    SetMatrix(Eigen::MatrixXd::Constant(2, 1, w0), a->mutable_weight());
    a->add_bias(bias);
    a->add_bias(0.0);
    a->set_activation(first);
    v1::DenseLayer* b = spec.add_layers();
    Eigen::MatrixXd w(1, 2);
    w << w1, -w1;
    SetMatrix(w, b->mutable_weight());
    b->add_bias(0.0);
    return spec;
  };
  for (v1::Activation first : {v1::IDENTITY, v1::RELU}) {
    auto model = MlpDecoderModel::Create(decoder(1e200, 1e200, first));
    REQUIRE_FALSE(model.ok());
    CHECK(model.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(model.status().message()), Catch::Contains("layers[0]"));
    CHECK_THAT(std::string(model.status().message()), Catch::Contains("1e+150"));
    // The second layer's outputs (2 * 9e140 * 1e10) are what passes the limit here.
    model = MlpDecoderModel::Create(decoder(1e140, 1e10, first));
    REQUIRE_FALSE(model.ok());
    CHECK_THAT(std::string(model.status().message()), Catch::Contains("layers[1]"));
    // A huge bias alone too.
    model = MlpDecoderModel::Create(decoder(1.0, 1.0, first, 1e300));
    REQUIRE_FALSE(model.ok());
    CHECK_THAT(std::string(model.status().message()), Catch::Contains("layers[0]"));
  }
  // tanh bounds its outputs by 1: the same weights as RELU's refused pair are fine after it, and
  // so is every draw.
  auto bounded = MlpDecoderModel::Create(decoder(1e140, 1e140, v1::TANH));
  REQUIRE(bounded.ok());
  RowMatrixXd x(4096, 1);
  (*bounded)->Sample(7, 0, x, nullptr);
  CHECK(x.allFinite());
  // Within the limit, every draw of the prior decodes to finite values.
  auto large = MlpDecoderModel::Create(decoder(1e70, 1e70, v1::RELU));
  REQUIRE(large.ok());
  (*large)->Sample(7, 0, x, nullptr);
  CHECK(x.allFinite());
}

// x_d f_d - softplus(f_d) summed over d cancelled (log p = 0 instead of -50 for logits 50 and 1e20)
// and gave NaN (0 * inf - inf) for an infinite logit; the exact limits are 0 and -inf.
TEST_CASE("BERNOULLI log p(x|z) has no cancellation and the exact limits of infinite logits") {
  v1::MlpDecoderSpec spec;
  spec.set_latent_dim(1);
  spec.set_likelihood(v1::BERNOULLI);
  v1::DenseLayer* layer = spec.add_layers();
  Eigen::MatrixXd w(2, 1);
  w << 0.0, 1e149;
  SetMatrix(w, layer->mutable_weight());
  layer->add_bias(50.0);
  layer->add_bias(0.0);
  auto model = Make(spec);
  const auto softplus = [](double t) {
    return std::max(t, 0.0) + std::log1p(std::exp(-std::abs(t)));
  };
  Eigen::MatrixXd z(4, 1);
  z << 1e-129, -1e-129, 1e300, -1e300;  // logits 1e20, -1e20, +inf, -inf
  for (const Eigen::Vector2d& x : {Eigen::Vector2d(0.0, 1.0), Eigen::Vector2d(1.0, 0.0)}) {
    Eigen::VectorXd out(4);
    model->LogLikelihoodGivenLatent(x, z, out);
    const double first = x(0) == 1.0 ? -softplus(-50.0) : -softplus(50.0);
    const bool second_one = x(1) == 1.0;
    CHECK(out(0) == Approx(first - (second_one ? 0.0 : 1e20)).epsilon(1e-15));
    CHECK(out(1) == Approx(first - (second_one ? 1e20 : 0.0)).epsilon(1e-15));
    CHECK(out(2) == (second_one ? first : -std::numeric_limits<double>::infinity()));
    CHECK(out(3) == (second_one ? -std::numeric_limits<double>::infinity() : first));
    Eigen::VectorXd grad(1);
    for (int s = 0; s < 4; ++s) {
      const double value = model->LogLikelihoodGradient(x, z.row(s).transpose(), grad);
      CHECK(value == out(s));
    }
  }
}

// Model E's layers as safetensors tensors.
std::map<std::string, Tensor> ModelETensors() {
  const v1::MlpDecoderSpec spec = ModelE(false);
  std::map<std::string, Tensor> tensors;
  for (int i = 0; i < spec.layers_size(); ++i) {
    const auto& layer = spec.layers(i);
    tensors[absl::StrCat("layers.", i, ".weight")] =
        Tensor{"F64",
               {layer.weight().rows(), layer.weight().cols()},
               {layer.weight().values().begin(), layer.weight().values().end()}};
    tensors[absl::StrCat("layers.", i, ".bias")] =
        Tensor{"F64", {layer.bias_size()}, {layer.bias().begin(), layer.bias().end()}};
  }
  return tensors;
}

TEST_CASE("safetensors weights give the same model as explicit layers (F64 exactly, F32 closely)") {
  auto reference = Make(ModelE(false));
  const Eigen::VectorXd x = ModelEData(false);
  Eigen::MatrixXd z(3, 2);
  z << 0.1, 0.2, -1.0, 0.5, 2.0, -0.3;
  Eigen::VectorXd expected(3), got(3);
  reference->LogLikelihoodGivenLatent(x, z, expected);
  for (bool f32 : {false, true}) {
    v1::MlpDecoderSpec spec;
    spec.set_noise_variance(0.1);
    spec.set_safetensors(
        WriteSafetensors(ModelETensors(), {{"activations", "tanh,identity"}}, f32));
    auto model = Make(spec);
    CHECK(model->latent_dim() == 2);
    CHECK(model->dimension() == 4);
    model->LogLikelihoodGivenLatent(x, z, got);
    if (f32) {
      CHECK((got - expected).cwiseAbs().maxCoeff() < 1e-5);
    } else {
      CHECK(got == expected);
    }
  }
  // Default activations: tanh for hidden layers, identity for the last.
  v1::MlpDecoderSpec spec;
  spec.set_noise_variance(0.1);
  spec.set_safetensors(WriteSafetensors(ModelETensors(), {}));
  Make(spec)->LogLikelihoodGivenLatent(x, z, got);
  CHECK(got == expected);
}

TEST_CASE("malformed safetensors files are refused with the reason") {
  const std::string good = WriteSafetensors(ModelETensors(), {});
  const auto error = [](const std::string& bytes) {
    v1::MlpDecoderSpec spec;
    spec.set_noise_variance(0.1);
    spec.set_safetensors(bytes);
    auto model = MlpDecoderModel::Create(spec);
    REQUIRE_FALSE(model.ok());
    CHECK(model.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(model.status().message()), Catch::Contains("safetensors"));
    return std::string(model.status().message());
  };
  const auto with_header = [](const std::string& json, const std::string& data) {
    std::string out(8, '\0');
    for (int b = 0; b < 8; ++b) out[b] = static_cast<char>((json.size() >> (8 * b)) & 0xff);
    return out + json + data;
  };
  CHECK_THAT(error("abc"), Catch::Contains("truncated"));
  CHECK_THAT(error(good.substr(0, 20)), Catch::Contains("header length"));
  CHECK_THAT(error(good.substr(0, good.size() - 8)), Catch::Contains("outside"));
  CHECK_THAT(error(with_header("{not json", "")), Catch::Contains("JSON"));
  CHECK_THAT(error(with_header("[1,2]", "")), Catch::Contains("object"));
  const std::string data(16, '\0');
  CHECK_THAT(
      error(with_header(
          R"({"layers.0.weight":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}})", data)),
      Catch::Contains("dtype I32"));
  CHECK_THAT(
      error(with_header(
          R"({"layers.0.weight":{"dtype":"F64","shape":[2,2],"data_offsets":[0,16]}})", data)),
      Catch::Contains("needs 32"));
  CHECK_THAT(error(with_header(
                 R"({"layers.0.weight":{"dtype":"F64","shape":[2],"data_offsets":[8,24]}})", data)),
             Catch::Contains("outside"));
  CHECK_THAT(error(with_header(R"({"layers.0.weight":{"dtype":"F64","shape":[2]}})", data)),
             Catch::Contains("data_offsets"));
  CHECK_THAT(error(with_header(R"({"layers.0.weight":{"shape":[2],"data_offsets":[0,16]}})", data)),
             Catch::Contains("dtype"));
  CHECK_THAT(
      error(with_header(R"({"layers.0.weight":{"dtype":"F64","shape":[-2],"data_offsets":[0,16]}})",
                        data)),
      Catch::Contains("shape"));
  // Layer conventions.
  std::map<std::string, Tensor> tensors = ModelETensors();
  tensors.erase("layers.1.bias");
  CHECK_THAT(error(WriteSafetensors(tensors, {})), Catch::Contains("layers.1.bias"));
  tensors = ModelETensors();
  tensors["encoder.weight"] = Tensor{"F64", {1}, {1.0}};
  CHECK_THAT(error(WriteSafetensors(tensors, {})), Catch::Contains("not layers"));
  tensors = ModelETensors();
  tensors["layers.1.weight"].shape = {8, 4};  // Wrong shape (same element count).
  CHECK_THAT(error(WriteSafetensors(tensors, {})), Catch::Contains("layers.1.weight"));
  CHECK_THAT(error(WriteSafetensors(ModelETensors(), {{"activations", "tanh,swish"}})),
             Catch::Contains("swish"));
  CHECK_THAT(error(WriteSafetensors(ModelETensors(), {{"activations", "tanh"}})),
             Catch::Contains("activations"));
  // Both layers and safetensors.
  v1::MlpDecoderSpec both = ModelE(false);
  both.set_safetensors(good);
  auto model = MlpDecoderModel::Create(both);
  CHECK(model.status().code() == absl::StatusCode::kInvalidArgument);
}

// The hunt's 60 MB headers took 3.7 GB as a JSON tree: a header above 1 MiB is refused, naming the
// cap, before it is parsed (here it is valid JSON padded with spaces, which parsed before).
TEST_CASE("a safetensors header above 1 MiB is refused before it is parsed, naming the cap") {
  const auto with_header = [](const std::string& json) {
    std::string out(8, '\0');
    for (int b = 0; b < 8; ++b) out[b] = static_cast<char>((json.size() >> (8 * b)) & 0xff);
    return out + json;
  };
  v1::MlpDecoderSpec spec;
  spec.set_noise_variance(0.1);
  spec.set_safetensors(with_header("{}" + std::string(kMaxSafetensorsHeaderBytes, ' ')));
  auto model = MlpDecoderModel::Create(spec);
  REQUIRE_FALSE(model.ok());
  CHECK(model.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(model.status().message()),
             Catch::Contains("above the limit of 1048576 bytes"));
  // At the cap it is parsed (and refused for what it lacks).
  spec.set_safetensors(with_header("{}" + std::string(kMaxSafetensorsHeaderBytes - 2, ' ')));
  model = MlpDecoderModel::Create(spec);
  REQUIRE_FALSE(model.ok());
  CHECK_THAT(std::string(model.status().message()), Catch::Contains("layers.0.weight"));
}

// Sample forwarded the whole batch and kept every layer's activations (1 -> 10^6 -> 1: 8 GB for
// 1 024 samples): blocks now hold at most 64 MiB of activations, and samples keep their bits.
TEST_CASE("mlp_decoder samples in blocks bounded by the layers' widths, with the same bits") {
  std::mt19937_64 gen(11);
  const v1::MlpDecoderSpec spec = RandomDecoder(2, {200000}, 3, v1::TANH, 0.1, gen);
  auto model = Make(spec);
  const std::size_t block = model->ForwardBlockRows();
  CHECK(block == MlpDecoderModel::kForwardBudgetBytes / (8 * (200000 + 3)));
  CHECK(block * (200000 + 3) * 8 <= MlpDecoderModel::kForwardBudgetBytes);
  CHECK(Make(ModelE(false))->ForwardBlockRows() ==
        MlpDecoderModel::kForwardBudgetBytes / (8 * (8 + 4)));
  // A batch over several blocks equals its samples drawn one at a time, bit for bit.
  const Eigen::Index n = static_cast<Eigen::Index>(2 * block + 5);
  RowMatrixXd all(n, 3), latents;
  model->Sample(9, 1000, all, &latents);
  for (Eigen::Index i : {Eigen::Index{0}, static_cast<Eigen::Index>(block) - 1,
                         static_cast<Eigen::Index>(block), n - 1}) {
    RowMatrixXd one(1, 3), one_latent;
    model->Sample(9, 1000 + static_cast<uint64_t>(i), one, &one_latent);
    CHECK(std::memcmp(one.data(), all.row(i).data(), 3 * sizeof(double)) == 0);
    CHECK(one_latent == latents.row(i));
  }
  // The estimate path's blocks follow the same bound and do not change log p(x|z).
  Eigen::MatrixXd z(n, 2);
  for (Eigen::Index i = 0; i < n; ++i) z.row(i) = latents.row(i);
  const Eigen::VectorXd x = all.row(0).transpose();
  Eigen::VectorXd log_lik(n), one(1);
  model->LogLikelihoodGivenLatent(x, z, log_lik);
  for (Eigen::Index i : {Eigen::Index{0}, static_cast<Eigen::Index>(block), n - 1}) {
    model->LogLikelihoodGivenLatent(x, z.row(i), one);
    CHECK(std::memcmp(&one(0), &log_lik(i), sizeof(double)) == 0);
  }
}

// IMPORTANCE proposals of a row group are held together: the group is bounded by their bytes.
TEST_CASE("IMPORTANCE groups hold at most 32 MiB of proposals, groups never change estimates") {
  std::mt19937_64 gen(5);
  auto model = Make(RandomDecoder(300, {4}, 2, v1::TANH, 0.1, gen));
  // (4 modes' eigenvectors + one Hessian and its eigenvectors) x 300 x 300 doubles.
  CHECK(model->ProposalBytes() == 8 * 6 * 300 * 300);
  EstimateSettings settings;
  settings.estimator = McEstimator::kImportance;
  settings.num_samples = 1;
  CHECK(EstimateGroupRows(*model, settings) == (uint64_t{32} << 20) / (8 * 6 * 300 * 300));
  settings.num_samples = 1 << 20;  // the weights' bound is smaller here
  CHECK(EstimateGroupRows(*model, settings) == 4);
  settings.estimator = McEstimator::kPrior;
  settings.num_samples = 1;
  CHECK(EstimateGroupRows(*model, settings) == (uint64_t{1} << 22));
  auto small = Make(ModelE(false));
  settings.estimator = McEstimator::kImportance;
  CHECK(EstimateGroupRows(*small, settings) == (uint64_t{32} << 20) / (8 * 6 * 2 * 2));
}

}  // namespace
}  // namespace maas::generative
