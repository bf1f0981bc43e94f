// LogAddExp, LogSumExp and LogMeanExp: direct formulas on moderate values and every documented edge
// case.
#include "common/math/log_sum_exp.h"

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

namespace maas::math {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::nan("");

TEST_CASE("LogSumExp equals log(sum(exp)) on moderate values") {
  const std::vector<double> values = {0.5, -1.2, 3.0, 0.0, -7.25};
  double direct = 0.0;
  for (double v : values) direct += std::exp(v);
  CHECK(LogSumExp(values) == Approx(std::log(direct)).epsilon(1e-15));
  Eigen::VectorXd vector = Eigen::Map<const Eigen::VectorXd>(values.data(), 5);
  CHECK(LogSumExp(vector) == Approx(std::log(direct)).epsilon(1e-15));
  CHECK(LogMeanExp(values) == Approx(std::log(direct / 5)).epsilon(1e-15));
  CHECK(LogMeanExp(vector) == Approx(std::log(direct / 5)).epsilon(1e-15));
  CHECK(LogSumExp({2.0}) == 2.0);
}

TEST_CASE("LogSumExp accepts Eigen expressions, spans and containers") {
  Eigen::MatrixXd m(2, 3);
  m << 0.0, 1.0, 2.0, 3.0, 4.0, 5.0;
  const double row1 = std::log(std::exp(3.0) + std::exp(4.0) + std::exp(5.0));
  CHECK(LogSumExp(m.row(1)) == Approx(row1).epsilon(1e-15));  // A row (strided): copied.
  CHECK(LogSumExp(m.col(2)) == Approx(std::log(std::exp(2.0) + std::exp(5.0))).epsilon(1e-15));
  CHECK(LogSumExp(2.0 * m.col(0)) == Approx(std::log(1.0 + std::exp(6.0))).epsilon(1e-15));
  const double array[] = {0.0, 0.0};
  CHECK(LogSumExp(absl::MakeConstSpan(array)) == Approx(std::log(2.0)).epsilon(1e-15));
  CHECK(LogMeanExp(array) == 0.0);
}

TEST_CASE("LogSumExp edge cases") {
  CHECK(LogSumExp(std::vector<double>{}) == -kInf);
  CHECK(LogSumExp(Eigen::VectorXd(0)) == -kInf);
  CHECK(LogSumExp({-kInf, -kInf}) == -kInf);
  CHECK(LogSumExp({-kInf, 1.0}) == 1.0);
  CHECK(LogSumExp({kInf, 1.0}) == kInf);
  CHECK(LogSumExp({kInf, -kInf}) == kInf);
  CHECK(std::isnan(LogSumExp({1.0, kNaN})));
  CHECK(std::isnan(LogSumExp({kInf, kNaN})));
  CHECK(std::isnan(LogSumExp({kNaN, -kInf})));
  // Huge and tiny finite values: no overflow, no underflow, no lost precision.
  CHECK(LogSumExp({1000.0, 1000.0}) == Approx(1000.0 + std::log(2.0)).epsilon(1e-15));
  CHECK(LogSumExp({-1000.0, -1000.0}) == Approx(-1000.0 + std::log(2.0)).epsilon(1e-15));
  CHECK(LogSumExp({1e308, 1e308}) == 1e308);
  CHECK(LogSumExp({1e308, -1e308}) == 1e308);
  CHECK(LogSumExp({-1e308, -1e308}) == -1e308);
  CHECK(LogSumExp({710.0, 0.0}) == Approx(710.0).epsilon(1e-15));  // exp(710) overflows.
}

TEST_CASE("LogMeanExp edge cases") {
  CHECK(std::isnan(LogMeanExp(std::vector<double>{})));
  CHECK(std::isnan(LogMeanExp(Eigen::VectorXd(0))));
  CHECK(LogMeanExp({-kInf, -kInf}) == -kInf);
  CHECK(LogMeanExp({kInf, 0.0}) == kInf);
  CHECK(std::isnan(LogMeanExp({kNaN, 0.0})));
  CHECK(LogMeanExp({1000.0, 1000.0, 1000.0}) == Approx(1000.0).epsilon(1e-15));
  CHECK(LogMeanExp({0.0, std::log(3.0)}) == Approx(std::log(2.0)).epsilon(1e-15));
}

TEST_CASE("LogAddExp") {
  CHECK(LogAddExp(0.0, 0.0) == Approx(std::log(2.0)).epsilon(1e-15));
  CHECK(LogAddExp(std::log(2.0), std::log(5.0)) == Approx(std::log(7.0)).epsilon(1e-15));
  CHECK(LogAddExp(1000.0, 1000.0) == Approx(1000.0 + std::log(2.0)).epsilon(1e-15));
  CHECK(LogAddExp(-kInf, -kInf) == -kInf);
  CHECK(LogAddExp(-kInf, 3.0) == 3.0);
  CHECK(LogAddExp(3.0, -kInf) == 3.0);
  CHECK(LogAddExp(kInf, -kInf) == kInf);
  CHECK(LogAddExp(kInf, kInf) == kInf);
  CHECK(std::isnan(LogAddExp(kNaN, 1.0)));
  CHECK(std::isnan(LogAddExp(kInf, kNaN)));
}

}  // namespace
}  // namespace maas::math
