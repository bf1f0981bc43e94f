// The row kernels for the baseline level (row_kernels_impl.inc; flags in ../CMakeLists.txt).
#define MAAS_ROW_KERNELS_TABLE kBaselineKernels
#include "services/generative/core/row_kernels_impl.inc"
