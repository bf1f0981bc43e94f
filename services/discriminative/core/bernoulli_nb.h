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
  void BuildTable() override;

  std::optional<double> binarize_ = 0.0;
};

// The registry entry ("bernoulli_nb").
extern const ClassifierKind kBernoulliNbKind;

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_BERNOULLI_NB_H_
