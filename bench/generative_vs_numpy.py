#!/usr/bin/env python3
"""maas generative core vs numpy, side by side, one core (issue 7 item 8). Run by `make bench`.

  (a) sampling gaussian_mixture (K=10, full) and ppca at D=784, L=50; bernoulli_mixture (K=10) and uniform at D=784;
  (b) batched log p(x|z) for ppca and mlp_decoder (D=784, L=50, one tanh hidden layer H=256), with the FLOP
      limit of this core (measured: the larger of numpy's DGEMM n=2000 and a register-only stream of independent
      vector FMAs, the true peak; OpenBLAS's DGEMM stays below it);
  (c) samples needed to reach SE = 0.01 nats with PRIOR vs IMPORTANCE vs AIS on a ppca model with L=50, then one
      row's PRIOR / IMPORTANCE / AIS estimate on (b)'s mlp_decoder with their CPU seconds;
  (d) the same ppca sampling served over gRPC by the real maas-generative binary (--threads 1) to a C++ client
      (bench_driver served) and a Python client: rows/s, MB/s, server and client CPU per row, the 2-core bound;
  (e) EXACT log p(x) of a batch of rows (ppca, the full mixture) against scikit-learn's score_samples and numpy,
      and bernoulli_mixture's against numpy;
  (f) fits (factor_analysis, ppca, the full, diagonal and spherical mixtures) against scikit-learn's on the same
      rows.

maas runs in-process through build/bin/maas_generative_bench_driver (one thread); numpy runs in this process with the
venv's own OpenBLAS, OPENBLAS_NUM_THREADS=1 and the machine's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed (this
script re-executes itself without them before importing numpy), and the kernel threadpoolctl reports is printed.

  MAAS_BUILD_DIR=build .venv/bin/python bench/generative_vs_numpy.py [--seconds 2] [--parts abcdef]
"""

import os
import sys

if any(v in os.environ for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")) or \
        os.environ.get("OPENBLAS_NUM_THREADS") != "1":
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
from servers import start_logged  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_info  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("MAAS_BUILD_DIR", ROOT / "build")).resolve()
sys.path.insert(0, str(BUILD / "python"))
sys.path.insert(0, str(ROOT / "tests" / "python"))

import grpc  # noqa: E402
from maas.common.v1 import common_pb2  # noqa: E402
from maas.generative.v1 import generative_pb2 as gen  # noqa: E402
from maas.generative.v1 import generative_pb2_grpc  # noqa: E402

D, L, K, H = 784, 50, 10, 256


def matrix(a):
    a = np.asarray(a, dtype=float)
    return common_pb2.Matrix(rows=a.shape[0], cols=a.shape[1], values=a.ravel().tolist())


def timed(fn, seconds):
    """Calls fn() until `seconds` pass; returns (calls per second, last result)."""
    fn()
    calls, start = 0, time.perf_counter()
    while True:
        result = fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls / elapsed, result


def cpu_rate(fn, seconds):
    """Calls per second of process CPU time: the median over 5 windows of seconds/5 each (robust on a loaded host)."""
    fn()
    rates = []
    for _ in range(5):
        calls, start = 0, time.process_time()
        while True:
            fn()
            calls += 1
            elapsed = time.process_time() - start
            if elapsed >= seconds / 5:
                rates.append(calls / elapsed)
                break
    return sorted(rates)[2]


