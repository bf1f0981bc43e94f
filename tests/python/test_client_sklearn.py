"""maas_client.sklearn: fitted scikit-learn models exported as CreateModel requests.

Text pipelines go through the real server: the served predictions and probabilities must equal scikit-learn's.
CountVectorizer + MultinomialNB is served today and must always pass; the other vectorizer / classifier
combinations are skipped only while the server answers UNIMPLEMENTED for them, so they run for real once served.
Generative models are checked offline against a real oracle: log p(x) computed with numpy's closed forms from
the exported spec's own numbers equals the model's score_samples (the live comparison through the server is in
test_client_sklearn_generative_e2e.py)."""

import numpy as np
import pytest
from sklearn.decomposition import PCA, FactorAnalysis
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.mixture import GaussianMixture
from sklearn.naive_bayes import BernoulliNB, ComplementNB, MultinomialNB
from sklearn.pipeline import make_pipeline

import maas_client
from maas_client.pb import generative as gpb
from maas_client.sklearn import configs, export, export_generative

from client_testing import make_corpus
from maas_testing import Stack

# Served today: these must pass, never skip.
SERVED = {
    "count+multinomial": lambda: make_pipeline(CountVectorizer(), MultinomialNB()),
    "count(options)+multinomial": lambda: make_pipeline(
        CountVectorizer(lowercase=False, ngram_range=(1, 2), min_df=2, max_df=0.9, binary=True),
        MultinomialNB(alpha=0.3, fit_prior=False)),
    "count(stop words)+multinomial(prior)": lambda: make_pipeline(
        CountVectorizer(stop_words="english"), MultinomialNB(class_prior=[0.1, 0.2, 0.3, 0.4])),
}
# Expressible by PipelineSpec, served once the discriminative service implements them.
PENDING = {
    "tfidf+multinomial": lambda: make_pipeline(TfidfVectorizer(sublinear_tf=True), MultinomialNB(alpha=0.1)),
    "count+tfidf-transformer+complement": lambda: make_pipeline(
        CountVectorizer(), TfidfTransformer(norm="l1", smooth_idf=False), ComplementNB(norm=True)),
    "count+bernoulli": lambda: make_pipeline(CountVectorizer(), BernoulliNB(binarize=0.5)),
    "hashing+multinomial": lambda: make_pipeline(HashingVectorizer(n_features=512, alternate_sign=False,
                                                                   norm=None), MultinomialNB()),
    "char-tfidf+complement": lambda: make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3)),
                                                   ComplementNB()),
    "count(max_features)+multinomial": lambda: make_pipeline(CountVectorizer(max_features=40), MultinomialNB()),
}


@pytest.fixture(scope="module")
def corpus():
    texts, labels = make_corpus(11, 240)
    return texts[:180], labels[:180], texts[180:]


@pytest.fixture(scope="module")
def disc(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("client-sklearn")) as stack:
        with maas_client.DiscriminativeClient(stack.gateway_process.address, timeout=20) as client:
            yield client


def slug(kind):
    return "".join(c if c.isalnum() else "-" for c in kind).strip("-")


def create_or_skip(disc, request, pending):
    try:
        return disc.create(request)
    except maas_client.UnimplementedError as e:
        if not pending:
            raise
        pytest.skip(f"the server does not serve this pipeline yet (UNIMPLEMENTED: {e.message})")


