#include "services/generative/core/generative_core.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/convert/matrix.h"
#include "common/math/pareto_k.h"
#include "common/registry/stored_version.h"
#include "common/status/status_macros.h"
#include "services/generative/core/families.h"

namespace maas::generative {
namespace {

using common::v1::ModelInfo;

// Log weights each row of a StreamEstimate keeps for Pareto k̂ (the tail of all max_samples).
size_t StreamTailSize(uint64_t max_samples) {
  return math::ParetoTailSize(static_cast<int64_t>(max_samples));
}

// Resolves the seed of a request: its own, or a fresh one from the injected source.
uint64_t ResolveSeed(bool has_seed, uint64_t seed, const GenerativeCoreOptions& options) {
  return has_seed ? seed : options.fresh_seed();
}

// Stores `spec` as the next version of `name` and returns the loaded version.
absl::StatusOr<std::shared_ptr<const LoadedModel>> StoreModel(
    const GenerativeCoreOptions& options, const std::string& name,
    const v1::GenerativeModelSpec& spec,
    const google::protobuf::Map<std::string, std::string>& labels, const std::string& description,
    const v1::FitTrace* trace, const exec::StopToken& stop) {
  MAAS_RETURN_IF_ERROR(registry::ValidateLabels(labels, description));
  MAAS_ASSIGN_OR_RETURN(
      std::shared_ptr<const GenerativeModel> model,
      MakeModel(spec, *options.families, options.max_model_bytes, "nothing was stored"));
  return options.repository->Put(
      name,
      [&](int64_t version) -> absl::StatusOr<std::string> {
        v1::StoredGenerativeModel stored;
        ModelInfo* info = stored.mutable_info();
        registry::FillModelInfo(name, version, common::v1::GENERATIVE, model->family(), labels,
                                description, options.clock(), info);
        info->set_dimension(model->dimension());
        *stored.mutable_spec() = spec;
        if (trace != nullptr) *stored.mutable_fit_trace() = *trace;
        std::string bytes;
        if (!stored.SerializeToString(&bytes)) {  // above protobuf's 2 GiB
          return absl::ResourceExhaustedError(absl::StrCat(
              "the model would take ", stored.ByteSizeLong(),
              " bytes, more than one protobuf message holds (2 GiB); nothing was stored: use "
              "fewer components or dimensions"));
        }
        return bytes;
      },
      stop);
}

absl::Status CheckDimension(const LoadedModel& loaded, int64_t cols, const std::string& what) {
  if (cols != loaded.model->dimension()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " has ", cols, " columns but model '", loaded.info().name(),
                     "' version ", loaded.info().version(), " has dimension ",
                     loaded.model->dimension(), "; send rows with one value per model dimension"));
  }
  return absl::OkStatus();
}

// INVALID_ARGUMENT naming the first value of x (in row order) that is not 0 or 1, for models
// whose likelihood is Bernoulli (binary_data()).
absl::Status CheckBinary(const LoadedModel& loaded, const Eigen::MatrixXd& x) {
  if (!loaded.model->binary_data()) return absl::OkStatus();
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    for (Eigen::Index c = 0; c < x.cols(); ++c) {
      if (x(r, c) != 0.0 && x(r, c) != 1.0) {
        return absl::InvalidArgumentError(
            absl::StrCat("x: value at row ", r, ", column ", c, " is ", x(r, c), "; model '",
                         loaded.info().name(), "' (", loaded.model->family(),
                         ") has a Bernoulli likelihood: every value must be 0 or 1"));
      }
    }
  }
  return absl::OkStatus();
}

// One row of a Monte Carlo response from its statistics.
void FillRow(const math::WeightStats& stats, double pareto_k, double acceptance,
             const std::optional<Eigen::VectorXd>& exact, Eigen::Index r, v1::RowEstimate* row) {
  row->set_log_likelihood(stats.count() > 0 ? stats.LogMean()
                                            : std::numeric_limits<double>::quiet_NaN());
  row->set_standard_error(stats.count() > 0 ? stats.StandardError()
                                            : std::numeric_limits<double>::infinity());
  row->set_ess(stats.Ess());
  row->set_num_samples(static_cast<uint64_t>(stats.count()));
  row->set_pareto_k(pareto_k);
  if (exact.has_value()) row->set_exact_log_likelihood((*exact)(r));
  v1::WeightStatistics* statistics = row->mutable_statistics();
  statistics->set_count(static_cast<uint64_t>(stats.count()));
  statistics->set_log_sum_w(stats.log_sum_w());
  statistics->set_log_sum_w2(stats.log_sum_w2());
  row->set_ais_acceptance_rate(acceptance);
}

absl::StatusOr<v1::EstimateLogLikelihoodResponse> ExactResponse(const LoadedModel& loaded,
                                                                const Eigen::MatrixXd& x,
                                                                exec::Executor& executor,
                                                                const exec::StopToken& stop) {
  MAAS_ASSIGN_OR_RETURN(const Eigen::VectorXd log_p,
                        ExactLogLikelihoodRows(*loaded.model, x, executor, stop));
  v1::EstimateLogLikelihoodResponse response;
  response.set_estimator(v1::EXACT);
  response.set_model_version(loaded.info().version());
  for (Eigen::Index i = 0; i < log_p.size(); ++i) {
    v1::RowEstimate* row = response.add_rows();
    row->set_log_likelihood(log_p(i));
    row->set_exact_log_likelihood(log_p(i));
    row->set_standard_error(0.0);
    row->set_ess(0.0);
    row->set_num_samples(0);
    row->set_pareto_k(std::numeric_limits<double>::quiet_NaN());
  }
  return response;
}

