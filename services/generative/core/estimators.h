// Monte Carlo estimators of log p(x) = log ∫ p(x|z) p(z) dz over the latent-variable view of a
// GenerativeModel (model.h): PRIOR (z ~ p(z)), IMPORTANCE (z ~ the family's proposal q(z|x)) and
// AIS (annealed importance sampling with HMC transitions). Transport-free; the work runs on an
// exec::Executor and stops between chunks when the StopToken says so.
//
// Every estimator produces log weights log w_{r,j} for global row r and global sample (or chain)
// j; the per-row result is the mergeable math::WeightStats of those weights (log Ẑ = log Σw − log
// N, ESS, SE = sqrt(1/ESS − 1/N)) plus Pareto k̂ and, for AIS, the HMC acceptance rate.
//
// Determinism (the counter layout, also in docs/determinism.md): weight (r, j) is a pure function
// of (seed, r, j, estimator settings, model) — never of threads, chunking, how rows or samples are
// split over calls. All draws come from random::ItemRng(seed, stream, index) with
//   PRIOR       stream kPriorStream,      index (r << 32) | j   z_j ~ p(z)
//   IMPORTANCE  stream kImportanceStream, index (r << 32) | j   z_j ~ q(z | x_r)
//   AIS chain   stream kAisStream,        index (r << 32) | j   z_0 ~ p(z), then per temperature
//                                                               k = 1..K-1: L normals (momentum),
//                                                               one Uniform (MH accept)
//   AIS pilot   stream kAisPilotStream,   index (r << 32) | p   pilot chain p = 0..pilot_chains-1
// The AIS pilot depends only on (seed, r, options), so shards of chains share one frozen step-size
// schedule and merge exactly. Hence r < 2^32 and j < 2^32 (checked by ValidateEstimateRange).
#ifndef MAAS_SERVICES_GENERATIVE_CORE_ESTIMATORS_H_
#define MAAS_SERVICES_GENERATIVE_CORE_ESTIMATORS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "Eigen/Dense"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/exec/executor.h"
#include "common/exec/stop_token.h"
#include "common/math/weight_stats.h"
#include "services/generative/core/model.h"

