"""End-to-end tests of maas-h2front, the experimental HTTP/2 frame-forwarding data plane (services/gateway/h2), on
the real binaries: all four call kinds forwarded byte for byte, large messages under flow control, deadlines and
cancellation crossing it, unknown services, a backend going away."""

import threading
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2

from maas.discriminative.v1 import discriminative_pb2 as disc
from maas.discriminative.v1 import discriminative_pb2_grpc
from maas.generative.v1 import generative_pb2 as gen
from maas.generative.v1 import generative_pb2_grpc

from maas_testing import (TIMEOUT, ServerProcess, channel_to, expect_rpc_error, from_matrix, health_status, ref,
                          rpc_error, start_discriminative, start_generative)

GENERATIVE_SERVICE = "maas.generative.v1.GenerativeService"
DISCRIMINATIVE_SERVICE = "maas.discriminative.v1.DiscriminativeService"


class Front:
    def __init__(self, root):
        self.gen_backend = start_generative(root / "generative")
        self.disc_backend = start_discriminative(root / "discriminative")
        self.front = ServerProcess("maas-h2front", [
            "--port", 0, "--route",
            f"{GENERATIVE_SERVICE}=ipv4:127.0.0.1:{self.gen_backend.port};"
            f"{DISCRIMINATIVE_SERVICE}=ipv4:127.0.0.1:{self.disc_backend.port};"
            f"grpc.health.v1.Health=127.0.0.1:{self.disc_backend.port}"])
        self.channel = channel_to(self.front)
        self.gen = generative_pb2_grpc.GenerativeServiceStub(self.channel)
        self.disc = discriminative_pb2_grpc.DiscriminativeServiceStub(self.channel)
        self.gen_direct = generative_pb2_grpc.GenerativeServiceStub(channel_to(self.gen_backend))

    def close(self):
        self.channel.close()
        for p in (self.front, self.gen_backend, self.disc_backend):
            if p.returncode is None:
                assert p.stop() == 0, f"{p.name} did not exit with code 0 on SIGTERM"
            p.release()


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    f = Front(tmp_path_factory.mktemp("e2e-h2front"))
    try:
        f.gen.CreateModel(gen.CreateModelRequest(name="cube", spec=gen.GenerativeModelSpec(
            uniform=gen.UniformSpec(low=[0.0] * 8, high=[1.0] * 8))), timeout=TIMEOUT)
        f.gen.CreateModel(gen.CreateModelRequest(name="line", spec=gen.GenerativeModelSpec(
            uniform=gen.UniformSpec(low=[-2.0], high=[2.0]))), timeout=TIMEOUT)
        # Client streaming through the front: Train.
        f.disc.Train(iter([
            disc.TrainRequest(config=disc.TrainConfig(name="words")),
            disc.TrainRequest(batch=disc.TextBatch(examples=[
                disc.LabeledText(text="the striker scored a goal", label="sports"),
                disc.LabeledText(text="bake the bread dough", label="cooking")]))]), timeout=TIMEOUT)
        yield f
    finally:
        f.close()


def test_unary_and_health(front):
    assert health_status(front.channel) == health_pb2.HealthCheckResponse.SERVING
    response = front.disc.Classify(disc.ClassifyRequest(model=ref("words"), texts=["bread", "goal"]),
                                   timeout=TIMEOUT)
    assert [r.label for r in response.results] == ["cooking", "sports"]
    assert front.gen.GetModel(gen.GetModelRequest(model=ref("cube")), timeout=TIMEOUT).info.name == "cube"


def test_bidi_stream(front):
    requests = [disc.ClassifyRequest(model=ref("words"), texts=[t]) for t in ["bread", "goal", "dough"] * 20]
    labels = [r.results[0].label for r in front.disc.ClassifyStream(iter(requests), timeout=TIMEOUT)]
    assert labels == ["cooking", "sports", "cooking"] * 20


def test_large_server_stream_equals_direct(front):
    """A 4.8 MB message and many windows of data: flow control must pass it whole and in order."""
    request = gen.SampleRequest(model=ref("line"), num_samples=600_000, seed=3, batch_size=600_000)
    via_front = list(front.gen.Sample(request, timeout=30))
    direct = list(front.gen_direct.Sample(request, timeout=30))
    assert sum(b.x.rows for b in via_front) == 600_000
    assert len(via_front) == len(direct) and all(a == b for a, b in zip(via_front, direct))


