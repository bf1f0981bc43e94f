// RetainFreedMemory: its own test binary, as it changes the process's malloc settings.
#include "common/server/malloc_retention.h"

#include <malloc.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace maas::server {
namespace {

// Bytes malloc holds in blocks it mapped on their own (not in a heap).
size_t MappedBlockBytes() { return mallinfo2().hblkhd; }

constexpr int64_t kMiB = int64_t{1} << 20;

// A measurement with `unused` bytes in RAM outside live blocks, of which live blocks `mapped` bytes
// were mapped on their own.
HeapResidency Heap(int64_t unused, int64_t mapped = 0) {
  HeapResidency heap;
  heap.live_block_bytes = mapped;
  heap.mapped_block_bytes = mapped;
  heap.resident_anonymous_bytes = unused + mapped;
  return heap;
}

// A Train's pattern in a thread's arena: 256 MiB of 1 MiB blocks written, a 64-byte block kept
// after each, then the large ones freed but the last `keep`. Returns the small ones and appends the
// kept large ones to *kept (for the caller to free).
std::vector<void*> FragmentAThreadHeap(int keep = 0, std::vector<void*>* kept = nullptr) {
  std::vector<void*> pins;
  std::thread worker([&pins, keep, kept] {
    std::vector<char*> blocks;
    for (int i = 0; i < 256; ++i) {
      char* block = static_cast<char*>(std::malloc(size_t{1} << 20));
      if (block == nullptr) std::abort();
      std::memset(block, 1, size_t{1} << 20);
      blocks.push_back(block);
      pins.push_back(std::malloc(64));
    }
    for (int i = 0; i < 256; ++i) {
      if (i < 256 - keep) {
        std::free(blocks[i]);
      } else {
        kept->push_back(blocks[i]);
      }
    }
  });
  worker.join();
  return pins;
}

// Sets the largest retention; false (with a warning) when the allocator is not glibc's own (a
// sanitizer build), where there is nothing to check.
bool RetainingGlibcMalloc() {
  const absl::StatusOr<MallocRetention> set = RetainFreedMemory(kMaxMallocRetainBytes);
  REQUIRE(set.ok());
  if (*set == MallocRetention::kAllocatorRefused) {
    WARN("not glibc's own malloc (a sanitizer build): nothing to check");
    return false;
  }
  return true;
}

TEST_CASE(
    "RetainFreedMemory refuses more than glibc's largest threshold, and 0 keeps glibc's own") {
  const auto too_much = RetainFreedMemory(kMaxMallocRetainBytes + 1);
  CHECK(too_much.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(too_much.status().message()), Catch::Contains("at most 32 MiB"));
  CHECK(*RetainFreedMemory(0) == MallocRetention::kDefault);
}

TEST_CASE("An operator's malloc tunables in the environment win") {
  setenv("MALLOC_TRIM_THRESHOLD_", "131072", 1);
  CHECK(*RetainFreedMemory(16 << 20) == MallocRetention::kLeftToEnvironment);
  unsetenv("MALLOC_TRIM_THRESHOLD_");
  setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=131072", 1);
  CHECK(*RetainFreedMemory(16 << 20) == MallocRetention::kLeftToEnvironment);
  setenv("GLIBC_TUNABLES", "glibc.pthread.rseq=0", 1);  // not malloc's
  // Set, or left as it is by an allocator that is not glibc's own (a sanitizer build).
  const MallocRetention other = *RetainFreedMemory(16 << 20);
  CHECK((other == MallocRetention::kSet || other == MallocRetention::kAllocatorRefused));
  unsetenv("GLIBC_TUNABLES");
}

TEST_CASE("With retention set, a block below it comes from a heap, not a mapping of its own") {
  // glibc's default maps a first 8 MiB block on its own (its threshold starts at 128 KiB), and
  // unmaps it when freed: the next such block faults its pages in again.
  const absl::StatusOr<MallocRetention> set = RetainFreedMemory(kMaxMallocRetainBytes);
  REQUIRE(set.ok());
  if (*set == MallocRetention::kAllocatorRefused) {
    WARN("not glibc's own malloc (a sanitizer build): nothing to check");
    return;
  }
  REQUIRE(*set == MallocRetention::kSet);
  const size_t mapped_before = MappedBlockBytes();
  for (int round = 0; round < 3; ++round) {
    const size_t bytes = (size_t{8} << 20) + static_cast<size_t>(round) * 4096;
    char* block = static_cast<char*>(std::malloc(bytes));
    REQUIRE(block != nullptr);
    std::memset(block, round, bytes);
    CHECK(MappedBlockBytes() == mapped_before);
    std::free(block);
  }
}

TEST_CASE("FreedMemoryPolicy releases when freed memory in RAM grew by more than its slack") {
  FreedMemoryPolicy policy(128 * kMiB);
  CHECK_FALSE(policy.ShouldRelease(Heap(40 * kMiB)));   // the first measurement only sets the floor
  CHECK_FALSE(policy.ShouldRelease(Heap(150 * kMiB)));  // 110 MiB above it
  CHECK(policy.ShouldRelease(Heap(200 * kMiB)));        // 160 MiB above it
  policy.Released(Heap(200 * kMiB), Heap(45 * kMiB));   // it returned 155 MiB
  CHECK_FALSE(
      policy.ShouldRelease(Heap(45 * kMiB)));  // what stayed (stacks, heap tops) is the new floor
  CHECK_FALSE(policy.ShouldRelease(Heap(20 * kMiB)));  // memory reused: a lower floor
  CHECK_FALSE(policy.ShouldRelease(Heap(140 * kMiB)));
  CHECK(policy.ShouldRelease(Heap(160 * kMiB)));
}

// A measurement with `resident` bytes of anonymous memory in RAM and `heap` bytes of live blocks in
// malloc's heaps (none mapped on their own).
HeapResidency HeapWithLiveBlocks(int64_t resident, int64_t heap) {
  HeapResidency residency;
  residency.resident_anonymous_bytes = resident;
  residency.live_block_bytes = heap;
  return residency;
}

TEST_CASE("FreedMemoryPolicy counts heap blocks freed while it released as still to release") {
  // The figures of the test below (in MiB): 160 of 300 live heap blocks freed, a release that
  // returns them, and the other 140 freed while it ran, after its walk: resident, not returned.
  FreedMemoryPolicy policy(128 * kMiB);
  CHECK_FALSE(policy.ShouldRelease(HeapWithLiveBlocks(340 * kMiB, 300 * kMiB)));  // floor 40
  const HeapResidency before = HeapWithLiveBlocks(340 * kMiB, 140 * kMiB);
  CHECK(policy.ShouldRelease(before));  // 160 above the floor
  const HeapResidency after = HeapWithLiveBlocks(180 * kMiB, 0);
  CHECK(ReturnedBetween(before, after) == 160 * kMiB);  // unused bytes dropped by 20 only
  policy.Released(before, after);
  // The new floor is 40 again, not 180: the 140 freed meanwhile release at the next check (this
  // release was productive, so there is no check to skip).
  CHECK(policy.ShouldRelease(after));
}

TEST_CASE("ReturnedBetween counts a drop in RAM, less blocks unmapped meanwhile") {
  CHECK(ReturnedBetween(Heap(200 * kMiB), Heap(50 * kMiB)) == 150 * kMiB);
  CHECK(ReturnedBetween(Heap(50 * kMiB), Heap(60 * kMiB)) == 0);  // it rose
  // A 100 MiB mapped block unmapped meanwhile: its pages were not the release's.
  CHECK(ReturnedBetween(Heap(20 * kMiB, 100 * kMiB), Heap(10 * kMiB)) == 10 * kMiB);
  // A mapped block allocated meanwhile and partly written: only what was written hides a return.
  CHECK(ReturnedBetween(Heap(100 * kMiB), Heap(-90 * kMiB, 100 * kMiB)) == 90 * kMiB);
}

TEST_CASE("FreedMemoryPolicy skips ever more checks after releases that return nothing") {
  // A rise that is not freed heap (thread stacks, a large mapped block written gradually) used to
  // trigger a useless malloc_trim after every rise (helper-101: 6-15 in a run, each up to ~100 ms
  // on a fragmented heap, each dropping the memory --malloc_retain_mb keeps for the next calls).
  FreedMemoryPolicy policy(128 * kMiB);
  CHECK_FALSE(policy.ShouldRelease(Heap(0)));
  int64_t floor = 0;
  int releases = 0;
  int checks = 0;
  for (; checks < 200; ++checks) {
    const int64_t unused = floor + 150 * kMiB;  // rises 150 MiB again after every release
    if (policy.ShouldRelease(Heap(unused))) {
      ++releases;
      floor = unused;  // and the release returns nothing
      policy.Released(Heap(unused), Heap(unused));
    }
  }
  // Skips of 1, 2, 4, ..., 64, then 64: about 9 releases in 200 checks instead of 100.
  CHECK(releases <= 10);
  CHECK(releases >= 5);
  // A productive release ends the skipping: the next rise beyond the slack releases at once.
  FreedMemoryPolicy fresh(128 * kMiB);
  CHECK_FALSE(fresh.ShouldRelease(Heap(0)));
  CHECK(fresh.ShouldRelease(Heap(150 * kMiB)));
  fresh.Released(Heap(150 * kMiB), Heap(150 * kMiB));  // unproductive: the next check passes
  CHECK_FALSE(fresh.ShouldRelease(Heap(300 * kMiB)));
  CHECK(fresh.ShouldRelease(Heap(300 * kMiB)));
  fresh.Released(Heap(300 * kMiB), Heap(10 * kMiB));  // productive
  CHECK(fresh.ShouldRelease(Heap(200 * kMiB)));
}

TEST_CASE("FreedMemoryPolicy does not lower its floor for mapped blocks not written yet") {
  // helper-101's generative fit (relmem report, gfit_128): malloc counts a new mapped block (the
  // fit's 244 MB matrix) as live at once while its pages fault in as it is written, so unused
  // bytes dipped to -70 MB; that one reading became the floor, and ~90 MB of free arena tops
  // (which malloc_trim cannot return) later looked like 149 MB of freed memory: a release that
  // returned 9 MB. The figures below are that run's, in MiB.
  FreedMemoryPolicy policy(128 * kMiB);
  CHECK_FALSE(policy.ShouldRelease(Heap(2 * kMiB)));
  CHECK_FALSE(policy.ShouldRelease(Heap(-14 * kMiB, 128 * kMiB)));  // the matrix, being mapped
  CHECK_FALSE(policy.ShouldRelease(Heap(-70 * kMiB, 244 * kMiB)));
  CHECK_FALSE(policy.ShouldRelease(Heap(-13 * kMiB, 244 * kMiB)));  // written
  CHECK_FALSE(policy.ShouldRelease(Heap(45 * kMiB)));  // freed; the fit's temporaries in arena tops
  CHECK_FALSE(policy.ShouldRelease(Heap(79 * kMiB)));  // 77 above the floor, not 149
  // The next fit maps its matrix again: the lowest mapped bytes since the floor was set are 0.
  CHECK_FALSE(policy.ShouldRelease(Heap(-5 * kMiB, 244 * kMiB)));
  CHECK_FALSE(policy.ShouldRelease(Heap(100 * kMiB)));
  // A rise of freed memory beyond the slack still releases.
  CHECK(policy.ShouldRelease(Heap(131 * kMiB)));

  // A dip beyond what the new mapped blocks could explain is freed memory reused: the floor
  // drops by the rest.
  FreedMemoryPolicy reused(128 * kMiB);
  CHECK_FALSE(reused.ShouldRelease(Heap(0)));
  CHECK_FALSE(reused.ShouldRelease(Heap(-100 * kMiB, 64 * kMiB)));  // floor -36
  CHECK_FALSE(reused.ShouldRelease(Heap(90 * kMiB)));               // 126 above it
  CHECK(reused.ShouldRelease(Heap(94 * kMiB)));                     // 130 above it
}

TEST_CASE("ReleaseFreeHeapPages returns free blocks between live ones in a thread's heap") {
  // A Train's pattern: a thread's arena holds large temporaries with small long-lived blocks
  // between them; once the temporaries are freed glibc keeps their pages (only a heap's top is
  // returned). 256 MiB of 1 MiB blocks, a 64-byte block kept after each.
  if (!RetainingGlibcMalloc()) return;
  const std::vector<void*> pins = FragmentAThreadHeap();
  const absl::StatusOr<HeapResidency> before = MeasureHeapResidency();
  REQUIRE(before.ok());
  CHECK(ReleaseFreeHeapPages(0));
  const absl::StatusOr<HeapResidency> after = MeasureHeapResidency();
  REQUIRE(after.ok());
  for (void* pin : pins) std::free(pin);
  // Before the release the freed 256 MiB were resident; after it, (nearly) none of them.
  CHECK(before->unused_bytes() - after->unused_bytes() > (int64_t{192} << 20));
}

TEST_CASE("FreedMemoryReleaser starts and stops") {
  FreedMemoryReleaser releaser(int64_t{1} << 40, 0, absl::Milliseconds(1));
  CHECK(releaser.releases() >= 0);
}

// A heap whose measurements are scripted: the i-th measurement reads unused[i] (the last one
// again once they run out); a release takes `release_takes`.
class ScriptedHeap {
 public:
  ScriptedHeap(std::vector<int64_t> unused, absl::Duration release_takes)
      : unused_(std::move(unused)), release_takes_(release_takes) {}

