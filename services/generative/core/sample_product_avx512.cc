// SampleProduct for the avx512 level (sample_product_impl.inc; flags in ../CMakeLists.txt).
#define MAAS_SAMPLE_PRODUCT_NAME SampleProductAvx512
#include "services/generative/core/sample_product_impl.inc"
