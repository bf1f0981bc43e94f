#include "services/discriminative/core/text_analysis.h"

#include <sys/mman.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "services/discriminative/core/token_pattern.h"
#include "unicode/uchar.h"
#include "unicode/uniset.h"
#include "unicode/unistr.h"
#include "unicode/utf8.h"

namespace maas::discriminative {
namespace {

using Tokens = std::vector<std::string>;

std::string Utf8(const std::vector<int32_t>& code_points) {
  std::string out;
  for (int32_t c : code_points) {
    char buf[4];
    int32_t len = 0;
    U8_APPEND_UNSAFE(buf, len, c);
    out.append(buf, len);
  }
  return out;
}

std::string DataPath(const std::string& name) {
  return std::string(MAAS_DISCRIMINATIVE_TEST_DATA_DIR) + "/" + name;
}

TEST_CASE("ValidateUtf8 accepts exactly well-formed UTF-8") {
  CHECK(ValidateUtf8("").ok());
  CHECK(ValidateUtf8("plain ascii \x01\x7f").ok());
  CHECK(ValidateUtf8(std::string("nul\0inside", 10)).ok());
  CHECK(ValidateUtf8("caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf").ok());
  CHECK(ValidateUtf8("\xed\x9f\xbf\xee\x80\x80").ok());  // U+D7FF, U+E000 around the surrogates.
  const std::vector<std::string> bad = {
      "ab\xff"
      "cd",  // invalid byte
      "ab\xe2\x82"
      "cd",              // truncated 3-byte sequence
      "ab\xf0\x9f\x98",  // truncated 4-byte sequence at the end
      "ab\xed\xa0\x80"
      "cd",  // UTF-8 encoded surrogate
      "\xc0\xaf"
      "xy",                // overlong '/'
      "\xe0\x80\xaf",      // overlong 3-byte
      "\xf0\x80\x80\xaf",  // overlong 4-byte
      "\xf4\x90\x80\x80",  // above U+10FFFF
      "\xf5\x80\x80\x80",  // invalid lead byte
      "ab\x80\x80"
      "cd",    // lone continuation bytes
      "\xc2",  // truncated 2-byte at the end
  };
  for (const std::string& text : bad) {
    const absl::Status status = ValidateUtf8(text);
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Catch::Contains("byte offset"));
  }
  CHECK_THAT(std::string(ValidateUtf8("ab\xff").message()), Catch::Contains("offset 2"));
}

TEST_CASE("PythonLower matches Python 3.11 str.lower on the reference examples") {
  // Final sigma (spec 1.3).
  CHECK(PythonLower("ΟΔΟΣ") == "οδος");
  CHECK(PythonLower("Σ") == "σ");
  CHECK(PythonLower("AΣB") == "aσb");
  CHECK(PythonLower("AΣ.") == "aς.");
  CHECK(PythonLower("AΣ\u0301") == "aς\u0301");
  CHECK(PythonLower("ΑΣ ΑΣ") == "ας ας");
  CHECK(PythonLower("ΣΑΣ") == "σας");
  // One-to-many mapping and special letters.
  CHECK(PythonLower("İstanbul") == "i\u0307stanbul");
  CHECK(PythonLower("ǅ") == "ǆ");
  CHECK(PythonLower("ẞ") == "ß");
  CHECK(PythonLower("\u212a") == "k");
  CHECK(PythonLower("\u2126") == "ω");
  CHECK(PythonLower("I") == "i");  // No Turkish rules.
  // Unchanged.
  for (const char* same : {"ß", "ﬁ", "ŉ", "ᴬ", "中文", "١٢٣", "", "already lower 123 _"}) {
    CHECK(PythonLower(same) == same);
  }
  CHECK(PythonLower("MiXeD CaSe ÀÉÎ") == "mixed case àéî");
  CHECK(PythonLower(std::string("A\0B", 3)) == std::string("a\0b", 3));
}

TEST_CASE("Preprocess lowercases mixed text exactly as PythonLower does on the whole text") {
  // Preprocess lowers in place until a code point whose lowercase is special or of another length,
  // then writes the rest (LowerFrom); the pieces put final sigma's context (cased letters,
  // case-ignorable '.' and ' and U+0301, whitespace) on both sides of such code points, long
  // ASCII stretches between them, and one-to-many, longer and ASCII-producing mappings.
  const std::vector<std::string> pieces = {"A",
                                           "b",
                                           "Σ",
                                           "ΑΣ",
                                           "σ",
                                           ".",
                                           "'",
                                           " ",
                                           " ",
                                           "\t",
                                           "\n",
                                           "\x1c",
                                           "İ",
                                           "ẞ",
                                           "É",
                                           "中",
                                           "x",
                                           "\u0301",
                                           "\u00a0",
                                           "\u212a",
                                           "ǅ",
                                           "\u3000",
                                           "\U00010400",  // Deseret: 4 bytes, lowercase U+10428
                                           "\u023a",      // 2 bytes, lowercase U+2C65 of 3
                                           "ABCDEFGHIJ",
                                           "0123",
                                           std::string(70, 'Q') + " ",
                                           " " + std::string(66, 'z')};
  std::mt19937_64 rng(5);
  AnalyzerOptions options;
  options.lowercase = true;
  const Analyzer analyzer(options);
  AnalyzerScratch scratch;
  for (int t = 0; t < 3000; ++t) {
    std::string text;
    for (size_t k = rng() % 40; k > 0; --k) text += pieces[rng() % pieces.size()];
    INFO("text '" << text << "'");
    CHECK(std::string(analyzer.Preprocess(text, &scratch)) == PythonLower(text));
  }
}

TEST_CASE("Preprocess lowercases every code point as PythonLower does, alone and between letters") {
  // Preprocess maps code points of 2 and 3 bytes by a table, the others one by one.
  AnalyzerOptions options;
  options.lowercase = true;
  const Analyzer analyzer(options);
  AnalyzerScratch scratch;
  size_t checked = 0;
  for (int32_t c = 0x80; c <= 0x10FFFF; c += c < 0x10000 ? 1 : 97) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    for (const std::string& text : {Utf8({c}), Utf8({'A', c, 'b'}), Utf8({c, c, ' ', c})}) {
      INFO("U+" << std::hex << c);
      REQUIRE(std::string(analyzer.Preprocess(text, &scratch)) == PythonLower(text));
      ++checked;
    }
  }
  CHECK(checked > 3 * 60000);
}

