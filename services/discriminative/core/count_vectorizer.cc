#include "services/discriminative/core/count_vectorizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/convert/take_repeated.h"
#include "common/status/status_macros.h"
#include "common/store/held_bytes.h"
#include "services/discriminative/core/count_simd.h"

namespace maas::discriminative {
namespace {

constexpr std::string_view kDefaultTokenPattern = R"((?u)\b\w\w+\b)";
constexpr size_t kStopCheckInterval = 1024;

absl::StatusOr<DocumentFrequencyBound> BoundFromProto(const v1::DocumentFrequency& df,
                                                      absl::string_view name,
                                                      DocumentFrequencyBound unset) {
  switch (df.value_case()) {
    case v1::DocumentFrequency::VALUE_NOT_SET:
      return unset;
    case v1::DocumentFrequency::kCount:
      if (df.count() < 1) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, " count must be >= 1 (or give a fraction in [0, 1]); got 0"));
      }
      return DocumentFrequencyBound{false, static_cast<double>(df.count())};
    case v1::DocumentFrequency::kFraction:
      if (!(df.fraction() >= 0.0 && df.fraction() <= 1.0)) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, " fraction must be in [0, 1]; got ", df.fraction()));
      }
      return DocumentFrequencyBound{true, df.fraction()};
  }
  return unset;
}

double DocCount(const DocumentFrequencyBound& bound, size_t num_documents) {
  return bound.is_fraction ? bound.value * static_cast<double>(num_documents) : bound.value;
}

absl::Status CheckTermList(const google::protobuf::RepeatedPtrField<std::string>& terms,
                           absl::string_view name) {
  if (static_cast<size_t>(terms.size()) > kMaxStopWords && name == "stop_word_list") {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " has ", terms.size(), " entries; at most ", kMaxStopWords));
  }
  for (int i = 0; i < terms.size(); ++i) {
    if (terms[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(name, "[", i, "] is empty"));
    }
    const absl::Status valid = ValidateUtf8(terms[i]);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(name, "[", i, "]: ", valid.message()));
    }
  }
  return absl::OkStatus();
}

// The tag of the fitter's memo (its scratch serves no other vectorizer).
constexpr uint64_t kFitterMemoTag = 1;

// TermTable::Assign's arena of n terms, term_of(i) the i-th: both allocated once, at their size.
struct TermArena {
  LargeString bytes{LargeArrayAllocator<char>(/*huge=*/true)};
  LargeVector<size_t> offsets{LargeArrayAllocator<size_t>(/*huge=*/true)};
};
template <typename TermOf>
TermArena ArenaOf(size_t n, const TermOf& term_of) {
  TermArena arena;
  arena.offsets.resize(n + 1);
  arena.offsets[0] = 0;
  for (size_t i = 0; i < n; ++i) arena.offsets[i + 1] = arena.offsets[i] + term_of(i).size();
  arena.bytes.reserve(arena.offsets[n]);
  // term_of(i) may lie anywhere (a fit's kept terms in feature order): requested ahead.
  constexpr size_t kAhead = 8;
  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) __builtin_prefetch(term_of(i + kAhead).data());
    const std::string_view term = term_of(i);
    arena.bytes.append(term.data(), term.size());
  }
  return arena;
}

// char_wb counting through the scratch's word memo (ForEachCharWbWordIds, `lookup` its id_of):
// each word's ids counted into scratch->dense and scratch->ids.
template <typename Lookup>
void CountCharWbWords(const Analyzer& analyzer, std::string_view text, uint64_t tag,
                      AnalyzerScratch* scratch, Lookup lookup) {
  FeatureIds& ids = scratch->ids;
  ForEachCharWbWordIds(analyzer, text, tag, scratch, lookup,
                       [&](const uint32_t* word_ids, size_t n) {
                         double* dense = scratch->dense.data();  // lookup may grow it (fitting)
                         for (size_t i = 0; i < n; ++i) {
                           double& count = dense[word_ids[i]];
                           if (count == 0.0) ids.push_back(word_ids[i]);
                           count += 1.0;
                         }
                       });
}

// Counts feature `index` of the current text: `ids` collects the distinct indices, `dense` (sized
// beyond every index, all 0 between texts) their counts.
inline void CountFeature(uint32_t index, FeatureIds* ids, double* dense) {
  double& count = dense[index];
  if (count == 0.0) ids->push_back(index);
  count += 1.0;
}

// Calls count(byte) for each 1-byte run of `runs` over `doc`, its byte lowercased when `lower`:
// the terms of one ASCII character of a pattern whose tokens may be one code point (\w+, \S+),
// which the run kernels leave out (they take the runs of 2 bytes or more). A 1-byte run of valid
// UTF-8 is an ASCII character.
template <typename Count>
void ForEachSingleByteRun(std::string_view doc, const AsciiRuns& runs, bool lower, Count count) {
  for (size_t k = 0; k < runs.count; ++k) {
    if (runs.ends[k] - runs.starts[k] != 1) continue;
    auto byte = static_cast<unsigned char>(doc[runs.starts[k]]);
    if (lower && byte >= 'A' && byte <= 'Z') byte = static_cast<unsigned char>(byte + 32);
    count(byte);
  }
}

// CountFeature for the m ids of a group (kNotFound ones skipped) without a branch per id: whether
// an id is new to the text is data (a random 0/1 for mixed text), so it is added to the length
// rather than branched on. `ids` is grown by m up front and trimmed after. Returns how many of
// the m were found (not kNotFound).
inline size_t CountFeatures(const uint32_t* found, size_t m, FeatureIds* ids, double* dense) {
  size_t n = ids->size();
  ids->resize(n + m);
  uint32_t* out = ids->data();
  size_t absent = 0;
  for (size_t i = 0; i < m; ++i) {
    const uint32_t id = found[i];
    if (id == TermTable::kNotFound) {  // rare in transform, never in fit
      ++absent;
      continue;
    }
    double& count = dense[id];
    out[n] = id;
    n += count == 0.0 ? 1 : 0;
    count += 1.0;
  }
  ids->resize(n);
  return m - absent;
}

// The capacity of a group of lookups (CountAsciiUnigrams): a group takes up to kGroup candidate
// terms, and one AVX-512 step may add 8 more to a group not yet full, plus a full 8-lane store.
constexpr size_t kGroup = 64;
constexpr size_t kGroupRoom = kGroup + 16;

// The lookups with or without the table's filter (AnalyzerScratch::lookup_filter), as the text
// before suggests: on while more than 1/4 of the tokens looked up are absent from the vocabulary,
// off again below 1/8. count(std::true_type or std::false_type, &tokens, &hits) runs one path's
// lookups of the text with the filter on or off, adding the tokens looked up and those found.
template <typename Count>
inline void CountWithAdaptiveFilter(AnalyzerScratch* scratch, Count count) {
  size_t tokens = 0, hits = 0;
  if (scratch->lookup_filter) {
    count(std::true_type(), &tokens, &hits);
    if (8 * (tokens - hits) < tokens) scratch->lookup_filter = false;
  } else {
    count(std::false_type(), &tokens, &hits);
    if (4 * (tokens - hits) > tokens) scratch->lookup_filter = true;
  }
}

// A token longer than TermTable::kMaxPaddedKey bytes (rare): looked up on its own and counted.
inline void CountLongToken(const char* p, size_t length, bool lower, const TermTable& index,
                           AnalyzerScratch* scratch) {
  std::string& term = scratch->gram;
  term.assign(p, length);
  if (lower) {
    for (char& c : term) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  }
  const uint32_t id = index.Find(term);
  if (id != TermTable::kNotFound) CountFeature(id, &scratch->ids, scratch->dense.data());
}

// The key of the token of `length` <= kMaxPaddedKey bytes at base + start, read from a zero-padded
// copy in `tail` when it lies within 16 bytes of the text's end.
inline TermTable::Key ShortTokenKey(const char* base, size_t size, uint32_t start, size_t length,
                                    bool lower, char (&tail)[32]) {
  const char* p = base + start;
  if (start + 16 > size) {
    std::memset(tail, 0, sizeof(tail));
    std::memcpy(tail, p, length);
    p = tail;
  }
  return TermTable::PaddedKeyOf(p, length, lower);
}

// A group's candidate terms: keys lo[i], hi[i] and home slots homes[i]. One struct, so that the
// probe loop addresses all three from one register (as three pointers GCC spilled them and
// reloaded each from the stack for every token).
struct GroupKeys {
  alignas(64) uint64_t lo[kGroupRoom];
  alignas(64) uint64_t hi[kGroupRoom];
  alignas(64) size_t homes[kGroupRoom];
};

// The second half of a group: probes the slots of its m candidates (their home slots already
// requested from memory) and counts the found features. Returns how many of the m were found.
inline size_t ProbeAndCount(const GroupKeys& group, size_t m, const TermTable& index,
                            AnalyzerScratch* scratch) {
  const uint64_t* lo = group.lo;
  const uint64_t* hi = group.hi;
  const size_t* homes = group.homes;
  uint32_t found[kGroupRoom];
  double* dense = scratch->dense.data();
  const char* feature_rows = scratch->feature_rows;
  const size_t stride = scratch->feature_row_stride;
  if (!index.has_slots()) return 0;
  for (size_t i = 0; i < m; ++i) {
    found[i] = index.FindShortFrom(lo[i], hi[i], homes[i]);
    if (found[i] != TermTable::kNotFound) {
      __builtin_prefetch(dense + found[i]);
      if (feature_rows != nullptr) __builtin_prefetch(feature_rows + found[i] * stride);
    }
  }
  return CountFeatures(found, m, &scratch->ids, dense);
}

// CountAsciiUnigramsWith on the baseline path. The keys are built from the raw text (lowercased
// in registers when `lower`): no preprocessed copy, no token views, no branch on a token's length
// (a run within 16 bytes of the text's end is read from a zero-padded copy; one longer than 15
// bytes, rare, is looked up on its own). With kFilter only the terms the table's filter lets
// through are probed; without, every token is (as on the AVX-512 path). Adds the tokens of 2 to 15
// bytes looked up to *tokens and the candidates found to *hits.
template <bool kFilter>
void CountAsciiUnigramsBaseline(std::string_view text, const AsciiRuns& runs, bool lower,
                                const TermTable& index, AnalyzerScratch* scratch, size_t* tokens,
                                size_t* hits) {
  // Plain arrays (TermTable::Key's members have initializers: an array of them would be zeroed on
  // every call).
  GroupKeys group;
  uint64_t* lo = group.lo;
  uint64_t* hi = group.hi;
  size_t* homes = group.homes;
  uint64_t hashes[kGroup];
  char tail[32];
  const char* base = text.data();
  const size_t size = text.size();
  size_t k = 0;
  while (k < runs.count) {
    // The slots of a group are requested from memory together (each lookup in a large vocabulary
    // is mostly waiting for a cache miss), then probed.
    size_t m = 0;
    for (; m < kGroup && k < runs.count; ++k) {
      const uint32_t start = runs.starts[k];
      const size_t length = runs.ends[k] - start;
      if (length > TermTable::kMaxPaddedKey) {
        CountLongToken(base + start, length, lower, index, scratch);
        continue;
      }
      const TermTable::Key key = ShortTokenKey(base, size, start, length, lower, tail);
      lo[m] = key.lo;
      hi[m] = key.hi;
      hashes[m] = TermTable::HashOf(key);
      m += length >= 2 ? 1 : 0;  // a 1-byte run is no token: overwritten by the next
    }
    *tokens += m;
    if constexpr (kFilter) {
      // The filter's verdicts first (independent loads), then the candidates kept: a term the
      // filter rules out is not in the vocabulary and is overwritten by the next, without a
      // branch and without touching the slots. (Keeping them in the first loop would chain every
      // token's position in the group through the previous token's filter load.)
      bool candidate[kGroup];
      for (size_t i = 0; i < m; ++i) candidate[i] = index.MayContain(hashes[i]);
      size_t kept = 0;
      for (size_t i = 0; i < m; ++i) {
        lo[kept] = lo[i];
        hi[kept] = hi[i];
        homes[kept] = index.HomeOfHash(hashes[i]);
        index.Prefetch(candidate[i] ? homes[kept] : 0);
        kept += candidate[i] ? 1 : 0;
      }
      m = kept;
    } else {
      for (size_t i = 0; i < m; ++i) {
        homes[i] = index.HomeOfHash(hashes[i]);
        index.Prefetch(homes[i]);
      }
    }
    *hits += ProbeAndCount(group, m, index, scratch);
  }
}

// CountAsciiUnigramsBaseline with or without the filter (CountWithAdaptiveFilter).
void CountAsciiUnigramsBaseline(std::string_view text, const AsciiRuns& runs, bool lower,
                                const TermTable& index, AnalyzerScratch* scratch) {
  CountWithAdaptiveFilter(scratch, [&](auto filter, size_t* tokens, size_t* hits) {
    CountAsciiUnigramsBaseline<decltype(filter)::value>(text, runs, lower, index, scratch, tokens,
                                                        hits);
  });
}

// AsciiTermKeysWith on the baseline path: run by run.
size_t AsciiTermKeysBaseline(std::string_view text, const AsciiRuns& runs, size_t k, bool lower,
                             const TermTable& table, size_t capacity, uint64_t* lo, uint64_t* hi,
                             size_t* homes, uint32_t* starts, size_t* m) {
  char tail[32];
  size_t n = *m;
  for (; k < runs.count && n < capacity; ++k) {
    const uint32_t start = runs.starts[k];
    const size_t length = runs.ends[k] - start;
    if (length > TermTable::kMaxPaddedKey) break;
    if (length < 2) continue;
    const TermTable::Key key = ShortTokenKey(text.data(), text.size(), start, length, lower, tail);
    lo[n] = key.lo;
    hi[n] = key.hi;
    homes[n] = table.Home(key);
    starts[n] = start;
    ++n;
  }
  *m = n;
  return k;
}

#if defined(__x86_64__)
MAAS_COUNT_AVX512_WARNINGS_OFF

// The keys of the ASCII word runs of one text, 8 runs per step, in registers (the AVX-512 path of
// TermTable::PaddedKeyOf and HashOf): the runs' bounds loaded as vectors, their two key words
// picked from 128 bytes of the text (vpermi2b; gathered when the 8 runs do not lie within 128
// bytes), masked to the length, lowercased, tagged and hashed (HashOf: two 64 x 64-bit multiplies).
// A run within 16 bytes of the text's end (whose key words would be gathered past it) is gathered
// from a zero-padded copy of the text's tail. Not copyable (the copy's address is kept).
class AsciiKeys8 {
 public:
  struct Step {
    __mmask8 token;  // runs k.. k + 7 of 2 bytes or more (of those that exist)
    __mmask8 good;   // of those, the ones of at most TermTable::kMaxPaddedKey bytes
    __m512i lo, hi;  // good lanes: the runs' keys
    __m512i hash;    // good lanes: HashOf of the keys
  };

  MAAS_COUNT_AVX512 explicit AsciiKeys8(std::string_view text)
      : base_(text.data()), size_(text.size()) {
    // The text's last (up to) 32 bytes, zero-padded to 64: the 16 bytes from a run's start that
    // would be read past the text's end are read here. to_tail_ moves an offset into the text
    // from its last 32 bytes to the same byte of the copy.
    _mm512_store_si512(tail_copy_, _mm512_setzero_si512());
    const size_t tail_from = size_ > 32 ? size_ - 32 : 0;
    std::memcpy(tail_copy_, base_ + tail_from, size_ - tail_from);
    to_tail_ = static_cast<int64_t>(reinterpret_cast<uintptr_t>(tail_copy_) -
                                    reinterpret_cast<uintptr_t>(base_) - tail_from);
  }
  AsciiKeys8(const AsciiKeys8&) = delete;
  AsciiKeys8& operator=(const AsciiKeys8&) = delete;

