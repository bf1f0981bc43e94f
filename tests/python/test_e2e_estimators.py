"""End-to-end tests of the Monte Carlo estimators (PRIOR, IMPORTANCE, AIS) and StreamEstimate on the real binaries,
through the gateway, on the mlp_decoder family.

Oracles computed here: log p(x) of the reference's model E (L = 2 latent dims) by grid quadrature in numpy; the
safetensors file is written by this test's own writer (struct + json), independent of the server's reader.
"""

import json
import struct
import subprocess

import grpc
import numpy as np
import pytest
from scipy.special import logsumexp

from maas.generative.v1 import generative_pb2 as gen

from maas_testing import TIMEOUT, Stack, binary, expect_rpc_error, poll_until, ref, to_matrix

MAX_SAMPLES = 200000


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("e2e-estimators"),
               generative_args=["--max_samples_per_request", MAX_SAMPLES]) as s:
        yield s


def model_e():
    """The reference's model E: f(z) = W2 tanh(W1 z + b1) + b2, L=2, H=8, D=4."""
    h, l, d = np.arange(8)[:, None], np.arange(2)[None, :], np.arange(4)
    w1 = np.sin(1.0 + h + 2.0 * l)
    b1 = 0.1 * np.cos(np.arange(8))
    w2 = np.cos(0.5 + d[:, None] + 0.3 * np.arange(8)[None, :]) / np.sqrt(8.0)
    b2 = 0.05 * d
    return w1, b1, w2, b2


X = 0.3 * np.sin(np.arange(4) + 1.0)
NOISE_VARIANCE = 0.1


def quadrature(x, n=801):
    """log p(x) = log ∫ N(z; 0, I) N(x; f(z), σ²I) dz by a Riemann sum on [-9, 9]^2."""
    w1, b1, w2, b2 = model_e()
    grid = np.linspace(-9.0, 9.0, n)
    step = grid[1] - grid[0]
    z = np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)
    f = np.tanh(z @ w1.T + b1) @ w2.T + b2
    log_lik = -0.5 * (4 * np.log(2 * np.pi * NOISE_VARIANCE) + ((f - x) ** 2).sum(1) / NOISE_VARIANCE)
    log_prior = -0.5 * (2 * np.log(2 * np.pi) + (z ** 2).sum(1))
    return logsumexp(log_lik + log_prior) + 2 * np.log(step)


def layer(weight, bias, activation):
    return gen.DenseLayer(weight=to_matrix(weight), bias=list(map(float, bias)), activation=activation)


def create_model_e(stub, name):
    w1, b1, w2, b2 = model_e()
    spec = gen.MlpDecoderSpec(latent_dim=2, layers=[layer(w1, b1, gen.TANH), layer(w2, b2, gen.IDENTITY)],
                              likelihood=gen.GAUSSIAN, noise_variance=NOISE_VARIANCE)
    return stub.CreateModel(gen.CreateModelRequest(name=name, spec=gen.GenerativeModelSpec(mlp_decoder=spec)),
                            timeout=TIMEOUT)


def safetensors_bytes(tensors, metadata=None, dtype="F32"):
    """A safetensors file: u64 header length, JSON header, little-endian row-major data."""
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array, dtype="<f4" if dtype == "F32" else "<f8").tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def estimate(stub, name, x, timeout=TIMEOUT, **kwargs):
    return stub.EstimateLogLikelihood(gen.EstimateLogLikelihoodRequest(model=ref(name), x=to_matrix(x), **kwargs),
                                      timeout=timeout)


@pytest.mark.parametrize("estimator", [gen.PRIOR, gen.IMPORTANCE, gen.AIS])
def test_estimators_agree_with_quadrature(stack, estimator):
    create_model_e(stack.gen_gw, "model-e")
    exact = quadrature(X)
    kwargs = dict(estimator=estimator, seed=2026, num_samples=20000)
    if estimator == gen.AIS:
        kwargs.update(num_samples=64, ais=gen.AisOptions(num_temperatures=200, initial_step_size=0.1))
    response = estimate(stack.gen_gw, "model-e", np.array([X]), **kwargs)
    assert response.estimator == estimator and response.seed == 2026
    row = response.rows[0]
    assert row.num_samples == kwargs["num_samples"] and row.statistics.count == row.num_samples
    assert 0 < row.standard_error < 0.05
    assert abs(row.log_likelihood - exact) < 3 * row.standard_error, (row.log_likelihood, exact, row.standard_error)
    assert not row.HasField("exact_log_likelihood")
    # sqrt(1/ESS - 1/N) from the returned fields.
    assert row.standard_error == pytest.approx(np.sqrt(1 / row.ess - 1 / row.num_samples), rel=1e-9)
    if estimator == gen.AIS:
        assert 0.3 < row.ais_acceptance_rate <= 1
    else:
        assert row.pareto_k < 0.7


