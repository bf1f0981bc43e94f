#include "services/gateway/model_list.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace maas::gateway {

using maas::common::v1::ListModelsResponse;
using maas::common::v1::ModelInfo;

absl::StatusOr<ListModelsResponse> MergeModelLists(std::vector<BackendModels> lists) {
  auto failure = [](const BackendModels& b) {
    return absl::Status(b.result.status().code(),
                        absl::StrCat("backend of route ", b.route.service,
                                     " failed: ", b.result.status().message()));
  };
  std::size_t failed = 0;
  for (const BackendModels& b : lists) {
    if (b.result.ok()) continue;
    ++failed;
    const absl::StatusCode code = b.result.status().code();
    if (code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kUnauthenticated ||
        code == absl::StatusCode::kPermissionDenied) {
      return failure(b);
    }
  }
  if (!lists.empty() && failed == lists.size()) {
    std::vector<std::string> parts;
    for (const BackendModels& b : lists) {
      parts.push_back(absl::StrCat(b.route.service, ": ", b.result.status().message()));
    }
    return absl::Status(
        lists.front().result.status().code(),
        absl::StrCat("no backend answered ListModels (", absl::StrJoin(parts, "; "), ")"));
  }
  ListModelsResponse merged;
  for (BackendModels& b : lists) {
    if (!b.result.ok()) {
      merged.add_missing_backends(absl::StrCat(b.route.service, ": ",
                                               absl::StatusCodeToString(b.result.status().code()),
                                               ": ", b.result.status().message()));
      continue;
    }
    for (ModelInfo& info : *b.result->mutable_models()) {
      if (info.type() == maas::common::v1::MODEL_TYPE_UNSPECIFIED) info.set_type(b.route.type);
      *merged.add_models() = std::move(info);
    }
    for (maas::common::v1::UnreadableVersion& bad : *b.result->mutable_unreadable_versions()) {
      if (bad.type() == maas::common::v1::MODEL_TYPE_UNSPECIFIED) bad.set_type(b.route.type);
      *merged.add_unreadable_versions() = std::move(bad);
    }
  }
  // By name, then version, then type (ModelInfo and UnreadableVersion alike).
  const auto by_name_version_type = [](const auto& a, const auto& b) {
    if (a.name() != b.name()) return a.name() < b.name();
    if (a.version() != b.version()) return a.version() < b.version();
    return a.type() < b.type();
  };
  std::stable_sort(merged.mutable_models()->begin(), merged.mutable_models()->end(),
                   by_name_version_type);
  std::stable_sort(merged.mutable_unreadable_versions()->begin(),
                   merged.mutable_unreadable_versions()->end(), by_name_version_type);
  return merged;
}

}  // namespace maas::gateway
