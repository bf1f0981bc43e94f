// maas.gateway.v1.Gateway and the health monitor against in-process fake backends.
#include "services/gateway/gateway_service.h"

#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "services/gateway/health_monitor.h"
#include "services/gateway/proxy.h"
#include "tests/services/gateway/fake_backends.h"
#include "tests/services/gateway/test_gateway.h"

namespace maas::gateway {
namespace {

using maas::common::v1::DISCRIMINATIVE;
using maas::common::v1::GENERATIVE;
using maas::common::v1::MODEL_TYPE_UNSPECIFIED;
using maas::gateway::testing::FakeDiscriminative;
using maas::gateway::testing::FakeGenerative;
using maas::gateway::testing::TestGateway;
using maas::gateway::testing::TestServer;
namespace gw = maas::gateway::v1;

maas::common::v1::ModelInfo Info(const std::string& name, int64_t version,
                                 maas::common::v1::ModelType type, const std::string& family) {
  maas::common::v1::ModelInfo info;
  info.set_name(name);
  info.set_version(version);
  info.set_type(type);
  info.set_family(family);
  return info;
}

// Gateway options for these tests: a short health-check timeout, since some backends here are down.
GatewayService::Options ShortHealthTimeout() {
  GatewayService::Options options;
  options.health_check_timeout = absl::Milliseconds(500);
  return options;
}

void SetDeadline(grpc::ClientContext* ctx) {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
}

TEST_CASE("ListModels merges both backends sorted by name then version") {
  FakeGenerative generative;
  const std::string gm = "gaussian_mixture";
  const std::string nb = "count+multinomial_nb";
  generative.models = {Info("mix", 2, GENERATIVE, gm), Info("mix", 1, GENERATIVE, gm),
                       Info("anon", 1, MODEL_TYPE_UNSPECIFIED, gm)};
  FakeDiscriminative discriminative;
  discriminative.models = {Info("spam", 4, DISCRIMINATIVE, nb),
                           Info("ham", 1, MODEL_TYPE_UNSPECIFIED, nb),
                           Info("mixer", 1, DISCRIMINATIVE, nb)};
  TestServer gen_server({&generative});
  TestServer disc_server({&discriminative});
  TestGateway gateway(gen_server.target(), disc_server.target(), ShortHealthTimeout());

  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  maas::common::v1::ListModelsRequest request;
  request.set_all_versions(true);  // the fakes answer every version
  maas::common::v1::ListModelsResponse response;
  SECTION("all") {
    REQUIRE(gateway.stub->ListModels(&ctx, request, &response).ok());
    std::vector<std::string> got;
    for (const auto& m : response.models()) {
      got.push_back(m.name() + "/" + std::to_string(m.version()) + "/" +
                    maas::common::v1::ModelType_Name(m.type()) + "/" + m.family());
    }
    CHECK(got == std::vector<std::string>{"anon/1/GENERATIVE/gaussian_mixture",
                                          "ham/1/DISCRIMINATIVE/count+multinomial_nb",
                                          "mix/1/GENERATIVE/gaussian_mixture",
                                          "mix/2/GENERATIVE/gaussian_mixture",
                                          "mixer/1/DISCRIMINATIVE/count+multinomial_nb",
                                          "spam/4/DISCRIMINATIVE/count+multinomial_nb"});
  }
  SECTION("the request reaches both backends unchanged") {
    request.set_name_prefix("mix");
    REQUIRE(gateway.stub->ListModels(&ctx, request, &response).ok());
    REQUIRE(response.models_size() == 3);
    CHECK(response.models(0).name() == "mix");
    CHECK(response.models(2).name() == "mixer");
    absl::MutexLock lock(&generative.obs.mu);
    // Bounded by the gateway's 10 s fan-out timeout (the wire encoding of grpc-timeout rounds up).
    CHECK(generative.obs.last_time_left <= absl::Seconds(11));
  }
}

// ListModels had no paging. The gateway pages the union of its backends' pages; these fakes are
// backends older than paging (every model, no token, whatever the page), which the gateway's own
// filtering by the token keeps correct.
TEST_CASE("ListModels pages through the gateway, also over backends that ignore paging") {
  FakeGenerative generative;
  const std::string gm = "gaussian_mixture";
  const std::string nb = "count+multinomial_nb";
  generative.models = {Info("mix", 1, GENERATIVE, gm), Info("mix", 2, GENERATIVE, gm),
                       Info("anon", 1, GENERATIVE, gm)};
  FakeDiscriminative discriminative;
  discriminative.models = {Info("spam", 4, DISCRIMINATIVE, nb), Info("ham", 1, DISCRIMINATIVE, nb),
                           Info("mix", 1, DISCRIMINATIVE, nb)};
  TestServer gen_server({&generative});
  TestServer disc_server({&discriminative});
  GatewayService::Options options = ShortHealthTimeout();
  options.max_message_bytes = int64_t{64} << 20;  // as main.cc's default
  TestGateway gateway(gen_server.target(), disc_server.target(), options);
  maas::common::v1::ListModelsRequest request;
  request.set_all_versions(true);  // the fakes answer every version
  request.set_page_size(2);
  std::vector<std::string> got;
  int pages = 0;
  do {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    maas::common::v1::ListModelsResponse response;
    REQUIRE(gateway.stub->ListModels(&ctx, request, &response).ok());
    REQUIRE(response.models_size() <= 2);
    for (const auto& m : response.models()) {
      got.push_back(m.name() + "/" + std::to_string(m.version()) + "/" +
                    maas::common::v1::ModelType_Name(m.type()));
    }
    request.set_page_token(response.next_page_token());
    REQUIRE(++pages < 10);
  } while (!request.page_token().empty());
  CHECK(got == std::vector<std::string>{"anon/1/GENERATIVE", "ham/1/DISCRIMINATIVE",
                                        "mix/1/GENERATIVE", "mix/1/DISCRIMINATIVE",
                                        "mix/2/GENERATIVE", "spam/4/DISCRIMINATIVE"});
  CHECK(pages == 3);

  // Pages no larger than the gateway takes: a review saw a backend whose --max_message_bytes
  // was above the gateway's send pages the gateway's receive limit refused (answered OK, empty,
  // without a token). The gateway of this test has the default 64 MiB; a caller's smaller
  // max_page_bytes is passed on as it is.
  {
    absl::MutexLock lock(&generative.obs.mu);
    CHECK(generative.obs.last_list.max_page_bytes() == int64_t{64} << 20);
    CHECK(generative.obs.last_list.page_size() == 2);
  }
  request.set_page_token("");
  request.set_max_page_bytes(100000);
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    maas::common::v1::ListModelsResponse response;
    REQUIRE(gateway.stub->ListModels(&ctx, request, &response).ok());
    absl::MutexLock lock(&generative.obs.mu);
    CHECK(generative.obs.last_list.max_page_bytes() == 100000);
  }

