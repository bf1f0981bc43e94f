// What scikit-learn's discrete Naive Bayes classifiers share (_BaseDiscreteNB): alpha /
// force_alpha / fit_prior / class_prior, counting with sample weights, class_log_prior_, and a
// joint log-likelihood jll_c = (sum over the row's stored entries, in order, of
// v(x) * W[f, c], from 0.0) + bias_c over a feature-major table W (all classes of one feature
// contiguous). MultinomialNB, ComplementNB and BernoulliNB differ only in how they turn the counts
// into W and bias (UpdateParameters) and in v (BernoulliNB binarizes).
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_DISCRETE_NB_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_DISCRETE_NB_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/random/simd_level.h"
#include "services/discriminative/core/classifier.h"
#include "services/discriminative/core/large_array.h"

namespace maas::discriminative {

struct NbOptions {
  // Additive smoothing as given, >= 0 and finite.
  double alpha = 1.0;
  // scikit-learn's force_alpha: true uses alpha as given; false uses max(alpha, 1e-10).
  bool force_alpha = true;
  bool fit_prior = true;
  // Fixed class priors in class order (class_log_prior_ = log(class_prior)); empty: learned
  // (fit_prior) or uniform.
  std::vector<double> class_prior;
  // How labels are read and the classes ordered (ClassOrder); a stored state's own label_type
  // replaces it when one is loaded.
  v1::LabelType label_type = v1::LABEL_TYPE_STRING;

  // The alpha the formulas use (_check_alpha).
  double effective_alpha() const;
};

// Validates the options every NB config shares (INVALID_ARGUMENT naming the field).
absl::Status ValidateNbOptions(const NbOptions& options);

// The shared options of any NB config message (MultinomialNbConfig, ComplementNbConfig,
// BernoulliNbConfig have the same field names).
template <class Config>
absl::StatusOr<NbOptions> NbOptionsFromConfig(const Config& config) {
  NbOptions options;
  if (config.has_alpha()) options.alpha = config.alpha();
  options.fit_prior = !config.has_fit_prior() || config.fit_prior();
  options.force_alpha = !config.has_force_alpha() || config.force_alpha();
  options.class_prior.assign(config.class_prior().begin(), config.class_prior().end());
  const absl::Status valid = ValidateNbOptions(options);
  if (!valid.ok()) return valid;
  return options;
}

class DiscreteNb : public Classifier {
 public:
  const std::vector<std::string>& classes() const override { return classes_; }
  v1::LabelType label_type() const override { return options_.label_type; }
  size_t num_classes() const { return classes_.size(); }
  size_t num_features() const override { return num_features_; }
  const std::vector<double>& class_count() const override { return class_count_; }
  void JointLogLikelihood(const SparseVector& row, double* jll) const override;
  // JointLogLikelihood on a given SIMD level (the same bits on every level). REQUIRES: the CPU
  // supports `level` (random::SupportedSimdLevels).
  void JointLogLikelihoodWith(random::SimdLevel level, const SparseVector& row, double* jll) const;
  FeatureRows feature_rows() const override {
    return {reinterpret_cast<const char*>(weights_t_.data()), classes_.size() * sizeof(double)};
  }
  double FeatureContribution(size_t c, uint32_t feature, double value) const override;
  void ToState(v1::ClassifierState* state) const override;
  // partial_fit (discrete_nb_partial.cc).
  absl::Status PartialFit(SparseRowsView rows, const std::vector<std::string>& labels,
                          const std::vector<double>& weights) override;

  int64_t MemoryBytes() const override;

  const NbOptions& options() const { return options_; }
  // C x F, row-major (feature_count_).
  const std::vector<double>& feature_count() const { return feature_count_; }
  const std::vector<double>& class_log_prior() const { return class_log_prior_; }
  // C x F, row-major (scikit-learn's feature_log_prob_). A copy: MultinomialNB and ComplementNB
  // keep it only as their weight table, its transpose (ReleaseFeatureLogProb), and it is
  // transposed back.
  std::vector<double> feature_log_prob() const;

