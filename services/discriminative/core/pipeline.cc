#include "services/discriminative/core/pipeline.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/status/status_macros.h"
#include "common/store/held_bytes.h"
#include "google/protobuf/util/message_differencer.h"
#include "services/discriminative/core/class_labels.h"
#include "services/discriminative/core/count_vectorizer.h"
#include "services/discriminative/core/numpy_compat.h"
#include "services/discriminative/core/text_analysis.h"

namespace maas::discriminative {
namespace {

constexpr uint32_t kDefaultExplainFeatures = 10;
// Texts per chunk of a Classify batch (the unit of parallelism and of stop checks).
constexpr size_t kClassifyChunk = 64;
// Texts whose probabilities ClassifyCompact computes together, after their joint log-likelihoods:
// one text's softmax is a chain of ~130 cycles (max, exponentials, sum, divide) that the
// out-of-order core cannot overlap with the next text's tokenizing, 16 in a row overlap (2-5 % of
// the classification of short texts).
constexpr size_t kSoftmaxBlock = 16;

// Asks a StopToken between texts once kTexts texts or kBytes bytes of text were analyzed since its
// last answer: about once per chunk of short texts, and still several times a second on long ones
// (one 1 MiB text under char n-grams up to 16 is about a second of work).
class TextStopCheck {
 public:
  static constexpr size_t kTexts = kClassifyChunk;
  static constexpr size_t kBytes = size_t{256} << 10;

  explicit TextStopCheck(const exec::StopToken& stop) : stop_(stop) {}
  // Before analyzing a text of `bytes` bytes: OK, or why the work must stop.
  absl::Status Before(size_t bytes) {
    absl::Status status;
    if (texts_ >= kTexts || bytes_ >= kBytes) {
      texts_ = bytes_ = 0;
      status = stop_.Check();
    }
    ++texts_;
    bytes_ += bytes;
    return status;
  }

 private:
  const exec::StopToken& stop_;
  size_t texts_ = 0, bytes_ = 0;
};

// Points a scratch's feature_rows hint at the classifier's parameter rows for its lifetime (the
// scratch is pooled: the hint is cleared again, so no other use sees it).
class FeatureRowsHint {
 public:
  FeatureRowsHint(const Classifier& classifier, AnalyzerScratch* scratch) : scratch_(scratch) {
    const Classifier::FeatureRows rows = classifier.feature_rows();
    scratch->feature_rows = rows.base;
    scratch->feature_row_stride = rows.stride;
  }
  ~FeatureRowsHint() {
    scratch_->feature_rows = nullptr;
    scratch_->feature_row_stride = 0;
  }
  FeatureRowsHint(const FeatureRowsHint&) = delete;
  FeatureRowsHint& operator=(const FeatureRowsHint&) = delete;

 private:
  AnalyzerScratch* scratch_;
};

// Splits `num_texts` texts into blocks of kClassifyChunk and calls block(begin, end) for each
// block's text range [begin, end) in parallel (each block one item of the executor's ParallelFor,
// so a long call steps aside for other calls between two blocks; a block leases a scratch, which
// keeps its buffers and word memo from the blocks before), with `stop` checked before each block
// (its error returned) and, through the block's TextStopCheck (call Before each text), within a
// block of long texts. Returns the first error in text order.
absl::Status ForEachTextBlock(
    size_t num_texts, const exec::StopToken& stop, exec::Executor& executor, ScratchPool& scratches,
    const std::function<absl::Status(size_t begin, size_t end, AnalyzerScratch* scratch,
                                     TextStopCheck& check)>& block) {
  const size_t num_blocks = (num_texts + kClassifyChunk - 1) / kClassifyChunk;
  std::vector<absl::Status> errors(num_blocks);
  // The first block that failed so far: the blocks after it are skipped, those before it still
  // run (the first error in text order is the one returned, whatever the threads did).
  std::atomic<size_t> first_failed{num_blocks};
  executor.ParallelFor(static_cast<int64_t>(num_blocks), [&](int64_t item) {
    const size_t b = static_cast<size_t>(item);
    if (b > first_failed.load(std::memory_order_relaxed)) return;
    absl::Status status = stop.Check();
    if (status.ok()) {
      const ScratchPool::Lease lease = scratches.Acquire();
      TextStopCheck check(stop);
      status =
          block(b * kClassifyChunk, std::min(num_texts, (b + 1) * kClassifyChunk), &*lease, check);
    }
    if (!status.ok()) {
      errors[b] = std::move(status);
      size_t first = first_failed.load();
      while (b < first && !first_failed.compare_exchange_weak(first, b)) {
      }
    }
  });
  for (const absl::Status& error : errors) MAAS_RETURN_IF_ERROR(error);
  return absl::OkStatus();
}

// OK, or texts[index]'s analysis error (a custom token_pattern over its matching limits).
absl::Status AnalysisStatus(const AnalyzerScratch& scratch, size_t index) {
  const absl::Status& status = scratch.token_matcher.status();
  if (status.ok()) return absl::OkStatus();
  return TextError(index, status);
}

// OK, or INVALID_ARGUMENT naming texts[index] and the first feature of `row` that holds NaN or an
// infinity, which `who` refuses with the message `phrase` + "NaN" (or "infinity ...").
absl::Status FiniteRowStatus(const SparseVector& row, size_t index, absl::string_view who,
                             absl::string_view phrase) {
  for (size_t e = 0; e < row.values.size(); ++e) {
    const double value = row.values[e];
    if (std::isfinite(value)) continue;
    return TextError(
        index,
        absl::InvalidArgumentError(absl::StrCat(
            "its feature ", row.indices[e], " has the value ", value,
            " (tf-idf's sublinear_tf takes log(x) + 1 of the hashing vectorizer's signed sums: NaN "
            "where a sum is negative, -inf where it is 0, and a norm spreads a NaN over the row), "
            "which ",
            who, " (\"", phrase,
            std::isnan(value) ? "NaN" : "infinity or a value too large for dtype('float64')",
            "\"); train with alternate_sign false or without sublinear_tf")));
  }
  return absl::OkStatus();
}

uint64_t CountDistinct(const std::vector<std::string>& labels) {
  absl::flat_hash_set<absl::string_view> distinct;
  for (const std::string& label : labels) distinct.insert(label);
  return distinct.size();
}

// TextError's payload: the text's index, for RenameTextError.
constexpr absl::string_view kTextIndexPayload = "maas.discriminative/text_index";

}  // namespace

absl::Status TextError(size_t index, const absl::Status& status) {
  absl::Status error(status.code(), absl::StrCat("texts[", index, "]: ", status.message()));
  error.SetPayload(kTextIndexPayload, absl::Cord(absl::StrCat(index)));
  return error;
}

absl::Status RenameTextError(const absl::Status& status,
                             const std::function<std::string(size_t index)>& name) {
  const auto payload = status.GetPayload(kTextIndexPayload);
  size_t index = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &index)) return status;
  const std::string prefix = absl::StrCat("texts[", index, "]: ");
  absl::string_view message = status.message();
  if (!absl::ConsumePrefix(&message, prefix)) return status;
  return absl::Status(status.code(), absl::StrCat(name(index), message));
}

