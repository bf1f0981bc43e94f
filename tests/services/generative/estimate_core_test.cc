// EstimateLogLikelihood and StreamEstimate through the generative core (no gRPC) on an mlp_decoder:
// request validation, defaults, sharding offsets, thread independence and stream stop reasons.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>

#include "common/math/pareto_k.h"
#include "common/math/weight_stats.h"
#include "common/registry/model_repository.h"
#include "common/store/memory_model_store.h"
#include "services/generative/core/generative_core.h"
#include "tests/services/generative/thread_executor.h"

namespace maas::generative {
namespace {

struct Fixture {
  explicit Fixture(exec::Executor* executor = nullptr,
                   int64_t max_tail_bytes = GenerativeCoreOptions().max_stream_estimate_tail_bytes,
                   uint64_t max_ais_work = GenerativeCoreOptions().max_ais_work)
      : repository(&store, ParseStoredModel, absl::ZeroDuration()) {
    GenerativeCoreOptions options;
    options.repository = &repository;
    options.max_stream_estimate_tail_bytes = max_tail_bytes;
    options.max_ais_work = max_ais_work;
    options.max_samples_per_request = 100000;
    options.fresh_seed = [] { return 4242; };
    options.clock = [this] { return now; };
    options.executor = executor;
    core = std::make_unique<GenerativeCore>(std::move(options));
    v1::CreateModelRequest create;
    create.set_name("dec");
    v1::MlpDecoderSpec* spec = create.mutable_spec()->mutable_mlp_decoder();
    spec->set_latent_dim(2);
    v1::DenseLayer* layer = spec->add_layers();
    layer->mutable_weight()->set_rows(3);
    layer->mutable_weight()->set_cols(2);
    for (double v : {0.5, -0.3, 0.8, 0.1, -0.6, 0.4}) layer->mutable_weight()->add_values(v);
    for (double v : {0.1, 0.0, -0.2}) layer->add_bias(v);
    layer->set_activation(v1::TANH);
    spec->set_noise_variance(0.2);
    REQUIRE(core->CreateModel(create).ok());
    uniform.set_name("box");
    uniform.mutable_spec()->mutable_uniform()->add_low(0);
    uniform.mutable_spec()->mutable_uniform()->add_high(1);
    REQUIRE(core->CreateModel(uniform).ok());
  }
  store::MemoryModelStore store;
  registry::ModelRepository<LoadedModel> repository;
  std::unique_ptr<GenerativeCore> core;
  v1::CreateModelRequest uniform;
  absl::Time now = absl::FromUnixSeconds(1700000000);
};

v1::EstimateLogLikelihoodRequest Request(v1::Estimator estimator, int rows) {
  v1::EstimateLogLikelihoodRequest request;
  request.mutable_model()->set_name("dec");
  request.set_estimator(estimator);
  request.mutable_x()->set_rows(rows);
  request.mutable_x()->set_cols(3);
  for (int i = 0; i < 3 * rows; ++i) request.mutable_x()->add_values(0.3 * std::sin(i + 1.0));
  request.set_seed(17);
  return request;
}

TEST_CASE("Monte Carlo estimates through the core: defaults, fields and thread independence") {
  Fixture inline_core;
  testing::ThreadExecutor pool(3);
  Fixture threaded(&pool);
  for (v1::Estimator estimator : {v1::PRIOR, v1::IMPORTANCE, v1::AIS}) {
    INFO(v1::Estimator_Name(estimator));
    v1::EstimateLogLikelihoodRequest request = Request(estimator, 3);
    if (estimator == v1::AIS) request.mutable_ais()->set_num_temperatures(50);
    auto one = inline_core.core->EstimateLogLikelihood(request);
    REQUIRE(one.ok());
    auto many = threaded.core->EstimateLogLikelihood(request);
    REQUIRE(many.ok());
    CHECK(one->estimator() == estimator);
    CHECK(one->seed() == 17);
    REQUIRE(one->rows_size() == 3);
    for (int r = 0; r < 3; ++r) {
      const v1::RowEstimate& row = one->rows(r);
      CHECK(row.num_samples() == (estimator == v1::AIS ? 16u : 1000u));
      CHECK(row.statistics().count() == row.num_samples());
      CHECK(std::isfinite(row.log_likelihood()));
      CHECK(row.standard_error() > 0);
      CHECK(row.ess() >= 1);
      CHECK(row.ess() <= row.num_samples());
      CHECK_FALSE(row.has_exact_log_likelihood());
      CHECK(row.SerializeAsString() == many->rows(r).SerializeAsString());
      if (estimator == v1::AIS) {
        CHECK(row.ais_acceptance_rate() > 0);
        CHECK(std::isnan(row.pareto_k()));  // 16 chains: too few for the tail fit
      } else {
        CHECK(std::isfinite(row.pareto_k()));
      }
    }
  }
  // Unset estimator on a non-tractable family: IMPORTANCE.
  v1::EstimateLogLikelihoodRequest request = Request(v1::ESTIMATOR_UNSPECIFIED, 1);
  request.clear_seed();
  auto response = inline_core.core->EstimateLogLikelihood(request);
  REQUIRE(response.ok());
  CHECK(response->estimator() == v1::IMPORTANCE);
  CHECK(response->seed() == 4242);
}

TEST_CASE("shards over rows and samples merge into the one-call statistics") {
  Fixture f;
  for (v1::Estimator estimator : {v1::PRIOR, v1::IMPORTANCE, v1::AIS}) {
    INFO(v1::Estimator_Name(estimator));
    v1::EstimateLogLikelihoodRequest whole = Request(estimator, 4);
    whole.set_num_samples(estimator == v1::AIS ? 10 : 900);
    whole.mutable_ais()->set_num_temperatures(20);
    auto all = f.core->EstimateLogLikelihood(whole);
    REQUIRE(all.ok());
    std::vector<math::WeightStats> merged(4);
    const uint64_t n = whole.num_samples();
    for (int row_first : {0, 1}) {
      const int rows = row_first == 0 ? 1 : 3;
      for (auto [first, last] :
           std::vector<std::pair<uint64_t, uint64_t>>{{0, n / 4}, {n / 4, n}}) {
        v1::EstimateLogLikelihoodRequest shard = whole;
        shard.mutable_x()->set_rows(rows);
        shard.mutable_x()->clear_values();
        for (int i = 3 * row_first; i < 3 * (row_first + rows); ++i) {
          shard.mutable_x()->add_values(whole.x().values(i));
        }
        shard.set_row_offset(row_first);
        shard.set_sample_offset(first);
        shard.set_num_samples(last - first);
        auto part = f.core->EstimateLogLikelihood(shard);
        REQUIRE(part.ok());
        for (int r = 0; r < rows; ++r) {
          const v1::WeightStatistics& s = part->rows(r).statistics();
          auto stats = math::WeightStats::FromParts(static_cast<int64_t>(s.count()), s.log_sum_w(),
                                                    s.log_sum_w2());
          REQUIRE(stats.ok());
          merged[row_first + r].Merge(*stats);
        }
      }
    }
    for (int r = 0; r < 4; ++r) {
      const v1::WeightStatistics& s = all->rows(r).statistics();
      CHECK(merged[r].count() == static_cast<int64_t>(s.count()));
      CHECK(std::abs(merged[r].log_sum_w() - s.log_sum_w()) < 1e-12);
      CHECK(std::abs(merged[r].log_sum_w2() - s.log_sum_w2()) < 1e-12);
      CHECK(std::abs(merged[r].LogMean() - all->rows(r).log_likelihood()) < 1e-12);
    }
  }
}

TEST_CASE("an AIS estimate whose work passes --max_ais_work is refused before any work") {
  Fixture f;
  // Each AIS knob is within its bound, but 2 rows x (16 samples + 4 pilot chains) x 100 000
  // temperatures x 1 000 leapfrog steps (a 61-byte request) is 4e9 gradient evaluations: hours
  // of every worker. The stop token says "cancelled" at once, so work that started would end
  // CANCELLED; the refusal comes before any.
  const exec::StopToken cancelled([] { return absl::CancelledError("the client left"); });
  v1::EstimateLogLikelihoodRequest request = Request(v1::AIS, 2);
  request.set_num_samples(16);
  request.mutable_ais()->set_num_temperatures(100000);
  request.mutable_ais()->set_leapfrog_steps(1000);
  for (bool stream : {false, true}) {
    INFO((stream ? "StreamEstimate" : "EstimateLogLikelihood"));
    absl::Status status;
    if (stream) {
      v1::StreamEstimateRequest streamed;
      *streamed.mutable_request() = request;
      status = f.core->StartStreamEstimate(streamed, absl::InfiniteFuture(), cancelled).status();
    } else {
      status = f.core->EstimateLogLikelihood(request, cancelled).status();
    }
    CHECK(status.code() == absl::StatusCode::kResourceExhausted);
    const std::string message(status.message());
    CHECK_THAT(message, Catch::Contains("--max_ais_work"));
    CHECK_THAT(message, Catch::Contains("2 rows x (num_samples 16 + ais.pilot_chains 4) x "
                                        "ais.num_temperatures 100000 x ais.leapfrog_steps 1000 = "
                                        "4e+09 gradient evaluations"));
    CHECK_THAT(message, Catch::Contains("limit of 1000000000"));
  }
  // The product is compared, not any one knob: 1 row x (6 + 4) x 100 x 10 = 10^4 runs against a
  // limit of 10^4, one more sample does not.
  Fixture small(nullptr, GenerativeCoreOptions().max_stream_estimate_tail_bytes, 10000);
  request = Request(v1::AIS, 1);
  request.set_num_samples(6);
  request.mutable_ais()->set_num_temperatures(100);
  request.mutable_ais()->set_leapfrog_steps(10);
  CHECK(small.core->EstimateLogLikelihood(request).ok());
  request.set_num_samples(7);
  CHECK(small.core->EstimateLogLikelihood(request).status().code() ==
        absl::StatusCode::kResourceExhausted);
}

TEST_CASE("an estimate whose work passes --max_estimate_work is refused before any work") {
  // "dec" evaluates log p(x|z) in 3 x 2 + 3 = 9 multiply-adds; a PRIOR sample costs 2 000
  // (kEvaluationOverhead) + 9 + 2 (the prior draw) = 2 011, and its 256 samples are one chunk.
  GenerativeCoreOptions defaults;
  Fixture f;
  const exec::StopToken cancelled([] { return absl::CancelledError("the client left"); });
  const auto run = [&](GenerativeCore& core, const v1::EstimateLogLikelihoodRequest& request,
                       bool stream) {
    if (!stream) return core.EstimateLogLikelihood(request, cancelled).status();
    v1::StreamEstimateRequest streamed;
    *streamed.mutable_request() = request;
    return core.StartStreamEstimate(streamed, absl::InfiniteFuture(), cancelled).status();
  };
  {
    GenerativeCoreOptions options;
    options.repository = &f.repository;
    options.max_samples_per_request = 100000;
    options.fresh_seed = [] { return 4242; };
    options.max_estimate_work = 256 * 2011;
    GenerativeCore tight(std::move(options));
    v1::EstimateLogLikelihoodRequest request = Request(v1::PRIOR, 1);
    request.set_num_samples(256);
    CHECK(tight.EstimateLogLikelihood(request).ok());
    request.set_num_samples(257);
    for (bool stream : {false, true}) {
      INFO((stream ? "StreamEstimate" : "EstimateLogLikelihood"));
      const absl::Status status = run(tight, request, stream);
      CHECK(status.code() == absl::StatusCode::kResourceExhausted);
      const std::string message(status.message());
      CHECK_THAT(message, Catch::Contains("this PRIOR estimate of 1 rows x num_samples 257 on "
                                          "model 'dec' (mlp_decoder, ~9 multiply-adds per "
                                          "log p(x|z)) is ~5.17e+05 multiply-adds"));
      CHECK_THAT(message, Catch::Contains("limit of 5.15e+05 per request (--max_estimate_work)"));
      CHECK_THAT(message, Catch::Contains("row_offset"));
    }
    // IMPORTANCE and AIS count against the same cap (AIS well within --max_ais_work).
    request.set_num_samples(256);
    request.set_estimator(v1::IMPORTANCE);
    CHECK(run(tight, request, false).code() == absl::StatusCode::kResourceExhausted);
    request.set_estimator(v1::AIS);
    request.set_num_samples(16);
    request.mutable_ais()->set_num_temperatures(20);
    request.mutable_ais()->set_leapfrog_steps(2);
    const absl::Status ais = run(tight, request, false);
    CHECK(ais.code() == absl::StatusCode::kResourceExhausted);
    CHECK_THAT(std::string(ais.message()),
               Catch::Contains("this AIS estimate") && Catch::Contains("--max_estimate_work") &&
                   Catch::Contains("num_temperatures or leapfrog_steps"));
  }
  // What a request may ask depends on its model: at the default cap, 1 000 rows x 100 000 samples
  // of a 1 -> 100 000 -> 1 decoder (2e5 multiply-adds per evaluation: ~2e13, hours of every
  // worker) is refused, the same request on a 2-component mixture (~2e11) starts (a unary call
  // then stops at the cancelled token).
  REQUIRE(defaults.max_estimate_work == 5e12);
  v1::CreateModelRequest wide;
  wide.set_name("wide");
  v1::MlpDecoderSpec* spec = wide.mutable_spec()->mutable_mlp_decoder();
  spec->set_latent_dim(1);
  constexpr int kUnits = 100000;
  v1::DenseLayer* hidden = spec->add_layers();
  hidden->mutable_weight()->set_rows(kUnits);
  hidden->mutable_weight()->set_cols(1);
  v1::DenseLayer* out = spec->add_layers();
  out->mutable_weight()->set_rows(1);
  out->mutable_weight()->set_cols(kUnits);
  for (int i = 0; i < kUnits; ++i) {
    hidden->mutable_weight()->add_values(std::sin(i + 1.0));
    hidden->add_bias(0.0);
    out->mutable_weight()->add_values(1e-3 * std::cos(i + 1.0));
  }
  hidden->set_activation(v1::TANH);
  out->add_bias(0.0);
  spec->set_noise_variance(0.5);
  REQUIRE(f.core->CreateModel(wide).ok());
  v1::CreateModelRequest mixture;
  mixture.set_name("mix");
  v1::GaussianMixtureSpec* gmm = mixture.mutable_spec()->mutable_gaussian_mixture();
  gmm->set_covariance_type(v1::DIAG);
  for (double w : {0.4, 0.6}) gmm->add_weights(w);
  gmm->mutable_means()->set_rows(2);
  gmm->mutable_means()->set_cols(1);
  gmm->mutable_covariances()->set_rows(2);
  gmm->mutable_covariances()->set_cols(1);
  for (double v : {-1.0, 1.0}) gmm->mutable_means()->add_values(v);
  for (double v : {0.5, 2.0}) gmm->mutable_covariances()->add_values(v);
  REQUIRE(f.core->CreateModel(mixture).ok());
  v1::EstimateLogLikelihoodRequest request;
  request.set_estimator(v1::PRIOR);
  request.set_num_samples(100000);
  request.mutable_x()->set_rows(1000);
  request.mutable_x()->set_cols(1);
  for (int i = 0; i < 1000; ++i) request.mutable_x()->add_values(0.001 * i);
  for (bool stream : {false, true}) {
    INFO((stream ? "StreamEstimate" : "EstimateLogLikelihood"));
    request.mutable_model()->set_name("wide");
    const absl::Status refused = run(*f.core, request, stream);
    CHECK(refused.code() == absl::StatusCode::kResourceExhausted);
    CHECK_THAT(std::string(refused.message()),
               Catch::Contains("(mlp_decoder, ~2e+05 multiply-adds per log p(x|z)) is ~2.02e+13"));
    request.mutable_model()->set_name("mix");
    // Admitted: the work starts and the cancelled token stops it (a unary call's estimate, a
    // stream's exact values of its tractable rows, computed as it starts).
    CHECK(run(*f.core, request, stream).code() == absl::StatusCode::kCancelled);
  }
}

TEST_CASE("bad estimate requests are refused, naming the field") {
  Fixture f;
  const auto refused = [&](const v1::EstimateLogLikelihoodRequest& request, const char* field) {
    auto status = f.core->EstimateLogLikelihood(request).status();
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Catch::Contains(field));
  };
  v1::EstimateLogLikelihoodRequest request = Request(v1::PRIOR, 1);
  request.set_num_samples(100001);
  {  // a limit, not a malformed request: RESOURCE_EXHAUSTED naming its flag
    auto status = f.core->EstimateLogLikelihood(request).status();
    CHECK(status.code() == absl::StatusCode::kResourceExhausted);
    CHECK_THAT(std::string(status.message()), Catch::Contains("--max_samples_per_request"));
  }
  request = Request(v1::EXACT, 1);
  refused(request, "closed-form");
  request = Request(v1::AIS, 1);
  request.mutable_ais()->set_leapfrog_steps(1001);
  refused(request, "ais.leapfrog_steps");
  // Large values are reported as sent, not clamped.
  request = Request(v1::AIS, 1);
  request.mutable_ais()->set_leapfrog_steps(4000000000u);
  refused(request, "ais.leapfrog_steps is 4000000000;");
  request = Request(v1::AIS, 1);
  request.mutable_ais()->set_num_temperatures(4294967295u);
  refused(request, "ais.num_temperatures is 4294967295;");
  request = Request(v1::AIS, 1);
  request.mutable_ais()->set_pilot_chains((1u << 30) + 1);
  refused(request, "ais.pilot_chains is 1073741825;");
  request = Request(v1::AIS, 1);
  request.mutable_ais()->set_target_acceptance(0);
  refused(request, "ais.target_acceptance");
  request = Request(v1::AIS, 1);
  request.mutable_ais()->set_initial_step_size(-1);
  refused(request, "ais.initial_step_size");
  request = Request(v1::PRIOR, 2);
  request.set_row_offset((uint64_t{1} << 32) - 1);
  refused(request, "row_offset");
  request = Request(v1::PRIOR, 1);
  request.set_sample_offset(uint64_t{1} << 32);
  refused(request, "sample_offset");
  request = Request(static_cast<v1::Estimator>(17), 1);
  refused(request, "estimator");
  // Any Monte Carlo estimator on the uniform family (no latent variable).
  for (v1::Estimator e : {v1::PRIOR, v1::IMPORTANCE, v1::AIS}) {
    v1::EstimateLogLikelihoodRequest box;
    box.mutable_model()->set_name("box");
    box.set_estimator(e);
    box.mutable_x()->set_rows(1);
    box.mutable_x()->set_cols(1);
    box.mutable_x()->add_values(0.5);
    auto status = f.core->EstimateLogLikelihood(box).status();
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Catch::Contains("EXACT"));
  }
}

