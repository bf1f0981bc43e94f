#include "services/discriminative/core/hashing_simd.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace maas::discriminative {
namespace {

constexpr uint32_t kC1 = 0xcc9e2d51, kC2 = 0x1b873593, kBlockAdd = 0xe6546b64;
constexpr uint32_t kFinal1 = 0x85ebca6b, kFinal2 = 0xc2b2ae35;

inline uint32_t Rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

// The four bytes at `p` as a little-endian word (MurmurHash3's block), on any host.
inline uint32_t LoadLittle32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

// The word of four ASCII bytes with its capitals lowercased: a byte's top bit, after adding 0x3F,
// says c >= 'A', after adding 0x25, c >= '['; bytes below 0x80 carry nothing into the next byte.
inline uint32_t LowerAscii4(uint32_t w) {
  const uint32_t at_least_a = w + 0x3F3F3F3Fu;
  const uint32_t past_z = w + 0x25252525u;
  return w | ((at_least_a & ~past_z & 0x80808080u) >> 2);
}

inline uint32_t LowerAscii1(uint32_t c) { return c + (c - 'A' < 26u ? 32u : 0u); }

// MurmurHash3_x86_32 of bytes[0, n) with `seed`; with kLower the bytes (then all ASCII) are
// hashed as if their capitals were lowercase.
template <bool kLower>
inline uint32_t Murmur3(const unsigned char* bytes, size_t n, uint32_t seed) {
  uint32_t h = seed;
  const size_t blocks = n / 4;
  for (size_t i = 0; i < blocks; ++i) {
    uint32_t k = LoadLittle32(bytes + 4 * i);
    if constexpr (kLower) k = LowerAscii4(k);
    k *= kC1;
    k = Rotl(k, 15);
    k *= kC2;
    h ^= k;
    h = Rotl(h, 13);
    h = h * 5 + kBlockAdd;
  }
  const unsigned char* tail = bytes + blocks * 4;
  const auto byte = [&](size_t i) -> uint32_t {
    return kLower ? LowerAscii1(tail[i]) : static_cast<uint32_t>(tail[i]);
  };
  uint32_t k = 0;
  switch (n & 3) {
    case 3:
      k ^= byte(2) << 16;
      [[fallthrough]];
    case 2:
      k ^= byte(1) << 8;
      [[fallthrough]];
    case 1:
      k ^= byte(0);
      k *= kC1;
      k = Rotl(k, 15);
      k *= kC2;
      h ^= k;
  }
  h ^= static_cast<uint32_t>(n);
  h ^= h >> 16;
  h *= kFinal1;
  h ^= h >> 13;
  h *= kFinal2;
  h ^= h >> 16;
  return h;
}

// Run k's hash, one run at a time.
inline uint32_t RunHash(const char* doc, const AsciiRuns& runs, size_t k, bool lower) {
  const auto* p = reinterpret_cast<const unsigned char*>(doc) + runs.starts[k];
  const size_t n = runs.ends[k] - runs.starts[k];
  return lower ? Murmur3<true>(p, n, 0) : Murmur3<false>(p, n, 0);
}

void HashAsciiRunsBaseline(std::string_view doc, const AsciiRuns& runs, bool lower,
                           uint32_t* hashes) {
  for (size_t k = 0; k < runs.count; ++k) hashes[k] = RunHash(doc.data(), runs, k, lower);
}

#if defined(__x86_64__)
// The runs the vector paths hash in lanes: up to 16 bytes, each read by one 16-byte load.
constexpr uint32_t kLaneRunBytes = 16;

// Where a run's 16 bytes are read: the text itself, or, for a run within 16 bytes of the text's
// end, a zero-padded copy of the text's last 32 bytes (nothing read past the text).
class RunBytes {
 public:
  explicit RunBytes(std::string_view doc) : base_(doc.data()), size_(doc.size()) {
    tail_from_ = size_ > 32 ? size_ - 32 : 0;
    if (size_ != 0) std::memcpy(tail_, base_ + tail_from_, size_ - tail_from_);
  }
  RunBytes(const RunBytes&) = delete;
  RunBytes& operator=(const RunBytes&) = delete;

  // Whether a run starting at `start` is read from the copy.
  bool NearEnd(uint32_t start) const { return start + size_t{kLaneRunBytes} > size_; }
  __m128i Load(uint32_t start, bool near_end) const {
    const char* p = near_end && NearEnd(start) ? tail_ + (start - tail_from_) : base_ + start;
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  }

