// Tests of the reactors' helpers: the client-stream session dispatch (a session that takes the
// call's StopToken in Add gets it, one that does not still works), the deadline-or-cancel call, and
// the refusal of an answer above --max_message_bytes with the method's advice.
#include "common/adapter/reactors.h"

#include <grpcpp/impl/codegen/proto_utils.h>

#include <catch2/catch.hpp>

#include "google/protobuf/wrappers.pb.h"

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

}  // namespace
}  // namespace maas::adapter
