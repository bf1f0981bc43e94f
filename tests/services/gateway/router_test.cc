// Transport-free parts of the gateway: routing, service config, health wire format, model merge.
#include "services/gateway/router.h"

#include <grpcpp/support/validate_service_config.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/health/health_wire.h"
#include "common/registry/list_page.h"
#include "services/gateway/model_list.h"

namespace maas::gateway {

using health::DecodeHealthCheckResponse;
using health::EncodeHealthCheckRequest;
using health::ServingStatus;
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

// Every model, in one answer (no paging).
const maas::common::v1::ListModelsRequest kAll;

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
  maas::common::v1::ListModelsRequest all_versions;
  all_versions.set_all_versions(true);
  maas::common::v1::ListModelsResponse gen;
  *gen.add_models() = Info("zeta", 1, MODEL_TYPE_UNSPECIFIED);
  *gen.add_models() = Info("alpha", 2, GENERATIVE);
  *gen.add_models() = Info("alpha", 1, GENERATIVE);
  maas::common::v1::ListModelsResponse disc;
  *disc.add_models() = Info("beta", 3, MODEL_TYPE_UNSPECIFIED);
  *disc.add_models() = Info("alpha", 1, DISCRIMINATIVE);
  absl::StatusOr<maas::common::v1::ListModelsResponse> merged =
      MergeModelLists(all_versions, {{routes[0], gen}, {routes[1], disc}});
  REQUIRE(merged.ok());
  std::vector<std::string> got;
  for (const auto& m : merged->models()) {
    got.push_back(m.name() + "/" + std::to_string(m.version()) + "/" +
                  maas::common::v1::ModelType_Name(m.type()));
  }
  CHECK(got == std::vector<std::string>{"alpha/1/GENERATIVE", "alpha/1/DISCRIMINATIVE",
                                        "alpha/2/GENERATIVE", "beta/3/DISCRIMINATIVE",
                                        "zeta/1/GENERATIVE"});
  absl::StatusOr<maas::common::v1::ListModelsResponse> empty = MergeModelLists(kAll, {});
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
      MergeModelLists(kAll, {{routes[0], gen}, {routes[1], disc}});
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
      kAll, {{routes[0], absl::UnavailableError("no backend is reachable")}, {routes[1], disc}});
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
      MergeModelLists(kAll, {{routes[0], absl::UnavailableError("no backend is reachable")},
                             {routes[1], absl::DeadlineExceededError("deadline")}});
  REQUIRE_FALSE(merged.ok());
  CHECK(merged.status().code() == absl::StatusCode::kUnavailable);
  CHECK(merged.status().message().find("maas.generative.v1.GenerativeService: no backend") !=
        absl::string_view::npos);
  CHECK(merged.status().message().find("ipv4:") == absl::string_view::npos);
  merged = MergeModelLists(kAll, {{routes[0], maas::common::v1::ListModelsResponse()},
                                  {routes[1], absl::InvalidArgumentError("bad name_prefix")}});
  REQUIRE_FALSE(merged.ok());
  CHECK(merged.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(merged.status().message() ==
        "backend of route maas.discriminative.v1.DiscriminativeService failed: bad name_prefix");
}

