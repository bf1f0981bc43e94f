// Tests of ModelRepository: listing reads metadata without loading models; the byte budget;
// Put checks the StopToken right before writing and right before committing.
#include "common/registry/model_repository.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "common/store/file_model_store.h"
#include "common/store/memory_model_store.h"
#include "tests/common/store/temp_dir.h"

namespace maas::registry {
namespace {

// A "model" is its ModelInfo; the stored bytes are {1: ModelInfo, 2: padding} like the services'
// Stored*Model messages.
struct Loaded {
  common::v1::ModelInfo model_info;
  const common::v1::ModelInfo& info() const { return model_info; }
};

std::string Field(int number, const std::string& payload) {
  std::string out(1, static_cast<char>(number << 3 | 2));
  size_t n = payload.size();
  do {
    out.push_back(static_cast<char>((n & 0x7f) | (n > 0x7f ? 0x80 : 0)));
    n >>= 7;
  } while (n > 0);
  return out + payload;
}

// The test loader: the stored ModelInfo.
absl::StatusOr<std::shared_ptr<const Loaded>> ParseLoaded(const store::StoredBytes& bytes) {
  MAAS_ASSIGN_OR_RETURN(common::v1::ModelInfo info, ParseStoredInfo(bytes.str()));
  auto loaded = std::make_shared<Loaded>();
  loaded->model_info = info;
  return std::shared_ptr<const Loaded>(std::move(loaded));
}

struct Fixture {
  explicit Fixture(int64_t cache_bytes = 0)
      : repository(
            &store,
            [this](store::StoredBytes bytes) -> absl::StatusOr<std::shared_ptr<const Loaded>> {
              loads.fetch_add(1);
              return ParseLoaded(bytes);
            },
            absl::ZeroDuration(), cache_bytes) {}

  absl::StatusOr<std::shared_ptr<const Loaded>> Put(const std::string& name, size_t padding,
                                                    const exec::StopToken& stop = {}) {
    return repository.Put(
        name,
        [&](int64_t version) -> absl::StatusOr<std::string> {
          common::v1::ModelInfo info;
          FillModelInfo(name, version, common::v1::GENERATIVE, "uniform", {}, "", absl::Now(),
                        &info);
          return Field(1, info.SerializeAsString()) + Field(2, std::string(padding, 'p'));
        },
        stop);
  }

