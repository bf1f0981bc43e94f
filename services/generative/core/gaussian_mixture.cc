#include "services/generative/core/gaussian_mixture.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/convert/matrix.h"
#include "common/math/gaussian.h"
#include "common/math/gemm.h"
#include "common/math/log_sum_exp.h"
#include "common/random/distributions.h"
#include "common/random/item_rng.h"
#include "common/status/status_macros.h"
#include "services/generative/core/kmeans.h"
#include "services/generative/core/row_kernels.h"
#include "services/generative/core/sample_product.h"

namespace maas::generative {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

v1::CovarianceType Resolve(v1::CovarianceType type) {
  return type == v1::COVARIANCE_TYPE_UNSPECIFIED ? v1::FULL : type;
}

const char* TypeName(v1::CovarianceType type) {
  switch (type) {
    case v1::DIAG:
      return "DIAG";
    case v1::SPHERICAL:
      return "SPHERICAL";
    default:
      return "FULL";
  }
}

// Rows of the covariance-like matrix field for K components of dimension D.
int64_t LayoutRows(v1::CovarianceType type, int64_t k, int64_t d) {
  return type == v1::FULL ? k * d : k;
}
int64_t LayoutCols(v1::CovarianceType type, int64_t d) { return type == v1::SPHERICAL ? 1 : d; }

// Checks block k of a FULL layout: symmetric (|a_ij - a_ji| <= 1e-10 max |a|).
absl::Status CheckSymmetric(const Eigen::Ref<const Eigen::MatrixXd>& a, const std::string& field,
                            int k) {
  const double tolerance = 1e-10 * a.cwiseAbs().maxCoeff();
  for (Eigen::Index j = 0; j < a.cols(); ++j) {
    for (Eigen::Index i = j + 1; i < a.rows(); ++i) {
      if (std::abs(a(i, j) - a(j, i)) > tolerance) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ": the matrix of component ", k, " is not symmetric: (", i, ", ", j,
                         ") = ", a(i, j), " but (", j, ", ", i, ") = ", a(j, i)));
      }
    }
  }
  return absl::OkStatus();
}

// SampleProductArgs::fill_rows for a group of a component's samples: sample i of the group is
// sample members[i] of the request, whose generator (positioned after its component draw) is
// rngs[members[i] - first]; its vector is its next D normals.
struct NormalsOfGroup {
  random::ItemRng* rngs;
  const int64_t* members;
  int64_t first;

