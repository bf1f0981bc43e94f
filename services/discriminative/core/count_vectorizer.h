// CountVectorizer with scikit-learn's semantics: analyzers word / char / char_wb, lowercase,
// strip_accents, stop words ('english' or a list), n-grams, min_df / max_df, max_features, binary,
// a fixed vocabulary; learned vocabulary sorted by code point, sparse term counts.
//
// One deliberate difference: max_features keeps the terms with the highest corpus counts and
// breaks ties at the cutoff by feature (code point) order; scikit-learn's order there comes from
// numpy's unstable, CPU-specific argsort and is not reproducible.
//
//   MAAS_ASSIGN_OR_RETURN(CountVectorizerOptions options,
//   CountVectorizerOptionsFromConfig(config)); MAAS_ASSIGN_OR_RETURN(CountVectorizer::FitResult
//   fit, CountVectorizer::FitTransform(texts, options)); SparseVector row =
//   fit.vectorizer.Transform("some text");
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_COUNT_VECTORIZER_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_COUNT_VECTORIZER_H_

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "maas/discriminative/v1/discriminative.pb.h"
#include "services/discriminative/core/term_table.h"
#include "services/discriminative/core/text_analysis.h"
#include "services/discriminative/core/vectorizer.h"

namespace maas::discriminative {

// scikit-learn's min_df / max_df: an absolute document count (int) or a fraction of the documents
// (float).
struct DocumentFrequencyBound {
  bool is_fraction = false;
  double value = 1.0;  // Count >= 1 when !is_fraction, fraction in [0, 1] otherwise.
};

// Largest custom stop word list and fixed vocabulary accepted in a config.
inline constexpr size_t kMaxStopWords = 10'000;

struct CountVectorizerOptions {
  AnalyzerOptions analyzer;
  DecodeError decode_error = DecodeError::kStrict;
  bool binary = false;
  DocumentFrequencyBound min_df{/*is_fraction=*/false, 1.0};
  DocumentFrequencyBound max_df{/*is_fraction=*/true, 1.0};
  // 0: no limit.
  uint64_t max_features = 0;
  // Non-empty: scikit-learn's vocabulary= (feature i is fixed_vocabulary[i]). A vectorizer made
  // with these options holds the terms in its index only (and the analyzer options, stop words
  // included, in its analyzer only): each term's and stop word's bytes once.
  std::vector<std::string> fixed_vocabulary;
};

// The analyzer and decode options of TextOptions (shared by every vectorizer). Errors:
// INVALID_ARGUMENT for values scikit-learn rejects (ngram_min > ngram_max, unknown stop list, both
// stop_words and stop_word_list, bad words) and for a token_pattern that does not compile or uses
// a refused construct (see TokenPattern::Compile; ignored by the char analyzers, as scikit-learn).
absl::StatusOr<AnalyzerOptions> AnalyzerOptionsFromText(const v1::TextOptions& text);
DecodeError DecodeErrorOf(const v1::TextOptions& text);
// AnalyzerOptionsFromText's stop word list read back: writes `stop_words`, read from *text's
// stop_word_list, back into it as given (REQUIRES: the list is empty); nothing when they are
// stop_words "english"'s.
void RestoreStopWordList(const StopWords& stop_words, v1::TextOptions* text);

// Validates a count (or unset) VectorizerConfig and returns the options it describes.
absl::StatusOr<CountVectorizerOptions> CountVectorizerOptionsFromConfig(
    const v1::VectorizerConfig& config);

// Writes the features counted for one text into *row in ascending index order and resets the
// scratch: scratch->ids holds the distinct feature ids (each < num_features), scratch->dense[id]
// their values (every other entry 0). Afterwards ids is empty and dense is all 0 again. With
// `binary` every value is 1. No allocation once row and scratch have grown.
void OrderedRow(size_t num_features, bool binary, AnalyzerScratch* scratch, SparseVector* row);
// OrderedRow into out_index[0..n) and out_value[0..n) (n = the number of ids, returned); the
// outputs may be the entries the ids were read from.
size_t OrderedRowInto(size_t num_features, bool binary, AnalyzerScratch* scratch,
                      uint32_t* out_index, double* out_value);

class CountVectorizer final : public Vectorizer {
 public:
  struct FitResult;
  class Fitter;

