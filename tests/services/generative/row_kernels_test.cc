// The densities' SIMD row kernels (row_kernels_simd.h): at every SIMD level this CPU has, each
// output has the bits of the plain loop written out here, one element and one operation at a
// time. This file is compiled with -ffp-contract=off (CMakeLists.txt): the reference loops must
// round every product and sum apart, as the kernels do.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/random/item_rng.h"
#include "common/random/simd_level.h"
#include "services/generative/core/row_kernels_simd.h"

namespace maas::generative::rows {
namespace {

bool SameBits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

std::vector<double> Normals(uint64_t stream, int64_t count, double scale) {
  random::ItemRng rng(20261206, stream, 0);
  std::vector<double> v(static_cast<size_t>(count));
  for (double& x : v) x = scale * rng.Normal();
  return v;
}

TEST_CASE("the across kernels give each row the bits of its own sequential loop at every level") {
  // Lengths below, at and past the kernels' chunk of 128 coordinates, none a multiple of a width.
  for (const int64_t n : {int64_t{1}, int64_t{7}, int64_t{128}, int64_t{301}}) {
    const int64_t count = 5;
    CAPTURE(n);
    const std::vector<double> a = Normals(1, count * n, 1.0);
    std::vector<double> across = Normals(2, n * kAcross, 3.0);
    across[3] = 1e300;  // a product that overflows, and a NaN, stay in their own lanes
    across[kAcross + 5] = std::nan("");
    std::vector<double> dot_expected(static_cast<size_t>(count * kAcross));
    for (int64_t k = 0; k < count; ++k) {
      for (int64_t t = 0; t < kAcross; ++t) {
        double s = 0.0;
        for (int64_t i = 0; i < n; ++i) s += a[k * n + i] * across[i * kAcross + t];
        dot_expected[k * kAcross + t] = s;
      }
    }
    // out(j, t) += sum_i a(j, i) v(i, t) with a column-major n x count, v count x kAcross.
    const std::vector<double> v = Normals(3, count * kAcross, 2.0);
    const std::vector<double> start = Normals(4, n * kAcross, 1.0);
    std::vector<double> add_expected = start;
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t t = 0; t < kAcross; ++t) {
        double o = add_expected[j * kAcross + t];
        for (int64_t i = 0; i < count; ++i) o += a[i * n + j] * v[i * kAcross + t];
        add_expected[j * kAcross + t] = o;
      }
    }
    for (const random::SimdLevel level : random::SupportedSimdLevels()) {
      CAPTURE(random::SimdLevelName(level));
      const SimdKernels& kernels = SimdKernelsAt(level);
      std::vector<double> dot(static_cast<size_t>(count * kAcross), -1.0);
      kernels.dot_across(a.data(), n, count, across.data(), n, dot.data());
      CHECK(SameBits(dot, dot_expected));
      std::vector<double> add = start;
      kernels.add_matrix_times_across(a.data(), n, count, v.data(), add.data());
      CHECK(SameBits(add, add_expected));
    }
  }
}

