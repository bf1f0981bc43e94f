#include "services/generative/core/ppca.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/convert/matrix.h"
#include "common/status/status_macros.h"
#include "services/generative/core/linear_gaussian.h"

namespace maas::generative {
namespace {

absl::StatusOr<std::unique_ptr<LinearGaussianModel>> Build(const v1::PpcaSpec& spec) {
  MAAS_ASSIGN_OR_RETURN(Eigen::MatrixXd w,
                        convert::MatrixFromProto(spec.loadings(), "ppca.loadings"));
  MAAS_ASSIGN_OR_RETURN(Eigen::VectorXd mean,
                        convert::VectorFromRepeated(spec.mean(), "ppca.mean"));
  const double sigma2 = spec.noise_variance();
  if (!(sigma2 > 0.0) || !std::isfinite(sigma2)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ppca.noise_variance is ", sigma2, "; it must be a finite number > 0"));
  }
  const Eigen::Index d = w.rows();
  return LinearGaussianModel::Create(
      "ppca", std::move(w), std::move(mean),
      Eigen::VectorXd::Constant(std::max<Eigen::Index>(d, 1), sigma2));
}

class PpcaFitter final : public FamilyFitter {
 public:
  explicit PpcaFitter(int latent_dim) : latent_dim_(latent_dim) {}

  absl::Status AddRows(const Eigen::Ref<const Eigen::MatrixXd>& rows, uint64_t) override {
    rows_.Add(rows);
    return absl::OkStatus();
  }

  absl::StatusOr<FitResult> Finish(const exec::StopToken& stop) override {
    const int64_t n = rows_.rows(), d = rows_.cols();
    const int l = latent_dim_;
    if (l >= d) {
      return absl::InvalidArgumentError(absl::StrCat("ppca.latent_dim is ", l,
                                                     " but the rows have D = ", d,
                                                     " columns; ppca needs 1 <= latent_dim < D"));
    }
    if (n < 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("ppca needs at least 2 training rows, got ", n));
    }
    const Eigen::MatrixXd x = rows_.Take();
    const Eigen::VectorXd mean = x.colwise().mean().transpose();
    const Eigen::MatrixXd centred = x.rowwise() - mean.transpose();
    MAAS_RETURN_IF_ERROR(CheckSpreadRepresentable(centred.cwiseAbs().maxCoeff(), "ppca"));
    const double nd = static_cast<double>(n);
    absl::StatusOr<TopEigenpairs> top;
    if (n >= d) {
      const Eigen::MatrixXd cov = ScaledGram(centred, nd);
      MAAS_RETURN_IF_ERROR(CheckMomentsFinite(mean, cov, x, "ppca"));
      MAAS_RETURN_IF_ERROR(stop.Check());
      top = TopEigenpairsOfSymmetric(cov, l);
    } else {  // fewer rows than columns: the SVD of the rows, no D x D matrix
      const Eigen::MatrixXd y = centred / std::sqrt(nd);
      MAAS_RETURN_IF_ERROR(CheckMomentsFinite(mean, y.colwise().squaredNorm(), x, "ppca"));
      MAAS_RETURN_IF_ERROR(stop.Check());
      top = TopEigenpairsOfGram(y, l);
    }
    if (!top.ok()) return absl::InternalError(absl::StrCat("ppca: ", top.status().message()));
    const double sigma2 = top->rest / static_cast<double>(d - l);
    // Rows that vary in at most L directions leave discarded eigenvalues that are rounding, not
    // noise: of the order of eps * lambda_max, growing with the sums that formed the covariance
    // (~sqrt(N D) terms' worth). Such a sigma2 is not a noise variance (an audit saw 1e-15 fitted,
    // with a mean training log-likelihood of 45), so it is refused like an exact 0.
    const double rounding = 16.0 * std::numeric_limits<double>::epsilon() *
                            std::sqrt(static_cast<double>(n) * static_cast<double>(d)) *
                            std::max(top->largest, 0.0);
    if (!(sigma2 > rounding) || !std::isfinite(sigma2)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "ppca: the rows vary in at most ", l,
          " directions (the discarded eigenvalues of their covariance are 0 up to rounding: their "
          "mean is ",
          sigma2, ", the largest eigenvalue ", top->largest,
          "), so the noise variance would be 0; lower latent_dim or fit on more varied rows"));
    }
    Eigen::MatrixXd w(d, l);
    for (int j = 0; j < l; ++j) {  // descending eigenvalues
      Eigen::VectorXd u = top->vectors.col(j);
      Eigen::Index arg;
      u.cwiseAbs().maxCoeff(&arg);
      if (u(arg) < 0) u = -u;
      w.col(j) = u * std::sqrt(std::max(top->values(j) - sigma2, 0.0));
    }
    FitResult result;
    v1::PpcaSpec* spec = result.spec.mutable_ppca();
    convert::MatrixToProto(w, spec->mutable_loadings());
    for (Eigen::Index j = 0; j < d; ++j) spec->add_mean(mean(j));
    spec->set_noise_variance(sigma2);
    absl::StatusOr<std::unique_ptr<LinearGaussianModel>> model = Build(*spec);
    MAAS_RETURN_IF_ERROR(FittedModelStatus(model.status(), "ppca"));
    result.trace.add_log_likelihood((*model)->ExactLogLikelihood(x).mean());
    result.trace.set_converged(true);
    result.trace.set_n_iter(1);
    return result;
  }

 private:
  int latent_dim_;
  RowBuffer rows_;
};

}  // namespace

Family PpcaFamily() {
  Family family;
  family.name = "ppca";
  family.spec_case = v1::GenerativeModelSpec::kPpca;
  family.build =
      [](const v1::GenerativeModelSpec& spec) -> absl::StatusOr<std::unique_ptr<GenerativeModel>> {
    MAAS_ASSIGN_OR_RETURN(std::unique_ptr<LinearGaussianModel> model, Build(spec.ppca()));
    return std::unique_ptr<GenerativeModel>(std::move(model));
  };
  family.model_size = [](const v1::GenerativeModelSpec& spec) {
    return LinearGaussianModelSize("ppca", spec.ppca().loadings());
  };
  family.fit_case = v1::FitConfig::kPpca;
  family.make_fitter = [](const v1::FitConfig& config,
                          uint64_t) -> absl::StatusOr<std::unique_ptr<FamilyFitter>> {
    const uint32_t l = config.ppca().latent_dim();
    if (l == 0 || l > 100000) {
      return absl::InvalidArgumentError(
          absl::StrCat("ppca.latent_dim is ", l, "; set it to the latent dimension L, 1 <= L < D"));
    }
    return std::unique_ptr<FamilyFitter>(std::make_unique<PpcaFitter>(static_cast<int>(l)));
  };
  // The fit forms the D x D covariance (and its eigenvectors), larger than the D x L loadings:
  // counted for every fit (the rows are not known yet), although one of fewer rows than columns
  // takes the SVD of the N x D rows instead.
  // The fitted model forms LinearGaussianValues (its model_size), counted too so that a fit this
  // passes is stored and loaded (L <= D is checked when the fit ends).
  family.fit_size = [](const v1::FitConfig& config, int64_t dimension) {
    return LinearGaussianFitSize(dimension, config.ppca().latent_dim(), " (ppca's closed form)");
  };
  return family;
}

}  // namespace maas::generative
