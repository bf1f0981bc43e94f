"""bench/gateway_overhead: what maas-gateway costs, measured as a user would with ghz (issue 9, gateway item 5).

Starts maas-discriminative and maas-gateway (real binaries, loopback), trains one text model, and runs the same ghz
load directly against the backend and through the gateway, side by side. Prints:
  1. small calls (single-text Classify) at concurrency 16: requests/s proxied vs direct (target >= 80 %);
  2. CPU per proxied call: gateway vs backend, from utime+stime in /proc/<pid>/stat (target gateway <= 50 %);
  3. added median latency at concurrency 1 (target < 100 us);
  4. large batches (500 mails per Classify): request MB/s proxied vs direct (target >= 90 %).
Then the arithmetic behind 1 and 2: CPU per call of ghz, the backend and the gateway (ghz shares the machine's cores,
so on a CPU-bound machine throughput is cores / CPU per call), the throughput ratio that predicts, and the gateway
CPU per call the 80 % target would allow. The servers write their call logs to files (as deployed), not to a pipe
this script would have to drain on the same cores.
ghz is installed with `go install github.com/bojand/ghz/cmd/ghz@v0.120.0` into $MAAS_BUILD_DIR/tools/bin when absent.

maas-gateway serves plaintext with its HTTP/2 frame-forwarding front (services/gateway/h2) by default;
--gateway_args=--h2_front=false measures the gRPC-library proxy instead. With --h2front it also starts maas-h2front
(that data plane alone, no call log, no metrics) in front of the same backend and prints its four figures too; every
round runs direct, gateway and front one after the other, so a change of the machine's load hits all three alike.

  MAAS_BUILD_DIR=build .venv/bin/python bench/gateway_overhead.py [--calls 20000] [--repeat 3] [--h2front]
      [--gateway_args=--h2_front=false]
Not a test: run by `make bench`.
"""

import argparse
import json
import os
import pathlib
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUILD = pathlib.Path(os.environ.get("MAAS_BUILD_DIR", ROOT / "build")).resolve()
sys.path[:0] = [str(BUILD / "python"), str(ROOT / "tests" / "python")]
os.environ.setdefault("MAAS_BUILD_DIR", str(BUILD))

from maas.discriminative.v1 import discriminative_pb2 as disc  # noqa: E402
from maas.discriminative.v1 import discriminative_pb2_grpc  # noqa: E402
from maas_testing import ServerProcess, channel_to, start_discriminative, start_gateway, start_generative, wait_serving  # noqa: E402

GHZ_VERSION = "v0.120.0"
PROTO = "maas/discriminative/v1/discriminative.proto"
METHOD = "maas.discriminative.v1.DiscriminativeService.Classify"
DISC_SERVICE = "maas.discriminative.v1.DiscriminativeService"


def ghz_binary() -> str:
    path = BUILD / "tools" / "bin" / "ghz"
    if path.exists():
        return str(path)
    if shutil.which("go") is None:
        sys.exit("bench/gateway_overhead: needs Go to install ghz (go install github.com/bojand/ghz/cmd/ghz@"
                 f"{GHZ_VERSION})")
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"installing ghz {GHZ_VERSION} into {path.parent} ...", flush=True)
    subprocess.run(["go", "install", f"github.com/bojand/ghz/cmd/ghz@{GHZ_VERSION}"], check=True,
                   env={**os.environ, "GOBIN": str(path.parent)})
    return str(path)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


WORDS = ("goal match striker referee league team score season coach player bread oven dough flour bake recipe "
         "sugar butter market stock price shares trade bank rates inflation rain wind storm forecast cloud sunny "
         "snow cold").split()
LABELS = ["sports", "cooking", "finance", "weather"]


def mail(rng: random.Random, label: int, words: int) -> str:
    topical = WORDS[label * 8:(label + 1) * 8]
    return " ".join(rng.choice(topical) if rng.random() < 0.6 else rng.choice(WORDS) for _ in range(words))