absl::StatusOr<std::optional<Eigen::VectorXd>> ExactIfTractable(const GenerativeModel& model,
                                                                const Eigen::MatrixXd& x,
                                                                exec::Executor& executor,
                                                                const exec::StopToken& stop) {
  if (!model.tractable()) return std::optional<Eigen::VectorXd>();
  MAAS_ASSIGN_OR_RETURN(Eigen::VectorXd exact, ExactLogLikelihoodRows(model, x, executor, stop));
  return std::optional<Eigen::VectorXd>(std::move(exact));
}

}  // namespace

absl::StatusOr<std::shared_ptr<const LoadedModel>> ParseStoredModel(store::StoredBytes bytes) {
  return ParseStoredModelWith(std::move(bytes), DefaultFamilies());
}

absl::StatusOr<std::shared_ptr<const LoadedModel>> ParseStoredModelWith(
    store::StoredBytes bytes, const FamilyRegistry& families, uint64_t max_model_bytes) {
  auto loaded = std::make_shared<LoadedModel>();
  int64_t model_bytes = 0;
  {
    // The parsed message lives only in this scope: the loaded version keeps the model built from
    // its spec, and its ModelInfo (the fit trace is read back by GetModel). The bytes are
    // released once parsed.
    v1::StoredGenerativeModel stored;
    MAAS_RETURN_IF_ERROR(registry::ParseStoredVersion(bytes, "StoredGenerativeModel", &stored));
    // What a model without its own MemoryBytes is charged, from the spec before it is taken apart.
    const auto spec_bytes = static_cast<int64_t>(stored.spec().SpaceUsedLong());
    // Built from the spec's large fields as they are taken (and freed) where the family can:
    // the message is not held beside the whole model.
    absl::StatusOr<std::shared_ptr<const GenerativeModel>> model =
        MakeModel(stored.mutable_spec(), families, max_model_bytes,
                  "the version is not loaded: delete it, or raise --max_model_bytes");
    // UNIMPLEMENTED (a family this binary lacks) keeps its code.
    MAAS_RETURN_IF_ERROR(registry::StoredSpecStatus(model.status(), "a model"));
    loaded->model = *std::move(model);
    loaded->model_info = std::move(*stored.mutable_info());
    model_bytes = loaded->model->MemoryBytes();
    if (model_bytes < 0) model_bytes = spec_bytes;
  }
  loaded->model_info.set_size_bytes(static_cast<int64_t>(bytes.size()));
  loaded->memory_bytes =
      static_cast<int64_t>(sizeof(LoadedModel) + loaded->model_info.SpaceUsedLong()) + model_bytes;
  return std::shared_ptr<const LoadedModel>(std::move(loaded));
}

// ---------------------------------------------------------------------------------------------------------

SampleStream::SampleStream(std::shared_ptr<const LoadedModel> model, uint64_t seed,
                           uint64_t start_index, uint64_t num_samples, uint64_t batch_size,
                           bool include_latents)
    : model_(std::move(model)),
      seed_(seed),
      start_index_(start_index),
      num_samples_(num_samples),
      batch_size_(batch_size),
      include_latents_(include_latents && model_->model->latent_width() > 0) {}

namespace {

// A row-major matrix as a Matrix message (its values are already in the wire's order).
void RowMajorToProto(const RowMatrixXd& m, common::v1::Matrix* out) {
  out->set_rows(static_cast<uint32_t>(m.rows()));
  out->set_cols(static_cast<uint32_t>(m.cols()));
  out->mutable_values()->Add(m.data(), m.data() + m.size());
}

}  // namespace

void SampleBatchToProto(const SampleBatchView& view, v1::SampleBatch* batch) {
  batch->Clear();
  batch->set_start_index(view.start_index);
  batch->set_seed(view.seed);
  batch->set_model_version(view.model_version);
  RowMajorToProto(*view.x, batch->mutable_x());
  if (view.latents != nullptr) RowMajorToProto(*view.latents, batch->mutable_latents());
}

std::shared_ptr<SampleBatchValues> SampleStream::FreeValues() {
  for (const std::shared_ptr<SampleBatchValues>& values : values_) {
    if (values.use_count() == 1) {
      // The last other owner released it (an atomic decrement with release semantics, possibly
      // on a transport thread): this fence orders its reads of the values before our writes.
      std::atomic_thread_fence(std::memory_order_acquire);
      return values;
    }
  }
  auto values = std::make_shared<SampleBatchValues>();
  if (values_.size() < kKeptValues) values_.push_back(values);
  return values;
}

bool SampleStream::NextView(SampleBatchView* view) {
  if (produced_ >= num_samples_) return false;
  const uint64_t n = std::min(batch_size_, num_samples_ - produced_);
  const uint64_t first = start_index_ + produced_;
  std::shared_ptr<SampleBatchValues> values = FreeValues();
  values->x.resize(static_cast<Eigen::Index>(n), model_->model->dimension());
  model_->model->Sample(seed_, first, values->x, include_latents_ ? &values->latents : nullptr);
  view->start_index = first;
  view->seed = seed_;
  view->model_version = model_->info().version();
  view->x = &values->x;
  view->latents = include_latents_ ? &values->latents : nullptr;
  view->owner = std::move(values);
  produced_ += n;
  return true;
}

bool SampleStream::Next(v1::SampleBatch* batch) {
  SampleBatchView view;
  if (!NextView(&view)) return false;
  SampleBatchToProto(view, batch);
  return true;
}

EstimateStream::EstimateStream(v1::EstimateLogLikelihoodResponse exact)
    : exact_(std::move(exact)) {}

