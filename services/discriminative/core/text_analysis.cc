#include "services/discriminative/core/text_analysis.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "services/discriminative/core/count_simd.h"
#include "services/discriminative/core/utf8_simd.h"
#include "unicode/normalizer2.h"
#include "unicode/uchar.h"
#include "unicode/uniset.h"
#include "unicode/unistr.h"
#include "unicode/utf16.h"
#include "unicode/utf8.h"

namespace maas::discriminative {
namespace {

// The code points WordTable classifies: planes 0 to 3, where Unicode assigns every \w code point
// (the planes above hold only format characters, variation selectors and private use).
constexpr int32_t kWordTableEnd = 0x40000;

// DecodeOne's sequences other than one ASCII byte or a well-formed two-byte one (out of line).
int32_t DecodeLonger(std::string_view text, size_t* i) {
  const size_t n = text.size();
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(*i);
  int len;
  int32_t cp;
  unsigned char lo = 0x80, hi = 0xBF;  // Allowed range of the second byte.
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // No overlongs.
    if (b0 == 0xED) hi = 0x9F;  // No surrogates.
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;  // No overlongs.
    if (b0 == 0xF4) hi = 0x8F;  // Nothing above U+10FFFF.
  } else {
    return -1;
  }
  if (*i + len > n) return -1;
  for (int k = 1; k < len; ++k) {
    const unsigned char b = byte(*i + k);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return -1;
    cp = (cp << 6) | (b & 0x3F);
  }
  *i += len;
  return cp;
}

// Decodes one code point of well-formed UTF-8 starting at text[*i], advancing *i; -1 if ill-formed.
// Accepts exactly the well-formed sequences of Unicode Table 3-7. ASCII and two-byte sequences
// (Latin, Greek, Cyrillic, ...), the common cases, inline.
inline int32_t DecodeOne(std::string_view text, size_t* i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(*i);
  if (b0 < 0x80) {
    ++*i;
    return b0;
  }
  if (b0 >= 0xC2 && b0 <= 0xDF && *i + 1 < text.size() && (byte(*i + 1) & 0xC0) == 0x80) {
    const int32_t cp = (b0 & 0x1F) << 6 | (byte(*i + 1) & 0x3F);
    *i += 2;
    return cp;
  }
  return DecodeLonger(text, i);
}

// The length of the UTF-8 sequence a well-formed one starting with byte b0 has (1 for ASCII).
inline uint32_t Utf8SequenceLength(unsigned char b0) {
  return b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
}

void AppendUtf8(int32_t c, std::string* out) {
  char buf[U8_MAX_LENGTH];
  int32_t len = 0;
  U8_APPEND_UNSAFE(buf, len, c);
  out->append(buf, len);
}

// scikit-learn's ENGLISH_STOP_WORDS, sorted by code point.
constexpr std::array<std::string_view, 318> kEnglishStopWords = {
    "a",          "about",      "above",      "across",       "after",      "afterwards",
    "again",      "against",    "all",        "almost",       "alone",      "along",
    "already",    "also",       "although",   "always",       "am",         "among",
    "amongst",    "amoungst",   "amount",     "an",           "and",        "another",
    "any",        "anyhow",     "anyone",     "anything",     "anyway",     "anywhere",
    "are",        "around",     "as",         "at",           "back",       "be",
    "became",     "because",    "become",     "becomes",      "becoming",   "been",
    "before",     "beforehand", "behind",     "being",        "below",      "beside",
    "besides",    "between",    "beyond",     "bill",         "both",       "bottom",
    "but",        "by",         "call",       "can",          "cannot",     "cant",
    "co",         "con",        "could",      "couldnt",      "cry",        "de",
    "describe",   "detail",     "do",         "done",         "down",       "due",
    "during",     "each",       "eg",         "eight",        "either",     "eleven",
    "else",       "elsewhere",  "empty",      "enough",       "etc",        "even",
    "ever",       "every",      "everyone",   "everything",   "everywhere", "except",
    "few",        "fifteen",    "fifty",      "fill",         "find",       "fire",
    "first",      "five",       "for",        "former",       "formerly",   "forty",
    "found",      "four",       "from",       "front",        "full",       "further",
    "get",        "give",       "go",         "had",          "has",        "hasnt",
    "have",       "he",         "hence",      "her",          "here",       "hereafter",
    "hereby",     "herein",     "hereupon",   "hers",         "herself",    "him",
    "himself",    "his",        "how",        "however",      "hundred",    "i",
    "ie",         "if",         "in",         "inc",          "indeed",     "interest",
    "into",       "is",         "it",         "its",          "itself",     "keep",
    "last",       "latter",     "latterly",   "least",        "less",       "ltd",
    "made",       "many",       "may",        "me",           "meanwhile",  "might",
    "mill",       "mine",       "more",       "moreover",     "most",       "mostly",
    "move",       "much",       "must",       "my",           "myself",     "name",
    "namely",     "neither",    "never",      "nevertheless", "next",       "nine",
    "no",         "nobody",     "none",       "noone",        "nor",        "not",
    "nothing",    "now",        "nowhere",    "of",           "off",        "often",
    "on",         "once",       "one",        "only",         "onto",       "or",
    "other",      "others",     "otherwise",  "our",          "ours",       "ourselves",
    "out",        "over",       "own",        "part",         "per",        "perhaps",
    "please",     "put",        "rather",     "re",           "same",       "see",
    "seem",       "seemed",     "seeming",    "seems",        "serious",    "several",
    "she",        "should",     "show",       "side",         "since",      "sincere",
    "six",        "sixty",      "so",         "some",         "somehow",    "someone",
    "something",  "sometime",   "sometimes",  "somewhere",    "still",      "such",
    "system",     "take",       "ten",        "than",         "that",       "the",
    "their",      "them",       "themselves", "then",         "thence",     "there",
    "thereafter", "thereby",    "therefore",  "therein",      "thereupon",  "these",
    "they",       "thick",      "thin",       "third",        "this",       "those",
    "though",     "three",      "through",    "throughout",   "thru",       "thus",
    "to",         "together",   "too",        "top",          "toward",     "towards",
    "twelve",     "twenty",     "two",        "un",           "under",      "until",
    "up",         "upon",       "us",         "very",         "via",        "was",
    "we",         "well",       "were",       "what",         "whatever",   "when",
    "whence",     "whenever",   "where",      "whereafter",   "whereas",    "whereby",
    "wherein",    "whereupon",  "wherever",   "whether",      "which",      "while",
    "whither",    "who",        "whoever",    "whole",        "whom",       "whose",
    "why",        "will",       "with",       "within",       "without",    "would",
    "yet",        "you",        "your",       "yours",        "yourself",   "yourselves",
};

// Python's \w on ASCII bytes: [A-Za-z0-9_].
constexpr std::array<bool, 128> MakeAsciiWordTable() {
  std::array<bool, 128> t{};
  for (int c = 0; c < 128; ++c) {
    t[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }
  return t;
}
constexpr std::array<bool, 128> kAsciiWord = MakeAsciiWordTable();

constexpr uint64_t kHighBits = 0x8080808080808080ull;

uint64_t Load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "Load64's byte k is bits 8k..8k+7");

// Index of the first byte >= 0x80 at or after `i`, or text.size() (8 bytes at a time).
size_t SkipAscii(std::string_view text, size_t i) {
  const size_t n = text.size();
  for (; i + 8 <= n; i += 8) {
    const uint64_t high = Load64(text.data() + i) & kHighBits;
    if (high != 0) return i + static_cast<size_t>(__builtin_ctzll(high) >> 3);
  }
  while (i < n && static_cast<unsigned char>(text[i]) < 0x80) ++i;
  return i;
}

bool IsAscii(std::string_view text) { return SkipAscii(text, 0) == text.size(); }

// ASCII A-Z -> a-z in any 8 bytes, bytes >= 0x80 unchanged (SWAR: of the low 7 bits y of each
// byte, the high bit of y + (0x80 - 'A') is set iff y >= 'A', of y + (0x7F - 'Z') iff y > 'Z'; no
// byte carries into the next, and the bytes >= 0x80 are masked out).
uint64_t LowerAscii8(uint64_t x) {
  const uint64_t y = x & ~kHighBits;
  const uint64_t ge_a = y + 0x3F3F3F3F3F3F3F3Full;
  const uint64_t gt_z = y + 0x2525252525252525ull;
  return x | ((ge_a & ~gt_z & ~x & kHighBits) >> 2);
}

// Python's str.isspace() on ASCII bytes (the code points below 0x80 that split() splits on).
constexpr std::array<bool, 128> MakeAsciiSpaceTable() {
  std::array<bool, 128> t{};
  for (int c = 0; c < 128; ++c) t[c] = (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
  return t;
}
constexpr std::array<bool, 128> kAsciiSpace = MakeAsciiSpaceTable();

// Terms per AnalyzeBatches call (bounds the scratch memory of long texts).
constexpr size_t kTermBatch = 4096;

// Length of the maximal ill-formed subpart starting at text[i] (>= 1), as CPython counts it.
size_t IllFormedLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  int len;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 1;
  }
  size_t k = 1;
  while (k < static_cast<size_t>(len) && i + k < text.size()) {
    const unsigned char b = byte(i + k);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) break;
    ++k;
  }
  return k;
}

// Population count without the POPCNT instruction (not in baseline x86-64).
inline size_t PopCount64(uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ull);
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
  return static_cast<size_t>((x * 0x0101010101010101ull) >> 56);
}

// How far past its count FlattenBits may write.
constexpr size_t kFlattenSlack = 8;
// The room AsciiWordRuns leaves past the runs in each of its position arrays: FlattenBits's, and
// CompressBitsAvx512's 32, on every path, so that readers may load 8 entries past the count.
constexpr size_t kRunsSlack = 32;

// Writes base + the index of each set bit of `bits`, ascending, to out[0 .. popcount) and returns
// the popcount; may also write out[popcount .. popcount + kFlattenSlack) (callers leave that
// room). In fixed steps of 8 rather than one loop turn per bit: the count varies from one 64-byte
// word of text to the next, and a loop exit per word would be a mispredicted branch.
inline size_t FlattenBits(uint64_t bits, uint32_t base, uint32_t* out) {
  const size_t count = PopCount64(bits);
  size_t i = 0;
  do {
    for (size_t k = 0; k < 8; ++k) {
      // The top bit keeps ctz defined once bits is 0 (those entries are past the count).
      out[i + k] = base + static_cast<uint32_t>(__builtin_ctzll(bits | uint64_t{1} << 63));
      bits &= bits - 1;
    }
    i += 8;
  } while (i < count);
  return count;
}

// masks bit i (of word i / 64) = 1 iff text[i] is an ASCII \w byte [0-9A-Za-z_], and, when
// `high` is not null, high bit i = 1 iff text[i] >= 0x80; bits past the end 0, in n / 64 + 1 words
// (so bit n, where a run reaching the end ends, always exists). Returns whether every byte is
// < 0x80 (without `high`, masks are then undefined if not): one pass both checks and classifies.
bool AsciiWordMask(std::string_view text, std::vector<uint64_t>* masks,
                   std::vector<uint64_t>* high = nullptr) {
  const size_t n = text.size();
  masks->assign(n / 64 + 1, 0);
  const bool whole = high != nullptr;  // classify the whole text, whatever its bytes
  uint64_t* out = masks->data();
  uint64_t* high_out = nullptr;
  if (high != nullptr) {
    high->assign(n / 64 + 1, 0);
    high_out = high->data();
  }
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i digit_lo = _mm_set1_epi8('0' - 1), digit_hi = _mm_set1_epi8('9' + 1);
  const __m128i alpha_lo = _mm_set1_epi8('a' - 1), alpha_hi = _mm_set1_epi8('z' + 1);
  const __m128i case_bit = _mm_set1_epi8(0x20), underscore = _mm_set1_epi8('_');
  __m128i any_high = _mm_setzero_si128();  // the OR of every byte: bit 7 set iff some byte >= 0x80
  // The word bytes of 16 bytes at p as 16 bits, and their bytes >= 0x80 in *high_bits.
  const auto word_bits = [&](const char* p, uint64_t* high_bits) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    any_high = _mm_or_si128(any_high, v);
    *high_bits = static_cast<uint32_t>(_mm_movemask_epi8(v));
    // Bytes >= 0x80 compare as negative, so they are never \w here.
    const __m128i folded = _mm_or_si128(v, case_bit);  // A-Z -> a-z
    const __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, digit_lo), _mm_cmplt_epi8(v, digit_hi));
    const __m128i alpha =
        _mm_and_si128(_mm_cmpgt_epi8(folded, alpha_lo), _mm_cmplt_epi8(folded, alpha_hi));
    const __m128i word = _mm_or_si128(_mm_or_si128(digit, alpha), _mm_cmpeq_epi8(v, underscore));
    return static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(word)));
  };
  // 64 bytes per step, each mask word written once (not read back and or-ed per 16 bytes).
  for (; i + 64 <= n; i += 64) {
    const char* p = text.data() + i;
    uint64_t h0, h1, h2, h3;
    out[i >> 6] |= word_bits(p, &h0) | word_bits(p + 16, &h1) << 16 | word_bits(p + 32, &h2) << 32 |
                   word_bits(p + 48, &h3) << 48;
    if (high_out != nullptr) high_out[i >> 6] = h0 | h1 << 16 | h2 << 32 | h3 << 48;
  }
  for (; i + 16 <= n; i += 16) {
    uint64_t h;
    out[i >> 6] |= word_bits(text.data() + i, &h) << (i & 63);
    if (high_out != nullptr) high_out[i >> 6] |= h << (i & 63);
  }
  bool ascii = _mm_movemask_epi8(any_high) == 0;
  if (!ascii && !whole) return false;
#else
  bool ascii = true;
#endif
  for (; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      if (!whole) return false;
      if (high_out != nullptr) high_out[i >> 6] |= uint64_t{1} << (i & 63);
      ascii = false;
    } else if (kAsciiWord[c]) {
      out[i >> 6] |= uint64_t{1} << (i & 63);
    }
  }
  return ascii;
}

