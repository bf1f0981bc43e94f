// The h2 front's frame state machine, driven frame by frame: a raw nghttp2 client on one side, a
// fake nghttp2 backend on the other (tests/services/gateway/h2_peer.h), the front on its own thread
// in between. Every wait has a generous cap; nothing asserts timing.
#include "services/gateway/h2/h2_front.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "tests/services/gateway/h2_peer.h"

namespace maas::gateway::h2 {
namespace {

using testing::ClientTlsContext;
using testing::FakeBackend;
using testing::Find;
using testing::FrontThread;
using testing::GrpcMessage;
using testing::Headers;
using testing::Loop;
using testing::OkTrailers;
using testing::Peer;
using testing::PeerOptions;
using testing::PeerStream;
using testing::RequestHeaders;
using testing::ResponseHeaders;

struct Record {
  std::string method;
  int code = -1;
  std::string message;
};

// A client connected to a front routing service "a.B" to one fake backend: "Unary" has one response
// message, "Train" is not idempotent, every other method is a stream.
class Rig {
 public:
  explicit Rig(const std::function<void(FrontOptions&)>& tweak = {}, PeerOptions client = {},
               PeerOptions backend = {})
      : backend_(backend), front_(MakeOptions(tweak)) {
    REQUIRE(front_.status().ok());
    client_ = Peer::Connect(front_.port(), client);
    REQUIRE(client_ != nullptr);
    loop_.Add(client_.get());
    loop_.Add(&backend_);
  }

  FakeBackend& backend() { return backend_; }
  FrontThread& front() { return front_; }
  Loop& loop() { return loop_; }
  Peer& client() { return *client_; }
  PeerStream& call(int32_t sid) { return client_->stream(sid); }

  // The backend's `i`-th request stream (0-based, over all its connections), waiting for it.
  std::pair<Peer*, int32_t> Request(size_t i) {
    REQUIRE(loop_.RunUntil([&] { return backend_.requests().size() > i; }));
    return backend_.requests()[i];
  }
  bool RunUntil(const std::function<bool()>& done) { return loop_.RunUntil(done); }
  // Runs until the client stream `sid` is closed.
  bool Finish(int32_t sid) {
    return loop_.RunUntil([&] { return client_->stream(sid).closed; });
  }
  // The backend's request number `i` (the client's call `sid`, whole) answered with one message:
  // the call ends OK.
  void AnswerOk(size_t i, int32_t sid) {
    auto [backend, bsid] = Request(i);
    REQUIRE(loop_.RunUntil(
        [&, backend = backend, bsid = bsid] { return backend->stream(bsid).end_stream; }));
    backend->Respond(bsid, ResponseHeaders());
    backend->Write(bsid, GrpcMessage("a"), true, OkTrailers());
    REQUIRE(Finish(sid));
    CHECK(Find(client_->stream(sid).trailers, "grpc-status") == "0");
  }
  std::vector<Record> records() {
    absl::MutexLock lock(&mu_);
    return records_;
  }
  // Waits until the front has recorded `n` finished calls.
  bool WaitRecords(size_t n) {
    return loop_.RunUntil([&] { return records().size() >= n; });
  }

 private:
  FrontOptions MakeOptions(const std::function<void(FrontOptions&)>& tweak) {
    FrontOptions o;
    o.listen_host = "127.0.0.1";
    o.routes = {{"a.B", backend_.target(), {"Train"}, {"Unary"}}};
    o.backend_connections = 1;
    o.keepalive_time_ms = 0;
    o.stream_window_bytes = 65535;
    o.on_call_end = [this](const FrontCallRecord& r) {
      absl::MutexLock lock(&mu_);
      records_.push_back({std::string(r.method), r.code, std::string(r.message)});
    };
    if (tweak) tweak(o);
    return o;
  }

  absl::Mutex mu_;
  std::vector<Record> records_ ABSL_GUARDED_BY(mu_);
  FakeBackend backend_;
  FrontThread front_;
  Loop loop_;
  std::unique_ptr<Peer> client_;
};

Headers With(Headers h, const std::string& name, const std::string& value) {
  h.emplace_back(name, value);
  return h;
}

TEST_CASE("h2 front: a unary call crosses with its headers, message and trailers") {
  Rig rig;
  const int32_t sid =
      rig.client().Submit(With(RequestHeaders("/a.B/Unary"), "x-request-id", "req-7"),
                          GrpcMessage("question"), /*end=*/true);
  auto [backend, bsid] = rig.Request(0);
  PeerStream& b = backend->stream(bsid);
  REQUIRE(rig.RunUntil([&] { return b.end_stream; }));
  CHECK(Find(b.headers, ":path") == "/a.B/Unary");
  // The backend's name (the route's target), not the gateway's: a mesh sidecar routes by it.
  CHECK(Find(b.headers, ":authority") == "127.0.0.1:" + std::to_string(rig.backend().port()));
  CHECK(Find(b.headers, "content-type") == "application/grpc");
  CHECK(Find(b.headers, "te") == "trailers");
  CHECK(Find(b.headers, "x-request-id") == "req-7");
  CHECK(b.data == GrpcMessage("question"));

  backend->Respond(bsid, With(ResponseHeaders(), "maas-model-name", "m1"));
  backend->Write(bsid, GrpcMessage("answer"), /*end=*/true,
                 {{"grpc-status", "0"}, {"maas-model-version", "3"}});
  REQUIRE(rig.Finish(sid));
  const PeerStream& c = rig.call(sid);
  CHECK(Find(c.headers, ":status") == "200");
  CHECK(Find(c.headers, "maas-model-name") == "m1");
  CHECK(c.data == GrpcMessage("answer"));
  CHECK(Find(c.trailers, "grpc-status") == "0");
  CHECK(Find(c.trailers, "maas-model-version") == "3");
  CHECK(c.close_code == NGHTTP2_NO_ERROR);
  CHECK_FALSE(c.got_rst);
  REQUIRE(rig.WaitRecords(1));
  CHECK(rig.records()[0].method == "/a.B/Unary");
  CHECK(rig.records()[0].code == 0);
  CHECK(rig.front()->active_calls() == 0);
}

// The gateway's own services sit behind the front on a loopback port: calls of the default route
// carry the client's address in FrontOptions::client_peer_header so that their log lines name the
// client, and a client cannot put its own value there (dropped on every route).
TEST_CASE("h2 front: default-route calls carry the client's address, which clients cannot set") {
  Rig rig([](FrontOptions& o) {
    o.client_peer_header = "maas-client-peer";
    o.default_target = o.routes[0].target;  // the same fake backend serves the default route
  });
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  REQUIRE(getsockname(rig.client().fd(), reinterpret_cast<sockaddr*>(&local), &len) == 0);
  const std::string client_address = "ipv4:127.0.0.1:" + std::to_string(ntohs(local.sin_port));
  size_t requests = 0;
  for (const std::string path : {"/a.B/Unary", "/other.Service/Method"}) {
    const int32_t sid = rig.client().Submit(
        With(RequestHeaders(path), "maas-client-peer", "ipv4:6.6.6.6:1"), GrpcMessage("q"),
        /*end=*/true);
    auto [backend, bsid] = rig.Request(requests++);
    REQUIRE(rig.RunUntil([&] { return backend->stream(bsid).end_stream; }));
    const Headers& seen = backend->stream(bsid).headers;
    CHECK(Find(seen, ":path") == path);
    // A backend route gets no such header (the client's is dropped); the default route gets the
    // front's, once.
    const bool default_route = path != "/a.B/Unary";
    CHECK(Find(seen, "maas-client-peer") == (default_route ? client_address : ""));
    CHECK(std::count_if(seen.begin(), seen.end(), [](const auto& h) {
            return h.first == "maas-client-peer";
          }) == (default_route ? 1 : 0));
    backend->Respond(bsid, ResponseHeaders());
    backend->Write(bsid, GrpcMessage("a"), /*end=*/true, OkTrailers());
    REQUIRE(rig.Finish(sid));
  }
}

// Regression: the call log and metrics callback ran inside nghttp2's serialization of the trailers,
// before they were sent, so its work (a log line, metrics) delayed every call's answer. It now runs
// after the round's output went out: a callback that blocks does not hold the answer back.
TEST_CASE("h2 front: on_call_end runs after the call's answer was sent") {
  absl::Notification answered;
  std::atomic<bool> answered_before_callback{false};
  std::atomic<int> callbacks{0};
  Rig rig([&](FrontOptions& o) {
    o.on_call_end = [&](const FrontCallRecord&) {
      // Generous cap: before the fix the answer waited for this callback, so it never came.
      answered_before_callback = answered.WaitForNotificationWithTimeout(absl::Seconds(10));
      ++callbacks;
    };
  });
  const int32_t sid =
      rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("question"), /*end=*/true);
  auto [backend, bsid] = rig.Request(0);
  REQUIRE(rig.RunUntil([&] { return backend->stream(bsid).end_stream; }));
  backend->Respond(bsid, ResponseHeaders());
  backend->Write(bsid, GrpcMessage("answer"), /*end=*/true, OkTrailers());
  const bool finished = rig.Finish(sid);
  answered.Notify();
  REQUIRE(finished);
  CHECK(Find(rig.call(sid).trailers, "grpc-status") == "0");
  REQUIRE(rig.RunUntil([&] { return callbacks.load() == 1; }));
  CHECK(answered_before_callback.load());
}

// Regression: nghttp2 checks RFC 9113's rule against leading and trailing whitespace in field
// values and reset such a request with PROTOCOL_ERROR; gRPC servers accept them (test_e2e_auth
// sends "authorization: Bearer " and expects the backend's PERMISSION_DENIED).
TEST_CASE(
    "h2 front: header values with surrounding whitespace pass both ways, as gRPC passes them") {
  Rig rig;
  const int32_t sid = rig.client().Submit(
      With(RequestHeaders("/a.B/Unary"), "authorization", "Bearer "), GrpcMessage("q"), true);
  auto [backend, bsid] = rig.Request(0);
  REQUIRE(rig.RunUntil([&] { return backend->stream(bsid).end_stream; }));
  CHECK(Find(backend->stream(bsid).headers, "authorization") == "Bearer ");
  backend->Respond(bsid, With(ResponseHeaders(), "x-note", " spaced "));
  backend->Write(bsid, GrpcMessage("a"), true, {{"grpc-status", "7"}, {"grpc-message", "no "}});
  REQUIRE(rig.Finish(sid));
  CHECK_FALSE(rig.call(sid).got_rst);
  CHECK(Find(rig.call(sid).headers, "x-note") == " spaced ");
  CHECK(Find(rig.call(sid).trailers, "grpc-status") == "7");
  CHECK(Find(rig.call(sid).trailers, "grpc-message") == "no ");
}

// A request the front resets for breaking HTTP/2's rules (here a connection-specific header) was
// logged as the client having cancelled it (CANCELLED); its client sees INTERNAL (gRPC's reading
// of RST_STREAM PROTOCOL_ERROR), and the reset was the front's.
TEST_CASE("h2 front: a request it resets for a protocol error is logged INTERNAL, saying why") {
  Rig rig;
  const int32_t sid = rig.client().Submit(
      With(RequestHeaders("/a.B/Unary"), "connection", "keep-alive"), GrpcMessage("q"), true);
  REQUIRE(rig.Finish(sid));
  CHECK(rig.call(sid).got_rst);
  CHECK(rig.call(sid).rst_code == NGHTTP2_PROTOCOL_ERROR);
  REQUIRE(rig.WaitRecords(1));
  CHECK(rig.records()[0].code == 13);  // INTERNAL
  CHECK_THAT(rig.records()[0].message, Catch::Contains("PROTOCOL_ERROR"));
  CHECK(rig.backend().requests().empty());
}

TEST_CASE("h2 front: a call without x-request-id gets one, forwarded and returned") {
  Rig rig([](FrontOptions& o) { o.request_id_prefix = "t"; });
  const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("q"), true);
  auto [backend, bsid] = rig.Request(0);
  REQUIRE(rig.RunUntil([&] { return backend->stream(bsid).end_stream; }));
  const std::string id = Find(backend->stream(bsid).headers, "x-request-id");
  CHECK(id.rfind("t-", 0) == 0);
  backend->Respond(bsid, ResponseHeaders());
  backend->Write(bsid, GrpcMessage("a"), true, OkTrailers());
  REQUIRE(rig.Finish(sid));
  CHECK(Find(rig.call(sid).headers, "x-request-id") == id);
}

