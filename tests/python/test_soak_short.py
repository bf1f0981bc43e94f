"""A short run of `make soak` (tests/soak/gateway_soak.py) so the soak script cannot rot: mixed load through the
gateway with slow and stopping readers; no call may fail and the gateway's memory must come back after the load."""

import json
import os
import pathlib
import sys

SOAK_DIR = pathlib.Path(os.environ.get("MAAS_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2])) / "tests/soak"
sys.path.insert(0, str(SOAK_DIR))

import gateway_soak  # noqa: E402
from maas_testing import assert_rss_bound  # noqa: E402


def test_short_soak(tmp_path):
    report_file = tmp_path / "soak.json"
    code = gateway_soak.main(["--duration", "8", "--streams", "16", "--json", str(report_file)])
    report = json.loads(report_file.read_text())
    assert code == 0, report
    assert report["errors"] == 0, report
    for kind, figures in report["kinds"].items():
        assert figures["calls"] > 0, f"no {kind} call completed: {report}"
    gateway = report["rss_mb"]["gateway"]
    # Stopping readers used to park tens of MB per stream in the gateway; now a few messages each.
    assert_rss_bound(gateway["peak"] < gateway["start"] + 16 * 8.0, report)
    assert_rss_bound(gateway["end"] < gateway["start"] + 40.0, report)
