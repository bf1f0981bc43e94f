"""End-to-end tests of maas-generative (uniform family) through the gateway and directly, on the real binaries.

Oracles: numpy/scipy closed forms computed here (log-density of a box, per-dimension min/max of the training rows,
a Kolmogorov-Smirnov test of the samples); determinism is checked by comparing float64 bytes exactly.
"""

import math
import re

import grpc
import numpy as np
import pytest
import scipy.stats
from grpc_health.v1 import health_pb2

from maas.common.v1 import common_pb2
from maas.generative.v1 import generative_pb2 as gen

from maas_testing import (TIMEOUT, Stack, expect_rpc_error, from_matrix, health_status, poll_until, ref, to_matrix)

MAX_SAMPLES = 1000  # --max_samples_per_request of this module's server
MAX_FIT_ROWS = 5000  # --max_fit_rows of this module's server

LOW = np.array([-1.0, 0.5, 2.0])
HIGH = np.array([1.0, 3.25, 2.5])


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("e2e-generative"),
               generative_args=["--max_samples_per_request", MAX_SAMPLES, "--max_fit_rows", MAX_FIT_ROWS]) as s:
        yield s


def uniform_spec(low, high) -> gen.GenerativeModelSpec:
    return gen.GenerativeModelSpec(uniform=gen.UniformSpec(low=list(map(float, low)), high=list(map(float, high))))


def create_uniform(stub, name, low=LOW, high=HIGH, **kwargs) -> gen.CreateModelResponse:
    return stub.CreateModel(gen.CreateModelRequest(name=name, spec=uniform_spec(low, high), **kwargs),
                            timeout=TIMEOUT)


def sample(stub, name, num_samples, seed=None, start_index=0, batch_size=0, version=0):
    """Runs one Sample stream; returns (x as an (n, D) array, the batches). Checks the framing."""
    request = gen.SampleRequest(model=ref(name, version), num_samples=num_samples, start_index=start_index,
                                batch_size=batch_size)
    if seed is not None:
        request.seed = seed
    batches = list(stub.Sample(request, timeout=TIMEOUT))
    assert batches, "Sample returned no batch"
    next_index = start_index
    for batch in batches:
        assert batch.start_index == next_index, "batches are not contiguous"
        assert batch.x.rows >= 1
        if batch_size:
            assert batch.x.rows <= batch_size, f"batch of {batch.x.rows} rows with batch_size {batch_size}"
        assert batch.seed == batches[0].seed, "the seed changed within one stream"
        if seed is not None:
            assert batch.seed == seed
        next_index += batch.x.rows
    assert next_index - start_index == num_samples
    x = np.concatenate([from_matrix(b.x) for b in batches])
    return x, batches


def log_density(x, low, high):
    """Closed form oracle: scipy's uniform log-pdf on the closed box, summed over dimensions."""
    return scipy.stats.uniform.logpdf(np.asarray(x), loc=low, scale=np.asarray(high) - np.asarray(low)).sum(axis=1)


def estimate(stub, name, x, estimator=gen.EXACT, version=0, **kwargs):
    return stub.EstimateLogLikelihood(gen.EstimateLogLikelihoodRequest(
        model=ref(name, version), x=to_matrix(x), estimator=estimator, **kwargs), timeout=TIMEOUT)


def fit_requests(name, chunks, family="uniform"):
    config = gen.FitConfig(name=name, **{family: getattr(gen, {
        "uniform": "UniformFit", "gaussian_mixture": "GaussianMixtureFit"}[family])()})
    yield gen.FitModelRequest(config=config)
    for chunk in chunks:
        yield gen.FitModelRequest(rows=to_matrix(chunk))


# ---------------------------------------------------------------------------------------------------------------
# Create / Get


