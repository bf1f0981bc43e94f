#include "services/generative/core/estimators.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/math/pareto_k.h"
#include "common/random/item_rng.h"

namespace maas::generative {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Samples per work item for PRIOR and IMPORTANCE. Fixed (never derived from the thread count), so
// items and results are the same for any executor.
constexpr uint64_t kChunk = 256;
// Rows are processed in groups holding at most this many log weights at once, and (AIS) at most
// this many frozen step sizes (bounded memory).
constexpr uint64_t kMaxGroupWeights = uint64_t{1} << 22;
// AIS work items ask the stop token once this many evaluations of log p(x|z) and its gradient
// have run since they last asked (checked between HMC transitions, so at most this plus one
// transition's leapfrog_steps in between): the stop latency is bounded by an amount of work,
// whatever num_temperatures, pilot_chains and leapfrog_steps are.
constexpr int64_t kGradientsPerStopCheck = 256;

uint64_t CounterIndex(uint64_t row, uint64_t sample) { return (row << 32) | sample; }

// Length of one latent value z as the estimators pass it: the category index z(0) for discrete
// latents, the L coordinates for continuous ones.
int LatentWidth(const GenerativeModel& model) {
  return model.latent_kind() == LatentKind::kDiscrete ? 1 : model.latent_dim();
}

// Records the first stop status seen by any item.
class StopLatch {
 public:
  explicit StopLatch(const exec::StopToken& stop) : stop_(stop) {}
  // True when the work should go on.
  bool Continue() {
    if (stopped_.load(std::memory_order_relaxed)) return false;
    absl::Status status = stop_.Check();
    if (status.ok()) return true;
    std::lock_guard<std::mutex> lock(mutex_);
    if (status_.ok()) status_ = std::move(status);
    stopped_.store(true);
    return false;
  }
  absl::Status status() {
    std::lock_guard<std::mutex> lock(mutex_);
    return status_;
  }
  bool stopped() const { return stopped_.load(); }

 private:
  const exec::StopToken& stop_;
  std::atomic<bool> stopped_{false};
  std::mutex mutex_;
  absl::Status status_;
};

// Counts one work item's gradient evaluations and asks the StopLatch once every
// kGradientsPerStopCheck of them.
class GradientMeter {
 public:
  explicit GradientMeter(StopLatch& latch) : latch_(latch) {}
  // True when the work should go on.
  bool Continue() {
    if (gradients_ < kGradientsPerStopCheck) return true;
    gradients_ = 0;
    return latch_.Continue();
  }
  void Count(int64_t gradients) { gradients_ += gradients; }

