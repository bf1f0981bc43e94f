#include "services/discriminative/core/count_vectorizer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status/status_macros.h"

namespace maas::discriminative {
namespace {

constexpr std::string_view kDefaultTokenPattern = R"((?u)\b\w\w+\b)";

absl::Status Unimplemented(absl::string_view parameter) {
  return absl::UnimplementedError(absl::StrCat(
      "vectorizer parameter ", parameter,
      " is not supported yet; supported: CountVectorizer with analyzer 'word', the default "
      "token_pattern, lowercase, binary, ngram_range, stop_words 'english', min_df, max_df"));
}

absl::StatusOr<DocumentFrequencyBound> BoundFromProto(const v1::DocumentFrequency& df,
                                                      absl::string_view name,
                                                      DocumentFrequencyBound unset) {
  switch (df.value_case()) {
    case v1::DocumentFrequency::VALUE_NOT_SET:
      return unset;
    case v1::DocumentFrequency::kCount:
      if (df.count() < 1) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, " count must be >= 1 (or give a fraction in [0, 1]); got 0"));
      }
      return DocumentFrequencyBound{false, static_cast<double>(df.count())};
    case v1::DocumentFrequency::kFraction:
      if (!(df.fraction() >= 0.0 && df.fraction() <= 1.0)) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, " fraction must be in [0, 1]; got ", df.fraction()));
      }
      return DocumentFrequencyBound{true, df.fraction()};
  }
  return unset;
}

double DocCount(const DocumentFrequencyBound& bound, size_t num_documents) {
  return bound.is_fraction ? bound.value * static_cast<double>(num_documents) : bound.value;
}

}  // namespace

absl::StatusOr<CountVectorizerOptions> CountVectorizerOptionsFromConfig(
    const v1::VectorizerConfig& config) {
  if (config.kind_case() == v1::VectorizerConfig::kHashing) {
    return Unimplemented("hashing (HashingVectorizer)");
  }
  if (config.has_tfidf()) return Unimplemented("tfidf (TfidfVectorizer)");
  const v1::CountVectorizerConfig& count = config.count();
  const v1::TextOptions& text = count.text();
  CountVectorizerOptions options;
  if (text.analyzer() != v1::ANALYZER_WORD) {
    return Unimplemented(absl::StrCat("analyzer=", v1::Analyzer_Name(text.analyzer())));
  }
  if (text.strip_accents() != v1::STRIP_ACCENTS_NONE) {
    return Unimplemented(
        absl::StrCat("strip_accents=", v1::StripAccents_Name(text.strip_accents())));
  }
  if (!text.token_pattern().empty() && text.token_pattern() != kDefaultTokenPattern) {
    return Unimplemented("token_pattern (only the default r\"(?u)\\b\\w\\w+\\b\")");
  }
  if (count.max_features() != 0) return Unimplemented("max_features");
  options.analyzer.lowercase = !text.has_lowercase() || text.lowercase();
  if (text.stop_words() == "english") {
    options.analyzer.english_stop_words = true;
  } else if (!text.stop_words().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("stop_words must be empty or \"english\"; got \"", text.stop_words(), "\""));
  }
  const uint32_t ngram_min = text.ngram_min() == 0 ? 1 : text.ngram_min();
  const uint32_t ngram_max = text.ngram_max() == 0 ? ngram_min : text.ngram_max();
  if (ngram_min > ngram_max) {
    return absl::InvalidArgumentError(absl::StrCat("invalid ngram_range=(", ngram_min, ", ",
                                                   ngram_max,
                                                   "): lower boundary larger than the upper one"));
  }
  options.analyzer.ngram_min = ngram_min;
  options.analyzer.ngram_max = ngram_max;
  options.binary = text.binary();
  MAAS_ASSIGN_OR_RETURN(options.min_df, BoundFromProto(count.min_df(), "min_df", options.min_df));
  MAAS_ASSIGN_OR_RETURN(options.max_df, BoundFromProto(count.max_df(), "max_df", options.max_df));
  return options;
}

