#include "services/discriminative/core/count_simd.h"

#include <vector>

#include "common/random/simd_level.h"

namespace maas::discriminative {

bool CountSimdPathSupported(CountSimdPath path) {
  switch (path) {
    case CountSimdPath::kAvx512:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vbmi2") &&
             __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("bmi2");
    case CountSimdPath::kAvx2:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
             __builtin_cpu_supports("popcnt");
    default:
      return true;
  }
}

CountSimdPath BestCountSimdPath() {
  // A cached CPUID query (capped by MAAS_SIMD through random::BestSimdLevel), not mutable state.
  static const CountSimdPath best = [] {
    const random::SimdLevel level = random::BestSimdLevel();
    if (level == random::SimdLevel::kAvx512 && CountSimdPathSupported(CountSimdPath::kAvx512)) {
      return CountSimdPath::kAvx512;
    }
    if (level != random::SimdLevel::kBaseline && CountSimdPathSupported(CountSimdPath::kAvx2)) {
      return CountSimdPath::kAvx2;
    }
    return CountSimdPath::kBaseline;
  }();
  return best;
}

std::vector<CountSimdPath> SupportedCountSimdPaths() {
  std::vector<CountSimdPath> paths = {CountSimdPath::kBaseline};
  if (CountSimdPathSupported(CountSimdPath::kAvx2)) paths.push_back(CountSimdPath::kAvx2);
  if (CountSimdPathSupported(CountSimdPath::kAvx512)) paths.push_back(CountSimdPath::kAvx512);
  return paths;
}

}  // namespace maas::discriminative