TEST_CASE("h2 front: a generated x-request-id of a call that ends at once is initial metadata") {
  // gRPC reads a trailers-only response as trailing metadata only; a backend called directly
  // returns a generated id as initial metadata, so the front must too.
  Rig rig([](FrontOptions& o) { o.request_id_prefix = "t"; });
  SECTION("a backend's trailers-only answer") {
    const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("q"), true);
    auto [backend, bsid] = rig.Request(0);
    REQUIRE(rig.RunUntil([&] { return backend->stream(bsid).end_stream; }));
    const std::string id = Find(backend->stream(bsid).headers, "x-request-id");
    CHECK(id.rfind("t-", 0) == 0);
    backend->Respond(bsid,
                     {{":status", "200"},
                      {"content-type", "application/grpc"},
                      {"grpc-status", "5"},
                      {"grpc-message", "no model named 'm'"},
                      {"maas-model-name", "m"}},
                     /*end=*/true);
    REQUIRE(rig.Finish(sid));
    const PeerStream& c = rig.call(sid);
    CHECK(Find(c.headers, "x-request-id") == id);
    CHECK(Find(c.headers, ":status") == "200");
    CHECK(Find(c.headers, "grpc-status").empty());
    CHECK(Find(c.trailers, "grpc-status") == "5");
    CHECK(Find(c.trailers, "grpc-message") == "no model named 'm'");
    CHECK(Find(c.trailers, "maas-model-name") == "m");
    CHECK(Find(c.trailers, "x-request-id").empty());
  }
  SECTION("the front's own answer (no route)") {
    const int32_t sid = rig.client().Submit(RequestHeaders("/x.Y/Z"), GrpcMessage("q"), true);
    REQUIRE(rig.Finish(sid));
    const PeerStream& c = rig.call(sid);
    CHECK(Find(c.headers, "x-request-id").rfind("t-", 0) == 0);
    CHECK(Find(c.trailers, "grpc-status") == "12");
  }
  SECTION("the client's own id: one block, as the backend sent it") {
    const int32_t sid = rig.client().Submit(
        With(RequestHeaders("/a.B/Unary"), "x-request-id", "mine"), GrpcMessage("q"), true);
    auto [backend, bsid] = rig.Request(0);
    REQUIRE(rig.RunUntil([&] { return backend->stream(bsid).end_stream; }));
    backend->Respond(bsid,
                     {{":status", "200"},
                      {"content-type", "application/grpc"},
                      {"grpc-status", "5"},
                      {"grpc-message", "gone"}},
                     /*end=*/true);
    REQUIRE(rig.Finish(sid));
    const PeerStream& c = rig.call(sid);
    CHECK(Find(c.headers, "grpc-status") == "5");
    CHECK(Find(c.headers, "x-request-id").empty());
    CHECK(c.trailers.empty());
  }
}

TEST_CASE("h2 front: server streaming forwards each message as it comes") {
  Rig rig;
  const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Sample"), GrpcMessage("n=3"), true);
  auto [backend, bsid] = rig.Request(0);
  REQUIRE(rig.RunUntil([&] { return backend->stream(bsid).end_stream; }));
  backend->Respond(bsid, ResponseHeaders());
  std::string expected;
  for (int i = 0; i < 3; ++i) {
    const std::string m = GrpcMessage("batch " + std::to_string(i));
    backend->Write(bsid, m);
    expected += m;
    // The message reaches the client while the backend stream is still open.
    REQUIRE(rig.RunUntil([&] { return rig.call(sid).data == expected; }));
    CHECK_FALSE(rig.call(sid).closed);
  }
  backend->Write(bsid, "", true, OkTrailers());
  REQUIRE(rig.Finish(sid));
  CHECK(Find(rig.call(sid).trailers, "grpc-status") == "0");
  CHECK(rig.call(sid).close_code == NGHTTP2_NO_ERROR);
}

TEST_CASE("h2 front: client streaming forwards each message before the client ends") {
  Rig rig;
  const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Upload"), GrpcMessage("1"), false);
  auto [backend, bsid] = rig.Request(0);
  PeerStream& b = backend->stream(bsid);
  REQUIRE(rig.RunUntil([&] { return b.data == GrpcMessage("1"); }));
  CHECK_FALSE(b.end_stream);
  rig.client().Write(sid, GrpcMessage("2"));
  REQUIRE(rig.RunUntil([&] { return b.data == GrpcMessage("1") + GrpcMessage("2"); }));
  CHECK_FALSE(b.end_stream);
  rig.client().Write(sid, GrpcMessage("3"), /*end=*/true);
  REQUIRE(rig.RunUntil([&] { return b.end_stream; }));
  CHECK(b.data == GrpcMessage("1") + GrpcMessage("2") + GrpcMessage("3"));
  backend->Respond(bsid, ResponseHeaders());
  backend->Write(bsid, GrpcMessage("3 received"), true, OkTrailers());
  REQUIRE(rig.Finish(sid));
  CHECK(rig.call(sid).data == GrpcMessage("3 received"));
  CHECK(Find(rig.call(sid).trailers, "grpc-status") == "0");
}

TEST_CASE("h2 front: bidi streaming ping-pongs message by message") {
  Rig rig;
  const int32_t sid =
      rig.client().Submit(RequestHeaders("/a.B/Chat"), GrpcMessage("ping 0"), false);
  auto [backend, bsid] = rig.Request(0);
  PeerStream& b = backend->stream(bsid);
  backend->Respond(bsid, ResponseHeaders());
  std::string sent;
  std::string answered;
  for (int i = 0; i < 5; ++i) {
    sent += GrpcMessage("ping " + std::to_string(i));
    REQUIRE(rig.RunUntil([&] { return b.data == sent; }));
    const std::string pong = GrpcMessage("pong " + std::to_string(i));
    backend->Write(bsid, pong);
    answered += pong;
    REQUIRE(rig.RunUntil([&] { return rig.call(sid).data == answered; }));
    if (i < 4) rig.client().Write(sid, GrpcMessage("ping " + std::to_string(i + 1)));
  }
  rig.client().Write(sid, "", /*end=*/true);
  REQUIRE(rig.RunUntil([&] { return b.end_stream; }));
  backend->Write(bsid, "", true, OkTrailers());
  REQUIRE(rig.Finish(sid));
  CHECK(rig.call(sid).close_code == NGHTTP2_NO_ERROR);
}

TEST_CASE("h2 front: a client RST_STREAM cancels the backend stream") {
  Rig rig;
  const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Chat"), GrpcMessage("x"), false);
  auto [backend, bsid] = rig.Request(0);
  backend->Respond(bsid, ResponseHeaders());
  backend->Write(bsid, GrpcMessage("y"));
  REQUIRE(rig.RunUntil([&] { return !rig.call(sid).data.empty(); }));
  rig.client().Reset(sid, NGHTTP2_CANCEL);
  REQUIRE(rig.RunUntil([&] { return backend->stream(bsid).closed; }));
  CHECK(backend->stream(bsid).got_rst);
  CHECK(backend->stream(bsid).rst_code == NGHTTP2_CANCEL);
  REQUIRE(rig.WaitRecords(1));
  CHECK(rig.records()[0].code == 1);  // CANCELLED
  REQUIRE(rig.RunUntil([&] { return rig.front()->active_calls() == 0; }));
}

TEST_CASE(
    "h2 front: a client reset at its grpc-timeout is DEADLINE_EXCEEDED, before it CANCELLED") {
  // Clients reset the stream when their deadline passes; the call log and metrics must tell that
  // from a client giving up.
  Rig rig;
  const auto reset_after = [&](const std::string& timeout, absl::Duration wait) {
    const int32_t sid = rig.client().Submit(
        With(RequestHeaders("/a.B/Chat"), "grpc-timeout", timeout), GrpcMessage("x"), false);
    auto [backend, bsid] = rig.Request(rig.backend().requests().size());
    CHECK(Find(backend->stream(bsid).headers, "grpc-timeout") == timeout);
    rig.loop().RunFor(wait);
    rig.client().Reset(sid, NGHTTP2_CANCEL);
  };
  reset_after("200m", absl::Milliseconds(250));
  REQUIRE(rig.WaitRecords(1));
  CHECK(rig.records()[0].code == 4);  // DEADLINE_EXCEEDED
  CHECK(rig.records()[0].message == "the client's deadline passed");
  reset_after("60S", absl::Milliseconds(50));
  REQUIRE(rig.WaitRecords(2));
  CHECK(rig.records()[1].code == 1);  // CANCELLED
  CHECK(rig.records()[1].message == "the client cancelled the call");
  reset_after("1x", absl::Milliseconds(50));  // not a grpc-timeout: no deadline
  REQUIRE(rig.WaitRecords(3));
  CHECK(rig.records()[2].code == 1);
  // The largest timeouts saturate (8 digits of hours are more nanoseconds than int64 holds; the
  // product used to wrap negative: "deadline passed").
  for (const char* huge : {"99999999H", "2562048H", "99999999M"}) {
    const size_t before = rig.records().size();
    reset_after(huge, absl::Milliseconds(20));
    REQUIRE(rig.WaitRecords(before + 1));
    CHECK(rig.records()[before].code == 1);
  }
}

