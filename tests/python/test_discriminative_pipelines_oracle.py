"""Exactness of every vectorizer and classifier parameter against scikit-learn itself (issue 8 item 7).

For each configuration a random corpus (fixed seed, generated here: ASCII words, accents, combining marks, CJK,
Greek with final sigma, Turkish İ, digits, underscores, emoji, whitespace of every kind) is fitted by scikit-learn
and, through `maas_discriminative_oracle_driver`, by the C++ core. Compared: vocabulary and its order, the
transformed rows of held-out texts (indices exactly, values to 1e-12), idf_, feature_count_, class_count_,
class_log_prior_, feature_log_prob_, the joint log-likelihoods, predictions and probabilities (tolerances of the
reference notes, section 7.1).
"""

import math
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import (CountVectorizer, HashingVectorizer, TfidfTransformer,
                                             TfidfVectorizer)
from sklearn.naive_bayes import BernoulliNB, ComplementNB, MultinomialNB

from maas.common.v1 import common_pb2
from maas.discriminative.v1 import discriminative_pb2 as pb
from maas_testing import build_file

SEED = 20261202
N_TRAIN = 160
LABELS = ["ham", "spam", "Ωmega", "été"]
RTOL = 1e-12

WORDS = ["café", "cafe\u0301", "naïve", "Straße", "STRASSE", "ΟΔΟΣ", "ΣΑΣ", "σοφός", "İstanbul", "ıi",
         "中文字符", "日本語", "東京", "한국어", "ǅemal", "½½", "x²", "Ⅻ", "ﬁne", "ᴬB", "fact_x", "a_b", "__",
         "2024", "42", "3.14", "😀smile", "👍🏽", "Ångström", "Å", "ÉCOLE", "école", "Ελλάδα", "москва",
         "Москва", "Über", "\U00010400\U00010400", "ＡＡ", "it's", "e-mail", "a", "I", "x", "the", "and", "of"]
SEPARATORS = [" ", " ", " ", " ", ", ", ". ", "! ", "\t", "\n", "  ", "\u00a0", "\u2003", "\u3000", "\r\n",
              "\x0b", "\u2028", "\u1680", " \u0301", "…"]


def driver_path() -> Path:
    return build_file("services/discriminative/core/tools/maas_discriminative_oracle_driver")


def make_corpus(rng, n):
    letters = list("abcdefghijklmnopqrstuvwxyzéèüöñç")
    pool = sorted({"".join(rng.choice(letters, int(rng.integers(1, 8)))) for _ in range(300)}) + WORDS
    weights = []
    for _ in LABELS:
        w = rng.pareto(1.1, size=len(pool)) + 0.05
        weights.append(w / w.sum())
    texts, labels = [], []
    for _ in range(n):
        c = int(rng.integers(len(LABELS)))
        parts = []
        for i in rng.choice(len(pool), size=int(rng.integers(0, 20)), p=weights[c]):
            word = pool[i]
            roll = rng.random()
            parts.append(word.upper() if roll < 0.1 else (word.capitalize() if roll < 0.2 else word))
            parts.append(SEPARATORS[int(rng.integers(len(SEPARATORS)))])
        texts.append("".join(parts))
        labels.append(LABELS[c])
    return texts, labels


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(SEED)
    train, labels = make_corpus(rng, N_TRAIN)
    test, _ = make_corpus(rng, 40)
    test += ["", "  \t ", "zzzz unknown", "ΣΣ σσ", "İİ", "e\u0301\u0301"]
    weights = rng.uniform(0.0, 3.0, size=N_TRAIN)
    weights[rng.random(N_TRAIN) < 0.1] = 0.0
    return dict(train=train, labels=labels, test=test, weights=weights)


# -- configuration builders: scikit-learn kwargs -> proto ------------------------------------------------------

ANALYZERS = {"word": pb.ANALYZER_WORD, "char": pb.ANALYZER_CHAR, "char_wb": pb.ANALYZER_CHAR_WB}
ACCENTS = {None: pb.STRIP_ACCENTS_NONE, "ascii": pb.STRIP_ACCENTS_ASCII, "unicode": pb.STRIP_ACCENTS_UNICODE}
NORMS = {"l1": pb.NORM_L1, "l2": pb.NORM_L2, None: pb.NORM_NONE}


