#include "common/server/malloc_retention.h"

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "absl/strings/str_cat.h"

namespace maas::server {
namespace {

bool EnvironmentSetsMallocTunables() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  return (tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr) ||
         std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr ||
         std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr;
}

}  // namespace

absl::StatusOr<MallocRetention> RetainFreedMemory(size_t bytes) {
  if (bytes > kMaxMallocRetainBytes) {
    return absl::InvalidArgumentError(absl::StrCat("at most ", kMaxMallocRetainBytes >> 20,
                                                   " MiB of freed memory can be retained, got ",
                                                   bytes, " bytes"));
  }
  if (bytes == 0) return MallocRetention::kDefault;
  if (EnvironmentSetsMallocTunables()) return MallocRetention::kLeftToEnvironment;
#if defined(__GLIBC__)
  // AddressSanitizer's allocator, for one, answers mallopt with 0 and ignores it.
  if (mallopt(M_MMAP_THRESHOLD, static_cast<int>(bytes)) != 1 ||
      mallopt(M_TRIM_THRESHOLD, static_cast<int>(bytes)) != 1) {
    return MallocRetention::kAllocatorRefused;
  }
  return MallocRetention::kSet;
#else
  return MallocRetention::kDefault;
#endif
}

}  // namespace maas::server
