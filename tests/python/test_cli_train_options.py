"""`maas train` passes every vectorizer and classifier option of issue 8 to the service (real binaries).

Each option set is trained through the CLI from a TSV file, and the stored model (GetModel) is compared with
scikit-learn fitted here on the same data with the same parameters: vocabulary, idf, feature_count_,
class_log_prior_ and feature_log_prob_. Covered: analyzer/ngram_range/strip_accents/lowercase/min_df/max_df/
max_features with tf-idf (norm, smooth_idf, sublinear_tf) and ComplementNB (norm, alpha); hashing (n_features,
alternate_sign, norm) with binary, English stop words and BernoulliNB (binarize none, fit_prior, alpha) and
sample weights; a fixed vocabulary file, a stop word file, decode_error and MultinomialNB (class_prior,
force_alpha); partial training with --classes against partial_fit; usage errors for options that do not apply.
"""


import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfVectorizer
from sklearn.naive_bayes import BernoulliNB, ComplementNB, MultinomialNB

from maas.discriminative.v1 import discriminative_pb2 as pb
from maas.discriminative.v1 import discriminative_pb2_grpc
from maas_testing import TIMEOUT, channel_to, from_matrix, ref, start_discriminative, wait_serving, run_maas_cli

LABELS = ["ham", "spam", "Été"]
WORDS = ["café", "Café", "naïve", "résumé", "the", "and", "of", "money", "free", "win", "meeting", "report",
         "Straße", "σοφός", "東京", "x", "data", "offer", "click", "lunch", "project", "ÉCOLE", "école"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = start_discriminative(tmp_path_factory.mktemp("cli-train"))
    channel = channel_to(process)
    wait_serving(channel)
    yield process.port, discriminative_pb2_grpc.DiscriminativeServiceStub(channel)
    channel.close()
    assert process.stop() == 0
    process.release()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(20261202)
    texts, labels = [], []
    for _ in range(120):
        c = int(rng.integers(len(LABELS)))
        p = np.roll(np.linspace(3.0, 0.2, len(WORDS)), 7 * c)
        words = rng.choice(WORDS, size=int(rng.integers(2, 14)), p=p / p.sum())
        texts.append(" ".join(words))
        labels.append(LABELS[c])
    weights = rng.uniform(0.1, 2.0, size=len(texts)).round(2)
    return texts, labels, weights


def write_tsv(path, labels, texts, weights=None):
    with open(path, "w", encoding="utf-8") as f:
        for i, (label, text) in enumerate(zip(labels, texts)):
            f.write(f"{label}\t{float(weights[i])!r}\t{text}\n" if weights is not None else f"{label}\t{text}\n")
    return path


def spec_of(stub, name):
    return stub.GetModel(pb.GetModelRequest(model=ref(name)), timeout=TIMEOUT).spec


def assert_classifier(spec, nb, what):
    c = spec.classifier
    assert list(c.classes) == [str(label) for label in nb.classes_.tolist()], what
    np.testing.assert_allclose(from_matrix(c.feature_count), nb.feature_count_, rtol=1e-12, atol=1e-12,
                               err_msg=f"{what}: feature_count_")
    np.testing.assert_allclose(c.class_log_prior, nb.class_log_prior_, rtol=1e-12, err_msg=f"{what}: prior")
    np.testing.assert_allclose(from_matrix(c.feature_log_prob), nb.feature_log_prob_, rtol=1e-12, atol=1e-12,
                               err_msg=f"{what}: feature_log_prob_")


def test_count_tfidf_complement_options(server, data, tmp_path):
    port, stub = server
    texts, labels, _ = data
    tsv = write_tsv(tmp_path / "a.tsv", labels, texts)
    run_maas_cli(port, "train", "--name", "cli-a", "--data", tsv, "--analyzer", "char_wb", "--ngram_range", "2,3",
            "--strip_accents", "unicode", "--nolowercase", "--min_df", "2", "--max_df", "0.95", "--tfidf",
            "--norm", "l1", "--smooth_idf=false", "--sublinear_tf", "--classifier", "complement_nb",
            "--alpha", "0.5", "--complement_norm")
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), strip_accents="unicode", lowercase=False,
                          min_df=2, max_df=0.95, norm="l1", smooth_idf=False, sublinear_tf=True)
    x = vec.fit_transform(texts)
    spec = spec_of(stub, "cli-a")
    assert list(spec.vectorizer.vocabulary) == vec.get_feature_names_out().tolist()
    np.testing.assert_allclose(spec.vectorizer.idf, vec.idf_, rtol=1e-12)
    assert_classifier(spec, ComplementNB(alpha=0.5, norm=True).fit(x, labels), "count+tfidf+complement")

    # max_features: the most frequent terms, ties at the cutoff by feature order (the documented rule).
    run_maas_cli(port, "train", "--name", "cli-a2", "--data", tsv, "--analyzer", "char", "--ngram_range", "1,2",
            "--max_features", "25", "--binary")
    full = CountVectorizer(analyzer="char", ngram_range=(1, 2), binary=True)
    counts = np.asarray(full.fit_transform(texts).sum(axis=0)).ravel()
    names = full.get_feature_names_out().tolist()
    kept = sorted(sorted(range(len(names)), key=lambda j: (-counts[j], j))[:25])
    assert list(spec_of(stub, "cli-a2").vectorizer.vocabulary) == [names[j] for j in kept]


