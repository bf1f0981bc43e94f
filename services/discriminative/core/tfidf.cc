#include "services/discriminative/core/tfidf.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/convert/take_repeated.h"
#include "common/status/status_macros.h"
#include "common/store/held_bytes.h"
#include "services/discriminative/core/exp_simd.h"

namespace maas::discriminative {

absl::StatusOr<TfidfOptions> TfidfOptionsFromConfig(const v1::TfidfConfig& config) {
  if (config.norm() < v1::NORM_UNSPECIFIED || config.norm() > v1::NORM_L2) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown tfidf.norm value ", static_cast<int>(config.norm())));
  }
  TfidfOptions options;
  options.norm = RowNormOf(config.norm());
  options.use_idf = !config.has_use_idf() || config.use_idf();
  options.smooth_idf = !config.has_smooth_idf() || config.smooth_idf();
  options.sublinear_tf = config.sublinear_tf();
  return options;
}

absl::Status ValidateTfidfConfig(const v1::TfidfConfig& config) {
  return TfidfOptionsFromConfig(config).status();
}

void TfidfVectorizer::Weight(absl::Span<const uint32_t> row_indices,
                             absl::Span<double> row_values) const {
  const size_t n = row_indices.size();
  double* values = row_values.data();
  if (options_.sublinear_tf) {
    bool finite = true;
    for (size_t e = 0; e < n; ++e) {
      double v = std::log(values[e]);
      v += 1.0;
      values[e] = v;
      finite &= std::isfinite(v);
    }
    // A value <= 0 (signed hashing) gave NaN or -inf: scikit-learn's norm refuses such a row
    // before normalizing, naming what it holds (Pipeline::TransformText refuses it so; the norm
    // would turn an infinity into NaNs).
    if (!finite && options_.norm != RowNorm::kNone) return;
  }
  if (options_.use_idf && options_.norm == RowNorm::kL2) {
    // The idf products and the l2 sum of their squares in one pass: the same operations in the
    // same (storage) order as the two passes of NormalizeRow after the products, so the same bits.
    const uint32_t* indices = row_indices.data();
    const double* idf = idf_.data();
    double s = 0.0;
    for (size_t e = 0; e < n; ++e) {
      const double v = values[e] * idf[indices[e]];
      values[e] = v;
      s += v * v;
    }
    if (s == 0.0) return;
    DivideAll(values, n, std::sqrt(s));
    return;
  }
  if (options_.use_idf) {
    for (size_t e = 0; e < n; ++e) values[e] *= idf_[row_indices[e]];
  }
  NormalizeRow(options_.norm, row_values);
}

void TfidfVectorizer::Transform(std::string_view text, AnalyzerScratch* scratch,
                                SparseVector* row) const {
  base_->Transform(text, scratch, row);
  Weight(row);
}

bool TfidfVectorizer::TransformIfWellFormed(std::string_view text, AnalyzerScratch* scratch,
                                            SparseVector* row) const {
  if (!base_->TransformIfWellFormed(text, scratch, row)) return false;
  Weight(row);
  return true;
}

int64_t TfidfVectorizer::MemoryBytes() const {
  return static_cast<int64_t>(sizeof(*this)) + base_->MemoryBytes() + store::VectorBytes(idf_);
}

void TfidfVectorizer::ToState(v1::VectorizerState* state) const {
  base_->ToState(state);
  state->mutable_idf()->Assign(idf_.begin(), idf_.end());
}

