"""How GenerativeClient.fit and `python -m maas_client fit` cut rows into FitModel messages, against an in-process
fake FitModel that records every message.

`fit` capped chunks by rows only, whatever their width: the CLI sent 8192 rows per message (64 MiB for 1024 columns,
e.g. flattened 32x32 images: RESOURCE_EXHAUSTED, "Sent message larger than max"), and a chunk yielded by an iterable
went as it came however large. Like the C++ client's FitModel, every message now holds at most MAX_CHUNK_BYTES of
values (4 MiB less 64 KiB), a chunk that holds more is split, and the rows arrive complete and in order."""

import io

import grpc
import numpy as np
import pytest

import maas_client
from client_testing import fake_generative_service
from maas_client.cli import main
from maas_client.generative import MAX_CHUNK_BYTES
from maas_client.pb import common, generative as gpb

# A FitModelRequest is its Matrix's values (8 bytes each, packed) plus a few bytes of header.
MESSAGE_OVERHEAD = 64


class FakeFit:
    """FitModel that records each message's serialized size and the rows of each chunk, and answers the config's
    name, version 1 and the number of rows."""

    def __init__(self):
        self.sizes, self.chunks = [], []

    def __call__(self, requests, context):
        config = None
        for request in requests:
            if request.HasField("config"):
                config = request.config
                continue
            self.sizes.append(request.ByteSize())
            m = request.rows
            self.chunks.append(np.array(m.values, dtype=np.float64).reshape(m.rows, m.cols))
        rows = sum(c.shape[0] for c in self.chunks)
        return gpb.FitModelResponse(info=common.ModelInfo(name=config.name, version=1, family="uniform"),
                                    trace=gpb.FitTrace(num_rows=rows))

    def rows(self):
        return np.concatenate(self.chunks)


@pytest.fixture
def fake():
    fit = FakeFit()
    handler = grpc.stream_unary_rpc_method_handler(fit, request_deserializer=gpb.FitModelRequest.FromString,
                                                   response_serializer=gpb.FitModelResponse.SerializeToString)
    with fake_generative_service({"FitModel": handler},
                                 options=[("grpc.max_receive_message_length", 256 << 20)]) as address:
        yield address, fit


def wide(rows, cols, seed=0):
    return (np.random.default_rng(seed).random((rows, cols)) < 0.5).astype(np.float64)


def assert_capped(fit, want):
    assert max(fit.sizes) <= MAX_CHUNK_BYTES + MESSAGE_OVERHEAD, fit.sizes
    np.testing.assert_array_equal(fit.rows(), want)


def test_an_iterables_chunk_too_large_for_a_message_is_split(fake):
    address, fit = fake
    big = np.random.default_rng(1).normal(size=(60_000, 10))  # 4.8 MB in one chunk
    with maas_client.GenerativeClient(address, timeout=60) as gen:
        seen = []
        gen.fit(iter([big[:5], big[5:]]), "uniform", name="big", on_rows=seen.append)
    assert_capped(fit, big)
    assert [c.shape[0] for c in fit.chunks] == [5, 51609, 8386]  # the small chunk as it came, 4.8 MB in 2
    assert seen == [c.shape[0] for c in fit.chunks]


def test_chunk_rows_is_capped_by_bytes_for_wide_rows(fake):
    address, fit = fake
    x = wide(1200, 1024)  # 1000 rows of 1024 values are 8 MiB
    with maas_client.GenerativeClient(address, timeout=60) as gen:
        gen.fit(x, "bernoulli_mixture", name="wide", chunk_rows=1000)
    assert_capped(fit, x)
    assert [c.shape[0] for c in fit.chunks] == [504, 504, 192]
    # A row wider than the cap goes alone.
    fit.sizes, fit.chunks = [], []
    very_wide = np.arange(2 * 600_000, dtype=np.float64).reshape(2, 600_000)
    with maas_client.GenerativeClient(address, timeout=60) as gen:
        gen.fit(very_wide, "uniform", name="very-wide")
    assert [c.shape[0] for c in fit.chunks] == [1, 1]
    np.testing.assert_array_equal(fit.rows(), very_wide)


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_the_cli_sends_wide_files_in_messages_under_the_cap(fake, tmp_path, capsys, suffix):
    """8192 rows (the CLI's default --chunk-rows) of 1024 columns used to be one 64 MiB message (above the servers'
    limit); here 128 columns, 8 MiB."""
    address, fit = fake
    x = wide(8192, 128, seed=2)
    path = tmp_path / f"wide{suffix}"
    if suffix == ".npy":
        np.save(path, x)
    else:
        np.savetxt(path, x, delimiter=",", fmt="%g")
    out = io.StringIO()
    status = main(["--target", address, "--progress", "never", "fit", "wide", str(path), "--family",
                   "bernoulli_mixture"], out=out)
    assert status == 0, capsys.readouterr().err
    assert "8192 rows" in out.getvalue()
    assert_capped(fit, x)