  // The samples' normals side by side, one sample per SIMD lane (ItemRng::FillNormalsAcross).
  static void FillRows(void* context, int64_t i0, int64_t count, int64_t begin, int64_t end,
                       double* out, int64_t stride) {
    const auto* group = static_cast<const NormalsOfGroup*>(context);
    constexpr int64_t kMaxRows = 64;
    random::ItemRng* rows[kMaxRows];
    for (int64_t r0 = 0; r0 < count; r0 += kMaxRows) {
      const int64_t n = std::min(kMaxRows, count - r0);
      for (int64_t r = 0; r < n; ++r) {
        rows[r] = &group->rngs[group->members[i0 + r0 + r] - group->first];
      }
      random::ItemRng::FillNormalsAcross(rows, static_cast<size_t>(n),
                                         static_cast<size_t>(end - begin), out + r0,
                                         static_cast<size_t>(stride));
    }
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// The model.

absl::StatusOr<std::unique_ptr<GaussianMixtureModel>> GaussianMixtureModel::Create(
    const v1::GaussianMixtureSpec& spec) {
  std::unique_ptr<GaussianMixtureModel> model(new GaussianMixtureModel());
  model->type_ = Resolve(spec.covariance_type());
  if (!v1::CovarianceType_IsValid(spec.covariance_type())) {
    return absl::InvalidArgumentError(
        absl::StrCat("gaussian_mixture.covariance_type ", spec.covariance_type(), " is unknown"));
  }
  MAAS_ASSIGN_OR_RETURN(model->weights_,
                        MixtureWeightsFromProto(spec.weights(), "gaussian_mixture.weights"));
  const int64_t k = model->weights_.size();
  MAAS_ASSIGN_OR_RETURN(model->means_,
                        MatrixFieldFromProto(spec.means(), "gaussian_mixture.means", k, -1));
  const int64_t d = model->means_.cols();
  const std::string field = "gaussian_mixture.covariances";
  MAAS_ASSIGN_OR_RETURN(
      Eigen::MatrixXd cov,
      MatrixFieldFromProto(spec.covariances(), field + " (" + TypeName(model->type_) + ")",
                           LayoutRows(model->type_, k, d), LayoutCols(model->type_, d)));
  model->log_weights_ = ExactLog(model->weights_.array()).matrix();
  model->cumulative_.resize(k);
  double running = 0.0;
  for (int64_t c = 0; c < k; ++c) {
    running += model->weights_(c);
    model->cumulative_(c) = running;
  }
  for (int64_t c = 0; c < k; ++c) model->mean_rows_.push_back(model->means_.row(c).transpose());
  model->log_normalizer_.resize(k);
  const double half_d_log_2pi = 0.5 * static_cast<double>(d) * math::kLogTwoPi;
  if (model->type_ == v1::FULL) {
    for (int64_t c = 0; c < k; ++c) {
      const auto block = cov.middleRows(c * d, d);
      MAAS_RETURN_IF_ERROR(CheckSymmetric(block, field, static_cast<int>(c)));
      Eigen::MatrixXd lower;
      if (!rows::CholeskyLower(block, &lower)) {
        return absl::InvalidArgumentError(absl::StrCat(
            field, ": the covariance of component ", c,
            " is not positive definite (its Cholesky factorization failed); a Gaussian needs a "
            "symmetric positive definite covariance"));
      }
      const double half_log_det = lower.diagonal().array().log().sum();
      if (!std::isfinite(half_log_det)) {
        return absl::InvalidArgumentError(absl::StrCat(field, ": the log-determinant of component ",
                                                       c, "'s covariance is not finite"));
      }
      model->log_normalizer_(c) = -half_d_log_2pi - half_log_det;
      model->panels_.push_back(
          PackPanels(d, d, /*triangular=*/true, [&lower](int64_t kk, int64_t j) {
            return lower(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(kk));
          }));
      model->lower_.push_back(std::move(lower));
    }
  } else {
    for (int64_t c = 0; c < k; ++c) {
      for (Eigen::Index j = 0; j < cov.cols(); ++j) {
        if (!(cov(c, j) > 0.0)) {
          return absl::InvalidArgumentError(
              absl::StrCat(field, "(", c, ", ", j, ") = ", cov(c, j), "; variances must be > 0"));
        }
      }
    }
    model->stddev_.resize(k, d);
    for (int64_t c = 0; c < k; ++c) {
      for (int64_t j = 0; j < d; ++j) {
        model->stddev_(c, j) = std::sqrt(cov(c, model->type_ == v1::SPHERICAL ? 0 : j));
      }
      // Summed in order with std::log, as Eigen summed the strided row of the column-major
      // stddev_ this replaced (a contiguous row takes Eigen's vectorised log and pairwise sum:
      // 1 ulp off in about half the rows, moving EXACT values of existing models).
      double half_log_det = std::log(model->stddev_(c, 0));
      for (int64_t j = 1; j < d; ++j) half_log_det += std::log(model->stddev_(c, j));
      if (!std::isfinite(half_log_det) || !model->stddev_.row(c).allFinite()) {
        return absl::InvalidArgumentError(absl::StrCat(field, ": the log-determinant of component ",
                                                       c, "'s covariance is not finite"));
      }
      model->log_normalizer_(c) = -half_d_log_2pi - half_log_det;
    }
  }
  return model;
}

// The squared Mahalanobis distance of (x - mu_c) / scale (scale a power of two: dividing by it is
// exact, and scale 1 is the plain x - mu_c); r is scratch of D values.
double GaussianMixtureModel::ComponentQuad(const double* x, int c, double scale, double* r) const {
  const Eigen::Index d = means_.cols();
  if (scale == 1.0) {
    for (Eigen::Index j = 0; j < d; ++j) r[j] = x[j] - means_(c, j);
  } else {
    for (Eigen::Index j = 0; j < d; ++j) r[j] = x[j] / scale - means_(c, j) / scale;
  }
  if (type_ == v1::FULL) {
    return rows::ForwardSubstituteSquaredNorm(lower_[static_cast<size_t>(c)], r);
  }
  double quad = 0.0;
  for (Eigen::Index j = 0; j < d; ++j) {
    const double y = r[j] / stddev_(c, j);
    quad += y * y;
  }
  return quad;
}

// log N(x | c) from its squared distance `quad` (of x - mu_c). When that overflowed float64 (inf,
// or NaN from inf - inf in the forward substitution), half of the form, log N, may not have: once
// more on (x - mu_c) / scale with |(x - mu_c) / scale| < 2, scaled back last, so a log density
// beyond float64 is -inf and one within it is finite (never NaN).
double GaussianMixtureModel::ComponentLogDensity(const double* x, int c, double quad,
                                                 double* r) const {
  if (std::isfinite(quad)) return log_normalizer_(c) - 0.5 * quad;
  const Eigen::Index d = means_.cols();
  double largest = 1.0;
  for (Eigen::Index j = 0; j < d; ++j) {
    largest = std::max({largest, std::abs(x[j]), std::abs(means_(c, j))});
  }
  const double scale = std::ldexp(
      1.0, std::min(std::ilogb(largest) + 1, std::numeric_limits<double>::max_exponent - 1));
  const double scaled = ComponentQuad(x, c, scale, r);
  return std::isnan(scaled) ? kNegInf : log_normalizer_(c) - 0.5 * scaled * scale * scale;
}

Eigen::VectorXd GaussianMixtureModel::ComponentLogDensities(const double* x) const {
  const int k = num_components();
  Eigen::VectorXd out(k);
  Eigen::VectorXd r(means_.cols());
  for (int c = 0; c < k; ++c) {
    out(c) = ComponentLogDensity(x, c, ComponentQuad(x, c, 1.0, r.data()), r.data());
  }
  return out;
}

void GaussianMixtureModel::Sample(uint64_t seed, uint64_t first_index, Eigen::Ref<RowMatrixXd> x,
                                  RowMatrixXd* latents) const {
  const Eigen::Index d = means_.cols(), n = x.rows();
  const int k = num_components();
  if (latents != nullptr) latents->resize(n, 1);
  // In chunks of up to 4096 samples (bounded scratch memory): every sample's component first (one
  // Uniform each), the generators kept, positioned after it. Then, per component, its samples in
  // groups: DIAG / SPHERICAL one row at a time; FULL one product x = mu_c + L_c eps per group
  // (sample_product.h: fixed order per element, so neither the grouping nor the batch changes any
  // bits), the normals written by the product's fill callback straight into its packed block.
  // x is row-major, so the product writes each sample straight into its own row, whole 64-byte
  // runs of it (the rows of a group need not be adjacent). (With column-major x this cost a cache
  // miss per value, and the rows were computed in component order and moved afterwards.)
  constexpr Eigen::Index kChunk = 4096;
  constexpr int64_t kGroup = 96;
  const bool full = type_ == v1::FULL;
  const Eigen::Index chunk = std::min(kChunk, n);
  std::vector<random::ItemRng> rngs;
  rngs.reserve(static_cast<size_t>(chunk));
  std::vector<std::vector<int64_t>> members(static_cast<size_t>(k));
  // DIAG / SPHERICAL of fewer than kAcrossBelow values a sample: a group's normals across its
  // samples (kGroup x D), else one sample's (D).
  constexpr Eigen::Index kAcrossBelow = 64;
  std::vector<double> eps(full ? 0 : static_cast<size_t>(d < kAcrossBelow ? kGroup * d : d));
  std::vector<random::ItemRng*> group_rngs(full ? 0 : static_cast<size_t>(kGroup));
  std::vector<double*> out_rows(full ? static_cast<size_t>(kGroup) : 0);  // FULL: a group's rows
  for (Eigen::Index c0 = 0; c0 < n; c0 += kChunk) {
    const Eigen::Index m = std::min(kChunk, n - c0);
    rngs.clear();
    for (auto& list : members) list.clear();
    for (Eigen::Index i = c0; i < c0 + m; ++i) {
      rngs.emplace_back(seed, kSampleStream, first_index + static_cast<uint64_t>(i));
      const int c = random::CategoricalFromCumulative(rngs.back(), cumulative_);
      members[static_cast<size_t>(c)].push_back(i);
      if (latents != nullptr) (*latents)(i, 0) = c;
    }
    for (int c = 0; c < k; ++c) {
      const std::vector<int64_t>& mine = members[static_cast<size_t>(c)];
      for (size_t g0 = 0; g0 < mine.size(); g0 += kGroup) {
        const int64_t count = std::min<int64_t>(kGroup, static_cast<int64_t>(mine.size() - g0));
        if (!full) {
          const double* mean = mean_rows_[static_cast<size_t>(c)].data();
          const double* stddev = stddev_.row(c).data();
          if (d < kAcrossBelow) {
            // Few values a sample: the group's normals across its samples, one sample per SIMD
            // lane (FillNormalsAcross: what each one's FillNormals returns), instead of a scalar
            // Box-Muller per pair.
            for (int64_t s = 0; s < count; ++s) {
              group_rngs[static_cast<size_t>(s)] =
                  &rngs[static_cast<size_t>(mine[g0 + static_cast<size_t>(s)] - c0)];
            }
            random::ItemRng::FillNormalsAcross(group_rngs.data(), static_cast<size_t>(count),
                                               static_cast<size_t>(d), eps.data(),
                                               static_cast<size_t>(count));
            for (int64_t s = 0; s < count; ++s) {
              double* row = &x(mine[g0 + static_cast<size_t>(s)], 0);
              for (Eigen::Index j = 0; j < d; ++j) {
                row[j] = mean[j] + stddev[j] * eps[static_cast<size_t>(j * count + s)];
              }
            }
            continue;
          }
          for (int64_t s = 0; s < count; ++s) {
            const int64_t i = mine[g0 + static_cast<size_t>(s)];
            rngs[static_cast<size_t>(i - c0)].FillNormals(eps.data(), static_cast<size_t>(d));
            double* row = &x(i, 0);
            for (Eigen::Index j = 0; j < d; ++j) row[j] = mean[j] + stddev[j] * eps[j];
          }
          continue;
        }
        for (int64_t s = 0; s < count; ++s) {
          out_rows[static_cast<size_t>(s)] = x.row(mine[g0 + static_cast<size_t>(s)]).data();
        }
        NormalsOfGroup normals{rngs.data(), mine.data() + g0, c0};
        SampleProductArgs args;
        args.b = &panels_[static_cast<size_t>(c)];
        args.m = count;
        args.fill_rows = &NormalsOfGroup::FillRows;
        args.fill_context = &normals;
        args.bias = mean_rows_[static_cast<size_t>(c)].data();
        args.out_rows = out_rows.data();
        SampleProduct(args);
      }
    }
  }
}

Eigen::VectorXd GaussianMixtureModel::ExactLogLikelihood(
    const Eigen::Ref<const Eigen::MatrixXd>& x) const {
  // ComponentLogDensities row by row, but a block of rows per component: each component's factor
  // (FULL: D^2 / 2 values) or deviations are read once per block instead of once per row, and the
  // block's rows are independent chains of the same operations, each row's in the same order as
  // alone (the same bits). Row by row, a 1 000 x 1 000 FULL mixture of 10 components streamed its
  // 80 MB of factors from memory for every row: 9.6x scikit-learn's time (the 2026-12-06
  // performance hunt).
  // 32 rows a block: a FULL factor (D = 1 000: 8 MB) is streamed from memory once per block.
  // DIAG / SPHERICAL go through a block in parts of 8 rows, one scaled_squares8 each.
  constexpr Eigen::Index kBlock = 32, kPart = 8;
  const Eigen::Index n = x.rows(), d = x.cols();
  const int k = num_components();
  const bool full = type_ == v1::FULL;
  Eigen::VectorXd out(n);
  std::vector<double> r(static_cast<size_t>(kBlock * d));  // row b's deviations at b * d
  std::vector<double> rows(static_cast<size_t>(kBlock * d));
  // Coordinate j of row b at (b / kPart) * kPart * d + j * kPart + b % kPart: parts of 8 rows,
  // each coordinate-major.
  std::vector<double> xt(full ? 0 : static_cast<size_t>(kBlock * d));
  Eigen::MatrixXd densities(kBlock, k);
  Eigen::VectorXd scratch(d), weighted(k);
  double quad[kBlock];
  const rows::SimdKernels& kernels = rows::BestSimdKernels();
  for (Eigen::Index i0 = 0; i0 < n; i0 += kBlock) {
    const Eigen::Index m = std::min(kBlock, n - i0);
    const Eigen::Index parts = (m + kPart - 1) / kPart;
    for (Eigen::Index j = 0; j < d; ++j) {
      for (Eigen::Index b = 0; b < m; ++b) rows[static_cast<size_t>(b * d + j)] = x(i0 + b, j);
      if (full) continue;
      for (Eigen::Index b = 0; b < parts * kPart; ++b) {
        xt[static_cast<size_t>((b / kPart) * kPart * d + j * kPart + b % kPart)] =
            b < m ? x(i0 + b, j) : 0.0;
      }
    }
    for (int c = 0; c < k; ++c) {
      const double* mean = mean_rows_[static_cast<size_t>(c)].data();
      for (Eigen::Index b = 0; b < kBlock; ++b) quad[b] = 0.0;
      if (full) {
        for (Eigen::Index b = 0; b < m; ++b) {
          const double* row = rows.data() + b * d;
          double* dev = r.data() + b * d;
          for (Eigen::Index j = 0; j < d; ++j) dev[j] = row[j] - mean[j];
        }
        rows::ForwardSubstituteSquaredNorms(lower_[static_cast<size_t>(c)], r.data(), m, quad);
      } else {
        // Across the block's rows (contiguous in `xt`), one coordinate at a time:
        // quad[b] += ((x_bj - mean_j) / stddev_j)^2 in ascending j.
        for (Eigen::Index part = 0; part < parts; ++part) {
          kernels.scaled_squares8(xt.data() + part * kPart * d, mean, stddev_.row(c).data(), d,
                                  quad + part * kPart);
        }
      }
      for (Eigen::Index b = 0; b < m; ++b) {
        densities(b, c) = ComponentLogDensity(rows.data() + b * d, c, quad[b], scratch.data());
      }
    }
    for (Eigen::Index b = 0; b < m; ++b) {
      weighted = densities.row(b).transpose() + log_weights_;
      out(i0 + b) = math::LogSumExp(weighted);
    }
  }
  return out;
}

void GaussianMixtureModel::SamplePrior(random::ItemRng& rng, Eigen::Ref<Eigen::VectorXd> z) const {
  z.setZero();
  z(0) = random::CategoricalFromCumulative(rng, cumulative_);
}

double GaussianMixtureModel::LogPrior(const Eigen::Ref<const Eigen::VectorXd>& z) const {
  const int c = ComponentIndex(z(0), num_components());
  return c < 0 ? kNegInf : log_weights_(c);
}

void GaussianMixtureModel::LogLikelihoodGivenLatent(const Eigen::Ref<const Eigen::VectorXd>& x,
                                                    const Eigen::Ref<const Eigen::MatrixXd>& z,
                                                    Eigen::Ref<Eigen::VectorXd> out) const {
  const Eigen::VectorXd row = x;
  const Eigen::VectorXd log_density = ComponentLogDensities(row.data());
  for (Eigen::Index s = 0; s < z.rows(); ++s) {
    const int c = ComponentIndex(z(s, 0), num_components());
    out(s) = c < 0 ? kNegInf : log_density(c);
  }
}

std::unique_ptr<LatentProposal> GaussianMixtureModel::MakeProposal(
    const Eigen::Ref<const Eigen::VectorXd>& x) const {
  const Eigen::VectorXd row = x;
  return MixturePosteriorProposal(ComponentLogDensities(row.data()) + log_weights_, log_weights_);
}

// ---------------------------------------------------------------------------------------------------------
// EM (scikit-learn's GaussianMixture, the array formulas of sklearn/mixture/_gaussian_mixture.py).

namespace {

// The EM state: weights, means and the Cholesky factors of the precisions. FULL: prec_chol[k] is
// the upper-triangular U_k with Sigma_k^-1 = U_k U_k^T; DIAG / SPHERICAL: prec_diag (K x D or K x
// 1) holds 1 / sqrt(variance).
struct EmState {
  Eigen::VectorXd weights;
  Eigen::MatrixXd means;
  std::vector<Eigen::MatrixXd> prec_chol;
  Eigen::MatrixXd prec_diag;
  // The covariances of the last M-step (FULL: K blocks; DIAG: K x D; SPHERICAL: K x 1).
  std::vector<Eigen::MatrixXd> cov_full;
  Eigen::MatrixXd cov_diag;
};

struct GmmOptions {
  int n_components = 1;
  v1::CovarianceType type = v1::FULL;
  double tol = 1e-3;
  double reg_covar = 1e-6;
  int max_iter = 100;
  int n_init = 1;
  v1::GaussianMixtureInit init = v1::INIT_KMEANS;
  // Given initial parameters (sklearn's weights_init, means_init, precisions_init); empty: none.
  Eigen::VectorXd weights_init;
  Eigen::MatrixXd means_init;
  Eigen::MatrixXd precisions_init;
};

absl::Status SingularError(int k, double reg_covar) {
  return absl::FailedPreconditionError(absl::StrCat(
      "gaussian_mixture: the covariance of component ", k,
      " is not positive definite even with reg_covar = ", reg_covar,
      " added to its diagonal (ill-defined empirical covariance, e.g. a component collapsed onto "
      "one row or onto duplicate rows); increase reg_covar, lower n_components or scale the "
      "data"));
}

// The rows are finite, but a mean or a covariance of them is not: sums or squares passed float64
// (values beyond ~1e154 do), which no regularisation fixes.
absl::Status OverflowError(const Eigen::MatrixXd& x) {
  return absl::FailedPreconditionError(absl::StrCat(
      "gaussian_mixture: the training rows' covariance overflows float64 (the largest |value| is ",
      x.cwiseAbs().maxCoeff(),
      "); scale the data (e.g. divide each column by its standard deviation) and fit again"));
}

// Rows per block of the E- and M-steps' temporaries (differences from a mean, their products): EM
// then holds O(kEmBlockRows x D) besides the data and the responsibilities, not several N x D
// matrices (a 128 MiB fit peaked at ~6x its data before; 2.7x now, bench/fit_memory.py).
constexpr Eigen::Index kEmBlockRows = 16384;

// The rows of one block for D columns: kEmBlockRows, fewer when a block's FULL products (rows x D^2
// multiply-adds) would pass ~2^34, so that `stop` is asked every few seconds at most (a few rows of
// D ~ 5 790, the widest --max_model_bytes admits, ran ~18 s per iteration past any deadline).
Eigen::Index EmBlockRows(Eigen::Index d) {
  const Eigen::Index by_work = static_cast<Eigen::Index>(
      (uint64_t{1} << 34) / static_cast<uint64_t>(std::max<Eigen::Index>(d * d, 1)));
  return std::clamp<Eigen::Index>(by_work, 64, kEmBlockRows);
}

// Rows per block of the DIAG / SPHERICAL M-step (row-major, D values each: 200 KiB at D = 784, in
// L2 while every component goes through it).
constexpr Eigen::Index kDiagonalBlockRows = 32;

}  // namespace

Eigen::Index internal::DiagonalRowsPerCheck(Eigen::Index k, Eigen::Index d) {
  const Eigen::Index terms = std::max<Eigen::Index>(k * d, 1);
  const Eigen::Index rows = std::clamp<Eigen::Index>((Eigen::Index{1} << 28) / terms, 1, 2048);
  return (rows + kDiagonalBlockRows - 1) / kDiagonalBlockRows * kDiagonalBlockRows;
}

namespace {
using internal::DiagonalRowsPerCheck;

// Columns of the inverse of a FULL component's Cholesky factor solved at once (a stop check
// between them): D^3 / 3 multiply-adds in all.
constexpr Eigen::Index kInverseColumns = 256;

// rows::CholeskyLower asking `stop` between column blocks: Eigen's blocked LLT
// (internal::llt_inplace::blocked) step by step, with its blocks and operations, so its bits. A
// FULL component's factorisation is ~D^3 / 3 multiply-adds (seconds at D ~ 5 790) that ran whole
// past a deadline or cancel. False: not positive definite (as rows::CholeskyLower).
absl::StatusOr<bool> CholeskyLowerUnlessStopped(Eigen::MatrixXd a, Eigen::MatrixXd* lower,
                                                const exec::StopToken& stop) {
  using Llt = Eigen::internal::llt_inplace<double, Eigen::Lower>;
  const Eigen::Index size = a.rows();
  if (size < 32) {
    if (Llt::unblocked(a) >= 0) return false;
  } else {
    Eigen::Index block = size / 8;
    block = (block / 16) * 16;
    block = std::min(std::max(block, Eigen::Index{8}), Eigen::Index{128});
    for (Eigen::Index k = 0; k < size; k += block) {
      MAAS_RETURN_IF_ERROR(stop.Check());
      const Eigen::Index bs = std::min(block, size - k);
      const Eigen::Index rs = size - k - bs;
      Eigen::Block<Eigen::MatrixXd> a11(a, k, k, bs, bs);
      Eigen::Block<Eigen::MatrixXd> a21(a, k + bs, k, rs, bs);
      Eigen::Block<Eigen::MatrixXd> a22(a, k + bs, k + bs, rs, rs);
      if (Llt::unblocked(a11) >= 0) return false;
      if (rs > 0) {
        a11.adjoint().triangularView<Eigen::Upper>().solveInPlace<Eigen::OnTheRight>(a21);
        a22.selfadjointView<Eigen::Lower>().rankUpdate(a21, -1.0);
      }
    }
  }
  *lower = a.triangularView<Eigen::Lower>();
  return rows::IsCholeskyFactor(*lower);
}

// sklearn's _estimate_gaussian_parameters + _compute_precision_cholesky. `normalize_by` > 0: the
// weights are nk / normalize_by (initialisation), else nk / sum(nk) (M-step).
absl::Status EstimateParameters(const Eigen::MatrixXd& x, const Eigen::MatrixXd& resp,
                                const GmmOptions& o, double normalize_by, EmState* s,
                                const exec::StopToken& stop) {
  const Eigen::Index n = x.rows(), d = x.cols(), k = resp.cols();
  const Eigen::Index block_rows = EmBlockRows(d);
  const double eps10 = 10.0 * std::numeric_limits<double>::epsilon();
  const Eigen::VectorXd nk = (resp.colwise().sum().array() + eps10).matrix().transpose();
  s->means = ResponsibilityWeightedSums(resp, x).array().colwise() / nk.array();
  s->weights = normalize_by > 0 ? (nk / normalize_by).eval() : (nk / nk.sum()).eval();
  if (o.type == v1::FULL) {
    s->cov_full.assign(static_cast<size_t>(k), Eigen::MatrixXd());
    s->prec_chol.assign(static_cast<size_t>(k), Eigen::MatrixXd());
    Eigen::MatrixXd diff, weighted;
    for (Eigen::Index c = 0; c < k; ++c) {
      // sum_i resp_ic (x_i - mean_c)(x_i - mean_c)^T, accumulated block by block of rows.
      Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(d, d);
      for (Eigen::Index i0 = 0; i0 < n; i0 += block_rows) {
        MAAS_RETURN_IF_ERROR(stop.Check());
        const Eigen::Index rows = std::min(block_rows, n - i0);
        diff = x.middleRows(i0, rows).rowwise() - s->means.row(c);
        weighted = diff.array().colwise() * resp.col(c).segment(i0, rows).array();
        // cov(j, i) += sum_r weighted(r, j) diff(r, i): C = diff^T weighted, row-major (cov^T),
        // whose column-major storage holds element (j, i) where scikit-learn's product does.
        math::Gemm(static_cast<size_t>(d), static_cast<size_t>(d), static_cast<size_t>(rows),
                   diff.data(), static_cast<size_t>(rows), weighted.data(),
                   static_cast<size_t>(rows), math::Transpose::kYes, cov.data(),
                   static_cast<size_t>(d), /*accumulate=*/true);
      }
      cov /= nk(c);
      cov.diagonal().array() += o.reg_covar;
      cov.triangularView<Eigen::StrictlyUpper>() = cov.transpose();
      if (!cov.allFinite()) return OverflowError(x);
      Eigen::MatrixXd lower;
      MAAS_ASSIGN_OR_RETURN(const bool factored, CholeskyLowerUnlessStopped(cov, &lower, stop));
      if (!factored) return SingularError(static_cast<int>(c), o.reg_covar);
      // U = (L^-1)^T.
      Eigen::MatrixXd inv = Eigen::MatrixXd::Identity(d, d);
      for (Eigen::Index j0 = 0; j0 < d; j0 += kInverseColumns) {
        MAAS_RETURN_IF_ERROR(stop.Check());
        lower.triangularView<Eigen::Lower>().solveInPlace(
            inv.middleCols(j0, std::min(kInverseColumns, d - j0)));
      }
      s->prec_chol[static_cast<size_t>(c)] = inv.transpose();
      s->cov_full[static_cast<size_t>(c)] = std::move(cov);
    }
  } else {
    // sum_i resp_ic (x_ij - mean_cj)^2, accumulated block by block of rows: scikit-learn's
    // avg_X2 - mean^2 is the same number in exact arithmetic, but cancels every digit of a
    // variance that is small next to mean^2 (rows offset by 1e8 with unit spread: 1e16 - 1e16),
    // and then reported a collapsed component for well-spread data.
    // One pass over the rows in row-major blocks of kDiagonalBlockRows (in cache while every
    // component goes through it), each component's sums one row after another
    // (rows::SimdKernels::add_weighted_squares): no N x D temporaries per component, which made
    // this step memory-bound.
    const RowMatrixXd means = s->means;
    RowMatrixXd sums = RowMatrixXd::Zero(k, d);
    RowMatrixXd block(kDiagonalBlockRows, d);
    const rows::SimdKernels& kernels = rows::BestSimdKernels();
    const Eigen::Index rows_per_check = DiagonalRowsPerCheck(k, d);
    for (Eigen::Index i0 = 0; i0 < n; i0 += kDiagonalBlockRows) {
      if (i0 % rows_per_check == 0) MAAS_RETURN_IF_ERROR(stop.Check());
      const Eigen::Index rows = std::min(kDiagonalBlockRows, n - i0);
      block.topRows(rows) = x.middleRows(i0, rows);
      for (Eigen::Index c = 0; c < k; ++c) {
        kernels.add_weighted_squares(block.data(), rows, d, resp.col(c).data() + i0,
                                     means.row(c).data(), sums.row(c).data());
      }
    }
    Eigen::MatrixXd cov(k, d);
    for (Eigen::Index c = 0; c < k; ++c) cov.row(c) = sums.row(c) / nk(c);
    cov.array() += o.reg_covar;
    if (o.type == v1::SPHERICAL) cov = cov.rowwise().mean().eval();
    if (!cov.allFinite()) return OverflowError(x);
    for (Eigen::Index c = 0; c < k; ++c) {
      for (Eigen::Index j = 0; j < cov.cols(); ++j) {
        if (!(cov(c, j) > 0.0)) return SingularError(static_cast<int>(c), o.reg_covar);
      }
    }
    s->prec_diag = cov.array().rsqrt();
    s->cov_diag = std::move(cov);
  }
  return absl::OkStatus();
}

// Normalises each row of log_resp (N x K weighted log densities) by its log-sum-exp; returns the
// mean of those, the lower bound.
double NormalizeLogResponsibilities(Eigen::MatrixXd* log_resp) {
  const Eigen::Index n = log_resp->rows();
  double total = 0.0;
  for (Eigen::Index i = 0; i < n; ++i) {
    const double norm = math::LogSumExp(log_resp->row(i).transpose());
    log_resp->row(i).array() -= norm;
    total += norm;
  }
  return total / static_cast<double>(n);
}

// The weighted log densities of the DIAG / SPHERICAL EStep into log_resp (N x K): blocks of 8
// rows coordinate-major, each component's quadratic forms 8 rows at a time
// (rows::SimdKernels::scaled_squares8_by, each row's sum over j ascending), instead of N x D
// differences and their products per component (memory-bound: 0.04-0.2x scikit-learn's fit).
absl::Status DiagonalLogDensities(const Eigen::MatrixXd& x, const EmState& s, const GmmOptions& o,
                                  Eigen::MatrixXd* log_resp, const exec::StopToken& stop) {
  const Eigen::Index n = x.rows(), d = x.cols(), k = s.weights.size();
  const double d_log_2pi = static_cast<double>(d) * math::kLogTwoPi;
  const RowMatrixXd means = s.means;
  RowMatrixXd scales(k, d);
  Eigen::VectorXd log_det(k), log_weight(k);
  for (Eigen::Index c = 0; c < k; ++c) {
    for (Eigen::Index j = 0; j < d; ++j) {
      scales(c, j) = s.prec_diag(c, o.type == v1::SPHERICAL ? 0 : j);
    }
    log_det(c) = scales.row(c).array().log().sum();
    log_weight(c) = std::log(s.weights(c));
  }
  const rows::SimdKernels& kernels = rows::BestSimdKernels();
  const Eigen::Index rows_per_check = DiagonalRowsPerCheck(k, d);
  std::vector<double> xt(static_cast<size_t>(8 * d));
  double quad[8];
  for (Eigen::Index i0 = 0; i0 < n; i0 += 8) {
    if (i0 % rows_per_check == 0) MAAS_RETURN_IF_ERROR(stop.Check());
    const Eigen::Index rows = std::min<Eigen::Index>(8, n - i0);
    for (Eigen::Index j = 0; j < d; ++j) {
      const double* column = x.data() + j * n + i0;
      for (Eigen::Index t = 0; t < 8; ++t)
        xt[static_cast<size_t>(j * 8 + t)] = column[t < rows ? t : 0];
    }
    for (Eigen::Index c = 0; c < k; ++c) {
      std::fill(quad, quad + 8, 0.0);
      kernels.scaled_squares8_by(xt.data(), means.row(c).data(), scales.row(c).data(), d, quad);
      for (Eigen::Index t = 0; t < rows; ++t) {
        (*log_resp)(i0 + t, c) = -0.5 * (d_log_2pi + quad[t]) + log_det(c) + log_weight(c);
      }
    }
  }
  return absl::OkStatus();
}

// sklearn's _estimate_log_prob_resp: returns mean log p(x) and fills log_resp (N x K).
absl::StatusOr<double> EStep(const Eigen::MatrixXd& x, const EmState& s, const GmmOptions& o,
                             Eigen::MatrixXd* log_resp, const exec::StopToken& stop) {
  const Eigen::Index n = x.rows(), d = x.cols(), k = s.weights.size();
  log_resp->resize(n, k);
  if (o.type != v1::FULL) {
    MAAS_RETURN_IF_ERROR(DiagonalLogDensities(x, s, o, log_resp, stop));
    return NormalizeLogResponsibilities(log_resp);
  }
  const Eigen::Index block_rows = EmBlockRows(d);
  const double d_log_2pi = static_cast<double>(d) * math::kLogTwoPi;
  Eigen::MatrixXd diff, projected;
  for (Eigen::Index c = 0; c < k; ++c) {
    const double log_det = s.prec_chol[static_cast<size_t>(c)].diagonal().array().log().sum();
    const double log_weight = std::log(s.weights(c));
    for (Eigen::Index i0 = 0; i0 < n; i0 += block_rows) {
      MAAS_RETURN_IF_ERROR(stop.Check());
      const Eigen::Index rows = std::min(block_rows, n - i0);
      diff = x.middleRows(i0, rows).rowwise() - s.means.row(c);
      // diff U as its transpose U^T diff^T, row-major: the column-major rows x d result.
      projected.resize(rows, d);
      math::Gemm(static_cast<size_t>(d), static_cast<size_t>(rows), static_cast<size_t>(d),
                 s.prec_chol[static_cast<size_t>(c)].data(), static_cast<size_t>(d), diff.data(),
                 static_cast<size_t>(rows), math::Transpose::kNo, projected.data(),
                 static_cast<size_t>(rows), /*accumulate=*/false);
      log_resp->col(c).segment(i0, rows) =
          (-0.5 * (d_log_2pi + projected.rowwise().squaredNorm().array()) + log_det + log_weight)
              .matrix();
    }
  }
  return NormalizeLogResponsibilities(log_resp);
}

// Initial responsibilities of one initialisation (sklearn's _initialize_parameters). The k-means
// initialisations ask `stop` per seeded centre and per Lloyd iteration.
absl::StatusOr<Eigen::MatrixXd> InitialResponsibilities(const Eigen::MatrixXd& x,
                                                        const GmmOptions& o, random::ItemRng& rng,
                                                        const exec::StopToken& stop) {
  const Eigen::Index n = x.rows();
  const int k = o.n_components;
  Eigen::MatrixXd resp = Eigen::MatrixXd::Zero(n, k);
  switch (o.init) {
    case v1::INIT_RANDOM: {
      for (Eigen::Index i = 0; i < n; ++i) {
        for (int c = 0; c < k; ++c) resp(i, c) = rng.Uniform();
      }
      resp.array().colwise() /= resp.rowwise().sum().array();
      break;
    }
    case v1::INIT_RANDOM_FROM_DATA: {
      // Floyd's sampling of k distinct rows (k Uniforms), in the order drawn.
      std::vector<int> chosen;
      for (Eigen::Index j = n - k; j < n; ++j) {
        int t = std::min<int>(static_cast<int>(rng.Uniform() * static_cast<double>(j + 1)),
                              static_cast<int>(j));
        if (std::find(chosen.begin(), chosen.end(), t) != chosen.end()) t = static_cast<int>(j);
        chosen.push_back(t);
      }
      for (int c = 0; c < k; ++c) resp(chosen[static_cast<size_t>(c)], c) = 1.0;
      break;
    }
    case v1::INIT_K_MEANS_PLUS_PLUS: {
      MAAS_ASSIGN_OR_RETURN(const std::vector<int> indices, KMeansPlusPlus(x, k, rng, stop));
      for (int c = 0; c < k; ++c) resp(indices[static_cast<size_t>(c)], c) = 1.0;
      break;
    }
    default: {
      MAAS_ASSIGN_OR_RETURN(const std::vector<int> labels, KMeansLabels(x, k, rng, stop));
      for (Eigen::Index i = 0; i < n; ++i) resp(i, labels[static_cast<size_t>(i)]) = 1.0;
      break;
    }
  }
  return resp;
}

// sklearn's _compute_precision_cholesky_from_precisions (FULL: reversed Cholesky, upper U with
// P = U U^T).
absl::Status PrecisionCholeskyFromPrecisions(const GmmOptions& o, int64_t d, EmState* s) {
  const int k = o.n_components;
  if (o.type == v1::FULL) {
    s->prec_chol.assign(static_cast<size_t>(k), Eigen::MatrixXd());
    for (int c = 0; c < k; ++c) {
      const Eigen::MatrixXd p = o.precisions_init.middleRows(c * d, d);
      const Eigen::MatrixXd flipped = p.reverse();  // rows and columns reversed
      Eigen::MatrixXd lower;
      if (!rows::CholeskyLower(flipped, &lower)) {
        return absl::InvalidArgumentError(
            absl::StrCat("gaussian_mixture.precisions_init: the precision of component ", c,
                         " is not positive definite"));
      }
      s->prec_chol[static_cast<size_t>(c)] = lower.reverse();
    }
  } else {
    s->prec_diag = o.precisions_init.array().sqrt();
  }
  return absl::OkStatus();
}

struct EmRun {
  EmState state;
  std::vector<double> lower_bounds;
  double lower_bound = kNegInf;
  bool converged = false;
  int n_iter = 0;
};

absl::StatusOr<EmRun> RunEm(const Eigen::MatrixXd& x, const GmmOptions& o, uint64_t seed, int init,
                            const exec::StopToken& stop) {
  EmRun run;
  // With weights, means and precisions all given, the initialisation's responsibilities and
  // parameters would all be replaced (their covariances too, by the first M-step): scikit-learn's
  // _initialize_parameters skips them, and so does this (a k-means start was most of a short
  // fit's time, and a start whose covariance was singular failed a fit scikit-learn runs).
  const bool all_given =
      o.weights_init.size() > 0 && o.means_init.rows() > 0 && o.precisions_init.rows() > 0;
  if (!all_given) {
    random::ItemRng rng(seed, kFitStream, static_cast<uint64_t>(init));
    MAAS_ASSIGN_OR_RETURN(const Eigen::MatrixXd resp, InitialResponsibilities(x, o, rng, stop));
    MAAS_RETURN_IF_ERROR(
        EstimateParameters(x, resp, o, static_cast<double>(x.rows()), &run.state, stop));
  }
  if (o.weights_init.size() > 0) run.state.weights = o.weights_init;
  if (o.means_init.rows() > 0) run.state.means = o.means_init;
  if (o.precisions_init.rows() > 0) {
    MAAS_RETURN_IF_ERROR(PrecisionCholeskyFromPrecisions(o, x.cols(), &run.state));
  }
  Eigen::MatrixXd log_resp;
  for (int iter = 1; iter <= o.max_iter; ++iter) {
    MAAS_RETURN_IF_ERROR(stop.Check());
    const double previous = run.lower_bound;
    MAAS_ASSIGN_OR_RETURN(const double lower_bound, EStep(x, run.state, o, &log_resp, stop));
    // Before the M-step: responsibilities of a row no component reaches are NaN, and the M-step
    // would then report the covariance instead of the cause.
    if (!std::isfinite(lower_bound)) {
      return absl::FailedPreconditionError(
          "gaussian_mixture: the log-likelihood lower bound is not finite (the data are too far "
          "from every component for float64); scale the data or increase reg_covar");
    }
    log_resp.array() = log_resp.array().exp();  // in place: the responsibilities (no N x K copy)
    MAAS_RETURN_IF_ERROR(EstimateParameters(x, log_resp, o, 0.0, &run.state, stop));
    run.lower_bound = lower_bound;
    run.lower_bounds.push_back(lower_bound);
    run.n_iter = iter;
    if (std::abs(lower_bound - previous) < o.tol) {
      run.converged = true;
      break;
    }
  }
  return run;
}

absl::StatusOr<GmmOptions> OptionsFromConfig(const v1::GaussianMixtureFit& fit) {
  GmmOptions o;
  o.n_components = fit.n_components() == 0 ? 1 : static_cast<int>(fit.n_components());
  if (fit.n_components() > 100000) {
    return absl::InvalidArgumentError(
        absl::StrCat("gaussian_mixture.n_components is ", fit.n_components(), "; at most 100000"));
  }
  if (!v1::CovarianceType_IsValid(fit.covariance_type())) {
    return absl::InvalidArgumentError("gaussian_mixture.covariance_type is unknown");
  }
  o.type = Resolve(fit.covariance_type());
  if (fit.has_tol()) {
    if (!(fit.tol() >= 0.0) || !std::isfinite(fit.tol())) {
      return absl::InvalidArgumentError(
          absl::StrCat("gaussian_mixture.tol is ", fit.tol(), "; it must be finite and >= 0"));
    }
    o.tol = fit.tol();
  }
  if (fit.has_reg_covar()) {
    if (!(fit.reg_covar() >= 0.0) || !std::isfinite(fit.reg_covar())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "gaussian_mixture.reg_covar is ", fit.reg_covar(), "; it must be finite and >= 0"));
    }
    o.reg_covar = fit.reg_covar();
  }
  if (fit.max_iter() > 1000000) {
    return absl::InvalidArgumentError("gaussian_mixture.max_iter must be at most 1000000");
  }
  o.max_iter = fit.max_iter() == 0 ? 100 : static_cast<int>(fit.max_iter());
  if (fit.n_init() > 1000) {
    return absl::InvalidArgumentError("gaussian_mixture.n_init must be at most 1000");
  }
  o.n_init = fit.n_init() == 0 ? 1 : static_cast<int>(fit.n_init());
  if (!v1::GaussianMixtureInit_IsValid(fit.init_params())) {
    return absl::InvalidArgumentError("gaussian_mixture.init_params is unknown");
  }
  o.init = fit.init_params() == v1::GAUSSIAN_MIXTURE_INIT_UNSPECIFIED ? v1::INIT_KMEANS
                                                                      : fit.init_params();
  if (fit.weights_init_size() > 0) {
    MAAS_ASSIGN_OR_RETURN(o.weights_init, MixtureWeightsFromProto(fit.weights_init(),
                                                                  "gaussian_mixture.weights_init"));
    if (o.weights_init.size() != o.n_components) {
      return absl::InvalidArgumentError(
          absl::StrCat("gaussian_mixture.weights_init has ", o.weights_init.size(),
                       " values but n_components is ", o.n_components));
    }
  }
  return o;
}

class GaussianMixtureFitter final : public FamilyFitter {
 public:
  GaussianMixtureFitter(GmmOptions options, v1::GaussianMixtureFit config, uint64_t seed)
      : options_(std::move(options)), config_(std::move(config)), seed_(seed) {}