def test_hashing_bernoulli_weighted_options(server, data, tmp_path):
    port, stub = server
    texts, labels, weights = data
    tsv = write_tsv(tmp_path / "b.tsv", labels, texts, weights)
    run_maas_cli(port, "train", "--name", "cli-b", "--data", tsv, "--weighted", "--vectorizer", "hashing",
            "--n_features", "4096", "--noalternate_sign", "--norm", "none", "--binary", "--stop_words", "english",
            "--classifier", "bernoulli_nb", "--binarize", "none", "--alpha", "0.3", "--fit_prior=false")
    x = HashingVectorizer(n_features=4096, alternate_sign=False, norm=None, binary=True,
                          stop_words="english").transform(texts)
    nb = BernoulliNB(binarize=None, alpha=0.3, fit_prior=False).fit(x, labels, sample_weight=weights)
    assert_classifier(spec_of(stub, "cli-b"), nb, "hashing+bernoulli (weighted)")


def test_vocabulary_and_stop_word_files_multinomial_options(server, data, tmp_path):
    port, stub = server
    texts, labels, _ = data
    vocabulary = ["money", "free", "café", "the", "meeting", "école", "project", "zzz-unused"]
    stops = ["the", "and", "of"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    (tmp_path / "stops.txt").write_text("\r\n".join(stops) + "\r\n", encoding="utf-8")
    tsv = write_tsv(tmp_path / "c.tsv", labels, texts)
    run_maas_cli(port, "train", "--name", "cli-c", "--data", tsv, "--vocabulary_file", tmp_path / "vocab.txt",
            "--decode_error", "replace", "--classifier", "multinomial_nb", "--alpha", "0",
            "--force_alpha=false", "--class_prior", "0.2,0.5,0.3")
    spec = spec_of(stub, "cli-c")
    assert list(spec.vectorizer.vocabulary) == vocabulary
    assert spec.vectorizer.config.count.text.decode_error == pb.DECODE_ERROR_REPLACE
    x = CountVectorizer(vocabulary=vocabulary, decode_error="replace").fit_transform(texts)
    assert_classifier(spec, MultinomialNB(alpha=0, force_alpha=False, class_prior=[0.2, 0.5, 0.3]).fit(x, labels),
                      "fixed vocabulary + multinomial")

    run_maas_cli(port, "train", "--name", "cli-c2", "--data", tsv, "--stop_words_file", tmp_path / "stops.txt",
            "--ngram_range", "1,2", "--fit_prior=false")
    vec = CountVectorizer(stop_words=stops, ngram_range=(1, 2))
    x = vec.fit_transform(texts)
    spec = spec_of(stub, "cli-c2")
    assert list(spec.vectorizer.config.count.text.stop_word_list) == stops
    assert list(spec.vectorizer.vocabulary) == vec.get_feature_names_out().tolist()
    assert_classifier(spec, MultinomialNB(fit_prior=False).fit(x, labels), "stop word file")


def test_partial_training_through_the_cli(server, data, tmp_path):
    port, stub = server
    texts, labels, _ = data
    options = ["--vectorizer", "hashing", "--n_features", "1024", "--noalternate_sign", "--norm", "none",
               "--classifier", "multinomial_nb", "--alpha", "0.7"]
    first = write_tsv(tmp_path / "p1.tsv", labels[:50], texts[:50])
    second = write_tsv(tmp_path / "p2.tsv", labels[50:], texts[50:])
    classes = LABELS + ["later"]
    out = run_maas_cli(port, "train", "--name", "cli-p", "--data", first, "--partial", "--classes", ",".join(classes),
                  *options)
    assert "version" in out.stdout
    # The second call may repeat the options or leave them out (the continued version's).
    run_maas_cli(port, "train", "--name", "cli-p", "--data", second, "--partial")
    vec = HashingVectorizer(n_features=1024, alternate_sign=False, norm=None)
    nb = MultinomialNB(alpha=0.7)
    nb.partial_fit(vec.transform(texts[:50]), labels[:50], classes=classes)
    nb.partial_fit(vec.transform(texts[50:]), labels[50:])
    assert_classifier(spec_of(stub, "cli-p"), nb, "partial through the CLI")
    # Another alpha on a partial call is refused, naming the field.
    bad = run_maas_cli(port, "train", "--name", "cli-p", "--data", second, "--partial", *options[:-1], "0.9",
                  check=False)
    assert bad.returncode == 1 and "alpha" in bad.stderr and "INVALID_ARGUMENT" in bad.stderr


@pytest.mark.parametrize("args,mentions", [
    (["--vectorizer", "hashing", "--min_df", "2"], "min_df"),
    (["--n_features", "16"], "n_features"),
    (["--use_idf=false"], "--tfidf"),
    (["--classifier", "complement_nb", "--binarize", "0.5"], "binarize"),
    (["--classifier", "bernoulli_nb", "--complement_norm"], "complement_norm"),
    (["--ngram_range", "3,1"], "ngram_range"),
    (["--norm", "l3", "--tfidf"], "norm"),
    (["--analyzer", "words"], "analyzer"),
    (["--min_df", "two"], "min_df"),
    (["--classifier", "svm"], "classifier"),
])
def test_options_that_do_not_apply_are_usage_errors(server, tmp_path, args, mentions):
    port, _ = server
    tsv = write_tsv(tmp_path / "u.tsv", ["a", "b"], ["one text", "another text"])
    result = run_maas_cli(port, "train", "--name", "cli-u", "--data", tsv, *args, check=False)
    assert result.returncode == 2, result.stderr
    assert mentions in result.stderr


def test_token_pattern_reaches_the_service(server, data, tmp_path):
    """A custom token_pattern is sent as given: the service either uses it or names it in its refusal."""
    port, stub = server
    texts, labels, _ = data
    tsv = write_tsv(tmp_path / "t.tsv", labels, texts)
    result = run_maas_cli(port, "train", "--name", "cli-t", "--data", tsv, "--token_pattern", r"\S+", check=False)
    if result.returncode == 0:
        assert spec_of(stub, "cli-t").vectorizer.config.count.text.token_pattern == r"\S+"
    else:
        assert result.returncode == 1 and "token_pattern" in result.stderr, result.stderr


@pytest.mark.parametrize("decode_error", ["replace", "ignore"])
def test_texts_that_are_not_utf8_follow_decode_error(server, tmp_path, decode_error):
    """A Latin-1 training file and text file: the CLI sends the texts as they are and the service applies
    decode_error, equal to scikit-learn's CountVectorizer(decode_error=...) + MultinomialNB on the same bytes."""
    import json
    port, stub = server
    texts = ["caf\xe9 na\xefve cr\xe8me", "the caf\xe9 is open", "na\xefve b\xe9b\xe9 cr\xe8me br\xfbl\xe9e",
             "money free offer", "free caf\xe9 offer now", "win money now"]
    labels = ["food", "food", "food", "spam", "spam", "spam"]
    encoded = [t.encode("latin-1") for t in texts]
    (tmp_path / "latin1.tsv").write_bytes(b"".join(l.encode() + b"\t" + t + b"\n" for l, t in zip(labels, encoded)))
    name = f"cli-latin1-{decode_error}"
    trained = run_maas_cli(port, "train", "--name", name, "--data", tmp_path / "latin1.tsv",
                           "--decode_error", decode_error)
    assert "libprotobuf" not in trained.stderr
    vec = CountVectorizer(decode_error=decode_error)
    nb = MultinomialNB().fit(vec.fit_transform(encoded), labels)
    spec = spec_of(stub, name)
    assert list(spec.vectorizer.vocabulary) == vec.get_feature_names_out().tolist()
    assert_classifier(spec, nb, f"latin-1 texts, decode_error={decode_error}")

    queries = [b"caf\xe9 cr\xe8me", b"free \xff money", b"na\xefve"]
    (tmp_path / "queries.txt").write_bytes(b"\n".join(queries) + b"\n")
    classified = run_maas_cli(port, "--json", "classify", "--model", name, "--text_file", tmp_path / "queries.txt")
    assert "libprotobuf" not in classified.stderr
    results = json.loads(classified.stdout)["results"]
    want = nb.predict_proba(vec.transform(queries))
    for result, row in zip(results, want):
        assert result["label"] == nb.classes_[np.argmax(row)]
        np.testing.assert_allclose([s["probability"] for s in result["scores"]], row, rtol=1e-12)

    # decode_error strict (the default): the service refuses the file, naming the text.
    refused = run_maas_cli(port, "train", "--name", name + "-strict", "--data", tmp_path / "latin1.tsv", check=False)
    assert refused.returncode == 1
    assert "INVALID_ARGUMENT" in refused.stderr and "UTF-8" in refused.stderr


def test_integer_labels_flag_orders_classes_numerically(server, data, tmp_path):
    """--integer_labels: the classes of integer labels in scikit-learn's numeric order (9 before 10), shown by GetModel
    as label_type; without it the same labels are strings in code point order; non-canonical integers are refused."""
    port, stub = server
    texts, _, _ = data
    y = [[9, 10, 100, -2][i % 4] for i in range(len(texts))]
    tsv = write_tsv(tmp_path / "int.tsv", [str(v) for v in y], texts)
    x = CountVectorizer().fit_transform(texts)
    nb = MultinomialNB().fit(x, y)
    run_maas_cli(port, "train", "--name", "cli-int", "--data", tsv, "--integer_labels")
    spec = spec_of(stub, "cli-int")
    assert spec.classifier.label_type == pb.LABEL_TYPE_INT64
    assert [int(c) for c in spec.classifier.classes] == nb.classes_.tolist()
    np.testing.assert_allclose(from_matrix(spec.classifier.feature_log_prob), nb.feature_log_prob_, rtol=1e-12)
    out = run_maas_cli(port, "get", "--model", "cli-int").stdout
    assert "label_type: LABEL_TYPE_INT64" in out
    run_maas_cli(port, "train", "--name", "cli-str", "--data", tsv)
    strings = spec_of(stub, "cli-str").classifier
    assert strings.label_type == pb.LABEL_TYPE_STRING
    assert list(strings.classes) == MultinomialNB().fit(x, [str(v) for v in y]).classes_.tolist()
    bad = write_tsv(tmp_path / "bad.tsv", ["9", "010"], texts[:2])
    result = run_maas_cli(port, "train", "--name", "cli-bad", "--data", bad, "--integer_labels", check=False)
    assert result.returncode == 1 and "INVALID_ARGUMENT" in result.stderr and "canonical" in result.stderr
