"""gaussian_mixture against scikit-learn, on the real maas-generative binary.

Oracles computed here: GaussianMixture.score_samples with hand-set parameters (exact log p(x)), GaussianMixture.fit
from the same initial weights / means / precisions (EM parameters and lower bounds), the mixture's closed-form moments
and scipy's KS / chi-square tests (sampling). Determinism: float64 bytes compared exactly.
"""

import grpc
import numpy as np
import pytest
import scipy.stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky

from maas.generative.v1 import generative_pb2 as gen

from generative_oracles import (create, exact, fit, generative_server, get_spec, gmm_from_spec, gmm_spec, sample,
                                assert_same_bytes_for_batch_sizes)
from maas_testing import expect_rpc_error, to_matrix

WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[0.0, 0.0, 1.0], [3.0, 1.0, -1.0], [-2.0, 2.5, 0.5]])
FULL = np.array([[[1.0, 0.3, 0.1], [0.3, 0.5, 0.0], [0.1, 0.0, 0.8]],
                 [[0.6, -0.2, 0.0], [-0.2, 1.2, 0.3], [0.0, 0.3, 0.7]],
                 [[2.0, 0.0, 0.4], [0.0, 0.3, 0.0], [0.4, 0.0, 1.1]]])
COVARIANCES = {"full": FULL,
               "diag": np.array([np.diag(c) for c in FULL]),
               "spherical": np.array([np.mean(np.diag(c)) for c in FULL])}


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    with generative_server(tmp_path_factory.mktemp("gmm")) as s:
        yield s


def sklearn_gmm(covariance_type, weights=WEIGHTS, means=MEANS, covariances=None):
    """A GaussianMixture with hand-set parameters (the documented way to use it as a density oracle)."""
    covariances = COVARIANCES[covariance_type] if covariances is None else covariances
    gm = GaussianMixture(n_components=len(weights), covariance_type=covariance_type)
    gm.weights_ = np.asarray(weights, dtype=np.float64)
    gm.means_ = np.asarray(means, dtype=np.float64)
    gm.covariances_ = np.asarray(covariances, dtype=np.float64)
    gm.precisions_cholesky_ = _compute_precision_cholesky(gm.covariances_, covariance_type)
    gm.n_features_in_ = gm.means_.shape[1]
    return gm


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_exact_log_likelihood_equals_sklearn_score_samples(stub, covariance_type):
    name = f"exact-{covariance_type}"
    create(stub, name, gmm_spec(WEIGHTS, MEANS, COVARIANCES[covariance_type], covariance_type))
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(size=(40, 3)) * 2.0 + 0.5, [[1.0, 0.5, 0.2], [8.0, -6.0, 4.0]]])
    expected = sklearn_gmm(covariance_type).score_samples(x)
    got = exact(stub, name, x)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=0)


def test_reference_value_c(stub):
    """§2.1 model C (K=3, D=2, full): score_samples and the reference's value agree with the server."""
    w = [0.5, 0.3, 0.2]
    mu = [[0, 0], [3, 1], [-2, 2.5]]
    cov = [[[1, .3], [.3, .5]], [[.6, -.2], [-.2, 1.2]], [[2, 0], [0, .3]]]
    create(stub, "model-c", gmm_spec(w, mu, cov))
    got = exact(stub, "model-c", [[1.0, 0.5]])[0]
    oracle = sklearn_gmm("full", w, mu, cov).score_samples(np.array([[1.0, 0.5]]))[0]
    assert abs(got - oracle) <= 1e-10 * abs(oracle)
    assert abs(got - (-2.618270574166)) <= 1e-11


def training_rows(n=600, seed=7):
    rng = np.random.default_rng(seed)
    k = rng.choice(3, size=n, p=WEIGHTS)
    chol = np.linalg.cholesky(FULL)
    return MEANS[k] + np.einsum("nij,nj->ni", chol[k], rng.normal(size=(n, 3)))


