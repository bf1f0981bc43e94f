#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "services/gateway/h2/h2_front.h"

namespace maas::gateway::h2 {
namespace {

uint32_t Ip(const char* s) {
  in_addr a{};
  REQUIRE(inet_pton(AF_INET, s, &a) == 1);
  return ntohl(a.s_addr);
}

TEST_CASE("h2 front targets: ipv4 lists keep their order") {
  auto r = ResolveTarget("ipv4:127.0.0.1:50053,10.1.2.3:7");
  REQUIRE(r.ok());
  REQUIRE(r->size() == 2);
  CHECK((*r)[0] == ReplicaAddress{Ip("127.0.0.1"), 50053});
  CHECK((*r)[1] == ReplicaAddress{Ip("10.1.2.3"), 7});
  CHECK_FALSE(TargetNeedsDns("ipv4:127.0.0.1:50053,10.1.2.3:7"));
}

TEST_CASE("h2 front targets: a literal host:port and dns:/// of a literal need no DNS") {
  auto r = ResolveTarget("127.0.0.1:9");
  REQUIRE(r.ok());
  CHECK(*r == std::vector<ReplicaAddress>{{Ip("127.0.0.1"), 9}});
  CHECK_FALSE(TargetNeedsDns("127.0.0.1:9"));
  CHECK_FALSE(TargetNeedsDns("dns:///127.0.0.1:9"));
  CHECK(TargetNeedsDns("dns:///maas-generative:50052"));
  CHECK(TargetNeedsDns("localhost:50052"));
}

TEST_CASE("h2 front targets: the authority sent is the target's host:port, as gRPC channels send") {
  CHECK(TargetAuthority("dns:///maas-generative-mesh:50052") == "maas-generative-mesh:50052");
  CHECK(TargetAuthority("dns:discriminative:50053") == "discriminative:50053");
  CHECK(TargetAuthority("localhost:50052") == "localhost:50052");
  CHECK(TargetAuthority("ipv4:127.0.0.1:50053,127.0.0.1:50063") == "127.0.0.1:50053");
  CHECK(TargetAuthority("ipv4:10.0.0.7:50052") == "10.0.0.7:50052");
}

TEST_CASE("h2 front targets: localhost resolves to loopback") {
  auto r = ResolveTarget("dns:///localhost:50052");
  REQUIRE(r.ok());
  REQUIRE_FALSE(r->empty());
  CHECK((*r)[0].port == 50052);
  CHECK(((*r)[0].ipv4 >> 24) == 127);
}

TEST_CASE("h2 front targets: malformed ones are INVALID_ARGUMENT naming the target") {
  for (const char* bad : {"", "ipv4:", "ipv4:127.0.0.1", "ipv4:127.0.0.1:0", "ipv4:127.0.0.1:70000",
                          "ipv4:localhost:5", "ipv4:127.0.0.1:5,", "dns:///", "nohostport"}) {
    auto r = ResolveTarget(bad);
    INFO(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(r.status().message().find("backend target") != std::string::npos);
  }
}

TEST_CASE("h2 front: bad options are INVALID_ARGUMENT") {
  FrontOptions o;
  o.listen_host = "127.0.0.1";
  o.backend_connections = 0;
  CHECK(H2Front::Create(o).status().code() == absl::StatusCode::kInvalidArgument);
  o.backend_connections = 1;
  o.retry_max_attempts = 6;
  CHECK(H2Front::Create(o).status().code() == absl::StatusCode::kInvalidArgument);
  o.retry_max_attempts = 3;
  o.listen_host = "::1";
  CHECK(H2Front::Create(o).status().code() == absl::StatusCode::kInvalidArgument);
  o.listen_host = "127.0.0.1";
  o.routes = {{"a.B", "ipv4:127.0.0.1:1", {}, {}}, {"a.B", "ipv4:127.0.0.1:2", {}, {}}};
  CHECK(H2Front::Create(o).status().code() == absl::StatusCode::kInvalidArgument);
  o.routes = {{"a.B", "ipv4:127.0.0.1:1", {}, {}}};
  auto front = H2Front::Create(o);
  REQUIRE(front.ok());
  CHECK((*front)->port() > 0);
}

}  // namespace
}  // namespace maas::gateway::h2