  // The keys of runs k .. min(k + 8, runs.count) - 1. REQUIRES: k < runs.count.
  MAAS_COUNT_AVX512 Step At(const AsciiRuns& runs, size_t k, bool lower) const {
    const __m512i ones = _mm512_set1_epi64(-1), one = _mm512_set1_epi64(1);
    const __m512i eight = _mm512_set1_epi64(8);
    const size_t left = runs.count - k;
    const __mmask8 valid = left >= 8 ? 0xFF : static_cast<__mmask8>((1u << left) - 1);
    const __m512i start = _mm512_cvtepu32_epi64(_mm256_maskz_loadu_epi32(valid, runs.starts + k));
    const __m512i end = _mm512_cvtepu32_epi64(_mm256_maskz_loadu_epi32(valid, runs.ends + k));
    const __m512i length = _mm512_sub_epi64(end, start);
    Step step;
    step.token = _mm512_mask_cmpge_epu64_mask(valid, length, _mm512_set1_epi64(2));
    step.good = _mm512_mask_cmple_epu64_mask(step.token, length,
                                             _mm512_set1_epi64(TermTable::kMaxPaddedKey));
    // The 8 runs' bytes mostly lie within the 128 from the first one's start: then their key
    // words are picked from two loads of those 128 bytes (bytes past the text's end read as 0),
    // instead of gathered.
    const uint32_t first = runs.starts[k];
    __m512i key_lo, key_hi;
    if (_mm512_mask_cmpgt_epu64_mask(step.good, end, _mm512_set1_epi64(int64_t{first} + 128)) ==
        0) {
      const size_t avail = size_ - first;
      __m512i window_lo, window_hi;
      if (avail >= 128) {
        window_lo = _mm512_loadu_si512(base_ + first);
        window_hi = _mm512_loadu_si512(base_ + first + 64);
      } else {
        window_lo = _mm512_maskz_loadu_epi8(
            _bzhi_u64(~uint64_t{0}, static_cast<uint32_t>(std::min<size_t>(avail, 64))),
            base_ + first);
        window_hi = avail > 64 ? _mm512_maskz_loadu_epi8(
                                     _bzhi_u64(~uint64_t{0}, static_cast<uint32_t>(avail - 64)),
                                     base_ + first + 64)
                               : _mm512_setzero_si512();
      }
      // Byte j of lane i picks byte (start_i - first) + j of the window: each lane's low byte
      // copied to its 8 bytes (a shuffle within 128-bit lanes), plus 0..7.
      const __m512i spread_byte = _mm512_set4_epi64(0x0808080808080808, 0, 0x0808080808080808, 0);
      const __m512i rel = _mm512_sub_epi64(start, _mm512_set1_epi64(first));
      const __m512i picks = _mm512_add_epi8(_mm512_shuffle_epi8(rel, spread_byte),
                                            _mm512_set1_epi64(0x0706050403020100));
      key_lo = _mm512_permutex2var_epi8(window_lo, picks, window_hi);
      key_hi = _mm512_permutex2var_epi8(window_lo, _mm512_add_epi8(picks, _mm512_set1_epi8(8)),
                                        window_hi);
    } else {
      // A run within 16 bytes of the text's end is read from the copy of the text's tail.
      const __m512i at = _mm512_mask_add_epi64(
          start,
          _mm512_cmpgt_epu64_mask(_mm512_add_epi64(start, _mm512_set1_epi64(16)),
                                  _mm512_set1_epi64(static_cast<int64_t>(size_))),
          start, _mm512_set1_epi64(to_tail_));
      key_lo = _mm512_mask_i64gather_epi64(_mm512_setzero_si512(), step.good, at, base_, 1);
      key_hi = _mm512_mask_i64gather_epi64(_mm512_setzero_si512(), step.good,
                                           _mm512_add_epi64(at, eight), base_, 1);
    }
    // The low min(length, 8) bytes of the first word and max(length, 8) - 8 of the second
    // (a shift by 64 or more gives 0).
    key_lo = _mm512_andnot_si512(_mm512_sllv_epi64(ones, _mm512_slli_epi64(length, 3)), key_lo);
    const __m512i second = _mm512_sub_epi64(_mm512_max_epu64(length, eight), eight);
    key_hi = _mm512_andnot_si512(_mm512_sllv_epi64(ones, _mm512_slli_epi64(second, 3)), key_hi);
    if (lower) {
      const __m512i upper_a = _mm512_set1_epi8('A'), letters = _mm512_set1_epi8(25);
      const __m512i case_bit = _mm512_set1_epi8(0x20);
      const __mmask64 upper_lo = _mm512_cmple_epu8_mask(_mm512_sub_epi8(key_lo, upper_a), letters);
      const __mmask64 upper_hi = _mm512_cmple_epu8_mask(_mm512_sub_epi8(key_hi, upper_a), letters);
      key_lo = _mm512_mask_blend_epi8(upper_lo, key_lo, _mm512_or_si512(key_lo, case_bit));
      key_hi = _mm512_mask_blend_epi8(upper_hi, key_hi, _mm512_or_si512(key_hi, case_bit));
    }
    key_hi = _mm512_or_si512(key_hi, _mm512_slli_epi64(_mm512_add_epi64(length, one), 56));
    const __m512i x = _mm512_xor_si512(
        key_lo,
        _mm512_mullo_epi64(key_hi, _mm512_set1_epi64(static_cast<int64_t>(TermTable::kHiSpread))));
    step.hash = _mm512_mullo_epi64(x, _mm512_set1_epi64(static_cast<int64_t>(TermTable::kGolden)));
    step.lo = key_lo;
    step.hi = key_hi;
    return step;
  }

 private:
  const char* base_;
  size_t size_;
  int64_t to_tail_ = 0;
  alignas(64) char tail_copy_[64];
};

// CountAsciiUnigramsWith on the AVX-512 path: as the baseline, but 8 tokens per step: their keys
// computed in registers (AsciiKeys8), and the keys and home slots of the candidates compressed
// into the group; tokens longer than 15 bytes take the scalar steps. With kFilter, a token is a
// candidate only if the table's filter lets it through (TermTable::MayContain: one more gather per
// step, but most absent terms never touch the slots); without, every token is probed (fastest
// when nearly all tokens are terms). Adds the tokens of 2 to 15 bytes looked up to *tokens and
// the candidates found to *hits.
template <bool kFilter>
MAAS_COUNT_AVX512 void CountAsciiUnigramsAvx512(std::string_view text, const AsciiRuns& runs,
                                                bool lower, const TermTable& index,
                                                AnalyzerScratch* scratch, size_t* tokens,
                                                size_t* hits) {
  GroupKeys group;
  uint64_t* lo = group.lo;
  uint64_t* hi = group.hi;
  size_t* homes = group.homes;
  const char* base = text.data();
  const __m512i one = _mm512_set1_epi64(1);
  const __m128i home_shift = _mm_cvtsi32_si128(static_cast<int>(index.home_shift()));
  const __m128i filter_shift = _mm_cvtsi32_si128(static_cast<int>(index.filter_shift()));
  const __m512i filter_mask = _mm512_set1_epi64(static_cast<int64_t>(index.filter_mask()));
  const __m512i bit_in_word = _mm512_set1_epi64(63);
  const uint64_t* filter = index.filter_words();
  if (runs.count == 0) return;
  const AsciiKeys8 keys8(text);
  size_t looked_up = 0, found = 0;  // in locals, as CountAsciiUnigramsAvx2
  size_t k = 0;
  while (k < runs.count) {
    size_t m = 0;
    for (; m < kGroup && k < runs.count; k += 8) {
      const AsciiKeys8::Step step = keys8.At(runs, k, lower);
      const __mmask8 token = step.token, good = step.good;
      const __m512i key_lo = step.lo, key_hi = step.hi, hash = step.hash;
      __mmask8 candidate = good;
      if constexpr (kFilter) {
        const __m512i bit = _mm512_and_si512(_mm512_srl_epi64(hash, filter_shift), filter_mask);
        const __m512i words = _mm512_mask_i64gather_epi64(_mm512_setzero_si512(), good,
                                                          _mm512_srli_epi64(bit, 6), filter, 8);
        candidate = _mm512_mask_test_epi64_mask(
            good, _mm512_srlv_epi64(words, _mm512_and_si512(bit, bit_in_word)), one);
      }
      looked_up += static_cast<size_t>(_mm_popcnt_u32(good));
      const __m512i home = _mm512_srl_epi64(hash, home_shift);
      _mm512_storeu_si512(lo + m, _mm512_maskz_compress_epi64(candidate, key_lo));
      _mm512_storeu_si512(hi + m, _mm512_maskz_compress_epi64(candidate, key_hi));
      const __m512i kept_homes = _mm512_maskz_compress_epi64(candidate, home);
      _mm512_storeu_si512(homes + m, kept_homes);
      // Fixed 8 requests (lanes past the candidates ask for slot 0): no branch on the count. The
      // slots are taken from the register, not reloaded from the store just made (a vector store
      // forwards slowly, if at all, to scalar loads).
      // (Each quarter's index must be an immediate: spelled out, not a loop counter that -O1, as
      // in the sanitizer build, does not unroll into constants.)
      const __m128i quarters[4] = {
          _mm512_castsi512_si128(kept_homes), _mm512_extracti64x2_epi64(kept_homes, 1),
          _mm512_extracti64x2_epi64(kept_homes, 2), _mm512_extracti64x2_epi64(kept_homes, 3)};
      for (const __m128i pair : quarters) {
        index.Prefetch(static_cast<size_t>(_mm_cvtsi128_si64(pair)));
        index.Prefetch(static_cast<size_t>(_mm_extract_epi64(pair, 1)));
      }
      m += static_cast<size_t>(_mm_popcnt_u32(candidate));
      // The rare rest: tokens longer than 15 bytes, each looked up on its own.
      for (unsigned rest = token & ~good; rest != 0; rest &= rest - 1) {
        const size_t r = k + static_cast<size_t>(__builtin_ctz(rest));
        CountLongToken(base + runs.starts[r], runs.ends[r] - runs.starts[r], lower, index, scratch);
      }
    }
    found += ProbeAndCount(group, m, index, scratch);
  }
  *tokens += looked_up;
  *hits += found;
}

// AsciiTermKeysWith on the AVX-512 path: whole steps of 8 runs (AsciiKeys8) while they fit below
// `capacity` and hold no run longer than kMaxPaddedKey bytes, the rest run by run (the baseline).
MAAS_COUNT_AVX512 size_t AsciiTermKeysAvx512(std::string_view text, const AsciiRuns& runs, size_t k,
                                             bool lower, const TermTable& table, size_t capacity,
                                             uint64_t* lo, uint64_t* hi, size_t* homes,
                                             uint32_t* starts, size_t* m) {
  if (k < runs.count && *m + 8 <= capacity) {
    const AsciiKeys8 keys8(text);
    const __m128i home_shift = _mm_cvtsi32_si128(static_cast<int>(table.home_shift()));
    size_t n = *m;
    while (k < runs.count && n + 8 <= capacity) {
      const AsciiKeys8::Step step = keys8.At(runs, k, lower);
      if ((step.token & ~step.good) != 0) break;  // a long run: the run-by-run steps stop there
      _mm512_storeu_si512(lo + n, _mm512_maskz_compress_epi64(step.good, step.lo));
      _mm512_storeu_si512(hi + n, _mm512_maskz_compress_epi64(step.good, step.hi));
      _mm512_storeu_si512(homes + n, _mm512_maskz_compress_epi64(
                                         step.good, _mm512_srl_epi64(step.hash, home_shift)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(starts + n),
                          _mm256_maskz_compress_epi32(
                              step.good, _mm256_maskz_loadu_epi32(step.good, runs.starts + k)));
      n += static_cast<size_t>(_mm_popcnt_u32(step.good));
      k += std::min<size_t>(runs.count - k, 8);
    }
    *m = n;
  }
  return AsciiTermKeysBaseline(text, runs, k, lower, table, capacity, lo, hi, homes, starts, m);
}

// CountAsciiUnigramsAvx512 with or without the filter (CountWithAdaptiveFilter).
MAAS_COUNT_AVX512 void CountAsciiUnigramsAvx512(std::string_view text, const AsciiRuns& runs,
                                                bool lower, const TermTable& index,
                                                AnalyzerScratch* scratch) {
  CountWithAdaptiveFilter(scratch, [&](auto filter, size_t* tokens, size_t* hits) {
    CountAsciiUnigramsAvx512<decltype(filter)::value>(text, runs, lower, index, scratch, tokens,
                                                      hits);
  });
}
MAAS_COUNT_AVX512_WARNINGS_ON

#define MAAS_COUNT_AVX2 __attribute__((target("avx2,bmi,popcnt")))

// The low 64 bits of each lane of x times the constant k.
MAAS_COUNT_AVX2 inline __m256i MulLo64Avx2(__m256i x, uint64_t k) {
  const __m256i k_lo = _mm256_set1_epi64x(static_cast<int64_t>(k & 0xFFFFFFFFu));
  const __m256i k_hi = _mm256_set1_epi64x(static_cast<int64_t>(k >> 32));
  const __m256i cross =
      _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(x, 32), k_lo), _mm256_mul_epu32(x, k_hi));
  return _mm256_add_epi64(_mm256_mul_epu32(x, k_lo), _mm256_slli_epi64(cross, 32));
}

// For each mask of kLanes lanes of 256 / kLanes bits, the permutation
// (_mm256_permutevar8x32_epi32 indices) that moves the lanes set in it to the front, in order (the
// rest: lane 0 again): AVX2's compress. kCompress4: 4 lanes of 64 bits (keys, homes, counts);
// kCompress8: 8 lanes of 32 bits (ids).
template <unsigned kLanes>
struct CompressTable {
  static constexpr unsigned kWords = 8 / kLanes;  // 32-bit words per lane
  alignas(32) uint32_t index[1u << kLanes][8];
  constexpr CompressTable() : index() {
    for (unsigned mask = 0; mask < (1u << kLanes); ++mask) {
      unsigned out = 0;
      for (unsigned lane = 0; lane < kLanes; ++lane) {
        if ((mask >> lane & 1) == 0) continue;
        for (unsigned w = 0; w < kWords; ++w) index[mask][kWords * out + w] = kWords * lane + w;
        ++out;
      }
      for (; out < kLanes; ++out) {
        for (unsigned w = 0; w < kWords; ++w) index[mask][kWords * out + w] = w;
      }
    }
  }
};
constexpr CompressTable<4> kCompress4;
constexpr CompressTable<8> kCompress8;

// AsciiKeys8 on the AVX2 path: the keys of 4 runs per step. Their two key words read from the
// text, each run's 16 bytes by one load (gathered in a last, partial step; a run within 16 bytes of
// its end from a zero-padded copy of its last 32 bytes), masked to
// the length, lowercased, tagged and hashed in registers (HashOf with emulated 64 x 64-bit
// low-half multiplies). Lane masks are all-ones / all-zero 64-bit lanes. Not copyable (the copy's
// address is kept).
class AsciiKeys4 {
 public:
  struct Step {
    __m256i token;   // runs k .. k + 3 of 2 bytes or more (of those that exist)
    __m256i good;    // of those, the ones of at most TermTable::kMaxPaddedKey bytes
    __m256i start;   // the runs' starts
    __m256i lo, hi;  // good lanes: the runs' keys
    __m256i hash;    // good lanes: HashOf of the keys
  };

