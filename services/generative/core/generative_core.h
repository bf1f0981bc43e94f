// The generative service's transport-free core: model management, fitting, sampling and estimation
// on top of a model repository. The gRPC adapter converts messages and statuses and drives streams;
// nothing here knows gRPC.
#ifndef MAAS_SERVICES_GENERATIVE_CORE_GENERATIVE_CORE_H_
#define MAAS_SERVICES_GENERATIVE_CORE_GENERATIVE_CORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/adapter/stream_budget.h"
#include "common/exec/executor.h"
#include "common/exec/stop_token.h"
#include "common/registry/model_repository.h"
#include "maas/generative/v1/generative.pb.h"
#include "services/generative/core/estimators.h"
#include "services/generative/core/families.h"
#include "services/generative/core/family.h"
#include "services/generative/core/model.h"

namespace maas::generative {

// One loaded model version: its ModelInfo and the ready model built from the stored message. The
// stored message itself (its spec is as large as the model's parameters) is dropped once the
// model is built, so a model is held once; GetModel reads it from the store on demand. Immutable
// once loaded.
struct LoadedModel {
  common::v1::ModelInfo model_info;  // size_bytes = the stored size
  std::shared_ptr<const GenerativeModel> model;
  int64_t memory_bytes = 0;  // what this holds (the model's MemoryBytes, or its spec's size)

