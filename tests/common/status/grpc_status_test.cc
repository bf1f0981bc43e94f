// Tests of the absl::Status <-> grpc::Status conversion: every code both ways, message capping.
#include "common/status/grpc_status.h"

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

namespace maas {
namespace {

// The table is written from the gRPC/Abseil documentation (canonical code numbers), not from the
// code under test.
struct CodePair {
  absl::StatusCode absl_code;
  grpc::StatusCode grpc_code;
  int number;
};

const std::vector<CodePair>& AllCodes() {
  static const auto* codes = new std::vector<CodePair>{
      {absl::StatusCode::kOk, grpc::StatusCode::OK, 0},
      {absl::StatusCode::kCancelled, grpc::StatusCode::CANCELLED, 1},
      {absl::StatusCode::kUnknown, grpc::StatusCode::UNKNOWN, 2},
      {absl::StatusCode::kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT, 3},
      {absl::StatusCode::kDeadlineExceeded, grpc::StatusCode::DEADLINE_EXCEEDED, 4},
      {absl::StatusCode::kNotFound, grpc::StatusCode::NOT_FOUND, 5},
      {absl::StatusCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS, 6},
      {absl::StatusCode::kPermissionDenied, grpc::StatusCode::PERMISSION_DENIED, 7},
      {absl::StatusCode::kResourceExhausted, grpc::StatusCode::RESOURCE_EXHAUSTED, 8},
      {absl::StatusCode::kFailedPrecondition, grpc::StatusCode::FAILED_PRECONDITION, 9},
      {absl::StatusCode::kAborted, grpc::StatusCode::ABORTED, 10},
      {absl::StatusCode::kOutOfRange, grpc::StatusCode::OUT_OF_RANGE, 11},
      {absl::StatusCode::kUnimplemented, grpc::StatusCode::UNIMPLEMENTED, 12},
      {absl::StatusCode::kInternal, grpc::StatusCode::INTERNAL, 13},
      {absl::StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE, 14},
      {absl::StatusCode::kDataLoss, grpc::StatusCode::DATA_LOSS, 15},
      {absl::StatusCode::kUnauthenticated, grpc::StatusCode::UNAUTHENTICATED, 16},
  };
  return *codes;
}

TEST_CASE("ToGrpcStatus maps every code and keeps the message") {
  for (const CodePair& pair : AllCodes()) {
    CAPTURE(pair.number);
    absl::Status status(pair.absl_code, pair.absl_code == absl::StatusCode::kOk ? "" : "boom: x");
    grpc::Status converted = ToGrpcStatus(status);
    CHECK(converted.error_code() == pair.grpc_code);
    CHECK(static_cast<int>(converted.error_code()) == pair.number);
    if (pair.absl_code == absl::StatusCode::kOk) {
      CHECK(converted.ok());
      CHECK(converted.error_message().empty());
    } else {
      CHECK(converted.error_message() == "boom: x");
    }
  }
}

TEST_CASE("FromGrpcStatus maps every code and keeps the message") {
  for (const CodePair& pair : AllCodes()) {
    CAPTURE(pair.number);
    grpc::Status status(pair.grpc_code, pair.grpc_code == grpc::StatusCode::OK ? "" : "bad: y");
    absl::Status converted = FromGrpcStatus(status);
    CHECK(converted.code() == pair.absl_code);
    CHECK(static_cast<int>(converted.code()) == pair.number);
    if (pair.grpc_code != grpc::StatusCode::OK) CHECK(converted.message() == "bad: y");
  }
}

TEST_CASE("Round trip absl -> grpc -> absl is the identity for short messages") {
  for (const CodePair& pair : AllCodes()) {
    if (pair.absl_code == absl::StatusCode::kOk) continue;
    absl::Status status(pair.absl_code, "message " + std::to_string(pair.number));
    CHECK(FromGrpcStatus(ToGrpcStatus(status)) == status);
  }
  CHECK(FromGrpcStatus(ToGrpcStatus(absl::OkStatus())).ok());
}

TEST_CASE("Out-of-range codes become UNKNOWN") {
  absl::Status weird(static_cast<absl::StatusCode>(42), "strange");
  CHECK(ToGrpcStatus(weird).error_code() == grpc::StatusCode::UNKNOWN);
  CHECK(ToGrpcStatus(weird).error_message() == "strange");
  // 20 is not a gRPC code but lies in the enum's representable range (-32..31), so the cast is defined.
  grpc::Status weird_grpc(static_cast<grpc::StatusCode>(20), "odd");
  CHECK(FromGrpcStatus(weird_grpc).code() == absl::StatusCode::kUnknown);
  CHECK(FromGrpcStatus(weird_grpc).message() == "odd");
}

TEST_CASE("ToGrpcStatus caps the message at 1024 characters") {
  SECTION("exactly 1024 is kept") {
    std::string message(1024, 'a');
    grpc::Status converted = ToGrpcStatus(absl::InvalidArgumentError(message));
    CHECK(converted.error_message() == message);
  }
  SECTION("1025 is cut with ...") {
    std::string message(1025, 'b');
    grpc::Status converted = ToGrpcStatus(absl::InvalidArgumentError(message));
    REQUIRE(converted.error_message().size() == 1024);
    CHECK(converted.error_message() == std::string(1021, 'b') + "...");
  }
  SECTION("a huge message is cut and keeps its head") {
    std::string message = "head:" + std::string(100000, 'z');
    grpc::Status converted = ToGrpcStatus(absl::InternalError(message));
    REQUIRE(converted.error_message().size() == 1024);
    CHECK(converted.error_message().rfind("head:", 0) == 0);
    CHECK(converted.error_message().substr(1021) == "...");
    CHECK(converted.error_code() == grpc::StatusCode::INTERNAL);
  }
  SECTION("the cut never splits a UTF-8 character") {
    std::string message;
    for (int i = 0; i < 600; ++i) message += "\xC3\xA9";  // U+00E9, two bytes each: 1200 bytes
    grpc::Status converted = ToGrpcStatus(absl::InvalidArgumentError(message));
    const std::string& out = converted.error_message();
    REQUIRE(out.size() <= 1024);
    REQUIRE(out.size() >= 1020);
    CHECK(out.substr(out.size() - 3) == "...");
    std::string body = out.substr(0, out.size() - 3);
    CHECK(body.size() % 2 == 0);
    CHECK(body == message.substr(0, body.size()));
  }
}

}  // namespace
}  // namespace maas
