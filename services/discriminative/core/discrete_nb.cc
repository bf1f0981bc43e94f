#include "services/discriminative/core/discrete_nb.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(__SSE2__)
#include <immintrin.h>
#endif

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/convert/take_repeated.h"
#include "common/status/status_macros.h"
#include "common/store/held_bytes.h"
#include "services/discriminative/core/class_labels.h"
#include "services/discriminative/core/numpy_compat.h"

namespace maas::discriminative {
namespace {

constexpr double kAlphaLowerBound = 1e-10;

// The values of *m (rows x cols), taken: m's values are freed once copied.
absl::StatusOr<std::vector<double>> TakeMatrixValues(common::v1::Matrix* m, size_t rows,
                                                     size_t cols, absl::string_view name) {
  if (m->rows() != rows || m->cols() != cols) {
    return absl::InvalidArgumentError(absl::StrCat(name, " is ", m->rows(), " x ", m->cols(),
                                                   "; expected ", rows, " x ", cols,
                                                   " (classes x features)"));
  }
  if (static_cast<uint64_t>(m->values_size()) != static_cast<uint64_t>(rows) * cols) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, " has ", m->values_size(), " values; expected rows * cols = ", rows * cols));
  }
  return convert::TakeRepeated(m->mutable_values());
}

void SetMatrix(size_t rows, size_t cols, const std::vector<double>& values, common::v1::Matrix* m) {
  m->set_rows(static_cast<uint32_t>(rows));
  m->set_cols(static_cast<uint32_t>(cols));
  m->mutable_values()->Assign(values.begin(), values.end());
}

}  // namespace

double NbOptions::effective_alpha() const {
  return !force_alpha && alpha < kAlphaLowerBound ? kAlphaLowerBound : alpha;
}

absl::Status ValidateNbOptions(const NbOptions& options) {
  if (!std::isfinite(options.alpha) || options.alpha < 0.0) {
    return absl::InvalidArgumentError(
        absl::StrCat("alpha must be finite and >= 0; got ", options.alpha));
  }
  bool any_positive = false;
  for (size_t c = 0; c < options.class_prior.size(); ++c) {
    const double p = options.class_prior[c];
    if (!std::isfinite(p) || p < 0.0) {
      return absl::InvalidArgumentError(
          absl::StrCat("class_prior[", c, "] must be finite and >= 0; got ", p));
    }
    any_positive = any_positive || p > 0.0;
  }
  if (!options.class_prior.empty() && !any_positive) {
    return absl::InvalidArgumentError(
        "class_prior has no positive value: class_log_prior_ would be log(0) = -inf for every "
        "class, so every text's joint log-likelihood is -inf and its probabilities are -inf - "
        "(-inf) = NaN (scikit-learn's too); give at least one class a prior > 0");
  }
  return absl::OkStatus();
}

bool AllWithin(const std::vector<double>& values, double low, double high) {
  return AllWithin(values.data(), values.size(), low, high);
}

bool AllWithin(const double* v, size_t n, double low, double high) {
  // Without a branch per value; a NaN fails both compares. GCC does not vectorise the scalar loop
  // (a reduction of FP compares), which then takes ~4 cycles a value: 12 ms for one of a 2^20
  // feature fit's 8 x 2^20 tables, a third of the memory pass SSE2 takes (4 values a step).
  size_t i = 0;
  bool ok = true;
#if defined(__SSE2__)
  const __m128d lo = _mm_set1_pd(low), hi = _mm_set1_pd(high);
  __m128d in = _mm_castsi128_pd(_mm_set1_epi32(-1));
  for (; i + 4 <= n; i += 4) {
    const __m128d a = _mm_loadu_pd(v + i), b = _mm_loadu_pd(v + i + 2);
    in = _mm_and_pd(in, _mm_and_pd(_mm_and_pd(_mm_cmpge_pd(a, lo), _mm_cmple_pd(a, hi)),
                                   _mm_and_pd(_mm_cmpge_pd(b, lo), _mm_cmple_pd(b, hi))));
  }
  ok = _mm_movemask_pd(in) == 3;
#endif
  for (; i < n; ++i) ok &= (v[i] >= low) & (v[i] <= high);
  return ok;
}

bool AllLogProbabilities(const std::vector<double>& values, bool allow_neg_inf,
                         bool allow_positive) {
  return AllLogProbabilities(values.data(), values.size(), allow_neg_inf, allow_positive);
}

bool AllLogProbabilities(const double* values, size_t n, bool allow_neg_inf, bool allow_positive) {
  return AllWithin(values, n, allow_neg_inf ? -HUGE_VAL : -std::numeric_limits<double>::max(),
                   allow_positive ? std::numeric_limits<double>::max() : 0.0);
}