// Writes `text` with ASCII A-Z lowercased (other bytes copied), 8 bytes at a time, to *out from
// byte `at` on. REQUIRES: out->size() >= at + text.size().
void WriteLowerAscii(std::string_view text, std::string* out, size_t at) {
  const size_t n = text.size();
  char* dest = out->data() + at;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint64_t lower = LowerAscii8(Load64(text.data() + i));
    std::memcpy(dest + i, &lower, sizeof(lower));
  }
  for (; i < n; ++i) {
    const char c = text[i];
    dest[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  }
}

// Python 3.11's simple lowercase mapping of code point c: ICU's, but a code point assigned after
// Unicode 14.0 is its own (AssignedAfterUnicode14).
inline UChar32 PythonSimpleLower(UChar32 c) {
  const UChar32 lower = u_tolower(c);
  return lower == c || AssignedAfterUnicode14(c) ? c : lower;
}

// Whether code point c (negative: an ill-formed sequence) has the Unicode property in Python
// 3.11's Unicode 14.0 (never for AssignedAfterUnicode14: unassigned there).
bool HasProperty(UChar32 c, UProperty property) {
  return c >= 0 && u_hasBinaryProperty(c, property) && !AssignedAfterUnicode14(c);
}

// Whether the U+03A3 (capital sigma) at text[i] lowercases to final sigma (U+03C2), as Python's
// str.lower (and ICU's full mapping) decides it: a cased code point precedes it and none follows,
// each across any case-ignorable ones (Unicode 14.0's properties: HasProperty). An ill-formed
// sequence ends a scan (the callers refuse such text anyway).
bool IsFinalSigma(std::string_view text, size_t i) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const auto n = static_cast<int32_t>(text.size());
  bool final_sigma = false;
  for (auto j = static_cast<int32_t>(i); j > 0;) {
    UChar32 c;
    U8_PREV(s, 0, j, c);
    if (HasProperty(c, UCHAR_CASE_IGNORABLE)) continue;
    final_sigma = HasProperty(c, UCHAR_CASED);
    break;
  }
  for (auto j = static_cast<int32_t>(i) + 2; final_sigma && j < n;) {
    UChar32 c;
    U8_NEXT(s, j, n, c);
    if (HasProperty(c, UCHAR_CASE_IGNORABLE)) continue;
    final_sigma = !HasProperty(c, UCHAR_CASED);
    break;
  }
  return final_sigma;
}

// Python's str.lower() of each BMP code point c whose full lowercase mapping is one BMP code point
// and needs no context: table[c] (c itself when unchanged); 0 for the others (U+0130, whose
// mapping is two code points, U+03A3, whose mapping depends on its context (Final_Sigma), and the
// surrogates). In the root locale these are the only code points whose full mapping differs from
// the simple one (PythonSimpleLower). Computed once, then read-only.
const std::vector<char16_t>& SimpleLowerBmp() {
  static const std::vector<char16_t>* const table = [] {
    auto* t = new std::vector<char16_t>(0x10000, 0);
    for (UChar32 c = 0; c < 0x10000; ++c) {
      if (U_IS_SURROGATE(c) || c == 0x0130 || c == 0x03A3) continue;
      const UChar32 lower = PythonSimpleLower(c);
      if (lower < 0x10000 && !U_IS_SURROGATE(lower)) (*t)[c] = static_cast<char16_t>(lower);
    }
    return t;
  }();
  return *table;
}

// Writes Python 3.11's str.lower() of code point c, the one at text[start] (valid UTF-8), at d
// and returns its bytes (1 to 4): the full lowercase mapping of the root locale, which is the
// simple one (PythonSimpleLower, by SimpleLowerBmp's table `simple` in the BMP) but for U+0130
// (-> "i\u0307") and U+03A3 (final sigma by its context in the whole `text`: IsFinalSigma).
size_t WritePythonLower(std::string_view text, size_t start, int32_t c, const char16_t* simple,
                        char* d) {
  if (c == 0x130) {
    std::memcpy(d, "i\xCC\x87", 3);  // U+0069 U+0307
    return 3;
  }
  if (c == 0x3A3) {
    std::memcpy(d, IsFinalSigma(text, start) ? "\xCF\x82" : "\xCF\x83", 2);  // U+03C2 / U+03C3
    return 2;
  }
  const char16_t lower = c < 0x10000 ? simple[c] : 0;
  int32_t written = 0;
  U8_APPEND_UNSAFE(d, written, lower != 0 ? lower : PythonSimpleLower(c));
  return static_cast<size_t>(written);
}

// Appends Python 3.11's str.lower() of text[begin, end) (valid UTF-8) to *out, code point by code
// point (WritePythonLower).
void AppendPythonLower(std::string_view text, size_t begin, size_t end, std::string* out) {
  const char16_t* simple = SimpleLowerBmp().data();
  size_t i = begin;
  while (i < end) {
    const size_t start = i;
    const int32_t c = DecodeOne(text, &i);
    if (c < 0) break;  // Unreachable for validated input.
    if (c < 0x80) {
      out->push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
    } else {
      char lowered[U8_MAX_LENGTH];
      out->append(lowered, WritePythonLower(text, start, c, simple, lowered));
    }
  }
}

// The UTF-8 bytes of BMP code point c (not a surrogate): 1 to 3.
inline size_t Utf8Length(char16_t c) { return c < 0x80 ? 1 : c < 0x800 ? 2 : 3; }

// Writes BMP code point c (not a surrogate) at d as UTF-8; returns Utf8Length(c).
inline size_t EncodeBmp(char16_t c, char* d) {
  if (c < 0x80) {
    d[0] = static_cast<char>(c);
    return 1;
  }
  if (c < 0x800) {
    d[0] = static_cast<char>(0xC0 | c >> 6);
    d[1] = static_cast<char>(0x80 | (c & 0x3F));
    return 2;
  }
  d[0] = static_cast<char>(0xE0 | c >> 12);
  d[1] = static_cast<char>(0x80 | (c >> 6 & 0x3F));
  d[2] = static_cast<char>(0x80 | (c & 0x3F));
  return 3;
}

// The code point of the well-formed UTF-8 sequence of 2 to 4 bytes at p; its length in *length.
inline int32_t DecodeWellFormed(const char* p, size_t* length) {
  const auto byte = [&](int k) { return static_cast<int32_t>(static_cast<unsigned char>(p[k])); };
  const int32_t b0 = byte(0);
  if (b0 < 0xE0) {
    *length = 2;
    return (b0 & 0x1F) << 6 | (byte(1) & 0x3F);
  }
  if (b0 < 0xF0) {
    *length = 3;
    return (b0 & 0x0F) << 12 | (byte(1) & 0x3F) << 6 | (byte(2) & 0x3F);
  }
  *length = 4;
  return (b0 & 0x07) << 18 | (byte(1) & 0x3F) << 12 | (byte(2) & 0x3F) << 6 | (byte(3) & 0x3F);
}

// Sets the bits [begin, end) of `bits`, a range of at most 4 (one code point's bytes).
inline void MarkBytes(size_t begin, size_t end, uint64_t* bits) {
  const size_t shift = begin & 63;
  const uint64_t ones = (uint64_t{1} << (end - begin)) - 1;
  bits[begin >> 6] |= ones << shift;
  if (shift + (end - begin) > 64) bits[(begin >> 6) + 1] |= ones >> (64 - shift);
}

// The high bits of `h` (word w of a text's bytes >= 0x80) from byte `from` on: the bits of a
// code point's continuation bytes, up to `from`, dropped.
inline uint64_t HighBitsFrom(uint64_t h, size_t w, size_t from) {
  const size_t base = w * 64;
  if (from <= base) return h;
  return from - base >= 64 ? 0 : h & (~uint64_t{0} << (from - base));
}

// The lowercasing step for the code point >= 0x80 at text[i]: validated and decoded, replaced in
// doc (a copy of text) by its table lowercase when that takes as many bytes, and, when `word` is
// not null, its bytes marked there when that lowercase is \w (word_table: WordTable). kDone with
// *end = the code point's end, or why not (kGeneral: no same-length one-to-one mapping).
inline LowerRunsResult LowerCodePoint(std::string_view text, size_t i, const char16_t* simple,
                                      const uint64_t* word_table, char* doc, uint64_t* word,
                                      size_t* end) {
  const size_t start = i;
  const int32_t c = DecodeOne(text, &i);
  if (c < 0) return LowerRunsResult::kIllFormed;
  if (c >= 0x10000) {
    // Beyond the BMP (emoji, Deseret, Adlam, ...) the full mapping is the simple one (SpecialCasing
    // lists none of these code points), and a cased one maps to one of 4 bytes as well.
    const UChar32 lower = PythonSimpleLower(c);
    if (lower < 0x10000) return LowerRunsResult::kGeneral;
    int32_t written = 0;
    U8_APPEND_UNSAFE(doc + start, written, lower);
    if (word != nullptr &&
        (lower < kWordTableEnd ? (word_table[lower >> 6] >> (lower & 63) & 1) != 0
                               : IsWordCodePoint(lower))) {
      MarkBytes(start, i, word);
    }
    *end = i;
    return LowerRunsResult::kDone;
  }
  const char16_t lower = simple[c];
  if (lower == 0 || Utf8Length(lower) != i - start) return LowerRunsResult::kGeneral;
  EncodeBmp(lower, doc + start);
  if (word != nullptr && (word_table[lower >> 6] >> (lower & 63) & 1) != 0) {
    MarkBytes(start, i, word);
  }
  *end = i;
  return LowerRunsResult::kDone;
}

// Byte offsets of the code point boundaries of valid UTF-8 `text` (size = code points + 1).
void CodePointOffsets(std::string_view text, std::vector<uint32_t>* offsets) {
  offsets->clear();
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      offsets->push_back(static_cast<uint32_t>(i));
    }
  }
  offsets->push_back(static_cast<uint32_t>(text.size()));
}

}  // namespace

namespace {

// Drops the runs of a single code point of 2 to 4 bytes from a text's \w bits, one 64-bit word at
// a time in order, before its runs are listed (\w\w+ needs two code points; a 1-byte run stays:
// AsciiRuns keeps those and readers skip them). A run beginning with a lead byte of L bytes is one
// code point when the byte L past its start is no \w byte; its L bits are cleared, those past bit
// 63 in the next word.
class LoneCodePointDrop {
 public:
  // The first bits of the runs of word `raw` that begin with a byte >= 0x80 (`high`).
  uint64_t Begins(uint64_t raw, uint64_t high) const {
    return raw & ~(raw << 1 | raw_carry_) & high;
  }
  // `raw` without its lone code points: `next` is the next word's \w bits (0 past the last),
  // `begins` = Begins(raw, ...), `lead3` / `lead4` the bits of the bytes >= 0xE0 / >= 0xF0 (only
  // those in `begins` are read).
  uint64_t Drop(uint64_t raw, uint64_t next, uint64_t begins, uint64_t lead3, uint64_t lead4) {
    raw_carry_ = raw >> 63;
    const uint64_t one2 = begins & ~lead3 & ~(raw >> 2 | next << 62);
    const uint64_t one3 = begins & lead3 & ~lead4 & ~(raw >> 3 | next << 61);
    const uint64_t one4 = begins & lead4 & ~(raw >> 4 | next << 60);
    const uint64_t first2 = one2 | one3 | one4, first3 = one3 | one4;
    const uint64_t clear = first2 | first2 << 1 | first3 << 2 | one4 << 3 | spill_;
    spill_ = first2 >> 63 | first3 >> 62 | one4 >> 61;
    return raw & ~clear;
  }

