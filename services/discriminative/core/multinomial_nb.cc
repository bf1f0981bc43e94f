#include "services/discriminative/core/multinomial_nb.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status/status_macros.h"
#include "services/discriminative/core/numpy_compat.h"

namespace maas::discriminative {
namespace {

constexpr double kAlphaLowerBound = 1e-10;

absl::Status ValidatePriors(const std::vector<double>& priors) {
  bool any_positive = false;
  for (size_t c = 0; c < priors.size(); ++c) {
    if (!std::isfinite(priors[c]) || priors[c] < 0.0) {
      return absl::InvalidArgumentError(
          absl::StrCat("class_prior[", c, "] must be finite and >= 0; got ", priors[c]));
    }
    any_positive = any_positive || priors[c] > 0.0;
  }
  if (!priors.empty() && !any_positive) {
    return absl::InvalidArgumentError("class_prior must have at least one positive value");
  }
  return absl::OkStatus();
}

// class_log_prior: numbers < +inf (-inf is a class with prior 0), at least one finite.
// feature_log_prob: log-probabilities, so <= 0 and never NaN; -inf (probability 0) only when the
// smoothing allows a zero count to stay zero (alpha == 0 with force_alpha), finite otherwise.
absl::Status ValidateLogParameters(const MultinomialNbOptions& options,
                                   const std::vector<double>& class_log_prior,
                                   const std::vector<double>& feature_log_prob,
                                   absl::string_view what) {
  for (size_t i = 0; i < class_log_prior.size(); ++i) {
    if (std::isnan(class_log_prior[i]) || class_log_prior[i] == HUGE_VAL) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, "class_log_prior value ", i, " must be a number < +inf; got ", class_log_prior[i]));
    }
  }
  if (std::none_of(class_log_prior.begin(), class_log_prior.end(),
                   [](double v) { return std::isfinite(v); })) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, "class_log_prior must have at least one finite value"));
  }
  const bool zero_allowed = options.force_alpha && options.alpha == 0.0;
  for (size_t i = 0; i < feature_log_prob.size(); ++i) {
    const double v = feature_log_prob[i];
    if (std::isnan(v) || v > 0.0) {
      return absl::InvalidArgumentError(absl::StrCat(what, "feature_log_prob value ", i,
                                                     " must be a log-probability (<= 0); got ", v));
    }
    if (v == -HUGE_VAL && !zero_allowed) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, "feature_log_prob value ", i,
          " is -inf, but with alpha > 0 (or force_alpha false) every feature probability is > 0; "
          "give finite values (or alpha 0 with force_alpha for zero probabilities)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<MultinomialNbOptions> MultinomialNbOptionsFromConfig(
    const v1::ClassifierConfig& config) {
  switch (config.kind_case()) {
    case v1::ClassifierConfig::kComplementNb:
      return absl::UnimplementedError(
          "classifier complement_nb (ComplementNB) is not supported yet; use multinomial_nb");
    case v1::ClassifierConfig::kBernoulliNb:
      return absl::UnimplementedError(
          "classifier bernoulli_nb (BernoulliNB) is not supported yet; use multinomial_nb");
    case v1::ClassifierConfig::kMultinomialNb:
    case v1::ClassifierConfig::KIND_NOT_SET:
      break;
  }
  const v1::MultinomialNbConfig& nb = config.multinomial_nb();
  MultinomialNbOptions options;
  if (nb.has_alpha()) {
    if (!std::isfinite(nb.alpha()) || nb.alpha() < 0.0) {
      return absl::InvalidArgumentError(
          absl::StrCat("alpha must be finite and >= 0; got ", nb.alpha()));
    }
    options.alpha = nb.alpha();
  }
  options.fit_prior = !nb.has_fit_prior() || nb.fit_prior();
  options.force_alpha = !nb.has_force_alpha() || nb.force_alpha();
  options.class_prior.assign(nb.class_prior().begin(), nb.class_prior().end());
  MAAS_RETURN_IF_ERROR(ValidatePriors(options.class_prior));
  return options;
}

