#include "common/server/malloc_retention.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <utility>

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
#if defined(__GLIBC__) && defined(__SANITIZE_THREAD__)
  // ThreadSanitizer's allocator serves malloc and free but not mallopt, which glibc answers (1)
  // for its own arenas that nothing allocates from.
  return MallocRetention::kAllocatorRefused;
#elif defined(__GLIBC__)
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

absl::StatusOr<HeapResidency> MeasureHeapResidency() {
#if defined(__GLIBC__)
  // statm: size resident shared text lib data dt, in pages; shared = resident file-backed pages.
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0, shared = 0;
  if (!(statm >> size >> resident >> shared)) {
    return absl::UnavailableError("cannot read /proc/self/statm");
  }
  const int64_t page = static_cast<int64_t>(sysconf(_SC_PAGESIZE));
  const struct mallinfo2 info = mallinfo2();
  HeapResidency residency;
  residency.resident_anonymous_bytes = (resident - shared) * page;
  residency.live_block_bytes = static_cast<int64_t>(info.uordblks + info.hblkhd);
  residency.mapped_block_bytes = static_cast<int64_t>(info.hblkhd);
  return residency;
#else
  return absl::UnimplementedError("not glibc's malloc");
#endif
}

bool ReleaseFreeHeapPages(size_t keep_bytes) {
#if defined(__GLIBC__)
  return malloc_trim(keep_bytes) == 1;
#else
  (void)keep_bytes;
  return false;
#endif
}

int64_t ReturnedBetween(const HeapResidency& before, const HeapResidency& after) {
  const int64_t unmapped =
      std::max<int64_t>(0, before.mapped_block_bytes - after.mapped_block_bytes);
  return std::max<int64_t>(
      0, before.resident_anonymous_bytes - after.resident_anonymous_bytes - unmapped);
}

bool FreedMemoryPolicy::ShouldRelease(const HeapResidency& now) {
  if (!measured_) {
    SetFloor(now);  // the first measurement
    return false;
  }
  // Freed memory reused since lowers the floor; the part of a dip that blocks mapped since could
  // explain does not (their pages may not be written yet).
  mapped_floor_ = std::min(mapped_floor_, now.mapped_block_bytes);
  const int64_t unused = now.unused_bytes();
  const int64_t reused_to = unused + (now.mapped_block_bytes - mapped_floor_);
  if (reused_to < floor_) {
    floor_ = reused_to;
    return false;
  }
  if (skip_ > 0) {
    --skip_;
    return false;
  }
  return unused - floor_ > slack_bytes_;
}

void FreedMemoryPolicy::Released(const HeapResidency& before, const HeapResidency& after) {
  SetFloor(after, std::max<int64_t>(0, before.heap_block_bytes() - after.heap_block_bytes()));
  if (ReturnedBetween(before, after) < slack_bytes_ / 4) {
    backoff_ = backoff_ == 0 ? 1 : std::min(2 * backoff_, kMaxSkippedChecks);
    skip_ = backoff_;
  } else {
    backoff_ = 0;
    skip_ = 0;
  }
}

FreedMemoryReleaser::FreedMemoryReleaser(int64_t slack_bytes, size_t keep_bytes,
                                         absl::Duration interval, HeapAccess heap)
    : heap_(std::move(heap)), thread_([this, slack_bytes, keep_bytes, interval] {
        Run(slack_bytes, keep_bytes, interval);
      }) {}

FreedMemoryReleaser::~FreedMemoryReleaser() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void FreedMemoryReleaser::Run(int64_t slack_bytes, size_t keep_bytes, absl::Duration interval) {
  FreedMemoryPolicy policy(slack_bytes);
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), interval)) return;
    }
    absl::StatusOr<HeapResidency> now = heap_.measure();
    if (!now.ok() || !policy.ShouldRelease(*now)) continue;
    const auto start = std::chrono::steady_clock::now();
    heap_.release(keep_bytes);
    const auto took = std::chrono::steady_clock::now() - start;
    releases_.fetch_add(1);
    release_nanoseconds_.fetch_add(
        std::chrono::duration_cast<std::chrono::nanoseconds>(took).count());
    absl::StatusOr<HeapResidency> after = heap_.measure();
    if (!after.ok()) continue;
    released_bytes_.fetch_add(ReturnedBetween(*now, *after));
    policy.Released(*now, *after);
  }
}

absl::StatusOr<std::unique_ptr<FreedMemoryReleaser>> ConfigureHeap(int retain_mb, int release_mb) {
  if (retain_mb < 0 || !RetainFreedMemory(size_t{static_cast<unsigned>(retain_mb)} << 20).ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--malloc_retain_mb must be 0 to 32; got ", retain_mb));
  }
  if (release_mb < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--malloc_release_mb must be >= 0; got ", release_mb));
  }
  if (release_mb == 0) return nullptr;
  return std::make_unique<FreedMemoryReleaser>(
      int64_t{release_mb} << 20, size_t{static_cast<unsigned>(retain_mb)} << 20, absl::Seconds(1));
}

}  // namespace maas::server
