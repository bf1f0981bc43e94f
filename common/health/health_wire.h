// grpc.health.v1 messages in protobuf wire format (transport-free).
//
// The gateway checks its backends with grpc.health.v1.Health/Check over a generic (byte) call, and
// answers Check and Watch itself from the same bytes, so it needs no generated health code (which
// would clash with any other copy linked into a binary).
//   HealthCheckRequest  { string service = 1; }
//   HealthCheckResponse { ServingStatus status = 1; }  // UNKNOWN 0, SERVING 1, NOT_SERVING 2,
//                                                      // SERVICE_UNKNOWN 3
#ifndef MAAS_COMMON_HEALTH_HEALTH_WIRE_H_
#define MAAS_COMMON_HEALTH_HEALTH_WIRE_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace maas::health {

// Full method paths of the health check and of the health watch (server streaming).
inline constexpr char kHealthCheckMethod[] = "/grpc.health.v1.Health/Check";
inline constexpr char kHealthWatchMethod[] = "/grpc.health.v1.Health/Watch";

// The status message of a Watch call the server ends because it is shutting down (UNAVAILABLE,
// after the last status, NOT_SERVING).
inline constexpr char kWatchShutdownMessage[] =
    "the server is shutting down (its health is NOT_SERVING); watch another replica";

// Longest service name a health request may carry, in bytes (gRPC's default health service
// rejects longer ones as unparsable, and so does DecodeHealthCheckRequest).
inline constexpr std::size_t kMaxHealthServiceNameBytes = 200;

// grpc.health.v1.HealthCheckResponse.ServingStatus.
enum class ServingStatus { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };

// Serialized HealthCheckRequest for `service` ("" = the server as a whole).
std::string EncodeHealthCheckRequest(absl::string_view service);

// Parses a serialized HealthCheckRequest into its service name ("" = the server as a whole).
// Unknown fields are skipped; the last occurrence of the field wins. INVALID_ARGUMENT for bytes
// that are not a valid message or a name longer than kMaxHealthServiceNameBytes.
absl::StatusOr<std::string> DecodeHealthCheckRequest(absl::string_view bytes);

// Serialized HealthCheckResponse with `status`.
std::string EncodeHealthCheckResponse(ServingStatus status);

// Parses a serialized HealthCheckResponse. Unknown fields are skipped; a status value outside the
// enum maps to kUnknown. INVALID_ARGUMENT for bytes that are not a valid message.
absl::StatusOr<ServingStatus> DecodeHealthCheckResponse(absl::string_view bytes);

}  // namespace maas::health

#endif  // MAAS_COMMON_HEALTH_HEALTH_WIRE_H_
