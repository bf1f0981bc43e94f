"""Oracle test: the discriminative core (C++) against scikit-learn itself.

A random corpus (fixed seed; words with capitals, digits, punctuation and non-ASCII letters, 4 classes) is fitted
with scikit-learn's CountVectorizer + MultinomialNB and, through the driver executable
`maas_discriminative_oracle_driver`, with the C++ core. Everything must agree: vocabulary (same order), count
rows, classes, feature_count_, class_count_, class_log_prior_, feature_log_prob_, joint log-likelihoods,
predictions, predict_proba and predict_log_proba. Also checked: importing scikit-learn's fitted state as a
PipelineSpec (CreateModel path) and scikit-learn's empty-vocabulary error.
"""

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.naive_bayes import MultinomialNB

from maas.discriminative.v1 import discriminative_pb2 as pb
from maas_testing import build_file
from maas.common.v1 import common_pb2

from sklearn_export import pipeline_spec_from_sklearn

SEED = 20240611
N_TRAIN = 320
N_TEST = 90
LABELS = ["sport", "tech", "Économie", "été"]  # code point order: 'sport' < 'tech' < 'É…' < 'é…'

# Tolerances (the core uses glibc log/exp; numpy may use its own SIMD log/exp on AVX-512 CPUs, which
# differ by an ulp or so; see the reference notes, section 7.1).
RTOL = 1e-12


def driver_path() -> Path:
    return build_file("services/discriminative/core/tools/maas_discriminative_oracle_driver")


def make_vocabulary(rng):
    """A pool of surface forms: ASCII words (some capitalised), digits, Unicode words, 1-char tokens."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = set()
    while len(words) < 400:
        n = int(rng.integers(2, 9))
        words.add("".join(rng.choice(list(letters), n)))
    words = sorted(words)
    extra = [
        "café", "cafe\u0301", "Straße", "STRASSE", "ΟΔΟΣ", "ΣΑΣ", "İstanbul", "中文字符", "naïve",
        "ǅemal", "½½", "x²", "fact_x", "a_b", "__", "hello-world", "it's", "3.14", "2024", "42",
        "Ⅻ", "ﬁne", "ᴬB", "\U00010400\U00010400", "ＡＡ", "ÉCLAIR", "éclair", "Zeta", "zeta",
        "a", "b", "1", "x", "Über", "ÜBER", "données", "Ελλάδα", "москва", "Москва", "日本語",
        "the", "and", "of", "to", "in", "is", "it", "with", "this", "that",  # English stop words
    ]
    pool = []
    for w in words:
        r = rng.random()
        pool.append(w.capitalize() if r < 0.15 else (w.upper() if r < 0.2 else w))
    return pool + extra


def make_corpus(rng, pool, n, class_weights):
    punct = [" ", " ", " ", " ", ", ", ". ", "! ", "? ", "; ", " - ", "\n", "\t", "  ", "…"]
    texts, labels = [], []
    for _ in range(n):
        c = int(rng.integers(0, len(LABELS)))
        length = int(rng.integers(0, 25))
        idx = rng.choice(len(pool), size=length, p=class_weights[c])
        parts = []
        for i in idx:
            parts.append(pool[i])
            parts.append(punct[int(rng.integers(0, len(punct)))])
        texts.append("".join(parts))
        labels.append(LABELS[c])
    return texts, labels


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(SEED)
    pool = make_vocabulary(rng)
    class_weights = []
    for _ in LABELS:
        w = rng.pareto(1.2, size=len(pool)) + 0.05
        class_weights.append(w / w.sum())
    train_texts, train_labels = make_corpus(rng, pool, N_TRAIN, class_weights)
    test_texts, _ = make_corpus(rng, pool, N_TEST, class_weights)
    test_texts += ["", "unknownwordzzz only", "a b c", "THE AND OF"]
    weights = rng.uniform(0.0, 3.0, size=N_TRAIN)
    weights[rng.random(N_TRAIN) < 0.1] = 0.0
    return dict(train_texts=train_texts, train_labels=train_labels, test_texts=test_texts,
                weights=weights)


def run_driver(args, out_dir):
    proc = subprocess.run([str(driver_path()), *args, str(out_dir)], capture_output=True, text=True,
                          timeout=300)
    return proc


def read(path, message):
    message.ParseFromString(Path(path).read_bytes())
    return message


def write(path, message):
    Path(path).write_bytes(message.SerializeToString())


def sklearn_kwargs_to_config(cv_kwargs, nb_kwargs):
    """The proto configuration equivalent to scikit-learn's constructor arguments."""
    vec = pb.VectorizerConfig()
    count = vec.count
    text = count.text
    if "lowercase" in cv_kwargs:
        text.lowercase = cv_kwargs["lowercase"]
    if "binary" in cv_kwargs:
        text.binary = cv_kwargs["binary"]
    if "ngram_range" in cv_kwargs:
        text.ngram_min, text.ngram_max = cv_kwargs["ngram_range"]
    if "stop_words" in cv_kwargs:
        text.stop_words = cv_kwargs["stop_words"]
    for name in ("min_df", "max_df"):
        if name in cv_kwargs:
            value = cv_kwargs[name]
            if isinstance(value, float):
                getattr(count, name).fraction = value
            else:
                getattr(count, name).count = value
    clf = pb.ClassifierConfig()
    nb = clf.multinomial_nb
    if "alpha" in nb_kwargs:
        nb.alpha = nb_kwargs["alpha"]
    if "fit_prior" in nb_kwargs:
        nb.fit_prior = nb_kwargs["fit_prior"]
    if "force_alpha" in nb_kwargs:
        nb.force_alpha = nb_kwargs["force_alpha"]
    if "class_prior" in nb_kwargs:
        nb.class_prior.extend(nb_kwargs["class_prior"])
    return vec, clf


