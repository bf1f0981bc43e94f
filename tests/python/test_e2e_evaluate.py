"""Evaluate (client stream) through the gateway against scikit-learn's metrics computed in the test: the
model is trained by the server, its predictions are checked against scikit-learn's, and the metrics must equal
accuracy_score, precision_recall_fscore_support, f1_score (macro, weighted), confusion_matrix and log_loss with
the same sample weights over the model's classes."""

import grpc
import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score, log_loss,
                             precision_recall_fscore_support)
from sklearn.naive_bayes import MultinomialNB

from maas.discriminative.v1 import discriminative_pb2 as disc

from maas_testing import TIMEOUT, Stack, expect_rpc_error, from_matrix, ref
from test_e2e_discriminative import make_corpus


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    rng = np.random.default_rng(77)
    texts, labels = make_corpus(rng, 360)
    with Stack(tmp_path_factory.mktemp("e2e-evaluate")) as stack:
        examples = [disc.LabeledText(text=t, label=l) for t, l in zip(texts[:240], labels[:240])]
        requests = [disc.TrainRequest(config=disc.TrainConfig(name="evaluated")),
                    disc.TrainRequest(batch=disc.TextBatch(examples=examples))]
        stack.disc_gw.Train(iter(requests), timeout=TIMEOUT)
        yield stack, texts, labels


def evaluate(stack, texts, labels, weights=None, chunk=37):
    requests = [disc.EvaluateRequest(config=disc.EvaluateConfig(model=ref("evaluated")))]
    for start in range(0, len(texts), chunk):
        batch = disc.TextBatch()
        for i in range(start, min(start + chunk, len(texts))):
            example = batch.examples.add(text=texts[i], label=labels[i])
            if weights is not None:
                example.weight = float(weights[i])
        requests.append(disc.EvaluateRequest(batch=batch))
    return stack.disc_gw.Evaluate(iter(requests), timeout=TIMEOUT)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_evaluate_equals_sklearn_metrics(setup, weighted):
    stack, texts, labels = setup
    cv = CountVectorizer()
    nb = MultinomialNB().fit(cv.fit_transform(texts[:240]), labels[:240])
    test_texts, test_labels = texts[240:], labels[240:]
    weights = np.random.default_rng(5).uniform(0.0, 2.0, size=len(test_texts)) if weighted else None
    x = cv.transform(test_texts)
    predicted = nb.predict(x)
    proba = nb.predict_proba(x)
    classes = list(nb.classes_)

    got = evaluate(stack, test_texts, test_labels, weights)
    assert got.num_documents == len(test_texts)
    assert got.model_version == 1
    assert [c.label for c in got.classes] == classes
    assert got.accuracy == pytest.approx(accuracy_score(test_labels, predicted, sample_weight=weights), abs=1e-12)
    p, r, f, s = precision_recall_fscore_support(test_labels, predicted, labels=classes, sample_weight=weights,
                                                 zero_division=0)
    np.testing.assert_allclose([c.precision for c in got.classes], p, atol=1e-12)
    np.testing.assert_allclose([c.recall for c in got.classes], r, atol=1e-12)
    np.testing.assert_allclose([c.f1 for c in got.classes], f, atol=1e-12)
    np.testing.assert_allclose([c.support for c in got.classes], s, atol=1e-9)
    assert got.macro_f1 == pytest.approx(
        f1_score(test_labels, predicted, labels=classes, average="macro", sample_weight=weights, zero_division=0),
        abs=1e-12)
    assert got.weighted_f1 == pytest.approx(
        f1_score(test_labels, predicted, labels=classes, average="weighted", sample_weight=weights,
                 zero_division=0), abs=1e-12)
    np.testing.assert_allclose(
        from_matrix(got.confusion_matrix),
        confusion_matrix(test_labels, predicted, labels=classes, sample_weight=weights), atol=1e-9)
    assert got.log_loss == pytest.approx(log_loss(test_labels, proba, labels=classes, sample_weight=weights),
                                         rel=1e-10)


def test_evaluate_bad_input(setup):
    stack, texts, labels = setup
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "not-a-class"):
        evaluate(stack, texts[:3], ["not-a-class"] * 3)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "weight"):
        evaluate(stack, texts[:3], labels[:3], weights=[1.0, -1.0, 1.0])
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "no examples"):
        evaluate(stack, [], [])
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "empty Evaluate stream"):
        stack.disc_gw.Evaluate(iter([]), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND, "missing"):
        stack.disc_gw.Evaluate(iter([disc.EvaluateRequest(config=disc.EvaluateConfig(model=ref("missing")))]),
                               timeout=TIMEOUT)
