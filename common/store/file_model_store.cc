#include "common/store/file_model_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <filesystem>
#include <functional>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status/status_macros.h"

namespace maas::store {
namespace {

// How often Put retries when a concurrent Delete removes the model directory under it.
constexpr int kMaxPutAttempts = 100;
// How often Get(name, 0) retries when the latest version is deleted between listing and reading.
constexpr int kMaxLatestReadAttempts = 5;
// Version directories have at most this many digits, so max + 1 always fits in int64_t.
constexpr std::size_t kMaxVersionDigits = 18;

absl::Status ErrnoStatus(int err, std::string_view op, std::string_view path) {
  std::string message = absl::StrCat("model store: ", internal::Sv(op), " \"", internal::Sv(path),
                                     "\" failed: ", std::generic_category().message(err));
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    case EIO:
    case EAGAIN:
    case EINTR:
    case ESTALE:
    case ETIMEDOUT:
    case EBUSY:
    case ENOLCK:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

// Parses a canonical version directory name: [1-9][0-9]{0,17}. -1 if not one.
int64_t ParseVersion(std::string_view entry) {
  if (entry.empty() || entry.size() > kMaxVersionDigits || entry[0] < '1' || entry[0] > '9') {
    return -1;
  }
  int64_t value = 0;
  for (char c : entry) {
    if (c < '0' || c > '9') return -1;
    value = value * 10 + (c - '0');
  }
  return value;
}

std::string Join(std::string_view dir, std::string_view entry) {
  return absl::StrCat(internal::Sv(dir), "/", internal::Sv(entry));
}

// The entries of `dir` (without "." and ".."). When `missing` is given, a missing directory
// (ENOENT, and also ENOTDIR if `not_dir_is_missing`) sets it and yields no entries instead of an
// error.
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir, bool* missing,
                                                 bool not_dir_is_missing = false) {
  if (missing != nullptr) *missing = false;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    const int err = errno;
    if (missing != nullptr && (err == ENOENT || (not_dir_is_missing && err == ENOTDIR))) {
      *missing = true;
      return std::vector<std::string>{};
    }
    return ErrnoStatus(err, "opendir", dir);
  }
  std::vector<std::string> entries;
  for (;;) {
    errno = 0;
    struct dirent* e = readdir(d);
    if (e == nullptr) {
      const int err = errno;
      closedir(d);
      if (err != 0) return ErrnoStatus(err, "readdir", dir);
      break;
    }
    std::string_view entry(e->d_name);
    if (entry == "." || entry == "..") continue;
    entries.emplace_back(entry);
  }
  return entries;
}

// fsync a directory so the entries created/renamed in it are durable.
absl::Status SyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open directory", dir);
  int rc;
  do {
    rc = fsync(fd);
  } while (rc != 0 && errno == EINTR);
  const int err = errno;
  close(fd);
  // Some filesystems do not support fsync on directories; that is not an error for us.
  if (rc != 0 && err != EINVAL && err != EROFS) return ErrnoStatus(err, "fsync directory", dir);
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, const std::string& bytes, const std::string& path) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write", path);
    }
    done += static_cast<std::size_t>(n);
  }
  return absl::OkStatus();
}

// A temp file being written: created and flock()ed at once, so a cleanup (another replica's start)
// can tell a live writer (lock held) from a crashed one (lock free) and never removes the former.
// Takes an exclusive flock() on `fd` (blocking; retried on EINTR). `what` and `path` name it in
// the error.
absl::Status LockExclusive(int fd, std::string_view what, const std::string& path) {
  int rc;
  do {
    rc = flock(fd, LOCK_EX);
  } while (rc != 0 && errno == EINTR);
  return rc == 0 ? absl::OkStatus() : ErrnoStatus(errno, what, path);
}

