#include "services/generative/core/kmeans.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/status/status_macros.h"

namespace maas::generative {

Eigen::MatrixXd SquaredDistances(const Eigen::Ref<const Eigen::MatrixXd>& x,
                                 const Eigen::Ref<const Eigen::MatrixXd>& centres) {
  Eigen::MatrixXd d = -2.0 * x * centres.transpose();
  d.colwise() += x.rowwise().squaredNorm();
  d.rowwise() += centres.rowwise().squaredNorm().transpose();
  return d.cwiseMax(0.0);
}

namespace {

// x minus its column means. Squared distances in the expanded form |x|^2 - 2 x.c + |c|^2 lose
// every digit of a distance that is small next to |x|^2 (rows offset by 1e9, e.g. Unix times, and
// clusters a few units apart: ~1e18 - 1e18), so the seeding and the assignments work on centred
// rows, as scikit-learn's KMeans does (it subtracts X.mean(axis=0) first). Distances are unchanged
// in exact arithmetic.
Eigen::MatrixXd Centred(const Eigen::Ref<const Eigen::MatrixXd>& x) {
  const Eigen::RowVectorXd mean = x.colwise().mean();
  return x.rowwise() - mean;
}

absl::StatusOr<std::vector<int>> KMeansPlusPlusCentred(const Eigen::MatrixXd& x, int k,
                                                       random::ItemRng& rng,
                                                       const exec::StopToken& stop) {
  const Eigen::Index n = x.rows();
  std::vector<int> indices;
  indices.reserve(static_cast<size_t>(k));
  const int n_local_trials = 2 + static_cast<int>(std::log(static_cast<double>(k)));
  int first = static_cast<int>(rng.Uniform() * static_cast<double>(n));
  first = std::min<int>(first, static_cast<int>(n) - 1);
  indices.push_back(first);
  Eigen::VectorXd closest = SquaredDistances(x, x.row(first));
  double current_pot = closest.sum();
  Eigen::VectorXd cumulative(n);
  for (int c = 1; c < k; ++c) {
    MAAS_RETURN_IF_ERROR(stop.Check());
    double running = 0.0;
    for (Eigen::Index i = 0; i < n; ++i) {
      running += closest(i);
      cumulative(i) = running;
    }
    Eigen::MatrixXd candidates(n_local_trials, x.cols());
    std::vector<int> candidate_ids(static_cast<size_t>(n_local_trials));
    for (int t = 0; t < n_local_trials; ++t) {
      const double target = rng.Uniform() * current_pot;
      // numpy.searchsorted(side="left"): the first i with cumulative[i] >= target.
      const double* begin = cumulative.data();
      Eigen::Index id = std::lower_bound(begin, begin + n, target) - begin;
      id = std::min<Eigen::Index>(id, n - 1);
      candidate_ids[static_cast<size_t>(t)] = static_cast<int>(id);
      candidates.row(t) = x.row(id);
    }
    const Eigen::MatrixXd dist = SquaredDistances(x, candidates);  // n x trials
    int best = 0;
    double best_pot = 0.0;
    Eigen::VectorXd best_closest;
    for (int t = 0; t < n_local_trials; ++t) {
      Eigen::VectorXd merged = closest.cwiseMin(dist.col(t));
      const double pot = merged.sum();
      if (t == 0 || pot < best_pot) {
        best = t;
        best_pot = pot;
        best_closest = std::move(merged);
      }
    }
    current_pot = best_pot;
    closest = std::move(best_closest);
    indices.push_back(candidate_ids[static_cast<size_t>(best)]);
  }
  return indices;
}

// Nearest centre of each row; returns the sum of squared distances.
double Assign(const Eigen::Ref<const Eigen::MatrixXd>& x, const Eigen::MatrixXd& centres,
              std::vector<int>* labels, Eigen::VectorXd* distances) {
  const Eigen::MatrixXd d = SquaredDistances(x, centres);
  double inertia = 0.0;
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    Eigen::Index best;
    (*distances)(i) = d.row(i).minCoeff(&best);
    (*labels)[static_cast<size_t>(i)] = static_cast<int>(best);
    inertia += (*distances)(i);
  }
  return inertia;
}

}  // namespace

absl::StatusOr<std::vector<int>> KMeansPlusPlus(const Eigen::Ref<const Eigen::MatrixXd>& x, int k,
                                                random::ItemRng& rng, const exec::StopToken& stop) {
  return KMeansPlusPlusCentred(Centred(x), k, rng, stop);
}

absl::StatusOr<std::vector<int>> KMeansLabels(const Eigen::Ref<const Eigen::MatrixXd>& rows, int k,
                                              random::ItemRng& rng, const exec::StopToken& stop,
                                              int max_iter, double tol) {
  const Eigen::Index n = rows.rows();
  const Eigen::MatrixXd x = Centred(rows);
  MAAS_ASSIGN_OR_RETURN(const std::vector<int> seeds, KMeansPlusPlusCentred(x, k, rng, stop));
  Eigen::MatrixXd centres(k, x.cols());
  for (int c = 0; c < k; ++c) centres.row(c) = x.row(seeds[static_cast<size_t>(c)]);
  // scikit-learn's _tolerance: tol times the mean per-dimension variance.
  const Eigen::RowVectorXd mean = x.colwise().mean();
  const double variance =
      (x.rowwise() - mean).array().square().colwise().sum().mean() / static_cast<double>(n);
  const double shift_tol = tol * variance;
  std::vector<int> labels(static_cast<size_t>(n), -1);
  std::vector<int> previous;
  Eigen::VectorXd distances(n);
  for (int iter = 0; iter < max_iter; ++iter) {
    MAAS_RETURN_IF_ERROR(stop.Check());
    previous = labels;
    Assign(x, centres, &labels, &distances);
    if (labels == previous) break;  // strict convergence
    Eigen::MatrixXd updated = Eigen::MatrixXd::Zero(k, x.cols());
    Eigen::VectorXd counts = Eigen::VectorXd::Zero(k);
    for (Eigen::Index i = 0; i < n; ++i) {
      updated.row(labels[static_cast<size_t>(i)]) += x.row(i);
      counts(labels[static_cast<size_t>(i)]) += 1.0;
    }
    // Empty clusters take the rows farthest from their centres, farthest first.
    std::vector<int> order;
    size_t relocated = 0;
    for (int c = 0; c < k; ++c) {
      if (counts(c) > 0) continue;
      if (order.empty()) {
        order.resize(static_cast<size_t>(n));
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(),
                         [&](int a, int b) { return distances(a) > distances(b); });
      }
      const int row = order[std::min(relocated++, order.size() - 1)];
      updated.row(labels[static_cast<size_t>(row)]) -= x.row(row);
      counts(labels[static_cast<size_t>(row)]) -= 1.0;
      labels[static_cast<size_t>(row)] = c;
      updated.row(c) = x.row(row);
      counts(c) = 1.0;
    }
    for (int c = 0; c < k; ++c) {
      if (counts(c) > 0) {
        updated.row(c) /= counts(c);
      } else {
        updated.row(c) = centres.row(c);  // emptied by a relocation: keep its centre
      }
    }
    const double shift = (updated - centres).squaredNorm();
    centres = std::move(updated);
    if (shift <= shift_tol) {
      Assign(x, centres, &labels, &distances);
      break;
    }
  }
  return labels;
}

}  // namespace maas::generative
