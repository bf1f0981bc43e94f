"""End-to-end tests of maas-discriminative (CountVectorizer + MultinomialNB) through the gateway, on the real
binaries, against scikit-learn fitted in the test on the same random corpus."""

import re

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.naive_bayes import MultinomialNB

from maas.common.v1 import common_pb2
from maas.discriminative.v1 import discriminative_pb2 as disc

from maas_testing import TIMEOUT, Stack, expect_rpc_error, from_matrix, health_status, poll_until, ref

# Labels chosen so that code-point order differs from case-insensitive order ("Cooking" < "sports" < "tech" <
# "été"), as scikit-learn's classes_ (np.unique) sorts them.
CLASSES = ["sports", "Cooking", "tech", "été"]

COMMON = ["the", "and", "of", "to", "in", "is", "it", "for", "on", "with", "this", "that", "we", "you", "all"]
TOPICAL = {
    "sports": ["goal", "match", "team", "striker", "score", "league", "coach", "Football", "win", "Straße"],
    "Cooking": ["bake", "bread", "dough", "oven", "salt", "butter", "café", "recipe", "crème", "Brûlée"],
    "tech": ["server", "latency", "gRPC", "kernel", "cache", "thread", "Linux", "naïve", "2024", "v2"],
    "été": ["plage", "soleil", "mer", "vacances", "日本語", "東京", "travel", "été", "Ñandú", "ÉCOLE"],
}
# Tokens the default pattern r"(?u)\b\w\w+\b" drops or splits: single characters, punctuation, lone digits.
NOISE = ["a", "I", "x", "7", "!", "?", "-", "...", "3.14", "e-mail", "don't", "U.S.A.", "foo_bar", "(hi)"]
SEPARATORS = [" ", " ", " ", ", ", ". ", "! ", "; ", " - ", "\n", "\t", "  "]


def make_corpus(rng, num_docs):
    """Random documents with class-dependent word frequencies; returns (texts, labels)."""
    letters = list("abcdeéfghiïjklmnñoöpqrsßtuvwxyzçø")
    rare = sorted({"".join(rng.choice(letters, size=rng.integers(2, 9))) for _ in range(250)})
    vocabulary = COMMON + [w for c in CLASSES for w in TOPICAL[c]] + NOISE + rare
    index = {w: i for i, w in enumerate(vocabulary)}
    probabilities = {}
    for c in CLASSES:
        weights = np.full(len(vocabulary), 0.3)
        weights[[index[w] for w in COMMON]] = 3.0
        weights[[index[w] for w in NOISE]] = 0.8
        weights[[index[w] for w in TOPICAL[c]]] = 4.0
        probabilities[c] = rng.dirichlet(weights * 5.0)
    texts, labels = [], []
    for _ in range(num_docs):
        label = CLASSES[rng.integers(len(CLASSES))]
        words = rng.choice(vocabulary, size=rng.integers(1, 30), p=probabilities[label])
        parts = []
        for word in words:
            word = str(word)
            roll = rng.random()
            if roll < 0.1:
                word = word.capitalize()
            elif roll < 0.15:
                word = word.upper()
            parts.append(word)
            parts.append(SEPARATORS[rng.integers(len(SEPARATORS))])
        texts.append("".join(parts).strip())
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(20240607)
    texts, labels = make_corpus(rng, 400)
    weights = rng.uniform(0.0, 3.0, size=300)
    weights[::17] = 0.0  # a few zero weights
    return {"train": (texts[:300], labels[:300]), "test": (texts[300:], labels[300:]), "weights": weights}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("e2e-discriminative")) as s:
        yield s


def train_requests(name, texts, labels, weights=None, batch=64, config=None):
    yield disc.TrainRequest(config=config or disc.TrainConfig(name=name))
    for start in range(0, len(texts), batch):
        examples = []
        for i in range(start, min(start + batch, len(texts))):
            example = disc.LabeledText(text=texts[i], label=labels[i])
            if weights is not None:
                example.weight = float(weights[i])
            examples.append(example)
        yield disc.TrainRequest(batch=disc.TextBatch(examples=examples))


def sklearn_pipeline(texts, labels, weights=None):
    vectorizer = CountVectorizer()
    x = vectorizer.fit_transform(texts)
    classifier = MultinomialNB().fit(x, labels, sample_weight=weights)
    return vectorizer, classifier


def classify(stub, name, texts, **kwargs):
    return stub.Classify(disc.ClassifyRequest(model=ref(name), texts=texts, **kwargs), timeout=TIMEOUT)