absl::Status CheckLogProbabilities(const std::vector<double>& values, absl::string_view name,
                                   bool allow_neg_inf, bool allow_positive) {
  // The common case in one pass at memory speed; the loop below names the first bad value.
  if (AllLogProbabilities(values, allow_neg_inf, allow_positive)) return absl::OkStatus();
  for (size_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    if (std::isnan(v) || v == HUGE_VAL || (!allow_positive && v > 0.0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, " value ", i, " must be ",
          allow_positive ? "a finite number" : "a log-probability (<= 0)", "; got ", v));
    }
    if (v == -HUGE_VAL && !allow_neg_inf) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, " value ", i,
          " is -inf, but with alpha > 0 (or force_alpha false) every probability is > 0; give "
          "finite values (or alpha 0 with force_alpha for zero probabilities)"));
    }
  }
  return absl::OkStatus();
}

namespace {

constexpr size_t kAhead = 8;  // rows of the weight table requested ahead of their use

// The K weights of entry e of a row (indices[0 .. n)) in the feature-major table, or null for an
// index past the features (skipped); requests the row of entry e + kAhead from memory.
template <size_t K>
__attribute__((always_inline)) inline const double* EntryWeights(const uint32_t* indices, size_t e,
                                                                 size_t n, const double* weights,
                                                                 size_t num_features) {
  if (e + kAhead < n && indices[e + kAhead] < num_features) {
    __builtin_prefetch(weights + static_cast<size_t>(indices[e + kAhead]) * K);
  }
  const uint32_t f = indices[e];
  return f < num_features ? weights + static_cast<size_t>(f) * K : nullptr;
}

// sum_e values[e] * weights[indices[e]][0..K) + bias[0..K) for a fixed class count K, the sums in
// registers (the generic loop keeps them in memory: jll may alias the table as far as the compiler
// knows). Same operations in the same order as the generic loop, so the same bits.
template <size_t K>
void AccumulatePlain(const SparseVector& row, const double* weights, size_t num_features,
                     const double* bias, double* jll) {
  double sum[K] = {};
  const size_t n = row.indices.size();
  const uint32_t* indices = row.indices.data();
  const double* values = row.values.data();
  for (size_t e = 0; e < n; ++e) {
    const double* w = EntryWeights<K>(indices, e, n, weights, num_features);
    if (w == nullptr) continue;
    const double v = values[e];
    for (size_t c = 0; c < K; ++c) sum[c] += v * w[c];
  }
  for (size_t c = 0; c < K; ++c) jll[c] = sum[c] + bias[c];
}

using AccumulateFn = void (*)(const SparseVector&, const double*, size_t, const double*, double*);

#if defined(__x86_64__)
// AccumulatePlain on the AVX-512 level: a row of K <= 16 weights as one or two vectors (the last
// masked), one multiply and one add per vector and entry: the same IEEE operations on each class
// in the same order (no fused multiply-add: the library builds with -ffp-contract=off), so the same
// bits, in a fraction of the instructions, which leaves the out-of-order core room to overlap the
// row's chain of additions with the next text's work. The bias is added in the vectors too: jll
// is stored as whole vectors, which the softmax then loads whole (scalar stores of the sums
// would not forward to its vector load).
template <size_t K>
__attribute__((target("avx512f"))) void AccumulateAvx512(const SparseVector& row,
                                                         const double* weights, size_t num_features,
                                                         const double* bias, double* jll) {
  constexpr size_t kVectors = (K + 7) / 8;
  constexpr unsigned kLast = K % 8 == 0 ? 0xFFu : (1u << (K % 8)) - 1;
  __m512d sum[kVectors];
  for (size_t v = 0; v < kVectors; ++v) sum[v] = _mm512_setzero_pd();
  const size_t n = row.indices.size();
  const uint32_t* indices = row.indices.data();
  const double* values = row.values.data();
  for (size_t e = 0; e < n; ++e) {
    const double* w = EntryWeights<K>(indices, e, n, weights, num_features);
    if (w == nullptr) continue;
    const __m512d x = _mm512_set1_pd(values[e]);
    for (size_t v = 0; v < kVectors; ++v) {
      const __mmask8 lanes = static_cast<__mmask8>(v + 1 < kVectors ? 0xFFu : kLast);
      sum[v] = _mm512_add_pd(sum[v], _mm512_mul_pd(x, _mm512_maskz_loadu_pd(lanes, w + 8 * v)));
    }
  }
  for (size_t v = 0; v < kVectors; ++v) {
    const __mmask8 lanes = static_cast<__mmask8>(v + 1 < kVectors ? 0xFFu : kLast);
    _mm512_mask_storeu_pd(jll + 8 * v, lanes,
                          _mm512_add_pd(sum[v], _mm512_maskz_loadu_pd(lanes, bias + 8 * v)));
  }
}

// AccumulateAvx512 on the AVX2 level: 4 lanes per vector, the last one's weights loaded masked.
template <size_t K>
__attribute__((target("avx2"))) void AccumulateAvx2(const SparseVector& row, const double* weights,
                                                    size_t num_features, const double* bias,
                                                    double* jll) {
  constexpr size_t kVectors = (K + 3) / 4;
  constexpr size_t kLastLanes = K % 4 == 0 ? 4 : K % 4;
  const __m256i last =
      _mm256_cmpgt_epi64(_mm256_set1_epi64x(kLastLanes), _mm256_setr_epi64x(0, 1, 2, 3));
  __m256d sum[kVectors];
  for (size_t v = 0; v < kVectors; ++v) sum[v] = _mm256_setzero_pd();
  const size_t n = row.indices.size();
  const uint32_t* indices = row.indices.data();
  const double* values = row.values.data();
  for (size_t e = 0; e < n; ++e) {
    const double* w = EntryWeights<K>(indices, e, n, weights, num_features);
    if (w == nullptr) continue;
    const __m256d x = _mm256_set1_pd(values[e]);
    for (size_t v = 0; v < kVectors; ++v) {
      const __m256d wv = v + 1 < kVectors || K % 4 == 0 ? _mm256_loadu_pd(w + 4 * v)
                                                        : _mm256_maskload_pd(w + 4 * v, last);
      sum[v] = _mm256_add_pd(sum[v], _mm256_mul_pd(x, wv));
    }
  }
  for (size_t v = 0; v < kVectors; ++v) {
    if (v + 1 < kVectors || K % 4 == 0) {
      _mm256_storeu_pd(jll + 4 * v, _mm256_add_pd(sum[v], _mm256_loadu_pd(bias + 4 * v)));
    } else {  // through a buffer: a masked store is slow on some CPUs (Zen 3)
      alignas(32) double part[4];
      _mm256_store_pd(part, _mm256_add_pd(sum[v], _mm256_maskload_pd(bias + 4 * v, last)));
      std::memcpy(jll + 4 * v, part, (K % 4) * sizeof(double));
    }
  }
}

// The joint log-likelihood of more classes than the fixed-count kernels take, one block of
// kBlockVectors * lanes classes at a time: V vectors of the block's sums stay in registers across
// the row's entries (each class's sum in entry order, one multiply then one add per entry, then
// the bias: the generic loop's operations in its order, so its bits), the last vector of the last
// block loaded masked; every loop over the vectors unrolled (otherwise GCC keeps the sums on the
// stack). (The generic loop keeps the k sums in memory, two lanes an instruction: a load,
// multiply, add and store per pair of classes and entry.) 100 classes classify 1.3x faster; at
// 1 000 classes the table (8 KB a feature) streams from memory and both take the same time.
constexpr size_t kBlockVectors = 8;

template <size_t V>
__attribute__((target("avx2"))) void AccumulateBlockAvx2(const SparseVector& row,
                                                         const double* weights, size_t k, size_t c0,
                                                         size_t num_features, const double* bias,
                                                         double* jll) {
  const size_t width = std::min(k - c0, 4 * V);
  const size_t last_lanes = width - 4 * (V - 1);
  const __m256i last = _mm256_cmpgt_epi64(_mm256_set1_epi64x(static_cast<int64_t>(last_lanes)),
                                          _mm256_setr_epi64x(0, 1, 2, 3));
  __m256d sum[V];
#pragma GCC unroll 8
  for (size_t v = 0; v < V; ++v) sum[v] = _mm256_setzero_pd();
  const size_t n = row.indices.size();
  const uint32_t* indices = row.indices.data();
  const double* values = row.values.data();
  for (size_t e = 0; e < n; ++e) {
    if (e + kAhead < n && indices[e + kAhead] < num_features) {
      const double* ahead = weights + static_cast<size_t>(indices[e + kAhead]) * k + c0;
#pragma GCC unroll 8
      for (size_t line = 0; line < V; line += 2) __builtin_prefetch(ahead + 4 * line);
    }
    const uint32_t f = indices[e];
    if (f >= num_features) continue;
    const double* w = weights + static_cast<size_t>(f) * k + c0;
    const __m256d x = _mm256_set1_pd(values[e]);
    // Unrolled, the last vector loaded masked whatever its lanes: with a condition inside, GCC
    // kept the sums on the stack.
#pragma GCC unroll 8
    for (size_t v = 0; v + 1 < V; ++v) {
      sum[v] = _mm256_add_pd(sum[v], _mm256_mul_pd(x, _mm256_loadu_pd(w + 4 * v)));
    }
    sum[V - 1] =
        _mm256_add_pd(sum[V - 1], _mm256_mul_pd(x, _mm256_maskload_pd(w + 4 * (V - 1), last)));
  }
#pragma GCC unroll 8
  for (size_t v = 0; v < V; ++v) {
    alignas(32) double part[4];
    const __m256d b = v + 1 < V || last_lanes == 4 ? _mm256_loadu_pd(bias + c0 + 4 * v)
                                                   : _mm256_maskload_pd(bias + c0 + 4 * v, last);
    _mm256_store_pd(part, _mm256_add_pd(sum[v], b));
    std::memcpy(jll + c0 + 4 * v, part, (v + 1 < V ? 4 : last_lanes) * sizeof(double));
  }
}

template <size_t V>
__attribute__((target("avx512f"))) void AccumulateBlockAvx512(const SparseVector& row,
                                                              const double* weights, size_t k,
                                                              size_t c0, size_t num_features,
                                                              const double* bias, double* jll) {
  const size_t width = std::min(k - c0, 8 * V);
  const size_t last_lanes = width - 8 * (V - 1);
  const __mmask8 last = static_cast<__mmask8>((1u << last_lanes) - 1);
  __m512d sum[V];
#pragma GCC unroll 8
  for (size_t v = 0; v < V; ++v) sum[v] = _mm512_setzero_pd();
  const size_t n = row.indices.size();
  const uint32_t* indices = row.indices.data();
  const double* values = row.values.data();
  for (size_t e = 0; e < n; ++e) {
    if (e + kAhead < n && indices[e + kAhead] < num_features) {
      const double* ahead = weights + static_cast<size_t>(indices[e + kAhead]) * k + c0;
#pragma GCC unroll 8
      for (size_t line = 0; line < V; ++line) __builtin_prefetch(ahead + 8 * line);
    }
    const uint32_t f = indices[e];
    if (f >= num_features) continue;
    const double* w = weights + static_cast<size_t>(f) * k + c0;
    const __m512d x = _mm512_set1_pd(values[e]);
#pragma GCC unroll 8
    for (size_t v = 0; v + 1 < V; ++v) {
      sum[v] = _mm512_add_pd(sum[v], _mm512_mul_pd(x, _mm512_loadu_pd(w + 8 * v)));
    }
    sum[V - 1] =
        _mm512_add_pd(sum[V - 1], _mm512_mul_pd(x, _mm512_maskz_loadu_pd(last, w + 8 * (V - 1))));
  }
#pragma GCC unroll 8
  for (size_t v = 0; v < V; ++v) {
    const __mmask8 lanes = v + 1 < V ? static_cast<__mmask8>(0xFFu) : last;
    _mm512_mask_storeu_pd(jll + c0 + 8 * v, lanes,
                          _mm512_add_pd(sum[v], _mm512_maskz_loadu_pd(lanes, bias + c0 + 8 * v)));
  }
}

using AccumulateBlockFn = void (*)(const SparseVector&, const double*, size_t, size_t, size_t,
                                   const double*, double*);
// kAccumulateBlock...[V - 1]: the block kernel of V vectors.
constexpr AccumulateBlockFn kAccumulateBlockAvx2[kBlockVectors] = {
    &AccumulateBlockAvx2<1>, &AccumulateBlockAvx2<2>, &AccumulateBlockAvx2<3>,
    &AccumulateBlockAvx2<4>, &AccumulateBlockAvx2<5>, &AccumulateBlockAvx2<6>,
    &AccumulateBlockAvx2<7>, &AccumulateBlockAvx2<8>};
constexpr AccumulateBlockFn kAccumulateBlockAvx512[kBlockVectors] = {
    &AccumulateBlockAvx512<1>, &AccumulateBlockAvx512<2>, &AccumulateBlockAvx512<3>,
    &AccumulateBlockAvx512<4>, &AccumulateBlockAvx512<5>, &AccumulateBlockAvx512<6>,
    &AccumulateBlockAvx512<7>, &AccumulateBlockAvx512<8>};

// The blocked joint log-likelihood of k classes with `lanes`-wide vectors (the blocks' kernels in
// `kernels`).
void AccumulateBlocks(const AccumulateBlockFn (&kernels)[kBlockVectors], size_t lanes,
                      const SparseVector& row, const double* weights, size_t k, size_t num_features,
                      const double* bias, double* jll) {
  for (size_t c0 = 0; c0 < k; c0 += kBlockVectors * lanes) {
    const size_t width = std::min(k - c0, kBlockVectors * lanes);
    kernels[(width + lanes - 1) / lanes - 1](row, weights, k, c0, num_features, bias, jll);
  }
}

template <size_t... K>
constexpr std::array<AccumulateFn, sizeof...(K)> MakeAccumulateAvx2Table(
    std::index_sequence<K...>) {
  return {(K == 0 ? nullptr : &AccumulateAvx2<(K == 0 ? 1 : K)>)...};
}

template <size_t... K>
constexpr std::array<AccumulateFn, sizeof...(K)> MakeAccumulateAvx512Table(
    std::index_sequence<K...>) {
  return {(K == 0 ? nullptr : &AccumulateAvx512<(K == 0 ? 1 : K)>)...};
}
#endif

template <size_t... K>
constexpr std::array<AccumulateFn, sizeof...(K)> MakeAccumulateTable(std::index_sequence<K...>) {
  return {&AccumulatePlain<K>...};
}
// kAccumulate[K] for K in [0, 16]; 0 and 1 are never used (a classifier has >= 2 classes).
constexpr auto kAccumulate = MakeAccumulateTable(std::make_index_sequence<17>());
#if defined(__x86_64__)
constexpr auto kAccumulateAvx512 = MakeAccumulateAvx512Table(std::make_index_sequence<17>());
constexpr auto kAccumulateAvx2 = MakeAccumulateAvx2Table(std::make_index_sequence<17>());
#endif

// Calls copy(c, j) for every class c < k and feature j < f, feature block by feature block: the
// order of a copy between a C x F class-major matrix and its F x C feature-major transpose
// (SetTableTransposed, FeatureLogProbInto) in which a block's k x kBlock values stay in cache, so
// that each class row is read or written sequentially and each block of the transpose touched
// once (class by class over the whole table, every access touched another cache line: k passes
// over a table of up to hundreds of MB).
template <typename Copy>
void ForEachInFeatureBlocks(size_t k, size_t f, Copy copy) {
  constexpr size_t kBlock = 256;
  for (size_t j0 = 0; j0 < f; j0 += kBlock) {
    const size_t j1 = std::min(f, j0 + kBlock);
    for (size_t c = 0; c < k; ++c) {
      for (size_t j = j0; j < j1; ++j) copy(c, j);
    }
  }
}

}  // namespace

