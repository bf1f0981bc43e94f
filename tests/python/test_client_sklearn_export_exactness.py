"""maas_client.sklearn export paths that used to predict differently or fail (the oracle is scikit-learn, run here):

- a vectorizer dtype maas does not compute in (float32 TF-IDF / hashing) is a ValueError naming dtype;
- a custom stop_words list is exported as TextOptions.stop_word_list and served exactly;
- a GaussianMixture fitted on float32 data exports a model CreateModel accepts, whose exact log p(x) equals
  score_samples within float32 rounding (and, to float64 rounding, a float64 mixture built from the float32
  model's precisions_cholesky_ and weights, which is what score_samples evaluates)."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.mixture import GaussianMixture
from sklearn.naive_bayes import ComplementNB, MultinomialNB
from sklearn.pipeline import make_pipeline

import maas_client
from maas_client.sklearn import export, export_generative

from client_testing import make_corpus
from maas_testing import start_discriminative, start_generative

FLOAT32_EPS = float(np.finfo(np.float32).eps)


@pytest.fixture(scope="module")
def disc(tmp_path_factory):
    process = start_discriminative(tmp_path_factory.mktemp("export-disc"))
    with maas_client.DiscriminativeClient(process.address, timeout=30) as client:
        yield client
    assert process.stop() == 0


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    process = start_generative(tmp_path_factory.mktemp("export-gen"))
    with maas_client.GenerativeClient(process.address, timeout=30) as client:
        yield client
    assert process.stop() == 0


@pytest.fixture(scope="module")
def corpus():
    texts, labels = make_corpus(5, 160)
    return texts[:120], labels[:120], texts[120:]


# -- dtype -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("vec", [TfidfVectorizer(dtype=np.float32),
                                 HashingVectorizer(dtype=np.float32, alternate_sign=False, n_features=64),
                                 CountVectorizer(dtype=np.float32), CountVectorizer(dtype=np.int16)],
                         ids=lambda v: f"{type(v).__name__}-{np.dtype(v.dtype).name}")
def test_vectorizer_dtypes_maas_does_not_compute_in_are_refused(corpus, vec):
    texts, labels, _ = corpus
    pipe = make_pipeline(vec, MultinomialNB()).fit(texts, labels)
    with pytest.raises(ValueError, match=rf"{type(vec).__name__}: dtype={np.dtype(vec.dtype).name}"):
        export(pipe)


@pytest.mark.parametrize("make", [lambda: make_pipeline(TfidfVectorizer(dtype=np.float64), MultinomialNB(alpha=0.01)),
                                  lambda: make_pipeline(CountVectorizer(dtype=np.int32), MultinomialNB()),
                                  lambda: make_pipeline(CountVectorizer(dtype=np.float64), TfidfTransformer(),
                                                        ComplementNB()),
                                  lambda: make_pipeline(HashingVectorizer(n_features=64, alternate_sign=False),
                                                        MultinomialNB(alpha=0.01))],
                         ids=["tfidf64", "count-int32", "count64+transformer", "hashing64"])
def test_float64_and_exact_count_dtypes_still_export_and_serve_exactly(disc, corpus, make):
    texts, labels, test = corpus
    pipe = make().fit(texts, labels)
    disc.create(export(pipe, name="dtype-ok"))
    np.testing.assert_array_equal(disc.predict("dtype-ok", test), pipe.predict(test))
    np.testing.assert_allclose(disc.predict_proba("dtype-ok", test), pipe.predict_proba(test), rtol=1e-10,
                               atol=1e-14)
    disc.delete("dtype-ok")


# -- custom stop words -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda words: CountVectorizer(stop_words=words),
    lambda words: CountVectorizer(stop_words=words, lowercase=False, ngram_range=(1, 2)),
    lambda words: TfidfVectorizer(stop_words=words, strip_accents="unicode"),
    lambda words: HashingVectorizer(stop_words=words, n_features=128, alternate_sign=False),
    lambda words: CountVectorizer(stop_words=words, analyzer="char_wb", ngram_range=(2, 3)),
], ids=["count", "count-case-bigrams", "tfidf-accents", "hashing", "char_wb-ignores-them"])
def test_custom_stop_word_lists_export_and_serve_exactly(disc, corpus, make):
    texts, labels, test = corpus
    vocabulary = CountVectorizer().fit(texts).get_feature_names_out()
    # Frequent words as given (one capitalized: scikit-learn compares tokens after lowercase with the list as it
    # is, so 'The' never matches), plus entries that can never match a token (scikit-learn takes a list only).
    words = [str(w) for w in vocabulary[::7]] + ["The", "", "zzz-not-a-token", 3]
    for stop_words in (words, words[::-1]):
        pipe = make_pipeline(make(stop_words), MultinomialNB(alpha=0.5)).fit(texts, labels)
        request = export(pipe, name="stop")
        options = request.spec.vectorizer.config
        text = options.count.text if options.HasField("count") else options.hashing.text
        assert set(text.stop_word_list) == {w for w in words if isinstance(w, str) and w}
        assert text.stop_words == ""
        disc.create(request)
        np.testing.assert_array_equal(disc.predict("stop", test), pipe.predict(test))
        np.testing.assert_allclose(disc.predict_proba("stop", test), pipe.predict_proba(test), rtol=1e-10,
                                   atol=1e-14)
        if options.HasField("count"):
            assert list(disc.get("stop").spec.vectorizer.vocabulary) == list(pipe[0].get_feature_names_out())
        disc.delete("stop")


def test_english_and_bad_stop_words():
    texts, labels = make_corpus(5, 40)
    request = export(make_pipeline(CountVectorizer(stop_words="english"), MultinomialNB()).fit(texts, labels))
    assert request.spec.vectorizer.config.count.text.stop_words == "english"
    assert not request.spec.vectorizer.config.count.text.stop_word_list
    pipe = make_pipeline(CountVectorizer(stop_words=["ok", "\ud800"]), MultinomialNB()).fit(texts, labels)
    with pytest.raises(ValueError, match="stop word"):
        export(pipe)


# -- GaussianMixture fitted on float32 data --------------------------------------------------------------------------
def float32_bound(model, rows):
    """How far scikit-learn's float32 model's score_samples may be from the exact log p(x) of its own parameters:
    float32 rounds log(weights_), the log-determinant (a sum of d logs of precisions_cholesky_'s diagonal) and, for
    float32 x, the quadratic form (d products summed, whose terms are as large as the whitened |x| + |mean|
    squared); the weights' renormalization moves log w by at most ~k float32 ulps. Per component k:
    eps32 * 4 (d + 2) (|log w_k| + k + sum_j |log L_jj| + d log(2 pi) + (|x| |L| + |mu| |L|)^2), the largest over
    the components (log p is a log-sum-exp, whose error is at most its largest term's)."""
    k, d = model.means_.shape
    chol = np.asarray(model.precisions_cholesky_, dtype=np.float64)
    if model.covariance_type == "tied":
        chol = np.broadcast_to(chol, (k, d, d))
    elif model.covariance_type == "diag":
        chol = np.stack([np.diag(c) for c in chol])
    elif model.covariance_type == "spherical":
        chol = np.stack([np.eye(d) * c for c in chol])
    x = np.abs(np.asarray(rows, dtype=np.float64))
    bounds = []
    for c in range(k):
        lower = np.abs(chol[c])
        whitened = x @ lower + np.abs(model.means_[c].astype(np.float64)) @ lower
        log_det = np.abs(np.log(np.abs(np.diag(chol[c])))).sum()
        bounds.append(abs(np.log(float(model.weights_[c]))) + k + log_det + d * np.log(2 * np.pi)
                      + (whitened ** 2).sum(axis=1))
    return FLOAT32_EPS * 4 * (d + 2) * np.max(bounds, axis=0)


def float64_twin(model):
    """A float64 GaussianMixture whose parameters are the float32 model's precisions_cholesky_ and weights_ in
    float64 (weights renormalized): what the float32 model's score_samples evaluates, without float32 arithmetic."""
    twin = GaussianMixture(model.n_components, covariance_type=model.covariance_type)
    twin.weights_ = model.weights_.astype(np.float64) / model.weights_.astype(np.float64).sum()
    twin.means_ = model.means_.astype(np.float64)
    twin.precisions_cholesky_ = model.precisions_cholesky_.astype(np.float64)
    return twin


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("seed", [0, 7])
def test_float32_gaussian_mixture_exports_exact_log_likelihoods(gen, covariance_type, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, 4)) @ rng.normal(size=(4, 4))
    x[:150] += 4
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(x.astype(np.float32))
    assert model.weights_.dtype == np.float32 and model.precisions_cholesky_.dtype == np.float32
    name = f"gm32-{covariance_type}-{seed}"
    gen.create(export_generative(model, name=name))
    rows = np.vstack([x[::20], rng.normal(size=(10, 4)) * 5])
    exact = gen.estimate(name, rows, "exact").log_likelihood
    # To float64 rounding: the float64 twin's score_samples (the float32 model's parameters, float64 arithmetic).
    np.testing.assert_allclose(exact, float64_twin(model).score_samples(rows), rtol=1e-9, atol=1e-9)
    # Within float32 rounding: the float32 model's own score_samples, on float64 and on float32 x.
    for data in (rows, rows.astype(np.float32)):
        expected = model.score_samples(data).astype(np.float64)
        bound = float32_bound(model, data)
        assert np.all(np.abs(exact - expected) <= bound), (np.abs(exact - expected) / bound).max()


def test_float64_gaussian_mixture_export_is_unchanged(gen):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 3)) @ rng.normal(size=(3, 3))
    model = GaussianMixture(2, random_state=0).fit(x)
    request = export_generative(model, name="gm64")
    np.testing.assert_array_equal(np.array(request.spec.gaussian_mixture.weights), model.weights_)
    np.testing.assert_array_equal(np.array(request.spec.gaussian_mixture.covariances.values),
                                  model.covariances_.ravel())
    gen.create(request)
    np.testing.assert_allclose(gen.estimate("gm64", x[:20], "exact").log_likelihood, model.score_samples(x[:20]),
                               rtol=1e-10)
