// The samplers' batched products (sample_product.h): every SIMD level and every batch gives the
// bits of the documented one-element-at-a-time order, and the ppca / full gaussian_mixture
// samplers equal that order written out by hand from ItemRng::Normal().
// This file is compiled with -ffp-contract=off (CMakeLists.txt): its reference loops must round
// every product and sum, as the contract says.
#include "services/generative/core/sample_product.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <tuple>
#include <vector>

#include "Eigen/Dense"
#include "common/random/distributions.h"
#include "common/random/item_rng.h"
#include "common/random/simd_level.h"
#include "services/generative/core/gaussian_mixture.h"
#include "services/generative/core/linear_gaussian.h"
#include "services/generative/core/model.h"

namespace maas::generative {
namespace {

uint64_t Bits(double x) {
  uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

double Value(int64_t k, int64_t j) {
  return std::sin(0.37 * static_cast<double>(k + 1) + 1.3 * static_cast<double>(j));
}

// SampleProductArgs::fill from the vectors `rows`, checking the documented call pattern: every
// sample's ranges contiguous and ascending from 0.
struct RecordingFill {
  const std::vector<const double*>* rows;
  std::vector<int64_t> next;  // per sample: where its next range must begin
  int64_t violations = 0;

  static void Fill(void* context, int64_t i, int64_t begin, int64_t end, double* out) {
    auto* self = static_cast<RecordingFill*>(context);
    if (begin != self->next[static_cast<size_t>(i)] || end <= begin) ++self->violations;
    self->next[static_cast<size_t>(i)] = end;
    for (int64_t t = begin; t < end; ++t) out[t - begin] = (*self->rows)[static_cast<size_t>(i)][t];
  }
};

// SampleProductArgs::fill_rows from the vectors `rows`, with the same check.
struct RecordingFillRows {
  RecordingFill per_row;

  static void Fill(void* context, int64_t i0, int64_t count, int64_t begin, int64_t end,
                   double* out, int64_t stride) {
    auto* self = static_cast<RecordingFillRows*>(context);
    if (count <= 0 || count > stride) ++self->per_row.violations;
    std::vector<double> values(static_cast<size_t>(end > begin ? end - begin : 0));
    for (int64_t r = 0; r < count; ++r) {
      RecordingFill::Fill(&self->per_row, i0 + r, begin, end, values.data());
      for (int64_t t = begin; t < end; ++t) {
        out[(t - begin) * stride + r] = values[static_cast<size_t>(t - begin)];
      }
    }
  }
};

TEST_CASE("SampleProduct gives the documented per-element order at every SIMD level") {
  // (triangular, K, N): dense with a noise term (ppca's shape), a small triangle, and a triangle
  // deeper than the kernels' fill block (256 values), with a last panel of 4 columns.
  const std::vector<std::tuple<bool, int64_t, int64_t>> shapes = {
      {false, 13, 19}, {true, 21, 21}, {true, 300, 300}};
  for (const auto& shape : shapes) {
    const bool triangular = std::get<0>(shape);
    const int64_t k = std::get<1>(shape), n = std::get<2>(shape);
    for (const int64_t m :
         {int64_t{1}, int64_t{5}, int64_t{24}, int64_t{25}, int64_t{97}, int64_t{230}}) {
      const PackedPanels panels = PackPanels(k, n, triangular, [&](int64_t kk, int64_t j) {
        return triangular && kk > j ? 0.0 : Value(kk, j);
      });
      // Sample i's vector: K multipliers, then N noise values.
      std::vector<std::vector<double>> a(static_cast<size_t>(m));
      std::vector<const double*> rows;
      for (int64_t i = 0; i < m; ++i) {
        random::ItemRng rng(3, 0, static_cast<uint64_t>(i));
        a[static_cast<size_t>(i)].resize(static_cast<size_t>(k + n));
        for (double& v : a[static_cast<size_t>(i)]) v = rng.Normal();
        rows.push_back(a[static_cast<size_t>(i)].data());
      }
      std::vector<double> bias(static_cast<size_t>(n)), scale(static_cast<size_t>(n));
      for (int64_t j = 0; j < n; ++j) {
        bias[static_cast<size_t>(j)] = 0.1 * static_cast<double>(j) - 0.7;
        scale[static_cast<size_t>(j)] = 0.3 + 0.01 * static_cast<double>(j);
      }
      // The reference: x(i, j) = (bias + sum_{k < kend(j)} a_k B(k, j), from +0) + scale * noise.
      Eigen::MatrixXd expected(m, n);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          const int64_t kend = triangular ? std::min(k, 8 * (j / 8 + 1)) : k;
          double acc = 0.0;
          for (int64_t kk = 0; kk < kend; ++kk) {
            const double b = triangular && kk > j ? 0.0 : Value(kk, j);
            acc = acc + rows[static_cast<size_t>(i)][kk] * b;
          }
          double value = bias[static_cast<size_t>(j)] + acc;
          if (!triangular)
            value = value + scale[static_cast<size_t>(j)] * rows[static_cast<size_t>(i)][k + j];
          expected(i, j) = value;
        }
      }
      for (const random::SimdLevel level : random::SupportedSimdLevels()) {
        // The vectors as row pointers, through fill (one sample per call), through fill_rows;
        // row-major rows of n values plus 3 that must stay untouched, written in reverse order
        // (out_rows may point anywhere: the mixture sampler scatters each group's rows).
        for (const int source : {0, 1, 2}) {
          const bool filled = source != 0;
          RowMatrixXd x = RowMatrixXd::Constant(m, n + 3, -99.0);
          std::vector<double*> out_rows;
          for (int64_t i = 0; i < m; ++i) out_rows.push_back(x.row(m - 1 - i).data());
          RecordingFillRows fill_rows{{&rows, std::vector<int64_t>(static_cast<size_t>(m), 0)}};
          RecordingFill& fill = fill_rows.per_row;
          SampleProductArgs args;
          args.b = &panels;
          args.m = m;
          if (source == 1) {
            args.fill = &RecordingFill::Fill;
            args.fill_context = &fill;
          } else if (source == 2) {
            args.fill_rows = &RecordingFillRows::Fill;
            args.fill_context = &fill_rows;
          } else {
            args.a = rows.data();
          }
          args.bias = bias.data();
          args.noise_scale = triangular ? nullptr : scale.data();
          args.noise_offset = k;
          args.out_rows = out_rows.data();
          SampleProductAt(level, args);
          int64_t mismatches = 0;
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < n; ++j) {
              mismatches += Bits(x(m - 1 - i, j)) != Bits(expected(i, j));
            }
            for (int64_t j = n; j < n + 3; ++j) mismatches += x(i, j) != -99.0;
          }
          INFO("level " << random::SimdLevelName(level) << " triangular " << triangular << " K "
                        << k << " m " << m
                        << (source == 2 ? " (fill_rows)"
                            : filled    ? " (fill)"
                                        : " (rows)"));
          CHECK(mismatches == 0);
          if (filled) {
            CHECK(fill.violations == 0);
            const int64_t depth = k + (triangular ? 0 : n);
            int64_t incomplete = 0;
            for (const int64_t end : fill.next) incomplete += end != depth;
            CHECK(incomplete == 0);
          }
        }
      }
    }
  }
}

