#include "common/random/distributions.h"

#include <algorithm>
#include <cmath>

namespace maas::random {

void FillUniform(ItemRng& rng, Eigen::Ref<Eigen::VectorXd> out) {
  if (out.innerStride() == 1) {
    rng.FillUniforms(out.data(), static_cast<size_t>(out.size()));
    return;
  }
  for (Eigen::Index i = 0; i < out.size(); ++i) out[i] = rng.Uniform();
}

void FillNormal(ItemRng& rng, Eigen::Ref<Eigen::VectorXd> out) {
  if (out.innerStride() == 1) {
    rng.FillNormals(out.data(), static_cast<size_t>(out.size()));
    return;
  }
  for (Eigen::Index i = 0; i < out.size(); ++i) out[i] = rng.Normal();
}

void FillNormalRowMajor(ItemRng& rng, Eigen::Ref<Eigen::MatrixXd> out) {
  for (Eigen::Index r = 0; r < out.rows(); ++r) {
    for (Eigen::Index c = 0; c < out.cols(); ++c) out(r, c) = rng.Normal();
  }
}

int Categorical(ItemRng& rng, const Eigen::Ref<const Eigen::VectorXd>& weights) {
  const double u = rng.Uniform();
  // A sequential sum, so that `total` equals the last running sum (and the last element of the
  // cumulative sums that CategoricalFromCumulative takes) bit for bit.
  double total = 0.0;
  for (Eigen::Index k = 0; k < weights.size(); ++k) total += weights[k];
  if (!(total > 0.0) || !std::isfinite(total)) return -1;
  const double target = u * total;
  double running = 0.0;
  int last_positive = -1;
  for (Eigen::Index k = 0; k < weights.size(); ++k) {
    running += weights[k];
    if (target < running) return static_cast<int>(k);
    if (weights[k] > 0.0) last_positive = static_cast<int>(k);
  }
  // Only reached when u * total rounds up to total: take the last category of positive weight.
  return last_positive;
}

int CategoricalFromCumulative(ItemRng& rng, const Eigen::Ref<const Eigen::VectorXd>& cumulative) {
  const double u = rng.Uniform();
  const Eigen::Index size = cumulative.size();
  if (size == 0) return -1;
  const double total = cumulative[size - 1];
  if (!(total > 0.0) || !std::isfinite(total)) return -1;
  const double target = u * total;
  const double* begin = cumulative.data();
  const double* end = begin + size;
  const double* it = std::upper_bound(begin, end, target);
  // u * total may round up to total itself: take the first category that reaches the total.
  if (it == end) it = std::lower_bound(begin, end, total);
  return static_cast<int>(it - begin);
}

}  // namespace maas::random
