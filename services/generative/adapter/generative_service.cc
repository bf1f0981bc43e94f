#include "services/generative/adapter/generative_service.h"

#include "absl/time/time.h"
#include "common/adapter/reactors.h"
#include "common/status/status_macros.h"
#include "services/generative/adapter/sample_wire.h"

namespace maas::generative {

using adapter::CallScope;

grpc::ServerUnaryReactor* GenerativeServiceImpl::CreateModel(grpc::CallbackServerContext* context,
                                                             const grpc::ByteBuffer* request,
                                                             grpc::ByteBuffer* response) {
  return adapter::Unary<v1::CreateModelRequest, v1::CreateModelResponse>(
      *dispatcher_, context, request, response, auth_->Check(*context),
      [core = core_](const v1::CreateModelRequest& r, const CallScope& s) {
        return core->CreateModel(r, s.stop);
      });
}

grpc::ServerReadReactor<grpc::ByteBuffer>* GenerativeServiceImpl::FitModel(
    grpc::CallbackServerContext* context, grpc::ByteBuffer* response) {
  return adapter::ClientStream<v1::FitModelRequest, v1::FitModelResponse>(
      *dispatcher_, context, response, auth_->Check(*context), core_->StartFit(),
      adapter::StreamLimit{max_fit_bytes_, "--max_fit_bytes", fit_budget_});
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* GenerativeServiceImpl::Sample(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  return adapter::ServerStream<v1::SampleRequest, v1::SampleBatch>(
      *dispatcher_, context, request,
      [core = core_](const v1::SampleRequest& r,
                     const CallScope&) -> absl::StatusOr<std::unique_ptr<SampleWireSource>> {
        MAAS_ASSIGN_OR_RETURN(std::unique_ptr<SampleStream> stream, core->StartSample(r));
        return std::make_unique<SampleWireSource>(std::move(stream));
      },
      &sample_writer_);
}

grpc::ServerUnaryReactor* GenerativeServiceImpl::EstimateLogLikelihood(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return adapter::Unary<v1::EstimateLogLikelihoodRequest, v1::EstimateLogLikelihoodResponse>(
      *dispatcher_, context, request, response, absl::OkStatus(),
      [core = core_](const v1::EstimateLogLikelihoodRequest& r, const CallScope& s) {
        return core->EstimateLogLikelihood(r, s.executor, s.stop);
      });
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* GenerativeServiceImpl::StreamEstimate(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  // The stream ends with stop reason DEADLINE shortly before the call's deadline.
  const absl::Time deadline = adapter::CallDeadline(*context);
  return adapter::ServerStream<v1::StreamEstimateRequest, v1::StreamEstimateResponse>(
      *dispatcher_, context, request,
      [core = core_, deadline](const v1::StreamEstimateRequest& r, const CallScope& s) {
        return core->StartStreamEstimate(r, s.executor, deadline, s.stop);
      });
}

grpc::ServerUnaryReactor* GenerativeServiceImpl::GetModel(grpc::CallbackServerContext* context,
                                                          const grpc::ByteBuffer* request,
                                                          grpc::ByteBuffer* response) {
  return adapter::Unary<v1::GetModelRequest, v1::GetModelResponse>(
      *dispatcher_, context, request, response, absl::OkStatus(),
      [core = core_](const v1::GetModelRequest& r, const CallScope&) { return core->GetModel(r); });
}

grpc::ServerUnaryReactor* GenerativeServiceImpl::ListModels(grpc::CallbackServerContext* context,
                                                            const grpc::ByteBuffer* request,
                                                            grpc::ByteBuffer* response) {
  // Metadata only (no model is loaded): inline, so a full pool never starves it.
  return adapter::Unary<common::v1::ListModelsRequest, common::v1::ListModelsResponse>(
      *dispatcher_, context, request, response, absl::OkStatus(),
      [core = core_](const common::v1::ListModelsRequest& r, const CallScope&) {
        return core->ListModels(r);
      },
      adapter::Lane::kInline, adapter::TooLargeAdvice::kListFewerModels);
}

grpc::ServerUnaryReactor* GenerativeServiceImpl::DeleteModel(grpc::CallbackServerContext* context,
                                                             const grpc::ByteBuffer* request,
                                                             grpc::ByteBuffer* response) {
  return adapter::Unary<common::v1::DeleteModelRequest, common::v1::DeleteModelResponse>(
      *dispatcher_, context, request, response, auth_->Check(*context),
      [core = core_](const common::v1::DeleteModelRequest& r, const CallScope& scope) {
        return core->DeleteModel(r, scope.stop);
      });
}

}  // namespace maas::generative
