#include "services/generative/core/uniform.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/random/item_rng.h"

namespace maas::generative {
namespace {

// The registry's fitter: UniformFitter plus the trace (closed form: one iteration, converged).
class UniformFamilyFitter final : public FamilyFitter {
 public:
  absl::Status AddRows(const Eigen::Ref<const Eigen::MatrixXd>& rows, uint64_t) override {
    return fitter_.AddRows(rows);
  }
  absl::StatusOr<FitResult> Finish(const exec::StopToken&) override {
    absl::StatusOr<v1::UniformSpec> uniform = fitter_.Finish();
    if (!uniform.ok()) return uniform.status();
    FitResult result;
    *result.spec.mutable_uniform() = *uniform;
    result.trace.set_converged(true);
    result.trace.set_n_iter(1);
    // Mean training log-likelihood: every training row lies in the fitted box: -log(volume).
    double log_volume = 0.0;
    for (int d = 0; d < uniform->low_size(); ++d) {
      log_volume += std::log(uniform->high(d) - uniform->low(d));
    }
    result.trace.add_log_likelihood(0.0 - log_volume);  // +0, not -0, for a volume of 1
    return result;
  }

 private:
  UniformFitter fitter_;
};

}  // namespace

Family UniformFamily() {
  Family family;
  family.name = "uniform";
  family.spec_case = v1::GenerativeModelSpec::kUniform;
  family.build =
      [](const v1::GenerativeModelSpec& spec) -> absl::StatusOr<std::unique_ptr<GenerativeModel>> {
    absl::StatusOr<std::unique_ptr<UniformModel>> model = UniformModel::Create(spec.uniform());
    if (!model.ok()) return model.status();
    return std::unique_ptr<GenerativeModel>(*std::move(model));
  };
  // low, high and their width.
  family.model_size = [](const v1::GenerativeModelSpec& spec) {
    const int n = std::max(spec.uniform().low_size(), spec.uniform().high_size());
    ModelSize size;
    size.bytes = Float64Bytes(3.0 * n);
    size.what = absl::StrCat(n, " dimensions");
    size.smaller = "use fewer dimensions";
    return size;
  };
  family.fit_case = v1::FitConfig::kUniform;
  family.make_fitter = [](const v1::FitConfig&,
                          uint64_t) -> absl::StatusOr<std::unique_ptr<FamilyFitter>> {
    return std::unique_ptr<FamilyFitter>(std::make_unique<UniformFamilyFitter>());
  };
  // low and high.
  family.fit_size = [](const v1::FitConfig&, int64_t dimension) {
    FitSize size;
    size.bytes = Float64Bytes(2.0 * static_cast<double>(dimension));
    size.what = absl::StrCat("low and high of ", dimension, " dimensions");
    size.smaller = "reduce the columns";
    return size;
  };
  return family;
}

absl::StatusOr<std::unique_ptr<UniformModel>> UniformModel::Create(const v1::UniformSpec& spec) {
  if (spec.low_size() == 0) {
    return absl::InvalidArgumentError(
        "uniform: low and high need one value per dimension (D >= 1), got none");
  }
  if (spec.low_size() != spec.high_size()) {
    return absl::InvalidArgumentError(absl::StrCat("uniform: low has ", spec.low_size(),
                                                   " values but high has ", spec.high_size(),
                                                   "; give one bound of each per dimension"));
  }
  const int d = spec.low_size();
  Eigen::VectorXd low(d), high(d);
  for (int i = 0; i < d; ++i) {
    low(i) = spec.low(i);
    high(i) = spec.high(i);
    if (!std::isfinite(low(i)) || !std::isfinite(high(i))) {
      return absl::InvalidArgumentError(absl::StrCat("uniform: bounds of dimension ", i, " are [",
                                                     low(i), ", ", high(i),
                                                     "]; bounds must be finite"));
    }
    if (!(high(i) > low(i))) {
      return absl::InvalidArgumentError(absl::StrCat("uniform: dimension ", i,
                                                     " has low = ", low(i), " and high = ", high(i),
                                                     "; high must be greater than low"));
    }
    if (!std::isfinite(high(i) - low(i))) {
      return absl::InvalidArgumentError(absl::StrCat("uniform: the width of dimension ", i,
                                                     " overflows a double; use a smaller box"));
    }
  }
  return std::unique_ptr<UniformModel>(new UniformModel(std::move(low), std::move(high)));
}

UniformModel::UniformModel(Eigen::VectorXd low, Eigen::VectorXd high)
    : low_(std::move(low)),
      high_(std::move(high)),
      width_(high_ - low_),
      log_volume_(ExactLog(width_.array()).sum()) {}

void UniformModel::Sample(uint64_t seed, uint64_t first_index, Eigen::Ref<RowMatrixXd> x,
                          RowMatrixXd* latents) const {
  const int d = dimension();
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    random::ItemRng rng(seed, kSampleStream, first_index + static_cast<uint64_t>(i));
    double* row = &x(i, 0);
    rng.FillUniforms(row, static_cast<size_t>(d));
    for (int j = 0; j < d; ++j) row[j] = low_(j) + width_(j) * row[j];
  }
  if (latents != nullptr) latents->resize(x.rows(), 0);
}

Eigen::VectorXd UniformModel::ExactLogLikelihood(const Eigen::Ref<const Eigen::MatrixXd>& x) const {
  Eigen::VectorXd out(x.rows());
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    const bool inside = (x.row(i).transpose().array() >= low_.array()).all() &&
                        (x.row(i).transpose().array() <= high_.array()).all();
    // 0.0 - v, not -v: a box of volume 1 has log p = +0, not -0 (printed "-0" by clients).
    out(i) = inside ? 0.0 - log_volume_ : -std::numeric_limits<double>::infinity();
  }
  return out;
}

absl::Status UniformFitter::AddRows(const Eigen::Ref<const Eigen::MatrixXd>& rows) {
  if (rows.rows() == 0) return absl::OkStatus();
  if (num_rows_ == 0) {
    min_ = rows.colwise().minCoeff().transpose();
    max_ = rows.colwise().maxCoeff().transpose();
  } else {
    if (rows.cols() != min_.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("rows: this chunk has ", rows.cols(), " columns but earlier chunks had ",
                       min_.size(), "; every chunk must have the same number of columns"));
    }
    min_ = min_.cwiseMin(rows.colwise().minCoeff().transpose());
    max_ = max_.cwiseMax(rows.colwise().maxCoeff().transpose());
  }
  num_rows_ += static_cast<uint64_t>(rows.rows());
  return absl::OkStatus();
}

absl::StatusOr<v1::UniformSpec> UniformFitter::Finish() const {
  if (num_rows_ == 0) {
    return absl::InvalidArgumentError(
        "no training rows; send at least one Matrix chunk with rows after the config");
  }
  v1::UniformSpec spec;
  for (Eigen::Index j = 0; j < min_.size(); ++j) {
    if (!(max_(j) > min_(j))) {
      return absl::FailedPreconditionError(absl::StrCat(
          "dimension ", j, " is constant in the training data (every value is ", min_(j),
          "); a uniform box needs high > low in every dimension: drop the column or add varied "
          "rows"));
    }
    spec.add_low(min_(j));
    spec.add_high(max_(j));
  }
  return spec;
}

}  // namespace maas::generative
