// ListModels paging, shared by the services' listings and the gateway's merge (transport-free).
//
// A listing's entries (ModelInfo and UnreadableVersion alike) sort by name, then version, then
// type. A page token names the last entry of its page, so the next page starts right after it
// (keyset paging: an entry that exists throughout a listing is in exactly one page, whatever is
// created or deleted meanwhile), plus a fingerprint of the request's filter (name_prefix,
// all_versions), so a token cannot silently continue another listing. The gateway forwards the
// caller's request to every service unchanged and each service compares the token's position with
// its own entries' (name, version, its type): tokens work on the gateway and the services alike.
#ifndef MAAS_COMMON_REGISTRY_LIST_PAGE_H_
#define MAAS_COMMON_REGISTRY_LIST_PAGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>

#include "absl/status/statusor.h"
#include "maas/common/v1/common.pb.h"

namespace maas::registry {

// Largest page_size honoured; larger requests get pages of this size.
inline constexpr int kMaxListPageSize = 1000;

// Where an entry sorts in a listing (ListPaging::KeyOf makes them).
struct ListKey {
  std::string name;
  int64_t version = 0;  // 0 in listings of latest versions: there, an entry is a model
  int type = 0;         // common::v1::ModelType
  friend bool operator<(const ListKey& a, const ListKey& b) {
    return std::tie(a.name, a.version, a.type) < std::tie(b.name, b.version, b.type);
  }
};

// A request's paging, checked.
struct ListPaging {
  // At most this many entries in the answer; 0: no paging (every entry, in one answer).
  int page_size = 0;
  // The caller's max_page_bytes (0: none).
  int64_t max_page_bytes = 0;
  // Without all_versions an entry is a model (name, type) whatever its latest version: a model
  // given a new version between pages is not listed again.
  bool latest_only = true;
  // The previous page's last entry: this page holds only entries after it. None: the first page.
  std::optional<ListKey> after;

  ListKey Key(const std::string& name, int64_t version, int type) const {
    return {name, latest_only ? 0 : version, type};
  }
  ListKey KeyOf(const common::v1::ModelInfo& info) const {
    return Key(info.name(), info.version(), info.type());
  }
  ListKey KeyOf(const common::v1::UnreadableVersion& bad) const {
    return Key(bad.name(), bad.version(), bad.type());
  }
  // Whether an entry with `key` belongs after the previous page.
  bool Wants(const ListKey& key) const { return !after.has_value() || *after < key; }
  // The payload bytes a page may take when the server's largest message is `max_message_bytes`
  // (0: no limit): the smaller limit, less room for the token. No limit: int64's max.
  int64_t Budget(int64_t max_message_bytes) const;
};

// The paging `request` asks for. INVALID_ARGUMENT for a negative page_size or max_page_bytes,
// a page_token with page_size 0, a token this code did not make, or a
// token of a listing with another name_prefix or all_versions; each message says what to send
// instead.
absl::StatusOr<ListPaging> ParseListPaging(const common::v1::ListModelsRequest& request);

// The next_page_token of a page of `request`'s listing whose last entry is `last`.
std::string MakeListPageToken(const common::v1::ListModelsRequest& request, const ListKey& last);

// Room a response keeps for its next_page_token (model names have at most 63 bytes).
inline constexpr int64_t kListPageTokenReserve = 1024;

// The bytes an entry of `size` bytes adds to a response (tag, length, payload).
int64_t ListEntryBytes(std::size_t size);

// Fills one page of a listing (the services' and the gateway's merge alike): entries offered in
// listing order, at most page_size of them within ListPaging::Budget, and whether more follow.
// Unpaged (page_size 0): takes every entry.
class ListPageFill {
 public:
  // `limit` names the server's message limit in a refusal (e.g. "--max_message_bytes");
  // `used_bytes` of the response are taken already (the gateway's missing_backends).
  ListPageFill(const ListPaging& paging, int64_t max_message_bytes, std::string limit,
               int64_t used_bytes = 0);

  // The page holds page_size entries: any further entry follows it (asked before an entry's
  // metadata is read).
  bool full() const { return paging_.page_size > 0 && entries_ >= paging_.page_size; }
  // Offers the entry at `key` (`version`: its real version, for a refusal) of `size` serialized
  // bytes: true when it goes into the page (it is then the page's last); false when the page
  // ends before it (more follow); RESOURCE_EXHAUSTED naming it when it alone is larger than a page
  // may be.
  absl::StatusOr<bool> Take(const ListKey& key, int64_t version, std::size_t size);
  // Entries follow the page (the gateway: a backend with more).
  void MarkMore() { more_ = true; }
  bool more() const { return more_; }
  // The page's next_page_token: its last entry when more follow, else empty.
  std::string NextPageToken(const common::v1::ListModelsRequest& request) const;

 private:
  const ListPaging& paging_;
  const int64_t max_message_bytes_;
  const std::string limit_;
  const int64_t budget_;
  int entries_ = 0;
  int64_t bytes_;
  bool more_ = false;
  std::optional<ListKey> last_;
};

}  // namespace maas::registry

#endif  // MAAS_COMMON_REGISTRY_LIST_PAGE_H_