def assert_served_equals_sklearn(disc, name, pipe, texts):
    got = disc.classify(name, texts)
    assert got.classes == pipe.classes_.tolist()
    np.testing.assert_array_equal(got.labels, pipe.predict(texts))
    np.testing.assert_allclose(got.probabilities, pipe.predict_proba(texts), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got.log_probabilities, pipe.predict_log_proba(texts), rtol=1e-12, atol=1e-12)
    features = pipe[:-1].transform(texts)
    np.testing.assert_allclose(disc.vectorize(name, texts).toarray(), features.toarray(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", list(SERVED) + list(PENDING))
def test_exported_pipeline_serves_scikit_learns_predictions(disc, corpus, kind):
    train_texts, train_labels, test_texts = corpus
    pending = kind in PENDING
    pipe = (PENDING if pending else SERVED)[kind]().fit(train_texts, train_labels)
    name = "export-" + slug(kind)
    info = create_or_skip(disc, export(pipe, name, labels={"source": "sklearn"}), pending)
    assert info.name == name and info.labels == {"source": "sklearn"} and info.kind == "discriminative"
    assert_served_equals_sklearn(disc, name, pipe, test_texts + ["", "zzz unknown words only"])


@pytest.mark.parametrize("kind", list(SERVED) + list(PENDING))
def test_configs_train_the_same_model_on_the_server(disc, corpus, kind):
    train_texts, train_labels, test_texts = corpus
    pending = kind in PENDING
    factory = (PENDING if pending else SERVED)[kind]
    vectorizer, classifier = configs(factory())  # from the unfitted pipeline
    name = "trained-" + slug(kind)
    try:
        disc.train(iter(train_texts), iter(train_labels), name=name, vectorizer=vectorizer, classifier=classifier)
    except maas_client.UnimplementedError as e:
        if not pending:
            raise
        pytest.skip(f"the server does not train this pipeline yet (UNIMPLEMENTED: {e.message})")
    expected = factory()
    max_features = expected.steps[0][1].get_params().get("max_features")
    if max_features is not None:
        # maas breaks ties at the max_features cutoff by feature order (documented; scikit-learn's order there
        # comes from numpy's CPU-specific argsort): the oracle is scikit-learn with that vocabulary fixed.
        full = CountVectorizer().fit(train_texts)
        counts = np.asarray(full.transform(train_texts).sum(axis=0)).ravel()
        names = full.get_feature_names_out()
        kept = sorted(range(len(names)), key=lambda i: (-counts[i], i))[:max_features]
        expected = make_pipeline(CountVectorizer(vocabulary=sorted(names[i] for i in kept)), MultinomialNB())
    assert_served_equals_sklearn(disc, name, expected.fit(train_texts, train_labels), test_texts)


# -- text: decode_error, encoding and a fixed vocabulary ----------------------------------------------------------
# Bytes that are not UTF-8: Latin-1 accents, a lone 0xFF, a truncated sequence, an encoded surrogate, a stray
# continuation byte (what decode_error='replace' / 'ignore' repair, each as Python's UTF-8 codec does).
NON_UTF8 = [b"caf\xe9 cr\xe8me bread bake", b"ab\xffcd team goal match", b"\xc3( na\xefve kernel cache",
            b"plage \xed\xa0\x80 soleil mer", b"\xf0\x9f\x98 oven butter dough", b"\x80\x80 server latency"]
NON_UTF8_LABELS = ["Cooking", "sports", "tech", "été", "Cooking", "tech"]
DECODE_ERROR = {
    "count(replace)+multinomial": lambda: make_pipeline(CountVectorizer(decode_error="replace"), MultinomialNB()),
    "count(ignore)+multinomial": lambda: make_pipeline(CountVectorizer(decode_error="ignore"), MultinomialNB()),
    "char-tfidf(replace)+complement": lambda: make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 2), decode_error="replace", encoding="UTF8"),
        ComplementNB()),
    "hashing(ignore)+multinomial": lambda: make_pipeline(
        HashingVectorizer(n_features=256, alternate_sign=False, norm=None, decode_error="ignore", encoding="utf8"),
        MultinomialNB()),
}


@pytest.mark.parametrize("kind", list(DECODE_ERROR))
def test_exported_pipeline_keeps_decode_error(disc, corpus, kind):
    """Regression: export dropped decode_error, so the served model refused (strict) the bytes scikit-learn
    repairs."""
    train_texts, train_labels, test_texts = corpus
    texts = [t.encode("utf-8") for t in train_texts] + NON_UTF8
    pipe = DECODE_ERROR[kind]().fit(texts, train_labels + NON_UTF8_LABELS)
    name = "export-decode-" + slug(kind)
    disc.create(export(pipe, name))
    queries = NON_UTF8 + [b"\xff\xfe\xfd", b"ab\xffcd", b"caf\xc3\xa9 caf\xe9"] + [t.encode() for t in test_texts[:20]]
    assert_served_equals_sklearn(disc, name, pipe, queries)


def test_exported_strict_pipeline_refuses_non_utf8_as_scikit_learn_does(disc, corpus):
    train_texts, train_labels, _ = corpus
    pipe = make_pipeline(CountVectorizer(decode_error="strict"), MultinomialNB()).fit(train_texts, train_labels)
    disc.create(export(pipe, "export-decode-strict"))
    with pytest.raises(UnicodeDecodeError):
        pipe.predict_proba([b"caf\xe9"])
    with pytest.raises(maas_client.InvalidArgumentError):
        disc.predict_proba("export-decode-strict", [b"caf\xe9"])


@pytest.mark.parametrize("make", [
    lambda **kw: CountVectorizer(**kw), lambda **kw: TfidfVectorizer(**kw),
    lambda **kw: HashingVectorizer(alternate_sign=False, **kw)],
    ids=["count", "tfidf", "hashing"])
def test_export_and_configs_refuse_what_maas_cannot_decode(corpus, make):
    """Regression: an encoding other than UTF-8 was silently dropped (maas decodes bytes texts as UTF-8 only)."""
    texts, labels, _ = corpus
    for encoding in ("latin-1", "utf-16", "cp1252", "utf-8-sig"):
        with pytest.raises(ValueError, match=f"encoding='{encoding}'"):
            configs(make_pipeline(make(encoding=encoding), MultinomialNB()))
        with pytest.raises(ValueError, match=f"encoding='{encoding}'"):
            export(make_pipeline(make(encoding=encoding), MultinomialNB()).fit(texts, labels))
    for encoding in ("utf-8", "utf8", "UTF-8", "U8"):  # what Python's codecs take for UTF-8
        vectorizer, _ = configs(make_pipeline(make(encoding=encoding, decode_error="ignore"), MultinomialNB()))
        assert getattr(vectorizer, vectorizer.WhichOneof("kind")).text.decode_error == \
            maas_client.pb.discriminative.DECODE_ERROR_IGNORE
    for source in ("file", "filename"):
        with pytest.raises(ValueError, match=f"input='{source}'"):
            configs(make_pipeline(make(input=source), MultinomialNB()))


# Terms in an order that is not sorted, with one that never occurs ("zebra") and one that lowercasing never
# produces ("Football"): feature i is the i-th term, as scikit-learn's vocabulary=[...] means.
FIXED_VOCABULARY = ["team", "zebra", "bread", "日本語", "the", "Football", "café", "kernel", "soleil",
                    "don"]
FIXED_VOCABULARY_FORMS = {
    "list": lambda: list(FIXED_VOCABULARY),
    # A mapping term -> index, inserted in an order that is not the index order.
    "dict": lambda: {term: FIXED_VOCABULARY.index(term) for term in sorted(FIXED_VOCABULARY)},
}


@pytest.mark.filterwarnings("ignore:Upper case characters found in vocabulary")
@pytest.mark.parametrize("fitted", [False, True], ids=["unfitted", "fitted"])
@pytest.mark.parametrize("form", list(FIXED_VOCABULARY_FORMS))
def test_configs_keep_a_fixed_vocabulary(disc, corpus, form, fitted):
    """Regression: configs() refused an unfitted pipeline with a fixed vocabulary and dropped it from a fitted one
    (the server then learned a different vocabulary)."""
    train_texts, train_labels, test_texts = corpus

    def factory():
        return make_pipeline(CountVectorizer(vocabulary=FIXED_VOCABULARY_FORMS[form](), min_df=3, max_features=2),
                             MultinomialNB(alpha=0.5))

    expected = factory().fit(train_texts, train_labels)
    vectorizer, classifier = configs(expected if fitted else factory())
    assert list(vectorizer.count.vocabulary) == FIXED_VOCABULARY
    name = f"trained-fixed-vocabulary-{form}-{'fitted' if fitted else 'unfitted'}"
    disc.train(iter(train_texts), iter(train_labels), name=name, vectorizer=vectorizer, classifier=classifier)
    served = disc.get(name).spec
    assert list(served.vectorizer.vocabulary) == expected[0].get_feature_names_out().tolist() == FIXED_VOCABULARY
    queries = test_texts + ["zebra Football football café team"]
    assert_served_equals_sklearn(disc, name, expected, queries)
    if fitted:  # the exported model carries the same fixed vocabulary
        disc.create(export(expected, name + "-export"))
        assert_served_equals_sklearn(disc, name + "-export", expected, queries)


