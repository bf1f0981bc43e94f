// The linear algebra of the samplers, batched: x_i = bias + B^T a_i (+ scale .* noise_i) for a
// block of samples i, as one GEMM with a FIXED per-element summation order, so that sample i's bits
// do not depend on the batch it is drawn in, on the SIMD level (simd_level.h) or on the CPU:
//
//   x(i, j) = bias[j] + sum_{k < kend(j)} a_i[k] * B(k, j)        (then + scale[j] * noise_i[j])
//
// where the sum starts from +0 and adds the products a_i[k] * B(k, j) one at a time in ascending k,
// each product and each addition rounded (no FMA; the kernels are compiled with -ffp-contract=off).
// kend(j) = K for a dense B (ppca, factor_analysis: B = W^T, K = L), and for a lower-triangular
// factor (gaussian_mixture: B = L_k^T, K = D) kend(j) = min(K, 8 * (j / 8 + 1)): the terms up to
// the end of j's 8-column panel, whose extra factors are exact zeros.
//
// The kernels are register-blocked micro-kernels (SIMD lanes across samples, 8 columns of B per
// panel, all of an element's k in one accumulator), one per SIMD level in its own translation unit
// (sample_product_{baseline,avx2,avx512}.cc). The samples' vectors come either as row pointers
// (`a`) or from a callback (`fill`, one sample at a time, or `fill_rows`, a register panel of
// samples at a time) that writes them straight into the kernel's packed layout; all give the same
// bits.
//
// Switching to common/math/gemm.h (math::Gemm, a k-ordered FMA per element): replace the body of
// SampleProductAt with a math::PackedMatrix of B (built once per model, trim_zero_rows = true for
// the triangular factor), math::Gemm into a row-major m x N scratch tile, then the epilogue above.
// FMA rounds a*b+c once where this file rounds twice, so every normal-based sample changes in its
// last bits: a sample-value change to note in docs/determinism.md, not a contract break.
#ifndef MAAS_SERVICES_GENERATIVE_CORE_SAMPLE_PRODUCT_H_
#define MAAS_SERVICES_GENERATIVE_CORE_SAMPLE_PRODUCT_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "common/random/simd_level.h"

namespace maas::generative {

// B (K x N) packed once per model into panels of 8 columns: panel p holds B(k, 8p + c) at
// data[offset[p] + 8k + c] for k < kend(panel p) (columns past N are zero).
struct PackedPanels {
  int64_t k = 0;                // K
  int64_t n = 0;                // N
  std::vector<int64_t> offset;  // per panel
  std::vector<int64_t> kend;    // per panel
  std::vector<double> data;

  // Bytes held, for a model's MemoryBytes.
  int64_t MemoryBytes() const {
    return static_cast<int64_t>((offset.capacity() + kend.capacity()) * sizeof(int64_t) +
                                data.capacity() * sizeof(double));
  }
};

inline constexpr int64_t kPanelWidth = 8;

// Packs B(k, j) = value(k, j), dense (kend = K) or lower-triangular-transposed (kend as above).
PackedPanels PackPanels(int64_t k, int64_t n, bool triangular,
                        const std::function<double(int64_t, int64_t)>& value);

// Writes values [begin, end) of sample i's vector a_i (the values a[i][begin .. end - 1]) to out.
// The product calls it for every sample exactly once per range, the ranges of one sample
// contiguous and ascending from 0 (so a sequential generator can produce a_i as it goes), and
// never for more than K (+ N with a noise term) values.
using SampleFill = void (*)(void* context, int64_t i, int64_t begin, int64_t end, double* out);

// Writes values [begin, end) of the samples i0 .. i0 + count - 1 at once, value t of sample i0 + r
// at out[(t - begin) * stride + r] (the kernel's packed layout, one sample per SIMD lane; e.g.
// random::ItemRng::FillNormalsAcross). Called as SampleFill is (each sample's ranges contiguous
// and ascending from 0), for the samples of one register panel at a time.
using SampleFillRows = void (*)(void* context, int64_t i0, int64_t count, int64_t begin,
                                int64_t end, double* out, int64_t stride);

struct SampleProductArgs {
  const PackedPanels* b = nullptr;
  int64_t m = 0;                     // number of samples
  const double* const* a = nullptr;  // a[i][k], k < K: sample i's multiplier vector
  // Instead of `a` (then nullptr): the samples' vectors produced on demand, straight into the
  // kernel's packed layout, in blocks small enough for L1 (no m x K buffer). With a noise term,
  // noise_offset must be K.
  SampleFill fill = nullptr;
  // Or (then fill nullptr): the same, several samples per call, straight into the packed layout.
  SampleFillRows fill_rows = nullptr;
  void* fill_context = nullptr;
  const double* bias = nullptr;         // N
  const double* noise_scale = nullptr;  // N, or nullptr for no noise term
  int64_t noise_offset = 0;             // noise_i[j] = a[i][noise_offset + j]
  // x(i, j) at out_rows[i][j]: sample i's row (row-major, any rows anywhere), N values each.
  double* const* out_rows = nullptr;
};

void SampleProduct(const SampleProductArgs& args);
void SampleProductAt(random::SimdLevel level, const SampleProductArgs& args);

namespace internal {
// SampleProductArgs with the panels as raw pointers: the per-level files use no standard-library
// inline code (whose instances, compiled for AVX-512, the linker could pick for baseline code).
struct RawProduct {
  int64_t k, n, panels;
  const int64_t* offset;
  const int64_t* kend;
  const double* data;
  int64_t m;
  const double* const* a;
  SampleFill fill;
  SampleFillRows fill_rows;
  void* fill_context;
  const double* bias;
  const double* noise_scale;
  int64_t noise_offset;
  double* const* out_rows;
};
void SampleProductBaseline(const RawProduct& args);
void SampleProductAvx2(const RawProduct& args);
void SampleProductAvx512(const RawProduct& args);
}  // namespace internal

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_CORE_SAMPLE_PRODUCT_H_