def text_options(text, kw):
    if "lowercase" in kw:
        text.lowercase = kw["lowercase"]
    text.analyzer = ANALYZERS[kw.get("analyzer", "word")]
    text.strip_accents = ACCENTS[kw.get("strip_accents")]
    if "ngram_range" in kw:
        text.ngram_min, text.ngram_max = kw["ngram_range"]
    stop = kw.get("stop_words")
    if isinstance(stop, str):
        text.stop_words = stop
    elif stop is not None:
        text.stop_word_list.extend(stop)
    text.binary = kw.get("binary", False)


def vectorizer_config(kind, kw, tfidf_kw):
    config = pb.VectorizerConfig()
    if kind == "hashing":
        h = config.hashing
        text_options(h.text, kw)
        h.n_features = kw.get("n_features", 2 ** 20)
        h.alternate_sign = kw.get("alternate_sign", True)
        h.norm = NORMS[kw.get("norm", "l2")]
    else:
        c = config.count
        text_options(c.text, kw)
        for name in ("min_df", "max_df"):
            if name in kw:
                value = kw[name]
                if isinstance(value, float):
                    getattr(c, name).fraction = value
                else:
                    getattr(c, name).count = value
        if kw.get("max_features"):
            c.max_features = kw["max_features"]
        if kw.get("vocabulary") is not None:
            c.vocabulary.extend(kw["vocabulary"])
    if tfidf_kw is not None:
        config.tfidf.norm = NORMS[tfidf_kw.get("norm", "l2")]
        config.tfidf.use_idf = tfidf_kw.get("use_idf", True)
        config.tfidf.smooth_idf = tfidf_kw.get("smooth_idf", True)
        config.tfidf.sublinear_tf = tfidf_kw.get("sublinear_tf", False)
    return config


def classifier_config(kind, kw):
    config = pb.ClassifierConfig()
    message = getattr(config, kind)
    message.SetInParent()
    for name in ("alpha", "fit_prior", "force_alpha", "norm"):
        if name in kw:
            setattr(message, name, kw[name])
    if "class_prior" in kw:
        message.class_prior.extend(kw["class_prior"])
    if "binarize" in kw:
        if kw["binarize"] is None:
            message.disable_binarize = True
        else:
            message.binarize = kw["binarize"]
    return config


SKLEARN_CLASSIFIERS = {"multinomial_nb": MultinomialNB, "complement_nb": ComplementNB,
                       "bernoulli_nb": BernoulliNB}


def sklearn_vectorizer(kind, kw, tfidf_kw):
    if kind == "hashing":
        return [HashingVectorizer(**kw)] + ([TfidfTransformer(**tfidf_kw)] if tfidf_kw is not None else [])
    if tfidf_kw is not None:
        return [TfidfVectorizer(**kw, **tfidf_kw)]
    return [CountVectorizer(**kw)]


def fit_sklearn(steps, texts):
    x = steps[0].fit_transform(texts)
    for step in steps[1:]:
        x = step.fit_transform(x)
    return x


def transform_sklearn(steps, texts):
    x = steps[0].transform(texts)
    for step in steps[1:]:
        x = step.transform(x)
    return x


def read(path, message):
    message.ParseFromString(Path(path).read_bytes())
    return message


def matrix(m):
    return np.array(m.values, dtype=np.float64).reshape(m.rows, m.cols)


def assert_log_close(actual, expected, what):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, what
    assert np.array_equal(np.isinf(actual), np.isinf(expected)), what
    finite = np.isfinite(expected)
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=RTOL, atol=1e-300, err_msg=what)