def test_safetensors_import_gives_the_same_estimates(stack):
    create_model_e(stack.gen_gw, "explicit")
    w1, b1, w2, b2 = model_e()
    blob = safetensors_bytes({"layers.0.weight": w1, "layers.0.bias": b1, "layers.1.weight": w2,
                              "layers.1.bias": b2}, {"activations": "tanh,identity"}, dtype="F64")
    spec = gen.MlpDecoderSpec(safetensors=blob, noise_variance=NOISE_VARIANCE)
    info = stack.gen_gw.CreateModel(gen.CreateModelRequest(name="imported", spec=gen.GenerativeModelSpec(
        mlp_decoder=spec)), timeout=TIMEOUT).info
    assert info.family == "mlp_decoder" and info.dimension == 4
    a = estimate(stack.gen_gw, "explicit", np.array([X]), estimator=gen.PRIOR, seed=5, num_samples=500)
    b = estimate(stack.gen_gw, "imported", np.array([X]), estimator=gen.PRIOR, seed=5, num_samples=500)
    assert a.rows[0].statistics == b.rows[0].statistics
    # F32 weights: the same model up to float32 rounding.
    blob32 = safetensors_bytes({"layers.0.weight": w1, "layers.0.bias": b1, "layers.1.weight": w2,
                                "layers.1.bias": b2})
    stack.gen_gw.CreateModel(gen.CreateModelRequest(name="imported32", spec=gen.GenerativeModelSpec(
        mlp_decoder=gen.MlpDecoderSpec(safetensors=blob32, noise_variance=NOISE_VARIANCE))), timeout=TIMEOUT)
    c = estimate(stack.gen_gw, "imported32", np.array([X]), estimator=gen.PRIOR, seed=5, num_samples=500)
    assert abs(c.rows[0].log_likelihood - a.rows[0].log_likelihood) < 1e-5


@pytest.mark.parametrize("blob, mention", [
    (b"\x01\x02", "truncated"),
    (struct.pack("<Q", 1000) + b"{}", "header length"),
    (struct.pack("<Q", 5) + b"{oops", "JSON"),
    (safetensors_bytes({"layers.0.weight": np.ones((2, 2))}).replace(b"F32", b"I32"), "I32"),
    (safetensors_bytes({"layers.0.weight": np.ones((2, 2))})[:-4], ("outside", "needs")),
    (safetensors_bytes({"layers.0.weight": np.ones((2, 2))}), "layers.0.bias"),
])
def test_malformed_safetensors_is_invalid_argument(stack, blob, mention):
    spec = gen.MlpDecoderSpec(safetensors=blob, noise_variance=0.1)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "safetensors", mention):
        stack.gen_gw.CreateModel(gen.CreateModelRequest(name="broken", spec=gen.GenerativeModelSpec(
            mlp_decoder=spec)), timeout=TIMEOUT)


def test_sample_shards_merge_exactly(stack):
    create_model_e(stack.gen_gw, "shards")
    x = np.array([X, X[::-1], -X])
    whole = estimate(stack.gen_gw, "shards", x, estimator=gen.IMPORTANCE, seed=9, num_samples=3000)
    parts = [estimate(stack.gen_gw, "shards", x[1:], estimator=gen.IMPORTANCE, seed=9, num_samples=n,
                      sample_offset=first, row_offset=1) for first, n in ((0, 1000), (1000, 2000))]
    # The same bytes directly and through the gateway.
    direct = stack.gen.EstimateLogLikelihood(gen.EstimateLogLikelihoodRequest(
        model=ref("shards"), x=to_matrix(x), estimator=gen.IMPORTANCE, seed=9, num_samples=3000), timeout=TIMEOUT)
    assert direct.SerializeToString() == whole.SerializeToString()
    for r in (1, 2):
        stats = [p.rows[r - 1].statistics for p in parts]
        assert sum(s.count for s in stats) == whole.rows[r].statistics.count
        assert abs(np.logaddexp(*[s.log_sum_w for s in stats]) - whole.rows[r].statistics.log_sum_w) < 1e-12
        assert abs(np.logaddexp(*[s.log_sum_w2 for s in stats]) - whole.rows[r].statistics.log_sum_w2) < 1e-12


def test_stream_estimate_stop_reasons(stack):
    create_model_e(stack.gen_gw, "streamed")
    base = gen.EstimateLogLikelihoodRequest(model=ref("streamed"), x=to_matrix(np.array([X])),
                                            estimator=gen.PRIOR, seed=3, num_samples=500)
    messages = list(stack.gen_gw.StreamEstimate(gen.StreamEstimateRequest(request=base, max_samples=2000),
                                                timeout=TIMEOUT))
    assert [m.stop_reason for m in messages] == [0, 0, 0, gen.MAX_SAMPLES]
    assert [m.estimate.rows[0].num_samples for m in messages] == [500, 1000, 1500, 2000]
    one = estimate(stack.gen_gw, "streamed", np.array([X]), estimator=gen.PRIOR, seed=3, num_samples=2000)
    assert abs(messages[-1].estimate.rows[0].log_likelihood - one.rows[0].log_likelihood) < 1e-12

    messages = list(stack.gen_gw.StreamEstimate(
        gen.StreamEstimateRequest(request=base, target_standard_error=0.01, max_samples=MAX_SAMPLES),
        timeout=TIMEOUT))
    assert messages[-1].stop_reason == gen.TARGET_REACHED
    assert messages[-1].estimate.rows[0].standard_error <= 0.01
    assert all(m.stop_reason == 0 for m in messages[:-1])

    # A long AIS run against a short deadline: the stream ends by itself with DEADLINE before the call's deadline.
    ais = gen.EstimateLogLikelihoodRequest(model=ref("streamed"), x=to_matrix(np.array([X])), estimator=gen.AIS,
                                           seed=3, num_samples=4, ais=gen.AisOptions(num_temperatures=300))
    messages = list(stack.gen_gw.StreamEstimate(gen.StreamEstimateRequest(request=ais, max_samples=MAX_SAMPLES),
                                                timeout=3.0))
    assert messages[-1].stop_reason == gen.DEADLINE
    assert messages[-1].estimate.rows[0].num_samples >= 4


def test_bad_estimate_requests(stack):
    create_model_e(stack.gen_gw, "guarded")
    x = np.array([X])
    with expect_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "num_samples", "--max_samples_per_request"):
        estimate(stack.gen_gw, "guarded", x, estimator=gen.PRIOR, num_samples=MAX_SAMPLES + 1)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "ais.num_temperatures"):
        estimate(stack.gen_gw, "guarded", x, estimator=gen.AIS, ais=gen.AisOptions(num_temperatures=200000))
    # Every AIS knob within its bound, their product not: refused up front (it used to hold every worker for hours).
    with expect_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "--max_ais_work", "4e+09 gradient evaluations"):
        estimate(stack.gen_gw, "guarded", np.array([X] * 2), estimator=gen.AIS, num_samples=16,
                 ais=gen.AisOptions(num_temperatures=100000, leapfrog_steps=1000), timeout=TIMEOUT)
    # Each field within its bound, the work not: 20 000 rows x 200 000 samples x ~2 054 multiply-adds (the
    # evaluation's 2 000 + model E's 52 + the prior's 2) is ~8.2e12, above --max_estimate_work's default 5e12 (it
    # used to run ~10 minutes of two cores).
    with expect_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "--max_estimate_work", "is ~8.22e+12 multiply-adds"):
        estimate(stack.gen_gw, "guarded", np.array([X] * 20000), estimator=gen.PRIOR, num_samples=MAX_SAMPLES,
                 timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "closed-form"):
        estimate(stack.gen_gw, "guarded", x, estimator=gen.EXACT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "sample_offset"):
        estimate(stack.gen_gw, "guarded", x, estimator=gen.PRIOR, num_samples=10, sample_offset=2 ** 32 - 5)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "max_samples"):
        list(stack.gen_gw.StreamEstimate(gen.StreamEstimateRequest(
            request=gen.EstimateLogLikelihoodRequest(model=ref("guarded"), x=to_matrix(x), estimator=gen.PRIOR,
                                                     num_samples=100), max_samples=50), timeout=TIMEOUT))


def test_a_long_estimate_stops_at_its_deadline_and_the_server_keeps_serving(stack):
    create_model_e(stack.gen_gw, "slow")
    with expect_rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED):
        # 8 x (2000 + 4) x 5000 x 10 = 8e8 gradient evaluations, just inside --max_ais_work's 10^9: minutes.
        estimate(stack.gen, "slow", np.array([X] * 8), estimator=gen.AIS, seed=1, num_samples=2000,
                 ais=gen.AisOptions(num_temperatures=5000), timeout=1.0)
    # The server abandoned the work (it checks the deadline between chunks): the next call is answered at once.
    response = estimate(stack.gen, "slow", np.array([X]), estimator=gen.PRIOR, seed=1, num_samples=100)
    assert response.rows[0].num_samples == 100
    # The server's own log: the abandoned call ended soon after its 1 s deadline, not after the whole AIS run.
    def stopped_calls():
        lines = [json.loads(line) for line in stack.generative.stderr_text().splitlines() if line.startswith("{")]
        found = [entry for entry in lines if entry["method"].endswith("/EstimateLogLikelihood")
                 and entry["code"] in ("DEADLINE_EXCEEDED", "CANCELLED")]
        assert found, "no log line yet"
        return found

    # The whole AIS run would take minutes: its log line appearing within 20 s shows the work was abandoned.
    poll_until(stopped_calls, timeout=20, what="the server's log line of the call stopped by its deadline")


@pytest.mark.parametrize("estimator, name", [(gen.PRIOR, "prior"), (gen.IMPORTANCE, "importance"), (gen.AIS, "ais")])
def test_cli_estimate_runs_each_estimator(stack, estimator, name):
    create_model_e(stack.gen_gw, "cli-e")
    x = ",".join(repr(float(v)) for v in X)
    result = subprocess.run([str(binary("maas")), f"--target={stack.gateway_process.address}", "--json", "estimate",
                             "--model", "cli-e", "--x", x, "--estimator", name, "--num_samples", "40", "--seed", "8"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["estimator"] == gen.Estimator.Name(estimator)
    direct = estimate(stack.gen, "cli-e", np.array([X]), estimator=estimator, num_samples=40, seed=8)
    assert printed["rows"][0]["num_samples"] == 40
    assert printed["rows"][0]["log_likelihood"] == pytest.approx(direct.rows[0].log_likelihood, rel=0, abs=1e-12)


def test_mlp_decoder_samples_do_not_depend_on_batching_or_route(stack):
    create_model_e(stack.gen_gw, "sampled")

    def draw(stub, batch_size, start_index=0, num_samples=1000):
        batches = list(stub.Sample(gen.SampleRequest(model=ref("sampled"), num_samples=num_samples, seed=21,
                                                     start_index=start_index, batch_size=batch_size,
                                                     include_latents=True), timeout=TIMEOUT))
        x = b"".join(np.asarray(b.x.values, dtype="<f8").tobytes() for b in batches)
        z = b"".join(np.asarray(b.latents.values, dtype="<f8").tobytes() for b in batches)
        return x, z

    reference = draw(stack.gen_gw, 1000)
    assert draw(stack.gen_gw, 1) == reference
    assert draw(stack.gen_gw, 7) == reference
    assert draw(stack.gen, 1000) == reference
    shard = draw(stack.gen_gw, 64, start_index=500, num_samples=500)
    assert shard[0] == reference[0][500 * 4 * 8:] and shard[1] == reference[1][500 * 2 * 8:]
    # Residuals x - f(z) have the decoder's noise variance (chi-square bounds for 4000 values).
    x = np.frombuffer(reference[0]).reshape(-1, 4)
    z = np.frombuffer(reference[1]).reshape(-1, 2)
    w1, b1, w2, b2 = model_e()
    residual = x - (np.tanh(z @ w1.T + b1) @ w2.T + b2)
    assert abs(residual.var() / NOISE_VARIANCE - 1) < 0.1
