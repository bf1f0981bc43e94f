"""A loaded model is held once: after a server loads a large model (about 80 MB stored) its resident memory grows by
about what its model cache charges for the parsed form (maas_model_cache_bytes), not by the parsed form plus the
stored message (which made it grow by about twice as much); GetModel still answers the exact stored spec (read back
from the store). Each load is timed per model (maas_model_load_seconds), with bounded labels.

The models are written straight into the store directories (<model_dir>/<name>/1/model.pb): a message this large does
not fit a CreateModel call. The servers run with MALLOC_MMAP_THRESHOLD_ pinned so glibc returns every freed large
block to the system at once (its default raises the threshold after the first free and may keep freed blocks for
reuse); resident memory then shows what is held, not what malloc caches."""

import json
import math
import re
import struct
import time
import urllib.request

import grpc
import numpy as np
import pytest

from maas.common.v1 import common_pb2
from maas.discriminative.v1 import discriminative_pb2 as disc, discriminative_pb2_grpc
from maas.generative.v1 import generative_pb2 as gen, generative_pb2_grpc

from maas_testing import TIMEOUT, ServerProcess, assert_rss_bound, ref, rss_mb

METRICS_URL = re.compile(r"metrics: http://[^:]+:(\d+)/metrics")


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, payload):
    """A length-delimited field (wire type 2): appending it to a serialized message sets / merges that field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def matrix_bytes(a):
    """A common.v1.Matrix, its packed values written directly (fast for millions of values)."""
    a = np.ascontiguousarray(a, dtype="<f8")
    head = common_pb2.Matrix(rows=a.shape[0], cols=a.shape[1]).SerializeToString()
    return head + field(3, a.tobytes())


def info_bytes(name, model_type, family):
    return common_pb2.ModelInfo(name=name, version=1, type=model_type, family=family).SerializeToString()


def write_version(model_dir, name, payload):
    path = model_dir / name / "1"
    path.mkdir(parents=True)
    (path / "model.pb").write_bytes(payload)
    return len(payload)


def big_pipeline(model_dir, name, classes=16, features=300_000):
    """A count + multinomial_nb pipeline of classes x features (two C x F tables stored, about 77 MB)."""
    rng = np.random.default_rng(5)
    feature_count = rng.integers(0, 4, size=(classes, features)).astype(np.float64)
    class_count = rng.integers(1, 100, size=classes).astype(np.float64)
    feature_log_prob = np.log(feature_count + 1.0) - np.log(feature_count.sum(axis=1, keepdims=True) + features)
    config = disc.VectorizerState(config=disc.VectorizerConfig(count=disc.CountVectorizerConfig()))
    vocabulary = b"".join(field(2, b"w%07d" % i) for i in range(features))
    vectorizer = config.SerializeToString() + vocabulary
    classifier = disc.ClassifierState(
        config=disc.ClassifierConfig(multinomial_nb=disc.MultinomialNbConfig(alpha=1.0, fit_prior=True)),
        classes=[f"class-{c:02d}" for c in range(classes)], class_count=class_count.tolist(),
        class_log_prior=(np.log(class_count) - np.log(class_count.sum())).tolist()).SerializeToString()
    classifier += field(4, matrix_bytes(feature_count)) + field(6, matrix_bytes(feature_log_prob))
    spec = field(1, vectorizer) + field(2, classifier)
    stored = field(1, info_bytes(name, common_pb2.DISCRIMINATIVE, "count+multinomial_nb")) + field(2, spec)
    return write_version(model_dir, name, stored), disc.PipelineSpec.FromString(spec)


def safetensors(tensors):
    header, offset, blobs = {}, 0, []
    for key, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f8").tobytes()
        header[key] = {"dtype": "F64", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def big_decoder(model_dir, name, latent=1000, dimension=10_000):
    """An mlp_decoder with one dimension x latent layer given as safetensors (about 80 MB stored)."""
    rng = np.random.default_rng(6)
    weights = safetensors({"layers.0.weight": rng.standard_normal((dimension, latent)) * 0.01,
                           "layers.0.bias": np.zeros(dimension)})
    spec = gen.GenerativeModelSpec(mlp_decoder=gen.MlpDecoderSpec(latent_dim=latent, noise_variance=0.5))
    spec_bytes = field(spec.DESCRIPTOR.fields_by_name["mlp_decoder"].number,
                       spec.mlp_decoder.SerializeToString() + field(5, weights))
    stored = field(1, info_bytes(name, common_pb2.GENERATIVE, "mlp_decoder")) + field(2, spec_bytes)
    return write_version(model_dir, name, stored), gen.GenerativeModelSpec.FromString(spec_bytes)


def scrape(process):
    match = METRICS_URL.search(process.stderr_text())
    assert match, f"{process.name} did not print its metrics address:\n{process.stderr_text()}"
    with urllib.request.urlopen(f"http://127.0.0.1:{match.group(1)}/metrics", timeout=TIMEOUT) as reply:
        return reply.read().decode()


def gauge(text, name, server):
    match = re.search(r'^%s\{server="%s"\} (\S+)$' % (name, re.escape(server)), text, re.M)
    assert match, f"no {name} for {server} in:\n{text}"
    return float(match.group(1))


def settled_rss(pid):
    """RSS once it stopped changing (freed blocks are unmapped at once; this only waits out in-flight work)."""
    previous = rss_mb(pid)
    for _ in range(50):
        time.sleep(0.1)
        now = rss_mb(pid)
        if abs(now - previous) < 0.5:
            return now
        previous = now
    return previous


def check_held_once(server, process, stored_bytes, load):
    """Loads the model with load() and checks the growth of the server's RSS against the cache's charge."""
    before = settled_rss(process.proc.pid)
    load()
    after = settled_rss(process.proc.pid)
    text = scrape(process)
    held_mb = gauge(text, "maas_model_cache_bytes", server) / 2**20
    grown = after - before
    stored_mb = stored_bytes / 2**20
    report = (f"{server}: stored {stored_mb:.1f} MiB, cache charges {held_mb:.1f} MiB, RSS grew by {grown:.1f} MiB "
              f"({before:.1f} -> {after:.1f})")
    print(report)
    assert gauge(text, "maas_model_cache_versions", server) == 1, report
    # What is charged is what is held: the parsed form alone. Keeping the stored message as well would add about
    # stored_mb (the message's in-memory size is at least its serialized size) on top of held_mb.
    assert_rss_bound(grown < held_mb + 0.5 * stored_mb, report)
    assert_rss_bound(grown > 0.6 * held_mb, report)
    assert held_mb > 0.5 * stored_mb, report  # the estimate counts the parameter tables
    # Both services export the heap's metrics: the RAM outside live blocks, and the freed-memory releaser's counters
    # (on by default; whether it released yet depends on the heap).
    assert math.isfinite(gauge(text, "maas_heap_free_resident_bytes", server))
    for name in ("maas_heap_releases_total", "maas_heap_released_bytes_total", "maas_heap_release_seconds_total"):
        assert f"# TYPE {name} counter" in text
        assert gauge(text, name, server) >= 0
    return text


@pytest.fixture
def pinned_malloc(monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")


def start(binary, model_dir):
    return ServerProcess(binary, ["--host", "127.0.0.1", "--port", "0", "--metrics_port", "0", "--model_dir",
                                  str(model_dir), "--poll_seconds", "0", "--threads", "2", "--max_message_bytes", str(256 << 20)])


def test_discriminative_holds_a_loaded_model_once(tmp_path, pinned_malloc):

    model_dir = tmp_path / "models"
    stored_bytes, spec = big_pipeline(model_dir, "big")
    process = start("maas-discriminative", model_dir)
    try:
        channel = grpc.insecure_channel(process.address, options=[("grpc.max_receive_message_length", 256 << 20)])
        stub = discriminative_pb2_grpc.DiscriminativeServiceStub(channel)

        def load():
            reply = stub.Classify(disc.ClassifyRequest(model=ref("big"), texts=["w0000001 w0000002"]),
                                  timeout=60)
            assert len(reply.results) == 1

        text = check_held_once("maas-discriminative", process, stored_bytes, load)
        assert 'maas_model_load_seconds_count{server="maas-discriminative",model="big"} 1' in text
        # Texts classified count per model in both response forms (1 verbose above, 3 compact here).
        compact = stub.Classify(disc.ClassifyRequest(model=ref("big"), texts=["w0000003", "w0000004", "x"],
                                                     compact=True), timeout=60)
        assert len(compact.predicted) == 3
        documents = 'maas_model_documents_total{server="maas-discriminative",model="big"} 4'
        deadline = time.monotonic() + 30  # a call is counted when its last server-side object goes away
        while documents not in text and time.monotonic() < deadline:
            time.sleep(0.05)
            text = scrape(process)
        assert documents in text
        # GetModel answers the stored spec exactly (read back from the store, not kept in memory).
        got = stub.GetModel(disc.GetModelRequest(model=ref("big")), timeout=60)
        assert got.spec == spec
        assert got.info.size_bytes == stored_bytes
        channel.close()
    finally:
        process.stop()
        process.release()


def test_generative_holds_a_loaded_model_once(tmp_path, pinned_malloc):

    model_dir = tmp_path / "models"
    stored_bytes, spec = big_decoder(model_dir, "decoder")
    process = start("maas-generative", model_dir)
    try:
        channel = grpc.insecure_channel(process.address, options=[("grpc.max_receive_message_length", 256 << 20)])
        stub = generative_pb2_grpc.GenerativeServiceStub(channel)

        def load():
            batches = list(stub.Sample(gen.SampleRequest(model=ref("decoder"), num_samples=1, seed=3), timeout=60))
            assert sum(b.x.rows for b in batches) == 1

        text = check_held_once("maas-generative", process, stored_bytes, load)
        assert 'maas_model_load_seconds_count{server="maas-generative",model="decoder"} 1' in text
        got = stub.GetModel(gen.GetModelRequest(model=ref("decoder")), timeout=60)
        assert got.spec == spec
        channel.close()
    finally:
        process.stop()
        process.release()
