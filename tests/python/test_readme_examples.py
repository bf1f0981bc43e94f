"""The README's promises: `make run`'s script brings the stack to SERVING with the demo models, every `console`
example in README.md prints what the README shows, and Ctrl-C (SIGINT) stops all three servers cleanly.

The stack runs from deploy/local/run.sh on free ports with a fresh model directory, so the examples' outputs
(versions, demo model contents) are those of a first start. Creation timestamps are compared by shape only.
"""

import json
import os
import pathlib
import re
import shlex
import signal
import socket
import subprocess
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from maas_testing import build_dir

SOURCE = pathlib.Path(os.environ.get("MAAS_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def readme_examples():
    """(command, expected output) pairs from the ```console blocks of README.md, in order."""
    text = (SOURCE / "README.md").read_text(encoding="utf-8")
    examples = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, output = chunk.partition("\n")
            examples.append((command, output))
    return examples


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("readme")
    # Port 0: each server picks a free port (no bind-close-reuse race); run.sh prints them.
    env = dict(os.environ, MAAS_GATEWAY_PORT="0", MAAS_GENERATIVE_PORT="0", MAAS_DISCRIMINATIVE_PORT="0")
    proc = subprocess.Popen(
        [str(SOURCE / "deploy/local/run.sh"), "--build_dir", str(build_dir()), "--model_dir", str(root / "models"),
         "--log_dir", str(root / "log")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output = []
    ready = threading.Event()

    def drain():
        for line in proc.stdout:
            output.append(line)
            if line.startswith("Ctrl-C stops all three"):
                ready.set()
    threading.Thread(target=drain, daemon=True).start()
    if not ready.wait(60):
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("run.sh did not report SERVING within 60 s:\n" + "".join(output))
    serving = re.search(r"gateway 127\.0\.0\.1:(\d+) \(generative :(\d+), discriminative :(\d+)\)",
                        "".join(output))
    assert serving, "".join(output)
    ports = dict(zip(("MAAS_GATEWAY_PORT", "MAAS_GENERATIVE_PORT", "MAAS_DISCRIMINATIVE_PORT"),
                     map(int, serving.groups())))
    yield {"proc": proc, "gateway": f"127.0.0.1:{ports['MAAS_GATEWAY_PORT']}", "ports": ports, "output": output,
           "root": root}
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)


def test_run_brings_every_server_to_serving_with_demo_models(stack):
    text = "".join(stack["output"])
    assert "demo: created demo-uniform" in text and "demo: trained demo-text" in text
    for port in stack["ports"].values():
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert (stack["root"] / "models" / "generative" / "demo-uniform" / "1" / "model.pb").is_file()
    assert (stack["root"] / "models" / "discriminative" / "demo-text" / "1" / "model.pb").is_file()


def test_readme_cli_examples_print_what_the_readme_shows(stack):
    examples = readme_examples()
    assert len(examples) >= 8, "README lost its CLI examples"
    maas = str(build_dir() / "bin" / "maas")
    for command, expected in examples:
        argv = shlex.split(command)
        assert argv[0] == "build/bin/maas", f"README example does not use build/bin/maas: {command}"
        argv = [maas, f"--target={stack['gateway']}"] + argv[1:]
        result = subprocess.run(argv, cwd=SOURCE, capture_output=True, text=True, timeout=30)
        got = result.stdout + result.stderr
        assert TIMESTAMP.sub("<time>", got) == TIMESTAMP.sub("<time>", expected), (
            f"$ {command}\n--- README shows ---\n{expected}--- printed ---\n{got}")


def test_try_lines_carry_the_target_of_overridden_ports(stack):
    text = "".join(stack["output"])
    assert f"maas models --target {stack['gateway']}" in text
    assert f"maas sample --target {stack['gateway']} --model demo-uniform" in text


def test_log_files_hold_only_json_lines_with_request_ids(stack):
    for name in ("generative", "discriminative", "gateway"):
        lines = (stack["root"] / "log" / f"{name}.log").read_text(encoding="utf-8").splitlines()
        assert lines, f"{name}.log is empty"
        for line in lines:
            entry = json.loads(line)  # only JSON lines: banners go to <name>.stderr
            assert entry["request_id"] and entry["code"]
        assert "serving" in (stack["root"] / "log" / f"{name}.stderr").read_text(encoding="utf-8")
    calls = [json.loads(l) for l in (stack["root"] / "log" / "discriminative.log").read_text().splitlines()]
    assert any(c.get("model") == "demo-text" and c.get("model_version") == 1 for c in calls)
    # A call through the gateway carries one request id in both logs (the gateway forwards the id it made).
    gateway_ids = {json.loads(l)["request_id"] for l in (stack["root"] / "log" / "gateway.log").read_text().splitlines()}
    assert gateway_ids & {c["request_id"] for c in calls}


def test_run_fails_fast_naming_the_server_whose_port_is_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        env = dict(os.environ, MAAS_GATEWAY_PORT="0", MAAS_GENERATIVE_PORT="0",
                   MAAS_DISCRIMINATIVE_PORT=str(busy.getsockname()[1]))
        result = subprocess.run(
            [str(SOURCE / "deploy/local/run.sh"), "--build_dir", str(build_dir()), "--model_dir",
             str(tmp_path / "models"), "--log_dir", str(tmp_path / "log")],
            env=env, capture_output=True, text=True, timeout=60, start_new_session=True)
    assert result.returncode == 1
    assert "maas-discriminative did not start" in result.stderr
    assert "MAAS_DISCRIMINATIVE_PORT" in result.stderr
    assert "SERVING" not in result.stdout


def test_ctrl_c_stops_all_three_cleanly(stack):
    proc = stack["proc"]
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole foreground group
    assert proc.wait(timeout=30) == 0
    time.sleep(0.2)
    text = "".join(stack["output"])
    assert "maas: stopped" in text
    for port in stack["ports"].values():
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still accepts connections"
