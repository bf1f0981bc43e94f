// Checks every family must pass, shared by the per-family tests: sampling is a pure function of
// (seed, index), and the latent-variable view agrees with the exact marginal.
#ifndef MAAS_TESTS_SERVICES_GENERATIVE_FAMILY_CHECKS_H_
#define MAAS_TESTS_SERVICES_GENERATIVE_FAMILY_CHECKS_H_

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <vector>

#include "Eigen/Dense"
#include "common/random/item_rng.h"
#include "services/generative/core/model.h"

namespace maas::generative::testing {

// Samples n rows (and latents) in one call of `batch` rows at a time; returns x and latents
// side by side.
inline Eigen::MatrixXd SampleInBatches(const GenerativeModel& model, uint64_t seed, uint64_t start,
                                       int n, int batch) {
  Eigen::MatrixXd out(n, model.dimension() + model.latent_width());
  for (int first = 0; first < n; first += batch) {
    const int rows = std::min(batch, n - first);
    RowMatrixXd x(rows, model.dimension());
    RowMatrixXd latents;
    model.Sample(seed, start + static_cast<uint64_t>(first), x, &latents);
    REQUIRE(latents.rows() == rows);
    REQUIRE(latents.cols() == model.latent_width());
    out.block(first, 0, rows, model.dimension()) = x;
    out.block(first, model.dimension(), rows, model.latent_width()) = latents;
  }
  return out;
}

inline bool SameBytes(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(double) * static_cast<size_t>(a.size())) == 0;
}

// Batch sizes 1, 7 and 1000 give the same bytes; a shard from index 300 equals rows 300.. of the
// whole; samples without latents equal those with.
inline void CheckSampleDeterminism(const GenerativeModel& model, uint64_t seed) {
  const Eigen::MatrixXd reference = SampleInBatches(model, seed, 0, 1000, 1000);
  CHECK(reference.allFinite());
  CHECK(SameBytes(SampleInBatches(model, seed, 0, 1000, 1), reference));
  CHECK(SameBytes(SampleInBatches(model, seed, 0, 1000, 7), reference));
  const Eigen::MatrixXd shard = SampleInBatches(model, seed, 300, 700, 64);
  CHECK(SameBytes(shard, reference.bottomRows(700).eval()));
  RowMatrixXd x(10, model.dimension());
  model.Sample(seed, 0, x, nullptr);
  CHECK(SameBytes(x, reference.topLeftCorner(10, model.dimension()).eval()));
  const Eigen::MatrixXd other = SampleInBatches(model, seed + 1, 0, 10, 10);
  CHECK(!SameBytes(other, reference.topRows(10).eval()));
}

// log p(x) = log p(z) + log p(x|z) - log q(z|x) for z drawn from the exact-posterior proposal
// (and, for discrete latents, for every component), relative tolerance `tol`.
inline void CheckExactPosteriorIdentity(const GenerativeModel& model, const Eigen::MatrixXd& x,
                                        double tol) {
  REQUIRE(model.latent_kind() != LatentKind::kNone);
  const Eigen::VectorXd exact = model.ExactLogLikelihood(x);
  const int width = model.latent_kind() == LatentKind::kDiscrete ? 1 : model.latent_dim();
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    const Eigen::VectorXd row = x.row(r).transpose();
    const auto proposal = model.MakeProposal(row);
    REQUIRE(proposal != nullptr);
    std::vector<Eigen::VectorXd> zs;
    random::ItemRng rng(99, 1, static_cast<uint64_t>(r));
    for (int s = 0; s < 8; ++s) {
      Eigen::VectorXd z(model.latent_dim());
      proposal->Sample(rng, z);
      zs.push_back(z.head(width));
    }
    if (model.latent_kind() == LatentKind::kDiscrete) {
      for (int k = 0; k < model.latent_dim(); ++k) zs.push_back(Eigen::VectorXd::Constant(1, k));
    }
    Eigen::MatrixXd z(static_cast<Eigen::Index>(zs.size()), width);
    for (size_t s = 0; s < zs.size(); ++s) z.row(static_cast<Eigen::Index>(s)) = zs[s].transpose();
    Eigen::VectorXd log_lik(z.rows());
    model.LogLikelihoodGivenLatent(row, z, log_lik);
    for (Eigen::Index s = 0; s < z.rows(); ++s) {
      const Eigen::VectorXd zs_full = z.row(s).transpose();
      const double w = model.LogPrior(zs_full) + log_lik(s) - proposal->LogDensity(zs_full);
      CAPTURE(r, s, w, exact(r));
      CHECK(std::abs(w - exact(r)) <= tol * std::max(1.0, std::abs(exact(r))));
    }
  }
}

// d/dz log p(x|z) against central finite differences, and the returned value against
// LogLikelihoodGivenLatent.
inline void CheckGradient(const GenerativeModel& model, const Eigen::VectorXd& x,
                          const Eigen::VectorXd& z) {
  REQUIRE(model.has_latent_gradient());
  const int l = model.latent_dim();
  Eigen::VectorXd grad(l);
  const double value = model.LogLikelihoodGradient(x, z, grad);
  Eigen::VectorXd batched(1);
  model.LogLikelihoodGivenLatent(x, z.transpose(), batched);
  CHECK(std::abs(value - batched(0)) <= 1e-10 * std::max(1.0, std::abs(value)));
  for (int j = 0; j < l; ++j) {
    const double h = 1e-5;
    Eigen::VectorXd plus = z, minus = z;
    plus(j) += h;
    minus(j) -= h;
    Eigen::VectorXd fp(1), fm(1);
    model.LogLikelihoodGivenLatent(x, plus.transpose(), fp);
    model.LogLikelihoodGivenLatent(x, minus.transpose(), fm);
    const double numeric = (fp(0) - fm(0)) / (2 * h);
    CAPTURE(j, grad(j), numeric);
    CHECK(std::abs(grad(j) - numeric) <= 1e-6 * std::max(1.0, std::abs(numeric)));
  }
}

// ExactLogLikelihood of the rows of x at once: each row's value has the bytes it has alone (the
// blocked EXACT paths must not depend on the block a row lands in). Returns the values of all rows.
inline Eigen::VectorXd ExactOfBlockEqualsEachRowAlone(const GenerativeModel& model,
                                                      const Eigen::MatrixXd& x) {
  const Eigen::VectorXd all = model.ExactLogLikelihood(x);
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    const Eigen::VectorXd alone = model.ExactLogLikelihood(x.row(i));
    CAPTURE(i);
    CHECK(std::memcmp(&all(i), &alone(0), sizeof(double)) == 0);
  }
  return all;
}

}  // namespace maas::generative::testing

#endif  // MAAS_TESTS_SERVICES_GENERATIVE_FAMILY_CHECKS_H_
