"""Starting a maas server for a benchmark: its stderr goes straight to a log file and its port is read from there.

The benchmarks used to read the server's stderr through a pipe. A script that stops reading after the start-up line
leaves the server blocked in write() once the pipe's 64 KiB fill up with per-call log lines (a hang after a few hundred
calls); one that keeps draining it runs a reader thread on the same cores as the server and the load generator,
invisible in either side's CPU figures, and costs the server a pipe write and a reader wake-up per call. MLServer's
output goes to a file in serve_vs_mlserver.py; maas's now does too.
"""

import pathlib
import re
import subprocess
import time


def start_logged(command, log_path, timeout=30.0):
    """Runs `command` (a maas server started with --port 0) with stderr to log_path; returns (process, port) once its
    start-up line names the port. Exits with a message pointing at the log if it does not start within `timeout`."""
    log_path = pathlib.Path(log_path)
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(c) for c in command], stderr=log)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        match = re.search(r"on port (\d+)", log_path.read_text(errors="replace"))
        if match:
            return proc, int(match.group(1))
        time.sleep(0.02)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    raise SystemExit(f"{pathlib.Path(str(command[0])).name} did not start; see {log_path}")


def cpu_summary():
    """This machine's CPU as the benchmarks report it: its model name, family and model, and whether it has
    AVX-512 (maas's text and sampling kernels take 8-lane paths there, 4-lane AVX2 ones otherwise), from
    /proc/cpuinfo."""
    fields = {}
    try:
        for line in open("/proc/cpuinfo"):
            if not line.strip():
                break  # the first processor's block is enough
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        return "CPU unknown"
    flags = fields.get("flags", "").split()
    simd = "AVX-512" if "avx512f" in flags else "AVX2, no AVX-512" if "avx2" in flags else "no AVX2"
    return (f"{fields.get('model name', 'CPU')} (family {fields.get('cpu family', '?')} model "
            f"{fields.get('model', '?')}, {simd})")
