"""scikit-learn -> maas: fitted models as validated CreateModel requests (replace a pickle with an import).

    from maas_client.sklearn import export, export_generative
    pipe = make_pipeline(CountVectorizer(), MultinomialNB()).fit(texts, labels)
    DiscriminativeClient(target).create(export(pipe, name="spam"))
    GenerativeClient(target).create(export_generative(GaussianMixture(3).fit(x), name="blobs"))

Text pipelines: CountVectorizer / TfidfVectorizer / HashingVectorizer (optionally followed by a TfidfTransformer)
and MultinomialNB / ComplementNB / BernoulliNB, with the parameters the PipelineSpec can express (a fixed vocabulary
and decode_error included; a custom stop_words list as the list it is). Class labels are str (ordered by code point) or
integers (int64; exported with label_type LABEL_TYPE_INT64, so maas orders them numerically as scikit-learn does and
DiscriminativeClient.predict returns them as integers). Anything it cannot express (a callable analyzer or tokenizer,
an encoding other than UTF-8, a dtype other than float64 for TF-IDF or hashed values, array-valued alpha, class
labels that are neither str nor int64, ...) raises ValueError naming the parameter, rather than exporting a model
that would predict differently.
Generative: GaussianMixture (full / diag / spherical / tied as full), PCA (as probabilistic PCA, Tipping & Bishop),
FactorAnalysis. scikit-learn is imported lazily (pip install maas-client[sklearn]).
"""

from __future__ import annotations

import codecs
import collections.abc
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from maas_client.pb import common, discriminative as dpb, generative as gpb

DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_NORMS = {None: dpb.NORM_NONE, "l1": dpb.NORM_L1, "l2": dpb.NORM_L2}
_DECODE_ERRORS = {"strict": dpb.DECODE_ERROR_STRICT, "replace": dpb.DECODE_ERROR_REPLACE,
                  "ignore": dpb.DECODE_ERROR_IGNORE}


def _matrix(values: Any) -> common.Matrix:
    a = np.ascontiguousarray(values, dtype=np.float64)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    m = common.Matrix(rows=a.shape[0], cols=a.shape[1])
    m.values.extend(a.ravel().tolist())
    return m


def _class_name(obj: object) -> str:
    return type(obj).__name__


def _param(obj: Any, name: str) -> Any:
    return obj.get_params(deep=False)[name]


def _fail(obj: object, message: str) -> ValueError:
    return ValueError(f"{_class_name(obj)}: {message} (maas PipelineSpec cannot express it)")


def _steps(pipeline: Any) -> List[Any]:
    """The estimators of a Pipeline (or a single estimator), 'passthrough' / None steps dropped."""
    steps = getattr(pipeline, "steps", None)
    if steps is None:
        return [pipeline]
    return [est for _, est in steps if est is not None and est != "passthrough"]


