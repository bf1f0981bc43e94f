// Storage for the arrays that lookups touch at random, one cache line here, one there: the term
// table's slots, filter and arena, a classifier's feature-major weights, a text's per-feature
// counts. Every array starts on a 64-byte boundary (a weight row of 8 classes is one cache line),
// and the whole 2 MiB pages within it are advised to the kernel as huge-page backed
// (madvise(MADV_HUGEPAGE): the transparent huge pages that Linux's "madvise" mode, the common
// default, gives only to such ranges). A vocabulary of 0.8 M word bigrams has a 48 MiB slot array
// and a 50 MiB weight table: in 4 KiB pages nearly every lookup misses the TLB (its second level
// covers 8 MiB), in 2 MiB pages the two arrays take 50 entries. The memory comes from operator
// new as before (what a test's counting allocator sees); only the page size changes.
//
//   LargeVector<Slot> slots;  // std::vector<Slot, LargeArrayAllocator<Slot>>
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_LARGE_ARRAY_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_LARGE_ARRAY_H_

#include <cstddef>
#include <string>
#include <vector>

#include "services/discriminative/core/default_init.h"

namespace maas::discriminative {

// The huge page size advised for.
inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// `bytes` of memory from operator new on a 64-byte boundary, the kHugePageBytes-aligned pages
// within it advised MADV_HUGEPAGE (an advice the kernel refuses, as one without transparent huge
// pages does, leaves ordinary pages). Throws std::bad_alloc.
void* AllocateLargeArray(size_t bytes);
// Frees what AllocateLargeArray(bytes) returned.
void FreeLargeArray(void* p, size_t bytes) noexcept;

// A std::vector allocator over AllocateLargeArray. Containers value-initialize as usual
// (assign, resize with zeros); see DefaultInitLargeArrayAllocator for storage written whole.
template <typename T>
struct LargeArrayAllocator {
  using value_type = T;
  LargeArrayAllocator() = default;
  template <typename U>
  LargeArrayAllocator(const LargeArrayAllocator<U>&) {}  // NOLINT(google-explicit-constructor)
  T* allocate(size_t n) { return static_cast<T*>(AllocateLargeArray(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { FreeLargeArray(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const LargeArrayAllocator<U>&) const {
    return true;
  }
  template <typename U>
  bool operator!=(const LargeArrayAllocator<U>&) const {
    return false;
  }
};

// LargeArrayAllocator whose resize(n) does not zero-fill (DefaultInitConstruct), for a table
// written whole right after.
template <typename T>
struct DefaultInitLargeArrayAllocator : LargeArrayAllocator<T>, DefaultInitConstruct {
  template <typename U>
  struct rebind {
    using other = DefaultInitLargeArrayAllocator<U>;
  };
  DefaultInitLargeArrayAllocator() = default;
  template <typename U>
  DefaultInitLargeArrayAllocator(  // NOLINT(google-explicit-constructor)
      const DefaultInitLargeArrayAllocator<U>&) {}
  using DefaultInitConstruct::construct;
};

template <typename T>
using LargeVector = std::vector<T, LargeArrayAllocator<T>>;
using LargeString = std::basic_string<char, std::char_traits<char>, LargeArrayAllocator<char>>;

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_LARGE_ARRAY_H_
