// MultinomialNB with scikit-learn's semantics (fit with sample weights, alpha, fit_prior,
// class_prior; joint log-likelihood, predict_log_proba, predict_proba and predict in scikit-learn's
// operation order).
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_MULTINOMIAL_NB_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_MULTINOMIAL_NB_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "maas/discriminative/v1/discriminative.pb.h"
#include "services/discriminative/core/count_vectorizer.h"

namespace maas::discriminative {

struct MultinomialNbOptions {
  // Additive smoothing as given, >= 0 and finite.
  double alpha = 1.0;
  // scikit-learn's force_alpha: true uses alpha as given; false uses max(alpha, 1e-10).
  bool force_alpha = true;
  bool fit_prior = true;
  // Fixed class priors in sorted class order (used verbatim: class_log_prior_ = log(class_prior));
  // empty: learned (fit_prior) or uniform.
  std::vector<double> class_prior;
};

// Validates a ClassifierConfig. An unset `kind` is MultinomialNB(alpha=1). Errors: INVALID_ARGUMENT
// for a negative or non-finite alpha or a negative/non-finite class prior; UNIMPLEMENTED for
// ComplementNB and BernoulliNB.
absl::StatusOr<MultinomialNbOptions> MultinomialNbOptionsFromConfig(
    const v1::ClassifierConfig& config);

// Per-text result of a classifier, all vectors in class order.
struct ClassScores {
  std::vector<double> joint_log_likelihood;  // predict_joint_log_proba
  std::vector<double> log_probability;       // predict_log_proba
  std::vector<double> probability;           // predict_proba = exp(log_probability)
  size_t predicted = 0;                      // argmax of jll, first maximum wins (predict)
};

class MultinomialNb {
 public:
  // MultinomialNB(alpha, fit_prior, class_prior).fit(X, y, sample_weight). `rows` have indices <
  // num_features and values >= 0; `weights` is empty (all 1) or one finite weight >= 0 per row.
  // Classes are the sorted unique labels (code point order, as numpy.unique). Errors:
  // INVALID_ARGUMENT for mismatched lengths, no rows, an empty label, bad values or weights, or a
  // class_prior whose length is not the number of classes.
  static absl::StatusOr<MultinomialNb> Fit(const std::vector<SparseVector>& rows,
                                           size_t num_features,
                                           const std::vector<std::string>& labels,
                                           const std::vector<double>& weights,
                                           const MultinomialNbOptions& options);

  // A fitted classifier from its state (matrices row-major, C x F). Validates shapes, sorted unique
  // non-empty classes, finite non-negative counts, no NaN/+inf in the log parameters and at least
  // one class with a finite prior (INVALID_ARGUMENT otherwise).
  static absl::StatusOr<MultinomialNb> FromState(
      const MultinomialNbOptions& options, std::vector<std::string> classes,
      std::vector<double> class_count, size_t num_features, std::vector<double> feature_count,
      std::vector<double> class_log_prior, std::vector<double> feature_log_prob);

  // Scores of one row (indices < num_features(), strictly ascending as in a transform() row):
  // jll_c = (sum over stored entries, in order, of x * flp[c, f], from 0.0) + class_log_prior_c.
  ClassScores Predict(const SparseVector& row) const;

  const MultinomialNbOptions& options() const { return options_; }
  const std::vector<std::string>& classes() const { return classes_; }
  size_t num_classes() const { return classes_.size(); }
  size_t num_features() const { return num_features_; }
  const std::vector<double>& class_count() const { return class_count_; }
  // C x F, row-major.
  const std::vector<double>& feature_count() const { return feature_count_; }
  const std::vector<double>& class_log_prior() const { return class_log_prior_; }
  // C x F, row-major.
  const std::vector<double>& feature_log_prob() const { return feature_log_prob_; }

 private:
  MultinomialNb() = default;
  // Recomputes feature_log_prob_ and class_log_prior_ from the counts (_update_feature_log_prob,
  // _update_class_log_prior).
  absl::Status UpdateParameters();

  MultinomialNbOptions options_;
  std::vector<std::string> classes_;
  size_t num_features_ = 0;
  std::vector<double> class_count_;
  std::vector<double> feature_count_;
  std::vector<double> class_log_prior_;
  std::vector<double> feature_log_prob_;
};

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_MULTINOMIAL_NB_H_
