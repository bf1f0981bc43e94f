#include "services/discriminative/core/hashing_vectorizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "services/discriminative/core/count_vectorizer.h"
#include "services/discriminative/core/exp_simd.h"

namespace maas::discriminative {
namespace {

inline uint32_t Rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

}  // namespace

uint32_t MurmurHash3X86_32(std::string_view data, uint32_t seed) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const size_t n = data.size();
  const size_t blocks = n / 4;
  constexpr uint32_t c1 = 0xcc9e2d51, c2 = 0x1b873593;
  uint32_t h = seed;
  for (size_t i = 0; i < blocks; ++i) {
    uint32_t k = static_cast<uint32_t>(bytes[4 * i]) |
                 static_cast<uint32_t>(bytes[4 * i + 1]) << 8 |
                 static_cast<uint32_t>(bytes[4 * i + 2]) << 16 |
                 static_cast<uint32_t>(bytes[4 * i + 3]) << 24;
    k *= c1;
    k = Rotl(k, 15);
    k *= c2;
    h ^= k;
    h = Rotl(h, 13);
    h = h * 5 + 0xe6546b64;
  }
  const unsigned char* tail = bytes + blocks * 4;
  uint32_t k = 0;
  switch (n & 3) {
    case 3:
      k ^= static_cast<uint32_t>(tail[2]) << 16;
      [[fallthrough]];
    case 2:
      k ^= static_cast<uint32_t>(tail[1]) << 8;
      [[fallthrough]];
    case 1:
      k ^= tail[0];
      k *= c1;
      k = Rotl(k, 15);
      k *= c2;
      h ^= k;
  }
  h ^= static_cast<uint32_t>(n);
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

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

void HashingVectorizer::Transform(std::string_view text, AnalyzerScratch* scratch,
                                  SparseVector* row) const {
  // Key: column << 1 | (sign < 0), so one sort groups the columns.
  std::vector<uint64_t>& keys = scratch->keys;
  keys.clear();
  const uint32_t n = n_features_;
  analyzer_.Analyze(text, scratch, [&](std::string_view term) {
    const auto h = static_cast<int32_t>(MurmurHash3X86_32(term, 0));
    uint32_t column;
    if (h == INT32_MIN) {
      column = static_cast<uint32_t>((uint64_t{1} << 31) % n);
    } else {
      column = static_cast<uint32_t>(static_cast<uint32_t>(h < 0 ? -h : h) % n);
    }
    const bool negative = alternate_sign_ && h < 0;
    keys.push_back(static_cast<uint64_t>(column) << 1 | (negative ? 1 : 0));
  });
  std::sort(keys.begin(), keys.end());
  row->clear();
  for (size_t i = 0; i < keys.size();) {
    const uint64_t column = keys[i] >> 1;
    double sum = 0.0;
    size_t j = i;
    for (; j < keys.size() && (keys[j] >> 1) == column; ++j) sum += (keys[j] & 1) ? -1.0 : 1.0;
    row->indices.push_back(static_cast<uint32_t>(column));
    row->values.push_back(binary_ ? 1.0 : sum);
    i = j;
  }
  NormalizeRow(norm_, row);
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
