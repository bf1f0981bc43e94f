"""Issue 8's "Bad input" list for the discriminative service, against the real binary: each case answers a clear
status whose message gives the reason (scikit-learn's own message where scikit-learn refuses the same input,
taken from scikit-learn at test time), and the version that was serving before keeps serving, unchanged.

Covered here: an empty training stream; a vocabulary empty after min_df/max_df pruning or after stop words; a
single class (accepted, as scikit-learn accepts it: every probability 1); min_df > max_df; n_features out of range;
a model too large for the server; partial on a vocabulary-learning vectorizer; tf-idf with smooth_idf false and a
feature no training text has (refused on purpose: scikit-learn fits it with idf_ = inf, then refuses every text
that has the feature); texts above --max_text_bytes in
Train, Classify, Vectorize and Evaluate; invalid UTF-8 in texts, which the service reads as bytes (a typed client
of most languages cannot send it, so the messages are written byte by byte): decode_error strict names the text,
replace and ignore equal scikit-learn's on the same bytes; invalid UTF-8 in another string field (a label) makes the
message unreadable, refused naming the message (see also test_e2e_bad_streams.py). max_features 0 is the proto's "no limit" (the CLI refuses
--max_features 0); token_pattern errors are tested with token_pattern support.
"""

import warnings

import grpc
import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfVectorizer
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import make_pipeline

from maas.discriminative.v1 import discriminative_pb2 as pb
from maas.discriminative.v1 import discriminative_pb2_grpc
from maas_testing import TIMEOUT, channel_to, expect_rpc_error, ref, start_discriminative, wait_serving, \
    wire_field

MAX_TEXT_BYTES = 200
TEXTS = ["the cat sat on the mat", "a dog barked at the cat", "the cat purred", "dogs bark loudly"]
LABELS = ["cat", "dog", "cat", "dog"]


@pytest.fixture(scope="module")
def process(tmp_path_factory):
    process = start_discriminative(tmp_path_factory.mktemp("disc-bad-input"),
                                   extra=["--max_text_bytes", str(MAX_TEXT_BYTES), "--max_model_cells", "100000"])
    yield process
    assert process.stop() == 0


@pytest.fixture(scope="module")
def target(process):
    return f"127.0.0.1:{process.port}"


@pytest.fixture(scope="module")
def server(process):
    channel = channel_to(process)
    wait_serving(channel)
    stub = discriminative_pb2_grpc.DiscriminativeServiceStub(channel)
    # The version every refused call must leave serving.
    stub.Train(requests(pb.TrainConfig(name="m"), TEXTS, LABELS), timeout=TIMEOUT)
    before = stub.GetModel(pb.GetModelRequest(model=ref("m")), timeout=TIMEOUT)
    yield stub
    after = stub.GetModel(pb.GetModelRequest(model=ref("m")), timeout=TIMEOUT)
    assert after.info.version == before.info.version == 1 and after.spec == before.spec
    response = stub.Classify(pb.ClassifyRequest(model=ref("m"), texts=["the cat"]), timeout=TIMEOUT)
    assert response.model_version == 1 and response.results[0].label == "cat"
    channel.close()


def requests(config, texts, labels):
    yield pb.TrainRequest(config=config)
    if texts:
        yield pb.TrainRequest(batch=pb.TextBatch(examples=[pb.LabeledText(text=t, label=l)
                                                           for t, l in zip(texts, labels)]))


def sklearn_error(fn):
    with pytest.raises(ValueError) as e:
        fn()
    return str(e.value)


def count(**kw):
    return pb.VectorizerConfig(count=pb.CountVectorizerConfig(**kw))


def test_empty_training_stream(server):
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "no training examples"):
        server.Train(requests(pb.TrainConfig(name="m"), [], []), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "empty Train stream"):
        server.Train(iter([]), timeout=TIMEOUT)


def test_vocabulary_empty_after_pruning_or_stop_words(server):
    docs = ["aa bb", "cc dd", "ee ff"]
    message = sklearn_error(lambda: CountVectorizer(min_df=3).fit(docs))
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, message):
        server.Train(requests(pb.TrainConfig(name="m", vectorizer=count(min_df=pb.DocumentFrequency(count=3))),
                              docs, ["x", "y", "x"]), timeout=TIMEOUT)
    docs = ["the and", "of the", "and of"]
    message = sklearn_error(lambda: CountVectorizer(stop_words="english").fit(docs))
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, message):
        server.Train(requests(pb.TrainConfig(name="m", vectorizer=count(text=pb.TextOptions(stop_words="english"))),
                              docs, ["x", "y", "x"]), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "empty vocabulary"):
        server.Train(requests(pb.TrainConfig(name="m", vectorizer=count(text=pb.TextOptions(
            stop_word_list=["cat", "dog", "the", "sat", "on", "mat", "barked", "at", "purred", "dogs", "bark",
                            "loudly"]))), TEXTS, LABELS), timeout=TIMEOUT)