 private:
  StopLatch& latch_;
  int64_t gradients_ = 0;
};

// ---- PRIOR and IMPORTANCE ----

// Fills log_w[j - first] for samples j in [first, last) of global row `row`.
void SampleChunkWeights(const GenerativeModel& model, const Eigen::Ref<const Eigen::VectorXd>& x,
                        const LatentProposal* proposal, const EstimateSettings& settings,
                        uint64_t row, uint64_t first, uint64_t last, double* log_w) {
  const int dim = LatentWidth(model);
  const Eigen::Index n = static_cast<Eigen::Index>(last - first);
  Eigen::MatrixXd z(n, dim);
  Eigen::VectorXd one(dim);
  Eigen::VectorXd correction = Eigen::VectorXd::Zero(n);  // log p(z) - log q(z) for IMPORTANCE.
  const uint32_t stream = proposal == nullptr ? kPriorStream : kImportanceStream;
  for (Eigen::Index i = 0; i < n; ++i) {
    random::ItemRng rng(settings.seed, stream,
                        CounterIndex(row, settings.sample_offset + first + i));
    if (proposal == nullptr) {
      model.SamplePrior(rng, one);
    } else {
      proposal->Sample(rng, one);
      correction(i) = model.LogPrior(one) - proposal->LogDensity(one);
    }
    z.row(i) = one.transpose();
  }
  Eigen::Map<Eigen::VectorXd> out(log_w, n);
  model.LogLikelihoodGivenLatent(x, z, out);
  out += correction;
}

// ---- AIS ----

// log p(x|z) and its gradient at the chain's current state, cached between transitions.
struct ChainState {
  Eigen::VectorXd z;
  Eigen::VectorXd grad;  // d/dz log p(x|z)
  double log_lik = 0.0;
};

// One HMC transition leaving p(z) p(x|z)^beta invariant (prior N(0, I)). Consumes
// `leapfrog_steps` normals and one Uniform from rng, whatever happens. Returns whether the
// proposal was accepted.
bool HmcTransition(const GenerativeModel& model, const Eigen::Ref<const Eigen::VectorXd>& x,
                   double beta, double step, int64_t leapfrog_steps, random::ItemRng& rng,
                   ChainState& state, ChainState& scratch, Eigen::VectorXd& momentum) {
  for (Eigen::Index i = 0; i < momentum.size(); ++i) momentum(i) = rng.Normal();
  const auto potential = [beta](const ChainState& s) {
    return 0.5 * s.z.squaredNorm() - beta * s.log_lik;
  };
  const double h0 = potential(state) + 0.5 * momentum.squaredNorm();
  scratch.z = state.z;
  scratch.grad = state.grad;
  scratch.log_lik = state.log_lik;
  // grad U = z - beta * grad log p(x|z).
  momentum -= 0.5 * step * (scratch.z - beta * scratch.grad);
  bool finite = true;
  for (int64_t l = 0; l < leapfrog_steps; ++l) {
    scratch.z += step * momentum;
    scratch.log_lik = model.LogLikelihoodGradient(x, scratch.z, scratch.grad);
    if (!std::isfinite(scratch.log_lik) || !scratch.grad.allFinite()) {
      finite = false;
      break;
    }
    const double scale = l + 1 < leapfrog_steps ? step : 0.5 * step;
    momentum -= scale * (scratch.z - beta * scratch.grad);
  }
  const double u = rng.Uniform();
  if (!finite) return false;
  const double h1 = potential(scratch) + 0.5 * momentum.squaredNorm();
  if (!(std::log(u) < h0 - h1)) return false;
  std::swap(state.z, scratch.z);
  std::swap(state.grad, scratch.grad);
  state.log_lik = scratch.log_lik;
  return true;
}

void InitChain(const GenerativeModel& model, const Eigen::Ref<const Eigen::VectorXd>& x,
               random::ItemRng& rng, ChainState& state) {
  model.SamplePrior(rng, state.z);
  state.log_lik = model.LogLikelihoodGradient(x, state.z, state.grad);
}

// The pilot: pilot_chains chains annealed in lockstep with one shared step size, adapted after
// every temperature towards the target acceptance (EMA with slowness 0.9, x1.02 / x0.98, clamped
// to [1e-4, 0.5]). Returns the step size used at each temperature k = 1..K-1 (index k); returns
// early, incomplete, when the latch says stop (asked between transitions by a GradientMeter).
std::vector<double> PilotStepSizes(const GenerativeModel& model,
                                   const Eigen::Ref<const Eigen::VectorXd>& x,
                                   const EstimateSettings& settings, uint64_t row,
                                   const std::vector<double>& beta, StopLatch& latch) {
  const AisSettings& ais = settings.ais;
  const int dim = model.latent_dim();
  const int num_temperatures = static_cast<int>(ais.num_temperatures);
  std::vector<double> steps(num_temperatures, ais.initial_step_size);
  std::vector<random::ItemRng> rngs;
  std::vector<ChainState> chains(ais.pilot_chains);
  GradientMeter meter(latch);
  for (int p = 0; p < ais.pilot_chains; ++p) {
    rngs.emplace_back(settings.seed, kAisPilotStream, CounterIndex(row, p));
    chains[p].z.resize(dim);
    chains[p].grad.resize(dim);
    InitChain(model, x, rngs[p], chains[p]);
    meter.Count(1);
  }
  ChainState scratch{Eigen::VectorXd(dim), Eigen::VectorXd(dim), 0.0};
  Eigen::VectorXd momentum(dim);
  double step = ais.initial_step_size;
  double average = ais.target_acceptance;
  for (int k = 1; k < num_temperatures; ++k) {
    steps[k] = step;
    int accepted = 0;
    for (int p = 0; p < ais.pilot_chains; ++p) {
      if (!meter.Continue()) return steps;
      accepted += HmcTransition(model, x, beta[k], step, ais.leapfrog_steps, rngs[p], chains[p],
                                scratch, momentum);
      meter.Count(ais.leapfrog_steps);
    }
    average = 0.9 * average + 0.1 * (static_cast<double>(accepted) / ais.pilot_chains);
    step *= average > ais.target_acceptance ? 1.02 : 0.98;
    step = std::clamp(step, 1e-4, 0.5);
  }
  return steps;
}

// One AIS chain (global row `row`, global chain `chain`) with the frozen step sizes; returns the
// log weight and adds the number of accepted transitions to *accepted.
double AisChain(const GenerativeModel& model, const Eigen::Ref<const Eigen::VectorXd>& x,
                const EstimateSettings& settings, uint64_t row, uint64_t chain,
                const std::vector<double>& beta, const std::vector<double>& steps, StopLatch& latch,
                int64_t* accepted) {
  const int dim = model.latent_dim();
  const int num_temperatures = static_cast<int>(settings.ais.num_temperatures);
  random::ItemRng rng(settings.seed, kAisStream, CounterIndex(row, chain));
  ChainState state{Eigen::VectorXd(dim), Eigen::VectorXd(dim), 0.0};
  ChainState scratch{Eigen::VectorXd(dim), Eigen::VectorXd(dim), 0.0};
  Eigen::VectorXd momentum(dim);
  InitChain(model, x, rng, state);
  GradientMeter meter(latch);
  meter.Count(1);
  double log_w = 0.0;
  for (int k = 1; k <= num_temperatures; ++k) {
    log_w += (beta[k] - beta[k - 1]) * state.log_lik;
    if (k == num_temperatures) break;
    if (!meter.Continue()) return kNaN;
    *accepted += HmcTransition(model, x, beta[k], steps[k], settings.ais.leapfrog_steps, rng, state,
                               scratch, momentum);
    meter.Count(settings.ais.leapfrog_steps);
  }
  return log_w;
}

}  // namespace