void DiscreteNb::JointLogLikelihood(const SparseVector& row, double* jll) const {
  JointLogLikelihoodWith(random::BestSimdLevel(), row, jll);
}

void DiscreteNb::JointLogLikelihoodWith(random::SimdLevel level, const SparseVector& row,
                                        double* jll) const {
  const size_t k = classes_.size();
  const bool plain = !TransformsValues();
  if (plain && k < kAccumulate.size()) {
#if defined(__x86_64__)
    const AccumulateFn accumulate = level == random::SimdLevel::kAvx512 ? kAccumulateAvx512[k]
                                    : level == random::SimdLevel::kAvx2 ? kAccumulateAvx2[k]
                                                                        : kAccumulate[k];
#else
    (void)level;
    const AccumulateFn accumulate = kAccumulate[k];
#endif
    accumulate(row, weights_t_.data(), num_features_, bias_.data(), jll);
    return;
  }
#if defined(__x86_64__)
  if (plain && level == random::SimdLevel::kAvx512) {
    AccumulateBlocks(kAccumulateBlockAvx512, 8, row, weights_t_.data(), k, num_features_,
                     bias_.data(), jll);
    return;
  }
  if (plain && level == random::SimdLevel::kAvx2) {
    AccumulateBlocks(kAccumulateBlockAvx2, 4, row, weights_t_.data(), k, num_features_,
                     bias_.data(), jll);
    return;
  }
#endif
  for (size_t c = 0; c < k; ++c) jll[c] = 0.0;
  const size_t n = row.indices.size();
  for (size_t e = 0; e < std::min(n, kAhead); ++e) {
    if (row.indices[e] < num_features_) {
      __builtin_prefetch(weights_t_.data() + static_cast<size_t>(row.indices[e]) * k);
    }
  }
  for (size_t e = 0; e < n; ++e) {
    if (e + kAhead < n && row.indices[e + kAhead] < num_features_) {
      __builtin_prefetch(weights_t_.data() + static_cast<size_t>(row.indices[e + kAhead]) * k);
    }
    const uint32_t f = row.indices[e];
    if (f >= num_features_) continue;
    const double v = plain ? row.values[e] : EffectiveValue(row.values[e]);
    if (!plain && v == 0.0 && DropsZeros()) continue;
    const double* w = weights_t_.data() + static_cast<size_t>(f) * k;
    for (size_t c = 0; c < k; ++c) jll[c] += v * w[c];
  }
  for (size_t c = 0; c < k; ++c) jll[c] += bias_[c];
}

