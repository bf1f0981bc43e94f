"""One gRPC channel to a maas endpoint (a service or the gateway) with its security and deadline options.

    conn = Connection("127.0.0.1:50051", timeout=30, token="s3cret", root_certificates="ca.pem")
    gen = GenerativeClient(conn)

Every call carries a deadline, the call's own `timeout=` or the connection's default, but for the streams whose
length the caller sets (sample, sample_batches, classify_stream), which have none unless given `timeout=`, as in the
Go and TypeScript clients. gRPC failures are raised as the typed exceptions of maas_client.errors.
"""

from __future__ import annotations

import numbers
import operator
import os
import pathlib
import ssl
from typing import Any, Iterable, Iterator, List, Mapping, NoReturn, Optional, Sequence, Tuple, TypeVar, Union

import grpc
import numpy as np
from google.protobuf.descriptor import FileDescriptor

from maas_client.errors import CancelledError, InvalidArgumentError, from_rpc_error

# PEM content (bytes, or a str that starts with "-----BEGIN"), or the path of a PEM file (any other str, a PathLike).
PemSource = Union[bytes, str, "os.PathLike[str]"]

# Target when none is given and $MAAS_TARGET is unset: the gateway of `make run`.
DEFAULT_TARGET = "127.0.0.1:50051"
# Default deadline of every call, seconds.
DEFAULT_TIMEOUT = 60.0
# The longest deadline a call is given, seconds (about 31.7 years): a longer timeout, math.inf among them, means no
# deadline. gRPC turns a timeout into an absolute time in int64 nanoseconds, which overflows for timeouts from about
# 7e9 s on (inf too) into a deadline in the past: every call then failed at once with DEADLINE_EXCEEDED.
MAX_TIMEOUT = 1e9
# Default cap on message sizes in both directions, bytes (the servers' default --max_message_bytes is 64 MiB).
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20
# What a grpc.Channel made elsewhere receives unless it was told otherwise (gRPC's default).
GRPC_DEFAULT_MAX_RECEIVE_BYTES = 4 << 20
# Default longest wait between two connection attempts to a server that is down, seconds. gRPC's own cap is 120 s
# (first wait 1 s, then x1.6 each time): after an outage of a minute a client kept failing calls at once with
# UNAVAILABLE for 6-13 s after the server was back, and for minutes after a longer outage. 5 s bounds that to about
# 6 s (the cap plus gRPC's 20% jitter) whatever the outage, while a fleet of clients retries a recovering server at a
# fifth of the rate of the gateway's 1 s cap, which serves one process's few channels to its local backends.
DEFAULT_RECONNECT_BACKOFF_MAX = 5.0
# The longest reconnect_backoff_max, seconds: gRPC takes it in int32 milliseconds.
MAX_RECONNECT_BACKOFF_MAX = ((1 << 31) - 1) / 1000
# gRPC's first wait between connection attempts (ms), kept unless reconnect_backoff_max is shorter.
_GRPC_INITIAL_RECONNECT_BACKOFF_MS = 1000

Req = TypeVar("Req")
Resp = TypeVar("Resp")
T = TypeVar("T")


def _is_pem_text(source: object) -> bool:
    """Whether source is PEM content given as a str (rather than a file's path): it begins with a -----BEGIN line."""
    return isinstance(source, str) and source.lstrip("\ufeff \t\r\n").startswith("-----BEGIN")


def _shown_path(source: Union[str, "os.PathLike[str]"]) -> str:
    """How an unreadable PEM source is named in an error: a path as it is when it could be one (a PathLike, or a str
    of one printable line); otherwise a description, never the str itself (it may be key material)."""
    if not isinstance(source, str):
        return str(source)
    if source.isprintable() and 0 < len(source) <= 4096:
        return source
    return (f"(a str of {len(source)} characters, which is neither PEM content, beginning with -----BEGIN, nor the "
            "path of a file)")


