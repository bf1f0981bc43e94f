// Tests of LargeArrayAllocator: aligned storage whose whole 2 MiB pages are advised as huge-page
// backed (checked in the kernel's own account of the mapping, /proc/self/smaps, where it has one).
#include "services/discriminative/core/large_array.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

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

}  // namespace
}  // namespace maas::discriminative
