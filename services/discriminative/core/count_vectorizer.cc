#include "services/discriminative/core/count_vectorizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status/status_macros.h"

namespace maas::discriminative {
namespace {

constexpr std::string_view kDefaultTokenPattern = R"((?u)\b\w\w+\b)";
constexpr size_t kStopCheckInterval = 1024;

absl::string_view View(std::string_view s) { return absl::string_view(s.data(), s.size()); }

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

absl::Status CheckTermList(const google::protobuf::RepeatedPtrField<std::string>& terms,
                           absl::string_view name) {
  if (static_cast<size_t>(terms.size()) > kMaxStopWords && name == "stop_word_list") {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " has ", terms.size(), " entries; at most ", kMaxStopWords));
  }
  for (int i = 0; i < terms.size(); ++i) {
    if (terms[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(name, "[", i, "] is empty"));
    }
    const absl::Status valid = ValidateUtf8(terms[i]);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(name, "[", i, "]: ", valid.message()));
    }
  }
  return absl::OkStatus();
}

// Packs a term of at most 7 bytes into an integer key unique among such terms.
inline bool PackShort(std::string_view term, uint64_t* key) {
  if (term.size() > 7) return false;
  uint64_t k = 0;
  std::memcpy(&k, term.data(), term.size());
  *key = k | static_cast<uint64_t>(term.size()) << 56;
  return true;
}

// Counts feature `index` of the current text: `keys` collects the distinct indices, `dense` (sized
// beyond every index, all 0 between texts) their counts.
inline void CountFeature(uint32_t index, std::vector<uint64_t>* keys, std::vector<double>* dense) {
  double& count = (*dense)[index];
  if (count == 0.0) keys->push_back(index);
  count += 1.0;
}

// Writes the counted row (ascending indices) and resets `dense` to 0.
void CountedRow(std::vector<uint64_t>* keys, std::vector<double>* dense, bool binary,
                SparseVector* row) {
  row->clear();
  std::sort(keys->begin(), keys->end());
  for (const uint64_t key : *keys) {
    row->indices.push_back(static_cast<uint32_t>(key));
    double& count = (*dense)[key];
    row->values.push_back(binary ? 1.0 : count);
    count = 0.0;
  }
}

}  // namespace

DecodeError DecodeErrorOf(const v1::TextOptions& text) {
  switch (text.decode_error()) {
    case v1::DECODE_ERROR_REPLACE:
      return DecodeError::kReplace;
    case v1::DECODE_ERROR_IGNORE:
      return DecodeError::kIgnore;
    default:
      return DecodeError::kStrict;
  }
}

absl::StatusOr<AnalyzerOptions> AnalyzerOptionsFromText(const v1::TextOptions& text) {
  AnalyzerOptions options;
  switch (text.analyzer()) {
    case v1::ANALYZER_WORD:
      options.kind = AnalyzerKind::kWord;
      break;
    case v1::ANALYZER_CHAR:
      options.kind = AnalyzerKind::kChar;
      break;
    case v1::ANALYZER_CHAR_WB:
      options.kind = AnalyzerKind::kCharWb;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown analyzer value ", static_cast<int>(text.analyzer())));
  }
  switch (text.strip_accents()) {
    case v1::STRIP_ACCENTS_NONE:
      options.strip_accents = StripAccentsMode::kNone;
      break;
    case v1::STRIP_ACCENTS_ASCII:
      options.strip_accents = StripAccentsMode::kAscii;
      break;
    case v1::STRIP_ACCENTS_UNICODE:
      options.strip_accents = StripAccentsMode::kUnicode;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown strip_accents value ", static_cast<int>(text.strip_accents())));
  }
  if (text.decode_error() != v1::DECODE_ERROR_STRICT &&
      text.decode_error() != v1::DECODE_ERROR_REPLACE &&
      text.decode_error() != v1::DECODE_ERROR_IGNORE) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown decode_error value ", static_cast<int>(text.decode_error())));
  }
  // Like scikit-learn, the char analyzers ignore token_pattern (it warns and never compiles it).
  if (!text.token_pattern().empty() && text.token_pattern() != kDefaultTokenPattern &&
      options.kind == AnalyzerKind::kWord) {
    MAAS_ASSIGN_OR_RETURN(options.token_pattern, TokenPattern::Compile(text.token_pattern()));
  }
  options.lowercase = !text.has_lowercase() || text.lowercase();
  if (!text.stop_words().empty() && text.stop_word_list_size() > 0) {
    return absl::InvalidArgumentError(
        "give either stop_words (\"english\") or stop_word_list, not both");
  }
  if (text.stop_words() == "english") {
    for (std::string_view word : EnglishStopWords()) options.stop_words.emplace(View(word));
  } else if (!text.stop_words().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("stop_words must be empty or \"english\"; got \"", text.stop_words(), "\""));
  }
  MAAS_RETURN_IF_ERROR(CheckTermList(text.stop_word_list(), "stop_word_list"));
  for (const std::string& word : text.stop_word_list()) options.stop_words.insert(word);
  const uint32_t ngram_min = text.ngram_min() == 0 ? 1 : text.ngram_min();
  const uint32_t ngram_max = text.ngram_max() == 0 ? ngram_min : text.ngram_max();
  if (ngram_min > ngram_max) {
    return absl::InvalidArgumentError(absl::StrCat("invalid ngram_range=(", ngram_min, ", ",
                                                   ngram_max,
                                                   "): lower boundary larger than the upper one"));
  }
  options.ngram_min = ngram_min;
  options.ngram_max = ngram_max;
  return options;
}