absl::Status CheckConfigLimits(const v1::VectorizerConfig& vectorizer_config,
                               const PipelineLimits& limits) {
  const v1::TextOptions& text = TextOptionsOf(vectorizer_config);
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

absl::Status CheckTrainPeak(uint64_t num_classes, uint64_t num_features, uint64_t vectorizer_bytes,
                            uint64_t rows_bytes, uint32_t fit_tables,
                            const PipelineLimits& limits) {
  const long double cells = static_cast<long double>(num_classes) * num_features;
  // The store's peak, or the fit's (the rows are dropped once the classifier is fitted).
  const long double peak =
      std::max(cells * kTrainPeakBytesPerCell +
                   static_cast<long double>(vectorizer_bytes) * kTrainPeakVectorizerFactor,
               cells * fit_tables * sizeof(double) + static_cast<long double>(vectorizer_bytes) +
                   static_cast<long double>(rows_bytes));
  if (peak <= static_cast<long double>(limits.max_train_memory_bytes)) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("fitting and storing a model of ", num_classes, " classes x ", num_features,
                   " features takes about ", static_cast<uint64_t>(peak),
                   " bytes of memory at its peak (", kTrainPeakBytesPerCell,
                   " bytes per class x feature: the parameter tables fitted, serialized "
                   "and loaded back, plus ",
                   kTrainPeakVectorizerFactor, " x the vectorizer's ", vectorizer_bytes,
                   " bytes), above this server's limit of ", limits.max_train_memory_bytes,
                   " (--max_train_memory_bytes); nothing was stored: use fewer classes or features "
                   "(min_df/max_features, fewer hashing n_features)"));
}

Pipeline::Pipeline(v1::VectorizerConfig vectorizer_config, v1::ClassifierConfig classifier_config,
                   std::shared_ptr<const Vectorizer> vectorizer,
                   std::shared_ptr<const Classifier> classifier)
    : vectorizer_config_(std::move(vectorizer_config)),
      classifier_config_(std::move(classifier_config)),
      decode_error_(DecodeErrorOf(TextOptionsOf(vectorizer_config_))),
      vectorizer_(std::move(vectorizer)),
      classifier_(std::move(classifier)),
      non_finite_(vectorizer_->NonFiniteRows()) {
  ClearHeldLists(&vectorizer_config_);
}

