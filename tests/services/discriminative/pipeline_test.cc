#include "services/discriminative/core/pipeline.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/services/discriminative/text_batch.h"

namespace maas::discriminative {
namespace {

using Strings = std::vector<std::string>;

const Strings kCorpus = {"This is the first document.", "This document is the second document.",
                         "And this is the third one.", "Is this the first document?"};
const Strings kLabels = {"q", "p", "q", "r"};

using testing::Batch;

Pipeline MustFit() {
  auto pipeline = Pipeline::Fit(kCorpus, kLabels, {}, {}, {});
  REQUIRE(pipeline.ok());
  return *std::move(pipeline);
}

TEST_CASE("Trainer accumulates batches and fits like Pipeline::Fit") {
  auto trainer = Trainer::Create(v1::TrainConfig());
  REQUIRE(trainer.ok());
  REQUIRE(trainer->AddBatch(Batch({kCorpus[0], kCorpus[1]}, {kLabels[0], kLabels[1]})).ok());
  REQUIRE(trainer->AddBatch(v1::TextBatch()).ok());
  REQUIRE(trainer->AddBatch(Batch({kCorpus[2], kCorpus[3]}, {kLabels[2], kLabels[3]})).ok());
  CHECK(trainer->num_examples() == 4);
  auto result = trainer->Finish();
  REQUIRE(result.ok());
  CHECK(result->summary.num_documents() == 4);
  CHECK(result->summary.num_features() == 9);
  CHECK(Strings(result->summary.classes().begin(), result->summary.classes().end()) ==
        Strings{"p", "q", "r"});
  CHECK(result->summary.class_count(1) == 2.0);
  const Pipeline direct = MustFit();
  CHECK(result->pipeline.ToSpec().SerializeAsString() == direct.ToSpec().SerializeAsString());
}

TEST_CASE("Trainer validates examples and the stream") {
  auto trainer = Trainer::Create(v1::TrainConfig());
  REQUIRE(trainer.ok());
  auto status = trainer->Finish().status();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()),
             Catch::Contains("no training examples; send at least one batch after the config"));

  v1::TextBatch bad = Batch({"good text", "more text"}, {"a", ""});
  status = trainer->AddBatch(bad);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("example 1"));
  CHECK(trainer->num_examples() == 0);  // Nothing of a bad batch is kept.
  bad = Batch({"good text", "bad \xc0\xaf text"}, {"a", "b"});
  status = trainer->AddBatch(bad);  // decode_error strict: names the document
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("example 1 (example 1 of the stream)"));
  CHECK_THAT(std::string(status.message()), Catch::Contains("UTF-8"));
  bad = Batch({"good text"}, {"a"});
  bad.mutable_examples(0)->set_weight(-1.0);
  CHECK(trainer->AddBatch(bad).code() == absl::StatusCode::kInvalidArgument);
  bad.mutable_examples(0)->set_weight(std::nan(""));
  CHECK(trainer->AddBatch(bad).code() == absl::StatusCode::kInvalidArgument);
  bad.mutable_examples(0)->set_weight(0.0);
  CHECK(trainer->AddBatch(bad).ok());
  // Only one-character tokens: sklearn's empty vocabulary error.
  auto t2 = Trainer::Create(v1::TrainConfig());
  REQUIRE(t2.ok());
  REQUIRE(t2->AddBatch(Batch({"a b c", "1 2 3"}, {"x", "y"})).ok());
  status = t2->Finish().status();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("empty vocabulary"));

  v1::TrainConfig config;
  config.set_partial(true);  // on a vocabulary-learning vectorizer (partial_training_test.cc)
  CHECK(Trainer::Create(config).status().code() == absl::StatusCode::kInvalidArgument);
  config = v1::TrainConfig();
  config.mutable_vectorizer()->mutable_count()->mutable_text()->set_token_pattern("(?i)\\S+");
  CHECK(Trainer::Create(config).status().code() == absl::StatusCode::kInvalidArgument);
  config = v1::TrainConfig();
  config.mutable_classifier()->mutable_multinomial_nb()->set_alpha(-1);
  CHECK(Trainer::Create(config).status().code() == absl::StatusCode::kInvalidArgument);
}

// Random lowercase texts: nearly every character n-gram is new, so char n-grams up to 16 turn each
// byte into ~16 features.
Strings RandomTexts(size_t count, size_t bytes, uint32_t seed) {
  Strings texts(count);
  for (std::string& text : texts) {
    for (size_t i = 0; i < bytes; ++i) {
      seed = seed * 1664525u + 1013904223u;
      text.push_back(static_cast<char>('a' + (seed >> 24) % 26));
    }
  }
  return texts;
}

v1::TrainConfig CharGramsConfig() {
  v1::TrainConfig config;
  v1::TextOptions* text = config.mutable_vectorizer()->mutable_count()->mutable_text();
  text->set_analyzer(v1::ANALYZER_CHAR);
  text->set_ngram_min(1);
  text->set_ngram_max(16);
  return config;
}

