#include "services/gateway/gateway_service.h"

#include <grpcpp/client_context.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/registry/list_page.h"
#include "common/status/grpc_status.h"
#include "maas/common/v1/common.pb.h"
#include "maas/gateway/v1/gateway.pb.h"
#include "common/adapter/byte_buffers.h"
#include "services/gateway/completion.h"
#include "services/gateway/model_list.h"

namespace maas::gateway {

using adapter::ByteBufferFromString;
using adapter::ByteBufferToString;
namespace {

using maas::common::v1::ListModelsRequest;
using maas::common::v1::ListModelsResponse;

// One ListModels fan-out: a unary call to every route's backend, all completing on one queue (so on
// one thread: no lock). Deletes itself after calling `done`.
class FanOut {
 public:
  FanOut(const Backends* backends, ListModelsRequest request, int64_t max_bytes,
         GatewayService::Done done)
      : backends_(backends),
        parsed_(std::move(request)),
        max_bytes_(max_bytes),
        done_(std::move(done)),
        calls_(backends->size()) {}

  void Start(const std::string& request, const grpc::ServerContextBase& incoming,
             absl::Duration timeout, grpc::CompletionQueue* cq) {
    request_ = ByteBufferFromString(request);
    remaining_ = calls_.size();
    const auto deadline = absl::ToChronoTime(absl::Now() + timeout);
    for (std::size_t i = 0; i < calls_.size(); ++i) {
      Call& call = calls_[i];
      call.fan = this;
      // A child of the incoming call: the caller's deadline (if shorter) and cancellation apply.
      call.context = grpc::ClientContext::FromServerContext(incoming);
      call.context->set_deadline(deadline);
      call.reader = backends_->generic_stub(i).PrepareUnaryCall(
          call.context.get(), absl::StrCat("/", backends_->route(i).service, "/ListModels"),
          request_, cq);
      call.reader->StartCall();
      call.reader->Finish(&call.response, &call.status, &call);
    }
  }

 private:
  struct Call final : CompletionHandler {
    void OnComplete(bool /*ok*/) override { fan->OnCallDone(); }
    FanOut* fan = nullptr;
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
    grpc::ByteBuffer response;
    grpc::Status status;
  };

  void OnCallDone() {
    if (--remaining_ != 0) return;
    std::vector<BackendModels> lists;
    for (std::size_t i = 0; i < calls_.size(); ++i) {
      BackendModels b{backends_->route(i), ListModelsResponse()};
      const grpc::Status& st = calls_[i].status;
      if (st.error_code() == grpc::StatusCode::UNAVAILABLE) {
        // gRPC's message names internal addresses: say what it means instead.
        b.result = absl::UnavailableError("no backend is reachable");
      } else if (!st.ok()) {
        b.result = FromGrpcStatus(st);
      } else if (!b.result->ParseFromString(ByteBufferToString(calls_[i].response))) {
        b.result = absl::InternalError("the backend sent a ListModelsResponse that does not parse");
      }
      lists.push_back(std::move(b));
    }
    absl::StatusOr<ListModelsResponse> merged =
        MergeModelLists(parsed_, std::move(lists), max_bytes_);
    std::string response;
    if (merged.ok()) response = merged->SerializeAsString();
    GatewayService::Done done = std::move(done_);
    const grpc::Status answer = ToGrpcStatus(merged.status());
    delete this;
    done(answer, std::move(response));
  }

  const Backends* const backends_;
  const ListModelsRequest parsed_;
  const int64_t max_bytes_;
  GatewayService::Done done_;
  grpc::ByteBuffer request_;
  std::vector<Call> calls_;
  std::size_t remaining_ = 0;
};

}  // namespace

GatewayService::GatewayService(const Backends* backends, Options options)
    : backends_(backends), options_(options) {}

bool GatewayService::Serves(absl::string_view method) {
  return method == kListModelsMethod || method == kGetBackendsMethod;
}

void GatewayService::Answer(absl::string_view method, const std::string& request,
                            const grpc::ServerContextBase& incoming, grpc::CompletionQueue* cq,
                            Done done) const {
  if (method == kListModelsMethod) {
    ListModels(request, incoming, cq, std::move(done));
  } else {
    GetBackends(request, cq, std::move(done));
  }
}

void GatewayService::ListModels(const std::string& request, const grpc::ServerContextBase& incoming,
                                grpc::CompletionQueue* cq, Done done) const {
  ListModelsRequest parsed;
  if (!parsed.ParseFromString(request)) {
    done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      "the request is not a serialized maas.common.v1.ListModelsRequest"),
         "");
    return;
  }
  // A page_token or page_size every backend would refuse: said once, by the gateway.
  if (absl::StatusOr<registry::ListPaging> paging = registry::ParseListPaging(parsed);
      !paging.ok()) {
    done(ToGrpcStatus(paging.status()), "");
    return;
  }
  if (backends_->size() == 0) {
    done(grpc::Status::OK, ListModelsResponse().SerializeAsString());
    return;
  }
  // The backends get the caller's request (their ListModels takes the same message), with pages
  // no larger than the gateway can receive and send: a service cuts its pages to its own
  // --max_message_bytes, which can be larger (a gateway answered such pages OK, empty, without a
  // token).
  std::string forwarded = request;
  if (parsed.page_size() > 0 && options_.max_message_bytes > 0 &&
      (parsed.max_page_bytes() == 0 || options_.max_message_bytes < parsed.max_page_bytes())) {
    parsed.set_max_page_bytes(options_.max_message_bytes);
    forwarded = parsed.SerializeAsString();
  }
  (new FanOut(backends_, std::move(parsed), options_.max_message_bytes, std::move(done)))
      ->Start(forwarded, incoming, options_.list_models_timeout, cq);
}

void GatewayService::GetBackends(const std::string& request, grpc::CompletionQueue* cq,
                                 Done done) const {
  if (maas::gateway::v1::GetBackendsRequest parsed; !parsed.ParseFromString(request)) {
    done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      "the request is not a serialized maas.gateway.v1.GetBackendsRequest"),
         "");
    return;
  }
  const Backends* backends = backends_;
  backends_->CheckAllHealth(options_.health_check_timeout, cq,
                            [backends, done = std::move(done)](std::vector<HealthResult> results) {
                              maas::gateway::v1::GetBackendsResponse response;
                              for (std::size_t i = 0; i < results.size(); ++i) {
                                maas::gateway::v1::Backend* b = response.add_backends();
                                b->set_service(backends->route(i).service);
                                b->set_type(backends->route(i).type);
                                b->set_target(backends->route(i).target);
                                b->set_health(results[i].health);
                                b->set_detail(std::move(results[i].detail));
                              }
                              done(grpc::Status::OK, response.SerializeAsString());
                            });
}

}  // namespace maas::gateway
