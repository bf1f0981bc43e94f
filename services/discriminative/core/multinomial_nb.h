// MultinomialNB with scikit-learn's semantics (fit with sample weights, alpha, force_alpha,
// fit_prior, class_prior; joint log-likelihood, predict_log_proba, predict_proba and predict in
// scikit-learn's operation order).
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_MULTINOMIAL_NB_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_MULTINOMIAL_NB_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "maas/discriminative/v1/discriminative.pb.h"
#include "services/discriminative/core/classifier.h"
#include "services/discriminative/core/discrete_nb.h"

namespace maas::discriminative {

using MultinomialNbOptions = NbOptions;

// The options of a multinomial_nb (or unset) ClassifierConfig. Errors: INVALID_ARGUMENT for a
// negative or non-finite alpha or a negative/non-finite class prior; INVALID_ARGUMENT for another
// kind.
absl::StatusOr<MultinomialNbOptions> MultinomialNbOptionsFromConfig(
    const v1::ClassifierConfig& config);

class MultinomialNb final : public DiscreteNb {
 public:
  // MultinomialNB(alpha, fit_prior, class_prior).fit(X, y, sample_weight). `rows` have indices <
  // num_features and values >= 0; `weights` is empty (all 1) or one finite weight >= 0 per row.
  static absl::StatusOr<MultinomialNb> Fit(SparseRowsView rows, size_t num_features,
                                           const std::vector<std::string>& labels,
                                           const std::vector<double>& weights,
                                           const MultinomialNbOptions& options);

  // A fitted classifier from its state (matrices row-major, C x F). Validates shapes, sorted unique
  // non-empty classes, finite non-negative counts, class_log_prior (< +inf, one finite) and
  // feature_log_prob (<= 0, no NaN, -inf only with alpha 0 and force_alpha).
  static absl::StatusOr<MultinomialNb> FromState(
      const MultinomialNbOptions& options, std::vector<std::string> classes,
      std::vector<double> class_count, size_t num_features, std::vector<double> feature_count,
      std::vector<double> class_log_prior, std::vector<double> feature_log_prob);

 private:
  friend absl::StatusOr<std::unique_ptr<Classifier>> MultinomialNbFromState(
      v1::ClassifierState* state, size_t num_features, ClassifierStateUse use);
  MultinomialNb() = default;
  v1::ClassifierConfig Config() const override;
  absl::string_view SklearnName() const override { return "MultinomialNB"; }
  absl::Status UpdateParameters() override;
  absl::Status ValidateFeatureLogProb() const override;
  void BuildTable() override;
};

// The registry entry ("multinomial_nb").
extern const ClassifierKind kMultinomialNbKind;

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_MULTINOMIAL_NB_H_
