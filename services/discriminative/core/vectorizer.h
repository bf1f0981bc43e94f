// The Vectorizer interface (a fitted scikit-learn text vectorizer: texts -> sparse rows) and the
// registry mapping a VectorizerConfig kind (the name of the `kind` oneof field: "count",
// "hashing") to its implementation. Adding a vectorizer is one file pair implementing
// VectorizerKind plus one line in vectorizer_registry.cc. TF-IDF (VectorizerConfig.tfidf) is a
// layer over any kind (tfidf.h).
//
//   MAAS_ASSIGN_OR_RETURN(VectorizerFit fit, FitVectorizer(config, texts));
//   AnalyzerScratch scratch;  SparseVector row;
//   fit.vectorizer->Transform("some text", &scratch, &row);
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_VECTORIZER_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_VECTORIZER_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/exec/stop_token.h"
#include "maas/discriminative/v1/discriminative.pb.h"
#include "services/discriminative/core/large_array.h"
#include "services/discriminative/core/text_analysis.h"

namespace maas::discriminative {

// A sparse row: feature indices and their values (same length).
struct SparseVector {
  std::vector<uint32_t> indices;
  std::vector<double> values;
  void clear() {
    indices.clear();
    values.clear();
  }
};

// One row of a sparse matrix, read only: feature indices and their values (same length).
struct SparseRowRef {
  absl::Span<const uint32_t> indices;
  absl::Span<const double> values;
};

// A sparse matrix in CSR form (scikit-learn's X), the rows a vectorizer fit produces: row r is
// entries [offsets[r], offsets[r + 1]) of `indices` and `values`. Three arrays for all the rows
// instead of two allocations per row, so building, reading and freeing them is cheap.
struct SparseRows {
  // Their storage: GrowingArrayAllocator (large_array.h).
  GrowingVector<size_t> offsets = {0};
  GrowingVector<uint32_t> indices;
  GrowingVector<double> values;

  size_t size() const { return offsets.size() - 1; }
  bool empty() const { return size() == 0; }
  SparseRowRef operator[](size_t r) const {
    const size_t begin = offsets[r], n = offsets[r + 1] - begin;
    return {absl::MakeConstSpan(indices.data() + begin, n),
            absl::MakeConstSpan(values.data() + begin, n)};
  }
  // Row r's values, writable (TF-IDF weighting in place).
  absl::Span<double> mutable_values(size_t r) {
    return absl::MakeSpan(values.data() + offsets[r], offsets[r + 1] - offsets[r]);
  }
  // Appends a row. REQUIRES: indices.size() == values.size().
  void Append(absl::Span<const uint32_t> row_indices, absl::Span<const double> row_values) {
    indices.insert(indices.end(), row_indices.begin(), row_indices.end());
    values.insert(values.end(), row_values.begin(), row_values.end());
    offsets.push_back(indices.size());
  }
  void Append(const SparseVector& row) { Append(row.indices, row.values); }
  // Heap bytes held (the three arrays' capacities).
  int64_t MemoryBytes() const {
    return static_cast<int64_t>(offsets.capacity() * sizeof(size_t) +
                                indices.capacity() * sizeof(uint32_t) +
                                values.capacity() * sizeof(double));
  }
  // Room for `rows` more rows of `entries` more entries (growing at least geometrically, so that
  // many small reservations cost no more copying than appending).
  void Reserve(size_t rows, size_t entries) {
    const auto grow = [](auto& v, size_t more) {
      if (v.size() + more > v.capacity()) v.reserve(std::max(v.size() + more, 2 * v.capacity()));
    };
    grow(offsets, rows);
    grow(indices, entries);
    grow(values, entries);
  }
  void clear() {
    offsets.assign(1, 0);
    indices.clear();
    values.clear();
  }
};

// Grows a SparseRows ahead of its appends from a forecast, so that its arrays are copied a few
// times while small and then allocated about once at their final size (doubling would copy the
// whole matrix and, while copying, hold up to twice its size). The forecast is the text bytes
// still expected (Expect) times the entries per byte of the texts seen so far, once 64 texts or
// 64 KiB have been seen; before that, and without Expect, the arrays double.
class SparseRowsForecast {
 public:
  void Expect(size_t texts, size_t bytes) {
    texts_left_ += texts;
    bytes_left_ += bytes;
  }
  // Call before appending the row (`entries` entries) of a text of `bytes` bytes.
  void BeforeAppend(size_t entries, size_t bytes, SparseRows* rows) {
    ++texts_seen_;
    bytes_seen_ += bytes;
    texts_left_ -= std::min<size_t>(1, texts_left_);
    bytes_left_ -= std::min(bytes, bytes_left_);
    const size_t needed = rows->indices.size() + entries;
    if (needed <= rows->indices.capacity() && rows->offsets.size() < rows->offsets.capacity()) {
      return;
    }
    size_t more_entries = entries, more_rows = 1;
    if ((texts_seen_ >= 64 || bytes_seen_ >= 65536) && bytes_seen_ > 0) {
      const double per_byte = static_cast<double>(needed) / static_cast<double>(bytes_seen_);
      // 5% over the forecast (virtual memory until written), at most 1024 times the current size.
      const double forecast = 1.05 * per_byte * static_cast<double>(bytes_left_);
      more_entries += static_cast<size_t>(std::min(forecast, 1024.0 * static_cast<double>(needed)));
      more_rows += texts_left_;
    }
    rows->Reserve(more_rows, more_entries);
  }