TEST_CASE("Bernoulli-likelihood models refuse x values other than 0 and 1, naming row and column") {
  Fixture f;
  v1::CreateModelRequest create;
  create.set_name("bits");  // mlp_decoder with a Bernoulli likelihood, L = 2, D = 3
  v1::MlpDecoderSpec* decoder = create.mutable_spec()->mutable_mlp_decoder();
  decoder->set_latent_dim(2);
  v1::DenseLayer* layer = decoder->add_layers();
  layer->mutable_weight()->set_rows(3);
  layer->mutable_weight()->set_cols(2);
  for (double v : {0.5, -0.3, 0.8, 0.1, -0.6, 0.4}) layer->mutable_weight()->add_values(v);
  for (double v : {0.1, 0.0, -0.2}) layer->add_bias(v);
  decoder->set_likelihood(v1::BERNOULLI);
  REQUIRE(f.core->CreateModel(create).ok());
  create.set_name("mix");  // bernoulli_mixture, K = 2, D = 3
  v1::BernoulliMixtureSpec* mixture = create.mutable_spec()->mutable_bernoulli_mixture();
  for (double w : {0.3, 0.7}) mixture->add_weights(w);
  mixture->mutable_probabilities()->set_rows(2);
  mixture->mutable_probabilities()->set_cols(3);
  for (double p : {0.2, 0.5, 0.9, 0.6, 0.1, 0.4}) mixture->mutable_probabilities()->add_values(p);
  REQUIRE(f.core->CreateModel(create).ok());

  for (const char* name : {"bits", "mix"}) {
    INFO(name);
    v1::EstimateLogLikelihoodRequest request = Request(v1::PRIOR, 2);
    request.mutable_model()->set_name(name);
    request.mutable_x()->clear_values();
    for (double v : {1.0, 0.0, 1.0, 0.0, 0.0, 1.0}) request.mutable_x()->add_values(v);
    request.set_num_samples(50);
    REQUIRE(f.core->EstimateLogLikelihood(request).ok());
    request.mutable_x()->set_values(5, 0.5);  // row 1, column 2
    for (v1::Estimator estimator : {v1::PRIOR, v1::IMPORTANCE, v1::ESTIMATOR_UNSPECIFIED}) {
      request.set_estimator(estimator);
      const absl::Status status = f.core->EstimateLogLikelihood(request).status();
      CHECK(status.code() == absl::StatusCode::kInvalidArgument);
      CHECK_THAT(std::string(status.message()), Catch::Contains("row 1, column 2 is 0.5"));
      v1::StreamEstimateRequest stream;
      *stream.mutable_request() = request;
      CHECK(f.core->StartStreamEstimate(stream).status().code() ==
            absl::StatusCode::kInvalidArgument);
    }
  }
  // A Gaussian likelihood takes any finite value.
  CHECK(f.core->EstimateLogLikelihood(Request(v1::PRIOR, 2)).ok());
}

