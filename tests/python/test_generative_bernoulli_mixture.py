"""bernoulli_mixture against numpy/scipy, on the real maas-generative binary (scikit-learn has no such class).

Oracles computed here: log p(x) = logsumexp_k [log pi_k + sum_d x log mu + (1 - x) log(1 - mu)] in numpy; one EM step
written in numpy (the fitted parameters must be its fixed point); scipy chi-square tests of the samples.
"""

import grpc
import numpy as np
import pytest
import scipy.special
import scipy.stats

from maas.generative.v1 import generative_pb2 as gen

from generative_oracles import (assert_same_bytes_for_batch_sizes, bmm_spec, create, exact, fit, generative_server,
                                get_spec, sample)
from maas_testing import expect_rpc_error, from_matrix

K, D = 3, 8
WEIGHTS = np.array([0.5, 0.3, 0.2])
PROBS = 0.5 + 0.45 * np.sin(np.outer(np.arange(1, K + 1), np.arange(1, D + 1)))


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    with generative_server(tmp_path_factory.mktemp("bmm")) as s:
        yield s


def component_log_lik(x, probs):
    with np.errstate(divide="ignore"):
        return x @ np.log(probs).T + (1 - x) @ np.log1p(-probs).T


def log_p(x, weights, probs):
    return scipy.special.logsumexp(component_log_lik(x, probs) + np.log(weights), axis=1)


def test_exact_log_likelihood_equals_numpy(stub):
    create(stub, "exact", bmm_spec(WEIGHTS, PROBS))
    rng = np.random.default_rng(4)
    x = (rng.random((60, D)) < 0.5).astype(float)
    np.testing.assert_allclose(exact(stub, "exact", x), log_p(x, WEIGHTS, PROBS), rtol=1e-12)
    # Reference value D of §2.1 (K = 2, D = 6).
    probs_d = 0.5 + 0.4 * np.sin(np.outer([1, 2], np.arange(1, 7)))
    create(stub, "model-d", bmm_spec([0.6, 0.4], probs_d))
    x_d = np.array([[1, 0, 1, 1, 0, 0]], dtype=float)
    got = exact(stub, "model-d", x_d)[0]
    assert abs(got - log_p(x_d, [0.6, 0.4], probs_d)[0]) <= 1e-12 * abs(got)
    assert abs(got - (-2.927741807981)) <= 1e-11
    # Values other than 0 and 1 are refused (as in training rows), naming the first one.
    bad = x[:3].copy()
    bad[2, 5] = 0.5
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "row 2, column 5 is 0.5", "0 or 1"):
        exact(stub, "exact", bad)


def numpy_em_step(x, weights, probs, min_probability):
    """One EM iteration (E-step, then M-step with scikit-learn's 10 eps and the clip)."""
    log_resp = component_log_lik(x, probs) + np.log(weights)
    norm = scipy.special.logsumexp(log_resp, axis=1)
    resp = np.exp(log_resp - norm[:, None])
    nk = resp.sum(axis=0) + 10 * np.finfo(float).eps
    new_probs = np.clip(resp.T @ x / nk[:, None], min_probability, 1 - min_probability)
    return nk / nk.sum(), new_probs, norm.mean()


def test_em_reaches_a_fixed_point_of_numpy_em(stub):
    truth_x, _ = sample_truth(stub, 4000)
    response = fit(stub, "em", "bernoulli_mixture",
                   gen.BernoulliMixtureFit(n_components=K, tol=1e-10, max_iter=2000, min_probability=1e-6),
                   truth_x, seed=3)
    trace = np.array(response.trace.log_likelihood)
    assert response.trace.converged
    assert np.all(np.diff(trace) >= -1e-10), "EM decreased the log-likelihood"
    spec = get_spec(stub, "em").bernoulli_mixture
    weights, probs = np.array(spec.weights), from_matrix(spec.probabilities)
    step_w, step_p, mean_ll = numpy_em_step(truth_x, weights, probs, 1e-6)
    np.testing.assert_allclose(step_w, weights, atol=1e-5)
    np.testing.assert_allclose(step_p, probs, atol=1e-5)
    assert abs(mean_ll - trace[-1]) < 1e-8
    # The fit explains the data at least as well as the generating parameters.
    assert mean_ll >= log_p(truth_x, WEIGHTS, PROBS).mean() - 1e-3


def sample_truth(stub, n):
    create(stub, "truth", bmm_spec(WEIGHTS, PROBS))
    return sample(stub, "truth", n, seed=31)


def test_samples_follow_the_mixture(stub):
    n = 20000
    x, z = sample_truth(stub, n)
    assert set(np.unique(x)) <= {0.0, 1.0}
    k = z[:, 0].astype(int)
    assert scipy.stats.chisquare(np.bincount(k, minlength=K), WEIGHTS * n).pvalue > 1e-3
    for c in range(K):
        ones = x[k == c].sum(axis=0)
        count = (k == c).sum()
        # Per dimension: ones ~ Binomial(count, mu_cd); a chi-square over the K x D cells combined.
        expected = count * PROBS[c]
        stat = ((ones - expected) ** 2 / (expected * (1 - PROBS[c]))).sum()
        assert scipy.stats.chi2.sf(stat, D) > 1e-3, c
    assert_same_bytes_for_batch_sizes(stub, "truth")


def test_bad_specs_and_fits_name_the_problem(stub):
    for spec, mention in [
        (bmm_spec(WEIGHTS, np.where(PROBS > 0.9, 1.1, PROBS)), ("probabilities", "[0, 1]")),
        (bmm_spec(WEIGHTS, -PROBS), "probabilities"),
        (bmm_spec([0.5, 0.5, 0.5], PROBS), ("weights", "sum")),
        (bmm_spec(WEIGHTS, PROBS[:2]), "probabilities"),
    ]:
        with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, mention):
            create(stub, "bad", spec)
    rows = np.zeros((10, 3))
    rows[7, 1] = 0.5
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "row 7", "binary"):
        fit(stub, "bad", "bernoulli_mixture", gen.BernoulliMixtureFit(n_components=2), rows, chunk=4)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "n_components"):
        fit(stub, "bad", "bernoulli_mixture", gen.BernoulliMixtureFit(n_components=11), np.zeros((10, 3)))
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "min_probability"):
        fit(stub, "bad", "bernoulli_mixture", gen.BernoulliMixtureFit(min_probability=0.7), np.zeros((10, 3)))
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND, "bad"):
        get_spec(stub, "bad")
