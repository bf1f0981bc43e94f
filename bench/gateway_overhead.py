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
(that data plane alone, no call log, no metrics) in front of the same backend, and with --relay maas-tcp-relay
(bench/tcp_relay.cc: bytes copied both ways, nothing parsed, the cheapest process a proxy can be): its figures are
what any process in the path costs on this machine (loopback TCP, wake-ups, context switches), the floor the
gateway's are read against.

The figures are paired: every round runs each measurement against every target back to back (the order rotating
from round to round), and each figure is computed within its round (proxied against the direct run next to it), so a
drift of the machine's speed between rounds, which on a shared VM moves the direct figures themselves by tens of
percent, cancels out; the median over the rounds is reported with the spread.

  MAAS_BUILD_DIR=build .venv/bin/python bench/gateway_overhead.py [--calls 20000] [--repeat 5] [--h2front] [--relay]
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
    parser.add_argument("--repeat", type=int, default=5, help="rounds (each figure: the median of its rounds)")
    parser.add_argument("--gateway_args", default="", help="extra maas-gateway flags, space separated")
    parser.add_argument("--h2front", action="store_true",
                        help="also measure maas-h2front (the gateway's HTTP/2 frame-forwarding data plane alone, "
                             "services/gateway/h2) in front of the same backend, interleaved with the others")
    parser.add_argument("--h2front_args", default="", help="extra maas-h2front flags, space separated")
    parser.add_argument("--relay", action="store_true",
                        help="also measure maas-tcp-relay (a byte-copying TCP relay, the floor of any proxy process)")
    args = parser.parse_args()
    binary = ghz_binary()
    rng = random.Random(7)
    work = pathlib.Path(tempfile.mkdtemp(prefix="maas-gw-bench-"))
    backend = start_discriminative(work / "models", extra=[f"--log_file={work / 'discriminative.log'}"])
    generative = start_generative(work / "generative")  # idle; the gateway's health wants both routes
    gateway = start_gateway(generative.port, backend.port,
                            extra=[f"--log_file={work / 'gateway.log'}", *args.gateway_args.split()])
    extra = {}
    if args.h2front:
        extra["h2front"] = ServerProcess("maas-h2front", ["--port", 0, "--route",
                                                          f"{DISC_SERVICE}=ipv4:127.0.0.1:{backend.port};"
                                                          f"grpc.health.v1.Health=127.0.0.1:{backend.port}",
                                                          *args.h2front_args.split()])
    if args.relay:
        extra["relay"] = ServerProcess("maas-tcp-relay", [0, "127.0.0.1", backend.port])
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
        for name, process in extra.items():
            if name != "relay":
                wait_serving(channel_to(process))
            pids[name] = process.proc.pid
            targets.append((name, process.address))
        kinds = {"small": (small, 16, args.calls), "c1": (small, 1, args.calls // 4),
                 "large": (large, 4, args.batch_calls)}
        # raw[name][kind][round]; each round runs every target once per kind, the order rotating.
        raw = {name: {kind: [] for kind in kinds} for name, _ in targets}
        for round_index in range(args.repeat):
            order = targets[round_index % len(targets):] + targets[:round_index % len(targets)]
            for kind, (data, concurrency, calls) in kinds.items():
                for name, target in order:
                    raw[name][kind].append(measure(binary, target, str(data), concurrency, calls, pids, 2))
        for name, _ in targets[1:]:
            report(raw, "direct", name, large_bytes, args.repeat)
        print(f"   load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        gateway.stop()
        for process in extra.values():
            process.stop()
        backend.stop()
        generative.stop()
        shutil.rmtree(work, ignore_errors=True)


def spread(values, fmt) -> str:
    """The median of per-round values, then all of them in round order."""
    return f"{fmt(statistics.median(values))} (rounds: {', '.join(fmt(v) for v in values)})"


def report(raw, direct, proxied, large_bytes, repeat) -> None:
    """Prints the four figures of `proxied` against `direct`, each paired within its round, and their arithmetic."""
    d, g = raw[direct], raw[proxied]
    rounds = range(repeat)
    throughput = [g["small"][r]["rps"] / d["small"][r]["rps"] for r in rounds]
    cpu_share = [g["small"][r]["cpu_us_per_call"][proxied] / g["small"][r]["cpu_us_per_call"]["backend"]
                 for r in rounds]
    added = [g["c1"][r]["median_us"] - d["c1"][r]["median_us"] for r in rounds]
    batches = [g["large"][r]["rps"] / d["large"][r]["rps"] for r in rounds]

    def med(kind_results, key):
        return statistics.median(r[key] for r in kind_results)

    def cpu(kind_results, proc):
        return statistics.median(r["cpu_us_per_call"][proc] for r in kind_results)

    pct = lambda v: f"{100 * v:.0f}%"  # noqa: E731
    print(f"{proxied} overhead (ghz {GHZ_VERSION}, loopback, {os.cpu_count()} cores, {repeat} paired rounds)")
    print(f"1. small Classify, c=16, proxied vs direct throughput (target >= 80%): {spread(throughput, pct)}; "
          f"direct {med(d['small'], 'rps'):.0f} req/s, {proxied} {med(g['small'], 'rps'):.0f} req/s")
    print(f"2. CPU per proxied call, {proxied} vs backend (target <= 50%): {spread(cpu_share, pct)}; "
          f"{proxied} {cpu(g['small'], proxied):.1f} us, backend {cpu(g['small'], 'backend'):.1f} us")
    print(f"3. added median latency at c=1 (target < 100 us): {spread(added, lambda v: f'{v:+.0f} us')}; "
          f"direct {med(d['c1'], 'median_us'):.0f} us, {proxied} {med(g['c1'], 'median_us'):.0f} us")
    print(f"4. 500-mail batches ({large_bytes / 1e3:.0f} kB), c=4, proxied vs direct MB/s (target >= 90%): "
          f"{spread(batches, pct)}; direct {med(d['large'], 'rps') * large_bytes / 1e6:.1f} MB/s, {proxied} "
          f"{med(g['large'], 'rps') * large_bytes / 1e6:.1f} MB/s")
    # The arithmetic behind 1 and 2 (small calls, c=16): every process shares the same cores.
    dg, db = cpu(d["small"], "ghz"), cpu(d["small"], "backend")
    gg, gb, gp = cpu(g["small"], "ghz"), cpu(g["small"], "backend"), cpu(g["small"], proxied)
    direct_total, proxied_total = dg + db, gg + gb + gp
    allowed = direct_total / 0.8 - (gg + gb)
    print(f"   CPU per small call (us, medians): direct: ghz {dg:.1f} + backend {db:.1f} = {direct_total:.1f}; "
          f"proxied: ghz {gg:.1f} + backend {gb:.1f} + {proxied} {gp:.1f} = {proxied_total:.1f}")
    print(f"   on CPU-bound cores that predicts {100 * direct_total / proxied_total:.0f}% of direct throughput; "
          f"80% would allow {proxied} {allowed:.1f} us per call ({100 * allowed / gb:.0f}% of the backend's)")
    c1 = [g["c1"][r]["cpu_us_per_call"][proxied] for r in rounds]
    print(f"   {proxied} CPU per call at c=1: {spread(c1, lambda v: f'{v:.0f} us')}")


if __name__ == "__main__":
    main()
