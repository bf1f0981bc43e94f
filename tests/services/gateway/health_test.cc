// The gateway's own grpc.health.v1 (the HealthBoard, and Check / Watch answered by the proxy) and
// the Gateway service's answers to malformed requests, through real gRPC clients.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/health/health_board.h"
#include "common/health/health_wire.h"
#include "tests/common/adapter/raw_call.h"
#include "tests/services/gateway/fake_backends.h"
#include "tests/services/gateway/test_gateway.h"

namespace maas::gateway {

using health::DecodeHealthCheckRequest;
using health::DecodeHealthCheckResponse;
using health::EncodeHealthCheckRequest;
using health::EncodeHealthCheckResponse;
using health::HealthBoard;
using health::kHealthCheckMethod;
using health::kHealthWatchMethod;
using health::kMaxHealthServiceNameBytes;
using health::ServingStatus;
namespace {

using maas::gateway::testing::FakeDiscriminative;
using maas::gateway::testing::FakeGenerative;
using maas::gateway::testing::TestGateway;
using maas::gateway::testing::TestServer;
using maas::testing::RawCallResult;
using maas::testing::RawUnaryCall;

// Records every status a watcher gets.
struct Recorder final : HealthBoard::Watcher {
  void OnHealth(ServingStatus status) override { seen.push_back(status); }
  std::vector<ServingStatus> seen;
};

TEST_CASE("health board: the rules of gRPC's default health service") {
  HealthBoard board;
  CHECK(board.Get("") == ServingStatus::kServing);
  CHECK(board.Get("a") == ServingStatus::kServiceUnknown);
  board.Set("a", false);
  CHECK(board.Get("a") == ServingStatus::kNotServing);
  board.Set("a", true);
  CHECK(board.Get("a") == ServingStatus::kServing);

  Recorder all, a, unknown;
  board.AddWatch("", &all);
  board.AddWatch("a", &a);
  board.AddWatch("b", &unknown);  // watched, never set
  CHECK(all.seen == std::vector<ServingStatus>{ServingStatus::kServing});
  CHECK(unknown.seen == std::vector<ServingStatus>{ServingStatus::kServiceUnknown});
  CHECK(board.Get("b") == ServingStatus::kServiceUnknown);  // watching does not make it known

  board.Set("", true);  // unchanged: not reported (gRPC 1.51's default service repeated it)
  CHECK(all.seen.size() == 1);
  CHECK(a.seen.size() == 1);
  board.Set("a", true);
  CHECK(a.seen.size() == 1);
  board.SetAll(false);  // every known and watched name
  CHECK(all.seen.back() == ServingStatus::kNotServing);
  CHECK(a.seen.back() == ServingStatus::kNotServing);
  CHECK(unknown.seen.back() == ServingStatus::kNotServing);
  CHECK(board.Get("b") == ServingStatus::kNotServing);

  board.RemoveWatch("a", &a);
  const std::size_t a_seen = a.seen.size();
  board.SetAll(true);
  CHECK(a.seen.size() == a_seen);
  CHECK(all.seen.back() == ServingStatus::kServing);

  board.Shutdown();
  CHECK(all.seen.back() == ServingStatus::kNotServing);
  CHECK(board.Get("a") == ServingStatus::kNotServing);
  board.Set("", true);  // after shutdown: recorded as NOT_SERVING
  CHECK(board.Get("") == ServingStatus::kNotServing);
  CHECK(all.seen.back() == ServingStatus::kNotServing);
  board.Set("c", true);
  CHECK(board.Get("c") == ServingStatus::kNotServing);
  const std::size_t all_seen = all.seen.size();
  board.SetAll(true);  // ignored
  CHECK(all.seen.size() == all_seen);
  board.Shutdown();  // idempotent
  CHECK(all.seen.size() == all_seen);
  board.RemoveWatch("", &all);
  board.RemoveWatch("b", &unknown);
  board.RemoveWatch("nobody", &unknown);  // no-op
}

TEST_CASE("health request and response bytes") {
  for (const std::string& name : {std::string(), std::string("maas.gateway.v1.Gateway"),
                                  std::string(kMaxHealthServiceNameBytes, 'x')}) {
    absl::StatusOr<std::string> decoded = DecodeHealthCheckRequest(EncodeHealthCheckRequest(name));
    REQUIRE(decoded.ok());
    CHECK(*decoded == name);
  }
  // Unknown fields are skipped; the last occurrence of the service wins.
  CHECK(*DecodeHealthCheckRequest(std::string("\x10\x05\x0a\x01x\x0a\x02yz", 9)) == "yz");
  CHECK_FALSE(
      DecodeHealthCheckRequest(EncodeHealthCheckRequest(std::string(201, 'x'))).ok());  // too long
  for (const std::string& bad : {std::string("\x0a\x05x", 3), std::string("\x00", 1),
                                 std::string("\x0a", 1), std::string("\x08", 1)}) {
    CHECK_FALSE(DecodeHealthCheckRequest(bad).ok());
  }
  for (ServingStatus s :
       {ServingStatus::kServing, ServingStatus::kNotServing, ServingStatus::kServiceUnknown}) {
    CHECK(*DecodeHealthCheckResponse(EncodeHealthCheckResponse(s)) == s);
  }
  CHECK(EncodeHealthCheckResponse(ServingStatus::kServing) == std::string("\x08\x01", 2));
}

// A grpc.health.v1.Health/Watch stream read one update at a time.
class WatchStream {
 public:
  WatchStream(const std::shared_ptr<grpc::Channel>& channel, const std::string& service)
      : call_(channel, kHealthWatchMethod, std::chrono::seconds(60)) {
    REQUIRE(call_.started());
    REQUIRE(call_.Write(EncodeHealthCheckRequest(service)));
    REQUIRE(call_.WritesDone());
  }
  ~WatchStream() {
    if (finished_) return;
    call_.Cancel();
    Finish();
  }
  // The next status, or nullopt when the stream has ended.
  std::optional<ServingStatus> Next() {
    std::string response;
    if (!call_.Read(&response)) return std::nullopt;
    absl::StatusOr<ServingStatus> status = DecodeHealthCheckResponse(response);
    REQUIRE(status.ok());
    return *status;
  }
  grpc::Status Finish() {
    finished_ = true;
    return call_.Finish();
  }
  void Cancel() { call_.Cancel(); }

