// The gateway's call log: the lines it formats (server::FormatCallLogLine with the gateway's
// fields) and its writer (server::LineWriter, tested in tests/common/server), synchronous or on its
// own thread.
#include "services/gateway/call_log.h"

#include <catch2/catch.hpp>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace maas::gateway {
namespace {

TEST_CASE("call log without a flush interval writes each line before returning") {
  std::ostringstream out;
  CallLog log("maas-gateway", &out);
  log.WriteLines("{\"a\":1}\n");
  CHECK(out.str() == "{\"a\":1}\n");
  CallLog::Call call;
  call.request_id = "r-1";
  log.End(call, "/s.S/M", grpc::Status::OK, "ipv4:127.0.0.1:1", "m", 2);
  const std::string text = out.str();
  CHECK(text.find("\"request_id\":\"r-1\"") != std::string::npos);
  CHECK(text.find("\"model\":\"m\"") != std::string::npos);
  CHECK(text.find("\"server\":\"maas-gateway\"") != std::string::npos);
}

TEST_CASE(
    "call log with a flush interval writes every line, in order, by the time it is destroyed") {
  std::ostringstream out;
  std::string expected;
  {
    CallLog log("maas-gateway", &out, absl::Milliseconds(5));
    for (int i = 0; i < 2000; ++i) {
      const std::string line = absl::StrCat("{\"n\":", i, "}\n");
      log.WriteLines(line);
      expected += line;
    }
    CallLog::Call call;
    call.request_id = "r-2";
    log.End(call, "/s.S/M", grpc::Status::OK, "ipv4:127.0.0.1:1", "", 0);
    CHECK(log.dropped_lines() == 0);
  }
  const std::string text = out.str();
  REQUIRE(text.size() > expected.size());
  CHECK(text.substr(0, expected.size()) == expected);
  CHECK(text.find("\"request_id\":\"r-2\"", expected.size()) != std::string::npos);
}

}  // namespace
}  // namespace maas::gateway