absl::StatusOr<Pipeline> Pipeline::Fit(const std::vector<std::string>& texts,
                                       const std::vector<std::string>& labels,
                                       const std::vector<double>& weights,
                                       const v1::VectorizerConfig& vectorizer_config,
                                       const v1::ClassifierConfig& classifier_config,
                                       const PipelineLimits& limits, const exec::StopToken& stop) {
  MAAS_RETURN_IF_ERROR(CheckConfigLimits(vectorizer_config, limits));
  MAAS_RETURN_IF_ERROR(ValidateVectorizerConfig(vectorizer_config));
  MAAS_RETURN_IF_ERROR(ValidateClassifierConfig(classifier_config));
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
  const uint64_t num_classes = CountDistinct(labels);
  MAAS_RETURN_IF_ERROR(CheckModelSize(num_classes, 0, limits));
  const DecodeError decode_error = DecodeErrorOf(TextOptionsOf(vectorizer_config));
  std::vector<std::string> repaired;  // decode_error replace/ignore copies, rarely needed
  std::vector<std::string_view> views(texts.begin(), texts.end());
  for (size_t i = 0; i < texts.size(); ++i) {
    if (ValidateUtf8(texts[i]).ok()) continue;
    std::string storage;
    absl::StatusOr<std::string_view> decoded = DecodeUtf8(texts[i], decode_error, &storage);
    if (!decoded.ok()) return TextError(i, absl::InvalidArgumentError(decoded.status().message()));
    repaired.push_back(std::move(storage));
  }
  // Views into `repaired` only once it stops growing (moves may relocate short strings).
  for (size_t i = 0, r = 0; i < texts.size(); ++i) {
    if (!ValidateUtf8(texts[i]).ok()) views[i] = repaired[r++];
  }
  MAAS_ASSIGN_OR_RETURN(VectorizerFit fit, FitVectorizer(vectorizer_config, views, stop));
  return FromVectorizerFit(std::move(fit), labels, weights, vectorizer_config, classifier_config,
                           v1::LABEL_TYPE_STRING, limits, stop);
}

absl::StatusOr<Pipeline> Pipeline::FromVectorizerFit(
    VectorizerFit fit, const std::vector<std::string>& labels, const std::vector<double>& weights,
    const v1::VectorizerConfig& vectorizer_config, const v1::ClassifierConfig& classifier_config,
    v1::LabelType label_type, const PipelineLimits& limits, const exec::StopToken& stop) {
  const uint64_t num_classes = CountDistinct(labels);
  MAAS_RETURN_IF_ERROR(CheckModelSize(num_classes, fit.vectorizer->num_features(), limits));
  MAAS_ASSIGN_OR_RETURN(const uint32_t fit_tables, ClassifierFitTables(classifier_config));
  MAAS_RETURN_IF_ERROR(CheckTrainPeak(num_classes, fit.vectorizer->num_features(),
                                      static_cast<uint64_t>(fit.vectorizer->MemoryBytes()),
                                      static_cast<uint64_t>(fit.rows.MemoryBytes()), fit_tables,
                                      limits));
  MAAS_RETURN_IF_ERROR(stop.Check());
  MAAS_ASSIGN_OR_RETURN(std::unique_ptr<Classifier> classifier,
                        FitClassifier(classifier_config, label_type, fit.rows,
                                      fit.vectorizer->num_features(), labels, weights));
  return Pipeline(vectorizer_config, classifier_config,
                  std::shared_ptr<const Vectorizer>(std::move(fit.vectorizer)),
                  std::shared_ptr<const Classifier>(std::move(classifier)));
}

absl::StatusOr<Pipeline> Pipeline::FromSpec(const v1::PipelineSpec& spec) {
  MAAS_ASSIGN_OR_RETURN(std::unique_ptr<Vectorizer> vectorizer,
                        VectorizerFromState(spec.vectorizer()));
  MAAS_ASSIGN_OR_RETURN(std::unique_ptr<Classifier> classifier,
                        ClassifierFromState(spec.classifier(), vectorizer->num_features()));
  return Pipeline(spec.vectorizer().config(), spec.classifier().config(),
                  std::shared_ptr<const Vectorizer>(std::move(vectorizer)),
                  std::shared_ptr<const Classifier>(std::move(classifier)));
}

absl::StatusOr<Pipeline> Pipeline::FromSpec(v1::PipelineSpec* spec) {
  return FromSpecTaking(spec, StateForm::kFull);
}

absl::StatusOr<Pipeline> Pipeline::FromStoredSpec(v1::PipelineSpec* spec) {
  return FromSpecTaking(spec, StateForm::kFullOrStored);
}

absl::StatusOr<Pipeline> Pipeline::FromSpecTaking(v1::PipelineSpec* spec, StateForm form) {
  MAAS_ASSIGN_OR_RETURN(std::unique_ptr<Vectorizer> vectorizer,
                        VectorizerFromState(spec->mutable_vectorizer(), form));
  MAAS_ASSIGN_OR_RETURN(
      std::unique_ptr<Classifier> classifier,
      ClassifierFromState(spec->mutable_classifier(), vectorizer->num_features()));
  // The config's lists are in the vectorizer now: not copied, not even for a moment.
  return Pipeline(CopyWithoutHeldLists(spec->mutable_vectorizer()->mutable_config()),
                  spec->classifier().config(),
                  std::shared_ptr<const Vectorizer>(std::move(vectorizer)),
                  std::shared_ptr<const Classifier>(std::move(classifier)));
}

v1::PipelineSpec Pipeline::ToSpec() const {
  v1::PipelineSpec spec;
  vectorizer_->ToState(spec.mutable_vectorizer());
  *spec.mutable_vectorizer()->mutable_config() = vectorizer_config();
  classifier_->ToState(spec.mutable_classifier());
  *spec.mutable_classifier()->mutable_config() = classifier_config_;
  return spec;
}

v1::PipelineSpec Pipeline::ToStoredSpec() const {
  v1::PipelineSpec spec = ToSpec();
  CompactStoredState(spec.mutable_vectorizer());
  return spec;
}

void Pipeline::ExpandStoredSpec(v1::PipelineSpec* spec) {
  ExpandStoredState(spec->mutable_vectorizer());
}

