// gaussian_mixture: reference value C of monte-carlo-and-rng.md §2.1, the latent view against the
// exact marginal, deterministic sampling, validation and EM bad input. (The scikit-learn oracles
// are in tests/python/test_generative_gaussian_mixture.py.)
#include "services/generative/core/gaussian_mixture.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/math/gaussian.h"
#include "common/random/item_rng.h"
#include "common/random/philox.h"
#include "services/generative/core/kmeans.h"
#include "tests/services/generative/family_checks.h"

namespace maas::generative {
namespace {

void SetMatrix(common::v1::Matrix* m, int rows, int cols, std::vector<double> values) {
  m->set_rows(rows);
  m->set_cols(cols);
  m->clear_values();
  for (double v : values) m->add_values(v);
}

// Model C: K = 3, D = 2.
v1::GaussianMixtureSpec ModelC(v1::CovarianceType type = v1::FULL) {
  v1::GaussianMixtureSpec spec;
  spec.set_covariance_type(type);
  for (double w : {0.5, 0.3, 0.2}) spec.add_weights(w);
  SetMatrix(spec.mutable_means(), 3, 2, {0, 0, 3, 1, -2, 2.5});
  if (type == v1::FULL) {
    SetMatrix(spec.mutable_covariances(), 6, 2, {1, .3, .3, .5, .6, -.2, -.2, 1.2, 2, 0, 0, .3});
  } else if (type == v1::DIAG) {
    SetMatrix(spec.mutable_covariances(), 3, 2, {1, .5, .6, 1.2, 2, .3});
  } else {
    SetMatrix(spec.mutable_covariances(), 3, 1, {1, .6, 2});
  }
  return spec;
}

std::unique_ptr<GaussianMixtureModel> Make(const v1::GaussianMixtureSpec& spec) {
  auto model = GaussianMixtureModel::Create(spec);
  REQUIRE(model.ok());
  return *std::move(model);
}

TEST_CASE("gaussian_mixture reproduces reference value C") {
  const auto model = Make(ModelC());
  Eigen::MatrixXd x(1, 2);
  x << 1.0, 0.5;
  CHECK(model->ExactLogLikelihood(x)(0) == Approx(-2.618270574166).epsilon(0).margin(1e-11));
  // The same value from the closed form written out here: logsumexp of the weighted densities.
  const double two_pi = 2 * M_PI;
  auto density = [&](double m0, double m1, double a, double b, double c) {
    const double det = a * c - b * b;
    const double d0 = 1.0 - m0, d1 = 0.5 - m1;
    const double quad = (c * d0 * d0 - 2 * b * d0 * d1 + a * d1 * d1) / det;
    return std::exp(-0.5 * quad) / (two_pi * std::sqrt(det));
  };
  const double p = 0.5 * density(0, 0, 1, .3, .5) + 0.3 * density(3, 1, .6, -.2, 1.2) +
                   0.2 * density(-2, 2.5, 2, 0, .3);
  CHECK(model->ExactLogLikelihood(x)(0) == Approx(std::log(p)).epsilon(1e-13));
}

// The late 2026-12-06 review: the standard deviations became row-major, and Eigen then summed a
// component's logs with its vectorised log and pairwise sum, moving EXACT values of existing
// DIAG models by an ulp. The normaliser is the sequential std::log sum: at the mean of a
// one-component model, log p(x) is exactly -D/2 log(2 pi) - sum_j log(stddev_j) in that order.
TEST_CASE("gaussian_mixture DIAG normaliser sums the log standard deviations in order") {
  for (const int d : {2, 3, 5, 20, 61}) {
    CAPTURE(d);
    v1::GaussianMixtureSpec spec;
    spec.set_covariance_type(v1::DIAG);
    spec.add_weights(1.0);
    std::vector<double> means(static_cast<size_t>(d)), variances(static_cast<size_t>(d));
    uint64_t state = 77 + static_cast<uint64_t>(d);
    for (int j = 0; j < d; ++j) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      variances[static_cast<size_t>(j)] = 0.1 + 2.9 * static_cast<double>(state >> 11) * 0x1.0p-53;
      means[static_cast<size_t>(j)] = 0.25 * j;
    }
    SetMatrix(spec.mutable_means(), 1, d, means);
    SetMatrix(spec.mutable_covariances(), 1, d, variances);
    const auto model = Make(spec);
    double half_log_det = std::log(std::sqrt(variances[0]));
    for (int j = 1; j < d; ++j)
      half_log_det += std::log(std::sqrt(variances[static_cast<size_t>(j)]));
    const double expected = -0.5 * static_cast<double>(d) * math::kLogTwoPi - half_log_det;
    Eigen::MatrixXd x(1, d);
    for (int j = 0; j < d; ++j) x(0, j) = means[static_cast<size_t>(j)];
    const double got = model->ExactLogLikelihood(x)(0);
    CHECK(std::memcmp(&got, &expected, sizeof(double)) == 0);
  }
}

TEST_CASE("gaussian_mixture latent view equals the exact marginal") {
  for (auto type : {v1::FULL, v1::DIAG, v1::SPHERICAL}) {
    CAPTURE(type);
    const auto model = Make(ModelC(type));
    CHECK(model->latent_kind() == LatentKind::kDiscrete);
    CHECK(model->latent_dim() == 3);
    Eigen::MatrixXd x(4, 2);
    x << 1, .5, -3, 2, 4, 1.5, 30, -20;
    testing::CheckExactPosteriorIdentity(*model, x, 1e-12);
    // Out-of-range latents have zero prior mass and zero likelihood.
    CHECK(std::isinf(model->LogPrior(Eigen::VectorXd::Constant(1, 3.0))));
    CHECK(std::isinf(model->LogPrior(Eigen::VectorXd::Constant(1, 0.5))));
    // Prior draws follow the weights.
    Eigen::Vector3d counts = Eigen::Vector3d::Zero();
    Eigen::VectorXd z(3);
    for (int i = 0; i < 20000; ++i) {
      random::ItemRng rng(5, 2, static_cast<uint64_t>(i));
      model->SamplePrior(rng, z);
      counts(static_cast<int>(z(0))) += 1;
      CHECK(rng.words_consumed() == 2);
    }
    CHECK((counts / 20000 - Eigen::Vector3d(.5, .3, .2)).cwiseAbs().maxCoeff() < 0.02);
  }
}

TEST_CASE("gaussian_mixture sampling is deterministic and follows the draw order") {
  for (auto type : {v1::FULL, v1::DIAG, v1::SPHERICAL}) {
    CAPTURE(type);
    const auto model = Make(ModelC(type));
    testing::CheckSampleDeterminism(*model, 1234);
  }
  // Sample 5 of seed 77 by hand: one Uniform for the component, then D normals.
  const auto model = Make(ModelC());
  random::ItemRng rng(77, kSampleStream, 5);
  const double u = rng.Uniform();
  const int k = u < 0.5 ? 0 : (u < 0.8 ? 1 : 2);
  const double e0 = rng.Normal(), e1 = rng.Normal();
  Eigen::Matrix2d cov[3];
  cov[0] << 1, .3, .3, .5;
  cov[1] << .6, -.2, -.2, 1.2;
  cov[2] << 2, 0, 0, .3;
  const Eigen::Matrix2d l = cov[k].llt().matrixL();
  Eigen::Vector2d mean[3] = {{0, 0}, {3, 1}, {-2, 2.5}};
  const Eigen::Vector2d expected = mean[k] + l * Eigen::Vector2d(e0, e1);
  RowMatrixXd x(1, 2), latents;
  model->Sample(77, 5, x, &latents);
  CHECK(latents(0, 0) == k);
  CHECK(x(0, 0) == Approx(expected(0)).epsilon(1e-14));
  CHECK(x(0, 1) == Approx(expected(1)).epsilon(1e-14));
}

// Rows so far out that x - mu, a whitened coordinate or the squared distance passes float64 while
// half the squared distance, log N, does not (the 2026-12-06 generative hunt: such rows came back
// -inf, and with a correlated FULL covariance NaN, from EXACT, PRIOR and IMPORTANCE alike).
TEST_CASE("gaussian_mixture log densities of rows beyond float64 squares are finite or -inf") {
  const double log_two_pi = std::log(2 * M_PI);
  // One component at the origin with covariance [[1, rho], [rho, 1]] (FULL), the identity (DIAG,
  // SPHERICAL) when rho = 0; log N closed form: -log 2 pi - log det / 2 - quad / 2 with
  // quad / 2 = (a^2 - 2 rho a b + b^2) / (2 (1 - rho^2)), finite here although quad is not.
  const auto one_component = [](v1::CovarianceType type, double rho, double mean) {
    v1::GaussianMixtureSpec spec;
    spec.set_covariance_type(type);
    spec.add_weights(1.0);
    SetMatrix(spec.mutable_means(), 1, 2, {mean, mean});
    if (type == v1::FULL) {
      SetMatrix(spec.mutable_covariances(), 2, 2, {1, rho, rho, 1});
    } else if (type == v1::DIAG) {
      SetMatrix(spec.mutable_covariances(), 1, 2, {1, 1});
    } else {
      SetMatrix(spec.mutable_covariances(), 1, 1, {1});
    }
    return Make(spec);
  };
  const auto closed_form = [&](double a, double b, double rho) {
    const double one_minus = 1 - rho * rho;
    const double half_quad =
        (a / 2) * (a / one_minus) - rho * (a / one_minus) * b + (b / 2) * (b / one_minus);
    return -log_two_pi - 0.5 * std::log(one_minus) - half_quad;
  };
  struct Case {
    v1::CovarianceType type;
    double rho, a, b;
  };
  for (const Case& c :
       {Case{v1::FULL, 0.0, 1.3e154, 1.3e154}, Case{v1::DIAG, 0.0, 1.3e154, 1.3e154},
        Case{v1::SPHERICAL, 0.0, 1.8e154, 0.0}, Case{v1::FULL, 0.5, 8e153, -8e153},
        Case{v1::FULL, -0.5, 9e153, 9e153}}) {
    CAPTURE(c.type, c.rho, c.a, c.b);
    const auto model = one_component(c.type, c.rho, 0.0);
    Eigen::MatrixXd x(1, 2);
    x << c.a, c.b;
    const double expected = closed_form(c.a, c.b, c.rho);
    REQUIRE(std::isfinite(expected));
    CHECK(model->ExactLogLikelihood(x)(0) == Approx(expected).epsilon(1e-14));
    // The latent view (PRIOR) and the proposal (IMPORTANCE) use the same densities.
    Eigen::VectorXd out(1);
    model->LogLikelihoodGivenLatent(x.row(0).transpose(), Eigen::MatrixXd::Zero(1, 1), out);
    CHECK(out(0) == Approx(expected).epsilon(1e-14));
  }
  // x - mu itself overflows: far beyond float64 (-inf), never NaN, for every covariance type and
  // through a second component that makes the row possible.
  for (auto type : {v1::FULL, v1::DIAG, v1::SPHERICAL}) {
    CAPTURE(type);
    const auto model = one_component(type, type == v1::FULL ? 0.5 : 0.0, -1e308);
    Eigen::MatrixXd x(2, 2);
    x << 1e308, 1e308, 1e308, -1e308;
    const Eigen::VectorXd log_p = model->ExactLogLikelihood(x);
    CHECK(log_p(0) == -std::numeric_limits<double>::infinity());
    CHECK(log_p(1) == -std::numeric_limits<double>::infinity());
    const std::unique_ptr<LatentProposal> proposal = model->MakeProposal(x.row(0).transpose());
    Eigen::VectorXd z(1);
    random::ItemRng rng(3, /*stream=*/2, 0);
    proposal->Sample(rng, z);
    CHECK_FALSE(std::isnan(proposal->LogDensity(z)));
  }
  v1::GaussianMixtureSpec two = ModelC();
  SetMatrix(two.mutable_means(), 3, 2, {-1e308, -1e308, 3, 1, -2, 2.5});
  const auto model = Make(two);
  Eigen::MatrixXd x(1, 2);
  x << 1e308, 1e308;
  CHECK(model->ExactLogLikelihood(x)(0) == -std::numeric_limits<double>::infinity());
  x << 1.0, 0.5;
  const Eigen::VectorXd densities = model->ComponentLogDensities(x.data());
  CHECK(densities(0) == -std::numeric_limits<double>::infinity());
  CHECK(std::isfinite(model->ExactLogLikelihood(x)(0)));
}

// The 2026-12-06 generative hunt: Eigen's vectorized log truncates subnormal inputs to 2.2e-308,
// so a mixture weight of 1e-310 .. 5e-324 (valid: > 0) gave log p(x) 5 to 36 nats too high for
// rows that only its component explains. Expected values: the closed form with std::log.
TEST_CASE("gaussian_mixture subnormal weights enter log p(x) exactly") {
  for (double tiny : {1e-300, 1e-310, 1e-320, 5e-324}) {
    CAPTURE(tiny);
    v1::GaussianMixtureSpec spec;
    spec.set_covariance_type(v1::DIAG);
    spec.add_weights(tiny);
    spec.add_weights(1.0 - tiny);
    SetMatrix(spec.mutable_means(), 2, 1, {0, 100});
    SetMatrix(spec.mutable_covariances(), 2, 1, {1, 1});
    const auto model = Make(spec);
    Eigen::MatrixXd x(1, 1);
    x << 0.0;  // component 1 adds exp(-5000): nothing in float64
    const double expected = std::log(tiny) - 0.5 * std::log(2 * M_PI);
    CHECK(model->ExactLogLikelihood(x)(0) == Approx(expected).epsilon(1e-15));
    CHECK(model->LogPrior(Eigen::VectorXd::Zero(1)) == std::log(tiny));
  }
}

TEST_CASE("gaussian_mixture specs that define no distribution are rejected by field") {
  auto expect_invalid = [](const v1::GaussianMixtureSpec& spec, const std::string& mention) {
    const absl::Status status = GaussianMixtureModel::Create(spec).status();
    CAPTURE(status.ToString(), mention);
    CHECK(absl::IsInvalidArgument(status));
    CHECK_THAT(std::string(status.message()), Catch::Contains(mention));
  };
  auto spec = ModelC();
  spec.set_weights(0, 0.6);
  expect_invalid(spec, "sum to 1");
  spec = ModelC();
  spec.set_weights(0, -0.1);
  spec.set_weights(1, 0.9);
  expect_invalid(spec, "weights[0]");
  spec = ModelC();
  spec.clear_weights();
  expect_invalid(spec, "weights");
  spec = ModelC();
  spec.mutable_means()->set_values(3, NAN);
  expect_invalid(spec, "means");
  spec = ModelC();
  SetMatrix(spec.mutable_means(), 2, 2, {0, 0, 1, 1});
  expect_invalid(spec, "means");
  spec = ModelC();
  spec.mutable_covariances()->set_values(3, -0.5);  // component 0: [[1,.3],[.3,-.5]]
  expect_invalid(spec, "positive definite");
  spec = ModelC();
  spec.mutable_covariances()->set_values(1, 0.4);  // not symmetric
  expect_invalid(spec, "symmetric");
  spec = ModelC();
  spec.mutable_covariances()->set_values(5, INFINITY);
  expect_invalid(spec, "covariances");
  spec = ModelC();
  SetMatrix(spec.mutable_covariances(), 3, 2, {1, 1, 1, 1, 1, 1});  // DIAG layout for FULL
  expect_invalid(spec, "covariances");
  spec = ModelC(v1::DIAG);
  spec.mutable_covariances()->set_values(2, 0.0);
  expect_invalid(spec, "> 0");
  spec = ModelC(v1::SPHERICAL);
  spec.mutable_covariances()->set_values(2, -1.0);
  expect_invalid(spec, "> 0");
  CHECK(GaussianMixtureModel::Create(ModelC(v1::SPHERICAL)).ok());
  // Weights summing to 1 within 1e-9 are accepted.
  spec = ModelC();
  spec.set_weights(0, 0.5 + 5e-10);
  CHECK(GaussianMixtureModel::Create(spec).ok());
}

// ---- EM ----

absl::StatusOr<FitResult> Fit(const v1::GaussianMixtureFit& fit, const Eigen::MatrixXd& rows,
                              uint64_t seed = 3) {
  v1::FitConfig config;
  *config.mutable_gaussian_mixture() = fit;
  const Family family = GaussianMixtureFamily();
  auto fitter = family.make_fitter(config, seed);
  if (!fitter.ok()) return fitter.status();
  // Two chunks.
  const Eigen::Index half = rows.rows() / 2;
  if (half > 0) {
    absl::Status s = (*fitter)->AddRows(rows.topRows(half), 0);
    if (!s.ok()) return s;
  }
  absl::Status s = (*fitter)->AddRows(rows.bottomRows(rows.rows() - half), half);
  if (!s.ok()) return s;
  return (*fitter)->Finish(exec::StopToken());
}

Eigen::MatrixXd SampleRows(const GenerativeModel& model, int n, uint64_t seed) {
  RowMatrixXd x(n, model.dimension());
  model.Sample(seed, 0, x, nullptr);
  return x;
}

TEST_CASE("gaussian_mixture EM recovers a well-separated mixture and its trace rises") {
  const auto truth = Make(ModelC());
  const Eigen::MatrixXd rows = SampleRows(*truth, 3000, 8);
  for (auto init :
       {v1::INIT_KMEANS, v1::INIT_K_MEANS_PLUS_PLUS, v1::INIT_RANDOM, v1::INIT_RANDOM_FROM_DATA}) {
    CAPTURE(init);
    v1::GaussianMixtureFit fit;
    fit.set_n_components(3);
    fit.set_init_params(init);
    fit.set_tol(1e-8);
    fit.set_max_iter(500);
    fit.set_n_init(2);
    auto result = Fit(fit, rows);
    REQUIRE(result.ok());
    const auto& trace = result->trace;
    CHECK(trace.converged());
    REQUIRE(trace.log_likelihood_size() == static_cast<int>(trace.n_iter()));
    for (int i = 1; i < trace.log_likelihood_size(); ++i) {
      CHECK(trace.log_likelihood(i) >= trace.log_likelihood(i - 1) - 1e-9);  // EM never descends
    }
    auto fitted = Make(result->spec.gaussian_mixture());
    // The fitted model explains the data about as well as the truth.
    const double mean_fitted = fitted->ExactLogLikelihood(rows).mean();
    const double mean_truth = truth->ExactLogLikelihood(rows).mean();
    CHECK(mean_fitted >= mean_truth);
    CHECK(mean_fitted - mean_truth < 0.01);
    // Same seed, same fit; chunking does not matter.
    auto again = Fit(fit, rows);
    REQUIRE(again.ok());
    CHECK(again->spec.SerializeAsString() == result->spec.SerializeAsString());
  }
}

TEST_CASE("gaussian_mixture EM bad input") {
  const auto truth = Make(ModelC());
  const Eigen::MatrixXd rows = SampleRows(*truth, 50, 8);
  v1::GaussianMixtureFit fit;
  fit.set_n_components(51);
  auto too_many = Fit(fit, rows);
  CHECK(absl::IsInvalidArgument(too_many.status()));
  CHECK_THAT(std::string(too_many.status().message()), Catch::Contains("n_components"));
  // Duplicate rows collapse a component: with reg_covar = 0 the covariance is singular.
  Eigen::MatrixXd duplicated(6, 2);
  duplicated << 0, 0, 0, 0, 0, 0, 5, 5, 5, 5, 5, 5;
  fit.set_n_components(2);
  fit.set_reg_covar(0.0);
  auto singular = Fit(fit, duplicated);
  CHECK(absl::IsFailedPrecondition(singular.status()));
  CHECK_THAT(std::string(singular.status().message()), Catch::Contains("reg_covar"));
  fit.set_reg_covar(1e-6);
  CHECK(Fit(fit, duplicated).ok());  // the default regularisation is enough here
  v1::GaussianMixtureFit bad;
  bad.set_tol(-1);
  CHECK(absl::IsInvalidArgument(Fit(bad, rows).status()));
  bad = v1::GaussianMixtureFit();
  bad.set_n_components(2);
  bad.add_weights_init(0.5);
  bad.add_weights_init(0.6);
  CHECK(absl::IsInvalidArgument(Fit(bad, rows).status()));
  bad.set_weights_init(1, 0.5);
  SetMatrix(bad.mutable_means_init(), 2, 3, {0, 0, 0, 1, 1, 1});  // D = 3 for 2-D data
  auto wrong_d = Fit(bad, rows);
  CHECK(absl::IsInvalidArgument(wrong_d.status()));
  CHECK_THAT(std::string(wrong_d.status().message()), Catch::Contains("means_init"));
  SetMatrix(bad.mutable_means_init(), 2, 2, {0, 0, 1, 1});
  SetMatrix(bad.mutable_precisions_init(), 4, 2, {1, 0, 0, 1, 1, 2, 2, 1});  // 2nd not PD
  auto not_pd = Fit(bad, rows);
  CHECK(absl::IsInvalidArgument(not_pd.status()));
  CHECK_THAT(std::string(not_pd.status().message()), Catch::Contains("precisions_init"));
  Eigen::MatrixXd one(1, 2);
  one << 1, 2;
  CHECK(absl::IsInvalidArgument(Fit(v1::GaussianMixtureFit(), one).status()));
  // A stop request ends the fit.
  v1::FitConfig config;
  config.mutable_gaussian_mixture()->set_n_components(2);
  auto fitter = GaussianMixtureFamily().make_fitter(config, 1);
  REQUIRE(fitter.ok());
  REQUIRE((*fitter)->AddRows(rows, 0).ok());
  auto stopped = (*fitter)->Finish(exec::StopToken([] { return absl::CancelledError("gone"); }));
  CHECK(absl::IsCancelled(stopped.status()));
}

// ExactLogLikelihood works in blocks of rows per component (the 2026-12-06 performance hunt); every
// row must come out as it does alone, bit for bit, overflowing rows included.
TEST_CASE("gaussian_mixture exact log p(x) of a block of rows equals each row's alone") {
  const Eigen::Index d = 24;
  Eigen::MatrixXd train(300, d);
  for (Eigen::Index i = 0; i < train.rows(); ++i) {
    random::ItemRng rng(31, 0, static_cast<uint64_t>(i));
    for (Eigen::Index j = 0; j < d; ++j) train(i, j) = rng.Normal() + (i % 3) * 2.0;
  }
  for (auto type : {v1::FULL, v1::DIAG, v1::SPHERICAL}) {
    CAPTURE(type);
    v1::GaussianMixtureFit fit;
    fit.set_n_components(3);
    fit.set_covariance_type(type);
    auto fitted = Fit(fit, train);
    REQUIRE(fitted.ok());
    const auto model = Make(fitted->spec.gaussian_mixture());
    Eigen::MatrixXd x(75, d);  // two blocks of 32 and a part of 11 (parts of 8 and 3)
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      random::ItemRng rng(32, 0, static_cast<uint64_t>(i));
      for (Eigen::Index j = 0; j < d; ++j) x(i, j) = 3 * rng.Normal();
    }
    x(5, 3) = 1e200;  // a square that overflows: the scaled recomputation
    x(17, 0) = -1e300;
    x(70, 2) = 2e154;
    const Eigen::VectorXd all = testing::ExactOfBlockEqualsEachRowAlone(*model, x);
    CHECK(std::isfinite(all(0)));
    CHECK(all(5) < -1e300);  // far beyond float64's squares, not NaN
  }
}

