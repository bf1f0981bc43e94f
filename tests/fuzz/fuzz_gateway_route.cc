// Fuzz target: the gateway's routing of arbitrary method paths (as a client can send any :path).
// Invariants: a path is routed only if it parses as "/<service>/<method>" and names a routed
// service; the "no route" message never exceeds a bounded size whatever the path.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "services/gateway/router.h"
#include "tests/fuzz/fuzz_input.h"

namespace maas::fuzz {

std::vector<std::string> MaasFuzzSeeds() {
  return {
      "/maas.generative.v1.GenerativeService/Sample",
      "/maas.discriminative.v1.DiscriminativeService/Classify",
      "/maas.gateway.v1.Gateway/ListModels",
      "/grpc.health.v1.Health/Check",
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      "//",
      "/a/b/c",
      "maas.generative.v1.GenerativeService/Sample",
      std::string("/maas.generative.v1.GenerativeService\0/Sample", 45),
  };
}

}  // namespace maas::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace maas::gateway;
  static const Router* router = [] {
    auto created = Router::Create(DefaultRoutes("ipv4:127.0.0.1:1", "ipv4:127.0.0.1:2"));
    if (!created.ok()) std::abort();
    return new Router(*std::move(created));
  }();
  const absl::string_view path(reinterpret_cast<const char*>(data), size);
  const auto parsed = ParseMethodName(path);
  const auto route = router->Find(path);
  if (route.has_value() && !parsed.ok()) std::abort();
  if (route.has_value() && *route >= router->routes().size()) std::abort();
  if (!route.has_value()) {
    const std::string message = router->NoRouteMessage(path);
    if (message.size() > 4096) std::abort();
  }
  return 0;
}