TEST_CASE("PythonLower agrees with the Python 3.11 lower table on every code point") {
  std::ifstream in(DataPath("python311_lower_table.txt"));
  REQUIRE(in);
  std::map<int32_t, std::vector<int32_t>> table;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string from, to;
    fields >> from;
    std::vector<int32_t> mapped;
    while (fields >> to) mapped.push_back(static_cast<int32_t>(std::stol(to, nullptr, 16)));
    table[static_cast<int32_t>(std::stol(from, nullptr, 16))] = mapped;
  }
  REQUIRE(table.size() == 1433);
  int mismatches = 0;
  int checked = 0;
  for (int32_t c = 0; c <= 0x10FFFF; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    const auto it = table.find(c);
    const std::string expected = it == table.end() ? Utf8({c}) : Utf8(it->second);
    ++checked;
    if (PythonLower(Utf8({c})) != expected) {
      ++mismatches;
      if (mismatches < 10) UNSCOPED_INFO("mismatch at U+" << std::hex << c);
    }
  }
  CHECK(checked == 0x110000 - 0x800);
  CHECK(mismatches == 0);
}

TEST_CASE("IsWordCodePoint agrees with Python 3.11's word class on every code point") {
  std::ifstream in(DataPath("python311_unicode14_word_ranges.txt"));
  REQUIRE(in);
  std::vector<bool> word(0x110000, false);
  std::string line;
  int ranges = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string lo, hi;
    fields >> lo >> hi;
    for (long c = std::stol(lo, nullptr, 16); c <= std::stol(hi, nullptr, 16); ++c) word[c] = true;
    ++ranges;
  }
  REQUIRE(ranges == 734);
  // Every code point, those ICU 72 assigns after Unicode 14.0 included: Python 3.11 does not
  // know them, so they are not \w.
  int mismatches = 0;
  for (int32_t c = 0; c <= 0x10FFFF; ++c) {
    if (IsWordCodePoint(c) == word[c]) continue;
    ++mismatches;
    if (mismatches < 10) UNSCOPED_INFO("mismatch at U+" << std::hex << c);
  }
  CHECK(mismatches == 0);
  CHECK_FALSE(IsWordCodePoint(-1));
  CHECK_FALSE(IsWordCodePoint(0x110000));
}

