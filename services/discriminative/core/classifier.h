// The Classifier interface (a fitted scikit-learn discrete Naive Bayes: sparse rows -> class
// scores) and the registry mapping a ClassifierConfig kind (the `kind` oneof field name:
// "multinomial_nb", "complement_nb", "bernoulli_nb") to its implementation. Adding a classifier is
// one file pair implementing ClassifierKind plus one line in classifier_registry.cc.
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_CLASSIFIER_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_CLASSIFIER_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "maas/discriminative/v1/discriminative.pb.h"
#include "services/discriminative/core/vectorizer.h"

namespace maas::discriminative {

// Per-text result of a classifier, all vectors in class order.
struct ClassScores {
  std::vector<double> joint_log_likelihood;  // predict_joint_log_proba
  std::vector<double> log_probability;       // predict_log_proba
  std::vector<double> probability;           // predict_proba = exp(log_probability)
  size_t predicted = 0;                      // argmax of jll, first maximum wins (predict)
};

// A fitted classifier. Immutable; const methods may be called concurrently.
class Classifier {
 public:
  virtual ~Classifier() = default;

  // classes_, in the class order of label_type() (ClassOrder): by code point, or numerically.
  virtual const std::vector<std::string>& classes() const = 0;
  // How the labels are read and ordered (ClassifierState.label_type).
  virtual v1::LabelType label_type() const = 0;
  virtual size_t num_features() const = 0;
  // Weighted training documents per class (class_count_).
  virtual const std::vector<double>& class_count() const = 0;

  // predict_joint_log_proba of one row (indices < num_features(), in the order scikit-learn would
  // store them) into jll[0 .. classes().size()).
  virtual void JointLogLikelihood(const SparseVector& row, double* jll) const = 0;

  // Where the per-feature parameters JointLogLikelihood reads lie, so that a vectorizer can request
  // them from memory as soon as it knows a feature (AnalyzerScratch::feature_rows): feature f's at
  // base + f * stride bytes. base null: no such table.
  struct FeatureRows {
    const char* base = nullptr;
    size_t stride = 0;
  };
  virtual FeatureRows feature_rows() const { return {}; }

  // How much a feature of value `value` adds to class c's joint log-likelihood (for explanations).
  virtual double FeatureContribution(size_t c, uint32_t feature, double value) const = 0;

  // The fitted state (config included); FromState(ToState()) is identical.
  virtual void ToState(v1::ClassifierState* state) const = 0;

  // Bytes this fitted classifier holds in memory (the object, its classes and parameter tables),
  // for the model cache's byte budget.
  virtual int64_t MemoryBytes() const = 0;

  // jll, predict_log_proba (scikit-learn's logsumexp), predict_proba and predict of one row.
  ClassScores Predict(const SparseVector& row) const;

