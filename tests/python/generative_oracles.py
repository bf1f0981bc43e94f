"""Shared helpers of the generative family oracle tests: one maas-generative server per module, spec builders,
and thin wrappers over CreateModel / FitModel / Sample / EstimateLogLikelihood.

The oracles themselves (scikit-learn, numpy, scipy) are computed in each test file at test time.
"""

from __future__ import annotations

import contextlib
import pathlib
from typing import Iterator, Optional, Sequence, Tuple

import numpy as np

from maas.generative.v1 import generative_pb2 as gen
from maas.generative.v1 import generative_pb2_grpc

from maas_testing import TIMEOUT, channel_to, from_matrix, ref, start_generative, to_matrix, wait_serving

COVARIANCE_TYPES = {"full": gen.FULL, "diag": gen.DIAG, "spherical": gen.SPHERICAL}


@contextlib.contextmanager
def generative_server(model_dir: pathlib.Path, extra: Sequence[str] = ()) -> Iterator[
        generative_pb2_grpc.GenerativeServiceStub]:
    """A maas-generative binary on port 0 and a stub to it; stopped (and checked for exit code 0) at the end."""
    process = start_generative(model_dir, extra=extra)
    channel = channel_to(process)
    try:
        wait_serving(channel)
        yield generative_pb2_grpc.GenerativeServiceStub(channel)
    finally:
        channel.close()
        code = process.stop()
        process.release()
    assert code == 0, f"maas-generative exited with {code}:\n{process.stderr_text()}"


# -- specs --------------------------------------------------------------------------------------------------------
def gmm_spec(weights, means, covariances, covariance_type="full") -> gen.GenerativeModelSpec:
    """covariances: K x D x D (full), K x D (diag) or K (spherical), as scikit-learn's covariances_."""
    covs = np.asarray(covariances, dtype=np.float64)
    if covariance_type == "full":
        layout = covs.reshape(-1, covs.shape[-1])
    elif covariance_type == "diag":
        layout = covs
    else:
        layout = covs.reshape(-1, 1)
    return gen.GenerativeModelSpec(gaussian_mixture=gen.GaussianMixtureSpec(
        covariance_type=COVARIANCE_TYPES[covariance_type], weights=list(map(float, weights)),
        means=to_matrix(means), covariances=to_matrix(layout)))


def ppca_spec(loadings, mean, noise_variance) -> gen.GenerativeModelSpec:
    return gen.GenerativeModelSpec(ppca=gen.PpcaSpec(loadings=to_matrix(loadings), mean=list(map(float, mean)),
                                                     noise_variance=float(noise_variance)))


def fa_spec(loadings, mean, noise_variance) -> gen.GenerativeModelSpec:
    return gen.GenerativeModelSpec(factor_analysis=gen.FactorAnalysisSpec(
        loadings=to_matrix(loadings), mean=list(map(float, mean)), noise_variance=list(map(float, noise_variance))))


def bmm_spec(weights, probabilities) -> gen.GenerativeModelSpec:
    return gen.GenerativeModelSpec(bernoulli_mixture=gen.BernoulliMixtureSpec(
        weights=list(map(float, weights)), probabilities=to_matrix(probabilities)))


def gmm_from_spec(spec: gen.GaussianMixtureSpec) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights, means, covariances in scikit-learn's layout) of a stored spec."""
    weights = np.array(spec.weights)
    means = from_matrix(spec.means)
    covs = from_matrix(spec.covariances)
    k, d = means.shape
    if spec.covariance_type in (gen.FULL, gen.COVARIANCE_TYPE_UNSPECIFIED):
        covs = covs.reshape(k, d, d)
    elif spec.covariance_type == gen.SPHERICAL:
        covs = covs.reshape(k)
    return weights, means, covs


# -- calls --------------------------------------------------------------------------------------------------------
def create(stub, name: str, spec: gen.GenerativeModelSpec) -> gen.CreateModelResponse:
    return stub.CreateModel(gen.CreateModelRequest(name=name, spec=spec), timeout=TIMEOUT)


def exact(stub, name: str, x) -> np.ndarray:
    response = stub.EstimateLogLikelihood(gen.EstimateLogLikelihoodRequest(
        model=ref(name), x=to_matrix(x), estimator=gen.EXACT), timeout=TIMEOUT)
    assert response.estimator == gen.EXACT
    return np.array([r.log_likelihood for r in response.rows])


def sample(stub, name: str, num_samples: int, seed: int, batch_size: int = 0, start_index: int = 0,
           latents: bool = True) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    batches = list(stub.Sample(gen.SampleRequest(model=ref(name), num_samples=num_samples, seed=seed,
                                                 batch_size=batch_size, start_index=start_index,
                                                 include_latents=latents), timeout=TIMEOUT))
    x = np.concatenate([from_matrix(b.x) for b in batches])
    z = np.concatenate([from_matrix(b.latents) for b in batches]) if latents else None
    assert x.shape[0] == num_samples
    return x, z


def fit(stub, name: str, family: str, hyper, rows, seed: int = 1, chunk: int = 257) -> gen.FitModelResponse:
    """FitModel with `hyper` (a *Fit message) and the rows streamed in chunks of `chunk` rows."""
    rows = np.asarray(rows, dtype=np.float64)

    def requests():
        yield gen.FitModelRequest(config=gen.FitConfig(name=name, seed=seed, **{family: hyper}))
        for start in range(0, rows.shape[0], chunk):
            yield gen.FitModelRequest(rows=to_matrix(rows[start:start + chunk]))

    return stub.FitModel(requests(), timeout=60.0)


def get_spec(stub, name: str) -> gen.GenerativeModelSpec:
    return stub.GetModel(gen.GetModelRequest(model=ref(name)), timeout=TIMEOUT).spec


def assert_same_bytes_for_batch_sizes(stub, name: str, seed: int = 20261202, n: int = 1000) -> None:
    """The determinism contract: batch sizes 1, 7 and 1000 give the same x and latent bytes."""
    x_ref, z_ref = sample(stub, name, n, seed, batch_size=1000)
    for batch_size in (1, 7):
        x, z = sample(stub, name, n, seed, batch_size=batch_size)
        assert x.tobytes() == x_ref.tobytes(), f"batch_size {batch_size} changed the samples"
        assert z.tobytes() == z_ref.tobytes(), f"batch_size {batch_size} changed the latents"
    shard, _ = sample(stub, name, n - 300, seed, batch_size=64, start_index=300)
    assert shard.tobytes() == x_ref[300:].tobytes()