double DiscreteNb::FeatureContribution(size_t c, uint32_t feature, double value) const {
  if (feature >= num_features_) return 0.0;
  return EffectiveValue(value) * weights_t_[static_cast<size_t>(feature) * classes_.size() + c];
}

int64_t DiscreteNb::MemoryBytes() const {
  return static_cast<int64_t>(sizeof(*this)) + store::StringVectorBytes(classes_) +
         store::VectorBytes(class_count_) + store::VectorBytes(feature_count_) +
         store::VectorBytes(class_log_prior_) + store::VectorBytes(feature_log_prob_) +
         static_cast<int64_t>(weights_t_.capacity() * sizeof(double)) + store::VectorBytes(bias_) +
         store::VectorBytes(options_.class_prior);
}

void DiscreteNb::ToState(v1::ClassifierState* state) const {
  *state->mutable_config() = Config();
  state->mutable_classes()->Assign(classes_.begin(), classes_.end());
  state->set_label_type(options_.label_type);
  state->mutable_class_count()->Assign(class_count_.begin(), class_count_.end());
  SetMatrix(classes_.size(), num_features_, feature_count_, state->mutable_feature_count());
  state->mutable_class_log_prior()->Assign(class_log_prior_.begin(), class_log_prior_.end());
  common::v1::Matrix* flp = state->mutable_feature_log_prob();
  flp->set_rows(static_cast<uint32_t>(classes_.size()));
  flp->set_cols(static_cast<uint32_t>(num_features_));
  flp->mutable_values()->Resize(static_cast<int>(classes_.size() * num_features_), 0.0);
  FeatureLogProbInto(flp->mutable_values()->mutable_data());
}

