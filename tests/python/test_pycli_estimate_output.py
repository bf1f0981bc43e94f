"""`python -m maas_client estimate NAME FILE --out OUT` against an in-process fake StreamEstimate.

The estimates were written straight into OUT once the stream had ended: a write that failed midway (a full disk, an
I/O error) left OUT truncated, with an existing file's previous content gone. OUT is now written as `sample --out`
is: to a temporary file next to it that becomes OUT only when every row is written."""

import builtins
import io

import grpc
import numpy as np
import pytest

from client_testing import fake_generative_service
from maas_client import cli
from maas_client.pb import generative as gpb

ROWS = 5


def stream_estimate(request, context):
    """One final estimate per row: log p = -row index, standard error 0.5."""
    rows = [gpb.RowEstimate(log_likelihood=-i, standard_error=0.5, ess=10, num_samples=20, pareto_k=0.1)
            for i in range(request.request.x.rows)]
    yield gpb.StreamEstimateResponse(
        estimate=gpb.EstimateLogLikelihoodResponse(rows=rows, estimator=gpb.IMPORTANCE, seed=3, model_version=1),
        stop_reason=gpb.MAX_SAMPLES)


@pytest.fixture(scope="module")
def address():
    handler = grpc.unary_stream_rpc_method_handler(stream_estimate,
                                                   request_deserializer=gpb.StreamEstimateRequest.FromString,
                                                   response_serializer=gpb.StreamEstimateResponse.SerializeToString)
    with fake_generative_service({"StreamEstimate": handler}) as address:
        yield address


def estimate(address, tmp_path, out):
    rows = tmp_path / "rows.csv"
    np.savetxt(rows, np.zeros((ROWS, 2)), delimiter=",")
    return cli.main(["--target", address, "--progress", "never", "--timeout", "30", "estimate", "m", str(rows),
                     "--estimator", "importance", "--out", str(out)], out=io.StringIO())


def test_the_estimates_become_the_file(address, tmp_path):
    out = tmp_path / "estimates.csv"
    assert estimate(address, tmp_path, out) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "log_likelihood,standard_error,ess,num_samples,pareto_k"
    np.testing.assert_array_equal(np.loadtxt(out, delimiter=",", skiprows=1)[:, 0], -np.arange(ROWS))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["estimates.csv", "rows.csv"]


def test_a_failed_write_leaves_an_old_file_untouched_and_no_temporary_file(address, tmp_path, monkeypatch):
    out = tmp_path / "estimates.csv"
    out.write_text("the previous estimates\n")
    written = []

    def print_until_the_disk_is_full(*args, **kwargs):
        name = getattr(kwargs.get("file"), "name", None)
        if isinstance(name, str) and name.startswith(str(tmp_path)):  # OUT or its temporary file
            if len(written) == 3:  # the header and two rows went out
                raise OSError(28, "No space left on device")
            written.append(args)
        builtins.print(*args, **kwargs)

    monkeypatch.setattr(cli, "print", print_until_the_disk_is_full, raising=False)
    assert estimate(address, tmp_path, out) == 1
    assert out.read_text() == "the previous estimates\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["estimates.csv", "rows.csv"]
