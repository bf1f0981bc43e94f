// Bulk Box–Muller normals straight from an item's Philox words: the fast path behind
// ItemRng::FillNormals. Bit-identical to calling ItemRng::Normal() the same number of times, at
// every SIMD level (simd_level.h): the AVX-512, AVX2 and baseline kernels and the scalar
// ItemRng::Normal all evaluate box_muller_kernel.h's operations in the same order without FMA.
#ifndef MAAS_COMMON_RANDOM_NORMAL_KERNELS_H_
#define MAAS_COMMON_RANDOM_NORMAL_KERNELS_H_

#include <cstddef>
#include <cstdint>

#include "common/random/simd_level.h"

namespace maas::random {

// Writes the `pairs` Box–Muller pairs of item (seed, stream, index) whose words start at word
// `first_word` of the item (see item_rng.h): pair p takes words first_word + 4p .. + 4p + 3 as two
// uniforms u1, u2 and gives out[2p] = sqrt(-2 log u1) cos(2 pi u2), out[2p + 1] = ... sin(...).
// REQUIRES: first_word is even (a normal pair starts on a 64-bit boundary); out has 2 * pairs
// doubles.
void NormalPairsFromWords(uint64_t seed, uint32_t stream, uint64_t index, uint64_t first_word,
                          size_t pairs, double* out);

// The same at a given level (tests compare the levels). REQUIRES: the CPU supports `level`.
void NormalPairsFromWordsAt(SimdLevel level, uint64_t seed, uint32_t stream, uint64_t index,
                            uint64_t first_word, size_t pairs, double* out);

namespace internal {
// One per level, each in its own translation unit compiled for that instruction set.
void NormalPairsBaseline(uint64_t seed, uint32_t stream, uint64_t index, uint64_t first_word,
                         size_t pairs, double* out);
void NormalPairsAvx2(uint64_t seed, uint32_t stream, uint64_t index, uint64_t first_word,
                     size_t pairs, double* out);
void NormalPairsAvx512(uint64_t seed, uint32_t stream, uint64_t index, uint64_t first_word,
                       size_t pairs, double* out);
}  // namespace internal

}  // namespace maas::random

#endif  // MAAS_COMMON_RANDOM_NORMAL_KERNELS_H_
