// What loading a stored generative model holds at its peak, measured: this binary replaces malloc
// (forwarding to glibc's own, __libc_malloc and friends) to count every byte live, since Eigen's
// matrices are allocated with malloc, not operator new. Its own binary, so that the counting
// allocator touches no other test.
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/registry/model_repository.h"
#include "common/store/memory_model_store.h"
#include "services/generative/core/families.h"
#include "services/generative/core/generative_core.h"
#include "services/generative/core/safetensors.h"

extern "C" {
void* __libc_malloc(size_t size);
void __libc_free(void* p);
void* __libc_calloc(size_t n, size_t size);
void* __libc_realloc(void* p, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
}

namespace {

std::atomic<int64_t> live_bytes{0};
std::atomic<int64_t> peak_bytes{0};

void* Counted(void* p) {
  if (p == nullptr) return p;
  const auto n = static_cast<int64_t>(malloc_usable_size(p));
  const int64_t now = live_bytes.fetch_add(n) + n;
  int64_t peak = peak_bytes.load();
  while (now > peak && !peak_bytes.compare_exchange_weak(peak, now)) {
  }
  return p;
}

void Uncount(void* p) {
  if (p != nullptr) live_bytes.fetch_sub(static_cast<int64_t>(malloc_usable_size(p)));
}

}  // namespace

extern "C" {
void* malloc(size_t size) noexcept { return Counted(__libc_malloc(size)); }
void free(void* p) noexcept {
  Uncount(p);
  __libc_free(p);
}
void* calloc(size_t n, size_t size) noexcept { return Counted(__libc_calloc(n, size)); }
void* realloc(void* p, size_t size) noexcept {
  const auto before = static_cast<int64_t>(p == nullptr ? 0 : malloc_usable_size(p));
  void* q = __libc_realloc(p, size);
  if (q == nullptr) return q;  // p is untouched (or size was 0 and p freed: counted below)
  live_bytes.fetch_sub(before);
  return Counted(q);
}
void* memalign(size_t alignment, size_t size) noexcept {
  return Counted(__libc_memalign(alignment, size));
}
void* aligned_alloc(size_t alignment, size_t size) noexcept {
  return Counted(__libc_memalign(alignment, size));
}
int posix_memalign(void** out, size_t alignment, size_t size) noexcept {
  void* p = Counted(__libc_memalign(alignment, size));
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
void* valloc(size_t size) noexcept { return Counted(__libc_memalign(4096, size)); }
}

namespace maas::generative {
namespace {

// A deterministic weight in [-0.05, 0.05) for (layer, row, column).
double Weight(int layer, int64_t r, int64_t c) {
  const uint64_t h = (static_cast<uint64_t>(layer) * 0x9E3779B97F4A7C15ull) ^
                     (static_cast<uint64_t>(r) * 0xC2B2AE3D27D4EB4Full) ^
                     (static_cast<uint64_t>(c) * 0x165667B19E3779F9ull);
  return static_cast<double>((h ^ (h >> 29)) % 1000) / 10000.0 - 0.05;
}

// A VAE decoder of latent 16 -> 512 -> 2048 -> 1024 (tanh, tanh, identity): 3.2 million weights,
// 25 MiB as float64. With `safetensors`, the layers as an F32 safetensors file (13 MiB), as a
// PyTorch export is imported; else as `layers` messages.
v1::GenerativeModelSpec DecoderSpec(bool safetensors) {
  const int widths[] = {16, 512, 2048, 1024};
  v1::GenerativeModelSpec spec;
  v1::MlpDecoderSpec* decoder = spec.mutable_mlp_decoder();
  decoder->set_noise_variance(0.1);
  std::map<std::string, Tensor> tensors;
  for (int l = 0; l < 3; ++l) {
    const int in = widths[l];
    const int out = widths[l + 1];
    Tensor weight;
    weight.shape = {out, in};
    Tensor bias;
    bias.shape = {out};
    for (int r = 0; r < out; ++r) {
      for (int c = 0; c < in; ++c) weight.values.push_back(Weight(l, r, c));
      bias.values.push_back(Weight(l, r, -1));
    }
    if (safetensors) {
      tensors[absl::StrCat("layers.", l, ".weight")] = std::move(weight);
      tensors[absl::StrCat("layers.", l, ".bias")] = std::move(bias);
      continue;
    }
    v1::DenseLayer* layer = decoder->add_layers();
    layer->mutable_weight()->set_rows(out);
    layer->mutable_weight()->set_cols(in);
    layer->mutable_weight()->mutable_values()->Add(weight.values.begin(), weight.values.end());
    layer->mutable_bias()->Add(bias.values.begin(), bias.values.end());
    layer->set_activation(l < 2 ? v1::TANH : v1::IDENTITY);
  }
  if (safetensors) {
    decoder->set_safetensors(WriteSafetensors(tensors, {}, /*f32=*/true));
  } else {
    decoder->set_latent_dim(widths[0]);
  }
  return spec;
}

struct LoadFigures {
  int64_t stored_bytes = 0;  // the version's file
  int64_t held = 0;          // live after the load: what the loaded version holds
  int64_t peak = 0;          // the most live during the load (stored bytes read included)
  int64_t charged = 0;       // what the model cache charges (held_bytes)
};

// Stores `spec` as version 1 of "big" and loads it through a repository the way a Sample of a
// version not in memory does. The loaded model samples exactly as one built from the spec.
LoadFigures StoreAndLoad(const v1::GenerativeModelSpec& spec) {
  store::MemoryModelStore store;
  LoadFigures figures;
  {
    v1::StoredGenerativeModel stored;
    stored.mutable_info()->set_name("big");
    stored.mutable_info()->set_version(1);
    stored.mutable_info()->set_type(common::v1::GENERATIVE);
    *stored.mutable_spec() = spec;
    std::string bytes = stored.SerializeAsString();
    figures.stored_bytes = static_cast<int64_t>(bytes.size());
    REQUIRE(store.Put("big", [&](int64_t) { return std::move(bytes); }).ok());
  }
  registry::ModelRepository<LoadedModel> repository(&store, ParseStoredModel, absl::ZeroDuration());
  common::v1::ModelRef ref;
  ref.set_name("big");
  const int64_t before = live_bytes.load();
  peak_bytes.store(before);
  absl::StatusOr<std::shared_ptr<const LoadedModel>> loaded = repository.Get(ref);
  figures.peak = peak_bytes.load() - before;
  figures.held = live_bytes.load() - before;
  REQUIRE(loaded.ok());
  figures.charged = (*loaded)->held_bytes();
  absl::StatusOr<std::shared_ptr<const GenerativeModel>> reference = MakeModel(spec);
  REQUIRE(reference.ok());
  RowMatrixXd x(64, (*loaded)->model->dimension()), y(64, (*reference)->dimension());
  (*loaded)->model->Sample(11, 0, x, nullptr);
  (*reference)->Sample(11, 0, y, nullptr);
  CHECK(std::memcmp(x.data(), y.data(), sizeof(double) * x.size()) == 0);
  return figures;
}

void Report(const std::string& what, const LoadFigures& f) {
  const double mib = 1 << 20;
  WARN(what << ": stored " << f.stored_bytes / mib << " MiB, loaded version holds " << f.held / mib
            << " MiB (charged " << f.charged / mib << " MiB), load peak " << f.peak / mib
            << " MiB = " << static_cast<double>(f.peak) / static_cast<double>(f.held)
            << " x what it holds");
}

TEST_CASE("Loading a large mlp_decoder given as layers peaks within 1.1 x what it holds") {
  const LoadFigures f = StoreAndLoad(DecoderSpec(/*safetensors=*/false));
  Report("mlp_decoder layers, 16-512-2048-1024", f);
  CHECK(f.held > 0);
  CHECK(f.peak <= f.held * 11 / 10);
}

TEST_CASE("Loading a large mlp_decoder given as safetensors peaks within 1.1 x what it holds") {
  const LoadFigures f = StoreAndLoad(DecoderSpec(/*safetensors=*/true));
  Report("mlp_decoder F32 safetensors, 16-512-2048-1024", f);
  CHECK(f.held > 0);
  CHECK(f.peak <= f.held * 11 / 10);
}

}  // namespace
}  // namespace maas::generative
