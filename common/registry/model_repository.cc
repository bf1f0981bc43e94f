#include "common/registry/model_repository.h"

#include <climits>

#include "google/protobuf/io/coded_stream.h"
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

absl::StatusOr<common::v1::ModelInfo> ParseStoredInfo(const std::string& bytes) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  in.SetTotalBytesLimit(INT_MAX);
  common::v1::ModelInfo info;
  bool found = false;
  for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
    if (WireFormatLite::GetTagFieldNumber(tag) == 1 &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      uint32_t length = 0;
      std::string field;
      if (!in.ReadVarint32(&length) || !in.ReadString(&field, static_cast<int>(length)) ||
          !info.MergeFromString(field)) {
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
  info.set_size_bytes(static_cast<int64_t>(bytes.size()));
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
