#include "services/discriminative/core/hashing_vectorizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/numeric/bits.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "services/discriminative/core/count_simd.h"
#include "services/discriminative/core/count_vectorizer.h"
#include "services/discriminative/core/exp_simd.h"
#include "services/discriminative/core/hashing_simd.h"
#include "services/discriminative/core/term_table.h"

namespace maas::discriminative {
namespace {

// The most distinct columns of a row placed by counting ranks (n^2 / 4 vector compares); longer
// rows are sorted.
constexpr size_t kRankMaxColumns = 96;

}  // namespace

void NormalizeRow(RowNorm norm, SparseVector* row) {
  NormalizeRow(norm, absl::MakeSpan(row->values));
}

void NormalizeRow(RowNorm norm, absl::Span<double> values) {
  if (norm == RowNorm::kNone) return;
  double s = 0.0;
  if (norm == RowNorm::kL2) {
    for (const double v : values) s += v * v;
    if (s == 0.0) return;
    s = std::sqrt(s);
  } else {
    for (const double v : values) s += std::fabs(v);
    if (s == 0.0) return;
  }
  DivideAll(values.data(), values.size(), s);
}

RowNorm RowNormOf(v1::Norm norm) {
  switch (norm) {
    case v1::NORM_NONE:
      return RowNorm::kNone;
    case v1::NORM_L1:
      return RowNorm::kL1;
    default:
      return RowNorm::kL2;
  }
}

absl::StatusOr<HashingVectorizerOptions> HashingVectorizerOptionsFromConfig(
    const v1::VectorizerConfig& config) {
  if (!config.has_hashing()) {
    return absl::InvalidArgumentError("the vectorizer config is not hashing");
  }
  const v1::HashingVectorizerConfig& hashing = config.hashing();
  HashingVectorizerOptions options;
  MAAS_ASSIGN_OR_RETURN(options.analyzer, AnalyzerOptionsFromText(hashing.text()));
  options.decode_error = DecodeErrorOf(hashing.text());
  if (hashing.n_features() != 0) {
    if (hashing.n_features() >= 2147483647u) {
      return absl::InvalidArgumentError(
          absl::StrCat("The 'n_features' parameter of HashingVectorizer must be an int in the "
                       "range [1, 2147483647). Got ",
                       hashing.n_features(), " instead."));
    }
    options.n_features = hashing.n_features();
  }
  options.alternate_sign = !hashing.has_alternate_sign() || hashing.alternate_sign();
  options.binary = hashing.text().binary();
  if (hashing.norm() < v1::NORM_UNSPECIFIED || hashing.norm() > v1::NORM_L2) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown norm value ", static_cast<int>(hashing.norm())));
  }
  options.norm = RowNormOf(hashing.norm());
  return options;
}

int64_t HashingVectorizer::MemoryBytes() const {
  return static_cast<int64_t>(sizeof(*this)) + analyzer_.options().stop_words.MemoryBytes();
}

void HashingVectorizer::RestoreHeldLists(v1::VectorizerConfig* config) const {
  // Stop words came from the config's text options, which are therefore set.
  if (!analyzer_.options().stop_words.empty()) {
    RestoreStopWordList(analyzer_.options().stop_words, config->mutable_hashing()->mutable_text());
  }
}

// One text's hashed columns and their signed counts, in the scratch: an open-addressing table
// (scratch->keys: a power of two of at least twice the distinct columns, entries (column + 1) << 32
// | place, 0 empty), the distinct columns in first-occurrence order (scratch->ids) and each
// place's count (scratch->column_counts). No allocation once the scratch has grown.
class HashingVectorizer::ColumnCounts {
 public:
  // `terms`: about how many terms the text has (the table grows past it); never more distinct
  // columns than `n_features`, so a long text's table is sized by the smaller.
  ColumnCounts(AnalyzerScratch* scratch, size_t terms, size_t n_features) : scratch_(scratch) {
    scratch_->ids.clear();
    scratch_->column_counts.clear();
    Resize(std::max<size_t>(64, absl::bit_ceil(2 * std::min(terms, n_features))));
  }