TEST_CASE("Code points assigned after Unicode 14.0 are unassigned, as in Python 3.11") {
  // Unicode 15.0 (ICU 72): Kannada U+0CF3 (Mc), Latin Extended-G U+1DF25 (Ll), Kawi U+11F00 (Mn)
  // and its digits U+11F50.., Cyrillic Extended-D U+1E030.. (Lm with <super> decompositions)
  // and U+1E08F (a combining mark, class 230), CJK Extension H U+31350.. (Lo).
  for (const int32_t c : {0x0CF3, 0x1DF25, 0x11F00, 0x11F50, 0x1E030, 0x1E041, 0x1E08F, 0x31350}) {
    INFO("U+" << std::hex << c);
    CHECK(AssignedAfterUnicode14(c));
    CHECK_FALSE(IsWordCodePoint(c));
  }
  for (const int32_t c : {0x41, 0x0CF2, 0x4E00, 0x10400, 0x1E02F, 0x31349, -1, 0x110000}) {
    CHECK_FALSE(AssignedAfterUnicode14(c));
  }
  // kUnicode14AssignedSet is the same partition of ICU's assigned code points.
  UErrorCode status = U_ZERO_ERROR;
  const icu::UnicodeSet unicode14(icu::UnicodeString(kUnicode14AssignedSet, -1, US_INV), status);
  REQUIRE(U_SUCCESS(status));
  int later = 0, disagree = 0;
  for (int32_t c = 0; c <= 0x10FFFF; ++c) {
    const bool after = AssignedAfterUnicode14(c);
    later += after ? 1 : 0;
    const bool ok =
        after ? !unicode14.contains(c) : unicode14.contains(c) || u_charType(c) == U_UNASSIGNED;
    if (ok) continue;
    if (++disagree < 10) UNSCOPED_INFO("U+" << std::hex << c);
  }
  CHECK(disagree == 0);
  CHECK(later == 4489);  // Unicode 15.0's new characters

  // The default tokenizer, every path (scalar, word runs, lowercasing word runs).
  const std::string text = "ab \U0001e041\U0001e041 \U00031350\U00031351 \U00011f50\U00011f51 cd";
  CHECK(DefaultTokenize(text) == Tokens{"ab", "cd"});
  for (const bool lowercase : {true, false}) {
    AnalyzerOptions options;
    options.lowercase = lowercase;
    const Analyzer analyzer(options);
    AnalyzerScratch scratch;
    Tokens terms;
    analyzer.Analyze(text, &scratch, [&](std::string_view t) { terms.emplace_back(t); });
    CHECK(terms == Tokens{"ab", "cd"});
  }
  // Lowercase: the code points are their own; as neither cased nor case-ignorable they end
  // Final_Sigma's context (ICU 72: U+1DF25 is cased, U+11F00 case-ignorable).
  CHECK(PythonLower("\U0001e030\U0001df25") == "\U0001e030\U0001df25");
  const std::vector<std::pair<std::string, std::string>> sigma = {
      {"A\u03a3\U0001df25", "a\u03c2\U0001df25"}, {"A\u03a3\U0001df25 x", "a\u03c2\U0001df25 x"},
      {"A\U00011f00\u03a3", "a\U00011f00\u03c3"}, {"A\u03a3\U00011f00b", "a\u03c2\U00011f00b"},
      {"\U0001df25\u03a3", "\U0001df25\u03c3"},
  };
  for (const auto& [upper, lower] : sigma) {
    INFO(upper);
    CHECK(PythonLower(upper) == lower);
    AnalyzerOptions options;
    const Analyzer analyzer(options);
    AnalyzerScratch scratch;
    CHECK(std::string(analyzer.Preprocess(upper, &scratch)) == lower);  // table and word paths
    Tokens terms;
    analyzer.Analyze(upper + " " + upper, &scratch,
                     [&](std::string_view t) { terms.emplace_back(t); });
    CHECK(terms == DefaultTokenize(PythonLower(upper + " " + upper)));  // LowerWordRuns
  }
  // strip_accents: no decomposition, class 0 (kept by 'unicode'), and no reordering across them
  // (ICU 72 would turn U+1E030 into U+0430 and sort U+0316 before U+0301 and U+1E08F).
  CHECK(StripAccents("\U0001e030", StripAccentsMode::kUnicode) == "\U0001e030");
  CHECK(StripAccents("x\U0001e030", StripAccentsMode::kAscii) == "x");
  CHECK(StripAccents("\u00e9\U0001e08f\u0316", StripAccentsMode::kUnicode) == "e\U0001e08f");
  CHECK(StripAccents("\u00e9\U0001e08f\u0316a\u0300", StripAccentsMode::kAscii) == "ea");
}

