"""The clients' listings on the real binaries with a store whose listing is larger than the servers' largest message
(--max_message_bytes 128 KiB here; about 1 900 models at the default 64 MiB): an unpaged ListModels is refused
RESOURCE_EXHAUSTED, yet maas_client's list(), the C++ `maas models` and the Python CLI list every model once, both
kinds through the gateway, each service on its own, unreadable versions included; list_page() hands out pages that
make up the same listing, and tokens pass between the gateway and the services.

Before the clients paged, every one of those listings failed with RESOURCE_EXHAUSTED on such a store.

Last, servers at their default limit and clients (maas_client, the C++ CLI) whose receive limit is smaller: they send
it as max_page_bytes and get pages they can receive."""

import io
import json

import grpc
import pytest

import maas_client
from maas_client.cli import main as pycli_main
from maas_client.pb import common, generative as gpb

from maas_testing import TIMEOUT, Stack, expect_rpc_error, run_maas_cli

CAP = 128 << 10
SERVER_ARGS = ["--max_message_bytes", str(CAP)]
# Every entry carries its description: 81 of them (~4 KiB each) are well above the cap, and so are each service's.
DESCRIPTION = "d" * 4000
N = 80
KIND_ORDER = {"generative": common.GENERATIVE, "discriminative": common.DISCRIMINATIVE}


def kind_of(i):
    return "generative" if i % 2 == 0 else "discriminative"


def expected(all_versions=False, kind=None):
    """(models, unreadable) as sorted (name, version, kind) keys: m000..m079 alternating kinds, m000 and m001 with
    a second version, "twin" in both services, the only versions of m004 and m005 damaged."""
    models, unreadable = [], []
    for i in range(N):
        name, k = f"m{i:03d}", kind_of(i)
        versions = [1, 2] if i < 2 else [1]
        for v in versions if all_versions else versions[-1:]:
            (unreadable if i in (4, 5) else models).append((name, v, k))
    models += [("twin", 1, "generative"), ("twin", 1, "discriminative")]
    if kind is not None:
        models = [e for e in models if e[2] == kind]
        unreadable = [e for e in unreadable if e[2] == kind]
    key = lambda e: (e[0], e[1], KIND_ORDER[e[2]])  # noqa: E731
    return sorted(models, key=key), sorted(unreadable, key=key)


def keys(entries):
    return [(e.name, e.version, e.kind) for e in entries]


def create(models, kind, name):
    """A small model of `kind` called `name`: a uniform box, or a two-text classifier."""
    if kind == "generative":
        models.generative.create(gpb.GenerativeModelSpec(uniform=gpb.UniformSpec(low=[0.0], high=[1.0])), name,
                                 description=DESCRIPTION)
    else:
        models.discriminative.train(["a goal", "the bread"], ["sports", "food"], name=name, description=DESCRIPTION)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("paging")
    args = dict(generative_args=SERVER_ARGS, discriminative_args=SERVER_ARGS, gateway_args=SERVER_ARGS)
    with Stack(root, **args) as s:
        with maas_client.Models(s.gateway_process.address, timeout=TIMEOUT) as models:
            for i in [*range(N), 0, 1]:
                create(models, kind_of(i), f"m{i:03d}")
            create(models, "generative", "twin")
            create(models, "discriminative", "twin")
    # Damage two models' only version while no server runs, then serve the store again.
    (root / "generative" / "m004" / "1" / "model.pb").write_bytes(b"")
    (root / "discriminative" / "m005" / "1" / "model.pb").write_bytes(b"")
    with Stack(root, **args) as s:
        yield s


def test_an_unpaged_listing_is_above_the_message_cap(stack):
    """The premise: one answer with every entry is refused, by the services and by the gateway."""
    for stub in (stack.gateway, stack.gen, stack.disc):
        with expect_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED):
            stub.ListModels(common.ListModelsRequest(), timeout=TIMEOUT)


@pytest.mark.parametrize("all_versions", [False, True])
def test_list_through_the_gateway_has_every_model_once(stack, all_versions):
    models, unreadable = expected(all_versions)
    with maas_client.Models(stack.gateway_process.address, timeout=TIMEOUT) as client:
        listed = client.list(all_versions=all_versions)
        assert keys(listed) == models and keys(listed.unreadable) == unreadable
        assert not listed.missing_backends and not listed.next_page_token
        assert {m.description for m in listed} == {DESCRIPTION}
        # Each kind on its own, through the gateway's proxy to that service.
        for kind in KIND_ORDER:
            own = client.list(kind=kind, all_versions=all_versions)
            assert (keys(own), keys(own.unreadable)) == expected(all_versions, kind)


