"""`python -m maas_client` against the real binaries: train / evaluate / classify from TSV and text files, fit
from CSV and NPY, sample to NPY and CSV, streamed estimation, model management, progress bars and errors.
Oracles: scikit-learn on the same TSV, the client API on the same seeds, and scipy's uniform density.
Most commands run in-process through maas_client.cli.main (fast); `python -m maas_client` itself runs as a
subprocess for the progress-bar and exit-status checks."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer
from sklearn.metrics import accuracy_score
from sklearn.naive_bayes import BernoulliNB, MultinomialNB

import maas_client
from maas_client.cli import main

from client_testing import make_corpus, uniform_log_density
from maas_testing import Stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("client-cli")) as s:
        yield s


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-files")
    texts, labels = make_corpus(21, 160)
    (d / "train.tsv").write_text("".join(f"{l}\t{t}\n" for l, t in zip(labels[:120], texts[:120])) + "\n",
                                 encoding="utf-8")
    (d / "test.tsv").write_text("".join(f"{l}\t{t}\n" for l, t in zip(labels[120:], texts[120:])), encoding="utf-8")
    (d / "texts.txt").write_text("".join(t + "\n" for t in texts[120:]), encoding="utf-8")
    rng = np.random.default_rng(17)
    rows = rng.normal(size=(3000, 3)) * [1.0, 5.0, 0.1]
    np.save(d / "rows.npy", rows)
    np.savetxt(d / "rows.csv", rows, delimiter=",", fmt="%.17g", header="x,y,z")
    return {"dir": d, "texts": texts, "labels": labels, "rows": rows}


def run(stack, *argv):
    """In-process: (exit status, stdout)."""
    out = io.StringIO()
    status = main(["--target", stack.gateway_process.address, "--progress", "never", *map(str, argv)], out=out)
    return status, out.getvalue()


def test_partial_training_from_files(stack, files, capsys):
    """--partial continues the latest version as partial_fit; the first call needs --classes, later ones may leave
    the vectorizer and classifier out (the continued version's)."""
    d, texts, labels = files["dir"], files["texts"], files["labels"]
    classes = sorted(set(labels)) + ["unseen"]
    for part, (lo, hi) in enumerate([(0, 70), (70, 120)]):
        (d / f"part{part}.tsv").write_text("".join(f"{l}\t{t}\n" for l, t in zip(labels[lo:hi], texts[lo:hi])),
                                           encoding="utf-8")
    status, _ = run(stack, "train", "cli-partial", d / "part0.tsv", "--partial", "--vectorizer", "hashing",
                    "--classifier", "bernoulli_nb", "--classes", ",".join(classes))
    assert status == 0, capsys.readouterr().err
    status, out = run(stack, "train", "cli-partial", d / "part1.tsv", "--partial")
    assert status == 0, capsys.readouterr().err
    assert out.startswith("trained cli-partial version 2: 50 documents")
    hv = HashingVectorizer()
    nb = BernoulliNB()
    nb.partial_fit(hv.transform(texts[:70]), labels[:70], classes=classes)
    nb.partial_fit(hv.transform(texts[70:120]), labels[70:120])
    with maas_client.DiscriminativeClient(stack.gateway_process.address, timeout=20) as client:
        got = client.predict_proba("cli-partial", texts[120:])
    np.testing.assert_allclose(got, nb.predict_proba(hv.transform(texts[120:])), rtol=1e-9, atol=1e-12)


def test_train_classify_evaluate_from_files(stack, files, capsys):
    d, texts, labels = files["dir"], files["texts"], files["labels"]
    status, out = run(stack, "train", "cli-news", d / "train.tsv", "--batch-size", 16)
    assert status == 0, capsys.readouterr().err
    cv = CountVectorizer()
    nb = MultinomialNB().fit(cv.fit_transform(texts[:120]), labels[:120])
    assert out.strip() == (f"trained cli-news version 1: 120 documents, {len(cv.vocabulary_)} features, "
                           f"classes {', '.join(nb.classes_)}")
    status, out = run(stack, "classify", "cli-news", "--file", d / "texts.txt", "--batch-size", 7)
    assert status == 0
    printed = [line.split("\t") for line in out.splitlines()]
    proba = nb.predict_proba(cv.transform(texts[120:]))
    assert [p[0] for p in printed] == nb.predict(cv.transform(texts[120:])).tolist()
    np.testing.assert_allclose([float(p[1]) for p in printed], proba.max(axis=1), atol=5e-7)
    status, out = run(stack, "classify", "cli-news", "goal match team", "bread oven")
    assert status == 0 and len(out.splitlines()) == 2
    status, out = run(stack, "evaluate", "cli-news", d / "test.tsv")
    assert status == 0
    accuracy = accuracy_score(labels[120:], nb.predict(cv.transform(texts[120:])))
    assert f"documents 40  accuracy {accuracy:.6f}" in out


def test_classify_reads_the_text_file_as_bytes(stack, files, capsys):
    """A text file that is not UTF-8 (Latin-1 lines): the lines go to the service as bytes, where the model's
    decode_error decides: a model trained with decode_error='replace' classifies them as scikit-learn does on the
    same bytes; the default (strict) refuses the line, naming it, with exit status 1 instead of a traceback."""
    d = files["dir"]
    texts = [b"caf\xe9 cr\xe8me", b"free money", b"cr\xe8me br\xfbl\xe9e", b"win money now"]
    labels = ["food", "spam", "food", "spam"]
    from maas_client.pb import discriminative as dpb
    with maas_client.DiscriminativeClient(stack.gateway_process.address, timeout=20) as client:
        client.train(texts, labels, name="cli-latin1", vectorizer=dpb.VectorizerConfig(count=dpb.CountVectorizerConfig(
            text=dpb.TextOptions(decode_error=dpb.DECODE_ERROR_REPLACE))))
        client.train(["goal match", "bread oven"], ["sports", "food"], name="cli-strict")
    (d / "latin1.txt").write_bytes(b"caf\xe9 \xff\r\nmoney now\n")
    status, out = run(stack, "classify", "cli-latin1", "--file", d / "latin1.txt")
    assert status == 0, capsys.readouterr().err
    cv = CountVectorizer(decode_error="replace")
    nb = MultinomialNB().fit(cv.fit_transform(texts), labels)
    queries = [b"caf\xe9 \xff", b"money now"]
    printed = [line.split("\t") for line in out.splitlines()]
    assert [p[0] for p in printed] == nb.predict(cv.transform(queries)).tolist()
    np.testing.assert_allclose([float(p[1]) for p in printed], nb.predict_proba(cv.transform(queries)).max(axis=1),
                               atol=5e-7)
    status, _ = run(stack, "classify", "cli-strict", "--file", d / "latin1.txt")
    assert status == 1
    assert "texts[0]" in capsys.readouterr().err


def test_fit_from_csv_and_npy(stack, files):
    d, rows = files["dir"], files["rows"]
    for version, name in ((1, "rows.csv"), (2, "rows.npy")):
        status, out = run(stack, "fit", "cli-box", d / name, "--family", "uniform", "--chunk-rows", 700)
        assert status == 0
        assert out.startswith(f"fitted cli-box version {version} (uniform): 3000 rows")
        status, out = run(stack, "models", "get", "cli-box")
        spec = json.loads(out)
        np.testing.assert_array_equal(spec["uniform"]["low"], rows.min(axis=0))
        np.testing.assert_array_equal(spec["uniform"]["high"], rows.max(axis=0))


def test_sample_to_npy_and_csv_equals_the_api(stack, files):
    d = files["dir"]
    assert run(stack, "fit", "cli-sampled", d / "rows.npy", "--family", "uniform")[0] == 0
    with maas_client.GenerativeClient(stack.gateway_process.address) as gen:
        want = gen.sample_array("cli-sampled", 2500, seed=5)
    status, out = run(stack, "sample", "cli-sampled", 2500, "--seed", 5, "--out", d / "s.npy", "--batch-size", 300)
    assert status == 0 and out.strip() == f"wrote 2500 samples of cli-sampled to {d / 's.npy'} (seed 5)"
    np.testing.assert_array_equal(np.load(d / "s.npy"), want)
    status, _ = run(stack, "sample", "cli-sampled", 2500, "--seed", 5, "--out", d / "s.csv")
    assert status == 0
    np.testing.assert_array_equal(np.loadtxt(d / "s.csv", delimiter=","), want)


def test_streamed_estimate_from_a_file(stack, files):
    d, rows = files["dir"], files["rows"]
    assert run(stack, "fit", "cli-est", d / "rows.npy", "--family", "uniform")[0] == 0
    probe = rows[:50]
    np.save(d / "probe.npy", probe)
    status, _ = run(stack, "estimate", "cli-est", d / "probe.npy", "--estimator", "exact", "--out", d / "est.csv")
    assert status == 0
    got = np.loadtxt(d / "est.csv", delimiter=",", skiprows=1, ndmin=2)
    assert got.shape == (50, 5)
    np.testing.assert_allclose(got[:, 0], uniform_log_density(probe, rows.min(axis=0), rows.max(axis=0)),
                               rtol=0, atol=1e-12)
    status, out = run(stack, "estimate", "cli-est", d / "rows.csv")  # CSV in, CSV on stdout
    lines = out.splitlines()
    assert status == 0 and lines[0].startswith("log_likelihood,") and len(lines) == 3002
    assert lines[-1].startswith("# estimator exact") and lines[-1].endswith("stopped: exact_result")


def test_models_list_and_delete(stack, capsys):
    assert run(stack, "fit", "cli-gone", "/dev/null", "--family", "uniform")[0] == 1  # no rows: the server says so
    assert capsys.readouterr().err.startswith("error: INVALID_ARGUMENT: ")
    with maas_client.GenerativeClient(stack.gateway_process.address) as gen:
        gen.fit(np.eye(2), "uniform", name="cli-gone")
    status, out = run(stack, "models", "list", "--prefix", "cli-gone")
    assert status == 0 and out.splitlines() == ["cli-gone\t1\tgenerative\tuniform\t2"]
    assert run(stack, "models", "delete", "cli-gone") == (0, "deleted cli-gone versions 1\n")
    assert run(stack, "models", "list", "--prefix", "cli-gone") == (0, "")


def test_python_m_maas_client_shows_progress_and_reports_errors(stack, files):
    d = files["dir"]
    base = [sys.executable, "-m", "maas_client", "--target", stack.gateway_process.address]
    done = subprocess.run([*base, "--progress", "always", "train", "cli-progress", str(d / "train.tsv")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "train cli-progress: 100%" in done.stderr  # tqdm's bar on stderr
    assert done.stdout.startswith("trained cli-progress version 1: 120 documents")
    missing = subprocess.run([*base, "sample", "no-such-model", "5", "--out", str(d / "x.npy")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and missing.stderr.startswith("error: NOT_FOUND: ") and "no-such-model" in \
        missing.stderr
    (d / "bad.tsv").write_text("sports\tok\nno tab here\n", encoding="utf-8")
    bad = subprocess.run([*base, "train", "cli-bad", str(d / "bad.tsv")], capture_output=True, text=True, timeout=60)
    # A bad input file is an error (1), as in maas; 2 is for the command line.
    assert bad.returncode == 1 and bad.stderr.startswith("error: INVALID_ARGUMENT: ")
    assert "bad.tsv:2: expected 'label<TAB>text'" in bad.stderr
