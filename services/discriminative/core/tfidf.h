// TF-IDF over any vectorizer (scikit-learn's TfidfTransformer >= 1.5, so TfidfVectorizer and
// make_pipeline(HashingVectorizer(...), TfidfTransformer(...))): per stored value, in storage
// order, sublinear_tf (v = log(v) + 1), use_idf (v *= idf[j]), then the row norm (l2 default / l1 /
// none). fit: df = stored entries per column, idf = log(n / df) + 1 with n and df each + 1 under
// smooth_idf.
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_TFIDF_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_TFIDF_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/discriminative/core/hashing_vectorizer.h"
#include "services/discriminative/core/vectorizer.h"

namespace maas::discriminative {

struct TfidfOptions {
  RowNorm norm = RowNorm::kL2;
  bool use_idf = true;
  bool smooth_idf = true;
  bool sublinear_tf = false;
};

absl::StatusOr<TfidfOptions> TfidfOptionsFromConfig(const v1::TfidfConfig& config);
absl::Status ValidateTfidfConfig(const v1::TfidfConfig& config);

class TfidfVectorizer final : public Vectorizer {
 public:
  // `idf` has one value per feature of `base` when options.use_idf, else it is empty.
  TfidfVectorizer(std::unique_ptr<Vectorizer> base, TfidfOptions options, std::vector<double> idf)
      : base_(std::move(base)), options_(options), idf_(std::move(idf)) {}

  using Vectorizer::Transform;
  void Transform(std::string_view text, AnalyzerScratch* scratch, SparseVector* row) const override;
  bool TransformIfWellFormed(std::string_view text, AnalyzerScratch* scratch,
                             SparseVector* row) const override;
  size_t num_features() const override { return base_->num_features(); }
  // The base's signs pass through; with sublinear_tf, conservatively true: log(x) + 1 is <= 0 for
  // x <= 1/e (a normalized hashing value; a count's is >= 1).
  bool MayGiveNonPositive() const override {
    return base_->MayGiveNonPositive() || options_.sublinear_tf;
  }
  NonFinite NonFiniteRows() const override {
    if (!options_.sublinear_tf || !base_->MayGiveNonPositive()) return NonFinite::kNever;
    return options_.norm == RowNorm::kNone ? NonFinite::kKept : NonFinite::kRefused;
  }
  std::string FeatureName(uint32_t index) const override { return base_->FeatureName(index); }
  void ToState(v1::VectorizerState* state) const override;
  void RestoreHeldLists(v1::VectorizerConfig* config) const override {
    base_->RestoreHeldLists(config);
  }
  int64_t MemoryBytes() const override;

  // Applies the weighting and norm to a row of the base vectorizer, in place.
  void Weight(SparseVector* row) const { Weight(row->indices, absl::MakeSpan(row->values)); }
  void Weight(absl::Span<const uint32_t> indices, absl::Span<double> values) const;
  const std::vector<double>& idf() const { return idf_; }

 private:
  std::unique_ptr<Vectorizer> base_;
  TfidfOptions options_;
  std::vector<double> idf_;
};

// TfidfTransformer.fit on the base vectorizer's fit rows, then transform of those rows.
absl::StatusOr<VectorizerFit> FitTfidf(const v1::VectorizerConfig& config, VectorizerFit base);
// The TF-IDF layer over `base` from stored state (idf: one finite value >= 1 per feature when
// use_idf, none otherwise). Takes state->idf (moved out, its memory freed).
absl::StatusOr<std::unique_ptr<Vectorizer>> TfidfFromState(v1::VectorizerState* state,
                                                           std::unique_ptr<Vectorizer> base);

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_TFIDF_H_