// The 2026-12-06 amplification hunt: a FULL fit of a few rows of D ~ 5 790 columns (a 91 KB
// request) ran one EM iteration, ~18 s of Cholesky factorisations and inverses, past a 2 s
// deadline; the fit asked its stop token only between iterations.
TEST_CASE("gaussian_mixture FULL fits ask the stop token within an EM step, changing nothing") {
  const Eigen::Index d = 320;
  Eigen::MatrixXd rows(40, d);
  for (Eigen::Index i = 0; i < rows.rows(); ++i) {
    random::ItemRng rng(5, 0, static_cast<uint64_t>(i));
    for (Eigen::Index j = 0; j < d; ++j) rows(i, j) = rng.Normal();
  }
  v1::FitConfig config;
  v1::GaussianMixtureFit* fit = config.mutable_gaussian_mixture();
  fit->set_n_components(1);
  fit->set_init_params(v1::INIT_RANDOM);
  fit->set_reg_covar(0.5);
  fit->set_max_iter(2);
  fit->set_tol(0);
  const auto run = [&](const exec::StopToken& stop) {
    auto fitter = GaussianMixtureFamily().make_fitter(config, 1);
    REQUIRE(fitter.ok());
    REQUIRE((*fitter)->AddRows(rows, 0).ok());
    return (*fitter)->Finish(stop);
  };
  int checks = 0;
  const exec::StopToken counting([&] {
    ++checks;
    return absl::OkStatus();
  });
  auto asked = run(counting);
  REQUIRE(asked.ok());
  auto plain = run(exec::StopToken());
  REQUIRE(plain.ok());
  CHECK(asked->spec.SerializeAsString() == plain->spec.SerializeAsString());
  // Three M-steps (the initial one and two iterations), each factorising a 320 x 320 covariance
  // in 10 blocks of 32 columns: at least 30 checks, where there were 2 (one per iteration).
  CHECK(checks >= 30);
  // A token that says stop at its fifth check ends the fit there, within the initial M-step.
  int asked_times = 0;
  const exec::StopToken fifth(
      [&] { return ++asked_times >= 5 ? absl::CancelledError("gone") : absl::OkStatus(); });
  CHECK(absl::IsCancelled(run(fifth).status()));
  CHECK(asked_times == 5);
}

