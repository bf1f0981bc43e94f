// grpc.health.v1 messages in protobuf wire format (transport-free).
//
// The gateway checks its backends with grpc.health.v1.Health/Check over a generic (byte) call, so
// it needs no generated health code (which would clash with any other copy linked into a binary).
//   HealthCheckRequest  { string service = 1; }
//   HealthCheckResponse { ServingStatus status = 1; }  // UNKNOWN 0, SERVING 1, NOT_SERVING 2,
//                                                      // SERVICE_UNKNOWN 3
#ifndef MAAS_SERVICES_GATEWAY_HEALTH_WIRE_H_
#define MAAS_SERVICES_GATEWAY_HEALTH_WIRE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace maas::gateway {

// Full method path of the health check.
inline constexpr char kHealthCheckMethod[] = "/grpc.health.v1.Health/Check";

// grpc.health.v1.HealthCheckResponse.ServingStatus.
enum class ServingStatus { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };

// Serialized HealthCheckRequest for `service` ("" = the server as a whole).
std::string EncodeHealthCheckRequest(absl::string_view service);

// Parses a serialized HealthCheckResponse. Unknown fields are skipped; a status value outside the
// enum maps to kUnknown. INVALID_ARGUMENT for bytes that are not a valid message.
absl::StatusOr<ServingStatus> DecodeHealthCheckResponse(absl::string_view bytes);

}  // namespace maas::gateway

#endif  // MAAS_SERVICES_GATEWAY_HEALTH_WIRE_H_