 private:
  const char* base_;
  size_t size_;
  size_t tail_from_;
  alignas(16) char tail_[64] = {};
};

// The runs of `lanes` (bits of a group of runs from k) longer than the lanes take, hashed one by
// one into out[j] for run k + j, over what the vector step computed.
inline void HashLongRuns(unsigned lanes, const char* doc, const AsciiRuns& runs, size_t k,
                         bool lower, uint32_t* out) {
  for (; lanes != 0; lanes &= lanes - 1) {
    const size_t j = static_cast<size_t>(__builtin_ctz(lanes));
    out[j] = RunHash(doc, runs, k + j, lower);
  }
}

// A hashed term (hashing_simd.h) of MurmurHash3 h for a power-of-two n_features: column |h| &
// column_mask (|INT32_MIN| = 2^31, whose column is 0), the sign bit of h when alternate_sign.
inline uint32_t PowerOfTwoTerm(uint32_t h, uint32_t column_mask, uint32_t sign_mask) {
  const uint32_t magnitude = static_cast<int32_t>(h) < 0 ? 0u - h : h;
  return (magnitude & column_mask) | (h & sign_mask);
}

void HashAsciiRunTermsBaseline(std::string_view doc, const AsciiRuns& runs, bool lower,
                               uint32_t column_mask, uint32_t sign_mask, uint32_t* terms,
                               size_t* count) {
  size_t m = 0;
  for (size_t k = 0; k < runs.count; ++k) {
    if (runs.ends[k] - runs.starts[k] < 2) continue;
    terms[m++] = PowerOfTwoTerm(RunHash(doc.data(), runs, k, lower), column_mask, sign_mask);
  }
  *count = m;
}

MAAS_COUNT_AVX512_WARNINGS_OFF

// MurmurHash3_x86_32 (seed 0) of 16 byte strings side by side: lane j's string is the bytes of
// words[0..3] lane j, little-endian, of length len (at most 16; the bytes past it zero). A block's
// steps where the length covers the block, the tail's where it ends inside, by lane masks.
MAAS_COUNT_AVX512 inline __m512i Murmur3Lanes16(const __m512i* words, __m512i len) {
  const __m512i c1 = _mm512_set1_epi32(static_cast<int>(kC1));
  const __m512i c2 = _mm512_set1_epi32(static_cast<int>(kC2));
  const __m512i block_add = _mm512_set1_epi32(static_cast<int>(kBlockAdd));
  __m512i h = _mm512_setzero_si512();
  for (int i = 0; i < 4; ++i) {
    __m512i k = _mm512_mullo_epi32(words[i], c1);
    k = _mm512_mullo_epi32(_mm512_rol_epi32(k, 15), c2);
    const __m512i mixed = _mm512_xor_si512(h, k);
    __m512i block = _mm512_rol_epi32(mixed, 13);
    block = _mm512_add_epi32(_mm512_add_epi32(block, _mm512_slli_epi32(block, 2)), block_add);
    const __mmask16 whole = _mm512_cmpge_epi32_mask(len, _mm512_set1_epi32(4 * (i + 1)));
    const __mmask16 tail = _mm512_cmpgt_epi32_mask(len, _mm512_set1_epi32(4 * i)) & ~whole;
    h = _mm512_mask_mov_epi32(h, tail, mixed);
    h = _mm512_mask_mov_epi32(h, whole, block);
  }
  h = _mm512_xor_si512(h, len);
  h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
  h = _mm512_mullo_epi32(h, _mm512_set1_epi32(static_cast<int>(kFinal1)));
  h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 13));
  h = _mm512_mullo_epi32(h, _mm512_set1_epi32(static_cast<int>(kFinal2)));
  return _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
}

