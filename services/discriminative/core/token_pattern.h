// scikit-learn's custom token_pattern: re.compile(pattern).findall(doc) with Python 3.11 `re`
// semantics, run on ICU's regex engine.
//
// The Python pattern is parsed here (Python's own grammar and error checks) and translated into an
// ICU pattern that spells out Python's meaning explicitly, so that ICU's own, different notions of
// \w, \b, \s, \d, '.', '^' and '$' never come into play:
//   \w  -> the set of Python's str.isalnum() or '_' (General_Category L*, Nd, Nl, No, plus U+005F;
//          the same set as IsWordCodePoint), \d -> Nd, \s -> the 29 str.isspace() code points;
//          with (?a): [0-9A-Za-z_], [0-9], [\t\n\v\f\r ]; categories are Python 3.11's Unicode
//          14.0 (text_analysis.h: AssignedAfterUnicode14), so a code point assigned later is in
//          none of \w \d \s (in \W \D \S), as Python 3.11's unassigned ones;
//   \b  -> (?:(?<=W)(?!W)|(?<!W)(?=W)) with W the word set above, \B its complement;
//   .   -> anything but \n (every code point with (?s)); ^ -> \A (or \A|(?<=\n) with (?m));
//   $   -> (?=\n?\z) (or (?=\n|\z) with (?m)); \Z -> \z;
//   [...] -> the set computed here (ranges, escapes, negation), emitted as explicit ranges.
// Constructs whose meaning differs between the engines, or which could make findall() yield empty
// tokens, are refused with INVALID_ARGUMENT naming the construct (see TranslatePythonPattern).
//
//   MAAS_ASSIGN_OR_RETURN(std::shared_ptr<const TokenPattern> p, TokenPattern::Compile(R"(\S+)"));
//   TokenMatcherCache cache;  // one per thread
//   p->FindTokens(doc, &cache, [&](std::string_view token) { ... });
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_TOKEN_PATTERN_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_TOKEN_PATTERN_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "unicode/uversion.h"

U_NAMESPACE_BEGIN
class RegexPattern;
class RegexMatcher;
class UnicodeString;
U_NAMESPACE_END

