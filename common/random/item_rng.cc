#include "common/random/item_rng.h"

#include <algorithm>
#include <cmath>

#include "common/random/box_muller_kernel.h"
#include "common/random/normal_kernels.h"

namespace maas::random {

std::pair<double, double> BoxMuller(double u1, double u2) {
  double z0, z1;
  internal::BoxMullerKernel<double, uint64_t>(
      u1, u2, &z0, &z1, [](uint64_t u) { return internal::DoubleOf(u); },
      [](double d) { return internal::BitsOf(d); }, [](double x) { return std::sqrt(x); });
  return {z0, z1};
}

void ItemRng::FillNormals(double* out, size_t n) {
  // Below this many pairs the scalar path is as fast as setting up the SIMD one.
  constexpr size_t kMinBulkPairs = 4;
  size_t i = 0;
  if (n > 0 && has_cached_normal_) {
    out[0] = cached_normal_;
    has_cached_normal_ = false;
    i = 1;
  }
  const uint64_t word = words_consumed();
  const size_t pairs = (n - i) / 2;
  // A pair starts on an even word unless single NextU32() draws came before (then: scalar path).
  if (pairs >= kMinBulkPairs && word % 2 == 0) {
    const uint64_t seed = static_cast<uint64_t>(key_[0]) | (static_cast<uint64_t>(key_[1]) << 32);
    const uint64_t index =
        static_cast<uint64_t>(counter_[1]) | (static_cast<uint64_t>(counter_[2]) << 32);
    NormalPairsFromWords(seed, counter_[3], index, word, pairs, out + i);
    SeekWord(word + 4 * pairs);
    i += 2 * pairs;
  }
  for (; i < n; ++i) out[i] = Normal();
}

void ItemRng::FillUniforms(double* out, size_t n) {
  // Below this many uniforms the scalar path is as fast as setting up the SIMD one.
  constexpr size_t kMinBulk = 8;
  const uint64_t word = words_consumed();
  // A uniform starts on an even word unless single NextU32() draws came before (then: scalar).
  if (n >= kMinBulk && word % 2 == 0) {
    const uint64_t seed = static_cast<uint64_t>(key_[0]) | (static_cast<uint64_t>(key_[1]) << 32);
    const uint64_t index =
        static_cast<uint64_t>(counter_[1]) | (static_cast<uint64_t>(counter_[2]) << 32);
    UniformsFromWords(seed, counter_[3], index, word, n, out);
    SeekWord(word + 2 * static_cast<uint64_t>(n));
    return;
  }
  for (size_t i = 0; i < n; ++i) out[i] = Uniform();
}

void ItemRng::FillNormalsAcross(ItemRng* const* rngs, size_t count, size_t n, double* out,
                                size_t stride) {
  if (count == 0 || n == 0) return;
  const ItemRng& head = *rngs[0];
  const uint64_t word = head.words_consumed();
  bool together = word % 2 == 0 && n >= 2;
  for (size_t r = 0; r < count && together; ++r) {
    const ItemRng& rng = *rngs[r];
    together = rng.key_ == head.key_ && rng.counter_[3] == head.counter_[3] &&
               !rng.has_cached_normal_ && rng.words_consumed() == word;
  }
  if (!together) {
    // One item at a time, through a buffer (FillNormals in pieces returns what one call would).
    constexpr size_t kPiece = 256;
    double buffer[kPiece];
    for (size_t r = 0; r < count; ++r) {
      for (size_t t0 = 0; t0 < n; t0 += kPiece) {
        const size_t width = std::min(kPiece, n - t0);
        rngs[r]->FillNormals(buffer, width);
        for (size_t t = 0; t < width; ++t) out[(t0 + t) * stride + r] = buffer[t];
      }
    }
    return;
  }
  const uint64_t seed =
      static_cast<uint64_t>(head.key_[0]) | (static_cast<uint64_t>(head.key_[1]) << 32);
  const size_t pairs = n / 2;
  constexpr size_t kItems = 64;
  uint64_t indices[kItems];
  for (size_t r0 = 0; r0 < count; r0 += kItems) {
    const size_t items = std::min(kItems, count - r0);
    for (size_t r = 0; r < items; ++r) {
      const ItemRng& rng = *rngs[r0 + r];
      indices[r] =
          static_cast<uint64_t>(rng.counter_[1]) | (static_cast<uint64_t>(rng.counter_[2]) << 32);
    }
    NormalPairsAcrossItems(seed, head.counter_[3], indices, items, word, pairs, out + r0, stride);
  }
  for (size_t r = 0; r < count; ++r) {
    rngs[r]->SeekWord(word + 4 * pairs);
    // An odd n: the last value opens a new pair (and caches its second value).
    if (n % 2 != 0) out[(n - 1) * stride + r] = rngs[r]->Normal();
  }
}

}  // namespace maas::random
