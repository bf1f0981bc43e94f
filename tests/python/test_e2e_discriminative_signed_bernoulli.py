"""BernoulliNB with binarize=None over a HashingVectorizer with alternate_sign (and norm l1): the signed values make
some feature counts negative, which scikit-learn fits (every feature_log_prob_ finite and < 0, finite
probabilities). maas must fit, import (CreateModel) and continue (partial Train) the same model, equal to
scikit-learn's, generated here at test time; it once answered INTERNAL ("would not load back") to the Train and
INVALID_ARGUMENT to the import.
"""

import numpy as np
import pytest
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.naive_bayes import BernoulliNB

from maas.discriminative.v1 import discriminative_pb2 as pb
from maas_testing import TIMEOUT, from_matrix, ref, serve_discriminative, to_matrix

TEXTS = ["kappa eps theta theta zeta beta", "kappa beta theta kappa zeta", "delta alpha eps beta",
         "delta zeta gamma zeta eta alpha beta gamma", "theta eps eps kappa", "gamma delta alpha alpha eta"]
LABELS = ["a", "b", "a", "b", "a", "b"]
HELD_OUT = ["kappa theta", "zeta zeta gamma", "alpha eps delta beta", "unseen words only"]
N_FEATURES = 8
ALPHA = 0.5

VECTORIZER = pb.VectorizerConfig(hashing=pb.HashingVectorizerConfig(n_features=N_FEATURES, norm=pb.NORM_L1))
CLASSIFIER = pb.ClassifierConfig(bernoulli_nb=pb.BernoulliNbConfig(alpha=ALPHA, disable_binarize=True))


def hashing():
    return HashingVectorizer(n_features=N_FEATURES, norm="l1")  # alternate_sign=True, scikit-learn's default


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    yield from serve_discriminative(tmp_path_factory.mktemp("disc-signed-bernoulli"))


def train(stub, config, texts, labels):
    return stub.Train(iter([pb.TrainRequest(config=config),
                            pb.TrainRequest(batch=pb.TextBatch(examples=[pb.LabeledText(text=t, label=l)
                                                                         for t, l in zip(texts, labels)]))]),
                      timeout=TIMEOUT)


def assert_equals_sklearn(stub, name, nb):
    spec = stub.GetModel(pb.GetModelRequest(model=ref(name)), timeout=TIMEOUT).spec.classifier
    assert list(spec.classes) == nb.classes_.tolist()
    np.testing.assert_allclose(spec.class_count, nb.class_count_, rtol=1e-12)
    np.testing.assert_allclose(from_matrix(spec.feature_count), nb.feature_count_, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(spec.class_log_prior, nb.class_log_prior_, rtol=1e-12)
    np.testing.assert_allclose(from_matrix(spec.feature_log_prob), nb.feature_log_prob_, rtol=1e-12)
    x = hashing().transform(HELD_OUT)
    response = stub.Classify(pb.ClassifyRequest(model=ref(name), texts=HELD_OUT, compact=True), timeout=TIMEOUT)
    assert list(response.predicted) == [nb.classes_.tolist().index(c) for c in nb.predict(x)]
    np.testing.assert_allclose(from_matrix(response.probabilities), nb.predict_proba(x), rtol=1e-9, atol=1e-12)


def sklearn_fit():
    nb = BernoulliNB(alpha=ALPHA, binarize=None).fit(hashing().transform(TEXTS), LABELS)
    # The case this file is about: negative counts, yet a valid model.
    assert nb.feature_count_.min() < 0
    assert np.isfinite(nb.feature_log_prob_).all() and nb.feature_log_prob_.max() < 0
    assert np.isfinite(nb.predict_proba(hashing().transform(HELD_OUT))).all()
    return nb


def test_train_equals_scikit_learn(stub):
    nb = sklearn_fit()
    train(stub, pb.TrainConfig(name="signed-fit", vectorizer=VECTORIZER, classifier=CLASSIFIER), TEXTS, LABELS)
    assert_equals_sklearn(stub, "signed-fit", nb)


def test_import_of_the_scikit_learn_model(stub):
    nb = sklearn_fit()
    spec = pb.PipelineSpec(
        vectorizer=pb.VectorizerState(config=VECTORIZER),
        classifier=pb.ClassifierState(
            config=pb.ClassifierConfig(bernoulli_nb=pb.BernoulliNbConfig(
                alpha=nb.alpha, fit_prior=nb.fit_prior, force_alpha=nb.force_alpha, disable_binarize=True)),
            classes=nb.classes_.tolist(), class_count=nb.class_count_.tolist(),
            feature_count=to_matrix(nb.feature_count_), class_log_prior=nb.class_log_prior_.tolist(),
            feature_log_prob=to_matrix(nb.feature_log_prob_)))
    stub.CreateModel(pb.CreateModelRequest(name="signed-import", spec=spec), timeout=TIMEOUT)
    assert_equals_sklearn(stub, "signed-import", nb)


def test_partial_trains_continue_negative_counts(stub):
    nb = BernoulliNB(alpha=ALPHA, binarize=None)
    for call, (begin, end) in enumerate([(0, 3), (3, 6)]):
        config = pb.TrainConfig(name="signed-partial", partial=True, vectorizer=VECTORIZER, classifier=CLASSIFIER)
        if call == 0:
            config.classes.extend(["a", "b"])
        train(stub, config, TEXTS[begin:end], LABELS[begin:end])
        nb.partial_fit(hashing().transform(TEXTS[begin:end]), LABELS[begin:end],
                       classes=["a", "b"] if call == 0 else None)
        assert nb.feature_count_.min() < 0 and np.isfinite(nb.feature_log_prob_).all()
        assert_equals_sklearn(stub, "signed-partial", nb)
