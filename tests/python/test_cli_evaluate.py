"""`maas evaluate` (the C++ CLI) against scikit-learn's metrics, on the real binaries.

A model is trained through the CLI (`maas train`, the service's defaults: CountVectorizer + MultinomialNB) from a
TSV file; a held-out TSV is evaluated with `maas --json evaluate` (and with --weighted, weights in the file), and
every reported number is compared with sklearn.metrics (accuracy_score, precision_recall_fscore_support, f1_score
macro / weighted, confusion_matrix, log_loss) computed on the predictions of a scikit-learn pipeline fitted here
on the same training data. The text report is checked against the same numbers. Errors: a label the model does not
know (the server's INVALID_ARGUMENT, exit 1), a missing file, a malformed line (file and line named), a missing
model.
"""

import json

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score, log_loss,
                             precision_recall_fscore_support)
from sklearn.naive_bayes import MultinomialNB

from maas_testing import run_maas_cli, start_discriminative
from test_e2e_discriminative import make_corpus

NUM_TRAIN = 300


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli-evaluate")
    rng = np.random.default_rng(20261203)
    texts, labels = make_corpus(rng, 420)
    # One example per line: the corpus's line breaks become spaces (its tabs stay: the text is all after the tab).
    texts = [t.replace("\r", " ").replace("\n", " ") for t in texts]
    assert any("\t" in t for t in texts)
    train_tsv = write_tsv(tmp / "train.tsv", labels[:NUM_TRAIN], texts[:NUM_TRAIN])
    process = start_discriminative(tmp / "models")
    try:
        trained = json.loads(run_maas_cli(process.port, "--json", "train", "--name", "cli-evaluated",
                                          "--data", train_tsv).stdout)
        assert trained["documents"] == NUM_TRAIN
        vectorizer = CountVectorizer()
        nb = MultinomialNB().fit(vectorizer.fit_transform(texts[:NUM_TRAIN]), labels[:NUM_TRAIN])
        assert trained["classes"] == nb.classes_.tolist()
        yield process.port, tmp, vectorizer, nb, texts[NUM_TRAIN:], labels[NUM_TRAIN:], trained["version"]
    finally:
        assert process.stop() == 0
        process.release()


def write_tsv(path, labels, texts, weights=None):
    with open(path, "w", encoding="utf-8") as f:
        for i, (label, text) in enumerate(zip(labels, texts)):
            f.write(f"{label}\t{float(weights[i])!r}\t{text}\n" if weights is not None else f"{label}\t{text}\n")
    return path


def sklearn_metrics(vectorizer, nb, texts, labels, weights):
    x = vectorizer.transform(texts)
    predicted = nb.predict(x)
    classes = nb.classes_.tolist()
    p, r, f, s = precision_recall_fscore_support(labels, predicted, labels=classes, sample_weight=weights,
                                                 zero_division=0)
    return {
        "classes": classes,
        "accuracy": accuracy_score(labels, predicted, sample_weight=weights),
        "macro_f1": f1_score(labels, predicted, labels=classes, average="macro", sample_weight=weights,
                             zero_division=0),
        "weighted_f1": f1_score(labels, predicted, labels=classes, average="weighted", sample_weight=weights,
                                zero_division=0),
        "log_loss": log_loss(labels, nb.predict_proba(x), labels=classes, sample_weight=weights),
        "precision": p, "recall": r, "f1": f, "support": s,
        "confusion": confusion_matrix(labels, predicted, labels=classes, sample_weight=weights),
    }


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_evaluate_json_equals_sklearn_metrics(setup, weighted):
    port, tmp, vectorizer, nb, texts, labels, version = setup
    weights = np.random.default_rng(11).uniform(0.0, 2.0, size=len(texts)) if weighted else None
    tsv = write_tsv(tmp / f"test-{weighted}.tsv", labels, texts, weights)
    args = ["--json", "evaluate", "--model", "cli-evaluated", "--data", tsv] + (["--weighted"] if weighted else [])
    result = run_maas_cli(port, *args)
    assert result.stdout.count("\n") == 1, "one JSON document on one line"
    got = json.loads(result.stdout)
    want = sklearn_metrics(vectorizer, nb, texts, labels, weights)

    assert got["model"] == "cli-evaluated"
    assert got["model_version"] == version
    assert got["num_documents"] == len(texts)
    assert [c["label"] for c in got["classes"]] == want["classes"]
    assert got["accuracy"] == pytest.approx(want["accuracy"], abs=1e-12)
    assert got["macro_f1"] == pytest.approx(want["macro_f1"], abs=1e-12)
    assert got["weighted_f1"] == pytest.approx(want["weighted_f1"], abs=1e-12)
    assert got["log_loss"] == pytest.approx(want["log_loss"], rel=1e-10)
    for key in ("precision", "recall", "f1"):
        np.testing.assert_allclose([c[key] for c in got["classes"]], want[key], atol=1e-12, err_msg=key)
    np.testing.assert_allclose([c["support"] for c in got["classes"]], want["support"], atol=1e-9)
    np.testing.assert_allclose(np.array(got["confusion_matrix"]), want["confusion"], atol=1e-9)
    if weighted:  # the weights were used: the unweighted metrics differ
        unweighted = sklearn_metrics(vectorizer, nb, texts, labels, None)
        assert got["accuracy"] != pytest.approx(unweighted["accuracy"], abs=1e-9)


