// MurmurHash3_x86_32, the hashing vectorizer's term hash (scikit-learn's murmurhash3_32), of one
// string and of a text's word runs at once: on the AVX2 and AVX-512 paths 8 or 16 runs of up to 16
// bytes hashed side by side in vector lanes (no branch on a run's length), the longer ones one by
// one. Every path gives the same hashes.
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_RUN_HASHES_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_RUN_HASHES_H_

#include <cstdint>
#include <string_view>

#include "services/discriminative/core/count_simd.h"
#include "services/discriminative/core/text_analysis.h"

namespace maas::discriminative {

// MurmurHash3_x86_32 of `data` with `seed` (Austin Appleby's reference, as scikit-learn's
// murmurhash3_32), as uint32.
uint32_t MurmurHash3X86_32(std::string_view data, uint32_t seed);

// hashes[k] = MurmurHash3X86_32 of run k of `runs` over `doc` with seed 0, for every k <
// runs.count (1-byte runs included), with the runs' ASCII capitals hashed as lowercase when
// `lower` (REQUIRES then: the runs' bytes are ASCII). Writes nothing past hashes[runs.count - 1].
void HashAsciiRuns(std::string_view doc, const AsciiRuns& runs, bool lower, uint32_t* hashes);
// HashAsciiRuns on the given path. REQUIRES: CountSimdPathSupported(path).
void HashAsciiRunsWith(CountSimdPath path, std::string_view doc, const AsciiRuns& runs, bool lower,
                       uint32_t* hashes);

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_RUN_HASHES_H_