  MAAS_COUNT_AVX2 explicit AsciiKeys4(std::string_view text)
      : base_(text.data()), size_(text.size()) {
    const size_t tail_from = size_ > 32 ? size_ - 32 : 0;
    std::memcpy(tail_copy_, base_ + tail_from, size_ - tail_from);
    to_tail_ = static_cast<int64_t>(reinterpret_cast<uintptr_t>(tail_copy_) -
                                    reinterpret_cast<uintptr_t>(base_) - tail_from);
  }
  AsciiKeys4(const AsciiKeys4&) = delete;
  AsciiKeys4& operator=(const AsciiKeys4&) = delete;

  // The keys of runs k .. min(k + 4, runs.count) - 1. REQUIRES: k < runs.count.
  MAAS_COUNT_AVX2 __attribute__((always_inline)) Step At(const AsciiRuns& runs, size_t k,
                                                         bool lower) const {
    const __m256i ones = _mm256_set1_epi64x(-1), one = _mm256_set1_epi64x(1);
    const __m256i eight = _mm256_set1_epi64x(8);
    const size_t left = runs.count - k;
    const __m256i max_padded = _mm256_set1_epi64x(TermTable::kMaxPaddedKey);
    Step step;
    __m256i length, key_lo, key_hi;
    if (left >= 4) {
      step.start =
          _mm256_cvtepu32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(runs.starts + k)));
      length = _mm256_sub_epi64(
          _mm256_cvtepu32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(runs.ends + k))),
          step.start);
      step.token = _mm256_cmpgt_epi64(length, one);
      step.good = _mm256_andnot_si256(_mm256_cmpgt_epi64(length, max_padded), step.token);
      // Each run's 16 bytes by one load (from the tail's copy within 16 bytes of the end), the
      // four interleaved into the two key words: fewer instructions than two gathers.
      // (Starts ascend: when the last run's 16 bytes lie within the text, all four do.)
      const bool near_end = runs.starts[k + 3] + size_t{16} > size_;
      const auto bytes = [&](size_t j) {
        const uint32_t start = runs.starts[k + j];
        const char* p = base_ + start;
        return _mm_loadu_si128(
            reinterpret_cast<const __m128i*>(near_end && start + 16 > size_ ? p + to_tail_ : p));
      };
      const __m256i even = _mm256_inserti128_si256(_mm256_castsi128_si256(bytes(0)), bytes(2), 1);
      const __m256i odd = _mm256_inserti128_si256(_mm256_castsi128_si256(bytes(1)), bytes(3), 1);
      key_lo = _mm256_unpacklo_epi64(even, odd);
      key_hi = _mm256_unpackhi_epi64(even, odd);
    } else {  // the last, partial step: only the runs that exist loaded, their keys gathered
      const __m128i lanes32 =
          _mm_cmpgt_epi32(_mm_set1_epi32(static_cast<int>(left)), _mm_setr_epi32(0, 1, 2, 3));
      step.start = _mm256_cvtepu32_epi64(
          _mm_maskload_epi32(reinterpret_cast<const int*>(runs.starts + k), lanes32));
      length = _mm256_sub_epi64(_mm256_cvtepu32_epi64(_mm_maskload_epi32(
                                    reinterpret_cast<const int*>(runs.ends + k), lanes32)),
                                step.start);
      const __m256i valid = _mm256_cmpgt_epi64(_mm256_set1_epi64x(static_cast<int64_t>(left)),
                                               _mm256_setr_epi64x(0, 1, 2, 3));
      step.token = _mm256_and_si256(valid, _mm256_cmpgt_epi64(length, one));
      step.good = _mm256_andnot_si256(_mm256_cmpgt_epi64(length, max_padded), step.token);
      const __m256i near_end =
          _mm256_cmpgt_epi64(_mm256_add_epi64(step.start, _mm256_set1_epi64x(16)),
                             _mm256_set1_epi64x(static_cast<int64_t>(size_)));
      const __m256i at =
          _mm256_add_epi64(step.start, _mm256_and_si256(near_end, _mm256_set1_epi64x(to_tail_)));
      const auto* from = reinterpret_cast<const long long*>(base_);
      key_lo = _mm256_mask_i64gather_epi64(_mm256_setzero_si256(), from, at, step.good, 1);
      key_hi = _mm256_mask_i64gather_epi64(_mm256_setzero_si256(), from,
                                           _mm256_add_epi64(at, eight), step.good, 1);
    }
    // The low min(length, 8) bytes of the first word and max(length, 8) - 8 of the second (a
    // shift by 64 or more gives 0).
    key_lo = _mm256_andnot_si256(_mm256_sllv_epi64(ones, _mm256_slli_epi64(length, 3)), key_lo);
    const __m256i second =
        _mm256_and_si256(_mm256_cmpgt_epi64(length, eight), _mm256_sub_epi64(length, eight));
    key_hi = _mm256_andnot_si256(_mm256_sllv_epi64(ones, _mm256_slli_epi64(second, 3)), key_hi);
    if (lower) {
      // The text is ASCII: A-Z moved to -128 .. -103 by a wrapping add are the only bytes below
      // -102 in a signed compare.
      const __m256i to_bottom = _mm256_set1_epi8(static_cast<char>(0x80 - 'A'));
      const __m256i above_z = _mm256_set1_epi8(static_cast<char>(-128 + 26));
      const __m256i case_bit = _mm256_set1_epi8(0x20);
      const __m256i upper_lo = _mm256_cmpgt_epi8(above_z, _mm256_add_epi8(key_lo, to_bottom));
      const __m256i upper_hi = _mm256_cmpgt_epi8(above_z, _mm256_add_epi8(key_hi, to_bottom));
      key_lo = _mm256_or_si256(key_lo, _mm256_and_si256(upper_lo, case_bit));
      key_hi = _mm256_or_si256(key_hi, _mm256_and_si256(upper_hi, case_bit));
    }
    key_hi = _mm256_or_si256(key_hi, _mm256_slli_epi64(_mm256_add_epi64(length, one), 56));
    const __m256i x = _mm256_xor_si256(key_lo, MulLo64Avx2(key_hi, TermTable::kHiSpread));
    step.hash = MulLo64Avx2(x, TermTable::kGolden);
    step.lo = key_lo;
    step.hi = key_hi;
    return step;
  }

 private:
  const char* base_;
  size_t size_;
  int64_t to_tail_ = 0;
  alignas(32) char tail_copy_[64] = {};
};

// The 4-bit mask of a vector of all-ones / all-zero 64-bit lanes.
MAAS_COUNT_AVX2 inline unsigned LaneBits4(__m256i lanes) {
  return static_cast<unsigned>(_mm256_movemask_pd(_mm256_castsi256_pd(lanes)));
}

// The permutation that moves the lanes set in `bits` to the front, in order (the rest: lane 0
// again), for Compress4. (Loaded once per step: a vector store may alias the table, so the
// compiler would load it again after each.)
MAAS_COUNT_AVX2 inline __m256i CompressOrder4(unsigned bits) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompress4.index[bits]));
}
MAAS_COUNT_AVX2 inline __m256i Compress4(__m256i v, __m256i order) {
  return _mm256_permutevar8x32_epi32(v, order);
}
MAAS_COUNT_AVX2 inline __m256d Compress4Doubles(__m256d v, unsigned lanes) {
  return _mm256_castsi256_pd(Compress4(_mm256_castpd_si256(v), CompressOrder4(lanes)));
}

// CountAsciiUnigramsWith on the AVX2 path: CountAsciiUnigramsAvx512's steps on 4 tokens at once
// (AsciiKeys4), the candidates' keys and homes moved to the front by Compress4. kFilter, *tokens
// and *hits as CountAsciiUnigramsAvx512.
template <bool kFilter>
MAAS_COUNT_AVX2 void CountAsciiUnigramsAvx2(std::string_view text, const AsciiRuns& runs,
                                            bool lower, const TermTable& index,
                                            AnalyzerScratch* scratch, size_t* tokens,
                                            size_t* hits) {
  if (runs.count == 0) return;
  GroupKeys group;
  uint64_t* lo = group.lo;
  uint64_t* hi = group.hi;
  size_t* homes = group.homes;
  const char* base = text.data();
  const __m256i one = _mm256_set1_epi64x(1);
  const __m128i home_shift = _mm_cvtsi32_si128(static_cast<int>(index.home_shift()));
  const __m128i filter_shift = _mm_cvtsi32_si128(static_cast<int>(index.filter_shift()));
  const __m256i filter_mask = _mm256_set1_epi64x(static_cast<int64_t>(index.filter_mask()));
  const __m256i bit_in_word = _mm256_set1_epi64x(63);
  const auto* filter = reinterpret_cast<const long long*>(index.filter_words());
  const AsciiKeys4 keys4(text);
  // Counted in locals (a store through tokens or hits may alias the table's members, which the
  // compiler would then reload after each).
  size_t looked_up = 0, found = 0;
  size_t k = 0;
  while (k < runs.count) {
    size_t m = 0;
    for (; m < kGroup && k < runs.count; k += 4) {
      const AsciiKeys4::Step step = keys4.At(runs, k, lower);
      __m256i candidate = step.good;
      if constexpr (kFilter) {
        const __m256i bit =
            _mm256_and_si256(_mm256_srl_epi64(step.hash, filter_shift), filter_mask);
        const __m256i words = _mm256_mask_i64gather_epi64(_mm256_setzero_si256(), filter,
                                                          _mm256_srli_epi64(bit, 6), step.good, 8);
        const __m256i set =
            _mm256_and_si256(_mm256_srlv_epi64(words, _mm256_and_si256(bit, bit_in_word)), one);
        candidate = _mm256_and_si256(step.good, _mm256_cmpeq_epi64(set, one));
      }
      const unsigned good = LaneBits4(step.good), token = LaneBits4(step.token);
      const unsigned kept = LaneBits4(candidate);
      looked_up += static_cast<size_t>(_mm_popcnt_u32(good));
      const __m256i order = CompressOrder4(kept);
      const __m256i kept_homes = Compress4(_mm256_srl_epi64(step.hash, home_shift), order);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(lo + m), Compress4(step.lo, order));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(hi + m), Compress4(step.hi, order));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(homes + m), kept_homes);
      // Fixed 4 requests (lanes past the candidates ask for the first one's slot again), taken
      // from the register (a vector store forwards slowly to scalar loads).
      const __m128i low_pair = _mm256_castsi256_si128(kept_homes);
      const __m128i high_pair = _mm256_extracti128_si256(kept_homes, 1);
      index.Prefetch(static_cast<size_t>(_mm_cvtsi128_si64(low_pair)));
      index.Prefetch(static_cast<size_t>(_mm_extract_epi64(low_pair, 1)));
      index.Prefetch(static_cast<size_t>(_mm_cvtsi128_si64(high_pair)));
      index.Prefetch(static_cast<size_t>(_mm_extract_epi64(high_pair, 1)));
      m += static_cast<size_t>(_mm_popcnt_u32(kept));
      // The rare rest: tokens longer than 15 bytes, each looked up on its own.
      for (unsigned rest = token & ~good; rest != 0; rest &= rest - 1) {
        const size_t r = k + static_cast<size_t>(__builtin_ctz(rest));
        CountLongToken(base + runs.starts[r], runs.ends[r] - runs.starts[r], lower, index, scratch);
      }
    }
    found += ProbeAndCount(group, m, index, scratch);
  }
  *tokens += looked_up;
  *hits += found;
}

// CountAsciiUnigramsAvx2 with or without the filter (CountWithAdaptiveFilter).
MAAS_COUNT_AVX2 void CountAsciiUnigramsAvx2(std::string_view text, const AsciiRuns& runs,
                                            bool lower, const TermTable& index,
                                            AnalyzerScratch* scratch) {
  CountWithAdaptiveFilter(scratch, [&](auto filter, size_t* tokens, size_t* hits) {
    CountAsciiUnigramsAvx2<decltype(filter)::value>(text, runs, lower, index, scratch, tokens,
                                                    hits);
  });
}

// AsciiTermKeysWith on the AVX2 path: whole steps of 4 runs (AsciiKeys4) while they fit below
// `capacity` and hold no run longer than kMaxPaddedKey bytes, the rest run by run (the baseline).
MAAS_COUNT_AVX2 size_t AsciiTermKeysAvx2(std::string_view text, const AsciiRuns& runs, size_t k,
                                         bool lower, const TermTable& table, size_t capacity,
                                         uint64_t* lo, uint64_t* hi, size_t* homes,
                                         uint32_t* starts, size_t* m) {
  if (k < runs.count && *m + 4 <= capacity) {
    const AsciiKeys4 keys4(text);
    const __m128i home_shift = _mm_cvtsi32_si128(static_cast<int>(table.home_shift()));
    const __m256i low_dwords = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    size_t n = *m;
    while (k < runs.count && n + 4 <= capacity) {
      const AsciiKeys4::Step step = keys4.At(runs, k, lower);
      const unsigned good = LaneBits4(step.good);
      if ((LaneBits4(step.token) & ~good) != 0) break;  // a long run: run by run from there
      const __m256i order = CompressOrder4(good);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(lo + n), Compress4(step.lo, order));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(hi + n), Compress4(step.hi, order));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(homes + n),
                          Compress4(_mm256_srl_epi64(step.hash, home_shift), order));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(starts + n),
                       _mm256_castsi256_si128(
                           _mm256_permutevar8x32_epi32(Compress4(step.start, order), low_dwords)));
      n += static_cast<size_t>(_mm_popcnt_u32(good));
      k += std::min<size_t>(runs.count - k, 4);
    }
    *m = n;
  }
  return AsciiTermKeysBaseline(text, runs, k, lower, table, capacity, lo, hi, homes, starts, m);
}
#endif

}  // namespace

void CountAsciiUnigramsWith(CountSimdPath path, std::string_view text, const AsciiRuns& runs,
                            bool lower, const TermTable& index, AnalyzerScratch* scratch) {
#if defined(__x86_64__)
  if (path == CountSimdPath::kAvx512) {
    CountAsciiUnigramsAvx512(text, runs, lower, index, scratch);
    return;
  }
  if (path == CountSimdPath::kAvx2) {
    CountAsciiUnigramsAvx2(text, runs, lower, index, scratch);
    return;
  }
#endif
  CountAsciiUnigramsBaseline(text, runs, lower, index, scratch);
}

size_t AsciiTermKeysWith(CountSimdPath path, std::string_view text, const AsciiRuns& runs, size_t k,
                         bool lower, const TermTable& table, size_t capacity, uint64_t* lo,
                         uint64_t* hi, size_t* homes, uint32_t* starts, size_t* m) {
#if defined(__x86_64__)
  if (path == CountSimdPath::kAvx512) {
    return AsciiTermKeysAvx512(text, runs, k, lower, table, capacity, lo, hi, homes, starts, m);
  }
  if (path == CountSimdPath::kAvx2) {
    return AsciiTermKeysAvx2(text, runs, k, lower, table, capacity, lo, hi, homes, starts, m);
  }
#endif
  return AsciiTermKeysBaseline(text, runs, k, lower, table, capacity, lo, hi, homes, starts, m);
}

void OrderedRow(size_t num_features, bool binary, AnalyzerScratch* scratch, SparseVector* row) {
  const size_t n = scratch->ids.size();
  row->indices.resize(n);
  row->values.resize(n);
  OrderedRowInto(num_features, binary, scratch, row->indices.data(), row->values.data());
}

