// maas.gateway.v1.Gateway: the model registry across backends and the backends' health (gRPC
// adapter; the merge itself is MergeModelLists in model_list.h).
#ifndef MAAS_SERVICES_GATEWAY_GATEWAY_SERVICE_H_
#define MAAS_SERVICES_GATEWAY_GATEWAY_SERVICE_H_

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/time/time.h"
#include "maas/gateway/v1/gateway.grpc.pb.h"
#include "services/gateway/backends.h"
#include "services/gateway/call_log.h"

namespace maas::gateway {

class GatewayService final : public maas::gateway::v1::Gateway::CallbackService {
 public:
  struct Options {
    // Longest time ListModels waits for the backends (the caller's deadline applies if shorter).
    absl::Duration list_models_timeout = absl::Seconds(10);
    // Deadline of each backend health check made by GetBackends.
    absl::Duration health_check_timeout = absl::Seconds(1);
    // Gets one line per call when set (not owned; must outlive the service).
    CallLog* log = nullptr;
  };

  // REQUIRES: `backends` outlives the service.
  GatewayService(const Backends* backends, Options options);

  // Calls ListModels on every route's backend concurrently (same request, the caller's deadline and
  // cancellation) and merges the answers (MergeModelLists): sorted by name then version, each
  // ModelInfo with its type. A backend that is down leaves its models out and is named in
  // missing_backends (see MergeModelLists for when the whole call fails).
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const maas::common::v1::ListModelsRequest* request,
                                       maas::common::v1::ListModelsResponse* response) override;

  // One Backend per route (service, type, target) with a fresh grpc.health.v1 check.
  grpc::ServerUnaryReactor* GetBackends(grpc::CallbackServerContext* context,
                                        const maas::gateway::v1::GetBackendsRequest* request,
                                        maas::gateway::v1::GetBackendsResponse* response) override;

 private:
  // Starts the log line of a call (nullopt when there is no log), returning a generated request id
  // to the client.
  std::optional<CallLog::Call> BeginLog(grpc::CallbackServerContext* context) const;

  // Starts ListModels on one backend; `done` runs once on a gRPC callback thread.
  using ListModelsCall = std::function<void(
      grpc::ClientContext*, const maas::common::v1::ListModelsRequest*,
      maas::common::v1::ListModelsResponse*, std::function<void(grpc::Status)> done)>;

  const Backends* const backends_;
  const Options options_;
  std::vector<std::shared_ptr<void>> stubs_;  // keeps the generated stubs alive
  std::vector<ListModelsCall> list_models_;   // one per route
};

}  // namespace maas::gateway

#endif  // MAAS_SERVICES_GATEWAY_GATEWAY_SERVICE_H_
