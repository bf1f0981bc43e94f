// The classifier registry: one line per implementation.
#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "services/discriminative/core/bernoulli_nb.h"
#include "services/discriminative/core/class_labels.h"
#include "services/discriminative/core/classifier.h"
#include "services/discriminative/core/complement_nb.h"
#include "services/discriminative/core/multinomial_nb.h"
#include "services/discriminative/core/numpy_compat.h"

namespace maas::discriminative {
namespace {

const std::array<const ClassifierKind*, 3> kClassifiers = {
    &kMultinomialNbKind,
    &kComplementNbKind,
    &kBernoulliNbKind,
};

absl::StatusOr<const ClassifierKind*> KindOf(const v1::ClassifierConfig& config) {
  const std::string name = ClassifierKindName(config);
  const ClassifierKind* kind = FindClassifierKind(name);
  if (kind == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat("classifier kind '", name, "' is not supported by this server"));
  }
  return kind;
}

}  // namespace

ClassScores Classifier::Predict(const SparseVector& row) const {
  const size_t k = classes().size();
  ClassScores scores;
  scores.joint_log_likelihood.assign(k, 0.0);
  JointLogLikelihood(row, scores.joint_log_likelihood.data());
  scores.log_probability = LogProbabilitiesFromJointLogLikelihood(scores.joint_log_likelihood);
  scores.probability.resize(k);
  scores.predicted = ProbabilitiesFromJointLogLikelihood(scores.joint_log_likelihood.data(), k,
                                                         scores.probability.data());
  return scores;
}

std::string ClassifierKindName(const v1::ClassifierConfig& config) {
  const google::protobuf::OneofDescriptor* oneof =
      v1::ClassifierConfig::descriptor()->FindOneofByName("kind");
  const google::protobuf::FieldDescriptor* field =
      v1::ClassifierConfig::GetReflection()->GetOneofFieldDescriptor(config, oneof);
  return field == nullptr ? "multinomial_nb" : std::string(field->name());
}

const ClassifierKind* FindClassifierKind(std::string_view name) {
  for (const ClassifierKind* kind : kClassifiers) {
    if (kind->name == name) return kind;
  }
  return nullptr;
}

absl::Status ValidateClassifierConfig(const v1::ClassifierConfig& config) {
  MAAS_ASSIGN_OR_RETURN(const ClassifierKind* kind, KindOf(config));
  return kind->validate(config);
}

absl::StatusOr<uint32_t> ClassifierFitTables(const v1::ClassifierConfig& config) {
  MAAS_ASSIGN_OR_RETURN(const ClassifierKind* kind, KindOf(config));
  return kind->fit_tables;
}

absl::StatusOr<std::unique_ptr<Classifier>> FitClassifier(const v1::ClassifierConfig& config,
                                                          v1::LabelType label_type,
                                                          SparseRowsView rows, size_t num_features,
                                                          const std::vector<std::string>& labels,
                                                          const std::vector<double>& weights) {
  MAAS_ASSIGN_OR_RETURN(const ClassifierKind* kind, KindOf(config));
  MAAS_RETURN_IF_ERROR(kind->validate(config));
  MAAS_RETURN_IF_ERROR(ValidateLabelType(label_type));
  return kind->fit(config, label_type, rows, num_features, labels, weights);
}

namespace {

absl::StatusOr<std::unique_ptr<Classifier>> FromState(v1::ClassifierState* state,
                                                      size_t num_features, ClassifierStateUse use) {
  MAAS_ASSIGN_OR_RETURN(const ClassifierKind* kind, KindOf(state->config()));
  MAAS_RETURN_IF_ERROR(kind->validate(state->config()));
  return kind->from_state(state, num_features, use);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Classifier>> ClassifierFromState(const v1::ClassifierState& state,
                                                                size_t num_features) {
  v1::ClassifierState taken = state;
  return ClassifierFromState(&taken, num_features);
}

absl::StatusOr<std::unique_ptr<Classifier>> ClassifierFromState(v1::ClassifierState* state,
                                                                size_t num_features) {
  return FromState(state, num_features, ClassifierStateUse::kFitted);
}

absl::StatusOr<std::unique_ptr<Classifier>> StartPartialClassifier(
    const v1::ClassifierConfig& config, v1::LabelType label_type,
    const std::vector<std::string>& classes, size_t num_features) {
  v1::ClassifierState state;
  *state.mutable_config() = config;
  state.set_label_type(label_type);
  state.mutable_classes()->Assign(classes.begin(), classes.end());
  state.mutable_class_count()->Resize(static_cast<int>(classes.size()), 0.0);
  state.mutable_class_log_prior()->Resize(static_cast<int>(classes.size()), 0.0);
  const int cells = static_cast<int>(classes.size() * num_features);
  for (common::v1::Matrix* m : {state.mutable_feature_count(), state.mutable_feature_log_prob()}) {
    m->set_rows(static_cast<uint32_t>(classes.size()));
    m->set_cols(static_cast<uint32_t>(num_features));
    m->mutable_values()->Resize(cells, 0.0);
  }
  return FromState(&state, num_features, ClassifierStateUse::kPartialStart);
}

absl::StatusOr<std::unique_ptr<Classifier>> CopyClassifier(const Classifier& classifier) {
  v1::ClassifierState state;
  classifier.ToState(&state);
  return ClassifierFromState(&state, classifier.num_features());
}

}  // namespace maas::discriminative
