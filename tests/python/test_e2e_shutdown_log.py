"""Calls cut by a server's shutdown grace are logged as the server's doing, not the client's: a Sample stream whose
client is still reading (slowly) when the grace ends used to be logged CANCELLED "the client stopped reading the
stream" by the backend and CANCELLED "the client cancelled the call" by the gateway's HTTP/2 front, while the
client itself got UNAVAILABLE from the shutdown. During rollouts that blamed clients for the servers' errors."""

import json

import grpc

from maas.common.v1 import common_pb2
from maas.generative.v1 import generative_pb2 as gen
from maas.generative.v1 import generative_pb2_grpc

from maas_testing import TIMEOUT, channel_to, poll_until, start_gateway, start_generative


def log_lines(process, method_suffix):
    lines = []
    for line in process.stderr_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("method", "").endswith(method_suffix):
                lines.append(entry)
    return lines


def start_stalled_sample(channel):
    """A Sample stream far larger than the flow-control windows whose client reads one batch, then stops reading."""
    stub = generative_pb2_grpc.GenerativeServiceStub(channel)
    call = stub.Sample(gen.SampleRequest(model=common_pb2.ModelRef(name="wide"), num_samples=5_000_000, seed=1),
                       timeout=120)
    next(call)
    return call


def test_calls_cut_by_the_shutdown_grace_are_logged_as_the_servers_doing(tmp_path):
    generative = start_generative(tmp_path / "g", extra=["--shutdown_grace_seconds", "0.5"])
    gateway = start_gateway(generative.port, 1, extra=["--shutdown_grace_ms", "500", "--h2_front=true"])
    try:
        direct = channel_to(generative)
        generative_pb2_grpc.GenerativeServiceStub(direct).CreateModel(gen.CreateModelRequest(
            name="wide", spec=gen.GenerativeModelSpec(uniform=gen.UniformSpec(low=[0.0] * 64, high=[1.0] * 64))),
            timeout=TIMEOUT)

        # Through the gateway: the gateway's grace ends the stream.
        through = channel_to(gateway)
        call = start_stalled_sample(through)
        assert gateway.stop() == 0
        call.cancel()
        through.close()
        entries = log_lines(gateway, "/Sample")
        assert len(entries) == 1, entries
        assert entries[0]["code"] == "UNAVAILABLE", entries
        assert "gateway shut down" in entries[0]["message"], entries
        assert "client cancelled" not in entries[0]["message"], entries

        # Directly: the backend's grace ends the stream.
        call = start_stalled_sample(direct)
        assert generative.stop() == 0
        call.cancel()
        direct.close()

        def backend_logged():
            cut = [e for e in log_lines(generative, "/Sample") if e["code"] != "OK"]
            assert cut, log_lines(generative, "/Sample")
            return cut
        cut = poll_until(backend_logged, 10.0, "the backend's log line of the cut stream")
        assert all("server shut down" in e["message"] for e in cut), cut
    finally:
        for process in (gateway, generative):
            process.stop()
            process.release()
