// GCC vector types of the native width of the translation unit's instruction set, with the few
// operations GCC's vector extensions lack (widening 32-bit multiply, sqrt). Lanes are permuted with
// __builtin_shufflevector, which GCC (12+) and clang both have (GCC's __builtin_shuffle is not in
// clang, whose `make fuzz` build compiles these files too). Internal to the
// per-level kernel files (normal_kernels_*.cc, the generative samplers' *_avx2/_avx512 files):
// everything is in an unnamed namespace so that each translation unit keeps its own copy.
#ifndef MAAS_COMMON_RANDOM_SIMD_TYPES_H_
#define MAAS_COMMON_RANDOM_SIMD_TYPES_H_

#include <immintrin.h>

#include <cstdint>

namespace maas::simd {
namespace {

#if defined(__AVX512F__)
inline constexpr int kLanes = 8;
typedef uint64_t VU __attribute__((vector_size(64)));
typedef double VD __attribute__((vector_size(64)));
// Low 32 bits of each lane times the low 32 bits of b's lane, as a 64-bit product.
// The maskz forms: GCC 12 warns (maybe-uninitialized) on the unmasked ones' undefined pass-through.
inline VU MulWide(VU a, VU b) { return (VU)_mm512_maskz_mul_epu32(0xff, (__m512i)a, (__m512i)b); }
inline VD Sqrt(VD x) { return (VD)_mm512_maskz_sqrt_pd(0xff, (__m512d)x); }
#elif defined(__AVX2__)
inline constexpr int kLanes = 4;
typedef uint64_t VU __attribute__((vector_size(32)));
typedef double VD __attribute__((vector_size(32)));
inline VU MulWide(VU a, VU b) { return (VU)_mm256_mul_epu32((__m256i)a, (__m256i)b); }
inline VD Sqrt(VD x) { return (VD)_mm256_sqrt_pd((__m256d)x); }
#else
inline constexpr int kLanes = 2;
typedef uint64_t VU __attribute__((vector_size(16)));
typedef double VD __attribute__((vector_size(16)));
inline VU MulWide(VU a, VU b) { return (VU)_mm_mul_epu32((__m128i)a, (__m128i)b); }
inline VD Sqrt(VD x) { return (VD)_mm_sqrt_pd((__m128d)x); }
#endif

inline VD LoadD(const double* p) {
  VD v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
inline void StoreD(double* p, VD v) { __builtin_memcpy(p, &v, sizeof v); }
inline VD SplatD(double x) { return VD{} + x; }
inline VU SplatU(uint64_t x) { return VU{} + x; }
// (lane 0, 1, ..., kLanes - 1).
inline VU LaneIndex() {
  VU v{};
  for (int j = 0; j < kLanes; ++j) v[j] = static_cast<uint64_t>(j);
  return v;
}
// The lanes of a and b interleaved: (a0, b0, a1, b1, ...) as two vectors.
inline void Interleave(VD a, VD b, VD* lo, VD* hi) {
#if defined(__AVX512F__)
  *lo = __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11);
  *hi = __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15);
#elif defined(__AVX2__)
  *lo = __builtin_shufflevector(a, b, 0, 4, 1, 5);
  *hi = __builtin_shufflevector(a, b, 2, 6, 3, 7);
#else
  *lo = __builtin_shufflevector(a, b, 0, 2);
  *hi = __builtin_shufflevector(a, b, 1, 3);
#endif
}
// (a1, a2, ..., a_{kLanes-1}, b0): a shifted down one lane, b's first lane at the top.
inline VD ShiftInFirst(VD a, VD b) {
#if defined(__AVX512F__)
  return __builtin_shufflevector(a, b, 1, 2, 3, 4, 5, 6, 7, 8);
#elif defined(__AVX2__)
  return __builtin_shufflevector(a, b, 1, 2, 3, 4);
#else
  return __builtin_shufflevector(a, b, 1, 2);
#endif
}

}  // namespace
}  // namespace maas::simd

#endif  // MAAS_COMMON_RANDOM_SIMD_TYPES_H_
