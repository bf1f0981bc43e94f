"""GenerativeClient: fit, create, sample and estimate generative models with numpy arrays in and out.

    with GenerativeClient("127.0.0.1:50051") as gen:
        gen.fit(x, "gaussian_mixture", name="blobs", n_components=3, seed=7)
        draws = gen.sample_array("blobs", 1000, seed=1)
        est = gen.estimate("blobs", x[:10], estimator="exact")
        est.log_likelihood  # numpy array, one value per row
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, List, Mapping, Optional, Union, cast

import numpy as np

from maas_client._params import set_fields
from maas_client._service import ServiceClient, create_request, model_ref
from maas_client.connection import (UINT32_MAX, ConnectionLike, Stream, check, check_bool, check_int, check_real,
                                    check_str, check_string_map)
from maas_client.pb import generative as pb
from maas_client.types import (ArrayLike, Estimate, FitResult, FloatArray, ModelDetails, ModelInfo, SampleBatch,
                               as_rows, from_matrix, to_matrix)

_SERVICE = "GenerativeService"
# The families FitModel knows, from the contract (FitConfig's oneof).
FIT_FAMILIES = tuple(f.name for f in pb.FitConfig.DESCRIPTOR.oneofs_by_name["family"].fields)
ESTIMATORS = tuple(v.name.lower() for v in pb.Estimator.DESCRIPTOR.values if v.number != 0)
# Rows per FitModel chunk of an array, when chunk_rows is not given, are chosen so a chunk is about this many bytes.
_CHUNK_BYTES = 1 << 20
# The most bytes of values (8 per value) in one FitModel chunk, whatever chunk_rows says and however large a chunk an
# iterable yields: 4 MiB less 64 KiB, as the C++ client's kDefaultFitChunkBytes, so that a chunk's message stays under
# gRPC's default 4 MiB limit (and far under the servers' 64 MiB). A single row wider than that goes alone.
MAX_CHUNK_BYTES = (4 << 20) - (64 << 10)


def _estimator(name: Optional[str]) -> str:
    """The Estimator value name of "exact", "prior", ... (None: unspecified, the server's choice)."""
    if name is None:
        return "ESTIMATOR_UNSPECIFIED"
    check(isinstance(name, str) and name.lower() in ESTIMATORS, f"estimator {name!r} is not one of {', '.join(ESTIMATORS)}")
    return name.upper()


class GenerativeClient(ServiceClient):
    """Client of maas.generative.v1.GenerativeService (directly or through the gateway).

    `target` is "host:port" (default $MAAS_TARGET, else 127.0.0.1:50051) or a Connection; the keyword options are Connection's (timeout, tls,
    root_certificates, client_certificate, client_key, server_name, token, token_file, ...). Every method takes
    `timeout=` (seconds; default the connection's, but sample / sample_batches / sample_array have none unless
    given one) and raises maas_client.errors.MaasError subclasses. get / list / delete are ServiceClient's.
    """

    def __init__(self, target: ConnectionLike = None, **options: Any) -> None:
        super().__init__(target, options, pb.DESCRIPTOR, _SERVICE, pb.GetModelRequest, pb.GetModelResponse)
        ch = self.connection.channel
        self._create = ch.unary_unary(self._path("CreateModel"), pb.CreateModelRequest.SerializeToString,
                                      pb.CreateModelResponse.FromString)
        self._fit = ch.stream_unary(self._path("FitModel"), pb.FitModelRequest.SerializeToString,
                                    pb.FitModelResponse.FromString)
        self._sample = ch.unary_stream(self._path("Sample"), pb.SampleRequest.SerializeToString,
                                       pb.SampleBatch.FromString)
        self._estimate = ch.unary_unary(self._path("EstimateLogLikelihood"),
                                        pb.EstimateLogLikelihoodRequest.SerializeToString,
                                        pb.EstimateLogLikelihoodResponse.FromString)
        self._stream_estimate = ch.unary_stream(self._path("StreamEstimate"),
                                                pb.StreamEstimateRequest.SerializeToString,
                                                pb.StreamEstimateResponse.FromString)

    # -- create / fit ---------------------------------------------------------------------------------------------
    def create(self, spec: Union[pb.GenerativeModelSpec, pb.CreateModelRequest], name: Optional[str] = None, *,
               labels: Optional[Mapping[str, str]] = None, description: Optional[str] = None,
               timeout: Optional[float] = None) -> ModelInfo:
        """Stores a model from explicit parameters: a GenerativeModelSpec (then `name` is required) or a whole
        CreateModelRequest such as maas_client.sklearn.export_generative() returns (`name`, `labels`,
        `description` override its fields when given). Returns the stored version."""
        request = create_request(pb.CreateModelRequest, pb.GenerativeModelSpec, spec, name, labels, description)
        return ModelInfo.from_proto(self.connection.unary("CreateModel", self._create, request, timeout).info)

    def fit(self, x: Union[ArrayLike, Iterable[ArrayLike]], family: str, *, name: str, seed: Optional[int] = None,
            labels: Optional[Mapping[str, str]] = None, description: str = "", chunk_rows: Optional[int] = None,
            on_rows: Optional[Callable[[int], None]] = None, timeout: Optional[float] = None,
            **hyperparameters: Any) -> FitResult:
        """Fits `family` ("uniform", "gaussian_mixture", "ppca", "factor_analysis", "bernoulli_mixture") to the
        rows of `x` and stores it under `name`. `x` is an N x D array, or an iterable of such chunks (streamed as
        they are produced, never all in memory). Each FitModel message holds at most chunk_rows rows (default: about
        1 MiB of an array; an iterable's chunks as they come) and at most MAX_CHUNK_BYTES of values: larger chunks
        are split, so that wide rows never pass the message size limit. Hyperparameters are the family's FitConfig fields, e.g.
        n_components=3, covariance_type="diag", tol=1e-4, latent_dim=2. `on_rows(n)` is called after each chunk
        is handed to gRPC with the number of rows in it (progress bars)."""
        check(family in FIT_FAMILIES, f"family {family!r} is not one of {', '.join(FIT_FAMILIES)}")
        if chunk_rows is not None:
            check_int(chunk_rows, "chunk_rows", 1)
        config = pb.FitConfig(name=check_str(name, "name"), description=check_str(description, "description"))
        if seed is not None:
            config.seed = check_int(seed, "seed")
        if labels is not None:
            config.labels.update(check_string_map(labels, "labels"))
        if not _is_chunk_sequence(x):
            x = as_rows(cast(ArrayLike, x))  # checked before anything is sent
        family_config = getattr(config, family)
        family_config.SetInParent()
        set_fields(family_config, hyperparameters, f"fit {family}")

        def requests() -> Iterator[pb.FitModelRequest]:
            yield pb.FitModelRequest(config=config)
            for chunk in _chunks(x, chunk_rows):
                yield pb.FitModelRequest(rows=to_matrix(chunk))
                if on_rows is not None:
                    on_rows(chunk.shape[0])

        response = self.connection.stream_unary("FitModel", self._fit, requests(), timeout)
        t = response.trace
        return FitResult(info=ModelInfo.from_proto(response.info),
                         log_likelihood=np.array(t.log_likelihood, dtype=np.float64), converged=t.converged,
                         n_iter=t.n_iter, num_rows=t.num_rows, seed=t.seed)

    # -- sample ---------------------------------------------------------------------------------------------------
    def sample_batches(self, name: str, n: int, *, seed: Optional[int] = None, batch_size: int = 0,
                       start_index: int = 0, include_latents: bool = False, version: int = 0,
                       timeout: Optional[float] = None) -> Stream[SampleBatch]:
        """Streams n samples as SampleBatch (x, latents, start_index, seed, model_version). The samples depend
        only on (model version, seed, index), never on batch_size; `start_index` selects a shard of the stream.
        Without a seed the server draws one and returns it in every batch. The Stream cancels the call when it is
        closed early: by close(), at the end of a `with` block, or when its last reference dies (a break out of a
        for statement that holds the only reference); one held in a variable needs close() or a with block. The
        call has no deadline unless given `timeout=` (not the connection's default: its length is the caller's,
        n samples at the pace they are read)."""
        def batches() -> Iterator[SampleBatch]:
            count = check_int(n, "n", 1)
            size = check_int(batch_size, "batch_size", 0, UINT32_MAX)
            start = check_int(start_index, "start_index")
            request = pb.SampleRequest(model=model_ref(name, version), num_samples=count, start_index=start,
                                       batch_size=size, include_latents=check_bool(include_latents, "include_latents"))
            if seed is not None:
                request.seed = check_int(seed, "seed")
            with self.connection.unary_stream("Sample", self._sample, request, timeout,
                                              default_deadline=False) as responses:
                for batch in responses:
                    latents = from_matrix(batch.latents) if batch.HasField("latents") and batch.latents.rows else None
                    yield SampleBatch(start_index=batch.start_index, x=from_matrix(batch.x), latents=latents,
                                      seed=batch.seed, model_version=batch.model_version)
        return Stream(batches())

    def sample(self, name: str, n: int, seed: Optional[int] = None, batch_size: int = 0, *, start_index: int = 0,
               version: int = 0, timeout: Optional[float] = None) -> Stream[FloatArray]:
        """Streams n samples as arrays of up to batch_size rows (0: the server's default); a Stream, closed as
        sample_batches' is, and without a deadline unless given `timeout=`, as sample_batches."""
        def arrays() -> Iterator[FloatArray]:
            with self.sample_batches(name, n, seed=seed, batch_size=batch_size, start_index=start_index,
                                     version=version, timeout=timeout) as batches:
                for batch in batches:
                    yield batch.x
        return Stream(arrays())

    def sample_array(self, name: str, n: int, seed: Optional[int] = None, *, batch_size: int = 0,
                     start_index: int = 0, version: int = 0, timeout: Optional[float] = None) -> FloatArray:
        """n samples as one n x D array (no deadline unless given `timeout=`, as sample_batches)."""
        parts = list(self.sample(name, n, seed, batch_size, start_index=start_index, version=version,
                                 timeout=timeout))
        return np.concatenate(parts, axis=0)

    # -- estimate -------------------------------------------------------------------------------------------------
    def _estimate_request(self, name: str, rows: ArrayLike, estimator: Optional[str], num_samples: int,
                          seed: Optional[int], version: int, ais: Optional[Mapping[str, Any]], row_offset: int,
                          sample_offset: int) -> pb.EstimateLogLikelihoodRequest:
        num_samples = check_int(num_samples, "num_samples")
        request = pb.EstimateLogLikelihoodRequest(model=model_ref(name, version),
                                                  x=to_matrix(rows, "rows"), estimator=_estimator(estimator),
                                                  num_samples=num_samples,
                                                  row_offset=check_int(row_offset, "row_offset"),
                                                  sample_offset=check_int(sample_offset, "sample_offset"))
        if seed is not None:
            request.seed = check_int(seed, "seed")
        if ais is not None:
            check(isinstance(ais, Mapping), f"ais must be a mapping of AisOptions fields, got {type(ais).__name__}")
            set_fields(request.ais, ais, "ais")
        return request

    def estimate(self, name: str, rows: ArrayLike, estimator: Optional[str] = None, num_samples: int = 0,
                 seed: Optional[int] = None, *, version: int = 0, ais: Optional[Mapping[str, Any]] = None,
                 row_offset: int = 0, sample_offset: int = 0, timeout: Optional[float] = None) -> Estimate:
        """log p(x) of each row with `estimator` ("exact", "prior", "importance", "ais"; None: exact where the
        family is tractable, else importance). Returns arrays: log_likelihood, standard_error, ess, pareto_k
        (k-hat), num_samples, exact_log_likelihood, ais_acceptance_rate, and the mergeable `statistics` of the
        weights. `ais` holds AisOptions fields (num_temperatures, ...).

        Sharding a job over calls (same seed): `row_offset` is the global index of the first row (row i is global
        row row_offset + i), `sample_offset` the global index of this call's first sample (AIS: chain) of every
        row. Calls over disjoint sample ranges draw disjoint samples; `a.statistics.merge(b.statistics)` is then
        what one call over the union reports (its log_likelihood, ess and standard_error)."""
        request = self._estimate_request(name, rows, estimator, num_samples, seed, version, ais, row_offset,
                                         sample_offset)
        return Estimate.from_proto(self.connection.unary("EstimateLogLikelihood", self._estimate, request, timeout))

    def stream_estimate(self, name: str, rows: ArrayLike, estimator: Optional[str] = None, num_samples: int = 0,
                        seed: Optional[int] = None, *, target_standard_error: float = 0.0, max_samples: int = 0,
                        version: int = 0, ais: Optional[Mapping[str, Any]] = None, row_offset: int = 0,
                        sample_offset: int = 0, timeout: Optional[float] = None) -> Stream[Estimate]:
        """Running estimates over growing sample counts (num_samples more per step) until every row's standard
        error is at most target_standard_error (counted from 25 samples per row on, and not while a row's Pareto
        k-hat is above 0.7), max_samples per row, or the deadline. The last Estimate has
        stop_reason set ("target_reached", "max_samples", "deadline", "exact_result"). `row_offset` and
        `sample_offset` shard as in estimate(): step s covers global samples sample_offset + s * num_samples
        onwards. A Stream, closed as sample_batches' is (closing it early cancels the call). Its deadline is
        `timeout=` or the connection's default, one of the rules that end it: before it passes the server sends
        the last estimate with stop_reason "deadline"."""
        def estimates() -> Iterator[Estimate]:
            target = check_real(target_standard_error, "target_standard_error")
            cap = check_int(max_samples, "max_samples")
            request = pb.StreamEstimateRequest(
                request=self._estimate_request(name, rows, estimator, num_samples, seed, version, ais, row_offset,
                                               sample_offset),
                target_standard_error=target, max_samples=cap)
            with self.connection.unary_stream("StreamEstimate", self._stream_estimate, request,
                                              timeout) as responses:
                for response in responses:
                    reason = (pb.StopReason.Name(response.stop_reason).lower()
                              if response.stop_reason != pb.STOP_REASON_UNSPECIFIED else None)
                    yield Estimate.from_proto(response.estimate, reason)
        return Stream(estimates())


def _rows_per_chunk(cols: int, chunk_rows: Optional[int], default: int) -> int:
    """Rows per FitModel chunk of `cols` columns: chunk_rows (None: `default`), but no more than MAX_CHUNK_BYTES of
    values hold, and at least one row (as the C++ client's FitModel)."""
    row_bytes = 8 * max(1, cols)
    return max(1, min(chunk_rows if chunk_rows is not None else default, MAX_CHUNK_BYTES // row_bytes))


def _chunks(x: Union[ArrayLike, Iterable[ArrayLike]], chunk_rows: Optional[int]) -> Iterator[FloatArray]:
    """The rows of x in chunks of at most MAX_CHUNK_BYTES of values. Array-like data (an ndarray, a list of rows,
    anything with __array__ such as a DataFrame) is split into chunk_rows pieces (default ~1 MiB each); an iterator
    / generator, or a list or tuple of 2-D arrays, is taken as a sequence of chunks and streamed one by one, each
    re-split to chunk_rows if given and whenever it holds more than MAX_CHUNK_BYTES (a chunk too large for one
    message used to fail the call RESOURCE_EXHAUSTED)."""
    if _is_chunk_sequence(x):
        for chunk in cast(Iterable[ArrayLike], x):
            a = as_rows(chunk)
            step = _rows_per_chunk(a.shape[1], chunk_rows, max(a.shape[0], 1))
            for start in range(0, a.shape[0], step):
                yield a[start:start + step]
        return
    a = as_rows(cast(ArrayLike, x))
    step = _rows_per_chunk(a.shape[1], chunk_rows, _CHUNK_BYTES // (8 * max(1, a.shape[1])))
    for start in range(0, a.shape[0], step):
        yield a[start:start + step]


def _is_chunk_sequence(x: object) -> bool:
    if isinstance(x, np.ndarray) or hasattr(x, "__array__"):
        return False
    if isinstance(x, (list, tuple)):
        return len(x) > 0 and all(isinstance(c, np.ndarray) and c.ndim == 2 for c in x)
    return isinstance(x, Iterable)