TEST_CASE("h2 front: a backend RST_STREAM before the response is a status, after it a reset") {
  Rig rig;
  SECTION("before the response headers: trailers-only with gRPC's mapping of the code") {
    const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Chat"), GrpcMessage("x"), false);
    auto [backend, bsid] = rig.Request(0);
    backend->Reset(bsid, NGHTTP2_INTERNAL_ERROR);
    REQUIRE(rig.Finish(sid));
    const PeerStream& c = rig.call(sid);
    CHECK(Find(c.headers, ":status") == "200");
    CHECK(Find(c.trailers, "grpc-status") == "13");
    CHECK(Find(c.trailers, "grpc-message").find("reset the stream") != std::string::npos);
    CHECK(c.end_stream);
  }
  SECTION("after the response headers: the client stream is reset with the backend's code") {
    const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Chat"), GrpcMessage("x"), false);
    auto [backend, bsid] = rig.Request(0);
    backend->Respond(bsid, ResponseHeaders());
    backend->Write(bsid, GrpcMessage("first"));
    REQUIRE(rig.RunUntil([&] { return rig.call(sid).data == GrpcMessage("first"); }));
    backend->Reset(bsid, NGHTTP2_CANCEL);
    REQUIRE(rig.Finish(sid));
    CHECK(rig.call(sid).got_rst);
    CHECK(rig.call(sid).rst_code == NGHTTP2_CANCEL);
  }
  REQUIRE(rig.RunUntil([&] { return rig.front()->active_calls() == 0; }));
}

TEST_CASE("h2 front: a backend that dies mid-stream ends the call UNAVAILABLE after its messages") {
  Rig rig;
  const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Sample"), GrpcMessage("x"), true);
  auto [backend, bsid] = rig.Request(0);
  backend->Respond(bsid, ResponseHeaders());
  backend->Write(bsid, GrpcMessage("first"));
  REQUIRE(rig.RunUntil([&] { return rig.call(sid).data == GrpcMessage("first"); }));
  backend->Abort();
  REQUIRE(rig.Finish(sid));
  const PeerStream& c = rig.call(sid);
  CHECK(c.data == GrpcMessage("first"));
  CHECK(Find(c.trailers, "grpc-status") == "14");
  CHECK(Find(c.trailers, "grpc-message").find("lost during the call") != std::string::npos);
  CHECK(c.close_code == NGHTTP2_NO_ERROR);
}

TEST_CASE(
    "h2 front: a backend that hangs with its socket open is pinged, closed, the call UNAVAILABLE") {
  // Keepalive is the only way to notice a backend that stopped (SIGSTOP, a deadlock) without
  // closing its connection; it used to run only when max_connection_age_ms was set too, so such a
  // call waited for the client's deadline, or forever.
  Rig rig([](FrontOptions& o) {
    o.keepalive_time_ms = 100;
    o.keepalive_timeout_ms = 200;
    o.max_connection_age_ms = 0;
  });
  const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Sample"), GrpcMessage("x"), true);
  auto [backend, bsid] = rig.Request(0);
  backend->Respond(bsid, ResponseHeaders());
  backend->Write(bsid, GrpcMessage("first"));
  REQUIRE(rig.RunUntil([&] { return rig.call(sid).data == GrpcMessage("first"); }));
  backend->Freeze();
  REQUIRE(rig.Finish(sid));
  const PeerStream& c = rig.call(sid);
  CHECK(c.data == GrpcMessage("first"));
  CHECK(Find(c.trailers, "grpc-status") == "14");
}

TEST_CASE("h2 front: request bytes kept for retries are capped over all calls") {
  // Each retryable call kept up to retry_buffer_bytes until its response headers, whatever the
  // others kept: 960 unanswered calls held 246 MB (4096 could hold 1 GiB). Beyond
  // retry_buffer_total_bytes a call is not retried, and what finished calls kept is given back.
  Rig rig([](FrontOptions& o) {
    o.backend_connections = 1;
    o.retry_buffer_bytes = 64 * 1024;
    o.retry_buffer_total_bytes = 100 * 1024;
  });
  const std::string body = GrpcMessage(std::string(60000, 'x'));
  // One at a time, so that the first call's 60 KB is what the budget holds when the others come.
  std::vector<int32_t> sids;
  for (size_t i = 0; i < 3; ++i) {
    sids.push_back(rig.client().Submit(RequestHeaders("/a.B/Unary"), body, true));
    auto [backend, bsid] = rig.Request(i);
    REQUIRE(rig.RunUntil([&] { return backend->stream(bsid).end_stream; }));
  }
  Peer* first = rig.backend().requests()[0].first;
  first->Abort();  // before any response: the kept call is tried again, the others cannot be
  auto [second, ssid] = rig.Request(3);
  REQUIRE(rig.RunUntil([&] { return second->stream(ssid).end_stream; }));
  CHECK(second->stream(ssid).data == body);
  second->Respond(ssid, ResponseHeaders());
  second->Write(ssid, GrpcMessage("ok"), true, OkTrailers());
  for (int32_t sid : sids) REQUIRE(rig.Finish(sid));
  CHECK(Find(rig.call(sids[0]).trailers, "grpc-status") == "0");
  CHECK(Find(rig.call(sids[1]).trailers, "grpc-status") == "14");
  CHECK(Find(rig.call(sids[2]).trailers, "grpc-status") == "14");
  // The finished calls gave their bytes back: a new call is kept, and retried, again.
  const int32_t again = rig.client().Submit(RequestHeaders("/a.B/Unary"), body, true);
  auto [third, tsid] = rig.Request(4);
  REQUIRE(rig.RunUntil([&] { return third->stream(tsid).end_stream; }));
  third->Abort();
  auto [fourth, fsid] = rig.Request(5);
  REQUIRE(rig.RunUntil([&] { return fourth->stream(fsid).end_stream; }));
  fourth->Respond(fsid, ResponseHeaders());
  fourth->Write(fsid, GrpcMessage("ok"), true, OkTrailers());
  REQUIRE(rig.Finish(again));
  CHECK(Find(rig.call(again).trailers, "grpc-status") == "0");
}

TEST_CASE("h2 front: a backend that dies before answering: idempotent calls retry, others fail") {
  Rig rig;
  SECTION("idempotent: a new connection answers") {
    const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("x"), true);
    auto [first, fsid] = rig.Request(0);
    REQUIRE(rig.RunUntil([&] { return first->stream(fsid).end_stream; }));
    first->Abort();
    auto [second, ssid] = rig.Request(1);
    CHECK(second != first);
    REQUIRE(rig.RunUntil([&] { return second->stream(ssid).end_stream; }));
    CHECK(second->stream(ssid).data == GrpcMessage("x"));
    second->Respond(ssid, ResponseHeaders());
    second->Write(ssid, GrpcMessage("ok"), true, OkTrailers());
    REQUIRE(rig.Finish(sid));
    CHECK(rig.call(sid).data == GrpcMessage("ok"));
    CHECK(Find(rig.call(sid).trailers, "grpc-status") == "0");
  }
  SECTION("not idempotent, request seen by the backend: UNAVAILABLE, no second attempt") {
    const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Train"), GrpcMessage("x"), true);
    auto [first, fsid] = rig.Request(0);
    REQUIRE(rig.RunUntil([&] { return first->stream(fsid).end_stream; }));
    first->Abort();
    REQUIRE(rig.Finish(sid));
    CHECK(Find(rig.call(sid).trailers, "grpc-status") == "14");
    // Not "no backend is reachable": this backend saw the call and may have processed it.
    CHECK(Find(rig.call(sid).trailers, "grpc-message").find("may have processed it") !=
          std::string::npos);
    rig.loop().RunFor(absl::Milliseconds(200));
    CHECK(rig.backend().requests().size() == 1);
  }
}

TEST_CASE("h2 front: a one-answer call whose backend dies after its headers alone is retried") {
  // maas's client-streaming reactors send the response headers when the request ends, then
  // compute the answer. The front committed the call on those headers, so a replica killed during
  // an Evaluate failed it UNAVAILABLE ("lost during the call") instead of retrying it elsewhere.
  Rig rig;
  const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("x"), true);
  auto [first, fsid] = rig.Request(0);
  REQUIRE(rig.RunUntil([&] { return first->stream(fsid).end_stream; }));
  SECTION("the backend dies") {
    first->Respond(fsid, ResponseHeaders());
    rig.loop().RunFor(absl::Milliseconds(200));  // the headers reach the front
    CHECK(rig.call(sid).header_blocks == 0);     // held until the answer
    first->Abort();
  }
  SECTION("the backend answers UNAVAILABLE after its headers") {
    first->Respond(fsid, ResponseHeaders());
    rig.loop().RunFor(absl::Milliseconds(200));
    first->Write(fsid, "", true, {{"grpc-status", "14"}, {"grpc-message", "draining"}});
  }
  auto [second, ssid] = rig.Request(1);
  REQUIRE(rig.RunUntil([&] { return second->stream(ssid).end_stream; }));
  CHECK(second->stream(ssid).data == GrpcMessage("x"));
  second->Respond(ssid, With(ResponseHeaders(), "x-answer", "second"));
  second->Write(ssid, GrpcMessage("ok"), true, OkTrailers());
  REQUIRE(rig.Finish(sid));
  const PeerStream& c = rig.call(sid);
  CHECK(Find(c.headers, "x-answer") == "second");
  CHECK(c.data == GrpcMessage("ok"));
  CHECK(Find(c.trailers, "grpc-status") == "0");
}

