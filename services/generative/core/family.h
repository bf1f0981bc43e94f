// The family extension point of the generative service: one file pair per family, found through a
// FamilyRegistry. A family says how to validate a spec and build the model from it and, if it can
// be fitted, how to make a fitter from a FitConfig. The core holds no family-specific code.
//
// Adding a family = one file pair that defines `Family XxxFamily()` + one registration line in
// families.cc (DefaultFamilies()).
//
//   const Family* family = registry.FindBySpec(spec.family_case());
//   MAAS_ASSIGN_OR_RETURN(std::unique_ptr<GenerativeModel> model, family->build(spec));
#ifndef MAAS_SERVICES_GENERATIVE_CORE_FAMILY_H_
#define MAAS_SERVICES_GENERATIVE_CORE_FAMILY_H_

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "Eigen/Dense"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/exec/stop_token.h"
#include "maas/generative/v1/generative.pb.h"
#include "services/generative/core/model.h"

namespace maas::generative {

// Counter stream of fit randomness: initialisation r of a fit seeded with `seed` draws only from
// ItemRng(seed, kFitStream, r). (Fit seeds are their own requests' seeds, so this never shares
// words with a Sample or estimate request.)
inline constexpr uint32_t kFitStream = 0x46495400;  // "FIT\0"

// What a fitter produces: the parameters and the trace (log_likelihood, converged, n_iter; the
// core fills num_rows and seed).
struct FitResult {
  v1::GenerativeModelSpec spec;
  v1::FitTrace trace;
};

// The status of building a fitter's own result into a model: the request was valid, so a fitted
// spec that does not build (INVALID_ARGUMENT about "loadings or noise_variance out of range",
// which the caller never sent) is FAILED_PRECONDITION: these rows cannot be fitted this way.
inline absl::Status FittedModelStatus(const absl::Status& built, const std::string& family) {
  if (!absl::IsInvalidArgument(built)) return built;
  return absl::FailedPreconditionError(absl::StrCat(
      family, ": the fitted parameters do not make a usable model in float64 (", built.message(),
      "); the training rows are nearly degenerate for this family: lower latent_dim, "
      "drop constant or duplicated columns, or rescale the columns"));
}

// FAILED_PRECONDITION when the training rows' mean or covariance is not finite: the rows are
// finite, but their sums or squares overflow float64 (values beyond ~1e154 do), so no Gaussian fit
// of them is computable. OK otherwise.
inline absl::Status CheckMomentsFinite(const Eigen::VectorXd& mean, const Eigen::MatrixXd& cov,
                                       const Eigen::MatrixXd& rows, const std::string& family) {
  if (mean.allFinite() && cov.allFinite()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      family, ": the training rows' ", mean.allFinite() ? "covariance" : "mean",
      " overflows float64 (the largest |value| is ", rows.cwiseAbs().maxCoeff(),
      "); scale the data (e.g. divide each column by its standard deviation) and fit again"));
}

// Element-wise natural logarithm by std::log. Eigen's vectorized log() truncates its input to the
// smallest normal double first, so every subnormal value (a mixture weight or a Bernoulli
// probability of 1e-310 .. 5e-324, a box 1e-310 wide) got log(2.2e-308) = -708.4 instead of -713.8
// .. -744.4: log p(x) up to 36 nats too high. Use this wherever a valid parameter can be subnormal.
template <typename Derived>
auto ExactLog(const Eigen::ArrayBase<Derived>& values) {
  return values.unaryExpr([](double v) { return std::log(v); });
}

// FAILED_PRECONDITION when the training rows vary (largest |x - mean| over every column > 0) but
// by less than sqrt(DBL_MIN) ~ 1.5e-154 in every column: every variance of theirs is 0 or subnormal
// in float64, so a Gaussian fit would see constant rows (and say the rows vary in too few
// directions) or store variances without precision. OK otherwise.
inline absl::Status CheckSpreadRepresentable(double largest_spread, const std::string& family) {
  if (!(largest_spread > 0.0) || largest_spread >= std::sqrt(std::numeric_limits<double>::min())) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      family,
      ": the training rows' covariance underflows float64 (the largest |value - column "
      "mean| is ",
      largest_spread,
      ", whose square is below 2.2e-308); scale the data up (e.g. "
      "divide each column by its standard deviation) and fit again"));
}

