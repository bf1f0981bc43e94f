"""End-to-end tests of maas-gateway on the real binaries: routing, its own Gateway service, health, deadlines,
cancellation, large messages and a backend going away and coming back."""


import threading

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from maas.common.v1 import common_pb2
from maas.discriminative.v1 import discriminative_pb2 as disc
from maas.gateway.v1 import gateway_pb2 as gw
from maas.generative.v1 import generative_pb2 as gen

from maas_testing import (TIMEOUT, Stack, expect_rpc_error, from_matrix, health_status, poll_until, ref, rpc_error,
                          to_matrix, wire_field)

GENERATIVE_SERVICE = "maas.generative.v1.GenerativeService"
DISCRIMINATIVE_SERVICE = "maas.discriminative.v1.DiscriminativeService"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("e2e-gateway")) as s:
        s.gen_gw.CreateModel(gen.CreateModelRequest(name="cube", spec=gen.GenerativeModelSpec(
            uniform=gen.UniformSpec(low=[0.0] * 8, high=[1.0] * 8))), timeout=TIMEOUT)
        s.gen_gw.CreateModel(gen.CreateModelRequest(name="line", spec=gen.GenerativeModelSpec(
            uniform=gen.UniformSpec(low=[-2.0], high=[2.0]))), timeout=TIMEOUT)
        s.gen_gw.CreateModel(gen.CreateModelRequest(name="shared", spec=gen.GenerativeModelSpec(
            uniform=gen.UniformSpec(low=[-2.0], high=[2.0]))), timeout=TIMEOUT)
        for name in ("shared", "words", "words"):
            s.disc_gw.Train(iter([
                disc.TrainRequest(config=disc.TrainConfig(name=name)),
                disc.TrainRequest(batch=disc.TextBatch(examples=[
                    disc.LabeledText(text="the striker scored a goal", label="sports"),
                    disc.LabeledText(text="bake the bread dough", label="cooking")]))]), timeout=TIMEOUT)
        yield s


def test_gateway_health_is_serving(stack):
    assert health_status(stack.gw_channel) == health_pb2.HealthCheckResponse.SERVING


def test_gateway_health_answers_each_routed_service_name(stack):
    """Every binary answers grpc.health.v1 for "" and each service name; through the gateway the routed services'
    names used to answer NOT_FOUND although reflection lists them."""
    for service in (GENERATIVE_SERVICE, DISCRIMINATIVE_SERVICE, "maas.gateway.v1.Gateway"):
        assert health_status(stack.gw_channel, service) == health_pb2.HealthCheckResponse.SERVING, service
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND):
        health_status(stack.gw_channel, "no.such.Service")
    # Health and reflection themselves, on the gateway as on the backends (the gateway said NOT_FOUND for
    # reflection, the 2026-12-06 observability hunt).
    for channel in (stack.gw_channel, stack.gen_channel, stack.disc_channel):
        for service in ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"):
            assert health_status(channel, service) == health_pb2.HealthCheckResponse.SERVING, service


@pytest.mark.parametrize("method", ["/grpc.health.v1.Health/Check", "/maas.gateway.v1.Gateway/ListModels",
                                    f"/{GENERATIVE_SERVICE}/ListModels"])
