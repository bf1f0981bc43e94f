"""maas_client's reconnect backoff (Connection's reconnect_backoff_max, default 5 s).

A client found after a server outage of a minute kept failing every call at once with UNAVAILABLE for 6-13 s after
the server was back: it left gRPC's reconnect backoff at its default (first wait 1 s, x1.6 each attempt, +-20%
jitter, up to 120 s), so the wait between connection attempts had grown past 10 s. The client now caps that wait
(reconnect_backoff_max, default 5 s), as the gateway does for its backends (--reconnect_backoff_max_ms)."""

import math
import socket
import threading
import time

import grpc
import pytest

import maas_client
from maas_client.connection import DEFAULT_RECONNECT_BACKOFF_MAX, Connection
from maas_client.errors import DeadlineExceededError, InvalidArgumentError, UnavailableError

import maas_testing


class ChannelRecorder:
    """Stands in for grpc.insecure_channel / grpc.secure_channel: records the options each channel was made with."""

    def __init__(self, make):
        self.make = make
        self.options = []

    def __call__(self, *args, options=()):
        self.options.append(dict(options))
        return self.make(*args, options=options)


@pytest.fixture
def channels(monkeypatch):
    insecure = ChannelRecorder(grpc.insecure_channel)
    secure = ChannelRecorder(grpc.secure_channel)
    monkeypatch.setattr(grpc, "insecure_channel", insecure)
    monkeypatch.setattr(grpc, "secure_channel", secure)
    return insecure, secure


def backoff_of(options):
    return options["grpc.initial_reconnect_backoff_ms"], options["grpc.max_reconnect_backoff_ms"]


def test_the_default_caps_the_wait_between_connection_attempts_at_5_s(channels):
    insecure, secure = channels
    assert DEFAULT_RECONNECT_BACKOFF_MAX == 5.0
    Connection("127.0.0.1:1").close()
    with maas_client.GenerativeClient("127.0.0.1:1"):
        pass
    Connection("127.0.0.1:1", tls=True).close()
    assert [backoff_of(o) for o in insecure.options] == [(1000, 5000), (1000, 5000)]
    assert [backoff_of(o) for o in secure.options] == [(1000, 5000)]
    # grpc.min_reconnect_backoff_ms is gRPC core's shortest connection attempt (20 s): not cut short.
    assert all("grpc.min_reconnect_backoff_ms" not in o for o in insecure.options + secure.options)


@pytest.mark.parametrize("seconds, expected", [(0.25, (250, 250)), (1, (1000, 1000)), (30, (1000, 30000)),
                                               (0.001, (1, 1)), (2147483.647, (1000, 2147483647))])
def test_reconnect_backoff_max_reaches_the_channel_in_ms(channels, seconds, expected):
    insecure, _ = channels
    with maas_client.DiscriminativeClient("127.0.0.1:1", reconnect_backoff_max=seconds):
        pass
    assert [backoff_of(o) for o in insecure.options] == [expected]


def test_options_given_as_grpc_options_still_win(channels):
    insecure, _ = channels
    Connection("127.0.0.1:1", reconnect_backoff_max=2,
               options=[("grpc.max_reconnect_backoff_ms", 700), ("grpc.initial_reconnect_backoff_ms", 100)]).close()
    assert backoff_of(insecure.options[0]) == (100, 700)


@pytest.mark.parametrize("value, message", [
    (0, r"reconnect_backoff_max must be a number of seconds in \[0.001, 2147483.647\].*got 0$"),
    (-5, r"reconnect_backoff_max must be .*got -5$"),
    (0.0004, r"reconnect_backoff_max must be .*got 0.0004$"),
    (math.nan, r"reconnect_backoff_max must be .*got nan$"),
    (math.inf, r"reconnect_backoff_max must be .*got inf$"),
    (3e6, r"reconnect_backoff_max must be .*got 3000000.0$"),
    ("5", r"reconnect_backoff_max must be a number of seconds > 0, got str '5'"),
    (True, r"reconnect_backoff_max must be a number of seconds > 0, got bool True"),
])
def test_a_bad_reconnect_backoff_max_is_an_error_naming_it(channels, value, message):
    insecure, _ = channels
    with pytest.raises(InvalidArgumentError, match=message):
        Connection("127.0.0.1:1", reconnect_backoff_max=value)
    with pytest.raises(InvalidArgumentError, match=message):
        maas_client.Models("127.0.0.1:1", reconnect_backoff_max=value)
    assert insecure.options == []  # refused before any channel is made