def test_large_request(front):
    texts = ["bread dough " * 50] * 3000  # ~1.8 MB request, several stream windows
    response = front.disc.Classify(disc.ClassifyRequest(model=ref("words"), texts=texts), timeout=30)
    assert len(response.results) == 3000 and all(r.label == "cooking" for r in response.results)


def test_unknown_service_is_unimplemented(front):
    with expect_rpc_error(grpc.StatusCode.UNIMPLEMENTED, "no route"):
        front.channel.unary_unary("/foo.v1.Bar/Baz")(b"", timeout=TIMEOUT)
    error = rpc_error(lambda: front.channel.unary_unary(f"/{GENERATIVE_SERVICE}/NoSuchMethod")(b"", timeout=TIMEOUT))
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED, error
    error = rpc_error(lambda: list(front.channel.unary_stream("/foo.v1.Bar/Stream")(b"", timeout=TIMEOUT)))
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED, error


def test_deadline_mid_stream(front):
    request = gen.SampleRequest(model=ref("cube"), num_samples=5_000_000, seed=1)
    received = 0
    with expect_rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED):
        for batch in front.gen.Sample(request, timeout=0.3):
            received += batch.x.rows
    assert received < 5_000_000
    assert health_status(front.channel) == health_pb2.HealthCheckResponse.SERVING


def test_cancel_a_big_stream_then_again(front):
    request = gen.SampleRequest(model=ref("cube"), num_samples=5_000_000, seed=2, batch_size=1000)
    call = front.gen.Sample(request, timeout=60.0)
    first = [next(call) for _ in range(3)]
    call.cancel()
    assert rpc_error(lambda: [None for _ in call]).code() == grpc.StatusCode.CANCELLED
    again = list(front.gen.Sample(gen.SampleRequest(model=ref("cube"), num_samples=3000, seed=2, batch_size=1000),
                                  timeout=TIMEOUT))
    assert all(a == b for a, b in zip(again, first))


def test_many_concurrent_calls(front):
    futures = [front.disc.Classify.future(disc.ClassifyRequest(model=ref("words"), texts=["bread"]),
                                          timeout=TIMEOUT) for _ in range(100)]
    streams = [front.gen.Sample(gen.SampleRequest(model=ref("line"), num_samples=2000, seed=s, batch_size=100),
                                timeout=TIMEOUT) for s in range(5)]
    results = []
    threads = [threading.Thread(target=lambda s=s: results.append(
        (s, np.concatenate([from_matrix(b.x) for b in s])))) for s in streams]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(f.result().results[0].label == "cooking" for f in futures)
    assert len(results) == 5 and all(x.shape == (2000, 1) for _, x in results)


def test_dns_target(front):
    """A dns:/// target (localhost, resolved by the front's resolver thread) routes like an ipv4: one."""
    other = ServerProcess("maas-h2front", ["--port", 0, "--route",
                                           f"{GENERATIVE_SERVICE}=dns:///localhost:{front.gen_backend.port}"])
    try:
        stub = generative_pb2_grpc.GenerativeServiceStub(channel_to(other))
        assert stub.GetModel(gen.GetModelRequest(model=ref("cube")), timeout=TIMEOUT).info.name == "cube"
    finally:
        assert other.stop() == 0
        other.release()


