// Tests of LargeArrayAllocator: aligned storage whose whole 2 MiB pages are advised as huge-page
// backed (checked in the kernel's own account of the mapping, /proc/self/smaps, where it has one);
// and of GrowingArrayAllocator, the storage of a fit's rows.
#include "services/discriminative/core/large_array.h"

#include <malloc.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "services/discriminative/core/vectorizer.h"

namespace maas::discriminative {
namespace {

// The VmFlags line of the mapping of /proc/self/smaps that holds `address`, or "" (no smaps, as
// off Linux, or no such mapping).
std::string VmFlagsAt(uintptr_t address) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    uintptr_t begin = 0, end = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> begin >> dash >> end && dash == '-') {
      inside = begin <= address && address < end;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

bool KernelHasTransparentHugePages() {
  return std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled").good();
}

TEST_CASE("LargeVector storage is cache-line aligned and value-initialized") {
  for (const size_t n : {size_t{1}, size_t{1000}, size_t{1} << 20}) {
    LargeVector<double> v(n, 0.0);
    CHECK(reinterpret_cast<uintptr_t>(v.data()) % 64 == 0);
    LargeVector<uint64_t> w;
    w.assign(n, 7);
    CHECK(w.front() == 7);
    CHECK(w.back() == 7);
    CHECK(reinterpret_cast<uintptr_t>(w.data()) % 64 == 0);
  }
  LargeString bytes;
  bytes.append("term");
  CHECK(bytes == "term");
  std::vector<double, DefaultInitLargeArrayAllocator<double>> table;
  table.resize(3 * kHugePageBytes / sizeof(double));  // not zero-filled, then written whole
  for (double& x : table) x = 1.5;
  CHECK(reinterpret_cast<uintptr_t>(table.data()) % 64 == 0);
  CHECK(table[table.size() / 2] == 1.5);
}

TEST_CASE("A large array's whole 2 MiB pages are advised as huge-page backed") {
  if (!KernelHasTransparentHugePages() ||
      VmFlagsAt(reinterpret_cast<uintptr_t>(&VmFlagsAt)).empty()) {
    WARN("no transparent huge pages or no /proc/self/smaps here: nothing to check");
    return;
  }
  LargeVector<double> v(5 * kHugePageBytes / sizeof(double), 0.0,
                        LargeArrayAllocator<double>(/*huge=*/true));
  const auto start = reinterpret_cast<uintptr_t>(v.data());
  const uintptr_t first = (start + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  const uintptr_t end = start + v.size() * sizeof(double);
  REQUIRE(first + kHugePageBytes <= end);  // 10 MiB hold at least 4 whole huge pages
  for (uintptr_t page = first; page + kHugePageBytes <= end; page += kHugePageBytes) {
    const std::string flags = VmFlagsAt(page);
    INFO("page at " << std::hex << page << ": " << flags);
    CHECK(flags.find(" hg") != std::string::npos);  // VM_HUGEPAGE, set by MADV_HUGEPAGE
  }
}

// The free bytes in malloc's heaps: blocks it would hand out again, resident once written.
int64_t FreeHeapBytes() { return static_cast<int64_t>(mallinfo2().fordblks); }

TEST_CASE(
    "Rows grown past 1 MiB leave no outgrown copy in malloc's heap when it keeps freed memory") {
  // What a server's --malloc_retain_mb 32 sets (common/server/malloc_retention.cc): blocks below
  // 32 MiB come from malloc's heaps, whose free blocks between live ones stay resident. A Train
  // stream of 32 MB of mail peaked at 84 MB, 21 MB of it the rows' outgrown copies (2026-12-08).
  if (mallopt(M_MMAP_THRESHOLD, 32 << 20) != 1 || mallopt(M_TRIM_THRESHOLD, 32 << 20) != 1) {
    WARN("not glibc's own malloc (a sanitizer build): nothing to check");
    return;
  }
  const int64_t before = FreeHeapBytes();
  SparseRows rows;  // grown as a fit grows them: 2 M entries, indices 8 MB, values 16 MB
  for (uint32_t r = 0; r < 20000; ++r) {
    rows.Reserve(1, 100);
    for (uint32_t k = 0; k < 100; ++k) {
      rows.indices.push_back(r + k);
      rows.values.push_back(1.0);
    }
    rows.offsets.push_back(rows.indices.size());
  }
  // In std::vector's storage the copies they outgrew, ~22 MB written, were left free in the heap.
  CHECK(FreeHeapBytes() - before < (int64_t{4} << 20));
  CHECK(rows.values[1999999] == 1.0);
}

TEST_CASE("GrowingVector storage from 1 MiB is a mapping of its own, gone when freed") {
  uintptr_t address = 0;
  {
    GrowingVector<char> big(kMappedArrayBytes, 1);
    address = reinterpret_cast<uintptr_t>(big.data());
    CHECK(address % static_cast<uintptr_t>(sysconf(_SC_PAGESIZE)) == 0);
    if (!VmFlagsAt(address).empty()) CHECK(VmFlagsAt(address) == VmFlagsAt(address + (1 << 19)));
    // Advised as huge-page backed where the kernel has transparent huge pages.
    if (KernelHasTransparentHugePages() && !VmFlagsAt(address).empty()) {
      CHECK_THAT(VmFlagsAt(address), Catch::Contains(" hg"));
    }
  }
  if (std::ifstream("/proc/self/smaps").good()) CHECK(VmFlagsAt(address).empty());
  GrowingVector<char> small(kMappedArrayBytes - 1, 2);  // from operator new
  CHECK(small.back() == 2);
}

}  // namespace
}  // namespace maas::discriminative
