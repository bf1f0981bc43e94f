// Text analysis with Python 3 / scikit-learn semantics: UTF-8 validation, str.lower(), the default
// word tokenizer (token_pattern r"(?u)\b\w\w+\b") and the word analyzer (stop words, word n-grams).
//
//   MAAS_RETURN_IF_ERROR(ValidateUtf8(text));
//   std::vector<std::string> tokens = DefaultTokenize(PythonLower(text));
//
// All strings are UTF-8. Functions taking text that is not validated say so with REQUIRES.
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_TEXT_ANALYSIS_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_TEXT_ANALYSIS_H_

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "services/discriminative/core/default_init.h"
#include "services/discriminative/core/large_array.h"
#include "services/discriminative/core/term_table.h"
#include "services/discriminative/core/token_pattern.h"

namespace maas::discriminative {

// OK iff `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF), i.e. exactly what Python's bytes.decode("utf-8", "strict") accepts. Otherwise
// INVALID_ARGUMENT naming the byte offset of the first ill-formed sequence.
absl::Status ValidateUtf8(std::string_view text);

// Python 3.11 str.lower(): full Unicode lowercase mapping (SpecialCasing unconditional mappings,
// e.g. U+0130 -> "i\u0307") plus the Final_Sigma rule for U+03A3; no language-specific rules;
// Unicode 14.0 (AssignedAfterUnicode14 code points are their own lowercase, and neither cased nor
// case-ignorable in Final_Sigma's context). Code point by code point: ICU's simple mapping
// (u_tolower), which in the root locale is the full one but for U+0130 and U+03A3.
// REQUIRES: ValidateUtf8(text).ok().
std::string PythonLower(std::string_view text);

// The Unicode version of every character table here and in token_pattern.h: Python 3.11's, 14.0
// (the unicodedata of the scikit-learn oracle), not ICU's (ICU 72: 15.0). ICU supplies the
// properties of each code point Unicode 14.0 assigns (they did not change in 15.0: checked over
// every code point by the oracle tests); a code point assigned later is what Python 3.11 makes of
// an unassigned one (General_Category Cn): not \w, \d or \s, its own lowercase, neither cased nor
// case-ignorable (for Final_Sigma), no decomposition and combining class 0 (strip_accents leaves
// it), not an identifier character, not alphabetic.
//
// True iff code point `c` is assigned in ICU's Unicode but not in 14.0 (u_charAge later than
// 14.0). Out-of-range values are false.
bool AssignedAfterUnicode14(int32_t c);

// The code points Unicode 14.0 assigns, as an ICU UnicodeSet pattern: the complement of
// AssignedAfterUnicode14 among ICU's assigned code points.
inline constexpr char kUnicode14AssignedSet[] = "[:Age=14.0:]";

// True iff Python 3.11 `re` matches `\w` on code point `c` in a str pattern (c.isalnum() or c ==
// '_'): General_Category in {Lu, Ll, Lt, Lm, Lo, Nd, Nl, No} in Unicode 14.0 (so never for
// AssignedAfterUnicode14), or U+005F. Out-of-range values are false.
bool IsWordCodePoint(int32_t c);

// The default token_pattern r"(?u)\b\w\w+\b" as re.findall: maximal runs of word code points that
// are at least 2 code points long, left to right. REQUIRES: ValidateUtf8(text).ok().
std::vector<std::string> DefaultTokenize(std::string_view text);

// scikit-learn's ENGLISH_STOP_WORDS (318 words), sorted.
std::vector<std::string_view> EnglishStopWords();

// True iff `word` is in scikit-learn's ENGLISH_STOP_WORDS (318 words).
bool IsEnglishStopWord(std::string_view word);

// Options of the word analyzer (a subset of CountVectorizer's parameters; more may come).
struct WordAnalyzerOptions {
  // Python str.lower() before tokenising.
  bool lowercase = true;
  // Drop tokens in ENGLISH_STOP_WORDS (stop_words="english") before building n-grams.
  bool english_stop_words = false;
  // Word n-gram sizes, 1 <= ngram_min <= ngram_max.
  uint32_t ngram_min = 1;
  uint32_t ngram_max = 1;
};

// scikit-learn's build_analyzer() for analyzer='word' with the default token pattern: preprocess
// (lowercase), tokenize, remove stop words, then word n-grams (unigrams first, then bigrams, ...,
// each left to right, joined with a single space). REQUIRES: ValidateUtf8(text).ok() and valid
// options.
std::vector<std::string> AnalyzeWords(std::string_view text, const WordAnalyzerOptions& options);

// scikit-learn's decode_error for bytes that are not valid UTF-8.
enum class DecodeError {
  kStrict,   // INVALID_ARGUMENT naming the byte offset
  kReplace,  // each maximal ill-formed subpart becomes U+FFFD (CPython's policy)
  kIgnore,   // ill-formed bytes are dropped
};

// bytes.decode("utf-8", errors=mode). Returns `text` itself when it is valid UTF-8 (no copy),
// otherwise the repaired text stored in *storage (kReplace / kIgnore) or INVALID_ARGUMENT
// (kStrict).
absl::StatusOr<std::string_view> DecodeUtf8(std::string_view text, DecodeError mode,
                                            std::string* storage);

// True iff Python 3 str.isspace() holds for code point `c` (the 29 whitespace code points that
// re's \s matches in str patterns).
bool IsPythonWhitespace(int32_t c);

enum class AnalyzerKind { kWord, kChar, kCharWb };
enum class StripAccentsMode { kNone, kAscii, kUnicode };

// A stop word list (scikit-learn's stop_words): the words in the order they were given, a word
// given twice listed twice, so that the list they came from (a config's stop_word_list) can be
// written back exactly; each given word's bytes held once, in one buffer, with a hash set of views
// into it for lookups. Immutable once made; a copy copies the words and re-points its set.
//
//   const StopWords stop_words = StopWords::Of(text.stop_word_list());
//   stop_words.contains("the");  stop_words.given(0);
class StopWords {
 public:
  StopWords() = default;
  // The words of a range of strings or string views, in order. REQUIRES: fewer than 4 GiB of
  // words in all.
  template <typename Words>
  static StopWords Of(const Words& words);
  StopWords(std::initializer_list<std::string_view> words)  // NOLINT(google-explicit-constructor)
      : StopWords(Of(words)) {}
  bool contains(std::string_view word) const { return table_.Find(word) != TermTable::kNotFound; }
  // The distinct words as a table (for callers that build keys themselves).
  const TermTable& table() const { return table_; }
  bool empty() const { return given_.empty(); }
  // Distinct words.
  size_t size() const { return table_.size(); }
  // The words as given, repeats included: given(0), ..., given(given_size() - 1).
  size_t given_size() const { return given_.size(); }
  std::string_view given(size_t i) const { return table_.term(given_[i]); }
  // Heap bytes held (the table with its words, the given order).
  int64_t MemoryBytes() const;