def driver(*args):
    out = subprocess.run([str(BUILD / "bin" / "maas_generative_bench_driver"), *map(str, args)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def binary_and_box_params():
    """The bernoulli_mixture (K components over D binary values) and uniform (a D-dimensional box) of parts (a)
    and (e): weights, probabilities, the box's lower bounds and widths (their own generator, so that the other
    parts' draws do not move)."""
    params = np.random.default_rng(1)
    weights = params.dirichlet(np.ones(K))
    weights /= weights.sum()
    return weights, params.random((K, D)), params.standard_normal(D), params.random(D) + 0.1


BINARY_PARAMS = binary_and_box_params()


def sampling_vs_numpy(rng, specs, w, mu, sigma2, weights, means, chols, peak, seconds):
    """Part (a): sampling ppca, gaussian_mixture (K=10, full), bernoulli_mixture (K=10) and uniform, maas vs numpy,
    rows per CPU second, one thread.

    numpy's side is the idiomatic vectorised sampler: standard normals in one call, then one BLAS GEMM (ppca: z W^T;
    gmm: per component, its rows' eps L_k^T after a multinomial split of the batch).
    """
    n = 4096
    print(f"(a) sampling {n}-row batches, rows per CPU second (one thread, median of 5 windows)")

    def numpy_ppca():
        z = rng.standard_normal((n, L))
        return z @ w.T + mu + np.sqrt(sigma2) * rng.standard_normal((n, D))

    def numpy_gmm():
        counts = rng.multinomial(n, weights / weights.sum())
        return [means[k] + rng.standard_normal((c, D)) @ chols[k].T for k, c in enumerate(counts)]

    # bernoulli_mixture and uniform: one uniform per value, numpy's rng.random against maas's Philox uniforms
    # (FillUniforms).
    bmm_weights, bmm_probs, box_low, box_width = BINARY_PARAMS

    def numpy_bmm():
        z = rng.choice(K, n, p=bmm_weights)
        return (rng.random((n, D)) < bmm_probs[z]).astype(np.float64)

    def numpy_box():
        return box_low + box_width * rng.random((n, D))

    rows = {}
    for name, fn in (("ppca", numpy_ppca), ("gmm", numpy_gmm), ("bmm", numpy_bmm), ("box", numpy_box)):
        numpy_rows = cpu_rate(fn, seconds) * n
        result = driver("sample", specs[name], n, seconds)
        rows[name] = result["rows_per_second"]
        print(f"  {name:5s} numpy {numpy_rows / 1e3:8.1f} k  maas {rows[name] / 1e3:8.1f} k  "
              f"ratio {rows[name] / numpy_rows:5.2f}x   (maas SIMD level: {result['simd']})")
        if name == "gmm":
            numpy_gmm_rows = numpy_rows
    # The arithmetic of the gmm target. Per row: D normals and x = mu_k + L_k eps, which is D(D+1)/2 multiply-adds
    # for the triangular L_k (maas) and D^2 for numpy's dense GEMM with L_k^T.
    tri_flop = D * (D + 1)
    bound = peak / tri_flop
    print(f"  gmm arithmetic: {tri_flop / 1e6:.2f} MFLOP/row (triangular L_k eps) at the {peak / 1e9:.1f} GFLOP/s limit "
          f"-> at most {bound / 1e3:.1f} k rows/s = {bound / numpy_gmm_rows:.2f}x numpy even if the {D} normals per row "
          f"were free (numpy's dense GEMM runs at {numpy_gmm_rows * 2 * D * D / 1e9:.1f} GFLOP/s, "
          f"{100 * numpy_gmm_rows * 2 * D * D / peak:.0f}% of the limit); maas's triangular product runs at "
          f"{rows['gmm'] * tri_flop / 1e9:.1f} GFLOP/s = {100 * rows['gmm'] * tri_flop / peak:.0f}% of the limit, "
          f"normals included")
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--parts", default="abcdef", help="which parts to run, e.g. 'b' (default: abcdef)")
    args = parser.parse_args()
    seconds, parts = args.seconds, set(args.parts)
    rng = np.random.default_rng(0)
    blas = [i for i in threadpool_info() if i.get("internal_api") in ("openblas", "mkl", "blis")]
    print("numpy", np.__version__, "BLAS:",
          ", ".join(f"{b['internal_api']} {b.get('version')} kernel={b.get('architecture')} "
                    f"threads={b.get('num_threads')}" for b in blas) or "reference BLAS")
    a = rng.standard_normal((2000, 2000))
    gemm_flops = 2 * 2000 ** 3 * cpu_rate(lambda: a @ a, seconds)
    fma = driver("peak", seconds)
    peak = max(gemm_flops, fma["flops_per_second"])
    print(f"FLOP limit of this core, fp64, one thread (process CPU time): {peak / 1e9:.1f} GFLOP/s = the larger of "
          f"numpy DGEMM n=2000 {gemm_flops / 1e9:.1f} GFLOP/s and independent {fma['path']} FMAs "
          f"{fma['flops_per_second'] / 1e9:.1f} GFLOP/s\n")

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="maas-bench-"))
    w = rng.standard_normal((D, L)) / np.sqrt(L)
    mu = rng.standard_normal(D) * 0.1
    sigma2 = 0.05
    ppca = gen.GenerativeModelSpec(ppca=gen.PpcaSpec(loadings=matrix(w), mean=mu.tolist(), noise_variance=sigma2))
    weights = rng.dirichlet(np.ones(K))
    means = rng.standard_normal((K, D))
    chols = []
    for _ in range(K):
        b = rng.standard_normal((D, D)) / np.sqrt(D)
        chols.append(np.linalg.cholesky(b @ b.T + 0.5 * np.eye(D)))
    gmm = gen.GenerativeModelSpec(gaussian_mixture=gen.GaussianMixtureSpec(
        covariance_type=gen.FULL, weights=(weights / weights.sum()).tolist(), means=matrix(means),
        covariances=matrix(np.vstack([c @ c.T for c in chols]))))
    w1, b1 = rng.standard_normal((H, L)) / np.sqrt(L), 0.1 * rng.standard_normal(H)
    w2, b2 = rng.standard_normal((D, H)) / np.sqrt(H), 0.1 * rng.standard_normal(D)
    mlp = gen.GenerativeModelSpec(mlp_decoder=gen.MlpDecoderSpec(
        latent_dim=L, likelihood=gen.GAUSSIAN, noise_variance=sigma2, layers=[
            gen.DenseLayer(weight=matrix(w1), bias=b1.tolist(), activation=gen.TANH),
            gen.DenseLayer(weight=matrix(w2), bias=b2.tolist(), activation=gen.IDENTITY)]))
    bmm_weights, bmm_probs, box_low, box_width = BINARY_PARAMS
    bmm = gen.GenerativeModelSpec(bernoulli_mixture=gen.BernoulliMixtureSpec(
        weights=bmm_weights.tolist(), probabilities=matrix(bmm_probs)))
    box = gen.GenerativeModelSpec(uniform=gen.UniformSpec(low=box_low.tolist(),
                                                          high=(box_low + box_width).tolist()))
    specs = {}
    for name, spec in (("ppca", ppca), ("gmm", gmm), ("mlp", mlp), ("bmm", bmm), ("box", box)):
        specs[name] = tmp / f"{name}.pb"
        specs[name].write_bytes(spec.SerializeToString())

    rows = {}
    # (a) sampling ------------------------------------------------------------------------------------------------
    if "a" in parts:
        rows.update(sampling_vs_numpy(rng, specs, w, mu, sigma2, weights, means, chols, peak, seconds))

    # (b) batched log p(x|z) ----------------------------------------------------------------------------------------
    if "b" in parts:
        s = 10000
        z = rng.standard_normal((s, L))
        x = rng.standard_normal(L) @ w.T + mu + np.sqrt(sigma2) * rng.standard_normal(D)
        print(f"\n(b) log p(x|z), S={s} latents per x, evaluations/s (one thread; process CPU time, median of 5 "
              f"windows, both sides)")

        def numpy_ppca_loglik():
            r = x - mu - z @ w.T
            return -0.5 * (D * np.log(2 * np.pi * sigma2) + (r * r).sum(1) / sigma2)

        def numpy_mlp_loglik():
            f = np.tanh(z @ w1.T + b1) @ w2.T + b2
            r = x - f
            return -0.5 * (D * np.log(2 * np.pi * sigma2) + (r * r).sum(1) / sigma2)

        # FLOPs per evaluation: `direct` is the textbook form numpy runs (GEMMs + residual); maas runs the expanded
        # (Gram) form when it can: ppca |x-mu|^2 - 2 b.z + z^T G z (2 L^2 + 4 L); mlp_decoder with an identity
        # output layer |x-b|^2 - 2 c.h + |C^T h|^2 with W^T W = C C^T, C triangular (2 L H + H (H + 1) + 5 H useful
        # FLOPs, not counting the zeros a SIMD panel multiplies; see mlp_decoder.cc). tanh is counted on neither side.
        cases = (("ppca", numpy_ppca_loglik, 2 * D * L + 3 * D, 2 * L * L + 4 * L),
                 ("mlp", numpy_mlp_loglik, 2 * (L * H + H * D) + 3 * D, 2 * L * H + H * (H + 1) + 5 * H))
        for name, fn, direct, expanded in cases:
            numpy_eval = cpu_rate(fn, seconds) * s
            result = driver("loglik", specs[name], s, seconds)
            maas_eval = result["evaluations_per_second"]
            executed = expanded if (name == "ppca" or result.get("mlp_gram_form")) else direct
            print(f"  {name:5s} numpy {numpy_eval / 1e6:7.3f} M  maas {maas_eval / 1e6:7.3f} M  ratio "
                  f"{maas_eval / numpy_eval:5.2f}x  (target >= 5x)")
            print(f"        numpy: {direct / 1e3:.1f} kFLOP each -> {numpy_eval * direct / 1e9:5.1f} GFLOP/s = "
                  f"{100 * numpy_eval * direct / peak:3.0f}% of the FLOP limit; direct-form bound "
                  f"{peak / direct / 1e6:.3f} M/s")
            print(f"        maas ({result.get('kernel_path')}, {'expanded' if executed == expanded else 'direct'} "
                  f"form): {executed / 1e3:.1f} kFLOP each -> {maas_eval * executed / 1e9:5.1f} GFLOP/s = "
                  f"{100 * maas_eval * executed / peak:3.0f}% of the FLOP limit (target >= 50%); "
                  f"{100 * maas_eval * direct / peak:.0f}% of the direct-form bound")

    # (c) samples to SE 0.01 ------------------------------------------------------------------------------------------
    if "c" in parts:
        print("\n(c) samples per row to reach SE 0.01 nats on ppca (D=784, L=50); SE ~ 1/sqrt(N) extrapolation")
        for estimator, num, temps in (("PRIOR", 20000, 1), ("IMPORTANCE", 1000, 1), ("AIS", 16, 1000)):
            result = driver("estimate", specs["ppca"], estimator, num, temps)
            se, ess = result["standard_error"], result["ess"]
            if se == 0:
                needed = "1 (zero variance: exact posterior)"
            elif ess < 0.01 * num or ess < 10:
                needed = f"not measurable: ESS {ess:.1f} of {num} (far from the asymptotic regime; astronomically many)"
            else:
                needed = f"{num * (se / 0.01) ** 2:,.0f}"
                if estimator == "AIS":
                    needed += f" chains x {temps} temperatures"
            error = abs(result["log_likelihood"] - result["exact"])
            print(f"  {estimator:10s} N={num:6d} SE={se:.4g} ESS={ess:.1f} |est-exact|={error:.3g}"
                  f" ({result['seconds']:.2f} s) -> {needed}")

        print("\n(c') one row's estimate on the mlp_decoder of (b) (L=50, H=256, D=784; no closed form): the seconds of"
              " IMPORTANCE include its proposal (the posterior-mode searches, the Laplace Hessians)")
        for estimator, num, temps in (("PRIOR", 20000, 1), ("IMPORTANCE", 1000, 1), ("AIS", 16, 1000)):
            result = driver("estimate", specs["mlp"], estimator, num, temps)
            print(f"  {estimator:10s} N={num:6d} log p(x)={result['log_likelihood']:.4f} SE={result['standard_error']:.4g}"
                  f" ESS={result['ess']:.1f} ({result['seconds']:.3f} s)")

    # (d) served sampling ---------------------------------------------------------------------------------------------
    if "d" in parts:
        print("\n(d) ppca sampling served over gRPC (one maas-generative --threads 1, loopback)")
        server, port = start_logged([BUILD / "bin" / "maas-generative", "--port", "0", "--host", "127.0.0.1",
                                     "--model_dir", tmp / "models", "--max_message_bytes", str(64 << 20),
                                     "--threads", "1"], tmp / "maas-generative.log")
        try:
            if "ppca" not in rows:  # part (a) did not run
                rows["ppca"] = driver("sample", specs["ppca"], 4096, seconds)["rows_per_second"]
            in_process = rows["ppca"]
            total = 200000
            print(f"  in-process generation: {in_process / 1e3:.1f} k rows per CPU second (one core) "
                  f"= {1e6 / in_process:.2f} us/row; {total} rows per stream, C++ client (bench_driver served: "
                  f"SampleBatch parsed, doubles kept binary), median of 3 streams by wall time")
            for batch_size, label in ((0, "server default batch (~1 MiB messages)"),
                                      (4096, "batch_size 4096 (25 MB messages)")):
                runs = sorted((driver("served", specs["ppca"], f"127.0.0.1:{port}", total, batch_size, server.pid)
                               for _ in range(3)), key=lambda r: r["rows_per_second"])
                r = runs[1]
                server_us = 1e6 * r["server_cpu_seconds"] / r["rows"]
                thread_us = 1e6 * r["server_busiest_thread_cpu_seconds"] / r["rows"]
                second_us = 1e6 * r["server_second_thread_cpu_seconds"] / r["rows"]
                client_us = 1e6 * r["client_cpu_seconds"] / r["rows"]
                gen_us = 1e6 / in_process
                # On 2 cores the stream is bounded by its busiest thread (the pool thread that samples: at most 1 core;
                # the service's writer thread frames each batch around its sampled values, which it sends in place, and
                # starts its write, which gRPC performs on that thread) and by the CPU of both processes together (server + client incl. the
                # loopback TCP copies: at most 2 cores).
                bound = min(1e6 / thread_us, 2e6 / (server_us + client_us))
                print(f"  {label}: {r['rows_per_second'] / 1e3:.1f} k rows/s = "
                      f"{r['payload_bytes_per_second'] / 1e6:.0f} MB/s of float64 payload in {r['messages']} messages "
                      f"-> {100 * r['rows_per_second'] / in_process:.0f}% of in-process\n"
                      f"    server CPU {server_us:.2f} us/row: busiest thread {thread_us:.2f} (the pool thread: sampling, "
                      f"{gen_us:.2f} in process), next {second_us:.2f} (the writer: framing, gRPC, TCP "
                      f"send), other threads {server_us - thread_us - second_us:.2f} (gRPC's pollers: "
                      f"the rest of each send); client CPU {client_us:.2f} us/row (TCP receive, gRPC, parse)\n"
                      f"    2-core bound min(1 / busiest thread, 2 / (server + client)) = min({1e3 / thread_us:.1f}, "
                      f"{2e3 / (server_us + client_us):.1f}) k rows/s = {100 * bound / in_process:.0f}% of in-process; "
                      f"measured {100 * r['rows_per_second'] / bound:.0f}% of the bound")
            channel = grpc.insecure_channel(f"127.0.0.1:{port}",
                                            options=[("grpc.max_receive_message_length", 64 << 20)])
            stub = generative_pb2_grpc.GenerativeServiceStub(channel)
            start = time.perf_counter()
            got = 0
            for batch in stub.Sample(gen.SampleRequest(model=common_pb2.ModelRef(name="bench-served"),
                                                       num_samples=total, seed=1), timeout=300):
                got += len(batch.x.values) // D
            served = got / (time.perf_counter() - start)
            print(f"  Python client (grpcio, protobuf decoding in the loop), default batch: {served / 1e3:.1f} k "
                  f"rows/s = {served * D * 8 / 1e6:.0f} MB/s -> {100 * served / in_process:.0f}% of in-process")
            print(f"  load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        finally:
            server.terminate()
            server.wait(timeout=30)

    # (e) EXACT log p(x) of many rows ---------------------------------------------------------------------------------
    if "e" in parts:
        exact_vs_sklearn(rng, tmp, specs, w, mu, sigma2, weights, means, chols, seconds)

    # (f) fits ---------------------------------------------------------------------------------------------------------
    if "f" in parts:
        fits_vs_sklearn(rng, tmp)


def exact_vs_sklearn(rng, tmp, specs, w, mu, sigma2, weights, means, chols, seconds):
    """EXACT log p(x) of a batch of rows, maas (one thread, every row's bits as alone) against scikit-learn's
    score_samples on the same model (FactorAnalysis for ppca: the same N(mu, W W^T + sigma^2 I); GaussianMixture with
    its precision Cholesky factors set) and, for ppca, numpy's Woodbury form; bernoulli_mixture against numpy's
    x log(p)^T + (1 - x) log(1 - p)^T and logsumexp. Values checked equal (relative 1e-9) before timing."""
    from scipy.special import logsumexp
    from sklearn.decomposition import FactorAnalysis
    from sklearn.mixture import GaussianMixture
    from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky

    fa = FactorAnalysis(L)
    fa.components_, fa.noise_variance_, fa.mean_ = w.T, np.full(D, sigma2), mu
    gm = GaussianMixture(K, covariance_type="full")
    covs = np.stack([c @ c.T for c in chols])
    gm.weights_, gm.means_, gm.covariances_ = weights / weights.sum(), means, covs
    gm.precisions_cholesky_ = _compute_precision_cholesky(covs, "full")

    def numpy_woodbury(x):
        wp = w / sigma2
        m = np.eye(L) + w.T @ wp
        cm = np.linalg.cholesky(m)
        r = x - mu
        b = r @ wp
        quad = (r * r).sum(1) / sigma2 - (b * np.linalg.solve(m, b.T).T).sum(1)
        logdet = 2 * np.log(np.diag(cm)).sum() + D * np.log(sigma2)
        return -0.5 * (D * np.log(2 * np.pi) + logdet + quad)

    bmm_weights, bmm_probs, _, _ = BINARY_PARAMS

    def numpy_bmm(x):
        return logsumexp(x @ np.log(bmm_probs).T + (1 - x) @ np.log1p(-bmm_probs).T + np.log(bmm_weights), axis=1)

    ppca_rows = rng.standard_normal((10000, L)) @ w.T + mu + np.sqrt(sigma2) * rng.standard_normal((10000, D))
    gmm_rows = means[rng.integers(0, K, 1000)] + rng.standard_normal((1000, D))
    bmm_rows = (rng.random((10000, D)) < bmm_probs[rng.integers(0, K, 10000)]).astype(np.float64)
    print(f"\n(e) EXACT log p(x) of a batch of rows, rows per CPU second (one thread; median of 5 windows, both sides)")
    for name, x, references in (("ppca", ppca_rows, (("sklearn FactorAnalysis.score_samples", fa.score_samples),
                                                      ("numpy Woodbury", numpy_woodbury))),
                                ("gmm", gmm_rows, (("sklearn GaussianMixture.score_samples", gm.score_samples),)),
                                ("bmm", bmm_rows, (("numpy (two GEMMs, logsumexp)", numpy_bmm),))):
        rows_file, out_file = tmp / f"{name}-rows.f64", tmp / f"{name}-logp.f64"
        rows_file.write_bytes(np.ascontiguousarray(x).tobytes())
        result = driver("exact", specs[name], rows_file, out_file, seconds)
        got = np.frombuffer(out_file.read_bytes())
        label = {"ppca": "ppca D=784 L=50, 10 000 rows", "gmm": "gaussian_mixture full D=784 K=10, 1 000 rows",
                 "bmm": "bernoulli_mixture D=784 K=10, 10 000 rows"}[name]
        print(f"  {label}: maas ({result['simd']}) {result['rows_per_second']:,.0f} rows/s")
        for ref_name, fn in references:
            want = fn(x)
            error = np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want)))
            if not error <= 1e-9:
                raise SystemExit(f"{name}: maas and {ref_name} differ by {error:.3g} (relative)")
            rate = cpu_rate(lambda: fn(x), seconds) * len(x)
            print(f"    {ref_name:40s} {rate:12,.0f} rows/s  maas / it {result['rows_per_second'] / rate:5.2f}x  "
                  f"(equal within {error:.1e})")


