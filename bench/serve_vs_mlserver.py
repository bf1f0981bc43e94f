"""Benchmark: the same fitted scikit-learn text pipeline (CountVectorizer + MultinomialNB) served by maas
(maas-discriminative directly and through maas-gateway) and by MLServer 1.7 with its scikit-learn runtime, driven
by the same load generator (ghz), side by side in one script.

    make bench                                     # runs this after classify_vs_sklearn
    .venv/bin/python bench/serve_vs_mlserver.py    # after `make build` (needs build/bin and the project .venv)

What it does, all on 127.0.0.1 with free ports, every server started and stopped here:
  1. Installs what it needs if missing: ghz (pinned, `go install` into .tools/bin) and MLServer (pinned, into a
     separate virtualenv .bench-venv/, with the project venv's scikit-learn version so the pickle loads).
  2. Fits make_pipeline(CountVectorizer(), MultinomialNB()) on a random corpus; saves it with joblib for MLServer
     and imports the same fitted state into maas with CreateModel (maas_client.sklearn.export).
  3. Checks before timing that every server answers the same: maas (direct and via the gateway) labels equal
     MLServer's `predict` and scikit-learn's, probabilities equal MLServer's `predict_proba` within 1e-12.
  4. Times with ghz: single-text calls at concurrency 1 and 16 (requests/s, p50, p99) and batches of 500 long
     documents (MB/s of text), plus the servers' CPU time per request (utime+stime of the server processes and
     their children, which is less sensitive to a shared machine than wall time).
The timed MLServer requests ask for `predict_proba` only (all classes' probabilities; the label is its argmax). The
timed maas requests ask for the compact form (ClassifyRequest.compact: the class labels once, the texts x classes
probability matrix and the predicted class indices), which carries what MLServer's predict_proba answer carries (plus
the labels and predictions); --single_form / --batch_form verbose time maas's default answer instead (label,
probabilities and log-probabilities of every class, per text). The timed batch requests carry their texts packed
in one bytes field, in the same layout for both servers (each text as its 4-byte little-endian length, then its
bytes): maas's ClassifyRequest.packed_texts and KServe's raw_input_contents, which MLServer reads; --batch_request
repeated sends one field per text instead (maas's texts, MLServer's bytes_contents). Both forms are checked equal.

ghz runs every server with the same options (GHZ_OPTIONS below): the request messages are pre-serialised binary
(--binary-file, 1000 count-delimited messages ghz decodes once and sends round-robin), its per-call template
machinery is off (--disable-template-functions --disable-template-data: with them on, ghz builds a text/template
with ~200 functions for every call, although binary data has nothing to fill in), and one connection. ghz keeps its
default Go processors (all cores): --ghz_cpus 1 (GOMAXPROCS=1) cuts ghz's CPU per maas call, but in the one pair of
runs that compared it against MLServer (2026-12-02 13:01-13:02 UTC) MLServer's c=1 rate was 170 req/s with it and
359 without, so it is not used by default until it is shown not to slow MLServer down.
"""

import argparse
import json
import os
import pathlib
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import grpc
import joblib
import numpy as np
import sklearn
from google.protobuf import descriptor_pb2
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import make_pipeline

from maas_client import pack_texts
from maas_client.discriminative import DiscriminativeClient
from maas_client.pb import common as common_pb, discriminative as disc_pb
from maas_client.sklearn import export
from servers import cpu_summary, start_logged

ROOT = pathlib.Path(__file__).resolve().parents[1]
GHZ_VERSION = "v0.120.0"
MLSERVER_PINS = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0"]  # uvloop 0.23 breaks workers
MODEL = "textnb"
MAAS_METHOD = "maas.discriminative.v1.DiscriminativeService/Classify"
MLSERVER_METHOD = "inference.GRPCInferenceService/ModelInfer"
MAX_MESSAGE = 256 << 20
# The same ghz options for every server (see the module docstring for why each is fair):
GHZ_OPTIONS = [
    "--connections", "1",            # one HTTP/2 connection, as one client channel
    "--disable-template-functions",  # no per-call text/template with sprig's functions...
    "--disable-template-data",       # ...nor call-data templating: the binary messages are sent as they are
    "--skipFirst", "0",              # warm-up is a separate run
    "--duration-stop", "wait",       # calls in flight at the end are waited for and counted
]


