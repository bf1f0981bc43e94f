// grpc.health.v1 served from a HealthBoard: gRPC's HealthCheckServiceInterface over the board (what
// the server kit's SetServing and Shutdown drive), and the Check / Watch calls answered from it by
// generic callback reactors, with the rules of gRPC's default health service (health_board.h) but
// one: at shutdown a Watch stream sends NOT_SERVING and then ends UNAVAILABLE. gRPC's default
// service kept it open until the server's shutdown cancelled it after the whole grace period, so
// one idle watcher (client-side health checking) held every server's exit that long (~20 s a pod in
// Kubernetes), and its log line blamed the client (CANCELLED).
//
//   health::HealthBoard board;
//   builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(
//       std::make_unique<BoardHealthService>(&board)));
//   // in a grpc::CallbackGenericService::CreateReactor:
//   if (IsHealthMethod(context->method())) return NewHealthReactor(context->method(), &board);
#ifndef MAAS_COMMON_SERVER_HEALTH_SERVICE_H_
#define MAAS_COMMON_SERVER_HEALTH_SERVICE_H_

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/health_check_service_interface.h>

#include <string>
#include <string_view>

#include "common/health/health_board.h"

namespace maas::server {

// The health service a server drives (SetServingStatus, Shutdown), backed by `board`, which must
// outlive it.
class BoardHealthService final : public grpc::HealthCheckServiceInterface {
 public:
  explicit BoardHealthService(health::HealthBoard* board) : board_(board) {}
  void SetServingStatus(const std::string& service_name, bool serving) override {
    board_->Set(service_name, serving);
  }
  void SetServingStatus(bool serving) override { board_->SetAll(serving); }
  void Shutdown() override { board_->Shutdown(); }

 private:
  health::HealthBoard* const board_;
};

// Whether `method` is /grpc.health.v1.Health/Check or /grpc.health.v1.Health/Watch.
bool IsHealthMethod(std::string_view method);

// The reactor of one Check or Watch call (REQUIRES IsHealthMethod(method)), answered from `board`,
// which must outlive the call; it deletes itself when the call is done. Check: the status, or
// NOT_FOUND for a name never set. Watch: the current status, then every update, then (after the
// board's Shutdown) UNAVAILABLE. A request that is missing or not a HealthCheckRequest:
// INVALID_ARGUMENT.
grpc::ServerGenericBidiReactor* NewHealthReactor(std::string_view method,
                                                 health::HealthBoard* board);

}  // namespace maas::server

#endif  // MAAS_COMMON_SERVER_HEALTH_SERVICE_H_
