#include "services/generative/core/factor_analysis.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/convert/matrix.h"
#include "common/math/gaussian.h"
#include "common/status/status_macros.h"
#include "services/generative/core/linear_gaussian.h"

namespace maas::generative {
namespace {

absl::StatusOr<std::unique_ptr<LinearGaussianModel>> Build(const v1::FactorAnalysisSpec& spec) {
  MAAS_ASSIGN_OR_RETURN(Eigen::MatrixXd w,
                        convert::MatrixFromProto(spec.loadings(), "factor_analysis.loadings"));
  MAAS_ASSIGN_OR_RETURN(Eigen::VectorXd mean,
                        convert::VectorFromRepeated(spec.mean(), "factor_analysis.mean"));
  MAAS_ASSIGN_OR_RETURN(
      Eigen::VectorXd psi,
      convert::VectorFromRepeated(spec.noise_variance(), "factor_analysis.noise_variance"));
  return LinearGaussianModel::Create("factor_analysis", std::move(w), std::move(mean),
                                     std::move(psi));
}

class FactorAnalysisFitter final : public FamilyFitter {
 public:
  FactorAnalysisFitter(int latent_dim, double tol, int max_iter)
      : latent_dim_(latent_dim), tol_(tol), max_iter_(max_iter) {}

  absl::Status AddRows(const Eigen::Ref<const Eigen::MatrixXd>& rows, uint64_t) override {
    rows_.Add(rows);
    return absl::OkStatus();
  }

  absl::StatusOr<FitResult> Finish(const exec::StopToken& stop) override {
    const int64_t n = rows_.rows(), d = rows_.cols();
    const int l = latent_dim_;
    if (l > d) {
      return absl::InvalidArgumentError(
          absl::StrCat("factor_analysis.latent_dim is ", l, " but the rows have D = ", d,
                       " columns; factor_analysis needs 1 <= latent_dim <= D"));
    }
    if (n < 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("factor_analysis needs at least 2 training rows, got ", n));
    }
    const Eigen::MatrixXd x = rows_.Take();
    const Eigen::VectorXd mean = x.colwise().mean().transpose();
    Eigen::MatrixXd centred = x.rowwise() - mean.transpose();
    MAAS_RETURN_IF_ERROR(
        CheckSpreadRepresentable(centred.cwiseAbs().maxCoeff(), "factor_analysis"));
    // scikit-learn's noise floor kSmall (1e-12) and its start psi = 1 are absolute, not relative
    // to the data: a column whose variance is near or below 1e-12 (values of ~1e-6, e.g. lengths in
    // metres of micrometre-scale things) gets psi = 1e-12 and a model far worse than its data allow
    // (rows x 1e-9: 20 nats per row below the same fit of the rows as they are). Factor analysis is
    // equivariant under scaling a column (W_j -> s W_j, psi_j -> s^2 psi_j), so a column whose
    // values all lie within 1e-2 of its mean is fitted multiplied by a power of two s_j (exact)
    // that brings its largest |x - mean| into [1, 2), and the fitted loadings and noise variances
    // are scaled back. Other columns (s_j = 1) are fitted as scikit-learn fits them, bit for bit.
    Eigen::VectorXd col_scale = Eigen::VectorXd::Ones(d);
    double log_scale = 0.0;  // sum_j log s_j: log p(x) = log p(x S) + sum_j log s_j
    for (Eigen::Index j = 0; j < d; ++j) {
      const double spread = centred.col(j).cwiseAbs().maxCoeff();
      if (spread > 0.0 && spread < 1e-2) {
        col_scale(j) = std::ldexp(1.0, -std::ilogb(spread));
        centred.col(j) *= col_scale(j);
        log_scale += std::log(col_scale(j));
      }
    }
    const double nd = static_cast<double>(n);
    // With at least as many rows as columns each iteration takes the top L eigenpairs of the D x D
    // scaled covariance (TopEigenpairsOfSymmetric: for L small against D a subspace iteration);
    // with fewer, the thin SVD of the N x D scaled
    // rows, as scikit-learn's svd_method='lapack' does, and no D x D matrix is formed.
    const bool few_rows = n < d;
    const Eigen::MatrixXd cov = few_rows ? Eigen::MatrixXd() : ScaledGram(centred, nd);
    const Eigen::VectorXd var = centred.array().square().colwise().sum().transpose() / nd;
    MAAS_RETURN_IF_ERROR(
        CheckMomentsFinite(mean, few_rows ? Eigen::MatrixXd(var) : cov, x, "factor_analysis"));
    const double sqrt_n = std::sqrt(nd);
    constexpr double kSmall = 1e-12;
    const double llconst = static_cast<double>(d) * math::kLogTwoPi + l;
    Eigen::VectorXd psi = Eigen::VectorXd::Ones(d);
    Eigen::MatrixXd w(l, d);  // scikit-learn's components_
    double old_ll = -std::numeric_limits<double>::infinity();
    FitResult result;
    bool converged = false;
    int iter = 0;
    EigenSolverState eigen_state;  // whether the subspace iteration has run out of budget once
    for (iter = 0; iter < max_iter_; ++iter) {
      MAAS_RETURN_IF_ERROR(stop.Check());
      const Eigen::VectorXd sqrt_psi = (psi.array().sqrt() + kSmall).matrix();
      absl::StatusOr<TopEigenpairs> top =
          few_rows
              ? TopEigenpairsOfGram(
                    (centred.array().rowwise() / (sqrt_psi.transpose().array() * sqrt_n)).matrix(),
                    l)
              : TopEigenpairsOfSymmetric(cov.array() / (sqrt_psi * sqrt_psi.transpose()).array(), l,
                                         &eigen_state);
      if (!top.ok()) {
        return absl::InternalError(absl::StrCat("factor_analysis: ", top.status().message()));
      }
      double log_s2 = 0.0;
      for (int j = 0; j < l; ++j) {
        const double s2 = top->values(j);
        if (!(s2 > 0.0)) {
          return absl::FailedPreconditionError(
              absl::StrCat("factor_analysis: the scaled rows vary in fewer than latent_dim = ", l,
                           " directions; lower latent_dim or fit on more varied rows"));
        }
        log_s2 += std::log(s2);
        w.row(j) = std::sqrt(std::max(s2 - 1.0, 0.0)) * top->vectors.col(j).transpose();
      }
      const double unexplained = top->rest;
      w = (w.array().rowwise() * sqrt_psi.transpose().array()).matrix();
      const double ll = -nd / 2.0 * (llconst + log_s2 + unexplained + psi.array().log().sum());
      result.trace.add_log_likelihood(ll / nd + log_scale);
      if (!std::isfinite(ll)) {
        return absl::FailedPreconditionError(
            "factor_analysis: the log-likelihood is not finite; scale the data");
      }
      if (ll - old_ll < tol_) {
        converged = true;
        break;
      }
      old_ll = ll;
      psi = (var - w.array().square().colwise().sum().transpose().matrix()).cwiseMax(kSmall);
    }
    // Back to the columns' own units.
    w = (w.array().rowwise() / col_scale.transpose().array()).matrix();
    psi = (psi.array() / col_scale.array().square()).matrix();
    v1::FactorAnalysisSpec* spec = result.spec.mutable_factor_analysis();
    // Sign each factor so its largest-magnitude loading is positive (the likelihood is unchanged).
    for (int j = 0; j < l; ++j) {
      Eigen::Index arg;
      w.row(j).cwiseAbs().maxCoeff(&arg);
      if (w(j, arg) < 0) w.row(j) *= -1.0;
    }
    convert::MatrixToProto(w.transpose(), spec->mutable_loadings());
    for (Eigen::Index j = 0; j < d; ++j) {
      spec->add_mean(mean(j));
      spec->add_noise_variance(psi(j));
    }
    result.trace.set_converged(converged);
    result.trace.set_n_iter(static_cast<uint32_t>(std::min(iter + 1, max_iter_)));
    MAAS_RETURN_IF_ERROR(FittedModelStatus(Build(*spec).status(), "factor_analysis"));
    return result;
  }

