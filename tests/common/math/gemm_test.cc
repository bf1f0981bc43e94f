#include "common/math/gemm.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace maas::math {
namespace {

std::vector<SimdPath> SupportedPaths() {
  std::vector<SimdPath> paths;
  for (SimdPath p : {SimdPath::kBaseline, SimdPath::kAvx2, SimdPath::kAvx512}) {
    if (SimdPathSupported(p)) paths.push_back(p);
  }
  return paths;
}

std::vector<double> Random(std::size_t n, std::mt19937_64& gen) {
  std::normal_distribution<double> normal;
  std::vector<double> v(n);
  for (double& x : v) x = normal(gen);
  return v;
}

bool SameBits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

// The documented order: c = accumulate ? C : +0; c = fma(a_ik, b_kj, c) for k = 0, 1, ...
void Reference(std::size_t m, std::size_t n, std::size_t k, const std::vector<double>& a,
               std::size_t lda, const std::vector<double>& b, std::size_t ldb, Transpose t,
               std::vector<double>& c, std::size_t ldc, bool accumulate) {
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      double s = accumulate ? c[i * ldc + j] : 0.0;
      for (std::size_t kk = 0; kk < k; ++kk) {
        s = std::fma(a[i * lda + kk], t == Transpose::kNo ? b[kk * ldb + j] : b[j * ldb + kk], s);
      }
      c[i * ldc + j] = s;
    }
  }
}

// Runs every supported path on one problem and requires bit-identical agreement with Reference.
void CheckProblem(std::size_t m, std::size_t n, std::size_t k, Transpose t, bool accumulate,
                  std::size_t pad, std::mt19937_64& gen) {
  const std::size_t lda = k + pad, ldc = n + pad;
  const std::size_t ldb = (t == Transpose::kNo ? n : k) + pad;
  const std::vector<double> a = Random(m * lda, gen);
  const std::vector<double> b = Random((t == Transpose::kNo ? k : n) * ldb, gen);
  const std::vector<double> c0 = Random(m * ldc, gen);
  std::vector<double> want = c0;
  Reference(m, n, k, a, lda, b, ldb, t, want, ldc, accumulate);
  for (SimdPath path : SupportedPaths()) {
    std::vector<double> got = c0;
    Gemm(m, n, k, a.data(), lda, b.data(), ldb, t, got.data(), ldc, accumulate, path);
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < got.size(); ++i) mismatches += !SameBits(got[i], want[i]);
    INFO(SimdPathName(path) << " m=" << m << " n=" << n << " k=" << k
                            << " transpose=" << (t == Transpose::kYes)
                            << " accumulate=" << accumulate << " pad=" << pad);
    REQUIRE(mismatches == 0);
  }
}

TEST_CASE("Gemm: every dispatched path equals the k-ordered FMA reference bit for bit") {
  INFO("best path on this CPU: " << SimdPathName(SimdPath::kAuto));
  std::mt19937_64 gen(42);
  const std::size_t sizes[] = {1, 3, 7, 8, 9, 13, 24, 25, 31, 70};
  for (std::size_t m : sizes) {
    for (std::size_t n : sizes) {
      for (std::size_t k : {std::size_t{1}, std::size_t{5}, std::size_t{17}, std::size_t{64}}) {
        for (Transpose t : {Transpose::kNo, Transpose::kYes}) {
          CheckProblem(m, n, k, t, /*accumulate=*/(m + n + k) % 2 == 0, (m * n) % 3, gen);
        }
      }
    }
  }
  // k beyond one k-block and m beyond one row block, both transposes, both accumulate modes.
  for (Transpose t : {Transpose::kNo, Transpose::kYes}) {
    for (bool accumulate : {false, true}) CheckProblem(101, 53, 300, t, accumulate, 1, gen);
  }
}

