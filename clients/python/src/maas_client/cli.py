"""`python -m maas_client`: train from TSV files, fit from CSV/NPY, sample to NPY/CSV, streamed estimation and
model management, with progress bars (tqdm, on stderr; --progress never|always|auto).

    python -m maas_client --target 127.0.0.1:50051 train spam corpus.tsv
    python -m maas_client train spam corpus.tsv --tfidf --ngram-range 1,2 --min-df 2 --classifier complement_nb
    python -m maas_client classify spam "cheap pills now"
    python -m maas_client fit blobs data.csv --family gaussian_mixture --set n_components=3 --seed 7
    python -m maas_client sample blobs 100000 --seed 1 --out draws.npy
    python -m maas_client estimate blobs rows.npy --estimator importance --target-se 0.01 --max-samples 100000
    python -m maas_client models list

Input files are read lazily (TSV line by line, CSV and NPY in chunks), so large files stream. Exit statuses are the
C++ CLI's (`maas`): errors print one line "error: <CODE>: <message>" and exit with status 1: a failed call, and as in
`maas` an input file that cannot be read (NOT_FOUND, PERMISSION_DENIED) or holds a bad line (INVALID_ARGUMENT); 2 is
a bad command line (an unknown option, a bad option value or combination), found before any call; `models list`
exits 3 when a backend did not answer the gateway (the listing lacks its models; it is printed all the same, with a
warning on stderr) unless --allow-partial; output closed early (`| head`) ends the command silently with 141 (128 +
SIGPIPE, what a shell reports for `maas` then).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import math
import os
import pathlib
import re
import stat
import sys
import tempfile
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Sequence, TextIO, Tuple, TypeVar, Union

import grpc
import numpy as np
from google.protobuf import json_format
from tqdm import tqdm

from maas_client.connection import (DEFAULT_MAX_MESSAGE_BYTES, MAX_RECONNECT_BACKOFF_MAX, Connection,
                                    reconnect_backoff_options)
from maas_client.discriminative import DiscriminativeClient
from maas_client.errors import DataLossError, MaasError
from maas_client.generative import ESTIMATORS, FIT_FAMILIES, MAX_CHUNK_BYTES, GenerativeClient
from maas_client.models import KINDS, Models
from maas_client.pb import discriminative as dpb
from maas_client.types import FloatArray

# Rows per chunk read from CSV / NPY files and sent per FitModel message (fewer for wide rows: a chunk holds at most
# MAX_CHUNK_BYTES of values, as the client's fit sends).
CHUNK_ROWS = 8192


class UsageError(Exception):
    """A bad command line: an option's value or a combination of options (exit status 2, as `maas`'s usage errors)."""


class InputError(Exception):
    """A bad input file: a line or value it holds (exit status 1, "error: INVALID_ARGUMENT: ...", as `maas` reports
    a bad --data file)."""


# Exit statuses, as the C++ CLI's: an error (a failed call, an input file that cannot be read or holds a bad line),
# a bad command line, and a listing printed without the models of a backend that did not answer (`models list`,
# unless --allow-partial: a script that checks the status alone must not take it for the whole listing).
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
# Output closed early (`... | head`): 128 + SIGPIPE, the status a shell reports for `maas` killed by SIGPIPE then.
EXIT_BROKEN_PIPE = 141
# The ranges of the integer options (those of the fields they fill).
UINT32_MAX = (1 << 32) - 1
UINT64_MAX = (1 << 64) - 1
INT64_MAX = (1 << 63) - 1


# -- input files ----------------------------------------------------------------------------------------------------
# A first line of these words is a header, not an example (as the C++ CLI decides).
_HEADER_LABELS = {"label", "labels", "class", "category", "target", "y"}
_HEADER_TEXTS = {b"text", b"texts", b"document", b"sentence", b"x", b"content"}


def read_tsv(path: str, progress: "tqdm[Any]", weighted: bool = False) -> Iterator[Tuple[str, bytes, float]]:
    """(label, text, weight) per non-blank line, read lazily: 'label<TAB>text' (weight 1.0), or with `weighted`
    'label<TAB>weight<TAB>text' (weight a finite number >= 0). Labels must be UTF-8; texts are the line's bytes as
    they are (the client decodes UTF-8 ones, and the model's decode_error handles the others). CRLF and a leading
    UTF-8 BOM are accepted; progress counts bytes."""
    expected = "label<TAB>weight<TAB>text" if weighted else "label<TAB>text"
    seen_example = False
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            progress.update(len(raw))
            line = raw[:-1] if raw.endswith(b"\n") else raw
            if line.endswith(b"\r"):
                line = line[:-1]
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            if not line.strip():
                continue
            where = f"{path}:{number}"
            label, tab, text = line.partition(b"\t")
            field = b""
            if tab and weighted:
                field, tab, text = text.partition(b"\t")
            if not tab:
                raise InputError(f"{where}: expected '{expected}' (--weighted)" if weighted
                                 else f"{where}: expected '{expected}' but found no tab")
            label = label.strip()
            if not label:
                raise InputError(f"{where}: empty label before the tab")
            try:
                decoded = label.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(f"{where}: the label is not valid UTF-8") from None
            if not weighted and not seen_example and decoded.lower() in _HEADER_LABELS \
                    and text.strip().lower() in _HEADER_TEXTS:
                raise InputError(f"{where} looks like a header ('{decoded}<TAB>...'), not an example: the file holds "
                                 "'label<TAB>text' lines only; remove the header line")
            seen_example = True
            weight = 1.0
            if weighted:
                weight = _finite(field.decode("utf-8", "replace"), f"{where}: weight", InputError)
                if weight < 0:
                    raise InputError(f"{where}: weight must be >= 0")
            yield decoded, text, weight


def _csv_chunk(lines: List[str], path: str, first_line: int) -> FloatArray:
    try:
        a = np.loadtxt(io.StringIO("".join(lines)), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise InputError(f"{path}: lines {first_line}-{first_line + len(lines) - 1}: {e}") from e
    return a


def read_rows(path: str, progress: "tqdm[Any]", chunk_rows: int = CHUNK_ROWS) -> Iterator[FloatArray]:
    """Chunks of rows of a .npy file (2-D, memory-mapped) or a CSV file (comma-separated numbers, '#' comments;
    any other extension is read as CSV): at most chunk_rows rows and about MAX_CHUNK_BYTES each (NPY: of values;
    CSV: of text, which the client's fit splits further when its values need more). The file is opened at once (one
    that cannot be read fails before any call, as in maas) and read lazily. progress counts rows (NPY) or bytes
    (CSV)."""
    if path.endswith(".npy"):
        with open(path, "rb"):
            pass  # NOT_FOUND, PERMISSION_DENIED, ... as OSError
        try:
            a = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as e:
            raise InputError(f"{path}: not a readable .npy file: {e}") from e
        if a.ndim == 1:
            a = a.reshape(-1, 1)
        if a.ndim != 2:
            raise InputError(f"{path}: expected a 2-D array, got shape {a.shape}")
        return _npy_chunks(a, progress, chunk_rows)
    return _csv_chunks(open(path, "r", encoding="utf-8"), path, progress, chunk_rows)


def _npy_chunks(a: "np.ndarray[Any, Any]", progress: "tqdm[Any]", chunk_rows: int) -> Iterator[FloatArray]:
    progress.reset(total=a.shape[0])
    step = max(1, min(chunk_rows, MAX_CHUNK_BYTES // (8 * max(1, a.shape[1]))))
    for start in range(0, a.shape[0], step):
        chunk = np.asarray(a[start:start + step], dtype=np.float64)
        yield chunk
        progress.update(chunk.shape[0])


def _csv_chunks(f: TextIO, path: str, progress: "tqdm[Any]", chunk_rows: int) -> Iterator[FloatArray]:
    with f:
        progress.reset(total=os.fstat(f.fileno()).st_size)
        lines: List[str] = []
        first = 1
        size = 0
        for number, line in enumerate(f, start=1):
            progress.update(len(line.encode("utf-8")))
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if not lines:
                first = number
            lines.append(line)
            size += len(line)
            if len(lines) >= chunk_rows or size >= MAX_CHUNK_BYTES:
                yield _csv_chunk(lines, path, first)
                lines, size = [], 0
        if lines:
            yield _csv_chunk(lines, path, first)


def load_rows(path: str) -> FloatArray:
    with tqdm(disable=True) as silent:
        chunks = list(read_rows(path, silent))
    if not chunks:
        raise InputError(f"{path}: no rows")
    return np.concatenate(chunks)


def parse_value(text: str) -> Any:
    """A --set value: int, float, true/false, or the string itself."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_settings(items: Sequence[str]) -> Dict[str, Any]:
    settings: Dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UsageError(f"--set expects key=value, got {item!r}")
        settings[key.strip()] = parse_value(value.strip())
    return settings


def _finite(value: str, what: str, error: type = UsageError) -> float:
    """A finite number, else `error` (UsageError for an option, InputError for a file's value)."""
    try:
        number = float(value)
    except ValueError:
        raise error(f"{what}: {value.strip()!r} is not a number") from None
    if not math.isfinite(number):
        raise error(f"{what}: {value.strip()!r} is not a finite number")
    return number


# -- train options --------------------------------------------------------------------------------------------------
# The train options that configure the vectorizer and the classifier (argparse dests; every default is None, so
# "not given" is None: with --partial, options not given mean the continued version's, as in the C++ CLI).
VECTORIZER_OPTIONS = ("vectorizer", "tfidf", "analyzer", "ngram_range", "lowercase", "strip_accents", "stop_words",
                      "stop_words_file", "token_pattern", "binary", "decode_error", "min_df", "max_df", "max_features",
                      "vocabulary_file", "n_features", "alternate_sign", "norm", "hashing_norm", "use_idf",
                      "smooth_idf", "sublinear_tf")
CLASSIFIER_OPTIONS = ("classifier", "alpha", "force_alpha", "fit_prior", "class_prior", "binarize", "complement_norm")
ANALYZERS = {"word": dpb.ANALYZER_WORD, "char": dpb.ANALYZER_CHAR, "char_wb": dpb.ANALYZER_CHAR_WB}
STRIP_ACCENTS = {"ascii": dpb.STRIP_ACCENTS_ASCII, "unicode": dpb.STRIP_ACCENTS_UNICODE,
                 "none": dpb.STRIP_ACCENTS_NONE}
DECODE_ERRORS = {"strict": dpb.DECODE_ERROR_STRICT, "replace": dpb.DECODE_ERROR_REPLACE,
                 "ignore": dpb.DECODE_ERROR_IGNORE}
NORMS = {"l1": dpb.NORM_L1, "l2": dpb.NORM_L2, "none": dpb.NORM_NONE}
CLASSIFIERS = ("multinomial_nb", "complement_nb", "bernoulli_nb")
_DIGITS = re.compile(r"[0-9]+")
T = TypeVar("T")


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _choice(value: str, choices: Dict[str, T], dest: str) -> T:
    key = value.lower()
    if key not in choices:
        raise UsageError(f"{_flag(dest)} must be {', '.join(list(choices)[:-1])} or {list(choices)[-1]}; "
                         f"got {value!r}")
    return choices[key]


def _count(value: str, dest: str, minimum: int, maximum: int) -> int:
    text = value.strip()
    if not _DIGITS.fullmatch(text) or not minimum <= int(text) <= maximum:
        bounds = f">= {minimum}" if maximum >= 2**63 else f"in [{minimum}, {maximum}]"
        raise UsageError(f"{_flag(dest)} must be an integer {bounds}; got {value!r}")
    return int(text)


def _document_frequency(value: str, dest: str) -> dpb.DocumentFrequency:
    """scikit-learn's int-or-float min_df / max_df: "2" is a document count, "0.5" or "1e-3" a fraction (the
    service checks its range)."""
    if not any(c in value for c in ".eE"):
        text = value.strip()
        if not _DIGITS.fullmatch(text):
            raise UsageError(f"{_flag(dest)} must be a document count (an integer >= 0) or a fraction in [0, 1] "
                             f"written with a '.'; got {value!r}")
        return dpb.DocumentFrequency(count=int(text))
    return dpb.DocumentFrequency(fraction=_finite(value, _flag(dest)))


def _split_list(value: str) -> List[str]:
    return [part.strip() for part in value.split(",")]


def read_word_list(path: str) -> List[str]:
    """One term per line (UTF-8; blank lines skipped, CRLF and a leading BOM accepted); errors name file and line."""
    with open(path, "rb") as f:
        content = f.read()
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    words: List[str] = []
    for number, raw in enumerate(content.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            words.append(raw.strip().decode("utf-8"))
        except UnicodeDecodeError:
            raise InputError(f"{path}:{number}: invalid UTF-8") from None
    if not words:
        raise InputError(f"{path}: no terms")
    return words


def train_configs(a: argparse.Namespace) -> Tuple[Optional[dpb.VectorizerConfig], Optional[dpb.ClassifierConfig]]:
    """The vectorizer and classifier configs of `train` from the options given, as the C++ CLI's BuildTrainConfig:
    without any vectorizer (classifier) option the config is None (the service's default, or with --partial the
    continued version's); options that do not apply to the chosen kinds and bad values are UsageErrors."""

    def given(dest: str) -> bool:
        return getattr(a, dest) is not None

    def not_for(dests: Sequence[str], what: str) -> None:
        for dest in dests:
            if given(dest):
                raise UsageError(f"{_flag(dest)} does not apply to {what}")

    vectorizer: Optional[dpb.VectorizerConfig] = None
    if any(given(dest) for dest in VECTORIZER_OPTIONS):
        vectorizer = dpb.VectorizerConfig()
        kind = (a.vectorizer or "count").lower()
        if kind == "tfidf":  # the Python CLI's shorthand for count + --tfidf
            if a.tfidf is False:
                raise UsageError("--vectorizer tfidf is the count vectorizer with --tfidf; --no-tfidf contradicts it")
            kind = "count"
        tfidf = a.tfidf is True or (a.vectorizer or "").lower() == "tfidf"
        text: dpb.TextOptions
        if kind == "count":
            not_for(("n_features", "alternate_sign", "hashing_norm"), "the count vectorizer (use --vectorizer hashing)")
            count = vectorizer.count
            count.SetInParent()
            text = count.text
            if given("min_df"):
                count.min_df.CopyFrom(_document_frequency(a.min_df, "min_df"))
            if given("max_df"):
                count.max_df.CopyFrom(_document_frequency(a.max_df, "max_df"))
            if given("max_features"):
                if a.max_features.strip() == "0":
                    raise UsageError("--max-features must be >= 1 (leave it out for no limit)")
                count.max_features = _count(a.max_features, "max_features", 1, 2**64 - 1)
            if given("vocabulary_file"):
                count.vocabulary.extend(read_word_list(a.vocabulary_file))
        elif kind == "hashing":
            not_for(("min_df", "max_df", "max_features", "vocabulary_file"),
                    "the hashing vectorizer (it learns no vocabulary)")
            hashing = vectorizer.hashing
            hashing.SetInParent()
            text = hashing.text
            if given("n_features"):
                hashing.n_features = _count(a.n_features, "n_features", 1, 2**31 - 1)
            if given("alternate_sign"):
                hashing.alternate_sign = a.alternate_sign
            if given("hashing_norm"):
                if not tfidf:
                    raise UsageError("--hashing-norm is the hashing vectorizer's norm under --tfidf; without --tfidf "
                                     "use --norm")
                hashing.norm = _choice(a.hashing_norm, NORMS, "hashing_norm")
            if given("norm") and not tfidf:
                hashing.norm = _choice(a.norm, NORMS, "norm")
        else:
            raise UsageError(f"--vectorizer must be count, tfidf or hashing; got {a.vectorizer!r}")
        if tfidf:
            vectorizer.tfidf.SetInParent()
            if given("norm"):
                vectorizer.tfidf.norm = _choice(a.norm, NORMS, "norm")
            if given("use_idf"):
                vectorizer.tfidf.use_idf = a.use_idf
            if given("smooth_idf"):
                vectorizer.tfidf.smooth_idf = a.smooth_idf
            if given("sublinear_tf"):
                vectorizer.tfidf.sublinear_tf = a.sublinear_tf
        else:
            not_for(("use_idf", "smooth_idf", "sublinear_tf"), "raw counts (add --tfidf)")
            if kind == "count" and given("norm"):
                raise UsageError("--norm does not apply to raw counts (add --tfidf, or use --vectorizer hashing)")
        if given("analyzer"):
            text.analyzer = _choice(a.analyzer, ANALYZERS, "analyzer")
        if given("ngram_range"):
            parts = _split_list(a.ngram_range)
            if len(parts) > 2 or not all(_DIGITS.fullmatch(p) for p in parts) \
                    or not 1 <= int(parts[0]) <= int(parts[-1]) < 2**32:
                raise UsageError("--ngram-range must be MIN,MAX with 1 <= MIN <= MAX (or one N); "
                                 f"got {a.ngram_range!r}")
            text.ngram_min, text.ngram_max = int(parts[0]), int(parts[-1])
        if given("lowercase"):
            text.lowercase = a.lowercase
        if given("strip_accents"):
            text.strip_accents = _choice(a.strip_accents, STRIP_ACCENTS, "strip_accents")
        if given("stop_words"):
            if given("stop_words_file"):
                raise UsageError("give --stop-words (the built-in list) or --stop-words-file, not both")
            text.stop_words = a.stop_words  # the service names the lists it knows
        if given("stop_words_file"):
            text.stop_word_list.extend(read_word_list(a.stop_words_file))
        if given("token_pattern"):
            text.token_pattern = a.token_pattern
        if given("binary"):
            text.binary = a.binary
        if given("decode_error"):
            text.decode_error = _choice(a.decode_error, DECODE_ERRORS, "decode_error")

    classifier: Optional[dpb.ClassifierConfig] = None
    if any(given(dest) for dest in CLASSIFIER_OPTIONS):
        classifier = dpb.ClassifierConfig()
        kind = (a.classifier or "multinomial_nb").lower()
        if kind not in CLASSIFIERS:
            raise UsageError("--classifier must be multinomial_nb, complement_nb or bernoulli_nb; "
                             f"got {a.classifier!r}")
        not_for({"multinomial_nb": ("binarize", "complement_norm"), "complement_nb": ("binarize",),
                 "bernoulli_nb": ("complement_norm",)}[kind], kind)
        nb: Union[dpb.MultinomialNbConfig, dpb.ComplementNbConfig, dpb.BernoulliNbConfig] = getattr(classifier, kind)
        nb.SetInParent()
        if given("alpha"):
            nb.alpha = _finite(a.alpha, "--alpha")
        if given("force_alpha"):
            nb.force_alpha = a.force_alpha
        if given("fit_prior"):
            nb.fit_prior = a.fit_prior
        if given("class_prior"):
            nb.class_prior.extend(_finite(p, "--class-prior") for p in _split_list(a.class_prior))
        if given("complement_norm"):
            assert isinstance(nb, dpb.ComplementNbConfig)
            nb.norm = a.complement_norm
        if given("binarize"):
            assert isinstance(nb, dpb.BernoulliNbConfig)
            if a.binarize.strip().lower() == "none":
                nb.disable_binarize = True
            else:
                nb.binarize = _finite(a.binarize, "--binarize")
    return vectorizer, classifier


# -- commands -------------------------------------------------------------------------------------------------------
class Context:
    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.args = args
        self.out = out
        self.disable_progress: Optional[bool] = {"auto": None, "always": False, "never": True}[args.progress]

    def connection(self) -> Connection:
        a = self.args
        # --max-message-bytes is the largest message received (as the C++ CLI's): what is sent keeps the default cap.
        receive: Dict[str, Any] = {}
        if a.max_message_bytes is not None:
            if a.max_message_bytes <= 0:
                raise UsageError(f"--max-message-bytes must be > 0, got {a.max_message_bytes}")
            receive = {"max_message_bytes": a.max_message_bytes,
                       "options": [("grpc.max_send_message_length", DEFAULT_MAX_MESSAGE_BYTES)]}
        return Connection(a.target, timeout=a.timeout, tls=a.tls, root_certificates=a.ca_file,
                          client_certificate=a.cert_file, client_key=a.key_file, server_name=a.server_name,
                          token_file=a.token_file, reconnect_backoff_max=a.reconnect_backoff_max, **receive)

    def bar(self, **kwargs: Any) -> "tqdm[Any]":
        return tqdm(disable=self.disable_progress, file=sys.stderr, dynamic_ncols=True, **kwargs)

    def print(self, *parts: object) -> None:
        print(*parts, file=self.out)


def cmd_train(ctx: Context, conn: Connection) -> None:
    a = ctx.args
    vectorizer, classifier = train_configs(a)
    classes: Optional[List[Any]] = None
    if a.classes is not None:
        classes = _split_list(a.classes)
        if not all(classes):
            raise UsageError("--classes has an empty label (comma-separated list)")
        if a.integer_labels:
            classes = [_integer_label(c, "--classes") for c in classes]
    with ctx.bar(total=os.path.getsize(a.file), unit="B", unit_scale=True, desc=f"train {a.name}") as bar:
        # One tee per column the client consumes (an unconsumed copy would buffer the whole file).
        columns = itertools.tee(read_tsv(a.file, bar, a.weighted), 3 if a.weighted else 2)
        labels: Iterator[Any] = (label for label, _, _ in columns[1])
        if a.integer_labels:
            labels = (_integer_label(label, "a label", InputError) for label in labels)
        result = DiscriminativeClient(conn).train(
            (text for _, text, _ in columns[0]), labels,
            weights=(weight for _, _, weight in columns[2]) if a.weighted else None, name=a.name,
            vectorizer=vectorizer, classifier=classifier, batch_size=a.batch_size, partial=a.partial, classes=classes)
    ctx.print(f"trained {result.info.name} version {result.info.version}: {result.num_documents} documents, "
              f"{result.num_features} features, classes {', '.join(str(c) for c in result.classes)}")


def _integer_label(label: str, what: str, error: type = UsageError) -> int:
    """A label of --integer-labels: an integer (the service checks the range and the canonical spelling); else
    `error` (UsageError for --classes, InputError for the file's labels)."""
    try:
        return int(label.strip())
    except ValueError:
        raise error(f"--integer-labels: {what} {label!r} is not an integer") from None


def _texts(ctx: Context) -> Tuple[Iterator[Union[str, bytes]], Optional[int]]:
    a = ctx.args
    if a.file is None:
        if not a.texts:
            raise UsageError("give texts as arguments or --file FILE (one text per line, '-' = stdin)")
        return iter(a.texts), len(a.texts)
    if a.texts:
        raise UsageError("give texts as arguments or --file FILE, not both")
    # Lines as bytes: the client decodes UTF-8 ones, and the model's decode_error handles the others.
    source: BinaryIO = sys.stdin.buffer if a.file == "-" else open(a.file, "rb")

    def lines() -> Iterator[bytes]:
        with contextlib.closing(source) if source is not sys.stdin.buffer else contextlib.nullcontext():
            for line in source:
                yield line.rstrip(b"\r\n")
    return lines(), None


def cmd_classify(ctx: Context, conn: Connection) -> None:
    a = ctx.args
    texts, total = _texts(ctx)
    client = DiscriminativeClient(conn)
    with ctx.bar(total=total, unit="texts", desc=f"classify {a.name}") as bar:
        # --timeout is the deadline of each call, streams included, as in maas (the client gives this stream none).
        for predictions in client.classify_stream(a.name, texts, batch_size=a.batch_size, timeout=a.timeout):
            best = predictions.probabilities.max(axis=1) if predictions.probabilities.size else []
            for label, p in zip(predictions.labels, best):
                ctx.print(f"{label}\t{p:.6f}")
            bar.update(len(predictions.labels))


def cmd_evaluate(ctx: Context, conn: Connection) -> None:
    a = ctx.args
    with ctx.bar(total=os.path.getsize(a.file), unit="B", unit_scale=True, desc=f"evaluate {a.name}") as bar:
        first, second = itertools.tee(read_tsv(a.file, bar))
        ev = DiscriminativeClient(conn).evaluate(a.name, (t for _, t, _ in first), (label for label, _, _ in second),
                                                 batch_size=a.batch_size)
    ctx.print(f"documents {ev.num_documents}  accuracy {ev.accuracy:.6f}  macro F1 {ev.macro_f1:.6f}  "
              f"weighted F1 {ev.weighted_f1:.6f}  log loss {ev.log_loss:.6f}")
    for c in ev.classes:
        ctx.print(f"  {c.label}: precision {c.precision:.6f} recall {c.recall:.6f} f1 {c.f1:.6f} "
                  f"support {c.support:g}")


def cmd_fit(ctx: Context, conn: Connection) -> None:
    a = ctx.args
    with ctx.bar(unit="rows" if a.file.endswith(".npy") else "B", unit_scale=True, desc=f"fit {a.name}") as bar:
        result = GenerativeClient(conn).fit(read_rows(a.file, bar, a.chunk_rows), a.family, name=a.name,
                                            seed=a.seed, **parse_settings(a.set))
    final = f", log-likelihood {result.log_likelihood[-1]:.6f}" if result.log_likelihood.size else ""
    ctx.print(f"fitted {result.info.name} version {result.info.version} ({result.info.family}): "
              f"{result.num_rows} rows, {result.n_iter} iterations, converged {str(result.converged).lower()}"
              f"{final}, seed {result.seed}")


@contextlib.contextmanager
def replaced_on_success(path: pathlib.Path) -> Iterator[pathlib.Path]:
    """The path to write `path`'s new content to: a temporary file next to it (in the same directory, so the rename
    is atomic), renamed over `path` when the block ends and removed when it raises, so that a command that fails
    midway leaves no partial file and an existing one untouched. The file gets the mode that open() would give it
    (an existing file's). A path that is not a regular file (a FIFO), or in /dev or /proc (/dev/stdout, which may be
    a pipe, a terminal or the file stdout was redirected to: that file must not be replaced), is written in place."""
    try:
        existing: Optional[os.stat_result] = os.stat(path)
    except FileNotFoundError:
        existing = None
    target = pathlib.Path(os.path.realpath(path))  # through a symlink: the link stays, its target is replaced
    special = any(str(p).startswith(("/dev/", "/proc/")) for p in (pathlib.Path(os.path.abspath(path)), target))
    if special or (existing is not None and not stat.S_ISREG(existing.st_mode)):
        yield path
        return
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    os.close(fd)
    temporary = pathlib.Path(name)
    try:
        if existing is not None:
            mode = stat.S_IMODE(existing.st_mode)
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(temporary, mode)
        yield temporary
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def cmd_sample(ctx: Context, conn: Connection) -> None:
    """Writes the samples to a temporary file that becomes --out only when all of them arrived: a stream that fails
    midway (a deadline, a server restart) used to leave a full-size .npy whose missing rows were zeros."""
    a = ctx.args
    out = pathlib.Path(a.out)
    client = GenerativeClient(conn)
    written = 0
    seed: Optional[int] = a.seed
    npy: Optional[np.memmap[Any, Any]] = None
    with replaced_on_success(out) as path, contextlib.ExitStack() as stack:
        csv = None if out.suffix == ".npy" else stack.enter_context(open(path, "w", encoding="utf-8"))
        bar = stack.enter_context(ctx.bar(total=a.n, unit="samples", unit_scale=True, desc=f"sample {a.name}"))
        for batch in client.sample_batches(a.name, a.n, seed=a.seed, batch_size=a.batch_size,
                                           start_index=a.start_index, timeout=a.timeout):  # as classify's
            seed = batch.seed
            if written + batch.x.shape[0] > a.n:
                raise DataLossError(grpc.StatusCode.DATA_LOSS, f"the server sent more than the {a.n} samples asked "
                                    "for", "Sample")
            if csv is not None:
                np.savetxt(csv, batch.x, delimiter=",", fmt="%.17g")
            else:
                if npy is None:  # the width is known with the first batch
                    npy = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(a.n, batch.x.shape[1]))
                npy[written:written + batch.x.shape[0]] = batch.x
            written += batch.x.shape[0]
            bar.update(batch.x.shape[0])
        if written != a.n:
            raise DataLossError(grpc.StatusCode.DATA_LOSS, f"the server ended the sample stream after {written} of "
                                f"the {a.n} samples asked for", "Sample")
        if npy is not None:
            npy.flush()
            del npy
    ctx.print(f"wrote {written} samples of {a.name} to {out} (seed {seed})")


def cmd_estimate(ctx: Context, conn: Connection) -> None:
    a = ctx.args
    rows = load_rows(a.file)
    client = GenerativeClient(conn)
    final = None
    with ctx.bar(total=a.max_samples or None, unit="samples/row", desc=f"estimate {a.name}") as bar:
        for estimate in client.stream_estimate(a.name, rows, a.estimator, a.num_samples, a.seed,
                                               target_standard_error=a.target_se, max_samples=a.max_samples):
            done = int(estimate.num_samples.min()) if estimate.num_samples.size else 0
            bar.update(max(0, done - bar.n))
            bar.set_postfix(max_se=f"{estimate.standard_error.max():.4g}")
            final = estimate
    if final is None:
        raise DataLossError(grpc.StatusCode.DATA_LOSS, "the server ended the stream without an estimate",
                            "StreamEstimate")
    with contextlib.ExitStack() as stack:
        # As sample --out: a write that fails midway (a full disk) leaves no truncated file, an existing one as it was.
        out = (stack.enter_context(open(stack.enter_context(replaced_on_success(pathlib.Path(a.out))), "w",
                                        encoding="utf-8")) if a.out else ctx.out)
        print("log_likelihood,standard_error,ess,num_samples,pareto_k", file=out)
        for values in zip(final.log_likelihood, final.standard_error, final.ess, final.num_samples, final.pareto_k):
            print(",".join(f"{v:.17g}" for v in values), file=out)
    ctx.print(f"# estimator {final.estimator}, seed {final.seed}, model version {final.model_version}, "
              f"stopped: {final.stop_reason}")


def cmd_models(ctx: Context, conn: Connection) -> Optional[int]:
    a = ctx.args
    models = Models(conn)
    if a.action != "list" and (a.page_size is not None or a.page_token is not None or a.allow_partial
                               or a.prefix is not None or a.all_versions):
        raise UsageError("--prefix, --all-versions, --page-size, --page-token and --allow-partial apply to "
                         f"'models list', not '{a.action}'")
    if a.action == "list" and (a.version is not None or a.name):
        raise UsageError("'models list' takes no NAME and no --version (--prefix P lists the names that begin with "
                         "P)")
    if a.action == "list":
        if a.page_token is not None and a.page_size is None:
            raise UsageError("--page-token needs --page-size (the size of the page it asks for)")
        if a.page_size is not None:  # one page, as the user pages
            if a.page_size < 1:
                raise UsageError(f"--page-size must be >= 1 (servers give at most 1000), got {a.page_size}")
            listed = models.list_page(a.prefix or "", kind=a.kind, all_versions=a.all_versions, page_size=a.page_size,
                                      page_token=a.page_token or "")
        else:
            listed = models.list(a.prefix or "", kind=a.kind, all_versions=a.all_versions)
        for m in listed:
            ctx.print(f"{m.name}\t{m.version}\t{m.kind}\t{m.family}\t{m.dimension}")
        # What the listing could not include, on stderr so that the table stays parseable.
        for backend in listed.missing_backends:
            print(f"warning: a backend did not answer, its models are not listed: {backend}", file=sys.stderr)
        for b in listed.unreadable:
            print(f"warning: {b.kind} model {b.name!r} version {b.version} cannot be read ({b.code}: {b.message}); "
                  "restore its file or delete the version", file=sys.stderr)
        if listed.next_page_token:
            print(f"more models may follow: the next page is --page-token={listed.next_page_token}", file=sys.stderr)
        # Unreadable versions are listed; a backend that did not answer leaves its models out.
        if listed.missing_backends and not a.allow_partial:
            return EXIT_INCOMPLETE
    elif a.action == "get":
        if not a.name:
            raise UsageError("models get needs a NAME")
        details = models.get(a.name, a.version or 0, kind=a.kind)
        ctx.print(json_format.MessageToJson(details.spec, indent=2, sort_keys=True))
    else:
        if not a.name:
            raise UsageError("models delete needs a NAME")
        deleted = models.delete(a.name, a.version or 0, kind=a.kind)
        ctx.print(f"deleted {a.name} versions {', '.join(str(v) for v in deleted)}")
    return None


# -- parser ---------------------------------------------------------------------------------------------------------
TRAIN_DESCRIPTION = """\
Train a text classifier from FILE: one example per line, 'label<TAB>text' (with --weighted
'label<TAB>weight<TAB>text'); blank lines are skipped, CRLF and a leading BOM accepted. Labels must be
UTF-8; texts are sent as they are, so --decode-error says what a text that is not UTF-8 becomes. The
vectorizer and classifier options are scikit-learn's (CountVectorizer / HashingVectorizer / TfidfTransformer,
MultinomialNB / ComplementNB / BernoulliNB) with dashes for underscores, and the same defaults. Options not
given mean the service's defaults, or with --partial the continued version's. Options that do not apply
to the chosen vectorizer or classifier are usage errors (exit status 2)."""


MODELS_DESCRIPTION = """\
list: NAME VERSION KIND FAMILY DIMENSION per model (tab-separated), every model, asked for page by page;
with --page-size N one page of at most N and, when more may follow, the next page's --page-token on
stderr. When a backend did not answer the gateway, the listing is printed without its models, with a
warning on stderr, and the exit status is 3 (listing incomplete) unless --allow-partial; versions that
cannot be read are listed (a warning, exit 0). get / delete NAME: without --kind, the service that has
the name is found in the listing."""

EPILOG = """\
exit status (as maas's): 0 ok; 1 error ("error: <CODE>: <message>" on stderr): a failed call, or an
input file that cannot be read or holds a bad line; 2 usage error: a bad command line (option, value
or combination); 3 listing incomplete: a backend did not answer (models list, unless --allow-partial);
141 output closed early (| head: 128 + SIGPIPE, silently)."""


def _timeout(text: str) -> float:
    """--timeout: seconds >= 0, where 0 and inf mean no deadline (math.inf for the client), as maas --timeout."""
    seconds = _at_least_zero(text, "seconds >= 0 (0 or inf: no deadline)")
    return seconds if seconds > 0 else math.inf


def _reconnect_backoff_max(text: str) -> float:
    """--reconnect-backoff-max: seconds the client's reconnect_backoff_max takes (its own check,
    reconnect_backoff_options), else a usage error naming the option rather than the client's InvalidArgumentError
    once connecting (exit 1)."""
    try:
        seconds = float(text)
        reconnect_backoff_options(seconds)
    except ValueError:  # float's, or reconnect_backoff_options's InvalidArgumentError
        raise argparse.ArgumentTypeError(f"expected seconds in [0.001, {MAX_RECONNECT_BACKOFF_MAX}], got {text!r}") \
            from None
    return seconds


def _integer(low: int, high: int) -> Any:
    """An argparse type: an integer in [low, high] (the range of the field the option fills), else a usage error
    (exit 2) naming the option, as maas's flag checks; the client would refuse it only once called (exit 1)."""
    bounds = f">= {low}" if high in (UINT64_MAX, INT64_MAX) else f"in [{low}, {high}]"

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer {bounds}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer {bounds}, got {text!r}")
        return value
    return parse


def _nonnegative(text: str) -> float:
    """An argparse type: a number >= 0 (not NaN)."""
    return _at_least_zero(text, "a number >= 0")


def _at_least_zero(text: str, expected: str) -> float:
    """float(text) if it is >= 0 (not NaN), else an argparse error "expected <expected>, got <text>"."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m maas_client", description="maas command line (Python client)",
                                epilog=EPILOG)
    p.add_argument("--target", default=os.environ.get("MAAS_TARGET", "127.0.0.1:50051"),
                   help="gateway or service address (default $MAAS_TARGET or 127.0.0.1:50051)")
    p.add_argument("--timeout", type=_timeout, default=600.0,
                   help="deadline of each call, seconds (default 600; 0 or inf: no deadline, as in maas)")
    p.add_argument("--tls", action="store_true", help="TLS with the system's root certificates")
    p.add_argument("--ca-file", help="PEM of the CA that signed the server's certificate (implies TLS)")
    p.add_argument("--cert-file", help="client certificate PEM (mutual TLS; with --key-file)")
    p.add_argument("--key-file", help="client private key PEM (mutual TLS)")
    p.add_argument("--server-name", help="name to check the server's certificate against")
    p.add_argument("--token-file", help="file holding the bearer token for calls that change state")
    p.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                   help="progress bars on stderr (auto: only on a terminal)")
    p.add_argument("--max-message-bytes", "--max_message_bytes", type=int, metavar="N",
                   help="largest message received, bytes (default 64 MiB; models list asks for pages no larger)")
    p.add_argument("--reconnect-backoff-max", "--reconnect_backoff_max", type=_reconnect_backoff_max,
                   metavar="SECONDS", help="longest wait between connection attempts to a server that is down "
                   "(default 5; gRPC's own is 120; maas --reconnect_backoff_max_ms)")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a text classifier from a TSV file (label<TAB>text per line)",
                       usage="%(prog)s NAME FILE [--weighted] [--partial [--classes A,B,...]] [options]",
                       description=TRAIN_DESCRIPTION,
                       # Many options share prefixes (--norm, --hashing-norm, --no-...): a shortened name must not
                       # silently pick one of them.
                       allow_abbrev=False)
    t.add_argument("name", metavar="NAME", help="model name (a new version of it is stored)")
    t.add_argument("file", metavar="FILE", help="the TSV file")
    t.add_argument("--weighted", action="store_true",
                   help="FILE holds 'label<TAB>weight<TAB>text' lines (scikit-learn's sample_weight, >= 0)")
    t.add_argument("--partial", action="store_true", help="continue the latest version (partial_fit; a hashing "
                   "vectorizer or a fixed vocabulary)")
    t.add_argument("--classes", metavar="A,B,...", help="partial_fit's classes, comma-separated: every label the "
                   "model will ever see (needed on the first partial call; without --partial they fix the classes)")
    t.add_argument("--integer-labels", action="store_true",
                   help="the labels (and --classes) are integers, ordered numerically as scikit-learn orders an "
                   "integer y (9 before 10; LABEL_TYPE_INT64), not as strings")
    t.add_argument("--batch-size", type=_integer(1, UINT64_MAX), default=1000,
                   help="examples per streamed message (default 1000)")
    flag = argparse.BooleanOptionalAction
    v = t.add_argument_group("vectorizer (text options of both vectorizers)")
    v.add_argument("--vectorizer", metavar="{count,hashing,tfidf}",
                   help="CountVectorizer (default), HashingVectorizer, or tfidf = count with --tfidf")
    v.add_argument("--analyzer", metavar="{word,char,char_wb}")
    v.add_argument("--ngram-range", metavar="MIN,MAX", help="n-gram sizes (one N: N,N)")
    v.add_argument("--lowercase", action=flag)
    v.add_argument("--strip-accents", metavar="{ascii,unicode,none}")
    v.add_argument("--stop-words", metavar="english", help="a built-in stop word list (word analyzer)")
    v.add_argument("--stop-words-file", metavar="F", help="stop words, one per line (UTF-8)")
    v.add_argument("--token-pattern", metavar="RE", help=r"token regex (default (?u)\b\w\w+\b)")
    v.add_argument("--binary", action=flag, help="count each term at most once per text")
    v.add_argument("--decode-error", metavar="{strict,replace,ignore}",
                   help="what a text that is not UTF-8 becomes (default strict: the call fails naming it)")
    v = t.add_argument_group("count vectorizer only")
    v.add_argument("--min-df", metavar="N|F", help="min document frequency: an integer is a number of documents, "
                   "a number with '.' a fraction")
    v.add_argument("--max-df", metavar="N|F", help="max document frequency (as --min-df)")
    v.add_argument("--max-features", metavar="N", help="keep the N most frequent terms")
    v.add_argument("--vocabulary-file", metavar="F", help="a fixed vocabulary, one term per line (UTF-8)")
    v = t.add_argument_group("hashing vectorizer only (--vectorizer hashing)")
    v.add_argument("--n-features", metavar="N", help="number of columns (default 2**20)")
    v.add_argument("--alternate-sign", action=flag)
    v.add_argument("--hashing-norm", metavar="{l1,l2,none}",
                   help="the hashing vectorizer's own norm under --tfidf (without --tfidf: --norm)")
    v = t.add_argument_group("tf-idf (--tfidf)")
    v.add_argument("--tfidf", action=flag, help="TF-IDF weighting on top of the vectorizer")
    v.add_argument("--norm", metavar="{l1,l2,none}",
                   help="TF-IDF's row norm; without --tfidf, the hashing vectorizer's (raw counts have none)")
    v.add_argument("--use-idf", action=flag)
    v.add_argument("--smooth-idf", action=flag)
    v.add_argument("--sublinear-tf", action=flag)
    v = t.add_argument_group("classifier")
    v.add_argument("--classifier", metavar="{multinomial_nb,complement_nb,bernoulli_nb}",
                   help="default multinomial_nb")
    v.add_argument("--alpha", metavar="A", help="additive smoothing (default 1.0)")
    v.add_argument("--force-alpha", action=flag, help="use alpha as given (--no-force-alpha: at least 1e-10)")
    v.add_argument("--fit-prior", action=flag, help="learn class priors (--no-fit-prior: uniform)")
    v.add_argument("--class-prior", metavar="P1,P2,...", help="fixed class priors in sorted class order")
    v.add_argument("--binarize", metavar="T|none", help="bernoulli_nb only: threshold (default 0.0) or none")
    v.add_argument("--complement-norm", action=flag, help="complement_nb only: its norm")
    t.set_defaults(run=cmd_train)

    c = sub.add_parser("classify", help="classify texts (arguments, or --file with one text per line)",
                       description="Prints LABEL<TAB>PROBABILITY per text, in order. The texts may come before or "
                       "after the options (a text that begins with '-' after a '--').")
    c.add_argument("name")
    c.add_argument("texts", nargs="*")
    c.add_argument("--file", help="one text per line; '-' reads stdin")
    c.add_argument("--batch-size", type=_integer(1, UINT64_MAX), default=1000, help="texts per streamed request")
    c.set_defaults(run=cmd_classify)

    e = sub.add_parser("evaluate", help="evaluate a text classifier on a TSV file")
    e.add_argument("name")
    e.add_argument("file")
    e.add_argument("--batch-size", type=_integer(1, UINT64_MAX), default=1000)
    e.set_defaults(run=cmd_evaluate)

    f = sub.add_parser("fit", help="fit a generative model to the rows of a CSV or NPY file")
    f.add_argument("name")
    f.add_argument("file")
    f.add_argument("--family", choices=FIT_FAMILIES, required=True)
    f.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a hyperparameter of the family, e.g. n_components=3 or covariance_type=diag")
    f.add_argument("--seed", type=_integer(0, UINT64_MAX))
    f.add_argument("--chunk-rows", type=_integer(1, UINT64_MAX), default=CHUNK_ROWS,
                   help=f"rows per message (default {CHUNK_ROWS}; fewer when they hold more than 4 MiB of values)")
    f.set_defaults(run=cmd_fit)

    s = sub.add_parser("sample", help="stream samples into a .npy or .csv file")
    s.add_argument("name")
    s.add_argument("n", type=_integer(1, UINT64_MAX))
    s.add_argument("--out", required=True, help="output file: .npy or anything else = CSV; written to a temporary "
                   "file renamed to it once every sample arrived (a failed call leaves no file, or the old one)")
    s.add_argument("--seed", type=_integer(0, UINT64_MAX))
    s.add_argument("--batch-size", type=_integer(0, UINT32_MAX), default=0)
    s.add_argument("--start-index", type=_integer(0, UINT64_MAX), default=0)
    s.set_defaults(run=cmd_sample)

    m = sub.add_parser("estimate", help="streamed log p(x) estimates of the rows of a CSV or NPY file")
    m.add_argument("name")
    m.add_argument("file")
    m.add_argument("--estimator", choices=ESTIMATORS)
    m.add_argument("--num-samples", type=_integer(0, UINT64_MAX), default=0,
                   help="samples per row and step (0: server default)")
    m.add_argument("--target-se", type=_nonnegative, default=0.0,
                   help="stop when every row's standard error is below")
    m.add_argument("--max-samples", type=_integer(0, UINT64_MAX), default=0,
                   help="cap on samples per row (0: server limit)")
    m.add_argument("--seed", type=_integer(0, UINT64_MAX))
    m.add_argument("--out", help="CSV output file (default stdout)")
    m.set_defaults(run=cmd_estimate)

    g = sub.add_parser("models", help="list, get or delete models", description=MODELS_DESCRIPTION)
    g.add_argument("action", choices=("list", "get", "delete"))
    g.add_argument("name", nargs="?", default="")
    g.add_argument("--version", type=_integer(0, INT64_MAX), help="get / delete: the version (default 0: get the "
                   "latest, delete every version)")
    g.add_argument("--kind", choices=KINDS)
    g.add_argument("--prefix", help="list: the names that begin with it")
    g.add_argument("--all-versions", action="store_true", help="list: every version, not only the latest")
    g.add_argument("--page-size", "--page_size", type=int, metavar="N",
                   help="list: one page of at most N models (servers give at most 1000), and when more may follow "
                   "the next page's --page-token on stderr")
    g.add_argument("--page-token", "--page_token", metavar="T", help="list --page-size: the page after the one "
                   "that gave it")
    g.add_argument("--allow-partial", "--allow_partial", action="store_true",
                   help="list: exit 0 when a backend did not answer (default: exit 3, listing incomplete)")
    g.set_defaults(run=cmd_models)
    return p


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command line. classify's texts may come after its options too (`classify NAME --batch-size 10 "a text"`):
    argparse stops filling a nargs="*" positional at the first option, and called what follows unrecognized."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        # What follows a "--" is texts whatever they look like; before it, an unknown option is an error.
        head = extras[:extras.index("--")] if "--" in extras else extras
        if args.command == "classify" and not any(e.startswith("-") and e != "-" for e in head):
            args.texts.extend(e for i, e in enumerate(extras) if not (e == "--" and i == len(head)))
        else:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def _os_error_code(e: OSError) -> str:
    """The status code name an OSError is reported with (maas reports a file it cannot open as NOT_FOUND)."""
    if isinstance(e, (FileNotFoundError, NotADirectoryError)):
        return "NOT_FOUND"
    if isinstance(e, PermissionError):
        return "PERMISSION_DENIED"
    if isinstance(e, IsADirectoryError):
        return "INVALID_ARGUMENT"
    return "UNKNOWN"


def _quiet_stdout() -> None:
    """After a broken pipe: stdout to /dev/null, so that the interpreter's own flush at exit does not fail again
    (Python would print "Exception ignored ... BrokenPipeError")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass


def main(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None) -> int:
    """Runs the command line; returns the exit status (a bad command line exits 2 through argparse)."""
    args = parse_args(argv)
    ctx = Context(args, out or sys.stdout)
    try:
        with ctx.connection() as conn:
            status = args.run(ctx, conn)
        ctx.out.flush()
    except BrokenPipeError:  # the reader went away (| head): silently, as a program killed by SIGPIPE
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except MaasError as e:
        print(f"error: {e.code.name}: {e.message}", file=sys.stderr)
        return EXIT_ERROR
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except InputError as e:
        print(f"error: INVALID_ARGUMENT: {e}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:
        where = f"{e.filename}: " if e.filename is not None else ""
        print(f"error: {_os_error_code(e)}: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_ERROR
    except ValueError as e:  # a bad connection option's value (an empty token file, a CA that holds no certificate)
        print(f"error: INVALID_ARGUMENT: {e}", file=sys.stderr)
        return EXIT_ERROR
    return status or 0
