"""make soak: mixed load through maas-gateway for a while, reporting errors, latency and memory (issue 5).

Starts maas-generative, maas-discriminative and maas-gateway (the real binaries, loopback, port 0), creates a few
models, then keeps --streams concurrent workers busy for --duration seconds. Each worker picks, in turn:
  unary           Classify, GetModel, EstimateLogLikelihood (EXACT)
  server stream   Sample read to the end; read slowly (a pause between batches); or stopped after one batch and
                  cancelled (a client that gives up; its CANCELLED is expected, not an error)
  client stream   Evaluate (labelled texts in several messages)
  bidi            ClassifyStream (several request batches, each answered in order)
and the report gives, per kind, calls, errors (by code) and p50/p99 latency, plus each process's RSS at start, peak
and end (from /proc, sampled every 0.5 s; "end" is taken after the load stopped and the gateway went idle).

  MAAS_BUILD_DIR=build .venv/bin/python tests/soak/gateway_soak.py --duration 600 --streams 64
Exit code 1 when any call failed unexpectedly.
"""

import argparse
import json
import os
import pathlib
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("MAAS_BUILD_DIR", ROOT / "build")).resolve()
sys.path[:0] = [str(BUILD / "python"), str(ROOT / "tests" / "python")]
os.environ.setdefault("MAAS_BUILD_DIR", str(BUILD))

import grpc  # noqa: E402

from maas.discriminative.v1 import discriminative_pb2 as disc  # noqa: E402
from maas.generative.v1 import generative_pb2 as gen  # noqa: E402
from maas_testing import Stack, ref, rss_mb, to_matrix  # noqa: E402

KINDS = ["classify", "get_model", "estimate", "sample_full", "sample_slow", "sample_stop", "evaluate",
         "classify_stream"]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = defaultdict(list)
        self.errors = defaultdict(lambda: defaultdict(int))
        self.examples = []

    def ok(self, kind, seconds):
        with self.lock:
            self.latency[kind].append(seconds)

    def error(self, kind, e: grpc.RpcError):
        with self.lock:
            self.errors[kind][e.code().name] += 1
            if len(self.examples) < 10:
                self.examples.append(f"{kind}: {e.code().name}: {e.details()}")


