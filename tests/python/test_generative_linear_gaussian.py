"""ppca and factor_analysis against scikit-learn, on the real maas-generative binary.

Oracles computed here: PCA.score_samples / FactorAnalysis.score_samples with hand-set parameters (exact log p(x)),
PCA.fit (noise variance and score: the PPCA maximum-likelihood solution, rescaled from scikit-learn's 1/(N-1) to the
1/N covariance), FactorAnalysis(svd_method="lapack").fit (log-likelihood trace and parameters), and scipy KS tests of
whitened samples. Determinism: float64 bytes compared exactly.
"""

import math
from fractions import Fraction

import grpc
import numpy as np
import pytest
import scipy.stats
from sklearn.decomposition import PCA, FactorAnalysis

from maas.generative.v1 import generative_pb2 as gen

from generative_oracles import (create, exact, fa_spec, fit, generative_server, get_spec, ppca_spec, sample,
                                assert_same_bytes_for_batch_sizes)
from maas_testing import TIMEOUT, expect_rpc_error, from_matrix, ref, to_matrix

D, L = 6, 2
W = np.sin(0.7 * np.outer(np.arange(1, D + 1), np.arange(1, L + 1)))
MU = 0.1 * np.arange(1, D + 1) - 0.3
SIGMA2 = 0.25
PSI = 0.1 + 0.05 * np.arange(D)


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    with generative_server(tmp_path_factory.mktemp("linear-gaussian")) as s:
        yield s


def sklearn_pca(w, mu, sigma2):
    """A PCA whose probabilistic model is N(mu, W W^T + sigma2 I) (hand-set attributes)."""
    eigval, eigvec = np.linalg.eigh(w @ w.T)
    order = np.argsort(eigval)[::-1][:w.shape[1]]
    pca = PCA(n_components=w.shape[1])
    pca.components_ = eigvec[:, order].T
    pca.explained_variance_ = eigval[order] + sigma2
    pca.noise_variance_ = sigma2
    pca.mean_ = np.asarray(mu, dtype=np.float64)
    pca.n_components_ = w.shape[1]
    pca.n_features_in_ = w.shape[0]
    return pca


def sklearn_fa(w, mu, psi):
    fa = FactorAnalysis(n_components=w.shape[1])
    fa.components_ = w.T.copy()
    fa.noise_variance_ = np.asarray(psi, dtype=np.float64)
    fa.mean_ = np.asarray(mu, dtype=np.float64)
    fa.n_features_in_ = w.shape[0]
    return fa


def test_exact_log_likelihood_equals_sklearn(stub):
    create(stub, "ppca", ppca_spec(W, MU, SIGMA2))
    create(stub, "fa", fa_spec(W, MU, PSI))
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(size=(40, D)) * 1.5 + MU, [np.cos(1.3 * np.arange(1, D + 1)), MU + 9.0]])
    np.testing.assert_allclose(exact(stub, "ppca", x), sklearn_pca(W, MU, SIGMA2).score_samples(x), rtol=1e-10)
    np.testing.assert_allclose(exact(stub, "fa", x), sklearn_fa(W, MU, PSI).score_samples(x), rtol=1e-10)


def test_reference_values_a_and_b(stub):
    """§2.1 models A (ppca) and B (factor_analysis), D = 5, L = 2: the server, scikit-learn and the reference."""
    w = W[:5]
    mu = MU[:5]
    x = np.cos(1.3 * np.arange(1, 6))[None, :]
    create(stub, "model-a", ppca_spec(w, mu, 0.25))
    create(stub, "model-b", fa_spec(w, mu, PSI[:5]))
    a = exact(stub, "model-a", x)[0]
    b = exact(stub, "model-b", x)[0]
    assert abs(a - sklearn_pca(w, mu, 0.25).score_samples(x)[0]) <= 1e-10 * abs(a)
    assert abs(b - sklearn_fa(w, mu, PSI[:5]).score_samples(x)[0]) <= 1e-10 * abs(b)
    assert abs(a - (-5.801951563756)) <= 1e-11
    assert abs(b - (-6.105376530445)) <= 1e-11


