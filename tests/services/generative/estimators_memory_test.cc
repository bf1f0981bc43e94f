// What the estimators hold at once, measured: this binary counts every byte live through operator
// new (std::vector, Eigen's dynamic matrices use malloc and hold only latent-sized vectors here),
// so a test can check the memory bound EstimateRows documents. Its own binary, so that the counting
// allocator touches no other test.
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <new>

#include "services/generative/core/estimators.h"
#include "tests/services/generative/test_models.h"
#include "tests/services/generative/thread_executor.h"

namespace {

std::atomic<int64_t> live_bytes{0};
std::atomic<int64_t> peak_bytes{0};

void* Counted(void* p) {
  if (p == nullptr) throw std::bad_alloc();
  const int64_t now = live_bytes.fetch_add(static_cast<int64_t>(malloc_usable_size(p))) +
                      static_cast<int64_t>(malloc_usable_size(p));
  int64_t peak = peak_bytes.load();
  while (now > peak && !peak_bytes.compare_exchange_weak(peak, now)) {
  }
  return p;
}

void Release(void* p) {
  if (p == nullptr) return;
  live_bytes.fetch_sub(static_cast<int64_t>(malloc_usable_size(p)));
  std::free(p);
}

void* Aligned(std::size_t n, std::align_val_t a) {
  const std::size_t alignment = static_cast<std::size_t>(a);
  return Counted(std::aligned_alloc(
      alignment, (std::max<std::size_t>(n, 1) + alignment - 1) / alignment * alignment));
}

}  // namespace

void* operator new(std::size_t n) { return Counted(std::malloc(std::max<std::size_t>(n, 1))); }
void* operator new[](std::size_t n) { return Counted(std::malloc(std::max<std::size_t>(n, 1))); }
void* operator new(std::size_t n, std::align_val_t a) { return Aligned(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return Aligned(n, a); }
void operator delete(void* p) noexcept { Release(p); }
void operator delete[](void* p) noexcept { Release(p); }
void operator delete(void* p, std::size_t) noexcept { Release(p); }
void operator delete[](void* p, std::size_t) noexcept { Release(p); }
void operator delete(void* p, std::align_val_t) noexcept { Release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { Release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { Release(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { Release(p); }

namespace maas::generative {
namespace {

TEST_CASE("AIS holds at most 2^22 step sizes at once, whatever rows x num_temperatures is") {
  // Each row's pilot freezes num_temperatures step sizes that its chains use. Rows used to run in
  // groups of 2^22 / num_samples rows, so 1 250 rows x 20 000 temperatures (num_samples 1) held all
  // 25 million step sizes (200 MB) at once; 12 000 rows x 100 000 temperatures, a 192 KB request,
  // crashed the server with bad_alloc. Now a group has at most 2^22 / num_temperatures rows too.
  testing::Gauss1d model(0.5, 1.0);
  const Eigen::Index rows = 1250;
  Eigen::MatrixXd x = Eigen::MatrixXd::Constant(rows, 1, 0.3);
  EstimateSettings settings;
  settings.estimator = McEstimator::kAis;
  settings.seed = 5;
  settings.num_samples = 1;
  settings.ais.num_temperatures = 20000;
  settings.ais.leapfrog_steps = 1;
  settings.ais.pilot_chains = 1;
  testing::ThreadExecutor executor(2);
  const int64_t before = live_bytes.load();
  peak_bytes.store(before);
  auto result = EstimateRows(model, x, settings, executor, exec::StopToken());
  REQUIRE(result.ok());
  REQUIRE(result->size() == static_cast<size_t>(rows));
  const int64_t held = peak_bytes.load() - before;
  // 2^22 step sizes and 2^22 weights are 64 MiB; the rest (results, per-row bookkeeping) is small.
  INFO("peak bytes held by EstimateRows: " << held);
  CHECK(held < (int64_t{72} << 20));
}

}  // namespace
}  // namespace maas::generative