namespace {

// Puts feature `id` of the text at place e of the ordered row, with its count in dense (or 1.0),
// and clears that count for the next text: every OrderedRowInto path's last step.
inline void PlaceFeature(uint32_t id, size_t e, bool binary, double* dense, uint32_t* out_index,
                         double* out_value) {
  out_index[e] = id;
  out_value[e] = binary ? 1.0 : dense[id];
  dense[id] = 0.0;
}

size_t OrderedRowIntoBaseline(size_t num_features, bool binary, AnalyzerScratch* scratch,
                              uint32_t* out_index, double* out_value) {
  FeatureIds& ids = scratch->ids;
  double* dense = scratch->dense.data();
  const size_t n = ids.size();
  const auto emit = [&](size_t e, uint32_t id) {
    PlaceFeature(id, e, binary, dense, out_index, out_value);
  };
  uint32_t lo = std::numeric_limits<uint32_t>::max(), hi = 0;
  for (const uint32_t id : ids) {
    lo = std::min(lo, id);
    hi = std::max(hi, id);
  }
  // A short row, or one spread over a vocabulary so large that the summary words between its
  // smallest and largest id outnumber its ids: a comparison sort is fewer steps.
  if (n <= 8 || (hi >> 12) - (lo >> 12) > 2 * n) {
    if (n <= 32) {
      for (size_t a = 1; a < n; ++a) {  // insertion sort: fewer mispredictions for short rows
        const uint32_t id = ids[a];
        size_t b = a;
        for (; b > 0 && ids[b - 1] > id; --b) ids[b] = ids[b - 1];
        ids[b] = id;
      }
    } else {
      std::sort(ids.begin(), ids.end());
    }
    for (size_t e = 0; e < n; ++e) emit(e, ids[e]);
    ids.clear();
    return n;
  }
  // Ascending order from a two-level bitmap of the touched features: bit id of `bits`, and bit w
  // of `summary` for each non-zero word w of `bits`. Reading them back costs one step per touched
  // word and per id (plus one per 4096 features for the summary), with no comparison sort's
  // data-dependent branches; both levels are all 0 again afterwards.
  const size_t words = (num_features + 63) / 64;
  if (scratch->bits.size() < words) scratch->bits.resize(words, 0);
  if (scratch->summary.size() < (words + 63) / 64) scratch->summary.resize((words + 63) / 64, 0);
  uint64_t* bits = scratch->bits.data();
  uint64_t* summary = scratch->summary.data();
  for (const uint32_t id : ids) {
    bits[id >> 6] |= uint64_t{1} << (id & 63);
    summary[id >> 12] |= uint64_t{1} << ((id >> 6) & 63);
  }
  size_t e = 0;
  for (size_t s = lo >> 12; s <= (hi >> 12); ++s) {
    uint64_t touched = summary[s];
    summary[s] = 0;
    while (touched != 0) {
      const size_t w = s * 64 + static_cast<size_t>(__builtin_ctzll(touched));
      touched &= touched - 1;
      uint64_t word = bits[w];
      bits[w] = 0;
      do {
        emit(e++, static_cast<uint32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(word))));
        word &= word - 1;
      } while (word != 0);
    }
  }
  ids.clear();
  return n;
}

// OrderedRowByBuckets reads a row back from its counts (OrderedRowByScan) when its ids fill more
// than 1 in kScanSpan features of its span: there the scan costs about what the buckets do.
constexpr size_t kScanSpan = 12;

// The features lo..hi with a non-zero count in dense, ascending, each with its count (or 1.0) at
// out_index[e] and out_value[e], e = 0, 1, ..., n - 1; their counts cleared. step(p, base, e) is
// the path's step over the 8 counts at p, features base..base + 7: places those not 0 from e on
// without a branch on their number, writing out_index and out_value at e .. e + 7 (only while
// e + 8 <= n), clears them and returns their number. REQUIRES: the row's n ids are exactly the
// features with a non-zero count (a row's counts are >= 1: OrderedRowInto's callers count terms;
// every other count is 0, as each row leaves them), lo and hi among them.
template <typename Step8>
__attribute__((always_inline)) inline void OrderedRowByScan(Step8 step, size_t n, uint32_t lo,
                                                            uint32_t hi, bool binary, double* dense,
                                                            uint32_t* out_index,
                                                            double* out_value) {
  size_t e = 0;
  size_t j = lo;
  // Whole steps of 8 from lo, all within lo..hi (below the counts' end), while the out arrays
  // have room for 8 more.
  for (; j + 8 <= size_t{hi} + 1 && e + 8 <= n; j += 8) e += step(dense + j, j, e);
  for (; j <= hi; ++j) {
    if (dense[j] != 0.0) {
      PlaceFeature(static_cast<uint32_t>(j), e++, binary, dense, out_index, out_value);
    }
  }
}

// OrderedRowIntoBaseline on a vector path: the row placed by `place` (the path's rank kernel), or,
// when `place` does not take it whole (a mail's body: hundreds of distinct words spread over a
// vocabulary of 100 000), split by value into buckets of ~16 ids on
// average (a power of two of them, each 2^shift ids wide from the smallest id: a histogram, then
// the ids scattered into their buckets, a pass each), each bucket's ids placed by `place` after
// the buckets below (the rare bucket it does not take, by a sort). A row whose ids bunch
// together, with a bucket of more than `max_ids`, takes the baseline after the histogram (as
// training's rows do: their ids are in order of first occurrence in the corpus, so that a text's
// common words are among the smallest). The bitmap's read-back took ~18 cycles per id of such
// rows: a fifth of the classification of the mail corpus of bench/classify_vs_sklearn.py, 8-10 %
// less with the buckets.
//
// place(row, n, binary, dense, out_index, out_value) is a path's placing of the n distinct ids
// of `row` in ascending order, each with its count in dense (or 1.0), which is cleared
// (PlaceFeature at out_index[place] and out_value[place]), or false, nothing placed, when the
// path does not take such a row (too many ids, or too spread out). Inlined into each path's
// function, so that its loops are compiled for that path.
//
// A row whose ids fill more than 1 in kScanSpan features between its smallest and largest (a
// long text over a vocabulary of tens of thousands: 6 200 of 40 600 terms in the bench's texts
// of 50 KB) is read back from the counts themselves instead (OrderedRowByScan with the path's
// `step`): ~5 cycles per 8 features of the span on the AVX-512 path of the bench's machine (the
// compresses' port), where the buckets took ~8 cycles per id.
template <typename Place, typename Step8>
__attribute__((always_inline)) inline size_t OrderedRowByBuckets(
    Place place, Step8 step, size_t max_ids, size_t num_features, bool binary,
    AnalyzerScratch* scratch, uint32_t* out_index, double* out_value) {
  FeatureIds& ids = scratch->ids;
  const size_t n = ids.size();
  const uint32_t* row = ids.data();
  double* dense = scratch->dense.data();
  if (place(row, n, binary, dense, out_index, out_value)) {
    ids.clear();
    return n;
  }
  // Rejected whole, so not empty.
  uint32_t lo = row[0], hi = row[0];
  for (size_t i = 1; i < n; ++i) {
    lo = std::min(lo, row[i]);
    hi = std::max(hi, row[i]);
  }
  if ((hi - lo) / kScanSpan < n) {
    OrderedRowByScan(step, n, lo, hi, binary, dense, out_index, out_value);
    ids.clear();
    return n;
  }
  size_t buckets = 2;
  while (buckets * 16 < n) buckets *= 2;
  unsigned shift = 0;
  while (((hi - lo) >> shift) >= buckets) ++shift;
  std::vector<uint32_t>& starts = scratch->bucket_starts;
  starts.assign(buckets + 1, 0);
  for (size_t i = 0; i < n; ++i) ++starts[((row[i] - lo) >> shift) + 1];
  if (*std::max_element(starts.begin(), starts.end()) > max_ids) {
    return OrderedRowIntoBaseline(num_features, binary, scratch, out_index, out_value);
  }
  for (size_t b = 0; b < buckets; ++b) starts[b + 1] += starts[b];
  std::vector<uint32_t>& bucketed = scratch->bucketed;
  if (bucketed.size() < n) bucketed.resize(n);
  uint32_t* part = bucketed.data();
  for (size_t i = 0; i < n; ++i) part[starts[(row[i] - lo) >> shift]++] = row[i];
  // starts[b] is now the end of bucket b, the start of bucket b + 1.
  uint32_t begin = 0;
  for (size_t b = 0; b < buckets; ++b) {
    const uint32_t end = starts[b];
    if (end != begin &&
        !place(part + begin, end - begin, binary, dense, out_index + begin, out_value + begin)) {
      std::sort(part + begin, part + end);
      for (uint32_t e = begin; e < end; ++e) {
        PlaceFeature(part[e], e, binary, dense, out_index, out_value);
      }
    }
    begin = end;
  }
  ids.clear();
  return n;
}

#if defined(__x86_64__)
// The most ids OrderedRowIntoAvx2 ranks in 32-bit lanes (8 vectors of 8), and in 16-bit offsets
// (4 pairs of vectors of 16); longer rows are split into buckets (OrderedRowByBuckets).
constexpr size_t kRankMaxIdsAvx2 = 64;
constexpr size_t kRankMaxOffsetsAvx2 = 128;

// OrderedRowIntoAvx2's placing of the row's n ids by their offsets from `lo`, held as signed
// 16-bit lanes (offset ^ 0x8000; lanes past n 0x7FFF, never below an offset) in w: with kPairs 0
// one vector (n <= 16, each id below counted twice by the byte mask), otherwise kPairs pairs of
// vectors (`pairs` when kPairs is -1), each pair's compares packed to bytes (the lanes' order
// does not matter to a count) for one mask.
template <int kPairs>
__attribute__((target("avx2,popcnt"))) inline void PlaceByOffsetRanksAvx2(
    const uint32_t* row, size_t n, uint32_t lo, const __m256i* w, size_t pairs, bool binary,
    double* dense, uint32_t* out_index, double* out_value) {
  const size_t count = kPairs > 0 ? static_cast<size_t>(kPairs) : pairs;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t id = row[i];
    const __m256i b = _mm256_set1_epi16(static_cast<short>((id - lo) ^ 0x8000u));
    size_t rank = 0;
    if constexpr (kPairs == 0) {
      rank = static_cast<size_t>(_mm_popcnt_u32(
                 static_cast<unsigned>(_mm256_movemask_epi8(_mm256_cmpgt_epi16(b, w[0]))))) /
             2;
    } else {
      for (size_t j = 0; j < count; ++j) {
        const __m256i below = _mm256_packs_epi16(_mm256_cmpgt_epi16(b, w[2 * j]),
                                                 _mm256_cmpgt_epi16(b, w[2 * j + 1]));
        rank +=
            static_cast<size_t>(_mm_popcnt_u32(static_cast<unsigned>(_mm256_movemask_epi8(below))));
      }
    }
    PlaceFeature(id, rank, binary, dense, out_index, out_value);
  }
}

// OrderedRowIntoAvx512's rank counting on the AVX2 path (OrderedRowByBuckets's `place`): rows of 9
// to kRankMaxOffsetsAvx2 ids that span at most 0x10000 ids (nearly all) by their 16-bit offsets
// from the smallest, PlaceByOffsetRanksAvx2; others of up to kRankMaxIdsAvx2 ids with 8 ids per
// vector (unsigned order through the sign-flipped signed compare).
__attribute__((target("avx2,popcnt"))) bool PlaceByRanksAvx2(const uint32_t* row, size_t n,
                                                             bool binary, double* dense,
                                                             uint32_t* out_index,
                                                             double* out_value) {
  if (n > 8 && n <= kRankMaxOffsetsAvx2) {
    uint32_t lo = row[0], hi = row[0];
    for (size_t i = 1; i < n; ++i) {
      lo = std::min(lo, row[i]);
      hi = std::max(hi, row[i]);
    }
    if (hi - lo <= 0xFFFF) {
      const size_t pairs = (n + 31) / 32;
      alignas(32) uint16_t offsets[kRankMaxOffsetsAvx2];
      for (size_t i = 0; i < n; ++i) offsets[i] = static_cast<uint16_t>((row[i] - lo) ^ 0x8000u);
      for (size_t i = n; i < 32 * pairs; ++i) offsets[i] = 0x7FFF;
      __m256i w[kRankMaxOffsetsAvx2 / 16];
      for (size_t j = 0; j < 2 * pairs; ++j) {
        w[j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(offsets + 16 * j));
      }
      // The vector count as a constant for the common rows (up to 64 ids): no inner loop.
      if (n <= 16) {
        PlaceByOffsetRanksAvx2<0>(row, n, lo, w, pairs, binary, dense, out_index, out_value);
      } else if (pairs == 1) {
        PlaceByOffsetRanksAvx2<1>(row, n, lo, w, pairs, binary, dense, out_index, out_value);
      } else if (pairs == 2) {
        PlaceByOffsetRanksAvx2<2>(row, n, lo, w, pairs, binary, dense, out_index, out_value);
      } else {
        PlaceByOffsetRanksAvx2<-1>(row, n, lo, w, pairs, binary, dense, out_index, out_value);
      }
      return true;
    }
  }
  if (n > kRankMaxIdsAvx2) return false;
  const size_t vectors = (n + 7) / 8;
  uint32_t padded[kRankMaxIdsAvx2];
  for (size_t i = 0; i < 8 * vectors; ++i) {  // lanes past n: never below an id
    padded[i] = (i < n ? row[i] : std::numeric_limits<uint32_t>::max()) ^ 0x80000000u;
  }
  __m256i v[kRankMaxIdsAvx2 / 8];
  for (size_t j = 0; j < vectors; ++j) {
    v[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(padded + 8 * j));
  }
  for (size_t i = 0; i < n; ++i) {
    const uint32_t id = row[i];
    const __m256i b = _mm256_set1_epi32(static_cast<int>(id ^ 0x80000000u));
    size_t rank = 0;
    for (size_t j = 0; j < vectors; ++j) {
      const int below = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(b, v[j])));
      rank += static_cast<size_t>(_mm_popcnt_u32(static_cast<unsigned>(below)));
    }
    PlaceFeature(id, rank, binary, dense, out_index, out_value);
  }
  return true;
}

// OrderedRowIntoBaseline on the AVX2 path: PlaceByRanksAvx2, for longer rows by buckets.
__attribute__((target("avx2,popcnt"))) size_t OrderedRowIntoAvx2(size_t num_features, bool binary,
                                                                 AnalyzerScratch* scratch,
                                                                 uint32_t* out_index,
                                                                 double* out_value) {
  // OrderedRowByScan's step: the ids of the non-zero counts of 8 moved to the front by one
  // permutation (kCompress8), the counts by two (kCompress4, each half).
  const auto step = [ binary, out_index, out_value ](double* p, size_t base, size_t e)
      __attribute__((target("avx2,popcnt"))) {
    const __m256d zero = _mm256_setzero_pd();
    const __m256d low = _mm256_loadu_pd(p), high = _mm256_loadu_pd(p + 4);
    const auto low_bits =
        static_cast<unsigned>(_mm256_movemask_pd(_mm256_cmp_pd(low, zero, _CMP_NEQ_UQ)));
    const auto high_bits =
        static_cast<unsigned>(_mm256_movemask_pd(_mm256_cmp_pd(high, zero, _CMP_NEQ_UQ)));
    const unsigned bits = low_bits | high_bits << 4;
    const __m256i ids = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(base)),
                                         _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_storeu_si256(
        reinterpret_cast<__m256i*>(out_index + e),
        _mm256_permutevar8x32_epi32(
            ids, _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompress8.index[bits]))));
    const size_t low_count = static_cast<size_t>(_mm_popcnt_u32(low_bits));
    if (binary) {
      _mm256_storeu_pd(out_value + e, _mm256_set1_pd(1.0));
      _mm256_storeu_pd(out_value + e + 4, _mm256_set1_pd(1.0));
    } else {
      _mm256_storeu_pd(out_value + e, Compress4Doubles(low, low_bits));
      _mm256_storeu_pd(out_value + e + low_count, Compress4Doubles(high, high_bits));
    }
    _mm256_storeu_pd(p, zero);
    _mm256_storeu_pd(p + 4, zero);
    return low_count + static_cast<size_t>(_mm_popcnt_u32(high_bits));
  };
  return OrderedRowByBuckets(PlaceByRanksAvx2, step, kRankMaxOffsetsAvx2, num_features, binary,
                             scratch, out_index, out_value);
}
#endif

