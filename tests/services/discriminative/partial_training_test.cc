// Partial training (issue 8 item 3): Train with partial continues the latest version as
// scikit-learn's partial_fit. Several partial calls equal one fit over every batch (the counts are
// sums; with integer counts bit for bit), the continued version is never touched, and every way a
// partial call can go wrong answers a clear status and stores nothing. The scikit-learn oracle of
// the same sequences is tests/python/test_partial_training.py.
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/exec/stop_token.h"
#include "common/registry/model_repository.h"
#include "common/status/status_macros.h"
#include "common/store/memory_model_store.h"
#include "services/discriminative/core/classifier.h"
#include "services/discriminative/core/discrete_nb.h"
#include "services/discriminative/core/discriminative_core.h"
#include "services/discriminative/core/pipeline.h"

namespace maas::discriminative {
namespace {

using Strings = std::vector<std::string>;

const Strings kTexts = {
    "the cat sat on the mat", "a dog barked at the cat", "the cat purred",       "dogs bark loudly",
    "a bird sang a song",     "birds fly south",         "the dog and the bird", "cat cat cat",
    "song of the dog",        "mat and the south birds"};
const Strings kLabels = {"cat", "dog", "cat", "dog", "bird", "bird", "dog", "cat", "dog", "bird"};
const std::vector<double> kWeights = {1.0, 0.5, 2.25, 0.0, 3.0, 0.125, 1.5, 0.75, 2.0, 0.3};
const Strings kClasses = {"bird", "cat", "dog"};

v1::TextBatch Batch(size_t begin, size_t end, bool weighted) {
  v1::TextBatch batch;
  for (size_t i = begin; i < end; ++i) {
    v1::LabeledText* example = batch.add_examples();
    example->set_text(kTexts[i]);
    example->set_label(kLabels[i]);
    if (weighted) example->set_weight(kWeights[i]);
  }
  return batch;
}

v1::VectorizerConfig Hashing() {
  v1::VectorizerConfig config;
  config.mutable_hashing()->set_n_features(64);
  config.mutable_hashing()->set_alternate_sign(false);  // MultinomialNB needs values >= 0
  config.mutable_hashing()->set_norm(v1::NORM_NONE);    // integer counts
  return config;
}

v1::VectorizerConfig FixedVocabulary() {
  v1::VectorizerConfig config;
  for (const char* term : {"the", "cat", "dog", "bird", "birds", "song", "mat", "zebra"}) {
    config.mutable_count()->add_vocabulary(term);
  }
  return config;
}

v1::ClassifierConfig Classifier(const std::string& kind) {
  v1::ClassifierConfig config;
  if (kind == "complement_nb") {
    config.mutable_complement_nb()->set_alpha(0.5);
    config.mutable_complement_nb()->set_norm(true);
  } else if (kind == "bernoulli_nb") {
    config.mutable_bernoulli_nb()->set_alpha(0.7);
    config.mutable_bernoulli_nb()->set_fit_prior(false);
  } else if (kind == "bernoulli_nb_no_binarize") {  // binarize=None: features used as given
    config.mutable_bernoulli_nb()->set_alpha(0.4);
    config.mutable_bernoulli_nb()->set_disable_binarize(true);
  } else {
    config.mutable_multinomial_nb()->set_alpha(0.3);
    config.mutable_multinomial_nb()->add_class_prior(0.2);
    config.mutable_multinomial_nb()->add_class_prior(0.3);
    config.mutable_multinomial_nb()->add_class_prior(0.5);
  }
  return config;
}

v1::TrainConfig PartialConfig(const v1::VectorizerConfig& vectorizer,
                              const v1::ClassifierConfig& classifier, bool with_classes,
                              const std::string& name = "m") {
  v1::TrainConfig config;
  config.set_name(name);
  config.set_partial(true);
  *config.mutable_vectorizer() = vectorizer;
  *config.mutable_classifier() = classifier;
  if (with_classes) {
    for (const char* c : {"dog", "bird", "cat"}) config.add_classes(c);  // any order
  }
  return config;
}

// One partial Train: continues `previous` (null: the first call).
Pipeline PartialTrain(const v1::TrainConfig& config, const Pipeline* previous,
                      const v1::TextBatch& batch) {
  auto trainer = Trainer::Create(config, {}, previous);
  REQUIRE(trainer.ok());
  REQUIRE(trainer->AddBatch(batch).ok());
  auto result = trainer->Finish();
  INFO(result.status().ToString());
  REQUIRE(result.ok());
  return std::move(result->pipeline);
}

const DiscreteNb& Nb(const Pipeline& pipeline) {
  return dynamic_cast<const DiscreteNb&>(pipeline.classifier());
}

void CheckClose(const std::vector<double>& got, const std::vector<double>& want, double rtol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isinf(want[i])) {
      CHECK(got[i] == want[i]);
    } else {
      CHECK(std::abs(got[i] - want[i]) <= rtol * std::max(1.0, std::abs(want[i])));
    }
  }
}

