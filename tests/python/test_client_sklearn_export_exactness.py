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