#if defined(__x86_64__)
MAAS_COUNT_AVX512_WARNINGS_OFF
// The most ids OrderedRowIntoAvx512 ranks itself (8 vectors); longer rows are split into buckets.
constexpr size_t kRankMaxIds = 128;

// OrderedRowIntoAvx512's placing of the row's n ids by their offsets from `lo` in lanes of kBits
// (16 or 32), held in `vectors` vectors w (kVectors of them when not 0): id i goes to the place of
// the number of offsets below its own, with its count (or 1.0), which is cleared in dense.
template <int kBits, size_t kVectors>
MAAS_COUNT_AVX512 inline void PlaceByOffsetRanks(const uint32_t* row, size_t n, uint32_t lo,
                                                 const __m512i* w, size_t vectors, bool binary,
                                                 double* dense, uint32_t* out_index,
                                                 double* out_value) {
  static_assert(kBits == 16 || kBits == 32);
  const size_t count = kVectors != 0 ? kVectors : vectors;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t id = row[i];
    size_t rank = 0;
    if constexpr (kBits == 16) {
      const __m512i b = _mm512_set1_epi16(static_cast<short>(id - lo));
      for (size_t j = 0; j < count; ++j) {
        rank += static_cast<size_t>(_mm_popcnt_u32(_mm512_cmplt_epu16_mask(w[j], b)));
      }
    } else {
      const __m512i b = _mm512_set1_epi32(static_cast<int>(id - lo));
      for (size_t j = 0; j < count; ++j) {
        rank += static_cast<size_t>(_mm_popcnt_u32(_mm512_cmplt_epu32_mask(w[j], b)));
      }
    }
    PlaceFeature(id, rank, binary, dense, out_index, out_value);
  }
}

// OrderedRowIntoAvx512's placing of the n distinct ids of `row` (OrderedRowByBuckets's `place`;
// false for more than kRankMaxIds): each one's place in ascending order is the number of ids
// below it, counted by compares against the row held in up to 8 vectors (up to 4 of 16-bit
// offsets when the row spans at most 0x10000 ids, as most do); no sort, no bitmap, no
// data-dependent branch.
MAAS_COUNT_AVX512 bool PlaceByRanksAvx512(const uint32_t* row, size_t n, bool binary, double* dense,
                                          uint32_t* out_index, double* out_value) {
  if (n > kRankMaxIds) return false;
  const size_t vectors = (n + 15) / 16;
  __m512i v[kRankMaxIds / 16];
  const __m512i above = _mm512_set1_epi32(-1);  // lanes past n: never below an id
  __m512i low = above, high = _mm512_setzero_si512();
  for (size_t j = 0; j < vectors; ++j) {
    const size_t left = n - 16 * j;
    const __mmask16 lanes = left >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << left) - 1);
    v[j] = _mm512_mask_loadu_epi32(above, lanes, row + 16 * j);
    low = _mm512_min_epu32(low, v[j]);
    high = _mm512_mask_max_epu32(high, lanes, high, v[j]);
  }
  const uint32_t lo = _mm512_reduce_min_epu32(low);
  if (n > 16 && _mm512_reduce_max_epu32(high) - lo <= 0xFFFF) {
    // Ids at most 0xFFFF above the smallest: their offsets from it, 32 to a vector of 16-bit
    // lanes (lanes past n 0xFFFF, never below an offset): half the compares of 32-bit lanes.
    const size_t halves = (vectors + 1) / 2;
    __m512i w[kRankMaxIds / 32];
    const __m512i base = _mm512_set1_epi32(static_cast<int>(lo));
    __m256i offsets[kRankMaxIds / 16];
    for (size_t j = 0; j < 2 * halves; ++j) {
      const size_t left = j < vectors ? n - 16 * j : 0;
      const __mmask16 lanes = left >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << left) - 1);
      offsets[j] = _mm512_mask_cvtepi32_epi16(_mm256_set1_epi16(-1), lanes,
                                              _mm512_sub_epi32(j < vectors ? v[j] : above, base));
    }
    for (size_t j = 0; j < halves; ++j) {
      w[j] = _mm512_inserti64x4(_mm512_castsi256_si512(offsets[2 * j]), offsets[2 * j + 1], 1);
    }
    // The vector count as a constant for the common rows (up to 64 ids): no inner loop.
    if (halves == 1) {
      PlaceByOffsetRanks<16, 1>(row, n, lo, w, halves, binary, dense, out_index, out_value);
    } else if (halves == 2) {
      PlaceByOffsetRanks<16, 2>(row, n, lo, w, halves, binary, dense, out_index, out_value);
    } else {
      PlaceByOffsetRanks<16, 0>(row, n, lo, w, halves, binary, dense, out_index, out_value);
    }
    return true;
  }
  PlaceByOffsetRanks<32, 0>(row, n, 0, v, vectors, binary, dense, out_index, out_value);
  return true;
}

// OrderedRowIntoBaseline on the AVX-512 path: PlaceByRanksAvx512, for longer rows by buckets.
MAAS_COUNT_AVX512 size_t OrderedRowIntoAvx512(size_t num_features, bool binary,
                                              AnalyzerScratch* scratch, uint32_t* out_index,
                                              double* out_value) {
  // OrderedRowByScan's step: the non-zero counts of 8 and their ids compressed to the front.
  const auto step = [binary, out_index, out_value](double* p, size_t base,
                                                   size_t e) MAAS_COUNT_AVX512 {
    const __m512d counts = _mm512_loadu_pd(p);
    const __mmask8 set = _mm512_cmp_pd_mask(counts, _mm512_setzero_pd(), _CMP_NEQ_UQ);
    const __m256i ids = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(base)),
                                         _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out_index + e),
                        _mm256_maskz_compress_epi32(set, ids));
    _mm512_storeu_pd(out_value + e,
                     binary ? _mm512_set1_pd(1.0) : _mm512_maskz_compress_pd(set, counts));
    _mm512_storeu_pd(p, _mm512_setzero_pd());
    return static_cast<size_t>(_mm_popcnt_u32(set));
  };
  return OrderedRowByBuckets(PlaceByRanksAvx512, step, kRankMaxIds, num_features, binary, scratch,
                             out_index, out_value);
}
MAAS_COUNT_AVX512_WARNINGS_ON
#endif

}  // namespace

size_t OrderedRowIntoWith(CountSimdPath path, size_t num_features, bool binary,
                          AnalyzerScratch* scratch, uint32_t* out_index, double* out_value) {
#if defined(__x86_64__)
  if (path == CountSimdPath::kAvx512) {
    return OrderedRowIntoAvx512(num_features, binary, scratch, out_index, out_value);
  }
  if (path == CountSimdPath::kAvx2) {
    return OrderedRowIntoAvx2(num_features, binary, scratch, out_index, out_value);
  }
#endif
  return OrderedRowIntoBaseline(num_features, binary, scratch, out_index, out_value);
}

size_t OrderedRowInto(size_t num_features, bool binary, AnalyzerScratch* scratch,
                      uint32_t* out_index, double* out_value) {
  return OrderedRowIntoWith(BestCountSimdPath(), num_features, binary, scratch, out_index,
                            out_value);
}

DecodeError DecodeErrorOf(const v1::TextOptions& text) {
  switch (text.decode_error()) {
    case v1::DECODE_ERROR_REPLACE:
      return DecodeError::kReplace;
    case v1::DECODE_ERROR_IGNORE:
      return DecodeError::kIgnore;
    default:
      return DecodeError::kStrict;
  }
}

absl::StatusOr<AnalyzerOptions> AnalyzerOptionsFromText(const v1::TextOptions& text) {
  AnalyzerOptions options;
  switch (text.analyzer()) {
    case v1::ANALYZER_WORD:
      options.kind = AnalyzerKind::kWord;
      break;
    case v1::ANALYZER_CHAR:
      options.kind = AnalyzerKind::kChar;
      break;
    case v1::ANALYZER_CHAR_WB:
      options.kind = AnalyzerKind::kCharWb;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown analyzer value ", static_cast<int>(text.analyzer())));
  }
  switch (text.strip_accents()) {
    case v1::STRIP_ACCENTS_NONE:
      options.strip_accents = StripAccentsMode::kNone;
      break;
    case v1::STRIP_ACCENTS_ASCII:
      options.strip_accents = StripAccentsMode::kAscii;
      break;
    case v1::STRIP_ACCENTS_UNICODE:
      options.strip_accents = StripAccentsMode::kUnicode;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown strip_accents value ", static_cast<int>(text.strip_accents())));
  }
  if (text.decode_error() != v1::DECODE_ERROR_STRICT &&
      text.decode_error() != v1::DECODE_ERROR_REPLACE &&
      text.decode_error() != v1::DECODE_ERROR_IGNORE) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown decode_error value ", static_cast<int>(text.decode_error())));
  }
  // Like scikit-learn, the char analyzers ignore token_pattern (it warns and never compiles it).
  if (!text.token_pattern().empty() && text.token_pattern() != kDefaultTokenPattern &&
      options.kind == AnalyzerKind::kWord) {
    MAAS_ASSIGN_OR_RETURN(options.token_pattern, TokenPattern::Compile(text.token_pattern()));
  }
  options.lowercase = !text.has_lowercase() || text.lowercase();
  if (!text.stop_words().empty() && text.stop_word_list_size() > 0) {
    return absl::InvalidArgumentError(
        "give either stop_words (\"english\") or stop_word_list, not both");
  }
  if (text.stop_words() == "english") {
    options.stop_words = StopWords::Of(EnglishStopWords());
  } else if (!text.stop_words().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("stop_words must be empty or \"english\"; got \"", text.stop_words(), "\""));
  }
  MAAS_RETURN_IF_ERROR(CheckTermList(text.stop_word_list(), "stop_word_list"));
  if (text.stop_word_list_size() > 0) options.stop_words = StopWords::Of(text.stop_word_list());
  const uint32_t ngram_min = text.ngram_min() == 0 ? 1 : text.ngram_min();
  const uint32_t ngram_max = text.ngram_max() == 0 ? ngram_min : text.ngram_max();
  if (ngram_min > ngram_max) {
    return absl::InvalidArgumentError(absl::StrCat("invalid ngram_range=(", ngram_min, ", ",
                                                   ngram_max,
                                                   "): lower boundary larger than the upper one"));
  }
  options.ngram_min = ngram_min;
  options.ngram_max = ngram_max;
  return options;
}

void RestoreStopWordList(const StopWords& stop_words, v1::TextOptions* text) {
  if (!text->stop_words().empty()) return;  // the built-in list, named by stop_words
  google::protobuf::RepeatedPtrField<std::string>* list = text->mutable_stop_word_list();
  list->Reserve(static_cast<int>(stop_words.given_size()));
  for (size_t i = 0; i < stop_words.given_size(); ++i) list->Add(std::string(stop_words.given(i)));
}

absl::StatusOr<CountVectorizerOptions> CountVectorizerOptionsFromConfig(
    const v1::VectorizerConfig& config) {
  if (config.kind_case() != v1::VectorizerConfig::kCount &&
      config.kind_case() != v1::VectorizerConfig::KIND_NOT_SET) {
    return absl::InvalidArgumentError("the vectorizer config is not count");
  }
  const v1::CountVectorizerConfig& count = config.count();
  CountVectorizerOptions options;
  MAAS_ASSIGN_OR_RETURN(options.analyzer, AnalyzerOptionsFromText(count.text()));
  options.decode_error = DecodeErrorOf(count.text());
  options.binary = count.text().binary();
  MAAS_ASSIGN_OR_RETURN(options.min_df, BoundFromProto(count.min_df(), "min_df", options.min_df));
  MAAS_ASSIGN_OR_RETURN(options.max_df, BoundFromProto(count.max_df(), "max_df", options.max_df));
  options.max_features = count.max_features();
  MAAS_RETURN_IF_ERROR(CheckTermList(count.vocabulary(), "vocabulary"));
  options.fixed_vocabulary.assign(count.vocabulary().begin(), count.vocabulary().end());
  absl::flat_hash_set<absl::string_view> seen;
  for (const std::string& term : options.fixed_vocabulary) {
    if (!seen.insert(term).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("Duplicate term in vocabulary: '", term.substr(0, 100), "'"));
    }
  }
  return options;
}

absl::StatusOr<CountVectorizer::FitResult> CountVectorizer::FitTransform(
    const std::vector<std::string>& texts, const CountVectorizerOptions& options,
    const exec::StopToken& stop) {
  return FitTransformViews(std::vector<std::string_view>(texts.begin(), texts.end()), options,
                           stop);
}

absl::StatusOr<CountVectorizer::FitResult> CountVectorizer::FitTransformViews(
    const std::vector<std::string_view>& texts, const CountVectorizerOptions& options,
    const exec::StopToken& stop) {
  for (size_t d = 0; d < texts.size(); ++d) {
    const absl::Status valid = ValidateUtf8(texts[d]);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("texts[", d, "]: ", valid.message()));
    }
  }
  Fitter fitter(options);
  size_t bytes = 0;
  for (const std::string_view text : texts) bytes += text.size();
  fitter.Expect(texts.size(), bytes);
  for (size_t d = 0; d < texts.size(); ++d) {
    if (d % kStopCheckInterval == 0) MAAS_RETURN_IF_ERROR(stop.Check());
    const absl::Status added = fitter.Add(texts[d]);
    if (!added.ok()) {
      return absl::Status(added.code(), absl::StrCat("texts[", d, "]: ", added.message()));
    }
  }
  return fitter.Finish();
}

CountVectorizer::Fitter::Fitter(const CountVectorizerOptions& options)
    : min_df_(options.min_df), max_df_(options.max_df), max_features_(options.max_features) {
  single_byte_ids_.fill(TermTable::kNotFound);
  CountVectorizer& v = result_.vectorizer;
  v.analyzer_ = Analyzer(options.analyzer);
  v.binary_ = options.binary;
  if (!options.fixed_vocabulary.empty()) {
    const std::vector<std::string>& terms = options.fixed_vocabulary;
    TermArena arena = ArenaOf(terms.size(), [&](size_t i) { return std::string_view(terms[i]); });
    v.fixed_vocabulary_ = true;
    v.BuildIndex(std::move(arena.bytes), std::move(arena.offsets));
    v.document_frequency_.assign(terms.size(), 0);
  }
}