// The late 2026-12-06 review: the DIAG / SPHERICAL EM steps asked every 1 024 / 2 048 rows
// whatever K x D, ~9 s apart at K = 10 000, D = 1 600 (a 244 MiB model). They now ask every
// ~2^28 terms.
TEST_CASE("gaussian_mixture DIAG fits ask the stop token every ~2^28 terms") {
  CHECK(internal::DiagonalRowsPerCheck(10000, 1600) == 32);
  CHECK(internal::DiagonalRowsPerCheck(1000, 784) == 352);
  CHECK(internal::DiagonalRowsPerCheck(10, 784) == 2048);
  CHECK(internal::DiagonalRowsPerCheck(1, 1) == 2048);
  CHECK(internal::DiagonalRowsPerCheck(2, Eigen::Index{1} << 21) == 64);
  // (A fit large enough to show the questions' spacing takes gigabytes or seconds; the steps ask
  // whenever their first row is a multiple of this count.)
}

// n rows uniform in the unit square: no cluster structure, so Lloyd's k-means takes many
// iterations.
Eigen::MatrixXd UniformSquare(int n) {
  Eigen::MatrixXd x(n, 2);
  for (int i = 0; i < n; ++i) {
    random::ItemRng rng(21, 0, static_cast<uint64_t>(i));
    x(i, 0) = rng.Uniform();
    x(i, 1) = rng.Uniform();
  }
  return x;
}