  // CountVectorizer(...).fit_transform(texts): learns the vocabulary (terms in code point order,
  // pruned by min_df/max_df, then max_features) or uses the fixed one, and returns the count rows
  // of `texts` in scikit-learn's storage order (spec 2.8: a learned vocabulary's rows in order of
  // the terms' first occurrence in the corpus, a fixed vocabulary's in ascending index order).
  // Errors: INVALID_ARGUMENT for invalid UTF-8 (naming the text index), an empty vocabulary,
  // inconsistent min_df/max_df, or nothing left after pruning; whatever `stop` answers (checked
  // every 1024 texts).
  static absl::StatusOr<FitResult> FitTransform(const std::vector<std::string>& texts,
                                                const CountVectorizerOptions& options,
                                                const exec::StopToken& stop = {});
  static absl::StatusOr<FitResult> FitTransformViews(const std::vector<std::string_view>& texts,
                                                     const CountVectorizerOptions& options,
                                                     const exec::StopToken& stop = {});

  // What a state's vocabulary is: kLearnedOrOptions, the learned vocabulary, or, when the options
  // have a fixed one, that list again; kFixed, the fixed vocabulary itself (a stored state whose
  // config leaves the list out: fixed_vocabulary_in_state; the options then have none).
  enum class StateVocabulary { kLearnedOrOptions, kFixed };

  // A fitted vectorizer from its state. Errors (INVALID_ARGUMENT): empty vocabulary, a term that is
  // empty or not valid UTF-8, terms not strictly ascending in code point order (or, with a fixed
  // vocabulary, not equal to it; kFixed: a term given twice, or options with a fixed vocabulary
  // too), document_frequency of the wrong length.
  static absl::StatusOr<CountVectorizer> FromState(
      const CountVectorizerOptions& options, std::vector<std::string> vocabulary,
      std::vector<uint64_t> document_frequency, uint64_t num_documents,
      StateVocabulary what = StateVocabulary::kLearnedOrOptions);

  using Vectorizer::Transform;
  // transform([text]) for one text: counts of known terms, unknown terms skipped.
  void Transform(std::string_view text, AnalyzerScratch* scratch, SparseVector* row) const override;
  // The word analyzer's path from the term runs (unigrams, Analyzer::UnigramsBeforeStopWords, or
  // n-grams, Analyzer::RunNgrams) on ASCII text, and, when preprocessing is only lowercasing, on
  // text that LowerWordRuns lowercases and splits in one pass. (Transform takes the same lookups
  // on the runs of any other text's preprocessed form.)
  bool TransformIfWellFormed(std::string_view text, AnalyzerScratch* scratch,
                             SparseVector* row) const override;
  size_t num_features() const override { return index_.size(); }
  std::string FeatureName(uint32_t index) const override {
    return index < index_.size() ? std::string(index_.term(index)) : std::string();
  }
  void ToState(v1::VectorizerState* state) const override;
  // A fixed vocabulary (the terms in feature order: as given) and the stop word list.
  void RestoreHeldLists(v1::VectorizerConfig* config) const override;
  int64_t MemoryBytes() const override;

  // The index of `term`, if it is in the vocabulary.
  std::optional<uint32_t> FeatureIndex(std::string_view term) const;

  // Term `index` (get_feature_names_out()[index]), a view into the index's arena, valid as long as
  // the vectorizer. REQUIRES: index < num_features().
  std::string_view term(uint32_t index) const { return index_.term(index); }
  // Documents containing each term in the fitted corpus (empty if unknown).
  const std::vector<uint64_t>& document_frequency() const { return document_frequency_; }
  // Documents in the fitted corpus (0 if unknown).
  uint64_t num_documents() const { return num_documents_; }