namespace {

// A text's word tokens for its n-grams (Analyzer::RunNgrams): its runs of at least `min_bytes`
// bytes less the stop words, and joined_to[k], the last token of the stretch from token k on whose
// tokens are each followed by exactly one space (the n-grams within it are stretches of the text).
// The arrays lie in `bounds`, then `extra` more arrays of `stride` entries for the caller; each
// array has 32 readable entries past its count (the run kernels read whole vectors).
struct RunTokens {
  const uint32_t* starts = nullptr;
  const uint32_t* ends = nullptr;
  const uint32_t* joined_to = nullptr;
  size_t count = 0;
  size_t bytes = 0;  // the tokens' bytes
  uint32_t* extra = nullptr;
  size_t stride = 0;
};

RunTokens TokensOfRuns(std::string_view doc, const AsciiRuns& runs, size_t min_bytes,
                       const StopWords& stop_words, size_t extra, std::vector<uint32_t>* bounds) {
  RunTokens tokens;
  tokens.stride = runs.count + 32;
  if (bounds->size() < (3 + extra) * tokens.stride) bounds->resize((3 + extra) * tokens.stride);
  uint32_t* starts = bounds->data();
  uint32_t* ends = starts + tokens.stride;
  uint32_t* joined_to = ends + tokens.stride;
  size_t count = 0, bytes = 0;
  // A stop word check: the token's key built without a branch on its length (a token within 16
  // bytes of the text's end read from a zero-padded copy), then the stop table's filter, which
  // rules out nearly every other token; the slots only past it.
  const TermTable* stop = stop_words.empty() ? nullptr : &stop_words.table();
  char tail[32];
  const auto is_stop_word = [&](uint32_t start, uint32_t length) {
    if (length > TermTable::kMaxPaddedKey) return stop_words.contains(doc.substr(start, length));
    const TermTable::Key key =
        ShortTokenKey(doc.data(), doc.size(), start, length, /*lower=*/false, tail);
    const uint64_t hash = TermTable::HashOf(key);
    return stop->MayContain(hash) &&
           stop->FindShortFrom(key.lo, key.hi, stop->HomeOfHash(hash)) != TermTable::kNotFound;
  };
  for (size_t k = 0; k < runs.count; ++k) {
    const uint32_t length = runs.ends[k] - runs.starts[k];
    starts[count] = runs.starts[k];
    ends[count] = runs.ends[k];
    bytes += length;
    count +=
        length >= min_bytes && !(stop != nullptr && is_stop_word(runs.starts[k], length)) ? 1 : 0;
  }
  for (size_t k = count; k-- > 0;) {
    const bool joined = k + 1 < count && starts[k + 1] == ends[k] + 1 && doc[ends[k]] == ' ';
    joined_to[k] = joined ? joined_to[k + 1] : static_cast<uint32_t>(k);
  }
  tokens.starts = starts;
  tokens.ends = ends;
  tokens.joined_to = joined_to;
  tokens.count = count;
  tokens.bytes = bytes;
  tokens.extra = joined_to + tokens.stride;
  return tokens;
}

// Calls emit(gram, in_doc) for each n-gram of n >= 2 tokens, in token order (scikit-learn's
// _word_ngrams: the n tokens joined by one space): a view of doc's stretch when its tokens are
// joined so (in_doc), else of the n-gram joined in *grams, whose room is reserved for all of them
// first (the views stay valid until *grams is next changed).
template <typename Emit>
void ForEachRunNgram(std::string_view doc, const RunTokens& tokens, size_t n, std::string* grams,
                     Emit emit) {
  grams->clear();
  // Each token is in at most n of the n-grams, each with n - 1 spaces.
  grams->reserve(n * (tokens.bytes + tokens.count));
  for (size_t k = 0; k + n <= tokens.count; ++k) {
    const size_t last = k + n - 1;
    if (tokens.joined_to[k] >= last) {
      emit(std::string_view(doc.data() + tokens.starts[k], tokens.ends[last] - tokens.starts[k]),
           true);
      continue;
    }
    const size_t at = grams->size();
    for (size_t m = k; m <= last; ++m) {
      if (m != k) grams->push_back(' ');
      grams->append(doc.data() + tokens.starts[m], tokens.ends[m] - tokens.starts[m]);
    }
    emit(std::string_view(grams->data() + at, grams->size() - at), false);
  }
}

}  // namespace

void CountVectorizer::Fitter::Expect(size_t texts, size_t bytes) { forecast_.Expect(texts, bytes); }

int64_t CountVectorizer::Fitter::MemoryBytes() const {
  return result_.rows.MemoryBytes() + static_cast<int64_t>(provisional_.MemoryBytes()) +
         store::VectorBytes(provisional_df_) + store::VectorBytes(scratch_.dense);
}

absl::Status CountVectorizer::Fitter::Add(std::string_view text) {
  CountVectorizer& v = result_.vectorizer;
  SparseRows& rows = result_.rows;
  ++v.num_documents_;
  if (v.fixed_vocabulary_) {
    SparseVector& row = row_;
    v.Transform(text, &scratch_, &row);
    for (const uint32_t j : row.indices) ++v.document_frequency_[j];
    forecast_.BeforeAppend(row.indices.size(), text.size(), &rows);
    rows.Append(row);
    return scratch_.token_matcher.status();
  }
  // Provisional index = order of first occurrence (as _count_vocab).
  FeatureIds& ids = scratch_.ids;
  ids.clear();
  const Analyzer& analyzer = v.analyzer_;
  if (analyzer.options().kind == AnalyzerKind::kCharWb) {
    CountCharWbWords(analyzer, text, kFitterMemoTag, &scratch_,
                     [&](std::string_view term) { return InsertChecked(term); });
  } else if (!(analyzer.UnigramsBeforeStopWords() && AddUnigrams(text)) &&
             !(analyzer.RunNgrams() && AddRunNgrams(text))) {
    analyzer.AnalyzeBatches(
        text, &scratch_, [&](absl::Span<const std::string_view> terms) { AddTermsInOrder(terms); });
  }
  if (over_budget_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the vocabulary being learned went past the memory budget of ", memory_budget_,
                     " bytes within one text"));
  }
  // The row in order of first occurrence (Finish sorts it).
  forecast_.BeforeAppend(ids.size(), text.size(), &rows);
  const size_t start = rows.indices.size();
  rows.indices.insert(rows.indices.end(), ids.begin(), ids.end());
  rows.values.resize(start + ids.size());
  rows.offsets.push_back(rows.indices.size());
  if (provisional_df_.size() < provisional_.size()) {
    provisional_df_.resize(std::max(provisional_.size(), 2 * provisional_df_.size()), 0);
  }
  double* values = rows.values.data() + start;
  double* dense = scratch_.dense.data();
  uint64_t* df = provisional_df_.data();
  const bool binary = v.binary_;
  for (size_t e = 0; e < ids.size(); ++e) {
    double& count = dense[ids[e]];
    values[e] = binary ? 1.0 : count;
    count = 0.0;
    ++df[ids[e]];
  }
  return scratch_.token_matcher.status();
}

uint32_t CountVectorizer::Fitter::InsertChecked(std::string_view term) {
  if (over_budget_) return TermTable::kNotFound;
  if (provisional_.size() >= std::numeric_limits<uint32_t>::max() - 1) {
    too_many_ = true;
    return TermTable::kNotFound;
  }
  const auto [id, inserted] = provisional_.Insert(term);
  if (inserted) {
    if (scratch_.dense.size() <= id) scratch_.dense.resize(2 * (id + 1), 0.0);
    NoteNewTerm();
  }
  return id;
}

void CountVectorizer::Fitter::AddTermsInOrder(absl::Span<const std::string_view> terms) {
  // In groups whose table slots are requested from memory together (as Transform).
  constexpr size_t kGroup = 16;
  TermTable::Key keys[kGroup];
  size_t homes[kGroup];
  FeatureIds& ids = scratch_.ids;
  for (size_t g = 0; g < terms.size() && !over_budget_; g += kGroup) {
    const size_t m = std::min(kGroup, terms.size() - g);
    if (provisional_.size() + m >= std::numeric_limits<uint32_t>::max() - 1) {
      for (size_t i = 0; i < m; ++i) {
        const uint32_t id = InsertChecked(terms[g + i]);
        if (id != TermTable::kNotFound) CountFeature(id, &ids, scratch_.dense.data());
      }
      continue;
    }
    provisional_.Reserve(provisional_.size() + m);
    for (size_t i = 0; i < m; ++i) {
      keys[i] = TermTable::KeyOf(terms[g + i]);
      homes[i] = provisional_.Home(keys[i]);
      provisional_.Prefetch(homes[i]);
    }
    uint32_t found[kGroup];
    for (size_t i = 0; i < m; ++i) {
      // Most tokens of a corpus are known terms: the inline lookup first, the insert (out of
      // line) only for a new one.
      uint32_t id = provisional_.FindFrom(keys[i], homes[i], terms[g + i]);
      if (id == TermTable::kNotFound) {
        id = provisional_.InsertFrom(keys[i], homes[i], terms[g + i]).first;
        if (scratch_.dense.size() <= id) scratch_.dense.resize(2 * (id + 1), 0.0);
        NoteNewTerm();
      }
      found[i] = id;
    }
    CountFeatures(found, m, &ids, scratch_.dense.data());
  }
}

bool CountVectorizer::Fitter::AddRunNgrams(std::string_view text) {
  AsciiRuns runs;
  std::string_view doc;
  bool lower = false;
  const Analyzer& analyzer = result_.vectorizer.analyzer_;
  if (!analyzer.TextTermRuns(text, &scratch_, &runs, &doc, &lower)) return false;
  // ASCII text to lowercase: lowercased once (the same positions), so that the n-grams are
  // stretches of it.
  if (lower) doc = analyzer.Preprocess(text, &scratch_);
  const AnalyzerOptions& options = analyzer.options();
  const size_t min_bytes = analyzer.MinTermBytes();
  const RunTokens tokens =
      TokensOfRuns(doc, runs, min_bytes, options.stop_words, /*extra=*/0, &scratch_.gram_bounds);
  // _word_ngrams's order, which is the order of first occurrence: the unigrams, then the n-grams
  // of each n in turn, each in token order.
  if (options.ngram_min <= 1) {
    // The tokens (the runs less the stop words, if any) as runs.
    const AsciiRuns unigrams =
        options.stop_words.empty() ? runs : AsciiRuns{tokens.starts, tokens.ends, tokens.count};
    if (min_bytes == 1 && NewSingleByteTerm(doc, unigrams, /*lower=*/false)) return false;
    AddAsciiUnigrams(doc, unigrams, /*lower=*/false);
    if (min_bytes == 1) AddSingleByteRuns(doc, unigrams, /*lower=*/false);
  }
  std::vector<std::string_view>& grams = scratch_.terms;
  const size_t top = std::min<size_t>(options.ngram_max, tokens.count);
  for (size_t n = std::max<size_t>(options.ngram_min, 2); n <= top && !over_budget_; ++n) {
    grams.clear();
    ForEachRunNgram(doc, tokens, n, &scratch_.grams,
                    [&](std::string_view gram, bool) { grams.push_back(gram); });
    AddTermsInOrder(grams);
  }
  return true;
}

bool CountVectorizer::Fitter::AddUnigrams(std::string_view text) {
  AsciiRuns runs;
  std::string_view doc;
  bool lower = false;
  const Analyzer& analyzer = result_.vectorizer.analyzer_;
  if (!analyzer.TextTermRuns(text, &scratch_, &runs, &doc, &lower)) return false;
  const bool single_bytes = analyzer.MinTermBytes() == 1;
  // A one-byte term not seen before: the text goes term by term (Add's other path), so that it
  // takes its provisional index in token order among the text's new terms.
  if (single_bytes && NewSingleByteTerm(doc, runs, lower)) return false;
  AddAsciiUnigrams(doc, runs, lower);
  if (single_bytes) AddSingleByteRuns(doc, runs, lower);
  return true;
}

bool CountVectorizer::Fitter::NewSingleByteTerm(std::string_view text, const AsciiRuns& runs,
                                                bool lower) {
  bool fresh = false;
  ForEachSingleByteRun(text, runs, lower, [&](unsigned char byte) {
    uint32_t& id = single_byte_ids_[byte];
    if (id != TermTable::kNotFound) return;
    const char term = static_cast<char>(byte);
    id = provisional_.Find(std::string_view(&term, 1));  // added term by term by an earlier text
    fresh |= id == TermTable::kNotFound;
  });
  return fresh;
}

void CountVectorizer::Fitter::AddSingleByteRuns(std::string_view text, const AsciiRuns& runs,
                                                bool lower) {
  ForEachSingleByteRun(text, runs, lower, [&](unsigned char byte) {
    const uint32_t id = single_byte_ids_[byte];  // known: NewSingleByteTerm
    if (scratch_.dense.size() <= id) scratch_.dense.resize(2 * (id + 1), 0.0);
    CountFeature(id, &scratch_.ids, scratch_.dense.data());
  });
}

void CountVectorizer::Fitter::AddAsciiUnigrams(std::string_view text, const AsciiRuns& runs,
                                               bool lower) {
  // As CountAsciiUnigrams (keys from the raw bytes, lowercased in registers), but every term
  // found or inserted, in token order (the provisional index is the order of first occurrence):
  // a group is flushed before a token longer than 15 bytes is inserted on its own.
  const CountSimdPath path = BestCountSimdPath();
  constexpr size_t kTermGroup = 64;
  uint64_t lo[kTermGroup], hi[kTermGroup];
  size_t homes[kTermGroup];
  uint32_t starts[kTermGroup];
  uint32_t found[kTermGroup];
  const char* base = text.data();
  FeatureIds& ids = scratch_.ids;
  std::string& term = scratch_.gram;
  const auto lowered = [&](uint32_t start, size_t length) -> std::string_view {
    term.assign(base + start, length);
    if (lower) {
      for (char& c : term) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    }
    return term;
  };
  const auto count = [&](uint32_t id) {
    if (scratch_.dense.size() <= id) scratch_.dense.resize(2 * (id + 1), 0.0);
    CountFeature(id, &ids, scratch_.dense.data());
  };
  size_t k = 0;
  while (k < runs.count && !over_budget_) {
    if (provisional_.size() + kTermGroup >= std::numeric_limits<uint32_t>::max() - 1) {
      // Near the id limit: one token at a time through the checked insert.
      const uint32_t start = runs.starts[k];
      const size_t length = runs.ends[k] - start;
      ++k;
      if (length < 2) continue;
      if (provisional_.size() >= std::numeric_limits<uint32_t>::max() - 1) {
        too_many_ = true;
        continue;
      }
      const auto [id, inserted] = provisional_.Insert(lowered(start, length));
      count(id);
      if (inserted) NoteNewTerm();
      continue;
    }
    // Homes are computed after the Reserve, so the inserts of the group never rehash.
    provisional_.Reserve(provisional_.size() + kTermGroup);
    size_t m = 0;
    k = AsciiTermKeysWith(path, text, runs, k, lower, provisional_, kTermGroup, lo, hi, homes,
                          starts, &m);
    // Stopped before a token longer than 15 bytes: inserted on its own after the group's earlier
    // tokens.
    const bool long_token = k < runs.count && m < kTermGroup;
    for (size_t i = 0; i < m; ++i) provisional_.Prefetch(homes[i]);
    for (size_t i = 0; i < m; ++i) {
      const TermTable::Key key{lo[i], hi[i]};
      uint32_t id = provisional_.FindFrom(key, homes[i], std::string_view());
      if (id == TermTable::kNotFound) {
        const size_t length = (key.hi >> 56) - 1;  // the key's length tag
        id = provisional_.InsertFrom(key, homes[i], lowered(starts[i], length)).first;
        if (scratch_.dense.size() <= id) scratch_.dense.resize(2 * (id + 1), 0.0);
        NoteNewTerm();
      }
      found[i] = id;
    }
    CountFeatures(found, m, &ids, scratch_.dense.data());
    if (long_token) {
      const uint32_t start = runs.starts[k];
      const size_t length = runs.ends[k] - start;
      ++k;
      const auto [id, inserted] = provisional_.Insert(lowered(start, length));
      count(id);
      if (inserted) NoteNewTerm();
    }
  }
}

