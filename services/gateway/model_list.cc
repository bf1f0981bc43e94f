#include "services/gateway/model_list.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/registry/list_page.h"
#include "common/status/status_macros.h"

namespace maas::gateway {

using maas::common::v1::ListModelsRequest;
using maas::common::v1::ListModelsResponse;
using maas::common::v1::ModelInfo;
using maas::common::v1::UnreadableVersion;
using maas::registry::kMaxListPageSize;
using maas::registry::ListKey;

absl::StatusOr<ListModelsResponse> MergeModelLists(const ListModelsRequest& request,
                                                   std::vector<BackendModels> lists,
                                                   int64_t max_bytes) {
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
  // Every entry of the healthy backends, and where a backend with more entries stops.
  // Entries at or before the token's position are dropped here too: a backend older than paging
  // answers every entry to every page.
  MAAS_ASSIGN_OR_RETURN(const maas::registry::ListPaging paging,
                        maas::registry::ParseListPaging(request));
  std::vector<ModelInfo> models;
  std::vector<UnreadableVersion> unreadable;
  std::optional<ListKey> cutoff;
  bool more = false;
  ListModelsResponse merged;
  for (BackendModels& b : lists) {
    if (!b.result.ok()) {
      merged.add_missing_backends(absl::StrCat(b.route.service, ": ",
                                               absl::StatusCodeToString(b.result.status().code()),
                                               ": ", b.result.status().message()));
      continue;
    }
    std::optional<ListKey> backend_last;
    const auto see = [&backend_last](const ListKey& key) {
      if (!backend_last.has_value() || *backend_last < key) backend_last = key;
    };
    for (ModelInfo& info : *b.result->mutable_models()) {
      if (info.type() == maas::common::v1::MODEL_TYPE_UNSPECIFIED) info.set_type(b.route.type);
      if (!paging.Wants(paging.KeyOf(info))) continue;
      see(paging.KeyOf(info));
      models.push_back(std::move(info));
    }
    for (UnreadableVersion& bad : *b.result->mutable_unreadable_versions()) {
      if (bad.type() == maas::common::v1::MODEL_TYPE_UNSPECIFIED) bad.set_type(b.route.type);
      if (!paging.Wants(paging.KeyOf(bad))) continue;
      see(paging.KeyOf(bad));
      unreadable.push_back(std::move(bad));
    }
    if (b.result->next_page_token().empty()) continue;
    if (!backend_last.has_value()) {
      // More entries and none after the token: its entries cannot bound the page (a backend
      // whose entries sort elsewhere than its token says), so the page lacks them, and says so.
      merged.add_missing_backends(absl::StrCat(
          b.route.service,
          ": INTERNAL: answered a page with a next_page_token and no entry after the page_token"));
      continue;
    }
    more = true;
    if (!cutoff.has_value() || *backend_last < *cutoff) cutoff = backend_last;
  }
  // By name, then version (with all_versions), then type (ModelInfo and UnreadableVersion
  // alike).
  const auto by_key = [&paging](const auto& a, const auto& b) {
    return paging.KeyOf(a) < paging.KeyOf(b);
  };
  std::stable_sort(models.begin(), models.end(), by_key);
  std::stable_sort(unreadable.begin(), unreadable.end(), by_key);

  if (paging.page_size == 0) {
    for (ModelInfo& info : models) *merged.add_models() = std::move(info);
    for (UnreadableVersion& bad : unreadable) *merged.add_unreadable_versions() = std::move(bad);
    if (max_bytes > 0 && merged.ByteSizeLong() > static_cast<std::size_t>(max_bytes)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the list of ", merged.models_size(), " models is ", merged.ByteSizeLong(),
          " bytes, above the gateway's --max_message_bytes (", max_bytes,
          "): page through it (set page_size, 1..", kMaxListPageSize,
          ", and send each answer's next_page_token back as page_token; the clients' full "
          "listings do), or set name_prefix"));
    }
    return merged;
  }
  // Both lists in one order: take from whichever sorts first, while the page has room and the
  // entry is not past a backend's last.
  registry::ListPageFill page(paging, max_bytes, "the gateway's --max_message_bytes",
                              static_cast<int64_t>(merged.ByteSizeLong()));  // missing_backends
  if (more) page.MarkMore();
  std::size_t m = 0, u = 0;
  while (m < models.size() || u < unreadable.size()) {
    const bool take_model =
        u == unreadable.size() ||
        (m < models.size() && !(paging.KeyOf(unreadable[u]) < paging.KeyOf(models[m])));
    const ListKey key = take_model ? paging.KeyOf(models[m]) : paging.KeyOf(unreadable[u]);
    if (cutoff.has_value() && *cutoff < key) break;
    MAAS_ASSIGN_OR_RETURN(
        const bool taken,
        take_model ? page.Take(key, models[m].version(), models[m].ByteSizeLong())
                   : page.Take(key, unreadable[u].version(), unreadable[u].ByteSizeLong()));
    if (!taken) break;
    if (take_model) {
      *merged.add_models() = std::move(models[m++]);
    } else {
      *merged.add_unreadable_versions() = std::move(unreadable[u++]);
    }
  }
  merged.set_next_page_token(page.NextPageToken(request));
  return merged;
}

}  // namespace maas::gateway
