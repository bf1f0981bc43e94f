// The transparent proxy: a generic gRPC service that forwards every call whose service has a route
// to the route's backend, byte for byte (gRPC adapter layer).
//
// Every method not claimed by a registered service (the Gateway service, health, reflection)
// reaches the proxy. For a routed method it opens a bidi generic call on the route's channel and
// pumps messages both ways with one outstanding read and one outstanding write per direction (so
// gRPC's flow control applies end to end). It forwards:
//   - client metadata, minus reserved headers (":*", "grpc-*", te, content-type, user-agent, host);
//   - the deadline and cancellation (the backend call is a child of the incoming call);
//   - the backend's initial metadata (as soon as it arrives, always before the first message),
//     trailing metadata and final status, unchanged.
// Unary, client-streaming, server-streaming and bidi calls are all bidi at this level. A method
// without a route gets UNIMPLEMENTED with Router::NoRouteMessage(). A call beyond
// Options::max_concurrent_calls gets RESOURCE_EXHAUSTED naming the flag. An UNAVAILABLE made by the
// gateway's own channel (backend unreachable, connection lost) is answered with a message naming
// the route, never the backend's address.
//
//   Proxy proxy(backends.get());
//   builder.RegisterCallbackGenericService(&proxy);
#ifndef MAAS_SERVICES_GATEWAY_PROXY_H_
#define MAAS_SERVICES_GATEWAY_PROXY_H_

#include <grpcpp/generic/async_generic_service.h>

#include <atomic>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "services/gateway/backends.h"
#include "services/gateway/reflection.h"

namespace maas::gateway {

// True for headers that gRPC or HTTP/2 own and a proxy must not copy from one call to another.
bool IsReservedHeader(absl::string_view key);

// Whether a method's client / server sends a stream (true) or exactly one message (false).
struct MethodKind {
  bool client_streaming = true;
  bool server_streaming = true;
};

// The message of the UNAVAILABLE answered when the backend of `service` cannot be reached.
std::string UnavailableMessage(absl::string_view service);

class Proxy final : public grpc::CallbackGenericService {
 public:
  struct Options {
    // Proxied calls in flight at once, over all connections, >= 1; more get RESOURCE_EXHAUSTED.
    int max_concurrent_calls = 4096;
    // Answers grpc.reflection.v1alpha locally when set (not owned; must outlive the proxy).
    const ReflectionResponder* reflection = nullptr;
  };

  // REQUIRES: `backends` outlives the proxy and the server it is registered with.
  // Learns each routed method's kind (unary, client/server/bidi stream) from the generated
  // descriptors linked into the binary: a call that sends or receives exactly one message is
  // forwarded with fewer operations. Methods it does not know are forwarded as bidi streams.
  explicit Proxy(const Backends* backends) : Proxy(backends, Options()) {}
  Proxy(const Backends* backends, Options options);

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

  // Proxied calls in flight now.
  int active_calls() const { return active_->load(std::memory_order_relaxed); }

 private:
  const Backends* const backends_;
  const Options options_;
  absl::flat_hash_map<std::string, MethodKind> method_kinds_;  // by path "/<service>/<method>"
  // Shared with the calls (a call may end after the proxy object is gone during shutdown).
  std::shared_ptr<std::atomic<int>> active_ = std::make_shared<std::atomic<int>>(0);
};

}  // namespace maas::gateway

#endif  // MAAS_SERVICES_GATEWAY_PROXY_H_