def test_reconnect_backoff_max_is_refused_with_a_given_channel():
    channel = grpc.insecure_channel("127.0.0.1:1")
    try:
        with pytest.raises(ValueError, match="configure its reconnect backoff where it was made"):
            Connection(channel=channel, reconnect_backoff_max=1)
    finally:
        channel.close()


class AttemptCounter:
    """Holds a port while the server is down, accepting each connection and closing it at once (the attempt fails
    like one to a closed port, without the server's HTTP/2 settings): counts the client's connection attempts and
    keeps the time of the last one."""

    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.times = []
        self.cond = threading.Condition()
        self.done = False
        self.thread = threading.Thread(target=self._accept, name="attempt-counter", daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.done:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            conn.close()
            with self.cond:
                self.times.append(time.monotonic())
                self.cond.notify_all()

    def wait_for(self, attempts, timeout):
        with self.cond:
            self.cond.wait_for(lambda: len(self.times) >= attempts, timeout=timeout)
            return list(self.times)

    def close(self):
        self.done = True
        self.thread.join(timeout=5)
        self.sock.close()


def keep_calling(gen, stop):
    """Calls gen.list() every 50 ms until stop is set, as a long-lived client does (each call fails UNAVAILABLE)."""
    while not stop.is_set():
        try:
            gen.list(timeout=2)
        except (UnavailableError, DeadlineExceededError):
            pass
        stop.wait(0.05)


# With reconnect_backoff_max at 0.25 s the client tries a server that is down at least every 0.3 s (the cap plus
# gRPC's 20% jitter): 10 attempts take ~3 s. Under gRPC's own backoff (1 s, x1.6, +-20% jitter) the attempts come at
# ~0, 1, 2.6, 5.2, 9.3, 15.8, 26 s (the 10th ~70 s into the outage), and under the default 5 s cap at ~0, 1, 2.6,
# 5.2, 9.3, 14.3, 19.3 s: 7 within 20 s. So 10 attempts within 20 s is an event to wait for, with room to spare,
# that neither of those reaches.
CAP = 0.25
ATTEMPTS = 10
ATTEMPTS_WITHIN = 20.0
# Once the server is back, a call succeeds at the client's next attempt (within ~0.3 s); this only bounds the wait.
RECOVERY_WITHIN = 30.0


def test_a_client_retries_a_down_server_at_its_cap_and_reaches_it_once_restarted(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    server = maas_testing.start_generative(models)
    port = server.port
    counter = None
    stop = threading.Event()
    with maas_client.GenerativeClient(server.address, timeout=5, reconnect_backoff_max=CAP) as gen:
        try:
            assert list(gen.list()) == []
            assert server.stop() == 0
            server.release()
            counter = AttemptCounter(port)
            caller = threading.Thread(target=keep_calling, args=(gen, stop), daemon=True)
            caller.start()
            times = counter.wait_for(ATTEMPTS, timeout=ATTEMPTS_WITHIN)
            outage = [round(t - times[0], 1) for t in times]
            assert len(times) >= ATTEMPTS, (f"only {len(times)} connection attempts in {ATTEMPTS_WITHIN} s "
                                            f"(at {outage} s): the reconnect backoff is not capped at {CAP} s")
            stop.set()
            caller.join(timeout=10)
            counter.close()
            server = maas_testing.start_generative(models, port=port)
            deadline = time.monotonic() + RECOVERY_WITHIN
            while True:
                try:
                    assert list(gen.list(timeout=2)) == []
                    break
                except (UnavailableError, DeadlineExceededError):
                    assert time.monotonic() < deadline, f"no call succeeded within {RECOVERY_WITHIN} s of the restart"
                    time.sleep(0.05)
        finally:
            stop.set()
            if counter is not None:
                counter.close()
            assert server.stop() == 0
            server.release()
