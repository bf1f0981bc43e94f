"""A custom token_pattern with catastrophic backtracking cannot tie the discriminative server up: against the real
binary, a pattern such as (?:a|aa)+c on a document "aaa...a!" (exponential time in Python's re) answers
INVALID_ARGUMENT promptly, naming the document and the per-text match-step limit, in Train, Classify, Vectorize and
Evaluate; the version that was serving keeps serving and the server answers other calls. (The limit's arithmetic and
ordinary patterns on long texts are unit-tested in tests/services/discriminative/token_pattern_test.cc; that normal
patterns are unaffected is test_discriminative_token_pattern_oracle.py, which compares with scikit-learn.)
"""

import grpc
import pytest

from maas.discriminative.v1 import discriminative_pb2 as pb
from maas_testing import TIMEOUT, expect_rpc_error, ref, serve_discriminative

PATTERN = "(?:a|aa)+c"
TEXTS = ["aac b aaac", "c aaaac", "aac aac", "aaaaac c"]
LABELS = ["x", "y", "x", "y"]
HOSTILE = "a" * 400 + "!"
# A generous cap on waiting for each answer (without the limit these calls would not end in our lifetime).
CAP = 6 * TIMEOUT


def config(name):
    return pb.TrainConfig(name=name, vectorizer=pb.VectorizerConfig(
        count=pb.CountVectorizerConfig(text=pb.TextOptions(token_pattern=PATTERN))))


def requests(train_config, texts, labels):
    yield pb.TrainRequest(config=train_config)
    yield pb.TrainRequest(batch=pb.TextBatch(examples=[pb.LabeledText(text=t, label=l)
                                                       for t, l in zip(texts, labels)]))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serve_discriminative(tmp_path_factory.mktemp("disc-token-pattern-limit"))


def test_hostile_pattern_answers_invalid_argument_and_the_server_keeps_serving(server):
    server.Train(requests(config("m"), TEXTS, LABELS), timeout=TIMEOUT)
    before = server.GetModel(pb.GetModelRequest(model=ref("m")), timeout=TIMEOUT)
    expected = server.Classify(pb.ClassifyRequest(model=ref("m"), texts=TEXTS), timeout=TIMEOUT)

    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "token_pattern", "match steps",
                          "catastrophic backtracking", "example 2"):
        server.Train(requests(config("m"), TEXTS[:2] + [HOSTILE], LABELS[:3]), timeout=CAP)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "token_pattern", "match steps", "texts[1]"):
        server.Classify(pb.ClassifyRequest(model=ref("m"), texts=["aac", HOSTILE]), timeout=CAP)
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "token_pattern", "match steps", "texts[0]"):
        server.Vectorize(pb.VectorizeRequest(model=ref("m"), texts=[HOSTILE, "aac"]), timeout=CAP)
    # Evaluate names the example by its place in the stream (the second of the second batch: example 2).
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "token_pattern", "match steps", "example 2: "):
        server.Evaluate(iter([pb.EvaluateRequest(config=pb.EvaluateConfig(model=ref("m"))),
                              pb.EvaluateRequest(batch=pb.TextBatch(examples=[pb.LabeledText(text="ac", label="x")])),
                              pb.EvaluateRequest(batch=pb.TextBatch(
                                  examples=[pb.LabeledText(text="aac", label="x"),
                                            pb.LabeledText(text=HOSTILE, label="y")]))]), timeout=CAP)
    # Many hostile texts in one call: each stops at its own limit, the call still answers.
    with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "match steps", "texts[0]"):
        server.Classify(pb.ClassifyRequest(model=ref("m"), texts=[HOSTILE] * 200), timeout=CAP)

    # The version that was serving is unchanged and answers as before; other models train and serve.
    after = server.GetModel(pb.GetModelRequest(model=ref("m")), timeout=TIMEOUT)
    assert after.info.version == before.info.version == 1 and after.spec == before.spec
    again = server.Classify(pb.ClassifyRequest(model=ref("m"), texts=TEXTS), timeout=TIMEOUT)
    assert again.results == expected.results
    server.Train(requests(pb.TrainConfig(name="other"), ["the cat sat", "a dog barked"], ["cat", "dog"]),
                 timeout=TIMEOUT)
    response = server.Classify(pb.ClassifyRequest(model=ref("other"), texts=["the cat"]), timeout=TIMEOUT)
    assert response.results[0].label == "cat"
