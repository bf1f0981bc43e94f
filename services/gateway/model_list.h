// Merging the model lists of the gateway's backends (transport-free).
#ifndef MAAS_SERVICES_GATEWAY_MODEL_LIST_H_
#define MAAS_SERVICES_GATEWAY_MODEL_LIST_H_

#include <cstdint>
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

// Merges the backends' answers to `request` into one listing sorted by name, then version, then
// type. A ModelInfo whose type is MODEL_TYPE_UNSPECIFIED gets its route's type; other types are
// kept as the backend sent them. The backends' unreadable_versions are merged the same way.
//
// Paging (request.page_size > 0; each backend got the same request, so each answered the page
// after the same token): the merged page holds the first entries of the union, at most page_size,
// within max_bytes (0: no limit) and never past the last entry of a backend that has more (its
// next entries are not known yet); next_page_token then names the page's last entry, which every
// backend understands. Without paging, an answer above max_bytes is RESOURCE_EXHAUSTED saying to
// page.
//
// Partial answers: a backend that failed (down, deadline) leaves its models out and adds
// "<service>: <CODE>: <message>" to missing_backends, so the caller sees what the healthy backends
// have and which one is missing. The call fails only when every backend failed, or when a backend
// rejected the request itself (INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED: the same
// request would fail everywhere); then with that backend's code and a message naming its route
// (never its address); the first such failure in `lists` order wins.
absl::StatusOr<maas::common::v1::ListModelsResponse> MergeModelLists(
    const maas::common::v1::ListModelsRequest& request, std::vector<BackendModels> lists,
    int64_t max_bytes = 0);

}  // namespace maas::gateway

#endif  // MAAS_SERVICES_GATEWAY_MODEL_LIST_H_
