// SampleProduct for the baseline level (sample_product_impl.inc; flags in ../CMakeLists.txt).
#define MAAS_SAMPLE_PRODUCT_NAME SampleProductBaseline
#include "services/generative/core/sample_product_impl.inc"
