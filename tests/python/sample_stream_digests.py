"""Digests of the raw wire bytes of Sample streams, for before/after comparisons of a sampler change.

Not a test (nothing to compare against inside one build): run it against two builds and diff the outputs. It starts
the build's maas-generative at MAAS_SIMD = best / avx2 / baseline, creates one model per family and variant (uniform,
ppca, factor_analysis, gaussian_mixture full / diag / spherical, bernoulli_mixture, mlp_decoder Gaussian / Bernoulli;
widths that are no multiple of any vector width) and prints one sha256 per (level, model, request shape) of the
Sample response messages exactly as they came off the wire (the length and bytes of each message):

  MAAS_BUILD_DIR=build PYTHONPATH=build/python:tests/python .venv/bin/python tests/python/sample_stream_digests.py > a
  (other build) ... > b; diff a b        # empty: the same bytes for every family, shape and SIMD level
"""

import contextlib
import hashlib
import os
import pathlib
import tempfile

import numpy as np
from maas.generative.v1 import generative_pb2 as gen
from maas.generative.v1 import generative_pb2_grpc

from generative_oracles import bmm_spec, create, gmm_spec
from maas_testing import TIMEOUT, channel_to, ref, start_generative, wait_serving
from test_generative_simd_levels import D, K
from test_generative_simd_levels import models as simd_level_models

# (num_samples, batch_size, start_index, include_latents)
SHAPES = ((700, 97, 5, True), (300, 1, 0, False), (1000, 7, 3, True), (1000, 1000, 0, True), (3000, 0, 11, False))


def models():
    """test_generative_simd_levels's models plus the families and variants it leaves out."""
    rng = np.random.default_rng(8)
    weights = np.array([0.5, 0.3, 0.2])
    means = rng.standard_normal((K, D))
    box = gen.UniformSpec(low=list(map(float, -rng.random(D))), high=list(map(float, 1 + rng.random(D))))
    return {
        **simd_level_models(),
        "uniform": gen.GenerativeModelSpec(uniform=box),
        "gmm-spherical": gmm_spec(weights, means, 0.5 + rng.random(K), covariance_type="spherical"),
        "bmm": bmm_spec(weights, rng.random((K, D))),
    }


@contextlib.contextmanager
def server(model_dir):
    process = start_generative(model_dir)
    channel = channel_to(process)
    try:
        wait_serving(channel)
        yield channel
    finally:
        channel.close()
        process.stop()
        process.release()


def main():
    for level in (None, "avx2", "baseline"):
        if level is None:
            os.environ.pop("MAAS_SIMD", None)
        else:
            os.environ["MAAS_SIMD"] = level
        with tempfile.TemporaryDirectory() as tmp, server(pathlib.Path(tmp)) as channel:
            stub = generative_pb2_grpc.GenerativeServiceStub(channel)
            raw_sample = channel.unary_stream("/maas.generative.v1.GenerativeService/Sample",
                                              request_serializer=gen.SampleRequest.SerializeToString,
                                              response_deserializer=None)
            specs = models()
            for name, spec in specs.items():
                create(stub, name, spec)
            for name in specs:
                for num, batch, start, latents in SHAPES:
                    request = gen.SampleRequest(model=ref(name), num_samples=num, seed=20261202, batch_size=batch,
                                                start_index=start, include_latents=latents)
                    digest = hashlib.sha256()
                    for message in raw_sample(request, timeout=TIMEOUT):
                        digest.update(len(message).to_bytes(8, "little"))
                        digest.update(message)
                    print(f"{level or 'best'} {name} n={num} batch={batch} start={start} latents={latents} "
                          f"{digest.hexdigest()}")


if __name__ == "__main__":
    main()
