// A fitted text classification pipeline (one vectorizer + one classifier from the registries, with
// scikit-learn's semantics) and a Trainer that accumulates streamed labelled texts. Transport-free:
// the gRPC adapter converts requests to these calls and absl::Status to grpc::Status.
//
//   MAAS_ASSIGN_OR_RETURN(Trainer trainer, Trainer::Create(train_config));
//   MAAS_RETURN_IF_ERROR(trainer.AddBatch(batch));           // once per TextBatch
//   MAAS_ASSIGN_OR_RETURN(TrainResult result, trainer.Finish());
//   MAAS_ASSIGN_OR_RETURN(auto results, result.pipeline.Classify(texts, {.top_k = 3}));
//   v1::PipelineSpec spec = result.pipeline.ToSpec();        // store / export
//   MAAS_ASSIGN_OR_RETURN(Pipeline same, Pipeline::FromSpec(spec));   // import (CreateModel)
//
// Thread safety: a Pipeline is immutable after construction; const methods may be called
// concurrently. A Trainer is not thread-safe.
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_PIPELINE_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_PIPELINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/exec/executor.h"
#include "common/exec/stop_token.h"
#include "maas/discriminative/v1/discriminative.pb.h"
#include "services/discriminative/core/classifier.h"
#include "services/discriminative/core/count_vectorizer.h"
#include "services/discriminative/core/scratch_pool.h"
#include "services/discriminative/core/vectorizer.h"

namespace maas::discriminative {

// A per-text error of a batch call: "texts[index]: <status's message>" with status's code, the
// index also carried as a payload, so that a caller which numbers the texts otherwise (Evaluate:
// the examples of a stream) can name the text its own way (RenameTextError).
absl::Status TextError(size_t index, const absl::Status& status);

// status with TextError's "texts[index]: " replaced by name(index); any other status unchanged.
absl::Status RenameTextError(const absl::Status& status,
                             const std::function<std::string(size_t index)>& name);

struct ClassifyOptions {
  // 0: all classes in class order. k >= 1: the min(k, C) most probable classes, sorted by
  // probability (descending; ties in class order).
  uint32_t top_k = 0;
  // Attach an explanation: features with the largest value * (flp[winner] - flp[runner_up]).
  bool explain = false;
  // Features per explanation; 0 means 10.
  uint32_t explain_features = 0;
};

// Bounds on every parameter whose cost grows with it, checked before work starts (the server sets
// them from flags). Exceeding one answers RESOURCE_EXHAUSTED naming the limit (INVALID_ARGUMENT for
// the n-gram size, a property of the configuration alone).
struct PipelineLimits {
  // Largest n-gram size (ngram_max). Analysis cost grows with ngram_max^2 per token or character.
  uint32_t max_ngram = 16;
  // Largest number of classes of one model.
  uint64_t max_classes = 10'000;
  // Largest classes x features of one model (each of feature_count and feature_log_prob holds that
  // many doubles).
  uint64_t max_model_cells = uint64_t{1} << 25;
  // Largest serialized model, in bytes (protobuf cannot exceed 2 GiB).
  uint64_t max_model_bytes = uint64_t{1} << 30;
  // Largest memory a Train's vectorizing may hold (its vocabulary and sparse rows, checked after
  // each text): what the analysis makes of the texts, which --max_train_bytes cannot bound (char
  // n-grams up to 16 make ~1 KB of features from each byte of random text). Also bounds the peak
  // of fitting and storing the model (CheckTrainPeak, before the classifier is allocated).
  uint64_t max_train_memory_bytes = uint64_t{4} << 30;
};

// Checks the parts of a configuration that the limits bound (INVALID_ARGUMENT naming the field and
// the limit).
absl::Status CheckConfigLimits(const v1::VectorizerConfig& vectorizer_config,
                               const PipelineLimits& limits);

// Checks classes x features against the limits (RESOURCE_EXHAUSTED naming the limit).
absl::Status CheckModelSize(uint64_t num_classes, uint64_t num_features,
                            const PipelineLimits& limits);

// What a Train's fit and store of a classes x features model hold at their peak, per cell: 7
// doubles (measured: 2 classes x 2^24 hashed features peak at 1812 MiB RSS): the stored spec's two
// parameter tables (feature_count_, feature_log_prob_) as serialized bytes, the same parsed back
// (the store's check that the bytes load) and the three tables of the pipeline built from them.
inline constexpr uint64_t kTrainPeakBytesPerCell = 7 * sizeof(double);
// The same for the vectorizer's own state (vocabulary, idf): its bytes, parsed, loaded.
inline constexpr uint64_t kTrainPeakVectorizerFactor = 3;

// Checks that fitting and storing a model of num_classes x num_features, with a fitted vectorizer
// holding vectorizer_bytes and training rows holding rows_bytes (while the classifier is fitted,
// with its fit_tables tables: ClassifierKind::fit_tables), stays within
// limits.max_train_memory_bytes at its peak (above: RESOURCE_EXHAUSTED naming the flag and the
// peak), before the classifier is allocated.
absl::Status CheckTrainPeak(uint64_t num_classes, uint64_t num_features, uint64_t vectorizer_bytes,
                            uint64_t rows_bytes, uint32_t fit_tables, const PipelineLimits& limits);

// The texts of a call, read in place: a std::vector<std::string>, a protobuf repeated string
// field (a request's own strings: a batch of long texts is not copied) or views (a request's
// packed_texts, unpacked). A view: the texts must outlive it.
class TextList {
 public:
  TextList(const std::vector<std::string>& texts)  // NOLINT(google-explicit-constructor)
      : strings_(texts.data()), size_(texts.size()) {}
  TextList(const google::protobuf::RepeatedPtrField<std::string>& texts)  // NOLINT
      : pointers_(texts.data()), size_(static_cast<size_t>(texts.size())) {}
  TextList(const std::vector<std::string_view>& texts)  // NOLINT(google-explicit-constructor)
      : views_(texts.data()), size_(texts.size()) {}

