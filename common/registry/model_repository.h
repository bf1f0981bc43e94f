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
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/exec/stop_token.h"
#include "common/registry/list_page.h"
#include "common/status/status_macros.h"
#include "common/store/model_cache.h"
#include "common/store/model_store.h"
#include "common/store/stored_bytes.h"
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

// The ModelInfo of a stored model message whose field 1 is its ModelInfo (StoredGenerativeModel,
// StoredDiscriminativeModel), read without parsing the rest (the parameters); size_bytes is set
// to the stored size. DATA_LOSS when the bytes are not such a message.
absl::StatusOr<common::v1::ModelInfo> ParseStoredInfo(const std::string& bytes);
// The same, read from `reader`: the ModelInfo and the framing of the other fields, a few reads of
// kStoredInfoReadBytes each for any size of parameters. An error of the reader is answered as
// it is (an I/O error is not the stored bytes' fault).
absl::StatusOr<common::v1::ModelInfo> ParseStoredInfo(store::VersionReader* reader);
// How many bytes ParseStoredInfo(reader) reads at a time.
inline constexpr int kStoredInfoReadBytes = 16 << 10;

// Fills the identity fields of a new version's ModelInfo.
void FillModelInfo(std::string_view name, int64_t version, common::v1::ModelType type,
                   std::string_view family,
                   const google::protobuf::Map<std::string, std::string>& labels,
                   std::string_view description, absl::Time created_at,
                   common::v1::ModelInfo* info);

template <class Loaded>
class ModelRepository {
 public:
  // Parses a version's bytes (see store::StoredBytes: it may release them once parsed).
  using Parser = std::function<absl::StatusOr<std::shared_ptr<const Loaded>>(store::StoredBytes)>;

  // `store` is not owned and must outlive the repository. poll_interval > 0 starts a background
  // poller so replicas sharing a volume see each other's versions; 0 = no polling (tests).
  // cache_bytes > 0: loaded versions are evicted least-recently-used beyond that many bytes held
  // (Loaded::held_bytes() when Loaded has it, else the stored size; the servers'
  // --model_cache_bytes); 0 = no budget.
  ModelRepository(store::ModelStore* store, Parser parse, absl::Duration poll_interval,
                  int64_t cache_bytes = 0)
      : store_(store), parse_(parse), cache_(store, std::move(parse)) {
    cache_.SetByteBudget(cache_bytes);
    if (poll_interval > absl::ZeroDuration()) cache_.StartPolling(poll_interval);
  }
  // Waits for a report started by ReportUnreadableVersionsInBackground (it stops at the next
  // version).
  ~ModelRepository() {
    stop_report_.store(true);
    if (report_.joinable()) report_.join();
  }
  ModelRepository(const ModelRepository&) = delete;
  ModelRepository& operator=(const ModelRepository&) = delete;

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

  // Whether Get(ref) would answer from memory now, without reading the store or loading a model
  // (see ModelCache::Cached). Changes nothing.
  bool Cached(const common::v1::ModelRef& ref) const {
    return !ref.name().empty() && cache_.Cached(ref.name(), ref.version());
  }

