"""A model name that cannot be a gRPC metadata value (a control character, non-ASCII text) is INVALID_ARGUMENT, and
the server lives on. The adapters report the call's model in the maas-model-name trailer, and gRPC aborts the process
on a metadata value outside printable ASCII: one GetModel of 'café', even through the gateway, killed the service."""

import grpc
import pytest

from maas.common.v1 import common_pb2
from maas.discriminative.v1 import discriminative_pb2 as disc
from maas.discriminative.v1 import discriminative_pb2_grpc
from maas.generative.v1 import generative_pb2 as gen
from maas.generative.v1 import generative_pb2_grpc

from maas_testing import TIMEOUT, Stack, expect_rpc_error

NAMES = ["new\nline", "caf\u00e9", "tab\tx", "del\x7f", "\u00e9t\u00e9-\U0001F600"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("names")) as running:
        yield running


@pytest.mark.parametrize("name", NAMES)
def test_names_no_metadata_can_carry_are_invalid_argument_and_the_servers_live_on(stack, name):
    ref = common_pb2.ModelRef(name=name)
    for generative, discriminative in ((stack.gen, stack.disc), (stack.gen_gw, stack.disc_gw)):
        with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "name"):
            generative.GetModel(gen.GetModelRequest(model=ref), timeout=TIMEOUT)
        with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "name"):
            discriminative.Classify(disc.ClassifyRequest(model=ref, texts=["a"]), timeout=TIMEOUT)
        with expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "name"):
            generative.CreateModel(gen.CreateModelRequest(
                name=name, spec=gen.GenerativeModelSpec(uniform=gen.UniformSpec(low=[0.0], high=[1.0]))),
                timeout=TIMEOUT)
    # Both services still serve (the stack's close() also checks each exits 0 on SIGTERM).
    assert stack.generative.running() and stack.discriminative.running()
    stack.gen.ListModels(common_pb2.ListModelsRequest(), timeout=TIMEOUT)
    stack.disc.ListModels(common_pb2.ListModelsRequest(), timeout=TIMEOUT)