def _read_pem(source: Optional[PemSource], what: str) -> Optional[bytes]:
    """The PEM bytes of a security option: bytes as they are, a str beginning with -----BEGIN as PEM content, any
    other str (or a PathLike) as the path of a PEM file. The errors name the option and never quote PEM content."""
    if source is None:
        return None
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if _is_pem_text(source):
        assert isinstance(source, str)
        return source.lstrip("\ufeff \t\r\n").encode("utf-8")  # a BOM is no PEM (the CA check reads ASCII)
    check(isinstance(source, (str, os.PathLike)),
          f"{what} must be PEM content (bytes, or a str beginning with -----BEGIN) or the path of a PEM file, got "
          f"{type(source).__name__}")
    try:
        return pathlib.Path(source).read_bytes()
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
    # Raised outside the handler, so that the OSError (whose message holds the path) is not even its __context__.
    raise ValueError(f"{what}: cannot read {_shown_path(source)}: {reason}")


def _read_ca(source: Optional[PemSource]) -> Optional[bytes]:
    """root_certificates read (_read_pem) and checked to hold a PEM certificate: gRPC takes anything and every call
    then failed UNAVAILABLE with a handshake error that did not name the file."""
    data = _read_pem(source, "root_certificates")
    if data is None:
        return None
    if isinstance(source, (bytes, bytearray, memoryview)):
        where = "the bytes given"
    elif _is_pem_text(source):
        where = "the PEM text given"
    else:
        where = str(source)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=data.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"root_certificates: {where} holds no PEM certificate (-----BEGIN CERTIFICATE----- ...); "
                         "give the PEM file of the CA that signed the server's certificate") from e
    return data


def timeout_seconds(timeout: object, what: str = "timeout") -> Optional[float]:
    """The gRPC timeout of a `timeout` argument: seconds > 0 (an int, float or numpy number), None (no deadline) for
    math.inf and anything above MAX_TIMEOUT. Anything else (0, a negative number, NaN, a str, a bool, None) is an
    InvalidArgumentError naming `what`."""
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"{what} must be a number of seconds > 0 (math.inf: no deadline), got "
                                   f"{_type_and_value(timeout)}")
    seconds = float(timeout)
    check(seconds > 0, f"{what} must be > 0 seconds (math.inf: no deadline), got {timeout}")
    return None if seconds > MAX_TIMEOUT else seconds


def reconnect_backoff_options(reconnect_backoff_max: object) -> List[Tuple[str, int]]:
    """The gRPC channel options of `reconnect_backoff_max` (seconds, 0.001 to MAX_RECONNECT_BACKOFF_MAX): the cap of
    the wait between connection attempts, and the first wait (gRPC's 1 s, or the cap when shorter). Anything else
    (0, a negative number, NaN, inf, a str, a bool, None) is an InvalidArgumentError naming reconnect_backoff_max.

    grpc.min_reconnect_backoff_ms is left alone: gRPC core reads it as the shortest time a connection attempt is
    given (default 20 s), which a short value would cut for a slow network or TLS handshake."""
    if isinstance(reconnect_backoff_max, bool) or not isinstance(reconnect_backoff_max, numbers.Real):
        raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT,
                                   "reconnect_backoff_max must be a number of seconds > 0, got "
                                   f"{_type_and_value(reconnect_backoff_max)}")
    seconds = float(reconnect_backoff_max)
    check(0.001 <= seconds <= MAX_RECONNECT_BACKOFF_MAX,
          f"reconnect_backoff_max must be a number of seconds in [0.001, {MAX_RECONNECT_BACKOFF_MAX}] (the longest "
          f"wait between connection attempts), got {reconnect_backoff_max}")
    max_ms = round(seconds * 1000)
    return [("grpc.initial_reconnect_backoff_ms", min(_GRPC_INITIAL_RECONNECT_BACKOFF_MS, max_ms)),
            ("grpc.max_reconnect_backoff_ms", max_ms)]


def _header_value_problem(value: str) -> Optional[str]:
    """Why value cannot be a gRPC (HTTP/2) header value, which carries printable ASCII only (space to "~"), or None.
    Names the character's position and kind, never the value (gRPC would fail every call with INTERNAL "Invalid
    metadata")."""
    for i, c in enumerate(value):
        if ord(c) < 0x20 or ord(c) == 0x7F:
            return f"its character {i + 1} of {len(value)} is a control character (U+{ord(c):04X})"
        if ord(c) > 0x7E:
            return f"its character {i + 1} of {len(value)} is not ASCII"
    return None