absl::StatusOr<CountVectorizer::FitResult> CountVectorizer::FitTransform(
    const std::vector<std::string>& texts, const CountVectorizerOptions& options) {
  // Provisional index = order of first occurrence (as _count_vocab); rows hold provisional indices.
  absl::flat_hash_map<std::string, uint32_t> provisional;
  std::vector<std::string> terms;
  std::vector<std::vector<std::pair<uint32_t, double>>> raw_rows(texts.size());
  for (size_t d = 0; d < texts.size(); ++d) {
    const absl::Status valid = ValidateUtf8(texts[d]);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("texts[", d, "]: ", valid.message()));
    }
    absl::flat_hash_map<uint32_t, double> counts;
    for (std::string& token : AnalyzeWords(texts[d], options.analyzer)) {
      auto [it, inserted] = provisional.try_emplace(token, static_cast<uint32_t>(terms.size()));
      if (inserted) {
        if (terms.size() >= std::numeric_limits<uint32_t>::max()) {
          return absl::InvalidArgumentError("vocabulary too large (>= 2^32 terms)");
        }
        terms.push_back(std::move(token));
      }
      counts[it->second] += 1.0;
    }
    raw_rows[d].assign(counts.begin(), counts.end());
  }
  if (terms.empty()) {
    return absl::InvalidArgumentError(
        "empty vocabulary; perhaps the documents only contain stop words or 1-character tokens "
        "(the default tokenizer keeps runs of at least 2 letters, digits or underscores)");
  }
  const size_t num_terms = terms.size();
  std::vector<uint64_t> df(num_terms, 0);
  for (const auto& row : raw_rows) {
    for (const auto& entry : row) ++df[entry.first];
  }
  // Pruning by document frequency (_limit_features), on the raw float products.
  const double max_doc_count = DocCount(options.max_df, texts.size());
  const double min_doc_count = DocCount(options.min_df, texts.size());
  if (max_doc_count < min_doc_count) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_df corresponds to < documents than min_df (", max_doc_count, " < ",
                     min_doc_count, " documents out of ", texts.size(), ")"));
  }
  std::vector<uint32_t> kept;  // Provisional indices of the kept terms.
  for (uint32_t t = 0; t < num_terms; ++t) {
    const double d = static_cast<double>(df[t]);
    if (d <= max_doc_count && d >= min_doc_count) kept.push_back(t);
  }
  if (kept.empty()) {
    return absl::InvalidArgumentError(
        "After pruning, no terms remain. Try a lower min_df or a higher max_df.");
  }
  std::sort(kept.begin(), kept.end(), [&](uint32_t a, uint32_t b) { return terms[a] < terms[b]; });
  constexpr uint32_t kDropped = std::numeric_limits<uint32_t>::max();
  std::vector<uint32_t> final_index(num_terms, kDropped);
  FitResult result;
  CountVectorizer& v = result.vectorizer;
  v.options_ = options;
  v.num_documents_ = texts.size();
  v.vocabulary_.reserve(kept.size());
  v.document_frequency_.reserve(kept.size());
  for (uint32_t rank = 0; rank < kept.size(); ++rank) {
    final_index[kept[rank]] = rank;
    v.vocabulary_.push_back(std::move(terms[kept[rank]]));
    v.document_frequency_.push_back(df[kept[rank]]);
  }
  v.BuildIndex();
  result.rows.resize(texts.size());
  for (size_t d = 0; d < texts.size(); ++d) {
    std::vector<std::pair<uint32_t, double>> row;
    row.reserve(raw_rows[d].size());
    for (const auto& [t, count] : raw_rows[d]) {
      if (final_index[t] != kDropped)
        row.emplace_back(final_index[t], options.binary ? 1.0 : count);
    }
    std::sort(row.begin(), row.end());
    SparseVector& out = result.rows[d];
    out.indices.reserve(row.size());
    out.values.reserve(row.size());
    for (const auto& [index, value] : row) {
      out.indices.push_back(index);
      out.values.push_back(value);
    }
  }
  return result;
}

absl::StatusOr<CountVectorizer> CountVectorizer::FromState(const CountVectorizerOptions& options,
                                                           std::vector<std::string> vocabulary,
                                                           std::vector<uint64_t> document_frequency,
                                                           uint64_t num_documents) {
  if (vocabulary.empty()) {
    return absl::InvalidArgumentError(
        "vocabulary is empty: a CountVectorizer needs at least 1 term");
  }
  if (vocabulary.size() >= std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError("vocabulary too large (>= 2^32 terms)");
  }
  for (size_t i = 0; i < vocabulary.size(); ++i) {
    if (vocabulary[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("vocabulary[", i, "] is empty"));
    }
    const absl::Status valid = ValidateUtf8(vocabulary[i]);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("vocabulary[", i, "]: ", valid.message()));
    }
    if (i > 0 && !(vocabulary[i - 1] < vocabulary[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "vocabulary must be sorted by code point without duplicates (scikit-learn's feature "
          "order); vocabulary[",
          i - 1, "] = \"", vocabulary[i - 1], "\" is not before vocabulary[", i, "] = \"",
          vocabulary[i], "\""));
    }
  }
  if (!document_frequency.empty() && document_frequency.size() != vocabulary.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "document_frequency has ", document_frequency.size(), " values but the vocabulary has ",
        vocabulary.size(), " terms (give one per term, or none)"));
  }
  CountVectorizer v;
  v.options_ = options;
  v.vocabulary_ = std::move(vocabulary);
  v.document_frequency_ = std::move(document_frequency);
  v.num_documents_ = num_documents;
  v.BuildIndex();
  return v;
}

void CountVectorizer::BuildIndex() {
  index_.clear();
  index_.reserve(vocabulary_.size());
  for (uint32_t i = 0; i < vocabulary_.size(); ++i) index_.emplace(vocabulary_[i], i);
}

SparseVector CountVectorizer::Transform(std::string_view text) const {
  absl::flat_hash_map<uint32_t, double> counts;
  for (const std::string& token : AnalyzeWords(text, options_.analyzer)) {
    const auto it = index_.find(token);
    if (it != index_.end()) counts[it->second] += 1.0;
  }
  std::vector<std::pair<uint32_t, double>> row(counts.begin(), counts.end());
  std::sort(row.begin(), row.end());
  SparseVector out;
  out.indices.reserve(row.size());
  out.values.reserve(row.size());
  for (const auto& [index, value] : row) {
    out.indices.push_back(index);
    out.values.push_back(options_.binary ? 1.0 : value);
  }
  return out;
}

std::optional<uint32_t> CountVectorizer::FeatureIndex(std::string_view term) const {
  const auto it = index_.find(absl::string_view(term.data(), term.size()));
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

}  // namespace maas::discriminative
