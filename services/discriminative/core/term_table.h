// An open-addressing hash table from terms (byte strings) to dense ids 0, 1, 2, ... in insertion
// order: the vocabulary lookup of the count vectorizer, one probe per term in the common case.
//
// Each slot holds a two-word key and the id. A term of at most 15 bytes is its own key (bytes 0..7
// in the first word, bytes 8..14 and the length in the second, unused bytes 0), so equal keys mean
// equal terms and a lookup never reads the arena; a longer term's key is a 64-bit hash of its bytes
// with a second word no shorter term has, and its bytes are compared on a key match. The term
// bytes live in one arena. No allocation on lookup. A caller whose terms lie in a buffer with 16
// readable bytes from each term's start can build keys without a branch on the length
// (PaddedKeyOf), lowercasing ASCII on the way. A filter of 4 bits per slot (MayContain) answers
// "certainly absent" for most absent terms without touching the slots.
//
//   TermTable table;
//   const uint32_t id = table.Insert("word").first;     // 0
//   table.Find("word") == id;  table.Find("other") == TermTable::kNotFound;
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_TERM_TABLE_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_TERM_TABLE_H_

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "services/discriminative/core/large_array.h"

namespace maas::discriminative {

class TermTable {
 public:
  static constexpr uint32_t kNotFound = std::numeric_limits<uint32_t>::max();

  TermTable() = default;

  // The key of a term (see the file comment). Never all zero (an empty slot).
  struct Key {
    uint64_t lo = 0;
    uint64_t hi = 0;
  };
  static Key KeyOf(std::string_view term) {
    const size_t n = term.size();
    const char* p = term.data();
    if (n <= 7) return {LoadShort(p, n), LengthTag(n)};
    if (n <= 15) return {Load<uint64_t>(p), LoadShort(p + 8, n - 8) | LengthTag(n)};
    return {HashBytes(p, n), kLongTag};
  }

  // KeyOf of the n <= kMaxPaddedKey bytes at p (or, with `lower`, of them with ASCII A-Z
  // lowercased), without a branch on n. REQUIRES: 16 bytes readable from p; with `lower`, the n
  // bytes are ASCII (< 0x80).
  static constexpr size_t kMaxPaddedKey = 15;
  static Key PaddedKeyOf(const char* p, size_t n, bool lower) {
    const size_t first = n < 8 ? n : 8;
    const size_t second = n > 8 ? n - 8 : 0;
    uint64_t lo = Load<uint64_t>(p) & LowBytesMask(first);
    uint64_t hi = Load<uint64_t>(p + 8) & LowBytesMask(second);
    if (lower) {
      lo = LowerAscii8(lo);
      hi = LowerAscii8(hi);
    }
    return {lo, hi | LengthTag(n)};
  }

  // ASCII A-Z -> a-z in the 8 bytes of x. REQUIRES: every byte < 0x80 (SWAR: the high bit of each
  // byte of x + (0x80 - 'A') is set iff the byte >= 'A', of x + (0x7F - 'Z') iff it is > 'Z').
  static uint64_t LowerAscii8(uint64_t x) {
    constexpr uint64_t kHighBits = 0x8080808080808080ull;
    const uint64_t ge_a = x + 0x3F3F3F3F3F3F3F3Full;
    const uint64_t gt_z = x + 0x2525252525252525ull;
    return x | ((ge_a & ~gt_z & kHighBits) >> 2);
  }

  // HashOf's constants and the second key word's length tag, the filter's words and the shifts
  // and masks of MayContain and HomeOfHash: what a vectorized HashOf / MayContain / HomeOfHash of
  // several keys at once needs. HashOf(k) == (k.lo ^ (k.hi * kHiSpread)) * kGolden (mod 2^64).
  static constexpr uint64_t kHiSpread = 0xC2B2AE3D27D4EB4Full;
  static constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;
  // The second key word's top byte for a term of n <= 15 bytes (never 0: no key is all zero).
  static uint64_t LengthTag(size_t n) { return static_cast<uint64_t>(n + 1) << 56; }
  const uint64_t* filter_words() const { return filter_.data(); }
  size_t filter_mask() const { return filter_mask_; }
  unsigned filter_shift() const { return filter_shift_; }
  unsigned home_shift() const { return home_shift_; }

  // The id of `term`, or kNotFound.
  uint32_t Find(std::string_view term) const {
    const Key key = KeyOf(term);
    return FindFrom(key, Home(key), term);
  }

  // Find in two steps, so that a caller looking up many terms can start the memory loads of a
  // group of them (Prefetch) before it needs the first answer: Find(t) ==
  // FindFrom(KeyOf(t), Home(KeyOf(t)), t).
  size_t Home(const Key& key) const { return HomeOfHash(HashOf(key)); }