def test_list_at_each_service_has_its_models(stack):
    """A service's endpoint has no Gateway/ListModels: Models pages the service itself."""
    for process, kind in ((stack.generative, "generative"), (stack.discriminative, "discriminative")):
        with maas_client.Models(process.address, timeout=TIMEOUT) as client:
            listed = client.list()
            assert (keys(listed), keys(listed.unreadable)) == expected(kind=kind)
            assert keys(getattr(client, kind).list()) == keys(listed)  # the service client pages too


def follow(client, token="", **kwargs):
    """Pages from `token` to the end: the list of pages."""
    pages = []
    while True:
        pages.append(client.list_page(page_token=token, **kwargs))
        token = pages[-1].next_page_token
        if not token:
            return pages


def entries(pages):
    """The pages' entries, models and unreadable versions together, in listing order."""
    both = [(e.name, e.version, e.kind) for p in pages for e in [*p, *p.unreadable]]
    return sorted(both, key=lambda e: (e[0], e[1], KIND_ORDER[e[2]]))


def test_pages_of_seven_make_up_the_listing(stack):
    models, unreadable = expected()
    with maas_client.Models(stack.gateway_process.address, timeout=TIMEOUT) as client:
        pages = follow(client, page_size=7)
        assert all(len(p) + len(p.unreadable) <= 7 for p in pages) and len(pages) >= 12
        assert [k for p in pages for k in keys(p)] == models
        assert [k for p in pages for k in keys(p.unreadable)] == unreadable
        # Pages of 1000 are cut by the message budget (each entry ~4 KiB, 128 KiB a message), and still all there.
        big = follow(client, page_size=1000, all_versions=True)
        assert len(big) > 1 and all(len(p) + len(p.unreadable) < 1000 for p in big)
        assert entries(big) == sorted([*expected(True)[0], *expected(True)[1]],
                                      key=lambda e: (e[0], e[1], KIND_ORDER[e[2]]))


def test_tokens_pass_between_the_gateway_and_the_services(stack):
    every = sorted([*expected()[0], *expected()[1]], key=lambda e: (e[0], e[1], KIND_ORDER[e[2]]))
    with maas_client.Models(stack.gateway_process.address, timeout=TIMEOUT) as gateway, \
            maas_client.Models(stack.generative.address, timeout=TIMEOUT) as generative:
        first = gateway.list_page(page_size=10)
        assert entries([first]) == every[:10]
        # The gateway's token on the generative service: its entries after the gateway page's last one.
        rest = entries(follow(generative, first.next_page_token, page_size=5))
        assert rest == [e for e in every[10:] if e[2] == "generative"]
        # A service's token on the gateway: both kinds after the service page's last entry.
        own = generative.list_page(page_size=5)
        last = entries([own])[-1]
        after = entries(follow(gateway, own.next_page_token, page_size=9))
        assert after == every[every.index(last) + 1:]


def test_a_token_of_another_listing_is_invalid_argument(stack):
    with maas_client.Models(stack.gateway_process.address, timeout=TIMEOUT) as client:
        token = client.list_page(page_size=3).next_page_token
        for kwargs in (dict(name_prefix="m0"), dict(all_versions=True)):
            with pytest.raises(maas_client.InvalidArgumentError):
                client.list_page(page_size=3, page_token=token, **kwargs)
        with pytest.raises(maas_client.InvalidArgumentError):
            client.list_page(page_size=3, page_token="not a token")