// Accumulates the training rows of one FitModel stream, then fits. Not thread-safe (one stream).
class FamilyFitter {
 public:
  virtual ~FamilyFitter() = default;
  // Adds a chunk of rows. The core guarantees: rows.rows() >= 1, finite values, the same number of
  // columns as every earlier chunk. `first_row` is the index of the chunk's first row in the whole
  // stream (for error messages). Family-specific checks (e.g. binary values) return
  // INVALID_ARGUMENT naming the row and column.
  virtual absl::Status AddRows(const Eigen::Ref<const Eigen::MatrixXd>& rows,
                               uint64_t first_row) = 0;
  // Fits to every row added (at least one). Checks `stop` between iterations and returns its status
  // when it asks to stop. INVALID_ARGUMENT for hyperparameters that do not fit the data (e.g.
  // n_components > rows), FAILED_PRECONDITION for data that do not define the model (e.g. a
  // singular covariance reg_covar cannot fix).
  virtual absl::StatusOr<FitResult> Finish(const exec::StopToken& stop) = 0;
};

// 8 x `values` as bytes, saturating at 2^64 - 1 (sizes are products of request fields).
uint64_t Float64Bytes(double values);

// The memory a model built from a spec forms, known from the spec alone (field sizes, no values
// read, nothing built): checked against the server's --max_model_bytes before CreateModel builds a
// model and before a stored version is loaded, so a small spec cannot make a large model (a
// 160 KB ppca spec with L = 20 000 formed three 3.2 GB L x L matrices).
struct ModelSize {
  // 8 x the float64 values the built model forms: its parameters and the larger matrices derived
  // from them (ppca: the L x L posterior; mlp_decoder: the latent_dim x latent_dim Hessian of its
  // IMPORTANCE proposal). Saturates at 2^64 - 1.
  uint64_t bytes = 0;
  // What makes up `bytes`, for the refusal ("loadings 1 x 20000 and the 20000 x 20000 ...").
  std::string what;
  // How to make it smaller, naming fields.
  std::string smaller;
};

// The size of what a fit builds, known from its config and the rows' dimension D (at the first
// chunk of rows, before any fitting): checked against the server's --max_model_bytes. `bytes` is
// that of the fitted model's parameters or of a larger D-sized matrix the fit forms (ppca and
// factor_analysis: the D x D covariance); `what` e.g. "100 FULL covariances of 1000 x 1000",
// `smaller` e.g. "use covariance_type DIAG or SPHERICAL, or fewer n_components".
struct FitSize : ModelSize {
  // Working memory per training row that the fit forms (mixtures: the rows x n_components
  // responsibilities and their logs), also bounded by --max_model_bytes as rows arrive.
  uint64_t per_row_bytes = 0;
};

struct Family {
  // Name as in ModelInfo.family ("gaussian_mixture").
  std::string name;
  // The GenerativeModelSpec case holding this family's parameters.
  v1::GenerativeModelSpec::FamilyCase spec_case = v1::GenerativeModelSpec::FAMILY_NOT_SET;
  // Validates the spec (INVALID_ARGUMENT naming the field) and builds the model.
  std::function<absl::StatusOr<std::unique_ptr<GenerativeModel>>(const v1::GenerativeModelSpec&)>
      build;
  // Optional: `build` taking the spec's large fields, each freed once converted, so that a load
  // (which builds from the message it parsed, then drops it) never holds the whole spec beside the
  // model. The spec is left with unspecified large fields. Null: a load calls `build`.
  std::function<absl::StatusOr<std::unique_ptr<GenerativeModel>>(v1::GenerativeModelSpec*)>
      build_taking;
  // The size rule of a built model: what `build` forms for this spec (which need not be valid:
  // the rule reads only sizes, and `build` reports what is wrong). Required.
  std::function<ModelSize(const v1::GenerativeModelSpec&)> model_size;
  // The FitConfig case of this family's hyperparameters; FAMILY_NOT_SET when it cannot be fitted.
  v1::FitConfig::FamilyCase fit_case = v1::FitConfig::FAMILY_NOT_SET;
  // Validates the hyperparameters that do not depend on the data and makes a fitter. `seed` keys
  // every random choice of the fit. Null when fit_case is FAMILY_NOT_SET.
  std::function<absl::StatusOr<std::unique_ptr<FamilyFitter>>(const v1::FitConfig&, uint64_t seed)>
      make_fitter;
  // The size rule of a fit: what a fit with these (validated) hyperparameters builds for rows of
  // `dimension` columns. Required when fit_case is set.
  std::function<FitSize(const v1::FitConfig&, int64_t dimension)> fit_size;
};

// RESOURCE_EXHAUSTED naming --max_model_bytes when the family's model_size rule puts a model of
// `spec` above `max_model_bytes` (0: no limit); `action` says what was refused ("nothing was
// stored", "the version is not loaded"). OK otherwise.
absl::Status CheckModelSize(const Family& family, const v1::GenerativeModelSpec& spec,
                            uint64_t max_model_bytes, const std::string& action);

