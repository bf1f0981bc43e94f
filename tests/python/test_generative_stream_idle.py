"""--stream_idle_timeout_seconds ends streams whose client sends nothing, never streams a client only reads.

The stream watchdog timed writes too: a Sample stream whose reader paused longer than the timeout (a consumer busy
with a batch) was cut, and HTTP/2 flow control lets a reader buffer several messages, so one write of a steady slow
reader waits through several of its reads (a hunt saw Sample streams of 8 MB batches read every second cut under a
3 s timeout). Real binaries."""

import time

import grpc
import numpy as np

from maas.common.v1 import common_pb2 as cp
from maas.generative.v1 import generative_pb2 as gp
from maas.generative.v1 import generative_pb2_grpc as gg
from maas_testing import start_generative


def test_a_paused_sample_reader_is_not_cut_and_a_silent_fit_is(tmp_path):
    server = start_generative(tmp_path / "models", extra=["--stream_idle_timeout_seconds", "0.3"])
    try:
        channel = grpc.insecure_channel(server.address, options=[("grpc.max_receive_message_length", 64 << 20)])
        stub = gg.GenerativeServiceStub(channel)
        stub.CreateModel(gp.CreateModelRequest(name="box", spec=gp.GenerativeModelSpec(
            uniform=gp.UniformSpec(low=[0.0] * 50, high=[1.0] * 50))), timeout=30)
        # A reader that pauses longer than the timeout (a consumer busy with a batch), then reads on: the stream's
        # writes wait on it all that time, and it is not cut.
        batches = 0
        for batch in stub.Sample(gp.SampleRequest(model=cp.ModelRef(name="box"), num_samples=20000 * 30, seed=1,
                                                  batch_size=20000), timeout=120):  # 8 MB messages
            batches += 1
            if batches == 2:
                time.sleep(1.5)
        assert batches == 30

        # A FitModel stream that sends its config and then nothing is ended, and stores nothing.
        def silent():
            yield gp.FitModelRequest(config=gp.FitConfig(name="silent", uniform=gp.UniformFit()))
            time.sleep(5)
        try:
            stub.FitModel(silent(), timeout=30)
            raise AssertionError("a silent FitModel stream was not ended")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.CANCELLED, error
            assert "--stream_idle_timeout_seconds" in error.details(), error
        assert not stub.ListModels(cp.ListModelsRequest(name_prefix="silent"), timeout=30).models
        channel.close()
    finally:
        assert server.stop() == 0
