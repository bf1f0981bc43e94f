"""`python -m maas_client` command-line handling against in-process fake services: where texts may go, which values
are usage errors, and exit statuses that are the C++ CLI's (`maas`).

- `classify NAME --batch-size 10 "a text"` was refused ("unrecognized arguments"): argparse stops filling the texts
  at the first option. Texts may now come before and after the options, in order.
- Option values that maas refuses as usage errors (exit 2) were sent and refused by the client or the server (exit
  1): `sample NAME 0`, `models get NAME --version -1`, `--batch-size 0`, `--seed -1`, `--target-se -1`;
  `--chunk-rows 0` crashed in range() (exit 2 with "range() arg 3 must not be zero") and `--chunk-rows -1` read no
  row at all. `models list --version 3` / `models get --all-versions` were accepted and ignored.
- As in maas, 2 is the command line only: an input file that cannot be read or holds a bad line was exit 2 here and
  is exit 1 in maas ("maas: INVALID_ARGUMENT: F: line 2: ..."), as is now here ("error: INVALID_ARGUMENT: F:2: ...").
- Output closed early (`... | head`) exited 2 with "error: [Errno 32] Broken pipe"; maas dies of SIGPIPE, which a
  shell reports as 141. It now ends silently with 141."""

import concurrent.futures
import io
import re
import subprocess
import sys

import grpc
import numpy as np
import pytest

from maas_client.cli import main
from maas_client.pb import common, discriminative as dpb, generative as gpb


class Fakes:
    """ClassifyStream (every text "x" with probability 1; records the texts), Train and FitModel (read every message;
    answer the number of examples / rows) and Sample (rows [i, i / 2] in batches of 1000) of a fake endpoint."""

    def __init__(self):
        self.classified = []

    def classify_stream(self, requests, context):
        for request in requests:
            self.classified.extend(request.texts)
            yield dpb.ClassifyResponse(model_version=1, results=[
                dpb.Classification(label="x", scores=[dpb.ClassScore(label="x", probability=1.0)])
                for _ in request.texts])

    def train(self, requests, context):
        n = sum(len(r.batch.examples) for r in requests)
        return dpb.TrainResponse(info=common.ModelInfo(name="m", version=1),
                                 summary=dpb.TrainSummary(num_documents=n, classes=["a"]))

    def fit(self, requests, context):
        n = sum(r.rows.rows for r in requests)
        return gpb.FitModelResponse(info=common.ModelInfo(name="m", version=1), trace=gpb.FitTrace(num_rows=n))

    def sample(self, request, context):
        for start in range(0, request.num_samples, 1000):
            i = np.arange(start, min(start + 1000, request.num_samples), dtype=np.float64)
            x = np.column_stack([i, 0.5 * i])
            yield gpb.SampleBatch(start_index=start, seed=3, model_version=1,
                                  x=common.Matrix(rows=x.shape[0], cols=2, values=x.ravel().tolist()))