 protected:
  DiscreteNb() = default;

  // The config this classifier was built from (ToState writes it).
  virtual v1::ClassifierConfig Config() const = 0;
  // scikit-learn's name, for messages ("MultinomialNB").
  virtual absl::string_view SklearnName() const = 0;
  // Whether fit rejects negative values (MultinomialNB, ComplementNB).
  virtual bool RequiresNonNegative() const { return true; }
  // Whether a fitted feature_count_ may be negative (BernoulliNB without binarize counts the
  // hashing vectorizer's signed values as they are; scikit-learn fits and loads such models).
  virtual bool AllowsNegativeFeatureCounts() const { return false; }
  // The value a stored entry contributes (BernoulliNB binarizes; 0 skips the entry).
  virtual double EffectiveValue(double value) const { return value; }
  // Whether entries whose effective value is 0 are removed (binarize's eliminate_zeros).
  virtual bool DropsZeros() const { return false; }
  // False when EffectiveValue is the identity and DropsZeros false (the per-entry loops then skip
  // both calls).
  virtual bool TransformsValues() const { return false; }
  // feature_log_prob from the counts, and class_log_prior: into feature_log_prob_, or
  // (MultinomialNB) straight into the weight table, leaving feature_log_prob_ empty.
  virtual absl::Status UpdateParameters() = 0;
  // Checks imported feature_log_prob_ values (kind-specific ranges).
  virtual absl::Status ValidateFeatureLogProb() const = 0;
  // Fills weights_t_ (F x C) and bias_ from feature_log_prob_ (unless UpdateParameters wrote the
  // table) and class_log_prior_.
  virtual void BuildTable() = 0;

  // The whole fit (options_ and the kind's own options set before): FitCounts, UpdateParameters,
  // then ValidateFitted, the checks LoadState makes (never store what cannot be read), then
  // BuildTable. Errors as FitCounts, or INVALID_ARGUMENT for an invalid fitted model.
  absl::Status FitInPlace(SparseRowsView rows, size_t num_features,
                          const std::vector<std::string>& labels,
                          const std::vector<double>& weights);
  // fit(X, y, sample_weight) into this object's counts (options_ set before). Errors:
  // INVALID_ARGUMENT for mismatched lengths, bad values/weights, all weights 0, class_prior length.
  absl::Status FitCounts(SparseRowsView rows, size_t num_features,
                         const std::vector<std::string>& labels,
                         const std::vector<double>& weights);
  // The checks fit and partial_fit share (INVALID_ARGUMENT naming the example): one label and
  // none or one weight per row, valid options, finite weights >= 0, rows with matching index and
  // value counts, indices < num_features, values this classifier accepts.
  absl::Status CheckExamples(SparseRowsView rows, const std::vector<std::string>& labels,
                             const std::vector<double>& weights, size_t num_features) const;
  // Loads the shared part of a stored state (classes, counts, prior, flp shapes) and validates
  // (kFitted: ValidateFitted; kPartialStart: the counts only, see ClassifierStateUse). Takes the
  // state's classes, feature_count and feature_log_prob (each freed once converted).
  absl::Status LoadState(v1::ClassifierState* state, size_t num_features, ClassifierStateUse use);
  // The value checks of a fitted model, the same whether it was just fitted or is being loaded
  // (so a fit the server accepts always loads back): finite counts (>= 0 unless
  // AllowsNegativeFeatureCounts), class_log_prior, ValidateFeatureLogProb. INVALID_ARGUMENT.
  absl::Status ValidateFitted() const;
  // The counts' part of ValidateFitted.
  absl::Status ValidateCounts() const;
  // _update_class_log_prior.
  void UpdateClassLogPrior();
  // Transposes a C x F row-major matrix into weights_t_.
  void SetTableTransposed(const std::vector<double>& c_by_f);
  // weights_t_ (F x C) straight from class c's values of features [j0, j1), which
  // fill(c, j0, j1, values) writes to values[0 .. j1 - j0): blocks of 256 features, all classes
  // of a block (16 KiB of the table for 8 classes) written before the next (SetTableTransposed
  // without the C x F matrix: a fit of 2^20 features then touches one 8 x 2^20 table fewer).
  template <typename Fill>
  void SetTableFromBlocks(const Fill& fill);
  // Frees feature_log_prob_ after BuildTable when ReleasedFeatureLogProbInto gives it back bit for
  // bit, so that the model does not hold a third C x F matrix: a kind whose weight table is
  // feature_log_prob_ transposed (feature_log_prob() and ToState transpose the table back), or
  // BernoulliNB, which recomputes it from the counts.
  void ReleaseFeatureLogProb();
  // Writes feature_log_prob() to out[0 .. C x F).
  void FeatureLogProbInto(double* out) const;
  // FeatureLogProbInto once feature_log_prob_ is released: by default the weight table's transpose
  // (MultinomialNB, ComplementNB, whose table is feature_log_prob_ transposed).
  virtual void ReleasedFeatureLogProbInto(double* out) const;