class Connection:
    """A channel to `target` ("host:port" or any gRPC target such as "dns:///maas:50051"; default $MAAS_TARGET,
    else 127.0.0.1:50051, where `make run` serves the gateway).

    Security:
      tls: use TLS with the system's root certificates (implied by any of the certificate options).
      root_certificates: the PEM of the CA that signed the server's certificate.
      client_certificate, client_key: the PEMs of this client's certificate and key (mutual TLS).
      Each PEM is bytes or a str of PEM content (beginning with -----BEGIN, as read from a PEM file in text mode
      or from an environment variable), or the path of a PEM file (any other str, or a PathLike); an error never
      quotes PEM content.
      server_name: the name to check the server's certificate against, when it differs from the target's host.
      token / token_file: sent as `authorization: Bearer <token>` on every call (surrounding whitespace is
        ignored; an empty token is a ValueError, as is one that is not printable ASCII, all the header carries: the
        message names the character's position, never the token), as the servers' --auth_token_file requires for
        calls that change state.
    timeout: default deadline of every call in seconds (> 0), but sample, sample_batches and classify_stream, whose
      length the caller sets (n and the pace of reading; the texts, possibly endless), which have no deadline unless
      given one; each method also takes its own `timeout=`.
      math.inf means no deadline, as does any timeout above MAX_TIMEOUT (10**9 s, about 31.7 years: gRPC cannot
      represent much longer deadlines). Anything but a number > 0 is an InvalidArgumentError naming `timeout`.
    max_message_bytes: the largest message sent or received (default 64 MiB, the servers' default); listings ask
      for pages no larger. With channel=, the channel's receive limit (default gRPC's 4 MiB).
    reconnect_backoff_max: the longest wait, in seconds, between two attempts to connect to a server that is down
      (default DEFAULT_RECONNECT_BACKOFF_MAX, 5 s; gRPC's own is 120 s), so that calls succeed again within about
      that long (plus gRPC's 20% jitter) after the server is back; until then they fail at once with UNAVAILABLE.
      A number of seconds from 0.001 to MAX_RECONNECT_BACKOFF_MAX; anything else is an InvalidArgumentError naming
      reconnect_backoff_max. Not with channel=.
    options: further gRPC channel options, (name, value) pairs, applied last.
    channel: an existing grpc.Channel to use instead (the security options and reconnect_backoff_max must then be
      None).
    """

    def __init__(self, target: Optional[str] = None, *, timeout: float = DEFAULT_TIMEOUT, tls: bool = False,
                 root_certificates: Optional[PemSource] = None, client_certificate: Optional[PemSource] = None,
                 client_key: Optional[PemSource] = None, server_name: Optional[str] = None,
                 token: Optional[str] = None, token_file: Optional[Union[str, "os.PathLike[str]"]] = None,
                 max_message_bytes: Optional[int] = None, reconnect_backoff_max: Optional[float] = None,
                 options: Sequence[Tuple[str, Union[str, int]]] = (),
                 channel: Optional[grpc.Channel] = None) -> None:
        self._timeout = timeout_seconds(timeout)
        backoff_options = reconnect_backoff_options(
            DEFAULT_RECONNECT_BACKOFF_MAX if reconnect_backoff_max is None else reconnect_backoff_max)
        check(target is None or isinstance(target, str),
              f"target must be a str (host:port), got {type(target).__name__}")
        check(server_name is None or isinstance(server_name, str),
              f"server_name must be a str, got {type(server_name).__name__}")
        if (client_certificate is None) != (client_key is None):
            raise ValueError("client_certificate and client_key go together (mutual TLS needs both)")
        if token is not None and token_file is not None:
            raise ValueError("give token or token_file, not both")
        if token_file is not None:
            try:
                token = pathlib.Path(token_file).read_text(encoding="utf-8").strip()
            except OSError as e:
                raise ValueError(f"token_file: cannot read {token_file}: {e.strerror}") from e
            if not token:
                raise ValueError(f"token_file {token_file} is empty")
        elif token is not None:
            check(isinstance(token, str), f"token must be a str, got {type(token).__name__}")
            token = token.strip()  # as the servers read their --auth_token_file
            if not token:
                raise ValueError("token is empty")
        if token is not None:
            problem = _header_value_problem(token)
            if problem is not None:  # never quote the token: errors end up in logs
                source = f"the token in token_file {token_file}" if token_file is not None else "token"
                raise ValueError(f"{source} cannot be sent in the authorization header: {problem}; a token is "
                                 "printable ASCII (space to ~)")
        target = target or os.environ.get("MAAS_TARGET") or DEFAULT_TARGET
        self.target = target
        self._closed = False
        self.timeout = float(timeout)
        self._metadata: Tuple[Tuple[str, Union[str, bytes]], ...] = ()
        if token is not None:
            self._metadata = (("authorization", f"Bearer {token}"),)
        secure = tls or root_certificates is not None or client_certificate is not None
        # The largest message this client receives, bytes (<= 0: no limit): the listings ask the servers for pages
        # no larger (ListModelsRequest.max_page_bytes). With channel=, max_message_bytes stands for the channel's,
        # gRPC's default 4 MiB when not given (a review saw 64 MiB asked for on such a channel, and refused).
        if max_message_bytes is None:
            max_message_bytes = GRPC_DEFAULT_MAX_RECEIVE_BYTES if channel is not None else DEFAULT_MAX_MESSAGE_BYTES
        max_message_bytes = check_int(max_message_bytes, "max_message_bytes", -(1 << 31), (1 << 31) - 1)
        self.max_receive_bytes = max_message_bytes
        if channel is not None:
            if secure or server_name is not None:
                raise ValueError("channel= is used as given; configure its security where it was made")
            if reconnect_backoff_max is not None:
                raise ValueError("channel= is used as given; configure its reconnect backoff where it was made "
                                 "(grpc.max_reconnect_backoff_ms)")
            self.channel = channel
            return
        channel_options: List[Tuple[str, Union[str, int]]] = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            *backoff_options,
            *options,
        ]
        for name, value in channel_options:  # options= may set it again; the last one counts
            if name == "grpc.max_receive_message_length" and isinstance(value, int):
                self.max_receive_bytes = value
        if server_name is not None:
            channel_options.append(("grpc.ssl_target_name_override", server_name))
        if secure:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read_ca(root_certificates),
                private_key=_read_pem(client_key, "client_key"),
                certificate_chain=_read_pem(client_certificate, "client_certificate"))
            self.channel = grpc.secure_channel(target, credentials, options=channel_options)
        else:
            self.channel = grpc.insecure_channel(target, options=channel_options)

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Closes the channel: calls in flight fail, and later calls raise CancelledError (as in the Go and
        TypeScript clients), streams made before but read after close() among them."""
        self._closed = True
        self.channel.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ----------------------------------------------------------------------------------------------------
    def deadline(self, timeout: Optional[float], default: bool = True) -> Optional[float]:
        """The gRPC timeout of one call: `timeout` when given (> 0), else the connection's default (None, no
        deadline, when not `default`); None (no deadline) for math.inf and timeouts above MAX_TIMEOUT (see
        timeout_seconds)."""
        if timeout is None:
            return self._timeout if default else None
        return timeout_seconds(timeout)

    def _check_open(self, method: str) -> None:
        """CancelledError when this connection was closed: gRPC would raise a bare ValueError."""
        if self._closed:
            raise _closed_error(method)

    def unary(self, method: str, fn: "grpc.UnaryUnaryMultiCallable[Req, Resp]", request: Req,
              timeout: Optional[float]) -> Resp:
        """One unary call; a grpc.RpcError becomes the typed MaasError."""
        deadline = self.deadline(timeout)
        self._check_open(method)
        try:
            return fn(request, timeout=deadline, metadata=self._metadata)
        except grpc.RpcError as e:
            raise from_rpc_error(e, method) from e
        except ValueError as e:
            _raise_closed_channel_as_cancelled(e, method)

    def unary_stream(self, method: str, fn: "grpc.UnaryStreamMultiCallable[Req, Resp]", request: Req,
                     timeout: Optional[float], *, default_deadline: bool = True) -> "Stream[Resp]":
        """A server stream as a Stream (see there for what cancels the call, so that the server stops producing).
        Without `timeout`, the connection's default deadline unless not `default_deadline` (then none: a stream
        whose length the caller sets)."""
        return Stream(self._unary_stream(method, fn, request, timeout, default_deadline))

    def _unary_stream(self, method: str, fn: "grpc.UnaryStreamMultiCallable[Req, Resp]", request: Req,
                      timeout: Optional[float], default_deadline: bool) -> Iterator[Resp]:
        deadline = self.deadline(timeout, default_deadline)
        self._check_open(method)
        try:
            call = fn(request, timeout=deadline, metadata=self._metadata)
        except ValueError as e:
            _raise_closed_channel_as_cancelled(e, method)
        try:
            for response in call:
                yield response
        except grpc.RpcError as e:
            raise from_rpc_error(e, method) from e
        finally:
            call.cancel()

    def stream_unary(self, method: str, fn: "grpc.StreamUnaryMultiCallable[Req, Resp]", requests: Iterable[Req],
                     timeout: Optional[float]) -> Resp:
        """A client stream from a lazily consumed iterable. An exception raised while producing the requests
        (e.g. a bad input row) is re-raised as itself, not as the CANCELLED status it causes."""
        deadline = self.deadline(timeout)
        self._check_open(method)
        source = _TrackedIterable(requests)
        try:
            return fn(iter(source), timeout=deadline, metadata=self._metadata)
        except grpc.RpcError as e:
            if source.error is not None:
                raise source.error from None
            raise from_rpc_error(e, method) from e
        except ValueError as e:
            if source.error is e:
                raise
            _raise_closed_channel_as_cancelled(e, method)

    def stream_stream(self, method: str, fn: "grpc.StreamStreamMultiCallable[Req, Resp]",
                      requests: Iterable[Req], timeout: Optional[float], *,
                      default_deadline: bool = True) -> "Stream[Resp]":
        """A bidirectional stream: requests consumed lazily, responses yielded as they arrive, as a Stream (see
        there for what cancels the call). The deadline as unary_stream's."""
        return Stream(self._stream_stream(method, fn, requests, timeout, default_deadline))

    def _stream_stream(self, method: str, fn: "grpc.StreamStreamMultiCallable[Req, Resp]",
                       requests: Iterable[Req], timeout: Optional[float], default_deadline: bool) -> Iterator[Resp]:
        deadline = self.deadline(timeout, default_deadline)
        self._check_open(method)
        source = _TrackedIterable(requests)
        try:
            call = fn(iter(source), timeout=deadline, metadata=self._metadata)
        except ValueError as e:
            _raise_closed_channel_as_cancelled(e, method)
        try:
            for response in call:
                yield response
        except grpc.RpcError as e:
            if source.error is not None:
                raise source.error from None
            raise from_rpc_error(e, method) from e
        finally:
            call.cancel()
        if source.error is not None:
            raise source.error