 private:
  uint64_t raw_carry_ = 0;  // the top bit of the previous word
  uint64_t spill_ = 0;      // this word's bits of code points begun in the previous one
};

// LoneCodePointDrop over scratch->masks in place, the lead bytes' lengths read one by one.
void DropLoneCodePoints(std::string_view doc, AnalyzerScratch* scratch) {
  std::vector<uint64_t>& masks = scratch->masks;
  const std::vector<uint64_t>& high = scratch->high_masks;
  LoneCodePointDrop drop;
  for (size_t w = 0; w < masks.size(); ++w) {
    const uint64_t raw = masks[w];
    const uint64_t begins = drop.Begins(raw, high[w]);
    uint64_t lead3 = 0, lead4 = 0;
    for (uint64_t b = begins; b != 0; b &= b - 1) {
      const auto lead = static_cast<unsigned char>(doc[w * 64 + __builtin_ctzll(b)]);
      if (lead >= 0xE0) lead3 |= b & -b;
      if (lead >= 0xF0) lead4 |= b & -b;
    }
    masks[w] = drop.Drop(raw, w + 1 < masks.size() ? masks[w + 1] : 0, begins, lead3, lead4);
  }
}

// The starts and ends arrays of the runs of an n-byte text, in scratch->bounds: an n-byte text has
// at most n / 2 + 1 runs, and every path may write kRunsSlack entries past the last; and, after
// them, room for the same runs' bounds as one sequence of transitions (the first run's start, its
// end, the next start, ...: up to n + 2 entries, and kRunsSlack to spare).
struct RunBoundsAndTransitions {
  uint32_t* starts;
  uint32_t* ends;
  uint32_t* transitions;
};
RunBoundsAndTransitions RunBoundAndTransitionArrays(size_t n, AnalyzerScratch* scratch) {
  std::vector<uint32_t>& bounds = scratch->bounds;
  const size_t room = n / 2 + 2 + kRunsSlack;
  const size_t size = 2 * room + n + 2 + kRunsSlack;
  if (bounds.size() < size) bounds.resize(size);
  return {bounds.data(), bounds.data() + room, bounds.data() + 2 * room};
}

// RunBoundAndTransitionArrays without the transitions.
std::pair<uint32_t*, uint32_t*> RunBoundArrays(size_t n, AnalyzerScratch* scratch) {
  const RunBoundsAndTransitions arrays = RunBoundAndTransitionArrays(n, scratch);
  return {arrays.starts, arrays.ends};
}

// The runs of set bits of `masks` (n / 64 + 1 words for an n-byte text) into scratch->bounds. Per
// 64 bytes, the runs' first bits (m & ~(m << 1)) and the bits just past their ends (~m & (m << 1)),
// carried across words, are written out as positions: the k-th start and the k-th end bound the
// k-th run.
void RunsFromMasks(const std::vector<uint64_t>& masks, size_t n, AnalyzerScratch* scratch,
                   AsciiRuns* runs) {
  const size_t words = masks.size();
  auto [starts, ends] = RunBoundArrays(n, scratch);
  size_t num_starts = 0, num_ends = 0;
  uint64_t carry = 0;
  for (size_t w = 0; w < words; ++w) {
    const uint64_t m = masks[w];
    const uint64_t previous = m << 1 | carry;
    carry = m >> 63;
    const auto base = static_cast<uint32_t>(w * 64);
    num_starts += FlattenBits(m & ~previous, base, starts + num_starts);
    num_ends += FlattenBits(~m & previous, base, ends + num_ends);
  }
  *runs = AsciiRuns{starts, ends, num_starts};
}

bool AsciiWordRunsBaseline(std::string_view text, AnalyzerScratch* scratch, AsciiRuns* runs) {
  // A token is a run of set bits of the word-byte mask.
  std::vector<uint64_t>& masks = scratch->masks;
  if (!AsciiWordMask(text, &masks)) return false;
  RunsFromMasks(masks, text.size(), scratch, runs);
  return true;
}

// Keeps the runs [starts[k], ends[k]) of at least min_length bytes, in order; returns their count.
size_t KeepRunsOfAtLeast(size_t min_length, size_t count, uint32_t* starts, uint32_t* ends) {
  size_t kept = 0;
  for (size_t k = 0; k < count; ++k) {
    starts[kept] = starts[k];
    ends[kept] = ends[k];
    kept += ends[k] - starts[k] >= min_length ? 1 : 0;
  }
  return kept;
}

// AsciiSetRuns on the baseline path: the set's mask byte by byte, then RunsFromMasks.
bool AsciiSetRunsBaseline(std::string_view text, const AsciiByteSet& set, AnalyzerScratch* scratch,
                          AsciiRuns* runs) {
  const size_t n = text.size();
  std::vector<uint64_t>& masks = scratch->masks;
  masks.assign(n / 64 + 1, 0);
  unsigned any = 0;  // the OR of every byte: bit 7 set iff some byte is >= 0x80
  for (size_t i = 0; i < n; ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    any |= b;
    masks[i / 64] |= uint64_t{set.Contains(b)} << (i % 64);
  }
  if (any >= 0x80) return false;
  RunsFromMasks(masks, n, scratch, runs);
  return true;
}

#if defined(__x86_64__)
// For each byte value, the indices of its set bits, ascending, padded with zeros (FlattenBitsAvx2).
struct BitIndexTable {
  uint8_t index[256][8];
  constexpr BitIndexTable() : index() {
    for (unsigned byte = 0; byte < 256; ++byte) {
      unsigned out = 0;
      for (unsigned bit = 0; bit < 8; ++bit) {
        if ((byte >> bit & 1) != 0) index[byte][out++] = static_cast<uint8_t>(bit);
      }
    }
  }
};
constexpr BitIndexTable kBitIndex;

// FlattenBits on the AVX2 path: a byte of `bits` at a time, its set bits' indices widened from a
// table into 8 positions at once (a fixed 8 steps per 64 bits, whatever the count; the run
// bounds of text hold 5-12 per 64 bytes, which the one-bit-per-step loop takes in 2 rounds of 8).
// May write out[popcount .. popcount + kFlattenSlack).
__attribute__((target("avx2,bmi,popcnt"))) inline size_t FlattenBitsAvx2(uint64_t bits,
                                                                         uint32_t base,
                                                                         uint32_t* out) {
  size_t n = 0;
  for (unsigned b = 0; b < 8; ++b) {
    const auto byte = static_cast<unsigned>(bits >> (8 * b) & 0xFF);
    const __m256i at = _mm256_add_epi32(
        _mm256_cvtepu8_epi32(
            _mm_loadl_epi64(reinterpret_cast<const __m128i*>(kBitIndex.index[byte]))),
        _mm256_set1_epi32(static_cast<int>(base + 8 * b)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + n), at);
    n += static_cast<size_t>(_mm_popcnt_u32(byte));
  }
  return n;
}

// The word bytes of the 32 bytes at p as 32 bits, or-ing the bytes into *high.
__attribute__((target("avx2,bmi,popcnt"))) inline uint64_t WordBitsAvx2(const char* p,
                                                                        __m256i* high) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  *high = _mm256_or_si256(*high, v);
  // Signed compares: bytes >= 0x80 are negative, never \w here (the text is then refused).
  const __m256i folded = _mm256_or_si256(v, _mm256_set1_epi8(0x20));  // A-Z -> a-z
  const __m256i digit = _mm256_and_si256(_mm256_cmpgt_epi8(v, _mm256_set1_epi8('0' - 1)),
                                         _mm256_cmpgt_epi8(_mm256_set1_epi8('9' + 1), v));
  const __m256i alpha = _mm256_and_si256(_mm256_cmpgt_epi8(folded, _mm256_set1_epi8('a' - 1)),
                                         _mm256_cmpgt_epi8(_mm256_set1_epi8('z' + 1), folded));
  const __m256i word =
      _mm256_or_si256(_mm256_or_si256(digit, alpha), _mm256_cmpeq_epi8(v, _mm256_set1_epi8('_')));
  return static_cast<uint32_t>(_mm256_movemask_epi8(word));
}

// The k-th start and end of `count` runs from their transitions (start, end, start, ...), 8 runs
// per step (may write up to 7 entries past count in each array, and read 14 past 2 * count).
__attribute__((target("avx2,bmi,popcnt"))) void SplitTransitionsAvx2(const uint32_t* transitions,
                                                                     size_t count, uint32_t* starts,
                                                                     uint32_t* ends) {
  const __m256i evens_first = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  for (size_t k = 0; k < count; k += 8) {
    const __m256i a = _mm256_permutevar8x32_epi32(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(transitions + 2 * k)), evens_first);
    const __m256i b = _mm256_permutevar8x32_epi32(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(transitions + 2 * k + 8)), evens_first);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(starts + k),
                        _mm256_permute2x128_si256(a, b, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ends + k),
                        _mm256_permute2x128_si256(a, b, 0x31));
  }
}

// The word bytes of 32 bytes (WordBitsAvx2): AsciiRunsAvx2's classes for AsciiWordRuns.
struct WordClassAvx2 {
  __attribute__((target("avx2,bmi,popcnt"))) uint64_t operator()(const char* p,
                                                                 __m256i* high) const {
    return WordBitsAvx2(p, high);
  }
};

// The bytes of `set` among 32 bytes at p, as 32 bits, or-ing the bytes into *high: each byte's
// row of the set by its low half, the bit of that row by its high half (two table shuffles).
struct SetClassAvx2 {
  const AsciiByteSet* set;
  __attribute__((target("avx2,bmi,popcnt"))) uint64_t operator()(const char* p,
                                                                 __m256i* high) const {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    *high = _mm256_or_si256(*high, v);
    const __m256i rows =
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(set->rows)));
    // Bit h for a high half h < 8; none for the bytes >= 0x80 (never in the set).
    const __m256i bit_of_high =
        _mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32,
                         64, -128, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i low_half = _mm256_set1_epi8(0x0F);
    const __m256i in = _mm256_and_si256(
        _mm256_shuffle_epi8(rows, _mm256_and_si256(v, low_half)),
        _mm256_shuffle_epi8(bit_of_high, _mm256_and_si256(_mm256_srli_epi16(v, 4), low_half)));
    return ~static_cast<uint32_t>(
        _mm256_movemask_epi8(_mm256_cmpeq_epi8(in, _mm256_setzero_si256())));
  }
};

// AsciiWordRunsBaseline on the AVX2 path, for the bytes `classify` marks (classify(p, &high): 32
// bits for the 32 bytes at p, or-ing them into high): the mask of 64 bytes per step, its
// transitions (word ^ (word << 1)) flattened straight into positions (no mask array): half the
// flattening of starts and ends apart, since they alternate; then split. The last partial step
// from the text's last 64 bytes (or a padded copy of a shorter text); the last step also covers
// bit n, so every run that starts ends.
template <typename Classify>
__attribute__((target("avx2,bmi,popcnt"))) bool AsciiRunsAvx2(std::string_view text,
                                                              const Classify& classify,
                                                              AnalyzerScratch* scratch,
                                                              AsciiRuns* runs) {
  const size_t n = text.size();
  const RunBoundsAndTransitions arrays = RunBoundAndTransitionArrays(n, scratch);
  uint32_t* transitions = arrays.transitions;
  size_t count = 0;
  __m256i high = _mm256_setzero_si256();
  uint64_t carry = 0;
  const char* data = text.data();
  for (size_t i = 0; i <= n; i += 64) {
    uint64_t word = 0;
    if (i + 64 <= n) {
      word = classify(data + i, &high) | classify(data + i + 32, &high) << 32;
      // Refused at the first step with a byte >= 0x80 (no work past it).
      if (_mm256_movemask_epi8(high) != 0) return false;
    } else if (n >= 64) {
      // The last partial step: the 64 bytes that end the text (those before i already checked),
      // shifted down to bytes i .. n - 1.
      const size_t left = n - i;
      if (left != 0) {
        const char* last = data + n - 64;
        word = (classify(last, &high) | classify(last + 32, &high) << 32) >> (64 - left);
      }
    } else {  // a text shorter than 64 bytes: from a zero-padded copy (0 is not a word byte)
      alignas(32) char padded[64] = {};
      std::memcpy(padded, data, n);
      // Only the text's bytes: the zeros after them may be in a set (NUL is \S).
      word = (classify(padded, &high) | classify(padded + 32, &high) << 32) &
             ((uint64_t{1} << n) - 1);  // n < 64
    }
    const uint64_t previous = word << 1 | carry;
    carry = word >> 63;
    count += FlattenBitsAvx2(word ^ previous, static_cast<uint32_t>(i), transitions + count);
  }
  if (_mm256_movemask_epi8(high) != 0) return false;
  SplitTransitionsAvx2(transitions, count / 2, arrays.starts, arrays.ends);
  *runs = AsciiRuns{arrays.starts, arrays.ends, count / 2};
  return true;
}

__attribute__((target("avx2,bmi,popcnt"))) bool AsciiWordRunsAvx2(std::string_view text,
                                                                  AnalyzerScratch* scratch,
                                                                  AsciiRuns* runs) {
  return AsciiRunsAvx2(text, WordClassAvx2{}, scratch, runs);
}

__attribute__((target("avx2,bmi,popcnt"))) bool AsciiSetRunsAvx2(std::string_view text,
                                                                 const AsciiByteSet& set,
                                                                 AnalyzerScratch* scratch,
                                                                 AsciiRuns* runs) {
  return AsciiRunsAvx2(text, SetClassAvx2{&set}, scratch, runs);
}

// The byte mask `set` of 32 bytes as bits `shift` to `shift` + 31 of a word.
__attribute__((target("avx2,bmi,popcnt"), always_inline)) inline uint64_t BitsAvx2(__m256i set,
                                                                                   unsigned shift) {
  return uint64_t{static_cast<uint32_t>(_mm256_movemask_epi8(set))} << shift;
}

// The bits of the 32 bytes at p that are >= 0x80, >= 0xE0 and >= 0xF0 (the last two also set for
// ASCII bytes: signed compares), at bit `shift` of the three words.
__attribute__((target("avx2,bmi,popcnt"), always_inline)) inline void LeadBitsAvx2(
    const char* p, unsigned shift, uint64_t* high, uint64_t* lead3, uint64_t* lead4) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  *high |= BitsAvx2(v, shift);
  *lead3 |= BitsAvx2(_mm256_cmpgt_epi8(v, _mm256_set1_epi8(static_cast<char>(0xDF))), shift);
  *lead4 |= BitsAvx2(_mm256_cmpgt_epi8(v, _mm256_set1_epi8(static_cast<char>(0xEF))), shift);
}

// RunsFromMasks with LoneCodePointDrop and FlattenBitsAvx2 (the transitions flattened once, then
// split, as AsciiWordRunsAvx2), the lead bytes' lengths from two compares per 32 bytes (the last
// partial word from a zero-padded copy).
__attribute__((target("avx2,bmi,popcnt"))) void WordRunsFromMasksAvx2(std::string_view doc,
                                                                      AnalyzerScratch* scratch,
                                                                      AsciiRuns* runs) {
  const size_t n = doc.size();
  const std::vector<uint64_t>& masks = scratch->masks;
  const size_t words = masks.size();
  const RunBoundsAndTransitions arrays = RunBoundAndTransitionArrays(n, scratch);
  size_t count = 0;
  uint64_t carry = 0;
  LoneCodePointDrop drop;
  for (size_t w = 0; w < words; ++w) {
    const size_t i = w * 64;
    const char* p = doc.data() + i;
    alignas(32) char padded[64];
    if (i + 64 > n) {
      std::memset(padded, 0, sizeof(padded));
      if (n > i) std::memcpy(padded, p, n - i);
      p = padded;
    }
    uint64_t high = 0, lead3 = 0, lead4 = 0;
    LeadBitsAvx2(p, 0, &high, &lead3, &lead4);
    LeadBitsAvx2(p + 32, 32, &high, &lead3, &lead4);
    const uint64_t raw = masks[w];
    const uint64_t m =
        drop.Drop(raw, w + 1 < words ? masks[w + 1] : 0, drop.Begins(raw, high), lead3, lead4);
    const uint64_t previous = m << 1 | carry;
    carry = m >> 63;
    count += FlattenBitsAvx2(m ^ previous, static_cast<uint32_t>(i), arrays.transitions + count);
  }
  // The last word covers bit n: every run that starts ends.
  SplitTransitionsAvx2(arrays.transitions, count / 2, arrays.starts, arrays.ends);
  *runs = AsciiRuns{arrays.starts, arrays.ends, count / 2};
}

MAAS_COUNT_AVX512_WARNINGS_OFF

