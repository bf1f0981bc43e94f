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
