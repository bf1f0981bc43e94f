#include "services/discriminative/core/exp_simd.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "common/random/simd_level.h"
#include "services/discriminative/core/numpy_compat.h"

namespace maas::discriminative {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::vector<double> Inputs() {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> x = {0.0,    -0.0,   -1e-300, -1e-17, -1e-9,  -0.34657359,
                           -0.5,   -1.0,   -10.0,   -100.0, -700.0, -708.3964185322641,
                           -708.4, -709.0, -720.0,  -740.0, -744.4, -745.1332191019411,
                           -745.2, -745.5, -746.0,  -800.0, -1e300, -inf};
  std::mt19937_64 rng(23);
  std::uniform_real_distribution<double> wide(-760.0, 0.0), narrow(-2.0, 0.0);
  for (int i = 0; i < 20000; ++i) x.push_back(wide(rng));
  for (int i = 0; i < 20000; ++i) x.push_back(narrow(rng));
  for (int i = 0; i < 2000; ++i) x.push_back(-std::ldexp(1.0, -static_cast<int>(rng() % 1000)));
  return x;
}

TEST_CASE("ExpShifted is within 2 ulps of libm's exp, 1 at 0, 0 far below") {
  const std::vector<double> x = Inputs();
  std::vector<double> got(x.size());
  ExpShiftedWith(random::SimdLevel::kBaseline, x.data(), 0.0, x.size(), got.data());
  const double eps = std::numeric_limits<double>::epsilon();
  const double tiny = std::numeric_limits<double>::denorm_min();
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = std::exp(x[i]);
    INFO("x " << x[i] << " got " << got[i] << " want " << want);
    if (want >= std::numeric_limits<double>::min()) {
      REQUIRE(std::abs(got[i] - want) <= 2 * eps * want);
    } else {  // a subnormal or 0: one rounding at the subnormal spacing
      REQUIRE(std::abs(got[i] - want) <= tiny);
    }
  }
  REQUIRE(got[0] == 1.0);
  REQUIRE(got[1] == 1.0);
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> far = {-746.0, -800.0, -inf};
  std::vector<double> zero(far.size());
  ExpShiftedWith(random::SimdLevel::kBaseline, far.data(), 0.0, far.size(), zero.data());
  for (const double z : zero) REQUIRE(z == 0.0);
}

TEST_CASE("ExpShifted gives the same bits on every SIMD level, any length, in place") {
  const std::vector<double> x = Inputs();
  std::vector<double> want(x.size());
  ExpShiftedWith(random::SimdLevel::kBaseline, x.data(), 0.0, x.size(), want.data());
  for (const random::SimdLevel level : random::SupportedSimdLevels()) {
    INFO("level " << random::SimdLevelName(level));
    for (size_t n = 0; n <= 19; ++n) {  // every tail length of every level
      for (size_t offset = 0; offset + n <= 200; offset += 37) {
        std::vector<double> got(x.begin() + offset, x.begin() + offset + n);
        ExpShiftedWith(level, got.data(), 0.0, n, got.data());
        // (n == 0: got.data() may be null, which memcmp must not be given even for 0 bytes.)
        REQUIRE((n == 0 || std::memcmp(got.data(), want.data() + offset, n * sizeof(double)) == 0));
      }
    }
    std::vector<double> got(x.size());
    ExpShiftedWith(level, x.data(), 0.0, x.size(), got.data());
    REQUIRE(std::memcmp(got.data(), want.data(), x.size() * sizeof(double)) == 0);
  }
  // A shift, subtracted in the lane: the same bits too, and libm's exp(x - shift) within 2 ulps.
  std::vector<double> lifted(x);
  for (double& v : lifted) v += 2.75;
  std::vector<double> shifted(x.size());
  ExpShiftedWith(random::SimdLevel::kBaseline, lifted.data(), 2.75, x.size(), shifted.data());
  for (size_t i = 0; i < x.size(); ++i) {
    const double want_i = std::exp(lifted[i] - 2.75);
    if (want_i >= std::numeric_limits<double>::min()) {
      REQUIRE(std::abs(shifted[i] - want_i) <= 2 * std::numeric_limits<double>::epsilon() * want_i);
    }
  }
  for (const random::SimdLevel level : random::SupportedSimdLevels()) {
    std::vector<double> got(x.size());
    ExpShiftedWith(level, lifted.data(), 2.75, x.size(), got.data());
    REQUIRE(std::memcmp(got.data(), shifted.data(), x.size() * sizeof(double)) == 0);
  }
  std::vector<double> best(x.size());
  ExpShifted(x.data(), 0.0, x.size(), best.data());
  REQUIRE(std::memcmp(best.data(), want.data(), x.size() * sizeof(double)) == 0);
}

TEST_CASE(
    "Softmax subtracts the maximum and divides by the documented sum, the same bits on every "
    "level") {
  std::mt19937_64 rng(29);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (size_t n = 1; n <= 40; ++n) {
    for (int trial = 0; trial < 30; ++trial) {
      std::vector<double> x(n);
      const double spread = std::pow(10.0, static_cast<double>(trial % 4));
      for (double& v : x) v = -400.0 + spread * normal(rng);
      const double shift = *std::max_element(x.begin(), x.end());
      std::vector<double> e(n), want(n);
      ExpShiftedWith(random::SimdLevel::kBaseline, x.data(), shift, n, e.data());
      double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (size_t i = 0; i < n; ++i) a[i % 8] += e[i];
      const double total = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
      for (size_t i = 0; i < n; ++i) want[i] = e[i] / total;
      for (const random::SimdLevel level : random::SupportedSimdLevels()) {
        INFO("level " << random::SimdLevelName(level) << ", n " << n);
        std::vector<double> got(n);
        size_t argmax = n;
        REQUIRE(SoftmaxWith(level, x.data(), n, kInf, got.data(), &argmax));
        REQUIRE(std::memcmp(got.data(), want.data(), n * sizeof(double)) == 0);
        CHECK(argmax == NumpyArgmax(x.data(), n));
        got = x;  // in place
        argmax = n;
        REQUIRE(SoftmaxWith(level, got.data(), n, kInf, got.data(), &argmax));
        REQUIRE(std::memcmp(got.data(), want.data(), n * sizeof(double)) == 0);
        CHECK(argmax == NumpyArgmax(x.data(), n));
      }
    }
  }
}

