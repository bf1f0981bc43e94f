#include "tests/testing/counting_new.h"

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>

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

namespace maas::testing {

int64_t LiveBytes() { return live_bytes.load(); }

int64_t StartPeakCount() {
  const int64_t now = live_bytes.load();
  peak_bytes.store(now);
  return now;
}

int64_t PeakLiveBytes() { return peak_bytes.load(); }

}  // namespace maas::testing

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