// HashAsciiRunsBaseline's hashes on the AVX-512 path: 16 runs per step, each run's 16 bytes by one
// load, the 16 loads transposed into four vectors of words (word i of every run), masked to the
// runs' lengths and lowercased in the lanes; runs longer than 16 bytes (rare) hashed one by one
// into the step's vector. emit(k, lanes, len, h) takes each step: runs k .. k + 15 (those of
// `lanes`), their lengths and their hashes. (emit: a functor whose call has this target.)
template <typename Emit>
MAAS_COUNT_AVX512 __attribute__((always_inline)) inline void HashRunStepsAvx512(
    std::string_view doc, const AsciiRuns& runs, bool lower, Emit& emit) {
  const RunBytes bytes(doc);
  const __m512i ones = _mm512_set1_epi32(-1);
  for (size_t k = 0; k < runs.count; k += 16) {
    const size_t left = std::min<size_t>(runs.count - k, 16);
    const __mmask16 lanes = static_cast<__mmask16>((1u << left) - 1);
    // (Starts ascend: when the last run of the step is not near the end, none is.)
    const bool near_end = bytes.NearEnd(runs.starts[k + left - 1]);
    __m128i t[16];
    for (size_t j = 0; j < 16; ++j) {
      t[j] = j < left ? bytes.Load(runs.starts[k + j], near_end) : _mm_setzero_si128();
    }
    __m512i z[4];
    for (size_t r = 0; r < 4; ++r) {
      z[r] = _mm512_inserti32x4(
          _mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(t[r]), t[r + 4], 1),
                             t[r + 8], 2),
          t[r + 12], 3);
    }
    const __m512i a = _mm512_unpacklo_epi32(z[0], z[1]), b = _mm512_unpackhi_epi32(z[0], z[1]);
    const __m512i c = _mm512_unpacklo_epi32(z[2], z[3]), d = _mm512_unpackhi_epi32(z[2], z[3]);
    __m512i words[4] = {_mm512_unpacklo_epi64(a, c), _mm512_unpackhi_epi64(a, c),
                        _mm512_unpacklo_epi64(b, d), _mm512_unpackhi_epi64(b, d)};
    const __m512i len = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(lanes, runs.ends + k),
                                         _mm512_maskz_loadu_epi32(lanes, runs.starts + k));
    const __m512i bits = _mm512_slli_epi32(len, 3);
    for (int i = 0; i < 4; ++i) {
      // The bytes of word i within the length (a shift by 32 or more gives 0: all kept).
      const __m512i shift = _mm512_max_epi32(_mm512_sub_epi32(bits, _mm512_set1_epi32(32 * i)),
                                             _mm512_setzero_si512());
      words[i] = _mm512_andnot_si512(_mm512_sllv_epi32(ones, shift), words[i]);
      if (lower) {
        const __m512i at_least_a = _mm512_add_epi32(words[i], _mm512_set1_epi32(0x3F3F3F3F));
        const __m512i past_z = _mm512_add_epi32(words[i], _mm512_set1_epi32(0x25252525));
        const __m512i capital = _mm512_and_si512(_mm512_andnot_si512(past_z, at_least_a),
                                                 _mm512_set1_epi32(static_cast<int>(0x80808080u)));
        words[i] = _mm512_or_si512(words[i], _mm512_srli_epi32(capital, 2));
      }
    }
    __m512i h = Murmur3Lanes16(words, len);
    const __mmask16 long_runs =
        _mm512_mask_cmpgt_epi32_mask(lanes, len, _mm512_set1_epi32(kLaneRunBytes));
    if (long_runs != 0) {
      alignas(64) uint32_t step[16];
      _mm512_store_si512(step, h);
      HashLongRuns(long_runs, doc.data(), runs, k, lower, step);
      h = _mm512_load_si512(step);
    }
    emit(k, lanes, len, h);
  }
}

// HashRunStepsAvx512's emit for HashAsciiRuns: each step's hashes stored.
struct StoreHashesAvx512 {
  uint32_t* hashes;
  MAAS_COUNT_AVX512 void operator()(size_t k, __mmask16 lanes, __m512i, __m512i h) {
    _mm512_mask_storeu_epi32(hashes + k, lanes, h);
  }
};

// HashRunStepsAvx512's emit for HashAsciiRunTerms: each step's terms of its runs of 2 bytes or
// more, compressed to the end of those before.
struct StoreTermsAvx512 {
  __m512i column_mask, sign_mask;
  uint32_t* terms;
  size_t count = 0;
  MAAS_COUNT_AVX512 void operator()(size_t, __mmask16 lanes, __m512i len, __m512i h) {
    const __m512i term = _mm512_or_si512(_mm512_and_si512(_mm512_abs_epi32(h), column_mask),
                                         _mm512_and_si512(h, sign_mask));
    const __mmask16 keep = _mm512_mask_cmpge_epi32_mask(lanes, len, _mm512_set1_epi32(2));
    _mm512_mask_compressstoreu_epi32(terms + count, keep, term);
    count += static_cast<size_t>(_mm_popcnt_u32(keep));
  }
};

MAAS_COUNT_AVX512 void HashAsciiRunsAvx512(std::string_view doc, const AsciiRuns& runs, bool lower,
                                           uint32_t* hashes) {
  StoreHashesAvx512 emit{hashes};
  HashRunStepsAvx512(doc, runs, lower, emit);
}

MAAS_COUNT_AVX512 void HashAsciiRunTermsAvx512(std::string_view doc, const AsciiRuns& runs,
                                               bool lower, uint32_t column_mask, uint32_t sign_mask,
                                               uint32_t* terms, size_t* count) {
  StoreTermsAvx512 emit{_mm512_set1_epi32(static_cast<int>(column_mask)),
                        _mm512_set1_epi32(static_cast<int>(sign_mask)), terms};
  HashRunStepsAvx512(doc, runs, lower, emit);
  *count = emit.count;
}

// The most terms the vector paths rank at once (more are split into buckets, BucketedTermsRow):
// the compares grow as n^2.
constexpr size_t kRankMaxTerms = 256;

inline uint32_t ColumnOf(uint32_t term) { return term & ~kHashedTermNegative; }

// The most blocks of 0x10000 columns the AVX2 path splits a text's terms into when the columns
// span more than 0x10000 (n_features from 2^17 to 2^22, as the default 2^20); wider spans take
// 32-bit lanes.
constexpr size_t kMaxColumnBlocks = 64;

// A text's terms whose columns span `blocks` blocks of 0x10000 from `lo`: each one's 16-bit offset
// within its block, grouped by block in offsets[start[b], start[b + 1]), with its term's index in
// term_of. A term's place is its block's start plus the number of its block's offsets below its
// own: 16-bit compares against a few offsets instead of 32-bit ones against all the terms.
struct ColumnBlocks {
  uint32_t start[kMaxColumnBlocks + 1];
  uint16_t offsets[kRankMaxTerms];
  uint16_t term_of[kRankMaxTerms];

