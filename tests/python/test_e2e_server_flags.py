"""Each server binary's --help lists its own flags (with defaults) and exits 0."""

import os
import subprocess

import grpc
import pytest

from maas.discriminative.v1 import discriminative_pb2 as disc, discriminative_pb2_grpc
from maas.generative.v1 import generative_pb2 as gen, generative_pb2_grpc
from maas_testing import (TIMEOUT, binary, channel_to, expect_rpc_error, start_discriminative, start_generative,
                          to_matrix, wait_serving)

OWN_FLAGS = {
    "maas-generative": ["--threads", "--max_concurrent_calls", "--max_queued_calls", "--model_cache_bytes",
                        "--max_fit_bytes", "--max_total_fit_bytes", "--port", "--host", "--model_dir", "--log_flush_ms",
                        "--malloc_retain_mb", "--malloc_release_mb"],
    "maas-discriminative": ["--threads", "--max_concurrent_calls", "--max_queued_calls", "--model_cache_bytes",
                            "--max_train_bytes", "--max_total_train_bytes", "--train_threads", "--port", "--host",
                            "--model_dir", "--log_file", "--log_flush_ms", "--malloc_retain_mb",
                            "--malloc_release_mb"],
    "maas-gateway": ["--port", "--host", "--generative_target", "--discriminative_target", "--log_file",
                     "--log_flush_ms"],
    # The 2026-12-06 README audit: its --help printed "No flags matched." and exited 1.
    "maas-h2front": ["--port", "--host", "--route", "--default_target", "--backend_connections",
                     "--stream_window_bytes", "--tls_cert_file"],
}


@pytest.mark.parametrize("name", sorted(OWN_FLAGS))
def test_help_lists_the_binarys_own_flags_and_exits_0(name):
    for flag in ("--help", "-h"):
        result = subprocess.run([binary(name), flag], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        for own in OWN_FLAGS[name]:
            assert f"  {own} (default: " in result.stdout, own
        assert result.stdout.startswith("maas")  # the usage line
        assert "\nFlags:\n" in result.stdout
        assert "--helpfull" in result.stdout


@pytest.mark.parametrize("name", sorted(OWN_FLAGS))
def test_helpfull_adds_the_libraries_flags_and_exits_0(name):
    """Abseil's own --helpfull exited 1 after printing (the README promised --help's behaviour plus the libraries')."""
    result = subprocess.run([binary(name), "--helpfull"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    own_part, _, libraries = result.stdout.partition("\nFlags from ")
    for own in OWN_FLAGS[name]:
        assert f"  {own} (default: " in own_part, own
    assert "  --flagfile (default: " in libraries  # Abseil's


@pytest.mark.parametrize("start, says", [(start_discriminative, "word counts on the baseline SIMD path"),
                                         (start_generative, "sampling kernels on the baseline SIMD path")])
def test_both_services_name_their_simd_path(start, says, tmp_path, monkeypatch):
    """The ready line says which instruction-set path counts words / runs the sampling kernels (MAAS_SIMD lowers it;
    baseline runs anywhere). The generative one did not say: a cross-level check could not see which level ran."""
    monkeypatch.setenv("MAAS_SIMD", "baseline")
    process = start(tmp_path)
    try:
        assert says in process.stderr_text()
    finally:
        process.stop()
        process.release()


@pytest.mark.parametrize("name", ["maas-discriminative", "maas-generative"])
@pytest.mark.parametrize("value", ["AVX2", "sse2", " avx2", ""])
def test_both_services_refuse_an_unknown_maas_simd_value_naming_it(name, value, tmp_path):
    """A misspelt MAAS_SIMD used to be ignored (the best level ran), so a bit-identity check across levels compared
    the best level with itself and passed."""
    result = subprocess.run([binary(name), "--port", "0", "--model_dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "MAAS_SIMD": value})
    assert result.returncode != 0
    assert f'MAAS_SIMD is "{value}"; it must be baseline, avx2 or avx512' in result.stderr, result.stderr


def test_gateway_refuses_a_reconnect_backoff_below_1ms_naming_the_flag():
    result = subprocess.run([binary("maas-gateway"), "--port", "0", "--reconnect_backoff_max_ms", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--reconnect_backoff_max_ms (0) must be >= 1" in result.stderr, result.stderr


@pytest.mark.parametrize("name", sorted(set(OWN_FLAGS) - {"maas-h2front"}))  # the servers with a call log
def test_every_server_refuses_a_negative_log_flush_interval_naming_the_flag(name):
    result = subprocess.run([binary(name), "--port", "0", "--log_flush_ms", "-1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--log_flush_ms must be >= 0" in result.stderr, result.stderr


@pytest.mark.parametrize("name", ["maas-discriminative", "maas-generative"])
@pytest.mark.parametrize("value", ["-1", "33"])
def test_both_services_refuse_malloc_retention_outside_0_to_32_naming_the_flag(name, value, tmp_path):
    result = subprocess.run([binary(name), "--port", "0", "--model_dir", str(tmp_path), "--malloc_retain_mb", value],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"--malloc_retain_mb must be 0 to 32; got {value}" in result.stderr, result.stderr


@pytest.mark.parametrize("name", ["maas-discriminative", "maas-generative"])
def test_both_services_refuse_a_negative_malloc_release_naming_the_flag(name, tmp_path):
    result = subprocess.run([binary(name), "--port", "0", "--model_dir", str(tmp_path), "--malloc_release_mb", "-1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--malloc_release_mb must be >= 0; got -1" in result.stderr, result.stderr



@pytest.mark.parametrize("name", ["maas-generative", "maas-discriminative"])
def test_the_server_wide_training_stream_budget_is_wired_and_named(name, tmp_path):
    """--max_total_fit_bytes / --max_total_train_bytes reach the services: a stream that passes it alone (every
    per-stream cap is far above) ends RESOURCE_EXHAUSTED naming the flag, and nothing is stored."""
    generative = name == "maas-generative"
    flag = "--max_total_fit_bytes" if generative else "--max_total_train_bytes"
    process = (start_generative if generative else start_discriminative)(tmp_path, extra=[f"{flag}=200"])
    try:
        channel = channel_to(process)
        wait_serving(channel)
        if generative:
            stub = generative_pb2_grpc.GenerativeServiceStub(channel)
            requests = [gen.FitModelRequest(config=gen.FitConfig(name="big", uniform=gen.UniformFit())),
                        gen.FitModelRequest(rows=to_matrix([[0.5, 0.25]] * 20))]
            call = stub.FitModel
        else:
            stub = discriminative_pb2_grpc.DiscriminativeServiceStub(channel)
            examples = [disc.LabeledText(text=f"text number {i} about something", label="ab"[i % 2])
                        for i in range(20)]
            requests = [disc.TrainRequest(config=disc.TrainConfig(name="big")),
                        disc.TrainRequest(batch=disc.TextBatch(examples=examples))]
            call = stub.Train
        with expect_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, flag, "nothing was stored"):
            call(iter(requests), timeout=TIMEOUT)
        channel.close()
        assert not list(tmp_path.rglob("model.pb"))
    finally:
        process.stop()
        process.release()
