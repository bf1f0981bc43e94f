"""--metrics_port: every binary serves Prometheus text on /metrics, counting calls by method and status code
(also streaming calls, and calls that passed through the gateway on both hops)."""

import re
import time
import urllib.request

import grpc
import pytest

from maas.generative.v1 import generative_pb2 as gen
from maas.generative.v1 import generative_pb2_grpc

from maas_testing import (TIMEOUT, Stack, channel_to, expect_rpc_error, poll_until, ref, start_gateway,
                          start_generative)

METRICS_URL = re.compile(r"metrics: http://[^:]+:(\d+)/metrics")


def scrape(process):
    match = METRICS_URL.search(process.stderr_text())
    assert match, f"{process.name} did not print its metrics address:\n{process.stderr_text()}"
    with urllib.request.urlopen(f"http://127.0.0.1:{match.group(1)}/metrics", timeout=TIMEOUT) as reply:
        assert reply.status == 200
        return reply.read().decode()


def count(text, server, method, code):
    pattern = (r'maas_rpc_requests_total\{server="%s",code="%s",method="%s"\} (\d+)'
               % (re.escape(server), code, re.escape(method)))
    match = re.search(pattern, text)
    return int(match.group(1)) if match else 0


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("e2e-metrics"), generative_args=["--metrics_port", "0"]) as s:
        yield s


def test_calls_are_counted_by_method_and_code(stack):
    spec = gen.GenerativeModelSpec(uniform=gen.UniformSpec(low=[0.0], high=[1.0]))
    stack.gen.CreateModel(gen.CreateModelRequest(name="counted", spec=spec), timeout=TIMEOUT)
    for _ in range(3):
        list(stack.gen_gw.Sample(gen.SampleRequest(model=ref("counted"), num_samples=10, seed=1),
                                 timeout=TIMEOUT))
    with expect_rpc_error(grpc.StatusCode.NOT_FOUND):
        stack.gen.GetModel(gen.GetModelRequest(model=ref("absent")), timeout=TIMEOUT)

    sample = "/maas.generative.v1.GenerativeService/Sample"
    text = ""
    deadline = time.monotonic() + 30  # a generous cap: a call is counted when its last server-side object
    while time.monotonic() < deadline:  # goes away, which a loaded machine may delay
        text = scrape(stack.generative)
        if (count(text, "maas-generative", sample, "OK") == 3
                and count(text, "maas-generative", "/maas.generative.v1.GenerativeService/GetModel", "NOT_FOUND")):
            break
        time.sleep(0.05)
    assert count(text, "maas-generative", sample, "OK") == 3
    assert count(text, "maas-generative", "/maas.generative.v1.GenerativeService/CreateModel", "OK") == 1
    assert count(text, "maas-generative", "/maas.generative.v1.GenerativeService/GetModel", "NOT_FOUND") == 1
    assert 'maas_rpc_duration_seconds_count{server="maas-generative",method="%s"} 3' % sample in text
    assert 'maas_rpc_in_flight{server="maas-generative"}' in text
    # Per model (bounded label set): requests by code, samples produced (3 streams x 10).
    assert 'maas_model_requests_total{server="maas-generative",code="OK",model="counted"} 4' in text
    # A name only ever refused takes no label of its own (made-up names must not crowd out real models).
    assert 'maas_model_requests_total{server="maas-generative",code="NOT_FOUND",model="_other"} 1' in text
    assert 'model="absent"' not in text
    assert 'maas_model_samples_total{server="maas-generative",model="counted"} 30' in text
    # Model loads are timed per model: CreateModel loaded the new version into the cache once; the Samples reused it.
    assert 'maas_model_load_seconds_count{server="maas-generative",model="counted"} 1' in text
    assert re.search(r'^maas_model_cache_versions\{server="maas-generative"\} 1$', text, re.M)
    assert float(re.search(r'^maas_model_cache_bytes\{server="maas-generative"\} (\S+)$', text, re.M).group(1)) > 0
    # Freed memory the process keeps in RAM (stacks included): measured, so a number, and far below 1 GiB here.
    free_resident = float(re.search(r'^maas_heap_free_resident_bytes\{server="maas-generative"\} (\S+)$', text,
                                    re.M).group(1))
    assert 0 < free_resident < 2**30
    # The freed-memory releaser's counters (on by default, --malloc_release_mb 128): whether it has released yet
    # depends on the heap, but the three are there, as counters.
    for name in ("maas_heap_releases_total", "maas_heap_released_bytes_total", "maas_heap_release_seconds_total"):
        assert f"# TYPE {name} counter" in text
        assert float(re.search(r'^%s\{server="maas-generative"\} (\S+)$' % name, text, re.M).group(1)) >= 0