  ColumnBlocks(const uint32_t* terms, size_t n, uint32_t lo, size_t blocks) {
    uint32_t next[kMaxColumnBlocks];
    std::memset(next, 0, blocks * sizeof(uint32_t));
    for (size_t i = 0; i < n; ++i) ++next[(ColumnOf(terms[i]) - lo) >> 16];
    uint32_t sum = 0;
    for (size_t b = 0; b < blocks; ++b) {
      start[b] = sum;
      sum += next[b];
      next[b] = start[b];
    }
    start[blocks] = sum;
    for (size_t i = 0; i < n; ++i) {
      const uint32_t offset = ColumnOf(terms[i]) - lo;
      const uint32_t at = next[offset >> 16]++;
      offsets[at] = static_cast<uint16_t>(offset);
      term_of[at] = static_cast<uint16_t>(i);
    }
  }
};

// The number of 0x10000-column blocks from lo to hi, or 0 when there are more than
// kMaxColumnBlocks.
inline size_t ColumnBlockCount(uint32_t lo, uint32_t hi) {
  const size_t blocks = ((hi - lo) >> 16) + 1;
  return blocks <= kMaxColumnBlocks ? blocks : 0;
}

// The row of the terms from each one's place: place[i] is the number of terms whose column is
// below term i's, so that equal columns share a place. Sums the values at the places, then writes
// the occupied places in order (branch-free: every place written, the count advanced by one for
// an occupied one). Returns the number of distinct columns.
inline size_t RowFromPlaces(const uint32_t* terms, const uint32_t* place, size_t n, bool binary,
                            uint32_t* out_index, double* out_value) {
  double sums[kRankMaxTerms];
  uint32_t at[kRankMaxTerms];  // column + 1 of the terms at each place; 0: none
  std::memset(sums, 0, n * sizeof(double));
  std::memset(at, 0, n * sizeof(uint32_t));
  for (size_t i = 0; i < n; ++i) {
    const uint32_t p = place[i];
    sums[p] += (terms[i] & kHashedTermNegative) != 0 ? -1.0 : 1.0;
    at[p] = (terms[i] & ~kHashedTermNegative) + 1;
  }
  size_t d = 0;
  for (size_t p = 0; p < n; ++p) {
    out_index[d] = at[p] - 1;
    out_value[d] = binary ? 1.0 : sums[p];
    d += at[p] != 0 ? 1 : 0;
  }
  return d;
}

// HashedTermsRowWith on the AVX-512 path: the columns' offsets from the smallest in 16-bit lanes
// (32 per vector) when they span at most 0x10000, as texts of a small n_features always do, else
// the columns in 32-bit lanes; padding lanes never below a term.
MAAS_COUNT_AVX512 bool HashedTermsRowAvx512(const uint32_t* terms, size_t n, bool binary,
                                            uint32_t* out_index, double* out_value,
                                            size_t* distinct) {
  if (n > kRankMaxTerms) return false;
  const __m512i column_bits = _mm512_set1_epi32(static_cast<int>(~kHashedTermNegative));
  const __m512i above = _mm512_set1_epi32(-1);
  __m512i v[kRankMaxTerms / 16];
  __m512i low = above, high = _mm512_setzero_si512();
  const size_t vectors = (n + 15) / 16;
  for (size_t j = 0; j < vectors; ++j) {
    const size_t left = n - 16 * j;
    const __mmask16 lanes = left >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << left) - 1);
    v[j] = _mm512_mask_and_epi32(above, lanes, _mm512_maskz_loadu_epi32(lanes, terms + 16 * j),
                                 column_bits);
    low = _mm512_min_epu32(low, v[j]);
    high = _mm512_mask_max_epu32(high, lanes, high, v[j]);
  }
  uint32_t place[kRankMaxTerms];
  const uint32_t lo = n != 0 ? _mm512_reduce_min_epu32(low) : 0;
  const uint32_t hi = n != 0 ? _mm512_reduce_max_epu32(high) : 0;
  if (hi - lo <= 0xFFFF) {
    const __m512i base = _mm512_set1_epi32(static_cast<int>(lo));
    __m512i w[kRankMaxTerms / 32];
    const size_t halves = (vectors + 1) / 2;
    for (size_t j = 0; j < halves; ++j) {
      // Lanes past n: 0xFFFF, never below an offset.
      const __m256i first = _mm512_cvtusepi32_epi16(_mm512_sub_epi32(v[2 * j], base));
      const __m256i second = 2 * j + 1 < vectors
                                 ? _mm512_cvtusepi32_epi16(_mm512_sub_epi32(v[2 * j + 1], base))
                                 : _mm256_set1_epi16(-1);
      w[j] = _mm512_inserti64x4(_mm512_castsi256_si512(first), second, 1);
    }
    for (size_t i = 0; i < n; ++i) {
      const __m512i b =
          _mm512_set1_epi16(static_cast<short>((terms[i] & ~kHashedTermNegative) - lo));
      uint32_t below = 0;
      for (size_t j = 0; j < halves; ++j) {
        below += static_cast<uint32_t>(_mm_popcnt_u32(_mm512_cmplt_epu16_mask(w[j], b)));
      }
      place[i] = below;
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      const __m512i b = _mm512_set1_epi32(static_cast<int>(terms[i] & ~kHashedTermNegative));
      uint32_t below = 0;
      for (size_t j = 0; j < vectors; ++j) {
        below += static_cast<uint32_t>(_mm_popcnt_u32(_mm512_cmplt_epu32_mask(v[j], b)));
      }
      place[i] = below;
    }
  }
  *distinct = RowFromPlaces(terms, place, n, binary, out_index, out_value);
  return true;
}
MAAS_COUNT_AVX512_WARNINGS_ON