 private:
  // The distinct words, each held once in the table's arena: contains is one probe of two
  // integers for a word of up to 15 bytes (a token of a text is checked against it, so it is on
  // the word n-grams' path).
  TermTable table_;
  std::vector<uint32_t> given_;  // the table's id of each word as given
};

template <typename Words>
StopWords StopWords::Of(const Words& words) {
  StopWords out;
  size_t n = 0, bytes = 0;
  for (const auto& word : words) {
    ++n;
    bytes += std::string_view(word).size();
  }
  out.table_.Reserve(n, bytes);
  out.given_.reserve(n);
  for (const auto& word : words) out.given_.push_back(out.table_.Insert(word).first);
  return out;
}

// scikit-learn's build_analyzer() parameters.
struct AnalyzerOptions {
  AnalyzerKind kind = AnalyzerKind::kWord;
  bool lowercase = true;
  StripAccentsMode strip_accents = StripAccentsMode::kNone;
  // Tokens dropped before word n-grams (word analyzer only), as given. Empty: none.
  StopWords stop_words;
  uint32_t ngram_min = 1;
  uint32_t ngram_max = 1;
  // A custom token_pattern (word analyzer only). Null: the default r"(?u)\b\w\w+\b".
  std::shared_ptr<const TokenPattern> token_pattern;
};

// An allocator whose value-less construct leaves a trivial element uninitialized: a vector of
// it grows by resize(n) without writing n zeros (for buffers filled right after growing).
template <typename T>
struct UninitializedAllocator : std::allocator<T>, DefaultInitConstruct {
  template <typename U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <typename U>
  UninitializedAllocator(const UninitializedAllocator<U>&) {}  // NOLINT: as std::allocator
  using DefaultInitConstruct::construct;
};

// Per-text distinct feature ids: grown by the number of lookups, then trimmed to those new.
using FeatureIds = std::vector<uint32_t, UninitializedAllocator<uint32_t>>;

// Buffers an Analyzer reuses from one text to the next (one per thread): no heap allocation per
// text once they have grown to the largest text.
struct AnalyzerScratch {
  std::string preprocessed;
  std::string work;
  std::string gram;
  std::vector<uint32_t> offsets;  // code point boundaries (byte offsets)
  std::vector<std::string_view> tokens;
  std::vector<uint64_t> keys;  // per-text feature keys of the vectorizers
  // The hashing vectorizer's signed count per place of a text's distinct columns (ids holds the
  // columns, keys the open-addressing table from column to place).
  std::vector<double> column_counts;
  // Per-feature counts of one text (all 0 between texts), at random places of a large array.
  LargeVector<double> dense{LargeArrayAllocator<double>(/*huge=*/true)};
  std::string decoded;  // decode_error replace/ignore output
  // AnalyzeBatches: the batch of term views and the buffer the n-gram views point into.
  std::vector<std::string_view> terms;
  std::string grams;
  FeatureIds ids;                  // per-text distinct feature ids (count vectorizer)
  std::vector<uint64_t> bits;      // per-feature bitmap of one text (all 0 between texts)
  std::vector<uint64_t> summary;   // per-word bitmap of `bits` (all 0 between texts)
  std::vector<uint32_t> bucketed;  // a long row's ids by bucket, and the buckets' starts
  std::vector<uint32_t> bucket_starts;
  std::vector<uint64_t> masks;       // per-byte bitmap of the text (word tokenizer)
  std::vector<uint64_t> high_masks;  // per-byte bitmap of its bytes >= 0x80 (word tokenizer)
  std::vector<uint32_t> bounds;      // token start and end positions of the text (word tokenizer)
  std::vector<uint32_t> run_hashes;  // the hashing vectorizer's hash of each run of the text
  std::vector<uint32_t> word_ids;    // a char_wb word's ids the word memo has no room for
  // The count vectorizer's word n-grams of runs (CountVectorizer::CountRunNgrams): the tokens'
  // bounds, where each token's run of joined tokens ends, and the n-grams' bounds.
  std::vector<uint32_t> gram_bounds;
  // The char_wb vectorizers' feature ids (count) or hashed terms (hashing) per padded word, kept
  // from text to text.
  struct WordMemo {
    // Bounds: once full the memo keeps its entries and adds none.
    static constexpr size_t kMaxWords = size_t{1} << 16;
    static constexpr size_t kMaxIds = size_t{1} << 20;  // 4 MiB
    uint64_t owner = 0;              // which vectorizer's ids these are (0: none)
    TermTable words;                 // padded word -> entry
    std::vector<uint32_t> begin{0};  // entry e's ids: ids[begin[e], begin[e + 1])
    std::vector<uint32_t> ids;       // known features of the word's n-grams, in n-gram order
    // Emptied for the vectorizer of `tag` unless it is already the owner.
    void Own(uint64_t tag) {
      if (owner == tag) return;
      owner = tag;
      words = TermTable();
      begin.assign(1, 0);
      ids.clear();
    }
    // Whether a word of `n` more ids can be stored.
    bool Room(size_t n) const { return words.size() < kMaxWords && ids.size() + n <= kMaxIds; }
  } word_memo;
  TokenMatcherCache token_matcher;  // custom token_pattern matching state
  // Set by a caller that consumes the rows (Pipeline: the classifier's parameter rows): the count
  // vectorizer prefetches feature f's row at feature_rows + f * feature_row_stride as soon as its
  // lookup finds f. Null: none. Only a memory hint; no effect on results.
  const char* feature_rows = nullptr;
  size_t feature_row_stride = 0;
  // Bytes the buffers sized by the texts analysed (not by the model) hold: what a very long text
  // leaves behind.
  size_t TextBufferBytes() const;
  // Frees those buffers; the model-sized ones (counts, bitmaps, the word memo) stay.
  void FreeTextBuffers();
  // Calls f on each of those buffers (one list for both).
  template <typename Scratch, typename F>
  static void ForEachTextBuffer(Scratch& s, F&& f) {
    f(s.preprocessed);
    f(s.work);
    f(s.gram);
    f(s.offsets);
    f(s.tokens);
    f(s.keys);
    f(s.column_counts);
    f(s.decoded);
    f(s.terms);
    f(s.grams);
    f(s.ids);
    f(s.bucketed);
    f(s.bucket_starts);
    f(s.masks);
    f(s.high_masks);
    f(s.bounds);
    f(s.run_hashes);
    f(s.word_ids);
    f(s.gram_bounds);
  }
  // Whether the AVX-512 word-count lookup consults the vocabulary's filter before probing a
  // token's slot (when many tokens are absent) or probes every token (when nearly all are terms);
  // it updates this after each text from that text's share of absent tokens. Only a speed choice;
  // no effect on results.
  bool lookup_filter = false;
  // The same choice for the lookups of word n-grams of 2 or more tokens (CountRunNgrams), which
  // miss far more often than a text's unigrams: kept apart, so that neither kind's share of
  // absent terms decides the other's lookups.
  bool gram_lookup_filter = true;
};

// The maximal runs of ASCII word bytes [0-9A-Za-z_] of a text, as byte positions: run k is
// [starts[k], ends[k]) for k < count, left to right, 1-byte runs included (the default token
// pattern r"(?u)\b\w\w+\b" keeps the runs of 2 bytes or more).
struct AsciiRuns {
  const uint32_t* starts = nullptr;
  const uint32_t* ends = nullptr;
  size_t count = 0;
};

// The word-byte runs of `text` into *runs (positions stored in scratch->bounds, valid until the
// scratch is used again), in one SIMD pass (SSE2, AVX2 or AVX-512: BestCountSimdPath in
// count_simd.h) that also checks that the text is ASCII: returns false, with *runs untouched, iff
// some byte is >= 0x80. Each position array has at least 32 readable entries past the count.
// REQUIRES: text.size() < 2^32 - 1.
bool AsciiWordRuns(std::string_view text, AnalyzerScratch* scratch, AsciiRuns* runs);

// AsciiWordRuns for the bytes of `set` instead of \w (a custom token pattern's runs of one set,
// TokenPattern::ascii_run_set), the runs shorter than min_length left out when min_length > 2
// (those of 1 byte stay for min_length 2, as AsciiWordRuns's do): false, *runs untouched, iff some
// byte is >= 0x80. REQUIRES: text.size() < 2^32 - 1.
bool AsciiSetRuns(std::string_view text, const AsciiByteSet& set, size_t min_length,
                  AnalyzerScratch* scratch, AsciiRuns* runs);

// The word runs of any valid UTF-8 `doc`, as AsciiRuns describes them: the maximal runs of code
// points the default token pattern counts as \w (ASCII bytes by table, others by their
// General_Category), as byte positions, without the runs of a single code point of 2 to 4 bytes
// (so a run of 2 bytes or more is a token). ASCII text takes AsciiWordRuns's pass; other text a
// second pass that decodes only the code points >= 0x80. False (*runs untouched) iff doc.size()
// >= 2^32 - 1. REQUIRES: ValidateUtf8(doc).ok().
bool WordRuns(std::string_view doc, AnalyzerScratch* scratch, AsciiRuns* runs);

// Python's str.lower() of `text` and the WordRuns of the result in one pass over the code points
// >= 0x80 (each validated, lowercased by a table of the BMP's one-to-one mappings or, beyond the
// BMP, by ICU's simple mapping, and classified):
// for the default word analyzer with lowercase and no strip_accents, whose preprocessing is then
// exactly this. From a code point that does not lowercase in place (a change of length: the
// Kelvin sign, U+023A) on, the rest is lowercased into a copy and the whole split by WordRuns.
// kDone: scratch->preprocessed holds the lowercased text and *runs its runs, but for each U+0130
// (capital I with dot, Turkish): its lowercase "i\u0307" stands there in its own 2 bytes as 'i'
// and a space, which have the same runs (U+0307 is not \w), and so the same tokens; so the
// preprocessed text is only for the runs' bytes. kIllFormed: `text` is not
// valid UTF-8. kGeneral: the text or its lowercase has 2^32 - 1 bytes or more; the caller then
// takes the separate steps (Preprocess, WordRuns). Other scratch contents are unspecified after
// any result.
enum class LowerRunsResult { kDone, kIllFormed, kGeneral };
LowerRunsResult LowerWordRuns(std::string_view text, AnalyzerScratch* scratch, AsciiRuns* runs);

// scikit-learn's analyzer: preprocess (str.lower(), then strip_accents), then word tokens (default
// token pattern), stop words and word n-grams, or character n-grams ('char': whitespace runs of 2+
// become one space; 'char_wb': per whitespace-separated word padded with one space each side).
// Terms are emitted in scikit-learn's order. Thread-safe (const); each thread needs its own
// scratch.
class Analyzer {
 public:
  explicit Analyzer(AnalyzerOptions options) : options_(std::move(options)) {}