def test_create_assigns_versions_and_get_returns_the_spec(stack):
    first = create_uniform(stack.gen_gw, "box", labels={"team": "e2e"}, description="a box")
    assert first.info.name == "box"
    assert first.info.version == 1
    assert first.info.family == "uniform"
    assert first.info.type == common_pb2.GENERATIVE
    assert first.info.dimension == 3
    # A second create, this time directly on the generative server, gets the next version.
    second = create_uniform(stack.gen, "box", low=LOW - 1, high=HIGH + 1)
    assert second.info.version == 2
    assert second.info.type == common_pb2.GENERATIVE

    latest = stack.gen_gw.GetModel(gen.GetModelRequest(model=ref("box")), timeout=TIMEOUT)
    assert latest.info.version == 2
    assert latest.spec == uniform_spec(LOW - 1, HIGH + 1)
    v1 = stack.gen_gw.GetModel(gen.GetModelRequest(model=ref("box", 1)), timeout=TIMEOUT)
    assert v1.info.version == 1
    assert v1.spec == uniform_spec(LOW, HIGH)
    assert dict(v1.info.labels) == {"team": "e2e"}
    assert v1.info.description == "a box"
    # The direct server and the gateway agree byte for byte.
    direct = stack.gen.GetModel(gen.GetModelRequest(model=ref("box", 1)), timeout=TIMEOUT)
    assert direct.SerializeToString(deterministic=True) == v1.SerializeToString(deterministic=True)


def test_name_of_63_characters_is_accepted(stack):
    name = "a" + "b" * 61 + "9"
    assert len(name) == 63
    assert create_uniform(stack.gen_gw, name).info.name == name


# ---------------------------------------------------------------------------------------------------------------
# Sample


@pytest.fixture(scope="module")
def sampler(stack):
    create_uniform(stack.gen_gw, "sampler")
    return "sampler"


def test_sample_bytes_do_not_depend_on_batch_size(stack, sampler):
    reference, batches = sample(stack.gen_gw, sampler, MAX_SAMPLES, seed=20240607, batch_size=1)
    assert len(batches) == MAX_SAMPLES
    assert reference.shape == (MAX_SAMPLES, 3)
    assert batches[0].model_version == 1
    for batch_size in (7, 0, 1000):
        x, _ = sample(stack.gen_gw, sampler, MAX_SAMPLES, seed=20240607, batch_size=batch_size)
        assert x.tobytes() == reference.tobytes(), f"batch_size {batch_size} changed the samples"
    # The direct server gives the same bytes as the gateway.
    x, _ = sample(stack.gen, sampler, MAX_SAMPLES, seed=20240607, batch_size=64)
    assert x.tobytes() == reference.tobytes()


def test_sample_shards_concatenate(stack, sampler):
    full, _ = sample(stack.gen_gw, sampler, 600, seed=77)
    shards = [sample(stack.gen_gw, sampler, n, seed=77, start_index=start, batch_size=bs)[0]
              for start, n, bs in ((0, 250, 0), (250, 100, 9), (350, 250, 1000))]
    assert np.concatenate(shards).tobytes() == full.tobytes()
    beyond, _ = sample(stack.gen, sampler, 600, seed=77, start_index=400)
    assert beyond[:200].tobytes() == full[400:].tobytes()


def test_samples_are_uniform_in_the_box(stack, sampler):
    x, _ = sample(stack.gen_gw, sampler, MAX_SAMPLES, seed=5)
    assert np.all(np.isfinite(x))
    assert np.all(x >= LOW) and np.all(x <= HIGH), "samples outside the box"
    for d in range(3):
        u = (x[:, d] - LOW[d]) / (HIGH[d] - LOW[d])
        p = scipy.stats.kstest(u, "uniform").pvalue
        assert p > 1e-4, f"dimension {d} does not look uniform (KS p = {p})"
    # Dimensions are not copies of one another and another seed gives other samples.
    assert abs(np.corrcoef(x[:, 0], x[:, 1])[0, 1]) < 0.2
    other, _ = sample(stack.gen_gw, sampler, MAX_SAMPLES, seed=6)
    assert not np.any(np.all(other == x, axis=1)), "seeds 5 and 6 share a sample"


def test_sample_without_seed_returns_a_replayable_seed(stack, sampler):
    x, batches = sample(stack.gen_gw, sampler, 300, batch_size=100)
    assert len(batches) == 3
    seed = batches[0].seed
    replay, _ = sample(stack.gen_gw, sampler, 300, seed=seed, batch_size=7)
    assert replay.tobytes() == x.tobytes()
    _, other = sample(stack.gen_gw, sampler, 10)
    assert other[0].seed != seed, "two requests without seed got the same fresh seed"


