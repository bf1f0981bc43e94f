#include "common/registry/list_page.h"

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/io/coded_stream.h"

namespace maas::registry {
namespace {

constexpr char kTokenFormat[] = "1";

// FNV-1a (64 bits), in hex: the same in every process and build, unlike absl::Hash, so a token
// made by the gateway checks on the services.
std::string Fnv1a(absl::string_view bytes) {
  uint64_t hash = 14695981039346656037ull;
  for (char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return absl::StrCat(absl::Hex(hash, absl::kZeroPad16));
}

// The request's filter: a token continues only the listing it came from.
std::string FilterFingerprint(const common::v1::ListModelsRequest& request) {
  // The NUL ends the prefix, so no prefix ends like the flag's byte.
  return Fnv1a(absl::StrCat(request.name_prefix(), std::string(1, '\0'),
                            request.all_versions() ? "1" : "0"));
}

absl::Status BadToken() {
  return absl::InvalidArgumentError(
      "page_token is not a ListModels page token (corrupt or truncated): send the previous "
      "answer's next_page_token unchanged, or leave page_token empty for the first page");
}

}  // namespace

absl::StatusOr<ListPaging> ParseListPaging(const common::v1::ListModelsRequest& request) {
  ListPaging paging;
  if (request.page_size() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size is ", request.page_size(), "; use 1..", kMaxListPageSize,
                     " for pages, or 0 for every model in one answer"));
  }
  paging.page_size = std::min(request.page_size(), kMaxListPageSize);
  paging.latest_only = !request.all_versions();
  if (request.max_page_bytes() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_page_bytes is ", request.max_page_bytes(),
        "; use the largest page you accept in bytes, or 0 for the server's --max_message_bytes"));
  }
  paging.max_page_bytes = request.max_page_bytes();
  if (request.page_token().empty()) return paging;
  if (paging.page_size == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token is set but page_size is 0: send a page_size (1..",
                     kMaxListPageSize, ") with the token, as for the listing's first page"));
  }
  std::string raw;
  if (!absl::WebSafeBase64Unescape(request.page_token(), &raw)) return BadToken();
  // body "." checksum, the body being format : filter : type : version : name (the name last: it
  // may hold ':' and '.'). The checksum catches a truncated or edited token that would still
  // parse, and continue the listing from elsewhere.
  const std::size_t dot = raw.rfind('.');
  if (dot == std::string::npos || raw.substr(dot + 1) != Fnv1a(raw.substr(0, dot))) {
    return BadToken();
  }
  const std::vector<std::string> parts =
      absl::StrSplit(raw.substr(0, dot), absl::MaxSplits(':', 4));
  ListKey key;
  if (parts.size() != 5 || parts[0] != kTokenFormat || !absl::SimpleAtoi(parts[2], &key.type) ||
      !absl::SimpleAtoi(parts[3], &key.version) || key.version < 0 || parts[4].empty()) {
    return BadToken();
  }
  if (parts[1] != FilterFingerprint(request)) {
    return absl::InvalidArgumentError(
        "page_token belongs to a listing with another name_prefix or all_versions: send the "
        "name_prefix and all_versions of the listing's first page with its tokens");
  }
  key.name = parts[4];
  paging.after = std::move(key);
  return paging;
}

std::string MakeListPageToken(const common::v1::ListModelsRequest& request, const ListKey& last) {
  const std::string body = absl::StrCat(kTokenFormat, ":", FilterFingerprint(request), ":",
                                        last.type, ":", last.version, ":", last.name);
  return absl::WebSafeBase64Escape(absl::StrCat(body, ".", Fnv1a(body)));
}

int64_t ListPaging::Budget(int64_t max_message_bytes) const {
  int64_t limit = max_message_bytes > 0 ? max_message_bytes : 0;
  if (max_page_bytes > 0 && (limit == 0 || max_page_bytes < limit)) limit = max_page_bytes;
  if (limit == 0) return std::numeric_limits<int64_t>::max();
  return std::max<int64_t>(limit - kListPageTokenReserve, 1);
}

int64_t ListEntryBytes(std::size_t size) {
  return 1 + google::protobuf::io::CodedOutputStream::VarintSize32(static_cast<uint32_t>(size)) +
         static_cast<int64_t>(size);
}

ListPageFill::ListPageFill(const ListPaging& paging, int64_t max_message_bytes, std::string limit,
                           int64_t used_bytes)
    : paging_(paging),
      max_message_bytes_(max_message_bytes),
      limit_(std::move(limit)),
      budget_(paging.Budget(max_message_bytes)),
      bytes_(used_bytes) {}

absl::StatusOr<bool> ListPageFill::Take(const ListKey& key, int64_t version, std::size_t size) {
  const int64_t entry_bytes = ListEntryBytes(size);
  if (paging_.page_size > 0 && (full() || entry_bytes > budget_ - bytes_)) {
    if (entries_ == 0) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the listing entry of model \"", key.name, "\" version ", version, " takes ", entry_bytes,
          " bytes, more than a page may (", limit_, " ", max_message_bytes_, ", max_page_bytes ",
          paging_.max_page_bytes,
          ", less 1 KiB for the token): raise --max_message_bytes, or max_page_bytes"));
    }
    more_ = true;
    return false;
  }
  ++entries_;
  bytes_ += entry_bytes;
  last_ = key;
  return true;
}

std::string ListPageFill::NextPageToken(const common::v1::ListModelsRequest& request) const {
  return more_ && last_.has_value() ? MakeListPageToken(request, *last_) : std::string();
}

}  // namespace maas::registry
