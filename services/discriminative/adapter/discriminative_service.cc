#include "services/discriminative/adapter/discriminative_service.h"

#include "common/adapter/reactors.h"

namespace maas::discriminative {

grpc::ServerUnaryReactor* DiscriminativeServiceImpl::CreateModel(
    grpc::CallbackServerContext* context, const v1::CreateModelRequest* request,
    v1::CreateModelResponse* response) {
  return adapter::Unary(
      context, auth_->Check(*context), [&] { return core_->CreateModel(*request); }, response);
}

grpc::ServerReadReactor<v1::TrainRequest>* DiscriminativeServiceImpl::Train(
    grpc::CallbackServerContext* context, v1::TrainResponse* response) {
  return adapter::ClientStream<v1::TrainRequest>(context, auth_->Check(*context),
                                                 core_->StartTrain(), response);
}

grpc::ServerUnaryReactor* DiscriminativeServiceImpl::Classify(grpc::CallbackServerContext* context,
                                                              const v1::ClassifyRequest* request,
                                                              v1::ClassifyResponse* response) {
  return adapter::Unary(
      context, [&] { return core_->Classify(*request); }, response);
}

grpc::ServerBidiReactor<v1::ClassifyRequest, v1::ClassifyResponse>*
DiscriminativeServiceImpl::ClassifyStream(grpc::CallbackServerContext*) {
  return adapter::Bidi<v1::ClassifyRequest, v1::ClassifyResponse>(
      [core = core_](const v1::ClassifyRequest& request) { return core->Classify(request); });
}

grpc::ServerUnaryReactor* DiscriminativeServiceImpl::Vectorize(grpc::CallbackServerContext* context,
                                                               const v1::VectorizeRequest* request,
                                                               v1::VectorizeResponse* response) {
  return adapter::Unary(
      context, [&] { return core_->Vectorize(*request); }, response);
}

grpc::ServerReadReactor<v1::EvaluateRequest>* DiscriminativeServiceImpl::Evaluate(
    grpc::CallbackServerContext* context, v1::EvaluateResponse* response) {
  return adapter::ClientStream<v1::EvaluateRequest>(context, core_->StartEvaluate(), response);
}

grpc::ServerUnaryReactor* DiscriminativeServiceImpl::GetModel(grpc::CallbackServerContext* context,
                                                              const v1::GetModelRequest* request,
                                                              v1::GetModelResponse* response) {
  return adapter::Unary(
      context, [&] { return core_->GetModel(*request); }, response);
}

grpc::ServerUnaryReactor* DiscriminativeServiceImpl::ListModels(
    grpc::CallbackServerContext* context, const common::v1::ListModelsRequest* request,
    common::v1::ListModelsResponse* response) {
  return adapter::Unary(
      context, [&] { return core_->ListModels(*request); }, response);
}

grpc::ServerUnaryReactor* DiscriminativeServiceImpl::DeleteModel(
    grpc::CallbackServerContext* context, const common::v1::DeleteModelRequest* request,
    common::v1::DeleteModelResponse* response) {
  return adapter::Unary(
      context, auth_->Check(*context), [&] { return core_->DeleteModel(*request); }, response);
}

}  // namespace maas::discriminative