absl::StatusOr<MultinomialNb> MultinomialNb::Fit(const std::vector<SparseVector>& rows,
                                                 size_t num_features,
                                                 const std::vector<std::string>& labels,
                                                 const std::vector<double>& weights,
                                                 const MultinomialNbOptions& options) {
  if (rows.empty()) return absl::InvalidArgumentError("no training examples");
  if (labels.size() != rows.size()) {
    return absl::InvalidArgumentError(absl::StrCat("got ", rows.size(), " rows but ", labels.size(),
                                                   " labels (need one per row)"));
  }
  if (!weights.empty() && weights.size() != rows.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "got ", rows.size(), " rows but ", weights.size(), " weights (need one per row, or none)"));
  }
  if (!std::isfinite(options.alpha) || options.alpha < 0.0) {
    return absl::InvalidArgumentError(
        absl::StrCat("alpha must be finite and >= 0; got ", options.alpha));
  }
  MAAS_RETURN_IF_ERROR(ValidatePriors(options.class_prior));
  for (size_t i = 0; i < rows.size(); ++i) {
    if (labels[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("label of example ", i, " is empty"));
    }
    if (!weights.empty() && !(std::isfinite(weights[i]) && weights[i] >= 0.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("weight of example ", i, " must be finite and >= 0; got ", weights[i]));
    }
    const SparseVector& row = rows[i];
    if (row.indices.size() != row.values.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "row ", i, " has ", row.indices.size(), " indices but ", row.values.size(), " values"));
    }
    for (size_t k = 0; k < row.indices.size(); ++k) {
      if (row.indices[k] >= num_features) {
        return absl::InvalidArgumentError(absl::StrCat(
            "row ", i, " has feature index ", row.indices[k], " >= ", num_features, " features"));
      }
      if (!(std::isfinite(row.values[k]) && row.values[k] >= 0.0)) {
        return absl::InvalidArgumentError(
            absl::StrCat("Negative values in data passed to MultinomialNB (row ", i, ")"));
      }
    }
  }
  MultinomialNb nb;
  nb.options_ = options;
  nb.num_features_ = num_features;
  nb.classes_ = labels;
  std::sort(nb.classes_.begin(), nb.classes_.end());
  nb.classes_.erase(std::unique(nb.classes_.begin(), nb.classes_.end()), nb.classes_.end());
  const size_t k = nb.classes_.size();
  if (!options.class_prior.empty() && options.class_prior.size() != k) {
    return absl::InvalidArgumentError(
        absl::StrCat("Number of priors must match number of classes: got ",
                     options.class_prior.size(), " class_prior values for ", k, " classes"));
  }
  if (!weights.empty() &&
      std::all_of(weights.begin(), weights.end(), [](double w) { return w == 0.0; })) {
    return absl::InvalidArgumentError(
        "every sample weight is 0: nothing to learn from (scikit-learn would produce NaN class "
        "priors); give at least one example a weight > 0");
  }
  nb.class_count_.assign(k, 0.0);
  nb.feature_count_.assign(k * num_features, 0.0);
  // fc[c, f] += x * w in sample order (scipy csc_matvecs); cc[c] += w (Y.sum(axis=0)).
  for (size_t i = 0; i < rows.size(); ++i) {
    const size_t c =
        std::lower_bound(nb.classes_.begin(), nb.classes_.end(), labels[i]) - nb.classes_.begin();
    const double w = weights.empty() ? 1.0 : weights[i];
    double* fc = nb.feature_count_.data() + c * num_features;
    const SparseVector& row = rows[i];
    for (size_t e = 0; e < row.indices.size(); ++e) fc[row.indices[e]] += row.values[e] * w;
    nb.class_count_[c] += w;
  }
  MAAS_RETURN_IF_ERROR(nb.UpdateParameters());
  // The fitted parameters must be loadable (FromState's checks): never store what cannot be read.
  MAAS_RETURN_IF_ERROR(ValidateLogParameters(nb.options_, nb.class_log_prior_, nb.feature_log_prob_,
                                             "the fitted model's "));
  return nb;
}

absl::Status MultinomialNb::UpdateParameters() {
  const size_t k = classes_.size();
  const size_t f = num_features_;
  const double alpha = !options_.force_alpha && options_.alpha < kAlphaLowerBound ? kAlphaLowerBound
                                                                                  : options_.alpha;
  feature_log_prob_.assign(k * f, 0.0);
  std::vector<double> smoothed(f);
  for (size_t c = 0; c < k; ++c) {
    const double* fc = feature_count_.data() + c * f;
    for (size_t j = 0; j < f; ++j) smoothed[j] = fc[j] + alpha;
    const double log_total = std::log(NumpySum(smoothed.data(), f));
    double* flp = feature_log_prob_.data() + c * f;
    for (size_t j = 0; j < f; ++j) flp[j] = std::log(smoothed[j]) - log_total;
  }
  class_log_prior_.assign(k, 0.0);
  if (!options_.class_prior.empty()) {
    if (options_.class_prior.size() != k) {
      return absl::InvalidArgumentError("Number of priors must match number of classes.");
    }
    for (size_t c = 0; c < k; ++c) class_log_prior_[c] = std::log(options_.class_prior[c]);
  } else if (options_.fit_prior) {
    const double log_total = std::log(NumpySum(class_count_.data(), k));
    for (size_t c = 0; c < k; ++c) class_log_prior_[c] = std::log(class_count_[c]) - log_total;
  } else {
    for (size_t c = 0; c < k; ++c) class_log_prior_[c] = -std::log(static_cast<double>(k));
  }
  return absl::OkStatus();
}