// True if `version_dir` holds a complete version: "model.pb" is a regular file (what readers list).
// A missing file or directory is not complete; any other error is returned.
absl::StatusOr<bool> HoldsCompleteVersion(const std::string& version_dir) {
  const std::string file = Join(version_dir, FileModelStore::kModelFile);
  struct stat st;
  if (stat(file.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return false;  // in progress, crashed, deleted, not a dir
    return ErrnoStatus(err, "stat", file);
  }
  return S_ISREG(st.st_mode);
}

class LockedTempFile {
 public:
  // Creates a file named "<dir>/<prefix>..." holding an exclusive lock on it from the moment it has
  // a name: an unnamed O_TMPFILE is locked, then linked in. (Created with a name first, the file
  // would be visible unlocked for an instant, and a cleanup or a continuing writer looking then
  // would take a live writer for a crashed one.) Filesystems without O_TMPFILE fall back to
  // mkostemp() + flock(), keeping that instant.
  static absl::StatusOr<LockedTempFile> Create(const std::string& dir, std::string_view prefix) {
    const int fd = open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) return CreateNamedThenLock(dir, prefix);
    if (absl::Status locked = LockExclusive(fd, "lock temporary file in", dir); !locked.ok()) {
      close(fd);
      return locked;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
      const int err = errno;
      close(fd);
      return ErrnoStatus(err, "fstat temporary file in", dir);
    }
    const std::string proc_path = absl::StrCat("/proc/self/fd/", fd);
    for (int attempt = 0;; ++attempt) {
      // The inode number is unique among the live files of the filesystem; the attempt counter
      // steps over a name left by a crashed writer whose inode was reused.
      std::string path = Join(dir, absl::StrCat(internal::Sv(prefix), st.st_ino, "-", attempt));
      if (linkat(AT_FDCWD, proc_path.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0) {
        return LockedTempFile(fd, std::move(path));
      }
      const int err = errno;
      if (err == EEXIST && attempt < 100) continue;
      close(fd);
      if (err == ENOENT && access("/proc/self/fd", F_OK) != 0) {
        return CreateNamedThenLock(dir, prefix);  // no /proc: cannot name the file that way
      }
      return ErrnoStatus(err, "link temporary file", path);
    }
  }
  LockedTempFile(LockedTempFile&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}
  LockedTempFile& operator=(LockedTempFile&&) = delete;
  // Removes the file unless Commit() renamed it.
  ~LockedTempFile() {
    if (fd_ >= 0) {
      unlink(path_.c_str());
      close(fd_);
    }
  }

  // Leaves the file in place, emptied and unlocked: what a crashed writer leaves, which keeps its
  // version directory's number used without any lock (CheckContinues and CleanUp take it for
  // abandoned; the next start's CleanUp records the number and removes both).
  void Abandon() {
    if (fd_ < 0) return;
    (void)ftruncate(fd_, 0);
    close(fd_);
    fd_ = -1;
  }

  // Writes `bytes` and fsyncs the file.
  absl::Status Write(const std::string& bytes) {
    MAAS_RETURN_IF_ERROR(WriteAll(fd_, bytes, path_));
    int rc;
    do {
      rc = fsync(fd_);
    } while (rc != 0 && errno == EINTR);
    return rc == 0 ? absl::OkStatus() : ErrnoStatus(errno, "fsync", path_);
  }

  // Renames the written file to `final_path` (atomic) and releases its lock. On failure the
  // destructor removes the temp file.
  absl::Status RenameTo(const std::string& final_path) {
    if (rename(path_.c_str(), final_path.c_str()) != 0) {
      return ErrnoStatus(errno, "rename to " + final_path + " from", path_);
    }
    close(fd_);  // releases the lock; the file now has its final name
    fd_ = -1;
    return absl::OkStatus();
  }

  // Write, RenameTo, then fsync `dir`.
  absl::Status Commit(const std::string& bytes, const std::string& final_path,
                      const std::string& dir) {
    MAAS_RETURN_IF_ERROR(Write(bytes));
    MAAS_RETURN_IF_ERROR(RenameTo(final_path));
    return SyncDir(dir);
  }

 private:
  LockedTempFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

  static absl::StatusOr<LockedTempFile> CreateNamedThenLock(const std::string& dir,
                                                            std::string_view prefix) {
    std::string path = Join(dir, absl::StrCat(internal::Sv(prefix), "XXXXXX"));
    const int fd = mkostemp(path.data(), O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "create temporary file", path);
    if (absl::Status locked = LockExclusive(fd, "lock temporary file", path); !locked.ok()) {
      close(fd);
      unlink(path.c_str());
      return locked;
    }
    return LockedTempFile(fd, std::move(path));
  }

  int fd_;
  std::string path_;
};

// True if nobody holds the lock of the temp file at `path` (its writer died), so it may be removed.
// A file that cannot be opened (already gone) counts as not abandoned.
bool TempFileAbandoned(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  const bool free = flock(fd, LOCK_EX | LOCK_NB) == 0;
  close(fd);
  return free;
}

// The high-water mark of a model: the highest version number ever reserved, kept in
// "<model dir>/highest-version" when the directory of that version no longer exists (after a
// Delete, or after a cleanup removed a crashed write), so numbers are never reused.
constexpr std::string_view kHighWaterFile = "highest-version";
constexpr std::string_view kHighWaterTempPrefix = "highest-version.tmp-";

int64_t ReadHighWater(const std::string& model_dir) {
  const std::string path = Join(model_dir, kHighWaterFile);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return 0;
  char buffer[32];
  const ssize_t n = read(fd, buffer, sizeof(buffer) - 1);
  close(fd);
  if (n <= 0) return 0;
  return std::max<int64_t>(0, ParseVersion(std::string_view(buffer, static_cast<std::size_t>(n))));
}

// The lock of a model directory, held while in scope: the directory's entry in the store's
// HeldModelDirs (the threads of this process), then an exclusive flock() on
// "<model dir>/write.lock" (the processes sharing the root). It serializes the raises of the
// high-water mark, the check-and-rename of every write and Deletes. The lock is on a regular file
// opened for writing because NFS clients emulate flock() with fcntl() locks, which need that and
// do not exclude the threads of one process (hence HeldModelDirs). Never taken twice in one thread.
constexpr std::string_view kLockFile = "write.lock";

class ModelDirLock {
 public:
  // UNAVAILABLE if the lock is not free within `timeout` (FileModelStore::Options::lock_timeout).
  // A non-OK answer of `still_wanted` (if set), asked between tries, ends the wait with it.
  static absl::StatusOr<ModelDirLock> Acquire(
      const std::string& model_dir, internal::HeldModelDirs* held, absl::Duration timeout,
      const std::function<absl::Status()>& still_wanted = nullptr) {
    const std::string path = Join(model_dir, kLockFile);
    const absl::Time deadline = absl::Now() + timeout;
    const auto timed_out = [&](std::string_view holder) {
      return absl::UnavailableError(absl::StrCat(
          "model store: gave up after ", absl::FormatDuration(timeout), " waiting for the lock ",
          path, ", held by ", internal::Sv(holder),
          " (a write committing there should take milliseconds: a writer may be hung on the "
          "volume); retry later"));
    };
    // Between tries: still wanted, and not past the deadline. Waits of 1 ms, doubling to 16 ms.
    constexpr absl::Duration kLongestPause = absl::Milliseconds(16);
    ModelDirLock lock(model_dir);  // claims nothing yet (the copy of the name may throw)
    held->mu.Lock();
    while (held->dirs.count(model_dir) != 0) {
      if (absl::Now() >= deadline) {
        held->mu.Unlock();
        return timed_out("another thread of this process");
      }
      held->released.WaitWithDeadline(&held->mu, std::min(deadline, absl::Now() + kLongestPause));
      if (still_wanted) {  // asked without the mutex, which every model's lock goes through
        held->mu.Unlock();
        MAAS_RETURN_IF_ERROR(still_wanted());
        held->mu.Lock();
      }
    }
    try {
      held->dirs.insert(model_dir);  // on bad_alloc, nothing inserted
    } catch (...) {
      held->mu.Unlock();
      throw;
    }
    held->mu.Unlock();
    lock.held_ = held;  // gives the directory back on every return from here
    lock.fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (lock.fd_ < 0) return ErrnoStatus(errno, "open lock file", path);
    for (absl::Duration pause = absl::Milliseconds(1);;) {
      if (flock(lock.fd_, LOCK_EX | LOCK_NB) == 0) return lock;
      const int err = errno;
      if (err != EWOULDBLOCK && err != EINTR) return ErrnoStatus(err, "lock", path);
      if (still_wanted) MAAS_RETURN_IF_ERROR(still_wanted());
      if (absl::Now() >= deadline) {
        return err == EWOULDBLOCK ? timed_out("another process") : ErrnoStatus(err, "lock", path);
      }
      absl::SleepFor(std::min(pause, deadline - absl::Now()));
      pause = std::min(2 * pause, kLongestPause);
    }
  }
  ModelDirLock(ModelDirLock&& other) noexcept
      : held_(std::exchange(other.held_, nullptr)),
        dir_(std::move(other.dir_)),
        fd_(std::exchange(other.fd_, -1)) {}
  ModelDirLock& operator=(ModelDirLock&&) = delete;
  ~ModelDirLock() {
    if (fd_ >= 0) close(fd_);  // releases the flock
    if (held_ != nullptr) {
      absl::MutexLock hold(&held_->mu);
      held_->dirs.erase(dir_);
      held_->released.SignalAll();
    }
  }

 private:
  explicit ModelDirLock(std::string dir) : dir_(std::move(dir)) {}
  internal::HeldModelDirs* held_ = nullptr;
  std::string dir_;
  int fd_ = -1;
};

// Raises the high-water mark of `model_dir` to at least `version`. REQUIRES: the model
// directory's lock is held (so concurrent raises never lower it).
absl::Status RaiseHighWaterLocked(const std::string& model_dir, int64_t version) {
  if (ReadHighWater(model_dir) >= version) return absl::OkStatus();
  MAAS_ASSIGN_OR_RETURN(LockedTempFile temp,
                        LockedTempFile::Create(model_dir, kHighWaterTempPrefix));
  return temp.Commit(absl::StrCat(version), Join(model_dir, kHighWaterFile), model_dir);
}

// RaiseHighWaterLocked under the model directory's lock.
absl::Status RaiseHighWater(const std::string& model_dir, int64_t version,
                            internal::HeldModelDirs* held, absl::Duration lock_timeout) {
  MAAS_ASSIGN_OR_RETURN(ModelDirLock lock, ModelDirLock::Acquire(model_dir, held, lock_timeout));
  return RaiseHighWaterLocked(model_dir, version);
}

// Removes a version directory: regular files and symlinks inside it (not followed), then the
// directory. Best effort; used for cleanup after the version is already gone or never became
// visible.
void RemoveVersionDir(const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> entries = ListDir(dir, nullptr);
  if (entries.ok()) {
    for (const std::string& entry : *entries) {
      const std::string path = Join(dir, entry);
      struct stat st;
      if (lstat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) unlink(path.c_str());
    }
  }
  rmdir(dir.c_str());
}

}  // namespace

