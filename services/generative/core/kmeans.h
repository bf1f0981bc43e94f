// k-means initialisation helpers of the mixture fits, after scikit-learn's sklearn.cluster:
// greedy k-means++ seeding (`kmeans_plusplus`) and Lloyd's k-means (`KMeans(n_init=1)`), with our
// Philox generator instead of numpy's (so the same algorithm, other random choices).
//
// Both work on the rows minus their column means, as scikit-learn's KMeans does: distances are
// those of the rows, without the rounding of |x|^2 of rows far from the origin.
//
// Randomness: every function draws from the given ItemRng only, in a fixed order documented per
// function, so a fit is a pure function of (seed, data).
#ifndef MAAS_SERVICES_GENERATIVE_CORE_KMEANS_H_
#define MAAS_SERVICES_GENERATIVE_CORE_KMEANS_H_

#include <vector>

#include "Eigen/Dense"
#include "absl/status/statusor.h"
#include "common/exec/stop_token.h"
#include "common/random/item_rng.h"

namespace maas::generative {

// Greedy k-means++: returns k row indices of x (N x D, N >= k >= 1).
// Draws: one Uniform for the first centre (row floor(u N)); then for each further centre
// 2 + floor(log k) Uniforms, one per candidate (a candidate is drawn with probability proportional
// to its squared distance to the closest centre so far), keeping the candidate that lowers the
// total squared distance most (ties: the first). Asks `stop` before each further centre (one pass
// over the rows each) and returns its status when it says stop.
absl::StatusOr<std::vector<int>> KMeansPlusPlus(const Eigen::Ref<const Eigen::MatrixXd>& x, int k,
                                                random::ItemRng& rng, const exec::StopToken& stop);

// Lloyd's k-means from KMeansPlusPlus seeds: labels in [0, k) per row. Stops when the labels no
// longer change, when the total squared centre shift is <= tol * mean per-dimension variance, or
// after max_iter iterations; an empty cluster is moved to the row farthest from its centre. The
// returned labels are those of the final centres. Asks `stop` as KMeansPlusPlus does, then before
// each iteration, and returns its status when it says stop.
absl::StatusOr<std::vector<int>> KMeansLabels(const Eigen::Ref<const Eigen::MatrixXd>& x, int k,
                                              random::ItemRng& rng, const exec::StopToken& stop,
                                              int max_iter = 300, double tol = 1e-4);

// Squared Euclidean distances of every row of x to every row of centres (N x K), clamped at 0.
Eigen::MatrixXd SquaredDistances(const Eigen::Ref<const Eigen::MatrixXd>& x,
                                 const Eigen::Ref<const Eigen::MatrixXd>& centres);

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_CORE_KMEANS_H_