def data(n=800, seed=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, L)) @ W.T + MU + rng.normal(size=(n, D)) * np.sqrt(PSI)


def exact_rational_log_density(w, mu, psi, x) -> float:
    """log N(x | mu, W W^T + diag(psi)) with the quadratic form and the determinant computed exactly in rationals
    from the float64 inputs (Gaussian elimination over Fractions), so the only rounding is the final log."""
    d = len(mu)
    c = [[sum(Fraction(w[i, k]) * Fraction(w[j, k]) for k in range(w.shape[1])) + (Fraction(psi[i]) if i == j else 0)
          for j in range(d)] + [Fraction(x[i]) - Fraction(mu[i])] for i in range(d)]
    det = Fraction(1)
    for col in range(d):  # C is positive definite: no pivoting needed
        det *= c[col][col]
        for row in range(col + 1, d):
            factor = c[row][col] / c[col][col]
            c[row] = [a - factor * b for a, b in zip(c[row], c[col])]
    y = [Fraction(0)] * d
    for row in reversed(range(d)):
        y[row] = (c[row][d] - sum(c[row][k] * y[k] for k in range(row + 1, d))) / c[row][row]
    r = [Fraction(x[i]) - Fraction(mu[i]) for i in range(d)]
    quad = sum(a * b for a, b in zip(r, y))
    log_det = math.log(det.numerator) - math.log(det.denominator)
    return -0.5 * (d * math.log(2 * math.pi) + log_det + float(quad))


# An audit found EXACT off by 0.62 nats and IMPORTANCE (the exact posterior as proposal) by +19 nats with an SE of
# 0.6 on a ppca whose signal is 1e8 times its noise: the Cholesky of W W^T + Psi (condition ~ SNR^2) and the expanded
# quadratic r^T Psi^-1 r - 2 b^T z + z^T G z (terms of size |r|^2 / psi cancelling to O(1)) lost the digits.
@pytest.mark.parametrize("family", ["ppca", "factor_analysis"])
def test_high_signal_to_noise_estimates_are_exact(stub, family):
    d, l = 5, 2
    w = np.array([[3.0, 0.5], [-1.0, 2.0], [0.7, -1.4], [2.2, 0.3], [-0.4, 1.1]])
    mu = np.array([1.0, -2.0, 0.5, 3.0, -1.5])
    psi = np.full(d, 1e-12) if family == "ppca" else 1e-12 * np.array([1.0, 2.0, 0.5, 4.0, 1.5])
    spec = ppca_spec(w, mu, psi[0]) if family == "ppca" else fa_spec(w, mu, psi)
    name = f"snr-{family}"
    create(stub, name, spec)
    rng = np.random.default_rng(11)
    latents = [(3.0, -2.0), (100.0, -50.0), (-40.0, 7.0)]
    x = np.array([mu + w @ np.array(z) + np.sqrt(psi) * rng.normal(size=d) for z in latents])
    oracle = np.array([exact_rational_log_density(w, mu, psi, row) for row in x])
    np.testing.assert_allclose(exact(stub, name, x), oracle, rtol=0, atol=1e-6)
    response = stub.EstimateLogLikelihood(gen.EstimateLogLikelihoodRequest(
        model=ref(name), x=to_matrix(x), estimator=gen.IMPORTANCE, num_samples=1000, seed=3), timeout=TIMEOUT)
    for row, expected in zip(response.rows, oracle):
        assert abs(row.log_likelihood - expected) <= 1e-6, (row.log_likelihood, expected)
        assert row.standard_error <= 1e-6 and row.ess >= 999.0, row


