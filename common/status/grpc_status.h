// The one conversion between absl::Status (cores) and grpc::Status (adapters, clients).
//
//   return maas::ToGrpcStatus(core.DoThing(request));   // in a gRPC handler
//   absl::Status s = maas::FromGrpcStatus(stub->Call(&ctx, req, &resp));  // in a client
//
// Only adapters and clients include this header; cores stay transport-free.
#ifndef MAAS_COMMON_STATUS_GRPC_STATUS_H_
#define MAAS_COMMON_STATUS_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include <cstddef>

#include "absl/status/status.h"

namespace maas {

// Longest error message (in bytes) sent to a client; longer ones are cut to at most this many
// bytes, ending in "..." (the cut never splits a UTF-8 character).
inline constexpr std::size_t kMaxGrpcStatusMessageChars = 1024;

// Maps the code one to one (an explicit, total switch; unknown values become UNKNOWN) and caps the
// message at kMaxGrpcStatusMessageChars. OK maps to grpc::Status::OK with no message.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The inverse for clients: same code, same message (not capped). grpc::Status OK maps to
// absl::OkStatus().
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace maas

#endif  // MAAS_COMMON_STATUS_GRPC_STATUS_H_
