"""Models: the model registry across both services (list / get / delete), through the gateway or a service.

    models = Models("127.0.0.1:50051")
    for info in models.list():
        print(info.name, info.version, info.kind, info.family)
    details = models.get("spam")        # info + full spec (PipelineSpec or GenerativeModelSpec)
    models.delete("spam", version=1)
"""

from __future__ import annotations

import dataclasses
from typing import Any, List, Optional

import grpc

from maas_client._service import ServiceClient, model_list
from maas_client.connection import ConnectionLike, check, connect, method_path
from maas_client.discriminative import DiscriminativeClient
from maas_client.errors import FailedPreconditionError, NotFoundError, UnimplementedError
from maas_client.generative import GenerativeClient
from maas_client.pb import common, gateway
from maas_client.types import ModelDetails, ModelInfo, ModelList, UnreadableVersion

KINDS = ("generative", "discriminative")


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
        ModelInfo whose `missing_backends` and `unreadable` say what it could not include (see ModelList)."""
        if kind is not None:
            return self._client(kind).list(name_prefix, all_versions=all_versions, timeout=timeout)
        request = common.ListModelsRequest(name_prefix=name_prefix, all_versions=all_versions)
        try:
            return model_list(self.connection.unary("ListModels", self._gateway_list, request, timeout))
        except UnimplementedError:
            pass  # not a gateway: ask each service that answers
        models: List[ModelInfo] = []
        unreadable: List[UnreadableVersion] = []
        for k in KINDS:
            try:
                listed = self._client(k).list(name_prefix, all_versions=all_versions, timeout=timeout)
            except UnimplementedError:
                continue
            models.extend(m if m.kind else dataclasses.replace(m, kind=k) for m in listed)
            unreadable.extend(b if b.kind else dataclasses.replace(b, kind=k) for b in listed.unreadable)
        return ModelList(sorted(models, key=lambda m: (m.name, m.version)), (),
                         sorted(unreadable, key=lambda b: (b.name, b.version)))

    def _kind_of(self, name: str, method: str, timeout: Optional[float]) -> str:
        """The kind of the service that has a model called `name` (found with list(), as the C++ CLI does):
        NotFoundError (naming `method`) when neither has it, FailedPreconditionError when both have it."""
        listed = self.list(name, timeout=timeout)
        # A model whose latest version cannot be read is still there: its service answers why (DATA_LOSS).
        kinds = {m.kind for m in [*listed, *listed.unreadable] if m.name == name}
        if "generative" in kinds and "discriminative" in kinds:
            raise FailedPreconditionError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"model {name!r} exists as both a generative and a discriminative model; give the type explicitly "
                "(kind='generative' or kind='discriminative')", method)
        for k in KINDS:
            if k in kinds:
                return k
        raise NotFoundError(grpc.StatusCode.NOT_FOUND, f"model {name!r} not found", method)

    def get(self, name: str, version: int = 0, *, kind: Optional[str] = None,
            timeout: Optional[float] = None) -> ModelDetails:
        """Info and full spec of a model version (0 = latest). Without `kind`, the service that has the name is
        found with list(): NotFoundError when no service has it, FailedPreconditionError when both do (then give
        `kind`)."""
        if kind is None:
            kind = self._kind_of(name, "GetModel", timeout)
        return self._client(kind).get(name, version, timeout=timeout)

    def delete(self, name: str, version: int = 0, *, kind: Optional[str] = None,
               timeout: Optional[float] = None) -> List[int]:
        """Deletes one version (or every version with version=0); returns the deleted versions. Without `kind`,
        the service is found as get() finds it (FailedPreconditionError when both services have the name)."""
        if kind is None:
            kind = self._kind_of(name, "DeleteModel", timeout)
        return self._client(kind).delete(name, version, timeout=timeout)
