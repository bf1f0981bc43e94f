#include "services/gateway/h2/grpc_framing.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace maas::gateway::h2 {
namespace {

// One gRPC message: flag 0, big-endian length, `payload`.
std::string Message(const std::string& payload) {
  std::string m(5, '\0');
  const uint32_t n = static_cast<uint32_t>(payload.size());
  m[1] = static_cast<char>(n >> 24);
  m[2] = static_cast<char>(n >> 16);
  m[3] = static_cast<char>(n >> 8);
  m[4] = static_cast<char>(n);
  return m + payload;
}

bool Feed(MessageScanner& s, const std::string& bytes) {
  return s.Feed(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

TEST_CASE("message scanner counts messages split at every possible point") {
  // Payloads that look like prefixes must not confuse it: it skips them by length.
  const std::string stream = Message("") + Message(std::string(5, '\xff')) +
                             Message(std::string(300, '\0')) + Message("abc");
  for (size_t cut1 = 0; cut1 <= stream.size(); ++cut1) {
    for (size_t cut2 = cut1; cut2 <= stream.size(); cut2 += 7) {
      MessageScanner s(1000);
      REQUIRE(Feed(s, stream.substr(0, cut1)));
      REQUIRE(Feed(s, stream.substr(cut1, cut2 - cut1)));
      REQUIRE(Feed(s, stream.substr(cut2)));
      CHECK(s.messages() == 4);
      CHECK(s.at_boundary());
      CHECK(s.too_large() == 0);
    }
  }
}

TEST_CASE("message scanner byte by byte against the known message boundaries") {
  std::mt19937 rng(7);
  std::string stream;
  std::vector<size_t> ends;  // offset just past each prefix
  for (int i = 0; i < 50; ++i) {
    const size_t n = rng() % 40;
    ends.push_back(stream.size() + 5);
    stream += Message(std::string(n, static_cast<char>(rng())));
  }
  MessageScanner s(64);
  size_t seen = 0;
  for (size_t i = 0; i < stream.size(); ++i) {
    REQUIRE(Feed(s, stream.substr(i, 1)));
    while (seen < ends.size() && ends[seen] <= i + 1) ++seen;
    REQUIRE(s.messages() == static_cast<int64_t>(seen));
  }
  CHECK(s.at_boundary());
}

TEST_CASE("message scanner stops at a message declaring more than the maximum") {
  MessageScanner s(100);
  CHECK(Feed(s, Message(std::string(100, 'x'))));
  CHECK(Feed(s, Message(std::string(101, 'y')).substr(0, 4)));  // prefix incomplete: not yet
  CHECK_FALSE(Feed(s, Message(std::string(101, 'y')).substr(4)));
  CHECK(s.too_large() == 101);
  CHECK_FALSE(Feed(s, Message("")));  // stays failed
  CHECK(s.messages() == 2);
}

TEST_CASE("message scanner tells where the oversized message began in the failing call") {
  const std::string ok = Message(std::string(7, 'a')) + Message("");
  const std::string big = Message(std::string(11, 'b'));
  {
    MessageScanner s(10);  // the complete messages before it, in the same call, may go on
    CHECK_FALSE(Feed(s, ok + big));
    CHECK(s.taken_before_stop() == ok.size());
  }
  {
    MessageScanner s(10);  // its prefix began in an earlier call: nothing of this one
    CHECK(Feed(s, ok + big.substr(0, 2)));
    CHECK_FALSE(Feed(s, big.substr(2)));
    CHECK(s.taken_before_stop() == 0);
  }
}

TEST_CASE("message scanner is mid-message until the payload is complete") {
  MessageScanner s(10);
  const std::string m = Message("0123456789");
  CHECK(Feed(s, m.substr(0, 7)));
  CHECK_FALSE(s.at_boundary());
  CHECK(Feed(s, m.substr(7)));
  CHECK(s.at_boundary());
}

TEST_CASE("message scanner with one message allowed stops where the second begins") {
  const std::string first =
      Message(std::string(300, '\0'));  // payload bytes that look like prefixes
  const std::string stream = first + Message("ab");
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    MessageScanner s(1000);
    s.set_max_messages(1);
    const bool first_ok = Feed(s, stream.substr(0, cut));
    CHECK(first_ok == (cut <= first.size()));
    if (first_ok) {
      CHECK_FALSE(Feed(s, stream.substr(cut)));
      CHECK(s.taken_before_stop() == first.size() - cut);
    } else {
      CHECK(s.taken_before_stop() == first.size());
    }
    CHECK(s.too_many());
    CHECK(s.messages() == 1);
    CHECK_FALSE(Feed(s, Message("")));  // stopped for good
  }
  MessageScanner one(1000);
  one.set_max_messages(1);
  CHECK(Feed(one, first));  // exactly one message is fine
  CHECK_FALSE(one.too_many());
  CHECK(one.at_boundary());
}

}  // namespace
}  // namespace maas::gateway::h2
