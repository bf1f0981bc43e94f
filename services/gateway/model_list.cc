#include "services/gateway/model_list.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace maas::gateway {

using maas::common::v1::ListModelsResponse;
using maas::common::v1::ModelInfo;

absl::StatusOr<ListModelsResponse> MergeModelLists(std::vector<BackendModels> lists) {
  for (const BackendModels& b : lists) {
    if (!b.result.ok()) {
      return absl::Status(b.result.status().code(),
                          absl::StrCat("backend ", b.route.service, " at ", b.route.target,
                                       " failed: ", b.result.status().message()));
    }
  }
  ListModelsResponse merged;
  for (BackendModels& b : lists) {
    for (ModelInfo& info : *b.result->mutable_models()) {
      if (info.type() == maas::common::v1::MODEL_TYPE_UNSPECIFIED) info.set_type(b.route.type);
      *merged.add_models() = std::move(info);
    }
  }
  std::stable_sort(merged.mutable_models()->begin(), merged.mutable_models()->end(),
                   [](const ModelInfo& a, const ModelInfo& b) {
                     if (a.name() != b.name()) return a.name() < b.name();
                     if (a.version() != b.version()) return a.version() < b.version();
                     return a.type() < b.type();
                   });
  return merged;
}

}  // namespace maas::gateway
