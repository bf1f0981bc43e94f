#include "common/random/simd_level.h"

#include <cstdlib>
#include <cstring>

namespace maas::random {
namespace {

SimdLevel CpuLevel() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return SimdLevel::kAvx512;
  if (__builtin_cpu_supports("avx2")) return SimdLevel::kAvx2;
  return SimdLevel::kBaseline;
}

// The level MAAS_SIMD caps the process at: false when it names none of baseline / avx2 / avx512
// (unset: no cap, kAvx512).
bool MaasSimdCap(SimdLevel* cap) {
  const char* wanted = std::getenv("MAAS_SIMD");
  *cap = SimdLevel::kAvx512;
  if (wanted == nullptr || std::strcmp(wanted, "avx512") == 0) return true;
  if (std::strcmp(wanted, "baseline") == 0) *cap = SimdLevel::kBaseline;
  if (std::strcmp(wanted, "avx2") == 0) *cap = SimdLevel::kAvx2;
  return *cap != SimdLevel::kAvx512;
}

SimdLevel ComputeBest() {
  const SimdLevel level = CpuLevel();
  SimdLevel cap;
  MaasSimdCap(&cap);  // an unknown value caps nothing (SimdEnvironmentProblem names it)
  return static_cast<int>(cap) < static_cast<int>(level) ? cap : level;
}

}  // namespace

std::string SimdEnvironmentProblem() {
  SimdLevel cap;
  if (MaasSimdCap(&cap)) return "";
  return std::string("the environment variable MAAS_SIMD is \"") + std::getenv("MAAS_SIMD") +
         "\"; it must be baseline, avx2 or avx512 (it caps the SIMD level; unset it for the "
         "best level of this CPU)";
}

SimdLevel BestSimdLevel() {
  static const SimdLevel level = ComputeBest();  // a cached CPUID query, not mutable state
  return level;
}

std::vector<SimdLevel> SupportedSimdLevels() {
  std::vector<SimdLevel> levels = {SimdLevel::kBaseline};
  const SimdLevel cpu = CpuLevel();
  if (static_cast<int>(cpu) >= static_cast<int>(SimdLevel::kAvx2)) {
    levels.push_back(SimdLevel::kAvx2);
  }
  if (cpu == SimdLevel::kAvx512) levels.push_back(SimdLevel::kAvx512);
  return levels;
}

const char* SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512:
      return "avx512";
    case SimdLevel::kAvx2:
      return "avx2";
    default:
      return "baseline";
  }
}

}  // namespace maas::random
