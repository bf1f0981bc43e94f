// A deterministic driver for the fuzz targets in ordinary (gcc, non-libFuzzer) builds, so the
// targets are compiled and exercised by `make test` and cannot rot:
//   1. runs every built-in seed (MaasFuzzSeeds) and every file or directory given on the command
//   line;
//   2. runs --iterations inputs made by seeded random mutations of those seeds (bit flips, byte
//      changes, insertions, deletions, duplications, splices, truncations).
// `--write_seeds DIR` writes the built-in seeds as files (the starting corpus of `make fuzz`).
// Coverage-guided fuzzing with sanitizers is `make fuzz` (clang + libFuzzer); this driver is its
// smoke test. A crash or abort fails the test; the input that caused it is written to
// ./fuzz-crash-<target>.bin first.
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);
namespace maas::fuzz {
std::vector<std::string> MaasFuzzSeeds();
}

namespace {

std::string g_current;  // the input being run, for the crash file
std::string g_target_name;

void SaveCurrentInput() {
  const std::string path = "fuzz-crash-" + g_target_name + ".bin";
  std::ofstream out(path, std::ios::binary);
  out.write(g_current.data(), static_cast<std::streamsize>(g_current.size()));
  std::cerr << "fuzz replay: the failing input was written to " << path << "\n";
}

void Run(const std::string& input) {
  g_current = input;
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

std::string Mutate(const std::vector<std::string>& pool, std::mt19937_64& rng) {
  std::string s = pool[rng() % pool.size()];
  const int steps = 1 + static_cast<int>(rng() % 8);
  for (int step = 0; step < steps; ++step) {
    const size_t n = s.size();
    switch (rng() % 8) {
      case 0:  // flip a bit
        if (n > 0) s[rng() % n] ^= static_cast<char>(1u << (rng() % 8));
        break;
      case 1: {  // set a byte to an interesting or random value
        static const uint8_t kInteresting[] = {0x00, 0x01, 0x7f, 0x80, 0xff,
                                               0xfe, 0x20, 0x0a, 0xc3};
        if (n > 0) {
          s[rng() % n] = static_cast<char>(rng() % 2 ? kInteresting[rng() % sizeof(kInteresting)]
                                                     : static_cast<uint8_t>(rng()));
        }
        break;
      }
      case 2:  // insert random bytes
        s.insert(n ? rng() % (n + 1) : 0, std::string(1 + rng() % 4, static_cast<char>(rng())));
        break;
      case 3:  // delete a range
        if (n > 0) {
          const size_t at = rng() % n;
          s.erase(at, 1 + rng() % std::min<size_t>(n - at, 16));
        }
        break;
      case 4:  // duplicate a range
        if (n > 0) {
          const size_t at = rng() % n;
          const std::string piece = s.substr(at, 1 + rng() % std::min<size_t>(n - at, 32));
          s.insert(rng() % (s.size() + 1), piece);
        }
        break;
      case 5: {  // splice with another input
        const std::string& other = pool[rng() % pool.size()];
        if (!other.empty()) {
          const size_t from = rng() % other.size();
          s = s.substr(0, n ? rng() % (n + 1) : 0) + other.substr(from);
        }
        break;
      }
      case 6:  // truncate
        if (n > 0) s.resize(rng() % n);
        break;
      default:  // overwrite a 4-byte window with a random word (lengths, varints, floats)
        if (n >= 4) {
          const uint32_t word = static_cast<uint32_t>(rng());
          std::memcpy(&s[rng() % (n - 3)], &word, 4);
        }
        break;
    }
  }
  return s;
}

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

int main(int argc, char** argv) {
  g_target_name = std::filesystem::path(argv[0]).filename().string();
  std::signal(SIGABRT, [](int) {
    SaveCurrentInput();
    std::_Exit(134);
  });
  std::signal(SIGSEGV, [](int) {
    SaveCurrentInput();
    std::_Exit(139);
  });
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  uint64_t iterations = 0;
  uint64_t seed = 1;
  std::vector<std::string> pool = maas::fuzz::MaasFuzzSeeds();
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--iterations" && i + 1 < argc) {
      iterations = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--write_seeds" && i + 1 < argc) {
      const std::filesystem::path dir = argv[++i];
      std::filesystem::create_directories(dir);
      for (size_t k = 0; k < pool.size(); ++k) {
        std::ofstream out(dir / ("seed-" + std::to_string(k)), std::ios::binary);
        out.write(pool[k].data(), static_cast<std::streamsize>(pool[k].size()));
      }
      std::cout << g_target_name << ": wrote " << pool.size() << " seeds to " << dir << "\n";
      return 0;
    } else if (std::filesystem::is_directory(arg)) {
      for (const auto& entry : std::filesystem::directory_iterator(arg)) {
        if (entry.is_regular_file()) pool.push_back(ReadAll(entry.path()));
      }
    } else if (std::filesystem::is_regular_file(arg)) {
      pool.push_back(ReadAll(arg));
    } else {
      std::cerr << "usage: " << argv[0]
                << " [--iterations N] [--seed S] [--write_seeds DIR] [FILE|DIR ...]\n";
      return 2;
    }
  }
  for (const std::string& input : pool) Run(input);
  std::mt19937_64 rng(seed);
  for (uint64_t i = 0; i < iterations; ++i) Run(Mutate(pool, rng));
  std::cout << g_target_name << ": " << pool.size() << " corpus inputs and " << iterations
            << " mutated inputs ran without a crash (seed " << seed << ")\n";
  return 0;
}
