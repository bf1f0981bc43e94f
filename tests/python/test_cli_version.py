"""`maas --version` names the commit the binary was built from.

The stamp used to be taken when CMake configured the build, so a build tree kept printing the commit of its
configure after later commits and rebuilds (a build configured at fc2e901 printed git-fc2e901-dirty at 7d8f062, py44
hunt). It is now written at every build. `make test` builds before it tests, so the binary under test is the build of
the source tree's HEAD: the hash it prints must be HEAD's. Outside a git checkout (a source tarball) it prints
"git-unknown", and there is no HEAD to compare with.
"""

import os
import pathlib
import re
import subprocess

import pytest

from maas_testing import binary

SOURCE = pathlib.Path(os.environ.get("MAAS_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))


def head_commit():
    try:
        result = subprocess.run(["git", "-C", str(SOURCE), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip()


def test_version_names_the_commit_of_the_source_tree():
    out = subprocess.run([str(binary("maas")), "--version"], capture_output=True, text=True, check=True).stdout
    match = re.fullmatch(r"maas git-(\S+) \(protocol maas\.\*\.v1\)\n", out)
    assert match, out
    head = head_commit()
    if head is None:
        assert match.group(1) == "unknown"
        pytest.skip("not a git checkout: no commit to compare with")
    described = match.group(1).removesuffix("-dirty")
    # `git describe --always` is the abbreviated hash, or TAG-N-gHASH once the history has tags.
    abbreviated = described.rsplit("-g", 1)[-1]
    assert head.startswith(abbreviated), f"maas --version says {out.strip()!r}, the source tree is at {head}"