def test_a_unary_call_without_a_request_message_is_invalid_argument(stack, method):
    """A client that half-closes without sending the request of a unary method made a mistake: the backends say
    INVALID_ARGUMENT, and so does the gateway for the methods it answers itself (it said INTERNAL)."""
    call = stack.gw_channel.stream_stream(method)
    error = rpc_error(lambda: list(call(iter([]), timeout=TIMEOUT)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error


def test_unknown_service_is_unimplemented(stack):
    call = stack.gw_channel.unary_unary("/foo.v1.Bar/Baz")
    with expect_rpc_error(grpc.StatusCode.UNIMPLEMENTED):
        call(b"", timeout=TIMEOUT)
    # An unknown method of a routed service: the backend answers UNIMPLEMENTED, passed through.
    call = stack.gw_channel.unary_unary(f"/{GENERATIVE_SERVICE}/NoSuchMethod")
    error = rpc_error(lambda: call(b"", timeout=TIMEOUT))
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED, error
    stream = stack.gw_channel.unary_stream("/foo.v1.Bar/Stream")
    error = rpc_error(lambda: list(stream(b"", timeout=TIMEOUT)))
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED, error
    assert health_status(stack.gw_channel) == health_pb2.HealthCheckResponse.SERVING


def test_list_models_spans_both_backends(stack):
    listed = stack.gateway.ListModels(common_pb2.ListModelsRequest(), timeout=TIMEOUT)
    got = sorted((m.name, m.version, m.type) for m in listed.models)
    assert got == sorted([("cube", 1, common_pb2.GENERATIVE), ("line", 1, common_pb2.GENERATIVE),
                          ("shared", 1, common_pb2.GENERATIVE), ("shared", 1, common_pb2.DISCRIMINATIVE),
                          ("words", 2, common_pb2.DISCRIMINATIVE)])
    names = [(m.name, m.version) for m in listed.models]
    assert names == sorted(names), "ListModels is not sorted by name then version"
    families = {(m.name, m.type): m.family for m in listed.models}
    assert families[("cube", common_pb2.GENERATIVE)] == "uniform"
    assert families[("words", common_pb2.DISCRIMINATIVE)] == "count+multinomial_nb"
    every = stack.gateway.ListModels(common_pb2.ListModelsRequest(name_prefix="wo", all_versions=True),
                                     timeout=TIMEOUT)
    assert [(m.name, m.version, m.type) for m in every.models] == [
        ("words", 1, common_pb2.DISCRIMINATIVE), ("words", 2, common_pb2.DISCRIMINATIVE)]
    # Each backend's own list is what the gateway shows for its type.
    direct = stack.gen.ListModels(common_pb2.ListModelsRequest(), timeout=TIMEOUT)
    assert [m for m in listed.models if m.type == common_pb2.GENERATIVE] == list(direct.models)


def test_get_backends_shows_both_routes_serving(stack):
    def check():
        response = stack.gateway.GetBackends(gw.GetBackendsRequest(), timeout=TIMEOUT)
        routes = {b.service: b for b in response.backends}
        assert set(routes) == {GENERATIVE_SERVICE, DISCRIMINATIVE_SERVICE}, routes
        assert len(response.backends) == 2
        assert routes[GENERATIVE_SERVICE].type == common_pb2.GENERATIVE
        assert routes[DISCRIMINATIVE_SERVICE].type == common_pb2.DISCRIMINATIVE
        assert routes[GENERATIVE_SERVICE].target == f"ipv4:127.0.0.1:{stack.generative.port}"
        assert routes[DISCRIMINATIVE_SERVICE].target == f"ipv4:127.0.0.1:{stack.discriminative.port}"
        for backend in response.backends:
            assert backend.health == gw.SERVING, backend
            assert backend.detail == ""
    poll_until(check, 15.0, "GetBackends with both routes SERVING")


def test_reflection_lists_the_services(stack):
    expected = {stack.gen_channel: GENERATIVE_SERVICE, stack.disc_channel: DISCRIMINATIVE_SERVICE,
                stack.gw_channel: "maas.gateway.v1.Gateway"}
    for channel, service in expected.items():
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                                   timeout=TIMEOUT))
        names = {s.name for s in responses[0].list_services_response.service}
        assert service in names, names
        # The gateway lists (and describes) health; the services serve it without listing it.
        assert ("grpc.health.v1.Health" in names) == (channel is stack.gw_channel), names
        # Every service listed can be described: the services listed gRPC's default health service,
        # which their reflection could not describe ("Symbol not found", the 2026-12-06 hunt).
        described = list(stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(file_containing_symbol=name) for name in sorted(names)]),
            timeout=TIMEOUT))
        for name, answer in zip(sorted(names), described):
            assert answer.WhichOneof("message_response") == "file_descriptor_response", (name, answer)


