"""Replicas behind maas-gateway, with the real binaries (issue 9, gateway item 4).

Two replicas of each service share one model directory; the gateway's targets list both (`ipv4:a,b`). Checked:
- a model trained through the gateway (landing on one replica) is served by the other one after its store poll;
- deadline and cancellation of a call through the gateway reach the backend, which stops working on it;
- mixed load (unary, server stream, client streams -- Evaluate, and Train of a model of its own per call -- bidi)
  for >= 20 s while one replica of each service is SIGKILLed and later restarted: no idempotent unary or
  client-streaming call fails (the gateway retries them on another replica); Train, never retried, may fail with
  UNAVAILABLE when its replica dies, and every Train that answered OK is served afterwards by both replicas; a
  stream fails only when its replica died after the stream had started delivering (the gateway forwards bytes and
  cannot replay a committed stream); the restarted replicas take traffic again.
"""

import random
import re
import threading
import time
from collections import Counter

import grpc
import pytest

from maas.discriminative.v1 import discriminative_pb2 as disc
from maas.discriminative.v1 import discriminative_pb2_grpc
from maas.generative.v1 import generative_pb2 as gen
from maas.generative.v1 import generative_pb2_grpc

from maas_testing import (TIMEOUT, ServerProcess, channel_to, poll_until, ref, start_discriminative,
                          start_generative, wait_serving)

POLL_SECONDS = 0.5
LOAD_SECONDS = 20.0
WORKERS = 6


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, clock ticks of 10 ms


def _logged(process: ServerProcess, method: str, codes) -> bool:
    pattern = re.compile(r'"method":"' + re.escape(method) + r'","code":"(' + "|".join(codes) + r')"')
    return pattern.search(process.stderr_text()) is not None


def _log_count(process: ServerProcess, method_prefix: str) -> int:
    return len(re.findall(r'"method":"' + re.escape(method_prefix), process.stderr_text()))


class Replicas:
    def __init__(self, root):
        self.gen_dir = root / "generative"
        self.disc_dir = root / "discriminative"
        self.gen_dir.mkdir()
        self.disc_dir.mkdir()
        self.args = ["--poll_seconds", str(POLL_SECONDS)]
        self.processes = []
        self.channels = []
        self.gens = [self._own(start_generative(self.gen_dir, extra=self.args)) for _ in range(2)]
        self.discs = [self._own(start_discriminative(self.disc_dir, extra=self.args)) for _ in range(2)]
        targets = lambda ps: "ipv4:" + ",".join(f"127.0.0.1:{p.port}" for p in ps)  # noqa: E731
        self.gateway = self._own(ServerProcess("maas-gateway", [
            "--port", 0, "--generative_target", targets(self.gens), "--discriminative_target", targets(self.discs),
            "--health_check_interval_ms", "500"]))
        self.gw_channel = self._channel(self.gateway)
        wait_serving(self.gw_channel)
        self.gen_gw = generative_pb2_grpc.GenerativeServiceStub(self.gw_channel)
        self.disc_gw = discriminative_pb2_grpc.DiscriminativeServiceStub(self.gw_channel)

    def _own(self, process):
        self.processes.append(process)
        return process

    def _channel(self, process):
        channel = channel_to(process)
        self.channels.append(channel)
        return channel

    def direct_disc(self, i):
        return discriminative_pb2_grpc.DiscriminativeServiceStub(self._channel(self.discs[i]))

    def direct_gen(self, i):
        return generative_pb2_grpc.GenerativeServiceStub(self._channel(self.gens[i]))

    def close(self):
        for channel in self.channels:
            channel.close()
        for process in self.processes:
            if process.returncode is None:
                process.stop()
            process.release()


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    r = Replicas(tmp_path_factory.mktemp("e2e-gateway-replicas"))
    try:
        r.gen_gw.CreateModel(gen.CreateModelRequest(name="cube", spec=gen.GenerativeModelSpec(
            uniform=gen.UniformSpec(low=[0.0] * 4, high=[1.0] * 4))), timeout=TIMEOUT)
        r.gen_gw.CreateModel(gen.CreateModelRequest(name="wide", spec=gen.GenerativeModelSpec(
            uniform=gen.UniformSpec(low=[0.0] * 64, high=[1.0] * 64))), timeout=TIMEOUT)
        r.disc_gw.Train(iter([
            disc.TrainRequest(config=disc.TrainConfig(name="words")),
            disc.TrainRequest(batch=disc.TextBatch(examples=[
                disc.LabeledText(text="the striker scored a goal", label="sports"),
                disc.LabeledText(text="bake the bread dough", label="cooking")]))]), timeout=TIMEOUT)
        # Every replica sees every model (through its store poll).
        for i in range(2):
            stub = r.direct_gen(i)
            poll_until(lambda: stub.GetModel(gen.GetModelRequest(model=ref("wide")), timeout=TIMEOUT), 20.0,
                       f"generative replica {i} serving the models")
            dstub = r.direct_disc(i)
            poll_until(lambda: dstub.GetModel(disc.GetModelRequest(model=ref("words")), timeout=TIMEOUT), 20.0,
                       f"discriminative replica {i} serving the models")
        yield r
    finally:
        r.close()


