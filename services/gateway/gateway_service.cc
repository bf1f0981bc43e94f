#include "services/gateway/gateway_service.h"

#include <grpcpp/client_context.h>

#include <atomic>
#include <utility>

#include "common/server/server.h"
#include "common/status/grpc_status.h"
#include "maas/discriminative/v1/discriminative.grpc.pb.h"
#include "maas/generative/v1/generative.grpc.pb.h"
#include "services/gateway/model_list.h"

namespace maas::gateway {
namespace {

using maas::common::v1::ListModelsRequest;
using maas::common::v1::ListModelsResponse;

// The state of one ListModels fan-out; deleted by the last backend callback.
struct FanOut {
  grpc::ServerUnaryReactor* reactor = nullptr;
  grpc::CallbackServerContext* context = nullptr;
  CallLog* log = nullptr;
  std::optional<CallLog::Call> log_call;
  ListModelsResponse* response = nullptr;
  ListModelsRequest request;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<ListModelsResponse> responses;
  std::vector<grpc::Status> statuses;
  std::atomic<std::size_t> remaining{0};
};

}  // namespace

GatewayService::GatewayService(const Backends* backends, Options options)
    : backends_(backends), options_(options) {
  for (std::size_t i = 0; i < backends_->size(); ++i) {
    if (backends_->route(i).type == maas::common::v1::GENERATIVE) {
      auto stub = std::shared_ptr<maas::generative::v1::GenerativeService::Stub>(
          maas::generative::v1::GenerativeService::NewStub(backends_->channel(i)));
      stubs_.push_back(stub);
      list_models_.push_back([stub](grpc::ClientContext* ctx, const ListModelsRequest* req,
                                    ListModelsResponse* resp,
                                    std::function<void(grpc::Status)> done) {
        stub->async()->ListModels(ctx, req, resp, std::move(done));
      });
    } else {
      auto stub = std::shared_ptr<maas::discriminative::v1::DiscriminativeService::Stub>(
          maas::discriminative::v1::DiscriminativeService::NewStub(backends_->channel(i)));
      stubs_.push_back(stub);
      list_models_.push_back([stub](grpc::ClientContext* ctx, const ListModelsRequest* req,
                                    ListModelsResponse* resp,
                                    std::function<void(grpc::Status)> done) {
        stub->async()->ListModels(ctx, req, resp, std::move(done));
      });
    }
  }
}

std::optional<CallLog::Call> GatewayService::BeginLog(grpc::CallbackServerContext* context) const {
  if (options_.log == nullptr) return std::nullopt;
  CallLog::Call call = options_.log->Begin(context->client_metadata());
  if (call.generated_id) context->AddInitialMetadata(server::kRequestIdKey, call.request_id);
  return call;
}

namespace {

void EndLog(CallLog* log, const std::optional<CallLog::Call>& call,
            grpc::CallbackServerContext* context, absl::string_view method,
            const grpc::Status& status) {
  if (log != nullptr && call.has_value()) log->End(*call, method, status, context->peer(), "", 0);
}

constexpr char kListModelsMethod[] = "/maas.gateway.v1.Gateway/ListModels";
constexpr char kGetBackendsMethod[] = "/maas.gateway.v1.Gateway/GetBackends";

}  // namespace

grpc::ServerUnaryReactor* GatewayService::ListModels(grpc::CallbackServerContext* context,
                                                     const ListModelsRequest* request,
                                                     ListModelsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::optional<CallLog::Call> log_call = BeginLog(context);
  const std::size_t n = list_models_.size();
  if (n == 0) {
    EndLog(options_.log, log_call, context, kListModelsMethod, grpc::Status::OK);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  auto* fan = new FanOut;
  fan->reactor = reactor;
  fan->context = context;
  fan->log = options_.log;
  fan->log_call = std::move(log_call);
  fan->response = response;
  fan->request = *request;
  fan->responses.resize(n);
  fan->statuses.resize(n);
  fan->remaining.store(n, std::memory_order_relaxed);
  const auto deadline = absl::ToChronoTime(absl::Now() + options_.list_models_timeout);
  for (std::size_t i = 0; i < n; ++i) {
    // A child of the incoming call: the caller's deadline (if shorter) and cancellation apply.
    fan->contexts.push_back(grpc::ClientContext::FromCallbackServerContext(*context));
    fan->contexts.back()->set_deadline(deadline);
  }
  const Backends* backends = backends_;
  for (std::size_t i = 0; i < n; ++i) {
    list_models_[i](fan->contexts[i].get(), &fan->request, &fan->responses[i],
                    [fan, i, backends](grpc::Status status) {
                      fan->statuses[i] = std::move(status);
                      if (fan->remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
                      std::vector<BackendModels> lists;
                      for (std::size_t j = 0; j < fan->responses.size(); ++j) {
                        BackendModels b{backends->route(j), fan->responses[j]};
                        const grpc::Status& st = fan->statuses[j];
                        if (st.error_code() == grpc::StatusCode::UNAVAILABLE) {
                          // gRPC's message names internal addresses: say what it means instead.
                          b.result = absl::UnavailableError("no backend is reachable");
                        } else if (!st.ok()) {
                          b.result = FromGrpcStatus(st);
                        }
                        lists.push_back(std::move(b));
                      }
                      absl::StatusOr<ListModelsResponse> merged = MergeModelLists(std::move(lists));
                      if (merged.ok()) *fan->response = *std::move(merged);
                      const grpc::Status answer = ToGrpcStatus(merged.status());
                      EndLog(fan->log, fan->log_call, fan->context, kListModelsMethod, answer);
                      grpc::ServerUnaryReactor* r = fan->reactor;
                      delete fan;
                      r->Finish(answer);
                    });
  }
  return reactor;
}

grpc::ServerUnaryReactor* GatewayService::GetBackends(
    grpc::CallbackServerContext* context, const maas::gateway::v1::GetBackendsRequest* /*request*/,
    maas::gateway::v1::GetBackendsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const Backends* backends = backends_;
  CallLog* log = options_.log;
  backends_->CheckAllHealth(options_.health_check_timeout,
                            [reactor, response, backends, log, context,
                             log_call = BeginLog(context)](std::vector<HealthResult> results) {
                              for (std::size_t i = 0; i < results.size(); ++i) {
                                maas::gateway::v1::Backend* b = response->add_backends();
                                b->set_service(backends->route(i).service);
                                b->set_type(backends->route(i).type);
                                b->set_target(backends->route(i).target);
                                b->set_health(results[i].health);
                                b->set_detail(std::move(results[i].detail));
                              }
                              EndLog(log, log_call, context, kGetBackendsMethod, grpc::Status::OK);
                              reactor->Finish(grpc::Status::OK);
                            });
  return reactor;
}

}  // namespace maas::gateway