absl::StatusOr<std::unique_ptr<FileModelStore>> FileModelStore::Open(std::string root,
                                                                     Options options) {
  if (root.empty()) return absl::InvalidArgumentError("model store: the root directory is empty");
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (ec) return ErrnoStatus(ec.value(), "create directory", root);
  struct stat st;
  if (stat(root.c_str(), &st) != 0) return ErrnoStatus(errno, "stat", root);
  if (!S_ISDIR(st.st_mode)) return ErrnoStatus(ENOTDIR, "open model store root", root);
  return std::unique_ptr<FileModelStore>(new FileModelStore(std::move(root), options));
}

absl::StatusOr<std::unique_ptr<FileModelStore>> FileModelStore::OpenAndCleanUp(std::string root,
                                                                               std::ostream& log,
                                                                               Options options) {
  MAAS_ASSIGN_OR_RETURN(std::unique_ptr<FileModelStore> store, Open(std::move(root), options));
  absl::StatusOr<CleanupReport> report = store->CleanUp();
  if (!report.ok()) {
    log << "model store: cleanup of " << store->root()
        << " failed (serving anyway): " << report.status() << "\n";
  } else {
    for (const std::string& skipped : report->skipped) {
      log << "model store: cleanup skipped " << skipped << "\n";
    }
  }
  if (report.ok() && (report->temp_files_removed > 0 || report->version_dirs_removed > 0)) {
    log << "model store: removed " << report->temp_files_removed << " abandoned temp file(s) ("
        << report->temp_bytes_removed << " bytes) and " << report->version_dirs_removed
        << " incomplete version director" << (report->version_dirs_removed == 1 ? "y" : "ies")
        << " left by interrupted writes in " << store->root()
        << "; complete versions were not touched\n";
  }
  return store;
}