TEST_CASE("k-means asks the stop token per seeded centre and per Lloyd iteration") {
  const Eigen::MatrixXd x = UniformSquare(2000);
  int checks = 0;
  const exec::StopToken counting([&] {
    ++checks;
    return absl::OkStatus();
  });
  random::ItemRng rng(9, 0, 0);
  auto labels = KMeansLabels(x, 8, rng, counting);
  REQUIRE(labels.ok());
  random::ItemRng same(9, 0, 0);
  CHECK(*labels == *KMeansLabels(x, 8, same, exec::StopToken()));  // asking changes nothing
  const int seeding = 7;                                           // centres 2..8
  CHECK(checks - seeding >= 3);                                    // Lloyd iterations
  // A token that says stop at the second Lloyd iteration ends the run there.
  checks = 0;
  const exec::StopToken stopping(
      [&] { return ++checks >= seeding + 2 ? absl::CancelledError("gone") : absl::OkStatus(); });
  random::ItemRng again(9, 0, 0);
  CHECK(absl::IsCancelled(KMeansLabels(x, 8, again, stopping).status()));
  CHECK(checks == seeding + 2);
}

// Rows offset far from the origin (Unix times are ~1.7e9) with clusters a few units apart: the
// k-means initialisation must see the same distances as for the rows at the origin (the
// 2026-12-06 generative hunt: at an offset of 1e9 its expanded-form distances were rounding
// noise, and the default INIT_KMEANS fit ended ~1 nat per row below scikit-learn's).
TEST_CASE("k-means and a Gaussian mixture fit are unchanged by an offset of the rows") {
  const auto truth = Make(ModelC());
  const Eigen::MatrixXd rows = SampleRows(*truth, 600, 21);
  const Eigen::MatrixXd shifted = rows.array() + 1e9;
  for (int k : {2, 3, 5}) {
    CAPTURE(k);
    random::ItemRng a(4, 0, 0), b(4, 0, 0);
    CHECK(*KMeansPlusPlus(rows, k, a, exec::StopToken()) ==
          *KMeansPlusPlus(shifted, k, b, exec::StopToken()));
    random::ItemRng c(5, 0, 0), d(5, 0, 0);
    CHECK(*KMeansLabels(rows, k, c, exec::StopToken()) ==
          *KMeansLabels(shifted, k, d, exec::StopToken()));
  }
  for (auto init : {v1::INIT_KMEANS, v1::INIT_K_MEANS_PLUS_PLUS}) {
    CAPTURE(init);
    v1::GaussianMixtureFit fit;
    fit.set_n_components(3);
    fit.set_init_params(init);
    auto at_origin = Fit(fit, rows);
    auto offset = Fit(fit, shifted);
    REQUIRE(at_origin.ok());
    REQUIRE(offset.ok());
    // The same fit, translated: equal mean log-likelihoods up to the rounding of rows near 1e9
    // (~1e-7 absolute).
    const double origin_ll =
        Make(at_origin->spec.gaussian_mixture())->ExactLogLikelihood(rows).mean();
    const double offset_ll =
        Make(offset->spec.gaussian_mixture())->ExactLogLikelihood(shifted).mean();
    CHECK(offset_ll == Approx(origin_ll).epsilon(0).margin(1e-5));
  }
}

