#include "services/generative/core/generative_core.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/convert/matrix.h"
#include "common/status/status_macros.h"
#include "services/generative/core/families.h"

namespace maas::generative {
namespace {

using common::v1::ModelInfo;

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
  MAAS_ASSIGN_OR_RETURN(std::shared_ptr<const GenerativeModel> model, MakeModel(spec));
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
        return stored.SerializeAsString();
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

}  // namespace

absl::StatusOr<std::shared_ptr<const LoadedModel>> ParseStoredModel(const std::string& bytes) {
  auto loaded = std::make_shared<LoadedModel>();
  if (!loaded->stored.ParseFromString(bytes)) {
    return absl::DataLossError(
        "stored generative model is not a valid StoredGenerativeModel message");
  }
  MAAS_ASSIGN_OR_RETURN(loaded->model, MakeModel(loaded->stored.spec()));
  loaded->stored.mutable_info()->set_size_bytes(static_cast<int64_t>(bytes.size()));
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

bool SampleStream::Next(v1::SampleBatch* batch) {
  if (produced_ >= num_samples_) return false;
  const uint64_t n = std::min(batch_size_, num_samples_ - produced_);
  const uint64_t first = start_index_ + produced_;
  Eigen::MatrixXd x(n, model_->model->dimension());
  Eigen::MatrixXd latents;
  model_->model->Sample(seed_, first, x, include_latents_ ? &latents : nullptr);
  batch->Clear();
  batch->set_start_index(first);
  batch->set_seed(seed_);
  batch->set_model_version(model_->info().version());
  convert::MatrixToProto(x, batch->mutable_x());
  if (include_latents_) convert::MatrixToProto(latents, batch->mutable_latents());
  produced_ += n;
  return true;
}

EstimateStream::EstimateStream(v1::EstimateLogLikelihoodResponse exact)
    : exact_(std::move(exact)) {}

bool EstimateStream::Next(v1::StreamEstimateResponse* message) {
  if (done_) return false;
  message->Clear();
  *message->mutable_estimate() = exact_;
  message->set_stop_reason(v1::EXACT_RESULT);
  done_ = true;
  return true;
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
        return absl::InvalidArgumentError(
            "config: no family set; set one of uniform, gaussian_mixture, ppca, factor_analysis, "
            "bernoulli_mixture with its hyperparameters");
      }
      if (config.family_case() != v1::FitConfig::kUniform) {
        return absl::UnimplementedError(
            "fitting this family is not served yet (this server fits: uniform); it arrives with "
            "the "
            "latent-variable families capability");
      }
      MAAS_RETURN_IF_ERROR(registry::ValidateModelName(config.name()));
      MAAS_RETURN_IF_ERROR(registry::ValidateLabels(config.labels(), config.description()));
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
      if (num_rows_ + static_cast<uint64_t>(rows.rows()) > options_->max_fit_rows) {
        return absl::ResourceExhaustedError(
            absl::StrCat("more than ", options_->max_fit_rows,
                         " training rows (the server's --max_fit_rows); "
                         "fit on a subsample"));
      }
      num_cols_ = rows.cols();
      num_rows_ += static_cast<uint64_t>(rows.rows());
      return uniform_.AddRows(rows);
    }
    case v1::FitModelRequest::MESSAGE_NOT_SET:
      return absl::InvalidArgumentError("empty FitModelRequest; set config (first) or rows");
  }
  return absl::InvalidArgumentError("unknown FitModelRequest content");
}

absl::StatusOr<v1::FitModelResponse> FitSession::Finish(exec::Executor& /*executor*/,
                                                        const exec::StopToken& stop) {
  if (!config_.has_value()) {
    return absl::InvalidArgumentError(
        "empty FitModel stream; send a FitConfig first, then Matrix chunks of rows");
  }
  if (num_rows_ == 0) {
    return absl::InvalidArgumentError(
        "no training rows; send at least one Matrix chunk with rows after the config");
  }
  MAAS_ASSIGN_OR_RETURN(v1::UniformSpec uniform, uniform_.Finish());
  v1::GenerativeModelSpec spec;
  *spec.mutable_uniform() = uniform;
  v1::FitTrace trace;
  trace.set_converged(true);
  trace.set_n_iter(1);
  trace.set_num_rows(num_rows_);
  trace.set_seed(ResolveSeed(config_->has_seed(), config_->seed(), *options_));
  // Mean training log-likelihood: every training row lies in the fitted box, so it is -log(volume).
  double log_volume = 0.0;
  for (int d = 0; d < uniform.low_size(); ++d)
    log_volume += std::log(uniform.high(d) - uniform.low(d));
  trace.add_log_likelihood(-log_volume);
  MAAS_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedModel> stored,
                        StoreModel(*options_, config_->name(), spec, config_->labels(),
                                   config_->description(), &trace, stop));
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
  v1::GetModelResponse response;
  *response.mutable_info() = loaded->info();
  *response.mutable_spec() = loaded->stored.spec();
  if (loaded->stored.has_fit_trace()) *response.mutable_fit_trace() = loaded->stored.fit_trace();
  return response;
}

absl::StatusOr<common::v1::ListModelsResponse> GenerativeCore::ListModels(
    const common::v1::ListModelsRequest& request) {
  return options_.repository->List(request);
}