std::string FileModelStore::ModelDir(std::string_view name) const { return Join(root_, name); }

std::string FileModelStore::VersionDir(std::string_view name, int64_t version) const {
  return Join(ModelDir(name), absl::StrCat(version));
}

absl::StatusOr<std::vector<int64_t>> FileModelStore::CompleteVersions(std::string_view name) const {
  const std::string dir = ModelDir(name);
  bool missing = false;
  // A stray file where a model directory would be is simply not a model.
  MAAS_ASSIGN_OR_RETURN(std::vector<std::string> entries,
                        ListDir(dir, &missing, /*not_dir_is_missing=*/true));
  std::vector<int64_t> versions;
  for (const std::string& entry : entries) {
    const int64_t version = ParseVersion(entry);
    if (version < 0) continue;
    // A version whose file cannot even be looked at (permissions) is listed: reading it answers
    // why, where leaving it out would silently serve an older version as the latest.
    const absl::StatusOr<bool> complete = HoldsCompleteVersion(Join(dir, entry));
    if (!complete.ok() || *complete) versions.push_back(version);
  }
  std::sort(versions.begin(), versions.end());
  return versions;
}

namespace {

// A version's file, open: pread at any offset (a deleted version stays readable).
class FileVersionReader : public VersionReader {
 public:
  FileVersionReader(int fd, int64_t size, std::string path)
      : fd_(fd), size_(size), path_(std::move(path)) {}
  ~FileVersionReader() override { close(fd_); }
  FileVersionReader(const FileVersionReader&) = delete;
  FileVersionReader& operator=(const FileVersionReader&) = delete;