def matrix(m):
    return np.array(m.values, dtype=np.float64).reshape(m.rows, m.cols)


def assert_log_close(actual, expected, what):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, what
    assert np.array_equal(np.isneginf(actual), np.isneginf(expected)), what
    finite = np.isfinite(expected)
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=RTOL, atol=0, err_msg=what)


def check_against_sklearn(cv, nb, out_dir, test_texts, check_counts=True):
    spec = read(out_dir / "spec.pb", pb.PipelineSpec())
    classify = read(out_dir / "classify.pb", pb.ClassifyResponse())
    vectorize = read(out_dir / "vectorize.pb", pb.VectorizeResponse())
    jll = matrix(read(out_dir / "jll.pb", common_pb2.Matrix()))

    # Vocabulary: identical, same order.
    assert list(spec.vectorizer.vocabulary) == list(cv.get_feature_names_out())
    # Count rows of the test texts: identical.
    x_test = cv.transform(test_texts)
    x_test.sort_indices()
    assert vectorize.num_features == x_test.shape[1]
    assert len(vectorize.rows) == x_test.shape[0]
    for i, row in enumerate(vectorize.rows):
        lo, hi = x_test.indptr[i], x_test.indptr[i + 1]
        assert list(row.indices) == list(x_test.indices[lo:hi]), f"row {i}"
        assert list(row.values) == [float(v) for v in x_test.data[lo:hi]], f"row {i}"

    cs = spec.classifier
    assert list(cs.classes) == list(nb.classes_)
    if check_counts:
        np.testing.assert_allclose(np.array(cs.class_count), nb.class_count_, rtol=RTOL, atol=0)
        np.testing.assert_allclose(matrix(cs.feature_count), nb.feature_count_, rtol=RTOL, atol=0)
    assert_log_close(cs.class_log_prior, nb.class_log_prior_, "class_log_prior_")
    assert_log_close(matrix(cs.feature_log_prob), nb.feature_log_prob_, "feature_log_prob_")

    expected_jll = nb.predict_joint_log_proba(x_test)
    assert_log_close(jll, expected_jll, "joint log-likelihood")
    predictions = [r.label for r in classify.results]
    assert predictions == list(nb.predict(x_test))
    proba = np.array([[s.probability for s in r.scores] for r in classify.results])
    log_proba = np.array([[s.log_probability for s in r.scores] for r in classify.results])
    for r in classify.results:
        assert [s.label for s in r.scores] == list(nb.classes_)
    expected_proba = nb.predict_proba(x_test)
    expected_log_proba = nb.predict_log_proba(x_test)
    np.testing.assert_allclose(proba, expected_proba, rtol=0, atol=1e-12)
    # Log-probabilities: relative 1e-12; values near 0 are differences of two nearly equal numbers of the
    # size of |jll|, so their absolute error is bounded by the row's |jll| (reference notes 7.1).
    scale = np.max(np.abs(expected_jll), axis=1, keepdims=True)
    err = np.abs(log_proba - expected_log_proba)
    bound = RTOL * np.abs(expected_log_proba) + 1e-14 * scale
    assert np.all(err <= bound), f"max log-proba error {err.max()}"
    return dict(max_abs_log_proba_err=float(err.max()),
                max_rel_flp_err=float(np.max(np.abs(matrix(cs.feature_log_prob) / nb.feature_log_prob_ - 1))))


