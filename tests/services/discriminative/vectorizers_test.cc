// Analyzers, hashing, TF-IDF and the vectorizer registry, each alone, on the reference notes'
// known-answer vectors (sklearn-text-nb-spec.md sections 1.2, 1.8, 1.9, 4.3 and appendix E).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "services/discriminative/core/count_vectorizer.h"
#include "services/discriminative/core/hashing_vectorizer.h"
#include "services/discriminative/core/text_analysis.h"
#include "services/discriminative/core/tfidf.h"
#include "services/discriminative/core/vectorizer.h"
#include "tests/services/discriminative/vocabulary.h"

namespace maas::discriminative {
namespace {

using Strings = std::vector<std::string>;

const Strings kCorpus = {"This is the first document.", "This document is the second document.",
                         "And this is the third one.", "Is this the first document?"};
const Strings kTest = {"this document is new", "first second third", "nothing known"};

Strings Analyze(const AnalyzerOptions& options, const std::string& text) {
  const Analyzer analyzer(options);
  AnalyzerScratch scratch;
  Strings out;
  analyzer.Analyze(text, &scratch, [&](std::string_view t) { out.emplace_back(t); });
  return out;
}

AnalyzerOptions Char(AnalyzerKind kind, uint32_t lo, uint32_t hi) {
  AnalyzerOptions options;
  options.kind = kind;
  options.ngram_min = lo;
  options.ngram_max = hi;
  return options;
}

double Parse(const char* repr) { return std::strtod(repr, nullptr); }

TEST_CASE("char and char_wb analyzers (spec 1.8, 1.9, E.1)") {
  CHECK(Analyze(Char(AnalyzerKind::kChar, 1, 2), "Ab\tc  d\n") ==
        Strings{"a", "b", "\t", "c", " ", "d", "\n", "ab", "b\t", "\tc", "c ", " d", "d\n"});
  CHECK(Analyze(Char(AnalyzerKind::kChar, 2, 3), "ab c") ==
        Strings{"ab", "b ", " c", "ab ", "b c"});
  CHECK(Analyze(Char(AnalyzerKind::kChar, 3, 5), "ab").empty());
  CHECK(Analyze(Char(AnalyzerKind::kCharWb, 2, 3), "ab  c\tdef") ==
        Strings{" a", "ab", "b ", " ab", "ab ", " c", "c ", " c ", " d", "de", "ef", "f ", " de",
                "def", "ef "});
  CHECK(Analyze(Char(AnalyzerKind::kCharWb, 1, 1), "ab c") ==
        Strings{" ", "a", "b", " ", " ", "c", " "});
  CHECK(Analyze(Char(AnalyzerKind::kCharWb, 2, 5), "a bc") ==
        Strings{" a", "a ", " a ", " b", "bc", "c ", " bc", "bc ", " bc "});
  CHECK(Analyze(Char(AnalyzerKind::kCharWb, 4, 5), "a") == Strings{" a "});
  CHECK(Analyze(Char(AnalyzerKind::kCharWb, 3, 3), "ab") == Strings{" ab", "ab "});
  // Code points, not bytes; Unicode whitespace (U+3000) splits words, a single NBSP stays in
  // 'char'.
  CHECK(Analyze(Char(AnalyzerKind::kChar, 2, 2), "é\u00a0中") == Strings{"é\u00a0", "\u00a0中"});
  CHECK(Analyze(Char(AnalyzerKind::kCharWb, 2, 2), "é\u3000中") ==
        Strings{" é", "é ", " 中", "中 "});
}

TEST_CASE("strip_accents ascii / unicode (spec 1.4, E.1)") {
  AnalyzerOptions unicode;
  unicode.strip_accents = StripAccentsMode::kUnicode;
  CHECK(Analyze(unicode, "ᴬᴮ Ǆemal ﬁne Ⅻ straße") ==
        Strings{"AB", "dzemal", "fine", "xii", "straße"});
  AnalyzerOptions ascii;
  ascii.strip_accents = StripAccentsMode::kAscii;
  CHECK(Analyze(ascii, "ᴬᴮ Ǆemal ﬁne Ⅻ straße") == Strings{"AB", "dzemal", "fine", "xii", "strae"});
  CHECK(StripAccents("½", StripAccentsMode::kAscii) == "12");
  CHECK(StripAccents("½", StripAccentsMode::kUnicode) == "1\u20442");
  CHECK(StripAccents("café", StripAccentsMode::kUnicode) == "cafe");
  CHECK(StripAccents("a\u0901b", StripAccentsMode::kUnicode) == "a\u0901b");  // ccc 0 kept
  CHECK(StripAccents("中文", StripAccentsMode::kAscii).empty());
}

TEST_CASE("decode_error strict / replace / ignore (spec 1.2)") {
  std::string storage;
  const auto decode = [&](std::string_view bytes, DecodeError mode) {
    auto out = DecodeUtf8(bytes, mode, &storage);
    REQUIRE(out.ok());
    return std::string(*out);
  };
  CHECK(DecodeUtf8("ab\xff", DecodeError::kStrict, &storage).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(decode("ab\xff"
               "cd ef",
               DecodeError::kIgnore) == "abcd ef");
  CHECK(decode("ab\xff"
               "cd ef",
               DecodeError::kReplace) == "ab\uFFFDcd ef");
  CHECK(decode("ab\xe2\x82"
               "cd",
               DecodeError::kReplace) == "ab\uFFFDcd");
  CHECK(decode("ab\xf0\x9f\x98"
               "cd",
               DecodeError::kReplace) == "ab\uFFFDcd");
  CHECK(decode("ab\xed\xa0\x80"
               "cd",
               DecodeError::kReplace) == "ab\uFFFD\uFFFD\uFFFDcd");
  CHECK(decode("\xc0\xafxy zz", DecodeError::kReplace) == "\uFFFD\uFFFDxy zz");
  CHECK(decode("ab\x80\x80"
               "cd",
               DecodeError::kIgnore) == "abcd");
}

TEST_CASE("MurmurHash3_x86_32 equals scikit-learn's murmurhash3_32 (spec 4.3)") {
  const auto signed_hash = [](std::string_view s) {
    return static_cast<int32_t>(MurmurHash3X86_32(s, 0));
  };
  CHECK(signed_hash("") == 0);
  CHECK(signed_hash("a") == 1009084850);
  CHECK(signed_hash("ab") == -1681926305);
  CHECK(signed_hash("abc") == -1277324294);
  CHECK(signed_hash("abcd") == 1139631978);
  CHECK(signed_hash("hello") == 613153351);
  CHECK(signed_hash("the") == -1132748958);
  CHECK(signed_hash("café") == 605818632);
  CHECK(signed_hash("中文") == -618237545);
  CHECK(signed_hash("Hello World!") == -603376259);
  for (const char* token : {"ncmn40xj", "rbfo61ad", "votjyw5d"}) {
    CHECK(signed_hash(token) == INT32_MIN);
  }
}

HashingVectorizer Hashing(uint32_t n, bool alternate_sign, RowNorm norm, bool binary = false) {
  HashingVectorizerOptions options;
  options.n_features = n;
  options.alternate_sign = alternate_sign;
  options.norm = norm;
  options.binary = binary;
  return HashingVectorizer(options);
}

TEST_CASE("HashingVectorizer on the classic corpus (spec E.2)") {
  const SparseVector a = Hashing(16, true, RowNorm::kL2).Transform(kCorpus[1]);
  CHECK(a.indices == std::vector<uint32_t>{0, 11, 13, 14});
  CHECK(a.values == std::vector<double>{Parse("-0.8164965809277261"), Parse("0.4082482904638631"),
                                        Parse("0.4082482904638631"), 0.0});
  const SparseVector b = Hashing(16, false, RowNorm::kNone).Transform(kCorpus[2]);
  CHECK(b.indices == std::vector<uint32_t>{4, 5, 13, 14});
  CHECK(b.values == std::vector<double>{1, 1, 2, 2});
  const SparseVector c = Hashing(8, true, RowNorm::kNone).Transform(kCorpus[1]);
  CHECK(c.indices == std::vector<uint32_t>{0, 3, 5, 6});
  CHECK(c.values == std::vector<double>{-2, 1, 1, 0});  // the cancelled zero stays stored
  const SparseVector d = Hashing(8, true, RowNorm::kNone, /*binary=*/true).Transform(kCorpus[1]);
  CHECK(d.values == std::vector<double>{1, 1, 1, 1});
  // INT32_MIN: index 2^31 mod n, value -1 (spec 4.1).
  const SparseVector e = Hashing(1000, true, RowNorm::kNone).Transform("ncmn40xj");
  CHECK(e.indices == std::vector<uint32_t>{648});
  CHECK(e.values == std::vector<double>{-1});
}

// HashingVectorizer's definition, step by step: the analyzer's terms, each term's signed
// MurmurHash3 picking column |h| mod n (plain division) and the sign, the row sorted by column and
// summed, then binary and the norm: what Transform's paths (the word runs, lowercased while hashed
// or by LowerWordRuns; the analyzer's terms otherwise; ranks or a sort for the order) must equal.
SparseVector HashingByDefinition(const HashingVectorizerOptions& options, std::string_view text) {
  std::vector<std::pair<uint32_t, double>> cells;
  const Analyzer analyzer(options.analyzer);
  AnalyzerScratch scratch;
  analyzer.Analyze(text, &scratch, [&](std::string_view term) {
    const auto h = static_cast<int32_t>(MurmurHash3X86_32(term, 0));
    const uint64_t magnitude = h < 0 ? -static_cast<int64_t>(h) : h;
    cells.emplace_back(static_cast<uint32_t>(magnitude % options.n_features),
                       options.alternate_sign && h < 0 ? -1.0 : 1.0);
  });
  std::stable_sort(cells.begin(), cells.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  SparseVector row;
  for (const auto& [column, value] : cells) {
    if (row.indices.empty() || row.indices.back() != column) {
      row.indices.push_back(column);
      row.values.push_back(0.0);
    }
    row.values.back() += value;
  }
  if (options.binary) std::fill(row.values.begin(), row.values.end(), 1.0);
  NormalizeRow(options.norm, &row);
  return row;
}

TEST_CASE("HashingVectorizer's paths equal its definition term by term") {
  // Texts: ASCII words with capitals, digits and underscores (every letter, '@', '[', '`', '{'
  // beside them), words with accents, Greek (final sigma), Turkish dotted I, CJK; short, and long
  // enough for hundreds of distinct columns (the sorted order, the table's growth).
  const std::vector<std::string> pool = {
      "alpha", "Beta", "GAMMA", "d_e", "x9", "ZZ", "Az", "@at[b`c{d", "a", "NCMN40XJ", "the",
      "café", "Éclair", "ΟΔΟΣ", "σοφός", "İstanbul", "中文字", "naïve", "__", "2024", "Ⅻx",
      "e\u0301t", ",", ". ", "\t", "\u00a0",
      // 15, 16 and 35 bytes: blocks and tails of the hash, a text's last token.
      "abcdefghijKLMNO", "ABCDEFGHIJKLMNOP", "Supercalifragilistic_Expialidocious"};
  std::vector<std::string> texts = {"",
                                    " ",
                                    "a b c",
                                    "ncmn40xj",
                                    "NCMN40XJ rbfo61ad",
                                    "Ab",
                                    "abcdefghijklmnO",
                                    "x abcdefghijklmnOp"};
  uint64_t state = 20261207;
  const auto next = [&state](uint64_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state >> 33) % n;
  };
  for (int t = 0; t < 160; ++t) {
    const size_t words = t < 120 ? next(40) : 200 + next(2000);
    std::string text;
    for (size_t k = 0; k < words; ++k) {
      const std::string& word = pool[next(pool.size())];
      text += next(4) == 0 ? word + std::to_string(next(5000)) : word;
      text += next(5) == 0 ? ", " : " ";
    }
    // Some texts end with a token: near the end, the hash must not read past the text.
    if (next(2) == 0 && !text.empty()) text.pop_back();
    texts.push_back(text);
  }
  // One text of 100 000 words: more terms than HashingVectorizer::kMaxListedTerms, counted in its
  // table after the list (on every analyzer, the char n-grams' list fills within the text).
  std::string long_text;
  for (size_t k = 0; k < 100000; ++k) {
    long_text += pool[next(pool.size())];
    if (next(3) == 0) long_text += std::to_string(next(100000));
    long_text += ' ';
  }
  texts.push_back(long_text);
  struct Case {
    const char* name;
    AnalyzerOptions analyzer;
  };
  std::vector<Case> cases;
  cases.push_back({"default", AnalyzerOptions()});
  AnalyzerOptions no_lower;
  no_lower.lowercase = false;
  cases.push_back({"lowercase false", no_lower});
  AnalyzerOptions accents;
  accents.strip_accents = StripAccentsMode::kUnicode;
  cases.push_back({"strip_accents unicode", accents});
  AnalyzerOptions bigrams;
  bigrams.ngram_max = 2;
  cases.push_back({"word 1-2", bigrams});
  cases.push_back({"char_wb 2-4", Char(AnalyzerKind::kCharWb, 2, 4)});
  for (const Case& c : cases) {
    for (const uint32_t n : {1u, 3u, 37u, 1024u, 1u << 20, 2147483629u, 2147483646u}) {
      for (const bool alternate_sign : {true, false}) {
        HashingVectorizerOptions options;
        options.analyzer = c.analyzer;
        options.n_features = n;
        options.alternate_sign = alternate_sign;
        options.binary = n == 37;
        options.norm = n == 3 ? RowNorm::kL1 : (n == 1024 ? RowNorm::kNone : RowNorm::kL2);
        const HashingVectorizer vectorizer(options);
        AnalyzerScratch scratch;  // shared from text to text, as a worker's
        SparseVector row;
        for (size_t t = 0; t < texts.size(); ++t) {
          INFO(c.name << ", n_features " << n << ", alternate_sign " << alternate_sign << ", text "
                      << t);
          vectorizer.Transform(texts[t], &scratch, &row);
          const SparseVector expected = HashingByDefinition(options, texts[t]);
          REQUIRE(row.indices == expected.indices);
          REQUIRE(row.values == expected.values);
        }
      }
    }
  }
}

// A worker's scratch serves one model after another: the char_wb vectorizers' word memo (padded
// word -> feature ids or hashed terms) must be each one's own. Hashing vectorizers that map a word
// differently (n_features, alternate_sign, n-gram range) and a count vectorizer take turns on one
// scratch; each row must equal the same vectorizer's on a fresh scratch.
TEST_CASE("char_wb vectorizers taking turns on one scratch each get their own word memo") {
  const std::vector<std::string> texts = {"the cat sat",        "naïve café, the cat", "the dog",
                                          "cat sat on the mat", "ΟΔΟΣ x the",          ""};
  std::vector<std::unique_ptr<Vectorizer>> vectorizers;
  struct Hashing {
    uint32_t n_features;
    bool alternate_sign;
    uint32_t ngram_max;
  };
  for (const Hashing h : {Hashing{1024, false, 3}, Hashing{37, false, 3}, Hashing{1024, true, 3},
                          Hashing{1024, false, 4}}) {
    HashingVectorizerOptions options;
    options.analyzer = Char(AnalyzerKind::kCharWb, 2, h.ngram_max);
    options.n_features = h.n_features;
    options.alternate_sign = h.alternate_sign;
    options.norm = RowNorm::kNone;
    vectorizers.push_back(std::make_unique<HashingVectorizer>(options));
  }
  v1::VectorizerConfig count;
  count.mutable_count()->mutable_text()->set_analyzer(v1::ANALYZER_CHAR_WB);
  count.mutable_count()->mutable_text()->set_ngram_min(2);
  count.mutable_count()->mutable_text()->set_ngram_max(3);
  auto fit = FitVectorizer(count, std::vector<std::string_view>(texts.begin(), texts.end()));
  REQUIRE(fit.ok());
  vectorizers.push_back(std::move(fit->vectorizer));
  AnalyzerScratch shared;
  for (int round = 0; round < 3; ++round) {
    for (size_t v = 0; v < vectorizers.size(); ++v) {
      for (const std::string& text : texts) {
        INFO("round " << round << ", vectorizer " << v << ", text '" << text << "'");
        AnalyzerScratch fresh;
        SparseVector turn, alone;
        vectorizers[v]->Transform(text, &shared, &turn);
        vectorizers[v]->Transform(text, &fresh, &alone);
        CHECK(turn.indices == alone.indices);
        CHECK(turn.values == alone.values);
      }
    }
  }
}

TEST_CASE("TF-IDF over counts (spec E.2: default, sublinear/no smooth/l1, no idf)") {
  std::vector<std::string_view> texts(kCorpus.begin(), kCorpus.end());
  v1::VectorizerConfig config;
  config.mutable_tfidf();
  auto fit = FitVectorizer(config, texts);
  REQUIRE(fit.ok());
  const auto* tfidf = dynamic_cast<const TfidfVectorizer*>(fit->vectorizer.get());
  REQUIRE(tfidf != nullptr);
  const std::vector<double> idf = {Parse("1.916290731874155"),
                                   Parse("1.2231435513142097"),
                                   Parse("1.5108256237659907"),
                                   1.0,
                                   Parse("1.916290731874155"),
                                   Parse("1.916290731874155"),
                                   1.0,
                                   Parse("1.916290731874155"),
                                   1.0};
  CHECK(tfidf->idf() == idf);
  const SparseVector t = fit->vectorizer->Transform(kTest[0]);
  CHECK(t.indices == std::vector<uint32_t>{1, 3, 8});
  CHECK(t.values[0] == Approx(Parse("0.6541641499206824")).epsilon(1e-15));
  CHECK(t.values[1] == Approx(Parse("0.5348220568369216")).epsilon(1e-15));

  config.mutable_tfidf()->set_norm(v1::NORM_L1);
  config.mutable_tfidf()->set_sublinear_tf(true);
  config.mutable_tfidf()->set_smooth_idf(false);
  fit = FitVectorizer(config, texts);
  REQUIRE(fit.ok());
  const SparseVector s = fit->vectorizer->Transform(kTest[1]);
  CHECK(s.indices == std::vector<uint32_t>{2, 5, 7});
  CHECK(s.values[0] == Approx(Parse("0.26186457442946226")).epsilon(1e-15));
  CHECK(s.values[2] == Approx(Parse("0.3690677127852689")).epsilon(1e-15));

  config.mutable_tfidf()->set_use_idf(false);
  config.mutable_tfidf()->set_norm(v1::NORM_L2);
  config.mutable_tfidf()->set_sublinear_tf(false);
  fit = FitVectorizer(config, texts);
  REQUIRE(fit.ok());
  // scikit-learn's storage order (spec 2.8): this, is, the, document, second.
  CHECK(fit->rows[1].indices == std::vector<uint32_t>{8, 3, 6, 1, 5});
  CHECK(fit->rows[1].values ==
        std::vector<double>{Parse("0.35355339059327373"), Parse("0.35355339059327373"),
                            Parse("0.35355339059327373"), Parse("0.7071067811865475"),
                            Parse("0.35355339059327373")});
}

TEST_CASE("The vectorizer registry maps config kinds to implementations") {
  v1::VectorizerConfig config;
  CHECK(VectorizerKindName(config) == "count");
  CHECK(VectorizerFamily(config) == "count");
  config.mutable_hashing();
  CHECK(VectorizerKindName(config) == "hashing");
  config.mutable_tfidf();
  CHECK(VectorizerFamily(config) == "hashing+tfidf");
  for (const char* name : {"count", "hashing"}) {
    const VectorizerKind* kind = FindVectorizerKind(name);
    REQUIRE(kind != nullptr);
    CHECK(kind->name == name);
  }
  CHECK(FindVectorizerKind("tfidf") == nullptr);
  // Round trip through state for each kind.
  const std::vector<std::string_view> texts(kCorpus.begin(), kCorpus.end());
  for (v1::VectorizerConfig c : {v1::VectorizerConfig(), config}) {
    c.mutable_hashing()->set_n_features(c.has_hashing() ? 32 : 0);
    if (!c.has_tfidf()) c.mutable_count();
    auto fit = FitVectorizer(c, texts);
    REQUIRE(fit.ok());
    v1::VectorizerState state;
    fit->vectorizer->ToState(&state);
    *state.mutable_config() = c;
    auto back = VectorizerFromState(state);
    REQUIRE(back.ok());
    CHECK((*back)->num_features() == fit->vectorizer->num_features());
    const SparseVector x = fit->vectorizer->Transform(kTest[0]);
    const SparseVector y = (*back)->Transform(kTest[0]);
    CHECK(x.indices == y.indices);
    CHECK(x.values == y.values);
  }
  v1::VectorizerConfig bad;
  bad.mutable_hashing()->set_n_features(2147483647u);
  CHECK(ValidateVectorizerConfig(bad).code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("CountVectorizer: fixed vocabulary, stop word list, max_features ties (spec 2.5, 2.7)") {
  CountVectorizerOptions fixed;
  fixed.fixed_vocabulary = {"the", "zz", "document"};
  auto fit = CountVectorizer::FitTransform(kCorpus, fixed);
  REQUIRE(fit.ok());
  CHECK(testing::Vocabulary(fit->vectorizer) == Strings{"the", "zz", "document"});
  CHECK(fit->rows[1].indices == std::vector<uint32_t>{0, 2});
  CHECK(fit->rows[1].values == std::vector<double>{1, 2});
  CHECK(fit->vectorizer.document_frequency() == std::vector<uint64_t>{4, 0, 3});

  CountVectorizerOptions stop;
  stop.analyzer.stop_words = {"the", "is", "this"};
  fit = CountVectorizer::FitTransform(kCorpus, stop);
  REQUIRE(fit.ok());
  CHECK(testing::Vocabulary(fit->vectorizer) ==
        Strings{"and", "document", "first", "one", "second", "third"});

  // 20 equally frequent terms: the documented rule keeps the first 5 in feature order.
  std::string doc;
  for (int i = 0; i < 20; ++i) doc += (i < 10 ? "w0" : "w1") + std::to_string(i % 10) + " ";
  CountVectorizerOptions limited;
  limited.max_features = 5;
  fit = CountVectorizer::FitTransform(Strings{doc}, limited);
  REQUIRE(fit.ok());
  CHECK(testing::Vocabulary(fit->vectorizer) == Strings{"w00", "w01", "w02", "w03", "w04"});
  // Without ties the most frequent win (spec E.4: binary counts documents).
  limited.max_features = 1;
  fit = CountVectorizer::FitTransform(Strings{"bb bb bb", "aa", "aa"}, limited);
  REQUIRE(fit.ok());
  CHECK(testing::Vocabulary(fit->vectorizer) == Strings{"bb"});
  limited.binary = true;
  fit = CountVectorizer::FitTransform(Strings{"bb bb bb", "aa", "aa"}, limited);
  REQUIRE(fit.ok());
  CHECK(testing::Vocabulary(fit->vectorizer) == Strings{"aa"});
}

}  // namespace
}  // namespace maas::discriminative