def test_sample_pins_the_requested_version(stack):
    create_uniform(stack.gen_gw, "versioned", low=[0.0], high=[1.0])
    create_uniform(stack.gen_gw, "versioned", low=[10.0], high=[11.0])
    x1, b1 = sample(stack.gen_gw, "versioned", 50, seed=1, version=1)
    x2, b2 = sample(stack.gen_gw, "versioned", 50, seed=1)
    assert b1[0].model_version == 1 and b2[0].model_version == 2
    assert np.all((x1 >= 0) & (x1 <= 1)) and np.all((x2 >= 10) & (x2 <= 11))


# ---------------------------------------------------------------------------------------------------------------
# EstimateLogLikelihood / StreamEstimate


def test_exact_log_likelihood_matches_the_closed_form(stack):
    create_uniform(stack.gen_gw, "density")
    rng = np.random.default_rng(11)
    inside = LOW + rng.random((20, 3)) * (HIGH - LOW)
    expected = log_density(inside, LOW, HIGH)
    assert np.allclose(expected, -np.log(HIGH - LOW).sum())  # the oracle itself is the textbook value
    for stub in (stack.gen_gw, stack.gen):
        response = estimate(stub, "density", inside)
        assert response.estimator == gen.EXACT
        assert response.model_version == 1
        assert len(response.rows) == 20
        got = np.array([r.log_likelihood for r in response.rows])
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
        for row in response.rows:
            assert row.HasField("exact_log_likelihood")
            assert abs(row.exact_log_likelihood - row.log_likelihood) <= 1e-12
            assert row.standard_error == 0 and row.ess == 0 and row.num_samples == 0
    # Unset estimator: EXACT for a tractable family.
    unspecified = estimate(stack.gen_gw, "density", inside[:2], estimator=gen.ESTIMATOR_UNSPECIFIED)
    assert unspecified.estimator == gen.EXACT
    np.testing.assert_allclose([r.log_likelihood for r in unspecified.rows], expected[:2], rtol=0, atol=1e-12)


def test_exact_log_likelihood_outside_the_box_is_minus_infinity(stack):
    create_uniform(stack.gen_gw, "outside")
    x = np.array([LOW - 0.1, HIGH + 0.1, [0.0, 1.0, 2.6], [0.0, 0.4, 2.2], [1e300, 1.0, 2.2]])
    response = estimate(stack.gen_gw, "outside", x)
    got = np.array([r.log_likelihood for r in response.rows])
    assert np.all(np.isneginf(got)), got
    assert np.all(np.isneginf(log_density(x, LOW, HIGH)))


def test_exact_log_likelihood_on_the_boundary_follows_the_closed_box(stack):
    create_uniform(stack.gen_gw, "boundary")
    x = np.array([LOW, HIGH, [LOW[0], HIGH[1], 2.25]])
    expected = log_density(x, LOW, HIGH)  # scipy: the box [low, high] is closed
    got = np.array([r.log_likelihood for r in estimate(stack.gen_gw, "boundary", x).rows])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("estimator", [gen.PRIOR, gen.IMPORTANCE, gen.AIS])
def test_monte_carlo_estimators_are_rejected_for_a_family_without_latents(stack, estimator):
    create_uniform(stack.gen_gw, "no-latent")
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, ("latent", "uniform")):
        estimate(stack.gen_gw, "no-latent", [[0.0, 1.0, 2.2]], estimator=estimator, seed=1, num_samples=10)


