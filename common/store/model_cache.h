// ModelCache<T>: loaded, immutable models from a ModelStore, shared by in-flight calls.
//
//   ModelCache<GenerativeModel> cache(&store, [](StoredBytes bytes)
//       -> absl::StatusOr<std::shared_ptr<const GenerativeModel>> { return ParseModel(bytes); });
//   cache.StartPolling(absl::Seconds(5));             // replicas sharing a volume converge
//   MAAS_ASSIGN_OR_RETURN(auto model, cache.Get("iris", 0));   // the call keeps this version to
//   the end MAAS_ASSIGN_OR_RETURN(int64_t v, cache.Put("iris", make_bytes));  // local writes are
//   seen at once
//
// Freshness:
// - Without polling, every Get consults the store's version list (cheap: one directory scan), so it
// is
//   always current, and loads (parses) a version only once.
// - With polling, Get answers from memory once a name is cached; changes made by other processes
// are picked
//   up by the poller within one interval. Local changes made through Put/Delete here, or announced
//   with Invalidate(name), are seen by the next Get.
// - A newer latest version is loaded before the previous one is dropped, and while another call
//   loads it (the local write that made it, say), Get(name, 0) answers the previous latest instead
//   of waiting: a new version swaps in once loaded. If it cannot be loaded,
// Get(name, 0)
//   returns that error (it names the version) and Refresh()/last_refresh_status() report it; the
//   previous version stays loaded until the new one loads.
// - Models are handed out as shared_ptr<const T>: deleting or replacing a version never affects a
// call that
//   already holds it.
// Memory: with a byte budget (SetByteBudget, the servers' --model_cache_bytes) the cache evicts
// least-recently-used versions while the bytes the loaded versions hold exceed it; a version a
// call still holds is never evicted (dropping it would free nothing) and is counted until released.
// What a version holds: T::held_bytes() when T has that member (the parsed form's own estimate of
// its memory: the services keep only the parsed form, never the stored message), else the stored
// size. The loader owns the bytes it is given (StoredBytes): it may free them once parsed, and
// they are gone once it returns.
// An evicted version is loaded again by the next Get that needs it. Without a budget (0) the latest
// version of every name asked for with version 0 stays loaded, plus every explicitly requested
// version until it is deleted from the store or the name is invalidated.
// Concurrent first loads of one version load it once (the other callers wait for that load).
// Thread-safe. The store must outlive the cache.
#ifndef MAAS_COMMON_STORE_MODEL_CACHE_H_
#define MAAS_COMMON_STORE_MODEL_CACHE_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status/status_macros.h"
#include "common/store/model_store.h"
#include "common/store/stored_bytes.h"

namespace maas::store {

template <class T>
class ModelCache {
 public:
  using ModelPtr = std::shared_ptr<const T>;
  // Parses stored bytes into a model. A null result is treated as INTERNAL. The bytes are the
  // load's own: a loader that releases them once parsed (StoredBytes::Release) lowers a load's
  // peak.
  using Loader = std::function<absl::StatusOr<ModelPtr>(StoredBytes bytes)>;
  // Told about every load from the store that produced a model: name, version, how long reading
  // and parsing took, and the bytes charged for it. Runs on the loading thread, without the cache's
  // own locks held.
  using LoadObserver = std::function<void(std::string_view name, int64_t version,
                                          absl::Duration took, int64_t held_bytes)>;

  // `store` is not owned and must outlive the cache.
  ModelCache(ModelStore* store, Loader loader) : store_(store), loader_(std::move(loader)) {}
  ModelCache(const ModelCache&) = delete;
  ModelCache& operator=(const ModelCache&) = delete;
  // Stops the poller (promptly: it waits on a condition variable) before anything is destroyed.
  ~ModelCache() { StopPolling(); }

  // The model `name` at `version` (0 = latest). INVALID_ARGUMENT for a bad name or negative
  // version, NOT_FOUND if the store does not have it, the loader's error if it cannot be loaded.
  // An explicit version is pinned (kept while it is stored, though superseded) unless `pin` is
  // false: a writer's own read-back of the version it wrote must not keep every version a name
  // was retrained into loaded until the budget evicts them.
  absl::StatusOr<ModelPtr> Get(std::string_view name, int64_t version, bool pin = true);
  // Whether Get(name, version) would answer from memory now, without reading the store or loading
  // (a valid name, polling on, the name fresh, the version loaded). Changes nothing (no LRU tick,
  // no pin). Lets a caller keep work that could load a model off a thread that must not block.
  bool Cached(std::string_view name, int64_t version) const;