def test_configs_refuse_a_fixed_vocabulary_maas_cannot_express():
    for vocabulary, reason in ((["a", "b", "a"], "duplicate term 'a'"), ({"a": 0, "b": 2}, "the indices are not 0..1"),
                               ({"a": 0, "b": 1.0}, "not an int"), ([b"a"], "not a str"), (["a", ""], "empty term"),
                               ([], "empty")):
        with pytest.raises(ValueError, match="vocabulary: .*" + reason):
            configs(make_pipeline(CountVectorizer(vocabulary=vocabulary), MultinomialNB()))


@pytest.mark.parametrize("make", [
    lambda **kw: CountVectorizer(**kw), lambda **kw: TfidfVectorizer(**kw),
    lambda **kw: HashingVectorizer(alternate_sign=False, n_features=64, **kw)],
    ids=["count", "tfidf", "hashing"])
@pytest.mark.parametrize("analyzer", ["word", "char", "char_wb"])
def test_export_and_configs_refuse_size_0_ngrams(corpus, make, analyzer):
    """Regression: ngram_range=(0, n), which scikit-learn fits (a size-0 n-gram is the empty string, counted once per
    position plus one: hashed to one bucket, or a vocabulary term ""), went out as ngram_min 0, which the spec reads
    as unset, i.e. 1: an exported HashingVectorizer pipeline then served other features and probabilities without
    an error, and configs() trained another model."""
    texts, labels, _ = corpus
    pipe = make_pipeline(make(analyzer=analyzer, ngram_range=(0, 2)), MultinomialNB())
    with pytest.raises(ValueError, match=r"ngram_range=\(0, 2\)"):
        configs(pipe)
    with pytest.raises(ValueError, match=r"ngram_range=\(0, 2\)"):
        export(pipe.fit(texts, labels))


@pytest.mark.parametrize("vectorizer, parameter", [
    (lambda: CountVectorizer(ngram_range=(2, 1)), r"ngram_range=\(2, 1\)"),
    (lambda: HashingVectorizer(ngram_range=(3, 0)), r"ngram_range=\(3, 0\)"),
    (lambda: CountVectorizer(ngram_range=(1.0, 2)), r"ngram_range=\(1.0, 2\)"),
    (lambda: CountVectorizer(max_features=0), "max_features=0"),
    (lambda: TfidfVectorizer(max_features=-1), "max_features=-1"),
    (lambda: CountVectorizer(max_features=2.5), "max_features=2.5"),
    (lambda: HashingVectorizer(n_features=0), "n_features=0"),
    (lambda: HashingVectorizer(n_features=-4), "n_features=-4"),
    (lambda: HashingVectorizer(n_features=2**31), "n_features=2147483648"),
])
def test_configs_refuse_parameters_scikit_learn_refuses(vectorizer, parameter):
    """Regression: configs() of an unfitted pipeline sent values scikit-learn refuses to fit with as the spec's
    "unset" (max_features=0 trained without a limit, ngram_range=(1, 0) as (1, 1), n_features=0 as 2^20) or failed
    with protobuf's bare "Value out of range" (max_features=-1). They are ValueErrors naming the parameter."""
    with pytest.raises(ValueError, match=parameter):
        configs(make_pipeline(vectorizer(), MultinomialNB()))


