// Tests of ListModels paging tokens (list_page.h): what a token carries and what it refuses.
#include "common/registry/list_page.h"

#include <catch2/catch.hpp>
#include <limits>
#include <string>

namespace maas::registry {
namespace {

common::v1::ListModelsRequest Request(const std::string& prefix, bool all_versions, int page_size,
                                      const std::string& token = "") {
  common::v1::ListModelsRequest request;
  request.set_name_prefix(prefix);
  request.set_all_versions(all_versions);
  request.set_page_size(page_size);
  request.set_page_token(token);
  return request;
}

TEST_CASE("A page token carries the page's last entry back to the next request") {
  const common::v1::ListModelsRequest first = Request("m", true, 10);
  const absl::StatusOr<ListPaging> none = ParseListPaging(first);
  REQUIRE(none.ok());
  CHECK(none->page_size == 10);
  CHECK_FALSE(none->after.has_value());
  CHECK(none->Wants({"a", 1, 1}));
  // Names may hold the separator and any byte the store allows; versions up to int64's range.
  for (const ListKey& last :
       {ListKey{"m:odel.x_y-z", 7, 2}, ListKey{"m", 9223372036854775807, 1}, ListKey{"m0", 0, 0}}) {
    const std::string token = MakeListPageToken(first, last);
    CHECK(token.find_first_not_of(
              "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
          std::string::npos);  // URL- and header-safe
    const absl::StatusOr<ListPaging> next = ParseListPaging(Request("m", true, 10, token));
    REQUIRE(next.ok());
    REQUIRE(next->after.has_value());
    CHECK(next->after->name == last.name);
    CHECK(next->after->version == last.version);
    CHECK(next->after->type == last.type);
    // Only entries after it: by name, then version, then type.
    CHECK_FALSE(next->Wants(last));
    CHECK(next->Wants({last.name, last.version, last.type + 1}));
    CHECK_FALSE(next->Wants({last.name, last.version - 1, last.type + 1}));
    CHECK(next->Wants({last.name + "a", 0, 0}));
  }
}

TEST_CASE("page_size is 0 for no paging or 1..1000 and larger sizes are taken as 1000") {
  CHECK(ParseListPaging(Request("", false, 0))->page_size == 0);
  CHECK(ParseListPaging(Request("", false, 1))->page_size == 1);
  CHECK(ParseListPaging(Request("", false, 1000))->page_size == 1000);
  CHECK(ParseListPaging(Request("", false, 2147483647))->page_size == kMaxListPageSize);
  const absl::StatusOr<ListPaging> negative = ParseListPaging(Request("", false, -1));
  REQUIRE(absl::IsInvalidArgument(negative.status()));
  CHECK_THAT(std::string(negative.status().message()), Catch::Contains("page_size is -1"));
}

TEST_CASE("A page token is refused for another listing, without page_size, or damaged") {
  const common::v1::ListModelsRequest first = Request("ab", false, 5);
  const std::string token = MakeListPageToken(first, {"abc", 3, 1});
  REQUIRE(ParseListPaging(Request("ab", false, 5, token)).ok());
  REQUIRE(ParseListPaging(Request("ab", false, 999, token)).ok());  // the size may change
  // Another prefix (also one that concatenates alike) or all_versions: another listing.
  for (const common::v1::ListModelsRequest& other :
       {Request("a", false, 5, token), Request("ab", true, 5, token), Request("", false, 5, token),
        Request("abc", false, 5, token)}) {
    const absl::StatusOr<ListPaging> refused = ParseListPaging(other);
    REQUIRE(absl::IsInvalidArgument(refused.status()));
    CHECK_THAT(std::string(refused.status().message()),
               Catch::Contains("another name_prefix or all_versions"));
  }
  const absl::StatusOr<ListPaging> no_size = ParseListPaging(Request("ab", false, 0, token));
  REQUIRE(absl::IsInvalidArgument(no_size.status()));
  CHECK_THAT(std::string(no_size.status().message()), Catch::Contains("page_size is 0"));
  std::string truncated = token.substr(0, token.size() - 3);
  std::string flipped = token;
  flipped[0] = flipped[0] == 'A' ? 'B' : 'A';
  for (const std::string& bad : {std::string("not a token!"), std::string("AAAA"), truncated,
                                 flipped, std::string("MTphOjE6Mjp4")}) {
    CAPTURE(bad);
    const absl::StatusOr<ListPaging> refused = ParseListPaging(Request("ab", false, 5, bad));
    REQUIRE(absl::IsInvalidArgument(refused.status()));
  }
}

// A review: a gateway whose --max_message_bytes was below its services' got their pages refused
// by its receive limit; callers (and the gateway) now say how large a page they take.
TEST_CASE("max_page_bytes bounds the page with the server's limit") {
  common::v1::ListModelsRequest request = Request("", false, 10);
  CHECK(ParseListPaging(request)->Budget(0) == std::numeric_limits<int64_t>::max());
  CHECK(ParseListPaging(request)->Budget(100000) == 100000 - kListPageTokenReserve);
  request.set_max_page_bytes(65536);
  CHECK(ParseListPaging(request)->Budget(0) == 65536 - kListPageTokenReserve);
  CHECK(ParseListPaging(request)->Budget(100000) == 65536 - kListPageTokenReserve);
  CHECK(ParseListPaging(request)->Budget(2000) == 2000 - kListPageTokenReserve);
  request.set_max_page_bytes(10);
  CHECK(ParseListPaging(request)->Budget(100000) == 1);  // no room: the first entry is refused
  request.set_max_page_bytes(-1);
  const absl::StatusOr<ListPaging> refused = ParseListPaging(request);
  REQUIRE(absl::IsInvalidArgument(refused.status()));
  CHECK_THAT(std::string(refused.status().message()), Catch::Contains("max_page_bytes is -1"));
}

// Without all_versions an entry is a model: its key leaves the version out.
TEST_CASE("Listings of latest versions key entries by name and type") {
  const ListPaging latest = *ParseListPaging(Request("", false, 10));
  const ListPaging all = *ParseListPaging(Request("", true, 10));
  common::v1::ModelInfo info;
  info.set_name("m");
  info.set_version(7);
  info.set_type(common::v1::GENERATIVE);
  CHECK(latest.KeyOf(info).version == 0);
  CHECK(all.KeyOf(info).version == 7);
}

}  // namespace
}  // namespace maas::registry