def test_min_df_above_max_df(server):
    docs = ["aa bb", "aa cc", "bb cc"]
    message = sklearn_error(lambda: CountVectorizer(min_df=3, max_df=2).fit(docs))
    config = pb.TrainConfig(name="m", vectorizer=count(min_df=pb.DocumentFrequency(count=3),
                                                      max_df=pb.DocumentFrequency(count=2)))
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, message):
        server.Train(requests(config, docs, ["x", "y", "x"]), timeout=TIMEOUT)
    config = pb.TrainConfig(name="m", vectorizer=count(min_df=pb.DocumentFrequency(fraction=0.9),
                                                      max_df=pb.DocumentFrequency(fraction=0.1)))
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, message):
        server.Train(requests(config, docs, ["x", "y", "x"]), timeout=TIMEOUT)


def test_n_features_out_of_range(server):
    message = sklearn_error(lambda: HashingVectorizer(n_features=2**31 - 1).fit(["aa"]))
    assert "n_features" in message
    config = pb.TrainConfig(name="m", vectorizer=pb.VectorizerConfig(
        hashing=pb.HashingVectorizerConfig(n_features=2**31 - 1)))
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "n_features"):
        server.Train(requests(config, TEXTS, LABELS), timeout=TIMEOUT)
    # In range for scikit-learn, but classes x n_features above this server's --max_model_cells.
    config = pb.TrainConfig(name="m", vectorizer=pb.VectorizerConfig(
        hashing=pb.HashingVectorizerConfig(n_features=2**20, alternate_sign=False)))
    with expect_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "--max_model_cells"):
        server.Train(requests(config, TEXTS, LABELS), timeout=TIMEOUT)


def test_single_class_is_accepted_as_scikit_learn_does(server):
    response = server.Train(requests(pb.TrainConfig(name="single"), TEXTS, ["only"] * 4), timeout=TIMEOUT)
    assert list(response.summary.classes) == ["only"]
    cv = CountVectorizer()
    nb = MultinomialNB().fit(cv.fit_transform(TEXTS), ["only"] * 4)
    got = server.Classify(pb.ClassifyRequest(model=ref("single"), texts=["a cat", "zebra"]), timeout=TIMEOUT)
    expected = nb.predict_proba(cv.transform(["a cat", "zebra"]))
    assert [r.label for r in got.results] == ["only", "only"]
    np.testing.assert_array_equal([[s.probability for s in r.scores] for r in got.results], expected)


def test_partial_on_a_vocabulary_learning_vectorizer(server):
    config = pb.TrainConfig(name="m", partial=True, classes=["cat", "dog"])
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "partial", "learns its vocabulary"):
        server.Train(requests(config, TEXTS, LABELS), timeout=TIMEOUT)


def test_tfidf_without_smooth_idf_refuses_a_feature_no_training_text_has(server):
    # Deliberately stricter than scikit-learn: it fits such a feature (a RuntimeWarning, idf_ = inf) and then
    # refuses every text that has it (ValueError: the tf-idf value is inf). The refusal must say so, and what to do
    # instead.
    vocabulary = ["zzz", "cat", "dog", "the"]
    pipeline = make_pipeline(TfidfVectorizer(vocabulary=vocabulary, smooth_idf=False), MultinomialNB())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pipeline.fit(TEXTS, LABELS)
        assert np.isinf(pipeline[0].idf_[0]) and np.isfinite(pipeline[0].idf_[1:]).all()
        assert "infinity" in sklearn_error(lambda: pipeline.predict_proba(["zzz cat"]))
        assert np.isfinite(pipeline.predict_proba(["the cat"])).all()
    config = pb.TrainConfig(name="m", vectorizer=pb.VectorizerConfig(
        count=pb.CountVectorizerConfig(vocabulary=vocabulary), tfidf=pb.TfidfConfig(smooth_idf=False)))
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "'zzz'", "no training document", "smooth_idf",
                          "idf_ = inf", "contains infinity", "vocabulary"):
        server.Train(requests(config, TEXTS, LABELS), timeout=TIMEOUT)
    # Hashing: buckets no training text hits.
    config = pb.TrainConfig(name="m", vectorizer=pb.VectorizerConfig(
        hashing=pb.HashingVectorizerConfig(n_features=64, alternate_sign=False),
        tfidf=pb.TfidfConfig(smooth_idf=False)))
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "no training document", "smooth_idf", "contains infinity",
                          "use_idf"):
        server.Train(requests(config, TEXTS, LABELS), timeout=TIMEOUT)
    # The same without unseen features, or with smooth_idf, trains.
    for vectorizer in (pb.VectorizerConfig(count=pb.CountVectorizerConfig(vocabulary=vocabulary[1:]),
                                           tfidf=pb.TfidfConfig(smooth_idf=False)),
                       pb.VectorizerConfig(count=pb.CountVectorizerConfig(vocabulary=vocabulary),
                                           tfidf=pb.TfidfConfig(smooth_idf=True))):
        server.Train(requests(pb.TrainConfig(name="tfidf-ok", vectorizer=vectorizer), TEXTS, LABELS), timeout=TIMEOUT)