// Writes base + the index of each set bit of `bits`, ascending, to out[0 .. popcount) and returns
// the popcount; also writes out[popcount .. 16) or, above 16 bits, out[popcount .. 32) (at most 32
// bits are set: callers pass run starts or ends of one 64-byte word). One byte compress of the bit
// indices, one widening store (a second for the rare word with more than 16 runs).
MAAS_COUNT_AVX512 inline size_t CompressBitsAvx512(uint64_t bits, __m512i base, __m512i iota,
                                                   uint32_t* out) {
  // (The maskz forms with all lanes: GCC 12's plain forms trip -Wuninitialized.)
  const __m512i index = _mm512_maskz_compress_epi8(bits, iota);
  const __m128i first = _mm512_castsi512_si128(index);
  _mm512_storeu_si512(out, _mm512_add_epi32(_mm512_maskz_cvtepu8_epi32(0xFFFF, first), base));
  const size_t count = static_cast<size_t>(_mm_popcnt_u64(bits));
  if (count > 16) {  // rare: more than 16 runs begin (or end) in 64 bytes
    const __m128i second = _mm512_maskz_extracti32x4_epi32(0xF, index, 1);
    _mm512_storeu_si512(out + 16,
                        _mm512_add_epi32(_mm512_maskz_cvtepu8_epi32(0xFFFF, second), base));
  }
  return count;
}

// Bytes 0, 1, ..., 63.
MAAS_COUNT_AVX512 inline __m512i ByteIndices() {
  return _mm512_set_epi8(63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45,
                         44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26,
                         25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6,
                         5, 4, 3, 2, 1, 0);
}

// RunsFromMasks with LoneCodePointDrop, the positions compressed 64 bits at a time
// (CompressBitsAvx512), the lead bytes' lengths from two compares per 64 bytes.
MAAS_COUNT_AVX512 void WordRunsFromMasksAvx512(std::string_view doc, AnalyzerScratch* scratch,
                                               AsciiRuns* runs) {
  const size_t n = doc.size();
  const std::vector<uint64_t>& masks = scratch->masks;
  auto [starts, ends] = RunBoundArrays(n, scratch);
  const __m512i iota = ByteIndices();
  const __m512i lead3 = _mm512_set1_epi8(static_cast<char>(0xE0));
  const __m512i lead4 = _mm512_set1_epi8(static_cast<char>(0xF0));
  const size_t words = masks.size();
  size_t num_starts = 0, num_ends = 0;
  uint64_t carry = 0;
  LoneCodePointDrop drop;
  const char* data = doc.data();
  for (size_t w = 0; w < words; ++w) {
    const size_t i = w * 64;
    const size_t left = n > i ? n - i : 0;
    const __mmask64 load = left >= 64 ? ~uint64_t{0} : _bzhi_u64(~uint64_t{0}, left);
    const __m512i v = _mm512_maskz_loadu_epi8(load, data + i);
    const uint64_t raw = masks[w];
    const uint64_t begins = drop.Begins(raw, _mm512_movepi8_mask(v));
    const uint64_t m =
        drop.Drop(raw, w + 1 < words ? masks[w + 1] : 0, begins, _mm512_cmpge_epu8_mask(v, lead3),
                  _mm512_cmpge_epu8_mask(v, lead4));
    const uint64_t previous = m << 1 | carry;
    carry = m >> 63;
    const __m512i base = _mm512_set1_epi32(static_cast<int>(i));
    num_starts += CompressBitsAvx512(m & ~previous, base, iota, starts + num_starts);
    num_ends += CompressBitsAvx512(~m & previous, base, iota, ends + num_ends);
  }
  *runs = AsciiRuns{starts, ends, num_starts};
}

// The word bytes of 64 bytes: AsciiRunsAvx512's classes for AsciiWordRuns. Unsigned ranges: bytes
// >= 0x80 are never \w here (the text is then refused anyway).
struct WordClassAvx512 {
  MAAS_COUNT_AVX512 uint64_t operator()(__m512i v) const {
    const __m512i zero_char = _mm512_set1_epi8('0'), nine = _mm512_set1_epi8(9);
    const __m512i a_char = _mm512_set1_epi8('a'), z_span = _mm512_set1_epi8(25);
    const __m512i case_bit = _mm512_set1_epi8(0x20), underscore = _mm512_set1_epi8('_');
    return _mm512_cmple_epu8_mask(_mm512_sub_epi8(v, zero_char), nine) |
           _mm512_cmple_epu8_mask(_mm512_sub_epi8(_mm512_or_si512(v, case_bit), a_char), z_span) |
           _mm512_cmpeq_epi8_mask(v, underscore);
  }
};

// The bytes of `set` among 64 bytes (SetClassAvx2's two table shuffles).
struct SetClassAvx512 {
  const AsciiByteSet* set;
  MAAS_COUNT_AVX512 uint64_t operator()(__m512i v) const {
    const __m512i rows =
        _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(set->rows)));
    const __m512i bit_of_high =
        _mm512_broadcast_i32x4(_mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0));
    const __m512i low_half = _mm512_set1_epi8(0x0F);
    const __m512i in = _mm512_and_si512(
        _mm512_shuffle_epi8(rows, _mm512_and_si512(v, low_half)),
        _mm512_shuffle_epi8(bit_of_high, _mm512_and_si512(_mm512_srli_epi16(v, 4), low_half)));
    return _mm512_test_epi8_mask(in, in);
  }
};

// AsciiWordRunsBaseline in one pass of 64 bytes per step, for the bytes `classify` marks
// (classify(v): 64 bits for the 64 bytes of v): a step's mask is a 64-bit compare result (no mask
// array), its runs' starts and ends compressed straight into positions. The last step (bytes past
// the end masked to 0, never read) also covers bit n.
template <typename Classify>
MAAS_COUNT_AVX512 bool AsciiRunsAvx512(std::string_view text, const Classify& classify,
                                       AnalyzerScratch* scratch, AsciiRuns* runs) {
  const size_t n = text.size();
  auto [starts, ends] = RunBoundArrays(n, scratch);
  size_t num_starts = 0, num_ends = 0;
  const __m512i iota = ByteIndices();
  uint64_t carry = 0;
  const char* data = text.data();
  for (size_t i = 0; i <= n; i += 64) {
    const size_t left = n - i;
    const __mmask64 load = left >= 64 ? ~uint64_t{0} : _bzhi_u64(~uint64_t{0}, left);
    const __m512i v = _mm512_maskz_loadu_epi8(load, data + i);
    // Refused at the first step with a byte >= 0x80 (no work past it).
    if (_mm512_movepi8_mask(v) != 0) return false;
    // Only the loaded bytes: the zeros past the end may be in a set (NUL is \S).
    const uint64_t word = classify(v) & load;
    const uint64_t previous = word << 1 | carry;
    carry = word >> 63;
    const __m512i base = _mm512_set1_epi32(static_cast<int>(i));
    num_starts += CompressBitsAvx512(word & ~previous, base, iota, starts + num_starts);
    num_ends += CompressBitsAvx512(~word & previous, base, iota, ends + num_ends);
  }
  *runs = AsciiRuns{starts, ends, num_starts};
  return true;
}

MAAS_COUNT_AVX512 bool AsciiWordRunsAvx512(std::string_view text, AnalyzerScratch* scratch,
                                           AsciiRuns* runs) {
  return AsciiRunsAvx512(text, WordClassAvx512{}, scratch, runs);
}

MAAS_COUNT_AVX512 bool AsciiSetRunsAvx512(std::string_view text, const AsciiByteSet& set,
                                          AnalyzerScratch* scratch, AsciiRuns* runs) {
  return AsciiRunsAvx512(text, SetClassAvx512{&set}, scratch, runs);
}
MAAS_COUNT_AVX512_WARNINGS_ON
#endif

}  // namespace

bool AsciiWordRunsWith(CountSimdPath path, std::string_view text, AnalyzerScratch* scratch,
                       AsciiRuns* runs) {
#if defined(__x86_64__)
  if (path == CountSimdPath::kAvx512) return AsciiWordRunsAvx512(text, scratch, runs);
  if (path == CountSimdPath::kAvx2) return AsciiWordRunsAvx2(text, scratch, runs);
#endif
  return AsciiWordRunsBaseline(text, scratch, runs);
}

bool AsciiWordRuns(std::string_view text, AnalyzerScratch* scratch, AsciiRuns* runs) {
  return AsciiWordRunsWith(BestCountSimdPath(), text, scratch, runs);
}

bool AsciiSetRunsWith(CountSimdPath path, std::string_view text, const AsciiByteSet& set,
                      size_t min_length, AnalyzerScratch* scratch, AsciiRuns* runs) {
  bool ascii = false;
#if defined(__x86_64__)
  if (path == CountSimdPath::kAvx512) {
    ascii = AsciiSetRunsAvx512(text, set, scratch, runs);
  } else if (path == CountSimdPath::kAvx2) {
    ascii = AsciiSetRunsAvx2(text, set, scratch, runs);
  } else {
    ascii = AsciiSetRunsBaseline(text, set, scratch, runs);
  }
#else
  ascii = AsciiSetRunsBaseline(text, set, scratch, runs);
#endif
  if (ascii && min_length > 2) {
    // The arrays are the scratch's (RunBoundArrays).
    auto [starts, ends] = RunBoundArrays(text.size(), scratch);
    runs->count = KeepRunsOfAtLeast(min_length, runs->count, starts, ends);
  }
  return ascii;
}

bool AsciiSetRuns(std::string_view text, const AsciiByteSet& set, size_t min_length,
                  AnalyzerScratch* scratch, AsciiRuns* runs) {
  return AsciiSetRunsWith(BestCountSimdPath(), text, set, min_length, scratch, runs);
}

