// The service core over an in-memory store: validation happens before a version is written, and
// every parameter whose cost grows with it is bounded (issue 5 items 2, 4 and 9).
#include "services/discriminative/core/discriminative_core.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/registry/model_repository.h"
#include "common/store/memory_model_store.h"
#include "google/protobuf/util/message_differencer.h"
#include "services/discriminative/core/packed_texts.h"

namespace maas::discriminative {
namespace {

struct Fixture {
  store::MemoryModelStore store;
  registry::ModelRepository<LoadedPipeline> repository{&store, ParseStoredPipeline,
                                                       absl::ZeroDuration()};
  DiscriminativeCoreOptions Options() {
    DiscriminativeCoreOptions options;
    options.repository = &repository;
    return options;
  }
  // Versions of `name` in the store (empty when the model does not exist).
  std::vector<int64_t> Versions(const std::string& name) {
    auto versions = store.ListVersions(name);
    return versions.ok() ? *versions : std::vector<int64_t>{};
  }
};

v1::TrainRequest ConfigMessage(const std::string& name) {
  v1::TrainRequest request;
  request.mutable_config()->set_name(name);
  return request;
}

v1::TrainRequest BatchMessage(const std::vector<std::string>& texts,
                              const std::vector<std::string>& labels,
                              const std::vector<double>& weights = {}) {
  v1::TrainRequest request;
  for (size_t i = 0; i < texts.size(); ++i) {
    v1::LabeledText* example = request.mutable_batch()->add_examples();
    example->set_text(texts[i]);
    example->set_label(labels[i]);
    if (!weights.empty()) example->set_weight(weights[i]);
  }
  return request;
}

absl::StatusOr<v1::TrainResponse> Train(DiscriminativeCore& core, const v1::TrainRequest& config,
                                        const v1::TrainRequest& batch) {
  auto session = core.StartTrain();
  absl::Status status = session->Add(config);
  if (status.ok()) status = session->Add(batch);
  if (!status.ok()) return status;
  return session->Finish();
}

const std::vector<std::string> kTexts = {"the cat sat", "a dog barked", "the cat purred",
                                         "dogs bark loudly"};
const std::vector<std::string> kLabels = {"cat", "dog", "cat", "dog"};

TEST_CASE("A Train whose weights are all 0 is INVALID_ARGUMENT and stores nothing") {
  Fixture f;
  DiscriminativeCore core(f.Options());
  REQUIRE(Train(core, ConfigMessage("m"), BatchMessage(kTexts, kLabels)).ok());
  auto result = Train(core, ConfigMessage("m"), BatchMessage(kTexts, kLabels, {0, 0, 0, 0}));
  REQUIRE(result.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(result.status().message()), Catch::Contains("weight"));
  CHECK(f.Versions("m") == std::vector<int64_t>{1});
  // The latest version still serves.
  v1::ClassifyRequest classify;
  classify.mutable_model()->set_name("m");
  classify.add_texts("the cat");
  auto classified = core.Classify(classify);
  REQUIRE(classified.ok());
  CHECK(classified->model_version() == 1);
  CHECK(classified->results(0).label() == "cat");
}

TEST_CASE("Distinct labels above max_classes are RESOURCE_EXHAUSTED and store nothing") {
  Fixture f;
  DiscriminativeCoreOptions options = f.Options();
  options.limits.max_classes = 50;
  DiscriminativeCore core(options);
  std::vector<std::string> texts, labels;
  for (int i = 0; i < 51; ++i) {
    texts.push_back(absl::StrCat("word", i, " common"));
    labels.push_back(absl::StrCat("label", i));
  }
  auto result = Train(core, ConfigMessage("many"), BatchMessage(texts, labels));
  REQUIRE(result.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(result.status().message()), Catch::Contains("--max_classes"));
  CHECK(f.Versions("many").empty());
  texts.pop_back();
  labels.pop_back();
  CHECK(Train(core, ConfigMessage("many"), BatchMessage(texts, labels)).ok());
  CHECK(f.Versions("many") == std::vector<int64_t>{1});
}

TEST_CASE("classes x features above max_model_cells is RESOURCE_EXHAUSTED before fitting") {
  Fixture f;
  DiscriminativeCoreOptions options = f.Options();
  options.limits.max_model_cells = 2 * 5;  // 2 classes x 5 features
  DiscriminativeCore core(options);
  // 6 distinct terms over 2 classes: 12 cells.
  auto result =
      Train(core, ConfigMessage("big"), BatchMessage({"aa bb cc", "dd ee ff"}, {"x", "y"}));
  REQUIRE(result.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(result.status().message()), Catch::Contains("--max_model_cells"));
  CHECK(f.Versions("big").empty());
  CHECK(Train(core, ConfigMessage("big"), BatchMessage({"aa bb cc", "dd ee"}, {"x", "y"})).ok());
}

TEST_CASE("A model above max_model_bytes is RESOURCE_EXHAUSTED and stores nothing") {
  Fixture f;
  DiscriminativeCoreOptions options = f.Options();
  options.limits.max_model_bytes = 200;
  DiscriminativeCore core(options);
  auto result = Train(core, ConfigMessage("fat"), BatchMessage(kTexts, kLabels));
  REQUIRE(result.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(result.status().message()), Catch::Contains("--max_model_bytes"));
  CHECK(f.Versions("fat").empty());
}

TEST_CASE("ngram sizes above max_ngram are INVALID_ARGUMENT in Train and CreateModel") {
  Fixture f;
  DiscriminativeCore core(f.Options());
  for (const uint32_t ngram_max : {17u, std::numeric_limits<uint32_t>::max()}) {
    v1::TrainRequest config = ConfigMessage("ng");
    config.mutable_config()->mutable_vectorizer()->mutable_count()->mutable_text()->set_ngram_max(
        ngram_max);
    auto session = core.StartTrain();
    const absl::Status status = session->Add(config);
    REQUIRE(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Catch::Contains("--max_ngram"));
  }
  // A model trained with defaults, exported, then re-imported with a huge ngram_max.
  REQUIRE(Train(core, ConfigMessage("ok"), BatchMessage(kTexts, kLabels)).ok());
  v1::GetModelRequest get;
  get.mutable_model()->set_name("ok");
  auto got = core.GetModel(get);
  REQUIRE(got.ok());
  v1::CreateModelRequest create;
  create.set_name("imported");
  *create.mutable_spec() = got->spec();
  create.mutable_spec()
      ->mutable_vectorizer()
      ->mutable_config()
      ->mutable_count()
      ->mutable_text()
      ->set_ngram_max(4294967295u);
  auto created = core.CreateModel(create);
  REQUIRE(created.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(created.status().message()), Catch::Contains("--max_ngram"));
  CHECK(f.Versions("imported").empty());
}

TEST_CASE("CreateModel rejects feature_log_prob above 0, and -inf unless alpha is 0") {
  Fixture f;
  DiscriminativeCore core(f.Options());
  REQUIRE(Train(core, ConfigMessage("src"), BatchMessage(kTexts, kLabels)).ok());
  v1::GetModelRequest get;
  get.mutable_model()->set_name("src");
  auto got = core.GetModel(get);
  REQUIRE(got.ok());
  const auto create_with = [&](double value, double alpha) {
    v1::CreateModelRequest create;
    create.set_name("imp");
    *create.mutable_spec() = got->spec();
    create.mutable_spec()->mutable_classifier()->mutable_feature_log_prob()->set_values(0, value);
    create.mutable_spec()
        ->mutable_classifier()
        ->mutable_config()
        ->mutable_multinomial_nb()
        ->set_alpha(alpha);
    return core.CreateModel(create);
  };
  auto positive = create_with(0.5, 1.0);
  REQUIRE(positive.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(positive.status().message()), Catch::Contains("feature_log_prob"));
  auto neg_inf = create_with(-HUGE_VAL, 1.0);
  REQUIRE(neg_inf.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(neg_inf.status().message()), Catch::Contains("-inf"));
  CHECK(f.Versions("imp").empty());
  // alpha = 0 (force_alpha, the default) allows zero probabilities.
  CHECK(create_with(-HUGE_VAL, 0.0).ok());
  CHECK(f.Versions("imp") == std::vector<int64_t>{1});
}

// ---------------------------------------------------------------------------------------------------
// The stored form: a fixed vocabulary is stored once (the state's vocabulary), and a version stored
// before (with the list in the config as well) still loads and serves exactly as before.

// A Train config with a fixed vocabulary (in no particular order, one term of more than 15 bytes)
// and a stop word list with a repeat.
v1::TrainRequest FixedVocabularyConfig(const std::string& name) {
  v1::TrainRequest request = ConfigMessage(name);
  v1::CountVectorizerConfig* count =
      request.mutable_config()->mutable_vectorizer()->mutable_count();
  for (const char* term : {"zebra", "cat", "dog", "\u00e9cole", "a term longer than 15", "bark"}) {
    count->add_vocabulary(term);
  }
  for (const char* word : {"the", "a", "the"}) count->mutable_text()->add_stop_word_list(word);
  return request;
}

v1::StoredDiscriminativeModel StoredFile(Fixture& f, const std::string& name, int64_t version) {
  auto bytes = f.store.Get(name, version);
  REQUIRE(bytes.ok());
  v1::StoredDiscriminativeModel stored;
  REQUIRE(stored.ParseFromString(*bytes));
  return stored;
}

TEST_CASE("Train stores a fixed vocabulary once and GetModel gives it back in the config") {
  Fixture f;
  DiscriminativeCore core(f.Options());
  const v1::TrainRequest config = FixedVocabularyConfig("m");
  const v1::VectorizerConfig& given = config.config().vectorizer();
  REQUIRE(Train(core, config, BatchMessage(kTexts, kLabels)).ok());
  const v1::StoredDiscriminativeModel stored = StoredFile(f, "m", 1);
  const v1::VectorizerState& state = stored.spec().vectorizer();
  CHECK(state.fixed_vocabulary_in_state());
  CHECK(state.config().count().vocabulary().empty());
  CHECK(state.config().count().text().stop_word_list().size() == 3);  // held once already
  REQUIRE(state.vocabulary().size() == given.count().vocabulary().size());
  CHECK(std::equal(state.vocabulary().begin(), state.vocabulary().end(),
                   given.count().vocabulary().begin()));
  v1::GetModelRequest get;
  get.mutable_model()->set_name("m");
  auto got = core.GetModel(get);
  REQUIRE(got.ok());
  CHECK_FALSE(got->spec().vectorizer().fixed_vocabulary_in_state());
  CHECK(got->spec().vectorizer().config().SerializeAsString() == given.SerializeAsString());
  // The version's size is its file's: the list once.
  CHECK(got->info().size_bytes() == static_cast<int64_t>(stored.ByteSizeLong()));
  CHECK(got->spec().ByteSizeLong() > stored.spec().ByteSizeLong());
}

// The stored form is the store's own: an import of it is refused and stores nothing (GetModel's
// full spec is what CreateModel takes).
TEST_CASE("CreateModel refuses a spec in the stored form") {
  Fixture f;
  DiscriminativeCore core(f.Options());
  REQUIRE(Train(core, FixedVocabularyConfig("m"), BatchMessage(kTexts, kLabels)).ok());
  v1::CreateModelRequest create;
  create.set_name("imported");
  *create.mutable_spec() = StoredFile(f, "m", 1).spec();
  REQUIRE(create.spec().vectorizer().fixed_vocabulary_in_state());
  const absl::Status status = core.CreateModel(create).status();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("fixed_vocabulary_in_state"));
  CHECK(f.Versions("imported").empty());
}

// A version stored by the code before the stored form (its spec as ToSpec gives it: the fixed
// vocabulary in the config and in the state) loads, classifies, vectorizes, exports (GetModel: the
// same bytes as it was stored) and is continued by a partial Train exactly as a version stored in
// the stored form; the partial Train's new version is in the stored form.
TEST_CASE("A version stored with its fixed vocabulary in config and state serves as before") {
  Fixture f;
  DiscriminativeCore core(f.Options());
  const v1::TrainRequest config = FixedVocabularyConfig("new");
  const v1::TrainRequest batch = BatchMessage(kTexts, kLabels);
  REQUIRE(Train(core, config, batch).ok());
  // The old file: what the previous StorePipeline wrote (the trained pipeline's ToSpec).
  v1::StoredDiscriminativeModel old = StoredFile(f, "new", 1);
  {
    auto trainer = Trainer::Create(config.config());
    REQUIRE(trainer.ok());
    REQUIRE(trainer->AddBatch(batch.batch()).ok());
    auto result = trainer->Finish();
    REQUIRE(result.ok());
    *old.mutable_spec() = result->pipeline.ToSpec();
  }
  old.mutable_info()->set_name("old");
  REQUIRE_FALSE(old.spec().vectorizer().fixed_vocabulary_in_state());
  REQUIRE(old.spec().vectorizer().config().count().vocabulary().size() == 6);
  REQUIRE(old.spec().vectorizer().vocabulary().size() == 6);
  const std::string old_spec = old.spec().SerializeAsString();
  REQUIRE(f.store.Put("old", [&](int64_t) { return old.SerializeAsString(); }).ok());

  v1::GetModelRequest get;
  get.mutable_model()->set_name("old");
  auto got_old = core.GetModel(get);
  REQUIRE(got_old.ok());
  CHECK(got_old->spec().SerializeAsString() == old_spec);
  get.mutable_model()->set_name("new");
  auto got_new = core.GetModel(get);
  REQUIRE(got_new.ok());
  CHECK(got_new->spec().SerializeAsString() == old_spec);

  const auto classify = [&](const std::string& name) {
    v1::ClassifyRequest request;
    request.mutable_model()->set_name(name);
    for (const char* text :
         {"the cat and the dog", "\u00e9cole zebra", "a term longer than 15", "nothing known"}) {
      request.add_texts(text);
    }
    request.set_explain(true);
    auto response = core.Classify(request);
    REQUIRE(response.ok());
    return response->SerializeAsString();
  };
  CHECK(classify("old") == classify("new"));
  const auto vectorize = [&](const std::string& name) {
    v1::VectorizeRequest request;
    request.mutable_model()->set_name(name);
    request.add_texts("the cat and the dog bark \u00e9cole");
    request.set_include_feature_names(true);
    auto response = core.Vectorize(request);
    REQUIRE(response.ok());
    CHECK(response->feature_names_size() == 4);
    return *std::move(response);
  };
  // (Compared as messages: a map's entries serialize in no fixed order.)
  CHECK(google::protobuf::util::MessageDifferencer::Equals(vectorize("old"), vectorize("new")));

  // A partial Train continues either with the stored config (vectorizer unset) or the same config
  // given again; another order of the vocabulary is refused, naming it.
  for (const bool given : {false, true}) {
    CAPTURE(given);
    std::string continued;
    for (const std::string name : {"old", "new"}) {
      CAPTURE(name);
      v1::TrainRequest partial = given ? FixedVocabularyConfig(name) : ConfigMessage(name);
      partial.mutable_config()->set_partial(true);
      REQUIRE(
          Train(core, partial, BatchMessage({"the dog barked", "zebra cat"}, {"dog", "cat"})).ok());
      const std::vector<int64_t> versions = f.Versions(name);
      REQUIRE(!versions.empty());
      const v1::StoredDiscriminativeModel latest = StoredFile(f, name, versions.back());
      CHECK(latest.spec().vectorizer().fixed_vocabulary_in_state());
      get.mutable_model()->set_name(name);
      auto got = core.GetModel(get);
      REQUIRE(got.ok());
      if (continued.empty()) {
        continued = got->spec().SerializeAsString();
      } else {
        CHECK(got->spec().SerializeAsString() == continued);
      }
      CHECK(got->spec().vectorizer().config().SerializeAsString() ==
            config.config().vectorizer().SerializeAsString());
    }
  }
  v1::TrainRequest reordered = FixedVocabularyConfig("old");
  reordered.mutable_config()->set_partial(true);
  reordered.mutable_config()
      ->mutable_vectorizer()
      ->mutable_count()
      ->mutable_vocabulary()
      ->SwapElements(0, 1);
  const absl::Status refused = Train(core, reordered, BatchMessage({"cat"}, {"cat"})).status();
  CHECK(refused.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(refused.message()), Catch::Contains("vocabulary"));
}

// GetModel's answer holds a fixed vocabulary twice (config and state) where the stored file holds
// it once: an answer above --max_message_bytes is refused naming it, though the file is below.
TEST_CASE("GetModel refuses an answer above --max_message_bytes that its stored file is not") {
  Fixture f;
  v1::TrainRequest config = ConfigMessage("m");
  for (int j = 0; j < 2000; ++j) {
    config.mutable_config()->mutable_vectorizer()->mutable_count()->add_vocabulary(
        absl::StrCat("term", j));
  }
  {
    DiscriminativeCore core(f.Options());
    REQUIRE(Train(core, config, BatchMessage(kTexts, kLabels)).ok());
  }
  v1::GetModelRequest get;
  get.mutable_model()->set_name("m");
  DiscriminativeCoreOptions options = f.Options();
  uint64_t answer = 0;
  {
    DiscriminativeCore core(options);
    auto got = core.GetModel(get);
    REQUIRE(got.ok());
    answer = got->ByteSizeLong();
  }
  const uint64_t stored = static_cast<uint64_t>(StoredFile(f, "m", 1).ByteSizeLong());
  REQUIRE(stored + 10'000 < answer);  // 2000 terms of 6-9 bytes: ~20 KB more
  options.max_message_bytes = stored + 1000;
  DiscriminativeCore core(options);
  const absl::Status status = core.GetModel(get).status();
  CHECK(status.code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(status.message()), Catch::Contains("--max_message_bytes"));
  CHECK_THAT(std::string(status.message()), Catch::Contains(absl::StrCat(answer)));
  options.max_message_bytes = answer;
  DiscriminativeCore fits(options);
  CHECK(fits.GetModel(get).ok());
}

}  // namespace
}  // namespace maas::discriminative

