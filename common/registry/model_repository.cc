#include "common/registry/model_repository.h"

#include "google/protobuf/util/time_util.h"

namespace maas::registry {

absl::Status ValidateLabels(const google::protobuf::Map<std::string, std::string>& labels,
                            std::string_view description) {
  constexpr size_t kMaxLabelBytes = 256;
  constexpr size_t kMaxDescriptionBytes = 4096;
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
