// Fuzz target: the generative core's handlers of untrusted requests, on an in-memory store.
// Selector (first byte) % 5:
//   0  CreateModel(request): spec validation of every family.
//   1  ParseStoredModel(bytes): the model-store reader on corrupt files.
//   2  a FitModel stream: each chunk parsed as one FitModelRequest, then Finish().
//   3  EstimateLogLikelihood(request) against a stored model "m".
//   4  Sample(request) against "m", draining at most a few batches.
// Invariant: every call returns a status; nothing crashes, hangs or allocates without bound (the
// limits below are small so a fuzzed num_samples cannot run for long).
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/store/memory_model_store.h"
#include "google/protobuf/stubs/logging.h"
#include "services/generative/core/generative_core.h"
#include "tests/fuzz/fuzz_input.h"

namespace maas::fuzz {
namespace {

using generative::v1::CreateModelRequest;

CreateModelRequest UniformModel(const std::string& name) {
  CreateModelRequest request;
  request.set_name(name);
  request.mutable_spec()->mutable_uniform()->add_low(0.0);
  request.mutable_spec()->mutable_uniform()->add_low(-1.0);
  request.mutable_spec()->mutable_uniform()->add_high(1.0);
  request.mutable_spec()->mutable_uniform()->add_high(1.0);
  return request;
}

struct Harness {
  Harness() : repository(&store, generative::ParseStoredModel, absl::ZeroDuration()) {
    generative::GenerativeCoreOptions options;
    options.repository = &repository;
    options.max_samples_per_request = 4096;
    options.max_fit_rows = 4096;
    options.max_estimate_rows = 256;
    options.default_batch_size = 64;
    options.fresh_seed = [] { return uint64_t{42}; };
    options.clock = [] { return absl::FromUnixSeconds(1700000000); };
    core = std::make_unique<generative::GenerativeCore>(std::move(options));
  }
  store::MemoryModelStore store;
  registry::ModelRepository<generative::LoadedModel> repository;
  std::unique_ptr<generative::GenerativeCore> core;
};

}  // namespace

std::vector<std::string> MaasFuzzSeeds() {
  std::vector<std::string> seeds;
  CreateModelRequest create = UniformModel("m");
  seeds.push_back(EncodeChunks(0, {create.SerializeAsString()}));
  generative::v1::StoredGenerativeModel stored;
  stored.mutable_info()->set_name("m");
  stored.mutable_info()->set_version(1);
  *stored.mutable_spec() = create.spec();
  seeds.push_back(EncodeChunks(1, {stored.SerializeAsString()}));
  generative::v1::FitModelRequest config;
  config.mutable_config()->set_name("fitted");
  config.mutable_config()->mutable_uniform();
  generative::v1::FitModelRequest rows;
  rows.mutable_rows()->set_rows(2);
  rows.mutable_rows()->set_cols(2);
  for (double v : {0.0, 1.0, 2.0, 3.0}) rows.mutable_rows()->add_values(v);
  seeds.push_back(EncodeChunks(2, {config.SerializeAsString(), rows.SerializeAsString()}));
  generative::v1::EstimateLogLikelihoodRequest estimate;
  estimate.mutable_model()->set_name("m");
  estimate.set_estimator(generative::v1::EXACT);
  *estimate.mutable_x() = rows.rows();
  seeds.push_back(EncodeChunks(3, {estimate.SerializeAsString()}));
  generative::v1::SampleRequest sample;
  sample.mutable_model()->set_name("m");
  sample.set_num_samples(10);
  sample.set_seed(7);
  sample.set_batch_size(3);
  sample.set_include_latents(true);
  seeds.push_back(EncodeChunks(4, {sample.SerializeAsString()}));
  return seeds;
}

}  // namespace maas::fuzz

// Protobuf logs every string field with invalid UTF-8 it parses; fuzz inputs are full of them.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace maas;
  using namespace maas::generative;
  fuzz::FuzzInput input(data, size);
  const uint8_t which = input.Byte();
  fuzz::Harness harness;
  if (!harness.core->CreateModel(fuzz::UniformModel("m")).ok()) std::abort();
  std::string chunk;
  switch (which % 5) {
    case 0: {
      v1::CreateModelRequest request;
      if (input.Chunk(&chunk) && request.ParseFromString(chunk)) {
        (void)harness.core->CreateModel(request);
      }
      break;
    }
    case 1:
      (void)ParseStoredModel(std::string(input.Rest()));
      break;
    case 2: {
      std::unique_ptr<FitSession> session = harness.core->StartFit();
      bool ok = true;
      while (ok && input.Chunk(&chunk)) {
        v1::FitModelRequest message;
        ok = message.ParseFromString(chunk) && session->Add(message).ok();
      }
      if (ok) (void)session->Finish();
      break;
    }
    case 3: {
      v1::EstimateLogLikelihoodRequest request;
      if (input.Chunk(&chunk) && request.ParseFromString(chunk)) {
        (void)harness.core->EstimateLogLikelihood(request);
      }
      break;
    }
    default: {
      v1::SampleRequest request;
      if (input.Chunk(&chunk) && request.ParseFromString(chunk)) {
        auto stream = harness.core->StartSample(request);
        if (stream.ok()) {
          v1::SampleBatch batch;
          for (int i = 0; i < 4 && (*stream)->Next(&batch); ++i) {
          }
        }
      }
      break;
    }
  }
  return 0;
}
