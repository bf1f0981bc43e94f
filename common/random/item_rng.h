// ItemRng: the sequential generator of one item (sample, chain, datum) of a request.
//
// An ItemRng reads the 32-bit words of the item's Philox4x32-10 counter space in order: block 0
// (words 0..3), block 1 (words 4..7), ... with counter = (block, index lo, index hi, stream) and
// key = (seed lo, seed hi) (see philox.h). Blocks are only the refill unit: the words form one
// sequence, and a draw may take its words from the end of one block and the start of the next.
//
// Consumption is fixed and part of the determinism contract (never change it):
//   NextU32()      1 word.
//   NextU64()      2 words; the first word is the high half.
//   Uniform()      2 words, via UniformFromWords(first, second): a double in the OPEN interval (0,
//   1). Normal()       Box–Muller on a pair: a call either returns the cached second value of the
//   last
//                  pair (0 words) or consumes exactly 4 words (two Uniform()s u1, u2), returns
//                  sqrt(-2 log u1) cos(2 pi u2) and caches sqrt(-2 log u1) sin(2 pi u2). The cache
//                  survives other draws in between: Normal(), Uniform(), Normal() returns both
//                  values of the first pair.
//   Categorical    1 Uniform() (see distributions.h).
// So the k-th draw of an item depends only on (seed, stream, index) and the kinds of draws before
// it, never on threads, batching or other items.
//
//   ItemRng rng(seed, /*stream=*/0, /*index=*/i);
//   const double z = rng.Normal();
//
// Thread safety: none (a small value type; use one per item and thread). Copying an ItemRng copies
// its position, so the copy replays the same words.
// Limit: an item has 2^34 words; past that the block number wraps and words repeat.
#ifndef MAAS_COMMON_RANDOM_ITEM_RNG_H_
#define MAAS_COMMON_RANDOM_ITEM_RNG_H_

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "common/random/philox.h"

namespace maas::random {

// The word -> double mapping of Uniform(): u = ((u64 >> 12) + 0.5) * 2^-52 with
// u64 = (first << 32) | second. The 2^52 possible values form a grid symmetric around 1/2, from
// 2^-53 to 1 - 2^-53, all exactly representable, so u is never 0 or 1 and log(u), log(1 - u) are
// finite. (53 bits with a half-step offset would round 1 - 2^-54 up to exactly 1.0.)
inline double UniformFromWords(uint32_t first, uint32_t second) {
  const uint64_t u64 = (static_cast<uint64_t>(first) << 32) | second;
  return (static_cast<double>(u64 >> 12) + 0.5) * 0x1.0p-52;
}

// Box–Muller transform of two uniforms in (0, 1): returns
// (sqrt(-2 log u1) cos(2 pi u2), sqrt(-2 log u1) sin(2 pi u2)), two independent N(0, 1) values.
// log, cos and sin are maas's own (box_muller_kernel.h), not libm's: the same bits on every CPU and
// C library, and the same bits as the SIMD kernels of FillNormals (normal_kernels.h).
std::pair<double, double> BoxMuller(double u1, double u2);

class ItemRng {
 public:
  // The generator of item `index` in stream `stream` of the request seeded with `seed`.
  ItemRng(uint64_t seed, uint32_t stream, uint64_t index)
      : key_(KeyFromSeed(seed)), counter_(CounterFor(index, stream, /*block=*/0)) {}

  // The next 32-bit word.
  uint32_t NextU32() {
    if (position_ == 4) Refill();
    return buffer_[position_++];
  }

  // The next two words as one 64-bit value, the first word in the high half.
  uint64_t NextU64() {
    const uint64_t high = NextU32();
    return (high << 32) | NextU32();
  }

  // A double in the open interval (0, 1) from the next two words (see UniformFromWords).
  double Uniform() {
    const uint32_t first = NextU32();
    return UniformFromWords(first, NextU32());
  }

  // A standard normal value (Box–Muller with a one-value cache; see the file comment).
  double Normal() {
    if (has_cached_normal_) {
      has_cached_normal_ = false;
      return cached_normal_;
    }
    const double u1 = Uniform();
    const double u2 = Uniform();
    const auto [z0, z1] = BoxMuller(u1, u2);
    cached_normal_ = z1;
    has_cached_normal_ = true;
    return z0;
  }

  // out[0 .. n) = the next n Normal() values, exactly as n calls of Normal() would return them
  // (the cache included), but generated many pairs at a time by the SIMD kernels.
  void FillNormals(double* out, size_t n);

  // out[0 .. n) = the next n Uniform() values, exactly as n calls of Uniform() would return them,
  // but generated many Philox blocks at a time by the SIMD kernels (UniformsFromWords).
  void FillUniforms(double* out, size_t n);

  // For r < count: the n values rngs[r]->FillNormals(., n) would return, at out[t * stride + r]
  // (t < n), each generator advanced as FillNormals advances it. Many items per call of the SIMD
  // kernel (NormalPairsAcrossItems, one item per lane) when the generators share the seed and the
  // stream, stand at the same even word and hold no cached normal (as the generators of a
  // request's samples do after the same draws); otherwise item by item. REQUIRES: stride >= count.
  static void FillNormalsAcross(ItemRng* const* rngs, size_t count, size_t n, double* out,
                                size_t stride);

  // Number of 32-bit words consumed so far (modulo 2^34).
  uint64_t words_consumed() const {
    return 4 * static_cast<uint64_t>(counter_[0]) - static_cast<uint64_t>(4 - position_);
  }

 private:
  // Moves to word `word` of the item (the next word handed out), keeping the normal cache.
  void SeekWord(uint64_t word) {
    counter_[0] = static_cast<uint32_t>(word >> 2);
    position_ = 4;
    if ((word & 3) != 0) {
      Refill();
      position_ = static_cast<int>(word & 3);
    }
  }

  void Refill() {
    buffer_ = Philox4x32(counter_, key_);
    ++counter_[0];  // The block number; wraps after 2^32 blocks.
    position_ = 0;
  }

  PhiloxKey key_;
  PhiloxCounter counter_;  // counter_[0] is the number of the next block to generate.
  PhiloxBlock buffer_{};
  int position_ = 4;  // Next word of buffer_ to hand out; 4 = empty.
  bool has_cached_normal_ = false;
  double cached_normal_ = 0.0;
};

}  // namespace maas::random

#endif  // MAAS_COMMON_RANDOM_ITEM_RNG_H_