 private:
  size_t texts_left_ = 0;
  size_t bytes_left_ = 0;
  size_t texts_seen_ = 0;
  size_t bytes_seen_ = 0;
};

// Read access to the rows a classifier fits on, in either form (the vectorizer fit's CSR matrix,
// or a list of rows in tests and tools); converts implicitly from both, never copies.
class SparseRowsView {
 public:
  SparseRowsView(const SparseRows& rows)  // NOLINT(google-explicit-constructor)
      : csr_(&rows), size_(rows.size()) {}
  SparseRowsView(const std::vector<SparseVector>& rows)  // NOLINT(google-explicit-constructor)
      : list_(rows.data()), size_(rows.size()) {}

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  SparseRowRef operator[](size_t r) const {
    if (list_ != nullptr) return {list_[r].indices, list_[r].values};
    return (*csr_)[r];
  }

 private:
  const SparseRows* csr_ = nullptr;
  const SparseVector* list_ = nullptr;
  size_t size_ = 0;
};

// A fitted vectorizer. Immutable; const methods may be called concurrently (each thread with its
// own scratch).
class Vectorizer {
 public:
  virtual ~Vectorizer() = default;

  // Number of features (columns).
  virtual size_t num_features() const = 0;

  // scikit-learn's transform([text]) for one valid UTF-8 text into *row (cleared first): strictly
  // ascending indices, the values scikit-learn stores (explicit zeros included where it keeps
  // them). No heap allocation once scratch and row have grown.
  virtual void Transform(std::string_view text, AnalyzerScratch* scratch,
                         SparseVector* row) const = 0;

  // Transform for a text that may not have been decoded yet: when the vectorizer has a path that
  // finds `text` well-formed UTF-8 on its way (ASCII, or valid UTF-8 checked as it is read: then
  // decoding leaves it unchanged under every decode_error), writes Transform(text)'s row and
  // returns true; otherwise returns false with *row unspecified, and the caller decodes and calls
  // Transform. Saves the separate UTF-8 pass.
  virtual bool TransformIfWellFormed(std::string_view /*text*/, AnalyzerScratch* /*scratch*/,
                                     SparseVector* /*row*/) const {
    return false;
  }

  // Whether some text's row may hold a value <= 0: signed hashing's sums (negative, or an explicit
  // zero where the signs cancel). Counts and weights of counts are > 0.
  virtual bool MayGiveNonPositive() const { return false; }
  // Whether some text's row may come out holding NaN or an infinity (tf-idf's sublinear_tf over
  // values <= 0: log(x) + 1), and what scikit-learn's transform then does: keeps them (kKept; its
  // classifiers refuse them, "Input X contains NaN", as the pipeline's classification does) or
  // refuses the text (kRefused: a norm's check, "Input contains NaN", as the pipeline's Vectorize
  // and classification do).
  enum class NonFinite { kNever, kKept, kRefused };
  virtual NonFinite NonFiniteRows() const { return NonFinite::kNever; }

  // The term of feature `index`, or "" when the vectorizer does not know it (hashing).
  virtual std::string FeatureName(uint32_t index) const = 0;

  // The fitted state (vocabulary, idf, document counts; the caller sets the config) for storage
  // and export; the kind's from_state(ToState() + config) is identical.
  virtual void ToState(v1::VectorizerState* state) const = 0;