TEST_CASE("h2 front: held response headers go out with the message or the trailers") {
  Rig rig;
  SECTION("a one-answer call whose client ended its request") {
    // Its headers come alone and are held; then each way the attempt can go on.
    const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("x"), true);
    auto [backend, bsid] = rig.Request(0);
    REQUIRE(rig.RunUntil([&] { return backend->stream(bsid).end_stream; }));
    backend->Respond(bsid, With(ResponseHeaders(), "x-answer", "one"));
    rig.loop().RunFor(absl::Milliseconds(100));
    SECTION("its message: headers and message together, then trailers") {
      backend->Write(bsid, GrpcMessage("ok"), true, OkTrailers());
      REQUIRE(rig.Finish(sid));
      CHECK(Find(rig.call(sid).headers, "x-answer") == "one");
      CHECK(rig.call(sid).data == GrpcMessage("ok"));
      CHECK(Find(rig.call(sid).trailers, "grpc-status") == "0");
    }
    SECTION("an error status (not UNAVAILABLE): the error, not retried") {
      backend->Write(bsid, "", true, {{"grpc-status", "3"}, {"grpc-message", "bad"}});
      REQUIRE(rig.Finish(sid));
      CHECK(Find(rig.call(sid).headers, "x-answer") == "one");
      CHECK(Find(rig.call(sid).trailers, "grpc-status") == "3");
      CHECK(Find(rig.call(sid).trailers, "grpc-message") == "bad");
    }
    SECTION("the client cancels: the backend stream is cancelled") {
      rig.client().Reset(sid, NGHTTP2_CANCEL);
      REQUIRE(rig.RunUntil([&] { return backend->stream(bsid).closed; }));
      CHECK(backend->stream(bsid).rst_code == NGHTTP2_CANCEL);
      REQUIRE(rig.WaitRecords(1));
      CHECK(rig.records()[0].code == 1);  // CANCELLED
    }
    SECTION("the backend resets the stream: the reset's status, not a retry") {
      backend->Reset(bsid, NGHTTP2_INTERNAL_ERROR);
      REQUIRE(rig.Finish(sid));
      CHECK(Find(rig.call(sid).trailers, "grpc-status") == "13");
      CHECK(Find(rig.call(sid).trailers, "grpc-message").find("reset the stream") !=
            std::string::npos);
    }
    CHECK(rig.backend().requests().size() == 1);
  }
  SECTION("a stream's headers are not held: the client has them before any message") {
    const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Sample"), GrpcMessage("x"), true);
    auto [backend, bsid] = rig.Request(0);
    backend->Respond(bsid, With(ResponseHeaders(), "x-answer", "early"));
    REQUIRE(rig.RunUntil([&] { return rig.call(sid).header_blocks == 1; }));
    CHECK(Find(rig.call(sid).headers, "x-answer") == "early");
    backend->Write(bsid, GrpcMessage("s"), true, OkTrailers());
    REQUIRE(rig.Finish(sid));
  }
  SECTION("a one-answer call whose client has not ended its request gets the headers at once") {
    const int32_t sid =
        rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("x"), /*end=*/false);
    auto [backend, bsid] = rig.Request(0);
    backend->Respond(bsid, ResponseHeaders());
    REQUIRE(rig.RunUntil([&] { return rig.call(sid).header_blocks == 1; }));
    rig.client().Write(sid, "", /*end=*/true);
    REQUIRE(rig.RunUntil([&] { return backend->stream(bsid).end_stream; }));
    backend->Write(bsid, GrpcMessage("ok"), true, OkTrailers());
    REQUIRE(rig.Finish(sid));
    CHECK(Find(rig.call(sid).trailers, "grpc-status") == "0");
  }
  REQUIRE(rig.RunUntil([&] { return rig.front()->active_calls() == 0; }));
}

TEST_CASE("h2 front: a slow reader holds the backend to the windows (nothing buffers a stream)") {
  PeerOptions slow;
  slow.auto_consume = false;  // reads only what the test consumes
  Rig rig({}, slow);
  const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Sample"), GrpcMessage("x"), true);
  auto [backend, bsid] = rig.Request(0);
  backend->Respond(bsid, ResponseHeaders());
  std::string body;
  for (int i = 0; body.size() < (4u << 20); ++i) {
    body += GrpcMessage(std::string(16000, static_cast<char>('a' + i % 26)));
  }
  backend->Write(bsid, body, true, OkTrailers());
  PeerStream& b = backend->stream(bsid);
  // The backend can fill the client's window (65535) and the front's (65535), then must stop.
  REQUIRE(rig.RunUntil([&] { return rig.call(sid).data.size() == 65535; }));
  size_t before = 0;
  do {  // until the backend stopped sending (it stops after the windows, or never)
    before = b.sent;
    rig.loop().RunFor(absl::Milliseconds(200));
  } while (b.sent != before && b.sent < body.size());
  CHECK(b.sent <= 2 * 65535);
  CHECK(b.sent >= 65535);
  // Reading resumes the stream; everything arrives, in order.
  size_t consumed = 0;
  REQUIRE(rig.RunUntil([&] {
    PeerStream& c = rig.call(sid);
    if (c.data.size() > consumed) {
      rig.client().Consume(sid, c.data.size() - consumed);
      consumed = c.data.size();
    }
    return c.closed;
  }));
  CHECK(rig.call(sid).data == body);
  CHECK(Find(rig.call(sid).trailers, "grpc-status") == "0");
}

TEST_CASE("h2 front: a backend that does not read holds the client to the windows") {
  PeerOptions slow;
  slow.auto_consume = false;
  Rig rig({}, {}, slow);
  std::string body;
  for (int i = 0; body.size() < (4u << 20); ++i) body += GrpcMessage(std::string(16000, 'q'));
  const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Upload"), body, true);
  auto [backend, bsid] = rig.Request(0);
  PeerStream& b = backend->stream(bsid);
  REQUIRE(rig.RunUntil([&] { return b.data.size() == 65535; }));
  PeerStream& c = rig.call(sid);
  size_t before = 0;
  do {
    before = c.sent;
    rig.loop().RunFor(absl::Milliseconds(200));
  } while (c.sent != before && c.sent < body.size());
  CHECK(c.sent <= 2 * 65535);
  size_t consumed = 0;
  REQUIRE(rig.RunUntil([&] {
    if (b.data.size() > consumed) {
      backend->Consume(bsid, b.data.size() - consumed);
      consumed = b.data.size();
    }
    return b.end_stream;
  }));
  CHECK(b.data == body);
}

TEST_CASE("h2 front: Shutdown sends GOAWAY, lets the running call finish, then Run returns") {
  Rig rig;
  const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Sample"), GrpcMessage("x"), true);
  auto [backend, bsid] = rig.Request(0);
  backend->Respond(bsid, ResponseHeaders());
  backend->Write(bsid, GrpcMessage("1"));
  REQUIRE(rig.RunUntil([&] { return !rig.call(sid).data.empty(); }));
  rig.front()->Shutdown(absl::Seconds(30));
  REQUIRE(rig.RunUntil([&] { return rig.client().got_goaway(); }));
  CHECK(rig.client().goaway_code() == NGHTTP2_NO_ERROR);
  CHECK(rig.client().goaway_last_stream() >= sid);
  rig.loop().RunFor(absl::Milliseconds(100));
  CHECK_FALSE(rig.front().returned());  // the call still runs
  backend->Write(bsid, GrpcMessage("2"), true, OkTrailers());
  REQUIRE(rig.Finish(sid));
  CHECK(rig.call(sid).data == GrpcMessage("1") + GrpcMessage("2"));
  CHECK(Find(rig.call(sid).trailers, "grpc-status") == "0");
  REQUIRE(rig.RunUntil([&] { return rig.front().returned(); }));
  REQUIRE(rig.RunUntil([&] { return rig.client().dead(); }));
}

TEST_CASE("h2 front: a call running at max_connection_age finishes, the idle connection closes") {
  // The age moves new calls to new connections; it must not cut the calls in flight (a 30 s grace
  // used to, so a Job's long Sample stream through the gateway ended UNAVAILABLE).
  CHECK(FrontOptions().max_connection_age_grace == absl::InfiniteDuration());
  Rig rig([](FrontOptions& o) { o.max_connection_age_ms = 100; });
  const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Sample"), GrpcMessage("x"), true);
  auto [backend, bsid] = rig.Request(0);
  backend->Respond(bsid, ResponseHeaders());
  backend->Write(bsid, GrpcMessage("first"));
  REQUIRE(rig.RunUntil([&] { return rig.client().got_goaway(); }));
  rig.loop().RunFor(absl::Milliseconds(1500));  // past the GOAWAY by more than a second
  CHECK_FALSE(rig.client().dead());
  backend->Write(bsid, GrpcMessage("last"), true, OkTrailers());
  REQUIRE(rig.Finish(sid));
  CHECK(rig.call(sid).data == GrpcMessage("first") + GrpcMessage("last"));
  CHECK(Find(rig.call(sid).trailers, "grpc-status") == "0");
  // No call left and no new one can come: the front closes the connection.
  REQUIRE(rig.RunUntil([&] { return rig.client().dead(); }));
}

TEST_CASE("h2 front: a backend GOAWAY moves new calls to a new connection") {
  Rig rig;
  const int32_t first = rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("1"), true);
  auto [b1, s1] = rig.Request(0);
  b1->Respond(s1, ResponseHeaders());
  b1->Write(s1, GrpcMessage("a"), true, OkTrailers());
  REQUIRE(rig.Finish(first));
  b1->Goaway(NGHTTP2_NO_ERROR);
  rig.loop().RunFor(absl::Milliseconds(100));
  const int32_t second = rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("2"), true);
  auto [b2, s2] = rig.Request(1);
  CHECK(b2 != b1);
  b2->Respond(s2, ResponseHeaders());
  b2->Write(s2, GrpcMessage("b"), true, OkTrailers());
  REQUIRE(rig.Finish(second));
  CHECK(Find(rig.call(second).trailers, "grpc-status") == "0");
}

