"""DiscriminativeClient: train, classify, vectorize and evaluate text classifiers; numpy and scipy out.

    with DiscriminativeClient("127.0.0.1:50051") as disc:
        disc.train(texts, labels, name="spam")          # any iterables, streamed in batches
        disc.classify("spam", ["cheap pills"]).probabilities
        disc.vectorize("spam", ["cheap pills"])         # scipy.sparse.csr_matrix
"""

from __future__ import annotations

import itertools
import math
import threading
from typing import Any, Callable, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import grpc
import numpy as np
import scipy.sparse

from maas_client._service import ServiceClient, create_request, model_ref
from maas_client._text_wire import Example, RawBatch, Text, serialize, text_of, texts_request
from maas_client.connection import (INT64_MAX, UINT32_MAX, ConnectionLike, Stream, check, check_bool, check_int,
                                    check_iterable, check_str, check_string_map, check_text)
from maas_client.errors import InvalidArgumentError
from maas_client.pb import discriminative as pb
from maas_client.types import (ClassMetrics, Evaluation, FloatArray, ModelDetails, ModelInfo, Predictions,
                               TrainResult, from_matrix, label_array, typed_labels)

_SERVICE = "DiscriminativeService"
# Examples per streamed TextBatch (Train, Evaluate) and texts per ClassifyStream request.
DEFAULT_BATCH_SIZE = 1000
# A class label as train / evaluate take it (see label_of): a str, or an integer (sent as its decimal string).
Label = Union[str, int, float, "np.integer[Any]", "np.floating[Any]"]
INT64_MIN = -(2**63)


def label_of(value: Any, what: str) -> str:
    """A class label as the str sent on the wire (see label_and_type)."""
    return label_and_type(value, what)[0]


def label_and_type(value: Any, what: str) -> Tuple[str, bool]:
    """(the label as the str sent on the wire, whether it is an integer). A str is kept as it is (string labels,
    ordered by code point as numpy orders str y). An integer (int, numpy integer, or an integral float: scikit-learn
    takes y = [0.0, 1.0] as the classes 0 and 1) is an int64 label, sent as its canonical decimal string
    str(int(value)) for a model of LABEL_TYPE_INT64 (ordered numerically, as numpy orders integer y); one outside
    the int64 range is an InvalidArgumentError (scikit-learn refuses such y too: "Unknown label type"). Anything
    else is an InvalidArgumentError naming `what` and the type, never a silent str(): bytes (scikit-learn refuses
    bytes labels too: decode them), None, bool (True == 1: it would make "True" and "1" two classes where
    scikit-learn has one), floats that are not integral (NaN, 0.5), a str holding a lone surrogate (not text)."""
    if isinstance(value, str):
        check_text(value, what, "a label must be text")
        return str(value), False  # a numpy str_ as a plain str
    integer: Optional[int] = None
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        integer = int(value)
    elif isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        integer = int(value)
    if integer is not None:
        check(INT64_MIN <= integer <= INT64_MAX,
              f"{what} is the integer {integer}, outside the int64 range [{INT64_MIN}, {INT64_MAX}] of maas integer "
              "labels (scikit-learn refuses such y too); use str labels")
        return str(integer), True
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    if isinstance(value, (float, np.floating)):
        why = " (not an integral number)"
    elif isinstance(value, (bytes, bytearray, memoryview)):
        why = " (decode bytes labels to str)"
    elif isinstance(value, (bool, np.bool_)):
        why = " (bool labels are ambiguous with 0 and 1: use str labels)"
    else:
        why = ""
    raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"{what} must be a str or an integer, got {type(value).__name__} {shown}{why}")


class _LabelTypes:
    """The label type of one call's labels (and train's classes): all str, or all integers. scikit-learn's
    partial_fit refuses a mix ("Mix of label input types (string and number)") and its fit turns every label of
    a mixed list into a str; maas refuses the mix, naming the first label of each type, rather than guess."""

    def __init__(self) -> None:
        self.integer: Optional[bool] = None
        self._first = ""

    def label(self, value: Any, what: str) -> str:
        label, integer = label_and_type(value, what)
        if self.integer is None:
            self.integer, self._first = integer, what
        elif integer != self.integer:
            kinds = ("an integer", "a str")
            check(False, f"{what} is {kinds[0] if integer else kinds[1]} but {self._first} is "
                         f"{kinds[1] if integer else kinds[0]}: labels must be all str or all integers (scikit-learn "
                         "refuses such a mix in partial_fit; its fit makes every label a str: pass str(label) for "
                         "each to get that)")
        return label

    def label_type(self) -> "Optional[pb.LabelType]":
        """LABEL_TYPE_INT64 for integer labels; None (TrainConfig.label_type unset) for str labels: string labels
        for a new model, and with partial the continued version's type, whose labels a str spells as well."""
        return pb.LABEL_TYPE_INT64 if self.integer else None