def rational_log_density_or_minus_inf(w, mu, psi, x) -> float:
    """log N(x | mu, W W^T + diag(psi)) as float64 from the exact rational quadratic form: -inf where the true value
    is below -DBL_MAX (the density underflows even in log space), otherwise its float64 value."""
    d = len(mu)
    c = [[sum(Fraction(w[i, k]) * Fraction(w[j, k]) for k in range(w.shape[1])) + (Fraction(psi[i]) if i == j else 0)
          for j in range(d)] for i in range(d)]
    r = [Fraction(x[i]) - Fraction(mu[i]) for i in range(d)]
    a = [row[:] + [ri] for row, ri in zip(c, r)]
    det = Fraction(1)
    for col in range(d):
        det *= a[col][col]
        for row in range(col + 1, d):
            factor = a[row][col] / a[col][col]
            a[row] = [p - factor * q for p, q in zip(a[row], a[col])]
    y = [Fraction(0)] * d
    for row in reversed(range(d)):
        y[row] = (a[row][d] - sum(a[row][k] * y[k] for k in range(row + 1, d))) / a[row][row]
    half_quad = sum(p * q for p, q in zip(r, y)) / 2
    log_norm = -0.5 * (d * math.log(2 * math.pi) + math.log(det.numerator) - math.log(det.denominator))
    if half_quad > Fraction(np.finfo(np.float64).max):
        return -math.inf
    return log_norm - float(half_quad)


# An audit found EXACT, PRIOR and IMPORTANCE answering NaN for finite rows far from the mean (W = [[1], [0]], noise
# 1e-10, x = [1e300, 0]): the posterior mean W^T Psi^-1 (x - mu) overflowed to inf on the way (1e10 * 1e300), then
# 0 * inf = NaN. scikit-learn's score_samples (and the same Gaussian as a gaussian_mixture) answers -inf there.
@pytest.mark.parametrize("family", ["ppca", "factor_analysis"])
def test_rows_far_from_the_mean_answer_the_exact_density_never_nan(stub, family):
    w = np.array([[1.0], [0.0]])
    mu = np.array([0.5, -0.25])
    psi = np.full(2, 1e-10) if family == "ppca" else np.array([1e-10, 3e-10])
    name = f"far-{family}"
    create(stub, name, ppca_spec(w, mu, psi[0]) if family == "ppca" else fa_spec(w, mu, psi))
    # Underflowing (log p below -DBL_MAX) first, then finite ones down to -5e299.
    x = np.array([[1e300, 0.0], [-1e300, 1.0], [1e308, -1e308], [1.7e308, 0.0], [0.0, 1e200],
                  [1e100, 0.0], [1e150, 1e-6], [2.0, 1e-5], [-3.0e-3, 2e-5]])
    far = 5
    oracle = np.array([rational_log_density_or_minus_inf(w, mu, psi, row) for row in x])
    with np.errstate(all="ignore"):
        sk = sklearn_fa(w, mu, psi).score_samples(x)
    # The two oracles agree on these rows.
    assert np.isneginf(oracle[:far]).all() and np.isneginf(sk[:far]).all()
    np.testing.assert_allclose(oracle[far:], sk[far:], rtol=1e-9)

    got = exact(stub, name, x)
    assert np.isneginf(got[:far]).all(), got
    np.testing.assert_allclose(got[far:], oracle[far:], rtol=1e-12)

    for estimator in (gen.PRIOR, gen.IMPORTANCE, gen.AIS):
        response = stub.EstimateLogLikelihood(gen.EstimateLogLikelihoodRequest(
            model=ref(name), x=to_matrix(x), estimator=estimator, num_samples=64, seed=5,
            ais=gen.AisOptions(num_temperatures=50)), timeout=TIMEOUT)
        values = np.array([row.log_likelihood for row in response.rows])
        for row in response.rows:
            fields = (row.log_likelihood, row.standard_error, row.ess, row.statistics.log_sum_w,
                      row.statistics.log_sum_w2)
            assert not any(math.isnan(v) for v in fields), (gen.Estimator.Name(estimator), row)
        # Where the density underflows, so does every weight: -inf, as the exact value.
        assert np.isneginf(values[:far]).all(), (gen.Estimator.Name(estimator), values)
        if estimator == gen.IMPORTANCE:  # the exact posterior as proposal: every weight is p(x), to rounding
            np.testing.assert_allclose(values[far:], oracle[far:], rtol=1e-9)

    # Between -DBL_MAX and -DBL_MAX / 2 the quadratic form overflows but log p(x) does not (scikit-learn: -inf):
    # EXACT answers the float64 value.
    edge = np.array([[1.5e154, 0.0], [-1.8e154, 0.0]])
    edge_oracle = np.array([rational_log_density_or_minus_inf(w, mu, psi, row) for row in edge])
    assert np.isfinite(edge_oracle).all() and (edge_oracle < -0.5 * np.finfo(np.float64).max).all()
    np.testing.assert_allclose(exact(stub, name, edge), edge_oracle, rtol=1e-12)


