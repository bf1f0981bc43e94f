"""Timeouts of maas_client and `python -m maas_client --timeout` against an in-process fake ListModels endpoint
(listing_fakes.py) that records the deadline each call arrived with.

- timeout=math.inf (or any timeout from about 7e9 s on) was accepted, and every call then failed at once with
  DEADLINE_EXCEEDED: gRPC's absolute deadline, in int64 nanoseconds, overflowed into the past. math.inf, and any
  timeout above maas_client.connection.MAX_TIMEOUT (10**9 s), now means no deadline; `--timeout inf` and
  `--timeout 0` mean no deadline in the Python CLI, as in `maas`.
- A timeout that is not a number > 0 was a plain ValueError (0, NaN) or a bare TypeError ("5", None); it is now the
  InvalidArgumentError naming `timeout` that the README promises for bad arguments."""

import io
import math

import numpy as np
import pytest

import maas_client
from maas_client.cli import main
from maas_client.connection import MAX_TIMEOUT

from listing_fakes import FakeListing, model, serve


# What the server's context.time_remaining() gives a call without a deadline is gRPC's infinite future (~9.2e18 s).
NO_DEADLINE = 1e15


class DeadlineRecorder(FakeListing):
    """A FakeListing that records the seconds left of each call (None: the call has no deadline)."""

    def __init__(self):
        super().__init__([model("a")])
        self.remaining = []

    def __call__(self, request, context):
        remaining = context.time_remaining()
        self.remaining.append(None if remaining is None or remaining > NO_DEADLINE else remaining)
        return super().__call__(request, context)


@pytest.fixture
def fake():
    listing = DeadlineRecorder()
    server, address = serve({"generative": listing, "gateway": listing})
    yield address, listing
    server.stop(None)


@pytest.mark.parametrize("timeout", [math.inf, np.float64("inf"), 1e10, 1e300, MAX_TIMEOUT * 2])
def test_an_infinite_or_too_long_timeout_means_no_deadline(fake, timeout):
    address, listing = fake
    with maas_client.GenerativeClient(address, timeout=timeout) as gen:
        assert [m.name for m in gen.list()] == ["a"]
    with maas_client.GenerativeClient(address, timeout=5) as gen:
        assert [m.name for m in gen.list(timeout=timeout)] == ["a"]
    assert listing.remaining == [None, None]


def test_finite_timeouts_are_deadlines(fake):
    address, listing = fake
    with maas_client.GenerativeClient(address, timeout=30) as gen:
        gen.list()
        gen.list(timeout=MAX_TIMEOUT)
        gen.list(timeout=np.int64(7))
    short, longest, seven = listing.remaining
    # (gRPC's grpc-timeout header has 8 digits: the server sees about 3 years of the longest, still a deadline. The
    # header rounds up, so the server may see a little more than the timeout.)
    assert 0 < short <= 31 and longest is not None and longest > 1e7 and 0 < seven <= 8


@pytest.mark.parametrize("value, shown", [
    (0, "must be > 0 seconds"), (-1.5, "must be > 0 seconds"), (math.nan, "must be > 0 seconds"),
    (-math.inf, "must be > 0 seconds"), ("5", "must be a number of seconds > 0 .*got str '5'"),
    (True, "must be a number of seconds > 0 .*got bool"), ([5], "must be a number of seconds > 0 .*got list"),
    (None, "must be a number of seconds > 0 .*got NoneType")])
def test_a_timeout_that_is_not_a_number_above_0_is_an_invalid_argument_error(fake, value, shown):
    address, listing = fake
    with pytest.raises(maas_client.InvalidArgumentError, match=f"^INVALID_ARGUMENT: timeout {shown}"):
        maas_client.Connection(address, timeout=value)
    if value is not None:  # a call's timeout=None is the connection's default
        with maas_client.GenerativeClient(address, timeout=5) as gen:
            with pytest.raises(maas_client.InvalidArgumentError, match=f"^INVALID_ARGUMENT: timeout {shown}"):
                gen.list(timeout=value)
    assert listing.remaining == []  # nothing was sent


def pycli(capsys, address, *argv):
    capsys.readouterr()
    out = io.StringIO()
    try:
        status = main(["--target", address, "--progress", "never", *map(str, argv)], out=out)
    except SystemExit as e:  # argparse's own errors
        status = e.code
    return status, out.getvalue(), capsys.readouterr().err


def test_the_cli_takes_inf_and_0_as_no_deadline_as_maas_does(fake, capsys):
    address, listing = fake
    for timeout in ("inf", "0", "1e12"):
        status, out, err = pycli(capsys, address, "--timeout", timeout, "models", "list", "--kind", "generative")
        assert status == 0 and out.startswith("a\t1\t"), err
    status, _, err = pycli(capsys, address, "--timeout", "7", "models", "list", "--kind", "generative")
    assert status == 0, err
    assert listing.remaining[:3] == [None, None, None] and 0 < listing.remaining[3] <= 8
    for bad in ("-1", "nan", "soon"):
        status, out, err = pycli(capsys, address, "--timeout", bad, "models", "list")
        assert status == 2 and out == "" and "--timeout: expected seconds >= 0" in err
    assert len(listing.remaining) == 4