TEST_CASE("Gemm: k = 0 zeroes C or leaves it, m = 0 and n = 0 touch nothing") {
  for (SimdPath path : SupportedPaths()) {
    std::vector<double> c = {1.0, 2.0, 3.0, 4.0};
    const double a[1] = {5.0}, b[1] = {6.0};
    Gemm(2, 2, 0, a, 1, b, 2, Transpose::kNo, c.data(), 2, /*accumulate=*/true, path);
    CHECK(c == std::vector<double>{1.0, 2.0, 3.0, 4.0});
    Gemm(0, 2, 1, a, 1, b, 2, Transpose::kNo, c.data(), 2, false, path);
    Gemm(2, 0, 1, a, 1, b, 2, Transpose::kNo, c.data(), 2, false, path);
    CHECK(c == std::vector<double>{1.0, 2.0, 3.0, 4.0});
    Gemm(2, 2, 0, a, 1, b, 2, Transpose::kNo, c.data(), 2, false, path);
    CHECK(c == std::vector<double>{0.0, 0.0, 0.0, 0.0});
  }
}

TEST_CASE("Gemm: a packed B gives the unpacked result, however the rows of A are split") {
  std::mt19937_64 gen(7);
  const std::size_t m = 77, n = 45, k = 150;
  const std::vector<double> a = Random(m * k, gen), b = Random(n * k, gen);
  for (SimdPath path : SupportedPaths()) {
    std::vector<double> whole(m * n), split(m * n);
    Gemm(m, n, k, a.data(), k, b.data(), k, Transpose::kYes, whole.data(), n, false, path);
    const PackedMatrix packed(k, n, b.data(), k, Transpose::kYes, path);
    CHECK(packed.path() == path);
    for (std::size_t i0 = 0; i0 < m; i0 += 10) {
      Gemm(std::min<std::size_t>(10, m - i0), a.data() + i0 * k, k, packed, split.data() + i0 * n,
           n, false);
    }
    CHECK(std::memcmp(whole.data(), split.data(), whole.size() * sizeof(double)) == 0);
  }
}

TEST_CASE("Gemm: trimming the zero rows of a triangular or banded B changes no bit") {
  std::mt19937_64 gen(11);
  for (std::size_t k : {std::size_t{1}, std::size_t{30}, std::size_t{133}, std::size_t{256}}) {
    for (std::size_t m : {std::size_t{1}, std::size_t{9}, std::size_t{100}}) {
      for (int shape = 0; shape < 3; ++shape) {  // op(B) lower, upper triangular, banded
        for (bool accumulate : {false, true}) {
          for (Transpose t : {Transpose::kNo, Transpose::kYes}) {
            // op(B)[kk][j] = B stored as given (kNo) or transposed (kYes); zero outside the shape.
            std::vector<double> b = Random(k * k, gen);
            for (std::size_t kk = 0; kk < k; ++kk) {
              for (std::size_t j = 0; j < k; ++j) {
                const bool keep = shape == 0   ? kk >= j
                                  : shape == 1 ? kk <= j
                                               : kk + 20 >= j && j + 20 >= kk;
                if (!keep) (t == Transpose::kNo ? b[kk * k + j] : b[j * k + kk]) = 0.0;
              }
            }
            const std::vector<double> a = Random(m * k, gen), c0 = Random(m * k, gen);
            std::vector<double> want = c0;
            Reference(m, k, k, a, k, b, k, t, want, k, accumulate);
            for (SimdPath path : SupportedPaths()) {
              const PackedMatrix packed(k, k, b.data(), k, t, path, /*trim_zero_rows=*/true);
              std::vector<double> got = c0;
              Gemm(m, a.data(), k, packed, got.data(), k, accumulate);
              INFO(SimdPathName(path) << " m=" << m << " k=" << k << " shape=" << shape
                                      << " accumulate=" << accumulate);
              REQUIRE(std::memcmp(got.data(), want.data(), got.size() * sizeof(double)) == 0);
            }
          }
        }
      }
    }
  }
}

// Inputs spanning every branch of the elementwise functions, and their special values.
std::vector<double> ElementwiseInputs() {
  std::vector<double> x;
  for (double v = -40.0; v <= 40.0; v += 0.01371) x.push_back(v);
  for (double v = 1e-300; v < 1.0; v *= 3.7) {
    x.push_back(v);
    x.push_back(-v);
  }
  for (double v : {0.0, -0.0, 0.3, -0.3, 0.29999999999999999, 20.0, 700.0, -700.0, 746.0, -746.0,
                   1e308, -1e308, std::numeric_limits<double>::infinity(),
                   -std::numeric_limits<double>::infinity()}) {
    x.push_back(v);
  }
  return x;
}

