"""A call whose deadline passed is logged DEADLINE_EXCEEDED, a call the client cancelled CANCELLED: by the service
and by the gateway's HTTP/2 front. Both used to log every call cut short CANCELLED ("the client cancelled the call",
"the call ended while its stream was being written ..."), so the call log and the per-code metrics could not tell
clients' deadlines, the usual sign of an overloaded or slow server, from clients that gave up."""

import json
import threading
import time

import grpc
import pytest

from maas.common.v1 import common_pb2
from maas.generative.v1 import generative_pb2 as gen
from maas.generative.v1 import generative_pb2_grpc

from maas_testing import TIMEOUT, channel_to, poll_until, start_gateway, start_generative


def logged(process, request_id):
    entries = []
    for line in process.stderr_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("request_id") == request_id:
                entries.append(entry)
    return entries


def wait_logged(process, request_id):
    def one():
        entries = logged(process, request_id)
        assert len(entries) == 1, entries
        return entries[0]
    return poll_until(one, 10.0, f"the log line of {request_id}")


def sample(stub, request_id, timeout):
    """A Sample stream far larger than the flow-control windows; one batch read."""
    call = stub.Sample(gen.SampleRequest(model=common_pb2.ModelRef(name="wide"), num_samples=5_000_000, seed=1),
                       timeout=timeout, metadata=[("x-request-id", request_id)])
    next(call)
    return call


def test_deadlines_and_cancellations_are_logged_apart(tmp_path):
    generative = start_generative(tmp_path / "g")
    gateway = start_gateway(generative.port, 1, extra=["--h2_front=true"])
    try:
        direct = channel_to(generative)
        generative_pb2_grpc.GenerativeServiceStub(direct).CreateModel(gen.CreateModelRequest(
            name="wide", spec=gen.GenerativeModelSpec(uniform=gen.UniformSpec(low=[0.0] * 64, high=[1.0] * 64))),
            timeout=TIMEOUT)
        through = channel_to(gateway)
        for channel, where in ((direct, "direct"), (through, "gateway")):
            stub = generative_pb2_grpc.GenerativeServiceStub(channel)
            # The client stops reading until its deadline passes.
            call = sample(stub, f"deadline-{where}", timeout=1.0)
            with pytest.raises(grpc.RpcError) as error:
                for _ in call:
                    time.sleep(0.5)
            assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            # The client cancels long before its deadline.
            call = sample(stub, f"cancel-{where}", timeout=60.0)
            call.cancel()

        for where in ("direct", "gateway"):
            entry = wait_logged(generative, f"deadline-{where}")
            assert entry["code"] == "DEADLINE_EXCEEDED", entry
            assert "deadline passed" in entry["message"], entry
            entry = wait_logged(generative, f"cancel-{where}")
            assert entry["code"] == "CANCELLED", entry
        # The gateway logs the client's reset ("the client's deadline passed") or the backend's own
        # DEADLINE_EXCEEDED answer, whichever comes first.
        entry = wait_logged(gateway, "deadline-gateway")
        assert entry["code"] == "DEADLINE_EXCEEDED", entry
        entry = wait_logged(gateway, "cancel-gateway")
        assert (entry["code"], entry["message"]) == ("CANCELLED", "the client cancelled the call"), entry

        # A client stream whose client stops sending until its deadline passes: nothing stored, and logged so.
        stop = threading.Event()

        def stalled():
            yield gen.FitModelRequest(config=gen.FitConfig(name="stalled", uniform=gen.UniformFit()))
            stop.wait(30.0)

        stub = generative_pb2_grpc.GenerativeServiceStub(direct)
        with pytest.raises(grpc.RpcError) as error:
            stub.FitModel(stalled(), timeout=1.0, metadata=[("x-request-id", "deadline-fit")])
        stop.set()
        assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        entry = wait_logged(generative, "deadline-fit")
        assert entry["code"] == "DEADLINE_EXCEEDED", entry
        assert "nothing was stored" in entry["message"], entry
    finally:
        for process in (gateway, generative):
            process.stop()
            process.release()