  store::MemoryModelStore store;
  std::atomic<int> loads{0};
  ModelRepository<Loaded> repository;
};

TEST_CASE("ListModels reads each version's metadata without loading a model") {
  Fixture f;
  REQUIRE(f.Put("a", 10).ok());
  REQUIRE(f.Put("a", 10).ok());
  REQUIRE(f.Put("b", 5000).ok());
  const int loads_after_puts = f.loads.load();
  common::v1::ListModelsRequest request;
  request.set_all_versions(true);
  auto listed = f.repository.List(request);
  REQUIRE(listed.ok());
  REQUIRE(listed->models_size() == 3);
  CHECK(listed->models(0).name() == "a");
  CHECK(listed->models(1).version() == 2);
  CHECK(listed->models(2).name() == "b");
  CHECK(listed->models(2).size_bytes() > 5000);
  CHECK(f.loads.load() == loads_after_puts);  // nothing was loaded
  // A deleted version disappears from the listing.
  common::v1::DeleteModelRequest del;
  del.set_name("a");
  del.set_version(2);
  REQUIRE(f.repository.Delete(del).ok());
  listed = f.repository.List(request);
  REQUIRE(listed.ok());
  CHECK(listed->models_size() == 2);
  // A file that is not a stored model is not fatal: it is named in unreadable_versions.
  REQUIRE(
      f.store.Put("junk", [](int64_t) -> absl::StatusOr<std::string> { return "\xff\xff"; }).ok());
  listed = f.repository.List(request);
  REQUIRE(listed.ok());
  CHECK(listed->models_size() == 2);
  REQUIRE(listed->unreadable_versions_size() == 1);
  CHECK(listed->unreadable_versions(0).name() == "junk");
}

// ListModels with all_versions false used to leave out a model whose latest version was damaged:
// the model vanished from the listing while GetModel on it answered DATA_LOSS.
TEST_CASE("ListModels names a damaged latest version instead of hiding its model") {
  Fixture f;
  REQUIRE(f.Put("fine", 10).ok());
  REQUIRE(f.Put("damaged", 10).ok());
  REQUIRE(f.store.Put("damaged", [](int64_t) -> absl::StatusOr<std::string> { return ""; }).ok());
  for (const bool all_versions : {false, true}) {
    CAPTURE(all_versions);
    common::v1::ListModelsRequest request;
    request.set_all_versions(all_versions);
    const auto listed = f.repository.List(request);
    REQUIRE(listed.ok());
    // Version 1 of "damaged" is readable, but it is not the latest: only all_versions lists it.
    REQUIRE(listed->models_size() == (all_versions ? 2 : 1));
    CHECK(listed->models(listed->models_size() - 1).name() == "fine");
    REQUIRE(listed->unreadable_versions_size() == 1);
    const common::v1::UnreadableVersion& bad = listed->unreadable_versions(0);
    CHECK(bad.name() == "damaged");
    CHECK(bad.version() == 2);
    CHECK(bad.code() == "DATA_LOSS");
    CHECK_THAT(bad.message(), Catch::Contains("ModelInfo"));
    // Calls on it answer the same code.
    common::v1::ModelRef ref;
    ref.set_name("damaged");
    const auto got = f.repository.Get(ref);
    CHECK(absl::IsDataLoss(got.status()));
  }
  // Deleting the damaged version clears the entry.
  common::v1::DeleteModelRequest del;
  del.set_name("damaged");
  del.set_version(2);
  REQUIRE(f.repository.Delete(del).ok());
  const auto listed = f.repository.List({});
  REQUIRE(listed.ok());
  CHECK(listed->unreadable_versions_size() == 0);
  CHECK(listed->models_size() == 2);
}

// An audit found damaged files silent: a server started on them printed nothing, and ListModels
// left them out without a word.
TEST_CASE("UnreadableVersions names each stored version whose metadata cannot be read") {
  Fixture f;
  REQUIRE(f.Put("good", 10).ok());
  CHECK(f.repository.UnreadableVersions().empty());
  REQUIRE(f.Put("twover", 10).ok());
  REQUIRE(f.store.Put("twover", [](int64_t) -> absl::StatusOr<std::string> { return ""; }).ok());
  REQUIRE(
      f.store.Put("junk", [](int64_t) -> absl::StatusOr<std::string> { return "\xff\xff"; }).ok());
  const std::vector<std::string> lines = f.repository.UnreadableVersions();
  CAPTURE(lines);
  REQUIRE(lines.size() == 2);
  CHECK_THAT(lines[0], Catch::Contains("model \"junk\" version 1") && Catch::Contains("DATA_LOSS"));
  CHECK_THAT(lines[1],
             Catch::Contains("model \"twover\" version 2") && Catch::Contains("DATA_LOSS"));
}

TEST_CASE(
    "ReportUnreadableVersionsInBackground writes the lines, prefixed, off the caller's thread") {
  std::ostringstream out;
  {
    Fixture f;
    REQUIRE(f.Put("good", 10).ok());
    REQUIRE(f.store.Put("bad", [](int64_t) -> absl::StatusOr<std::string> { return ""; }).ok());
    f.repository.ReportUnreadableVersionsInBackground("server: WARNING: ", &out);
    f.repository.WaitForReport();
  }
  const std::string text = out.str();
  CHECK_THAT(
      text, Catch::StartsWith("server: WARNING: model \"bad\" version 1") && Catch::EndsWith("\n"));
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
}

TEST_CASE("Put commits nothing once the StopToken says the caller gave up") {
  Fixture f;
  const exec::StopToken expired(
      [] { return absl::DeadlineExceededError("the call's deadline passed"); });
  CHECK(absl::IsDeadlineExceeded(f.Put("late", 10, expired).status()));
  CHECK_FALSE(f.store.ListVersions("late").ok());
  CHECK(f.Put("late", 10).ok());
}

TEST_CASE("Delete deletes nothing once the StopToken says the caller gave up") {
  Fixture f;
  REQUIRE(f.Put("m", 10).ok());
  const exec::StopToken expired(
      [] { return absl::DeadlineExceededError("the call's deadline passed"); });
  common::v1::DeleteModelRequest request;
  request.set_name("m");
  CHECK(absl::IsDeadlineExceeded(f.repository.Delete(request, expired).status()));
  CHECK(f.store.ListVersions("m").ok());
  CHECK(f.repository.Delete(request).ok());
  CHECK_FALSE(f.store.ListVersions("m").ok());
}

// The StopToken is asked again by the store right before the version becomes visible: a wait for
// the model's lock (another writer committing) can outlast the caller's deadline.
TEST_CASE("Put commits nothing when the caller gives up while the store commits") {
  Fixture f;
  std::atomic<int> checks{0};
  // OK when Put starts and once the bytes are ready; the deadline passes before the commit.
  const exec::StopToken expires_at_commit([&] {
    return checks.fetch_add(1) < 2 ? absl::OkStatus()
                                   : absl::DeadlineExceededError("the call's deadline passed");
  });
  CHECK(absl::IsDeadlineExceeded(f.Put("late", 10, expires_at_commit).status()));
  CHECK(checks.load() == 3);
  CHECK_FALSE(f.store.ListVersions("late").ok());
}

// A generative model above 2 GiB serialized to an empty string, which the store wrote as the new
// latest version: every call on the model answered DATA_LOSS until it was deleted by hand.
TEST_CASE("Put stores nothing whose bytes would not load back as that model and version") {
  Fixture f;
  REQUIRE(f.Put("m", 10).ok());
  const auto empty =
      f.repository.Put("m", [](int64_t) -> absl::StatusOr<std::string> { return std::string(); });
  CHECK(absl::IsInternal(empty.status()));
  CHECK_THAT(std::string(empty.status().message()), Catch::Contains("would not load back"));
  const auto elsewhere = f.repository.Put("m", [](int64_t version) -> absl::StatusOr<std::string> {
    common::v1::ModelInfo info;
    FillModelInfo("other", version, common::v1::GENERATIVE, "uniform", {}, "", absl::Now(), &info);
    return Field(1, info.SerializeAsString());
  });
  CHECK(absl::IsInternal(elsewhere.status()));
  CHECK_THAT(std::string(elsewhere.status().message()), Catch::Contains("\"other\""));
  const auto versions = f.store.ListVersions("m");
  REQUIRE(versions.ok());
  CHECK(*versions == std::vector<int64_t>{1});
  REQUIRE(f.Put("m", 10).ok());  // the next good version still gets the next number
}

// A model directory copied by hand (cp -r iris iris-copy): the listing reported its versions
// DATA_LOSS, but calls served them, under the name of the model they were copied from.
TEST_CASE("Get answers DATA_LOSS for a stored file that names another model or version") {
  Fixture f;
  REQUIRE(f.Put("iris", 10).ok());
  const auto original = f.store.Get("iris", 1);
  REQUIRE(original.ok());
  REQUIRE(
      f.store.Put("iris-copy", [&](int64_t) -> absl::StatusOr<std::string> { return *original; })
          .ok());
  common::v1::ModelRef ref;
  ref.set_name("iris-copy");
  for (int64_t version : {0, 1}) {
    ref.set_version(version);
    const auto got = f.repository.Get(ref);
    CHECK(absl::IsDataLoss(got.status()));
    CHECK_THAT(std::string(got.status().message()), Catch::Contains("holds model \"iris\""));
  }
  ref.set_name("iris");
  CHECK(f.repository.Get(ref).ok());
}

// A store that counts the stored versions read whole.
class CountingStore : public store::MemoryModelStore {
 public:
  absl::StatusOr<std::string> Get(std::string_view name, int64_t version) override {
    reads.fetch_add(1);
    return MemoryModelStore::Get(name, version);
  }
  std::atomic<int> reads{0};
};

// The 2026-12-06 amplification hunt: the first ListModels after a Train read the new version's
// whole file for its ModelInfo (a 537 MB hashing model: +492 MB and 0.5 s of CPU per 4-byte
// request, each concurrent listing its own read, on gRPC's threads). The version a Put writes is
// listed from what it wrote.
TEST_CASE("List answers a version this repository wrote without reading it back") {
  CountingStore store;
  ModelRepository<Loaded> repository(&store, ParseLoaded, absl::ZeroDuration());
  for (int i = 0; i < 2; ++i) {
    REQUIRE(repository
                .Put("m",
                     [&](int64_t version) -> absl::StatusOr<std::string> {
                       common::v1::ModelInfo info;
                       FillModelInfo("m", version, common::v1::GENERATIVE, "uniform", {}, "",
                                     absl::Now(), &info);
                       return Field(1, info.SerializeAsString()) + Field(2, std::string(1000, 'p'));
                     })
                .ok());
  }
  const int reads = store.reads.load();
  common::v1::ListModelsRequest request;
  request.set_all_versions(true);
  const auto listed = repository.List(request, common::v1::GENERATIVE);
  REQUIRE(listed.ok());
  REQUIRE(listed->models_size() == 2);
  CHECK(listed->models(1).version() == 2);
  CHECK(listed->models(1).size_bytes() == static_cast<int64_t>(store.Get("m", 2)->size()));
  CHECK(store.reads.load() == reads + 1);  // the one Get just above
}

// A FileModelStore that counts the bytes read from it, by Get and through Open's readers.
class ByteCountingStore : public store::ModelStore {
 public:
  explicit ByteCountingStore(const std::string& root)
      : inner_(std::move(store::FileModelStore::Open(root)).value()) {}
  using ModelStore::Put;
  absl::StatusOr<int64_t> Put(std::string_view name, const store::MakeBytesFn& make_bytes,
                              const store::PutOptions& options) override {
    return inner_->Put(name, make_bytes, options);
  }
  absl::StatusOr<std::string> Get(std::string_view name, int64_t version) override {
    absl::StatusOr<std::string> bytes = inner_->Get(name, version);
    if (bytes.ok()) read_bytes.fetch_add(static_cast<int64_t>(bytes->size()));
    return bytes;
  }
  absl::StatusOr<std::unique_ptr<store::VersionReader>> Open(std::string_view name,
                                                             int64_t version) override {
    MAAS_ASSIGN_OR_RETURN(std::unique_ptr<store::VersionReader> inner, inner_->Open(name, version));
    return std::unique_ptr<store::VersionReader>(new Reader(std::move(inner), &read_bytes));
  }
  absl::StatusOr<std::vector<int64_t>> ListVersions(std::string_view name) override {
    return inner_->ListVersions(name);
  }
  using ModelStore::ListNames;
  absl::StatusOr<std::vector<std::string>> ListNames(const NameRange& range) override {
    return inner_->ListNames(range);
  }
  using ModelStore::Delete;
  absl::StatusOr<std::vector<int64_t>> Delete(
      std::string_view name, int64_t version,
      const std::function<absl::Status()>& still_wanted) override {
    return inner_->Delete(name, version, still_wanted);
  }
  std::atomic<int64_t> read_bytes{0};

