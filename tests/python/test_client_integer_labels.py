"""Integer class labels end to end (TrainConfig.label_type / ClassifierState.label_type LABEL_TYPE_INT64).

scikit-learn orders integer y numerically (classes_ = [9, 10]) and str y by code point (['10', '9']); the class order
is the column order of predict_proba and predict's tie-break. The oracle is scikit-learn itself, run here on the same
data: train (and partial train with classes), export of a pipeline fitted on integer labels, GetModel / CreateModel
round trips, and the typed results (predict gives numpy int64, equal to scikit-learn's array)."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer
from sklearn.naive_bayes import BernoulliNB, ComplementNB, MultinomialNB
from sklearn.pipeline import make_pipeline

import maas_client
from maas_client.pb import discriminative as pb
from maas_client.sklearn import configs, export

from maas_testing import start_discriminative

TEXTS = ["aa bb", "cc dd", "aa cc", "bb dd ee", "ee ff", "aa ff gg", "gg hh", "hh aa"]
# "" and "zz" have no known term: every class ties on the prior; with equal priors the first class wins.
TEST = ["", "zz", "aa", "cc dd", "ff gg hh", "bb ee"]


@pytest.fixture(scope="module")
def disc(tmp_path_factory):
    process = start_discriminative(tmp_path_factory.mktemp("integer-labels"))
    with maas_client.DiscriminativeClient(process.address, timeout=30) as client:
        yield client
    assert process.stop() == 0


def assert_served_like(disc, name, pipe, texts=TEST):
    """predict (values and dtype), predict_proba and classify of the served model equal the scikit-learn pipeline's."""
    expected = pipe.predict(texts)
    got = disc.predict(name, texts)
    assert got.dtype == np.int64, got.dtype
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(disc.predict_proba(name, texts), pipe.predict_proba(texts), rtol=1e-12, atol=1e-15)
    classified = disc.classify(name, texts)
    assert classified.classes == [int(c) for c in pipe.classes_]
    assert all(isinstance(c, int) for c in classified.classes)
    np.testing.assert_array_equal(classified.labels, expected)
    np.testing.assert_allclose(classified.probabilities, pipe.predict_proba(texts), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("y", [[9, 10, 9, 10, 9, 10, 9, 10], [10, 9, 100, -1, 2, 9, -1, 100],
                               list(np.array([3, 12, 12, 3, 7, 7, 3, 12], dtype=np.uint8)),
                               [0.0, 11.0, 2.0, 11.0, 0.0, 2.0, 11.0, 0.0]])
@pytest.mark.parametrize("clf", [MultinomialNB, ComplementNB, BernoulliNB])
def test_train_on_integer_labels_orders_classes_as_scikit_learn(disc, y, clf):
    pipe = make_pipeline(CountVectorizer(), clf()).fit(TEXTS, y)
    vectorizer, classifier = configs(pipe)
    result = disc.train(TEXTS, y, name="ints", vectorizer=vectorizer, classifier=classifier)
    assert result.classes == [int(c) for c in pipe.classes_]
    assert_served_like(disc, "ints", pipe)
    state = disc.get("ints").spec.classifier
    assert state.label_type == pb.LABEL_TYPE_INT64
    assert list(state.classes) == [str(int(c)) for c in pipe.classes_]


def test_numeric_looking_str_labels_keep_string_order(disc):
    y = ["9", "10", "9", "10", "9", "10", "9", "10"]
    pipe = make_pipeline(CountVectorizer(), MultinomialNB()).fit(TEXTS, y)
    assert list(pipe.classes_) == ["10", "9"]
    result = disc.train(TEXTS, y, name="strs")
    assert result.classes == ["10", "9"]
    got = disc.predict("strs", TEST)
    assert got.dtype.kind == "U"
    np.testing.assert_array_equal(got, pipe.predict(TEST))
    np.testing.assert_allclose(disc.predict_proba("strs", TEST), pipe.predict_proba(TEST), rtol=1e-12, atol=1e-15)
    assert disc.get("strs").spec.classifier.label_type == pb.LABEL_TYPE_STRING


def test_partial_training_with_integer_classes_matches_partial_fit(disc):
    vec = HashingVectorizer(n_features=32, alternate_sign=False, norm=None)
    clf = MultinomialNB()
    classes = [100, 9, 10, -3]
    batches = [(TEXTS[:4], [9, 10, 9, 100]), (TEXTS[4:], [10, 10, -3, 9])]
    vectorizer, classifier = configs(make_pipeline(vec, clf))
    for i, (texts, y) in enumerate(batches):
        clf.partial_fit(vec.transform(texts), y, classes=classes if i == 0 else None)
        result = disc.train(texts, y, name="partial-ints", vectorizer=vectorizer, classifier=classifier,
                            partial=True, classes=classes)
        assert result.classes == list(clf.classes_)
    pipe = make_pipeline(vec, clf)
    assert_served_like(disc, "partial-ints", pipe)


def test_explanations_and_evaluate_give_integer_labels(disc):
    """An explanation's runner-up and Evaluate's per-class labels were left as the wire's str for an integer model
    ('10' where the classes were [9, 10]), and evaluate took a mix of str and int labels that train refuses."""
    y = [9, 10, 9, 10, 100, 9, 10, 100]
    pipe = make_pipeline(CountVectorizer(), MultinomialNB()).fit(TEXTS, y)
    vectorizer, classifier = configs(pipe)
    disc.train(TEXTS, y, name="ints-explained", vectorizer=vectorizer, classifier=classifier)
    explained = disc.classify("ints-explained", TEST[2:], explain=True)
    proba = pipe.predict_proba(TEST[2:])
    for row, explanation in zip(proba, explained.explanations):
        assert isinstance(explanation.runner_up, int)
        assert explanation.runner_up == pipe.classes_[np.argsort(-row, kind="stable")[1]]
    evaluation = disc.evaluate("ints-explained", TEXTS, y)
    assert [m.label for m in evaluation.classes] == [int(c) for c in pipe.classes_]
    assert all(isinstance(m.label, int) for m in evaluation.classes)
    with pytest.raises(maas_client.InvalidArgumentError, match="all str or all integers"):
        disc.evaluate("ints-explained", TEXTS[:3], [9, "10", 9])


def test_export_of_integer_labels_round_trips(disc):
    y = np.array([10, 9, 100, -1, 2, 9, -1, 100])
    for clf in (MultinomialNB(), ComplementNB(norm=True), BernoulliNB(binarize=None)):
        pipe = make_pipeline(CountVectorizer(binary=isinstance(clf, BernoulliNB)), clf).fit(TEXTS, y)
        request = export(pipe, name="exported-ints")
        assert request.spec.classifier.label_type == pb.LABEL_TYPE_INT64
        disc.create(request)
        assert_served_like(disc, "exported-ints", pipe)
        # GetModel -> CreateModel keeps the type and the order.
        spec = disc.get("exported-ints").spec
        assert spec.classifier.label_type == pb.LABEL_TYPE_INT64
        assert list(spec.classifier.classes) == ["-1", "2", "9", "10", "100"]
        disc.create(spec, name="exported-ints-again")
        assert_served_like(disc, "exported-ints-again", pipe)
        disc.delete("exported-ints")
        disc.delete("exported-ints-again")


def test_export_refuses_labels_maas_cannot_express():
    pipe = make_pipeline(CountVectorizer(), MultinomialNB()).fit(TEXTS, [True, False] * 4)
    with pytest.raises(ValueError, match="class label False of type bool"):
        export(pipe)
    pipe = make_pipeline(CountVectorizer(), MultinomialNB()).fit(TEXTS, [1, 2] * 4)
    pipe[-1].classes_ = np.array([0.5, 1.5])  # scikit-learn's classifiers refuse such y; a hand-made model
    with pytest.raises(ValueError, match="class label 0.5 of type float"):
        export(pipe)
    pipe[-1].classes_ = np.array([1, 2**63], dtype=np.uint64)
    with pytest.raises(ValueError, match="int64 range"):
        export(pipe)


def test_invalid_integer_labels_are_refused(disc):
    with pytest.raises(maas_client.InvalidArgumentError, match="labels must be all str or all integers"):
        disc.train(TEXTS[:2], [9, "10"], name="mixed")
    with pytest.raises(maas_client.InvalidArgumentError, match="labels must be all str or all integers"):
        disc.train(TEXTS[:2], [9, 10], name="mixed", classes=["9", "10"])
    with pytest.raises(maas_client.InvalidArgumentError, match="int64"):
        disc.train(TEXTS[:2], [9, 2**63], name="big")
    # Straight to the wire: non-canonical integers under LABEL_TYPE_INT64, and partial with another label type.
    spec = export(make_pipeline(CountVectorizer(), MultinomialNB()).fit(TEXTS, [7, 8] * 4)).spec
    spec.classifier.classes[0] = "07"
    with pytest.raises(maas_client.InvalidArgumentError, match="canonical decimal"):
        disc.create(spec, name="padded")
    spec.classifier.classes[0] = "8"
    spec.classifier.classes[1] = "7"
    with pytest.raises(maas_client.InvalidArgumentError, match="numerically"):
        disc.create(spec, name="unsorted")
    # Partial training: integers continue an integer model (str spellings of its labels too); integers never
    # continue a string model, whose classes are ordered differently.
    hashing = configs(make_pipeline(HashingVectorizer(n_features=8, alternate_sign=False), MultinomialNB()))[0]
    disc.train(TEXTS[:2], [1, 2], name="partial-type", vectorizer=hashing, partial=True, classes=[1, 2])
    assert disc.train(TEXTS[:2], ["2", "1"], name="partial-type", partial=True).classes == [1, 2]
    with pytest.raises(maas_client.InvalidArgumentError, match="canonical decimal"):
        disc.train(TEXTS[:2], ["2", "01"], name="partial-type", partial=True)
    disc.train(TEXTS[:2], ["1", "2"], name="partial-str", vectorizer=hashing, partial=True, classes=["1", "2"])
    with pytest.raises(maas_client.InvalidArgumentError, match="label_type"):
        disc.train(TEXTS[:2], [1, 2], name="partial-str", partial=True)