// The 2026-12-06 generative hunt: DIAG and SPHERICAL fits of well-spread rows offset by 1e8 failed
// ("not positive definite ... a component collapsed onto one row") because the variance was
// formed as mean(x^2) - mean^2 (1e16 - 1e16); rows whose squares overflow float64 got that same
// message instead of the one ppca and factor_analysis give (scale the data).
TEST_CASE("gaussian_mixture variances of offset rows and overflowing rows get the right answer") {
  const auto truth = Make(ModelC());
  const Eigen::MatrixXd rows = SampleRows(*truth, 600, 22);
  for (auto type : {v1::FULL, v1::DIAG, v1::SPHERICAL}) {
    CAPTURE(type);
    v1::GaussianMixtureFit fit;
    fit.set_n_components(3);
    fit.set_covariance_type(type);
    auto at_origin = Fit(fit, rows);
    REQUIRE(at_origin.ok());
    const double origin_ll =
        Make(at_origin->spec.gaussian_mixture())->ExactLogLikelihood(rows).mean();
    for (double offset : {1e8, 1e10}) {
      CAPTURE(offset);
      const Eigen::MatrixXd shifted = rows.array() + offset;
      auto fitted = Fit(fit, shifted);
      CAPTURE(fitted.status().ToString());
      REQUIRE(fitted.ok());
      // The same fit translated, up to the rounding of the offset rows (~1e-6 at 1e10).
      CHECK(Make(fitted->spec.gaussian_mixture())->ExactLogLikelihood(shifted).mean() ==
            Approx(origin_ll).epsilon(0).margin(1e-4));
    }
    const Eigen::MatrixXd huge = rows * 1e153;
    const absl::Status overflow = Fit(fit, huge).status();
    CAPTURE(overflow.ToString());
    CHECK(absl::IsFailedPrecondition(overflow));
    CHECK_THAT(std::string(overflow.message()), Catch::Contains("overflows float64"));
    CHECK_THAT(std::string(overflow.message()), Catch::Contains("scale the data"));
  }
}

TEST_CASE("a Gaussian mixture fit asks the stop token during its k-means initialisation") {
  // One EM iteration asks once; the k-means initialisation before it must ask too, so a token
  // that says stop at its second question ends the fit.
  v1::FitConfig config;
  config.mutable_gaussian_mixture()->set_n_components(8);
  config.mutable_gaussian_mixture()->set_max_iter(1);
  config.mutable_gaussian_mixture()->set_init_params(v1::INIT_KMEANS);
  auto fitter = GaussianMixtureFamily().make_fitter(config, 1);
  REQUIRE(fitter.ok());
  REQUIRE((*fitter)->AddRows(UniformSquare(2000), 0).ok());
  int checks = 0;
  const exec::StopToken second(
      [&] { return ++checks >= 2 ? absl::CancelledError("gone") : absl::OkStatus(); });
  auto stopped = (*fitter)->Finish(second);
  CHECK(absl::IsCancelled(stopped.status()));
  CHECK(checks == 2);
}

}  // namespace
}  // namespace maas::generative
