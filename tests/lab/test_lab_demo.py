"""Demo runner: compares hand-made reports with what each scenario expects."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from system_programs import require_program

from smtpdiag.lab import demo
from smtpdiag.lab.demo import DOVECOT_MISSING, MSMTP_MISSING, judge, missing_line, run_demo
from smtpdiag.lab.scenarios import SCENARIOS, Scenario
from smtpdiag.models import CheckResult, Finding, Report, Severity

# Each chain scenario starts Postfix, the relay, msmtp and Dovecot and sends three messages.
# tests/test_real_chain.py runs them all, so the full demo here leaves them out.
CHAIN_NAMES = ("chain", "chain-refresh-revoked", "chain-token-command-fails", "chain-dovecot-down")
DEMO_SCENARIOS = {name: value for name, value in SCENARIOS.items() if name not in CHAIN_NAMES}


def finding(code: str, severity: Severity = Severity.CRITICAL) -> Finding:
    return Finding(code=code, severity=severity, title=code, cause="cause", fix="fix")


def report(*findings: Finding) -> Report:
    check = CheckResult.from_findings("connect", "summary", findings)
    return Report(
        version="0",
        target={"name": "lab"},
        started_at="2024-01-01T00:00:00Z",
        duration_seconds=0.0,
        checks=(check,),
    )


def matching_reports(scenarios: Mapping[str, Scenario] = DEMO_SCENARIOS) -> dict[str, Report]:
    """One report per scenario that contains exactly what the scenario expects."""
    reports = {}
    for name, scenario in scenarios.items():
        findings = [finding(code) for code in scenario.expected_codes]
        if not findings:
            findings = [finding("connect.info_only", Severity.INFO)]
        reports[name] = report(*findings)
    return reports


class FakeSuite:
    """Return prepared reports in scenario order and record the configuration files seen."""

    def __init__(self, reports: Mapping[str, Report]) -> None:
        self._reports = iter(reports.values())
        self.config_files_existed: list[bool] = []

    def __call__(self, config_file: Path) -> Report:
        self.config_files_existed.append(config_file.is_file())
        return next(self._reports)


class ShowRecorder:
    """Record the names passed to ``show``."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, name: str, shown_report: Report) -> None:
        self.names.append(name)


@dataclass(frozen=True)
class DemoRun:
    """One demo over every scenario's real lab, with prepared reports in place of checks."""

    code: int
    lines: list[str]
    config_files_existed: list[bool]
    shown: list[str]


def demo_run(reports: Mapping[str, Report]) -> DemoRun:
    """Run the demo over the scenarios named in ``reports``, in table order."""
    # The Dovecot scenarios start the real Dovecot, which would otherwise print "not run".
    require_program("dovecot")
    suite, recorder, out = FakeSuite(reports), ShowRecorder(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo, "SCENARIOS", {name: SCENARIOS[name] for name in reports})
        code = run_demo(suite, recorder, out)
    return DemoRun(code, out.getvalue().splitlines(), suite.config_files_existed, recorder.names)


# Each demo starts every scenario's lab, so the module runs it once per set of reports.
@pytest.fixture(scope="module")
def all_diagnosed() -> DemoRun:
    return demo_run(matching_reports())


@pytest.fixture(scope="module")
def one_mismatch() -> DemoRun:
    reports = matching_reports()
    reports["greeting-421"] = report(finding("connect.refused"))
    return demo_run(reports)


def test_demo_all_diagnosed_returns_zero(all_diagnosed: DemoRun) -> None:
    assert all_diagnosed.code == 0


def test_demo_all_diagnosed_output(all_diagnosed: DemoRun) -> None:
    total = len(DEMO_SCENARIOS)
    expected = [f"{name}: diagnosed as expected" for name in DEMO_SCENARIOS]
    expected.append(f"{total} scenarios, {total} diagnosed as expected")
    assert all_diagnosed.lines == expected


def test_demo_runs_suite_on_live_config(all_diagnosed: DemoRun) -> None:
    assert all_diagnosed.config_files_existed == [True] * len(DEMO_SCENARIOS)


def test_demo_shows_every_scenario(all_diagnosed: DemoRun) -> None:
    assert all_diagnosed.shown == list(DEMO_SCENARIOS)


