"""gRPC errors as typed exceptions: every failed call raises a subclass of MaasError carrying the status code and
the server's message.

    try:
        client.sample_array("nope", 10)
    except maas_client.NotFoundError as e:
        print(e.code, e.message)
"""

from __future__ import annotations

from typing import Dict, Type

import grpc


class MaasError(Exception):
    """A failed maas call: `code` is the gRPC status code, `message` the server's (or the client's) message."""

    def __init__(self, code: grpc.StatusCode, message: str, method: str = "") -> None:
        self.code = code
        self.message = message
        self.method = method
        where = f" in {method}" if method else ""
        super().__init__(f"{code.name}{where}: {message}")


class CancelledError(MaasError):
    """CANCELLED: the call was cancelled (by the client or the server shutting down)."""


class UnknownError(MaasError):
    """UNKNOWN."""


class InvalidArgumentError(MaasError, ValueError):
    """INVALID_ARGUMENT: bad input (shape, NaN, unknown family or parameter); the message names the field."""


class DeadlineExceededError(MaasError, TimeoutError):
    """DEADLINE_EXCEEDED: the call's deadline expired before it finished."""


class NotFoundError(MaasError, LookupError):
    """NOT_FOUND: no such model or version."""


class AlreadyExistsError(MaasError):
    """ALREADY_EXISTS."""


class PermissionDeniedError(MaasError, PermissionError):
    """PERMISSION_DENIED: a token was sent but is not the server's."""


class ResourceExhaustedError(MaasError):
    """RESOURCE_EXHAUSTED: a server limit (rows, samples, texts, concurrent calls, message size)."""


class FailedPreconditionError(MaasError):
    """FAILED_PRECONDITION: the request does not fit the model (e.g. data of the wrong dimension)."""


class AbortedError(MaasError):
    """ABORTED."""


class OutOfRangeError(MaasError):
    """OUT_OF_RANGE."""


class UnimplementedError(MaasError, NotImplementedError):
    """UNIMPLEMENTED: the server does not (yet) implement this method, family, vectorizer or classifier."""


class InternalError(MaasError):
    """INTERNAL: a server bug."""


class UnavailableError(MaasError, ConnectionError):
    """UNAVAILABLE: the server cannot be reached (or is shutting down); retrying later may help."""


class DataLossError(MaasError):
    """DATA_LOSS."""


class UnauthenticatedError(MaasError):
    """UNAUTHENTICATED: the call changes state and needs `authorization: Bearer <token>` (the client's token=)."""


_BY_CODE: Dict[grpc.StatusCode, Type[MaasError]] = {
    grpc.StatusCode.CANCELLED: CancelledError,
    grpc.StatusCode.UNKNOWN: UnknownError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRangeError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DATA_LOSS: DataLossError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
}


def error_for(code: grpc.StatusCode, message: str, method: str = "") -> MaasError:
    """The typed exception for a status code (MaasError itself for codes without a class, e.g. OK)."""
    return _BY_CODE.get(code, MaasError)(code, message, method)


def from_rpc_error(error: grpc.RpcError, method: str = "") -> MaasError:
    """The typed exception for a grpc.RpcError raised by a call (which is also a grpc.Call)."""
    code = error.code() if callable(getattr(error, "code", None)) else None
    message = (error.details() if callable(getattr(error, "details", None)) else None) or ""
    if not isinstance(code, grpc.StatusCode):
        return error_for(grpc.StatusCode.UNKNOWN, message or str(error), method)
    return error_for(code, message, method)