namespace maas::discriminative {

// Longest token_pattern accepted, in code points.
inline constexpr size_t kMaxTokenPatternLength = 4096;
// Largest repeat count accepted in {m,n}.
inline constexpr uint64_t kMaxTokenPatternRepeat = 100'000;

// The work ICU's regex engine may do for one text, so that a pattern with catastrophic
// backtracking ((?:a+)+b or (?:a|aa)+c on "aaaa...a!", exponential in Python's re) cannot tie a
// worker up without bound. Counted in match steps: ICU's deterministic unit of matching work (one
// step = one backtracking state saved; RegexMatcher::setTimeLimit counts them in quanta of
// 10,000), the same on every machine and under any load. re.findall over a text of n UTF-16 code
// units may take kTokenPatternStepsPerText + n * kTokenPatternStepsPerCodeUnit steps in all
// (rounded up to ICU's quantum). Ordinary patterns take a few steps per code unit (measured on
// 545,000 code units of words: \w+(?:'\w+)? 1.1, [A-Za-z]+|\d+ 1.5, \w+@\w+ 2.8,
// \b\w+\b(?:-\w+)* 3.7), so only super-linear backtracking reaches the limit; a text that does
// stops after about 1.1e6 steps for 400 code units and 2.7e7 for 100,000 (8 ms and 0.2 s of CPU
// on the development machine).
inline constexpr int64_t kTokenPatternStepsPerText = 1'000'000;
inline constexpr int64_t kTokenPatternStepsPerCodeUnit = 256;
// ICU's backtrack stack per text, in bytes: bounds the memory one match may hold in pending
// alternatives (a 200,000-character token matched by (?:\w|')+ stays far below it).
inline constexpr int32_t kTokenPatternStackBytes = 64 << 20;
// The step limit for a text of `utf16_length` code units (a multiple of ICU's 10,000-step quantum).
int64_t TokenPatternStepLimit(size_t utf16_length);

// The ICU form of a Python token pattern.
struct TranslatedTokenPattern {
  std::string icu_pattern;  // UTF-8, for icu::RegexPattern::compile with no flags
  bool has_group = false;   // exactly one capturing group: the token is the group's text
  // Non-zero when the pattern's matches are exactly the maximal runs of one code point set of at
  // least this many code points (\w+, \b\w\w+\b, \S+, [a-zA-Z]{3,}, .+ ...): then the
  // tokenizer scans the runs itself instead of calling ICU (same tokens, several times faster).
  uint32_t run_min_length = 0;
  std::vector<std::pair<int32_t, int32_t>> run_ranges;  // the set, as inclusive code point ranges
  // Non-empty for a set S inside the word set W between \b on both sides (\b[^\W\d_]{2,}\b,
  // \b[a-zA-Z]{3,}\b ...): the matches are then the maximal runs of W (these ranges) made only of
  // code points of S and at least run_min_length long.
  std::vector<std::pair<int32_t, int32_t>> run_word_ranges;
};

// Parses `pattern` as Python 3.11 `re` does for a str pattern (Unicode by default) and translates
// it (see the file comment). Supported: literals and every Python escape of a literal (\x, \u, \U,
// octal, \n ...), '.', '^', '$', \A, \Z, \b, \B, \w \W \d \D \s \S (also inside [...]), character
// classes with ranges and negation, groups (capturing, (?:...), (?P<name>...)), alternation,
// greedy and lazy quantifiers (* + ? {m} {m,} {,n} {m,n}), lookahead and fixed-width lookbehind,
// (?#comments), and the flags u (no-op), a, s, m, global (at the start) or scoped (?s-m:...).
// Errors (INVALID_ARGUMENT, the message naming the construct and its position in code points):
//   - what Python's re.compile rejects, with Python's reason ("nothing to repeat", "bad escape
//     \q", "unterminated character set", "missing ), unterminated subpattern", ...);
//   - more than one capturing group (scikit-learn's ValueError);
//   - refused constructs: flags i, x (and L, invalid for str patterns), backreferences (\1,
//     (?P=name)), conditionals (?(...)...), atomic groups (?>...), possessive quantifiers, \N{...},
//     a quantified lookaround, a repeated subpattern that can match the empty string, and the
//     character-class forms Python warns about as future set syntax ([[..., [:alpha:], --, &&,
//     ~~, ||);
//   - a pattern that can match the empty string, or whose capturing group may not take part in a
//     match (inside ?, *, {0,n}, an alternative or a negative lookaround) or can be empty: findall
//     would yield empty tokens.
absl::StatusOr<TranslatedTokenPattern> TranslatePythonPattern(std::string_view pattern);

class TokenMatcherCache;

// A set of ASCII bytes, laid out for a vector lookup by each byte's two halves: byte b < 0x80 is
// in it iff bit b >> 4 of rows[b & 15] is set; a byte >= 0x80 never is.
struct AsciiByteSet {
  uint8_t rows[16] = {};
  void Add(unsigned char b) { rows[b & 15] |= static_cast<uint8_t>(1u << (b >> 4)); }
  bool Contains(unsigned char b) const { return b < 0x80 && (rows[b & 15] >> (b >> 4) & 1) != 0; }
};

// A compiled token pattern. Immutable and thread-safe; each thread passes its own cache.
class TokenPattern {
 public:
  // Translates and compiles `python_pattern` (UTF-8). Errors as TranslatePythonPattern, plus
  // INVALID_ARGUMENT for a pattern that is not valid UTF-8 or is too long.
  // With use_runs false, the run fast path is never taken (tests compare both paths).
  static absl::StatusOr<std::shared_ptr<const TokenPattern>> Compile(
      std::string_view python_pattern, bool use_runs = true);