def assert_pipeline_matches(spec, vectorizer, classifier):
    assert list(spec.vectorizer.vocabulary) == list(vectorizer.get_feature_names_out()), "vocabulary or its order"
    state = spec.classifier
    assert list(state.classes) == list(classifier.classes_)
    np.testing.assert_allclose(state.class_count, classifier.class_count_, rtol=1e-12, atol=0)
    np.testing.assert_allclose(from_matrix(state.feature_count), classifier.feature_count_, rtol=1e-12, atol=0)
    np.testing.assert_allclose(state.class_log_prior, classifier.class_log_prior_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(from_matrix(state.feature_log_prob), classifier.feature_log_prob_, rtol=0, atol=1e-12)


def assert_classifications_match(response, texts, vectorizer, classifier):
    x = vectorizer.transform(texts)
    labels = classifier.predict(x)
    proba = classifier.predict_proba(x)
    log_proba = classifier.predict_log_proba(x)
    jll = classifier.predict_joint_log_proba(x)
    assert len(response.results) == len(texts)
    for i, result in enumerate(response.results):
        assert result.label == labels[i], f"text {i} {texts[i]!r}: label {result.label} != sklearn {labels[i]}"
        assert [s.label for s in result.scores] == list(classifier.classes_)
        got_p = np.array([s.probability for s in result.scores])
        got_lp = np.array([s.log_probability for s in result.scores])
        np.testing.assert_allclose(got_p, proba[i], rtol=0, atol=1e-12, err_msg=f"predict_proba of text {i}")
        # Relative 1e-12, except for log-probabilities that are rounding noise next to the joint log-likelihood
        # (values near 0): there the error scales with max|jll| (see reference/sklearn-text-nb-spec.md §7.1).
        tolerance = 1e-12 * np.abs(log_proba[i]) + 1e-14 * np.abs(jll[i]).max() + 1e-15
        assert np.all(np.abs(got_lp - log_proba[i]) <= tolerance), \
            f"predict_log_proba of text {i}: {got_lp} vs sklearn {log_proba[i]}"


# ---------------------------------------------------------------------------------------------------------------
# Training and compatibility with scikit-learn


@pytest.fixture(scope="module")
def trained(stack, corpus):
    texts, labels = corpus["train"]
    response = stack.disc_gw.Train(train_requests("news", texts, labels), timeout=TIMEOUT)
    return response


def test_train_reports_the_model(stack, corpus, trained):
    texts, labels = corpus["train"]
    vectorizer, classifier = sklearn_pipeline(texts, labels)
    info = trained.info
    assert info.name == "news"
    assert info.version == 1
    assert info.type == common_pb2.DISCRIMINATIVE
    assert info.family == "count+multinomial_nb"
    assert info.dimension == len(vectorizer.vocabulary_)
    assert trained.summary.num_documents == len(texts)
    assert trained.summary.num_features == len(vectorizer.vocabulary_)
    assert list(trained.summary.classes) == list(classifier.classes_)
    np.testing.assert_allclose(trained.summary.class_count, classifier.class_count_, rtol=1e-12, atol=0)


def test_fitted_state_equals_sklearn(stack, corpus, trained):
    texts, labels = corpus["train"]
    vectorizer, classifier = sklearn_pipeline(texts, labels)
    # The corpus really exercises Unicode, case folding and the token pattern.
    vocabulary = set(vectorizer.vocabulary_)
    assert {"café", "straße", "naïve", "日本語", "école", "ñandú", "2024", "grpc", "mail", "foo_bar",
            "don", "14", "v2"} <= vocabulary
    assert not {"7", "a", "i", "x", "3", "s", "t", "u"} & vocabulary
    got = stack.disc_gw.GetModel(disc.GetModelRequest(model=ref("news")), timeout=TIMEOUT)
    assert got.info.version == 1
    assert_pipeline_matches(got.spec, vectorizer, classifier)
    direct = stack.disc.GetModel(disc.GetModelRequest(model=ref("news")), timeout=TIMEOUT)
    assert direct.SerializeToString(deterministic=True) == got.SerializeToString(deterministic=True)


def test_classify_equals_sklearn(stack, corpus, trained):
    texts, labels = corpus["train"]
    vectorizer, classifier = sklearn_pipeline(texts, labels)
    held_out = list(corpus["test"][0])
    # Plus texts with no known token at all (prediction by the prior) and unseen words.
    held_out += ["", "zzz qqq", "!!!", "日本", "STRASSE straße Straße"]
    response = classify(stack.disc_gw, "news", held_out)
    assert response.model_version == 1
    assert_classifications_match(response, held_out, vectorizer, classifier)
    # Sanity of the oracle: the classifier learned something on this corpus.
    assert (classifier.predict(vectorizer.transform(corpus["test"][0])) == np.array(corpus["test"][1])).mean() > 0.5


def test_train_with_sample_weights_equals_sklearn(stack, corpus):
    texts, labels = corpus["train"]
    weights = corpus["weights"]
    response = stack.disc_gw.Train(train_requests("weighted", texts, labels, weights=weights), timeout=TIMEOUT)
    assert response.info.version == 1
    vectorizer, classifier = sklearn_pipeline(texts, labels, weights=weights)
    got = stack.disc_gw.GetModel(disc.GetModelRequest(model=ref("weighted")), timeout=TIMEOUT)
    assert_pipeline_matches(got.spec, vectorizer, classifier)
    held_out = list(corpus["test"][0])
    assert_classifications_match(classify(stack.disc_gw, "weighted", held_out), held_out, vectorizer, classifier)


def test_classify_stream_answers_in_order(stack, corpus, trained):
    held_out = list(corpus["test"][0])
    requests = [disc.ClassifyRequest(model=ref("news"), texts=held_out[0:5]),
                disc.ClassifyRequest(model=ref("news"), texts=held_out[5:6]),
                disc.ClassifyRequest(model=ref("news"), texts=held_out[6:40])]
    responses = list(stack.disc_gw.ClassifyStream(iter(requests), timeout=TIMEOUT))
    assert len(responses) == 3
    for request, response in zip(requests, responses):
        expected = classify(stack.disc_gw, "news", list(request.texts))
        assert response == expected


def test_vectorize_equals_count_vectorizer(stack, corpus, trained):
    texts, _ = corpus["train"]
    vectorizer = CountVectorizer().fit(texts)
    held_out = list(corpus["test"][0][:30]) + ["", "the the THE The", "café CAFÉ cafe"]
    response = stack.disc_gw.Vectorize(disc.VectorizeRequest(model=ref("news"), texts=held_out,
                                                             include_feature_names=True), timeout=TIMEOUT)
    expected = vectorizer.transform(held_out).tocsr()
    expected.sort_indices()
    names = vectorizer.get_feature_names_out()
    assert response.num_features == len(names)
    assert len(response.rows) == len(held_out)
    used = set()
    for i, row in enumerate(response.rows):
        start, end = expected.indptr[i], expected.indptr[i + 1]
        assert list(row.indices) == list(expected.indices[start:end]), f"indices of text {i}"
        assert list(row.values) == list(expected.data[start:end].astype(float)), f"counts of text {i}"
        used.update(row.indices)
    assert dict(response.feature_names) == {i: names[i] for i in used}


# Texts whose tokens depend on Python's str.lower (full case mapping, final sigma, dotted capital I) and on
# Python's \w (letters, digits and numerics of every script, underscore; not combining marks or format chars).
UNICODE_EDGE_TEXTS = [
    "İstanbul ISTANBUL istanbul", "ΣΑΣ ΟΔΟΣ σοφός ΣΟΦΟΣ", "cafe\u0301 café CAFÉ", "１２３ x² ½ foo_bar __",
    "ﬁnance ǅemal Ǆ ǆ", "straße STRASSE ẞ", "ÅNGSTRÖM Ω ohm Å", "deja\u0300 vu déjà", "x\u200by zero\u00adwidth",
    "١٢٣ ٤ arabic", "ＡＢＣ ａｂｃ", "日本語の文章です。東京", "emoji 🙂🙂 ok", "tab\tsep\nnew\rline",
]


def test_unicode_tokenization_equals_sklearn(stack):
    labels = ["p", "q"] * (len(UNICODE_EDGE_TEXTS) // 2)
    stack.disc_gw.Train(train_requests("unicode", UNICODE_EDGE_TEXTS, labels), timeout=TIMEOUT)
    vectorizer, classifier = sklearn_pipeline(UNICODE_EDGE_TEXTS, labels)
    got = stack.disc_gw.GetModel(disc.GetModelRequest(model=ref("unicode")), timeout=TIMEOUT)
    assert list(got.spec.vectorizer.vocabulary) == list(vectorizer.get_feature_names_out())
    assert_pipeline_matches(got.spec, vectorizer, classifier)
    response = stack.disc_gw.Vectorize(disc.VectorizeRequest(model=ref("unicode"), texts=UNICODE_EDGE_TEXTS),
                                       timeout=TIMEOUT)
    expected = vectorizer.transform(UNICODE_EDGE_TEXTS).tocsr()
    expected.sort_indices()
    for i, row in enumerate(response.rows):
        start, end = expected.indptr[i], expected.indptr[i + 1]
        assert list(row.indices) == list(expected.indices[start:end]), f"indices of {UNICODE_EDGE_TEXTS[i]!r}"
        assert list(row.values) == list(expected.data[start:end].astype(float))


def test_models_survive_a_restart(stack, corpus, trained):
    before = stack.disc_gw.GetModel(disc.GetModelRequest(model=ref("news")), timeout=TIMEOUT)
    held_out = list(corpus["test"][0][:20])
    classified_before = classify(stack.disc, "news", held_out)
    assert stack.stop_discriminative() == 0, "maas-discriminative did not exit with code 0 on SIGTERM"
    stack.start_discriminative_again()
    after = stack.disc.GetModel(disc.GetModelRequest(model=ref("news")), timeout=TIMEOUT)
    assert after == before
    assert classify(stack.disc, "news", held_out) == classified_before
    listed = stack.disc.ListModels(common_pb2.ListModelsRequest(), timeout=TIMEOUT)
    assert ("news", 1) in [(m.name, m.version) for m in listed.models]
    assert all(m.type == common_pb2.DISCRIMINATIVE for m in listed.models)
    # The gateway reconnects to the new process (same port); bounded polling while it does.
    via_gateway = poll_until(
        lambda: stack.disc_gw.GetModel(disc.GetModelRequest(model=ref("news")), timeout=2.0), 10.0,
        "GetModel through the gateway after the discriminative restart")
    assert via_gateway == before


def test_list_and_delete(stack, corpus):
    texts, labels = corpus["train"]
    for _ in range(2):
        stack.disc_gw.Train(train_requests("doomed", texts[:50], labels[:50]), timeout=TIMEOUT)
    every = stack.disc_gw.ListModels(common_pb2.ListModelsRequest(name_prefix="doomed", all_versions=True),
                                     timeout=TIMEOUT)
    assert [(m.name, m.version) for m in every.models] == [("doomed", 1), ("doomed", 2)]
    deleted = stack.disc_gw.DeleteModel(common_pb2.DeleteModelRequest(name="doomed"), timeout=TIMEOUT)
    assert list(deleted.deleted_versions) == [1, 2]
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND, "doomed"):
        classify(stack.disc_gw, "doomed", ["the match"])


# ---------------------------------------------------------------------------------------------------------------
# Bad input


def test_unknown_model_is_not_found(stack, trained):
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND, "no-such-model"):
        classify(stack.disc_gw, "no-such-model", ["hello world"])
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND, "no-such-model"):
        stack.disc_gw.GetModel(disc.GetModelRequest(model=ref("no-such-model")), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND, "no-such-model"):
        stack.disc_gw.Vectorize(disc.VectorizeRequest(model=ref("no-such-model"), texts=["x"]), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND, "7"):
        stack.disc_gw.GetModel(disc.GetModelRequest(model=ref("news", 7)), timeout=TIMEOUT)