def test_texts_above_max_text_bytes(server):
    long_text = "word " * (MAX_TEXT_BYTES // 5 + 1)
    assert len(long_text.encode()) > MAX_TEXT_BYTES
    with expect_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "--max_text_bytes", "example 2"):
        server.Train(requests(pb.TrainConfig(name="m"), TEXTS[:2] + [long_text], LABELS[:3]), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "--max_text_bytes", "texts[1]"):
        server.Classify(pb.ClassifyRequest(model=ref("m"), texts=["the cat", long_text]), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "--max_text_bytes", "texts[0]"):
        server.Vectorize(pb.VectorizeRequest(model=ref("m"), texts=[long_text]), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "--max_text_bytes", "example 0"):
        server.Evaluate(iter([pb.EvaluateRequest(config=pb.EvaluateConfig(model=ref("m"))),
                              pb.EvaluateRequest(batch=pb.TextBatch(
                                  examples=[pb.LabeledText(text=long_text, label="cat")]))]), timeout=TIMEOUT)


def raw_train(target, messages):
    with grpc.insecure_channel(target) as channel:
        call = channel.stream_unary("/maas.discriminative.v1.DiscriminativeService/Train",
                                    request_serializer=lambda b: b, response_deserializer=pb.TrainResponse.FromString)
        return call(iter(messages), timeout=TIMEOUT)


def raw_batch(texts, labels):
    """TrainRequest { batch { examples { text, label } ... } } with texts given as bytes, written byte by byte."""
    examples = b"".join(wire_field(1, wire_field(1, t) + wire_field(2, l.encode())) for t, l in zip(texts, labels))
    return wire_field(2, examples)


def raw_classify(target, name, texts):
    """ClassifyRequest { model { name }, texts... } with texts given as bytes."""
    message = wire_field(1, wire_field(1, name.encode())) + b"".join(wire_field(2, t) for t in texts)
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary("/maas.discriminative.v1.DiscriminativeService/Classify",
                                   request_serializer=lambda b: b,
                                   response_deserializer=pb.ClassifyResponse.FromString)
        return call(message, timeout=TIMEOUT)


BROKEN = [b"the cat sat on the \xc3mat", b"a dog barked \xff\xfe at the cat", b"the c\xe9t purred",
          b"dogs bark loudly \xed\xa0\x80", b"caf\xc3\xa9 cat \xf0\x9f\x98"]
BROKEN_LABELS = ["cat", "dog", "cat", "dog", "cat"]


def test_a_text_that_is_not_utf8_is_refused_under_strict_naming_it(server, target):
    config = pb.TrainRequest(config=pb.TrainConfig(name="m")).SerializeToString()
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "UTF-8", "byte offset"):
        raw_train(target, [config, raw_batch(BROKEN[:1], ["cat"])])
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "texts[1]", "UTF-8", "byte offset 13"):
        raw_classify(target, "m", [b"the cat", BROKEN[1]])


def test_a_label_that_is_not_utf8_makes_the_message_unreadable(server, target):
    config = pb.TrainRequest(config=pb.TrainConfig(name="m")).SerializeToString()
    bad_label = wire_field(2, wire_field(1, wire_field(1, b"the cat") + wire_field(2, b"c\xc3\x28t")))
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "message 2", "TrainRequest"):
        raw_train(target, [config, bad_label])


@pytest.mark.parametrize("decode_error", ["replace", "ignore"])
def test_decode_error_over_grpc_equals_scikit_learn_on_the_same_bytes(server, target, decode_error):
    """Train and Classify with texts that are not UTF-8: the same vocabulary and probabilities as scikit-learn's
    CountVectorizer(decode_error=...) + MultinomialNB fitted on the same bytes."""
    name = f"decode-{decode_error}"
    mode = pb.DECODE_ERROR_REPLACE if decode_error == "replace" else pb.DECODE_ERROR_IGNORE
    config = pb.TrainConfig(name=name, vectorizer=pb.VectorizerConfig(
        count=pb.CountVectorizerConfig(text=pb.TextOptions(decode_error=mode))))
    raw_train(target, [pb.TrainRequest(config=config).SerializeToString(), raw_batch(BROKEN, BROKEN_LABELS)])
    reference = CountVectorizer(decode_error=decode_error)
    counts = reference.fit_transform(BROKEN)
    nb = MultinomialNB().fit(counts, BROKEN_LABELS)
    spec = server.GetModel(pb.GetModelRequest(model=ref(name)), timeout=TIMEOUT).spec
    assert list(spec.vectorizer.vocabulary) == list(reference.get_feature_names_out())
    queries = BROKEN + [b"\xc3\x28 cat dog \xe9", b"mat \xff"]
    got = raw_classify(target, name, queries)
    want = nb.predict_proba(reference.transform(queries))
    for result, row in zip(got.results, want):
        assert result.label == nb.classes_[np.argmax(row)]
        np.testing.assert_allclose([score.probability for score in result.scores], row, rtol=1e-12, atol=1e-15)
