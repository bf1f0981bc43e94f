#include "services/gateway/router.h"

#include <cmath>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace maas::gateway {
namespace {

using maas::common::v1::ModelType;

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.';
}

bool IsValidName(absl::string_view name) {
  if (name.empty() || name.front() == '.' || name.back() == '.') return false;
  for (char c : name) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

// Splits "/<service>/<method>" without allocating; false when malformed.
bool SplitPath(absl::string_view path, absl::string_view* service, absl::string_view* method) {
  if (path.size() < 4 || path.front() != '/') return false;
  absl::string_view rest = path.substr(1);
  const std::size_t slash = rest.find('/');
  if (slash == absl::string_view::npos) return false;
  *service = rest.substr(0, slash);
  *method = rest.substr(slash + 1);
  return IsValidName(*service) && IsValidName(*method) &&
         method->find('.') == absl::string_view::npos;
}

// A duration in the proto3 JSON form the service config expects, e.g. "0.050s".
std::string JsonDuration(int ms) { return absl::StrFormat("%d.%03ds", ms / 1000, ms % 1000); }

}  // namespace

std::vector<Route> DefaultRoutes(const std::string& generative_target,
                                 const std::string& discriminative_target) {
  std::vector<Route> routes(2);
  routes[0].service = kGenerativeService;
  routes[0].type = maas::common::v1::GENERATIVE;
  routes[0].target = generative_target;
  routes[0].non_idempotent_methods = {"CreateModel", "FitModel", "DeleteModel"};
  routes[1].service = kDiscriminativeService;
  routes[1].type = maas::common::v1::DISCRIMINATIVE;
  routes[1].target = discriminative_target;
  routes[1].non_idempotent_methods = {"CreateModel", "Train", "DeleteModel"};
  return routes;
}

absl::StatusOr<MethodName> ParseMethodName(absl::string_view path) {
  absl::string_view service;
  absl::string_view method;
  if (!SplitPath(path, &service, &method)) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed gRPC method name '", absl::CHexEscape(path.substr(0, 256)),
                     "': expected /<package>.<Service>/<Method> with names made of [A-Za-z0-9_.]"));
  }
  return MethodName{std::string(service), std::string(method)};
}

absl::StatusOr<std::string> ServiceConfigJson(const Route& route, const RetryPolicy& policy) {
  if (!IsValidName(route.service)) {
    return absl::InvalidArgumentError(absl::StrCat("route service name '",
                                                   absl::CHexEscape(route.service),
                                                   "' is not a fully qualified gRPC service name"));
  }
  for (const std::string& m : route.non_idempotent_methods) {
    if (!IsValidName(m) || m.find('.') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("non-idempotent method name '",
                                                     absl::CHexEscape(m), "' of route ",
                                                     route.service, " is not a method name"));
    }
  }
  if (policy.max_attempts < 1 || policy.max_attempts > 5) {
    return absl::InvalidArgumentError(absl::StrCat(
        "retry max_attempts must be in [1, 5] (1 = no retries), got ", policy.max_attempts));
  }
  if (policy.initial_backoff_ms <= 0 || policy.max_backoff_ms < policy.initial_backoff_ms) {
    return absl::InvalidArgumentError(
        absl::StrCat("retry backoff must satisfy 0 < initial_backoff_ms <= max_backoff_ms, got ",
                     policy.initial_backoff_ms, " and ", policy.max_backoff_ms));
  }
  if (!std::isfinite(policy.backoff_multiplier) || policy.backoff_multiplier < 1.0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "retry backoff_multiplier must be finite and >= 1, got ", policy.backoff_multiplier));
  }
  std::vector<std::string> method_configs;
  if (policy.max_attempts >= 2) {
    method_configs.push_back(absl::StrFormat(
        R"({"name":[{"service":"%s"}],"retryPolicy":{"maxAttempts":%d,"initialBackoff":"%s",)"
        R"("maxBackoff":"%s","backoffMultiplier":%g,"retryableStatusCodes":["UNAVAILABLE"]}})",
        route.service, policy.max_attempts, JsonDuration(policy.initial_backoff_ms),
        JsonDuration(policy.max_backoff_ms), policy.backoff_multiplier));
    if (!route.non_idempotent_methods.empty()) {
      // A name with a method is more specific than the service-wide one: no retryPolicy here.
      std::vector<std::string> names;
      for (const std::string& m : route.non_idempotent_methods) {
        names.push_back(absl::StrFormat(R"({"service":"%s","method":"%s"})", route.service, m));
      }
      method_configs.push_back(absl::StrCat(R"({"name":[)", absl::StrJoin(names, ","), "]}"));
    }
  }
  return absl::StrCat(R"({"loadBalancingConfig":[{"round_robin":{}}],"methodConfig":[)",
                      absl::StrJoin(method_configs, ","), "]}");
}

absl::StatusOr<Router> Router::Create(std::vector<Route> routes) {
  std::set<std::string> seen;
  for (const Route& r : routes) {
    if (!IsValidName(r.service) || r.service.find('.') == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("route service name '", absl::CHexEscape(r.service),
                       "' is not a fully qualified gRPC service name (<package>.<Service>)"));
    }
    if (r.target.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("route ", r.service, " has an empty target"));
    }
    if (r.type != maas::common::v1::GENERATIVE && r.type != maas::common::v1::DISCRIMINATIVE) {
      return absl::InvalidArgumentError(absl::StrCat("route ", r.service, " has model type ",
                                                     ModelType_Name(r.type),
                                                     "; expected GENERATIVE or DISCRIMINATIVE"));
    }
    if (!seen.insert(r.service).second) {
      return absl::InvalidArgumentError(absl::StrCat("service ", r.service, " is routed twice"));
    }
  }
  return Router(std::move(routes));
}

std::optional<std::size_t> Router::Find(absl::string_view path) const {
  absl::string_view service;
  absl::string_view method;
  if (!SplitPath(path, &service, &method)) return std::nullopt;
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    if (routes_[i].service == service) return i;
  }
  return std::nullopt;
}

std::optional<std::size_t> Router::FindByType(ModelType type) const {
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    if (routes_[i].type == type) return i;
  }
  return std::nullopt;
}

std::string Router::NoRouteMessage(absl::string_view path) const {
  std::vector<std::string> services;
  for (const Route& r : routes_) services.push_back(r.service);
  const std::string routed = services.empty()
                                 ? std::string("no service")
                                 : absl::StrCat("only ", absl::StrJoin(services, " and "));
  absl::string_view service;
  absl::string_view method;
  const std::string escaped = absl::CHexEscape(path.substr(0, 256));
  if (!SplitPath(path, &service, &method)) {
    return absl::StrCat("no route for malformed method name '", escaped,
                        "' (expected /<package>.<Service>/<Method>); the gateway routes ", routed);
  }
  return absl::StrCat("no route for service ", service, " (method ", escaped,
                      "); the gateway routes ", routed);
}

}  // namespace maas::gateway
