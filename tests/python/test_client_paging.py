"""maas_client's listings page (ListModels page_size / page_token / next_page_token) against in-process fake
servers, so that what a real store cannot easily show is covered: pages cut short by the message budget, a last
page that comes back empty, a server older than paging (it ignores page_size and answers everything), one that
never ends its listing, a target with no gateway, and missing_backends repeated on every page.

Before paging, list() asked for the whole listing in one answer, which a server refuses RESOURCE_EXHAUSTED once it
is larger than its largest message (about 1 900 models at the default 64 MiB): the fakes refuse an unpaged request
above `unpaged_cap` entries the same way. The real servers are exercised by test_client_paging_e2e.py."""

import grpc
import pytest

import maas_client
from maas_client.pb import common

from listing_fakes import FakeListing, damaged, model, serve


@pytest.fixture
def fake():
    """fake(name=FakeListing, ...) -> a Models client of a server answering those listings."""
    started = []

    def start(**listings):
        server, target = serve(listings)
        models = maas_client.Models(target, timeout=10)
        started.append((server, models))
        return models

    yield start
    for server, models in started:
        models.close()
        server.stop(None)


def keys(listed):
    return [(m.name, m.version, m.kind) for m in listed]


def bad_keys(listed):
    return [(b.name, b.version, b.kind) for b in listed.unreadable]


def mixed_store(n):
    """n entries through a gateway: names interleaving both kinds, one unreadable version in every 97."""
    models, unreadable = [], []
    for i in range(n):
        kind = "generative" if i % 3 else "discriminative"
        (unreadable.append(damaged(f"m{i:05d}", kind=kind)) if i % 97 == 5 else
         models.append(model(f"m{i:05d}", kind=kind)))
    return models, unreadable


def test_list_pages_through_a_store_larger_than_one_answer(fake):
    models, unreadable = mixed_store(2345)
    gateway = FakeListing(models, unreadable, unpaged_cap=1900)
    listed = fake(gateway=gateway).list()
    assert keys(listed) == [(m.name, m.version, maas_client.types.MODEL_TYPES[m.type]) for m in models]
    assert bad_keys(listed) == [(b.name, b.version, maas_client.types.MODEL_TYPES[b.type]) for b in unreadable]
    assert len(set(keys(listed))) == len(listed) and not listed.missing_backends and not listed.next_page_token
    # Pages of 1000, each starting at the previous page's token: 1000 + 1000 + 345, never the unpaged request.
    assert [size for size, _ in gateway.requests] == [1000, 1000, 1000]
    assert gateway.requests[0][1] == "" and all(token for _, token in gateway.requests[1:])


def test_list_follows_short_pages_and_an_empty_last_page(fake):
    models, unreadable = mixed_store(63)
    gateway = FakeListing([*models, model("other")], unreadable, page_cap=7)  # the budget holds 7 entries
    listed = fake(gateway=gateway).list("m000")
    # "m000" covers the 63 entries: 9 full pages, the 9th cut at its 7th entry, so a 10th comes back empty.
    assert sorted([m.name for m in listed] + [b.name for b in listed.unreadable]) == [f"m{i:05d}" for i in range(63)]
    assert [m.name for m in listed] == sorted(m.name for m in listed)
    assert [b.name for b in listed.unreadable] == ["m00005"]
    assert len(gateway.requests) == 10 and len({token for _, token in gateway.requests}) == 10


def test_missing_backends_of_every_page_are_reported_once_in_order(fake):
    models, _ = mixed_store(25)
    down = ["maas.discriminative.v1.DiscriminativeService: UNAVAILABLE: connection refused",
            "maas.generative.v1.GenerativeService: DEADLINE_EXCEEDED: slow"]
    listed = fake(gateway=FakeListing(models, missing_backends=down, page_cap=10)).list()
    assert len(listed) == 24 and listed.missing_backends == down and not listed.complete  # 3 pages, each naming both


def test_a_server_older_than_paging_answers_everything_at_once(fake):
    models, unreadable = mixed_store(1500)
    gateway = FakeListing(models, unreadable, pages=False)
    client = fake(gateway=gateway)
    listed = client.list()
    assert len(listed) + len(listed.unreadable) == 1500 and gateway.requests == [(1000, "")]
    # One page is the whole listing there: no token to follow.
    page = client.list_page(page_size=10)
    assert len(page) + len(page.unreadable) == 1500 and page.next_page_token == ""


def test_a_server_that_answers_the_token_it_was_sent_is_an_error_not_a_hang():
    calls = []

    def answer(request, context):  # a broken server: its second page is its first again
        calls.append(request.page_token)
        return common.ListModelsResponse(models=[model("a")], next_page_token=request.page_token or "same")

    server, target = serve({"gateway": answer})
    try:
        with maas_client.Models(target, timeout=10) as client:
            with pytest.raises(maas_client.errors.InternalError, match="answered a page token it was sent before"):
                client.list()
        assert calls == ["", "same"]
    finally:
        server.stop(None)