// Name -> family. Immutable once built; safe to share between threads.
class FamilyRegistry {
 public:
  // Adds a family. Aborts on a duplicate name or case (a programming error in the registration
  // list).
  FamilyRegistry& Register(Family family);

  // nullptr when no family has that case.
  const Family* FindBySpec(v1::GenerativeModelSpec::FamilyCase spec_case) const;
  const Family* FindByFit(v1::FitConfig::FamilyCase fit_case) const;
  const Family* FindByName(const std::string& name) const;

  // Registered names, in registration order, joined by ", " (for error messages).
  std::string Names() const;
  // Names of the families that can be fitted, joined by ", ".
  std::string FittableNames() const;

 private:
  std::vector<Family> families_;
};

// ---- Helpers shared by family implementations. ----

// A repeated double field as a vector of mixture weights: K >= 1 values, finite, > 0, summing to 1
// within 1e-9. INVALID_ARGUMENT naming `field` otherwise.
absl::StatusOr<Eigen::VectorXd> MixtureWeightsFromProto(
    const google::protobuf::RepeatedField<double>& weights, const std::string& field);

// A Matrix field with exactly `rows` x `cols` values (cols < 0: any number >= 1), finite.
// INVALID_ARGUMENT naming `field` otherwise.
absl::StatusOr<Eigen::MatrixXd> MatrixFieldFromProto(const common::v1::Matrix& m,
                                                     const std::string& field, int64_t rows,
                                                     int64_t cols);

// The exact posterior over the K components of a mixture for one row, as an importance proposal:
// q(k) = exp(log_q[k]). Sample draws one Uniform (2 words) and writes z(0) = k; LogDensity reads
// z(0). REQUIRES: log_q normalised (logsumexp = 0), at least one finite entry.
class CategoricalProposal final : public LatentProposal {
 public:
  explicit CategoricalProposal(Eigen::VectorXd log_q);
  void Sample(random::ItemRng& rng, Eigen::Ref<Eigen::VectorXd> z) const override;
  double LogDensity(const Eigen::Ref<const Eigen::VectorXd>& z) const override;

 private:
  Eigen::VectorXd log_q_;
  Eigen::VectorXd cumulative_;  // running sums of exp(log_q_)
};

// The proposal of a mixture for one row: its exact posterior, log_joint[k] = log p(x|k) + log w_k
// normalised; when p(x) = 0 in float64 (every entry -inf, the row impossible or far beyond every
// component) there is no posterior and it proposes from the prior log_weights, so every weight is
// 0 and the estimate -inf, as the exact value (never NaN from -inf - -inf).
std::unique_ptr<LatentProposal> MixturePosteriorProposal(Eigen::VectorXd log_joint,
                                                         const Eigen::VectorXd& log_weights);

// Index stored in z(0) of a discrete latent, or -1 when it is not an integer in [0, k).
int ComponentIndex(double z0, int k);

// resp^T x (K x D) for an EM step's responsibilities `resp` (N x K) and rows `x` (N x D), on the
// fixed-order math::Gemm (Eigen's product here runs baseline SSE2): each element's sum over the
// rows in ascending order, the same bits at every SIMD level.
Eigen::MatrixXd ResponsibilityWeightedSums(const Eigen::MatrixXd& resp, const Eigen::MatrixXd& x);

// Store of the rows of a fit stream (families that need every row, e.g. EM), in row-major blocks
// of kBlockBytes: no reallocation as rows arrive (a growing vector held up to 3x the rows while it
// doubled), and Take frees each block once copied, so the rows are held about once plus a block.
class RowBuffer {
 public:
  static constexpr size_t kBlockBytes = size_t{64} << 20;
  RowBuffer() = default;
  // Blocks of about `block_bytes` (tests use small ones to cross block boundaries).
  explicit RowBuffer(size_t block_bytes) : block_bytes_(block_bytes) {}

  // REQUIRES: every call has the same number of columns.
  void Add(const Eigen::Ref<const Eigen::MatrixXd>& rows);
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  // The rows as an N x D matrix (a copy; the buffer is released block by block).
  Eigen::MatrixXd Take();

 private:
  size_t block_bytes_ = kBlockBytes;
  std::vector<std::unique_ptr<double[]>> blocks_;
  int64_t block_rows_ = 0;  // rows per block
  int64_t rows_ = 0;
  int64_t cols_ = 0;
};

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_CORE_FAMILY_H_