EstimateStream::EstimateStream(Plan plan) : plan_(std::move(plan)) {
  // Keep a reserve before the call's deadline for the last message to reach the client: 5% of the
  // time the call has, between 50 ms and 1 s.
  const absl::Duration budget = plan_->deadline - plan_->clock();
  const absl::Duration reserve = std::clamp(budget / 20, absl::Milliseconds(50), absl::Seconds(1));
  soft_deadline_ =
      plan_->deadline == absl::InfiniteFuture() ? plan_->deadline : plan_->deadline - reserve;
  const size_t rows = static_cast<size_t>(plan_->x.rows());
  stats_.resize(rows);
  acceptance_sum_.assign(rows, 0.0);
  // The tail the whole stream can need: the tail of the samples so far grows with them, so a
  // weight dropped now for a smaller one could belong to a later increment's tail.
  tails_.assign(rows, LogWeightTail(StreamTailSize(plan_->max_samples)));
  pareto_k_.assign(rows, std::numeric_limits<double>::quiet_NaN());
}

absl::StatusOr<bool> EstimateStream::Next(v1::StreamEstimateResponse* message) {
  if (done_) return false;
  message->Clear();
  if (!plan_.has_value()) {
    *message->mutable_estimate() = exact_;
    message->set_stop_reason(v1::EXACT_RESULT);
    done_ = true;
    return true;
  }
  Plan& plan = *plan_;
  const uint64_t increment = std::min(plan.settings.num_samples, plan.max_samples - samples_done_);
  // Stop before an increment that would not finish in time (judged by the last one, with margin).
  const absl::Time start = plan.clock();
  v1::StopReason reason = v1::STOP_REASON_UNSPECIFIED;
  if (samples_done_ > 0 && start + 1.5 * last_increment_ >= soft_deadline_) {
    reason = v1::DEADLINE;
    RefitParetoK();  // the tails hold exactly the samples done: the last message's k̂ is of all
  } else {
    const absl::Time deadline = soft_deadline_;
    const std::function<absl::Time()>& clock = plan.clock;
    const exec::StopToken& outer = plan.stop;
    const exec::StopToken stop([&]() -> absl::Status {
      if (clock() >= deadline) return absl::DeadlineExceededError("deadline");
      return outer.Check();
    });
    EstimateSettings settings = plan.settings;
    settings.num_samples = increment;
    settings.sample_offset = plan.settings.sample_offset + samples_done_;
    // Each row's weights go straight into its tail, in bounded memory whatever the increment. A
    // cut-off increment leaves some of its weights there: the stream then ends with the k̂ last
    // fitted (pareto_k_), and the tails are not read again.
    absl::StatusOr<std::vector<RowResult>> rows =
        EstimateRowsIntoTails(*plan.loaded->model, plan.x, settings, *plan.executor, stop, tails_,
                              plan.keep_setups ? &setups_ : nullptr);
    if (!rows.ok()) {
      if (outer.Check().code() == absl::StatusCode::kCancelled) {  // Nobody is reading any more.
        done_ = true;
        return false;
      }
      if (samples_done_ == 0) {  // Nothing complete to report: NaN estimates would look like one.
        done_ = true;
        return absl::DeadlineExceededError(absl::StrCat(
            "the call's deadline came before the first increment of ", increment,
            " samples per row finished for ", plan.x.rows(),
            " rows (nothing is estimated yet); give the call more time, or ask for fewer rows or "
            "a smaller num_samples per increment"));
      }
      reason = v1::DEADLINE;  // Cut off by the deadline: report the last complete estimate.
    } else {
      last_increment_ = plan.clock() - start;
      samples_done_ += increment;
      for (size_t r = 0; r < rows->size(); ++r) {
        stats_[r].Merge((*rows)[r].stats);
        acceptance_sum_[r] += (*rows)[r].acceptance_rate * static_cast<double>(increment);
      }
      // k̂ refitted on the last message, and before it once the samples grew by 1/16 since the
      // last fit: a fit costs ~sqrt(samples) log1p per row, so refitting on every increment made
      // a stream of small increments ~25x slower than one call of its samples (100 -> 200 000 per
      // row, the 2026-12-06 performance hunt).
      if (samples_done_ >= next_pareto_fit_) RefitParetoK();
      // The target counts once the standard error means something: at least as many samples as
      // k̂ needs, and no row whose last fitted k̂ calls its standard error unreliable. Stopping on
      // the first standard error under the target ended streams of increments of 1 or 2 samples
      // after 2 samples, SE 0.017 and the estimate 1.9 nats off (the 2026-12-06 calibration hunt:
      // 3.6% of such early stops within 1.96 SE of the exact value).
      const auto target_reached = [&] {
        bool reached = plan.target_standard_error > 0 && samples_done_ >= kMinWeightsForParetoK;
        for (size_t r = 0; r < stats_.size() && reached; ++r) {
          reached = stats_[r].StandardError() <= plan.target_standard_error &&
                    !(pareto_k_[r] > kUnreliableParetoK);
        }
        return reached;
      };
      bool all_reached = target_reached();
      // A stop on a k̂ fitted before the last samples is confirmed on all of them, so that the
      // last message never carries TARGET_REACHED with a k̂ above 0.7 (a k̂ that turns above it
      // is then kept until the next regular refit: at most one extra fit per 1/16 growth).
      if (all_reached && pareto_fit_samples_ != samples_done_) {
        RefitParetoK();
        all_reached = target_reached();
      }
      if (all_reached) {
        reason = v1::TARGET_REACHED;
      } else if (samples_done_ >= plan.max_samples) {
        reason = v1::MAX_SAMPLES;
      }
      if (reason != v1::STOP_REASON_UNSPECIFIED) RefitParetoK();
    }
  }
  v1::EstimateLogLikelihoodResponse* estimate = message->mutable_estimate();
  estimate->set_estimator(plan.estimator);
  estimate->set_seed(plan.settings.seed);
  estimate->set_model_version(plan.loaded->info().version());
  for (size_t r = 0; r < stats_.size(); ++r) {
    const double acceptance =
        samples_done_ > 0 ? acceptance_sum_[r] / static_cast<double>(samples_done_) : 0.0;
    FillRow(stats_[r], pareto_k_[r], acceptance, plan.exact, static_cast<Eigen::Index>(r),
            estimate->add_rows());
  }
  message->set_stop_reason(reason);
  done_ = reason != v1::STOP_REASON_UNSPECIFIED;
  return true;
}

