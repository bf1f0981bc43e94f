// The bulk normal and uniform kernels: bit-identical to ItemRng::Normal() / Uniform() at every
// SIMD level this CPU has, for every word offset and length; and maas's own log/cos/sin
// (box_muller_kernel.h) within a few ulp of the exact values (long double libm as the oracle).
#include "common/random/normal_kernels.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "common/random/item_rng.h"
#include "common/random/simd_level.h"

namespace maas::random {
namespace {

uint64_t Bits(double x) {
  uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

// The scalar reference: `skip` single words, then 2 * pairs Normal() calls.
std::vector<double> ScalarNormals(uint64_t seed, uint32_t stream, uint64_t index, int skip,
                                  size_t count) {
  ItemRng rng(seed, stream, index);
  for (int i = 0; i < skip; ++i) rng.NextU32();
  std::vector<double> out(count);
  for (double& z : out) z = rng.Normal();
  return out;
}

TEST_CASE("NormalPairsFromWords equals ItemRng::Normal bit for bit at every SIMD level") {
  const std::vector<SimdLevel> levels = SupportedSimdLevels();
  INFO("levels on this CPU: " << levels.size());
  for (const uint64_t seed : {uint64_t{0}, uint64_t{1}, uint64_t{0xfedcba9876543210}}) {
    for (const uint64_t index : {uint64_t{0}, uint64_t{12345}, uint64_t{0x500000007}}) {
      for (const int skip : {0, 2, 4, 6, 10}) {
        for (const size_t pairs : {size_t{1}, size_t{3}, size_t{8}, size_t{9}, size_t{417}}) {
          const std::vector<double> expected = ScalarNormals(seed, 3, index, skip, 2 * pairs);
          for (const SimdLevel level : levels) {
            std::vector<double> got(2 * pairs, -1.0);
            NormalPairsFromWordsAt(level, seed, 3, index, static_cast<uint64_t>(skip), pairs,
                                   got.data());
            size_t mismatches = 0;
            for (size_t i = 0; i < got.size(); ++i) mismatches += Bits(got[i]) != Bits(expected[i]);
            INFO("level " << SimdLevelName(level) << " seed " << seed << " index " << index
                          << " skip " << skip << " pairs " << pairs);
            CHECK(mismatches == 0);
          }
        }
      }
    }
  }
}

TEST_CASE("A block counter wrapping past 2^32 blocks matches the scalar generator") {
  // Words 4 * (2^32 - 3) ...: the SIMD lanes of one batch straddle the wrap to block 0.
  const uint64_t first_word = 4 * ((uint64_t{1} << 32) - 3);
  ItemRng rng(9, 0, 4);
  std::vector<double> expected(24);
  {
    // Reach the word by draws would take 2^34 words: build the expectation from the blocks.
    std::vector<double> u;
    for (int b = 0; b < 12; ++b) {
      const PhiloxBlock w = Philox4x32(
          CounterFor(4, 0, static_cast<uint32_t>((first_word >> 2) + b)), KeyFromSeed(9));
      u.push_back(UniformFromWords(w[0], w[1]));
      u.push_back(UniformFromWords(w[2], w[3]));
    }
    for (int p = 0; p < 12; ++p) {
      const auto [z0, z1] = BoxMuller(u[2 * p], u[2 * p + 1]);
      expected[2 * p] = z0;
      expected[2 * p + 1] = z1;
    }
  }
  for (const SimdLevel level : SupportedSimdLevels()) {
    std::vector<double> got(24);
    NormalPairsFromWordsAt(level, 9, 0, 4, first_word, 12, got.data());
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("level " << SimdLevelName(level) << " i " << i);
      CHECK(Bits(got[i]) == Bits(expected[i]));
    }
  }
}

TEST_CASE("FillNormals returns what repeated Normal() returns, cache and odd offsets included") {
  for (const int skip : {0, 1, 2, 3}) {
    for (const bool cached : {false, true}) {
      for (const size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{50}, size_t{784}}) {
        ItemRng a(77, 0, 5), b(77, 0, 5);
        if (cached) {
          a.Normal();
          b.Normal();
        }
        for (int i = 0; i < skip; ++i) {
          a.NextU32();
          b.NextU32();
        }
        std::vector<double> bulk(n);
        a.FillNormals(bulk.data(), n);
        std::vector<double> one(n);
        for (double& z : one) z = b.Normal();
        INFO("skip " << skip << " cached " << cached << " n " << n);
        for (size_t i = 0; i < n; ++i) CHECK(Bits(bulk[i]) == Bits(one[i]));
        // Both generators are at the same place afterwards, cache included.
        CHECK(a.words_consumed() == b.words_consumed());
        CHECK(Bits(a.Normal()) == Bits(b.Normal()));
        CHECK(a.NextU32() == b.NextU32());
      }
    }
  }
}

TEST_CASE("UniformsFromWords equals ItemRng::Uniform bit for bit at every SIMD level") {
  // Lengths around the lane widths and the two interleaved chains (2 * 2 * lanes uniforms a step),
  // odd ones (a last block half used), from both halves of a block (skip 2 and 6: the first
  // uniform is words 2-3); the values past n stay untouched.
  for (const uint64_t seed : {uint64_t{0}, uint64_t{0xfedcba9876543210}}) {
    for (const uint64_t index : {uint64_t{3}, uint64_t{0x500000007}}) {
      for (const int skip : {0, 2, 4, 6}) {
        for (size_t n = 0; n <= 37; ++n) {
          for (const size_t length : {n, n + 777}) {
            ItemRng rng(seed, 5, index);
            for (int i = 0; i < skip; ++i) rng.NextU32();
            std::vector<double> expected(length);
            for (double& u : expected) u = rng.Uniform();
            for (const SimdLevel level : SupportedSimdLevels()) {
              std::vector<double> got(length + 3, -1.0);
              UniformsFromWordsAt(level, seed, 5, index, static_cast<uint64_t>(skip), length,
                                  got.data());
              size_t mismatches = 0;
              for (size_t i = 0; i < length; ++i) mismatches += Bits(got[i]) != Bits(expected[i]);
              INFO("level " << SimdLevelName(level) << " seed " << seed << " index " << index
                            << " skip " << skip << " n " << length);
              CHECK(mismatches == 0);
              CHECK(got[length] == -1.0);
              CHECK(got[length + 2] == -1.0);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("FillUniforms returns what repeated Uniform() returns and leaves the generator there") {
  for (const int skip : {0, 1, 2, 3}) {
    for (const size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{784}}) {
      ItemRng a(78, 0, 6), b(78, 0, 6);
      a.Normal();  // a cached normal survives the uniforms, as it survives Uniform()
      b.Normal();
      for (int i = 0; i < skip; ++i) {
        a.NextU32();
        b.NextU32();
      }
      std::vector<double> bulk(n);
      a.FillUniforms(bulk.data(), n);
      std::vector<double> one(n);
      for (double& u : one) u = b.Uniform();
      INFO("skip " << skip << " n " << n);
      for (size_t i = 0; i < n; ++i) CHECK(Bits(bulk[i]) == Bits(one[i]));
      CHECK(a.words_consumed() == b.words_consumed());
      CHECK(Bits(a.Normal()) == Bits(b.Normal()));
      CHECK(a.NextU32() == b.NextU32());
      CHECK(Bits(a.Uniform()) == Bits(b.Uniform()));
    }
  }
}

TEST_CASE("NormalPairsAcrossItems equals ItemRng::Normal item by item at every SIMD level") {
  // Item counts around the lane widths (2, 4, 8) and a partial last group; pair counts around the
  // kernels' interleaved chains (2 or 4 blocks at a time); indices with high halves set.
  for (const uint64_t seed : {uint64_t{1}, uint64_t{0xfedcba9876543210}}) {
    for (const size_t count : {size_t{1}, size_t{3}, size_t{8}, size_t{13}, size_t{24}}) {
      std::vector<uint64_t> indices(count);
      for (size_t r = 0; r < count; ++r) indices[r] = 0x300000000ull * (r % 3) + 977 * r + 5;
      for (const int skip : {0, 2, 6}) {
        for (const size_t pairs : {size_t{1}, size_t{5}, size_t{8}, size_t{131}}) {
          const size_t stride = count + 3;  // a gap between the rows of values, left untouched
          for (const SimdLevel level : SupportedSimdLevels()) {
            std::vector<double> got(2 * pairs * stride, -7.0);
            NormalPairsAcrossItemsAt(level, seed, 2, indices.data(), count,
                                     static_cast<uint64_t>(skip), pairs, got.data(), stride);
            size_t mismatches = 0, touched = 0;
            for (size_t r = 0; r < count; ++r) {
              const std::vector<double> expected =
                  ScalarNormals(seed, 2, indices[r], skip, 2 * pairs);
              for (size_t t = 0; t < 2 * pairs; ++t) {
                mismatches += Bits(got[t * stride + r]) != Bits(expected[t]);
              }
            }
            for (size_t t = 0; t < 2 * pairs; ++t) {
              for (size_t r = count; r < stride; ++r) touched += got[t * stride + r] != -7.0;
            }
            INFO("level " << SimdLevelName(level) << " seed " << seed << " count " << count
                          << " skip " << skip << " pairs " << pairs);
            CHECK(mismatches == 0);
            CHECK(touched == 0);
          }
        }
      }
    }
  }
}

TEST_CASE("FillNormalsAcross returns what FillNormals returns per item, mixed positions included") {
  // Together (same seed, stream, even word, no cache), odd n (the last value opens a pair and
  // caches), and the item-by-item fallbacks: a cached normal, an odd word, a different position.
  enum Setup { kSame, kOneCached, kOddWord, kOneAhead };
  for (const Setup setup : {kSame, kOneCached, kOddWord, kOneAhead}) {
    for (const size_t count : {size_t{1}, size_t{11}, size_t{70}}) {
      for (const size_t n : {size_t{1}, size_t{2}, size_t{9}, size_t{784}}) {
        std::vector<ItemRng> a, b;
        for (size_t r = 0; r < count; ++r) {
          a.emplace_back(31, 0, 1000 + 3 * r);
          a.back().Uniform();  // as a sampler's component draw
          if (setup == kOddWord) a.back().NextU32();
          if ((setup == kOneCached || setup == kOneAhead) && r == count / 2) {
            if (setup == kOneCached) a.back().Normal();
            if (setup == kOneAhead) a.back().Uniform();
          }
          b.push_back(a.back());
        }
        std::vector<ItemRng*> pointers;
        for (ItemRng& rng : a) pointers.push_back(&rng);
        const size_t stride = count + 1;
        std::vector<double> got(n * stride, -7.0);
        ItemRng::FillNormalsAcross(pointers.data(), count, n, got.data(), stride);
        size_t mismatches = 0, after = 0;
        std::vector<double> expected(n);
        for (size_t r = 0; r < count; ++r) {
          b[r].FillNormals(expected.data(), n);
          for (size_t t = 0; t < n; ++t)
            mismatches += Bits(got[t * stride + r]) != Bits(expected[t]);
          // The generators stand where FillNormals leaves them, cache included.
          after += a[r].words_consumed() != b[r].words_consumed();
          after += Bits(a[r].Normal()) != Bits(b[r].Normal());
          after += a[r].NextU32() != b[r].NextU32();
        }
        INFO("setup " << setup << " count " << count << " n " << n);
        CHECK(mismatches == 0);
        CHECK(after == 0);
      }
    }
  }
}

TEST_CASE("BoxMuller's own log, cos and sin are within 2 ulp of the exact values") {
  // Oracle: long double libm (64-bit mantissa), rounded to double at the end.
  const long double two_pi = 2.0L * std::acos(-1.0L);
  double worst_radius = 0.0, worst_angle = 0.0;
  const double ulp1 = std::numeric_limits<double>::epsilon();
  ItemRng rng(2026, 0, 0);
  std::vector<double> u1s = {0x1.0p-53, 0.5 - 0x1.0p-53, 0.5, std::sqrt(0.5), 1.0 - 0x1.0p-53};
  std::vector<double> u2s = {0x1.0p-53, 0.125, 0.25, 0.375, 0.5, 0.75, 0.875, 1.0 - 0x1.0p-53};
  for (int i = 0; i < 200000; ++i) {
    u1s.push_back(rng.Uniform());
    u2s.push_back(rng.Uniform());
  }
  for (size_t i = 0; i < u1s.size(); ++i) {
    const double u1 = u1s[i], u2 = u2s[i % u2s.size()];
    const auto [z0, z1] = BoxMuller(u1, u2);
    const long double radius = std::sqrt(-2.0L * std::log(static_cast<long double>(u1)));
    const long double angle = two_pi * static_cast<long double>(u2);
    const long double c = std::cos(angle), s = std::sin(angle);
    // Radius relative error, and the angle error as an absolute error of (cos, sin) per unit
    // radius.
    const long double r_got =
        std::hypot(static_cast<long double>(z0), static_cast<long double>(z1));
    worst_radius = std::max(worst_radius, static_cast<double>(std::fabs(r_got / radius - 1.0L)));
    worst_angle = std::max(
        worst_angle, static_cast<double>(std::fabs(z0 / radius - c) + std::fabs(z1 / radius - s)));
  }
  INFO("worst radius error " << worst_radius / ulp1 << " ulp, worst angle error "
                             << worst_angle / ulp1 << " ulp");
  CHECK(worst_radius < 2.5 * ulp1);
  CHECK(worst_angle < 2.5 * ulp1);
}

}  // namespace
}  // namespace maas::random