def test_gateway_reflection_covers_every_routed_service(stack):
    """grpcurl-style tools see, through the gateway, every service a client can call there, with descriptors."""
    from google.protobuf import descriptor_pb2
    stub = reflection_pb2_grpc.ServerReflectionStub(stack.gw_channel)
    wanted = [GENERATIVE_SERVICE, DISCRIMINATIVE_SERVICE, "maas.gateway.v1.Gateway", "grpc.health.v1.Health"]
    requests = [reflection_pb2.ServerReflectionRequest(list_services="")] + [
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=s) for s in wanted] + [
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Symbol")]
    responses = list(stub.ServerReflectionInfo(iter(requests), timeout=TIMEOUT))
    assert len(responses) == len(requests)
    names = {s.name for s in responses[0].list_services_response.service}
    assert set(wanted) <= names, names
    for service, response in zip(wanted, responses[1:-1]):
        files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for b in response.file_descriptor_response.file_descriptor_proto]
        declared = {f"{f.package}.{s.name}": [m.name for m in s.method] for f in files for s in f.service}
        assert service in declared, (service, list(declared))
    assert "Sample" in declared.get(GENERATIVE_SERVICE, ["Sample"])
    gen_files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for b in responses[1].file_descriptor_response.file_descriptor_proto]
    assert {"maas/generative/v1/generative.proto", "maas/common/v1/common.proto"} <= {f.name for f in gen_files}
    assert responses[-1].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


def test_calls_with_metadata_pass_through(stack):
    metadata = [("x-request-id", "e2e-123"), ("x-maas-test", "e2e")]
    response, call = stack.gen_gw.GetModel.with_call(gen.GetModelRequest(model=ref("line")), timeout=TIMEOUT,
                                                     metadata=metadata)
    assert response.info.name == "line"
    assert call.code() == grpc.StatusCode.OK
    response = stack.disc_gw.Classify(disc.ClassifyRequest(model=ref("words"), texts=["a goal"]), timeout=TIMEOUT,
                                      metadata=metadata)
    assert response.results[0].label == "sports"


def test_large_messages_pass_through(stack):
    """A batch above gRPC's 4 MiB default: the backend frames it below its --max_message_bytes (64 MiB by
    default), so the gateway must accept and forward it."""
    request = gen.SampleRequest(model=ref("line"), num_samples=600_000, seed=3, batch_size=600_000)
    via_gateway = list(stack.gen_gw.Sample(request, timeout=TIMEOUT))
    direct = list(stack.gen.Sample(request, timeout=TIMEOUT))
    assert [b.x.rows for b in via_gateway] == [b.x.rows for b in direct]
    assert sum(b.x.rows for b in direct) == 600_000
    assert all(a == b for a, b in zip(via_gateway, direct))


def test_texts_that_are_not_utf8_pass_through_as_bytes(stack):
    """The services read texts as bytes (decode_error); the gateway forwards them untouched: the same answer
    (strict: the same refusal naming the text) as calling the service directly."""
    config = disc.TrainRequest(config=disc.TrainConfig(name="latin1", vectorizer=disc.VectorizerConfig(
        count=disc.CountVectorizerConfig(text=disc.TextOptions(decode_error=disc.DECODE_ERROR_REPLACE)))))
    stack.disc_gw.Train(iter([config, disc.TrainRequest(batch=disc.TextBatch(examples=[
        disc.LabeledText(text="caf\ufffd cr\ufffdme", label="food"),
        disc.LabeledText(text="free money", label="spam")]))]), timeout=TIMEOUT)
    # ClassifyRequest { model { name }, texts: b"caf\xe9 cr\xe8me" } written byte by byte.
    def request(name):
        return (wire_field(1, wire_field(1, name.encode())) + wire_field(2, b"caf\xe9 cr\xe8me")
                + wire_field(2, b"free \xff money"))

    answers = []
    for channel in (stack.disc_channel, stack.gw_channel):
        call = channel.unary_unary("/maas.discriminative.v1.DiscriminativeService/Classify",
                                   request_serializer=None, response_deserializer=disc.ClassifyResponse.FromString)
        answers.append(call(request("latin1"), timeout=TIMEOUT))
        with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "texts[0]", "UTF-8"):
            call(request("words"), timeout=TIMEOUT)
    assert answers[0] == answers[1]
    assert [r.label for r in answers[0].results] == ["food", "spam"]


