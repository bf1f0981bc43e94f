#include "services/discriminative/core/pipeline.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status/status_macros.h"
#include "services/discriminative/core/text_analysis.h"

namespace maas::discriminative {
namespace {

constexpr uint32_t kDefaultExplainFeatures = 10;

absl::Status ValidateTexts(const std::vector<std::string>& texts) {
  for (size_t i = 0; i < texts.size(); ++i) {
    const absl::Status valid = ValidateUtf8(texts[i]);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("texts[", i, "]: ", valid.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<double>> MatrixValues(const common::v1::Matrix& m, size_t rows,
                                                 size_t cols, absl::string_view name) {
  if (m.rows() != rows || m.cols() != cols) {
    return absl::InvalidArgumentError(absl::StrCat(name, " is ", m.rows(), " x ", m.cols(),
                                                   "; expected ", rows, " x ", cols,
                                                   " (classes x vocabulary terms)"));
  }
  if (static_cast<uint64_t>(m.values_size()) != static_cast<uint64_t>(rows) * cols) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, " has ", m.values_size(), " values; expected rows * cols = ", rows * cols));
  }
  return std::vector<double>(m.values().begin(), m.values().end());
}

void SetMatrix(size_t rows, size_t cols, const std::vector<double>& values, common::v1::Matrix* m) {
  m->set_rows(static_cast<uint32_t>(rows));
  m->set_cols(static_cast<uint32_t>(cols));
  m->mutable_values()->Assign(values.begin(), values.end());
}

}  // namespace

absl::Status CheckConfigLimits(const v1::VectorizerConfig& vectorizer_config,
                               const PipelineLimits& limits) {
  const v1::TextOptions& text = vectorizer_config.kind_case() == v1::VectorizerConfig::kHashing
                                    ? vectorizer_config.hashing().text()
                                    : vectorizer_config.count().text();
  for (const uint32_t n : {text.ngram_min(), text.ngram_max()}) {
    if (n > limits.max_ngram) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ngram_range goes up to ", n, ", above this server's limit of ", limits.max_ngram,
          " (--max_ngram); the analysis cost grows with the square of the n-gram size"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckModelSize(uint64_t num_classes, uint64_t num_features,
                            const PipelineLimits& limits) {
  if (num_classes > limits.max_classes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(num_classes, " classes, above this server's limit of ", limits.max_classes,
                     " (--max_classes); merge rare labels"));
  }
  const long double cells = static_cast<long double>(num_classes) * num_features;
  if (cells > static_cast<long double>(limits.max_model_cells)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the model would have ", num_classes, " classes x ", num_features,
        " features = ", static_cast<double>(cells),
        " parameters per matrix, above this server's limit of ", limits.max_model_cells,
        " (--max_model_cells); use fewer classes, min_df/max_features, or fewer hashing "
        "n_features"));
  }
  return absl::OkStatus();
}

Pipeline::Pipeline(v1::VectorizerConfig vectorizer_config, v1::ClassifierConfig classifier_config,
                   CountVectorizer vectorizer, MultinomialNb classifier)
    : vectorizer_config_(std::move(vectorizer_config)),
      classifier_config_(std::move(classifier_config)),
      vectorizer_(std::move(vectorizer)),
      classifier_(std::move(classifier)) {}