# -- tools ---------------------------------------------------------------------------------------------------------
def ensure_ghz(tools_dir):
    ghz = tools_dir.resolve() / "bin" / "ghz"  # go install takes only an absolute GOBIN (--tools_dir may be relative)
    stamp = tools_dir / "bin" / "ghz.version"
    if ghz.exists() and stamp.exists() and stamp.read_text().strip() == GHZ_VERSION:
        return ghz
    go = shutil.which("go") or "/usr/local/go/bin/go"
    print(f"installing ghz {GHZ_VERSION} into {ghz.parent} (go install)", flush=True)
    subprocess.run([go, "install", f"github.com/bojand/ghz/cmd/ghz@{GHZ_VERSION}"], check=True,
                   env=dict(os.environ, GOBIN=str(ghz.parent)))
    stamp.write_text(GHZ_VERSION + "\n")
    return ghz


def ensure_mlserver(venv):
    pins = MLSERVER_PINS + [f"scikit-learn=={sklearn.__version__}"]
    stamp = venv / ".bench-pins"
    if (venv / "bin" / "mlserver").exists() and stamp.exists() and stamp.read_text() == "\n".join(pins):
        return venv
    print(f"installing {' '.join(pins)} into {venv}", flush=True)
    if not (venv / "bin" / "python").exists():
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"] + pins,
                   check=True)
    stamp.write_text("\n".join(pins))
    return venv


def protoset(file_descriptor):
    """A FileDescriptorSet (ghz --protoset) of a file and its imports, dependencies first."""
    out, seen = descriptor_pb2.FileDescriptorSet(), set()

    def add(fd):
        if fd.name in seen:
            return
        seen.add(fd.name)
        for dep in fd.dependencies:
            add(dep)
        fd.CopyToProto(out.file.add())

    add(file_descriptor)
    return out


MLSERVER_PROTOSET_SCRIPT = """
import sys
from google.protobuf import descriptor_pb2
from mlserver.grpc import dataplane_pb2
out, seen = descriptor_pb2.FileDescriptorSet(), set()
def add(fd):
    if fd.name in seen:
        return
    seen.add(fd.name)
    for dep in fd.dependencies:
        add(dep)
    fd.CopyToProto(out.file.add())
add(dataplane_pb2.DESCRIPTOR)
open(sys.argv[1], "wb").write(out.SerializeToString())
"""


def message_classes(fds_bytes, names):
    """Message classes built from a serialized FileDescriptorSet (MLServer's protos live in the other venv)."""
    from google.protobuf import descriptor_pool, message_factory
    pool = descriptor_pool.DescriptorPool()
    for f in descriptor_pb2.FileDescriptorSet.FromString(fds_bytes).file:
        pool.Add(f)
    return [message_factory.GetMessageClass(pool.FindMessageTypeByName(n)) for n in names]


def delimited(messages):
    """Varint-length-prefixed messages: ghz --binary round-robins over them for unary calls."""
    out = bytearray()
    for m in messages:
        data = m.SerializeToString()
        n = len(data)
        while True:
            byte = n & 0x7F
            n >>= 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                break
        out += data
    return bytes(out)


# -- corpus --------------------------------------------------------------------------------------------------------
def make_words(rng, n):
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = {"".join(rng.choice(letters, size=rng.integers(3, 11))) for _ in range(n * 2)}
    words = sorted(words)[:n]
    # A few non-ASCII words, so the check covers UTF-8 handling on both servers.
    words[:8] = ["café", "naïve", "straße", "übung", "ελλάδα", "москва", "東京", "español"]
    return np.array(words)