TEST_CASE("ppca and full gaussian_mixture samples equal the documented order written out") {
  const int d = 37, l = 11;
  Eigen::MatrixXd w(d, l);
  for (int j = 0; j < d; ++j) {
    for (int k = 0; k < l; ++k) w(j, k) = Value(k, j) / std::sqrt(static_cast<double>(l));
  }
  Eigen::VectorXd mu(d);
  for (int j = 0; j < d; ++j) mu(j) = 0.05 * j - 0.4;
  auto ppca = LinearGaussianModel::Create("ppca", w, mu, Eigen::VectorXd::Constant(d, 0.2));
  REQUIRE(ppca.ok());
  RowMatrixXd x(300, d), latents;
  (*ppca)->Sample(11, 1000, x, &latents);
  for (int i = 0; i < 300; i += 37) {
    random::ItemRng rng(11, kSampleStream, 1000 + static_cast<uint64_t>(i));
    std::vector<double> z(l), eps(d);
    for (double& v : z) v = rng.Normal();
    for (double& v : eps) v = rng.Normal();
    for (int j = 0; j < d; ++j) {
      double acc = 0.0;
      for (int k = 0; k < l; ++k) acc = acc + w(j, k) * z[static_cast<size_t>(k)];
      const double expected = (mu(j) + acc) + std::sqrt(0.2) * eps[static_cast<size_t>(j)];
      INFO("ppca row " << i << " column " << j);
      CHECK(Bits(x(i, j)) == Bits(expected));
    }
    CHECK(Bits(latents(i, 3)) == Bits(z[3]));
  }

  v1::GaussianMixtureSpec spec;
  spec.set_covariance_type(v1::FULL);
  const int components = 3;
  spec.mutable_means()->set_rows(components);
  spec.mutable_means()->set_cols(d);
  spec.mutable_covariances()->set_rows(components * d);
  spec.mutable_covariances()->set_cols(d);
  std::vector<Eigen::MatrixXd> lowers;
  for (int c = 0; c < components; ++c) {
    spec.add_weights(c == 0 ? 0.5 : 0.25);
    for (int j = 0; j < d; ++j) spec.mutable_means()->add_values(c + 0.01 * j);
    Eigen::MatrixXd b(d, d);
    for (int i = 0; i < d; ++i) {
      for (int j = 0; j < d; ++j) b(i, j) = Value(i + c, j) / d;
    }
    Eigen::MatrixXd cov = b * b.transpose() + (0.5 + c) * Eigen::MatrixXd::Identity(d, d);
    cov = (0.5 * (cov + cov.transpose())).eval();
    for (int i = 0; i < d; ++i) {
      for (int j = 0; j < d; ++j) spec.mutable_covariances()->add_values(cov(i, j));
    }
    lowers.push_back(cov.llt().matrixL());
  }
  auto gmm = GaussianMixtureModel::Create(spec);
  REQUIRE(gmm.ok());
  (*gmm)->Sample(12, 7, x, &latents);
  int seen[components] = {};
  for (int i = 0; i < 300; ++i) {
    random::ItemRng rng(12, kSampleStream, 7 + static_cast<uint64_t>(i));
    const double u = rng.Uniform();
    const int c = u < 0.5 ? 0 : (u < 0.75 ? 1 : 2);
    ++seen[c];
    std::vector<double> eps(d);
    for (double& v : eps) v = rng.Normal();
    REQUIRE(latents(i, 0) == c);
    if (i % 13 != 0) continue;
    // The model's own Cholesky factor may differ from this one in the last bits, so compare the
    // order with a tolerance here; the bitwise order is pinned by the SampleProduct test above.
    for (int j = 0; j < d; ++j) {
      double acc = 0.0;
      for (int k = 0; k <= j; ++k)
        acc = acc + lowers[static_cast<size_t>(c)](j, k) * eps[static_cast<size_t>(k)];
      const double expected = (c + 0.01 * j) + acc;
      INFO("gmm row " << i << " column " << j);
      CHECK(x(i, j) == Approx(expected).epsilon(1e-13));
    }
  }
  CHECK(seen[0] > 100);
  CHECK(seen[1] > 40);
  CHECK(seen[2] > 40);
}