def run_config(data, vec_kind, vec_kw, tfidf_kw, clf_kind, clf_kw, weighted):
    texts, labels, test = data["train"], data["labels"], data["test"]
    weights = data["weights"] if weighted else None
    steps = sklearn_vectorizer(vec_kind, vec_kw, tfidf_kw)
    x = fit_sklearn(steps, texts)
    clf = SKLEARN_CLASSIFIERS[clf_kind](**clf_kw).fit(x, labels, sample_weight=weights)
    x_test = transform_sklearn(steps, test).tocsr()

    config = pb.TrainConfig(name="oracle", vectorizer=vectorizer_config(vec_kind, vec_kw, tfidf_kw),
                            classifier=classifier_config(clf_kind, clf_kw))
    batch = pb.TextBatch()
    for i, (t, l) in enumerate(zip(texts, labels)):
        example = batch.examples.add(text=t, label=l)
        if weighted:
            example.weight = float(weights[i])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "config.pb").write_bytes(config.SerializeToString())
        (tmp / "batch.pb").write_bytes(batch.SerializeToString())
        (tmp / "req.pb").write_bytes(pb.ClassifyRequest(texts=test).SerializeToString())
        proc = subprocess.run([str(driver_path()), "fit", tmp / "config.pb", tmp / "batch.pb", tmp / "req.pb", tmp],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        spec = read(tmp / "spec.pb", pb.PipelineSpec())
        classify = read(tmp / "classify.pb", pb.ClassifyResponse())
        vectorize = read(tmp / "vectorize.pb", pb.VectorizeResponse())
        jll = matrix(read(tmp / "jll.pb", common_pb2.Matrix()))

    if vec_kind == "count":
        assert list(spec.vectorizer.vocabulary) == list(steps[0].get_feature_names_out()), "vocabulary"
    if tfidf_kw is not None and tfidf_kw.get("use_idf", True):
        idf = steps[-1].idf_
        np.testing.assert_allclose(np.array(spec.vectorizer.idf), idf, rtol=RTOL, atol=0, err_msg="idf_")
    # Rows of the held-out texts: same indices (sorted), values within tolerance.
    assert vectorize.num_features == x_test.shape[1]
    for i, row in enumerate(vectorize.rows):
        lo, hi = x_test.indptr[i], x_test.indptr[i + 1]
        order = np.argsort(x_test.indices[lo:hi], kind="stable")
        assert list(row.indices) == list(x_test.indices[lo:hi][order]), f"row {i} of {test[i]!r}"
        np.testing.assert_allclose(np.array(row.values), x_test.data[lo:hi][order], rtol=RTOL, atol=1e-15,
                                   err_msg=f"row {i}")
    cs = spec.classifier
    assert list(cs.classes) == list(clf.classes_)
    np.testing.assert_allclose(np.array(cs.class_count), clf.class_count_, rtol=RTOL, atol=0)
    np.testing.assert_allclose(matrix(cs.feature_count), clf.feature_count_, rtol=RTOL, atol=1e-300)
    assert_log_close(cs.class_log_prior, clf.class_log_prior_, "class_log_prior_")
    assert_log_close(matrix(cs.feature_log_prob), clf.feature_log_prob_, "feature_log_prob_")
    expected_jll = clf.predict_joint_log_proba(x_test)
    scale = np.max(np.abs(expected_jll), axis=1, keepdims=True)
    assert np.all(np.abs(jll - expected_jll) <= RTOL * np.abs(expected_jll) + 1e-14 * scale + 1e-15), \
        f"jll max error {np.max(np.abs(jll - expected_jll))}"
    assert [r.label for r in classify.results] == list(clf.predict(x_test))
    proba = np.array([[s.probability for s in r.scores] for r in classify.results])
    np.testing.assert_allclose(proba, clf.predict_proba(x_test), rtol=0, atol=1e-12)
    log_proba = np.array([[s.log_probability for s in r.scores] for r in classify.results])
    expected = clf.predict_log_proba(x_test)
    assert np.all(np.abs(log_proba - expected) <= RTOL * np.abs(expected) + 1e-14 * scale + 1e-15)


CONFIGS = [
    # (id, vectorizer kind, vectorizer kwargs, tfidf kwargs or None, classifier kind, classifier kwargs, weighted)
    ("char_1_3", "count", {"analyzer": "char", "ngram_range": (1, 3)}, None, "multinomial_nb", {}, False),
    ("char_wb_1_3", "count", {"analyzer": "char_wb", "ngram_range": (1, 3)}, None, "multinomial_nb", {}, True),
    ("char_wb_2_5_nocase", "count", {"analyzer": "char_wb", "ngram_range": (2, 5), "lowercase": False}, None,
     "multinomial_nb", {"alpha": 0.3}, False),
    ("char_accents_ascii", "count", {"analyzer": "char", "ngram_range": (2, 2), "strip_accents": "ascii"}, None,
     "multinomial_nb", {}, False),
    ("word_accents_unicode", "count", {"strip_accents": "unicode"}, None, "multinomial_nb", {}, True),
    ("word_accents_ascii_nocase", "count", {"strip_accents": "ascii", "lowercase": False}, None,
     "multinomial_nb", {}, False),
    ("stop_list_bigrams", "count", {"stop_words": ["the", "and", "of", "café", "ab"], "ngram_range": (1, 2)},
     None, "multinomial_nb", {}, False),
    ("fixed_vocabulary", "count", {"vocabulary": ["zz", "café", "the", "2024", "σοφός", "nothere", "ab"]}, None,
     "multinomial_nb", {"alpha": 0.5}, False),
    # Unigrams with stop words: the word runs' path counts them and drops them with the pruned terms (fit), or
    # finds none of them in a vocabulary without them (transform); a fixed vocabulary holding one takes the
    # analyzer's path.
    ("stop_english", "count", {"stop_words": "english"}, None, "multinomial_nb", {}, False),
    ("stop_list_repeated_max_features", "count", {"stop_words": ["the", "and", "the", "café", "σοφός", "ab"],
                                                  "max_features": 60, "max_df": 0.5}, {}, "multinomial_nb", {},
     True),
    ("stop_list_case_kept", "count", {"stop_words": ["The", "the", "ÉCOLE", "a_b"], "lowercase": False}, None,
     "complement_nb", {}, False),
    ("stop_list_accents", "count", {"stop_words": ["cafe", "ecole", "the"], "strip_accents": "unicode"}, None,
     "bernoulli_nb", {}, False),
    ("fixed_vocabulary_stop", "count", {"vocabulary": ["zz", "café", "the", "2024", "and", "ab"],
                                        "stop_words": ["the", "of"]}, None, "multinomial_nb", {"alpha": 0.5},
     False),
    ("tfidf_default", "count", {}, {}, "multinomial_nb", {}, False),
    ("tfidf_l1_sublinear_nosmooth", "count", {}, {"norm": "l1", "sublinear_tf": True, "smooth_idf": False},
     "multinomial_nb", {"alpha": 0.1}, True),
    ("tfidf_noidf_nonorm", "count", {"ngram_range": (1, 2)}, {"use_idf": False, "norm": None},
     "multinomial_nb", {}, False),
    ("tfidf_char_wb", "count", {"analyzer": "char_wb", "ngram_range": (1, 3)}, {}, "complement_nb", {}, False),
    ("hashing_default", "hashing", {"n_features": 1024, "alternate_sign": False}, None, "multinomial_nb", {},
     False),
    ("hashing_small_binary_l1", "hashing", {"n_features": 37, "alternate_sign": False, "binary": True,
                                            "norm": "l1"}, None, "bernoulli_nb", {}, True),
    ("hashing_signed_bernoulli", "hashing", {"n_features": 64}, None, "bernoulli_nb", {"binarize": 0.05}, False),
    ("hashing_tfidf", "hashing", {"n_features": 2048, "alternate_sign": False, "norm": None},
     {"sublinear_tf": True}, "multinomial_nb", {}, False),
    ("hashing_char_tfidf", "hashing", {"n_features": 512, "alternate_sign": False, "analyzer": "char_wb",
                                       "ngram_range": (2, 3), "norm": None}, {"norm": "l1"}, "complement_nb",
     {"norm": True}, True),
    ("complement", "count", {}, None, "complement_nb", {}, False),
    ("complement_norm_weighted", "count", {"ngram_range": (1, 2)}, None, "complement_nb",
     {"norm": True, "alpha": 0.5}, True),
    ("complement_prior", "count", {}, None, "complement_nb", {"class_prior": [0.1, 0.2, 0.3, 0.4],
                                                                "fit_prior": False}, False),
    ("bernoulli", "count", {}, None, "bernoulli_nb", {}, False),
    ("bernoulli_binarize_weighted", "count", {"analyzer": "char", "ngram_range": (1, 2)}, None, "bernoulli_nb",
     {"binarize": 1.0, "alpha": 0.5}, True),
    ("bernoulli_none_prior", "count", {"binary": True}, None, "bernoulli_nb",
     {"binarize": None, "fit_prior": False}, False),
    ("bernoulli_tfidf", "count", {}, {}, "bernoulli_nb", {"binarize": 0.1, "class_prior": [0.4, 0.3, 0.2, 0.1]},
     False),
    ("multinomial_alpha0_clipped", "count", {"analyzer": "char_wb", "ngram_range": (3, 3)}, None,
     "multinomial_nb", {"alpha": 0.0, "force_alpha": False}, False),
]


@pytest.mark.parametrize("name,vec_kind,vec_kw,tfidf_kw,clf_kind,clf_kw,weighted", CONFIGS,
                         ids=[c[0] for c in CONFIGS])
def test_pipeline_matches_sklearn(data, name, vec_kind, vec_kw, tfidf_kw, clf_kind, clf_kw, weighted):
    run_config(data, vec_kind, vec_kw, tfidf_kw, clf_kind, clf_kw, weighted)


def test_max_features_keeps_the_most_frequent_with_documented_ties(data):
    """max_features: the terms with the highest corpus counts; ties at the cutoff broken by feature order (the
    documented difference). When the cutoff has no tie, the vocabulary equals scikit-learn's exactly."""
    texts, labels = data["train"], data["labels"]
    full = CountVectorizer().fit(texts)
    totals = np.asarray(full.transform(texts).sum(axis=0)).ravel()
    names = full.get_feature_names_out()
    order = sorted(range(len(names)), key=lambda j: (-totals[j], names[j]))
    limits = [k for k in range(5, 200) if totals[order[k - 1]] != totals[order[k]]][:2]
    tied = [k for k in range(5, 200) if totals[order[k - 1]] == totals[order[k]]][:1]
    for k in limits:
        run_config(data, "count", {"max_features": k}, None, "multinomial_nb", {}, False)
    for k in tied:
        expected = sorted(names[j] for j in order[:k])
        config = pb.TrainConfig(name="mf", vectorizer=vectorizer_config("count", {"max_features": k}, None))
        batch = pb.TextBatch()
        for t, l in zip(texts, labels):
            batch.examples.add(text=t, label=l)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            (tmp / "config.pb").write_bytes(config.SerializeToString())
            (tmp / "batch.pb").write_bytes(batch.SerializeToString())
            (tmp / "req.pb").write_bytes(pb.ClassifyRequest(texts=["x"]).SerializeToString())
            proc = subprocess.run([str(driver_path()), "fit", tmp / "config.pb", tmp / "batch.pb", tmp / "req.pb",
                                   tmp], capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr
            spec = read(tmp / "spec.pb", pb.PipelineSpec())
        assert list(spec.vectorizer.vocabulary) == expected
        # scikit-learn keeps the same counts above the tie; only which tied terms survive may differ.
        sk = set(CountVectorizer(max_features=k).fit(texts).get_feature_names_out())
        above = {names[j] for j in order[:k] if totals[j] > totals[order[k - 1]]}
        assert above <= sk and above <= set(expected)


@pytest.mark.parametrize("tfidf_kw", [{}, {"sublinear_tf": True}, {"norm": "l1", "smooth_idf": False}],
                         ids=["l2", "sublinear", "l1_no_smooth"])
def test_tfidf_fit_in_sklearn_storage_order_gives_identical_counts(tfidf_kw):
    """TfidfVectorizer.fit_transform normalises each row in its storage order (spec 2.8 / 3.3: the order of the terms'
    first occurrence in the corpus, not ascending columns), so MultinomialNB's feature_count_ summed from those values
    is bit-identical to scikit-learn's whenever the logs agree bit for bit (idf_, and log(tf) under sublinear_tf:
    numpy's SIMD log may differ from the C library's by an ulp on some CPUs, spec section 7, and then only the
    tolerance of the other tests applies)."""
    rng = np.random.default_rng(SEED + 7)
    texts, labels = make_corpus(rng, 300)
    x = TfidfVectorizer(**tfidf_kw).fit_transform(texts)
    nb = MultinomialNB().fit(x, labels)
    tfidf = pb.TfidfConfig(sublinear_tf=tfidf_kw.get("sublinear_tf", False),
                           norm=pb.NORM_L1 if tfidf_kw.get("norm") == "l1" else pb.NORM_UNSPECIFIED)
    if "smooth_idf" in tfidf_kw:
        tfidf.smooth_idf = tfidf_kw["smooth_idf"]
    config = pb.TrainConfig(name="oracle", vectorizer=pb.VectorizerConfig(tfidf=tfidf))
    batch = pb.TextBatch(examples=[pb.LabeledText(text=t, label=l) for t, l in zip(texts, labels)])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "config.pb").write_bytes(config.SerializeToString())
        (tmp / "batch.pb").write_bytes(batch.SerializeToString())
        (tmp / "req.pb").write_bytes(pb.ClassifyRequest(texts=texts[:3]).SerializeToString())
        proc = subprocess.run([str(driver_path()), "fit", tmp / "config.pb", tmp / "batch.pb", tmp / "req.pb", tmp],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        spec = read(tmp / "spec.pb", pb.PipelineSpec())
    feature_count = np.array(spec.classifier.feature_count.values).reshape(nb.feature_count_.shape)
    np.testing.assert_allclose(feature_count, nb.feature_count_, rtol=RTOL)
    counts = CountVectorizer().fit_transform(texts).data.astype(np.float64)
    logs_agree = np.array_equal(np.array(spec.vectorizer.idf), TfidfVectorizer(**tfidf_kw).fit(texts).idf_) and (
        not tfidf_kw.get("sublinear_tf") or np.array_equal(np.log(counts), [math.log(v) for v in counts.tolist()]))
    if not logs_agree:
        pytest.skip("numpy's log and the C library's differ in an ulp on this CPU; compared to the tolerance only")
    assert np.array_equal(feature_count, nb.feature_count_)


@pytest.mark.parametrize("clf_kind", ["multinomial_nb", "complement_nb", "bernoulli_nb"])
@pytest.mark.parametrize("tfidf_norm", [None, "l2"])
def test_rows_made_not_finite_by_sublinear_tf_over_signed_hashing_are_refused_as_sklearn_refuses(clf_kind,
                                                                                                 tfidf_norm):
    """Signed hashing gives a text a negative sum, or 0 where its signs cancel; tf-idf's sublinear_tf turns those
    into log(x) + 1 = NaN or -inf (an l2 norm then spreads the NaN over the row). scikit-learn's predict refuses
    such rows ("Input X contains NaN" / "... infinity"); maas classified them (NaN probabilities, and for
    BernoulliNB, which binarizes them to 0, finite probabilities and a label). Found by a differential fuzz."""
    kw = {"n_features": 16, "alternate_sign": True, "norm": None}
    tfidf_kw = {"sublinear_tf": True, "norm": tfidf_norm}
    train, labels = ["second", "third"], ["a", "b"]
    steps = sklearn_vectorizer("hashing", kw, tfidf_kw)
    clf = SKLEARN_CLASSIFIERS[clf_kind]().fit(fit_sklearn(steps, train), labels)
    config = pb.TrainConfig(name="oracle", vectorizer=vectorizer_config("hashing", kw, tfidf_kw),
                            classifier=classifier_config(clf_kind, {}))
    batch = pb.TextBatch(examples=[pb.LabeledText(text=t, label=l) for t, l in zip(train, labels)])
    refused = 0
    for text in ["document", "and is", "second", "third second"]:
        finite = True
        try:  # the transform refuses a row its norm cannot take, else predict one with NaN or inf
            x = transform_sklearn(steps, [text])
            finite = bool(np.all(np.isfinite(x.data)))
            expected = clf.predict(x)
        except ValueError as e:
            finite = False
            expected = str(e).splitlines()[0]  # "Input X contains NaN.", "Input contains infinity ..."
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            (tmp / "config.pb").write_bytes(config.SerializeToString())
            (tmp / "batch.pb").write_bytes(batch.SerializeToString())
            (tmp / "req.pb").write_bytes(pb.ClassifyRequest(texts=[text]).SerializeToString())
            proc = subprocess.run([str(driver_path()), "fit", tmp / "config.pb", tmp / "batch.pb", tmp / "req.pb",
                                   tmp], capture_output=True, text=True, timeout=120)
            if finite:
                assert proc.returncode == 0, proc.stderr
                got = [r.label for r in read(tmp / "classify.pb", pb.ClassifyResponse()).results]
                assert got == list(expected), text
                continue
            assert proc.returncode == 2, (text, proc.stderr)
            code, message = (tmp / "error.txt").read_text().split("\n", 1)
        refused += 1
        assert code == "INVALID_ARGUMENT", message
        assert message.startswith("texts[0]: its feature ") and f'"{expected.rstrip(".")}"' in message, \
            (text, expected, message)
    assert refused == 2  # "document" (a negative sum: NaN) and "and is" (signs that cancel: -inf)
    # Training on such a text: both refuse (scikit-learn's classifier or norm: "Input X contains NaN." or "Input
    # contains NaN."; maas's message had said "Negative values in data").
    with pytest.raises(ValueError, match="contains NaN"):
        SKLEARN_CLASSIFIERS[clf_kind]().fit(fit_sklearn(steps, ["document", "third"]), labels)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "config.pb").write_bytes(config.SerializeToString())
        bad = pb.TextBatch(examples=[pb.LabeledText(text=t, label=l) for t, l in zip(["document", "third"], labels)])
        (tmp / "batch.pb").write_bytes(bad.SerializeToString())
        (tmp / "req.pb").write_bytes(pb.ClassifyRequest(texts=["third"]).SerializeToString())
        proc = subprocess.run([str(driver_path()), "fit", tmp / "config.pb", tmp / "batch.pb", tmp / "req.pb", tmp],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        code, message = (tmp / "error.txt").read_text().split("\n", 1)
        assert code == "INVALID_ARGUMENT" and "Input X contains NaN (row 0, feature 0)" in message, message
