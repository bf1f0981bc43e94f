// The uniform family: validation, closed-form density, sampler determinism and maximum-likelihood
// fit.
#include "services/generative/core/uniform.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

namespace maas::generative {
namespace {

v1::UniformSpec Box(std::initializer_list<double> low, std::initializer_list<double> high) {
  v1::UniformSpec spec;
  for (double v : low) spec.add_low(v);
  for (double v : high) spec.add_high(v);
  return spec;
}

TEST_CASE("uniform rejects invalid boxes with a reason") {
  CHECK(absl::IsInvalidArgument(UniformModel::Create(Box({}, {})).status()));
  CHECK(absl::IsInvalidArgument(UniformModel::Create(Box({0, 0}, {1})).status()));
  CHECK(absl::IsInvalidArgument(UniformModel::Create(Box({0}, {0})).status()));
  CHECK(absl::IsInvalidArgument(UniformModel::Create(Box({1}, {0})).status()));
  CHECK(absl::IsInvalidArgument(UniformModel::Create(Box({std::nan("")}, {1})).status()));
  CHECK(absl::IsInvalidArgument(UniformModel::Create(Box({0}, {INFINITY})).status()));
  CHECK(absl::IsInvalidArgument(UniformModel::Create(Box({-1.7e308}, {1.7e308})).status()));
  auto status = UniformModel::Create(Box({0, 2}, {1, 2})).status();
  CHECK_THAT(std::string(status.message()), Catch::Contains("dimension 1"));
}

TEST_CASE("uniform exact log density is -log(volume) inside, -inf outside, boundaries inside") {
  auto model = UniformModel::Create(Box({-1, 0, 2}, {1, 0.5, 5})).value();
  const double expected = -(std::log(2.0) + std::log(0.5) + std::log(3.0));
  Eigen::MatrixXd x(5, 3);
  x << 0, 0.25, 3,         // inside
      -1, 0, 2,            // lower corner
      1, 0.5, 5,           // upper corner
      1.0000001, 0.25, 3,  // just outside
      0, -1e-300, 3;       // just outside
  const Eigen::VectorXd lp = model->ExactLogLikelihood(x);
  CHECK(lp(0) == Approx(expected).epsilon(1e-15));
  CHECK(lp(1) == Approx(expected).epsilon(1e-15));
  CHECK(lp(2) == Approx(expected).epsilon(1e-15));
  CHECK(lp(3) == -std::numeric_limits<double>::infinity());
  CHECK(lp(4) == -std::numeric_limits<double>::infinity());
}

// The 2026-12-06 generative hunt: a box of volume 1 answered log p = -0.0 (EXACT and the fit
// trace), which clients print as "-0".
TEST_CASE("uniform log density of a box of volume 1 is +0") {
  for (const v1::UniformSpec& box : {Box({0, 0}, {1, 1}), Box({-1, 0}, {1, 0.5})}) {
    auto model = UniformModel::Create(box).value();
    Eigen::MatrixXd x(1, 2);
    x << 0.25, 0.25;
    const double lp = model->ExactLogLikelihood(x)(0);
    CHECK(lp == 0.0);
    CHECK_FALSE(std::signbit(lp));
  }
  // The fit's trace: -log(volume) of the fitted box [3, 4].
  const Family family = UniformFamily();
  auto fitter = family.make_fitter(v1::FitConfig(), 1);
  REQUIRE(fitter.ok());
  Eigen::MatrixXd rows(2, 1);
  rows << 3.0, 4.0;
  REQUIRE((*fitter)->AddRows(rows, 0).ok());
  auto fit = (*fitter)->Finish(exec::StopToken());
  REQUIRE(fit.ok());
  CHECK(fit->trace.log_likelihood(0) == 0.0);
  CHECK_FALSE(std::signbit(fit->trace.log_likelihood(0)));
}

// The 2026-12-06 generative hunt: a box 1e-310 wide (subnormal) had log p = 708.4 (Eigen's
// vectorized log truncates to 2.2e-308) where -log(1e-310) = 713.8, and its fit trace said 713.8.
TEST_CASE("uniform log density of a box of subnormal width is exact") {
  for (double width : {1e-300, 1e-310, 5e-324}) {
    CAPTURE(width);
    auto model = UniformModel::Create(Box({0, 0}, {width, 1})).value();
    Eigen::MatrixXd x(1, 2);
    x << 0, 0.5;
    CHECK(model->ExactLogLikelihood(x)(0) == Approx(-std::log(width)).epsilon(1e-15));
  }
}

TEST_CASE("uniform upper face is inside even where low + (high - low) rounds below high") {
  const double low = -5.506069837315632, high = 1.9995038210449867;
  REQUIRE(low + (high - low) < high);  // the case: the recomputed bound is one ulp short
  auto model = UniformModel::Create(Box({low}, {high})).value();
  Eigen::MatrixXd x(2, 1);
  x << high, low;
  const Eigen::VectorXd lp = model->ExactLogLikelihood(x);
  CHECK(lp(0) == -std::log(high - low));
  CHECK(lp(1) == -std::log(high - low));
  CHECK(model->ExactLogLikelihood(Eigen::MatrixXd::Constant(1, 1, std::nextafter(high, 2.0)))(0) ==
        -std::numeric_limits<double>::infinity());

  // A fitted box scores every training row, its per-dimension maxima included, finitely.
  Eigen::MatrixXd rows(300, 3);
  for (Eigen::Index i = 0; i < rows.rows(); ++i) {
    for (Eigen::Index j = 0; j < rows.cols(); ++j) {
      rows(i, j) =
          9.2 * std::sin(1.7 * static_cast<double>(i) + 0.9 * static_cast<double>(j)) - 2.2;
    }
  }
  UniformFitter fitter;
  REQUIRE(fitter.AddRows(rows).ok());
  const v1::UniformSpec spec = fitter.Finish().value();
  bool rounds_short = false;
  for (int d = 0; d < 3; ++d) {
    rounds_short = rounds_short || spec.low(d) + (spec.high(d) - spec.low(d)) < spec.high(d);
  }
  REQUIRE(rounds_short);  // the data exercise the case
  auto fitted = UniformModel::Create(spec).value();
  const Eigen::VectorXd scores = fitted->ExactLogLikelihood(rows);
  CHECK(scores.allFinite());
}

TEST_CASE("uniform samples are a pure function of (seed, index)") {
  auto model = UniformModel::Create(Box({-1, 10}, {1, 20})).value();
  RowMatrixXd whole(100, 2);
  model->Sample(42, 0, whole, nullptr);
  // Any split into calls gives the same rows.
  RowMatrixXd a(37, 2), b(63, 2);
  model->Sample(42, 0, a, nullptr);
  model->Sample(42, 37, b, nullptr);
  CHECK(whole.topRows(37) == a);
  CHECK(whole.bottomRows(63) == b);
  // Another seed gives other rows.
  RowMatrixXd other(100, 2);
  model->Sample(43, 0, other, nullptr);
  CHECK((other.array() != whole.array()).all());
  // Rows are distinct (no index collisions).
  for (int i = 1; i < 100; ++i) CHECK(whole(i, 0) != whole(i - 1, 0));
}

TEST_CASE("uniform samples fill the box with the right moments") {
  auto model = UniformModel::Create(Box({-1, 10}, {1, 20})).value();
  const int n = 200000;
  RowMatrixXd x(n, 2);
  model->Sample(7, 0, x, nullptr);
  CHECK(x.col(0).minCoeff() > -1);
  CHECK(x.col(0).maxCoeff() < 1);
  CHECK(x.col(1).minCoeff() > 10);
  CHECK(x.col(1).maxCoeff() < 20);
  // Mean within 5 standard errors of the centre; variance width^2/12 within 2%.
  const double se0 = 2.0 / std::sqrt(12.0 * n), se1 = 10.0 / std::sqrt(12.0 * n);
  CHECK(std::abs(x.col(0).mean() - 0.0) < 5 * se0);
  CHECK(std::abs(x.col(1).mean() - 15.0) < 5 * se1);
  const double var1 = (x.col(1).array() - x.col(1).mean()).square().mean();
  CHECK(var1 == Approx(100.0 / 12.0).epsilon(0.02));
}

TEST_CASE("uniform fit is the per-dimension min and max over all chunks") {
  UniformFitter fitter;
  Eigen::MatrixXd a(2, 2), b(3, 2);
  a << 1, 5, 2, -3;
  b << 0.5, 4, 1.5, 9, 1, 0;
  REQUIRE(fitter.AddRows(a).ok());
  REQUIRE(fitter.AddRows(b).ok());
  auto spec = fitter.Finish().value();
  CHECK(spec.low(0) == 0.5);
  CHECK(spec.high(0) == 2);
  CHECK(spec.low(1) == -3);
  CHECK(spec.high(1) == 9);
  CHECK(fitter.num_rows() == 5);

  Eigen::MatrixXd wrong(1, 3);
  wrong << 1, 2, 3;
  CHECK(absl::IsInvalidArgument(fitter.AddRows(wrong)));
}

TEST_CASE("uniform fit refuses no rows and constant dimensions") {
  UniformFitter empty;
  CHECK(absl::IsInvalidArgument(empty.Finish().status()));
  UniformFitter constant;
  Eigen::MatrixXd rows(3, 2);
  rows << 1, 7, 2, 7, 3, 7;
  REQUIRE(constant.AddRows(rows).ok());
  auto status = constant.Finish().status();
  CHECK(absl::IsFailedPrecondition(status));
  CHECK_THAT(std::string(status.message()), Catch::Contains("dimension 1"));
}

}  // namespace
}  // namespace maas::generative
