"""issue 5 item 9: wrong bearer tokens were not rate-limited (3,000 guesses at 7,165/s). Now 20 wrong tokens from
one client host within a minute lock that host's state-changing calls out for the rest of the minute
(RESOURCE_EXHAUSTED, even with the right token, so guessing cannot go on); reads stay open. Its own server: the
lock-out would disturb other tests."""

import grpc
import pytest

from maas.common.v1 import common_pb2
from maas.generative.v1 import generative_pb2 as gen, generative_pb2_grpc

from maas_testing import TIMEOUT, channel_to, start_generative, wait_serving

TOKEN = "right-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e-auth-limit")
    (root / "token").write_text(TOKEN)
    process = start_generative(root / "models", extra=["--auth_token_file", str(root / "token")])
    yield process
    assert process.stop() == 0
    process.release()


def create(stub, token, name="guarded"):
    spec = gen.GenerativeModelSpec(uniform=gen.UniformSpec(low=[0.0], high=[1.0]))
    return stub.CreateModel(gen.CreateModelRequest(name=name, spec=spec),
                            metadata=[("authorization", f"Bearer {token}")], timeout=TIMEOUT)


def test_wrong_tokens_are_limited_per_client_host(server):
    with channel_to(server) as channel:
        wait_serving(channel)
        stub = generative_pb2_grpc.GenerativeServiceStub(channel)
        assert create(stub, TOKEN, "first").info.version == 1
        for guess in range(20):
            with pytest.raises(grpc.RpcError) as error:
                create(stub, f"guess-{guess}")
            assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as error:
            create(stub, "guess-21")
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "too many wrong bearer tokens" in error.value.details()
        with pytest.raises(grpc.RpcError) as error:
            create(stub, TOKEN, "second")  # the right token too: guessing must not go on
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        listed = stub.ListModels(common_pb2.ListModelsRequest(), timeout=TIMEOUT)  # reads stay open
        assert [m.name for m in listed.models] == ["first"]
