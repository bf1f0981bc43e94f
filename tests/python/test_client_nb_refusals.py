"""Naive Bayes fits whose scikit-learn model is not a number: served exactly where scikit-learn's model is usable,
refused with a message that says precisely why where scikit-learn's own parameters are NaN (the oracle is
scikit-learn, fitted here on the same data; each refused case first checks that scikit-learn's model really has the
NaN the message names)."""

import warnings

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer
from sklearn.naive_bayes import BernoulliNB, ComplementNB, MultinomialNB
from sklearn.pipeline import make_pipeline

import maas_client
from maas_client.sklearn import configs, pipeline_spec

from maas_testing import start_discriminative

TEXTS = ["aa bb", "aa cc", "bb bb dd"]
LABELS = ["x", "y", "x"]
TEST = ["aa", "qq", "bb", "cc dd", ""]


@pytest.fixture(scope="module")
def disc(tmp_path_factory):
    process = start_discriminative(tmp_path_factory.mktemp("nb-refusals"))
    with maas_client.DiscriminativeClient(process.address, timeout=30) as client:
        yield client
    assert process.stop() == 0


def sk_fit(pipe, texts=TEXTS, labels=LABELS, **fit_params):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return pipe.fit(texts, labels, **fit_params)


def sk_proba(pipe, texts=TEST):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return pipe.predict_proba(texts), pipe.predict(texts)


def train(disc, pipe, name, texts=TEXTS, labels=LABELS, **kwargs):
    vectorizer, classifier = configs(pipe)
    return disc.train(texts, labels, name=name, vectorizer=vectorizer, classifier=classifier, **kwargs)


def test_bernoulli_without_binarize_and_a_probability_of_one_is_served_as_scikit_learn(disc):
    # Class x: 2 documents, 'bb' counted 3 times: p = (3 + 1) / (2 + 2) = 1, log(1 - p) = -inf. scikit-learn's
    # probabilities: class x impossible for texts without 'bb', NaN for texts with it.
    pipe = sk_fit(make_pipeline(CountVectorizer(), BernoulliNB(binarize=None)))
    assert np.any(pipe[-1].feature_log_prob_ == 0.0)
    proba, predicted = sk_proba(pipe)
    assert np.isnan(proba).any() and np.isfinite(proba).any()
    train(disc, pipe, "bnb-p1")
    np.testing.assert_array_equal(disc.predict_proba("bnb-p1", TEST), proba)  # NaN where scikit-learn's are
    np.testing.assert_array_equal(disc.predict("bnb-p1", TEST), predicted)


def test_bernoulli_without_binarize_and_a_probability_above_one_is_refused(disc):
    texts, labels = ["aa bb bb bb", "aa cc"], ["x", "y"]
    pipe = sk_fit(make_pipeline(CountVectorizer(), BernoulliNB(binarize=None)), texts, labels)
    assert np.isnan(sk_proba(pipe)[0]).all()  # scikit-learn: NaN for every text
    with pytest.raises(maas_client.InvalidArgumentError, match=r"p = .* > 1 and log\(1 - p\) is NaN"):
        train(disc, pipe, "bnb-above", texts, labels)


@pytest.mark.parametrize("pipe, why", [
    (make_pipeline(HashingVectorizer(n_features=1, alternate_sign=False), ComplementNB(norm=True)),
     r"single feature and norm.*0 / 0"),
    (make_pipeline(CountVectorizer(max_features=1), ComplementNB(norm=True)), r"single feature and norm.*0 / 0"),
    (make_pipeline(CountVectorizer(), ComplementNB(norm=True, alpha=0.0)), r"alpha = 0.*-inf / -inf = NaN"),
    (make_pipeline(CountVectorizer(), ComplementNB(norm=True, alpha=1e-300)),
     r"rounds to 0, alpha 1e-300 being below the precision.*-inf / -inf = NaN; use a larger alpha"),
], ids=["hashing-1", "max_features-1", "alpha-0", "alpha-1e-300"])
def test_complement_nb_nan_weights_are_refused_saying_why(disc, pipe, why):
    pipe = sk_fit(pipe)
    assert np.isnan(pipe[-1].feature_log_prob_).any()  # scikit-learn's own weights are NaN
    with pytest.raises(maas_client.InvalidArgumentError, match=why) as refused:
        train(disc, pipe, "cnb-nan")
    assert "alpha > 0" not in refused.value.message.split(":")[0]
    assert "NaN probabilities (scikit-learn's too)" in refused.value.message