def test_stream_estimate_exact_is_one_message(stack):
    create_uniform(stack.gen_gw, "streamed")
    x = np.array([[0.0, 1.0, 2.2], [0.5, 3.0, 2.49], [5.0, 1.0, 2.2]])
    request = gen.StreamEstimateRequest(request=gen.EstimateLogLikelihoodRequest(
        model=ref("streamed"), x=to_matrix(x), estimator=gen.EXACT))
    messages = list(stack.gen_gw.StreamEstimate(request, timeout=TIMEOUT))
    assert len(messages) == 1
    assert messages[0].stop_reason == gen.EXACT_RESULT
    got = np.array([r.log_likelihood for r in messages[0].estimate.rows])
    expected = log_density(x, LOW, HIGH)
    assert np.isneginf(got[2]) and np.isneginf(expected[2])
    np.testing.assert_allclose(got[:2], expected[:2], rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# FitModel


def test_fit_uniform_is_per_dimension_min_and_max(stack):
    rng = np.random.default_rng(2024)
    rows = rng.normal(size=(500, 4)) * np.array([1.0, 10.0, 0.01, 3.0]) + np.array([0.0, -5.0, 100.0, 1e3])
    chunks = [rows[:200], rows[200:201], rows[201:]]
    response = stack.gen_gw.FitModel(fit_requests("fitted", chunks), timeout=TIMEOUT)
    assert response.info.name == "fitted"
    assert response.info.version == 1
    assert response.info.family == "uniform"
    assert response.info.type == common_pb2.GENERATIVE
    assert response.info.dimension == 4
    assert response.trace.num_rows == 500
    assert response.trace.converged
    expected_ll = -np.log(rows.max(axis=0) - rows.min(axis=0)).sum()  # mean log-likelihood per training row
    assert len(response.trace.log_likelihood) == 1
    assert abs(response.trace.log_likelihood[0] - expected_ll) <= 1e-12 * max(1.0, abs(expected_ll))

    got = stack.gen_gw.GetModel(gen.GetModelRequest(model=ref("fitted")), timeout=TIMEOUT)
    low = np.array(got.spec.uniform.low)
    high = np.array(got.spec.uniform.high)
    assert low.tobytes() == rows.min(axis=0).tobytes()
    assert high.tobytes() == rows.max(axis=0).tobytes()
    assert got.fit_trace.num_rows == 500

    # Fitting again (directly) stores version 2.
    again = stack.gen.FitModel(fit_requests("fitted", [rows[:10]]), timeout=TIMEOUT)
    assert again.info.version == 2


def test_fit_above_the_row_limit_is_resource_exhausted(stack):
    rows = np.zeros((MAX_FIT_ROWS + 1, 1))
    rows[0, 0] = 1.0
    with expect_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, str(MAX_FIT_ROWS)):
        stack.gen_gw.FitModel(fit_requests("too-many-rows", [rows[:MAX_FIT_ROWS], rows[MAX_FIT_ROWS:]]),
                              timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND):
        stack.gen_gw.GetModel(gen.GetModelRequest(model=ref("too-many-rows")), timeout=TIMEOUT)


# ---------------------------------------------------------------------------------------------------------------
# ListModels / DeleteModel


def test_list_and_delete(stack):
    create_uniform(stack.gen_gw, "list-a")
    create_uniform(stack.gen_gw, "list-a")
    create_uniform(stack.gen, "list-b")
    listed = stack.gen_gw.ListModels(common_pb2.ListModelsRequest(name_prefix="list-"), timeout=TIMEOUT)
    assert [(m.name, m.version) for m in listed.models] == [("list-a", 2), ("list-b", 1)]
    assert all(m.type == common_pb2.GENERATIVE and m.family == "uniform" for m in listed.models)
    every = stack.gen_gw.ListModels(common_pb2.ListModelsRequest(name_prefix="list-", all_versions=True),
                                    timeout=TIMEOUT)
    assert [(m.name, m.version) for m in every.models] == [("list-a", 1), ("list-a", 2), ("list-b", 1)]

    deleted = stack.gen_gw.DeleteModel(common_pb2.DeleteModelRequest(name="list-a", version=1), timeout=TIMEOUT)
    assert list(deleted.deleted_versions) == [1]
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND, "list-a"):
        stack.gen_gw.GetModel(gen.GetModelRequest(model=ref("list-a", 1)), timeout=TIMEOUT)
    assert stack.gen_gw.GetModel(gen.GetModelRequest(model=ref("list-a")), timeout=TIMEOUT).info.version == 2

    deleted = stack.gen.DeleteModel(common_pb2.DeleteModelRequest(name="list-b"), timeout=TIMEOUT)
    assert list(deleted.deleted_versions) == [1]
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND, "list-b"):
        stack.gen_gw.GetModel(gen.GetModelRequest(model=ref("list-b")), timeout=TIMEOUT)
    listed = stack.gen_gw.ListModels(common_pb2.ListModelsRequest(name_prefix="list-"), timeout=TIMEOUT)
    assert [(m.name, m.version) for m in listed.models] == [("list-a", 2)]
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND, "list-b"):
        stack.gen_gw.DeleteModel(common_pb2.DeleteModelRequest(name="list-b"), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND, "list-a"):
        stack.gen_gw.DeleteModel(common_pb2.DeleteModelRequest(name="list-a", version=1), timeout=TIMEOUT)


