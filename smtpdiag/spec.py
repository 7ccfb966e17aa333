"""Declarations shared by all checks: the check spec and finding kinds."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from smtpdiag.context import CheckContext, Target
from smtpdiag.models import CheckResult, Finding, Severity


@dataclass(frozen=True)
class FindingKind:
    """Template of one finding code: the parts that do not depend on the run.

    ``title``, ``cause`` and ``fix`` may hold ``{name}`` fields that are filled from the
    ``details`` given when a finding is made; the catalog shows them unfilled.
    """

    code: str
    severity: Severity
    title: str
    cause: str
    fix: str

    @property
    def area(self) -> str:
        """Part of the code before the dot: the check id or core area."""
        return self.code.split(".", 1)[0]

    @property
    def name(self) -> str:
        """Part of the code after the dot; the ``reason`` metric label."""
        return self.code.split(".", 1)[1]

    def make(
        self,
        *,
        facts: Mapping[str, Any] | None = None,
        evidence: Sequence[str] = (),
        details: Mapping[str, Any] | None = None,
        severity: Severity | None = None,
    ) -> Finding:
        """Build a finding of this kind with the run's facts and evidence."""
        fields = _Fields(details or {})
        return Finding(
            code=self.code,
            severity=severity or self.severity,
            title=self.title.format_map(fields),
            cause=self.cause.format_map(fields),
            fix=self.fix.format_map(fields),
            facts=dict(facts or {}),
            evidence=tuple(evidence),
            docs=f"docs/checks/{self.area}.md",
        )


class _Fields(dict[str, Any]):
    """Placeholder values; a field the caller did not supply renders as empty text."""

    def __missing__(self, key: str) -> str:
        return ""


CheckRun = Callable[[Target, CheckContext], CheckResult]


@dataclass(frozen=True)
class CheckSpec:
    """One check: its id, what it needs and the function that runs it."""

    id: str
    """Stable check id; also the ``check`` metric label and the docs page name."""
    title: str
    run: CheckRun
    findings: tuple[FindingKind, ...]
    """Every finding kind the check can report; the catalog and docs are built from it."""
    requires: tuple[str, ...] = ()
    """Ids of checks whose results this check reads from ``ctx.upstream``; the check is
    skipped when one of them ends critical or unknown."""
    follows: tuple[str, ...] = ()
    """Ids of checks whose results this check reads when they ran, whatever their status: it
    starts after them and is never skipped because of them."""