  absl::Status AddRows(const Eigen::Ref<const Eigen::MatrixXd>& rows, uint64_t) override {
    rows_.Add(rows);
    return absl::OkStatus();
  }

  absl::StatusOr<FitResult> Finish(const exec::StopToken& stop) override {
    GmmOptions& o = options_;
    const int64_t n = rows_.rows(), d = rows_.cols();
    if (n < 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("gaussian_mixture needs at least 2 training rows, got ", n));
    }
    if (o.n_components > n) {
      return absl::InvalidArgumentError(
          absl::StrCat("gaussian_mixture.n_components is ", o.n_components, " but only ", n,
                       " training rows arrived; use n_components <= the number of rows"));
    }
    if (config_.means_init().rows() > 0 || config_.means_init().values_size() > 0) {
      MAAS_ASSIGN_OR_RETURN(
          o.means_init, MatrixFieldFromProto(config_.means_init(), "gaussian_mixture.means_init",
                                             o.n_components, d));
    }
    if (config_.precisions_init().rows() > 0 || config_.precisions_init().values_size() > 0) {
      const std::string field =
          absl::StrCat("gaussian_mixture.precisions_init (", TypeName(o.type), ")");
      MAAS_ASSIGN_OR_RETURN(
          o.precisions_init,
          MatrixFieldFromProto(config_.precisions_init(), field,
                               LayoutRows(o.type, o.n_components, d), LayoutCols(o.type, d)));
      if (o.type == v1::FULL) {
        for (int c = 0; c < o.n_components; ++c) {
          MAAS_RETURN_IF_ERROR(CheckSymmetric(o.precisions_init.middleRows(c * d, d), field, c));
        }
      } else if (!(o.precisions_init.array() > 0.0).all()) {
        return absl::InvalidArgumentError(absl::StrCat(field, ": precisions must be > 0"));
      }
    }
    const Eigen::MatrixXd x = rows_.Take();
    std::optional<EmRun> best;
    for (int init = 0; init < o.n_init; ++init) {
      MAAS_ASSIGN_OR_RETURN(EmRun run, RunEm(x, o, seed_, init, stop));
      if (!best.has_value() || run.lower_bound > best->lower_bound) best = std::move(run);
    }
    FitResult result;
    v1::GaussianMixtureSpec* spec = result.spec.mutable_gaussian_mixture();
    spec->set_covariance_type(o.type);
    const EmState& s = best->state;
    for (Eigen::Index c = 0; c < s.weights.size(); ++c) spec->add_weights(s.weights(c));
    convert::MatrixToProto(s.means, spec->mutable_means());
    if (o.type == v1::FULL) {
      Eigen::MatrixXd stacked(o.n_components * d, d);
      for (int c = 0; c < o.n_components; ++c) {
        stacked.middleRows(c * d, d) = s.cov_full[static_cast<size_t>(c)];
      }
      convert::MatrixToProto(stacked, spec->mutable_covariances());
    } else {
      convert::MatrixToProto(s.cov_diag, spec->mutable_covariances());
    }
    for (double lb : best->lower_bounds) result.trace.add_log_likelihood(lb);
    result.trace.set_converged(best->converged);
    result.trace.set_n_iter(static_cast<uint32_t>(best->n_iter));
    return result;
  }

