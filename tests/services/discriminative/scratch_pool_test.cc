// Tests of ScratchPool (scratches reused between Classify calls) and of a pipeline classifying
// through reused scratches.
#include "services/discriminative/core/scratch_pool.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "services/discriminative/core/pipeline.h"

namespace maas::discriminative {
namespace {

TEST_CASE("ScratchPool hands back released scratches and keeps at most max_kept idle") {
  ScratchPool pool(/*max_kept=*/2);
  AnalyzerScratch* first = nullptr;
  {
    ScratchPool::Lease a = pool.Acquire();
    a->dense.resize(1000, 0.0);  // grown by a first call
    first = a.get();
    CHECK(pool.idle() == 0);
  }
  CHECK(pool.idle() == 1);
  {
    ScratchPool::Lease again = pool.Acquire();
    CHECK(again.get() == first);            // reused, not reallocated
    CHECK(again->dense.size() == 1000);     // with its grown buffers
    ScratchPool::Lease b = pool.Acquire();  // none idle: a new one
    ScratchPool::Lease c = pool.Acquire();
    CHECK(b.get() != first);
    CHECK(c.get() != b.get());
  }
  CHECK(pool.idle() == 2);  // the third one was freed
}

// The 2026-12-06 amplification hunt: each model's idle scratches kept their buffers at the size of
// the longest text they had analysed, outside --model_cache_bytes: one 1 MB text left 9-72 MB
// behind per model (20 small models: 1.39 GB, freed only by DeleteModel). A scratch goes back to
// the pool without text-sized buffers above ScratchPool::kMaxKeptTextBytes; its model-sized
// buffers stay.
TEST_CASE("ScratchPool frees the text-sized buffers a long text left in a scratch") {
  ScratchPool pool;
  AnalyzerScratch* first = nullptr;
  {
    ScratchPool::Lease a = pool.Acquire();
    a->dense.resize(1000, 0.0);
    a->keys.resize(size_t{1} << 20);  // 8 MiB: a long text's n-gram keys
    a->grams.resize(size_t{4} << 20);
    a->tokens.resize(size_t{1} << 18);
    CHECK(a->TextBufferBytes() > ScratchPool::kMaxKeptTextBytes);
    first = a.get();
  }
  {
    ScratchPool::Lease again = pool.Acquire();
    CHECK(again.get() == first);
    CHECK(again->TextBufferBytes() <= ScratchPool::kMaxKeptTextBytes);
    CHECK(again->keys.capacity() == 0);
    CHECK(again->dense.size() == 1000);  // the model-sized counts stay
    again->keys.resize(1000);            // a short text's: kept
  }
  ScratchPool::Lease last = pool.Acquire();
  CHECK(last->keys.size() == 1000);
}

TEST_CASE("A pipeline classifies identically through reused scratches") {
  const std::vector<std::string> texts = {"red apple sweet",  "green apple sour",
                                          "red cherry sweet", "sour lemon yellow",
                                          "sweet red berry",  "yellow sour"};
  const std::vector<std::string> labels = {"sweet", "sour", "sweet", "sour", "sweet", "sour"};
  auto pipeline = Pipeline::Fit(texts, labels, {}, v1::VectorizerConfig(), v1::ClassifierConfig());
  REQUIRE(pipeline.ok());
  const std::vector<std::string> queries = {"red sweet apple", "lemon", "", "sour sour berry"};
  auto first = pipeline->Classify(queries, ClassifyOptions());
  REQUIRE(first.ok());
  for (int round = 0; round < 3; ++round) {
    auto again = pipeline->Classify(queries, ClassifyOptions());
    REQUIRE(again.ok());
    REQUIRE(again->size() == first->size());
    for (size_t i = 0; i < first->size(); ++i) {
      CHECK((*again)[i].SerializeAsString() == (*first)[i].SerializeAsString());
    }
  }
}

}  // namespace
}  // namespace maas::discriminative
