"""JUnit XML renderer: one test suite per run and one test case per check, for CI reports.

A critical check is a ``<failure>``, an unknown check an ``<error>`` and a skipped check
``<skipped>``. Findings of passing checks go to ``<system-out>``. Every text passes through
``escape_control`` because server replies may hold bytes that XML 1.0 does not allow.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable

from smtpdiag.models import CheckResult, Finding, Report, Severity, Status
from smtpdiag.render.text import escape_control, evidence_lines, format_facts, target_name

_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _seconds(value: float) -> str:
    """Return a JUnit ``time`` attribute: seconds with millisecond precision."""
    return f"{max(0.0, value):.3f}"


def _finding_text(finding: Finding) -> str:
    """Return every part of one finding as plain lines."""
    lines = [
        f"[{finding.severity.value}] {finding.code}: {finding.title}",
        f"cause: {finding.cause}",
        f"fix: {finding.fix}",
    ]
    if finding.facts:
        lines.append(f"facts: {format_facts(finding.facts)}")
    if finding.evidence:
        lines.append("evidence:")
        lines.extend(f"  {line}" for line in evidence_lines(finding.evidence))
    if finding.docs:
        lines.append(f"docs: {finding.docs}")
    return "\n".join(lines)


def _findings_text(findings: Iterable[Finding]) -> str:
    """Return the text of several findings separated by blank lines."""
    return "\n\n".join(_finding_text(finding) for finding in findings)


def _failure_type(check: CheckResult) -> str:
    """Return the code of the check's first critical finding, or ``critical`` when none."""
    for finding in check.findings:
        if finding.severity is Severity.CRITICAL:
            return finding.code
    return Status.CRITICAL.value


def _add_child(parent: ET.Element, tag: str, text: str, **attributes: str) -> None:
    """Append element ``tag`` with escaped attributes and escaped text to ``parent``."""
    child = ET.SubElement(
        parent, tag, {key: escape_control(value) for key, value in attributes.items()}
    )
    if text:
        child.text = escape_control(text)


def _error_text(check: CheckResult) -> str:
    """Return the summary, facts and findings of a check that reached no verdict."""
    parts = [check.summary]
    if check.facts:
        parts.append(f"facts: {format_facts(check.facts)}")
    if check.findings:
        parts.append(_findings_text(check.findings))
    return "\n\n".join(parts)


def _add_outcome(testcase: ET.Element, check: CheckResult) -> None:
    """Add the element that marks the check's status, if any, to ``testcase``."""
    if check.status is Status.CRITICAL:
        text = _findings_text(check.findings)
        _add_child(testcase, "failure", text, message=check.summary, type=_failure_type(check))
    elif check.status is Status.UNKNOWN:
        text = _error_text(check)
        _add_child(testcase, "error", text, message=check.summary, type=Status.UNKNOWN.value)
    elif check.status is Status.SKIPPED:
        _add_child(testcase, "skipped", "", message=check.summary)
    elif check.findings:
        # Warning and ok checks pass; their findings still belong in the CI report.
        _add_child(testcase, "system-out", _findings_text(check.findings))


def _testcase(check: CheckResult, classname: str) -> ET.Element:
    """Build the ``<testcase>`` element of one check."""
    testcase = ET.Element(
        "testcase",
        {
            "classname": escape_control(classname),
            "name": escape_control(check.id),
            "time": _seconds(check.duration_seconds),
        },
    )
    _add_outcome(testcase, check)
    return testcase


def _count_attributes(report: Report) -> dict[str, str]:
    """Return the ``tests``, ``failures``, ``errors``, ``skipped`` and ``time`` attributes."""
    statuses = [check.status for check in report.checks]
    return {
        "tests": str(len(statuses)),
        "failures": str(statuses.count(Status.CRITICAL)),
        "errors": str(statuses.count(Status.UNKNOWN)),
        "skipped": str(statuses.count(Status.SKIPPED)),
        "time": _seconds(report.duration_seconds),
    }


def render_junit(report: Report) -> str:
    """Render ``report`` as a JUnit XML document with an XML declaration, ending in a newline."""
    name = target_name(report.target)
    counts = _count_attributes(report)

    testsuites = ET.Element("testsuites", {"name": "smtpdiag", **counts})
    testsuite = ET.SubElement(
        testsuites,
        "testsuite",
        {
            "name": escape_control(f"smtpdiag {name}"),
            **counts,
            "timestamp": escape_control(report.started_at),
        },
    )
    for check in report.checks:
        testsuite.append(_testcase(check, f"smtpdiag.{name}"))

    ET.indent(testsuites)
    return _XML_DECLARATION + ET.tostring(testsuites, encoding="unicode") + "\n"
