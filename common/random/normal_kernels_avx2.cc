// NormalPairsFromWords, NormalPairsAcrossItems and UniformsFromWords for the avx2 level
// (normal_kernels_impl.inc; flags in CMakeLists.txt).
#define MAAS_NORMAL_PAIRS_NAME NormalPairsAvx2
#define MAAS_NORMAL_ACROSS_NAME NormalPairsAcrossAvx2
#define MAAS_UNIFORMS_NAME UniformsAvx2
#include "common/random/normal_kernels_impl.inc"
