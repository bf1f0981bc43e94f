// Philox4x32: the counter-based block generator of Salmon, Moraes, Dror and Shaw, "Parallel Random
// Numbers: As Easy as 1, 2, 3" (SC'11), bit-compatible with Random123's philox4x32_R.
//
// A counter-based generator is a pure function block = Philox4x32(counter, key): there is no state
// to advance, so any block of any stream can be computed directly. maas maps a request's seed and
// an item's (stream, index) to a key and a counter space as follows (the determinism contract of
// ARCHITECTURE.md and docs/determinism.md relies on this mapping; never change it, it would change
// every served sample):
//
//   key     = (seed & 0xffffffff, seed >> 32)
//   counter = (block, index & 0xffffffff, index >> 32, stream)
//
// where `block` is the block number within the item (0, 1, 2, ...: 4 words each), `index` is the
// item's index (sample i, chain i, ...) and `stream` is a small tag chosen by the caller to keep
// independent uses of the same seed and index apart (e.g. 0 = samples, 1 = proposals/latents).
// Item (seed, stream, index) therefore owns 2^32 blocks = 2^34 32-bit words of its own.
//
//   const PhiloxKey key = KeyFromSeed(seed);
//   const PhiloxBlock words = Philox4x32(CounterFor(index, stream, /*block=*/0), key);
#ifndef MAAS_COMMON_RANDOM_PHILOX_H_
#define MAAS_COMMON_RANDOM_PHILOX_H_

#include <array>
#include <cstdint>

namespace maas::random {

using PhiloxCounter = std::array<uint32_t, 4>;  // (c0, c1, c2, c3)
using PhiloxKey = std::array<uint32_t, 2>;      // (k0, k1)
using PhiloxBlock = std::array<uint32_t, 4>;    // one output block: 4 words

inline constexpr int kPhiloxDefaultRounds = 10;
inline constexpr uint32_t kPhiloxM0 = 0xD2511F53u;  // multiplier for c0
inline constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;  // multiplier for c2
inline constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // Weyl key increment (golden ratio)
inline constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // Weyl key increment (sqrt(3) - 1)

// Philox4x32-R. Each round computes (hi0, lo0) = M0 * c0 and (hi1, lo1) = M1 * c2 (64-bit
// products) and sets c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0); the key is bumped by (W0, W1)
// between rounds. REQUIRES: rounds >= 0 (10 is the standard, Random123's default).
constexpr PhiloxBlock Philox4x32(PhiloxCounter counter, PhiloxKey key,
                                 int rounds = kPhiloxDefaultRounds) {
  for (int r = 0; r < rounds; ++r) {
    if (r > 0) {
      key[0] += kPhiloxW0;
      key[1] += kPhiloxW1;
    }
    const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * counter[0];
    const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * counter[2];
    counter = {static_cast<uint32_t>(p1 >> 32) ^ counter[1] ^ key[0], static_cast<uint32_t>(p1),
               static_cast<uint32_t>(p0 >> 32) ^ counter[3] ^ key[1], static_cast<uint32_t>(p0)};
  }
  return counter;
}

// key = (seed low 32 bits, seed high 32 bits).
constexpr PhiloxKey KeyFromSeed(uint64_t seed) {
  return {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
}

// counter = (block, index low 32 bits, index high 32 bits, stream).
constexpr PhiloxCounter CounterFor(uint64_t index, uint32_t stream, uint32_t block) {
  return {block, static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32), stream};
}

}  // namespace maas::random

#endif  // MAAS_COMMON_RANDOM_PHILOX_H_
