"""The installed maas_client package: it is the venv's installed copy (what the client tests exercise), it carries
generated stubs with typed .pyi files for every contract, and its own code passes `mypy --strict`."""

import os
import pathlib
import subprocess
import sys
import sysconfig

import maas_client

SOURCE = pathlib.Path(os.environ.get("MAAS_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
BUILD = pathlib.Path(os.environ.get("MAAS_BUILD_DIR", SOURCE / "build"))


def test_the_tests_use_the_installed_package_with_generated_typed_stubs():
    installed = pathlib.Path(sysconfig.get_paths()["purelib"]) / "maas_client"
    assert pathlib.Path(maas_client.__file__).resolve().parent == installed.resolve()
    for proto in (SOURCE / "proto").rglob("*.proto"):
        generated = installed / "_proto" / proto.relative_to(SOURCE / "proto").with_suffix("")
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            path = generated.parent / (generated.name + suffix)
            assert path.is_file(), f"{path} was not generated"
            assert "from maas." not in path.read_text(), f"{path} imports the top-level maas package"
    assert (installed / "py.typed").is_file()


def test_mypy_strict_passes_on_the_package():
    cache = BUILD / "mypy_cache"
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", str(SOURCE / "clients/python/pyproject.toml"),
         "--cache-dir", str(cache), "-p", "maas_client"],
        capture_output=True, text=True, timeout=300, cwd=BUILD)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout


def test_the_label_fields_are_typed_for_integer_labels_too(tmp_path):
    """TrainResult.classes was annotated List[str] while a model of integer labels gives ints there (as the README
    promises): mypy --strict refused code that uses them as ints and passed code that crashed on them."""
    snippet = tmp_path / "integer_classes.py"
    snippet.write_text(
        "from typing import List\n\n"
        "from maas_client.types import ClassMetrics, Explanation, Predictions, TrainResult\n\n\n"
        "def integer_classes(r: TrainResult, p: Predictions, m: ClassMetrics, e: Explanation) -> List[int]:\n"
        "    classes: List[int] = r.classes\n"
        "    predicted: List[int] = p.classes\n"
        "    label: int = m.label\n"
        "    runner_up: int = e.runner_up\n"
        "    return [*classes, *predicted, label, runner_up]\n")
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(BUILD / "mypy_cache"),
                           str(snippet)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_monte_carlo_estimates_convert_to_arrays():
    """Estimate.from_proto on a Monte Carlo response (the estimators the server adds): every per-row field becomes
    an array, an unset exact_log_likelihood is NaN, the stop reason is the enum's lower-case name."""
    from maas_client.pb import generative as gpb
    from maas_client.types import Estimate
    response = gpb.EstimateLogLikelihoodResponse(estimator=gpb.IMPORTANCE, seed=12, model_version=3, rows=[
        gpb.RowEstimate(log_likelihood=-1.5, standard_error=0.01, ess=900.5, num_samples=1000, pareto_k=0.2,
                        exact_log_likelihood=-1.49, ais_acceptance_rate=0.75,
                        statistics=gpb.WeightStatistics(count=1000, log_sum_w=2.5, log_sum_w2=1.25)),
        gpb.RowEstimate(log_likelihood=-7.0, standard_error=0.3, ess=12.0, num_samples=1000, pareto_k=0.9),
    ])
    est = Estimate.from_proto(response, stop_reason="target_reached")
    assert (est.estimator, est.seed, est.model_version, est.stop_reason) == ("importance", 12, 3, "target_reached")
    assert est.log_likelihood.tolist() == [-1.5, -7.0] and est.standard_error.tolist() == [0.01, 0.3]
    assert est.ess.tolist() == [900.5, 12.0] and est.num_samples.tolist() == [1000, 1000]
    assert est.pareto_k.tolist() == [0.2, 0.9]
    assert est.exact_log_likelihood[0] == -1.49 and str(est.exact_log_likelihood[1]) == "nan"
    assert est.ais_acceptance_rate.tolist() == [0.75, 0.0]
    assert est.statistics.count.tolist() == [1000, 0] and est.statistics.log_sum_w.tolist() == [2.5, 0.0]
    assert est.statistics.log_sum_w2.tolist() == [1.25, 0.0]