def make_texts(rng, words, docs, min_words, max_words, classes=8):
    labels = rng.integers(classes, size=docs)
    texts = []
    for label in labels:
        ranks = (rng.zipf(1.3, size=rng.integers(min_words, max_words + 1)) + 211 * label) % len(words)
        texts.append(" ".join(words[ranks]))
    return texts, [f"class-{l}" for l in labels]


# -- processes -----------------------------------------------------------------------------------------------------
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_maas(binary, args, log_path):
    """A maas server on a free loopback port, its output to log_path like MLServer's (servers.start_logged)."""
    return start_logged([binary, "--host", "127.0.0.1", "--port", "0"] + args, log_path)


def start_mlserver(venv, model_dir, workers, log_path):
    ports = {"http_port": free_port(), "grpc_port": free_port(), "metrics_port": free_port()}
    settings = dict(host="127.0.0.1", parallel_workers=workers, grpc_max_message_length=MAX_MESSAGE, debug=False,
                    **ports)
    (model_dir / "settings.json").write_text(json.dumps(settings))
    log = open(log_path, "w")
    proc = subprocess.Popen([str(venv / "bin" / "mlserver"), "start", str(model_dir)], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            env=dict(os.environ, PATH=f"{venv / 'bin'}:{os.environ.get('PATH', '')}"))
    url = f"http://127.0.0.1:{ports['http_port']}/v2/models/{MODEL}/ready"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return proc, ports["grpc_port"]
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"MLServer did not become ready; see {log_path}:\n" + pathlib.Path(log_path).read_text()[-3000:])


def stop(proc, group=False):
    if proc is None or proc.poll() is not None:
        return
    try:
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
        proc.wait(timeout=20)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def process_tree(root_pids):
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = set(root_pids), list(root_pids)
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    return tree


def cpu_seconds(root_pids):
    total = 0
    for pid in process_tree(root_pids):
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def load_average():
    return float(open("/proc/loadavg").read().split()[0])


def cpu_jiffies():
    """The machine's CPU time so far by kind (/proc/stat: user nice system idle iowait irq softirq steal)."""
    return [int(v) for v in open("/proc/stat").readline().split()[1:9]]


def steal_share(before, after):
    """The share of the machine's CPU time between two cpu_jiffies() that the hypervisor gave to others (steal):
    a VM's noisy neighbours, which slow every server in a run alike but make windows differ."""
    delta = [b - a for a, b in zip(before, after)]
    return delta[7] / max(1, sum(delta))


# -- load ------------------------------------------------------------------------------------------------------------
def ghz_run(ghz, target, method, protoset_path, data_path, concurrency, seconds, pids, cpus):
    cmd = [str(ghz), "--insecure", "--protoset", str(protoset_path), "--call", method, "--binary-file",
           str(data_path), "-c", str(concurrency), "-z", f"{seconds}s", "-t", "120s", "-O", "json"] + GHZ_OPTIONS
    if cpus > 0:
        cmd += ["--cpus", str(cpus)]
    cmd.append(target)
    cpu_before, client_before = cpu_seconds(pids), resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(cmd, check=True, capture_output=True, text=True)
    cpu = cpu_seconds(pids) - cpu_before
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (client_after.ru_utime + client_after.ru_stime) - (client_before.ru_utime + client_before.ru_stime)
    report = json.loads(result.stdout)
    ok = report.get("statusCodeDistribution", {}).get("OK", 0)
    if ok != report["count"] or report["count"] == 0:
        raise SystemExit(f"ghz against {target}: errors {report.get('errorDistribution')} "
                         f"(status codes {report.get('statusCodeDistribution')})")
    latency = {int(d["percentage"]): d["latency"] / 1e6 for d in report.get("latencyDistribution") or []}
    return dict(rps=report["rps"], p50=latency.get(50, float("nan")), p99=latency.get(99, float("nan")),
                count=report["count"], cpu_ms=1e3 * cpu / report["count"],
                ghz_cpu_ms=1e3 * client_cpu / report["count"])


