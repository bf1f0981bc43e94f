"""`python -m maas_client train` passes every vectorizer and classifier option to the service, as `maas train` does
(the twin of test_cli_train_options.py, whose server, data and scikit-learn comparisons this reuses; real binaries).

Each option set is trained through the Python CLI (in process, maas_client.cli.main) from a TSV file, and the stored
model (GetModel) is compared with scikit-learn fitted here on the same data with the same parameters: vocabulary,
idf, feature_count_, class_log_prior_ and feature_log_prob_. Covered: analyzer/ngram-range/strip-accents/lowercase/
min-df/max-df/max-features with tf-idf (norm, smooth-idf, sublinear-tf) and ComplementNB (norm, alpha), also as the
older `--vectorizer tfidf`; hashing (n-features, alternate-sign, norm) with binary, English stop words, BernoulliNB
(binarize none, fit-prior, alpha) and --weighted; hashing under tf-idf with its own --hashing-norm; a vocabulary
file, a stop word file, decode-error and MultinomialNB (class-prior, force-alpha); partial training with --classes
against partial_fit; Latin-1 texts sent as bytes under decode-error replace / ignore (train, weighted train and
evaluate) against scikit-learn on the same bytes; usage errors (exit status 2, one line) for options that do not
apply and for bad values, and errors (exit status 1, INVALID_ARGUMENT naming the line, as maas) for bad input lines.
"""

import io

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.metrics import accuracy_score
from sklearn.naive_bayes import BernoulliNB, ComplementNB, MultinomialNB

from maas.discriminative.v1 import discriminative_pb2 as pb
from maas_client.cli import main

# server and data are module-scoped fixtures: imported here, pytest starts this module's own server.
from test_cli_train_options import LABELS, assert_classifier, data, server, spec_of, write_tsv  # noqa: F401


