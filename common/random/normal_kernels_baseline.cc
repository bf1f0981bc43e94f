// NormalPairsFromWords, NormalPairsAcrossItems and UniformsFromWords for the baseline level
// (normal_kernels_impl.inc; flags in CMakeLists.txt).
#define MAAS_NORMAL_PAIRS_NAME NormalPairsBaseline
#define MAAS_NORMAL_ACROSS_NAME NormalPairsAcrossBaseline
#define MAAS_UNIFORMS_NAME UniformsBaseline
#include "common/random/normal_kernels_impl.inc"
