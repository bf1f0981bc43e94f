"""The streaming calls of maas_client (sample, sample_batches, stream_estimate, classify_stream) against an in-process
fake GenerativeService / DiscriminativeService that records how each call arrived and how it ended.

- Breaking out of a loop over a stream held in a variable (stream = gen.sample(...); for x in stream: break) left
  the call running until its deadline: a for statement cannot close an iterator it does not own. The streams are
  now context managers (`with gen.sample(...) as stream:` cancels the call when the block ends), and close() or
  dropping the last reference still cancels it.
- A call on a closed client (a stream made in a `with` block and read after it, or any call after close()) raised
  grpc's bare ValueError("Cannot invoke RPC on closed channel!"), which `except maas_client.MaasError` does not
  catch; it is now the CancelledError the Go and TypeScript clients answer.
- classify_stream, documented for "a (possibly endless) iterable", took the connection's default deadline (60 s) for
  the whole stream: an endless one failed DEADLINE_EXCEEDED after a minute. The streams whose length the caller
  sets (classify_stream: its texts; sample / sample_batches: n and the pace of reading) have no deadline unless
  given timeout=, as in the Go and TypeScript clients; stream_estimate keeps the default, one of its stopping
  rules (the server ends it with stop_reason "deadline" and its last estimate).
- classify_stream (and so `python -m maas_client classify --file`) asked every batch for the latest version: a model
  retrained while the stream flowed classified one call's texts with many versions (even of different classes). It
  now pins the version that answered the first batch, as `maas classify --text_file` does, unless given one."""

import concurrent.futures
import gc
import io
import threading
import time

import grpc
import numpy as np
import pytest

import maas_client
from maas_client.cli import main
from maas_client.pb import common, discriminative as dpb, generative as gpb

GENERATIVE = "maas.generative.v1.GenerativeService"
DISCRIMINATIVE = "maas.discriminative.v1.DiscriminativeService"
# How long a fake stream runs unless it is cancelled, seconds: far longer than any wait of these tests.
ENDLESS = 60.0
# How long a test waits for the fake to see a call end, seconds.
WAIT = 10.0


class Call:
    """What the fake saw of one call: its requests, its deadline (seconds left when it arrived; None: no deadline)
    and whether it ended (`ended` is set when it terminates: within WAIT, only when the client cancelled it, as the
    fake's streams run for ENDLESS seconds and the tests' request sources never end)."""

    def __init__(self, context):
        remaining = context.time_remaining()
        self.remaining = None if remaining is None or remaining > 1e15 else remaining
        self.requests = []
        self.ended = threading.Event()
        context.add_callback(self.ended.set)

    def stream(self, context, response, count=None):
        """Yields response(i) every 10 ms until the client cancels, `count` responses were sent, or ENDLESS."""
        start = time.monotonic()
        i = 0
        while context.is_active() and time.monotonic() - start < ENDLESS and (count is None or i < count):
            yield response(i)
            i += 1
            time.sleep(0.01)