 private:
  int latent_dim_;
  double tol_;
  int max_iter_;
  RowBuffer rows_;
};

}  // namespace

Family FactorAnalysisFamily() {
  Family family;
  family.name = "factor_analysis";
  family.spec_case = v1::GenerativeModelSpec::kFactorAnalysis;
  family.build =
      [](const v1::GenerativeModelSpec& spec) -> absl::StatusOr<std::unique_ptr<GenerativeModel>> {
    MAAS_ASSIGN_OR_RETURN(std::unique_ptr<LinearGaussianModel> model,
                          Build(spec.factor_analysis()));
    return std::unique_ptr<GenerativeModel>(std::move(model));
  };
  family.model_size = [](const v1::GenerativeModelSpec& spec) {
    return LinearGaussianModelSize("factor_analysis", spec.factor_analysis().loadings());
  };
  family.fit_case = v1::FitConfig::kFactorAnalysis;
  family.make_fitter = [](const v1::FitConfig& config,
                          uint64_t) -> absl::StatusOr<std::unique_ptr<FamilyFitter>> {
    const v1::FactorAnalysisFit& fit = config.factor_analysis();
    if (fit.latent_dim() == 0 || fit.latent_dim() > 100000) {
      return absl::InvalidArgumentError(
          absl::StrCat("factor_analysis.latent_dim is ", fit.latent_dim(),
                       "; set it to the latent dimension L, 1 <= L <= D"));
    }
    double tol = 1e-2;
    if (fit.has_tol()) {
      if (!(fit.tol() >= 0.0) || !std::isfinite(fit.tol())) {
        return absl::InvalidArgumentError(
            absl::StrCat("factor_analysis.tol is ", fit.tol(), "; it must be finite and >= 0"));
      }
      tol = fit.tol();
    }
    if (fit.max_iter() > 1000000) {
      return absl::InvalidArgumentError("factor_analysis.max_iter must be at most 1000000");
    }
    const int max_iter = fit.max_iter() == 0 ? 1000 : static_cast<int>(fit.max_iter());
    return std::unique_ptr<FamilyFitter>(
        std::make_unique<FactorAnalysisFitter>(static_cast<int>(fit.latent_dim()), tol, max_iter));
  };
  // The fit forms the D x D covariance (and a scaled copy to decompose every iteration), larger
  // than the L x D loadings: counted for every fit (the rows are not known yet), although one of
  // fewer rows than columns takes the SVD of the N x D scaled rows instead.
  // The fitted model forms LinearGaussianValues (its model_size), counted too so that a fit this
  // passes is stored and loaded (L <= D is checked when the fit ends).
  family.fit_size = [](const v1::FitConfig& config, int64_t dimension) {
    return LinearGaussianFitSize(dimension, config.factor_analysis().latent_dim(),
                                 " every iteration (factor_analysis)");
  };
  return family;
}

}  // namespace maas::generative