@pytest.mark.parametrize("alpha, weights", [(0.0, None), (1e-300, None), (1e-17, None), (1.0, [1e17, 1.0, 1e17])],
                         ids=["alpha-0", "alpha-1e-300", "alpha-1e-17", "weights-1e17"])
def test_complement_nb_infinite_weights_from_a_zero_complement_count_are_served_as_scikit_learn(
        disc, alpha, weights):
    # 'bb' and 'dd' occur only in class x: their complement count for x, (total + alpha) - count, is 0 when alpha is
    # 0 and also when alpha is below the precision of the total (1e-300, 1e-17 on counts of 1-3; 1 on 1e17), so
    # their weight is -log(0) = +inf in scikit-learn, which serves the model. A fit with alpha 1e-300 was refused.
    fit_params = {} if weights is None else {"complementnb__sample_weight": weights}
    pipe = sk_fit(make_pipeline(CountVectorizer(), ComplementNB(alpha=alpha)), **fit_params)
    flp = pipe[-1].feature_log_prob_
    assert np.isposinf(flp).any() and not np.isnan(flp).any()
    proba, predicted = sk_proba(pipe)
    assert np.isnan(proba).any() and np.isfinite(proba).any()
    name = f"cnb-inf-{len(weights or [])}-{alpha}".replace(".", "_").replace("-", "_").replace("+", "")
    train(disc, pipe, name, **({} if weights is None else {"weights": weights}))
    # The same model imported from scikit-learn's own fitted state (CreateModel), which was refused alike.
    disc.create(pipeline_spec(pipe), name=name + "_imported")
    for served in (name, name + "_imported"):
        # NaN where scikit-learn's are; the others within an ulp or two (numpy's SIMD exp on AVX-512 CPUs).
        np.testing.assert_allclose(disc.predict_proba(served, TEST), proba, rtol=0, atol=1e-12, equal_nan=True)
        np.testing.assert_array_equal(disc.predict(served, TEST), predicted)


@pytest.mark.parametrize("weight", [5e307, 1e308])
def test_complement_nb_overflowing_weights_are_refused_saying_why(disc, weight):
    # 5e307: every count is finite but the complement sums reach inf; 1e308: a count itself does (3 x 1e308).
    pipe = sk_fit(make_pipeline(CountVectorizer(), ComplementNB()), complementnb__sample_weight=[weight] * 3)
    assert not np.isfinite(pipe[-1].feature_log_prob_).all()
    vectorizer, classifier = configs(pipe)
    with pytest.raises(maas_client.InvalidArgumentError, match="overflow"):
        disc.train(TEXTS, LABELS, name="cnb-overflow", weights=[weight] * 3, vectorizer=vectorizer,
                   classifier=classifier)


def test_multinomial_alpha_zero_with_an_empty_class_is_refused_saying_why(disc):
    pipe = sk_fit(make_pipeline(CountVectorizer(vocabulary=["bb", "dd"]), MultinomialNB(alpha=0.0)))
    assert np.isnan(pipe[-1].feature_log_prob_[1]).all()  # class y has none of the terms: log(0) - log(0)
    with pytest.raises(maas_client.InvalidArgumentError, match=r"class 'y'.*log\(0\) - log\(0\) = NaN"):
        train(disc, pipe, "mnb-empty")


def test_all_zero_class_prior_is_refused_saying_why(disc):
    pipe = sk_fit(make_pipeline(CountVectorizer(), MultinomialNB(class_prior=[0.0, 0.0])))
    assert np.isnan(sk_proba(pipe)[0]).all()  # every text: -inf - (-inf)
    with pytest.raises(maas_client.InvalidArgumentError, match=r"class_prior has no positive value.*NaN"):
        train(disc, pipe, "prior-zero")