TEST_CASE("Softmax declines NaN, +inf and all -inf, leaving out untouched, -inf entries give 0") {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<std::vector<double>> declined = {
      {-1.0, nan},
      {nan, -1.0, -2.0},
      {-1.0, inf},
      {-inf, -inf},
      {-inf},
      {-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0, -8.0, -9.0, nan},
      {-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0, -8.0, -9.0, inf},
      std::vector<double>(11, -inf)};
  for (const random::SimdLevel level : random::SupportedSimdLevels()) {
    INFO("level " << random::SimdLevelName(level));
    for (const std::vector<double>& x : declined) {
      std::vector<double> out(x.size(), 42.0);
      size_t argmax = 99;
      REQUIRE_FALSE(SoftmaxWith(level, x.data(), x.size(), kInf, out.data(), &argmax));
      for (const double v : out) REQUIRE(v == 42.0);
      REQUIRE(argmax == 99);
    }
    for (const size_t n : {3, 12}) {
      std::vector<double> x(n, -5.0), out(n);
      x[1] = -inf;
      x[n - 1] = -4.0;
      size_t argmax = 99;
      REQUIRE(SoftmaxWith(level, x.data(), n, kInf, out.data(), &argmax));
      REQUIRE(out[1] == 0.0);
      REQUIRE(out[n - 1] > out[0]);
      REQUIRE(argmax == n - 1);
    }
    // The bound: |max| must lie below it (a maximum of -bound or +bound declines).
    for (const double max : {-2048.0, 2048.0, -3000.0}) {
      for (const size_t n : {3, 12}) {
        std::vector<double> x(n, max - 1.0), out(n, 42.0);
        x[n / 2] = max;
        size_t argmax = 99;
        REQUIRE_FALSE(SoftmaxWith(level, x.data(), n, 2048.0, out.data(), &argmax));
        REQUIRE(out[0] == 42.0);
        x[n / 2] = std::nextafter(2048.0, 0.0) * (max < 0 ? -1.0 : 1.0);
        for (size_t i = 0; i < n; ++i) x[i] = i == n / 2 ? x[i] : x[n / 2] - 1.0;
        REQUIRE(SoftmaxWith(level, x.data(), n, 2048.0, out.data(), &argmax));
        REQUIRE(argmax == n / 2);
      }
    }
  }
}

TEST_CASE("Softmax's argmax is numpy's: the first of tied maxima, -0.0 equal to +0.0, any length") {
  std::mt19937_64 rng(37);
  for (size_t n = 1; n <= 40; ++n) {
    for (int trial = 0; trial < 60; ++trial) {
      // Few distinct values, so that the maximum is often tied; zeros of both signs.
      std::vector<double> x(n);
      for (double& v : x) {
        const int pick = static_cast<int>(rng() % 4);
        v = pick == 0 ? -0.0 : pick == 1 ? 0.0 : -static_cast<double>(rng() % 3 + 1);
      }
      if (trial % 3 == 0) {
        for (double& v : x) v = v - 7.0;  // all negative: ties of -7
      }
      for (const random::SimdLevel level : random::SupportedSimdLevels()) {
        INFO("level " << random::SimdLevelName(level) << ", n " << n << ", trial " << trial);
        std::vector<double> out(n);
        size_t argmax = n;
        REQUIRE(SoftmaxWith(level, x.data(), n, kInf, out.data(), &argmax));
        CHECK(argmax == NumpyArgmax(x.data(), n));
      }
    }
  }
}

}  // namespace
TEST_CASE("DivideAll divides each value exactly as scalar division, on every level, any length") {
  std::mt19937_64 rng(31);
  std::uniform_real_distribution<double> unit(-4.0, 4.0);
  for (size_t n = 0; n <= 40; ++n) {
    std::vector<double> values(n + 2);
    for (double& v : values) v = std::ldexp(unit(rng), static_cast<int>(rng() % 200) - 100);
    if (n > 3) values[3] = std::numeric_limits<double>::denorm_min();  // and 0, -0, inf
    if (n > 5) values[5] = -0.0;
    if (n > 7) values[7] = std::numeric_limits<double>::infinity();
    const double divisor = std::sqrt(3.0 + static_cast<double>(n));
    std::vector<double> expected = values;
    for (size_t i = 0; i < n; ++i) expected[i] = values[i] / divisor;
    for (const random::SimdLevel level : random::SupportedSimdLevels()) {
      INFO("level " << random::SimdLevelName(level) << ", n " << n);
      std::vector<double> got = values;
      DivideAllWith(level, got.data(), n, divisor);
      // Bit for bit, and the two values past n untouched.
      CHECK(std::memcmp(got.data(), expected.data(), got.size() * sizeof(double)) == 0);
    }
  }
}

}  // namespace maas::discriminative