def test_a_model_trained_through_one_replica_is_served_by_the_other(replicas):
    response = replicas.disc_gw.Train(iter([
        disc.TrainRequest(config=disc.TrainConfig(name="fresh")),
        disc.TrainRequest(batch=disc.TextBatch(examples=[
            disc.LabeledText(text="rain and wind tonight", label="weather"),
            disc.LabeledText(text="the market fell sharply", label="finance")]))]), timeout=TIMEOUT)
    assert response.info.version == 1
    for i in range(2):
        stub = replicas.direct_disc(i)
        # Served within the poll interval; the cap is generous for a loaded machine.
        result = poll_until(lambda: stub.Classify(disc.ClassifyRequest(model=ref("fresh"), texts=["windy rain"]),
                                                  timeout=TIMEOUT), 10 * POLL_SECONDS + 10.0,
                            f"discriminative replica {i} serving the freshly trained model")
        assert result.results[0].label == "weather"


@pytest.mark.parametrize("how", ["cancel", "deadline"])
def test_cancel_and_deadline_reach_the_backend(replicas, how):
    request = gen.SampleRequest(model=ref("wide"), num_samples=10_000_000, seed=7)
    code = "CANCELLED" if how == "cancel" else "DEADLINE_EXCEEDED"
    call = replicas.gen_gw.Sample(request, timeout=60.0 if how == "cancel" else 1.0)
    received = 0
    try:
        for batch in call:
            received += batch.x.rows
            if how == "cancel" and received >= 20_000:
                call.cancel()
    except grpc.RpcError as e:
        assert e.code() == getattr(grpc.StatusCode, code), e
    assert 0 < received < 10_000_000
    method = "/maas.generative.v1.GenerativeService/Sample"
    # The backend ends the call (its log line says so) ...
    poll_until(lambda: assert_any(_logged(p, method, ["CANCELLED", "DEADLINE_EXCEEDED"]) for p in replicas.gens),
               20.0, f"a generative replica logging the {how} of its Sample call")
    # ... and stops working on it: its CPU time no longer grows (the whole stream would take minutes).
    before = [_cpu_seconds(p.proc.pid) for p in replicas.gens]
    time.sleep(1.0)
    after = [_cpu_seconds(p.proc.pid) for p in replicas.gens]
    assert all(a - b < 0.5 for a, b in zip(after, before)), f"replica CPU still busy: {before} -> {after}"


def assert_any(values):
    assert any(values)