absl::StatusOr<common::v1::DeleteModelResponse> GenerativeCore::DeleteModel(
    const common::v1::DeleteModelRequest& request) {
  return options_.repository->Delete(request);
}

absl::StatusOr<std::unique_ptr<SampleStream>> GenerativeCore::StartSample(
    const v1::SampleRequest& request) {
  if (request.num_samples() == 0) {
    return absl::InvalidArgumentError("num_samples is 0; ask for at least one sample");
  }
  if (request.num_samples() > options_.max_samples_per_request) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_samples is ", request.num_samples(), ", above this server's limit of ",
        options_.max_samples_per_request,
        " per request; split the job into start_index ranges (shards concatenate exactly)"));
  }
  if (request.start_index() > std::numeric_limits<uint64_t>::max() - request.num_samples()) {
    return absl::InvalidArgumentError(
        "start_index + num_samples overflows 2^64; use a smaller start_index");
  }
  MAAS_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedModel> loaded,
                        options_.repository->Get(request.model()));
  // Cap the batch so one message stays well inside the message size limit.
  const uint64_t width =
      static_cast<uint64_t>(loaded->model->dimension() + loaded->model->latent_width());
  const uint64_t max_rows =
      std::max<uint64_t>(1, static_cast<uint64_t>(options_.max_message_bytes) / 2 /
                                (9 * std::max<uint64_t>(width, 1)));
  uint64_t batch = request.batch_size() == 0 ? options_.default_batch_size : request.batch_size();
  batch = std::min(batch, max_rows);
  const uint64_t seed = ResolveSeed(request.has_seed(), request.seed(), options_);
  return std::make_unique<SampleStream>(std::move(loaded), seed, request.start_index(),
                                        request.num_samples(), batch, request.include_latents());
}

absl::StatusOr<v1::EstimateLogLikelihoodResponse> GenerativeCore::EstimateLogLikelihood(
    const v1::EstimateLogLikelihoodRequest& request, exec::Executor& /*executor*/,
    const exec::StopToken& stop) {
  MAAS_RETURN_IF_ERROR(stop.Check());
  MAAS_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedModel> loaded,
                        options_.repository->Get(request.model()));
  if (request.x().rows() == 0) {
    return absl::InvalidArgumentError("x has no rows; send at least one row to evaluate");
  }
  if (request.x().rows() > options_.max_estimate_rows) {
    return absl::InvalidArgumentError(
        absl::StrCat("x has ", request.x().rows(), " rows, above this server's limit of ",
                     options_.max_estimate_rows, "; split the rows over several calls"));
  }
  MAAS_ASSIGN_OR_RETURN(Eigen::MatrixXd x, convert::MatrixFromProto(request.x(), "x"));
  MAAS_RETURN_IF_ERROR(CheckDimension(*loaded, x.cols(), "x"));

  v1::Estimator estimator = request.estimator();
  if (!v1::Estimator_IsValid(estimator)) {  // an enum value from a newer client: print its number
    return absl::InvalidArgumentError(absl::StrCat(
        "estimator is ", static_cast<int>(estimator),
        ", which this server does not know; use EXACT, PRIOR, IMPORTANCE or AIS (or leave it "
        "unset for the family's default)"));
  }
  if (estimator == v1::ESTIMATOR_UNSPECIFIED) {
    estimator = loaded->model->tractable() ? v1::EXACT : v1::IMPORTANCE;
  }
  const GenerativeModel& model = *loaded->model;
  if (estimator != v1::EXACT) {
    if (model.latent_width() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "estimator ", v1::Estimator_Name(estimator), " needs a latent variable, but family '",
          model.family(), "' has none: its log p(x) is exact; use estimator EXACT"));
    }
    return absl::UnimplementedError(
        absl::StrCat("estimator ", v1::Estimator_Name(estimator),
                     " is not served yet; it arrives with the Monte Carlo "
                     "estimators capability"));
  }
  if (!model.tractable()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "family '", model.family(), "' has no closed-form log p(x); use PRIOR, IMPORTANCE or AIS"));
  }
  const Eigen::VectorXd log_p = model.ExactLogLikelihood(x);
  v1::EstimateLogLikelihoodResponse response;
  response.set_estimator(v1::EXACT);
  response.set_model_version(loaded->info().version());
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

absl::StatusOr<std::unique_ptr<EstimateStream>> GenerativeCore::StartStreamEstimate(
    const v1::StreamEstimateRequest& request, exec::Executor& executor,
    const exec::StopToken& stop) {
  if (request.target_standard_error() < 0 || !std::isfinite(request.target_standard_error())) {
    return absl::InvalidArgumentError(
        "target_standard_error must be a finite number >= 0 (0: run to max_samples)");
  }
  if (request.max_samples() > options_.max_samples_per_request) {
    return absl::InvalidArgumentError(absl::StrCat("max_samples is ", request.max_samples(),
                                                   ", above this server's limit of ",
                                                   options_.max_samples_per_request));
  }
  MAAS_ASSIGN_OR_RETURN(v1::EstimateLogLikelihoodResponse exact,
                        EstimateLogLikelihood(request.request(), executor, stop));
  return std::make_unique<EstimateStream>(std::move(exact));
}

}  // namespace maas::generative
