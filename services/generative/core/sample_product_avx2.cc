// SampleProduct for the avx2 level (sample_product_impl.inc; flags in ../CMakeLists.txt).
#define MAAS_SAMPLE_PRODUCT_NAME SampleProductAvx2
#include "services/generative/core/sample_product_impl.inc"
