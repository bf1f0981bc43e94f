"""Plain result types of the clients (numpy arrays where the data is numeric) and Matrix <-> numpy conversion."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Dict, Iterable, List, Optional, Union

import grpc
import numpy as np
import numpy.typing as npt

from maas_client.connection import check
from maas_client.errors import InvalidArgumentError
from maas_client.pb import common, discriminative, generative

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike


def typed_labels(labels: Iterable[str], label_type: Optional[int]) -> List[Any]:
    """Class labels as the wire carries them (str) as the values they stand for: int for a model of integer labels
    (LABEL_TYPE_INT64: canonical decimal int64), else str."""
    if label_type == discriminative.LABEL_TYPE_INT64:
        return [int(label) for label in labels]
    return list(labels)


def label_array(labels: Iterable[str], label_type: Optional[int]) -> npt.NDArray[Any]:
    """typed_labels as a numpy array: int64 for integer labels (what scikit-learn's predict gives for integer y),
    else str_."""
    if label_type == discriminative.LABEL_TYPE_INT64:
        return np.array([int(label) for label in labels], dtype=np.int64)
    return np.array(list(labels), dtype=np.str_)


def as_rows(values: ArrayLike, what: str = "x") -> FloatArray:
    """A float64 C-contiguous 2-D array (a 1-D array is one row); InvalidArgumentError for other shapes, for values
    that are not numbers, for rows of different lengths, for no data at all ([] or [[]]) and for a scalar (None, a
    number: not rows)."""
    check(values is not None and not np.isscalar(values),
          f"{what}: expected rows of numbers (rows x columns), got {type(values).__name__}")
    try:
        a = np.ascontiguousarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{what}: expected numbers in rows of equal length (rows x columns): {e}") from None
    if a.ndim == 1:
        check(a.shape[0] > 0, f"{what} has no rows; send at least one row of numbers")
        a = a.reshape(1, -1)
    check(a.ndim == 2, f"{what}: expected a 2-D array (rows x columns), got {a.ndim} dimensions")
    check(a.shape[0] == 0 or a.shape[1] > 0, f"{what} has {a.shape[0]} rows of no values; send one value per "
          "model dimension in each row")
    return a


def to_matrix(values: ArrayLike, what: str = "x") -> common.Matrix:
    """A numpy-convertible 2-D array as a Matrix (row-major)."""
    a = as_rows(values, what)
    m = common.Matrix(rows=a.shape[0], cols=a.shape[1])
    m.values.extend(a.ravel().tolist())
    return m


def from_matrix(m: common.Matrix) -> FloatArray:
    """A Matrix as a (rows, cols) float64 array."""
    if len(m.values) != m.rows * m.cols:
        raise ValueError(f"Matrix {m.rows}x{m.cols} carries {len(m.values)} values")
    return np.array(m.values, dtype=np.float64).reshape(m.rows, m.cols)


MODEL_TYPES = {common.GENERATIVE: "generative", common.DISCRIMINATIVE: "discriminative"}


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """One stored model version."""

    name: str
    version: int
    kind: str  # "generative" or "discriminative" ("" when the server did not say)
    family: str
    labels: Dict[str, str]
    created_at: Optional[datetime.datetime]
    description: str
    size_bytes: int
    dimension: int

    @staticmethod
    def from_proto(info: common.ModelInfo) -> "ModelInfo":
        created = (info.created_at.ToDatetime(tzinfo=datetime.timezone.utc)
                   if info.HasField("created_at") else None)
        return ModelInfo(name=info.name, version=info.version, kind=MODEL_TYPES.get(info.type, ""),
                         family=info.family, labels=dict(info.labels), created_at=created,
                         description=info.description, size_bytes=info.size_bytes, dimension=info.dimension)


@dataclasses.dataclass(frozen=True)
class UnreadableVersion:
    """A stored version a listing covers whose file cannot be read: calls on it answer `code` (e.g. "DATA_LOSS").
    Restore the file or delete the version."""

    name: str
    version: int
    kind: str  # "generative" or "discriminative" ("" when the server did not say)
    code: str
    message: str

    @staticmethod
    def from_proto(bad: common.UnreadableVersion) -> "UnreadableVersion":
        return UnreadableVersion(name=bad.name, version=bad.version, kind=MODEL_TYPES.get(bad.type, ""),
                                 code=bad.code, message=bad.message)


class ModelList(List[ModelInfo]):
    """What list() returns: the readable models (a list of ModelInfo, as before), plus what the listing could not
    include: `missing_backends` (through a gateway, "<service>: <CODE>: <reason>" per backend that did not answer,
    whose models are then missing) and `unreadable` (versions whose stored file cannot be read, among them a model
    whose latest version is damaged). Both empty: the list is complete.

    What list_page() returns is one page of a listing: `next_page_token` is non-empty while entries may follow
    (pass it as list_page's `page_token`); list() answers the whole listing, whose `next_page_token` is empty."""

    def __init__(self, models: Iterable[ModelInfo] = (), missing_backends: Iterable[str] = (),
                 unreadable: Iterable[UnreadableVersion] = (), next_page_token: str = ""):
        super().__init__(models)
        self.missing_backends: List[str] = list(missing_backends)
        self.unreadable: List[UnreadableVersion] = list(unreadable)
        self.next_page_token: str = next_page_token

    @property
    def complete(self) -> bool:
        """True when every backend answered and every covered version could be read."""
        return not self.missing_backends and not self.unreadable


@dataclasses.dataclass(frozen=True)
class ModelDetails:
    """A model version with its full parameters (GetModel): the spec can be exported or re-imported."""

    info: ModelInfo
    spec: Union[generative.GenerativeModelSpec, discriminative.PipelineSpec]


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What FitModel stored and how the fit went."""

    info: ModelInfo
    log_likelihood: FloatArray  # mean log-likelihood per row after each iteration, nats
    converged: bool
    n_iter: int
    num_rows: int
    seed: int


@dataclasses.dataclass(frozen=True)
class SampleBatch:
    """One streamed batch of samples."""

    start_index: int  # index of the first row in the seed's stream
    x: FloatArray  # rows x D
    latents: Optional[FloatArray]  # rows x L (or rows x 1 component index); None unless requested and defined
    seed: int
    model_version: int


@dataclasses.dataclass(frozen=True)
class WeightStatistics:
    """Mergeable statistics of each row's Monte Carlo weights (arrays of length N; count 0 for EXACT). The estimates
    of shards of one job (the same seed; disjoint sample_offset ranges of the same rows) combine exactly:
    `a.merge(b)`, then log_likelihood / ess / standard_error of the union, as one call over it would report."""

    count: npt.NDArray[np.int64]  # number of weights (samples, or AIS chains)
    log_sum_w: FloatArray  # log sum_i w_i
    log_sum_w2: FloatArray  # log sum_i w_i^2

    def merge(self, other: "WeightStatistics") -> "WeightStatistics":
        """The statistics of the union of two disjoint sample ranges of the same rows (counts add, log sums combine
        by logsumexp)."""
        check(self.count.shape == other.count.shape,
              f"merge: statistics of {self.count.shape[0]} and {other.count.shape[0]} rows")
        return WeightStatistics(count=self.count + other.count, log_sum_w=np.logaddexp(self.log_sum_w, other.log_sum_w),
                                log_sum_w2=np.logaddexp(self.log_sum_w2, other.log_sum_w2))

    @property
    def log_likelihood(self) -> FloatArray:
        """log(mean w) per row, the Monte Carlo estimate of log p(x); NaN where there is no weight."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.count > 0, self.log_sum_w - np.log(self.count.astype(np.float64)), np.nan)

    @property
    def ess(self) -> FloatArray:
        """Effective sample size (sum w)^2 / sum w^2 per row; NaN where there is no weight."""
        with np.errstate(invalid="ignore"):
            return np.where(self.count > 0, np.exp(2 * self.log_sum_w - self.log_sum_w2), np.nan)

    @property
    def standard_error(self) -> FloatArray:
        """Delta-method standard error sqrt(1/ESS - 1/N) per row, nats: +inf with fewer than 2 weights or when they
        are all zero, NaN where there is no weight."""
        n = self.count.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            se = np.sqrt(np.maximum(1 / self.ess - 1 / n, 0.0))
        undefined = (self.count < 2) | np.isneginf(self.log_sum_w)
        return np.where(self.count == 0, np.nan, np.where(undefined, np.inf, se))

    @staticmethod
    def from_proto(rows: Iterable[generative.RowEstimate]) -> "WeightStatistics":
        rows = list(rows)
        return WeightStatistics(count=np.array([r.statistics.count for r in rows], dtype=np.int64),
                                log_sum_w=np.array([r.statistics.log_sum_w for r in rows], dtype=np.float64),
                                log_sum_w2=np.array([r.statistics.log_sum_w2 for r in rows], dtype=np.float64))


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Per-row log p(x) estimates (arrays of length N) and how they were made."""

    log_likelihood: FloatArray  # nats
    standard_error: FloatArray  # nats; 0 for EXACT
    ess: FloatArray  # effective sample size; 0 for EXACT
    num_samples: npt.NDArray[np.int64]
    pareto_k: FloatArray  # NaN where not computed
    exact_log_likelihood: FloatArray  # NaN where the family is not tractable
    estimator: str  # "exact", "prior", "importance", "ais"
    seed: int
    model_version: int
    statistics: WeightStatistics  # mergeable across sample shards (WeightStatistics.merge); count 0 for EXACT
    ais_acceptance_rate: FloatArray  # AIS: mean HMC acceptance over chains and temperatures; 0 otherwise
    stop_reason: Optional[str] = None  # stream_estimate's last estimate: "target_reached", "max_samples", ...

    @staticmethod
    def from_proto(response: generative.EstimateLogLikelihoodResponse,
                   stop_reason: Optional[str] = None) -> "Estimate":
        rows = response.rows
        return Estimate(
            log_likelihood=np.array([r.log_likelihood for r in rows], dtype=np.float64),
            standard_error=np.array([r.standard_error for r in rows], dtype=np.float64),
            ess=np.array([r.ess for r in rows], dtype=np.float64),
            num_samples=np.array([r.num_samples for r in rows], dtype=np.int64),
            pareto_k=np.array([r.pareto_k for r in rows], dtype=np.float64),
            exact_log_likelihood=np.array(
                [r.exact_log_likelihood if r.HasField("exact_log_likelihood") else np.nan for r in rows],
                dtype=np.float64),
            estimator=generative.Estimator.Name(response.estimator).lower(),
            seed=response.seed, model_version=response.model_version,
            statistics=WeightStatistics.from_proto(rows),
            ais_acceptance_rate=np.array([r.ais_acceptance_rate for r in rows], dtype=np.float64),
            stop_reason=stop_reason)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What Train stored."""

    info: ModelInfo
    num_documents: int
    num_features: int
    classes: List[Any]  # str, or int for a model of integer labels (LABEL_TYPE_INT64), in class order
    class_count: FloatArray


@dataclasses.dataclass(frozen=True)
class FeatureContribution:
    feature: str  # term; empty for hashing vectorizers
    index: int
    value: float
    contribution: float  # nats


@dataclasses.dataclass(frozen=True)
class Explanation:
    runner_up: Any  # a class label: str, or int for a model of integer labels
    features: List[FeatureContribution]


@dataclasses.dataclass(frozen=True)
class Predictions:
    """Classification of N texts: labels (N,), probabilities and log-probabilities (N x C, columns = classes).
    Labels are str (numpy str_), or int (numpy int64) for a model of integer labels (LABEL_TYPE_INT64)."""

    labels: npt.NDArray[Any]
    classes: List[Any]
    probabilities: FloatArray
    log_probabilities: FloatArray
    model_version: int
    explanations: Optional[List[Explanation]] = None

    @staticmethod
    def from_proto(response: discriminative.ClassifyResponse) -> "Predictions":
        results = response.results
        wire_classes = [s.label for s in results[0].scores] if results else []
        n, c = len(results), len(wire_classes)
        proba = np.empty((n, c), dtype=np.float64)
        log_proba = np.empty((n, c), dtype=np.float64)
        for i, result in enumerate(results):
            if [s.label for s in result.scores] != wire_classes:
                raise ValueError("Classify answered results with different class lists")
            proba[i] = [s.probability for s in result.scores]
            log_proba[i] = [s.log_probability for s in result.scores]
        explanations = None
        if any(r.HasField("explanation") for r in results):
            explanations = [Explanation(
                typed_labels([r.explanation.runner_up], response.label_type)[0]
                if r.explanation.runner_up else r.explanation.runner_up, [
                FeatureContribution(f.feature, f.index, f.value, f.contribution) for f in r.explanation.features])
                for r in results]
        return Predictions(labels=label_array([r.label for r in results], response.label_type),
                           classes=typed_labels(wire_classes, response.label_type),
                           probabilities=proba, log_probabilities=log_proba,
                           model_version=response.model_version, explanations=explanations)


@dataclasses.dataclass(frozen=True)
class ClassMetrics:
    label: Any  # str, or int when evaluate was given integer labels
    precision: float
    recall: float
    f1: float
    support: float


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Evaluate: accuracy, per-class metrics (class order), confusion matrix (row = true, column = predicted)."""

    accuracy: float
    classes: List[ClassMetrics]
    macro_f1: float
    weighted_f1: float
    confusion_matrix: FloatArray
    log_loss: float
    num_documents: int
    model_version: int
