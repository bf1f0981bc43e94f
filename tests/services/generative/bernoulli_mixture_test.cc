// bernoulli_mixture: reference value D of monte-carlo-and-rng.md §2.1, the latent view, sampling,
// validation and EM bad input. (The numpy oracle is in
// tests/python/test_generative_bernoulli_mixture.py.)
#include "services/generative/core/bernoulli_mixture.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>

#include "tests/services/generative/family_checks.h"

namespace maas::generative {
namespace {

// K = 2, D = 6: pi = (.6, .4), mu_kd = 0.5 + 0.4 sin((k+1)(d+1)).
v1::BernoulliMixtureSpec ModelD() {
  v1::BernoulliMixtureSpec spec;
  spec.add_weights(0.6);
  spec.add_weights(0.4);
  spec.mutable_probabilities()->set_rows(2);
  spec.mutable_probabilities()->set_cols(6);
  for (int k = 0; k < 2; ++k) {
    for (int d = 0; d < 6; ++d) {
      spec.mutable_probabilities()->add_values(0.5 + 0.4 * std::sin((k + 1) * (d + 1)));
    }
  }
  return spec;
}

std::unique_ptr<BernoulliMixtureModel> Make(const v1::BernoulliMixtureSpec& spec) {
  auto model = BernoulliMixtureModel::Create(spec);
  REQUIRE(model.ok());
  return *std::move(model);
}

TEST_CASE("bernoulli_mixture reproduces reference value D, non-binary rows have p = 0") {
  const auto model = Make(ModelD());
  Eigen::MatrixXd x(3, 6);
  x << 1, 0, 1, 1, 0, 0, 1, 0, 0.5, 1, 0, 0, 1, 0, 2, 1, 0, 0;
  const Eigen::VectorXd lp = model->ExactLogLikelihood(x);
  CHECK(lp(0) == Approx(-2.927741807981).epsilon(0).margin(1e-11));
  CHECK(std::isinf(lp(1)));
  CHECK(std::isinf(lp(2)));
  // Probabilities 0 and 1 are allowed: the other value is impossible, never NaN.
  auto spec = ModelD();
  spec.mutable_probabilities()->set_values(0, 1.0);
  spec.mutable_probabilities()->set_values(6, 1.0);
  const auto edge = Make(spec);
  Eigen::MatrixXd y(2, 6);
  y << 0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0;
  const Eigen::VectorXd ly = edge->ExactLogLikelihood(y);
  CHECK(std::isinf(ly(0)));
  CHECK(std::isfinite(ly(1)));
}

// The 2026-12-06 generative hunt: Eigen's vectorized log truncates subnormal inputs to 2.2e-308,
// so a weight or probability of 1e-310 .. 5e-324 (valid: > 0, in [0, 1]) gave log p(x) 5 to 36
// nats too high. Expected values: the closed form with std::log.
TEST_CASE("bernoulli_mixture subnormal weights and probabilities enter log p(x) exactly") {
  for (double tiny : {1e-310, 1e-320, 5e-324}) {
    CAPTURE(tiny);
    v1::BernoulliMixtureSpec spec;
    spec.add_weights(tiny);
    spec.add_weights(1.0 - tiny);
    spec.mutable_probabilities()->set_rows(2);
    spec.mutable_probabilities()->set_cols(2);
    for (double p : {1.0, 0.5, 0.0, 0.5}) spec.mutable_probabilities()->add_values(p);
    Eigen::MatrixXd x(1, 2);
    x << 1, 1;  // possible under component 0 only
    CHECK(Make(spec)->ExactLogLikelihood(x)(0) ==
          Approx(std::log(tiny) + std::log(0.5)).epsilon(1e-15));
    spec.set_weights(0, 0.5);
    spec.set_weights(1, 0.5);
    spec.mutable_probabilities()->set_values(0, tiny);
    CHECK(Make(spec)->ExactLogLikelihood(x)(0) ==
          Approx(std::log(0.5) + std::log(tiny) + std::log(0.5)).epsilon(1e-15));
  }
}

// EXACT takes rows in blocks (4 at a time, the components' sums side by side): each row's value has
// the bytes it has alone, whatever its place in a block, non-binary rows among them included, and
// equals the closed form summed one component at a time.
TEST_CASE("bernoulli_mixture EXACT of a batch equals each row alone and the closed form") {
  constexpr int kK = 7, kD = 37;
  v1::BernoulliMixtureSpec spec;
  uint64_t state = 12345;
  const auto next = [&state] {  // splitmix64, a uniform in [0, 1)
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
  };
  for (int c = 0; c < kK; ++c) spec.add_weights(1.0 / kK);
  spec.mutable_probabilities()->set_rows(kK);
  spec.mutable_probabilities()->set_cols(kD);
  Eigen::MatrixXd p(kK, kD);
  for (int c = 0; c < kK; ++c) {
    for (int j = 0; j < kD; ++j) {
      p(c, j) = 0.02 + 0.96 * next();
      spec.mutable_probabilities()->add_values(p(c, j));
    }
  }
  const auto model = Make(spec);
  Eigen::MatrixXd x(11, kD);
  for (int i = 0; i < x.rows(); ++i) {
    for (int j = 0; j < kD; ++j) x(i, j) = next() < 0.5 ? 1.0 : 0.0;
  }
  x(2, 30) = 0.5;                                      // not binary: p = 0
  x(5, 0) = std::numeric_limits<double>::quiet_NaN();  // nor is NaN
  x(8, kD - 1) = -1.0;
  const Eigen::VectorXd all = testing::ExactOfBlockEqualsEachRowAlone(*model, x);
  for (int i = 0; i < x.rows(); ++i) {
    CAPTURE(i);
    if (i == 2 || i == 5 || i == 8) {
      CHECK(all(i) == -std::numeric_limits<double>::infinity());
      continue;
    }
    double max = -std::numeric_limits<double>::infinity(), terms[kK];
    for (int c = 0; c < kK; ++c) {
      terms[c] = std::log(1.0 / kK);
      for (int j = 0; j < kD; ++j) {
        terms[c] += x(i, j) == 1.0 ? std::log(p(c, j)) : std::log1p(-p(c, j));
      }
      max = std::max(max, terms[c]);
    }
    double sum = 0.0;
    for (double t : terms) sum += std::exp(t - max);
    CHECK(all(i) == Approx(max + std::log(sum)).epsilon(1e-13));
  }
}

TEST_CASE("bernoulli_mixture latent view and sampling") {
  const auto model = Make(ModelD());
  Eigen::MatrixXd x(3, 6);
  x << 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1;
  testing::CheckExactPosteriorIdentity(*model, x, 1e-12);
  testing::CheckSampleDeterminism(*model, 7);
  RowMatrixXd s(2000, 6), latents;
  model->Sample(3, 0, s, &latents);
  CHECK(((s.array() == 0) || (s.array() == 1)).all());
  // Per-component means near mu.
  for (int k = 0; k < 2; ++k) {
    Eigen::RowVectorXd sum = Eigen::RowVectorXd::Zero(6);
    int count = 0;
    for (int i = 0; i < 2000; ++i) {
      if (latents(i, 0) == k) {
        sum += s.row(i);
        ++count;
      }
    }
    for (int d = 0; d < 6; ++d) {
      CHECK(std::abs(sum(d) / count - (0.5 + 0.4 * std::sin((k + 1) * (d + 1)))) < 0.06);
    }
  }
}

TEST_CASE("bernoulli_mixture validation and EM") {
  auto expect_invalid = [](const v1::BernoulliMixtureSpec& spec, const std::string& mention) {
    const absl::Status status = BernoulliMixtureModel::Create(spec).status();
    CAPTURE(status.ToString(), mention);
    CHECK(absl::IsInvalidArgument(status));
    CHECK_THAT(std::string(status.message()), Catch::Contains(mention));
  };
  auto spec = ModelD();
  spec.mutable_probabilities()->set_values(4, 1.2);
  expect_invalid(spec, "[0, 1]");
  spec = ModelD();
  spec.mutable_probabilities()->set_values(4, NAN);
  expect_invalid(spec, "probabilities");
  spec = ModelD();
  spec.set_weights(1, 0.5);
  expect_invalid(spec, "sum to 1");
  spec = ModelD();
  spec.mutable_probabilities()->set_rows(3);
  expect_invalid(spec, "probabilities");

  const auto truth = Make(ModelD());
  RowMatrixXd rows(3000, 6);
  truth->Sample(11, 0, rows, nullptr);
  v1::FitConfig config;
  config.mutable_bernoulli_mixture()->set_n_components(2);
  config.mutable_bernoulli_mixture()->set_tol(1e-9);
  config.mutable_bernoulli_mixture()->set_max_iter(1000);
  const Family family = BernoulliMixtureFamily();
  auto fitter = family.make_fitter(config, 5);
  REQUIRE(fitter.ok());
  REQUIRE((*fitter)->AddRows(rows.topRows(1000), 0).ok());
  REQUIRE((*fitter)->AddRows(rows.bottomRows(2000), 1000).ok());
  auto fit = (*fitter)->Finish(exec::StopToken());
  REQUIRE(fit.ok());
  CHECK(fit->trace.converged());
  for (int i = 1; i < fit->trace.log_likelihood_size(); ++i) {
    CHECK(fit->trace.log_likelihood(i) >= fit->trace.log_likelihood(i - 1) - 1e-9);
  }
  const auto fitted = Make(fit->spec.bernoulli_mixture());
  CHECK(fitted->ExactLogLikelihood(rows).mean() >= truth->ExactLogLikelihood(rows).mean() - 1e-3);

  auto binary = family.make_fitter(config, 5);
  Eigen::MatrixXd bad = rows.topRows(3);
  bad(2, 4) = 0.5;
  const absl::Status not_binary = (*binary)->AddRows(bad, 40);
  CHECK(absl::IsInvalidArgument(not_binary));
  CHECK_THAT(std::string(not_binary.message()), Catch::Contains("row 42"));
  config.mutable_bernoulli_mixture()->set_n_components(4);
  auto few = family.make_fitter(config, 5);
  REQUIRE((*few)->AddRows(rows.topRows(3), 0).ok());
  CHECK(absl::IsInvalidArgument((*few)->Finish(exec::StopToken()).status()));
  config.mutable_bernoulli_mixture()->set_min_probability(0.5);
  CHECK(absl::IsInvalidArgument(family.make_fitter(config, 5).status()));
}

}  // namespace
}  // namespace maas::generative