def test_demo_mismatch_returns_nonzero(one_mismatch: DemoRun) -> None:
    assert one_mismatch.code == 1


def test_demo_mismatch_line(one_mismatch: DemoRun) -> None:
    assert (
        "greeting-421: NOT diagnosed: expected connect.greeting_rejected, got connect.refused"
        in one_mismatch.lines
    )


def test_demo_mismatch_summary(one_mismatch: DemoRun) -> None:
    total = len(DEMO_SCENARIOS)
    assert one_mismatch.lines[-1] == f"{total} scenarios, {total - 1} diagnosed as expected"


@pytest.mark.parametrize(
    ("scenario", "findings", "expected_line"),
    [
        pytest.param(
            "healthy",
            (finding("tls.expiring_soon", Severity.WARNING),),
            "healthy: NOT diagnosed: expected status ok, got status warning (tls.expiring_soon)",
            id="healthy-with-warning",
        ),
        pytest.param(
            "healthy",
            (finding("connect.note", Severity.INFO),),
            "healthy: diagnosed as expected",
            id="healthy-with-info",
        ),
        pytest.param(
            "starttls-missing",
            (),
            "starttls-missing: NOT diagnosed: expected connect.starttls_not_offered, "
            "got no findings",
            id="no-findings",
        ),
        pytest.param(
            "oauth-not-offered",
            (finding("tls.hostname_mismatch"), finding("connect.oauth_not_offered")),
            "oauth-not-offered: diagnosed as expected",
            id="expected-among-others",
        ),
    ],
)
def test_judge_line(scenario: str, findings: tuple[Finding, ...], expected_line: str) -> None:
    assert judge(SCENARIOS[scenario], report(*findings)).line() == expected_line


def test_chain_names_are_chain_scenarios() -> None:
    chain_names = tuple(name for name, value in SCENARIOS.items() if value.chain is not None)
    assert chain_names == CHAIN_NAMES


def test_demo_runs_chain_scenario() -> None:
    require_program("postfix")
    require_program("msmtp")
    run = demo_run(matching_reports({"chain-dovecot-down": SCENARIOS["chain-dovecot-down"]}))
    assert run.lines == [
        "chain-dovecot-down: diagnosed as expected",
        "1 scenarios, 1 diagnosed as expected",
    ]


@pytest.mark.parametrize(
    ("missing", "line"),
    [
        pytest.param(
            ("postfix",), "Postfix is not installed (Debian package postfix)", id="postfix"
        ),
        pytest.param(("msmtp",), "msmtp is not installed (Debian package msmtp)", id="msmtp"),
        pytest.param(
            ("postfix", "dovecot"),
            "Postfix and Dovecot are not installed "
            "(Debian packages postfix, dovecot-core and dovecot-submissiond)",
            id="postfix-and-dovecot",
        ),
        pytest.param(
            ("postfix", "msmtp", "dovecot"),
            "Postfix, msmtp and Dovecot are not installed "
            "(Debian packages postfix, msmtp, dovecot-core and dovecot-submissiond)",
            id="all-three",
        ),
    ],
)
def test_demo_chain_not_run_line(missing: tuple[str, ...], line: str) -> None:
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo, "SCENARIOS", {"chain": SCENARIOS["chain"]})
        code = run_demo(
            FakeSuite({}),
            ShowRecorder(),
            out,
            locate_postfix=lambda: None if "postfix" in missing else "/usr/sbin/postfix",
            locate_msmtp=lambda: None if "msmtp" in missing else "/usr/bin/msmtp",
            locate_dovecot=lambda: None if "dovecot" in missing else "/usr/sbin/dovecot",
        )
    assert (code, out.getvalue().splitlines()) == (
        0,
        [f"chain: not run, {line}", "0 scenarios, 0 diagnosed as expected"],
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            MSMTP_MISSING, "not run, msmtp is not installed (Debian package msmtp)", id="msmtp"
        ),
        pytest.param(
            DOVECOT_MISSING,
            "not run, Dovecot is not installed "
            "(Debian packages dovecot-core and dovecot-submissiond)",
            id="dovecot",
        ),
        pytest.param(
            missing_line(["Postfix"]),
            "not run, Postfix is not installed (Debian package postfix)",
            id="postfix",
        ),
    ],
)
def test_missing_line_single_program(line: str, expected: str) -> None:
    assert line == expected