 private:
  class Reader : public store::VersionReader {
   public:
    Reader(std::unique_ptr<store::VersionReader> inner, std::atomic<int64_t>* count)
        : inner_(std::move(inner)), count_(count) {}
    int64_t size() const override { return inner_->size(); }
    absl::StatusOr<std::size_t> ReadAt(int64_t offset, char* out, std::size_t n) override {
      absl::StatusOr<std::size_t> got = inner_->ReadAt(offset, out, n);
      if (got.ok()) count_->fetch_add(static_cast<int64_t>(*got));
      return got;
    }

   private:
    std::unique_ptr<store::VersionReader> inner_;
    std::atomic<int64_t>* count_;
  };
  std::unique_ptr<store::FileModelStore> inner_;
};

// The stored form of version `version` of `name` with `padding` bytes of parameters (field 2)
// and a small field 3 after them, as the services' Stored*Model messages are laid out.
std::string StoredModel(const std::string& name, int64_t version, std::size_t padding) {
  common::v1::ModelInfo info;
  google::protobuf::Map<std::string, std::string> labels;
  labels["k"] = "v";
  FillModelInfo(name, version, common::v1::GENERATIVE, "uniform", labels, "d",
                absl::FromUnixSeconds(1800000000), &info);
  return Field(1, info.SerializeAsString()) + Field(2, std::string(padding, 'p')) +
         Field(3, "summary");
}

// A listing read every version it had not written whole, for field 1 (another replica's
// versions, every version after a restart, and the start-up report of unreadable versions: a
// 537 MB model cost 0.5 GB and 0.5 s of CPU per listing).
TEST_CASE("List reads another writer's versions' metadata without reading their parameters") {
  store::testing::TempDir dir;
  ByteCountingStore store(dir.path());
  constexpr std::size_t kPadding = 8 << 20;
  for (int64_t version = 1; version <= 2; ++version) {
    REQUIRE(store
                .Put("big",
                     [&](int64_t v) -> absl::StatusOr<std::string> {
                       return StoredModel("big", v, kPadding);
                     })
                .ok());
  }
  // The parameters run past the end of the file: named as unreadable, as reading it whole did.
  REQUIRE(store
              .Put("cut",
                   [&](int64_t v) -> absl::StatusOr<std::string> {
                     const std::string whole = StoredModel("cut", v, kPadding);
                     return whole.substr(0, whole.size() - 1000);
                   })
              .ok());
  ModelRepository<Loaded> repository(&store, ParseLoaded, absl::ZeroDuration());
  common::v1::ListModelsRequest request;
  request.set_all_versions(true);
  const auto listed = repository.List(request, common::v1::GENERATIVE);
  REQUIRE(listed.ok());
  REQUIRE(listed->models_size() == 2);
  for (int i = 0; i < 2; ++i) {
    const common::v1::ModelInfo& info = listed->models(i);
    CHECK(info.name() == "big");
    CHECK(info.version() == i + 1);
    CHECK(info.labels().at("k") == "v");
    CHECK(info.size_bytes() == static_cast<int64_t>(StoredModel("big", i + 1, kPadding).size()));
  }
  REQUIRE(listed->unreadable_versions_size() == 1);
  CHECK(listed->unreadable_versions(0).name() == "cut");
  CHECK(listed->unreadable_versions(0).code() == "DATA_LOSS");
  // Three versions of 8 MB: a few reads of kStoredInfoReadBytes each, not 24 MB.
  CAPTURE(store.read_bytes.load());
  CHECK(store.read_bytes.load() <= 3 * 3 * kStoredInfoReadBytes);
  // The start-up report reads the same way.
  store.read_bytes = 0;
  ModelRepository<Loaded> restarted(&store, ParseLoaded, absl::ZeroDuration());
  const std::vector<std::string> lines = restarted.UnreadableVersions();
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Catch::Contains("model \"cut\" version 1"));
  CHECK(store.read_bytes.load() <= 3 * 3 * kStoredInfoReadBytes);
}

// A reader that fails every read, as a volume with an I/O error does.
class FailingReader : public store::VersionReader {
 public:
  int64_t size() const override { return 1000; }
  absl::StatusOr<std::size_t> ReadAt(int64_t, char*, std::size_t) override {
    return absl::UnavailableError("model store: read \"x\" failed: Input/output error");
  }
};

TEST_CASE("ParseStoredInfo from a reader answers the reader's error, not DATA_LOSS") {
  FailingReader reader;
  const auto info = ParseStoredInfo(&reader);
  CHECK(absl::IsUnavailable(info.status()));
  CHECK_THAT(std::string(info.status().message()), Catch::Contains("Input/output error"));
}

// A reader of bytes in memory (a store's default Open reads them whole).
TEST_CASE("ParseStoredInfo reads the same from a reader as from the bytes") {
  store::MemoryModelStore store;
  const std::vector<std::string> cases = {
      StoredModel("m", 1, 0), StoredModel("m", 2, 100000),
      // field 1 after the others, twice (merged), trailing garbage, a length past the end
      Field(2, std::string(40000, 'p')) + StoredModel("m", 3, 10),
      StoredModel("m", 4, 10) + StoredModel("m", 4, 10), StoredModel("m", 5, 10) + "\xff",
      std::string("\x0a\xff\xff\xff\x0f") + std::string(10, 'x'), std::string(),
      std::string("\x12\x05") + "ab"};
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(i);
    REQUIRE(store.Put("m", [&](int64_t) -> absl::StatusOr<std::string> { return cases[i]; }).ok());
    auto reader = store.Open("m", static_cast<int64_t>(i + 1));
    REQUIRE(reader.ok());
    const auto from_bytes = ParseStoredInfo(cases[i]);
    const auto from_reader = ParseStoredInfo(reader->get());
    CHECK(from_bytes.status() == from_reader.status());
    if (from_bytes.ok() && from_reader.ok()) {
      CHECK(from_bytes->SerializeAsString() == from_reader->SerializeAsString());
      CHECK(from_reader->size_bytes() == static_cast<int64_t>(cases[i].size()));
    }
  }
}