  // The lists of the configuration this vectorizer was made from that it holds itself (a count
  // vectorizer's fixed vocabulary, count.vocabulary; the analyzer's stop_word_list), written back
  // into *config exactly as they were given (order, repeats, bytes). *config is that configuration
  // without them (ClearHeldLists): a holder of the vectorizer keeps its configuration so, and each
  // term and stop word is held once.
  virtual void RestoreHeldLists(v1::VectorizerConfig* config) const = 0;

  // Bytes this fitted vectorizer holds in memory (the object, its vocabulary, index and tables),
  // for the model cache's byte budget.
  virtual int64_t MemoryBytes() const = 0;

  // Convenience for tests and tools (allocates).
  SparseVector Transform(std::string_view text) const {
    AnalyzerScratch scratch;
    SparseVector row;
    Transform(text, &scratch, &row);
    return row;
  }
};

// fit_transform's result: the fitted vectorizer and one row per text in scikit-learn's CSR storage
// order (which fixes the floating-point order of TF-IDF norms; classifiers do not depend on it).
struct VectorizerFit {
  std::unique_ptr<Vectorizer> vectorizer;
  SparseRows rows;
  // Stored entries per column of `rows` (np.bincount(X.indices), TF-IDF's df) when the fitter
  // counted them anyway (count vectorizer); empty: not known (TF-IDF then counts them).
  std::vector<uint64_t> document_frequency;
};

// fit_transform one text at a time, so a trainer keeps sparse rows, never the texts.
class VectorizerFitter {
 public:
  virtual ~VectorizerFitter() = default;
  // Adds the next text. REQUIRES: valid UTF-8. Errors: the text could not be analyzed (a custom
  // token_pattern over its matching limits, see TokenPattern::FindTokens); the fit is then
  // unusable.
  virtual absl::Status Add(std::string_view text) = 0;
  // A hint that `texts` more texts of `bytes` bytes in all follow (so the rows can be allocated
  // once instead of grown by copying). Optional; no effect on results.
  virtual void Expect(size_t /*texts*/, size_t /*bytes*/) {}
  // Heap bytes held so far: the rows and, for a learned vocabulary, the terms (what a trainer's
  // --max_train_memory_bytes bounds; grows with every Add).
  virtual int64_t MemoryBytes() const = 0;
  // The most heap bytes the fitter may hold (MemoryBytes() and the working memory of the text being
  // added) before it gives up: Add then returns RESOURCE_EXHAUSTED, possibly in the middle of a
  // text, and the fit is unusable. Without a call: no bound. A fitter that grows per text by no
  // more than the text's row may ignore it (its caller checks MemoryBytes() between texts); one
  // that learns terms must not, since one text can add millions of them (char n-grams 1-16).
  virtual void SetMemoryBudget(int64_t /*bytes*/) {}
  // The fitted vectorizer and the rows of every text added, in order (call once). Errors as the
  // kind's fit_transform (empty vocabulary, min_df/max_df, ...).
  virtual absl::StatusOr<VectorizerFit> Finish() = 0;
};

// One vectorizer implementation.
struct VectorizerKind {
  // The VectorizerConfig `kind` oneof field it implements.
  std::string_view name;
  // Checks every parameter: INVALID_ARGUMENT for values scikit-learn rejects, UNIMPLEMENTED for
  // parameters not supported, each naming the parameter.
  absl::Status (*validate)(const v1::VectorizerConfig& config);
  // A fitter for a valid config (fit_transform = Add every text, then Finish).
  absl::StatusOr<std::unique_ptr<VectorizerFitter>> (*start_fit)(
      const v1::VectorizerConfig& config);
  // A fitted vectorizer from stored/imported state, validated thoroughly (INVALID_ARGUMENT). Takes
  // the state's large fields (vocabulary, document_frequency): moved out, and their memory freed,
  // as they are converted; the config and the other fields stay.
  absl::StatusOr<std::unique_ptr<Vectorizer>> (*from_state)(v1::VectorizerState* state);
  // Partial training (Train with partial: each call's texts go through the same transform, and
  // the classifier continues with scikit-learn's partial_fit) needs features that do not depend on
  // the training data. OK when this valid config has that property, else INVALID_ARGUMENT saying
  // why. nullptr: the kind never does.
  absl::Status (*check_partial)(const v1::VectorizerConfig& config) = nullptr;
  // The lists of a config of this kind that a vectorizer made from it holds itself (those its
  // RestoreHeldLists writes back), of the messages that are set (none is created). nullptr: none.
  std::vector<google::protobuf::RepeatedPtrField<std::string>*> (*held_lists)(
      v1::VectorizerConfig* config) = nullptr;
  // The stored form (the model store's file; CompactStoredState): takes out of state->config() a
  // list that the state holds as well, the same entries in the same order (a fixed vocabulary,
  // which is state->vocabulary), marking the state so (fixed_vocabulary_in_state), so that the
  // file holds it once. Leaves a state whose lists differ as it is. from_state builds from either
  // form; expand_stored puts the list back (the full spec, as ToSpec gives it). nullptr for both:
  // the kind's state repeats no list of its config (a marked state is then refused).
  void (*compact_stored)(v1::VectorizerState* state) = nullptr;
  void (*expand_stored)(v1::VectorizerState* state) = nullptr;
};

// The name of the config's kind ("count" when unset).
std::string VectorizerKindName(const v1::VectorizerConfig& config);
// The implementation of a kind, or nullptr.
const VectorizerKind* FindVectorizerKind(std::string_view name);
// The text options of whichever kind the config holds.
const v1::TextOptions& TextOptionsOf(const v1::VectorizerConfig& config);

// Takes the lists that a vectorizer made from *config holds out of it (count.vocabulary, the text
// options' stop_word_list; Vectorizer::RestoreHeldLists writes them back), freeing their memory.
// Creates no field that was not set.
void ClearHeldLists(v1::VectorizerConfig* config);
// A copy of *config without those lists, made without copying them (they are set aside while the
// rest is copied, then put back: *config ends as it was).
v1::VectorizerConfig CopyWithoutHeldLists(v1::VectorizerConfig* config);

// The stored form of a full state (what the model store's file holds): the lists of its config that
// the state holds as well left out of the config, marked (the kind's compact_stored). A state of a
// kind without a stored form, or whose lists differ, is left as it is.
void CompactStoredState(v1::VectorizerState* state);
// The full state back from its stored form (the kind's expand_stored): the config as it was given,
// fixed_vocabulary_in_state false. A full state is left as it is.
void ExpandStoredState(v1::VectorizerState* state);

// The whole vectorizer of a config (its kind, then TF-IDF when config.tfidf is set).
absl::Status ValidateVectorizerConfig(const v1::VectorizerConfig& config);
// A fitter for the whole vectorizer of a config (TF-IDF applied in Finish).
absl::StatusOr<std::unique_ptr<VectorizerFitter>> StartVectorizerFit(
    const v1::VectorizerConfig& config);
// fit_transform of valid UTF-8 texts; `stop` checked every 1024 texts.
absl::StatusOr<VectorizerFit> FitVectorizer(const v1::VectorizerConfig& config,
                                            const std::vector<std::string_view>& texts,
                                            const exec::StopToken& stop = {});
// The forms of a state a build accepts: the full form of an import (CreateModel; a state with
// fixed_vocabulary_in_state is refused, INVALID_ARGUMENT) or also the stored form of the model
// store's file (CompactStoredState; a model stored before it had one is in the full form).
enum class StateForm { kFull, kFullOrStored };

// A fitted vectorizer from imported state (its kind's, then TF-IDF when config.tfidf is set),
// validated thoroughly (INVALID_ARGUMENT; UNIMPLEMENTED for an unsupported kind).
absl::StatusOr<std::unique_ptr<Vectorizer>> VectorizerFromState(const v1::VectorizerState& state);
// The same, taking *state's large fields (vocabulary, document_frequency, idf): each is moved out
// and its memory freed as it is converted, so that at most one of them is held twice (a load
// builds the vectorizer from the message it parsed, which it then drops). *state keeps its config
// and small fields; after an error its large fields are unspecified.
absl::StatusOr<std::unique_ptr<Vectorizer>> VectorizerFromState(v1::VectorizerState* state,
                                                                StateForm form = StateForm::kFull);
// Whether the whole vectorizer of a valid config supports partial training (its kind's
// check_partial; TF-IDF only without use_idf, since idf needs every document): OK or
// INVALID_ARGUMENT saying why.
absl::Status CheckPartialVectorizer(const v1::VectorizerConfig& config);
// Family name part, e.g. "count", "hashing+tfidf".
std::string VectorizerFamily(const v1::VectorizerConfig& config);

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_VECTORIZER_H_