  // Bad paging is refused by the gateway itself, saying what to send.
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  maas::common::v1::ListModelsResponse response;
  request.set_page_token("garbage");
  const grpc::Status status = gateway.stub->ListModels(&ctx, request, &response);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(status.error_message(), Catch::Contains("next_page_token unchanged"));
}

TEST_CASE("ListModels answers the healthy backend's models and names the one that is down") {
  FakeGenerative generative;
  TestServer gen_server({&generative});
  TestGateway gateway(gen_server.target(), "ipv4:127.0.0.1:1", ShortHealthTimeout());
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  maas::common::v1::ListModelsRequest request;
  maas::common::v1::ListModelsResponse response;
  grpc::Status status = gateway.stub->ListModels(&ctx, request, &response);
  REQUIRE(status.ok());
  for (const auto& m : response.models()) CHECK(m.type() == maas::common::v1::GENERATIVE);
  REQUIRE(response.missing_backends_size() == 1);
  CHECK(response.missing_backends(0) ==
        "maas.discriminative.v1.DiscriminativeService: UNAVAILABLE: no backend is reachable");
}

TEST_CASE("GetBackends reports each route and its health") {
  FakeGenerative generative;
  FakeDiscriminative discriminative;
  TestServer gen_server({&generative});
  TestServer disc_server({&discriminative});

  SECTION("both serving (server-wide status)") {
    TestGateway gateway(gen_server.target(), disc_server.target(), ShortHealthTimeout());
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    gw::GetBackendsResponse response;
    REQUIRE(gateway.stub->GetBackends(&ctx, gw::GetBackendsRequest(), &response).ok());
    REQUIRE(response.backends_size() == 2);
    CHECK(response.backends(0).service() == "maas.generative.v1.GenerativeService");
    CHECK(response.backends(0).type() == GENERATIVE);
    CHECK(response.backends(0).target() == gen_server.target());
    CHECK(response.backends(0).health() == gw::SERVING);
    CHECK(response.backends(0).detail().empty());
    CHECK(response.backends(1).service() == "maas.discriminative.v1.DiscriminativeService");
    CHECK(response.backends(1).type() == DISCRIMINATIVE);
    CHECK(response.backends(1).health() == gw::SERVING);
  }
  SECTION("a backend whose service is NOT_SERVING, another that is down") {
    gen_server.server()->GetHealthCheckService()->SetServingStatus(
        "maas.generative.v1.GenerativeService", false);
    TestGateway gateway(gen_server.target(), "ipv4:127.0.0.1:1", ShortHealthTimeout());
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    gw::GetBackendsResponse response;
    REQUIRE(gateway.stub->GetBackends(&ctx, gw::GetBackendsRequest(), &response).ok());
    REQUIRE(response.backends_size() == 2);
    CHECK(response.backends(0).health() == gw::NOT_SERVING);
    CHECK(response.backends(0).detail().find("NOT_SERVING") != std::string::npos);
    CHECK(response.backends(1).health() == gw::NOT_SERVING);
    CHECK(response.backends(1).detail().find("ipv4:127.0.0.1:1") != std::string::npos);
  }
  SECTION("a per-service SERVING status is used") {
    gen_server.server()->GetHealthCheckService()->SetServingStatus(
        "maas.generative.v1.GenerativeService", true);
    gen_server.server()->GetHealthCheckService()->SetServingStatus("", false);
    TestGateway gateway(gen_server.target(), disc_server.target(), ShortHealthTimeout());
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    gw::GetBackendsResponse response;
    REQUIRE(gateway.stub->GetBackends(&ctx, gw::GetBackendsRequest(), &response).ok());
    CHECK(response.backends(0).health() == gw::SERVING);
  }
}

// Collects what the monitor reports.
struct Reports {
  absl::Mutex mu;
  std::vector<bool> values ABSL_GUARDED_BY(mu);
  std::vector<HealthResult> last ABSL_GUARDED_BY(mu);
  HealthMonitor::Report Callback() {
    return [this](bool serving, const std::vector<HealthResult>& results) {
      absl::MutexLock lock(&mu);
      values.push_back(serving);
      last = results;
    };
  }
  bool WaitForCount(std::size_t n) {
    absl::MutexLock lock(&mu);
    auto enough = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu) { return values.size() >= n; };
    return mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
  }
};