def test_evaluate_text_report_shows_the_same_numbers(setup):
    port, tmp, vectorizer, nb, texts, labels, version = setup
    tsv = write_tsv(tmp / "test-text.tsv", labels, texts)
    out = run_maas_cli(port, "evaluate", "--model", "cli-evaluated", "--model_version", version,
                       "--data", tsv).stdout
    want = sklearn_metrics(vectorizer, nb, texts, labels, None)
    summary, per_class, confusion = out.rstrip("\n").split("\n\n")

    fields = dict(line.rsplit(None, 1) for line in summary.splitlines())
    fields = {" ".join(key.split()): value for key, value in fields.items()}
    assert fields["model"] == "cli-evaluated"
    assert int(fields["version"]) == version
    assert int(fields["documents"]) == len(texts)
    for key, name in [("accuracy", "accuracy"), ("macro_f1", "macro F1"), ("weighted_f1", "weighted F1"),
                      ("log_loss", "log loss")]:
        assert float(fields[name]) == pytest.approx(want[key], rel=1e-5), name  # 6 significant digits

    rows = [line.split() for line in per_class.splitlines()]
    assert rows[0] == ["CLASS", "PRECISION", "RECALL", "F1", "SUPPORT"]
    assert [r[0] for r in rows[1:]] == want["classes"]
    for j, key in enumerate(("precision", "recall", "f1", "support"), start=1):
        np.testing.assert_allclose([float(r[j]) for r in rows[1:]], want[key], rtol=1e-5, err_msg=key)

    lines = confusion.splitlines()
    assert lines[0] == "confusion matrix (rows: true class, columns: predicted class)"
    assert lines[1].split() == ["TRUE\\PREDICTED"] + want["classes"]
    matrix = [line.split() for line in lines[2:]]
    assert [r[0] for r in matrix] == want["classes"]
    np.testing.assert_array_equal(np.array([[float(v) for v in r[1:]] for r in matrix]), want["confusion"])


def test_evaluate_unknown_label_is_the_servers_invalid_argument(setup):
    port, tmp, _, _, texts, labels, _ = setup
    tsv = write_tsv(tmp / "unknown-label.tsv", labels[:3] + ["not-a-class"], texts[:4])
    result = run_maas_cli(port, "evaluate", "--model", "cli-evaluated", "--data", tsv, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("maas: INVALID_ARGUMENT: ")
    assert "not-a-class" in result.stderr
    assert result.stdout == ""

    result = run_maas_cli(port, "--json", "evaluate", "--model", "cli-evaluated", "--data", tsv, check=False)
    assert result.returncode == 1
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert "not-a-class" in error["message"]


def test_evaluate_file_and_model_errors(setup):
    port, tmp, _, _, texts, labels, _ = setup
    missing = tmp / "no-such-file.tsv"
    result = run_maas_cli(port, "evaluate", "--model", "cli-evaluated", "--data", missing, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"maas: NOT_FOUND: cannot open '{missing}'")

    bad = tmp / "bad.tsv"
    bad.write_text(f"{labels[0]}\t{texts[0]}\nno tab on this line\n", encoding="utf-8")
    result = run_maas_cli(port, "evaluate", "--model", "cli-evaluated", "--data", bad, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"maas: INVALID_ARGUMENT: {bad}: line 2: expected 'label<TAB>text'")

    # --weighted reads 'label<TAB>weight<TAB>text': a text where the weight should be is refused.
    plain = write_tsv(tmp / "plain.tsv", labels[:2], ["some words"] * 2)
    result = run_maas_cli(port, "evaluate", "--model", "cli-evaluated", "--data", plain, "--weighted", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"maas: INVALID_ARGUMENT: {plain}: line 1")

    header = tmp / "header.tsv"
    header.write_text(f"label\ttext\n{labels[0]}\t{texts[0]}\n", encoding="utf-8")
    result = run_maas_cli(port, "evaluate", "--model", "cli-evaluated", "--data", header, check=False)
    assert result.returncode == 1
    assert "line 1 looks like a header" in result.stderr

    good = write_tsv(tmp / "good.tsv", labels[:5], texts[:5])
    result = run_maas_cli(port, "evaluate", "--model", "no-such-model", "--data", good, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("maas: NOT_FOUND: ")

    # Usage errors: exit 2.
    for args in (["evaluate", "--data", good], ["evaluate", "--model", "cli-evaluated"],
                 ["evaluate", "--model", "cli-evaluated", "--data", good, "--top_k", "1"]):
        result = run_maas_cli(port, *args, check=False)
        assert result.returncode == 2, args
        assert result.stderr.startswith("maas: usage error: "), args