 private:
  GmmOptions options_;
  v1::GaussianMixtureFit config_;
  uint64_t seed_;
  RowBuffer rows_;
};

}  // namespace

Family GaussianMixtureFamily() {
  Family family;
  family.name = "gaussian_mixture";
  family.spec_case = v1::GenerativeModelSpec::kGaussianMixture;
  family.build =
      [](const v1::GenerativeModelSpec& spec) -> absl::StatusOr<std::unique_ptr<GenerativeModel>> {
    MAAS_ASSIGN_OR_RETURN(std::unique_ptr<GaussianMixtureModel> model,
                          GaussianMixtureModel::Create(spec.gaussian_mixture()));
    return std::unique_ptr<GenerativeModel>(std::move(model));
  };
  // Its parameters, as fit_size counts them (the spec holds every covariance value it builds from).
  family.model_size = [](const v1::GenerativeModelSpec& spec) {
    const v1::GaussianMixtureSpec& m = spec.gaussian_mixture();
    ModelSize size;
    size.bytes = Float64Bytes(static_cast<double>(m.weights_size()) + m.means().values_size() +
                              m.covariances().values_size());
    size.what = absl::StrCat(m.weights_size(), " components, means ", m.means().rows(), " x ",
                             m.means().cols(), " and ", m.covariances().values_size(),
                             " covariance values");
    size.smaller = "use DIAG or SPHERICAL covariances, fewer components or fewer dimensions";
    return size;
  };
  family.fit_case = v1::FitConfig::kGaussianMixture;
  family.make_fitter = [](const v1::FitConfig& config,
                          uint64_t seed) -> absl::StatusOr<std::unique_ptr<FamilyFitter>> {
    MAAS_ASSIGN_OR_RETURN(GmmOptions options, OptionsFromConfig(config.gaussian_mixture()));
    return std::unique_ptr<FamilyFitter>(std::make_unique<GaussianMixtureFitter>(
        std::move(options), config.gaussian_mixture(), seed));
  };
  // Weights, means and covariances: FULL K x D x D, DIAG K x D, SPHERICAL K values.
  family.fit_size = [](const v1::FitConfig& config, int64_t dimension) {
    const v1::GaussianMixtureFit& fit = config.gaussian_mixture();
    const double k = fit.n_components() == 0 ? 1.0 : static_cast<double>(fit.n_components());
    const double d = static_cast<double>(dimension);
    const v1::CovarianceType type = Resolve(fit.covariance_type());
    const double covariances = type == v1::FULL ? k * d * d : type == v1::DIAG ? k * d : k;
    FitSize size;
    size.bytes = Float64Bytes(k + k * d + covariances);
    size.per_row_bytes = Float64Bytes(3 * k);  // log responsibilities, responsibilities, a copy
    size.what = absl::StrCat(
        k, " components of dimension ", dimension, " with ", TypeName(type), " covariances",
        type == v1::FULL ? absl::StrCat(" (", dimension, " x ", dimension, " each)") : "");
    size.smaller = type == v1::FULL ? "use covariance_type DIAG or SPHERICAL, or fewer n_components"
                                    : "use fewer n_components";
    return size;
  };
  return family;
}

}  // namespace maas::generative
