#include "services/discriminative/adapter/text_wire.h"

#include <grpcpp/support/proto_buffer_reader.h>

#include <string>

#include "services/discriminative/adapter/text_wire.pb.h"

namespace maas::discriminative {
namespace {

namespace pb = google::protobuf;

// Parses the fields `from` kept as unknown (those text_wire.proto does not declare) into `to`,
// with the v1 type's checks.
bool MergeUnknownFields(const pb::Message& from, pb::Message* to) {
  const pb::UnknownFieldSet& unknown = from.GetReflection()->GetUnknownFields(from);
  if (unknown.empty()) return true;
  std::string bytes;
  return unknown.SerializeToString(&bytes) && to->MergeFromString(bytes);
}

template <class Request>
bool ParseTextsRequest(pb::io::ZeroCopyInputStream* in, Request* out) {
  wire::TextsRequest read;
  out->Clear();
  if (!read.ParseFromZeroCopyStream(in) || !MergeUnknownFields(read, out)) return false;
  out->mutable_texts()->Swap(read.mutable_texts());
  out->mutable_packed_texts()->swap(*read.mutable_packed_texts());
  return true;
}

bool TakeBatch(wire::TextBatch& read, v1::TextBatch* out) {
  if (!MergeUnknownFields(read, out)) return false;
  out->mutable_examples()->Reserve(read.examples_size());
  for (wire::LabeledText& example : *read.mutable_examples()) {
    v1::LabeledText* taken = out->add_examples();
    if (!MergeUnknownFields(example, taken)) return false;
    taken->mutable_text()->swap(*example.mutable_text());
    taken->mutable_label()->swap(*example.mutable_label());
    if (example.has_weight()) taken->set_weight(example.weight());
  }
  return true;
}

template <class Wire, class Request>
bool ParseBatchStreamRequest(pb::io::ZeroCopyInputStream* in, Request* out) {
  Wire read;
  out->Clear();
  if (!read.ParseFromZeroCopyStream(in) || !MergeUnknownFields(read, out)) return false;
  switch (read.message_case()) {
    case Wire::kConfig:
      out->mutable_config()->Swap(read.mutable_config());
      return true;
    case Wire::kBatch:
      return TakeBatch(*read.mutable_batch(), out->mutable_batch());
    case Wire::MESSAGE_NOT_SET:
      return true;
  }
  return false;
}

}  // namespace

bool ParseWithRawTexts(pb::io::ZeroCopyInputStream* in, v1::ClassifyRequest* out) {
  return ParseTextsRequest(in, out);
}
bool ParseWithRawTexts(pb::io::ZeroCopyInputStream* in, v1::VectorizeRequest* out) {
  return ParseTextsRequest(in, out);
}
bool ParseWithRawTexts(pb::io::ZeroCopyInputStream* in, v1::TrainRequest* out) {
  return ParseBatchStreamRequest<wire::TrainRequest>(in, out);
}
bool ParseWithRawTexts(pb::io::ZeroCopyInputStream* in, v1::EvaluateRequest* out) {
  return ParseBatchStreamRequest<wire::EvaluateRequest>(in, out);
}

template <class Msg>
bool RawTextsReader<Msg>::Parse(grpc::ByteBuffer* bytes, Msg* message) {
  bool parsed = false;
  {
    grpc::ProtoBufferReader reader(bytes);
    parsed = reader.status().ok() && ParseWithRawTexts(&reader, message);
  }
  bytes->Clear();
  return parsed;
}

template struct RawTextsReader<v1::ClassifyRequest>;
template struct RawTextsReader<v1::VectorizeRequest>;
template struct RawTextsReader<v1::TrainRequest>;
template struct RawTextsReader<v1::EvaluateRequest>;

}  // namespace maas::discriminative
