// Every instruction-set path of the ASCII word tokenizer (AsciiWordRunsWith), of the vocabulary
// lookups on its runs (CountAsciiUnigramsWith) and of a row's ordering (OrderedRowIntoWith), each
// path this CPU has forced in turn (so a path the process's dispatch does not pick here is tested
// too), against plain references computed here: the runs of [0-9A-Za-z_] bytes found byte by
// byte, the counts of TermTable::Find of each (lowercased) token of 2 bytes or more, and the row
// as a std::map. The texts end at a page boundary followed by an inaccessible page, so any read
// past a text's end faults.
#include "services/discriminative/core/count_simd.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_replace.h"
#include "services/discriminative/core/hashing_simd.h"
#include "services/discriminative/core/term_table.h"
#include "services/discriminative/core/text_analysis.h"
#include "services/discriminative/core/token_pattern.h"

namespace maas::discriminative {
namespace {

// Holds a text so that its last byte is the last readable byte before an inaccessible page.
class GuardedText {
 public:
  GuardedText() {
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    pages_ = 64;
    void* mem = mmap(nullptr, (pages_ + 1) * page_, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(mem != MAP_FAILED);
    base_ = static_cast<char*>(mem);
    REQUIRE(mprotect(base_ + pages_ * page_, page_, PROT_NONE) == 0);
  }
  ~GuardedText() { munmap(base_, (pages_ + 1) * page_); }
  GuardedText(const GuardedText&) = delete;
  GuardedText& operator=(const GuardedText&) = delete;

  std::string_view Place(const std::string& text) {
    REQUIRE(text.size() <= pages_ * page_);
    char* at = base_ + pages_ * page_ - text.size();
    std::memcpy(at, text.data(), text.size());
    return std::string_view(at, text.size());
  }

 private:
  char* base_ = nullptr;
  size_t page_ = 0;
  size_t pages_ = 0;
};

// What LowerWordRunsWith leaves in scratch->preprocessed for valid `text`: PythonLower(text), but
// for each U+0130 lowered to 'i' and a space in its own 2 bytes instead of "i\u0307" (the same
// runs). Texts with U+0130 may not hold U+0307 of their own (it would be replaced too).
std::string RunsLower(const std::string& text) {
  std::string lower = PythonLower(text);
  if (text.find("\xc4\xb0") == std::string::npos) return lower;
  REQUIRE(text.find("\xcc\x87") == std::string::npos);
  absl::StrReplaceAll({{"i\xcc\x87", "i "}}, &lower);
  return lower;
}

bool IsWordByte(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

std::vector<std::pair<uint32_t, uint32_t>> ReferenceRuns(std::string_view text) {
  std::vector<std::pair<uint32_t, uint32_t>> runs;
  for (size_t i = 0; i < text.size();) {
    if (!IsWordByte(text[i])) {
      ++i;
      continue;
    }
    const size_t start = i;
    while (i < text.size() && IsWordByte(text[i])) ++i;
    runs.emplace_back(static_cast<uint32_t>(start), static_cast<uint32_t>(i));
  }
  return runs;
}

// ReferenceRuns(text) as the arrays of an AsciiRuns, which they outlive.
struct ReferenceRunArrays {
  explicit ReferenceRunArrays(std::string_view text) {
    for (const auto& [start, end] : ReferenceRuns(text)) {
      starts.push_back(start);
      ends.push_back(end);
    }
  }
  AsciiRuns Runs() const { return AsciiRuns{starts.data(), ends.data(), starts.size()}; }
  std::vector<uint32_t> starts, ends;
};

std::vector<std::pair<uint32_t, uint32_t>> RunsOf(const AsciiRuns& runs) {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  for (size_t k = 0; k < runs.count; ++k) out.emplace_back(runs.starts[k], runs.ends[k]);
  return out;
}

// Random ASCII texts: tokens of every length 1..40 (and a few longer), mixed case, digits and
// underscores, separated by runs of punctuation, whitespace and control bytes; some texts end in
// a token, some in separators, some are only separators or empty.
std::vector<std::string> RandomTexts(std::mt19937_64& rng, size_t count) {
  const std::string word_bytes = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
  std::string separators;
  for (int c = 0; c < 0x80; ++c) {
    if (!IsWordByte(static_cast<char>(c))) separators.push_back(static_cast<char>(c));
  }
  std::vector<std::string> texts;
  texts.push_back("");
  texts.push_back(" ");
  texts.push_back("a");
  texts.push_back("ab");
  for (size_t length = 1; length <= 40; ++length) {  // one token of each length, alone and last
    std::string token;
    for (size_t i = 0; i < length; ++i) token.push_back(word_bytes[rng() % word_bytes.size()]);
    texts.push_back(token);
    texts.push_back(". " + token);
    texts.push_back(token + " x");
  }
  // The densest run bounds: a run starting (and one ending) at every other byte, 32 of each per
  // 64-bit mask word, for 1 to 3 words (the flattening steps' most writes past their count).
  for (const size_t length : {63, 64, 65, 129, 191}) {
    std::string dense(length, ' ');
    for (size_t i = 0; i < length; i += 2) dense[i] = 'a';
    texts.push_back(dense);
    texts.push_back(dense.substr(1));
  }
  for (size_t t = 0; t < count; ++t) {
    std::string text;
    const size_t tokens = rng() % 200;
    // A small per-text alphabet of words, so that tokens repeat within a text.
    const bool repeat = rng() % 2 == 0;
    // A third of the texts are prose-like (words of 1-9 bytes, one separator): eight tokens then
    // lie within 64 bytes (the AVX-512 path's picked keys), the others sometimes within 128 (picked
    // from two loads), often not (gathered).
    const bool prose = rng() % 3 == 0;
    std::vector<std::string> words;
    for (size_t i = 0; i < tokens; ++i) {
      if (prose ? i > 0 : rng() % 3 != 0) {
        for (size_t s = prose ? 1 : 1 + rng() % 3; s > 0; --s) {
          text.push_back(separators[rng() % separators.size()]);
        }
      }
      if (repeat && !words.empty() && rng() % 2 == 0) {
        text += words[rng() % words.size()];
        text.push_back(' ');
        continue;
      }
      const size_t length = prose             ? 1 + rng() % 9
                            : rng() % 16 == 0 ? 1 + rng() % 70
                                              : 1 + rng() % 40;
      std::string word;
      for (size_t i = 0; i < length; ++i) word.push_back(word_bytes[rng() % word_bytes.size()]);
      words.push_back(word);
      text += word;
    }
    texts.push_back(std::move(text));
  }
  return texts;
}

bool HasHighByte(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return (c & 0x80) != 0; });
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  return out;
}

TEST_CASE("AsciiWordRunsWith: every path gives the reference runs, false on any byte >= 0x80") {
  std::mt19937_64 rng(11);
  GuardedText guarded;
  AnalyzerScratch scratch;
  const std::vector<std::string> texts = RandomTexts(rng, 600);
  for (const CountSimdPath path : SupportedCountSimdPaths()) {
    INFO("path " << random::SimdLevelName(path));
    for (const std::string& text : texts) {
      const std::string_view placed = guarded.Place(text);
      AsciiRuns runs;
      REQUIRE(AsciiWordRunsWith(path, placed, &scratch, &runs));
      INFO("text '" << text << "'");
      CHECK(RunsOf(runs) == ReferenceRuns(text));
      if (!text.empty()) {  // one byte >= 0x80 anywhere: refused
        std::string bad = text;
        bad[rng() % bad.size()] = static_cast<char>(0x80 + rng() % 0x80);
        CHECK_FALSE(AsciiWordRunsWith(path, guarded.Place(bad), &scratch, &runs));
      }
    }
  }
}

// A custom pattern's runs of one set of bytes (\w+, \S+, [a-z]{3,}): every path against the runs
// found byte by byte, for sets with and without NUL (the bytes a vector path pads a text's last
// step with), texts of every ASCII byte and of each length 0..199 (the partial last steps), the
// runs shorter than min_length left out above 2.
TEST_CASE("AsciiSetRunsWith: every path gives the runs of the set's bytes") {
  std::mt19937_64 rng(23);
  GuardedText guarded;
  AnalyzerScratch scratch;
  std::vector<AsciiByteSet> sets(6);
  for (unsigned b = 1; b < 128; ++b) {
    if (b != ' ' && b != '\t' && b != '\n' && b != '\r' && b != '\f' && b != '\v') sets[0].Add(b);
    if (b >= 'a' && b <= 'z') sets[1].Add(b);
    sets[4].Add(b);
  }
  sets[0].Add(0);  // \S (NUL is not a space)
  sets[4].Add(0);  // every ASCII byte
  for (unsigned b = 0; b < 128; ++b) {
    if (rng() % 2 == 0) sets[2].Add(b);
    if (rng() % 8 == 0) sets[3].Add(b);
  }
  // sets[5] is empty.
  for (size_t which = 0; which < sets.size(); ++which) {
    const AsciiByteSet& set = sets[which];
    for (const size_t min_length : {1, 2, 3, 5}) {
      for (size_t length = 0; length < 200 + 3 * 1000; length += length < 200 ? 1 : 1000) {
        std::string text(length, ' ');
        for (char& c : text) {  // mostly letters and spaces, the other bytes now and then
          const uint64_t r = rng() % 16;
          c = static_cast<char>(r < 8 ? 'a' + rng() % 26 : r < 12 ? ' ' : rng() % 128);
        }
        std::vector<std::pair<uint32_t, uint32_t>> expected;
        for (size_t i = 0; i < length;) {
          if (!set.Contains(static_cast<unsigned char>(text[i]))) {
            ++i;
            continue;
          }
          const size_t start = i;
          while (i < length && set.Contains(static_cast<unsigned char>(text[i]))) ++i;
          if (min_length <= 2 || i - start >= min_length) {
            expected.emplace_back(static_cast<uint32_t>(start), static_cast<uint32_t>(i));
          }
        }
        for (const CountSimdPath path : SupportedCountSimdPaths()) {
          INFO("set " << which << ", min_length " << min_length << ", path "
                      << random::SimdLevelName(path) << ", text '" << absl::CEscape(text) << "'");
          AsciiRuns runs;
          REQUIRE(AsciiSetRunsWith(path, guarded.Place(text), set, min_length, &scratch, &runs));
          CHECK(RunsOf(runs) == expected);
          if (length > 0) {  // one byte >= 0x80 anywhere: refused
            std::string bad = text;
            bad[rng() % length] = static_cast<char>(0x80 + rng() % 0x80);
            CHECK_FALSE(
                AsciiSetRunsWith(path, guarded.Place(bad), set, min_length, &scratch, &runs));
          }
        }
      }
    }
  }
}

// A pattern of one set's runs on any UTF-8 text (the preprocessed text of Analyzer::TermRuns):
// every path's runs, those of MinTermBytes() bytes or more, are the run scanner's tokens
// (TokenPattern::FindRunBounds, itself checked against ICU's matching in count_vectorizer_test and
// against Python in the token-pattern oracle), on texts of ASCII and of code points of 2, 3 and 4
// bytes, combining marks and NUL, crossing the 64-byte words at every offset.
TEST_CASE("SetRunsWith: every path gives the run scanner's tokens") {
  std::mt19937_64 rng(29);
  GuardedText guarded;
  AnalyzerScratch scratch;
  const std::vector<std::string> pieces = {"a",
                                           "B",
                                           "z",
                                           "7",
                                           "_",
                                           " ",
                                           " ",
                                           ",",
                                           ".",
                                           "-",
                                           "'",
                                           std::string(1, '\0'),
                                           "\t",
                                           "\xc3\xa9",
                                           "\xc3\x9f",
                                           "\xce\xa3",
                                           "\xcc\x81",
                                           "\xe4\xb8\xad",
                                           "\xe2\x80\x94",
                                           "\xf0\x9f\x98\x80",
                                           "\xc2\xa0"};
  for (const char* source : {R"(\w+)", R"(\S+)", R"([^\W\d_]{3,})", R"(\w\w+)", R"([a-z]+)",
                             R"([^\s,.]{2,})", R"((?a)\w+)"}) {
    const auto pattern = TokenPattern::Compile(source);
    REQUIRE(pattern.ok());
    REQUIRE((*pattern)->ascii_run_set(false) != nullptr);
    const size_t min_bytes = (*pattern)->run_min_length() == 1 ? 1 : 2;
    for (int t = 0; t < 300; ++t) {
      std::string text;
      const size_t count = rng() % 120;
      for (size_t i = 0; i < count; ++i) text += pieces[rng() % pieces.size()];
      std::vector<uint32_t> starts(text.size() / 2 + 1), ends(text.size() / 2 + 1);
      const size_t found = (*pattern)->FindRunBounds(text, false, starts.data(), ends.data());
      std::vector<std::pair<uint32_t, uint32_t>> expected;
      for (size_t k = 0; k < found; ++k) expected.emplace_back(starts[k], ends[k]);
      for (const CountSimdPath path : SupportedCountSimdPaths()) {
        INFO(source << ", path " << random::SimdLevelName(path) << ", text '" << absl::CEscape(text)
                    << "'");
        AsciiRuns runs;
        SetRunsWith(path, guarded.Place(text), **pattern, &scratch, &runs);
        std::vector<std::pair<uint32_t, uint32_t>> tokens;
        for (const auto& [start, end] : RunsOf(runs)) {
          if (end - start >= min_bytes) tokens.emplace_back(start, end);
        }
        CHECK(tokens == expected);
      }
    }
  }
}

// check(path, text, placed, reference) for each supported path and text: the text placed before
// an inaccessible page, its runs found byte by byte (the run-hash tests' loops).
template <typename Check>
void ForEachPathAndRuns(const std::vector<std::string>& texts, Check check) {
  GuardedText guarded;
  for (const CountSimdPath path : SupportedCountSimdPaths()) {
    INFO("path " << random::SimdLevelName(path));
    for (const std::string& text : texts) {
      INFO("text '" << text << "'");
      const std::string_view placed = guarded.Place(text);
      const ReferenceRunArrays reference(text);
      check(path, text, placed, reference);
    }
  }
}

// The hashing vectorizer's hashes of a text's runs: every path, with and without lowercasing,
// against MurmurHash3X86_32 (checked against scikit-learn's values in vectorizers_test.cc) of each
// run's bytes; runs of every length 1..70 (the vector lanes take up to 16 bytes), ending at the
// text's end before an inaccessible page; nothing written past the last run's hash.
TEST_CASE("HashAsciiRunsWith: every path hashes each run as MurmurHash3X86_32") {
  std::mt19937_64 rng(17);
  constexpr uint32_t kUntouched = 0xDEADBEEF;
  const std::vector<std::string> texts = RandomTexts(rng, 600);
  ForEachPathAndRuns(texts, [&](CountSimdPath path, const std::string& text,
                                std::string_view placed, const ReferenceRunArrays& reference) {
    const std::vector<uint32_t>& starts = reference.starts;
    const std::vector<uint32_t>& ends = reference.ends;
    const AsciiRuns runs = reference.Runs();
    for (const bool lower : {false, true}) {
      INFO("lower " << lower);
      std::vector<uint32_t> hashes(runs.count + 20, kUntouched);
      HashAsciiRunsWith(path, placed, runs, lower, hashes.data());
      for (size_t k = 0; k < runs.count; ++k) {
        const std::string run = text.substr(starts[k], ends[k] - starts[k]);
        INFO("run " << k << " '" << run << "'");
        CHECK(hashes[k] == MurmurHash3X86_32(lower ? Lower(run) : run, 0));
      }
      for (size_t k = runs.count; k < hashes.size(); ++k) CHECK(hashes[k] == kUntouched);
    }
  });
}

// The runs' hashed terms for a power-of-two n_features: every path against MurmurHash3X86_32 of
// each run of 2 bytes or more, mapped as scikit-learn maps it (column |h| mod n with |INT32_MIN| =
// 2^31, the sign when alternate_sign), compacted in order; nothing written past runs.count.
TEST_CASE("HashAsciiRunTermsWith: every path maps the runs' hashes to terms as scikit-learn") {
  std::mt19937_64 rng(23);
  std::vector<std::string> texts = RandomTexts(rng, 300);
  texts.push_back("ncmn40xj rbfo61ad a votjyw5d");  // hashes INT32_MIN (column 0, -1)
  constexpr uint32_t kUntouched = 0xDEADBEEF;
  ForEachPathAndRuns(texts, [&](CountSimdPath path, const std::string& text,
                                std::string_view placed, const ReferenceRunArrays& reference) {
    const std::vector<uint32_t>& starts = reference.starts;
    const std::vector<uint32_t>& ends = reference.ends;
    const AsciiRuns runs = reference.Runs();
    for (const uint32_t n : {1u, 2u, 1024u, 1u << 20, 1u << 30}) {
      for (const bool alternate_sign : {false, true}) {
        const bool lower = (n & 2) == 0;
        INFO("n_features " << n << " alternate_sign " << alternate_sign << " lower " << lower);
        std::vector<uint32_t> expected;
        for (size_t k = 0; k < runs.count; ++k) {
          if (ends[k] - starts[k] < 2) continue;
          const std::string run = text.substr(starts[k], ends[k] - starts[k]);
          const auto h = static_cast<int32_t>(MurmurHash3X86_32(lower ? Lower(run) : run, 0));
          const uint64_t magnitude = h < 0 ? -static_cast<int64_t>(h) : h;
          expected.push_back(static_cast<uint32_t>(magnitude % n) |
                             (alternate_sign && h < 0 ? kHashedTermNegative : 0u));
        }
        std::vector<uint32_t> terms(runs.count + 20, kUntouched);
        const size_t m =
            HashAsciiRunTermsWith(path, placed, runs, lower, n, alternate_sign, terms.data());
        REQUIRE(m == expected.size());
        CHECK(std::vector<uint32_t>(terms.begin(), terms.begin() + m) == expected);
        for (size_t k = runs.count; k < terms.size(); ++k) CHECK(terms[k] == kUntouched);
      }
    }
  });
}

// A text's row from its hashed terms: every vector path against a std::map of the columns' summed
// values (cancelled columns kept with 0.0, every value 1.0 when binary), on term lists of 0-256
// terms (ranked at once) and of up to 3 000 (split into buckets by column range) with columns
// spanning up to 0x10000 (16-bit lanes), up to 64 blocks of 0x10000 (16-bit lanes per block) or
// more (32-bit lanes), few or many duplicates, either sign, and a column repeated 300 times among
// others (a bucket that cannot be split, sorted). Refused on the baseline path.
TEST_CASE("HashedTermsRowWith: vector paths place and sum the terms as a std::map does") {
  std::mt19937_64 rng(19);
  AnalyzerScratch scratch;
  std::vector<uint32_t> out_index(3300);
  std::vector<double> out_value(3300);
  size_t distinct = 0;
  const std::vector<uint32_t> three = {5, 7, 5};
  for (const CountSimdPath path : SupportedCountSimdPaths()) {
    INFO("path " << random::SimdLevelName(path));
    if (path == CountSimdPath::kBaseline) {
      CHECK_FALSE(HashedTermsRowWith(path, three.data(), 3, false, &scratch, out_index.data(),
                                     out_value.data(), &distinct));
      continue;
    }
    for (int trial = 0; trial < 7000; ++trial) {
      const size_t n = trial < 257 ? static_cast<size_t>(trial)
                                   : (trial % 8 == 0 ? 257 + rng() % 2743 : rng() % 257);
      const bool heavy = trial % 16 == 8;  // one column 300 times more
      // Spans: a few columns (many duplicates); exactly 1 and 2 blocks of 0x10000 columns (one
      // vector of 16-bit offsets, or blocks of them); 2^20; 64 and 65 blocks (the most taken in
      // blocks, then 32-bit lanes); up to 2^31 - 3. Long lists over a few columns would repeat
      // them hundreds of times (sorted buckets): 300 columns at least.
      const uint32_t spans[] = {3, 0x10000, 0x10001, 1u << 20, 0x400000, 0x400001, 0x7FFFFFFDu};
      const uint32_t span = std::max<uint32_t>(spans[rng() % 7], n > 256 ? 300 : 1);
      const uint32_t lo = static_cast<uint32_t>(rng() % (0x7FFFFFFEu - span));
      std::vector<uint32_t> terms(n);
      std::map<uint32_t, double> reference;
      if (heavy) {
        for (int i = 0; i < 300; ++i) {
          terms.push_back((lo + span / 2) | (i % 3 == 0 ? kHashedTermNegative : 0u));
          reference[lo + span / 2] += i % 3 == 0 ? -1.0 : 1.0;
        }
        std::shuffle(terms.begin(), terms.end(), rng);
      }
      for (uint32_t& term : terms) {
        if (term != 0) continue;  // a heavy column's term
        uint32_t column = lo + static_cast<uint32_t>(rng() % span);
        // The span's ends (less often in long lists, so that their buckets are mostly ranked).
        if (rng() % (n > 256 ? 64 : 8) == 0) column = rng() % 2 == 0 ? lo : lo + span - 1;
        const bool negative = rng() % 2 == 0;
        term = column | (negative ? kHashedTermNegative : 0u);
        reference[column] += negative ? -1.0 : 1.0;
      }
      for (const bool binary : {false, true}) {
        INFO("n " << n << " span " << span << " binary " << binary);
        REQUIRE(HashedTermsRowWith(path, terms.data(), terms.size(), binary, &scratch,
                                   out_index.data(), out_value.data(), &distinct));
        REQUIRE(distinct == reference.size());
        size_t e = 0;
        for (const auto& [column, value] : reference) {
          CHECK(out_index[e] == column);
          CHECK(out_value[e] == (binary ? 1.0 : value));
          ++e;
        }
      }
    }
  }
}

TEST_CASE("CountAsciiUnigramsWith: every path counts what TermTable::Find finds") {
  std::mt19937_64 rng(12);
  GuardedText guarded;
  const std::vector<std::string> texts = RandomTexts(rng, 400);
  // Vocabularies: empty, and about half of the distinct (lowercased) tokens of 2 bytes or more,
  // so that lookups hit, miss after the filter, and are ruled out by it.
  for (const bool half : {false, true}) {
    TermTable table;
    if (half) {
      for (const std::string& text : texts) {
        for (const auto& [start, end] : ReferenceRuns(text)) {
          if (end - start >= 2 && rng() % 2 == 0)
            table.Insert(Lower(text.substr(start, end - start)));
        }
      }
    }
    for (const auto& [lower, filter] : {std::pair{true, false}, std::pair{true, true},
                                        std::pair{false, false}, std::pair{false, true}}) {
      for (const CountSimdPath path : SupportedCountSimdPaths()) {
        INFO("path " << random::SimdLevelName(path) << ", lower " << lower << ", filter " << filter
                     << ", terms " << table.size());
        AnalyzerScratch scratch;
        scratch.dense.assign(table.size() + 1, 0.0);
        size_t found_total = 0;
        for (const std::string& text : texts) {
          const std::string_view placed = guarded.Place(text);
          std::map<uint32_t, double> expected;
          for (const auto& [start, end] : ReferenceRuns(text)) {
            if (end - start < 2) continue;
            const std::string_view token = placed.substr(start, end - start);
            const uint32_t id = table.Find(lower ? Lower(token) : std::string(token));
            if (id != TermTable::kNotFound) expected[id] += 1.0;
          }
          AsciiRuns runs;
          REQUIRE(AsciiWordRunsWith(CountSimdPath::kBaseline, placed, &scratch, &runs));
          scratch.ids.clear();
          scratch.lookup_filter = filter;  // the AVX-512 path's two ways, each on every text
          CountAsciiUnigramsWith(path, placed, runs, lower, table, &scratch);
          std::map<uint32_t, double> got;
          for (const uint32_t id : scratch.ids) {
            CHECK(got.count(id) == 0);  // each id listed once
            got[id] = scratch.dense[id];
          }
          INFO("text '" << text << "'");
          CHECK(got == expected);
          found_total += got.size();
          for (const uint32_t id : scratch.ids) scratch.dense[id] = 0.0;
          CHECK(std::all_of(scratch.dense.begin(), scratch.dense.end(),
                            [](double d) { return d == 0.0; }));
        }
        if (half && lower) CHECK(found_total > 1000);  // the lookups did find terms
      }
    }
  }
}

// The texts of RandomTexts with code points >= 0x80 put in between their bytes: \w ones (é, Σ,
// 中, Arabic-Indic 3, ½, 𐐀) and others (a combining acute, U+3000 and no-break spaces, an emoji,
// '…'), a few per text or, in a quarter of the texts, one every few bytes (so that code points
// straddle the 64-byte words of the masks, and runs of one code point occur).
std::vector<std::string> RandomUnicodeTexts(std::mt19937_64& rng, size_t count) {
  const std::string_view code_points[] = {"\xc3\xa9",         "\xce\xa3",     "\xe4\xb8\xad",
                                          "\xd9\xa3",         "\xc2\xbd",     "\xf0\x90\x90\x80",
                                          "\xcc\x81",         "\xe3\x80\x80", "\xc2\xa0",
                                          "\xf0\x9f\x98\x80", "\xe2\x80\xa6"};
  std::vector<std::string> texts = RandomTexts(rng, count);
  for (std::string& text : texts) {
    const bool dense = rng() % 4 == 0;
    const size_t inserts = dense ? 1 + text.size() / 3 : rng() % 8;
    for (size_t i = 0; i < inserts; ++i) {
      size_t at = rng() % (text.size() + 1);
      while (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) ++at;
      text.insert(at, std::string(code_points[rng() % std::size(code_points)]));
    }
    REQUIRE(ValidateUtf8(text).ok());
  }
  texts.push_back("\xc3\xa9");  // one code point of 2 bytes: no token
  texts.push_back("\xc3\xa9\xc3\xa9 \xf0\x90\x90\x80 a\xc3\xa9 \xe4\xb8\xad");
  return texts;
}

// Calls check(path, text, placed) for every path this CPU has and every text, `placed` being the
// text's copy that ends right before an inaccessible page.
template <typename Check>
void ForEveryPathAndText(const std::vector<std::string>& texts, Check check) {
  GuardedText guarded;
  for (const CountSimdPath path : SupportedCountSimdPaths()) {
    INFO("path " << random::SimdLevelName(path));
    for (const std::string& text : texts) {
      INFO("text '" << text << "'");
      check(path, text, guarded.Place(text));
    }
  }
}

// The tokens of `runs` in doc: its runs of 2 bytes or more.
std::vector<std::string> TokensOf(std::string_view doc, const AsciiRuns& runs) {
  std::vector<std::string> tokens;
  for (size_t k = 0; k < runs.count; ++k) {
    CHECK(runs.starts[k] < runs.ends[k]);
    if (runs.ends[k] - runs.starts[k] >= 2) {
      tokens.emplace_back(doc.substr(runs.starts[k], runs.ends[k] - runs.starts[k]));
    }
  }
  return tokens;
}

TEST_CASE("WordRunsWith: every path gives the default pattern's tokens of Unicode text") {
  std::mt19937_64 rng(14);
  AnalyzerScratch scratch;
  std::vector<std::string> texts = RandomUnicodeTexts(rng, 600);
  for (std::string& text : RandomTexts(rng, 100)) texts.push_back(std::move(text));  // ASCII too
  size_t non_ascii_tokens = 0;
  ForEveryPathAndText(texts,
                      [&](CountSimdPath path, const std::string& text, std::string_view placed) {
                        AsciiRuns runs;
                        REQUIRE(WordRunsWith(path, placed, &scratch, &runs));
                        const std::vector<std::string> want = DefaultTokenize(text);
                        CHECK(TokensOf(placed, runs) == want);
                        for (const std::string& token : want)
                          non_ascii_tokens += HasHighByte(token) ? 1 : 0;
                      });
  // The texts did hold tokens with code points >= 0x80 (counted once per path: a CPU without
  // AVX-512 checks fewer paths).
  CHECK(non_ascii_tokens / SupportedCountSimdPaths().size() > 10000);
}

// A \w code point of 2, 3 and 4 bytes at every offset of the first three 64-byte words, alone (one
// code point, no token) or followed or preceded by more \w bytes: the runs of one code point are
// dropped wherever the code point and the byte after it fall, all of their bytes (the AVX-512 path
// drops them per 64-bit word, carrying the bits of a code point that crosses into the next).
std::vector<std::string> LoneCodePointTexts() {
  const std::string_view code_points[] = {"\xc3\xa9", "\xe4\xb8\xad", "\xf0\x90\x90\xa8"};
  std::vector<std::string> texts;
  for (size_t k = 0; k < 3 * 64; ++k) {
    for (const std::string_view cp : code_points) {
      const std::string c(cp);
      for (const std::string& follow : {std::string(), std::string(" "), std::string("z"), c,
                                        std::string("!") + c, std::string(" ") + c + "z"}) {
        texts.push_back(std::string(k, ' ') + c + follow + " q");
        if (k > 0) texts.push_back(std::string(k - 1, '.') + "a" + c + follow);
      }
    }
  }
  return texts;
}

TEST_CASE("WordRunsWith and LowerWordRunsWith: runs of one code point at every offset") {
  const std::vector<std::string> texts = LoneCodePointTexts();
  AnalyzerScratch scratch;
  ForEveryPathAndText(
      texts, [&](CountSimdPath path, const std::string& text, std::string_view placed) {
        AsciiRuns runs;
        REQUIRE(WordRunsWith(path, placed, &scratch, &runs));
        CHECK(TokensOf(placed, runs) == DefaultTokenize(text));
        // No run holds a part of a dropped code point (a 1-byte run of its
        // continuation byte would be skipped by readers, but is no run of \w).
        for (size_t k = 0; k < runs.count; ++k) {
          CHECK((static_cast<unsigned char>(placed[runs.starts[k]]) & 0xC0) != 0x80);
        }
        REQUIRE(LowerWordRunsWith(path, placed, &scratch, &runs) == LowerRunsResult::kDone);
        CHECK(TokensOf(scratch.preprocessed, runs) == DefaultTokenize(PythonLower(text)));
      });
}

TEST_CASE("LowerWordRunsWith: overlong forms and surrogates are ill-formed, on every path") {
  // Each as the only code point >= 0x80 of a text, and after well-formed 2- and 3-byte ones, at
  // several offsets: an overlong 3-byte form of U+023A (whose lowercase U+2C65 takes 3 bytes) or of
  // NUL, overlong 2-byte forms, UTF-16 surrogates, a 4-byte form beyond U+10FFFF.
  const std::string_view bad[] = {"\xe0\x88\xba", "\xe0\x80\x80",    "\xe0\x9f\xbf",
                                  "\xc0\x80",     "\xc1\xbf",        "\xed\xa0\x80",
                                  "\xed\xbf\xbf", "\xf4\x90\x80\x80"};
  std::vector<std::string> texts;
  for (const std::string_view b : bad) {
    for (const size_t k : {0, 1, 30, 61, 62, 63, 64, 100}) {
      texts.push_back(std::string(k, 'a') + std::string(b) + "bc");
      texts.push_back("\xc3\xa9t\xe2\x80\x99" + std::string(k, ' ') + std::string(b));
    }
  }
  AnalyzerScratch scratch;
  ForEveryPathAndText(
      texts, [&](CountSimdPath path, const std::string& text, std::string_view placed) {
        REQUIRE_FALSE(ValidateUtf8(text).ok());
        AsciiRuns runs;
        CHECK(LowerWordRunsWith(path, placed, &scratch, &runs) == LowerRunsResult::kIllFormed);
      });
}

TEST_CASE(
    "CountAsciiUnigramsWith: on WordRuns of Unicode text, every path counts what Find finds") {
  std::mt19937_64 rng(15);
  GuardedText guarded;
  const std::vector<std::string> texts = RandomUnicodeTexts(rng, 400);
  TermTable table;  // about half of the distinct tokens
  for (const std::string& text : texts) {
    for (const std::string& token : DefaultTokenize(text)) {
      if (rng() % 2 == 0) table.Insert(token);
    }
  }
  for (const bool filter : {false, true}) {
    for (const CountSimdPath path : SupportedCountSimdPaths()) {
      INFO("path " << random::SimdLevelName(path) << ", filter " << filter);
      AnalyzerScratch scratch;
      scratch.dense.assign(table.size() + 1, 0.0);
      size_t found_non_ascii = 0;
      for (const std::string& text : texts) {
        INFO("text '" << text << "'");
        const std::string_view placed = guarded.Place(text);
        std::map<uint32_t, double> expected;
        for (const std::string& token : DefaultTokenize(text)) {
          const uint32_t id = table.Find(token);
          if (id != TermTable::kNotFound) expected[id] += 1.0;
        }
        AsciiRuns runs;
        REQUIRE(WordRunsWith(CountSimdPath::kBaseline, placed, &scratch, &runs));
        scratch.ids.clear();
        scratch.lookup_filter = filter;
        CountAsciiUnigramsWith(path, placed, runs, /*lower=*/false, table, &scratch);
        std::map<uint32_t, double> got;
        for (const uint32_t id : scratch.ids) {
          CHECK(got.count(id) == 0);
          got[id] = scratch.dense[id];
          found_non_ascii += HasHighByte(table.term(id)) ? 1 : 0;
        }
        CHECK(got == expected);
        for (const uint32_t id : scratch.ids) scratch.dense[id] = 0.0;
      }
      CHECK(found_non_ascii > 200);
    }
  }
}

TEST_CASE(
    "LowerWordRunsWith: every path lowercases and splits as PythonLower and DefaultTokenize") {
  // The texts of RandomTexts with code points >= 0x80 put in between their bytes: ones the table
  // lowercases in place (É, Ω, Д, ǅ, beyond the BMP Deseret 𐐀 and Adlam 𞤀, and caseless
  // ones: 中, ½, a combining acute, U+3000, an emoji, ...), Σ (whose lowercase, σ or final ς,
  // depends on the cased and case-ignorable code points around it: letters, the acute, ’ and '
  // around it, or text's ends) and, in some texts, ones that do not lowercase in place (İ to
  // "i\u0307", the Kelvin sign to k, Ⱥ to ⱥ of 3 bytes), from which on the text is lowercased
  // into a copy and split again; some texts then made ill-formed (a byte replaced by 0xFF, or a
  // sequence cut short), before or after those.
  const std::string_view in_place[] = {
      "\xc3\x89",     "\xc3\xa9",     "\xce\xa9",         "\xd0\x94",         "\xc7\x85",
      "\xe4\xb8\xad", "\xc2\xbd",     "\xcc\x81",         "\xe3\x80\x80",     "\xc2\xa0",
      "\xe2\x80\xa6", "\xe2\x80\x99", "\xf0\x90\x90\x80", "\xf0\x9f\x98\x80", "\xf0\x9e\xa4\x80",
      "\xce\xa3",     "\xce\xa3",     "\xce\x91\xce\xa3", "\xce\xa3'",        "\xce\xa3\xcc\x81",
      "'\xce\xa3",    "\xce\xa3 "};
  const std::string_view general[] = {"\xc4\xb0", "\xe2\x84\xaa", "\xc8\xba"};
  std::mt19937_64 rng(16);
  std::vector<std::string> texts = RandomTexts(rng, 500);
  for (std::string& text : texts) {
    const size_t inserts = rng() % 4 == 0 ? 1 + text.size() / 3 : rng() % 8;
    for (size_t i = 0; i < inserts; ++i) {
      size_t at = rng() % (text.size() + 1);
      while (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) ++at;
      text.insert(at, std::string(rng() % 40 == 0 ? general[rng() % std::size(general)]
                                                  : in_place[rng() % std::size(in_place)]));
    }
    if (rng() % 8 == 0 && !text.empty()) {
      const size_t at = rng() % text.size();
      if (rng() % 2 == 0) {
        text[at] = '\xff';
      } else {
        text.insert(at, "\xe4\xb8");  // a 3-byte sequence missing its last byte
      }
    }
  }
  AnalyzerScratch scratch;
  size_t done = 0, ill_formed = 0, special_done = 0, special_ill_formed = 0;
  ForEveryPathAndText(
      texts, [&](CountSimdPath path, const std::string& text, std::string_view placed) {
        AsciiRuns runs;
        const LowerRunsResult result = LowerWordRunsWith(path, placed, &scratch, &runs);
        bool special = false;  // a code point the table does not lowercase in place
        for (const std::string_view g : general) special |= text.find(g) != std::string::npos;
        if (!ValidateUtf8(text).ok()) {
          CHECK(result == LowerRunsResult::kIllFormed);
          ++ill_formed;
          special_ill_formed += special;
          return;
        }
        REQUIRE(result == LowerRunsResult::kDone);
        ++done;
        special_done += special;
        const std::string lower = PythonLower(text);
        CHECK(scratch.preprocessed == RunsLower(text));
        CHECK(TokensOf(scratch.preprocessed, runs) == DefaultTokenize(lower));
      });
  // Each case was met (counted once per path: a CPU without AVX-512 checks fewer paths).
  const size_t paths = SupportedCountSimdPaths().size();
  CHECK(done / paths > 300);
  CHECK(ill_formed / paths > 50);
  CHECK(special_done / paths > 60);
  CHECK(special_ill_formed / paths > 5);
}

TEST_CASE("ValidUtf8With: every path accepts exactly what the code-point check accepts") {
  // Every 2-byte pattern b0 b1, followed by a third byte from values at the edges of UTF-8's
  // ranges (and, after a lead of 4, a fourth), placed at the start, across the vector steps'
  // 32-byte boundary and at the text's end, then random texts of valid and damaged UTF-8 placed
  // right before an inaccessible page: the vector paths agree with the baseline's DecodeOne.
  const std::vector<unsigned char> edges = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F,
                                            0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
                                            0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
  const std::vector<CountSimdPath> paths = SupportedCountSimdPaths();
  size_t checked = 0, valid = 0;
  std::string text;
  const auto check = [&](const std::string& pattern) {
    for (const size_t at : {size_t{0}, size_t{30}, size_t{61}}) {
      for (const bool at_end : {false, true}) {
        text.assign(at, 'a');
        text += pattern;
        if (!at_end) text += "tail";
        const bool want = ValidUtf8With(CountSimdPath::kBaseline, text);
        valid += want;
        for (const CountSimdPath path : paths) {
          if (path == CountSimdPath::kBaseline) continue;
          if (ValidUtf8With(path, text) != want) {
            FAIL_CHECK("path " << random::SimdLevelName(path) << " on " << absl::CHexEscape(text));
          }
          ++checked;
        }
      }
    }
  };
  for (int b0 = 0; b0 < 256; ++b0) {
    for (int b1 = 0; b1 < 256; ++b1) {
      for (const unsigned char b2 : edges) {
        std::string pattern{static_cast<char>(b0), static_cast<char>(b1), static_cast<char>(b2)};
        if (b0 < 0xF0) {
          check(pattern);
          continue;
        }
        for (const unsigned char b3 : edges) check(pattern + static_cast<char>(b3));
      }
    }
  }
  CHECK(valid > 1000);
  CHECK(checked >= (paths.size() - 1) * 6 * 2800000);
  std::mt19937_64 rng(21);
  GuardedText guarded;
  size_t random_valid = 0, random_invalid = 0;
  for (std::string random : RandomTexts(rng, 3000)) {
    for (size_t k = rng() % 6; k > 0; --k) {  // code points of 2 to 4 bytes
      random.insert(rng() % (random.size() + 1), std::string(k % 3 == 0   ? "\xc3\xa9"
                                                             : k % 3 == 1 ? "\xe4\xb8\xad"
                                                                          : "\xf0\x9f\x98\x80"));
    }
    if (rng() % 2 == 0 && !random.empty()) random[rng() % random.size()] = static_cast<char>(rng());
    const bool want = ValidUtf8With(CountSimdPath::kBaseline, random);
    (want ? random_valid : random_invalid) += 1;
    const std::string_view placed = guarded.Place(random);
    for (const CountSimdPath path : paths) {
      INFO("path " << random::SimdLevelName(path) << " on " << absl::CHexEscape(random));
      CHECK(ValidUtf8With(path, placed) == want);
    }
  }
  CHECK(random_valid > 1000);
  CHECK(random_invalid > 300);
}

TEST_CASE(
    "LowerWordRunsWith: after a capital I with dot or a change of length every code point is "
    "still validated") {
  // From a code point that does not lowercase in place (U+023A, the Kelvin sign) on, the rest of
  // the text is lowercased
  // into a copy 8 ASCII bytes at a time, code points of 2 bytes by table, the others decoded:
  // an ill-formed sequence anywhere after it (at the text's end, across an 8-byte step, a lead
  // byte of 2 without its continuation, a stray continuation byte, an overlong form, a
  // surrogate) is kIllFormed, and the same texts made well-formed are lowered and split as
  // PythonLower and DefaultTokenize.
  // U+0130, lowered in place for the runs, precedes the other in some texts: the rest is still
  // checked after it.
  const std::string dotted = "\xc4\xb0";      // U+0130
  const std::string longer = "\xc8\xba";      // U+023A, whose lowercase takes 3 bytes
  const std::string kelvin = "\xe2\x84\xaa";  // the Kelvin sign, to 'k'
  const std::vector<std::string> bad = {"\xff",     "\xc3",         "\xc3(",    "\x80",
                                        "\xc0\xaf", "\xed\xa0\x80", "\xe4\xb8", "\xf0\x90\x80"};
  const std::vector<std::string> good = {"\xc3\x89", "\xe4\xb8\xad", "\xf0\x90\x90\x80",
                                         "\xce\xa3", dotted,         kelvin};
  std::vector<std::string> ill_formed, well_formed;
  for (size_t ascii = 0; ascii < 20; ++ascii) {
    for (const std::string& special : {longer, kelvin, dotted + longer, dotted}) {
      const std::string before = "ABC" + special + std::string(ascii, 'Q');
      for (const std::string& b : bad) {
        ill_formed.push_back(before + b);
        ill_formed.push_back(before + b + " tail of ASCII WORDS");
        ill_formed.push_back(before + "\xc3\xa9" + b + "x");
      }
      for (const std::string& g : good) {
        well_formed.push_back(before + g);
        well_formed.push_back(before + g + " Tail Of ASCII " + g + "WORDS");
      }
    }
  }
  AnalyzerScratch scratch;
  ForEveryPathAndText(
      ill_formed, [&](CountSimdPath path, const std::string&, std::string_view placed) {
        AsciiRuns runs;
        CHECK(LowerWordRunsWith(path, placed, &scratch, &runs) == LowerRunsResult::kIllFormed);
      });
  ForEveryPathAndText(
      well_formed, [&](CountSimdPath path, const std::string& text, std::string_view placed) {
        AsciiRuns runs;
        REQUIRE(LowerWordRunsWith(path, placed, &scratch, &runs) == LowerRunsResult::kDone);
        const std::string lower = PythonLower(text);
        CHECK(scratch.preprocessed == RunsLower(text));
        CHECK(TokensOf(scratch.preprocessed, runs) == DefaultTokenize(lower));
      });
}

TEST_CASE(
    "LowerWordRunsWith: every code point of 2 bytes and U+2000..U+20CF, alone in their 64-byte "
    "steps, on every path") {
  // The AVX-512 pass finishes the code points of 2 bytes that are their own lowercase and \w (a
  // table of the 1920 code points) and those of U+2000..U+203F (their own lowercase, not \w)
  // itself; the per-code-point loop takes the others. Each code point of 2 bytes here is the only
  // kind in its steps: a step of its own, the second step of a text, and across a step's end. So a
  // code point wrongly in that table keeps its upper case or its \w bits, and one wrongly missing
  // is still lowered by the loop (only slower). Each of
  // U+2000..U+20CF (past that range from U+2040 on: U+2070, U+2071, U+207F, the super- and
  // subscript digits and U+2090..U+209C are \w) likewise, next to é (its own lowercase) and, in
  // other texts, É. Every path must agree with the baseline and, when it lowers in place, with
  // PythonLower and DefaultTokenize.
  std::vector<std::string> texts;
  for (uint32_t c = 0x80; c < 0x800; ++c) {
    const std::string cp{static_cast<char>(0xC0 | c >> 6), static_cast<char>(0x80 | (c & 0x3F))};
    texts.push_back("x" + cp + "y " + cp + cp + " z" + cp + "q");
    texts.push_back(std::string(63, 'q') + cp + "z");
    texts.push_back(std::string(64, 'w') + "a" + cp + cp + "b " + cp);
  }
  for (uint32_t c = 0x2000; c <= 0x20CF; ++c) {
    const std::string cp{static_cast<char>(0xE0 | c >> 12),
                         static_cast<char>(0x80 | (c >> 6 & 0x3F)),
                         static_cast<char>(0x80 | (c & 0x3F))};
    for (const std::string letter : {"\xc3\xa9", "\xc3\x89"}) {
      texts.push_back("a" + cp + "b " + letter + cp + letter + "x");
      texts.push_back(std::string(62, 'q') + cp + "z");
      texts.push_back(std::string(63, 'q') + cp + letter + "z");
      texts.push_back(std::string(61, 'q') + cp + letter + "z" + cp);
      texts.push_back(std::string(64, 'w') + letter + cp + "z" + cp + "y");
    }
  }
  AnalyzerScratch scratch, baseline;
  size_t done = 0;
  ForEveryPathAndText(
      texts, [&](CountSimdPath path, const std::string& text, std::string_view placed) {
        AsciiRuns runs, baseline_runs;
        const LowerRunsResult want =
            LowerWordRunsWith(CountSimdPath::kBaseline, placed, &baseline, &baseline_runs);
        const LowerRunsResult result = LowerWordRunsWith(path, placed, &scratch, &runs);
        REQUIRE(result == want);
        if (result != LowerRunsResult::kDone) return;
        ++done;
        const std::string lower = PythonLower(text);
        CHECK(scratch.preprocessed == RunsLower(text));
        CHECK(TokensOf(scratch.preprocessed, runs) == DefaultTokenize(lower));
      });
  CHECK(done / SupportedCountSimdPaths().size() > 6000);  // nearly all lowered in place
}

TEST_CASE(
    "LowerWordRunsWith: code points the vector pass finishes share 64-byte steps with the loop's") {
  // The AVX-512 pass finishes some code points of a step (é, ω, д, U+0130, typeset quotes) and
  // leaves the step's others to the per-code-point loop: capitals, Σ, 3- and 4-byte letters, and
  // ill-formed bytes (a stray continuation byte, a lead byte cut short, 0xFF), which must still be
  // found next to finished ones. Each pair at every offset of the first two steps and across
  // their end, in both orders, side by side and 64 bytes apart.
  const std::string_view finished[] = {"\xc3\xa9", "\xcf\x89", "\xd0\xb4", "\xc4\xb0",
                                       "\xe2\x80\x99"};
  const std::string_view left[] = {"\xc3\x89", "\xce\xa3", "\xe4\xb8\xad", "\xf0\x9f\x98\x80",
                                   "\xd0\x94", "\x80",     "\xc3",         "\xe2\x80",
                                   "\xff",     "\xc3("};
  std::vector<std::string> texts;
  for (size_t k = 0; k < 130; ++k) {
    for (const std::string_view f : finished) {
      for (const std::string_view l : left) {
        const std::string fs(f), ls(l);
        texts.push_back(std::string(k, 'Q') + fs + ls + "x" + fs + " " + fs);
        texts.push_back(std::string(k, ' ') + ls + fs + fs + "b" + ls);
        // 64 bytes apart: at k = 63, one's bytes open the second step and the other's last byte
        // ends it (a vector "next" of that step's last byte that wraps reads the first).
        texts.push_back(std::string(k, 'Q') + fs + std::string(64 - fs.size(), 'z') + ls + "x");
        texts.push_back(std::string(k, 'Q') + ls + std::string(64 - ls.size(), 'z') + fs + "x");
      }
    }
  }
  AnalyzerScratch scratch;
  size_t ill_formed = 0;
  ForEveryPathAndText(
      texts, [&](CountSimdPath path, const std::string& text, std::string_view placed) {
        AsciiRuns runs;
        const LowerRunsResult result = LowerWordRunsWith(path, placed, &scratch, &runs);
        if (!ValidateUtf8(text).ok()) {
          CHECK(result == LowerRunsResult::kIllFormed);
          ++ill_formed;
          return;
        }
        REQUIRE(result == LowerRunsResult::kDone);
        CHECK(scratch.preprocessed == RunsLower(text));
        CHECK(TokensOf(scratch.preprocessed, runs) == DefaultTokenize(PythonLower(text)));
      });
  CHECK(ill_formed > texts.size() / 3);
}

TEST_CASE("LowerWordRunsWith: a capital I with dot at every offset stays in place on every path") {
  // U+0130 lowers to "i\u0307", one byte longer; for the runs it stays in its own 2 bytes as 'i'
  // and a space (U+0307 is not \w), in a 64-byte step of the AVX-512 pass (with lowercase and
  // self-lowering letters, typeset punctuation) or in the per-code-point loop (next to a capital
  // Σ, a 3-byte letter, across a step's end). Each at every offset of the first three steps, at a
  // word's start, inside, at its end, alone and doubled, and at the text's end.
  const std::string dotted = "\xc4\xb0";
  const std::string_view neighbours[] = {
      "", "\xc3\xa9", "\xc3\x89", "\xce\xa3", "\xe2\x80\x99", "\xe4\xb8\xad", "\xc4\xb0", "9_"};
  std::vector<std::string> texts;
  for (size_t k = 0; k < 3 * 64; ++k) {
    for (const std::string_view neighbour : neighbours) {
      const std::string n(neighbour);
      texts.push_back(std::string(k, 'A') + dotted + n + "STANBUL " + n + "ab");
      texts.push_back(std::string(k, ' ') + dotted + n);
      texts.push_back(std::string(k, 'q') + " " + n + "KAR" + dotted + "." + dotted + dotted);
      texts.push_back(std::string(k, '.') + "x" + dotted + "x " + n + dotted + "Y" + n);
    }
  }
  AnalyzerScratch scratch, baseline;
  size_t in_place = 0;
  ForEveryPathAndText(
      texts, [&](CountSimdPath path, const std::string& text, std::string_view placed) {
        AsciiRuns runs, baseline_runs;
        REQUIRE(LowerWordRunsWith(path, placed, &scratch, &runs) == LowerRunsResult::kDone);
        const std::string lower = PythonLower(text);
        CHECK(TokensOf(scratch.preprocessed, runs) == DefaultTokenize(lower));
        CHECK(scratch.preprocessed == RunsLower(text));
        in_place += scratch.preprocessed.size() == text.size() ? 1 : 0;
        REQUIRE(LowerWordRunsWith(CountSimdPath::kBaseline, placed, &baseline, &baseline_runs) ==
                LowerRunsResult::kDone);
        // The token runs (of 2 bytes or more) where the baseline has them. (A lone 'i' left of
        // U+0130, a run of 1 byte, no token, is dropped by the baseline as a code point of 2
        // bytes: it reads the text's lead bytes, the vector paths the lowered copy's.)
        const auto token_runs = [](const AsciiRuns& all) {
          std::vector<std::pair<uint32_t, uint32_t>> out;
          for (const auto& [start, end] : RunsOf(all)) {
            if (end - start >= 2) out.emplace_back(start, end);
          }
          return out;
        };
        CHECK(token_runs(runs) == token_runs(baseline_runs));
      });
  CHECK(in_place == texts.size() * SupportedCountSimdPaths().size());
}

TEST_CASE("AsciiTermKeysWith: every path gives each token's key, home and start, in order") {
  std::mt19937_64 rng(14);
  GuardedText guarded;
  const std::vector<std::string> texts = RandomTexts(rng, 300);
  TermTable table;  // its slot count sets the homes: a few hundred terms
  for (int i = 0; i < 300; ++i) table.Insert("t" + std::to_string(i));
  AnalyzerScratch scratch;
  for (const bool lower : {true, false}) {
    for (const std::string& text : texts) {
      const std::string_view placed = guarded.Place(text);
      AsciiRuns runs;
      REQUIRE(AsciiWordRunsWith(CountSimdPath::kBaseline, placed, &scratch, &runs));
      // From a random run on, with a random capacity: the reference stops at the end, before a
      // run longer than 15 bytes, or at the capacity.
      const size_t k0 = runs.count == 0 ? 0 : rng() % (runs.count + 1);
      const size_t capacity = 1 + rng() % 80;
      const size_t m0 = rng() % capacity;  // already in the arrays before the call
      std::vector<uint64_t> lo, hi;
      std::vector<size_t> homes;
      std::vector<uint32_t> starts;
      size_t k = k0;
      for (; k < runs.count && m0 + lo.size() < capacity; ++k) {
        const size_t length = runs.ends[k] - runs.starts[k];
        if (length > TermTable::kMaxPaddedKey) break;
        if (length < 2) continue;
        const std::string token(placed.substr(runs.starts[k], length));
        const TermTable::Key key = TermTable::KeyOf(lower ? Lower(token) : token);
        lo.push_back(key.lo);
        hi.push_back(key.hi);
        homes.push_back(table.Home(key));
        starts.push_back(runs.starts[k]);
      }
      for (const CountSimdPath path : SupportedCountSimdPaths()) {
        INFO("path " << random::SimdLevelName(path) << ", lower " << lower << ", from run " << k0
                     << ", capacity " << capacity << ", text '" << text << "'");
        std::vector<uint64_t> got_lo(capacity, 7), got_hi(capacity, 7);
        std::vector<size_t> got_homes(capacity, 7);
        std::vector<uint32_t> got_starts(capacity, 7);
        size_t m = m0;
        const size_t next =
            AsciiTermKeysWith(path, placed, runs, k0, lower, table, capacity, got_lo.data(),
                              got_hi.data(), got_homes.data(), got_starts.data(), &m);
        CHECK(next == k);
        REQUIRE(m == m0 + lo.size());
        CHECK(std::vector<uint64_t>(got_lo.begin() + m0, got_lo.begin() + m) == lo);
        CHECK(std::vector<uint64_t>(got_hi.begin() + m0, got_hi.begin() + m) == hi);
        CHECK(std::vector<size_t>(got_homes.begin() + m0, got_homes.begin() + m) == homes);
        CHECK(std::vector<uint32_t>(got_starts.begin() + m0, got_starts.begin() + m) == starts);
        // The entries before *m are left alone.
        CHECK(std::all_of(got_lo.begin(), got_lo.begin() + m0, [](uint64_t v) { return v == 7; }));
      }
    }
  }
}

TEST_CASE(
    "CountAsciiUnigramsWith (AVX-512): the filter goes on for texts of absent terms, off "
    "again for texts of terms") {
  const std::vector<CountSimdPath> paths = SupportedCountSimdPaths();
  if (std::find(paths.begin(), paths.end(), CountSimdPath::kAvx512) == paths.end()) return;
  TermTable table;
  std::string known, unknown;
  for (int i = 0; i < 40; ++i) {
    const std::string term = "term" + std::to_string(i);
    table.Insert(term);
    known += term + " ";
    unknown += "other" + std::to_string(i) + " ";
  }
  // 7 of 40 absent (above 1/8, below 1/4): neither switch.
  std::string mixed;
  for (int i = 0; i < 40; ++i) mixed += (i < 7 ? "other" : "term") + std::to_string(i) + " ";
  AnalyzerScratch scratch;
  scratch.dense.assign(table.size(), 0.0);
  const auto count = [&](const std::string& text) {
    AsciiRuns runs;
    REQUIRE(AsciiWordRunsWith(CountSimdPath::kBaseline, text, &scratch, &runs));
    CountAsciiUnigramsWith(CountSimdPath::kAvx512, text, runs, true, table, &scratch);
    for (const uint32_t id : scratch.ids) scratch.dense[id] = 0.0;
    scratch.ids.clear();
  };
  CHECK_FALSE(scratch.lookup_filter);
  count(mixed);
  CHECK_FALSE(scratch.lookup_filter);
  count(unknown);
  CHECK(scratch.lookup_filter);
  count(mixed);
  CHECK(scratch.lookup_filter);
  count(known);
  CHECK_FALSE(scratch.lookup_filter);
}

// A row of distinct feature ids for OrderedRowIntoWith: scratch->ids in the order added, each id
// with a random count 1..5 in scratch->dense and in `counts`.
struct RowUnderTest {
  RowUnderTest(std::mt19937_64* random, AnalyzerScratch* row_scratch)
      : rng(random), scratch(row_scratch) {
    scratch->ids.clear();
  }
  void Add(uint32_t id) {
    if (counts.count(id) != 0) return;
    const double count = static_cast<double>(1 + (*rng)() % 5);
    counts[id] = count;
    scratch->ids.push_back(id);
    scratch->dense[id] = count;
  }
  // n ids within lo .. lo + span - 1, both ends among them, in random order.
  void FillSpan(size_t lo, size_t span, size_t n) {
    Add(static_cast<uint32_t>(lo));
    Add(static_cast<uint32_t>(lo + span - 1));
    while (counts.size() < n) Add(static_cast<uint32_t>(lo + (*rng)() % span));
    std::shuffle(scratch->ids.begin(), scratch->ids.end(), *rng);
  }
  // Orders the row on `path`: ascending ids with their counts (1.0 when binary), nothing written
  // past the row, the row and its counts cleared.
  void Check(CountSimdPath path, size_t num_features, bool binary) {
    const size_t n = counts.size();
    std::vector<uint32_t> index(n + 1, 7);
    std::vector<double> value(n + 1, -1.0);
    REQUIRE(OrderedRowIntoWith(path, num_features, binary, scratch, index.data(), value.data()) ==
            n);
    std::vector<std::pair<uint32_t, double>> got, expected;
    for (size_t e = 0; e < n; ++e) got.emplace_back(index[e], value[e]);
    for (const auto& [id, count] : counts) expected.emplace_back(id, binary ? 1.0 : count);
    CHECK(got == expected);
    CHECK(index[n] == 7);
    CHECK(value[n] == -1.0);
    CHECK(scratch->ids.empty());
    for (const auto& [id, count] : counts) CHECK(scratch->dense[id] == 0.0);
  }
  std::mt19937_64* rng;
  AnalyzerScratch* scratch;
  std::map<uint32_t, double> counts;
};

TEST_CASE("OrderedRowIntoWith: every path puts a row in ascending feature order and clears it") {
  std::mt19937_64 rng(13);
  for (const CountSimdPath path : SupportedCountSimdPaths()) {
    AnalyzerScratch scratch;
    for (int trial = 0; trial < 3000; ++trial) {
      // Rows of every length up to past the rank path's 128 ids, over small and large
      // vocabularies (dense and spread rows), ids in random order, counts 1..5.
      const size_t num_features = trial % 3 == 0 ? 300 : trial % 3 == 1 ? 20000 : 2000000;
      const size_t n = std::min<size_t>(num_features, trial % 200 == 0 ? 1000 : rng() % 200);
      const bool binary = trial % 7 == 0;
      if (scratch.dense.size() < num_features) scratch.dense.resize(num_features, 0.0);
      RowUnderTest row(&rng, &scratch);
      while (row.counts.size() < n) row.Add(static_cast<uint32_t>(rng() % num_features));
      INFO("path " << random::SimdLevelName(path) << ", n " << n << ", features " << num_features);
      row.Check(path, num_features, binary);
    }
  }
}

TEST_CASE("OrderedRowIntoWith: rows whose ids lie within 2^16 of each other, at any offset") {
  // The AVX-512 and AVX2 paths rank such rows (of 17, resp. 9, to 128 ids) by their offsets from
  // the smallest id in 16-bit lanes: the offsets' low bits must not depend on the smallest id's (a
  // smallest id just below a multiple of 2^16), and spans of 0xFFFF to 0x10002 ids lie on both
  // sides of its limit (0x10000).
  std::mt19937_64 rng(17);
  const size_t num_features = 3 * 65536 + 100;
  for (const CountSimdPath path : SupportedCountSimdPaths()) {
    AnalyzerScratch scratch;
    scratch.dense.resize(num_features, 0.0);
    for (int trial = 0; trial < 2000; ++trial) {
      const size_t span = trial % 4 == 0   ? 0xFFFF + rng() % 4
                          : trial % 4 == 1 ? 1 + rng() % 200
                                           : 1 + rng() % 0x10000;
      const size_t lo =
          trial % 2 == 0 ? 65536 * (1 + rng() % 2) - 1 - rng() % 40 : rng() % (num_features - span);
      const size_t n = std::min<size_t>(span, 9 + rng() % 120);
      RowUnderTest row(&rng, &scratch);
      row.FillSpan(lo, span, n);
      INFO("path " << random::SimdLevelName(path) << ", n " << n << ", lo " << lo << ", span "
                   << span);
      row.Check(path, num_features, /*binary=*/false);
    }
  }
}

TEST_CASE("OrderedRowIntoWith: long rows by buckets, spread, clustered and skewed") {
  // Rows longer than a vector path ranks whole (AVX-512: 128 ids; AVX2: 128 within 2^16 of each
  // other, else 64) are split by value into buckets of ~16 ids, each ranked: rows of hundreds to
  // thousands of ids spread over a vocabulary of 100 000 (a mail's body) or 2 000 000 (buckets
  // wider than 2^16), AVX2's rows of 65 to 128 ids spread beyond 2^16, skewed rows whose ids
  // mostly lie within a few hundred of each other (a bucket of more than 128: the baseline), with
  // a few far away, at the vocabulary's ends too, and rows of 130 ids of which 100 lie in one
  // bucket wider than 2^16 (AVX2 sorts it).
  std::mt19937_64 rng(29);
  size_t skewed = 0;
  for (const CountSimdPath path : SupportedCountSimdPaths()) {
    AnalyzerScratch scratch;
    for (int trial = 0; trial < 600; ++trial) {
      const int kind = trial % 5;
      const size_t num_features = trial % 3 == 2 || kind == 4 ? 2000000 : 100000;
      const size_t n = kind == 0   ? 65 + rng() % 64
                       : kind == 1 ? 129 + rng() % 900
                       : kind == 4 ? 130
                                   : 200 + rng() % 4000;
      if (scratch.dense.size() < num_features) scratch.dense.resize(num_features, 0.0);
      RowUnderTest row(&rng, &scratch);
      const auto add = [&row](uint32_t id) { row.Add(id); };
      const std::map<uint32_t, double>& expected = row.counts;
      if (kind == 3) {  // most ids in a cluster of ~1.3 n ids, a few anywhere and at both ends
        const size_t width = n + n / 3;
        const size_t at = rng() % (num_features - width);
        add(0);
        add(static_cast<uint32_t>(num_features - 1));
        while (expected.size() < n) {
          add(static_cast<uint32_t>(rng() % 50 == 0 ? rng() % num_features : at + rng() % width));
        }
        ++skewed;
      } else if (kind == 4) {  // 16 buckets of 2^17 ids: 100 ids in the first, 30 anywhere
        add(0);
        add(static_cast<uint32_t>(num_features - 1));
        while (expected.size() < 100) add(static_cast<uint32_t>(rng() % 131072));
        while (expected.size() < n) add(static_cast<uint32_t>(rng() % num_features));
      } else {
        while (expected.size() < n) add(static_cast<uint32_t>(rng() % num_features));
      }
      INFO("path " << random::SimdLevelName(path) << ", n " << n << ", kind " << kind);
      row.Check(path, num_features, /*binary=*/false);
    }
  }
  CHECK(skewed >= 100);
}

TEST_CASE("OrderedRowIntoWith: dense long rows read back from their counts") {
  // Rows of more than 128 ids that fill more than 1 in 12 features of their span are read back
  // from the counts 8 at a time (a long text over a vocabulary of tens of thousands): spans
  // starting at any offset, ending at the counts' last element (no read past it: the counts are
  // exactly num_features long), densities on both sides of the threshold, the last steps past the
  // out arrays' room for 8 (nothing written past the row), and binary rows.
  std::mt19937_64 rng(31);
  for (const CountSimdPath path : SupportedCountSimdPaths()) {
    for (int trial = 0; trial < 400; ++trial) {
      const size_t num_features = 200 + rng() % 60000;
      AnalyzerScratch scratch;
      scratch.dense.assign(num_features, 0.0);
      const size_t span = std::min<size_t>(num_features, 130 + rng() % 20000);
      const size_t lo = trial % 4 == 0 ? num_features - span : rng() % (num_features - span + 1);
      // Every 1 in 1..24 features of the span (at least 129 ids, at most all of it).
      const size_t n = std::min(span, std::max<size_t>(129, span / (1 + rng() % 24)));
      RowUnderTest row(&rng, &scratch);
      row.FillSpan(lo, span, n);
      INFO("path " << random::SimdLevelName(path) << ", n " << n << ", lo " << lo << ", span "
                   << span << ", features " << num_features);
      row.Check(path, num_features, /*binary=*/trial % 3 == 0);
      CHECK(std::all_of(scratch.dense.begin(), scratch.dense.end(),
                        [](double count) { return count == 0.0; }));
    }
  }
}

TEST_CASE("SupportedCountSimdPaths starts with the baseline and includes the process's path") {
  const std::vector<CountSimdPath> paths = SupportedCountSimdPaths();
  REQUIRE(!paths.empty());
  CHECK(paths.front() == CountSimdPath::kBaseline);
  CHECK(std::find(paths.begin(), paths.end(), BestCountSimdPath()) != paths.end());
}

}  // namespace
}  // namespace maas::discriminative
