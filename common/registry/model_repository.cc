#include "common/registry/model_repository.h"

#include <algorithm>
#include <climits>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/time_util.h"
#include "google/protobuf/wire_format_lite.h"

namespace maas::registry {

absl::Status ValidateLabels(const google::protobuf::Map<std::string, std::string>& labels,
                            std::string_view description) {
  constexpr size_t kMaxLabelBytes = 256;
  constexpr size_t kMaxDescriptionBytes = 4096;
  // Every ModelInfo (ListModels, each reply) carries them: unbounded, a few models' labels made
  // ListModels too large for any client.
  constexpr int kMaxLabels = 64;
  if (labels.size() > kMaxLabels) {
    return absl::InvalidArgumentError(absl::StrCat(
        "labels: ", labels.size(), " labels; a model has at most ", kMaxLabels,
        " (they travel with every ModelInfo): keep bulk metadata in the description or elsewhere"));
  }
  for (const auto& [key, value] : labels) {
    if (key.empty())
      return absl::InvalidArgumentError("labels: a label key is empty; keys need 1..256 bytes");
    if (key.size() > kMaxLabelBytes || value.size() > kMaxLabelBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("labels: the label '", key.substr(0, 64),
                       "' is longer than 256 bytes (key or value); shorten it"));
    }
  }
  if (description.size() > kMaxDescriptionBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("description has ", description.size(), " bytes; at most 4096 are stored"));
  }
  return absl::OkStatus();
}

namespace {

// A stored version as a protobuf input stream that skips by moving its offset, so that reading
// field 1 and stepping over the parameters reads a few KB of a model of any size.
class ReaderStream : public google::protobuf::io::CopyingInputStream {
 public:
  explicit ReaderStream(store::VersionReader* reader) : reader_(reader) {}
  int Read(void* buffer, int size) override {
    absl::StatusOr<std::size_t> n =
        reader_->ReadAt(offset_, static_cast<char*>(buffer), static_cast<std::size_t>(size));
    if (!n.ok()) {
      error_ = n.status();
      return -1;
    }
    offset_ += static_cast<int64_t>(*n);
    return static_cast<int>(*n);
  }
  // Never past the end, so a field whose length runs past it fails to skip, as in memory.
  int Skip(int count) override {
    const int64_t skipped = std::clamp<int64_t>(reader_->size() - offset_, 0, count);
    offset_ += skipped;
    return static_cast<int>(skipped);
  }
  const absl::Status& error() const { return error_; }

 private:
  store::VersionReader* reader_;
  int64_t offset_ = 0;
  absl::Status error_;
};

// The ModelInfo (field 1) of the stored message in `stream` of `size` bytes; every other field is
// skipped over, checking only the message's framing.
absl::StatusOr<common::v1::ModelInfo> ParseStoredInfo(
    google::protobuf::io::ZeroCopyInputStream* stream, int64_t size) {
  using google::protobuf::internal::WireFormatLite;
  if (size > INT_MAX) {
    return absl::DataLossError(
        absl::StrCat("stored model: ", size, " bytes, more than a protobuf message can hold"));
  }
  google::protobuf::io::CodedInputStream in(stream);
  in.SetTotalBytesLimit(INT_MAX);
  common::v1::ModelInfo info;
  bool found = false;
  for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
    if (WireFormatLite::GetTagFieldNumber(tag) == 1 &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      uint32_t length = 0;
      std::string field;
      // A length past the end fails before anything is allocated for it (a corrupt file).
      if (!in.ReadVarint32(&length) || length > size - in.CurrentPosition() ||
          !in.ReadString(&field, static_cast<int>(length)) || !info.MergeFromString(field)) {
        return absl::DataLossError("stored model: its ModelInfo (field 1) cannot be parsed");
      }
      found = true;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return absl::DataLossError("stored model: not a valid protobuf message");
    }
  }
  if (!in.ConsumedEntireMessage() || !found) {
    return absl::DataLossError("stored model: no ModelInfo (field 1) in the stored message");
  }
  info.set_size_bytes(size);
  return info;
}

}  // namespace

absl::StatusOr<common::v1::ModelInfo> ParseStoredInfo(const std::string& bytes) {
  google::protobuf::io::ArrayInputStream stream(bytes.data(), static_cast<int>(bytes.size()));
  return ParseStoredInfo(&stream, static_cast<int64_t>(bytes.size()));
}

absl::StatusOr<common::v1::ModelInfo> ParseStoredInfo(store::VersionReader* reader) {
  ReaderStream source(reader);
  absl::StatusOr<common::v1::ModelInfo> info;
  {
    google::protobuf::io::CopyingInputStreamAdaptor stream(&source, kStoredInfoReadBytes);
    info = ParseStoredInfo(&stream, reader->size());
  }
  if (!source.error().ok()) return source.error();  // an I/O error, not the bytes' fault
  return info;
}

void FillModelInfo(std::string_view name, int64_t version, common::v1::ModelType type,
                   std::string_view family,
                   const google::protobuf::Map<std::string, std::string>& labels,
                   std::string_view description, absl::Time created_at,
                   common::v1::ModelInfo* info) {
  info->set_name(std::string(name));
  info->set_version(version);
  info->set_type(type);
  info->set_family(std::string(family));
  *info->mutable_labels() = labels;
  info->set_description(std::string(description));
  *info->mutable_created_at() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(created_at));
}

}  // namespace maas::registry