  size_t size() const { return size_; }
  std::string_view operator[](size_t i) const {
    if (strings_ != nullptr) return strings_[i];
    if (pointers_ != nullptr) return *pointers_[i];
    return views_[i];
  }

 private:
  const std::string* strings_ = nullptr;
  const std::string* const* pointers_ = nullptr;
  const std::string_view* views_ = nullptr;
  size_t size_ = 0;
};

class Pipeline {
 public:
  // Fits the configured vectorizer + classifier (see the registries) on texts/labels/weights
  // (`weights` empty: all 1; else one finite weight >= 0 per text, not all 0), string labels
  // (LABEL_TYPE_STRING; the Trainer takes TrainConfig.label_type). Texts are decoded
  // per the config's decode_error. Errors: INVALID_ARGUMENT (no texts, length mismatch, invalid
  // UTF-8 naming the text index, empty label, bad weight, empty vocabulary, bad parameter values),
  // RESOURCE_EXHAUSTED (a limit, named), UNIMPLEMENTED (a parameter not supported yet, named),
  // whatever `stop` answers.
  static absl::StatusOr<Pipeline> Fit(const std::vector<std::string>& texts,
                                      const std::vector<std::string>& labels,
                                      const std::vector<double>& weights,
                                      const v1::VectorizerConfig& vectorizer_config,
                                      const v1::ClassifierConfig& classifier_config,
                                      const PipelineLimits& limits = {},
                                      const exec::StopToken& stop = {});

  // The classifier fitted on a vectorizer's fit rows (what Fit does after vectorizing; the Trainer
  // vectorizes batch by batch), its classes ordered per `label_type`. Checks the model size limits
  // first.
  static absl::StatusOr<Pipeline> FromVectorizerFit(
      VectorizerFit fit, const std::vector<std::string>& labels, const std::vector<double>& weights,
      const v1::VectorizerConfig& vectorizer_config, const v1::ClassifierConfig& classifier_config,
      v1::LabelType label_type, const PipelineLimits& limits, const exec::StopToken& stop);

