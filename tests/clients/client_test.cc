// The Client against in-process fake services: unary, server-streaming and client-streaming wiring,
// deadlines, the authorization header, status conversion and model-type resolution.
#include "clients/cpp/client.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "clients/cpp/cli.h"
#include "clients/cpp/commands.h"
#include "tests/clients/fake_services.h"
#include "tests/common/store/temp_dir.h"

namespace maas::client {
namespace {

namespace cv1 = ::maas::common::v1;
namespace dv1 = ::maas::discriminative::v1;
namespace gv1 = ::maas::generative::v1;

ClientOptions OptionsFor(const testing::FakeServer& server) {
  ClientOptions options;
  options.target = server.target();
  options.timeout = absl::Seconds(20);
  return options;
}

TEST_CASE("Sample collects the server stream in order") {
  testing::FakeServer server;
  Client client(OptionsFor(server));
  gv1::SampleRequest request;
  request.mutable_model()->set_name("gmm");
  request.set_num_samples(5);
  request.set_seed(7);
  request.set_start_index(10);
  request.set_batch_size(2);
  const absl::StatusOr<std::vector<gv1::SampleBatch>> batches = client.Sample(request);
  REQUIRE(batches.ok());
  REQUIRE(batches->size() == 3);  // 2 + 2 + 1
  std::vector<double> first_column;
  for (const gv1::SampleBatch& batch : *batches) {
    CHECK(batch.seed() == 7);
    for (uint32_t r = 0; r < batch.x().rows(); ++r) first_column.push_back(batch.x().values(r * 3));
  }
  CHECK(first_column == std::vector<double>{10, 11, 12, 13, 14});
  CHECK((*batches)[2].start_index() == 14);
}

TEST_CASE("Sample stops and returns the callback's error") {
  testing::FakeServer server;
  Client client(OptionsFor(server));
  gv1::SampleRequest request;
  request.mutable_model()->set_name("gmm");
  request.set_num_samples(1000000);
  request.set_batch_size(1);
  int calls = 0;
  const absl::Status status = client.Sample(request, [&calls](const gv1::SampleBatch&) {
    ++calls;
    return calls == 3 ? absl::AbortedError("enough") : absl::OkStatus();
  });
  CHECK(status.code() == absl::StatusCode::kAborted);
  CHECK(status.message() == "enough");
  CHECK(calls == 3);
}

TEST_CASE("Server errors keep their code and message") {
  testing::FakeServer server;
  Client client(OptionsFor(server));
  gv1::SampleRequest request;
  request.mutable_model()->set_name("missing");
  request.set_num_samples(1);
  const auto batches = client.Sample(request);
  REQUIRE_FALSE(batches.ok());
  CHECK(batches.status().code() == absl::StatusCode::kNotFound);
  CHECK(batches.status().message() == "model 'missing' not found");
}

TEST_CASE("FromGrpcStatus maps every code") {
  CHECK(FromGrpcStatus(grpc::Status::OK).ok());
  const std::vector<std::pair<grpc::StatusCode, absl::StatusCode>> pairs = {
      {grpc::StatusCode::CANCELLED, absl::StatusCode::kCancelled},
      {grpc::StatusCode::UNKNOWN, absl::StatusCode::kUnknown},
      {grpc::StatusCode::INVALID_ARGUMENT, absl::StatusCode::kInvalidArgument},
      {grpc::StatusCode::DEADLINE_EXCEEDED, absl::StatusCode::kDeadlineExceeded},
      {grpc::StatusCode::NOT_FOUND, absl::StatusCode::kNotFound},
      {grpc::StatusCode::ALREADY_EXISTS, absl::StatusCode::kAlreadyExists},
      {grpc::StatusCode::PERMISSION_DENIED, absl::StatusCode::kPermissionDenied},
      {grpc::StatusCode::UNAUTHENTICATED, absl::StatusCode::kUnauthenticated},
      {grpc::StatusCode::RESOURCE_EXHAUSTED, absl::StatusCode::kResourceExhausted},
      {grpc::StatusCode::FAILED_PRECONDITION, absl::StatusCode::kFailedPrecondition},
      {grpc::StatusCode::ABORTED, absl::StatusCode::kAborted},
      {grpc::StatusCode::OUT_OF_RANGE, absl::StatusCode::kOutOfRange},
      {grpc::StatusCode::UNIMPLEMENTED, absl::StatusCode::kUnimplemented},
      {grpc::StatusCode::INTERNAL, absl::StatusCode::kInternal},
      {grpc::StatusCode::UNAVAILABLE, absl::StatusCode::kUnavailable},
      {grpc::StatusCode::DATA_LOSS, absl::StatusCode::kDataLoss},
  };
  for (const auto& [grpc_code, absl_code] : pairs) {
    // The numeric values are the same in both enums by design of the gRPC/absl code spaces.
    CHECK(static_cast<int>(grpc_code) == static_cast<int>(absl_code));
    const absl::Status status = FromGrpcStatus(grpc::Status(grpc_code, "why"));
    CHECK(status.code() == absl_code);
    CHECK(status.message() == "why");
  }
}

TEST_CASE("Unary calls carry the deadline and the bearer token") {
  testing::FakeServer server;
  ClientOptions options = OptionsFor(server);
  options.timeout = absl::Seconds(5);
  gv1::EstimateLogLikelihoodRequest request;
  request.mutable_model()->set_name("private");
  request.mutable_x()->set_rows(2);
  request.mutable_x()->set_cols(2);
  for (double v : {1.0, 2.0, 3.0, 4.5}) request.mutable_x()->add_values(v);

  Client anonymous(options);
  const auto denied = anonymous.Estimate(request);
  CHECK(denied.status().code() == absl::StatusCode::kUnauthenticated);

  options.auth_token = "secret";
  Client client(options);
  const auto response = client.Estimate(request);
  REQUIRE(response.ok());
  REQUIRE(response->rows_size() == 2);
  CHECK(response->rows(0).log_likelihood() == -3.0);
  CHECK(response->rows(1).log_likelihood() == -7.5);

  std::lock_guard<std::mutex> lock(server.observed().mu);
  REQUIRE(server.observed().authorization.size() == 2);
  CHECK(server.observed().authorization[0].empty());
  CHECK(server.observed().authorization[1] == "Bearer secret");
  for (double seconds : server.observed().deadline_seconds) {
    // The timeout travels as a rounded-up grpc-timeout header.
    CHECK(seconds > 3.0);
    CHECK(seconds <= 5.1);
  }
}

TEST_CASE("A zero timeout sends no deadline") {
  testing::FakeServer server;
  ClientOptions options = OptionsFor(server);
  options.timeout = absl::ZeroDuration();
  Client client(options);
  gv1::EstimateLogLikelihoodRequest request;
  request.mutable_x()->set_rows(1);
  request.mutable_x()->set_cols(1);
  request.mutable_x()->add_values(1);
  REQUIRE(client.Estimate(request).ok());
  std::lock_guard<std::mutex> lock(server.observed().mu);
  REQUIRE(server.observed().deadline_seconds.size() == 1);
  CHECK(server.observed().deadline_seconds[0] > 1e6);
}

TEST_CASE("A call past its deadline gives DEADLINE_EXCEEDED") {
  testing::FakeServer server;
  ClientOptions options = OptionsFor(server);
  options.timeout = absl::Milliseconds(200);
  Client client(options);
  gv1::SampleRequest request;
  request.mutable_model()->set_name("slow");
  request.set_num_samples(1);
  CHECK(client.Sample(request).status().code() == absl::StatusCode::kDeadlineExceeded);
}

TEST_CASE("Train streams the config then batches of the requested size") {
  testing::FakeServer server;
  Client client(OptionsFor(server));
  std::vector<dv1::LabeledText> examples;
  for (int i = 0; i < 7; ++i) {
    dv1::LabeledText& example = examples.emplace_back();
    example.set_text("text " + std::to_string(i));
    example.set_label(i % 2 == 0 ? "even" : "odd");
  }
  dv1::TrainConfig config;
  config.set_name("parity");
  const auto response = client.Train(config, examples, 3);
  REQUIRE(response.ok());
  CHECK(response->summary().num_documents() == 7);
  CHECK(std::vector<std::string>(response->summary().classes().begin(),
                                 response->summary().classes().end()) ==
        std::vector<std::string>{"even", "odd"});
  CHECK(response->summary().class_count(0) == 4);
  {
    std::lock_guard<std::mutex> lock(server.observed().mu);
    CHECK(server.observed().train_name == "parity");
    CHECK(server.observed().train_batch_sizes == std::vector<size_t>{3, 3, 1});
  }

  // Exactly divisible: no empty trailing batch.
  REQUIRE(client.Train(config, examples.begin(), examples.begin() + 6, 3).ok());
  {
    std::lock_guard<std::mutex> lock(server.observed().mu);
    CHECK(server.observed().train_batch_sizes == std::vector<size_t>{3, 3});
  }
  CHECK(client.Train(config, examples, 0).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Train returns a failing source's error and does not finish the stream") {
  testing::FakeServer server;
  Client client(OptionsFor(server));
  int produced = 0;
  const auto response = client.Train(
      dv1::TrainConfig(),
      [&produced](dv1::LabeledText* example) -> absl::StatusOr<bool> {
        if (produced == 2) return absl::DataLossError("disk went away");
        example->set_text("t");
        example->set_label("a");
        ++produced;
        return true;
      },
      1);
  CHECK(response.status().code() == absl::StatusCode::kDataLoss);
}

TEST_CASE("Evaluate streams the model then batches of the requested size") {
  testing::FakeServer server;
  Client client(OptionsFor(server));
  std::vector<dv1::LabeledText> examples;
  for (int i = 0; i < 7; ++i) {
    dv1::LabeledText& example = examples.emplace_back();
    example.set_text(i % 2 == 0 ? "a long text" : "hi");
    example.set_label(i == 0 ? "short" : i % 2 == 0 ? "long" : "short");  // example 0 is wrong
    if (i == 0) example.set_weight(3.0);
  }
  dv1::EvaluateConfig config;
  config.mutable_model()->set_name("spam");
  const auto response = client.Evaluate(config, examples, 3);
  REQUIRE(response.ok());
  CHECK(response->num_documents() == 7);
  CHECK(response->model_version() == 5);
  CHECK(response->accuracy() == 6.0 / 9.0);  // the weight reached the server
  {
    std::lock_guard<std::mutex> lock(server.observed().mu);
    CHECK(server.observed().evaluate_model == "spam");
    CHECK(server.observed().evaluate_batch_sizes == std::vector<size_t>{3, 3, 1});
  }
  REQUIRE(client.Evaluate(config, {examples.begin() + 1, examples.end()}, 1000).ok());
  {
    std::lock_guard<std::mutex> lock(server.observed().mu);
    CHECK(server.observed().evaluate_batch_sizes == std::vector<size_t>{6});
  }
  CHECK(client.Evaluate(config, examples, 0).status().code() == absl::StatusCode::kInvalidArgument);

  config.mutable_model()->set_name("missing");
  CHECK(client.Evaluate(config, examples).status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("Evaluate returns a failing source's error") {
  testing::FakeServer server;
  Client client(OptionsFor(server));
  int produced = 0;
  const auto response = client.Evaluate(
      dv1::EvaluateConfig(),
      [&produced](dv1::LabeledText* example) -> absl::StatusOr<bool> {
        if (produced == 2) return absl::DataLossError("disk went away");
        example->set_text("t");
        example->set_label("long");
        ++produced;
        return true;
      },
      1);
  CHECK(response.status().code() == absl::StatusCode::kDataLoss);
}

TEST_CASE("Classify round trip") {
  testing::FakeServer server;
  Client client(OptionsFor(server));
  dv1::ClassifyRequest request;
  request.mutable_model()->set_name("spam");
  request.add_texts("hi");
  request.add_texts("a longer text");
  const auto response = client.Classify(request);
  REQUIRE(response.ok());
  REQUIRE(response->results_size() == 2);
  CHECK(response->results(0).label() == "short");
  CHECK(response->results(1).label() == "long");
  CHECK(response->model_version() == 5);
}

TEST_CASE("ResolveModelType falls back to the services without a gateway") {
  testing::FakeServer server;  // no Gateway service: ListModels there is UNIMPLEMENTED
  Client client(OptionsFor(server));
  CHECK(*client.ResolveModelType("gmm") == cv1::GENERATIVE);
  CHECK(*client.ResolveModelType("spam") == cv1::DISCRIMINATIVE);
  CHECK(client.ResolveModelType("nope").status().code() == absl::StatusCode::kNotFound);
}

// The 2026-12-06 client hunt: `maas get` / `maas delete` without --type answered NOT_FOUND "no
// model named 'My-Model'" for a name no service can hold, where the services, the other clients
// and --type answer INVALID_ARGUMENT stating the rule.
TEST_CASE("ResolveModelType refuses a name no service can hold with the services' rule") {
  testing::FakeServer server(/*with_gateway=*/true);
  Client client(OptionsFor(server));
  for (const std::string& name :
       std::vector<std::string>{"My-Model", "a..b", "bad name!", std::string(64, 'a')}) {
    CAPTURE(name);
    const absl::Status status = client.ResolveModelType(name).status();
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()),
               Catch::StartsWith("invalid model name") && Catch::Contains("[a-z0-9._-]"));
  }
}

// The same hunt: a token with an inner space (which the server and the Python, Go and TypeScript
// clients accept) was refused by the C++ client as not "visible ASCII".
TEST_CASE("a token with an inner space is sent as the other clients send it") {
  testing::FakeServer server;
  ClientOptions options = OptionsFor(server);
  options.auth_token = "se cret";
  Client client(options);
  gv1::EstimateLogLikelihoodRequest request;
  request.mutable_model()->set_name("private");
  request.mutable_x()->set_rows(1);
  request.mutable_x()->set_cols(1);
  request.mutable_x()->add_values(1.0);
  CHECK(client.Estimate(request).status().code() == absl::StatusCode::kUnauthenticated);
  std::lock_guard<std::mutex> lock(server.observed().mu);
  REQUIRE(server.observed().authorization.size() == 1);
  CHECK(server.observed().authorization[0] == "Bearer se cret");
}

// `maas models` at a service (not a gateway) failed with UNIMPLEMENTED naming the gateway's method,
// while `get` and `delete` fell back to the services' own listings.
TEST_CASE("ListModels without a gateway lists the services' own models, typed and sorted") {
  testing::FakeServer server;  // no Gateway service: its ListModels is UNIMPLEMENTED
  Client client(OptionsFor(server));
  const absl::StatusOr<cv1::ListModelsResponse> listed = client.ListModels({});
  REQUIRE(listed.ok());
  REQUIRE(listed->models_size() == 2);
  CHECK(listed->models(0).name() == "gmm");
  CHECK(listed->models(0).type() == cv1::GENERATIVE);
  CHECK(listed->models(1).name() == "spam");
  CHECK(listed->models(1).type() == cv1::DISCRIMINATIVE);
  CHECK(listed->missing_backends().empty());
}

// A token with a byte that cannot be in an HTTP/2 header value (an inner newline, non-ASCII)
// reached grpc::ClientContext::AddMetadata, and gRPC aborted the process.
TEST_CASE("A token that cannot be a header value fails every call with INVALID_ARGUMENT") {
  testing::FakeServer server(/*with_gateway=*/true);
  for (const std::string& token :
       std::vector<std::string>{"ab\ncd", "caf\xc3\xa9", "a\tb", std::string("a\0b", 3)}) {
    ClientOptions options = OptionsFor(server);
    options.auth_token = token;
    Client client(options);
    const absl::Status status = client.ListModels({}).status();
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Catch::Contains("0x20-0x7E"));
    gv1::SampleRequest request;
    request.mutable_model()->set_name("gmm");
    request.set_num_samples(1);
    CHECK(client.Sample(request).status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(client.FitModel(gv1::FitConfig(), cv1::Matrix()).status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
  std::lock_guard<std::mutex> lock(server.observed().mu);
  CHECK(server.observed().authorization.empty());  // nothing was sent
}

// `maas get` / `maas delete` without --type answered NOT_FOUND "no model named X" for a model
// whose latest version cannot be read (listed in unreadable_versions only) and for any model while
// the backend holding it was down (missing_backends).
TEST_CASE("ResolveModelType: unreadable versions count, a missing backend is UNAVAILABLE") {
  testing::FakeServer server(/*with_gateway=*/true);
  Client client(OptionsFor(server));
  cv1::ListModelsResponse listing;
  cv1::ModelInfo* info = listing.add_models();
  info->set_name("gmm");
  info->set_version(1);
  info->set_type(cv1::GENERATIVE);
  cv1::UnreadableVersion* bad = listing.add_unreadable_versions();
  bad->set_name("damaged");
  bad->set_version(2);
  bad->set_type(cv1::GENERATIVE);
  bad->set_code("DATA_LOSS");
  bad->set_message("cannot be read");
  server.gateway().set_list_models(listing);

  CHECK(*client.ResolveModelType("gmm") == cv1::GENERATIVE);
  const absl::StatusOr<cv1::ModelType> damaged = client.ResolveModelType("damaged");
  REQUIRE(damaged.ok());
  CHECK(*damaged == cv1::GENERATIVE);
  const absl::Status nope = client.ResolveModelType("nope").status();
  CHECK(nope.code() == absl::StatusCode::kNotFound);
  CHECK(nope.message() == "no model named 'nope'");

  // get / delete reach the service, which says what is wrong with the version.
  cli::CommandArgs args;
  args.command = "get";
  args.model = "damaged";
  std::ostringstream out, warnings;
  absl::Status status = RunCommand(client, args, out, warnings);
  CHECK(status.code() == absl::StatusCode::kDataLoss);
  CHECK(status.message() == "model 'damaged' version 2 cannot be read");
  args.command = "delete";
  status = RunCommand(client, args, out, warnings);
  REQUIRE(status.ok());
  CHECK(out.str() == "deleted damaged (generative) versions: 2\n");

  // The discriminative backend is down: a name not listed may be one of its models.
  listing.add_missing_backends(
      "maas.discriminative.v1.DiscriminativeService: UNAVAILABLE: connection refused");
  server.gateway().set_list_models(listing);
  const absl::Status down = client.ResolveModelType("spam").status();
  CHECK(down.code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(
      std::string(down.message()),
      Catch::Contains("'spam'") &&
          Catch::Contains("maas.discriminative.v1.DiscriminativeService: UNAVAILABLE: connection "
                          "refused") &&
          Catch::Contains("--type"));
  // A review: a name found in one service also answered while the other was down, so a delete
  // could remove the wrong model when both held the name. The down one may hold it too.
  const absl::Status unsure = client.ResolveModelType("gmm").status();
  CHECK(unsure.code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(std::string(unsure.message()), Catch::Contains("which service holds model 'gmm'"));
  args.command = "get";
  args.model = "spam";
  CHECK(RunCommand(client, args, out, warnings).code() == absl::StatusCode::kUnavailable);
  args.command = "delete";
  CHECK(RunCommand(client, args, out, warnings).code() == absl::StatusCode::kUnavailable);
}

// A listing of n entries for the fakes: names "m00000".."m<n-1>" of both types (every third
// discriminative), every 97th (from the 6th) a version that cannot be read.
cv1::ListModelsResponse MixedStore(int n) {
  cv1::ListModelsResponse all;
  for (int i = 0; i < n; ++i) {
    const std::string name = absl::StrFormat("m%05d", i);
    const cv1::ModelType type = i % 3 == 0 ? cv1::DISCRIMINATIVE : cv1::GENERATIVE;
    if (i % 97 == 5) {
      cv1::UnreadableVersion* bad = all.add_unreadable_versions();
      bad->set_name(name);
      bad->set_version(1);
      bad->set_type(type);
      bad->set_code("DATA_LOSS");
    } else {
      cv1::ModelInfo* info = all.add_models();
      info->set_name(name);
      info->set_version(1);
      info->set_type(type);
    }
  }
  return all;
}

std::vector<std::string> Names(const cv1::ListModelsResponse& listed) {
  std::vector<std::string> names;
  for (const cv1::ModelInfo& info : listed.models()) names.push_back(info.name());
  return names;
}

std::vector<int32_t> PageSizes(testing::FakeListing& listing) {
  std::vector<int32_t> sizes;
  for (const auto& [size, token] : listing.requests()) sizes.push_back(size);
  return sizes;
}

// `get` / `delete` without --type listed every model whose name begins with the name (every page
// of name_prefix = name) to find the type: 40 longer names meant reading all of them. The name's
// own entries sort first, so a page that holds another name is the last one needed.
TEST_CASE("ResolveModelType reads one small page when many longer names begin with the name") {
  testing::FakeServer server(/*with_gateway=*/true);
  cv1::ListModelsResponse listing;
  for (int i = 0; i < 40; ++i) {
    cv1::ModelInfo* info = listing.add_models();
    info->set_name(absl::StrCat("base", i));
    info->set_version(1);
    info->set_type(i % 2 == 0 ? cv1::GENERATIVE : cv1::DISCRIMINATIVE);
  }
  cv1::ModelInfo* base = listing.add_models();
  base->set_name("base");
  base->set_version(3);
  base->set_type(cv1::DISCRIMINATIVE);
  testing::FakeListing& gateway = server.gateway().listing();
  gateway.Set(listing);
  gateway.set_page_cap(10);  // the message budget: 5 pages for the 41 names
  Client client(OptionsFor(server));
  CHECK(*client.ResolveModelType("base") == cv1::DISCRIMINATIVE);
  REQUIRE(gateway.requests().size() == 1);
  CHECK(gateway.requests()[0] == std::make_pair(Client::kResolvePageSize, std::string()));
  // A name not stored but the start of others: one page too, NOT_FOUND.
  CHECK(client.ResolveModelType("bas").status().code() == absl::StatusCode::kNotFound);
  CHECK(gateway.requests().size() == 2);

  // Without a gateway: one page of each service.
  testing::FakeServer services;
  cv1::ListModelsResponse own[2];
  for (const cv1::ModelInfo& info : listing.models()) {
    cv1::ModelInfo* copy = own[info.type() == cv1::GENERATIVE ? 0 : 1].add_models();
    *copy = info;
    copy->clear_type();
  }
  services.generative().listing().Set(own[0]);
  services.discriminative().listing().Set(own[1]);
  Client direct(OptionsFor(services));
  CHECK(*direct.ResolveModelType("base") == cv1::DISCRIMINATIVE);
  CHECK(PageSizes(services.generative().listing()) ==
        std::vector<int32_t>{Client::kResolvePageSize});
  CHECK(PageSizes(services.discriminative().listing()) ==
        std::vector<int32_t>{Client::kResolvePageSize});
}

// The early stop must not miss the name's entries that a short page (the message budget) left to
// the next pages: it reads on while a page holds the name only.
TEST_CASE("ResolveModelType reads on while the pages hold the name only") {
  testing::FakeServer server(/*with_gateway=*/true);
  cv1::ListModelsResponse listing;
  for (const cv1::ModelType type : {cv1::GENERATIVE, cv1::DISCRIMINATIVE}) {
    cv1::ModelInfo* info = listing.add_models();
    info->set_name("both");
    info->set_version(1);
    info->set_type(type);
  }
  cv1::UnreadableVersion* bad = listing.add_unreadable_versions();
  bad->set_name("damaged");
  bad->set_version(1);
  bad->set_type(cv1::DISCRIMINATIVE);
  for (int i = 0; i < 5; ++i) {
    for (const std::string prefix : {"both", "damaged"}) {
      cv1::ModelInfo* info = listing.add_models();
      info->set_name(absl::StrCat(prefix, "-", i));
      info->set_version(1);
      info->set_type(cv1::GENERATIVE);
    }
  }
  testing::FakeListing& gateway = server.gateway().listing();
  gateway.Set(listing);
  gateway.set_page_cap(1);  // one entry per page
  Client client(OptionsFor(server));
  // "both" (generative), "both" (discriminative), then "both-0": three pages.
  CHECK(client.ResolveModelType("both").status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(gateway.requests().size() == 3);
  // The unreadable version, then "damaged-0".
  CHECK(*client.ResolveModelType("damaged") == cv1::DISCRIMINATIVE);
  CHECK(gateway.requests().size() == 5);
  listing.add_missing_backends("maas.generative.v1.GenerativeService: UNAVAILABLE: down");
  gateway.Set(listing);
  CHECK(client.ResolveModelType("damaged").status().code() == absl::StatusCode::kUnavailable);
}

// About 1 900 models made the one unpaged ListModels answer larger than the servers' 64 MiB message
// cap: `maas models`, and `get` / `delete` without --type (which find the model's service in the
// listing), failed with RESOURCE_EXHAUSTED on every such store.
TEST_CASE("ListAllModels pages through a listing larger than one answer") {
  testing::FakeServer server(/*with_gateway=*/true);
  cv1::ListModelsResponse all = MixedStore(2344);
  cv1::ModelInfo* m = all.add_models();  // first of the 2 345 entries that name_prefix "m" covers
  m->set_name("m");
  m->set_version(1);
  m->set_type(cv1::GENERATIVE);
  testing::FakeListing& gateway = server.gateway().listing();
  gateway.Set(all);
  gateway.set_unpaged_cap(1900);
  Client client(OptionsFor(server));
  CHECK(client.ListModels({}).status().code() == absl::StatusCode::kResourceExhausted);

  const absl::StatusOr<cv1::ListModelsResponse> listed = client.ListAllModels({});
  REQUIRE(listed.ok());
  std::vector<std::string> names = Names(all);
  std::sort(names.begin(), names.end());
  CHECK(Names(*listed) == names);
  CHECK(listed->models(1).type() == cv1::DISCRIMINATIVE);
  CHECK(listed->models(2).type() == cv1::GENERATIVE);
  REQUIRE(listed->unreadable_versions_size() == all.unreadable_versions_size());
  CHECK(listed->unreadable_versions(0).name() == "m00005");
  CHECK(listed->next_page_token().empty());
  CHECK(listed->missing_backends().empty());
  // After the unpaged request above: pages of 1000 (1000 + 1000 + 345), each from the last token.
  const auto requests = gateway.requests();
  REQUIRE(requests.size() == 4);
  CHECK(PageSizes(gateway) == std::vector<int32_t>{0, 1000, 1000, 1000});
  CHECK(requests[1].second.empty());
  CHECK_FALSE(requests[2].second.empty());
  CHECK(requests[3].second != requests[2].second);

  // `maas get m` without --type: the listing of name_prefix "m" is every entry, refused unpaged.
  cv1::ListModelsRequest prefix;
  prefix.set_name_prefix("m");
  CHECK(client.ListModels(prefix).status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(*client.ResolveModelType("m") == cv1::GENERATIVE);
  cli::CommandArgs args;
  args.command = "models";
  std::ostringstream out, warnings;
  REQUIRE(RunCommand(client, args, out, warnings).ok());
  const std::string table = out.str();
  CHECK(std::count(table.begin(), table.end(), '\n') == 1 + all.models_size());
  CHECK_THAT(warnings.str(), Catch::Contains("\"m00005\" version 1 cannot be read"));
  CHECK_THAT(warnings.str(), !Catch::Contains("--page_token"));
}

TEST_CASE("ListAllModels follows pages cut short by the message budget and an empty last page") {
  testing::FakeServer server(/*with_gateway=*/true);
  cv1::ListModelsResponse all = MixedStore(63);
  all.add_missing_backends("maas.discriminative.v1.DiscriminativeService: UNAVAILABLE: down");
  all.add_missing_backends("maas.generative.v1.GenerativeService: DEADLINE_EXCEEDED: slow");
  server.gateway().set_list_models(all);
  server.gateway().listing().set_page_cap(7);  // what fits in a message
  Client client(OptionsFor(server));
  const absl::StatusOr<cv1::ListModelsResponse> listed = client.ListAllModels({});
  REQUIRE(listed.ok());
  CHECK(Names(*listed) == Names(all));
  CHECK(listed->unreadable_versions_size() == 1);
  // 9 full pages of 7, then an empty one; each page named both backends, the listing once each.
  CHECK(PageSizes(server.gateway().listing()) == std::vector<int32_t>(10, 1000));
  REQUIRE(listed->missing_backends_size() == 2);
  CHECK(listed->missing_backends(0) == all.missing_backends(0));
  CHECK(listed->missing_backends(1) == all.missing_backends(1));
}

TEST_CASE("ListAllModels: an older server answers at once, a repeated token is INTERNAL") {
  testing::FakeServer server(/*with_gateway=*/true);
  server.gateway().set_list_models(MixedStore(2500));
  server.gateway().listing().set_pages(false);
  Client client(OptionsFor(server));
  const absl::StatusOr<cv1::ListModelsResponse> listed = client.ListAllModels({});
  REQUIRE(listed.ok());
  CHECK(listed->models_size() + listed->unreadable_versions_size() == 2500);
  CHECK(PageSizes(server.gateway().listing()) == std::vector<int32_t>{1000});

  server.gateway().listing().set_pages(true);
  server.gateway().listing().set_repeats_token(true);
  const absl::Status stuck = client.ListAllModels({}).status();
  CHECK(stuck.code() == absl::StatusCode::kInternal);
  CHECK_THAT(std::string(stuck.message()), Catch::Contains("never end"));
  // 1 + the first page, the second, and the second's token sent before (a review: a cycle of
  // two tokens looped forever, only one answered straight back was caught).
  CHECK(server.gateway().listing().requests().size() == 4);
}

TEST_CASE("ListModels is one page: page_size and page_token as given, next_page_token back") {
  testing::FakeServer server(/*with_gateway=*/true);
  server.gateway().set_list_models(MixedStore(30));
  Client client(OptionsFor(server));
  cv1::ListModelsRequest request;
  request.set_page_size(4);
  const absl::StatusOr<cv1::ListModelsResponse> first = client.ListModels(request);
  REQUIRE(first.ok());
  CHECK(Names(*first) == std::vector<std::string>{"m00000", "m00001", "m00002", "m00003"});
  REQUIRE_FALSE(first->next_page_token().empty());
  request.set_page_token(first->next_page_token());
  const absl::StatusOr<cv1::ListModelsResponse> second = client.ListModels(request);
  REQUIRE(second.ok());
  CHECK(Names(*second) == std::vector<std::string>{"m00004", "m00006", "m00007"});
  REQUIRE(second->unreadable_versions_size() == 1);
  CHECK(second->unreadable_versions(0).name() == "m00005");
  // ListAllModels from a token: the rest of the listing, in pages of the request's page_size.
  const absl::StatusOr<cv1::ListModelsResponse> rest = client.ListAllModels(request);
  REQUIRE(rest.ok());
  CHECK(rest->models_size() + rest->unreadable_versions_size() == 26);
  CHECK(rest->models(0).name() == "m00004");

  request.set_page_size(-1);
  const size_t before = server.gateway().listing().requests().size();
  CHECK(client.ListModels(request).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(client.ListAllModels(request).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(server.gateway().listing().requests().size() == before);  // nothing sent
}

TEST_CASE("Without a gateway, ListAllModels pages each service and merges the listings") {
  testing::FakeServer server;  // both services, no gateway
  const cv1::ListModelsResponse all = MixedStore(2400);
  // Each service's own entries, without their type (the client types them by the service).
  cv1::ListModelsResponse own[2];
  for (const cv1::ModelInfo& info : all.models()) {
    *own[info.type() == cv1::GENERATIVE ? 0 : 1].add_models() = info;
  }
  for (const cv1::UnreadableVersion& bad : all.unreadable_versions()) {
    *own[bad.type() == cv1::GENERATIVE ? 0 : 1].add_unreadable_versions() = bad;
  }
  for (cv1::ListModelsResponse& listing : own) {
    for (cv1::ModelInfo& info : *listing.mutable_models()) info.clear_type();
    for (cv1::UnreadableVersion& bad : *listing.mutable_unreadable_versions()) bad.clear_type();
  }
  server.generative().listing().Set(own[0]);  // 1 600 entries
  server.generative().listing().set_unpaged_cap(1000);
  server.discriminative().listing().Set(own[1]);  // 800 entries
  Client client(OptionsFor(server));
  const absl::StatusOr<cv1::ListModelsResponse> listed = client.ListAllModels({});
  REQUIRE(listed.ok());
  CHECK(Names(*listed) == Names(all));
  for (int i = 0; i < listed->models_size(); ++i) {
    CHECK(listed->models(i).type() == all.models(i).type());
  }
  REQUIRE(listed->unreadable_versions_size() == all.unreadable_versions_size());
  for (int i = 0; i < listed->unreadable_versions_size(); ++i) {
    CHECK(listed->unreadable_versions(i).name() == all.unreadable_versions(i).name());
    CHECK(listed->unreadable_versions(i).type() == all.unreadable_versions(i).type());
  }
  CHECK(PageSizes(server.generative().listing()) == std::vector<int32_t>{1000, 1000});
  CHECK(PageSizes(server.discriminative().listing()) == std::vector<int32_t>{1000});
  // One page cannot hold a page of each service.
  cv1::ListModelsRequest request;
  request.set_page_size(10);
  const absl::Status both = client.ListModels(request).status();
  CHECK(both.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(both.message()), Catch::Contains("without a gateway"));
}

TEST_CASE("At a service's endpoint, ListModels pages the service, typing its entries") {
  testing::FakeServer server(/*with_gateway=*/false, /*with_discriminative=*/false);
  cv1::ListModelsResponse all;
  for (int i = 0; i < 5; ++i) {
    cv1::ModelInfo* info = all.add_models();
    info->set_name(absl::StrCat("g", i));
    info->set_version(1);
  }
  server.generative().listing().Set(all);
  Client client(OptionsFor(server));
  cv1::ListModelsRequest request;
  request.set_page_size(3);
  const absl::StatusOr<cv1::ListModelsResponse> first = client.ListModels(request);
  REQUIRE(first.ok());
  CHECK(Names(*first) == std::vector<std::string>{"g0", "g1", "g2"});
  CHECK(first->models(2).type() == cv1::GENERATIVE);
  request.set_page_token(first->next_page_token());
  const absl::StatusOr<cv1::ListModelsResponse> second = client.ListModels(request);
  REQUIRE(second.ok());
  CHECK(Names(*second) == std::vector<std::string>{"g3", "g4"});
  CHECK(second->next_page_token().empty());
  request.set_page_size(2);
  request.clear_page_token();
  const absl::StatusOr<cv1::ListModelsResponse> listed = client.ListAllModels(request);
  REQUIRE(listed.ok());
  CHECK(Names(*listed) == Names(all));
  CHECK(PageSizes(server.generative().listing()) == std::vector<int32_t>{3, 3, 2, 2, 2});

  // `maas models --page_size 3`: one page, and the token of the next.
  cli::CommandArgs args;
  args.command = "models";
  args.flags_set = {"page_size"};
  args.page_size = 3;
  std::ostringstream out, warnings;
  REQUIRE(RunCommand(client, args, out, warnings).ok());
  CHECK(out.str() ==
        "NAME  VERSION  TYPE        FAMILY  CREATED\n"
        "g0    1        generative  -       -\n"
        "g1    1        generative  -       -\n"
        "g2    1        generative  -       -\n");
  CHECK(warnings.str() == "maas: more models may follow: the next page is --page_token=" +
                              first->next_page_token() + "\n");
  args.flags_set = {"page_size", "page_token", "json"};
  args.json = true;
  args.page_token = first->next_page_token();
  std::ostringstream json, none;
  REQUIRE(RunCommand(client, args, json, none).ok());
  CHECK_THAT(json.str(), Catch::Contains("\"name\":\"g3\"") && Catch::Contains("\"g4\"") &&
                             Catch::Contains("\"next_page_token\":\"\"") &&
                             !Catch::Contains("\"g2\""));
  CHECK(none.str().empty());
}

// `maas fit` sent 4096 rows per message whatever their width: 4096 x 2100 values made a 69 MB
// message, above the services' 64 MiB limit. Chunks are capped by bytes as well as rows.
TEST_CASE("FitModel keeps wide chunks under 4 MiB and sends every row in order") {
  testing::FakeServer server;
  Client client(OptionsFor(server));
  cv1::Matrix rows;
  rows.set_rows(4096);
  rows.set_cols(256);  // 8 MiB of values in all
  for (uint32_t i = 0; i < rows.rows() * rows.cols(); ++i) rows.add_values(i);
  gv1::FitConfig config;
  config.set_name("wide");
  const auto response = client.FitModel(config, rows);
  REQUIRE(response.ok());
  CHECK(response->trace().num_rows() == 4096);
  std::lock_guard<std::mutex> lock(server.observed().mu);
  const testing::Observed& seen = server.observed();
  CHECK(seen.fit_cols == 256);
  CHECK(seen.fit_values == std::vector<double>(rows.values().begin(), rows.values().end()));
  REQUIRE(seen.fit_chunk_rows.size() > 1);
  for (size_t bytes : seen.fit_chunk_bytes) CHECK(bytes <= (4u << 20));  // gRPC's default limit
  for (uint32_t n : seen.fit_chunk_rows) CHECK(n >= 1);
}

TEST_CASE("FitModel chunks: at most chunk_rows rows and max_chunk_bytes of values, >= 1 row") {
  testing::FakeServer server;
  Client client(OptionsFor(server));
  cv1::Matrix rows;
  rows.set_rows(10);
  rows.set_cols(4);  // 32 bytes per row
  for (uint32_t i = 0; i < 40; ++i) rows.add_values(i);
  const std::vector<double> all(rows.values().begin(), rows.values().end());
  const auto chunks = [&server]() {
    std::lock_guard<std::mutex> lock(server.observed().mu);
    CHECK(server.observed().fit_values.size() == 40);
    return server.observed().fit_chunk_rows;
  };
  const auto values = [&server]() {
    std::lock_guard<std::mutex> lock(server.observed().mu);
    return server.observed().fit_values;
  };
  REQUIRE(client.FitModel({}, rows, 4, 100).ok());  // 100 bytes: 3 rows
  CHECK(chunks() == std::vector<uint32_t>{3, 3, 3, 1});
  CHECK(values() == all);
  REQUIRE(client.FitModel({}, rows, 2, 100).ok());  // chunk_rows is smaller
  CHECK(chunks() == std::vector<uint32_t>{2, 2, 2, 2, 2});
  REQUIRE(client.FitModel({}, rows, 4096, 31).ok());  // a row is wider than the cap: 1 row
  CHECK(chunks() == std::vector<uint32_t>(10, 1));
  CHECK(values() == all);
  REQUIRE(client.FitModel({}, rows, 4096, 320).ok());
  CHECK(chunks() == std::vector<uint32_t>{10});
  CHECK(client.FitModel({}, rows, 4, 0).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(client.FitModel({}, rows, 0, 100).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("RunCommand sample streams CSV with a header") {
  testing::FakeServer server;
  Client client(OptionsFor(server));
  cli::CommandArgs args;
  args.command = "sample";
  args.model = "gmm";
  args.num_samples = 3;
  args.seed = 5;
  args.batch_size = 2;
  args.latents = true;
  std::ostringstream out, warnings;
  REQUIRE(RunCommand(client, args, out, warnings).ok());
  CHECK(out.str() ==
        "# model=gmm version=4 seed=5 start_index=0 num_samples=3 x_cols=3 latent_cols=1\n"
        "0,5,0,0\n"
        "1,5,0.5,1\n"
        "2,5,1,2\n");
}

TEST_CASE("RunCommand estimate, classify and train") {
  testing::FakeServer server;
  Client client(OptionsFor(server));
  {
    cli::CommandArgs args;
    args.command = "estimate";
    args.model = "exact";
    args.x = "1,2;0.25,-4";
    args.seed = 3;
    args.json = true;
    std::ostringstream out, warnings;
    REQUIRE(RunCommand(client, args, out, warnings).ok());
    CHECK(out.str() ==
          R"({"model":"exact","model_version":2,"estimator":"EXACT","seed":3,"row_offset":0,)"
          R"("sample_offset":0,"rows":[)"
          R"({"row":0,"log_likelihood":-3,"standard_error":0.5,"ess":1000,"num_samples":1000,)"
          R"("pareto_k":"NaN","exact_log_likelihood":-3,"ais_acceptance_rate":0,)"
          R"("statistics":{"count":0,"log_sum_w":0,"log_sum_w2":0}},)"
          R"({"row":1,"log_likelihood":3.75,"standard_error":0.5,"ess":1000,"num_samples":1000,)"
          R"("pareto_k":"NaN","exact_log_likelihood":3.75,"ais_acceptance_rate":0,)"
          R"("statistics":{"count":0,"log_sum_w":0,"log_sum_w2":0}}]})"
          "\n");
  }
  {
    cli::CommandArgs args;
    args.command = "estimate";
    args.model = "gmm";
    args.x = "1,nan";
    std::ostringstream out, warnings;
    const absl::Status status = RunCommand(client, args, out, warnings);
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Catch::Contains("--x: row 1, column 2"));
  }
  {
    cli::CommandArgs args;
    args.command = "classify";
    args.model = "spam";
    args.positional = {"hi", "a longer text"};
    std::ostringstream out, warnings;
    REQUIRE(RunCommand(client, args, out, warnings).ok());
    CHECK(out.str() ==
          "INDEX  LABEL  PROBABILITIES\n"
          "0      short  long=0.25 short=0.75\n"
          "1      long   long=0.75 short=0.25\n");
  }
}

TEST_CASE("RunCommand classify sends a long text file in batches and prints one table") {
  // The whole file used to go in one Classify request: more lines than the server's
  // --max_texts_per_request (100000 by default), or more than its largest message, were refused.
  testing::FakeServer server;
  Client client(OptionsFor(server));
  store::testing::TempDir dir;
  const size_t n = 2 * kClassifyBatchTexts + 500;
  std::string content;
  for (size_t i = 0; i < n; ++i) content += i % 3 == 0 ? "a long text\n\n" : "hi\n";
  store::testing::WriteFile(dir.path() + "/texts.txt", content);
  cli::CommandArgs args;
  args.command = "classify";
  args.model = "spam";
  args.text_file = dir.path() + "/texts.txt";
  std::ostringstream out, warnings;
  REQUIRE(RunCommand(client, args, out, warnings).ok());
  {
    std::lock_guard<std::mutex> lock(server.observed().mu);
    CHECK(server.observed().classify_texts ==
          std::vector<size_t>{kClassifyBatchTexts, kClassifyBatchTexts, 500});
    // The later batches ask for the version that answered the first.
    CHECK(server.observed().classify_versions == std::vector<int64_t>{0, 5, 5});
  }
  std::istringstream lines(out.str());
  std::string line;
  REQUIRE(std::getline(lines, line));
  CHECK(line == "INDEX  LABEL  PROBABILITIES");
  size_t index = 0;
  for (; std::getline(lines, line); ++index) {
    const std::string want = index % 3 == 0
                                 ? absl::StrFormat("%-5d  long   long=0.75 short=0.25", index)
                                 : absl::StrFormat("%-5d  short  long=0.25 short=0.75", index);
    REQUIRE(line == want);
  }
  CHECK(index == n);

  args.json = true;
  std::ostringstream json;
  REQUIRE(RunCommand(client, args, json, warnings).ok());
  CHECK(json.str().rfind(R"({"model_version":5,"results":[{"text":"a long text","label":"long")",
                         0) == 0);
}

TEST_CASE("RunCommand classify caps the bytes of texts per request") {
  testing::FakeServer server;
  Client client(OptionsFor(server));
  cli::CommandArgs args;
  args.command = "classify";
  args.model = "spam";
  const std::string third(kClassifyBatchBytes / 3, 'x');
  const std::string whole(kClassifyBatchBytes + 1, 'y');  // alone, and sent all the same
  args.positional = {third, third, third, "hi", whole, "hi"};
  std::ostringstream out, warnings;
  REQUIRE(RunCommand(client, args, out, warnings).ok());
  {
    std::lock_guard<std::mutex> lock(server.observed().mu);
    CHECK(server.observed().classify_texts == std::vector<size_t>{3, 1, 1, 1});
  }
  const std::string printed = out.str();
  CHECK(std::count(printed.begin(), printed.end(), '\n') == 7);  // the header and six rows
}

TEST_CASE("RunCommand classify names the texts of a failing batch") {
  testing::FakeServer server;
  Client client(OptionsFor(server));
  cli::CommandArgs args;
  args.command = "classify";
  args.model = "spam";
  args.positional.assign(kClassifyBatchTexts + 300, "hi");
  args.positional[kClassifyBatchTexts + 200] = "bad";
  std::ostringstream out, warnings;
  absl::Status status = RunCommand(client, args, out, warnings);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK(status.message() ==
        absl::StrFormat("in the request of texts %d to %d (of %d; its texts[i] is text %d + i): "
                        "texts[200] is bad",
                        kClassifyBatchTexts, kClassifyBatchTexts + 299, kClassifyBatchTexts + 300,
                        kClassifyBatchTexts));
  CHECK(out.str().empty());
  // One batch: the server's message as it is.
  args.positional.assign(3, "hi");
  args.positional[1] = "bad";
  status = RunCommand(client, args, out, warnings);
  CHECK(status.message() == "texts[1] is bad");
}

}  // namespace
}  // namespace maas::client
