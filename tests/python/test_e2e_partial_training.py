"""Partial training (issue 8 item 3) against the real maas-discriminative binary, with scikit-learn's partial_fit
as the oracle, generated here at test time.

Several `Train(partial=true)` calls over batches of a random corpus are compared with the same sequence of
`partial_fit` calls in scikit-learn (feature_count_, class_count_, class_log_prior_, feature_log_prob_, and the
probabilities of held-out texts), and with one `fit` over every batch, for MultinomialNB, ComplementNB and
BernoulliNB (also with binarize=None, over binary features), with and without sample weights, with class_prior /
fit_prior, over a hashing vectorizer, a count vectorizer with a fixed vocabulary, and hashing + tf-idf without idf.
Then the refusals: a vectorizer that learns its vocabulary, tf-idf with idf, no classes on the first call, an
unknown label, other classes, another config, a batch whose sample weights are all 0 (partial_fit's message); a
failed or cancelled partial Train leaves the previous version serving.
"""

import threading

import grpc
import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfTransformer
from sklearn.naive_bayes import BernoulliNB, ComplementNB, MultinomialNB

from maas.discriminative.v1 import discriminative_pb2 as pb
from maas_testing import TIMEOUT, expect_rpc_error, from_matrix, ref, serve_discriminative

SEED = 8_2026_1202
LABELS = ["ham", "spam", "Ωmega", "été"]
UNSEEN = "zz-never-seen"  # in classes, never in the data: zero counts, -inf prior under fit_prior
WORDS = ["café", "naïve", "Straße", "σοφός", "ΣΑΣ", "İstanbul", "中文", "東京", "fact_x", "2024", "😀smile",
         "Ångström", "école", "москва", "the", "and", "of", "it's", "e-mail"]
RTOL = 1e-12


def make_corpus(rng, n):
    letters = list("abcdefghijklmnopqrstuvwxyzéü")
    pool = sorted({"".join(rng.choice(letters, int(rng.integers(2, 7)))) for _ in range(150)} | set(WORDS))
    prefs = [rng.dirichlet(np.full(len(pool), 0.3)) for _ in LABELS]
    texts, labels = [], []
    for _ in range(n):
        c = int(rng.integers(len(LABELS)))
        words = [pool[i] for i in rng.choice(len(pool), size=int(rng.integers(1, 25)), p=prefs[c])]
        texts.append(" ".join(words))
        labels.append(LABELS[c])
    return texts, labels, pool


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(SEED)
    texts, labels, pool = make_corpus(rng, 240)
    held_out, _, _ = make_corpus(np.random.default_rng(SEED + 1), 40)
    weights = rng.uniform(0.0, 3.0, size=len(texts)).round(3)
    weights[::17] = 0.0
    # A fixed vocabulary in a non-sorted order, with terms that never occur.
    vocabulary = list(rng.permutation(pool[::3] + ["never-occurs", "ζζζ"]))
    # Batches of uneven sizes; the first has no "été" example (a class first seen later).
    order = np.argsort([label == "été" for label in labels], kind="stable")
    first = [int(i) for i in order[:50]]
    rest = [int(i) for i in order[50:]]
    rng.shuffle(rest)
    batches = [first, rest[:90], rest[90:]]
    return dict(texts=texts, labels=labels, weights=weights, held_out=held_out, vocabulary=vocabulary,
                batches=batches)


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    yield from serve_discriminative(tmp_path_factory.mktemp("disc-partial"), extra=["--threads", "2"])