  // Validates an imported spec thoroughly (config supported, vectorizer and classifier state
  // consistent with it and with each other). Errors: INVALID_ARGUMENT for a malformed spec,
  // UNIMPLEMENTED for an unsupported configuration.
  static absl::StatusOr<Pipeline> FromSpec(const v1::PipelineSpec& spec);
  // The same, taking *spec's large fields (vocabulary, document frequencies, idf, the classifier's
  // tables): each is moved out and its memory freed as it is converted, so that building holds at
  // most one of them twice, not the whole spec beside the pipeline (a load builds from the message
  // it parsed). *spec keeps its configs and small fields; after an error its large fields are
  // unspecified.
  static absl::StatusOr<Pipeline> FromSpec(v1::PipelineSpec* spec);
  // The same for a spec in either form a model store's file holds: the stored form (ToStoredSpec)
  // or the full form (every version stored before the stored form existed). The same pipeline
  // from both.
  static absl::StatusOr<Pipeline> FromStoredSpec(v1::PipelineSpec* spec);

  // The full fitted state; FromSpec(ToSpec()) reproduces the pipeline exactly.
  v1::PipelineSpec ToSpec() const;
  // What the model store's file holds: ToSpec with each list that the state repeats left out of
  // the config (a fixed vocabulary is held once, as the state's vocabulary; CompactStoredState).
  v1::PipelineSpec ToStoredSpec() const;
  // A stored spec (either form) back in the full form: ExpandStoredSpec(ToStoredSpec()) ==
  // ToSpec(), byte for byte.
  static void ExpandStoredSpec(v1::PipelineSpec* spec);

  // The vectorizer's transform: one sparse row per text (ascending indices). INVALID_ARGUMENT
  // naming the text index for invalid UTF-8 under decode_error strict; what `stop` answers
  // (asked every 64 texts or 256 KiB of text).
  absl::StatusOr<std::vector<SparseVector>> Vectorize(TextList texts,
                                                      const exec::StopToken& stop = {}) const;
  // The same rows handed to visit(i, row) text by text, in order, without keeping them (memory of
  // one text's row whatever the number of texts); a non-OK status from visit stops there and is
  // returned, so a caller can stop before the texts after it are vectorized.
  absl::Status ForEachRow(
      TextList texts, const exec::StopToken& stop,
      const std::function<absl::Status(size_t i, const SparseVector& row)>& visit) const;

  // Full per-class scores (jll, predict_log_proba, predict_proba, predict) per text; `stop` as
  // Vectorize.
  absl::StatusOr<std::vector<ClassScores>> PredictScores(TextList texts,
                                                         const exec::StopToken& stop = {}) const;
  // The same scores handed to visit(i, scores) text by text, in order, without keeping them: memory
  // of one text's scores whatever the number of texts (Evaluate keeps two numbers per text).
  absl::Status ForEachScores(
      TextList texts, const exec::StopToken& stop,
      const std::function<void(size_t i, const ClassScores& scores)>& visit) const;

  // Classification messages (label, scores per ClassifyOptions, optional explanation) per text.
  // The texts are split into chunks spread over `executor`; `stop` is checked before each chunk
  // and every 256 KiB of text within one.
  // Results do not depend on the executor.
  absl::StatusOr<std::vector<v1::Classification>> Classify(TextList texts,
                                                           const ClassifyOptions& options,
                                                           const exec::StopToken& stop,
                                                           exec::Executor& executor) const;
  absl::StatusOr<std::vector<v1::Classification>> Classify(TextList texts,
                                                           const ClassifyOptions& options) const;
  // The same results written into `results` (emptied first, then one per text): a response's own
  // field, so that a call holds its answer once.
  absl::Status ClassifyInto(TextList texts, const ClassifyOptions& options,
                            const exec::StopToken& stop, exec::Executor& executor,
                            google::protobuf::RepeatedPtrField<v1::Classification>* results) const;

  // The compact form: probabilities[i * C + c] = predict_proba of text i, class c, and
  // predicted[i] = predict's class index (C = classes().size(); both arrays sized by the caller).
  // Chunks on `executor`, `stop` checked as Classify; no per-text heap allocation in steady state.
  absl::Status ClassifyCompact(TextList texts, const exec::StopToken& stop,
                               exec::Executor& executor, double* probabilities,
                               uint32_t* predicted) const;