absl::StatusOr<MultinomialNb> MultinomialNb::FromState(
    const MultinomialNbOptions& options, std::vector<std::string> classes,
    std::vector<double> class_count, size_t num_features, std::vector<double> feature_count,
    std::vector<double> class_log_prior, std::vector<double> feature_log_prob) {
  const size_t k = classes.size();
  if (k == 0) return absl::InvalidArgumentError("classes is empty: need at least 1 class");
  for (size_t c = 0; c < k; ++c) {
    if (classes[c].empty())
      return absl::InvalidArgumentError(absl::StrCat("classes[", c, "] is empty"));
    if (c > 0 && !(classes[c - 1] < classes[c])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "classes must be sorted by code point without duplicates (numpy.unique order); classes[",
          c - 1, "] = \"", classes[c - 1], "\" is not before classes[", c, "] = \"", classes[c],
          "\""));
    }
  }
  if (num_features == 0) return absl::InvalidArgumentError("the classifier has 0 features");
  const auto check_size = [&](const std::vector<double>& v, size_t want, absl::string_view name) {
    if (v.size() != want) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " has ", v.size(), " values; expected ", want));
    }
    return absl::OkStatus();
  };
  MAAS_RETURN_IF_ERROR(check_size(class_count, k, "class_count"));
  MAAS_RETURN_IF_ERROR(check_size(class_log_prior, k, "class_log_prior"));
  MAAS_RETURN_IF_ERROR(check_size(feature_count, k * num_features, "feature_count"));
  MAAS_RETURN_IF_ERROR(check_size(feature_log_prob, k * num_features, "feature_log_prob"));
  for (size_t i = 0; i < k; ++i) {
    if (!(std::isfinite(class_count[i]) && class_count[i] >= 0.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("class_count[", i, "] must be finite and >= 0; got ", class_count[i]));
    }
  }
  for (size_t i = 0; i < feature_count.size(); ++i) {
    if (!(std::isfinite(feature_count[i]) && feature_count[i] >= 0.0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "feature_count value ", i, " must be finite and >= 0; got ", feature_count[i]));
    }
  }
  MAAS_RETURN_IF_ERROR(ValidateLogParameters(options, class_log_prior, feature_log_prob, ""));
  if (!options.class_prior.empty() && options.class_prior.size() != k) {
    return absl::InvalidArgumentError(
        absl::StrCat("Number of priors must match number of classes: got ",
                     options.class_prior.size(), " class_prior values for ", k, " classes"));
  }
  MultinomialNb nb;
  nb.options_ = options;
  nb.classes_ = std::move(classes);
  nb.num_features_ = num_features;
  nb.class_count_ = std::move(class_count);
  nb.feature_count_ = std::move(feature_count);
  nb.class_log_prior_ = std::move(class_log_prior);
  nb.feature_log_prob_ = std::move(feature_log_prob);
  return nb;
}

ClassScores MultinomialNb::Predict(const SparseVector& row) const {
  const size_t k = classes_.size();
  ClassScores scores;
  scores.joint_log_likelihood.assign(k, 0.0);
  for (size_t c = 0; c < k; ++c) {
    const double* flp = feature_log_prob_.data() + c * num_features_;
    double acc = 0.0;
    for (size_t e = 0; e < row.indices.size(); ++e) {
      if (row.indices[e] < num_features_) acc += row.values[e] * flp[row.indices[e]];
    }
    scores.joint_log_likelihood[c] = acc + class_log_prior_[c];
  }
  scores.log_probability = LogProbabilitiesFromJointLogLikelihood(scores.joint_log_likelihood);
  scores.probability.resize(k);
  for (size_t c = 0; c < k; ++c) scores.probability[c] = std::exp(scores.log_probability[c]);
  scores.predicted = NumpyArgmax(scores.joint_log_likelihood.data(), k);
  return scores;
}

}  // namespace maas::discriminative
