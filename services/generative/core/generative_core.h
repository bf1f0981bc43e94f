// The generative service's transport-free core: model management, fitting, sampling and estimation
// on top of a model repository. The gRPC adapter converts messages and statuses and drives streams;
// nothing here knows gRPC.
#ifndef MAAS_SERVICES_GENERATIVE_CORE_GENERATIVE_CORE_H_
#define MAAS_SERVICES_GENERATIVE_CORE_GENERATIVE_CORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/exec/executor.h"
#include "common/exec/stop_token.h"
#include "common/registry/model_repository.h"
#include "maas/generative/v1/generative.pb.h"
#include "services/generative/core/model.h"
#include "services/generative/core/uniform.h"

namespace maas::generative {

// One loaded model version: the stored message and the ready model built from it. Immutable once
// loaded.
struct LoadedModel {
  v1::StoredGenerativeModel stored;
  std::shared_ptr<const GenerativeModel> model;
  const common::v1::ModelInfo& info() const { return stored.info(); }
};

// Parses and validates stored bytes (used by the repository's loader).
absl::StatusOr<std::shared_ptr<const LoadedModel>> ParseStoredModel(const std::string& bytes);

struct GenerativeCoreOptions {
  // Where models live. Not owned; must outlive the core.
  registry::ModelRepository<LoadedModel>* repository = nullptr;
  // Largest num_samples of one Sample request (and max_samples of StreamEstimate).
  uint64_t max_samples_per_request = 10'000'000;
  // Largest number of training rows of one FitModel stream.
  uint64_t max_fit_rows = 10'000'000;
  // Largest number of rows of one estimate request.
  uint64_t max_estimate_rows = 100'000;
  // Samples per batch when the request leaves batch_size empty.
  uint32_t default_batch_size = 1024;
  // Serialized size budget of one streamed message; batches are capped to fit in half of it.
  int64_t max_message_bytes = 64 << 20;
  // Source of fresh seeds for requests without one (injected: the core has no randomness of its
  // own).
  std::function<uint64_t()> fresh_seed;
  // Clock for created_at.
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

// Produces the batches of one Sample call lazily: the adapter asks for the next batch only when the
// client can take it (flow control), and stops asking on cancellation.
class SampleStream {
 public:
  SampleStream(std::shared_ptr<const LoadedModel> model, uint64_t seed, uint64_t start_index,
               uint64_t num_samples, uint64_t batch_size, bool include_latents);
  // Fills the next batch; false when all samples were produced.
  bool Next(v1::SampleBatch* batch);
  uint64_t seed() const { return seed_; }
  uint64_t samples_produced() const { return produced_; }

 private:
  std::shared_ptr<const LoadedModel> model_;
  uint64_t seed_;
  uint64_t start_index_;
  uint64_t num_samples_;
  uint64_t batch_size_;
  bool include_latents_;
  uint64_t produced_ = 0;
};

// Produces the messages of one StreamEstimate call lazily. The last message carries a stop reason.
class EstimateStream {
 public:
  explicit EstimateStream(v1::EstimateLogLikelihoodResponse exact);
  // Fills the next message; false when the stream is over.
  bool Next(v1::StreamEstimateResponse* message);

 private:
  v1::EstimateLogLikelihoodResponse exact_;
  bool done_ = false;
};

// Accumulates one FitModel stream: Add() each message in order, then Finish().
class FitSession {
 public:
  FitSession(const GenerativeCoreOptions* options);
  // The first message must be a FitConfig, every later one a Matrix chunk.
  absl::Status Add(const v1::FitModelRequest& message);
  // Fits, stores a new version and returns it. INVALID_ARGUMENT when the stream had no config or no
  // rows. Nothing is stored once `stop` says the call's deadline passed or it was cancelled (its
  // status is returned).
  absl::StatusOr<v1::FitModelResponse> Finish(exec::Executor& executor,
                                              const exec::StopToken& stop);
  absl::StatusOr<v1::FitModelResponse> Finish() {
    exec::InlineExecutor executor;
    return Finish(executor, exec::StopToken());
  }

 private:
  const GenerativeCoreOptions* options_;
  std::optional<v1::FitConfig> config_;
  UniformFitter uniform_;
  uint64_t num_rows_ = 0;
  int64_t num_cols_ = -1;
};

class GenerativeCore {
 public:
  explicit GenerativeCore(GenerativeCoreOptions options);

  // Stores nothing once `stop` says the call's deadline passed or it was cancelled.
  absl::StatusOr<v1::CreateModelResponse> CreateModel(const v1::CreateModelRequest& request,
                                                      const exec::StopToken& stop = {});
  absl::StatusOr<v1::GetModelResponse> GetModel(const v1::GetModelRequest& request);
  absl::StatusOr<common::v1::ListModelsResponse> ListModels(
      const common::v1::ListModelsRequest& request);
  absl::StatusOr<common::v1::DeleteModelResponse> DeleteModel(
      const common::v1::DeleteModelRequest& request);

  std::unique_ptr<FitSession> StartFit() const { return std::make_unique<FitSession>(&options_); }

  // Validates the request and resolves the model; the stream then yields the batches.
  absl::StatusOr<std::unique_ptr<SampleStream>> StartSample(const v1::SampleRequest& request);

  // Long work is spread over `executor` and stops with the StopToken's status between chunks.
  absl::StatusOr<v1::EstimateLogLikelihoodResponse> EstimateLogLikelihood(
      const v1::EstimateLogLikelihoodRequest& request, exec::Executor& executor,
      const exec::StopToken& stop);
  absl::StatusOr<v1::EstimateLogLikelihoodResponse> EstimateLogLikelihood(
      const v1::EstimateLogLikelihoodRequest& request) {
    exec::InlineExecutor executor;
    return EstimateLogLikelihood(request, executor, exec::StopToken());
  }

  // Validates a StreamEstimate request; the stream then yields the running estimates.
  absl::StatusOr<std::unique_ptr<EstimateStream>> StartStreamEstimate(
      const v1::StreamEstimateRequest& request, exec::Executor& executor,
      const exec::StopToken& stop);
  absl::StatusOr<std::unique_ptr<EstimateStream>> StartStreamEstimate(
      const v1::StreamEstimateRequest& request) {
    exec::InlineExecutor executor;
    return StartStreamEstimate(request, executor, exec::StopToken());
  }

 private:
  GenerativeCoreOptions options_;
};

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_CORE_GENERATIVE_CORE_H_