std::vector<double> DiscreteNb::feature_log_prob() const {
  std::vector<double> flp(classes_.size() * num_features_);
  FeatureLogProbInto(flp.data());
  return flp;
}

void DiscreteNb::FeatureLogProbInto(double* out) const {
  const size_t k = classes_.size();
  const size_t f = num_features_;
  if (feature_log_prob_.size() == k * f) {
    std::copy(feature_log_prob_.begin(), feature_log_prob_.end(), out);
    return;
  }
  ReleasedFeatureLogProbInto(out);
}

void DiscreteNb::ReleasedFeatureLogProbInto(double* out) const {
  const size_t k = classes_.size();
  const size_t f = num_features_;
  const double* table = weights_t_.data();
  ForEachInFeatureBlocks(k, f, [&](size_t c, size_t j) { out[c * f + j] = table[j * k + c]; });
}

void DiscreteNb::ReleaseFeatureLogProb() { std::vector<double>().swap(feature_log_prob_); }

absl::Status DiscreteNb::FitInPlace(SparseRowsView rows, size_t num_features,
                                    const std::vector<std::string>& labels,
                                    const std::vector<double>& weights) {
  MAAS_RETURN_IF_ERROR(FitCounts(rows, num_features, labels, weights));
  MAAS_RETURN_IF_ERROR(UpdateParameters());
  const absl::Status valid = ValidateFitted();
  if (!valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the fitted model is invalid: ", valid.message()));
  }
  BuildTable();
  return absl::OkStatus();
}