namespace maas::generative {

// Counter streams (the `stream` word of the Philox counter) of the estimators; kSampleStream = 0
// is the Sample RPC's (model.h).
inline constexpr uint32_t kPriorStream = 1;
inline constexpr uint32_t kImportanceStream = 2;
inline constexpr uint32_t kAisStream = 3;
inline constexpr uint32_t kAisPilotStream = 4;

// Fewest weights for which Pareto k̂ is reported (the tail fit needs > 4 exceedances), and for
// which a StreamEstimate may stop on its target standard error.
inline constexpr size_t kMinWeightsForParetoK = 25;
// Pareto k̂ above which a row's standard error is unreliable (the proto's RowEstimate.pareto_k).
inline constexpr double kUnreliableParetoK = 0.7;

enum class McEstimator { kPrior, kImportance, kAis };

const char* McEstimatorName(McEstimator estimator);

// AIS settings (validated ranges in ValidateAisSettings; the counts are 64-bit so that any value
// a request sends is held, and reported, as sent).
struct AisSettings {
  // Number of annealing steps K (the schedule has K + 1 inverse temperatures 0 = β_0 < ... < β_K
  // = 1, sigmoid with radius 4). 1 .. 100000.
  int64_t num_temperatures = 1000;
  // HMC leapfrog steps per transition, 1 .. 1000.
  int64_t leapfrog_steps = 10;
  // Step size the pilot starts from, in [1e-4, 0.5].
  double initial_step_size = 0.01;
  // Target acceptance of the pilot's step-size adaptation, in (0, 1).
  double target_acceptance = 0.65;
  // Pilot chains that tune and then freeze the per-temperature step sizes, 1 .. 1000.
  int64_t pilot_chains = 4;
};

// The settings of one estimate call over rows [row_offset, row_offset + x.rows()) and samples
// [sample_offset, sample_offset + num_samples) of each row.
struct EstimateSettings {
  McEstimator estimator = McEstimator::kPrior;
  uint64_t seed = 0;
  uint64_t num_samples = 1000;
  uint64_t row_offset = 0;
  uint64_t sample_offset = 0;
  AisSettings ais;
};

// One row's result.
struct RowResult {
  math::WeightStats stats;
  // Pareto k̂ over this call's weights of the row; NaN when fewer than 25 weights (too few for
  // the tail fit).
  double pareto_k = 0.0;
  // AIS only: mean MH acceptance over chains and transitions (0 otherwise).
  double acceptance_rate = 0.0;
};

// INVALID_ARGUMENT (naming the field) if the model cannot run `estimator`: no latent variable
// (any Monte Carlo estimator), no proposal (IMPORTANCE: GenerativeModel::has_proposal, no proposal
// built), AIS on discrete latents or without a latent gradient.
absl::Status CheckEstimatorSupported(const GenerativeModel& model, McEstimator estimator);

// Rows an estimate processes at once (a group; it never enters a value): at most 2^22 weights
// (num_samples per row) and, for AIS, 2^22 frozen step sizes (num_temperatures per row); for
// IMPORTANCE also at most 32 MiB (8 x 2^22 bytes) of proposals (model.ProposalBytes() per row).
// At least 1.
uint64_t EstimateGroupRows(const GenerativeModel& model, const EstimateSettings& settings);

// Approximate work of an estimate of `rows` rows with `settings`, in multiply-adds (the model's
// costs, model.h), for the server's cap on one request (--max_estimate_work): per row its
// proposal (IMPORTANCE), one LogLikelihoodGivenLatent call per chunk of 256 samples (PRIOR,
// IMPORTANCE), and per sample the prior or proposal draw and density (L, or L^2 for a continuous
// proposal), log p(x | z) and kEvaluationOverhead; AIS counts every chain (num_samples +
// pilot_chains) through num_temperatures - 1 transitions of leapfrog_steps + 1 gradients (2x the
// evaluation each). A double: the product of the fields' bounds passes 2^64.
double EstimateWork(const GenerativeModel& model, const EstimateSettings& settings, uint64_t rows);
// The fixed cost of one sample's evaluation in multiply-add equivalents (drawing, bookkeeping):
// measured on a Zen 4, a 2-component 2-D mixture's PRIOR evaluates ~20 million samples a second on
// two cores, about what 2 000 multiply-adds of an mlp_decoder's layers take (~40 G/s there).
inline constexpr double kEvaluationOverhead = 2000;

// INVALID_ARGUMENT naming the field when an AIS option is out of range.
absl::Status ValidateAisSettings(const AisSettings& ais);

// INVALID_ARGUMENT when the global row or sample indices would not fit the counter layout
// (row_offset + rows <= 2^32, sample_offset + num_samples <= 2^32). `samples_field` names where
// num_samples came from in the message ("num_samples", or a stream's "max_samples").
absl::Status ValidateEstimateRange(uint64_t row_offset, uint64_t num_rows, uint64_t sample_offset,
                                   uint64_t num_samples, absl::string_view samples_field);

// Runs the estimator on every row of x (N x D). REQUIRES: the checks above passed,
// x.cols() == model.dimension(). Work items are (row, chunk of samples) pairs spread over
// `executor`; the result does not depend on executor.parallelism(). Returns the StopToken's status
// if it fires between chunks. Memory is bounded whatever num_samples, num_temperatures and
// x.rows() are: the log weights of at most 2^22 (row, sample) pairs at once (rows in groups, a
// row's samples in windows), folded in sample order into each row's statistics and its Pareto k̂
// tail (LogWeightTail), and for AIS the frozen step sizes of at most 2^22 (row, temperature) pairs
// (a group has at most 2^22 / num_temperatures rows).
absl::StatusOr<std::vector<RowResult>> EstimateRows(const GenerativeModel& model,
                                                    const Eigen::Ref<const Eigen::MatrixXd>& x,
                                                    const EstimateSettings& settings,
                                                    exec::Executor& executor,
                                                    const exec::StopToken& stop);

// model.ExactLogLikelihood(x) (REQUIRES model.tractable()) with the rows in chunks of 64 spread
// over `executor`, asking `stop` before each chunk (its status when it fires). Every row's value is
// the one the model gives it alone, so the result does not depend on the executor.
absl::StatusOr<Eigen::VectorXd> ExactLogLikelihoodRows(const GenerativeModel& model,
                                                       const Eigen::Ref<const Eigen::MatrixXd>& x,
                                                       exec::Executor& executor,
                                                       const exec::StopToken& stop);

// The largest log weights of one row, kept in memory bounded by `capacity` whatever is added: what
// Pareto k̂ needs (math::ParetoTailSize) instead of every weight. The values kept are exactly the
// `capacity` largest added (as a multiset), so k̂ from them equals math::ParetoKHat over all of
// them, bit for bit. A NaN is remembered (k̂ is then NaN, as ParetoKHat's), not kept.
class LogWeightTail {
 public:
  explicit LogWeightTail(size_t capacity = 0) : capacity_(capacity) {}

