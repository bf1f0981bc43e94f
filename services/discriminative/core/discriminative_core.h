// The discriminative service's transport-free core: pipelines stored as versions in the model
// repository, trained from streams, classified, vectorized and managed. The gRPC adapter only
// converts and streams.
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_DISCRIMINATIVE_CORE_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_DISCRIMINATIVE_CORE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/exec/executor.h"
#include "common/exec/stop_token.h"
#include "common/registry/model_repository.h"
#include "maas/discriminative/v1/discriminative.pb.h"
#include "services/discriminative/core/pipeline.h"

namespace maas::discriminative {

// One loaded model version: its ModelInfo, training summary and the pipeline built from the stored
// message. The stored message itself (its spec is as large as the pipeline's tables) is taken
// apart as the pipeline is built (each large field freed once converted) and dropped, so a model is
// held once, also while it loads; GetModel reads it from the store on demand. Immutable once
// loaded.
struct LoadedPipeline {
  common::v1::ModelInfo model_info;               // size_bytes = the stored size
  std::optional<v1::TrainSummary> train_summary;  // when the version was trained here
  std::optional<Pipeline> pipeline;               // always set once loaded
  int64_t memory_bytes = 0;                       // what all of the above holds

  const common::v1::ModelInfo& info() const { return model_info; }
  // What the model cache charges for this version (its byte budget, --model_cache_bytes).
  int64_t held_bytes() const { return memory_bytes; }
};

// Parses and validates stored bytes (the repository's loader), releasing them once parsed.
absl::StatusOr<std::shared_ptr<const LoadedPipeline>> ParseStoredPipeline(store::StoredBytes bytes);

// Family name of a pipeline config, e.g. "count+multinomial_nb" or "tfidf+complement_nb".
std::string PipelineFamily(const v1::VectorizerConfig& vectorizer,
                           const v1::ClassifierConfig& classifier);

struct DiscriminativeCoreOptions {
  // Where models live. Not owned; must outlive the core.
  registry::ModelRepository<LoadedPipeline>* repository = nullptr;
  // Largest number of texts of one Classify/Vectorize request (or one ClassifyStream message).
  uint64_t max_texts_per_request = 100'000;
  // Largest size of one text, in bytes.
  uint64_t max_text_bytes = 1 << 20;
  // Largest number of examples of one Train stream.
  uint64_t max_train_examples = 10'000'000;
  // Largest message the server sends (--max_message_bytes; 0 = no limit). Answers that cannot fit
  // (a Classify of texts x classes, Evaluate's classes x classes confusion matrix, GetModel of a
  // stored model) are refused before the work that would build them; a Vectorize answer as soon
  // as it passes it, and a GetModel answer once built too (a fixed vocabulary is stored once but
  // answered in the vectorizer config as well). ListModels pages (page_size) are cut to fit in it.
  uint64_t max_message_bytes = uint64_t{64} << 20;
  // Bounds on n-gram size, classes, classes x features and stored model size (Train and
  // CreateModel).
  PipelineLimits limits;
  // Clock for created_at.
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

// Accumulates one Train stream: Add() each message in order, then Finish().
//
// A partial Train (TrainConfig.partial) continues the latest version as it is when the config
// arrives, and commits only if that is still the latest version when the new one is written
// (ABORTED otherwise: another call committed meanwhile and continuing the older version would
// drop its data; retry). The store makes that check right before the version becomes visible
// (store::PutOptions::continues: no version between the continued one and the new one, complete
// or being written), so two partial Trains never both continue the same version, also in
// replicas sharing a store. Partial commits of one core are serialised as well, so within
// one server their checks and writes do not interleave.
// Serialises the check-and-write of partial Trains of one model within a server (the store's
// per-model lock makes the check exact; this keeps two sessions of one model from both writing).
// Models hash onto a fixed set of mutexes, so unrelated models rarely share one.
class PartialCommitLocks {
 public:
  absl::Mutex& For(std::string_view name) {
    return stripes_[std::hash<std::string_view>{}(name) % kStripes];
  }

 private:
  static constexpr size_t kStripes = 64;
  std::array<absl::Mutex, kStripes> stripes_;
};

class TrainSession {
 public:
  // `partial_commit_locks` (may be null) serialise the check-and-write of partial Trains of one
  // model.
  explicit TrainSession(const DiscriminativeCoreOptions* options,
                        std::shared_ptr<PartialCommitLocks> partial_commit_locks = nullptr)
      : options_(options), partial_commit_locks_(std::move(partial_commit_locks)) {}
  // The first message must be a TrainConfig, every later one a TextBatch. `stop` is checked
  // within a batch (Trainer::AddBatch).
  absl::Status Add(const v1::TrainRequest& message, const exec::StopToken& stop = {});
  // Fits, stores a new version and returns it. `stop` is checked between chunks of the fit and
  // once more just before the version is written: a call whose deadline passed or that was
  // cancelled stores nothing (a failed or cancelled partial Train leaves the continued version
  // the latest).
  absl::StatusOr<v1::TrainResponse> Finish(const exec::StopToken& stop);
  // The same; the fit itself runs on the calling thread (scikit-learn's summation orders are
  // sequential over samples), so the executor is not used.
  absl::StatusOr<v1::TrainResponse> Finish(exec::Executor&, const exec::StopToken& stop) {
    return Finish(stop);
  }
  absl::StatusOr<v1::TrainResponse> Finish();

