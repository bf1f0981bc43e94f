// Test-only models with closed forms, written against the latent-variable interface of model.h
// (the estimators never see a concrete family):
//   Gauss1d: z ~ N(0, 1), x | z ~ N(z, s^2): p(x) = N(x; 0, 1 + s^2); the posterior is
//            N(x / (1 + s^2), s^2 / (1 + s^2)). Its proposal is that posterior with the standard
//            deviation scaled by `proposal_scale` (1: exact, every weight equals p(x)). Counts its
//            gradient evaluations (the work of AIS).
//   FlatTarget: z ~ N(0, 1), p(x|z) = 1, proposal N(0, sigma_q^2): the weights p(z)/q(z) of the
//            reference's Pareto k̂ known answer (k = 1 - sigma_q^2 for sigma_q < 1).
//   Mixture1d: a K-component 1-D Gaussian mixture with a discrete latent (AIS does not apply).
#ifndef MAAS_TESTS_SERVICES_GENERATIVE_TEST_MODELS_H_
#define MAAS_TESTS_SERVICES_GENERATIVE_TEST_MODELS_H_

#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/math/gaussian.h"
#include "common/math/log_sum_exp.h"
#include "common/random/distributions.h"
#include "services/generative/core/model.h"

namespace maas::testing {

inline double LogNormalPdf(double x, double mean, double variance) {
  return -0.5 * (math::kLogTwoPi + std::log(variance) + (x - mean) * (x - mean) / variance);
}

class NormalProposal final : public generative::LatentProposal {
 public:
  NormalProposal(double mean, double stddev) : mean_(mean), stddev_(stddev) {}
  void Sample(random::ItemRng& rng, Eigen::Ref<Eigen::VectorXd> z) const override {
    z(0) = mean_ + stddev_ * rng.Normal();
  }
  double LogDensity(const Eigen::Ref<const Eigen::VectorXd>& z) const override {
    return LogNormalPdf(z(0), mean_, stddev_ * stddev_);
  }

 private:
  double mean_, stddev_;
};

// Shared parts of the 1-D continuous test models.
class Continuous1d : public generative::GenerativeModel {
 public:
  int dimension() const override { return 1; }
  int latent_width() const override { return 1; }
  void Sample(uint64_t seed, uint64_t first_index, Eigen::Ref<generative::RowMatrixXd> x,
              generative::RowMatrixXd* latents) const override {
    (void)seed, (void)first_index, (void)x, (void)latents;
    std::abort();  // Not used by the estimator tests.
  }
  generative::LatentKind latent_kind() const override {
    return generative::LatentKind::kContinuous;
  }
  int latent_dim() const override { return 1; }
  void SamplePrior(random::ItemRng& rng, Eigen::Ref<Eigen::VectorXd> z) const override {
    z(0) = rng.Normal();
  }
  double LogPrior(const Eigen::Ref<const Eigen::VectorXd>& z) const override {
    return LogNormalPdf(z(0), 0.0, 1.0);
  }
};

class Gauss1d final : public Continuous1d {
 public:
  Gauss1d(double noise_stddev, double proposal_scale, bool with_proposal = true)
      : s_(noise_stddev), scale_(proposal_scale), with_proposal_(with_proposal) {}
  std::string family() const override { return "test_gauss1d"; }
  bool tractable() const override { return true; }
  Eigen::VectorXd ExactLogLikelihood(const Eigen::Ref<const Eigen::MatrixXd>& x) const override {
    Eigen::VectorXd out(x.rows());
    for (Eigen::Index i = 0; i < x.rows(); ++i) out(i) = LogNormalPdf(x(i, 0), 0.0, 1 + s_ * s_);
    return out;
  }
  void LogLikelihoodGivenLatent(const Eigen::Ref<const Eigen::VectorXd>& x,
                                const Eigen::Ref<const Eigen::MatrixXd>& z,
                                Eigen::Ref<Eigen::VectorXd> out) const override {
    for (Eigen::Index i = 0; i < z.rows(); ++i) out(i) = LogNormalPdf(x(0), z(i, 0), s_ * s_);
  }
  bool has_latent_gradient() const override { return true; }
  double LogLikelihoodGradient(const Eigen::Ref<const Eigen::VectorXd>& x,
                               const Eigen::Ref<const Eigen::VectorXd>& z,
                               Eigen::Ref<Eigen::VectorXd> grad) const override {
    ++gradient_evaluations_;
    grad(0) = (x(0) - z(0)) / (s_ * s_);
    return LogNormalPdf(x(0), z(0), s_ * s_);
  }
  bool has_proposal() const override { return with_proposal_; }
  std::unique_ptr<generative::LatentProposal> MakeProposal(
      const Eigen::Ref<const Eigen::VectorXd>& x) const override {
    ++proposals_made_;
    if (!with_proposal_) return nullptr;
    const double v = s_ * s_ / (1 + s_ * s_);
    return std::make_unique<NormalProposal>(x(0) / (1 + s_ * s_), scale_ * std::sqrt(v));
  }
  // Calls of LogLikelihoodGradient so far.
  int64_t gradient_evaluations() const { return gradient_evaluations_.load(); }
  // Calls of MakeProposal so far.
  int64_t proposals_made() const { return proposals_made_.load(); }

