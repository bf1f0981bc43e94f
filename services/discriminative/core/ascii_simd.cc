#include "services/discriminative/core/ascii_simd.h"

#include <vector>

#include "common/random/simd_level.h"

namespace maas::discriminative {

bool AsciiSimdPathSupported(AsciiSimdPath path) {
  switch (path) {
    case AsciiSimdPath::kAvx512:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vbmi2") && __builtin_cpu_supports("popcnt") &&
             __builtin_cpu_supports("bmi2");
    default:
      return true;
  }
}

AsciiSimdPath BestAsciiSimdPath() {
  // A cached CPUID query (capped by MAAS_SIMD through random::BestSimdLevel), not mutable state.
  static const AsciiSimdPath best = random::BestSimdLevel() == random::SimdLevel::kAvx512 &&
                                            AsciiSimdPathSupported(AsciiSimdPath::kAvx512)
                                        ? AsciiSimdPath::kAvx512
                                        : AsciiSimdPath::kBaseline;
  return best;
}

std::vector<AsciiSimdPath> SupportedAsciiSimdPaths() {
  std::vector<AsciiSimdPath> paths = {AsciiSimdPath::kBaseline};
  if (AsciiSimdPathSupported(AsciiSimdPath::kAvx512)) paths.push_back(AsciiSimdPath::kAvx512);
  return paths;
}

const char* AsciiSimdPathName(AsciiSimdPath path) {
  return path == AsciiSimdPath::kAvx512 ? "avx512" : "baseline";
}

}  // namespace maas::discriminative
