#include "services/generative/adapter/generative_service.h"

#include <chrono>

#include "absl/time/clock.h"
#include "common/adapter/reactors.h"

namespace maas::generative {
namespace {

// The call's cancellation and deadline as the core sees them (checked between chunks of work).
exec::StopToken StopTokenFor(grpc::CallbackServerContext* context) {
  return exec::StopToken([context]() -> absl::Status {
    // The deadline first: gRPC also reports a passed deadline as a cancellation.
    if (std::chrono::system_clock::now() >= context->deadline()) {
      return absl::DeadlineExceededError("the call's deadline passed before the estimate finished");
    }
    if (context->IsCancelled()) return absl::CancelledError("the call was cancelled");
    return absl::OkStatus();
  });
}

}  // namespace

grpc::ServerUnaryReactor* GenerativeServiceImpl::CreateModel(grpc::CallbackServerContext* context,
                                                             const v1::CreateModelRequest* request,
                                                             v1::CreateModelResponse* response) {
  return adapter::Unary(
      context, auth_->Check(*context), [&] { return core_->CreateModel(*request); }, response);
}

grpc::ServerReadReactor<v1::FitModelRequest>* GenerativeServiceImpl::FitModel(
    grpc::CallbackServerContext* context, v1::FitModelResponse* response) {
  return adapter::ClientStream<v1::FitModelRequest>(context, auth_->Check(*context),
                                                    core_->StartFit(), response);
}

grpc::ServerWriteReactor<v1::SampleBatch>* GenerativeServiceImpl::Sample(
    grpc::CallbackServerContext*, const v1::SampleRequest* request) {
  return adapter::ServerStream<v1::SampleBatch>([&] { return core_->StartSample(*request); });
}

grpc::ServerUnaryReactor* GenerativeServiceImpl::EstimateLogLikelihood(
    grpc::CallbackServerContext* context, const v1::EstimateLogLikelihoodRequest* request,
    v1::EstimateLogLikelihoodResponse* response) {
  return adapter::Unary(
      context, [&] { return core_->EstimateLogLikelihood(*request, StopTokenFor(context)); },
      response);
}

grpc::ServerWriteReactor<v1::StreamEstimateResponse>* GenerativeServiceImpl::StreamEstimate(
    grpc::CallbackServerContext* context, const v1::StreamEstimateRequest* request) {
  const absl::Time deadline = absl::FromChrono(context->deadline());
  return adapter::ServerStream<v1::StreamEstimateResponse>(
      [&] { return core_->StartStreamEstimate(*request, deadline, StopTokenFor(context)); });
}

grpc::ServerUnaryReactor* GenerativeServiceImpl::GetModel(grpc::CallbackServerContext* context,
                                                          const v1::GetModelRequest* request,
                                                          v1::GetModelResponse* response) {
  return adapter::Unary(
      context, [&] { return core_->GetModel(*request); }, response);
}

grpc::ServerUnaryReactor* GenerativeServiceImpl::ListModels(
    grpc::CallbackServerContext* context, const common::v1::ListModelsRequest* request,
    common::v1::ListModelsResponse* response) {
  return adapter::Unary(
      context, [&] { return core_->ListModels(*request); }, response);
}

grpc::ServerUnaryReactor* GenerativeServiceImpl::DeleteModel(
    grpc::CallbackServerContext* context, const common::v1::DeleteModelRequest* request,
    common::v1::DeleteModelResponse* response) {
  return adapter::Unary(
      context, auth_->Check(*context), [&] { return core_->DeleteModel(*request); }, response);
}

}  // namespace maas::generative