 private:
  maas::testing::RawCall call_;
  bool finished_ = false;
};

RawCallResult Check(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  return RawUnaryCall(channel, kHealthCheckMethod, EncodeHealthCheckRequest(service),
                      std::chrono::seconds(10));
}

std::optional<ServingStatus> CheckStatus(const std::shared_ptr<grpc::Channel>& channel,
                                         const std::string& service) {
  RawCallResult result = Check(channel, service);
  if (!result.status.ok() || result.responses.size() != 1) return std::nullopt;
  return *DecodeHealthCheckResponse(result.responses[0]);
}

TEST_CASE("the proxy answers health Check from the board the server's health service drives") {
  FakeGenerative generative;
  FakeDiscriminative discriminative;
  TestServer gen_server({&generative});
  TestServer disc_server({&discriminative});
  TestGateway gateway(gen_server.target(), disc_server.target());

  CHECK(CheckStatus(gateway.channel, "") == ServingStatus::kServing);
  CHECK(CheckStatus(gateway.channel, "maas.gateway.v1.Gateway") == ServingStatus::kServing);
  // gRPC's health service interface of the server is the board (no default health service).
  grpc::HealthCheckServiceInterface* health = gateway.server->server()->GetHealthCheckService();
  REQUIRE(health != nullptr);
  health->SetServingStatus("", false);
  CHECK(CheckStatus(gateway.channel, "") == ServingStatus::kNotServing);
  CHECK(gateway.health->Get("") == ServingStatus::kNotServing);
  health->SetServingStatus("", true);
  CHECK(CheckStatus(gateway.channel, "") == ServingStatus::kServing);

  RawCallResult unknown = Check(gateway.channel, "maas.generative.v1.GenerativeService");
  CHECK(unknown.status.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(unknown.status.error_message() == "service name unknown");
  RawCallResult bad = RawUnaryCall(gateway.channel, kHealthCheckMethod, std::string("\x0a\x05x", 3),
                                   std::chrono::seconds(10));
  CHECK(bad.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(bad.status.error_message() == "could not parse request");
  RawCallResult too_long = Check(gateway.channel, std::string(201, 'x'));
  CHECK(too_long.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  // A Check without its request message.
  maas::testing::RawCallResult empty = maas::testing::RawStreamCall(
      gateway.channel, kHealthCheckMethod, {}, std::chrono::seconds(10));
  CHECK_FALSE(empty.status.ok());
  // Proxied calls still work beside it.
  CHECK(CheckStatus(gateway.channel, "") == ServingStatus::kServing);
}

TEST_CASE("health Watch streams every update and ends when the server shuts down") {
  FakeGenerative generative;
  FakeDiscriminative discriminative;
  TestServer gen_server({&generative});
  TestServer disc_server({&discriminative});
  TestGateway gateway(gen_server.target(), disc_server.target());

  WatchStream all(gateway.channel, "");
  WatchStream later(gateway.channel, "later");
  CHECK(all.Next() == ServingStatus::kServing);
  CHECK(later.Next() == ServingStatus::kServiceUnknown);

  SECTION("updates, then the end at shutdown") {
    // An unchanged status is not streamed: the gateway sets every backend's status at each round
    // of health checks, and Watch streams repeated it each time.
    gateway.health->Set("", true);
    gateway.health->Set("", false);
    CHECK(all.Next() == ServingStatus::kNotServing);
    gateway.health->Set("later", true);
    CHECK(later.Next() == ServingStatus::kServing);
    gateway.health->Set("", true);
    CHECK(all.Next() == ServingStatus::kServing);
    // A burst of updates (most coalesced while a write is in flight), then what the server kit
    // does at shutdown: health first (every name NOT_SERVING). The last status a stream carries
    // is the latest, NOT_SERVING, and then the stream ends UNAVAILABLE at once: the 2026-12-06
    // observability hunt found Watch streams held open until the server's shutdown cancelled
    // them after its whole grace period (an idle watcher kept a pod ~20 s past its SIGTERM).
    for (int i = 0; i < 200; ++i) gateway.health->Set("", i % 2 == 0);
    gateway.health->Shutdown();
    CHECK(later.Next() == ServingStatus::kNotServing);
    CHECK_FALSE(later.Next().has_value());
    const grpc::Status later_end = later.Finish();
    CHECK(later_end.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK_THAT(later_end.error_message(), Catch::Contains("shutting down"));
    std::optional<ServingStatus> last = ServingStatus::kServing;  // the one read before
    int updates = 0, repeats = 0;
    for (std::optional<ServingStatus> s = all.Next(); s.has_value(); s = all.Next()) {
      if (s == last) ++repeats;  // a flip and its flip back coalesced must not be sent again
      last = s;
      ++updates;
    }
    CHECK(repeats == 0);
    CHECK(last == ServingStatus::kNotServing);
    CHECK(updates <= 201);
    CHECK(all.Finish().error_code() == grpc::StatusCode::UNAVAILABLE);
    // A Watch that starts after the health shutdown gets NOT_SERVING and ends the same way.
    WatchStream late(gateway.channel, "");
    CHECK(late.Next() == ServingStatus::kNotServing);
    CHECK_FALSE(late.Next().has_value());
    CHECK(late.Finish().error_code() == grpc::StatusCode::UNAVAILABLE);
    gateway.server->Shutdown();
  }
  SECTION("a cancelled stream leaves the gateway serving") {
    all.Cancel();
    CHECK_FALSE(all.Next().has_value());
    CHECK(all.Finish().error_code() == grpc::StatusCode::CANCELLED);
    gateway.health->Set("", false);  // no watcher left for ""
    CHECK(CheckStatus(gateway.channel, "") == ServingStatus::kNotServing);
    gateway.health->Set("later", false);
    CHECK(later.Next() == ServingStatus::kNotServing);
  }
}

TEST_CASE("the proxy counts the calls it serves, so its Shutdown waits for open streams") {
  FakeGenerative generative;
  FakeDiscriminative discriminative;
  TestServer gen_server({&generative});
  TestServer disc_server({&discriminative});
  TestGateway gateway(gen_server.target(), disc_server.target());
  CHECK(gateway.proxy->live_calls() == 0);
  WatchStream first(gateway.channel, "");
  WatchStream second(gateway.channel, "later");
  REQUIRE(first.Next() == ServingStatus::kServing);
  REQUIRE(second.Next() == ServingStatus::kServiceUnknown);
  CHECK(gateway.proxy->live_calls() == 2);  // two open Watch streams (was 0: never counted)
  second.Cancel();
  CHECK_FALSE(second.Next().has_value());
  for (int i = 0; i < 1000 && gateway.proxy->live_calls() != 1; ++i) {  // a call ends after its
    std::this_thread::sleep_for(std::chrono::milliseconds(10));         // client saw it end
  }
  CHECK(gateway.proxy->live_calls() == 1);
  // Shutdown (server, then proxy) returns only once the open stream has ended.
  gateway.server->Shutdown();
  CHECK(gateway.proxy->live_calls() == 0);
  CHECK_FALSE(first.Next().has_value());
}

TEST_CASE("the Gateway service answers a malformed request with INVALID_ARGUMENT") {
  TestGateway gateway("ipv4:127.0.0.1:1", "ipv4:127.0.0.1:1");
  for (const char* method : {kListModelsMethod, kGetBackendsMethod}) {
    RawCallResult result = RawUnaryCall(gateway.channel, method, std::string("\x0a\x05x", 3),
                                        std::chrono::seconds(10));
    CHECK(result.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(result.status.error_message().find("is not a serialized") != std::string::npos);
  }
  // An unknown method of the Gateway service is not routed anywhere.
  RawCallResult unknown = RawUnaryCall(gateway.channel, "/maas.gateway.v1.Gateway/NoSuchMethod", "",
                                       std::chrono::seconds(10));
  CHECK(unknown.status.error_code() == grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace
}  // namespace maas::gateway