// A backend's listing as the services page it (ModelRepository::List): `entries` sorted, the
// request's page after its token. `pages` false: a backend older than paging (all, no token).
maas::common::v1::ListModelsResponse BackendPage(
    const maas::common::v1::ListModelsRequest& request,
    const std::vector<maas::common::v1::ModelInfo>& entries,
    const std::vector<maas::common::v1::UnreadableVersion>& bad, bool pages = true) {
  maas::common::v1::ListModelsResponse page;
  absl::StatusOr<registry::ListPaging> paging = registry::ParseListPaging(request);
  REQUIRE(paging.ok());
  std::vector<std::pair<registry::ListKey, int>> keys;  // index into entries (>= 0) or bad (< 0)
  for (std::size_t i = 0; i < entries.size(); ++i) {
    keys.push_back({paging->KeyOf(entries[i]), int(i)});
  }
  for (std::size_t i = 0; i < bad.size(); ++i) keys.push_back({paging->KeyOf(bad[i]), -1 - int(i)});
  std::sort(keys.begin(), keys.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  int taken = 0;
  const registry::ListKey* last = nullptr;
  for (const auto& [key, i] : keys) {
    if (pages && !paging->Wants(key)) continue;
    if (pages && paging->page_size > 0 && taken == paging->page_size) {
      page.set_next_page_token(registry::MakeListPageToken(request, *last));
      break;
    }
    if (i >= 0) {
      *page.add_models() = entries[i];
    } else {
      *page.add_unreadable_versions() = bad[-1 - i];
    }
    ++taken;
    last = &key;
  }
  return page;
}

// Pages through the gateway's merge of two such backends; every entry as "name/version/TYPE".
std::vector<std::string> PageThrough(maas::common::v1::ListModelsRequest request,
                                     const std::vector<maas::common::v1::ModelInfo>& gen,
                                     const std::vector<maas::common::v1::ModelInfo>& disc,
                                     const std::vector<maas::common::v1::UnreadableVersion>& bad,
                                     int64_t max_bytes, bool old_backend, int* pages) {
  const std::vector<Route> routes = DefaultRoutes("g", "d");
  std::vector<std::string> got;
  *pages = 0;
  do {
    absl::StatusOr<maas::common::v1::ListModelsResponse> merged =
        MergeModelLists(request,
                        {{routes[0], BackendPage(request, gen, {}, !old_backend)},
                         {routes[1], BackendPage(request, disc, bad)}},
                        max_bytes);
    REQUIRE(merged.ok());
    ++*pages;
    REQUIRE(merged->models_size() + merged->unreadable_versions_size() <= request.page_size());
    REQUIRE(merged->models_size() + merged->unreadable_versions_size() >= 1);
    const registry::ListPaging paging = *registry::ParseListPaging(request);
    std::vector<std::pair<registry::ListKey, std::string>> page;
    const auto text = [](const auto& entry) {
      return entry.name() + "/" + std::to_string(entry.version()) + "/" +
             maas::common::v1::ModelType_Name(entry.type());
    };
    for (const auto& m : merged->models()) page.push_back({paging.KeyOf(m), text(m)});
    for (const auto& b : merged->unreadable_versions()) {
      page.push_back({paging.KeyOf(b), text(b) + " unreadable"});
    }
    std::sort(page.begin(), page.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [key, entry] : page) got.push_back(std::move(entry));
    request.set_page_token(merged->next_page_token());
    REQUIRE(*pages < 100);
  } while (!request.page_token().empty());
  return got;
}

// ListModels had no paging: ~1 900 models made the list larger than any client's message cap.
// The gateway pages the union of its backends' pages: every entry once, in order, whatever the
// page size, ties across types, unreadable versions, a byte budget, or a backend that ignores
// paging.
TEST_CASE("model list merge pages through both backends: every entry once, in order") {
  std::vector<maas::common::v1::ModelInfo> gen, disc;
  for (const char* name : {"a", "b", "c", "d", "e", "f", "g"}) {
    gen.push_back(Info(name, 1, GENERATIVE));
    gen.push_back(Info(name, 2, GENERATIVE));
  }
  for (const char* name : {"a", "c", "cc", "h"}) disc.push_back(Info(name, 1, DISCRIMINATIVE));
  maas::common::v1::UnreadableVersion bad;
  bad.set_name("b");
  bad.set_version(1);
  bad.set_type(DISCRIMINATIVE);
  bad.set_code("DATA_LOSS");
  std::vector<std::string> all;
  int pages = 0;
  maas::common::v1::ListModelsRequest request;
  request.set_all_versions(true);
  request.set_page_size(1000);
  all = PageThrough(request, gen, disc, {bad}, 0, false, &pages);
  CHECK(pages == 1);
  REQUIRE(all.size() == 19);
  CHECK(all[0] == "a/1/GENERATIVE");
  CHECK(all[1] == "a/1/DISCRIMINATIVE");
  CHECK(all[4] == "b/1/DISCRIMINATIVE unreadable");
  for (int page_size : {1, 2, 3, 5, 18}) {
    request.set_page_size(page_size);
    CHECK(PageThrough(request, gen, disc, {bad}, 0, false, &pages) == all);
    CHECK(pages == (19 + page_size - 1) / page_size);
    CHECK(PageThrough(request, gen, disc, {bad}, 0, true, &pages) == all);
  }
  // A byte budget of a few entries: pages are cut by size.
  request.set_page_size(1000);
  CHECK(PageThrough(request, gen, disc, {bad}, registry::kListPageTokenReserve + 30, false,
                    &pages) == all);
  CHECK(pages > 5);
  // An entry no page can hold is named, not skipped.
  const std::vector<Route> routes = DefaultRoutes("g", "d");
  request.set_page_token("");
  absl::StatusOr<maas::common::v1::ListModelsResponse> refused =
      MergeModelLists(request, {{routes[0], BackendPage(request, gen, {})}}, 5);
  REQUIRE(absl::IsResourceExhausted(refused.status()));
  CHECK_THAT(std::string(refused.status().message()), Catch::Contains("model \"a\" version 1"));
}

// A review: a gateway page that lacked a backend said nothing when that backend answered a token
// and no entry after it (its entries sorted elsewhere than its token said), and the page's byte
// budget left out missing_backends. Without all_versions an entry is a model: a new latest
// version of a listed model is not listed again.
TEST_CASE("model list merge names a backend whose page cannot bound the merge") {
  const std::vector<Route> routes = DefaultRoutes("g", "d");
  maas::common::v1::ListModelsRequest request;
  request.set_page_size(10);
  request.set_all_versions(true);
  maas::common::v1::ListModelsResponse gen, disc;
  *gen.add_models() = Info("a", 1, GENERATIVE);
  gen.set_next_page_token(registry::MakeListPageToken(request, {"z", 1, GENERATIVE}));
  request.set_page_token(registry::MakeListPageToken(request, {"b", 1, GENERATIVE}));
  *disc.add_models() = Info("c", 1, DISCRIMINATIVE);
  absl::StatusOr<maas::common::v1::ListModelsResponse> merged =
      MergeModelLists(request, {{routes[0], gen}, {routes[1], disc}});
  REQUIRE(merged.ok());
  REQUIRE(merged->models_size() == 1);
  CHECK(merged->models(0).name() == "c");
  REQUIRE(merged->missing_backends_size() == 1);
  CHECK_THAT(merged->missing_backends(0), Catch::Contains("GenerativeService: INTERNAL"));
  CHECK(merged->next_page_token().empty());

  // Latest versions only: the page after (mix, GENERATIVE) skips mix's new version 2.
  request.Clear();
  request.set_page_size(10);
  request.set_page_token(registry::MakeListPageToken(request, {"mix", 0, GENERATIVE}));
  gen.Clear();
  *gen.add_models() = Info("mix", 2, GENERATIVE);
  *gen.add_models() = Info("nix", 1, GENERATIVE);
  disc.Clear();
  *disc.add_models() = Info("mix", 1, DISCRIMINATIVE);
  merged = MergeModelLists(request, {{routes[0], gen}, {routes[1], disc}});
  REQUIRE(merged.ok());
  REQUIRE(merged->models_size() == 2);
  CHECK(merged->models(0).type() == DISCRIMINATIVE);
  CHECK(merged->models(1).name() == "nix");
}

TEST_CASE("model list merge refuses an unpaged answer above max_bytes, saying to page") {
  const std::vector<Route> routes = DefaultRoutes("g", "d");
  maas::common::v1::ListModelsResponse gen;
  for (int v = 1; v <= 20; ++v) *gen.add_models() = Info("model", v, GENERATIVE);
  absl::StatusOr<maas::common::v1::ListModelsResponse> merged =
      MergeModelLists(kAll, {{routes[0], gen}, {routes[1], gen}}, 100);
  REQUIRE(absl::IsResourceExhausted(merged.status()));
  CHECK_THAT(std::string(merged.status().message()), Catch::Contains("page_size"));
  CHECK_THAT(std::string(merged.status().message()), Catch::Contains("--max_message_bytes (100)"));
  CHECK(MergeModelLists(kAll, {{routes[0], gen}, {routes[1], gen}}, 0).ok());
}

}  // namespace
}  // namespace maas::gateway