# -- check -----------------------------------------------------------------------------------------------------------
def mlserver_request(infer_request_cls, texts, outputs, packed=False):
    """packed: the texts as KServe's raw_input_contents (4-byte little-endian length, then the bytes, per text: the
    layout of maas's packed_texts); else one bytes_contents entry per text."""
    request = infer_request_cls(model_name=MODEL)
    request.parameters["content_type"].string_param = "str"
    tensor = request.inputs.add(name="text", datatype="BYTES", shape=[len(texts)])
    tensor.parameters["content_type"].string_param = "str"
    if packed:
        request.raw_input_contents.append(pack_texts(texts))
    else:
        tensor.contents.bytes_contents.extend(t.encode("utf-8") for t in texts)
    for name in outputs:
        request.outputs.add(name=name)
    return request


def mlserver_outputs(response):
    out = {}
    for i, o in enumerate(response.outputs):
        shape = tuple(o.shape)
        if response.raw_output_contents:
            raw = response.raw_output_contents[i]
            if o.datatype == "BYTES":
                values, pos = [], 0
                while pos < len(raw):
                    n = int.from_bytes(raw[pos:pos + 4], "little")
                    values.append(raw[pos + 4:pos + 4 + n].decode())
                    pos += 4 + n
                out[o.name] = np.array(values)
            else:
                out[o.name] = np.frombuffer(raw, dtype=np.float64).reshape(shape)
        elif o.datatype == "BYTES":
            out[o.name] = np.array([b.decode() for b in o.contents.bytes_contents])
        else:
            out[o.name] = np.array(o.contents.fp64_contents, dtype=np.float64).reshape(shape)
    return out


def maas_request(texts, compact, packed):
    ref = common_pb.ModelRef(name=MODEL)
    if packed:
        return disc_pb.ClassifyRequest(model=ref, packed_texts=pack_texts(texts), compact=compact)
    return disc_pb.ClassifyRequest(model=ref, texts=texts, compact=compact)


def classify_compact(target, texts, packed=False):
    """maas's compact Classify answer: (classes, probabilities N x C, predicted labels)."""
    channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                                     ("grpc.max_send_message_length", MAX_MESSAGE)])
    call = channel.unary_unary(f"/{MAAS_METHOD}", disc_pb.ClassifyRequest.SerializeToString,
                               disc_pb.ClassifyResponse.FromString)
    reply = call(maas_request(texts, True, packed), timeout=120)
    channel.close()
    classes = list(reply.classes)
    probabilities = np.array(reply.probabilities.values, dtype=np.float64).reshape(
        reply.probabilities.rows, reply.probabilities.cols)
    return classes, probabilities, [classes[i] for i in reply.predicted]


def check_equal(pipe, maas_targets, mlserver_target, classes, texts):
    expected_labels = pipe.predict(texts)
    expected_proba = pipe.predict_proba(texts)
    channel = grpc.insecure_channel(mlserver_target, options=[("grpc.max_receive_message_length", MAX_MESSAGE)])
    infer = channel.unary_unary(f"/{MLSERVER_METHOD}", classes[0].SerializeToString, classes[1].FromString)
    ml = mlserver_outputs(infer(mlserver_request(classes[0], texts, ["predict", "predict_proba"]), timeout=120))
    ml_packed = mlserver_outputs(infer(mlserver_request(classes[0], texts, ["predict", "predict_proba"], packed=True),
                                       timeout=120))
    channel.close()
    assert ml["predict"].tolist() == expected_labels.tolist(), "MLServer's labels differ from scikit-learn's"
    assert np.allclose(ml["predict_proba"], expected_proba, rtol=0, atol=1e-12), "MLServer's probabilities differ"
    assert ml_packed["predict"].tolist() == ml["predict"].tolist(), "MLServer's labels differ with raw_input_contents"
    assert np.array_equal(ml_packed["predict_proba"], ml["predict_proba"]), "MLServer's raw_input_contents differ"
    for name, target in maas_targets.items():
        with DiscriminativeClient(target) as client:
            got = client.classify(MODEL, texts, timeout=120)
        assert list(got.classes) == pipe.classes_.tolist(), f"{name}: class order differs"
        assert got.labels.tolist() == ml["predict"].tolist(), f"{name}: labels differ from MLServer's"
        diff = np.abs(got.probabilities - ml["predict_proba"]).max()
        assert diff <= 1e-12, f"{name}: probabilities differ from MLServer's by {diff}"
        compact_classes, compact_proba, compact_labels = classify_compact(target, texts)
        assert compact_classes == pipe.classes_.tolist(), f"{name} (compact): class order differs"
        assert compact_labels == ml["predict"].tolist(), f"{name} (compact): labels differ from MLServer's"
        diff = np.abs(compact_proba - ml["predict_proba"]).max()
        assert diff <= 1e-12, f"{name} (compact): probabilities differ from MLServer's by {diff}"
        packed = classify_compact(target, texts, packed=True)
        assert packed[0] == compact_classes and packed[2] == compact_labels, f"{name} (packed): labels differ"
        assert np.array_equal(packed[1], compact_proba), f"{name} (packed): probabilities differ"
    return len(texts)


