// StoredBytes: the stored bytes of one model version as a loader (ModelCache's Loader,
// ModelRepository's Parser) receives them, either the load's own or borrowed from a caller that
// keeps them. A loader parses them, then calls Release(): the load's own bytes are freed then,
// before the model is built from the parsed message, so that a load never holds the bytes, the
// whole parsed message and the model at once (a large pipeline's load held all three, ~2x the
// pipeline at its peak). Borrowed bytes (a writer checking that the bytes it is about to store
// load back, which it writes afterwards) stay with their owner; Release only ends the view.
//
//   absl::StatusOr<std::shared_ptr<const Model>> Load(store::StoredBytes bytes) {
//     Message message;
//     if (!message.ParseFromString(bytes.str())) return absl::DataLossError(...);
//     bytes.Release();
//     ...  // build the model from `message`, with bytes.size() still known
//   }
#ifndef MAAS_COMMON_STORE_STORED_BYTES_H_
#define MAAS_COMMON_STORE_STORED_BYTES_H_

#include <cstddef>
#include <string>
#include <utility>

namespace maas::store {

class StoredBytes {
 public:
  // Takes `bytes` (a temporary, or a string the caller moves in): a load's own bytes.
  StoredBytes(std::string&& bytes)  // NOLINT(google-explicit-constructor)
      : owned_(std::move(bytes)), size_(owned_.size()) {}
  // Views `bytes`, which the caller keeps (and which must outlive this object).
  static StoredBytes Borrow(const std::string& bytes) {
    StoredBytes borrowed{std::string()};
    borrowed.borrowed_ = &bytes;
    borrowed.size_ = bytes.size();
    return borrowed;
  }

  StoredBytes(StoredBytes&&) = default;
  StoredBytes& operator=(StoredBytes&&) = default;
  StoredBytes(const StoredBytes&) = delete;
  StoredBytes& operator=(const StoredBytes&) = delete;

  // The bytes; empty after Release.
  const std::string& str() const { return borrowed_ != nullptr ? *borrowed_ : owned_; }
  // Their size as given, also after Release (a loaded version's ModelInfo.size_bytes).
  size_t size() const { return size_; }
  // Frees the bytes when they are this object's own; ends the view of borrowed ones.
  void Release() {
    borrowed_ = nullptr;
    std::string().swap(owned_);
  }

 private:
  std::string owned_;
  const std::string* borrowed_ = nullptr;
  size_t size_ = 0;
};

}  // namespace maas::store

#endif  // MAAS_COMMON_STORE_STORED_BYTES_H_
