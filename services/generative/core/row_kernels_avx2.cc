// The row kernels for the avx2 level (row_kernels_impl.inc; flags in ../CMakeLists.txt).
#define MAAS_ROW_KERNELS_TABLE kAvx2Kernels
#include "services/generative/core/row_kernels_impl.inc"