absl::Status DiscreteNb::CheckExamples(SparseRowsView rows, const std::vector<std::string>& labels,
                                       const std::vector<double>& weights,
                                       size_t num_features) const {
  if (labels.size() != rows.size()) {
    return absl::InvalidArgumentError(absl::StrCat("got ", rows.size(), " rows but ", labels.size(),
                                                   " labels (need one per row)"));
  }
  if (!weights.empty() && weights.size() != rows.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "got ", rows.size(), " rows but ", weights.size(), " weights (need one per row, or none)"));
  }
  MAAS_RETURN_IF_ERROR(ValidateNbOptions(options_));
  // fit and partial_fit alike (a partial Train's batch alone).
  if (!weights.empty() &&
      std::all_of(weights.begin(), weights.end(), [](double w) { return w == 0.0; })) {
    return absl::InvalidArgumentError(
        "every sample weight is 0, so there is nothing to learn (scikit-learn refuses it too: "
        "\"Sample weights must contain at least one non-zero number.\"); nothing was stored: give "
        "at least one example a weight > 0");
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!weights.empty() && !(std::isfinite(weights[i]) && weights[i] >= 0.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("weight of example ", i, " must be finite and >= 0; got ", weights[i]));
    }
    const SparseRowRef row = rows[i];
    if (row.indices.size() != row.values.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "row ", i, " has ", row.indices.size(), " indices but ", row.values.size(), " values"));
    }
    // The common case without a branch per entry: every index in range and every value finite
    // (and >= 0 where required); otherwise the loop below finds and names the first bad entry.
    const size_t n = row.indices.size();
    const uint32_t* indices = row.indices.data();
    const double* values = row.values.data();
    const double lowest = RequiresNonNegative() ? 0.0 : -std::numeric_limits<double>::max();
    bool ok = true;
    for (size_t k = 0; k < n; ++k) {
      // A NaN fails both comparisons.
      ok &= (indices[k] < num_features) & (values[k] >= lowest) &
            (values[k] <= std::numeric_limits<double>::max());
    }
    if (ok) continue;
    for (size_t k = 0; k < row.indices.size(); ++k) {
      if (row.indices[k] >= num_features) {
        return absl::InvalidArgumentError(absl::StrCat(
            "row ", i, " has feature index ", row.indices[k], " >= ", num_features, " features"));
      }
      // Named as scikit-learn names them (its finiteness check comes before the sign check).
      if (!std::isfinite(row.values[k])) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Input X contains ", std::isnan(row.values[k]) ? "NaN" : "infinity", " (row ", i,
            ", feature ", row.indices[k], "), which ", SklearnName(), " refuses"));
      }
      if (RequiresNonNegative() && row.values[k] < 0.0) {
        return absl::InvalidArgumentError(
            absl::StrCat("Negative values in data passed to ", SklearnName(), " (row ", i, ")"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status DiscreteNb::FitCounts(SparseRowsView rows, size_t num_features,
                                   const std::vector<std::string>& labels,
                                   const std::vector<double>& weights) {
  if (rows.empty()) return absl::InvalidArgumentError("no training examples");
  MAAS_RETURN_IF_ERROR(CheckExamples(rows, labels, weights, num_features));
  for (size_t i = 0; i < rows.size(); ++i) {
    if (labels[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("label of example ", i, " is empty"));
    }
  }
  num_features_ = num_features;
  // The distinct labels in class order (numpy.unique: code point order for strings, numeric order
  // for integers), each label's class by hash. Each distinct label is checked once against the
  // label type, where it first occurs.
  absl::flat_hash_map<absl::string_view, size_t> class_of;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (!class_of.emplace(labels[i], 0).second) continue;
    const absl::Status valid = ValidateLabel(labels[i], options_.label_type);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("label of example ", i, ": ", valid.message()));
    }
  }
  classes_.clear();
  for (const auto& entry : class_of) classes_.emplace_back(entry.first);
  SortClasses(&classes_, options_.label_type);
  for (size_t c = 0; c < classes_.size(); ++c) class_of[classes_[c]] = c;
  const size_t k = classes_.size();
  if (!options_.class_prior.empty() && options_.class_prior.size() != k) {
    return absl::InvalidArgumentError(
        absl::StrCat("Number of priors must match number of classes: got ",
                     options_.class_prior.size(), " class_prior values for ", k, " classes"));
  }
  class_count_.assign(k, 0.0);
  feature_count_.assign(k * num_features, 0.0);
  // fc[c, f] += v * w in sample order (scipy csc_matvecs); cc[c] += w (Y.sum(axis=0)).
  const bool plain = !TransformsValues();
  for (size_t i = 0; i < rows.size(); ++i) {
    const size_t c = class_of.find(labels[i])->second;
    const double w = weights.empty() ? 1.0 : weights[i];
    double* fc = feature_count_.data() + c * num_features;
    const SparseRowRef row = rows[i];
    for (size_t e = 0; e < row.indices.size(); ++e) {
      const double v = plain ? row.values[e] : EffectiveValue(row.values[e]);
      if (!plain && v == 0.0 && DropsZeros()) continue;
      fc[row.indices[e]] += v * w;
    }
    class_count_[c] += w;
  }
  return absl::OkStatus();
}