namespace maas::discriminative {
namespace {

// Runs every item on its own thread: shows results do not depend on how chunks are spread.
class ThreadPerItemExecutor final : public exec::Executor {
 public:
  void ParallelFor(int64_t n, const std::function<void(int64_t)>& fn) override {
    std::vector<std::thread> threads;
    for (int64_t i = 0; i < n; ++i) threads.emplace_back([&fn, i] { fn(i); });
    for (std::thread& t : threads) t.join();
  }
  int parallelism() const override { return 4; }
};

TEST_CASE("Request size limits are RESOURCE_EXHAUSTED naming their flag") {
  Fixture f;
  DiscriminativeCoreOptions options = f.Options();
  options.max_texts_per_request = 3;
  options.max_text_bytes = 16;
  DiscriminativeCore core(options);
  REQUIRE(Train(core, ConfigMessage("m"), BatchMessage(kTexts, kLabels)).ok());
  v1::ClassifyRequest request;
  request.mutable_model()->set_name("m");
  for (int i = 0; i < 4; ++i) request.add_texts("the cat");
  auto too_many = core.Classify(request);
  CHECK(absl::IsResourceExhausted(too_many.status()));
  CHECK_THAT(std::string(too_many.status().message()), Catch::Contains("--max_texts_per_request"));
  request.clear_texts();
  request.add_texts("a text longer than sixteen bytes");
  auto too_long = core.Classify(request);
  CHECK(absl::IsResourceExhausted(too_long.status()));
  CHECK_THAT(std::string(too_long.status().message()), Catch::Contains("--max_text_bytes"));
  auto train = Train(core, ConfigMessage("m"),
                     BatchMessage({"a text longer than sixteen bytes", "dog"}, {"cat", "dog"}));
  CHECK(absl::IsResourceExhausted(train.status()));
  CHECK_THAT(std::string(train.status().message()), Catch::Contains("--max_text_bytes"));
  CHECK(f.Versions("m") == std::vector<int64_t>{1});
}

// Evaluate numbers examples across its stream (its label and weight errors do); a text error found
// by the pipeline used to name the text by its place in its batch ("texts[0]" for the stream's 4th
// example), which does not say which example it is.
TEST_CASE("Evaluate names a text the pipeline refuses by its place in the stream") {
  Fixture f;
  DiscriminativeCore core(f.Options());
  REQUIRE(Train(core, ConfigMessage("m"), BatchMessage(kTexts, kLabels)).ok());
  auto session = core.StartEvaluate();
  v1::EvaluateRequest config;
  config.mutable_config()->mutable_model()->set_name("m");
  REQUIRE(session->Add(config).ok());
  const auto batch = [](const std::vector<std::string>& texts,
                        const std::vector<std::string>& labels) {
    v1::EvaluateRequest request;
    *request.mutable_batch() = BatchMessage(texts, labels).batch();
    return request;
  };
  REQUIRE(session->Add(batch({"the cat", "a dog", "cats"}, {"cat", "dog", "cat"})).ok());
  // Example 4 of the stream (the second of this batch): not UTF-8 under decode_error strict.
  const absl::Status refused = session->Add(batch({"the dog", "caf\xE9 cat"}, {"dog", "cat"}));
  CHECK(absl::IsInvalidArgument(refused));
  const std::string message(refused.message());
  CHECK_THAT(message, Catch::StartsWith("example 4: "));
  CHECK_THAT(message, Catch::Contains("byte offset 3"));
  CHECK_THAT(message, !Catch::Contains("texts["));
  // Classify keeps its own numbering: the request's texts.
  v1::ClassifyRequest request;
  request.mutable_model()->set_name("m");
  request.add_texts("the dog");
  request.add_texts("caf\xE9 cat");
  const auto classified = core.Classify(request);
  CHECK_THAT(std::string(classified.status().message()), Catch::StartsWith("texts[1]: "));
}

TEST_CASE("Compact Classify equals the per-text form, chunks on threads give the same result") {
  Fixture f;
  DiscriminativeCore core(f.Options());
  REQUIRE(Train(core, ConfigMessage("m"), BatchMessage(kTexts, kLabels, {1, 2, 0.5, 1})).ok());
  v1::ClassifyRequest request;
  request.mutable_model()->set_name("m");
  for (int i = 0; i < 300; ++i) request.add_texts(kTexts[i % 4] + (i % 3 ? " cat" : " dog"));
  auto verbose = core.Classify(request);
  REQUIRE(verbose.ok());
  request.set_compact(true);
  ThreadPerItemExecutor threads;
  auto compact = core.Classify(request, exec::StopToken(), threads);
  REQUIRE(compact.ok());
  CHECK(compact->results_size() == 0);
  REQUIRE(compact->classes_size() == 2);
  CHECK(compact->probabilities().rows() == 300);
  CHECK(compact->probabilities().cols() == 2);
  for (int i = 0; i < 300; ++i) {
    const v1::Classification& r = verbose->results(i);
    CHECK(compact->classes(static_cast<int>(compact->predicted(i))) == r.label());
    for (int c = 0; c < 2; ++c) {
      CHECK(compact->probabilities().values(i * 2 + c) == r.scores(c).probability());
    }
  }
  request.set_top_k(1);
  CHECK(core.Classify(request).status().code() == absl::StatusCode::kInvalidArgument);
  // A stopped token stops the batch with its status.
  request.set_top_k(0);
  const exec::StopToken stopped([] { return absl::DeadlineExceededError("deadline passed"); });
  CHECK(core.Classify(request, stopped, threads).status().code() ==
        absl::StatusCode::kDeadlineExceeded);
}

TEST_CASE("packed_texts classify and vectorize as the same texts sent one per field") {
  Fixture f;
  DiscriminativeCoreOptions options = f.Options();
  options.max_texts_per_request = 400;
  options.max_text_bytes = 64;
  DiscriminativeCore core(options);
  REQUIRE(Train(core, ConfigMessage("m"), BatchMessage(kTexts, kLabels, {1, 2, 0.5, 1})).ok());
  v1::ClassifyRequest by_field;
  by_field.mutable_model()->set_name("m");
  std::vector<std::string_view> views;
  for (int i = 0; i < 300; ++i) by_field.add_texts(kTexts[i % 4] + (i % 3 ? " cat" : ""));
  by_field.add_texts("");
  for (const std::string& text : by_field.texts()) views.push_back(text);
  v1::ClassifyRequest packed;
  packed.mutable_model()->set_name("m");
  packed.set_packed_texts(PackTexts(views));
  for (const bool compact : {false, true}) {
    by_field.set_compact(compact);
    packed.set_compact(compact);
    ThreadPerItemExecutor threads;
    auto expected = core.Classify(by_field);
    auto got = core.Classify(packed, exec::StopToken(), threads);
    REQUIRE(expected.ok());
    REQUIRE(got.ok());
    CHECK(got->SerializeAsString() == expected->SerializeAsString());
  }
  v1::VectorizeRequest vectorize_by_field, vectorize_packed;
  vectorize_by_field.mutable_model()->set_name("m");
  *vectorize_by_field.mutable_texts() = by_field.texts();
  vectorize_packed.mutable_model()->set_name("m");
  vectorize_packed.set_packed_texts(packed.packed_texts());
  auto rows = core.Vectorize(vectorize_packed);
  REQUIRE(rows.ok());
  CHECK(rows->rows_size() == 301);
  CHECK(rows->SerializeAsString() == core.Vectorize(vectorize_by_field)->SerializeAsString());
}

TEST_CASE("packed_texts errors: both forms, a bad layout, the limits, a text's UTF-8 by index") {
  Fixture f;
  DiscriminativeCoreOptions options = f.Options();
  options.max_texts_per_request = 3;
  options.max_text_bytes = 16;
  DiscriminativeCore core(options);
  REQUIRE(Train(core, ConfigMessage("m"), BatchMessage(kTexts, kLabels)).ok());
  v1::ClassifyRequest request;
  request.mutable_model()->set_name("m");
  const auto status_of = [&](std::vector<std::string_view> texts) {
    request.set_packed_texts(PackTexts(texts));
    return core.Classify(request).status();
  };
  REQUIRE(status_of({"the cat", "a dog"}).ok());
  request.add_texts("the cat");
  const absl::Status both = core.Classify(request).status();
  CHECK(absl::IsInvalidArgument(both));
  CHECK_THAT(std::string(both.message()),
             Catch::Contains("both texts (1 entries) and packed_texts"));
  request.clear_texts();
  request.set_packed_texts(
      std::string("\x07\x00\x00\x00"
                  "cat",
                  7));
  const absl::Status bad = core.Classify(request).status();
  CHECK(absl::IsInvalidArgument(bad));
  CHECK_THAT(std::string(bad.message()),
             Catch::Contains("packed_texts: text 0 at byte 0 claims 7"));
  const absl::Status too_many = status_of({"a", "b", "c", "d"});
  CHECK(absl::IsResourceExhausted(too_many));
  CHECK_THAT(std::string(too_many.message()), Catch::Contains("--max_texts_per_request"));
  const absl::Status too_long = status_of({"cat", "a text longer than sixteen bytes"});
  CHECK(absl::IsResourceExhausted(too_long));
  CHECK_THAT(std::string(too_long.message()), Catch::StartsWith("texts[1] has 32 bytes"));
  CHECK_THAT(std::string(too_long.message()), Catch::Contains("--max_text_bytes"));
  const absl::Status not_utf8 = status_of({"the dog", "caf\xE9 cat"});
  CHECK(absl::IsInvalidArgument(not_utf8));
  CHECK_THAT(std::string(not_utf8.message()), Catch::StartsWith("texts[1]: "));
  request.clear_packed_texts();
  const absl::Status none = core.Classify(request).status();
  CHECK(absl::IsInvalidArgument(none));
  CHECK_THAT(std::string(none.message()), Catch::Contains("texts or packed_texts"));
}

// With limits configured above the defaults, texts x classes of a compact answer can pass what one
// repeated field holds (INT_MAX): the size used to be cast to int unchecked (a negative Resize).
TEST_CASE("A compact answer larger than a message can hold is RESOURCE_EXHAUSTED") {
  Fixture f;
  DiscriminativeCoreOptions options = f.Options();
  options.max_texts_per_request = 200'000;
  options.limits.max_classes = 30'000;
  DiscriminativeCore core(options);
  constexpr int kClasses = 21'475;  // x 100 000 texts > 2^31 - 1
  std::vector<std::string> texts, labels;
  for (int c = 0; c < kClasses; ++c) {
    texts.push_back("word");
    labels.push_back(absl::StrCat("c", c));
  }
  REQUIRE(Train(core, ConfigMessage("many"), BatchMessage(texts, labels)).ok());
  v1::ClassifyRequest request;
  request.mutable_model()->set_name("many");
  request.set_packed_texts(std::string(4 * 100'000, '\0'));  // 100 000 empty texts
  request.set_compact(true);
  const absl::Status status = core.Classify(request).status();
  CHECK(absl::IsResourceExhausted(status));
  CHECK_THAT(std::string(status.message()), Catch::Contains("100000 texts x 21475 classes"));
}

// A model of many classes with one-character labels "0".."9" and "a0".."z9"-style labels.
std::vector<std::string> ManyLabels(int n) {
  std::vector<std::string> labels;
  for (int i = 0; i < n; ++i) labels.push_back(absl::StrCat("c", i));
  return labels;
}

absl::Status TrainManyClasses(DiscriminativeCore& core, const std::string& name, int classes) {
  const std::vector<std::string> labels = ManyLabels(classes);
  const std::vector<std::string> texts(labels.size(), "word");
  return Train(core, ConfigMessage(name), BatchMessage(texts, labels)).status();
}

// The hunt (amp.md 1): a 40 KB Classify of 10 000 empty texts against a 10 000-class model built
// the 6 GB answer and crashed the server (bad_alloc); the only size check was on the serialized
// answer. The core now refuses before classifying, naming --max_message_bytes and what fits.
TEST_CASE("A Classify answer that cannot fit --max_message_bytes is refused before the work") {
  Fixture f;
  DiscriminativeCoreOptions options = f.Options();
  options.max_message_bytes = 100'000;
  DiscriminativeCore core(options);
  REQUIRE(TrainManyClasses(core, "wide", 1000).ok());
  v1::ClassifyRequest request;
  request.mutable_model()->set_name("wide");
  // Compact: 8 bytes per probability, 1000 classes: 12 texts fit in 100 000 bytes, 13 do not.
  request.set_compact(true);
  request.set_packed_texts(std::string(4 * 13, '\0'));
  absl::Status status = core.Classify(request).status();
  CHECK(absl::IsResourceExhausted(status));
  CHECK_THAT(std::string(status.message()), Catch::Contains("--max_message_bytes"));
  CHECK_THAT(std::string(status.message()), Catch::Contains("at most 11 texts fit"));
  request.set_packed_texts(std::string(4 * 11, '\0'));
  auto compact = core.Classify(request);
  REQUIRE(compact.ok());
  CHECK(compact->ByteSizeLong() <= options.max_message_bytes);
  // Per-text form: every class's score (~18 bytes with its label): 13 texts are far too many.
  request.set_compact(false);
  request.set_packed_texts(std::string(4 * 13, '\0'));
  status = core.Classify(request).status();
  CHECK(absl::IsResourceExhausted(status));
  CHECK_THAT(std::string(status.message()), Catch::Contains("--max_message_bytes"));
  CHECK_THAT(std::string(status.message()), Catch::Contains("top_k"));
  // The check is a lower bound (the adapter still refuses an answer that turns out larger): a
  // few texts pass it.
  request.set_packed_texts(std::string(4 * 2, '\0'));
  CHECK(core.Classify(request).ok());
  // top_k = 1: one score per text, 13 texts fit.
  request.set_top_k(1);
  request.set_packed_texts(std::string(4 * 13, '\0'));
  CHECK(core.Classify(request).ok());
}

// The hunt (amp.md 2): Evaluate allocated classes^2 doubles when the config arrived (800 MB for
// 10 000 classes from a 30-byte message) and its answer could never be sent. Now the config is
// refused when the dense confusion matrix cannot fit one message.
TEST_CASE("Evaluate refuses at the config a model whose confusion matrix cannot be sent") {
  Fixture f;
  DiscriminativeCoreOptions options = f.Options();
  options.max_message_bytes = 100'000;  // 8 x 110^2 = 96 800 bytes of cells: 110 classes fit
  DiscriminativeCore core(options);
  REQUIRE(TrainManyClasses(core, "wide", 120).ok());
  REQUIRE(TrainManyClasses(core, "fits", 100).ok());
  v1::EvaluateRequest config;
  config.mutable_config()->mutable_model()->set_name("wide");
  auto session = core.StartEvaluate();
  const absl::Status status = session->Add(config);
  CHECK(absl::IsResourceExhausted(status));
  CHECK_THAT(std::string(status.message()), Catch::Contains("--max_message_bytes"));
  CHECK_THAT(std::string(status.message()), Catch::Contains("120 x 120 confusion matrix"));
  // A model whose answer fits evaluates, and its answer does fit.
  config.mutable_config()->mutable_model()->set_name("fits");
  session = core.StartEvaluate();
  REQUIRE(session->Add(config).ok());
  v1::EvaluateRequest batch;
  for (const char* label : {"c1", "c7", "c7", "c42"}) {
    v1::LabeledText* example = batch.mutable_batch()->add_examples();
    example->set_text("word");
    example->set_label(label);
  }
  REQUIRE(session->Add(batch).ok());
  auto response = session->Finish();
  REQUIRE(response.ok());
  CHECK(response->ByteSizeLong() <= options.max_message_bytes);
  CHECK(response->confusion_matrix().rows() == 100);
  CHECK(response->confusion_matrix().values_size() == 100 * 100);
  double total = 0;
  for (double v : response->confusion_matrix().values()) total += v;
  CHECK(total == 4);
}

// The hunt (amp.md 5): GetModel of a model above the message limit read, parsed and serialized
// it (1.8 GB peak for a 537 MB model) before the refusal. Now the stored size refuses it first.
TEST_CASE("GetModel of a model stored above --max_message_bytes is refused before reading it") {
  Fixture f;
  DiscriminativeCoreOptions options = f.Options();
  options.max_message_bytes = 2000;
  DiscriminativeCore core(options);
  REQUIRE(TrainManyClasses(core, "wide", 100).ok());
  REQUIRE(Train(core, ConfigMessage("small"), BatchMessage(kTexts, kLabels)).ok());
  v1::GetModelRequest request;
  request.mutable_model()->set_name("wide");
  const absl::Status status = core.GetModel(request).status();
  CHECK(absl::IsResourceExhausted(status));
  CHECK_THAT(std::string(status.message()), Catch::Contains("--max_message_bytes"));
  CHECK_THAT(std::string(status.message()), Catch::Contains("is stored in"));
  request.mutable_model()->set_name("small");
  auto small = core.GetModel(request);
  REQUIRE(small.ok());
  CHECK(small->ByteSizeLong() <= options.max_message_bytes);
}

// The hunt (amp2.md 4): Vectorize built every text's row, then the whole answer, and only the
// adapter compared it with --max_message_bytes (63 MB of texts on a char 1..16-gram model crashed
// the server). The answer is now built text by text and refused as soon as it passes the limit:
// the text after the cut is never vectorized (here it is not UTF-8, which would be
// INVALID_ARGUMENT), and the count of texts that fit is exact.
TEST_CASE("A Vectorize answer is refused as soon as it passes --max_message_bytes") {
  Fixture f;
  DiscriminativeCoreOptions unlimited = f.Options();
  unlimited.max_message_bytes = 0;
  DiscriminativeCore reference(unlimited);
  REQUIRE(Train(reference, ConfigMessage("m"), BatchMessage(kTexts, kLabels)).ok());
  for (const bool with_names : {false, true}) {
    CAPTURE(with_names);
    v1::VectorizeRequest request;
    request.mutable_model()->set_name("m");
    request.set_include_feature_names(with_names);
    for (int i = 0; i < 10; ++i) request.add_texts(kTexts[i % 4]);
    auto ten = reference.Vectorize(request);
    REQUIRE(ten.ok());
    REQUIRE(ten->rows_size() == 10);
    CHECK(ten->feature_names().empty() == !with_names);

    DiscriminativeCoreOptions options = f.Options();
    options.max_message_bytes = ten->ByteSizeLong();  // exactly the answer for 10 texts
    DiscriminativeCore core(options);
    auto fits = core.Vectorize(request);
    REQUIRE(fits.ok());
    CHECK(google::protobuf::util::MessageDifferencer::Equals(*fits, *ten));  // maps: any order

    for (int i = 10; i < 40; ++i) request.add_texts(kTexts[i % 4]);
    request.add_texts("\xff not UTF-8");  // texts[40]: INVALID_ARGUMENT if it were vectorized
    CHECK(reference.Vectorize(request).status().code() == absl::StatusCode::kInvalidArgument);
    absl::Status status = core.Vectorize(request).status();
    CHECK(absl::IsResourceExhausted(status));
    CHECK_THAT(std::string(status.message()), Catch::Contains("--max_message_bytes"));
    CHECK_THAT(std::string(status.message()), Catch::Contains("at texts[10]"));
    CHECK_THAT(std::string(status.message()),
               Catch::Contains("only the first 10 of the 41 texts fit"));
    CHECK((std::string(status.message()).find("include_feature_names") != std::string::npos) ==
          with_names);

    options.max_message_bytes = 10;
    DiscriminativeCore tiny(options);
    status = tiny.Vectorize(request).status();
    CHECK(absl::IsResourceExhausted(status));
    CHECK_THAT(std::string(status.message()), Catch::Contains("texts[0] alone does not fit"));
  }
}

// The hunt (amp.md 5): a 53-byte Train (hashing n_features 2^24, 2 classes, inside
// --max_model_cells) peaked at 3.6 GB while its budget, --max_train_memory_bytes, counted only
// the vectorizing. The peak of fitting and storing is now checked before the classifier exists.
TEST_CASE("A Train whose fit and store would pass --max_train_memory_bytes is refused up front") {
  Fixture f;
  DiscriminativeCoreOptions options = f.Options();
  options.limits.max_train_memory_bytes = 4u << 20;  // 4 MiB
  DiscriminativeCore core(options);
  v1::TrainRequest config = ConfigMessage("hashed");
  config.mutable_config()->mutable_vectorizer()->mutable_hashing()->set_n_features(1 << 16);
  config.mutable_config()->mutable_vectorizer()->mutable_hashing()->set_alternate_sign(false);
  // 2 classes x 2^16 features x 56 bytes = 7 MiB at the peak.
  auto result = Train(core, config, BatchMessage(kTexts, kLabels));
  REQUIRE(absl::IsResourceExhausted(result.status()));
  CHECK_THAT(std::string(result.status().message()), Catch::Contains("--max_train_memory_bytes"));
  CHECK_THAT(std::string(result.status().message()), Catch::Contains("peak"));
  CHECK(f.Versions("hashed").empty());
  // 2^14 features: 1.75 MiB.
  config.mutable_config()->mutable_vectorizer()->mutable_hashing()->set_n_features(1 << 14);
  CHECK(Train(core, config, BatchMessage(kTexts, kLabels)).ok());
}

TEST_CASE("A Train whose caller gave up stores nothing") {
  Fixture f;
  DiscriminativeCore core(f.Options());
  auto session = core.StartTrain();
  REQUIRE(session->Add(ConfigMessage("late")).ok());
  REQUIRE(session->Add(BatchMessage(kTexts, kLabels)).ok());
  const exec::StopToken cancelled([] { return absl::CancelledError("client cancelled"); });
  CHECK(session->Finish(cancelled).status().code() == absl::StatusCode::kCancelled);
  CHECK(f.Versions("late").empty());
}

// The lists of a vectorizer configuration (a fixed vocabulary, a stop word list) are stored as the
// caller gave them, byte for byte: their order, a repeated stop word and any UTF-8 are kept,
// however the pipeline holds them in memory. The spec of a trained pipeline, the spec the Train
// stored (GetModel), the ToSpec of the pipeline loaded back from the store (as the Train's
// repository holds it, and as a fresh repository loads it) and the spec of an import of it are the
// same bytes.
TEST_CASE("A fixed vocabulary and stop words round-trip byte for byte through store and load") {
  const auto stop_word_list = [](v1::TextOptions* text) {
    for (const char* word : {"the", "a", "sat", "stra\u00dfe", "the", "zz", "dogs"}) {
      text->add_stop_word_list(word);
    }
  };
  v1::VectorizerConfig fixed;
  for (const char* term : {"zebra", "cat", "\u00e9cole", "the cat", "purred", "bark", "aa"}) {
    fixed.mutable_count()->add_vocabulary(term);
  }
  stop_word_list(fixed.mutable_count()->mutable_text());
  v1::VectorizerConfig fixed_tfidf = fixed;
  fixed_tfidf.mutable_tfidf()->set_sublinear_tf(true);
  v1::VectorizerConfig learned;
  stop_word_list(learned.mutable_count()->mutable_text());
  learned.mutable_count()->mutable_text()->set_ngram_max(2);
  v1::VectorizerConfig hashing;
  hashing.mutable_hashing()->set_n_features(64);
  hashing.mutable_hashing()->set_alternate_sign(false);  // MultinomialNB needs values >= 0
  stop_word_list(hashing.mutable_hashing()->mutable_text());
  v1::VectorizerConfig char_wb;  // a list the char analyzers ignore, as scikit-learn does
  char_wb.mutable_count()->mutable_text()->set_analyzer(v1::ANALYZER_CHAR_WB);
  stop_word_list(char_wb.mutable_count()->mutable_text());
  v1::VectorizerConfig english;  // the built-in list: stop_words, no stop_word_list
  english.mutable_count()->mutable_text()->set_stop_words("english");
  for (const v1::VectorizerConfig& vectorizer :
       {fixed, fixed_tfidf, learned, hashing, char_wb, english}) {
    CAPTURE(vectorizer.ShortDebugString());
    Fixture f;
    DiscriminativeCore core(f.Options());
    v1::TrainRequest config = ConfigMessage("m");
    *config.mutable_config()->mutable_vectorizer() = vectorizer;
    const v1::TrainRequest batch = BatchMessage(kTexts, kLabels);
    // The pipeline as trained, before it is stored.
    std::string trained;
    {
      auto trainer = Trainer::Create(config.config());
      REQUIRE(trainer.ok());
      REQUIRE(trainer->AddBatch(batch.batch()).ok());
      auto result = trainer->Finish();
      REQUIRE(result.ok());
      CHECK(result->pipeline.vectorizer_config().SerializeAsString() ==
            vectorizer.SerializeAsString());
      trained = result->pipeline.ToSpec().SerializeAsString();
    }
    v1::PipelineSpec spec;
    REQUIRE(spec.ParseFromString(trained));
    CHECK(spec.vectorizer().config().SerializeAsString() == vectorizer.SerializeAsString());
    REQUIRE(Train(core, config, batch).ok());
    v1::GetModelRequest get;
    get.mutable_model()->set_name("m");
    auto got = core.GetModel(get);
    REQUIRE(got.ok());
    CHECK(got->spec().SerializeAsString() == trained);
    auto held = f.repository.Get(get.model());
    REQUIRE(held.ok());
    CHECK((*held)->pipeline->ToSpec().SerializeAsString() == trained);
    registry::ModelRepository<LoadedPipeline> fresh(&f.store, ParseStoredPipeline,
                                                    absl::ZeroDuration());
    auto loaded = fresh.Get(get.model());
    REQUIRE(loaded.ok());
    CHECK((*loaded)->pipeline->ToSpec().SerializeAsString() == trained);
    CHECK((*loaded)->pipeline->vectorizer_config().SerializeAsString() ==
          vectorizer.SerializeAsString());
    v1::CreateModelRequest create;
    create.set_name("imported");
    *create.mutable_spec() = got->spec();
    REQUIRE(core.CreateModel(create).ok());
    get.mutable_model()->set_name("imported");
    auto imported = core.GetModel(get);
    REQUIRE(imported.ok());
    CHECK(imported->spec().SerializeAsString() == trained);
  }
}

}  // namespace
}  // namespace maas::discriminative

namespace maas::discriminative {
namespace {

// An audit found an empty stored file answered INVALID_ARGUMENT about the spec, blaming a caller
// whose request was valid: an empty file parses as an empty message.
TEST_CASE("a stored version that is empty or holds an invalid spec is DATA_LOSS") {
  const absl::Status empty = ParseStoredPipeline(std::string()).status();
  CHECK(absl::IsDataLoss(empty));
  CHECK_THAT(std::string(empty.message()), Catch::Contains("empty"));
  v1::StoredDiscriminativeModel stored;
  stored.mutable_info()->set_name("text");  // a ModelInfo but no vectorizer or classifier
  const absl::Status invalid = ParseStoredPipeline(stored.SerializeAsString()).status();
  CHECK(absl::IsDataLoss(invalid));
  CHECK_THAT(std::string(invalid.message()), Catch::Contains("stored spec"));
}

}  // namespace
}  // namespace maas::discriminative