# -- text: configuration ------------------------------------------------------------------------------------------
def _text_options(vec: Any) -> dpb.TextOptions:
    p = vec.get_params(deep=False)
    for name in ("preprocessor", "tokenizer"):
        if p.get(name) is not None:
            raise _fail(vec, f"a custom {name}")
    if p.get("input", "content") != "content":
        raise _fail(vec, f"input={p['input']!r} (only 'content': the texts themselves)")
    _check_utf8_encoding(vec, p.get("encoding", "utf-8"))
    decode_error = p.get("decode_error", "strict")
    if not isinstance(decode_error, str) or decode_error not in _DECODE_ERRORS:
        raise _fail(vec, f"decode_error={decode_error!r} (only 'strict', 'replace' or 'ignore')")
    analyzer = p.get("analyzer", "word")
    if analyzer not in ("word", "char", "char_wb"):
        raise _fail(vec, "a callable analyzer")
    strip = p.get("strip_accents")
    if strip not in (None, "ascii", "unicode"):
        raise _fail(vec, "a callable strip_accents")
    stop_words = p.get("stop_words")
    stop_word_list: List[str] = []
    if isinstance(stop_words, str):
        if stop_words != "english":
            raise _fail(vec, f"stop_words={stop_words!r} (the built-in list is 'english')")
    elif stop_words is not None:
        stop_word_list = _stop_word_list(vec, stop_words)
        stop_words = None
    ngram_min, ngram_max = _ngram_range(vec, p.get("ngram_range", (1, 1)))
    token_pattern = p.get("token_pattern")
    options = dpb.TextOptions(
        lowercase=bool(p.get("lowercase", True)),
        strip_accents={None: dpb.STRIP_ACCENTS_NONE, "ascii": dpb.STRIP_ACCENTS_ASCII,
                       "unicode": dpb.STRIP_ACCENTS_UNICODE}[strip],
        analyzer={"word": dpb.ANALYZER_WORD, "char": dpb.ANALYZER_CHAR, "char_wb": dpb.ANALYZER_CHAR_WB}[analyzer],
        ngram_min=ngram_min, ngram_max=ngram_max, stop_words=stop_words or "",
        stop_word_list=stop_word_list,
        token_pattern="" if token_pattern in (None, DEFAULT_TOKEN_PATTERN) or analyzer != "word" else token_pattern,
        binary=bool(p.get("binary", False)), decode_error=_DECODE_ERRORS[decode_error])
    return options


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _ngram_range(vec: Any, ngram_range: Any) -> Tuple[int, int]:
    """ngram_range as (min, max) with 1 <= min <= max. The spec reads ngram_min 0 as unset (1), so scikit-learn's
    size-0 n-grams (the empty string, once per position plus one) cannot be sent; what scikit-learn refuses to fit
    with is refused here too, rather than sent as the spec's defaults."""
    try:
        low, high = ngram_range
    except (TypeError, ValueError):
        raise _fail(vec, f"ngram_range={ngram_range!r} (a pair (min_n, max_n))") from None
    if not (_is_int(low) and _is_int(high)) or low > high:
        raise ValueError(f"{_class_name(vec)}: ngram_range={ngram_range!r} is not a pair of integers "
                         f"1 <= min_n <= max_n (scikit-learn refuses it too)")
    if low < 1:
        raise _fail(vec, f"ngram_range={ngram_range!r}: n-grams of size 0 (the empty string once per position "
                         f"plus one); start at 1")
    return int(low), int(high)


def _positive_int(vec: Any, name: str, value: Any, most: int) -> int:
    """A count parameter scikit-learn requires in [1, most]: 0 would go out as the spec's "unset"."""
    if not _is_int(value) or not 1 <= int(value) <= most:
        raise ValueError(f"{_class_name(vec)}: {name}={value!r} is not an integer in [1, {most}] "
                         f"(scikit-learn refuses it too)")
    return int(value)


def _stop_word_list(vec: Any, stop_words: Any) -> List[str]:
    """A custom stop_words collection as TextOptions.stop_word_list. scikit-learn takes frozenset(stop_words) and
    drops every token that is in it, compared exactly (after lowercase and strip_accents, which apply to the tokens,
    not to the list): the words are kept as given, in a stable order. An entry that can never equal a token is left
    out (it changes nothing): an empty str, or one that is not a str. A str that is not valid Unicode (a lone
    surrogate) cannot be sent: ValueError."""
    if not isinstance(stop_words, collections.abc.Iterable):
        raise _fail(vec, f"stop_words={stop_words!r} (neither 'english' nor a collection of words)")
    words = set()
    for word in stop_words:
        if not isinstance(word, str) or not word:
            continue
        try:
            word.encode("utf-8")
        except UnicodeEncodeError:
            raise _fail(vec, f"the stop word {word!r} is not valid Unicode (a lone surrogate)") from None
        words.add(str(word))
    return sorted(words)