  // Writes the next version of `name` with the bytes make_bytes(version) produces, then returns it
  // loaded. `stop` is checked once the bytes are ready, right before they are written, and again
  // under the model's lock right before the version becomes visible: a call whose deadline passed
  // or that was cancelled before that point commits nothing and gets the StopToken's status (a
  // client retrying on DEADLINE_EXCEEDED must not find a duplicate version; one whose deadline
  // passes in the instant after the commit is the one case left). `options` as
  // store::ModelStore::Put (a write that continues a version). A version deleted right after it
  // was written is still answered (from the bytes written): the write succeeded.
  absl::StatusOr<std::shared_ptr<const Loaded>> Put(
      std::string_view name,
      const std::function<absl::StatusOr<std::string>(int64_t version)>& make_bytes,
      const exec::StopToken& stop = exec::StopToken(),
      const store::PutOptions& options = store::PutOptions()) {
    MAAS_RETURN_IF_ERROR(ValidateModelName(name));
    MAAS_RETURN_IF_ERROR(stop.Check());
    // Asked again by the store right before the version becomes visible: the wait for the model's
    // lock may outlast the caller's deadline.
    store::PutOptions put_options = options;
    put_options.still_wanted = [&stop, also = options.still_wanted]() -> absl::Status {
      MAAS_RETURN_IF_ERROR(stop.Check());
      return also ? also() : absl::OkStatus();
    };
    // What the bytes load back as (the check below): the version's loaded form, handed to the
    // cache, so that a model is parsed once and neither its bytes nor a second parse are held
    // beside it (a 0.5 GB model used to take ~7x its size to store).
    std::shared_ptr<const Loaded> written;
    int64_t written_size = 0;
    // The version's ModelInfo as ListModels answers it, remembered once the version is visible:
    // the first listing after a Train used to read the whole new file back for it (a 537 MB
    // model: +0.5 GB and 0.5 s of CPU per listing, on gRPC's threads).
    common::v1::ModelInfo written_info;
    MAAS_ASSIGN_OR_RETURN(
        int64_t version, cache_.Put(
                             name,
                             [&](int64_t version) -> absl::StatusOr<std::string> {
                               MAAS_ASSIGN_OR_RETURN(std::string bytes, make_bytes(version));
                               MAAS_ASSIGN_OR_RETURN(written, CheckLoadsBack(bytes, name, version));
                               MAAS_ASSIGN_OR_RETURN(written_info, ParseStoredInfo(bytes));
                               MAAS_RETURN_IF_ERROR(stop.Check());
                               written_size = static_cast<int64_t>(bytes.size());
                               return bytes;
                             },
                             put_options));
    {
      absl::MutexLock lock(&infos_mu_);
      infos_[{std::string(name), version}] = std::move(written_info);
    }
    cache_.Adopt(name, version, written, written_size);
    // Not pinned: once a newer version supersedes it, it leaves memory unless a call asked for it
    // by number (retraining a name kept every version loaded until the budget evicted them).
    absl::StatusOr<std::shared_ptr<const Loaded>> loaded = cache_.Get(name, version, /*pin=*/false);
    cache_.Unadopt(name, version);  // when the Get did not take it
    // An audit saw a Train answer NOT_FOUND for the version it had just stored: a DeleteModel
    // came in between. The write succeeded, so its caller learns the version.
    if (absl::IsNotFound(loaded.status())) return written;
    return loaded;
  }

  // One line per stored version whose ModelInfo cannot be read (an empty, truncated or foreign
  // file): ListModels leaves those out and calls for them answer DATA_LOSS, so a server reports
  // them at start rather than leaving an operator to find them. Reads each version's metadata
  // (as ListModels with all_versions does); changes nothing.
  std::vector<std::string> UnreadableVersions() {
    std::vector<std::string> lines;
    if (stop_report_.load()) return lines;
    absl::StatusOr<std::vector<std::string>> names = store_->ListNames();
    if (!names.ok())
      return {absl::StrCat("cannot list the model store: ", names.status().ToString())};
    for (const std::string& name : *names) {
      absl::StatusOr<std::vector<int64_t>> versions = store_->ListVersions(name);
      if (!versions.ok()) continue;  // deleted meanwhile
      for (int64_t version : *versions) {
        if (stop_report_.load()) return lines;
        absl::StatusOr<common::v1::ModelInfo> info = Info(name, version);
        if (info.ok() || absl::IsNotFound(info.status())) continue;
        lines.push_back(absl::StrCat("model \"", name, "\" version ", version, " cannot be read (",
                                     info.status().ToString(),
                                     "): ListModels leaves it out and calls for it answer ",
                                     absl::StatusCodeToString(info.status().code()),
                                     "; restore the file or delete the version"));
      }
    }
    return lines;
  }

  // UnreadableVersions on a thread of its own, each line written to `out` after `prefix`, all in
  // one write: reading every stored version (in full) must not delay a server's start. Once.
  void ReportUnreadableVersionsInBackground(std::string prefix, std::ostream* out) {
    report_ = std::thread([this, prefix = std::move(prefix), out] {
      std::string text;
      for (const std::string& line : UnreadableVersions()) {
        absl::StrAppend(&text, prefix, line, "\n");
      }
      if (!text.empty()) *out << text << std::flush;
    });
  }
  // Waits until that report is written (at once when none was started).
  void WaitForReport() {
    if (report_.joinable()) report_.join();
  }

