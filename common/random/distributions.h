// Distributions as free functions taking the generator explicitly (absl/random style). Every
// function documents how many words of the item's stream it consumes (see item_rng.h); the
// consumption never depends on the values drawn.
//
//   ItemRng rng(seed, /*stream=*/0, /*index=*/i);
//   Eigen::VectorXd z(latent_dim);
//   FillNormal(rng, z);                       // latent_dim normals
//   const int k = Categorical(rng, weights);  // one Uniform
#ifndef MAAS_COMMON_RANDOM_DISTRIBUTIONS_H_
#define MAAS_COMMON_RANDOM_DISTRIBUTIONS_H_

#include <Eigen/Core>

#include "common/random/item_rng.h"

namespace maas::random {

// U(0, 1), open interval. Consumes 2 words.
inline double Uniform(ItemRng& rng) { return rng.Uniform(); }

// N(0, 1). Consumes 0 or 4 words (Box–Muller pair cache, see item_rng.h).
inline double Normal(ItemRng& rng) { return rng.Normal(); }

// N(mean, stddev^2) = mean + stddev * Normal(rng). REQUIRES: stddev >= 0.
inline double Normal(ItemRng& rng, double mean, double stddev) {
  return mean + stddev * rng.Normal();
}

// out[i] = Uniform(rng) for i = 0, 1, ...: 2 * out.size() words.
void FillUniform(ItemRng& rng, Eigen::Ref<Eigen::VectorXd> out);

// out[i] = Normal(rng) for i = 0, 1, ...: identical to calling Normal() out.size() times.
void FillNormal(ItemRng& rng, Eigen::Ref<Eigen::VectorXd> out);

// Fills a matrix with Normal(rng) in row-major order: out(0,0), out(0,1), ..., out(1,0), ...
// (the order is part of the contract). A separate name because Eigen::Ref overloads on vector
// and matrix would be ambiguous.
void FillNormalRowMajor(ItemRng& rng, Eigen::Ref<Eigen::MatrixXd> out);

// Index k with probability weights[k] / sum(weights). Consumes exactly one Uniform (2 words),
// u, and returns the first k with u * sum(weights) < weights[0] + ... + weights[k] (a linear scan;
// for many categories or many draws with the same weights use CategoricalFromCumulative).
// Never returns a category of weight 0. Returns -1 (after consuming the Uniform) if `weights` is
// empty or its sum is not a positive finite number.
// REQUIRES: weights[k] >= 0 (not checked: validate untrusted weights once, outside the hot loop).
int Categorical(ItemRng& rng, const Eigen::Ref<const Eigen::VectorXd>& weights);

// The same draw as Categorical(rng, w) for the running sums cumulative[k] = w[0] + ... + w[k]
// (need not be normalized; summed left to right they give bit-identical results): one Uniform u,
// then the first k with u * cumulative.back() < cumulative[k], by binary search. Returns -1 (after
// consuming the Uniform) if `cumulative` is empty or its last value is not positive and finite.
// REQUIRES: cumulative is nondecreasing and cumulative[0] >= 0.
int CategoricalFromCumulative(ItemRng& rng, const Eigen::Ref<const Eigen::VectorXd>& cumulative);

}  // namespace maas::random

#endif  // MAAS_COMMON_RANDOM_DISTRIBUTIONS_H_
