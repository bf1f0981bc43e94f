"""The generative families where the units or the origin of the data are far from 1 and 0, on the real binary.

Findings of the 2026-12-06 differential hunt, each checked here against an oracle computed in the test:
- gaussian_mixture log p(x) of rows so far out that the squared distance passes float64 but half of it does not
  (closed form), and of rows whose x - mu overflows (-inf, never NaN) through EXACT, PRIOR and IMPORTANCE;
- gaussian_mixture fits of rows offset by 1e8 .. 1e9: the closed-form one-component maximum (mean, variance +
  reg_covar of the centred rows), and scikit-learn's fit of the same rows at the origin (a translation);
- factor_analysis fits of rows in small units: scikit-learn's fit of the rows in their own units, whose mean
  log-likelihood moves by -log |det S| under the scaling S;
- rows whose covariance underflows or overflows float64 get FAILED_PRECONDITION saying so;
- a uniform box of volume 1 has log p = +0;
- subnormal mixture weights enter log p(x) with their own logarithm (closed form).
"""

import math
import struct
import warnings

import grpc
import numpy as np
import pytest
from sklearn.decomposition import FactorAnalysis
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from maas.generative.v1 import generative_pb2 as gen

from generative_oracles import COVARIANCE_TYPES, create, exact, fit, generative_server, gmm_spec
from maas_testing import TIMEOUT, expect_rpc_error, ref, to_matrix


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    with generative_server(tmp_path_factory.mktemp("units-offsets")) as s:
        yield s


def estimate(stub, name, x, estimator):
    return stub.EstimateLogLikelihood(gen.EstimateLogLikelihoodRequest(
        model=ref(name), x=to_matrix(x), estimator=estimator, num_samples=64, seed=5), timeout=TIMEOUT).rows


def half_quad_2d(a, b, rho):
    """(a, b) Sigma^-1 (a, b)^T / 2 for Sigma = [[1, rho], [rho, 1]], without forming a square beyond float64."""
    one_minus = 1.0 - rho * rho
    return (a / 2) * (a / one_minus) - rho * (a / one_minus) * b + (b / 2) * (b / one_minus)


@pytest.mark.parametrize("covariance_type,rho,a,b", [
    ("full", 0.0, 1.3e154, 1.3e154), ("full", 0.5, 8e153, -8e153), ("full", -0.5, 9e153, 9e153),
    ("diag", 0.0, 1.3e154, 1.3e154), ("spherical", 0.0, 1.8e154, 0.0)])
def test_mixture_log_density_beyond_float64_squares_is_the_closed_form(stub, covariance_type, rho, a, b):
    covariances = {"full": [[[1.0, rho], [rho, 1.0]]], "diag": [[1.0, 1.0]], "spherical": [1.0]}[covariance_type]
    name = f"far-{covariance_type}-{abs(rho) * 10:.0f}-{'m' if rho < 0 else 'p'}"
    create(stub, name, gmm_spec([1.0], [[0.0, 0.0]], covariances, covariance_type))
    expected = -math.log(2 * math.pi) - 0.5 * math.log(1 - rho * rho) - half_quad_2d(a, b, rho)
    assert math.isfinite(expected) and not math.isfinite(2 * half_quad_2d(a, b, rho))  # the form overflows
    got = exact(stub, name, [[a, b]])[0]
    assert got == pytest.approx(expected, rel=1e-14)
    for estimator in (gen.PRIOR, gen.IMPORTANCE):  # one component: every weight is p(x)
        row = estimate(stub, name, [[a, b]], estimator)[0]
        assert row.log_likelihood == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_mixture_rows_whose_difference_overflows_are_impossible_not_nan(stub, covariance_type):
    covariances = {"full": [[[1.0, 0.5], [0.5, 1.0]]] * 2, "diag": [[1.0, 1.0]] * 2,
                   "spherical": [1.0, 1.0]}[covariance_type]
    name = f"overflow-{covariance_type}"
    create(stub, name, gmm_spec([0.5, 0.5], [[-1e308, -1e308], [0.0, 0.0]], covariances, covariance_type))
    x = [[1e308, 1e308], [1e308, -1e308], [0.5, 0.0]]
    # Row 2 is near component 1 only: its closed form, with component 0 contributing nothing.
    quad = half_quad_2d(0.5, 0.0, 0.5 if covariance_type == "full" else 0.0)
    near = math.log(0.5) - math.log(2 * math.pi) - 0.5 * math.log(
        0.75 if covariance_type == "full" else 1.0) - quad
    for estimator in (gen.EXACT, gen.PRIOR, gen.IMPORTANCE):
        rows = estimate(stub, name, x, estimator)
        values = [r.log_likelihood for r in rows]
        assert not any(math.isnan(v) for v in values), (estimator, values)
        assert values[0] == -math.inf and values[1] == -math.inf
        assert [r.exact_log_likelihood for r in rows][:2] == [-math.inf, -math.inf]
        assert rows[2].exact_log_likelihood == pytest.approx(near, rel=1e-14)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_one_component_fit_of_offset_rows_is_the_closed_form_maximum(stub, covariance_type):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(500, 3)) * np.array([1.0, 0.5, 2.0]) + 1e8
    reg = 1e-6
    fit(stub, f"one-{covariance_type}", "gaussian_mixture",
        gen.GaussianMixtureFit(n_components=1, covariance_type=COVARIANCE_TYPES[covariance_type], reg_covar=reg), x)
    centred = x - x.mean(axis=0)  # exact enough: |x - mean| ~ 1 at 1e8 keeps ~8 digits, far beyond the tolerance
    if covariance_type == "full":
        cov = centred.T @ centred / len(x) + reg * np.eye(3)
    elif covariance_type == "diag":
        cov = np.diag((centred ** 2).mean(axis=0) + reg)
    else:
        cov = np.eye(3) * ((centred ** 2).mean(axis=0) + reg).mean()
    chol = np.linalg.cholesky(cov)
    y = np.linalg.solve(chol, centred.T)
    expected = np.mean(-0.5 * (3 * math.log(2 * math.pi) + (y * y).sum(axis=0))) - np.log(np.diag(chol)).sum()
    assert exact(stub, f"one-{covariance_type}", x).mean() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("covariance_type,init", [("full", gen.INIT_KMEANS), ("diag", gen.INIT_KMEANS),
                                                  ("full", gen.INIT_K_MEANS_PLUS_PLUS)])