class Fake:
    """Sample and StreamEstimate answer endlessly; ClassifyStream answers each request with one result per text,
    under a version that grows with every request asking for the latest (0), as when the model is retrained while the
    stream flows; a request naming a version gets that one."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()
        self.latest = 0

    def _call(self, context):
        call = Call(context)
        with self.lock:
            self.calls.append(call)
        return call

    def sample(self, request, context):
        call = self._call(context)
        call.requests.append(request)
        yield from call.stream(context, lambda i: gpb.SampleBatch(
            start_index=i, x=common.Matrix(rows=1, cols=1, values=[0.5]), model_version=1), count=request.num_samples)

    def stream_estimate(self, request, context):
        call = self._call(context)
        call.requests.append(request)
        yield from call.stream(context, lambda i: gpb.StreamEstimateResponse())

    def classify_stream(self, requests, context):
        call = self._call(context)
        for request in requests:
            call.requests.append(request)
            with self.lock:
                if not request.model.version:
                    self.latest += 1
                version = request.model.version or self.latest
            yield dpb.ClassifyResponse(model_version=version, results=[
                dpb.Classification(label="a", scores=[dpb.ClassScore(label="a", probability=1.0)])
                for _ in request.texts])


@pytest.fixture
def fake():
    state = Fake()
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=8))

    handlers = {
        GENERATIVE: {
            "Sample": grpc.unary_stream_rpc_method_handler(
                state.sample, request_deserializer=gpb.SampleRequest.FromString,
                response_serializer=gpb.SampleBatch.SerializeToString),
            "StreamEstimate": grpc.unary_stream_rpc_method_handler(
                state.stream_estimate, request_deserializer=gpb.StreamEstimateRequest.FromString,
                response_serializer=gpb.StreamEstimateResponse.SerializeToString),
        },
        DISCRIMINATIVE: {
            "ClassifyStream": grpc.stream_stream_rpc_method_handler(
                state.classify_stream, request_deserializer=dpb.ClassifyRequest.FromString,
                response_serializer=dpb.ClassifyResponse.SerializeToString),
        },
    }
    for service, methods in handlers.items():
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(service, methods)])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    state.address = f"127.0.0.1:{port}"
    yield state
    server.stop(None)


def one_call(fake):
    assert len(fake.calls) == 1, f"{len(fake.calls)} calls reached the fake"
    return fake.calls[0]


X = np.zeros((2, 1))

# Each streaming method, called with arguments the fake takes: (client class, method).
STREAMS = {
    "sample": (maas_client.GenerativeClient, lambda g: g.sample("m", 1 << 30, seed=1)),
    "sample_batches": (maas_client.GenerativeClient, lambda g: g.sample_batches("m", 1 << 30, seed=1)),
    "stream_estimate": (maas_client.GenerativeClient, lambda g: g.stream_estimate("m", X, "prior", 10)),
    "classify_stream": (maas_client.DiscriminativeClient,
                        lambda d: d.classify_stream("m", iter(lambda: "a text", None), batch_size=1)),
}


@pytest.mark.parametrize("method", sorted(STREAMS))
def test_breaking_out_of_a_held_stream_in_a_with_block_cancels_the_call(fake, method):
    client_type, open_stream = STREAMS[method]
    with client_type(fake.address, timeout=ENDLESS * 2) as client:
        with open_stream(client) as stream:
            for i, _ in enumerate(stream):
                if i == 1:
                    break
        assert one_call(fake).ended.wait(WAIT), f"{method}: the call ran on after its with block ended"


@pytest.mark.parametrize("method", sorted(STREAMS))
def test_close_and_the_last_reference_cancel_a_held_stream(fake, method):
    client_type, open_stream = STREAMS[method]
    with client_type(fake.address, timeout=ENDLESS * 2) as client:
        stream = open_stream(client)
        next(stream)
        stream.close()
        assert fake.calls[0].ended.wait(WAIT), f"{method}: close() did not cancel the call"
        stream = open_stream(client)
        next(stream)
        del stream
        gc.collect()
        assert fake.calls[1].ended.wait(WAIT), f"{method}: dropping the stream did not cancel the call"
        for _ in open_stream(client):  # used directly in the for statement: the loop's reference is the last one
            break
        assert fake.calls[2].ended.wait(WAIT), f"{method}: breaking out of the for statement did not cancel the call"


def test_calls_on_a_closed_client_are_cancelled_errors(fake):
    with maas_client.GenerativeClient(fake.address) as gen:
        streams = {"sample": gen.sample("m", 3), "stream_estimate": gen.stream_estimate("m", X, "prior", 10)}
    with maas_client.DiscriminativeClient(fake.address) as disc:
        streams["classify_stream"] = disc.classify_stream("m", ["a text"])
    models = maas_client.Models(fake.address)
    models.close()
    channel = grpc.insecure_channel(fake.address)  # a channel made elsewhere and closed there
    given = maas_client.GenerativeClient(maas_client.Connection(channel=channel))
    channel.close()
    calls = {
        **{f"{method} made in the with block": (lambda s=stream: list(s)) for method, stream in streams.items()},
        "sample": lambda: list(gen.sample("m", 3)),
        "get": lambda: gen.get("m"),
        "list": lambda: gen.list(),
        "fit": lambda: gen.fit(X, "uniform", name="m"),
        "train": lambda: disc.train(["a text"], ["a"], name="m"),
        "classify": lambda: disc.classify("m", ["a text"]),
        "Models.list": lambda: models.list(),
        "Models.get": lambda: models.get("m", kind="generative"),
        "get on a channel closed elsewhere": lambda: given.get("m"),
        "sample on a channel closed elsewhere": lambda: list(given.sample("m", 3)),
        "fit on a channel closed elsewhere": lambda: given.fit(X, "uniform", name="m"),
    }
    for what, call in calls.items():
        with pytest.raises(maas_client.CancelledError, match="CANCELLED.*the client is closed") as e:
            call()
        assert e.value.code == grpc.StatusCode.CANCELLED, what
    assert not fake.calls  # nothing reached the server


def test_streams_the_caller_sizes_have_no_default_deadline(fake):
    with maas_client.GenerativeClient(fake.address, timeout=5) as gen, \
            maas_client.DiscriminativeClient(fake.address, timeout=5) as disc:
        list(disc.classify_stream("m", ["a text"] * 3, batch_size=1))
        list(gen.sample("m", 2))
        list(gen.sample_batches("m", 2))
        assert [c.remaining for c in fake.calls] == [None] * 3
        list(disc.classify_stream("m", ["a text"], timeout=7))
        list(gen.sample("m", 2, timeout=7))
        list(gen.sample_batches("m", 2, timeout=7))
        assert all(0 < c.remaining <= 8 for c in fake.calls[3:]), [c.remaining for c in fake.calls[3:]]
        # stream_estimate keeps the connection's default: the deadline is one of the rules that end it.
        with gen.stream_estimate("m", X, "prior", 10) as estimates:
            next(estimates)
        assert 0 < fake.calls[6].remaining <= 6


def test_the_cli_gives_its_streams_its_timeout_as_maas_does(fake, tmp_path):
    """`python -m maas_client --timeout S` is the deadline of each call, streams included (default 600 s)."""
    def pycli(*argv):
        return main(["--target", fake.address, "--progress", "never", *argv], out=io.StringIO())

    assert pycli("--timeout", "9", "classify", "m", "a text") == 0
    assert pycli("--timeout", "9", "sample", "m", "2", "--out", str(tmp_path / "x.csv")) == 0
    assert pycli("classify", "m", "a text") == 0
    assert pycli("--timeout", "0", "classify", "m", "a text") == 0
    remaining = [c.remaining for c in fake.calls]
    assert 0 < remaining[0] <= 10 and 0 < remaining[1] <= 10 and 590 < remaining[2] <= 601, remaining
    assert remaining[3] is None


def test_classify_stream_pins_the_version_that_answered_its_first_batch(fake, tmp_path):
    # The fake's latest version grows with every request that asks for the latest: a model retrained meanwhile.
    with maas_client.DiscriminativeClient(fake.address) as disc:
        assert [p.model_version for p in disc.classify_stream("m", ["a text"] * 5, batch_size=1)] == [1] * 5
        assert [r.model.version for r in fake.calls[0].requests] == [0, 1, 1, 1, 1]
        # A version given is asked for throughout.
        assert [p.model_version for p in disc.classify_stream("m", ["a text"] * 3, batch_size=1, version=4)] == [4] * 3
        assert [r.model.version for r in fake.calls[1].requests] == [4, 4, 4]
        # An endless stream ends with its with block.
        with disc.classify_stream("m", iter(lambda: "a text", None), batch_size=1) as endless:
            next(endless)
    texts = tmp_path / "texts.txt"
    texts.write_text("a text\n" * 4)
    out = io.StringIO()
    first = fake.latest + 1  # the version that answers the CLI's first batch
    assert main(["--target", fake.address, "--progress", "never", "classify", "m", "--file", str(texts),
                 "--batch-size", "1"], out=out) == 0
    assert out.getvalue() == "a\t1.000000\n" * 4
    assert [r.model.version for r in fake.calls[3].requests] == [0, first, first, first]
