#include "common/random/item_rng.h"

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

}  // namespace maas::random