  // Writes through to the store, then invalidates `name` so the next Get sees the change.
  absl::StatusOr<int64_t> Put(std::string_view name, const MakeBytesFn& make_bytes,
                              const PutOptions& options = PutOptions());
  // Hands over `model`, what the loader made of the `stored_size` bytes just written as `version`
  // of `name`: the next load of that version takes it instead of reading and parsing the store's
  // copy again (a large model would otherwise be held twice while the writer still holds its
  // own). Dropped by Unadopt, or taken by that load.
  void Adopt(std::string_view name, int64_t version, ModelPtr model, int64_t stored_size);
  void Unadopt(std::string_view name, int64_t version);
  // Deletes through to the store, then drops the versions it deleted from memory at once (a call
  // that holds one keeps it until it ends).
  absl::StatusOr<std::vector<int64_t>> Delete(
      std::string_view name, int64_t version,
      const std::function<absl::Status()>& still_wanted = nullptr);

  // Marks `name` as changed: the next Get(name, ...) consults the store. Call after writing to the
  // store directly (not through this cache). Loaded models are kept and reused when still in the
  // store.
  void Invalidate(std::string_view name);

  // Rescans the store for every cached name: loads a new latest version (before dropping the old
  // one), forgets deleted versions and names. Returns the first error met (other names are still
  // refreshed).
  absl::Status Refresh();

  // Starts (or restarts with a new interval) a thread that calls Refresh() every `interval` (> 0).
  void StartPolling(absl::Duration interval);
  // Stops the polling thread, waking it immediately. No-op if not polling.
  void StopPolling();
  bool polling() const;
  // The status of the last Refresh() (OK before any).
  absl::Status last_refresh_status() const;

  ModelStore* store() const { return store_; }

  // Evicts least-recently-used versions while the bytes the loaded versions hold exceed `bytes`
  // (0 = no budget). Takes effect at once.
  void SetByteBudget(int64_t bytes);
  // Bytes the versions loaded now hold (see "Memory" above).
  int64_t loaded_bytes() const;
  // Replaces the load observer (empty = none). Once it returns, the previous observer is not
  // running and is never called again (so what it points at may be destroyed).
  void SetLoadObserver(LoadObserver observer);

  // The bytes charged for a loaded model whose stored form had `stored_bytes`.
  static int64_t HeldBytes(const T& model, int64_t stored_bytes) {
    if constexpr (HasHeldBytes<T>::value) {
      (void)stored_bytes;
      return std::max<int64_t>(static_cast<int64_t>(model.held_bytes()), 0);
    } else {
      (void)model;
      return stored_bytes;
    }
  }
  // Versions held now.
  int64_t loaded_versions() const;

 private:
  template <class U, class = void>
  struct HasHeldBytes : std::false_type {};
  template <class U>
  struct HasHeldBytes<U, std::void_t<decltype(std::declval<const U&>().held_bytes())>>
      : std::true_type {};

  // Models that say which name and version they are (info().name(), info().version()): a load
  // checks that against where the bytes were stored.
  template <class U, class = void>
  struct HasIdentity : std::false_type {};
  template <class U>
  struct HasIdentity<U, std::void_t<decltype(std::declval<const U&>().info().name()),
                                    decltype(std::declval<const U&>().info().version())>>
      : std::true_type {};

  struct Entry {
    ModelPtr model;
    bool pinned = false;      // asked for explicitly (version > 0): kept while it exists
    uint64_t loaded_seq = 0;  // scan sequence number at which it was known to exist
    int64_t bytes = 0;        // HeldBytes, for the byte budget
    uint64_t last_used = 0;   // use tick, for LRU eviction
  };
  // One in-progress first load of a version; later callers wait for it.
  struct Flight {
    absl::Notification done;
    absl::StatusOr<ModelPtr> result;
    bool not_stored = false;  // the store had no such version (set before `done`)
  };
  struct NameState {
    std::vector<int64_t> versions;  // the store's complete versions at applied_seq, ascending
    uint64_t applied_seq = 0;       // sequence number of the listing in `versions`
    uint64_t invalidated_seq = 0;   // sequence number of the last Invalidate
    int64_t latest = 0;             // the version served for version 0 (0 = none loaded)
    bool wants_latest = false;      // Get(name, 0) was called: Refresh keeps the latest loaded
    std::map<int64_t, Entry> loaded;
  };