def _check_dtype(vec: Any, counts: bool) -> None:
    """maas computes feature values in float64 (counts exactly): a vectorizer whose dtype would round them
    differently is refused, naming the parameter. Counts (CountVectorizer without TF-IDF) may also be integers of 32
    bits or more (the default int64); TF-IDF and hashed values must be float64 (float32 values differ from maas's
    float64 ones by about 1e-8, enough to flip a near tie)."""
    dtype = np.dtype(_param(vec, "dtype"))
    if dtype == np.float64 or (counts and dtype.kind in "iu" and dtype.itemsize >= 4):
        return
    allowed = "float64 or an integer dtype of 32 bits or more" if counts else "float64"
    raise _fail(vec, f"dtype={dtype.name} (maas computes these values in float64; fit with dtype={allowed})")


def _check_utf8_encoding(vec: Any, encoding: Any) -> None:
    """maas decodes bytes texts as UTF-8 only: any encoding Python's codecs do not resolve to utf-8 is refused."""
    try:
        utf8 = isinstance(encoding, str) and codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        utf8 = False
    if not utf8:
        raise _fail(vec, f"encoding={encoding!r} (maas decodes bytes texts as UTF-8 only)")


def _fixed_vocabulary(vec: Any, vocabulary: Any) -> List[str]:
    """A fixed vocabulary (scikit-learn's vocabulary=: an iterable of terms, feature i the i-th, or a mapping
    term -> feature index 0..n-1) as its terms in feature-index order, validated as scikit-learn does."""
    def refuse(reason: str) -> ValueError:
        return _fail(vec, f"vocabulary: {reason}")

    if isinstance(vocabulary, Mapping):
        terms: List[Any] = [None] * len(vocabulary)
        for term, index in vocabulary.items():
            if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
                raise refuse(f"the index of {term!r} is {index!r}, not an int")
            if not 0 <= int(index) < len(terms) or terms[int(index)] is not None:
                raise refuse(f"the indices are not 0..{len(terms) - 1}, each once (index {int(index)} of {term!r})")
            terms[int(index)] = term
    else:
        if isinstance(vocabulary, (set, frozenset)):  # scikit-learn sorts a set
            vocabulary = sorted(vocabulary)
        if not isinstance(vocabulary, collections.abc.Iterable):
            raise refuse(f"{vocabulary!r} is neither a list of terms nor a mapping term -> index")
        terms = list(vocabulary)
    if not terms:
        raise refuse("empty")
    seen = set()
    for term in terms:
        if not isinstance(term, str):
            raise refuse(f"the term {term!r} is not a str")
        if not term:
            raise refuse("an empty term")
        try:
            term.encode("utf-8")
        except UnicodeEncodeError:
            raise refuse(f"the term {term!r} is not valid Unicode (a lone surrogate)") from None
        if term in seen:
            raise refuse(f"duplicate term {term!r}")
        seen.add(term)
    return [str(term) for term in terms]


def _document_frequency(value: Any, vec: Any, name: str) -> dpb.DocumentFrequency:
    if isinstance(value, (bool, np.bool_)):
        raise _fail(vec, f"{name}={value!r}")
    if isinstance(value, (int, np.integer)):
        return dpb.DocumentFrequency(count=int(value))
    if isinstance(value, (float, np.floating)):
        return dpb.DocumentFrequency(fraction=float(value))
    raise _fail(vec, f"{name}={value!r}")


def _tfidf_config(obj: Any) -> dpb.TfidfConfig:
    p = obj.get_params(deep=False)
    norm = p.get("norm", "l2")
    if norm not in _NORMS:
        raise _fail(obj, f"norm={norm!r}")
    return dpb.TfidfConfig(norm=_NORMS[norm], use_idf=bool(p.get("use_idf", True)),
                           smooth_idf=bool(p.get("smooth_idf", True)), sublinear_tf=bool(p.get("sublinear_tf", False)))


