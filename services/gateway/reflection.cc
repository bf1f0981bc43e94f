#include "services/gateway/reflection.h"

#include <set>
#include <utility>

#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"

namespace maas::gateway {
namespace {

using google::protobuf::DescriptorPool;
using google::protobuf::FieldDescriptorProto;
using google::protobuf::FileDescriptor;
using google::protobuf::FileDescriptorProto;
using google::protobuf::internal::WireFormatLite;

// grpc/health/v1/health.proto, built field by field (gRPC's health service is not generated code).
FileDescriptorProto HealthFile() {
  FileDescriptorProto file;
  file.set_name("grpc/health/v1/health.proto");
  file.set_package("grpc.health.v1");
  file.set_syntax("proto3");
  auto* request = file.add_message_type();
  request->set_name("HealthCheckRequest");
  auto* service_field = request->add_field();
  service_field->set_name("service");
  service_field->set_number(1);
  service_field->set_label(FieldDescriptorProto::LABEL_OPTIONAL);
  service_field->set_type(FieldDescriptorProto::TYPE_STRING);
  service_field->set_json_name("service");
  auto* response = file.add_message_type();
  response->set_name("HealthCheckResponse");
  auto* status_enum = response->add_enum_type();
  status_enum->set_name("ServingStatus");
  const char* names[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
  for (int i = 0; i < 4; ++i) {
    auto* v = status_enum->add_value();
    v->set_name(names[i]);
    v->set_number(i);
  }
  auto* status_field = response->add_field();
  status_field->set_name("status");
  status_field->set_number(1);
  status_field->set_label(FieldDescriptorProto::LABEL_OPTIONAL);
  status_field->set_type(FieldDescriptorProto::TYPE_ENUM);
  status_field->set_type_name(".grpc.health.v1.HealthCheckResponse.ServingStatus");
  status_field->set_json_name("status");
  auto* service = file.add_service();
  service->set_name("Health");
  auto* check = service->add_method();
  check->set_name("Check");
  check->set_input_type(".grpc.health.v1.HealthCheckRequest");
  check->set_output_type(".grpc.health.v1.HealthCheckResponse");
  auto* watch = service->add_method();
  watch->set_name("Watch");
  watch->set_input_type(".grpc.health.v1.HealthCheckRequest");
  watch->set_output_type(".grpc.health.v1.HealthCheckResponse");
  watch->set_server_streaming(true);
  return file;
}

void AddFileWithDependencies(const FileDescriptor* file, std::set<std::string>* seen,
                             std::vector<std::string>* out) {
  if (file == nullptr || !seen->insert(file->name()).second) return;
  FileDescriptorProto proto;
  file->CopyTo(&proto);
  out->push_back(proto.SerializeAsString());
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddFileWithDependencies(file->dependency(i), seen, out);
  }
}

void WriteBytes(int field, absl::string_view bytes, std::string* out) {
  google::protobuf::io::StringOutputStream stream(out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.WriteTag(WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
  coded.WriteVarint32(static_cast<uint32_t>(bytes.size()));
  coded.WriteRaw(bytes.data(), static_cast<int>(bytes.size()));
}

void WriteVarint(int field, uint64_t value, std::string* out) {
  google::protobuf::io::StringOutputStream stream(out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.WriteTag(WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_VARINT));
  coded.WriteVarint64(value);
}

// The fields of a ServerReflectionRequest this responder reads.
struct Request {
  std::string host;
  int kind = 0;  // the oneof's field number; 0 = none or unparseable
  std::string value;
  std::string extension_type;  // file_containing_extension.containing_type
  int32_t extension_number = 0;
  bool ok = true;
};

Request Bad() {
  Request r;
  r.ok = false;
  return r;
}

Request Parse(absl::string_view bytes) {
  Request r;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  while (uint32_t tag = in.ReadTag()) {
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    if (WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED &&
        (field == 1 || (field >= 3 && field <= 7))) {
      std::string value;
      if (!WireFormatLite::ReadString(&in, &value)) return Bad();
      if (field == 1) {
        r.host = std::move(value);
        continue;
      }
      r.kind = field;
      r.value = std::move(value);
      if (field ==
          5) {  // ExtensionRequest { string containing_type = 1; int32 extension_number = 2; }
        google::protobuf::io::CodedInputStream ext(reinterpret_cast<const uint8_t*>(r.value.data()),
                                                   static_cast<int>(r.value.size()));
        while (uint32_t t = ext.ReadTag()) {
          uint32_t number = 0;
          if (t == WireFormatLite::MakeTag(1, WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) {
            if (!WireFormatLite::ReadString(&ext, &r.extension_type)) return Bad();
          } else if (t == WireFormatLite::MakeTag(2, WireFormatLite::WIRETYPE_VARINT) &&
                     ext.ReadVarint32(&number)) {
            r.extension_number = static_cast<int32_t>(number);
          } else if (!WireFormatLite::SkipField(&ext, t)) {
            return Bad();
          }
        }
      }
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return Bad();
    }
  }
  return r;
}

std::string ErrorResponse(int code, absl::string_view message) {
  std::string error;
  WriteVarint(1, static_cast<uint64_t>(code), &error);
  WriteBytes(2, message, &error);
  std::string out;
  WriteBytes(7, error, &out);
  return out;
}

}  // namespace

ReflectionResponder::ReflectionResponder(std::vector<std::string> services)
    : services_(std::move(services)) {
  health_pool_.BuildFile(HealthFile());
}

const FileDescriptor* ReflectionResponder::FindFile(const std::string& name) const {
  if (const FileDescriptor* f = DescriptorPool::generated_pool()->FindFileByName(name)) return f;
  return health_pool_.FindFileByName(name);
}

const FileDescriptor* ReflectionResponder::FindFileBySymbol(const std::string& symbol) const {
  if (const FileDescriptor* f =
          DescriptorPool::generated_pool()->FindFileContainingSymbol(symbol)) {
    return f;
  }
  return health_pool_.FindFileContainingSymbol(symbol);
}

std::string ReflectionResponder::Answer(absl::string_view request_bytes) const {
  const Request request = Parse(request_bytes);
  std::string out;
  WriteBytes(1, request.host, &out);
  WriteBytes(2, request_bytes, &out);
  if (!request.ok) {
    return out + ErrorResponse(3, "malformed ServerReflectionRequest");  // INVALID_ARGUMENT
  }
  std::vector<std::string> files;
  std::set<std::string> seen;
  switch (request.kind) {
    case 7: {  // list_services
      std::string list;
      for (const std::string& s : services_) {
        std::string service;
        WriteBytes(1, s, &service);
        WriteBytes(1, service, &list);
      }
      WriteBytes(6, list, &out);
      return out;
    }
    case 3:  // file_by_filename
      AddFileWithDependencies(FindFile(request.value), &seen, &files);
      break;
    case 4:  // file_containing_symbol
      AddFileWithDependencies(FindFileBySymbol(request.value), &seen, &files);
      break;
    case 5: {  // file_containing_extension
      const google::protobuf::Descriptor* type =
          DescriptorPool::generated_pool()->FindMessageTypeByName(request.extension_type);
      const google::protobuf::FieldDescriptor* ext =
          type == nullptr ? nullptr
                          : DescriptorPool::generated_pool()->FindExtensionByNumber(
                                type, request.extension_number);
      if (ext != nullptr) AddFileWithDependencies(ext->file(), &seen, &files);
      break;
    }
    case 6: {  // all_extension_numbers_of_type
      const google::protobuf::Descriptor* type =
          DescriptorPool::generated_pool()->FindMessageTypeByName(request.value);
      if (type == nullptr) {
        return out + ErrorResponse(5, "type not found: " + request.value);
      }
      std::vector<const google::protobuf::FieldDescriptor*> extensions;
      DescriptorPool::generated_pool()->FindAllExtensions(type, &extensions);
      std::string numbers;
      WriteBytes(1, request.value, &numbers);
      for (const auto* e : extensions) WriteVarint(2, static_cast<uint64_t>(e->number()), &numbers);
      WriteBytes(5, numbers, &out);
      return out;
    }
    default:
      return out + ErrorResponse(12, "unsupported reflection request");  // UNIMPLEMENTED
  }
  if (files.empty()) return out + ErrorResponse(5, "not found: " + request.value);  // NOT_FOUND
  std::string response;
  for (const std::string& f : files) WriteBytes(1, f, &response);
  WriteBytes(4, response, &out);
  return out;
}

}  // namespace maas::gateway