def test_bad_train_streams_are_invalid_argument(stack, corpus, trained):
    texts, labels = corpus["train"]
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, ("empty", "config")):
        stack.disc_gw.Train(iter([]), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, ("example", "document", "text", "empty")):
        stack.disc_gw.Train(train_requests("news", [], []), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "config"):  # a batch before the config
        stack.disc_gw.Train(iter([disc.TrainRequest(batch=disc.TextBatch(
            examples=[disc.LabeledText(text="the match", label="sports")]))]), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "weight"):
        weights = np.ones(len(texts))
        weights[10] = -1.0
        stack.disc_gw.Train(train_requests("news", texts, labels, weights=weights), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "weight"):
        weights = np.ones(len(texts))
        weights[3] = np.nan
        stack.disc_gw.Train(train_requests("news", texts, labels, weights=weights), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "label"):
        stack.disc_gw.Train(train_requests("news", ["the match", "bread dough"], ["sports", ""]), timeout=TIMEOUT)
    # Only 1-character tokens: scikit-learn raises "empty vocabulary".
    with pytest.raises(ValueError, match="empty vocabulary"):
        CountVectorizer().fit(["a b c", "x y z", "1 2 3 !"])
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "vocabulary"):
        stack.disc_gw.Train(train_requests("news", ["a b c", "x y z", "1 2 3 !"], ["p", "q", "p"]), timeout=TIMEOUT)