#define MAAS_HASH_AVX2 __attribute__((target("avx2,bmi,popcnt")))

MAAS_HASH_AVX2 inline __m256i Rotl8x32(__m256i x, int r) {
  return _mm256_or_si256(_mm256_slli_epi32(x, r), _mm256_srli_epi32(x, 32 - r));
}

// Murmur3Lanes16 on 8 lanes.
MAAS_HASH_AVX2 inline __m256i Murmur3Lanes8(const __m256i* words, __m256i len) {
  const __m256i c1 = _mm256_set1_epi32(static_cast<int>(kC1));
  const __m256i c2 = _mm256_set1_epi32(static_cast<int>(kC2));
  const __m256i block_add = _mm256_set1_epi32(static_cast<int>(kBlockAdd));
  __m256i h = _mm256_setzero_si256();
  for (int i = 0; i < 4; ++i) {
    __m256i k = _mm256_mullo_epi32(words[i], c1);
    k = _mm256_mullo_epi32(Rotl8x32(k, 15), c2);
    const __m256i mixed = _mm256_xor_si256(h, k);
    __m256i block = Rotl8x32(mixed, 13);
    block = _mm256_add_epi32(_mm256_add_epi32(block, _mm256_slli_epi32(block, 2)), block_add);
    // Lengths are small and positive: signed compares.
    const __m256i whole = _mm256_cmpgt_epi32(len, _mm256_set1_epi32(4 * (i + 1) - 1));
    const __m256i started = _mm256_cmpgt_epi32(len, _mm256_set1_epi32(4 * i));
    h = _mm256_blendv_epi8(h, mixed, _mm256_andnot_si256(whole, started));
    h = _mm256_blendv_epi8(h, block, whole);
  }
  h = _mm256_xor_si256(h, len);
  h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
  h = _mm256_mullo_epi32(h, _mm256_set1_epi32(static_cast<int>(kFinal1)));
  h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 13));
  h = _mm256_mullo_epi32(h, _mm256_set1_epi32(static_cast<int>(kFinal2)));
  return _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
}

// HashRunStepsAvx512 on the AVX2 path: 8 runs per step; emit(k, lanes, len, h) with `lanes`
// all-ones 32-bit lanes.
template <typename Emit>
MAAS_HASH_AVX2 __attribute__((always_inline)) inline void HashRunStepsAvx2(std::string_view doc,
                                                                           const AsciiRuns& runs,
                                                                           bool lower, Emit& emit) {
  const RunBytes bytes(doc);
  const __m256i ones = _mm256_set1_epi32(-1);
  for (size_t k = 0; k < runs.count; k += 8) {
    const size_t left = std::min<size_t>(runs.count - k, 8);
    const __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left)),
                                             _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const bool near_end = bytes.NearEnd(runs.starts[k + left - 1]);
    __m128i t[8];
    for (size_t j = 0; j < 8; ++j) {
      t[j] = j < left ? bytes.Load(runs.starts[k + j], near_end) : _mm_setzero_si128();
    }
    __m256i z[4];
    for (size_t r = 0; r < 4; ++r) {
      z[r] = _mm256_inserti128_si256(_mm256_castsi128_si256(t[r]), t[r + 4], 1);
    }
    const __m256i a = _mm256_unpacklo_epi32(z[0], z[1]), b = _mm256_unpackhi_epi32(z[0], z[1]);
    const __m256i c = _mm256_unpacklo_epi32(z[2], z[3]), d = _mm256_unpackhi_epi32(z[2], z[3]);
    __m256i words[4] = {_mm256_unpacklo_epi64(a, c), _mm256_unpackhi_epi64(a, c),
                        _mm256_unpacklo_epi64(b, d), _mm256_unpackhi_epi64(b, d)};
    const __m256i len = _mm256_sub_epi32(
        _mm256_maskload_epi32(reinterpret_cast<const int*>(runs.ends + k), lanes),
        _mm256_maskload_epi32(reinterpret_cast<const int*>(runs.starts + k), lanes));
    const __m256i bits = _mm256_slli_epi32(len, 3);
    for (int i = 0; i < 4; ++i) {
      const __m256i shift = _mm256_max_epi32(_mm256_sub_epi32(bits, _mm256_set1_epi32(32 * i)),
                                             _mm256_setzero_si256());
      words[i] = _mm256_andnot_si256(_mm256_sllv_epi32(ones, shift), words[i]);
      if (lower) {
        const __m256i at_least_a = _mm256_add_epi32(words[i], _mm256_set1_epi32(0x3F3F3F3F));
        const __m256i past_z = _mm256_add_epi32(words[i], _mm256_set1_epi32(0x25252525));
        const __m256i capital = _mm256_and_si256(_mm256_andnot_si256(past_z, at_least_a),
                                                 _mm256_set1_epi32(static_cast<int>(0x80808080u)));
        words[i] = _mm256_or_si256(words[i], _mm256_srli_epi32(capital, 2));
      }
    }
    __m256i h = Murmur3Lanes8(words, len);
    const auto long_runs = static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(
        _mm256_and_si256(lanes, _mm256_cmpgt_epi32(len, _mm256_set1_epi32(kLaneRunBytes))))));
    if (long_runs != 0) {
      alignas(32) uint32_t step[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(step), h);
      HashLongRuns(long_runs, doc.data(), runs, k, lower, step);
      h = _mm256_load_si256(reinterpret_cast<const __m256i*>(step));
    }
    emit(k, lanes, len, h);
  }
}