  // The stored models `request` covers; versions that cannot be read, or whose stored type is not
  // `type` (the service's, when given), are named in unreadable_versions with `type`. With a
  // page_size, one page of them (see list_page.h): at most page_size entries, and fewer when more
  // would make the answer larger than `max_bytes` (0: no limit) or the request's max_page_bytes,
  // with next_page_token set while entries may follow. RESOURCE_EXHAUSTED naming the entry when
  // one entry alone is larger than that.
  absl::StatusOr<common::v1::ListModelsResponse> List(
      const common::v1::ListModelsRequest& request,
      common::v1::ModelType type = common::v1::MODEL_TYPE_UNSPECIFIED, int64_t max_bytes = 0) {
    MAAS_ASSIGN_OR_RETURN(const ListPaging paging, ParseListPaging(request));
    common::v1::ListModelsResponse response;
    ListPageFill page(paging, max_bytes, "--max_message_bytes");
    // Adds `entry` (a ModelInfo or an UnreadableVersion) at `key` to `list`, or ends the page
    // before it.
    const auto add = [&page](auto entry, const ListKey& key, auto* list) -> absl::Status {
      MAAS_ASSIGN_OR_RETURN(const bool taken,
                            page.Take(key, entry.version(), entry.ByteSizeLong()));
      if (taken) *list->Add() = std::move(entry);
      return absl::OkStatus();
    };
    // The names with the prefix from the previous page's last on, in batches: a page needs at
    // most page_size + 1 models (the last says more follow), more only when some were deleted
    // meanwhile, and a store checks only the names it returns (a page of a large store used to
    // read every model's directory).
    store::ModelStore::NameRange range;
    range.prefix = request.name_prefix();
    range.from = paging.after.has_value() && paging.after->name > request.name_prefix()
                     ? paging.after->name
                     : request.name_prefix();
    range.limit = paging.page_size > 0 ? static_cast<std::size_t>(paging.page_size) + 1 : 0;
    std::optional<std::string> seen;  // the last name handled: later batches start after it
    for (bool exhausted = false; !page.more() && !exhausted;) {
      if (seen.has_value()) range.from = *seen;
      MAAS_ASSIGN_OR_RETURN(std::vector<std::string> names, store_->ListNames(range));
      exhausted = range.limit == 0 || names.size() < range.limit;
      for (const std::string& name : names) {
        if (page.more()) break;
        if (seen.has_value() && name <= *seen) continue;
        seen = name;
        absl::StatusOr<std::vector<int64_t>> versions = store_->ListVersions(name);
        if (absl::IsNotFound(versions.status())) continue;  // deleted meanwhile
        if (!versions.ok()) {  // the model's versions cannot be listed (version 0: all of them)
          const ListKey key = paging.Key(name, 0, type);
          if (!paging.Wants(key)) continue;
          MAAS_RETURN_IF_ERROR(add(Unreadable(name, 0, type, versions.status()), key,
                                   response.mutable_unreadable_versions()));
          continue;
        }
        if (versions->empty()) continue;
        std::vector<int64_t> wanted =
            request.all_versions() ? *versions : std::vector<int64_t>{versions->back()};
        for (int64_t version : wanted) {
          const ListKey key = paging.Key(name, version, type);
          if (!paging.Wants(key)) continue;
          // A full page ends at the first entry after it, before reading that entry's metadata.
          if (page.full()) {
            page.MarkMore();
            break;
          }
          // Metadata only: listing never loads (parses and builds) a model.
          absl::StatusOr<common::v1::ModelInfo> info = Info(name, version);
          // A ModelInfo of the other service's type (a shared or copied store) would sort, and be
          // called, as this service's: it is named as unreadable, as calls on it fail.
          if (info.ok() && type != common::v1::MODEL_TYPE_UNSPECIFIED &&
              info->type() != common::v1::MODEL_TYPE_UNSPECIFIED && info->type() != type) {
            info = absl::DataLossError(absl::StrCat(
                "stored model: its ModelInfo says type ", common::v1::ModelType_Name(info->type()),
                " in the store of a ", common::v1::ModelType_Name(type),
                " service (is the model directory shared between the services?)"));
          }
          // A version deleted meanwhile is left out; one that cannot be read (corrupt, truncated,
          // foreign) is named in unreadable_versions with what calls on it answer, so one bad file
          // neither fails the listing nor makes its model vanish from it.
          if (info.ok()) {
            MAAS_RETURN_IF_ERROR(add(*std::move(info), key, response.mutable_models()));
          } else if (!absl::IsNotFound(info.status())) {
            MAAS_RETURN_IF_ERROR(add(Unreadable(name, version, type, info.status()), key,
                                     response.mutable_unreadable_versions()));
          }
          if (page.more()) break;
        }
        ForgetInfosExcept(name, *versions);
      }
    }
    response.set_next_page_token(page.NextPageToken(request));
    return response;
  }