def test_a_server_whose_tokens_cycle_is_an_error_not_a_hang():
    """A review: tokens A, B, A, ... looped forever (only a token answered straight back was caught)."""
    calls = []

    def answer(request, context):
        calls.append(request.page_token)
        return common.ListModelsResponse(models=[model("a")], next_page_token="B" if request.page_token == "A" else "A")

    server, target = serve({"gateway": answer})
    try:
        with maas_client.Models(target, timeout=10) as client:
            with pytest.raises(maas_client.errors.InternalError, match="does not advance"):
                client.list()
        assert calls == ["", "A", "B"]
    finally:
        server.stop(None)


def test_list_page_hands_out_one_page_and_its_token(fake):
    models, unreadable = mixed_store(30)
    gateway = FakeListing(models, unreadable)
    client = fake(gateway=gateway)
    first = client.list_page(page_size=4)
    assert keys(first) == [("m00000", 1, "discriminative"), ("m00001", 1, "generative"),
                           ("m00002", 1, "generative"), ("m00003", 1, "discriminative")]
    assert first.next_page_token and gateway.requests == [(4, "")]
    second = client.list_page(page_size=4, page_token=first.next_page_token)
    assert [m.name for m in second] == ["m00004", "m00006", "m00007"] and bad_keys(second) == [
        ("m00005", 1, "generative")]
    # Collected page by page, the listing is list()'s.
    pages, token = [first, second], second.next_page_token
    while token:
        pages.append(client.list_page(page_size=4, page_token=token))
        token = pages[-1].next_page_token
    assert [k for p in pages for k in keys(p)] == keys(client.list())
    # The server checks the token against the listing (here: another prefix).
    with pytest.raises(maas_client.InvalidArgumentError, match="another listing"):
        client.list_page("m", page_size=4, page_token=first.next_page_token)


@pytest.mark.parametrize("page_size, message", [
    (0, r"page_size must be in \[1, 2147483647\], got 0"),
    (-1, r"page_size must be in \[1, 2147483647\], got -1"),
    (1 << 31, r"page_size must be in \[1, 2147483647\], got 2147483648"),
    ("10", "page_size must be an integer, got '10'"),
])
def test_list_page_checks_page_size_before_sending(fake, page_size, message):
    gateway = FakeListing([model("a")])
    client = fake(gateway=gateway)
    with pytest.raises(maas_client.InvalidArgumentError, match=message):
        client.list_page(page_size=page_size)
    with pytest.raises(maas_client.InvalidArgumentError, match=message):
        client.generative.list_page(page_size=page_size)
    with pytest.raises(maas_client.InvalidArgumentError, match="page_token must be a str"):
        client.list_page(page_token=b"token")
    assert gateway.requests == []


def test_without_a_gateway_each_service_is_paged(fake):
    """A service's endpoint: Models lists the service itself (Gateway/ListModels is UNIMPLEMENTED there), page by
    page, typing the entries by the service that answered."""
    models = [model(f"g{i:04d}", typed=False) for i in range(2100)]
    service = FakeListing(models, [damaged("g2100x", typed=False)], unpaged_cap=1900)
    client = fake(generative=service)
    listed = client.list()
    assert len(listed) == 2100 and {m.kind for m in listed} == {"generative"}
    assert bad_keys(listed) == [("g2100x", 1, "generative")]
    assert [size for size, _ in service.requests] == [1000, 1000, 1000]
    page = client.list_page(page_size=3, page_token=service.requests[1][1])
    assert keys(page) == [(f"g{i:04d}", 1, "generative") for i in range(1000, 1003)] and page.next_page_token
    # A service client pages its own listing.
    assert len(client.generative.list()) == 2100
    assert [m.name for m in client.generative.list_page(page_size=2)] == ["g0000", "g0001"]


def test_without_a_gateway_both_services_are_paged_and_merged(fake):
    gen = FakeListing([model(f"n{i:04d}", kind="generative") for i in range(0, 2400, 2)], unpaged_cap=1000)
    disc = FakeListing([model(f"n{i:04d}", kind="discriminative") for i in range(1, 2400, 2)],
                       [damaged("n0002", kind="discriminative")], unpaged_cap=1000)
    client = fake(generative=gen, discriminative=disc)
    listed = client.list()
    assert [m.name for m in listed] == [f"n{i:04d}" for i in range(2400)]
    assert [m.kind for m in listed[:2]] == ["generative", "discriminative"]
    assert bad_keys(listed) == [("n0002", 1, "discriminative")]
    assert len(gen.requests) == 2 and len(disc.requests) == 2
    # One page cannot hold a page of each: the caller is told to page one service.
    with pytest.raises(maas_client.FailedPreconditionError, match="kind='generative' or kind='discriminative'"):
        client.list_page(page_size=10)
    assert keys(client.list_page(kind="discriminative", page_size=1)) == [("n0001", 1, "discriminative")]


