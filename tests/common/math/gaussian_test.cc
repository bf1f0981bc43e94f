// GaussianDensity and DiagonalGaussianDensity against independent closed forms (1-D formula,
// explicit 2x2 inverse and determinant, LU inverse and determinant) and the scikit-learn oracle
// values of the reference notes, section 2.1 (models A, B, C).
#include "common/math/gaussian.h"

#include <Eigen/Core>
#include <Eigen/LU>
#include <catch2/catch.hpp>
#include <cmath>
#include <string>

#include "absl/status/status.h"
#include "common/math/log_sum_exp.h"

namespace maas::math {
namespace {

const double kPi = std::acos(-1.0);

Eigen::MatrixXd Rows(std::initializer_list<std::initializer_list<double>> rows) {
  Eigen::MatrixXd m(rows.size(), rows.begin()->size());
  int r = 0;
  for (const auto& row : rows) {
    int c = 0;
    for (double v : row) m(r, c++) = v;
    ++r;
  }
  return m;
}

TEST_CASE("1-D density matches the scalar formula") {
  const double mu = 1.5, variance = 0.36;
  const auto density = GaussianDensity::Create(Eigen::VectorXd::Constant(1, mu),
                                               Eigen::MatrixXd::Constant(1, 1, variance));
  REQUIRE(density.ok());
  const auto diagonal = DiagonalGaussianDensity::Create(Eigen::VectorXd::Constant(1, mu),
                                                        Eigen::VectorXd::Constant(1, variance));
  REQUIRE(diagonal.ok());
  Eigen::MatrixXd x(5, 1);
  x << -3.0, 0.0, 1.5, 2.1, 40.0;
  const Eigen::VectorXd full_values = density->LogDensity(x);
  const Eigen::VectorXd diagonal_values = diagonal->LogDensity(x);
  REQUIRE(full_values.size() == 5);
  for (int i = 0; i < 5; ++i) {
    const double d = x(i, 0) - mu;
    const double expected = -0.5 * std::log(2 * kPi * variance) - d * d / (2 * variance);
    CHECK(full_values[i] == Approx(expected).epsilon(1e-14));
    CHECK(diagonal_values[i] == Approx(expected).epsilon(1e-14));
  }
}

TEST_CASE("2-D density matches the explicit inverse and determinant") {
  const double a = 2.0, b = -0.7, c = 0.5;  // Sigma = [[a, b], [b, c]]
  const double det = a * c - b * b;
  Eigen::Vector2d mu(0.3, -1.0);
  const auto density = GaussianDensity::Create(mu, Rows({{a, b}, {b, c}}));
  REQUIRE(density.ok());
  CHECK(density->dim() == 2);
  CHECK(density->log_det_covariance() == Approx(std::log(det)).epsilon(1e-14));
  const Eigen::MatrixXd x = Rows({{0.0, 0.0}, {0.3, -1.0}, {1.0, 2.0}, {-4.0, 3.5}});
  const Eigen::VectorXd values = density->LogDensity(x);
  for (int i = 0; i < x.rows(); ++i) {
    const double dx = x(i, 0) - mu[0], dy = x(i, 1) - mu[1];
    const double quad = (c * dx * dx - 2 * b * dx * dy + a * dy * dy) / det;
    CHECK(values[i] ==
          Approx(-std::log(2 * kPi) - 0.5 * std::log(det) - 0.5 * quad).epsilon(1e-13));
  }
}

TEST_CASE("4-D density matches the LU inverse and determinant, row by row") {
  Eigen::MatrixXd a(4, 4);
  a << 1.0, 0.2, -0.3, 0.0, 0.5, 1.5, 0.1, -0.2, 0.0, 0.3, 0.9, 0.4, -0.6, 0.0, 0.2, 1.1;
  const Eigen::MatrixXd sigma = a * a.transpose() + 0.1 * Eigen::MatrixXd::Identity(4, 4);
  Eigen::Vector4d mu(0.1, -0.2, 0.3, 2.0);
  const auto density = GaussianDensity::Create(mu, sigma);
  REQUIRE(density.ok());
  const Eigen::MatrixXd inverse = sigma.inverse();  // PartialPivLU: independent of Cholesky.
  const double log_det = std::log(sigma.determinant());
  Eigen::MatrixXd x(6, 4);
  for (int i = 0; i < 6; ++i) {
    for (int j = 0; j < 4; ++j) x(i, j) = std::sin(1.0 + i + 2.0 * j) * (1 + i);
  }
  const Eigen::VectorXd values = density->LogDensity(x);
  for (int i = 0; i < 6; ++i) {
    const Eigen::Vector4d d = x.row(i).transpose() - mu;
    const double expected = -0.5 * (4 * std::log(2 * kPi) + log_det + d.dot(inverse * d));
    CHECK(values[i] == Approx(expected).epsilon(1e-12));
    // The batch equals one-row calls.
    CHECK(density->LogDensity(x.row(i))[0] == Approx(values[i]).epsilon(1e-14));
  }
  CHECK(density->LogDensity(Eigen::MatrixXd(0, 4)).size() == 0);
}

TEST_CASE("Diagonal fast path equals the full density with a diagonal covariance") {
  Eigen::VectorXd mu(3), var(3);
  mu << 1.0, -2.0, 0.5;
  var << 0.04, 3.0, 1.0;
  const auto diagonal = DiagonalGaussianDensity::Create(mu, var);
  const auto full = GaussianDensity::Create(mu, var.asDiagonal().toDenseMatrix());
  REQUIRE(diagonal.ok());
  REQUIRE(full.ok());
  const Eigen::MatrixXd x = Rows({{0.0, 0.0, 0.0}, {1.0, -2.0, 0.5}, {3.0, 7.0, -9.0}});
  const Eigen::VectorXd a = diagonal->LogDensity(x);
  const Eigen::VectorXd b = full->LogDensity(x);
  for (int i = 0; i < 3; ++i) {
    double expected = 0.0;
    for (int j = 0; j < 3; ++j) {
      const double d = x(i, j) - mu[j];
      expected += -0.5 * std::log(2 * kPi * var[j]) - d * d / (2 * var[j]);
    }
    CHECK(a[i] == Approx(expected).epsilon(1e-14));
    CHECK(b[i] == Approx(expected).epsilon(1e-14));
  }
}

TEST_CASE("Model C (GMM, K=3, D=2): mixture log-density equals the scikit-learn oracle") {
  const double log_weights[] = {std::log(0.5), std::log(0.3), std::log(0.2)};
  const Eigen::Vector2d means[] = {{0.0, 0.0}, {3.0, 1.0}, {-2.0, 2.5}};
  const Eigen::MatrixXd covariances[] = {Rows({{1.0, 0.3}, {0.3, 0.5}}),
                                         Rows({{0.6, -0.2}, {-0.2, 1.2}}),
                                         Rows({{2.0, 0.0}, {0.0, 0.3}})};
  const Eigen::MatrixXd x = Rows({{1.0, 0.5}});
  Eigen::VectorXd terms(3);
  for (int k = 0; k < 3; ++k) {
    const auto density = GaussianDensity::Create(means[k], covariances[k]);
    REQUIRE(density.ok());
    terms[k] = log_weights[k] + density->LogDensity(x)[0];
  }
  CHECK(LogSumExp(terms) == Approx(-2.618270574166).margin(1e-9));
}

// Model A (PPCA) and B (factor analysis), reference section 2.1: N(mu, W W^T + noise).
Eigen::MatrixXd ModelW() {
  Eigen::MatrixXd w(5, 2);
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 2; ++j) w(i, j) = std::sin(0.7 * (i + 1) * (j + 1));
  }
  return w;
}

