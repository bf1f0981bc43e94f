// BernoulliNB with scikit-learn's semantics: features binarized (value > binarize -> 1, else
// dropped; or used as given with binarize=None) in fit and predict; flp = log(fc + alpha) -
// log(cc + 2 alpha); neg = log(1 - exp(flp)); jll = Xb (flp - neg)^T + (class_log_prior_ +
// sum(neg)).
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_BERNOULLI_NB_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_BERNOULLI_NB_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "services/discriminative/core/classifier.h"
#include "services/discriminative/core/discrete_nb.h"

namespace maas::discriminative {

class BernoulliNb final : public DiscreteNb {
 public:
  // BernoulliNB(alpha, force_alpha, fit_prior, class_prior, binarize).fit(X, y, sample_weight).
  // binarize: the threshold (>= 0), or nullopt for None.
  static absl::StatusOr<BernoulliNb> Fit(SparseRowsView rows, size_t num_features,
                                         const std::vector<std::string>& labels,
                                         const std::vector<double>& weights,
                                         const NbOptions& options, std::optional<double> binarize);

 private:
  friend absl::StatusOr<std::unique_ptr<Classifier>> BernoulliNbFromState(
      v1::ClassifierState* state, size_t num_features, ClassifierStateUse use);
  BernoulliNb() = default;
  v1::ClassifierConfig Config() const override;
  absl::string_view SklearnName() const override { return "BernoulliNB"; }
  bool RequiresNonNegative() const override { return false; }
  // Binarized values are 0 / 1 (times weights >= 0); without binarize, signed values count as
  // given.
  bool AllowsNegativeFeatureCounts() const override { return !binarize_.has_value(); }
  double EffectiveValue(double value) const override {
    return binarize_.has_value() ? (value > *binarize_ ? 1.0 : 0.0) : value;
  }
  bool DropsZeros() const override { return binarize_.has_value(); }
  bool TransformsValues() const override { return binarize_.has_value(); }
  absl::Status UpdateParameters() override;
  absl::Status ValidateFeatureLogProb() const override;
  // Also frees feature_log_prob_ when it is FeatureLogProbFromCounts' (flp_from_counts_): its
  // weight table holds flp - log(1 - exp(flp)), from which flp cannot be read back.
  void BuildTable() override;
  void ReleasedFeatureLogProbInto(double* out) const override { FeatureLogProbFromCounts(out); }
  // UpdateParameters' feature_log_prob_ from the counts into out[0 .. C x F): log(fc + alpha) -
  // log(cc + 2 alpha), the same operations, so the same bits, whenever it is called.
  void FeatureLogProbFromCounts(double* out) const;

  std::optional<double> binarize_ = 0.0;
  // Whether feature_log_prob_ is, bit for bit, FeatureLogProbFromCounts' (always after a fit; after
  // a load when the stored one is: an imported scikit-learn model's, from numpy's log, may differ
  // in a last bit, and is then kept as given).
  bool flp_from_counts_ = false;
};

// The registry entry ("bernoulli_nb").
extern const ClassifierKind kBernoulliNbKind;

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_BERNOULLI_NB_H_