def fits_vs_sklearn(rng, tmp):
    """Part (f): one fit each, maas's fitter in process (the driver's `fit`, one thread) against scikit-learn's on the
    same rows, process CPU seconds of the fit alone (maas: adding the rows and Finish; scikit-learn: .fit). Results
    checked first: factor_analysis's log-likelihood trace end and iteration count against FactorAnalysis with
    svd_method='lapack' (the exact SVD; its default 'randomized' is timed too, its result approximate), ppca's noise
    variance against PCA's maximum-likelihood one, the full mixture's final lower bound and iterations against
    GaussianMixture started from the same weights, means and precisions."""
    from sklearn.decomposition import PCA, FactorAnalysis
    from sklearn.mixture import GaussianMixture

    def maas_fit(name, config, x):
        rows_file, config_file, spec_file = tmp / f"fit-{name}.f64", tmp / f"fit-{name}.pb", tmp / f"fit-{name}.spec"
        rows_file.write_bytes(np.ascontiguousarray(x).tobytes())
        config_file.write_bytes(config.SerializeToString())
        result = driver("fit", config_file, rows_file, x.shape[1], spec_file)
        spec = gen.GenerativeModelSpec()
        spec.ParseFromString(spec_file.read_bytes())
        return result, spec

    def cpu_seconds(fn):
        start = time.process_time()
        out = fn()
        return time.process_time() - start, out

    def factor_rows(n, d, factors):
        w_true = rng.standard_normal((d, factors))
        return rng.standard_normal((n, factors)) @ w_true.T + rng.uniform(0.5, 2.0, d) * rng.standard_normal((n, d))

    print("\n(f) fits, process CPU seconds of one fit (one thread each)")
    for n, d, latent in ((10000, 784, 50), (3000, 2000, 20)):
        x = factor_rows(n, d, latent)
        got, _ = maas_fit(f"fa{d}", gen.FitConfig(name="f", seed=1, factor_analysis=gen.FactorAnalysisFit(
            latent_dim=latent)), x)
        lapack_s, lapack = cpu_seconds(lambda: FactorAnalysis(latent, svd_method="lapack").fit(x))
        randomized_s, randomized = cpu_seconds(lambda: FactorAnalysis(latent, random_state=0).fit(x))
        error = abs(got["log_likelihood"] * n - lapack.loglike_[-1]) / abs(lapack.loglike_[-1])
        if not (error <= 1e-9 and got["n_iter"] == lapack.n_iter_):
            raise SystemExit(f"factor_analysis {n}x{d}: maas and scikit-learn (lapack) differ: log-likelihood "
                             f"{error:.3g} (relative), iterations {got['n_iter']} vs {lapack.n_iter_}")
        print(f"  factor_analysis N={n} D={d} L={latent}: maas {got['cpu_seconds']:.2f} s ({got['n_iter']} iterations), "
              f"FactorAnalysis lapack {lapack_s:.2f} s ({lapack_s / got['cpu_seconds']:.1f}x maas's), randomized "
              f"{randomized_s:.2f} s ({randomized_s / got['cpu_seconds']:.2f}x; {randomized.n_iter_} iterations); "
              f"log-likelihood equal within {error:.1e}")
        got, spec = maas_fit(f"ppca{d}", gen.FitConfig(name="p", seed=1, ppca=gen.PpcaFit(latent_dim=latent)), x)
        full_s, pca = cpu_seconds(lambda: PCA(latent, svd_solver="full").fit(x))
        auto_s, _ = cpu_seconds(lambda: PCA(latent).fit(x))
        want = pca.noise_variance_ * (n - 1) / n  # PCA's variances use 1/(N-1), the maximum-likelihood ones 1/N
        error = abs(spec.ppca.noise_variance - want) / want
        if not error <= 1e-9:
            raise SystemExit(f"ppca {n}x{d}: maas's noise variance and PCA's differ by {error:.3g} (relative)")
        print(f"  ppca N={n} D={d} L={latent}: maas {got['cpu_seconds']:.2f} s, PCA full {full_s:.2f} s "
              f"({full_s / got['cpu_seconds']:.1f}x maas's), PCA default solver {auto_s:.2f} s "
              f"({auto_s / got['cpu_seconds']:.2f}x); noise variance equal within {error:.1e}")
    n, d, k = 5000, 300, 10
    centres = 3.0 * rng.standard_normal((k, d))
    x = centres[rng.integers(0, k, n)] + rng.standard_normal((n, d))
    means_init = centres + 0.5 * rng.standard_normal((k, d))
    weights_init = np.full(k, 1.0 / k)

    def compare_mixture(sk_type, kind, x, weights_init, means_init, maas_precisions, sk_precisions):
        """One mixture fit from the same start on both sides, checked equal, then its times printed."""
        (n, d), k = x.shape, len(weights_init)
        got, _ = maas_fit(f"gmm-{sk_type}", gen.FitConfig(name="g", seed=1, gaussian_mixture=gen.GaussianMixtureFit(
            n_components=k, covariance_type=kind, tol=1e-3, weights_init=weights_init.tolist(),
            means_init=matrix(means_init), precisions_init=matrix(maas_precisions))), x)
        gm_s, gm = cpu_seconds(lambda: GaussianMixture(k, covariance_type=sk_type, tol=1e-3, weights_init=weights_init,
                                                      means_init=means_init, precisions_init=sk_precisions).fit(x))
        error = abs(got["log_likelihood"] - gm.lower_bound_) / abs(gm.lower_bound_)
        if not (error <= 1e-9 and got["n_iter"] == gm.n_iter_):
            raise SystemExit(f"gaussian_mixture {sk_type}: maas and scikit-learn differ: lower bound {error:.3g} "
                             f"(relative), iterations {got['n_iter']} vs {gm.n_iter_}")
        print(f"  gaussian_mixture {sk_type} N={n} D={d} K={k}: maas {got['cpu_seconds']:.2f} s ({got['n_iter']} "
              f"iterations), GaussianMixture {gm_s:.2f} s ({gm_s / got['cpu_seconds']:.2f}x maas's); lower bound "
              f"equal within {error:.1e}")

    compare_mixture("full", gen.FULL, x, weights_init, means_init, np.vstack([np.eye(d)] * k), np.stack([np.eye(d)] * k))
    # The diagonal mixtures at a larger K, from the same start on both sides.
    n, d, k = 5000, 784, 100
    centres = 3.0 * rng.standard_normal((k, d))
    x = centres[rng.integers(0, k, n)] + rng.standard_normal((n, d)) * (rng.random(d) + 0.5)
    means_init = centres + 0.5 * rng.standard_normal((k, d))
    weights_init = np.full(k, 1.0 / k)
    compare_mixture("diag", gen.DIAG, x, weights_init, means_init, np.ones((k, d)), np.ones((k, d)))
    compare_mixture("spherical", gen.SPHERICAL, x, weights_init, means_init, np.ones((k, 1)), np.ones(k))


if __name__ == "__main__":
    main()
