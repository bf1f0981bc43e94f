#include "common/random/normal_kernels.h"

namespace maas::random {

void NormalPairsFromWordsAt(SimdLevel level, uint64_t seed, uint32_t stream, uint64_t index,
                            uint64_t first_word, size_t pairs, double* out) {
  switch (level) {
    case SimdLevel::kAvx512:
      internal::NormalPairsAvx512(seed, stream, index, first_word, pairs, out);
      return;
    case SimdLevel::kAvx2:
      internal::NormalPairsAvx2(seed, stream, index, first_word, pairs, out);
      return;
    default:
      internal::NormalPairsBaseline(seed, stream, index, first_word, pairs, out);
      return;
  }
}

void NormalPairsFromWords(uint64_t seed, uint32_t stream, uint64_t index, uint64_t first_word,
                          size_t pairs, double* out) {
  NormalPairsFromWordsAt(BestSimdLevel(), seed, stream, index, first_word, pairs, out);
}

void NormalPairsAcrossItemsAt(SimdLevel level, uint64_t seed, uint32_t stream,
                              const uint64_t* indices, size_t count, uint64_t first_word,
                              size_t pairs, double* out, size_t stride) {
  switch (level) {
    case SimdLevel::kAvx512:
      internal::NormalPairsAcrossAvx512(seed, stream, indices, count, first_word, pairs, out,
                                        stride);
      return;
    case SimdLevel::kAvx2:
      internal::NormalPairsAcrossAvx2(seed, stream, indices, count, first_word, pairs, out, stride);
      return;
    default:
      internal::NormalPairsAcrossBaseline(seed, stream, indices, count, first_word, pairs, out,
                                          stride);
      return;
  }
}

void NormalPairsAcrossItems(uint64_t seed, uint32_t stream, const uint64_t* indices, size_t count,
                            uint64_t first_word, size_t pairs, double* out, size_t stride) {
  NormalPairsAcrossItemsAt(BestSimdLevel(), seed, stream, indices, count, first_word, pairs, out,
                           stride);
}

void UniformsFromWordsAt(SimdLevel level, uint64_t seed, uint32_t stream, uint64_t index,
                         uint64_t first_word, size_t n, double* out) {
  switch (level) {
    case SimdLevel::kAvx512:
      internal::UniformsAvx512(seed, stream, index, first_word, n, out);
      return;
    case SimdLevel::kAvx2:
      internal::UniformsAvx2(seed, stream, index, first_word, n, out);
      return;
    default:
      internal::UniformsBaseline(seed, stream, index, first_word, n, out);
      return;
  }
}

void UniformsFromWords(uint64_t seed, uint32_t stream, uint64_t index, uint64_t first_word,
                       size_t n, double* out) {
  UniformsFromWordsAt(BestSimdLevel(), seed, stream, index, first_word, n, out);
}

}  // namespace maas::random
