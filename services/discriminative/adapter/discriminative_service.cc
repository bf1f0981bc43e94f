#include "services/discriminative/adapter/discriminative_service.h"

#include "common/adapter/reactors.h"

namespace maas::discriminative {

using adapter::CallScope;

grpc::ServerUnaryReactor* DiscriminativeServiceImpl::CreateModel(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return adapter::Unary<v1::CreateModelRequest, v1::CreateModelResponse>(
      *dispatcher_, context, request, response, auth_->Check(*context),
      [core = core_](const v1::CreateModelRequest& r, const CallScope& s) {
        return core->CreateModel(r, s.stop);
      });
}

grpc::ServerReadReactor<grpc::ByteBuffer>* DiscriminativeServiceImpl::Train(
    grpc::CallbackServerContext* context, grpc::ByteBuffer* response) {
  return adapter::ClientStream<v1::TrainRequest, v1::TrainResponse>(
      *dispatcher_, context, response, auth_->Check(*context), core_->StartTrain(),
      adapter::StreamLimit{max_train_bytes_, "--max_train_bytes", train_budget_},
      train_dispatcher_);
}

bool DiscriminativeServiceImpl::SmallEnoughInline(const v1::ClassifyRequest& request) const {
  if (inline_max_bytes_ <= 0 || !model_cached_ || request.explain() ||
      request.texts_size() > kInlineMaxTexts) {
    return false;
  }
  int64_t bytes = 0;
  for (const std::string& text : request.texts()) bytes += static_cast<int64_t>(text.size());
  return bytes <= inline_max_bytes_ && model_cached_(request.model());
}

grpc::ServerUnaryReactor* DiscriminativeServiceImpl::Classify(grpc::CallbackServerContext* context,
                                                              const grpc::ByteBuffer* request,
                                                              grpc::ByteBuffer* response) {
  // A kCaller call's work has run when Unary returns, so its slot is given back right after.
  bool took_slot = false;
  grpc::ServerUnaryReactor* reactor = adapter::Unary<v1::ClassifyRequest, v1::ClassifyResponse>(
      *dispatcher_, context, request, response, absl::OkStatus(),
      [core = core_](const v1::ClassifyRequest& r, const CallScope& s) {
        return core->Classify(r, s.executor, s.stop);
      },
      [this, &took_slot](const v1::ClassifyRequest& r) {
        if (!SmallEnoughInline(r)) return adapter::Lane::kPool;
        if (inline_calls_.fetch_add(1, std::memory_order_acq_rel) >= kMaxInlineCalls) {
          inline_calls_.fetch_sub(1, std::memory_order_acq_rel);
          return adapter::Lane::kPool;
        }
        took_slot = true;
        return adapter::Lane::kCaller;
      });
  if (took_slot) inline_calls_.fetch_sub(1, std::memory_order_acq_rel);
  return reactor;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
DiscriminativeServiceImpl::ClassifyStream(grpc::CallbackServerContext* context) {
  return adapter::Bidi<v1::ClassifyRequest, v1::ClassifyResponse>(
      *dispatcher_, context, [core = core_](const v1::ClassifyRequest& r, const CallScope& s) {
        return core->Classify(r, s.executor, s.stop);
      });
}

grpc::ServerUnaryReactor* DiscriminativeServiceImpl::Vectorize(grpc::CallbackServerContext* context,
                                                               const grpc::ByteBuffer* request,
                                                               grpc::ByteBuffer* response) {
  return adapter::Unary<v1::VectorizeRequest, v1::VectorizeResponse>(
      *dispatcher_, context, request, response, absl::OkStatus(),
      [core = core_](const v1::VectorizeRequest& r, const CallScope& s) {
        return core->Vectorize(r, s.stop);
      });
}

grpc::ServerReadReactor<grpc::ByteBuffer>* DiscriminativeServiceImpl::Evaluate(
    grpc::CallbackServerContext* context, grpc::ByteBuffer* response) {
  return adapter::ClientStream<v1::EvaluateRequest, v1::EvaluateResponse>(
      *dispatcher_, context, response, absl::OkStatus(), core_->StartEvaluate());
}

grpc::ServerUnaryReactor* DiscriminativeServiceImpl::GetModel(grpc::CallbackServerContext* context,
                                                              const grpc::ByteBuffer* request,
                                                              grpc::ByteBuffer* response) {
  return adapter::Unary<v1::GetModelRequest, v1::GetModelResponse>(
      *dispatcher_, context, request, response, absl::OkStatus(),
      [core = core_](const v1::GetModelRequest& r, const CallScope&) { return core->GetModel(r); });
}

grpc::ServerUnaryReactor* DiscriminativeServiceImpl::ListModels(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  // Metadata only (no model is loaded): inline, so a full pool never starves it.
  return adapter::Unary<common::v1::ListModelsRequest, common::v1::ListModelsResponse>(
      *dispatcher_, context, request, response, absl::OkStatus(),
      [core = core_](const common::v1::ListModelsRequest& r, const CallScope&) {
        return core->ListModels(r);
      },
      adapter::Lane::kInline, adapter::TooLargeAdvice::kListFewerModels);
}

grpc::ServerUnaryReactor* DiscriminativeServiceImpl::DeleteModel(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return adapter::Unary<common::v1::DeleteModelRequest, common::v1::DeleteModelResponse>(
      *dispatcher_, context, request, response, auth_->Check(*context),
      [core = core_](const common::v1::DeleteModelRequest& r, const CallScope& scope) {
        return core->DeleteModel(r, scope.stop);
      });
}

}  // namespace maas::discriminative
