// The instruction-set paths of the count vectorizer's hot steps: the word tokenizer's ASCII fast
// path (AsciiWordRuns), the vocabulary lookups on its runs (CountAsciiUnigrams) and the ordering
// of a row's features (OrderedRowInto). The x86-64 baseline (SSE2, what every CPU runs); AVX2
// (64 bytes per tokenizer step without a mask array, a row's order by rank counting for rows of up
// to 64 ids; keys and hashes of 4 tokens at once); AVX-512 (64 bytes per step with token positions
// by byte compress; keys and hashes of 8 tokens at once; rank counting for rows of up to 128 ids).
// Every path gives the same runs, the same counts and the same rows; the path is only a speed
// decision, made once per process (BestCountSimdPath); tests run every path the CPU has.
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_COUNT_SIMD_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_COUNT_SIMD_H_

#include <string_view>
#include <vector>

#include "common/random/simd_level.h"
#include "services/discriminative/core/term_table.h"
#include "services/discriminative/core/text_analysis.h"

namespace maas::discriminative {

// The paths are the process's SIMD levels (random::SimdLevel, named by random::SimdLevelName),
// each needing a little more of the CPU than the level's kernels do: kBaseline SSE2; kAvx2 also
// BMI1 and POPCNT; kAvx512 AVX-512
// F/BW/DQ/VL/VBMI2, BMI2 and POPCNT.
using CountSimdPath = random::SimdLevel;

#if defined(__x86_64__)
// The target attribute of the AVX-512 path's functions.
#define MAAS_COUNT_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vbmi,avx512vbmi2,popcnt,bmi2")))
// Around the AVX-512 path's code: GCC 12's AVX-512 intrinsics start from
// _mm512_undefined_epi32(), which its -Wuninitialized flags inside target-attribute functions (GCC
// bug 105593), a false positive.
#if defined(__clang__)
#define MAAS_COUNT_AVX512_WARNINGS_OFF \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")
#else
#define MAAS_COUNT_AVX512_WARNINGS_OFF                                                 \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"") \
      _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#endif
#define MAAS_COUNT_AVX512_WARNINGS_ON _Pragma("GCC diagnostic pop")
#endif

// Whether this CPU (and OS) can run `path`.
bool CountSimdPathSupported(CountSimdPath path);
// The path the process uses: the best supported one up to random::BestSimdLevel() (CPUID, capped
// by MAAS_SIMD=baseline|avx2|avx512). Decided once.
CountSimdPath BestCountSimdPath();
// Every supported path, baseline first.
std::vector<CountSimdPath> SupportedCountSimdPaths();

// AsciiWordRuns (text_analysis.h) on the given path. REQUIRES: CountSimdPathSupported(path).
bool AsciiWordRunsWith(CountSimdPath path, std::string_view text, AnalyzerScratch* scratch,
                       AsciiRuns* runs);
// AsciiSetRuns (text_analysis.h) on the given path. REQUIRES: CountSimdPathSupported(path).
bool AsciiSetRunsWith(CountSimdPath path, std::string_view text, const AsciiByteSet& set,
                      size_t min_length, AnalyzerScratch* scratch, AsciiRuns* runs);
// The runs of a pattern of one set's runs (pattern.ascii_run_set(false) not null) in any valid
// UTF-8 `doc` (the preprocessed text: its bytes as they are), on the given path: the runs whose
// tokens of MinTermBytes() bytes or more are the pattern's tokens (Analyzer::TermRuns; ASCII text
// by AsciiSetRunsWith). REQUIRES: doc.size() < 2^32 - 1, CountSimdPathSupported(path).
void SetRunsWith(CountSimdPath path, std::string_view doc, const TokenPattern& pattern,
                 AnalyzerScratch* scratch, AsciiRuns* runs);
// WordRuns (text_analysis.h) with its ASCII pass on the given path.
bool WordRunsWith(CountSimdPath path, std::string_view doc, AnalyzerScratch* scratch,
                  AsciiRuns* runs);
// LowerWordRuns (text_analysis.h) with its runs on the given path.
// Whether ValidateUtf8(text) is OK, on `path`: code point by code point on the baseline, 32 bytes
// per step on AVX2 and AVX-512 (ValidateUtf8 takes the best path, then finds the offset of an
// error code point by code point).
bool ValidUtf8With(CountSimdPath path, std::string_view text);
LowerRunsResult LowerWordRunsWith(CountSimdPath path, std::string_view text,
                                  AnalyzerScratch* scratch, AsciiRuns* runs);

// Counts the terms of `text` for an analyzer with AsciiUnigrams() (its runs of 2 bytes or more,
// `runs` from Analyzer::AsciiTermRuns of ASCII `text`, or from Analyzer::TermRuns of a
// preprocessed one with `lower` false; each run at most 2^32 - 2 bytes from the start, with
// 32 readable entries past the count, as those give) through `index` into scratch->ids /
// scratch->dense: each found feature id is appended to ids the first time, and its dense count
// incremented (REQUIRES: dense sized beyond every id of `index`). The terms are lowercased when
// `lower`. The order of `ids` may differ between paths; the set and the counts do not. REQUIRES:
// CountSimdPathSupported(path).
void CountAsciiUnigramsWith(CountSimdPath path, std::string_view text, const AsciiRuns& runs,
                            bool lower, const TermTable& index, AnalyzerScratch* scratch);

// The keys (TermTable::PaddedKeyOf, lowercased when `lower`), home slots in `table`
// (TermTable::Home) and start offsets of the tokens of ASCII `text` from run k on (`runs` from
// AsciiWordRuns of `text`), in run order, stored at lo / hi / homes / starts + *m on (*m
// advanced): runs of 1 byte are skipped; stops at the end of the runs, before a run longer than
// TermTable::kMaxPaddedKey bytes, or when *m reaches `capacity`, whichever comes first. Returns the
// index of the first run not consumed. The same on every path. REQUIRES:
// CountSimdPathSupported(path); the arrays hold `capacity` entries.
size_t AsciiTermKeysWith(CountSimdPath path, std::string_view text, const AsciiRuns& runs, size_t k,
                         bool lower, const TermTable& table, size_t capacity, uint64_t* lo,
                         uint64_t* hi, size_t* homes, uint32_t* starts, size_t* m);

// OrderedRowInto (count_vectorizer.h) on the given path. REQUIRES: CountSimdPathSupported(path).
size_t OrderedRowIntoWith(CountSimdPath path, size_t num_features, bool binary,
                          AnalyzerScratch* scratch, uint32_t* out_index, double* out_value);

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_COUNT_SIMD_H_