 private:
  double s_, scale_;
  bool with_proposal_;
  mutable std::atomic<int64_t> gradient_evaluations_{0};
  mutable std::atomic<int64_t> proposals_made_{0};
};

class FlatTarget final : public Continuous1d {
 public:
  explicit FlatTarget(double sigma_q) : sigma_q_(sigma_q) {}
  std::string family() const override { return "test_flat"; }
  bool tractable() const override { return true; }
  Eigen::VectorXd ExactLogLikelihood(const Eigen::Ref<const Eigen::MatrixXd>& x) const override {
    return Eigen::VectorXd::Zero(x.rows());
  }
  void LogLikelihoodGivenLatent(const Eigen::Ref<const Eigen::VectorXd>&,
                                const Eigen::Ref<const Eigen::MatrixXd>& z,
                                Eigen::Ref<Eigen::VectorXd> out) const override {
    (void)z;
    out.setZero();
  }
  bool has_proposal() const override { return true; }
  std::unique_ptr<generative::LatentProposal> MakeProposal(
      const Eigen::Ref<const Eigen::VectorXd>&) const override {
    return std::make_unique<NormalProposal>(0.0, sigma_q_);
  }

 private:
  double sigma_q_;
};

class Mixture1d final : public generative::GenerativeModel {
 public:
  Mixture1d(std::vector<double> weights, std::vector<double> means, double variance)
      : weights_(Eigen::Map<Eigen::VectorXd>(weights.data(), weights.size())),
        means_(std::move(means)),
        variance_(variance) {}
  std::string family() const override { return "test_mixture1d"; }
  int dimension() const override { return 1; }
  int latent_width() const override { return 1; }
  void Sample(uint64_t, uint64_t, Eigen::Ref<generative::RowMatrixXd>,
              generative::RowMatrixXd*) const override {
    std::abort();
  }
  bool tractable() const override { return true; }
  Eigen::VectorXd ExactLogLikelihood(const Eigen::Ref<const Eigen::MatrixXd>& x) const override {
    Eigen::VectorXd out(x.rows());
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      Eigen::VectorXd terms(weights_.size());
      for (Eigen::Index k = 0; k < weights_.size(); ++k) {
        terms(k) = std::log(weights_(k)) + LogNormalPdf(x(i, 0), means_[k], variance_);
      }
      out(i) = math::LogSumExp(terms);
    }
    return out;
  }
  generative::LatentKind latent_kind() const override { return generative::LatentKind::kDiscrete; }
  int latent_dim() const override { return static_cast<int>(weights_.size()); }
  void SamplePrior(random::ItemRng& rng, Eigen::Ref<Eigen::VectorXd> z) const override {
    z(0) = random::Categorical(rng, weights_);
  }
  double LogPrior(const Eigen::Ref<const Eigen::VectorXd>& z) const override {
    return std::log(weights_(static_cast<int>(z(0))));
  }
  void LogLikelihoodGivenLatent(const Eigen::Ref<const Eigen::VectorXd>& x,
                                const Eigen::Ref<const Eigen::MatrixXd>& z,
                                Eigen::Ref<Eigen::VectorXd> out) const override {
    for (Eigen::Index i = 0; i < z.rows(); ++i) {
      out(i) = LogNormalPdf(x(0), means_[static_cast<int>(z(i, 0))], variance_);
    }
  }

 private:
  Eigen::VectorXd weights_;
  std::vector<double> means_;
  double variance_;
};

// A model without a latent variable (only EXACT applies).
class NoLatent final : public generative::GenerativeModel {
 public:
  std::string family() const override { return "test_none"; }
  int dimension() const override { return 1; }
  int latent_width() const override { return 0; }
  void Sample(uint64_t, uint64_t, Eigen::Ref<generative::RowMatrixXd>,
              generative::RowMatrixXd*) const override {
    std::abort();
  }
  bool tractable() const override { return true; }
  Eigen::VectorXd ExactLogLikelihood(const Eigen::Ref<const Eigen::MatrixXd>& x) const override {
    return Eigen::VectorXd::Zero(x.rows());
  }
};

}  // namespace maas::testing

#endif  // MAAS_TESTS_SERVICES_GENERATIVE_TEST_MODELS_H_