def test_refused_names_take_no_label_and_a_model_named_other_keeps_its_own(stack):
    # 210 made-up names refused RESOURCE_EXHAUSTED (num_samples over the limit, checked before the model is looked
    # up) used to take the 200 label slots, leaving every real model counted as "other"; and a real model named
    # "other" shared its series with them.
    for i in range(210):
        with expect_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED):
            list(stack.gen.Sample(gen.SampleRequest(model=ref(f"fake-{i}"), num_samples=10**12), timeout=TIMEOUT))
    spec = gen.GenerativeModelSpec(uniform=gen.UniformSpec(low=[0.0], high=[1.0]))
    for name in ("real-late", "other"):
        stack.gen.CreateModel(gen.CreateModelRequest(name=name, spec=spec), timeout=TIMEOUT)
        list(stack.gen.Sample(gen.SampleRequest(model=ref(name), num_samples=7, seed=1), timeout=TIMEOUT))
    text = ""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = scrape(stack.generative)
        if 'maas_model_samples_total{server="maas-generative",model="other"} 7' in text:
            break
        time.sleep(0.05)
    assert 'maas_model_samples_total{server="maas-generative",model="real-late"} 7' in text
    assert 'maas_model_samples_total{server="maas-generative",model="other"} 7' in text
    assert 'model="fake-' not in text
    assert re.search(r'maas_model_requests_total\{server="maas-generative",code="RESOURCE_EXHAUSTED",'
                     r'model="_other"\} 210', text), text


def gauge(text, name, server):
    match = re.search(r'^%s\{server="%s"\} (\S+)$' % (name, re.escape(server)), text, re.M)
    assert match, text
    return float(match.group(1))


def test_the_gateways_front_counts_samples_and_keeps_in_flight_at_zero_after_refusals(tmp_path):
    # Through the HTTP/2 front the gateway counted no samples or documents (the gRPC proxy did), and calls it
    # refused at --max_concurrent_streams were finished without being started: maas_rpc_in_flight went negative.
    generative = start_generative(tmp_path / "g")
    gateway = start_gateway(generative.port, 1, extra=["--metrics_port", "0", "--max_concurrent_streams", "1"])
    try:
        stub = generative_pb2_grpc.GenerativeServiceStub(channel_to(gateway))
        spec = gen.GenerativeModelSpec(uniform=gen.UniformSpec(low=[0.0] * 64, high=[1.0] * 64))
        stub.CreateModel(gen.CreateModelRequest(name="box", spec=spec), timeout=TIMEOUT)
        list(stub.Sample(gen.SampleRequest(model=ref("box"), num_samples=100, seed=1), timeout=TIMEOUT))
        held = stub.Sample(gen.SampleRequest(model=ref("box"), num_samples=5_000_000, seed=1), timeout=60)
        next(held)
        for _ in range(3):
            with expect_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "--max_concurrent_streams"):
                stub.GetModel(gen.GetModelRequest(model=ref("box")), timeout=TIMEOUT)
        def refusals_counted():
            text = scrape(gateway)
            assert count(text, "maas-gateway", "/maas.generative.v1.GenerativeService/GetModel",
                         "RESOURCE_EXHAUSTED") == 3, text
            return text

        text = poll_until(refusals_counted, 30.0, "the refusals counted")
        assert gauge(text, "maas_rpc_in_flight", "maas-gateway") == 1
        assert 'maas_model_samples_total{server="maas-gateway",model="box"} 100' in text
        held.cancel()

        def none_in_flight():
            assert gauge(scrape(gateway), "maas_rpc_in_flight", "maas-gateway") == 0

        poll_until(none_in_flight, 30.0, "in flight back to 0")
    finally:
        for process in (gateway, generative):
            process.stop()
            process.release()


def test_metrics_are_off_unless_asked_for(stack):
    assert "metrics:" not in stack.discriminative.stderr_text()
