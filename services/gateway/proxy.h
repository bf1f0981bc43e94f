// The transparent proxy: a generic gRPC service that forwards every call whose service has a route
// to the route's backend, byte for byte (gRPC adapter layer).
//
// Every method not claimed by a registered service reaches the proxy (the gateway registers none).
// For a routed method it opens a bidi generic call on the route's channel and pumps
// messages both ways with one outstanding read and one outstanding write per direction (so gRPC's
// flow control applies end to end). It forwards:
//   - client metadata, minus reserved headers (":*", "grpc-*", te, content-type, user-agent, host);
//   - the deadline and cancellation (the backend call is a child of the incoming call);
//   - the backend's initial metadata (as soon as it arrives, always before the first message),
//     trailing metadata and final status, unchanged.
// Unary, client-streaming, server-streaming and bidi calls are all bidi at this level. A method
// without a route gets UNIMPLEMENTED with Router::NoRouteMessage(). A call beyond
// Options::max_concurrent_calls gets RESOURCE_EXHAUSTED naming the flag. An UNAVAILABLE made by the
// gateway's own channel (backend unreachable, connection lost) is answered with a message naming
// the route, never the backend's address. Answered locally, on the same queues:
//   - grpc.reflection.v1alpha when Options::reflection is set;
//   - grpc.health.v1.Health Check and Watch when Options::health is set, with the statuses and
//     messages of gRPC's default health service (see health_board.h); a Watch stream sends the
//     current status, then every update, until the client cancels it or the server's shutdown
//     cancels it at the end of its grace period (it sees NOT_SERVING first);
//   - maas.gateway.v1.Gateway when Options::gateway is set (its backend calls too).
//
// Threads: the proxy runs on gRPC's asynchronous API, each call (its incoming side and its backend
// side) served start to end by one of Options::threads threads, each draining its own completion
// queue. gRPC's callback API instead hands every completion between two internal threads (a futex
// wake and a context switch per step of a call), which cost a proxied call ~40% more CPU; and any
// callback-API user in the process (e.g. gRPC's default health service) brings those threads back
// into the poller the proxy's threads use, so the gateway has none: health, the Gateway service
// and the backend health checks (health_monitor.h) all run on the asynchronous API (measured:
// 18-32% less CPU per proxied call than with them on the callback API).
//
//   HealthBoard health;                          // what grpc.health.v1 answers
//   GatewayService gateway(backends.get(), {});  // maas.gateway.v1.Gateway
//   options.health = &health;
//   options.gateway = &gateway;
//   Proxy proxy(backends.get(), options);
//   proxy.Register(builder);          // before BuildAndStart
//   server = builder.BuildAndStart();
//   proxy.Start();
//   ...
//   health.Shutdown();                // (the server kit: every name NOT_SERVING, then drain)
//   server->Shutdown();               // waits for the calls in flight, cancels Watch streams
//   proxy.Shutdown();                 // then drains the queues and joins the threads
#ifndef MAAS_SERVICES_GATEWAY_PROXY_H_
#define MAAS_SERVICES_GATEWAY_PROXY_H_

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/server_builder.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/health/health_board.h"
#include "services/gateway/backends.h"
#include "services/gateway/call_log.h"
#include "services/gateway/gateway_service.h"
#include "services/gateway/reflection.h"

