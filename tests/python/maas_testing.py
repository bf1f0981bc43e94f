"""Shared helpers of the end-to-end tests: run the real maas binaries and talk to them over gRPC.

The binaries are found through MAAS_BUILD_DIR ($MAAS_BUILD_DIR/bin/<name>); a missing binary is a test failure,
never a skip. Every server is started with --port 0; the port is parsed from the one line each binary prints to
stderr when it is ready ("<binary>: serving ... on port <N>"). stderr is drained by a thread into a bounded buffer
for the whole life of the process (so the pipe never fills) and is attached to the report of a failing test by
conftest.py.

Typical use (one stack per test module):

    @pytest.fixture(scope="module")
    def stack(tmp_path_factory):
        with Stack(tmp_path_factory.mktemp("models")) as s:
            yield s

    def test_something(stack):
        stack.gen_gw.CreateModel(..., timeout=TIMEOUT)
"""

from __future__ import annotations

import collections
import contextlib
import os
import pathlib
import re
import signal
import subprocess
import threading
import time
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from maas.common.v1 import common_pb2
from maas.discriminative.v1 import discriminative_pb2_grpc
from maas.gateway.v1 import gateway_pb2_grpc
from maas.generative.v1 import generative_pb2_grpc

# Deadline of every ordinary gRPC call in the e2e tests, seconds.
TIMEOUT = 10.0
# How long a binary may take to print its ready line, seconds.
READY_TIMEOUT = 20.0
# How long a binary may take to exit after SIGTERM, seconds.
STOP_TIMEOUT = 15.0

_PORT_RE = re.compile(r"on port (\d+)")

# Every process started in this interpreter that has not been released by its Stack (for failure reports).
_PROCESSES: List["ServerProcess"] = []
_PROCESSES_LOCK = threading.Lock()


def build_dir() -> pathlib.Path:
    """$MAAS_BUILD_DIR; fails the test when it is not set (CTest sets it)."""
    value = os.environ.get("MAAS_BUILD_DIR")
    if not value:
        pytest.fail("MAAS_BUILD_DIR is not set; run the e2e tests through ctest (ctest -R pytest:test_e2e)")
    return pathlib.Path(value)


def build_file(relative: str) -> pathlib.Path:
    """A file the build produced, $MAAS_BUILD_DIR/relative; fails (never skips) when it is missing."""
    path = build_dir() / relative
    if not path.is_file():
        pytest.fail(f"{path} is missing; build it first (cmake --build {build_dir()} --target {path.name})")
    return path


def wire_varint(n: int) -> bytes:
    """A protobuf base-128 varint, for messages written byte by byte (e.g. invalid UTF-8 in a string field)."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def wire_field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (a string, bytes or sub-message) holding `payload`."""
    return wire_varint(number << 3 | 2) + wire_varint(len(payload)) + payload


def binary(name: str) -> pathlib.Path:
    """Path of a built binary; fails (never skips) when it is missing."""
    path = build_dir() / "bin" / name
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"binary {path} is missing or not executable; build it first "
                    f"(cmake --build {build_dir()} --target {name})")
    return path


