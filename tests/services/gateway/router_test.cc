// Transport-free parts of the gateway: routing, service config, health wire format, model merge.
#include "services/gateway/router.h"

#include <grpcpp/support/validate_service_config.h>

#include <catch2/catch.hpp>
#include <string>

#include "services/gateway/health_wire.h"
#include "services/gateway/model_list.h"

namespace maas::gateway {
namespace {

using maas::common::v1::DISCRIMINATIVE;
using maas::common::v1::GENERATIVE;
using maas::common::v1::MODEL_TYPE_UNSPECIFIED;

Router DefaultRouter() {
  absl::StatusOr<Router> router = Router::Create(DefaultRoutes("ipv4:127.0.0.1:1", "dns:///d:2"));
  REQUIRE(router.ok());
  return *router;
}

TEST_CASE("routes by the method's service") {
  const Router router = DefaultRouter();
  REQUIRE(router.routes().size() == 2);
  const auto gen = router.Find("/maas.generative.v1.GenerativeService/Sample");
  REQUIRE(gen.has_value());
  CHECK(router.routes()[*gen].type == GENERATIVE);
  CHECK(router.routes()[*gen].target == "ipv4:127.0.0.1:1");
  const auto disc = router.Find("/maas.discriminative.v1.DiscriminativeService/ClassifyStream");
  REQUIRE(disc.has_value());
  CHECK(router.routes()[*disc].type == DISCRIMINATIVE);
  CHECK(router.routes()[*disc].target == "dns:///d:2");
  CHECK(*router.FindByType(GENERATIVE) == *gen);
  CHECK(*router.FindByType(DISCRIMINATIVE) == *disc);
  CHECK_FALSE(router.FindByType(MODEL_TYPE_UNSPECIFIED).has_value());
}

TEST_CASE("no route for other services or malformed names") {
  const Router router = DefaultRouter();
  for (const char* path :
       {"/maas.gateway.v1.Gateway/ListModels", "/maas.generative.v1.Other/Sample",
        "/maas.generative.v1.GenerativeServiceX/Sample", "/maas.generative.v1/Sample",
        "/maas.generative.v1.GenerativeService", "/maas.generative.v1.GenerativeService/",
        "maas.generative.v1.GenerativeService/Sample", "//maas.generative.v1.GenerativeService/S",
        "/maas.generative.v1.GenerativeService/Sample/extra", "", "/", "//",
        "/maas.generative.v1.GenerativeService/Sam ple", "/.maas.generative.v1.GenerativeService/S",
        "/maas.generative.v1.GenerativeService/a.b"}) {
    CAPTURE(path);
    CHECK_FALSE(router.Find(path).has_value());
  }
}

TEST_CASE("parses method names") {
  absl::StatusOr<MethodName> m = ParseMethodName("/pkg.v1.Svc/Do_It2");
  REQUIRE(m.ok());
  CHECK(m->service == "pkg.v1.Svc");
  CHECK(m->method == "Do_It2");
  for (const char* bad : {"", "/", "/a", "/a/", "a/b", "/a/b/c", "/a b/c"}) {
    CAPTURE(bad);
    absl::StatusOr<MethodName> r = ParseMethodName(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(r.status().message().find("expected /<package>.<Service>/<Method>") != std::string::npos);
  }
  absl::StatusOr<MethodName> nul = ParseMethodName(absl::string_view("/a\0/b", 5));
  CHECK_FALSE(nul.ok());
}

TEST_CASE("the no-route message names the service and the routes") {
  const Router router = DefaultRouter();
  const std::string message = router.NoRouteMessage("/foo.v1.Bar/Baz");
  CHECK(message.find("no route for service foo.v1.Bar") != std::string::npos);
  CHECK(message.find("maas.generative.v1.GenerativeService") != std::string::npos);
  CHECK(message.find("maas.discriminative.v1.DiscriminativeService") != std::string::npos);
  const std::string malformed = router.NoRouteMessage("garbage\n");
  CHECK(malformed.find("malformed") != std::string::npos);
  CHECK(malformed.find('\n') == std::string::npos);  // escaped
}

TEST_CASE("router rejects bad routes") {
  std::vector<Route> routes = DefaultRoutes("a", "b");
  SECTION("duplicate service") { routes[1].service = routes[0].service; }
  SECTION("empty target") { routes[0].target.clear(); }
  SECTION("unspecified type") { routes[0].type = MODEL_TYPE_UNSPECIFIED; }
  SECTION("unqualified service") { routes[0].service = "GenerativeService"; }
  SECTION("bad characters") { routes[0].service = "maas/generative"; }
  absl::StatusOr<Router> router = Router::Create(routes);
  REQUIRE_FALSE(router.ok());
  CHECK(router.status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("service config is valid JSON that gRPC accepts, retrying only idempotent methods") {
  for (const Route& route : DefaultRoutes("a", "b")) {
    absl::StatusOr<std::string> json = ServiceConfigJson(route, RetryPolicy());
    REQUIRE(json.ok());
    CAPTURE(*json);
    CHECK(grpc::experimental::ValidateServiceConfigJSON(*json).empty());
    CHECK(json->find(R"("round_robin")") != std::string::npos);
    CHECK(json->find(R"("retryableStatusCodes":["UNAVAILABLE"])") != std::string::npos);
    CHECK(json->find(R"("maxAttempts":3)") != std::string::npos);
    CHECK(json->find(R"("method":"CreateModel")") != std::string::npos);
    CHECK(json->find(R"("method":"DeleteModel")") != std::string::npos);
  }
  RetryPolicy none;
  none.max_attempts = 1;
  absl::StatusOr<std::string> json = ServiceConfigJson(DefaultRoutes("a", "b")[0], none);
  REQUIRE(json.ok());
  CHECK(grpc::experimental::ValidateServiceConfigJSON(*json).empty());
  CHECK(json->find("retryPolicy") == std::string::npos);

  RetryPolicy odd;
  odd.initial_backoff_ms = 1234;
  odd.max_backoff_ms = 60000;
  odd.backoff_multiplier = 1.5;
  odd.max_attempts = 5;
  json = ServiceConfigJson(DefaultRoutes("a", "b")[1], odd);
  REQUIRE(json.ok());
  CHECK(grpc::experimental::ValidateServiceConfigJSON(*json).empty());
  CHECK(json->find(R"("initialBackoff":"1.234s")") != std::string::npos);
}

TEST_CASE("service config rejects bad retry policies") {
  const Route route = DefaultRoutes("a", "b")[0];
  RetryPolicy p;
  SECTION("too many attempts") { p.max_attempts = 6; }
  SECTION("zero attempts") { p.max_attempts = 0; }
  SECTION("zero backoff") { p.initial_backoff_ms = 0; }
  SECTION("max below initial") { p.max_backoff_ms = p.initial_backoff_ms - 1; }
  SECTION("multiplier below one") { p.backoff_multiplier = 0.5; }
  SECTION("NaN multiplier") { p.backoff_multiplier = std::nan(""); }
  absl::StatusOr<std::string> json = ServiceConfigJson(route, p);
  REQUIRE_FALSE(json.ok());
  CHECK(json.status().code() == absl::StatusCode::kInvalidArgument);
}

// Known-answer vectors from the protobuf encoding spec: field 1, wire type 2 -> tag 0x0a; field 1,
// wire type 0 -> tag 0x08.
TEST_CASE("health check messages in wire format") {
  CHECK(EncodeHealthCheckRequest("") == "");
  CHECK(EncodeHealthCheckRequest("ab") == std::string("\x0a\x02"
                                                      "ab",
                                                      4));
  const std::string long_name(200, 'x');  // length 200 -> varint 0xc8 0x01
  CHECK(EncodeHealthCheckRequest(long_name) == std::string("\x0a\xc8\x01", 3) + long_name);

  CHECK(*DecodeHealthCheckResponse("") == ServingStatus::kUnknown);
  CHECK(*DecodeHealthCheckResponse(std::string("\x08\x01", 2)) == ServingStatus::kServing);
  CHECK(*DecodeHealthCheckResponse(std::string("\x08\x02", 2)) == ServingStatus::kNotServing);
  CHECK(*DecodeHealthCheckResponse(std::string("\x08\x03", 2)) == ServingStatus::kServiceUnknown);
  CHECK(*DecodeHealthCheckResponse(std::string("\x08\x09", 2)) == ServingStatus::kUnknown);
  // An unknown string field 2 before the status is skipped.
  CHECK(*DecodeHealthCheckResponse(std::string("\x12\x01z\x08\x01", 5)) == ServingStatus::kServing);
  for (const std::string& bad : {std::string("\x08", 1), std::string("\x12\x05z", 3),
                                 std::string("\x00", 1), std::string("\x08\xff", 2)}) {
    CHECK_FALSE(DecodeHealthCheckResponse(bad).ok());
  }
}

maas::common::v1::ModelInfo Info(const std::string& name, int64_t version,
                                 maas::common::v1::ModelType type) {
  maas::common::v1::ModelInfo info;
  info.set_name(name);
  info.set_version(version);
  info.set_type(type);
  return info;
}

TEST_CASE("model lists merge sorted by name then version, with types") {
  const std::vector<Route> routes = DefaultRoutes("g", "d");
  maas::common::v1::ListModelsResponse gen;
  *gen.add_models() = Info("zeta", 1, MODEL_TYPE_UNSPECIFIED);
  *gen.add_models() = Info("alpha", 2, GENERATIVE);
  *gen.add_models() = Info("alpha", 1, GENERATIVE);
  maas::common::v1::ListModelsResponse disc;
  *disc.add_models() = Info("beta", 3, MODEL_TYPE_UNSPECIFIED);
  *disc.add_models() = Info("alpha", 1, DISCRIMINATIVE);
  absl::StatusOr<maas::common::v1::ListModelsResponse> merged =
      MergeModelLists({{routes[0], gen}, {routes[1], disc}});
  REQUIRE(merged.ok());
  std::vector<std::string> got;
  for (const auto& m : merged->models()) {
    got.push_back(m.name() + "/" + std::to_string(m.version()) + "/" +
                  maas::common::v1::ModelType_Name(m.type()));
  }
  CHECK(got == std::vector<std::string>{"alpha/1/GENERATIVE", "alpha/1/DISCRIMINATIVE",
                                        "alpha/2/GENERATIVE", "beta/3/DISCRIMINATIVE",
                                        "zeta/1/GENERATIVE"});
  absl::StatusOr<maas::common::v1::ListModelsResponse> empty = MergeModelLists({});
  REQUIRE(empty.ok());
  CHECK(empty->models_size() == 0);
}

TEST_CASE("model list merge keeps each backend's unreadable versions, typed and sorted") {
  const std::vector<Route> routes = DefaultRoutes("ipv4:127.0.0.1:9", "d");
  auto bad = [](const std::string& name, int64_t version) {
    maas::common::v1::UnreadableVersion v;
    v.set_name(name);
    v.set_version(version);
    v.set_code("DATA_LOSS");
    v.set_message("stored model: no ModelInfo");
    return v;
  };
  maas::common::v1::ListModelsResponse gen, disc;
  *gen.add_unreadable_versions() = bad("zeta", 4);
  *disc.add_unreadable_versions() = bad("alpha", 2);
  *disc.add_models() = Info("beta", 3, MODEL_TYPE_UNSPECIFIED);
  absl::StatusOr<maas::common::v1::ListModelsResponse> merged =
      MergeModelLists({{routes[0], gen}, {routes[1], disc}});
  REQUIRE(merged.ok());
  REQUIRE(merged->unreadable_versions_size() == 2);
  CHECK(merged->unreadable_versions(0).name() == "alpha");
  CHECK(merged->unreadable_versions(0).type() == DISCRIMINATIVE);
  CHECK(merged->unreadable_versions(1).name() == "zeta");
  CHECK(merged->unreadable_versions(1).type() == GENERATIVE);
  CHECK(merged->unreadable_versions(1).message() == "stored model: no ModelInfo");
  CHECK(merged->models_size() == 1);
}

TEST_CASE("model list merge keeps the healthy lists and names the failed backend") {
  const std::vector<Route> routes = DefaultRoutes("ipv4:127.0.0.1:9", "d");
  maas::common::v1::ListModelsResponse disc;
  *disc.add_models() = Info("beta", 3, MODEL_TYPE_UNSPECIFIED);
  absl::StatusOr<maas::common::v1::ListModelsResponse> merged = MergeModelLists(
      {{routes[0], absl::UnavailableError("no backend is reachable")}, {routes[1], disc}});
  REQUIRE(merged.ok());
  REQUIRE(merged->models_size() == 1);
  CHECK(merged->models(0).type() == DISCRIMINATIVE);
  REQUIRE(merged->missing_backends_size() == 1);
  CHECK(merged->missing_backends(0) ==
        "maas.generative.v1.GenerativeService: UNAVAILABLE: no backend is reachable");
}

TEST_CASE("model list merge fails when every backend failed or the request is bad") {
  const std::vector<Route> routes = DefaultRoutes("ipv4:127.0.0.1:9", "d");
  absl::StatusOr<maas::common::v1::ListModelsResponse> merged =
      MergeModelLists({{routes[0], absl::UnavailableError("no backend is reachable")},
                       {routes[1], absl::DeadlineExceededError("deadline")}});
  REQUIRE_FALSE(merged.ok());
  CHECK(merged.status().code() == absl::StatusCode::kUnavailable);
  CHECK(merged.status().message().find("maas.generative.v1.GenerativeService: no backend") !=
        absl::string_view::npos);
  CHECK(merged.status().message().find("ipv4:") == absl::string_view::npos);
  merged = MergeModelLists({{routes[0], maas::common::v1::ListModelsResponse()},
                            {routes[1], absl::InvalidArgumentError("bad name_prefix")}});
  REQUIRE_FALSE(merged.ok());
  CHECK(merged.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(merged.status().message() ==
        "backend of route maas.discriminative.v1.DiscriminativeService failed: bad name_prefix");
}

}  // namespace
}  // namespace maas::gateway