def _texts(texts: Union[Text, Sequence[Text]]) -> List[Text]:
    """The texts as a list: str, or bytes (decoded when UTF-8; otherwise the model's decode_error applies)."""
    if isinstance(texts, (str, bytes)):
        texts = [texts]
    check_iterable(texts, "texts")
    out = []
    for i, text in enumerate(texts):
        try:
            out.append(text_of(text, f"texts[{i}]"))
        except TypeError as error:
            check(False, str(error))
    return out


def _batch_message(examples: List[Example]) -> Union[pb.TextBatch, RawBatch]:
    if not all(isinstance(text, str) for text, _, _ in examples):
        return RawBatch(examples)
    batch = pb.TextBatch()
    for text, label, weight in examples:
        example = batch.examples.add(text=text, label=label)
        if weight is not None:
            example.weight = weight
    return batch


def _weight_of(value: Any, index: int) -> float:
    """A sample weight as a float (the server refuses negative or non-finite ones, naming the example); a value
    float() cannot take is an InvalidArgumentError naming the example."""
    try:
        return float(value)
    except (TypeError, ValueError):
        shown = repr(value)
        raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"example {index}: weight must be a number, got {type(value).__name__} "
                                   f"{shown if len(shown) <= 40 else shown[:37] + '...'}") from None


def _batches(texts: Iterable[Text], labels: Iterable[Label], weights: Optional[Iterable[float]], batch_size: int,
             on_batch: Optional[Callable[[int], None]],
             label_types: Optional[_LabelTypes] = None) -> Iterator[Union[pb.TextBatch, RawBatch]]:
    """Labelled examples zipped lazily from the iterables, batch_size at a time; unequal lengths are an error. A
    batch holding a text that is not UTF-8 comes as a RawBatch (the whole request's bytes). Labels are
    label_of's (with label_types: of one type, see _LabelTypes)."""
    missing = object()
    columns: List[Iterable[Any]] = [texts, labels] if weights is None else [texts, labels, weights]
    examples: List[Example] = []
    index = 0
    for row in itertools.zip_longest(*columns, fillvalue=missing):
        check(all(value is not missing for value in row),
              f"texts, labels{' and weights' if weights is not None else ''} have different lengths "
              f"(one ended at example {index})")
        try:
            text = text_of(row[0], f"example {index}: text")
        except TypeError as error:
            check(False, str(error))
        what = f"example {index}: label"
        label = label_types.label(row[1], what) if label_types is not None else label_of(row[1], what)
        examples.append((text, label, _weight_of(row[2], index) if weights is not None else None))
        index += 1
        if len(examples) >= batch_size:
            yield _batch_message(examples)
            if on_batch is not None:
                on_batch(len(examples))
            examples = []
    if examples:
        yield _batch_message(examples)
        if on_batch is not None:
            on_batch(len(examples))