// A full mixture whose Cholesky factors are known exactly: L_c lower-triangular with small integer
// entries (diagonal 1..3), so every step of the factorization of Sigma_c = L_c L_c^T is exact
// integer arithmetic and the model's factor equals L_c bit for bit, whatever its summation order.
struct ExactMixture {
  v1::GaussianMixtureSpec spec;
  std::vector<Eigen::MatrixXd> lowers;
  Eigen::MatrixXd means;
};

ExactMixture MakeExactMixture(int d, const std::vector<double>& weights) {
  ExactMixture out;
  const int k = static_cast<int>(weights.size());
  out.spec.set_covariance_type(v1::FULL);
  out.means.resize(k, d);
  out.spec.mutable_means()->set_rows(k);
  out.spec.mutable_means()->set_cols(d);
  out.spec.mutable_covariances()->set_rows(static_cast<int64_t>(k) * d);
  out.spec.mutable_covariances()->set_cols(d);
  for (int c = 0; c < k; ++c) {
    out.spec.add_weights(weights[static_cast<size_t>(c)]);
    Eigen::MatrixXd lower = Eigen::MatrixXd::Zero(d, d);
    for (int j = 0; j < d; ++j) {
      lower(j, j) = 1 + (j + c) % 3;
      for (int i = 0; i < j; ++i) lower(j, i) = ((i * 7 + j * 3 + c) % 5) - 2;  // -2 .. 2
    }
    const Eigen::MatrixXd cov = lower * lower.transpose();  // integers below 2^53: exact
    for (int i = 0; i < d; ++i) {
      for (int j = 0; j < d; ++j) out.spec.mutable_covariances()->add_values(cov(i, j));
    }
    for (int j = 0; j < d; ++j) {
      out.means(c, j) = 0.25 * c - 0.01 * j;
      out.spec.mutable_means()->add_values(out.means(c, j));
    }
    out.lowers.push_back(std::move(lower));
  }
  return out;
}

