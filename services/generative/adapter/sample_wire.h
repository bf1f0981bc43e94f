// The wire bytes of a Sample stream's messages, written straight from the sampled matrices.
//
// The generic path copies a batch twice before gRPC sends it: the sampled matrix into the
// SampleBatch's repeated double field, then the message into a send buffer (a serialisation). The
// families sample row-major, the layout of packed doubles on the wire, so EncodeSampleBatch copies
// nothing: the sampled values become slices of the message as they are (sharing ownership of the
// batch's matrices until gRPC has sent them), and it writes the protobuf framing (tags, lengths,
// varints) by hand around them. The bytes are exactly SampleBatchToProto(view).SerializeAsString():
// an ordinary SampleBatch every client parses unchanged (tested byte for byte).
#ifndef MAAS_SERVICES_GENERATIVE_ADAPTER_SAMPLE_WIRE_H_
#define MAAS_SERVICES_GENERATIVE_ADAPTER_SAMPLE_WIRE_H_

#include <grpcpp/support/byte_buffer.h>

#include <deque>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "maas/generative/v1/generative.pb.h"
#include "services/generative/core/generative_core.h"

namespace maas::generative {

// Replaces `out` with the serialised SampleBatch of `view`: small framing slices around one slice
// per matrix that refers to its values in place (the slice holds a copy of view.owner until gRPC
// releases it). REQUIRES: view.x != nullptr; view.owner owns the matrices (or, when null, they
// outlive every copy of `out`).
void EncodeSampleBatch(const SampleBatchView& view, grpc::ByteBuffer* out);

// The source of a Sample call's server stream (adapter::ServerStream): Next samples a batch on
// the worker pool into the core's SampleStream, and SerializePending encodes the oldest sampled
// batch with EncodeSampleBatch (framing only) from the thread that starts its write (the service's
// writer), while the pool samples the next batch. `header` receives the message without its values
// (start index, seed, model version, matrix shapes) for the call's log.
class SampleWireSource {
 public:
  explicit SampleWireSource(std::unique_ptr<SampleStream> stream) : stream_(std::move(stream)) {}
  bool Next(v1::SampleBatch* header);
  // REQUIRES: a batch Next produced is not serialised yet.
  void SerializePending(grpc::ByteBuffer* out);

 private:
  std::unique_ptr<SampleStream> stream_;  // used by Next only
  absl::Mutex mu_;
  std::deque<SampleBatchView> pending_ ABSL_GUARDED_BY(mu_);  // at most two
};

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_ADAPTER_SAMPLE_WIRE_H_