v1::VectorizerConfig Pipeline::vectorizer_config() const {
  v1::VectorizerConfig config = vectorizer_config_;
  vectorizer_->RestoreHeldLists(&config);
  return config;
}

int64_t Pipeline::MemoryBytes() const {
  return static_cast<int64_t>(vectorizer_config_.SpaceUsedLong() +
                              classifier_config_.SpaceUsedLong()) +
         vectorizer_->MemoryBytes() + classifier_->MemoryBytes();
}

absl::StatusOr<std::string_view> Pipeline::Decode(std::string_view text, size_t index,
                                                  std::string* storage) const {
  absl::StatusOr<std::string_view> decoded = DecodeUtf8(text, decode_error_, storage);
  if (!decoded.ok()) {
    return TextError(index, absl::InvalidArgumentError(decoded.status().message()));
  }
  return decoded;
}

absl::Status Pipeline::TransformText(std::string_view text, size_t index, AnalyzerScratch* scratch,
                                     SparseVector* row) const {
  if (!vectorizer_->TransformIfWellFormed(text, scratch, row)) {
    MAAS_ASSIGN_OR_RETURN(const std::string_view decoded, Decode(text, index, &scratch->decoded));
    vectorizer_->Transform(decoded, scratch, row);
    MAAS_RETURN_IF_ERROR(AnalysisStatus(*scratch, index));
  }
  if (non_finite_ != Vectorizer::NonFinite::kRefused) return absl::OkStatus();
  return FiniteRowStatus(*row, index, "scikit-learn's tf-idf norm refuses", "Input contains ");
}

absl::Status Pipeline::TransformForClassifier(std::string_view text, size_t index,
                                              AnalyzerScratch* scratch, SparseVector* row) const {
  MAAS_RETURN_IF_ERROR(TransformText(text, index, scratch, row));
  if (non_finite_ != Vectorizer::NonFinite::kKept) return absl::OkStatus();
  return FiniteRowStatus(*row, index, "scikit-learn's classifiers refuse", "Input X contains ");
}

absl::StatusOr<std::vector<SparseVector>> Pipeline::Vectorize(TextList texts,
                                                              const exec::StopToken& stop) const {
  std::vector<SparseVector> rows;
  rows.reserve(texts.size());
  MAAS_RETURN_IF_ERROR(ForEachRow(texts, stop, [&rows](size_t, const SparseVector& row) {
    rows.push_back(row);
    return absl::OkStatus();
  }));
  return rows;
}

