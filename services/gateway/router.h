// Routing table of the gateway (transport-free): which backend serves a gRPC method.
//
// A method name has the HTTP/2 path form "/<package>.<Service>/<Method>". The gateway routes by the
// service part: every method of "maas.generative.v1.GenerativeService" goes to the generative
// route, every method of "maas.discriminative.v1.DiscriminativeService" to the discriminative
// route, anything else has no route.
//
//   MAAS_ASSIGN_OR_RETURN(Router router, Router::Create(DefaultRoutes(gen_target, disc_target)));
//   std::optional<size_t> i = router.Find("/maas.generative.v1.GenerativeService/Sample");
#ifndef MAAS_SERVICES_GATEWAY_ROUTER_H_
#define MAAS_SERVICES_GATEWAY_ROUTER_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "maas/common/v1/common.pb.h"

namespace maas::gateway {

// Fully qualified names of the routed services.
inline constexpr char kGenerativeService[] = "maas.generative.v1.GenerativeService";
inline constexpr char kDiscriminativeService[] = "maas.discriminative.v1.DiscriminativeService";

// One route: every method of `service` is forwarded to the channel target `target`.
struct Route {
  // Fully qualified gRPC service name, e.g. "maas.generative.v1.GenerativeService".
  std::string service;
  // The model type served by the route (GENERATIVE or DISCRIMINATIVE).
  maas::common::v1::ModelType type = maas::common::v1::MODEL_TYPE_UNSPECIFIED;
  // gRPC channel target, e.g. "dns:///generative:50052" or "ipv4:127.0.0.1:50052,127.0.0.1:50062".
  std::string target;
  // Methods (short names, e.g. "CreateModel") that change state and are therefore never retried.
  std::vector<std::string> non_idempotent_methods;
};

// The two standard routes. Non-idempotent methods: CreateModel, FitModel/Train, DeleteModel.
std::vector<Route> DefaultRoutes(const std::string& generative_target,
                                 const std::string& discriminative_target);

// The two parts of a method path "/<service>/<method>".
struct MethodName {
  std::string service;
  std::string method;
};

// Parses "/<service>/<method>". INVALID_ARGUMENT (with the offending name) when the path does not
// start with '/', has an empty part, more than two parts, or characters outside [A-Za-z0-9_.].
absl::StatusOr<MethodName> ParseMethodName(absl::string_view path);

// Retry policy applied to the idempotent methods of every route (gRPC service config retryPolicy).
struct RetryPolicy {
  // Total attempts including the first one, in [2, 5] (gRPC caps at 5). 1 disables retries.
  int max_attempts = 3;
  // Backoff before the first retry, > 0.
  int initial_backoff_ms = 50;
  // Upper bound of the backoff, >= initial_backoff_ms.
  int max_backoff_ms = 1000;
  // Growth factor of the backoff, >= 1.
  double backoff_multiplier = 2.0;
};

// The gRPC service config JSON of a route's channel: round_robin balancing and, for every method of
// the route except its non-idempotent ones, a retryPolicy on UNAVAILABLE. INVALID_ARGUMENT for a
// bad policy or route (e.g. an empty or malformed service name).
absl::StatusOr<std::string> ServiceConfigJson(const Route& route, const RetryPolicy& policy);

// An immutable routing table, safe for concurrent use.
class Router {
 public:
  // Validates the routes: each has a well-formed service name (as in ParseMethodName), a non-empty
  // target and a type other than MODEL_TYPE_UNSPECIFIED; services are unique. INVALID_ARGUMENT
  // otherwise.
  static absl::StatusOr<Router> Create(std::vector<Route> routes);

  // Index (into routes()) of the route serving the method path `path`, or nullopt when the path is
  // malformed or its service has no route.
  std::optional<std::size_t> Find(absl::string_view path) const;

  // Index of the route of `type`, or nullopt (the first one if several serve the type).
  std::optional<std::size_t> FindByType(maas::common::v1::ModelType type) const;

  // Message of the UNIMPLEMENTED status answered for a path without a route, e.g.
  // "no route for service foo.Bar (method /foo.Bar/Baz); the gateway routes
  // maas.generative.v1.GenerativeService and maas.discriminative.v1.DiscriminativeService".
  std::string NoRouteMessage(absl::string_view path) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  explicit Router(std::vector<Route> routes) : routes_(std::move(routes)) {}

  std::vector<Route> routes_;
};

}  // namespace maas::gateway

#endif  // MAAS_SERVICES_GATEWAY_ROUTER_H_
