// Tests of the bearer-token check's per-peer limit on wrong tokens (issue 5 item 9: 3,000 guesses
// ran at 7,165/s).
#include "common/adapter/auth.h"

#include <catch2/catch.hpp>
#include <string>

namespace maas::adapter {
namespace {

TEST_CASE("Wrong bearer tokens are limited per peer host, within a window") {
  absl::Time now = absl::FromUnixSeconds(1000);
  FailureLimit limit;
  limit.max_failures = 3;
  limit.window = absl::Seconds(60);
  limit.clock = [&now] { return now; };
  WriteAuthorizer auth("secret", limit);
  const std::string wrong = "Bearer guess", right = "Bearer secret";
  const std::string peer = "ipv4:10.0.0.1:5000", same_host = "ipv4:10.0.0.1:6000";
  CHECK(auth.CheckAuthorization(&right, peer).ok());
  // A missing token is not a guess.
  for (int i = 0; i < 10; ++i)
    CHECK(absl::IsUnauthenticated(auth.CheckAuthorization(nullptr, peer)));
  for (int i = 0; i < 3; ++i) {
    CHECK(absl::IsPermissionDenied(auth.CheckAuthorization(&wrong, i == 1 ? same_host : peer)));
  }
  // Limited: even the right token is refused from that host (else guessing would go on), with the
  // time left.
  absl::Status limited = auth.CheckAuthorization(&right, same_host);
  CHECK(absl::IsResourceExhausted(limited));
  CHECK(std::string(limited.message()).find("retry in 1m") != std::string::npos);
  CHECK(absl::IsResourceExhausted(auth.CheckAuthorization(&wrong, peer)));
  // Other hosts are not affected.
  CHECK(auth.CheckAuthorization(&right, "ipv4:10.0.0.2:5000").ok());
  CHECK(auth.CheckAuthorization(&right, "ipv6:[::1]:5000").ok());
  // The window ends 60 s after its first failure.
  now += absl::Seconds(59);
  CHECK(absl::IsResourceExhausted(auth.CheckAuthorization(&right, peer)));
  now += absl::Seconds(1);
  CHECK(auth.CheckAuthorization(&right, peer).ok());
  CHECK(absl::IsPermissionDenied(auth.CheckAuthorization(&wrong, peer)));
}

TEST_CASE("The failure limiter remembers a bounded number of peers") {
  absl::Time now = absl::FromUnixSeconds(1000);
  FailureLimit limit;
  limit.max_failures = 1;
  limit.max_peers = 2;
  limit.clock = [&now] { return now; };
  WriteAuthorizer auth("secret", limit);
  const std::string wrong = "Bearer x", right = "Bearer secret";
  for (int p = 0; p < 3; ++p) {
    now += absl::Seconds(1);
    CHECK(absl::IsPermissionDenied(
        auth.CheckAuthorization(&wrong, "ipv4:10.0.0." + std::to_string(p) + ":1")));
  }
  CHECK(auth.CheckAuthorization(&right, "ipv4:10.0.0.0:1").ok());  // the oldest was dropped
  CHECK(absl::IsResourceExhausted(auth.CheckAuthorization(&right, "ipv4:10.0.0.2:1")));
  WriteAuthorizer open;
  CHECK(open.CheckAuthorization(nullptr, "ipv4:10.0.0.2:1").ok());
}

}  // namespace
}  // namespace maas::adapter
