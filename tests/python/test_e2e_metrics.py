"""--metrics_port: every binary serves Prometheus text on /metrics, counting calls by method and status code
(also streaming calls, and calls that passed through the gateway on both hops)."""

import re
import time
import urllib.request

import grpc
import pytest

from maas.generative.v1 import generative_pb2 as gen

from maas_testing import TIMEOUT, Stack, expect_rpc_error, ref

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


def test_metrics_are_off_unless_asked_for(stack):
    assert "metrics:" not in stack.discriminative.stderr_text()
