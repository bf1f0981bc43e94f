#include "services/discriminative/core/multinomial_nb.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "services/discriminative/core/numpy_compat.h"

namespace maas::discriminative {

absl::StatusOr<MultinomialNbOptions> MultinomialNbOptionsFromConfig(
    const v1::ClassifierConfig& config) {
  if (config.kind_case() != v1::ClassifierConfig::kMultinomialNb &&
      config.kind_case() != v1::ClassifierConfig::KIND_NOT_SET) {
    return absl::InvalidArgumentError("the classifier config is not multinomial_nb");
  }
  return NbOptionsFromConfig(config.multinomial_nb());
}

v1::ClassifierConfig MultinomialNb::Config() const {
  v1::ClassifierConfig config;
  v1::MultinomialNbConfig* nb = config.mutable_multinomial_nb();
  nb->set_alpha(options_.alpha);
  nb->set_fit_prior(options_.fit_prior);
  nb->set_force_alpha(options_.force_alpha);
  nb->mutable_class_prior()->Assign(options_.class_prior.begin(), options_.class_prior.end());
  return config;
}

absl::StatusOr<MultinomialNb> MultinomialNb::Fit(SparseRowsView rows, size_t num_features,
                                                 const std::vector<std::string>& labels,
                                                 const std::vector<double>& weights,
                                                 const MultinomialNbOptions& options) {
  MultinomialNb nb;
  nb.options_ = options;
  MAAS_RETURN_IF_ERROR(nb.FitInPlace(rows, num_features, labels, weights));
  return nb;
}

absl::Status MultinomialNb::UpdateParameters() {
  const size_t k = classes_.size();
  const size_t f = num_features_;
  const double alpha = options_.effective_alpha();
  // feature_log_prob_ = log(fc + alpha) - log(sum(fc + alpha)) per class, written straight into
  // the weight table (its transpose), which then holds it: no C x F matrix besides the counts
  // and the table (BuildTable, ValidateFeatureLogProb).
  std::vector<double> log_total(k);
  for (size_t c = 0; c < k; ++c) {
    log_total[c] = std::log(NumpySumPlus(feature_count_.data() + c * f, f, alpha));
  }
  ReleaseFeatureLogProb();
  // A feature without counts has the smoothed count 0 + alpha = alpha.
  const LogOfMostlyOne log(alpha);
  SetTableFromBlocks([&](size_t c, size_t j0, size_t j1, double* values) {
    const double* fc = feature_count_.data() + c * f;
    for (size_t j = j0; j < j1; ++j) values[j - j0] = log(fc[j] + alpha) - log_total[c];
  });
  UpdateClassLogPrior();
  if (std::none_of(class_log_prior_.begin(), class_log_prior_.end(),
                   [](double v) { return std::isfinite(v); }) ||
      std::any_of(class_log_prior_.begin(), class_log_prior_.end(),
                  [](double v) { return std::isnan(v); })) {
    return absl::InvalidArgumentError(
        "the fitted class_log_prior has no finite value (all class weights 0?)");
  }
  return absl::OkStatus();
}

absl::Status MultinomialNb::ValidateFeatureLogProb() const {
  // log(fc + alpha) - log(sum): NaN only as log(0) - log(0), a class without counts under alpha 0
  // (or counts that overflow to inf). scikit-learn's feature_log_prob_ has the same NaN row.
  const bool allow_neg_inf = options_.force_alpha && options_.alpha == 0.0;
  // The common case in one pass: every value passes CheckLogProbabilities (so none is NaN). A
  // fit's values are in the weight table (UpdateParameters), a loaded state's in
  // feature_log_prob_.
  const bool fitted = feature_log_prob_.empty();
  if (fitted ? AllLogProbabilities(weights_t_.data(), weights_t_.size(), allow_neg_inf, false)
             : AllLogProbabilities(feature_log_prob_, allow_neg_inf, /*allow_positive=*/false)) {
    return absl::OkStatus();
  }
  const std::vector<double> flp = feature_log_prob();  // C x F, to name the first bad value
  const size_t f = num_features_;
  for (size_t i = 0; i < flp.size(); ++i) {
    if (!std::isnan(flp[i])) continue;
    const size_t c = i / f;
    const double total = NumpySum(feature_count_.data() + c * f, f);
    return absl::InvalidArgumentError(absl::StrCat(
        "feature_log_prob value ", i, " (class '", classes_[c].substr(0, 100), "', feature ", i % f,
        ") is NaN: ",
        std::isfinite(total)
            ? absl::StrCat(
                  "the class's total feature count is ", total,
                  " and alpha is 0, so its feature_log_prob_ is log(0) - log(0) = NaN "
                  "(a class whose documents have none of the features, or that only "
                  "partial_fit's classes or zero sample weights brought in); use alpha > 0")
            : "the class's weighted feature counts overflow float64 (sample weights too large); "
              "scale the sample weights down",
        ". scikit-learn's MultinomialNB computes the same NaN, and every text with any of the "
        "features would get NaN probabilities (scikit-learn's too), so the model is refused"));
  }
  return CheckLogProbabilities(flp, "feature_log_prob", allow_neg_inf, /*allow_positive=*/false);
}

void MultinomialNb::BuildTable() {
  // A loaded state's feature_log_prob_ (a fit's is in the table already).
  if (!feature_log_prob_.empty()) SetTableTransposed(feature_log_prob_);
  ReleaseFeatureLogProb();  // the table holds it
  bias_ = class_log_prior_;
}

absl::StatusOr<MultinomialNb> MultinomialNb::FromState(
    const MultinomialNbOptions& options, std::vector<std::string> classes,
    std::vector<double> class_count, size_t num_features, std::vector<double> feature_count,
    std::vector<double> class_log_prior, std::vector<double> feature_log_prob) {
  v1::ClassifierState state;
  state.mutable_classes()->Assign(classes.begin(), classes.end());
  state.mutable_class_count()->Assign(class_count.begin(), class_count.end());
  state.mutable_class_log_prior()->Assign(class_log_prior.begin(), class_log_prior.end());
  const size_t k = classes.size();
  const auto set = [&](const std::vector<double>& v, common::v1::Matrix* m) {
    m->set_rows(static_cast<uint32_t>(k));
    m->set_cols(static_cast<uint32_t>(num_features));
    m->mutable_values()->Assign(v.begin(), v.end());
  };
  set(feature_count, state.mutable_feature_count());
  set(feature_log_prob, state.mutable_feature_log_prob());
  MultinomialNb nb;
  nb.options_ = options;
  MAAS_RETURN_IF_ERROR(ValidateNbOptions(options));
  MAAS_RETURN_IF_ERROR(nb.LoadState(&state, num_features, ClassifierStateUse::kFitted));
  nb.BuildTable();
  return nb;
}

namespace {

absl::Status Validate(const v1::ClassifierConfig& config) {
  return MultinomialNbOptionsFromConfig(config).status();
}

absl::StatusOr<std::unique_ptr<Classifier>> FitKind(const v1::ClassifierConfig& config,
                                                    v1::LabelType label_type, SparseRowsView rows,
                                                    size_t num_features,
                                                    const std::vector<std::string>& labels,
                                                    const std::vector<double>& weights) {
  MAAS_ASSIGN_OR_RETURN(MultinomialNbOptions options, MultinomialNbOptionsFromConfig(config));
  options.label_type = label_type;
  MAAS_ASSIGN_OR_RETURN(MultinomialNb nb,
                        MultinomialNb::Fit(rows, num_features, labels, weights, options));
  return std::unique_ptr<Classifier>(std::make_unique<MultinomialNb>(std::move(nb)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Classifier>> MultinomialNbFromState(v1::ClassifierState* state,
                                                                   size_t num_features,
                                                                   ClassifierStateUse use) {
  MAAS_ASSIGN_OR_RETURN(const MultinomialNbOptions options,
                        MultinomialNbOptionsFromConfig(state->config()));
  MultinomialNb nb;
  nb.options_ = options;
  MAAS_RETURN_IF_ERROR(nb.LoadState(state, num_features, use));
  nb.BuildTable();
  return std::unique_ptr<Classifier>(std::make_unique<MultinomialNb>(std::move(nb)));
}

// fit_tables: counts, weight table and a partial fit's batch counts.
const ClassifierKind kMultinomialNbKind = {"multinomial_nb", &Validate, &FitKind,
                                           &MultinomialNbFromState, 3};

}  // namespace maas::discriminative
