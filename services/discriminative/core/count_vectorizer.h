// CountVectorizer with scikit-learn's semantics: learned vocabulary sorted by code point, sparse
// term counts.
//
//   MAAS_ASSIGN_OR_RETURN(CountVectorizerOptions options,
//   CountVectorizerOptionsFromConfig(config)); MAAS_ASSIGN_OR_RETURN(CountVectorizer::FitResult
//   fit, CountVectorizer::FitTransform(texts, options)); SparseVector row =
//   fit.vectorizer.Transform("some text");
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_COUNT_VECTORIZER_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_COUNT_VECTORIZER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "maas/discriminative/v1/discriminative.pb.h"
#include "services/discriminative/core/text_analysis.h"

namespace maas::discriminative {

// A sparse row: strictly ascending feature indices and their values (same length).
struct SparseVector {
  std::vector<uint32_t> indices;
  std::vector<double> values;
};

// scikit-learn's min_df / max_df: an absolute document count (int) or a fraction of the documents
// (float).
struct DocumentFrequencyBound {
  bool is_fraction = false;
  double value = 1.0;  // Count >= 1 when !is_fraction, fraction in [0, 1] otherwise.
};

// The CountVectorizer parameters implemented so far (the others are rejected as UNIMPLEMENTED by
// CountVectorizerOptionsFromConfig).
struct CountVectorizerOptions {
  WordAnalyzerOptions analyzer;
  bool binary = false;
  DocumentFrequencyBound min_df{/*is_fraction=*/false, 1.0};
  DocumentFrequencyBound max_df{/*is_fraction=*/true, 1.0};
};

// Validates a VectorizerConfig and returns the options it describes. An unset `kind` is the default
// CountVectorizer. Errors: INVALID_ARGUMENT for values scikit-learn rejects (ngram_min > ngram_max,
// unknown stop word list, min_df count 0, fraction outside [0, 1]); UNIMPLEMENTED, naming the
// parameter, for parameters not supported yet (tfidf, hashing, analyzer char/char_wb,
// strip_accents, custom token_pattern, max_features).
absl::StatusOr<CountVectorizerOptions> CountVectorizerOptionsFromConfig(
    const v1::VectorizerConfig& config);

class CountVectorizer {
 public:
  struct FitResult;

  // CountVectorizer(...).fit_transform(texts): learns the vocabulary (terms in code point order,
  // pruned by min_df/max_df) and returns the count rows of `texts` (ascending indices). Errors:
  // INVALID_ARGUMENT for invalid UTF-8 (naming the text index), an empty vocabulary ("empty
  // vocabulary; perhaps the documents only contain stop words or 1-character tokens"), inconsistent
  // min_df/max_df, or nothing left after pruning.
  static absl::StatusOr<FitResult> FitTransform(const std::vector<std::string>& texts,
                                                const CountVectorizerOptions& options);

  // A fitted vectorizer from its state. Errors (INVALID_ARGUMENT): empty vocabulary, a term that is
  // empty or not valid UTF-8, terms not strictly ascending in code point (byte) order,
  // document_frequency of the wrong length.
  static absl::StatusOr<CountVectorizer> FromState(const CountVectorizerOptions& options,
                                                   std::vector<std::string> vocabulary,
                                                   std::vector<uint64_t> document_frequency,
                                                   uint64_t num_documents);

  // transform([text]) for one text: counts of known terms, unknown terms skipped.
  // REQUIRES: ValidateUtf8(text).ok().
  SparseVector Transform(std::string_view text) const;

  // The index of `term`, if it is in the vocabulary.
  std::optional<uint32_t> FeatureIndex(std::string_view term) const;

  const CountVectorizerOptions& options() const { return options_; }
  // Terms in feature-index order (get_feature_names_out()).
  const std::vector<std::string>& vocabulary() const { return vocabulary_; }
  size_t num_features() const { return vocabulary_.size(); }
  // Documents containing each term in the fitted corpus (empty if unknown, e.g. imported without
  // it).
  const std::vector<uint64_t>& document_frequency() const { return document_frequency_; }
  // Documents in the fitted corpus (0 if unknown).
  uint64_t num_documents() const { return num_documents_; }

 private:
  CountVectorizer() = default;
  void BuildIndex();

  CountVectorizerOptions options_;
  std::vector<std::string> vocabulary_;
  std::vector<uint64_t> document_frequency_;
  uint64_t num_documents_ = 0;
  absl::flat_hash_map<std::string, uint32_t> index_;
};

struct CountVectorizer::FitResult {
  CountVectorizer vectorizer;
  // One row per input text.
  std::vector<SparseVector> rows;
};

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_COUNT_VECTORIZER_H_
