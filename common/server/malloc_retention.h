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

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

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

// Freed memory beyond what RetainFreedMemory keeps. glibc returns a heap's free memory to the
// kernel only from the top of a heap: free blocks between live ones, and whole free heaps of a
// thread's arena below a live block, stay resident for good. A discriminative server that trained,
// served and deleted 300 hashing models of 2^20 features held 3.1 GB of free heap with no model
// left (RSS 3.2 GB; 53 MB after malloc_trim), growing with every Train whatever --malloc_retain_mb,
// MALLOC_ARENA_MAX=2 or --model_cache_bytes (2026-12-05).
//
// What the process holds in RAM outside live malloc blocks: its anonymous resident memory minus
// the bytes of its live blocks (heap and mapped), both measured now. Includes thread stacks and
// other non-malloc memory, which is why the releaser below compares it with its own earlier value.
struct HeapResidency {
  int64_t resident_anonymous_bytes = 0;
  int64_t live_block_bytes = 0;
  // Of live_block_bytes, the blocks malloc mapped on their own (above its mmap threshold, such as a
  // fit's 244 MB matrix of rows): counted at their full size from their allocation but resident
  // only as they are written, so a new one makes unused_bytes() dip, even below 0, until it is.
  int64_t mapped_block_bytes = 0;
  int64_t unused_bytes() const { return resident_anonymous_bytes - live_block_bytes; }
  // Live blocks in malloc's heaps (not mapped on their own).
  int64_t heap_block_bytes() const { return live_block_bytes - mapped_block_bytes; }
};

// What a release between two measurements returned to the kernel: the drop in resident anonymous
// memory, less what mapped blocks unmapped meanwhile account for (0 if it rose). Not the drop in
// unused bytes: blocks freed while malloc_trim ran stay resident, and raise unused bytes by what
// they free. Allocations meanwhile make it an underestimate; memory outside malloc unmapped
// meanwhile (a thread's stack) an overestimate.
int64_t ReturnedBetween(const HeapResidency& before, const HeapResidency& after);

// Without glibc or /proc: UNIMPLEMENTED / the read's error.
absl::StatusOr<HeapResidency> MeasureHeapResidency();

// Returns the free pages of every malloc heap to the kernel (glibc's malloc_trim), keeping
// `keep_bytes` at the top of the main heap. True if glibc issued any release (not a measure of
// what was returned). Without glibc: false. It holds each arena's lock while it walks that arena:
// with MALLOC_ARENA_MAX at 1-2 (threads sharing arenas), calls stall for its duration (~100-200 ms
// per GB returned); with glibc's default arenas they do not.
bool ReleaseFreeHeapPages(size_t keep_bytes);

// When FreedMemoryReleaser releases: the decision, apart from the measurements.
class FreedMemoryPolicy {
 public:
  explicit FreedMemoryPolicy(int64_t slack_bytes) : slack_bytes_(slack_bytes) {}
  // `now`: MeasureHeapResidency() now. True when its unused bytes are more than slack_bytes above
  // the floor, unless checks are being skipped after unproductive releases. The floor is the
  // lowest unused bytes seen since the last release (the first call only records it), less the
  // part of each dip that blocks mapped since could explain (mapped_block_bytes above their lowest
  // since the last release): such a dip is pages not written yet, not freed memory reused, and it
  // comes back as they are written. A generative fit's 244 MB matrix made one reading 70 MB lower;
  // as the floor, it let ~90 MB of free arena tops (which malloc_trim cannot return) trigger a
  // release that returned 9 MB.
  bool ShouldRelease(const HeapResidency& now);
  // A release ran; `before` and `after` were measured right before and right after it. `after`,
  // less the heap blocks freed meanwhile (which are still in RAM: the release may have run before
  // their free), is the new floor: as `after` itself, such blocks freed while a release ran would
  // never count as a rise again. A release that returned (ReturnedBetween) less than a quarter of
  // slack_bytes (the rise was not freed heap: thread stacks, other mappings, a large mapped block
  // written gradually, which malloc counts as live at once) makes the next 1, 2, 4 ... up to 64
  // checks pass without a release (each unproductive one doubles it); a productive one ends the
  // skipping. A useless malloc_trim still walks every heap (up to ~100 ms on a fragmented one) and
  // drops the freed memory --malloc_retain_mb keeps for the next calls.
  void Released(const HeapResidency& before, const HeapResidency& after);

