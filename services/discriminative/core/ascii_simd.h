// The instruction-set paths of the word tokenizer's ASCII fast path (AsciiWordRuns) and of the
// count vectorizer's vocabulary lookups on it (CountAsciiUnigrams): the x86-64 baseline (SSE2,
// what every CPU runs) and AVX-512 (F, BW, DQ, VL, VBMI2: 64 bytes per step, token positions by
// byte compress, keys and hashes of 8 tokens at once). Both give the same runs and the same counts;
// the path is only a speed decision, made once per process (BestAsciiSimdPath); tests run every
// path the CPU has.
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_ASCII_SIMD_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_ASCII_SIMD_H_

#include <string_view>
#include <vector>

#include "services/discriminative/core/term_table.h"
#include "services/discriminative/core/text_analysis.h"

namespace maas::discriminative {

enum class AsciiSimdPath {
  kBaseline,  // SSE2
  kAvx512,    // AVX-512 F/BW/DQ/VL/VBMI2
};

// Whether this CPU (and OS) can run `path`.
bool AsciiSimdPathSupported(AsciiSimdPath path);
// The path the process uses: AVX-512 when supported and random::BestSimdLevel() (CPUID, capped by
// MAAS_SIMD) is avx512, else the baseline. Decided once.
AsciiSimdPath BestAsciiSimdPath();
// Every supported path, baseline first.
std::vector<AsciiSimdPath> SupportedAsciiSimdPaths();
// "baseline" or "avx512".
const char* AsciiSimdPathName(AsciiSimdPath path);

// AsciiWordRuns (text_analysis.h) on the given path. REQUIRES: AsciiSimdPathSupported(path).
bool AsciiWordRunsWith(AsciiSimdPath path, std::string_view text, AnalyzerScratch* scratch,
                       AsciiRuns* runs);

// Counts the terms of ASCII `text` for an analyzer with AsciiUnigrams() (its runs of 2 bytes or
// more, `runs` from AsciiWordRuns of `text`) through `index` into scratch->ids / scratch->dense:
// each found feature id is appended to ids the first time, and its dense count incremented
// (REQUIRES: dense sized beyond every id of `index`). The terms are lowercased when `lower`. The
// order of `ids` may differ between paths; the set and the counts do not. REQUIRES:
// AsciiSimdPathSupported(path).
void CountAsciiUnigramsWith(AsciiSimdPath path, std::string_view text, const AsciiRuns& runs,
                            bool lower, const TermTable& index, AnalyzerScratch* scratch);

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_ASCII_SIMD_H_
