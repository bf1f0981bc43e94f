// A typed view of the model store for one service: versions of parsed, immutable models with their
// ModelInfo, shared by both services (Create/Get/List/Delete semantics are the same for every model
// type).
//
//   ModelRepository<LoadedModel> repo(store, ParseStoredModel, absl::Seconds(2));
//   MAAS_ASSIGN_OR_RETURN(auto model, repo.Get(ref));   // shared_ptr: the call keeps its version
//   alive
//
// `Loaded` must provide `const maas::common::v1::ModelInfo& info() const`.
#ifndef MAAS_COMMON_REGISTRY_MODEL_REPOSITORY_H_
#define MAAS_COMMON_REGISTRY_MODEL_REPOSITORY_H_

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status/status_macros.h"
#include "common/store/model_cache.h"
#include "common/store/model_store.h"
#include "google/protobuf/map.h"
#include "maas/common/v1/common.pb.h"

namespace maas::registry {

// Model name rule of the store: [a-z0-9][a-z0-9._-]{0,62}.
inline absl::Status ValidateModelName(std::string_view name) {
  return store::ValidateModelName(name);
}

// Labels: keys and values of at most 256 bytes, keys non-empty; description at most 4096 bytes.
absl::Status ValidateLabels(const google::protobuf::Map<std::string, std::string>& labels,
                            std::string_view description);

// Fills the identity fields of a new version's ModelInfo.
void FillModelInfo(std::string_view name, int64_t version, common::v1::ModelType type,
                   std::string_view family,
                   const google::protobuf::Map<std::string, std::string>& labels,
                   std::string_view description, absl::Time created_at,
                   common::v1::ModelInfo* info);

template <class Loaded>
class ModelRepository {
 public:
  using Parser =
      std::function<absl::StatusOr<std::shared_ptr<const Loaded>>(const std::string& bytes)>;

  // `store` is not owned and must outlive the repository. poll_interval > 0 starts a background
  // poller so replicas sharing a volume see each other's versions; 0 = no polling (tests).
  ModelRepository(store::ModelStore* store, Parser parse, absl::Duration poll_interval)
      : store_(store), cache_(store, std::move(parse)) {
    if (poll_interval > absl::ZeroDuration()) cache_.StartPolling(poll_interval);
  }

  // The version `ref` names (0 = latest). INVALID_ARGUMENT for an empty or bad name or a negative
  // version, NOT_FOUND naming the model and version when absent.
  absl::StatusOr<std::shared_ptr<const Loaded>> Get(const common::v1::ModelRef& ref) {
    if (ref.name().empty()) {
      return absl::InvalidArgumentError(
          "model.name is empty; name the model to use (see ListModels)");
    }
    if (ref.version() < 0) {
      return absl::InvalidArgumentError(absl::StrCat("model.version is ", ref.version(),
                                                     "; use a version >= 1, or 0 for the latest"));
    }
    MAAS_RETURN_IF_ERROR(ValidateModelName(ref.name()));
    return cache_.Get(ref.name(), ref.version());
  }

  // Writes the next version of `name` with the bytes make_bytes(version) produces, then returns it
  // loaded.
  absl::StatusOr<std::shared_ptr<const Loaded>> Put(
      std::string_view name,
      const std::function<absl::StatusOr<std::string>(int64_t version)>& make_bytes) {
    MAAS_RETURN_IF_ERROR(ValidateModelName(name));
    MAAS_ASSIGN_OR_RETURN(int64_t version, cache_.Put(name, make_bytes));
    return cache_.Get(name, version);
  }

  absl::StatusOr<common::v1::ListModelsResponse> List(
      const common::v1::ListModelsRequest& request) {
    MAAS_ASSIGN_OR_RETURN(std::vector<std::string> names, store_->ListNames());
    common::v1::ListModelsResponse response;
    for (const std::string& name : names) {
      if (!absl::StartsWith(name, request.name_prefix())) continue;
      absl::StatusOr<std::vector<int64_t>> versions = store_->ListVersions(name);
      if (absl::IsNotFound(versions.status())) continue;  // deleted meanwhile
      if (!versions.ok()) return versions.status();
      if (versions->empty()) continue;
      std::vector<int64_t> wanted =
          request.all_versions() ? *versions : std::vector<int64_t>{versions->back()};
      for (int64_t version : wanted) {
        absl::StatusOr<std::shared_ptr<const Loaded>> loaded = cache_.Get(name, version);
        // A version that cannot be loaded (deleted meanwhile, corrupt, or not this service's) is
        // left out so one bad file never hides every other model; GetModel on it answers the
        // reason.
        if (!loaded.ok()) continue;
        *response.add_models() = (*loaded)->info();
      }
    }
    return response;
  }

  absl::StatusOr<common::v1::DeleteModelResponse> Delete(
      const common::v1::DeleteModelRequest& request) {
    MAAS_RETURN_IF_ERROR(ValidateModelName(request.name()));
    if (request.version() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "version is ", request.version(), "; use a version >= 1, or 0 to delete every version"));
    }
    MAAS_ASSIGN_OR_RETURN(std::vector<int64_t> deleted,
                          cache_.Delete(request.name(), request.version()));
    common::v1::DeleteModelResponse response;
    for (int64_t v : deleted) response.add_deleted_versions(v);
    return response;
  }

 private:
  store::ModelStore* store_;
  store::ModelCache<Loaded> cache_;
};

}  // namespace maas::registry

#endif  // MAAS_COMMON_REGISTRY_MODEL_REPOSITORY_H_
