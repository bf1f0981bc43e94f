// Merging the model lists of the gateway's backends (transport-free).
#ifndef MAAS_SERVICES_GATEWAY_MODEL_LIST_H_
#define MAAS_SERVICES_GATEWAY_MODEL_LIST_H_

#include <vector>

#include "absl/status/statusor.h"
#include "maas/common/v1/common.pb.h"
#include "services/gateway/router.h"

namespace maas::gateway {

// The answer of one route's backend to ListModels.
struct BackendModels {
  Route route;
  absl::StatusOr<maas::common::v1::ListModelsResponse> result;
};

// Merges the lists into one sorted by name, then version, then type. A ModelInfo whose type is
// MODEL_TYPE_UNSPECIFIED gets its route's type; other types are kept as the backend sent them.
//
// All or nothing: if any backend failed, returns that backend's status code (UNAVAILABLE when it is
// down) with a message naming the backend, e.g. "backend maas.generative.v1.GenerativeService at
// ipv4:127.0.0.1:50052 failed: <message>"; the first failure in `lists` order wins. A partial list
// would silently hide models, so none is returned.
absl::StatusOr<maas::common::v1::ListModelsResponse> MergeModelLists(
    std::vector<BackendModels> lists);

}  // namespace maas::gateway

#endif  // MAAS_SERVICES_GATEWAY_MODEL_LIST_H_
