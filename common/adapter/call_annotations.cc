#include "common/adapter/call_annotations.h"

#include <grpc/grpc.h>

#include "google/protobuf/descriptor.h"

namespace maas::adapter {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

const FieldDescriptor* Field(const Message& message, const char* name,
                             FieldDescriptor::CppType type) {
  const FieldDescriptor* field = message.GetDescriptor()->FindFieldByName(name);
  if (field == nullptr || field->is_repeated() || field->cpp_type() != type) return nullptr;
  return field;
}

// Whether `name` can travel as a gRPC metadata value, by gRPC's own rule (the one it asserts on,
// aborting the process): the name comes from the request before it is validated.
bool MetadataSafe(const std::string& name) {
  return grpc_header_nonbin_value_is_legal(
             grpc_slice_from_static_buffer(name.data(), name.size())) != 0;
}

// The name and version fields of a ModelRef / ModelInfo / config message. A name no metadata can
// carry (a control character, non-ASCII text) is never a model's: it is left out.
void FromIdentity(const Message& message, ModelAnnotation* out) {
  const google::protobuf::Reflection* reflection = message.GetReflection();
  if (const FieldDescriptor* name = Field(message, "name", FieldDescriptor::CPPTYPE_STRING)) {
    std::string value = reflection->GetString(message, name);
    if (!value.empty() && MetadataSafe(value)) out->name = std::move(value);
  }
  if (const FieldDescriptor* version = Field(message, "version", FieldDescriptor::CPPTYPE_INT64)) {
    const int64_t value = reflection->GetInt64(message, version);
    if (value > 0) out->version = value;
  }
}

}  // namespace

void ModelAnnotation::Update(const Message& message) {
  const google::protobuf::Reflection* reflection = message.GetReflection();
  for (const char* sub : {"model", "info", "config"}) {
    const FieldDescriptor* field = Field(message, sub, FieldDescriptor::CPPTYPE_MESSAGE);
    if (field == nullptr || !reflection->HasField(message, field)) continue;
    const Message& inner = reflection->GetMessage(message, field);
    FromIdentity(inner, this);
    // EvaluateConfig { model } and the like.
    if (const FieldDescriptor* model = Field(inner, "model", FieldDescriptor::CPPTYPE_MESSAGE);
        model != nullptr && inner.GetReflection()->HasField(inner, model)) {
      FromIdentity(inner.GetReflection()->GetMessage(inner, model), this);
    }
  }
  // CreateModelRequest.name, DeleteModelRequest.name / version.
  FromIdentity(message, this);
  if (const FieldDescriptor* version =
          Field(message, "model_version", FieldDescriptor::CPPTYPE_INT64)) {
    const int64_t value = reflection->GetInt64(message, version);
    if (value > 0) this->version = value;
  }
}

void ModelAnnotation::CountOutput(const Message& response) {
  const google::protobuf::Descriptor* descriptor = response.GetDescriptor();
  const google::protobuf::Reflection* reflection = response.GetReflection();
  const FieldDescriptor* results = descriptor->FindFieldByName("results");
  if (results != nullptr && results->is_repeated() &&
      results->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
      results->message_type()->name() == "Classification") {
    documents += reflection->FieldSize(response, results);
  }
  // The compact form of ClassifyResponse: one predicted class index per text, no results.
  const FieldDescriptor* predicted = descriptor->FindFieldByName("predicted");
  if (predicted != nullptr && predicted->is_repeated() &&
      descriptor->name() == "ClassifyResponse") {
    documents += reflection->FieldSize(response, predicted);
  }
  const FieldDescriptor* x = Field(response, "x", FieldDescriptor::CPPTYPE_MESSAGE);
  if (x != nullptr && descriptor->name() == "SampleBatch" && reflection->HasField(response, x)) {
    const Message& matrix = reflection->GetMessage(response, x);
    if (const FieldDescriptor* rows = matrix.GetDescriptor()->FindFieldByName("rows");
        rows != nullptr && rows->cpp_type() == FieldDescriptor::CPPTYPE_UINT32) {
      samples += matrix.GetReflection()->GetUInt32(matrix, rows);
    }
  }
}

}  // namespace maas::adapter
