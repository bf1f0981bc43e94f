"""Regression tests of maas-gateway's resource bounds and recovery, on the real binaries (issue 5, items 5, 6, 8):

- stalled Sample streams: the gateway reads a backend stream only as fast as its client drains it, so its RSS stays
  bounded while clients stop reading, and returns near its baseline after they cancel (the old proxy let BDP-grown
  windows park ~28 MB per stalled stream: 16 streams took it from 18 MB to 477 MB, 444 MB kept after cancel);
- stream caps: per connection (HTTP/2 MAX_CONCURRENT_STREAMS, further calls wait) and in total
  (RESOURCE_EXHAUSTED naming the flag);
- a backend killed and restarted on the same port is routed to again promptly; while it is down clients get
  UNAVAILABLE naming the route (never an address) and Gateway.ListModels answers what the other backend has,
  naming the missing one.
"""

import concurrent.futures
import os
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from maas.common.v1 import common_pb2
from maas.discriminative.v1 import discriminative_pb2 as disc
from maas.discriminative.v1 import discriminative_pb2_grpc
from maas.generative.v1 import generative_pb2 as gen

from maas_testing import (TIMEOUT, Stack, assert_rss_bound, check_rpc_error, health_status, ref,
                          rpc_error, rss_mb, start_discriminative, start_gateway, start_generative, wait_serving)

DISCRIMINATIVE_SERVICE = "maas.discriminative.v1.DiscriminativeService"
STALLED_STREAMS = 16
DIMENSIONS = 64


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("e2e-gateway-limits"),
               gateway_args=["--health_check_interval_ms", "500", "--max_concurrent_streams", "40",
                             "--max_streams_per_connection", "24"]) as s:
        s.gen_gw.CreateModel(gen.CreateModelRequest(name="cube", spec=gen.GenerativeModelSpec(
            uniform=gen.UniformSpec(low=[0.0] * DIMENSIONS, high=[1.0] * DIMENSIONS))), timeout=TIMEOUT)
        s.disc_gw.Train(iter([
            disc.TrainRequest(config=disc.TrainConfig(name="words")),
            disc.TrainRequest(batch=disc.TextBatch(examples=[
                disc.LabeledText(text="the striker scored a goal", label="sports"),
                disc.LabeledText(text="bake the bread dough", label="cooking")]))]), timeout=TIMEOUT)
        yield s