# -- configurations: (proto config, scikit-learn transform factory) -------------------------------------------------
def vectorizer(kind, vocabulary):
    if kind == "hashing":
        config = pb.VectorizerConfig(hashing=pb.HashingVectorizerConfig(
            n_features=512, alternate_sign=False, norm=pb.NORM_NONE))
        return config, lambda: HashingVectorizer(n_features=512, alternate_sign=False, norm=None)
    if kind == "hashing-binary":  # 0 / 1 features, as BernoulliNB(binarize=None) needs
        config = pb.VectorizerConfig(hashing=pb.HashingVectorizerConfig(
            n_features=512, alternate_sign=False, norm=pb.NORM_NONE, text=pb.TextOptions(binary=True)))
        return config, lambda: HashingVectorizer(n_features=512, alternate_sign=False, norm=None, binary=True)
    if kind == "vocabulary-binary":
        config = pb.VectorizerConfig(count=pb.CountVectorizerConfig(text=pb.TextOptions(binary=True),
                                                                    vocabulary=vocabulary))
        return config, lambda: CountVectorizer(binary=True, vocabulary=vocabulary)
    if kind == "vocabulary":
        config = pb.VectorizerConfig(count=pb.CountVectorizerConfig(
            text=pb.TextOptions(ngram_min=1, ngram_max=2), vocabulary=vocabulary + ["the and"]))
        return config, lambda: CountVectorizer(ngram_range=(1, 2), vocabulary=vocabulary + ["the and"])
    assert kind == "hashing+tfidf"
    config = pb.VectorizerConfig(
        hashing=pb.HashingVectorizerConfig(n_features=256, alternate_sign=False, norm=pb.NORM_NONE,
                                           text=pb.TextOptions(binary=False)),
        tfidf=pb.TfidfConfig(use_idf=False, sublinear_tf=True, norm=pb.NORM_L1))

    class HashingTfidf:  # make_pipeline(HashingVectorizer, TfidfTransformer(use_idf=False)): per-document only
        def __init__(self):
            self.hv = HashingVectorizer(n_features=256, alternate_sign=False, norm=None)
            self.tt = TfidfTransformer(use_idf=False, sublinear_tf=True, norm="l1")

        def transform(self, texts):
            x = self.hv.transform(texts)
            return self.tt.fit(x).transform(x)  # fit learns nothing without idf
    return config, HashingTfidf


def classifier(kind):
    if kind == "multinomial_nb":
        return (pb.ClassifierConfig(multinomial_nb=pb.MultinomialNbConfig(alpha=0.4)),
                lambda: MultinomialNB(alpha=0.4))
    if kind == "multinomial_nb_prior":
        prior = [0.1, 0.2, 0.3, 0.15, 0.25]
        return (pb.ClassifierConfig(multinomial_nb=pb.MultinomialNbConfig(alpha=1.0, class_prior=prior)),
                lambda: MultinomialNB(alpha=1.0, class_prior=prior))
    if kind == "complement_nb":
        return (pb.ClassifierConfig(complement_nb=pb.ComplementNbConfig(alpha=0.3, norm=True)),
                lambda: ComplementNB(alpha=0.3, norm=True))
    if kind == "bernoulli_nb_no_binarize":
        return (pb.ClassifierConfig(bernoulli_nb=pb.BernoulliNbConfig(alpha=0.6, disable_binarize=True)),
                lambda: BernoulliNB(alpha=0.6, binarize=None))
    assert kind == "bernoulli_nb"
    return (pb.ClassifierConfig(bernoulli_nb=pb.BernoulliNbConfig(alpha=0.8, binarize=0.5, fit_prior=False)),
            lambda: BernoulliNB(alpha=0.8, binarize=0.5, fit_prior=False))


def train(stub, config, texts, labels, weights=None, chunk=40):
    def requests():
        yield pb.TrainRequest(config=config)
        for start in range(0, len(texts), chunk):
            examples = []
            for i in range(start, min(start + chunk, len(texts))):
                example = pb.LabeledText(text=texts[i], label=labels[i])
                if weights is not None:
                    example.weight = float(weights[i])
                examples.append(example)
            yield pb.TrainRequest(batch=pb.TextBatch(examples=examples))
    return stub.Train(requests(), timeout=TIMEOUT)


def assert_close(actual, expected, what):
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, what
    assert np.array_equal(np.isneginf(actual), np.isneginf(expected)), f"{what}: -inf positions differ"
    finite = np.isfinite(expected)
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=RTOL, atol=1e-13, err_msg=what)


def assert_model_equals(stub, name, nb, transform, held_out, what):
    spec = stub.GetModel(pb.GetModelRequest(model=ref(name)), timeout=TIMEOUT).spec.classifier
    assert list(spec.classes) == nb.classes_.tolist(), what
    assert_close(spec.class_count, nb.class_count_, f"{what}: class_count_")
    assert_close(from_matrix(spec.feature_count), nb.feature_count_, f"{what}: feature_count_")
    assert_close(spec.class_log_prior, nb.class_log_prior_, f"{what}: class_log_prior_")
    assert_close(from_matrix(spec.feature_log_prob), nb.feature_log_prob_, f"{what}: feature_log_prob_")
    response = stub.Classify(pb.ClassifyRequest(model=ref(name), texts=held_out, compact=True), timeout=TIMEOUT)
    x = transform(held_out)
    assert list(response.predicted) == [nb.classes_.tolist().index(c) for c in nb.predict(x)], what
    np.testing.assert_allclose(from_matrix(response.probabilities), nb.predict_proba(x), rtol=1e-9, atol=1e-12,
                               err_msg=f"{what}: predict_proba")


