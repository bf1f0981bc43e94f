// The hashing vectorizer's kernels on each instruction-set path (count_simd.h's paths):
// - MurmurHash3_x86_32, its term hash (scikit-learn's murmurhash3_32), of one string and of a
//   text's word runs at once: on the AVX2 and AVX-512 paths 8 or 16 runs of up to 16 bytes hashed
//   side by side in vector lanes (no branch on a run's length), the longer ones one by one;
// - a text's row from its terms' columns: each term's place in ascending column order counted by
//   vector compares against all the text's terms (no hash table, no sort, no data-dependent
//   branch), duplicates summed at their common place.
// Every path gives the same hashes and rows.
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_HASHING_SIMD_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_HASHING_SIMD_H_

#include <cstddef>
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

// A hashed term: its column (below 2^31) and, in the top bit, whether its value is -1 (else +1).
constexpr uint32_t kHashedTermNegative = uint32_t{1} << 31;

// HashAsciiRuns of the runs of 2 bytes or more (the default token pattern's terms), each mapped to
// its hashed term for a power-of-two n_features (column |h| mod n_features, -1 for h < 0 when
// alternate_sign, as scikit-learn), into terms[0, m) in order; returns m. The vector paths map
// and compact in their lanes. REQUIRES: n_features a power of two below 2^31; room for
// runs.count terms (terms[m, runs.count) may be written).
size_t HashAsciiRunTerms(std::string_view doc, const AsciiRuns& runs, bool lower,
                         uint32_t n_features, bool alternate_sign, uint32_t* terms);
// HashAsciiRunTerms on the given path. REQUIRES: CountSimdPathSupported(path).
size_t HashAsciiRunTermsWith(CountSimdPath path, std::string_view doc, const AsciiRuns& runs,
                             bool lower, uint32_t n_features, bool alternate_sign, uint32_t* terms);

// The row of a text's n hashed terms: each distinct column once, ascending, into out_index[0, d)
// with the sum of its terms' values (+1 or -1; a column whose values cancel kept with 0.0, as
// scikit-learn's sum_duplicates keeps it) or, when `binary`, 1.0 in out_value[0, d); returns true
// and sets *distinct to d. More than 256 terms (a long text) are split by column range into
// buckets of ~32 terms on average, each placed after the buckets below (in scratch->bucketed and
// scratch->bucket_starts; a bucket of more than 256, a column repeated hundreds of times, is
// sorted). Returns false, writing nothing, on the baseline path. out_index and out_value have
// room for n.
bool HashedTermsRowWith(CountSimdPath path, const uint32_t* terms, size_t n, bool binary,
                        AnalyzerScratch* scratch, uint32_t* out_index, double* out_value,
                        size_t* distinct);

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_HASHING_SIMD_H_