TEST_CASE(
    "Several partial Trains equal one fit over every batch (three NB kinds, two vectorizers)") {
  for (const std::string kind :
       {"multinomial_nb", "complement_nb", "bernoulli_nb", "bernoulli_nb_no_binarize"}) {
    for (const bool hashing : {true, false}) {
      for (const bool weighted : {false, true}) {
        CAPTURE(kind, hashing, weighted);
        v1::VectorizerConfig vectorizer = hashing ? Hashing() : FixedVocabulary();
        if (kind == "bernoulli_nb_no_binarize") {  // the 0 / 1 features it needs
          (hashing ? vectorizer.mutable_hashing()->mutable_text()
                   : vectorizer.mutable_count()->mutable_text())
              ->set_binary(true);
        }
        const v1::ClassifierConfig classifier = Classifier(kind);
        // 3 partial calls: [0, 3), [3, 7), [7, 10); the first without any "bird" example.
        const Pipeline first = PartialTrain(PartialConfig(vectorizer, classifier, true), nullptr,
                                            Batch(0, 3, weighted));
        CHECK(first.classes() == kClasses);
        const v1::PipelineSpec first_spec = first.ToSpec();
        const Pipeline second = PartialTrain(PartialConfig(vectorizer, classifier, false), &first,
                                             Batch(3, 7, weighted));
        // The continued version is never touched.
        CHECK(first.ToSpec().SerializeAsString() == first_spec.SerializeAsString());
        // Unset vectorizer and classifier: the continued version's.
        v1::TrainConfig bare;
        bare.set_name("m");
        bare.set_partial(true);
        const Pipeline third = PartialTrain(bare, &second, Batch(7, 10, weighted));

        // The oracle: one fit over every example with the same classes.
        v1::TrainConfig full;
        *full.mutable_vectorizer() = vectorizer;
        *full.mutable_classifier() = classifier;
        auto trainer = Trainer::Create(full);
        REQUIRE(trainer.ok());
        REQUIRE(trainer->AddBatch(Batch(0, 10, weighted)).ok());
        auto fit = trainer->Finish();
        REQUIRE(fit.ok());
        const DiscreteNb& want = Nb(fit->pipeline);
        const DiscreteNb& got = Nb(third);
        CHECK(got.classes() == want.classes());
        if (weighted) {  // sums of products in another grouping: equal up to rounding
          CheckClose(got.class_count(), want.class_count(), 1e-15);
          CheckClose(got.feature_count(), want.feature_count(), 1e-14);
          CheckClose(got.feature_log_prob(), want.feature_log_prob(), 1e-13);
          CheckClose(got.class_log_prior(), want.class_log_prior(), 1e-14);
        } else {  // integer counts: exact
          CHECK(got.class_count() == want.class_count());
          CHECK(got.feature_count() == want.feature_count());
          CHECK(got.feature_log_prob() == want.feature_log_prob());
          CHECK(got.class_log_prior() == want.class_log_prior());
        }
        auto got_scores = third.PredictScores(kTexts);
        auto want_scores = fit->pipeline.PredictScores(kTexts);
        REQUIRE(got_scores.ok());
        REQUIRE(want_scores.ok());
        for (size_t i = 0; i < kTexts.size(); ++i) {
          CHECK((*got_scores)[i].predicted == (*want_scores)[i].predicted);
          CheckClose((*got_scores)[i].log_probability, (*want_scores)[i].log_probability, 1e-12);
        }
        // Document counts continue too (count vectorizer state).
        CHECK(third.ToSpec().vectorizer().num_documents() ==
              fit->pipeline.ToSpec().vectorizer().num_documents());
        CHECK(third.ToSpec().vectorizer().document_frequency().size() ==
              fit->pipeline.ToSpec().vectorizer().document_frequency().size());
      }
    }
  }
}

