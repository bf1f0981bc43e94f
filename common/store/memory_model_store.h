// MemoryModelStore: a ModelStore kept in memory, with the same semantics as FileModelStore. For
// tests.
#ifndef MAAS_COMMON_STORE_MEMORY_MODEL_STORE_H_
#define MAAS_COMMON_STORE_MEMORY_MODEL_STORE_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/store/model_store.h"

namespace maas::store {

// Thread-safe. make_bytes runs without the lock held (it may call back into the store).
class MemoryModelStore : public ModelStore {
 public:
  MemoryModelStore() = default;
  MemoryModelStore(const MemoryModelStore&) = delete;
  MemoryModelStore& operator=(const MemoryModelStore&) = delete;

  using ModelStore::Put;
  absl::StatusOr<int64_t> Put(std::string_view name, const MakeBytesFn& make_bytes,
                              const PutOptions& options) override;
  absl::StatusOr<std::string> Get(std::string_view name, int64_t version) override;
  absl::StatusOr<std::vector<int64_t>> ListVersions(std::string_view name) override;
  using ModelStore::ListNames;
  absl::StatusOr<std::vector<std::string>> ListNames(const NameRange& range) override;
  using ModelStore::Delete;
  absl::StatusOr<std::vector<int64_t>> Delete(
      std::string_view name, int64_t version,
      const std::function<absl::Status()>& still_wanted) override;

 private:
  struct Model {
    int64_t next_version = 1;                 // never decreases: versions are not reused
    std::map<int64_t, std::string> versions;  // complete versions
    std::set<int64_t> writing;                // reserved, not complete yet
  };

  absl::Mutex mu_;
  std::map<std::string, Model, std::less<>> models_ ABSL_GUARDED_BY(mu_);
};

}  // namespace maas::store

#endif  // MAAS_COMMON_STORE_MEMORY_MODEL_STORE_H_