TEST_CASE("health monitor: serving only when every route has a serving backend") {
  FakeGenerative generative;
  FakeDiscriminative discriminative;
  TestServer gen_server({&generative});
  TestServer disc_server({&discriminative});
  HealthMonitor::Options options;
  options.interval = absl::Milliseconds(50);
  options.timeout = absl::Milliseconds(500);

  SECTION("all up") {
    TestGateway gateway(gen_server.target(), disc_server.target(), ShortHealthTimeout());
    Reports reports;
    HealthMonitor monitor(gateway.backends.get(), options, reports.Callback());
    REQUIRE(monitor.Start().ok());
    REQUIRE(reports.WaitForCount(3));
    monitor.Stop();
    absl::MutexLock lock(&reports.mu);
    CHECK(reports.values[0] == false);  // before the first check
    CHECK(reports.values[1] == true);
    CHECK(reports.values.back() == true);
  }
  SECTION("one down, then a backend goes down while monitored") {
    TestGateway gateway(gen_server.target(), "ipv4:127.0.0.1:1", ShortHealthTimeout());
    Reports reports;
    HealthMonitor monitor(gateway.backends.get(), options, reports.Callback());
    REQUIRE(monitor.Start().ok());
    REQUIRE(reports.WaitForCount(3));
    monitor.Stop();
    {
      absl::MutexLock lock(&reports.mu);
      for (bool v : reports.values) CHECK_FALSE(v);
      REQUIRE(reports.last.size() == 2);
      CHECK(reports.last[0].health == gw::SERVING);
      CHECK(reports.last[1].health == gw::NOT_SERVING);
    }
  }
  SECTION("a backend stops") {
    TestGateway gateway(gen_server.target(), disc_server.target(), ShortHealthTimeout());
    Reports reports;
    HealthMonitor monitor(gateway.backends.get(), options, reports.Callback());
    REQUIRE(monitor.Start().ok());
    REQUIRE(reports.WaitForCount(2));
    disc_server.Shutdown();
    const absl::Time end = absl::Now() + absl::Seconds(10);
    bool saw_down = false;
    while (!saw_down && absl::Now() < end) {
      absl::SleepFor(absl::Milliseconds(20));
      absl::MutexLock lock(&reports.mu);
      saw_down = reports.values.size() > 2 && !reports.values.back();
    }
    monitor.Stop();
    CHECK(saw_down);
  }
}

TEST_CASE("health monitor rejects a non-positive interval and stops promptly") {
  TestGateway gateway("ipv4:127.0.0.1:1", "ipv4:127.0.0.1:1", ShortHealthTimeout());
  HealthMonitor::Options options;
  options.interval = absl::ZeroDuration();
  HealthMonitor bad(gateway.backends.get(), options, [](bool, const std::vector<HealthResult>&) {});
  CHECK(bad.Start().code() == absl::StatusCode::kInvalidArgument);

  options.interval = absl::Hours(1);
  Reports reports;
  HealthMonitor monitor(gateway.backends.get(), options, reports.Callback());
  REQUIRE(monitor.Start().ok());
  REQUIRE(reports.WaitForCount(2));
  const absl::Time start = absl::Now();
  monitor.Stop();  // wakes up from the hour-long wait
  CHECK(absl::Now() - start < absl::Seconds(2));
}

}  // namespace
}  // namespace maas::gateway
