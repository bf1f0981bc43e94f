"""issue 5 item 1 with the real binaries: one unreadable message in a client or bidi stream (invalid UTF-8 in a
string field that is not a text, or random bytes; texts are read as bytes, see test_e2e_discriminative_bad_input.py) used to end the stream as if the client had finished, and the call answered OK
with the data before it (Train -> num_documents=20, FitModel kept 2 of 4 rows, ClassifyStream gave one response
and OK). Now the call fails with INVALID_ARGUMENT and nothing is stored, directly and through the gateway. The
messages are sent as raw bytes (a typed stub cannot build them)."""

import grpc
import pytest

from maas.common.v1 import common_pb2
from maas.discriminative.v1 import discriminative_pb2 as disc
from maas.generative.v1 import generative_pb2 as gen

from maas_testing import TIMEOUT, Stack, ref, wire_field

DISC = "/maas.discriminative.v1.DiscriminativeService/"
GEN = "/maas.generative.v1.GenerativeService/"


def invalid_utf8_batch():
    """TrainRequest { batch: TextBatch { examples: LabeledText { text: "bread", label: <invalid UTF-8> } } }"""
    example = wire_field(1, b"bread") + wire_field(2, b"f\xc3\x28od")
    return wire_field(2, wire_field(1, example))


RANDOM = b"\xff\xfe\x07\x01\x80\x80\x80"


def batch(first, n):
    examples = [disc.LabeledText(text=("goal match team " if i % 2 == 0 else "bread oven bake ") + str(i),
                                 label="sports" if i % 2 == 0 else "food") for i in range(first, first + n)]
    return disc.TrainRequest(batch=disc.TextBatch(examples=examples)).SerializeToString()


def train_config(name):
    return disc.TrainRequest(config=disc.TrainConfig(name=name)).SerializeToString()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("e2e-bad-streams")) as s:
        yield s


def raw_stream_unary(channel, method, messages, response_type):
    call = channel.stream_unary(method, request_serializer=None, response_deserializer=response_type.FromString)
    return call(iter(messages), timeout=TIMEOUT)


@pytest.mark.parametrize("via", ["direct", "gateway"])
@pytest.mark.parametrize("bad", [invalid_utf8_batch(), RANDOM], ids=["invalid-utf8", "random-bytes"])
def test_train_with_an_unreadable_message_fails_and_stores_nothing(stack, via, bad):
    channel = stack.disc_channel if via == "direct" else stack.gw_channel
    name = f"bad-train-{via}-{len(bad)}"
    with pytest.raises(grpc.RpcError) as error:
        raw_stream_unary(channel, DISC + "Train", [train_config(name), batch(0, 20), bad, batch(20, 25)],
                         disc.TrainResponse)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value
    assert "message 3 of the stream" in error.value.details()
    listed = stack.disc.ListModels(common_pb2.ListModelsRequest(), timeout=TIMEOUT)
    assert name not in [m.name for m in listed.models]
    assert not (stack.discriminative_dir / name).exists()


def test_fit_with_an_unreadable_message_fails_and_stores_nothing(stack):
    config = gen.FitModelRequest(config=gen.FitConfig(name="bad-fit", uniform=gen.UniformFit())).SerializeToString()
    rows = [gen.FitModelRequest(rows=common_pb2.Matrix(rows=1, cols=2, values=v)).SerializeToString()
            for v in ([0.0, 0.0], [1.0, 1.0], [5.0, 5.0], [6.0, 6.0])]
    with pytest.raises(grpc.RpcError) as error:
        raw_stream_unary(stack.gen_channel, GEN + "FitModel", [config, rows[0], rows[1], RANDOM, rows[2], rows[3]],
                         gen.FitModelResponse)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value
    assert not (stack.generative_dir / "bad-fit").exists()
    fitted = raw_stream_unary(stack.gen_channel, GEN + "FitModel", [config] + rows, gen.FitModelResponse)
    assert fitted.trace.num_rows == 4


def test_classify_stream_with_an_unreadable_message_fails_after_the_good_ones(stack):
    raw_stream_unary(stack.disc_channel, DISC + "Train", [train_config("bidi"), batch(0, 20)], disc.TrainResponse)
    good = disc.ClassifyRequest(model=ref("bidi"), texts=["goal"]).SerializeToString()
    bad = wire_field(1, wire_field(1, b"bi\xc3\x28di")) + wire_field(2, b"goal")  # the model name is invalid UTF-8
    call = stack.disc_channel.stream_stream(DISC + "ClassifyStream", request_serializer=None,
                                            response_deserializer=disc.ClassifyResponse.FromString)
    responses = call(iter([good, bad, good, good]), timeout=TIMEOUT)
    received = []
    with pytest.raises(grpc.RpcError) as error:
        for response in responses:
            received.append(response)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value
    assert "message 2 of the stream" in error.value.details()
    assert len(received) == 1