@pytest.fixture(scope="module")
def fake():
    fakes = Fakes()
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers([
        grpc.method_handlers_generic_handler("maas.discriminative.v1.DiscriminativeService", {
            "ClassifyStream": grpc.stream_stream_rpc_method_handler(
                fakes.classify_stream, request_deserializer=dpb.ClassifyRequest.FromString,
                response_serializer=dpb.ClassifyResponse.SerializeToString),
            "Train": grpc.stream_unary_rpc_method_handler(
                fakes.train, request_deserializer=dpb.TrainRequest.FromString,
                response_serializer=dpb.TrainResponse.SerializeToString)}),
        grpc.method_handlers_generic_handler("maas.generative.v1.GenerativeService", {
            "FitModel": grpc.stream_unary_rpc_method_handler(
                fakes.fit, request_deserializer=gpb.FitModelRequest.FromString,
                response_serializer=gpb.FitModelResponse.SerializeToString),
            "Sample": grpc.unary_stream_rpc_method_handler(
                fakes.sample, request_deserializer=gpb.SampleRequest.FromString,
                response_serializer=gpb.SampleBatch.SerializeToString)})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", fakes
    server.stop(None)


def pycli(capsys, address, *argv):
    """In process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    out = io.StringIO()
    try:
        status = main(["--target", address, "--progress", "never", "--timeout", "30", *map(str, argv)], out=out)
    except SystemExit as e:  # argparse's own errors
        status = e.code
    return status, out.getvalue(), capsys.readouterr().err


@pytest.mark.parametrize("argv, texts", [
    (["--batch-size", "10", "a goal"], ["a goal"]),
    (["first", "--batch-size", "1", "second", "third"], ["first", "second", "third"]),
    (["one", "two", "--batch-size", "1"], ["one", "two"]),
    (["--batch-size", "2", "--", "-dashed", "plain"], ["-dashed", "plain"]),
])
def test_classify_texts_may_come_after_the_options(fake, capsys, argv, texts):
    address, fakes = fake
    fakes.classified.clear()
    status, out, err = pycli(capsys, address, "classify", "m", *argv)
    assert status == 0, err
    assert fakes.classified == texts and out == "x\t1.000000\n" * len(texts)


def test_classify_refuses_unknown_options_and_texts_with_a_file(fake, capsys, tmp_path):
    address, fakes = fake
    fakes.classified.clear()
    status, _, err = pycli(capsys, address, "classify", "m", "a text", "--bogus")
    assert status == 2 and "unrecognized arguments: --bogus" in err
    (tmp_path / "texts.txt").write_text("one\n")
    status, _, err = pycli(capsys, address, "classify", "m", "a text", "--file", tmp_path / "texts.txt")
    assert status == 2 and err == "error: give texts as arguments or --file FILE, not both\n"
    assert fakes.classified == []


@pytest.mark.parametrize("argv, message", [
    (["fit", "m", "x.npy", "--family", "uniform", "--chunk-rows", "0"], "--chunk-rows: expected an integer >= 1"),
    (["fit", "m", "x.npy", "--family", "uniform", "--chunk-rows", "-1"], "--chunk-rows: expected an integer >= 1"),
    (["fit", "m", "x.npy", "--family", "uniform", "--seed", "-1"], "--seed: expected an integer >= 0"),
    (["sample", "m", "0", "--out", "s.npy"], "argument n: expected an integer >= 1, got '0'"),
    (["sample", "m", "5", "--out", "s.npy", "--batch-size", str(2**32)],
     r"--batch-size: expected an integer in \[0, 4294967295\]"),
    (["sample", "m", "5", "--out", "s.npy", "--seed", str(2**64)], "--seed: expected an integer >= 0"),
    (["sample", "m", "5", "--out", "s.npy", "--start-index", "-3"], "--start-index: expected an integer >= 0"),
    (["classify", "m", "t", "--batch-size", "0"], "--batch-size: expected an integer >= 1"),
    (["train", "m", "t.tsv", "--batch-size", "0"], "--batch-size: expected an integer >= 1"),
    (["evaluate", "m", "t.tsv", "--batch-size", "x"], "--batch-size: expected an integer >= 1"),
    (["estimate", "m", "x.npy", "--target-se", "-1"], "--target-se: expected a number >= 0"),
    (["estimate", "m", "x.npy", "--target-se", "nan"], "--target-se: expected a number >= 0"),
    (["estimate", "m", "x.npy", "--num-samples", "-1"], "--num-samples: expected an integer >= 0"),
    (["estimate", "m", "x.npy", "--max-samples", "1.5"], "--max-samples: expected an integer >= 0"),
    (["models", "get", "m", "--version", "-1"], "--version: expected an integer >= 0"),
    (["models", "list", "--version", "3"], "'models list' takes no NAME and no --version"),
    (["models", "list", "m"], "'models list' takes no NAME and no --version"),
    (["models", "get", "m", "--all-versions"], "--prefix, --all-versions, .* apply to 'models list', not 'get'"),
    (["models", "delete", "m", "--prefix", "m"], "--prefix, --all-versions, .* apply to 'models list', not 'delete'"),
    (["--reconnect-backoff-max", "0", "classify", "m", "t"],
     r"--reconnect-backoff-max.*: expected seconds in \[0.001, 2147483.647\], got '0'"),
    (["--reconnect-backoff-max", "nan", "classify", "m", "t"], r"--reconnect-backoff-max.*: expected seconds in"),
    (["--reconnect_backoff_max", "-1", "classify", "m", "t"], r"--reconnect-backoff-max.*: expected seconds in"),
    (["--reconnect-backoff-max", "2147484", "classify", "m", "t"], r"--reconnect-backoff-max.*: expected seconds in"),
    (["--reconnect-backoff-max", "5s", "classify", "m", "t"], r"--reconnect-backoff-max.*: expected seconds in"),
])
def test_bad_option_values_are_usage_errors_as_in_maas(capsys, argv, message):
    status, out, err = pycli(capsys, "127.0.0.1:1", *argv)  # nothing listens: nothing may be called
    assert status == 2 and out == "", err
    assert re.search(message, err), err


@pytest.mark.parametrize("argv, backoff", [
    ([], (1000, 5000)),  # the client's default
    (["--reconnect-backoff-max", "0.25"], (250, 250)),
    (["--reconnect_backoff_max", "30"], (1000, 30000)),
])
def test_reconnect_backoff_max_reaches_the_channel(fake, capsys, monkeypatch, argv, backoff):
    """As maas --reconnect_backoff_max_ms (there in ms, here in seconds as --timeout and the client's
    reconnect_backoff_max): the longest wait between connection attempts, which the CLI had no way to set."""
    address, _ = fake
    made = []
    insecure_channel = grpc.insecure_channel

    def record(*args, options=()):
        made.append(dict(options))
        return insecure_channel(*args, options=options)

    monkeypatch.setattr(grpc, "insecure_channel", record)
    status, _, err = pycli(capsys, address, *argv, "classify", "m", "a text")
    assert status == 0, err
    assert [(o["grpc.initial_reconnect_backoff_ms"], o["grpc.max_reconnect_backoff_ms"]) for o in made] == [backoff]


def test_input_files_that_cannot_be_read_or_hold_a_bad_line_are_errors_as_in_maas(fake, capsys, tmp_path):
    """maas reports them with status 1 ("maas: NOT_FOUND: cannot open ...", "maas: INVALID_ARGUMENT: F: line 2:
    ..."); they were usage errors (2) here."""
    address, _ = fake
    status, _, err = pycli(capsys, address, "fit", "m", tmp_path / "missing.csv", "--family", "uniform")
    assert (status, err) == (1, f"error: NOT_FOUND: {tmp_path / 'missing.csv'}: No such file or directory\n")
    (tmp_path / "bad.csv").write_text("1,2\n3,oops\n")
    status, _, err = pycli(capsys, address, "fit", "m", tmp_path / "bad.csv", "--family", "uniform")
    assert status == 1 and err.startswith(f"error: INVALID_ARGUMENT: {tmp_path / 'bad.csv'}: lines 1-2: ")
    (tmp_path / "bad.tsv").write_text("a\tfine\nno tab\n")
    status, _, err = pycli(capsys, address, "train", "m", tmp_path / "bad.tsv")
    assert (status, err) == (1, f"error: INVALID_ARGUMENT: {tmp_path / 'bad.tsv'}:2: expected 'label<TAB>text' but "
                                "found no tab\n")
    (tmp_path / "stop.txt").write_bytes(b"the\n\xff\n")
    (tmp_path / "good.tsv").write_text("a\tfine\n")
    status, _, err = pycli(capsys, address, "train", "m", tmp_path / "good.tsv", "--stop-words-file",
                           tmp_path / "stop.txt")
    assert (status, err) == (1, f"error: INVALID_ARGUMENT: {tmp_path / 'stop.txt'}:2: invalid UTF-8\n")
    (tmp_path / "token").write_text("  \n")
    status, _, err = pycli(capsys, address, "--token-file", tmp_path / "token", "classify", "m", "t")
    assert status == 1 and err.startswith("error: INVALID_ARGUMENT: token_file ") and "is empty" in err
    status, out, err = pycli(capsys, address, "train", "m", tmp_path / "good.tsv")
    assert status == 0 and out.startswith("trained m version 1: 1 documents"), err


@pytest.mark.parametrize("command", ["sample", "classify"])
def test_output_closed_early_ends_silently_with_141(fake, tmp_path, command):
    """As `maas ... | head` (SIGPIPE: 141 in a shell). The output is far larger than a pipe's buffer, so the command
    is still writing when the reader goes away."""
    address, _ = fake
    (tmp_path / "texts.txt").write_text("".join(f"text {i}\n" for i in range(200_000)))
    argv = {"sample": ["sample", "m", "200000", "--out", "/dev/stdout"],
            "classify": ["classify", "m", "--file", str(tmp_path / "texts.txt")]}[command]
    with subprocess.Popen([sys.executable, "-m", "maas_client", "--target", address, "--progress", "never", *argv],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
        first = p.stdout.readline()
        p.stdout.close()  # the reader goes away
        err = p.stderr.read()
        status = p.wait(timeout=120)
    assert first and status == 141 and err == b"", (first, status, err)