def _wait_rss_below(pid: int, bound_mb: float, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while True:
        now = rss_mb(pid)
        if now <= bound_mb or time.monotonic() >= deadline:
            return now
        time.sleep(0.2)


def test_stalled_sample_streams_keep_gateway_memory_bounded(stack):
    pid = stack.gateway_process.proc.pid
    baseline = rss_mb(pid)
    calls = []
    try:
        for seed in range(STALLED_STREAMS):
            # Default batch size: ~512 KB messages; 10M rows would be 5 GB per stream if anyone buffered it all.
            call = stack.gen_gw.Sample(gen.SampleRequest(model=ref("cube"), num_samples=10_000_000, seed=seed),
                                       timeout=120.0)
            assert next(call).x.rows > 0  # one batch read, then the client stops reading
            calls.append(call)
        # Give the backends time to push whatever flow control lets through, tracking the peak.
        peak = baseline
        for _ in range(20):
            time.sleep(0.2)
            peak = max(peak, rss_mb(pid))
        growth = peak - baseline
        # Windows (256 KiB each side) and a message or two of ~0.5 MB per stream: ~1.5 MB per stream. The old
        # proxy grew 8-28 MB per stream (its windows grew with BDP probing).
        assert_rss_bound(growth < 4.0 * STALLED_STREAMS,
                         f"gateway RSS grew {growth:.0f} MiB (baseline {baseline:.0f}, peak {peak:.0f}) for "
                         f"{STALLED_STREAMS} stalled Sample streams: it buffers for slow readers")
    finally:
        for call in calls:
            call.cancel()
    # After the cancellations the memory goes back (the gateway trims its heap when idle).
    after = _wait_rss_below(pid, baseline + 40.0, timeout=15.0)
    assert_rss_bound(after <= baseline + 40.0, f"gateway RSS {after:.0f} MiB after cancel, baseline {baseline:.0f} MiB")
    assert stack.gen_gw.GetModel(gen.GetModelRequest(model=ref("cube")), timeout=TIMEOUT).info.name == "cube"


def _open_classify_stream(stub):
    """A ClassifyStream that has answered one batch and stays open; returns (call, request queue closer)."""
    done = threading.Event()

    def requests():
        yield disc.ClassifyRequest(model=ref("words"), texts=["bread"])
        done.wait(60.0)

    call = stub.ClassifyStream(requests(), timeout=60.0)
    return call, done


def _separate_channel(process):
    # A channel with its own connection (Python shares connections between channels with equal options).
    return grpc.insecure_channel(process.address, options=[("grpc.use_local_subchannel_pool", 1)])


def test_streams_per_connection_wait_beyond_the_cap(stack):
    channel = _separate_channel(stack.gateway_process)
    stub = discriminative_pb2_grpc.DiscriminativeServiceStub(channel)
    opened = []
    try:
        for _ in range(24):  # --max_streams_per_connection
            call, done = _open_classify_stream(stub)
            assert next(call).results[0].label == "cooking"
            opened.append((call, done))
        # One more on the same connection: it waits for a free stream slot instead of being served.
        extra_call, extra_done = _open_classify_stream(stub)
        answered = threading.Event()
        threading.Thread(target=lambda: (next(extra_call, None), answered.set()), daemon=True).start()
        assert not answered.wait(1.5), "a stream beyond --max_streams_per_connection was served at once"
        # Ending one stream lets it through.
        opened[0][1].set()
        list(opened[0][0])
        assert answered.wait(30.0), "the waiting stream was not served after a slot became free"
        extra_done.set()
        list(extra_call)
    finally:
        for call, done in opened:
            done.set()
            call.cancel()
        channel.close()


def test_total_streams_are_capped_with_resource_exhausted(stack):
    channels = [_separate_channel(stack.gateway_process) for _ in range(2)]
    stubs = [discriminative_pb2_grpc.DiscriminativeServiceStub(c) for c in channels]
    opened = []
    try:
        # --max_concurrent_streams 40, spread over two connections; the HTTP/2 front keeps 40 / 16 = 2 of them for
        # the default route (health checks, the gateway's own service), which the gRPC proxy serves uncounted.
        front = "--h2_front=false" not in os.environ.get("MAAS_GATEWAY_EXTRA_ARGS", "")
        for i in range(38 if front else 40):
            call, done = _open_classify_stream(stubs[i % 2])
            assert next(call).results[0].label == "cooking"
            opened.append((call, done))
        error = rpc_error(lambda: stack.disc_gw.Classify(
            disc.ClassifyRequest(model=ref("words"), texts=["bread"]), timeout=TIMEOUT))
        check_rpc_error(error, grpc.StatusCode.RESOURCE_EXHAUSTED,
                        ["max_concurrent_streams"] + (["2 kept for health checks"] if front else []))
        # Full of backend calls, the gateway still answers its health checks (a kubelet probe refused here
        # restarts a gateway under load) and its own service.
        assert health_status(stack.gw_channel) == health_pb2.HealthCheckResponse.SERVING
        assert stack.gateway.ListModels(common_pb2.ListModelsRequest(), timeout=TIMEOUT) is not None
    finally:
        for call, done in opened:
            done.set()
            call.cancel()
        for channel in channels:
            channel.close()
    # Once the streams have ended the gateway serves again.
    assert _classify_once_streams_are_released(stack).results[0].label == "cooking"


def _classify_once_streams_are_released(stack, timeout=15.0):
    """A Classify through the gateway, retried while the gateway still counts streams that earlier tests
    cancelled (RESOURCE_EXHAUSTED from --max_concurrent_streams) until they are released (generous cap)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return stack.disc_gw.Classify(disc.ClassifyRequest(model=ref("words"), texts=["bread"]),
                                          timeout=TIMEOUT)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_thousands_of_streams_on_one_connection_stay_cheap(stack):
    """One connection opens 2000 ClassifyStream calls (the old gateway admitted all of them: 10 000 took it to
    478 MB and it kept 503 MB after they were cancelled). Now the connection gets --max_streams_per_connection
    streams at a time, and the memory is back after cancellation."""
    import asyncio

    pid = stack.gateway_process.proc.pid
    baseline = rss_mb(pid)
    peak = baseline

    async def run():
        nonlocal peak
        async with grpc.aio.insecure_channel(stack.gateway_process.address) as channel:
            stub = discriminative_pb2_grpc.DiscriminativeServiceStub(channel)
            calls = [stub.ClassifyStream(timeout=60.0) for _ in range(2000)]
            answered = 0

            async def one(call):
                nonlocal answered
                await call.write(disc.ClassifyRequest(model=ref("words"), texts=["bread"]))
                assert (await call.read()).results[0].label == "cooking"
                answered += 1

            tasks = [asyncio.create_task(one(c)) for c in calls]
            deadline = time.monotonic() + 30.0
            while answered < 24 and time.monotonic() < deadline:  # the streams the connection may have
                await asyncio.sleep(0.1)
                peak = max(peak, rss_mb(pid))
            for _ in range(10):
                await asyncio.sleep(0.2)
                peak = max(peak, rss_mb(pid))
            assert 24 <= answered < 2000, answered
            for call in calls:
                call.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=10.0)

    asyncio.run(asyncio.wait_for(run(), timeout=90.0))
    print(f"2000 streams on one connection: gateway RSS {baseline:.1f} -> peak {peak:.1f} MiB")
    assert_rss_bound(peak - baseline < 40.0,
                     f"gateway RSS grew {peak - baseline:.0f} MiB for 2000 streams on one connection")
    after = _wait_rss_below(pid, baseline + 20.0, timeout=15.0)
    assert_rss_bound(after <= baseline + 20.0, f"gateway RSS {after:.0f} MiB after cancel, baseline {baseline:.0f} MiB")


def test_backend_killed_and_restarted_is_routed_to_again_promptly(stack):
    """Last in the module: SIGKILLs the discriminative backend, keeps it down for a while (calls through the
    gateway meanwhile, which used to grow gRPC's reconnect backoff to seconds), then restarts it on the same
    port and measures how soon the gateway routes to it again."""
    # The streams the previous tests cancelled no longer count against --max_concurrent_streams.
    _classify_once_streams_are_released(stack)
    old = stack.discriminative
    port = old.port
    old.proc.kill()
    old.proc.wait(timeout=10)
    old.stop()
    old.release()
    # ~6 s of failing calls: gRPC's default backoff (1 s x 1.6 per attempt, +-20 %) would have its next attempt
    # around 9 s, i.e. seconds after the restart.
    down_until = time.monotonic() + 6.0
    while time.monotonic() < down_until:
        error = rpc_error(lambda: stack.disc_gw.Classify(
            disc.ClassifyRequest(model=ref("words"), texts=["bread"]), timeout=TIMEOUT))
        check_rpc_error(error, grpc.StatusCode.UNAVAILABLE, [DISCRIMINATIVE_SERVICE])
        for internal in ("127.0.0.1", str(port), "ipv4:"):
            assert internal not in error.details(), f"UNAVAILABLE leaks an internal address: {error.details()!r}"
        time.sleep(0.2)
    # The registry view answers with what the healthy backend has and names the missing one.
    listed = stack.gateway.ListModels(common_pb2.ListModelsRequest(), timeout=TIMEOUT)
    assert [(m.name, m.type) for m in listed.models] == [("cube", common_pb2.GENERATIVE)]
    assert len(listed.missing_backends) == 1, listed.missing_backends
    assert DISCRIMINATIVE_SERVICE in listed.missing_backends[0]
    assert "UNAVAILABLE" in listed.missing_backends[0]
    assert "127.0.0.1" not in listed.missing_backends[0]

    # Restart on the same port; the ready line is printed once it listens.
    stack.discriminative = start_discriminative(stack.discriminative_dir, port=port,
                                                extra=stack.discriminative_args)
    stack._processes.append(stack.discriminative)
    ready = time.monotonic()
    recovered = None
    while recovered is None and time.monotonic() - ready < 30.0:
        try:
            response = stack.disc_gw.Classify(disc.ClassifyRequest(model=ref("words"), texts=["bread"]),
                                              timeout=TIMEOUT)
            assert response.results[0].label == "cooking"
            recovered = time.monotonic() - ready
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAVAILABLE, e
            time.sleep(0.02)
    assert recovered is not None, "the gateway never routed to the restarted backend"
    # Issue 5 asks for about a second; the old gateway took 7 s. Generous for a loaded 2-core machine.
    print(f"routed to the restarted backend after {recovered:.3f} s")
    assert recovered < 2.5, f"the gateway needed {recovered:.2f} s to route to the restarted backend"
    listed = stack.gateway.ListModels(common_pb2.ListModelsRequest(), timeout=TIMEOUT)
    assert not listed.missing_backends
    assert {m.type for m in listed.models} == {common_pb2.GENERATIVE, common_pb2.DISCRIMINATIVE}
    wait_serving(stack.gw_channel)


def test_health_checks_are_answered_with_many_default_route_streams_open(tmp_path):
    """Behind the HTTP/2 front, the gateway's own gRPC server (health, Gateway, reflection) is reached over the front's
    two loopback connections, which it let carry --max_streams_per_connection streams each: with 2 x that many health
    Watch streams open (a few clients' worth), every later default-route call queued in the front without end, and a
    liveness probe's Check timed out. Here 12 Watch streams over three client connections of 4, then a Check."""
    generative = start_generative(tmp_path / "generative")
    discriminative = start_discriminative(tmp_path / "discriminative")
    gateway = start_gateway(generative.port, discriminative.port,
                            extra=["--max_streams_per_connection", "4", "--max_concurrent_streams", "64"])
    channels = [_separate_channel(gateway) for _ in range(4)]
    watches = []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=12)
    try:
        wait_serving(channels[0])  # the backends are up: health answers SERVING
        for channel in channels[:3]:
            stub = health_pb2_grpc.HealthStub(channel)
            watches += [stub.Watch(health_pb2.HealthCheckRequest()) for _ in range(4)]  # open until cancelled
        # Each Watch answers (the 9th used to wait for a slot, and no Watch gives its slot back).
        first = [pool.submit(next, call) for call in watches]
        for answer in first:
            assert answer.result(timeout=TIMEOUT).status == health_pb2.HealthCheckResponse.SERVING
        assert health_status(channels[3]) == health_pb2.HealthCheckResponse.SERVING
    finally:
        for call in watches:
            call.cancel()
        pool.shutdown(wait=True)
        for channel in channels:
            channel.close()
        for process in (gateway, generative, discriminative):
            assert process.stop() == 0
            process.release()


def test_large_request_metadata_is_served_and_harms_no_other_call(stack):
    """Request metadata between gRPC's default 8 KiB and the HTTP/2 front's 64 KiB header list: the front forwarded
    it, and the services (at gRPC's default) refused such calls at random or dropped the connection, which behind
    the front carries every client's calls (health checks failed with them). Now the services take what the front
    forwards: calls with 20 KiB of metadata are answered, through the gateway and directly, and the gateway stays
    healthy meanwhile."""
    big = [("x-big-token", "v" * 20000)]
    for stub in (stack.disc_gw, stack.disc):
        for _ in range(20):
            response = stub.Classify(disc.ClassifyRequest(model=ref("words"), texts=["bread"]), metadata=big,
                                     timeout=TIMEOUT)
            assert response.results[0].label == "cooking"
    assert health_status(stack.gw_channel) == health_pb2.HealthCheckResponse.SERVING
