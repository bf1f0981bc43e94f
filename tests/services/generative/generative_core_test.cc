// The generative core end to end without gRPC: management, fit streams, sampling streams, estimates
// and bad input, on an in-memory store (and a file store for restarts).
#include "services/generative/core/generative_core.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include "common/registry/model_repository.h"
#include "common/store/file_model_store.h"
#include "common/store/memory_model_store.h"
#include "services/generative/core/families.h"
#include "services/generative/core/family.h"
#include "services/generative/core/uniform.h"

namespace maas::generative {
namespace {

using Repository = registry::ModelRepository<LoadedModel>;

struct Fixture {
  explicit Fixture(store::ModelStore* store, int64_t max_message_bytes = 64 << 20)
      : repository(store, ParseStoredModel, absl::ZeroDuration()) {
    GenerativeCoreOptions options;
    options.repository = &repository;
    options.max_message_bytes = max_message_bytes;
    options.max_samples_per_request = 1000;
    options.max_fit_rows = 100;
    options.fresh_seed = [this] { return ++seeds_drawn; };
    options.clock = [] { return absl::FromUnixSeconds(1700000000); };
    core = std::make_unique<GenerativeCore>(std::move(options));
  }
  Repository repository;
  uint64_t seeds_drawn = 1000;
  std::unique_ptr<GenerativeCore> core;
};

v1::CreateModelRequest UniformRequest(const std::string& name, std::vector<double> low,
                                      std::vector<double> high) {
  v1::CreateModelRequest request;
  request.set_name(name);
  for (double v : low) request.mutable_spec()->mutable_uniform()->add_low(v);
  for (double v : high) request.mutable_spec()->mutable_uniform()->add_high(v);
  return request;
}

common::v1::ModelRef Ref(const std::string& name, int64_t version = 0) {
  common::v1::ModelRef ref;
  ref.set_name(name);
  ref.set_version(version);
  return ref;
}

std::vector<v1::SampleBatch> Drain(SampleStream& stream) {
  std::vector<v1::SampleBatch> out;
  v1::SampleBatch batch;
  while (stream.Next(&batch)) out.push_back(batch);
  return out;
}

std::vector<double> Values(const std::vector<v1::SampleBatch>& batches) {
  std::vector<double> out;
  for (const auto& b : batches) out.insert(out.end(), b.x().values().begin(), b.x().values().end());
  return out;
}

TEST_CASE("create, get, list and delete versions") {
  store::MemoryModelStore store;
  Fixture f(&store);
  auto created = f.core->CreateModel(UniformRequest("box", {0, 0}, {1, 2}));
  REQUIRE(created.ok());
  CHECK(created->info().version() == 1);
  CHECK(created->info().family() == "uniform");
  CHECK(created->info().type() == common::v1::GENERATIVE);
  CHECK(created->info().dimension() == 2);
  CHECK(f.core->CreateModel(UniformRequest("box", {0}, {3}))->info().version() == 2);

  v1::GetModelRequest get;
  *get.mutable_model() = Ref("box");
  auto latest = f.core->GetModel(get);
  REQUIRE(latest.ok());
  CHECK(latest->info().version() == 2);
  CHECK(latest->spec().uniform().high(0) == 3);
  *get.mutable_model() = Ref("box", 1);
  CHECK(f.core->GetModel(get)->spec().uniform().high(1) == 2);

  common::v1::ListModelsRequest list;
  CHECK(f.core->ListModels(list)->models_size() == 1);
  list.set_all_versions(true);
  CHECK(f.core->ListModels(list)->models_size() == 2);
  list.set_name_prefix("nope");
  CHECK(f.core->ListModels(list)->models_size() == 0);

  common::v1::DeleteModelRequest del;
  del.set_name("box");
  del.set_version(2);
  REQUIRE(f.core->DeleteModel(del).ok());
  *get.mutable_model() = Ref("box");
  CHECK(f.core->GetModel(get)->info().version() == 1);
  del.set_version(0);
  CHECK(f.core->DeleteModel(del)->deleted_versions_size() == 1);
  CHECK(absl::IsNotFound(f.core->GetModel(get).status()));
}

// ListModels had no paging: a list above the message cap was refused for every client. Pages
// are cut to fit in the core's max_message_bytes (2 KB descriptions: two models per page).
TEST_CASE("ListModels pages within max_message_bytes: every model once, in order") {
  store::MemoryModelStore store;
  Fixture f(&store, registry::kListPageTokenReserve + 4500);
  std::vector<std::string> names;
  for (int i = 0; i < 5; ++i) {
    v1::CreateModelRequest create = UniformRequest("box-" + std::to_string(i), {0}, {1});
    create.set_description(std::string(2000, 'd'));
    REQUIRE(f.core->CreateModel(create).ok());
    names.push_back(create.name());
  }
  common::v1::ListModelsRequest list;
  list.set_page_size(1000);
  std::vector<std::string> got;
  int pages = 0;
  do {
    const auto page = f.core->ListModels(list);
    REQUIRE(page.ok());
    CHECK(page->models_size() == (pages < 2 ? 2 : 1));
    for (const auto& m : page->models()) got.push_back(m.name());
    list.set_page_token(page->next_page_token());
    REQUIRE(++pages < 10);
  } while (!list.page_token().empty());
  CHECK(got == names);
  CHECK(pages == 3);
}

TEST_CASE("bad names, unknown models and bad specs get clear statuses") {
  store::MemoryModelStore store;
  Fixture f(&store);
  for (const std::string& name :
       std::vector<std::string>{"../x", "", std::string(64, 'a'), "Upper", "a/b"}) {
    CAPTURE(name);
    CHECK(absl::IsInvalidArgument(f.core->CreateModel(UniformRequest(name, {0}, {1})).status()));
  }
  CHECK(f.core->CreateModel(UniformRequest(std::string(63, 'a'), {0}, {1})).ok());
  CHECK(absl::IsInvalidArgument(f.core->CreateModel(UniformRequest("bad", {1}, {0})).status()));
  CHECK(absl::IsInvalidArgument(f.core->CreateModel(UniformRequest("bad", {NAN}, {1})).status()));
  v1::CreateModelRequest no_spec;
  no_spec.set_name("nospec");
  CHECK(absl::IsInvalidArgument(f.core->CreateModel(no_spec).status()));
  v1::CreateModelRequest ppca;
  ppca.set_name("ppca");
  ppca.mutable_spec()->mutable_ppca()->set_noise_variance(1);  // no loadings, no mean
  CHECK(!f.core->CreateModel(ppca).ok());
  // Nothing half-written by the failures.
  CHECK(f.core->ListModels({})->models_size() == 1);

  v1::GetModelRequest get;
  *get.mutable_model() = Ref("missing");
  auto missing = f.core->GetModel(get);
  CHECK(absl::IsNotFound(missing.status()));
  CHECK_THAT(std::string(missing.status().message()), Catch::Contains("missing"));
  REQUIRE(f.core->CreateModel(UniformRequest("box", {0}, {1})).ok());
  *get.mutable_model() = Ref("box", 7);
  CHECK(absl::IsNotFound(f.core->GetModel(get).status()));
  *get.mutable_model() = Ref("../etc", 0);
  CHECK(absl::IsInvalidArgument(f.core->GetModel(get).status()));
}

TEST_CASE("sample streams do not depend on batch size, and shards concatenate") {
  store::MemoryModelStore store;
  Fixture f(&store);
  REQUIRE(f.core->CreateModel(UniformRequest("box", {0, -5, 100}, {1, 5, 101})).ok());
  v1::SampleRequest request;
  *request.mutable_model() = Ref("box");
  request.set_num_samples(100);
  request.set_seed(123);
  std::vector<double> reference;
  for (uint32_t batch_size : {1u, 7u, 64u, 100u, 0u}) {
    request.set_batch_size(batch_size);
    auto stream = f.core->StartSample(request);
    REQUIRE(stream.ok());
    auto batches = Drain(**stream);
    uint64_t expected_start = 0;
    for (const auto& b : batches) {
      CHECK(b.start_index() == expected_start);
      CHECK(b.seed() == 123);
      CHECK(b.model_version() == 1);
      CHECK(b.x().cols() == 3);
      expected_start += b.x().rows();
    }
    CHECK(expected_start == 100);
    if (reference.empty()) reference = Values(batches);
    CHECK(Values(batches) == reference);
  }
  // Shards [0, 40) + [40, 100) equal the whole.
  request.set_batch_size(0);
  request.set_num_samples(40);
  auto first = Values(Drain(**f.core->StartSample(request)));
  request.set_start_index(40);
  request.set_num_samples(60);
  auto second = Values(Drain(**f.core->StartSample(request)));
  first.insert(first.end(), second.begin(), second.end());
  CHECK(first == reference);
}

TEST_CASE("a request without a seed gets a fresh one, returned for replay") {
  store::MemoryModelStore store;
  Fixture f(&store);
  REQUIRE(f.core->CreateModel(UniformRequest("box", {0}, {1})).ok());
  v1::SampleRequest request;
  *request.mutable_model() = Ref("box");
  request.set_num_samples(5);
  auto a = Drain(**f.core->StartSample(request));
  auto b = Drain(**f.core->StartSample(request));
  CHECK(a[0].seed() != b[0].seed());
  CHECK(Values(a) != Values(b));
  request.set_seed(a[0].seed());
  CHECK(Values(Drain(**f.core->StartSample(request))) == Values(a));
}

TEST_CASE("sample requests are validated") {
  store::MemoryModelStore store;
  Fixture f(&store);
  REQUIRE(f.core->CreateModel(UniformRequest("box", {0}, {1})).ok());
  v1::SampleRequest request;
  *request.mutable_model() = Ref("box");
  request.set_num_samples(0);
  CHECK(absl::IsInvalidArgument(f.core->StartSample(request).status()));
  request.set_num_samples(1001);
  auto over = f.core->StartSample(request).status();
  CHECK(absl::IsResourceExhausted(over));  // a limit: names its flag
  CHECK_THAT(std::string(over.message()), Catch::Contains("1000"));
  CHECK_THAT(std::string(over.message()), Catch::Contains("--max_samples_per_request"));
  request.set_num_samples(10);
  request.set_start_index(std::numeric_limits<uint64_t>::max() - 8);
  CHECK(absl::IsInvalidArgument(f.core->StartSample(request).status()));
  // The last 10 samples of the stream end at index 2^64 - 1 (an audit found them refused).
  request.set_start_index(std::numeric_limits<uint64_t>::max() - 9);
  request.set_seed(3);
  auto last = f.core->StartSample(request);
  REQUIRE(last.ok());
  const std::vector<v1::SampleBatch> tail = Drain(**last);
  REQUIRE(tail.size() == 1);
  CHECK(tail[0].start_index() == std::numeric_limits<uint64_t>::max() - 9);
  request.set_num_samples(1);
  request.set_start_index(std::numeric_limits<uint64_t>::max());
  auto one = f.core->StartSample(request);
  REQUIRE(one.ok());
  const std::vector<double> tail_values = Values(tail), one_values = Values(Drain(**one));
  REQUIRE(tail_values.size() == 10 * one_values.size());
  CHECK(std::equal(one_values.begin(), one_values.end(), tail_values.end() - one_values.size()));
  request.set_num_samples(10);
  request.set_start_index(0);
  *request.mutable_model() = Ref("nope");
  CHECK(absl::IsNotFound(f.core->StartSample(request).status()));
}

// A sample wider than --max_message_bytes could not be sent: the stream failed with gRPC's bare
// "Sent message larger than max", logged as the client having stopped reading.
TEST_CASE("a sample wider than the largest message is refused up front, naming the flag") {
  store::MemoryModelStore store;
  Repository repository(&store, ParseStoredModel, absl::ZeroDuration());
  GenerativeCoreOptions options;
  options.repository = &repository;
  options.max_message_bytes = 4096;
  GenerativeCore core(std::move(options));
  REQUIRE(core.CreateModel(UniformRequest("wide", std::vector<double>(600, 0.0),
                                          std::vector<double>(600, 1.0)))
              .ok());
  REQUIRE(core.CreateModel(UniformRequest("narrow", std::vector<double>(400, 0.0),
                                          std::vector<double>(400, 1.0)))
              .ok());
  v1::SampleRequest request;
  *request.mutable_model() = Ref("wide");
  request.set_num_samples(3);
  request.set_seed(1);
  const absl::Status wide = core.StartSample(request).status();
  CHECK(absl::IsResourceExhausted(wide));
  CHECK_THAT(std::string(wide.message()), Catch::Contains("--max_message_bytes"));
  CHECK_THAT(std::string(wide.message()), Catch::Contains("600 values"));
  *request.mutable_model() = Ref("narrow");
  auto narrow = core.StartSample(request);
  REQUIRE(narrow.ok());
  const std::vector<v1::SampleBatch> batches = Drain(**narrow);
  size_t rows = 0;
  for (const v1::SampleBatch& batch : batches) {
    CHECK(batch.ByteSizeLong() <= 4096);
    rows += batch.x().rows();
  }
  CHECK(rows == 3);
}

TEST_CASE("exact estimates equal the closed form, latent estimators are refused with a reason") {
  store::MemoryModelStore store;
  Fixture f(&store);
  REQUIRE(f.core->CreateModel(UniformRequest("box", {0, 0}, {2, 4})).ok());
  v1::EstimateLogLikelihoodRequest request;
  *request.mutable_model() = Ref("box");
  request.mutable_x()->set_rows(2);
  request.mutable_x()->set_cols(2);
  for (double v : {1.0, 1.0, 3.0, 1.0}) request.mutable_x()->add_values(v);
  auto response = f.core->EstimateLogLikelihood(request);
  REQUIRE(response.ok());
  CHECK(response->estimator() == v1::EXACT);
  REQUIRE(response->rows_size() == 2);
  CHECK(response->rows(0).log_likelihood() == Approx(-std::log(8.0)).epsilon(1e-15));
  CHECK(response->rows(0).exact_log_likelihood() == Approx(-std::log(8.0)).epsilon(1e-15));
  CHECK(response->rows(1).log_likelihood() == -std::numeric_limits<double>::infinity());

  for (auto estimator : {v1::PRIOR, v1::IMPORTANCE, v1::AIS}) {
    request.set_estimator(estimator);
    auto status = f.core->EstimateLogLikelihood(request).status();
    CHECK(absl::IsInvalidArgument(status));
    CHECK_THAT(std::string(status.message()), Catch::Contains("latent"));
  }
  request.set_estimator(v1::EXACT);
  request.mutable_x()->set_values(0, NAN);
  CHECK(absl::IsInvalidArgument(f.core->EstimateLogLikelihood(request).status()));
  request.mutable_x()->set_values(0, 1.0);
  request.mutable_x()->set_cols(4);
  request.mutable_x()->set_rows(1);
  CHECK(absl::IsFailedPrecondition(f.core->EstimateLogLikelihood(request).status()));
  request.mutable_x()->set_rows(3);
  CHECK(absl::IsInvalidArgument(f.core->EstimateLogLikelihood(request).status()));
  request.mutable_x()->Clear();
  CHECK(absl::IsInvalidArgument(f.core->EstimateLogLikelihood(request).status()));

  v1::StreamEstimateRequest stream_request;
  *stream_request.mutable_request()->mutable_model() = Ref("box");
  stream_request.mutable_request()->mutable_x()->set_rows(1);
  stream_request.mutable_request()->mutable_x()->set_cols(2);
  stream_request.mutable_request()->mutable_x()->add_values(0.5);
  stream_request.mutable_request()->mutable_x()->add_values(0.5);
  auto stream = f.core->StartStreamEstimate(stream_request);
  REQUIRE(stream.ok());
  v1::StreamEstimateResponse message;
  REQUIRE(*(*stream)->Next(&message));
  CHECK(message.stop_reason() == v1::EXACT_RESULT);
  CHECK(message.estimate().rows(0).log_likelihood() == Approx(-std::log(8.0)).epsilon(1e-15));
  CHECK_FALSE(*(*stream)->Next(&message));
}

v1::FitModelRequest Config(const std::string& name) {
  v1::FitModelRequest message;
  message.mutable_config()->set_name(name);
  message.mutable_config()->mutable_uniform();
  return message;
}

v1::FitModelRequest Rows(uint32_t rows, uint32_t cols, std::vector<double> values) {
  v1::FitModelRequest message;
  message.mutable_rows()->set_rows(rows);
  message.mutable_rows()->set_cols(cols);
  for (double v : values) message.mutable_rows()->add_values(v);
  return message;
}

TEST_CASE("fit streams store the maximum-likelihood box") {
  store::MemoryModelStore store;
  Fixture f(&store);
  auto session = f.core->StartFit();
  REQUIRE(session->Add(Config("fitted")).ok());
  REQUIRE(session->Add(Rows(2, 2, {0, 1, 2, 3})).ok());
  REQUIRE(session->Add(Rows(0, 2, {})).ok());
  REQUIRE(session->Add(Rows(1, 2, {-1, 2})).ok());
  auto response = session->Finish();
  REQUIRE(response.ok());
  CHECK(response->info().version() == 1);
  CHECK(response->trace().num_rows() == 3);
  CHECK(response->trace().converged());
  CHECK(response->trace().log_likelihood(0) == Approx(-std::log(3.0 * 2.0)).epsilon(1e-15));
  v1::GetModelRequest get;
  *get.mutable_model() = Ref("fitted");
  auto spec = f.core->GetModel(get)->spec().uniform();
  CHECK(spec.low(0) == -1);
  CHECK(spec.high(0) == 2);
  CHECK(spec.low(1) == 1);
  CHECK(spec.high(1) == 3);
}

TEST_CASE("a fit that runs past --max_fit_seconds ends RESOURCE_EXHAUSTED and stores nothing") {
  // n_init 1000 x max_iter 100 on a few rows: within every knob's bound. The clock moves a minute
  // each time it is read, so the fit passes a 10-minute limit after a few iterations.
  store::MemoryModelStore store;
  Repository repository(&store, ParseStoredModel, absl::ZeroDuration());
  absl::Time now = absl::FromUnixSeconds(1700000000);
  const auto make = [&](absl::Duration limit, bool ticking) {
    GenerativeCoreOptions options;
    options.repository = &repository;
    options.fresh_seed = [] { return 7; };
    options.clock = [&now, ticking] {
      if (ticking) now += absl::Minutes(1);
      return now;
    };
    options.max_fit_duration = limit;
    return std::make_unique<GenerativeCore>(std::move(options));
  };
  v1::FitModelRequest config;
  config.mutable_config()->set_name("slow");
  v1::GaussianMixtureFit* gmm = config.mutable_config()->mutable_gaussian_mixture();
  gmm->set_n_components(2);
  gmm->set_n_init(1000);
  gmm->set_max_iter(100);
  std::vector<double> values;
  for (int i = 0; i < 40; ++i) values.push_back(std::sin(i * 1.7) + (i % 2) * 3.0);
  const auto fit = [&](GenerativeCore& core) {
    auto session = core.StartFit();
    REQUIRE(session->Add(config).ok());
    REQUIRE(session->Add(Rows(40, 1, values)).ok());
    return session->Finish();
  };
  auto limited = make(absl::Minutes(10), true);
  const auto refused = fit(*limited);
  CHECK(absl::IsResourceExhausted(refused.status()));
  CHECK_THAT(std::string(refused.status().message()),
             Catch::Contains("the gaussian_mixture fit of 40 rows ran for 10m") &&
                 Catch::Contains("--max_fit_seconds") && Catch::Contains("nothing was stored"));
  CHECK(limited->ListModels({})->models_size() == 0);
  // Without the limit (or with the clock standing still) the same fit finishes and is stored.
  auto unlimited = make(absl::InfiniteDuration(), true);
  REQUIRE(fit(*unlimited).ok());
  CHECK(unlimited->ListModels({})->models_size() == 1);
}

TEST_CASE("bad fit streams are refused and store nothing") {
  store::MemoryModelStore store;
  Fixture f(&store);
  CHECK(absl::IsInvalidArgument(f.core->StartFit()->Finish().status()));  // empty stream
  {
    auto s = f.core->StartFit();
    REQUIRE(s->Add(Config("a")).ok());
    CHECK(absl::IsInvalidArgument(s->Finish().status()));  // config only
  }
  CHECK(absl::IsInvalidArgument(f.core->StartFit()->Add(Rows(1, 1, {1}))));  // rows first
  CHECK(absl::IsInvalidArgument(f.core->StartFit()->Add(Config("../a"))));
  {
    auto s = f.core->StartFit();
    REQUIRE(s->Add(Config("a")).ok());
    CHECK(absl::IsInvalidArgument(s->Add(Config("a"))));
    CHECK(absl::IsInvalidArgument(s->Add(Rows(1, 2, {1, NAN}))));
    CHECK(absl::IsInvalidArgument(s->Add(Rows(2, 2, {1, 2, 3}))));
    REQUIRE(s->Add(Rows(1, 2, {1, 2})).ok());
    CHECK(absl::IsInvalidArgument(s->Add(Rows(1, 3, {1, 2, 3}))));
    CHECK(absl::IsInvalidArgument(s->Add(Rows(100, 1, std::vector<double>(100, 1.0)))));
  }
  {
    auto s = f.core->StartFit();
    REQUIRE(s->Add(Config("a")).ok());
    CHECK(absl::IsResourceExhausted(s->Add(Rows(101, 1, std::vector<double>(101, 1.0)))));
  }
  {
    auto s = f.core->StartFit();
    REQUIRE(s->Add(Config("a")).ok());
    REQUIRE(s->Add(Rows(2, 1, {5, 5})).ok());
    CHECK(absl::IsFailedPrecondition(s->Finish().status()));  // constant column
  }
  v1::FitModelRequest no_family;
  no_family.mutable_config()->set_name("a");
  CHECK(absl::IsInvalidArgument(f.core->StartFit()->Add(no_family)));
  v1::FitModelRequest gmm;
  gmm.mutable_config()->set_name("a");
  gmm.mutable_config()->mutable_gaussian_mixture()->set_reg_covar(-1);
  CHECK(absl::IsInvalidArgument(f.core->StartFit()->Add(gmm)));
  CHECK(f.core->ListModels({})->models_size() == 0);
}

TEST_CASE(
    "a fit whose model passes --max_model_bytes is refused at its first rows, before fitting") {
  // A FULL gaussian_mixture of 100 components on 100 rows x 1 000 columns (an 800 KB FitModel) is
  // 800 MB of covariances, and the fit peaks at ~9x that: it crashed the server with bad_alloc.
  store::MemoryModelStore store;
  Fixture f(&store);  // the default --max_model_bytes, 256 MiB
  const auto fit_config = [](v1::CovarianceType type) {
    v1::FitModelRequest config;
    config.mutable_config()->set_name("wide");
    v1::GaussianMixtureFit* gmm = config.mutable_config()->mutable_gaussian_mixture();
    gmm->set_n_components(100);
    gmm->set_covariance_type(type);
    gmm->set_max_iter(1);
    gmm->set_init_params(v1::INIT_RANDOM_FROM_DATA);
    return config;
  };
  v1::FitModelRequest rows;
  rows.mutable_rows()->set_rows(100);
  rows.mutable_rows()->set_cols(20000);  // 100 x 20 000 x 20 000 covariances: 320 GB
  for (int i = 0; i < 100 * 20000; ++i) rows.mutable_rows()->add_values((i % 997) / 997.0);
  {
    auto session = f.core->StartFit();
    REQUIRE(session->Add(fit_config(v1::FULL)).ok());
    const absl::Status status = session->Add(rows);
    CHECK(status.code() == absl::StatusCode::kResourceExhausted);
    const std::string message(status.message());
    CHECK_THAT(message, Catch::Contains("--max_model_bytes"));
    CHECK_THAT(message, Catch::Contains("limit of 268435456 bytes"));
    CHECK_THAT(message, Catch::Contains("100 components of dimension 20000 with FULL covariances"));
    CHECK_THAT(message,
               Catch::Contains("covariance_type DIAG or SPHERICAL, or fewer n_components"));
  }
  {  // DIAG: 100 x 20 000 variances, 32 MB, is accepted
    auto session = f.core->StartFit();
    REQUIRE(session->Add(fit_config(v1::DIAG)).ok());
    CHECK(session->Add(rows).ok());
  }
  {  // ppca forms the D x D covariance, whatever latent_dim: 20 000 columns are 3.2 GB
    auto session = f.core->StartFit();
    v1::FitModelRequest ppca;
    ppca.mutable_config()->set_name("wide");
    ppca.mutable_config()->mutable_ppca()->set_latent_dim(1);
    REQUIRE(session->Add(ppca).ok());
    const absl::Status status = session->Add(rows);
    CHECK(status.code() == absl::StatusCode::kResourceExhausted);
    CHECK_THAT(std::string(status.message()), Catch::Contains("--max_model_bytes"));
    CHECK_THAT(std::string(status.message()), Catch::Contains("20000 x 20000 covariance"));
  }
  CHECK(f.core->ListModels(common::v1::ListModelsRequest())->models_size() == 0);
}

// The mixtures' EM forms rows x n_components responsibilities: 100 000 one-column rows with
// 100 000 components (an 800 KB FitModel) would have been ~240 GB, nothing bounding it.
TEST_CASE("a mixture fit whose responsibilities pass --max_model_bytes is refused as rows arrive") {
  store::MemoryModelStore store;
  Repository repository(&store, ParseStoredModel, absl::ZeroDuration());
  GenerativeCoreOptions options;
  options.repository = &repository;
  options.fresh_seed = [] { return uint64_t{7}; };
  GenerativeCore core(std::move(options));  // the default --max_model_bytes, 256 MiB
  auto session = core.StartFit();
  v1::FitModelRequest config;
  config.mutable_config()->set_name("many");
  v1::GaussianMixtureFit* gmm = config.mutable_config()->mutable_gaussian_mixture();
  gmm->set_n_components(10000);
  gmm->set_max_iter(1);
  REQUIRE(session->Add(config).ok());
  v1::FitModelRequest rows;
  rows.mutable_rows()->set_rows(1000);
  rows.mutable_rows()->set_cols(1);
  for (int i = 0; i < 1000; ++i) rows.mutable_rows()->add_values(i);
  // 240 000 bytes per row: 1 118 rows fit under 256 MiB. The first chunk passes, the second not.
  CHECK(session->Add(rows).ok());
  const absl::Status status = session->Add(rows);
  CHECK(status.code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(status.message()), Catch::Contains("--max_model_bytes") &&
                                                Catch::Contains("at more than 1118 rows") &&
                                                Catch::Contains("fewer n_components"));
  CHECK(DefaultFamilies()
            .FindByName("gaussian_mixture")
            ->fit_size(config.config(), 1)
            .per_row_bytes == 3 * 8 * 10000);
  v1::FitConfig bernoulli;
  bernoulli.mutable_bernoulli_mixture()->set_n_components(7);
  CHECK(DefaultFamilies().FindByName("bernoulli_mixture")->fit_size(bernoulli, 5).per_row_bytes ==
        3 * 8 * 7);
}

TEST_CASE("every fittable family states the size of what its fit builds") {
  v1::FitConfig config;
  v1::GaussianMixtureFit* gmm = config.mutable_gaussian_mixture();
  gmm->set_n_components(100);
  const Family* family = DefaultFamilies().FindByName("gaussian_mixture");
  CHECK(family->fit_size(config, 1000).bytes == 8 * (100 + 100 * 1000 + 100ull * 1000 * 1000));
  gmm->set_covariance_type(v1::DIAG);
  CHECK(family->fit_size(config, 1000).bytes == 8 * (100 + 2 * 100 * 1000));
  gmm->set_covariance_type(v1::SPHERICAL);
  CHECK(family->fit_size(config, 1000).bytes == 8 * (2 * 100 + 100 * 1000));
  // Products of request fields saturate rather than wrap.
  gmm->set_covariance_type(v1::FULL);
  CHECK(family->fit_size(config, int64_t{1} << 40).bytes == std::numeric_limits<uint64_t>::max());
  config.mutable_bernoulli_mixture()->set_n_components(10);
  CHECK(DefaultFamilies().FindByName("bernoulli_mixture")->fit_size(config, 50).bytes ==
        8 * (10 + 10 * 50));
  config.mutable_ppca()->set_latent_dim(3);
  CHECK(DefaultFamilies().FindByName("ppca")->fit_size(config, 50).bytes == 8 * 50 * 50);
  config.mutable_factor_analysis()->set_latent_dim(3);
  CHECK(DefaultFamilies().FindByName("factor_analysis")->fit_size(config, 50).bytes == 8 * 50 * 50);
  config.mutable_uniform();
  CHECK(DefaultFamilies().FindByName("uniform")->fit_size(config, 50).bytes == 8 * 2 * 50);
}

TEST_CASE("a CreateModel spec larger than --max_model_bytes is refused before it is built") {
  store::MemoryModelStore store;
  Repository repository(&store, ParseStoredModel, absl::ZeroDuration());
  GenerativeCoreOptions options;
  options.repository = &repository;
  options.fresh_seed = [] { return 1; };
  options.max_model_bytes = 1000;
  GenerativeCore core(std::move(options));
  CHECK(core.CreateModel(UniformRequest("small", {0, 0}, {1, 1})).ok());
  const absl::Status status = core.CreateModel(UniformRequest("big", std::vector<double>(100, 0.0),
                                                              std::vector<double>(100, 1.0)))
                                  .status();
  CHECK(status.code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(status.message()), Catch::Contains("--max_model_bytes"));
  CHECK_THAT(std::string(status.message()), Catch::Contains("limit of 1000 bytes"));
}

TEST_CASE("the core serves exactly the families of its registry") {
  FamilyRegistry only_uniform;
  only_uniform.Register(UniformFamily());
  CHECK(only_uniform.Names() == "uniform");
  CHECK(only_uniform.FindByName("uniform") != nullptr);
  CHECK(only_uniform.FindBySpec(v1::GenerativeModelSpec::kGaussianMixture) == nullptr);
  store::MemoryModelStore store;
  Repository repository(
      &store,
      [&](store::StoredBytes bytes) {
        return ParseStoredModelWith(std::move(bytes), only_uniform);
      },
      absl::ZeroDuration());
  GenerativeCoreOptions options;
  options.repository = &repository;
  options.families = &only_uniform;
  options.fresh_seed = [] { return 1; };
  GenerativeCore core(std::move(options));
  v1::CreateModelRequest gmm;
  gmm.set_name("gmm");
  gmm.mutable_spec()->mutable_gaussian_mixture()->add_weights(1.0);
  const absl::Status created = core.CreateModel(gmm).status();
  CHECK(absl::IsUnimplemented(created));
  CHECK_THAT(std::string(created.message()), Catch::Contains("gaussian_mixture"));
  v1::FitModelRequest fit;
  fit.mutable_config()->set_name("gmm");
  fit.mutable_config()->mutable_gaussian_mixture();
  CHECK(absl::IsUnimplemented(core.StartFit()->Add(fit)));
  REQUIRE(core.CreateModel(UniformRequest("box", {0}, {1})).ok());
  // Every family of the default registry is found by name, spec case and fit case.
  for (const char* name :
       {"uniform", "gaussian_mixture", "ppca", "factor_analysis", "bernoulli_mixture"}) {
    CAPTURE(name);
    const Family* family = DefaultFamilies().FindByName(name);
    REQUIRE(family != nullptr);
    CHECK(DefaultFamilies().FindBySpec(family->spec_case) == family);
    CHECK(DefaultFamilies().FindByFit(family->fit_case) == family);
  }
}

TEST_CASE("models survive a restart on the file store") {
  char dir_template[] = "/tmp/maas-generative-test-XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  {
    auto store = store::FileModelStore::Open(dir).value();
    Fixture f(store.get());
    REQUIRE(f.core->CreateModel(UniformRequest("kept", {0}, {4})).ok());
  }
  {
    auto store = store::FileModelStore::Open(dir).value();
    Fixture f(store.get());
    v1::GetModelRequest get;
    *get.mutable_model() = Ref("kept");
    auto got = f.core->GetModel(get);
    REQUIRE(got.ok());
    CHECK(got->spec().uniform().high(0) == 4);
    CHECK(got->info().created_at().seconds() == 1700000000);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace maas::generative

namespace maas::generative {
namespace {

// An audit found an empty model.pb answered INVALID_ARGUMENT ("spec: no family set"), blaming a
// caller whose request was valid: an empty file parses as an empty message.
TEST_CASE("a stored version that is empty or holds an invalid spec is DATA_LOSS") {
  const absl::Status empty = ParseStoredModel(std::string()).status();
  CHECK(absl::IsDataLoss(empty));
  CHECK_THAT(std::string(empty.message()), Catch::Contains("empty"));
  v1::StoredGenerativeModel stored;
  stored.mutable_info()->set_name("box");
  stored.mutable_spec()->mutable_uniform()->add_low(1.0);
  stored.mutable_spec()->mutable_uniform()->add_high(0.0);  // high < low: never written by a server
  const absl::Status invalid = ParseStoredModel(stored.SerializeAsString()).status();
  CHECK(absl::IsDataLoss(invalid));
  CHECK_THAT(std::string(invalid.message()), Catch::Contains("stored spec"));
  stored.mutable_spec()->mutable_uniform()->set_high(0, 2.0);
  CHECK(ParseStoredModel(stored.SerializeAsString()).ok());
}

}  // namespace
}  // namespace maas::generative

namespace maas::generative {
namespace {

TEST_CASE("RowBuffer gives back the rows in order across blocks, whatever the chunks") {
  for (size_t block_bytes :
       {size_t{8}, size_t{3 * 3 * 8}, size_t{7 * 3 * 8}, RowBuffer::kBlockBytes}) {
    CAPTURE(block_bytes);
    RowBuffer buffer(block_bytes);
    Eigen::MatrixXd all(0, 3);
    int64_t next = 0;
    for (int64_t chunk : {1, 4, 0, 7, 2, 9}) {
      Eigen::MatrixXd rows(chunk, 3);
      for (int64_t i = 0; i < chunk; ++i, ++next) rows.row(i) << next, -next, 0.5 * next;
      buffer.Add(rows);
      Eigen::MatrixXd grown(all.rows() + chunk, 3);
      grown << all, rows;
      all = grown;
      CHECK(buffer.rows() == all.rows());
    }
    CHECK(buffer.cols() == 3);
    const Eigen::MatrixXd taken = buffer.Take();
    CHECK(taken == all);
    CHECK(buffer.rows() == 0);
  }
}

}  // namespace
}  // namespace maas::generative

namespace maas::generative {
namespace {

v1::GenerativeModelSpec LinearGaussianSpec(bool ppca, int d, int l) {
  v1::GenerativeModelSpec spec;
  common::v1::Matrix* w = ppca ? spec.mutable_ppca()->mutable_loadings()
                               : spec.mutable_factor_analysis()->mutable_loadings();
  w->set_rows(d);
  w->set_cols(l);
  for (int i = 0; i < d * l; ++i) w->add_values(i % (l + 1) == 0 ? 1.0 : 0.001);
  for (int i = 0; i < d; ++i) {
    if (ppca) {
      spec.mutable_ppca()->add_mean(0.0);
    } else {
      spec.mutable_factor_analysis()->add_mean(0.0);
      spec.mutable_factor_analysis()->add_noise_variance(0.5);
    }
  }
  if (ppca) spec.mutable_ppca()->set_noise_variance(0.5);
  return spec;
}

// One 1 x L layer: latent_dim L, D = 1.
v1::GenerativeModelSpec WideLatentDecoder(int l) {
  v1::GenerativeModelSpec spec;
  v1::MlpDecoderSpec* mlp = spec.mutable_mlp_decoder();
  mlp->set_latent_dim(l);
  mlp->set_noise_variance(1.0);
  v1::DenseLayer* layer = mlp->add_layers();
  layer->mutable_weight()->set_rows(1);
  layer->mutable_weight()->set_cols(l);
  for (int i = 0; i < l; ++i) layer->mutable_weight()->add_values(0.001);
  layer->add_bias(0.0);
  layer->set_activation(v1::IDENTITY);
  return spec;
}

struct LimitedCore {
  LimitedCore(store::ModelStore* store, uint64_t max_model_bytes, uint64_t load_limit)
      : repository(
            store,
            [load_limit](store::StoredBytes bytes) {
              return ParseStoredModelWith(std::move(bytes), DefaultFamilies(), load_limit);
            },
            absl::ZeroDuration()) {
    GenerativeCoreOptions options;
    options.repository = &repository;
    options.fresh_seed = [] { return 1; };
    options.max_model_bytes = max_model_bytes;
    core = std::make_unique<GenerativeCore>(std::move(options));
  }
  absl::Status Create(const std::string& name, const v1::GenerativeModelSpec& spec) {
    v1::CreateModelRequest request;
    request.set_name(name);
    *request.mutable_spec() = spec;
    return core->CreateModel(request).status();
  }
  Repository repository;
  std::unique_ptr<GenerativeCore> core;
};

// The hunt's 160 KB ppca spec (loadings 1 x 20 000) formed three 20 000 x 20 000 matrices and
// crashed the server: L > D is refused as the fitters refuse it, and what a built model forms is
// bounded by --max_model_bytes before it is built.
TEST_CASE(
    "CreateModel refuses linear-Gaussian latents wider than the data and models that form "
    "more than --max_model_bytes") {
  store::MemoryModelStore store;
  LimitedCore c(&store, 200'000, 0);
  for (bool ppca : {true, false}) {
    CAPTURE(ppca);
    const absl::Status wide = c.Create("wide", LinearGaussianSpec(ppca, 1, 50));
    CHECK(absl::IsInvalidArgument(wide));
    CHECK_THAT(std::string(wide.message()), Catch::Contains("L = 50") &&
                                                Catch::Contains("data dimension D = 1") &&
                                                Catch::Contains("1 <= L <= D"));
    CHECK(c.Create("square", LinearGaussianSpec(ppca, 3, 3)).ok());
    // 100 x 100 loadings: an 80 KB spec, but the model forms 3 D x L + 3 L x L = 480 000 bytes.
    const absl::Status big = c.Create("big", LinearGaussianSpec(ppca, 100, 100));
    CHECK(absl::IsResourceExhausted(big));
    CHECK_THAT(std::string(big.message()), Catch::Contains("--max_model_bytes") &&
                                               Catch::Contains("480000 bytes") &&
                                               Catch::Contains("nothing was stored"));
  }
  // Every family states what its built model forms.
  const Family* ppca = DefaultFamilies().FindByName("ppca");
  CHECK(ppca->model_size(LinearGaussianSpec(true, 100, 7)).bytes == 8 * (3 * 100 * 7 + 3 * 7 * 7));
  // A fit counts the model it will store when that is larger than the D x D covariance, so that
  // what it passes can be stored and loaded.
  v1::FitConfig config;
  config.mutable_ppca()->set_latent_dim(40);
  CHECK(ppca->fit_size(config, 50).bytes == 8 * (3 * 50 * 40 + 3 * 40 * 40));
  config.mutable_factor_analysis()->set_latent_dim(40);
  CHECK(DefaultFamilies().FindByName("factor_analysis")->fit_size(config, 50).bytes ==
        8 * (3 * 50 * 40 + 3 * 40 * 40));
  v1::GenerativeModelSpec box;
  box.mutable_uniform()->add_low(0);
  box.mutable_uniform()->add_high(1);
  CHECK(DefaultFamilies().FindByName("uniform")->model_size(box).bytes == 8 * 3);
  for (const char* name : {"uniform", "gaussian_mixture", "ppca", "factor_analysis",
                           "bernoulli_mixture", "mlp_decoder"}) {
    CAPTURE(name);
    REQUIRE(DefaultFamilies().FindByName(name)->model_size);
  }
}

// mlp_decoder latent_dim 50 000 (a 400 KB spec) was stored, and any estimate of it (the default
// estimator is IMPORTANCE) formed a 20 GB Hessian and crashed the server.
TEST_CASE(
    "an mlp_decoder whose IMPORTANCE Hessian passes --max_model_bytes is refused at "
    "CreateModel, at load and at estimates") {
  const v1::GenerativeModelSpec huge = WideLatentDecoder(50000);
  const ModelSize size = DefaultFamilies().FindByName("mlp_decoder")->model_size(huge);
  CHECK(size.bytes >= uint64_t{8} * 6 * 50000 * 50000);
  store::MemoryModelStore store;
  LimitedCore limited(&store, uint64_t{256} << 20, 0);
  const absl::Status created = limited.Create("huge", huge);
  CHECK(absl::IsResourceExhausted(created));
  CHECK_THAT(std::string(created.message()),
             Catch::Contains("latent_dim 50000") && Catch::Contains("--max_model_bytes"));
  // A smaller one stored under no limit (as before this rule) ...
  LimitedCore unlimited(&store, 0, 0);
  REQUIRE(unlimited.Create("wide", WideLatentDecoder(200)).ok());
  // ... is refused when loaded under a limit it passes (6 x 200 x 200 x 8 = 1.92 MB) ...
  LimitedCore small_load(&store, 1 << 20, 1 << 20);
  v1::GetModelRequest get;
  *get.mutable_model() = Ref("wide");
  const absl::Status loaded = small_load.core->GetModel(get).status();
  CHECK(absl::IsResourceExhausted(loaded));
  CHECK_THAT(std::string(loaded.message()),
             Catch::Contains("--max_model_bytes") && Catch::Contains("the version is not loaded"));
  // ... and an IMPORTANCE estimate (the default) of it is refused before any proposal is built.
  LimitedCore small(&store, 1 << 20, 0);
  v1::EstimateLogLikelihoodRequest estimate;
  *estimate.mutable_model() = Ref("wide");
  estimate.mutable_x()->set_rows(1);
  estimate.mutable_x()->set_cols(1);
  estimate.mutable_x()->add_values(0.5);
  estimate.set_num_samples(4);
  const absl::Status refused = small.core->EstimateLogLikelihood(estimate).status();
  CHECK(absl::IsResourceExhausted(refused));
  CHECK_THAT(std::string(refused.message()),
             Catch::Contains("IMPORTANCE proposal") && Catch::Contains("1920000 bytes per row") &&
                 Catch::Contains("--max_model_bytes") && Catch::Contains("PRIOR or AIS"));
  estimate.set_estimator(v1::PRIOR);
  CHECK(small.core->EstimateLogLikelihood(estimate).ok());
}

}  // namespace
}  // namespace maas::generative
