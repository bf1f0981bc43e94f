// FileModelStore: a ModelStore on a (possibly shared) directory.
//
//   <root>/<name>/<version>/model.pb
//
// - Reservation: a version is reserved by mkdir("<root>/<name>/<version>"), which is atomic, so
//   processes sharing the directory (replicas on one volume) never get the same version: on EEXIST
//   the next is tried.
// - Writes: "model.pb.tmp-XXXXXX" in the version directory, fsync, rename to "model.pb", fsync the
//   version and model directories. A crash leaves at most a version directory without model.pb;
//   older versions are never touched, and no reader ever sees a torn file.
// - Readers consider only canonical decimal version directories (no sign, no leading zero) that
//   contain model.pb; everything else (in-progress or crashed writes, temp files, foreign
//   entries) is ignored.
// - Delete unlinks model.pb (the atomic point where the version disappears) of each version it
//   deletes and records the highest in "<name>/highest-version" (the high-water mark, so numbers
//   are never reused), then removes the leftover regular files and the directories, never
//   following symlinks, and fsyncs the model directory once, all under the model directory's lock
//   (below), so a version committed concurrently is either deleted too or committed after the
//   Delete, never between its listing and its unlinks.
// - A writer holds an flock() on its temp file from right after reserving the version until the
//   rename, so CleanUp() (run at startup) can remove a crashed writer's leftovers without ever
//   touching a live writer's.
// - Numbers are reserved in increasing order: a reservation starts above every version directory
//   and the high-water mark, and a writer that gives up raises the mark before removing its
//   directory (or, when it cannot, leaves its temp file abandoned there), so a number is never
//   handed out again, not even to a writer that listed the directory before.
// - Every write renames its file into place under the model directory's lock (an flock() on
//   "<name>/write.lock", plus a per-model wait for this process's threads), after writing and
//   fsyncing it outside. A write that continues a version (PutOptions::continues) checks under the
//   same lock that no other version after the continued one is complete, so of two such writes the
//   second to commit always sees the first, whatever their numbers or timing (a writer may stall
//   for any time between reserving and committing). If fsyncing the directories fails after the
//   rename, the version is withdrawn before the lock is released, so nothing was built on it. A
//   writer that cannot get the lock within Options::lock_timeout gives up with UNAVAILABLE, leaving
//   its temp file emptied and unlocked (as a crashed writer would) so that the number stays used
//   (CleanUp records it).
// - Every filesystem error becomes a status naming the path and the error: RESOURCE_EXHAUSTED (no
//   space or quota), UNAVAILABLE (I/O or transient errors such as EIO, ESTALE), INTERNAL
//   (anything else).
// Thread-safe; the object's only state is which models its own threads hold locked (ModelDirLock).
#ifndef MAAS_COMMON_STORE_FILE_MODEL_STORE_H_
#define MAAS_COMMON_STORE_FILE_MODEL_STORE_H_

#include <cstdint>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/store/model_store.h"

namespace maas::store {

namespace internal {
// The model directories whose lock (file_model_store.cc, ModelDirLock) a thread of this process
// holds: the threads of one process wait here for each other, with a deadline, since flock() does
// not exclude them on NFS (fcntl emulation).
struct HeldModelDirs {
  absl::Mutex mu;
  absl::CondVar released;
  std::set<std::string> dirs ABSL_GUARDED_BY(mu);
};
}  // namespace internal

// FileModelStore::Options.
struct FileModelStoreOptions {
  // How long a write's commit, a Delete or a cleanup waits for a model directory's lock before
  // giving up with UNAVAILABLE (naming the lock file). Another writer holds it only while it
  // commits (milliseconds); one that hangs holding it (a replica stopped mid-commit, a hung
  // volume) then fails these calls, retryably, instead of stalling them past every deadline.
  absl::Duration lock_timeout = absl::Seconds(30);
};

class FileModelStore : public ModelStore {
 public:
  using Options = FileModelStoreOptions;

