"""`python -m maas_client models list` against in-process fake ListModels endpoints (listing_fakes.py): the exit
status of an incomplete listing and the paging flags, as the C++ CLI's `maas models` has them.

- A listing that lacks the models of a backend that did not answer the gateway (missing_backends) was printed with
  a warning on stderr but exited 0, so a script that checks the status alone took it for the whole listing. It
  now exits 3 unless --allow-partial; versions that cannot be read are listed, and exit 0.
- The Python CLI always listed every page and had neither --page-size / --page-token (one page, then the next
  page's token on stderr) nor --max-message-bytes (the largest message received; listings ask for pages no
  larger)."""

import io

import pytest

from maas_client.cli import main

from listing_fakes import FakeListing, damaged, model, serve

DOWN = "maas.discriminative.v1.DiscriminativeService: UNAVAILABLE: connection refused"


@pytest.fixture
def target():
    """target(name=FakeListing, ...) -> the address of a server answering those listings."""
    servers = []

    def start(**listings):
        server, address = serve(listings)
        servers.append(server)
        return address

    yield start
    for server in servers:
        server.stop(None)


def pycli(capsys, address, *argv):
    """`python -m maas_client --target ADDRESS ARGV...` in process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    out = io.StringIO()
    try:
        status = main(["--target", address, "--progress", "never", "--timeout", "10", *map(str, argv)], out=out)
    except SystemExit as e:  # argparse's own errors
        status = e.code
    return status, out.getvalue(), capsys.readouterr().err


def names(out):
    return [line.split("\t")[0] for line in out.splitlines()]


def test_a_listing_without_a_backend_exits_3_unless_allow_partial(target, capsys):
    listing = FakeListing([model("a"), model("b"), model("c", kind="discriminative")], [damaged("d")],
                          missing_backends=[DOWN])
    address = target(gateway=listing)
    status, out, err = pycli(capsys, address, "models", "list")
    assert status == 3
    assert names(out) == ["a", "b", "c"]  # printed all the same
    assert f"warning: a backend did not answer, its models are not listed: {DOWN}\n" in err
    assert "'d' version 1 cannot be read" in err
    # One page that lacks the backend is incomplete too.
    status, out, err = pycli(capsys, address, "models", "list", "--page-size", "2")
    assert status == 3 and names(out) == ["a", "b"] and DOWN in err and "--page-token=" in err
    # --allow-partial (the C++ CLI's --allow_partial spelling too): the same output, exit 0.
    for flag in ("--allow-partial", "--allow_partial"):
        status, out, err = pycli(capsys, address, "models", "list", flag)
        assert status == 0 and names(out) == ["a", "b", "c"] and DOWN in err


def test_unreadable_versions_are_listed_and_exit_0(target, capsys):
    address = target(gateway=FakeListing([model("a")], [damaged("d", kind="discriminative")]))
    status, out, err = pycli(capsys, address, "models", "list")
    assert status == 0 and names(out) == ["a"]
    assert "warning: discriminative model 'd' version 1 cannot be read" in err


def test_page_size_lists_one_page_and_gives_the_next_token(target, capsys):
    listing = FakeListing([model(f"m{i}") for i in range(5)], [damaged("m1x")])
    address = target(gateway=listing)
    status, out, err = pycli(capsys, address, "models", "list", "--page-size", "3")
    assert status == 0 and names(out) == ["m0", "m1"]  # and the unreadable m1x, on stderr
    assert "'m1x' version 1 cannot be read" in err
    token = err.rsplit("--page-token=", 1)[1].strip()
    assert token
    assert err.endswith(f"more models may follow: the next page is --page-token={token}\n")
    status, out, err = pycli(capsys, address, "models", "list", "--page_size", "3", "--page-token", token)
    assert status == 0 and names(out) == ["m2", "m3", "m4"]
    last = err.rsplit("--page-token=", 1)[1].strip()  # a full page: more may follow
    status, out, err = pycli(capsys, address, "models", "list", "--page-size", "3", "--page_token", last)
    assert status == 0 and out == "" and err == ""  # the end
    assert listing.requests == [(3, ""), (3, token), (3, last)]
    # Without --page-size: every page, no token.
    status, out, err = pycli(capsys, address, "models", "list")
    assert status == 0 and names(out) == [f"m{i}" for i in range(5)] and "--page-token" not in err


@pytest.mark.parametrize("argv, message", [
    (["models", "list", "--page-token", "t"], "--page-token needs --page-size"),
    (["models", "list", "--page-size", "0"], "--page-size must be >= 1 (servers give at most 1000), got 0"),
    (["models", "get", "a", "--page-size", "2"], "apply to 'models list', not 'get'"),
    (["models", "delete", "a", "--allow-partial"], "apply to 'models list', not 'delete'"),
    (["--max-message-bytes", "0", "models", "list"], "--max-message-bytes must be > 0, got 0"),
])
def test_paging_flags_misused_are_usage_errors(target, capsys, argv, message):
    listing = FakeListing([model("a")])
    status, out, err = pycli(capsys, target(gateway=listing), *argv)
    assert status == 2 and out == "" and message in err
    assert listing.requests == []  # nothing sent


def test_max_message_bytes_is_the_largest_page_asked_for_and_received(target, capsys):
    listing = FakeListing([model(f"name-{i:04d}") for i in range(300)])
    address = target(gateway=listing)
    assert pycli(capsys, address, "models", "list")[0] == 0
    status, out, _ = pycli(capsys, address, "--max-message-bytes", 1 << 20, "models", "list", "--page-size", "5")
    assert status == 0 and len(names(out)) == 5
    assert pycli(capsys, address, "--max_message_bytes", 123456, "models", "list")[0] == 0
    assert listing.max_page_bytes == [64 << 20, 1 << 20, 123456]
    # It is the receive limit: this fake ignores max_page_bytes, and its answer is larger than 1000 bytes.
    status, out, err = pycli(capsys, address, "--max-message-bytes", 1000, "models", "list")
    assert status == 1 and out == "" and err.startswith("error: RESOURCE_EXHAUSTED: ")
