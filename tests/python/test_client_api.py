"""maas_client against the real binaries (generative + discriminative + gateway): every wrapped RPC, numpy in
and out, compared with oracles computed in the test (scipy's uniform density, scikit-learn's CountVectorizer +
MultinomialNB and metrics), typed errors, deadlines and streaming behaviour."""

import io
import itertools
import time

import grpc
import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss, precision_recall_fscore_support
from sklearn.naive_bayes import MultinomialNB

import maas_client
import maas_client.cli
from maas_client import errors
from maas_client.pb import common, discriminative as dpb, generative as gpb

from client_testing import make_corpus, uniform_log_density
from maas_testing import Stack

LOW, HIGH = np.array([0.0, -1.0, 2.0]), np.array([1.0, 3.0, 2.5])


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("client-api")) as s:
        yield s


@pytest.fixture(scope="module")
def gen(stack):
    with maas_client.GenerativeClient(stack.gateway_process.address, timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
def disc(stack):
    with maas_client.DiscriminativeClient(stack.gateway_process.address, timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
def box(gen):
    spec = gpb.GenerativeModelSpec(uniform=gpb.UniformSpec(low=LOW.tolist(), high=HIGH.tolist()))
    info = gen.create(spec, "box", labels={"team": "a"}, description="a box")
    assert (info.name, info.version, info.kind, info.family, info.dimension) == ("box", 1, "generative", "uniform", 3)
    assert info.labels == {"team": "a"} and info.description == "a box" and info.created_at is not None
    return "box"


@pytest.fixture(scope="module")
def corpus():
    texts, labels = make_corpus(7, 260)
    return {"train": (texts[:200], labels[:200]), "test": (texts[200:], labels[200:])}


@pytest.fixture(scope="module")
def text_model(disc, corpus):
    texts, labels = corpus["train"]
    consumed = []

    def lazy_texts():  # a generator: train() must stream it, not need len() or indexing
        for t in texts:
            consumed.append(t)
            yield t

    progress = []
    result = disc.train(lazy_texts(), iter(labels), name="news", batch_size=37, on_batch=progress.append)
    assert consumed == texts
    assert progress == [37] * 5 + [15]
    cv = CountVectorizer()
    nb = MultinomialNB().fit(cv.fit_transform(texts), labels)
    assert result.info.name == "news" and result.info.family == "count+multinomial_nb"
    assert result.num_documents == 200 and result.num_features == len(cv.vocabulary_)
    assert result.classes == nb.classes_.tolist()
    np.testing.assert_array_equal(result.class_count, nb.class_count_)
    return {"name": "news", "cv": cv, "nb": nb}


# -- generative ---------------------------------------------------------------------------------------------------
def test_sample_is_deterministic_across_batch_sizes_and_shards(gen, box):
    whole = gen.sample_array(box, 1000, seed=42)
    assert whole.shape == (1000, 3) and whole.dtype == np.float64
    batches = list(gen.sample(box, 1000, seed=42, batch_size=128))
    assert [b.shape[0] for b in batches] == [128] * 7 + [104]
    np.testing.assert_array_equal(np.concatenate(batches), whole)
    shard = gen.sample_array(box, 300, seed=42, start_index=500, batch_size=7)
    np.testing.assert_array_equal(shard, whole[500:800])
    assert np.all((whole >= LOW) & (whole <= HIGH))
    assert not np.array_equal(gen.sample_array(box, 1000, seed=43), whole)


def test_sample_batches_carry_index_seed_and_version(gen, box):
    batches = list(gen.sample_batches(box, 10, batch_size=4))
    assert [b.start_index for b in batches] == [0, 4, 8]
    seeds = {b.seed for b in batches}
    assert len(seeds) == 1 and all(b.model_version == 1 and b.latents is None for b in batches)
    replay = gen.sample_array(box, 10, seed=seeds.pop())  # the fresh seed replays the stream
    np.testing.assert_array_equal(np.concatenate([b.x for b in batches]), replay)


def test_closing_a_sample_stream_early_is_clean(gen, box):
    stream = gen.sample(box, 100_000, seed=1, batch_size=10)
    first = next(stream)
    stream.close()  # cancels the call; the channel stays usable
    np.testing.assert_array_equal(first, gen.sample_array(box, 10, seed=1))


def test_exact_estimate_matches_the_closed_form(gen, box):
    rng = np.random.default_rng(3)
    x = np.vstack([LOW + rng.random((6, 3)) * (HIGH - LOW), HIGH + 1.0])
    expected = uniform_log_density(x, LOW, HIGH)
    est = gen.estimate(box, x, "exact")
    assert est.estimator == "exact" and est.model_version == 1
    np.testing.assert_allclose(est.log_likelihood[:6], expected[:6], rtol=0, atol=1e-12)
    assert np.isneginf(est.log_likelihood[6]) and np.isneginf(expected[6])
    np.testing.assert_array_equal(est.exact_log_likelihood, est.log_likelihood)
    assert np.all(est.standard_error == 0) and np.all(est.ess == 0) and np.all(est.num_samples == 0)
    single = gen.estimate(box, x[0])  # a 1-D array is one row; no estimator = the server's choice (exact)
    assert single.estimator == "exact" and single.log_likelihood.shape == (1,)

    streamed = list(gen.stream_estimate(box, x, "exact"))
    assert len(streamed) == 1 and streamed[0].stop_reason == "exact_result"
    np.testing.assert_array_equal(streamed[0].log_likelihood, est.log_likelihood)
    assert np.all(est.statistics.count == 0) and np.all(est.ais_acceptance_rate == 0)  # no weights


@pytest.fixture(scope="module")
def latent(gen):
    """A fitted ppca model with one latent dimension in 3: Monte Carlo estimates have weights that vary."""
    rng = np.random.default_rng(11)
    rows = rng.normal(size=(400, 1)) @ [[1.0, -0.5, 2.0]] + 0.3 * rng.normal(size=(400, 3))
    gen.fit(rows, "ppca", name="latent", latent_dim=1, seed=1)
    return "latent"


def test_sample_shards_merge_exactly(gen, latent):
    """A job sharded over calls (row_offset, sample_offset; the same seed) merges into what one call reports: the
    statistics of two sample shards combine with WeightStatistics.merge (as the C++ CLI's and the Go / TS clients'
    do). The client used to take neither offset and to drop the statistics and the AIS acceptance rate."""
    x = np.array([[0.5, -0.2, 1.1], [-1.0, 0.4, -2.0], [0.2, 0.1, 0.3]])
    whole = gen.estimate(latent, x, "prior", 3000, seed=9)
    first = gen.estimate(latent, x[1:], "prior", 1000, seed=9, row_offset=1)
    second = gen.estimate(latent, x[1:], "prior", 2000, seed=9, row_offset=1, sample_offset=1000)
    merged = first.statistics.merge(second.statistics)
    np.testing.assert_array_equal(merged.count, [3000, 3000])
    np.testing.assert_array_equal(whole.statistics.count, [3000] * 3)
    for got, want in ((merged.log_sum_w, whole.statistics.log_sum_w), (merged.log_sum_w2, whole.statistics.log_sum_w2),
                      (merged.log_likelihood, whole.log_likelihood)):
        np.testing.assert_allclose(got, want[1:], rtol=0, atol=1e-12)
    np.testing.assert_allclose(merged.ess, whole.ess[1:], rtol=1e-9)
    np.testing.assert_allclose(merged.standard_error, whole.standard_error[1:], rtol=1e-9)
    np.testing.assert_allclose(whole.statistics.log_likelihood, whole.log_likelihood, rtol=0, atol=1e-12)
    assert np.all(whole.standard_error > 0) and np.all(whole.ais_acceptance_rate == 0)
    # row_offset names the global row: without it, x[1] would draw row 0's samples.
    alone = gen.estimate(latent, x[1:2], "prior", 3000, seed=9, row_offset=1)
    assert alone.log_likelihood[0] == whole.log_likelihood[1]
    assert gen.estimate(latent, x[1:2], "prior", 3000, seed=9).log_likelihood[0] != whole.log_likelihood[1]
    # stream_estimate shards the same way: its steps cover samples sample_offset + s * num_samples onwards.
    steps = list(gen.stream_estimate(latent, x[1:], "prior", 1000, seed=9, row_offset=1, sample_offset=1000,
                                     max_samples=2000))
    assert steps[-1].stop_reason == "max_samples"
    np.testing.assert_array_equal(steps[-1].statistics.count, second.statistics.count)
    np.testing.assert_allclose(steps[-1].statistics.log_sum_w, second.statistics.log_sum_w, rtol=0, atol=1e-12)
    ais = gen.estimate(latent, x, "ais", 16, seed=3, ais={"num_temperatures": 8})
    assert np.all((ais.ais_acceptance_rate > 0) & (ais.ais_acceptance_rate <= 1))
    with pytest.raises(errors.InvalidArgumentError, match="sample_offset"):
        gen.estimate(latent, x, "prior", 10, seed=9, sample_offset=-1)


def test_fit_streams_chunks_from_an_iterable(gen):
    rng = np.random.default_rng(5)
    rows = rng.normal(size=(900, 2)) * [1.0, 10.0] + [3.0, -2.0]
    sent = []
    result = gen.fit((rows[i:i + 250] for i in range(0, 900, 250)), "uniform", name="fitted", seed=9,
                     on_rows=sent.append)
    assert sent == [250, 250, 250, 150]
    assert result.num_rows == 900 and result.converged and result.info.version == 1
    spec = gen.get("fitted").spec
    np.testing.assert_array_equal(spec.uniform.low, rows.min(axis=0))
    np.testing.assert_array_equal(spec.uniform.high, rows.max(axis=0))
    again = gen.fit(rows, "uniform", name="fitted", chunk_rows=100)  # an array, split into chunks
    assert again.num_rows == 900 and again.info.version == 2
    assert gen.fit(rows.tolist(), "uniform", name="fitted").num_rows == 900  # a list of rows
    assert gen.fit([rows[:1], rows[1:]], "uniform", name="fitted").num_rows == 900  # a list of 2-D chunks
    np.testing.assert_array_equal(gen.get("fitted").spec.uniform.high, rows.max(axis=0))
    with pytest.raises(maas_client.InvalidArgumentError):  # no rows at all: the server's clear error
        gen.fit(iter([]), "uniform", name="fitted")


def test_fit_rejects_unknown_families_and_parameters_before_sending(gen):
    with pytest.raises(maas_client.InvalidArgumentError, match="family 'gmm' is not one of"):
        gen.fit([[0.0]], "gmm", name="x")
    with pytest.raises(maas_client.InvalidArgumentError, match="unknown parameter 'n_component'.*n_components"):
        gen.fit([[0.0]], "gaussian_mixture", name="x", n_component=3)
    with pytest.raises(maas_client.InvalidArgumentError, match="covariance_type='banana'"):
        gen.fit([[0.0]], "gaussian_mixture", name="x", covariance_type="banana")


# -- discriminative -----------------------------------------------------------------------------------------------
def test_classify_equals_scikit_learn(disc, text_model, corpus):
    texts, _ = corpus["test"]
    cv, nb = text_model["cv"], text_model["nb"]
    got = disc.classify("news", texts)
    assert got.classes == nb.classes_.tolist()
    np.testing.assert_array_equal(got.labels, nb.predict(cv.transform(texts)))
    np.testing.assert_allclose(got.probabilities, nb.predict_proba(cv.transform(texts)), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got.log_probabilities, nb.predict_log_proba(cv.transform(texts)), rtol=1e-12)
    # predict / predict_proba take the compact answer: the same labels and the same probabilities, bit for bit.
    np.testing.assert_array_equal(disc.predict("news", texts), got.labels)
    np.testing.assert_array_equal(disc.predict_proba("news", texts), got.probabilities)
    np.testing.assert_array_equal(disc.predict_proba("news", texts[0]), got.probabilities[:1])
    assert disc.predict("news", texts[0]).tolist() == got.labels[:1].tolist()
    explained = disc.classify("news", texts[:2], explain=True, explain_features=3)
    assert explained.explanations is not None and len(explained.explanations) == 2
    assert all(len(e.features) <= 3 for e in explained.explanations)


@pytest.mark.parametrize("via", ["direct", "gateway"])
def test_packed_texts_classify_and_vectorize_as_texts_one_per_field(stack, text_model, corpus, via):
    texts, _ = corpus["test"]
    texts = list(texts) + ["", "caf\u00e9 \u65e5\u672c \U0001F600"]
    cv, nb = text_model["cv"], text_model["nb"]
    packed = maas_client.pack_texts(texts)
    assert packed[:4] == len(texts[0].encode()).to_bytes(4, "little") and packed[4:4 + 3] == texts[0].encode()[:3]
    stub = stack.disc if via == "direct" else stack.disc_gw
    ref = common.ModelRef(name="news")
    by_field = stub.Classify(dpb.ClassifyRequest(model=ref, texts=texts, compact=True), timeout=20)
    got = stub.Classify(dpb.ClassifyRequest(model=ref, packed_texts=packed, compact=True), timeout=20)
    assert got == by_field
    probabilities = np.array(got.probabilities.values).reshape(len(texts), len(got.classes))
    np.testing.assert_allclose(probabilities, nb.predict_proba(cv.transform(texts)), rtol=1e-12, atol=1e-15)
    assert [got.classes[i] for i in got.predicted] == nb.predict(cv.transform(texts)).tolist()
    verbose = stub.Classify(dpb.ClassifyRequest(model=ref, packed_texts=packed), timeout=20)
    assert verbose == stub.Classify(dpb.ClassifyRequest(model=ref, texts=texts), timeout=20)
    # ClassifyStream takes either form per message, in order.
    stream = list(stub.ClassifyStream(iter([dpb.ClassifyRequest(model=ref, packed_texts=packed, compact=True),
                                            dpb.ClassifyRequest(model=ref, texts=texts[:3], compact=True),
                                            dpb.ClassifyRequest(model=ref, packed_texts=maas_client.pack_texts(
                                                texts[:3]), compact=True)]), timeout=20))
    assert len(stream) == 3 and stream[0] == by_field and stream[1] == stream[2]
    rows = stub.Vectorize(dpb.VectorizeRequest(model=ref, packed_texts=packed), timeout=20)
    assert rows == stub.Vectorize(dpb.VectorizeRequest(model=ref, texts=texts), timeout=20)
    # A length that claims more bytes than follow, and both forms at once: INVALID_ARGUMENT naming the problem.
    with pytest.raises(grpc.RpcError) as cut:
        stub.Classify(dpb.ClassifyRequest(model=ref, packed_texts=packed[:-1]), timeout=20)
    assert cut.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"packed_texts: text {len(texts) - 1} at byte" in cut.value.details()
    with pytest.raises(grpc.RpcError) as both:
        stub.Classify(dpb.ClassifyRequest(model=ref, texts=texts[:1], packed_texts=packed), timeout=20)
    assert both.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "both texts" in both.value.details()


def test_classify_stream_reads_an_iterable_lazily_and_keeps_order(disc, text_model, corpus):
    texts, _ = corpus["test"]
    pulled = []

    def endless():  # only as many texts as the consumer asks for are pulled
        for t in itertools.cycle(texts):
            pulled.append(t)
            yield t

    stream = disc.classify_stream("news", endless(), batch_size=8)
    results = list(itertools.islice(stream, 5))  # 40 texts
    stream.close()
    labels = np.concatenate([r.labels for r in results])
    expected = disc.classify("news", texts[:40]).labels
    np.testing.assert_array_equal(labels, expected)
    # An endless source works: it is read only as far as gRPC flow control lets requests run ahead.
    assert len(pulled) < 20_000, "classify_stream read far ahead of the stream"
    whole = list(disc.classify_stream("news", texts, batch_size=16))
    assert [len(r.labels) for r in whole] == [16, 16, 16, 12]
    np.testing.assert_array_equal(np.concatenate([r.probabilities for r in whole]),
                                  disc.classify("news", texts).probabilities)


def test_vectorize_is_scipy_csr_equal_to_the_count_vectorizer(disc, text_model, corpus):
    texts, _ = corpus["test"]
    got = disc.vectorize("news", texts + ["unseenword only", ""])
    want = text_model["cv"].transform(texts + ["unseenword only", ""])
    assert got.format == "csr" and got.shape == want.shape and got.dtype == np.float64
    assert (got != want).nnz == 0
    matrix, names = disc.feature_names("news", ["the goal"])
    vocabulary = text_model["cv"].vocabulary_
    assert names == {vocabulary["the"]: "the", vocabulary["goal"]: "goal"}


def test_evaluate_equals_scikit_learn_metrics(disc, text_model, corpus):
    texts, labels = corpus["test"]
    cv, nb = text_model["cv"], text_model["nb"]
    predicted = nb.predict(cv.transform(texts))
    classes = nb.classes_.tolist()
    ev = disc.evaluate("news", iter(texts), iter(labels), batch_size=13)
    assert ev.num_documents == len(texts)
    assert ev.accuracy == pytest.approx(accuracy_score(labels, predicted), abs=1e-12)
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=classes,
                                                                     zero_division=0)
    assert [c.label for c in ev.classes] == classes
    np.testing.assert_allclose([c.precision for c in ev.classes], precision, atol=1e-12)
    np.testing.assert_allclose([c.recall for c in ev.classes], recall, atol=1e-12)
    np.testing.assert_allclose([c.f1 for c in ev.classes], f1, atol=1e-12)
    np.testing.assert_array_equal([c.support for c in ev.classes], support)
    assert ev.macro_f1 == pytest.approx(f1_score(labels, predicted, average="macro"), abs=1e-12)
    assert ev.weighted_f1 == pytest.approx(f1_score(labels, predicted, average="weighted"), abs=1e-12)
    np.testing.assert_array_equal(ev.confusion_matrix, confusion_matrix(labels, predicted, labels=classes))
    assert ev.log_loss == pytest.approx(log_loss(labels, nb.predict_proba(cv.transform(texts)), labels=classes),
                                        rel=1e-12)


@pytest.mark.parametrize("decode_error", ["replace", "ignore"])
def test_bytes_texts_meet_decode_error_as_in_scikit_learn(disc, decode_error):
    """Texts as bytes, as scikit-learn's vectorizers take them, some not UTF-8 (Latin-1): train (with weights),
    classify, classify_stream, vectorize and evaluate equal scikit-learn's CountVectorizer(decode_error=...) +
    MultinomialNB on the same bytes. Bytes that are UTF-8 equal the same text as a str."""
    from maas_client.pb import discriminative as dpb
    texts = [b"caf\xe9 cr\xe8me br\xfbl\xe9e", "the café is open".encode(), b"na\xefve b\xe9b\xe9 cr\xe8me",
             b"free money offer", "free café offer now", b"win \xff money now", b"tarte tatin \xe0 la cr\xe8me",
             b"cheap \xa3 pills"]
    labels = ["food", "food", "food", "spam", "spam", "spam", "food", "spam"]
    weights = [1.0, 0.5, 2.0, 1.0, 1.5, 1.0, 0.25, 1.0]
    mode = dpb.DECODE_ERROR_REPLACE if decode_error == "replace" else dpb.DECODE_ERROR_IGNORE
    vectorizer = dpb.VectorizerConfig(count=dpb.CountVectorizerConfig(text=dpb.TextOptions(decode_error=mode)))
    name = f"bytes-{decode_error}"
    trained = disc.train(iter(texts), iter(labels), weights=iter(weights), name=name, vectorizer=vectorizer,
                         batch_size=3)
    cv = CountVectorizer(decode_error=decode_error)
    as_bytes = [t if isinstance(t, bytes) else t.encode() for t in texts]
    nb = MultinomialNB().fit(cv.fit_transform(as_bytes), labels, sample_weight=weights)
    assert trained.num_documents == len(texts) and trained.classes == nb.classes_.tolist()
    queries = [b"cr\xe8me \xff caf\xe9", b"money", "café crème".encode(), "free offer"]
    query_bytes = [q if isinstance(q, bytes) else q.encode() for q in queries]
    got = disc.classify(name, queries)
    np.testing.assert_array_equal(got.labels, nb.predict(cv.transform(query_bytes)))
    np.testing.assert_allclose(got.probabilities, nb.predict_proba(cv.transform(query_bytes)), rtol=1e-12)
    streamed = list(disc.classify_stream(name, iter(queries), batch_size=3))
    np.testing.assert_array_equal(np.concatenate([r.probabilities for r in streamed]), got.probabilities)
    assert (disc.vectorize(name, queries) != cv.transform(query_bytes)).nnz == 0
    ev = disc.evaluate(name, texts, labels, batch_size=5)
    assert ev.accuracy == pytest.approx(accuracy_score(labels, nb.predict(cv.transform(as_bytes))), abs=1e-12)
    # UTF-8 bytes travel as the str they spell.
    np.testing.assert_array_equal(disc.classify(name, ["café crème".encode()]).probabilities,
                                  disc.classify(name, ["café crème"]).probabilities)


def test_bytes_that_are_not_utf8_under_strict_are_refused_naming_the_text(disc, text_model):
    with pytest.raises(maas_client.InvalidArgumentError, match=r"texts\[1\].*UTF-8"):
        disc.classify("news", [b"goal", b"caf\xe9"])
    with pytest.raises(maas_client.InvalidArgumentError, match="UTF-8"):
        disc.train([b"caf\xe9 goal", b"bread"], ["a", "b"], name="strict-bytes")
    with pytest.raises(maas_client.InvalidArgumentError, match=r"texts\[0\] must be a str or bytes, got int"):
        disc.classify("news", [3])



def test_str_texts_with_surrogate_escaped_bytes_meet_decode_error(disc):
    """A str holding lone surrogates U+DC80..U+DCFF (sys.argv, os.fsdecode, errors="surrogateescape" of bytes that
    are not UTF-8) is sent as those bytes, so the model's decode_error applies as for the bytes themselves; another
    lone surrogate is an InvalidArgumentError naming the text, never a bare UnicodeEncodeError."""
    from maas_client.pb import discriminative as dpb
    vectorizer = dpb.VectorizerConfig(count=dpb.CountVectorizerConfig(
        text=dpb.TextOptions(decode_error=dpb.DECODE_ERROR_REPLACE)))
    texts = [b"caf\xe9 cr\xe8me bread", b"free money offer", b"knead the dough", b"win money now"]
    escaped = [t.decode("utf-8", "surrogateescape") for t in texts]
    assert "\udce9" in escaped[0]
    disc.train(escaped, ["food", "spam", "food", "spam"], name="surrogates", vectorizer=vectorizer)
    query = b"caf\xe9 cr\xe8me \xff money"
    as_str = query.decode("utf-8", "surrogateescape")
    np.testing.assert_array_equal(disc.classify("surrogates", [as_str]).probabilities,
                                  disc.classify("surrogates", [query]).probabilities)
    assert (disc.vectorize("surrogates", [as_str]) != disc.vectorize("surrogates", [query])).nnz == 0
    assert maas_client.pack_texts([as_str]) == maas_client.pack_texts([query])
    for bad in ("goal \ud800", "\udfff"):
        with pytest.raises(maas_client.InvalidArgumentError, match=r"texts\[1\].*surrogate"):
            disc.classify("surrogates", ["goal", bad])
        with pytest.raises(maas_client.InvalidArgumentError, match=r"texts\[0\].*surrogate"):
            maas_client.pack_texts([bad])
        with pytest.raises(maas_client.InvalidArgumentError, match="example 1: text.*surrogate"):
            disc.train(["goal", bad], ["a", "b"], name="surrogates-bad")


def test_train_with_unequal_iterables_is_an_error(disc):
    with pytest.raises(maas_client.InvalidArgumentError, match="different lengths"):
        disc.train(["a b", "c d"], ["x"], name="bad")


def test_an_exception_while_reading_the_training_data_is_raised_as_itself(disc):
    def broken():
        yield "some text"
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        disc.train(broken(), itertools.repeat("x"), name="broken", batch_size=1)
    with pytest.raises(maas_client.NotFoundError):
        disc.get("broken")  # nothing was stored


# -- labels: str as is, integers as str(int), anything else refused naming the example ------------------------------
LABEL_TEXTS = ["the striker scored a late goal", "knead the bread dough", "the coach praised the team",
               "bake the bread in a hot oven"]


def test_integer_labels_are_integer_classes(disc):
    """scikit-learn's y = [0, 1, ...]: Python and numpy integers (and integral floats, as scikit-learn takes
    y = [0.0, 1.0]) are sent as str(int(label)) with label_type LABEL_TYPE_INT64, in train's labels and classes and
    in evaluate's labels; the classes come back as ints, ordered numerically as scikit-learn's classes_."""
    for name, labels in (("int-labels", [0, 1, 0, 1]), ("np-int-labels", np.array([0, 1, 0, 1], dtype=np.int64)),
                         ("float-labels", np.array([0.0, 1.0, 0.0, 1.0])),
                         ("big-int-labels", [-7, 2**62, -7, 2**62])):
        result = disc.train(LABEL_TEXTS, labels, name=name)
        expected = sorted({int(v) for v in labels})
        assert result.classes == expected, name
        assert disc.evaluate(name, LABEL_TEXTS, labels).num_documents == 4
        assert set(disc.predict(name, LABEL_TEXTS).tolist()) <= set(expected)
    result = disc.train(LABEL_TEXTS, [np.uint8(3), 1, np.int64(3), 1], name="typed-classes",
                        classes=[np.int32(3), 1, 12])
    assert result.classes == [1, 3, 12]
    # scikit-learn refuses (partial_fit) or stringifies (fit) a mix of str and numbers; maas refuses it, and
    # integers outside int64, naming the example.
    with pytest.raises(maas_client.InvalidArgumentError,
                       match=r"^INVALID_ARGUMENT: example 2: label is an integer but example 0: label is a str"):
        disc.train(LABEL_TEXTS, [np.str_("sports"), "food", np.uint8(3), "food"], name="mixed-labels")
    with pytest.raises(maas_client.InvalidArgumentError, match=r"^INVALID_ARGUMENT: example 1: label is the integer"):
        disc.train(LABEL_TEXTS, [-7, 2**70, -7, 2**70], name="huge-labels")


@pytest.mark.parametrize("bad, type_name", [(b"food", "bytes"), (None, "NoneType"), (1.5, "float"),
                                            (float("nan"), "float"), (np.float32(0.25), "float32"), (True, "bool"),
                                            (np.bool_(False), "bool"), (object(), "object"), (("a",), "tuple")])
def test_labels_that_are_not_str_or_integers_are_refused_naming_the_example(disc, bad, type_name):
    """No silent str(): b"food" never becomes the class "b'food'" nor None the class "None"."""
    labels = ["sports", "food", bad, "food"]
    match = rf"^INVALID_ARGUMENT: example 2: label must be a str or an integer, got {type_name}\b"
    with pytest.raises(maas_client.InvalidArgumentError, match=match):
        disc.train(LABEL_TEXTS, labels, name="bad-label")
    with pytest.raises(maas_client.NotFoundError):
        disc.get("bad-label")  # nothing was stored
    disc.train(LABEL_TEXTS[:2], ["sports", "food"], name="label-eval")
    with pytest.raises(maas_client.InvalidArgumentError, match=match):
        disc.evaluate("label-eval", LABEL_TEXTS, labels)
    with pytest.raises(maas_client.InvalidArgumentError,
                       match=rf"^INVALID_ARGUMENT: classes\[1\] must be a str or an integer, got {type_name}\b"):
        disc.train(LABEL_TEXTS[:2], ["sports", "food"], name="bad-classes", classes=["sports", bad, "food"])
    with pytest.raises(maas_client.NotFoundError):
        disc.get("bad-classes")


def test_labels_with_lone_surrogates_are_refused_naming_the_example(disc):
    with pytest.raises(maas_client.InvalidArgumentError, match=r"^INVALID_ARGUMENT: example 1: label.*surrogate"):
        disc.train(LABEL_TEXTS[:2], ["sports", "f\udcffood"], name="surrogate-label")
    with pytest.raises(maas_client.NotFoundError):
        disc.get("surrogate-label")


# -- models -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("via", ["gateway", "services"])
def test_models_list_get_delete_across_services(stack, box, text_model, via):
    if via == "gateway":
        models = maas_client.Models(stack.gateway_process.address)
        targets = [models]
    else:  # a service's endpoint has no Gateway.ListModels: Models asks the service itself
        targets = [maas_client.Models(stack.generative.address), maas_client.Models(stack.discriminative.address)]
    listed = {(m.name, m.kind) for t in targets for m in t.list()}
    assert {("box", "generative"), ("news", "discriminative")} <= listed
    owner = targets[-1]
    details = owner.get("news")
    assert details.info.kind == "discriminative" and list(details.spec.classifier.classes) == \
        text_model["nb"].classes_.tolist()
    assert targets[0].get("box").spec.uniform.high == HIGH.tolist()
    with pytest.raises(maas_client.NotFoundError):
        owner.get("nope")
    for t in targets:
        t.close()


def test_delete_through_models(stack, gen):
    gen.create(gpb.GenerativeModelSpec(uniform=gpb.UniformSpec(low=[0.0], high=[1.0])), "doomed")
    gen.create(gpb.GenerativeModelSpec(uniform=gpb.UniformSpec(low=[0.0], high=[2.0])), "doomed")
    with maas_client.Models(stack.gateway_process.address) as models:
        assert [m.version for m in models.list("doomed", all_versions=True)] == [1, 2]
        assert models.delete("doomed", version=1) == [1]
        assert models.delete("doomed") == [2]
        assert models.list("doomed") == []



def test_a_name_in_both_services_needs_the_kind(stack, gen, disc):
    """As the C++ CLI: Models.get / delete without kind refuse to guess when both services have the name
    (FAILED_PRECONDITION, nothing deleted); a missing model's NotFoundError names the RPC that was asked for."""
    gen.create(gpb.GenerativeModelSpec(uniform=gpb.UniformSpec(low=[0.0], high=[1.0])), "twin")
    disc.train(["a late goal", "fresh bread"], ["sports", "food"], name="twin")
    with maas_client.Models(stack.gateway_process.address) as models:
        for call in (models.get, models.delete):
            with pytest.raises(maas_client.FailedPreconditionError,
                               match="'twin' exists as both a generative and a discriminative model; give the type"):
                call("twin")
        assert sorted(m.kind for m in models.list("twin")) == ["discriminative", "generative"]
        assert models.get("twin", kind="discriminative").info.kind == "discriminative"
        with pytest.raises(maas_client.NotFoundError) as e:
            models.delete("no-such-twin")
        assert e.value.method == "DeleteModel" and "no-such-twin" in e.value.message
        with pytest.raises(maas_client.NotFoundError) as e:
            models.get("no-such-twin")
        assert e.value.method == "GetModel"
        status = maas_client.cli.main(["--target", stack.gateway_process.address, "--progress", "never", "models",
                                       "delete", "twin"], out=io.StringIO())
        assert status == 1
        assert len(models.list("twin")) == 2
        assert models.delete("twin", kind="generative") == [1]
        assert models.delete("twin") == [1]  # only the discriminative one is left
        assert models.list("twin") == []


@pytest.mark.parametrize("name", ["Bad Name!", "My-Model", "a..b", "-a", "a/b", "x" * 64, "y" * 100, "",
                                  'caf\u00e9\n"\\', "\u00e91a"])
def test_an_invalid_name_is_an_invalid_argument_error_in_models_get_and_delete(stack, gen, disc, name):
    """Models.get / delete without kind looked the name up in the listing and answered NOT_FOUND ("model 'My-Model'
    not found") for a name no model can have; they answer the services' INVALID_ARGUMENT, with its message."""
    with pytest.raises(maas_client.InvalidArgumentError) as served:
        disc.delete(name)
    assert served.value.message.startswith("invalid model name ")
    with maas_client.Models(stack.gateway_process.address) as models:
        for call, method in ((models.get, "GetModel"), (models.delete, "DeleteModel")):
            with pytest.raises(maas_client.InvalidArgumentError) as e:
                call(name)
            assert (e.value.message, e.value.method) == (served.value.message, method)


def test_bad_arguments_are_invalid_argument_errors_naming_the_field(gen, box):
    for rows, message in (([], "x has no rows"), ([[]], "rows of no values"), ([[1.0, 2.0, 2.1], [3.0]], "rows"),
                          ([["a", "b", "c"]], "numbers")):
        with pytest.raises(maas_client.InvalidArgumentError, match=message.replace("x ", "rows ")):
            gen.estimate(box, rows)
        with pytest.raises(maas_client.InvalidArgumentError, match=message):
            gen.fit(rows, "uniform", name="bad-rows")
    for kwargs, field in (({"seed": -1}, "seed"), ({"seed": 2**64}, "seed"), ({"start_index": -1}, "start_index"),
                          ({"n": 2.5}, "n"), ({"batch_size": -1}, "batch_size")):
        args = {"n": 2, **kwargs}
        with pytest.raises(maas_client.InvalidArgumentError, match=f"^INVALID_ARGUMENT: {field} must be"):
            gen.sample_array(box, args.pop("n"), **args)
    with pytest.raises(maas_client.InvalidArgumentError, match="seed must be"):
        gen.estimate(box, [[0.5, 0.0, 2.1]], seed=-1)
    with pytest.raises(maas_client.InvalidArgumentError, match="seed must be"):
        gen.fit([[1.0]], "uniform", name="bad-seed", seed=-1)
    with pytest.raises(maas_client.InvalidArgumentError, match="num_samples must be an integer"):
        gen.estimate(box, [[0.5, 0.0, 2.1]], num_samples=1.5)


@pytest.mark.parametrize("field, value, message", [
    ("version", "1", "must be an integer"), ("version", 1.5, "must be an integer"),
    ("version", None, "must be an integer"), ("version", -1, r"must be in \[0, 9223372036854775807\]"),
    ("version", 2**63, r"must be in \[0, 9223372036854775807\]"),
    ("version", -2**70, r"must be in \[0, 9223372036854775807\]")])
def test_discriminative_version_arguments_are_checked_naming_the_field(stack, disc, gen, box, text_model, field,
                                                                       value, message):
    """Every DiscriminativeClient call (and get / delete of both services) checks its integer arguments like
    GenerativeClient: InvalidArgumentError naming the field and its range, never protobuf's bare ValueError /
    TypeError, and before anything is sent."""
    name = text_model["name"]
    match = f"^INVALID_ARGUMENT: {field} {message}"
    calls = {
        "classify": lambda: disc.classify(name, ["goal"], **{field: value}),
        "predict": lambda: disc.predict(name, ["goal"], **{field: value}),
        "predict_proba": lambda: disc.predict_proba(name, ["goal"], **{field: value}),
        "classify_stream": lambda: list(disc.classify_stream(name, ["goal"], **{field: value})),
        "vectorize": lambda: disc.vectorize(name, ["goal"], **{field: value}),
        "feature_names": lambda: disc.feature_names(name, ["goal"], **{field: value}),
        "evaluate": lambda: disc.evaluate(name, ["goal"], ["sports"], **{field: value}),
        "disc.get": lambda: disc.get(name, value),
        "disc.delete": lambda: disc.delete(name, value),
        "gen.get": lambda: gen.get(box, value),
        "gen.delete": lambda: gen.delete(box, value),
    }
    for what, call in calls.items():
        with pytest.raises(maas_client.InvalidArgumentError, match=match):
            call()
            pytest.fail(f"{what} accepted {field}={value!r}")
    assert disc.get(name).info.version == 1 and gen.get(box).info.version == 1  # nothing was deleted
    with maas_client.Models(stack.gateway_process.address) as models:
        for call in (models.get, models.delete):
            with pytest.raises(maas_client.InvalidArgumentError, match=match):
                call(name, value, kind="discriminative")


@pytest.mark.parametrize("value, message", [(-1, r"must be in \[0, 4294967295\]"),
                                            (2**32, r"must be in \[0, 4294967295\]"), (2.0, "must be an integer"),
                                            ("3", "must be an integer")])
def test_explain_features_is_checked_naming_the_field(disc, text_model, value, message):
    with pytest.raises(maas_client.InvalidArgumentError, match=f"^INVALID_ARGUMENT: explain_features {message}"):
        disc.classify(text_model["name"], ["goal"], explain=True, explain_features=value)


@pytest.mark.parametrize("value, message", [(0, r"must be in \[1, "), (-3, r"must be in \[1, "),
                                            ("3", "must be an integer"), (2.5, "must be an integer")])
def test_batch_sizes_are_checked_naming_the_field(disc, text_model, value, message):
    name, match = text_model["name"], f"^INVALID_ARGUMENT: batch_size {message}"
    with pytest.raises(maas_client.InvalidArgumentError, match=match):
        disc.train(["goal"], ["sports"], name="bad-batch-size", batch_size=value)
    with pytest.raises(maas_client.InvalidArgumentError, match=match):
        disc.evaluate(name, ["goal"], ["sports"], batch_size=value)
    with pytest.raises(maas_client.InvalidArgumentError, match=match):
        list(disc.classify_stream(name, ["goal"], batch_size=value))


def test_numpy_integers_are_accepted_for_integer_arguments(disc, text_model):
    name = text_model["name"]
    explained = disc.classify(name, ["goal match"], explain=True, explain_features=np.uint32(2), version=np.int64(1))
    assert explained.model_version == 1
    assert disc.predict(name, ["goal"], version=np.int32(1)).shape == (1,)
    assert disc.get(name, np.int64(1)).info.version == 1
    assert len(list(disc.classify_stream(name, ["a", "b", "c"], batch_size=np.int16(2), version=np.uint8(1)))) == 2


# -- errors and deadlines -----------------------------------------------------------------------------------------
def test_errors_are_typed_with_code_and_message(stack, gen, box):
    with pytest.raises(maas_client.NotFoundError) as e:
        gen.sample_array("no-such-model", 3, seed=1)
    assert e.value.code == grpc.StatusCode.NOT_FOUND and "no-such-model" in e.value.message
    assert isinstance(e.value, LookupError) and e.value.method == "Sample"
    with pytest.raises(maas_client.FailedPreconditionError) as e:
        gen.estimate(box, [[0.0, 1.0]])
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION and "3" in e.value.message
    with pytest.raises(maas_client.InvalidArgumentError) as e:
        gen.estimate(box, [[np.nan, 0.0, 2.1]])
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and e.value.message
    with maas_client.Connection(stack.generative.address) as conn:  # a service has no Gateway.ListModels
        call = conn.channel.unary_unary("/maas.gateway.v1.Gateway/ListModels",
                                        common.ListModelsRequest.SerializeToString,
                                        common.ListModelsResponse.FromString)
        with pytest.raises(maas_client.UnimplementedError) as e:
            conn.unary("ListModels", call, common.ListModelsRequest(), timeout=5)
        assert e.value.code == grpc.StatusCode.UNIMPLEMENTED and isinstance(e.value, NotImplementedError)


def test_calls_take_the_default_deadline_or_their_own(stack, box):
    # The connection's default deadline applies to calls that give none (a client stream whose source outlasts it;
    # not the streams whose length the caller sets, sample and classify_stream: test_client_streams.py)...
    def slow_rows():
        yield np.full((1, 3), 0.25)
        time.sleep(1)
        yield np.full((1, 3), 0.75)

    with maas_client.GenerativeClient(stack.gateway_process.address, timeout=0.5) as hasty:
        with pytest.raises(maas_client.DeadlineExceededError) as e:
            hasty.fit(slow_rows(), "uniform", name="hasty")
        assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED and e.value.method == "FitModel"
        # ... and a call's own timeout overrides it, both ways.
        assert hasty.fit(slow_rows(), "uniform", name="hasty", timeout=10).num_rows == 2
        assert hasty.delete("hasty") == [1]
    with maas_client.GenerativeClient(stack.gateway_process.address) as client:
        with pytest.raises(maas_client.DeadlineExceededError):
            for _ in client.sample(box, 10_000_000, seed=1, batch_size=1, timeout=0.5):
                pass
        with pytest.raises(ValueError, match="timeout must be > 0"):
            client.list(timeout=0)
    with pytest.raises(ValueError, match="timeout must be > 0"):
        maas_client.GenerativeClient(stack.gateway_process.address, timeout=0)


def test_unreachable_server_is_unavailable():
    with maas_client.GenerativeClient("127.0.0.1:1", timeout=5) as client:
        with pytest.raises(maas_client.UnavailableError) as e:
            client.list()
    assert isinstance(e.value, errors.MaasError) and e.value.code == grpc.StatusCode.UNAVAILABLE



@pytest.mark.parametrize("weight, type_name", [("heavy", "str"), (None, "NoneType"), (object(), "object"),
                                               ([1.0], "list")])
def test_a_weight_that_is_not_a_number_is_refused_naming_the_example(disc, weight, type_name):
    """float() of it used to raise a bare ValueError / TypeError naming no example."""
    with pytest.raises(maas_client.InvalidArgumentError,
                       match=rf"^INVALID_ARGUMENT: example 1: weight must be a number, got {type_name}\b"):
        disc.train(LABEL_TEXTS[:2], ["sports", "food"], weights=[1.0, weight], name="bad-weight")
    with pytest.raises(maas_client.NotFoundError):
        disc.get("bad-weight")  # nothing was stored
