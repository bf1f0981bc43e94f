"""`python -m maas_client`: train from TSV files, fit from CSV/NPY, sample to NPY/CSV, streamed estimation and
model management, with progress bars (tqdm, on stderr; --progress never|always|auto).

    python -m maas_client --target 127.0.0.1:50051 train spam corpus.tsv
    python -m maas_client classify spam "cheap pills now"
    python -m maas_client fit blobs data.csv --family gaussian_mixture --set n_components=3 --seed 7
    python -m maas_client sample blobs 100000 --seed 1 --out draws.npy
    python -m maas_client estimate blobs rows.npy --estimator importance --target-se 0.01 --max-samples 100000
    python -m maas_client models list

Input files are read lazily (TSV line by line, CSV and NPY in chunks), so large files stream. Errors print one
line "error: <CODE>: <message>" and exit with status 1 (2 for bad command-line usage).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import math
import os
import pathlib
import sys
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Sequence, TextIO, Tuple, Union

import numpy as np
from google.protobuf import json_format
from tqdm import tqdm

from maas_client.connection import Connection
from maas_client.discriminative import DiscriminativeClient
from maas_client.errors import MaasError
from maas_client.generative import ESTIMATORS, FIT_FAMILIES, GenerativeClient
from maas_client.models import KINDS, Models
from maas_client.pb import discriminative as dpb
from maas_client.types import FloatArray

# Rows per chunk read from CSV / NPY files and sent per FitModel message.
CHUNK_ROWS = 8192


class UsageError(Exception):
    """A bad command line or input file (exit status 2)."""


# -- input files ----------------------------------------------------------------------------------------------------
def read_tsv(path: str, progress: "tqdm[Any]", weighted: bool = False) -> Iterator[Tuple[str, bytes, float]]:
    """(label, text, weight) per non-blank line, read lazily: 'label<TAB>text' (weight 1.0), or with `weighted`
    'label<TAB>weight<TAB>text' (weight a finite number >= 0). Labels must be UTF-8; texts are the line's bytes as
    they are (the client decodes UTF-8 ones, and the model's decode_error handles the others). CRLF and a leading
    UTF-8 BOM are accepted; progress counts bytes."""
    expected = "label<TAB>weight<TAB>text" if weighted else "label<TAB>text"
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
                raise UsageError(f"{where}: expected '{expected}' (--weighted)" if weighted
                                 else f"{where}: expected '{expected}' but found no tab")
            label = label.strip()
            if not label:
                raise UsageError(f"{where}: empty label before the tab")
            try:
                decoded = label.decode("utf-8")
            except UnicodeDecodeError:
                raise UsageError(f"{where}: the label is not valid UTF-8") from None
            weight = 1.0
            if weighted:
                weight = _finite(field.decode("utf-8", "replace"), f"{where}: weight")
                if weight < 0:
                    raise UsageError(f"{where}: weight must be >= 0")
            yield decoded, text, weight


def _csv_chunk(lines: List[str], path: str, first_line: int) -> FloatArray:
    try:
        a = np.loadtxt(io.StringIO("".join(lines)), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise UsageError(f"{path}: lines {first_line}-{first_line + len(lines) - 1}: {e}") from e
    return a


def read_rows(path: str, progress: "tqdm[Any]", chunk_rows: int = CHUNK_ROWS) -> Iterator[FloatArray]:
    """Chunks of rows of a .npy file (2-D, memory-mapped) or a CSV file (comma-separated numbers, '#' comments;
    any other extension is read as CSV). progress counts rows (NPY) or bytes (CSV)."""
    if path.endswith(".npy"):
        try:
            a = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as e:
            raise UsageError(f"{path}: not a readable .npy file: {e}") from e
        if a.ndim == 1:
            a = a.reshape(-1, 1)
        if a.ndim != 2:
            raise UsageError(f"{path}: expected a 2-D array, got shape {a.shape}")
        progress.reset(total=a.shape[0])
        for start in range(0, a.shape[0], chunk_rows):
            chunk = np.asarray(a[start:start + chunk_rows], dtype=np.float64)
            yield chunk
            progress.update(chunk.shape[0])
        return
    progress.reset(total=os.path.getsize(path))
    with open(path, "r", encoding="utf-8") as f:
        lines: List[str] = []
        first = 1
        for number, line in enumerate(f, start=1):
            progress.update(len(line.encode("utf-8")))
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if not lines:
                first = number
            lines.append(line)
            if len(lines) >= chunk_rows:
                yield _csv_chunk(lines, path, first)
                lines = []
        if lines:
            yield _csv_chunk(lines, path, first)


def load_rows(path: str) -> FloatArray:
    with tqdm(disable=True) as silent:
        chunks = list(read_rows(path, silent))
    if not chunks:
        raise UsageError(f"{path}: no rows")
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


def _finite(value: str, what: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"{what}: {value.strip()!r} is not a number") from None
    if not math.isfinite(number):
        raise UsageError(f"{what}: {value.strip()!r} is not a finite number")
    return number


# -- commands -------------------------------------------------------------------------------------------------------
class Context:
    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.args = args
        self.out = out
        self.disable_progress: Optional[bool] = {"auto": None, "always": False, "never": True}[args.progress]

    def connection(self) -> Connection:
        a = self.args
        return Connection(a.target, timeout=a.timeout, tls=a.tls, root_certificates=a.ca_file,
                          client_certificate=a.cert_file, client_key=a.key_file, server_name=a.server_name,
                          token_file=a.token_file)

    def bar(self, **kwargs: Any) -> "tqdm[Any]":
        return tqdm(disable=self.disable_progress, file=sys.stderr, dynamic_ncols=True, **kwargs)

    def print(self, *parts: object) -> None:
        print(*parts, file=self.out)


def cmd_train(ctx: Context, conn: Connection) -> None:
    a = ctx.args
    vectorizer: Optional[dpb.VectorizerConfig] = None
    classifier: Optional[dpb.ClassifierConfig] = None
    # With --partial, options not given mean the continued version's (the service fills them in).
    if a.vectorizer is not None or not a.partial:
        vectorizer = dpb.VectorizerConfig()
        if a.vectorizer in (None, "count"):
            vectorizer.count.SetInParent()
        elif a.vectorizer == "tfidf":
            vectorizer.count.SetInParent()
            vectorizer.tfidf.SetInParent()
        else:
            vectorizer.hashing.SetInParent()
    if a.classifier is not None or a.alpha is not None or not a.partial:
        kind = a.classifier or "multinomial_nb"
        classifier = dpb.ClassifierConfig()
        getattr(classifier, kind).SetInParent()
        if a.alpha is not None:
            getattr(classifier, kind).alpha = a.alpha
    classes = [c.strip() for c in a.classes.split(",")] if a.classes else None
    with ctx.bar(total=os.path.getsize(a.file), unit="B", unit_scale=True, desc=f"train {a.name}") as bar:
        first, second = itertools.tee(read_tsv(a.file, bar))
        result = DiscriminativeClient(conn).train((t for _, t, _ in first), (label for label, _, _ in second),
                                                  name=a.name, vectorizer=vectorizer, classifier=classifier,
                                                  batch_size=a.batch_size, partial=a.partial, classes=classes)
    ctx.print(f"trained {result.info.name} version {result.info.version}: {result.num_documents} documents, "
              f"{result.num_features} features, classes {', '.join(result.classes)}")


def _texts(ctx: Context) -> Tuple[Iterator[Union[str, bytes]], Optional[int]]:
    a = ctx.args
    if a.file is None:
        if not a.texts:
            raise UsageError("give texts as arguments or --file FILE (one text per line, '-' = stdin)")
        return iter(a.texts), len(a.texts)
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
        for predictions in client.classify_stream(a.name, texts, batch_size=a.batch_size):
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


def cmd_sample(ctx: Context, conn: Connection) -> None:
    a = ctx.args
    out = pathlib.Path(a.out)
    client = GenerativeClient(conn)
    written = 0
    seed: Optional[int] = a.seed
    npy: Optional[np.memmap[Any, Any]] = None
    with contextlib.ExitStack() as stack:
        csv = None if out.suffix == ".npy" else stack.enter_context(open(out, "w", encoding="utf-8"))
        bar = stack.enter_context(ctx.bar(total=a.n, unit="samples", unit_scale=True, desc=f"sample {a.name}"))
        for batch in client.sample_batches(a.name, a.n, seed=a.seed, batch_size=a.batch_size,
                                           start_index=a.start_index):
            seed = batch.seed
            if csv is not None:
                np.savetxt(csv, batch.x, delimiter=",", fmt="%.17g")
            else:
                if npy is None:  # the width is known with the first batch; the file is written in place
                    npy = np.lib.format.open_memmap(out, mode="w+", dtype=np.float64, shape=(a.n, batch.x.shape[1]))
                npy[written:written + batch.x.shape[0]] = batch.x
            written += batch.x.shape[0]
            bar.update(batch.x.shape[0])
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
        raise UsageError("the server sent no estimate")
    out = open(a.out, "w", encoding="utf-8") if a.out else ctx.out
    with contextlib.closing(out) if a.out else contextlib.nullcontext():
        print("log_likelihood,standard_error,ess,num_samples,pareto_k", file=out)
        for values in zip(final.log_likelihood, final.standard_error, final.ess, final.num_samples, final.pareto_k):
            print(",".join(f"{v:.17g}" for v in values), file=out)
    ctx.print(f"# estimator {final.estimator}, seed {final.seed}, model version {final.model_version}, "
              f"stopped: {final.stop_reason}")


def cmd_models(ctx: Context, conn: Connection) -> None:
    a = ctx.args
    models = Models(conn)
    if a.action == "list":
        for m in models.list(a.prefix, kind=a.kind, all_versions=a.all_versions):
            ctx.print(f"{m.name}\t{m.version}\t{m.kind}\t{m.family}\t{m.dimension}")
    elif a.action == "get":
        if not a.name:
            raise UsageError("models get needs a NAME")
        details = models.get(a.name, a.version, kind=a.kind)
        ctx.print(json_format.MessageToJson(details.spec, indent=2, sort_keys=True))
    else:
        if not a.name:
            raise UsageError("models delete needs a NAME")
        deleted = models.delete(a.name, a.version, kind=a.kind)
        ctx.print(f"deleted {a.name} versions {', '.join(str(v) for v in deleted)}")


# -- parser ---------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m maas_client", description="maas command line (Python client)")
    p.add_argument("--target", default=os.environ.get("MAAS_TARGET", "127.0.0.1:50051"),
                   help="gateway or service address (default $MAAS_TARGET or 127.0.0.1:50051)")
    p.add_argument("--timeout", type=float, default=600.0, help="deadline of each call, seconds (default 600)")
    p.add_argument("--tls", action="store_true", help="TLS with the system's root certificates")
    p.add_argument("--ca-file", help="PEM of the CA that signed the server's certificate (implies TLS)")
    p.add_argument("--cert-file", help="client certificate PEM (mutual TLS; with --key-file)")
    p.add_argument("--key-file", help="client private key PEM (mutual TLS)")
    p.add_argument("--server-name", help="name to check the server's certificate against")
    p.add_argument("--token-file", help="file holding the bearer token for calls that change state")
    p.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                   help="progress bars on stderr (auto: only on a terminal)")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a text classifier from a TSV file (label<TAB>text per line)")
    t.add_argument("name")
    t.add_argument("file")
    t.add_argument("--vectorizer", choices=("count", "tfidf", "hashing"),
                   help="default count (with --partial: the continued version's)")
    t.add_argument("--classifier", choices=("multinomial_nb", "complement_nb", "bernoulli_nb"),
                   help="default multinomial_nb (with --partial: the continued version's)")
    t.add_argument("--alpha", type=float)
    t.add_argument("--partial", action="store_true", help="continue the latest version (partial_fit)")
    t.add_argument("--classes", help="partial_fit's classes, comma-separated (needed on the first partial call)")
    t.add_argument("--batch-size", type=int, default=1000)
    t.set_defaults(run=cmd_train)

    c = sub.add_parser("classify", help="classify texts (arguments, or --file with one text per line)")
    c.add_argument("name")
    c.add_argument("texts", nargs="*")
    c.add_argument("--file", help="one text per line; '-' reads stdin")
    c.add_argument("--batch-size", type=int, default=1000)
    c.set_defaults(run=cmd_classify)

    e = sub.add_parser("evaluate", help="evaluate a text classifier on a TSV file")
    e.add_argument("name")
    e.add_argument("file")
    e.add_argument("--batch-size", type=int, default=1000)
    e.set_defaults(run=cmd_evaluate)

    f = sub.add_parser("fit", help="fit a generative model to the rows of a CSV or NPY file")
    f.add_argument("name")
    f.add_argument("file")
    f.add_argument("--family", choices=FIT_FAMILIES, required=True)
    f.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a hyperparameter of the family, e.g. n_components=3 or covariance_type=diag")
    f.add_argument("--seed", type=int)
    f.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS)
    f.set_defaults(run=cmd_fit)

    s = sub.add_parser("sample", help="stream samples into a .npy or .csv file")
    s.add_argument("name")
    s.add_argument("n", type=int)
    s.add_argument("--out", required=True, help="output file: .npy (written in place) or anything else = CSV")
    s.add_argument("--seed", type=int)
    s.add_argument("--batch-size", type=int, default=0)
    s.add_argument("--start-index", type=int, default=0)
    s.set_defaults(run=cmd_sample)

    m = sub.add_parser("estimate", help="streamed log p(x) estimates of the rows of a CSV or NPY file")
    m.add_argument("name")
    m.add_argument("file")
    m.add_argument("--estimator", choices=ESTIMATORS)
    m.add_argument("--num-samples", type=int, default=0, help="samples per row and step (0: server default)")
    m.add_argument("--target-se", type=float, default=0.0, help="stop when every row's standard error is below")
    m.add_argument("--max-samples", type=int, default=0, help="cap on samples per row (0: server limit)")
    m.add_argument("--seed", type=int)
    m.add_argument("--out", help="CSV output file (default stdout)")
    m.set_defaults(run=cmd_estimate)

    g = sub.add_parser("models", help="list, get or delete models")
    g.add_argument("action", choices=("list", "get", "delete"))
    g.add_argument("name", nargs="?", default="")
    g.add_argument("--version", type=int, default=0)
    g.add_argument("--kind", choices=KINDS)
    g.add_argument("--prefix", default="")
    g.add_argument("--all-versions", action="store_true")
    g.set_defaults(run=cmd_models)
    return p


def main(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None) -> int:
    args = build_parser().parse_args(argv)
    ctx = Context(args, out or sys.stdout)
    try:
        with ctx.connection() as conn:
            args.run(ctx, conn)
    except MaasError as e:
        print(f"error: {e.code.name}: {e.message}", file=sys.stderr)
        return 1
    except (UsageError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