// HashRunStepsAvx2's emits: StoreHashesAvx512's and StoreTermsAvx512's (the terms compacted one by
// one: AVX2 has no compress).
struct StoreHashesAvx2 {
  uint32_t* hashes;
  MAAS_HASH_AVX2 void operator()(size_t k, __m256i lanes, __m256i, __m256i h) {
    _mm256_maskstore_epi32(reinterpret_cast<int*>(hashes + k), lanes, h);
  }
};
struct StoreTermsAvx2 {
  __m256i column_mask, sign_mask;
  uint32_t* terms;
  size_t count = 0;
  MAAS_HASH_AVX2 void operator()(size_t, __m256i lanes, __m256i len, __m256i h) {
    const __m256i term = _mm256_or_si256(_mm256_and_si256(_mm256_abs_epi32(h), column_mask),
                                         _mm256_and_si256(h, sign_mask));
    alignas(32) uint32_t step[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(step), term);
    const auto keep = static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(
        _mm256_and_si256(lanes, _mm256_cmpgt_epi32(len, _mm256_set1_epi32(1))))));
    // Every run's lane written (nothing past the last run), the count advanced for those kept.
    const auto runs_here = static_cast<unsigned>(
        _mm_popcnt_u32(static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(lanes)))));
    for (unsigned j = 0; j < runs_here; ++j) {
      terms[count] = step[j];
      count += keep >> j & 1;
    }
  }
};

MAAS_HASH_AVX2 void HashAsciiRunsAvx2(std::string_view doc, const AsciiRuns& runs, bool lower,
                                      uint32_t* hashes) {
  StoreHashesAvx2 emit{hashes};
  HashRunStepsAvx2(doc, runs, lower, emit);
}

MAAS_HASH_AVX2 void HashAsciiRunTermsAvx2(std::string_view doc, const AsciiRuns& runs, bool lower,
                                          uint32_t column_mask, uint32_t sign_mask, uint32_t* terms,
                                          size_t* count) {
  StoreTermsAvx2 emit{_mm256_set1_epi32(static_cast<int>(column_mask)),
                      _mm256_set1_epi32(static_cast<int>(sign_mask)), terms};
  HashRunStepsAvx2(doc, runs, lower, emit);
  *count = emit.count;
}

// The places of terms split into blocks (ColumnBlocks), ranked within each block by 16-bit
// compares, 16 offsets per vector, sign-flipped for the signed compare (lanes past the block
// 0x7FFF, never below an offset). (On the AVX-512 path, whose 32-bit compares take 16 columns at
// once, the blocks measured slower than the columns: 0.0249 against 0.0305 s.)
MAAS_HASH_AVX2 void BlockPlacesAvx2(const ColumnBlocks& c, size_t blocks, uint32_t* place) {
  alignas(32) uint16_t w[kRankMaxTerms];
  for (size_t b = 0; b < blocks; ++b) {
    const uint32_t s = c.start[b], e = c.start[b + 1];
    const size_t vectors = (e - s + 15) / 16;
    for (uint32_t t = s; t < e; ++t) w[t - s] = c.offsets[t] ^ 0x8000u;
    for (size_t i = e - s; i < 16 * vectors; ++i) w[i] = 0x7FFF;
    for (uint32_t t = s; t < e; ++t) {
      const __m256i key = _mm256_set1_epi16(static_cast<short>(c.offsets[t] ^ 0x8000u));
      uint32_t below = 0;  // each lane's compare is two bits of the byte mask
      for (size_t j = 0; j < vectors; ++j) {
        const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 16 * j));
        below += static_cast<uint32_t>(_mm_popcnt_u32(
            static_cast<unsigned>(_mm256_movemask_epi8(_mm256_cmpgt_epi16(key, v)))));
      }
      place[c.term_of[t]] = s + below / 2;
    }
  }
}

