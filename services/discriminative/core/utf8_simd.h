// UTF-8 validation 32 bytes at a time (ValidateUtf8's vector path, text_analysis.h).
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_UTF8_SIMD_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_UTF8_SIMD_H_

#include <string_view>

namespace maas::discriminative {

#if defined(__x86_64__)
// Whether `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF), 32 bytes per step. REQUIRES: the CPU has AVX2.
bool ValidUtf8Avx2(std::string_view text);
#endif

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_UTF8_SIMD_H_