// A store one of whose models cannot be listed (its directory cannot be read).
class UnlistableStore : public store::MemoryModelStore {
 public:
  absl::StatusOr<std::vector<int64_t>> ListVersions(std::string_view name) override {
    if (name == "bad") return absl::PermissionDeniedError("opendir \"bad\": Permission denied");
    return MemoryModelStore::ListVersions(name);
  }
};

// It made every ListModels fail, whatever its name_prefix.
TEST_CASE("List names a model whose versions cannot be listed and lists the others") {
  UnlistableStore store;
  ModelRepository<Loaded> repository(&store, ParseLoaded, absl::ZeroDuration());
  for (const char* name : {"a", "bad", "c"}) {
    REQUIRE(store
                .Put(name,
                     [&](int64_t version) -> absl::StatusOr<std::string> {
                       common::v1::ModelInfo info;
                       FillModelInfo(name, version, common::v1::GENERATIVE, "uniform", {}, "",
                                     absl::Now(), &info);
                       return Field(1, info.SerializeAsString());
                     })
                .ok());
  }
  const auto listed = repository.List({}, common::v1::GENERATIVE);
  REQUIRE(listed.ok());
  REQUIRE(listed->models_size() == 2);
  CHECK(listed->models(0).name() == "a");
  CHECK(listed->models(1).name() == "c");
  REQUIRE(listed->unreadable_versions_size() == 1);
  CHECK(listed->unreadable_versions(0).name() == "bad");
  CHECK(listed->unreadable_versions(0).version() == 0);
  CHECK(listed->unreadable_versions(0).code() == "PERMISSION_DENIED");
  common::v1::ListModelsRequest only_c;
  only_c.set_name_prefix("c");
  const auto c = repository.List(only_c, common::v1::GENERATIVE);
  REQUIRE(c.ok());
  CHECK(c->models_size() == 1);
  CHECK(c->unreadable_versions_size() == 0);
}