# An audit found the same kind of rows (varying in at most latent_dim directions) answered three ways depending on
# rounding: the documented FAILED_PRECONDITION, INVALID_ARGUMENT about loadings the caller never sent, or a fitted
# noise variance of 1e-15 (a model with a mean training log-likelihood of 45).
def test_ppca_fit_on_rows_in_latent_dim_directions_is_failed_precondition(stub):
    rng = np.random.default_rng(0)
    cases = [rng.normal(size=(2, 5)), rng.normal(size=(3, 5))]
    for seed in range(6):
        r = np.random.default_rng(seed)
        cases.append(r.normal(size=(100, 2)) @ r.normal(size=(2, 5)) + r.normal(size=5))
    cases.append(1e6 + cases[-1])  # far from the origin
    # 200 columns: the top eigenpairs come from the subspace iteration, the rest as the trace minus them.
    for seed in range(2):
        r = np.random.default_rng(seed)
        cases.append(r.normal(size=(500, 2)) @ r.normal(size=(2, 200)) + r.normal(size=200))
    for i, x in enumerate(cases):
        with expect_rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "latent_dim"):
            fit(stub, f"flat{i}", "ppca", gen.PpcaFit(latent_dim=2), x)
    # A small but real noise variance (1e-10 of the signal's) still fits, and recovers it.
    r = np.random.default_rng(7)
    x = r.normal(size=(400, 2)) @ r.normal(size=(2, 5)) + 1e-5 * r.normal(size=(400, 5))
    fit(stub, "thin", "ppca", gen.PpcaFit(latent_dim=2), x)
    fitted = get_spec(stub, "thin").ppca.noise_variance
    assert 0.5e-10 < fitted < 2e-10, fitted
    # 200 columns: 1e-8 is above the rounding bound there (16 eps sqrt(N D) times the largest eigenvalue, 2.4e-10).
    x = r.normal(size=(600, 2)) @ r.normal(size=(2, 200)) + 1e-4 * r.normal(size=(600, 200))
    fit(stub, "thin-wide", "ppca", gen.PpcaFit(latent_dim=2), x)
    fitted = get_spec(stub, "thin-wide").ppca.noise_variance
    assert 0.5e-8 < fitted < 2e-8, fitted


