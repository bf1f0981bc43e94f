// Tests of the client-stream reactor's session dispatch: a session that takes the call's
// StopToken in Add gets it (so a long message can stop midway), one that does not still works.
#include "common/adapter/reactors.h"

#include <catch2/catch.hpp>

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
TEST_CASE("A client gone within the deadline slack timed out; earlier, it cancelled") {
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

}  // namespace
}  // namespace maas::adapter