def _vectorizer_config(steps: Sequence[Any]) -> Tuple[dpb.VectorizerConfig, Any, Optional[Any]]:
    """(config, vectorizer, idf owner): the vectorizer step (+ an optional TfidfTransformer step)."""
    from sklearn.feature_extraction.text import (CountVectorizer, HashingVectorizer, TfidfTransformer,
                                                 TfidfVectorizer)
    if not steps:
        raise ValueError("the pipeline has no vectorizer step")
    vec = steps[0]
    config = dpb.VectorizerConfig()
    idf_owner: Optional[Any] = None
    if isinstance(vec, CountVectorizer):  # TfidfVectorizer is a CountVectorizer
        p = vec.get_params(deep=False)
        vocabulary = p.get("vocabulary")
        if getattr(vec, "fixed_vocabulary_", False) and hasattr(vec, "vocabulary_"):
            vocabulary = vec.vocabulary_  # fitted: the validated term -> index mapping transform uses
        max_features = p.get("max_features")
        config.count.CopyFrom(dpb.CountVectorizerConfig(
            text=_text_options(vec), min_df=_document_frequency(p.get("min_df", 1), vec, "min_df"),
            max_df=_document_frequency(p.get("max_df", 1.0), vec, "max_df"),
            max_features=(0 if max_features is None  # 0: unset (no limit)
                          else _positive_int(vec, "max_features", max_features, np.iinfo(np.uint64).max)),
            vocabulary=_fixed_vocabulary(vec, vocabulary) if vocabulary is not None else []))
        if isinstance(vec, TfidfVectorizer):
            config.tfidf.CopyFrom(_tfidf_config(vec))
            idf_owner = vec
        _check_dtype(vec, counts=not isinstance(vec, TfidfVectorizer))
    elif isinstance(vec, HashingVectorizer):
        p = vec.get_params(deep=False)
        norm = p.get("norm", "l2")
        if norm not in _NORMS:
            raise _fail(vec, f"norm={norm!r}")
        config.hashing.CopyFrom(dpb.HashingVectorizerConfig(
            text=_text_options(vec),
            n_features=_positive_int(vec, "n_features", p.get("n_features", 1 << 20), (1 << 31) - 2),
            alternate_sign=bool(p.get("alternate_sign", True)), norm=_NORMS[norm]))
        _check_dtype(vec, counts=False)
    else:
        raise ValueError(f"the first step must be CountVectorizer, TfidfVectorizer or HashingVectorizer, "
                         f"got {_class_name(vec)}")
    rest = list(steps[1:])
    if rest and isinstance(rest[0], TfidfTransformer):
        if idf_owner is not None:
            raise _fail(rest[0], "TF-IDF applied twice")
        config.tfidf.CopyFrom(_tfidf_config(rest[0]))
        idf_owner = rest[0]
    return config, vec, idf_owner


def _alpha(clf: Any) -> float:
    alpha = _param(clf, "alpha")
    if np.ndim(alpha) != 0:
        raise _fail(clf, "an array-valued alpha")
    return float(alpha)


def _class_prior(clf: Any) -> List[float]:
    prior = _param(clf, "class_prior")
    return [] if prior is None else [float(v) for v in np.asarray(prior, dtype=np.float64).ravel()]