def test_short_deadline_is_deadline_exceeded(stack):
    request = gen.SampleRequest(model=ref("cube"), num_samples=5_000_000, seed=1)
    with expect_rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED):
        list(stack.gen_gw.Sample(request, timeout=0.001))
    # A deadline that expires mid-stream (5M x 8 doubles = 320 MB cannot arrive in 0.3 s).
    received = 0
    with expect_rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED):
        for batch in stack.gen_gw.Sample(request, timeout=0.3):
            received += batch.x.rows
    assert received < 5_000_000
    assert health_status(stack.gw_channel) == health_pb2.HealthCheckResponse.SERVING
    assert health_status(stack.gen_channel) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("stub_name", ["gen_gw", "gen"])
def test_cancel_a_big_sample_stream(stack, stub_name):
    stub = getattr(stack, stub_name)
    request = gen.SampleRequest(model=ref("cube"), num_samples=5_000_000, seed=2, batch_size=1000)
    call = stub.Sample(request, timeout=60.0)
    first = [next(call) for _ in range(3)]
    assert [b.start_index for b in first] == [0, 1000, 2000]
    call.cancel()
    error = rpc_error(lambda: [None for _ in call])
    assert error.code() == grpc.StatusCode.CANCELLED, error
    # The servers stay healthy and serve the same stream again.
    assert health_status(stack.gw_channel) == health_pb2.HealthCheckResponse.SERVING
    assert health_status(stack.gen_channel) == health_pb2.HealthCheckResponse.SERVING
    again = list(stub.Sample(gen.SampleRequest(model=ref("cube"), num_samples=3000, seed=2, batch_size=1000),
                             timeout=TIMEOUT))
    assert all(a == b for a, b in zip(again, first))


def test_many_concurrent_calls(stack):
    """The proxy interleaves calls of all kinds on one channel."""
    futures = [stack.gen_gw.GetModel.future(gen.GetModelRequest(model=ref("cube")), timeout=TIMEOUT)
               for _ in range(50)]
    futures += [stack.disc_gw.Classify.future(disc.ClassifyRequest(model=ref("words"), texts=["bread"]),
                                              timeout=TIMEOUT) for _ in range(50)]
    streams = [stack.gen_gw.Sample(gen.SampleRequest(model=ref("line"), num_samples=2000, seed=s, batch_size=100),
                                   timeout=TIMEOUT) for s in range(5)]
    samples = [np.concatenate([from_matrix(b.x) for b in stream]) for stream in streams]
    results = [f.result() for f in futures]
    assert all(r.info.name == "cube" for r in results[:50])
    assert all(r.results[0].label == "cooking" for r in results[50:])
    for s, x in enumerate(samples):
        direct = list(stack.gen.Sample(gen.SampleRequest(model=ref("line"), num_samples=2000, seed=s),
                                       timeout=TIMEOUT))
        assert np.concatenate([from_matrix(b.x) for b in direct]).tobytes() == x.tobytes()


