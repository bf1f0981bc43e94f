// Reading the discriminative requests that carry texts with each text as bytes (text_wire.proto):
// invalid UTF-8 in a text reaches the core, which refuses it naming the text (decode_error strict)
// or repairs it (replace / ignore); every other field is parsed by the v1 message with protobuf's
// checks, so invalid UTF-8 in a label or a model name still makes the message unreadable.
#ifndef MAAS_SERVICES_DISCRIMINATIVE_ADAPTER_TEXT_WIRE_H_
#define MAAS_SERVICES_DISCRIMINATIVE_ADAPTER_TEXT_WIRE_H_

#include <google/protobuf/io/zero_copy_stream.h>
#include <grpcpp/support/byte_buffer.h>

#include "common/adapter/reactors.h"
#include "maas/discriminative/v1/discriminative.pb.h"

namespace maas::discriminative {

// Each parses one serialized message from `in` into `out` (cleared first), equal to protobuf's
// parse of the v1 type except that texts need not be UTF-8. false when the bytes are not a valid
// message.
bool ParseWithRawTexts(google::protobuf::io::ZeroCopyInputStream* in, v1::ClassifyRequest* out);
bool ParseWithRawTexts(google::protobuf::io::ZeroCopyInputStream* in, v1::VectorizeRequest* out);
bool ParseWithRawTexts(google::protobuf::io::ZeroCopyInputStream* in, v1::TrainRequest* out);
bool ParseWithRawTexts(google::protobuf::io::ZeroCopyInputStream* in, v1::EvaluateRequest* out);

// ParseWithRawTexts as the adapter's reactors read a request (adapter::RequestReader).
template <class Msg>
struct RawTextsReader {
  static bool Parse(grpc::ByteBuffer* bytes, Msg* message);  // consumes `bytes`
};

}  // namespace maas::discriminative

namespace maas::adapter {

template <>
struct RequestReader<discriminative::v1::ClassifyRequest>
    : discriminative::RawTextsReader<discriminative::v1::ClassifyRequest> {};
template <>
struct RequestReader<discriminative::v1::VectorizeRequest>
    : discriminative::RawTextsReader<discriminative::v1::VectorizeRequest> {};
template <>
struct RequestReader<discriminative::v1::TrainRequest>
    : discriminative::RawTextsReader<discriminative::v1::TrainRequest> {};
template <>
struct RequestReader<discriminative::v1::EvaluateRequest>
    : discriminative::RawTextsReader<discriminative::v1::EvaluateRequest> {};

}  // namespace maas::adapter

#endif  // MAAS_SERVICES_DISCRIMINATIVE_ADAPTER_TEXT_WIRE_H_