CONFIGS = [
    ("default", {}, {}, False),
    ("default+weights", {}, {}, True),
    ("alpha0.1_uniform_prior", {}, {"alpha": 0.1, "fit_prior": False}, True),
    ("class_prior", {}, {"class_prior": [0.1, 0.2, 0.3, 0.4]}, False),
    ("alpha0_clipped", {}, {"alpha": 0.0, "force_alpha": False}, False),
    ("alpha_tiny_forced", {}, {"alpha": 1e-12}, False),
    ("case_binary", {"lowercase": False, "binary": True}, {"alpha": 0.5}, False),
    ("bigrams_stopwords", {"ngram_range": (1, 2), "stop_words": "english"}, {}, True),
    ("ngram_2_3", {"ngram_range": (2, 3)}, {}, False),
    ("df_fraction", {"min_df": 0.02, "max_df": 0.5}, {}, False),
    ("df_count", {"min_df": 2, "max_df": 60}, {"alpha": 2.5}, True),
]


@pytest.mark.parametrize("name,cv_kwargs,nb_kwargs,weighted", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_fit_matches_sklearn(data, name, cv_kwargs, nb_kwargs, weighted):
    texts, labels = data["train_texts"], data["train_labels"]
    weights = data["weights"] if weighted else None
    cv = CountVectorizer(**cv_kwargs)
    x = cv.fit_transform(texts)
    nb = MultinomialNB(**nb_kwargs).fit(x, labels, sample_weight=weights)

    vec_config, clf_config = sklearn_kwargs_to_config(cv_kwargs, nb_kwargs)
    config = pb.TrainConfig(name="oracle", vectorizer=vec_config, classifier=clf_config)
    batch = pb.TextBatch()
    for i, (t, l) in enumerate(zip(texts, labels)):
        ex = batch.examples.add(text=t, label=l)
        if weighted:
            ex.weight = float(weights[i])
    request = pb.ClassifyRequest(texts=data["test_texts"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write(tmp / "config.pb", config)
        write(tmp / "batch.pb", batch)
        write(tmp / "classify_request.pb", request)
        proc = run_driver(["fit", tmp / "config.pb", tmp / "batch.pb", tmp / "classify_request.pb"], tmp)
        assert proc.returncode == 0, proc.stderr
        stats = check_against_sklearn(cv, nb, tmp, data["test_texts"])
        spec = read(tmp / "spec.pb", pb.PipelineSpec())
        # Document frequencies and the document count exported for later training.
        df = np.bincount(x.indices, minlength=x.shape[1])
        assert list(spec.vectorizer.document_frequency) == list(df)
        assert spec.vectorizer.num_documents == len(texts)
    print(name, stats)


# An audit found predict_proba 2.9e-11 away from scikit-learn's on a text whose |jll| was 2.7e5: scikit-learn's
# exp(jll - logsumexp(jll)) rounds jll - logsumexp to the ulp of |jll|, the softmax e / sum(e) does not.
def test_probabilities_of_long_texts_match_sklearn():
    # "xx" is as likely in both classes; "yy" and "zz" tell them apart: long texts of "xx" have |jll| of 1e4 to 1e6
    # and probabilities far from 0 and 1.
    texts, labels = ["xx yy", "xx zz", "xx yy ww", "xx zz ww"], ["a", "b", "a", "b"]
    test_texts = [" ".join(["xx"] * n + ["yy"] * a + ["zz"] * b)
                  for n in (3000, 30000, 300000) for a, b in ((35, 0), (3, 0), (2, 1), (0, 4), (5, 5))]
    cv = CountVectorizer()
    x = cv.fit_transform(texts)
    nb = MultinomialNB().fit(x, labels)
    vec_config, clf_config = sklearn_kwargs_to_config({}, {})
    config = pb.TrainConfig(name="oracle", vectorizer=vec_config, classifier=clf_config)
    batch = pb.TextBatch()
    for t, l in zip(texts, labels):
        batch.examples.add(text=t, label=l)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write(tmp / "config.pb", config)
        write(tmp / "batch.pb", batch)
        write(tmp / "classify_request.pb", pb.ClassifyRequest(texts=test_texts))
        proc = run_driver(["fit", tmp / "config.pb", tmp / "batch.pb", tmp / "classify_request.pb"], tmp)
        assert proc.returncode == 0, proc.stderr
        check_against_sklearn(cv, nb, tmp, test_texts)
    proba = nb.predict_proba(cv.transform(test_texts))
    assert np.sum((proba > 1e-3) & (proba < 1 - 1e-3)) >= 10, "too few probabilities away from 0 and 1"


def test_import_sklearn_model(data):
    """A PipelineSpec built from scikit-learn's fitted attributes (CreateModel) predicts like scikit-learn."""
    texts, labels = data["train_texts"], data["train_labels"]
    cv = CountVectorizer()
    x = cv.fit_transform(texts)
    nb = MultinomialNB(alpha=0.3).fit(x, labels, sample_weight=data["weights"])
    spec = pipeline_spec_from_sklearn(cv, nb)
    request = pb.ClassifyRequest(texts=data["test_texts"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write(tmp / "spec.pb", spec)
        write(tmp / "classify_request.pb", request)
        proc = run_driver(["import", tmp / "spec.pb", tmp / "classify_request.pb"], tmp)
        assert proc.returncode == 0, proc.stderr
        check_against_sklearn(cv, nb, tmp, data["test_texts"])
        # The imported state comes back unchanged.
        back = read(tmp / "spec.pb", pb.PipelineSpec())
        assert list(back.classifier.feature_log_prob.values) == spec.classifier.feature_log_prob.values
        # A malformed spec (unsorted vocabulary) is rejected with INVALID_ARGUMENT.
        spec.vectorizer.vocabulary[0], spec.vectorizer.vocabulary[1] = (
            spec.vectorizer.vocabulary[1], spec.vectorizer.vocabulary[0])
        write(tmp / "bad.pb", spec)
        proc = run_driver(["import", tmp / "bad.pb", tmp / "classify_request.pb"], tmp)
        assert proc.returncode == 2
        assert (tmp / "error.txt").read_text().startswith("INVALID_ARGUMENT")


def test_empty_vocabulary_like_sklearn():
    texts = ["a b c", "1 2 3 !", "x . y"]
    with pytest.raises(ValueError, match="empty vocabulary"):
        CountVectorizer().fit(texts)
    config = pb.TrainConfig(name="oracle")
    batch = pb.TextBatch()
    for t in texts:
        batch.examples.add(text=t, label="l")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write(tmp / "config.pb", config)
        write(tmp / "batch.pb", batch)
        write(tmp / "req.pb", pb.ClassifyRequest(texts=["a"]))
        proc = run_driver(["fit", tmp / "config.pb", tmp / "batch.pb", tmp / "req.pb"], tmp)
        assert proc.returncode == 2
        code, message = (tmp / "error.txt").read_text().split("\n", 1)
        assert code == "INVALID_ARGUMENT"
        assert "empty vocabulary" in message
