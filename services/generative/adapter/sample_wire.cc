#include "services/generative/adapter/sample_wire.h"

#include <grpc/slice.h>
#include <grpcpp/support/slice.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace maas::generative {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "protobuf's fixed64 doubles are little-endian: the values are copied as they are");

// Protobuf wire types and the tags of the fields written here (field number << 3 | wire type).
constexpr int kVarint = 0;
constexpr int kLengthDelimited = 2;
constexpr uint8_t Tag(int field, int wire_type) {
  return static_cast<uint8_t>((field << 3) | wire_type);
}
// SampleBatch: start_index = 1, x = 2, latents = 3, seed = 4, model_version = 5.
constexpr uint8_t kStartIndexTag = Tag(1, kVarint);
constexpr uint8_t kXTag = Tag(2, kLengthDelimited);
constexpr uint8_t kLatentsTag = Tag(3, kLengthDelimited);
constexpr uint8_t kSeedTag = Tag(4, kVarint);
constexpr uint8_t kModelVersionTag = Tag(5, kVarint);
// maas.common.v1.Matrix: rows = 1, cols = 2, values = 3 (packed doubles).
constexpr uint8_t kRowsTag = Tag(1, kVarint);
constexpr uint8_t kColsTag = Tag(2, kVarint);
constexpr uint8_t kValuesTag = Tag(3, kLengthDelimited);

size_t VarintSize(uint64_t value) {
  size_t size = 1;
  for (; value >= 0x80; value >>= 7) ++size;
  return size;
}

void PutVarint(uint64_t value, std::string* out) {
  for (; value >= 0x80; value >>= 7) out->push_back(static_cast<char>((value & 0x7F) | 0x80));
  out->push_back(static_cast<char>(value));
}

// A proto3 scalar: written only when not zero, as protobuf does.
void PutScalar(uint8_t tag, uint64_t value, std::string* out) {
  if (value == 0) return;
  out->push_back(static_cast<char>(tag));
  PutVarint(value, out);
}

// Releases the owner reference a values slice holds (grpc_slice_new_with_user_data's destroy).
void ReleaseOwner(void* owner) {
  delete static_cast<std::shared_ptr<const SampleBatchValues>*>(owner);
}

// Builds the message as slices: framing bytes accumulate in `framing_` and become a slice of their
// own each time a matrix's values (one slice referring to the matrix's memory) follow.
class SliceWriter {
 public:
  explicit SliceWriter(const std::shared_ptr<const SampleBatchValues>& owner) : owner_(owner) {}
  std::string& framing() { return framing_; }
  // A length-delimited Matrix field `tag` holding `m` (row-major: its memory is the packed field).
  void Matrix(uint8_t tag, const RowMatrixXd& m) {
    const uint64_t rows = static_cast<uint32_t>(m.rows());
    const uint64_t cols = static_cast<uint32_t>(m.cols());
    const uint64_t value_bytes = static_cast<uint64_t>(m.size()) * sizeof(double);
    uint64_t length = 0;
    if (rows != 0) length += 1 + VarintSize(rows);
    if (cols != 0) length += 1 + VarintSize(cols);
    if (value_bytes != 0) length += 1 + VarintSize(value_bytes) + value_bytes;
    framing_.push_back(static_cast<char>(tag));
    PutVarint(length, &framing_);
    PutScalar(kRowsTag, rows, &framing_);
    PutScalar(kColsTag, cols, &framing_);
    if (value_bytes == 0) return;
    framing_.push_back(static_cast<char>(kValuesTag));
    PutVarint(value_bytes, &framing_);
    Flush();
    // gRPC only reads the slice; the matrix stays unchanged while the owner copy lives.
    grpc_slice values = grpc_slice_new_with_user_data(
        const_cast<double*>(m.data()), static_cast<size_t>(value_bytes), &ReleaseOwner,
        new std::shared_ptr<const SampleBatchValues>(owner_));
    slices_.emplace_back(values, grpc::Slice::STEAL_REF);
  }
  void Finish(grpc::ByteBuffer* out) {
    Flush();
    grpc::ByteBuffer buffer(slices_.data(), slices_.size());
    out->Swap(&buffer);
  }

 private:
  void Flush() {
    if (framing_.empty()) return;
    slices_.emplace_back(framing_.data(), framing_.size());  // copies the few bytes
    framing_.clear();
  }

  const std::shared_ptr<const SampleBatchValues>& owner_;
  std::string framing_;
  std::vector<grpc::Slice> slices_;
};

}  // namespace

void EncodeSampleBatch(const SampleBatchView& view, grpc::ByteBuffer* out) {
  SliceWriter writer(view.owner);
  PutScalar(kStartIndexTag, view.start_index, &writer.framing());
  writer.Matrix(kXTag, *view.x);
  if (view.latents != nullptr) writer.Matrix(kLatentsTag, *view.latents);
  PutScalar(kSeedTag, view.seed, &writer.framing());
  PutScalar(kModelVersionTag, static_cast<uint64_t>(view.model_version), &writer.framing());
  writer.Finish(out);
}

bool SampleWireSource::Next(v1::SampleBatch* header) {
  SampleBatchView view;
  if (!stream_->NextView(&view)) return false;
  header->Clear();
  header->set_start_index(view.start_index);
  header->set_seed(view.seed);
  header->set_model_version(view.model_version);
  header->mutable_x()->set_rows(static_cast<uint32_t>(view.x->rows()));
  header->mutable_x()->set_cols(static_cast<uint32_t>(view.x->cols()));
  if (view.latents != nullptr) {
    header->mutable_latents()->set_rows(static_cast<uint32_t>(view.latents->rows()));
    header->mutable_latents()->set_cols(static_cast<uint32_t>(view.latents->cols()));
  }
  absl::MutexLock lock(&mu_);
  pending_.push_back(view);
  return true;
}

void SampleWireSource::SerializePending(grpc::ByteBuffer* out) {
  SampleBatchView view;
  {
    absl::MutexLock lock(&mu_);
    view = pending_.front();
    pending_.pop_front();
  }
  EncodeSampleBatch(view, out);  // its matrices are not reused before this write completed
}

}  // namespace maas::generative
