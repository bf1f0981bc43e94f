// ItemRng: the documented word order and consumption, the uniform mapping and determinism.
#include "common/random/item_rng.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/random/philox.h"

namespace maas::random {
namespace {

constexpr uint64_t kSeed = 0x0123456789abcdefULL;

std::vector<uint32_t> Words(ItemRng rng, int n) {
  std::vector<uint32_t> words(n);
  for (uint32_t& w : words) w = rng.NextU32();
  return words;
}

TEST_CASE("ItemRng reads the Philox blocks of its counter space in order") {
  const uint64_t index = 0x0000000500000007ULL;
  const uint32_t stream = 2;
  const std::vector<uint32_t> words = Words(ItemRng(kSeed, stream, index), 12);
  const PhiloxKey key = {0x89abcdef, 0x01234567};
  for (uint32_t block = 0; block < 3; ++block) {
    const PhiloxBlock expected = Philox4x32({block, 7, 5, stream}, key);
    for (int j = 0; j < 4; ++j) {
      INFO("block " << block << " word " << j);
      CHECK(words[4 * block + j] == expected[j]);
    }
  }
}

TEST_CASE("ItemRng with seed 0, stream 0, index 0 starts with the zero-counter KAT block") {
  const std::vector<uint32_t> words = Words(ItemRng(0, 0, 0), 4);
  CHECK(words == std::vector<uint32_t>{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
}

TEST_CASE("UniformFromWords stays strictly inside (0, 1) at the extreme words") {
  const double lowest = UniformFromWords(0, 0);
  const double highest = UniformFromWords(0xffffffffu, 0xffffffffu);
  CHECK(lowest > 0.0);
  CHECK(highest < 1.0);
  CHECK(lowest == std::ldexp(1.0, -53));
  CHECK(highest == 1.0 - std::ldexp(1.0, -53));
  CHECK(std::isfinite(std::log(lowest)));
  CHECK(std::isfinite(std::log1p(-highest)));
  // Why 52 bits: the 53-bit half-offset grid ((u64 >> 11) + 0.5) * 2^-53 rounds its top value to 1.
  const double top53 = (static_cast<double>((~0ULL) >> 11) + 0.5) * std::ldexp(1.0, -53);
  CHECK(top53 == 1.0);
  // The first word is the high half: it alone decides the leading bits.
  CHECK(UniformFromWords(0x80000000u, 0) == 0.5 + std::ldexp(1.0, -53));
  CHECK(UniformFromWords(0, 0xffffffffu) == (std::ldexp(1.0, 20) - 0.5) * std::ldexp(1.0, -52));
}

TEST_CASE("UniformFromWords is symmetric: complementing the words gives 1 - u exactly") {
  ItemRng rng(kSeed, 0, 0);
  for (int i = 0; i < 1000; ++i) {
    const uint32_t a = rng.NextU32();
    const uint32_t b = rng.NextU32();
    const double u = UniformFromWords(a, b);
    REQUIRE(u > 0.0);
    REQUIRE(u < 1.0);
    REQUIRE(u + UniformFromWords(~a, ~b) == 1.0);
  }
}

TEST_CASE("Uniform uses 2 words, also across a block boundary") {
  ItemRng words(kSeed, 1, 9);
  ItemRng rng(kSeed, 1, 9);
  std::vector<uint32_t> w(8);
  for (uint32_t& x : w) x = words.NextU32();
  CHECK(rng.Uniform() == UniformFromWords(w[0], w[1]));
  CHECK(rng.NextU32() == w[2]);
  CHECK(rng.Uniform() == UniformFromWords(w[3], w[4]));  // Words 3 of block 0 and 0 of block 1.
  CHECK(rng.NextU64() == ((static_cast<uint64_t>(w[5]) << 32) | w[6]));
  CHECK(rng.words_consumed() == 7);
}

TEST_CASE("BoxMuller matches the closed form") {
  const double pi = std::acos(-1.0);
  // u1 = exp(-1/2) gives radius 1; the angle is 2 pi u2.
  const auto [a, b] = BoxMuller(std::exp(-0.5), 0.125);
  CHECK(a == Approx(std::cos(pi / 4)).epsilon(1e-14));
  CHECK(b == Approx(std::sin(pi / 4)).epsilon(1e-14));
  const auto [c, d] = BoxMuller(std::exp(-2.0), 0.5);  // radius 2, angle pi
  CHECK(c == Approx(-2.0).epsilon(1e-14));
  CHECK(d == Approx(0.0).margin(1e-14));
}

TEST_CASE("Normal consumes 4 words per pair and returns the cached second value") {
  ItemRng reference(kSeed, 0, 3);
  const double u1 = reference.Uniform();
  const double u2 = reference.Uniform();
  const double u3 = reference.Uniform();
  const double u4 = reference.Uniform();
  const double u5 = reference.Uniform();
  const auto [z0, z1] = BoxMuller(u1, u2);
  const auto [z2, z3] = BoxMuller(u4, u5);

  ItemRng rng(kSeed, 0, 3);
  CHECK(rng.Normal() == z0);
  CHECK(rng.words_consumed() == 4);
  CHECK(rng.Uniform() == u3);  // A uniform between the two halves of a pair ...
  CHECK(rng.Normal() == z1);   // ... does not discard the cached value.
  CHECK(rng.words_consumed() == 6);
  CHECK(rng.Normal() == z2);
  CHECK(rng.Normal() == z3);
  CHECK(rng.words_consumed() == 10);
}

TEST_CASE("Same (seed, stream, index) gives the same sequence, any change gives another") {
  auto draws = [](uint64_t seed, uint32_t stream, uint64_t index) {
    ItemRng rng(seed, stream, index);
    std::vector<double> values;
    for (int i = 0; i < 200; ++i) {
      values.push_back(rng.Normal());
      values.push_back(rng.Uniform());
      values.push_back(static_cast<double>(rng.NextU32()));
    }
    return values;
  };
  const std::vector<double> base = draws(kSeed, 1, 42);
  CHECK(draws(kSeed, 1, 42) == base);
  // Copies replay the same words.
  ItemRng original(kSeed, 1, 42);
  original.NextU32();
  ItemRng copy = original;
  CHECK(Words(copy, 10) == Words(original, 10));

  CHECK(draws(kSeed, 1, 43) != base);
  CHECK(draws(kSeed, 2, 42) != base);
  CHECK(draws(kSeed + 1, 1, 42) != base);
  CHECK(draws(kSeed ^ (1ULL << 63), 1, 42) != base);  // The seed's high half matters.
  CHECK(draws(kSeed, 1, 42 + (1ULL << 32)) != base);  // The index's high half matters.
}

TEST_CASE("Neighbouring items are uncorrelated") {
  // Pearson correlation of 20000 paired uniforms of items 0 and 1: sd 1/sqrt(n) = 0.007.
  const int n = 20000;
  ItemRng a(kSeed, 0, 0);
  ItemRng b(kSeed, 0, 1);
  ItemRng c(kSeed, 1, 0);
  double sab = 0, sac = 0, sa = 0, sb = 0, sc = 0, saa = 0, sbb = 0, scc = 0;
  for (int i = 0; i < n; ++i) {
    const double x = a.Uniform(), y = b.Uniform(), z = c.Uniform();
    sa += x, sb += y, sc += z, saa += x * x, sbb += y * y, scc += z * z, sab += x * y, sac += x * z;
  }
  auto corr = [n](double sxy, double sx, double sy, double sxx, double syy) {
    const double cov = sxy / n - sx / n * sy / n;
    return cov / std::sqrt((sxx / n - sx / n * sx / n) * (syy / n - sy / n * sy / n));
  };
  CHECK(std::abs(corr(sab, sa, sb, saa, sbb)) < 0.035);  // 5 sd
  CHECK(std::abs(corr(sac, sa, sc, saa, scc)) < 0.035);
}

}  // namespace
}  // namespace maas::random