 private:
  const DiscriminativeCoreOptions* options_;
  std::shared_ptr<PartialCommitLocks> partial_commit_locks_;
  // The version a partial Train continues (null: none, or not partial); the trainer points into it.
  std::shared_ptr<const LoadedPipeline> previous_;
  // Set once the config arrived; its config() is the stream's (name, labels, partial, ...).
  std::optional<Trainer> trainer_;
};

// Accumulates one Evaluate stream against the model version named in the config (held for the whole
// stream). Metrics follow scikit-learn with sample weights over the model's classes
// (labels=classes_, zero_division=0): accuracy_score, precision_recall_fscore_support, f1
// macro/weighted, confusion_matrix, log_loss (probabilities clipped to [eps, 1 - eps], eps =
// 2^-52).
class EvaluateSession {
 public:
  EvaluateSession(const DiscriminativeCoreOptions* options,
                  registry::ModelRepository<LoadedPipeline>* repository)
      : options_(options), repository_(repository) {}
  // The first message must be an EvaluateConfig, every later one a TextBatch. Labels the model does
  // not know are INVALID_ARGUMENT (their probability is undefined).
  absl::Status Add(const v1::EvaluateRequest& message, const exec::StopToken& stop = {});
  absl::StatusOr<v1::EvaluateResponse> Finish();
  // Finish stores nothing: a server may run it before it knows the stream was complete (the
  // adapter then sends the answer's headers with it, so an interrupted call can be retried).
  static constexpr bool kFinishReadsOnly = true;

 private:
  const DiscriminativeCoreOptions* options_;
  registry::ModelRepository<LoadedPipeline>* repository_;
  std::shared_ptr<const LoadedPipeline> model_;
  uint64_t num_documents_ = 0;
  double total_weight_ = 0;
  double correct_weight_ = 0;
  double log_loss_sum_ = 0;
  // The confusion matrix's nonzero cells, key true class x C + predicted class: at most one entry
  // per distinct (true, predicted) pair seen, so a stream holds what its examples make, not C x C.
  absl::flat_hash_map<uint64_t, double> confusion_;
};

class DiscriminativeCore {
 public:
  explicit DiscriminativeCore(DiscriminativeCoreOptions options) : options_(std::move(options)) {}

  // Stores nothing once `stop` says the call's deadline passed or it was cancelled.
  absl::StatusOr<v1::CreateModelResponse> CreateModel(const v1::CreateModelRequest& request,
                                                      const exec::StopToken& stop = {});
  std::unique_ptr<TrainSession> StartTrain() const {
    return std::make_unique<TrainSession>(&options_, partial_commit_locks_);
  }
  std::unique_ptr<EvaluateSession> StartEvaluate() const {
    return std::make_unique<EvaluateSession>(&options_, options_.repository);
  }
  // Classifies a batch; the texts are split into chunks run on `executor`, `stop` checked between
  // chunks. The one-argument form runs inline and never stops.
  absl::StatusOr<v1::ClassifyResponse> Classify(const v1::ClassifyRequest& request,
                                                const exec::StopToken& stop,
                                                exec::Executor& executor);
  absl::StatusOr<v1::ClassifyResponse> Classify(const v1::ClassifyRequest& request,
                                                exec::Executor& executor,
                                                const exec::StopToken& stop) {
    return Classify(request, stop, executor);
  }
  absl::StatusOr<v1::ClassifyResponse> Classify(const v1::ClassifyRequest& request);
  // One sparse row per text (and the features' names when asked), written into the answer as each
  // text is vectorized. RESOURCE_EXHAUSTED naming --max_message_bytes and how many texts fit as
  // soon as the answer would pass max_message_bytes, before the texts after that one are read.
  absl::StatusOr<v1::VectorizeResponse> Vectorize(const v1::VectorizeRequest& request,
                                                  const exec::StopToken& stop = {});
  // The version's info, its full spec (the stored file's, in the full form: a fixed vocabulary
  // back in the vectorizer config, Pipeline::ExpandStoredSpec) and its training summary.
  absl::StatusOr<v1::GetModelResponse> GetModel(const v1::GetModelRequest& request);
  absl::StatusOr<common::v1::ListModelsResponse> ListModels(
      const common::v1::ListModelsRequest& request);
  absl::StatusOr<common::v1::DeleteModelResponse> DeleteModel(
      const common::v1::DeleteModelRequest& request,
      const exec::StopToken& stop = exec::StopToken());

 private:
  // A request's texts: `texts`, or `packed` unpacked into *unpacked (views into `packed`), one of
  // the two, checked against the limits on texts per request and bytes per text.
  absl::StatusOr<TextList> RequestTexts(
      const google::protobuf::RepeatedPtrField<std::string>& texts, std::string_view packed,
      std::vector<std::string_view>* unpacked) const;
  absl::Status CheckTextSize(size_t index, size_t bytes) const;

  DiscriminativeCoreOptions options_;
  std::shared_ptr<PartialCommitLocks> partial_commit_locks_ =
      std::make_shared<PartialCommitLocks>();
};

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_DISCRIMINATIVE_CORE_H_