void DiscreteNb::UpdateClassLogPrior() {
  const size_t k = classes_.size();
  class_log_prior_.assign(k, 0.0);
  if (!options_.class_prior.empty()) {
    for (size_t c = 0; c < k; ++c) class_log_prior_[c] = std::log(options_.class_prior[c]);
  } else if (options_.fit_prior) {
    const double log_total = std::log(NumpySum(class_count_.data(), k));
    for (size_t c = 0; c < k; ++c) class_log_prior_[c] = std::log(class_count_[c]) - log_total;
  } else {
    for (size_t c = 0; c < k; ++c) class_log_prior_[c] = -std::log(static_cast<double>(k));
  }
}

void DiscreteNb::SetTableTransposed(const std::vector<double>& c_by_f) {
  const size_t k = classes_.size();
  const size_t f = num_features_;
  weights_t_.clear();
  weights_t_.resize(k * f);  // not zero-filled: every value is written below
  const double* from = c_by_f.data();
  double* table = weights_t_.data();
  ForEachInFeatureBlocks(k, f, [&](size_t c, size_t j) { table[j * k + c] = from[c * f + j]; });
}

absl::Status DiscreteNb::LoadState(v1::ClassifierState* state, size_t num_features,
                                   ClassifierStateUse use) {
  const size_t k = state->classes_size();
  if (k == 0) return absl::InvalidArgumentError("classes is empty: need at least 1 class");
  MAAS_RETURN_IF_ERROR(ValidateLabelType(state->label_type()));
  options_.label_type = state->label_type();
  const ClassOrder order(options_.label_type);
  classes_ = convert::TakeRepeated(state->mutable_classes());
  for (size_t c = 0; c < k; ++c) {
    if (classes_[c].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("classes[", c, "] is empty"));
    }
    const absl::Status valid = ValidateUtf8(classes_[c]);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("classifier.classes[", c, "]: ", valid.message()));
    }
    const absl::Status label = ValidateLabel(classes_[c], options_.label_type);
    if (!label.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "classifier.classes[", c, "] (label_type LABEL_TYPE_INT64): ", label.message()));
    }
    if (c > 0 && !order(classes_[c - 1], classes_[c])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "classes must be sorted ",
          options_.label_type == v1::LABEL_TYPE_INT64 ? "numerically (label_type LABEL_TYPE_INT64)"
                                                      : "by code point",
          " without duplicates (numpy.unique order); classes[", c - 1, "] = \"",
          classes_[c - 1].substr(0, 100), "\" is not before classes[", c, "] = \"",
          classes_[c].substr(0, 100), "\""));
    }
  }
  if (num_features == 0) return absl::InvalidArgumentError("the classifier has 0 features");
  num_features_ = num_features;
  if (static_cast<size_t>(state->class_count_size()) != k) {
    return absl::InvalidArgumentError(
        absl::StrCat("class_count has ", state->class_count_size(), " values; expected ", k));
  }
  if (static_cast<size_t>(state->class_log_prior_size()) != k) {
    return absl::InvalidArgumentError(absl::StrCat(
        "class_log_prior has ", state->class_log_prior_size(), " values; expected ", k));
  }
  class_count_.assign(state->class_count().begin(), state->class_count().end());
  class_log_prior_.assign(state->class_log_prior().begin(), state->class_log_prior().end());
  // One table at a time: each is freed from the state once taken.
  MAAS_ASSIGN_OR_RETURN(feature_count_, TakeMatrixValues(state->mutable_feature_count(), k,
                                                         num_features, "classifier.feature_count"));
  MAAS_ASSIGN_OR_RETURN(feature_log_prob_,
                        TakeMatrixValues(state->mutable_feature_log_prob(), k, num_features,
                                         "classifier.feature_log_prob"));
  if (!options_.class_prior.empty() && options_.class_prior.size() != k) {
    return absl::InvalidArgumentError(
        absl::StrCat("Number of priors must match number of classes: got ",
                     options_.class_prior.size(), " class_prior values for ", k, " classes"));
  }
  return use == ClassifierStateUse::kPartialStart ? ValidateCounts() : ValidateFitted();
}