TEST_CASE("h2 front: --max_message_bytes in both directions") {
  Rig rig([](FrontOptions& o) { o.max_message_bytes = 1000; });
  SECTION("a request message one byte too large never reaches the backend") {
    const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Upload"),
                                            GrpcMessage(std::string(1001, 'x')), true);
    REQUIRE(rig.Finish(sid));
    CHECK(Find(rig.call(sid).trailers, "grpc-status") == "8");
    CHECK(Find(rig.call(sid).trailers, "grpc-message").find("max_message_bytes") !=
          std::string::npos);
    // The backend saw nothing (the front withdrew the HEADERS it had not sent yet), or a stream
    // without data that was reset.
    rig.loop().RunFor(absl::Milliseconds(200));
    for (auto [backend, bsid] : rig.backend().requests()) {
      CHECK(backend->stream(bsid).data.empty());
      CHECK(backend->stream(bsid).got_rst);
    }
  }
  SECTION("a message of exactly the limit passes") {
    const std::string m = GrpcMessage(std::string(1000, 'x'));
    const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Upload"), m, true);
    auto [backend, bsid] = rig.Request(0);
    REQUIRE(rig.RunUntil([&] { return backend->stream(bsid).end_stream; }));
    CHECK(backend->stream(bsid).data == m);
    backend->Respond(bsid, ResponseHeaders());
    backend->Write(bsid, m, true, OkTrailers());
    REQUIRE(rig.Finish(sid));
    CHECK(rig.call(sid).data == m);
    CHECK(Find(rig.call(sid).trailers, "grpc-status") == "0");
  }
  SECTION("a response message too large ends the call RESOURCE_EXHAUSTED") {
    const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Sample"), GrpcMessage("x"), true);
    auto [backend, bsid] = rig.Request(0);
    backend->Respond(bsid, ResponseHeaders());
    backend->Write(bsid, GrpcMessage("small"));
    backend->Write(bsid, GrpcMessage(std::string(1001, 'y')), true, OkTrailers());
    REQUIRE(rig.Finish(sid));
    CHECK(rig.call(sid).data == GrpcMessage("small"));
    CHECK(Find(rig.call(sid).trailers, "grpc-status") == "8");
    REQUIRE(rig.RunUntil([&] { return backend->stream(bsid).closed; }));
    CHECK(backend->stream(bsid).got_rst);
  }
}

TEST_CASE("h2 front: a second response message to a unary method ends the call INTERNAL") {
  Rig rig;
  const std::string two = GrpcMessage("one") + GrpcMessage("two");
  SECTION("unary: the first message, then INTERNAL") {
    const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("x"), true);
    auto [backend, bsid] = rig.Request(0);
    backend->Respond(bsid, ResponseHeaders());
    backend->Write(bsid, two, true, OkTrailers());
    REQUIRE(rig.Finish(sid));
    CHECK(rig.call(sid).data == GrpcMessage("one"));
    CHECK(Find(rig.call(sid).trailers, "grpc-status") == "13");
    CHECK(Find(rig.call(sid).trailers, "grpc-message").find("more than one response message") !=
          std::string::npos);
  }
  SECTION("a streaming method passes both") {
    const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Sample"), GrpcMessage("x"), true);
    auto [backend, bsid] = rig.Request(0);
    backend->Respond(bsid, ResponseHeaders());
    backend->Write(bsid, two, true, OkTrailers());
    REQUIRE(rig.Finish(sid));
    CHECK(rig.call(sid).data == two);
    CHECK(Find(rig.call(sid).trailers, "grpc-status") == "0");
  }
}

TEST_CASE("h2 front: unknown services are UNIMPLEMENTED without a default route") {
  Rig rig;
  const int32_t sid = rig.client().Submit(RequestHeaders("/x.Y/M"), GrpcMessage("x"), true);
  REQUIRE(rig.Finish(sid));
  CHECK(Find(rig.call(sid).trailers, "grpc-status") == "12");
  CHECK(rig.backend().requests().empty());
}

// Opens `n` streams on the client in batches the front admits, each reset (CANCEL) once its
// HEADERS went out, as a gRPC client does when it cancels many queued calls: each cancelled
// running call lets a queued one start, which is then cancelled too.
void OpenAndReset(Rig& rig, int n) {
  constexpr int kBatch = 50;
  for (int done = 0; done < n; done += kBatch) {
    std::vector<int32_t> sids;
    for (int i = 0; i < kBatch; ++i) {
      sids.push_back(rig.client().Submit(RequestHeaders("/a.B/Chat"), GrpcMessage("x"), false));
    }
    REQUIRE(rig.RunUntil([&] {
      if (rig.client().got_goaway() || rig.client().dead()) return true;
      for (int32_t sid : sids) {
        if (nghttp2_session_find_stream(rig.client().session(), sid) == nullptr) return false;
      }
      return !rig.client().wants_out();
    }));
    for (int32_t sid : sids) rig.client().Reset(sid, NGHTTP2_CANCEL);
    if (rig.client().got_goaway() || rig.client().dead()) return;
  }
}

// Regression: nghttp2's rapid-reset defence (Debian's 1.52 backports it, defaults 1000 resets and
// 33/s) answered a gRPC client that cancelled 2000 queued calls on one connection with
// GOAWAY(INTERNAL_ERROR); grpc.aio then hung at shutdown (test_e2e_gateway_limits,
// test_thousands_of_streams_on_one_connection_stay_cheap, 4 runs in 11 under load).
TEST_CASE("h2 front: a client cancelling thousands of calls keeps its connection") {
  Rig rig;
  OpenAndReset(rig, 3000);
  rig.loop().RunFor(absl::Milliseconds(100));
  CHECK_FALSE(rig.client().got_goaway());
  const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("x"), true);
  // The backend answers this call (the others it saw were reset).
  REQUIRE(rig.RunUntil([&] {
    for (auto [b, bsid] : rig.backend().requests()) {
      PeerStream& s = b->stream(bsid);
      if (s.end_stream && !s.closed && !s.got_rst && s.header_blocks == 1 && !s.provider) {
        b->Respond(bsid, ResponseHeaders());
        b->Write(bsid, GrpcMessage("ok"), true, OkTrailers());
      }
    }
    return rig.call(sid).closed;
  }));
  CHECK(Find(rig.call(sid).trailers, "grpc-status") == "0");
  CHECK_FALSE(rig.client().got_goaway());
  REQUIRE(rig.RunUntil([&] { return rig.front()->active_calls() == 0; }));
}

TEST_CASE("h2 front: a reset flood beyond client_reset_burst still gets GOAWAY and is closed") {
  Rig rig([](FrontOptions& o) {
    o.client_reset_burst = 100;
    o.client_reset_rate_per_s = 1;
  });
  OpenAndReset(rig, 300);
  REQUIRE(rig.RunUntil([&] { return rig.client().got_goaway(); }));
  CHECK(rig.client().goaway_code() != NGHTTP2_NO_ERROR);
  REQUIRE(rig.RunUntil([&] { return rig.client().dead(); }));
}

TEST_CASE("h2 front: a header list above 64 KiB is RESOURCE_EXHAUSTED and kept no larger") {
  // HPACK lets a 1-byte index repeat a field of the dynamic table: 30 copies of a 3 000-byte
  // field are a ~1 KB block that decodes to ~90 KB, which the front used to keep whole (a 128 KB
  // stream of such blocks became ~500 MB). It advertises SETTINGS_MAX_HEADER_LIST_SIZE and stops
  // keeping a block there; far beyond it (twice), the stream is reset and no longer decoded.
  Rig rig;
  const auto repeated = [](int copies) {
    Headers headers = RequestHeaders("/a.B/Unary");
    for (int i = 0; i < copies; ++i) {
      headers = With(std::move(headers), "x-rep", std::string(3000, 'v'));
    }
    return headers;
  };
  const int32_t sid = rig.client().Submit(repeated(30), GrpcMessage("q"), true);
  REQUIRE(rig.Finish(sid));
  CHECK(nghttp2_session_get_remote_settings(rig.client().session(),
                                            NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE) == 65536);
  const PeerStream& c = rig.call(sid);
  CHECK(Find(c.trailers, "grpc-status") == "8");
  CHECK(Find(c.trailers, "grpc-message").find("SETTINGS_MAX_HEADER_LIST_SIZE") !=
        std::string::npos);
  const int32_t far = rig.client().Submit(repeated(100), GrpcMessage("q"), true);
  REQUIRE(rig.Finish(far));
  CHECK(rig.call(far).close_code == NGHTTP2_INTERNAL_ERROR);
  CHECK(rig.backend().requests().empty());
  // The connection goes on: the next call is forwarded.
  rig.AnswerOk(0, rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("q"), true));
}

TEST_CASE("h2 front: a client that does not read cannot stall other clients on a backend") {
  // One backend connection, whose window the front used to give back only as each client took
  // the bytes: a client that never reads its Sample streams held the whole connection window, and
  // every other client's calls on that backend waited for it. Now the connection's window is
  // given back as bytes arrive; the reader that stalls holds its own streams' windows.
  Rig rig([](FrontOptions& o) {
    o.backend_connections = 1;
    o.stream_window_bytes = 64 * 1024;
    o.connection_window_bytes = 128 * 1024;
  });
  std::vector<int32_t> stalled;
  for (int i = 0; i < 4; ++i) {
    stalled.push_back(rig.client().Submit(RequestHeaders("/a.B/Sample"), GrpcMessage("x"), true));
  }
  std::vector<std::pair<Peer*, int32_t>> streams;
  for (size_t i = 0; i < stalled.size(); ++i) streams.push_back(rig.Request(i));
  rig.client().Freeze();
  for (auto& [backend, bsid] : streams) {
    backend->Respond(bsid, ResponseHeaders());
    backend->Write(bsid, GrpcMessage(std::string(60000, 's')));
  }
  // Until the front holds what the stalled client does not take (4 x 60 KB, beyond its 64 KiB
  // window and the front's 128 KiB connection window).
  Peer* backend = streams[0].first;
  REQUIRE(rig.RunUntil([&] {
    for (auto& [b, bsid] : streams) {
      if (!b->stream(bsid).out.empty()) return false;
    }
    return true;
  }));
  std::unique_ptr<Peer> other = Peer::Connect(rig.front().port());
  REQUIRE(other != nullptr);
  rig.loop().Add(other.get());
  const int32_t sid = other->Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("q"), true);
  auto [b2, bsid2] = rig.Request(stalled.size());
  CHECK(b2 == backend);
  b2->Respond(bsid2, ResponseHeaders());
  b2->Write(bsid2, GrpcMessage("answer"), true, OkTrailers());
  REQUIRE(rig.RunUntil([&] { return other->stream(sid).closed; }));
  CHECK(other->stream(sid).data == GrpcMessage("answer"));
  CHECK(Find(other->stream(sid).trailers, "grpc-status") == "0");
}