absl::StatusOr<Pipeline> Pipeline::Fit(const std::vector<std::string>& texts,
                                       const std::vector<std::string>& labels,
                                       const std::vector<double>& weights,
                                       const v1::VectorizerConfig& vectorizer_config,
                                       const v1::ClassifierConfig& classifier_config,
                                       const PipelineLimits& limits) {
  MAAS_RETURN_IF_ERROR(CheckConfigLimits(vectorizer_config, limits));
  MAAS_ASSIGN_OR_RETURN(const CountVectorizerOptions vectorizer_options,
                        CountVectorizerOptionsFromConfig(vectorizer_config));
  MAAS_ASSIGN_OR_RETURN(const MultinomialNbOptions classifier_options,
                        MultinomialNbOptionsFromConfig(classifier_config));
  if (texts.empty()) {
    return absl::InvalidArgumentError("no training examples; send at least one labelled text");
  }
  if (labels.size() != texts.size()) {
    return absl::InvalidArgumentError(absl::StrCat("got ", texts.size(), " texts but ",
                                                   labels.size(), " labels (need one per text)"));
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("labels[", i, "] is empty"));
    }
    const absl::Status valid = ValidateUtf8(labels[i]);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("labels[", i, "]: ", valid.message()));
    }
  }
  uint64_t num_classes = 0;
  {
    std::vector<std::string_view> distinct(labels.begin(), labels.end());
    std::sort(distinct.begin(), distinct.end());
    num_classes = std::unique(distinct.begin(), distinct.end()) - distinct.begin();
  }
  MAAS_RETURN_IF_ERROR(CheckModelSize(num_classes, 0, limits));
  MAAS_ASSIGN_OR_RETURN(CountVectorizer::FitResult fit,
                        CountVectorizer::FitTransform(texts, vectorizer_options));
  MAAS_RETURN_IF_ERROR(CheckModelSize(num_classes, fit.vectorizer.num_features(), limits));
  MAAS_ASSIGN_OR_RETURN(MultinomialNb classifier,
                        MultinomialNb::Fit(fit.rows, fit.vectorizer.num_features(), labels, weights,
                                           classifier_options));
  return Pipeline(vectorizer_config, classifier_config, std::move(fit.vectorizer),
                  std::move(classifier));
}

absl::StatusOr<Pipeline> Pipeline::FromSpec(const v1::PipelineSpec& spec) {
  const v1::VectorizerState& vs = spec.vectorizer();
  const v1::ClassifierState& cs = spec.classifier();
  MAAS_ASSIGN_OR_RETURN(const CountVectorizerOptions vectorizer_options,
                        CountVectorizerOptionsFromConfig(vs.config()));
  MAAS_ASSIGN_OR_RETURN(const MultinomialNbOptions classifier_options,
                        MultinomialNbOptionsFromConfig(cs.config()));
  if (vs.idf_size() != 0) {
    return absl::InvalidArgumentError(
        "vectorizer.idf is set but the vectorizer config has no tfidf; leave idf empty");
  }
  MAAS_ASSIGN_OR_RETURN(
      CountVectorizer vectorizer,
      CountVectorizer::FromState(
          vectorizer_options,
          std::vector<std::string>(vs.vocabulary().begin(), vs.vocabulary().end()),
          std::vector<uint64_t>(vs.document_frequency().begin(), vs.document_frequency().end()),
          vs.num_documents()));
  const size_t k = cs.classes_size();
  const size_t f = vectorizer.num_features();
  for (int c = 0; c < cs.classes_size(); ++c) {
    const absl::Status valid = ValidateUtf8(cs.classes(c));
    if (!valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("classifier.classes[", c, "]: ", valid.message()));
    }
  }
  MAAS_ASSIGN_OR_RETURN(std::vector<double> feature_count,
                        MatrixValues(cs.feature_count(), k, f, "classifier.feature_count"));
  MAAS_ASSIGN_OR_RETURN(std::vector<double> feature_log_prob,
                        MatrixValues(cs.feature_log_prob(), k, f, "classifier.feature_log_prob"));
  MAAS_ASSIGN_OR_RETURN(
      MultinomialNb classifier,
      MultinomialNb::FromState(
          classifier_options, std::vector<std::string>(cs.classes().begin(), cs.classes().end()),
          std::vector<double>(cs.class_count().begin(), cs.class_count().end()), f,
          std::move(feature_count),
          std::vector<double>(cs.class_log_prior().begin(), cs.class_log_prior().end()),
          std::move(feature_log_prob)));
  return Pipeline(vs.config(), cs.config(), std::move(vectorizer), std::move(classifier));
}

