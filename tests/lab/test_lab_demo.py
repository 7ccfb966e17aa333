"""Demo runner: compares hand-made reports with what each scenario expects."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from system_programs import require_program

from smtpdiag.lab.demo import judge, run_demo
from smtpdiag.lab.scenarios import SCENARIOS
from smtpdiag.models import CheckResult, Finding, Report, Severity


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


def matching_reports() -> dict[str, Report]:
    """One report per scenario that contains exactly what the scenario expects."""
    reports = {}
    for name, scenario in SCENARIOS.items():
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
    # The Dovecot scenarios start the real Dovecot, which would otherwise print "not run".
    require_program("dovecot")
    suite, recorder, out = FakeSuite(reports), ShowRecorder(), io.StringIO()
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
    expected = [f"{name}: diagnosed as expected" for name in SCENARIOS]
    expected.append(f"{len(SCENARIOS)} scenarios, {len(SCENARIOS)} diagnosed as expected")
    assert all_diagnosed.lines == expected


def test_demo_runs_suite_on_live_config(all_diagnosed: DemoRun) -> None:
    assert all_diagnosed.config_files_existed == [True] * len(SCENARIOS)


def test_demo_shows_every_scenario(all_diagnosed: DemoRun) -> None:
    assert all_diagnosed.shown == list(SCENARIOS)


def test_demo_mismatch_returns_nonzero(one_mismatch: DemoRun) -> None:
    assert one_mismatch.code == 1


def test_demo_mismatch_line(one_mismatch: DemoRun) -> None:
    assert (
        "greeting-421: NOT diagnosed: expected connect.greeting_rejected, got connect.refused"
        in one_mismatch.lines
    )


def test_demo_mismatch_summary(one_mismatch: DemoRun) -> None:
    total = len(SCENARIOS)
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