 private:
  CountVectorizer() : analyzer_(AnalyzerOptions()) {}
  // Makes index_ the vocabulary of the terms of an arena (TermTable::Assign), placed by
  // document_frequency_ when it has one value per term.
  void BuildIndex(LargeString bytes, LargeVector<size_t> offsets);
  // Counts the 1-byte runs of `runs` over `doc` (lowercased when `lower`) that are terms (with
  // single_byte_terms_; else nothing), after CountAsciiUnigramsWith counted the others.
  void CountSingleByteRuns(std::string_view doc, const AsciiRuns& runs, bool lower,
                           AnalyzerScratch* scratch) const;
  // Counts the terms of a text from its term runs (unigram_runs_ or ngram_runs_): `runs` over
  // `doc` (lowercased when `lower`), as Analyzer::WellFormedTermRuns or TextTermRuns give them.
  void CountRuns(std::string_view doc, const AsciiRuns& runs, bool lower,
                 AnalyzerScratch* scratch) const;
  // Counts the terms of a text whose analyzer's terms are the n-grams of its runs
  // (Analyzer::RunNgrams): `runs` over `text` (ASCII to be lowercased when `lower`: it is then
  // lowercased into a copy first), as Analyzer::WellFormedTermRuns or TermRuns give them. An
  // n-gram whose tokens lie in the text joined by one space is that stretch of it, otherwise it is
  // joined in scratch->grams; those of at most TermTable::kMaxPaddedKey bytes are counted as the
  // unigrams are (CountAsciiUnigramsWith), the longer ones in groups past the table's filter.
  void CountRunNgrams(std::string_view text, const AsciiRuns& runs, bool lower,
                      AnalyzerScratch* scratch) const;
  // Appends the vocabulary's terms, in feature order, to *out (ToState, RestoreHeldLists).
  void AddTerms(google::protobuf::RepeatedPtrField<std::string>* out) const;

  // The analyzer keeps the analyzer options (CountVectorizerOptions::analyzer); the vectorizer
  // keeps only what transforming needs of the rest, so that no term or stop word is held twice.
  Analyzer analyzer_;
  bool binary_ = false;
  bool fixed_vocabulary_ = false;  // given (CountVectorizerOptions::fixed_vocabulary), not learned
  std::vector<uint64_t> document_frequency_;
  uint64_t num_documents_ = 0;
  // Term -> index (one probe per term; terms of at most 15 bytes compared as two integers), and
  // the vocabulary itself: the terms in feature-index order in its arena.
  TermTable index_;
  // Identifies the word -> feature ids mapping (vocabulary and n-gram range) for a scratch's
  // char_wb word memo; never 0.
  uint64_t memo_tag_ = 0;
  // Transform may count the word runs of a text (Analyzer::UnigramsBeforeStopWords), its stop
  // words included: the analyzer allows it and no term of the vocabulary is a stop word (set by
  // BuildIndex).
  bool unigram_runs_ = false;
  // With unigram_runs_ (or ngram_runs_ with unigrams) and a pattern whose terms may be one byte
  // (Analyzer::MinTermBytes() 1, as \w+): the id of each one-byte term by its byte
  // (TermTable::kNotFound when not a term), which the runs of 2 bytes or more that the run kernels
  // count leave out.
  bool single_byte_terms_ = false;
  std::array<uint32_t, 256> single_byte_ids_{};
  // Transform counts the n-grams of a text's runs (Analyzer::RunNgrams, CountRunNgrams).
  bool ngram_runs_ = false;
};

struct CountVectorizer::FitResult {
  CountVectorizer vectorizer;
  // One row per input text.
  SparseRows rows;
};

// fit_transform one text at a time: keeps the provisional vocabulary and sparse rows, never the
// texts.
class CountVectorizer::Fitter {
 public:
  explicit Fitter(const CountVectorizerOptions& options);
  // REQUIRES: valid UTF-8. Errors: a custom token_pattern over its matching limits (FindTokens).
  absl::Status Add(std::string_view text);
  // VectorizerFitter::Expect (the rows' forecast).
  void Expect(size_t texts, size_t bytes);
  // VectorizerFitter::MemoryBytes: the rows, the provisional vocabulary and its counts.
  int64_t MemoryBytes() const;
  // VectorizerFitter::SetMemoryBudget. A learned vocabulary measures itself every kBudgetTerms new
  // terms, so Add stops at most that many terms, one group of a text's tokens and one growth of
  // the term table past the budget.
  void SetMemoryBudget(int64_t bytes) { memory_budget_ = bytes; }
  // Prunes, sorts and re-indexes (call once). Errors as FitTransform.
  absl::StatusOr<FitResult> Finish();