namespace {

// IsWordCodePoint of each code point c < kWordTableEnd, as bit c (32 KB); computed once, then
// read-only.
const std::vector<uint64_t>& WordTable() {
  static const std::vector<uint64_t>* const bits = [] {
    auto* b = new std::vector<uint64_t>(kWordTableEnd / 64, 0);
    for (int32_t c = 0; c < kWordTableEnd; ++c) {
      if (IsWordCodePoint(c)) (*b)[c >> 6] |= uint64_t{1} << (c & 63);
    }
    return b;
  }();
  return *bits;
}

// For each code point c of 2 UTF-8 bytes (0x80 to 0x7FF), LowerCodePoint's work in one entry:
// bits 0-15 the two UTF-8 bytes of its lowercase (the first in bits 0-7), bits 16 and 17 set when
// the first / second of those bytes belong to a \w code point (kLower2Word: both), bit
// kLower2General when it has no lowercase of 2 bytes in place (a change of length: U+0130), or
// none without its context (U+03A3, with bit kLower2Sigma: CapitalSigmaEntry). Bit
// kLower2RunsGeneral is kLower2General but for U+0130, whose lowercase "i\u0307" has word runs
// that 2 bytes in place keep: 'i' (\w) and a space standing for U+0307 (not \w, as a
// nonspacing mark: the runs around it are the same), kLower2DottedI's bytes (LowerWordRunsWith,
// whose preprocessed text serves only its runs' bytes). Indexed by c (the first 128 entries
// unused); 8 KB, computed once, then read-only.
constexpr uint32_t kLower2Word = uint32_t{3} << 16, kLower2FirstWord = uint32_t{1} << 16;
constexpr uint32_t kLower2General = uint32_t{1} << 18, kLower2RunsGeneral = uint32_t{1} << 19;
constexpr uint32_t kLower2Sigma = uint32_t{1} << 20;
constexpr uint32_t kLower2DottedI = 'i' | uint32_t{' '} << 8 | kLower2FirstWord | kLower2General;
const std::vector<uint32_t>& Lower2Byte() {
  static const std::vector<uint32_t>* const table = [] {
    const std::vector<char16_t>& simple = SimpleLowerBmp();
    auto* t = new std::vector<uint32_t>(0x800, kLower2General | kLower2RunsGeneral);
    (*t)[0x3A3] = kLower2General | kLower2RunsGeneral | kLower2Sigma;
    if (!IsWordCodePoint(0x307)) (*t)[0x130] = kLower2DottedI;  // (as the Unicode data has it)
    for (char16_t c = 0x80; c < 0x800; ++c) {
      const char16_t lower = simple[c];
      if (lower == 0 || Utf8Length(lower) != 2) continue;
      char bytes[3];
      EncodeBmp(lower, bytes);
      (*t)[c] = static_cast<unsigned char>(bytes[0]) |
                uint32_t{static_cast<unsigned char>(bytes[1])} << 8 |
                (IsWordCodePoint(lower) ? kLower2Word : 0);
    }
    return t;
  }();
  return *table;
}

// Bit c & 7 of byte c >> 3 set for each code point c of 2 UTF-8 bytes that is its own lowercase and
// \w: its Lower2Byte entry is its own two bytes with kLower2Word (LowerPassAvx512 takes a 64-byte
// step whose code points >= 0x80 are all such whole, leaving nothing to the per-code-point loop).
const std::array<uint8_t, 256>& SelfLowerWord2() {
  static const std::array<uint8_t, 256> bits = [] {
    std::array<uint8_t, 256> b{};
    const std::vector<uint32_t>& entries = Lower2Byte();
    for (uint32_t c = 0x80; c < 0x800; ++c) {
      const uint32_t own = (0xC0 | c >> 6) | (0x80 | (c & 0x3F)) << 8;
      if (entries[c] == (own | kLower2Word)) b[c >> 3] |= static_cast<uint8_t>(1u << (c & 7));
    }
    return b;
  }();
  return bits;
}

// Whether U+2000..U+203F (UTF-8 E2 80 80..BF: the spaces, dashes, quotes, ellipsis and format
// characters of typeset text) are each their own lowercase and not \w (Python's \w is alphanumeric
// or '_': not the connector U+203F) by the tables of the per-code-point loop (SimpleLowerBmp,
// WordTable), as the Unicode data has them: checked once, so that other data would only turn off
// LowerPassAvx512's use of it.
bool GeneralPunctuationSelfNonWord() {
  static const bool holds = [] {
    const std::vector<char16_t>& simple = SimpleLowerBmp();
    const uint64_t* word = WordTable().data();
    for (char16_t c = 0x2000; c <= 0x203F; ++c) {
      if (simple[c] != c || (word[c >> 6] >> (c & 63) & 1) != 0) return false;
    }
    return true;
  }();
  return holds;
}

// The Lower2Byte entry of the U+03A3 (capital sigma) at text[i], whose lowercase depends on its
// context (IsFinalSigma): U+03C2 (final sigma) or U+03C3. Both are \w and take 2 bytes, as the
// capital.
uint32_t CapitalSigmaEntry(std::string_view text, size_t i) {
  // U+03C2 and U+03C3 in UTF-8: CF 82 and CF 83.
  return 0xCFu | (IsFinalSigma(text, i) ? 0x82u : 0x83u) << 8 | kLower2Word;
}

// Python str.lower() of text[from, n) written after *out's first `from` bytes (which already hold
// text[0, from) lowercased, at the same offsets): ASCII 8 bytes at a time, code points of 2 bytes
// by Lower2Byte, the others by WritePythonLower, each validated: false at the first ill-formed
// sequence (*out unspecified). `general` is the Lower2Byte flag of the 2-byte code points that
// WritePythonLower takes: kLower2General, or kLower2RunsGeneral for LowerWordRunsWith's runs
// (U+0130 then in 2 bytes). Each code point's lowercase takes at most 1.5
// times its bytes (2 -> 3: U+0130, U+023A), so from + 1.5 (n - from) bytes suffice. (Until
// 2026-12-06 a word holding such a code point was lowercased again whole by AppendPythonLower,
// after a pass over the whole text, and such a text also left LowerWordRuns for the separate
// steps: Turkish text with many a capital I with dot classified 22 % slower.)
bool LowerFrom(std::string_view text, size_t from, uint32_t general, std::string* out) {
  const size_t n = text.size();
  const char* in = text.data();
  const char16_t* simple = SimpleLowerBmp().data();
  const uint32_t* lower2 = Lower2Byte().data();
  // 8 more bytes: the ASCII steps below write 8 bytes at a time.
  out->resize(from + (n - from) + (n - from) / 2 + 16);
  char* d = out->data();
  size_t w = from;  // bytes written to *out
  size_t i = from;
  while (i < n) {
    // ASCII 8 bytes at a time, lowercased in a register; a step's bytes from its first >= 0x80 on
    // are written too, then overwritten (the output never runs ahead of 1.5 x the input read).
    if (i + 8 <= n) {
      const uint64_t x = Load64(in + i);
      const uint64_t lowered = LowerAscii8(x);
      std::memcpy(d + w, &lowered, sizeof(lowered));
      const uint64_t high = x & kHighBits;
      if (high == 0) {
        i += 8;
        w += 8;
        continue;
      }
      const size_t ascii = static_cast<size_t>(__builtin_ctzll(high) >> 3);
      i += ascii;
      w += ascii;
    } else if (static_cast<unsigned char>(in[i]) < 0x80) {
      const char c = in[i++];
      d[w++] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
      continue;
    }
    // A code point of 2 bytes (most letters of European and Turkish text) from one Lower2Byte
    // entry; the others decoded and validated.
    const auto b0 = static_cast<unsigned char>(in[i]);
    if (b0 >= 0xC2 && b0 <= 0xDF && i + 1 < n &&
        (static_cast<unsigned char>(in[i + 1]) & 0xC0) == 0x80) {
      const uint32_t entry = lower2[(b0 & 0x1Fu) << 6 | (in[i + 1] & 0x3Fu)];
      if ((entry & general) == 0) {
        d[w] = static_cast<char>(entry & 0xFF);
        d[w + 1] = static_cast<char>(entry >> 8 & 0xFF);
        i += 2;
        w += 2;
        continue;
      }
    }
    const size_t start = i;
    const int32_t c = DecodeOne(text, &i);
    if (c < 0) return false;
    w += WritePythonLower(text, start, c, simple, d + w);
  }
  out->resize(w);
  return true;
}

// *out = text with ASCII A-Z lowercased (other bytes copied).
void CopyLowerAscii(std::string_view text, std::string* out) {
  out->resize(text.size());
  WriteLowerAscii(text, out, 0);
}

// Python str.lower() of valid UTF-8 `text` into *out. Nearly always in two passes: the text
// copied with ASCII A-Z lowercased, 8 bytes at a time, then each code point >= 0x80 replaced in
// place by its one-to-one mapping when that takes as many bytes (LowerCodePoint). From the first
// code point whose mapping is special or of another length on, LowerFrom writes the rest.
void LowerInto(std::string_view text, std::string* out) {
  const size_t n = text.size();
  CopyLowerAscii(text, out);
  const char16_t* simple = nullptr;
  for (size_t i = SkipAscii(text, 0); i < n; i = SkipAscii(text, i)) {
    if (simple == nullptr) simple = SimpleLowerBmp().data();
    if (LowerCodePoint(text, i, simple, /*word_table=*/nullptr, out->data(), /*word=*/nullptr,
                       &i) != LowerRunsResult::kDone) {
      // LowerCodePoint left i at that code point; text is valid.
      LowerFrom(text, i, kLower2General, out);
      return;
    }
  }
}

// WordRuns's last steps: the runs of scratch->masks (the \w bytes of doc), without the runs of a
// single code point of 2 to 4 bytes (LoneCodePointDrop), into *runs.
void RunsOfWordMasks(CountSimdPath path, std::string_view doc, AnalyzerScratch* scratch,
                     AsciiRuns* runs) {
#if defined(__x86_64__)
  if (path == CountSimdPath::kAvx512) return WordRunsFromMasksAvx512(doc, scratch, runs);
  if (path == CountSimdPath::kAvx2) return WordRunsFromMasksAvx2(doc, scratch, runs);
#else
  (void)path;
#endif
  DropLoneCodePoints(doc, scratch);
  RunsFromMasks(scratch->masks, doc.size(), scratch, runs);
}

// The bytes of a plain run pattern's set (masks, ASCII bytes only) and the bytes >= 0x80 (high) of
// `doc`, 64 bytes to a word (masks and high hold doc.size() / 64 + 1 zeroed words): per path, a
// word at a time (SetClassAvx2 / SetClassAvx512's lookups), the last one from a zero-padded copy
// (AVX2) or a masked load (AVX-512), its bits past the end cleared (NUL may be in the set).
void SetMasksBaseline(std::string_view doc, const AsciiByteSet& set, uint64_t* masks,
                      uint64_t* high) {
  for (size_t i = 0; i < doc.size(); ++i) {
    const auto b = static_cast<unsigned char>(doc[i]);
    masks[i / 64] |= uint64_t{set.Contains(b)} << (i % 64);
    high[i / 64] |= uint64_t{b >= 0x80} << (i % 64);
  }
}

#if defined(__x86_64__)
__attribute__((target("avx2,bmi,popcnt"))) void SetMasksAvx2(std::string_view doc,
                                                             const AsciiByteSet& set,
                                                             uint64_t* masks, uint64_t* high) {
  const size_t n = doc.size();
  const SetClassAvx2 classify{&set};
  for (size_t w = 0; w * 64 < n; ++w) {
    const char* p = doc.data() + w * 64;
    alignas(32) char padded[64];
    uint64_t valid = ~uint64_t{0};
    if (w * 64 + 64 > n) {
      std::memset(padded, 0, sizeof(padded));
      std::memcpy(padded, p, n - w * 64);
      p = padded;
      valid = (uint64_t{1} << (n - w * 64)) - 1;
    }
    __m256i any = _mm256_setzero_si256();
    masks[w] = (classify(p, &any) | classify(p + 32, &any) << 32) & valid;
    high[w] = BitsAvx2(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), 0) |
              BitsAvx2(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)), 32);
  }
}

MAAS_COUNT_AVX512_WARNINGS_OFF
MAAS_COUNT_AVX512 void SetMasksAvx512(std::string_view doc, const AsciiByteSet& set,
                                      uint64_t* masks, uint64_t* high) {
  const size_t n = doc.size();
  const SetClassAvx512 classify{&set};
  for (size_t w = 0; w * 64 < n; ++w) {
    const size_t left = n - w * 64;
    const __mmask64 load = left >= 64 ? ~uint64_t{0} : _bzhi_u64(~uint64_t{0}, left);
    const __m512i v = _mm512_maskz_loadu_epi8(load, doc.data() + w * 64);
    masks[w] = classify(v) & load;
    high[w] = _mm512_movepi8_mask(v);
  }
}
MAAS_COUNT_AVX512_WARNINGS_ON
#endif

// The runs of a plain run pattern's set (TokenPattern::ascii_run_set) in a valid UTF-8 `doc` with
// code points >= 0x80, of at least run_min_length() code points (runs of one code point of 2-4
// bytes dropped for 2, as WordRuns drops them; the 1-byte runs stay): the set's mask of the ASCII
// bytes (SetMasks*), each code point >= 0x80 then decoded once and looked up (as WordRunsWith
// classifies them), then the runs of the mask.
void NonAsciiSetRuns(CountSimdPath path, std::string_view doc, const TokenPattern& pattern,
                     AnalyzerScratch* scratch, AsciiRuns* runs) {
  const size_t n = doc.size();
  const AsciiByteSet& set = *pattern.ascii_run_set(/*lower_ascii=*/false);
  const size_t min_length = pattern.run_min_length();
  std::vector<uint64_t>& masks = scratch->masks;
  std::vector<uint64_t>& high = scratch->high_masks;
  masks.assign(n / 64 + 1, 0);
  high.assign(n / 64 + 1, 0);
#if defined(__x86_64__)
  if (path == CountSimdPath::kAvx512) {
    SetMasksAvx512(doc, set, masks.data(), high.data());
  } else if (path == CountSimdPath::kAvx2) {
    SetMasksAvx2(doc, set, masks.data(), high.data());
  } else {
    SetMasksBaseline(doc, set, masks.data(), high.data());
  }
#else
  SetMasksBaseline(doc, set, masks.data(), high.data());
#endif
  size_t skip_to = 0;  // the end of the last code point that crossed into the next word
  for (size_t w = 0; w < high.size(); ++w) {
    for (uint64_t h = HighBitsFrom(high[w], w, skip_to); h != 0;) {
      const auto bit = static_cast<unsigned>(__builtin_ctzll(h));
      size_t length;
      const int32_t c = DecodeWellFormed(doc.data() + w * 64 + bit, &length);
      const uint64_t bytes = (uint64_t{1} << length) - 1;
      const uint64_t bits = pattern.RunSetContains(c) ? bytes : 0;
      masks[w] |= bits << bit;
      h &= ~(bytes << bit);
      if (bit + length > 64) {  // the last bytes open the next word
        masks[w + 1] |= bits >> (64 - bit);
        skip_to = w * 64 + bit + length;
      }
    }
  }
  if (min_length == 2) {
    RunsOfWordMasks(path, doc, scratch, runs);  // lone code points of 2-4 bytes dropped
    return;
  }
  RunsFromMasks(masks, n, scratch, runs);
  if (min_length > 2) {
    // Runs of fewer code points (lead and ASCII bytes) dropped.
    auto [starts, ends] = RunBoundArrays(n, scratch);
    size_t kept = 0;
    for (size_t k = 0; k < runs->count; ++k) {
      size_t code_points = 0;
      for (uint32_t i = starts[k]; i < ends[k] && code_points < min_length; ++i) {
        code_points += (static_cast<unsigned char>(doc[i]) & 0xC0) != 0x80 ? 1 : 0;
      }
      starts[kept] = starts[k];
      ends[kept] = ends[k];
      kept += code_points >= min_length ? 1 : 0;
    }
    runs->count = kept;
  }
}

}  // namespace

void SetRunsWith(CountSimdPath path, std::string_view doc, const TokenPattern& pattern,
                 AnalyzerScratch* scratch, AsciiRuns* runs) {
  const AsciiByteSet& set = *pattern.ascii_run_set(/*lower_ascii=*/false);
  if (!AsciiSetRunsWith(path, doc, set, pattern.run_min_length(), scratch, runs)) {
    NonAsciiSetRuns(path, doc, pattern, scratch, runs);
  }
}

bool WordRunsWith(CountSimdPath path, std::string_view doc, AnalyzerScratch* scratch,
                  AsciiRuns* runs) {
  const size_t n = doc.size();
  if (n >= std::numeric_limits<uint32_t>::max()) return false;
  if (AsciiWordRunsWith(path, doc, scratch, runs)) return true;
  // The word-byte mask of the ASCII bytes, then the bytes of every word code point >= 0x80 set in
  // it: each lead byte >= 0x80 decoded (its continuation bytes skipped) and classified.
  std::vector<uint64_t>& masks = scratch->masks;
  std::vector<uint64_t>& high = scratch->high_masks;
  AsciiWordMask(doc, &masks, &high);
  const uint64_t* word_table = WordTable().data();
  size_t skip_to = 0;  // the end of the last code point that crossed into the next word
  for (size_t w = 0; w < high.size(); ++w) {
    // Only lead bytes: each code point's bytes are cleared from h once decoded, and its word bits
    // collect in a register (as in LowerWordRunsWith: no store and reload chained from one code
    // point to the next).
    uint64_t word_bits = 0;
    for (uint64_t h = HighBitsFrom(high[w], w, skip_to); h != 0;) {
      const auto bit = static_cast<unsigned>(__builtin_ctzll(h));
      size_t length;
      const int32_t c = DecodeWellFormed(doc.data() + w * 64 + bit, &length);
      const bool is_word =
          c < kWordTableEnd ? (word_table[c >> 6] >> (c & 63) & 1) != 0 : IsWordCodePoint(c);
      const uint64_t bytes = (uint64_t{1} << length) - 1;
      const uint64_t bits = is_word ? bytes : 0;
      word_bits |= bits << bit;
      h &= ~(bytes << bit);
      if (bit + length > 64) {  // the last bytes open the next word
        masks[w + 1] |= bits >> (64 - bit);
        skip_to = w * 64 + bit + length;
      }
    }
    masks[w] |= word_bits;
  }
  RunsOfWordMasks(path, doc, scratch, runs);
  return true;
}

