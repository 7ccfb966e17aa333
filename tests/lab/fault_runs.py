"""``smtpdiag check`` runs against fault labs, shared by the fault scenario tests."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from smtpdiag.lab.runner import start_lab
from smtpdiag.lab.scenarios import get_scenario

DURATION_FACTOR = 10
"""Bound on a check's reported duration, in multiples of the configured timeout: a sanity
limit that a hang would exceed, not a speed target."""

HANG_GUARD_SECONDS = 120
"""Time after which the test kills ``smtpdiag check``, so a hang fails the test."""


@dataclass(frozen=True)
class CheckRun:
    """One ``smtpdiag check`` run against a fault lab."""

    exit_code: int
    report: dict[str, Any]
    stderr: str

    def check(self, check_id: str) -> dict[str, Any]:
        return next(check for check in self.report["checks"] if check["id"] == check_id)

    def codes(self) -> set[str]:
        return {finding["code"] for check in self.report["checks"] for finding in check["findings"]}

    def finding(self, code: str) -> dict[str, Any]:
        findings = [f for check in self.report["checks"] for f in check["findings"]]
        return next(finding for finding in findings if finding["code"] == code)


_RUNS: dict[tuple[str, ...], CheckRun] = {}


def scenario_run(name: str, *, implicit_tls: bool = False) -> CheckRun:
    """Run ``smtpdiag check -f json`` against scenario ``name`` once per test session.

    With ``implicit_tls`` the run targets the lab's implicit TLS port and runs connect only.
    """
    key = (name, "implicit") if implicit_tls else (name,)
    if key in _RUNS:
        return _RUNS[key]
    with start_lab(get_scenario(name)) as lab:
        command = [sys.executable, "-m", "smtpdiag", "check", "-c", str(lab.config_file)]
        if implicit_tls:
            command += ["--tls-mode", "implicit", "--only", "connect", lab.smtps]
        process = subprocess.run(
            [*command, "--format", "json"],
            capture_output=True,
            text=True,
            timeout=HANG_GUARD_SECONDS,
            check=False,
        )
    _RUNS[key] = CheckRun(process.returncode, json.loads(process.stdout), process.stderr)
    return _RUNS[key]