void EstimateStream::RefitParetoK() {
  if (pareto_fit_samples_ == samples_done_) return;
  pareto_fit_samples_ = samples_done_;
  next_pareto_fit_ = samples_done_ + std::max<uint64_t>(1, samples_done_ / 16);
  const int64_t count = static_cast<int64_t>(samples_done_);
  plan_->executor->ParallelFor(static_cast<int64_t>(tails_.size()), [&](int64_t r) {
    pareto_k_[static_cast<size_t>(r)] = tails_[static_cast<size_t>(r)].ParetoK(count);
  });
}

// ---------------------------------------------------------------------------------------------------------

FitSession::FitSession(const GenerativeCoreOptions* options) : options_(options) {}

absl::Status FitSession::Add(const v1::FitModelRequest& message) {
  switch (message.message_case()) {
    case v1::FitModelRequest::kConfig: {
      if (config_.has_value()) {
        return absl::InvalidArgumentError(
            "a second FitConfig arrived; send the config once, first");
      }
      const v1::FitConfig& config = message.config();
      if (config.family_case() == v1::FitConfig::FAMILY_NOT_SET) {
        return absl::InvalidArgumentError(absl::StrCat("config: no family set; set one of ",
                                                       options_->families->FittableNames(),
                                                       " with its hyperparameters"));
      }
      const Family* family = options_->families->FindByFit(config.family_case());
      if (family == nullptr) {
        return absl::UnimplementedError(
            absl::StrCat("config: fitting this family is not served by this server (it fits: ",
                         options_->families->FittableNames(), ")"));
      }
      MAAS_RETURN_IF_ERROR(registry::ValidateModelName(config.name()));
      MAAS_RETURN_IF_ERROR(registry::ValidateLabels(config.labels(), config.description()));
      const uint64_t seed = ResolveSeed(config.has_seed(), config.seed(), *options_);
      MAAS_ASSIGN_OR_RETURN(fitter_, family->make_fitter(config, seed));
      family_ = family;
      seed_ = seed;
      config_ = config;
      return absl::OkStatus();
    }
    case v1::FitModelRequest::kRows: {
      if (!config_.has_value()) {
        return absl::InvalidArgumentError(
            "rows arrived before the FitConfig; send the config first");
      }
      const common::v1::Matrix& m = message.rows();
      if (m.rows() > 0 && m.cols() == 0) {
        return absl::InvalidArgumentError("rows: a chunk with rows needs cols >= 1");
      }
      const std::string what =
          absl::StrCat("rows (chunk starting at training row ", num_rows_, ")");
      MAAS_ASSIGN_OR_RETURN(Eigen::MatrixXd rows, convert::MatrixFromProto(m, what));
      if (rows.rows() == 0) return absl::OkStatus();
      if (num_cols_ >= 0 && rows.cols() != num_cols_) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " has ", rows.cols(), " columns but earlier chunks had ", num_cols_,
                         "; every chunk needs the same columns"));
      }
      if (num_cols_ < 0 && options_->max_model_bytes > 0) {
        // The dimension is known now: refuse a model too large before holding rows or fitting.
        fit_size_ = family_->fit_size(*config_, rows.cols());
        if (fit_size_.bytes > options_->max_model_bytes) {
          return absl::ResourceExhaustedError(absl::StrCat(
              family_->name, " fit of ", fit_size_.what, " would build ", fit_size_.bytes,
              " bytes of parameters, above this server's limit of ", options_->max_model_bytes,
              " bytes (--max_model_bytes); ", fit_size_.smaller, "; nothing was stored"));
        }
      }
      const uint64_t total_rows = num_rows_ + static_cast<uint64_t>(rows.rows());
      if (total_rows > options_->max_fit_rows) {
        return absl::ResourceExhaustedError(
            absl::StrCat("more than ", options_->max_fit_rows,
                         " training rows (the server's --max_fit_rows); "
                         "fit on a subsample"));
      }
      if (options_->max_model_bytes > 0 && fit_size_.per_row_bytes > 0 &&
          total_rows > options_->max_model_bytes / fit_size_.per_row_bytes) {
        // Per row, the fit forms state for every component (100 000 one-column rows with
        // 100 000 components, an 800 KB request, would be ~240 GB).
        return absl::ResourceExhaustedError(absl::StrCat(
            family_->name, " fit of ", total_rows, " rows forms ", fit_size_.per_row_bytes,
            " bytes per row (its responsibilities per component), above this server's limit of ",
            options_->max_model_bytes, " bytes (--max_model_bytes) at more than ",
            options_->max_model_bytes / fit_size_.per_row_bytes,
            " rows; fit on a subsample or with fewer n_components; nothing was stored"));
      }
      MAAS_RETURN_IF_ERROR(fitter_->AddRows(rows, num_rows_));
      num_cols_ = rows.cols();
      num_rows_ += static_cast<uint64_t>(rows.rows());
      return absl::OkStatus();
    }
    case v1::FitModelRequest::MESSAGE_NOT_SET:
      return absl::InvalidArgumentError("empty FitModelRequest; set config (first) or rows");
  }
  return absl::InvalidArgumentError("unknown FitModelRequest content");
}