  HeapAccess Access() {
    HeapAccess access;
    access.measure = [this]() -> absl::StatusOr<HeapResidency> {
      absl::MutexLock lock(&mu_);
      const size_t i = std::min(measured_, unused_.size() - 1);
      ++measured_;
      return Heap(unused_[i]);
    };
    access.release = [this](size_t) {
      absl::SleepFor(release_takes_);
      absl::MutexLock lock(&mu_);
      ++released_;
      return true;
    };
    return access;
  }
  // Waits (up to a minute) until the releaser has read every scripted measurement and two more.
  bool AwaitScriptRead() {
    absl::MutexLock lock(&mu_);
    auto read = [this]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return measured_ >= unused_.size() + 2; };
    return mu_.AwaitWithTimeout(absl::Condition(&read), absl::Minutes(1));
  }
  int released() {
    absl::MutexLock lock(&mu_);
    return released_;
  }

 private:
  const std::vector<int64_t> unused_;
  const absl::Duration release_takes_;
  absl::Mutex mu_;
  size_t measured_ ABSL_GUARDED_BY(mu_) = 0;
  int released_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST_CASE("FreedMemoryReleaser counts its releases with what they returned and their time") {
  // The first reading sets the floor; 200 MiB releases (read as 50 after: 150 returned); 400 MiB
  // releases again, but reads 450 after: memory grew meanwhile, which counts as 0 returned.
  ScriptedHeap heap({0, 200 * kMiB, 50 * kMiB, 400 * kMiB, 450 * kMiB}, absl::Milliseconds(20));
  {
    FreedMemoryReleaser releaser(128 * kMiB, 0, absl::Milliseconds(1), heap.Access());
    REQUIRE(heap.AwaitScriptRead());
    CHECK(releaser.releases() == 2);
    CHECK(releaser.released_bytes() == 150 * kMiB);
    CHECK(releaser.release_time() >= absl::Milliseconds(40));
    CHECK(releaser.release_time() < absl::Seconds(30));
  }
  CHECK(heap.released() == 2);
}

// The process's own heap as a FreedMemoryReleaser sees it, its measurements counted.
class WatchedHeap {
 public:
  // Measures under mu; releases with `release` (not under mu).
  HeapAccess Access(std::function<bool(size_t keep_bytes)> release = ReleaseFreeHeapPages) {
    HeapAccess access;
    access.measure = [this] {
      absl::MutexLock lock(&mu);
      ++measured_;
      return MeasureHeapResidency();
    };
    access.release = std::move(release);
    return access;
  }
  // Waits (up to a minute) until the releaser has measured twice: its floor is set.
  bool AwaitFloor() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return mu.AwaitWithTimeout(absl::Condition(
                                   +[](int* measured) { return *measured >= 2; }, &measured_),
                               absl::Minutes(1));
  }

