#include "common/store/memory_model_store.h"

#include <utility>

#include "absl/strings/match.h"
#include "common/status/status_macros.h"

namespace maas::store {

absl::StatusOr<int64_t> MemoryModelStore::Put(std::string_view name, const MakeBytesFn& make_bytes,
                                              const PutOptions& options) {
  MAAS_RETURN_IF_ERROR(ValidateModelName(name));
  int64_t version;
  {
    absl::MutexLock lock(&mu_);
    Model& model = models_[std::string(name)];
    version = model.next_version++;
    model.writing.insert(version);
  }
  absl::StatusOr<std::string> bytes = make_bytes(version);
  absl::MutexLock lock(&mu_);
  Model& model = models_[std::string(name)];
  model.writing.erase(version);
  if (!bytes.ok()) return bytes.status();
  if (options.still_wanted) MAAS_RETURN_IF_ERROR(options.still_wanted());
  if (options.continues.has_value()) {
    const int64_t continued = *options.continues;
    if (continued > 0 && model.versions.count(continued) == 0) {
      return internal::ContinuedVersionGone(name, continued, version);
    }
    auto in_between = [&](int64_t v) { return v > continued && v < version; };
    for (int64_t v : model.writing) {
      if (in_between(v)) return internal::VersionInTheWay(name, continued, v, version);
    }
    for (const auto& [v, unused] : model.versions) {
      if (v > continued) return internal::VersionInTheWay(name, continued, v, version);
    }
  }
  model.versions.emplace(version, *std::move(bytes));
  return version;
}

absl::StatusOr<std::string> MemoryModelStore::Get(std::string_view name, int64_t version) {
  MAAS_RETURN_IF_ERROR(ValidateModelName(name));
  MAAS_RETURN_IF_ERROR(internal::ValidateVersionArgument(name, version));
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end() || it->second.versions.empty()) {
    return internal::ModelNotFound(name, version);
  }
  const auto& versions = it->second.versions;
  if (version == 0) return versions.rbegin()->second;
  auto v = versions.find(version);
  if (v == versions.end()) return internal::ModelNotFound(name, version);
  return v->second;
}

absl::StatusOr<std::vector<int64_t>> MemoryModelStore::ListVersions(std::string_view name) {
  MAAS_RETURN_IF_ERROR(ValidateModelName(name));
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end() || it->second.versions.empty()) return internal::ModelNotFound(name, 0);
  std::vector<int64_t> out;
  for (const auto& [version, bytes] : it->second.versions) out.push_back(version);
  return out;
}

absl::StatusOr<std::vector<std::string>> MemoryModelStore::ListNames(const NameRange& range) {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (auto it = models_.lower_bound(range.from);
       it != models_.end() && (range.limit == 0 || out.size() < range.limit); ++it) {
    const auto& [name, model] = *it;
    if (!absl::StartsWith(name, range.prefix)) {
      if (name > range.prefix) break;  // past every name with the prefix
      continue;
    }
    if (!model.versions.empty()) out.push_back(name);
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> MemoryModelStore::Delete(
    std::string_view name, int64_t version, const std::function<absl::Status()>& still_wanted) {
  MAAS_RETURN_IF_ERROR(ValidateModelName(name));
  MAAS_RETURN_IF_ERROR(internal::ValidateVersionArgument(name, version));
  if (still_wanted) MAAS_RETURN_IF_ERROR(still_wanted());
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end() || it->second.versions.empty()) {
    return internal::ModelNotFound(name, version);
  }
  auto& versions = it->second.versions;
  std::vector<int64_t> deleted;
  if (version == 0) {
    for (const auto& [v, bytes] : versions) deleted.push_back(v);
    versions.clear();
  } else {
    if (versions.erase(version) == 0) return internal::ModelNotFound(name, version);
    deleted.push_back(version);
  }
  return deleted;
}

}  // namespace maas::store
