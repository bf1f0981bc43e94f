"""Arguments of the wrong type are InvalidArgumentErrors naming the field, before anything is sent.

The README promises InvalidArgumentError (a ValueError) "naming the field and its allowed range, before anything is
sent (never protobuf's bare ValueError / TypeError)"; values of the wrong type (a model name that is not a str, an
estimator that is not a name, labels that are not str to str, None for the texts, ...) got protobuf's bare
TypeError ("bad argument type for built-in operation", naming nothing), an AttributeError, or a TypeError from inside
the request stream. The calls go to a port where nothing listens: a call that got as far as sending would fail
UNAVAILABLE instead."""

import numpy as np
import pytest

import maas_client
from maas_client.pb import discriminative as dpb, generative as gpb

NOWHERE = "127.0.0.1:1"
X = [[0.0, 1.0]]


@pytest.fixture(scope="module")
def gen():
    with maas_client.GenerativeClient(NOWHERE, timeout=5) as client:
        yield client


@pytest.fixture(scope="module")
def disc():
    with maas_client.DiscriminativeClient(NOWHERE, timeout=5) as client:
        yield client


@pytest.fixture(scope="module")
def models():
    with maas_client.Models(NOWHERE, timeout=5) as client:
        yield client


CASES = {
    # generative
    "sample name": (lambda g, d, m: g.sample_array(123, 3), "name must be a str, got int 123"),
    "sample None name": (lambda g, d, m: g.sample_array(None, 3), "name must be a str, got NoneType None"),
    "sample include_latents": (lambda g, d, m: list(g.sample_batches("a", 3, include_latents="yes")),
                               "include_latents must be a bool, got str 'yes'"),
    "estimate estimator": (lambda g, d, m: g.estimate("a", X, 1), "estimator 1 is not one of exact, "),
    "estimate name": (lambda g, d, m: g.estimate(b"a", X), "name must be a str, got bytes b'a'"),
    "estimate ais": (lambda g, d, m: g.estimate("a", X, "ais", ais=5),
                     "ais must be a mapping of AisOptions fields, got int"),
    "estimate rows None": (lambda g, d, m: g.estimate("a", None), r"rows: expected rows of numbers .*got NoneType"),
    "stream_estimate target_standard_error": (
        lambda g, d, m: list(g.stream_estimate("a", X, "prior", 10, target_standard_error="0.1")),
        "target_standard_error must be a number, got str '0.1'"),
    "fit labels": (lambda g, d, m: g.fit(X, "uniform", name="b", labels={"team": 1}),
                   r"labels\['team'\] must be a str, got int 1"),
    "fit labels list": (lambda g, d, m: g.fit(X, "uniform", name="b", labels=["team"]),
                        "labels must be a mapping of str to str, got list"),
    "fit name": (lambda g, d, m: g.fit(X, "uniform", name=1), "name must be a str, got int 1"),
    "fit description": (lambda g, d, m: g.fit(X, "uniform", name="b", description=1),
                        "description must be a str, got int 1"),
    "fit x None": (lambda g, d, m: g.fit(None, "uniform", name="b"), "x: expected rows of numbers .*got NoneType"),
    "gen.create spec": (lambda g, d, m: g.create(5, "b"),
                        "spec must be a GenerativeModelSpec or a CreateModelRequest, got int"),
    "gen.create name": (lambda g, d, m: g.create(gpb.GenerativeModelSpec(), 1), "name must be a str, got int 1"),
    "gen.create labels": (lambda g, d, m: g.create(gpb.GenerativeModelSpec(), "b", labels={1: "a"}),
                          "labels key must be a str, got int 1"),
    "gen.get name": (lambda g, d, m: g.get(1), "name must be a str, got int 1"),
    "gen.delete name": (lambda g, d, m: g.delete(1), "name must be a str, got int 1"),
    "gen.list name_prefix": (lambda g, d, m: g.list(1), "name_prefix must be a str, got int 1"),
    "gen.list all_versions": (lambda g, d, m: g.list(all_versions="x"), "all_versions must be a bool, got str 'x'"),
    "name with a lone surrogate": (lambda g, d, m: g.get("bad\udc00"), "name: lone surrogate U\\+DC00"),
    # discriminative
    "classify None": (lambda g, d, m: d.classify("a", None), "texts must be an iterable, got NoneType None"),
    "classify int": (lambda g, d, m: d.classify("a", 5), "texts must be an iterable, got int 5"),
    "classify name": (lambda g, d, m: d.classify(1, ["a"]), "name must be a str, got int 1"),
    "classify explain": (lambda g, d, m: d.classify("a", ["a"], explain="x"), "explain must be a bool, got str 'x'"),
    "predict None": (lambda g, d, m: d.predict("a", None), "texts must be an iterable, got NoneType None"),
    "classify_stream None": (lambda g, d, m: list(d.classify_stream("a", None)),
                             "texts must be an iterable, got NoneType None"),
    "classify_stream str": (lambda g, d, m: list(d.classify_stream("a", "one text")),
                            "texts must be an iterable of texts, got a single str"),
    "vectorize None": (lambda g, d, m: d.vectorize("a", None), "texts must be an iterable, got NoneType None"),
    "train texts": (lambda g, d, m: d.train(None, ["x"], name="b"), "texts must be an iterable, got NoneType"),
    "train labels": (lambda g, d, m: d.train(["a"], None, name="b"), "labels must be an iterable, got NoneType"),
    "train weights": (lambda g, d, m: d.train(["a"], ["x"], weights=5, name="b"),
                      "weights must be an iterable, got int 5"),
    "train name": (lambda g, d, m: d.train(["a"], ["x"], name=1), "name must be a str, got int 1"),
    "train description": (lambda g, d, m: d.train(["a"], ["x"], name="b", description=1),
                          "description must be a str, got int 1"),
    "train partial": (lambda g, d, m: d.train(["a"], ["x"], name="b", partial="x"),
                      "partial must be a bool, got str 'x'"),
    "train vectorizer": (lambda g, d, m: d.train(["a"], ["x"], name="b", vectorizer=5),
                         "vectorizer must be a VectorizerConfig, got int"),
    "train classifier": (lambda g, d, m: d.train(["a"], ["x"], name="b", classifier=dpb.VectorizerConfig()),
                         "classifier must be a ClassifierConfig, got VectorizerConfig"),
    "train classes": (lambda g, d, m: d.train(["a"], ["x"], name="b", classes=5),
                      "classes must be an iterable, got int 5"),
    "train model_labels": (lambda g, d, m: d.train(["a"], ["x"], name="b", model_labels={"a": None}),
                           r"model_labels\['a'\] must be a str, got NoneType"),
    "evaluate texts": (lambda g, d, m: d.evaluate("a", None, ["x"]), "texts must be an iterable, got NoneType"),
    "evaluate name": (lambda g, d, m: d.evaluate(1, ["a"], ["x"]), "name must be a str, got int 1"),
    "disc.create spec": (lambda g, d, m: d.create(5, "b"), "spec must be a PipelineSpec or a CreateModelRequest"),
    # models
    "Models.get name": (lambda g, d, m: m.get(1), "name must be a str, got int 1"),
    "Models.get version": (lambda g, d, m: m.get("a", "1"), "version must be an integer, got '1'"),
    "Models.delete name": (lambda g, d, m: m.delete(1), "name must be a str, got int 1"),
    "Models.list name_prefix": (lambda g, d, m: m.list(1), "name_prefix must be a str, got int 1"),
    # connection
    "Connection target": (lambda g, d, m: maas_client.Connection(5), "target must be a str .*got int"),
    "Connection server_name": (lambda g, d, m: maas_client.Connection(NOWHERE, tls=True, server_name=5),
                               "server_name must be a str, got int"),
    "Connection token": (lambda g, d, m: maas_client.Connection(NOWHERE, token=5), "token must be a str, got int"),
    "Connection max_message_bytes": (lambda g, d, m: maas_client.Connection(NOWHERE, max_message_bytes="big"),
                                     "max_message_bytes must be an integer, got 'big'"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_wrong_type_is_an_invalid_argument_error_naming_the_field(gen, disc, models, case):
    call, message = CASES[case]
    with pytest.raises(maas_client.InvalidArgumentError, match=f"^INVALID_ARGUMENT: {message}"):
        call(gen, disc, models)


ACCEPTED = {
    "numpy bool include_latents": lambda g, d, m: list(g.sample_batches("a", 3, include_latents=np.True_)),
    "0 and 1 for bools": lambda g, d, m: d.train(["a"], ["x"], name="b", partial=0),
    "numpy str name": lambda g, d, m: g.get(np.str_("a")),
    "numpy float target_standard_error": lambda g, d, m: list(
        g.stream_estimate("a", X, "prior", 10, target_standard_error=np.float32(0.1))),
    "labels of numpy str": lambda g, d, m: g.fit(X, "uniform", name="b", labels={np.str_("k"): np.str_("v")}),
    "a generator of texts": lambda g, d, m: list(d.classify_stream("a", (t for t in ["x", "y"]))),
}


@pytest.mark.parametrize("case", ACCEPTED)
def test_values_of_the_allowed_kinds_get_as_far_as_the_call(gen, disc, models, case):
    """What the checks take: nothing listens, so the call fails UNAVAILABLE once sent."""
    with pytest.raises(maas_client.UnavailableError):
        ACCEPTED[case](gen, disc, models)
