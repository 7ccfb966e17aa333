"""Frozen result of a log analysis and its ``smtpdiag.logs/1`` JSON form.

``LogsSummary`` stores the counts per source, host, reason and window, the leaks, the read
errors and the findings that ``Analysis.summary`` builds from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from smtpdiag import __version__
from smtpdiag.logs.options import AnalysisOptions
from smtpdiag.models import Finding, Status

LOGS_SCHEMA = "smtpdiag.logs/1"


@dataclass(frozen=True)
class SourceCount:
    """Counters of one log source."""

    lines: int
    attempts: int
    failures: int
    parse_errors: int
    fates: Mapping[str, int]
    """Messages per fate (``sent``, ``deferred``, ``bounced``) after failures."""


@dataclass(frozen=True)
class HostCount:
    """AUTH attempts and failures with one peer."""

    attempts: int
    failures: int


@dataclass(frozen=True)
class ReasonCount:
    """Failures with one reason."""

    count: int
    source: str
    """Source of the first line with this reason."""
    example: str
    """First line with this reason, secrets masked and redacted."""
    fix: str | None
    """Fix of the reason's finding kind; None for a code the catalog does not know."""
    reply_code: int | None = None
    enhanced_code: str | None = None
    host: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)
    """Values for the placeholders of the kind's title, from the first line."""


@dataclass(frozen=True)
class WindowCount:
    """One window ``[start, end)`` with attempts in it."""

    start: float
    end: float
    attempts: int
    failures: int
    failure_ratio: float
    over_threshold: bool


@dataclass(frozen=True)
class LeakReport:
    """Secrets of one kind found in one file; never the secret itself."""

    path: str
    line_number: int
    """First line with this kind of secret."""
    kind: str
    count: int
    """Lines with this kind of secret."""


@dataclass(frozen=True)
class RecentFailure:
    """One failure, kept for the follow display."""

    sequence: int
    """1 for the first failure counted, then increasing."""
    timestamp: float | None
    source: str
    host: str | None
    reason: str | None


@dataclass(frozen=True)
class LogsSummary:
    """Result of analysing log lines: counts, windows, leaks, findings and the status."""

    lines: int
    attempts: int
    failures: int
    failure_ratio: float | None
    """None when there were no attempts."""
    by_source: Mapping[str, SourceCount]
    by_host: Mapping[str, HostCount]
    by_reason: Mapping[str, ReasonCount]
    """Reason code to its count, most frequent first."""
    windows: tuple[WindowCount, ...]
    """Windows with at least one attempt, oldest first."""
    leaks: tuple[LeakReport, ...]
    parse_errors: int
    read_errors: tuple[tuple[str, str], ...]
    findings: tuple[Finding, ...]
    status: Status
    options: AnalysisOptions = field(default_factory=AnalysisOptions)
    attempts_outside: int = 0
    """AUTH attempts read whose time lies outside ``since`` to ``until``, so not counted."""
    latest_outside: float | None = None
    """Time of the newest of those attempts; None when there was none."""

    @property
    def fates(self) -> dict[str, int]:
        """Messages per fate over all sources."""
        totals: dict[str, int] = {}
        for counts in self.by_source.values():
            for fate, number in counts.fates.items():
                totals[fate] = totals.get(fate, 0) + number
        return totals

    def to_dict(self) -> dict[str, Any]:
        """Return the ``smtpdiag.logs/1`` JSON document."""
        return {
            "schema": LOGS_SCHEMA,
            "version": __version__,
            "totals": {
                "lines": self.lines,
                "attempts": self.attempts,
                "failures": self.failures,
                "failure_ratio": self.failure_ratio,
                "parse_errors": self.parse_errors,
            },
            "by_source": {name: _source_dict(counts) for name, counts in self.by_source.items()},
            "by_host": {
                name: {"attempts": counts.attempts, "failures": counts.failures}
                for name, counts in self.by_host.items()
            },
            "by_reason": {code: _reason_dict(counts) for code, counts in self.by_reason.items()},
            "windows": [window_dict(window) for window in self.windows],
            "fates": self.fates,
            "leaks": [_leak_dict(leak) for leak in self.leaks],
            "read_errors": [{"path": path, "error": error} for path, error in self.read_errors],
            "findings": [finding.to_dict() for finding in self.findings],
            "status": self.status.value,
            "options": _options_dict(self.options),
        }


def iso_time(seconds: float | None) -> str | None:
    """Return POSIX ``seconds`` as ISO 8601 UTC with a ``Z``; None stays None.

    A time outside the years 1 to 9999 (or not a number) gives None rather than an error.
    """
    if seconds is None:
        return None
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def window_dict(window: WindowCount) -> dict[str, Any]:
    """Return the JSON form of one window."""
    return {
        "start": iso_time(window.start),
        "end": iso_time(window.end),
        "attempts": window.attempts,
        "failures": window.failures,
        "failure_ratio": window.failure_ratio,
        "over_threshold": window.over_threshold,
    }


def _source_dict(counts: SourceCount) -> dict[str, Any]:
    return {
        "lines": counts.lines,
        "attempts": counts.attempts,
        "failures": counts.failures,
        "parse_errors": counts.parse_errors,
        "fates": dict(counts.fates),
    }


def _reason_dict(counts: ReasonCount) -> dict[str, Any]:
    return {
        "count": counts.count,
        "source": counts.source,
        "example": counts.example,
        "fix": counts.fix,
        "reply_code": counts.reply_code,
        "enhanced_code": counts.enhanced_code,
    }


def _leak_dict(leak: LeakReport) -> dict[str, Any]:
    return {
        "path": leak.path,
        "line_number": leak.line_number,
        "kind": leak.kind,
        "count": leak.count,
    }


def _options_dict(options: AnalysisOptions) -> dict[str, Any]:
    return {
        "window_seconds": options.window_seconds,
        "threshold": options.threshold,
        "min_attempts": options.min_attempts,
        "since": iso_time(options.since),
        "until": iso_time(options.until),
    }
