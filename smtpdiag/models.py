"""Result model shared by checks, the engine, renderers and exporters.

The serialised form of these types is a public contract (schema ``smtpdiag.report/1``): field
names and enum values change only with a schema version bump.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

REPORT_SCHEMA = "smtpdiag.report/1"


class Status(StrEnum):
    """Outcome of one check or of a whole run."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"

    @property
    def rank(self) -> int:
        """Position in the worst-of order: critical > unknown > warning > ok > skipped."""
        return _STATUS_RANK[self]

    @property
    def exit_code(self) -> int:
        """Nagios plugin exit code: 0 ok or skipped, 1 warning, 2 critical, 3 unknown."""
        return _EXIT_CODES[self]


_STATUS_RANK = {
    Status.SKIPPED: 0,
    Status.OK: 1,
    Status.WARNING: 2,
    Status.UNKNOWN: 3,
    Status.CRITICAL: 4,
}

_EXIT_CODES = {
    Status.SKIPPED: 0,
    Status.OK: 0,
    Status.WARNING: 1,
    Status.CRITICAL: 2,
    Status.UNKNOWN: 3,
}


def worst_status(statuses: Iterable[Status]) -> Status:
    """Return the worst of ``statuses``, or SKIPPED when there are none."""
    return max(statuses, key=lambda status: status.rank, default=Status.SKIPPED)


class Severity(StrEnum):
    """Weight of one finding; a check's status is the worst severity among its findings."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def status(self) -> Status:
        """Check status that this severity implies."""
        return {
            Severity.INFO: Status.OK,
            Severity.WARNING: Status.WARNING,
            Severity.CRITICAL: Status.CRITICAL,
        }[self]


@dataclass(frozen=True)
class Finding:
    """One problem or observation that smtpdiag can name."""

    code: str
    """Stable identifier ``area.name``, e.g. ``connect.starttls_not_offered``; never renamed."""
    severity: Severity
    title: str
    """One line that names the problem."""
    cause: str
    """Reason for the problem, in plain words."""
    fix: str
    """Next step that resolves the problem."""
    facts: Mapping[str, Any] = field(default_factory=dict)
    """Machine-readable values behind the finding, under the documented fact names."""
    evidence: tuple[str, ...] = ()
    """Redacted transcript or log lines that show the problem."""
    docs: str | None = None
    """Path of the docs page that explains the finding, or None when there is none."""

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form used by the report and decode schemas."""
        data: dict[str, Any] = {
            "code": self.code,
            "severity": self.severity.value,
            "title": self.title,
            "cause": self.cause,
            "fix": self.fix,
            "facts": dict(self.facts),
            "evidence": list(self.evidence),
        }
        if self.docs is not None:
            data["docs"] = self.docs
        return data


_SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


def worst_first(findings: Iterable[Finding]) -> list[Finding]:
    """Return ``findings`` sorted critical, warning, info; equal severities keep their order."""
    return sorted(findings, key=lambda finding: _SEVERITY_RANK[finding.severity])


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check against one target."""

    id: str
    status: Status
    summary: str
    """One line for the table and the Nagios output."""
    findings: tuple[Finding, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)
    """Raw measurements, kept so that alert rules can apply their own thresholds."""
    duration_seconds: float = 0.0
    outputs: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Values that dependent checks read, such as the access token the token check obtained.
    Never serialised: they may hold secrets."""

    @classmethod
    def from_findings(
        cls,
        check_id: str,
        summary: str,
        findings: Iterable[Finding] = (),
        facts: Mapping[str, Any] | None = None,
        outputs: Mapping[str, Any] | None = None,
    ) -> CheckResult:
        """Build a result whose status is the worst severity of ``findings`` (ok when none)."""
        findings = tuple(findings)
        status = worst_status(finding.severity.status for finding in findings)
        if status is Status.SKIPPED:
            status = Status.OK
        return cls(
            check_id, status, summary, findings, dict(facts or {}), outputs=dict(outputs or {})
        )

    @classmethod
    def skipped(cls, check_id: str, reason: str) -> CheckResult:
        """Build the result of a check that lacks its inputs."""
        return cls(check_id, Status.SKIPPED, reason)

    @classmethod
    def unknown(
        cls, check_id: str, reason: str, facts: Mapping[str, Any] | None = None
    ) -> CheckResult:
        """Build the result of a check that could not reach a verdict."""
        return cls(check_id, Status.UNKNOWN, reason, (), dict(facts or {}))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form of one entry of the report's ``checks`` list."""
        return {
            "id": self.id,
            "status": self.status.value,
            "summary": self.summary,
            "duration_seconds": round(self.duration_seconds, 6),
            "findings": [finding.to_dict() for finding in self.findings],
            "facts": dict(self.facts),
        }


@dataclass(frozen=True)
class Report:
    """Results of one run of the check suite against one target."""

    version: str
    """smtpdiag version that produced the report."""
    target: Mapping[str, Any]
    """Target description without secrets: name, host, port, tls_mode, and the like."""
    started_at: str
    """ISO 8601 UTC time at which the run started."""
    duration_seconds: float
    checks: tuple[CheckResult, ...]

    @property
    def status(self) -> Status:
        """Worst status over all checks."""
        return worst_status(check.status for check in self.checks)

    @property
    def findings(self) -> tuple[Finding, ...]:
        """All findings of all checks, in check order."""
        return tuple(finding for check in self.checks for finding in check.findings)

    def to_dict(self) -> dict[str, Any]:
        """Return the ``smtpdiag.report/1`` JSON document."""
        return {
            "schema": REPORT_SCHEMA,
            "version": self.version,
            "target": dict(self.target),
            "status": self.status.value,
            "started_at": self.started_at,
            "duration_seconds": round(self.duration_seconds, 6),
            "checks": [check.to_dict() for check in self.checks],
        }