absl::StatusOr<v1::FitModelResponse> FitSession::Finish(exec::Executor& /*executor*/,
                                                        const exec::StopToken& stop) {
  stop_ = stop;
  return Finish();
}

absl::StatusOr<v1::FitModelResponse> FitSession::Finish() {
  if (!config_.has_value()) {
    return absl::InvalidArgumentError(
        "empty FitModel stream; send a FitConfig first, then Matrix chunks of rows");
  }
  if (num_rows_ == 0) {
    return absl::InvalidArgumentError(
        "no training rows; send at least one Matrix chunk with rows after the config");
  }
  // The call's own stop, and the server's limit on the time one fit may take.
  const absl::Duration limit = options_->max_fit_duration;
  const absl::Time until =
      limit == absl::InfiniteDuration() ? absl::InfiniteFuture() : options_->clock() + limit;
  const exec::StopToken fit_stop([this, until, limit]() -> absl::Status {
    MAAS_RETURN_IF_ERROR(stop_.Check());
    if (until != absl::InfiniteFuture() && options_->clock() >= until) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the ", family_->name, " fit of ", num_rows_, " rows ran for ",
          absl::FormatDuration(limit),
          " without finishing, this server's limit (--max_fit_seconds); nothing was stored. "
          "Lower max_iter or n_init, fit fewer rows, or raise the limit"));
    }
    return absl::OkStatus();
  });
  MAAS_ASSIGN_OR_RETURN(FitResult fitted, fitter_->Finish(fit_stop));
  // Nothing is stored when the caller gave up meanwhile.
  MAAS_RETURN_IF_ERROR(stop_.Check());
  v1::FitTrace& trace = fitted.trace;
  trace.set_num_rows(num_rows_);
  trace.set_seed(seed_);
  MAAS_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedModel> stored,
                        StoreModel(*options_, config_->name(), fitted.spec, config_->labels(),
                                   config_->description(), &trace, stop_));
  v1::FitModelResponse response;
  *response.mutable_info() = stored->info();
  *response.mutable_trace() = trace;
  return response;
}

// ---------------------------------------------------------------------------------------------------------

GenerativeCore::GenerativeCore(GenerativeCoreOptions options) : options_(std::move(options)) {}

absl::StatusOr<v1::CreateModelResponse> GenerativeCore::CreateModel(
    const v1::CreateModelRequest& request, const exec::StopToken& stop) {
  MAAS_RETURN_IF_ERROR(registry::ValidateModelName(request.name()));
  if (!request.has_spec()) {
    return absl::InvalidArgumentError("spec is missing; give the model's parameters (one family)");
  }
  // The spec is already in memory (within --max_message_bytes); its size is that of its parameters
  // (8 bytes per float64), cheap to ask for, and refused before the model is built.
  if (options_.max_model_bytes > 0 && request.spec().ByteSizeLong() > options_.max_model_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the spec takes ", request.spec().ByteSizeLong(), " bytes, above this server's limit of ",
        options_.max_model_bytes,
        " bytes of model parameters (--max_model_bytes); use a smaller model (fewer components, "
        "dimensions or units)"));
  }
  MAAS_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedModel> stored,
                        StoreModel(options_, request.name(), request.spec(), request.labels(),
                                   request.description(), nullptr, stop));
  v1::CreateModelResponse response;
  *response.mutable_info() = stored->info();
  return response;
}

absl::StatusOr<v1::GetModelResponse> GenerativeCore::GetModel(const v1::GetModelRequest& request) {
  MAAS_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedModel> loaded,
                        options_.repository->Get(request.model()));
  // The loaded version keeps only its built model: the stored spec and fit trace are read back from
  // the store (exactly what was stored).
  MAAS_ASSIGN_OR_RETURN(std::string bytes, options_.repository->ReadStored(
                                               loaded->info().name(), loaded->info().version()));
  v1::StoredGenerativeModel stored;
  if (!stored.ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat("model '", loaded->info().name(), "' version ",
                                            loaded->info().version(),
                                            ": the stored message cannot be read back"));
  }
  bytes = std::string();  // release the stored bytes before building the response
  v1::GetModelResponse response;
  *response.mutable_info() = loaded->info();
  *response.mutable_spec() = std::move(*stored.mutable_spec());
  if (stored.has_fit_trace())
    *response.mutable_fit_trace() = std::move(*stored.mutable_fit_trace());
  return response;
}

absl::StatusOr<common::v1::ListModelsResponse> GenerativeCore::ListModels(
    const common::v1::ListModelsRequest& request) {
  return options_.repository->List(request, common::v1::GENERATIVE, options_.max_message_bytes);
}

absl::StatusOr<common::v1::DeleteModelResponse> GenerativeCore::DeleteModel(
    const common::v1::DeleteModelRequest& request, const exec::StopToken& stop) {
  return options_.repository->Delete(request, stop);
}

