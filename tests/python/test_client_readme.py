"""The README's Python client example runs as written against a fresh stack (gateway, port 0, through
$MAAS_TARGET), prints what the README shows and cleans up after itself."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

import maas_client

from maas_testing import Stack

SOURCE = pathlib.Path(os.environ.get("MAAS_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))


def readme_example():
    """(code, expected output) of the ```python block and the ```text block after it in "## Python client"."""
    text = (SOURCE / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Python client\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert section, "README.md lost its '## Python client' section"
    match = re.search(r"```python\n(.*?)```.*?```text\n(.*?)```", section.group(1), flags=re.S)
    assert match, "the Python client section has no ```python example followed by its ```text output"
    return match.group(1), match.group(2)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("client-readme")) as s:
        yield s


def test_readme_python_example_prints_what_the_readme_shows(stack, tmp_path):
    code, expected = readme_example()
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    env = dict(os.environ, MAAS_TARGET=stack.gateway_process.address)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected, f"--- README shows ---\n{expected}--- printed ---\n{done.stdout}"
    with maas_client.Models(stack.gateway_process.address) as models:
        assert models.list("readme-") == [], "the example did not delete the models it made"