// HashedTermsRowAvx512 on the AVX2 path: 16-bit offsets (16 per vector, sign-flipped for the
// signed compare), the same in blocks of 0x10000 columns (BlockPlacesAvx2: 2^20 features 0.0415
// -> 0.0378 s), or columns (8 per vector; below 2^31, so signed compares order them).
MAAS_HASH_AVX2 bool HashedTermsRowAvx2(const uint32_t* terms, size_t n, bool binary,
                                       uint32_t* out_index, double* out_value, size_t* distinct) {
  if (n > kRankMaxTerms) return false;
  uint32_t lo = ~uint32_t{0}, hi = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t column = terms[i] & ~kHashedTermNegative;
    lo = std::min(lo, column);
    hi = std::max(hi, column);
  }
  uint32_t place[kRankMaxTerms];
  if (n != 0 && hi - lo > 0xFFFF && ColumnBlockCount(lo, hi) != 0) {
    const size_t blocks = ColumnBlockCount(lo, hi);
    BlockPlacesAvx2(ColumnBlocks(terms, n, lo, blocks), blocks, place);
  } else if (n != 0 && hi - lo <= 0xFFFF) {
    const size_t vectors = (n + 15) / 16;
    alignas(32) uint16_t offsets[kRankMaxTerms];
    for (size_t i = 0; i < n; ++i) {
      offsets[i] = static_cast<uint16_t>(((terms[i] & ~kHashedTermNegative) - lo) ^ 0x8000u);
    }
    for (size_t i = n; i < 16 * vectors; ++i) offsets[i] = 0x7FFF;  // never below an offset
    for (size_t i = 0; i < n; ++i) {
      const __m256i b = _mm256_set1_epi16(static_cast<short>(offsets[i]));
      uint32_t below = 0;  // each lane's compare is two bits of the byte mask
      for (size_t j = 0; j < vectors; ++j) {
        const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(offsets + 16 * j));
        below += static_cast<uint32_t>(
            _mm_popcnt_u32(static_cast<unsigned>(_mm256_movemask_epi8(_mm256_cmpgt_epi16(b, w)))));
      }
      place[i] = below / 2;
    }
  } else {
    const size_t vectors = (n + 7) / 8;
    alignas(32) uint32_t columns[kRankMaxTerms];
    for (size_t i = 0; i < n; ++i) columns[i] = terms[i] & ~kHashedTermNegative;
    for (size_t i = n; i < 8 * vectors; ++i) columns[i] = ~kHashedTermNegative;  // above all
    for (size_t i = 0; i < n; ++i) {
      const __m256i b = _mm256_set1_epi32(static_cast<int>(columns[i]));
      uint32_t below = 0;
      for (size_t j = 0; j < vectors; ++j) {
        const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(columns + 8 * j));
        below += static_cast<uint32_t>(_mm_popcnt_u32(static_cast<unsigned>(
            _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(b, w))))));
      }
      place[i] = below;
    }
  }
  *distinct = RowFromPlaces(terms, place, n, binary, out_index, out_value);
  return true;
}

// The row of n terms (RowFromPlaces's) by sorting them by column and summing each column's run:
// for a bucket of BucketedTermsRow with more than kRankMaxTerms terms (one column repeated
// hundreds of times, as a long text's commonest word).
inline size_t SortedTermsRow(uint32_t* terms, size_t n, bool binary, uint32_t* out_index,
                             double* out_value) {
  std::sort(terms, terms + n, [](uint32_t a, uint32_t b) { return ColumnOf(a) < ColumnOf(b); });
  size_t d = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t column = ColumnOf(terms[i]);
    const double value = (terms[i] & kHashedTermNegative) != 0 ? -1.0 : 1.0;
    if (d != 0 && out_index[d - 1] == column) {
      out_value[d - 1] += value;
    } else {
      out_index[d] = column;
      out_value[d] = value;
      ++d;
    }
  }
  if (binary) std::fill(out_value, out_value + d, 1.0);
  return d;
}

