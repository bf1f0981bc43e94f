// DiscreteNb::PartialFit: scikit-learn's _BaseDiscreteNB.partial_fit once classes_ is fixed.
//   Y = label_binarize(y, classes=classes_) (* sample_weight)
//   feature_count_ += Y.T @ X     (a fresh C x F sum over the rows in order, then added)
//   class_count_   += Y.sum(axis=0)
//   _update_feature_log_prob(alpha); _update_class_log_prior(class_prior)
// A label outside classes_ is refused: scikit-learn silently drops such a row with three or more
// classes, but counts it as the first class with two classes and as the only class with one, so no
// behaviour of it is worth copying.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "services/discriminative/core/class_labels.h"
#include "services/discriminative/core/discrete_nb.h"

namespace maas::discriminative {

absl::Status DiscreteNb::PartialFit(SparseRowsView rows, const std::vector<std::string>& labels,
                                    const std::vector<double>& weights) {
  const size_t k = classes_.size();
  const size_t f = num_features_;
  MAAS_RETURN_IF_ERROR(CheckExamples(rows, labels, weights, f));
  if (!options_.class_prior.empty() && options_.class_prior.size() != k) {
    return absl::InvalidArgumentError(
        absl::StrCat("Number of priors must match number of classes: got ",
                     options_.class_prior.size(), " class_prior values for ", k, " classes"));
  }
  std::vector<size_t> class_of(rows.size());
  const ClassOrder order(options_.label_type);
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto it =
        std::lower_bound(classes_.begin(), classes_.end(), labels[i],
                         [&](const std::string& a, const std::string& b) { return order(a, b); });
    if (it == classes_.end() || *it != labels[i]) {
      return absl::InvalidArgumentError(
          absl::StrCat("label of example ", i, " ('", labels[i].substr(0, 100),
                       "') is not one of the classes fixed by partial_fit's classes"));
    }
    class_of[i] = static_cast<size_t>(it - classes_.begin());
  }
  {
    // The batch's own sums from 0.0 in row order (scipy's csc_matvecs), then one add per cell;
    // freed before UpdateParameters allocates its tables (ClassifierKind::fit_tables).
    std::vector<double> batch_features(k * f, 0.0);
    std::vector<double> batch_classes(k, 0.0);
    for (size_t i = 0; i < rows.size(); ++i) {
      const size_t c = class_of[i];
      const double w = weights.empty() ? 1.0 : weights[i];
      double* fc = batch_features.data() + c * f;
      const SparseRowRef row = rows[i];
      for (size_t e = 0; e < row.indices.size(); ++e) {
        const double v = EffectiveValue(row.values[e]);
        if (v == 0.0 && DropsZeros()) continue;
        fc[row.indices[e]] += v * w;
      }
      batch_classes[c] += w;
    }
    for (size_t i = 0; i < k * f; ++i) feature_count_[i] += batch_features[i];
    for (size_t c = 0; c < k; ++c) class_count_[c] += batch_classes[c];
  }
  MAAS_RETURN_IF_ERROR(UpdateParameters());
  // The checks a stored version is loaded with (the next partial Train continues a copy of it).
  const absl::Status valid = ValidateFitted();
  if (!valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the fitted model is invalid: ", valid.message()));
  }
  BuildTable();
  return absl::OkStatus();
}

}  // namespace maas::discriminative