absl::Status Pipeline::ForEachRow(
    TextList texts, const exec::StopToken& stop,
    const std::function<absl::Status(size_t i, const SparseVector& row)>& visit) const {
  AnalyzerScratch scratch;
  SparseVector row;
  TextStopCheck check(stop);
  for (size_t i = 0; i < texts.size(); ++i) {
    MAAS_RETURN_IF_ERROR(check.Before(texts[i].size()));
    MAAS_RETURN_IF_ERROR(TransformText(texts[i], i, &scratch, &row));
    MAAS_RETURN_IF_ERROR(visit(i, row));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ClassScores>> Pipeline::PredictScores(
    TextList texts, const exec::StopToken& stop) const {
  std::vector<ClassScores> out;
  out.reserve(texts.size());
  MAAS_RETURN_IF_ERROR(ForEachScores(
      texts, stop, [&](size_t, const ClassScores& scores) { out.push_back(scores); }));
  return out;
}

absl::Status Pipeline::ForEachScores(
    TextList texts, const exec::StopToken& stop,
    const std::function<void(size_t i, const ClassScores& scores)>& visit) const {
  AnalyzerScratch scratch;
  SparseVector row;
  TextStopCheck check(stop);
  for (size_t i = 0; i < texts.size(); ++i) {
    MAAS_RETURN_IF_ERROR(check.Before(texts[i].size()));
    MAAS_RETURN_IF_ERROR(TransformForClassifier(texts[i], i, &scratch, &row));
    visit(i, classifier_->Predict(row));
  }
  return absl::OkStatus();
}

void Pipeline::ClassifyOne(const SparseVector& row, const ClassifyOptions& options,
                           v1::Classification* result) const {
  const std::vector<std::string>& classes = classifier_->classes();
  const size_t k = classes.size();
  const ClassScores scores = classifier_->Predict(row);
  result->set_label(classes[scores.predicted]);
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
    v1::ClassScore* score = result->add_scores();
    score->set_label(classes[order[i]]);
    score->set_probability(scores.probability[order[i]]);
    score->set_log_probability(scores.log_probability[order[i]]);
  }
  if (!options.explain) return;
  // Runner-up: the best class other than the winner by jll (first maximum wins).
  const size_t winner = scores.predicted;
  bool has_runner_up = false;
  size_t runner_up = 0;
  for (size_t c = 0; c < k; ++c) {
    if (c == winner) continue;
    if (!has_runner_up || scores.joint_log_likelihood[c] > scores.joint_log_likelihood[runner_up]) {
      runner_up = c;
      has_runner_up = true;
    }
  }
  v1::Explanation* explanation = result->mutable_explanation();
  if (has_runner_up) explanation->set_runner_up(classes[runner_up]);
  std::vector<std::pair<double, size_t>> contributions;  // (contribution, position in row)
  for (size_t e = 0; e < row.indices.size(); ++e) {
    const uint32_t j = row.indices[e];
    const double v = row.values[e];
    const double delta = classifier_->FeatureContribution(winner, j, v) -
                         (has_runner_up ? classifier_->FeatureContribution(runner_up, j, v) : 0.0);
    contributions.emplace_back(delta, e);
  }
  std::stable_sort(contributions.begin(), contributions.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  const size_t wanted =
      options.explain_features == 0 ? kDefaultExplainFeatures : options.explain_features;
  for (size_t i = 0; i < std::min(wanted, contributions.size()); ++i) {
    const size_t e = contributions[i].second;
    v1::FeatureContribution* fc = explanation->add_features();
    fc->set_feature(vectorizer_->FeatureName(row.indices[e]));
    fc->set_index(row.indices[e]);
    fc->set_value(row.values[e]);
    fc->set_contribution(contributions[i].first);
  }
}

absl::StatusOr<std::vector<v1::Classification>> Pipeline::Classify(TextList texts,
                                                                   const ClassifyOptions& options,
                                                                   const exec::StopToken& stop,
                                                                   exec::Executor& executor) const {
  google::protobuf::RepeatedPtrField<v1::Classification> field;
  MAAS_RETURN_IF_ERROR(ClassifyInto(texts, options, stop, executor, &field));
  std::vector<v1::Classification> results(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) results[i].Swap(field.Mutable(static_cast<int>(i)));
  return results;
}

absl::Status Pipeline::ClassifyInto(
    TextList texts, const ClassifyOptions& options, const exec::StopToken& stop,
    exec::Executor& executor,
    google::protobuf::RepeatedPtrField<v1::Classification>* results_field) const {
  results_field->Clear();
  results_field->Reserve(static_cast<int>(texts.size()));
  // The elements' addresses: they stay put while the tasks fill them (the field is not resized
  // meanwhile).
  std::vector<v1::Classification*> results(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) results[i] = results_field->Add();
  return ForEachTextBlock(
      texts.size(), stop, executor, *scratches_,
      [&](size_t begin, size_t end, AnalyzerScratch* scratch,
          TextStopCheck& check) -> absl::Status {
        SparseVector row;
        for (size_t i = begin; i < end; ++i) {
          MAAS_RETURN_IF_ERROR(check.Before(texts[i].size()));
          MAAS_RETURN_IF_ERROR(TransformForClassifier(texts[i], i, scratch, &row));
          ClassifyOne(row, options, results[i]);
        }
        return absl::OkStatus();
      });
}

namespace {

// Requests the first kPrefetchTextBytes of `text` from memory, one line at a time: the next text
// of a batch, while the current one is classified (each text is its own allocation, so the
// hardware's stream prefetch does not cross from one to the next). Only a memory hint.
constexpr size_t kPrefetchTextBytes = 1024;
inline void PrefetchText(std::string_view text) {
  const char* p = text.data();
  const size_t n = std::min(text.size(), kPrefetchTextBytes);
  for (size_t offset = 0; offset < n; offset += 64) __builtin_prefetch(p + offset);
}

}  // namespace

absl::Status Pipeline::ClassifyCompact(TextList texts, const exec::StopToken& stop,
                                       exec::Executor& executor, double* probabilities,
                                       uint32_t* predicted) const {
  const size_t k = classifier_->classes().size();
  return ForEachTextBlock(
      texts.size(), stop, executor, *scratches_,
      [&](size_t begin, size_t end, AnalyzerScratch* scratch,
          TextStopCheck& check) -> absl::Status {
        SparseVector row;
        // The joint log-likelihoods of up to kSoftmaxBlock texts, turned into
        // probabilities together (see kSoftmaxBlock).
        std::vector<double> jll(k * kSoftmaxBlock);
        const FeatureRowsHint hint(*classifier_, scratch);
        for (size_t first = begin; first < end; first += kSoftmaxBlock) {
          const size_t last = std::min(end, first + kSoftmaxBlock);
          for (size_t i = first; i < last; ++i) {
            if (i + 1 < end) PrefetchText(texts[i + 1]);
            MAAS_RETURN_IF_ERROR(check.Before(texts[i].size()));
            MAAS_RETURN_IF_ERROR(TransformForClassifier(texts[i], i, scratch, &row));
            classifier_->JointLogLikelihood(row, &jll[(i - first) * k]);
          }
          for (size_t i = first; i < last; ++i) {
            predicted[i] = static_cast<uint32_t>(ProbabilitiesFromJointLogLikelihood(
                &jll[(i - first) * k], k, probabilities + i * k));
          }
        }
        return absl::OkStatus();
      });
}

absl::StatusOr<std::vector<v1::Classification>> Pipeline::Classify(
    TextList texts, const ClassifyOptions& options) const {
  exec::InlineExecutor inline_executor;
  return Classify(texts, options, exec::StopToken(), inline_executor);
}

namespace {

// OK when the partial Train's config part equals the continued version's, else INVALID_ARGUMENT
// naming the first differing field.
absl::Status CheckSameConfig(absl::string_view part, const google::protobuf::Message& stored,
                             const google::protobuf::Message& given) {
  std::string report;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&report);
  if (differencer.Compare(stored, given)) return absl::OkStatus();
  std::string first(report.substr(0, report.find('\n')));
  if (first.size() > 300) first = absl::StrCat(first.substr(0, 300), "...");
  return absl::InvalidArgumentError(absl::StrCat(
      "a partial Train continues the latest version with its exact configuration, but this ", part,
      " config differs from the stored one (", first, "); send the same ", part,
      " config as before (GetModel shows it) or leave ", part,
      " unset to continue with the stored one; to change it, train without partial"));
}

std::string QuotedList(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size() && i < 20; ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ", ", "'", values[i].substr(0, 100), "'");
  }
  if (values.size() > 20) absl::StrAppend(&out, ", ... (", values.size(), " in all)");
  return absl::StrCat(out, "]");
}