TEST_CASE("h2 front: request headers above one header block are RESOURCE_EXHAUSTED, not retried") {
  // nghttp2 refuses to send a header block above 64 KiB and closes the stream REFUSED_STREAM,
  // which the front took for "no backend reachable": UNAVAILABLE, retried, never sent.
  Rig rig;
  const int32_t sid = rig.client().Submit(
      With(RequestHeaders("/a.B/Unary"), "x-big", std::string(70000, 'v')), GrpcMessage("q"), true);
  REQUIRE(rig.Finish(sid));
  const PeerStream& c = rig.call(sid);
  CHECK(Find(c.trailers, "grpc-status") == "8");
  CHECK(Find(c.trailers, "grpc-message").find("header block") != std::string::npos);
  CHECK(rig.backend().requests().empty());
  // Just under the block passes.
  const int32_t ok = rig.client().Submit(
      With(RequestHeaders("/a.B/Unary"), "x-big", std::string(60000, 'v')), GrpcMessage("q"), true);
  rig.AnswerOk(0, ok);
}

// The 2026-12-06 gateway hunt: a -bin value that is not base64 went through to the backend, whose
// gRPC core failed the whole HTTP/2 connection on it ("Failed parsing HTTP/2"): every other
// client's call on that shared backend connection ended UNAVAILABLE. The front now answers such a
// call INVALID_ARGUMENT itself; base64 with or without padding, and empty values, go through.
TEST_CASE("h2 front: a -bin request header that is not base64 is INVALID_ARGUMENT, never sent") {
  Rig rig;
  for (const std::string value :
       {"!!!notb64", "Q", "QUFBQ", "QUFB QUFB", "-_-_", "Q===", "=QQQ", "QQ=", "QU=B"}) {
    INFO(value);
    const size_t before = rig.records().size();
    const int32_t sid = rig.client().Submit(With(RequestHeaders("/a.B/Unary"), "x-key-bin", value),
                                            GrpcMessage("q"), true);
    REQUIRE(rig.Finish(sid));
    CHECK(Find(rig.call(sid).trailers, "grpc-status") == "3");
    CHECK_THAT(Find(rig.call(sid).trailers, "grpc-message"),
               Catch::Contains("x-key-bin") && Catch::Contains("base64"));
    REQUIRE(rig.WaitRecords(before + 1));
  }
  CHECK(rig.backend().requests().empty());
  size_t answered = 0;
  for (const std::string value : {"", "QQ", "QUE", "QUFB", "QQ==", "QUE=", "QUFBQQ==", "+/+/"}) {
    INFO(value);
    const int32_t sid = rig.client().Submit(With(RequestHeaders("/a.B/Unary"), "x-key-bin", value),
                                            GrpcMessage("q"), true);
    rig.AnswerOk(answered++, sid);
  }
}

TEST_CASE("h2 front: out of file descriptors, the loop waits instead of spinning on accept") {
  // accept4 failing with EMFILE left the level-triggered listening socket readable: epoll_wait
  // returned at once, forever, one core at 100 % until descriptors were freed.
  std::atomic<int64_t> rounds{0};
  Rig rig([&rounds](FrontOptions& o) { o.on_round_end = [&rounds] { ++rounds; }; });
  // Client sockets made first; then the process may open no more descriptors, so the front's
  // accept4 of their connections fails with EMFILE.
  std::vector<int> sockets;
  for (int i = 0; i < 8; ++i) sockets.push_back(socket(AF_INET, SOCK_STREAM, 0));
  int open_fds = 0;
  for (int fd = 0; fd < 4096; ++fd) open_fds += fcntl(fd, F_GETFD) != -1;
  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(open_fds);
  REQUIRE(setrlimit(RLIMIT_NOFILE, &tight) == 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(rig.front().port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int fd : sockets) {
    CHECK(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  }
  absl::SleepFor(absl::Milliseconds(200));
  const int64_t before = rounds.load();
  absl::SleepFor(absl::Milliseconds(500));
  const int64_t during = rounds.load() - before;
  REQUIRE(setrlimit(RLIMIT_NOFILE, &saved) == 0);
  // A spinning loop makes hundreds of thousands of rounds in 500 ms; a waiting one a handful.
  CHECK(during < 1000);
  // Descriptors back: the pending connections are accepted and served.
  for (int fd : sockets) close(fd);
  rig.AnswerOk(0, rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("q"), true));
}

// A blocking TCP connection to the front that writes raw HTTP/2 bytes (frames a well-behaved
// nghttp2 client would not send) and reads what comes back.
class RawClient {
 public:
  explicit RawClient(int port) : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    timeval tv{10, 0};  // a generous cap on every read
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~RawClient() { close(fd_); }
  bool connected() const { return connected_; }
  static std::string Frame(uint8_t type, uint8_t flags, uint32_t sid, const std::string& payload) {
    std::string f;
    f.push_back(static_cast<char>(payload.size() >> 16));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size()));
    f.push_back(static_cast<char>(type));
    f.push_back(static_cast<char>(flags));
    for (int shift : {24, 16, 8, 0}) f.push_back(static_cast<char>(sid >> shift));
    return f + payload;
  }
  // The client preface and an empty SETTINGS frame.
  void Handshake() { Send(std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + Frame(4, 0, 0, "")); }
  void Send(const std::string& bytes) {
    for (size_t off = 0; off < bytes.size();) {
      const ssize_t n = send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;  // the front closed: what it sent before says why
      off += static_cast<size_t>(n);
    }
  }
  // Reads frames until the front's SETTINGS and acknowledges them (its windows apply from then on).
  bool AckSettings() {
    const int64_t got = ReadUntil([](uint8_t type, uint8_t flags, absl::string_view) -> int64_t {
      return type == 4 && (flags & 1) == 0 ? 1 : -3;
    });
    if (got != 1) return false;
    Send(Frame(4, 1, 0, ""));
    return true;
  }
  // Reads frames until a GOAWAY (its error code) or the end of the connection (-1: closed without
  // one, -2: the read cap passed).
  int64_t GoawayCode() {
    return ReadUntil([](uint8_t type, uint8_t, absl::string_view payload) -> int64_t {
      if (type != 7 || payload.size() < 8) return -3;
      uint32_t code = 0;
      for (int i = 0; i < 4; ++i) code = (code << 8) | uint8_t(payload[4 + i]);
      return code;
    });
  }
  // Reads frames until found(type, flags, payload) returns a value other than -3, and returns it
  // (-1: the connection ended first, -2: the read cap passed).
  int64_t ReadUntil(const std::function<int64_t(uint8_t, uint8_t, absl::string_view)>& found) {
    std::string in;
    for (;;) {
      while (in.size() >= 9) {
        const size_t len = (uint8_t(in[0]) << 16) | (uint8_t(in[1]) << 8) | uint8_t(in[2]);
        if (in.size() < 9 + len) break;
        const int64_t result =
            found(uint8_t(in[3]), uint8_t(in[4]), absl::string_view(in).substr(9, len));
        if (result != -3) return result;
        in.erase(0, 9 + len);
      }
      char buf[4096];
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n == 0) return -1;
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? -2 : -1;
      in.append(buf, static_cast<size_t>(n));
    }
  }
  // Whether the front closed the connection (recv sees the end) before the read cap.
  bool ClosedByPeer() {
    char buf[4096];
    for (;;) {
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n == 0) return true;
      if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    }
  }

 private:
  int fd_;
  bool connected_ = false;
};

// HEADERS of a gRPC request to /a.B/Sample on stream `sid` (HPACK: static-table entries and
// literals without indexing), END_HEADERS, no END_STREAM.
std::string SampleRequestHeaders(uint32_t sid, const std::string& path = "/a.B/Sample") {
  std::string block = "\x83\x86";  // :method POST, :scheme http
  block += std::string("\x04") + static_cast<char>(path.size()) + path;
  block += std::string("\x01\x09") + "localhost";
  block += std::string("\x0f\x10\x10") + "application/grpc";  // content-type (static 31)
  block += std::string("\x00\x02", 2) + "te" + "\x08" + "trailers";
  return RawClient::Frame(1, 4, sid, block);
}

TEST_CASE("h2 front: floods of frames that carry nothing get GOAWAY ENHANCE_YOUR_CALM") {
  // Hundreds of millions of such frames were parsed without end (empty DATA, PRIORITY, and, after
  // limits on those two, padding-only DATA, unknown types, WINDOW_UPDATE +1, PING ACKs, empty and
  // 1-byte DATA alternating), the front's one thread busy with them. Every frame is counted from
  // the raw bytes against what the connection carries.
  struct Flood {
    const char* name;
    std::string frame;
    std::string path = "/a.B/Sample";  // of the call on stream 1
  };
  const std::vector<Flood> floods = {
      {"empty DATA", RawClient::Frame(0, 0, 1, "")},
      {"padding-only DATA", RawClient::Frame(0, 0x8, 1, std::string(1, '\0'))},
      {"empty and 1-byte DATA", RawClient::Frame(0, 0, 1, "") + RawClient::Frame(0, 0, 1, "x")},
      {"1-byte DATA", RawClient::Frame(0, 0, 1, "x")},
      // The front answers a call of no route UNIMPLEMENTED and resets it; what follows is dropped.
      {"DATA of an answered call", RawClient::Frame(0, 0, 1, std::string(16, 'x')), "/no.Such/M"},
      {"PRIORITY", RawClient::Frame(2, 0, 3, std::string("\x00\x00\x00\x00\x10", 5))},
      {"unknown type", RawClient::Frame(0xfa, 0, 0, "")},
      {"WINDOW_UPDATE +1", RawClient::Frame(8, 0, 0, std::string("\x00\x00\x00\x01", 4))},
      {"PING ACK", RawClient::Frame(6, 1, 0, std::string(8, '\0'))},
  };
  Rig rig;
  for (const Flood& flood : floods) {
    INFO(flood.name);
    RawClient raw(rig.front().port());
    REQUIRE(raw.connected());
    raw.Handshake();
    std::string bytes = SampleRequestHeaders(1, flood.path);
    for (int i = 0; i < 20000; ++i) bytes += flood.frame;
    raw.Send(bytes);
    CHECK(raw.GoawayCode() == NGHTTP2_ENHANCE_YOUR_CALM);
  }
  // Such frames now and then, as clients send them, are no flood: a call after 50 empty DATA
  // frames reaches the backend.
  RawClient fine(rig.front().port());
  REQUIRE(fine.connected());
  fine.Handshake();
  std::string some = SampleRequestHeaders(1);
  for (int i = 0; i < 50; ++i) some += RawClient::Frame(0, 0, 1, "");
  fine.Send(some + RawClient::Frame(0, 1, 1, std::string(GrpcMessage("x"))));
  // (The flooding connections' calls may or may not have reached the backend before their GOAWAY.)
  CHECK(rig.RunUntil([&] {
    for (auto [backend, bsid] : rig.backend().requests()) {
      if (backend->stream(bsid).end_stream && backend->stream(bsid).data == GrpcMessage("x")) {
        return true;
      }
    }
    return false;
  }));
}