  // The most values one holds (and allocates room for) with this capacity: the capacity plus the
  // slack that lets selecting the largest run once per capacity / 4 values added.
  static size_t MaxHeld(size_t capacity) {
    return capacity == 0 ? 0 : capacity + capacity / 4 + 16;
  }

  void Add(double log_w);
  void AddAll(absl::Span<const double> log_w) {
    for (double v : log_w) Add(v);
  }
  // The `capacity` largest values added (all of them when fewer), in no particular order.
  absl::Span<const double> Largest();
  // Reported Pareto k̂ of `count` log weights, all added here (REQUIRES capacity >=
  // math::ParetoTailSize(count)): NaN below 25 weights or when one was NaN, else
  // math::ParetoKHatFromLargest, equal to math::ParetoKHat over all of them.
  double ParetoK(int64_t count);

  size_t capacity() const { return capacity_; }
  // Values held now, and the room allocated for them (both at most MaxHeld(capacity)).
  size_t held() const { return values_.size(); }
  size_t allocated() const { return values_.capacity(); }

 private:
  void Compact();

  size_t capacity_;
  std::vector<double> values_;
  // Once `capacity` values are kept, only values above the smallest of them can be among the
  // largest: `floor_` is that value (set by the first Compact).
  bool full_ = false;
  double floor_ = 0.0;
  bool saw_nan_ = false;
};

// The per-row setup an estimate builds before its draws (IMPORTANCE: each row's proposal; AIS: each
// row's pilot step sizes), kept from one call to the next by StreamEstimate: it depends on the
// model, the rows, the seed and the estimator's options, not on sample_offset or num_samples, so
// reusing it changes no bit of the weights. It is kept only when all rows form one group
// (EstimateGroupRows), whose setup a call holds anyway: Bytes() bounds it (0: not kept).
// The estimate fills it; its holder only keeps it between calls.
struct EstimateSetups {
  // What keeping the setup of `rows` rows holds between calls (0 when it is not kept: PRIOR, or
  // more rows than one group).
  static uint64_t Bytes(const GenerativeModel& model, const EstimateSettings& settings,
                        uint64_t rows);

  bool ready = false;  // every row's setup is built (for the model, rows and settings of the use)
  std::vector<std::unique_ptr<LatentProposal>> proposals;
  std::vector<std::vector<double>> steps;
};

// Runs the estimator as EstimateRows, but instead of each row's Pareto k̂ (RowResult::pareto_k is
// NaN) adds the row's log weights to tails[r] (REQUIRES tails.size() == x.rows()): what
// StreamEstimate keeps over increments. Memory beyond `tails` is bounded whatever num_samples and
// x.rows() are. Weights of a call that stops early may have been added. With `setups`, the rows'
// setup is taken from it when a previous call with the same model, x and settings (but for
// sample_offset and num_samples) built it, and kept there after it is built, when Bytes() > 0.
absl::StatusOr<std::vector<RowResult>> EstimateRowsIntoTails(
    const GenerativeModel& model, const Eigen::Ref<const Eigen::MatrixXd>& x,
    const EstimateSettings& settings, exec::Executor& executor, const exec::StopToken& stop,
    std::vector<LogWeightTail>& tails, EstimateSetups* setups = nullptr);

// As EstimateRows, but also returns every row's log weights (row-major, x.rows() x num_samples),
// for tests (it holds them all: x.rows() x num_samples doubles).
absl::StatusOr<std::vector<RowResult>> EstimateRowsWithWeights(
    const GenerativeModel& model, const Eigen::Ref<const Eigen::MatrixXd>& x,
    const EstimateSettings& settings, exec::Executor& executor, const exec::StopToken& stop,
    std::vector<std::vector<double>>* log_weights);

// The sigmoid annealing schedule (Grosse et al.; eval_gen): K + 1 values
// β_t = (σ(rad (2t/K − 1)) − σ(−rad)) / (σ(rad) − σ(−rad)), t = 0..K, so β_0 = 0 and β_K = 1.
std::vector<double> SigmoidSchedule(int num_temperatures, double radius = 4.0);

// Pareto k̂ of a row's weights as reported: NaN below 25 weights, else math::ParetoKHat.
double ReportedParetoK(const std::vector<double>& log_weights);

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_CORE_ESTIMATORS_H_