def test_max_message_bytes_both_ways(front):
    """--max_message_bytes, read from the gRPC message prefixes: a larger request never reaches the backend, a larger
    response ends the call; both RESOURCE_EXHAUSTED naming the flag. Smaller calls pass on the same connection."""
    small = ServerProcess("maas-h2front", ["--port", 0, "--max_message_bytes", 2000, "--route",
                                           f"{GENERATIVE_SERVICE}=ipv4:127.0.0.1:{front.gen_backend.port};"
                                           f"{DISCRIMINATIVE_SERVICE}=ipv4:127.0.0.1:{front.disc_backend.port}"])
    try:
        channel = channel_to(small)
        disc_stub = discriminative_pb2_grpc.DiscriminativeServiceStub(channel)
        gen_stub = generative_pb2_grpc.GenerativeServiceStub(channel)
        with expect_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "max_message_bytes"):
            disc_stub.Classify(disc.ClassifyRequest(model=ref("words"), texts=["bread " * 500]), timeout=TIMEOUT)
        with expect_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "max_message_bytes"):
            list(gen_stub.Sample(gen.SampleRequest(model=ref("line"), num_samples=1000, seed=1, batch_size=1000),
                                 timeout=TIMEOUT))
        assert disc_stub.Classify(disc.ClassifyRequest(model=ref("words"), texts=["bread"]),
                                  timeout=TIMEOUT).results[0].label == "cooking"
        batches = list(gen_stub.Sample(gen.SampleRequest(model=ref("line"), num_samples=100, seed=1, batch_size=10),
                                       timeout=TIMEOUT))
        assert sum(b.x.rows for b in batches) == 100
    finally:
        assert small.stop() == 0
        small.release()


def test_backend_gone_is_unavailable(front):
    """Last in the module: the discriminative backend stops; its calls fail UNAVAILABLE, the other route works."""
    assert front.disc_backend.stop() == 0
    with expect_rpc_error(grpc.StatusCode.UNAVAILABLE):
        front.disc.Classify(disc.ClassifyRequest(model=ref("words"), texts=["bread"]), timeout=TIMEOUT)
    assert front.gen.GetModel(gen.GetModelRequest(model=ref("cube")), timeout=TIMEOUT).info.name == "cube"


def test_gateway_h2_front_retries_past_a_dead_replica(tmp_path):
    """maas-gateway --h2_front: its ready line names the front; a replica that refuses connections is skipped by
    retrying idempotent calls on the live one, and non-idempotent ones too (transparently: no byte of the call
    left the gateway); the call log has one line per proxied call with the request id the client sees in the
    response headers; the gateway's own services answer through the front."""
    import json
    import socket

    from maas.gateway.v1 import gateway_pb2 as gw
    from maas.gateway.v1 import gateway_pb2_grpc
    from maas_testing import wait_serving
    with socket.socket() as s:  # a port nobody listens on (bound, then closed)
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    gen_backend = start_generative(tmp_path / "generative")
    disc_backend = start_discriminative(tmp_path / "discriminative")
    log = tmp_path / "gateway.log"
    gateway = ServerProcess("maas-gateway", [
        "--port", 0, "--h2_front", "--log_file", log, "--reconnect_backoff_max_ms", "1", "--metrics_port", 0,
        "--generative_target", f"ipv4:127.0.0.1:{gen_backend.port}",
        "--discriminative_target", f"ipv4:127.0.0.1:{dead},127.0.0.1:{disc_backend.port}"])
    try:
        assert "(h2 front)" in gateway.stderr_text()
        channel = channel_to(gateway)
        disc_stub = discriminative_pb2_grpc.DiscriminativeServiceStub(channel)
        direct = discriminative_pb2_grpc.DiscriminativeServiceStub(channel_to(disc_backend))
        direct.Train(iter([
            disc.TrainRequest(config=disc.TrainConfig(name="words")),
            disc.TrainRequest(batch=disc.TextBatch(examples=[
                disc.LabeledText(text="the striker scored a goal", label="sports"),
                disc.LabeledText(text="bake the bread dough", label="cooking")]))]), timeout=TIMEOUT)
        ids = []
        for _ in range(20):
            response, call = disc_stub.Classify.with_call(
                disc.ClassifyRequest(model=ref("words"), texts=["bread"]), timeout=TIMEOUT)
            assert response.results[0].label == "cooking"
            ids.append(dict(call.initial_metadata())["x-request-id"])
        # Non-idempotent calls (Train, a client stream) are never retried by policy, but the dead replica refuses
        # the connection before any frame of the call left the gateway: retried transparently, as gRPC does. With
        # the 1 ms backoff the round robin sends about every other call to the dead replica first.
        for i in range(8):
            disc_stub.Train(iter([
                disc.TrainRequest(config=disc.TrainConfig(name=f"once{i}")),
                disc.TrainRequest(batch=disc.TextBatch(examples=[
                    disc.LabeledText(text="goal", label="sports"),
                    disc.LabeledText(text="dough", label="cooking")]))]), timeout=TIMEOUT)
            time.sleep(0.01)
            assert direct.Classify(disc.ClassifyRequest(model=ref(f"once{i}"), texts=["dough"]),
                                   timeout=TIMEOUT).results[0].label == "cooking"
        labels = [r.results[0].label for r in disc_stub.ClassifyStream(
            iter([disc.ClassifyRequest(model=ref("words"), texts=["goal"])] * 5), timeout=TIMEOUT)]
        assert labels == ["sports"] * 5
        # The gateway's own services, behind the front on its internal port.
        wait_serving(channel)
        backends = gateway_pb2_grpc.GatewayStub(channel).GetBackends(
            gw.GetBackendsRequest(), timeout=TIMEOUT, metadata=[("maas-client-peer", "ipv4:6.6.6.6:1")])
        assert len(backends.backends) == 2
        # Proxied calls count in the gateway's Prometheus metrics (served on --host, not the internal port).
        import re
        import urllib.request
        port = int(re.search(r"metrics: http://[^:]+:(\d+)/metrics", gateway.stderr_text()).group(1))
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=TIMEOUT).read().decode()
        counted = re.search(r'maas_rpc_requests_total\{[^}]*method="/maas.discriminative.v1.DiscriminativeService/'
                            r'Classify"[^}]*\} (\d+)', text)
        assert counted is not None and int(counted.group(1)) == 20, text[:2000]
    finally:
        assert gateway.stop() == 0
        gateway.release()
        for p in (gen_backend, disc_backend):
            p.stop()
            p.release()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    classify = [x for x in lines if x["method"].endswith("/Classify")]
    assert [x["request_id"] for x in classify] == ids and all(x["code"] == "OK" for x in classify)
    assert len(set(ids)) == 20
    assert all(x["model"] == "words" for x in classify), classify[:2]
    # The gateway's own services, behind the front, log the client (the same connection as the proxied calls),
    # not the front's loopback connection, and not what a client claims in the front's peer header.
    get_backends = [x for x in lines if x["method"].endswith("/GetBackends")]
    assert len(get_backends) == 1 and get_backends[0]["peer"] == classify[0]["peer"], (get_backends, classify[0])