  // Opens the store at `root`, creating the directory (and its parents) if missing.
  // INVALID_ARGUMENT if root is empty; an errno-based status if it cannot be created or is not a
  // directory.
  static absl::StatusOr<std::unique_ptr<FileModelStore>> Open(std::string root,
                                                              Options options = {});

  // Open(root), then CleanUp(), writing one line to `log` when something was removed (or when the
  // cleanup failed: that is reported but does not stop the store from opening). What a service's
  // main calls at startup.
  static absl::StatusOr<std::unique_ptr<FileModelStore>> OpenAndCleanUp(std::string root,
                                                                        std::ostream& log,
                                                                        Options options = {});

  FileModelStore(const FileModelStore&) = delete;
  FileModelStore& operator=(const FileModelStore&) = delete;

  using ModelStore::Put;
  absl::StatusOr<int64_t> Put(std::string_view name, const MakeBytesFn& make_bytes,
                              const PutOptions& options) override;
  absl::StatusOr<std::string> Get(std::string_view name, int64_t version) override;
  // Reads only what is asked for (pread on the open file).
  absl::StatusOr<std::unique_ptr<VersionReader>> Open(std::string_view name,
                                                      int64_t version) override;
  absl::StatusOr<std::vector<int64_t>> ListVersions(std::string_view name) override;
  using ModelStore::ListNames;
  absl::StatusOr<std::vector<std::string>> ListNames(const NameRange& range) override;
  using ModelStore::Delete;
  absl::StatusOr<std::vector<int64_t>> Delete(
      std::string_view name, int64_t version,
      const std::function<absl::Status()>& still_wanted) override;

  // What CleanUp removed.
  struct CleanupReport {
    uint64_t temp_files_removed = 0;
    uint64_t temp_bytes_removed = 0;
    uint64_t version_dirs_removed = 0;
    std::vector<std::string> removed_paths;  // every removed file and directory
    std::vector<std::string> skipped;        // models that could not be cleaned, and why
  };
  // Removes what crashed writers left behind: temp files whose writer is gone (no process holds
  // their lock) and version directories without model.pb. Never touches a complete version, a live
  // writer's files or foreign entries; records the highest removed number so it is never reused.
  // Safe to run while other processes use the same root (a starting replica runs it).
  absl::StatusOr<CleanupReport> CleanUp();

  const std::string& root() const { return root_; }

  // File and directory names of the layout (exposed for tests and tools).
  static constexpr std::string_view kModelFile = "model.pb";
  static constexpr std::string_view kTempPrefix = "model.pb.tmp-";

 private:
  FileModelStore(std::string root, Options options)
      : root_(std::move(root)), lock_timeout_(options.lock_timeout) {}

  std::string ModelDir(std::string_view name) const;
  std::string VersionDir(std::string_view name, int64_t version) const;
  absl::StatusOr<std::vector<int64_t>> CompleteVersions(std::string_view name) const;
  // CleanUp of one model directory, adding to *report.
  absl::Status CleanUpModel(const std::string& name, CleanupReport* report);
  absl::StatusOr<std::unique_ptr<VersionReader>> OpenVersion(std::string_view name,
                                                             int64_t version) const;
  absl::StatusOr<std::string> ReadVersion(std::string_view name, int64_t version) const;
  // Unlinks the model file of `version` (the atomic point where it disappears); NOT_FOUND if it is
  // not complete. REQUIRES: the model directory's lock is held.
  absl::Status UnlinkVersion(std::string_view name, int64_t version) const;
  // PutOptions::continues, called under the model directory's lock: OK if `continued` (> 0) is
  // complete, no other version above it is complete, and no version directory numbered between it
  // and `version` has a live writer; else ABORTED.
  absl::Status CheckContinues(std::string_view name, int64_t continued, int64_t version) const;

  const std::string root_;
  const absl::Duration lock_timeout_;
  // The model directories whose lock a thread of this process holds (ModelDirLock).
  mutable internal::HeldModelDirs held_;
};

}  // namespace maas::store

#endif  // MAAS_COMMON_STORE_FILE_MODEL_STORE_H_
