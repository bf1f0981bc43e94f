"""mlp_decoder with huge weights, on the real maas-generative binary: refused at CreateModel when float64 could
overflow for the prior's draws, finite samples and never-NaN estimates within the limit, and a BERNOULLI
log-likelihood without cancellation.

An audit found CreateModel accepting weights of 1e200, then Sample streaming +-inf (RELU: NaN), AIS answering a NaN
log-likelihood and standard error, and BERNOULLI PRIOR / IMPORTANCE answering NaN (0 * inf - inf for x = 0 and an
infinite logit).

Oracles computed here: for x = (0, 1) and logits f(z) = (50, a z), p(x) = sigmoid(-50) * E[sigmoid(a z)] with
z ~ N(0, 1), and E[sigmoid(a z)] = 1/2 exactly (sigmoid(t) + sigmoid(-t) = 1, z symmetric): log p(x) =
-softplus(50) - log 2 (numpy's logaddexp).
"""

import math

import grpc
import numpy as np
import pytest

from maas.generative.v1 import generative_pb2 as gen

from generative_oracles import create, generative_server
from maas_testing import TIMEOUT, expect_rpc_error, from_matrix, ref, to_matrix


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    with generative_server(tmp_path_factory.mktemp("mlp-overflow")) as s:
        yield s


def layer(weight, bias, activation=gen.IDENTITY):
    return gen.DenseLayer(weight=to_matrix(np.asarray(weight, dtype=float)), bias=list(map(float, bias)),
                          activation=activation)


def two_layers(scale, first=gen.IDENTITY, likelihood=gen.GAUSSIAN):
    """z (L = 1) -> (s z, s z) -> s (h_0 - h_1): f = 0 in exact arithmetic, inf - inf in float64 for large s."""
    return gen.GenerativeModelSpec(mlp_decoder=gen.MlpDecoderSpec(
        latent_dim=1, noise_variance=1.0, likelihood=likelihood,
        layers=[layer([[scale], [scale]], [0, 0], first), layer([[scale, -scale]], [0])]))


def estimates(stub, name, x, estimator, num_samples=64):
    response = stub.EstimateLogLikelihood(gen.EstimateLogLikelihoodRequest(
        model=ref(name), x=to_matrix(x), estimator=estimator, num_samples=num_samples, seed=1,
        ais=gen.AisOptions(num_temperatures=20)), timeout=TIMEOUT)
    return response.rows


@pytest.mark.parametrize("first, likelihood", [(gen.IDENTITY, gen.GAUSSIAN), (gen.RELU, gen.GAUSSIAN),
                                               (gen.IDENTITY, gen.BERNOULLI)])
def test_decoders_that_overflow_for_prior_draws_are_refused_naming_the_layer(stub, first, likelihood):
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "layers[0]", "1e+150"):
        create(stub, "huge", two_layers(1e200, first, likelihood))
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "layers[1]", "1e+150"):
        create(stub, "huge", two_layers(1e100, first, likelihood))


def test_within_the_limit_samples_are_finite_and_estimates_never_nan(stub):
    create(stub, "large", two_layers(1e70, gen.RELU))
    batches = list(stub.Sample(gen.SampleRequest(model=ref("large"), num_samples=5000, seed=3), timeout=TIMEOUT))
    x = np.concatenate([from_matrix(b.x) for b in batches])
    assert x.shape == (5000, 1) and np.isfinite(x).all()
    for estimator in (gen.PRIOR, gen.IMPORTANCE, gen.AIS):
        for row in estimates(stub, "large", np.array([[0.0], [1e-3], [1e300]]), estimator, 8):
            for value in (row.log_likelihood, row.standard_error, row.ess, row.statistics.log_sum_w):
                assert not math.isnan(value), (gen.Estimator.Name(estimator), row)


def test_bernoulli_log_likelihood_of_large_logits_has_no_cancellation(stub):
    spec = gen.GenerativeModelSpec(mlp_decoder=gen.MlpDecoderSpec(
        latent_dim=1, likelihood=gen.BERNOULLI, layers=[layer([[0.0], [1e19]], [50.0, 0.0])]))
    create(stub, "logits", spec)
    oracle = -np.logaddexp(0.0, 50.0) - math.log(2.0)
    for estimator in (gen.PRIOR, gen.IMPORTANCE, gen.AIS):
        row = estimates(stub, "logits", np.array([[0.0, 1.0]]), estimator, 2000 if estimator != gen.AIS else 64)[0]
        assert abs(row.log_likelihood - oracle) <= 6 * row.standard_error + 1e-9, (gen.Estimator.Name(estimator), row)