// The continued version's vectorizer with this call's document counts added (the features are
// the same: partial training only runs vectorizers that do not learn from data). `config` is
// without the lists the vectorizers hold (ClearHeldLists): they come from `batch`.
absl::StatusOr<std::shared_ptr<const Vectorizer>> ContinueVectorizer(
    const Vectorizer& previous, const Vectorizer& batch, const v1::VectorizerConfig& config) {
  if (previous.num_features() != batch.num_features()) {
    return absl::InternalError(absl::StrCat("partial training: the continued version has ",
                                            previous.num_features(), " features but this call's ",
                                            batch.num_features()));
  }
  v1::VectorizerState before;
  v1::VectorizerState merged;
  previous.ToState(&before);
  batch.ToState(&merged);
  if (before.document_frequency_size() == merged.document_frequency_size()) {
    merged.set_num_documents(before.num_documents() + merged.num_documents());
    for (int i = 0; i < merged.document_frequency_size(); ++i) {
      merged.set_document_frequency(i, before.document_frequency(i) + merged.document_frequency(i));
    }
  } else {  // the continued version's counts are unknown (an import without them)
    merged.clear_document_frequency();
    merged.set_num_documents(0);
  }
  *merged.mutable_config() = config;
  batch.RestoreHeldLists(merged.mutable_config());
  // A fixed vocabulary once, as the state's (which the batch's vectorizer wrote).
  CompactStoredState(&merged);
  MAAS_ASSIGN_OR_RETURN(std::unique_ptr<Vectorizer> vectorizer,
                        VectorizerFromState(&merged, StateForm::kFullOrStored));
  return std::shared_ptr<const Vectorizer>(std::move(vectorizer));
}

}  // namespace

absl::StatusOr<Trainer> Trainer::Create(const v1::TrainConfig& given, const PipelineLimits& limits,
                                        const Pipeline* previous) {
  v1::TrainConfig config = given;
  if (!config.partial()) previous = nullptr;
  // The continued version's vectorizer config is used as it is (nothing to compare), or compared
  // with the given one; either way its lists are written back once.
  bool vectorizer_of_previous = false;
  if (previous != nullptr) {
    if (!config.has_vectorizer()) {
      *config.mutable_vectorizer() = previous->vectorizer_config();
      vectorizer_of_previous = true;
    }
    if (!config.has_classifier()) *config.mutable_classifier() = previous->classifier_config();
    const v1::LabelType stored = previous->classifier().label_type();
    if (!config.has_label_type()) config.set_label_type(stored);
    if (config.label_type() != stored) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a partial Train continues the latest version with its exact configuration, but this "
          "label_type is ",
          v1::LabelType_Name(config.label_type()), " and the stored version's is ",
          v1::LabelType_Name(stored), " (", LabelTypeName(stored),
          "); send the same label_type (GetModel shows it as classifier.label_type) or leave it "
          "unset; to change it, train without partial"));
    }
  }
  MAAS_RETURN_IF_ERROR(ValidateLabelType(config.label_type()));
  const v1::LabelType label_type = config.label_type();
  MAAS_RETURN_IF_ERROR(CheckConfigLimits(config.vectorizer(), limits));
  MAAS_RETURN_IF_ERROR(ValidateClassifierConfig(config.classifier()));
  MAAS_ASSIGN_OR_RETURN(std::unique_ptr<VectorizerFitter> fitter,
                        StartVectorizerFit(config.vectorizer()));
  if (config.partial()) MAAS_RETURN_IF_ERROR(CheckPartialVectorizer(config.vectorizer()));
  std::vector<std::string> classes(config.classes().begin(), config.classes().end());
  for (size_t c = 0; c < classes.size(); ++c) {
    if (classes[c].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("classes[", c, "] is empty"));
    }
    absl::Status valid = ValidateUtf8(classes[c]);
    if (valid.ok()) valid = ValidateLabel(classes[c], label_type);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("classes[", c, "]: ", valid.message()));
    }
  }
  // Canonical labels of one type: equal strings are equal classes, so sorting finds duplicates.
  SortClasses(&classes, label_type);
  for (size_t c = 1; c < classes.size(); ++c) {
    if (classes[c - 1] == classes[c]) {
      return absl::InvalidArgumentError(
          absl::StrCat("classes lists '", classes[c].substr(0, 100),
                       "' more than once; give each class once (partial_fit's classes)"));
    }
  }
  if (classes.size() > limits.max_classes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("classes has ", classes.size(), " entries, above this server's limit of ",
                     limits.max_classes, " classes (--max_classes); merge rare labels"));
  }
  if (previous != nullptr) {
    if (!vectorizer_of_previous) {
      MAAS_RETURN_IF_ERROR(
          CheckSameConfig("vectorizer", previous->vectorizer_config(), config.vectorizer()));
    }
    MAAS_RETURN_IF_ERROR(
        CheckSameConfig("classifier", previous->classifier_config(), config.classifier()));
    if (!classes.empty() && classes != previous->classes()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "`classes=", QuotedList(classes),
          "` is not the same as on last call to partial_fit, was: ",
          QuotedList(previous->classes()),
          " (TrainConfig.classes must equal the classes of the version being continued, or be "
          "left empty)"));
    }
    classes = previous->classes();
  } else if (config.partial() && classes.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "classes must be passed on the first call to partial_fit: model '",
        config.name().substr(0, 100),
        "' has no version to continue, so TrainConfig.classes must list every label this model "
        "will ever be trained on"));
  }
  // The fitter holds the vectorizer config's lists (a fixed vocabulary, stop words) from here on,
  // and the fitted vectorizer writes them back: the trainer does not keep them too.
  ClearHeldLists(config.mutable_vectorizer());
  Trainer trainer(std::move(config), limits);
  trainer.label_type_ = label_type;
  trainer.fitter_ = std::move(fitter);
  trainer.fixed_classes_ = std::move(classes);
  trainer.previous_ = previous;
  return trainer;
}

