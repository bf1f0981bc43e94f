"""A stalled reader of a service's stderr (a log agent that stopped, a pipe nobody drains) must not stall its calls.

The per-call JSON log lines go to stderr by default. When the threads that end the calls wrote them (what the services
did before --log_flush_ms, and still do with --log_flush_ms 0), a pipe nobody reads filled after a few hundred lines
(64 KiB) and every later call hung in write(). Now a thread of the log's own writes them: the calls go on, the lines
wait in the server's buffer (beyond 8 MiB they are dropped and counted), and they all come out once the reader drains
the pipe again. And a service whose stderr is still undrained when it is told to stop (SIGTERM) exits: its log writer
gives up on the lines the pipe does not take within 2 s, where it used to wait for the reader forever. And a server
whose log reader went away (a log shipper that restarted) keeps serving: the first line written to the closed pipe
used to kill it with SIGPIPE.
"""

import json
import re
import subprocess

import grpc
import pytest

from maas.common.v1 import common_pb2
from maas.discriminative.v1 import discriminative_pb2_grpc
from maas.generative.v1 import generative_pb2_grpc
from maas_testing import TIMEOUT, binary, start_discriminative, start_generative

CALLS = 1500  # ~250 bytes of log line each: about six times a 64 KiB pipe
STUBS = {"maas-discriminative": discriminative_pb2_grpc.DiscriminativeServiceStub,
         "maas-generative": generative_pb2_grpc.GenerativeServiceStub}


def start_undrained(name, tmp_path, args=None):
    """The server with its stderr a pipe read up to the ready line, then left alone: (process, port, head)."""
    args = args if args is not None else ["--model_dir", str(tmp_path / "models")]
    proc = subprocess.Popen([str(binary(name)), "--host", "127.0.0.1", "--port", "0", *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    head = b""
    while True:
        line = proc.stderr.readline()
        if not line:
            proc.kill()
            proc.wait()
            raise AssertionError(f"{name} exited before serving: {head.decode(errors='replace')}")
        head += line
        match = re.search(rb"on port (\d+)", line)
        if match:
            return proc, int(match.group(1)), head


@pytest.mark.parametrize("name", sorted(STUBS))
def test_calls_go_on_while_nobody_reads_the_log(name, tmp_path):
    proc, port, head = start_undrained(name, tmp_path)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = STUBS[name](channel)
            for i in range(CALLS):
                # Before the fix, call ~260 never returned: this deadline turned it into DEADLINE_EXCEEDED.
                stub.ListModels(common_pb2.ListModelsRequest(), timeout=TIMEOUT,
                                metadata=[("x-request-id", f"stalled-{i}")])
        # Drained now, the pipe gets every line (nothing dropped: far below the buffer).
        proc.terminate()
        rest = proc.stderr.read().decode(errors="replace")
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    ids = [json.loads(line)["request_id"] for line in (head.decode(errors="replace") + rest).splitlines()
           if line.startswith("{")]
    # Each line is logged when its call's resources are released, which can come after the client already has the
    # answer and sent the next call: neighbours may swap, but every call has its one line.
    stalled = [i for i in ids if i.startswith("stalled-")]
    assert sorted(stalled) == sorted(f"stalled-{i}" for i in range(CALLS))
    assert "dropped" not in rest


@pytest.mark.parametrize("name", sorted(STUBS))
def test_a_service_with_a_stalled_log_still_exits_on_sigterm(name, tmp_path):
    proc, port, _ = start_undrained(name, tmp_path)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = STUBS[name](channel)
            for i in range(CALLS):  # far more lines than the pipe takes: the log's writer is stuck in write()
                stub.ListModels(common_pb2.ListModelsRequest(), timeout=TIMEOUT)
        proc.terminate()
        # Before the fix this waited for a reader that never came: TimeoutExpired.
        assert proc.wait(timeout=TIMEOUT) == 0
        rest = proc.stderr.read().decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # What did go out is whole lines (the writer writes whole lines while it can).
    assert all(line.startswith("{") and line.endswith("}") for line in rest.splitlines() if line.startswith("{"))


@pytest.mark.parametrize("name", sorted(STUBS) + ["maas-gateway"])
def test_a_server_whose_log_reader_went_away_keeps_serving(name, tmp_path):
    backends = []
    try:
        args = None
        if name == "maas-gateway":
            backends = [start_generative(tmp_path / "g"), start_discriminative(tmp_path / "d")]
            args = ["--generative_target", f"ipv4:127.0.0.1:{backends[0].port}",
                    "--discriminative_target", f"ipv4:127.0.0.1:{backends[1].port}"]
        proc, port, _ = start_undrained(name, tmp_path, args)
        try:
            proc.stderr.close()  # the reader goes away: the next log line meets a closed pipe
            stub = STUBS.get(name, discriminative_pb2_grpc.DiscriminativeServiceStub)
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                for _ in range(50):
                    # Before the fix the second call already failed: UNAVAILABLE, the process killed by SIGPIPE.
                    stub(channel).ListModels(common_pb2.ListModelsRequest(), timeout=TIMEOUT)
            assert proc.poll() is None
            proc.terminate()
            assert proc.wait(timeout=TIMEOUT) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        for backend in backends:
            backend.stop()
            backend.release()