class Load:
    """Mixed calls through the gateway from several threads until stopped."""

    IDEMPOTENT_FAILURE_FREE = ("classify", "get_model", "estimate", "evaluate")

    def __init__(self, r: Replicas):
        self.r = r
        self.stop = threading.Event()
        self.ok = Counter()
        self.failed = Counter()
        self.mid_stream = Counter()  # streams cut after the killed replica had committed them
        self.trained = []  # names of models whose Train answered OK (acknowledged writes)
        self.train_unavailable = 0  # Train is never retried: UNAVAILABLE when its replica died is allowed
        self.errors = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(WORKERS)]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)

    def _record(self, kind, error=None, received=0):
        with self.lock:
            if error is None:
                self.ok[kind] += 1
            elif kind == "train" and error.code() == grpc.StatusCode.UNAVAILABLE:
                self.train_unavailable += 1
            elif kind in ("sample", "classify_stream") and error.code() == grpc.StatusCode.UNAVAILABLE:
                # A stream the killed replica had already answered (its response headers pass through the
                # byte-level proxy before the first message): committed, so it cannot be replayed elsewhere.
                self.mid_stream[kind] += 1
            else:
                self.failed[kind] += 1
                if len(self.errors) < 10:
                    self.errors.append(f"{kind}: {error.code()}: {error.details()}")

    def _run(self, seed):
        rng = random.Random(seed)
        r = self.r
        while not self.stop.is_set():
            kind = rng.choice(["classify", "get_model", "estimate", "sample", "evaluate", "classify_stream",
                               "train"])
            received = 0
            try:
                if kind == "classify":
                    out = r.disc_gw.Classify(disc.ClassifyRequest(model=ref("words"), texts=["bread goal"]),
                                             timeout=TIMEOUT)
                    assert len(out.results) == 1
                elif kind == "get_model":
                    assert r.gen_gw.GetModel(gen.GetModelRequest(model=ref("cube")), timeout=TIMEOUT).info.name
                elif kind == "estimate":
                    out = r.gen_gw.EstimateLogLikelihood(gen.EstimateLogLikelihoodRequest(
                        model=ref("cube"), x=_point(), estimator=gen.EXACT), timeout=TIMEOUT)
                    assert abs(out.rows[0].log_likelihood) < 1e-12
                elif kind == "sample":
                    for batch in r.gen_gw.Sample(gen.SampleRequest(model=ref("cube"), num_samples=2000,
                                                                   seed=rng.randrange(1 << 30), batch_size=250),
                                                 timeout=TIMEOUT):
                        received += batch.x.rows
                    assert received == 2000
                elif kind == "train":  # a client stream writing a model of its own (no two replicas race)
                    name = f"third-{seed}-{rng.randrange(1 << 40):x}"
                    out = r.disc_gw.Train(iter([
                        disc.TrainRequest(config=disc.TrainConfig(name=name)),
                        disc.TrainRequest(batch=disc.TextBatch(examples=[
                            disc.LabeledText(text="sunny and warm", label="weather"),
                            disc.LabeledText(text="shares went up", label="finance")]))]), timeout=TIMEOUT)
                    assert out.info.version == 1
                    with self.lock:
                        self.trained.append(name)
                elif kind == "evaluate":
                    out = r.disc_gw.Evaluate(iter([
                        disc.EvaluateRequest(config=disc.EvaluateConfig(model=ref("words"))),
                        disc.EvaluateRequest(batch=disc.TextBatch(examples=[
                            disc.LabeledText(text="a goal", label="sports"),
                            disc.LabeledText(text="bread", label="cooking")]))]), timeout=TIMEOUT)
                    assert out.accuracy == 1.0
                else:
                    requests = [disc.ClassifyRequest(model=ref("words"), texts=["goal"]) for _ in range(3)]
                    for response in r.disc_gw.ClassifyStream(iter(requests), timeout=TIMEOUT):
                        assert response.results[0].label == "sports"
                        received += 1
                    assert received == 3
                self._record(kind)
            except grpc.RpcError as e:
                self._record(kind, e, received)


def _point():
    from maas_testing import to_matrix
    return to_matrix([[0.5, 0.5, 0.5, 0.5]])


def test_replica_killed_and_restarted_under_mixed_load(replicas):
    """Last in the module: kills replica 0 of each service mid-load and restarts it on the same port."""
    load = Load(replicas)
    start = time.monotonic()
    load.start()
    try:
        time.sleep(4.0)
        victims = [replicas.gens[0], replicas.discs[0]]
        for victim in victims:
            victim.proc.kill()
        for victim in victims:
            victim.proc.wait(timeout=10)
            victim.stop()
        time.sleep(4.0)  # the load runs on the surviving replicas
        replicas.gens[0] = replicas._own(start_generative(replicas.gen_dir, port=victims[0].port,
                                                          extra=replicas.args))
        replicas.discs[0] = replicas._own(start_discriminative(replicas.disc_dir, port=victims[1].port,
                                                               extra=replicas.args))
        # The restarted replicas take proxied traffic again (their per-call log shows the load's methods).
        for process, method in ((replicas.gens[0], "/maas.generative.v1.GenerativeService/"),
                                (replicas.discs[0], "/maas.discriminative.v1.DiscriminativeService/")):
            deadline = time.monotonic() + 20.0
            while _log_count(process, method) < 5 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _log_count(process, method) >= 5, f"restarted {process.name} takes no traffic"
        remaining = LOAD_SECONDS - (time.monotonic() - start)
        if remaining > 0:
            time.sleep(remaining)
    finally:
        load.finish()
    summary = (f"ok={dict(load.ok)} failed={dict(load.failed)} mid_stream={dict(load.mid_stream)} "
               f"train_unavailable={load.train_unavailable} {load.errors}")
    print(summary)
    assert sum(load.failed.values()) == 0, f"failed calls through the gateway: {summary}"
    for kind in ("classify", "get_model", "estimate", "sample", "evaluate", "classify_stream", "train"):
        assert load.ok[kind] > 0, f"no successful {kind}: {summary}"
    assert sum(load.mid_stream.values()) <= 2 * WORKERS, f"too many streams cut: {summary}"
    # Every acknowledged Train is served, by both replicas (shared store, poll), none lost to the kill.
    for i in range(2):
        stub = replicas.direct_disc(i)
        for name in load.trained:
            poll_until(lambda: stub.GetModel(disc.GetModelRequest(model=ref(name)), timeout=TIMEOUT),
                       10 * POLL_SECONDS + 10.0, f"discriminative replica {i} serving acknowledged model {name}")