def test_ppca_fit_is_pca_maximum_likelihood(stub):
    x = data()
    n = x.shape[0]
    response = fit(stub, "ppca-fit", "ppca", gen.PpcaFit(latent_dim=L), x)
    assert response.trace.converged and response.trace.n_iter == 1
    spec = get_spec(stub, "ppca-fit").ppca
    pca = PCA(n_components=L, svd_solver="full").fit(x)
    # scikit-learn's variances use 1/(N-1); the maximum-likelihood PPCA uses 1/N.
    scale = (n - 1) / n
    assert abs(spec.noise_variance - pca.noise_variance_ * scale) <= 1e-9 * spec.noise_variance
    np.testing.assert_allclose(np.array(spec.mean), pca.mean_, rtol=1e-12, atol=1e-12)
    pca.explained_variance_ = pca.explained_variance_ * scale
    pca.noise_variance_ = pca.noise_variance_ * scale
    held_out = data(50, seed=6)
    np.testing.assert_allclose(exact(stub, "ppca-fit", held_out), pca.score_samples(held_out), rtol=1e-9)
    assert abs(response.trace.log_likelihood[0] - pca.score(x)) <= 1e-9 * abs(pca.score(x))
    # The loadings span the principal subspace: W W^T equals scikit-learn's low-rank part.
    w = from_matrix(spec.loadings)
    low_rank = (pca.components_.T * (pca.explained_variance_ - pca.noise_variance_)) @ pca.components_
    np.testing.assert_allclose(w @ w.T, low_rank, atol=1e-9)


def test_factor_analysis_fit_matches_sklearn(stub):
    x = data(600, seed=8)
    n = x.shape[0]
    reference = FactorAnalysis(n_components=L, svd_method="lapack", tol=1e-4, max_iter=2000).fit(x)
    response = fit(stub, "fa-fit", "factor_analysis", gen.FactorAnalysisFit(latent_dim=L, tol=1e-4, max_iter=2000),
                   x)
    trace = response.trace
    assert trace.n_iter == reference.n_iter_
    assert trace.converged == (reference.n_iter_ < 2000)
    np.testing.assert_allclose(np.array(trace.log_likelihood) * n, reference.loglike_, rtol=1e-6)
    spec = get_spec(stub, "fa-fit").factor_analysis
    np.testing.assert_allclose(np.array(spec.noise_variance), reference.noise_variance_, rtol=1e-6)
    w = from_matrix(spec.loadings)
    np.testing.assert_allclose(w @ w.T, reference.components_.T @ reference.components_, atol=1e-6)
    held_out = data(50, seed=9)
    np.testing.assert_allclose(exact(stub, "fa-fit", held_out), reference.score_samples(held_out), rtol=1e-6)


def few_rows_of_many_columns(n=40, d=300, seed=11):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 3)) @ rng.normal(size=(3, d)) + 0.7 * rng.normal(size=(n, d))
            + np.linspace(-1.0, 2.0, d))


# The 2026-12-06 generative hunt: fits of fewer rows than columns decomposed the D x D covariance (factor_analysis
# on every EM iteration: 50 x 2000 rows ran 38 s, past a 30 s deadline); they now take the SVD of the N x D rows.
def assert_fa_fit_matches_sklearn(stub, name, x, latent, held_out):
    """factor_analysis fitted on x equals scikit-learn's lapack FactorAnalysis: iterations, log-likelihood trace,
    noise variances, W W^T and held-out EXACT log p(x)."""
    n = x.shape[0]
    reference = FactorAnalysis(n_components=latent, svd_method="lapack", tol=1e-4, max_iter=2000).fit(x)
    response = fit(stub, name, "factor_analysis", gen.FactorAnalysisFit(latent_dim=latent, tol=1e-4, max_iter=2000), x)
    assert response.trace.n_iter == reference.n_iter_
    np.testing.assert_allclose(np.array(response.trace.log_likelihood) * n, reference.loglike_, rtol=1e-9)
    spec = get_spec(stub, name).factor_analysis
    np.testing.assert_allclose(np.array(spec.noise_variance), reference.noise_variance_, rtol=1e-7)
    w = from_matrix(spec.loadings)
    np.testing.assert_allclose(w @ w.T, reference.components_.T @ reference.components_, atol=1e-7)
    np.testing.assert_allclose(exact(stub, name, held_out), reference.score_samples(held_out), rtol=1e-8)


