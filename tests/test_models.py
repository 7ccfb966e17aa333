"""Result model: worst-of ordering, exit codes and JSON form."""

from __future__ import annotations

import pytest

from smtpdiag.models import CheckResult, Finding, Severity, Status, worst_first, worst_status


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        pytest.param([], Status.SKIPPED, id="empty"),
        pytest.param([Status.SKIPPED, Status.OK], Status.OK, id="ok-over-skipped"),
        pytest.param([Status.OK, Status.WARNING], Status.WARNING, id="warning-over-ok"),
        pytest.param([Status.WARNING, Status.UNKNOWN], Status.UNKNOWN, id="unknown-over-warning"),
        pytest.param(
            [Status.UNKNOWN, Status.CRITICAL], Status.CRITICAL, id="critical-over-unknown"
        ),
    ],
)
def test_worst_status(statuses: list[Status], expected: Status) -> None:
    assert worst_status(statuses) is expected


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (Status.OK, 0),
        (Status.SKIPPED, 0),
        (Status.WARNING, 1),
        (Status.CRITICAL, 2),
        (Status.UNKNOWN, 3),
    ],
    ids=str,
)
def test_exit_code(status: Status, code: int) -> None:
    assert status.exit_code == code


def finding(severity: Severity) -> Finding:
    return Finding("area.name", severity, "title", "cause", "fix")


@pytest.mark.parametrize(
    ("severities", "expected"),
    [
        pytest.param([], Status.OK, id="no-findings"),
        pytest.param([Severity.INFO], Status.OK, id="info"),
        pytest.param([Severity.INFO, Severity.WARNING], Status.WARNING, id="warning"),
        pytest.param([Severity.CRITICAL, Severity.WARNING], Status.CRITICAL, id="critical"),
    ],
)
def test_status_from_findings(severities: list[Severity], expected: Status) -> None:
    result = CheckResult.from_findings("x", "summary", [finding(s) for s in severities])
    assert result.status is expected


def test_finding_json_omits_missing_docs() -> None:
    assert "docs" not in finding(Severity.INFO).to_dict()


def test_worst_first_keeps_order_within_severity() -> None:
    findings = [
        Finding("a.info", Severity.INFO, "t", "c", "f"),
        Finding("a.warning1", Severity.WARNING, "t", "c", "f"),
        Finding("a.critical", Severity.CRITICAL, "t", "c", "f"),
        Finding("a.warning2", Severity.WARNING, "t", "c", "f"),
    ]
    assert [finding.code for finding in worst_first(findings)] == [
        "a.critical",
        "a.warning1",
        "a.warning2",
        "a.info",
    ]
