// The gateway's backend channels: one channel per route, created once and shared by the proxy, the
// Gateway service and the health monitor (gRPC adapter layer).
#ifndef MAAS_SERVICES_GATEWAY_BACKENDS_H_
#define MAAS_SERVICES_GATEWAY_BACKENDS_H_

#include <grpcpp/channel.h>
#include <grpcpp/completion_queue.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "maas/gateway/v1/gateway.pb.h"
#include "services/gateway/router.h"

namespace maas::gateway {

// How the route channels are built.
struct ChannelOptions {
  // Retry policy for UNAVAILABLE on the idempotent methods of each route.
  RetryPolicy retry;
  // Largest message the gateway accepts from a backend, in bytes, > 0 (gRPC's default is 4 MiB).
  int max_receive_message_bytes = 4 * 1024 * 1024;
  // Keepalive ping interval on a connection with active calls, in ms, > 0. Backends must allow it
  // (their GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS must be <= this value).
  int keepalive_time_ms = 60 * 1000;
  // How long to wait for a keepalive ack before closing the connection, in ms, > 0.
  int keepalive_timeout_ms = 20 * 1000;
  // Credentials of the backend connections; nullptr = insecure (plaintext, e.g. behind a mesh).
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // HTTP/2 receive window of each backend stream, in bytes, >= 65535. Fixed (no BDP growth), so a
  // stream whose client stops reading holds at most about this much (plus one message) in the
  // gateway: the backend is read only as fast as the client drains.
  int stream_window_bytes = 256 * 1024;
  // Reconnect backoff after a failed connection attempt, in ms: first wait, and the cap. A local
  // backend that restarts is reached again within about max_reconnect_backoff_ms (the health
  // monitor also resets the backoff of an unhealthy route on every check).
  int initial_reconnect_backoff_ms = 100;
  int max_reconnect_backoff_ms = 1000;
  // Channels (each with its own connections) per route, >= 1; calls are spread over them.
  int channels_per_route = 2;
};

// Result of one health check of a route.
struct HealthResult {
  // SERVING or NOT_SERVING.
  maas::gateway::v1::BackendHealth health = maas::gateway::v1::BACKEND_HEALTH_UNKNOWN;
  // Why the backend is not serving; empty when it is.
  std::string detail;
};

// Thread-safe after construction.
class Backends {
 public:
  // Builds one channel per route with round_robin balancing, the retry policy (service config
  // validated by gRPC) and keepalive. INVALID_ARGUMENT for bad options or a rejected service
  // config. Channels connect lazily: a backend that is down is not an error here.
  static absl::StatusOr<std::unique_ptr<Backends>> Create(Router router,
                                                          const ChannelOptions& options);

  const Router& router() const { return router_; }
  std::size_t size() const { return routes_.size(); }
  const Route& route(std::size_t i) const { return router_.routes()[i]; }
  // The first channel of route i (for the Gateway service's own calls and health checks).
  const std::shared_ptr<grpc::Channel>& channel(std::size_t i) const {
    return routes_[i].channels.front();
  }
  // A generic stub of route i for one proxied call: the route's channels in turn.
  grpc::GenericStub& generic_stub(std::size_t i) const {
    const RouteChannels& r = routes_[i];
    if (r.stubs.size() == 1) return *r.stubs.front();
    const std::size_t k = r.next->fetch_add(1, std::memory_order_relaxed);
    return *r.stubs[k % r.stubs.size()];
  }

  // Makes every channel of route i retry its connections now (after a failed health check), so a
  // restarted backend is found without waiting out the reconnect backoff.
  void ResetConnectBackoff(std::size_t i) const;

  // Checks route i's backend with grpc.health.v1.Health/Check for the route's service name (falling
  // back to "", the whole server, when the backend does not know that name), within `timeout`, on
  // gRPC's asynchronous API: the calls complete on `cq`, whose tags are CompletionHandlers
  // (completion.h), and `done` runs exactly once on the thread draining `cq`. REQUIRES: `cq` is
  // drained by one thread and is not shut down before `done` has run.
  void CheckHealth(std::size_t i, absl::Duration timeout, grpc::CompletionQueue* cq,
                   std::function<void(HealthResult)> done) const;

  // Checks every route concurrently; `done` gets one result per route (in route order), on the
  // thread draining `cq` (at once on the calling thread when there is no route).
  void CheckAllHealth(absl::Duration timeout, grpc::CompletionQueue* cq,
                      std::function<void(std::vector<HealthResult>)> done) const;

 private:
  struct RouteChannels {
    std::vector<std::shared_ptr<grpc::Channel>> channels;
    std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
    std::unique_ptr<std::atomic<std::size_t>> next = std::make_unique<std::atomic<std::size_t>>(0);
  };

  Backends(Router router, std::vector<RouteChannels> routes)
      : router_(std::move(router)), routes_(std::move(routes)) {}

  Router router_;
  std::vector<RouteChannels> routes_;
};

}  // namespace maas::gateway

#endif  // MAAS_SERVICES_GATEWAY_BACKENDS_H_