  const common::v1::ModelInfo& info() const { return model_info; }
  // What the model cache charges for this version (its byte budget, --model_cache_bytes).
  int64_t held_bytes() const { return memory_bytes; }
};

// Parses and validates stored bytes (used by the repository's loader), building the model with
// `families`. RESOURCE_EXHAUSTED, before building, when the family's model_size rule puts the model
// above `max_model_bytes` (the server's --max_model_bytes; 0: no limit): a version stored before
// the rule (or under a larger limit) is refused instead of formed.
// The bytes are released once parsed (see store::StoredBytes).
absl::StatusOr<std::shared_ptr<const LoadedModel>> ParseStoredModelWith(
    store::StoredBytes bytes, const FamilyRegistry& families, uint64_t max_model_bytes = 0);
// The same with DefaultFamilies() and no limit.
absl::StatusOr<std::shared_ptr<const LoadedModel>> ParseStoredModel(store::StoredBytes bytes);

struct GenerativeCoreOptions {
  // Where models live. Not owned; must outlive the core.
  registry::ModelRepository<LoadedModel>* repository = nullptr;
  // The families served (validation, building, fitting). Not owned; must outlive the core.
  const FamilyRegistry* families = &DefaultFamilies();
  // Largest num_samples of one Sample request (and max_samples of StreamEstimate).
  uint64_t max_samples_per_request = 10'000'000;
  // Largest number of training rows of one FitModel stream.
  uint64_t max_fit_rows = 10'000'000;
  // Largest number of rows of one estimate request.
  uint64_t max_estimate_rows = 100'000;
  // Largest model, in bytes of float64 parameters (--max_model_bytes): a FitModel whose family's
  // size rule (Family::fit_size: e.g. gaussian_mixture FULL K x D x D, ppca's D x D covariance)
  // passes it is refused at its first chunk of rows, before any fitting, and a CreateModel whose
  // spec is larger, or whose built model would form more (Family::model_size: e.g. ppca's L x L
  // posterior, mlp_decoder's latent_dim x latent_dim IMPORTANCE Hessian), is refused before it is
  // built; so is an IMPORTANCE estimate whose per-row proposal is larger (the loader applies the
  // same model_size rule: main.cc passes the flag to ParseStoredModelWith). RESOURCE_EXHAUSTED
  // naming the flag; 0 = no cap.
  // A fit peaks at ~9x its model's bytes (copies of the parameters while they are stored and
  // loaded back), so size it with the memory a fit may take. The mixtures' rows x n_components
  // responsibilities (FitSize::per_row_bytes) count against it too, as rows arrive.
  uint64_t max_model_bytes = uint64_t{256} << 20;
  // Largest work of one AIS estimate request (--max_ais_work), in gradient evaluations of
  // log p(x|z): rows x (num_samples + pilot_chains) x num_temperatures x leapfrog_steps (of one
  // increment for StreamEstimate). Each knob is bounded alone, but their product reached ~4e9 in a
  // 61-byte request (hours of every worker). Checked before any work (RESOURCE_EXHAUSTED naming
  // the product and the flag); 0 = no cap. 10^9: ~2.5 minutes of two cores for a 2-D ppca, the
  // cheapest gradient (~3.4 million per second per core).
  uint64_t max_ais_work = 1'000'000'000;
  // Largest work of one PRIOR, IMPORTANCE or AIS estimate request (of one StreamEstimate
  // increment), in multiply-adds as EstimateWork (estimators.h) counts them from the model's
  // costs: rows x num_samples x (per evaluation ~2 000 + the model's log p(x|z), e.g. every layer
  // of an mlp_decoder), plus proposals and AIS's transitions. --max_ais_work counts AIS's
  // gradients alone, whatever they cost; this bounds every estimator by what its model costs (an
  // mlp_decoder of 10^6 units took days within the other limits). Checked before any work
  // (RESOURCE_EXHAUSTED naming the product and the flag); 0 = no cap. 5e12: ~2 minutes of two
  // Zen 4 cores (~40 G a second: 20 million mixture samples, or 100 000 of a 20 -> 512 -> 784
  // decoder).
  double max_estimate_work = 5e12;
  // Largest memory, in bytes, that the StreamEstimate calls in progress may keep together for
  // Pareto k̂ (--max_stream_estimate_tail_bytes): per row the largest
  // math::ParetoTailSize(max_samples) (~3 sqrt(max_samples)) log weights of the stream, with
  // LogWeightTail's slack, reserved when the stream starts and given back when it ends. Checked
  // before any work (RESOURCE_EXHAUSTED: with the max_samples that would fit when one stream alone
  // passes it, with a retry hint when the others hold the rest); 0 = no cap. Everything else a
  // stream holds is bounded by its rows, whatever num_samples and max_samples are. 1 GiB: 10 000
  // rows at the default max_samples (10^7). A stream also reserves here its rows' IMPORTANCE
  // proposals or AIS pilot step sizes (EstimateSetups::Bytes), built once and kept for every
  // increment, when they form one group and the budget has room; else it rebuilds them per
  // increment.
  int64_t max_stream_estimate_tail_bytes = int64_t{1} << 30;
  // Samples per batch when the request leaves batch_size empty, further capped to about
  // default_batch_bytes of float64 values per message: a stream of ~1 MiB messages lets the
  // server produce the next batch while the transport copies the last one (25 MB messages of a
  // 4096 x 784 batch left both cores idle half the time), and still amortises the per-message
  // costs (a pool wake-up, framing) over ~1 MiB.
  uint32_t default_batch_size = 1024;
  int64_t default_batch_bytes = 1 << 20;
  // Serialized size budget of one streamed message; batches are capped to fit in half of it.
  // ListModels pages (page_size) are cut to fit in it.
  int64_t max_message_bytes = 64 << 20;
  // Source of fresh seeds for requests without one (injected: the core has no randomness of its
  // own).
  std::function<uint64_t()> fresh_seed;
  // Clock for created_at, StreamEstimate's deadline and the fit time limit.
  std::function<absl::Time()> clock = [] { return absl::Now(); };
  // Longest a FitModel's fitting may run (--max_fit_seconds), checked between its iterations: past
  // it the fit ends RESOURCE_EXHAUSTED and nothing is stored. The knobs alone allow fits of
  // hours from a few KB (gaussian_mixture n_init 1000 x max_iter 10^6 on 1 000 rows), which a
  // client without a deadline would leave running on a worker. InfiniteDuration: no limit.
  absl::Duration max_fit_duration = absl::Minutes(30);
  // Where estimates run (rows x sample chunks spread over it). Not owned; null: the calling thread.
  exec::Executor* executor = nullptr;
};

// The matrices one batch of a Sample stream is sampled into: row-major, the layout of the packed
// values on the wire, so a transport can send them as they are.
struct SampleBatchValues {
  RowMatrixXd x;        // batch rows x D
  RowMatrixXd latents;  // batch rows x latent width (unused without latents)
};

// One batch of a Sample stream as views of the sampled matrices, so a transport can serialise it
// without first copying it into a SampleBatch message. The view shares ownership of the matrices:
// they stay valid (and unchanged) as long as `owner` or a copy of it lives, e.g. until a transport
// has sent them; the stream reuses them only once no copy is left.
struct SampleBatchView {
  uint64_t start_index = 0;
  uint64_t seed = 0;
  int64_t model_version = 0;
  const RowMatrixXd* x = nullptr;        // batch rows x D (owned by `owner`)
  const RowMatrixXd* latents = nullptr;  // batch rows x latent width; null: no latents field
  std::shared_ptr<const SampleBatchValues> owner;
};

// The SampleBatch message of a view (what a Sample stream sends for it).
void SampleBatchToProto(const SampleBatchView& view, v1::SampleBatch* batch);

// Produces the batches of one Sample call lazily: the adapter asks for the next batch only when the
// client can take it (flow control), and stops asking on cancellation.
class SampleStream {
 public:
  SampleStream(std::shared_ptr<const LoadedModel> model, uint64_t seed, uint64_t start_index,
               uint64_t num_samples, uint64_t batch_size, bool include_latents);
  // Fills the next batch; false when all samples were produced.
  bool Next(v1::SampleBatch* batch);
  // The same batch as Next would fill, as views of the stream's matrices (shared with the view:
  // a transport can send batch k while k+1 is produced); false when all samples were produced.
  bool NextView(SampleBatchView* view);
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
  // Matrices reused from batch to batch (a fresh batch-sized matrix costs its page faults every
  // message): NextView takes one that no view holds any more, or a new one (kept while there are
  // fewer than kKeptValues: one being sampled, one waiting, one or two still being sent).
  static constexpr size_t kKeptValues = 4;
  std::shared_ptr<SampleBatchValues> FreeValues();
  std::vector<std::shared_ptr<SampleBatchValues>> values_;
};

// Produces the messages of one StreamEstimate call lazily: each Next() adds one increment of
// num_samples samples per row (global samples sample_offset + s * num_samples onwards, so the
// stream's weights are exactly those of one EstimateLogLikelihood call over all its samples) and
// returns the running estimates. The last message carries a stop reason: TARGET_REACHED (every
// row's standard error <= target), MAX_SAMPLES, DEADLINE (the next increment would not finish
// before the call's deadline minus a reserve of 5% of the call's time, 50 ms .. 1 s, or was cut
// off by it: the last complete estimate is returned), or
// EXACT_RESULT (one exact answer).
class EstimateStream {
 public:
  // One exact answer.
  explicit EstimateStream(v1::EstimateLogLikelihoodResponse exact);
  // Monte Carlo increments.
  struct Plan {
    std::shared_ptr<const LoadedModel> loaded;
    Eigen::MatrixXd x;
    EstimateSettings settings;  // num_samples = the increment
    v1::Estimator estimator;
    double target_standard_error;  // 0: none
    uint64_t max_samples;
    std::optional<Eigen::VectorXd> exact;
    absl::Time deadline;
    std::function<absl::Time()> clock;
    exec::Executor* executor;
    exec::StopToken stop;
    std::shared_ptr<void> reservation;  // the stream's share of the tail budget, while it lives
    // Whether the rows' proposals or AIS pilots are built once and kept for every increment
    // (EstimateSetups; its Bytes() are in `reservation`).
    bool keep_setups = false;
  };
  explicit EstimateStream(Plan plan);
  // Fills the next message; false when the stream is over. DEADLINE_EXCEEDED when the deadline
  // came before the first increment finished (no estimate exists to report).
  absl::StatusOr<bool> Next(v1::StreamEstimateResponse* message);