// The stream's next message (REQUIREs that it is not an error); false when it is over.
bool NextOk(EstimateStream& stream, v1::StreamEstimateResponse* message) {
  absl::StatusOr<bool> more = stream.Next(message);
  REQUIRE(more.ok());
  return *more;
}

std::vector<v1::StreamEstimateResponse> Drain(EstimateStream& stream) {
  std::vector<v1::StreamEstimateResponse> out;
  v1::StreamEstimateResponse message;
  while (NextOk(stream, &message)) out.push_back(message);
  return out;
}

// An audit found the stream's k-hat wrong after many small increments: the stream kept only the
// tail the samples so far needed, which grows with them, so weights dropped early belonged to the
// final tail.
TEST_CASE("StreamEstimate: k-hat after many small increments equals one call's") {
  Fixture f;
  for (v1::Estimator estimator : {v1::PRIOR, v1::IMPORTANCE, v1::AIS}) {
    INFO(v1::Estimator_Name(estimator));
    v1::StreamEstimateRequest request;
    *request.mutable_request() = Request(estimator, 40);
    const bool ais = estimator == v1::AIS;
    if (ais) request.mutable_request()->mutable_ais()->set_num_temperatures(20);
    request.mutable_request()->set_num_samples(ais ? 4 : 25);
    request.set_max_samples(ais ? 64 : 1000);
    auto stream = f.core->StartStreamEstimate(request);
    REQUIRE(stream.ok());
    const std::vector<v1::StreamEstimateResponse> messages = Drain(**stream);
    REQUIRE(messages.back().stop_reason() == v1::MAX_SAMPLES);
    v1::EstimateLogLikelihoodRequest one = request.request();
    one.set_num_samples(request.max_samples());
    auto whole = f.core->EstimateLogLikelihood(one);
    REQUIRE(whole.ok());
    int differ = 0;
    for (int r = 0; r < 40; ++r) {
      const double streamed = messages.back().estimate().rows(r).pareto_k();
      const double called = whole->rows(r).pareto_k();
      if (!(streamed == Approx(called).margin(1e-12))) ++differ;
    }
    CHECK(differ == 0);
  }
}