TEST_CASE("A first partial Train over classes unseen in its data gives those classes zero counts") {
  v1::ClassifierConfig classifier;
  classifier.mutable_multinomial_nb();  // fit_prior: log(0) = -inf for the unseen class
  const Pipeline first =
      PartialTrain(PartialConfig(Hashing(), classifier, true), nullptr, Batch(0, 3, false));
  CHECK(Nb(first).class_count() == std::vector<double>{0.0, 2.0, 1.0});
  CHECK(Nb(first).class_log_prior()[0] == -HUGE_VAL);
  CHECK(std::isfinite(Nb(first).class_log_prior()[1]));
  // classes without partial: an ordinary fit with those classes fixed.
  v1::TrainConfig config = PartialConfig(v1::VectorizerConfig(), classifier, true);
  config.set_partial(false);
  const Pipeline fixed = PartialTrain(config, nullptr, Batch(0, 3, false));
  CHECK(fixed.classes() == kClasses);
  CHECK(Nb(fixed).class_count() == std::vector<double>{0.0, 2.0, 1.0});
}

TEST_CASE(
    "Partial training's empty start is not checked as a fitted model, a fitted one still is") {
  // BernoulliNB with binarize disabled refuses a fitted (or imported) feature_log_prob > 0: a
  // probability above 1. The zero counts a first partial call starts from are no fitted model:
  // their placeholder parameters must not be checked as one, or no partial Train could start.
  const v1::ClassifierConfig no_binarize = Classifier("bernoulli_nb_no_binarize");
  auto start = StartPartialClassifier(no_binarize, v1::LABEL_TYPE_STRING, kClasses, 8);
  INFO(start.status().ToString());
  REQUIRE(start.ok());
  v1::ClassifierState state;
  (*start)->ToState(&state);
  for (double& v : *state.mutable_feature_log_prob()->mutable_values()) v = 0.25;
  const absl::Status fitted = ClassifierFromState(state, 8).status();
  CHECK(fitted.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(fitted.message()), Catch::Contains("log(1 - p) is NaN"));
  // The options are still checked on the empty start (a class_prior of the wrong length).
  v1::ClassifierConfig prior = no_binarize;
  prior.mutable_bernoulli_nb()->add_class_prior(1.0);
  CHECK(StartPartialClassifier(prior, v1::LABEL_TYPE_STRING, kClasses, 8).status().code() ==
        absl::StatusCode::kInvalidArgument);
  // And a partial batch whose features are not 0 / 1 (counts of 3 in one document) is refused as
  // a fit is.
  v1::VectorizerConfig counts = Hashing();
  auto trainer = Trainer::Create(PartialConfig(counts, no_binarize, true));
  REQUIRE(trainer.ok());
  REQUIRE(trainer->AddBatch(Batch(7, 8, false)).ok());  // "cat cat cat"
  const absl::Status refused = trainer->Finish().status();
  CHECK(refused.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(refused.message()), Catch::Contains("binarize disabled: feature"));
}