 private:
  // Fits every row's k̂ over the samples done (the tails hold exactly them), unless already done.
  void RefitParetoK();

  v1::EstimateLogLikelihoodResponse exact_;
  std::optional<Plan> plan_;
  std::vector<math::WeightStats> stats_;
  std::vector<double> acceptance_sum_;  // sum over increments of acceptance rate * increment
  // Per row: the largest log weights seen (enough for Pareto k̂ over all max_samples, equal
  // weights included), and the k̂ last fitted, of the first pareto_fit_samples_ samples.
  std::vector<LogWeightTail> tails_;
  std::vector<double> pareto_k_;
  uint64_t pareto_fit_samples_ = 0;
  uint64_t next_pareto_fit_ = 0;  // samples done at which k̂ is refitted before the last message
  EstimateSetups setups_;         // used when plan_->keep_setups
  uint64_t samples_done_ = 0;
  absl::Duration last_increment_ = absl::ZeroDuration();
  absl::Time soft_deadline_ = absl::InfiniteFuture();  // the deadline minus a reserve
  bool done_ = false;
};

// Accumulates one FitModel stream: Add() each message in order, then Finish().
class FitSession {
 public:
  FitSession(const GenerativeCoreOptions* options);
  // The first message must be a FitConfig, every later one a Matrix chunk.
  absl::Status Add(const v1::FitModelRequest& message);
  // Fits, stores a new version and returns it. INVALID_ARGUMENT when the stream had no config or no
  // rows. Nothing is stored once the stop token says the call's deadline passed or it was
  // cancelled (its status is returned); the fit itself stops between iterations.
  absl::StatusOr<v1::FitModelResponse> Finish(exec::Executor& executor,
                                              const exec::StopToken& stop);
  // The same with a stop token that never fires.
  absl::StatusOr<v1::FitModelResponse> Finish();

