"""ServiceClient: what GenerativeClient and DiscriminativeClient share, the connection and the model calls.

Both services have the same model registry methods (GetModel with the service's own request and response,
ListModels and DeleteModel with the common messages) and the same lifetime (a connection that the client closes
when it made it).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Type, TypeVar

import grpc
from google.protobuf.descriptor import FileDescriptor

from maas_client.connection import (INT64_MAX, Connection, ConnectionLike, check, check_bool, check_int, check_str,
                                    check_string_map, connect, method_path)
from maas_client.errors import InternalError
from maas_client.pb import common
from maas_client.types import ModelDetails, ModelInfo, ModelList, UnreadableVersion

_Client = TypeVar("_Client", bound="ServiceClient")

# Entries per ListModels page that list() asks for: the largest page the servers give (they take larger page_size
# values as 1000), so a listing takes as few calls as the message size allows.
LIST_PAGE_SIZE = 1000
_INT32_MAX = (1 << 31) - 1


def model_ref(name: str, version: int) -> common.ModelRef:
    """The ModelRef of a call: name a str and version an integer in [0, 2**63 - 1] (0: the latest), else
    InvalidArgumentError naming the field (protobuf's would be a bare TypeError / ValueError)."""
    return common.ModelRef(name=check_str(name, "name"), version=check_int(version, "version", 0, INT64_MAX))


def create_request(request_type: Type[Any], spec_type: Type[Any], spec: Any, name: Optional[str],
                   labels: Optional[Mapping[str, str]], description: Optional[str]) -> Any:
    """The CreateModelRequest of a client's create(): from a spec (then `name` is required) or a whole request, whose
    name, labels and description those given override; each checked (InvalidArgumentError naming it)."""
    check(isinstance(spec, (spec_type, request_type)),
          f"spec must be a {spec_type.__name__} or a CreateModelRequest, got {type(spec).__name__}")
    if isinstance(spec, request_type):
        request = request_type()
        request.CopyFrom(spec)
    else:
        request = request_type(spec=spec)
    if name is not None:
        request.name = check_str(name, "name")
    check(bool(request.name), "create: name is required")
    if labels is not None:
        request.labels.clear()
        request.labels.update(check_string_map(labels, "labels"))
    if description is not None:
        request.description = check_str(description, "description")
    return request


def model_list(response: common.ListModelsResponse) -> ModelList:
    """A ListModelsResponse as a ModelList (one page of a listing: with its next_page_token)."""
    return ModelList((ModelInfo.from_proto(m) for m in response.models), response.missing_backends,
                     (UnreadableVersion.from_proto(b) for b in response.unreadable_versions),
                     response.next_page_token)


def list_request(connection: Connection, name_prefix: str, all_versions: bool, page_size: int,
                 page_token: str) -> common.ListModelsRequest:
    """The ListModelsRequest of one page: page_size an integer in [1, 2**31 - 1] and page_token a str, else
    InvalidArgumentError naming the field (nothing sent). max_page_bytes is the connection's receive limit (0 when it
    has none), so that the servers never send a page larger than this client takes."""
    page_size = check_int(page_size, "page_size", 1, _INT32_MAX)
    name_prefix = check_str(name_prefix, "name_prefix")
    all_versions = check_bool(all_versions, "all_versions")
    check(isinstance(page_token, str), f"page_token must be a str (a previous page's next_page_token), got "
          f"{type(page_token).__name__}")
    return common.ListModelsRequest(name_prefix=name_prefix, all_versions=all_versions, page_size=page_size,
                                    page_token=page_token, max_page_bytes=max(connection.max_receive_bytes, 0))


def list_all(page: Callable[[str], ModelList], last: Optional[Callable[[ModelList], bool]] = None) -> ModelList:
    """A whole listing from its pages: page(token) answers the page that starts at `token` ("": the first). Pages
    are asked for until one comes with an empty next_page_token (at once from a server that does not page), or
    until last(page) is true of one, and concatenated (each page is sorted and starts after the previous one's last
    entry, so the result is sorted); missing_backends holds each backend once, in the order they were first
    reported."""
    models: List[ModelInfo] = []
    unreadable: List[UnreadableVersion] = []
    missing: Dict[str, None] = {}  # an ordered set
    token = ""
    sent = {token}  # every token sent: one answered again would start a loop
    while True:
        listed = page(token)
        models.extend(listed)
        unreadable.extend(listed.unreadable)
        missing.update(dict.fromkeys(listed.missing_backends))
        if not listed.next_page_token or (last is not None and last(listed)):
            return ModelList(models, missing, unreadable)
        if listed.next_page_token in sent:  # the listing would never end
            raise InternalError(grpc.StatusCode.INTERNAL,
                                f"the server answered a page token it was sent before ({listed.next_page_token!r}) "
                                "as the next one: the listing does not advance", "ListModels")
        token = listed.next_page_token
        sent.add(token)


class ServiceClient:
    """Base of the service clients. `target` is "host:port" (default $MAAS_TARGET, else 127.0.0.1:50051) or a
    Connection; the keyword options are Connection's (timeout, tls, root_certificates, client_certificate,
    client_key, server_name, token, token_file, ...). Every method takes `timeout=` (seconds; default the
    connection's) and raises maas_client.errors.MaasError subclasses."""

    def __init__(self, target: ConnectionLike, options: dict[str, Any], file: FileDescriptor, service: str,
                 get_request: Type[Any], get_response: Type[Any]) -> None:
        self.connection, self._owned = connect(target, **options)
        self._file = file
        self._service = service
        self._get_request = get_request
        ch = self.connection.channel
        self._get = ch.unary_unary(self._path("GetModel"), get_request.SerializeToString, get_response.FromString)
        self._list = ch.unary_unary(self._path("ListModels"), common.ListModelsRequest.SerializeToString,
                                    common.ListModelsResponse.FromString)
        self._delete = ch.unary_unary(self._path("DeleteModel"), common.DeleteModelRequest.SerializeToString,
                                      common.DeleteModelResponse.FromString)

    def _path(self, name: str) -> str:
        """'/<package>.<Service>/<name>' of one of this service's methods."""
        return method_path(self._file, self._service, name)

    def close(self) -> None:
        """Closes the channel if this client made it."""
        if self._owned:
            self.connection.close()

    def __enter__(self: _Client) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- models ---------------------------------------------------------------------------------------------------
    def get(self, name: str, version: int = 0, *, timeout: Optional[float] = None) -> ModelDetails:
        """The model's info and full parameters (GenerativeModelSpec or PipelineSpec, by service); version 0 is
        the latest (an integer in [0, 2**63 - 1], else InvalidArgumentError naming it)."""
        request = self._get_request(model=model_ref(name, version))
        response = self.connection.unary("GetModel", self._get, request, timeout)
        return ModelDetails(info=ModelInfo.from_proto(response.info), spec=response.spec)

    def list(self, name_prefix: str = "", *, all_versions: bool = False,
             timeout: Optional[float] = None) -> ModelList:
        """The service's models sorted by (name, version), latest versions only unless all_versions; versions whose
        file cannot be read are in the result's `unreadable`. Every one of them, however many: the listing is
        asked for in pages of LIST_PAGE_SIZE entries (list_page), each call with its own `timeout`."""
        return list_all(lambda token: self.list_page(name_prefix, all_versions=all_versions, page_token=token,
                                                     timeout=timeout))

    def list_page(self, name_prefix: str = "", *, all_versions: bool = False, page_size: int = LIST_PAGE_SIZE,
                  page_token: str = "", timeout: Optional[float] = None) -> ModelList:
        """One page of list(): at most page_size (>= 1; the servers give at most 1000) entries, models and
        unreadable versions together in (name, version) order, fewer when more would not fit in the server's
        largest message or in this client's (max_message_bytes). The result's `next_page_token` is non-empty while
        entries may follow: pass it as `page_token` with the same name_prefix and all_versions for the next page. A
        server older than paging answers the whole listing with an empty token."""
        request = list_request(self.connection, name_prefix, all_versions, page_size, page_token)
        return model_list(self.connection.unary("ListModels", self._list, request, timeout))

    def delete(self, name: str, version: int = 0, *, timeout: Optional[float] = None) -> List[int]:
        """Deletes one version (or all with version=0); returns the deleted versions. A version that is not an
        integer in [0, 2**63 - 1] is an InvalidArgumentError naming it, nothing deleted."""
        ref = model_ref(name, version)
        request = common.DeleteModelRequest(name=ref.name, version=ref.version)
        return list(self.connection.unary("DeleteModel", self._delete, request, timeout).deleted_versions)