v1::PipelineSpec Pipeline::ToSpec() const {
  v1::PipelineSpec spec;
  v1::VectorizerState* vs = spec.mutable_vectorizer();
  *vs->mutable_config() = vectorizer_config_;
  vs->mutable_vocabulary()->Assign(vectorizer_.vocabulary().begin(),
                                   vectorizer_.vocabulary().end());
  vs->mutable_document_frequency()->Assign(vectorizer_.document_frequency().begin(),
                                           vectorizer_.document_frequency().end());
  vs->set_num_documents(vectorizer_.num_documents());
  v1::ClassifierState* cs = spec.mutable_classifier();
  *cs->mutable_config() = classifier_config_;
  cs->mutable_classes()->Assign(classifier_.classes().begin(), classifier_.classes().end());
  cs->mutable_class_count()->Assign(classifier_.class_count().begin(),
                                    classifier_.class_count().end());
  SetMatrix(classifier_.num_classes(), classifier_.num_features(), classifier_.feature_count(),
            cs->mutable_feature_count());
  cs->mutable_class_log_prior()->Assign(classifier_.class_log_prior().begin(),
                                        classifier_.class_log_prior().end());
  SetMatrix(classifier_.num_classes(), classifier_.num_features(), classifier_.feature_log_prob(),
            cs->mutable_feature_log_prob());
  return spec;
}

absl::StatusOr<std::vector<SparseVector>> Pipeline::Vectorize(
    const std::vector<std::string>& texts) const {
  MAAS_RETURN_IF_ERROR(ValidateTexts(texts));
  std::vector<SparseVector> rows;
  rows.reserve(texts.size());
  for (const std::string& text : texts) rows.push_back(vectorizer_.Transform(text));
  return rows;
}

absl::StatusOr<std::vector<ClassScores>> Pipeline::PredictScores(
    const std::vector<std::string>& texts) const {
  MAAS_RETURN_IF_ERROR(ValidateTexts(texts));
  std::vector<ClassScores> out;
  out.reserve(texts.size());
  for (const std::string& text : texts)
    out.push_back(classifier_.Predict(vectorizer_.Transform(text)));
  return out;
}

absl::StatusOr<std::vector<v1::Classification>> Pipeline::Classify(
    const std::vector<std::string>& texts, const ClassifyOptions& options) const {
  MAAS_RETURN_IF_ERROR(ValidateTexts(texts));
  const std::vector<std::string>& classes = classifier_.classes();
  const size_t k = classes.size();
  const size_t f = classifier_.num_features();
  const std::vector<double>& flp = classifier_.feature_log_prob();
  std::vector<v1::Classification> results;
  results.reserve(texts.size());
  for (const std::string& text : texts) {
    const SparseVector row = vectorizer_.Transform(text);
    const ClassScores scores = classifier_.Predict(row);
    v1::Classification& result = results.emplace_back();
    result.set_label(classes[scores.predicted]);
    std::vector<size_t> order(k);
    std::iota(order.begin(), order.end(), 0);
    size_t count = k;
    if (options.top_k > 0) {
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return scores.probability[a] > scores.probability[b];
      });
      count = std::min<size_t>(options.top_k, k);
    }
    for (size_t i = 0; i < count; ++i) {
      v1::ClassScore* score = result.add_scores();
      score->set_label(classes[order[i]]);
      score->set_probability(scores.probability[order[i]]);
      score->set_log_probability(scores.log_probability[order[i]]);
    }
    if (!options.explain) continue;
    // Runner-up: the best class other than the winner by jll (first maximum wins).
    const size_t winner = scores.predicted;
    bool has_runner_up = false;
    size_t runner_up = 0;
    for (size_t c = 0; c < k; ++c) {
      if (c == winner) continue;
      if (!has_runner_up ||
          scores.joint_log_likelihood[c] > scores.joint_log_likelihood[runner_up]) {
        runner_up = c;
        has_runner_up = true;
      }
    }
    v1::Explanation* explanation = result.mutable_explanation();
    if (has_runner_up) explanation->set_runner_up(classes[runner_up]);
    std::vector<std::pair<double, size_t>> contributions;  // (contribution, position in row)
    for (size_t e = 0; e < row.indices.size(); ++e) {
      const size_t j = row.indices[e];
      const double delta = flp[winner * f + j] - (has_runner_up ? flp[runner_up * f + j] : 0.0);
      contributions.emplace_back(row.values[e] * delta, e);
    }
    std::stable_sort(contributions.begin(), contributions.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    const size_t wanted =
        options.explain_features == 0 ? kDefaultExplainFeatures : options.explain_features;
    for (size_t i = 0; i < std::min(wanted, contributions.size()); ++i) {
      const size_t e = contributions[i].second;
      v1::FeatureContribution* fc = explanation->add_features();
      fc->set_feature(vectorizer_.vocabulary()[row.indices[e]]);
      fc->set_index(row.indices[e]);
      fc->set_value(row.values[e]);
      fc->set_contribution(contributions[i].first);
    }
  }
  return results;
}

