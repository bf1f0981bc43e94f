"""ServiceClient: what GenerativeClient and DiscriminativeClient share, the connection and the model calls.

Both services have the same model registry methods (GetModel with the service's own request and response,
ListModels and DeleteModel with the common messages) and the same lifetime (a connection that the client closes
when it made it).
"""

from __future__ import annotations

from typing import Any, List, Optional, Type, TypeVar

from google.protobuf.descriptor import FileDescriptor

from maas_client.connection import INT64_MAX, ConnectionLike, check_int, connect, method_path
from maas_client.pb import common
from maas_client.types import ModelDetails, ModelInfo, ModelList, UnreadableVersion

_Client = TypeVar("_Client", bound="ServiceClient")


def model_list(response: common.ListModelsResponse) -> ModelList:
    """A ListModelsResponse as a ModelList."""
    return ModelList((ModelInfo.from_proto(m) for m in response.models), response.missing_backends,
                     (UnreadableVersion.from_proto(b) for b in response.unreadable_versions))


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
        version = check_int(version, "version", 0, INT64_MAX)
        request = self._get_request(model=common.ModelRef(name=name, version=version))
        response = self.connection.unary("GetModel", self._get, request, timeout)
        return ModelDetails(info=ModelInfo.from_proto(response.info), spec=response.spec)

    def list(self, name_prefix: str = "", *, all_versions: bool = False,
             timeout: Optional[float] = None) -> ModelList:
        """The service's models sorted by (name, version), latest versions only unless all_versions; versions whose
        file cannot be read are in the result's `unreadable`."""
        request = common.ListModelsRequest(name_prefix=name_prefix, all_versions=all_versions)
        return model_list(self.connection.unary("ListModels", self._list, request, timeout))

    def delete(self, name: str, version: int = 0, *, timeout: Optional[float] = None) -> List[int]:
        """Deletes one version (or all with version=0); returns the deleted versions. A version that is not an
        integer in [0, 2**63 - 1] is an InvalidArgumentError naming it, nothing deleted."""
        version = check_int(version, "version", 0, INT64_MAX)
        request = common.DeleteModelRequest(name=name, version=version)
        return list(self.connection.unary("DeleteModel", self._delete, request, timeout).deleted_versions)
