"""Report stand-ins for tests that replace the check run of ``smtpdiag demo``."""

from __future__ import annotations

from pathlib import Path

from smtpdiag.models import CheckResult, Report


def empty_report(config_file: Path) -> Report:
    """Return an ok report with one connect result and no findings, for any ``config_file``."""
    check = CheckResult.from_findings("connect", "summary", ())
    return Report(
        version="0",
        target={},
        started_at="2024-01-01T00:00:00Z",
        duration_seconds=0.0,
        checks=(check,),
    )