absl::StatusOr<CountVectorizerOptions> CountVectorizerOptionsFromConfig(
    const v1::VectorizerConfig& config) {
  if (config.kind_case() != v1::VectorizerConfig::kCount &&
      config.kind_case() != v1::VectorizerConfig::KIND_NOT_SET) {
    return absl::InvalidArgumentError("the vectorizer config is not count");
  }
  const v1::CountVectorizerConfig& count = config.count();
  CountVectorizerOptions options;
  MAAS_ASSIGN_OR_RETURN(options.analyzer, AnalyzerOptionsFromText(count.text()));
  options.decode_error = DecodeErrorOf(count.text());
  options.binary = count.text().binary();
  MAAS_ASSIGN_OR_RETURN(options.min_df, BoundFromProto(count.min_df(), "min_df", options.min_df));
  MAAS_ASSIGN_OR_RETURN(options.max_df, BoundFromProto(count.max_df(), "max_df", options.max_df));
  options.max_features = count.max_features();
  MAAS_RETURN_IF_ERROR(CheckTermList(count.vocabulary(), "vocabulary"));
  options.fixed_vocabulary.assign(count.vocabulary().begin(), count.vocabulary().end());
  absl::flat_hash_set<absl::string_view> seen;
  for (const std::string& term : options.fixed_vocabulary) {
    if (!seen.insert(term).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("Duplicate term in vocabulary: '", term.substr(0, 100), "'"));
    }
  }
  return options;
}

absl::StatusOr<CountVectorizer::FitResult> CountVectorizer::FitTransform(
    const std::vector<std::string>& texts, const CountVectorizerOptions& options,
    const exec::StopToken& stop) {
  return FitTransformViews(std::vector<std::string_view>(texts.begin(), texts.end()), options,
                           stop);
}

absl::StatusOr<CountVectorizer::FitResult> CountVectorizer::FitTransformViews(
    const std::vector<std::string_view>& texts, const CountVectorizerOptions& options,
    const exec::StopToken& stop) {
  for (size_t d = 0; d < texts.size(); ++d) {
    const absl::Status valid = ValidateUtf8(texts[d]);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("texts[", d, "]: ", valid.message()));
    }
  }
  Fitter fitter(options);
  for (size_t d = 0; d < texts.size(); ++d) {
    if (d % kStopCheckInterval == 0) MAAS_RETURN_IF_ERROR(stop.Check());
    fitter.Add(texts[d]);
  }
  return fitter.Finish();
}

CountVectorizer::Fitter::Fitter(const CountVectorizerOptions& options) {
  CountVectorizer& v = result_.vectorizer;
  v.options_ = options;
  v.analyzer_ = Analyzer(options.analyzer);
  if (!options.fixed_vocabulary.empty()) {
    v.vocabulary_ = options.fixed_vocabulary;
    v.BuildIndex();
    v.document_frequency_.assign(v.vocabulary_.size(), 0);
  }
}

