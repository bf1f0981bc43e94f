// NormalPairsFromWords, NormalPairsAcrossItems and UniformsFromWords for the avx512 level
// (normal_kernels_impl.inc; flags in CMakeLists.txt).
#define MAAS_NORMAL_PAIRS_NAME NormalPairsAvx512
#define MAAS_NORMAL_ACROSS_NAME NormalPairsAcrossAvx512
#define MAAS_UNIFORMS_NAME UniformsAvx512
#include "common/random/normal_kernels_impl.inc"