def test_mixture_fit_of_offset_rows_matches_sklearn_at_the_origin(stub, covariance_type, init):
    rng = np.random.default_rng(12)
    at_origin = np.concatenate([rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 8.0])
    shifted = at_origin + 1e9
    name = f"offset-{covariance_type}-{init}"
    fit(stub, name, "gaussian_mixture", gen.GaussianMixtureFit(
        n_components=2, covariance_type=COVARIANCE_TYPES[covariance_type], init_params=init), shifted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        oracle = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(at_origin).score(at_origin)
    # Rows near 1e9 are rounded to ~1e-7: the same fit, translated, up to that.
    assert exact(stub, name, shifted).mean() == pytest.approx(oracle, abs=1e-4)


@pytest.mark.parametrize("scale", [1e-9, 1e-100])
def test_factor_analysis_in_small_units_matches_sklearn_in_own_units(stub, scale):
    rng = np.random.default_rng(13)
    w = rng.normal(size=(5, 2))
    x = rng.normal(size=(800, 2)) @ w.T + rng.normal(size=(800, 5)) * np.sqrt([0.3, 0.5, 0.2, 0.8, 0.4])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol 1e-8 on the total: well converged anyway
        oracle = FactorAnalysis(2, svd_method="lapack", tol=1e-8, max_iter=10000).fit(x).score(x)
    name = f"fa-units-{-math.log10(scale):.0f}"
    fit(stub, name, "factor_analysis", gen.FactorAnalysisFit(latent_dim=2, tol=1e-8, max_iter=10000), x * scale)
    # log p(x S) = log p(x) - log |det S|.
    assert exact(stub, name, x * scale).mean() == pytest.approx(oracle - 5 * math.log(scale), abs=1e-6)


@pytest.mark.parametrize("family,scale,words", [
    ("ppca", 1e-200, "underflows float64"), ("factor_analysis", 1e-200, "underflows float64"),
    ("ppca", 1e-160, "underflows float64"), ("gaussian_mixture", 1e154, "overflows float64")])
def test_fits_name_rows_whose_covariance_leaves_float64(stub, family, scale, words):
    rng = np.random.default_rng(14)
    x = rng.normal(size=(200, 3)) * scale
    hyper = {"ppca": gen.PpcaFit(latent_dim=1), "factor_analysis": gen.FactorAnalysisFit(latent_dim=1),
             "gaussian_mixture": gen.GaussianMixtureFit(n_components=2)}[family]
    with expect_rpc_error(grpc.StatusCode.FAILED_PRECONDITION, words, "scale the data"):
        fit(stub, f"leaves-{family.replace('_', '-')}", family, hyper, x)


def test_uniform_box_of_volume_one_has_log_density_plus_zero(stub):
    create(stub, "unit-box", gen.GenerativeModelSpec(uniform=gen.UniformSpec(low=[0.0, -1.0], high=[1.0, 0.0])))
    value = exact(stub, "unit-box", [[0.5, -0.5]])[0]
    assert struct.pack("<d", value) == struct.pack("<d", 0.0)


@pytest.mark.parametrize("tiny", [1e-310, 5e-324])
def test_subnormal_mixture_weights_enter_log_density_exactly(stub, tiny):
    """A weight of 1e-310 or 5e-324 is valid (> 0); its log is -713.8 / -744.4, not log(2.2e-308) = -708.4."""
    weights = [tiny, 1.0 - tiny]
    name = f"tiny-weight-{-math.log10(tiny):.0f}"
    create(stub, name, gmm_spec(weights, [[0.0], [100.0]], [[1.0], [1.0]], "diag"))
    assert exact(stub, name, [[0.0]])[0] == pytest.approx(math.log(tiny) - 0.5 * math.log(2 * math.pi), rel=1e-15)
    create(stub, name + "-b", gen.GenerativeModelSpec(bernoulli_mixture=gen.BernoulliMixtureSpec(
        weights=weights, probabilities=to_matrix([[1.0, 0.5], [0.0, 0.5]]))))
    assert exact(stub, name + "-b", [[1.0, 1.0]])[0] == pytest.approx(math.log(tiny) + math.log(0.5), rel=1e-15)
