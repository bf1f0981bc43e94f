#include "common/health/health_wire.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace maas::health {

using google::protobuf::internal::WireFormatLite;

std::string EncodeHealthCheckRequest(absl::string_view service) {
  std::string out;
  if (service.empty()) return out;  // proto3: an empty string is not serialized.
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.WriteTag(WireFormatLite::MakeTag(1, WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
    coded.WriteVarint32(static_cast<uint32_t>(service.size()));
    coded.WriteRaw(service.data(), static_cast<int>(service.size()));
  }
  return out;
}

absl::StatusOr<std::string> DecodeHealthCheckRequest(absl::string_view bytes) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  std::string service;
  while (!in.ExpectAtEnd()) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) {
      return absl::InvalidArgumentError("malformed grpc.health.v1.HealthCheckRequest: bad tag");
    }
    if (tag == WireFormatLite::MakeTag(1, WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) {
      uint32_t size = 0;
      if (!in.ReadVarint32(&size) || !in.ReadString(&service, static_cast<int>(size))) {
        return absl::InvalidArgumentError(
            "malformed grpc.health.v1.HealthCheckRequest: truncated service");
      }
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return absl::InvalidArgumentError(
          "malformed grpc.health.v1.HealthCheckRequest: bad or truncated field");
    }
  }
  if (service.size() > kMaxHealthServiceNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("grpc.health.v1.HealthCheckRequest.service is ",
                                                   service.size(), " bytes long, more than ",
                                                   kMaxHealthServiceNameBytes));
  }
  return service;
}

std::string EncodeHealthCheckResponse(ServingStatus status) {
  std::string out;
  if (status == ServingStatus::kUnknown) return out;  // proto3: the default is not serialized.
  out.push_back(static_cast<char>(WireFormatLite::MakeTag(1, WireFormatLite::WIRETYPE_VARINT)));
  out.push_back(static_cast<char>(status));  // 1..3: a one-byte varint
  return out;
}

absl::StatusOr<ServingStatus> DecodeHealthCheckResponse(absl::string_view bytes) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  uint64_t status = 0;
  while (!in.ExpectAtEnd()) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) {
      return absl::InvalidArgumentError("malformed grpc.health.v1.HealthCheckResponse: bad tag");
    }
    if (tag == WireFormatLite::MakeTag(1, WireFormatLite::WIRETYPE_VARINT)) {
      if (!in.ReadVarint64(&status)) {
        return absl::InvalidArgumentError(
            "malformed grpc.health.v1.HealthCheckResponse: truncated status");
      }
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return absl::InvalidArgumentError(
          "malformed grpc.health.v1.HealthCheckResponse: bad or truncated field");
    }
  }
  switch (status) {
    case 1:
      return ServingStatus::kServing;
    case 2:
      return ServingStatus::kNotServing;
    case 3:
      return ServingStatus::kServiceUnknown;
    default:
      return ServingStatus::kUnknown;
  }
}

}  // namespace maas::health
