// Bearer-token protection of the calls that change state (CreateModel, FitModel, Train,
// DeleteModel).
//
//   WriteAuthorizer auth(token);                      // empty token: every call is allowed
//   MAAS_RETURN_IF_ERROR(auth.Check(*context));       // in an adapter, before a state-changing
//   call
//
// The token travels as gRPC metadata "authorization: Bearer <token>" (forwarded unchanged by the
// gateway).
#ifndef MAAS_COMMON_ADAPTER_AUTH_H_
#define MAAS_COMMON_ADAPTER_AUTH_H_

#include <grpcpp/server_context.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace maas::adapter {

// Wrong tokens are rate-limited per peer host (the address without its port): after
// `max_failures` wrong tokens within `window`, every call that needs the token from that host is
// refused with RESOURCE_EXHAUSTED until the window (counted from its first failure) ends, without
// even comparing the token, so guessing runs at a few tries per minute. A missing token is not a
// guess and does not count. Through the gateway every client shares the gateway's host.
struct FailureLimit {
  int max_failures = 20;
  absl::Duration window = absl::Minutes(1);
  // Peer hosts remembered at most (the oldest windows are dropped first).
  size_t max_peers = 10000;
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

class WriteAuthorizer {
 public:
  // `token` empty: no protection.
  explicit WriteAuthorizer(std::string token = "", FailureLimit limit = {})
      : token_(std::move(token)), limiter_(std::make_shared<Limiter>(std::move(limit))) {}

  // The authorizer of a --auth_token_file: `path` empty = no protection; otherwise the file's
  // content with surrounding whitespace removed is the token. INVALID_ARGUMENT when the file is
  // empty (an empty token would silently disable protection), NOT_FOUND / PERMISSION_DENIED when it
  // cannot be read.
  static absl::StatusOr<WriteAuthorizer> FromTokenFile(const std::string& path);

  bool enabled() const { return !token_.empty(); }

  // OK when protection is off or the call carries "authorization: Bearer <token>"; UNAUTHENTICATED
  // without a bearer token, PERMISSION_DENIED with a wrong one. The comparison takes the same time
  // wherever the tokens differ.
  absl::Status Check(const grpc::ServerContextBase& context) const;
  // The same check from the "authorization" metadata value (null = absent) and the peer
  // ("ipv4:127.0.0.1:5555").
  absl::Status CheckAuthorization(const std::string* authorization, std::string_view peer) const;

 private:
  struct Limiter {
    explicit Limiter(FailureLimit limit) : limit(std::move(limit)) {}
    FailureLimit limit;
    absl::Mutex mu;
    struct Window {
      absl::Time start;
      int failures = 0;
    };
    std::map<std::string, Window, std::less<>> peers ABSL_GUARDED_BY(mu);
  };

  std::string token_;
  std::shared_ptr<Limiter> limiter_;  // shared: the authorizer is copied into services
};

// Reads a token file: its content with surrounding whitespace removed. INVALID_ARGUMENT when the
// file is empty (an empty token would silently disable protection), NOT_FOUND/PERMISSION_DENIED
// when unreadable.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

}  // namespace maas::adapter

#endif  // MAAS_COMMON_ADAPTER_AUTH_H_