// Pages through `request`'s listing; each entry as "name/version" (unreadable ones marked).
std::vector<std::string> PageThrough(ModelRepository<Loaded>& repository,
                                     common::v1::ListModelsRequest request, int64_t max_bytes,
                                     int* pages) {
  std::vector<std::string> got;
  *pages = 0;
  do {
    const auto page = repository.List(request, common::v1::GENERATIVE, max_bytes);
    REQUIRE(page.ok());
    ++*pages;
    const int entries = page->models_size() + page->unreadable_versions_size();
    REQUIRE(entries >= 1);
    if (request.page_size() > 0) REQUIRE(entries <= request.page_size());
    if (max_bytes > 0) REQUIRE(page->ByteSizeLong() <= static_cast<std::size_t>(max_bytes));
    const ListPaging paging = *ParseListPaging(request);
    std::vector<std::pair<ListKey, std::string>> keyed;
    for (const auto& m : page->models()) {
      keyed.push_back({paging.KeyOf(m), absl::StrCat(m.name(), "/", m.version())});
    }
    for (const auto& b : page->unreadable_versions()) {
      keyed.push_back({paging.KeyOf(b), absl::StrCat(b.name(), "/", b.version(), " unreadable")});
    }
    std::sort(keyed.begin(), keyed.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [key, text] : keyed) got.push_back(std::move(text));
    request.set_page_token(page->next_page_token());
    REQUIRE(*pages < 1000);
  } while (!request.page_token().empty());
  return got;
}