absl::StatusOr<std::unique_ptr<SampleStream>> GenerativeCore::StartSample(
    const v1::SampleRequest& request) {
  if (request.num_samples() == 0) {
    return absl::InvalidArgumentError("num_samples is 0; ask for at least one sample");
  }
  if (request.num_samples() > options_.max_samples_per_request) {
    return absl::ResourceExhaustedError(
        absl::StrCat("num_samples is ", request.num_samples(), ", above this server's limit of ",
                     options_.max_samples_per_request,
                     " per request (--max_samples_per_request); split the job into start_index "
                     "ranges (shards concatenate exactly)"));
  }
  // The last index drawn, start_index + num_samples - 1 (num_samples >= 1), must fit: the stream
  // has 2^64 samples, 0 .. 2^64 - 1.
  if (request.start_index() > std::numeric_limits<uint64_t>::max() - (request.num_samples() - 1)) {
    return absl::InvalidArgumentError(
        "start_index + num_samples is above 2^64, past the stream's last sample (index 2^64 - 1); "
        "use a smaller start_index");
  }
  MAAS_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedModel> loaded,
                        options_.repository->Get(request.model()));
  // One sample must fit in a message: its values, and a little framing of the batch around it.
  const uint64_t sent_width = static_cast<uint64_t>(
      loaded->model->dimension() + (request.include_latents() ? loaded->model->latent_width() : 0));
  const uint64_t one_sample_bytes = 8 * sent_width + 64;
  if (one_sample_bytes > static_cast<uint64_t>(options_.max_message_bytes)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "one sample of model '", loaded->info().name(), "' version ", loaded->info().version(),
        " takes about ", one_sample_bytes, " bytes (", sent_width,
        " values), above this server's largest message of ", options_.max_message_bytes,
        " bytes (--max_message_bytes); raise --max_message_bytes on the server and the client",
        request.include_latents() ? ", or leave out the latents" : ""));
  }
  // Cap the batch so one message stays well inside the message size limit.
  const uint64_t width =
      static_cast<uint64_t>(loaded->model->dimension() + loaded->model->latent_width());
  const uint64_t max_rows =
      std::max<uint64_t>(1, static_cast<uint64_t>(options_.max_message_bytes) / 2 /
                                (9 * std::max<uint64_t>(width, 1)));
  uint64_t batch = request.batch_size();
  if (batch == 0) {
    const uint64_t per_row = 8 * std::max<uint64_t>(width, 1);
    batch = std::min<uint64_t>(
        options_.default_batch_size,
        std::max<uint64_t>(1, static_cast<uint64_t>(options_.default_batch_bytes) / per_row));
  }
  batch = std::min(batch, max_rows);
  const uint64_t seed = ResolveSeed(request.has_seed(), request.seed(), options_);
  return std::make_unique<SampleStream>(std::move(loaded), seed, request.start_index(),
                                        request.num_samples(), batch, request.include_latents());
}

exec::Executor& GenerativeCore::executor() {
  return options_.executor != nullptr ? *options_.executor : inline_executor_;
}