TEST_CASE("Models A (PPCA) and B (FA): marginal log-density equals the scikit-learn oracle") {
  const Eigen::MatrixXd w = ModelW();
  Eigen::VectorXd mu(5), psi(5);
  Eigen::MatrixXd x(1, 5);
  for (int i = 0; i < 5; ++i) {
    mu[i] = 0.1 * (i + 1) - 0.3;
    x(0, i) = std::cos(1.3 * (i + 1));
    psi[i] = 0.1 + 0.05 * i;
  }
  const Eigen::MatrixXd wwt = w * w.transpose();
  const auto ppca = GaussianDensity::Create(mu, wwt + 0.25 * Eigen::MatrixXd::Identity(5, 5));
  const auto fa = GaussianDensity::Create(mu, wwt + Eigen::MatrixXd(psi.asDiagonal()));
  REQUIRE(ppca.ok());
  REQUIRE(fa.ok());
  CHECK(ppca->LogDensity(x)[0] == Approx(-5.801951563756).margin(1e-9));
  CHECK(fa->LogDensity(x)[0] == Approx(-6.105376530445).margin(1e-9));
}

void CheckInvalid(const absl::Status& status, const std::string& fragment) {
  INFO(status.ToString());
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(status.message()).find(fragment) != std::string::npos);
}

