// HashingVectorizer with scikit-learn's semantics: each term's signed MurmurHash3_x86_32 (seed 0)
// of its UTF-8 bytes picks the column |h| mod n_features (2^31 mod n_features for h = INT32_MIN)
// and, with alternate_sign, the sign; duplicates are summed (explicit zeros from cancelling signs
// kept), binary sets every stored value to 1, then the row is normalised (l2 by default) in
// ascending column order. Stateless: nothing is learned.
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_HASHING_VECTORIZER_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_HASHING_VECTORIZER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "services/discriminative/core/hashing_simd.h"
#include "services/discriminative/core/text_analysis.h"
#include "services/discriminative/core/vectorizer.h"

namespace maas::discriminative {

enum class RowNorm { kNone, kL1, kL2 };

// scikit-learn's normalize(row, norm) in the row's storage order: s = sum of v*v (l2, then sqrt) or
// |v| (l1) from 0.0; rows with s == 0 are left alone; v = v / s.
void NormalizeRow(RowNorm norm, SparseVector* row);
void NormalizeRow(RowNorm norm, absl::Span<double> values);

// The Norm enum with its default (unset: l2).
RowNorm RowNormOf(v1::Norm norm);

struct HashingVectorizerOptions {
  AnalyzerOptions analyzer;
  DecodeError decode_error = DecodeError::kStrict;
  uint32_t n_features = uint32_t{1} << 20;
  bool alternate_sign = true;
  bool binary = false;
  RowNorm norm = RowNorm::kL2;
};

// Errors: INVALID_ARGUMENT for n_features outside [1, 2^31 - 1) and bad text options.
absl::StatusOr<HashingVectorizerOptions> HashingVectorizerOptionsFromConfig(
    const v1::VectorizerConfig& config);

class HashingVectorizer final : public Vectorizer {
 public:
  // The analyzer options move into the analyzer, which alone keeps them (the stop words once).
  explicit HashingVectorizer(HashingVectorizerOptions options)
      : analyzer_(std::move(options.analyzer)),
        n_features_(options.n_features),
        alternate_sign_(options.alternate_sign),
        binary_(options.binary),
        norm_(options.norm),
        remainder_multiplier_(~uint64_t{0} / options.n_features + 1),
        power_of_two_((options.n_features & (options.n_features - 1)) == 0),
        memo_tag_(CharWbMemoTag(analyzer_.options(), options.n_features, options.alternate_sign)) {}

  using Vectorizer::Transform;
  void Transform(std::string_view text, AnalyzerScratch* scratch, SparseVector* row) const override;
  // The word analyzer's path (Analyzer::AsciiUnigrams) on ASCII text, and, when preprocessing is
  // only lowercasing, on text that LowerWordRuns lowercases and splits in one pass.
  bool TransformIfWellFormed(std::string_view text, AnalyzerScratch* scratch,
                             SparseVector* row) const override;
  size_t num_features() const override { return n_features_; }
  // Signed sums, unless binary makes every stored value 1.
  bool MayGiveNonPositive() const override { return alternate_sign_ && !binary_; }
  std::string FeatureName(uint32_t) const override { return std::string(); }
  void ToState(v1::VectorizerState*) const override {}
  // The stop word list.
  void RestoreHeldLists(v1::VectorizerConfig* config) const override;
  int64_t MemoryBytes() const override;

 private:
  // Of HashingVectorizerOptions, what transforming needs (decode_error is the caller's business):
  // no copy of the analyzer options beside the analyzer's own.
  Analyzer analyzer_;
  uint32_t n_features_;
  bool alternate_sign_;
  bool binary_;
  RowNorm norm_;
  // ~0 / n_features + 1: x mod n_features = (remainder_multiplier_ * x mod 2^64) * n_features
  // >> 64 for every 32-bit x (Lemire, Kaser and Kurz, "Faster remainder by direct computation").
  uint64_t remainder_multiplier_;
  // Whether n_features is a power of two (as scikit-learn's default, 2^20): x mod n_features is
  // then x & (n_features - 1).
  bool power_of_two_;
  // The char_wb analyzer's word memo tag (AnalyzerScratch::WordMemo::owner): a hash of what maps a
  // padded word to its hashed terms (the n-gram range, n_features, alternate_sign), at least 2.
  uint64_t memo_tag_;
  static uint64_t CharWbMemoTag(const AnalyzerOptions& analyzer, uint32_t n_features,
                                bool alternate_sign);

  class ColumnCounts;
  // The hashed term (hashing_simd.h) of MurmurHash3 `h`: its column and sign.
  uint32_t TermOf(uint32_t h) const;
  // Counts `term` into its column.
  static void AddTerm(uint32_t term, ColumnCounts* counts);
  // The row of the terms of `runs` over `doc` (those of 2 bytes or more), their ASCII capitals
  // lowercased when `lower` (REQUIRES then: doc is ASCII): hashed together (HashAsciiRuns, into
  // scratch->run_hashes), then placed in column order by HashedTermsRowWith (ColumnCounts where it
  // does not take them), normalised.
  void RunsRow(std::string_view doc, const AsciiRuns& runs, bool lower, AnalyzerScratch* scratch,
               SparseVector* row) const;
  // The most terms of a text TermsRow places by HashedTermsRowWith, which holds ~20 bytes per
  // term (the list, its bucketed copy, the row's room); a longer text's terms are counted in a
  // ColumnCounts table, whose memory grows with the distinct columns only.
  static constexpr size_t kMaxListedTerms = size_t{1} << 16;
  // The normalised row of the m hashed terms (HashedTermsRowWith, or ColumnCounts on the
  // baseline path or past kMaxListedTerms).
  void TermsRow(uint32_t* terms, size_t m, AnalyzerScratch* scratch, SparseVector* row) const;
  // The ordered, binarised and normalised row of *counts.
  void FinishRow(ColumnCounts* counts, SparseVector* row) const;
};

// The registry entry ("hashing").
extern const VectorizerKind kHashingVectorizerKind;

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_HASHING_VECTORIZER_H_
