"""Tests of the Nagios plugin renderer."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from smtpdiag.models import CheckResult, Finding, Report, Severity, Status
from smtpdiag.render.nagios import render_nagios, status_word

FIRST_LINE = re.compile(r"^SMTPDIAG (OK|WARNING|CRITICAL|UNKNOWN) - ([^|]+?)(?: \| (.+))?$")
PERFDATA = re.compile(
    r"^'(?P<check>[a-z_]+)_(?P<metric>duration|status)'=(?P<value>[0-9]+(?:\.[0-9]+)?)"
    r"(?P<unit>s?);(?P<levels>[0-9;]*)$"
)
EXPECTED_WORDS = {
    Status.OK: "OK",
    Status.SKIPPED: "OK",
    Status.WARNING: "WARNING",
    Status.CRITICAL: "CRITICAL",
    Status.UNKNOWN: "UNKNOWN",
}


def first_line_parts(report: Report) -> tuple[str, str, list[str]]:
    """Return the status word, text and performance data items of the first line."""
    match = FIRST_LINE.match(render_nagios(report).splitlines()[0])
    assert match is not None
    perfdata = match.group(3).split(" ") if match.group(3) else []
    return match.group(1), match.group(2), perfdata


def test_nagios_status_word_matches_report(status_mix: Any) -> None:
    word, _, _ = first_line_parts(status_mix.report)
    assert word == EXPECTED_WORDS[status_mix.status]


def test_nagios_status_word_matches_exit_code(status_mix: Any) -> None:
    word, _, _ = first_line_parts(status_mix.report)
    assert ["OK", "WARNING", "CRITICAL", "UNKNOWN"].index(
        word
    ) == status_mix.report.status.exit_code


def test_nagios_perfdata_parses(status_mix: Any) -> None:
    _, _, perfdata = first_line_parts(status_mix.report)
    unparsed = [item for item in perfdata if PERFDATA.match(item) is None]
    assert unparsed == []


def test_nagios_perfdata_omits_skipped_checks(status_mix: Any) -> None:
    _, _, perfdata = first_line_parts(status_mix.report)
    matches = [PERFDATA.match(item) for item in perfdata]
    checks = {match.group("check") for match in matches if match is not None}
    ran = {check.id for check in status_mix.report.checks if check.status is not Status.SKIPPED}
    assert checks == ran


def test_nagios_status_perfdata_values(status_mix: Any) -> None:
    _, _, perfdata = first_line_parts(status_mix.report)
    values = {
        match.group("check"): int(match.group("value"))
        for match in map(PERFDATA.match, perfdata)
        if match is not None and match.group("metric") == "status"
    }
    expected = {
        check.id: check.status.exit_code
        for check in status_mix.report.checks
        if check.status is not Status.SKIPPED
    }
    assert values == expected


def test_nagios_long_text_has_line_per_finding(status_mix: Any) -> None:
    long_text = render_nagios(status_mix.report).splitlines()[1:]
    expected = [
        f"{finding.severity.value}: {finding.code}: {finding.title}"
        for finding in status_mix.report.findings
    ]
    assert long_text == expected


def test_nagios_ends_with_newline(critical_report: Report) -> None:
    assert render_nagios(critical_report).endswith("\n")


@pytest.mark.parametrize(
    ("mix", "expected"),
    [
        ("critical", "connect: STARTTLS not offered by 127.0.0.1:2525"),
        ("warning", "tls: certificate expires in 9 days"),
        ("unknown", "clock: TimeoutError: no NTP reply within 10 s"),
        ("all_ok", "3 checks ok"),
        ("skipped_only", "all 2 checks skipped"),
        ("no_checks", "no checks ran"),
    ],
    ids=str,
)
def test_nagios_summary_text(status_mixes: dict[str, Any], mix: str, expected: str) -> None:
    _, text, _ = first_line_parts(status_mixes[mix].report)
    assert text == expected


def test_nagios_summary_joins_worst_checks(status_mixes: dict[str, Any]) -> None:
    _, text, _ = first_line_parts(status_mixes["critical_and_unknown"].report)
    assert text == (
        "auth: 535 5.7.3 Authentication unsuccessful "
        "[BN0PR04CA0123.namprd04.prod.outlook.com]; "
        "connect: STARTTLS not offered by 127.0.0.1:2525"
    )


def test_nagios_summary_counts_skipped(report_factory: Callable[..., Report]) -> None:
    report = report_factory(
        CheckResult("dns", Status.OK, "ok"), CheckResult.skipped("token", "no token")
    )
    _, text, _ = first_line_parts(report)
    assert text == "1 check ok, 1 skipped"


def test_nagios_skipped_only_has_no_perfdata(status_mixes: dict[str, Any]) -> None:
    assert " | " not in render_nagios(status_mixes["skipped_only"].report)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.0, "'dns_duration'=0s;;;0"),
        (0.123, "'dns_duration'=0.123s;;;0"),
        (0.0000001, "'dns_duration'=0s;;;0"),
        (0.000015, "'dns_duration'=0.000015s;;;0"),
        (12.5, "'dns_duration'=12.5s;;;0"),
        (3600.0, "'dns_duration'=3600s;;;0"),
    ],
    ids=str,
)
def test_nagios_duration_without_exponent(
    report_factory: Callable[..., Report], seconds: float, expected: str
) -> None:
    report = report_factory(CheckResult("dns", Status.OK, "ok", duration_seconds=seconds))
    _, _, perfdata = first_line_parts(report)
    assert perfdata[0] == expected


def test_nagios_status_perfdata_levels(report_factory: Callable[..., Report]) -> None:
    report = report_factory(CheckResult("tls", Status.WARNING, "expires soon"))
    _, _, perfdata = first_line_parts(report)
    assert perfdata[1] == "'tls_status'=1;0;1;0;3"


def test_nagios_text_has_no_pipe_or_line_break(report_factory: Callable[..., Report]) -> None:
    finding = Finding("auth.rejected", Severity.CRITICAL, "a | b\nc", "c", "f")
    report = report_factory(CheckResult("auth", Status.CRITICAL, "x | y\r\nz", (finding,)))
    lines = render_nagios(report).splitlines()
    assert lines[0].startswith("SMTPDIAG CRITICAL - auth: x / y z | ")
    assert lines[1] == "critical: auth.rejected: a / b c"


def test_nagios_escapes_control_characters(report_factory: Callable[..., Report]) -> None:
    report = report_factory(CheckResult("connect", Status.UNKNOWN, "bad \x00 reply \udc80"))
    first_line = render_nagios(report).splitlines()[0]
    assert first_line.startswith("SMTPDIAG UNKNOWN - connect: bad \\x00 reply \\x80 | ")


@pytest.mark.parametrize("status", list(Status), ids=str)
def test_status_word(status: Status) -> None:
    assert status_word(status) == EXPECTED_WORDS[status]