  // Home in three steps, for callers that also consult the filter: Home(k) ==
  // HomeOfHash(HashOf(k)). A multiplicative hash: only the product's top bits depend on every bit
  // of the key, so the home slot is its top log2(slots) bits and the filter bit its top
  // log2(filter bits) (one multiply, where the vectorized paths had to emulate a 128-bit
  // product's high half for the xor of both halves).
  static uint64_t HashOf(const Key& key) { return (key.lo ^ (key.hi * kHiSpread)) * kGolden; }
  // (The mask only makes an empty table's home 0; with slots the shifted hash is below their
  // count.)
  size_t HomeOfHash(uint64_t hash) const {
    return static_cast<size_t>(hash >> home_shift_) & mask_;
  }
  // False only if no term in the table has a key of this hash (HashOf): a bit array of ~4 bits
  // per slot (~8% of absent terms pass with 1/3 of the slots used; never a present one fails), so
  // that most lookups of absent terms end on a few KiB that stay in cache instead of probing the
  // slots.
  bool MayContain(uint64_t hash) const {
    const size_t bit = static_cast<size_t>(hash >> filter_shift_) & filter_mask_;
    return (filter_[bit >> 6] >> (bit & 63) & 1) != 0;
  }
  void Prefetch(size_t home) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home]);
  }
  // FindFrom for a key of at most kMaxPaddedKey bytes (no bytes to compare). REQUIRES: the
  // table has slots (size() > 0 or Reserve'd).
  uint32_t FindShortFrom(uint64_t lo, uint64_t hi, size_t home) const {
    const Slot* slots = slots_.data();
    for (size_t i = home;; i = (i + 1) & mask_) {
      const Slot& slot = slots[i];
      // Two compares of a word in memory, each fused with its branch (an xor of both words
      // would take copies of the key, which the next slot needs again).
      if (slot.lo == lo && slot.hi == hi) return slot.id;
      if ((slot.lo | slot.hi) == 0) return kNotFound;
    }
  }
  bool has_slots() const { return !slots_.empty(); }
  uint32_t FindFrom(const Key& key, size_t home, std::string_view term) const {
    if (slots_.empty()) return kNotFound;
    for (size_t i = home;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.lo == key.lo && slot.hi == key.hi) {
        if (key.hi != kLongTag || SameBytes(this->term(slot.id), term)) return slot.id;
      } else if ((slot.lo | slot.hi) == 0) {
        return kNotFound;
      }
    }
  }

  // The id of `term` and false if present; otherwise `term` gets id size() and true. REQUIRES:
  // size() < kNotFound.
  std::pair<uint32_t, bool> Insert(std::string_view term) {
    if (!Fits(size() + 1, slots_.size())) Grow(size() + 1);
    const Key key = KeyOf(term);
    return InsertFrom(key, Home(key), term);
  }

  // Insert in two steps like FindFrom: Reserve(size() + m) first, then up to m calls of
  // InsertFrom(KeyOf(t), Home(KeyOf(t)), t) (homes computed after the Reserve) equal Insert(t).
  std::pair<uint32_t, bool> InsertFrom(const Key& key, size_t home, std::string_view term);

  // Makes room for `n` terms without rehashing (and for `bytes` bytes of terms in the arena).
  void Reserve(size_t n, size_t bytes = 0);

  // Replaces the table by the terms of an arena, term id being bytes[offsets[id], offsets[id + 1]),
  // with ids 0, 1, ... in that order (as inserting them in order into an empty table), put into
  // the slots in the order of `placement`, a permutation of the ids: a term placed earlier lies
  // nearer its home slot, so that placing the most frequent terms first makes most lookups of a
  // text find their term in the first slot probed. The table keeps `bytes` and `offsets` as its
  // arena (no copy: build them at their final size). REQUIRES: offsets[0] == 0, offsets
  // non-decreasing up to offsets.back() == bytes.size(); the terms are distinct;
  // placement.size() + 1 == offsets.size().
  void Assign(LargeString bytes, LargeVector<size_t> offsets,
              const std::vector<uint32_t>& placement);

  size_t size() const { return offsets_.empty() ? 0 : offsets_.size() - 1; }

  // The term of an id < size(); valid until the next Insert.
  std::string_view term(uint32_t id) const {
    return std::string_view(bytes_.data() + offsets_[id], offsets_[id + 1] - offsets_[id]);
  }

  // Heap bytes held (slots, arena, offsets).
  size_t MemoryBytes() const {
    return slots_.capacity() * sizeof(Slot) + filter_.capacity() * sizeof(uint64_t) +
           bytes_.capacity() + offsets_.capacity() * sizeof(size_t);
  }

  // The first n <= 8 bytes of p as a little-endian integer, reading only those bytes.
  static uint64_t LoadShort(const char* p, size_t n) {
    if (n >= 4) {
      if (n == 8) return Load<uint64_t>(p);
      const uint64_t lo = Load<uint32_t>(p);
      const uint64_t hi = Load<uint32_t>(p + n - 4);
      return lo | hi << (8 * (n - 4));
    }
    if (n == 0) return 0;
    const auto byte = [&](size_t k) { return static_cast<uint64_t>(static_cast<uint8_t>(p[k])); };
    return byte(0) | byte(n >> 1) << (8 * (n >> 1)) | byte(n - 1) << (8 * (n - 1));
  }

  // A 64-bit hash of n bytes (wyhash-style multiply-fold; not for adversarial collision
  // resistance: lookups stay correct, only slower, under collisions).
  static uint64_t HashBytes(const char* p, size_t n) {
    uint64_t h = 0x243F6A8885A308D3ull ^ (static_cast<uint64_t>(n) * 0x9E3779B97F4A7C15ull);
    while (n > 8) {
      h = Fold(Load<uint64_t>(p) ^ 0xA0761D6478BD642Full, h ^ 0xE7037ED1A0B428DBull);
      p += 8;
      n -= 8;
    }
    h = Fold(LoadShort(p, n) ^ 0x8EBC6AF09C88C6E3ull, h ^ 0x589965CC75374CC3ull);
    return Fold(h, 0x1D8E4E27C47D124Full);
  }

 private:
  // The second key word of a term longer than 15 bytes (shorter terms have a length byte of at
  // most 16 on top, or 0).
  static constexpr uint64_t kLongTag = uint64_t{0xFF} << 56;
  // The low k <= 8 bytes of a word set (a table: no shift by 64, no branch).
  static uint64_t LowBytesMask(size_t k) {
    static constexpr uint64_t kMasks[9] = {0,
                                           0xFF,
                                           0xFFFF,
                                           0xFFFFFF,
                                           0xFFFFFFFF,
                                           0xFFFFFFFFFFull,
                                           0xFFFFFFFFFFFFull,
                                           0xFFFFFFFFFFFFFFull,
                                           ~uint64_t{0}};
    return kMasks[k];
  }

  struct Slot {
    uint64_t lo = 0;  // lo == hi == 0: empty (no key is all zero)
    uint64_t hi = 0;
    uint32_t id = 0;
  };

  template <typename T>
  static T Load(const char* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
  }
  // a == b for terms longer than 15 bytes (two overlapping 8-byte loads for 16 bytes).
  static bool SameBytes(std::string_view a, std::string_view b) {
    const size_t n = a.size();
    if (n != b.size()) return false;
    if (n >= 8 && n <= 16) {
      return Load<uint64_t>(a.data()) == Load<uint64_t>(b.data()) &&
             Load<uint64_t>(a.data() + n - 8) == Load<uint64_t>(b.data() + n - 8);
    }
    return a == b;
  }
  // High and low halves of the 128-bit product, xored.
  static uint64_t Fold(uint64_t a, uint64_t b) {
    const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
    return static_cast<uint64_t>(product >> 64) ^ static_cast<uint64_t>(product);
  }

  void Rehash(size_t capacity);
  void AddToFilter(uint64_t hash) {
    const size_t bit = static_cast<size_t>(hash >> filter_shift_) & filter_mask_;
    filter_[bit >> 6] |= uint64_t{1} << (bit & 63);
  }
  // Rehashes to the smallest power of two (>= twice the current capacity) that fits n terms.
  void Grow(size_t n);
  // Whether `n` terms fit in `capacity` slots (load factor at most 5/8: linear probing stays
  // short, ~1.8 probes for a hit and ~4 for a miss).
  static bool Fits(size_t n, size_t capacity) { return 8 * n <= 5 * capacity; }

  // A power of two (or empty), at most 5/8 full: a 20 000-term vocabulary takes 768 KiB.
  LargeVector<Slot> slots_;
  // Whether the slots and filter are in huge pages (LargeArrayAllocator): a table built whole by
  // Assign, a fitted vocabulary, is; one grown by Insert, a fit's passing table, is not.
  bool huge_pages_ = false;
  size_t mask_ = 0;
  unsigned home_shift_ = 63;  // 64 - log2(slots)
  // MayContain's bits: 4 per slot (one word while there are no slots), bit (hash >>
  // filter_shift_) & filter_mask_ set for every term.
  LargeVector<uint64_t> filter_ = LargeVector<uint64_t>(1, 0);
  size_t filter_mask_ = 0;
  unsigned filter_shift_ = 63;   // 64 - log2(filter bits)
  LargeString bytes_;            // the terms, concatenated in id order
  LargeVector<size_t> offsets_;  // term id's bytes: [offsets_[id], offsets_[id + 1])
};

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_TERM_TABLE_H_
