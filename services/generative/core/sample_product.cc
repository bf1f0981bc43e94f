#include "services/generative/core/sample_product.h"

#include <algorithm>

namespace maas::generative {

PackedPanels PackPanels(int64_t k, int64_t n, bool triangular,
                        const std::function<double(int64_t, int64_t)>& value) {
  PackedPanels packed;
  packed.k = k;
  packed.n = n;
  const int64_t panels = (n + kPanelWidth - 1) / kPanelWidth;
  int64_t size = 0;
  for (int64_t p = 0; p < panels; ++p) {
    packed.offset.push_back(size);
    const int64_t kend = triangular ? std::min(k, kPanelWidth * (p + 1)) : k;
    packed.kend.push_back(kend);
    size += kend * kPanelWidth;
  }
  packed.data.assign(static_cast<size_t>(size), 0.0);
  for (int64_t p = 0; p < panels; ++p) {
    double* panel = packed.data.data() + packed.offset[p];
    for (int64_t kk = 0; kk < packed.kend[p]; ++kk) {
      for (int64_t c = 0; c < kPanelWidth; ++c) {
        const int64_t j = p * kPanelWidth + c;
        if (j < n) panel[kk * kPanelWidth + c] = value(kk, j);
      }
    }
  }
  return packed;
}

void SampleProductAt(random::SimdLevel level, const SampleProductArgs& in) {
  const PackedPanels& b = *in.b;
  const internal::RawProduct args = {b.k,
                                     b.n,
                                     static_cast<int64_t>(b.offset.size()),
                                     b.offset.data(),
                                     b.kend.data(),
                                     b.data.data(),
                                     in.m,
                                     in.a,
                                     in.fill,
                                     in.fill_rows,
                                     in.fill_context,
                                     in.bias,
                                     in.noise_scale,
                                     in.noise_offset,
                                     in.out_rows};
  switch (level) {
    case random::SimdLevel::kAvx512:
      internal::SampleProductAvx512(args);
      return;
    case random::SimdLevel::kAvx2:
      internal::SampleProductAvx2(args);
      return;
    default:
      internal::SampleProductBaseline(args);
      return;
  }
}

void SampleProduct(const SampleProductArgs& args) {
  SampleProductAt(random::BestSimdLevel(), args);
}

}  // namespace maas::generative
