// The generative model interface: a prior p(z), a likelihood p(x|z), a sampler and, where
// tractable, the exact marginal log p(x). Families implement it; the service core never looks
// inside a family.
#ifndef MAAS_SERVICES_GENERATIVE_CORE_MODEL_H_
#define MAAS_SERVICES_GENERATIVE_CORE_MODEL_H_

#include <cstdint>
#include <string>

#include "Eigen/Dense"

namespace maas::generative {

// Counter streams of the determinism contract (the `stream` word of every Philox counter).
// Sample i of a Sample request draws only from (seed, kSampleStream, start_index + i).
inline constexpr uint32_t kSampleStream = 0;

class GenerativeModel {
 public:
  virtual ~GenerativeModel() = default;

  // Family name as in ModelInfo.family, e.g. "uniform".
  virtual std::string family() const = 0;
  // Data dimension D >= 1.
  virtual int dimension() const = 0;
  // Width of the latent value returned by Sample (0: the family has no latent variable).
  virtual int latent_width() const = 0;

  // Fills row i of `x` (and of `latents` when not null; it has latent_width() columns) with sample
  // number first_index + i of the stream keyed by `seed`. A pure function of (seed, first_index +
  // i): the result does not depend on how a request is split into calls. REQUIRES: x.cols() ==
  // dimension(); latents == nullptr or latents->rows() == x.rows().
  virtual void Sample(uint64_t seed, uint64_t first_index, Eigen::Ref<Eigen::MatrixXd> x,
                      Eigen::MatrixXd* latents) const = 0;

  // Whether ExactLogLikelihood is available.
  virtual bool tractable() const = 0;
  // log p(x) per row of x (N x D). REQUIRES: tractable(), x.cols() == dimension().
  virtual Eigen::VectorXd ExactLogLikelihood(const Eigen::Ref<const Eigen::MatrixXd>& x) const = 0;
};

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_CORE_MODEL_H_