def test_gateway_h2_front_one_response_for_a_unary_method(tmp_path):
    """maas-gateway --h2_front knows from the compiled descriptors which methods answer one message: a backend
    that sends two to the unary Classify gets the call ended INTERNAL (as the gRPC proxy does), while one message
    (GetModel) and a server stream of several (ClassifyStream) pass."""
    from concurrent import futures

    one = disc.GetModelResponse().SerializeToString()
    answer = disc.ClassifyResponse(results=[disc.Classification(label="a")]).SerializeToString()
    handlers = {
        "Classify": grpc.unary_stream_rpc_method_handler(lambda request, context: iter([answer, answer])),
        "GetModel": grpc.unary_stream_rpc_method_handler(lambda request, context: iter([one])),
        "ClassifyStream": grpc.stream_stream_rpc_method_handler(
            lambda requests, context: iter([answer for _ in requests])),
    }
    fake = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    fake.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(DISCRIMINATIVE_SERVICE, handlers)])
    port = fake.add_insecure_port("127.0.0.1:0")
    fake.start()
    gen_backend = start_generative(tmp_path / "generative")
    gateway = ServerProcess("maas-gateway", [
        "--port", 0, "--h2_front", "--generative_target", f"ipv4:127.0.0.1:{gen_backend.port}",
        "--discriminative_target", f"ipv4:127.0.0.1:{port}"])
    try:
        stub = discriminative_pb2_grpc.DiscriminativeServiceStub(channel_to(gateway))
        with expect_rpc_error(grpc.StatusCode.INTERNAL, "more than one response message"):
            stub.Classify(disc.ClassifyRequest(model=ref("words"), texts=["bread"]), timeout=TIMEOUT)
        stub.GetModel(disc.GetModelRequest(model=ref("words")), timeout=TIMEOUT)
        replies = list(stub.ClassifyStream(iter([disc.ClassifyRequest(texts=["x"])] * 3), timeout=TIMEOUT))
        assert [r.results[0].label for r in replies] == ["a"] * 3
    finally:
        assert gateway.stop() == 0
        gateway.release()
        gen_backend.stop()
        gen_backend.release()
        fake.stop(None)