# 40 003 rows: the E- and M-steps work in blocks of 16 384 rows (bounded temporaries), so three blocks and a tail of
# 7 rows, small enough that Eigen evaluates its product coefficient by coefficient.
@pytest.mark.parametrize("n", [600, 40_003])
@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_em_from_the_same_start_reaches_sklearn(stub, covariance_type, n):
    """EM from identical initial weights / means / precisions: same iterations, lower bounds and parameters."""
    x = training_rows(n)
    w0 = np.array([0.4, 0.35, 0.25])
    m0 = MEANS + np.array([[0.5, -0.3, 0.2], [-0.4, 0.6, 0.0], [0.3, 0.3, -0.5]])
    if covariance_type == "full":
        p0 = np.array([np.linalg.inv(np.eye(3) * s) for s in (1.0, 2.0, 1.5)])
        layout = p0.reshape(-1, 3)
    elif covariance_type == "diag":
        p0 = np.array([[1.0, 0.5, 2.0], [1.5, 1.0, 1.0], [0.7, 0.8, 0.9]])
        layout = p0
    else:
        p0 = np.array([1.0, 0.5, 2.0])
        layout = p0.reshape(-1, 1)
    reference = GaussianMixture(n_components=3, covariance_type=covariance_type, tol=1e-9, max_iter=500,
                                weights_init=w0, means_init=m0, precisions_init=p0).fit(x)
    assert reference.converged_
    response = fit(stub, f"em-{covariance_type}", "gaussian_mixture", gen.GaussianMixtureFit(
        n_components=3, covariance_type={"full": gen.FULL, "diag": gen.DIAG, "spherical": gen.SPHERICAL}[
            covariance_type], tol=1e-9, max_iter=500, weights_init=list(w0), means_init=to_matrix(m0),
        precisions_init=to_matrix(layout)), x)
    trace = response.trace
    assert trace.converged
    assert trace.num_rows == n
    assert trace.n_iter == reference.n_iter_
    np.testing.assert_allclose(trace.log_likelihood, reference.lower_bounds_, rtol=1e-6, atol=0)
    assert abs(trace.log_likelihood[-1] - reference.lower_bound_) <= 1e-6 * abs(reference.lower_bound_)
    weights, means, covs = gmm_from_spec(get_spec(stub, f"em-{covariance_type}").gaussian_mixture)
    np.testing.assert_allclose(weights, reference.weights_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(means, reference.means_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(covs, reference.covariances_, rtol=1e-6, atol=1e-9)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_all_three_inits_given_skip_the_kmeans_start(stub):
    """With weights, means and precisions all given, scikit-learn runs no k-means start (_initialize_parameters) and
    neither does maas: here a k-means start gives the two identical far rows a cluster of their own, whose FULL
    covariance at reg_covar 0 is singular (scikit-learn's k-means-started fit fails; maas refused even the given
    start before), while EM from the given start fits them as scikit-learn does."""
    x = np.concatenate([training_rows(300, seed=9), [[30.0, 30.0, 30.0]] * 2])
    w0 = np.array([0.4, 0.35, 0.25])
    p0 = np.array([np.eye(3)] * 3)
    reference = GaussianMixture(n_components=3, covariance_type="full", tol=1e-9, max_iter=20, reg_covar=0.0,
                                weights_init=w0, means_init=MEANS, precisions_init=p0).fit(x)
    response = fit(stub, "given-start", "gaussian_mixture", gen.GaussianMixtureFit(
        n_components=3, covariance_type=gen.FULL, tol=1e-9, max_iter=20, reg_covar=0.0, weights_init=list(w0),
        means_init=to_matrix(MEANS), precisions_init=to_matrix(p0.reshape(-1, 3))), x)
    assert response.trace.n_iter == reference.n_iter_
    np.testing.assert_allclose(response.trace.log_likelihood, reference.lower_bounds_, rtol=1e-9, atol=0)
    weights, means, covs = gmm_from_spec(get_spec(stub, "given-start").gaussian_mixture)
    np.testing.assert_allclose(means, reference.means_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(covs, reference.covariances_, rtol=1e-9, atol=1e-9)


def test_em_with_kmeans_init_is_a_fixed_point_of_sklearn_em(stub):
    """k-means / k-means++ starts draw from our generator, so compare the end point instead: one more scikit-learn
    EM step from the fitted parameters moves nothing, and the fit is as good as scikit-learn's best of 5."""
    x = training_rows(900, seed=3)
    reference = GaussianMixture(n_components=3, tol=1e-8, max_iter=300, n_init=3, random_state=0).fit(x)
    for init in (gen.INIT_KMEANS, gen.INIT_K_MEANS_PLUS_PLUS):
        response = fit(stub, "em-kmeans", "gaussian_mixture",
                       gen.GaussianMixtureFit(n_components=3, tol=1e-10, max_iter=1000, n_init=2, init_params=init),
                       x, seed=11)
        assert response.trace.converged
        lb = np.array(response.trace.log_likelihood)
        assert np.all(np.diff(lb) >= -1e-9), "EM lower bound decreased"
        weights, means, covs = gmm_from_spec(get_spec(stub, "em-kmeans").gaussian_mixture)
        step = GaussianMixture(n_components=3, tol=0, max_iter=1, weights_init=weights, means_init=means,
                               precisions_init=np.linalg.inv(covs))
        with pytest.warns(ConvergenceWarning):
            step.fit(x)  # one EM iteration
        order = np.argsort(means[:, 0])
        np.testing.assert_allclose(step.means_[order], means[order], atol=1e-4)
        np.testing.assert_allclose(step.weights_[order], weights[order], atol=1e-5)
        assert abs(lb[-1] - reference.lower_bound_) < 1e-6


def test_samples_follow_the_mixture(stub):
    create(stub, "sampling", gmm_spec(WEIGHTS, MEANS, FULL))
    n = 20000
    x, z = sample(stub, "sampling", n, seed=123)
    k = z[:, 0].astype(int)
    assert np.all(z[:, 0] == k) and set(np.unique(k)) <= {0, 1, 2}
    counts = np.bincount(k, minlength=3)
    assert scipy.stats.chisquare(counts, WEIGHTS * n).pvalue > 1e-3
    # Within each component the whitened coordinates are iid N(0, 1) (KS per dimension).
    for c in range(3):
        white = np.linalg.solve(np.linalg.cholesky(FULL[c]), (x[k == c] - MEANS[c]).T).T
        for d in range(3):
            assert scipy.stats.kstest(white[:, d], "norm").pvalue > 1e-3, (c, d)
    # Moments of the whole mixture.
    mean = WEIGHTS @ MEANS
    cov = sum(w * (s + np.outer(m - mean, m - mean)) for w, m, s in zip(WEIGHTS, MEANS, FULL))
    se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(x.mean(axis=0) - mean) < 5 * se)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.08)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_sample_bytes_do_not_depend_on_batch_size(stub, covariance_type):
    name = f"det-{covariance_type}"
    create(stub, name, gmm_spec(WEIGHTS, MEANS, COVARIANCES[covariance_type], covariance_type))
    assert_same_bytes_for_batch_sizes(stub, name)


def test_bad_specs_and_fits_name_the_problem(stub):
    bad = [
        (gmm_spec([0.5, 0.3, 0.3], MEANS, FULL), ("weights", "sum")),
        (gmm_spec([1.2, -0.2, 0.0], MEANS, FULL), "weights"),
        (gmm_spec(WEIGHTS, MEANS[:2], FULL), "means"),
        (gmm_spec(WEIGHTS, MEANS, FULL * np.array([1, -1, 1])[:, None, None]), "positive definite"),
        (gmm_spec(WEIGHTS, MEANS, FULL + np.triu(np.ones(3), 1)), "symmetric"),
        (gmm_spec(WEIGHTS, MEANS, -COVARIANCES["diag"], "diag"), "covariances"),
        (gmm_spec(WEIGHTS, np.where(MEANS == 3.0, np.nan, MEANS), FULL), ("means", "finite", "nan")),
    ]
    for spec, mention in bad:
        with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, mention):
            create(stub, "bad", spec)
    x = training_rows(20)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "n_components"):
        fit(stub, "bad", "gaussian_mixture", gen.GaussianMixtureFit(n_components=21), x)
    duplicated = np.repeat([[0.0, 0.0], [5.0, 5.0]], 5, axis=0)
    with expect_rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "reg_covar"):
        fit(stub, "bad", "gaussian_mixture", gen.GaussianMixtureFit(n_components=2, reg_covar=0.0), duplicated)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "means_init"):
        fit(stub, "bad", "gaussian_mixture",
            gen.GaussianMixtureFit(n_components=2, means_init=to_matrix(np.zeros((2, 5)))), x)
    create(stub, "dims", gmm_spec(WEIGHTS, MEANS, FULL))
    with expect_rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "dimension"):
        exact(stub, "dims", np.zeros((2, 2)))
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND, "bad"):
        get_spec(stub, "bad")