absl::StatusOr<Trainer> Trainer::Create(const v1::TrainConfig& config,
                                        const PipelineLimits& limits) {
  MAAS_RETURN_IF_ERROR(CheckConfigLimits(config.vectorizer(), limits));
  if (config.partial()) {
    return absl::UnimplementedError(
        "partial training (TrainConfig.partial, scikit-learn partial_fit) is not supported yet");
  }
  if (config.classes_size() != 0) {
    return absl::UnimplementedError(
        "TrainConfig.classes (partial_fit's classes) is not supported yet; leave it empty");
  }
  MAAS_RETURN_IF_ERROR(CountVectorizerOptionsFromConfig(config.vectorizer()).status());
  MAAS_RETURN_IF_ERROR(MultinomialNbOptionsFromConfig(config.classifier()).status());
  return Trainer(config, limits);
}

absl::Status Trainer::AddBatch(const v1::TextBatch& batch) {
  const size_t batch_index = num_batches_;
  for (int i = 0; i < batch.examples_size(); ++i) {
    const v1::LabeledText& example = batch.examples(i);
    const auto where = [&]() {
      return absl::StrCat("batch ", batch_index, ", example ", i, " (example ", texts_.size() + i,
                          " of the stream): ");
    };
    absl::Status valid = ValidateUtf8(example.text());
    if (!valid.ok()) return absl::InvalidArgumentError(absl::StrCat(where(), valid.message()));
    if (example.label().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where(), "label is empty"));
    }
    valid = ValidateUtf8(example.label());
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where(), "label: ", valid.message()));
    }
    if (example.has_weight() && !(std::isfinite(example.weight()) && example.weight() >= 0.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "weight must be finite and >= 0; got ", example.weight()));
    }
  }
  absl::flat_hash_set<absl::string_view> new_labels;
  for (const v1::LabeledText& example : batch.examples()) {
    if (distinct_labels_.contains(example.label())) continue;
    new_labels.insert(example.label());
    if (distinct_labels_.size() + new_labels.size() > limits_.max_classes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("batch ", batch_index,
                       " brings the number of distinct labels above this server's limit of ",
                       limits_.max_classes, " classes (--max_classes); merge rare labels"));
    }
  }
  for (const absl::string_view label : new_labels) distinct_labels_.emplace(label);
  ++num_batches_;
  for (const v1::LabeledText& example : batch.examples()) {
    texts_.push_back(example.text());
    labels_.push_back(example.label());
    weights_.push_back(example.has_weight() ? example.weight() : 1.0);
  }
  return absl::OkStatus();
}

absl::StatusOr<TrainResult> Trainer::Finish() const {
  if (texts_.empty()) {
    return absl::InvalidArgumentError(
        "no training examples; send at least one batch after the config");
  }
  // All weights 1 is the same as no sample_weight (exact integer counts either way).
  MAAS_ASSIGN_OR_RETURN(Pipeline pipeline,
                        Pipeline::Fit(texts_, labels_, weights_, config_.vectorizer(),
                                      config_.classifier(), limits_));
  v1::TrainSummary summary;
  summary.set_num_documents(texts_.size());
  summary.set_num_features(pipeline.num_features());
  summary.mutable_classes()->Assign(pipeline.classes().begin(), pipeline.classes().end());
  summary.mutable_class_count()->Assign(pipeline.classifier().class_count().begin(),
                                        pipeline.classifier().class_count().end());
  return TrainResult{std::move(pipeline), std::move(summary)};
}

}  // namespace maas::discriminative