def _classifier_config(clf: Any) -> dpb.ClassifierConfig:
    from sklearn.naive_bayes import BernoulliNB, ComplementNB, MultinomialNB
    p = clf.get_params(deep=False)
    force_alpha = bool(p.get("force_alpha", True))
    config = dpb.ClassifierConfig()
    if isinstance(clf, MultinomialNB):
        config.multinomial_nb.CopyFrom(dpb.MultinomialNbConfig(
            alpha=_alpha(clf), fit_prior=bool(p["fit_prior"]), class_prior=_class_prior(clf),
            force_alpha=force_alpha))
    elif isinstance(clf, ComplementNB):
        config.complement_nb.CopyFrom(dpb.ComplementNbConfig(
            alpha=_alpha(clf), fit_prior=bool(p["fit_prior"]), class_prior=_class_prior(clf), norm=bool(p["norm"]),
            force_alpha=force_alpha))
    elif isinstance(clf, BernoulliNB):
        binarize = p["binarize"]
        nb = dpb.BernoulliNbConfig(alpha=_alpha(clf), fit_prior=bool(p["fit_prior"]), class_prior=_class_prior(clf),
                                   force_alpha=force_alpha)
        if binarize is None:
            nb.disable_binarize = True
        else:
            nb.binarize = float(binarize)
        config.bernoulli_nb.CopyFrom(nb)
    else:
        raise ValueError(f"the last step must be MultinomialNB, ComplementNB or BernoulliNB, got {_class_name(clf)}")
    return config


def configs(pipeline: Any) -> Tuple[dpb.VectorizerConfig, dpb.ClassifierConfig]:
    """The (vectorizer, classifier) configuration of a scikit-learn text pipeline, fitted or not: what
    DiscriminativeClient.train(vectorizer=..., classifier=...) takes to train the same model on the server."""
    steps = _steps(pipeline)
    vectorizer, _, idf_owner = _vectorizer_config(steps)
    used = 2 if idf_owner is not None and idf_owner is not steps[0] else 1
    if len(steps) != used + 1:
        raise ValueError(f"expected a vectorizer, an optional TfidfTransformer and a naive Bayes classifier; got "
                         f"{', '.join(_class_name(s) for s in steps)}")
    return vectorizer, _classifier_config(steps[-1])


# -- text: fitted state -------------------------------------------------------------------------------------------
def pipeline_spec(pipeline: Any) -> dpb.PipelineSpec:
    """The fitted state of a scikit-learn text pipeline as a PipelineSpec."""
    vectorizer_config, classifier_config = configs(pipeline)
    steps = _steps(pipeline)
    _, vec, idf_owner = _vectorizer_config(steps)
    clf = steps[-1]
    if not hasattr(clf, "classes_"):
        raise ValueError(f"{_class_name(clf)} is not fitted (call fit first)")
    spec = dpb.PipelineSpec()
    spec.vectorizer.config.CopyFrom(vectorizer_config)
    if vectorizer_config.HasField("count"):
        if not hasattr(vec, "vocabulary_"):
            raise ValueError(f"{_class_name(vec)} is not fitted (call fit first)")
        spec.vectorizer.vocabulary.extend(str(t) for t in vec.get_feature_names_out())
    if idf_owner is not None and vectorizer_config.tfidf.use_idf:
        spec.vectorizer.idf.extend(float(v) for v in np.asarray(idf_owner.idf_, dtype=np.float64))
    classes, label_type = _classes(clf)
    state = spec.classifier
    state.config.CopyFrom(classifier_config)
    state.classes.extend(classes)
    state.label_type = label_type
    state.class_count.extend(float(v) for v in clf.class_count_)
    state.class_log_prior.extend(float(v) for v in clf.class_log_prior_)
    state.feature_count.CopyFrom(_matrix(clf.feature_count_))
    state.feature_log_prob.CopyFrom(_matrix(clf.feature_log_prob_))
    return spec