absl::Status DiscreteNb::ValidateCounts() const {
  const size_t k = classes_.size();
  for (size_t i = 0; i < k; ++i) {
    if (!(std::isfinite(class_count_[i]) && class_count_[i] >= 0.0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "class_count[", i, "] must be finite and >= 0; got ", class_count_[i],
          std::isinf(class_count_[i]) ? " (weighted counts beyond float64's range overflow to "
                                        "inf: scale the sample weights down)"
                                      : ""));
    }
  }
  const bool negative_ok = AllowsNegativeFeatureCounts();
  // The common case in one pass at memory speed; the loop below names the first bad value.
  if (AllWithin(feature_count_, negative_ok ? -std::numeric_limits<double>::max() : 0.0,
                std::numeric_limits<double>::max())) {
    return absl::OkStatus();
  }
  for (size_t i = 0; i < feature_count_.size(); ++i) {
    if (!(std::isfinite(feature_count_[i]) && (negative_ok || feature_count_[i] >= 0.0))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "feature_count value ", i, " must be finite", negative_ok ? "" : " and >= 0", "; got ",
          feature_count_[i],
          std::isinf(feature_count_[i])
              ? " (weighted counts beyond float64's range overflow to inf: scale the sample "
                "weights down)"
              : ""));
    }
  }
  return absl::OkStatus();
}

absl::Status DiscreteNb::ValidateFitted() const {
  MAAS_RETURN_IF_ERROR(ValidateCounts());
  const size_t k = classes_.size();
  for (size_t i = 0; i < k; ++i) {
    if (std::isnan(class_log_prior_[i]) || class_log_prior_[i] == HUGE_VAL) {
      return absl::InvalidArgumentError(absl::StrCat(
          "class_log_prior value ", i, " must be a number < +inf; got ", class_log_prior_[i]));
    }
  }
  if (std::none_of(class_log_prior_.begin(), class_log_prior_.end(),
                   [](double v) { return std::isfinite(v); })) {
    return absl::InvalidArgumentError("class_log_prior must have at least one finite value");
  }
  return ValidateFeatureLogProb();
}

}  // namespace maas::discriminative
