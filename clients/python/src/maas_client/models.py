"""Models: the model registry across both services (list / get / delete), through the gateway or a service.

    models = Models("127.0.0.1:50051")
    for info in models.list():          # every model, asked for in pages
        print(info.name, info.version, info.kind, info.family)
    page = models.list_page(page_size=100)  # one page; the next: page_token=page.next_page_token
    details = models.get("spam")        # info + full spec (PipelineSpec or GenerativeModelSpec)
    models.delete("spam", version=1)
"""

from __future__ import annotations

import dataclasses
import re
import string
from typing import Any, Callable, List, Optional, Tuple, Union

import grpc

from maas_client._service import LIST_PAGE_SIZE, ServiceClient, list_all, list_request, model_list, model_ref
from maas_client.connection import ConnectionLike, check, connect, method_path
from maas_client.discriminative import DiscriminativeClient
from maas_client.errors import (FailedPreconditionError, InvalidArgumentError, NotFoundError, UnavailableError,
                                UnimplementedError)
from maas_client.generative import GenerativeClient
from maas_client.pb import common, gateway
from maas_client.types import ModelDetails, ModelInfo, ModelList, UnreadableVersion

KINDS = ("generative", "discriminative")
# Entries per ListModels page when get()/delete() look for the service of a name: the name's own entries (a model of
# each kind, unreadable versions) sort before every longer name that begins with it, so one small page usually
# answers, however many such names there are.
RESOLVE_PAGE_SIZE = 8
# The names a model can have, the store's rule (common/store/model_store.cc, ValidateModelName): 1 to 63 bytes of
# [a-z0-9._-], the first [a-z0-9], and no "..".
_MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
# The bytes of a name that the services' message about an invalid one quotes.
_SHOWN_NAME_BYTES = 80