  // scikit-learn's partial_fit(X, y, sample_weight) in place, classes fixed: the counts of `rows`
  // (indices < num_features()), summed from zero in row order, are added to this classifier's,
  // then every parameter is recomputed. `labels` one per row, each one of classes(); `weights`
  // empty (all 1) or one finite weight >= 0 per row. Errors: INVALID_ARGUMENT (naming the row or
  // label; the classifier is then unusable and must be dropped), UNIMPLEMENTED for a classifier
  // without partial_fit.
  virtual absl::Status PartialFit(SparseRowsView /*rows*/,
                                  const std::vector<std::string>& /*labels*/,
                                  const std::vector<double>& /*weights*/) {
    return absl::UnimplementedError("this classifier has no partial_fit");
  }
};

// What a state given to a kind's from_state is.
enum class ClassifierStateUse {
  // A fitted model (stored, imported, or a copy of one): every value is checked.
  kFitted,
  // partial_fit's start (StartPartialClassifier): zero counts and placeholder parameters that
  // PartialFit recomputes before anything reads them. The config, classes, shapes and counts are
  // checked; the parameters are not, since no fitted model is made of zero counts (BernoulliNB
  // without binarize, for one, refuses the placeholder log-probabilities of 0).
  kPartialStart,
};

// One classifier implementation.
struct ClassifierKind {
  // The ClassifierConfig `kind` oneof field it implements.
  std::string_view name;
  // INVALID_ARGUMENT for values scikit-learn rejects, naming the parameter.
  absl::Status (*validate)(const v1::ClassifierConfig& config);
  // fit(X, y, sample_weight): `rows` have indices < num_features; `weights` empty (all 1) or one
  // finite weight >= 0 per row, not all 0. Classes are the unique labels in the class order of
  // `label_type` (a label that is not of that type: INVALID_ARGUMENT naming the example).
  absl::StatusOr<std::unique_ptr<Classifier>> (*fit)(const v1::ClassifierConfig& config,
                                                     v1::LabelType label_type, SparseRowsView rows,
                                                     size_t num_features,
                                                     const std::vector<std::string>& labels,
                                                     const std::vector<double>& weights);
  // A fitted classifier from stored/imported state for `num_features` features, validated
  // thoroughly (INVALID_ARGUMENT); with kPartialStart, partial_fit's empty start (see there).
  // Takes the state's large fields (feature_count, feature_log_prob, classes): moved out, and
  // their memory freed, as they are converted; the config and the other fields stay.
  absl::StatusOr<std::unique_ptr<Classifier>> (*from_state)(v1::ClassifierState* state,
                                                            size_t num_features,
                                                            ClassifierStateUse use);
  // The classes x features tables of doubles that a fit or partial fit holds at its peak, the
  // training rows aside (CheckTrainPeak): the counts and the weight table, and what computing the
  // table takes besides (a partial fit's batch counts; feature_log_prob_; BernoulliNB's delta).
  uint32_t fit_tables;
};

// The name of the config's kind ("multinomial_nb" when unset).
std::string ClassifierKindName(const v1::ClassifierConfig& config);
const ClassifierKind* FindClassifierKind(std::string_view name);

absl::Status ValidateClassifierConfig(const v1::ClassifierConfig& config);
// The config's kind's fit_tables (UNIMPLEMENTED for a kind this server lacks).
absl::StatusOr<uint32_t> ClassifierFitTables(const v1::ClassifierConfig& config);
absl::StatusOr<std::unique_ptr<Classifier>> FitClassifier(const v1::ClassifierConfig& config,
                                                          v1::LabelType label_type,
                                                          SparseRowsView rows, size_t num_features,
                                                          const std::vector<std::string>& labels,
                                                          const std::vector<double>& weights);
// A fitted classifier from stored/imported state for `num_features` features, validated
// thoroughly (INVALID_ARGUMENT; UNIMPLEMENTED for an unsupported kind).
absl::StatusOr<std::unique_ptr<Classifier>> ClassifierFromState(const v1::ClassifierState& state,
                                                                size_t num_features);
// The same, taking *state's large fields (feature_count, feature_log_prob, classes): each is moved
// out and its memory freed as it is converted, so that at most one of them is held twice. *state
// keeps its config and small fields; after an error its large fields are unspecified.
absl::StatusOr<std::unique_ptr<Classifier>> ClassifierFromState(v1::ClassifierState* state,
                                                                size_t num_features);
// partial_fit's first call: a classifier of the config's kind with `classes` (labels of
// `label_type` in its class order, unique, non-empty) and zero counts over `num_features` features,
// loaded through the kind's own from_state with kPartialStart (so its options are validated as for
// a stored model; a class_prior whose length is not the number of classes is INVALID_ARGUMENT). Its
// parameters are placeholders, not checked as a fitted model's, until PartialFit recomputes (and
// checks) them.
absl::StatusOr<std::unique_ptr<Classifier>> StartPartialClassifier(
    const v1::ClassifierConfig& config, v1::LabelType label_type,
    const std::vector<std::string>& classes, size_t num_features);
// A deep copy of a fitted classifier through its state (partial training continues a copy; the
// version it continues, which calls may be using, is never touched).
absl::StatusOr<std::unique_ptr<Classifier>> CopyClassifier(const Classifier& classifier);

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_CLASSIFIER_H_