void CountVectorizer::Fitter::CheckBudget() {
  const int64_t held =
      MemoryBytes() + static_cast<int64_t>(scratch_.ids.capacity() * sizeof(uint32_t));
  if (held > memory_budget_) {
    over_budget_ = true;
  } else {
    next_budget_check_ = provisional_.size() + kBudgetTerms;
  }
}

namespace {

// Sorts entries {first, second, ...} (16 key bytes as two big-endian words) by `less`, which
// orders them by first, then second, then what they stand for: a most-significant-digit radix
// sort on the 16 bytes (a histogram and a scatter per byte and bucket; a byte all entries share is
// skipped), each bucket of at most kSmall entries, or of entries equal in all 16 bytes, by
// std::sort with `less`. A vocabulary's terms spread over a few dozen first bytes, so a few byte
// passes leave small buckets: the fit of 0.8 M word bigrams 6 % faster than with std::sort, whose
// comparisons of 24-byte entries took a seventh of it.
template <typename Entry, typename Less>
void SortByPrefixes(Entry* entries, size_t n, Less less) {
  constexpr size_t kSmall = 48;
  std::vector<Entry> buffer(n);
  struct Range {
    size_t begin, end;
    unsigned byte;
  };
  std::vector<Range> pending = {{0, n, 0}};
  const auto digit = [](const Entry& e, unsigned byte) {
    const uint64_t word = byte < 8 ? e.first : e.second;
    return static_cast<unsigned>(word >> (56 - 8 * (byte % 8))) & 0xFF;
  };
  while (!pending.empty()) {
    const Range range = pending.back();
    pending.pop_back();
    Entry* a = entries + range.begin;
    const size_t size = range.end - range.begin;
    if (size <= kSmall || range.byte == 16) {
      std::sort(a, a + size, less);
      continue;
    }
    size_t count[256] = {};
    for (size_t i = 0; i < size; ++i) ++count[digit(a[i], range.byte)];
    if (count[digit(a[0], range.byte)] == size) {  // one bucket: the next byte
      pending.push_back({range.begin, range.end, range.byte + 1});
      continue;
    }
    size_t start[256];
    size_t sum = 0;
    for (unsigned d = 0; d < 256; ++d) {
      start[d] = sum;
      sum += count[d];
    }
    Entry* out = buffer.data() + range.begin;
    size_t next[256];
    std::copy(start, start + 256, next);
    for (size_t i = 0; i < size; ++i) out[next[digit(a[i], range.byte)]++] = a[i];
    std::copy(out, out + size, a);
    for (unsigned d = 0; d < 256; ++d) {
      if (count[d] > 1) {
        pending.push_back(
            {range.begin + start[d], range.begin + start[d] + count[d], range.byte + 1});
      }
    }
  }
}

}  // namespace

absl::StatusOr<CountVectorizer::FitResult> CountVectorizer::Fitter::Finish() {
  CountVectorizer& v = result_.vectorizer;
  if (v.fixed_vocabulary_) return std::move(result_);
  if (too_many_) return absl::InvalidArgumentError("vocabulary too large (>= 2^32 terms)");
  scratch_ = AnalyzerScratch();
  const TermTable& terms = provisional_;
  const size_t num_documents = result_.rows.size();
  FitResult& result = result_;
  // The word runs' path (AddUnigrams) counts stop words too: they are dropped here, as if pruned
  // (a term's provisional index, document frequency and counts do not depend on the others). Only
  // there: an n-gram or a char analyzer's term that equals a stop word is a term (stop words are
  // dropped from the tokens, before n-grams; char analyzers ignore them).
  const StopWords& stop_words = v.analyzer_.options().stop_words;
  const size_t checked_stop_words =
      v.analyzer_.UnigramsBeforeStopWords() ? stop_words.given_size() : 0;
  std::vector<bool> is_stop_word;
  size_t stop_word_terms = 0;
  for (size_t i = 0; i < checked_stop_words; ++i) {
    const uint32_t t = terms.Find(stop_words.given(i));
    if (t == TermTable::kNotFound) continue;
    if (is_stop_word.empty()) is_stop_word.resize(terms.size(), false);
    if (!is_stop_word[t]) ++stop_word_terms;  // a word given twice is one term
    is_stop_word[t] = true;
  }
  const auto stop_word = [&](uint32_t t) { return !is_stop_word.empty() && is_stop_word[t]; };
  if (terms.size() == stop_word_terms) {
    return absl::InvalidArgumentError(
        "empty vocabulary; perhaps the documents only contain stop words or 1-character tokens "
        "(the default tokenizer keeps runs of at least 2 letters, digits or underscores)");
  }
  const size_t num_terms = terms.size();
  std::vector<uint64_t>& df = provisional_df_;  // counted by Add
  df.resize(num_terms, 0);
  // Pruning by document frequency (_limit_features), on the raw float products.
  const double max_doc_count = DocCount(max_df_, num_documents);
  const double min_doc_count = DocCount(min_df_, num_documents);
  if (max_doc_count < min_doc_count) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_df corresponds to < documents than min_df (", max_doc_count, " < ",
                     min_doc_count, " documents out of ", num_documents, ")"));
  }
  std::vector<uint32_t> kept;  // Provisional indices of the kept terms.
  for (uint32_t t = 0; t < num_terms; ++t) {
    const double d = static_cast<double>(df[t]);
    if (d <= max_doc_count && d >= min_doc_count && !stop_word(t)) kept.push_back(t);
  }
  // Code point order = byte order of the UTF-8 terms; bytes [offset, offset + 8) of a term as a
  // big-endian integer, zero-padded, decide most comparisons without reaching the arena.
  const auto prefix_at = [&](uint32_t t, size_t offset) {
    const std::string_view term = terms.term(t);
    uint64_t p = 0;
    if (term.size() >= offset + 8) {
      std::memcpy(&p, term.data() + offset, 8);
      static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the load's byte 0 is its low byte");
      return __builtin_bswap64(p);
    }
    for (size_t b = offset; b < offset + 8; ++b) {
      p = p << 8 | (b < term.size() ? static_cast<uint8_t>(term[b]) : 0);
    }
    return p;
  };
  std::vector<uint64_t> prefix(num_terms);
  for (uint32_t t = 0; t < num_terms; ++t) prefix[t] = prefix_at(t, 0);
  const auto term_order = [&](uint32_t a, uint32_t b) {
    if (prefix[a] != prefix[b]) return prefix[a] < prefix[b];
    return terms.term(a) < terms.term(b);
  };
  {
    // Sorted by the first 16 bytes held beside the ids (word bigrams and longer terms often share
    // their first 8), the arena read only for ties.
    struct Entry {
      uint64_t first, second;
      uint32_t id;
    };
    std::vector<Entry> order(kept.size());
    for (size_t i = 0; i < kept.size(); ++i) {
      order[i] = {prefix[kept[i]], prefix_at(kept[i], 8), kept[i]};
    }
    SortByPrefixes(order.data(), order.size(), [&](const Entry& a, const Entry& b) {
      if (a.first != b.first) return a.first < b.first;
      if (a.second != b.second) return a.second < b.second;
      return terms.term(a.id) < terms.term(b.id);
    });
    for (size_t i = 0; i < kept.size(); ++i) kept[i] = order[i].id;
  }
  if (max_features_ > 0 && kept.size() > max_features_) {
    std::vector<double> tf(num_terms, 0.0);  // corpus count per term
    for (size_t e = 0; e < result.rows.indices.size(); ++e) {
      tf[result.rows.indices[e]] += result.rows.values[e];
    }
    // Highest corpus counts first, ties in feature (code point) order; then back to feature order.
    std::stable_sort(kept.begin(), kept.end(),
                     [&](uint32_t a, uint32_t b) { return tf[a] > tf[b]; });
    kept.resize(max_features_);
    std::sort(kept.begin(), kept.end(), term_order);
  }
  if (kept.empty()) {
    return absl::InvalidArgumentError(
        "After pruning, no terms remain. Try a lower min_df or a higher max_df.");
  }
  constexpr uint32_t kDropped = std::numeric_limits<uint32_t>::max();
  std::vector<uint32_t> final_index(num_terms, kDropped);
  v.document_frequency_.reserve(kept.size());
  for (uint32_t rank = 0; rank < kept.size(); ++rank) {
    final_index[kept[rank]] = rank;
    v.document_frequency_.push_back(df[kept[rank]]);
  }
  // The kept terms' bytes, in feature order, straight from the provisional arena.
  TermArena arena = ArenaOf(kept.size(), [&](size_t rank) { return terms.term(kept[rank]); });
  provisional_ = TermTable();
  provisional_df_ = std::vector<uint64_t>();
  v.BuildIndex(std::move(arena.bytes), std::move(arena.offsets));
  // Each row to scikit-learn's storage order (spec 2.8: ascending provisional index, i.e. order of
  // first occurrence in the corpus, with final column numbers; the order of TF-IDF's norm sums),
  // in place: a row never gets longer, so the rows written never overtake the rows still to read.
  AnalyzerScratch& scratch = scratch_;
  scratch.dense.assign(num_terms, 0.0);
  SparseRows& rows = result.rows;
  uint32_t* indices = rows.indices.data();
  double* values = rows.values.data();
  const uint32_t* final_of = final_index.data();
  double* dense = scratch.dense.data();
  size_t written = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    const size_t begin = rows.offsets[r], end = rows.offsets[r + 1];
    FeatureIds& ids = scratch.ids;
    ids.resize(end - begin);
    uint32_t* out = ids.data();
    size_t n = 0;
    for (size_t e = begin; e < end; ++e) {
      const uint32_t t = indices[e];
      if (final_of[t] == kDropped) continue;
      out[n++] = t;
      dense[t] = values[e];
    }
    ids.resize(n);
    rows.offsets[r] = written;
    uint32_t* row_indices = indices + written;
    n = OrderedRowInto(num_terms, /*binary=*/false, &scratch, row_indices, values + written);
    for (size_t e = 0; e < n; ++e) row_indices[e] = final_of[row_indices[e]];
    written += n;
  }
  rows.offsets.back() = written;
  rows.indices.resize(written);
  rows.values.resize(written);
  scratch = AnalyzerScratch();
  return std::move(result_);
}

absl::StatusOr<CountVectorizer> CountVectorizer::FromState(const CountVectorizerOptions& options,
                                                           std::vector<std::string> vocabulary,
                                                           std::vector<uint64_t> document_frequency,
                                                           uint64_t num_documents,
                                                           StateVocabulary what) {
  if (vocabulary.empty()) {
    return absl::InvalidArgumentError(
        "vocabulary is empty: a CountVectorizer needs at least 1 term");
  }
  if (vocabulary.size() >= std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError("vocabulary too large (>= 2^32 terms)");
  }
  const bool in_state = what == StateVocabulary::kFixed;
  if (in_state && !options.fixed_vocabulary.empty()) {
    return absl::InvalidArgumentError(
        "vectorizer.fixed_vocabulary_in_state is set but the config has a vocabulary too; the "
        "stored form gives the fixed vocabulary once, in vectorizer.vocabulary");
  }
  const bool fixed = in_state || !options.fixed_vocabulary.empty();
  if (!in_state && fixed && vocabulary != options.fixed_vocabulary) {
    return absl::InvalidArgumentError(
        "vocabulary differs from the config's fixed vocabulary; with a fixed vocabulary the state "
        "vocabulary must be that list, in that order");
  }
  for (size_t i = 0; i < vocabulary.size(); ++i) {
    if (vocabulary[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("vocabulary[", i, "] is empty"));
    }
    const absl::Status valid = ValidateUtf8(vocabulary[i]);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("vocabulary[", i, "]: ", valid.message()));
    }
    if (!fixed && i > 0 && !(vocabulary[i - 1] < vocabulary[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "vocabulary must be sorted by code point without duplicates (scikit-learn's feature "
          "order); vocabulary[",
          i - 1, "] = \"", vocabulary[i - 1], "\" is not before vocabulary[", i, "] = \"",
          vocabulary[i], "\""));
    }
  }
  if (!document_frequency.empty() && document_frequency.size() != vocabulary.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "document_frequency has ", document_frequency.size(), " values but the vocabulary has ",
        vocabulary.size(), " terms (give one per term, or none)"));
  }
  CountVectorizer v;
  v.analyzer_ = Analyzer(options.analyzer);
  v.binary_ = options.binary;
  v.fixed_vocabulary_ = fixed;
  v.document_frequency_ = std::move(document_frequency);
  v.num_documents_ = num_documents;
  // The terms move into the index's arena; the strings are freed before the table is allocated.
  TermArena arena =
      ArenaOf(vocabulary.size(), [&](size_t i) { return std::string_view(vocabulary[i]); });
  vocabulary = std::vector<std::string>();
  v.BuildIndex(std::move(arena.bytes), std::move(arena.offsets));
  if (in_state) {
    // The config's check of a fixed vocabulary (CountVectorizerOptionsFromConfig), on the index
    // built: of two equal terms the index finds one, so the other's id is not found back.
    for (uint32_t id = 0; id < v.index_.size(); ++id) {
      if (v.index_.Find(v.index_.term(id)) != id) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Duplicate term in vocabulary: '", std::string(v.index_.term(id).substr(0, 100)), "'"));
      }
    }
  }
  return v;
}

void CountVectorizer::BuildIndex(LargeString bytes, LargeVector<size_t> offsets) {
  // The terms of the most documents are put into the table first (then by id): they then mostly
  // lie in their home slots, and a text's lookups rarely probe a second slot (a mispredicted
  // branch each). Without document frequencies (a given vocabulary), in id order.
  const size_t num_terms = offsets.size() - 1;
  std::vector<uint32_t> placement(num_terms);
  std::iota(placement.begin(), placement.end(), 0);
  if (document_frequency_.size() == num_terms && num_terms > 0) {
    const uint64_t most = *std::max_element(document_frequency_.begin(), document_frequency_.end());
    if (most <= num_terms) {
      // A counting sort (document frequencies are at most the documents, mostly 1 or 2): the ids
      // by frequency, highest first, in id order within one, as the stable sort below.
      std::vector<uint32_t> start(most + 2, 0);
      for (const uint64_t df : document_frequency_) ++start[most - df + 1];
      for (size_t b = 1; b < start.size(); ++b) start[b] += start[b - 1];
      for (uint32_t id = 0; id < num_terms; ++id) {
        placement[start[most - document_frequency_[id]]++] = id;
      }
    } else {
      std::stable_sort(placement.begin(), placement.end(), [&](uint32_t a, uint32_t b) {
        return document_frequency_[a] > document_frequency_[b];
      });
    }
  }
  index_.Assign(std::move(bytes), std::move(offsets), placement);
  const AnalyzerOptions& analyzer = analyzer_.options();
  uint64_t tag =
      TermTable::HashBytes(nullptr, 0) ^ (uint64_t{analyzer.ngram_min} << 32 | analyzer.ngram_max);
  for (uint32_t id = 0; id < num_terms; ++id) {
    const std::string_view term = index_.term(id);
    tag = TermTable::HashBytes(reinterpret_cast<const char*>(&tag), sizeof(tag)) ^
          TermTable::HashBytes(term.data(), term.size());
  }
  memo_tag_ = tag <= kFitterMemoTag ? tag + 2 : tag;
  unigram_runs_ = analyzer_.UnigramsBeforeStopWords();
  const StopWords& stop_words = analyzer.stop_words;
  for (size_t i = 0; unigram_runs_ && i < stop_words.given_size(); ++i) {
    if (index_.Find(stop_words.given(i)) != TermTable::kNotFound) unigram_runs_ = false;
  }
  ngram_runs_ = analyzer_.RunNgrams();
  single_byte_terms_ =
      (unigram_runs_ || (ngram_runs_ && analyzer.ngram_min <= 1)) && analyzer_.MinTermBytes() == 1;
  for (unsigned byte = 0; byte < single_byte_ids_.size(); ++byte) {
    const char term = static_cast<char>(byte);
    single_byte_ids_[byte] =
        single_byte_terms_ ? index_.Find(std::string_view(&term, 1)) : TermTable::kNotFound;
  }
}