class Models:
    """The models of a gateway (both kinds) or of a single service. `kind` ("generative" / "discriminative")
    picks a service; without it list() covers both and get()/delete() find the model in whichever has it (a name
    that both services have needs `kind`: FailedPreconditionError otherwise)."""

    def __init__(self, target: ConnectionLike = None, **options: Any) -> None:
        self.connection, self._owned = connect(target, **options)
        self.generative = GenerativeClient(self.connection)
        self.discriminative = DiscriminativeClient(self.connection)
        self._gateway_list = self.connection.channel.unary_unary(
            method_path(gateway.DESCRIPTOR, "Gateway", "ListModels"), common.ListModelsRequest.SerializeToString,
            common.ListModelsResponse.FromString)

    def close(self) -> None:
        if self._owned:
            self.connection.close()

    def __enter__(self) -> "Models":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _client(self, kind: str) -> ServiceClient:
        check(kind in KINDS, f"kind {kind!r} is not one of {', '.join(KINDS)}")
        return self.generative if kind == "generative" else self.discriminative

    def list(self, name_prefix: str = "", *, kind: Optional[str] = None, all_versions: bool = False,
             timeout: Optional[float] = None) -> ModelList:
        """Models sorted by (name, version), latest versions only unless all_versions. The result is a list of
        ModelInfo whose `missing_backends` and `unreadable` say what it could not include (see ModelList). Every
        model, however many: the listing is asked for in pages of LIST_PAGE_SIZE entries (list_page), each call
        with its own `timeout`; without a gateway, each service's listing page by page."""
        if kind is not None:
            return self._client(kind).list(name_prefix, all_versions=all_versions, timeout=timeout)
        # As the gateway sorts: name, version (all_versions only: otherwise an entry is a model), type.
        def key(entry: Union[ModelInfo, UnreadableVersion]) -> Tuple[str, int, int]:
            kind = KINDS.index(entry.kind) if entry.kind in KINDS else len(KINDS)
            return (entry.name, entry.version if all_versions else 0, kind)

        return self._gateway_or_services(
            lambda: list_all(lambda token: self._gateway_page(name_prefix, all_versions, LIST_PAGE_SIZE, token,
                                                              timeout)),
            lambda client: client.list(name_prefix, all_versions=all_versions, timeout=timeout),
            lambda models, unreadable: ModelList(sorted(models, key=key), (), sorted(unreadable, key=key)))

    def _gateway_or_services(self, gateway: Callable[[], ModelList], service: Callable[[ServiceClient], ModelList],
                             merge: Callable[[List[ModelInfo], List[UnreadableVersion]], ModelList] = (
                                 lambda models, unreadable: ModelList(models, (), unreadable))) -> ModelList:
        """gateway() when the target is a gateway; otherwise service(client) of each service that answers, typed,
        its entries concatenated and merged by `merge` (UnimplementedError, the gateway's, when none answers:
        nothing at the target lists models, which is not an empty, complete listing)."""
        try:
            return gateway()
        except UnimplementedError as error:
            not_a_gateway = error  # not a gateway: ask each service that answers
        models: List[ModelInfo] = []
        unreadable: List[UnreadableVersion] = []
        answered = False
        for k in KINDS:
            try:
                listed = _typed(service(self._client(k)), k)
            except UnimplementedError:
                continue
            answered = True
            models.extend(listed)
            unreadable.extend(listed.unreadable)
        if not answered:
            raise not_a_gateway
        return merge(models, unreadable)

    def list_page(self, name_prefix: str = "", *, kind: Optional[str] = None, all_versions: bool = False,
                  page_size: int = LIST_PAGE_SIZE, page_token: str = "",
                  timeout: Optional[float] = None) -> ModelList:
        """One page of list(): at most page_size (>= 1; the servers give at most 1000) entries, models and
        unreadable versions together in (name, version, kind) order, fewer when more would not fit in a message
        (the server's largest, or this client's max_message_bytes).
        The result's `next_page_token` is non-empty while entries may follow: pass it as `page_token` with the same
        name_prefix, kind and all_versions for the next page (a gateway's tokens work on the services and the
        reverse). Through a gateway, `missing_backends` names the backends whose models are missing from this
        page. A server older than paging answers the whole listing with an empty token. Without a gateway, the
        page of the service that answers; FailedPreconditionError when both services answer at this target
        (their pages cannot be merged into one: give `kind`, or call list())."""
        if kind is not None:
            return self._client(kind).list_page(name_prefix, all_versions=all_versions, page_size=page_size,
                                                page_token=page_token, timeout=timeout)
        try:
            return self._gateway_page(name_prefix, all_versions, page_size, page_token, timeout)
        except UnimplementedError as error:
            not_a_gateway = error  # not a gateway: ask each service that answers
        pages = []
        for k in KINDS:
            try:
                pages.append(_typed(self._client(k).list_page(name_prefix, all_versions=all_versions,
                                                              page_size=page_size, page_token=page_token,
                                                              timeout=timeout), k))
            except UnimplementedError:
                continue
        if len(pages) > 1:
            raise FailedPreconditionError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{self.connection.target} serves both the generative and the discriminative service without a "
                "gateway, and a page of each cannot be merged into one page; give kind='generative' or "
                "kind='discriminative', or call list() for the whole listing", "ListModels")
        if not pages:  # nothing at the target lists models
            raise not_a_gateway
        return pages[0]

    def _gateway_page(self, name_prefix: str, all_versions: bool, page_size: int, page_token: str,
                      timeout: Optional[float]) -> ModelList:
        """One page of the gateway's ListModels (UnimplementedError when the target is not a gateway)."""
        request = list_request(self.connection, name_prefix, all_versions, page_size, page_token)
        return model_list(self.connection.unary("ListModels", self._gateway_list, request, timeout))

    def _named(self, name: str, timeout: Optional[float]) -> ModelList:
        """The entries named `name` (and maybe some longer names): the listing of name_prefix=name in pages of
        RESOLVE_PAGE_SIZE, read until a page holds another name (the listing is ordered by name, and `name` sorts
        before every longer name that begins with it, so later pages have none of its entries) or none follows.
        Through a gateway, missing_backends of every page read; without one, each service's pages, typed."""
        def past_name(page: ModelList) -> bool:
            return any(e.name != name for e in [*page, *page.unreadable])

        return self._gateway_or_services(
            lambda: list_all(lambda token: self._gateway_page(name, False, RESOLVE_PAGE_SIZE, token, timeout),
                             past_name),
            lambda client: list_all(lambda token: client.list_page(name, page_size=RESOLVE_PAGE_SIZE,
                                                                   page_token=token, timeout=timeout),
                                    past_name))

    def _kind_of(self, name: str, method: str, timeout: Optional[float]) -> str:
        """The kind of the service that has a model called `name` (found in the listing, as the C++ CLI does, see
        _named): NotFoundError (naming `method`) when neither has it, FailedPreconditionError when both have it,
        UnavailableError when a backend did not answer the gateway. A name no model can have is the services'
        InvalidArgumentError, with their message, before anything is asked (the listing would have answered
        NotFoundError)."""
        if _MODEL_NAME.fullmatch(name) is None or ".." in name:
            raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT, _invalid_name_message(name), method)
        listed = self._named(name, timeout)
        # A model whose latest version cannot be read is still there: its service answers why (DATA_LOSS).
        kinds = {m.kind for m in [*listed, *listed.unreadable] if m.name == name}
        if "generative" in kinds and "discriminative" in kinds:
            raise FailedPreconditionError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"model {name!r} exists as both a generative and a discriminative model; give the type explicitly "
                "(kind='generative' or kind='discriminative')", method)
        if listed.missing_backends:
            # The backend that did not answer may hold the name too (a delete must not pick the other one).
            raise UnavailableError(
                grpc.StatusCode.UNAVAILABLE,
                f"cannot tell which service holds model {name!r}: a backend did not answer "
                f"({'; '.join(listed.missing_backends)}); retry later, or give the type explicitly "
                "(kind='generative' or kind='discriminative')", method)
        for k in KINDS:
            if k in kinds:
                return k
        raise NotFoundError(grpc.StatusCode.NOT_FOUND, f"model {name!r} not found", method)

    def get(self, name: str, version: int = 0, *, kind: Optional[str] = None,
            timeout: Optional[float] = None) -> ModelDetails:
        """Info and full spec of a model version (0 = latest). Without `kind`, the service that has the name is
        found in the listing (its first entries of that name, see _named): NotFoundError when no service has it,
        FailedPreconditionError when both do (then give `kind`), UnavailableError when a backend did not answer."""
        model_ref(name, version)  # both checked before anything is sent
        if kind is None:
            kind = self._kind_of(name, "GetModel", timeout)
        return self._client(kind).get(name, version, timeout=timeout)

    def delete(self, name: str, version: int = 0, *, kind: Optional[str] = None,
               timeout: Optional[float] = None) -> List[int]:
        """Deletes one version (or every version with version=0); returns the deleted versions. Without `kind`,
        the service is found as get() finds it (FailedPreconditionError when both services have the name)."""
        model_ref(name, version)  # both checked before anything is sent
        if kind is None:
            kind = self._kind_of(name, "DeleteModel", timeout)
        return self._client(kind).delete(name, version, timeout=timeout)