  NbOptions options_;
  std::vector<std::string> classes_;
  size_t num_features_ = 0;
  std::vector<double> class_count_;
  std::vector<double> feature_count_;
  std::vector<double> class_log_prior_;
  std::vector<double> feature_log_prob_;
  // F x C, in huge pages (LargeArrayAllocator).
  std::vector<double, DefaultInitLargeArrayAllocator<double>> weights_t_{
      DefaultInitLargeArrayAllocator<double>(/*huge=*/true)};
  std::vector<double> bias_;  // C
};

// std::log(x) for the values of a class's feature table, most of which are one value `common`
// (a feature without counts in the class: nearly all of a 2^20-feature hashing space), whose log
// is taken once. Equal inputs give equal logs (+0.0 and -0.0 both -inf), so the values are those
// of std::log on each: scikit-learn's, bit for bit where they were (a log costs ~20 cycles).
class LogOfMostlyOne {
 public:
  explicit LogOfMostlyOne(double common) : common_(common), log_common_(std::log(common)) {}
  double operator()(double x) const { return x == common_ ? log_common_ : std::log(x); }

 private:
  double common_;
  double log_common_;
};

template <typename Fill>
void DiscreteNb::SetTableFromBlocks(const Fill& fill) {
  constexpr size_t kBlock = 256;
  const size_t k = classes_.size();
  const size_t f = num_features_;
  weights_t_.clear();
  weights_t_.resize(k * f);  // not zero-filled: every value is written below
  double* table = weights_t_.data();
  double values[kBlock];
  for (size_t j0 = 0; j0 < f; j0 += kBlock) {
    const size_t j1 = std::min(f, j0 + kBlock);
    for (size_t c = 0; c < k; ++c) {
      fill(c, j0, j1, values);
      for (size_t j = j0; j < j1; ++j) table[j * k + c] = values[j - j0];
    }
  }
}

// Shared checks of log-probability matrices: NaN never; values > 0 never; -inf only if allowed.
// AllLogProbabilities: whether CheckLogProbabilities passes, in one branch-free pass.
// AllWithin: whether every value is in [low, high] (NaN never), the same way.
bool AllWithin(const std::vector<double>& values, double low, double high);
bool AllWithin(const double* values, size_t n, double low, double high);
bool AllLogProbabilities(const std::vector<double>& values, bool allow_neg_inf,
                         bool allow_positive);
bool AllLogProbabilities(const double* values, size_t n, bool allow_neg_inf, bool allow_positive);
absl::Status CheckLogProbabilities(const std::vector<double>& values, absl::string_view name,
                                   bool allow_neg_inf, bool allow_positive);

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_DISCRETE_NB_H_
