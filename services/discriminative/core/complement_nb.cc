#include "services/discriminative/core/complement_nb.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "services/discriminative/core/numpy_compat.h"

namespace maas::discriminative {

v1::ClassifierConfig ComplementNb::Config() const {
  v1::ClassifierConfig config;
  v1::ComplementNbConfig* nb = config.mutable_complement_nb();
  nb->set_alpha(options_.alpha);
  nb->set_fit_prior(options_.fit_prior);
  nb->set_force_alpha(options_.force_alpha);
  nb->mutable_class_prior()->Assign(options_.class_prior.begin(), options_.class_prior.end());
  nb->set_norm(norm_);
  return config;
}

absl::StatusOr<ComplementNb> ComplementNb::Fit(SparseRowsView rows, size_t num_features,
                                               const std::vector<std::string>& labels,
                                               const std::vector<double>& weights,
                                               const NbOptions& options, bool norm) {
  ComplementNb nb;
  nb.options_ = options;
  nb.norm_ = norm;
  MAAS_RETURN_IF_ERROR(nb.FitInPlace(rows, num_features, labels, weights));
  return nb;
}

absl::Status ComplementNb::UpdateParameters() {
  const size_t k = classes_.size();
  const size_t f = num_features_;
  const double alpha = options_.effective_alpha();
  // feature_all_ = feature_count_.sum(axis=0): sequential over classes.
  std::vector<double> feature_all(feature_count_.begin(), feature_count_.begin() + f);
  for (size_t c = 1; c < k; ++c) {
    for (size_t j = 0; j < f; ++j) feature_all[j] += feature_count_[c * f + j];
  }
  feature_log_prob_.assign(k * f, 0.0);
  std::vector<double> comp(f), logged(f);
  for (size_t c = 0; c < k; ++c) {
    for (size_t j = 0; j < f; ++j) comp[j] = (feature_all[j] + alpha) - feature_count_[c * f + j];
    const double total = NumpySum(comp.data(), f);
    // A feature without counts in any class: (0 + alpha) - 0 = alpha.
    const LogOfMostlyOne log(alpha / total);
    for (size_t j = 0; j < f; ++j) logged[j] = log(comp[j] / total);
    double* flp = feature_log_prob_.data() + c * f;
    if (norm_) {
      const double sum = NumpySum(logged.data(), f);
      for (size_t j = 0; j < f; ++j) flp[j] = logged[j] / sum;
    } else {
      for (size_t j = 0; j < f; ++j) flp[j] = -logged[j];
    }
  }
  UpdateClassLogPrior();
  return absl::OkStatus();
}

absl::Status ComplementNb::ValidateFeatureLogProb() const {
  // Weights are -log of probabilities (>= 0) or their normalised logs. The common case, all
  // finite, in one pass at memory speed.
  const double max = std::numeric_limits<double>::max();
  if (AllWithin(feature_log_prob_, -max, max)) return absl::OkStatus();
  // A complement count (alpha + the counts of the other classes) of exactly 0 gives the weight
  // -log(0) = +inf: with alpha 0, or with an alpha below the precision of the feature's total
  // count ((total + alpha) - count rounds to 0: a tiny alpha, or large sample weights).
  // scikit-learn serves such a model (a text with the feature gets NaN probabilities), and so
  // does maas, unless the weighted counts overflow float64 (refused below, saying so).
  const bool overflow = !std::all_of(feature_count_.begin(), feature_count_.end(), [](double c) {
    return std::isfinite(c);
  }) || !std::isfinite(NumpySum(feature_count_.data(), feature_count_.size()));
  const bool inf_allowed = (options_.force_alpha && options_.alpha == 0.0) || !overflow;
  const size_t f = num_features_;
  for (size_t i = 0; i < feature_log_prob_.size(); ++i) {
    const double v = feature_log_prob_[i];
    if (!std::isnan(v) && (inf_allowed || std::isfinite(v))) continue;
    // Why scikit-learn's own weight is not a number here (the same formulas give the same value).
    std::string why;
    if (overflow) {
      why =
          "the weighted feature counts overflow float64 (sample weights too large: their sums "
          "reach inf), so the complement counts and their logs are inf or NaN; scale the sample "
          "weights down";
    } else if (norm_ && f == 1) {
      why =
          "with a single feature and norm, each class's only weight is divided by itself: "
          "log(1) / log(1) = 0 / 0; use norm=false or more than one feature";
    } else if (options_.effective_alpha() == 0.0) {
      why = absl::StrCat(
          "with alpha = 0, a feature that no document outside a class has gets a complement "
          "count of 0 and a weight log(0) = -inf",
          norm_ ? ", which norm divides by the class's sum of weights, -inf: -inf / -inf = NaN"
                : "",
          "; use alpha > 0");
    } else {
      why = absl::StrCat(
          "a feature that no document outside a class has gets a complement count (alpha + the "
          "counts of the other classes) that rounds to 0, alpha ",
          options_.effective_alpha(),
          " being below the precision of the feature's total count, and a weight log(0) = -inf",
          norm_ ? ", which norm divides by the class's sum of weights, -inf: -inf / -inf = NaN"
                : "",
          "; use a larger alpha (or smaller sample weights)");
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "feature_log_prob value ", i, " (class '", classes_[i / f].substr(0, 100), "', feature ",
        i % f, ") is ", v, ": ", why,
        ". scikit-learn's ComplementNB computes the same weight, and every text with that "
        "feature would get NaN probabilities (scikit-learn's too), so the model is refused"));
  }
  return absl::OkStatus();
}

void ComplementNb::BuildTable() {
  SetTableTransposed(feature_log_prob_);
  ReleaseFeatureLogProb();  // the table holds it
  // The prior only enters with a single class (_joint_log_likelihood).
  bias_.assign(classes_.size(), 0.0);
  if (classes_.size() == 1) bias_ = class_log_prior_;
}

namespace {

absl::Status Validate(const v1::ClassifierConfig& config) {
  return NbOptionsFromConfig(config.complement_nb()).status();
}

absl::StatusOr<std::unique_ptr<Classifier>> FitKind(const v1::ClassifierConfig& config,
                                                    v1::LabelType label_type, SparseRowsView rows,
                                                    size_t num_features,
                                                    const std::vector<std::string>& labels,
                                                    const std::vector<double>& weights) {
  MAAS_ASSIGN_OR_RETURN(NbOptions options, NbOptionsFromConfig(config.complement_nb()));
  options.label_type = label_type;
  MAAS_ASSIGN_OR_RETURN(ComplementNb nb, ComplementNb::Fit(rows, num_features, labels, weights,
                                                           options, config.complement_nb().norm()));
  return std::unique_ptr<Classifier>(std::make_unique<ComplementNb>(std::move(nb)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Classifier>> ComplementNbFromState(v1::ClassifierState* state,
                                                                  size_t num_features,
                                                                  ClassifierStateUse use) {
  MAAS_ASSIGN_OR_RETURN(const NbOptions options,
                        NbOptionsFromConfig(state->config().complement_nb()));
  ComplementNb nb;
  nb.options_ = options;
  nb.norm_ = state->config().complement_nb().norm();
  MAAS_RETURN_IF_ERROR(nb.LoadState(state, num_features, use));
  nb.BuildTable();
  return std::unique_ptr<Classifier>(std::make_unique<ComplementNb>(std::move(nb)));
}

// fit_tables: counts, feature_log_prob_ and the weight table.
const ClassifierKind kComplementNbKind = {"complement_nb", &Validate, &FitKind,
                                          &ComplementNbFromState, 3};

}  // namespace maas::discriminative