  int64_t size() const override { return size_; }
  absl::StatusOr<std::size_t> ReadAt(int64_t offset, char* out, std::size_t n) override {
    if (offset < 0) return absl::InvalidArgumentError("VersionReader::ReadAt: negative offset");
    std::size_t done = 0;
    while (done < n) {
      const ssize_t got =
          pread(fd_, out + done, n - done, static_cast<off_t>(offset) + static_cast<off_t>(done));
      if (got < 0) {
        const int err = errno;
        if (err == EINTR) continue;
        return ErrnoStatus(err, "read", path_);
      }
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    return done;
  }

 private:
  const int fd_;
  const int64_t size_;
  const std::string path_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<VersionReader>> FileModelStore::OpenVersion(std::string_view name,
                                                                           int64_t version) const {
  const std::string path = Join(VersionDir(name, version), kModelFile);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return internal::ModelNotFound(name, version);
    return ErrnoStatus(err, "open", path);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return ErrnoStatus(err, "fstat", path);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return internal::ModelNotFound(name, version);
  }
  return std::make_unique<FileVersionReader>(fd, static_cast<int64_t>(st.st_size), path);
}

absl::StatusOr<std::string> FileModelStore::ReadVersion(std::string_view name,
                                                        int64_t version) const {
  MAAS_ASSIGN_OR_RETURN(const std::unique_ptr<VersionReader> reader, OpenVersion(name, version));
  std::string bytes;
  bytes.reserve(static_cast<std::size_t>(reader->size()));
  char buffer[1 << 16];
  for (;;) {
    MAAS_ASSIGN_OR_RETURN(const std::size_t n, reader->ReadAt(static_cast<int64_t>(bytes.size()),
                                                              buffer, sizeof(buffer)));
    if (n == 0) break;
    bytes.append(buffer, n);
  }
  return bytes;
}

absl::StatusOr<std::unique_ptr<VersionReader>> FileModelStore::Open(std::string_view name,
                                                                    int64_t version) {
  MAAS_RETURN_IF_ERROR(ValidateModelName(name));
  MAAS_RETURN_IF_ERROR(internal::ValidateOpenVersion(name, version));
  return OpenVersion(name, version);
}

absl::Status FileModelStore::CheckContinues(std::string_view name, int64_t continued,
                                            int64_t version) const {
  const std::string model_dir = ModelDir(name);
  if (continued > 0) {
    MAAS_ASSIGN_OR_RETURN(const bool complete, HoldsCompleteVersion(VersionDir(name, continued)));
    if (!complete) return internal::ContinuedVersionGone(name, continued, version);
  }
  MAAS_ASSIGN_OR_RETURN(std::vector<std::string> entries, ListDir(model_dir, nullptr));
  for (const std::string& entry : entries) {
    const int64_t other = ParseVersion(entry);
    if (other <= continued || other == version) continue;
    const std::string dir = Join(model_dir, entry);
    // A complete version after `continued`, whatever its number: exact, because the caller holds
    // the model directory's lock, under which every write becomes visible. (A writer that reserved
    // a higher number may have stalled before claiming it, so that a lower-numbered one committed
    // without seeing it.) "Complete" as for readers (CompleteVersions); a directory that cannot be
    // read refuses the write rather than counting as empty.
    MAAS_ASSIGN_OR_RETURN(const bool complete, HoldsCompleteVersion(dir));
    if (complete) return internal::VersionInTheWay(name, continued, other, version);
    if (other > version) continue;
    // A live writer numbered in between (a plain write, say): best effort, so versions keep their
    // order; a continuing write numbered above checks this one when it commits.
    bool missing = false;
    MAAS_ASSIGN_OR_RETURN(std::vector<std::string> inside,
                          ListDir(dir, &missing, /*not_dir_is_missing=*/true));
    if (missing) continue;  // removed meanwhile (deleted, or its writer gave up)
    bool in_the_way = false;
    for (const std::string& file : inside) {
      if (absl::StartsWith(file, internal::Sv(kTempPrefix)) &&
          !TempFileAbandoned(Join(dir, file))) {
        in_the_way = true;
      }
    }
    if (inside.empty()) {
      // A writer between its mkdir and its locked temp file (microseconds), or one that crashed
      // there: a directory that has stayed empty for a while is the latter (CleanUp removes it).
      struct stat st;
      in_the_way = stat(dir.c_str(), &st) == 0 &&
                   absl::FromTimeT(st.st_mtime) > absl::Now() - absl::Seconds(10);
    }
    if (in_the_way) return internal::VersionInTheWay(name, continued, other, version);
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> FileModelStore::Put(std::string_view name, const MakeBytesFn& make_bytes,
                                            const PutOptions& options) {
  MAAS_RETURN_IF_ERROR(ValidateModelName(name));
  const std::string model_dir = ModelDir(name);
  for (int attempt = 0; attempt < kMaxPutAttempts; ++attempt) {
    if (mkdir(model_dir.c_str(), 0755) == 0) {
      MAAS_RETURN_IF_ERROR(SyncDir(root_));
    } else if (errno != EEXIST) {
      return ErrnoStatus(errno, "mkdir", model_dir);
    }
    // Start after the highest entry (complete or not); mkdir decides who gets a number.
    bool missing = false;
    MAAS_ASSIGN_OR_RETURN(std::vector<std::string> entries, ListDir(model_dir, &missing));
    if (missing) continue;  // removed by a concurrent cleanup: start over
    int64_t version = ReadHighWater(model_dir) + 1;
    for (const std::string& entry : entries) version = std::max(version, ParseVersion(entry) + 1);
    std::string version_dir;
    bool reserved = false;
    for (;;) {
      if (ParseVersion(absl::StrCat(version)) < 0) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "model store: no version numbers left for model \"", internal::Sv(name), "\""));
      }
      version_dir = VersionDir(name, version);
      if (mkdir(version_dir.c_str(), 0755) == 0) {
        // A number at or below the high-water mark was handed out before (its directory is gone:
        // deleted, or its writer gave up): never again, even to a writer that listed the
        // directory before it went.
        if (version <= ReadHighWater(model_dir)) {
          rmdir(version_dir.c_str());
          ++version;
          continue;
        }
        reserved = true;
        break;
      }
      if (errno == EEXIST) {
        ++version;
        continue;
      }
      if (errno == ENOENT) break;  // model dir removed concurrently: start over
      return ErrnoStatus(errno, "mkdir", version_dir);
    }
    if (!reserved) continue;

    // Claim the reserved directory with a locked temp file at once (before producing the bytes,
    // which may take a while), so a concurrent cleanup sees a live writer, not a crashed one. If a
    // cleanup removed the still-empty directory in between, start over with a new number.
    absl::StatusOr<LockedTempFile> temp = LockedTempFile::Create(version_dir, kTempPrefix);
    if (!temp.ok()) {
      if (absl::IsInternal(temp.status()) && !std::filesystem::exists(version_dir)) continue;
      // The number stays used (see the header).
      (void)RaiseHighWater(model_dir, version, &held_, lock_timeout_);
      rmdir(version_dir.c_str());
      return temp.status();
    }
    absl::StatusOr<std::string> bytes;
    try {
      bytes = make_bytes(version);
    } catch (const std::exception& e) {
      bytes =
          absl::InternalError(absl::StrCat("model store: producing the model failed: ", e.what()));
    } catch (...) {
      bytes = absl::InternalError("model store: producing the model failed with an exception");
    }
    absl::Status status = bytes.status();
    if (status.ok()) status = temp->Write(*bytes);
    if (status.ok()) {
      // The version becomes visible under the model directory's lock, after a continuing write's
      // check: of two writes continuing the same version the second to commit sees the first.
      absl::StatusOr<ModelDirLock> lock =
          ModelDirLock::Acquire(model_dir, &held_, lock_timeout_, options.still_wanted);
      if (!lock.ok()) {
        // Not waiting for it a second time to raise the high-water mark: the temp file stays,
        // emptied and unlocked, so that the number stays used while no write takes it for a live
        // writer in the way (the next start's CleanUp records the number and removes both).
        temp->Abandon();
        return lock.status();
      }
      if (options.still_wanted) status = options.still_wanted();
      if (status.ok() && options.continues.has_value()) {
        status = CheckContinues(name, *options.continues, version);
      }
      const std::string model_file = Join(version_dir, kModelFile);
      if (status.ok()) status = temp->RenameTo(model_file);
      if (status.ok()) {
        status = SyncDir(version_dir);
        if (status.ok()) status = SyncDir(model_dir);
        // Visible but perhaps not durable: withdrawn while the lock is still held, so no
        // continuing write can have built on a version whose writer reports a failure.
        if (!status.ok()) unlink(model_file.c_str());
      }
      if (!status.ok()) {
        // The number stays used (see the header), recorded under the lock already held.
        { LockedTempFile discard = *std::move(temp); }
        (void)RaiseHighWaterLocked(model_dir, version);
        RemoveVersionDir(version_dir);
        return status;
      }
    }
    if (!status.ok()) {  // make_bytes or the write failed, before the lock
      // The number stays used (see the header): recorded as the high-water mark before the
      // directory goes or, if that fails (the lock not free in time, say), kept by the temp file
      // left abandoned, as after a refused lock.
      if (!RaiseHighWater(model_dir, version, &held_, lock_timeout_).ok()) {
        temp->Abandon();
        return status;
      }
      { LockedTempFile discard = *std::move(temp); }  // removes the temp file if still there
      RemoveVersionDir(version_dir);
      rmdir(model_dir.c_str());  // only succeeds if the model has nothing else (a fresh name)
      return status;
    }
    return version;
  }
  return absl::UnavailableError(absl::StrCat("model store: could not reserve a version of model \"",
                                             internal::Sv(name), "\" in ", model_dir,
                                             " (the directory kept disappearing)"));
}

absl::StatusOr<std::string> FileModelStore::Get(std::string_view name, int64_t version) {
  MAAS_RETURN_IF_ERROR(ValidateModelName(name));
  MAAS_RETURN_IF_ERROR(internal::ValidateVersionArgument(name, version));
  if (version > 0) return ReadVersion(name, version);
  for (int attempt = 0;; ++attempt) {
    MAAS_ASSIGN_OR_RETURN(std::vector<int64_t> versions, CompleteVersions(name));
    if (versions.empty()) return internal::ModelNotFound(name, 0);
    absl::StatusOr<std::string> bytes = ReadVersion(name, versions.back());
    // The latest may have been deleted between listing and reading: list again.
    if (bytes.ok() || !absl::IsNotFound(bytes.status()) || attempt + 1 >= kMaxLatestReadAttempts) {
      return bytes;
    }
  }
}

absl::StatusOr<std::vector<int64_t>> FileModelStore::ListVersions(std::string_view name) {
  MAAS_RETURN_IF_ERROR(ValidateModelName(name));
  MAAS_ASSIGN_OR_RETURN(std::vector<int64_t> versions, CompleteVersions(name));
  if (versions.empty()) return internal::ModelNotFound(name, 0);
  return versions;
}

absl::StatusOr<std::vector<std::string>> FileModelStore::ListNames(const NameRange& range) {
  MAAS_ASSIGN_OR_RETURN(std::vector<std::string> entries, ListDir(root_, nullptr));
  // The range first (no I/O), then the completeness check (a directory read per model) in order,
  // only until `limit` names are found: a page of a large store reads its own models' directories.
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [&range](const std::string& entry) {
                                 return entry < range.from ||
                                        !absl::StartsWith(entry, range.prefix) ||
                                        !ValidateModelName(entry).ok();
                               }),
                entries.end());
  std::sort(entries.begin(), entries.end());
  std::vector<std::string> names;
  for (std::string& entry : entries) {
    if (range.limit > 0 && names.size() >= range.limit) break;
    // A model whose directory cannot be read is listed (its ListVersions answers why), so one
    // unreadable directory neither fails the listing nor hides the model.
    absl::StatusOr<std::vector<int64_t>> versions = CompleteVersions(entry);
    if (!versions.ok() || !versions->empty()) names.push_back(std::move(entry));
  }
  return names;
}

