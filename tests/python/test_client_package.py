"""The installed maas_client package: it is the venv's installed copy (what the client tests exercise), it carries
generated stubs with typed .pyi files for every contract, and its own code passes `mypy --strict`."""

import os
import pathlib
import subprocess
import sys
import sysconfig

import maas_client

SOURCE = pathlib.Path(os.environ.get("MAAS_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
BUILD = pathlib.Path(os.environ.get("MAAS_BUILD_DIR", SOURCE / "build"))


def test_the_tests_use_the_installed_package_with_generated_typed_stubs():
    installed = pathlib.Path(sysconfig.get_paths()["purelib"]) / "maas_client"
    assert pathlib.Path(maas_client.__file__).resolve().parent == installed.resolve()
    for proto in (SOURCE / "proto").rglob("*.proto"):
        generated = installed / "_proto" / proto.relative_to(SOURCE / "proto").with_suffix("")
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            path = generated.parent / (generated.name + suffix)
            assert path.is_file(), f"{path} was not generated"
            assert "from maas." not in path.read_text(), f"{path} imports the top-level maas package"
    assert (installed / "py.typed").is_file()


def test_mypy_strict_passes_on_the_package():
    cache = BUILD / "mypy_cache"
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", str(SOURCE / "clients/python/pyproject.toml"),
         "--cache-dir", str(cache), "-p", "maas_client"],
        capture_output=True, text=True, timeout=300, cwd=BUILD)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout
