"""StreamEstimate holds memory bounded by its rows, whatever its increment (num_samples), on the real
maas-generative binary.

An audit found one increment of 10 000 rows x 20 000 PRIOR samples peaking at 3.2 GB (1.6 GB still held after the
stream) where the unary EstimateLogLikelihood of the same request peaked at 53 MB: the stream asked the estimator
for every log weight of the increment (rows x num_samples doubles) and copied them into its Pareto k-hat tails.

Here one increment of 400 rows x 100 000 samples would hold 320 MB of log weights that way (about twice that at the
peak). The bound asserted, 200 MiB of peak resident memory (VmHWM) for the whole server process, is several times
what the estimate needs now (at most 2^22 log weights at once, 32 MiB, plus ~3 sqrt(max_samples) largest log
weights per row for k-hat, ~4 MB here). Oracle for the values: the closed-form log p(x) of the 1-D mixture
(scipy), and the unary call's answer, which the stream's single increment must equal.
"""

import numpy as np
import pytest
from scipy.stats import norm
from scipy.special import logsumexp

from maas.generative.v1 import generative_pb2 as gen

from generative_oracles import create
from maas_testing import TIMEOUT, assert_rss_bound, channel_to, ref, start_generative, to_matrix, wait_serving
from maas.generative.v1 import generative_pb2_grpc

ROWS, SAMPLES = 400, 100_000
PEAK_BOUND_MB = 200


def peak_rss_mb(pid):
    """Peak resident set size (VmHWM) of a process, in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


@pytest.fixture
def server(tmp_path):
    # A fresh process per test: its peak resident memory is this test's alone.
    process = start_generative(tmp_path / "models", extra=["--threads", "2"])
    channel = channel_to(process)
    try:
        wait_serving(channel)
        yield process, generative_pb2_grpc.GenerativeServiceStub(channel)
    finally:
        channel.close()
        code = process.stop()
        process.release()
    assert code == 0, f"maas-generative exited with {code}:\n{process.stderr_text()}"


def test_one_large_increment_stays_within_a_bound_independent_of_num_samples(server):
    process, stub = server
    weights, means = np.array([0.5, 0.5]), np.array([0.0, 1.0])
    create(stub, "mix", gen.GenerativeModelSpec(gaussian_mixture=gen.GaussianMixtureSpec(
        covariance_type=gen.DIAG, weights=weights.tolist(), means=to_matrix(means[:, None]),
        covariances=to_matrix(np.ones((2, 1))))))
    x = np.random.default_rng(0).normal(size=(ROWS, 1))
    request = gen.EstimateLogLikelihoodRequest(model=ref("mix"), x=to_matrix(x), estimator=gen.PRIOR,
                                               num_samples=SAMPLES, seed=1)
    before = peak_rss_mb(process.proc.pid)
    messages = list(stub.StreamEstimate(gen.StreamEstimateRequest(request=request, max_samples=SAMPLES),
                                        timeout=10 * TIMEOUT))
    peak = peak_rss_mb(process.proc.pid)
    assert len(messages) == 1 and messages[0].stop_reason == gen.MAX_SAMPLES
    assert_rss_bound(peak < PEAK_BOUND_MB,
                     f"one increment of {ROWS} x {SAMPLES} samples peaked at {peak:.0f} MiB resident "
                     f"(before it: {before:.0f} MiB); bound {PEAK_BOUND_MB} MiB")

    # The values are those of the unary call over the same samples, and near the closed form.
    unary = stub.EstimateLogLikelihood(request, timeout=10 * TIMEOUT)
    exact = logsumexp(np.log(weights) + norm.logpdf(x, loc=means, scale=1.0), axis=1)
    streamed = messages[0].estimate
    for r in range(ROWS):
        s, u = streamed.rows[r], unary.rows[r]
        assert s.num_samples == u.num_samples == SAMPLES
        assert s.log_likelihood == u.log_likelihood
        assert s.standard_error == u.standard_error
        assert s.ess == u.ess
        assert s.pareto_k == u.pareto_k
        assert abs(s.log_likelihood - exact[r]) < 6 * s.standard_error + 1e-12
