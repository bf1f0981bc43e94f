"""Crash test of the model store with the real binaries: SIGKILL each service at random moments while several
clients write new versions, restart it on the same model directory, and check what survived.

After every restart:
  - every version a client saw acknowledged is listed and loads, with the content that client wrote
    (its description carries a unique token);
  - every listed version loads (no torn or empty model.pb is ever visible);
  - no temp file and no version directory without model.pb is left (the startup cleanup removed them, and said so);
  - no version number is ever handed out twice, and numbers only grow (no reuse after cleanup).

The kill moments come from a seeded generator, so a failure is reproducible with the printed seed.
"""

import os
import pathlib
import random
import signal
import threading
import time

import grpc
import pytest

from maas.common.v1 import common_pb2
from maas.discriminative.v1 import discriminative_pb2 as disc
from maas.discriminative.v1 import discriminative_pb2_grpc
from maas.generative.v1 import generative_pb2 as gen
from maas.generative.v1 import generative_pb2_grpc

from maas_testing import TIMEOUT, channel_to, start_discriminative, start_generative, wait_serving

SEED = 20261202
CYCLES = 10  # kills per service
WRITERS = 3  # concurrent writing clients
MODEL = "crashy"


def generative_write(stub, token: str) -> int:
    # A few hundred KB per version, so a kill often lands inside the write.
    dim = 20000
    spec = gen.GenerativeModelSpec(uniform=gen.UniformSpec(low=[0.0] * dim, high=[1.0 + i * 1e-6 for i in range(dim)]))
    response = stub.CreateModel(gen.CreateModelRequest(name=MODEL, spec=spec, description=token), timeout=TIMEOUT)
    return response.info.version


def discriminative_write(stub, token: str) -> int:
    words = [f"w{i}" for i in range(3000)]
    texts = [" ".join(words[i::7]) for i in range(7)] * 4
    labels = ["a", "b"] * 14

    def requests():
        yield disc.TrainRequest(config=disc.TrainConfig(name=MODEL, description=token))
        yield disc.TrainRequest(batch=disc.TextBatch(
            examples=[disc.LabeledText(text=t, label=l) for t, l in zip(texts, labels)]))

    return stub.Train(requests(), timeout=TIMEOUT).info.version


SERVICES = {
    "generative": (start_generative, generative_pb2_grpc.GenerativeServiceStub, generative_write),
    "discriminative": (start_discriminative, discriminative_pb2_grpc.DiscriminativeServiceStub, discriminative_write),
}


def leftovers(model_dir: pathlib.Path):
    """Temp files anywhere, and version directories without model.pb."""
    found = []
    for root, dirs, files in os.walk(model_dir):
        for f in files:
            if ".tmp-" in f:
                found.append(os.path.join(root, f))
        path = pathlib.Path(root)
        if path.parent.parent == model_dir and path.name.isdigit() and "model.pb" not in files:
            found.append(root)
    return found


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_sigkill_during_writes_loses_nothing_acknowledged(service, tmp_path):
    start, stub_class, write = SERVICES[service]
    rng = random.Random(SEED + len(service))
    model_dir = tmp_path / "models"
    acknowledged = {}  # version -> token
    ack_lock = threading.Lock()
    attempted = 0
    cycles_with_leftovers = 0
    highest_seen = 0
    left_by_kill = []

    for cycle in range(CYCLES):
        server = start(model_dir)
        try:
            if left_by_kill:  # the kill left a torn write behind: the restart must remove it and say so
                cycles_with_leftovers += 1
                assert "left by interrupted writes" in server.stderr_text(), (
                    f"cycle {cycle}: {left_by_kill} were left by the kill but the restart logged no cleanup")
            channel = channel_to(server)
            wait_serving(channel)
            stub = stub_class(channel)

            # What survived the previous kill.
            assert leftovers(model_dir) == [], f"cycle {cycle}: leftovers after restart (seed {SEED})"
            listed = stub.ListModels(common_pb2.ListModelsRequest(all_versions=True), timeout=TIMEOUT).models
            versions = sorted(m.version for m in listed if m.name == MODEL)
            for version in versions:
                info = stub.GetModel(_get_request(service, version), timeout=TIMEOUT).info
                assert info.version == version
            with ack_lock:
                for version, token in acknowledged.items():
                    assert version in versions, f"acknowledged version {version} lost (cycle {cycle}, seed {SEED})"
                    info = stub.GetModel(_get_request(service, version), timeout=TIMEOUT).info
                    assert info.description == token, f"version {version} holds another write's content"
            if versions:
                highest_seen = max(highest_seen, versions[-1])

            # Writers hammer the store; the server is killed at a random moment.
            stop = threading.Event()

            def writer(index):
                nonlocal attempted
                n = 0
                while not stop.is_set():
                    token = f"c{cycle}-w{index}-n{n}"
                    n += 1
                    with ack_lock:
                        attempted += 1
                    try:
                        version = write(stub, token)
                    except grpc.RpcError:
                        return  # the server died under this call: not acknowledged
                    with ack_lock:
                        assert version not in acknowledged, f"version {version} handed out twice"
                        assert version > highest_seen, f"version {version} reused (highest before: {highest_seen})"
                        acknowledged[version] = token

            threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.05, 0.3))
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait(timeout=10)
            stop.set()
            for t in threads:
                t.join(timeout=TIMEOUT + 5)
            channel.close()
            left_by_kill = leftovers(model_dir)
        finally:
            server.stop(timeout=5)
            server.release()

    # A final start: everything acknowledged is there; leftovers of the last kill are gone.
    server = start(model_dir)
    try:
        channel = channel_to(server)
        wait_serving(channel)
        stub = stub_class(channel)
        assert leftovers(model_dir) == []
        listed = stub.ListModels(common_pb2.ListModelsRequest(all_versions=True), timeout=TIMEOUT).models
        versions = {m.version for m in listed if m.name == MODEL}
        assert set(acknowledged) <= versions
        for version in versions:
            stub.GetModel(_get_request(service, version), timeout=TIMEOUT)
        channel.close()
    finally:
        assert server.stop() == 0
        server.release()
    assert attempted >= 30, f"only {attempted} writes were attempted; the test needs at least 30"
    assert len(acknowledged) >= 10, f"only {len(acknowledged)} writes were acknowledged"
    print(f"{service}: {attempted} writes attempted, {len(acknowledged)} acknowledged, "
          f"{cycles_with_leftovers} of {CYCLES} kills left a torn write that the restart cleaned up")


def _get_request(service: str, version: int):
    model = common_pb2.ModelRef(name=MODEL, version=version)
    if service == "generative":
        return gen.GetModelRequest(model=model)
    return disc.GetModelRequest(model=model)