  // Loads `version` of `name`; the bytes it holds (HeldBytes) go to *bytes. *not_stored is set
  // when the store no longer has the version (its read answered NOT_FOUND), not when the loader
  // refused the bytes.
  absl::StatusOr<ModelPtr> Load(std::string_view name, int64_t version, int64_t* bytes,
                                bool* not_stored);
  // Drops LRU unheld versions until the budget holds.
  void Evict() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes an entry, keeping the byte count.
  typename std::map<int64_t, Entry>::iterator Erase(NameState& state,
                                                    typename std::map<int64_t, Entry>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The loaded version Get(version) of a name in `state` may answer from memory (the name fresh,
  // for version 0 the latest listed one), or 0. Lookup and Cached share it.
  static int64_t FreshLoadedVersion(const NameState& state, int64_t version);
  // Answers from memory if allowed (polling, name fresh, model loaded); null otherwise.
  ModelPtr Lookup(const std::string& name, int64_t version, bool pin)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies a store listing taken at `seq` (empty = the model has no versions).
  void ApplyListing(NameState& state, const std::vector<int64_t>& versions, uint64_t seq)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds a loaded model (found in a listing taken at `seq`) and returns the cached copy.
  ModelPtr Insert(NameState& state, int64_t version, ModelPtr model, bool pinned, uint64_t seq,
                  int64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The loaded version that was latest for `name`, if the listing `versions` still has it.
  ModelPtr PreviousLatest(const std::string& name, const std::vector<int64_t>& versions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Points `latest` at the listing's newest version if loaded; drops a superseded unpinned latest.
  void UpdateLatest(NameState& state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a Delete: lists `name` in the store and drops the loaded versions the listing no longer
  // has (and the name, when nothing of it is left), so deleted models free their memory at once.
  void ForgetDeleted(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);
  // Consults the store for `name`, loads `version` (0 = latest) unless `load` is false, installs
  // the result. Returns the model (null if !load). `listed_version_gone` (if given) is set when the
  // version the listing named could not be read because it is no longer stored (NOT_FOUND).
  absl::StatusOr<ModelPtr> Fetch(const std::string& name, int64_t version, bool load,
                                 bool pin = true, bool* listed_version_gone = nullptr);
  // Get of the latest lists again at most this many times when the listed latest was deleted
  // before it could be read.
  static constexpr int kMaxLatestFetchAttempts = 5;
  // A fetch of `name` is over: the last one out drops the name's state if it holds nothing.
  void EndFetch(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);
  void PollLoop(absl::Duration interval);

  ModelStore* const store_;
  const Loader loader_;

  mutable absl::Mutex mu_;
  std::map<std::string, NameState, std::less<>> names_ ABSL_GUARDED_BY(mu_);
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  // The sequence number of the last Invalidate of any name, present or not: a Fetch that began
  // before it and creates its name's state (the name was absent then, or dropped since) must not
  // take its listing for fresh (a Delete during a name's first load was otherwise not seen).
  uint64_t last_invalidated_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t tick_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t budget_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t loaded_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::pair<std::string, int64_t>, std::shared_ptr<Flight>> flights_ ABSL_GUARDED_BY(mu_);
  // Fetches of a name in progress (from their listing to their insert). While one is, the name's
  // state stays even when empty: a fetch whose listing predates a delete must find the delete's
  // listing there (Insert then does not cache the deleted version); re-created, it had no record
  // of it, and a deleted version stayed loaded until the name was asked for again.
  std::map<std::string, int, std::less<>> fetching_ ABSL_GUARDED_BY(mu_);
  // Adopt's models (with their stored sizes), until loaded or Unadopt.
  std::map<std::pair<std::string, int64_t>, std::pair<ModelPtr, int64_t>> adopted_
      ABSL_GUARDED_BY(mu_);
  bool polling_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status last_refresh_status_ ABSL_GUARDED_BY(mu_);

  // Held (shared) while the observer runs, so replacing it waits for running calls.
  absl::Mutex observer_mu_;
  LoadObserver load_observer_ ABSL_GUARDED_BY(observer_mu_);

  absl::Mutex control_mu_;  // serializes StartPolling/StopPolling
  std::thread poller_ ABSL_GUARDED_BY(control_mu_);
  absl::Mutex poll_mu_;
  absl::CondVar poll_cv_;
  bool stop_ ABSL_GUARDED_BY(poll_mu_) = false;
};

// ---------------------------------------------------------------------------------------------------------
// Implementation.

template <class T>
absl::StatusOr<typename ModelCache<T>::ModelPtr> ModelCache<T>::Get(std::string_view name,
                                                                    int64_t version, bool pin) {
  MAAS_RETURN_IF_ERROR(ValidateModelName(name));
  MAAS_RETURN_IF_ERROR(internal::ValidateVersionArgument(name, version));
  const std::string key(name);
  {
    absl::MutexLock lock(&mu_);
    if (ModelPtr model = Lookup(key, version, pin)) return model;
  }
  for (int attempt = 1;; ++attempt) {
    bool listed_version_gone = false;
    absl::StatusOr<ModelPtr> model = Fetch(key, version, /*load=*/true, pin, &listed_version_gone);
    // The latest may have been deleted (by another replica) between the listing and the load: list
    // again, as FileModelStore::Get does. It answered NOT_FOUND naming that version although an
    // older one was stored throughout (the 2026-12-06 lifecycle hunt: replicas with
    // --poll_seconds 0, one deleting each new version it trained).
    if (version != 0 || !listed_version_gone || attempt >= kMaxLatestFetchAttempts) return model;
  }
}

template <class T>
bool ModelCache<T>::Cached(std::string_view name, int64_t version) const {
  if (version < 0) return false;  // a bad name is never among names_
  absl::MutexLock lock(&mu_);
  if (!polling_) return false;
  auto it = names_.find(name);
  if (it == names_.end()) return false;
  return FreshLoadedVersion(it->second, version) != 0;
}

template <class T>
int64_t ModelCache<T>::FreshLoadedVersion(const NameState& state, int64_t version) {
  if (state.invalidated_seq >= state.applied_seq) return 0;
  if (version == 0) {
    if (state.latest == 0 || state.versions.empty() || state.latest != state.versions.back()) {
      return 0;
    }
    version = state.latest;
  }
  return state.loaded.count(version) > 0 ? version : 0;
}

template <class T>
typename ModelCache<T>::ModelPtr ModelCache<T>::Lookup(const std::string& name, int64_t version,
                                                       bool pin) {
  if (!polling_) return nullptr;
  auto it = names_.find(name);
  if (it == names_.end()) return nullptr;
  NameState& state = it->second;
  const int64_t fresh = FreshLoadedVersion(state, version);
  if (fresh == 0) return nullptr;
  Entry& entry = state.loaded.at(fresh);
  // An explicit version stays; the latest may be superseded.
  if (version != 0 && pin) entry.pinned = true;
  entry.last_used = ++tick_;
  return entry.model;
}

template <class T>
absl::StatusOr<typename ModelCache<T>::ModelPtr> ModelCache<T>::Load(std::string_view name,
                                                                     int64_t version, int64_t* size,
                                                                     bool* not_stored) {
  const absl::Time start = absl::Now();
  absl::StatusOr<ModelPtr> model;
  int64_t stored_size = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = adopted_.find(std::make_pair(std::string(name), version));
    if (it != adopted_.end()) {
      model = std::move(it->second.first);
      stored_size = it->second.second;
      adopted_.erase(it);
    }
  }
  if (stored_size == 0) {
    // The stored bytes go to the loader, which frees them once parsed: the cache keeps the
    // parsed form alone.
    absl::StatusOr<std::string> bytes_or = store_->Get(name, version);
    if (!bytes_or.ok()) {
      *not_stored = absl::IsNotFound(bytes_or.status());
      return bytes_or.status();
    }
    std::string bytes = *std::move(bytes_or);
    stored_size = static_cast<int64_t>(bytes.size());
    model = loader_(StoredBytes(std::move(bytes)));
  }
  if (!model.ok()) {
    return absl::Status(model.status().code(),
                        absl::StrCat("loading model \"", internal::Sv(name), "\" version ", version,
                                     ": ", model.status().message()));
  }
  if (*model == nullptr) {
    return absl::InternalError(absl::StrCat("loading model \"", internal::Sv(name), "\" version ",
                                            version, ": the loader returned null"));
  }
  if constexpr (HasIdentity<T>::value) {
    // A file copied or moved by hand into another model's place would otherwise be served under
    // a name and version it does not carry (and GetModel would read back its original place).
    const auto& info = (**model).info();
    if (info.name() != name || info.version() != version) {
      return absl::DataLossError(absl::StrCat(
          "loading model \"", internal::Sv(name), "\" version ", version,
          ": the stored file holds model \"", internal::Sv(info.name()), "\" version ",
          info.version(),
          " (copied or moved by hand?); restore the version's own file or delete the version"));
    }
  }
  *size = HeldBytes(**model, stored_size);
  {
    absl::ReaderMutexLock lock(&observer_mu_);
    if (load_observer_) load_observer_(name, version, absl::Now() - start, *size);
  }
  return model;
}

template <class T>
absl::StatusOr<typename ModelCache<T>::ModelPtr> ModelCache<T>::Fetch(const std::string& name,
                                                                      int64_t version, bool load,
                                                                      bool pin,
                                                                      bool* listed_version_gone) {
  uint64_t seq;
  {
    absl::MutexLock lock(&mu_);
    seq = ++seq_;
    ++fetching_[name];
  }
  struct Ending {
    ModelCache* cache;
    const std::string& name;
    ~Ending() { cache->EndFetch(name); }
  } ending{this, name};
  absl::StatusOr<std::vector<int64_t>> listed = store_->ListVersions(name);
  if (!listed.ok() && !absl::IsNotFound(listed.status())) return listed.status();
  const std::vector<int64_t> versions = listed.ok() ? *listed : std::vector<int64_t>{};
  const bool present =
      !versions.empty() &&
      (version == 0 || std::binary_search(versions.begin(), versions.end(), version));
  if (!present) {
    absl::MutexLock lock(&mu_);
    auto it = names_.find(name);
    if (it != names_.end()) {
      ApplyListing(it->second, versions, seq);  // EndFetch drops the state if it holds nothing
    }
    return internal::ModelNotFound(name, version);
  }
  const int64_t target = version == 0 ? versions.back() : version;
  ModelPtr model;
  if (load) {
    absl::MutexLock lock(&mu_);
    auto it = names_.find(name);
    if (it != names_.end()) {
      auto entry = it->second.loaded.find(target);
      if (entry != it->second.loaded.end()) model = entry->second.model;
    }
  }
  absl::Status load_status;
  bool not_stored = false;  // the listed version was gone when read
  int64_t size = 0;
  std::shared_ptr<Flight> flight;  // set when this call loads the version for everyone
  if (load && model == nullptr) {
    std::shared_ptr<Flight> joined;
    {
      absl::MutexLock lock(&mu_);
      std::shared_ptr<Flight>& slot = flights_[{name, target}];
      if (slot == nullptr) {
        slot = std::make_shared<Flight>();
        flight = slot;
      } else {
        // Another call is loading the newest version (e.g. the write that made it). A call asking
        // for the latest keeps the version that was latest until then, if it is still stored,
        // instead of waiting for the load: a new version swaps in once loaded.
        if (version == 0) {
          if (ModelPtr previous = PreviousLatest(name, versions)) return previous;
        }
        joined = slot;
      }
    }
    absl::StatusOr<ModelPtr> loaded;
    if (flight != nullptr) {
      loaded = Load(name, target, &size, &not_stored);
    } else {
      joined->done.WaitForNotification();
      loaded = joined->result;
      not_stored = joined->not_stored;
      size = -1;  // already inserted (or failed) by the loading call; recomputed if evicted since
    }
    if (loaded.ok()) {
      model = *std::move(loaded);
    } else {
      load_status = loaded.status();
    }
  }
  {
    absl::MutexLock lock(&mu_);
    auto [it, created] = names_.try_emplace(name);
    NameState& state = it->second;
    if (created && seq < last_invalidated_seq_) state.invalidated_seq = last_invalidated_seq_;
    if (model != nullptr) {
      model = Insert(state, target, model, /*pinned=*/pin && version > 0, seq, size);
      if (version == 0) state.wants_latest = true;
    }
    ApplyListing(state, versions, seq);  // EndFetch drops the state if it holds nothing
    if (flight != nullptr) flights_.erase({name, target});
    Evict();
  }
  if (flight != nullptr) {
    if (load_status.ok()) {
      flight->result = model;
    } else {
      flight->result = load_status;
    }
    flight->not_stored = not_stored;
    flight->done.Notify();
  }
  if (!load_status.ok()) {
    if (listed_version_gone != nullptr) *listed_version_gone = not_stored;
    return load_status;
  }
  return model;
}

template <class T>
typename std::map<int64_t, typename ModelCache<T>::Entry>::iterator ModelCache<T>::Erase(
    NameState& state, typename std::map<int64_t, Entry>::iterator it) {
  loaded_bytes_ -= it->second.bytes;
  if (state.latest == it->first) state.latest = 0;
  return state.loaded.erase(it);
}

template <class T>
void ModelCache<T>::Evict() {
  if (budget_bytes_ <= 0) return;
  while (loaded_bytes_ > budget_bytes_) {
    NameState* victim_state = nullptr;
    typename std::map<int64_t, Entry>::iterator victim;
    for (auto& [name, state] : names_) {
      for (auto it = state.loaded.begin(); it != state.loaded.end(); ++it) {
        if (it->second.model.use_count() > 1) continue;  // a call holds it: evicting frees nothing
        if (victim_state == nullptr || it->second.last_used < victim->second.last_used) {
          victim_state = &state;
          victim = it;
        }
      }
    }
    if (victim_state == nullptr) return;  // everything left is in use
    // The poller stops reloading an evicted latest; the next Get(name, 0) loads it again.
    if (victim_state->latest == victim->first) victim_state->wants_latest = false;
    Erase(*victim_state, victim);
  }
}

template <class T>
void ModelCache<T>::SetByteBudget(int64_t bytes) {
  absl::MutexLock lock(&mu_);
  budget_bytes_ = bytes;
  Evict();
}

template <class T>
void ModelCache<T>::SetLoadObserver(LoadObserver observer) {
  absl::MutexLock lock(&observer_mu_);
  load_observer_ = std::move(observer);
}

template <class T>
int64_t ModelCache<T>::loaded_bytes() const {
  absl::MutexLock lock(&mu_);
  return loaded_bytes_;
}

template <class T>
int64_t ModelCache<T>::loaded_versions() const {
  absl::MutexLock lock(&mu_);
  int64_t n = 0;
  for (const auto& [name, state] : names_) n += static_cast<int64_t>(state.loaded.size());
  return n;
}

template <class T>
typename ModelCache<T>::ModelPtr ModelCache<T>::Insert(NameState& state, int64_t version,
                                                       ModelPtr model, bool pinned, uint64_t seq,
                                                       int64_t bytes) {
  // A newer listing already said this version is gone: hand the model out, but do not cache it.
  if (seq < state.applied_seq &&
      !std::binary_search(state.versions.begin(), state.versions.end(), version)) {
    return model;
  }
  auto [it, inserted] = state.loaded.try_emplace(version);
  if (inserted) {
    it->second.model = std::move(model);
    // A joined load (bytes < 0) whose entry was evicted meanwhile: the model's own estimate when
    // it has one; else the stored size is unknown here and the model counts as small rather than
    // the store being read again.
    it->second.bytes = bytes >= 0 ? bytes : HeldBytes(*it->second.model, 0);
    loaded_bytes_ += it->second.bytes;
  }
  it->second.last_used = ++tick_;
  it->second.pinned = it->second.pinned || pinned;
  it->second.loaded_seq = std::max(it->second.loaded_seq, seq);
  return it->second.model;
}

template <class T>
void ModelCache<T>::ApplyListing(NameState& state, const std::vector<int64_t>& versions,
                                 uint64_t seq) {
  if (seq > state.applied_seq) {
    state.applied_seq = seq;
    state.versions = versions;
    for (auto it = state.loaded.begin(); it != state.loaded.end();) {
      const bool listed = std::binary_search(versions.begin(), versions.end(), it->first);
      if (!listed && it->second.loaded_seq < seq) {
        it = Erase(state, it);
      } else {
        ++it;
      }
    }
  }
  UpdateLatest(state);
}

template <class T>
typename ModelCache<T>::ModelPtr ModelCache<T>::PreviousLatest(
    const std::string& name, const std::vector<int64_t>& versions) {
  auto it = names_.find(name);
  if (it == names_.end() || it->second.latest == 0) return nullptr;
  NameState& state = it->second;
  if (!std::binary_search(versions.begin(), versions.end(), state.latest)) return nullptr;
  auto entry = state.loaded.find(state.latest);
  if (entry == state.loaded.end()) return nullptr;
  entry->second.last_used = ++tick_;
  return entry->second.model;
}

template <class T>
void ModelCache<T>::UpdateLatest(NameState& state) {
  int64_t latest = state.latest;
  if (!state.versions.empty() && state.loaded.count(state.versions.back()) > 0) {
    latest = state.versions.back();  // the new latest is loaded: switch to it
  } else if (state.loaded.count(latest) == 0) {
    latest = 0;  // the previous latest was deleted
  }
  // The newest listed version that is loaded, when newer than the latest (a write's read-back of
  // a version that is not the newest any more): served meanwhile, dropped once superseded.
  for (auto v = state.versions.rbegin(); v != state.versions.rend() && *v > latest; ++v) {
    if (state.loaded.count(*v) > 0) {
      latest = *v;
      break;
    }
  }
  if (latest != state.latest && state.latest != 0) {
    auto old = state.loaded.find(state.latest);
    if (old != state.loaded.end() && !old->second.pinned) {
      loaded_bytes_ -= old->second.bytes;
      state.loaded.erase(old);
    }
  }
  state.latest = latest;
  if (latest == 0) return;
  // Unpinned versions below the latest are superseded (a read-back that came after a newer one).
  for (auto it = state.loaded.begin(); it != state.loaded.end() && it->first < latest;) {
    it = it->second.pinned ? std::next(it) : Erase(state, it);
  }
}

template <class T>
absl::StatusOr<int64_t> ModelCache<T>::Put(std::string_view name, const MakeBytesFn& make_bytes,
                                           const PutOptions& options) {
  absl::StatusOr<int64_t> version = store_->Put(name, make_bytes, options);
  // ABORTED: the write continued a version that is no longer the latest in the store (another
  // replica wrote after it), so what this cache holds for the name is stale: a retry must see the
  // store, not wait for the next poll.
  if (version.ok() || absl::IsAborted(version.status())) Invalidate(name);
  return version;
}

template <class T>
void ModelCache<T>::Adopt(std::string_view name, int64_t version, ModelPtr model,
                          int64_t stored_size) {
  if (model == nullptr || stored_size <= 0) return;
  absl::MutexLock lock(&mu_);
  adopted_[std::make_pair(std::string(name), version)] = {std::move(model), stored_size};
}

template <class T>
void ModelCache<T>::Unadopt(std::string_view name, int64_t version) {
  ModelPtr dropped;  // released after the lock
  absl::MutexLock lock(&mu_);
  auto it = adopted_.find(std::make_pair(std::string(name), version));
  if (it == adopted_.end()) return;
  dropped = std::move(it->second.first);
  adopted_.erase(it);
}

template <class T>
absl::StatusOr<std::vector<int64_t>> ModelCache<T>::Delete(
    std::string_view name, int64_t version, const std::function<absl::Status()>& still_wanted) {
  absl::StatusOr<std::vector<int64_t>> deleted = store_->Delete(name, version, still_wanted);
  Invalidate(name);  // even on error: part of a delete-all may have happened
  ForgetDeleted(std::string(name));
  return deleted;
}

template <class T>
void ModelCache<T>::ForgetDeleted(const std::string& name) {
  uint64_t seq;
  {
    absl::MutexLock lock(&mu_);
    if (names_.find(name) == names_.end()) return;  // nothing of it loaded
    seq = ++seq_;
  }
  // A listing taken after the delete: what it no longer has is dropped now. (Before, the deleted
  // versions stayed loaded, and charged to the budget, until the next Get of the name or poll;
  // a server without polling whose clients used each name once kept up to its whole budget of
  // deleted models.)
  absl::StatusOr<std::vector<int64_t>> listed = store_->ListVersions(name);
  if (!listed.ok() && !absl::IsNotFound(listed.status())) return;  // the next Get lists again
  const std::vector<int64_t> versions = listed.ok() ? *listed : std::vector<int64_t>{};
  absl::MutexLock lock(&mu_);
  auto it = names_.find(name);
  if (it == names_.end()) return;
  ApplyListing(it->second, versions, seq);
  // Kept while a fetch of the name is in progress (fetching_); the last one drops it.
  if (it->second.versions.empty() && it->second.loaded.empty() && fetching_.count(name) == 0) {
    names_.erase(it);
  }
}

template <class T>
void ModelCache<T>::EndFetch(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto fetching = fetching_.find(name);
  if (--fetching->second > 0) return;
  fetching_.erase(fetching);
  auto it = names_.find(name);
  if (it != names_.end() && it->second.versions.empty() && it->second.loaded.empty()) {
    names_.erase(it);
  }
}

template <class T>
void ModelCache<T>::Invalidate(std::string_view name) {
  absl::MutexLock lock(&mu_);
  last_invalidated_seq_ = ++seq_;
  auto it = names_.find(name);
  if (it != names_.end()) it->second.invalidated_seq = last_invalidated_seq_;
}

template <class T>
absl::Status ModelCache<T>::Refresh() {
  std::vector<std::pair<std::string, bool>> names;  // (name, wants_latest)
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, state] : names_) names.emplace_back(name, state.wants_latest);
  }
  absl::Status first_error;
  for (const auto& [name, wants_latest] : names) {
    // Names only asked for by explicit version: just forget deleted versions, load nothing.
    absl::StatusOr<ModelPtr> result = Fetch(name, 0, /*load=*/wants_latest);
    if (!result.ok() && !absl::IsNotFound(result.status()) && first_error.ok()) {
      first_error = result.status();
    }
  }
  absl::MutexLock lock(&mu_);
  last_refresh_status_ = first_error;
  return first_error;
}

template <class T>
void ModelCache<T>::StartPolling(absl::Duration interval) {
  absl::MutexLock control(&control_mu_);
  if (poller_.joinable()) {
    {
      absl::MutexLock lock(&poll_mu_);
      stop_ = true;
      poll_cv_.SignalAll();
    }
    poller_.join();
  }
  if (interval <= absl::ZeroDuration()) interval = absl::Milliseconds(1);
  {
    absl::MutexLock lock(&poll_mu_);
    stop_ = false;
  }
  {
    absl::MutexLock lock(&mu_);
    polling_ = true;
    // Entries cached before polling started may be stale: consult the store once more.
    for (auto& [name, state] : names_) state.invalidated_seq = ++seq_;
    last_invalidated_seq_ = ++seq_;
  }
  poller_ = std::thread([this, interval] { PollLoop(interval); });
}

template <class T>
void ModelCache<T>::StopPolling() {
  absl::MutexLock control(&control_mu_);
  if (!poller_.joinable()) return;
  {
    absl::MutexLock lock(&poll_mu_);
    stop_ = true;
    poll_cv_.SignalAll();
  }
  poller_.join();
  absl::MutexLock lock(&mu_);
  polling_ = false;
}

template <class T>
bool ModelCache<T>::polling() const {
  absl::MutexLock lock(&mu_);
  return polling_;
}

template <class T>
absl::Status ModelCache<T>::last_refresh_status() const {
  absl::MutexLock lock(&mu_);
  return last_refresh_status_;
}

template <class T>
void ModelCache<T>::PollLoop(absl::Duration interval) {
  for (;;) {
    {
      absl::MutexLock lock(&poll_mu_);
      const absl::Time deadline = absl::Now() + interval;
      while (!stop_ && absl::Now() < deadline) poll_cv_.WaitWithDeadline(&poll_mu_, deadline);
      if (stop_) return;
    }
    Refresh().IgnoreError();  // recorded in last_refresh_status_
  }
}

}  // namespace maas::store

#endif  // MAAS_COMMON_STORE_MODEL_CACHE_H_