CASES = [
    ("hashing", "multinomial_nb", False),
    ("hashing", "multinomial_nb", True),
    ("hashing", "complement_nb", True),
    ("hashing", "bernoulli_nb", False),
    ("vocabulary", "multinomial_nb_prior", True),
    ("vocabulary", "complement_nb", False),
    ("vocabulary", "bernoulli_nb", True),
    ("hashing+tfidf", "multinomial_nb", True),
    ("hashing+tfidf", "complement_nb", False),
    ("hashing-binary", "bernoulli_nb_no_binarize", False),
    ("vocabulary-binary", "bernoulli_nb_no_binarize", True),
]


@pytest.mark.parametrize("vec_kind,clf_kind,weighted", CASES, ids=[f"{v}-{c}-{'w' if w else 'u'}"
                                                                   for v, c, w in CASES])
def test_partial_trains_equal_partial_fit_and_fit(stub, data, vec_kind, clf_kind, weighted):
    vec_config, make_transform = vectorizer(vec_kind, data["vocabulary"])
    clf_config, make_nb = classifier(clf_kind)
    texts, labels = data["texts"], data["labels"]
    weights = data["weights"] if weighted else None
    classes = LABELS + [UNSEEN]
    transform = make_transform().transform
    name = f"p-{vec_kind.replace('+', '-')}-{clf_kind.replace('_', '-')}-{int(weighted)}"

    nb = make_nb()
    for call, batch in enumerate(data["batches"]):
        b_texts = [texts[i] for i in batch]
        b_labels = [labels[i] for i in batch]
        b_weights = None if weights is None else weights[batch]
        config = pb.TrainConfig(name=name, partial=True, vectorizer=vec_config, classifier=clf_config)
        if call == 0:
            config.classes.extend(reversed(classes))  # any order: classes_ is sorted
        response = train(stub, config, b_texts, b_labels, b_weights)
        assert response.info.version == call + 1
        assert response.summary.num_documents == len(batch)
        nb.partial_fit(transform(b_texts), b_labels, classes=classes if call == 0 else None,
                       sample_weight=b_weights)
        assert list(response.summary.class_count) == pytest.approx(nb.class_count_.tolist(), rel=RTOL)
        assert_model_equals(stub, name, nb, transform, data["held_out"], f"after partial call {call + 1}")

    # Several partial Trains equal one fit over every batch (over the same classes, so without UNSEEN, unless
    # class_prior fixes them).
    if clf_kind != "multinomial_nb_prior":
        fit_name = name + "-fit"
        all_idx = [i for batch in data["batches"] for i in batch]
        sequence = make_nb()
        for call, batch in enumerate(data["batches"]):
            config = pb.TrainConfig(name=fit_name, partial=True, vectorizer=vec_config, classifier=clf_config)
            if call == 0:
                config.classes.extend(LABELS)
            train(stub, config, [texts[i] for i in batch], [labels[i] for i in batch],
                  None if weights is None else weights[batch])
        one_fit = make_nb().fit(transform([texts[i] for i in all_idx]), [labels[i] for i in all_idx],
                                sample_weight=None if weights is None else weights[all_idx])
        del sequence
        assert_model_equals(stub, fit_name, one_fit, transform, data["held_out"], "partial Trains vs one fit")


# -- refusals -------------------------------------------------------------------------------------------------------
HASHING = pb.VectorizerConfig(hashing=pb.HashingVectorizerConfig(n_features=64, alternate_sign=False))
MNB = pb.ClassifierConfig(multinomial_nb=pb.MultinomialNbConfig(alpha=1.0))
TEXTS = ["the cat sat on the mat", "a dog barked at the cat", "the cat purred", "dogs bark loudly"]
CAT_DOG = ["cat", "dog", "cat", "dog"]


def latest(stub, name):
    return stub.GetModel(pb.GetModelRequest(model=ref(name)), timeout=TIMEOUT).info.version