// HashedTermsRowWith with a path's kernel `row` (its signature), which takes up to kRankMaxTerms
// terms: more are split into buckets by column range, a power of two of them, each 2^shift
// columns wide from the smallest column, with ~32 terms each on average (a histogram, then the
// terms scattered into their buckets), each bucket's row written after those below (a bucket
// with more than kRankMaxTerms by SortedTermsRow).
template <typename Row>
__attribute__((always_inline)) inline bool BucketedTermsRow(Row row, const uint32_t* terms,
                                                            size_t n, bool binary,
                                                            AnalyzerScratch* scratch,
                                                            uint32_t* out_index, double* out_value,
                                                            size_t* distinct) {
  if (n <= kRankMaxTerms) return row(terms, n, binary, out_index, out_value, distinct);
  uint32_t lo = ColumnOf(terms[0]), hi = lo;
  for (size_t i = 1; i < n; ++i) {
    lo = std::min(lo, ColumnOf(terms[i]));
    hi = std::max(hi, ColumnOf(terms[i]));
  }
  size_t buckets = 2;
  while (buckets * 32 < n) buckets *= 2;
  unsigned shift = 0;
  while (((hi - lo) >> shift) >= buckets) ++shift;
  std::vector<uint32_t>& starts = scratch->bucket_starts;
  starts.assign(buckets + 1, 0);
  for (size_t i = 0; i < n; ++i) ++starts[((ColumnOf(terms[i]) - lo) >> shift) + 1];
  for (size_t b = 0; b < buckets; ++b) starts[b + 1] += starts[b];
  std::vector<uint32_t>& bucketed = scratch->bucketed;
  if (bucketed.size() < n) bucketed.resize(n);
  uint32_t* part = bucketed.data();
  for (size_t i = 0; i < n; ++i) part[starts[(ColumnOf(terms[i]) - lo) >> shift]++] = terms[i];
  // starts[b] is now the end of bucket b, the start of bucket b + 1. A bucket's row may write
  // up to its term count from its place: within the n of room, as it is at most its start.
  size_t d = 0;
  uint32_t begin = 0;
  for (size_t b = 0; b < buckets; ++b) {
    const uint32_t end = starts[b];
    size_t bucket_distinct = 0;
    if (!row(part + begin, end - begin, binary, out_index + d, out_value + d, &bucket_distinct)) {
      bucket_distinct =
          SortedTermsRow(part + begin, end - begin, binary, out_index + d, out_value + d);
    }
    d += bucket_distinct;
    begin = end;
  }
  *distinct = d;
  return true;
}
#endif

}  // namespace

bool HashedTermsRowWith(CountSimdPath path, const uint32_t* terms, size_t n, bool binary,
                        AnalyzerScratch* scratch, uint32_t* out_index, double* out_value,
                        size_t* distinct) {
#if defined(__x86_64__)
  if (path == CountSimdPath::kAvx512) {
    return BucketedTermsRow(HashedTermsRowAvx512, terms, n, binary, scratch, out_index, out_value,
                            distinct);
  }
  if (path == CountSimdPath::kAvx2) {
    return BucketedTermsRow(HashedTermsRowAvx2, terms, n, binary, scratch, out_index, out_value,
                            distinct);
  }
#endif
  (void)path, (void)terms, (void)n, (void)binary, (void)scratch, (void)out_index, (void)out_value,
      (void)distinct;
  return false;
}

uint32_t MurmurHash3X86_32(std::string_view data, uint32_t seed) {
  return Murmur3<false>(reinterpret_cast<const unsigned char*>(data.data()), data.size(), seed);
}

void HashAsciiRunsWith(CountSimdPath path, std::string_view doc, const AsciiRuns& runs, bool lower,
                       uint32_t* hashes) {
#if defined(__x86_64__)
  if (path == CountSimdPath::kAvx512) return HashAsciiRunsAvx512(doc, runs, lower, hashes);
  if (path == CountSimdPath::kAvx2) return HashAsciiRunsAvx2(doc, runs, lower, hashes);
#endif
  (void)path;
  HashAsciiRunsBaseline(doc, runs, lower, hashes);
}

void HashAsciiRuns(std::string_view doc, const AsciiRuns& runs, bool lower, uint32_t* hashes) {
  HashAsciiRunsWith(BestCountSimdPath(), doc, runs, lower, hashes);
}

size_t HashAsciiRunTermsWith(CountSimdPath path, std::string_view doc, const AsciiRuns& runs,
                             bool lower, uint32_t n_features, bool alternate_sign,
                             uint32_t* terms) {
  const uint32_t column_mask = n_features - 1;
  const uint32_t sign_mask = alternate_sign ? kHashedTermNegative : 0u;
  size_t count = 0;
#if defined(__x86_64__)
  if (path == CountSimdPath::kAvx512) {
    HashAsciiRunTermsAvx512(doc, runs, lower, column_mask, sign_mask, terms, &count);
    return count;
  }
  if (path == CountSimdPath::kAvx2) {
    HashAsciiRunTermsAvx2(doc, runs, lower, column_mask, sign_mask, terms, &count);
    return count;
  }
#endif
  (void)path;
  HashAsciiRunTermsBaseline(doc, runs, lower, column_mask, sign_mask, terms, &count);
  return count;
}

size_t HashAsciiRunTerms(std::string_view doc, const AsciiRuns& runs, bool lower,
                         uint32_t n_features, bool alternate_sign, uint32_t* terms) {
  return HashAsciiRunTermsWith(BestCountSimdPath(), doc, runs, lower, n_features, alternate_sign,
                               terms);
}

}  // namespace maas::discriminative