def _classes(clf: Any) -> Tuple[List[str], "dpb.LabelType"]:
    """classes_ as maas labels: str labels as they are (LABEL_TYPE_STRING, code point order); integer labels
    (numpy integer dtypes, or integral floats such as y = [0.0, 1.0]) in int64 as canonical decimal strings
    (LABEL_TYPE_INT64: maas orders them numerically, as classes_ is). Anything else is a ValueError."""
    classes = np.asarray(clf.classes_)
    values = classes.tolist()
    if all(isinstance(c, str) for c in values):
        return [str(c) for c in values], dpb.LABEL_TYPE_STRING
    integers: List[int] = []
    for c in values:
        if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, float, np.integer, np.floating)) or (
                isinstance(c, (float, np.floating)) and not float(c).is_integer()):
            raise _fail(clf, f"the class label {c!r} of type {type(c).__name__} (maas class labels are all str or "
                             "all int64 integers: fit on such labels)")
        integers.append(int(c))
    if not all(-(2**63) <= c < 2**63 for c in integers):
        raise _fail(clf, "class labels outside the int64 range (maas integer labels are int64)")
    return [str(c) for c in integers], dpb.LABEL_TYPE_INT64


def export(pipeline: Any, name: str = "", *, labels: Optional[Mapping[str, str]] = None,
           description: str = "") -> dpb.CreateModelRequest:
    """A fitted scikit-learn text pipeline (e.g. make_pipeline(TfidfVectorizer(), ComplementNB()).fit(...)) as a
    discriminative CreateModelRequest; DiscriminativeClient.create() sends it."""
    return dpb.CreateModelRequest(name=name, spec=pipeline_spec(pipeline), labels=dict(labels or {}),
                                  description=description)


# -- generative ---------------------------------------------------------------------------------------------------
def generative_spec(model: Any) -> gpb.GenerativeModelSpec:
    """A fitted GaussianMixture, PCA or FactorAnalysis as a GenerativeModelSpec."""
    from sklearn.decomposition import PCA, FactorAnalysis
    from sklearn.mixture import GaussianMixture
    if isinstance(model, GaussianMixture):
        return gpb.GenerativeModelSpec(gaussian_mixture=_gaussian_mixture(model))
    if isinstance(model, PCA):
        return gpb.GenerativeModelSpec(ppca=_ppca(model))
    if isinstance(model, FactorAnalysis):
        return gpb.GenerativeModelSpec(factor_analysis=_factor_analysis(model))
    raise ValueError(f"export_generative supports GaussianMixture, PCA and FactorAnalysis, got {_class_name(model)}")


def export_generative(model: Any, name: str = "", *, labels: Optional[Mapping[str, str]] = None,
                      description: str = "") -> gpb.CreateModelRequest:
    """A fitted GaussianMixture, PCA (as probabilistic PCA) or FactorAnalysis as a generative CreateModelRequest
    whose exact log p(x) equals the model's score_samples(x); GenerativeClient.create() sends it."""
    return gpb.CreateModelRequest(name=name, spec=generative_spec(model), labels=dict(labels or {}),
                                  description=description)


def _require(model: Any, attribute: str) -> Any:
    if not hasattr(model, attribute):
        raise ValueError(f"{_class_name(model)} is not fitted (call fit first)")
    return getattr(model, attribute)


