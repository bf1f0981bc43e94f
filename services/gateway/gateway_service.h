// maas.gateway.v1.Gateway: the model registry across backends and the backends' health (gRPC
// adapter; the merge itself is MergeModelLists in model_list.h).
//
// It is not a registered gRPC service: the proxy answers its methods on its own completion queues
// (Proxy::Options::gateway), from the request bytes, and this class turns those bytes into the
// response bytes, calling the backends on gRPC's asynchronous API on the same queue. No gRPC
// callback-API user then runs in the gateway process (its threads would share the poller with the
// proxy and cost every proxied call more CPU).
#ifndef MAAS_SERVICES_GATEWAY_GATEWAY_SERVICE_H_
#define MAAS_SERVICES_GATEWAY_GATEWAY_SERVICE_H_

#include <grpcpp/completion_queue.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/gateway/backends.h"

namespace maas::gateway {

// The service's full name, and the paths of its methods.
inline constexpr char kGatewayService[] = "maas.gateway.v1.Gateway";
inline constexpr char kListModelsMethod[] = "/maas.gateway.v1.Gateway/ListModels";
inline constexpr char kGetBackendsMethod[] = "/maas.gateway.v1.Gateway/GetBackends";

// Thread-safe: Answer may run on several queues at once.
class GatewayService final {
 public:
  struct Options {
    // Longest time ListModels waits for the backends (the caller's deadline applies if shorter).
    absl::Duration list_models_timeout = absl::Seconds(10);
    // Deadline of each backend health check made by GetBackends.
    absl::Duration health_check_timeout = absl::Seconds(1);
    // Largest ListModels answer (--max_message_bytes; 0: no limit): pages are cut to fit in it,
    // and an unpaged list above it is refused, saying to page.
    int64_t max_message_bytes = 0;
  };

  // REQUIRES: `backends` outlives the service.
  GatewayService(const Backends* backends, Options options);

  // True for the paths Answer serves (kListModelsMethod, kGetBackendsMethod).
  static bool Serves(absl::string_view method);

  // The final status and, when it is OK, the serialized response message.
  using Done = std::function<void(grpc::Status status, std::string response)>;

  // Answers one unary call of `method` (REQUIRES: Serves(method)) whose serialized request is
  // `request`; `incoming` is the caller's server context (its deadline and cancellation reach the
  // backend calls ListModels makes). The backend calls complete on `cq`, whose tags are
  // CompletionHandlers (completion.h); `done` runs exactly once, on the thread draining `cq` (or on
  // the calling thread for a request that does not parse: INVALID_ARGUMENT naming the message).
  // REQUIRES: `cq` is drained by one thread and not shut down before `done` has run; `incoming`
  // outlives `done`.
  //
  //   ListModels: calls ListModels on every route's backend concurrently (same request) and merges
  //     the answers (MergeModelLists): sorted by name then version, each ModelInfo with its type. A
  //     backend that is down leaves its models out and is named in missing_backends (see
  //     MergeModelLists for when the whole call fails).
  //   GetBackends: one Backend per route (service, type, target) with a fresh grpc.health.v1 check.
  void Answer(absl::string_view method, const std::string& request,
              const grpc::ServerContextBase& incoming, grpc::CompletionQueue* cq, Done done) const;

 private:
  void ListModels(const std::string& request, const grpc::ServerContextBase& incoming,
                  grpc::CompletionQueue* cq, Done done) const;
  void GetBackends(const std::string& request, grpc::CompletionQueue* cq, Done done) const;

  const Backends* const backends_;
  const Options options_;
};

}  // namespace maas::gateway

#endif  // MAAS_SERVICES_GATEWAY_GATEWAY_SERVICE_H_
