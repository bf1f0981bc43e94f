// gRPC server reflection (grpc.reflection.v1alpha) for the gateway, from descriptors compiled into
// it (transport-free: bytes in, bytes out).
//
// The gateway forwards maas.generative.v1 and maas.discriminative.v1 without registering them, so
// gRPC's own reflection service would list only the gateway's registered services. This one lists
// every service a client can call through the gateway and answers file/symbol queries from the
// generated descriptor pool (the gateway links the generated protos, never model code), plus
// grpc.health.v1, whose descriptor gRPC does not ship as generated code.
//
//   ReflectionResponder responder({"maas.gateway.v1.Gateway", ...});
//   std::string response = responder.Answer(request_bytes);  // one ServerReflectionResponse
#ifndef MAAS_SERVICES_GATEWAY_REFLECTION_H_
#define MAAS_SERVICES_GATEWAY_REFLECTION_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"

namespace maas::gateway {

// Full method path of the reflection stream.
inline constexpr char kReflectionMethod[] =
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

class ReflectionResponder {
 public:
  // `services`: the fully qualified service names listed by list_services.
  explicit ReflectionResponder(std::vector<std::string> services);

  // Answers one serialized ServerReflectionRequest with a serialized ServerReflectionResponse:
  // list_services, file_by_filename, file_containing_symbol (the file and its transitive
  // dependencies), file_containing_extension and all_extension_numbers_of_type; an ErrorResponse
  // (NOT_FOUND, INVALID_ARGUMENT, UNIMPLEMENTED) otherwise.
  std::string Answer(absl::string_view request) const;

  const std::vector<std::string>& services() const { return services_; }

 private:
  const google::protobuf::FileDescriptor* FindFile(const std::string& name) const;
  const google::protobuf::FileDescriptor* FindFileBySymbol(const std::string& symbol) const;

  std::vector<std::string> services_;
  google::protobuf::DescriptorPool health_pool_;  // grpc/health/v1/health.proto only
};

}  // namespace maas::gateway

#endif  // MAAS_SERVICES_GATEWAY_REFLECTION_H_