absl::Status Trainer::AddBatch(const v1::TextBatch& batch, const exec::StopToken& stop) {
  MAAS_RETURN_IF_ERROR(failed_);
  const size_t batch_index = num_batches_;
  // The batch's labels not seen before, collected in the validation pass (one pass over the
  // examples: each is a cache miss in a large batch); past the class limit, the batch is refused
  // after the validation pass (whose errors come first).
  absl::flat_hash_set<absl::string_view> new_labels;
  bool too_many_labels = false;
  size_t batch_bytes = 0;  // of text
  for (int i = 0; i < batch.examples_size(); ++i) {
    const v1::LabeledText& example = batch.examples(i);
    batch_bytes += example.text().size();
    const auto where = [&]() {
      return absl::StrCat("batch ", batch_index, ", example ", i, " (example ", labels_.size() + i,
                          " of the stream): ");
    };
    // Texts are decoded at fit time per decode_error; only strict rejects them here.
    absl::Status valid =
        decode_error_ == DecodeError::kStrict ? ValidateUtf8(example.text()) : absl::OkStatus();
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
    if (label_type_ != v1::LABEL_TYPE_STRING &&
        (fixed_classes_.empty()
             ? !distinct_labels_.contains(example.label()) && !new_labels.contains(example.label())
             : !std::binary_search(fixed_classes_.begin(), fixed_classes_.end(), example.label(),
                                   ClassOrder(label_type_)))) {
      // A label not seen in this stream yet (or not among the fixed classes): of the label type?
      valid = ValidateLabel(example.label(), label_type_);
      if (!valid.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(where(), "label: ", valid.message()));
      }
    }
    if (!fixed_classes_.empty() && !std::binary_search(fixed_classes_.begin(), fixed_classes_.end(),
                                                       example.label(), ClassOrder(label_type_))) {
      return absl::InvalidArgumentError(absl::StrCat(
          where(), "label '", example.label().substr(0, 100), "' is not one of the classes ",
          QuotedList(fixed_classes_),
          previous_ != nullptr ? " of the version being continued"
                               : " given in TrainConfig.classes",
          "; partial_fit's classes are fixed on its first call, and scikit-learn would silently "
          "drop such an example (or count it as another class when there are one or two "
          "classes), so it is refused; train a new model without partial to add a class"));
    }
    // Fixed classes bound the labels already.
    if (fixed_classes_.empty() && !too_many_labels && !distinct_labels_.contains(example.label())) {
      new_labels.insert(example.label());
      too_many_labels = distinct_labels_.size() + new_labels.size() > limits_.max_classes;
    }
  }
  if (too_many_labels) {
    return absl::ResourceExhaustedError(
        absl::StrCat("batch ", batch_index,
                     " brings the number of distinct labels above this server's limit of ",
                     limits_.max_classes, " classes (--max_classes); merge rare labels"));
  }
  for (const absl::string_view label : new_labels) distinct_labels_.emplace(label);
  ++num_batches_;
  fitter_->Expect(static_cast<size_t>(batch.examples_size()), batch_bytes);
  std::string repaired;
  TextStopCheck check(stop);
  for (int i = 0; i < batch.examples_size(); ++i) {
    const v1::LabeledText& example = batch.examples(i);
    const auto fail = [&](const absl::Status& status) {
      failed_ = absl::Status(status.code(),
                             absl::StrCat("batch ", batch_index, ", example ", i, " (example ",
                                          labels_.size(), " of the stream): ", status.message()));
      fitter_.reset();  // unusable: give its memory back now
      return failed_;
    };
    const absl::Status stopped = check.Before(example.text().size());
    if (!stopped.ok()) return fail(stopped);
    // Valid under strict (checked above, so not validated twice); otherwise repaired per
    // decode_error.
    const absl::StatusOr<std::string_view> text =
        decode_error_ == DecodeError::kStrict
            ? absl::StatusOr<std::string_view>(std::string_view(example.text()))
            : DecodeUtf8(example.text(), decode_error_, &repaired);
    const auto over_limit = [&](int64_t held) {
      return fail(absl::ResourceExhaustedError(absl::StrCat(
          "the training data's features take ", held,
          " bytes of memory so far, above this "
          "server's limit of ",
          limits_.max_train_memory_bytes,
          " (--max_train_memory_bytes); nothing was stored: use a smaller ngram_range or the "
          "hashing vectorizer, or train on a subsample")));
    };
    // The labels' and weights' share; the fitter may hold the rest, also within one text.
    const auto others = [&] {
      return store::VectorBytes(labels_) + label_heap_bytes_ + store::VectorBytes(weights_);
    };
    const uint64_t limit = limits_.max_train_memory_bytes;
    fitter_->SetMemoryBudget(
        static_cast<int64_t>(std::min<uint64_t>(limit, std::numeric_limits<int64_t>::max()) -
                             std::min(static_cast<uint64_t>(others()), limit)));
    const absl::Status added = fitter_->Add(text.ok() ? *text : std::string_view());
    if (absl::IsResourceExhausted(added)) return over_limit(fitter_->MemoryBytes() + others());
    if (!added.ok()) return fail(added);
    labels_.push_back(example.label());
    weights_.push_back(example.has_weight() ? example.weight() : 1.0);
    label_heap_bytes_ += store::StringHeapBytes(labels_.back());
    const int64_t held = fitter_->MemoryBytes() + others();
    if (static_cast<uint64_t>(held) > limit) return over_limit(held);
  }
  return absl::OkStatus();
}

