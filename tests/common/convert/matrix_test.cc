// Matrix <-> Eigen conversions (common/convert/matrix.h): every value lands where row-major says,
// at every shape around the 8-row blocks, and the first non-finite value is the one named, around
// the 1 024-value screening chunks.
#include "common/convert/matrix.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>

namespace maas::convert {
namespace {

common::v1::Matrix Numbered(uint32_t rows, uint32_t cols) {
  common::v1::Matrix m;
  m.set_rows(rows);
  m.set_cols(cols);
  for (uint64_t i = 0; i < uint64_t{rows} * cols; ++i)
    m.add_values(0.5 * static_cast<double>(i) - 7);
  return m;
}

TEST_CASE("MatrixFromProto puts each row-major value at its row and column") {
  for (const uint32_t rows : {0u, 1u, 7u, 8u, 9u, 17u, 64u, 131u}) {
    for (const uint32_t cols : {1u, 3u, 8u, 13u}) {
      CAPTURE(rows, cols);
      const common::v1::Matrix m = Numbered(rows, cols);
      const absl::StatusOr<Eigen::MatrixXd> x = MatrixFromProto(m, "x");
      REQUIRE(x.ok());
      REQUIRE(x->rows() == rows);
      REQUIRE(x->cols() == cols);
      bool all = true;
      for (uint32_t r = 0; r < rows; ++r) {
        for (uint32_t c = 0; c < cols; ++c) all = all && (*x)(r, c) == m.values(r * cols + c);
      }
      CHECK(all);
      common::v1::Matrix back;
      MatrixToProto(*x, &back);
      CHECK(back.SerializeAsString() == m.SerializeAsString());
    }
  }
}

TEST_CASE("MatrixFromProto names the first value that is not finite, in row-major order") {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // 300 x 7 = 2 100 values: chunk boundaries at 1 024 and 2 048.
  for (const int at : {0, 1, 1023, 1024, 1025, 2047, 2048, 2099}) {
    for (const double bad : {inf, -inf, nan}) {
      CAPTURE(at, bad);
      common::v1::Matrix m = Numbered(300, 7);
      m.set_values(at, bad);
      if (at + 500 < m.values_size()) m.set_values(at + 500, nan);  // a later one is not named
      const absl::StatusOr<Eigen::MatrixXd> x = MatrixFromProto(m, "rows");
      REQUIRE(x.status().code() == absl::StatusCode::kInvalidArgument);
      const std::string expected = "rows: value at row " + std::to_string(at / 7) + ", column " +
                                   std::to_string(at % 7) + " is ";
      CHECK(std::string(x.status().message()).rfind(expected, 0) == 0);
      CHECK_THAT(std::string(x.status().message()), Catch::Contains("only finite numbers"));
      // Not required finite: taken as they are.
      const absl::StatusOr<Eigen::MatrixXd> kept = MatrixFromProto(m, "rows", false);
      REQUIRE(kept.ok());
      const double got = (*kept)(at / 7, at % 7);
      CHECK((std::isnan(bad) ? std::isnan(got) : got == bad));
    }
  }
  // The largest finite values and subnormals are finite.
  common::v1::Matrix m = Numbered(2, 2);
  m.set_values(0, std::numeric_limits<double>::max());
  m.set_values(1, -std::numeric_limits<double>::max());
  m.set_values(2, std::numeric_limits<double>::denorm_min());
  CHECK(MatrixFromProto(m, "x").ok());
}

TEST_CASE("MatrixFromProto refuses a value count that is not rows x cols") {
  common::v1::Matrix m = Numbered(3, 4);
  m.add_values(1.0);
  const absl::StatusOr<Eigen::MatrixXd> x = MatrixFromProto(m, "x");
  CHECK(x.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(x.status().message()), Catch::Contains("a 3 x 4 matrix needs 12 values"));
}

}  // namespace
}  // namespace maas::convert