TEST_CASE("GaussianDensity::Create rejects bad parameters with a clear message") {
  const Eigen::Vector2d mu(0.0, 0.0);
  CheckInvalid(GaussianDensity::Create(Eigen::VectorXd(0), Eigen::MatrixXd(0, 0)).status(),
               "mean must not be empty");
  CheckInvalid(GaussianDensity::Create(mu, Eigen::MatrixXd::Identity(3, 3)).status(),
               "covariance must be 2x2");
  CheckInvalid(GaussianDensity::Create(mu, Eigen::MatrixXd::Identity(2, 3)).status(), "got 2x3");
  CheckInvalid(GaussianDensity::Create(mu, Rows({{1.0, 0.5}, {0.4, 1.0}})).status(),
               "not symmetric");
  CheckInvalid(GaussianDensity::Create(mu, Rows({{1.0, 2.0}, {2.0, 1.0}})).status(),
               "not positive definite");
  CheckInvalid(GaussianDensity::Create(mu, Eigen::MatrixXd::Zero(2, 2)).status(),
               "not positive definite");
  CheckInvalid(GaussianDensity::Create(mu, Rows({{1.0, 0.0}, {0.0, 0.0}})).status(),
               "not positive definite");
  CheckInvalid(GaussianDensity::Create(mu, Rows({{1.0, 0.0}, {0.0, std::nan("")}})).status(),
               "not finite");
  CheckInvalid(
      GaussianDensity::Create(Eigen::Vector2d(HUGE_VAL, 0.0), Eigen::MatrixXd::Identity(2, 2))
          .status(),
      "mean[0]");
  // Symmetric up to rounding is accepted; tiny positive definite scales are accepted.
  CHECK(GaussianDensity::Create(mu, Rows({{1.0, 0.1 + 1e-15}, {0.1, 1.0}})).ok());
  CHECK(GaussianDensity::Create(mu, 1e-200 * Eigen::MatrixXd::Identity(2, 2)).ok());
}

TEST_CASE("DiagonalGaussianDensity takes the logarithm of subnormal variances exactly") {
  // Eigen's vectorized log() treats a subnormal input as the smallest normal double (2.2e-308):
  // a variance of 1e-310 gave log det -708.4 instead of -713.8. The closed form at the mean:
  // -0.5 (D log 2 pi + sum log variances), with std::log.
  const Eigen::Vector4d variances(1e-310, 4.9e-324, 2.5, 1e-300);
  const Eigen::Vector4d mean(0.0, 0.0, 1.0, -2.0);
  const auto density = DiagonalGaussianDensity::Create(mean, variances);
  REQUIRE(density.ok());
  double log_det = 0.0;
  for (int i = 0; i < 4; ++i) log_det += std::log(variances[i]);
  const double want = -0.5 * (4.0 * std::log(2.0 * kPi) + log_det);
  const Eigen::VectorXd got = density->LogDensity(mean.transpose());
  CHECK(got[0] == Approx(want).epsilon(1e-14));
}

TEST_CASE("DiagonalGaussianDensity::Create rejects bad parameters with a clear message") {
  const Eigen::Vector2d mu(0.0, 0.0);
  CheckInvalid(DiagonalGaussianDensity::Create(mu, Eigen::Vector3d(1, 1, 1)).status(),
               "variances has size 3");
  CheckInvalid(DiagonalGaussianDensity::Create(mu, Eigen::Vector2d(1.0, 0.0)).status(),
               "variances[1]");
  CheckInvalid(DiagonalGaussianDensity::Create(mu, Eigen::Vector2d(-1.0, 1.0)).status(),
               "positive and finite");
  CheckInvalid(DiagonalGaussianDensity::Create(mu, Eigen::Vector2d(HUGE_VAL, 1.0)).status(),
               "positive and finite");
  CheckInvalid(DiagonalGaussianDensity::Create(Eigen::VectorXd(0), Eigen::VectorXd(0)).status(),
               "mean must not be empty");
}

}  // namespace
}  // namespace maas::math
