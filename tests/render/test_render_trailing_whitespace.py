"""Output that is not a terminal (a file, a pipe, mail from cron) has no trailing whitespace."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from scripted_peer import unused_port

from smtpdiag.decode.detect import decode_text
from smtpdiag.models import CheckResult, Finding, Report, Severity, Status
from smtpdiag.render.table import make_console, render_decode, render_table

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]

MICROSOFT_REJECTION = (
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
    "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. "
    "[AM0PR02CA0001.eurprd02.prod.outlook.com]"
)

TERMINAL_VARIABLES = ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS")


@pytest.fixture(autouse=True)
def clean_terminal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove the variables through which rich detects terminals and color."""
    for name in TERMINAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def padded_lines(text: str) -> list[str]:
    """Return the lines of ``text`` that end with whitespace."""
    return [line for line in text.splitlines() if line != line.rstrip()]


def wrapped_report(report_factory: Callable[..., Report]) -> Report:
    """Build a report whose title, cause, fix, facts and evidence each wrap at 100 columns."""
    long_text = "The server closed the connection after the greeting. " * 5
    finding = Finding(
        code="connect.closed",
        severity=Severity.CRITICAL,
        title=long_text,
        cause=long_text,
        fix=long_text,
        facts={"reply_text": long_text},
        evidence=(f"S: 421 {long_text}",),
        docs="docs/checks/connect.md",
    )
    check = CheckResult("connect", Status.CRITICAL, long_text, (finding,), {}, 0.5)
    return report_factory(check)


def test_check_render_has_no_trailing_whitespace(report_factory: Callable[..., Report]) -> None:
    stream = io.StringIO()
    render_table(wrapped_report(report_factory), make_console(stream))
    output = stream.getvalue()

    assert "cause: " in output
    assert padded_lines(output) == []


def test_decode_render_has_no_trailing_whitespace() -> None:
    stream = io.StringIO()
    render_decode(decode_text(MICROSOFT_REJECTION, None), make_console(stream))
    output = stream.getvalue()

    assert "cause: " in output
    assert padded_lines(output) == []


def test_trailing_whitespace_across_writes() -> None:
    stream = io.StringIO()
    console = make_console(stream)
    console.file.write("first   ")
    console.file.write("  \nsecond \t")
    console.file.write("third\n")

    assert stream.getvalue() == "first\nsecond \tthird\n"


def test_whitespace_line_becomes_empty() -> None:
    stream = io.StringIO()
    make_console(stream).print("   ")

    assert stream.getvalue() == "\n"


def run_cli(*arguments: str) -> str:
    """Run ``python -m smtpdiag`` with its standard output on a pipe and return that output."""
    completed = subprocess.run(
        [sys.executable, "-m", "smtpdiag", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPOSITORY_ROOT,
        check=False,
    )
    assert completed.stdout, completed.stderr
    return completed.stdout


def test_check_pipe_has_no_trailing_whitespace() -> None:
    output = run_cli("check", f"127.0.0.1:{unused_port()}", "--only", "dns,connect")

    assert "fix: " in output
    assert padded_lines(output) == []


def test_decode_pipe_has_no_trailing_whitespace() -> None:
    output = run_cli("decode", MICROSOFT_REJECTION)

    assert "fix: " in output
    assert padded_lines(output) == []