  const Vectorizer& vectorizer() const { return *vectorizer_; }
  const Classifier& classifier() const { return *classifier_; }
  const std::vector<std::string>& classes() const { return classifier_->classes(); }
  size_t num_features() const { return vectorizer_->num_features(); }
  // The vectorizer's configuration as given: a copy, with the lists the vectorizer holds (a fixed
  // vocabulary, a stop word list) written back from it.
  v1::VectorizerConfig vectorizer_config() const;
  const v1::ClassifierConfig& classifier_config() const { return classifier_config_; }
  // Heap bytes held: the configurations, the vectorizer and the classifier (for the model cache).
  int64_t MemoryBytes() const;

 private:
  friend class Trainer;
  Pipeline(v1::VectorizerConfig vectorizer_config, v1::ClassifierConfig classifier_config,
           std::shared_ptr<const Vectorizer> vectorizer,
           std::shared_ptr<const Classifier> classifier);
  // The text as the vectorizer sees it (decode_error applied), or INVALID_ARGUMENT naming `index`.
  absl::StatusOr<std::string_view> Decode(std::string_view text, size_t index,
                                          std::string* storage) const;
  // Text `index`'s row: ASCII text through the vectorizer's ASCII path when it has one (no separate
  // UTF-8 pass), any other text decoded first; INVALID_ARGUMENT naming `index` for a text that
  // cannot be decoded or analysed (e.g. a token_pattern past its step limit).
  absl::Status TransformText(std::string_view text, size_t index, AnalyzerScratch* scratch,
                             SparseVector* row) const;
  // TransformText for the classifier: also INVALID_ARGUMENT naming `index` for a row holding NaN or
  // an infinity, which scikit-learn's classifiers refuse (Vectorizer::NonFiniteRows kKept; rows
  // that scikit-learn's transform refuses, kRefused, TransformText refuses).
  absl::Status TransformForClassifier(std::string_view text, size_t index, AnalyzerScratch* scratch,
                                      SparseVector* row) const;
  // FromSpec(spec*) and FromStoredSpec.
  static absl::StatusOr<Pipeline> FromSpecTaking(v1::PipelineSpec* spec, StateForm form);
  // Classification of one vectorized text.
  void ClassifyOne(const SparseVector& row, const ClassifyOptions& options,
                   v1::Classification* out) const;

  // Without the lists the vectorizer holds (ClearHeldLists), so that their terms are held once;
  // ToSpec and vectorizer_config() write them back from the vectorizer.
  v1::VectorizerConfig vectorizer_config_;
  v1::ClassifierConfig classifier_config_;
  DecodeError decode_error_ = DecodeError::kStrict;
  std::shared_ptr<const Vectorizer> vectorizer_;
  std::shared_ptr<const Classifier> classifier_;
  // vectorizer_->NonFiniteRows(): which of TransformText and TransformForClassifier check a row's
  // values.
  Vectorizer::NonFinite non_finite_ = Vectorizer::NonFinite::kNever;
  // Scratches reused by Classify calls (shared by copies, which have the same vectorizer).
  std::shared_ptr<ScratchPool> scratches_ = std::make_shared<ScratchPool>();
};

struct TrainResult {
  Pipeline pipeline;
  v1::TrainSummary summary;
};

// Accumulates the examples of a Train stream, then fits.
//
// Partial training (TrainConfig.partial, scikit-learn's partial_fit): the texts go through the
// vectorizer's transform (it must not learn from data: hashing, or count with a fixed
// vocabulary; TF-IDF only without use_idf) and the classifier's counts continue those of
// `previous`, the version being continued, or start from zero over TrainConfig.classes when there
// is none. One partial Train is one partial_fit call over all its examples.
// TrainConfig.classes without partial fixes the classes of an ordinary fit (partial_fit on a fresh
// estimator): classes without examples get zero counts.
class Trainer {
 public:
  // Validates the configuration up front (so a bad config fails before any data is sent): errors as
  // Pipeline::Fit, plus for partial training INVALID_ARGUMENT when the vectorizer learns from data,
  // when classes is missing on the first call ("classes must be passed on the first call to
  // partial_fit"), has duplicates or empty labels, or differs from the continued version's, and
  // when the vectorizer or classifier config differs from the continued version's (naming the
  // field). With partial, an unset vectorizer or classifier means the continued version's, and so
  // does an unset label_type (given, it must equal the continued version's). Classes and labels
  // must be of the label type (LABEL_TYPE_INT64: canonical int64 decimals; INVALID_ARGUMENT naming
  // the entry or example otherwise).
  // The name, labels and description are not looked at (the adapter's business).
  // `limits` bound the configuration (checked here) and the stream (classes, checked per batch;
  // model size, checked in Finish before the classifier is allocated). `previous` (partial only;
  // ignored otherwise) must outlive the Trainer.
  static absl::StatusOr<Trainer> Create(const v1::TrainConfig& config,
                                        const PipelineLimits& limits = {},
                                        const Pipeline* previous = nullptr);

