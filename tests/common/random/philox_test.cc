// Known-answer tests for Philox4x32 (Random123 kat_vectors, reference notes section 4.1) and the
// documented (seed, stream, index, block) -> (counter, key) mapping.
#include "common/random/philox.h"

#include <catch2/catch.hpp>

namespace maas::random {
namespace {

struct Kat {
  int rounds;
  PhiloxCounter counter;
  PhiloxKey key;
  PhiloxBlock expected;
};

TEST_CASE("Philox4x32 reproduces the Random123 known-answer vectors") {
  const Kat kats[] = {
      {10, {0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {10,
       {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {10,
       {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
      {10, {1, 0, 0, 0}, {1, 0}, {0xac08141b, 0xdfc5ccbe, 0x79c07a47, 0xa7f66093}},
      {7, {1, 0, 0, 0}, {1, 0}, {0x6b3257c3, 0x820c5486, 0x4de08b66, 0x8771d665}},
      {10,
       {0xffffffff, 0, 0, 0},
       {0xffffffff, 0xffffffff},
       {0xc25672de, 0x7c03af71, 0xc1b7863e, 0x1d02bb96}},
  };
  for (const Kat& kat : kats) {
    INFO("rounds " << kat.rounds << " counter " << std::hex << kat.counter[0] << " "
                   << kat.counter[1] << " " << kat.counter[2] << " " << kat.counter[3] << " key "
                   << kat.key[0] << " " << kat.key[1]);
    CHECK(Philox4x32(kat.counter, kat.key, kat.rounds) == kat.expected);
  }
}

TEST_CASE("Philox4x32 defaults to 10 rounds and is usable at compile time") {
  constexpr PhiloxBlock block = Philox4x32({0, 0, 0, 0}, {0, 0});
  static_assert(block[0] == 0x6627e8d5u && block[3] == 0x9b00dbd8u, "Philox4x32-10 zero KAT");
  CHECK(Philox4x32({1, 0, 0, 0}, {1, 0}) == Philox4x32({1, 0, 0, 0}, {1, 0}, 10));
  CHECK(Philox4x32({1, 0, 0, 0}, {1, 0}, 0) == PhiloxBlock{1, 0, 0, 0});
}

TEST_CASE("KeyFromSeed and CounterFor follow the documented layout") {
  CHECK(KeyFromSeed(0x0123456789abcdefULL) == PhiloxKey{0x89abcdef, 0x01234567});
  CHECK(KeyFromSeed(7) == PhiloxKey{7, 0});
  CHECK(CounterFor(/*index=*/0xfedcba9876543210ULL, /*stream=*/3, /*block=*/5) ==
        PhiloxCounter{5, 0x76543210, 0xfedcba98, 3});
  CHECK(CounterFor(0, 0, 0) == PhiloxCounter{0, 0, 0, 0});
}

}  // namespace
}  // namespace maas::random