absl::StatusOr<GenerativeCore::PreparedEstimate> GenerativeCore::PrepareEstimate(
    const v1::EstimateLogLikelihoodRequest& request) {
  PreparedEstimate prepared;
  MAAS_ASSIGN_OR_RETURN(prepared.loaded, options_.repository->Get(request.model()));
  if (request.x().rows() == 0) {
    return absl::InvalidArgumentError("x has no rows; send at least one row to evaluate");
  }
  if (request.x().rows() > options_.max_estimate_rows) {
    return absl::ResourceExhaustedError(
        absl::StrCat("x has ", request.x().rows(), " rows, above this server's limit of ",
                     options_.max_estimate_rows,
                     " (--max_estimate_rows); split the rows over calls with row_offset"));
  }
  MAAS_ASSIGN_OR_RETURN(prepared.x, convert::MatrixFromProto(request.x(), "x"));
  MAAS_RETURN_IF_ERROR(CheckDimension(*prepared.loaded, prepared.x.cols(), "x"));
  MAAS_RETURN_IF_ERROR(CheckBinary(*prepared.loaded, prepared.x));
  const GenerativeModel& model = *prepared.loaded->model;
  prepared.estimator = request.estimator();
  if (prepared.estimator == v1::ESTIMATOR_UNSPECIFIED) {
    prepared.estimator = model.tractable() ? v1::EXACT : v1::IMPORTANCE;
  }
  if (prepared.estimator == v1::EXACT) {
    if (!model.tractable()) {
      return absl::InvalidArgumentError(
          absl::StrCat("estimator: family '", model.family(),
                       "' has no closed-form log p(x); use PRIOR, IMPORTANCE or AIS"));
    }
    return prepared;
  }
  EstimateSettings& settings = prepared.settings;
  switch (prepared.estimator) {
    case v1::PRIOR:
      settings.estimator = McEstimator::kPrior;
      break;
    case v1::IMPORTANCE:
      settings.estimator = McEstimator::kImportance;
      break;
    case v1::AIS:
      settings.estimator = McEstimator::kAis;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("estimator: unknown value ",
                                                     static_cast<int>(prepared.estimator),
                                                     "; use EXACT, PRIOR, IMPORTANCE or AIS"));
  }
  const bool ais = settings.estimator == McEstimator::kAis;
  settings.num_samples = request.num_samples() == 0 ? (ais ? 16 : 1000) : request.num_samples();
  if (settings.num_samples > options_.max_samples_per_request) {
    return absl::ResourceExhaustedError(
        absl::StrCat("num_samples is ", settings.num_samples, ", above this server's limit of ",
                     options_.max_samples_per_request,
                     " per row (--max_samples_per_request); split the samples over calls with "
                     "sample_offset (statistics merge exactly)"));
  }
  if (ais) {
    const v1::AisOptions& options = request.ais();
    AisSettings& a = settings.ais;
    const auto or_default = [](uint32_t v, int64_t fallback) {
      return v == 0 ? fallback : int64_t{v};
    };
    a.num_temperatures = or_default(options.num_temperatures(), 1000);
    a.leapfrog_steps = or_default(options.leapfrog_steps(), 10);
    a.pilot_chains = or_default(options.pilot_chains(), 4);
    if (options.has_initial_step_size()) a.initial_step_size = options.initial_step_size();
    if (options.has_target_acceptance()) a.target_acceptance = options.target_acceptance();
    MAAS_RETURN_IF_ERROR(ValidateAisSettings(a));
  }
  if (ais && options_.max_ais_work > 0) {
    // Gradient evaluations of log p(x|z): every chain (num_samples, then the pilot's) of every row
    // runs num_temperatures - 1 transitions of leapfrog_steps. In double: the product can pass
    // 2^64 (~4e22 at the fields' bounds), and its rounding does not matter against a limit.
    const AisSettings& a = settings.ais;
    const double work =
        static_cast<double>(prepared.x.rows()) *
        (static_cast<double>(settings.num_samples) + static_cast<double>(a.pilot_chains)) *
        static_cast<double>(a.num_temperatures) * static_cast<double>(a.leapfrog_steps);
    if (work > static_cast<double>(options_.max_ais_work)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "this AIS estimate is ", prepared.x.rows(), " rows x (num_samples ", settings.num_samples,
          " + ais.pilot_chains ", a.pilot_chains, ") x ais.num_temperatures ", a.num_temperatures,
          " x ais.leapfrog_steps ", a.leapfrog_steps, " = ", absl::StrFormat("%.3g", work),
          " gradient evaluations, above this server's limit of ", options_.max_ais_work,
          " per request (--max_ais_work); lower num_temperatures or leapfrog_steps, or split the "
          "rows (row_offset) or samples (sample_offset) over calls: statistics merge exactly"));
    }
  }
  if (options_.max_estimate_work > 0) {
    const double work = EstimateWork(model, settings, static_cast<uint64_t>(prepared.x.rows()));
    if (work > options_.max_estimate_work) {
      return absl::ResourceExhaustedError(
          absl::StrCat("this ", McEstimatorName(settings.estimator), " estimate of ",
                       prepared.x.rows(), " rows x num_samples ", settings.num_samples,
                       " on model '", prepared.loaded->info().name(), "' (", model.family(), ", ~",
                       absl::StrFormat("%.3g", model.LatentEvaluationCost()),
                       " multiply-adds per log p(x|z)) is ~", absl::StrFormat("%.3g", work),
                       " multiply-adds of work, above this server's limit of ",
                       absl::StrFormat("%.3g", options_.max_estimate_work),
                       " per request (--max_estimate_work); split the rows (row_offset) or samples "
                       "(sample_offset) over calls, whose statistics merge exactly",
                       ais ? ", or lower num_temperatures or leapfrog_steps" : ""));
    }
  }
  settings.row_offset = request.row_offset();
  settings.sample_offset = request.sample_offset();
  MAAS_RETURN_IF_ERROR(
      ValidateEstimateRange(settings.row_offset, static_cast<uint64_t>(prepared.x.rows()),
                            settings.sample_offset, settings.num_samples, "num_samples"));
  // Before any proposal is built (mlp_decoder with latent_dim 50 000 formed a 20 GB Hessian for
  // row 0, from a 34-byte request with the default estimator).
  if (settings.estimator == McEstimator::kImportance && options_.max_model_bytes > 0 &&
      static_cast<uint64_t>(std::max<int64_t>(model.ProposalBytes(), 0)) >
          options_.max_model_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "estimator: the IMPORTANCE proposal of model '", prepared.loaded->info().name(),
        "' version ", prepared.loaded->info().version(), " (", model.family(), ", latent width ",
        model.latent_width(), ") forms ", model.ProposalBytes(),
        " bytes per row, above this server's limit of ", options_.max_model_bytes,
        " bytes (--max_model_bytes); use estimator PRIOR",
        model.has_latent_gradient() ? " or AIS" : "", ", or a model with a smaller latent_dim"));
  }
  MAAS_RETURN_IF_ERROR(CheckEstimatorSupported(model, settings.estimator));
  settings.seed = ResolveSeed(request.has_seed(), request.seed(), options_);
  return prepared;
}

absl::StatusOr<v1::EstimateLogLikelihoodResponse> GenerativeCore::EstimateLogLikelihood(
    const v1::EstimateLogLikelihoodRequest& request, exec::Executor& executor,
    const exec::StopToken& stop) {
  MAAS_ASSIGN_OR_RETURN(PreparedEstimate prepared, PrepareEstimate(request));
  if (prepared.estimator == v1::EXACT) {
    return ExactResponse(*prepared.loaded, prepared.x, executor, stop);
  }
  const GenerativeModel& model = *prepared.loaded->model;
  MAAS_ASSIGN_OR_RETURN(std::vector<RowResult> rows,
                        EstimateRows(model, prepared.x, prepared.settings, executor, stop));
  MAAS_ASSIGN_OR_RETURN(const std::optional<Eigen::VectorXd> exact,
                        ExactIfTractable(model, prepared.x, executor, stop));
  v1::EstimateLogLikelihoodResponse response;
  response.set_estimator(prepared.estimator);
  response.set_seed(prepared.settings.seed);
  response.set_model_version(prepared.loaded->info().version());
  for (size_t r = 0; r < rows.size(); ++r) {
    FillRow(rows[r].stats, rows[r].pareto_k, rows[r].acceptance_rate, exact,
            static_cast<Eigen::Index>(r), response.add_rows());
  }
  return response;
}