// The 2026-12-06 performance hunt: the stream refitted every row's k-hat on every increment (a
// fit costs ~sqrt(samples) log1p), so 100-sample increments up to 200 000 ran ~25x slower than one
// call. k-hat is now refitted once the samples grew by 1/16 since the last fit, and on the last
// message: each message's k-hat is one call's over the samples of the last fit.
TEST_CASE("StreamEstimate refits k-hat as its samples grow by 1/16, and on the last message") {
  Fixture f;
  v1::StreamEstimateRequest request;
  *request.mutable_request() = Request(v1::PRIOR, 2);
  request.mutable_request()->set_num_samples(10);
  request.set_max_samples(1500);
  auto stream = f.core->StartStreamEstimate(request);
  REQUIRE(stream.ok());
  const std::vector<v1::StreamEstimateResponse> messages = Drain(**stream);
  REQUIRE(messages.size() == 150);
  std::map<uint64_t, std::vector<double>> one_call;  // samples -> each row's k-hat of one call
  const auto k_hat_of = [&](uint64_t samples) -> const std::vector<double>& {
    auto [it, inserted] = one_call.try_emplace(samples);
    if (inserted) {
      v1::EstimateLogLikelihoodRequest one = request.request();
      one.set_num_samples(samples);
      auto whole = f.core->EstimateLogLikelihood(one);
      REQUIRE(whole.ok());
      for (const auto& row : whole->rows()) it->second.push_back(row.pareto_k());
    }
    return it->second;
  };
  uint64_t fitted = 0, next_fit = 0;
  size_t fits = 0;
  for (size_t m = 0; m < messages.size(); ++m) {
    const uint64_t samples = 10 * (m + 1);
    if (m + 1 == messages.size() || samples >= next_fit) {
      fitted = samples;
      next_fit = samples + std::max<uint64_t>(1, samples / 16);
      ++fits;
    }
    INFO("message " << m << ", k-hat of " << fitted << " samples");
    const std::vector<double>& expected = k_hat_of(fitted);
    for (int r = 0; r < 2; ++r) {
      const double got = messages[m].estimate().rows(r).pareto_k();
      CHECK(((std::isnan(got) && std::isnan(expected[r])) ||
             got == Approx(expected[r]).margin(1e-12)));
    }
  }
  CHECK(fits < 70);  // of 150 messages
}