  // Validates and appends one batch: every example needs valid UTF-8 text and label, a non-empty
  // label (one of the fixed classes, when there are), and a weight that is finite and >= 0 (unset:
  // 1). On error (INVALID_ARGUMENT naming the batch and example; RESOURCE_EXHAUSTED when the
  // distinct labels exceed limits.max_classes) nothing of the batch is kept. The texts are analyzed
  // here: a text the analyzer cannot analyze (a custom token_pattern past its match-step limit,
  // see TokenPattern::FindTokens; INVALID_ARGUMENT naming the batch and example) fails the whole
  // training: every later AddBatch and Finish answers that error again. So do RESOURCE_EXHAUSTED
  // when the vectorizing holds more than limits.max_train_memory_bytes (checked after each text
  // and, through VectorizerFitter::SetMemoryBudget, within one; the memory is freed at once) and
  // what `stop` answers (checked every 1024 texts or 256 KiB of text, so that a call whose client
  // gave up stops within a large batch).
  absl::Status AddBatch(const v1::TextBatch& batch, const exec::StopToken& stop = {});

  // Examples accepted so far.
  size_t num_examples() const { return labels_.size(); }

  // The configuration the fit uses (with partial, unset parts filled from the continued version),
  // without the lists of its vectorizer config that the vectorizer being fitted holds (a fixed
  // vocabulary, a stop word list: ClearHeldLists), so that a training holds them once; the
  // pipeline Finish returns gives them back as they were given (Pipeline::vectorizer_config).
  const v1::TrainConfig& config() const { return config_; }

  // Fits on everything received. An empty stream gives INVALID_ARGUMENT ("no training examples;
  // send at least one batch after the config"); other errors as Pipeline::Fit, including what
  // `stop` answers between chunks of work. Never modifies `previous`.
  // Call once.
  absl::StatusOr<TrainResult> Finish(const exec::StopToken& stop = {});

 private:
  Trainer(v1::TrainConfig config, const PipelineLimits& limits)
      : config_(std::move(config)),
        limits_(limits),
        decode_error_(DecodeErrorOf(TextOptionsOf(config_.vectorizer()))) {}

  v1::TrainConfig config_;
  PipelineLimits limits_;
  DecodeError decode_error_;
  // partial_fit's classes (in class order, unique) when fixed by TrainConfig.classes or the
  // continued version; empty: the labels of the data.
  std::vector<std::string> fixed_classes_;
  // config_.label_type(), resolved (set in Create).
  v1::LabelType label_type_ = v1::LABEL_TYPE_STRING;
  // The version partial training continues, or null.
  const Pipeline* previous_ = nullptr;
  absl::flat_hash_set<std::string> distinct_labels_;
  size_t num_batches_ = 0;
  // The vectorizer being fitted text by text: the trainer keeps sparse rows, not the texts.
  std::unique_ptr<VectorizerFitter> fitter_;
  std::vector<std::string> labels_;
  std::vector<double> weights_;
  int64_t label_heap_bytes_ = 0;  // of labels_'s strings too long to be held inline
  absl::Status failed_;           // a text could not be analyzed, or memory or `stop` ended the fit
};

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_PIPELINE_H_
