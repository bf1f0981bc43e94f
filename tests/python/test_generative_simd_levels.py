"""Sample, EXACT and fitted ppca / factor_analysis / gaussian_mixture bytes do not depend on the SIMD level (docs/determinism.md): the real maas-generative binary, started
with MAAS_SIMD=baseline / avx2 / (unset: the CPU's best, AVX-512 where present), serves byte-identical Sample streams (and
EXACT log p(x) for the tractable families: the row kernels of row_kernels_simd.h) for
ppca, factor_analysis, gaussian_mixture (full and diag) and mlp_decoder (Gaussian and Bernoulli: the fixed-order GEMM and
own activations of common/math/gemm.h, whose path MAAS_SIMD caps too). A level the CPU lacks is capped to what it has (on such a
CPU the comparison covers fewer distinct levels; common_random_test and generative_families_test compare the kernels of
every level the CPU has directly).
"""

import numpy as np
import pytest
from maas.generative.v1 import generative_pb2 as gen

from generative_oracles import create, exact, fa_spec, fit, generative_server, get_spec, gmm_spec, ppca_spec, sample
from maas_testing import to_matrix

D, L, K = 61, 9, 3


def mlp_spec(rng, likelihood):
    """L -> 37 (tanh) -> D: widths that are no multiple of any vector width."""
    hidden = 37
    layers = [gen.DenseLayer(weight=to_matrix(rng.standard_normal((hidden, L)) / np.sqrt(L)),
                             bias=list(map(float, rng.standard_normal(hidden))), activation=gen.TANH),
              gen.DenseLayer(weight=to_matrix(rng.standard_normal((D, hidden)) / np.sqrt(hidden)),
                             bias=list(map(float, rng.standard_normal(D))), activation=gen.IDENTITY)]
    spec = gen.MlpDecoderSpec(latent_dim=L, layers=layers, likelihood=likelihood, noise_variance=0.3)
    return gen.GenerativeModelSpec(mlp_decoder=spec)


def models():
    rng = np.random.default_rng(7)
    w = rng.standard_normal((D, L)) / np.sqrt(L)
    mu = rng.standard_normal(D)
    covs = []
    for _ in range(K):
        b = rng.standard_normal((D, D)) / np.sqrt(D)
        covs.append(b @ b.T + 0.3 * np.eye(D))
    means = rng.standard_normal((K, D))
    weights = np.array([0.5, 0.3, 0.2])
    return {
        "ppca": ppca_spec(w, mu, 0.2),
        "fa": fa_spec(w, mu, 0.1 + rng.random(D)),
        "gmm-full": gmm_spec(weights, means, np.vstack(covs)),
        "gmm-diag": gmm_spec(weights, means, 0.5 + rng.random((K, D)), covariance_type="diag"),
        "mlp-gaussian": mlp_spec(rng, gen.GAUSSIAN),
        "mlp-bernoulli": mlp_spec(rng, gen.BERNOULLI),
    }


def set_level(monkeypatch, level):
    """The SIMD level the servers started next run at (None: the CPU's best)."""
    if level is None:
        monkeypatch.delenv("MAAS_SIMD", raising=False)
    else:
        monkeypatch.setenv("MAAS_SIMD", level)


def draw(tmp_path, level, monkeypatch):
    """Per model: the Sample stream's x and latents, and EXACT log p(x) of 41 rows (blocks of the row kernels and a
    part, rows near and past float64's largest squares) for the tractable ones, as bytes."""
    set_level(monkeypatch, level)
    out = {}
    rows = 3 * np.random.default_rng(11).standard_normal((41, D))
    rows[4, 0], rows[17, 3], rows[33, 5] = 1e153, 4e154, -1e200
    with generative_server(tmp_path / (level or "best")) as stub:
        for name, spec in models().items():
            create(stub, name, spec)
            x, z = sample(stub, name, 700, seed=20261202, batch_size=97, start_index=5)
            log_p = b"" if name.startswith("mlp") else exact(stub, name, rows).tobytes()
            out[name] = {"x": x.tobytes(), "latents": z.tobytes(), "EXACT log p(x)": log_p}
    return out


def assert_same_at_every_level(collect, tmp_path, monkeypatch):
    """collect(tmp_path, level, monkeypatch) -> {model: {what: bytes}} is the same at MAAS_SIMD avx2, baseline and
    the default."""
    reference = collect(tmp_path, None, monkeypatch)
    for level in ("avx2", "baseline"):
        got = collect(tmp_path, level, monkeypatch)
        for name, parts in reference.items():
            for what, value in parts.items():
                assert got[name][what] == value, f"{name}: {what} differs between MAAS_SIMD={level} and the default"


def test_sample_bytes_are_identical_at_every_simd_level(tmp_path, monkeypatch):
    assert_same_at_every_level(draw, tmp_path, monkeypatch)


def fitted(tmp_path, level, monkeypatch):
    """The specs of ppca, factor_analysis and full gaussian_mixture fits of 400 x 160 rows (their covariances, the
    mixture's E-step products and the subspace iteration's by math::Gemm), as bytes."""
    set_level(monkeypatch, level)
    rng = np.random.default_rng(12)
    rows = rng.standard_normal((400, 4)) @ (2.0 * rng.standard_normal((4, 160))) + rng.standard_normal((400, 160))
    out = {}
    with generative_server(tmp_path / ("fit-" + (level or "best"))) as stub:
        fit(stub, "ppca-fit", "ppca", gen.PpcaFit(latent_dim=4), rows)
        fit(stub, "fa-fit", "factor_analysis", gen.FactorAnalysisFit(latent_dim=4), rows)
        fit(stub, "gmm-fit", "gaussian_mixture", gen.GaussianMixtureFit(n_components=3, covariance_type=gen.FULL),
            rows)
        for name in ("ppca-fit", "fa-fit", "gmm-fit"):
            out[name] = {"the fitted spec": get_spec(stub, name).SerializeToString(deterministic=True)}
    return out


def test_fitted_specs_are_identical_at_every_simd_level(tmp_path, monkeypatch):
    assert_same_at_every_level(fitted, tmp_path, monkeypatch)
