// What loading a stored pipeline holds at its peak, measured: this binary counts every byte live
// through operator new (tests/testing/counting_new.cc: protobuf's messages and repeated fields,
// std::string, std::vector and absl's containers all allocate there), so a test can bound a load's
// peak by the size of what it builds. Its own binary, so that the counting allocator touches no
// other test.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/registry/model_repository.h"
#include "common/store/memory_model_store.h"
#include "google/protobuf/util/message_differencer.h"
#include "services/discriminative/core/discriminative_core.h"
#include "tests/testing/counting_new.h"

namespace maas::discriminative {
namespace {

// A fitted count vectorizer of `terms` terms (a third of them longer than 15 bytes, so that they
// live on the heap as they do in word n-gram vocabularies) with document frequencies, idf when
// `tfidf`, and a `classifier` ("multinomial_nb" or "complement_nb") of `classes` classes: the
// spec of a large imported scikit-learn model. Consistent parameters (the loader validates them).
v1::PipelineSpec LargeSpec(size_t terms, size_t classes, bool tfidf,
                           const std::string& classifier) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> count(0, 9);
  v1::PipelineSpec spec;
  v1::VectorizerState* vectorizer = spec.mutable_vectorizer();
  vectorizer->mutable_config()->mutable_count();
  if (tfidf) vectorizer->mutable_config()->mutable_tfidf();
  const uint64_t documents = 1000;
  vectorizer->set_num_documents(documents);
  char term[32];
  for (size_t j = 0; j < terms; ++j) {
    // Fixed-width ids keep the terms sorted by code point whatever their suffix.
    std::snprintf(term, sizeof(term), j % 3 == 0 ? "t%08zu longer" : "t%08zu", j);
    vectorizer->add_vocabulary(term);
    const uint64_t df = 1 + j % documents;
    vectorizer->add_document_frequency(df);
    if (tfidf) {
      vectorizer->add_idf(std::log((1.0 + documents) / (1.0 + static_cast<double>(df))) + 1.0);
    }
  }
  v1::ClassifierState* state = spec.mutable_classifier();
  if (classifier == "complement_nb") {
    state->mutable_config()->mutable_complement_nb();
  } else {
    state->mutable_config()->mutable_multinomial_nb();
  }
  common::v1::Matrix* fc = state->mutable_feature_count();
  common::v1::Matrix* flp = state->mutable_feature_log_prob();
  for (common::v1::Matrix* m : {fc, flp}) {
    m->set_rows(static_cast<uint32_t>(classes));
    m->set_cols(static_cast<uint32_t>(terms));
    m->mutable_values()->Reserve(static_cast<int>(classes * terms));
  }
  double class_total = 0.0;
  for (size_t c = 0; c < classes; ++c) {
    state->add_classes(absl::StrCat("class", c));
    state->add_class_count(static_cast<double>(10 + c));
    class_total += static_cast<double>(10 + c);
    double sum = 0.0;
    for (size_t j = 0; j < terms; ++j) {
      const double v = count(rng);
      fc->add_values(v);
      sum += v + 1.0;  // alpha 1
    }
    for (size_t j = 0; j < terms; ++j) {
      const double v = fc->values(static_cast<int>(c * terms + j));
      // MultinomialNB's log((fc + 1) / sum); ComplementNB accepts any finite weights.
      flp->add_values(std::log(v + 1.0) - std::log(sum));
    }
  }
  for (size_t c = 0; c < classes; ++c) {
    state->add_class_log_prior(std::log(static_cast<double>(10 + c) / class_total));
  }
  return spec;
}

struct LoadFigures {
  int64_t stored_bytes = 0;  // the version's file
  int64_t held = 0;          // live after the load: what the loaded version holds
  int64_t peak = 0;          // the most live during the load (stored bytes read included)
  int64_t charged = 0;       // what the model cache charges (held_bytes)
};

// Stores `spec` as version 1 of "big" and loads it through a repository the way a Classify of a
// version not in memory does.
LoadFigures StoreAndLoad(const v1::PipelineSpec& spec) {
  store::MemoryModelStore store;
  LoadFigures figures;
  {
    v1::StoredDiscriminativeModel stored;
    stored.mutable_info()->set_name("big");
    stored.mutable_info()->set_version(1);
    stored.mutable_info()->set_type(common::v1::DISCRIMINATIVE);
    *stored.mutable_spec() = spec;
    std::string bytes = stored.SerializeAsString();
    figures.stored_bytes = static_cast<int64_t>(bytes.size());
    REQUIRE(store.Put("big", [&](int64_t) { return std::move(bytes); }).ok());
  }
  registry::ModelRepository<LoadedPipeline> repository(&store, ParseStoredPipeline,
                                                       absl::ZeroDuration());
  common::v1::ModelRef ref;
  ref.set_name("big");
  const int64_t before = maas::testing::StartPeakCount();
  absl::StatusOr<std::shared_ptr<const LoadedPipeline>> loaded = repository.Get(ref);
  figures.peak = maas::testing::PeakLiveBytes() - before;
  figures.held = maas::testing::LiveBytes() - before;
  REQUIRE(loaded.ok());
  figures.charged = (*loaded)->held_bytes();
  // The loaded pipeline is the stored one exactly (vocabulary, frequencies, idf, every count and
  // parameter): ToSpec gives back the spec.
  v1::PipelineSpec back = (*loaded)->pipeline->ToSpec();
  CHECK(google::protobuf::util::MessageDifferencer::Equals(back, spec));
  return figures;
}

void Report(const std::string& what, const LoadFigures& f) {
  const double mib = 1 << 20;
  WARN(what << ": stored " << f.stored_bytes / mib << " MiB, loaded version holds " << f.held / mib
            << " MiB (charged " << f.charged / mib << " MiB), load peak " << f.peak / mib
            << " MiB = " << static_cast<double>(f.peak) / static_cast<double>(f.held)
            << " x what it holds");
}

// A load used to hold the stored bytes, the parsed message and the pipeline built from it at
// once: 2.04x what the loaded version holds for this model (1.61x with the bytes released once
// parsed). It now also takes each large field of the message into the pipeline, freeing it as it
// goes: its peak is the parse (bytes + message) or the pipeline plus one field, 1.04x here.
TEST_CASE("Loading a large count plus multinomial_nb pipeline peaks within 1.25 x what it holds") {
  const LoadFigures f = StoreAndLoad(LargeSpec(200'000, 8, /*tfidf=*/false, "multinomial_nb"));
  Report("count+multinomial_nb, 200 000 terms x 8 classes", f);
  CHECK(f.held > 0);
  CHECK(f.peak <= f.held * 5 / 4);
}

TEST_CASE("Loading a large tfidf plus complement_nb pipeline peaks within 1.25 x what it holds") {
  const LoadFigures f = StoreAndLoad(LargeSpec(200'000, 8, /*tfidf=*/true, "complement_nb"));
  Report("count+tfidf+complement_nb, 200 000 terms x 8 classes", f);
  CHECK(f.held > 0);
  CHECK(f.peak <= f.held * 5 / 4);
}

// The figures of models of hundreds of MB (not run by default:
// maas_discriminative_load_memory_test "[.measure]").
TEST_CASE("Load peak of a model of 3 million terms x 8 classes", "[.measure]") {
  const LoadFigures f = StoreAndLoad(LargeSpec(3'000'000, 8, /*tfidf=*/false, "multinomial_nb"));
  Report("count+multinomial_nb, 3 000 000 terms x 8 classes", f);
}

TEST_CASE("Load peak of a model of 3 million terms x 2 classes", "[.measure]") {
  const LoadFigures f = StoreAndLoad(LargeSpec(3'000'000, 2, /*tfidf=*/false, "multinomial_nb"));
  Report("count+multinomial_nb, 3 000 000 terms x 2 classes", f);
}

}  // namespace
}  // namespace maas::discriminative