 private:
  // Add's counting for an analyzer with UnigramsBeforeStopWords() (stop words are counted, then
  // dropped by Finish): the runs of ASCII text (Analyzer::AsciiTermRuns, lowercased on the way
  // as the options say) or of other text's preprocessed form (Analyzer::TermRuns). False only
  // when neither applies (a text of 2^32 - 1 bytes or more).
  bool AddUnigrams(std::string_view text);
  // Its steps on `text` and its runs, the terms lowercased when `lower`.
  void AddAsciiUnigrams(std::string_view text, const AsciiRuns& runs, bool lower);
  // Add's counting for an analyzer with RunNgrams(): the unigrams as AddUnigrams, then the
  // n-grams of the runs (a stretch of the lowercased text where their tokens are joined by one
  // space, else joined apart) in _word_ngrams's order. False, nothing added, when the runs do not
  // apply (as AddUnigrams) or a new one-byte term comes first (as AddUnigrams).
  bool AddRunNgrams(std::string_view text);
  // Finds or inserts each of `terms`, in order, and counts it (the generic path).
  void AddTermsInOrder(absl::Span<const std::string_view> terms);
  // Inserts `term` if new (checked: kNotFound past the budget or the id limit) and returns its id.
  uint32_t InsertChecked(std::string_view term);
  // For a pattern whose terms may be one byte (MinTermBytes() 1): whether a 1-byte run of the
  // text is a term with no provisional index yet (the text then goes term by term: the
  // provisional index is the order of first occurrence, which orders the rows); the others'
  // indices noted in single_byte_ids_.
  bool NewSingleByteTerm(std::string_view text, const AsciiRuns& runs, bool lower);
  // After AddAsciiUnigrams, which leaves them out, the 1-byte runs (each known: NewSingleByteTerm
  // was false).
  void AddSingleByteRuns(std::string_view text, const AsciiRuns& runs, bool lower);
  // After a new term: every kBudgetTerms new terms, whether MemoryBytes() and the current text's
  // ids are within memory_budget_ (else over_budget_, and the insertions stop).
  void NoteNewTerm() {
    if (provisional_.size() >= next_budget_check_) CheckBudget();
  }
  void CheckBudget();
  static constexpr size_t kBudgetTerms = 4096;

  // The pruning options (a learned vocabulary's).
  DocumentFrequencyBound min_df_;
  DocumentFrequencyBound max_df_;
  uint64_t max_features_ = 0;
  // rows hold provisional indices (order of first occurrence, unsorted within a row) until Finish
  // (learned vocabulary).
  FitResult result_;
  AnalyzerScratch scratch_;
  SparseVector row_;  // a fixed vocabulary's row before it is appended
  SparseRowsForecast forecast_;
  TermTable provisional_;  // term -> provisional index
  // Documents containing each provisional term (learned vocabulary), counted as rows are added so
  // that Finish needs no extra pass over the rows.
  std::vector<uint64_t> provisional_df_;
  bool too_many_ = false;
  // The provisional index of each one-byte term, by its byte, once looked up (NewSingleByteTerm).
  std::array<uint32_t, 256> single_byte_ids_;
  int64_t memory_budget_ = std::numeric_limits<int64_t>::max();
  size_t next_budget_check_ = kBudgetTerms;  // provisional_.size() at the next CheckBudget
  bool over_budget_ = false;
};

// The registry entry ("count").
extern const VectorizerKind kCountVectorizerKind;

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_COUNT_VECTORIZER_H_