# -- text: offline oracle (every combination, served or not) -------------------------------------------------------
def features_from_spec(spec, texts):
    """The feature matrix the exported spec describes, rebuilt from its own fields: tokenisation by a scikit-learn
    vectorizer constructed from the exported configuration and vocabulary, TF-IDF and norms in numpy."""
    config = spec.vectorizer.config
    kind = config.WhichOneof("kind") or "count"
    text = getattr(config, kind).text
    params = dict(
        lowercase=text.lowercase if text.HasField("lowercase") else True,
        strip_accents={0: None, 1: "ascii", 2: "unicode"}[text.strip_accents],
        analyzer={0: "word", 1: "char", 2: "char_wb"}[text.analyzer],
        ngram_range=(text.ngram_min or 1, text.ngram_max or text.ngram_min or 1),
        stop_words=text.stop_words or None, binary=text.binary)
    if text.token_pattern:
        params["token_pattern"] = text.token_pattern
    norms = {0: "l2", 1: None, 2: "l1", 3: "l2"}
    if kind == "hashing":
        h = config.hashing
        x = HashingVectorizer(n_features=h.n_features or 1 << 20, norm=norms[h.norm],
                              alternate_sign=h.alternate_sign if h.HasField("alternate_sign") else True,
                              **params).transform(texts)
    else:
        x = CountVectorizer(vocabulary=list(spec.vectorizer.vocabulary), **params).transform(texts)
    x = x.toarray().astype(np.float64)
    if config.HasField("tfidf"):
        t = config.tfidf
        if t.sublinear_tf:
            x = np.where(x != 0, 1 + np.log(np.where(x != 0, x, 1)), 0)
        if not t.HasField("use_idf") or t.use_idf:
            x = x * np.array(spec.vectorizer.idf)
        norm = norms[t.norm]
        if norm is not None:
            lengths = np.abs(x).sum(axis=1) if norm == "l1" else np.sqrt((x * x).sum(axis=1))
            x = x / np.where(lengths == 0, 1, lengths)[:, None]
    return x


def log_proba_from_spec(spec, texts):
    """Class log-probabilities from the exported classifier state with the naive Bayes closed forms."""
    x = features_from_spec(spec, texts)
    state = spec.classifier
    flp, prior = matrix(state.feature_log_prob), np.array(state.class_log_prior)
    kind = state.config.WhichOneof("kind")
    if kind == "bernoulli_nb":
        nb = state.config.bernoulli_nb
        if not nb.disable_binarize:
            x = (x > nb.binarize).astype(np.float64)
        neg = np.log1p(-np.exp(flp))
        jll = x @ (flp - neg).T + prior + neg.sum(axis=1)
    elif kind == "complement_nb":
        jll = x @ flp.T + (prior if len(state.classes) == 1 else 0)
    else:
        jll = x @ flp.T + prior
    top = jll.max(axis=1, keepdims=True)
    return jll - (top + np.log(np.exp(jll - top).sum(axis=1, keepdims=True)))