void CountVectorizer::Fitter::Add(std::string_view text) {
  CountVectorizer& v = result_.vectorizer;
  SparseVector& row = result_.rows.emplace_back();
  ++v.num_documents_;
  if (!v.options_.fixed_vocabulary.empty()) {
    v.Transform(text, &scratch_, &row);
    for (const uint32_t j : row.indices) ++v.document_frequency_[j];
    row.indices.shrink_to_fit();
    row.values.shrink_to_fit();
    return;
  }
  // Provisional index = order of first occurrence (as _count_vocab).
  scratch_.keys.clear();
  v.analyzer_.Analyze(text, &scratch_, [&](std::string_view term) {
    const uint32_t next = static_cast<uint32_t>(terms_.size());
    uint64_t key;
    uint32_t id;
    bool inserted;
    if (PackShort(term, &key)) {
      const auto [it, added] = provisional_short_.try_emplace(key, next);
      id = it->second;
      inserted = added;
    } else {
      auto it = provisional_.find(View(term));
      inserted = it == provisional_.end();
      if (inserted) it = provisional_.emplace(std::string(term), next).first;
      id = it->second;
    }
    if (inserted) {
      if (terms_.size() >= std::numeric_limits<uint32_t>::max() - 1) {
        too_many_ = true;
        return;
      }
      terms_.emplace_back(term);
      if (scratch_.dense.size() < terms_.size()) scratch_.dense.resize(terms_.size() * 2, 0.0);
    }
    CountFeature(id, &scratch_.keys, &scratch_.dense);
  });
  CountedRow(&scratch_.keys, &scratch_.dense, v.options_.binary, &row);
  row.indices.shrink_to_fit();
  row.values.shrink_to_fit();
}

absl::StatusOr<CountVectorizer::FitResult> CountVectorizer::Fitter::Finish() {
  CountVectorizer& v = result_.vectorizer;
  const CountVectorizerOptions& options = v.options_;
  if (!options.fixed_vocabulary.empty()) return std::move(result_);
  if (too_many_) return absl::InvalidArgumentError("vocabulary too large (>= 2^32 terms)");
  provisional_short_ = {};
  provisional_ = {};
  std::vector<std::string>& terms = terms_;
  const size_t num_documents = result_.rows.size();
  FitResult& result = result_;
  if (terms.empty()) {
    return absl::InvalidArgumentError(
        "empty vocabulary; perhaps the documents only contain stop words or 1-character tokens "
        "(the default tokenizer keeps runs of at least 2 letters, digits or underscores)");
  }
  const size_t num_terms = terms.size();
  std::vector<uint64_t> df(num_terms, 0);
  std::vector<double> tf(num_terms, 0.0);
  for (const SparseVector& row : result.rows) {
    for (size_t e = 0; e < row.indices.size(); ++e) {
      ++df[row.indices[e]];
      tf[row.indices[e]] += row.values[e];
    }
  }
  // Pruning by document frequency (_limit_features), on the raw float products.
  const double max_doc_count = DocCount(options.max_df, num_documents);
  const double min_doc_count = DocCount(options.min_df, num_documents);
  if (max_doc_count < min_doc_count) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_df corresponds to < documents than min_df (", max_doc_count, " < ",
                     min_doc_count, " documents out of ", num_documents, ")"));
  }
  std::vector<uint32_t> kept;  // Provisional indices of the kept terms.
  for (uint32_t t = 0; t < num_terms; ++t) {
    const double d = static_cast<double>(df[t]);
    if (d <= max_doc_count && d >= min_doc_count) kept.push_back(t);
  }
  std::sort(kept.begin(), kept.end(), [&](uint32_t a, uint32_t b) { return terms[a] < terms[b]; });
  if (options.max_features > 0 && kept.size() > options.max_features) {
    // Highest corpus counts first, ties in feature (code point) order; then back to feature order.
    std::stable_sort(kept.begin(), kept.end(),
                     [&](uint32_t a, uint32_t b) { return tf[a] > tf[b]; });
    kept.resize(options.max_features);
    std::sort(kept.begin(), kept.end(),
              [&](uint32_t a, uint32_t b) { return terms[a] < terms[b]; });
  }
  if (kept.empty()) {
    return absl::InvalidArgumentError(
        "After pruning, no terms remain. Try a lower min_df or a higher max_df.");
  }
  constexpr uint32_t kDropped = std::numeric_limits<uint32_t>::max();
  std::vector<uint32_t> final_index(num_terms, kDropped);
  v.vocabulary_.reserve(kept.size());
  v.document_frequency_.reserve(kept.size());
  for (uint32_t rank = 0; rank < kept.size(); ++rank) {
    final_index[kept[rank]] = rank;
    v.vocabulary_.push_back(std::move(terms[kept[rank]]));
    v.document_frequency_.push_back(df[kept[rank]]);
  }
  v.BuildIndex();
  std::vector<std::pair<uint32_t, double>> entries;
  for (SparseVector& row : result.rows) {
    entries.clear();
    for (size_t e = 0; e < row.indices.size(); ++e) {
      const uint32_t j = final_index[row.indices[e]];
      if (j != kDropped) entries.emplace_back(j, row.values[e]);
    }
    std::sort(entries.begin(), entries.end());
    row.clear();
    for (const auto& [index, value] : entries) {
      row.indices.push_back(index);
      row.values.push_back(value);
    }
    row.indices.shrink_to_fit();
    row.values.shrink_to_fit();
  }
  return std::move(result_);
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
  const bool fixed = !options.fixed_vocabulary.empty();
  if (fixed && vocabulary != options.fixed_vocabulary) {
    return absl::InvalidArgumentError(
        "vocabulary differs from the config's fixed vocabulary; with a fixed vocabulary the state "
        "vocabulary must be that list, in that order");
  }
  for (size_t i = 0; i < vocabulary.size(); ++i) {
    if (vocabulary[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("vocabulary[", i, "] is empty"));
    }
    const absl::Status valid = ValidateUtf8(vocabulary[i]);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("vocabulary[", i, "]: ", valid.message()));
    }
    if (!fixed && i > 0 && !(vocabulary[i - 1] < vocabulary[i])) {
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
  v.analyzer_ = Analyzer(options.analyzer);
  v.vocabulary_ = std::move(vocabulary);
  v.document_frequency_ = std::move(document_frequency);
  v.num_documents_ = num_documents;
  v.BuildIndex();
  return v;
}