TEST_CASE("h2 front: header blocks that decode to far more than they send run the meter dry") {
  // HPACK: one 4 KB field in the dynamic table, then a block of 30 000 one-byte references to it
  // (34 KB on the wire, 121 MB decoded). nghttp2 validated every decoded byte for the front (a
  // 131 KB block cost ~150 ms of its thread), and the call each block opened paid for its frames.
  // Now the decoded bytes are charged per KiB, a block far beyond the cap stops being decoded for
  // the front, and a connection that keeps sending them gets GOAWAY.
  Rig rig;
  RawClient raw(rig.front().port());
  REQUIRE(raw.connected());
  raw.Handshake();
  std::string literal = std::string("\x40\x03", 2) + "x-a" + std::string("\x7f\xa1\x1e", 3) +
                        std::string(4000, 'v');  // incremental indexing, value length 4000
  std::string bytes;
  for (uint32_t i = 0; i < 20; ++i) {
    const std::string headers = SampleRequestHeaders(2 * i + 1);
    std::string block = headers.substr(9) + (i == 0 ? literal : "") + std::string(30000, '\xbe');
    // HEADERS with the first 16 KiB, then CONTINUATION frames, END_HEADERS on the last.
    for (size_t off = 0; off < block.size(); off += 16384) {
      const bool last = off + 16384 >= block.size();
      bytes +=
          RawClient::Frame(off == 0 ? 1 : 9, last ? 4 : 0, 2 * i + 1, block.substr(off, 16384));
    }
  }
  raw.Send(bytes);
  CHECK(raw.GoawayCode() == NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST_CASE("h2 front: large metadata sent as such is no flood") {
  // Decoded header bytes are charged per KiB, for HPACK bombs; a block's own bytes pay for them.
  // 100 calls with 50 KB of literal metadata each (a big token sent every time) were cut off by
  // GOAWAY after about 20.
  Rig rig;
  for (size_t i = 0; i < 100; ++i) {
    rig.AnswerOk(i, rig.client().Submit(
                        With(RequestHeaders("/a.B/Unary"), "x-token", std::string(50000, 't')),
                        GrpcMessage("q"), true));
  }
  CHECK_FALSE(rig.client().got_goaway());
}

TEST_CASE("h2 front: health checks keep slots that other default-route calls cannot take") {
  // Watch or ListModels streams held open on the default route filled every slot the backend
  // routes leave it, and health Check was refused RESOURCE_EXHAUSTED with the rest.
  Rig rig([](FrontOptions& o) {
    o.default_target = o.routes[0].target;
    o.max_concurrent_calls = 64;  // backend routes 60; other default-route calls 63; Check 64
  });
  std::vector<int32_t> watches;
  for (int i = 0; i < 63; ++i) {
    watches.push_back(
        rig.client().Submit(RequestHeaders("/grpc.health.v1.Health/Watch"), GrpcMessage(""), true));
  }
  REQUIRE(rig.RunUntil([&] { return rig.backend().requests().size() == 63; }));
  const int32_t refused =
      rig.client().Submit(RequestHeaders("/grpc.health.v1.Health/Watch"), GrpcMessage(""), true);
  REQUIRE(rig.Finish(refused));
  CHECK(Find(rig.call(refused).trailers, "grpc-status") == "8");
  rig.AnswerOk(63, rig.client().Submit(RequestHeaders("/grpc.health.v1.Health/Check"),
                                       GrpcMessage(""), true));
}

TEST_CASE("h2 front: a stream of many small messages is no flood") {
  // 20 000 DATA frames of one 1-byte gRPC message each (a bidi stream of small requests), twice
  // the bucket: frames that carry data cost nothing.
  Rig rig([](FrontOptions& o) { o.stream_window_bytes = 1 << 20; });
  RawClient raw(rig.front().port());
  REQUIRE(raw.connected());
  raw.Handshake();
  REQUIRE(raw.AckSettings());
  std::string bytes = SampleRequestHeaders(1);
  const std::string message = GrpcMessage("m");
  for (int i = 0; i < 20000; ++i) bytes += RawClient::Frame(0, 0, 1, message);
  raw.Send(bytes + RawClient::Frame(0, 1, 1, ""));
  auto [backend, bsid] = rig.Request(0);
  REQUIRE(rig.RunUntil([&] { return backend->stream(bsid).end_stream; }));
  CHECK(backend->stream(bsid).data.size() == 20000 * message.size());
}

TEST_CASE("h2 front: many calls on one connection are no flood") {
  // A call is ~3 frames and earns FrameMeter::kPerStream: 3 000 unary calls on one connection,
  // well beyond the bucket's 10 000 frames, all answered.
  Rig rig;
  std::vector<int32_t> sids;
  for (int i = 0; i < 3000; ++i) {
    sids.push_back(rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("q"), true));
    rig.AnswerOk(static_cast<size_t>(i), sids.back());
  }
  CHECK_FALSE(rig.client().got_goaway());
}

TEST_CASE(
    "h2 front: idle connections get GOAWAY and a header block left open closes its connection") {
  // After the handshake nothing was ever closed: idle sockets, or ones holding a header block
  // just under 64 KiB open, kept descriptors and ~80 KB each for good.
  Rig rig([](FrontOptions& o) {
    o.idle_timeout_ms = 300;
    o.handshake_timeout_ms = 300;
  });
  rig.AnswerOk(0, rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("q"), true));
  REQUIRE(rig.RunUntil([&] { return rig.client().got_goaway(); }));
  CHECK(rig.client().goaway_code() == NGHTTP2_NO_ERROR);
  REQUIRE(rig.RunUntil([&] { return rig.client().dead(); }));
  // HEADERS without END_HEADERS, and no CONTINUATION ever.
  RawClient open_block(rig.front().port());
  REQUIRE(open_block.connected());
  open_block.Handshake();
  std::string headers = SampleRequestHeaders(1);
  headers[4] = 0;  // flags: no END_HEADERS
  open_block.Send(headers);
  CHECK(open_block.ClosedByPeer());
}

TEST_CASE("h2 front: a connection that never completes its handshake is closed") {
  // 5 000 silent sockets were kept open for good (the front's descriptors are finite).
  Rig rig([](FrontOptions& o) { o.handshake_timeout_ms = 300; });
  const auto unary = [&rig](size_t i) {
    rig.AnswerOk(i, rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("q"), true));
  };
  unary(0);  // the rig's client completes its handshake
  RawClient silent(rig.front().port());
  REQUIRE(silent.connected());
  RawClient preface_only(rig.front().port());
  REQUIRE(preface_only.connected());
  preface_only.Send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  CHECK(silent.ClosedByPeer());
  CHECK(preface_only.ClosedByPeer());
  // A client that completed its handshake stays, idle as long as it likes.
  absl::SleepFor(absl::Milliseconds(600));
  unary(1);
}

