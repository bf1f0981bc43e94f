// Storage for the arrays of a fitted model that lookups touch at random, one cache line here, one
// there: the term table's slots, filter and arena, a classifier's feature-major weights, and a
// text's per-feature counts. Every array starts on a 64-byte boundary (a weight row of 8 classes
// is one cache line); those made huge-page backed have the whole 2 MiB pages within them advised
// to the kernel (madvise(MADV_HUGEPAGE): the transparent huge pages that Linux's "madvise" mode
// gives only to such ranges; "always" gives them to every large mapping, "never" to none). A
// vocabulary of 0.8 M word bigrams has a 48 MiB slot array and a 50 MiB weight table: in 4 KiB
// pages nearly every lookup misses the TLB (its second level covers 8 MiB), in 2 MiB pages the two
// arrays take 50 entries. Only the model's arrays and a text's counts (the fit's own scratch
// counts too, a small part): a fit's passing arrays (the growing provisional table, its document
// frequencies, the final table's keys while it is built) stay in ordinary pages, since a huge page
// is zeroed whole when first touched, and on a VM whose host has not backed that memory yet,
// zeroing fresh huge pages cost a 2.2 M-term fit more than their TLB hits saved. The memory comes
// from operator new as before (what a test's counting allocator sees); only the page size changes.
// Apart from these, GrowingVector (below): a fit's row arrays, which double as the fit appends;
// from 1 MiB each is a mapping of its own (not operator new's), unmapped when outgrown.
//
//   LargeVector<Slot> slots{LargeArrayAllocator<Slot>(/*huge=*/true)};
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_LARGE_ARRAY_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_LARGE_ARRAY_H_

#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include "services/discriminative/core/default_init.h"

namespace maas::discriminative {

// The huge page size advised for.
inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// `bytes` of memory from operator new on a 64-byte boundary; with `huge_pages`, the
// kHugePageBytes-aligned pages within it advised MADV_HUGEPAGE (an advice the kernel refuses, as
// one without transparent huge pages does, leaves ordinary pages). Throws std::bad_alloc.
void* AllocateLargeArray(size_t bytes, bool huge_pages);
// Frees what AllocateLargeArray(bytes, ...) returned.
void FreeLargeArray(void* p, size_t bytes) noexcept;

// A std::vector allocator over AllocateLargeArray, in huge pages when made with
// huge_pages = true (the flag moves and copies with the container; any two allocators free each
// other's memory). Containers value-initialize as usual (assign, resize with zeros); see
// DefaultInitLargeArrayAllocator for storage written whole.
template <typename T>
struct LargeArrayAllocator {
  using value_type = T;
  using propagate_on_container_copy_assignment = std::true_type;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;
  using is_always_equal = std::true_type;
  LargeArrayAllocator() = default;
  explicit LargeArrayAllocator(bool huge) : huge_pages(huge) {}
  template <typename U>
  LargeArrayAllocator(const LargeArrayAllocator<U>& other)  // NOLINT(google-explicit-constructor)
      : huge_pages(other.huge_pages) {}
  T* allocate(size_t n) { return static_cast<T*>(AllocateLargeArray(n * sizeof(T), huge_pages)); }
  void deallocate(T* p, size_t n) noexcept { FreeLargeArray(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const LargeArrayAllocator<U>&) const {
    return true;
  }
  template <typename U>
  bool operator!=(const LargeArrayAllocator<U>&) const {
    return false;
  }
  bool huge_pages = false;
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
  explicit DefaultInitLargeArrayAllocator(bool huge) : LargeArrayAllocator<T>(huge) {}
  template <typename U>
  DefaultInitLargeArrayAllocator(  // NOLINT(google-explicit-constructor)
      const DefaultInitLargeArrayAllocator<U>& other)
      : LargeArrayAllocator<T>(other.huge_pages) {}
  using DefaultInitConstruct::construct;
};

template <typename T>
using LargeVector = std::vector<T, LargeArrayAllocator<T>>;

using LargeString = std::basic_string<char, std::char_traits<char>, LargeArrayAllocator<char>>;

// Arrays a fit appends to, grown by doubling (the CSR arrays of its rows), of kMappedArrayBytes or
// more: each in an anonymous mapping of its own, returned to the kernel when freed; smaller ones
// from operator new. Through malloc, a server that keeps freed memory for its next calls
// (--malloc_retain_mb: blocks up to 32 MiB come from malloc's heaps) kept every outgrown copy of
// those arrays resident between the live blocks: a Train stream of 32 MB of mail peaked 21 MB
// higher than with them mapped (84 vs 63 MB, 2026-12-08). The mappings are advised as huge-page
// backed (whole 2 MiB pages within them; at most one partly written page per array is resident
// beyond what was written). Throws std::bad_alloc.
inline constexpr size_t kMappedArrayBytes = size_t{1} << 20;
void* AllocateGrowingArray(size_t bytes);
// Frees what AllocateGrowingArray(bytes) returned.
void FreeGrowingArray(void* p, size_t bytes) noexcept;

template <typename T>
struct GrowingArrayAllocator {
  using value_type = T;
  GrowingArrayAllocator() = default;
  template <typename U>
  GrowingArrayAllocator(const GrowingArrayAllocator<U>&) {}  // NOLINT(google-explicit-constructor)
  T* allocate(size_t n) { return static_cast<T*>(AllocateGrowingArray(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { FreeGrowingArray(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const GrowingArrayAllocator<U>&) const {
    return true;
  }
  template <typename U>
  bool operator!=(const GrowingArrayAllocator<U>&) const {
    return false;
  }
};

template <typename T>
using GrowingVector = std::vector<T, GrowingArrayAllocator<T>>;

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_LARGE_ARRAY_H_