def _closed_error(method: str) -> CancelledError:
    return CancelledError(grpc.StatusCode.CANCELLED, "the client is closed (its close() was called, its with block "
                          "ended, or its channel was closed); make a new one", method)


def _raise_closed_channel_as_cancelled(error: ValueError, method: str) -> NoReturn:
    """Raises CancelledError when gRPC raised error because the channel was closed (by whoever made a channel= given
    to Connection): "Cannot invoke RPC on closed channel!" (unary) or "Cannot invoke RPC: Channel closed!" (streams);
    else error itself."""
    if str(error).startswith("Cannot invoke RPC"):
        raise _closed_error(method) from error
    raise error


class Stream(Iterator[T]):
    """The responses of a streaming call (sample, sample_batches, stream_estimate, classify_stream), read lazily as
    they arrive. The call is cancelled, so that the server stops working on it, when the stream is closed before its
    end: by close(), by the end of a `with` block, or when its last reference dies (CPython closes a generator
    then). A for statement cannot close an iterator it does not own, so what cancels after a `break` depends on where
    the stream is held:

        for x in gen.sample("m", n):        # the loop holds the only reference: break cancels the call
            break
        with gen.sample("m", n) as stream:  # held in a variable: the end of the with block cancels it
            for x in stream:
                break
        stream = gen.sample("m", n)         # without a with block: only stream.close() (or del stream) cancels it
    """

    def __init__(self, responses: Iterator[T]) -> None:
        self._responses = responses

    def __iter__(self) -> "Stream[T]":
        return self

    def __next__(self) -> T:
        return next(self._responses)

    def close(self) -> None:
        """Cancels the call if it is still running (nothing happens once it has ended)."""
        close = getattr(self._responses, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> "Stream[T]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _TrackedIterable(Iterable[Req]):
    """Remembers the exception that ended the wrapped iterable (gRPC only sees a cancelled call)."""

    def __init__(self, items: Iterable[Req]) -> None:
        self._items = items
        self.error: Optional[BaseException] = None

    def __iter__(self) -> Iterator[Req]:
        try:
            yield from self._items
        except Exception as e:
            self.error = e
            raise


ConnectionLike = Union[str, Connection, None]


def connect(target: ConnectionLike, **options: Any) -> Tuple[Connection, bool]:
    """(connection, owned): a Connection made from a target string and options, or the given one (not owned)."""
    if isinstance(target, Connection):
        if options:
            raise ValueError(f"options {sorted(options)} apply only when a target string is given")
        return target, False
    return Connection(target, **options), True


def method_path(file: FileDescriptor, service: str, name: str) -> str:
    """'/<package>.<Service>/<Method>' of a method in a generated file; fails loudly if the contract lost it."""
    descriptor = file.services_by_name[service]
    if name not in descriptor.methods_by_name:
        raise RuntimeError(f"{descriptor.full_name} has no method {name}: maas_client and proto/ are out of step")
    return f"/{descriptor.full_name}/{name}"


def check(condition: bool, message: str) -> None:
    """Client-side input check: raises InvalidArgumentError (a ValueError) like the server would."""
    if not condition:
        raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT, message)