def assert_ppca_fit_is_the_closed_form(stub, name, x, latent):
    """ppca fitted on x is the maximum-likelihood closed form on the D x D covariance (numpy's eigh the oracle): the
    noise variance the mean of the D - L smallest eigenvalues, W W^T = U_L (Lambda_L - sigma^2) U_L^T."""
    n, d = x.shape
    fit(stub, name, "ppca", gen.PpcaFit(latent_dim=latent), x)
    spec = get_spec(stub, name).ppca
    centred = x - x.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / n)  # ascending
    sigma2 = eigenvalues[:d - latent].sum() / (d - latent)
    assert abs(spec.noise_variance - sigma2) <= 1e-10 * sigma2
    top = eigenvectors[:, -latent:]
    w = from_matrix(spec.loadings)
    np.testing.assert_allclose(w @ w.T, (top * (eigenvalues[-latent:] - sigma2)) @ top.T,
                               atol=1e-9 * eigenvalues[-1])


def test_factor_analysis_fit_of_fewer_rows_than_columns_matches_sklearn(stub):
    assert_fa_fit_matches_sklearn(stub, "fa-wide", few_rows_of_many_columns(), 3, few_rows_of_many_columns(seed=12))


def many_columns(n=1500, d=300, factors=4, seed=21):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, factors)) @ (3.0 * rng.normal(size=(factors, d)))
            + rng.uniform(0.5, 1.5, size=d) * rng.normal(size=(n, d)) + np.linspace(-1.0, 2.0, d))


# Fits of many columns decomposed the D x D (scaled) covariance fully, on every factor_analysis iteration (D = 2 000,
# L = 20: 51 s, scikit-learn's randomized fit 0.85 s); a subspace iteration now takes the top L eigenpairs (D >= 128,
# L small against D). The fits still equal scikit-learn's exact (lapack) ones.
def test_fits_of_many_columns_match_sklearn(stub):
    x = many_columns()
    assert_fa_fit_matches_sklearn(stub, "fa-many", x, 4, many_columns(50, seed=22))
    assert_ppca_fit_is_the_closed_form(stub, "ppca-many", x, 4)


def two_uncorrelated_groups(n=256, da=150, db=50, seed=0):
    """Integer rows from a Sylvester-Hadamard design: 150 columns at scale 1000 sharing a weak factor and 50 at scale
    ~10 sharing a tight one, the two groups' sample covariance exactly 0 (a factorial experiment's design)."""
    from scipy.linalg import hadamard
    rng = np.random.default_rng(seed)
    h = hadamard(n).astype(np.float64)
    cols = iter(rng.permutation(np.arange(1, n)))  # zero-sum, mutually orthogonal columns
    factor_a, factor_b = next(cols), next(cols)
    xa = np.stack([rng.integers(-1, 2) * h[:, factor_a] + 3 * h[:, next(cols)] for _ in range(da)], axis=1) * 1000
    xb = np.stack([10 * h[:, factor_b] + rng.integers(1, 4) * h[:, next(cols)] for _ in range(db)], axis=1)
    return np.concatenate([xa, xb], axis=1)


