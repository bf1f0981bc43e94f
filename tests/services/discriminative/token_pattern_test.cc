#include "services/discriminative/core/token_pattern.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/discriminative/core/count_vectorizer.h"
#include "services/discriminative/core/hashing_vectorizer.h"
#include "services/discriminative/core/text_analysis.h"
#include "unicode/uchar.h"
#include "unicode/utf8.h"

namespace maas::discriminative {
namespace {

using Tokens = std::vector<std::string>;

std::shared_ptr<const TokenPattern> MustCompile(std::string_view pattern) {
  auto compiled = TokenPattern::Compile(pattern);
  INFO(pattern << ": " << compiled.status());
  REQUIRE(compiled.ok());
  return *compiled;
}

Tokens Find(const TokenPattern& pattern, std::string_view text, TokenMatcherCache* cache) {
  Tokens out;
  pattern.FindTokens(text, cache, [&](std::string_view t) { out.emplace_back(t); });
  CHECK(cache->status().ok());
  return out;
}

Tokens Find(std::string_view pattern, std::string_view text) {
  TokenMatcherCache cache;
  return Find(*MustCompile(pattern), text, &cache);
}

void AppendUtf8(UChar32 c, std::string* out) {
  char buf[U8_MAX_LENGTH];
  int32_t len = 0;
  U8_APPEND_UNSAFE(buf, len, c);
  out->append(buf, len);
}

bool IsSurrogate(UChar32 c) { return c >= 0xD800 && c <= 0xDFFF; }

// Every scalar value once, separated by `separator` (empty: none).
std::string AllCodePoints(std::string_view separator) {
  std::string text;
  for (UChar32 c = 0; c <= 0x10FFFF; ++c) {
    if (IsSurrogate(c)) continue;
    AppendUtf8(c, &text);
    text.append(separator);
  }
  return text;
}

// Checks that `pattern` (a one-code-point token, possibly as its group) matches exactly the code
// points c with expected(c), over all code points.
template <typename Predicate>
void CheckClassOverAllCodePoints(std::string_view pattern, std::string_view separator,
                                 Predicate expected) {
  const std::shared_ptr<const TokenPattern> p = MustCompile(pattern);
  TokenMatcherCache cache;
  std::vector<bool> found(0x110000, false);
  size_t extra = 0;
  p->FindTokens(AllCodePoints(separator), &cache, [&](std::string_view token) {
    UChar32 c;
    int32_t i = 0;
    U8_NEXT(token.data(), i, static_cast<int32_t>(token.size()), c);
    if (c < 0 || i != static_cast<int32_t>(token.size())) {
      ++extra;
      return;
    }
    found[c] = true;
  });
  REQUIRE(cache.status().ok());
  CHECK(extra == 0);
  int mismatches = 0;
  for (UChar32 c = 0; c <= 0x10FFFF; ++c) {
    if (IsSurrogate(c)) continue;
    if (found[c] == expected(c)) continue;
    if (++mismatches < 10) UNSCOPED_INFO(pattern << " mismatch at U+" << std::hex << c);
  }
  CHECK(mismatches == 0);
}

bool IsAsciiWord(UChar32 c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

TEST_CASE(
    "token_pattern classes equal Python's word, digit and space classes and their complements "
    "on every code point") {
  // IsWordCodePoint / IsPythonWhitespace are themselves checked against Python 3.11's tables.
  CheckClassOverAllCodePoints(R"(\w)", "", [](UChar32 c) { return IsWordCodePoint(c); });
  CheckClassOverAllCodePoints(R"(\W)", "", [](UChar32 c) { return !IsWordCodePoint(c); });
  CheckClassOverAllCodePoints(R"(\s)", "", [](UChar32 c) { return IsPythonWhitespace(c); });
  CheckClassOverAllCodePoints(R"([^\S])", "", [](UChar32 c) { return IsPythonWhitespace(c); });
  // \d: Nd in Python 3.11's Unicode 14.0 (ICU's categories of the code points it assigns).
  const auto digit = [](UChar32 c) {
    return u_charType(c) == U_DECIMAL_DIGIT_NUMBER && !AssignedAfterUnicode14(c);
  };
  CheckClassOverAllCodePoints(R"(\d)", "", digit);
  CheckClassOverAllCodePoints(R"(\D)", "", [&](UChar32 c) { return !digit(c); });
  CheckClassOverAllCodePoints(R"([^\d])", "", [&](UChar32 c) { return !digit(c); });
  CheckClassOverAllCodePoints(R"(\S)", "", [](UChar32 c) { return !IsPythonWhitespace(c); });
  CheckClassOverAllCodePoints(R"((?a)\w)", "", IsAsciiWord);
  CheckClassOverAllCodePoints(R"((?a)[\s])", "",
                              [](UChar32 c) { return c == ' ' || (c >= 0x09 && c <= 0x0D); });
  // \b between the code point and '#' (a non-word character) holds iff the code point is a word
  // character; '.' is everything but \n.
  CheckClassOverAllCodePoints(R"((.)\b#)", "#", [](UChar32 c) { return IsWordCodePoint(c); });
  CheckClassOverAllCodePoints(R"((.)#)", "#", [](UChar32 c) { return c != '\n'; });
}

TEST_CASE(
    "token_pattern: code points assigned after Unicode 14.0 are in no class, as in Python 3.11") {
  // Unicode 15.0 (ICU 72): Cyrillic Extended-D U+1E041 (Lm), CJK Extension H U+31350 (Lo), Kawi
  // digits U+11F50.. (Nd); Python 3.11 has them unassigned (Cn).
  const std::string text = "ab \U0001e041\U0001e041 \U00031350 \U00011f50\U00011f51 7";
  CHECK(Find(R"(\w+)", text) == Tokens{"ab", "7"});
  CHECK(Find(R"([\w]+)", text) == Tokens{"ab", "7"});
  CHECK(Find(R"(\b\w\w+\b)", text) == Tokens{"ab"});
  CHECK(Find(R"(\d+)", text) == Tokens{"7"});
  CHECK(Find(R"([^\D]+)", text) == Tokens{"7"});
  CHECK(Find(R"(\D+)", "\U00011f50\U00011f517") == Tokens{"\U00011f50\U00011f51"});
  CHECK(Find(R"(\W+)", "a\U0001e041\U00031350b") == Tokens{"\U0001e041\U00031350"});
  CHECK(Find(R"(\S+)", "\U0001e041 \U00031350") == Tokens{"\U0001e041", "\U00031350"});
  CHECK(Find(R"(a\b)", "a\U0001e041 aa") == Tokens{"a", "a"});
  CHECK(Find(R"(a\B)", "a\U0001e041 aa") == Tokens{"a"});
  CHECK(Find(R"(a\w)", "a\U0001e041 a\U0001e041") == Tokens{});
  // Group names are Python 3.11 identifiers: U+1E030 is none.
  const auto named = TokenPattern::Compile("(?P<x\U0001e030>a)");
  REQUIRE_FALSE(named.ok());
  CHECK_THAT(std::string(named.status().message()), Catch::Contains("bad character in group name"));
  // Not a letter for the flag errors either (Python: "missing -, : or )", not "unknown flag").
  const auto flag = TokenPattern::Compile("(?s\U0001e030)a");
  REQUIRE_FALSE(flag.ok());
  CHECK_THAT(std::string(flag.status().message()), Catch::Contains("missing -, : or )"));
}

TEST_CASE("token_pattern findall: groups, offsets, anchors, flags") {
  CHECK(Find(R"(\S+)", "ab  c\u00a0d\u200be\u3000f\u0085g") ==
        Tokens{"ab", "c", "d\u200be", "f", "g"});
  CHECK(Find(R"((\w+)@)", "\U0001F600ab@x \U00010400\U00010400@ @") ==
        Tokens{"ab", "\U00010400\U00010400"});
  CHECK(Find(R"((?u)\b\w+\b)", "a_b c\u0301d \u00bd2") == Tokens{"a_b", "c", "d", "\u00bd2"});
  CHECK(Find(R"([^\W\d_]+)", "ab_12cd3\u00e9") == Tokens{"ab", "cd", "\u00e9"});
  CHECK(Find(R"(\w+$)", "ab cd\n") == Tokens{"cd"});
  CHECK(Find(R"(\w+\Z)", "ab cd\n") == Tokens{});
  CHECK(Find(R"((?m)^\w)", "ab\ncd\ref") == Tokens{"a", "c"});
  CHECK(Find(R"(^\w)", "ab\ncd") == Tokens{"a"});
  CHECK(Find(R"(.+)", "ab\ncd\u2028ef\r\u0085") == Tokens{"ab", "cd\u2028ef\r\u0085"});
  CHECK(Find(R"((?s).+)", "ab\ncd") == Tokens{"ab\ncd"});
  CHECK(Find(R"((?s:.)\d)", "a\n1b2") == Tokens{"\n1", "b2"});
  CHECK(Find(R"((?<=@)\w+)", "a@bc @d") == Tokens{"bc", "d"});
  CHECK(Find(R"(\w+?)", "ab") == Tokens{"a", "b"});
  CHECK(Find(R"(ba{,2})", "baaab bb") == Tokens{"baa", "b", "b", "b"});
  CHECK(Find(R"(x{)", "x{x") == Tokens{"x{"});
  CHECK(Find(R"(\x41\u00e9\U0001F600\101\0)", std::string("A\u00e9\U0001F600A\0", 9)) ==
        Tokens{std::string("A\u00e9\U0001F600A\0", 9)});
  CHECK(Find(R"([\b\-\]]+)", "a\b-]b") == Tokens{"\b-]"});
  CHECK(Find(R"([]a]+)", "]a]b") == Tokens{"]a]"});
  CHECK(Find(R"([a-]+)", "a-b") == Tokens{"a-"});
  CHECK(Find(R"((?#comment)\d+)", "a12") == Tokens{"12"});
  CHECK(Find(R"((?P<word>\w+)!)", "hi! yo") == Tokens{"hi"});
  CHECK(Find(R"(\.|\w\w)", "a.bcd") == Tokens{".", "bc"});
  // One cache serves patterns one after the other.
  TokenMatcherCache cache;
  const auto a = MustCompile(R"(\d)");
  const auto b = MustCompile(R"([a-z])");
  CHECK(Find(*a, "a1b2", &cache) == Tokens{"1", "2"});
  CHECK(Find(*b, "a1b2", &cache) == Tokens{"a", "b"});
  CHECK(Find(*a, "", &cache) == Tokens{});
  TokenMatcherCache copy = cache;
  CHECK(Find(*a, "9", &copy) == Tokens{"9"});
}

TEST_CASE("token_pattern run fast path gives the same tokens as ICU") {
  // Runs of S, or (the last row) maximal runs of \w made only of S for S inside \w between two \b.
  const char* runs[] = {R"(\w+)",
                        R"(\b\w\w+\b)",
                        R"((?u)\b\w+\b)",
                        R"(\S+)",
                        R"([a-zA-Z]{3,})",
                        R"(.+)",
                        R"(\w\w*)",
                        R"((?a)\b\w{2,}\b)",
                        R"([^\W\d_]+)",
                        R"(\d\d\d+)",
                        R"((?s).+)",
                        R"([^\s]+)",
                        R"(\b[a-z]+\b)",
                        R"((?u)\b[^\W\d_]{2,}\b)",
                        R"(\b[a-zA-Z]{3,}\b)",
                        R"((?a)\b[^\W\d]+\b)",
                        R"(\b\d\d+\b)",
                        R"(\b[éΣς中]+\b)"};
  const char* not_runs[] = {R"(\w+?)",     R"(\w{2,3})",     R"(\w+\d+)",     R"((\w+))",
                            R"(\w+|\d)",   R"(^\w+)",        R"(\w\w)",       R"(\w?\w+)",
                            R"([a-z]+\b)", R"(\B\w+)",       R"(\S+\b)",      R"(\b[a-z]+)",
                            R"(\b\S+\b)",  R"(\b[a-z ]+\b)", R"(\b[a-z]+?\b)"};
  // Texts: random code points from a mixed pool, plus every code point once.
  std::vector<std::string> texts;
  const std::vector<std::string> pool = {
      "a",      "Z", "_", "1", " ",  "\n", "\t", "\u00a0", "\u2028", "\u200b", "é", "\u0301",
      "\u0663", "Σ", "ς", "😀", "中", "@",  ".",  "-",      "\u3000", "\u0085", "ǅ", "½"};
  uint64_t state = 12345;
  for (int t = 0; t < 300; ++t) {
    std::string text;
    for (int k = 0; k < 30; ++k) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      text += pool[(state >> 33) % pool.size()];
    }
    texts.push_back(text);
  }
  texts.push_back(AllCodePoints(""));
  texts.push_back(AllCodePoints(" "));
  for (const char* pattern : runs) {
    const auto fast = MustCompile(pattern);
    auto slow = TokenPattern::Compile(pattern, /*use_runs=*/false);
    REQUIRE(slow.ok());
    INFO(pattern);
    CHECK(fast->uses_runs());
    CHECK_FALSE((*slow)->uses_runs());
    TokenMatcherCache cache;
    for (const std::string& text : texts) {
      CHECK(Find(*fast, text, &cache) == Find(**slow, text, &cache));
    }
  }
  for (const char* pattern : not_runs) {
    INFO(pattern);
    CHECK_FALSE(MustCompile(pattern)->uses_runs());
  }
}

TEST_CASE("token_pattern translation spells out Python's meaning") {
  const auto t = TranslatePythonPattern(R"(\Z)");
  REQUIRE_FALSE(t.ok());  // Only assertions: empty matches.
  auto translated = TranslatePythonPattern(R"(\w+\Z)");
  REQUIRE(translated.ok());
  CHECK(translated->icu_pattern.find("\\z") != std::string::npos);
  CHECK_FALSE(translated->has_group);
  translated = TranslatePythonPattern(R"(a$)");
  REQUIRE(translated.ok());
  CHECK(translated->icu_pattern == "a(?=\\x{A}?\\z)");
  translated = TranslatePythonPattern(R"((?a)\d)");
  REQUIRE(translated.ok());
  CHECK(translated->icu_pattern == "[\\x{30}-\\x{39}]");
  translated = TranslatePythonPattern(R"((x)y)");
  REQUIRE(translated.ok());
  CHECK(translated->has_group);
  CHECK(translated->icu_pattern == "(x)y");
}

TEST_CASE(
    "token_pattern refusals and compile errors answer INVALID_ARGUMENT naming the construct") {
  struct Case {
    const char* pattern;
    const char* message;
  };
  const Case cases[] = {
      // Python re.compile errors, with Python's reason.
      {"[a-z", "unterminated character set at position 0"},
      {"a**", "multiple repeat at position 2"},
      {"*a", "nothing to repeat at position 0"},
      {"\\b+", "nothing to repeat"},
      {"(ab", "missing ), unterminated subpattern at position 0"},
      {"ab)", "unbalanced parenthesis at position 2"},
      {"\\q", "bad escape \\q at position 0"},
      {"[\\A]", "bad escape \\A"},
      {"\\x4", "incomplete escape \\x4"},
      {"\\U00110000", "bad escape \\U00110000"},
      {"x{3,2}", "min repeat greater than max repeat"},
      {"x{99999999999}", "the repetition number is too large"},
      {"[z-a]", "bad character range"},
      {"[\\w-z]", "bad character range"},
      {"\\400", "octal escape value \\400 outside of range 0-0o377"},
      {"(?<=a+)b", "look-behind requires fixed-width pattern"},
      {"\\w(?u)", "global flags not at the start of the expression"},
      {"(?L)a", "cannot use 'L' flag with a str pattern"},
      {"(?au)a", "flags 'a', 'u' and 'L' are incompatible"},
      {"(?a)(?u)a", "flags 'a' and 'u' are incompatible"},
      {"(?-u:a)", "cannot turn off flags 'a', 'u' and 'L'"},
      {"(?s-s:a)", "flag turned on and off"},
      {"(?sz)a", "unknown flag"},
      {"(?z)a", "unknown extension ?z"},
      {"(?<n>a)", "unknown extension ?<n"},
      {"(?Qa)", "unknown extension ?Q"},
      {"(?P<1>a)", "bad character in group name"},
      {"(?P<n>a)(?:(?P<n>b))", "redefinition of group name"},
      {"(?#abc", "missing ), unterminated comment"},
      // scikit-learn's rule.
      {"(a)(b)", "More than 1 capturing group in token pattern"},
      // Empty tokens.
      {"\\w*", "can match the empty string"},
      {"\\b", "can match the empty string"},
      {"(?=a)", "can match the empty string"},
      {"(a)?b", "capturing group may not take part in a match"},
      {"(a)|b", "capturing group may not take part in a match"},
      {"(?!(a))b", "capturing group may not take part in a match"},
      {"(a)+", "capturing group may not take part in a match"},
      {"(a*)b", "capturing group can match the empty string"},
      // Refused constructs.
      {"(?i)abc", "the flag (?i) (IGNORECASE) at position 0 is not supported"},
      {"(?i:a)b", "the flag (?i) (IGNORECASE)"},
      {"(?x)a b", "the flag (?x) (VERBOSE)"},
      {"(a)\\1", "a backreference"},
      {"(?P<n>a)(?P=n)", "a named backreference (?P=name)"},
      {"(?(1)a|b)", "a conditional group"},
      {"(?>ab)", "an atomic group (?>...)"},
      {"a++", "a possessive quantifier"},
      {"a{2}+", "a possessive quantifier"},
      {"\\N{EM DASH}", "a named character \\N{...}"},
      {"(?=a)+b", "a quantifier on a lookaround assertion"},
      {"(?:a?)+b", "a repeated subpattern that can match the empty string"},
      {"[[:alpha:]]", "a character class starting with '['"},
      {"[a[:alpha:]]", "a POSIX class [:name:]"},
      {"[a--b]", "'--' inside a character class"},
      {"[a&&b]", "'&&' inside a character class"},
      {"[a~~b]", "'~~' inside a character class"},
      {"[a||b]", "'||' inside a character class"},
      {"[a-\\-]", "bad character range"},
      {"a{100001}", "repeat count 100001"},
  };
  for (const Case& c : cases) {
    const auto compiled = TokenPattern::Compile(c.pattern);
    INFO(c.pattern << " -> " << compiled.status());
    CHECK(compiled.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(compiled.status().message()), Catch::Contains(c.message));
    CHECK_THAT(std::string(compiled.status().message()), Catch::Contains("token_pattern"));
  }
  CHECK(TokenPattern::Compile("\xff").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(TokenPattern::Compile(std::string(kMaxTokenPatternLength + 1, 'a')).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE(
    "token_pattern in the analyzer (lowercase first, stop words, n-grams), ignored by the char "
    "analyzers, shared by the hashing vectorizer") {
  AnalyzerOptions options;
  options.token_pattern = MustCompile(R"([a-z]+)");
  options.stop_words = {"the"};
  options.ngram_max = 2;
  AnalyzerScratch scratch;
  const auto analyze = [&](const AnalyzerOptions& o, std::string_view text) {
    Tokens out;
    Analyzer(o).Analyze(text, &scratch, [&](std::string_view t) { out.emplace_back(t); });
    return out;
  };
  CHECK(analyze(options, "The CAT the hat9sat") ==
        Tokens{"cat", "hat", "sat", "cat hat", "hat sat"});
  options.lowercase = false;
  CHECK(analyze(options, "The CAT the hat9sat") == Tokens{"he", "hat", "sat", "he hat", "hat sat"});

  v1::VectorizerConfig config;
  v1::TextOptions* text = config.mutable_count()->mutable_text();
  text->set_token_pattern(R"(\S+)");
  auto count = CountVectorizerOptionsFromConfig(config);
  REQUIRE(count.ok());
  REQUIRE(count->analyzer.token_pattern != nullptr);
  CHECK(count->analyzer.token_pattern->python_pattern() == R"(\S+)");
  // The default pattern keeps the native tokenizer.
  text->set_token_pattern(R"((?u)\b\w\w+\b)");
  count = CountVectorizerOptionsFromConfig(config);
  REQUIRE(count.ok());
  CHECK(count->analyzer.token_pattern == nullptr);
  // scikit-learn never compiles token_pattern for the char analyzers (it warns it is unused).
  text->set_token_pattern("(?i)[");
  text->set_analyzer(v1::ANALYZER_CHAR_WB);
  count = CountVectorizerOptionsFromConfig(config);
  REQUIRE(count.ok());
  CHECK(count->analyzer.token_pattern == nullptr);
  text->set_analyzer(v1::ANALYZER_WORD);
  CHECK(CountVectorizerOptionsFromConfig(config).status().code() ==
        absl::StatusCode::kInvalidArgument);

  v1::VectorizerConfig hashing;
  hashing.mutable_hashing()->mutable_text()->set_token_pattern(R"((\w+)@)");
  auto hashing_options = HashingVectorizerOptionsFromConfig(hashing);
  REQUIRE(hashing_options.ok());
  REQUIRE(hashing_options->analyzer.token_pattern != nullptr);
  CHECK(hashing_options->analyzer.token_pattern->has_group());
  hashing.mutable_hashing()->mutable_text()->set_token_pattern(R"((\w+)@(\w))");
  CHECK(HashingVectorizerOptionsFromConfig(hashing).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("token_pattern matching work is bounded per text (catastrophic backtracking)") {
  // The limit: a fixed allowance plus one per UTF-16 code unit, in whole ICU quanta.
  CHECK(TokenPatternStepLimit(0) == kTokenPatternStepsPerText);
  for (const size_t n : {size_t{1}, size_t{301}, size_t{12345}, size_t{1} << 20}) {
    const int64_t wanted =
        kTokenPatternStepsPerText + static_cast<int64_t>(n) * kTokenPatternStepsPerCodeUnit;
    CHECK(TokenPatternStepLimit(n) >= wanted);
    CHECK(TokenPatternStepLimit(n) < wanted + 10'000);
    CHECK(TokenPatternStepLimit(n) % 10'000 == 0);
  }

  // Exponential-time patterns on "aaa...a!": Python's re would run for ages; here each text stops
  // at its step limit with INVALID_ARGUMENT naming the limit, and the cache stays usable.
  const std::string hostile = std::string(300, 'a') + "!";
  for (const char* pattern : {"(?:a|aa)+c", "(a+)+b", "(?:a+)+b", "(?:\\w+\\s?)+x", "(?:a|a)+!x"}) {
    INFO(pattern);
    const auto compiled = TokenPattern::Compile(pattern);
    if (!compiled.ok()) {  // refused up front (a repeated subpattern that can match empty...)
      CHECK(compiled.status().code() == absl::StatusCode::kInvalidArgument);
      continue;
    }
    REQUIRE_FALSE((*compiled)->uses_runs());
    TokenMatcherCache cache;
    Tokens tokens;
    (*compiled)->FindTokens(hostile, &cache, [&](std::string_view t) { tokens.emplace_back(t); });
    INFO(cache.status());
    CHECK(cache.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(cache.status().message()),
               Catch::Contains(absl::StrCat("more than ", TokenPatternStepLimit(hostile.size()),
                                            " match steps")));
    CHECK_THAT(std::string(cache.status().message()), Catch::Contains("catastrophic backtracking"));
    CHECK(tokens.empty());
    // The next text starts afresh (status and step count reset).
    (*compiled)->FindTokens("aac aab", &cache, [](std::string_view) {});
    CHECK(cache.status().ok());
  }
  const auto nested = MustCompile("(?:a|aa)+c");
  TokenMatcherCache cache;
  CHECK(Find(*nested, "xaac aaaac c", &cache) == Tokens{"aac", "aaaac"});

  // Ordinary patterns on long texts stay far below the limits: many tokens (the step count is
  // per text, over all of its matches), one very long token (the backtrack stack), and a
  // quadratic-but-ordinary scan (each word tried from every start).
  std::string words;
  for (int i = 0; i < 50'000; ++i) absl::StrAppend(&words, "word", i % 97, "'s x ");
  const auto apostrophe = MustCompile(R"(\w+(?:'\w+)?)");
  const Tokens many = Find(*apostrophe, words, &cache);
  CHECK(many.size() == 100'000);
  const std::string long_word(200'000, 'q');
  CHECK(Find(*MustCompile(R"((?:\w|')+)"), long_word, &cache) == Tokens{long_word});
  std::string mail;
  for (int i = 0; i < 2'000; ++i) absl::StrAppend(&mail, "someone", i, " at example.org; ");
  absl::StrAppend(&mail, "a@b");
  CHECK(Find(*MustCompile(R"(\w+@\w+)"), mail, &cache) == Tokens{"a@b"});
}

}  // namespace
}  // namespace maas::discriminative
