"""Peak memory of one gaussian_mixture fit on maas-generative, as a multiple of the data streamed.

Starts maas-generative (no stream caps), streams MIB MiB of 8-column float64 rows (four shifted normal clusters, a
fixed seed) to FitModel with n_components=4, FULL covariances and 2 EM iterations, and prints the server's VmHWM
(peak RSS) before and after the fit, and the peak as a multiple of the data. Size --max_fit_bytes and
--max_total_fit_bytes with it: a pod must hold the model cache plus the peaks of the fits it admits at once.

  make build && MAAS_BUILD_DIR=build .venv/bin/python bench/fit_memory.py [--mib 128 256]
"""

import argparse
import os
import pathlib
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("MAAS_BUILD_DIR", ROOT / "build")).resolve()
os.environ["MAAS_BUILD_DIR"] = str(BUILD)
sys.path[:0] = [str(BUILD / "python"), str(ROOT / "tests" / "python")]

from maas.generative.v1 import generative_pb2 as gen  # noqa: E402
from maas.generative.v1 import generative_pb2_grpc  # noqa: E402
from maas_testing import channel_to, start_generative, to_matrix, wait_serving  # noqa: E402


def peak_gb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e9
    raise RuntimeError("no VmHWM in /proc status")


def measure(mib):
    rows = mib * (1 << 20) // 64  # 8 float64 columns
    with tempfile.TemporaryDirectory() as model_dir:
        server = start_generative(pathlib.Path(model_dir), extra=[
            "--max_fit_bytes=0", "--max_total_fit_bytes=0", f"--max_fit_rows={rows}"])
        try:
            channel = channel_to(server)
            wait_serving(channel)
            stub = generative_pb2_grpc.GenerativeServiceStub(channel)
            rng = np.random.default_rng(0)

            def requests():
                yield gen.FitModelRequest(config=gen.FitConfig(name="memory", seed=1, gaussian_mixture=(
                    gen.GaussianMixtureFit(n_components=4, covariance_type=gen.FULL, max_iter=2))))
                chunk = 200_000
                for start in range(0, rows, chunk):
                    n = min(chunk, rows - start)
                    yield gen.FitModelRequest(rows=to_matrix(rng.normal(size=(n, 8)) + start // chunk % 4))

            before = peak_gb(server.proc.pid)
            response = stub.FitModel(requests(), timeout=1200)
            assert response.trace.num_rows == rows
            after = peak_gb(server.proc.pid)
            channel.close()
        finally:
            server.stop()
            server.release()
    data_gb = rows * 64 / 1e9
    print(f"{mib:5d} MiB of rows ({data_gb:.3f} GB): server peak RSS {before:.2f} GB before the fit, "
          f"{after:.2f} GB after = {after / data_gb:.1f}x the data")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, nargs="+", default=[128, 256])
    for mib in parser.parse_args().mib:
        measure(mib)


if __name__ == "__main__":
    main()