  absl::Mutex mu;

 private:
  int measured_ ABSL_GUARDED_BY(mu) = 0;
};

// Waits (up to 30 s) until `releaser` has counted `bytes` returned.
void AwaitReleased(const FreedMemoryReleaser& releaser, int64_t bytes) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (releaser.released_bytes() < bytes && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
}

TEST_CASE("FreedMemoryReleaser counts what it returns of a real heap") {
  // The pattern of "ReleaseFreeHeapPages returns free blocks between live ones in a thread's heap",
  // freed while the releaser watches: it returns them and counts (about) what it returned.
  if (!RetainingGlibcMalloc()) return;
  WatchedHeap heap;
  FreedMemoryReleaser releaser(64 * kMiB, 0, absl::Milliseconds(10), heap.Access());
  {
    absl::MutexLock lock(&heap.mu);
    REQUIRE(heap.AwaitFloor());
  }
  const std::vector<void*> pins = FragmentAThreadHeap();
  AwaitReleased(releaser, 192 * kMiB);
  for (void* pin : pins) std::free(pin);
  CHECK(releaser.releases() >= 1);
  CHECK(releaser.released_bytes() >= 192 * kMiB);
  CHECK(releaser.release_time() > absl::ZeroDuration());
}

TEST_CASE("FreedMemoryReleaser returns what is freed while it releases at its next check") {
  // CI run of 2026-12-07: the releaser counted 94 MB of the 256 MiB freed and then never released
  // again. Blocks freed while malloc_trim ran (or before the measurement after it) stayed
  // resident; they made the drop in unused bytes smaller, and the measurement after the release,
  // which included them, became the floor they never rose above. Here the release itself frees the
  // second half of the blocks right after its malloc_trim, every time the race goes that way.
  if (!RetainingGlibcMalloc()) return;
  WatchedHeap heap;
  std::vector<void*> kept;
  FreedMemoryReleaser releaser(64 * kMiB, 0, absl::Milliseconds(10),
                               heap.Access([&heap, &kept](size_t keep_bytes) {
                                 const bool released = ReleaseFreeHeapPages(keep_bytes);
                                 absl::MutexLock lock(&heap.mu);
                                 for (void* block : kept) std::free(block);
                                 kept.clear();
                                 return released;
                               }));
  std::vector<void*> pins;
  {
    absl::MutexLock lock(&heap.mu);
    REQUIRE(heap.AwaitFloor());
    // Under the lock: the releaser cannot measure, so not release, before the fragmenting is done.
    pins = FragmentAThreadHeap(128, &kept);
  }
  AwaitReleased(releaser, 224 * kMiB);
  for (void* pin : pins) std::free(pin);
  CHECK(releaser.releases() >= 2);
  CHECK(releaser.released_bytes() >= 192 * kMiB);
}

}  // namespace
}  // namespace maas::server