  static constexpr int kMaxSkippedChecks = 64;

 private:
  void SetFloor(const HeapResidency& now, int64_t freed_since = 0) {
    floor_ = now.unused_bytes() - freed_since;
    mapped_floor_ = now.mapped_block_bytes;
    measured_ = true;
  }

  const int64_t slack_bytes_;
  bool measured_ = false;
  int64_t floor_ = 0;
  int64_t mapped_floor_ = 0;  // the lowest mapped_block_bytes since the last release
  int skip_ = 0;              // checks left to pass without a release
  int backoff_ = 0;  // what the next unproductive release sets skip_ to, doubled (0: none yet)
};

// What FreedMemoryReleaser measures and calls: the process's own heap unless a test scripts one.
struct HeapAccess {
  std::function<absl::StatusOr<HeapResidency>()> measure = MeasureHeapResidency;
  std::function<bool(size_t keep_bytes)> release = ReleaseFreeHeapPages;
};

// A thread that, every `interval`, measures HeapResidency and calls
// ReleaseFreeHeapPages(keep_bytes) when FreedMemoryPolicy(slack_bytes) says so: after a Train, a
// fit or an evicted or deleted model has freed more than slack_bytes, that memory leaves RAM within
// about one interval, while a steady stream of calls, which reuses what it frees, is left to
// RetainFreedMemory's retention. Stops (promptly) when destroyed. Counts its releases, what they
// returned and how long they took (exported by ExportHeapMetrics, metrics.h).
//
//   FreedMemoryReleaser releaser(size_t{128} << 20, size_t{32} << 20, absl::Seconds(1));
class FreedMemoryReleaser {
 public:
  FreedMemoryReleaser(int64_t slack_bytes, size_t keep_bytes, absl::Duration interval,
                      HeapAccess heap = {});
  ~FreedMemoryReleaser();
  FreedMemoryReleaser(const FreedMemoryReleaser&) = delete;
  FreedMemoryReleaser& operator=(const FreedMemoryReleaser&) = delete;

  // Releases made so far (malloc_trim calls). Thread-safe, as are the two below.
  int64_t releases() const { return releases_.load(); }
  // What they returned: the sum over releases of ReturnedBetween the measurements right before and
  // right after each (0 for one that could not be measured).
  int64_t released_bytes() const { return released_bytes_.load(); }
  // The wall time they took (each holds every arena's lock in turn while it walks that arena).
  absl::Duration release_time() const { return absl::Nanoseconds(release_nanoseconds_.load()); }

 private:
  void Run(int64_t slack_bytes, size_t keep_bytes, absl::Duration interval);

  const HeapAccess heap_;
  std::atomic<int64_t> releases_{0};
  std::atomic<int64_t> released_bytes_{0};
  std::atomic<int64_t> release_nanoseconds_{0};
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: it runs Run, which uses every member above
};

// What both services do with --malloc_retain_mb and --malloc_release_mb, from main before any
// thread starts: RetainFreedMemory(retain_mb MiB), then a FreedMemoryReleaser (slack release_mb
// MiB, keeping retain_mb MiB, checking once a second) unless release_mb is 0 (null).
// INVALID_ARGUMENT naming the flag when one is out of range (retain_mb 0 to 32, release_mb >= 0).
// Keep the releaser for the process's life.
absl::StatusOr<std::unique_ptr<FreedMemoryReleaser>> ConfigureHeap(int retain_mb, int release_mb);

}  // namespace maas::server

#endif  // MAAS_COMMON_SERVER_MALLOC_RETENTION_H_
