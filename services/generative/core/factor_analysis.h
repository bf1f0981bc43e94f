// The `factor_analysis` family: z ~ N(0, I_L), x | z ~ N(W z + mu, diag(psi)). The model, its draw
// order and its latent view are LinearGaussianModel's (linear_gaussian.h).
//   Fit: scikit-learn's FactorAnalysis with svd_method="lapack" (exact SVD): mu = the mean of the
//   rows, psi starts at 1, then per iteration the SVD of the scaled centred data (here: the
//   eigendecomposition of Psi^-1/2 S Psi^-1/2, S the 1/N covariance, which has the same squared
//   singular values and vectors), W from its L leading terms, the log-likelihood, and
//   psi = max(var - colsum(W^2), 1e-12); stop when the log-likelihood rises by less than tol (on
//   the total over rows, as scikit-learn) or after max_iter iterations. The trace holds the per-row
//   mean log-likelihood of each iteration (scikit-learn's loglike_ / N).
#ifndef MAAS_SERVICES_GENERATIVE_CORE_FACTOR_ANALYSIS_H_
#define MAAS_SERVICES_GENERATIVE_CORE_FACTOR_ANALYSIS_H_

#include "services/generative/core/family.h"

namespace maas::generative {

// The registry entry (FactorAnalysisSpec, FactorAnalysisFit).
Family FactorAnalysisFamily();

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_CORE_FACTOR_ANALYSIS_H_
