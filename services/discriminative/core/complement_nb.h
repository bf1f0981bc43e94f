// ComplementNB with scikit-learn's semantics: counts as MultinomialNB, weights
// w = -log(comp / sum(comp)) (or, with norm, log(...) / sum(log(...))) where comp = (feature_all_ +
// alpha) - feature_count_; jll = X w^T, plus class_log_prior_ only with a single class.
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_COMPLEMENT_NB_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_COMPLEMENT_NB_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "services/discriminative/core/classifier.h"
#include "services/discriminative/core/discrete_nb.h"

namespace maas::discriminative {

class ComplementNb final : public DiscreteNb {
 public:
  // ComplementNB(alpha, force_alpha, fit_prior, class_prior, norm).fit(X, y, sample_weight).
  static absl::StatusOr<ComplementNb> Fit(SparseRowsView rows, size_t num_features,
                                          const std::vector<std::string>& labels,
                                          const std::vector<double>& weights,
                                          const NbOptions& options, bool norm);
  bool norm() const { return norm_; }

 private:
  friend absl::StatusOr<std::unique_ptr<Classifier>> ComplementNbFromState(
      v1::ClassifierState* state, size_t num_features, ClassifierStateUse use);
  ComplementNb() = default;
  v1::ClassifierConfig Config() const override;
  absl::string_view SklearnName() const override { return "ComplementNB"; }
  absl::Status UpdateParameters() override;
  absl::Status ValidateFeatureLogProb() const override;
  void BuildTable() override;

  bool norm_ = false;
};

// The registry entry ("complement_nb").
extern const ClassifierKind kComplementNbKind;

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_COMPLEMENT_NB_H_
