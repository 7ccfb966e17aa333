"""Tests of the rich table renderer and its console factory."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import pytest

from smtpdiag.models import CheckResult, Finding, Report, Severity, Status
from smtpdiag.render.table import MAX_EVIDENCE_LINES, PLAIN_WIDTH, make_console, render_table

ANSI_ESCAPE = re.compile(r"\x1b\[")

TERMINAL_VARIABLES = (
    "NO_COLOR",
    "FORCE_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "COLUMNS",
    "TERM",
)


@pytest.fixture(autouse=True)
def clean_terminal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove the variables through which rich detects terminals and color."""
    for name in TERMINAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def render(report: Report, *, color: bool | None = None) -> str:
    """Render ``report`` into a string as a pipe would receive it."""
    stream = io.StringIO()
    render_table(report, make_console(stream, color=color))
    return stream.getvalue()


def flatten(text: str) -> str:
    """Return ``text`` with every run of whitespace, line breaks included, as one space."""
    return " ".join(text.split())


def test_table_shows_cause_and_fix(critical_report: Report) -> None:
    output = flatten(render(critical_report))
    for finding in critical_report.findings:
        assert flatten(f"cause: {finding.cause}") in output, finding.code
        assert flatten(f"fix: {finding.fix}") in output, finding.code


def test_table_shows_finding_title_line(critical_report: Report) -> None:
    output = render(critical_report)
    assert "[CRITICAL] connect.starttls_not_offered — STARTTLS not offered" in output


def test_table_shows_info_finding(critical_report: Report) -> None:
    assert "[INFO] tls.version — TLS 1.3 negotiated" in render(critical_report)


def test_table_shows_facts_as_key_value(auth_report: Report) -> None:
    output = render(auth_report)
    assert "reply_code=535  enhanced_code=5.7.3" in output


def test_table_header_status_is_report_status(status_mix: Any) -> None:
    first_line = render(status_mix.report).splitlines()[0]
    assert first_line.endswith(f"status: {status_mix.status.value}")


def test_table_header_names_target_and_status(critical_report: Report) -> None:
    first_line = render(critical_report).splitlines()[0]
    assert first_line == "target: relay (127.0.0.1:2525, starttls)   status: critical"


def test_table_has_row_per_check(critical_report: Report) -> None:
    output = render(critical_report)
    rows = [line for line in output.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in rows] == [
        "check",
        "dns",
        "connect",
        "tls",
        "token",
    ]


@pytest.mark.parametrize(
    ("check_id", "expected"),
    [
        ("dns", ["dns", "ok", "dns passed", "0.012 s"]),
        ("connect", ["connect", "critical", "STARTTLS not offered by 127.0.0.1:2525", "0.034 s"]),
        ("token", ["token", "skipped", "no refresh token configured", "-"]),
    ],
    ids=str,
)
def test_table_row_cells(critical_report: Report, check_id: str, expected: list[str]) -> None:
    rows = [
        line for line in render(critical_report).splitlines() if line.startswith(f"| {check_id} ")
    ]
    assert [cell.strip() for cell in rows[0].split("|")[1:-1]] == expected


def test_table_keeps_markup_brackets(auth_report: Report, outlook_rejection: str) -> None:
    output = render(auth_report)
    assert f"S: {outlook_rejection}" in output


def test_table_keeps_closing_tag_text(auth_report: Report) -> None:
    output = flatten(render(auth_report))
    assert "[Set-CASMailbox -SmtpClientAuthenticationDisabled $false]" in output


def test_table_keeps_rich_tag_lookalikes(report_factory: Callable[..., Report]) -> None:
    finding = Finding(
        "auth.rejected", Severity.WARNING, "[bold]not bold[/]", "[/] [red]x[/red]", "f"
    )
    report = report_factory(CheckResult("auth", Status.WARNING, "[link=x]y[/link]", (finding,)))
    output = render(report)
    assert "[bold]not bold[/]" in output
    assert "[/] [red]x[/red]" in output
    assert "[link=x]y[/link]" in output


@pytest.mark.parametrize(
    ("color", "environment"),
    [
        pytest.param(None, {}, id="pipe"),
        pytest.param(False, {}, id="color_false"),
        pytest.param(False, {"FORCE_COLOR": "1"}, id="color_false_beats_force_color"),
        pytest.param(None, {"NO_COLOR": "1", "FORCE_COLOR": "1"}, id="no_color_beats_force_color"),
        pytest.param(None, {"TTY_COMPATIBLE": "1", "NO_COLOR": "yes"}, id="no_color_on_terminal"),
    ],
)
def test_table_plain_has_no_ansi(
    critical_report: Report,
    monkeypatch: pytest.MonkeyPatch,
    color: bool | None,
    environment: dict[str, str],
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert ANSI_ESCAPE.search(render(critical_report, color=color)) is None


@pytest.mark.parametrize(
    ("color", "environment"),
    [
        pytest.param(True, {}, id="color_true"),
        pytest.param(None, {"FORCE_COLOR": "1"}, id="force_color"),
    ],
)
def test_table_color_has_ansi(
    critical_report: Report,
    monkeypatch: pytest.MonkeyPatch,
    color: bool | None,
    environment: dict[str, str],
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert ANSI_ESCAPE.search(render(critical_report, color=color)) is not None


def test_table_colors_critical_red(critical_report: Report) -> None:
    assert "\x1b[1;31mcritical" in render(critical_report, color=True)


def test_table_plain_table_is_ascii(critical_report: Report) -> None:
    table_lines = render(critical_report).split("\n\n")[0].splitlines()
    assert all(line.isascii() for line in table_lines)


def test_console_plain_width_default() -> None:
    assert make_console(io.StringIO()).width == PLAIN_WIDTH


def test_console_width_from_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "132")
    assert make_console(io.StringIO()).width == 132


def test_table_escapes_terminal_sequences(report_factory: Callable[..., Report]) -> None:
    finding = Finding(
        "connect.bad_reply",
        Severity.CRITICAL,
        "Malformed reply",
        "c",
        "f",
        evidence=("S: 220 \x1b]0;owned\x07 ready \udc80",),
    )
    report = report_factory(
        CheckResult("connect", Status.CRITICAL, "bad \x1b[2J reply", (finding,))
    )
    output = render(report)
    assert "\x1b" not in output
    assert "S: 220 \\x1b]0;owned\\x07 ready \\x80" in output
    assert "bad \\x1b[2J reply" in output


def test_table_cuts_long_evidence(report_factory: Callable[..., Report]) -> None:
    lines = tuple(f"S: 250-line {number}" for number in range(MAX_EVIDENCE_LINES + 3))
    finding = Finding(
        "connect.long_reply", Severity.WARNING, "Long reply", "c", "f", evidence=lines
    )
    report = report_factory(CheckResult("connect", Status.WARNING, "long", (finding,)))
    output = render(report)
    assert f"S: 250-line {MAX_EVIDENCE_LINES + 2}" in output
    assert re.search(r"S: 250-line 2\b", output) is None
    assert "… 3 earlier lines" in output


def test_table_without_checks_prints_header() -> None:
    report = Report("0.1.0", {"host": "::1", "port": 587}, "2026-04-22T08:15:00Z", 0.0, ())
    assert render(report).splitlines()[0] == "target: [::1]:587   status: skipped"