namespace {

// The mask vectors of LowerWordRunsWith's first pass for an n-byte text, n / 64 + 1 words each.
// The pass writes every word but the last when n is a multiple of 64, so only that one is zeroed
// (no zero-filling pass, a memset call per vector, before it).
inline void SizeLowerPassMasks(size_t n, AnalyzerScratch* scratch) {
  scratch->masks.resize(n / 64 + 1);
  scratch->high_masks.resize(n / 64 + 1);
  scratch->masks.back() = 0;
  scratch->high_masks.back() = 0;
}

#if defined(__x86_64__)
MAAS_COUNT_AVX512_WARNINGS_OFF
// LowerWordRunsWith's first pass on the AVX-512 path, 64 bytes per step: scratch->preprocessed =
// text with ASCII A-Z lowercased, and the ASCII word bits and the bits of the bytes >= 0x80 in
// scratch->masks and scratch->high_masks (as CopyLowerAscii and AsciiWordMask with `high`).
//
// The code points of 2 bytes that are each their own lowercase and \w (most letters of European
// text: the lowercase ones) or U+0130 (Turkish capital I with dot, to kLower2DottedI's 'i' and
// space), and those of U+2000..U+203F (GeneralPunctuationSelfNonWord: typeset quotes and dashes),
// are finished here: the 2-byte ones' \w bytes are \w bits, and their high bits are cleared so
// that LowerWordRunsWith's per-code-point loop takes only the others (capitals, other scripts).
// Branch-free: each lead byte's code point c looked up in SelfLowerWord2 (byte c >> 3 picked from
// 256 bytes in four registers, bit c & 7).
MAAS_COUNT_AVX512 void LowerPassAvx512(std::string_view text, AnalyzerScratch* scratch) {
  const size_t n = text.size();
  scratch->preprocessed.resize(n);
  std::vector<uint64_t>& masks = scratch->masks;
  std::vector<uint64_t>& high = scratch->high_masks;
  SizeLowerPassMasks(n, scratch);
  const __m512i upper_a = _mm512_set1_epi8('A'), letters = _mm512_set1_epi8(25);
  const __m512i zero_char = _mm512_set1_epi8('0'), nine = _mm512_set1_epi8(9);
  const __m512i a_char = _mm512_set1_epi8('a'), case_bit = _mm512_set1_epi8(0x20);
  const __m512i underscore = _mm512_set1_epi8('_');
  const uint8_t* self_lower = SelfLowerWord2().data();
  const __m512i self0 = _mm512_loadu_si512(self_lower);
  const __m512i self1 = _mm512_loadu_si512(self_lower + 64);
  const __m512i self2 = _mm512_loadu_si512(self_lower + 128);
  const __m512i self3 = _mm512_loadu_si512(self_lower + 192);
  const __m512i next_index = _mm512_add_epi8(ByteIndices(), _mm512_set1_epi8(1));   // 63 -> 0
  const __m512i next2_index = _mm512_add_epi8(ByteIndices(), _mm512_set1_epi8(2));  // 62 -> 0
  const uint64_t punct3_on = GeneralPunctuationSelfNonWord() ? ~uint64_t{0} : 0;
  const uint64_t dotted_on = Lower2Byte()[0x130] == kLower2DottedI ? ~uint64_t{0} : 0;
  const __m512i bit_of = _mm512_set1_epi64(static_cast<int64_t>(0x8040201008040201));
  const char* in = text.data();
  char* d = scratch->preprocessed.data();
  uint64_t* mask_words = masks.data();  // (locals: a store through them may alias the vectors)
  uint64_t* high_words = high.data();
  for (size_t i = 0; i < n; i += 64) {
    const size_t left = n - i;
    const __mmask64 load = left >= 64 ? ~uint64_t{0} : _bzhi_u64(~uint64_t{0}, left);
    const __m512i v = _mm512_maskz_loadu_epi8(load, in + i);
    // Unsigned ranges: bytes >= 0x80 are neither upper case nor \w here.
    const __mmask64 upper = _mm512_cmple_epu8_mask(_mm512_sub_epi8(v, upper_a), letters);
    const uint64_t word =
        _mm512_cmple_epu8_mask(_mm512_sub_epi8(v, zero_char), nine) |
        _mm512_cmple_epu8_mask(_mm512_sub_epi8(_mm512_or_si512(v, case_bit), a_char), letters) |
        _mm512_cmpeq_epi8_mask(v, underscore);
    const uint64_t h = _mm512_movepi8_mask(v);
    // The lead bytes of 2 (0xC2-0xDF), those followed by a continuation byte, and of those the
    // code points in SelfLowerWord2: byte ((b0 & 0x1F) << 3) | ((b1 & 0x3F) >> 3), bit b1 & 7
    // (16-bit shifts, each byte's bits from its neighbour masked off).
    const uint64_t lead2 = _mm512_mask_cmple_epu8_mask(
        h, _mm512_sub_epi8(v, _mm512_set1_epi8(static_cast<char>(0xC2))),
        _mm512_set1_epi8(0xDF - 0xC2));
    const __m512i next = _mm512_permutexvar_epi8(next_index, v);
    // U+0130 (C4 B0) in place as kLower2DottedI's 'i' (\w) and space. (The loop rewrites the
    // code points left to it: one whose C4 is byte 63, whose `next` wrapped to this step's byte 0,
    // is.)
    const uint64_t dotted = _mm512_mask_cmpeq_epi8_mask(lead2 & dotted_on, v,
                                                        _mm512_set1_epi8(static_cast<char>(0xC4))) &
                            _mm512_cmpeq_epi8_mask(next, _mm512_set1_epi8(static_cast<char>(0xB0)));
    __m512i lowered = _mm512_mask_blend_epi8(upper, v, _mm512_or_si512(v, case_bit));
    lowered = _mm512_mask_mov_epi8(lowered, dotted, _mm512_set1_epi8('i'));
    lowered = _mm512_mask_mov_epi8(lowered, dotted << 1, _mm512_set1_epi8(' '));
    _mm512_mask_storeu_epi8(d + i, load, lowered);
    const uint64_t followed = _mm512_mask_cmple_epu8_mask(
        lead2, _mm512_sub_epi8(next, _mm512_set1_epi8(static_cast<char>(0x80))),
        _mm512_set1_epi8(0x3F));
    const __m512i byte_index = _mm512_or_si512(
        _mm512_and_si512(_mm512_slli_epi16(v, 3), _mm512_set1_epi8(static_cast<char>(0xF8))),
        _mm512_and_si512(_mm512_srli_epi16(next, 3), _mm512_set1_epi8(0x07)));
    const __m512i self_byte = _mm512_mask_blend_epi8(
        _mm512_movepi8_mask(byte_index), _mm512_permutex2var_epi8(self0, byte_index, self1),
        _mm512_permutex2var_epi8(self2, byte_index, self3));
    const uint64_t self = _mm512_mask_test_epi8_mask(
        followed, self_byte,
        _mm512_shuffle_epi8(bit_of, _mm512_and_si512(next, _mm512_set1_epi8(0x07))));
    // The first bytes of E2 80 80..BF (U+2000..U+203F).
    const __m512i next2 = _mm512_permutexvar_epi8(next2_index, v);
    const uint64_t punct3 = _mm512_mask_cmple_epu8_mask(
        _mm512_mask_cmpeq_epi8_mask(h & punct3_on, v, _mm512_set1_epi8(static_cast<char>(0xE2))) &
            _mm512_cmpeq_epi8_mask(next, _mm512_set1_epi8(static_cast<char>(0x80))),
        _mm512_sub_epi8(next2, _mm512_set1_epi8(static_cast<char>(0x80))), _mm512_set1_epi8(0x3F));
    // Those of them that end in this step are finished here, whatever the step's other bytes >=
    // 0x80 (the loop takes those: a code point that starts in the last byte or two, whose "next"
    // bytes wrapped around to this step's first, is one of them). A continuation byte is one code
    // point's at most, and a lead byte of 2 (0xC2-0xDF) is never one, so the loop sees the same
    // sequences, well-formed or not, as with all of the step.
    const uint64_t two = (self | dotted) & ~(uint64_t{1} << 63);
    const uint64_t three = punct3 & (~uint64_t{0} >> 2);
    mask_words[i >> 6] = word | (two & self) | (two & self) << 1 | (two & dotted);
    high_words[i >> 6] = h & ~(two | two << 1 | three | three << 1 | three << 2);
  }
}
MAAS_COUNT_AVX512_WARNINGS_ON

// The 32 bytes at p with ASCII A-Z lowercased into out; their ASCII word bits returned, their
// bits of the bytes >= 0x80 in *high.
__attribute__((target("avx2,bmi,popcnt"), always_inline)) inline uint64_t LowerHalfAvx2(
    const char* p, char* out, uint64_t* high) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i upper = _mm256_and_si256(_mm256_cmpgt_epi8(v, _mm256_set1_epi8('A' - 1)),
                                         _mm256_cmpgt_epi8(_mm256_set1_epi8('Z' + 1), v));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                      _mm256_or_si256(v, _mm256_and_si256(upper, _mm256_set1_epi8(0x20))));
  *high = static_cast<uint32_t>(_mm256_movemask_epi8(v));
  __m256i unused = _mm256_setzero_si256();
  return WordBitsAvx2(p, &unused);
}

// LowerPassAvx512 on the AVX2 path: 64 bytes per step as two 32-byte halves (signed compares:
// bytes >= 0x80 are negative, neither upper case nor \w here); the last partial step from a
// zero-padded copy (zero bytes are neither).
__attribute__((target("avx2,bmi,popcnt"))) void LowerPassAvx2(std::string_view text,
                                                              AnalyzerScratch* scratch) {
  const size_t n = text.size();
  scratch->preprocessed.resize(n);
  std::vector<uint64_t>& masks = scratch->masks;
  std::vector<uint64_t>& high = scratch->high_masks;
  SizeLowerPassMasks(n, scratch);
  const char* in = text.data();
  char* d = scratch->preprocessed.data();
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    uint64_t h0, h1;
    masks[i >> 6] = LowerHalfAvx2(in + i, d + i, &h0) | LowerHalfAvx2(in + i + 32, d + i + 32, &h1)
                                                            << 32;
    high[i >> 6] = h0 | h1 << 32;
  }
  if (i < n) {
    alignas(32) char padded[64] = {};
    alignas(32) char lowered[64];
    std::memcpy(padded, in + i, n - i);
    uint64_t h0, h1;
    masks[i >> 6] =
        LowerHalfAvx2(padded, lowered, &h0) | LowerHalfAvx2(padded + 32, lowered + 32, &h1) << 32;
    high[i >> 6] = h0 | h1 << 32;
    std::memcpy(d + i, lowered, n - i);
  }
}
#endif

// LowerWordRunsWith from text[from] on, where a code point does not lowercase in place (a change
// of length: the Kelvin sign, U+023A): scratch->preprocessed holds text[0, from) lowercased; the
// rest is written by LowerFrom (U+0130 in 2 bytes, as before it) and the whole split by
// WordRunsWith.
LowerRunsResult LowerRestAndSplit(CountSimdPath path, std::string_view text, size_t from,
                                  AnalyzerScratch* scratch, AsciiRuns* runs) {
  if (!LowerFrom(text, from, kLower2RunsGeneral, &scratch->preprocessed)) {
    return LowerRunsResult::kIllFormed;
  }
  if (!WordRunsWith(path, scratch->preprocessed, scratch, runs)) return LowerRunsResult::kGeneral;
  return LowerRunsResult::kDone;
}

}  // namespace

LowerRunsResult LowerWordRunsWith(CountSimdPath path, std::string_view text,
                                  AnalyzerScratch* scratch, AsciiRuns* runs) {
  const size_t n = text.size();
  if (n >= std::numeric_limits<uint32_t>::max()) return LowerRunsResult::kGeneral;
  // The lowercased copy, the ASCII bytes' word bits (case does not change them) and the bits of
  // the bytes >= 0x80; on AVX-512 and AVX2 in one pass.
  std::vector<uint64_t>& masks = scratch->masks;
  std::vector<uint64_t>& high = scratch->high_masks;
#if defined(__x86_64__)
  if (path == CountSimdPath::kAvx512) {
    LowerPassAvx512(text, scratch);
  } else if (path == CountSimdPath::kAvx2) {
    LowerPassAvx2(text, scratch);
  } else {
    CopyLowerAscii(text, &scratch->preprocessed);
    AsciiWordMask(text, &masks, &high);
  }
#else
  CopyLowerAscii(text, &scratch->preprocessed);
  AsciiWordMask(text, &masks, &high);
#endif
  // Then each code point >= 0x80, found from the high bits (LowerCodePoint).
  const char16_t* simple = SimpleLowerBmp().data();
  const uint64_t* word_table = WordTable().data();
  const uint32_t* lower2 = Lower2Byte().data();
  char* d = scratch->preprocessed.data();
  size_t skip_to = 0;  // the end of the last code point that LowerCodePoint took
  for (size_t w = 0; w < high.size(); ++w) {
    // Only lead bytes (or stray continuation bytes, which LowerCodePoint refuses): each code
    // point's continuation bytes are dropped from h once it is validated. The common case, a
    // code point of 2 bytes, keeps its position and word bits in registers: no loop-carried
    // store and reload per code point.
    uint64_t word_bits = 0;  // the \w bits of this word's 2-byte code points
    for (uint64_t h = HighBitsFrom(high[w], w, skip_to); h != 0;) {
      const auto bit = static_cast<unsigned>(__builtin_ctzll(h));
      const size_t i = w * 64 + bit;
      // Most code points of European text take 2 bytes: one table entry, no branch on its class.
      const auto b0 = static_cast<unsigned char>(text[i]);
      if (b0 >= 0xC2 && b0 <= 0xDF && i + 1 < n &&
          (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80) {
        uint32_t entry = lower2[(b0 & 0x1Fu) << 6 | (text[i + 1] & 0x3Fu)];
        if ((entry & kLower2RunsGeneral) != 0) {
          if ((entry & kLower2Sigma) == 0) return LowerRestAndSplit(path, text, i, scratch, runs);
          entry = CapitalSigmaEntry(text, i);
        }
        d[i] = static_cast<char>(entry & 0xFF);
        d[i + 1] = static_cast<char>(entry >> 8 & 0xFF);
        const uint64_t bits = entry >> 16 & 3;
        word_bits |= bits << bit;
        h &= ~(uint64_t{3} << bit);
        if (bit == 63) {  // the second byte opens the next word
          masks[w + 1] |= bits >> 1;
          skip_to = i + 2;
        }
        continue;
      }
      // Typeset punctuation (quotes, dashes, ellipses) and most other scripts take 3 bytes: a
      // well-formed one (no overlong form, no surrogate) lowered from the BMP table, the same way.
      if (b0 >= 0xE0 && b0 <= 0xEF && i + 2 < n) {
        const auto b1 = static_cast<unsigned char>(text[i + 1]);
        const auto b2 = static_cast<unsigned char>(text[i + 2]);
        const uint32_t c = (b0 & 0x0Fu) << 12 | (b1 & 0x3Fu) << 6 | (b2 & 0x3Fu);
        if ((b1 & 0xC0) == 0x80 && (b2 & 0xC0) == 0x80 && c >= 0x800 &&
            (c < 0xD800 || c > 0xDFFF)) {
          const char16_t lower = simple[c];
          if (lower < 0x800) {  // none (0) or of fewer bytes
            return LowerRestAndSplit(path, text, i, scratch, runs);
          }
          EncodeBmp(lower, d + i);
          const uint64_t bits = (word_table[lower >> 6] >> (lower & 63) & 1) != 0 ? 7 : 0;
          word_bits |= bits << bit;
          h &= ~(uint64_t{7} << bit);
          if (bit >= 62) {  // the last byte or two open the next word
            masks[w + 1] |= bits >> (64 - bit);
            skip_to = i + 3;
          }
          continue;
        }
      }
      const LowerRunsResult result =
          LowerCodePoint(text, i, simple, word_table, d, masks.data(), &skip_to);
      if (result == LowerRunsResult::kGeneral)
        return LowerRestAndSplit(path, text, i, scratch, runs);
      if (result != LowerRunsResult::kDone) return result;
      h = HighBitsFrom(h, w, skip_to);
    }
    masks[w] |= word_bits;
  }
  RunsOfWordMasks(path, scratch->preprocessed, scratch, runs);
  return LowerRunsResult::kDone;
}

LowerRunsResult LowerWordRuns(std::string_view text, AnalyzerScratch* scratch, AsciiRuns* runs) {
  return LowerWordRunsWith(BestCountSimdPath(), text, scratch, runs);
}

bool WordRuns(std::string_view doc, AnalyzerScratch* scratch, AsciiRuns* runs) {
  return WordRunsWith(BestCountSimdPath(), doc, scratch, runs);
}

namespace {

// The offset of the first ill-formed sequence of `text`, or text.size() when it is valid UTF-8,
// code point by code point (DecodeOne).
size_t FirstIllFormed(std::string_view text) {
  size_t i = 0;
  while (true) {
    i = SkipAscii(text, i);
    if (i >= text.size()) return text.size();
    const size_t start = i;
    if (DecodeOne(text, &i) < 0) return start;
  }
}

}  // namespace

bool ValidUtf8With(CountSimdPath path, std::string_view text) {
#if defined(__x86_64__)
  if (path != CountSimdPath::kBaseline) return ValidUtf8Avx2(text);
#else
  (void)path;
#endif
  return FirstIllFormed(text) == text.size();
}

absl::Status ValidateUtf8(std::string_view text) {
  // Most texts are valid: the vector check first, the offset of the error only when there is one.
  if (ValidUtf8With(BestCountSimdPath(), text)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "text is not valid UTF-8: ill-formed sequence at byte offset ", FirstIllFormed(text)));
}