namespace {

// smooth_idf false and feature j in no training document (df 0): idf log(n / 0) + 1 = inf. A
// deliberate difference: scikit-learn fits it (RuntimeWarning, idf_ = inf), but then refuses every
// text that has the feature (its tf-idf value is inf: "Input contains infinity"), so a model that
// cannot classify such texts is refused here, saying what to do.
absl::Status UnseenFeatureError(const Vectorizer& base, const std::vector<double>& df, size_t j) {
  const size_t unseen = static_cast<size_t>(std::count(df.begin(), df.end(), 0.0));
  std::string term = base.FeatureName(static_cast<uint32_t>(j));
  const bool hashing = term.empty();
  if (term.size() > 100) term = absl::StrCat(term.substr(0, 100), "...");  // may cut a character
  return absl::InvalidArgumentError(absl::StrCat(
      hashing ? absl::StrCat("hashing bucket ", j) : absl::StrCat("feature ", j, " ('", term, "')"),
      unseen > 1 ? absl::StrCat(" and ", unseen - 1, " other features occur")
                 : std::string(" occurs"),
      " in no training document, so with smooth_idf false the idf is log(n / 0) + 1 = inf. "
      "scikit-learn fits this (with a RuntimeWarning, idf_ = inf) but then refuses every text "
      "that has such a feature (\"Input contains infinity\"), so it is refused here: set "
      "smooth_idf true (the default), or ",
      hashing ? "use_idf false (or fewer n_features, so that the training texts hit every bucket)"
              : "use a vocabulary of terms the training texts contain (or use_idf false)"));
}

}  // namespace

absl::StatusOr<VectorizerFit> FitTfidf(const v1::VectorizerConfig& config, VectorizerFit base) {
  MAAS_ASSIGN_OR_RETURN(const TfidfOptions options, TfidfOptionsFromConfig(config.tfidf()));
  const size_t f = base.vectorizer->num_features();
  std::vector<double> idf;
  if (options.use_idf) {
    std::vector<double> df(f, 0.0);
    if (base.document_frequency.size() == f) {  // the base fitter counted them
      for (size_t j = 0; j < f; ++j) df[j] = static_cast<double>(base.document_frequency[j]);
    } else {
      for (const uint32_t j : base.rows.indices) df[j] += 1.0;
    }
    const double smooth = options.smooth_idf ? 1.0 : 0.0;
    const double n = static_cast<double>(base.rows.size()) + smooth;
    idf.resize(f);
    for (size_t j = 0; j < f; ++j) {
      double v = n / (df[j] + smooth);
      v = std::log(v);
      idf[j] = v + 1.0;
      if (!std::isfinite(idf[j])) return UnseenFeatureError(*base.vectorizer, df, j);
    }
  }
  auto tfidf =
      std::make_unique<TfidfVectorizer>(std::move(base.vectorizer), options, std::move(idf));
  for (size_t r = 0; r < base.rows.size(); ++r) {
    tfidf->Weight(base.rows[r].indices, base.rows.mutable_values(r));
  }
  VectorizerFit fit;
  fit.rows = std::move(base.rows);
  fit.vectorizer = std::move(tfidf);
  return fit;
}

absl::StatusOr<std::unique_ptr<Vectorizer>> TfidfFromState(v1::VectorizerState* state,
                                                           std::unique_ptr<Vectorizer> base) {
  MAAS_ASSIGN_OR_RETURN(const TfidfOptions options,
                        TfidfOptionsFromConfig(state->config().tfidf()));
  std::vector<double> idf = convert::TakeRepeated(state->mutable_idf());
  if (options.use_idf) {
    if (idf.size() != base->num_features()) {
      return absl::InvalidArgumentError(absl::StrCat("vectorizer.idf has ", idf.size(),
                                                     " values; expected one per feature (",
                                                     base->num_features(), ")"));
    }
    for (size_t j = 0; j < idf.size(); ++j) {
      if (!(std::isfinite(idf[j]) && idf[j] >= 1.0)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "vectorizer.idf[", j, "] must be finite and >= 1 (log(n/df) + 1); got ", idf[j]));
      }
    }
  } else if (!idf.empty()) {
    return absl::InvalidArgumentError("vectorizer.idf must be empty when tfidf.use_idf is false");
  }
  return std::unique_ptr<Vectorizer>(
      std::make_unique<TfidfVectorizer>(std::move(base), options, std::move(idf)));
}

}  // namespace maas::discriminative