@pytest.mark.parametrize("name", ["../x", "", "a" * 64, "News", "a/b"])
def test_bad_names_are_invalid_argument(stack, corpus, name):
    texts, labels = corpus["train"]
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "name"):
        stack.disc_gw.Train(train_requests(name, texts[:20], labels[:20]), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "name"):
        classify(stack.disc_gw, name, ["the match"])


def test_empty_texts_are_invalid_argument(stack, trained):
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "text"):
        classify(stack.disc_gw, "news", [])
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "text"):
        stack.disc_gw.Vectorize(disc.VectorizeRequest(model=ref("news"), texts=[]), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "text"):
        list(stack.disc_gw.ClassifyStream(iter([disc.ClassifyRequest(model=ref("news"), texts=[])]),
                                          timeout=TIMEOUT))


def test_unsupported_configs_answer_cleanly(stack, corpus, trained):
    """Non-default vectorizer/classifier configs and Evaluate may not be implemented yet: they must answer
    (UNIMPLEMENTED or INVALID_ARGUMENT with a message, or succeed), never crash the server."""
    texts, labels = corpus["train"]
    configs = [
        disc.TrainConfig(name="cfg-tfidf", vectorizer=disc.VectorizerConfig(tfidf=disc.TfidfConfig())),
        disc.TrainConfig(name="cfg-hashing", vectorizer=disc.VectorizerConfig(
            hashing=disc.HashingVectorizerConfig(n_features=1024))),
        disc.TrainConfig(name="cfg-bigrams", vectorizer=disc.VectorizerConfig(count=disc.CountVectorizerConfig(
            text=disc.TextOptions(ngram_min=1, ngram_max=2, token_pattern=r"\w+")))),
        disc.TrainConfig(name="cfg-complement", classifier=disc.ClassifierConfig(
            complement_nb=disc.ComplementNbConfig())),
        disc.TrainConfig(name="cfg-alpha", classifier=disc.ClassifierConfig(
            multinomial_nb=disc.MultinomialNbConfig(alpha=-1.0))),
    ]
    for config in configs:
        try:
            stack.disc_gw.Train(train_requests(config.name, texts[:50], labels[:50], config=config),
                                timeout=TIMEOUT)
            assert config.name != "cfg-alpha", "alpha = -1 was accepted"
        except grpc.RpcError as e:
            assert e.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INVALID_ARGUMENT), \
                f"{config.name}: {e.code()} {e.details()}"
            assert e.details().strip(), f"{config.name}: empty message"
    try:
        stack.disc_gw.Evaluate(iter([
            disc.EvaluateRequest(config=disc.EvaluateConfig(model=ref("news"))),
            disc.EvaluateRequest(batch=disc.TextBatch(examples=[disc.LabeledText(text="the match", label="sports")]))]),
            timeout=TIMEOUT)
    except grpc.RpcError as e:
        assert e.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INVALID_ARGUMENT), e
        assert e.details().strip()
    assert health_status(stack.disc_channel) == health_pb2.HealthCheckResponse.SERVING


