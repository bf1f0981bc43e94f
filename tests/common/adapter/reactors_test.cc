// Tests of the reactors' helpers: the client-stream session dispatch (a session that takes the
// call's StopToken in Add gets it, one that does not still works), the deadline-or-cancel call, the
// refusal of an answer above --max_message_bytes with the method's advice, and when a client
// stream's response headers go out.
#include "common/adapter/reactors.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "absl/synchronization/notification.h"
#include "common/exec/worker_pool.h"
#include "google/protobuf/wrappers.pb.h"
#include "maas/discriminative/v1/discriminative.grpc.pb.h"

namespace maas::adapter {
namespace {

struct StopAwareSession {
  absl::Status Add(const int& request, const exec::StopToken& stop) {
    last = request;
    return stop.Check();
  }
  int last = 0;
};

struct PlainSession {
  absl::Status Add(const int& request) {
    last = request;
    return absl::OkStatus();
  }
  int last = 0;
};

TEST_CASE("AddToSession passes the call's StopToken to sessions whose Add takes it") {
  const exec::StopToken stopped([] { return absl::CancelledError("gone"); });
  StopAwareSession aware;
  CHECK(internal::AddToSession(aware, 7, stopped).code() == absl::StatusCode::kCancelled);
  CHECK(aware.last == 7);
  PlainSession plain;
  CHECK(internal::AddToSession(plain, 9, stopped).ok());
  CHECK(plain.last == 9);
}

// A hunt sent 3000 calls of about a millisecond with deadlines around that: 119 whose client saw
// DEADLINE_EXCEEDED were logged CANCELLED, their cancel arriving more than a tenth of the call's
// time before the server's own deadline.
TEST_CASE("A client gone within the deadline slack timed out, earlier, it cancelled") {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  CHECK_FALSE(DeadlineCounted(absl::InfiniteFuture(), t0, t0 + absl::Hours(1)));
  // A 2 ms call whose client went away 1 ms before the server's deadline: its deadline.
  CHECK(DeadlineCounted(t0 + absl::Milliseconds(2), t0, t0 + absl::Milliseconds(1)));
  // A 10 s call: up to 100 ms early counts, 200 ms early is a cancel.
  CHECK(DeadlineCounted(t0 + absl::Seconds(10), t0, t0 + absl::Milliseconds(9900)));
  CHECK_FALSE(DeadlineCounted(t0 + absl::Seconds(10), t0, t0 + absl::Milliseconds(9800)));
  // A 200 ms call: a tenth, 20 ms.
  CHECK(DeadlineCounted(t0 + absl::Milliseconds(200), t0, t0 + absl::Milliseconds(181)));
  CHECK_FALSE(DeadlineCounted(t0 + absl::Milliseconds(200), t0, t0 + absl::Milliseconds(170)));
  // Past the deadline always counts.
  CHECK(DeadlineCounted(t0 + absl::Milliseconds(200), t0, t0 + absl::Seconds(1)));
}

// A refused answer says what the method's caller can do (amp2.md 6: ListModels got the data
// methods' "fewer texts or rows").
TEST_CASE("An answer above max_bytes is RESOURCE_EXHAUSTED with the method's advice") {
  google::protobuf::StringValue message;
  message.set_value(std::string(100, 'x'));
  grpc::ByteBuffer out;
  absl::Status status = internal::Serialize(message, &out, 50);
  CHECK(absl::IsResourceExhausted(status));
  CHECK_THAT(std::string(status.message()), Catch::Contains("--max_message_bytes"));
  CHECK_THAT(std::string(status.message()), Catch::Contains("fewer texts or rows"));
  CHECK(out.Length() == 0);
  status = internal::Serialize(message, &out, 50, TooLargeAdvice::kListFewerModels);
  CHECK(absl::IsResourceExhausted(status));
  CHECK_THAT(std::string(status.message()), Catch::Contains("set page_size"));
  CHECK_THAT(std::string(status.message()), Catch::Contains("set name_prefix"));
  CHECK_THAT(std::string(status.message()), !Catch::Contains("texts"));
  CHECK_THAT(std::string(status.message()), Catch::Contains("or raise --max_message_bytes"));
  CHECK(internal::Serialize(message, &out, 0, TooLargeAdvice::kListFewerModels).ok());
  CHECK(out.Length() == message.ByteSizeLong());
}

namespace dv1 = ::maas::discriminative::v1;

// A client stream whose Finish waits for the test; `kReadsOnly` says whether Finish stores nothing.
template <bool kReadsOnly>
struct GatedSession {
  static constexpr bool kFinishReadsOnly = kReadsOnly;
  absl::Status Add(const dv1::EvaluateRequest&) {
    ++added;
    return absl::OkStatus();
  }
  absl::StatusOr<dv1::EvaluateResponse> Finish() {
    release->WaitForNotification();
    dv1::EvaluateResponse response;
    response.set_num_documents(added);
    return response;
  }
  absl::Notification* release = nullptr;
  int added = 0;
};

// Evaluate served by ClientStream with GatedSession<kReadsOnly>, on a pool of its own.
template <bool kReadsOnly>
class GatedEvaluate final : public dv1::DiscriminativeService::WithRawCallbackMethod_Evaluate<
                                dv1::DiscriminativeService::Service> {
 public:
  explicit GatedEvaluate(absl::Notification* release) : release_(release) {}
  grpc::ServerReadReactor<grpc::ByteBuffer>* Evaluate(grpc::CallbackServerContext* context,
                                                      grpc::ByteBuffer* response) override {
    auto session = std::make_unique<GatedSession<kReadsOnly>>();
    session->release = release_;
    return ClientStream<dv1::EvaluateRequest, dv1::EvaluateResponse>(
        dispatcher_, context, response, absl::OkStatus(), std::move(session));
  }

 private:
  absl::Notification* release_;
  exec::WorkerPool pool_{{2}};
  Dispatcher dispatcher_{&pool_, {}};
};

// Sends two messages and half-closes, then says whether the response headers arrived within
// `wait` while Finish is held; releases Finish and checks the answer.
template <bool kReadsOnly>
bool HeadersBeforeAnswer(std::chrono::milliseconds wait) {
  absl::Notification release;
  GatedEvaluate<kReadsOnly> service(&release);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  REQUIRE(server != nullptr);
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto call =
      stub.PrepareCall(&context, "/maas.discriminative.v1.DiscriminativeService/Evaluate", &cq);
  void* tag = nullptr;
  bool ok = false;
  auto step = [&](intptr_t expected) {
    REQUIRE(cq.Next(&tag, &ok));
    CHECK(reinterpret_cast<intptr_t>(tag) == expected);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  REQUIRE(step(1));
  grpc::Slice empty("");
  for (int i = 0; i < 2; ++i) {
    call->Write(grpc::ByteBuffer(&empty, 1), reinterpret_cast<void*>(2));
    REQUIRE(step(2));
  }
  call->WritesDone(reinterpret_cast<void*>(3));
  REQUIRE(step(3));
  call->ReadInitialMetadata(reinterpret_cast<void*>(4));
  const bool early = cq.AsyncNext(&tag, &ok, std::chrono::system_clock::now() + wait) ==
                     grpc::CompletionQueue::GOT_EVENT;
  release.Notify();
  if (!early) REQUIRE(step(4));
  grpc::ByteBuffer answer;
  call->Read(&answer, reinterpret_cast<void*>(5));
  REQUIRE(step(5));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(6));
  step(6);
  CHECK(status.ok());
  dv1::EvaluateResponse response;
  REQUIRE(
      grpc::GenericDeserialize<grpc::ProtoBufferReader, dv1::EvaluateResponse>(&answer, &response)
          .ok());
  CHECK(response.num_documents() == 2);
  server->Shutdown();
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return early;
}

// The response headers of a client stream used to go out when the client half-closed, before the
// answer was computed (the check that tells a half-close from a cut-off stream): a server that
// died while computing an Evaluate had committed the call for the gateway, which then failed it
// instead of retrying it on another replica (and so would a mesh's retry policy).
TEST_CASE("A client stream that stores nothing sends its headers with its answer") {
  CHECK_FALSE(HeadersBeforeAnswer<true>(std::chrono::milliseconds(500)));
}

TEST_CASE("A client stream that stores sends its headers before Finish runs") {
  // The send that tells a half-close from a stream gRPC cut off: it completes before Finish.
  CHECK(HeadersBeforeAnswer<false>(std::chrono::seconds(30)));
}

}  // namespace
}  // namespace maas::adapter
