"""The `maas` CLI fits every generative family from a CSV file, then samples and estimates it (real binaries).

Oracles: the stored spec (GetModel) for what `fit` reports, the samples' bytes for `sample` (CSV values are
shortest round-trip decimals, so they read back exactly), and the server's own EXACT estimate for `estimate`.
"""

import json

import numpy as np
import pytest

from maas.generative.v1 import generative_pb2_grpc

from generative_oracles import exact, get_spec, sample
from maas_testing import channel_to, start_generative, wait_serving, run_maas_cli


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    process = start_generative(tmp_path_factory.mktemp("cli-models"))
    channel = channel_to(process)
    wait_serving(channel)
    yield process.port, generative_pb2_grpc.GenerativeServiceStub(channel)
    channel.close()
    assert process.stop() == 0
    process.release()


def write_csv(path, rows):
    np.savetxt(path, rows, delimiter=",", fmt="%.17g")
    return path


FAMILIES = [
    ("uniform", [], lambda rng: rng.random((300, 3))),
    ("gaussian_mixture", ["--n_components", 2, "--covariance_type", "diag", "--init", "k-means++"],
     lambda rng: np.concatenate([rng.normal(size=(150, 3)), rng.normal(size=(150, 3)) + 5])),
    ("ppca", ["--latent_dim", 1], lambda rng: rng.normal(size=(300, 1)) @ [[1.0, 2.0, -1.0]]
     + 0.3 * rng.normal(size=(300, 3))),
    ("factor_analysis", ["--latent_dim", 1, "--max_iter", 500],
     lambda rng: rng.normal(size=(300, 1)) @ [[1.0, 2.0, -1.0]] + rng.normal(size=(300, 3)) * [0.2, 0.5, 0.3]),
    ("bernoulli_mixture", ["--n_components", 2, "--min_probability", 0.01],
     lambda rng: (rng.random((300, 3)) < [0.2, 0.7, 0.5]).astype(float)),
]


@pytest.mark.parametrize("family,flags,make_rows", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_fit_sample_estimate_every_family(port, tmp_path, family, flags, make_rows):
    port_number, stub = port
    rows = make_rows(np.random.default_rng(5))
    csv = write_csv(tmp_path / "rows.csv", rows)
    name = f"cli-{family.replace('_', '-')}"
    fitted = json.loads(run_maas_cli(port_number, "--json", "fit", "--name", name, "--family", family, "--data", csv,
                                "--seed", 3, *flags).stdout)
    assert fitted["name"] == name and fitted["family"] == family
    assert fitted["num_rows"] == 300 and fitted["dimension"] == 3 and fitted["seed"] == 3
    assert len(fitted["log_likelihood"]) == fitted["n_iter"] >= 1
    assert get_spec(stub, name).WhichOneof("family") == family

    # sample: the CSV reads back to the server's bytes.
    out = run_maas_cli(port_number, "sample", "--model", name, "--num_samples", 50, "--seed", 8).stdout
    assert out.startswith(f"# model={name} version={fitted['version']} seed=8")
    samples = np.loadtxt(out.splitlines()[1:], delimiter=",", ndmin=2)
    direct, _ = sample(stub, name, 50, seed=8, latents=False)
    assert samples.tobytes() == direct.tobytes()

    # estimate: the CLI prints the server's exact values.
    x_csv = write_csv(tmp_path / "x.csv", rows[:5])
    estimate = json.loads(run_maas_cli(port_number, "--json", "estimate", "--model", name, "--x_file", x_csv).stdout)
    got = np.array([r["log_likelihood"] for r in estimate["rows"]])
    assert estimate["estimator"] == "EXACT"
    np.testing.assert_array_equal(got, exact(stub, name, rows[:5]))
    # The training rows are likely under the fit: the mean equals the trace's last value for closed forms.
    if family in ("uniform", "ppca"):
        mean_ll = exact(stub, name, rows).mean()
        assert abs(mean_ll - fitted["log_likelihood"][-1]) <= 1e-9 * abs(mean_ll)


def test_fit_errors_are_clear(port, tmp_path):
    port_number, _ = port
    csv = write_csv(tmp_path / "rows.csv", np.eye(3))
    usage = run_maas_cli(port_number, "fit", "--name", "x", "--family", "ppca", "--data", csv, check=False)
    assert usage.returncode == 2 and "--latent_dim" in usage.stderr
    wrong = run_maas_cli(port_number, "fit", "--name", "x", "--family", "ppca", "--data", csv, "--n_components", 2,
                    "--latent_dim", 1, check=False)
    assert wrong.returncode == 2 and "--n_components does not apply to --family=ppca" in wrong.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("0,1,1\n1,0.5,0\n")
    result = run_maas_cli(port_number, "fit", "--name", "x", "--family", "bernoulli_mixture", "--data", bad,
                     check=False)
    assert result.returncode == 1
    assert "INVALID_ARGUMENT" in result.stderr and "row 1" in result.stderr and "binary" in result.stderr
    missing = run_maas_cli(port_number, "fit", "--name", "x", "--family", "uniform", "--data", tmp_path / "nope.csv",
                      check=False)
    assert missing.returncode == 1 and "nope.csv" in missing.stderr