// ListModels had no paging: ~1 900 models made the list larger than the message cap, refused for
// every client. Pages: every entry once, in order, for any page size or byte budget.
TEST_CASE("List pages through every entry once, in order, within page_size and max_bytes") {
  Fixture f;
  for (const char* name : {"m-a", "m-b", "m-c", "m-d", "n-x"}) {
    REQUIRE(f.Put(name, 10).ok());
    REQUIRE(f.Put(name, 10).ok());
  }
  // A damaged latest version of m-b: listed as unreadable, in its place.
  REQUIRE(f.store.Put("m-b", [](int64_t) -> absl::StatusOr<std::string> { return ""; }).ok());
  for (const bool all_versions : {false, true}) {
    CAPTURE(all_versions);
    common::v1::ListModelsRequest request;
    request.set_name_prefix("m-");
    request.set_all_versions(all_versions);
    int pages = 0;
    const std::vector<std::string> all = PageThrough(f.repository, request, 0, &pages);
    CHECK(pages == 1);
    REQUIRE(all.size() == (all_versions ? 9u : 4u));
    CHECK(all[1] == (all_versions ? "m-a/2" : "m-b/3 unreadable"));
    for (int page_size : {1, 2, 3, 4, 8, 9, 10, 1000}) {
      CAPTURE(page_size);
      request.set_page_size(page_size);
      CHECK(PageThrough(f.repository, request, 0, &pages) == all);
      CHECK(pages == (static_cast<int>(all.size()) + page_size - 1) / page_size);
    }
    // The message budget cuts pages (each ModelInfo is ~40 bytes).
    request.set_page_size(1000);
    CHECK(PageThrough(f.repository, request, kListPageTokenReserve + 100, &pages) == all);
    CHECK(pages > 2);
    // Room for the largest entry.
    common::v1::ListModelsRequest unpaged = request;
    unpaged.set_page_size(0);
    const auto listed = f.repository.List(unpaged, common::v1::GENERATIVE);
    REQUIRE(listed.ok());
    int64_t largest = 0;
    for (const auto& m : listed->models())
      largest = std::max(largest, ListEntryBytes(m.ByteSizeLong()));
    for (const auto& b : listed->unreadable_versions()) {
      largest = std::max(largest, ListEntryBytes(b.ByteSizeLong()));
    }
    CHECK(PageThrough(f.repository, request, kListPageTokenReserve + largest, &pages) == all);
    CHECK(pages > static_cast<int>(all.size()) / 2);
  }
}

TEST_CASE("A listing's pages see changes by position: no entry twice, none that stayed missed") {
  Fixture f;
  for (const char* name : {"b", "d", "f", "h"}) REQUIRE(f.Put(name, 10).ok());
  common::v1::ListModelsRequest request;
  request.set_page_size(2);
  auto page = f.repository.List(request, common::v1::GENERATIVE);
  REQUIRE(page.ok());
  REQUIRE(page->models_size() == 2);
  CHECK(page->models(1).name() == "d");
  // Meanwhile: a model created before the token (not seen: it sorts into a page already read),
  // one after it (seen), one deleted after it (not seen), and a new version of the page's last
  // model (a review saw it listed twice: without all_versions an entry is a model, whatever its
  // latest version).
  REQUIRE(f.Put("a", 10).ok());
  REQUIRE(f.Put("e", 10).ok());
  REQUIRE(f.Put("d", 10).ok());
  common::v1::DeleteModelRequest del;
  del.set_name("f");
  REQUIRE(f.repository.Delete(del).ok());
  const auto rest = [&](common::v1::ListModelsRequest next) {
    std::vector<std::string> names;
    while (!next.page_token().empty()) {
      page = f.repository.List(next, common::v1::GENERATIVE);
      REQUIRE(page.ok());
      for (const auto& m : page->models()) names.push_back(absl::StrCat(m.name(), m.version()));
      next.set_page_token(page->next_page_token());
    }
    return names;
  };
  request.set_page_token(page->next_page_token());
  CHECK(rest(request) == std::vector<std::string>{"e1", "h1"});
  // With all_versions an entry is a version: d's new one sorts after the token.
  request.set_all_versions(true);
  request.set_page_token("");
  page = f.repository.List(request, common::v1::GENERATIVE);
  REQUIRE(page.ok());
  CHECK(page->models(1).name() == "b");  // a1 b1
  REQUIRE(f.Put("b", 10).ok());
  request.set_page_token(page->next_page_token());
  CHECK(rest(request) == std::vector<std::string>{"b2", "d1", "d2", "e1", "h1"});
}

// A review: a generative model file in the discriminative store (a shared or copied directory)
// was ordered by the service's type by the service and by its own by the gateway, which then
// dropped the service's page. It is named as unreadable, with the service's type.
TEST_CASE("List names a stored model of the other service's type as unreadable") {
  Fixture f;  // stores GENERATIVE ModelInfos
  REQUIRE(f.Put("a", 10).ok());
  common::v1::ListModelsRequest request;
  request.set_page_size(10);
  auto listed = f.repository.List(request, common::v1::DISCRIMINATIVE);
  REQUIRE(listed.ok());
  CHECK(listed->models_size() == 0);
  REQUIRE(listed->unreadable_versions_size() == 1);
  CHECK(listed->unreadable_versions(0).type() == common::v1::DISCRIMINATIVE);
  CHECK(listed->unreadable_versions(0).code() == "DATA_LOSS");
  CHECK_THAT(listed->unreadable_versions(0).message(), Catch::Contains("type GENERATIVE"));
  listed = f.repository.List(request, common::v1::GENERATIVE);
  REQUIRE(listed.ok());
  CHECK(listed->models_size() == 1);
}