def _invalid_name_message(name: str) -> str:
    """The services' message about an invalid model name (common/store/model_store.cc, ValidateModelName): the name's
    UTF-8 bytes quoted as absl::CHexEscape writes them (at most _SHOWN_NAME_BYTES, then its length), and the rule."""
    data = name.encode("utf-8")
    quoted = _c_hex_escape(data[:_SHOWN_NAME_BYTES])
    shown = f'"{quoted}"' if len(data) <= _SHOWN_NAME_BYTES else f'"{quoted}"... ({len(data)} bytes)'
    return (f"invalid model name {shown}: a model name has 1 to 63 characters from [a-z0-9._-], starts with a "
            'lowercase letter or a digit, and does not contain ".."')


_C_ESCAPES = {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord('"'): '\\"', ord("'"): "\\'",
              ord("\\"): "\\\\"}


def _c_hex_escape(data: bytes) -> str:
    """absl::CHexEscape: \\n \\r \\t \\" \\' \\\\, other bytes outside printable ASCII as \\xhh, and a hex digit right
    after such an escape escaped too (so that it does not read as part of it)."""
    out: List[str] = []
    after_hex = False
    for byte in data:
        escaped = _C_ESCAPES.get(byte)
        hex_escape = escaped is None and (not 0x20 <= byte < 0x7F or (after_hex and chr(byte) in string.hexdigits))
        out.append(escaped if escaped is not None else f"\\x{byte:02x}" if hex_escape else chr(byte))
        after_hex = hex_escape
    return "".join(out)


def _typed(listed: ModelList, kind: str) -> ModelList:
    """A service's listing (or page) with `kind` on the entries whose service did not say theirs."""
    return ModelList((m if m.kind else dataclasses.replace(m, kind=kind) for m in listed), listed.missing_backends,
                     (b if b.kind else dataclasses.replace(b, kind=kind) for b in listed.unreadable),
                     listed.next_page_token)