 private:
  const GenerativeCoreOptions* options_;
  std::optional<v1::FitConfig> config_;
  const Family* family_ = nullptr;
  std::unique_ptr<FamilyFitter> fitter_;
  uint64_t seed_ = 0;
  exec::StopToken stop_;
  uint64_t num_rows_ = 0;
  int64_t num_cols_ = -1;
  FitSize fit_size_;  // the family's size rule at the first rows (when --max_model_bytes is set)
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
      const common::v1::DeleteModelRequest& request,
      const exec::StopToken& stop = exec::StopToken());

  std::unique_ptr<FitSession> StartFit() const { return std::make_unique<FitSession>(&options_); }

  // Validates the request and resolves the model; the stream then yields the batches.
  absl::StatusOr<std::unique_ptr<SampleStream>> StartSample(const v1::SampleRequest& request);

  // Validates the request and runs the estimator on `executor` (the process's worker pool in the
  // server); `stop` is checked between chunks of work (its status ends the call).
  absl::StatusOr<v1::EstimateLogLikelihoodResponse> EstimateLogLikelihood(
      const v1::EstimateLogLikelihoodRequest& request, exec::Executor& executor,
      const exec::StopToken& stop);
  // The same on options.executor (inline when that is null).
  absl::StatusOr<v1::EstimateLogLikelihoodResponse> EstimateLogLikelihood(
      const v1::EstimateLogLikelihoodRequest& request,
      const exec::StopToken& stop = exec::StopToken()) {
    return EstimateLogLikelihood(request, executor(), stop);
  }

  // Validates a StreamEstimate request; the stream then yields the running estimates. `deadline`
  // is the call's (the stream ends with DEADLINE before it); `stop` reports cancellation.
  absl::StatusOr<std::unique_ptr<EstimateStream>> StartStreamEstimate(
      const v1::StreamEstimateRequest& request, exec::Executor& executor, absl::Time deadline,
      exec::StopToken stop);
  absl::StatusOr<std::unique_ptr<EstimateStream>> StartStreamEstimate(
      const v1::StreamEstimateRequest& request, absl::Time deadline = absl::InfiniteFuture(),
      exec::StopToken stop = exec::StopToken()) {
    return StartStreamEstimate(request, executor(), deadline, std::move(stop));
  }

 private:
  struct PreparedEstimate {
    std::shared_ptr<const LoadedModel> loaded;
    Eigen::MatrixXd x;
    v1::Estimator estimator;
    EstimateSettings settings;
  };
  absl::StatusOr<PreparedEstimate> PrepareEstimate(const v1::EstimateLogLikelihoodRequest& request);
  exec::Executor& executor();

  GenerativeCoreOptions options_;
  exec::InlineExecutor inline_executor_;
  // The tail memory the StreamEstimate calls in progress hold (max_stream_estimate_tail_bytes);
  // shared with the streams, which give their share back when they end.
  std::shared_ptr<adapter::StreamBudget> tail_budget_ = std::make_shared<adapter::StreamBudget>(
      options_.max_stream_estimate_tail_bytes, "--max_stream_estimate_tail_bytes");
};

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_CORE_GENERATIVE_CORE_H_