// A review: an entry larger than the page's byte limit was refused with the advice to page,
// which the caller was doing, and no token to go past it. It is named now.
TEST_CASE("List pages within max_page_bytes and names an entry no page can hold") {
  Fixture f;
  for (const char* name : {"a", "b", "c"}) REQUIRE(f.Put(name, 10).ok());
  common::v1::ListModelsRequest request;
  request.set_page_size(1000);
  request.set_max_page_bytes(65536);
  int pages = 0;
  CHECK(PageThrough(f.repository, request, 0, &pages).size() == 3);
  CHECK(pages == 1);
  request.set_max_page_bytes(-1);
  CHECK(absl::IsInvalidArgument(f.repository.List(request, common::v1::GENERATIVE).status()));
  // Room for the token and one entry a page (the three entries are alike).
  const auto unpaged = f.repository.List({}, common::v1::GENERATIVE);
  REQUIRE(unpaged.ok());
  request.set_max_page_bytes(kListPageTokenReserve +
                             ListEntryBytes(unpaged->models(0).ByteSizeLong()) + 10);
  CHECK(PageThrough(f.repository, request, 0, &pages).size() == 3);
  CHECK(pages == 3);
  request.set_max_page_bytes(0);
  const auto refused = f.repository.List(request, common::v1::GENERATIVE, 1);
  REQUIRE(absl::IsResourceExhausted(refused.status()));
  CHECK_THAT(std::string(refused.status().message()), Catch::Contains("model \"a\" version 1"));
  CHECK_THAT(std::string(refused.status().message()), Catch::Contains("raise --max_message_bytes"));
}

TEST_CASE("List refuses bad paging before reading the store") {
  Fixture f;
  REQUIRE(f.Put("a", 10).ok());
  REQUIRE(f.Put("b", 10).ok());
  common::v1::ListModelsRequest request;
  request.set_page_size(1);
  const auto first = f.repository.List(request, common::v1::GENERATIVE);
  REQUIRE(first.ok());
  REQUIRE_FALSE(first->next_page_token().empty());
  request.set_page_token(first->next_page_token());
  request.set_name_prefix("b");
  CHECK(absl::IsInvalidArgument(f.repository.List(request, common::v1::GENERATIVE).status()));
  request.set_name_prefix("");
  request.set_page_size(-5);
  CHECK(absl::IsInvalidArgument(f.repository.List(request, common::v1::GENERATIVE).status()));
  // The last page says the listing is complete.
  request.set_page_size(1);
  const auto last = f.repository.List(request, common::v1::GENERATIVE);
  REQUIRE(last.ok());
  REQUIRE(last->models_size() == 1);
  CHECK(last->models(0).name() == "b");
  CHECK(last->next_page_token().empty());
}

// A store whose versions are deleted as soon as they are written: a DeleteModel that comes in
// right after a write commits.
class DeletedAtOnceStore : public store::ModelStore {
 public:
  using ModelStore::Delete;
  using ModelStore::Put;
  absl::StatusOr<int64_t> Put(std::string_view name, const store::MakeBytesFn& make_bytes,
                              const store::PutOptions& options) override {
    MAAS_ASSIGN_OR_RETURN(int64_t version, inner_.Put(name, make_bytes, options));
    REQUIRE(inner_.Delete(name, version).ok());
    return version;
  }
  absl::StatusOr<std::string> Get(std::string_view name, int64_t version) override {
    return inner_.Get(name, version);
  }
  absl::StatusOr<std::vector<int64_t>> ListVersions(std::string_view name) override {
    return inner_.ListVersions(name);
  }
  using ModelStore::ListNames;
  absl::StatusOr<std::vector<std::string>> ListNames(const NameRange& range) override {
    return inner_.ListNames(range);
  }
  absl::StatusOr<std::vector<int64_t>> Delete(std::string_view name, int64_t version,
                                              const std::function<absl::Status()>&) override {
    return inner_.Delete(name, version);
  }

 private:
  store::MemoryModelStore inner_;
};

// An audit saw a Train answer NOT_FOUND for the version it had just stored (a DeleteModel came in
// between), so its client never learned the version and a retry wrote a duplicate.
TEST_CASE("Put answers the version it wrote even when a delete removed it at once") {
  DeletedAtOnceStore store;
  ModelRepository<Loaded> repository(&store, ParseLoaded, absl::ZeroDuration());
  const auto put = repository.Put("gone", [](int64_t version) -> absl::StatusOr<std::string> {
    common::v1::ModelInfo info;
    FillModelInfo("gone", version, common::v1::GENERATIVE, "uniform", {}, "", absl::Now(), &info);
    return Field(1, info.SerializeAsString());
  });
  REQUIRE(put.ok());
  CHECK((*put)->info().name() == "gone");
  CHECK((*put)->info().version() == 1);
  common::v1::ModelRef ref;
  ref.set_name("gone");
  CHECK(absl::IsNotFound(repository.Get(ref).status()));
}

// A 537 MB model took ~7x its size to store: among the copies, the repository kept a second copy
// of the bytes and, once written, read and parsed them again for the cache while the first parse
// (the load-back check) had just been dropped. The check's parse is now the cached version.
TEST_CASE("Put parses the new version once: the load-back check's result is the cached version") {
  Fixture f;
  const auto put = f.Put("once", 100);
  REQUIRE(put.ok());
  CHECK(f.loads.load() == 1);
  common::v1::ModelRef ref;
  ref.set_name("once");
  const auto got = f.repository.Get(ref);
  REQUIRE(got.ok());
  CHECK(*got == *put);  // the same object, not a second load
  CHECK(f.loads.load() == 1);
  CHECK(f.repository.cache().loaded_versions() == 1);
}

