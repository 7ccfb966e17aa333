"""Fault scenarios: ``smtpdiag check`` against the raw fault server ends with a precise finding."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from smtpdiag.lab.options import SmtpFault
from smtpdiag.lab.runner import start_lab
from smtpdiag.lab.scenarios import FAULT_SCENARIOS, FAULT_TIMEOUT, get_scenario

# Every fault lab reads an opaque access token from a file, whose scopes cannot be read.
ALWAYS = {"scope.unverifiable"}

DURATION_FACTOR = 10
"""Bound on a check's reported duration, in multiples of the configured timeout: a sanity
limit that a hang would exceed, not a speed target."""

HANG_GUARD_SECONDS = 120
"""Time after which the test kills ``smtpdiag check``, so a hang fails the test."""


@dataclass(frozen=True)
class Expected:
    """What a correct diagnosis of one fault scenario contains."""

    code: str
    check: str
    stage: str | None
    """``stage`` fact of the finding; None for a finding without one."""
    exit_code: int = 2


EXPECTED = {
    "black-hole": Expected("connect.timeout", "connect", "greeting"),
    "slow-drip": Expected("connect.timeout", "connect", "greeting"),
    "close-after-greeting": Expected("connect.closed", "connect", "ehlo"),
    "close-after-ehlo": Expected("connect.closed", "connect", "starttls"),
    "close-after-starttls": Expected("connect.tls_handshake_failed", "connect", "tls_handshake"),
    "close-mid-handshake": Expected("connect.tls_handshake_failed", "connect", "tls_handshake"),
    "close-mid-reply": Expected("connect.closed", "connect", "ehlo"),
    "reset-during-auth": Expected("auth.no_final_reply", "auth", None),
    "endless-continuation": Expected("connect.not_smtp", "connect", "ehlo"),
    "huge-line": Expected("connect.not_smtp", "connect", "ehlo"),
    "binary-garbage": Expected("connect.not_smtp", "connect", "greeting"),
    # Bare LF is tolerated and reported as information, so the run succeeds.
    "bare-lf": Expected("connect.protocol_oddities", "connect", "done", exit_code=0),
    "endless-challenge": Expected("auth.repeated_challenge", "auth", None),
}

NAMES = [scenario.name for scenario in FAULT_SCENARIOS]


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


@pytest.fixture(scope="module", params=NAMES)
def fault_run(request: pytest.FixtureRequest) -> Iterator[tuple[str, CheckRun]]:
    name = request.param
    with start_lab(get_scenario(name)) as lab:
        command = [sys.executable, "-m", "smtpdiag", "check", "-c", str(lab.config_file)]
        process = subprocess.run(
            [*command, "--format", "json"],
            capture_output=True,
            text=True,
            timeout=HANG_GUARD_SECONDS,
            check=False,
        )
    yield name, CheckRun(process.returncode, json.loads(process.stdout), process.stderr)


def test_fault_table_covers_scenarios() -> None:
    assert sorted(EXPECTED) == sorted(NAMES)


def test_fault_names_follow_enum() -> None:
    assert [fault.value for fault in SmtpFault] == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_fault_scenario_short_timeout(name: str) -> None:
    assert get_scenario(name).timeout == FAULT_TIMEOUT


@pytest.mark.parametrize("name", NAMES)
def test_fault_scenario_expected_codes(name: str) -> None:
    assert get_scenario(name).expected_codes == (EXPECTED[name].code,)


def test_fault_exact_codes(fault_run: tuple[str, CheckRun]) -> None:
    name, run = fault_run
    assert run.codes() == {EXPECTED[name].code} | ALWAYS


def test_fault_exit_code(fault_run: tuple[str, CheckRun]) -> None:
    name, run = fault_run
    assert run.exit_code == EXPECTED[name].exit_code


def test_fault_finding_in_check(fault_run: tuple[str, CheckRun]) -> None:
    name, run = fault_run
    expected = EXPECTED[name]
    codes = [finding["code"] for finding in run.check(expected.check)["findings"]]
    assert codes == [expected.code]


def test_fault_finding_stage(fault_run: tuple[str, CheckRun]) -> None:
    name, run = fault_run
    expected = EXPECTED[name]
    assert run.finding(expected.code)["facts"].get("stage") == expected.stage


def test_fault_no_traceback(fault_run: tuple[str, CheckRun]) -> None:
    _, run = fault_run
    assert "Traceback" not in run.stderr


def test_fault_checks_end_within_bound(fault_run: tuple[str, CheckRun]) -> None:
    _, run = fault_run
    bound = FAULT_TIMEOUT * DURATION_FACTOR
    slow = [check["id"] for check in run.report["checks"] if check["duration_seconds"] >= bound]
    assert slow == []


def test_fault_report_ends_within_bound(fault_run: tuple[str, CheckRun]) -> None:
    _, run = fault_run
    assert run.report["duration_seconds"] < FAULT_TIMEOUT * DURATION_FACTOR


def test_bare_lf_oddity_names_line_end() -> None:
    with start_lab(get_scenario("bare-lf")) as lab:
        process = subprocess.run(
            [sys.executable, "-m", "smtpdiag", "check", "-c", str(lab.config_file), "-f", "json"],
            capture_output=True,
            text=True,
            timeout=HANG_GUARD_SECONDS,
            check=False,
        )
    run = CheckRun(process.returncode, json.loads(process.stdout), process.stderr)
    assert "bare LF" in run.finding("connect.protocol_oddities")["cause"]


def test_fault_server_stop_closes_open_connection() -> None:
    scenario = get_scenario("black-hole")
    with start_lab(scenario) as lab:
        host, port = lab.smtp_starttls.rsplit(":", 1)
        client = socket.create_connection((host, int(port)), timeout=5)
    with client:
        assert client.recv(1) == b""
