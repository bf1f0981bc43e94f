// ReflectionResponder: grpc.reflection.v1alpha answers from the compiled-in descriptors.
#include "services/gateway/reflection.h"

#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "maas/generative/v1/generative.pb.h"  // links the generative descriptors into the pool

namespace maas::gateway {
namespace {

using google::protobuf::internal::WireFormatLite;

// The length-delimited fields of a message, by field number (repeated ones in order).
std::multimap<int, std::string> Fields(const std::string& bytes) {
  std::multimap<int, std::string> out;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  while (uint32_t tag = in.ReadTag()) {
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    if (WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      std::string value;
      REQUIRE(WireFormatLite::ReadString(&in, &value));
      out.emplace(field, value);
    } else if (WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_VARINT) {
      uint64_t v = 0;
      REQUIRE(in.ReadVarint64(&v));
      out.emplace(field, std::to_string(v));
    } else {
      FAIL("unexpected wire type");
    }
  }
  return out;
}

std::string Request(int field, const std::string& value) {
  std::string out;
  out.push_back(static_cast<char>(field << 3 | 2));
  out.push_back(static_cast<char>(value.size()));  // short values only
  return out + value;
}

const ReflectionResponder& Responder() {
  static const auto* responder =
      new ReflectionResponder({"maas.generative.v1.GenerativeService", "grpc.health.v1.Health"});
  return *responder;
}

TEST_CASE("reflection lists the configured services") {
  maas::generative::v1::SampleRequest keep_linked;
  const auto response = Fields(Responder().Answer(Request(7, "")));
  REQUIRE(response.count(6) == 1);
  std::vector<std::string> names;
  const auto list = Fields(response.find(6)->second);
  for (auto it = list.lower_bound(1); it != list.upper_bound(1); ++it) {
    names.push_back(Fields(it->second).find(1)->second);
  }
  CHECK(names ==
        std::vector<std::string>{"maas.generative.v1.GenerativeService", "grpc.health.v1.Health"});
  CHECK(response.find(2)->second == Request(7, ""));  // original_request
}

TEST_CASE("reflection answers a symbol with its file and the file's dependencies") {
  for (const std::string symbol :
       {"maas.generative.v1.GenerativeService", "maas.generative.v1.SampleRequest",
        "grpc.health.v1.Health", "grpc.health.v1.HealthCheckResponse"}) {
    CAPTURE(symbol);
    const auto response = Fields(Responder().Answer(Request(4, symbol)));
    REQUIRE(response.count(4) == 1);
    const auto files = Fields(response.find(4)->second);
    std::set<std::string> names;
    std::set<std::string> declared;
    for (auto it = files.lower_bound(1); it != files.upper_bound(1); ++it) {
      google::protobuf::FileDescriptorProto file;
      REQUIRE(file.ParseFromString(it->second));
      names.insert(file.name());
      for (const auto& s : file.service()) declared.insert(file.package() + "." + s.name());
      for (const auto& m : file.message_type()) declared.insert(file.package() + "." + m.name());
    }
    CHECK(declared.count(symbol) == 1);
    if (symbol.rfind("maas.", 0) == 0) CHECK(names.count("maas/common/v1/common.proto") == 1);
  }
  const auto by_name = Fields(Responder().Answer(Request(3, "grpc/health/v1/health.proto")));
  CHECK(by_name.count(4) == 1);
}

TEST_CASE("reflection answers unknown symbols and malformed requests with an error") {
  const auto missing = Fields(Responder().Answer(Request(4, "no.such.Symbol")));
  REQUIRE(missing.count(7) == 1);
  CHECK(Fields(missing.find(7)->second).find(1)->second == "5");  // NOT_FOUND
  const auto malformed = Fields(Responder().Answer(std::string("\x22\x7f", 2)));
  REQUIRE(malformed.count(7) == 1);
  CHECK(Fields(malformed.find(7)->second).find(1)->second == "3");  // INVALID_ARGUMENT
  const auto empty = Fields(Responder().Answer(""));
  REQUIRE(empty.count(7) == 1);
  CHECK(Fields(empty.find(7)->second).find(1)->second == "12");  // UNIMPLEMENTED
}

}  // namespace
}  // namespace maas::gateway