TEST_CASE("Trainer refuses to hold more than max_train_memory_bytes and frees what it held") {
  PipelineLimits limits;
  limits.max_train_memory_bytes = 4 << 20;
  auto trainer = Trainer::Create(CharGramsConfig(), limits);
  REQUIRE(trainer.ok());
  // 40 texts of 4 KiB: ~2.6 M distinct n-grams, far above 4 MiB of vocabulary and rows.
  const Strings texts = RandomTexts(40, 4096, 7);
  const absl::Status status = trainer->AddBatch(Batch(texts, Strings(texts.size(), "a")));
  CHECK(status.code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(status.message()), Catch::Contains("--max_train_memory_bytes"));
  CHECK_THAT(std::string(status.message()), Catch::Contains("batch 0, example "));
  // Well before the end of the batch.
  CHECK(trainer->num_examples() < 20);
  // The fit is over: later batches and Finish answer the same error.
  CHECK(trainer->AddBatch(Batch({"more"}, {"a"})).code() == absl::StatusCode::kResourceExhausted);
  CHECK(trainer->Finish().status().code() == absl::StatusCode::kResourceExhausted);

  // Under a limit they fit, the first texts train.
  limits.max_train_memory_bytes = 64 << 20;
  auto roomy = Trainer::Create(CharGramsConfig(), limits);
  REQUIRE(roomy.ok());
  REQUIRE(roomy->AddBatch(Batch({texts[0], texts[1]}, {"a", "b"})).ok());
  CHECK(roomy->Finish().ok());
}

TEST_CASE("Trainer stops a text whose features alone pass max_train_memory_bytes within it") {
  PipelineLimits limits;
  limits.max_train_memory_bytes = 4 << 20;
  auto trainer = Trainer::Create(CharGramsConfig(), limits);
  REQUIRE(trainer.ok());
  // One text of 256 KiB: ~4 M distinct n-grams, ~400 MB had it been vectorized whole.
  const Strings texts = RandomTexts(1, 256 << 10, 9);
  const absl::Status status = trainer->AddBatch(Batch(texts, {"a"}));
  CHECK(status.code() == absl::StatusCode::kResourceExhausted);
  const std::string message(status.message());
  CHECK_THAT(message, Catch::Contains("batch 0, example 0"));
  CHECK_THAT(message, Catch::Contains("--max_train_memory_bytes"));
  // "... features take <held> bytes of memory so far": past the limit by at most one table growth.
  const std::string prefix = "features take ";
  const size_t at = message.find(prefix);
  REQUIRE(at != std::string::npos);
  const double held = std::stod(message.substr(at + prefix.size()));
  CHECK(held > static_cast<double>(limits.max_train_memory_bytes));
  CHECK(held < 3.0 * static_cast<double>(limits.max_train_memory_bytes));
}

TEST_CASE("Trainer asks its StopToken within a large batch") {
  auto trainer = Trainer::Create(v1::TrainConfig());
  REQUIRE(trainer.ok());
  int checks = 0;
  const exec::StopToken stop([&checks] {
    return ++checks >= 3 ? absl::CancelledError("client went away") : absl::OkStatus();
  });
  // 64 texts of 32 KiB: a check every 256 KiB, so the third comes after 24 texts.
  const Strings texts = RandomTexts(64, 32 << 10, 11);
  const absl::Status status = trainer->AddBatch(Batch(texts, Strings(texts.size(), "a")), stop);
  CHECK(status.code() == absl::StatusCode::kCancelled);
  CHECK_THAT(std::string(status.message()), Catch::Contains("client went away"));
  CHECK(checks == 3);
  CHECK(trainer->num_examples() == 24);
  CHECK(trainer->Finish().status().code() == absl::StatusCode::kCancelled);
}

TEST_CASE(
    "Classify, ClassifyCompact and Vectorize ask their StopToken within a chunk of long texts") {
  const Pipeline pipeline = MustFit();
  // One chunk of 64 texts of 64 KiB: asked before the chunk, then every 256 KiB (4 texts).
  const Strings texts = RandomTexts(64, 64 << 10, 3);
  int checks = 0;
  const exec::StopToken stop([&checks] {
    return ++checks >= 2 ? absl::CancelledError("deadline passed") : absl::OkStatus();
  });
  exec::InlineExecutor executor;
  std::vector<double> probabilities(texts.size() * pipeline.classes().size());
  std::vector<uint32_t> predicted(texts.size());
  CHECK(pipeline.ClassifyCompact(texts, stop, executor, probabilities.data(), predicted.data())
            .code() == absl::StatusCode::kCancelled);
  CHECK(checks == 2);
  checks = 0;
  CHECK(pipeline.Classify(texts, ClassifyOptions(), stop, executor).status().code() ==
        absl::StatusCode::kCancelled);
  CHECK(checks == 2);
  checks = 0;
  const exec::StopToken after_first([&checks] {
    return ++checks >= 1 ? absl::CancelledError("deadline passed") : absl::OkStatus();
  });
  CHECK(pipeline.Vectorize(texts, after_first).status().code() == absl::StatusCode::kCancelled);
  CHECK(checks == 1);
  checks = 0;
  CHECK(pipeline.PredictScores(texts, after_first).status().code() == absl::StatusCode::kCancelled);
  CHECK(checks == 1);
  // Without a stop request every text is classified.
  CHECK(pipeline
            .ClassifyCompact(texts, exec::StopToken(), executor, probabilities.data(),
                             predicted.data())
            .ok());
}