  // re.findall over `text`, left to right: emit(token) per match (the group's text when the
  // pattern has a group). Tokens are views into `text`. Matching is bounded: past
  // TokenPatternStepLimit steps or kTokenPatternStackBytes of backtrack stack (catastrophic
  // backtracking, where Python would take exponential time), or on a failed allocation, matching
  // stops, the rest of the text yields no tokens and cache->status() says why (INVALID_ARGUMENT
  // for the limits, naming them; RESOURCE_EXHAUSTED for memory). Callers that analyze with a
  // custom pattern check cache->status() after each text. REQUIRES: `text` is valid UTF-8.
  void FindTokens(std::string_view text, TokenMatcherCache* cache,
                  absl::FunctionRef<void(std::string_view)> emit) const;

  const std::string& python_pattern() const { return python_pattern_; }
  const std::string& icu_pattern() const { return translated_.icu_pattern; }
  bool has_group() const { return translated_.has_group; }
  // True when FindTokens scans maximal runs itself (see TranslatedTokenPattern::run_min_length).
  bool uses_runs() const { return runs_ != nullptr; }
  // The shortest token of the run path, in code points (0 when !uses_runs()).
  uint32_t run_min_length() const { return runs_ != nullptr ? translated_.run_min_length : 0; }
  // When the tokens are the maximal runs of one set, of at least run_min_length() code points (no
  // \b-bounded subset of a larger set: \w+, \S+, [a-zA-Z]{3,}), the set's ASCII bytes, each
  // judged on its lowercase with lower_ascii (as FindRunBounds): on ASCII text the tokens are then
  // the runs of those bytes of that many bytes or more. Null otherwise.
  const AsciiByteSet* ascii_run_set(bool lower_ascii) const;
  // Whether code point c is in that set. REQUIRES: ascii_run_set(...) is not null.
  bool RunSetContains(int32_t c) const;
  // FindTokens' tokens on the run path as byte offsets: token k is [starts[k], ends[k]); returns
  // their count. With lower_ascii an ASCII byte belongs to the pattern's sets as its lowercase
  // does (the pattern applied to the lowercased text, for ASCII text). REQUIRES: uses_runs(),
  // `text` valid UTF-8 of at most 2^31 - 1 bytes, starts and ends with room for
  // text.size() / 2 + 1 entries (maximal runs are at least one code point apart).
  size_t FindRunBounds(std::string_view text, bool lower_ascii, uint32_t* starts,
                       uint32_t* ends) const;

 private:
  struct Runs;
  TokenPattern() = default;
  void FindRuns(std::string_view text, absl::FunctionRef<void(std::string_view)> emit) const;
  // The run scanner: calls emit(start, end) per token, ASCII membership from `ascii`.
  template <typename Emit>
  void ScanRuns(std::string_view text, const uint8_t* ascii, Emit&& emit) const;

  std::string python_pattern_;
  TranslatedTokenPattern translated_;
  std::shared_ptr<const icu::RegexPattern> regex_;
  std::shared_ptr<const Runs> runs_;  // null: match with ICU
};

// Per-thread matching state reused from one text to the next (no heap allocation per text once
// grown). Copying gives a fresh, empty cache.
class TokenMatcherCache {
 public:
  TokenMatcherCache();
  ~TokenMatcherCache();
  TokenMatcherCache(const TokenMatcherCache&);
  TokenMatcherCache& operator=(const TokenMatcherCache&);
  TokenMatcherCache(TokenMatcherCache&&) noexcept;
  TokenMatcherCache& operator=(TokenMatcherCache&&) noexcept;

  // OK, or the error that cut the last FindTokens call short (reset by each call).
  const absl::Status& status() const { return status_; }

 private:
  friend class TokenPattern;

  std::shared_ptr<const icu::RegexPattern> pattern_;  // keeps matcher_'s pattern alive
  std::unique_ptr<icu::RegexMatcher> matcher_;
  std::unique_ptr<icu::UnicodeString> text_;  // read-only alias of utf16_
  std::u16string utf16_;
  std::vector<uint32_t> utf8_offsets_;  // UTF-16 index -> UTF-8 byte offset (size + 1)
  absl::Status status_;
};

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_TOKEN_PATTERN_H_