# -- main ------------------------------------------------------------------------------------------------------------
def main():
    # SIGTERM (e.g. a timeout around `make bench`) unwinds through the finally below, which stops every server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    nproc = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build_dir", default=os.environ.get("MAAS_BUILD_DIR", ROOT / "build"))
    parser.add_argument("--seconds", type=float, default=6, help="measured ghz duration per run")
    parser.add_argument("--warmup_seconds", type=float, default=1)
    parser.add_argument("--train_docs", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=500, help="long documents per batch call")
    parser.add_argument("--batch_concurrency", type=int, default=nproc, help="concurrent batch calls (default nproc)")
    parser.add_argument("--mlserver_workers", type=int, default=1 if nproc <= 2 else nproc - 1,
                        help="MLServer parallel_workers (inference processes besides the gRPC front process)")
    parser.add_argument("--no_gateway", action="store_true", help="skip the maas-gateway runs")
    parser.add_argument("--single_form", choices=["compact", "verbose"], default="compact",
                        help="maas answer form of the timed single-text calls (compact: labels once + probability "
                             "matrix + predicted index, what MLServer's predict_proba carries and more; verbose: the "
                             "default per-text result with probabilities and log-probabilities)")
    parser.add_argument("--batch_form", choices=["compact", "verbose"], default="compact",
                        help="maas answer form of the timed batch calls (compact: labels once + probability matrix, "
                             "what MLServer's predict_proba carries; verbose: the default per-text results)")
    parser.add_argument("--batch_request", choices=["packed", "repeated"], default="packed",
                        help="how the timed batch requests carry the texts (packed: one bytes field, maas's "
                             "packed_texts and MLServer's raw_input_contents, the same layout; repeated: one field "
                             "per text, maas's texts and MLServer's bytes_contents)")
    parser.add_argument("--ghz_cpus", type=int, default=0,
                        help="ghz --cpus (Go processors of the load generator; 0 = ghz's default, all cores)")
    parser.add_argument("--maas_args", default="", help="extra maas-discriminative flags, e.g. '--threads 2'")
    parser.add_argument("--venv", default=os.environ.get("MAAS_BENCH_VENV", ROOT / ".bench-venv"))
    parser.add_argument("--tools_dir", default=ROOT / ".tools")
    args = parser.parse_args()
    build_dir = pathlib.Path(args.build_dir)
    bin_dir = build_dir / "bin"
    for b in ("maas-discriminative", "maas-gateway"):
        if not (bin_dir / b).exists():
            raise SystemExit(f"{bin_dir / b} missing: run `make build` first")

    ghz = ensure_ghz(pathlib.Path(args.tools_dir))
    venv = ensure_mlserver(pathlib.Path(args.venv))

    rng = np.random.default_rng(8)
    words = make_words(rng, 30000)
    train_texts, train_labels = make_texts(rng, words, args.train_docs, 20, 150)
    short_texts, _ = make_texts(rng, words, 1000, 10, 40)
    long_texts, _ = make_texts(rng, words, args.batch, 600, 900)
    pipe = make_pipeline(CountVectorizer(), MultinomialNB()).fit(train_texts, train_labels)
    batch_mb = sum(len(t.encode()) for t in long_texts) / 1e6

    procs, tmp = [], tempfile.TemporaryDirectory(prefix="serve_vs_mlserver-")
    work = pathlib.Path(tmp.name)
    try:
        # MLServer: the pipeline as model.joblib, its scikit-learn runtime.
        model_dir = work / "mlserver"
        (model_dir / MODEL).mkdir(parents=True)
        joblib.dump(pipe, model_dir / MODEL / "model.joblib")
        (model_dir / MODEL / "model-settings.json").write_text(json.dumps(
            dict(name=MODEL, implementation="mlserver_sklearn.SKLearnModel",
                 parameters=dict(uri="./model.joblib", version="v1"))))
        subprocess.run([str(venv / "bin" / "python"), "-c", MLSERVER_PROTOSET_SCRIPT, str(work / "mlserver.protoset")],
                       check=True)
        mls_protoset = (work / "mlserver.protoset").read_bytes()
        infer_classes = message_classes(mls_protoset, ["inference.ModelInferRequest", "inference.ModelInferResponse"])
        (work / "maas.protoset").write_bytes(protoset(disc_pb.DESCRIPTOR).SerializeToString())

        mls, mls_port = start_mlserver(venv, model_dir, args.mlserver_workers, work / "mlserver.log")
        procs.append((mls, True))
        disc, disc_port = start_maas(bin_dir / "maas-discriminative",
                                     ["--model_dir", str(work / "models")] + args.maas_args.split(),
                                     work / "discriminative.log")
        procs.append((disc, False))
        targets = {"maas": f"127.0.0.1:{disc_port}"}
        servers = {"maas": [disc.pid], "mlserver": [mls.pid]}
        if not args.no_gateway:
            gw, gw_port = start_maas(bin_dir / "maas-gateway",
                                     ["--discriminative_target", f"ipv4:127.0.0.1:{disc_port}",
                                      "--generative_target", f"ipv4:127.0.0.1:{free_port()}"], work / "gateway.log")
            procs.append((gw, False))
            targets["maas via gateway"] = f"127.0.0.1:{gw_port}"
            servers["maas via gateway"] = [gw.pid, disc.pid]

        with DiscriminativeClient(targets["maas"]) as client:
            client.create(export(pipe, name=MODEL), timeout=60)
        checked = check_equal(pipe, targets, f"127.0.0.1:{mls_port}", infer_classes, short_texts[:300])
        checked += check_equal(pipe, targets, f"127.0.0.1:{mls_port}", infer_classes, long_texts[:100])
        print(f"check: {checked} texts, maas (direct{', gateway' if not args.no_gateway else ''}; default and compact "
              f"answers, texts and packed_texts) and MLServer (bytes_contents and raw_input_contents) labels "
              f"identical to MLServer's and scikit-learn's, probabilities within 1e-12", flush=True)

        # Request files for ghz: 1000 different single texts (round-robin) and one batch of long documents.
        files = {}
        compact = {False: args.single_form == "compact", True: args.batch_form == "compact"}
        packed = {False: False, True: args.batch_request == "packed"}
        for system, make in (("maas", lambda ts, batch=False: maas_request(ts, compact[batch], packed[batch])),
                             ("mlserver", lambda ts, batch=False: mlserver_request(
                                 infer_classes[0], ts, ["predict_proba"], packed[batch]))):
            files[system, "single"] = work / f"{system}-single.bin"
            files[system, "single"].write_bytes(delimited([make([t]) for t in short_texts]))
            files[system, "batch"] = work / f"{system}-batch.bin"
            files[system, "batch"].write_bytes(delimited([make(long_texts, batch=True)]))

        runs = [("single", 1), ("single", 16), ("batch", args.batch_concurrency)]
        systems = [("mlserver", f"127.0.0.1:{mls_port}", MLSERVER_METHOD, work / "mlserver.protoset")]
        systems += [(name, target, MAAS_METHOD, work / "maas.protoset") for name, target in targets.items()]
        results, loads, steals = {}, [], []
        for kind, concurrency in runs:
            for name, target, method, protoset_path in systems:
                data = files["mlserver" if name == "mlserver" else "maas", kind]
                if args.warmup_seconds > 0:
                    ghz_run(ghz, target, method, protoset_path, data, concurrency, args.warmup_seconds, servers[name],
                            args.ghz_cpus)
                loads.append(load_average())
                before = cpu_jiffies()
                results[name, kind, concurrency] = ghz_run(ghz, target, method, protoset_path, data, concurrency,
                                                           args.seconds, servers[name], args.ghz_cpus)
                steals.append(steal_share(before, cpu_jiffies()))
                print(f"  {name:18} {kind:6} c={concurrency:<3} steal {100 * steals[-1]:.1f}% "
                      f"{results[name, kind, concurrency]}", flush=True)
    finally:
        for proc, group in reversed(procs):
            stop(proc, group)
        tmp.cleanup()

    print()
    print(f"serve_vs_mlserver {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {nproc} cores of {cpu_summary()}, load average "
          f"{min(loads):.1f}-{max(loads):.1f} and CPU steal {100 * min(steals):.1f}-{100 * max(steals):.1f}% during "
          f"the runs; scikit-learn {sklearn.__version__}, MLServer 1.7.1 "
          f"(parallel_workers={args.mlserver_workers}), ghz {GHZ_VERSION} {' '.join(GHZ_OPTIONS)}"
          f"{f' --cpus {args.ghz_cpus}' if args.ghz_cpus > 0 else ''}, {args.seconds:g} s per run")
    print(f"model: CountVectorizer + MultinomialNB, {len(pipe[0].vocabulary_)} features, {len(pipe.classes_)} "
          f"classes; single texts 10-40 words; batch = {args.batch} documents of 600-900 words ({batch_mb:.2f} MB); "
          f"maas answers single texts in the {args.single_form} form, batches in the {args.batch_form} form; "
          f"batch requests {args.batch_request} ("
          f"{'packed_texts / raw_input_contents' if args.batch_request == 'packed' else 'texts / bytes_contents'}); "
          f"maas flags: {args.maas_args or '(defaults)'}")
    header = (f"{'':22}{'req/s':>8}{'MB/s':>7}{'p50 ms':>9}{'p99 ms':>9}{'server CPU':>11}{'ghz CPU':>9}"
              f"{'x req/s':>9}{'p99 x':>7}{'x CPU':>7}")
    for kind, concurrency in runs:
        print(f"\n{kind} texts, concurrency {concurrency}" + (f" (batches of {args.batch})" if kind == "batch" else ""))
        print(header)
        base = results["mlserver", kind, concurrency]
        for name, *_ in systems:
            r = results[name, kind, concurrency]
            mbs = f"{r['rps'] * batch_mb:7.1f}" if kind == "batch" else f"{'':7}"
            ratio = "" if name == "mlserver" else (f"{r['rps'] / base['rps']:8.1f}x{base['p99'] / r['p99']:6.1f}x"
                                                   f"{base['cpu_ms'] / r['cpu_ms']:6.1f}x")
            rps = f"{r['rps']:8.1f}" if r["rps"] < 100 else f"{r['rps']:8.0f}"
            print(f"  {name:20}{rps}{mbs}{r['p50']:9.2f}{r['p99']:9.2f}{r['cpu_ms']:11.3f}"
                  f"{r['ghz_cpu_ms']:9.3f}{ratio}")
    print("\nCPU columns: CPU ms per request of the server processes (with their children; the gateway run counts "
          "gateway + service) and of ghz.\n'x req/s' = throughput / MLServer's (target >= 20x); 'p99 x' = MLServer's "
          "p99 / this p99 (target >= 5x); 'x CPU' = MLServer's server CPU per request / this one's.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
