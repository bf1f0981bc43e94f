// A complete in-process gateway (router, backend channels, proxy answering the Gateway service and
// grpc.health.v1) on an ephemeral port, for the gateway tests.
#ifndef MAAS_TESTS_SERVICES_GATEWAY_TEST_GATEWAY_H_
#define MAAS_TESTS_SERVICES_GATEWAY_TEST_GATEWAY_H_

#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "common/health/health_board.h"
#include "maas/gateway/v1/gateway.grpc.pb.h"
#include "services/gateway/backends.h"
#include "services/gateway/gateway_service.h"
#include "services/gateway/proxy.h"
#include "services/gateway/router.h"
#include "tests/services/gateway/fake_backends.h"

namespace maas::gateway::testing {

// A gateway in front of two targets; `channel` reaches it, `stub` is its own
// maas.gateway.v1.Gateway.
struct TestGateway {
  TestGateway(const std::string& generative_target, const std::string& discriminative_target,
              GatewayService::Options options = GatewayService::Options(),
              Proxy::Options proxy_options = Proxy::Options()) {
    absl::StatusOr<Router> router =
        Router::Create(DefaultRoutes(generative_target, discriminative_target));
    REQUIRE(router.ok());
    absl::StatusOr<std::unique_ptr<Backends>> b = Backends::Create(*router, ChannelOptions());
    REQUIRE(b.ok());
    backends = std::move(*b);
    service = std::make_unique<GatewayService>(backends.get(), options);
    health = std::make_unique<health::HealthBoard>();
    health->Set(kGatewayService, true);
    // As in maas-gateway: the proxy answers health and the Gateway service on its own queues.
    proxy_options.gateway = service.get();
    proxy_options.health = health.get();
    proxy = std::make_unique<Proxy>(backends.get(), proxy_options);
    server = std::make_unique<TestServer>(std::vector<grpc::Service*>{}, proxy.get());
    channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server->port()),
                                  grpc::InsecureChannelCredentials());
    stub = v1::Gateway::NewStub(channel);
  }
  std::unique_ptr<Backends> backends;
  std::unique_ptr<GatewayService> service;
  std::unique_ptr<health::HealthBoard> health;
  std::unique_ptr<Proxy> proxy;
  std::unique_ptr<TestServer> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Gateway::Stub> stub;
};

}  // namespace maas::gateway::testing

#endif  // MAAS_TESTS_SERVICES_GATEWAY_TEST_GATEWAY_H_
