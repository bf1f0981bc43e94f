"""pytest configuration of the Python tests: attach the servers' stderr to the report of a failing e2e test."""

import sys

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    # Only when an e2e module has imported the helpers (other Python tests need not have the stubs built).
    maas_testing = sys.modules.get("maas_testing")
    if report.failed and maas_testing is not None:
        for process in maas_testing.live_processes():
            state = "running" if process.running() else f"exited with {process.proc.returncode}"
            report.sections.append((f"stderr of {process.name} (pid {process.proc.pid}, port {process.port}, {state})",
                                    process.stderr_text()))