  void Add(uint32_t column, double value) {
    uint64_t* table = scratch_->keys.data();
    const uint64_t key = static_cast<uint64_t>(column) + 1;
    for (size_t slot = Slot(column);; slot = (slot + 1) & mask_) {
      const uint64_t entry = table[slot];
      if (entry >> 32 == key) {
        scratch_->column_counts[static_cast<uint32_t>(entry)] += value;
        return;
      }
      if (entry == 0) {
        const size_t place = scratch_->ids.size();
        table[slot] = key << 32 | place;
        scratch_->ids.push_back(column);
        scratch_->column_counts.push_back(value);
        // The classifier's parameter row of this column, which it reads next (a hint only).
        if (scratch_->feature_rows != nullptr) {
          __builtin_prefetch(scratch_->feature_rows + column * scratch_->feature_row_stride);
        }
        if (2 * (place + 1) > mask_) Resize(2 * (mask_ + 1));
        return;
      }
    }
  }

  // The row in ascending column order, every count (or 1.0 when `binary`).
  void WriteRow(bool binary, SparseVector* row) {
    const size_t n = scratch_->ids.size();
    const uint32_t* columns = scratch_->ids.data();
    const double* counts = scratch_->column_counts.data();
    row->indices.resize(n);
    row->values.resize(n);
    uint32_t* out_index = row->indices.data();
    double* out_value = row->values.data();
    if (n <= kRankMaxColumns) {
      // Columns are distinct and below 2^31: each one's rank is how many are smaller.
      for (size_t i = 0; i < n; ++i) {
        const auto column = static_cast<int32_t>(columns[i]);
        uint32_t rank = 0;
        for (size_t j = 0; j < n; ++j) rank += static_cast<int32_t>(columns[j]) < column ? 1 : 0;
        out_index[rank] = columns[i];
        out_value[rank] = binary ? 1.0 : counts[i];
      }
      return;
    }
    std::vector<uint64_t>& order = scratch_->keys;  // the table is no longer needed
    order.resize(n);
    for (size_t i = 0; i < n; ++i) order[i] = static_cast<uint64_t>(columns[i]) << 32 | i;
    std::sort(order.begin(), order.end());
    for (size_t e = 0; e < n; ++e) {
      out_index[e] = static_cast<uint32_t>(order[e] >> 32);
      out_value[e] = binary ? 1.0 : counts[static_cast<uint32_t>(order[e])];
    }
  }

