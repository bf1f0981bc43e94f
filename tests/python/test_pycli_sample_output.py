"""`python -m maas_client sample --out FILE` against an in-process fake Sample stream that can fail midway.

The .npy output was sized for all N rows up front and written in place: a stream that failed (a deadline, a server
restart) left a complete-looking file whose missing rows were zeros, and a CSV was left truncated. The samples now go
to a temporary file next to FILE that becomes FILE only when all N arrived; a failure removes it and leaves an
existing FILE as it was."""

import io
import os
import stat

import grpc
import numpy as np
import pytest

from client_testing import fake_generative_service
from maas_client.cli import main
from maas_client.pb import common, generative as gpb

BATCH = 10


def rows(start, n):
    i = np.arange(start, start + n, dtype=np.float64)
    return np.column_stack([i, 0.5 * i])


def sample(request, context):
    """Sample of model "good": rows [i, i / 2] in batches of 10; "fails": UNAVAILABLE after 20 rows; "short": ends
    (OK) after 20 rows."""
    name = request.model.name
    end = request.num_samples if name == "good" else min(20, request.num_samples)
    for start in range(0, end, BATCH):
        x = rows(start, min(BATCH, end - start))
        yield gpb.SampleBatch(start_index=start, seed=7, model_version=1,
                              x=common.Matrix(rows=x.shape[0], cols=2, values=x.ravel().tolist()))
    if name == "fails":
        context.abort(grpc.StatusCode.UNAVAILABLE, "the server went away")


@pytest.fixture(scope="module")
def address():
    handler = grpc.unary_stream_rpc_method_handler(sample, request_deserializer=gpb.SampleRequest.FromString,
                                                   response_serializer=gpb.SampleBatch.SerializeToString)
    with fake_generative_service({"Sample": handler}) as address:
        yield address


def pycli(capsys, address, *argv):
    capsys.readouterr()
    out = io.StringIO()
    status = main(["--target", address, "--progress", "never", "--timeout", "30", *map(str, argv)], out=out)
    return status, out.getvalue(), capsys.readouterr().err


def read(path):
    return np.load(path) if path.suffix == ".npy" else np.loadtxt(path, delimiter=",", ndmin=2)


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_a_failed_stream_leaves_no_file_and_an_old_one_untouched(address, tmp_path, capsys, suffix):
    out = tmp_path / f"samples{suffix}"
    status, printed, err = pycli(capsys, address, "sample", "fails", 1000, "--out", out)
    assert (status, printed) == (1, "") and err == "error: UNAVAILABLE: the server went away\n"
    assert list(tmp_path.iterdir()) == []  # no FILE, no temporary file
    out.write_bytes(b"the previous samples")
    status, _, err = pycli(capsys, address, "sample", "fails", 1000, "--out", out)
    assert status == 1 and out.read_bytes() == b"the previous samples"
    assert list(tmp_path.iterdir()) == [out]


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_a_stream_that_ends_early_is_data_loss_and_leaves_no_file(address, tmp_path, capsys, suffix):
    out = tmp_path / f"samples{suffix}"
    status, _, err = pycli(capsys, address, "sample", "short", 1000, "--out", out)
    assert status == 1
    assert err == "error: DATA_LOSS: the server ended the sample stream after 20 of the 1000 samples asked for\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_a_complete_stream_becomes_the_file(address, tmp_path, capsys, suffix):
    out = tmp_path / f"samples{suffix}"
    status, printed, err = pycli(capsys, address, "sample", "good", 95, "--out", out)
    assert status == 0, err
    assert printed == f"wrote 95 samples of good to {out} (seed 7)\n"
    np.testing.assert_array_equal(read(out), rows(0, 95))
    assert list(tmp_path.iterdir()) == [out]
    # The mode open() gives a new file, not the temporary file's 0600.
    (tmp_path / "plain").write_text("")
    assert stat.S_IMODE(out.stat().st_mode) == stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    # An existing file keeps its mode; through a symlink, the link stays and its target gets the samples.
    os.chmod(out, 0o640)
    link = tmp_path / f"link{suffix}"
    link.symlink_to(out)
    status, _, err = pycli(capsys, address, "sample", "good", 30, "--out", link)
    assert status == 0, err
    assert link.is_symlink() and stat.S_IMODE(out.stat().st_mode) == 0o640
    np.testing.assert_array_equal(read(out), rows(0, 30))


def test_dev_stdout_and_fifos_are_written_in_place(address, tmp_path, capfd):
    """/dev/stdout resolves to a pipe, a terminal or (here, under pytest's capture) the file stdout was redirected to:
    never a temporary file renamed over it (that would fail, or replace the file stdout still writes to)."""
    status = main(["--target", address, "--progress", "never", "sample", "good", "12", "--out", "/dev/stdout"],
                  out=io.StringIO())
    captured = capfd.readouterr()
    assert status == 0, captured.err
    np.testing.assert_array_equal(np.loadtxt(io.StringIO(captured.out), delimiter=","), rows(0, 12))
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the pipe's buffer holds the few rows written
    try:
        status = main(["--target", address, "--progress", "never", "sample", "good", "7", "--out", str(fifo)],
                      out=io.StringIO())
        assert status == 0, capfd.readouterr().err
        got = os.read(reader, 1 << 16).decode()
    finally:
        os.close(reader)
    np.testing.assert_array_equal(np.loadtxt(io.StringIO(got), delimiter=","), rows(0, 7))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.csv"]