// UTF-8 of code point c (valid, not a surrogate).
std::string Utf8Of(int32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | c >> 6);
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | c >> 12);
    out += static_cast<char>(0x80 | (c >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | c >> 18);
    out += static_cast<char>(0x80 | (c >> 12 & 0x3F));
    out += static_cast<char>(0x80 | (c >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

TEST_CASE("strip_accents code point by code point equals NFKD of the whole text") {
  const StripAccentsMode modes[] = {StripAccentsMode::kAscii, StripAccentsMode::kUnicode};
  // Every BMP code point alone and between marks that NFKD reorders (U+0316 class 220 after
  // U+0301 class 230), and a sample of the other planes (every 5th; all of the mathematical
  // letters, enclosed alphanumerics and CJK compatibility ideographs, which decompose).
  std::vector<int32_t> code_points;
  for (int32_t c = 0; c < 0x110000; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    const bool decomposing_block = (c >= 0x1D400 && c <= 0x1D7FF) ||
                                   (c >= 0x1F100 && c <= 0x1F2FF) || (c >= 0x2F800 && c <= 0x2FA1F);
    if (c < 0x10000 || decomposing_block || c % 5 == 0) code_points.push_back(c);
  }
  for (const StripAccentsMode mode : modes) {
    size_t differ = 0;
    for (const int32_t c : code_points) {
      const std::string alone = Utf8Of(c);
      const std::string marked = "a\u0301" + alone + "\u0316\u0301b\u00e9";
      for (const std::string& text : {alone, marked}) {
        if (StripAccents(text, mode) != StripAccentsWholeText(text, mode) && ++differ <= 5) {
          INFO("mode " << static_cast<int>(mode) << ", U+" << std::hex << c);
          CHECK(StripAccents(text, mode) == StripAccentsWholeText(text, mode));
        }
      }
    }
    CHECK(differ == 0);
  }
  // Random texts of letters with marks, precomposed letters, Hangul, compatibility forms, code
  // points assigned after Unicode 14.0, ASCII runs of every length.
  const std::vector<std::string> pool = {
      "a",          "Z",           " ",      "e\u0301",    "\u00e9",     "\u0316",
      "\u0301",     "\u0345",      "\u1e69", "\u1100",     "\uac01",     "\u00bd",
      "\ufb01",     "\u2460",      "\u00c5", "\u212b",     "\u03d3",     "\u1fc1",
      "\u0f73",     "\u0f75",      "ﷺ",      "\U0001e030", "\U0001e08f", "\U0001d400",
      "\U0002f800", "ascii text ", "\u3000", "\u0130",     "\u0958"};
  uint64_t state = 20261207;
  for (int t = 0; t < 3000; ++t) {
    std::string text;
    for (int k = 0; k < 12; ++k) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      text += pool[(state >> 33) % pool.size()];
    }
    for (const StripAccentsMode mode : modes) {
      INFO(text);
      REQUIRE(StripAccents(text, mode) == StripAccentsWholeText(text, mode));
    }
  }
}

TEST_CASE("DefaultTokenize follows scikit-learn's default token_pattern (spec 1.5 / E.1)") {
  CHECK(DefaultTokenize("") == Tokens{});
  CHECK(DefaultTokenize("a b c") == Tokens{});
  CHECK(DefaultTokenize("ab") == Tokens{"ab"});
  CHECK(DefaultTokenize("ab-cd,ef") == Tokens{"ab", "cd", "ef"});
  CHECK(DefaultTokenize("x\u00a0yz\u200dzz") == Tokens{"yz", "zz"});  // NBSP and ZWJ separate.
  CHECK(DefaultTokenize("a\u203fb ab\u203f") == Tokens{"ab"});  // Pc other than '_' separates.
  // Spec 1.5 (lowercased by the analyzer).
  const std::string text =
      "Hello, World! It's a well-known fact_x 42 x2 ½½ 3.14 café cafe\u0301 हिन्दी 中文字符 a_b __ "
      "İstanbul ΟΔΟΣ ΣΑΣ ǅemal ﬁne ᴬB";
  const Tokens expected = {"hello", "world",   "it",   "well", "known", "fact_x",   "42",
                           "x2",    "½½",      "14",   "café", "cafe",  "中文字符", "a_b",
                           "__",    "stanbul", "οδος", "σας",  "ǆemal", "ﬁne",      "ᴬb"};
  CHECK(AnalyzeWords(text, WordAnalyzerOptions{}) == expected);
  WordAnalyzerOptions keep_case;
  keep_case.lowercase = false;
  CHECK(AnalyzeWords("Hello WORLD İstanbul", keep_case) == Tokens{"Hello", "WORLD", "İstanbul"});
}

TEST_CASE("AnalyzeWords builds word n-grams and removes English stop words (spec 1.6, 1.7)") {
  WordAnalyzerOptions options;
  options.ngram_min = 1;
  options.ngram_max = 3;
  CHECK(AnalyzeWords("The quick brown fox", options) ==
        Tokens{"the", "quick", "brown", "fox", "the quick", "quick brown", "brown fox",
               "the quick brown", "quick brown fox"});
  options.ngram_min = 2;
  CHECK(AnalyzeWords("The quick brown fox", options) ==
        Tokens{"the quick", "quick brown", "brown fox", "the quick brown", "quick brown fox"});
  options.ngram_min = 3;
  options.ngram_max = 4;
  CHECK(AnalyzeWords("one two", options) == Tokens{});
  options.ngram_min = 1;
  options.ngram_max = 2;
  options.english_stop_words = true;
  CHECK(AnalyzeWords("the cat and the hat sat on the mat", options) ==
        Tokens{"cat", "hat", "sat", "mat", "cat hat", "hat sat", "sat mat"});
  CHECK(IsEnglishStopWord("yourselves"));
  CHECK(IsEnglishStopWord("a"));
  CHECK_FALSE(IsEnglishStopWord("cat"));
  CHECK_FALSE(IsEnglishStopWord("The"));
}

// A stop word list keeps the words as given (order, repeats, bytes) for the config they came from,
// and finds each; a copy holds its own words, a move keeps them in place.
TEST_CASE("StopWords keeps the words as given and finds each of them") {
  const Tokens given = {"the", "\u00e9t\u00e9", "a", "the", "a stop word longer than 15 bytes"};
  const auto check = [&](const StopWords& words) {
    REQUIRE(words.given_size() == given.size());
    for (size_t i = 0; i < given.size(); ++i) CHECK(words.given(i) == given[i]);
    CHECK(words.size() == 4);
    CHECK_FALSE(words.empty());
    for (const std::string& word : given) CHECK(words.contains(word));
    for (const char* other : {"", "th", "thee", "The", "a stop word longer than 15 byte"}) {
      CHECK_FALSE(words.contains(other));
    }
  };
  std::optional<StopWords> original = StopWords::Of(given);
  check(*original);
  const StopWords copy = *original;
  StopWords assigned = {"x"};
  assigned = *original;
  original.reset();  // the copies hold their own words
  check(copy);
  check(assigned);
  StopWords moved = std::move(assigned);
  check(moved);
  StopWords move_assigned;
  move_assigned = std::move(moved);
  check(move_assigned);
  const StopWords none;
  CHECK(none.empty());
  CHECK(none.given_size() == 0);
  CHECK_FALSE(none.contains(""));
  const StopWords short_words = {"ab", "cd"};  // words of a few bytes, moved: still found
  const StopWords short_moved = StopWords(StopWords(short_words));
  CHECK(short_moved.contains("cd"));
  CHECK(short_moved.given(0) == "ab");
}

TEST_CASE("Analyzer TermRuns with a custom run pattern leaves texts of 2 GiB to the generic path") {
  // The run scanner indexes the text with int32_t, as ICU's UTF-8 macros do: a text of 2^31 bytes
  // or more must not reach it (gRPC never delivers one, so the text here is a mapping of zero
  // pages, reserved and never written: no memory is committed for it). A pattern of \b-bounded
  // runs takes the scanner (the plain runs of one set take AsciiSetRuns's vector pass instead,
  // bounded as AsciiWordRuns's).
  constexpr size_t kBytes = size_t{1} << 31;
  void* mapping =
      mmap(nullptr, kBytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  REQUIRE(mapping != MAP_FAILED);
  const auto pattern = TokenPattern::Compile(R"(\b[a-z]{2,}\b)");
  REQUIRE(pattern.ok());
  REQUIRE((*pattern)->uses_runs());
  REQUIRE((*pattern)->ascii_run_set(false) == nullptr);
  AnalyzerOptions options;
  options.token_pattern = *pattern;
  const Analyzer analyzer(options);
  AnalyzerScratch scratch;
  AsciiRuns runs;
  const char* text = static_cast<const char*>(mapping);
  CHECK_FALSE(analyzer.TermRuns(std::string_view(text, kBytes), &scratch, &runs));
  // Below the bound the run path takes a text (a short one here; the bound is the size test).
  CHECK(analyzer.TermRuns(std::string_view(text, 4096), &scratch, &runs));
  CHECK(runs.count == 0);
  munmap(mapping, kBytes);
}

}  // namespace
}  // namespace maas::discriminative