def test_server_is_healthy_and_models_intact_after_bad_input(stack, corpus, trained):
    """Runs after every bad-input test above (pytest keeps file order)."""
    for channel in (stack.disc_channel, stack.gw_channel):
        assert health_status(channel) == health_pb2.HealthCheckResponse.SERVING
    every = stack.disc_gw.ListModels(common_pb2.ListModelsRequest(name_prefix="news", all_versions=True),
                                     timeout=TIMEOUT)
    assert [(m.name, m.version) for m in every.models] == [("news", 1)], "a failed Train stored a version"
    texts, labels = corpus["train"]
    vectorizer, classifier = sklearn_pipeline(texts, labels)
    got = stack.disc_gw.GetModel(disc.GetModelRequest(model=ref("news")), timeout=TIMEOUT)
    assert_pipeline_matches(got.spec, vectorizer, classifier)
    assert not (stack.root / "x").exists(), "the name '../x' escaped the model dir"
    name_re = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
    for path in stack.discriminative_dir.rglob("*"):
        if path.is_file():
            parts = path.relative_to(stack.discriminative_dir).parts
            bookkeeping = len(parts) == 2 and name_re.fullmatch(parts[0]) and parts[1] in ("highest-version",
                                                                                              "write.lock")
            assert bookkeeping or (len(parts) == 3 and name_re.fullmatch(parts[0]) and parts[1].isdigit()
                                       and parts[2] == "model.pb"), f"stray file {path}"
