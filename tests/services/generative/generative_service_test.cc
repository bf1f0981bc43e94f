// Integration tests of the generative service's gRPC adapter on a real in-process server (port 0,
// in-memory store): FitModel with an unparseable message, --max_fit_bytes, Sample produced on the
// worker pool, an unknown estimator enum value.
#include "services/generative/adapter/generative_service.h"

#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "common/adapter/dispatcher.h"
#include "common/exec/worker_pool.h"
#include "common/registry/model_repository.h"
#include "common/server/server.h"
#include "common/store/memory_model_store.h"
#include "maas/generative/v1/generative.grpc.pb.h"
#include "services/generative/core/generative_core.h"
#include "tests/common/adapter/raw_call.h"
#include "tests/services/generative/service_stack.h"

namespace maas::generative {
namespace {

using testing::RawStreamCall;
using testing::RawUnaryCall;

constexpr char kService[] = "/maas.generative.v1.GenerativeService/";

std::string FitConfigBytes(const std::string& name) {
  v1::FitModelRequest request;
  request.mutable_config()->set_name(name);
  request.mutable_config()->mutable_uniform();
  return request.SerializeAsString();
}

std::string RowsBytes(const std::vector<double>& values) {
  v1::FitModelRequest request;
  request.mutable_rows()->set_rows(static_cast<uint32_t>(values.size() / 2));
  request.mutable_rows()->set_cols(2);
  for (double v : values) request.mutable_rows()->add_values(v);
  return request.SerializeAsString();
}

// issue 5 item 1: FitModel [config, 2 rows, bad, 2 rows] used to answer OK having kept 2 of 4 rows.
TEST_CASE("An unparseable FitModel message is INVALID_ARGUMENT and stores nothing") {
  Stack stack;
  v1::FitModelRequest bad_config;  // a second config whose name is invalid UTF-8
  bad_config.mutable_config()->set_name("\xff\xfe");
  for (const std::string& bad :
       {std::string("\xff\xff\xff\x01", 4), bad_config.SerializeAsString()}) {
    auto result = RawStreamCall(
        stack.channel, std::string(kService) + "FitModel",
        {FitConfigBytes("fit"), RowsBytes({0, 0, 1, 1}), bad, RowsBytes({5, 5, 6, 6})});
    CHECK(result.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(result.status.error_message().find("message 3 of the stream") != std::string::npos);
  }
  stack.WaitIdle();
  CHECK_FALSE(stack.store.ListVersions("fit").ok());
  auto good =
      RawStreamCall(stack.channel, std::string(kService) + "FitModel",
                    {FitConfigBytes("fit"), RowsBytes({0, 0, 1, 1}), RowsBytes({5, 5, 6, 6})});
  REQUIRE(good.status.ok());
  v1::FitModelResponse response;
  REQUIRE(response.ParseFromString(good.responses.at(0)));
  CHECK(response.trace().num_rows() == 4);
}

TEST_CASE("A FitModel stream above --max_fit_bytes is RESOURCE_EXHAUSTED and stores nothing") {
  Stack stack(/*max_fit_bytes=*/200);
  std::vector<double> rows(40, 1.0);
  auto result = RawStreamCall(stack.channel, std::string(kService) + "FitModel",
                              {FitConfigBytes("fit"), RowsBytes(rows), RowsBytes(rows)});
  CHECK(result.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(result.status.error_message().find("--max_fit_bytes") != std::string::npos);
  stack.WaitIdle();
  CHECK_FALSE(stack.store.ListVersions("fit").ok());
}

// A stream-level cap alone let any number of concurrent FitModel streams each hold up to
// --max_fit_bytes, so together they could exhaust the pod's memory.
TEST_CASE("FitModel streams that together pass --max_total_fit_bytes are RESOURCE_EXHAUSTED") {
  adapter::StreamBudget budget(/*max_bytes=*/600, "--max_total_fit_bytes");
  Stack stack(/*max_fit_bytes=*/0, &budget);
  std::vector<double> rows(40);  // one message of ~330 bytes: A's two fit, B's next would not
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<double>(i);
  // Stream A holds two messages and stays open.
  auto stub = v1::GenerativeService::NewStub(stack.channel);
  grpc::ClientContext context;
  v1::FitModelResponse response;
  auto writer = stub->FitModel(&context, &response);
  v1::FitModelRequest message;
  REQUIRE(message.ParseFromString(FitConfigBytes("held")));
  REQUIRE(writer->Write(message));
  REQUIRE(message.ParseFromString(RowsBytes(rows)));
  REQUIRE(writer->Write(message));
  const absl::Time limit = absl::Now() + absl::Seconds(30);
  while (budget.held() < 330 && absl::Now() < limit) absl::SleepFor(absl::Milliseconds(2));
  REQUIRE(budget.held() >= 330);
  // Stream B alone is within every per-stream cap, but not beside A.
  auto refused = RawStreamCall(stack.channel, std::string(kService) + "FitModel",
                               {FitConfigBytes("other"), RowsBytes(rows)});
  CHECK(refused.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK_THAT(refused.status.error_message(), Catch::Contains("--max_total_fit_bytes") &&
                                                 Catch::Contains("other calls") &&
                                                 Catch::Contains("nothing was stored"));
  // A completes and is stored; then B fits, and nothing stays counted.
  REQUIRE(writer->WritesDone());
  REQUIRE(writer->Finish().ok());
  CHECK(response.info().name() == "held");
  auto retried = RawStreamCall(stack.channel, std::string(kService) + "FitModel",
                               {FitConfigBytes("other"), RowsBytes(rows)});
  CHECK(retried.status.ok());
  stack.WaitIdle();
  CHECK(budget.held() == 0);
}

TEST_CASE("Sample streams every batch from the pool, and an unknown estimator prints its number") {
  Stack stack;
  v1::CreateModelRequest create;
  create.set_name("box");
  create.mutable_spec()->mutable_uniform()->add_low(0);
  create.mutable_spec()->mutable_uniform()->add_high(1);
  REQUIRE(
      RawUnaryCall(stack.channel, std::string(kService) + "CreateModel", create.SerializeAsString())
          .status.ok());
  v1::SampleRequest sample;
  sample.mutable_model()->set_name("box");
  sample.set_num_samples(10);
  sample.set_batch_size(3);
  sample.set_seed(7);
  auto stream =
      RawStreamCall(stack.channel, std::string(kService) + "Sample", {sample.SerializeAsString()});
  REQUIRE(stream.status.ok());
  REQUIRE(stream.responses.size() == 4);
  uint64_t next = 0;
  for (const std::string& bytes : stream.responses) {
    v1::SampleBatch batch;
    REQUIRE(batch.ParseFromString(bytes));
    CHECK(batch.start_index() == next);
    next += batch.x().rows();
  }
  CHECK(next == 10);

  v1::EstimateLogLikelihoodRequest estimate;
  estimate.mutable_model()->set_name("box");
  estimate.mutable_x()->set_rows(1);
  estimate.mutable_x()->set_cols(1);
  estimate.mutable_x()->add_values(0.5);
  estimate.set_estimator(static_cast<v1::Estimator>(17));
  auto unknown = RawUnaryCall(stack.channel, std::string(kService) + "EstimateLogLikelihood",
                              estimate.SerializeAsString());
  CHECK(unknown.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(unknown.status.error_message().find("estimator: unknown value 17") != std::string::npos);
}

void CreateUniform(Stack& stack, const std::string& name, int dimension) {
  v1::CreateModelRequest create;
  create.set_name(name);
  for (int j = 0; j < dimension; ++j) {
    create.mutable_spec()->mutable_uniform()->add_low(0);
    create.mutable_spec()->mutable_uniform()->add_high(1);
  }
  REQUIRE(
      RawUnaryCall(stack.channel, std::string(kService) + "CreateModel", create.SerializeAsString())
          .status.ok());
}

// issue 7 item 8d: the default batch is capped to ~1 MiB of values so the server can produce one
// message while the transport writes the last; an explicit batch_size is still honoured.
TEST_CASE("Sample's default batch holds about 1 MiB of values, the rows those of any framing") {
  Stack stack;
  CreateUniform(stack, "wide", 1000);
  auto stub = v1::GenerativeService::NewStub(stack.channel);
  auto read_all = [&](uint32_t batch_size, std::vector<uint32_t>* rows) {
    v1::SampleRequest request;
    request.mutable_model()->set_name("wide");
    request.set_num_samples(600);
    request.set_seed(5);
    request.set_batch_size(batch_size);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto reader = stub->Sample(&context, request);
    std::vector<double> values;
    v1::SampleBatch batch;
    while (reader->Read(&batch)) {
      rows->push_back(batch.x().rows());
      values.insert(values.end(), batch.x().values().begin(), batch.x().values().end());
    }
    REQUIRE(reader->Finish().ok());
    return values;
  };
  std::vector<uint32_t> default_rows, explicit_rows;
  const std::vector<double> by_default = read_all(0, &default_rows);
  const std::vector<double> by_100 = read_all(100, &explicit_rows);
  // (1 << 20) / (8 bytes * 1000 columns) = 131 rows per message.
  const uint32_t cap = (1u << 20) / (8 * 1000);
  REQUIRE(default_rows.size() == (600 + cap - 1) / cap);
  for (size_t i = 0; i + 1 < default_rows.size(); ++i) CHECK(default_rows[i] == cap);
  CHECK(explicit_rows == std::vector<uint32_t>(6, 100));
  CHECK(by_default.size() == 600u * 1000u);
  CHECK(by_default == by_100);
}

// The server produces one message ahead of the writes: a reader that goes away mid-stream must
// still end the call (and free its dispatcher slot) once the producer returns.
TEST_CASE("A Sample stream cancelled after its first message ends and frees its slot") {
  Stack stack;
  CreateUniform(stack, "cube", 500);
  auto stub = v1::GenerativeService::NewStub(stack.channel);
  for (int round = 0; round < 5; ++round) {
    v1::SampleRequest request;
    request.mutable_model()->set_name("cube");
    request.set_num_samples(1'000'000);
    request.set_seed(static_cast<uint64_t>(round));
    request.set_batch_size(1000);
    grpc::ClientContext context;
    auto reader = stub->Sample(&context, request);
    v1::SampleBatch batch;
    REQUIRE(reader->Read(&batch));
    CHECK(batch.x().rows() == 1000);
    context.TryCancel();
    while (reader->Read(&batch)) {
    }
    CHECK(reader->Finish().error_code() == grpc::StatusCode::CANCELLED);
  }
  stack.WaitIdle();
}

}  // namespace
}  // namespace maas::generative