def test_a_target_where_nothing_lists_models_is_an_error_not_an_empty_listing(fake):
    """A review: list() and list_page() at an endpoint serving no maas service returned [] with .complete True
    (the Python CLI exited 0); the C++ client answers UNIMPLEMENTED. Now the gateway's UNIMPLEMENTED is raised."""
    models = fake()
    with pytest.raises(maas_client.UnimplementedError):
        models.list()
    with pytest.raises(maas_client.UnimplementedError):
        models.list_page(page_size=10)


def test_a_missing_backend_makes_the_kind_of_a_name_unknown(fake):
    """A review: with the discriminative backend down, get()/delete() of a name the generative service holds
    picked the generative model, though the down backend may hold the name too (then a delete removes the wrong
    one). Now UNAVAILABLE naming the backend; with kind= the call goes ahead."""
    down = ["maas.discriminative.v1.DiscriminativeService: UNAVAILABLE: no backend is reachable"]
    models = fake(gateway=FakeListing([model("shared")], missing_backends=down))
    with pytest.raises(maas_client.UnavailableError, match="which service holds model 'shared'.*kind="):
        models._kind_of("shared", "DeleteModel", None)
    assert fake(gateway=FakeListing([model("shared")]))._kind_of("shared", "DeleteModel", None) == "generative"


def test_a_channel_given_asks_for_pages_within_grpcs_default_receive_limit():
    """A review: Models(channel=...) asked for 64 MiB pages while a grpc channel made without options receives
    4 MiB, so list() failed RESOURCE_EXHAUSTED on a large store. Unless max_message_bytes says otherwise, such a
    channel is taken to receive gRPC's default."""
    listing = FakeListing([model("a")])
    server, target = serve({"gateway": listing})
    try:
        with grpc.insecure_channel(target) as channel:
            assert len(maas_client.Models(channel=channel, timeout=10).list()) == 1
            assert len(maas_client.Models(channel=channel, timeout=10, max_message_bytes=1 << 20).list()) == 1
        assert len(maas_client.Models(target, timeout=10).list()) == 1
        assert listing.max_page_bytes == [4 << 20, 1 << 20, 64 << 20]
    finally:
        server.stop(None)


def test_the_kind_of_a_name_is_found_in_its_first_small_page(fake):
    """A review: get()/delete() without kind listed every model whose name begins with the name (every page of
    name_prefix=name) to find its service. The name's own entries sort before the longer names, so the pages are
    read (of RESOLVE_PAGE_SIZE entries) until one holds another name."""
    longer = [model(f"base{i}", kind=("generative", "discriminative")[i % 2]) for i in range(40)]
    gateway = FakeListing([*longer, model("base", version=3, kind="discriminative")], page_cap=10)
    models = fake(gateway=gateway)
    assert models._kind_of("base", "GetModel", None) == "discriminative"
    assert maas_client.models.RESOLVE_PAGE_SIZE == 8 and gateway.requests == [(8, "")]
    # get() asks the one page, then the service (which this fake does not serve).
    with pytest.raises(maas_client.UnimplementedError):
        models.get("base")
    assert len(gateway.requests) == 2
    # A name not stored but the start of the others: one page too.
    with pytest.raises(maas_client.NotFoundError):
        models.delete("bas")
    assert len(gateway.requests) == 3
    # Without a gateway: one page of each service.
    gen = FakeListing([m for m in longer if m.type == common.GENERATIVE], page_cap=10)
    disc = FakeListing([*[m for m in longer if m.type == common.DISCRIMINATIVE], model("base", kind="discriminative")],
                       page_cap=10)
    assert fake(generative=gen, discriminative=disc)._kind_of("base", "GetModel", None) == "discriminative"
    assert gen.requests == [(8, "")] and disc.requests == [(8, "")]


def test_the_kind_of_a_name_reads_on_while_pages_hold_the_name_only(fake):
    """Pages cut short (the message budget) may leave the name's other entries to the next pages."""
    entries = [model("both"), model("both", kind="discriminative"), *[model(f"both-{i}") for i in range(5)],
               *[model(f"damaged-{i}") for i in range(5)]]
    gateway = FakeListing(entries, [damaged("damaged", kind="discriminative")], page_cap=1)
    models = fake(gateway=gateway)
    with pytest.raises(maas_client.FailedPreconditionError, match="both a generative and a discriminative"):
        models._kind_of("both", "GetModel", None)
    assert len(gateway.requests) == 3  # "both" twice, then "both-0"
    assert models._kind_of("damaged", "DeleteModel", None) == "discriminative"
    assert len(gateway.requests) == 5
    down = FakeListing(entries, [damaged("damaged", kind="discriminative")], page_cap=1, missing_backends=[
        "maas.generative.v1.GenerativeService: UNAVAILABLE: down"])
    with pytest.raises(maas_client.UnavailableError, match="which service holds model 'damaged'"):
        fake(gateway=down)._kind_of("damaged", "DeleteModel", None)
