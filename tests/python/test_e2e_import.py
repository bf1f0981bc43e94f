"""CreateModel imports a fitted pipeline over gRPC: a model exported with GetModel and re-created under another
name classifies identically, a scikit-learn model imported from its fitted attributes predicts like
scikit-learn, and a malformed spec is refused with INVALID_ARGUMENT without storing anything."""

import grpc
import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.naive_bayes import MultinomialNB

from maas.common.v1 import common_pb2
from maas.discriminative.v1 import discriminative_pb2 as disc

from maas_testing import TIMEOUT, Stack, expect_rpc_error, ref
from sklearn_export import pipeline_spec_from_sklearn
from test_e2e_discriminative import make_corpus


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    texts, labels = make_corpus(np.random.default_rng(11), 260)
    with Stack(tmp_path_factory.mktemp("e2e-import")) as stack:
        examples = [disc.LabeledText(text=t, label=l) for t, l in zip(texts[:200], labels[:200])]
        stack.disc_gw.Train(iter([disc.TrainRequest(config=disc.TrainConfig(name="original")),
                                  disc.TrainRequest(batch=disc.TextBatch(examples=examples))]), timeout=TIMEOUT)
        yield stack, texts, labels


def classify(stack, name, texts):
    return stack.disc_gw.Classify(disc.ClassifyRequest(model=ref(name), texts=texts), timeout=TIMEOUT)


def test_export_then_import_classifies_identically(setup):
    stack, texts, _ = setup
    exported = stack.disc_gw.GetModel(disc.GetModelRequest(model=ref("original")), timeout=TIMEOUT)
    created = stack.disc_gw.CreateModel(disc.CreateModelRequest(name="copy", spec=exported.spec), timeout=TIMEOUT)
    assert created.info.version == 1 and created.info.family == "count+multinomial_nb"
    a, b = classify(stack, "original", texts[200:]), classify(stack, "copy", texts[200:])
    assert [r.label for r in a.results] == [r.label for r in b.results]
    for ra, rb in zip(a.results, b.results):
        assert [s.probability for s in ra.scores] == [s.probability for s in rb.scores]


def test_import_of_a_sklearn_model_predicts_like_sklearn(setup):
    stack, texts, labels = setup
    cv = CountVectorizer()
    nb = MultinomialNB(alpha=0.5).fit(cv.fit_transform(texts[:200]), labels[:200])
    spec = pipeline_spec_from_sklearn(cv, nb)
    stack.disc_gw.CreateModel(disc.CreateModelRequest(name="from-sklearn", spec=spec), timeout=TIMEOUT)
    got = classify(stack, "from-sklearn", texts[200:])
    x = cv.transform(texts[200:])
    assert [r.label for r in got.results] == nb.predict(x).tolist()
    np.testing.assert_allclose([[s.probability for s in r.scores] for r in got.results], nb.predict_proba(x),
                               rtol=0, atol=1e-12)


def test_malformed_specs_are_invalid_argument_and_store_nothing(setup):
    stack, _, _ = setup
    good = stack.disc_gw.GetModel(disc.GetModelRequest(model=ref("original")), timeout=TIMEOUT).spec

    def broken(mutate):
        spec = disc.PipelineSpec()
        spec.CopyFrom(good)
        mutate(spec)
        return spec

    cases = {
        "vocabulary": lambda s: s.vectorizer.vocabulary.reverse(),
        "feature_log_prob": lambda s: s.classifier.feature_log_prob.values.pop(),
        "classes": lambda s: s.classifier.classes.append("aaa-unsorted"),
        "class_count": lambda s: s.classifier.class_count.__setitem__(0, float("nan")),
    }
    for what, mutate in cases.items():
        with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT):
            stack.disc_gw.CreateModel(disc.CreateModelRequest(name="broken", spec=broken(mutate)), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "spec"):
        stack.disc_gw.CreateModel(disc.CreateModelRequest(name="broken"), timeout=TIMEOUT)
    listed = stack.disc_gw.ListModels(common_pb2.ListModelsRequest(name_prefix="broken"), timeout=TIMEOUT)
    assert len(listed.models) == 0
