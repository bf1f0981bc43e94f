#include "services/discriminative/core/utf8_simd.h"

#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace maas::discriminative {

#if defined(__x86_64__)
namespace {

// ValidUtf8Avx2's state and step (below).
struct Utf8VectorCheck {
  __m256i byte1_high, byte1_low, byte2_high, incomplete_above;
  __m256i error{}, previous{}, previous_incomplete{};

  __attribute__((target("avx2"), always_inline)) inline void Step(__m256i input) {
    if (_mm256_movemask_epi8(input) == 0) {  // ASCII: only a sequence cut short before it
      error = _mm256_or_si256(error, previous_incomplete);
      previous_incomplete = _mm256_setzero_si256();
      previous = input;
      return;
    }
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    // The bytes 1, 2 and 3 positions before each byte (from the previous step for the first).
    const __m256i joined = _mm256_permute2x128_si256(previous, input, 0x21);
    const __m256i prev1 = _mm256_alignr_epi8(input, joined, 15);
    const __m256i prev2 = _mm256_alignr_epi8(input, joined, 14);
    const __m256i prev3 = _mm256_alignr_epi8(input, joined, 13);
    const __m256i special = _mm256_and_si256(
        _mm256_and_si256(
            _mm256_shuffle_epi8(byte1_high, _mm256_and_si256(_mm256_srli_epi16(prev1, 4), nibble)),
            _mm256_shuffle_epi8(byte1_low, _mm256_and_si256(prev1, nibble))),
        _mm256_shuffle_epi8(byte2_high, _mm256_and_si256(_mm256_srli_epi16(input, 4), nibble)));
    // Bit 7 set on the bytes that must be a 3- or 4-byte sequence's third or fourth byte.
    const __m256i must23 = _mm256_and_si256(
        _mm256_or_si256(_mm256_subs_epu8(prev2, _mm256_set1_epi8(static_cast<char>(0xE0 - 0x80))),
                        _mm256_subs_epu8(prev3, _mm256_set1_epi8(static_cast<char>(0xF0 - 0x80)))),
        _mm256_set1_epi8(static_cast<char>(0x80)));
    error = _mm256_or_si256(error, _mm256_xor_si256(must23, special));
    previous_incomplete = _mm256_subs_epu8(input, incomplete_above);
    previous = input;
  }
};

}  // namespace

// Whether `text` is valid UTF-8, 32 bytes per step: Keiser and Lemire's lookup algorithm
// ("Validating UTF-8 in less than one instruction per byte", 2021; simdjson's utf8_lookup4).
// Each byte is checked against the one before it by three 16-entry tables (the high nibble of the
// previous byte, its low nibble, the high nibble of this byte), whose and is nonzero for every
// error of a 2-byte window (too short, too long, overlong, surrogate, above U+10FFFF, two
// continuations); the third and fourth bytes of 3- and 4-byte sequences, which must be
// continuations, cancel the "two continuations" bit. The text ends with a zero-padded step, so
// a sequence cut short at the end is too short.
__attribute__((target("avx2"))) bool ValidUtf8Avx2(std::string_view text) {
  constexpr char kTooShort = 1 << 0, kTooLong = 1 << 1, kOverlong3 = 1 << 2, kTooLarge = 1 << 3,
                 kSurrogate = 1 << 4, kOverlong2 = 1 << 5, kTooLarge1000 = 1 << 6,
                 kOverlong4 = 1 << 6;
  constexpr char kTwoConts = static_cast<char>(1 << 7);
  constexpr char kCarry = kTooShort | kTooLong | kTwoConts;
  // Each table is 16 entries, the same in both 128-bit lanes (vpshufb looks up within a lane).
  const __m256i byte1_high = _mm256_broadcastsi128_si256(_mm_setr_epi8(
      kTooLong, kTooLong, kTooLong, kTooLong, kTooLong, kTooLong, kTooLong, kTooLong,  // 0___
      kTwoConts, kTwoConts, kTwoConts, kTwoConts,                                      // 10__
      kTooShort | kOverlong2,                                                          // 1100
      kTooShort,                                                                       // 1101
      kTooShort | kOverlong3 | kSurrogate,                                             // 1110
      kTooShort | kTooLarge | kTooLarge1000 | kOverlong4));                            // 1111
  constexpr char kLarge = kCarry | kTooLarge | kTooLarge1000;
  const __m256i byte1_low = _mm256_broadcastsi128_si256(
      _mm_setr_epi8(kCarry | kOverlong3 | kOverlong2 | kOverlong4,  // ____0000
                    kCarry | kOverlong2,                            // ____0001
                    kCarry, kCarry,                                 // ____001_
                    kCarry | kTooLarge,                             // ____0100
                    kLarge, kLarge, kLarge,                         // ____0101, ____011_
                    kLarge, kLarge, kLarge, kLarge, kLarge,         // ____1000 .. ____1100
                    kLarge | kSurrogate,                            // ____1101
                    kLarge, kLarge));                               // ____111_
  constexpr char kCont1000 =
      kTooLong | kOverlong2 | kTwoConts | kOverlong3 | kTooLarge1000 | kOverlong4;
  constexpr char kCont1001 = kTooLong | kOverlong2 | kTwoConts | kOverlong3 | kTooLarge;
  constexpr char kCont101 = kTooLong | kOverlong2 | kTwoConts | kSurrogate | kTooLarge;
  const __m256i byte2_high = _mm256_broadcastsi128_si256(
      _mm_setr_epi8(kTooShort, kTooShort, kTooShort, kTooShort, kTooShort, kTooShort, kTooShort,
                    kTooShort,                                     // ________ 0_______
                    kCont1000, kCont1001, kCont101, kCont101,      // ________ 10______
                    kTooShort, kTooShort, kTooShort, kTooShort));  // ________ 11______
  // A byte of a step's last three that starts a sequence longer than what is left of the step.
  const __m256i incomplete_above =
      _mm256_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                       -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, static_cast<char>(0xF0 - 1),
                       static_cast<char>(0xE0 - 1), static_cast<char>(0xC0 - 1));
  Utf8VectorCheck check{byte1_high, byte1_low, byte2_high, incomplete_above};
  const size_t n = text.size();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    check.Step(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(text.data() + i)));
  }
  alignas(32) char last[32] = {};  // the rest, zero-padded (a whole zero step when none is left)
  if (n > i) std::memcpy(last, text.data() + i, n - i);
  // Its zeros end a sequence cut short by the text's end: too short (or, when the text ended with
  // a whole step, the previous step's incomplete sequence before an ASCII step).
  check.Step(_mm256_load_si256(reinterpret_cast<const __m256i*>(last)));
  return _mm256_testz_si256(check.error, check.error) != 0;
}
#endif

}  // namespace maas::discriminative