void CountVectorizer::BuildIndex() {
  index_.clear();
  short_index_.clear();
  for (uint32_t i = 0; i < vocabulary_.size(); ++i) {
    uint64_t key;
    if (PackShort(vocabulary_[i], &key)) {
      short_index_.emplace(key, i);
    } else {
      index_.emplace(vocabulary_[i], i);
    }
  }
}

void CountVectorizer::Transform(std::string_view text, AnalyzerScratch* scratch,
                                SparseVector* row) const {
  scratch->keys.clear();
  if (scratch->dense.size() < vocabulary_.size()) scratch->dense.resize(vocabulary_.size(), 0.0);
  analyzer_.Analyze(text, scratch, [&](std::string_view term) {
    const std::optional<uint32_t> index = FeatureIndex(term);
    if (index.has_value()) CountFeature(*index, &scratch->keys, &scratch->dense);
  });
  CountedRow(&scratch->keys, &scratch->dense, options_.binary, row);
}

void CountVectorizer::ToState(v1::VectorizerState* state) const {
  state->mutable_vocabulary()->Assign(vocabulary_.begin(), vocabulary_.end());
  state->mutable_document_frequency()->Assign(document_frequency_.begin(),
                                              document_frequency_.end());
  state->set_num_documents(num_documents_);
}

std::optional<uint32_t> CountVectorizer::FeatureIndex(std::string_view term) const {
  uint64_t key;
  if (PackShort(term, &key)) {
    const auto it = short_index_.find(key);
    if (it == short_index_.end()) return std::nullopt;
    return it->second;
  }
  const auto it = index_.find(View(term));
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

namespace {

absl::Status Validate(const v1::VectorizerConfig& config) {
  return CountVectorizerOptionsFromConfig(config).status();
}

class CountFitter final : public VectorizerFitter {
 public:
  explicit CountFitter(const CountVectorizerOptions& options) : fitter_(options) {}
  void Add(std::string_view text) override { fitter_.Add(text); }
  absl::StatusOr<VectorizerFit> Finish() override {
    MAAS_ASSIGN_OR_RETURN(CountVectorizer::FitResult fit, fitter_.Finish());
    VectorizerFit out;
    out.rows = std::move(fit.rows);
    out.vectorizer = std::make_unique<CountVectorizer>(std::move(fit.vectorizer));
    return out;
  }

 private:
  CountVectorizer::Fitter fitter_;
};

absl::StatusOr<std::unique_ptr<VectorizerFitter>> StartFit(const v1::VectorizerConfig& config) {
  MAAS_ASSIGN_OR_RETURN(const CountVectorizerOptions options,
                        CountVectorizerOptionsFromConfig(config));
  return std::unique_ptr<VectorizerFitter>(std::make_unique<CountFitter>(options));
}

absl::StatusOr<std::unique_ptr<Vectorizer>> FromStateKind(const v1::VectorizerState& state) {
  MAAS_ASSIGN_OR_RETURN(const CountVectorizerOptions options,
                        CountVectorizerOptionsFromConfig(state.config()));
  MAAS_ASSIGN_OR_RETURN(
      CountVectorizer v,
      CountVectorizer::FromState(
          options, std::vector<std::string>(state.vocabulary().begin(), state.vocabulary().end()),
          std::vector<uint64_t>(state.document_frequency().begin(),
                                state.document_frequency().end()),
          state.num_documents()));
  return std::unique_ptr<Vectorizer>(std::make_unique<CountVectorizer>(std::move(v)));
}

}  // namespace

const VectorizerKind kCountVectorizerKind = {"count", &Validate, &StartFit, &FromStateKind};

}  // namespace maas::discriminative