def test_partial_refusals_name_the_reason_and_keep_the_previous_version(stub):
    def partial(**kw):
        return pb.TrainConfig(name="refusals", partial=True, **kw)

    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "learns its vocabulary"):
        train(stub, partial(classes=["cat", "dog"]), TEXTS, CAT_DOG)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "use_idf"):
        train(stub, partial(classes=["cat", "dog"], vectorizer=pb.VectorizerConfig(
            hashing=HASHING.hashing, tfidf=pb.TfidfConfig())), TEXTS, CAT_DOG)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "classes must be passed on the first call"):
        train(stub, partial(vectorizer=HASHING, classifier=MNB), TEXTS, CAT_DOG)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "more than once"):
        train(stub, partial(vectorizer=HASHING, classifier=MNB, classes=["cat", "dog", "cat"]), TEXTS, CAT_DOG)
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND):
        latest(stub, "refusals")

    first = train(stub, partial(vectorizer=HASHING, classifier=MNB, classes=["cat", "dog"]), TEXTS, CAT_DOG)
    assert first.info.version == 1
    before = stub.GetModel(pb.GetModelRequest(model=ref("refusals")), timeout=TIMEOUT).spec

    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "'bird' is not one of the classes"):
        train(stub, partial(), TEXTS, ["cat", "dog", "bird", "dog"])
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "is not the same as on last call to partial_fit"):
        train(stub, partial(classes=["cat", "dog", "bird"]), TEXTS, CAT_DOG)
    other = pb.VectorizerConfig(hashing=pb.HashingVectorizerConfig(n_features=128, alternate_sign=False))
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "n_features"):
        train(stub, partial(vectorizer=other), TEXTS, CAT_DOG)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "alpha"):
        train(stub, partial(classifier=pb.ClassifierConfig(multinomial_nb=pb.MultinomialNbConfig(alpha=2.0))),
              TEXTS, CAT_DOG)

    # A partial Train cancelled by its client after sending data stores nothing either.
    sent, release = threading.Event(), threading.Event()

    def requests():
        yield pb.TrainRequest(config=partial())
        yield pb.TrainRequest(batch=pb.TextBatch(examples=[pb.LabeledText(text=t, label=l)
                                                           for t, l in zip(TEXTS, CAT_DOG)]))
        sent.set()
        release.wait(TIMEOUT)  # does not half-close before the client cancels

    future = stub.Train.future(requests(), timeout=TIMEOUT)
    assert sent.wait(TIMEOUT)
    future.cancel()
    release.set()
    with pytest.raises(grpc.FutureCancelledError):
        future.result()

    # The previous version still serves, unchanged.
    assert latest(stub, "refusals") == 1
    assert stub.GetModel(pb.GetModelRequest(model=ref("refusals")), timeout=TIMEOUT).spec == before
    response = stub.Classify(pb.ClassifyRequest(model=ref("refusals"), texts=["the cat"]), timeout=TIMEOUT)
    assert response.model_version == 1 and response.results[0].label == "cat"
    # And the next partial Train continues it.
    assert train(stub, partial(), TEXTS, CAT_DOG).info.version == 2


def test_a_partial_batch_whose_weights_are_all_zero_is_refused_as_partial_fit_refuses_it(stub):
    x = HashingVectorizer(n_features=64, alternate_sign=False).transform(TEXTS)
    nb = MultinomialNB().partial_fit(x, CAT_DOG, classes=["cat", "dog"])
    with pytest.raises(ValueError) as error:
        nb.partial_fit(x[:2], CAT_DOG[:2], sample_weight=[0.0, 0.0])
    message = str(error.value)
    assert "non-zero" in message

    def partial(**kw):
        return pb.TrainConfig(name="zero-weights", partial=True, vectorizer=HASHING, classifier=MNB, **kw)

    # On the first call (nothing stored) and on a later one (the previous version keeps serving).
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, message, "weight > 0"):
        train(stub, partial(classes=["cat", "dog"]), TEXTS[:2], CAT_DOG[:2], weights=[0.0, 0.0])
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND):
        latest(stub, "zero-weights")
    train(stub, partial(classes=["cat", "dog"]), TEXTS, CAT_DOG)
    before = stub.GetModel(pb.GetModelRequest(model=ref("zero-weights")), timeout=TIMEOUT).spec
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, message, "weight > 0"):
        train(stub, partial(), TEXTS[:2], CAT_DOG[:2], weights=[0.0, 0.0])
    assert latest(stub, "zero-weights") == 1
    assert stub.GetModel(pb.GetModelRequest(model=ref("zero-weights")), timeout=TIMEOUT).spec == before
    # One weight > 0 is enough, as for partial_fit.
    assert train(stub, partial(), TEXTS[:2], CAT_DOG[:2], weights=[0.0, 0.5]).info.version == 2