absl::Status FileModelStore::UnlinkVersion(std::string_view name, int64_t version) const {
  const std::string file = Join(VersionDir(name, version), kModelFile);
  struct stat st;
  if (lstat(file.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return internal::ModelNotFound(name, version);
    return ErrnoStatus(err, "stat", file);
  }
  if (S_ISDIR(st.st_mode)) return internal::ModelNotFound(name, version);
  if (unlink(file.c_str()) != 0) {
    const int err = errno;
    if (err == ENOENT) return internal::ModelNotFound(name, version);
    return ErrnoStatus(err, "unlink", file);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> FileModelStore::Delete(
    std::string_view name, int64_t version, const std::function<absl::Status()>& still_wanted) {
  MAAS_RETURN_IF_ERROR(ValidateModelName(name));
  MAAS_RETURN_IF_ERROR(internal::ValidateVersionArgument(name, version));
  const std::string model_dir = ModelDir(name);
  // Under the model directory's lock, as every write's commit: a version committed concurrently
  // is either listed and deleted here, or committed after and (if it continues a deleted
  // version) refused; never committed between the listing and the unlinks, unseen.
  absl::StatusOr<ModelDirLock> lock =
      ModelDirLock::Acquire(model_dir, &held_, lock_timeout_, still_wanted);
  if (lock.ok() && still_wanted) {  // the wait for the lock may have outlasted the caller
    if (absl::Status wanted = still_wanted(); !wanted.ok()) return wanted;
  }
  if (!lock.ok()) {
    struct stat st;
    if (lstat(model_dir.c_str(), &st) != 0) {
      const int err = errno;
      if (err == ENOENT || err == ENOTDIR) return internal::ModelNotFound(name, version);
    } else if (!S_ISDIR(st.st_mode)) {
      return internal::ModelNotFound(name, version);
    }
    return lock.status();
  }
  std::vector<int64_t> versions{version};
  if (version == 0) {
    MAAS_ASSIGN_OR_RETURN(versions, CompleteVersions(name));
  }
  std::vector<int64_t> deleted;
  absl::Status status;
  for (const int64_t v : versions) {
    status = UnlinkVersion(name, v);
    if (status.ok()) {
      deleted.push_back(v);
    } else if (absl::IsNotFound(status)) {
      status = absl::OkStatus();  // deleted meanwhile
    } else {
      break;  // the versions before v are deleted; v and later are intact
    }
  }
  // The deleted numbers stay used: recorded (once, the highest) before their directories go, still
  // under the lock (so that no continuing write takes them for writers in the way), with one fsync
  // of the model directory for all.
  if (!deleted.empty()) {
    MAAS_RETURN_IF_ERROR(RaiseHighWaterLocked(model_dir, deleted.back()));
    for (const int64_t v : deleted) RemoveVersionDir(VersionDir(name, v));
    MAAS_RETURN_IF_ERROR(SyncDir(model_dir));
  }
  MAAS_RETURN_IF_ERROR(status);
  if (deleted.empty()) return internal::ModelNotFound(name, version);
  return deleted;
}

absl::StatusOr<FileModelStore::CleanupReport> FileModelStore::CleanUp() {
  CleanupReport report;
  MAAS_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(root_, nullptr));
  for (const std::string& name : names) {
    if (!ValidateModelName(name).ok()) continue;  // foreign entry: never touched
    // One model directory that cannot be read (permissions) must not keep the others uncleaned.
    if (absl::Status status = CleanUpModel(name, &report); !status.ok()) {
      report.skipped.push_back(absl::StrCat("model \"", name, "\": ", status.ToString()));
    }
  }
  return report;
}

absl::Status FileModelStore::CleanUpModel(const std::string& name, CleanupReport* out) {
  CleanupReport& report = *out;
  const std::string model_dir = ModelDir(name);
  bool missing = false;
  MAAS_ASSIGN_OR_RETURN(std::vector<std::string> entries,
                        ListDir(model_dir, &missing, /*not_dir_is_missing=*/true));
  int64_t highest = 0;
  for (const std::string& entry : entries) highest = std::max(highest, ParseVersion(entry));
  bool high_water_raised = false;
  for (const std::string& entry : entries) {
    const std::string path = Join(model_dir, entry);
    if (absl::StartsWith(entry, internal::Sv(kHighWaterTempPrefix))) {
      struct stat st;
      if (lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && TempFileAbandoned(path) &&
          unlink(path.c_str()) == 0) {
        ++report.temp_files_removed;
        report.temp_bytes_removed += static_cast<uint64_t>(st.st_size);
      }
      continue;
    }
    if (ParseVersion(entry) < 0) continue;
    struct stat dir_stat;
    if (lstat(path.c_str(), &dir_stat) != 0 || !S_ISDIR(dir_stat.st_mode)) continue;
    // Abandoned temp files of crashed writers (a live writer holds its file's lock).
    absl::StatusOr<std::vector<std::string>> listed = ListDir(path, nullptr);
    if (!listed.ok()) {  // unreadable: never removed; the other versions are still cleaned
      report.skipped.push_back(
          absl::StrCat("version directory ", path, ": ", listed.status().ToString()));
      continue;
    }
    const std::vector<std::string>& inside = *listed;
    bool has_model = false;
    std::size_t remaining = 0;
    for (const std::string& file : inside) {
      const std::string file_path = Join(path, file);
      if (file == kModelFile) {
        has_model = true;
        ++remaining;
        continue;
      }
      struct stat st;
      if (absl::StartsWith(file, internal::Sv(kTempPrefix)) && lstat(file_path.c_str(), &st) == 0 &&
          S_ISREG(st.st_mode) && TempFileAbandoned(file_path) && unlink(file_path.c_str()) == 0) {
        ++report.temp_files_removed;
        report.temp_bytes_removed += static_cast<uint64_t>(st.st_size);
        report.removed_paths.push_back(file_path);
        continue;
      }
      ++remaining;  // a live writer's temp file, or something foreign: leave it
    }
    if (has_model || remaining > 0) continue;
    // An empty version directory: a crashed write (or a writer between mkdir and creating its
    // temp file, which then starts over with a new number). Keep its number as the high-water
    // mark first.
    if (!high_water_raised) {
      MAAS_RETURN_IF_ERROR(RaiseHighWater(model_dir, highest, &held_, lock_timeout_));
      high_water_raised = true;
    }
    if (rmdir(path.c_str()) == 0) {
      ++report.version_dirs_removed;
      report.removed_paths.push_back(path);
    }
  }
  if (high_water_raised) MAAS_RETURN_IF_ERROR(SyncDir(model_dir));
  return absl::OkStatus();
}

}  // namespace maas::store