def test_a_backend_going_away_and_coming_back(stack):
    """Last in the module: stops the discriminative backend, then restarts it on the same port. A health Watch
    stream (answered by the gateway's proxy) follows the gateway's status all along."""
    watch = health_pb2_grpc.HealthStub(stack.gw_channel).Watch(health_pb2.HealthCheckRequest(service=""),
                                                               timeout=120)
    watched = []

    def follow():
        try:
            for update in watch:
                watched.append(update.status)
        except grpc.RpcError as e:
            watched.append(e.code())
    follower = threading.Thread(target=follow, daemon=True)
    follower.start()

    def first_status():
        assert watched, "no status yet"
        assert watched[0] == health_pb2.HealthCheckResponse.SERVING, watched
    poll_until(first_status, 10.0, "the Watch stream's first status")
    assert stack.stop_discriminative() == 0, "maas-discriminative did not exit with code 0 on SIGTERM"

    with expect_rpc_error(grpc.StatusCode.UNAVAILABLE):
        stack.disc_gw.Classify(disc.ClassifyRequest(model=ref("words"), texts=["bread"]), timeout=TIMEOUT)
    with expect_rpc_error(grpc.StatusCode.UNAVAILABLE):
        list(stack.disc_gw.ClassifyStream(iter([disc.ClassifyRequest(model=ref("words"), texts=["bread"])]),
                                          timeout=TIMEOUT))
    # Generative calls through the same gateway still work.
    assert stack.gen_gw.GetModel(gen.GetModelRequest(model=ref("line")), timeout=TIMEOUT).info.name == "line"
    x = np.array([[0.5]])
    response = stack.gen_gw.EstimateLogLikelihood(gen.EstimateLogLikelihoodRequest(
        model=ref("line"), x=to_matrix(x), estimator=gen.EXACT), timeout=TIMEOUT)
    assert abs(response.rows[0].log_likelihood - (-np.log(4.0))) <= 1e-12
    # The registry view answers what the generative backend has and names the missing backend.
    partial = stack.gateway.ListModels(common_pb2.ListModelsRequest(), timeout=TIMEOUT)
    assert {m.type for m in partial.models} == {common_pb2.GENERATIVE}
    assert len(partial.missing_backends) == 1 and DISCRIMINATIVE_SERVICE in partial.missing_backends[0]

    def discriminative_not_serving():
        routes = {b.service: b for b in
                  stack.gateway.GetBackends(gw.GetBackendsRequest(), timeout=TIMEOUT).backends}
        assert routes[DISCRIMINATIVE_SERVICE].health == gw.NOT_SERVING, routes[DISCRIMINATIVE_SERVICE]
        assert routes[DISCRIMINATIVE_SERVICE].detail, "NOT_SERVING without a detail"
        assert routes[GENERATIVE_SERVICE].health == gw.SERVING, routes[GENERATIVE_SERVICE]
    poll_until(discriminative_not_serving, 15.0, "GetBackends showing the stopped backend NOT_SERVING")

    def gateway_not_serving():
        assert health_status(stack.gw_channel) == health_pb2.HealthCheckResponse.NOT_SERVING
        # Each routed service's name follows its own backend.
        assert health_status(stack.gw_channel, DISCRIMINATIVE_SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert health_status(stack.gw_channel, GENERATIVE_SERVICE) == health_pb2.HealthCheckResponse.SERVING
    poll_until(gateway_not_serving, 15.0, "gateway health NOT_SERVING while a route has no backend")

    stack.start_discriminative_again()
    response = poll_until(
        lambda: stack.disc_gw.Classify(disc.ClassifyRequest(model=ref("words"), texts=["bread"]), timeout=2.0),
        10.0, "Classify through the gateway after the backend restarted")
    assert response.results[0].label == "cooking"

    def gateway_serving():
        assert health_status(stack.gw_channel) == health_pb2.HealthCheckResponse.SERVING
    poll_until(gateway_serving, 15.0, "gateway health SERVING again")

    def watch_saw_it_all():
        serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
        assert not_serving in watched, watched
        assert serving in watched[watched.index(not_serving):], watched
    poll_until(watch_saw_it_all, 10.0, "the Watch stream's NOT_SERVING, then SERVING")
    watch.cancel()
    follower.join(timeout=10)
    assert watched[-1] == grpc.StatusCode.CANCELLED, watched[-3:]
    # The registry view asks each backend over the gateway's own channel, which may still be reconnecting (its
    # backoff, at most --reconnect_backoff_max_ms) when the data plane and the health monitor already reach the
    # restarted backend: until then it names the backend in missing_backends (a CI run under load saw that).
    def both_listed():
        listed = stack.gateway.ListModels(common_pb2.ListModelsRequest(), timeout=TIMEOUT)
        assert {m.type for m in listed.models} == {common_pb2.GENERATIVE, common_pb2.DISCRIMINATIVE}, \
            list(listed.missing_backends)
        assert not listed.missing_backends
    poll_until(both_listed, 10.0, "ListModels through the gateway listing the restarted backend's models")