# ---------------------------------------------------------------------------------------------------------------
# Restart


def test_models_survive_a_restart(stack):
    create_uniform(stack.gen_gw, "durable", low=[0.0, 0.0], high=[1.0, 2.0])
    created = create_uniform(stack.gen_gw, "durable", low=[-3.0, 0.0], high=[1.0, 0.125])
    before = stack.gen_gw.GetModel(gen.GetModelRequest(model=ref("durable")), timeout=TIMEOUT)
    samples_before, _ = sample(stack.gen_gw, "durable", 100, seed=99)
    assert created.info.version == 2

    assert stack.stop_generative() == 0, "maas-generative did not exit with code 0 on SIGTERM"
    stack.start_generative_again()

    after = stack.gen.GetModel(gen.GetModelRequest(model=ref("durable")), timeout=TIMEOUT)
    assert after.info.version == 2
    assert after.spec == before.spec
    assert after.info.created_at == before.info.created_at
    v1 = stack.gen.GetModel(gen.GetModelRequest(model=ref("durable", 1)), timeout=TIMEOUT)
    assert v1.spec == uniform_spec([0.0, 0.0], [1.0, 2.0])
    # Same version + same seed -> same bytes, across processes.
    samples_after, _ = sample(stack.gen, "durable", 100, seed=99)
    assert samples_after.tobytes() == samples_before.tobytes()
    # The gateway reconnects to the new process (same port); bounded polling while it does.
    via_gateway = poll_until(
        lambda: stack.gen_gw.GetModel(gen.GetModelRequest(model=ref("durable")), timeout=2.0), 10.0,
        "GetModel through the gateway after the generative restart")
    assert via_gateway.spec == before.spec
    # Versions keep increasing after the restart.
    assert create_uniform(stack.gen_gw, "durable", low=[0.0, 0.0], high=[1.0, 1.0]).info.version == 3


# ---------------------------------------------------------------------------------------------------------------
# Bad input: status code, a message that names the problem; nothing crashes, nothing is stored.


@pytest.fixture(scope="module")
def guard(stack):
    """A model whose state is checked after all the bad calls."""
    created = create_uniform(stack.gen_gw, "guard")
    return created.info


@pytest.mark.parametrize("stub_name", ["gen_gw", "gen"])
def test_unknown_model_and_version_are_not_found(stack, guard, stub_name):
    stub = getattr(stack, stub_name)
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND, "no-such-model"):
        stub.GetModel(gen.GetModelRequest(model=ref("no-such-model")), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND, "no-such-model"):
        list(stub.Sample(gen.SampleRequest(model=ref("no-such-model"), num_samples=1, seed=1), timeout=TIMEOUT))
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND, "no-such-model"):
        estimate(stub, "no-such-model", [[0.0]])
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND, "99"):
        stub.GetModel(gen.GetModelRequest(model=ref("guard", 99)), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND, "99"):
        list(stub.Sample(gen.SampleRequest(model=ref("guard", 99), num_samples=1, seed=1), timeout=TIMEOUT))


