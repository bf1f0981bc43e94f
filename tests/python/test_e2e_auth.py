"""--auth_token_file: calls that change state (CreateModel, FitModel, Train, DeleteModel) need
'authorization: Bearer <token>', directly and through the gateway (which forwards the metadata); reads do not.
A missing or empty token file stops the server at start with a clear message."""

import subprocess

import grpc
import pytest

from maas.common.v1 import common_pb2
from maas.discriminative.v1 import discriminative_pb2 as disc
from maas.generative.v1 import generative_pb2 as gen

from maas_testing import TIMEOUT, Stack, binary, expect_rpc_error, ref, to_matrix

TOKEN = "s3cret-token"
GOOD = [("authorization", f"Bearer {TOKEN}")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e-auth")
    token_file = root / "token"
    token_file.write_text(f"  {TOKEN}\n")  # surrounding whitespace is not part of the token
    args = ["--auth_token_file", str(token_file)]
    with Stack(root, generative_args=args, discriminative_args=args) as s:
        s.token_file = token_file
        yield s


def create_uniform(stub, name, metadata=None):
    spec = gen.GenerativeModelSpec(uniform=gen.UniformSpec(low=[0.0], high=[1.0]))
    return stub.CreateModel(gen.CreateModelRequest(name=name, spec=spec), metadata=metadata, timeout=TIMEOUT)


@pytest.mark.parametrize("via", ["gateway", "direct"])
def test_create_and_delete_need_the_token(stack, via):
    stub = stack.gen_gw if via == "gateway" else stack.gen
    name = f"guarded-{via}"
    with expect_rpc_error(grpc.StatusCode.UNAUTHENTICATED, "authorization"):
        create_uniform(stub, name)
    with expect_rpc_error(grpc.StatusCode.UNAUTHENTICATED, "Bearer"):
        create_uniform(stub, name, metadata=[("authorization", f"Basic {TOKEN}")])
    with expect_rpc_error(grpc.StatusCode.PERMISSION_DENIED, "token"):
        create_uniform(stub, name, metadata=[("authorization", f"Bearer {TOKEN}x")])
    with expect_rpc_error(grpc.StatusCode.PERMISSION_DENIED):
        create_uniform(stub, name, metadata=[("authorization", "Bearer ")])
    assert create_uniform(stub, name, metadata=GOOD).info.version == 1

    # Reads need no token.
    got = stub.GetModel(gen.GetModelRequest(model=ref(name)), timeout=TIMEOUT)
    assert list(got.spec.uniform.high) == [1.0]
    batches = list(stub.Sample(gen.SampleRequest(model=ref(name), num_samples=3, seed=1), timeout=TIMEOUT))
    assert sum(b.x.rows for b in batches) == 3

    with expect_rpc_error(grpc.StatusCode.UNAUTHENTICATED):
        stub.DeleteModel(common_pb2.DeleteModelRequest(name=name), timeout=TIMEOUT)
    assert stub.GetModel(gen.GetModelRequest(model=ref(name)), timeout=TIMEOUT).info.version == 1
    deleted = stub.DeleteModel(common_pb2.DeleteModelRequest(name=name), metadata=GOOD, timeout=TIMEOUT)
    assert list(deleted.deleted_versions) == [1]


def test_fit_and_train_streams_need_the_token(stack):
    fit = [gen.FitModelRequest(config=gen.FitConfig(name="fitted", uniform=gen.UniformFit())),
           gen.FitModelRequest(rows=to_matrix([[0.0, 1.0], [2.0, 3.0]]))]
    with expect_rpc_error(grpc.StatusCode.UNAUTHENTICATED):
        stack.gen_gw.FitModel(iter(fit), timeout=TIMEOUT)
    assert stack.gen_gw.FitModel(iter(fit), metadata=GOOD, timeout=TIMEOUT).info.version == 1

    examples = [disc.LabeledText(text="the goal was scored", label="sports"),
                disc.LabeledText(text="bake the bread", label="food")]
    train = [disc.TrainRequest(config=disc.TrainConfig(name="texts")),
             disc.TrainRequest(batch=disc.TextBatch(examples=examples))]
    with expect_rpc_error(grpc.StatusCode.UNAUTHENTICATED):
        stack.disc_gw.Train(iter(train), timeout=TIMEOUT)
    assert stack.disc_gw.Train(iter(train), metadata=GOOD, timeout=TIMEOUT).info.version == 1
    # Nothing was stored by the refused calls, and classification is a read.
    listed = stack.disc_gw.ListModels(common_pb2.ListModelsRequest(all_versions=True), timeout=TIMEOUT)
    assert [(m.name, m.version) for m in listed.models] == [("texts", 1)]
    result = stack.disc_gw.Classify(disc.ClassifyRequest(model=ref("texts"), texts=["a goal"]), timeout=TIMEOUT)
    assert result.results[0].label == "sports"


def test_cli_sends_the_token_from_its_file(stack, tmp_path):
    data = tmp_path / "corpus.tsv"
    data.write_text("sports\tthe goal was scored\nfood\tbake the bread\n", encoding="utf-8")
    maas = [str(binary("maas")), f"--target={stack.gateway_process.address}"]
    refused = subprocess.run(maas + ["train", "--name", "cli-texts", "--data", str(data)],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr
    accepted = subprocess.run(maas + [f"--auth_token_file={stack.token_file}", "train", "--name", "cli-texts",
                                      "--data", str(data)], capture_output=True, text=True, timeout=30)
    assert accepted.returncode == 0, accepted.stderr


@pytest.mark.parametrize("server", ["maas-generative", "maas-discriminative"])
def test_missing_or_empty_token_file_stops_the_server(tmp_path, server):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    for token_file, mention in ((tmp_path / "missing", "missing"), (empty, "empty")):
        result = subprocess.run([str(binary(server)), "--port", "0", "--model_dir", str(tmp_path / "models"),
                                 "--auth_token_file", str(token_file)], capture_output=True, text=True, timeout=30)
        assert result.returncode != 0
        assert mention in result.stderr and "token file" in result.stderr