double Ulps(double got, double want) {
  if (got == want) return 0.0;
  return std::abs(got - want) / (std::nextafter(std::abs(want), HUGE_VAL) - std::abs(want));
}

TEST_CASE("Tanh, Sigmoid, Relu, Softplus: same bits on every path and for every length, accurate") {
  const std::vector<double> x = ElementwiseInputs();
  using Fn = void (*)(double*, std::size_t, SimdPath);
  struct Named {
    const char* name;
    Fn fn;
    double (*oracle)(double);
    double max_abs_error;  // outputs of tanh and sigmoid are <= 1 in magnitude
  };
  const Named functions[] = {
      {"tanh", Tanh, [](double v) { return std::tanh(v); }, 3e-16},
      {"sigmoid", Sigmoid, [](double v) { return 1.0 / (1.0 + std::exp(-v)); }, 3e-16},
      {"relu", Relu, [](double v) { return v > 0.0 ? v : 0.0; }, 0.0},
      {"softplus", Softplus,
       [](double v) { return std::max(v, 0.0) + std::log1p(std::exp(-std::abs(v))); }, HUGE_VAL},
  };
  for (const Named& f : functions) {
    std::vector<double> base = x;
    f.fn(base.data(), base.size(), SimdPath::kBaseline);
    double worst_ulps = 0.0, worst_abs = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double want = f.oracle(x[i]);
      worst_abs = std::max(worst_abs, std::abs(base[i] - want));
      if (std::abs(want) > 1e-300) worst_ulps = std::max(worst_ulps, Ulps(base[i], want));
    }
    INFO(f.name << ": worst " << worst_ulps << " ulp, " << worst_abs << " absolute");
    CHECK(worst_ulps <= 4.0);
    CHECK(worst_abs <= f.max_abs_error);
    for (SimdPath path : SupportedPaths()) {
      // Lengths that leave every possible tail, at every offset of the input.
      for (std::size_t len : {std::size_t{1}, std::size_t{3}, std::size_t{7}, std::size_t{9},
                              std::size_t{13}, x.size()}) {
        for (std::size_t start = 0; start + len <= x.size(); start += len + 5) {
          std::vector<double> got(x.begin() + start, x.begin() + start + len);
          f.fn(got.data(), got.size(), path);
          for (std::size_t i = 0; i < len; ++i) {
            INFO(f.name << " " << SimdPathName(path) << " x=" << x[start + i]);
            REQUIRE(SameBits(got[i], base[start + i]));
          }
        }
      }
    }
  }
  double nan = std::numeric_limits<double>::quiet_NaN();
  for (SimdPath path : SupportedPaths()) {
    for (Fn fn : {Tanh, Sigmoid, Relu, Softplus}) {
      double v[3] = {nan, 1.0, nan};
      fn(v, 3, path);
      CHECK(std::isnan(v[0]));
      CHECK(std::isnan(v[2]));
    }
  }
  double t[2] = {-0.0, 0.0};
  Tanh(t, 2);
  CHECK(std::signbit(t[0]));
  CHECK(!std::signbit(t[1]));
}

TEST_CASE("SquaredDistance, Dot: same bits on every path, equal the documented order") {
  std::mt19937_64 gen(3);
  for (std::size_t n = 0; n <= 70; ++n) {
    const std::vector<double> x = Random(n, gen), y = Random(n, gen);
    double partial[8] = {}, dot_partial[8] = {};
    for (std::size_t j = 0; j < n; ++j) {
      const double d = x[j] - y[j];
      partial[j % 8] = partial[j % 8] + d * d;
      dot_partial[j % 8] = dot_partial[j % 8] + x[j] * y[j];
    }
    const auto reduce = [](const double* p) {
      return ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
    };
    for (SimdPath path : SupportedPaths()) {
      INFO(SimdPathName(path) << " n=" << n);
      REQUIRE(SameBits(SquaredDistance(x.data(), y.data(), n, path), reduce(partial)));
      REQUIRE(SameBits(Dot(x.data(), y.data(), n, path), reduce(dot_partial)));
    }
  }
}

}  // namespace
}  // namespace maas::math
