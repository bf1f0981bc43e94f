#include "common/random/normal_kernels.h"

namespace maas::random {
namespace {

// Calls the kernel of `level` (baseline for any level below AVX2).
template <typename Kernel, typename... Args>
void AtLevel(SimdLevel level, Kernel baseline, Kernel avx2, Kernel avx512, Args... args) {
  switch (level) {
    case SimdLevel::kAvx512:
      return avx512(args...);
    case SimdLevel::kAvx2:
      return avx2(args...);
    default:
      return baseline(args...);
  }
}

}  // namespace

void NormalPairsFromWordsAt(SimdLevel level, uint64_t seed, uint32_t stream, uint64_t index,
                            uint64_t first_word, size_t pairs, double* out) {
  AtLevel(level, &internal::NormalPairsBaseline, &internal::NormalPairsAvx2,
          &internal::NormalPairsAvx512, seed, stream, index, first_word, pairs, out);
}

void NormalPairsFromWords(uint64_t seed, uint32_t stream, uint64_t index, uint64_t first_word,
                          size_t pairs, double* out) {
  NormalPairsFromWordsAt(BestSimdLevel(), seed, stream, index, first_word, pairs, out);
}

void NormalPairsAcrossItemsAt(SimdLevel level, uint64_t seed, uint32_t stream,
                              const uint64_t* indices, size_t count, uint64_t first_word,
                              size_t pairs, double* out, size_t stride) {
  AtLevel(level, &internal::NormalPairsAcrossBaseline, &internal::NormalPairsAcrossAvx2,
          &internal::NormalPairsAcrossAvx512, seed, stream, indices, count, first_word, pairs, out,
          stride);
}

void NormalPairsAcrossItems(uint64_t seed, uint32_t stream, const uint64_t* indices, size_t count,
                            uint64_t first_word, size_t pairs, double* out, size_t stride) {
  NormalPairsAcrossItemsAt(BestSimdLevel(), seed, stream, indices, count, first_word, pairs, out,
                           stride);
}

void UniformsFromWordsAt(SimdLevel level, uint64_t seed, uint32_t stream, uint64_t index,
                         uint64_t first_word, size_t n, double* out) {
  AtLevel(level, &internal::UniformsBaseline, &internal::UniformsAvx2, &internal::UniformsAvx512,
          seed, stream, index, first_word, n, out);
}

void UniformsFromWords(uint64_t seed, uint32_t stream, uint64_t index, uint64_t first_word,
                       size_t n, double* out) {
  UniformsFromWordsAt(BestSimdLevel(), seed, stream, index, first_word, n, out);
}

}  // namespace maas::random