# The 2026-12-06 fit hunt: each factor_analysis iteration's subspace iteration started from the previous one's
# vectors, which (the first iteration in raw units) lay in the large-scale group; after rescaling by the noise
# variances the other group held the top direction, which those vectors lacked, and the fit stopped 74 nats per row
# below scikit-learn's (4 iterations instead of 7). Every iteration now starts from the same fixed basis.
def test_factor_analysis_fit_of_uncorrelated_column_groups_matches_sklearn(stub):
    x = two_uncorrelated_groups()
    n = x.shape[0]
    for latent, tol in ((1, 1e-2), (1, 1e-4), (2, 1e-2)):
        reference = FactorAnalysis(n_components=latent, svd_method="lapack", tol=tol, max_iter=200).fit(x)
        name = f"fa-groups-{latent}-{tol}".replace("e-0", "e")
        response = fit(stub, name, "factor_analysis", gen.FactorAnalysisFit(latent_dim=latent, tol=tol, max_iter=200),
                       x)
        assert response.trace.n_iter == reference.n_iter_
        # At L = 2 the second iteration's scaled covariance is ill-conditioned: decomposing it (maas; fully: 26 nats
        # off, by the subspace iteration 1.6) and decomposing the rows (scikit-learn) differ in ~1e-5 of that
        # iteration's log-likelihood; the fits' ends agree closely.
        np.testing.assert_allclose(np.array(response.trace.log_likelihood) * n, reference.loglike_, rtol=1e-5)
        assert abs(response.trace.log_likelihood[-1] * n - reference.loglike_[-1]) <= 1e-9 * abs(reference.loglike_[-1])
        spec = get_spec(stub, name).factor_analysis
        np.testing.assert_allclose(np.array(spec.noise_variance), reference.noise_variance_, rtol=1e-6)


def test_ppca_fit_of_fewer_rows_than_columns_is_the_closed_form(stub):
    assert_ppca_fit_is_the_closed_form(stub, "ppca-wide", few_rows_of_many_columns(seed=13), 3)


@pytest.mark.parametrize("family", ["ppca", "fa"])
def test_samples_follow_the_model(stub, family):
    name = f"sampling-{family}"
    psi = np.full(D, SIGMA2) if family == "ppca" else PSI
    create(stub, name, ppca_spec(W, MU, SIGMA2) if family == "ppca" else fa_spec(W, MU, PSI))
    n = 10000
    x, z = sample(stub, name, n, seed=99)
    assert z.shape == (n, L)
    for j in range(L):
        assert scipy.stats.kstest(z[:, j], "norm").pvalue > 1e-3
    # x | z: residuals are N(0, psi) per dimension; x itself N(mu, W W^T + Psi) (whitened KS per dimension).
    residual = (x - MU - z @ W.T) / np.sqrt(psi)
    cov = W @ W.T + np.diag(psi)
    white = np.linalg.solve(np.linalg.cholesky(cov), (x - MU).T).T
    for d in range(D):
        assert scipy.stats.kstest(residual[:, d], "norm").pvalue > 1e-3
        assert scipy.stats.kstest(white[:, d], "norm").pvalue > 1e-3
    assert np.all(np.abs(x.mean(axis=0) - MU) < 5 * np.sqrt(np.diag(cov) / n))
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.08)
    assert_same_bytes_for_batch_sizes(stub, name)


def test_bad_specs_and_fits_name_the_problem(stub):
    bad = [
        (ppca_spec(W, MU, 0.0), "noise_variance"),
        (ppca_spec(W, MU, -1.0), "noise_variance"),
        (ppca_spec(W, MU[:3], 0.2), "mean"),
        (ppca_spec(np.where(W > 0.9, np.inf, W), MU, 0.2), ("loadings", "finite", "inf")),
        (fa_spec(W, MU, np.where(PSI > 0.2, -PSI, PSI)), "noise_variance"),
        (fa_spec(W, MU, PSI[:4]), "noise_variance"),
    ]
    for spec, mention in bad:
        with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, mention):
            create(stub, "bad", spec)
    x = data(30)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "latent_dim"):
        fit(stub, "bad", "ppca", gen.PpcaFit(latent_dim=D), x)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "latent_dim"):
        fit(stub, "bad", "ppca", gen.PpcaFit(), x)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "latent_dim"):
        fit(stub, "bad", "factor_analysis", gen.FactorAnalysisFit(latent_dim=D + 1), x)
    line = np.outer(np.arange(10.0), np.ones(D))
    with expect_rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "latent_dim"):
        fit(stub, "bad", "ppca", gen.PpcaFit(latent_dim=1), line)
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND, "bad"):
        get_spec(stub, "bad")