 private:
  size_t Slot(uint32_t column) const {
    return static_cast<size_t>((column * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  // An empty table of `capacity` (a power of two) slots holding the columns so far.
  void Resize(size_t capacity) {
    mask_ = capacity - 1;
    shift_ = 64 - absl::countr_zero(capacity);
    scratch_->keys.assign(capacity, 0);
    uint64_t* table = scratch_->keys.data();
    for (size_t place = 0; place < scratch_->ids.size(); ++place) {
      const uint32_t column = scratch_->ids[place];
      size_t slot = Slot(column);
      while (table[slot] != 0) slot = (slot + 1) & mask_;
      table[slot] = (static_cast<uint64_t>(column) + 1) << 32 | place;
    }
  }

  AnalyzerScratch* scratch_;
  size_t mask_ = 0;
  int shift_ = 64;
};

uint64_t HashingVectorizer::CharWbMemoTag(const AnalyzerOptions& analyzer, uint32_t n_features,
                                          bool alternate_sign) {
  const uint64_t fields[] = {0x68617368696e6721u,  // "hashing!": apart from the count vectorizers'
                             uint64_t{analyzer.ngram_min} << 32 | analyzer.ngram_max,
                             uint64_t{n_features} << 1 | (alternate_sign ? 1 : 0)};
  const uint64_t tag = TermTable::HashBytes(reinterpret_cast<const char*>(fields), sizeof(fields));
  return tag < 2 ? tag + 2 : tag;
}

uint32_t HashingVectorizer::TermOf(uint32_t h) const {
  // scikit-learn: column |h| mod n_features, with |INT32_MIN| = 2^31; sign of h with
  // alternate_sign. |h| < 2^32, so Lemire's multiply-shift remainder is exact.
  const bool negative = static_cast<int32_t>(h) < 0;
  const uint32_t magnitude = negative ? 0u - h : h;
  uint32_t column = magnitude & (n_features_ - 1);
  if (!power_of_two_) {
    const uint64_t low = remainder_multiplier_ * magnitude;
    column = static_cast<uint32_t>((static_cast<unsigned __int128>(low) * n_features_) >> 64);
  }
  return column | (alternate_sign_ && negative ? kHashedTermNegative : 0u);
}

void HashingVectorizer::AddTerm(uint32_t term, ColumnCounts* counts) {
  counts->Add(term & ~kHashedTermNegative, (term & kHashedTermNegative) != 0 ? -1.0 : 1.0);
}

void HashingVectorizer::RunsRow(std::string_view doc, const AsciiRuns& runs, bool lower,
                                AnalyzerScratch* scratch, SparseVector* row) const {
  std::vector<uint32_t>& hashes = scratch->run_hashes;
  if (hashes.size() < runs.count) hashes.resize(runs.count);
  uint32_t* terms = hashes.data();
  const size_t min_bytes = analyzer_.MinTermBytes();
  if (power_of_two_ && min_bytes == 2) {  // hashed, mapped and compacted in the vector lanes
    TermsRow(terms, HashAsciiRunTerms(doc, runs, lower, n_features_, alternate_sign_, terms),
             scratch, row);
    return;
  }
  HashAsciiRuns(doc, runs, lower, terms);
  // Each hash becomes its term in place (m <= k), the runs shorter than the pattern's terms (1
  // byte, unless they may be one code point: \w+) dropped.
  size_t m = 0;
  for (size_t k = 0; k < runs.count; ++k) {
    terms[m] = TermOf(terms[k]);
    m += runs.ends[k] - runs.starts[k] >= min_bytes ? 1 : 0;
  }
  TermsRow(terms, m, scratch, row);
}

void HashingVectorizer::TermsRow(uint32_t* terms, size_t m, AnalyzerScratch* scratch,
                                 SparseVector* row) const {
  const CountSimdPath path = BestCountSimdPath();
  if (m <= kMaxListedTerms && path != CountSimdPath::kBaseline) {  // (the baseline has no ranks)
    row->indices.resize(m);
    row->values.resize(m);
    size_t distinct = 0;
    if (HashedTermsRowWith(path, terms, m, binary_, scratch, row->indices.data(),
                           row->values.data(), &distinct)) {
      row->indices.resize(distinct);
      row->values.resize(distinct);
      NormalizeRow(norm_, row);
      return;
    }
  }
  // The baseline path, or a very long text: a table from column to place, then sorted.
  ColumnCounts counts(scratch, m, n_features_);
  for (size_t i = 0; i < m; ++i) AddTerm(terms[i], &counts);
  FinishRow(&counts, row);
}

void HashingVectorizer::FinishRow(ColumnCounts* counts, SparseVector* row) const {
  counts->WriteRow(binary_, row);
  NormalizeRow(norm_, row);
}

bool HashingVectorizer::TransformIfWellFormed(std::string_view text, AnalyzerScratch* scratch,
                                              SparseVector* row) const {
  AsciiRuns runs;
  std::string_view doc;
  bool lower = false;
  if (!analyzer_.AsciiUnigrams() ||
      !analyzer_.WellFormedTermRuns(text, scratch, &runs, &doc, &lower)) {
    return false;
  }
  RunsRow(doc, runs, lower, scratch, row);
  return true;
}

void HashingVectorizer::Transform(std::string_view text, AnalyzerScratch* scratch,
                                  SparseVector* row) const {
  if (TransformIfWellFormed(text, scratch, row)) return;
  if (analyzer_.AsciiUnigrams()) {
    // Code points >= 0x80 with strip_accents or without lowercasing: the word runs of the
    // preprocessed text.
    const std::string_view doc = analyzer_.Preprocess(text, scratch);
    AsciiRuns runs;
    if (analyzer_.TermRuns(doc, scratch, &runs)) {
      RunsRow(doc, runs, /*lower=*/false, scratch, row);
      return;
    }
  }
  // Other analyzers (char n-grams, word n-grams, custom patterns): the terms listed, as the word
  // runs' are, until there are more than kMaxListedTerms; then all counted in the table.
  std::vector<uint32_t>& terms = scratch->run_hashes;
  size_t m = 0;
  std::optional<ColumnCounts> counts;
  const auto add = [&](uint32_t hashed) {
    if (counts.has_value()) {
      AddTerm(hashed, &*counts);
      return;
    }
    if (m == terms.size()) terms.resize(std::max<size_t>(256, 2 * m));
    terms[m++] = hashed;
    if (m > kMaxListedTerms) {
      counts.emplace(scratch, text.size() / 4, n_features_);
      for (size_t i = 0; i < m; ++i) AddTerm(terms[i], &*counts);
    }
  };
  if (analyzer_.options().kind == AnalyzerKind::kCharWb) {
    // Through the scratch's word memo, as the count vectorizer's char_wb (ForEachCharWbWordIds): a
    // word's terms are listed at once while the list has room.
    const auto id_of = [&](std::string_view gram) { return TermOf(MurmurHash3X86_32(gram, 0)); };
    ForEachCharWbWordIds(analyzer_, text, memo_tag_, scratch, id_of,
                         [&](const uint32_t* word_terms, size_t n) {
                           if (!counts.has_value() && m + n <= kMaxListedTerms) {  // at once
                             if (m + n > terms.size()) terms.resize(2 * (m + n));
                             std::copy(word_terms, word_terms + n, terms.data() + m);
                             m += n;
                             return;
                           }
                           for (size_t i = 0; i < n; ++i) add(word_terms[i]);
                         });
  } else {
    analyzer_.AnalyzeBatches(text, scratch, [&](absl::Span<const std::string_view> batch) {
      for (const std::string_view term : batch) add(TermOf(MurmurHash3X86_32(term, 0)));
    });
  }
  if (counts.has_value()) {
    FinishRow(&*counts, row);
  } else {
    TermsRow(terms.data(), m, scratch, row);
  }
}

namespace {

absl::Status Validate(const v1::VectorizerConfig& config) {
  return HashingVectorizerOptionsFromConfig(config).status();
}

class HashingFitter final : public VectorizerFitter {
 public:
  explicit HashingFitter(HashingVectorizerOptions options)
      : vectorizer_(std::make_unique<HashingVectorizer>(std::move(options))) {}
  absl::Status Add(std::string_view text) override {
    vectorizer_->Transform(text, &scratch_, &row_);
    forecast_.BeforeAppend(row_.indices.size(), text.size(), &rows_);
    rows_.Append(row_);
    return scratch_.token_matcher.status();
  }
  void Expect(size_t texts, size_t bytes) override { forecast_.Expect(texts, bytes); }
  int64_t MemoryBytes() const override { return rows_.MemoryBytes(); }
  absl::StatusOr<VectorizerFit> Finish() override {
    VectorizerFit fit;
    fit.rows = std::move(rows_);
    fit.vectorizer = std::move(vectorizer_);
    return fit;
  }

 private:
  std::unique_ptr<HashingVectorizer> vectorizer_;
  AnalyzerScratch scratch_;
  SparseVector row_;
  SparseRows rows_;
  SparseRowsForecast forecast_;
};

absl::StatusOr<std::unique_ptr<VectorizerFitter>> StartFit(const v1::VectorizerConfig& config) {
  MAAS_ASSIGN_OR_RETURN(HashingVectorizerOptions options,
                        HashingVectorizerOptionsFromConfig(config));
  return std::unique_ptr<VectorizerFitter>(std::make_unique<HashingFitter>(std::move(options)));
}

absl::StatusOr<std::unique_ptr<Vectorizer>> FromStateKind(v1::VectorizerState* state) {
  MAAS_ASSIGN_OR_RETURN(HashingVectorizerOptions options,
                        HashingVectorizerOptionsFromConfig(state->config()));
  if (state->vocabulary_size() != 0) {
    return absl::InvalidArgumentError(
        "vectorizer.vocabulary must be empty for a hashing vectorizer (it learns no terms)");
  }
  return std::unique_ptr<Vectorizer>(std::make_unique<HashingVectorizer>(std::move(options)));
}

// Stateless: every batch hashes the same way.
absl::Status CheckPartialKind(const v1::VectorizerConfig&) { return absl::OkStatus(); }

// The stop word list (RestoreHeldLists).
std::vector<google::protobuf::RepeatedPtrField<std::string>*> HeldLists(
    v1::VectorizerConfig* config) {
  if (!config->has_hashing() || !config->hashing().has_text()) return {};
  return {config->mutable_hashing()->mutable_text()->mutable_stop_word_list()};
}

}  // namespace

const VectorizerKind kHashingVectorizerKind = {"hashing",      &Validate,         &StartFit,
                                               &FromStateKind, &CheckPartialKind, &HeldLists};

}  // namespace maas::discriminative