absl::StatusOr<TrainResult> Trainer::Finish(const exec::StopToken& stop) {
  MAAS_RETURN_IF_ERROR(failed_);
  if (labels_.empty()) {
    return absl::InvalidArgumentError(
        "no training examples; send at least one batch after the config");
  }
  if (fitter_ == nullptr) {
    return absl::FailedPreconditionError("Trainer::Finish was already called");
  }
  MAAS_RETURN_IF_ERROR(CheckModelSize(distinct_labels_.size(), 0, limits_));
  MAAS_RETURN_IF_ERROR(stop.Check());
  std::unique_ptr<VectorizerFitter> fitter = std::move(fitter_);
  MAAS_ASSIGN_OR_RETURN(VectorizerFit fit, fitter->Finish());
  fitter.reset();
  std::optional<Pipeline> fitted;
  if (fixed_classes_.empty()) {
    // All weights 1 is the same as no sample_weight (exact integer counts either way).
    MAAS_ASSIGN_OR_RETURN(
        Pipeline pipeline,
        Pipeline::FromVectorizerFit(std::move(fit), labels_, weights_, config_.vectorizer(),
                                    config_.classifier(), label_type_, limits_, stop));
    fitted.emplace(std::move(pipeline));
  } else {
    // partial_fit: the continued version's classifier (a copy) or a fresh one over the fixed
    // classes, continued with this call's rows.
    std::shared_ptr<const Vectorizer> vectorizer;
    if (previous_ != nullptr) {
      MAAS_ASSIGN_OR_RETURN(vectorizer, ContinueVectorizer(previous_->vectorizer(), *fit.vectorizer,
                                                           config_.vectorizer()));
    } else {
      vectorizer = std::move(fit.vectorizer);
    }
    const size_t num_features = vectorizer->num_features();
    MAAS_RETURN_IF_ERROR(CheckModelSize(fixed_classes_.size(), num_features, limits_));
    MAAS_ASSIGN_OR_RETURN(const uint32_t fit_tables, ClassifierFitTables(config_.classifier()));
    MAAS_RETURN_IF_ERROR(CheckTrainPeak(
        fixed_classes_.size(), num_features, static_cast<uint64_t>(vectorizer->MemoryBytes()),
        static_cast<uint64_t>(fit.rows.MemoryBytes()), fit_tables, limits_));
    MAAS_RETURN_IF_ERROR(stop.Check());
    std::unique_ptr<Classifier> classifier;
    if (previous_ != nullptr) {
      MAAS_ASSIGN_OR_RETURN(classifier, CopyClassifier(previous_->classifier()));
    } else {
      MAAS_ASSIGN_OR_RETURN(classifier, StartPartialClassifier(config_.classifier(), label_type_,
                                                               fixed_classes_, num_features));
    }
    MAAS_RETURN_IF_ERROR(classifier->PartialFit(fit.rows, labels_, weights_));
    fit.rows.clear();
    fitted.emplace(Pipeline(config_.vectorizer(), config_.classifier(), std::move(vectorizer),
                            std::shared_ptr<const Classifier>(std::move(classifier))));
  }
  Pipeline& pipeline = *fitted;
  v1::TrainSummary summary;
  summary.set_num_documents(labels_.size());
  summary.set_num_features(pipeline.num_features());
  summary.mutable_classes()->Assign(pipeline.classes().begin(), pipeline.classes().end());
  summary.set_label_type(pipeline.classifier().label_type());
  summary.mutable_class_count()->Assign(pipeline.classifier().class_count().begin(),
                                        pipeline.classifier().class_count().end());
  return TrainResult{std::move(*fitted), std::move(summary)};
}

}  // namespace maas::discriminative