TEST_CASE("h2 front: Create rejects bad options with INVALID_ARGUMENT naming them") {
  struct Bad {
    const char* name;
    std::function<void(FrontOptions&)> set;
  };
  const std::vector<Bad> cases = {
      {"max_message_bytes", [](FrontOptions& o) { o.max_message_bytes = 0; }},
      {"max_message_bytes", [](FrontOptions& o) { o.max_message_bytes = -5; }},
      {"max_message_bytes", [](FrontOptions& o) { o.max_message_bytes = int64_t{1} << 32; }},
      {"backend_connections", [](FrontOptions& o) { o.backend_connections = 0; }},
      {"max_streams_per_connection", [](FrontOptions& o) { o.max_streams_per_connection = 0; }},
      {"max_concurrent_calls", [](FrontOptions& o) { o.max_concurrent_calls = -1; }},
      {"stream_window_bytes", [](FrontOptions& o) { o.stream_window_bytes = 1000; }},
      {"connection_window_bytes",
       [](FrontOptions& o) { o.connection_window_bytes = o.stream_window_bytes - 1; }},
      {"retry_max_attempts", [](FrontOptions& o) { o.retry_max_attempts = 0; }},
      {"retry_buffer_bytes", [](FrontOptions& o) { o.retry_buffer_bytes = -1; }},
      {"keepalive_time_ms", [](FrontOptions& o) { o.keepalive_time_ms = -1; }},
      {"keepalive_timeout_ms", [](FrontOptions& o) { o.keepalive_timeout_ms = 0; }},
      {"dns_refresh_ms", [](FrontOptions& o) { o.dns_refresh_ms = 99; }},
      {"handshake_timeout_ms", [](FrontOptions& o) { o.handshake_timeout_ms = 0; }},
      {"retry_buffer_total_bytes", [](FrontOptions& o) { o.retry_buffer_total_bytes = -1; }},
      {"reconnect_backoff_ms", [](FrontOptions& o) { o.reconnect_backoff_ms = 0; }},
      {"max_connection_age_ms", [](FrontOptions& o) { o.max_connection_age_ms = -1; }},
      {"client_reset_burst", [](FrontOptions& o) { o.client_reset_burst = 0; }},
      {"client_reset_rate_per_s", [](FrontOptions& o) { o.client_reset_rate_per_s = 0; }},
  };
  for (const Bad& bad : cases) {
    FrontOptions o;
    o.listen_host = "127.0.0.1";
    bad.set(o);
    auto front = H2Front::Create(o);
    INFO(bad.name);
    REQUIRE_FALSE(front.ok());
    CHECK(front.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(front.status().message().find(bad.name) != std::string::npos);
  }
  FrontOptions ok;
  ok.listen_host = "127.0.0.1";
  ok.max_message_bytes = 1;
  CHECK(H2Front::Create(ok).ok());
}

TEST_CASE("h2 front: TLS files come in pairs and are named when they cannot be loaded") {
  FrontOptions o;
  o.listen_host = "127.0.0.1";
  o.tls_cert_file = "/nonexistent/server.pem";
  auto front = H2Front::Create(o);
  REQUIRE_FALSE(front.ok());
  CHECK(front.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(front.status().message().find("tls_key_file") != std::string::npos);

  o.tls_cert_file.clear();
  o.tls_client_ca_file = "/nonexistent/ca.pem";
  front = H2Front::Create(o);
  REQUIRE_FALSE(front.ok());
  CHECK(front.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(front.status().message().find("tls_client_ca_file") != std::string::npos);

  o.tls_client_ca_file.clear();
  o.tls_cert_file = "/nonexistent/server.pem";
  o.tls_key_file = "/nonexistent/server.key";
  front = H2Front::Create(o);
  REQUIRE_FALSE(front.ok());
  CHECK(front.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(front.status().message().find("/nonexistent/server.pem") != std::string::npos);
}

// OpenSSL writes with write(2): a peer that closed must be EPIPE, not SIGPIPE, on this thread.
void BlockSigpipe() {
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
}

// What the TLS tests share: a self-signed EC P-256 certificate for 127.0.0.1 and its key as PEM
// files in a fresh directory under TMPDIR (or /tmp), removed at the end; a client context (the
// Peer's, PeerOptions client()); and a handshake hook that holds the next handshake step once
// HoldNextStep() was called, until Release(). Declare it before the front it configures (Apply):
// the hook refers to it. Blocks SIGPIPE on the test's thread.
class TlsSetup {
 public:
  TlsSetup() {
    BlockSigpipe();
    const char* tmp = std::getenv("TMPDIR");
    dir_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/maas-h2-tls-XXXXXX";
    REQUIRE(mkdtemp(dir_.data()) != nullptr);
    EVP_PKEY* key = EVP_EC_gen("P-256");
    REQUIRE(key != nullptr);
    X509* cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    REQUIRE(X509_sign(cert, key, EVP_sha256()) > 0);
    FILE* f = fopen(cert_file().c_str(), "w");
    REQUIRE(f != nullptr);
    PEM_write_X509(f, cert);
    fclose(f);
    f = fopen(key_file().c_str(), "w");
    REQUIRE(f != nullptr);
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    fclose(f);
    X509_free(cert);
    EVP_PKEY_free(key);
    client_ctx_ = ClientTlsContext();
  }
  ~TlsSetup() {
    Release();
    SSL_CTX_free(client_ctx_);
    std::remove(cert_file().c_str());
    std::remove(key_file().c_str());
    rmdir(dir_.c_str());
  }
  TlsSetup(const TlsSetup&) = delete;
  TlsSetup& operator=(const TlsSetup&) = delete;

  std::string cert_file() const { return dir_ + "/server.pem"; }
  std::string key_file() const { return dir_ + "/server.key"; }
  // The front serves TLS with this certificate, its handshake steps through the hook.
  void Apply(FrontOptions& o) {
    o.tls_cert_file = cert_file();
    o.tls_key_file = key_file();
    o.on_tls_handshake_step = [this] {
      if (hold_.exchange(false)) {
        entered_.Notify();
        release_.WaitForNotificationWithTimeout(absl::Seconds(60));
      }
    };
  }
  PeerOptions client() const {
    PeerOptions options;
    options.tls = client_ctx_;
    return options;
  }
  void HoldNextStep() { hold_ = true; }
  bool held() const { return entered_.HasBeenNotified(); }
  bool WaitHeld() { return entered_.WaitForNotificationWithTimeout(absl::Seconds(30)); }
  void Release() {
    if (!release_.HasBeenNotified()) release_.Notify();
  }

 private:
  std::string dir_;
  SSL_CTX* client_ctx_ = nullptr;
  std::atomic<bool> hold_{false};
  absl::Notification entered_, release_;
};

// A blocking TCP connection to 127.0.0.1:port whose reads give up after 30 s.
int ConnectRaw(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  timeval tv{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

TEST_CASE("h2 front: a TLS handshake in progress does not hold the calls of other connections") {
  // A client can make the server sign a handshake without any cryptography of its own (a replayed
  // ClientHello): on the front's event thread, such handshakes had cut every TLS client's calls
  // ~25x. Here one handshake step is held; an established TLS client's calls must still cross.
  TlsSetup tls;
  Rig rig([&](FrontOptions& o) { tls.Apply(o); }, tls.client());
  const int32_t first = rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("q"), true);
  rig.AnswerOk(0, first);  // over TLS

  tls.HoldNextStep();
  const int other = ConnectRaw(rig.front().port());
  REQUIRE(send(other, "\x16\x03\x01", 3, MSG_NOSIGNAL) == 3);  // a record header: a step
  REQUIRE(tls.WaitHeld());
  const int32_t second = rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("q"), true);
  rig.AnswerOk(1, second);  // while the other connection's handshake step is held
  const int32_t third = rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("q"), true);
  rig.AnswerOk(2, third);
  tls.Release();
  close(other);
}

TEST_CASE("h2 front: a TLS handshake that completes during the drain gets GOAWAY, not a reset") {
  TlsSetup tls;
  Rig rig([&](FrontOptions& o) { tls.Apply(o); }, tls.client());
  const int32_t first = rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("q"), true);
  rig.AnswerOk(0, first);
  tls.HoldNextStep();
  std::unique_ptr<Peer> late = Peer::Connect(rig.front().port(), tls.client());
  REQUIRE(late != nullptr);
  rig.loop().Add(late.get());
  late->Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("q"), true);
  REQUIRE(rig.RunUntil([&] { return tls.held(); }));
  rig.front()->Shutdown(absl::Seconds(30));  // the drain begins while its handshake is held
  REQUIRE(rig.RunUntil([&] { return rig.client().got_goaway(); }));
  tls.Release();
  // The held handshake completes during the drain: GOAWAY saying no call was processed, so the
  // client may retry elsewhere (it used to be closed, and its unread request made that a reset).
  REQUIRE(rig.RunUntil([&] { return late->got_goaway() || late->dead(); }));
  CHECK(late->got_goaway());
  CHECK(late->goaway_last_stream() == 0);
  CHECK(rig.backend().requests().size() == 1);  // the late call never reached the backend
}

TEST_CASE("h2 front: a mutual TLS client resumes its session") {
  // OpenSSL refuses to resume a session of a context that verifies clients but names no session
  // id context: every resumption (curl, Envoy, Go's session cache) got a fatal internal_error.
  TlsSetup tls;  // its certificate is the server's, the client's and the CA
  FakeBackend backend;
  FrontOptions o;
  o.listen_host = "127.0.0.1";
  o.routes = {{"a.B", backend.target(), {}, {"Unary"}}};
  tls.Apply(o);
  o.tls_client_ca_file = tls.cert_file();
  FrontThread front(o);
  REQUIRE(front.status().ok());
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    INFO("TLS version " << std::hex << version);
    SSL_CTX* ctx = ClientTlsContext();
    SSL_CTX_set_min_proto_version(ctx, version);
    SSL_CTX_set_max_proto_version(ctx, version);
    REQUIRE(SSL_CTX_use_certificate_file(ctx, tls.cert_file().c_str(), SSL_FILETYPE_PEM) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(ctx, tls.key_file().c_str(), SSL_FILETYPE_PEM) == 1);
    SSL_SESSION* session = nullptr;
    for (int attempt = 0; attempt < 2; ++attempt) {
      const int fd = ConnectRaw(front.port());
      SSL* ssl = SSL_new(ctx);
      SSL_set_fd(ssl, fd);
      if (session != nullptr) SSL_set_session(ssl, session);
      ERR_clear_error();
      const int connected = SSL_connect(ssl);
      CHECK(connected == 1);
      if (connected == 1) {
        // The server's SETTINGS (and, with TLS 1.3, its session tickets before them).
        const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        CHECK(SSL_write(ssl, preface.data(), static_cast<int>(preface.size())) > 0);
        char buf[256];
        CHECK(SSL_read(ssl, buf, sizeof(buf)) > 0);
        if (attempt == 0) {
          session = SSL_get1_session(ssl);
          REQUIRE(session != nullptr);
          CHECK(SSL_SESSION_is_resumable(session) == 1);
        } else {
          CHECK(SSL_session_reused(ssl) == 1);
        }
        SSL_shutdown(ssl);  // SSL_free without it marks the client's session not resumable
      }
      SSL_free(ssl);
      close(fd);
    }
    if (session != nullptr) SSL_SESSION_free(session);
    SSL_CTX_free(ctx);
  }
}

TEST_CASE("h2 front: TLS clients whose handshake fails or stalls are closed, others served") {
  TlsSetup tls;
  Rig rig(
      [&](FrontOptions& o) {
        tls.Apply(o);
        o.handshake_timeout_ms = 300;
      },
      tls.client());
  const int32_t first = rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("q"), true);
  rig.AnswerOk(0, first);  // its handshake done within the timeout
  // Silent after connecting: closed at the handshake timeout. Not TLS: closed at once.
  const int silent = ConnectRaw(rig.front().port());
  const int plain = ConnectRaw(rig.front().port());
  const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  REQUIRE(send(plain, preface.data(), preface.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(preface.size()));
  // A TLS client that offers no h2 in ALPN: refused in its handshake.
  SSL_CTX* http1 = SSL_CTX_new(TLS_client_method());
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(http1, kHttp11, sizeof(kHttp11));
  SSL* no_h2 = SSL_new(http1);
  const int no_h2_fd = ConnectRaw(rig.front().port());
  SSL_set_fd(no_h2, no_h2_fd);
  CHECK(SSL_connect(no_h2) != 1);
  SSL_free(no_h2);
  SSL_CTX_free(http1);
  close(no_h2_fd);
  const auto closed_by_front = [](int fd) {
    char buf[4096];
    for (;;) {
      const ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
      if (n < 0) return false;  // 30 s without the front closing it
    }
  };
  CHECK(closed_by_front(plain));
  CHECK(closed_by_front(silent));
  close(plain);
  close(silent);
  const int32_t sid = rig.client().Submit(RequestHeaders("/a.B/Unary"), GrpcMessage("q"), true);
  rig.AnswerOk(1, sid);  // the established client is still served
}

}  // namespace
}  // namespace maas::gateway::h2
