#include "services/generative/core/row_kernels_simd.h"

#include "common/random/simd_level.h"

namespace maas::generative::rows {

const SimdKernels& SimdKernelsAt(random::SimdLevel level) {
  switch (level) {
    case random::SimdLevel::kAvx512:
      return internal::kAvx512Kernels;
    case random::SimdLevel::kAvx2:
      return internal::kAvx2Kernels;
    default:
      return internal::kBaselineKernels;
  }
}

const SimdKernels& BestSimdKernels() { return SimdKernelsAt(random::BestSimdLevel()); }

}  // namespace maas::generative::rows