TEST_CASE("A partial Train whose sample weights are all 0 is refused, as partial_fit refuses it") {
  const v1::ClassifierConfig mnb = Classifier("multinomial_nb");
  v1::TextBatch zero = Batch(0, 3, true);
  for (v1::LabeledText& example : *zero.mutable_examples()) example.set_weight(0.0);
  const auto finish = [&](const v1::TrainConfig& config, const Pipeline* previous) {
    auto trainer = Trainer::Create(config, {}, previous);
    REQUIRE(trainer.ok());
    REQUIRE(trainer->AddBatch(zero).ok());
    return trainer->Finish().status();
  };
  // The first call, and a call continuing a version with counts.
  const Pipeline first =
      PartialTrain(PartialConfig(Hashing(), mnb, true), nullptr, Batch(0, 3, false));
  for (const Pipeline* previous : {static_cast<const Pipeline*>(nullptr), &first}) {
    CAPTURE(previous != nullptr);
    const absl::Status status =
        finish(PartialConfig(Hashing(), mnb, previous == nullptr), previous);
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()),
               Catch::Contains("Sample weights must contain at least one non-zero number"));
  }
  // One weight > 0 is enough.
  zero.mutable_examples(1)->set_weight(0.5);
  CHECK(finish(PartialConfig(Hashing(), mnb, false), &first).ok());
}

absl::Status CreateStatus(const v1::TrainConfig& config, const Pipeline* previous = nullptr) {
  return Trainer::Create(config, {}, previous).status();
}

TEST_CASE("Partial Train refusals name the reason") {
  const v1::ClassifierConfig mnb = Classifier("multinomial_nb");
  // A vocabulary-learning vectorizer.
  absl::Status status = CreateStatus(PartialConfig(v1::VectorizerConfig(), mnb, true));
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("learns its vocabulary"));
  // TF-IDF with idf (default use_idf) over a fixed vocabulary or hashing.
  for (v1::VectorizerConfig vectorizer : {FixedVocabulary(), Hashing()}) {
    vectorizer.mutable_tfidf();
    status = CreateStatus(PartialConfig(vectorizer, mnb, true));
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Catch::Contains("use_idf"));
    vectorizer.mutable_tfidf()->set_use_idf(false);  // per-document weighting only: fine
    CHECK(CreateStatus(PartialConfig(vectorizer, mnb, true)).ok());
  }
  // No classes on the first call (scikit-learn's message).
  status = CreateStatus(PartialConfig(Hashing(), mnb, false));
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()),
             Catch::Contains("classes must be passed on the first call to partial_fit"));
  // Duplicate or empty classes.
  v1::TrainConfig config = PartialConfig(Hashing(), mnb, true);
  config.add_classes("cat");
  CHECK_THAT(std::string(CreateStatus(config).message()), Catch::Contains("more than once"));
  config = PartialConfig(Hashing(), mnb, true);
  config.add_classes("");
  CHECK(CreateStatus(config).code() == absl::StatusCode::kInvalidArgument);
  // class_prior of the wrong length for the classes (found when the fresh classifier is made).
  config = PartialConfig(Hashing(), mnb, false);
  config.add_classes("a");
  config.add_classes("b");
  auto trainer = Trainer::Create(config);
  REQUIRE(trainer.ok());
  v1::TextBatch batch;
  v1::LabeledText* example = batch.add_examples();
  example->set_text("x y");
  example->set_label("a");
  REQUIRE(trainer->AddBatch(batch).ok());
  status = trainer->Finish().status();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("Number of priors"));

  // Continuing a version.
  const Pipeline first =
      PartialTrain(PartialConfig(Hashing(), mnb, true), nullptr, Batch(0, 3, false));
  // An unknown label: refused in the batch, naming it.
  trainer = Trainer::Create(PartialConfig(Hashing(), mnb, false), {}, &first);
  REQUIRE(trainer.ok());
  v1::TextBatch unknown = Batch(0, 2, false);
  unknown.mutable_examples(1)->set_label("zebra");
  status = trainer->AddBatch(unknown);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("'zebra' is not one of the classes"));
  CHECK(trainer->num_examples() == 0);  // nothing of the batch kept
  // Different classes than the continued version's (scikit-learn's message).
  config = PartialConfig(Hashing(), mnb, false);
  config.add_classes("cat");
  config.add_classes("dog");
  status = CreateStatus(config, &first);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()),
             Catch::Contains("is not the same as on last call to partial_fit"));
  // The same classes in another order are fine.
  CHECK(CreateStatus(PartialConfig(Hashing(), mnb, true), &first).ok());
  // A config that differs from the continued version's names the field.
  v1::VectorizerConfig other = Hashing();
  other.mutable_hashing()->set_n_features(128);
  status = CreateStatus(PartialConfig(other, mnb, false), &first);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("n_features"));
  v1::ClassifierConfig other_nb = mnb;
  other_nb.mutable_multinomial_nb()->set_alpha(2.0);
  status = CreateStatus(PartialConfig(Hashing(), other_nb, false), &first);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("alpha"));
  status = CreateStatus(PartialConfig(Hashing(), Classifier("complement_nb"), false), &first);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("classifier"));
}