  // `stop` is asked before anything is deleted, also while waiting for the model's lock: a caller
  // whose deadline passed or that cancelled deletes nothing (it was told so).
  absl::StatusOr<common::v1::DeleteModelResponse> Delete(
      const common::v1::DeleteModelRequest& request,
      const exec::StopToken& stop = exec::StopToken()) {
    MAAS_RETURN_IF_ERROR(ValidateModelName(request.name()));
    if (request.version() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "version is ", request.version(), "; use a version >= 1, or 0 to delete every version"));
    }
    absl::StatusOr<std::vector<int64_t>> deleted_or =
        cache_.Delete(request.name(), request.version(), [&stop] { return stop.Check(); });
    ForgetInfosExcept(request.name(), {});  // even on error: part of a delete-all may have happened
    MAAS_ASSIGN_OR_RETURN(std::vector<int64_t> deleted, std::move(deleted_or));
    common::v1::DeleteModelResponse response;
    for (int64_t v : deleted) response.add_deleted_versions(v);
    return response;
  }

  // The stored bytes of `version` (>= 1) of `name`, read from the store now. Loaded models keep
  // only their parsed form, so exports (GetModel) read the stored message on demand. NOT_FOUND when
  // the version was deleted meanwhile.
  absl::StatusOr<std::string> ReadStored(std::string_view name, int64_t version) {
    MAAS_RETURN_IF_ERROR(ValidateModelName(name));
    return store_->Get(name, version);
  }

  // Told about every model load (name, version, time taken, bytes held), e.g. for metrics.
  void SetLoadObserver(typename store::ModelCache<Loaded>::LoadObserver observer) {
    cache_.SetLoadObserver(std::move(observer));
  }

  // The model cache (for its memory figures and tests).
  const store::ModelCache<Loaded>& cache() const { return cache_; }

 private:
  // The ModelInfo of a version: remembered from its Put, or read from the store (field 1 and the
  // framing of the others, not the parameters) and remembered.
  absl::StatusOr<common::v1::ModelInfo> Info(const std::string& name, int64_t version) {
    {
      absl::MutexLock lock(&infos_mu_);
      auto it = infos_.find({name, version});
      if (it != infos_.end()) return it->second;
    }
    MAAS_ASSIGN_OR_RETURN(const std::unique_ptr<store::VersionReader> reader,
                          store_->Open(name, version));
    MAAS_ASSIGN_OR_RETURN(common::v1::ModelInfo info, ParseStoredInfo(reader.get()));
    if (info.name() != name || info.version() != version) {
      return absl::DataLossError("stored ModelInfo does not match its place in the store");
    }
    absl::MutexLock lock(&infos_mu_);
    infos_[{name, version}] = info;
    return info;
  }
  static common::v1::UnreadableVersion Unreadable(const std::string& name, int64_t version,
                                                  common::v1::ModelType type,
                                                  const absl::Status& status) {
    common::v1::UnreadableVersion bad;
    bad.set_name(name);
    bad.set_version(version);
    bad.set_type(type);
    bad.set_code(absl::StatusCodeToString(status.code()));
    bad.set_message(std::string(status.message()));
    return bad;
  }
  // A version becomes visible only complete and loadable: the bytes about to be written must load
  // back as the model `name` at `version` (an empty string from a failed serialization once
  // became a version every call answered DATA_LOSS for).
  // The bytes' loaded form, or INTERNAL when they do not load back as `name` `version`.
  absl::StatusOr<std::shared_ptr<const Loaded>> CheckLoadsBack(const std::string& bytes,
                                                               std::string_view name,
                                                               int64_t version) {
    // Borrowed: the caller writes these very bytes once they are checked.
    absl::StatusOr<std::shared_ptr<const Loaded>> loaded =
        parse_(store::StoredBytes::Borrow(bytes));
    absl::Status status = loaded.status();
    if (status.ok() && *loaded == nullptr) status = absl::InternalError("the loader returned null");
    if (status.ok() &&
        ((*loaded)->info().name() != name || (*loaded)->info().version() != version)) {
      status = absl::InternalError(absl::StrCat("it names model \"", (*loaded)->info().name(),
                                                "\" version ", (*loaded)->info().version()));
    }
    if (status.ok()) return loaded;
    return absl::InternalError(absl::StrCat(
        "the new version would not load back, so it was not stored: ", status.message()));
  }
  // Drops remembered infos of `name` whose version is not in `versions` (ascending).
  void ForgetInfosExcept(const std::string& name, const std::vector<int64_t>& versions) {
    absl::MutexLock lock(&infos_mu_);
    for (auto it = infos_.lower_bound({name, 0}); it != infos_.end() && it->first.first == name;) {
      if (std::binary_search(versions.begin(), versions.end(), it->first.second)) {
        ++it;
      } else {
        it = infos_.erase(it);
      }
    }
  }

  store::ModelStore* store_;
  Parser parse_;  // the cache's loader, for a version deleted right after Put wrote it
  store::ModelCache<Loaded> cache_;
  absl::Mutex infos_mu_;
  std::map<std::pair<std::string, int64_t>, common::v1::ModelInfo> infos_
      ABSL_GUARDED_BY(infos_mu_);
  std::atomic<bool> stop_report_{false};
  std::thread report_;  // ReportUnreadableVersionsInBackground's; joined by the destructor
};

}  // namespace maas::registry

#endif  // MAAS_COMMON_REGISTRY_MODEL_REPOSITORY_H_
