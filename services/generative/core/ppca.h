// The `ppca` family (probabilistic PCA, Tipping & Bishop 1999): z ~ N(0, I_L),
// x | z ~ N(W z + mu, sigma^2 I_D). The model, its draw order and its latent view are
// LinearGaussianModel's (linear_gaussian.h) with psi = sigma^2 in every dimension.
//   Fit (closed-form maximum likelihood): mu = the mean of the rows; with S = the covariance of the
//   rows (1/N) and its eigenpairs (lambda_1 >= ... >= lambda_D, u_i): sigma^2 = the mean of the
//   D - L smallest eigenvalues, W = U_L diag(sqrt(lambda_i - sigma^2)) (each column signed so its
//   largest-magnitude entry is positive). The trace holds the mean training log-likelihood.
//   scikit-learn's PCA uses 1/(N-1): its noise_variance_ is N/(N-1) times ours.
#ifndef MAAS_SERVICES_GENERATIVE_CORE_PPCA_H_
#define MAAS_SERVICES_GENERATIVE_CORE_PPCA_H_

#include "services/generative/core/family.h"

namespace maas::generative {

// The registry entry (PpcaSpec, PpcaFit).
Family PpcaFamily();

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_CORE_PPCA_H_