TEST_CASE("Pipeline Classify: labels, top_k, explanations, invalid UTF-8") {
  const Pipeline pipeline = MustFit();
  const Strings texts = {"this document is new", "first second third", "nothing known"};
  auto all = pipeline.Classify(texts, {});
  REQUIRE(all.ok());
  REQUIRE(all->size() == 3);
  const v1::Classification& first = (*all)[0];
  CHECK(first.label() == "q");
  REQUIRE(first.scores_size() == 3);
  CHECK(first.scores(0).label() == "p");  // Class order.
  CHECK(first.scores(0).probability() == Approx(0.3240865136192512).epsilon(1e-14));
  CHECK(first.scores(2).log_probability() == Approx(-1.3252312751365345).epsilon(1e-14));
  CHECK_FALSE(first.has_explanation());

  ClassifyOptions options;
  options.top_k = 2;
  options.explain = true;
  options.explain_features = 2;
  auto top = pipeline.Classify(texts, options);
  REQUIRE(top.ok());
  const v1::Classification& t = (*top)[0];
  REQUIRE(t.scores_size() == 2);
  CHECK(t.scores(0).label() == "q");  // 0.410 > 0.324 (p) > 0.266 (r)
  CHECK(t.scores(1).label() == "p");
  CHECK(t.explanation().runner_up() == "p");
  REQUIRE(t.explanation().features_size() == 2);
  // Closed form: contribution = count * (flp[q, f] - flp[p, f]); "is" and "this" give
  // -1.897... - (-2.0149...) > 0, "document" gives -2.30 - (-1.61) < 0.
  const v1::PipelineSpec spec = pipeline.ToSpec();
  const auto& flp = spec.classifier().feature_log_prob().values();
  const size_t f = pipeline.num_features();
  const uint32_t is = 3;  // Classic corpus vocabulary: and, document, first, is, ...
  REQUIRE(pipeline.vectorizer().FeatureName(is) == "is");
  CHECK(t.explanation().features(0).feature() == "is");
  CHECK(t.explanation().features(0).index() == is);
  CHECK(t.explanation().features(0).contribution() == flp[1 * f + is] - flp[0 * f + is]);
  CHECK(t.explanation().features(1).feature() == "this");
  // All-tie probabilities for the empty row: top_k keeps class order among ties.
  CHECK((*top)[2].scores(0).label() == "q");
  CHECK((*top)[2].scores(1).label() == "p");

  options.top_k = 10;
  auto many = pipeline.Classify(texts, options);
  REQUIRE(many.ok());
  CHECK((*many)[0].scores_size() == 3);

  auto bad = pipeline.Classify(Strings{"ok", "bad \xff"}, {});
  CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(bad.status().message()), Catch::Contains("texts[1]"));
  CHECK(pipeline.Vectorize(Strings{"\xed\xa0\x80"}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  auto rows = pipeline.Vectorize(texts);
  REQUIRE(rows.ok());
  CHECK((*rows)[0].indices == std::vector<uint32_t>{1, 3, 8});
}

TEST_CASE("Pipeline ToSpec / FromSpec round trip") {
  const Pipeline pipeline = MustFit();
  const v1::PipelineSpec spec = pipeline.ToSpec();
  CHECK(spec.vectorizer().vocabulary_size() == 9);
  CHECK(spec.classifier().feature_count().rows() == 3);
  CHECK(spec.classifier().feature_count().cols() == 9);
  CHECK(spec.classifier().feature_log_prob().values_size() == 27);
  auto back = Pipeline::FromSpec(spec);
  REQUIRE(back.ok());
  CHECK(back->ToSpec().SerializeAsString() == spec.SerializeAsString());
  const Strings texts = {"this document is new", "first second third"};
  auto a = pipeline.PredictScores(texts);
  auto b = back->PredictScores(texts);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  for (size_t i = 0; i < texts.size(); ++i) {
    CHECK((*a)[i].log_probability == (*b)[i].log_probability);
  }
}

TEST_CASE("Pipeline::FromSpec rejects malformed specs") {
  const v1::PipelineSpec good = MustFit().ToSpec();
  struct Case {
    const char* what;
    void (*mutate)(v1::PipelineSpec*);
    absl::StatusCode code;
  };
  const Case cases[] = {
      {"empty spec", [](v1::PipelineSpec* s) { s->Clear(); }, absl::StatusCode::kInvalidArgument},
      {"unsorted vocabulary",
       [](v1::PipelineSpec* s) {
         s->mutable_vectorizer()->mutable_vocabulary()->SwapElements(0, 1);
       },
       absl::StatusCode::kInvalidArgument},
      {"duplicate term",
       [](v1::PipelineSpec* s) { s->mutable_vectorizer()->set_vocabulary(1, "and"); },
       absl::StatusCode::kInvalidArgument},
      {"invalid UTF-8 term",
       [](v1::PipelineSpec* s) { s->mutable_vectorizer()->set_vocabulary(8, "zz\xff"); },
       absl::StatusCode::kInvalidArgument},
      {"idf without tfidf", [](v1::PipelineSpec* s) { s->mutable_vectorizer()->add_idf(1.0); },
       absl::StatusCode::kInvalidArgument},
      {"document_frequency length",
       [](v1::PipelineSpec* s) { s->mutable_vectorizer()->add_document_frequency(1); },
       absl::StatusCode::kInvalidArgument},
      {"hashing state with a vocabulary",
       [](v1::PipelineSpec* s) { s->mutable_vectorizer()->mutable_config()->mutable_hashing(); },
       absl::StatusCode::kInvalidArgument},
      {"token pattern that does not compile",
       [](v1::PipelineSpec* s) {
         s->mutable_vectorizer()
             ->mutable_config()
             ->mutable_count()
             ->mutable_text()
             ->set_token_pattern("[a-z+");
       },
       absl::StatusCode::kInvalidArgument},
      {"complement weights that are NaN",
       [](v1::PipelineSpec* s) {
         s->mutable_classifier()->mutable_config()->mutable_complement_nb();
         s->mutable_classifier()->mutable_feature_log_prob()->set_values(0, std::nan(""));
       },
       absl::StatusCode::kInvalidArgument},
      {"unsorted classes",
       [](v1::PipelineSpec* s) { s->mutable_classifier()->mutable_classes()->SwapElements(0, 1); },
       absl::StatusCode::kInvalidArgument},
      {"empty class", [](v1::PipelineSpec* s) { s->mutable_classifier()->set_classes(0, ""); },
       absl::StatusCode::kInvalidArgument},
      {"no classes",
       [](v1::PipelineSpec* s) {
         s->mutable_classifier()->clear_classes();
         s->mutable_classifier()->clear_class_count();
         s->mutable_classifier()->clear_class_log_prior();
       },
       absl::StatusCode::kInvalidArgument},
      {"class_count length",
       [](v1::PipelineSpec* s) { s->mutable_classifier()->add_class_count(1); },
       absl::StatusCode::kInvalidArgument},
      {"negative class_count",
       [](v1::PipelineSpec* s) { s->mutable_classifier()->set_class_count(0, -1); },
       absl::StatusCode::kInvalidArgument},
      {"class_log_prior length",
       [](v1::PipelineSpec* s) {
         s->mutable_classifier()->mutable_class_log_prior()->RemoveLast();
       },
       absl::StatusCode::kInvalidArgument},
      {"NaN prior",
       [](v1::PipelineSpec* s) { s->mutable_classifier()->set_class_log_prior(0, std::nan("")); },
       absl::StatusCode::kInvalidArgument},
      {"all priors -inf",
       [](v1::PipelineSpec* s) {
         for (int c = 0; c < 3; ++c) s->mutable_classifier()->set_class_log_prior(c, -HUGE_VAL);
       },
       absl::StatusCode::kInvalidArgument},
      {"flp shape",
       [](v1::PipelineSpec* s) {
         s->mutable_classifier()->mutable_feature_log_prob()->set_cols(8);
       },
       absl::StatusCode::kInvalidArgument},
      {"flp values count",
       [](v1::PipelineSpec* s) {
         s->mutable_classifier()->mutable_feature_log_prob()->mutable_values()->RemoveLast();
       },
       absl::StatusCode::kInvalidArgument},
      {"flp +inf",
       [](v1::PipelineSpec* s) {
         s->mutable_classifier()->mutable_feature_log_prob()->set_values(3, HUGE_VAL);
       },
       absl::StatusCode::kInvalidArgument},
      {"feature_count NaN",
       [](v1::PipelineSpec* s) {
         s->mutable_classifier()->mutable_feature_count()->set_values(0, std::nan(""));
       },
       absl::StatusCode::kInvalidArgument},
      {"feature_count missing",
       [](v1::PipelineSpec* s) { s->mutable_classifier()->clear_feature_count(); },
       absl::StatusCode::kInvalidArgument},
      {"class_prior length",
       [](v1::PipelineSpec* s) {
         s->mutable_classifier()->mutable_config()->mutable_multinomial_nb()->add_class_prior(1);
       },
       absl::StatusCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    v1::PipelineSpec spec = good;
    c.mutate(&spec);
    const absl::Status status = Pipeline::FromSpec(spec).status();
    INFO(c.what << ": " << status);
    CHECK(status.code() == c.code);
  }
  // -inf log-probabilities are accepted only where scikit-learn produces them (alpha=0 with
  // force_alpha=True); with alpha > 0 every probability is positive (issue 5 item 9).
  v1::PipelineSpec spec = good;
  spec.mutable_classifier()->mutable_feature_log_prob()->set_values(0, -HUGE_VAL);
  CHECK(Pipeline::FromSpec(spec).status().code() == absl::StatusCode::kInvalidArgument);
  spec.mutable_classifier()->mutable_config()->mutable_multinomial_nb()->set_alpha(0.0);
  CHECK(Pipeline::FromSpec(spec).ok());
  spec.mutable_classifier()->mutable_feature_log_prob()->set_values(0, 0.125);
  CHECK(Pipeline::FromSpec(spec).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("a custom token_pattern past its step limit fails the call, naming the text") {
  // (?:a|aa)+c backtracks exponentially on a run of a's without a c.
  const std::string hostile = std::string(300, 'a') + "!";
  const Strings texts = {"aac b", "aaac aac", "c aaaac", "aac aaaac"};
  const Strings labels = {"x", "y", "x", "y"};
  for (const bool hashing : {false, true}) {
    INFO("hashing " << hashing);
    v1::VectorizerConfig config;
    (hashing ? config.mutable_hashing()->mutable_text() : config.mutable_count()->mutable_text())
        ->set_token_pattern("(?:a|aa)+c");
    const auto is_limit = [](const absl::Status& status, const std::string& where) {
      INFO(status);
      CHECK(status.code() == absl::StatusCode::kInvalidArgument);
      CHECK_THAT(std::string(status.message()), Catch::StartsWith(where));
      CHECK_THAT(std::string(status.message()), Catch::Contains("match steps"));
    };
    Strings bad_texts = texts;
    bad_texts[2] = hostile;
    is_limit(Pipeline::Fit(bad_texts, labels, {}, config, {}).status(), "texts[2]: ");

    v1::TrainConfig train;
    *train.mutable_vectorizer() = config;
    auto trainer = Trainer::Create(train);
    REQUIRE(trainer.ok());
    REQUIRE(trainer->AddBatch(Batch({texts[0], texts[1]}, {labels[0], labels[1]})).ok());
    is_limit(trainer->AddBatch(Batch({texts[2], hostile}, {labels[2], labels[3]})),
             "batch 1, example 1 (example 3 of the stream): ");
    // The fit is unusable from then on.
    is_limit(trainer->AddBatch(Batch({texts[3]}, {labels[3]})), "batch 1, example 1");
    is_limit(trainer->Finish().status(), "batch 1, example 1");

    auto pipeline = Pipeline::Fit(texts, labels, {}, config, {});
    REQUIRE(pipeline.ok());
    const Strings queries = {"aac", hostile, "aaac"};
    is_limit(pipeline->Vectorize(queries).status(), "texts[1]: ");
    is_limit(pipeline->PredictScores(queries).status(), "texts[1]: ");
    is_limit(pipeline->Classify(queries, {}).status(), "texts[1]: ");
    std::vector<double> probabilities(queries.size() * 2);
    std::vector<uint32_t> predicted(queries.size());
    exec::InlineExecutor executor;
    is_limit(pipeline->ClassifyCompact(queries, exec::StopToken(), executor, probabilities.data(),
                                       predicted.data()),
             "texts[1]: ");
    // The same pipeline (and its pooled scratch) still serves ordinary texts.
    auto good = pipeline->Classify(Strings{"aac", "aaac"}, {});
    REQUIRE(good.ok());
    CHECK(good->size() == 2);
  }
}

TEST_CASE(
    "Rows that sublinear tf-idf over signed hashing makes NaN or inf are refused as sklearn") {
  // "document" hashes to -1 in feature 0 of 16, "and is" to +1 - 1 = 0 in feature 13 (the
  // Python oracle test checks both against scikit-learn): log(x) + 1 is NaN, resp. -inf.
  // scikit-learn's transform keeps them without a norm, and its classifiers refuse them; with a
  // norm the transform refuses them. maas classified them (BernoulliNB, binarizing them to 0, with
  // finite probabilities).
  const Strings queries = {"third", "document", "and is"};
  for (const bool l2 : {false, true}) {
    for (const int kind : {0, 1, 2}) {
      INFO("l2 " << l2 << ", classifier " << kind);
      v1::VectorizerConfig config;
      config.mutable_hashing()->set_n_features(16);
      config.mutable_hashing()->set_norm(v1::NORM_NONE);
      config.mutable_tfidf()->set_sublinear_tf(true);
      config.mutable_tfidf()->set_norm(l2 ? v1::NORM_L2 : v1::NORM_NONE);
      v1::ClassifierConfig classifier;
      if (kind == 1) classifier.mutable_complement_nb();
      if (kind == 2) classifier.mutable_bernoulli_nb();
      auto pipeline = Pipeline::Fit({"second", "third"}, {"a", "b"}, {}, config, classifier);
      REQUIRE(pipeline.ok());
      const auto refused = [&](const absl::Status& status, const std::string& text, double value) {
        INFO(status);
        CHECK(status.code() == absl::StatusCode::kInvalidArgument);
        const std::string message(status.message());
        CHECK_THAT(message, Catch::StartsWith(absl::StrCat(text, ": its feature ")));
        CHECK_THAT(message, Catch::Contains(absl::StrCat("has the value ", value)));
        CHECK_THAT(message, Catch::Contains(l2 ? "(\"Input contains " : "(\"Input X contains "));
        CHECK_THAT(message,
                   Catch::Contains(std::isnan(value) ? "NaN\")" : "infinity or a value too large"));
      };
      const double nan = std::numeric_limits<double>::quiet_NaN();
      const double minus_inf = -std::numeric_limits<double>::infinity();
      auto rows = pipeline->Vectorize(queries);
      if (l2) {
        refused(rows.status(), "texts[1]", nan);
        refused(pipeline->Vectorize(Strings{"third", "and is"}).status(), "texts[1]", minus_inf);
      } else {
        REQUIRE(rows.ok());
        CHECK(std::all_of((*rows)[0].values.begin(), (*rows)[0].values.end(),
                          [](double v) { return std::isfinite(v); }));
        REQUIRE((*rows)[1].indices == std::vector<uint32_t>{0});
        CHECK(std::isnan((*rows)[1].values[0]));
        REQUIRE((*rows)[2].indices == std::vector<uint32_t>{13});
        CHECK((*rows)[2].values[0] == minus_inf);
      }
      for (const auto& [texts, value] : {std::pair{Strings{"third", "document"}, nan},
                                         {Strings{"third", "and is"}, minus_inf}}) {
        refused(pipeline->PredictScores(texts).status(), "texts[1]", value);
        refused(pipeline->Classify(texts, {}).status(), "texts[1]", value);
        std::vector<double> probabilities(texts.size() * 2);
        std::vector<uint32_t> predicted(texts.size());
        exec::InlineExecutor executor;
        refused(pipeline->ClassifyCompact(texts, exec::StopToken(), executor, probabilities.data(),
                                          predicted.data()),
                "texts[1]", value);
      }
      auto good = pipeline->Classify(Strings{"third", "second third"}, {});
      REQUIRE(good.ok());
      CHECK((*good)[0].label() == "b");
    }
  }
}

// ClassifyCompact's probabilities and predictions of `queries` equal PredictScores's, text by
// text.
void CheckCompactEqualsScores(const Pipeline& pipeline, const Strings& queries) {
  auto scores = pipeline.PredictScores(queries);
  REQUIRE(scores.ok());
  const size_t k = pipeline.classes().size();
  std::vector<double> probabilities(queries.size() * k, -1.0);
  std::vector<uint32_t> predicted(queries.size(), 99);
  exec::InlineExecutor executor;
  REQUIRE(pipeline
              .ClassifyCompact(queries, exec::StopToken(), executor, probabilities.data(),
                               predicted.data())
              .ok());
  for (size_t i = 0; i < queries.size(); ++i) {
    INFO("text " << i << ": " << queries[i]);
    CHECK(predicted[i] == (*scores)[i].predicted);
    for (size_t c = 0; c < k; ++c) CHECK(probabilities[i * k + c] == (*scores)[i].probability[c]);
  }
}

TEST_CASE(
    "ClassifyCompact equals PredictScores for every text of a batch of several chunks and "
    "softmax blocks") {
  // 64-text chunks and 16-text softmax blocks: 2 whole chunks, then a chunk of 2 whole blocks
  // and 5 texts; each text's words picked so that its probabilities differ from its neighbours'.
  const std::vector<std::string> words = {"first", "document", "second", "third", "one",
                                          "this",  "is",       "the",    "and"};
  Strings queries;
  for (size_t i = 0; i < 2 * 64 + 2 * 16 + 5; ++i) {
    std::string text;
    for (size_t w = 0; w <= i % 7; ++w) text += words[(i * 5 + w * w) % words.size()] + " ";
    queries.push_back(text);
  }
  auto pipeline = Pipeline::Fit(kCorpus, kLabels, {}, v1::VectorizerConfig(), {});
  REQUIRE(pipeline.ok());
  CheckCompactEqualsScores(*pipeline, queries);
}

TEST_CASE(
    "ClassifyCompact (ASCII texts undecoded on the vectorizer's ASCII path) equals "
    "PredictScores, and names an invalid text") {
  const Strings train = {"Alpha beta_1 GAMMA delta", "beta beta Epsilon zeta_2",
                         "averyveryverylongtokenindeed alpha", "caf\xc3\xa9 na\xc3\xafve alpha"};
  const Strings labels = {"x", "y", "x", "y"};
  // ASCII (mixed case, a token over 15 bytes, one at the very end) and not ASCII, in one batch.
  const Strings queries = {"ALPHA Beta beta AVERYVERYVERYLONGTOKENINDEED", "caf\xc3\xa9 alpha", "",
                           "zeta_2 GAMMA delta beta_1", "Na\xc3\xafve"};
  for (const bool tfidf : {false, true}) {
    for (const v1::DecodeError decode : {v1::DECODE_ERROR_STRICT, v1::DECODE_ERROR_REPLACE}) {
      INFO("tfidf " << tfidf << " decode_error " << decode);
      v1::VectorizerConfig config;
      if (tfidf) config.mutable_tfidf();
      config.mutable_count()->mutable_text()->set_decode_error(decode);
      auto pipeline = Pipeline::Fit(train, labels, {}, config, {});
      REQUIRE(pipeline.ok());
      CheckCompactEqualsScores(*pipeline, queries);
      std::vector<double> probabilities(queries.size() * 2);
      std::vector<uint32_t> predicted(queries.size());
      exec::InlineExecutor executor;
      Strings invalid = queries;
      invalid[3] = "alpha \xff beta";
      const absl::Status status = pipeline->ClassifyCompact(invalid, exec::StopToken(), executor,
                                                            probabilities.data(), predicted.data());
      if (decode == v1::DECODE_ERROR_STRICT) {
        CHECK(status.code() == absl::StatusCode::kInvalidArgument);
        CHECK_THAT(std::string(status.message()), Catch::StartsWith("texts[3]: "));
      } else {
        CHECK(status.ok());
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// The stored form (what the model store's file holds): a fixed vocabulary once, as the state's.

// A config with a fixed vocabulary in no particular order (feature i is vocabulary[i]) and a stop
// word list with a repeat, as a caller may give them.
v1::VectorizerConfig FixedVocabularyConfig(bool tfidf) {
  v1::VectorizerConfig config;
  for (const char* term : {"this", "document", "zebra", "first", "\u00e9cole", "is", "and"}) {
    config.mutable_count()->add_vocabulary(term);
  }
  for (const char* word : {"the", "one", "the"}) {
    config.mutable_count()->mutable_text()->add_stop_word_list(word);
  }
  if (tfidf) config.mutable_tfidf()->set_sublinear_tf(true);
  return config;
}

Pipeline MustFit(const v1::VectorizerConfig& vectorizer) {
  auto pipeline = Pipeline::Fit(kCorpus, kLabels, {}, vectorizer, {});
  REQUIRE(pipeline.ok());
  return *std::move(pipeline);
}

// The stored spec of a pipeline with a fixed vocabulary leaves the list out of the config (it is
// the state's vocabulary, same terms, same order) and says so; it loads as the same pipeline, and
// expanded it is the full spec byte for byte. So does the full spec (every version stored before
// the stored form existed) load through the same path.
TEST_CASE("A fixed vocabulary is stored once and loads back as the full spec") {
  for (const bool tfidf : {false, true}) {
    CAPTURE(tfidf);
    const v1::VectorizerConfig given = FixedVocabularyConfig(tfidf);
    const Pipeline pipeline = MustFit(given);
    const v1::PipelineSpec full = pipeline.ToSpec();
    REQUIRE(full.vectorizer().config().SerializeAsString() == given.SerializeAsString());
    const v1::PipelineSpec stored = pipeline.ToStoredSpec();
    CHECK(stored.vectorizer().fixed_vocabulary_in_state());
    CHECK(stored.vectorizer().config().count().vocabulary().empty());
    CHECK(stored.vectorizer().vocabulary().size() == given.count().vocabulary().size());
    CHECK(std::equal(stored.vectorizer().vocabulary().begin(),
                     stored.vectorizer().vocabulary().end(), given.count().vocabulary().begin()));
    // Only the list moved: the stop words and everything else are as in the full spec.
    v1::PipelineSpec without = full;
    without.mutable_vectorizer()->mutable_config()->mutable_count()->clear_vocabulary();
    without.mutable_vectorizer()->set_fixed_vocabulary_in_state(true);
    CHECK(stored.SerializeAsString() == without.SerializeAsString());
    CHECK(stored.ByteSizeLong() < full.ByteSizeLong());
    v1::PipelineSpec expanded = stored;
    Pipeline::ExpandStoredSpec(&expanded);
    CHECK(expanded.SerializeAsString() == full.SerializeAsString());
    const Strings texts = {"this document is new", "\u00e9cole and zebra", "the one"};
    const auto scores = pipeline.PredictScores(texts);
    REQUIRE(scores.ok());
    for (const v1::PipelineSpec& form : {stored, full}) {
      v1::PipelineSpec taken = form;
      auto loaded = Pipeline::FromStoredSpec(&taken);
      REQUIRE(loaded.ok());
      CHECK(loaded->ToSpec().SerializeAsString() == full.SerializeAsString());
      CHECK(loaded->ToStoredSpec().SerializeAsString() == stored.SerializeAsString());
      CHECK(loaded->vectorizer_config().SerializeAsString() == given.SerializeAsString());
      const auto again = loaded->PredictScores(texts);
      REQUIRE(again.ok());
      for (size_t i = 0; i < texts.size(); ++i) {
        CHECK((*again)[i].log_probability == (*scores)[i].log_probability);
      }
    }
  }
}

// Nothing else is left out: a learned vocabulary's state repeats no list of its config, a hashing
// vectorizer has no vocabulary, and a full spec stays full through ExpandStoredSpec.
TEST_CASE("The stored spec of a learned vocabulary or hashing is the full spec") {
  v1::VectorizerConfig learned;
  learned.mutable_count()->mutable_text()->add_stop_word_list("the");
  v1::VectorizerConfig hashing;
  hashing.mutable_hashing()->set_n_features(32);
  hashing.mutable_hashing()->set_alternate_sign(false);
  hashing.mutable_hashing()->mutable_text()->add_stop_word_list("the");
  for (const v1::VectorizerConfig& config : {learned, hashing}) {
    CAPTURE(config.ShortDebugString());
    const Pipeline pipeline = MustFit(config);
    const v1::PipelineSpec full = pipeline.ToSpec();
    CHECK(pipeline.ToStoredSpec().SerializeAsString() == full.SerializeAsString());
    v1::PipelineSpec expanded = full;
    Pipeline::ExpandStoredSpec(&expanded);
    CHECK(expanded.SerializeAsString() == full.SerializeAsString());
  }
}

// fixed_vocabulary_in_state is the model store's own field: an import (FromSpec, CreateModel's
// path) refuses it, so that the API keeps one way to give a fixed vocabulary; and a stored spec
// that uses it wrongly does not load.
TEST_CASE("A spec in the stored form is refused by an import and checked by a load") {
  const v1::PipelineSpec stored = MustFit(FixedVocabularyConfig(false)).ToStoredSpec();
  REQUIRE(stored.vectorizer().fixed_vocabulary_in_state());
  absl::Status status = Pipeline::FromSpec(stored).status();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("fixed_vocabulary_in_state"));
  v1::PipelineSpec taken = stored;
  CHECK(Pipeline::FromSpec(&taken).status().code() == absl::StatusCode::kInvalidArgument);
  const auto load = [](v1::PipelineSpec spec) { return Pipeline::FromStoredSpec(&spec).status(); };
  REQUIRE(load(stored).ok());
  // The list in the config as well: one of the two forms, not both.
  v1::PipelineSpec both = stored;
  both.mutable_vectorizer()->mutable_config()->mutable_count()->add_vocabulary("this");
  status = load(both);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("fixed_vocabulary_in_state"));
  // A term twice: refused as the config's list would be.
  v1::PipelineSpec twice = stored;
  twice.mutable_vectorizer()->set_vocabulary(5, "document");
  status = load(twice);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("Duplicate term in vocabulary"));
  // A long term (past the index's inline 15 bytes) twice as well.
  v1::PipelineSpec long_twice = stored;
  long_twice.mutable_vectorizer()->set_vocabulary(0, "a term of more than fifteen bytes");
  long_twice.mutable_vectorizer()->set_vocabulary(6, "a term of more than fifteen bytes");
  CHECK_THAT(std::string(load(long_twice).message()),
             Catch::Contains("Duplicate term in vocabulary: 'a term of more than fifteen bytes'"));
  // Without it, the same state is a learned vocabulary, which must be sorted.
  v1::PipelineSpec unmarked = stored;
  unmarked.mutable_vectorizer()->set_fixed_vocabulary_in_state(false);
  CHECK(load(unmarked).code() == absl::StatusCode::kInvalidArgument);
  // A hashing vectorizer has no fixed vocabulary.
  v1::VectorizerConfig hashing;
  hashing.mutable_hashing()->set_n_features(32);
  hashing.mutable_hashing()->set_alternate_sign(false);
  v1::PipelineSpec hashed = MustFit(hashing).ToSpec();
  hashed.mutable_vectorizer()->set_fixed_vocabulary_in_state(true);
  status = load(hashed);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("has no fixed vocabulary"));
}

TEST_CASE("A Train's peak counts the tables its classifier's fit holds: BernoulliNB's four") {
  // BernoulliNB's BuildTable holds the counts, feature_log_prob_, the delta matrix and the weight
  // table at once; the estimate counted three tables for every kind, so a BernoulliNB fit whose
  // training rows dominate its peak was admitted 8 bytes per class x feature short.
  v1::ClassifierConfig multinomial, complement, bernoulli;
  multinomial.mutable_multinomial_nb();
  complement.mutable_complement_nb();
  bernoulli.mutable_bernoulli_nb();
  const auto tables = [](const v1::ClassifierConfig& config) {
    const absl::StatusOr<uint32_t> n = ClassifierFitTables(config);
    REQUIRE(n.ok());
    return *n;
  };
  CHECK(tables(multinomial) == 3);
  CHECK(tables(complement) == 3);
  CHECK(tables(bernoulli) == 4);
  // 2 classes x 1000 features; rows of 1 MB, far above the store's 56 bytes per cell.
  constexpr uint64_t kClasses = 2, kFeatures = 1000, kRows = 1'000'000;
  PipelineLimits limits;
  limits.max_train_memory_bytes = kRows + kClasses * kFeatures * 3 * sizeof(double);
  CHECK(CheckTrainPeak(kClasses, kFeatures, 0, kRows, tables(multinomial), limits).ok());
  CHECK(CheckTrainPeak(kClasses, kFeatures, 0, kRows, tables(complement), limits).ok());
  const absl::Status refused =
      CheckTrainPeak(kClasses, kFeatures, 0, kRows, tables(bernoulli), limits);
  CHECK(absl::IsResourceExhausted(refused));
  CHECK_THAT(std::string(refused.message()), Catch::Contains("--max_train_memory_bytes"));
  limits.max_train_memory_bytes += kClasses * kFeatures * sizeof(double);
  CHECK(CheckTrainPeak(kClasses, kFeatures, 0, kRows, tables(bernoulli), limits).ok());
}

}  // namespace
}  // namespace maas::discriminative