TEST_CASE("forward substitution and scaled squares give the plain loops' bits at every level") {
  for (const int64_t d : {int64_t{1}, int64_t{3}, int64_t{37}}) {
    CAPTURE(d);
    // A lower factor with a positive diagonal (column-major), 3 right-hand sides.
    std::vector<double> lower = Normals(5, d * d, 0.3);
    for (int64_t j = 0; j < d; ++j) {
      for (int64_t i = 0; i < j; ++i) lower[j * d + i] = 0.0;
      lower[j * d + j] = 1.0 + std::abs(lower[j * d + j]);
    }
    const int64_t m = 3;
    const std::vector<double> r0 = Normals(6, m * d, 2.0);
    std::vector<double> r_expected = r0, sums_expected(static_cast<size_t>(m), 0.5);
    for (int64_t b = 0; b < m; ++b) {
      double* r = r_expected.data() + b * d;
      for (int64_t j = 0; j < d; ++j) {
        const double y = r[j] / lower[j * d + j];
        r[j] = y;
        sums_expected[b] = sums_expected[b] + y * y;
        for (int64_t i = j + 1; i < d; ++i) r[i] = r[i] - lower[j * d + i] * y;
      }
    }
    // 8 rows coordinate-major, per-coordinate mean and standard deviation.
    const std::vector<double> xt = Normals(7, d * 8, 4.0);
    const std::vector<double> mean = Normals(8, d, 1.0);
    std::vector<double> stddev = Normals(9, d, 1.0);
    for (double& s : stddev) s = 0.2 + std::abs(s);
    std::vector<double> quad_expected(8, 0.25);
    for (int64_t t = 0; t < 8; ++t) {
      for (int64_t j = 0; j < d; ++j) {
        const double y = (xt[j * 8 + t] - mean[j]) / stddev[j];
        quad_expected[t] = quad_expected[t] + y * y;
      }
    }
    for (const random::SimdLevel level : random::SupportedSimdLevels()) {
      CAPTURE(random::SimdLevelName(level));
      const SimdKernels& kernels = SimdKernelsAt(level);
      std::vector<double> r = r0, sums(static_cast<size_t>(m), 0.5);
      kernels.forward_substitute_squared_norms(lower.data(), d, r.data(), m, sums.data());
      CHECK(SameBits(r, r_expected));
      CHECK(SameBits(sums, sums_expected));
      std::vector<double> quad(8, 0.25);
      kernels.scaled_squares8(xt.data(), mean.data(), stddev.data(), d, quad.data());
      CHECK(SameBits(quad, quad_expected));
    }
  }
}

TEST_CASE("the diagonal EM kernels give each output the bits of its plain loop at every level") {
  // Widths below, at and between vector widths (1, 2, 4, 8 and twice those; 5-7 and 13 leave one
  // vector and a tail past the pairs of vectors), and rows 0, 1, 13.
  for (const int64_t d : {int64_t{1}, int64_t{3}, int64_t{5}, int64_t{6}, int64_t{7}, int64_t{8},
                          int64_t{13}, int64_t{17}, int64_t{64}}) {
    CAPTURE(d);
    const std::vector<double> xt = Normals(10, d * 8, 4.0);
    const std::vector<double> mean = Normals(11, d, 1.0);
    std::vector<double> scale = Normals(12, d, 1.0);
    for (double& s : scale) s = 0.2 + std::abs(s);
    std::vector<double> quad_expected(8, 0.25);
    for (int64_t t = 0; t < 8; ++t) {
      for (int64_t j = 0; j < d; ++j) {
        const double y = (xt[j * 8 + t] - mean[j]) * scale[j];
        quad_expected[t] = quad_expected[t] + y * y;
      }
    }
    for (const int64_t rows : {int64_t{0}, int64_t{1}, int64_t{13}}) {
      CAPTURE(rows);
      std::vector<double> x = Normals(13, rows * d + 1, 3.0);
      if (rows > 0) x[static_cast<size_t>(d - 1)] = 1e200;  // a square that overflows stays there
      const std::vector<double> w = Normals(14, rows + 1, 1.0);
      std::vector<double> out_expected = Normals(15, d, 1.0);
      const std::vector<double> out0 = out_expected;
      for (int64_t j = 0; j < d; ++j) {
        for (int64_t t = 0; t < rows; ++t) {
          const double y = x[t * d + j] - mean[j];
          out_expected[j] = out_expected[j] + w[t] * (y * y);
        }
      }
      for (const random::SimdLevel level : random::SupportedSimdLevels()) {
        CAPTURE(random::SimdLevelName(level));
        const SimdKernels& kernels = SimdKernelsAt(level);
        std::vector<double> quad(8, 0.25);
        kernels.scaled_squares8_by(xt.data(), mean.data(), scale.data(), d, quad.data());
        CHECK(SameBits(quad, quad_expected));
        std::vector<double> out = out0;
        kernels.add_weighted_squares(x.data(), rows, d, w.data(), mean.data(), out.data());
        CHECK(SameBits(out, out_expected));
      }
    }
  }
}

}  // namespace
}  // namespace maas::generative::rows