def ghz(binary: str, address: str, data_file: str, concurrency: int, calls: int, connections: int) -> dict:
    out = subprocess.run([binary, "--insecure", "--proto", str(ROOT / "proto" / PROTO), "-i", str(ROOT / "proto"),
                          "--call", METHOD, "-D", data_file, "-c", str(concurrency), "-n", str(calls),
                          "--connections", str(min(connections, concurrency)), "--format", "json", "--skipFirst",
                          str(min(200, calls // 10)), address],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"ghz failed ({out.returncode}): {out.stderr.strip()}")
    report = json.loads(out.stdout)
    codes = report.get("statusCodeDistribution", {})
    if set(codes) - {"OK"}:
        sys.exit(f"ghz saw errors: {codes} {report.get('errorDistribution')}")
    median_ns = next(p["latency"] for p in report["latencyDistribution"] if p["percentage"] == 50)
    return {"rps": report["rps"], "median_us": median_ns / 1000.0}


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(binary, target, data_file, concurrency, calls, pids, connections):
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    ghz_before = children_cpu_seconds()  # ghz is the only child that exits during the run
    result = ghz(binary, target, data_file, concurrency, calls, connections)
    ghz_after = children_cpu_seconds()
    after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    result["cpu_us_per_call"] = {name: (after[name] - before[name]) / calls * 1e6 for name in pids}
    result["cpu_us_per_call"]["ghz"] = (ghz_after - ghz_before) / calls * 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20000, help="calls per small-call run")
    parser.add_argument("--batch_calls", type=int, default=300, help="calls per large-batch run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (the median is reported)")
    parser.add_argument("--gateway_args", default="", help="extra maas-gateway flags, space separated")
    parser.add_argument("--h2front", action="store_true",
                        help="also measure maas-h2front (the gateway's HTTP/2 frame-forwarding data plane alone, "
                             "services/gateway/h2) in front of the same backend, interleaved with the others")
    args = parser.parse_args()
    binary = ghz_binary()
    rng = random.Random(7)
    work = pathlib.Path(tempfile.mkdtemp(prefix="maas-gw-bench-"))
    backend = start_discriminative(work / "models", extra=[f"--log_file={work / 'discriminative.log'}"])
    generative = start_generative(work / "generative")  # idle; the gateway's health wants both routes
    gateway = start_gateway(generative.port, backend.port,
                            extra=[f"--log_file={work / 'gateway.log'}", *args.gateway_args.split()])
    h2front = None
    if args.h2front:
        h2front = ServerProcess("maas-h2front", ["--port", 0, "--route",
                                                 f"{DISC_SERVICE}=ipv4:127.0.0.1:{backend.port};"
                                                 f"grpc.health.v1.Health=127.0.0.1:{backend.port}"])
    try:
        channel = channel_to(backend)
        wait_serving(channel)
        stub = discriminative_pb2_grpc.DiscriminativeServiceStub(channel)
        examples = [disc.LabeledText(text=mail(rng, i % 4, 40), label=LABELS[i % 4]) for i in range(4000)]
        stub.Train(iter([disc.TrainRequest(config=disc.TrainConfig(name="mails"))] +
                        [disc.TrainRequest(batch=disc.TextBatch(examples=examples[i:i + 500]))
                         for i in range(0, len(examples), 500)]), timeout=120)
        wait_serving(channel_to(gateway))
        small = work / "small.json"
        small.write_text(json.dumps({"model": {"name": "mails"}, "texts": [mail(rng, 1, 12)]}))
        batch_texts = [mail(rng, i % 4, 150) for i in range(500)]
        large = work / "large.json"
        large.write_text(json.dumps({"model": {"name": "mails"}, "texts": batch_texts}))
        large_bytes = len(disc.ClassifyRequest(texts=batch_texts).SerializeToString())
        pids = {"gateway": gateway.proc.pid, "backend": backend.proc.pid}
        targets = [("direct", backend.address), ("gateway", gateway.address)]
        if h2front is not None:
            wait_serving(channel_to(h2front))
            pids["h2front"] = h2front.proc.pid
            targets.append(("h2front", h2front.address))
        kinds = {"small": (small, 16, args.calls), "c1": (small, 1, args.calls // 4),
                 "large": (large, 4, args.batch_calls)}
        # Interleaved (every target once per round) so that a change of the machine's load hits all alike.
        raw = {name: {kind: [] for kind in kinds} for name, _ in targets}
        for _ in range(args.repeat):
            for kind, (data, concurrency, calls) in kinds.items():
                for name, target in targets:
                    raw[name][kind].append(measure(binary, target, str(data), concurrency, calls, pids, 2))

        def summary(results):
            return {
                "rps": statistics.median(r["rps"] for r in results),
                "median_us": statistics.median(r["median_us"] for r in results),
                "cpu": {n: statistics.median(r["cpu_us_per_call"][n] for r in results) for n in [*pids, "ghz"]},
            }

        figures = {name: {kind: summary(raw[name][kind]) for kind in kinds} for name, _ in targets}
        report(figures, "direct", "gateway", "gateway", large_bytes, args.repeat)
        if h2front is not None:
            report(figures, "direct", "h2front", "h2front", large_bytes, args.repeat)
            print("   h2front per-run CPU per small call (us): " + ", ".join(
                f"{r['cpu_us_per_call']['h2front']:.1f} vs backend {r['cpu_us_per_call']['backend']:.1f}"
                for r in raw["h2front"]["small"]))
            print("   gateway per-run CPU per small call (us): " + ", ".join(
                f"{r['cpu_us_per_call']['gateway']:.1f} vs backend {r['cpu_us_per_call']['backend']:.1f}"
                for r in raw["gateway"]["small"]))
    finally:
        gateway.stop()
        if h2front is not None:
            h2front.stop()
        backend.stop()
        generative.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(figures, direct, proxied, proc, large_bytes, repeat) -> None:
    """Prints the four figures of `proxied` (CPU of process `proc`) against `direct`, and their arithmetic."""
    d, g = figures[direct], figures[proxied]
    throughput = g["small"]["rps"] / d["small"]["rps"]
    gw_cpu = g["small"]["cpu"][proc]
    be_cpu = g["small"]["cpu"]["backend"]
    added = g["c1"]["median_us"] - d["c1"]["median_us"]
    mbps_d = d["large"]["rps"] * large_bytes / 1e6
    mbps_g = g["large"]["rps"] * large_bytes / 1e6
    print(f"{proxied} overhead (ghz {GHZ_VERSION}, loopback, {os.cpu_count()} cores, median of {repeat})")
    print(f"1. small Classify, c=16: direct {d['small']['rps']:.0f} req/s, {proxied} {g['small']['rps']:.0f} req/s "
          f"= {100 * throughput:.0f}% of direct (target >= 80%)")
    print(f"2. CPU per proxied call: {proxied} {gw_cpu:.1f} us, backend {be_cpu:.1f} us "
          f"= {100 * gw_cpu / be_cpu:.0f}% (target <= 50%)")
    print(f"3. median at c=1: direct {d['c1']['median_us']:.0f} us, {proxied} {g['c1']['median_us']:.0f} us, "
          f"added {added:.0f} us (target < 100 us)")
    print(f"4. 500-mail batches ({large_bytes / 1e3:.0f} kB), c=4: direct {mbps_d:.1f} MB/s, {proxied} "
          f"{mbps_g:.1f} MB/s = {100 * mbps_g / mbps_d:.0f}% (target >= 90%)")
    # The arithmetic behind 1 and 2 (small calls, c=16): every process shares the same cores.
    dc, gc = d["small"]["cpu"], g["small"]["cpu"]
    direct_total = dc["ghz"] + dc["backend"]
    proxied_total = gc["ghz"] + gc["backend"] + gc[proc]
    allowed = direct_total / 0.8 - (gc["ghz"] + gc["backend"])
    print(f"   CPU per small call (us): direct: ghz {dc['ghz']:.1f} + backend {dc['backend']:.1f} = "
          f"{direct_total:.1f}; proxied: ghz {gc['ghz']:.1f} + backend {gc['backend']:.1f} + {proxied} "
          f"{gc[proc]:.1f} = {proxied_total:.1f}")
    print(f"   on CPU-bound cores that predicts {100 * direct_total / proxied_total:.0f}% of direct throughput; "
          f"80% would allow the gateway {allowed:.1f} us per call ({100 * allowed / gc['backend']:.0f}% of "
          f"the backend's)")
    print(f"   load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
