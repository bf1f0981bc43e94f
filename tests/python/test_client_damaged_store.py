"""A model whose latest stored version is damaged (an empty or truncated model.pb: a full disk, a bad restore) on the
real binaries: every listing names it instead of leaving the model out, and calls on it answer DATA_LOSS.

Before, ListModels (latest versions) left such a model out without a word: `maas models` and Models.list() showed
nothing, and Models.get() on it answered NOT_FOUND, so a user could only conclude that the model was gone."""

import io
import json

import pytest

import maas_client
from maas_client.cli import main as pycli_main
from maas_client.pb import generative as gpb

from maas_testing import TIMEOUT, Stack, poll_until, run_maas_cli


def _uniform(low, high):
    return gpb.GenerativeModelSpec(uniform=gpb.UniformSpec(low=low, high=high))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("damaged-store")
    with Stack(root) as s:
        with maas_client.Models(s.gateway_process.address, timeout=TIMEOUT) as models:
            models.generative.create(_uniform([0.0], [1.0]), "box")
            models.generative.create(_uniform([0.0], [2.0]), "box")  # version 2: damaged below
            models.generative.create(_uniform([0.0], [3.0]), "intact")
            models.discriminative.train(["a goal", "the bread"], ["sports", "cooking"], name="words")
    # Damage box's latest version while no server runs (a restore that wrote an empty file), then serve the store
    # again: nothing is cached, every answer comes from the files.
    (root / "generative" / "box" / "2" / "model.pb").write_bytes(b"")
    with Stack(root) as s:
        yield s


def test_gateway_listing_names_the_damaged_latest_version(stack):
    with maas_client.Models(stack.gateway_process.address, timeout=TIMEOUT) as models:
        listed = models.list()
        assert [(m.name, m.version) for m in listed] == [("intact", 1), ("words", 1)]
        assert not listed.missing_backends and not listed.complete
        assert [(b.name, b.version, b.kind, b.code) for b in listed.unreadable] == [
            ("box", 2, "generative", "DATA_LOSS")]
        assert "ModelInfo" in listed.unreadable[0].message
        # All versions: the readable version 1 is listed, version 2 still named.
        every = models.list(all_versions=True)
        assert [(m.name, m.version) for m in every] == [("box", 1), ("intact", 1), ("words", 1)]
        assert [(b.name, b.version) for b in every.unreadable] == [("box", 2)]
        # Straight from the service (no gateway): the same, typed by the service.
        direct = maas_client.Models(stack.generative.address, timeout=TIMEOUT)
        with direct:
            assert [(b.name, b.version, b.kind) for b in direct.list().unreadable] == [("box", 2, "generative")]


def test_calls_on_the_damaged_model_answer_data_loss_not_not_found(stack):
    with maas_client.Models(stack.gateway_process.address, timeout=TIMEOUT) as models:
        with pytest.raises(maas_client.DataLossError):
            models.get("box")  # found through the listing; NotFoundError before
        assert models.get("box", 1).info.version == 1  # the readable version still answers
        with maas_client.GenerativeClient(stack.gateway_process.address, timeout=TIMEOUT) as gen:
            with pytest.raises(maas_client.DataLossError):
                gen.sample_array("box", 3, seed=1)


def test_cpp_cli_warns_on_stderr_and_reports_in_json(stack):
    port = stack.gateway_process.port
    result = run_maas_cli(port, "models")
    assert "box" not in result.stdout  # the table holds the readable models only
    assert "intact" in result.stdout
    assert ('maas: warning: generative model "box" version 2 cannot be read (DATA_LOSS: ' in result.stderr
            and "restore its file or delete the version" in result.stderr), result.stderr
    listed = json.loads(run_maas_cli(port, "--json", "models").stdout)
    assert [(b["name"], b["version"], b["type"], b["code"]) for b in listed["unreadable_versions"]] == [
        ("box", 2, "GENERATIVE", "DATA_LOSS")]
    assert listed["missing_backends"] == []


def test_python_cli_warns_on_stderr(stack, capsys):
    out = io.StringIO()
    capsys.readouterr()
    status = pycli_main(["--target", stack.gateway_process.address, "--progress", "never", "models", "list"],
                        out=out)
    err = capsys.readouterr().err
    assert status == 0, err
    assert [line.split("\t")[0] for line in out.getvalue().splitlines()] == ["intact", "words"]
    assert "warning: generative model 'box' version 2 cannot be read (DATA_LOSS: " in err, err


def test_server_warns_at_start_and_deleting_the_version_clears_the_listing(stack):
    def warned():
        assert 'model "box" version 2 cannot be read' in stack.generative.stderr_text()
    poll_until(warned, TIMEOUT, "the start-up warning naming box version 2")
    with maas_client.Models(stack.gateway_process.address, timeout=TIMEOUT) as models:
        assert models.delete("box", 2) == [2]
        listed = models.list()
        assert listed.complete
        assert [(m.name, m.version) for m in listed] == [("box", 1), ("intact", 1), ("words", 1)]
