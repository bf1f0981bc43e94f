#include "services/discriminative/core/bernoulli_nb.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "services/discriminative/core/numpy_compat.h"

namespace maas::discriminative {
namespace {

absl::StatusOr<std::optional<double>> BinarizeOf(const v1::BernoulliNbConfig& config) {
  if (config.disable_binarize()) {
    if (config.has_binarize()) {
      return absl::InvalidArgumentError(
          "bernoulli_nb: set either binarize or disable_binarize, not both");
    }
    return std::optional<double>();
  }
  const double threshold = config.has_binarize() ? config.binarize() : 0.0;
  if (!std::isfinite(threshold) || threshold < 0.0) {
    return absl::InvalidArgumentError(
        absl::StrCat("binarize must be finite and >= 0; got ", threshold));
  }
  return std::optional<double>(threshold);
}

}  // namespace

v1::ClassifierConfig BernoulliNb::Config() const {
  v1::ClassifierConfig config;
  v1::BernoulliNbConfig* nb = config.mutable_bernoulli_nb();
  nb->set_alpha(options_.alpha);
  nb->set_fit_prior(options_.fit_prior);
  nb->set_force_alpha(options_.force_alpha);
  nb->mutable_class_prior()->Assign(options_.class_prior.begin(), options_.class_prior.end());
  if (binarize_.has_value()) {
    nb->set_binarize(*binarize_);
  } else {
    nb->set_disable_binarize(true);
  }
  return config;
}

absl::StatusOr<BernoulliNb> BernoulliNb::Fit(SparseRowsView rows, size_t num_features,
                                             const std::vector<std::string>& labels,
                                             const std::vector<double>& weights,
                                             const NbOptions& options,
                                             std::optional<double> binarize) {
  BernoulliNb nb;
  nb.options_ = options;
  nb.binarize_ = binarize;
  MAAS_RETURN_IF_ERROR(nb.FitInPlace(rows, num_features, labels, weights));
  return nb;
}

void BernoulliNb::FeatureLogProbFromCounts(double* out) const {
  const size_t k = classes_.size();
  const size_t f = num_features_;
  const double alpha = options_.effective_alpha();
  const double two_alpha = alpha * 2;
  const LogOfMostlyOne log(alpha);  // a feature without counts: 0 + alpha
  for (size_t c = 0; c < k; ++c) {
    const double log_denominator = std::log(class_count_[c] + two_alpha);
    for (size_t j = 0; j < f; ++j) {
      out[c * f + j] = log(feature_count_[c * f + j] + alpha) - log_denominator;
    }
  }
}

absl::Status BernoulliNb::UpdateParameters() {
  feature_log_prob_.resize(classes_.size() * num_features_);
  FeatureLogProbFromCounts(feature_log_prob_.data());
  flp_from_counts_ = true;
  UpdateClassLogPrior();
  return absl::OkStatus();
}

absl::Status BernoulliNb::ValidateFeatureLogProb() const {
  // A class without documents under alpha 0: p = (0 + 0) / (0 + 2 * 0), NaN for every feature,
  // binarized or not (the checks below would blame the features).
  for (size_t c = 0; c < classes_.size() && num_features_ > 0; ++c) {
    if (class_count_[c] != 0.0 || options_.effective_alpha() != 0.0) continue;
    return absl::InvalidArgumentError(absl::StrCat(
        "class '", classes_[c].substr(0, 100),
        "' has no documents (a class that only the given classes, partial_fit's classes or zero "
        "sample weights brought in) and alpha is 0, so each of its feature probabilities p = "
        "(count + alpha) / (documents + 2 alpha) is 0 / 0 = NaN, and with them every text's "
        "probabilities (scikit-learn's BernoulliNB computes the same NaN), so the model is "
        "refused; use alpha > 0"));
  }
  const bool allow_neg_inf = options_.force_alpha && options_.alpha == 0.0;
  // The common case in one pass: no value above 0 or NaN passes both checks below.
  if (AllLogProbabilities(feature_log_prob_, allow_neg_inf, /*allow_positive=*/false)) {
    return absl::OkStatus();
  }
  if (!binarize_.has_value()) {
    // Without binarize the features are taken as they are. A probability of exactly 1 (log 0) is
    // served as scikit-learn serves it: log(1 - p) = -inf makes the class's joint log-likelihood
    // -inf (probability 0) for a text without the feature and NaN for a text with it. A
    // probability above 1 (counts above the class's document count) or the log of a negative
    // count (the hashing vectorizer's signed values) makes log(1 - p) NaN for the whole class,
    // so every text's probabilities are NaN, scikit-learn's too: refused, saying why; so is a
    // probability of 0 from a count of exactly -alpha (which alpha > 0 otherwise rules out).
    const size_t f = num_features_;
    for (size_t i = 0; i < feature_log_prob_.size(); ++i) {
      const double v = feature_log_prob_[i];
      if (v <= 0.0 && (v != -HUGE_VAL || allow_neg_inf)) continue;
      const std::string where = absl::StrCat("bernoulli_nb with binarize disabled: feature ", i % f,
                                             " of class '", classes_[i / f].substr(0, 100), "' ");
      const std::string fix =
          "; keep binarize (default 0.0), or make the features binary (the vectorizer's "
          "binary=true; for hashing also alternate_sign=false)";
      if (std::isnan(v)) {
        return absl::InvalidArgumentError(absl::StrCat(
            where,
            "has a negative count below -alpha (signed hashed values), so its log-probability "
            "is NaN, and with it log(1 - p) for the class: every text's probabilities would be "
            "NaN (scikit-learn's too)",
            fix));
      }
      if (v == -HUGE_VAL) {
        return absl::InvalidArgumentError(absl::StrCat(
            where,
            "has a negative count of exactly -alpha (signed hashed values), so p = (count + "
            "alpha) / (documents + 2 alpha) = 0 and its log-probability is -inf: a probability "
            "no count of the feature can give",
            fix));
      }
      return absl::InvalidArgumentError(absl::StrCat(
          where, "has log-probability ", v,
          ": the feature is counted more often than the class has documents, so p = "
          "(count + alpha) / (documents + 2 alpha) = ",
          std::exp(v),
          " > 1 and log(1 - p) is NaN: every text's probabilities would be NaN (scikit-learn's "
          "too)",
          fix));
    }
  }
  return CheckLogProbabilities(feature_log_prob_, "feature_log_prob", allow_neg_inf,
                               /*allow_positive=*/!binarize_.has_value());
}

void BernoulliNb::BuildTable() {
  const size_t k = classes_.size();
  const size_t f = num_features_;
  std::vector<double> neg(f), delta(k * f);
  bias_.assign(k, 0.0);
  const double alpha = options_.effective_alpha();
  for (size_t c = 0; c < k; ++c) {
    // log(1 - exp(flp)), for most features the flp of a feature without counts (as
    // FeatureLogProbFromCounts takes it), taken once: equal flp give equal values.
    const double common = std::log(alpha) - std::log(class_count_[c] + alpha * 2);
    const double neg_common = std::log(1 - std::exp(common));
    for (size_t j = 0; j < f; ++j) {
      const double flp = feature_log_prob_[c * f + j];
      neg[j] = flp == common ? neg_common : std::log(1 - std::exp(flp));
      delta[c * f + j] = flp - neg[j];
    }
    bias_[c] = class_log_prior_[c] + NumpySum(neg.data(), f);
  }
  SetTableTransposed(delta);
  if (flp_from_counts_) ReleaseFeatureLogProb();
}

namespace {

absl::Status Validate(const v1::ClassifierConfig& config) {
  MAAS_RETURN_IF_ERROR(NbOptionsFromConfig(config.bernoulli_nb()).status());
  return BinarizeOf(config.bernoulli_nb()).status();
}

absl::StatusOr<std::unique_ptr<Classifier>> FitKind(const v1::ClassifierConfig& config,
                                                    v1::LabelType label_type, SparseRowsView rows,
                                                    size_t num_features,
                                                    const std::vector<std::string>& labels,
                                                    const std::vector<double>& weights) {
  MAAS_ASSIGN_OR_RETURN(NbOptions options, NbOptionsFromConfig(config.bernoulli_nb()));
  options.label_type = label_type;
  MAAS_ASSIGN_OR_RETURN(const std::optional<double> binarize, BinarizeOf(config.bernoulli_nb()));
  MAAS_ASSIGN_OR_RETURN(BernoulliNb nb,
                        BernoulliNb::Fit(rows, num_features, labels, weights, options, binarize));
  return std::unique_ptr<Classifier>(std::make_unique<BernoulliNb>(std::move(nb)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Classifier>> BernoulliNbFromState(v1::ClassifierState* state,
                                                                 size_t num_features,
                                                                 ClassifierStateUse use) {
  MAAS_ASSIGN_OR_RETURN(const NbOptions options,
                        NbOptionsFromConfig(state->config().bernoulli_nb()));
  MAAS_ASSIGN_OR_RETURN(const std::optional<double> binarize,
                        BinarizeOf(state->config().bernoulli_nb()));
  BernoulliNb nb;
  nb.options_ = options;
  nb.binarize_ = binarize;
  MAAS_RETURN_IF_ERROR(nb.LoadState(state, num_features, use));
  // The stored feature_log_prob is kept only when the counts do not give it back bit for bit.
  std::vector<double> from_counts(nb.feature_log_prob_.size());
  nb.FeatureLogProbFromCounts(from_counts.data());
  nb.flp_from_counts_ = std::memcmp(from_counts.data(), nb.feature_log_prob_.data(),
                                    from_counts.size() * sizeof(double)) == 0;
  from_counts = std::vector<double>();
  nb.BuildTable();
  return std::unique_ptr<Classifier>(std::make_unique<BernoulliNb>(std::move(nb)));
}

// fit_tables: counts, feature_log_prob_, BuildTable's delta matrix and the weight table.
const ClassifierKind kBernoulliNbKind = {"bernoulli_nb", &Validate, &FitKind, &BernoulliNbFromState,
                                         4};

}  // namespace maas::discriminative
