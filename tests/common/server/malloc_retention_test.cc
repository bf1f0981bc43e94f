// RetainFreedMemory: its own test binary, as it changes the process's malloc settings.
#include "common/server/malloc_retention.h"

#include <malloc.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>

namespace maas::server {
namespace {

// Bytes malloc holds in blocks it mapped on their own (not in a heap).
size_t MappedBlockBytes() { return mallinfo2().hblkhd; }

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

}  // namespace
}  // namespace maas::server
