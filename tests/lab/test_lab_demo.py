"""Demo runner: compares hand-made reports with what each scenario expects."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import pytest

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


def test_demo_all_diagnosed_returns_zero() -> None:
    out = io.StringIO()
    assert run_demo(FakeSuite(matching_reports()), ShowRecorder(), out) == 0


def test_demo_all_diagnosed_output() -> None:
    out = io.StringIO()
    run_demo(FakeSuite(matching_reports()), ShowRecorder(), out)
    expected = [f"{name}: diagnosed as expected" for name in SCENARIOS]
    expected.append(f"{len(SCENARIOS)} scenarios, {len(SCENARIOS)} diagnosed as expected")
    assert out.getvalue().splitlines() == expected


def test_demo_runs_suite_on_live_config() -> None:
    suite = FakeSuite(matching_reports())
    run_demo(suite, ShowRecorder(), io.StringIO())
    assert suite.config_files_existed == [True] * len(SCENARIOS)


def test_demo_shows_every_scenario() -> None:
    recorder = ShowRecorder()
    run_demo(FakeSuite(matching_reports()), recorder, io.StringIO())
    assert recorder.names == list(SCENARIOS)


@pytest.fixture
def one_mismatch() -> tuple[int, list[str]]:
    reports = matching_reports()
    reports["greeting-421"] = report(finding("connect.refused"))
    out = io.StringIO()
    code = run_demo(FakeSuite(reports), ShowRecorder(), out)
    return code, out.getvalue().splitlines()


def test_demo_mismatch_returns_nonzero(one_mismatch: tuple[int, list[str]]) -> None:
    assert one_mismatch[0] == 1


def test_demo_mismatch_line(one_mismatch: tuple[int, list[str]]) -> None:
    assert (
        "greeting-421: NOT diagnosed: expected connect.greeting_rejected, got connect.refused"
        in one_mismatch[1]
    )


def test_demo_mismatch_summary(one_mismatch: tuple[int, list[str]]) -> None:
    total = len(SCENARIOS)
    assert one_mismatch[1][-1] == f"{total} scenarios, {total - 1} diagnosed as expected"


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