std::string PythonLower(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  AppendPythonLower(text, 0, text.size(), &out);
  return out;
}

bool AssignedAfterUnicode14(int32_t c) {
  if (c < 0 || c > 0x10FFFF) return false;
  UVersionInfo age;
  u_charAge(c, age);
  return age[0] > 14;
}

bool IsWordCodePoint(int32_t c) {
  if (c < 0 || c > 0x10FFFF) return false;
  if (c == 0x5F) return true;
  switch (u_charType(c)) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      // Assigned in Unicode 14.0 (Python 3.11), not only in ICU's later version.
      return !AssignedAfterUnicode14(c);
    default:
      return false;
  }
}

std::vector<std::string> DefaultTokenize(std::string_view text) {
  std::vector<std::string> tokens;
  size_t i = 0;
  size_t run_start = 0;
  int run_length = 0;  // Code points in the current run of word code points (capped at 2).
  const auto flush = [&](size_t end) {
    if (run_length >= 2) tokens.emplace_back(text.substr(run_start, end - run_start));
    run_length = 0;
  };
  while (i < text.size()) {
    const size_t start = i;
    const int32_t c = DecodeOne(text, &i);
    if (c < 0) break;  // Unreachable for validated input.
    if (IsWordCodePoint(c)) {
      if (run_length == 0) run_start = start;
      if (run_length < 2) ++run_length;
    } else {
      flush(start);
    }
  }
  flush(i);
  return tokens;
}

int64_t StopWords::MemoryBytes() const {
  return static_cast<int64_t>(table_.MemoryBytes() + given_.capacity() * sizeof(uint32_t));
}

std::vector<std::string_view> EnglishStopWords() {
  return std::vector<std::string_view>(kEnglishStopWords.begin(), kEnglishStopWords.end());
}

bool IsEnglishStopWord(std::string_view word) {
  return std::binary_search(kEnglishStopWords.begin(), kEnglishStopWords.end(), word);
}

std::vector<std::string> AnalyzeWords(std::string_view text, const WordAnalyzerOptions& options) {
  std::vector<std::string> tokens =
      options.lowercase ? DefaultTokenize(PythonLower(text)) : DefaultTokenize(text);
  if (options.english_stop_words) {
    tokens.erase(std::remove_if(tokens.begin(), tokens.end(),
                                [](const std::string& t) { return IsEnglishStopWord(t); }),
                 tokens.end());
  }
  const size_t max_n = options.ngram_max;
  if (max_n <= 1) return tokens;
  size_t min_n = options.ngram_min;
  std::vector<std::string> out;
  if (min_n == 1) {
    out = tokens;
    min_n = 2;
  }
  const size_t top = std::min(max_n, tokens.size());
  for (size_t n = min_n; n <= top; ++n) {
    for (size_t i = 0; i + n <= tokens.size(); ++i) {
      std::string gram = tokens[i];
      for (size_t k = 1; k < n; ++k) absl::StrAppend(&gram, " ", tokens[i + k]);
      out.push_back(std::move(gram));
    }
  }
  return out;
}

absl::StatusOr<std::string_view> DecodeUtf8(std::string_view text, DecodeError mode,
                                            std::string* storage) {
  const absl::Status valid = ValidateUtf8(text);
  if (valid.ok()) return text;
  if (mode == DecodeError::kStrict) return valid;
  storage->clear();
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    if (DecodeOne(text, &i) >= 0) {
      storage->append(text.data() + start, i - start);
      continue;
    }
    i = start + IllFormedLength(text, start);
    if (mode == DecodeError::kReplace) storage->append("\xEF\xBF\xBD");
  }
  return std::string_view(*storage);
}

bool IsPythonWhitespace(int32_t c) {
  if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

namespace {

// NFKD with Python 3.11's Unicode 14.0: ICU's NFKD applied to the code points Unicode 14.0 assigns
// only; any other code point passes unchanged and is a normalization boundary (no reordering
// across it), as a starter without decomposition: what Python 3.11 makes of a code point
// assigned later (unassigned there). ICU's filtered normalizer for an older Unicode version, as
// IDNA2003 uses it for Unicode 3.2. Built once, then read-only; null if ICU failed.
const icu::Normalizer2* PythonNfkd() {
  static const icu::Normalizer2* const nfkd = []() -> const icu::Normalizer2* {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* base = icu::Normalizer2::getNFKDInstance(status);
    if (U_FAILURE(status)) return nullptr;
    auto* unicode14 =
        new icu::UnicodeSet(icu::UnicodeString(kUnicode14AssignedSet, -1, US_INV), status);
    if (U_FAILURE(status)) return nullptr;
    unicode14->freeze();
    return new icu::FilteredNormalizer2(*base, *unicode14);
  }();
  return nfkd;
}

// AssignedAfterUnicode14 of each BMP code point c, as bit c (8 KB), and bit 0x10000 (word 1024) set
// when some code point of 1 or 2 UTF-8 bytes (< U+0800) is one (none is in ICU 72); computed once,
// then read-only.
const std::vector<uint64_t>& AssignedAfterUnicode14Bmp() {
  static const std::vector<uint64_t>* const bits = [] {
    auto* b = new std::vector<uint64_t>(0x10000 / 64 + 1, 0);
    for (int32_t c = 0; c < 0x10000; ++c) {
      if (!AssignedAfterUnicode14(c)) continue;
      (*b)[c >> 6] |= uint64_t{1} << (c & 63);
      if (c < 0x800) (*b)[0x10000 / 64] = 1;
    }
    return b;
  }();
  return *bits;
}

// False when valid UTF-8 `text` holds no AssignedAfterUnicode14 code point for sure: none beyond
// the BMP (no byte >= 0xF0), none of the BMP's (then ICU's plain NFKD is Python's, and cheaper
// than the filtered one). Reads only the lead bytes of 3-byte sequences.
bool MayHoldAssignedAfterUnicode14(std::string_view text) {
  const uint64_t* after = AssignedAfterUnicode14Bmp().data();
  if (after[0x10000 / 64] != 0) return true;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n; ++i) {
    if (p[i] < 0xE0) continue;
    if (p[i] >= 0xF0) return true;
    const int32_t c = (p[i] & 0x0F) << 12 | (p[i + 1] & 0x3F) << 6 | (p[i + 2] & 0x3F);
    if ((after[c >> 6] >> (c & 63) & 1) != 0) return true;
    i += 2;
  }
  return false;
}

}  // namespace

namespace {

// What StripAccents makes of code point c alone, appended to *out: its NFKD (`nfkd`: ICU's; an
// AssignedAfterUnicode14 code point has none in Python 3.11 and counts as class 0) without the
// code points the mode drops (kAscii: those >= 0x80; kUnicode: those of combining class != 0).
// NFKD's only step across code points, the canonical reordering, moves code points of class != 0
// among themselves, and both modes drop all of them (ASCII ones have class 0): a text's result is
// therefore its code points' results in order.
void AppendStrippedCodePoint(UChar32 c, StripAccentsMode mode, const icu::Normalizer2& nfkd,
                             std::string* out) {
  if (AssignedAfterUnicode14(c)) {
    if (mode == StripAccentsMode::kUnicode) AppendUtf8(c, out);
    return;
  }
  UErrorCode status = U_ZERO_ERROR;
  const icu::UnicodeString normalized = nfkd.normalize(icu::UnicodeString(c), status);
  if (U_FAILURE(status)) {
    AppendUtf8(c, out);
    return;
  }
  for (int32_t i = 0; i < normalized.length();) {
    const UChar32 d = normalized.char32At(i);
    i += U16_LENGTH(d);
    const bool keep = mode == StripAccentsMode::kAscii ? d < 0x80 : u_getCombiningClass(d) == 0;
    if (keep) AppendUtf8(d, out);
  }
}

// AppendStrippedCodePoint of every BMP code point in both modes, as UTF-8 slices of one arena:
// built once (~64 K decompositions), then read-only; null if ICU has no NFKD.
struct StrippedBmp {
  const icu::Normalizer2* nfkd = nullptr;
  std::string arena;
  // Per mode (kAscii, kUnicode) and code point: offset << 8 | length in the arena.
  std::vector<uint32_t> slices[2];
};

const StrippedBmp* SharedStrippedBmp() {
  static const StrippedBmp* const table = []() -> const StrippedBmp* {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* nfkd = icu::Normalizer2::getNFKDInstance(status);
    if (U_FAILURE(status) || nfkd == nullptr) return nullptr;
    auto* t = new StrippedBmp;
    t->nfkd = nfkd;
    std::string one;
    for (const StripAccentsMode mode : {StripAccentsMode::kAscii, StripAccentsMode::kUnicode}) {
      std::vector<uint32_t>& slices = t->slices[mode == StripAccentsMode::kUnicode ? 1 : 0];
      slices.assign(0x10000, 0);
      for (UChar32 c = 0; c < 0x10000; ++c) {
        if (U_IS_SURROGATE(c)) continue;  // never in valid UTF-8
        one.clear();
        AppendStrippedCodePoint(c, mode, *nfkd, &one);
        slices[c] = static_cast<uint32_t>(t->arena.size()) << 8 | static_cast<uint32_t>(one.size());
        t->arena += one;
      }
    }
    return t;
  }();
  return table;
}

}  // namespace

void StripAccentsInto(std::string_view text, StripAccentsMode mode, std::string* out) {
  out->clear();
  const StrippedBmp* table = mode == StripAccentsMode::kNone ? nullptr : SharedStrippedBmp();
  if (table == nullptr) {  // nothing to strip, or ICU without NFKD
    out->assign(text);
    return;
  }
  out->reserve(text.size());
  const uint32_t* slices = table->slices[mode == StripAccentsMode::kUnicode ? 1 : 0].data();
  const char* arena = table->arena.data();
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const size_t ascii_end = SkipAscii(text, i);  // ASCII maps to itself in both modes
    out->append(text.data() + i, ascii_end - i);
    i = ascii_end;
    while (i < n && static_cast<unsigned char>(text[i]) >= 0x80) {
      size_t length = 0;
      const int32_t c = DecodeWellFormed(text.data() + i, &length);
      i += length;
      if (c < 0x10000) {
        const uint32_t slice = slices[c];
        out->append(arena + (slice >> 8), slice & 0xFF);
      } else {
        AppendStrippedCodePoint(c, mode, *table->nfkd, out);
      }
    }
  }
}

std::string StripAccentsWholeText(std::string_view text, StripAccentsMode mode) {
  if (mode == StripAccentsMode::kNone || IsAscii(text)) return std::string(text);
  UErrorCode status = U_ZERO_ERROR;
  const bool filtered = MayHoldAssignedAfterUnicode14(text);
  const icu::Normalizer2* nfkd =
      filtered ? PythonNfkd() : icu::Normalizer2::getNFKDInstance(status);
  if (nfkd == nullptr || U_FAILURE(status)) return std::string(text);
  const icu::UnicodeString source = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  const icu::UnicodeString normalized = nfkd->normalize(source, status);
  if (U_FAILURE(status)) return std::string(text);
  std::string out;
  out.reserve(text.size());
  for (int32_t i = 0; i < normalized.length();) {
    const UChar32 c = normalized.char32At(i);
    i += U16_LENGTH(c);
    // Combining class 0 in Unicode 14.0 (Python's unicodedata.combining).
    const bool keep = mode == StripAccentsMode::kAscii
                          ? c < 0x80
                          : u_getCombiningClass(c) == 0 || (filtered && AssignedAfterUnicode14(c));
    if (keep) AppendUtf8(c, &out);
  }
  return out;
}

std::string StripAccents(std::string_view text, StripAccentsMode mode) {
  std::string out;
  StripAccentsInto(text, mode, &out);
  return out;
}