@pytest.mark.parametrize("name", ["../x", "", "a" * 64, "Guard", "a/b", ".hidden", "-x", "x y"])
def test_bad_names_are_invalid_argument(stack, guard, name):
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "name"):
        create_uniform(stack.gen_gw, name)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "name"):
        stack.gen_gw.FitModel(fit_requests(name, [[[0.0], [1.0]]]), timeout=TIMEOUT)
    if name:  # an empty name on a lookup is "missing", also INVALID_ARGUMENT
        with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "name"):
            stack.gen_gw.GetModel(gen.GetModelRequest(model=ref(name)), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "name"):
        stack.gen_gw.DeleteModel(common_pb2.DeleteModelRequest(name=name), timeout=TIMEOUT)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_x_is_invalid_argument(stack, guard, bad):
    x = np.array([[0.0, 1.0, 2.2], [0.0, 1.0, 2.2]])
    x[1, 2] = bad
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, ("finite", "nan", "inf")):
        estimate(stack.gen_gw, "guard", x)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_fit_rows_are_invalid_argument(stack, guard, bad):
    rows = np.arange(12.0).reshape(6, 2)
    rows[4, 1] = bad
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, ("finite", "nan", "inf")):
        stack.gen_gw.FitModel(fit_requests("guard", [rows[:3], rows[3:]]), timeout=TIMEOUT)


@pytest.mark.parametrize("low,high,mention", [
    ([0.0, math.nan], [1.0, 1.0], ("finite", "nan")),
    ([0.0, 0.0], [1.0, math.inf], ("finite", "inf")),
    ([0.0, 1.0], [1.0, 1.0], "high"),
    ([0.0, 2.0], [1.0, 1.0], "high"),
    ([0.0, 0.0], [1.0], ("high", "low")),
    ([], [], ("low", "dimension", "empty")),
])
def test_bad_uniform_spec_is_invalid_argument(stack, guard, low, high, mention):
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, mention):
        create_uniform(stack.gen_gw, "guard", low=low, high=high)


def test_missing_spec_is_invalid_argument(stack, guard):
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "spec"):
        stack.gen_gw.CreateModel(gen.CreateModelRequest(name="guard"), timeout=TIMEOUT)


def test_other_families_answer_cleanly(stack, guard):
    """Families not implemented yet: UNIMPLEMENTED (or INVALID_ARGUMENT) with a message, never a crash."""
    spec = gen.GenerativeModelSpec(ppca=gen.PpcaSpec(loadings=to_matrix([[1.0], [0.5]]), mean=[0.0, 0.0],
                                                     noise_variance=0.1))
    try:
        stack.gen_gw.CreateModel(gen.CreateModelRequest(name="ppca-model", spec=spec), timeout=TIMEOUT)
    except grpc.RpcError as e:
        assert e.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INVALID_ARGUMENT), e
        assert e.details().strip()
    try:
        stack.gen_gw.FitModel(fit_requests("gmm-model", [[[0.0], [1.0]]], family="gaussian_mixture"),
                              timeout=TIMEOUT)
    except grpc.RpcError as e:
        assert e.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INVALID_ARGUMENT), e
        assert e.details().strip()
    assert health_status(stack.gen_channel) == health_pb2.HealthCheckResponse.SERVING


def test_wrong_dimension_is_failed_precondition(stack, guard):
    with expect_rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "3", "2"):
        estimate(stack.gen_gw, "guard", [[0.0, 1.0], [0.5, 2.0]])


def test_malformed_matrix_is_invalid_argument(stack, guard):
    bad = common_pb2.Matrix(rows=2, cols=3, values=[0.0, 1.0, 2.2, 0.0, 1.0])  # 5 values for 2 x 3
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, ("values", "rows", "cols")):
        stack.gen_gw.EstimateLogLikelihood(gen.EstimateLogLikelihoodRequest(model=ref("guard"), x=bad),
                                           timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, ("row", "empty")):
        stack.gen_gw.EstimateLogLikelihood(gen.EstimateLogLikelihoodRequest(
            model=ref("guard"), x=common_pb2.Matrix(rows=0, cols=3)), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, ("values", "rows", "cols")):
        stack.gen_gw.FitModel(iter([
            gen.FitModelRequest(config=gen.FitConfig(name="guard", uniform=gen.UniformFit())),
            gen.FitModelRequest(rows=common_pb2.Matrix(rows=3, cols=1, values=[1.0, 2.0]))]), timeout=TIMEOUT)