def percentile(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def one_call(stack, kind, rng):
    if kind == "classify":
        out = stack.disc_gw.Classify(disc.ClassifyRequest(model=ref("words"), texts=["bread and a goal"]), timeout=30)
        assert len(out.results) == 1
    elif kind == "get_model":
        assert stack.gen_gw.GetModel(gen.GetModelRequest(model=ref("cube")), timeout=30).info.name == "cube"
    elif kind == "estimate":
        out = stack.gen_gw.EstimateLogLikelihood(gen.EstimateLogLikelihoodRequest(
            model=ref("cube"), x=to_matrix([[0.5] * 8]), estimator=gen.EXACT), timeout=30)
        assert abs(out.rows[0].log_likelihood) < 1e-12
    elif kind == "sample_full":
        rows = sum(b.x.rows for b in stack.gen_gw.Sample(gen.SampleRequest(
            model=ref("cube"), num_samples=20_000, seed=rng.randrange(1 << 30), batch_size=1000), timeout=60))
        assert rows == 20_000
    elif kind == "sample_slow":
        rows = 0
        for batch in stack.gen_gw.Sample(gen.SampleRequest(model=ref("wide"), num_samples=8 * 1024,
                                                           seed=rng.randrange(1 << 30)), timeout=60):
            rows += batch.x.rows
            time.sleep(0.05)
        assert rows == 8 * 1024
    elif kind == "sample_stop":
        call = stack.gen_gw.Sample(gen.SampleRequest(model=ref("wide"), num_samples=10_000_000,
                                                     seed=rng.randrange(1 << 30)), timeout=60)
        next(call)
        time.sleep(0.3)  # stalled: the gateway must not buffer the rest meanwhile
        call.cancel()
    elif kind == "evaluate":
        batches = [disc.EvaluateRequest(batch=disc.TextBatch(examples=[
            disc.LabeledText(text="a goal", label="sports"), disc.LabeledText(text="bread", label="cooking")]))
            for _ in range(5)]
        out = stack.disc_gw.Evaluate(iter([disc.EvaluateRequest(config=disc.EvaluateConfig(model=ref("words")))] +
                                          batches), timeout=30)
        assert out.accuracy == 1.0
    else:
        requests = [disc.ClassifyRequest(model=ref("words"), texts=["goal", "bread"]) for _ in range(5)]
        answers = list(stack.disc_gw.ClassifyStream(iter(requests), timeout=30))
        assert len(answers) == 5


def worker(stack, index, stop, stats):
    rng = random.Random(index)
    i = index
    while not stop.is_set():
        kind = KINDS[i % len(KINDS)]
        i += 1
        start = time.monotonic()
        try:
            one_call(stack, kind, rng)
            stats.ok(kind, time.monotonic() - start)
        except grpc.RpcError as e:
            if kind == "sample_stop" and e.code() == grpc.StatusCode.CANCELLED:
                stats.ok(kind, time.monotonic() - start)
            else:
                stats.error(kind, e)
        except AssertionError as e:
            with stats.lock:
                stats.errors[kind]["WRONG_ANSWER"] += 1
                stats.examples.append(f"{kind}: wrong answer: {e}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    parser.add_argument("--streams", type=int, default=64, help="concurrent workers / calls (default 64)")
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args(argv)
    work = pathlib.Path(tempfile.mkdtemp(prefix="maas-soak-"))
    stats = Stats()
    rss = {}
    try:
        with Stack(work, gateway_args=["--health_check_interval_ms", "1000"]) as stack:
            stack.gen_gw.CreateModel(gen.CreateModelRequest(name="cube", spec=gen.GenerativeModelSpec(
                uniform=gen.UniformSpec(low=[0.0] * 8, high=[1.0] * 8))), timeout=30)
            stack.gen_gw.CreateModel(gen.CreateModelRequest(name="wide", spec=gen.GenerativeModelSpec(
                uniform=gen.UniformSpec(low=[0.0] * 64, high=[1.0] * 64))), timeout=30)
            stack.disc_gw.Train(iter([
                disc.TrainRequest(config=disc.TrainConfig(name="words")),
                disc.TrainRequest(batch=disc.TextBatch(examples=[
                    disc.LabeledText(text="the striker scored a goal", label="sports"),
                    disc.LabeledText(text="bake the bread dough", label="cooking")]))]), timeout=30)
            procs = {"gateway": stack.gateway_process, "generative": stack.generative,
                     "discriminative": stack.discriminative}
            rss = {n: {"start": rss_mb(p.proc.pid), "peak": 0.0} for n, p in procs.items()}
            stop = threading.Event()

            def sample_rss():
                while not stop.wait(0.5):
                    for n, p in procs.items():
                        rss[n]["peak"] = max(rss[n]["peak"], rss_mb(p.proc.pid))

            sampler = threading.Thread(target=sample_rss, daemon=True)
            sampler.start()
            workers = [threading.Thread(target=worker, args=(stack, i, stop, stats), daemon=True)
                       for i in range(args.streams)]
            began = time.monotonic()
            for w in workers:
                w.start()
            time.sleep(args.duration)
            stop.set()
            for w in workers:
                w.join(timeout=120)
            elapsed = time.monotonic() - began
            time.sleep(2.0)  # the gateway trims its heap once idle (at its next health round)
            for n, p in procs.items():
                rss[n]["end"] = rss_mb(p.proc.pid)
                rss[n]["peak"] = max(rss[n]["peak"], rss[n]["start"], rss[n]["end"])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    total_calls = sum(len(v) for v in stats.latency.values())
    total_errors = sum(sum(c.values()) for c in stats.errors.values())
    all_latency = [x for v in stats.latency.values() for x in v]
    report = {
        "duration_s": round(elapsed, 1), "streams": args.streams, "calls": total_calls, "errors": total_errors,
        "p99_ms": round(1000 * percentile(all_latency, 0.99), 2),
        "kinds": {k: {"calls": len(stats.latency[k]), "errors": dict(stats.errors[k]),
                      "p50_ms": round(1000 * percentile(stats.latency[k], 0.5), 2),
                      "p99_ms": round(1000 * percentile(stats.latency[k], 0.99), 2)} for k in KINDS},
        "rss_mb": {n: {k: round(v, 1) for k, v in r.items()} for n, r in rss.items()},
        "error_examples": stats.examples,
    }
    print(f"soak: {report['duration_s']} s, {args.streams} concurrent workers, {total_calls} calls, "
          f"{total_errors} errors, p99 {report['p99_ms']} ms")
    for k, v in report["kinds"].items():
        print(f"  {k:16s} calls {v['calls']:7d}  errors {sum(v['errors'].values()):4d}  "
              f"p50 {v['p50_ms']:8.2f} ms  p99 {v['p99_ms']:8.2f} ms")
    for n, r in report["rss_mb"].items():
        print(f"  RSS {n:15s} start {r['start']:7.1f} MiB  peak {r['peak']:7.1f} MiB  end {r['end']:7.1f} MiB")
    for line in stats.examples:
        print("  error:", line)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=2))
    return 1 if total_errors else 0


if __name__ == "__main__":
    sys.exit(main())