// A partial Train's vectorizer config must equal the continued version's exactly, its lists too:
// the fixed vocabulary and the stop word list in the same order, a repeated stop word repeated
// (the pipeline writes back what the caller gave, and compares that). Unset, the continued
// version's config is used as it was given.
TEST_CASE("A partial Train compares the vocabulary and stop word list as given") {
  const v1::ClassifierConfig mnb = Classifier("multinomial_nb");
  for (const bool hashing : {false, true}) {
    CAPTURE(hashing);
    v1::VectorizerConfig vectorizer = hashing ? Hashing() : FixedVocabulary();
    v1::TextOptions* text = hashing ? vectorizer.mutable_hashing()->mutable_text()
                                    : vectorizer.mutable_count()->mutable_text();
    for (const char* word : {"on", "at", "of", "at"}) text->add_stop_word_list(word);
    const Pipeline first =
        PartialTrain(PartialConfig(vectorizer, mnb, true), nullptr, Batch(0, 3, false));
    CHECK(first.vectorizer_config().SerializeAsString() == vectorizer.SerializeAsString());
    CHECK(CreateStatus(PartialConfig(vectorizer, mnb, false), &first).ok());
    v1::TrainConfig bare;
    bare.set_name("m");
    bare.set_partial(true);
    auto trainer = Trainer::Create(bare, {}, &first);
    REQUIRE(trainer.ok());
    // The trainer keeps the config without the lists its fitter holds (they are held once); the
    // pipeline it trains writes them back as they were given.
    v1::VectorizerConfig without_lists = vectorizer;
    ClearHeldLists(&without_lists);
    CHECK(trainer->config().vectorizer().SerializeAsString() == without_lists.SerializeAsString());
    REQUIRE(trainer->AddBatch(Batch(3, 6, false)).ok());
    auto continued = trainer->Finish();
    REQUIRE(continued.ok());
    CHECK(continued->pipeline.vectorizer_config().SerializeAsString() ==
          vectorizer.SerializeAsString());
    const auto refused = [&](const v1::VectorizerConfig& other, const std::string& field) {
      const absl::Status status = CreateStatus(PartialConfig(other, mnb, false), &first);
      CHECK(status.code() == absl::StatusCode::kInvalidArgument);
      CHECK_THAT(std::string(status.message()), Catch::Contains(field));
    };
    v1::VectorizerConfig other = vectorizer;  // the same words in another order
    v1::TextOptions* other_text =
        hashing ? other.mutable_hashing()->mutable_text() : other.mutable_count()->mutable_text();
    other_text->mutable_stop_word_list()->SwapElements(0, 1);
    refused(other, "stop_word_list");
    other = vectorizer;  // without the repeat: the same set of words
    other_text =
        hashing ? other.mutable_hashing()->mutable_text() : other.mutable_count()->mutable_text();
    other_text->mutable_stop_word_list()->RemoveLast();
    refused(other, "stop_word_list");
    if (!hashing) {
      other = vectorizer;
      other.mutable_count()->mutable_vocabulary()->SwapElements(0, 1);
      refused(other, "vocabulary");
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Through the service core: versions, failures and concurrent partial Trains.

struct Fixture {
  store::MemoryModelStore store;
  registry::ModelRepository<LoadedPipeline> repository{&store, ParseStoredPipeline,
                                                       absl::ZeroDuration()};
  DiscriminativeCore core{[this] {
    DiscriminativeCoreOptions options;
    options.repository = &repository;
    return options;
  }()};
  std::vector<int64_t> Versions() {
    auto versions = store.ListVersions("m");
    return versions.ok() ? *versions : std::vector<int64_t>{};
  }
  v1::TrainRequest Config(bool with_classes) {
    v1::TrainRequest request;
    *request.mutable_config() =
        PartialConfig(Hashing(), Classifier("multinomial_nb"), with_classes);
    return request;
  }
  static v1::TrainRequest Data(size_t begin, size_t end) {
    v1::TrainRequest request;
    *request.mutable_batch() = Batch(begin, end, false);
    return request;
  }
  absl::StatusOr<v1::TrainResponse> Train(bool with_classes, size_t begin, size_t end,
                                          const exec::StopToken& stop = {}) {
    auto session = core.StartTrain();
    MAAS_RETURN_IF_ERROR(session->Add(Config(with_classes)));
    MAAS_RETURN_IF_ERROR(session->Add(Data(begin, end)));
    return session->Finish(stop);
  }
};

TEST_CASE("Partial Trains through the core: new versions, and failures leave the latest serving") {
  Fixture f;
  // The first call needs classes.
  CHECK(f.Train(false, 0, 3).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(f.Versions().empty());
  auto v1_response = f.Train(true, 0, 3);
  REQUIRE(v1_response.ok());
  CHECK(v1_response->info().version() == 1);
  CHECK(v1_response->summary().num_documents() == 3);
  auto v2_response = f.Train(false, 3, 7);
  REQUIRE(v2_response.ok());
  CHECK(v2_response->info().version() == 2);
  // The summary's class counts are the model's (every call so far).
  CHECK(std::vector<double>(v2_response->summary().class_count().begin(),
                            v2_response->summary().class_count().end()) ==
        std::vector<double>{2.0, 2.0, 3.0});
  const std::string v2_bytes = *f.store.Get("m", 2);

  // A cancelled partial Train stores nothing.
  auto cancelled = f.Train(
      false, 7, 10, exec::StopToken([] { return absl::CancelledError("client went away"); }));
  CHECK(cancelled.status().code() == absl::StatusCode::kCancelled);
  // A failing one (unknown label) neither.
  auto session = f.core.StartTrain();
  REQUIRE(session->Add(f.Config(false)).ok());
  v1::TrainRequest bad = Fixture::Data(7, 10);
  bad.mutable_batch()->mutable_examples(0)->set_label("zebra");
  CHECK(session->Add(bad).code() == absl::StatusCode::kInvalidArgument);
  CHECK(f.Versions() == std::vector<int64_t>{1, 2});
  CHECK(*f.store.Get("m", 2) == v2_bytes);
  v1::ClassifyRequest classify;
  classify.mutable_model()->set_name("m");
  classify.add_texts("the cat");
  auto classified = f.core.Classify(classify);
  REQUIRE(classified.ok());
  CHECK(classified->model_version() == 2);
}

TEST_CASE("A partial Train whose continued version is no longer the latest is ABORTED") {
  Fixture f;
  REQUIRE(f.Train(true, 0, 3).ok());
  // Session A continues version 1 ...
  auto a = f.core.StartTrain();
  REQUIRE(a->Add(f.Config(false)).ok());
  REQUIRE(a->Add(Fixture::Data(3, 7)).ok());
  // ... while session B continues it too and commits first.
  REQUIRE(f.Train(false, 7, 10).ok());
  auto late = a->Finish();
  CHECK(late.status().code() == absl::StatusCode::kAborted);
  CHECK_THAT(std::string(late.status().message()), Catch::Contains("retry"));
  CHECK(f.Versions() == std::vector<int64_t>{1, 2});
  // A retry continues version 2 (the aborted write's version number is not reused).
  auto retry = f.Train(false, 3, 7);
  REQUIRE(retry.ok());
  CHECK(f.Versions() == std::vector<int64_t>{1, 2, retry->info().version()});
  CHECK(std::vector<double>(retry->summary().class_count().begin(),
                            retry->summary().class_count().end()) ==
        std::vector<double>{3.0, 3.0, 4.0});
}

// A store whose writes of model "a" wait until released (a replica holding a's lock, a hung
// volume).
class HeldStore : public store::MemoryModelStore {
 public:
  using ModelStore::Put;
  absl::StatusOr<int64_t> Put(std::string_view name, const store::MakeBytesFn& make_bytes,
                              const store::PutOptions& options) override {
    if (name == "a" && hold_.load()) {
      entered_.Notify();
      release_.WaitForNotification();
    }
    return MemoryModelStore::Put(name, make_bytes, options);
  }
  std::atomic<bool> hold_{false};
  absl::Notification entered_;
  absl::Notification release_;
};

// One mutex served every partial Train of a server: a commit stuck on model "a" held partial
// Trains of every other model past their deadlines.
TEST_CASE("A partial Train stuck committing one model does not hold up another model's") {
  HeldStore store;
  registry::ModelRepository<LoadedPipeline> repository{&store, ParseStoredPipeline,
                                                       absl::ZeroDuration()};
  DiscriminativeCoreOptions options;
  options.repository = &repository;
  DiscriminativeCore core(options);
  auto train = [&](const std::string& name, bool first) -> absl::StatusOr<v1::TrainResponse> {
    auto session = core.StartTrain();
    v1::TrainRequest config;
    *config.mutable_config() = PartialConfig(Hashing(), Classifier("multinomial_nb"), first, name);
    MAAS_RETURN_IF_ERROR(session->Add(config));
    v1::TrainRequest data;
    *data.mutable_batch() = Batch(0, 3, false);
    MAAS_RETURN_IF_ERROR(session->Add(data));
    return session->Finish();
  };
  // Another model whose partial commits do not share a's mutex (models hash onto 64).
  PartialCommitLocks locks;
  std::string other = "b";
  while (&locks.For(other) == &locks.For("a")) other += "b";
  REQUIRE(train("a", true).ok());
  REQUIRE(train(other, true).ok());
  store.hold_ = true;
  absl::StatusOr<v1::TrainResponse> a_result = absl::UnknownError("not finished");
  std::thread a([&] { a_result = train("a", false); });
  REQUIRE(store.entered_.WaitForNotificationWithTimeout(absl::Seconds(30)));
  std::atomic<bool> b_done{false};
  absl::StatusOr<v1::TrainResponse> b_result = absl::UnknownError("not finished");
  std::thread b([&] {
    b_result = train(other, false);
    b_done = true;
  });
  // b commits while a is still stuck (a generous cap: only a b held up by a reaches it).
  const absl::Time limit = absl::Now() + absl::Seconds(20);
  while (!b_done.load() && absl::Now() < limit) absl::SleepFor(absl::Milliseconds(2));
  CHECK(b_done.load());
  store.release_.Notify();
  a.join();
  b.join();
  CHECK(a_result.ok());
  CHECK(b_result.ok());
}

}  // namespace
}  // namespace maas::discriminative