def _gaussian_mixture(gm: Any) -> gpb.GaussianMixtureSpec:
    """GaussianMixture's parameters in float64. A model fitted on float64 data is exported as it is. One fitted on
    float32 data holds float32 parameters, and its score_samples evaluates every component through
    precisions_cholesky_ (not covariances_, which float32 rounds separately: the two disagree by ~1e-7 and
    covariances_ is not even exactly symmetric) and log(weights_), whose float32 values need not sum to 1 in float64.
    So the covariances exported are those whose precision's Cholesky factor is precisions_cholesky_ (computed in
    float64: inv(L L^T), symmetrized to the last bit), and the weights are divided by their float64 sum (a change of
    at most a few float32 ulps, which CreateModel's check that they sum to 1 needs). maas's exact log p(x) then
    equals score_samples(x) within float32 rounding: what scikit-learn's float32 log-determinant and log-weights
    (and, for float32 x, its float32 quadratic form) round, about float32 eps (6e-8) times the terms' magnitude."""
    weights = np.asarray(_require(gm, "weights_"))
    means = np.asarray(gm.means_, dtype=np.float64)
    k, d = means.shape
    covariance_type = gm.covariance_type
    if covariance_type not in ("full", "tied", "diag", "spherical"):
        raise _fail(gm, f"covariance_type={covariance_type!r}")
    float64 = all(np.asarray(a).dtype == np.float64 for a in (gm.weights_, gm.means_, gm.covariances_))
    if float64:
        cov = np.asarray(gm.covariances_, dtype=np.float64)
        weights = weights.astype(np.float64)
    else:
        cov = _covariances_of_precision_cholesky(np.asarray(gm.precisions_cholesky_, dtype=np.float64),
                                                 covariance_type)
        weights = weights.astype(np.float64)
        weights = weights / weights.sum()
    if covariance_type == "full":
        kind, matrix = gpb.FULL, cov.reshape(k * d, d)
    elif covariance_type == "tied":  # one shared full matrix: the same matrix for every component
        kind, matrix = gpb.FULL, np.tile(cov, (k, 1))
    elif covariance_type == "diag":
        kind, matrix = gpb.DIAG, cov.reshape(k, d)
    else:
        kind, matrix = gpb.SPHERICAL, cov.reshape(k, 1)
    return gpb.GaussianMixtureSpec(covariance_type=kind, weights=weights.tolist(), means=_matrix(means),
                                   covariances=_matrix(matrix))


def _covariances_of_precision_cholesky(chol: Any, covariance_type: str) -> Any:
    """The covariances (as covariances_ is shaped) whose precisions have the Cholesky factors `chol`
    (precisions_cholesky_: precision = L L^T for full / tied, 1 / sqrt(variance) for diag / spherical), in float64.
    Full matrices are symmetrized: (C + C^T) / 2 only evens out the matrix product's last-bit rounding."""
    if covariance_type in ("diag", "spherical"):
        return 1.0 / (chol * chol)
    mats = chol.reshape(-1, chol.shape[-2], chol.shape[-1])
    out = np.empty_like(mats)
    for i, lower in enumerate(mats):
        inverse = np.linalg.inv(lower)  # C = (L L^T)^-1 = L^-T L^-1
        c = inverse.T @ inverse
        out[i] = (c + c.T) / 2
    return out.reshape(chol.shape)


def _ppca(pca: Any) -> gpb.PpcaSpec:
    """PCA's probabilistic model (what PCA.score_samples evaluates, PCA.get_covariance): x ~ N(mean, W W^T +
    sigma^2 I) with W = components_^T diag(sqrt(max(explained_variance_ - sigma^2, 0))), sigma^2 =
    noise_variance_."""
    components = np.asarray(_require(pca, "components_"), dtype=np.float64)
    noise = float(pca.noise_variance_)
    if not noise > 0:
        raise _fail(pca, f"noise_variance_={noise} (PPCA needs > 0: keep fewer components than features)")
    explained = np.asarray(pca.explained_variance_, dtype=np.float64)
    scale = np.sqrt(np.maximum(explained - noise, 0.0))
    if getattr(pca, "whiten", False):  # PCA.get_covariance scales whitened components by sqrt(explained_variance_)
        scale = scale * np.sqrt(explained)
    loadings = components.T * scale  # D x L
    return gpb.PpcaSpec(loadings=_matrix(loadings), mean=np.asarray(pca.mean_, dtype=np.float64).tolist(),
                        noise_variance=noise)


def _factor_analysis(fa: Any) -> gpb.FactorAnalysisSpec:
    """FactorAnalysis: x ~ N(mean, W W^T + diag(psi)) with W = components_^T."""
    components = np.asarray(_require(fa, "components_"), dtype=np.float64)
    return gpb.FactorAnalysisSpec(loadings=_matrix(components.T),
                                  mean=np.asarray(fa.mean_, dtype=np.float64).tolist(),
                                  noise_variance=np.asarray(fa.noise_variance_, dtype=np.float64).tolist())
