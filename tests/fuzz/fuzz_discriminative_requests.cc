// Fuzz target: the discriminative core's handlers of untrusted requests, on an in-memory store.
// Selector (first byte) % 4:
//   0  CreateModel(request): PipelineSpec validation (the import path).
//   1  ParseStoredPipeline(bytes): the model-store reader on corrupt files.
//   2  a Train stream: each chunk parsed as one TrainRequest, then Finish().
//   3  Classify(request) against a trained model "m" (texts one per field or packed).
// Invariant: every call returns a status; nothing crashes, hangs or allocates without bound.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/store/memory_model_store.h"
#include "google/protobuf/stubs/logging.h"
#include "services/discriminative/core/discriminative_core.h"
#include "services/discriminative/core/packed_texts.h"
#include "tests/fuzz/fuzz_input.h"

namespace maas::fuzz {
namespace {

using discriminative::v1::TrainRequest;

std::vector<TrainRequest> TrainStream(const std::string& name) {
  std::vector<TrainRequest> stream(2);
  stream[0].mutable_config()->set_name(name);
  auto* batch = stream[1].mutable_batch();
  const char* texts[][2] = {{"sports", "the striker scored a late goal"},
                            {"food", "knead the bread dough"},
                            {"sports", "the coach and the team"},
                            {"food", "bake the bread in the oven"}};
  for (const auto& t : texts) {
    auto* example = batch->add_examples();
    example->set_label(t[0]);
    example->set_text(t[1]);
  }
  return stream;
}

struct Harness {
  Harness() : repository(&store, discriminative::ParseStoredPipeline, absl::ZeroDuration()) {
    discriminative::DiscriminativeCoreOptions options;
    options.repository = &repository;
    options.max_texts_per_request = 64;
    options.max_text_bytes = 4096;
    options.max_train_examples = 256;
    options.clock = [] { return absl::FromUnixSeconds(1700000000); };
    core = std::make_unique<discriminative::DiscriminativeCore>(std::move(options));
  }
  absl::Status Train(const std::vector<TrainRequest>& stream) {
    auto session = core->StartTrain();
    for (const TrainRequest& message : stream) {
      absl::Status status = session->Add(message);
      if (!status.ok()) return status;
    }
    return session->Finish().status();
  }
  store::MemoryModelStore store;
  registry::ModelRepository<discriminative::LoadedPipeline> repository;
  std::unique_ptr<discriminative::DiscriminativeCore> core;
};

}  // namespace

std::vector<std::string> MaasFuzzSeeds() {
  std::vector<std::string> seeds;
  Harness harness;
  if (!harness.Train(TrainStream("m")).ok()) std::abort();
  discriminative::v1::GetModelRequest get;
  get.mutable_model()->set_name("m");
  auto model = harness.core->GetModel(get);
  if (!model.ok()) std::abort();
  discriminative::v1::CreateModelRequest create;
  create.set_name("imported");
  *create.mutable_spec() = model->spec();
  seeds.push_back(EncodeChunks(0, {create.SerializeAsString()}));
  discriminative::v1::StoredDiscriminativeModel stored;
  *stored.mutable_info() = model->info();
  *stored.mutable_spec() = model->spec();
  seeds.push_back(EncodeChunks(1, {stored.SerializeAsString()}));
  std::vector<std::string> train;
  for (const TrainRequest& message : TrainStream("t")) train.push_back(message.SerializeAsString());
  seeds.push_back(EncodeChunks(2, train));
  discriminative::v1::ClassifyRequest classify;
  classify.mutable_model()->set_name("m");
  classify.add_texts("a late goal by the striker");
  classify.add_texts("\xc3\xa9t\xc3\xa9 bread");
  classify.set_top_k(1);
  classify.set_explain(true);
  seeds.push_back(EncodeChunks(3, {classify.SerializeAsString()}));
  // The texts packed in one field (each a 4-byte little-endian length, then the bytes).
  discriminative::v1::ClassifyRequest packed;
  packed.mutable_model()->set_name("m");
  packed.set_packed_texts(
      discriminative::PackTexts({"a late goal", "", "\xc3\xa9t\xc3\xa9 bread"}));
  packed.set_compact(true);
  seeds.push_back(EncodeChunks(3, {packed.SerializeAsString()}));
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
  using namespace maas::discriminative;
  fuzz::FuzzInput input(data, size);
  const uint8_t which = input.Byte();
  fuzz::Harness harness;
  std::string chunk;
  switch (which % 4) {
    case 0: {
      v1::CreateModelRequest request;
      if (input.Chunk(&chunk) && request.ParseFromString(chunk)) {
        (void)harness.core->CreateModel(request);
      }
      break;
    }
    case 1:
      (void)ParseStoredPipeline(std::string(input.Rest()));
      break;
    case 2: {
      std::vector<v1::TrainRequest> stream;
      while (input.Chunk(&chunk)) {
        v1::TrainRequest message;
        if (!message.ParseFromString(chunk)) break;
        stream.push_back(std::move(message));
      }
      (void)harness.Train(stream);
      break;
    }
    default: {
      if (!harness.Train(fuzz::TrainStream("m")).ok()) std::abort();
      v1::ClassifyRequest request;
      if (input.Chunk(&chunk) && request.ParseFromString(chunk)) {
        (void)harness.core->Classify(request);
      }
      break;
    }
  }
  return 0;
}