class DiscriminativeClient(ServiceClient):
    """Client of maas.discriminative.v1.DiscriminativeService (directly or through the gateway).

    `target` is "host:port" (default $MAAS_TARGET, else 127.0.0.1:50051) or a Connection; keyword options are Connection's. Every method takes `timeout=`
    (seconds; default the connection's, but classify_stream has none unless given one) and raises
    maas_client.errors.MaasError subclasses. get / list / delete are ServiceClient's.
    """

    def __init__(self, target: ConnectionLike = None, **options: Any) -> None:
        super().__init__(target, options, pb.DESCRIPTOR, _SERVICE, pb.GetModelRequest, pb.GetModelResponse)
        ch = self.connection.channel
        self._create = ch.unary_unary(self._path("CreateModel"), pb.CreateModelRequest.SerializeToString,
                                      pb.CreateModelResponse.FromString)
        # The calls that carry texts serialize with _text_wire.serialize (a message or its raw-texts form).
        self._train = ch.stream_unary(self._path("Train"), serialize, pb.TrainResponse.FromString)
        self._classify = ch.unary_unary(self._path("Classify"), serialize, pb.ClassifyResponse.FromString)
        self._classify_stream = ch.stream_stream(self._path("ClassifyStream"), serialize,
                                                 pb.ClassifyResponse.FromString)
        self._vectorize = ch.unary_unary(self._path("Vectorize"), serialize, pb.VectorizeResponse.FromString)
        self._evaluate = ch.stream_unary(self._path("Evaluate"), serialize, pb.EvaluateResponse.FromString)

    # -- create / train -------------------------------------------------------------------------------------------
    def create(self, spec: Union[pb.PipelineSpec, pb.CreateModelRequest], name: Optional[str] = None, *,
               labels: Optional[Mapping[str, str]] = None, description: Optional[str] = None,
               timeout: Optional[float] = None) -> ModelInfo:
        """Stores a fitted pipeline: a PipelineSpec (then `name` is required) or a CreateModelRequest such as
        maas_client.sklearn.export() returns (`name`, `labels`, `description` override its fields)."""
        request = create_request(pb.CreateModelRequest, pb.PipelineSpec, spec, name, labels, description)
        return ModelInfo.from_proto(self.connection.unary("CreateModel", self._create, request, timeout).info)

    def train(self, texts: Iterable[Text], labels: Iterable[Label], *, name: str,
              weights: Optional[Iterable[float]] = None, vectorizer: Optional[pb.VectorizerConfig] = None,
              classifier: Optional[pb.ClassifierConfig] = None, partial: bool = False,
              classes: Optional[Sequence[Label]] = None, model_labels: Optional[Mapping[str, str]] = None,
              description: str = "", batch_size: int = DEFAULT_BATCH_SIZE,
              on_batch: Optional[Callable[[int], None]] = None, timeout: Optional[float] = None) -> TrainResult:
        """Trains a pipeline on (text, label[, weight]) examples zipped from the iterables, which are consumed
        lazily and streamed batch_size examples per message (a generator over a huge file never sits in memory).
        vectorizer / classifier: the configurations (default CountVectorizer + MultinomialNB; see
        maas_client.sklearn.configs() to take them from an unfitted scikit-learn pipeline). partial=True continues
        the latest version as partial_fit (a hashing vectorizer or a fixed vocabulary; vectorizer/classifier None:
        the continued version's); classes are partial_fit's classes, required on the first partial call (without
        partial they fix the classes of the fit). on_batch(n) is called after each batch is handed to gRPC. Texts
        are str, or bytes as scikit-learn's vectorizers take them: bytes that are not UTF-8 meet the vectorizer's
        decode_error (strict, the default: the call fails naming the example; replace / ignore repair them), as in
        every call that takes texts. Labels (and classes) are all str, or all integers such as scikit-learn's
        y = [9, 10] (int, numpy integer, integral float; int64): as in scikit-learn, str labels are ordered by code
        point ("10" before "9") and integer labels numerically (9 before 10; the model's label_type is then
        LABEL_TYPE_INT64, and classify, predict and TrainResult.classes give the classes back as integers). A mix
        of str and integers, an integer outside int64, bytes, None, bool, other floats and other types are an
        InvalidArgumentError naming the example (or classes[i]) and the type, nothing stored."""
        batch_size = check_int(batch_size, "batch_size", 1)
        _check_columns(texts, labels, weights)
        config = pb.TrainConfig(name=check_str(name, "name"), partial=check_bool(partial, "partial"),
                                description=check_str(description, "description"))
        if vectorizer is not None:
            check(isinstance(vectorizer, pb.VectorizerConfig),
                  f"vectorizer must be a VectorizerConfig, got {type(vectorizer).__name__}")
            config.vectorizer.CopyFrom(vectorizer)
        if classifier is not None:
            check(isinstance(classifier, pb.ClassifierConfig),
                  f"classifier must be a ClassifierConfig, got {type(classifier).__name__}")
            config.classifier.CopyFrom(classifier)
        label_types = _LabelTypes()
        if classes is not None:
            check(not isinstance(classes, (str, bytes)), "classes must be a sequence of labels, got a single "
                  f"{type(classes).__name__}")
            check_iterable(classes, "classes")
            config.classes.extend(label_types.label(c, f"classes[{i}]") for i, c in enumerate(classes))
        if model_labels is not None:
            config.labels.update(check_string_map(model_labels, "model_labels"))

        def requests() -> Iterator[Union[pb.TrainRequest, RawBatch]]:
            # The config says how the labels are read, so the first batch's labels are read before it is sent.
            batches = _batches(texts, labels, weights, batch_size, on_batch, label_types)
            first = next(batches, None)
            label_type = label_types.label_type()
            if label_type is not None:
                config.label_type = label_type
            yield pb.TrainRequest(config=config)
            for batch in itertools.chain([] if first is None else [first], batches):
                yield pb.TrainRequest(batch=batch) if isinstance(batch, pb.TextBatch) else batch

        response = self.connection.stream_unary("Train", self._train, requests(), timeout)
        s = response.summary
        return TrainResult(info=ModelInfo.from_proto(response.info), num_documents=s.num_documents,
                           num_features=s.num_features, classes=typed_labels(s.classes, s.label_type),
                           class_count=np.array(s.class_count, dtype=np.float64))

    # -- classify -------------------------------------------------------------------------------------------------
    def classify(self, name: str, texts: Union[Text, Sequence[Text]], *, explain: bool = False,
                 explain_features: int = 0, version: int = 0, timeout: Optional[float] = None) -> Predictions:
        """Labels (N,) and probabilities / log-probabilities (N x C, columns in `classes` order) of the texts;
        labels and classes are integers (numpy int64, int) for a model of integer labels."""
        explain_features = check_int(explain_features, "explain_features", 0, UINT32_MAX)
        request = texts_request(pb.ClassifyRequest(model=model_ref(name, version),
                                                   explain=check_bool(explain, "explain"),
                                                   explain_features=explain_features),
                                _texts(texts))
        return Predictions.from_proto(self.connection.unary("Classify", self._classify, request, timeout))

    def predict(self, name: str, texts: Union[Text, Sequence[Text]], *, version: int = 0,
                timeout: Optional[float] = None) -> "np.ndarray[Any, Any]":
        """scikit-learn's predict: the labels as an array, of str, or of numpy int64 for a model of integer labels
        (LABEL_TYPE_INT64), as scikit-learn's predict gives for integer y."""
        classes, _, predicted, label_type = self._classify_compact(name, texts, version, timeout)
        labels: "np.ndarray[Any, Any]" = label_array(classes, label_type)[predicted]
        return labels

    def predict_proba(self, name: str, texts: Union[Text, Sequence[Text]], *, version: int = 0,
                      timeout: Optional[float] = None) -> FloatArray:
        """scikit-learn's predict_proba: N x C probabilities in class order."""
        return self._classify_compact(name, texts, version, timeout)[1]

    def _classify_compact(self, name: str, texts: Union[Text, Sequence[Text]], version: int,
                          timeout: Optional[float]) -> Tuple[List[str], FloatArray, "np.ndarray[Any, Any]", int]:
        """The compact Classify answer (the class labels once, the probability matrix and the predicted class
        indices, and the label type): what predict and predict_proba need, without a message and a Python loop
        per text."""
        request = texts_request(pb.ClassifyRequest(model=model_ref(name, version), compact=True),
                                _texts(texts))
        response = self.connection.unary("Classify", self._classify, request, timeout)
        m = response.probabilities
        probabilities = np.array(m.values, dtype=np.float64).reshape(m.rows, m.cols)
        return (list(response.classes), probabilities, np.array(response.predicted, dtype=np.intp),
                response.label_type)

    def classify_stream(self, name: str, texts: Iterable[Text], *, batch_size: int = DEFAULT_BATCH_SIZE,
                        version: int = 0, timeout: Optional[float] = None) -> Stream[Predictions]:
        """Classifies a (possibly endless) iterable of texts over one bidirectional stream: batch_size texts per
        request, one Predictions per batch, in order. The iterable is read lazily as the stream flows. The Stream
        cancels the call when it is closed early: by close(), at the end of a `with` block, or when its last
        reference dies (a break out of a for statement that holds the only reference); one held in a variable
        needs close() or a with block. The call has no deadline unless given `timeout=` (not the connection's
        default, which would end an endless stream), as in the Go and TypeScript clients. With version 0 (the
        latest), every batch after the first asks for the version that answered the first, as `maas classify
        --text_file` does: a model retrained while the stream flows does not classify one call's texts with several
        versions (Predictions.model_version is the same throughout); the second batch is sent once that answer has
        been read (one round trip, once)."""
        def predictions() -> Iterator[Predictions]:
            size = check_int(batch_size, "batch_size", 1)
            ref = model_ref(name, version)
            check(not isinstance(texts, (str, bytes)), "texts must be an iterable of texts, got a single "
                  f"{type(texts).__name__}")
            check_iterable(texts, "texts")
            pinned = [ref.version]  # the version every batch asks for: the first answer's, unless one was given
            answered = threading.Event()  # the first answer was read (or the stream is over)

            def requests() -> Iterator[Any]:  # on a thread of gRPC's
                iterator = iter(texts)
                first = True
                while True:
                    batch = list(itertools.islice(iterator, size))
                    if not batch:
                        return
                    if not first and not ref.version:
                        answered.wait()
                    request = pb.ClassifyRequest(model=ref)
                    request.model.version = pinned[0]
                    yield texts_request(request, _texts(batch))
                    first = False

            try:
                with self.connection.stream_stream("ClassifyStream", self._classify_stream, requests(), timeout,
                                                   default_deadline=False) as responses:
                    for response in responses:
                        if not answered.is_set():
                            if not ref.version:
                                pinned[0] = response.model_version
                            answered.set()
                        yield Predictions.from_proto(response)
            finally:
                answered.set()  # a request source still waiting goes on, to find the call over
        return Stream(predictions())

    # -- vectorize / evaluate -------------------------------------------------------------------------------------
    def vectorize(self, name: str, texts: Union[Text, Sequence[Text]], *, version: int = 0,
                  timeout: Optional[float] = None) -> "scipy.sparse.csr_matrix":
        """The feature rows of the texts as a scipy CSR matrix (N x num_features, float64), as the model's
        vectorizer's transform() would give."""
        request = texts_request(pb.VectorizeRequest(model=model_ref(name, version)), _texts(texts))
        response = self.connection.unary("Vectorize", self._vectorize, request, timeout)
        return _to_csr(response.rows, response.num_features)

    def feature_names(self, name: str, texts: Union[Text, Sequence[Text]], *, version: int = 0,
                      timeout: Optional[float] = None) -> Tuple["scipy.sparse.csr_matrix", dict[int, str]]:
        """vectorize() plus the names of the features that occur (index -> term)."""
        request = texts_request(pb.VectorizeRequest(model=model_ref(name, version),
                                                    include_feature_names=True), _texts(texts))
        response = self.connection.unary("Vectorize", self._vectorize, request, timeout)
        return _to_csr(response.rows, response.num_features), dict(response.feature_names)

    def evaluate(self, name: str, texts: Iterable[Text], labels: Iterable[Label], *,
                 weights: Optional[Iterable[float]] = None, batch_size: int = DEFAULT_BATCH_SIZE, version: int = 0,
                 on_batch: Optional[Callable[[int], None]] = None, timeout: Optional[float] = None) -> Evaluation:
        """Accuracy, per-class precision/recall/F1, confusion matrix and log loss on labelled texts (streamed
        lazily like train; labels as train's)."""
        batch_size = check_int(batch_size, "batch_size", 1)
        _check_columns(texts, labels, weights)
        config = pb.EvaluateConfig(model=model_ref(name, version))
        label_types = _LabelTypes()  # all str or all integers, as train's

        def requests() -> Iterator[Union[pb.EvaluateRequest, RawBatch]]:
            yield pb.EvaluateRequest(config=config)
            for batch in _batches(texts, labels, weights, batch_size, on_batch, label_types):
                yield pb.EvaluateRequest(batch=batch) if isinstance(batch, pb.TextBatch) else batch

        r = self.connection.stream_unary("Evaluate", self._evaluate, requests(), timeout)
        class_labels = typed_labels([c.label for c in r.classes],
                                    pb.LABEL_TYPE_INT64 if label_types.integer else None)
        return Evaluation(accuracy=r.accuracy,
                          classes=[ClassMetrics(label, c.precision, c.recall, c.f1, c.support)
                                   for label, c in zip(class_labels, r.classes)],
                          macro_f1=r.macro_f1, weighted_f1=r.weighted_f1,
                          confusion_matrix=from_matrix(r.confusion_matrix), log_loss=r.log_loss,
                          num_documents=r.num_documents, model_version=r.model_version)


def _check_columns(texts: Any, labels: Any, weights: Any) -> None:
    """train / evaluate: texts, labels (and weights) are iterables, consumed lazily as the stream flows; a value
    that is none is an InvalidArgumentError naming it before anything is sent (it used to be a bare TypeError from
    inside the stream)."""
    check_iterable(texts, "texts")
    check_iterable(labels, "labels")
    if weights is not None:
        check_iterable(weights, "weights")


def _to_csr(rows: Sequence[pb.SparseRow], num_features: int) -> "scipy.sparse.csr_matrix":
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    for i, row in enumerate(rows):
        indptr[i + 1] = indptr[i] + len(row.indices)
    indices = np.fromiter(itertools.chain.from_iterable(r.indices for r in rows), dtype=np.int64,
                          count=int(indptr[-1]))
    data = np.fromiter(itertools.chain.from_iterable(r.values for r in rows), dtype=np.float64,
                       count=int(indptr[-1]))
    return scipy.sparse.csr_matrix((data, indices, indptr), shape=(len(rows), int(num_features)))
