"""Peak memory of one fit on maas-generative, per family, as a multiple of the data streamed.

Starts maas-generative (no stream caps), streams MIB MiB of 8-column float64 rows (four shifted normal clusters, a
fixed seed; thresholded to 0/1 for bernoulli_mixture) to FitModel (gaussian_mixture: 4 FULL components; ppca and
factor_analysis: latent_dim 2; bernoulli_mixture: 4 components; EM families 2 iterations), and prints the server's
VmHWM (peak RSS) before and after the fit, and the peak as a multiple of the data. Size --max_fit_bytes and
--max_total_fit_bytes with it: a pod must hold the model cache plus the peaks of the fits it admits at once.

  make build && MAAS_BUILD_DIR=build .venv/bin/python bench/fit_memory.py [--mib 128 256] [--family ppca ...]
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


FAMILIES = {
    "gaussian_mixture": lambda: dict(gaussian_mixture=gen.GaussianMixtureFit(
        n_components=4, covariance_type=gen.FULL, max_iter=2)),
    "ppca": lambda: dict(ppca=gen.PpcaFit(latent_dim=2)),
    "factor_analysis": lambda: dict(factor_analysis=gen.FactorAnalysisFit(latent_dim=2, max_iter=2)),
    "bernoulli_mixture": lambda: dict(bernoulli_mixture=gen.BernoulliMixtureFit(n_components=4, max_iter=2)),
    "uniform": lambda: dict(uniform=gen.UniformFit()),
}


def measure(mib, family):
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
                yield gen.FitModelRequest(config=gen.FitConfig(name="memory", seed=1, **FAMILIES[family]()))
                chunk = 200_000
                for start in range(0, rows, chunk):
                    n = min(chunk, rows - start)
                    values = rng.normal(size=(n, 8)) + start // chunk % 4
                    if family == "bernoulli_mixture":
                        values = (values > start // chunk % 4).astype(np.float64)
                    yield gen.FitModelRequest(rows=to_matrix(values))

            before = peak_gb(server.proc.pid)
            response = stub.FitModel(requests(), timeout=1200)
            assert response.trace.num_rows == rows
            after = peak_gb(server.proc.pid)
            channel.close()
        finally:
            server.stop()
            server.release()
    data_gb = rows * 64 / 1e9
    print(f"{family:17s} {mib:5d} MiB of rows ({data_gb:.3f} GB): server peak RSS {before:.2f} GB before the fit, "
          f"{after:.2f} GB after = {after / data_gb:.1f}x the data")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--family", nargs="+", default=sorted(FAMILIES), choices=sorted(FAMILIES))
    args = parser.parse_args()
    for family in args.family:
        for mib in args.mib:
            measure(mib, family)


if __name__ == "__main__":
    main()
