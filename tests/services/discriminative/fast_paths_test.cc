// The speed machinery of the count vectorizer, each against a plain reference computed here: the
// TermTable against std::unordered_map, the ASCII word tokenizer (SSE2 bitmap) against the scalar
// DefaultTokenize, and the char_wb word memo (a scratch kept from text to text, shared between
// vectorizers, filled past its bounds) against a fresh scratch per text, OrderedRow (two-level
// bitmap) against std::map, the fixed-class-count JLL kernels against the sum written out, and
// predict_proba from k exponentials against exp(predict_log_proba).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/random/simd_level.h"
#include "services/discriminative/core/count_vectorizer.h"
#include "services/discriminative/core/multinomial_nb.h"
#include "services/discriminative/core/numpy_compat.h"
#include "services/discriminative/core/term_table.h"
#include "services/discriminative/core/text_analysis.h"
#include "tests/services/discriminative/vocabulary.h"

namespace maas::discriminative {
namespace {

std::string RandomString(std::mt19937_64& rng, size_t length, std::string_view alphabet) {
  std::string s;
  for (size_t i = 0; i < length; ++i) s.push_back(alphabet[rng() % alphabet.size()]);
  return s;
}

TEST_CASE("TermTable agrees with std::unordered_map on terms of every length") {
  std::mt19937_64 rng(7);
  TermTable table;
  std::unordered_map<std::string, uint32_t> reference;
  std::vector<std::string> order;
  // Lengths 1..40 (around the 7/8-byte key boundary and the 16-byte compare), over a small
  // alphabet so that many terms share prefixes and suffixes; bytes >= 0x80 and NUL included.
  const std::string alphabet = std::string("ab\xc3\xa9") + std::string(1, '\0');
  for (int i = 0; i < 20000; ++i) {
    const std::string term = RandomString(rng, 1 + rng() % 40, alphabet);
    const auto [id, inserted] = table.Insert(term);
    const auto [it, added] = reference.emplace(term, static_cast<uint32_t>(order.size()));
    if (added) order.push_back(term);
    REQUIRE(inserted == added);
    REQUIRE(id == it->second);
  }
  REQUIRE(table.size() == order.size());
  for (uint32_t id = 0; id < order.size(); ++id) {
    REQUIRE(table.term(id) == order[id]);
    REQUIRE(table.Find(order[id]) == id);
    // The filter never rules out a present term (it is rebuilt on every growth).
    REQUIRE(table.MayContain(TermTable::HashOf(TermTable::KeyOf(order[id]))));
  }
  size_t absent = 0, passed = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string probe = RandomString(rng, 1 + rng() % 40, alphabet);
    const auto it = reference.find(probe);
    REQUIRE(table.Find(probe) == (it == reference.end() ? TermTable::kNotFound : it->second));
    if (it == reference.end()) {
      ++absent;
      passed += table.MayContain(TermTable::HashOf(TermTable::KeyOf(probe))) ? 1 : 0;
    }
  }
  // ... and rules out most absent ones (4 bits per slot, at most 5/8 of the slots used).
  REQUIRE(absent > 1000);
  CHECK(passed < absent / 4);
  CHECK_FALSE(TermTable().MayContain(TermTable::HashOf(TermTable::KeyOf("x"))));
  // The two-step forms equal the one-step ones.
  const std::string fresh = "zzzzzzzzzzzz";
  table.Reserve(table.size() + 1);
  const TermTable::Key key = TermTable::KeyOf(fresh);
  CHECK(table.FindFrom(key, table.Home(key), fresh) == TermTable::kNotFound);
  CHECK(table.InsertFrom(key, table.Home(key), fresh).first == order.size());
  CHECK(table.Find(fresh) == order.size());
  CHECK(TermTable().Find("x") == TermTable::kNotFound);
}

TEST_CASE("TermTable::Assign equals inserting the terms in order, whatever the placement") {
  std::mt19937_64 rng(8);
  const std::string alphabet = std::string("ab\xc3\xa9") + std::string(1, '\0');
  std::vector<std::string> terms;
  std::unordered_map<std::string, uint32_t> reference;
  while (terms.size() < 3000) {
    const std::string term = RandomString(rng, 1 + rng() % 40, alphabet);
    if (reference.emplace(term, static_cast<uint32_t>(terms.size())).second) terms.push_back(term);
  }
  std::vector<uint32_t> identity(terms.size());
  for (uint32_t id = 0; id < terms.size(); ++id) identity[id] = id;
  std::vector<uint32_t> reversed(identity.rbegin(), identity.rend());
  std::vector<uint32_t> shuffled = identity;
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  for (const std::vector<uint32_t>* placement : {&identity, &reversed, &shuffled}) {
    TermTable table;
    table.Insert("stale");  // replaced
    LargeString bytes;
    LargeVector<size_t> offsets = {0};
    for (const std::string& term : terms) {
      bytes += term;
      offsets.push_back(bytes.size());
    }
    table.Assign(std::move(bytes), std::move(offsets), *placement);
    REQUIRE(table.size() == terms.size());
    for (uint32_t id = 0; id < terms.size(); ++id) {
      REQUIRE(table.term(id) == terms[id]);
      REQUIRE(table.Find(terms[id]) == id);
      REQUIRE(table.MayContain(TermTable::HashOf(TermTable::KeyOf(terms[id]))));
    }
    for (int i = 0; i < 3000; ++i) {
      const std::string probe = RandomString(rng, 1 + rng() % 40, alphabet);
      const auto it = reference.find(probe);
      REQUIRE(table.Find(probe) == (it == reference.end() ? TermTable::kNotFound : it->second));
    }
    CHECK(table.Find("stale") == TermTable::kNotFound);
    // Still a table to insert into.
    CHECK(table.Insert(terms[0]) == std::pair<uint32_t, bool>(0, false));
    CHECK(table.Insert("stale") == std::pair<uint32_t, bool>(terms.size(), true));
    CHECK(table.Find("stale") == terms.size());
  }
}

TEST_CASE("TermTable::LoadShort reads exactly the first n bytes") {
  const char bytes[9] = {'\x01', '\x82', '\x03', '\xf4', '\x05', '\x06', '\x07', '\x88', '\x09'};
  for (size_t n = 0; n <= 8; ++n) {
    uint64_t expected = 0;
    for (size_t k = 0; k < n; ++k) expected |= uint64_t{static_cast<uint8_t>(bytes[k])} << (8 * k);
    CHECK(TermTable::LoadShort(bytes, n) == expected);
  }
}

TEST_CASE("TermTable::PaddedKeyOf equals KeyOf of the (lowercased) term, for every length") {
  std::mt19937_64 rng(13);
  std::string alphabet;
  for (int c = 0; c < 128; ++c) alphabet.push_back(static_cast<char>(c));
  for (int i = 0; i < 20000; ++i) {
    const size_t n = rng() % (TermTable::kMaxPaddedKey + 1);
    // The term followed by arbitrary bytes (>= 0x80 too): they must not leak into the key.
    std::string buffer = RandomString(rng, n, i % 2 == 0 ? alphabet : "aZ_9");
    for (int k = 0; k < 16; ++k) buffer.push_back(static_cast<char>(rng()));
    const std::string term = buffer.substr(0, n);
    std::string lower = term;
    for (char& c : lower) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    const TermTable::Key raw = TermTable::PaddedKeyOf(buffer.data(), n, /*lower=*/false);
    const TermTable::Key lowered = TermTable::PaddedKeyOf(buffer.data(), n, /*lower=*/true);
    REQUIRE(raw.lo == TermTable::KeyOf(term).lo);
    REQUIRE(raw.hi == TermTable::KeyOf(term).hi);
    REQUIRE(lowered.lo == TermTable::KeyOf(lower).lo);
    REQUIRE(lowered.hi == TermTable::KeyOf(lower).hi);
  }
}

TEST_CASE("AsciiWordRuns: the runs of word bytes of ASCII text, false on any byte >= 0x80") {
  std::mt19937_64 rng(17);
  AnalyzerScratch scratch;
  for (int i = 0; i < 2000; ++i) {
    std::string text = RandomString(rng, rng() % 150, "aB9_ .,\t");
    std::vector<std::pair<size_t, size_t>> expected;  // maximal runs, 1-byte ones included
    for (size_t k = 0; k < text.size();) {
      const auto word = [&](size_t j) {
        return std::isalnum(static_cast<unsigned char>(text[j])) || text[j] == '_';
      };
      if (!word(k)) {
        ++k;
        continue;
      }
      const size_t start = k;
      while (k < text.size() && word(k)) ++k;
      expected.emplace_back(start, k);
    }
    AsciiRuns runs;
    REQUIRE(AsciiWordRuns(text, &scratch, &runs));
    std::vector<std::pair<size_t, size_t>> got;
    for (size_t k = 0; k < runs.count; ++k) got.emplace_back(runs.starts[k], runs.ends[k]);
    REQUIRE(got == expected);
    if (!text.empty()) {
      text[rng() % text.size()] = static_cast<char>(0x80 + rng() % 128);
      REQUIRE_FALSE(AsciiWordRuns(text, &scratch, &runs));
    }
  }
}

TEST_CASE("ASCII word tokens (bitmap path) equal the scalar tokenizer") {
  std::mt19937_64 rng(11);
  std::string alphabet;
  for (int c = 1; c < 128; ++c) alphabet.push_back(static_cast<char>(c));
  const std::string wordy = "aZ09_ \t.-";
  AnalyzerOptions options;
  options.lowercase = false;
  const Analyzer analyzer(options);
  AnalyzerScratch scratch;
  for (int i = 0; i < 2000; ++i) {
    // Lengths around the 16- and 64-byte block edges, tokens crossing them.
    const std::string text = RandomString(rng, rng() % 200, i % 2 == 0 ? alphabet : wordy);
    std::vector<std::string> got;
    analyzer.Analyze(text, &scratch, [&](std::string_view t) { got.emplace_back(t); });
    REQUIRE(got == DefaultTokenize(text));
  }
}

std::vector<std::string> RandomDocs(std::mt19937_64& rng, size_t docs, size_t vocabulary) {
  std::vector<std::string> words;
  const std::string_view letters[] = {"a", "b", "c", "d", "e", "\xc3\xa9" /* é */, "\xe4\xb8\xad"};
  for (size_t i = 0; i < vocabulary; ++i) {
    std::string word;
    for (size_t k = 1 + rng() % 9; k > 0; --k) word += letters[rng() % 7];
    words.push_back(word);
  }
  const std::string_view separators[] = {" ", " ", "  ", "\t", "\n", "\xe3\x80\x80"};  // U+3000
  std::vector<std::string> out;
  for (size_t d = 0; d < docs; ++d) {
    std::string text;
    const size_t n = rng() % 40;
    for (size_t k = 0; k < n; ++k) {
      text += words[rng() % words.size()];
      text += separators[rng() % 6];
    }
    out.push_back(text);
  }
  return out;
}

CountVectorizerOptions CharWb(uint32_t lo, uint32_t hi) {
  CountVectorizerOptions options;
  options.analyzer.kind = AnalyzerKind::kCharWb;
  options.analyzer.ngram_min = lo;
  options.analyzer.ngram_max = hi;
  return options;
}

void RequireSameRows(const SparseVector& a, const SparseVector& b) {
  REQUIRE(a.indices == b.indices);
  REQUIRE(a.values == b.values);
}

// A fit row (CSR, in scikit-learn's storage order: by first occurrence in the corpus for a learned
// vocabulary) against a transform row (ascending): the same entries.
void RequireSameRows(SparseRowRef a, const SparseVector& b) {
  REQUIRE(a.indices.size() == a.values.size());
  std::vector<std::pair<uint32_t, double>> entries;
  for (size_t e = 0; e < a.indices.size(); ++e) entries.emplace_back(a.indices[e], a.values[e]);
  std::sort(entries.begin(), entries.end());
  SparseVector sorted;
  for (const auto& [index, value] : entries) {
    sorted.indices.push_back(index);
    sorted.values.push_back(value);
  }
  RequireSameRows(sorted, b);
}

// A word of `length` pieces: ASCII word bytes, and code points >= 0x80 that are \w (é É Σ ς İ 中 ǅ
// ½) or not (a combining acute, U+00A0), so that tokens of 2-4 byte code points, with case
// mappings that grow (İ) or depend on context (final Σ), and single-code-point runs occur.
std::string RandomUnicodeWord(std::mt19937_64& rng, size_t length) {
  const std::string_view pieces[] = {"a",
                                     "b",
                                     "A",
                                     "B",
                                     "_",
                                     "9",
                                     "z",
                                     "\xc3\xa9",
                                     "\xc3\x89",
                                     "\xce\xa3",
                                     "\xcf\x82",
                                     "\xc4\xb0",
                                     "\xe4\xb8\xad",
                                     "\xc7\x85",
                                     "\xc2\xbd",
                                     "\xcc\x81",
                                     "\xc2\xa0"};
  std::string word;
  for (size_t i = 0; i < length; ++i) word += pieces[rng() % std::size(pieces)];
  return word;
}

TEST_CASE(
    "Count transform (keys from the raw bytes or the preprocessed text) equals the analyzer's "
    "terms") {
  // Tokens of every length around the 8- and 16-byte key edges and the 15-byte padded-key limit,
  // mixed case, digits and underscores, at the very end of texts (read from the padded copy); ASCII
  // texts, and texts with code points >= 0x80 (the runs of their preprocessed form).
  const bool unicode = GENERATE(false, true);
  INFO("unicode " << unicode);
  std::mt19937_64 rng(19);
  std::vector<std::string> words;
  for (int i = 0; i < 400; ++i) {
    words.push_back(unicode && i % 2 == 0 ? RandomUnicodeWord(rng, 1 + rng() % 12)
                                          : RandomString(rng, 1 + rng() % 24, "abAB_9z"));
  }
  std::vector<std::string> texts;
  for (int d = 0; d < 600; ++d) {
    std::string text;
    for (size_t k = rng() % 30; k > 0; --k) {
      text += words[rng() % words.size()];
      text += std::string_view(" ,.\t-")[rng() % 5];
    }
    if (d % 2 == 0) text += words[rng() % words.size()];  // a token at the end
    texts.push_back(text);
  }
  for (const bool lowercase : {true, false}) {
    CountVectorizerOptions options;
    options.analyzer.lowercase = lowercase;
    // The vocabulary of half the texts, so that the rest meet unknown terms.
    auto fit = CountVectorizer::FitTransform(
        std::vector<std::string>(texts.begin(), texts.begin() + 300), options);
    REQUIRE(fit.ok());
    const CountVectorizer& v = fit->vectorizer;
    AnalyzerScratch scratch;  // reused across texts, as in Classify
    SparseVector row;
    for (const std::string& text : texts) {
      std::map<uint32_t, double> expected;
      for (const std::string& term : DefaultTokenize(lowercase ? PythonLower(text) : text)) {
        if (const std::optional<uint32_t> index = v.FeatureIndex(term)) expected[*index] += 1.0;
      }
      v.Transform(text, &scratch, &row);
      SparseVector want;
      for (const auto& [index, count] : expected) {
        want.indices.push_back(index);
        want.values.push_back(count);
      }
      RequireSameRows(row, want);
    }
  }
}

TEST_CASE(
    "Fitting (keys from the raw bytes or the preprocessed text) equals the general tokenizer's "
    "fit") {
  // The same tokens through the custom-pattern path (an equivalent pattern, so the general
  // analyzer runs): identical vocabulary, and identical rows in storage order (the order of first
  // occurrence, which TF-IDF's norms sum in), so tokens longer than 15 bytes (inserted on their
  // own) must keep their place among the group's others. ASCII texts, and texts with code points
  // >= 0x80.
  const bool unicode = GENERATE(false, true);
  INFO("unicode " << unicode);
  std::mt19937_64 rng(23);
  std::vector<std::string> words;
  for (int i = 0; i < 300; ++i) {
    words.push_back(unicode && i % 2 == 0 ? RandomUnicodeWord(rng, 1 + rng() % 12)
                                          : RandomString(rng, 1 + rng() % 24, "abAB_9z"));
  }
  std::vector<std::string> texts;
  for (int d = 0; d < 400; ++d) {
    std::string text;
    for (size_t k = rng() % 60; k > 0; --k) {
      text += words[rng() % words.size()];
      text += std::string_view(" ,.\t-")[rng() % 5];
    }
    texts.push_back(text);
  }
  for (const bool lowercase : {true, false}) {
    CountVectorizerOptions fast;
    fast.analyzer.lowercase = lowercase;
    CountVectorizerOptions general = fast;
    auto pattern = TokenPattern::Compile(R"((?u)\b\w{2,}\b)");
    REQUIRE(pattern.ok());
    general.analyzer.token_pattern = *pattern;
    auto a = CountVectorizer::FitTransform(texts, fast);
    auto b = CountVectorizer::FitTransform(texts, general);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    REQUIRE(testing::Vocabulary(a->vectorizer) == testing::Vocabulary(b->vectorizer));
    REQUIRE(a->vectorizer.document_frequency() == b->vectorizer.document_frequency());
    REQUIRE(a->rows.offsets == b->rows.offsets);
    REQUIRE(a->rows.indices == b->rows.indices);
    REQUIRE(a->rows.values == b->rows.values);
  }
}

TEST_CASE("char_wb word memo: a reused scratch gives the rows of a fresh one") {
  std::mt19937_64 rng(3);
  const std::vector<std::string> train = RandomDocs(rng, 300, 200);
  const std::vector<std::string> test = RandomDocs(rng, 300, 400);  // unseen words too
  auto a = CountVectorizer::FitTransform(train, CharWb(1, 3));
  auto b = CountVectorizer::FitTransform(
      std::vector<std::string>(train.begin(), train.begin() + 50), CharWb(2, 4));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  // Fit rows (made through the fitter's memo) equal transform rows with fresh scratch.
  for (size_t d = 0; d < train.size(); ++d) {
    RequireSameRows(a->rows[d], a->vectorizer.Vectorizer::Transform(train[d]));
  }
  // One scratch alternating between two vectorizers: each keeps getting its own rows.
  AnalyzerScratch shared;
  SparseVector row;
  for (size_t d = 0; d < test.size(); ++d) {
    const CountVectorizer& v = d % 3 == 0 ? b->vectorizer : a->vectorizer;
    v.Transform(test[d], &shared, &row);
    RequireSameRows(row, v.Vectorizer::Transform(test[d]));
  }
}

TEST_CASE("Fit rows (CSR, re-indexed in place after pruning) equal transform rows") {
  std::mt19937_64 rng(5);
  const std::vector<std::string> train = RandomDocs(rng, 400, 300);
  for (const bool prune : {false, true}) {
    CountVectorizerOptions options;
    if (prune) {  // drops terms anywhere in the rows: rows shrink, later rows move down
      options.min_df = {/*is_fraction=*/false, 3.0};
      options.max_df = {/*is_fraction=*/true, 0.5};
      options.max_features = 120;
    }
    auto fit = CountVectorizer::FitTransform(train, options);
    REQUIRE(fit.ok());
    REQUIRE(fit->rows.size() == train.size());
    REQUIRE(fit->rows.offsets.back() == fit->rows.indices.size());
    std::vector<SparseVector> list;
    for (size_t d = 0; d < train.size(); ++d) {
      list.push_back(fit->vectorizer.Vectorizer::Transform(train[d]));
      RequireSameRows(fit->rows[d], list.back());
    }
    // Storage order (spec 2.8): each row ascending in the order the features first occur in the
    // rows (= first occurrence in the corpus), not by column.
    std::vector<size_t> first_seen(fit->vectorizer.num_features(), SIZE_MAX);
    size_t seen = 0, unsorted_rows = 0;
    for (size_t d = 0; d < train.size(); ++d) {
      const SparseRowRef row = fit->rows[d];
      for (size_t e = 0; e < row.indices.size(); ++e) {
        if (first_seen[row.indices[e]] == SIZE_MAX) first_seen[row.indices[e]] = seen++;
        if (e > 0) REQUIRE(first_seen[row.indices[e - 1]] < first_seen[row.indices[e]]);
        if (e > 0 && row.indices[e - 1] > row.indices[e]) ++unsorted_rows;
      }
    }
    CHECK(unsorted_rows > 0);  // the order is not ascending columns (this corpus tells them apart)
    // Both forms of the rows read the same through a view, and fit the same classifier bits.
    const SparseRowsView csr(fit->rows), rows(list);
    REQUIRE(csr.size() == rows.size());
    std::vector<std::string> labels;
    for (size_t d = 0; d < train.size(); ++d) labels.push_back(d % 3 == 0 ? "x" : "y");
    auto a = MultinomialNb::Fit(fit->rows, fit->vectorizer.num_features(), labels, {}, {});
    auto b = MultinomialNb::Fit(list, fit->vectorizer.num_features(), labels, {}, {});
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(a->feature_count() == b->feature_count());
    CHECK(a->feature_log_prob() == b->feature_log_prob());
  }
}

TEST_CASE("The rows' forecast only sizes storage: any expectation gives the same rows") {
  std::mt19937_64 rng(9);
  const std::vector<std::string> train = RandomDocs(rng, 300, 150);
  size_t bytes = 0;
  for (const std::string& t : train) bytes += t.size();
  // None, exact, far too small, far too large, and split over calls (as batches do).
  for (const int mode : {0, 1, 2, 3, 4}) {
    for (const CountVectorizerOptions& options : {CountVectorizerOptions(), CharWb(1, 3)}) {
      CountVectorizer::Fitter fitter(options);
      if (mode == 1) fitter.Expect(train.size(), bytes);
      if (mode == 2) fitter.Expect(1, 1);
      if (mode == 3) fitter.Expect(100 * train.size(), 1000 * bytes);
      for (size_t d = 0; d < train.size(); ++d) {
        if (mode == 4 && d % 70 == 0) fitter.Expect(70, 70 * 40);
        REQUIRE(fitter.Add(train[d]).ok());
      }
      auto fit = fitter.Finish();
      REQUIRE(fit.ok());
      REQUIRE(fit->rows.size() == train.size());
      for (size_t d = 0; d < train.size(); ++d) {
        RequireSameRows(fit->rows[d], fit->vectorizer.Vectorizer::Transform(train[d]));
      }
    }
  }
}

TEST_CASE("char_wb word memo: past its bounds it stops storing and stays exact") {
  // 70 000 distinct words (over the memo's 65 536 entries) in one text, then texts of them again.
  std::string big;
  std::vector<std::string> words;
  for (int i = 0; i < 70000; ++i) {
    words.push_back("w" + std::to_string(i));
    big += words.back() + " ";
  }
  auto fit = CountVectorizer::FitTransform({big, "w1 w69999 w123"}, CharWb(1, 3));
  REQUIRE(fit.ok());
  AnalyzerScratch scratch;
  SparseVector row;
  for (const std::string& text : {big, std::string("w1 w69999 w5 w65537"), big}) {
    fit->vectorizer.Transform(text, &scratch, &row);
    RequireSameRows(row, fit->vectorizer.Vectorizer::Transform(text));
  }
  RequireSameRows(fit->rows[0], fit->vectorizer.Vectorizer::Transform(big));
}

}  // namespace
}  // namespace maas::discriminative

namespace maas::discriminative {
namespace {

TEST_CASE("OrderedRow gives the ids ascending with their counts, on every row size and width") {
  std::mt19937_64 rng(13);
  AnalyzerScratch scratch;
  // Widths around the 64-feature words and the 4096-feature summary words; rows from empty to
  // wider than the insertion-sort cutoff, ids clustered or spread, repeats counted.
  // 2 000 000: rows spread wider than twice their length in 4096-feature summary words take the
  // comparison sort instead (insertion sort up to 32 ids, std::sort past that).
  for (const size_t width : {1, 63, 64, 65, 4095, 4096, 4097, 20000, 300000, 2000000}) {
    for (int trial = 0; trial < 60; ++trial) {
      const size_t n = rng() % 120;
      const size_t span = trial % 3 == 0 ? std::min<size_t>(width, 200) : width;
      const size_t offset = rng() % (width - span + 1);
      scratch.dense.assign(width, 0.0);
      scratch.ids.clear();
      std::map<uint32_t, double> expected;
      for (size_t k = 0; k < n; ++k) {
        const auto id = static_cast<uint32_t>(offset + rng() % span);
        if (scratch.dense[id] == 0.0) scratch.ids.push_back(id);
        scratch.dense[id] += 1.0;
        expected[id] += 1.0;
      }
      const bool binary = trial % 5 == 4;
      SparseVector row;
      OrderedRow(width, binary, &scratch, &row);
      REQUIRE(row.indices.size() == expected.size());
      size_t e = 0;
      for (const auto& [id, count] : expected) {
        REQUIRE(row.indices[e] == id);
        REQUIRE(row.values[e] == (binary ? 1.0 : count));
        ++e;
      }
      // The scratch is clean for the next text.
      REQUIRE(scratch.ids.empty());
      const auto zero = [](auto v) { return v == 0; };
      REQUIRE(std::all_of(scratch.dense.begin(), scratch.dense.end(), zero));
      REQUIRE(std::all_of(scratch.bits.begin(), scratch.bits.end(), zero));
      REQUIRE(std::all_of(scratch.summary.begin(), scratch.summary.end(), zero));
    }
  }
}

TEST_CASE("MultinomialNB's joint log-likelihood: the same bits for every class count") {
  std::mt19937_64 rng(17);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  // 2..20 classes: the fixed-count kernels (up to 16) and past them the blocked kernels (blocks
  // of 32 / 64 classes on AVX2 / AVX-512, a partial last vector and block) or the generic loop,
  // against the sum written out here in the documented order (entries in row order, then the
  // prior).
  std::vector<size_t> class_counts;
  for (size_t k = 2; k <= 20; ++k) class_counts.push_back(k);
  for (size_t k : {31, 32, 33, 63, 64, 65, 70, 101, 130}) class_counts.push_back(k);
  for (const size_t k : class_counts) {
    const size_t features = 50;
    std::vector<SparseVector> rows;
    std::vector<std::string> labels;
    for (size_t r = 0; r < 3 * k; ++r) {
      SparseVector row;
      for (uint32_t f = 0; f < features; ++f) {
        if (rng() % 3 == 0) {
          row.indices.push_back(f);
          row.values.push_back(static_cast<double>(1 + rng() % 4));
        }
      }
      rows.push_back(row);
      labels.push_back("c" + std::to_string(100 + r % k));
    }
    auto nb = MultinomialNb::Fit(rows, features, labels, {}, MultinomialNbOptions());
    REQUIRE(nb.ok());
    for (int q = 0; q < 20; ++q) {
      SparseVector row;
      for (uint32_t f = 0; f < features + 3; ++f) {  // ids past the features are skipped
        if (rng() % 4 == 0) {
          row.indices.push_back(f);
          row.values.push_back(unit(rng) * 5.0);
        }
      }
      std::vector<double> expected(k);
      const std::vector<double> flp = nb->feature_log_prob();
      for (size_t c = 0; c < k; ++c) {
        double sum = 0.0;
        for (size_t e = 0; e < row.indices.size(); ++e) {
          if (row.indices[e] >= features) continue;
          sum += row.values[e] * flp[c * features + row.indices[e]];
        }
        expected[c] = sum + nb->class_log_prior()[c];
      }
      // On every SIMD level the CPU has (the AVX-512 kernels hold a row in one or two vectors),
      // and through the process's own.
      for (const random::SimdLevel level : random::SupportedSimdLevels()) {
        INFO("level " << random::SimdLevelName(level) << ", classes " << k);
        std::vector<double> got(k + 1, 7.0);  // and nothing past the k classes written
        nb->JointLogLikelihoodWith(level, row, got.data());
        for (size_t c = 0; c < k; ++c) REQUIRE(got[c] == expected[c]);
        REQUIRE(got[k] == 7.0);
      }
      std::vector<double> got(k);
      nb->JointLogLikelihood(row, got.data());
      REQUIRE(got == expected);
    }
  }
}

TEST_CASE(
    "predict_proba from k exponentials is within a few ulps of exp(log probabilities), and equal "
    "to it from kSoftmaxBound on") {
  std::mt19937_64 rng(19);
  std::normal_distribution<double> normal(0.0, 1.0);
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> cases = {
      {-1.0, -1.0}, {-700.0, -0.5, -0.5}, {0.0, -inf},           {-inf, -inf},
      {inf, 0.0},   {std::nan(""), 0.0},  {-1e300, -1e300, -3.0}};
  for (int i = 0; i < 2000; ++i) {
    std::vector<double> jll(2 + rng() % 12);
    const double scale = std::pow(10.0, static_cast<double>(rng() % 4));
    for (double& v : jll) v = -500.0 + scale * normal(rng);
    cases.push_back(jll);
  }
  // Long texts: |jll| past kSoftmaxBound with probabilities away from 0 and 1.
  for (int i = 0; i < 500; ++i) {
    std::vector<double> jll(2 + rng() % 12);
    const double base = -std::pow(10.0, 3.0 + static_cast<double>(rng() % 3)) * (1.0 + rng() % 7);
    for (double& v : jll) v = base + 3.0 * normal(rng);
    cases.push_back(jll);
  }
  for (const std::vector<double>& jll : cases) {
    const size_t k = jll.size();
    const double eps = std::numeric_limits<double>::epsilon();
    double magnitude = 0.0;
    for (const double v : jll) {
      if (std::isfinite(v)) magnitude = std::max(magnitude, std::abs(v));
    }
    std::vector<double> log_p(k), want(k), got(k);
    LogProbabilitiesFromJointLogLikelihood(jll.data(), k, log_p.data());
    for (size_t c = 0; c < k; ++c) want[c] = std::exp(log_p[c]);
    ProbabilitiesFromJointLogLikelihood(jll.data(), k, got.data());
    const double max = *std::max_element(jll.begin(), jll.end());
    for (size_t c = 0; c < k; ++c) {
      if (std::fabs(max) >= kSoftmaxBound) {
        // scikit-learn's own operations (an audit found the softmax 2.9e-11 away at |jll| 2.7e5).
        INFO("class " << c << " of " << k << ": jll " << jll[c]);
        REQUIRE(std::memcmp(&got[c], &want[c], sizeof(double)) == 0);
      } else if (std::isnan(want[c])) {
        REQUIRE(std::isnan(got[c]));
      } else {
        // The reference rounds jll_c - lse at the magnitude of jll (an absolute error of an ulp of
        // |jll| in the exponent, so relative in the probability); ours adds a few ulps.
        INFO("class " << c << " of " << k << ": jll " << jll[c] << ", got " << got[c] << ", want "
                      << want[c]);
        REQUIRE(std::abs(got[c] - want[c]) <=
                8 * eps * (1.0 + magnitude) * std::max(got[c], want[c]));
      }
    }
  }
}

}  // namespace
}  // namespace maas::discriminative
