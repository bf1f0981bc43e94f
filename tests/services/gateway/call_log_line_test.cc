// The h2 front's cheaper call log line against its oracle, server::FormatCallLogLine: the same
// bytes for every entry, on the fast path and the fallback.
#include "services/gateway/call_log_line.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/server/server.h"

namespace maas::gateway {
namespace {

std::string Oracle(const std::vector<server::CallLogEntry>& entries) {
  std::string lines;
  for (const server::CallLogEntry& e : entries) lines += server::FormatCallLogLine(e) + "\n";
  return lines;
}

std::string Formatted(const std::vector<server::CallLogEntry>& entries) {
  CallLogLineFormatter f;
  std::string lines;
  for (const server::CallLogEntry& e : entries) f.Append(e, &lines);
  return lines;
}

TEST_CASE("call log line formatter equals FormatCallLogLine on random plain entries") {
  std::mt19937_64 rng(20261202);
  const std::vector<std::string> pool = {
      "",
      "maas-gateway",
      "/maas.discriminative.v1.DiscriminativeService/Classify",
      "ipv4:127.0.0.1:51990",
      "OK",
      "UNAVAILABLE",
      "words",
      "h2-4242-17",
      "no backend of route x is reachable; retry later (see ...)"};
  auto pick = [&] { return std::string_view(pool[rng() % pool.size()]); };
  std::vector<server::CallLogEntry> entries;
  const int64_t first_ns = int64_t{1795000000} * 1000000000;  // late 2026
  int64_t ns = first_ns;
  for (int i = 0; i < 20000; ++i) {
    server::CallLogEntry e;
    switch (rng() % 6) {  // forward in small and large steps, sometimes back; whole seconds too
      case 0:
        ns += static_cast<int64_t>(rng() % 1000);
        break;
      case 1:
        ns += static_cast<int64_t>(rng() % 3000000000);
        break;
      case 2:
        ns -= static_cast<int64_t>(rng() % 2000000000);
        break;
      case 3:
        ns = ns / 1000000000 * 1000000000;  // no fraction
        break;
      case 4:
        ns = ns / 1000 * 1000 + (rng() % 2) * 100;  // trailing zeros
        break;
      default:
        // Other days and years, up to ~110 years after the start (a jump from the start, not a
        // step: 20 000 steps of up to 400 days each would overflow int64 nanoseconds).
        ns =
            first_ns + ns % 1000000000 + 86400LL * 1000000000 * static_cast<int64_t>(rng() % 40000);
    }
    e.ts = absl::FromUnixNanos(ns);
    e.server = pick();
    e.method = pick();
    e.code = pick();
    e.peer = pick();
    e.message = pick();
    e.model = pick();
    e.request_id = pick();
    e.model_version = rng() % 3 == 0 ? 0 : static_cast<int64_t>(rng() % 100000);
    const int64_t d = static_cast<int64_t>(rng() % 5000000000);
    e.duration = absl::Nanoseconds(rng() % 4 == 0 ? d / 1000 * 1000 + 500 : d);  // ties of %.3f
    entries.push_back(e);
  }
  const std::string want = Oracle(entries);
  const std::string got = Formatted(entries);
  size_t i = 0;  // the first differing line, readable
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  const size_t start = want.rfind('\n', i) == std::string::npos ? 0 : want.rfind('\n', i) + 1;
  INFO("want: " << want.substr(start, want.find('\n', i) - start));
  INFO("got:  " << got.substr(start, got.find('\n', i) - start));
  CHECK(got == want);
}

TEST_CASE("call log line formatter falls back for strings to escape and unusual times") {
  std::vector<server::CallLogEntry> entries;
  const int64_t ns = int64_t{1795000000} * 1000000000 + 123456789;
  for (std::string_view odd : {std::string_view("say \"hi\""), std::string_view("back\\slash"),
                               std::string_view("line\nbreak"), std::string_view("tab\there"),
                               std::string_view("\x01"), std::string_view("caf\xc3\xa9"),
                               std::string_view("bad \xff utf-8"), std::string_view("del\x7f")}) {
    for (int field = 0; field < 4; ++field) {
      server::CallLogEntry e;
      e.ts = absl::FromUnixNanos(ns);
      e.server = "maas-gateway";
      e.method = field == 0 ? odd : "/a.B/C";
      e.code = "INTERNAL";
      e.peer = field == 1 ? odd : "ipv4:127.0.0.1:1";
      e.message = field == 2 ? odd : "";
      e.request_id = field == 3 ? odd : "id";
      entries.push_back(e);
    }
  }
  for (absl::Time t :
       {absl::FromUnixNanos(ns) + absl::Nanoseconds(0.25),  // below a nanosecond
        absl::UnixEpoch() - absl::Seconds(1.5), absl::UnixEpoch(),
        absl::FromCivil(absl::CivilSecond(2400, 2, 29, 23, 59, 59), absl::UTCTimeZone()) +
            absl::Nanoseconds(10)}) {
    server::CallLogEntry e;
    e.ts = t;
    e.server = "s";
    e.method = "m";
    e.code = "OK";
    e.duration = absl::Milliseconds(2.0625);
    e.peer = "p";
    entries.push_back(e);
  }
  CHECK(Formatted(entries) == Oracle(entries));
}

}  // namespace
}  // namespace maas::gateway