  // Calls emit(term) for every term of `text`, in order. A term view is valid only during the
  // call. REQUIRES: ValidateUtf8(text).ok().
  void Analyze(std::string_view text, AnalyzerScratch* scratch,
               absl::FunctionRef<void(std::string_view)> emit) const;

  // The same terms in the same order, handed over in batches (one call per up to a few thousand
  // terms, so the caller's per-term loop inlines). The views are valid only during the call.
  // REQUIRES: ValidateUtf8(text).ok().
  void AnalyzeBatches(std::string_view text, AnalyzerScratch* scratch,
                      absl::FunctionRef<void(absl::Span<const std::string_view>)> emit) const;

  // The preprocessed text (lowercase, strip_accents); may point into `scratch` or at `text`.
  std::string_view Preprocess(std::string_view text, AnalyzerScratch* scratch) const;

  // char_wb in two steps, for callers that reuse the work per word: CharWbWords hands over the
  // words of doc.split() of the preprocessed text, each padded with one space each side (in
  // batches; views valid during the call), and CharWbGrams appends a padded word's n-grams (views
  // into it) to *out (scikit-learn's _char_wb_ngrams). Together they give Analyze's terms.
  // REQUIRES: ValidateUtf8(text).ok().
  void CharWbWords(std::string_view text, AnalyzerScratch* scratch,
                   absl::FunctionRef<void(absl::Span<const std::string_view>)> emit) const;
  void CharWbGrams(std::string_view padded_word, std::vector<uint32_t>* offsets,
                   std::vector<std::string_view>* out) const;

  const AnalyzerOptions& options() const { return options_; }

  // True iff preprocessing is only lowercasing (no strip_accents): Preprocess is then PythonLower.
  bool PreprocessIsLowercase() const {
    return options_.lowercase && options_.strip_accents == StripAccentsMode::kNone;
  }

  // True iff the terms are the tokens of TermRuns / AsciiTermRuns (their runs of MinTermBytes()
  // bytes or more), lowercased when options().lowercase: the word analyzer with the default token
  // pattern or a custom pattern on the run path, no stop words and only unigrams. Callers can then
  // take the terms from those runs.
  bool AsciiUnigrams() const { return UnigramsBeforeStopWords() && options_.stop_words.empty(); }
  // The same but for stop words: the terms are those tokens less the stop words. A caller that
  // needs no stop word (a vocabulary without one, where a stop word's lookup finds nothing; a fit
  // that drops them with the pruned terms) can take the same runs.
  bool UnigramsBeforeStopWords() const {
    return TokensAreRuns() && options_.ngram_min == 1 && options_.ngram_max == 1;
  }
  // True iff the terms are the word n-grams (n from ngram_min to ngram_max >= 2) of the tokens of
  // TermRuns / AsciiTermRuns (their runs of MinTermBytes() bytes or more, less the stop words),
  // lowercased when options().lowercase: UnigramsBeforeStopWords's analyzer with n-grams. An
  // n-gram is its n tokens joined by one space (scikit-learn's _word_ngrams).
  bool RunNgrams() const { return TokensAreRuns() && options_.ngram_max >= 2; }
  // True iff the word tokens are the term runs (TermRuns / AsciiTermRuns, their runs of
  // MinTermBytes() bytes or more): the word analyzer with the default token pattern or a custom
  // pattern on the run path.
  bool TokensAreRuns() const {
    return options_.kind == AnalyzerKind::kWord &&
           (options_.token_pattern == nullptr || options_.token_pattern->run_min_length() >= 1);
  }
  // The fewest bytes of a term among the runs of TermRuns / AsciiTermRuns: 2 for the default
  // pattern (\w\w+) and run patterns of at least 2 code points, whose runs of one code point of
  // 2 to 4 bytes are left out of the runs, so that only 1-byte runs are no tokens; 1 for a run
  // pattern whose tokens may be one code point (\w+, \S+, (?u)\b\w+\b), every run of which is
  // a token.
  size_t MinTermBytes() const {
    return options_.token_pattern != nullptr && options_.token_pattern->run_min_length() == 1 ? 1
                                                                                              : 2;
  }
  // For UnigramsBeforeStopWords(): the runs of ASCII `text` as it is (the pattern judged on its
  // lowercase when options().lowercase), whose tokens of 2 bytes or more, lowercased as the
  // options say, are the terms; false (*runs untouched) when the text is not ASCII or has 2^32 - 1
  // bytes or more (2^31 or more with a custom pattern). The default pattern's runs are
  // AsciiWordRuns's.
  bool AsciiTermRuns(std::string_view text, AnalyzerScratch* scratch, AsciiRuns* runs) const;
  // The same for a preprocessed `doc` (any valid UTF-8; false only for 2^32 - 1 bytes or more, 2^31
  // or more with a custom pattern):
  // its tokens of 2 bytes or more are the terms as they are. The default pattern's runs are
  // WordRuns's.
  bool TermRuns(std::string_view doc, AnalyzerScratch* scratch, AsciiRuns* runs) const;
  // Whether LowerWordRuns lowercases a text and gives its term runs in one pass: preprocessing
  // only lowercases and the pattern is the default one.
  bool LowerTermRunsApply() const {
    return PreprocessIsLowercase() && options_.token_pattern == nullptr;
  }
  // The term runs of a text not yet decoded, when they come with the proof that it is
  // well-formed: ASCII `text` (AsciiTermRuns: *doc = text, *lower = options().lowercase), or
  // text that LowerWordRuns validates, lowercases and splits (LowerTermRunsApply: *doc =
  // scratch->preprocessed, *lower = false). The terms are then the runs' tokens of 2 bytes or
  // more over *doc, lowercased when *lower. False otherwise: the caller decodes, preprocesses and
  // takes TermRuns.
  bool WellFormedTermRuns(std::string_view text, AnalyzerScratch* scratch, AsciiRuns* runs,
                          std::string_view* doc, bool* lower) const;
  // WellFormedTermRuns, else the runs of the preprocessed text (TermRuns of Preprocess(text),
  // *lower = false): the term runs of any valid text. False only for a text too long for runs
  // (2^32 - 1 bytes or more). REQUIRES: ValidateUtf8(text).ok().
  bool TextTermRuns(std::string_view text, AnalyzerScratch* scratch, AsciiRuns* runs,
                    std::string_view* doc, bool* lower) const;

