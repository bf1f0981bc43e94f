// Bulk Box–Muller normals and uniforms straight from an item's Philox words: the fast paths behind
// ItemRng::FillNormals and ItemRng::FillUniforms. Bit-identical to calling ItemRng::Normal() or
// ItemRng::Uniform() the same number of times, at every SIMD level (simd_level.h): the AVX-512,
// AVX2 and baseline kernels and the scalar ItemRng evaluate box_muller_kernel.h's operations in
// the same order without FMA.
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

// The same pairs for `count` items (seed, stream, indices[r]) whose words all start at
// first_word, one item per SIMD lane: out[2p] of item r (as NormalPairsFromWords would write it)
// at out[2p * stride + r], out[2p + 1] at out[(2p + 1) * stride + r]. The layout of a block of
// samples packed value-major (the samplers' products, sample_product.h): no transposition, and
// the Philox counters of one block number go through the lanes together.
// REQUIRES: first_word even; stride >= count; out has (2 * pairs - 1) * stride + count doubles.
void NormalPairsAcrossItems(uint64_t seed, uint32_t stream, const uint64_t* indices, size_t count,
                            uint64_t first_word, size_t pairs, double* out, size_t stride);
void NormalPairsAcrossItemsAt(SimdLevel level, uint64_t seed, uint32_t stream,
                              const uint64_t* indices, size_t count, uint64_t first_word,
                              size_t pairs, double* out, size_t stride);

// Writes the n uniforms of item (seed, stream, index) whose words start at word `first_word`:
// out[t] = UniformFromWords(word first_word + 2t, word first_word + 2t + 1) (item_rng.h), exactly
// what n calls of ItemRng::Uniform() from that word return. Lane j of a vector holds Philox block
// `block + j`, as for NormalPairsFromWords. REQUIRES: first_word is even; out has n doubles.
void UniformsFromWords(uint64_t seed, uint32_t stream, uint64_t index, uint64_t first_word,
                       size_t n, double* out);
void UniformsFromWordsAt(SimdLevel level, uint64_t seed, uint32_t stream, uint64_t index,
                         uint64_t first_word, size_t n, double* out);

namespace internal {
// One per level, each in its own translation unit compiled for that instruction set.
void NormalPairsBaseline(uint64_t seed, uint32_t stream, uint64_t index, uint64_t first_word,
                         size_t pairs, double* out);
void NormalPairsAvx2(uint64_t seed, uint32_t stream, uint64_t index, uint64_t first_word,
                     size_t pairs, double* out);
void NormalPairsAvx512(uint64_t seed, uint32_t stream, uint64_t index, uint64_t first_word,
                       size_t pairs, double* out);
void NormalPairsAcrossBaseline(uint64_t seed, uint32_t stream, const uint64_t* indices,
                               size_t count, uint64_t first_word, size_t pairs, double* out,
                               size_t stride);
void NormalPairsAcrossAvx2(uint64_t seed, uint32_t stream, const uint64_t* indices, size_t count,
                           uint64_t first_word, size_t pairs, double* out, size_t stride);
void NormalPairsAcrossAvx512(uint64_t seed, uint32_t stream, const uint64_t* indices, size_t count,
                             uint64_t first_word, size_t pairs, double* out, size_t stride);
void UniformsBaseline(uint64_t seed, uint32_t stream, uint64_t index, uint64_t first_word, size_t n,
                      double* out);
void UniformsAvx2(uint64_t seed, uint32_t stream, uint64_t index, uint64_t first_word, size_t n,
                  double* out);
void UniformsAvx512(uint64_t seed, uint32_t stream, uint64_t index, uint64_t first_word, size_t n,
                    double* out);
}  // namespace internal

}  // namespace maas::random

#endif  // MAAS_COMMON_RANDOM_NORMAL_KERNELS_H_
