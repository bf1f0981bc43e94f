// The instruction-set level of the process's hand-vectorized kernels (normal_kernels.h, the
// generative samplers' products). Every level computes bit-identical results: the levels differ
// only in speed, so the choice is a pure performance decision made once per process from CPUID.
#ifndef MAAS_COMMON_RANDOM_SIMD_LEVEL_H_
#define MAAS_COMMON_RANDOM_SIMD_LEVEL_H_

#include <string>
#include <vector>

namespace maas::random {

enum class SimdLevel {
  kBaseline,  // x86-64 baseline: SSE2, 2 doubles per vector
  kAvx2,      // AVX2, 4 doubles per vector
  kAvx512,    // AVX-512F, 8 doubles per vector
};

// The best level this CPU (and OS) supports; computed once, then cached. The environment variable
// MAAS_SIMD=baseline|avx2|avx512 lowers it (never above what the CPU supports), for checking the
// bit-identity of the levels on one machine.
SimdLevel BestSimdLevel();

// Empty when MAAS_SIMD is unset or one of baseline / avx2 / avx512 (exactly, lower case); else a
// message naming the value and the accepted ones, for the process to refuse to start with: a
// misspelt value used to be ignored, so a check of the levels' bit-identity compared the best
// level with itself and passed.
std::string SimdEnvironmentProblem();

// All levels this CPU supports, baseline first.
std::vector<SimdLevel> SupportedSimdLevels();

// "baseline", "avx2" or "avx512".
const char* SimdLevelName(SimdLevel level);

}  // namespace maas::random

#endif  // MAAS_COMMON_RANDOM_SIMD_LEVEL_H_