@pytest.mark.parametrize("kind", list(SERVED) + list(PENDING))
def test_exported_text_spec_reproduces_scikit_learn_offline(corpus, kind):
    train_texts, train_labels, test_texts = corpus
    pipe = {**SERVED, **PENDING}[kind]().fit(train_texts, train_labels)
    spec = export(pipe).spec
    assert list(spec.classifier.classes) == pipe.classes_.tolist()
    texts = test_texts + ["", "zzz unknown words only"]
    np.testing.assert_allclose(features_from_spec(spec, texts), pipe[:-1].transform(texts).toarray(),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(log_proba_from_spec(spec, texts), pipe.predict_log_proba(texts), rtol=1e-10,
                               atol=1e-10)


def test_export_refuses_what_the_spec_cannot_express(corpus):
    texts, labels, _ = corpus
    with pytest.raises(ValueError, match="callable analyzer"):
        export(make_pipeline(CountVectorizer(analyzer=str.split), MultinomialNB()).fit(texts, labels))
    with pytest.raises(ValueError, match="dtype=float32"):
        export(make_pipeline(TfidfVectorizer(dtype=np.float32), MultinomialNB()).fit(texts, labels))
    with pytest.raises(ValueError, match="of type bool"):
        export(make_pipeline(CountVectorizer(), MultinomialNB()).fit(texts, [len(t) % 2 == 0 for t in texts]))
    with pytest.raises(ValueError, match="not fitted"):
        export(make_pipeline(CountVectorizer(), MultinomialNB()))
    with pytest.raises(ValueError, match="last step must be"):
        export(make_pipeline(CountVectorizer(), GaussianMixture()))
    with pytest.raises(ValueError, match="supports GaussianMixture, PCA and FactorAnalysis"):
        export_generative(MultinomialNB())


# -- generative: offline oracle -----------------------------------------------------------------------------------
def gaussian_logpdf(x, mean, cov):
    """log N(x; mean, cov) per row, from the closed form with numpy (Cholesky)."""
    d = mean.shape[0]
    chol = np.linalg.cholesky(cov)
    z = np.linalg.solve(chol, (x - mean).T)
    return -0.5 * (d * np.log(2 * np.pi) + (z * z).sum(axis=0)) - np.log(np.diag(chol)).sum()


def matrix(m):
    return np.array(m.values, dtype=np.float64).reshape(m.rows, m.cols)


def spec_log_density(spec, x):
    """log p(x) of an exported GenerativeModelSpec, computed from the spec's numbers alone."""
    family = spec.WhichOneof("family")
    if family == "gaussian_mixture":
        gm = spec.gaussian_mixture
        means, cov = matrix(gm.means), matrix(gm.covariances)
        k, d = means.shape
        per_component = []
        for j in range(k):
            if gm.covariance_type == gpb.FULL:
                c = cov[j * d:(j + 1) * d]
            elif gm.covariance_type == gpb.DIAG:
                c = np.diag(cov[j])
            else:
                c = np.eye(d) * cov[j, 0]
            per_component.append(np.log(gm.weights[j]) + gaussian_logpdf(x, means[j], c))
        stacked = np.array(per_component)
        top = stacked.max(axis=0)
        return top + np.log(np.exp(stacked - top).sum(axis=0))
    if family == "ppca":
        w = matrix(spec.ppca.loadings)
        return gaussian_logpdf(x, np.array(spec.ppca.mean), w @ w.T + spec.ppca.noise_variance * np.eye(w.shape[0]))
    if family == "factor_analysis":
        w = matrix(spec.factor_analysis.loadings)
        return gaussian_logpdf(x, np.array(spec.factor_analysis.mean),
                               w @ w.T + np.diag(spec.factor_analysis.noise_variance))
    raise AssertionError(family)


def generative_data(seed=4):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0, 0.0, 0.0], [4.0, -2.0, 1.0, 0.5], [-3.0, 3.0, -1.0, 2.0]])
    mixing = rng.normal(size=(4, 4)) * 0.6
    x = np.vstack([c + rng.normal(size=(120, 4)) @ mixing for c in centers])
    return x, rng.normal(size=(25, 4)) * 3.0  # training rows, held-out rows (some far from the data)


GENERATIVE_MODELS = {
    "gmm-full": lambda: GaussianMixture(3, covariance_type="full", random_state=0),
    "gmm-diag": lambda: GaussianMixture(3, covariance_type="diag", random_state=0),
    "gmm-spherical": lambda: GaussianMixture(2, covariance_type="spherical", random_state=0),
    "gmm-tied": lambda: GaussianMixture(3, covariance_type="tied", random_state=0),
    "pca": lambda: PCA(n_components=2),
    "pca-whiten": lambda: PCA(n_components=3, whiten=True),
    "factor-analysis": lambda: FactorAnalysis(n_components=2, random_state=0),
}


@pytest.mark.parametrize("kind", list(GENERATIVE_MODELS))
def test_export_generative_keeps_score_samples(kind):
    x, held_out = generative_data()
    model = GENERATIVE_MODELS[kind]().fit(x)
    request = export_generative(model, "exported", description=kind)
    assert request.name == "exported" and request.description == kind
    rows = np.vstack([x[:20], held_out])
    np.testing.assert_allclose(spec_log_density(request.spec, rows), model.score_samples(rows), rtol=1e-10)


def test_export_generative_refuses_degenerate_pca():
    x, _ = generative_data()
    with pytest.raises(ValueError, match="noise_variance_"):
        export_generative(PCA().fit(x))  # all components kept: no noise left for a PPCA