TEST_CASE("Retraining a name keeps its latest version loaded, not every version it wrote") {
  // Each write read its new version back by number, which pinned it: a name retrained 25 times
  // held 25 versions (2 GiB) until the budget evicted them.
  Fixture f;
  common::v1::ModelRef latest;
  latest.set_name("r");
  for (int i = 0; i < 5; ++i) {
    REQUIRE(f.Put("r", 100).ok());
    REQUIRE(f.repository.Get(latest).ok());
    CHECK(f.repository.cache().loaded_versions() == 1);
  }
  // A version a call asked for by number stays while it is stored, superseded or not.
  common::v1::ModelRef third = latest;
  third.set_version(3);
  REQUIRE(f.repository.Get(third).ok());
  REQUIRE(f.Put("r", 100).ok());
  REQUIRE(f.repository.Get(latest).ok());
  CHECK(f.repository.cache().loaded_versions() == 2);
}

// A store whose next Put, once committed, waits before returning: the write's read-back then
// comes after a concurrent write of the same name committed, and read back, a newer version.
class PausingStore : public store::MemoryModelStore {
 public:
  using ModelStore::Put;
  absl::StatusOr<int64_t> Put(std::string_view name, const store::MakeBytesFn& make_bytes,
                              const store::PutOptions& options) override {
    absl::StatusOr<int64_t> version = store::MemoryModelStore::Put(name, make_bytes, options);
    if (pause_next.exchange(false)) {
      committed.Notify();
      release.WaitForNotification();
    }
    return version;
  }
  std::atomic<bool> pause_next{false};
  absl::Notification committed, release;
};

TEST_CASE("Concurrent writes of a name leave only its latest version loaded") {
  // Two Trains of one name overlap (--train_threads > 1, or two replicas): A commits v2, B
  // commits v3 and reads it back, then A reads v2 back. v2 was inserted unpinned but never was
  // the latest, so UpdateLatest (which drops only a superseded latest) never drops it: it stays
  // loaded for good (e2e: 666 versions, 1.98 GB, of a name retrained by 4 threads for 30 s).
  PausingStore store;
  ModelRepository<Loaded> repository(&store, ParseLoaded, absl::ZeroDuration());
  const auto write = [&repository] {
    return repository.Put("r", [](int64_t version) -> absl::StatusOr<std::string> {
      common::v1::ModelInfo info;
      FillModelInfo("r", version, common::v1::GENERATIVE, "uniform", {}, "", absl::Now(), &info);
      return Field(1, info.SerializeAsString());
    });
  };
  common::v1::ModelRef latest;
  latest.set_name("r");
  REQUIRE(write().ok());
  REQUIRE(repository.Get(latest).ok());
  store.pause_next = true;
  absl::StatusOr<std::shared_ptr<const Loaded>> a;
  std::thread writer_a([&] { a = write(); });
  store.committed.WaitForNotification();  // A committed v2 and has not read it back yet
  const auto b = write();                 // B: v3, read back
  REQUIRE(b.ok());
  CHECK((*b)->info().version() == 3);
  store.release.Notify();
  writer_a.join();
  REQUIRE(a.ok());
  CHECK((*a)->info().version() == 2);
  const auto served = repository.Get(latest);
  REQUIRE(served.ok());
  CHECK((*served)->info().version() == 3);
  // Nobody asked for v2 by number: only v3 should be loaded.
  CHECK(repository.cache().loaded_versions() == 1);
  for (int i = 0; i < 3; ++i) {  // later writes and Gets of the latest do not drop v2 either
    REQUIRE(write().ok());
    REQUIRE(repository.Get(latest).ok());
  }
  CHECK(repository.cache().loaded_versions() == 1);
}

TEST_CASE("The repository's cache keeps loaded models within --model_cache_bytes") {
  Fixture f(/*cache_bytes=*/3000);
  for (const char* name : {"a", "b", "c", "d"}) REQUIRE(f.Put(name, 1000).ok());
  for (const char* name : {"a", "b", "c", "d"}) {
    common::v1::ModelRef ref;
    ref.set_name(name);
    REQUIRE(f.repository.Get(ref).ok());
  }
  CHECK(f.repository.cache().loaded_bytes() <= 3000);
  CHECK(f.repository.cache().loaded_versions() < 4);
}

TEST_CASE("ValidateLabels bounds the number of labels, their sizes and the description") {
  google::protobuf::Map<std::string, std::string> labels;
  for (int i = 0; i < 64; ++i) labels[absl::StrCat("key", i)] = "value";
  CHECK(ValidateLabels(labels, "").ok());
  labels["one-too-many"] = "value";
  const absl::Status status = ValidateLabels(labels, "");
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("65 labels"));
  CHECK_THAT(std::string(status.message()), Catch::Contains("at most 64"));
  labels.clear();
  labels[""] = "x";
  CHECK(ValidateLabels(labels, "").code() == absl::StatusCode::kInvalidArgument);
  labels.clear();
  labels["k"] = std::string(257, 'v');
  CHECK(ValidateLabels(labels, "").code() == absl::StatusCode::kInvalidArgument);
  CHECK(ValidateLabels({}, std::string(4097, 'd')).code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace maas::registry