bool Analyzer::PatternRuns(std::string_view doc, bool lower_ascii, AnalyzerScratch* scratch,
                           AsciiRuns* runs) const {
  // The run scanner indexes the text as ICU's UTF-8 macros do, with int32_t.
  if (doc.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) return false;
  const auto [starts, ends] = RunBoundArrays(doc.size(), scratch);
  runs->count = options_.token_pattern->FindRunBounds(doc, lower_ascii, starts, ends);
  runs->starts = starts;
  runs->ends = ends;
  return true;
}

bool Analyzer::AsciiTermRuns(std::string_view text, AnalyzerScratch* scratch,
                             AsciiRuns* runs) const {
  const TokenPattern* pattern = options_.token_pattern.get();
  if (pattern == nullptr) return AsciiWordRuns(text, scratch, runs);
  // The runs of one set (\w+, \S+): AsciiWordRuns's pass on the set's bytes (PatternRuns's bound
  // on the length holds for its scanner only).
  const AsciiByteSet* set = pattern->ascii_run_set(options_.lowercase);
  if (set != nullptr && text.size() < std::numeric_limits<uint32_t>::max()) {
    return AsciiSetRuns(text, *set, pattern->run_min_length(), scratch, runs);
  }
  return IsAscii(text) && PatternRuns(text, options_.lowercase, scratch, runs);
}

bool Analyzer::TermRuns(std::string_view doc, AnalyzerScratch* scratch, AsciiRuns* runs) const {
  const TokenPattern* pattern = options_.token_pattern.get();
  if (pattern == nullptr) return WordRuns(doc, scratch, runs);
  // The runs of one set: as AsciiTermRuns on ASCII text, else NonAsciiSetRuns.
  const AsciiByteSet* set = pattern->ascii_run_set(/*lower_ascii=*/false);
  if (set != nullptr && doc.size() < std::numeric_limits<uint32_t>::max()) {
    SetRunsWith(BestCountSimdPath(), doc, *pattern, scratch, runs);
    return true;
  }
  return PatternRuns(doc, /*lower_ascii=*/false, scratch, runs);
}

bool Analyzer::WellFormedTermRuns(std::string_view text, AnalyzerScratch* scratch, AsciiRuns* runs,
                                  std::string_view* doc, bool* lower) const {
  if (AsciiTermRuns(text, scratch, runs)) {
    *doc = text;
    *lower = options_.lowercase;
    return true;
  }
  // Code points >= 0x80: validated, lowercased and split in one pass, when preprocessing is only
  // lowercasing, the pattern the default one and the text's code points allow it.
  if (!LowerTermRunsApply() || LowerWordRuns(text, scratch, runs) != LowerRunsResult::kDone) {
    return false;
  }
  *doc = scratch->preprocessed;
  *lower = false;
  return true;
}

bool Analyzer::TextTermRuns(std::string_view text, AnalyzerScratch* scratch, AsciiRuns* runs,
                            std::string_view* doc, bool* lower) const {
  if (WellFormedTermRuns(text, scratch, runs, doc, lower)) return true;
  *doc = Preprocess(text, scratch);
  *lower = false;
  return TermRuns(*doc, scratch, runs);
}

std::string_view Analyzer::Preprocess(std::string_view text, AnalyzerScratch* scratch) const {
  std::string_view doc = text;
  if (options_.lowercase) {
    LowerInto(doc, &scratch->preprocessed);
    doc = scratch->preprocessed;
  }
  if (options_.strip_accents != StripAccentsMode::kNone && !IsAscii(doc)) {
    StripAccentsInto(doc, options_.strip_accents, &scratch->work);
    scratch->preprocessed.swap(scratch->work);
    doc = scratch->preprocessed;
  }
  return doc;
}

void Analyzer::Analyze(std::string_view text, AnalyzerScratch* scratch,
                       absl::FunctionRef<void(std::string_view)> emit) const {
  AnalyzeBatches(text, scratch, [&](absl::Span<const std::string_view> terms) {
    for (const std::string_view term : terms) emit(term);
  });
}

void Analyzer::AnalyzeBatches(std::string_view text, AnalyzerScratch* scratch,
                              BatchEmit emit) const {
  const std::string_view doc = Preprocess(text, scratch);
  switch (options_.kind) {
    case AnalyzerKind::kWord:
      return WordTerms(doc, scratch, emit);
    case AnalyzerKind::kChar:
      return CharTerms(doc, scratch, emit);
    case AnalyzerKind::kCharWb:
      return CharWbTerms(doc, scratch, emit);
  }
}

void Analyzer::WordTokens(std::string_view doc, AnalyzerScratch* scratch) const {
  std::vector<std::string_view>& tokens = scratch->tokens;
  tokens.clear();
  const bool filter = !options_.stop_words.empty();
  if (options_.token_pattern != nullptr) {
    // A custom token_pattern (token_pattern.h): its matches, after lowercasing and accents.
    options_.token_pattern->FindTokens(doc, &scratch->token_matcher, [&](std::string_view token) {
      if (!filter || !options_.stop_words.contains(token)) {
        tokens.push_back(token);
      }
    });
    return;
  }
  const size_t n = doc.size();
  AsciiRuns runs;
  if (WordRuns(doc, scratch, &runs)) {
    const size_t num_starts = runs.count;
    const uint32_t* starts = runs.starts;
    const uint32_t* ends = runs.ends;
    tokens.resize(num_starts);
    std::string_view* out = tokens.data();
    size_t kept = 0;
    for (size_t k = 0; k < num_starts; ++k) {
      const uint32_t length = ends[k] - starts[k];
      out[kept] = std::string_view(doc.data() + starts[k], length);
      kept += length >= 2 ? 1 : 0;
    }
    tokens.resize(kept);
    if (filter) {
      tokens.erase(
          std::remove_if(tokens.begin(), tokens.end(),
                         [&](std::string_view t) { return options_.stop_words.contains(t); }),
          tokens.end());
    }
    return;
  }
  size_t i = 0;
  while (i < n) {
    // Skip non-word code points, then take the maximal run of word code points.
    const unsigned char b = static_cast<unsigned char>(doc[i]);
    if (b < 0x80) {
      if (!kAsciiWord[b]) {
        ++i;
        continue;
      }
    } else {
      size_t next = i;
      if (!IsWordCodePoint(DecodeOne(doc, &next))) {
        i = next;
        continue;
      }
    }
    const size_t start = i;
    size_t code_points = 0;
    while (i < n) {
      const unsigned char c = static_cast<unsigned char>(doc[i]);
      if (c < 0x80) {
        if (!kAsciiWord[c]) break;
        ++i;
      } else {
        size_t next = i;
        if (!IsWordCodePoint(DecodeOne(doc, &next))) break;
        i = next;
      }
      ++code_points;
    }
    if (code_points < 2) continue;
    const std::string_view token = doc.substr(start, i - start);
    if (filter && options_.stop_words.contains(token)) {
      continue;
    }
    tokens.push_back(token);
  }
}

void Analyzer::WordTerms(std::string_view doc, AnalyzerScratch* scratch, BatchEmit emit) const {
  WordTokens(doc, scratch);
  const std::vector<std::string_view>& tokens = scratch->tokens;
  const size_t max_n = options_.ngram_max;
  size_t min_n = options_.ngram_min;
  if (min_n <= 1) {
    if (!tokens.empty()) emit(absl::MakeConstSpan(tokens));
    min_n = 2;
  }
  const size_t top = std::min(max_n, tokens.size());
  if (min_n > top) return;
  size_t token_bytes = 0;
  for (const std::string_view t : tokens) token_bytes += t.size();
  std::string& grams = scratch->grams;
  std::vector<std::string_view>& terms = scratch->terms;
  for (size_t n = min_n; n <= top; ++n) {
    // Each token is in at most n grams of n tokens, each with n - 1 spaces: the buffer never
    // reallocates, so the views stay valid.
    grams.clear();
    grams.reserve(n * (token_bytes + tokens.size()));
    terms.clear();
    for (size_t k = 0; k + n <= tokens.size(); ++k) {
      const size_t start = grams.size();
      grams.append(tokens[k].data(), tokens[k].size());
      for (size_t m = 1; m < n; ++m) {
        grams.push_back(' ');
        grams.append(tokens[k + m].data(), tokens[k + m].size());
      }
      terms.emplace_back(grams.data() + start, grams.size() - start);
    }
    emit(absl::MakeConstSpan(terms));
  }
}

void Analyzer::CharTerms(std::string_view doc, AnalyzerScratch* scratch, BatchEmit emit) const {
  // re.sub(r"\s\s+", " ", doc): runs of >= 2 whitespace code points become one space.
  std::string& text = scratch->work;
  text.clear();
  size_t i = 0;
  while (i < doc.size()) {
    const size_t start = i;
    const int32_t c = DecodeOne(doc, &i);
    if (!IsPythonWhitespace(c)) {
      text.append(doc.data() + start, i - start);
      continue;
    }
    size_t j = i;
    size_t run = 1, run_end = i;
    while (j < doc.size()) {
      const size_t k = j;
      const int32_t d = DecodeOne(doc, &j);
      if (!IsPythonWhitespace(d)) {
        j = k;
        break;
      }
      ++run;
      run_end = j;
    }
    if (run >= 2) {
      text.push_back(' ');
    } else {
      text.append(doc.data() + start, run_end - start);
    }
    i = run_end;
  }
  std::vector<uint32_t>& off = scratch->offsets;
  CodePointOffsets(text, &off);
  const size_t length = off.size() - 1;
  const std::string_view view(text);
  std::vector<std::string_view>& terms = scratch->terms;
  terms.clear();
  const size_t top = std::min<size_t>(options_.ngram_max, length);
  for (size_t n = options_.ngram_min; n <= top; ++n) {
    for (size_t k = 0; k + n <= length; ++k) {
      terms.push_back(view.substr(off[k], off[k + n] - off[k]));
      if (terms.size() == kTermBatch) {
        emit(absl::MakeConstSpan(terms));
        terms.clear();
      }
    }
  }
  if (!terms.empty()) emit(absl::MakeConstSpan(terms));
}

void Analyzer::CharWbWords(std::string_view text, AnalyzerScratch* scratch, BatchEmit emit) const {
  CharWbPaddedWords(Preprocess(text, scratch), scratch, emit);
}

void Analyzer::CharWbPaddedWords(std::string_view doc, AnalyzerScratch* scratch,
                                 BatchEmit emit) const {
  // A word between two ' ' bytes is viewed in place; others are copied padded into `padded`,
  // reserved so that it never reallocates within a batch.
  std::string& padded = scratch->grams;
  padded.clear();
  padded.reserve(3 * doc.size() + 8);
  std::vector<std::string_view>& words = scratch->tokens;
  words.clear();
  const size_t size = doc.size();
  size_t i = 0;
  while (i < size) {
    // Skip whitespace.
    const unsigned char b = static_cast<unsigned char>(doc[i]);
    if (b < 0x80) {
      if (kAsciiSpace[b]) {
        ++i;
        continue;
      }
    } else {
      size_t next = i;
      if (IsPythonWhitespace(DecodeOne(doc, &next))) {
        i = next;
        continue;
      }
    }
    // The word up to the next whitespace.
    const size_t start = i;
    while (i < size) {
      const unsigned char c = static_cast<unsigned char>(doc[i]);
      if (c < 0x80) {
        if (kAsciiSpace[c]) break;
        ++i;
      } else {
        size_t next = i;
        if (IsPythonWhitespace(DecodeOne(doc, &next))) break;
        i = next;
      }
    }
    if (start > 0 && doc[start - 1] == ' ' && i < size && doc[i] == ' ') {
      words.push_back(doc.substr(start - 1, i - start + 2));
    } else {
      const size_t at = padded.size();
      padded.push_back(' ');
      padded.append(doc.data() + start, i - start);
      padded.push_back(' ');
      words.emplace_back(padded.data() + at, padded.size() - at);
    }
    if (words.size() == kTermBatch) {
      emit(absl::MakeConstSpan(words));
      words.clear();
      padded.clear();
    }
  }
  if (!words.empty()) emit(absl::MakeConstSpan(words));
}

void Analyzer::CharWbGrams(std::string_view w, std::vector<uint32_t>* offsets,
                           std::vector<std::string_view>* out) const {
  const size_t min_n = options_.ngram_min;
  const size_t max_n = options_.ngram_max;
  if (IsAscii(w)) {
    const size_t length = w.size();
    for (size_t n = min_n; n <= max_n; ++n) {
      if (n >= length) {
        out->push_back(w);  // a short word counts once
        return;
      }
      for (size_t k = 0; k + n <= length; ++k) out->push_back(w.substr(k, n));
    }
    return;
  }
  std::vector<uint32_t>& off = *offsets;
  CodePointOffsets(w, &off);
  const size_t length = off.size() - 1;
  for (size_t n = min_n; n <= max_n; ++n) {
    if (n >= length) {
      out->push_back(w);
      return;
    }
    for (size_t k = 0; k + n <= length; ++k) out->push_back(w.substr(off[k], off[k + n] - off[k]));
  }
}

void Analyzer::CharWbTerms(std::string_view doc, AnalyzerScratch* scratch, BatchEmit emit) const {
  std::vector<std::string_view>& terms = scratch->terms;
  terms.clear();
  CharWbPaddedWords(doc, scratch, [&](absl::Span<const std::string_view> words) {
    for (const std::string_view w : words) {
      CharWbGrams(w, &scratch->offsets, &terms);
      if (terms.size() >= kTermBatch) {
        emit(absl::MakeConstSpan(terms));
        terms.clear();
      }
    }
    if (!terms.empty()) emit(absl::MakeConstSpan(terms));  // before the words' buffer is reused
    terms.clear();
  });
}

size_t AnalyzerScratch::TextBufferBytes() const {
  size_t bytes = 0;
  ForEachTextBuffer(
      *this, [&bytes](const auto& buffer) { bytes += buffer.capacity() * sizeof(buffer[0]); });
  return bytes;
}

void AnalyzerScratch::FreeTextBuffers() {
  ForEachTextBuffer(*this,
                    [](auto& buffer) { std::remove_reference_t<decltype(buffer)>().swap(buffer); });
}

}  // namespace maas::discriminative
