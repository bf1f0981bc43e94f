// Tests of ValidateModelName, FileModelStore and MemoryModelStore (one parameterised suite for
// both).
#include "common/store/model_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/store/file_model_store.h"
#include "common/store/memory_model_store.h"
#include "tests/common/store/temp_dir.h"

namespace maas::store {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::WriteFile;

// Content of a version as the tests write it: depends on the version passed to make_bytes.
MakeBytesFn Content(const std::string& tag) {
  return [tag](int64_t version) -> absl::StatusOr<std::string> {
    return absl::StrCat(tag, "@v", version);
  };
}

// Puts a version of "m" that continues version 1, running `meanwhile` once the Put has reserved its
// number (what another writer does while this one stalls), and returns the Put's status.
absl::Status ContinueVersion1While(ModelStore& store, const std::function<void()>& meanwhile) {
  PutOptions after_1;
  after_1.continues = 1;
  return store
      .Put(
          "m",
          [&](int64_t version) {
            meanwhile();
            return Content("stalled")(version);
          },
          after_1)
      .status();
}

struct FileFixture {
  static constexpr const char* kName = "file";
  TempDir dir;
  std::unique_ptr<ModelStore> store;
  FileFixture() {
    auto opened = FileModelStore::Open(dir.path() + "/models");
    REQUIRE(opened.ok());
    store = std::move(opened).value();
  }
};

struct MemoryFixture {
  static constexpr const char* kName = "memory";
  std::unique_ptr<ModelStore> store = std::make_unique<MemoryModelStore>();
};

// A FileModelStore in a temporary directory holding version 1 of "m".
struct StoreWithM {
  explicit StoreWithM(absl::Duration lock_timeout = FileModelStore::Options().lock_timeout) {
    FileModelStore::Options options;
    options.lock_timeout = lock_timeout;
    auto opened = FileModelStore::Open(dir.path(), options);
    REQUIRE(opened.ok());
    store = std::move(opened).value();
    REQUIRE(store->Put("m", Content("m")).value() == 1);
  }
  // Takes "m"'s lock through another open file, as a replica committing it does; close() gives
  // it back.
  int HoldLockOfM() const {
    const int fd = open((dir.path() + "/m/write.lock").c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    REQUIRE(flock(fd, LOCK_EX) == 0);
    return fd;
  }
  TempDir dir;
  std::unique_ptr<FileModelStore> store;
};

TEST_CASE("ValidateModelName accepts exactly [a-z0-9][a-z0-9._-]{0,62} without '..'") {
  struct Row {
    std::string name;
    bool ok;
  };
  const std::vector<Row> rows = {
      {"a", true},
      {"0", true},
      {"iris", true},
      {"my-model_2.v1", true},
      {"a.b", true},
      {"a-", true},
      {std::string(63, 'x'), true},
      {"a" + std::string(62, '9'), true},
      {"", false},
      {std::string(64, 'x'), false},
      {std::string(65, 'x'), false},
      {"..", false},
      {".", false},
      {"../x", false},
      {"a/../b", false},
      {"a..b", false},
      {"a/b", false},
      {"/abs", false},
      {".hidden", false},
      {"-flag", false},
      {"_under", false},
      {"Upper", false},
      {"lowerUPPER", false},
      {"has space", false},
      {"tab\t", false},
      {"caf\xc3\xa9", false},
      {"a\\b", false},
      {"a:b", false},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    absl::Status status = ValidateModelName(row.name);
    CHECK(status.ok() == row.ok);
    if (!row.ok) {
      CHECK(status.code() == absl::StatusCode::kInvalidArgument);
      CHECK(std::string(status.message()).find("[a-z0-9._-]") != std::string::npos);
    }
  }
  // An embedded NUL (a std::string from a literal would stop at it).
  CHECK_FALSE(ValidateModelName(std::string("nul\0byte", 8)).ok());
}

TEST_CASE("ValidateModelName's message names the offender, escaped and truncated") {
  absl::Status status = ValidateModelName("Bad/Name");
  CHECK(std::string(status.message()).find("\"Bad/Name\"") != std::string::npos);
  status = ValidateModelName("bad\nname");
  CHECK(std::string(status.message()).find("bad\\nname") != std::string::npos);
  CHECK(std::string(status.message()).find('\n') == std::string::npos);
  const std::string huge(100000, 'Q');
  status = ValidateModelName(huge);
  CHECK(status.message().size() < 400);
  CHECK(std::string(status.message()).find("100000 bytes") != std::string::npos);
}

TEMPLATE_TEST_CASE("Store round trip and version numbering", "[store]", FileFixture,
                   MemoryFixture) {
  TestType fixture;
  ModelStore& store = *fixture.store;
  std::vector<int64_t> seen;
  for (int i = 0; i < 3; ++i) {
    auto version = store.Put("iris", [&](int64_t v) -> absl::StatusOr<std::string> {
      seen.push_back(v);
      return absl::StrCat("iris@v", v);
    });
    REQUIRE(version.ok());
    CHECK(*version == i + 1);
  }
  CHECK(seen == std::vector<int64_t>{1, 2, 3});
  for (int64_t v = 1; v <= 3; ++v) {
    auto bytes = store.Get("iris", v);
    REQUIRE(bytes.ok());
    CHECK(*bytes == absl::StrCat("iris@v", v));
  }
  auto latest = store.Get("iris", 0);
  REQUIRE(latest.ok());
  CHECK(*latest == "iris@v3");
  auto versions = store.ListVersions("iris");
  REQUIRE(versions.ok());
  CHECK(*versions == std::vector<int64_t>{1, 2, 3});

  // Another name has its own numbering.
  auto other = store.Put("digits", Content("digits"));
  REQUIRE(other.ok());
  CHECK(*other == 1);
  auto names = store.ListNames();
  REQUIRE(names.ok());
  CHECK(*names == std::vector<std::string>{"digits", "iris"});
}

// A listing's page asks for the names it shows (a review: every page of a FileModelStore read
// every model's directory, so walking a large store in pages cost models squared). Models
// without a complete version are not counted toward the limit.
TEMPLATE_TEST_CASE("ListNames takes a prefix, a first name and a limit", "[store]", FileFixture,
                   MemoryFixture) {
  TestType fixture;
  ModelStore& store = *fixture.store;
  for (const char* name : {"a", "ab", "abc", "abd", "b", "ba"}) {
    REQUIRE(store.Put(name, Content(name)).ok());
  }
  REQUIRE(store.Delete("abc", 0).ok());  // no complete version left
  const auto names = [&store](std::string prefix, std::string from, std::size_t limit) {
    ModelStore::NameRange range;
    range.prefix = std::move(prefix);
    range.from = std::move(from);
    range.limit = limit;
    absl::StatusOr<std::vector<std::string>> listed = store.ListNames(range);
    REQUIRE(listed.ok());
    return *listed;
  };
  using Names = std::vector<std::string>;
  CHECK(names("", "", 0) == Names{"a", "ab", "abd", "b", "ba"});
  CHECK(names("ab", "", 0) == Names{"ab", "abd"});
  CHECK(names("a", "ab", 0) == Names{"ab", "abd"});
  CHECK(names("a", "abb", 0) == Names{"abd"});
  CHECK(names("", "ab", 2) == Names{"ab", "abd"});  // "abc" has no version: not counted
  CHECK(names("", "", 1) == Names{"a"});
  CHECK(names("b", "", 5) == Names{"b", "ba"});
  CHECK(names("c", "", 0).empty());
  CHECK(names("", "bb", 0).empty());
}

TEMPLATE_TEST_CASE("Store keeps arbitrary bytes, including empty and binary", "[store]",
                   FileFixture, MemoryFixture) {
  TestType fixture;
  ModelStore& store = *fixture.store;
  std::string binary;
  for (int i = 0; i < 3 * 65536 + 17; ++i) binary.push_back(static_cast<char>((i * 7919) % 256));
  auto v1 = store.Put("blob", [](int64_t) -> absl::StatusOr<std::string> { return std::string(); });
  auto v2 = store.Put("blob", [&](int64_t) -> absl::StatusOr<std::string> { return binary; });
  REQUIRE(v1.ok());
  REQUIRE(v2.ok());
  auto empty = store.Get("blob", *v1);
  REQUIRE(empty.ok());
  CHECK(empty->empty());
  auto back = store.Get("blob", *v2);
  REQUIRE(back.ok());
  CHECK(*back == binary);
}

TEMPLATE_TEST_CASE("Store NOT_FOUND cases name the model and version", "[store]", FileFixture,
                   MemoryFixture) {
  TestType fixture;
  ModelStore& store = *fixture.store;
  auto missing = store.Get("nothere", 0);
  REQUIRE(absl::IsNotFound(missing.status()));
  CHECK(std::string(missing.status().message()).find("nothere") != std::string::npos);
  CHECK(absl::IsNotFound(store.ListVersions("nothere").status()));
  CHECK(absl::IsNotFound(store.Delete("nothere", 0).status()));
  CHECK(absl::IsNotFound(store.Delete("nothere", 1).status()));

  REQUIRE(store.Put("m", Content("m")).ok());
  auto wrong_version = store.Get("m", 7);
  REQUIRE(absl::IsNotFound(wrong_version.status()));
  CHECK(std::string(wrong_version.status().message()).find("\"m\" version 7") != std::string::npos);
  CHECK(absl::IsNotFound(store.Delete("m", 7).status()));
  const auto not_open = store.Open("m", 7);
  REQUIRE(absl::IsNotFound(not_open.status()));
  CHECK(std::string(not_open.status().message()).find("\"m\" version 7") != std::string::npos);
  CHECK(absl::IsNotFound(store.Open("nothere", 1).status()));

  auto names = store.ListNames();
  REQUIRE(names.ok());
  CHECK(*names == std::vector<std::string>{"m"});
}

// A listing used to read each version whole for its metadata (ListModels on a 537 MB model); a
// reader reads the parts asked for.
TEMPLATE_TEST_CASE("Open reads any part of a version and keeps reading it after a delete",
                   "[store]", FileFixture, MemoryFixture) {
  TestType fixture;
  ModelStore& store = *fixture.store;
  std::string bytes(200000, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7919 % 251);
  REQUIRE(store.Put("m", [&](int64_t) -> absl::StatusOr<std::string> { return bytes; }).ok());
  REQUIRE(store.Put("m", Content("second")).ok());
  auto reader = store.Open("m", 1);
  REQUIRE(reader.ok());
  CHECK((*reader)->size() == static_cast<int64_t>(bytes.size()));
  // Deleted after it was opened: the reader still reads the version's bytes.
  REQUIRE(store.Delete("m", 1).ok());
  CHECK(absl::IsNotFound(store.Open("m", 1).status()));
  std::string out(70000, 'x');
  for (const int64_t offset : {int64_t{0}, int64_t{1}, int64_t{65536}, int64_t{130000},
                               int64_t{199999}, int64_t{200000}, int64_t{300000}}) {
    CAPTURE(offset);
    const auto n = (*reader)->ReadAt(offset, out.data(), out.size());
    REQUIRE(n.ok());
    const std::size_t expected =
        offset >= 200000 ? 0 : std::min<std::size_t>(out.size(), 200000 - offset);
    REQUIRE(*n == expected);
    CHECK(out.compare(0, *n, bytes, static_cast<std::size_t>(std::min<int64_t>(offset, 200000)),
                      *n) == 0);
  }
  CHECK(absl::IsInvalidArgument((*reader)->ReadAt(-1, out.data(), 1).status()));
  auto second = store.Open("m", 2);
  REQUIRE(second.ok());
  std::string whole(64, '\0');
  const auto n = (*second)->ReadAt(0, whole.data(), whole.size());
  REQUIRE(n.ok());
  whole.resize(*n);
  CHECK(whole == "second@v2");
}

TEMPLATE_TEST_CASE("Store rejects bad names and negative versions everywhere", "[store]",
                   FileFixture, MemoryFixture) {
  TestType fixture;
  ModelStore& store = *fixture.store;
  for (const std::string& name :
       std::vector<std::string>{"../x", "..", "", "a/b", ".x", "-x", "UP", std::string(64, 'a')}) {
    CAPTURE(name);
    CHECK(absl::IsInvalidArgument(store.Put(name, Content("x")).status()));
    CHECK(absl::IsInvalidArgument(store.Get(name, 0).status()));
    CHECK(absl::IsInvalidArgument(store.ListVersions(name).status()));
    CHECK(absl::IsInvalidArgument(store.Delete(name, 0).status()));
    CHECK(absl::IsInvalidArgument(store.Open(name, 1).status()));
  }
  CHECK(absl::IsInvalidArgument(store.Get("ok", -1).status()));
  CHECK(absl::IsInvalidArgument(store.Open("ok", -1).status()));
  // Open reads one numbered version: "latest" would change under a reader's feet.
  CHECK(absl::IsInvalidArgument(store.Open("ok", 0).status()));
  CHECK(absl::IsInvalidArgument(store.Delete("ok", -3).status()));
  auto names = store.ListNames();
  REQUIRE(names.ok());
  CHECK(names->empty());
}

TEMPLATE_TEST_CASE("A failing make_bytes leaves nothing behind", "[store]", FileFixture,
                   MemoryFixture) {
  TestType fixture;
  ModelStore& store = *fixture.store;
  auto failing = [](int64_t) -> absl::StatusOr<std::string> {
    return absl::FailedPreconditionError("cannot serialize");
  };
  auto result = store.Put("fresh", failing);
  REQUIRE(result.status() == absl::FailedPreconditionError("cannot serialize"));
  CHECK(absl::IsNotFound(store.ListVersions("fresh").status()));
  CHECK(absl::IsNotFound(store.Get("fresh", 0).status()));
  auto names = store.ListNames();
  REQUIRE(names.ok());
  CHECK(names->empty());

  REQUIRE(store.Put("kept", Content("kept")).ok());
  CHECK_FALSE(store.Put("kept", failing).ok());
  auto versions = store.ListVersions("kept");
  REQUIRE(versions.ok());
  CHECK(*versions == std::vector<int64_t>{1});
  auto latest = store.Get("kept", 0);
  REQUIRE(latest.ok());
  CHECK(*latest == "kept@v1");
  auto next = store.Put("kept", Content("kept"));
  REQUIRE(next.ok());
  CHECK(*next > 1);
}

// An audit found replicas sharing a store losing acknowledged partial Trains: each checked that
// the continued version was still the latest by listing complete versions, which a write still in
// progress is not.
TEMPLATE_TEST_CASE("Put continuing a version succeeds only as the next version after it", "[store]",
                   FileFixture, MemoryFixture) {
  TestType fixture;
  ModelStore& store = *fixture.store;
  PutOptions first;
  first.continues = 0;
  REQUIRE(store.Put("m", Content("a"), first).value() == 1);
  PutOptions after_1;
  after_1.continues = 1;
  REQUIRE(store.Put("m", Content("b"), after_1).value() == 2);
  // Version 2 is in the way of another write continuing 1, and of one continuing nothing.
  const absl::Status late = store.Put("m", Content("c"), after_1).status();
  CHECK(absl::IsAborted(late));
  CHECK_THAT(std::string(late.message()), Catch::Contains("version 2"));
  CHECK(absl::IsAborted(store.Put("m", Content("c"), first).status()));
  CHECK(store.ListVersions("m").value() == std::vector<int64_t>{1, 2});  // nothing left behind
  // A write in progress is in the way too: while a plain write is producing its bytes, a write
  // continuing the version before it is refused.
  PutOptions after_2;
  after_2.continues = 2;
  absl::Status inner;
  const absl::StatusOr<int64_t> outer = store.Put("m", [&](int64_t version) {
    inner = store.Put("m", Content("d"), after_2).status();
    return Content("plain")(version);
  });
  REQUIRE(outer.ok());
  CHECK(absl::IsAborted(inner));
  CHECK_THAT(std::string(inner.message()), Catch::Contains(absl::StrCat("version ", *outer)));
  // Continuing the latest works again; continuing a deleted version does not.
  PutOptions after_outer;
  after_outer.continues = *outer;
  const absl::StatusOr<int64_t> next = store.Put("m", Content("e"), after_outer);
  REQUIRE(next.ok());
  REQUIRE(store.Delete("m", *next).ok());
  PutOptions after_deleted;
  after_deleted.continues = *next;
  const absl::Status gone = store.Put("m", Content("f"), after_deleted).status();
  CHECK(absl::IsAborted(gone));
  CHECK_THAT(std::string(gone.message()), Catch::Contains("no longer stored"));
  // Numbers of refused writes are not handed out again.
  const absl::StatusOr<int64_t> plain = store.Put("m", Content("g"));
  REQUIRE(plain.ok());
  CHECK(*plain > *next + 1);
}

// A review found the check above looking only at the numbers between the continued version and
// the writer's own: a writer that stalled after reserving its number (or whose temp file was
// briefly visible unlocked) let a higher-numbered write continuing the same version commit, then
// committed too, and the latest version lacked its batch.
TEMPLATE_TEST_CASE("Put continuing a version is refused once a later version is complete",
                   "[store]", FileFixture, MemoryFixture) {
  TestType fixture;
  ModelStore& store = *fixture.store;
  REQUIRE(store.Put("m", Content("a")).value() == 1);
  absl::StatusOr<int64_t> later;
  const absl::Status stalled =
      ContinueVersion1While(store, [&] { later = store.Put("m", Content("later")); });
  REQUIRE(later.ok());
  CHECK(*later == 3);
  CHECK(absl::IsAborted(stalled));
  CHECK_THAT(std::string(stalled.message()), Catch::Contains("version 3"));
  CHECK(store.ListVersions("m").value() == std::vector<int64_t>{1, 3});
}

// The second review found the check taking a version directory it could not list (EMFILE, EIO,
// ESTALE) for one that was gone, so a complete later version went unseen and both continuing
// writes committed. A symlink loop stands in for such a directory here (ELOOP).
TEST_CASE(
    "FileModelStore: a continuing Put refuses a later version a replica wrote, or one unread") {
  StoreWithM fixture;
  FileModelStore& store = *fixture.store;
  const std::string m = fixture.dir.path() + "/m";
  SECTION("committed by a replica with a higher number") {
    const absl::Status stalled = ContinueVersion1While(store, [&] {
      // A replica reserved 3, did not see this writer (stalled before claiming 2), and committed
      // its continuation of 1.
      fs::create_directories(m + "/3");
      WriteFile(m + "/3/model.pb", "replica@v3");
    });
    CHECK(absl::IsAborted(stalled));
    CHECK_THAT(std::string(stalled.message()), Catch::Contains("version 3"));
    CHECK(store.ListVersions("m").value() == std::vector<int64_t>{1, 3});
    CHECK(store.Get("m", 0).value() == "replica@v3");
  }
  SECTION("a version directory that cannot be read") {
    const absl::Status refused =
        ContinueVersion1While(store, [&] { fs::create_symlink("3", m + "/3"); });  // 3 -> 3
    CHECK_FALSE(refused.ok());
    CHECK_THAT(std::string(refused.message()), Catch::Contains(m + "/3/model.pb"));
    fs::remove(m + "/3");
    CHECK(store.ListVersions("m").value() == std::vector<int64_t>{1});
  }
}

TEST_CASE("FileModelStore: a crashed writer's leftovers are not in the way of a continuing Put") {
  StoreWithM fixture;
  FileModelStore& store = *fixture.store;
  const std::string m = fixture.dir.path() + "/m";
  fs::create_directories(m + "/2");  // crashed mid-write: an unlocked temp file
  WriteFile(m + "/2/model.pb.tmp-dead01", "torn");
  fs::create_directories(m + "/3");  // crashed between mkdir and its temp file, a while ago
  const auto old = fs::file_time_type::clock::now() - std::chrono::minutes(5);
  fs::last_write_time(m + "/3", old);
  PutOptions after_1;
  after_1.continues = 1;
  const absl::StatusOr<int64_t> next = store.Put("m", Content("m"), after_1);
  REQUIRE(next.ok());
  CHECK(*next == 4);
  // A live writer (its temp file locked) is in the way, and so is a directory just made.
  fs::create_directories(m + "/5");
  WriteFile(m + "/5/model.pb.tmp-live01", "being written");
  const int live_fd = open((m + "/5/model.pb.tmp-live01").c_str(), O_RDONLY);
  REQUIRE(live_fd >= 0);
  REQUIRE(flock(live_fd, LOCK_EX) == 0);
  PutOptions after_4;
  after_4.continues = 4;
  CHECK(absl::IsAborted(store.Put("m", Content("m"), after_4).status()));
  close(live_fd);
  REQUIRE(store.CleanUp().ok());  // removes 5 (now abandoned) and the refused write's leftovers
  fs::create_directories(m + "/9");
  const absl::Status young = store.Put("m", Content("m"), after_4).status();
  CHECK(absl::IsAborted(young));
  CHECK_THAT(std::string(young.message()), Catch::Contains("version 9"));
}

TEST_CASE("FileModelStore: Delete takes the model's lock, so no commit slips in unseen") {
  StoreWithM fixture;
  FileModelStore& store = *fixture.store;
  const TempDir& dir = fixture.dir;
  const std::string m = dir.path() + "/m";
  // A replica holds the model's lock to commit version 2, a continuation of version 1.
  const int replica_fd = fixture.HoldLockOfM();
  std::atomic<bool> finished{false};
  absl::StatusOr<std::vector<int64_t>> deleted;
  std::thread deleter([&] {
    deleted = store.Delete("m", 0);
    finished = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_FALSE(finished.load());  // waiting for the lock, not listing versions meanwhile
  fs::create_directories(m + "/2");
  WriteFile(m + "/2/model.pb", "replica@v2");
  close(replica_fd);  // the replica's commit is done
  deleter.join();
  REQUIRE(deleted.ok());
  CHECK(*deleted == std::vector<int64_t>{1, 2});
  CHECK(absl::IsNotFound(store.ListVersions("m").status()));
  CHECK(absl::IsNotFound(store.Delete("never-written", 0).status()));
  CHECK_FALSE(fs::exists(dir.path() + "/never-written"));
}

TEST_CASE("FileModelStore: a model's lock held too long fails writes and deletes, retryably") {
  StoreWithM fixture(absl::Milliseconds(200));
  FileModelStore& store = *fixture.store;
  const std::string lock_file = fixture.dir.path() + "/m/write.lock";
  // A replica hung while committing: it holds the model's lock and never lets go.
  const int hung_fd = fixture.HoldLockOfM();
  const absl::Status put = store.Put("m", Content("m")).status();
  CHECK(absl::IsUnavailable(put));
  CHECK_THAT(std::string(put.message()), Catch::Contains(lock_file));
  const absl::Status deleted = store.Delete("m", 1).status();
  CHECK(absl::IsUnavailable(deleted));
  CHECK(store.ListVersions("m").value() == std::vector<int64_t>{1});  // nothing half-done
  CHECK(store.Put("other", Content("other")).ok());  // another model's lock is another file
  // A write whose bytes fail while the lock is hung cannot record its number under the lock.
  const absl::Status failed =
      store
          .Put("m",
               [](int64_t) -> absl::StatusOr<std::string> {
                 return absl::DeadlineExceededError("training ran out of time");
               })
          .status();
  CHECK(absl::IsDeadlineExceeded(failed));
  close(hung_fd);
  // The retry, continuing version 1 as a partial Train does, commits at once: the refused writes
  // left nothing in its way, and their numbers (2, 3) stay used.
  PutOptions after_1;
  after_1.continues = 1;
  const absl::StatusOr<int64_t> retried = store.Put("m", Content("m"), after_1);
  REQUIRE(retried.ok());
  CHECK(*retried == 4);
  CHECK(store.ListVersions("m").value() == std::vector<int64_t>{1, 4});
  CHECK(store.Delete("m", 1).ok());
  REQUIRE(store.CleanUp().ok());  // the next start's cleanup: the leftovers go, numbers stay used
  CHECK(store.Put("m", Content("m")).value() == 5);
  CHECK_FALSE(fs::exists(fixture.dir.path() + "/m/2"));
  CHECK_FALSE(fs::exists(fixture.dir.path() + "/m/3"));
}

TEST_CASE("FileModelStore: a commit waiting for one model's lock does not hold up another's") {
  StoreWithM fixture(absl::Seconds(20));
  FileModelStore& store = *fixture.store;
  const int replica_fd = fixture.HoldLockOfM();  // a replica committing "m"
  std::atomic<bool> producing{false}, waiting_done{false};
  absl::StatusOr<int64_t> waiting;
  std::thread waiter([&] {
    waiting = store.Put("m", [&](int64_t version) -> absl::StatusOr<std::string> {
      producing = true;
      return Content("m")(version);
    });
    waiting_done = true;
  });
  while (!producing) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // now waiting for the lock
  // "other" commits at once, while the Put of "m" still waits.
  CHECK(store.Put("other", Content("other")).ok());
  CHECK_FALSE(waiting_done.load());
  close(replica_fd);
  waiter.join();
  CHECK(waiting.ok());
}

TEMPLATE_TEST_CASE("A Put no longer wanted when it would commit stores nothing", "[store]",
                   FileFixture, MemoryFixture) {
  TestType fixture;
  ModelStore& store = *fixture.store;
  REQUIRE(store.Put("m", Content("m")).value() == 1);
  PutOptions given_up;
  given_up.still_wanted = [] { return absl::DeadlineExceededError("the caller's deadline"); };
  const absl::Status refused = store.Put("m", Content("late"), given_up).status();
  CHECK(absl::IsDeadlineExceeded(refused));
  CHECK(store.ListVersions("m").value() == std::vector<int64_t>{1});
  CHECK(absl::IsDeadlineExceeded(store.Put("fresh", Content("late"), given_up).status()));
  CHECK(absl::IsNotFound(store.ListVersions("fresh").status()));
  PutOptions wanted;
  wanted.still_wanted = [] { return absl::OkStatus(); };
  const absl::StatusOr<int64_t> next = store.Put("m", Content("m"), wanted);
  REQUIRE(next.ok());
  CHECK(*next > 1);
  CHECK(store.Get("m", 0).value() == absl::StrCat("m@v", *next));
}

TEST_CASE("FileModelStore: a Put waiting for the model's lock ends when no longer wanted") {
  StoreWithM fixture;  // the default lock timeout (30 s)
  FileModelStore& store = *fixture.store;
  const int replica_fd = fixture.HoldLockOfM();  // a replica committing, for as long as it takes
  std::atomic<bool> produced{false}, cancelled{false}, done{false};
  absl::Status waited;
  std::thread writer([&] {
    PutOptions options;
    options.still_wanted = [&] {
      return cancelled ? absl::CancelledError("the client went away") : absl::OkStatus();
    };
    waited = store
                 .Put(
                     "m",
                     [&](int64_t version) -> absl::StatusOr<std::string> {
                       produced = true;
                       return Content("m")(version);
                     },
                     options)
                 .status();
    done = true;
  });
  while (!produced) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  cancelled = true;
  // The Put gives up while the replica still holds the lock (a cap, not a timing assertion).
  for (int i = 0; i < 10000 && !done; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(done.load());
  close(replica_fd);
  writer.join();
  CHECK(absl::IsCancelled(waited));
  CHECK(store.ListVersions("m").value() == std::vector<int64_t>{1});
}

// A DeleteModel whose client's deadline passed while it waited for the model's lock (a replica
// committing, a hung writer) still deleted once it got the lock: its client was told
// DEADLINE_EXCEEDED and found the versions gone.
TEST_CASE(
    "FileModelStore: a Delete waiting for the model's lock ends, deleting nothing, when no "
    "longer wanted") {
  StoreWithM fixture;  // the default lock timeout (30 s)
  FileModelStore& store = *fixture.store;
  const int replica_fd = fixture.HoldLockOfM();
  std::atomic<bool> asked{false}, gave_up{false}, done{false};
  absl::Status waited;
  std::thread deleter([&] {
    waited = store
                 .Delete("m", 0,
                         [&] {
                           asked = true;
                           return gave_up ? absl::DeadlineExceededError("the deadline passed")
                                          : absl::OkStatus();
                         })
                 .status();
    done = true;
  });
  for (int i = 0; i < 10000 && !asked; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(asked.load());  // it is waiting for the lock and asking
  gave_up = true;
  for (int i = 0; i < 10000 && !done; ++i)  // a cap, not a timing assertion
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(done.load());
  close(replica_fd);
  deleter.join();
  CHECK(absl::IsDeadlineExceeded(waited));
  CHECK(store.ListVersions("m").value() == std::vector<int64_t>{1});
  // Asked once the lock is taken too: a caller that gave up while the lock came free (or before
  // it asked for it) deletes nothing.
  const auto late = store.Delete("m", 0, [] { return absl::CancelledError("gone"); });
  CHECK(absl::IsCancelled(late.status()));
  CHECK(store.ListVersions("m").value() == std::vector<int64_t>{1});
  CHECK(store.Delete("m", 0).ok());
}

TEST_CASE("FileModelStore: a thread of this process holding a model's lock too long fails others") {
  StoreWithM fixture(absl::Milliseconds(200));
  FileModelStore& store = *fixture.store;
  // A commit that stalls while holding the lock (its still_wanted is asked under it).
  std::atomic<bool> holding{false}, release{false};
  absl::StatusOr<int64_t> stalled;
  std::thread writer([&] {
    PutOptions options;
    options.still_wanted = [&] {
      holding = true;
      // Until released, or 5 s at most (so that a store whose waits are unbounded fails the
      // checks below instead of hanging).
      for (int i = 0; i < 5000 && !release; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      return absl::OkStatus();
    };
    stalled = store.Put("m", Content("m"), options);
  });
  while (!holding) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const absl::Status put = store.Put("m", Content("m")).status();
  CHECK(absl::IsUnavailable(put));
  CHECK_THAT(std::string(put.message()), Catch::Contains("another thread of this process"));
  CHECK(absl::IsUnavailable(store.Delete("m", 0).status()));
  CHECK(store.Put("other", Content("other")).ok());  // not held up by "m"'s lock
  release = true;
  writer.join();
  REQUIRE(stalled.ok());
  CHECK(store.ListVersions("m").value() == std::vector<int64_t>{1, *stalled});
}

TEMPLATE_TEST_CASE("Store Delete of one version, all versions, and no version reuse", "[store]",
                   FileFixture, MemoryFixture) {
  TestType fixture;
  ModelStore& store = *fixture.store;
  for (int i = 0; i < 4; ++i) REQUIRE(store.Put("m", Content("m")).ok());
  REQUIRE(store.Put("other", Content("other")).ok());

  auto deleted = store.Delete("m", 2);
  REQUIRE(deleted.ok());
  CHECK(*deleted == std::vector<int64_t>{2});
  CHECK(absl::IsNotFound(store.Get("m", 2).status()));
  CHECK(*store.ListVersions("m") == std::vector<int64_t>{1, 3, 4});

  // Deleting the latest makes the previous one the latest.
  REQUIRE(store.Delete("m", 4).ok());
  CHECK(*store.Get("m", 0) == "m@v3");

  auto all = store.Delete("m", 0);
  REQUIRE(all.ok());
  CHECK(*all == std::vector<int64_t>{1, 3});
  CHECK(absl::IsNotFound(store.ListVersions("m").status()));
  CHECK(absl::IsNotFound(store.Get("m", 0).status()));
  CHECK(*store.ListNames() == std::vector<std::string>{"other"});
  CHECK(*store.Get("other", 0) == "other@v1");

  // Versions are never reused: the next one is above every version ever handed out.
  auto again = store.Put("m", Content("m"));
  REQUIRE(again.ok());
  CHECK(*again == 5);
  CHECK(*store.Get("m", 0) == "m@v5");
}

TEMPLATE_TEST_CASE("make_bytes may call back into the store", "[store]", FileFixture,
                   MemoryFixture) {
  TestType fixture;
  ModelStore& store = *fixture.store;
  REQUIRE(store.Put("m", Content("m")).ok());
  auto v = store.Put("m", [&](int64_t version) -> absl::StatusOr<std::string> {
    auto versions = store.ListVersions("m");
    if (!versions.ok()) return versions.status();
    return absl::StrCat("seen ", versions->size(), " at v", version);
  });
  REQUIRE(v.ok());
  CHECK(*store.Get("m", *v) == "seen 1 at v2");
}

TEMPLATE_TEST_CASE("Concurrent Puts from several threads get distinct versions", "[store]",
                   FileFixture, MemoryFixture) {
  TestType fixture;
  ModelStore& store = *fixture.store;
  constexpr int kThreads = 6;
  constexpr int kPerThread = 15;
  std::vector<std::vector<int64_t>> got(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto v = store.Put("shared", Content(absl::StrCat("t", t)));
        if (!v.ok()) {
          failures++;
          continue;
        }
        got[t].push_back(*v);
        // Readers run alongside writers and never see a partial version.
        auto latest = store.Get("shared", 0);
        if (!latest.ok() || latest->find("@v") == std::string::npos) failures++;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(failures.load() == 0);
  std::set<int64_t> all;
  for (int t = 0; t < kThreads; ++t) {
    for (int64_t v : got[t]) {
      CHECK(all.insert(v).second);
      CHECK(*store.Get("shared", v) == absl::StrCat("t", t, "@v", v));
    }
  }
  CHECK(all.size() == static_cast<std::size_t>(kThreads * kPerThread));
  CHECK(*all.begin() == 1);
  CHECK(*all.rbegin() == kThreads * kPerThread);
  CHECK(store.ListVersions("shared")->size() == all.size());
}

// ---- FileModelStore only
// -------------------------------------------------------------------------

TEST_CASE("FileModelStore lays out <root>/<name>/<version>/model.pb") {
  TempDir dir;
  const std::string root = dir.path() + "/a/b/models";  // parents are created
  auto store = FileModelStore::Open(root + "/");
  REQUIRE(store.ok());
  CHECK((*store)->root() == root);
  REQUIRE((*store)->Put("iris", Content("iris")).ok());
  REQUIRE((*store)->Put("iris", Content("iris")).ok());
  CHECK(fs::is_regular_file(root + "/iris/1/model.pb"));
  CHECK(fs::is_regular_file(root + "/iris/2/model.pb"));
  // No temp files remain after a successful write; the model directory's lock file stays.
  CHECK(fs::is_regular_file(root + "/iris/write.lock"));
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(root)) files += entry.is_regular_file();
  CHECK(files == 3);
}

TEST_CASE("FileModelStore::Open reports bad roots as statuses") {
  TempDir dir;
  CHECK(absl::IsInvalidArgument(FileModelStore::Open("").status()));
  WriteFile(dir.path() + "/plainfile", "x");
  auto on_file = FileModelStore::Open(dir.path() + "/plainfile");
  REQUIRE_FALSE(on_file.ok());
  CHECK(std::string(on_file.status().message()).find("plainfile") != std::string::npos);
  auto below_file = FileModelStore::Open(dir.path() + "/plainfile/sub");
  REQUIRE_FALSE(below_file.ok());
  CHECK(std::string(below_file.status().message()).find("plainfile/sub") != std::string::npos);
}

TEST_CASE("FileModelStore ignores temp files, empty version dirs and foreign entries") {
  TempDir dir;
  auto opened = FileModelStore::Open(dir.path());
  REQUIRE(opened.ok());
  FileModelStore& store = **opened;
  REQUIRE(store.Put("m", Content("m")).ok());
  const std::string m = dir.path() + "/m";
  fs::create_directories(m + "/2");  // reserved, writer crashed before writing
  fs::create_directories(m + "/3");  // writer crashed mid-write
  WriteFile(m + "/3/model.pb.tmp-abc123", "torn half of a mode");
  fs::create_directories(m + "/007");  // not canonical
  WriteFile(m + "/007/model.pb", "should be ignored");
  fs::create_directories(m + "/abc");  // not a number
  WriteFile(m + "/abc/model.pb", "should be ignored");
  fs::create_directories(m + "/-4");
  WriteFile(m + "/-4/model.pb", "should be ignored");
  WriteFile(m + "/5", "a file, not a directory");
  fs::create_directories(m + "/6/model.pb");         // model.pb is a directory
  WriteFile(dir.path() + "/README", "not a model");  // invalid name at the root
  WriteFile(dir.path() + "/stray", "valid name, but a file");
  fs::create_directories(dir.path() + "/empty-model/1");  // a model with no complete version
  fs::create_directories(dir.path() + "/Upper/1");
  WriteFile(dir.path() + "/Upper/1/model.pb", "invalid name");

  CHECK(*store.ListVersions("m") == std::vector<int64_t>{1});
  CHECK(*store.Get("m", 0) == "m@v1");
  CHECK(absl::IsNotFound(store.Get("m", 3).status()));
  CHECK(absl::IsNotFound(store.Get("m", 6).status()));
  CHECK(*store.ListNames() == std::vector<std::string>{"m"});
  CHECK(absl::IsNotFound(store.ListVersions("stray").status()));
  CHECK(absl::IsNotFound(store.Get("stray", 1).status()));
  CHECK(absl::IsNotFound(store.ListVersions("empty-model").status()));

  // The next version goes above every numbered entry, complete or not.
  auto next = store.Put("m", Content("m"));
  REQUIRE(next.ok());
  CHECK(*next == 7);
  CHECK(*store.Get("m", 0) == "m@v7");
  CHECK(*store.ListVersions("m") == std::vector<int64_t>{1, 7});
}

TEST_CASE(
    "FileModelStore::CleanUp removes crashed writes, never complete versions or live writers") {
  TempDir dir;
  auto opened = FileModelStore::Open(dir.path());
  REQUIRE(opened.ok());
  FileModelStore& store = **opened;
  REQUIRE(store.Put("m", Content("m")).ok());  // version 1, complete
  REQUIRE(store.Put("m", Content("m")).ok());  // version 2, complete
  const std::string m = dir.path() + "/m";
  fs::create_directories(m + "/3");  // reserved, writer crashed before writing
  fs::create_directories(m + "/4");  // writer crashed mid-write
  WriteFile(m + "/4/model.pb.tmp-abc123", "torn half of a mode");
  WriteFile(m + "/2/model.pb.tmp-zzz999", "stray temp beside a complete version");
  fs::create_directories(m + "/5");  // a live writer: its temp file is locked
  WriteFile(m + "/5/model.pb.tmp-live01", "being written");
  const int live_fd = open((m + "/5/model.pb.tmp-live01").c_str(), O_RDONLY);
  REQUIRE(live_fd >= 0);
  REQUIRE(flock(live_fd, LOCK_EX) == 0);
  fs::create_directories(m + "/abc");  // foreign entries are never touched
  WriteFile(m + "/abc/model.pb.tmp-x", "foreign");
  fs::create_directories(dir.path() + "/Upper/7");

  auto report = store.CleanUp();
  REQUIRE(report.ok());
  CHECK(report->temp_files_removed == 2);
  CHECK(report->temp_bytes_removed ==
        std::string("torn half of a mode").size() +
            std::string("stray temp beside a complete version").size());
  CHECK(report->version_dirs_removed == 2);  // 3 and 4
  CHECK_FALSE(fs::exists(m + "/3"));
  CHECK_FALSE(fs::exists(m + "/4"));
  CHECK_FALSE(fs::exists(m + "/2/model.pb.tmp-zzz999"));
  CHECK(fs::exists(m + "/5/model.pb.tmp-live01"));  // the live writer keeps its file
  CHECK(fs::exists(m + "/abc/model.pb.tmp-x"));
  CHECK(fs::exists(dir.path() + "/Upper/7"));
  CHECK(*store.ListVersions("m") == std::vector<int64_t>{1, 2});
  CHECK(*store.Get("m", 2) == "m@v2");

  // Numbers of removed directories are never reused; the live writer's 5 is still reserved.
  auto next = store.Put("m", Content("m"));
  REQUIRE(next.ok());
  CHECK(*next == 6);
  close(live_fd);

  // Once the writer is gone (lock released), a second cleanup removes what it left.
  auto again = store.CleanUp();
  REQUIRE(again.ok());
  CHECK(again->temp_files_removed == 1);
  CHECK(again->version_dirs_removed == 1);
  CHECK_FALSE(fs::exists(m + "/5"));
  CHECK(*store.ListVersions("m") == std::vector<int64_t>{1, 2, 6});
  auto clean = store.CleanUp();
  REQUIRE(clean.ok());
  CHECK(clean->temp_files_removed == 0);
  CHECK(clean->version_dirs_removed == 0);
}

TEST_CASE("FileModelStore: the highest removed version stays reserved across cleanup and delete") {
  TempDir dir;
  auto opened = FileModelStore::Open(dir.path());
  REQUIRE(opened.ok());
  FileModelStore& store = **opened;
  REQUIRE(*store.Put("m", Content("m")) == 1);
  fs::create_directories(dir.path() + "/m/9");  // crashed write with a high number
  REQUIRE(store.CleanUp().ok());
  CHECK_FALSE(fs::exists(dir.path() + "/m/9"));
  CHECK(*store.Put("m", Content("m")) == 10);
  // Deleting every version leaves no version directory, and still no reuse.
  REQUIRE(store.Delete("m", 0).ok());
  for (const auto& entry : fs::directory_iterator(dir.path() + "/m")) {
    CHECK_FALSE(entry.is_directory());
  }
  CHECK(absl::IsNotFound(store.ListVersions("m").status()));
  CHECK(*store.ListNames() == std::vector<std::string>{});
  CHECK(*store.Put("m", Content("m")) == 11);
  // A second store instance (another replica) sees the same high-water mark.
  auto other = FileModelStore::Open(dir.path());
  REQUIRE(other.ok());
  REQUIRE((*other)->Delete("m", 11).ok());
  CHECK(*(*other)->Put("m", Content("m")) == 12);
}

TEST_CASE("FileModelStore::OpenAndCleanUp says what it removed") {
  TempDir dir;
  fs::create_directories(dir.path() + "/m/1");
  WriteFile(dir.path() + "/m/1/model.pb", "complete");
  fs::create_directories(dir.path() + "/m/2");
  WriteFile(dir.path() + "/m/2/model.pb.tmp-dead00", "torn");
  std::ostringstream log;
  auto store = FileModelStore::OpenAndCleanUp(dir.path(), log);
  REQUIRE(store.ok());
  CHECK(log.str().find("removed 1 abandoned temp file(s) (4 bytes) and 1 incomplete version "
                       "directory") != std::string::npos);
  CHECK(*(*store)->Get("m", 0) == "complete");
  std::ostringstream quiet;
  REQUIRE(FileModelStore::OpenAndCleanUp(dir.path(), quiet).ok());
  CHECK(quiet.str().empty());
}

// One model directory the server could not read (another owner, mode 700) made ListNames, hence
// every ListModels, fail, and stopped the startup cleanup there. A symlink loop stands in for it
// here: it cannot be read, whatever the user.
TEST_CASE("FileModelStore: one unreadable model or version neither fails listings nor cleanup") {
  TempDir dir;
  auto opened = FileModelStore::Open(dir.path());
  REQUIRE(opened.ok());
  FileModelStore& store = **opened;
  REQUIRE(store.Put("a", Content("a")).ok());
  REQUIRE(store.Put("c", Content("c")).ok());
  REQUIRE(store.Put("d", Content("d")).ok());
  fs::create_symlink("b", dir.path() + "/b");    // the model directory cannot be read
  fs::create_symlink("2", dir.path() + "/d/2");  // nor version 2 of d
  fs::create_directories(dir.path() + "/c/2");   // a crashed write after them
  fs::create_directories(dir.path() + "/d/3");   // another, beside d's unreadable version

  auto names = store.ListNames();
  REQUIRE(names.ok());
  CHECK(*names == std::vector<std::string>{"a", "b", "c", "d"});
  const auto b = store.ListVersions("b");
  CHECK_FALSE(b.ok());
  CHECK_FALSE(absl::IsNotFound(b.status()));
  // d's version 2 is listed, not skipped: its latest must not silently become version 1.
  CHECK(*store.ListVersions("d") == std::vector<int64_t>{1, 2});
  const auto latest = store.Get("d", 0);
  CHECK_FALSE(latest.ok());
  CHECK_FALSE(absl::IsNotFound(latest.status()));
  CHECK(*store.Get("d", 1) == "d@v1");

  auto report = store.CleanUp();
  REQUIRE(report.ok());
  CHECK(report->version_dirs_removed == 2);  // c/2 and d/3
  CHECK_FALSE(fs::exists(dir.path() + "/c/2"));
  CHECK_FALSE(fs::exists(dir.path() + "/d/3"));
  REQUIRE(report->skipped.size() == 1);  // d/2 is not a directory to clean up (a symlink)
  CHECK_THAT(report->skipped[0], Catch::Contains("\"b\""));
}

TEST_CASE("FileModelStore turns filesystem errors into statuses naming the path") {
  TempDir dir;
  auto opened = FileModelStore::Open(dir.path());
  REQUIRE(opened.ok());
  FileModelStore& store = **opened;
  WriteFile(dir.path() + "/blocked", "a file where the model directory should be");
  auto put = store.Put("blocked", Content("x"));
  REQUIRE_FALSE(put.ok());
  CHECK(put.status().code() == absl::StatusCode::kInternal);
  CHECK(std::string(put.status().message()).find(dir.path() + "/blocked") != std::string::npos);
  CHECK(std::string(put.status().message()).find("Not a directory") != std::string::npos);

  // The root vanishing under a running store is an error, not a crash.
  TempDir other;
  auto doomed = FileModelStore::Open(other.path() + "/root");
  REQUIRE(doomed.ok());
  REQUIRE((*doomed)->Put("m", Content("m")).ok());
  fs::remove_all(other.path() + "/root");
  auto names = (*doomed)->ListNames();
  REQUIRE_FALSE(names.ok());
  CHECK(std::string(names.status().message()).find(other.path() + "/root") != std::string::npos);
  CHECK(absl::IsNotFound((*doomed)->Get("m", 0).status()));
  CHECK_FALSE((*doomed)->Put("m", Content("m")).ok());
}

TEST_CASE("FileModelStore: a process crashing inside Put leaves the old version intact") {
  TempDir dir;
  auto opened = FileModelStore::Open(dir.path());
  REQUIRE(opened.ok());
  REQUIRE((*opened)->Put("m", Content("old")).ok());

  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child dies after reserving version 2 and writing part of a temp file: a real crash.
    auto store = FileModelStore::Open(dir.path());
    if (store.ok()) {
      (void)(*store)->Put("m", [&](int64_t version) -> absl::StatusOr<std::string> {
        WriteFile(absl::StrCat(dir.path(), "/m/", version, "/model.pb.tmp-crash"), "torn");
        _exit(0);
      });
    }
    _exit(1);
  }
  int wstatus = 0;
  REQUIRE(waitpid(child, &wstatus, 0) == child);
  REQUIRE(WIFEXITED(wstatus));
  REQUIRE(WEXITSTATUS(wstatus) == 0);

  FileModelStore& store = **opened;
  CHECK(fs::exists(dir.path() + "/m/2/model.pb.tmp-crash"));
  CHECK(*store.ListVersions("m") == std::vector<int64_t>{1});
  CHECK(*store.Get("m", 0) == "old@v1");
  auto next = store.Put("m", Content("new"));
  REQUIRE(next.ok());
  CHECK(*next == 3);
  CHECK(*store.Get("m", 0) == "new@v3");
  CHECK(*store.Get("m", 1) == "old@v1");
}

TEST_CASE("Two FileModelStore instances on one directory converge") {
  TempDir dir;
  auto a = FileModelStore::Open(dir.path());
  auto b = FileModelStore::Open(dir.path());
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(*(*a)->Put("m", Content("a")) == 1);
  CHECK(*(*b)->Put("m", Content("b")) == 2);
  CHECK(*(*a)->Put("m", Content("a")) == 3);
  CHECK(*(*b)->Get("m", 0) == "a@v3");
  CHECK(*(*a)->Get("m", 2) == "b@v2");
  REQUIRE((*b)->Delete("m", 3).ok());
  CHECK(*(*a)->Get("m", 0) == "b@v2");
  CHECK(*(*a)->ListVersions("m") == *(*b)->ListVersions("m"));
  CHECK(*(*a)->ListNames() == *(*b)->ListNames());
  CHECK(*(*a)->Put("m", Content("a")) == 4);  // 3 is never reused
}

TEST_CASE("FileModelStore: concurrent Puts from several processes get distinct versions") {
  TempDir dir;
  constexpr int kProcesses = 4;
  constexpr int kPerProcess = 12;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      auto store = FileModelStore::Open(dir.path());
      if (!store.ok()) _exit(2);
      for (int i = 0; i < kPerProcess; ++i) {
        if (!(*store)->Put("shared", Content(absl::StrCat("p", p))).ok()) _exit(3);
      }
      _exit(0);
    }
    children.push_back(child);
  }
  for (pid_t child : children) {
    int wstatus = 0;
    REQUIRE(waitpid(child, &wstatus, 0) == child);
    CHECK(WIFEXITED(wstatus));
    CHECK(WEXITSTATUS(wstatus) == 0);
  }
  auto store = FileModelStore::Open(dir.path());
  REQUIRE(store.ok());
  auto versions = (*store)->ListVersions("shared");
  REQUIRE(versions.ok());
  REQUIRE(versions->size() == kProcesses * kPerProcess);
  std::vector<int> per_process(kProcesses, 0);
  for (std::size_t i = 0; i < versions->size(); ++i) {
    CHECK((*versions)[i] == static_cast<int64_t>(i + 1));
    auto bytes = (*store)->Get("shared", (*versions)[i]);
    REQUIRE(bytes.ok());
    REQUIRE(bytes->size() > 1);
    const int p = (*bytes)[1] - '0';
    REQUIRE(p >= 0);
    REQUIRE(p < kProcesses);
    CHECK(*bytes == absl::StrCat("p", p, "@v", (*versions)[i]));
    per_process[p]++;
  }
  for (int count : per_process) CHECK(count == kPerProcess);
}

TEST_CASE("FileModelStore Delete removes files without following symlinks") {
  TempDir dir;
  auto opened = FileModelStore::Open(dir.path() + "/root");
  REQUIRE(opened.ok());
  FileModelStore& store = **opened;
  REQUIRE(store.Put("m", Content("m")).ok());
  REQUIRE(store.Put("m", Content("m")).ok());
  // A precious file outside the store, linked from inside a version directory.
  WriteFile(dir.path() + "/precious", "keep me");
  fs::create_symlink(dir.path() + "/precious", dir.path() + "/root/m/1/link");
  auto deleted = store.Delete("m", 0);
  REQUIRE(deleted.ok());
  CHECK(*deleted == std::vector<int64_t>{1, 2});
  CHECK(fs::exists(dir.path() + "/precious"));
  CHECK_FALSE(fs::exists(dir.path() + "/root/m/1"));
  CHECK_FALSE(fs::exists(dir.path() + "/root/m/2"));
  // The highest version number is kept as the high-water mark, not as an empty directory.
  CHECK(fs::is_regular_file(dir.path() + "/root/m/highest-version"));
  CHECK(*store.Put("m", Content("m")) == 3);
}

}  // namespace
}  // namespace maas::store