UINT32_MAX = (1 << 32) - 1
UINT64_MAX = (1 << 64) - 1
INT64_MAX = (1 << 63) - 1


def check_int(value: Any, what: str, low: int = 0, high: int = UINT64_MAX) -> int:
    """Client-side check of an integer field: an int (or numpy integer) in [low, high], else InvalidArgumentError
    naming the field (protobuf would raise a bare TypeError / ValueError)."""
    try:
        n = operator.index(value)
    except TypeError:
        raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"{what} must be an integer, got {value!r}") from None
    if not low <= n <= high:
        raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"{what} must be in [{low}, {high}], got {n}")
    return n


def _type_and_value(value: Any) -> str:
    shown = repr(value)
    return f"{type(value).__name__} {shown if len(shown) <= 40 else shown[:37] + '...'}"


def check_str(value: Any, what: str) -> str:
    """Client-side check of a string field (a model name, a description, ...): a str holding text (no lone
    surrogate), else InvalidArgumentError naming the field (protobuf would raise a bare TypeError / ValueError)."""
    if not isinstance(value, str):
        raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"{what} must be a str, got {_type_and_value(value)}")
    check_text(value, what, f"{what} must be text")
    return str(value)


def check_text(value: str, what: str, must: str) -> None:
    """InvalidArgumentError "<what>: lone surrogate U+XXXX at character i: <must>" when the str value holds a lone
    surrogate (it cannot be encoded as UTF-8, so protobuf would raise a bare ValueError)."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            check(False, f"{what}: lone surrogate U+{ord(value[e.start]):04X} at character {e.start}: {must}")


def check_bool(value: Any, what: str) -> bool:
    """Client-side check of a bool field: a bool, a numpy bool or the integer 0 or 1 (what protobuf took), else
    InvalidArgumentError naming the field (protobuf would raise a bare TypeError, or take any integer as true)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    try:
        n = operator.index(value)
    except TypeError:
        n = None
    if n not in (0, 1):
        raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"{what} must be a bool, got {_type_and_value(value)}")
    return bool(n)


def check_string_map(value: Any, what: str) -> dict[str, str]:
    """Client-side check of a map<string, string> field (a model's labels): a mapping of str to str, else
    InvalidArgumentError naming the field and the entry."""
    check(isinstance(value, Mapping), f"{what} must be a mapping of str to str, got {_type_and_value(value)}")
    out: dict[str, str] = {}
    for key, item in value.items():
        key = check_str(key, f"{what} key")
        out[key] = check_str(item, f"{what}[{key!r}]")
    return out


def check_real(value: Any, what: str, low: float = 0.0) -> float:
    """Client-side check of a floating-point field: a real number (int, float, numpy number; not a bool, not a str)
    >= low, else InvalidArgumentError naming the field (NaN is not >= low)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"{what} must be a number, got {_type_and_value(value)}")
    number = float(value)
    check(number >= low, f"{what} must be >= {low:g}, got {value}")
    return number


def check_iterable(value: Any, what: str) -> None:
    """Client-side check that value can be iterated (texts, labels, weights), else InvalidArgumentError naming it:
    the iterables are consumed lazily, so that a bare TypeError would otherwise come from inside the stream."""
    try:
        iter(value)
    except TypeError:
        raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"{what} must be an iterable, got {_type_and_value(value)}") from None
