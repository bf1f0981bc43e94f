// How much freed heap memory glibc's malloc keeps for reuse instead of returning it to the kernel.
//
// glibc serves blocks above a threshold (128 KiB, raised as large blocks are freed) with their own
// mmap, and returns free memory at the top of a heap above 128 KiB to the kernel. A server that
// receives multi-megabyte messages frees them after every call, so each call maps fresh pages
// again: a 2.9 MB Classify batch took ~550 page faults (zeroing, memory-cgroup charge, unmap), ~10%
// of the service's CPU per call. RetainFreedMemory(bytes) serves blocks below `bytes` from the
// heaps and keeps up to `bytes` free at a heap's top, so the next call reuses them.
//
//   RetainFreedMemory(32 << 20);  // from main, before any thread starts
#ifndef MAAS_COMMON_SERVER_MALLOC_RETENTION_H_
#define MAAS_COMMON_SERVER_MALLOC_RETENTION_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace maas::server {

// The largest `bytes` glibc accepts as its mmap threshold.
inline constexpr size_t kMaxMallocRetainBytes = size_t{32} << 20;

// What RetainFreedMemory did.
enum class MallocRetention {
  kSet,                // the thresholds are `bytes`
  kDefault,            // bytes == 0: glibc's own (dynamic) thresholds
  kLeftToEnvironment,  // the environment sets glibc's malloc tunables: they stay as given
  kAllocatorRefused,   // the allocator is not glibc's own (a sanitizer's, a preloaded one):
                       // unchanged
};

// Sets glibc's mmap and trim thresholds to `bytes` (see the file comment), unless bytes == 0 or the
// environment already sets them (GLIBC_TUNABLES naming glibc.malloc, MALLOC_MMAP_THRESHOLD_,
// MALLOC_TRIM_THRESHOLD_): an operator's choice wins. INVALID_ARGUMENT when bytes >
// kMaxMallocRetainBytes. Without glibc: kDefault.
absl::StatusOr<MallocRetention> RetainFreedMemory(size_t bytes);

}  // namespace maas::server

#endif  // MAAS_COMMON_SERVER_MALLOC_RETENTION_H_
