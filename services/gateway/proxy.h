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
// without a route gets UNIMPLEMENTED with Router::NoRouteMessage().
//
//   Proxy proxy(backends.get());
//   builder.RegisterCallbackGenericService(&proxy);
#ifndef MAAS_SERVICES_GATEWAY_PROXY_H_
#define MAAS_SERVICES_GATEWAY_PROXY_H_

#include <grpcpp/generic/async_generic_service.h>

#include "absl/strings/string_view.h"
#include "services/gateway/backends.h"

namespace maas::gateway {

// True for headers that gRPC or HTTP/2 own and a proxy must not copy from one call to another.
bool IsReservedHeader(absl::string_view key);

class Proxy final : public grpc::CallbackGenericService {
 public:
  // REQUIRES: `backends` outlives the proxy and the server it is registered with.
  explicit Proxy(const Backends* backends) : backends_(backends) {}

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

 private:
  const Backends* const backends_;
};

}  // namespace maas::gateway

#endif  // MAAS_SERVICES_GATEWAY_PROXY_H_
