// The model store: immutable, numbered versions of serialized model specs, by model name.
//
// Layout (FileModelStore): <root>/<name>/<version>/model.pb, version = 1, 2, 3, ... per name.
// A version is visible once its model.pb exists; it never changes afterwards (a new write is a new
// version).
//
//   MAAS_ASSIGN_OR_RETURN(int64_t version,
//                         store.Put("iris", [&](int64_t v) -> absl::StatusOr<std::string> {
//                           spec.mutable_info()->set_version(v);
//                           return spec.SerializeAsString();
//                         }));
//   MAAS_ASSIGN_OR_RETURN(std::string bytes, store.Get("iris", 0));  // latest
#ifndef MAAS_COMMON_STORE_MODEL_STORE_H_
#define MAAS_COMMON_STORE_MODEL_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace maas::store {

// Longest model name, in characters.
inline constexpr std::size_t kMaxModelNameLength = 63;

// OK iff `name` matches [a-z0-9][a-z0-9._-]{0,62} and contains no "..". Otherwise INVALID_ARGUMENT
// with a message stating the rule and the offending name (C-escaped, truncated if long).
absl::Status ValidateModelName(std::string_view name);

// Produces the bytes to store for a freshly reserved `version` (so the message can contain its own
// version).
using MakeBytesFn = std::function<absl::StatusOr<std::string>(int64_t version)>;

// How a version is written (ModelStore::Put).
struct PutOptions {
  // The version this write continues (0: none, a first version), if the write is only valid as
  // the next version after it (a partial Train): see Put.
  std::optional<int64_t> continues;
  // Asked right before the version becomes visible (under the model's lock, after make_bytes and
  // any wait for that lock; a FileModelStore also asks between its tries for the lock): a non-OK
  // answer (the caller's deadline passed, it was cancelled) abandons the write with that status,
  // nothing stored, so a caller that gave up never finds a version it was not told about. It must
  // be cheap and must not call into the store (it may be asked with the store's locks held). Null:
  // always go on.
  std::function<absl::Status()> still_wanted;
};

// Random access to the bytes of one stored version, so that a caller that needs a few of them (a
// listing reads a version's ModelInfo, at its start, not its parameters) does not read it whole.
// The bytes never change while the reader is open: versions are immutable, and a FileModelStore
// reader keeps reading a version deleted after it was opened.
class VersionReader {
 public:
  virtual ~VersionReader() = default;
  // The version's size in bytes.
  virtual int64_t size() const = 0;
  // Copies up to `n` bytes from `offset` (>= 0) into `out` and returns how many: fewer than `n`
  // only at the end, 0 at or past it. Errors: the read failed (naming the file, for a
  // FileModelStore).
  virtual absl::StatusOr<std::size_t> ReadAt(int64_t offset, char* out, std::size_t n) = 0;
};

// Interface of a model store. Implementations are thread-safe. Every method validates `name` first
// (INVALID_ARGUMENT) and rejects a negative `version` (INVALID_ARGUMENT).
// Version numbers are never reused for a name: deleting versions does not lower the next version.
class ModelStore {
 public:
  virtual ~ModelStore() = default;

  // Reserves the next version of `name`, calls make_bytes(version) (without holding any lock) to
  // produce the content, stores it atomically and returns the version. If make_bytes fails, no
  // version is left behind (its number stays used) and its status is returned. Concurrent Puts
  // (threads, or processes sharing a FileModelStore root) get distinct versions, numbered in the
  // order they were reserved.
  // With options.continues = E (a write that continues version E, 0: none), the version is stored
  // only if, right before it becomes visible, E is still complete (when E > 0), no other version
  // after E is complete and none numbered between E and this one is being written; otherwise no
  // version is left behind and the answer is ABORTED naming the version in the way. Two writes
  // that continue the same version, in one process or in replicas sharing a root, never both
  // succeed. options.still_wanted: see PutOptions.
  virtual absl::StatusOr<int64_t> Put(std::string_view name, const MakeBytesFn& make_bytes,
                                      const PutOptions& options) = 0;
  absl::StatusOr<int64_t> Put(std::string_view name, const MakeBytesFn& make_bytes) {
    return Put(name, make_bytes, PutOptions());
  }

  // The bytes of `version` of `name`; version 0 = the latest complete version.
  // NOT_FOUND (naming the model and version) if there is no such model/version.
  virtual absl::StatusOr<std::string> Get(std::string_view name, int64_t version) = 0;

  // A reader of `version` (>= 1; 0 is INVALID_ARGUMENT) of `name`; NOT_FOUND as Get. The default
  // reads the version whole (Get); a store that can read part of a version overrides it.
  virtual absl::StatusOr<std::unique_ptr<VersionReader>> Open(std::string_view name,
                                                              int64_t version);

  // The complete versions of `name`, ascending. NOT_FOUND if the model has none.
  virtual absl::StatusOr<std::vector<int64_t>> ListVersions(std::string_view name) = 0;

  // Which names ListNames returns (a listing's page asks for the few it shows: a store checks
  // only those for a complete version).
  struct NameRange {
    std::string prefix;     // only names that start with it
    std::string from;       // only names >= it
    std::size_t limit = 0;  // at most this many, the first in order (0: all)
  };
  // Names of the models in `range` with at least one complete version, sorted.
  virtual absl::StatusOr<std::vector<std::string>> ListNames(const NameRange& range) = 0;
  absl::StatusOr<std::vector<std::string>> ListNames() { return ListNames(NameRange()); }

  // Deletes `version` of `name` (0 = every version) and returns the deleted versions, ascending.
  // NOT_FOUND if there was nothing to delete. Readers that already hold the bytes are unaffected.
  // `still_wanted` (null: always go on) is asked as PutOptions::still_wanted is: before anything
  // is deleted (a FileModelStore also between its tries for the model's lock), so a caller that
  // gave up deletes nothing.
  virtual absl::StatusOr<std::vector<int64_t>> Delete(
      std::string_view name, int64_t version,
      const std::function<absl::Status()>& still_wanted) = 0;
  absl::StatusOr<std::vector<int64_t>> Delete(std::string_view name, int64_t version) {
    return Delete(name, version, nullptr);
  }
};

namespace internal {
// Debian's Abseil does not alias absl::string_view to std::string_view: convert explicitly.
inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }
// INVALID_ARGUMENT unless version >= 0 (0 = latest / all).
absl::Status ValidateVersionArgument(std::string_view name, int64_t version);
// INVALID_ARGUMENT unless version >= 1 (ModelStore::Open).
absl::Status ValidateOpenVersion(std::string_view name, int64_t version);
// The NOT_FOUND status for a model (version 0) or one of its versions.
absl::Status ModelNotFound(std::string_view name, int64_t version);
// The ABORTED statuses of a Put with PutOptions::continues (`version`: the one it reserved).
absl::Status ContinuedVersionGone(std::string_view name, int64_t continued, int64_t version);
absl::Status VersionInTheWay(std::string_view name, int64_t continued, int64_t other,
                             int64_t version);
}  // namespace internal

}  // namespace maas::store

#endif  // MAAS_COMMON_STORE_MODEL_STORE_H_