def test_bad_num_samples_are_refused(stack, guard):
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "num_samples"):
        list(stack.gen_gw.Sample(gen.SampleRequest(model=ref("guard"), num_samples=0, seed=1), timeout=TIMEOUT))
    # Above the server's limit: RESOURCE_EXHAUSTED naming the flag.
    with expect_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, str(MAX_SAMPLES), "--max_samples_per_request"):
        list(stack.gen_gw.Sample(gen.SampleRequest(model=ref("guard"), num_samples=MAX_SAMPLES + 1, seed=1),
                                 timeout=TIMEOUT))
    with expect_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, str(MAX_SAMPLES)):
        list(stack.gen.Sample(gen.SampleRequest(model=ref("guard"), num_samples=2**63, seed=1), timeout=TIMEOUT))
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "start_index"):
        list(stack.gen_gw.Sample(gen.SampleRequest(model=ref("guard"), num_samples=10, seed=1,
                                                   start_index=2**64 - 5), timeout=TIMEOUT))


def test_bad_fit_streams_are_invalid_argument(stack, guard):
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, ("empty", "config")):
        stack.gen_gw.FitModel(iter([]), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "rows"):
        stack.gen_gw.FitModel(fit_requests("guard", []), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "rows"):  # chunks with no rows only
        stack.gen_gw.FitModel(iter([
            gen.FitModelRequest(config=gen.FitConfig(name="guard", uniform=gen.UniformFit())),
            gen.FitModelRequest(rows=common_pb2.Matrix(rows=0, cols=3))]), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "config"):  # rows first
        stack.gen_gw.FitModel(iter([gen.FitModelRequest(rows=to_matrix([[1.0]]))]), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "config"):  # two configs
        stack.gen_gw.FitModel(iter([
            gen.FitModelRequest(config=gen.FitConfig(name="guard", uniform=gen.UniformFit())),
            gen.FitModelRequest(config=gen.FitConfig(name="guard", uniform=gen.UniformFit())),
            gen.FitModelRequest(rows=to_matrix([[1.0], [2.0]]))]), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "column"):  # chunks of different widths
        stack.gen_gw.FitModel(fit_requests("guard", [[[0.0, 1.0]], [[0.0, 1.0, 2.0]]]), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, ("family", "uniform")):  # no family in the config
        stack.gen_gw.FitModel(iter([gen.FitModelRequest(config=gen.FitConfig(name="guard")),
                                    gen.FitModelRequest(rows=to_matrix([[1.0], [2.0]]))]), timeout=TIMEOUT)


def test_server_is_healthy_and_models_intact_after_bad_input(stack, guard):
    """Runs after every bad-input test above (pytest keeps file order)."""
    for channel in (stack.gen_channel, stack.gw_channel):
        assert health_status(channel) == health_pb2.HealthCheckResponse.SERVING
    got = stack.gen_gw.GetModel(gen.GetModelRequest(model=ref("guard")), timeout=TIMEOUT)
    assert got.info.version == guard.version, "a failed call stored a new version of 'guard'"
    assert got.spec == uniform_spec(LOW, HIGH)
    every = stack.gen_gw.ListModels(common_pb2.ListModelsRequest(name_prefix="guard", all_versions=True),
                                    timeout=TIMEOUT)
    assert [(m.name, m.version) for m in every.models] == [("guard", guard.version)]
    listed = stack.gen_gw.ListModels(common_pb2.ListModelsRequest(name_prefix="too-many-rows"), timeout=TIMEOUT)
    assert not listed.models, "a rejected fit stored a model"
    # Only <name>/<version>/model.pb files (and the <name>/highest-version and <name>/write.lock bookkeeping) in the
    # model dir: no temp files of failed writes, nothing from rejected names, and nothing outside the model dir.
    name_re = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
    for path in stack.generative_dir.rglob("*"):
        if path.is_file():
            parts = path.relative_to(stack.generative_dir).parts
            bookkeeping = len(parts) == 2 and name_re.fullmatch(parts[0]) and parts[1] in ("highest-version",
                                                                                              "write.lock")
            assert bookkeeping or (len(parts) == 3 and name_re.fullmatch(parts[0]) and parts[1].isdigit()
                                       and parts[2] == "model.pb"), f"stray file {path}"
    assert not (stack.root / "x").exists(), "the name '../x' escaped the model dir"
    x = np.array([[0.0, 1.0, 2.2]])
    np.testing.assert_allclose([r.log_likelihood for r in estimate(stack.gen_gw, "guard", x).rows],
                               log_density(x, LOW, HIGH), rtol=0, atol=1e-12)