// Sample `index` of `seed` by the documented draw order, one element at a time (gaussian_mixture.h:
// the component from one Uniform, D normals, x_j = mu_j + (sum_{i < min(D, 8 (j / 8 + 1))}
// L(j, i) eps_i from +0, ascending i, every product and sum rounded)).
Eigen::VectorXd DocumentedMixtureSample(const ExactMixture& mixture, uint64_t seed, uint64_t index,
                                        int* component) {
  const Eigen::Index d = mixture.means.cols();
  random::ItemRng rng(seed, kSampleStream, index);
  Eigen::VectorXd weights(mixture.spec.weights_size());
  for (int c = 0; c < weights.size(); ++c) weights(c) = mixture.spec.weights(c);
  const int c = random::Categorical(rng, weights);
  *component = c;
  std::vector<double> eps(static_cast<size_t>(d));
  for (double& v : eps) v = rng.Normal();
  const Eigen::MatrixXd& lower = mixture.lowers[static_cast<size_t>(c)];
  Eigen::VectorXd x(d);
  for (Eigen::Index j = 0; j < d; ++j) {
    const Eigen::Index kend = std::min<Eigen::Index>(d, 8 * (j / 8 + 1));
    double acc = 0.0;
    for (Eigen::Index i = 0; i < kend; ++i) acc = acc + lower(j, i) * eps[static_cast<size_t>(i)];
    x(j) = mixture.means(c, j) + acc;
  }
  return x;
}

TEST_CASE(
    "Full gaussian_mixture samples equal the documented order bit for bit in batches of 1, 7 and "
    "5000") {
  // D = 203: several k blocks of the product, a last panel of 3 columns; 5000 rows: two chunks of
  // the sampler, components of very different sizes (so groups of every tile width).
  const int d = 203;
  const ExactMixture mixture = MakeExactMixture(d, {0.55, 0.3, 0.1, 0.04, 0.01});
  auto gmm = GaussianMixtureModel::Create(mixture.spec);
  REQUIRE(gmm.ok());
  const int n = 5000;
  const uint64_t seed = 20261202, first = 11;
  RowMatrixXd whole(n, d), latents;
  (*gmm)->Sample(seed, first, whole, &latents);
  int64_t mismatches = 0, checked = 0;
  for (int i = 0; i < n; i += (i < 200 ? 1 : 23)) {
    int c = -1;
    const Eigen::VectorXd expected = DocumentedMixtureSample(mixture, seed, first + i, &c);
    CHECK(latents(i, 0) == c);
    for (int j = 0; j < d; ++j) mismatches += Bits(whole(i, j)) != Bits(expected(j));
    ++checked;
  }
  INFO(random::SimdLevelName(random::BestSimdLevel()) << ", " << checked << " rows checked");
  CHECK(mismatches == 0);
  for (const int batch : {1, 7}) {
    int64_t batch_mismatches = 0;
    const int rows = batch == 1 ? 300 : n;
    for (int i0 = 0; i0 < rows; i0 += batch) {
      const int m = std::min(batch, rows - i0);
      RowMatrixXd part(m, d), part_latents;
      (*gmm)->Sample(seed, first + static_cast<uint64_t>(i0), part, &part_latents);
      for (int i = 0; i < m; ++i) {
        for (int j = 0; j < d; ++j) batch_mismatches += Bits(part(i, j)) != Bits(whole(i0 + i, j));
        batch_mismatches += part_latents(i, 0) != latents(i0 + i, 0);
      }
    }
    INFO("batch " << batch);
    CHECK(batch_mismatches == 0);
  }
}

TEST_CASE(
    "A full gaussian_mixture batch larger than the sampler's 4096-sample chunk equals small "
    "batches") {
  v1::GaussianMixtureSpec spec;
  spec.set_covariance_type(v1::FULL);
  for (const double w : {0.5, 0.3, 0.2}) spec.add_weights(w);
  spec.mutable_means()->set_rows(3);
  spec.mutable_means()->set_cols(2);
  for (const double v : {0.0, 0.0, 3.0, 1.0, -2.0, 2.5}) spec.mutable_means()->add_values(v);
  spec.mutable_covariances()->set_rows(6);
  spec.mutable_covariances()->set_cols(2);
  for (const double v : {1.0, 0.3, 0.3, 0.5, 0.6, -0.2, -0.2, 1.2, 2.0, 0.0, 0.0, 0.3}) {
    spec.mutable_covariances()->add_values(v);
  }
  auto gmm = GaussianMixtureModel::Create(spec);
  REQUIRE(gmm.ok());
  const int n = 9001;
  RowMatrixXd whole(n, 2), latents;
  (*gmm)->Sample(99, 3, whole, &latents);
  int64_t mismatches = 0;
  for (int first = 0; first < n; first += 1000) {
    const int rows = std::min(1000, n - first);
    RowMatrixXd part(rows, 2), part_latents;
    (*gmm)->Sample(99, 3 + static_cast<uint64_t>(first), part, &part_latents);
    for (int i = 0; i < rows; ++i) {
      for (int j = 0; j < 2; ++j) mismatches += Bits(part(i, j)) != Bits(whole(first + i, j));
      mismatches += part_latents(i, 0) != latents(first + i, 0);
    }
  }
  CHECK(mismatches == 0);
}

}  // namespace
}  // namespace maas::generative
