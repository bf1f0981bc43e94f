#include "services/discriminative/core/count_vectorizer.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "services/discriminative/core/token_pattern.h"
#include "tests/services/discriminative/vocabulary.h"

namespace maas::discriminative {
namespace {

using Strings = std::vector<std::string>;

const Strings kCorpus = {"This is the first document.", "This document is the second document.",
                         "And this is the third one.", "Is this the first document?"};

CountVectorizer::FitResult MustFit(const Strings& texts, const CountVectorizerOptions& options) {
  auto fit = CountVectorizer::FitTransform(texts, options);
  REQUIRE(fit.ok());
  return *std::move(fit);
}

// 300 texts of up to 25 words of `pool`, each followed by one of `separators`, drawn by an LCG
// from `seed`; words with a first byte >= 0x80 only in every third text (2/3 of them ASCII).
Strings MixedTexts(const Strings& pool, const Strings& separators, uint64_t seed) {
  Strings texts;
  uint64_t state = seed;
  for (int t = 0; t < 300; ++t) {
    std::string text;
    for (int k = 0; k < 25; ++k) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      const std::string& word = pool[(state >> 33) % pool.size()];
      if (t % 3 != 0 && static_cast<unsigned char>(word[0]) >= 0x80) continue;
      text += word + separators[(state >> 20) % separators.size()];
    }
    texts.push_back(text);
  }
  return texts;
}

// The fits of `texts` with the two options give the same vocabulary and rows (in storage order),
// or fail alike, and their transforms of each text the same rows.
void CheckSameFitAndTransform(const Strings& texts, const CountVectorizerOptions& fast,
                              const CountVectorizerOptions& slow) {
  auto a = CountVectorizer::FitTransform(texts, fast);
  auto b = CountVectorizer::FitTransform(texts, slow);
  REQUIRE(a.ok() == b.ok());
  if (!a.ok()) return;
  CHECK(testing::Vocabulary(a->vectorizer) == testing::Vocabulary(b->vectorizer));
  CHECK(a->rows.indices == b->rows.indices);
  CHECK(a->rows.values == b->rows.values);
  CHECK(a->rows.offsets == b->rows.offsets);
  for (const std::string& text : texts) {
    const SparseVector x = a->vectorizer.Transform(text);
    const SparseVector y = b->vectorizer.Transform(text);
    REQUIRE(x.indices == y.indices);
    REQUIRE(x.values == y.values);
  }
}

TEST_CASE("CountVectorizer orders features by code point (spec 2.2)") {
  CountVectorizerOptions keep_case;
  keep_case.analyzer.lowercase = false;
  CHECK(testing::Vocabulary(
            MustFit({"zeta Zeta éclair eclair Éclair 10 9 _x ab"}, keep_case).vectorizer) ==
        Strings{"10", "Zeta", "_x", "ab", "eclair", "zeta", "Éclair", "éclair"});
  // U+10428 (Deseret, lowercased from U+10400) sorts after U+FF41 in code point order, unlike
  // UTF-16.
  CHECK(testing::Vocabulary(MustFit({"\U00010400\U00010400 \uFF21\uFF21 zz"}, {}).vectorizer) ==
        Strings{"zz", "\uFF41\uFF41", "\U00010428\U00010428"});
}

TEST_CASE("CountVectorizer orders terms that share their first 8 or 16 bytes by code point") {
  // Word bigrams and trigrams that differ before byte 8, in bytes 8-15, past byte 16, only in
  // length (a term that is another's prefix), and char n-grams holding U+0000 (the zero padding
  // of a short term's prefix must not tie it with a longer one wrongly).
  std::string text;
  const Strings words = {
      "common",          "commonality",      "commons", "commo", "zz", "common_prefix_x",
      "common_prefix_y", "common_prefix_xy", "a0",      "a00",   "b"};
  uint64_t state = 7;
  for (int i = 0; i < 400; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    text += words[(state >> 33) % words.size()] + " ";
  }
  CountVectorizerOptions trigrams;
  trigrams.analyzer.ngram_max = 3;
  CountVectorizerOptions chars;
  chars.analyzer.kind = AnalyzerKind::kChar;
  chars.analyzer.ngram_min = 9;
  chars.analyzer.ngram_max = 18;
  std::string with_nul = text;
  for (size_t i = 5; i < with_nul.size(); i += 37) with_nul[i] = '\0';
  for (const auto& [options, corpus] :
       {std::pair{trigrams, text}, std::pair{chars, with_nul}, std::pair{chars, text}}) {
    const Strings vocabulary = testing::Vocabulary(MustFit({corpus}, options).vectorizer);
    Strings sorted = vocabulary;
    std::sort(sorted.begin(), sorted.end());  // byte order of UTF-8 = code point order
    CHECK(vocabulary.size() > 100);
    CHECK(vocabulary == sorted);
    CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
  }
}

TEST_CASE("CountVectorizer with a run token_pattern: the word runs' path equals ICU's matching") {
  // Mostly ASCII texts with capitals (the pattern judged on the lowercased bytes), digits,
  // underscores and punctuation, some with accented letters; fit and transform, lowercase on and
  // off, stop words on and off.
  const Strings pool = {"alpha",
                        "Beta",
                        "GAMMA",
                        "dElTa",
                        "x9",
                        "a_b",
                        "ZZ",
                        "q",
                        "it's",
                        "e-mail",
                        "café",
                        "ÉCOLE",
                        "naïve",
                        "2024",
                        "the",
                        "The",
                        "and",
                        "Ab",
                        "abcdefghijklmnopq"};
  const Strings texts = MixedTexts(pool, {", ", " ", " ", " "}, 11);
  for (const char* pattern :
       {R"([a-z]{2,})", R"(\b[a-z]{2,}\b)", R"([^\s,.]{2,})", R"(\w\w+)", R"([A-Z]{2,})",
        R"((?a)\b\w{3,}\b)", R"(\w+)", R"(\S+)", R"([^\W\d_]{3,})", R"([^\s,.]+)"}) {
    for (const bool lowercase : {true, false}) {
      for (const bool stop : {false, true}) {
        INFO(pattern << ", lowercase " << lowercase << ", stop words " << stop);
        const auto runs = TokenPattern::Compile(pattern);
        const auto icu = TokenPattern::Compile(pattern, /*use_runs=*/false);
        REQUIRE(runs.ok());
        REQUIRE(icu.ok());
        REQUIRE((*runs)->uses_runs());
        CountVectorizerOptions fast, slow;
        fast.analyzer.lowercase = slow.analyzer.lowercase = lowercase;
        if (stop) fast.analyzer.stop_words = slow.analyzer.stop_words = {"the", "and", "ab"};
        fast.analyzer.token_pattern = *runs;
        slow.analyzer.token_pattern = *icu;
        // e.g. [A-Z]{2,} after lowercasing: the same empty vocabulary, refused alike
        CheckSameFitAndTransform(texts, fast, slow);
      }
    }
  }
}

TEST_CASE("CountVectorizer word n-grams from the runs equal ICU's matching in fit and transform") {
  // Tokens joined by one space (an n-gram is then a stretch of the text) or by anything else, one-
  // character tokens (dropped by \w\w+, kept by \w+), n-grams of up to 15 bytes and longer,
  // capitals, and code points >= 0x80 in a third of the texts. The fit's rows are compared in
  // storage order, which is the order of first occurrence (_word_ngrams's: the unigrams, then each
  // n in turn). With stop words, dropped from the tokens before the n-grams.
  const Strings pool = {"the", "cat",  "sat",   "on",    "The",        "CAT",      "a",
                        "I",   "x9",   "a_b",   "2024",  "abcdefghij", "abcdefgh", "it's",
                        "Ab",  "café", "ÉCOLE", "naïve", "Straße"};
  const Strings separators = {" ", " ", " ", " ", "  ", "\n", ", ", "-", " a ", "\t"};
  const Strings texts = MixedTexts(pool, separators, 5);
  for (const char* pattern : {R"((?u)\b\w\w+\b)", R"(\w+)", R"([a-z]{2,})"}) {
    for (const auto& [low, high] : {std::pair{1u, 2u}, std::pair{2u, 2u}, std::pair{1u, 3u},
                                    std::pair{2u, 4u}, std::pair{3u, 3u}}) {
      for (const auto& [lowercase, stop] : {std::pair{true, false}, std::pair{false, false},
                                            std::pair{true, true}, std::pair{false, true}}) {
        INFO(pattern << ", ngram_range (" << low << ", " << high << "), lowercase " << lowercase
                     << ", stop words " << stop);
        const auto icu = TokenPattern::Compile(pattern, /*use_runs=*/false);
        REQUIRE(icu.ok());
        CountVectorizerOptions fast, slow;
        fast.analyzer.lowercase = slow.analyzer.lowercase = lowercase;
        fast.analyzer.ngram_min = slow.analyzer.ngram_min = low;
        fast.analyzer.ngram_max = slow.analyzer.ngram_max = high;
        // A lowercase stop word, a capitalised one, a one-character token of \w+.
        if (stop) fast.analyzer.stop_words = slow.analyzer.stop_words = {"the", "CAT", "a"};
        if (std::string(pattern) != R"((?u)\b\w\w+\b)") {
          const auto runs = TokenPattern::Compile(pattern);
          REQUIRE(runs.ok());
          REQUIRE((*runs)->uses_runs());
          fast.analyzer.token_pattern = *runs;
        }  // else the default pattern (null)
        slow.analyzer.token_pattern = *icu;
        REQUIRE(Analyzer(fast.analyzer).RunNgrams());
        REQUIRE_FALSE(Analyzer(slow.analyzer).RunNgrams());
        CheckSameFitAndTransform(texts, fast, slow);
      }
    }
  }
  // A fixed vocabulary may hold a stop word and n-grams across one: never counted, as no token is
  // a stop word.
  CountVectorizerOptions fast;
  fast.analyzer.ngram_max = 2;
  fast.analyzer.stop_words = {"the", "a"};
  fast.fixed_vocabulary = {"the", "cat", "the cat", "cat sat", "sat the", "a", "on cat", "sat on"};
  CountVectorizerOptions slow = fast;
  const auto icu = TokenPattern::Compile(R"((?u)\b\w\w+\b)", /*use_runs=*/false);
  REQUIRE(icu.ok());
  slow.analyzer.token_pattern = *icu;
  const std::string sentence = "the cat sat the on the cat a sat on cat";
  Strings with_sentence = texts;
  with_sentence.push_back(sentence);
  CheckSameFitAndTransform(with_sentence, fast, slow);
  auto fit = CountVectorizer::FitTransform(texts, fast);
  REQUIRE(fit.ok());
  // cat, cat sat, on cat, sat on
  CHECK(fit->vectorizer.Transform(sentence).indices == std::vector<uint32_t>{1, 3, 6, 7});
}

TEST_CASE("CountVectorizer keeps n-grams that equal a stop word (only tokens are stop words)") {
  // scikit-learn drops stop words from the tokens, before n-grams: a stop word with a space stays
  // a bigram term, and the char analyzers ignore stop words (checked with scikit-learn 1.9.1).
  CountVectorizerOptions bigrams;
  bigrams.analyzer.ngram_max = 2;
  bigrams.analyzer.stop_words = {"new york", "the"};
  CHECK(testing::Vocabulary(MustFit({"the new york city", "new york"}, bigrams).vectorizer) ==
        Strings{"city", "new", "new york", "york", "york city"});
  CountVectorizerOptions chars;
  chars.analyzer.kind = AnalyzerKind::kCharWb;
  chars.analyzer.ngram_min = chars.analyzer.ngram_max = 2;
  chars.analyzer.stop_words = {"ab"};
  CHECK(testing::Vocabulary(MustFit({"ab abc"}, chars).vectorizer) ==
        Strings{" a", "ab", "b ", "bc", "c "});
}

TEST_CASE("CountVectorizer fit_transform and transform on the classic corpus (spec E.2)") {
  const CountVectorizer::FitResult fit = MustFit(kCorpus, {});
  CHECK(testing::Vocabulary(fit.vectorizer) ==
        Strings{"and", "document", "first", "is", "one", "second", "the", "third", "this"});
  CHECK(fit.vectorizer.num_documents() == 4);
  CHECK(fit.vectorizer.document_frequency() == std::vector<uint64_t>{1, 3, 2, 4, 1, 1, 4, 1, 4});
  REQUIRE(fit.rows.size() == 4);
  // Storage order (spec 2.8): ascending order of first occurrence in the corpus (this, is, the,
  // first, document, second, ...), final column numbers.
  CHECK(fit.rows[0].indices == std::vector<uint32_t>{8, 3, 6, 2, 1});
  CHECK(fit.rows[1].indices == std::vector<uint32_t>{8, 3, 6, 1, 5});
  CHECK(fit.rows[1].values == std::vector<double>{1, 1, 1, 2, 1});
  const SparseVector a = fit.vectorizer.Transform("this document is new");
  CHECK(a.indices == std::vector<uint32_t>{1, 3, 8});
  CHECK(a.values == std::vector<double>{1, 1, 1});
  const SparseVector none = fit.vectorizer.Transform("nothing known");
  CHECK(none.indices.empty());
  CHECK(fit.vectorizer.FeatureIndex("third") == 7u);
  CHECK_FALSE(fit.vectorizer.FeatureIndex("new").has_value());

  CountVectorizerOptions binary;
  binary.binary = true;
  const CountVectorizer::FitResult b = MustFit(kCorpus, binary);
  CHECK(b.rows[1].values == std::vector<double>{1, 1, 1, 1, 1});
  CHECK(b.vectorizer.Transform("document document").values == std::vector<double>{1});
}

TEST_CASE("CountVectorizer min_df / max_df pruning (spec 2.4 table)") {
  const Strings docs = {"aa bb cc", "aa bb", "aa dd", "ee ff"};
  const auto vocab = [&](DocumentFrequencyBound min_df, DocumentFrequencyBound max_df) {
    CountVectorizerOptions options;
    options.min_df = min_df;
    options.max_df = max_df;
    return testing::Vocabulary(MustFit(docs, options).vectorizer);
  };
  const DocumentFrequencyBound count1{false, 1}, all{true, 1.0};
  CHECK(vocab(count1, {false, 1}) == Strings{"cc", "dd", "ee", "ff"});
  CHECK(vocab(count1, all) == Strings{"aa", "bb", "cc", "dd", "ee", "ff"});
  for (DocumentFrequencyBound min_df :
       {DocumentFrequencyBound{false, 2}, DocumentFrequencyBound{true, 0.5},
        DocumentFrequencyBound{true, 0.26}}) {
    CHECK(vocab(min_df, all) == Strings{"aa", "bb"});
  }
  for (DocumentFrequencyBound max_df :
       {DocumentFrequencyBound{true, 0.5}, DocumentFrequencyBound{true, 0.74},
        DocumentFrequencyBound{false, 2}}) {
    CHECK(vocab(count1, max_df) == Strings{"bb", "cc", "dd", "ee", "ff"});
  }
  CountVectorizerOptions bad;
  bad.min_df = {false, 3};
  bad.max_df = {false, 2};
  auto status = CountVectorizer::FitTransform(docs, bad).status();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("max_df corresponds to < documents"));
  bad.min_df = {false, 5};
  bad.max_df = {true, 1.0};
  CHECK(CountVectorizer::FitTransform(docs, bad).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CountVectorizerOptions none_left;
  none_left.min_df = {false, 4};
  status = CountVectorizer::FitTransform(docs, none_left).status();
  CHECK_THAT(std::string(status.message()), Catch::Contains("After pruning, no terms remain"));
}

TEST_CASE("CountVectorizer rejects bad input") {
  auto status = CountVectorizer::FitTransform({"a b c", "x . y"}, {}).status();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("empty vocabulary"));
  // Only stop words (the word runs' path counts them, then drops them all), one given twice, with
  // a max_df that would refuse first if they counted: scikit-learn's empty vocabulary error. With
  // "Of" in the list instead, "of" is a term (tokens are lowercased, the list is not) and max_df
  // prunes it, as scikit-learn does.
  CountVectorizerOptions stop;
  stop.analyzer.stop_words = {"the", "and", "the", "of"};
  stop.max_df = {false, 1};
  status = CountVectorizer::FitTransform({"The and of", "the the OF", "a"}, stop).status();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("empty vocabulary"));
  stop.analyzer.stop_words = {"the", "and", "the", "Of"};
  status = CountVectorizer::FitTransform({"The and of", "the the OF", "a"}, stop).status();
  CHECK_THAT(std::string(status.message()), Catch::Contains("After pruning, no terms remain"));
  stop.max_df = {true, 1.0};
  stop.analyzer.stop_words = {"the", "and", "of"};
  auto fit = CountVectorizer::FitTransform({"The and of", "the the OF zz"}, stop);
  REQUIRE(fit.ok());
  CHECK(fit->vectorizer.num_features() == 1);
  CHECK(fit->rows.size() == 2);
  CHECK(CountVectorizer::FitTransform({}, {}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  status = CountVectorizer::FitTransform({"fine text", "bad \xff text"}, {}).status();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("texts[1]"));

  CHECK(CountVectorizer::FromState({}, {}, {}, 0).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(CountVectorizer::FromState({}, {"bb", "aa"}, {}, 0).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(CountVectorizer::FromState({}, {"aa", "aa"}, {}, 0).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(CountVectorizer::FromState({}, {"aa", ""}, {}, 0).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(CountVectorizer::FromState({}, {"aa", "b\xff"}, {}, 0).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(CountVectorizer::FromState({}, {"aa", "bb"}, {1}, 2).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(CountVectorizer::FromState({}, {"aa", "bb"}, {1, 2}, 2).ok());
}

TEST_CASE("CountVectorizerOptionsFromConfig: defaults, supported and unsupported parameters") {
  v1::VectorizerConfig config;
  auto options = CountVectorizerOptionsFromConfig(config);
  REQUIRE(options.ok());
  CHECK(options->analyzer.lowercase);
  CHECK(options->analyzer.ngram_min == 1);
  CHECK(options->analyzer.ngram_max == 1);
  CHECK_FALSE(options->binary);
  CHECK_FALSE(options->min_df.is_fraction);
  CHECK(options->max_df.is_fraction);

  v1::TextOptions* text = config.mutable_count()->mutable_text();
  text->set_lowercase(false);
  text->set_binary(true);
  text->set_ngram_min(1);
  text->set_ngram_max(2);
  text->set_stop_words("english");
  text->set_token_pattern(R"((?u)\b\w\w+\b)");
  config.mutable_count()->mutable_min_df()->set_count(2);
  config.mutable_count()->mutable_max_df()->set_fraction(0.9);
  options = CountVectorizerOptionsFromConfig(config);
  REQUIRE(options.ok());
  CHECK_FALSE(options->analyzer.lowercase);
  CHECK(options->analyzer.stop_words.size() == 318);
  CHECK(options->analyzer.ngram_max == 2);
  CHECK(options->min_df.value == 2.0);
  CHECK(options->max_df.value == 0.9);

  const auto code_and_message = [](const v1::VectorizerConfig& c) {
    const absl::Status s = CountVectorizerOptionsFromConfig(c).status();
    return std::make_pair(s.code(), std::string(s.message()));
  };
  struct Case {
    const char* name;
    void (*mutate)(v1::VectorizerConfig*);
  };
  const Case invalid[] = {
      {"ngram_range",
       [](v1::VectorizerConfig* c) {
         c->mutable_count()->mutable_text()->set_ngram_min(2);
         c->mutable_count()->mutable_text()->set_ngram_max(1);
       }},
      {"stop_words",
       [](v1::VectorizerConfig* c) {
         c->mutable_count()->mutable_text()->set_stop_words("french");
       }},
      {"stop_word_list",
       [](v1::VectorizerConfig* c) {
         c->mutable_count()->mutable_text()->set_stop_words("english");
         c->mutable_count()->mutable_text()->add_stop_word_list("the");
       }},
      {"vocabulary",
       [](v1::VectorizerConfig* c) {
         c->mutable_count()->add_vocabulary("aa");
         c->mutable_count()->add_vocabulary("aa");
       }},
      {"min_df",
       [](v1::VectorizerConfig* c) { c->mutable_count()->mutable_min_df()->set_count(0); }},
      {"max_df",
       [](v1::VectorizerConfig* c) { c->mutable_count()->mutable_max_df()->set_fraction(1.5); }},
      {"token_pattern",
       [](v1::VectorizerConfig* c) {
         c->mutable_count()->mutable_text()->set_token_pattern(R"((\w+)@(\w+))");
       }},
  };
  for (const Case& test : invalid) {
    v1::VectorizerConfig c;
    test.mutate(&c);
    const auto [code, message] = code_and_message(c);
    INFO(test.name << ": " << message);
    CHECK(code == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(message, Catch::Contains(test.name));
  }
}

// One text can add millions of terms (char n-grams 1-16 of 256 KiB: ~4 M): a learned vocabulary
// stops within the text once it holds more than its budget, instead of after it (~330 MB here).
TEST_CASE("CountVectorizer fitter stops within a text at its memory budget") {
  std::string random_text;
  uint32_t seed = 5;
  for (size_t i = 0; i < (256u << 10); ++i) {
    seed = seed * 1664525u + 1013904223u;
    random_text.push_back(static_cast<char>('a' + (seed >> 24) % 26));
    if (i % 9 == 8) random_text.push_back(' ');
  }
  struct Case {
    const char* name;
    AnalyzerKind kind;
    int ngram_max;
    int64_t budget;
  };
  // char and word n-grams: the batched analysis; char_wb: the word memo's path; word unigrams:
  // the ASCII unigram path (~26 K terms of 9 letters).
  const Case cases[] = {{"char 1-16", AnalyzerKind::kChar, 16, 4 << 20},
                        {"char_wb 1-16", AnalyzerKind::kCharWb, 16, 4 << 20},
                        {"word 1-16", AnalyzerKind::kWord, 16, 4 << 20},
                        {"word unigrams", AnalyzerKind::kWord, 1, 256 << 10}};
  for (const Case& c : cases) {
    INFO(c.name);
    CountVectorizerOptions options;
    options.analyzer.kind = c.kind;
    options.analyzer.ngram_max = c.ngram_max;
    CountVectorizer::Fitter fitter(options);
    fitter.SetMemoryBudget(c.budget);
    const absl::Status status = fitter.Add(random_text);
    CHECK(status.code() == absl::StatusCode::kResourceExhausted);
    CHECK_THAT(std::string(status.message()), Catch::Contains("memory budget"));
    // Past the budget by at most one growth of the term table and a few thousand terms.
    CHECK(fitter.MemoryBytes() < 3 * c.budget);
    // Without a budget the same text fits.
    CountVectorizer::Fitter unbounded(options);
    if (c.ngram_max == 1) {
      CHECK(unbounded.Add(random_text).ok());
      CHECK(unbounded.MemoryBytes() > c.budget);
    }
  }
}

}  // namespace
}  // namespace maas::discriminative