def test_the_clis_list_every_model(stack):
    models, unreadable = expected()
    # The C++ CLI through the gateway: every model, the damaged versions named on stderr.
    done = run_maas_cli(stack.gateway_process.port, "models")
    rows = [line.split()[:3] for line in done.stdout.splitlines()[1:]]
    assert [(name, int(version), kind) for name, version, kind in rows] == models
    assert "\"m004\" version 1 cannot be read" in done.stderr and "\"m005\"" in done.stderr
    # At a service.
    done = run_maas_cli(stack.discriminative.port, "models", "--json")
    listed = json.loads(done.stdout)
    assert [(m["name"], m["version"]) for m in listed["models"]] == [
        (name, version) for name, version, _ in expected(kind="discriminative")[0]]
    assert listed["next_page_token"] == ""
    # One page at a time with --page_size / --page_token.
    seen, token = [], None
    while token != "":
        done = run_maas_cli(stack.gateway_process.port, "models", "--json", "--page_size", "25",
                            *(["--page_token", token] if token else []))
        page = json.loads(done.stdout)
        assert len(page["models"]) + len(page["unreadable_versions"]) <= 25
        seen += [(m["name"], m["version"], m["type"].lower()) for m in page["models"]]
        token = page["next_page_token"]
    assert seen == models
    done = run_maas_cli(stack.gateway_process.port, "models", "--page_size", "2")
    assert len(done.stdout.splitlines()) == 3 and "--page_token=" in done.stderr
    # The Python CLI.
    out = io.StringIO()
    assert pycli_main(["--target", stack.gateway_process.address, "--progress", "never", "models", "list"],
                      out=out) == 0
    assert [tuple(line.split("\t")[:3]) for line in out.getvalue().splitlines()] == [
        (name, str(version), kind) for name, version, kind in models]


# -- A client that receives less than the servers send ---------------------------------------------------------------
# Servers at their default --max_message_bytes (64 MiB) and clients whose receive limit is 128 KiB: a page of 1000
# entries (~4 KiB each) is larger than such a client takes. The clients send their limit as max_page_bytes, so
# the servers cut the pages to it (before, every listing below failed with RESOURCE_EXHAUSTED, "received message
# larger than max").
CLIENT_LIMIT = 128 << 10
SMALL_N = 80  # alternating kinds: 40 models (~160 KiB) per service, 80 through the gateway


@pytest.fixture(scope="module")
def default_stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("paging_default")) as s:
        with maas_client.Models(s.gateway_process.address, timeout=TIMEOUT) as models:
            for i in range(SMALL_N):
                create(models, kind_of(i), f"s{i:03d}")
        yield s


def small_expected(kind=None):
    return [(f"s{i:03d}", 1, kind_of(i)) for i in range(SMALL_N) if kind in (None, kind_of(i))]


def test_a_client_with_a_small_receive_limit_lists_every_model_once(default_stack):
    s = default_stack
    # The premise: each service's first page of 1000 at the servers' limit is larger than the client takes.
    for stub in (s.gen, s.disc, s.gateway):
        assert stub.ListModels(common.ListModelsRequest(page_size=1000), timeout=TIMEOUT).ByteSize() > CLIENT_LIMIT
    with maas_client.Models(s.gateway_process.address, timeout=TIMEOUT, max_message_bytes=CLIENT_LIMIT) as client:
        listed = client.list()
        assert keys(listed) == small_expected() and listed.complete
        for kind in KIND_ORDER:
            assert keys(client.list(kind=kind)) == small_expected(kind)
        pages = follow(client, page_size=1000)
        assert len(pages) > 2 and [k for p in pages for k in keys(p)] == small_expected()
    for process, kind in ((s.generative, "generative"), (s.discriminative, "discriminative")):
        with maas_client.Models(process.address, timeout=TIMEOUT, max_message_bytes=CLIENT_LIMIT) as client:
            assert keys(client.list()) == small_expected(kind)
            assert keys(getattr(client, kind).list()) == small_expected(kind)
    # The C++ CLI with --max_message_bytes: the whole listing, and pages of --page_size 1000, each within the limit.
    for port, kind in ((s.gateway_process.port, None), (s.generative.port, "generative"),
                       (s.discriminative.port, "discriminative")):
        done = run_maas_cli(port, f"--max_message_bytes={CLIENT_LIMIT}", "--json", "models")
        listed = json.loads(done.stdout)
        assert [(m["name"], m["version"], m["type"].lower()) for m in listed["models"]] == small_expected(kind)
    seen, token, pages = [], None, 0
    while token != "":
        done = run_maas_cli(s.gateway_process.port, f"--max_message_bytes={CLIENT_LIMIT}", "--json", "models",
                            "--page_size", "1000", *(["--page_token", token] if token else []))
        page = json.loads(done.stdout)
        seen += [(m["name"], m["version"], m["type"].lower()) for m in page["models"]]
        token, pages = page["next_page_token"], pages + 1
    assert seen == small_expected() and pages > 2
