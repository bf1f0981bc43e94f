#include "services/generative/core/family.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/convert/matrix.h"
#include "common/math/gemm.h"
#include "common/math/log_sum_exp.h"
#include "common/random/distributions.h"
#include "common/status/status_macros.h"

namespace maas::generative {

uint64_t Float64Bytes(double values) {
  const double bytes = 8.0 * values;
  // 2^64 as a double; anything at or above it (or NaN) saturates.
  if (!(bytes < 18446744073709551616.0)) return std::numeric_limits<uint64_t>::max();
  return static_cast<uint64_t>(bytes);
}

absl::Status CheckModelSize(const Family& family, const v1::GenerativeModelSpec& spec,
                            uint64_t max_model_bytes, const std::string& action) {
  if (max_model_bytes == 0) return absl::OkStatus();
  const ModelSize size = family.model_size(spec);
  if (size.bytes <= max_model_bytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("the ", family.name, " model of ", size.what, " forms ", size.bytes,
                   " bytes, above this server's limit of ", max_model_bytes,
                   " bytes (--max_model_bytes); ", size.smaller, "; ", action));
}

FamilyRegistry& FamilyRegistry::Register(Family family) {
  for (const Family& f : families_) {
    const bool same_fit =
        family.fit_case != v1::FitConfig::FAMILY_NOT_SET && f.fit_case == family.fit_case;
    if (f.name == family.name || f.spec_case == family.spec_case || same_fit) {
      std::fprintf(stderr, "FamilyRegistry: family '%s' registered twice\n", family.name.c_str());
      std::abort();
    }
  }
  if (!family.build || !family.model_size ||
      (family.fit_case != v1::FitConfig::FAMILY_NOT_SET &&
       (!family.make_fitter || !family.fit_size))) {
    std::fprintf(stderr,
                 "FamilyRegistry: family '%s' lacks build, model_size, make_fitter or fit_size\n",
                 family.name.c_str());
    std::abort();
  }
  families_.push_back(std::move(family));
  return *this;
}

const Family* FamilyRegistry::FindBySpec(v1::GenerativeModelSpec::FamilyCase spec_case) const {
  for (const Family& f : families_) {
    if (f.spec_case == spec_case) return &f;
  }
  return nullptr;
}

const Family* FamilyRegistry::FindByFit(v1::FitConfig::FamilyCase fit_case) const {
  if (fit_case == v1::FitConfig::FAMILY_NOT_SET) return nullptr;
  for (const Family& f : families_) {
    if (f.fit_case == fit_case) return &f;
  }
  return nullptr;
}

const Family* FamilyRegistry::FindByName(const std::string& name) const {
  for (const Family& f : families_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string FamilyRegistry::Names() const {
  std::string out;
  for (const Family& f : families_) absl::StrAppend(&out, out.empty() ? "" : ", ", f.name);
  return out;
}

std::string FamilyRegistry::FittableNames() const {
  std::string out;
  for (const Family& f : families_) {
    if (f.fit_case != v1::FitConfig::FAMILY_NOT_SET) {
      absl::StrAppend(&out, out.empty() ? "" : ", ", f.name);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------

absl::StatusOr<Eigen::VectorXd> MixtureWeightsFromProto(
    const google::protobuf::RepeatedField<double>& weights, const std::string& field) {
  if (weights.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is empty; give one weight per component (K >= 1)"));
  }
  Eigen::VectorXd w(weights.size());
  double sum = 0.0;
  for (int k = 0; k < weights.size(); ++k) {
    w(k) = weights.Get(k);
    if (!std::isfinite(w(k)) || !(w(k) > 0.0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, "[", k, "] = ", w(k), "; every mixture weight must be a finite number > 0"));
    }
    sum += w(k);
  }
  if (std::abs(sum - 1.0) > 1e-9) {
    return absl::InvalidArgumentError(absl::StrCat(field, " sum to ", absl::StrFormat("%.17g", sum),
                                                   "; mixture weights must sum to 1 within 1e-9"));
  }
  return w;
}

absl::StatusOr<Eigen::MatrixXd> MatrixFieldFromProto(const common::v1::Matrix& m,
                                                     const std::string& field, int64_t rows,
                                                     int64_t cols) {
  MAAS_ASSIGN_OR_RETURN(Eigen::MatrixXd out, convert::MatrixFromProto(m, field));
  if (out.rows() != rows || (cols >= 0 && out.cols() != cols) || (cols < 0 && out.cols() < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is ", out.rows(), " x ", out.cols(), " but must be ", rows, " x ",
                     cols >= 0 ? absl::StrCat(cols) : std::string("D (D >= 1)")));
  }
  return out;
}

CategoricalProposal::CategoricalProposal(Eigen::VectorXd log_q) : log_q_(std::move(log_q)) {
  cumulative_.resize(log_q_.size());
  double running = 0.0;
  for (Eigen::Index k = 0; k < log_q_.size(); ++k) {
    running += std::exp(log_q_(k));
    cumulative_(k) = running;
  }
}

std::unique_ptr<LatentProposal> MixturePosteriorProposal(Eigen::VectorXd log_joint,
                                                         const Eigen::VectorXd& log_weights) {
  const double norm = math::LogSumExp(log_joint);
  if (!std::isfinite(norm)) return std::make_unique<CategoricalProposal>(log_weights);
  log_joint.array() -= norm;
  return std::make_unique<CategoricalProposal>(std::move(log_joint));
}

void CategoricalProposal::Sample(random::ItemRng& rng, Eigen::Ref<Eigen::VectorXd> z) const {
  z.setZero();
  z(0) = random::CategoricalFromCumulative(rng, cumulative_);
}

double CategoricalProposal::LogDensity(const Eigen::Ref<const Eigen::VectorXd>& z) const {
  const int k = ComponentIndex(z(0), static_cast<int>(log_q_.size()));
  return k < 0 ? -std::numeric_limits<double>::infinity() : log_q_(k);
}

int ComponentIndex(double z0, int k) {
  if (!(z0 >= 0.0) || !(z0 < k) || z0 != std::floor(z0)) return -1;
  return static_cast<int>(z0);
}

void RowBuffer::Add(const Eigen::Ref<const Eigen::MatrixXd>& rows) {
  if (rows.rows() == 0) return;
  if (cols_ == 0) {
    cols_ = rows.cols();
    block_rows_ = std::max<int64_t>(1, static_cast<int64_t>(block_bytes_ / sizeof(double)) / cols_);
  }
  for (Eigen::Index i = 0; i < rows.rows(); ++i, ++rows_) {
    const int64_t at = rows_ % block_rows_;
    if (at == 0) {
      // Not value-initialised: the pages of a block are committed as rows fill them.
      blocks_.emplace_back(new double[static_cast<size_t>(block_rows_ * cols_)]);
    }
    double* row = blocks_.back().get() + at * cols_;
    for (Eigen::Index j = 0; j < rows.cols(); ++j) row[j] = rows(i, j);
  }
}

Eigen::MatrixXd RowBuffer::Take() {
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::MatrixXd out(rows_, cols_);
  for (size_t b = 0; b < blocks_.size(); ++b) {
    const int64_t first = static_cast<int64_t>(b) * block_rows_;
    const int64_t m = std::min(block_rows_, rows_ - first);
    out.middleRows(first, m) = Eigen::Map<const RowMajor>(blocks_[b].get(), m, cols_);
    blocks_[b].reset();
  }
  blocks_.clear();
  rows_ = 0;
  return out;
}

Eigen::MatrixXd ResponsibilityWeightedSums(const Eigen::MatrixXd& resp, const Eigen::MatrixXd& x) {
  const Eigen::Index n = x.rows(), d = x.cols(), k = resp.cols();
  // C = x^T resp, D x K row-major, is the K x D column-major result: A = x^T is x's column-major
  // storage read as D x N row-major, op(B) = resp from resp's storage read as K x N row-major and
  // transposed. (The other way round, math::Gemm would pack all of x, N x D, on every call.)
  Eigen::MatrixXd sums(k, d);
  math::Gemm(static_cast<size_t>(d), static_cast<size_t>(k), static_cast<size_t>(n), x.data(),
             static_cast<size_t>(n), resp.data(), static_cast<size_t>(n), math::Transpose::kYes,
             sums.data(), static_cast<size_t>(k), /*accumulate=*/false);
  return sums;
}

}  // namespace maas::generative