TEST_CASE("StreamEstimate: running estimates equal one call, and each stop reason") {
  Fixture f;
  v1::StreamEstimateRequest request;
  *request.mutable_request() = Request(v1::IMPORTANCE, 2);
  request.mutable_request()->set_num_samples(200);
  request.set_max_samples(1000);
  auto stream = f.core->StartStreamEstimate(request);
  REQUIRE(stream.ok());
  auto messages = Drain(**stream);
  REQUIRE(messages.size() == 5);
  for (size_t i = 0; i + 1 < messages.size(); ++i) {
    CHECK(messages[i].stop_reason() == v1::STOP_REASON_UNSPECIFIED);
    CHECK(messages[i].estimate().rows(0).num_samples() == 200 * (i + 1));
  }
  CHECK(messages.back().stop_reason() == v1::MAX_SAMPLES);
  // The stream's final statistics and k-hat equal one call over the same 1000 samples.
  v1::EstimateLogLikelihoodRequest one = request.request();
  one.set_num_samples(1000);
  auto whole = f.core->EstimateLogLikelihood(one);
  REQUIRE(whole.ok());
  for (int r = 0; r < 2; ++r) {
    const auto& streamed = messages.back().estimate().rows(r);
    CHECK(std::abs(streamed.log_likelihood() - whole->rows(r).log_likelihood()) < 1e-12);
    CHECK(std::abs(streamed.standard_error() - whole->rows(r).standard_error()) < 1e-10);
    CHECK(streamed.pareto_k() == Approx(whole->rows(r).pareto_k()).margin(1e-12));
  }

  // Target standard error: stops as soon as every row reaches it.
  request.set_target_standard_error(0.05);
  request.set_max_samples(100000);
  stream = f.core->StartStreamEstimate(request);
  REQUIRE(stream.ok());
  messages = Drain(**stream);
  CHECK(messages.back().stop_reason() == v1::TARGET_REACHED);
  for (const auto& row : messages.back().estimate().rows()) CHECK(row.standard_error() <= 0.05);
  if (messages.size() > 1) {
    bool all_below = true;
    for (const auto& row : messages[messages.size() - 2].estimate().rows())
      all_below = all_below && row.standard_error() <= 0.05;
    CHECK_FALSE(all_below);
  }

  // Deadline: the injected clock passes it after the first increment.
  request.set_target_standard_error(0);
  stream = f.core->StartStreamEstimate(request, f.now + absl::Seconds(10));
  REQUIRE(stream.ok());
  v1::StreamEstimateResponse message;
  REQUIRE(NextOk(**stream, &message));
  CHECK(message.stop_reason() == v1::STOP_REASON_UNSPECIFIED);
  f.now += absl::Seconds(11);
  REQUIRE(NextOk(**stream, &message));
  CHECK(message.stop_reason() == v1::DEADLINE);
  CHECK(message.estimate().rows(0).num_samples() == 200);  // The last complete estimate.
  CHECK_FALSE(NextOk(**stream, &message));

  // Deadline before the first increment finished: no estimate exists, so the stream ends
  // DEADLINE_EXCEEDED (it used to end OK with NaN estimates and stop reason DEADLINE).
  stream = f.core->StartStreamEstimate(request, f.now + absl::Seconds(10));
  REQUIRE(stream.ok());
  f.now += absl::Seconds(11);
  const absl::StatusOr<bool> cut = (*stream)->Next(&message);
  CHECK(cut.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK_THAT(std::string(cut.status().message()), Catch::Contains("first increment of 200"));
  CHECK_FALSE(NextOk(**stream, &message));

  // One sample per increment: the standard error of one weight is undefined (+inf), and one of
  // a few weights means little, so even a target no estimate can miss is reached only at 25
  // samples, the fewest k-hat is fitted on (it was at the second: the 2026-12-06 calibration hunt
  // found streams of 1-sample increments stopped after 2 samples, 1.9 nats off with SE 0.017).
  request.mutable_request()->set_num_samples(1);
  request.set_target_standard_error(1e6);
  request.set_max_samples(1000);
  stream = f.core->StartStreamEstimate(request);
  REQUIRE(stream.ok());
  messages = Drain(**stream);
  REQUIRE(messages.size() == 25);
  CHECK(messages[0].stop_reason() == v1::STOP_REASON_UNSPECIFIED);
  CHECK(messages[0].estimate().rows(0).standard_error() == std::numeric_limits<double>::infinity());
  CHECK(std::isfinite(messages[1].estimate().rows(0).standard_error()));
  CHECK(messages[23].stop_reason() == v1::STOP_REASON_UNSPECIFIED);
  CHECK(messages[24].stop_reason() == v1::TARGET_REACHED);
  CHECK(messages[24].estimate().rows(0).num_samples() == 25);
  auto single = f.core->EstimateLogLikelihood(request.request());
  REQUIRE(single.ok());
  CHECK(single->rows(0).standard_error() == std::numeric_limits<double>::infinity());
  request.mutable_request()->set_num_samples(200);

  // Bad stream requests.
  request.set_max_samples(100);  // below the increment
  CHECK(f.core->StartStreamEstimate(request).status().code() == absl::StatusCode::kInvalidArgument);
  request.set_max_samples(1000);
  request.set_target_standard_error(-1);
  CHECK_THAT(std::string(f.core->StartStreamEstimate(request).status().message()),
             Catch::Contains("target_standard_error"));
}

// The 2026-12-06 calibration hunt: k-hat above 0.7 says a row's standard error is unreliable (the
// proto), yet a stream stopped on it. Far from what the decoder can produce, PRIOR's weights are
// heavy-tailed: the stream goes on while a row's last fitted k-hat is above 0.7.
TEST_CASE("StreamEstimate does not stop on a standard error its k-hat calls unreliable") {
  Fixture f;
  v1::StreamEstimateRequest request;
  *request.mutable_request() = Request(v1::PRIOR, 2);
  for (int i = 0; i < 3; ++i) request.mutable_request()->mutable_x()->set_values(i, 3.5);
  request.mutable_request()->set_num_samples(50);
  request.set_target_standard_error(1e6);  // every finite standard error is below it
  request.set_max_samples(3000);
  auto stream = f.core->StartStreamEstimate(request);
  REQUIRE(stream.ok());
  const std::vector<v1::StreamEstimateResponse> messages = Drain(**stream);
  int held = 0;  // messages past 25 samples that went on because of k-hat alone
  for (size_t m = 0; m < messages.size(); ++m) {
    bool unreliable = false;
    for (const auto& row : messages[m].estimate().rows()) unreliable |= row.pareto_k() > 0.7;
    INFO("message " << m);
    if (m + 1 < messages.size()) {
      CHECK(unreliable);
      ++held;
    } else if (messages[m].stop_reason() == v1::TARGET_REACHED) {
      // The stop is confirmed on a k-hat of all its samples (the review of 2026-12-06: a stop
      // decided on a k-hat fitted before the last increment could end with one above 0.7).
      CHECK(messages[m].estimate().rows(0).num_samples() > 50);
      CHECK_FALSE(unreliable);
    }
  }
  CHECK(held >= 3);  // k-hat 1.36, 0.86, 0.75, 0.90 at 50..200 samples (seed 17)
  CHECK(messages.back().stop_reason() == v1::TARGET_REACHED);  // at 250 samples
}

// The review of 2026-12-06 (41b45c3): between the 1/16 refits the stop test used the k-hat last
// fitted, and the last message is refitted over all samples. Seed 4, x = 3.5, 2-sample increments:
// at 74 samples the standard error 0.442 is under 0.45 and the k-hat fitted at 72 samples is 0.67,
// but over all 74 it is 0.83; before the fix the stream ended there TARGET_REACHED carrying k-hat
// 0.83 (found by a search over x, seeds, increments and targets: 675 such stops among 1-row PRIOR
// streams; the test above, whose target every standard error meets, could not show it).
TEST_CASE("StreamEstimate confirms a stop decided on a stale k-hat over all its samples") {
  Fixture f;
  v1::StreamEstimateRequest request;
  *request.mutable_request() = Request(v1::PRIOR, 1);
  for (int i = 0; i < 3; ++i) request.mutable_request()->mutable_x()->set_values(i, 3.5);
  request.mutable_request()->set_seed(4);
  request.mutable_request()->set_num_samples(2);
  request.set_target_standard_error(0.45);
  request.set_max_samples(3000);
  auto stream = f.core->StartStreamEstimate(request);
  REQUIRE(stream.ok());
  const std::vector<v1::StreamEstimateResponse> messages = Drain(**stream);
  // The case arises: at 74 samples (message 36) the standard error is under the target, while
  // the k-hat last fitted (at 72 samples, message 35) is under 0.7 and the one of all 74 is not.
  REQUIRE(messages.size() >= 37);
  CHECK(messages[35].estimate().rows(0).num_samples() == 72);
  CHECK(messages[35].estimate().rows(0).pareto_k() <= 0.7);
  CHECK(messages[36].estimate().rows(0).num_samples() == 74);
  CHECK(messages[36].estimate().rows(0).standard_error() <= 0.45);
  v1::EstimateLogLikelihoodRequest one = request.request();
  one.set_num_samples(74);
  const auto whole = f.core->EstimateLogLikelihood(one);
  REQUIRE(whole.ok());
  CHECK(whole->rows(0).pareto_k() > 0.7);
  // The stream goes on past it, and stops on a k-hat of all its samples (at 78, k-hat 0.67).
  const v1::RowEstimate& last = messages.back().estimate().rows(0);
  INFO("last message: " << last.num_samples() << " samples, SE " << last.standard_error()
                        << ", k-hat " << last.pareto_k());
  CHECK(messages.back().stop_reason() == v1::TARGET_REACHED);
  CHECK(last.num_samples() > 74);
  CHECK(last.standard_error() <= 0.45);
  CHECK(last.pareto_k() <= 0.7);
}

// What a StreamEstimate keeps beyond its running statistics is each row's Pareto k-hat tail, about
// 3 sqrt(max_samples) log weights: bounded up front, whatever the increment.
// The 2026-12-06 generative hunt: a stream whose sample_offset + max_samples passed 2^32 was
// refused "with num_samples <max_samples>", naming the wrong field.
TEST_CASE("StreamEstimate names max_samples when sample_offset plus it passes 2^32") {
  Fixture f;
  v1::StreamEstimateRequest request;
  *request.mutable_request() = Request(v1::PRIOR, 1);
  request.mutable_request()->set_num_samples(100);
  request.mutable_request()->set_sample_offset((uint64_t{1} << 32) - 500);
  request.set_max_samples(1000);
  const auto stream = f.core->StartStreamEstimate(request);
  REQUIRE(stream.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(stream.status().message()),
             Catch::Contains("with max_samples 1000") && Catch::Contains("sample_offset"));
}

TEST_CASE("StreamEstimate refuses up front when its k-hat tails would pass the limit") {
  const size_t per_row = LogWeightTail::MaxHeld(math::ParetoTailSize(100000)) * sizeof(double);
  Fixture f(nullptr, static_cast<int64_t>(40 * per_row - 1));  // 40 rows up to 100 000: 1 byte over
  v1::StreamEstimateRequest request;
  *request.mutable_request() = Request(v1::PRIOR, 40);
  request.mutable_request()->set_num_samples(100);
  request.set_max_samples(100000);
  const absl::Status status = f.core->StartStreamEstimate(request).status();
  CHECK(status.code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(status.message()), Catch::Contains("max_samples <= "));
  CHECK_THAT(std::string(status.message()), Catch::Contains("Pareto k-hat"));
  CHECK_THAT(std::string(status.message()), Catch::Contains("fewer rows"));
  // The max_samples the message names fits, and one more does not; 0 (the server's limit) too.
  const std::string message(status.message());
  const size_t at = message.find("max_samples <= ") + 15;
  const uint64_t fits = std::stoull(message.substr(at));
  CHECK(fits < 100000);
  request.set_max_samples(fits);
  CHECK(f.core->StartStreamEstimate(request).ok());
  request.set_max_samples(fits + 1);
  CHECK(f.core->StartStreamEstimate(request).status().code() ==
        absl::StatusCode::kResourceExhausted);
  request.set_max_samples(0);
  CHECK(f.core->StartStreamEstimate(request).status().code() ==
        absl::StatusCode::kResourceExhausted);
  // Fewer rows fit.
  *request.mutable_request() = Request(v1::PRIOR, 39);
  request.mutable_request()->set_num_samples(100);
  request.set_max_samples(100000);
  CHECK(f.core->StartStreamEstimate(request).ok());
}

// The limit was per stream: 24 concurrent StreamEstimates (a k8s pod's admitted calls) could each
// keep 1 GiB of tails. It now bounds the streams in progress together.
TEST_CASE("StreamEstimate's k-hat tails share one budget across the streams in progress") {
  const size_t per_row = LogWeightTail::MaxHeld(math::ParetoTailSize(100000)) * sizeof(double);
  Fixture f(nullptr, static_cast<int64_t>(50 * per_row));
  v1::StreamEstimateRequest request;
  *request.mutable_request() = Request(v1::PRIOR, 30);
  request.mutable_request()->set_num_samples(100);
  request.set_max_samples(100000);
  auto first = f.core->StartStreamEstimate(request);  // 30 of the 50 rows' worth
  REQUIRE(first.ok());
  const absl::Status second = f.core->StartStreamEstimate(request).status();
  CHECK(second.code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(second.message()), Catch::Contains("in progress"));
  CHECK_THAT(std::string(second.message()), Catch::Contains("--max_stream_estimate_tail_bytes"));
  *request.mutable_request() = Request(v1::PRIOR, 20);  // the rest fits
  request.mutable_request()->set_num_samples(100);
  auto third = f.core->StartStreamEstimate(request);
  REQUIRE(third.ok());
  first->reset();  // a stream that ends gives its share back
  *request.mutable_request() = Request(v1::PRIOR, 30);
  request.mutable_request()->set_num_samples(100);
  CHECK(f.core->StartStreamEstimate(request).ok());
}

// A stream keeps its rows' proposals for every increment when the tail budget has room for them
// too; with room for the tails only, it still runs, rebuilding them, with the same bits.
TEST_CASE("StreamEstimate keeps proposals only within the tail budget, with the same results") {
  const size_t per_row = LogWeightTail::MaxHeld(math::ParetoTailSize(1000)) * sizeof(double);
  Fixture roomy;
  Fixture tight(nullptr, static_cast<int64_t>(6 * per_row));  // the 6 rows' tails, no more
  for (const v1::Estimator estimator : {v1::IMPORTANCE, v1::AIS}) {
    v1::StreamEstimateRequest request;
    *request.mutable_request() = Request(estimator, 6);
    request.mutable_request()->set_num_samples(100);
    request.mutable_request()->mutable_ais()->set_num_temperatures(10);
    request.set_max_samples(1000);
    auto kept = roomy.core->StartStreamEstimate(request);
    auto rebuilt = tight.core->StartStreamEstimate(request);
    REQUIRE(kept.ok());
    REQUIRE(rebuilt.ok());
    const auto kept_messages = Drain(**kept);
    const auto rebuilt_messages = Drain(**rebuilt);
    REQUIRE(kept_messages.size() == 10);
    REQUIRE(rebuilt_messages.size() == 10);
    for (size_t m = 0; m < kept_messages.size(); ++m) {
      CHECK(kept_messages[m].SerializeAsString() == rebuilt_messages[m].SerializeAsString());
    }
  }
}

}  // namespace
}  // namespace maas::generative