def run_maas_cli(port: int, *args: object, check: bool = True) -> subprocess.CompletedProcess:
    """Runs the `maas` CLI against 127.0.0.1:port; with check, asserts it exited 0 (showing its stderr)."""
    result = subprocess.run([str(binary("maas")), f"--target=127.0.0.1:{port}", *map(str, args)],
                            capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, f"maas {' '.join(map(str, args))} failed: {result.stderr}"
    return result


def live_processes() -> List["ServerProcess"]:
    with _PROCESSES_LOCK:
        return list(_PROCESSES)


class ServerProcess:
    """One running maas binary: started with the given arguments, its port parsed from stderr."""

    def __init__(self, name: str, args: Sequence[str], ready_timeout: float = READY_TIMEOUT):
        self.name = name
        self.args = [str(a) for a in args]
        if name == "maas-gateway":
            # Lets CTest run the gateway suites again with extra flags (e.g. --h2_front=false, see tests/python/CMakeLists.txt).
            self.args += os.environ.get("MAAS_GATEWAY_EXTRA_ARGS", "").split()
        self._head: List[str] = []  # first lines, always kept
        self._tail: collections.deque = collections.deque(maxlen=400)  # most recent lines
        self._num_lines = 0
        self._cond = threading.Condition()
        self._eof = False
        self.port: Optional[int] = None
        self.returncode: Optional[int] = None
        self.killed = False
        path = binary(name)
        self.proc = subprocess.Popen([str(path), *self.args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        with _PROCESSES_LOCK:
            _PROCESSES.append(self)
        self._reader = threading.Thread(target=self._drain, name=f"stderr-{name}", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + ready_timeout
        with self._cond:
            while self.port is None and not self._eof and time.monotonic() < deadline:
                self._cond.wait(timeout=max(0.0, deadline - time.monotonic()))
        if self.port is None:
            self.stop(timeout=2.0)
            self.release()
            pytest.fail(f"{name} {' '.join(self.args)} did not print its ready line "
                        f"('... on port <N>') within {ready_timeout}s (exit code {self.returncode}); stderr:\n"
                        f"{self.stderr_text()}")

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            with self._cond:
                self._num_lines += 1
                if len(self._head) < 50:
                    self._head.append(line)
                else:
                    self._tail.append(line)
                if self.port is None and line.startswith(self.name) and "serving" in line:
                    match = _PORT_RE.search(line)
                    if match:
                        self.port = int(match.group(1))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self.proc.poll() is None

    def stderr_text(self) -> str:
        """The captured stderr: the first 50 lines and the most recent 400."""
        with self._cond:
            skipped = self._num_lines - len(self._head) - len(self._tail)
            parts = list(self._head)
            if skipped > 0:
                parts.append(f"... ({skipped} lines skipped) ...")
            parts.extend(self._tail)
        return "\n".join(parts)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, wait up to `timeout`, SIGKILL if still running. Returns the exit code (negative: signal)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.returncode = self.proc.returncode
        self._reader.join(timeout=5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return self.returncode

    def release(self) -> None:
        """Forget the process for failure reports (after it was stopped and checked)."""
        with _PROCESSES_LOCK:
            if self in _PROCESSES:
                _PROCESSES.remove(self)


# A sanitizer build (`make sanitize`, CMake sets MAAS_SANITIZED=1 for the tests) runs the servers under
# AddressSanitizer, whose quarantine keeps up to 256 MiB of freed memory resident and whose shadow adds an eighth to
# everything: an RSS bound there measures the sanitizer, not the program. The normal build checks the bounds; under a
# sanitizer the rest of each test still runs.
SANITIZED = os.environ.get("MAAS_SANITIZED") == "1"


def assert_rss_bound(holds: bool, message: str) -> None:
    """assert holds, message -- for a bound on a process's RSS (rss_mb), which a sanitizer build does not check."""
    if not SANITIZED:
        assert holds, message


def rss_mb(pid: int) -> float:
    """Resident set size of a process from /proc/<pid>/status, in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def wait_serving(channel: grpc.Channel, service: str = "", timeout: float = 15.0) -> None:
    """Polls grpc.health.v1 Check until `service` is SERVING; fails after `timeout` seconds."""
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
            if response.status == health_pb2.HealthCheckResponse.SERVING:
                return
            last = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        except grpc.RpcError as e:
            last = f"{e.code()}: {e.details()}"
        time.sleep(0.05)
    pytest.fail(f"health of {service!r} not SERVING within {timeout}s (last: {last})")


def health_status(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT).status


def poll_until(fn: Callable[[], object], timeout: float, what: str, interval: float = 0.1):
    """Calls fn until it returns without raising grpc.RpcError or AssertionError; bounded by `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except (grpc.RpcError, AssertionError) as e:
            if time.monotonic() >= deadline:
                detail = f"{e.code()}: {e.details()}" if isinstance(e, grpc.RpcError) else str(e)
                pytest.fail(f"{what}: still failing after {timeout}s: {detail}")
        time.sleep(interval)


def start_generative(model_dir: pathlib.Path, port: int = 0, extra: Sequence[str] = ()) -> ServerProcess:
    return ServerProcess("maas-generative", ["--port", port, "--model_dir", model_dir, *extra])


def start_discriminative(model_dir: pathlib.Path, port: int = 0, extra: Sequence[str] = ()) -> ServerProcess:
    return ServerProcess("maas-discriminative", ["--port", port, "--model_dir", model_dir, *extra])


def serve_discriminative(model_dir: pathlib.Path, extra: Sequence[str] = ()) -> Iterator[
        discriminative_pb2_grpc.DiscriminativeServiceStub]:
    """The body of a module fixture: starts maas-discriminative on `model_dir`, yields a stub once it serves, then
    closes the channel and requires a clean exit (0) on SIGTERM. Use as `yield from serve_discriminative(...)`."""
    process = start_discriminative(model_dir, extra=extra)
    channel = channel_to(process)
    wait_serving(channel)
    yield discriminative_pb2_grpc.DiscriminativeServiceStub(channel)
    channel.close()
    assert process.stop() == 0


def start_gateway(generative_port: int, discriminative_port: int, port: int = 0,
                  extra: Sequence[str] = ()) -> ServerProcess:
    return ServerProcess("maas-gateway", [
        "--port", port,
        "--generative_target", f"ipv4:127.0.0.1:{generative_port}",
        "--discriminative_target", f"ipv4:127.0.0.1:{discriminative_port}", *extra])


def channel_to(process: ServerProcess) -> grpc.Channel:
    return grpc.insecure_channel(process.address, options=[
        ("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)])


class Stack:
    """generative + discriminative + gateway, each in its own model dir under `root`, with channels and stubs.

    Stubs: gen_gw / disc_gw (through the gateway), gen / disc (direct), gateway (maas.gateway.v1.Gateway).
    close() stops everything (SIGTERM) and fails if a server did not exit with code 0.
    """

    def __init__(self, root: pathlib.Path, generative_args: Sequence[str] = (),
                 discriminative_args: Sequence[str] = (), gateway_args: Sequence[str] = ()):
        self.root = pathlib.Path(root)
        self.generative_dir = self.root / "generative"
        self.discriminative_dir = self.root / "discriminative"
        self.generative_dir.mkdir(parents=True, exist_ok=True)
        self.discriminative_dir.mkdir(parents=True, exist_ok=True)
        self.generative_args = list(generative_args)
        self.discriminative_args = list(discriminative_args)
        self._stopped: List[Tuple[str, int, bool]] = []  # (name, exit code, killed) of stopped processes
        self._channels: List[grpc.Channel] = []
        self.generative: Optional[ServerProcess] = None
        self.discriminative: Optional[ServerProcess] = None
        self.gateway_process: Optional[ServerProcess] = None
        self._processes: List[ServerProcess] = []  # every process this stack started, for reports
        for process in live_processes():  # left registered by a stack that closed on an error
            if not process.running():
                process.release()
        try:
            self.generative = self._own(start_generative(self.generative_dir, extra=self.generative_args))
            self.discriminative = self._own(
                start_discriminative(self.discriminative_dir, extra=self.discriminative_args))
            self.gateway_process = self._own(start_gateway(self.generative.port, self.discriminative.port,
                                                           extra=list(gateway_args)))
            self._connect_generative()
            self._connect_discriminative()
            self._connect_gateway()
        except BaseException:
            self.close(check=False, release=False)
            raise

    def _own(self, process: ServerProcess) -> ServerProcess:
        self._processes.append(process)
        return process

    # -- channels and stubs -------------------------------------------------------------------------------------
    def _channel(self, process: ServerProcess) -> grpc.Channel:
        channel = channel_to(process)
        self._channels.append(channel)
        return channel

    def _connect_generative(self) -> None:
        self.gen_channel = self._channel(self.generative)
        wait_serving(self.gen_channel)
        self.gen = generative_pb2_grpc.GenerativeServiceStub(self.gen_channel)

    def _connect_discriminative(self) -> None:
        self.disc_channel = self._channel(self.discriminative)
        wait_serving(self.disc_channel)
        self.disc = discriminative_pb2_grpc.DiscriminativeServiceStub(self.disc_channel)

    def _connect_gateway(self) -> None:
        self.gw_channel = self._channel(self.gateway_process)
        wait_serving(self.gw_channel)
        self.gen_gw = generative_pb2_grpc.GenerativeServiceStub(self.gw_channel)
        self.disc_gw = discriminative_pb2_grpc.DiscriminativeServiceStub(self.gw_channel)
        self.gateway = gateway_pb2_grpc.GatewayStub(self.gw_channel)

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def _record_stop(self, process: ServerProcess) -> int:
        code = process.stop()
        self._stopped.append((process.name, code, process.killed))
        return code

    def stop_generative(self) -> int:
        """SIGTERM to the generative server; returns its exit code."""
        return self._record_stop(self.generative)

    def start_generative_again(self) -> None:
        """Starts a new generative server on the same port and model dir (so the gateway's target stays valid)."""
        self.generative = self._own(start_generative(self.generative_dir, port=self.generative.port,
                                                     extra=self.generative_args))
        self._connect_generative()

    def stop_discriminative(self) -> int:
        return self._record_stop(self.discriminative)

    def start_discriminative_again(self) -> None:
        self.discriminative = self._own(start_discriminative(
            self.discriminative_dir, port=self.discriminative.port, extra=self.discriminative_args))
        self._connect_discriminative()

    def close(self, check: bool = True, release: bool = True) -> None:
        """Stops every process of the stack; with `check`, fails unless each exited with code 0 on SIGTERM.
        Without `release` the stopped processes stay registered, so the failing test's report shows their stderr
        (the next Stack releases them)."""
        for channel in self._channels:
            channel.close()
        self._channels.clear()
        for process in (self.gateway_process, self.generative, self.discriminative):
            if process is not None and process.returncode is None:
                self._record_stop(process)
        bad = [(name, code, killed) for name, code, killed in self._stopped if code != 0 or killed]
        reports = "\n".join(f"--- {p.name} stderr ---\n{p.stderr_text()}" for p in self._processes)
        if release:
            for process in self._processes:
                process.release()
        if check and bad:
            pytest.fail("servers did not shut down gracefully on SIGTERM (want exit code 0 within "
                        f"{STOP_TIMEOUT}s; (name, exit code, killed)): {bad}\n{reports}")

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc) -> None:
        self.close(check=exc[0] is None, release=exc[0] is None)


# -- messages -----------------------------------------------------------------------------------------------------
def to_matrix(values) -> common_pb2.Matrix:
    """A numpy-convertible 2-D array (a 1-D one is one row) as a Matrix."""
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    assert a.ndim == 2
    return common_pb2.Matrix(rows=a.shape[0], cols=a.shape[1], values=a.ravel().tolist())


def from_matrix(m: common_pb2.Matrix) -> np.ndarray:
    """A Matrix as an (rows, cols) float64 array; checks the value count."""
    assert len(m.values) == m.rows * m.cols, f"Matrix {m.rows}x{m.cols} carries {len(m.values)} values"
    return np.array(m.values, dtype=np.float64).reshape(m.rows, m.cols)


def ref(name: str, version: int = 0) -> common_pb2.ModelRef:
    return common_pb2.ModelRef(name=name, version=version)


# -- error assertions -----------------------------------------------------------------------------------------------
Mention = Union[str, Tuple[str, ...]]


def check_rpc_error(error: grpc.RpcError, code: grpc.StatusCode, mentions: Iterable[Mention] = ()) -> None:
    """Asserts the status code, a non-empty message, and that the message mentions each item (case-insensitive;
    a tuple item means any of its strings)."""
    details = error.details() or ""
    assert error.code() == code, f"expected {code}, got {error.code()}: {details!r}"
    assert details.strip(), f"{code} carries an empty message"
    for mention in mentions:
        options = (mention,) if isinstance(mention, str) else mention
        assert any(o.lower() in details.lower() for o in options), \
            f"{code} message {details!r} does not mention {' or '.join(repr(o) for o in options)}"


@contextlib.contextmanager
def expect_rpc_error(code: grpc.StatusCode, *mentions: Mention) -> Iterator[None]:
    """`with expect_rpc_error(grpc.StatusCode.NOT_FOUND, "nope"): stub.GetModel(...)`: the block must raise
    grpc.RpcError with that code and a non-empty message mentioning each item."""
    try:
        yield
    except grpc.RpcError as error:
        check_rpc_error(error, code, mentions)
    else:
        pytest.fail(f"expected an RPC error {code}, but the call succeeded")


def rpc_error(call: Callable[[], object]) -> grpc.RpcError:
    """Runs call() and returns the grpc.RpcError it raised; fails if it succeeded."""
    try:
        call()
    except grpc.RpcError as error:
        return error
    pytest.fail("expected an RPC error, but the call succeeded")
