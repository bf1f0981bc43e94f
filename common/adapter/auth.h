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

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace maas::adapter {

class WriteAuthorizer {
 public:
  // `token` empty: no protection.
  explicit WriteAuthorizer(std::string token = "") : token_(std::move(token)) {}

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

 private:
  std::string token_;
};

// Reads a token file: its content with surrounding whitespace removed. INVALID_ARGUMENT when the
// file is empty (an empty token would silently disable protection), NOT_FOUND/PERMISSION_DENIED
// when unreadable.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

}  // namespace maas::adapter

#endif  // MAAS_COMMON_ADAPTER_AUTH_H_