def pycli(port, capsys, *argv):
    """`python -m maas_client --target 127.0.0.1:PORT ARGV...` in process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    out = io.StringIO()
    try:
        status = main(["--target", f"127.0.0.1:{port}", "--progress", "never", *map(str, argv)], out=out)
    except SystemExit as e:  # argparse's own errors
        status = e.code
    return status, out.getvalue(), capsys.readouterr().err


def train(port, capsys, *argv):
    status, out, err = pycli(port, capsys, "train", *argv)
    assert status == 0, err
    assert out.startswith("trained "), out
    return out


def test_count_tfidf_complement_options(server, data, tmp_path, capsys):
    port, stub = server
    texts, labels, _ = data
    tsv = write_tsv(tmp_path / "a.tsv", labels, texts)
    options = ["--analyzer", "char_wb", "--ngram-range", "2,3", "--strip-accents", "unicode", "--no-lowercase",
               "--min-df", "2", "--max-df", "0.95", "--norm", "l1", "--no-smooth-idf", "--sublinear-tf",
               "--classifier", "complement_nb", "--alpha", "0.5", "--complement-norm"]
    train(port, capsys, "py-a", tsv, "--tfidf", *options)
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), strip_accents="unicode", lowercase=False,
                          min_df=2, max_df=0.95, norm="l1", smooth_idf=False, sublinear_tf=True)
    x = vec.fit_transform(texts)
    spec = spec_of(stub, "py-a")
    assert list(spec.vectorizer.vocabulary) == vec.get_feature_names_out().tolist()
    np.testing.assert_allclose(spec.vectorizer.idf, vec.idf_, rtol=1e-12)
    assert_classifier(spec, ComplementNB(alpha=0.5, norm=True).fit(x, labels), "count+tfidf+complement")

    # The older spelling --vectorizer tfidf is the count vectorizer with --tfidf: the same model.
    train(port, capsys, "py-a1", tsv, "--vectorizer", "tfidf", *options)
    older = spec_of(stub, "py-a1")
    assert older.vectorizer.config == spec.vectorizer.config
    assert older.classifier.config == spec.classifier.config
    assert_classifier(older, ComplementNB(alpha=0.5, norm=True).fit(x, labels), "--vectorizer tfidf")

    # max_features: the most frequent terms, ties at the cutoff by feature order (the documented rule).
    train(port, capsys, "py-a2", tsv, "--analyzer", "char", "--ngram-range", "1,2", "--max-features", "25",
          "--binary")
    full = CountVectorizer(analyzer="char", ngram_range=(1, 2), binary=True)
    counts = np.asarray(full.fit_transform(texts).sum(axis=0)).ravel()
    names = full.get_feature_names_out().tolist()
    kept = sorted(sorted(range(len(names)), key=lambda j: (-counts[j], j))[:25])
    assert list(spec_of(stub, "py-a2").vectorizer.vocabulary) == [names[j] for j in kept]


def test_hashing_bernoulli_weighted_options(server, data, tmp_path, capsys):
    port, stub = server
    texts, labels, weights = data
    tsv = write_tsv(tmp_path / "b.tsv", labels, texts, weights)
    train(port, capsys, "py-b", tsv, "--weighted", "--vectorizer", "hashing", "--n-features", "4096",
          "--no-alternate-sign", "--norm", "none", "--binary", "--stop-words", "english", "--classifier",
          "bernoulli_nb", "--binarize", "none", "--alpha", "0.3", "--no-fit-prior")
    x = HashingVectorizer(n_features=4096, alternate_sign=False, norm=None, binary=True,
                          stop_words="english").transform(texts)
    nb = BernoulliNB(binarize=None, alpha=0.3, fit_prior=False).fit(x, labels, sample_weight=weights)
    assert_classifier(spec_of(stub, "py-b"), nb, "hashing+bernoulli (weighted)")


def test_hashing_under_tfidf_keeps_its_own_norm(server, data, tmp_path, capsys):
    """With --tfidf, --norm is TF-IDF's and --hashing-norm the hashing vectorizer's (as `maas train`)."""
    port, stub = server
    texts, labels, _ = data
    tsv = write_tsv(tmp_path / "h.tsv", labels, texts)
    train(port, capsys, "py-h", tsv, "--vectorizer", "hashing", "--n-features", "512", "--no-alternate-sign",
          "--hashing-norm", "l1", "--tfidf", "--norm", "l2", "--no-use-idf", "--alpha", "0.2")
    config = spec_of(stub, "py-h").vectorizer.config
    assert config.hashing.norm == pb.NORM_L1 and config.hashing.n_features == 512
    assert config.tfidf.norm == pb.NORM_L2 and config.tfidf.use_idf is False
    x = TfidfTransformer(norm="l2", use_idf=False).fit_transform(
        HashingVectorizer(n_features=512, norm="l1", alternate_sign=False).transform(texts))
    assert_classifier(spec_of(stub, "py-h"), MultinomialNB(alpha=0.2).fit(x, labels), "hashing (l1) + tfidf (l2)")


def test_vocabulary_and_stop_word_files_multinomial_options(server, data, tmp_path, capsys):
    port, stub = server
    texts, labels, _ = data
    vocabulary = ["money", "free", "café", "the", "meeting", "école", "project", "zzz-unused"]
    stops = ["the", "and", "of"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    (tmp_path / "stops.txt").write_text("\r\n".join(stops) + "\r\n", encoding="utf-8")
    tsv = write_tsv(tmp_path / "c.tsv", labels, texts)
    train(port, capsys, "py-c", tsv, "--vocabulary-file", tmp_path / "vocab.txt", "--decode-error", "replace",
          "--classifier", "multinomial_nb", "--alpha", "0", "--no-force-alpha", "--class-prior", "0.2,0.5,0.3")
    spec = spec_of(stub, "py-c")
    assert list(spec.vectorizer.vocabulary) == vocabulary
    assert spec.vectorizer.config.count.text.decode_error == pb.DECODE_ERROR_REPLACE
    x = CountVectorizer(vocabulary=vocabulary, decode_error="replace").fit_transform(texts)
    assert_classifier(spec, MultinomialNB(alpha=0, force_alpha=False, class_prior=[0.2, 0.5, 0.3]).fit(x, labels),
                      "fixed vocabulary + multinomial")

    train(port, capsys, "py-c2", tsv, "--stop-words-file", tmp_path / "stops.txt", "--ngram-range", "1,2",
          "--no-fit-prior")
    vec = CountVectorizer(stop_words=stops, ngram_range=(1, 2))
    x = vec.fit_transform(texts)
    spec = spec_of(stub, "py-c2")
    assert list(spec.vectorizer.config.count.text.stop_word_list) == stops
    assert list(spec.vectorizer.vocabulary) == vec.get_feature_names_out().tolist()
    assert_classifier(spec, MultinomialNB(fit_prior=False).fit(x, labels), "stop word file")


def test_partial_training_through_the_python_cli(server, data, tmp_path, capsys):
    port, stub = server
    texts, labels, _ = data
    options = ["--vectorizer", "hashing", "--n-features", "1024", "--no-alternate-sign", "--norm", "none",
               "--classifier", "multinomial_nb", "--alpha", "0.7"]
    first = write_tsv(tmp_path / "p1.tsv", labels[:50], texts[:50])
    second = write_tsv(tmp_path / "p2.tsv", labels[50:], texts[50:])
    classes = LABELS + ["later"]
    out = train(port, capsys, "py-p", first, "--partial", "--classes", ",".join(classes), *options)
    assert out.startswith("trained py-p version 1: 50 documents")
    # The second call leaves the options out: the continued version's.
    out = train(port, capsys, "py-p", second, "--partial")
    assert out.startswith(f"trained py-p version 2: {len(texts) - 50} documents")
    vec = HashingVectorizer(n_features=1024, alternate_sign=False, norm=None)
    nb = MultinomialNB(alpha=0.7)
    nb.partial_fit(vec.transform(texts[:50]), labels[:50], classes=classes)
    nb.partial_fit(vec.transform(texts[50:]), labels[50:])
    assert_classifier(spec_of(stub, "py-p"), nb, "partial through the Python CLI")
    # Another alpha on a partial call is refused by the service, naming the field.
    status, _, err = pycli(port, capsys, "train", "py-p", second, "--partial", *options[:-1], "0.9")
    assert status == 1 and "alpha" in err and "INVALID_ARGUMENT" in err


def test_integer_labels_through_the_python_cli(server, data, tmp_path, capsys):
    """The Python CLI had no --integer-labels (an integer model could not be made with it) and crashed after a
    partial Train of an integer model had stored its version (its summary joined int classes as str)."""
    port, stub = server
    texts, _, _ = data
    y = [(-3, 9, 10, 100)[i % 4] for i in range(len(texts))]
    options = ["--vectorizer", "hashing", "--n-features", "256", "--no-alternate-sign", "--norm", "none"]
    first = write_tsv(tmp_path / "i1.tsv", [str(v) for v in y[:40]], texts[:40])
    second = write_tsv(tmp_path / "i2.tsv", [str(v) for v in y[40:]], texts[40:])
    out = train(port, capsys, "py-int", first, "--partial", "--integer-labels", "--classes", "100,9,-3,10", *options)
    assert out.rstrip().endswith("classes -3, 9, 10, 100"), out
    status, out, err = pycli(port, capsys, "train", "py-int", second, "--partial")
    assert status == 0, err
    assert out.startswith("trained py-int version 2") and out.rstrip().endswith("classes -3, 9, 10, 100"), out
    vec = HashingVectorizer(n_features=256, alternate_sign=False, norm=None)
    nb = MultinomialNB()
    nb.partial_fit(vec.transform(texts[:40]), y[:40], classes=[100, 9, -3, 10])
    nb.partial_fit(vec.transform(texts[40:]), y[40:])
    spec = spec_of(stub, "py-int")
    assert spec.classifier.label_type == pb.LABEL_TYPE_INT64
    assert list(spec.classifier.classes) == [str(c) for c in nb.classes_]
    assert_classifier(spec, nb, "integer labels through the Python CLI")
    status, _, err = pycli(port, capsys, "train", "py-bad", first, "--integer-labels", "--classes", "a,b", *options)
    assert status == 2 and "not an integer" in err


@pytest.mark.parametrize("decode_error", ["replace", "ignore"])
def test_texts_that_are_not_utf8_follow_decode_error(server, tmp_path, capsys, decode_error):
    """A Latin-1 training file: the Python CLI sends the texts as bytes and the service applies decode_error, equal
    to scikit-learn's CountVectorizer(decode_error=...) + MultinomialNB on the same bytes (also weighted, and
    evaluate reads the same file)."""
    port, stub = server
    texts = ["caf\xe9 na\xefve cr\xe8me", "the caf\xe9 is open", "na\xefve b\xe9b\xe9 cr\xe8me br\xfbl\xe9e",
             "money free offer", "free caf\xe9 offer now", "win money now"]
    labels = ["food", "food", "food", "spam", "spam", "spam"]
    weights = [1.0, 0.5, 2.0, 1.5, 0.25, 1.0]
    encoded = [t.encode("latin-1") for t in texts]
    plain, weighted = tmp_path / "latin1.tsv", tmp_path / "latin1-weighted.tsv"
    plain.write_bytes(b"".join(l.encode() + b"\t" + t + b"\r\n" for l, t in zip(labels, encoded)))
    weighted.write_bytes(b"".join(l.encode() + b"\t" + repr(w).encode() + b"\t" + t + b"\n"
                                  for l, w, t in zip(labels, weights, encoded)))
    name = f"py-latin1-{decode_error}"
    train(port, capsys, name, plain, "--decode-error", decode_error)
    vec = CountVectorizer(decode_error=decode_error)
    x = vec.fit_transform(encoded)
    nb = MultinomialNB().fit(x, labels)
    spec = spec_of(stub, name)
    assert list(spec.vectorizer.vocabulary) == vec.get_feature_names_out().tolist()
    assert_classifier(spec, nb, f"latin-1 texts, decode_error={decode_error}")

    train(port, capsys, name + "-w", weighted, "--weighted", "--decode-error", decode_error)
    assert_classifier(spec_of(stub, name + "-w"), MultinomialNB().fit(x, labels, sample_weight=weights),
                      f"weighted latin-1 texts, decode_error={decode_error}")

    status, out, err = pycli(port, capsys, "evaluate", name, plain)
    assert status == 0, err
    assert out.startswith(f"documents 6  accuracy {accuracy_score(labels, nb.predict(x)):.6f}")

    # decode_error strict (the default): the service refuses the file, naming the text.
    status, _, err = pycli(port, capsys, "train", name + "-strict", plain)
    assert status == 1 and "INVALID_ARGUMENT" in err and "UTF-8" in err


@pytest.mark.parametrize("args,mentions", [
    (["--vectorizer", "hashing", "--min-df", "2"], "--min-df"),
    (["--vectorizer", "hashing", "--vocabulary-file", "v.txt"], "--vocabulary-file"),
    (["--n-features", "16"], "--n-features"),
    (["--no-alternate-sign"], "--alternate-sign"),
    (["--vectorizer", "tfidf", "--hashing-norm", "l1"], "--hashing-norm"),
    (["--vectorizer", "hashing", "--hashing-norm", "l1"], "--tfidf"),
    (["--norm", "l1"], "--norm"),
    (["--no-use-idf"], "--tfidf"),
    (["--vectorizer", "tfidf", "--no-tfidf"], "--no-tfidf"),
    (["--classifier", "complement_nb", "--binarize", "0.5"], "--binarize"),
    (["--classifier", "bernoulli_nb", "--complement-norm"], "--complement-norm"),
    (["--binarize", "0.5"], "--binarize"),
    (["--ngram-range", "3,1"], "--ngram-range"),
    (["--norm", "l3", "--tfidf"], "--norm"),
    (["--analyzer", "words"], "--analyzer"),
    (["--strip-accents", "latin"], "--strip-accents"),
    (["--decode-error", "skip"], "--decode-error"),
    (["--min-df", "two"], "--min-df"),
    (["--max-features", "0"], "--max-features"),
    (["--alpha", "much"], "--alpha"),
    (["--class-prior", "0.5,x"], "--class-prior"),
    (["--classifier", "svm"], "--classifier"),
    (["--vectorizer", "bag"], "--vectorizer"),
    (["--stop-words", "english", "--stop-words-file", "v.txt"], "--stop-words-file"),
    (["--classes", "a,,b"], "--classes"),
])
def test_options_that_do_not_apply_are_usage_errors(server, tmp_path, capsys, args, mentions):
    port, _ = server
    tsv = write_tsv(tmp_path / "u.tsv", ["a", "b"], ["one text", "another text"])
    (tmp_path / "v.txt").write_text("one\ntext\n", encoding="utf-8")
    status, out, err = pycli(port, capsys, "train", "py-u", tsv, *[a.replace("v.txt", str(tmp_path / "v.txt"))
                                                                    for a in args])
    assert status == 2, err
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1, err
    assert mentions in err


@pytest.mark.parametrize("content,weighted,mentions", [
    (b"ok\tfine\n\xe9t\xe9\ttext\n", False, ":2: the label is not valid UTF-8"),
    (b"ok\t1.5\tfine\nbad\tno weight\n", True, ":2: expected 'label<TAB>weight<TAB>text'"),
    (b"ok\tmuch\tfine\n", True, ":1: weight: 'much' is not a number"),
    (b"ok\t-1\tfine\n", True, ":1: weight must be >= 0"),
    (b"\n Label \t Text \r\nham\tfine\n", False, ":2 looks like a header ('Label<TAB>...')"),
])
def test_bad_training_lines_are_errors_naming_the_line(server, tmp_path, capsys, content, weighted, mentions):
    """Exit status 1 and INVALID_ARGUMENT, as maas reports a bad --data line (they were usage errors, 2, here)."""
    port, _ = server
    (tmp_path / "bad.tsv").write_bytes(content)
    status, _, err = pycli(port, capsys, "train", "py-bad", tmp_path / "bad.tsv", *(["--weighted"] if weighted else []))
    assert status == 1, err
    assert err.startswith("error: INVALID_ARGUMENT: ") and f"bad.tsv{mentions}" in err and err.count("\n") == 1, err


def test_shortened_option_names_are_refused(server, tmp_path, capsys):
    """argparse takes a unique prefix for the whole option by default: '--hashing l1' used to mean --hashing-norm."""
    port, stub = server
    tsv = write_tsv(tmp_path / "s.tsv", ["a", "b"], ["one text", "another text"])
    status, out, err = pycli(port, capsys, "train", "py-short", tsv, "--vectorizer", "hashing", "--tfidf",
                             "--hashing", "l1")
    assert status == 2, err
    assert "unrecognized arguments: --hashing" in err