const char* McEstimatorName(McEstimator estimator) {
  switch (estimator) {
    case McEstimator::kPrior:
      return "PRIOR";
    case McEstimator::kImportance:
      return "IMPORTANCE";
    case McEstimator::kAis:
      return "AIS";
  }
  return "?";
}

absl::Status CheckEstimatorSupported(const GenerativeModel& model, McEstimator estimator) {
  const char* name = McEstimatorName(estimator);
  if (model.latent_kind() == LatentKind::kNone) {
    return absl::InvalidArgumentError(
        absl::StrCat("estimator: ", name, " needs a latent variable, but family '", model.family(),
                     "' has none: its log p(x) is exact; use estimator EXACT"));
  }
  switch (estimator) {
    case McEstimator::kPrior:
      return absl::OkStatus();
    case McEstimator::kImportance:
      if (!model.has_proposal()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "estimator: family '", model.family(), "' has no importance proposal; use PRIOR",
            model.tractable() ? " or EXACT" : "",
            model.latent_kind() == LatentKind::kContinuous ? " or AIS" : ""));
      }
      return absl::OkStatus();
    case McEstimator::kAis:
      if (model.latent_kind() != LatentKind::kContinuous) {
        return absl::InvalidArgumentError(absl::StrCat(
            "estimator: AIS needs a continuous latent variable (HMC transitions), but family '",
            model.family(), "' has a discrete one; use EXACT, PRIOR or IMPORTANCE"));
      }
      if (!model.has_latent_gradient()) {
        return absl::InvalidArgumentError(
            absl::StrCat("estimator: AIS needs the gradient of log p(x|z), which family '",
                         model.family(), "' does not provide; use PRIOR or IMPORTANCE"));
      }
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError("estimator: unknown Monte Carlo estimator");
}

