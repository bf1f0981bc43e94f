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

}  // namespace
}  // namespace maas::adapter