void CountVectorizer::CountSingleByteRuns(std::string_view doc, const AsciiRuns& runs, bool lower,
                                          AnalyzerScratch* scratch) const {
  if (!single_byte_terms_) return;
  double* dense = scratch->dense.data();
  ForEachSingleByteRun(doc, runs, lower, [&](unsigned char byte) {
    const uint32_t id = single_byte_ids_[byte];
    if (id != TermTable::kNotFound) CountFeature(id, &scratch->ids, dense);
  });
}

namespace {

// Counts the terms of `terms` that `index` holds into scratch->dense and scratch->ids, in groups:
// the table slots, then the counts, of a group are requested from memory together (a lookup in a
// large vocabulary is mostly waiting for a cache miss). With `filter`, a term the table's filter
// rules out (TermTable::MayContain) is not probed: for terms mostly absent (long n-grams).
void CountTerms(absl::Span<const std::string_view> terms, const TermTable& index, bool filter,
                AnalyzerScratch* scratch) {
  constexpr size_t kTermGroup = 16;
  TermTable::Key keys[kTermGroup];
  size_t homes[kTermGroup];
  uint32_t found[kTermGroup];
  double* dense = scratch->dense.data();
  for (size_t g = 0; g < terms.size(); g += kTermGroup) {
    const size_t m = std::min(kTermGroup, terms.size() - g);
    bool maybe[kTermGroup];
    for (size_t i = 0; i < m; ++i) {
      keys[i] = TermTable::KeyOf(terms[g + i]);
      const uint64_t hash = TermTable::HashOf(keys[i]);
      maybe[i] = !filter || index.MayContain(hash);
      homes[i] = index.HomeOfHash(hash);
      if (maybe[i]) index.Prefetch(homes[i]);
    }
    for (size_t i = 0; i < m; ++i) {
      found[i] = maybe[i] ? index.FindFrom(keys[i], homes[i], terms[g + i]) : TermTable::kNotFound;
      if (found[i] != TermTable::kNotFound) __builtin_prefetch(dense + found[i]);
    }
    CountFeatures(found, m, &scratch->ids, dense);
  }
}

}  // namespace

void CountVectorizer::CountRunNgrams(std::string_view text, const AsciiRuns& runs, bool lower,
                                     AnalyzerScratch* scratch) const {
  const AnalyzerOptions& options = analyzer_.options();
  const CountSimdPath path = BestCountSimdPath();
  // The n-grams are stretches of the lowercased text: ASCII text to lowercase is copied so once
  // (Preprocess, the same positions), not n-gram by n-gram.
  const std::string_view doc = lower ? analyzer_.Preprocess(text, scratch) : text;
  // The n-grams of at most kMaxPaddedKey bytes as runs over doc and over scratch->grams (their
  // starts and ends in the tokens' four extra arrays), the longer ones as views.
  const RunTokens tokens = TokensOfRuns(doc, runs, analyzer_.MinTermBytes(), options.stop_words,
                                        /*extra=*/4, &scratch->gram_bounds);
  if (options.ngram_min <= 1) {
    // The tokens (the runs less the stop words, if any) as runs.
    const AsciiRuns unigrams =
        options.stop_words.empty() ? runs : AsciiRuns{tokens.starts, tokens.ends, tokens.count};
    CountAsciiUnigramsWith(path, doc, unigrams, /*lower=*/false, index_, scratch);
    CountSingleByteRuns(doc, unigrams, /*lower=*/false, scratch);
  }
  uint32_t* doc_starts = tokens.extra;
  uint32_t* doc_ends = doc_starts + tokens.stride;
  uint32_t* own_starts = doc_ends + tokens.stride;
  uint32_t* own_ends = own_starts + tokens.stride;
  const std::string& grams = scratch->grams;
  std::vector<std::string_view>& long_grams = scratch->terms;
  // The n-grams' lookups take their own filter choice (gram_lookup_filter), the unigrams' is
  // restored after.
  std::swap(scratch->lookup_filter, scratch->gram_lookup_filter);
  const size_t top = std::min<size_t>(options.ngram_max, tokens.count);
  for (size_t n = std::max<size_t>(options.ngram_min, 2); n <= top; ++n) {
    long_grams.clear();
    size_t in_doc = 0, own = 0;
    // Runs over the buffer hold 32-bit positions: past 4 GiB of joined n-grams (a text of more
    // than a GiB), those are looked up as views.
    const bool own_runs = n * (tokens.bytes + tokens.count) < std::numeric_limits<uint32_t>::max();
    ForEachRunNgram(doc, tokens, n, &scratch->grams, [&](std::string_view gram, bool joined) {
      if (gram.size() > TermTable::kMaxPaddedKey || (!joined && !own_runs)) {
        long_grams.push_back(gram);
      } else if (joined) {
        doc_starts[in_doc] = static_cast<uint32_t>(gram.data() - doc.data());
        doc_ends[in_doc++] = static_cast<uint32_t>(gram.data() + gram.size() - doc.data());
      } else {
        own_starts[own] = static_cast<uint32_t>(gram.data() - grams.data());
        own_ends[own++] = static_cast<uint32_t>(gram.data() + gram.size() - grams.data());
      }
    });
    CountAsciiUnigramsWith(path, doc, AsciiRuns{doc_starts, doc_ends, in_doc}, /*lower=*/false,
                           index_, scratch);
    CountAsciiUnigramsWith(path, grams, AsciiRuns{own_starts, own_ends, own}, /*lower=*/false,
                           index_, scratch);
    CountTerms(long_grams, index_, /*filter=*/true, scratch);
  }
  std::swap(scratch->lookup_filter, scratch->gram_lookup_filter);
}

void CountVectorizer::Transform(std::string_view text, AnalyzerScratch* scratch,
                                SparseVector* row) const {
  const size_t num_features = index_.size();
  if (scratch->dense.size() < num_features) scratch->dense.resize(num_features, 0.0);
  FeatureIds& ids = scratch->ids;
  ids.clear();
  if (analyzer_.options().kind == AnalyzerKind::kCharWb) {
    CountCharWbWords(analyzer_, text, memo_tag_, scratch,
                     [&](std::string_view gram) { return index_.Find(gram); });
    OrderedRow(num_features, binary_, scratch, row);
    return;
  }
  if (unigram_runs_ || ngram_runs_) {
    // The runs of ASCII or well-formed text as it is, else of the preprocessed text.
    AsciiRuns runs;
    std::string_view doc;
    bool lower = false;
    if (analyzer_.TextTermRuns(text, scratch, &runs, &doc, &lower)) {
      CountRuns(doc, runs, lower, scratch);
      OrderedRow(num_features, binary_, scratch, row);
      return;
    }
  }
  analyzer_.AnalyzeBatches(text, scratch, [&](absl::Span<const std::string_view> terms) {
    CountTerms(terms, index_, /*filter=*/false, scratch);
  });
  OrderedRow(num_features, binary_, scratch, row);
}

bool CountVectorizer::TransformIfWellFormed(std::string_view text, AnalyzerScratch* scratch,
                                            SparseVector* row) const {
  AsciiRuns runs;
  std::string_view doc;
  bool lower = false;
  if (!(unigram_runs_ || ngram_runs_) ||
      !analyzer_.WellFormedTermRuns(text, scratch, &runs, &doc, &lower)) {
    return false;
  }
  const size_t num_features = index_.size();
  if (scratch->dense.size() < num_features) scratch->dense.resize(num_features, 0.0);
  scratch->ids.clear();
  CountRuns(doc, runs, lower, scratch);
  OrderedRow(num_features, binary_, scratch, row);
  return true;
}

void CountVectorizer::CountRuns(std::string_view doc, const AsciiRuns& runs, bool lower,
                                AnalyzerScratch* scratch) const {
  if (ngram_runs_) {
    CountRunNgrams(doc, runs, lower, scratch);
    return;
  }
  CountAsciiUnigramsWith(BestCountSimdPath(), doc, runs, lower, index_, scratch);
  CountSingleByteRuns(doc, runs, lower, scratch);
}

int64_t CountVectorizer::MemoryBytes() const {
  return static_cast<int64_t>(sizeof(*this)) + analyzer_.options().stop_words.MemoryBytes() +
         store::VectorBytes(document_frequency_) + static_cast<int64_t>(index_.MemoryBytes());
}

void CountVectorizer::ToState(v1::VectorizerState* state) const {
  AddTerms(state->mutable_vocabulary());
  state->mutable_document_frequency()->Assign(document_frequency_.begin(),
                                              document_frequency_.end());
  state->set_num_documents(num_documents_);
}

void CountVectorizer::RestoreHeldLists(v1::VectorizerConfig* config) const {
  if (fixed_vocabulary_) AddTerms(config->mutable_count()->mutable_vocabulary());
  // Stop words came from the config's text options, which are therefore set.
  if (!analyzer_.options().stop_words.empty()) {
    RestoreStopWordList(analyzer_.options().stop_words, config->mutable_count()->mutable_text());
  }
}

void CountVectorizer::AddTerms(google::protobuf::RepeatedPtrField<std::string>* out) const {
  out->Reserve(out->size() + static_cast<int>(index_.size()));
  for (uint32_t id = 0; id < index_.size(); ++id) out->Add(std::string(index_.term(id)));
}

std::optional<uint32_t> CountVectorizer::FeatureIndex(std::string_view term) const {
  const uint32_t id = index_.Find(term);
  if (id == TermTable::kNotFound) return std::nullopt;
  return id;
}

namespace {

absl::Status Validate(const v1::VectorizerConfig& config) {
  return CountVectorizerOptionsFromConfig(config).status();
}

class CountFitter final : public VectorizerFitter {
 public:
  explicit CountFitter(const CountVectorizerOptions& options) : fitter_(options) {}
  absl::Status Add(std::string_view text) override { return fitter_.Add(text); }
  void Expect(size_t texts, size_t bytes) override { fitter_.Expect(texts, bytes); }
  int64_t MemoryBytes() const override { return fitter_.MemoryBytes(); }
  void SetMemoryBudget(int64_t bytes) override { fitter_.SetMemoryBudget(bytes); }
  absl::StatusOr<VectorizerFit> Finish() override {
    MAAS_ASSIGN_OR_RETURN(CountVectorizer::FitResult fit, fitter_.Finish());
    VectorizerFit out;
    out.rows = std::move(fit.rows);
    out.document_frequency = fit.vectorizer.document_frequency();
    out.vectorizer = std::make_unique<CountVectorizer>(std::move(fit.vectorizer));
    return out;
  }

 private:
  CountVectorizer::Fitter fitter_;
};

absl::StatusOr<std::unique_ptr<VectorizerFitter>> StartFit(const v1::VectorizerConfig& config) {
  MAAS_ASSIGN_OR_RETURN(const CountVectorizerOptions options,
                        CountVectorizerOptionsFromConfig(config));
  return std::unique_ptr<VectorizerFitter>(std::make_unique<CountFitter>(options));
}

absl::StatusOr<std::unique_ptr<Vectorizer>> FromStateKind(v1::VectorizerState* state) {
  MAAS_ASSIGN_OR_RETURN(const CountVectorizerOptions options,
                        CountVectorizerOptionsFromConfig(state->config()));
  // Each field is freed once taken, before the index is built from the vocabulary.
  std::vector<std::string> vocabulary = convert::TakeRepeated(state->mutable_vocabulary());
  std::vector<uint64_t> document_frequency =
      convert::TakeRepeated(state->mutable_document_frequency());
  MAAS_ASSIGN_OR_RETURN(
      CountVectorizer v,
      CountVectorizer::FromState(options, std::move(vocabulary), std::move(document_frequency),
                                 state->num_documents(),
                                 state->fixed_vocabulary_in_state()
                                     ? CountVectorizer::StateVocabulary::kFixed
                                     : CountVectorizer::StateVocabulary::kLearnedOrOptions));
  return std::unique_ptr<Vectorizer>(std::make_unique<CountVectorizer>(std::move(v)));
}

// The stored form: a fixed vocabulary is the state's vocabulary (the same list, as FromState
// requires of a full state), so the config leaves it out.
void CompactStored(v1::VectorizerState* state) {
  if (!state->config().has_count() || state->config().count().vocabulary().empty()) return;
  const google::protobuf::RepeatedPtrField<std::string>& given =
      state->config().count().vocabulary();
  if (!std::equal(given.begin(), given.end(), state->vocabulary().begin(),
                  state->vocabulary().end())) {
    return;
  }
  // Swapped with an empty list that then goes: Clear() would keep the strings for reuse.
  google::protobuf::RepeatedPtrField<std::string>().Swap(
      state->mutable_config()->mutable_count()->mutable_vocabulary());
  state->set_fixed_vocabulary_in_state(true);
}

void ExpandStored(v1::VectorizerState* state) {
  if (!state->fixed_vocabulary_in_state()) return;
  *state->mutable_config()->mutable_count()->mutable_vocabulary() = state->vocabulary();
  state->set_fixed_vocabulary_in_state(false);
}

// Only a fixed vocabulary gives every batch the same features.
absl::Status CheckPartialKind(const v1::VectorizerConfig& config) {
  if (config.count().vocabulary_size() > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "partial training needs features that do not depend on the data, but this count "
      "vectorizer learns its vocabulary from the training texts (each batch would have different "
      "features; scikit-learn's CountVectorizer has no partial_fit): give a fixed vocabulary "
      "(vectorizer.count.vocabulary, e.g. the one GetModel returns) or use the hashing "
      "vectorizer");
}

// A fixed vocabulary and the stop word list (RestoreHeldLists). An unset kind is count's, with
// nothing set.
std::vector<google::protobuf::RepeatedPtrField<std::string>*> HeldLists(
    v1::VectorizerConfig* config) {
  if (!config->has_count()) return {};
  std::vector<google::protobuf::RepeatedPtrField<std::string>*> lists = {
      config->mutable_count()->mutable_vocabulary()};
  if (config->count().has_text()) {
    lists.push_back(config->mutable_count()->mutable_text()->mutable_stop_word_list());
  }
  return lists;
}

}  // namespace

const VectorizerKind kCountVectorizerKind = {"count",        &Validate,         &StartFit,
                                             &FromStateKind, &CheckPartialKind, &HeldLists,
                                             &CompactStored, &ExpandStored};

}  // namespace maas::discriminative