namespace maas::gateway {

using health::HealthBoard;
using health::ServingStatus;

// True for headers that gRPC or HTTP/2 own and a proxy must not copy from one call to another.
bool IsReservedHeader(absl::string_view key);

// False for a request header gRPC's client side would refuse to send (a name outside lower-case
// [0-9a-z_.-], a value outside printable ASCII for a name not ending in -bin): gRPC's server side
// accepts some. Reserved headers (not forwarded) are true.
bool ForwardableHeader(absl::string_view key, absl::string_view value);

// Whether a method's client / server sends a stream (true) or exactly one message (false).
struct MethodKind {
  bool client_streaming = true;
  bool server_streaming = true;
};

// Short names of the methods of `service` (fully qualified) whose server sends exactly one message
// (unary, client streaming), from the generated descriptors linked into the gateway; empty for a
// service it has no descriptor of. For the h2 front (FrontRoute::single_response_methods).
std::vector<std::string> SingleResponseMethods(absl::string_view service);

// The message of the UNAVAILABLE answered when the backend of `service` cannot be reached.
std::string UnavailableMessage(absl::string_view service);

class Proxy final {
 public:
  struct Options {
    // Proxied calls in flight at once, over all connections, >= 1; more get RESOURCE_EXHAUSTED.
    int max_concurrent_calls = 4096;
    // Answers grpc.reflection.v1alpha locally when set (not owned; must outlive the proxy).
    const ReflectionResponder* reflection = nullptr;
    // Gets one line per call (proxied, reflection, refused) when set (not owned; must outlive the
    // proxy). A call without x-request-id gets a generated one, forwarded to the backend and
    // returned in the initial metadata.
    CallLog* log = nullptr;
    // Threads serving calls, each with its own completion queue, in [1, 64]. One is the cheapest
    // per call; more spread calls over more cores.
    int threads = 1;
    // When set, grpc.health.v1.Health (Check and Watch) is answered locally from this board, and
    // Register() makes the server's health service (the one Server::GetHealthCheckService() returns
    // and the server kit drives) write to it instead of running gRPC's default health service.
    // Not owned; must outlive the server. Health calls are not logged.
    HealthBoard* health = nullptr;
    // When set, maas.gateway.v1.Gateway is answered locally by it (not owned; must outlive the
    // proxy).
    const GatewayService* gateway = nullptr;
    // When non-empty, a call's log line names the peer this request header carries, when present,
    // instead of the connection's: set when the h2 front serves the public port and reaches this
    // server on loopback (FrontOptions::client_peer_header, which it also strips from clients).
    std::string client_peer_header;
    // When front_key is non-empty, only calls whose request header `front_key_header` holds
    // exactly front_key are served (health included); any other gets UNAUTHENTICATED and the
    // header is never forwarded. Set when the h2 front serves the public port: the loopback gRPC
    // server behind it must not be a way around the front's TLS and client certificates (any
    // local process can reach a loopback port), nor let a caller name its own peer.
    std::string front_key_header;
    std::string front_key;
  };

  // REQUIRES: `backends` outlives the proxy and the server it is registered with.
  // Learns each routed method's kind (unary, client/server/bidi stream) from the generated
  // descriptors linked into the binary: a call that sends or receives exactly one message is
  // forwarded with fewer operations. Methods it does not know are forwarded as bidi streams.
  explicit Proxy(const Backends* backends) : Proxy(backends, Options()) {}
  Proxy(const Backends* backends, Options options);
  // REQUIRES: Shutdown() was called if Start() was.
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Registers the proxy as `builder`'s generic service and adds its completion queues. Once, before
  // the server is built.
  void Register(grpc::ServerBuilder& builder);
  // Starts serving calls, once the server is built and started.
  void Start();
  // Waits until every accepted call has ended (the server's shutdown cancels those that outlive its
  // grace period), then drains the completion queues and joins the threads. REQUIRES: the server
  // has shut down (its Shutdown() returned) and is not yet destroyed. Idempotent.
  void Shutdown();

  // Proxied calls in flight now.
  int active_calls() const { return active_.load(std::memory_order_relaxed); }
  // Accepted calls of every kind (proxied, health, Gateway service) not yet ended: what Shutdown
  // waits for.
  int live_calls() const {
    absl::MutexLock lock(&mu_);
    return live_calls_;
  }

 private:
  friend class ProxyCall;
  struct Lane {
    std::unique_ptr<grpc::ServerCompletionQueue> cq;
    std::thread thread;
  };

  const Backends* const backends_;
  const Options options_;
  absl::flat_hash_map<std::string, MethodKind> method_kinds_;  // by path "/<service>/<method>"
  grpc::AsyncGenericService service_;
  std::vector<Lane> lanes_;
  bool started_ = false;
  bool shut_down_ = false;
  std::atomic<int> active_{0};  // proxied calls in flight
  mutable absl::Mutex mu_;
  int live_calls_ ABSL_GUARDED_BY(mu_) = 0;  // accepted calls not yet deleted
};

}  // namespace maas::gateway

#endif  // MAAS_SERVICES_GATEWAY_PROXY_H_