absl::Status ValidateAisSettings(const AisSettings& ais) {
  if (ais.num_temperatures < 1 || ais.num_temperatures > 100000) {
    return absl::InvalidArgumentError(absl::StrCat("ais.num_temperatures is ", ais.num_temperatures,
                                                   "; use 1 .. 100000 (0: 1000)"));
  }
  if (ais.leapfrog_steps < 1 || ais.leapfrog_steps > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("ais.leapfrog_steps is ", ais.leapfrog_steps, "; use 1 .. 1000 (0: 10)"));
  }
  if (!(ais.initial_step_size >= 1e-4 && ais.initial_step_size <= 0.5)) {
    return absl::InvalidArgumentError(absl::StrCat("ais.initial_step_size is ",
                                                   ais.initial_step_size,
                                                   "; use a value in [1e-4, 0.5] (unset: 0.01)"));
  }
  if (!(ais.target_acceptance > 0.0 && ais.target_acceptance < 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("ais.target_acceptance is ",
                                                   ais.target_acceptance,
                                                   "; use a value in (0, 1) (unset: 0.65)"));
  }
  if (ais.pilot_chains < 1 || ais.pilot_chains > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("ais.pilot_chains is ", ais.pilot_chains, "; use 1 .. 1000 (0: 4)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateEstimateRange(uint64_t row_offset, uint64_t num_rows, uint64_t sample_offset,
                                   uint64_t num_samples, absl::string_view samples_field) {
  constexpr uint64_t kLimit = uint64_t{1} << 32;
  if (row_offset >= kLimit || num_rows > kLimit - row_offset) {
    return absl::InvalidArgumentError(
        absl::StrCat("row_offset is ", row_offset, " with ", num_rows,
                     " rows: global row indices must stay below 2^32 (the counter layout)"));
  }
  if (sample_offset >= kLimit || num_samples > kLimit - sample_offset) {
    return absl::InvalidArgumentError(
        absl::StrCat("sample_offset is ", sample_offset, " with ", samples_field, " ", num_samples,
                     ": global sample indices must stay below 2^32 (the counter layout)"));
  }
  return absl::OkStatus();
}

std::vector<double> SigmoidSchedule(int num_temperatures, double radius) {
  std::vector<double> beta(num_temperatures + 1);
  if (num_temperatures == 1) return {0.0, 1.0};
  const auto sigmoid = [](double t) { return 1.0 / (1.0 + std::exp(-t)); };
  const double low = sigmoid(-radius), high = sigmoid(radius);
  for (int t = 0; t <= num_temperatures; ++t) {
    const double s = sigmoid(radius * (2.0 * t / num_temperatures - 1.0));
    beta[t] = (s - low) / (high - low);
  }
  beta.front() = 0.0;
  beta.back() = 1.0;
  return beta;
}

double ReportedParetoK(const std::vector<double>& log_weights) {
  if (log_weights.size() < kMinWeightsForParetoK) return kNaN;
  return math::ParetoKHat(absl::MakeConstSpan(log_weights));
}

void LogWeightTail::Add(double log_w) {
  if (std::isnan(log_w)) {
    saw_nan_ = true;
    return;
  }
  if (capacity_ == 0 || (full_ && !(log_w > floor_))) return;
  const size_t max_held = MaxHeld(capacity_);
  if (values_.size() == values_.capacity()) {
    values_.reserve(std::min(max_held, std::max<size_t>(16, 2 * values_.size())));
  }
  values_.push_back(log_w);
  if (values_.size() == max_held) Compact();
}

void LogWeightTail::Compact() {
  if (values_.size() <= capacity_) return;
  const auto nth = values_.begin() + static_cast<std::ptrdiff_t>(capacity_ - 1);
  std::nth_element(values_.begin(), nth, values_.end(), std::greater<double>());
  values_.resize(capacity_);
  // Every value kept is >= *nth: one <= it adds nothing to the `capacity` largest (an equal one
  // only swaps for an equal one).
  floor_ = *nth;
  full_ = true;
}

absl::Span<const double> LogWeightTail::Largest() {
  Compact();
  return absl::MakeConstSpan(values_);
}

double LogWeightTail::ParetoK(int64_t count) {
  if (count < static_cast<int64_t>(kMinWeightsForParetoK) || saw_nan_) return kNaN;
  return math::ParetoKHatFromLargest(Largest(), count);
}

double EstimateWork(const GenerativeModel& model, const EstimateSettings& settings, uint64_t rows) {
  const double l = model.latent_dim();
  const double evaluation = model.LatentEvaluationCost();
  const double samples = static_cast<double>(settings.num_samples);
  double per_row = 0;
  switch (settings.estimator) {
    case McEstimator::kPrior:
    case McEstimator::kImportance: {
      const bool importance = settings.estimator == McEstimator::kImportance;
      const bool continuous = model.latent_kind() == LatentKind::kContinuous;
      const double draw = importance && continuous ? l * l : l;
      const double calls = std::ceil(samples / static_cast<double>(kChunk));
      per_row = (importance ? model.ProposalCost() : 0) + calls * model.LatentCallCost() +
                samples * (kEvaluationOverhead + evaluation + draw);
      break;
    }
    case McEstimator::kAis: {
      const AisSettings& a = settings.ais;
      const double chains = samples + static_cast<double>(a.pilot_chains);
      const double gradients = static_cast<double>(std::max<int64_t>(a.num_temperatures - 1, 0)) *
                               static_cast<double>(a.leapfrog_steps + 1);
      per_row = chains * (kEvaluationOverhead + evaluation + l +
                          gradients * (kEvaluationOverhead + 2 * evaluation + l));
      break;
    }
  }
  return static_cast<double>(rows) * per_row;
}

uint64_t EstimateGroupRows(const GenerativeModel& model, const EstimateSettings& settings) {
  const bool ais = settings.estimator == McEstimator::kAis;
  const uint64_t per_row = std::max<uint64_t>(
      {settings.num_samples, 1, ais ? static_cast<uint64_t>(settings.ais.num_temperatures) : 0});
  uint64_t rows = std::max<uint64_t>(1, kMaxGroupWeights / per_row);
  if (settings.estimator == McEstimator::kImportance) {
    // Every row's proposal is held while its group runs (ppca with L = 2 000 copies a 32 MB
    // factor into each: 300 rows took 6.6 GB): at most 8 x kMaxGroupWeights bytes of them.
    const uint64_t proposal = static_cast<uint64_t>(std::max<int64_t>(model.ProposalBytes(), 0));
    if (proposal > 0) rows = std::min(rows, std::max<uint64_t>(1, 8 * kMaxGroupWeights / proposal));
  }
  return rows;
}

absl::StatusOr<Eigen::VectorXd> ExactLogLikelihoodRows(const GenerativeModel& model,
                                                       const Eigen::Ref<const Eigen::MatrixXd>& x,
                                                       exec::Executor& executor,
                                                       const exec::StopToken& stop) {
  constexpr Eigen::Index kRows = 64;
  const Eigen::Index n = x.rows();
  Eigen::VectorXd out(n);
  StopLatch latch(stop);
  executor.ParallelFor((n + kRows - 1) / kRows, [&](int64_t chunk) {
    if (!latch.Continue()) return;
    const Eigen::Index first = static_cast<Eigen::Index>(chunk) * kRows;
    const Eigen::Index rows = std::min(kRows, n - first);
    out.segment(first, rows) = model.ExactLogLikelihood(x.middleRows(first, rows));
  });
  if (latch.stopped()) return latch.status();
  return out;
}

uint64_t EstimateSetups::Bytes(const GenerativeModel& model, const EstimateSettings& settings,
                               uint64_t rows) {
  if (settings.estimator == McEstimator::kPrior || rows > EstimateGroupRows(model, settings)) {
    return 0;
  }
  if (settings.estimator == McEstimator::kAis) {
    return rows * (settings.ais.num_temperatures * sizeof(double) + sizeof(std::vector<double>));
  }
  return rows * (static_cast<uint64_t>(std::max<int64_t>(model.ProposalBytes(), 0)) +
                 sizeof(std::unique_ptr<LatentProposal>));
}

namespace {

// The one estimate loop. Per row: statistics added in sample order, then either the row's own tail
// (tails == nullptr: Pareto k̂ into the result) or tails[r]; every weight appended to
// (*log_weights)[r] when log_weights is set.
absl::StatusOr<std::vector<RowResult>> RunEstimate(
    const GenerativeModel& model, const Eigen::Ref<const Eigen::MatrixXd>& x,
    const EstimateSettings& settings, exec::Executor& executor, const exec::StopToken& stop,
    std::vector<LogWeightTail>* tails, std::vector<std::vector<double>>* log_weights,
    EstimateSetups* setups = nullptr) {
  const uint64_t num_rows = static_cast<uint64_t>(x.rows());
  const uint64_t n = settings.num_samples;
  std::vector<RowResult> results(num_rows);
  if (log_weights != nullptr) log_weights->assign(num_rows, {});
  StopLatch latch(stop);
  const bool ais = settings.estimator == McEstimator::kAis;
  const std::vector<double> beta =
      ais ? SigmoidSchedule(static_cast<int>(settings.ais.num_temperatures))
          : std::vector<double>{};
  const uint64_t chunk = ais ? 1 : kChunk;
  // Rows in groups of whole rows while a row's weights fit kMaxGroupWeights; a row with more
  // samples goes alone, in windows of kMaxGroupWeights samples (a multiple of kChunk, so the
  // chunks are those of one window over all samples). Either way at most kMaxGroupWeights weights
  // are held at once. AIS rows also hold their pilot's num_temperatures step sizes while their
  // group runs, so an AIS group has at most kMaxGroupWeights / num_temperatures rows too: at most
  // kMaxGroupWeights step sizes, whatever rows x num_temperatures is (12 000 rows x 100 000
  // temperatures in one group took 9.6 GB); IMPORTANCE rows hold their proposals, at most
  // 8 x kMaxGroupWeights bytes of them (EstimateGroupRows). Groups never enter a value: every row's
  // pilot, chains and reductions depend only on its global row index.
  const uint64_t group_rows = EstimateGroupRows(model, settings);
  const uint64_t window = std::min<uint64_t>(std::max<uint64_t>(n, 1), kMaxGroupWeights);
  const size_t own_tail = math::ParetoTailSize(static_cast<int64_t>(n));
  std::vector<double> weights(std::min(group_rows, num_rows) * window);
  // A kept setup: one group of every row (EstimateSetups::Bytes > 0).
  const bool keep = setups != nullptr && EstimateSetups::Bytes(model, settings, num_rows) > 0;

  for (uint64_t group_first = 0; group_first < num_rows; group_first += group_rows) {
    if (!latch.Continue()) return latch.status();
    const uint64_t rows = std::min(group_rows, num_rows - group_first);
    // Per-row setup: the importance proposal or the AIS pilot's frozen step sizes.
    std::vector<std::unique_ptr<LatentProposal>> own_proposals;
    std::vector<std::vector<double>> own_steps;
    std::vector<std::unique_ptr<LatentProposal>>& proposals =
        keep ? setups->proposals : own_proposals;
    std::vector<std::vector<double>>& steps = keep ? setups->steps : own_steps;
    // Asked inside a long proposal (mlp_decoder: seconds each at a large L), which otherwise ran
    // whole after a deadline or a cancel (one per worker: ~13 s at L = 2 360).
    const exec::StopToken proposal_stop([&latch] {
      return latch.Continue() ? absl::OkStatus() : absl::CancelledError("the estimate stopped");
    });
    const bool reuse = keep && setups->ready;
    if (!reuse) {
      proposals.clear();
      proposals.resize(rows);
      steps.clear();
      steps.resize(rows);
    }
    if (settings.estimator != McEstimator::kPrior && !reuse) {
      executor.ParallelFor(static_cast<int64_t>(rows), [&](int64_t i) {
        if (!latch.Continue()) return;
        const Eigen::Index r = static_cast<Eigen::Index>(group_first + i);
        const Eigen::VectorXd row = x.row(r).transpose();
        if (ais) {
          steps[i] = PilotStepSizes(model, row, settings, settings.row_offset + r, beta, latch);
        } else {
          proposals[i] = model.MakeProposalUnlessStopped(row, proposal_stop);
        }
      });
      if (latch.stopped()) return latch.status();
      for (uint64_t i = 0; i < rows && !ais; ++i) {
        if (proposals[i] == nullptr) {
          return absl::InvalidArgumentError(absl::StrCat("estimator: family '", model.family(),
                                                         "' gave no importance proposal for row ",
                                                         group_first + i));
        }
      }
      if (keep) setups->ready = true;
    }
    std::vector<LogWeightTail> group_tails;
    if (tails == nullptr) group_tails.assign(rows, LogWeightTail(own_tail));
    std::vector<int64_t> accepted_total(rows, 0);
    for (uint64_t window_first = 0; window_first < n; window_first += window) {
      const uint64_t window_size = std::min(window, n - window_first);
      const uint64_t chunks = (window_size + chunk - 1) / chunk;
      std::vector<int64_t> accepted(ais ? rows * chunks : 0, 0);
      executor.ParallelFor(static_cast<int64_t>(rows * chunks), [&](int64_t item) {
        if (!latch.Continue()) return;
        const uint64_t i = static_cast<uint64_t>(item) / chunks;
        const uint64_t c = static_cast<uint64_t>(item) % chunks;
        const Eigen::Index r = static_cast<Eigen::Index>(group_first + i);
        const uint64_t global_row = settings.row_offset + static_cast<uint64_t>(r);
        const Eigen::VectorXd row = x.row(r).transpose();
        const uint64_t first = window_first + c * chunk;
        const uint64_t last = std::min(window_first + window_size, first + chunk);
        double* out = weights.data() + i * window + (first - window_first);
        if (ais) {
          for (uint64_t j = first; j < last; ++j) {
            *out++ = AisChain(model, row, settings, global_row, settings.sample_offset + j, beta,
                              steps[i], latch, &accepted[item]);
          }
        } else {
          SampleChunkWeights(model, row, proposals[i].get(), settings, global_row, first, last,
                             out);
        }
      });
      if (latch.stopped()) return latch.status();
      // Per-row reductions, each in sample order: independent of how items ran.
      executor.ParallelFor(static_cast<int64_t>(rows), [&](int64_t i) {
        const absl::Span<const double> w(weights.data() + i * window, window_size);
        results[group_first + i].stats.AddAll(w);
        (tails != nullptr ? (*tails)[group_first + i] : group_tails[i]).AddAll(w);
        for (uint64_t c = 0; c < chunks && ais; ++c) accepted_total[i] += accepted[i * chunks + c];
      });
      if (log_weights != nullptr) {
        for (uint64_t i = 0; i < rows; ++i) {
          const double* w = weights.data() + i * window;
          (*log_weights)[group_first + i].insert((*log_weights)[group_first + i].end(), w,
                                                 w + window_size);
        }
      }
    }
    executor.ParallelFor(static_cast<int64_t>(rows), [&](int64_t i) {
      RowResult& result = results[group_first + i];
      result.pareto_k = tails == nullptr ? group_tails[i].ParetoK(static_cast<int64_t>(n)) : kNaN;
      if (ais && settings.ais.num_temperatures > 1) {
        result.acceptance_rate = static_cast<double>(accepted_total[i]) /
                                 (static_cast<double>(n) * (settings.ais.num_temperatures - 1));
      }
    });
  }
  return results;
}

}  // namespace

absl::StatusOr<std::vector<RowResult>> EstimateRowsIntoTails(
    const GenerativeModel& model, const Eigen::Ref<const Eigen::MatrixXd>& x,
    const EstimateSettings& settings, exec::Executor& executor, const exec::StopToken& stop,
    std::vector<LogWeightTail>& tails, EstimateSetups* setups) {
  return RunEstimate(model, x, settings, executor, stop, &tails, nullptr, setups);
}

absl::StatusOr<std::vector<RowResult>> EstimateRowsWithWeights(
    const GenerativeModel& model, const Eigen::Ref<const Eigen::MatrixXd>& x,
    const EstimateSettings& settings, exec::Executor& executor, const exec::StopToken& stop,
    std::vector<std::vector<double>>* log_weights) {
  return RunEstimate(model, x, settings, executor, stop, nullptr, log_weights);
}

absl::StatusOr<std::vector<RowResult>> EstimateRows(const GenerativeModel& model,
                                                    const Eigen::Ref<const Eigen::MatrixXd>& x,
                                                    const EstimateSettings& settings,
                                                    exec::Executor& executor,
                                                    const exec::StopToken& stop) {
  return RunEstimate(model, x, settings, executor, stop, nullptr, nullptr);
}

}  // namespace maas::generative
