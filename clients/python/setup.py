"""Build hook of maas_client: generates the protobuf/gRPC modules (and typed .pyi stubs) from the repository's
proto/ directory with grpcio-tools, into maas_client/_proto/ of the build, with imports made package-relative.

The proto directory is ../../proto relative to this file, or $MAAS_PROTO_DIR.
"""

from __future__ import annotations

import os
import pathlib
import re
import sys
from typing import List

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent
# grpcio-tools writes `from maas.common.v1 import common_pb2`; inside the wheel that package is
# maas_client._proto.maas, so the absolute imports are rewritten (module names in the descriptor pool stay
# "maas/common/v1/common.proto", so these modules coexist with other copies of the same generated code).
_IMPORT = re.compile(r"^(from|import) maas\.", re.M)


def proto_dir() -> pathlib.Path:
    configured = os.environ.get("MAAS_PROTO_DIR")
    path = pathlib.Path(configured) if configured else HERE.parent.parent / "proto"
    if not (path / "maas").is_dir():
        raise SystemExit(f"maas_client build: no proto sources at {path} (set MAAS_PROTO_DIR to the repository's "
                         "proto/ directory)")
    return path


def generate(out: pathlib.Path) -> List[pathlib.Path]:
    """Runs grpc_tools.protoc for every .proto under proto/maas into `out`; returns the files written."""
    from grpc_tools import protoc  # build requirement

    try:
        from importlib.resources import files
        include = str(files("grpc_tools") / "_proto")
    except (ImportError, TypeError):  # Python < 3.9
        import pkg_resources
        include = pkg_resources.resource_filename("grpc_tools", "_proto")
    src = proto_dir()
    protos = sorted(str(p.relative_to(src)) for p in (src / "maas").rglob("*.proto"))
    out.mkdir(parents=True, exist_ok=True)
    args = ["grpc_tools.protoc", f"--proto_path={src}", f"--proto_path={include}", f"--python_out={out}",
            f"--pyi_out={out}", f"--grpc_python_out={out}", *protos]
    if protoc.main(args) != 0:
        raise SystemExit(f"maas_client build: grpc_tools.protoc failed on {protos}")
    written = []
    for path in sorted(out.rglob("*")):
        if path.suffix in (".py", ".pyi"):
            text = path.read_text(encoding="utf-8")
            path.write_text(_IMPORT.sub(r"\1 maas_client._proto.maas.", text), encoding="utf-8")
            written.append(path)
    for directory in [out, *(d for d in out.rglob("*") if d.is_dir())]:
        init = directory / "__init__.py"
        if not init.exists():
            init.write_text("")
            written.append(init)
    return written


class BuildPyWithProtos(build_py):
    """build_py, then the generated modules into <build_lib>/maas_client/_proto."""

    def run(self) -> None:
        super().run()
        out = pathlib.Path(self.build_lib) / "maas_client" / "_proto"
        generated = generate(out)
        print(f"maas_client build: generated {len(generated)} files from {proto_dir()}", file=sys.stderr)


def runtime_requirements() -> List[str]:
    """The generated modules check at import that grpcio and protobuf are at least what the generator targets, so
    the floors are those of the grpcio-tools doing this build."""
    import importlib.metadata as metadata
    tools = metadata.version("grpcio-tools")
    protobuf = [r for r in metadata.requires("grpcio-tools") or [] if r.replace(" ", "").startswith("protobuf")]
    return [f"grpcio>={tools}", *(protobuf or ["protobuf"]), "numpy>=1.24", "scipy>=1.10", "tqdm>=4.60"]


setup(cmdclass={"build_py": BuildPyWithProtos}, install_requires=runtime_requirements())
