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
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace maas::discriminative {

// OK iff `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF), i.e. exactly what Python's bytes.decode("utf-8", "strict") accepts. Otherwise
// INVALID_ARGUMENT naming the byte offset of the first ill-formed sequence.
absl::Status ValidateUtf8(std::string_view text);

// Python 3 str.lower(): full Unicode lowercase mapping (SpecialCasing unconditional mappings, e.g.
// U+0130 -> "i\u0307") plus the Final_Sigma rule for U+03A3; no language-specific rules.
// Implemented with ICU's root-locale u_strToLower. REQUIRES: ValidateUtf8(text).ok().
std::string PythonLower(std::string_view text);

// True iff Python 3.11 `re` matches `\w` on code point `c` in a str pattern (c.isalnum() or c ==
// '_'): General_Category in {Lu, Ll, Lt, Lm, Lo, Nd, Nl, No}, or U+005F. Out-of-range values are
// false.
bool IsWordCodePoint(int32_t c);

// The default token_pattern r"(?u)\b\w\w+\b" as re.findall: maximal runs of word code points that
// are at least 2 code points long, left to right. REQUIRES: ValidateUtf8(text).ok().
std::vector<std::string> DefaultTokenize(std::string_view text);

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

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_TEXT_ANALYSIS_H_