absl::StatusOr<std::unique_ptr<EstimateStream>> GenerativeCore::StartStreamEstimate(
    const v1::StreamEstimateRequest& request, exec::Executor& executor, absl::Time deadline,
    exec::StopToken stop) {
  if (request.target_standard_error() < 0 || !std::isfinite(request.target_standard_error())) {
    return absl::InvalidArgumentError(
        "target_standard_error must be a finite number >= 0 (0: run to max_samples)");
  }
  if (request.max_samples() > options_.max_samples_per_request) {
    return absl::ResourceExhaustedError(
        absl::StrCat("max_samples is ", request.max_samples(), ", above this server's limit of ",
                     options_.max_samples_per_request, " (--max_samples_per_request)"));
  }
  MAAS_ASSIGN_OR_RETURN(PreparedEstimate prepared, PrepareEstimate(request.request()));
  if (prepared.estimator == v1::EXACT) {
    MAAS_ASSIGN_OR_RETURN(v1::EstimateLogLikelihoodResponse exact,
                          ExactResponse(*prepared.loaded, prepared.x, executor, stop));
    return std::make_unique<EstimateStream>(std::move(exact));
  }
  const uint64_t max_samples =
      request.max_samples() == 0 ? options_.max_samples_per_request : request.max_samples();
  if (max_samples < prepared.settings.num_samples) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_samples is ", max_samples, ", below the increment request.num_samples = ",
                     prepared.settings.num_samples, "; raise max_samples or lower num_samples"));
  }
  MAAS_RETURN_IF_ERROR(
      ValidateEstimateRange(prepared.settings.row_offset, static_cast<uint64_t>(prepared.x.rows()),
                            prepared.settings.sample_offset, max_samples, "max_samples"));
  // The stream keeps, per row, the largest ~3 sqrt(max_samples) log weights (Pareto k̂ over all
  // its samples); everything else it holds is bounded whatever num_samples and max_samples are.
  const uint64_t rows = static_cast<uint64_t>(prepared.x.rows());
  const uint64_t tail_bytes =
      rows * LogWeightTail::MaxHeld(StreamTailSize(max_samples)) * sizeof(double);
  if (options_.max_stream_estimate_tail_bytes > 0 &&
      tail_bytes > static_cast<uint64_t>(options_.max_stream_estimate_tail_bytes)) {
    // The largest max_samples whose tails fit, for the message (the tail grows with max_samples).
    uint64_t fits = 0;
    for (uint64_t step = uint64_t{1} << 40; step > 0; step /= 2) {
      const uint64_t candidate = fits + step;
      if (candidate <= max_samples &&
          rows * LogWeightTail::MaxHeld(StreamTailSize(candidate)) * sizeof(double) <=
              static_cast<uint64_t>(options_.max_stream_estimate_tail_bytes)) {
        fits = candidate;
      }
    }
    const uint64_t per_row = LogWeightTail::MaxHeld(StreamTailSize(max_samples)) * sizeof(double);
    return absl::ResourceExhaustedError(absl::StrCat(
        "StreamEstimate of ", rows, " rows up to max_samples ", max_samples, " would keep ",
        tail_bytes, " bytes of largest log weights for Pareto k-hat (", per_row,
        " per row), above this server's limit of ", options_.max_stream_estimate_tail_bytes,
        " bytes (--max_stream_estimate_tail_bytes); ",
        fits >= prepared.settings.num_samples
            ? absl::StrCat("set max_samples <= ", fits, " or send fewer rows per call")
            : std::string("send fewer rows per call"),
        " (row_offset shards rows exactly)"));
  }
  // Reserved from the budget all streams in progress share, until this one ends; with the rows'
  // proposals or AIS pilots, built once for every increment, when the budget has room for them too
  // (else they are rebuilt per increment, as a single call's are).
  const uint64_t setup_bytes =
      EstimateSetups::Bytes(*prepared.loaded->model, prepared.settings, rows);
  int64_t reserve = static_cast<int64_t>(tail_bytes + setup_bytes);
  const bool keep_setups = setup_bytes > 0 && tail_budget_->TryAdd(reserve);
  if (!keep_setups) reserve = static_cast<int64_t>(tail_bytes);
  if (!keep_setups && !tail_budget_->TryAdd(reserve)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the StreamEstimate calls in progress keep ", tail_budget_->held(),
        " bytes of largest log weights for Pareto k-hat; with this one's ", reserve,
        " that passes this server's limit of ", tail_budget_->max_bytes(), " bytes (",
        tail_budget_->flag(),
        "): retry when they have finished, or send fewer rows or a lower max_samples"));
  }
  EstimateStream::Plan plan;
  plan.reservation = std::shared_ptr<void>(
      nullptr, [budget = tail_budget_, reserve](void*) { budget->Release(reserve); });
  plan.keep_setups = keep_setups;
  MAAS_ASSIGN_OR_RETURN(plan.exact,
                        ExactIfTractable(*prepared.loaded->model, prepared.x, executor, stop));
  plan.loaded = std::move(prepared.loaded);
  plan.x = std::move(prepared.x);
  plan.settings = prepared.settings;
  plan.estimator = prepared.estimator;
  plan.target_standard_error = request.target_standard_error();
  plan.max_samples = max_samples;
  plan.deadline = deadline;
  plan.clock = options_.clock;
  plan.executor = &executor;
  plan.stop = std::move(stop);
  return std::make_unique<EstimateStream>(std::move(plan));
}

}  // namespace maas::generative