 private:
  using BatchEmit = absl::FunctionRef<void(absl::Span<const std::string_view>)>;
  // The custom run pattern's tokens of `doc` as runs (TokenPattern::FindRunBounds); false for
  // 2^31 bytes or more.
  bool PatternRuns(std::string_view doc, bool lower_ascii, AnalyzerScratch* scratch,
                   AsciiRuns* runs) const;
  // The word tokens of the preprocessed `doc` into scratch->tokens (views into doc), stop words
  // removed: the default token pattern r"(?u)\b\w\w+\b" (ASCII bytes by table, other code points
  // by their General_Category). A custom token_pattern produces its tokens here instead.
  void WordTokens(std::string_view doc, AnalyzerScratch* scratch) const;
  void WordTerms(std::string_view doc, AnalyzerScratch* scratch, BatchEmit emit) const;
  void CharTerms(std::string_view doc, AnalyzerScratch* scratch, BatchEmit emit) const;
  void CharWbTerms(std::string_view doc, AnalyzerScratch* scratch, BatchEmit emit) const;
  void CharWbPaddedWords(std::string_view doc, AnalyzerScratch* scratch, BatchEmit emit) const;

  AnalyzerOptions options_;
};

// The char_wb n-gram ids of each padded word of `text` (Analyzer::CharWbWords, CharWbGrams) through
// the scratch's word memo, owned by `tag` (AnalyzerScratch::WordMemo): a word seen before costs one
// lookup and then its stored ids; a new one is analysed, id_of(gram) (an id, or
// TermTable::kNotFound: skipped) called on its n-grams in order, and its ids stored while the memo
// has room (else held in scratch->word_ids). emit(ids, n) takes each word's ids, in text order.
// The count and hashing vectorizers' char_wb.
template <typename IdOf, typename Emit>
void ForEachCharWbWordIds(const Analyzer& analyzer, std::string_view text, uint64_t tag,
                          AnalyzerScratch* scratch, IdOf id_of, Emit emit) {
  AnalyzerScratch::WordMemo& memo = scratch->word_memo;
  memo.Own(tag);
  analyzer.CharWbWords(text, scratch, [&](absl::Span<const std::string_view> words) {
    for (const std::string_view w : words) {
      const uint32_t entry = memo.words.Find(w);
      if (entry != TermTable::kNotFound) {
        emit(memo.ids.data() + memo.begin[entry], memo.begin[entry + 1] - memo.begin[entry]);
        continue;
      }
      std::vector<std::string_view>& grams = scratch->terms;
      grams.clear();
      analyzer.CharWbGrams(w, &scratch->offsets, &grams);
      const bool store = memo.Room(grams.size());
      std::vector<uint32_t>& ids = store ? memo.ids : scratch->word_ids;
      if (!store) ids.clear();
      const size_t first = ids.size();
      for (const std::string_view gram : grams) {
        const uint32_t id = id_of(gram);
        if (id != TermTable::kNotFound) ids.push_back(id);
      }
      if (store) {
        memo.words.Insert(w);
        memo.begin.push_back(static_cast<uint32_t>(ids.size()));
      }
      emit(ids.data() + first, ids.size() - first);
    }
  });
}

// unicodedata.normalize("NFKD", s) then, for kAscii, every non-ASCII code point dropped, or for
// kUnicode (only when s is not pure ASCII) every code point with a non-zero canonical combining
// class dropped (scikit-learn's strip_accents_ascii / strip_accents_unicode), with Python 3.11's
// Unicode 14.0: an AssignedAfterUnicode14 code point is left as it is (no decomposition, class 0,
// no reordering across it), as Python 3.11 leaves an unassigned one. REQUIRES: valid UTF-8.
// Code point by code point (a table of the BMP's results, built on first use): the same as
// normalising the whole text, since the modes drop every code point that NFKD's reordering moves.
std::string StripAccents(std::string_view text, StripAccentsMode mode);
// StripAccents into *out (its capacity reused). REQUIRES: out does not alias text.
void StripAccentsInto(std::string_view text, StripAccentsMode mode, std::string* out);
// StripAccents by its definition: the whole text normalised by ICU's NFKD (filtered to Unicode
// 14.0 when the text may hold a later code point), then filtered. Slower; tests compare.
std::string StripAccentsWholeText(std::string_view text, StripAccentsMode mode);

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_TEXT_ANALYSIS_H_
