"""Table renderer for people at a terminal: a status table, then cause and fix per finding.

All report text goes into ``rich.text.Text`` objects, never into markup strings, because
server replies contain brackets such as ``[BN0PR04CA0123.namprd04.prod.outlook.com]``. Text
also passes through ``escape_control`` so that a reply cannot send terminal escape sequences.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any, TextIO, cast

from rich import box
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.styled import Styled
from rich.table import Table
from rich.text import Text

from smtpdiag.decode.result import DecodeResult, InputKind
from smtpdiag.models import CheckResult, Finding, Report, Severity, Status
from smtpdiag.render.text import (
    MAX_FACT_LENGTH,
    describe_target,
    escape_control,
    evidence_lines,
    format_fact_value,
    format_facts,
)

PLAIN_WIDTH = 100
"""Columns used when the output is not a terminal and ``COLUMNS`` is not set."""

MAX_EVIDENCE_LINES = 10
"""Evidence lines shown per finding. One closing line counts the rest."""

STATUS_STYLES = {
    Status.OK: "green",
    Status.WARNING: "yellow",
    Status.CRITICAL: "bold red",
    Status.UNKNOWN: "magenta",
    Status.SKIPPED: "dim",
}
"""Rich style of each status, shared by every table smtpdiag prints."""

SEVERITY_STYLES = {
    Severity.INFO: "dim",
    Severity.WARNING: "yellow",
    Severity.CRITICAL: "bold red",
}
"""Rich style of each finding severity."""

_INDENT = 2
"""Columns by which the lines under a finding title are indented."""


def make_console(stream: TextIO, *, color: bool | None = None) -> Console:
    """Create a console that writes to ``stream``.

    ``color`` True forces color and False disables every style. With None, a non-empty
    ``NO_COLOR`` disables every style, and otherwise rich uses color on a terminal, or where
    ``FORCE_COLOR`` or ``TTY_COMPATIBLE=1`` says the stream is one. Output that is not a
    terminal is plain text without escape sequences and without trailing whitespace,
    ``PLAIN_WIDTH`` columns wide unless ``COLUMNS`` sets the width.
    """
    if color is None and os.environ.get("NO_COLOR", ""):
        color = False

    console = Console(
        file=stream,
        force_terminal=True if color else None,
        color_system=None if color is False else "auto",
        no_color=False if color else None,
        highlight=False,
        emoji=False,
    )
    if not console.is_terminal:
        console.file = cast(TextIO, TrailingWhitespaceStripper(stream))
        if not os.environ.get("COLUMNS", "").isdigit():
            console.width = PLAIN_WIDTH
    return console


_WHITESPACE_BEFORE_NEWLINE = re.compile(r"[ \t]+(?=\n)")


class TrailingWhitespaceStripper:
    """Text stream wrapper that removes trailing whitespace from every line written to it.

    rich pads wrapped and indented lines with spaces up to the console width. In a file, a
    pipe or mail from cron those spaces are noise, and ``grep ' $'`` finds them. Spaces and
    tabs at the end of one write are held back until the next write shows whether text
    follows them on the same line, so those at the very end of the output are never written.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        """Write ``text`` without trailing whitespace; return its length, as ``TextIO`` does."""
        trimmed = _WHITESPACE_BEFORE_NEWLINE.sub("", self._pending + text)
        body = trimmed.rstrip(" \t")
        self._pending = trimmed[len(body) :]
        self._stream.write(body)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def __getattr__(self, name: str) -> Any:
        # rich reads attributes such as ``encoding`` and ``fileno`` from its file.
        return getattr(self._stream, name)


def _status_text(status: Status) -> Text:
    """Return the status word in its color."""
    return Text(status.value, style=STATUS_STYLES[status])


def _header(report: Report) -> Text:
    """Return the line that names the target and the overall status."""
    return Text.assemble(
        "target: ",
        (escape_control(describe_target(report.target)), "bold"),
        "   status: ",
        _status_text(report.status),
    )


def _duration(check: CheckResult) -> str:
    """Return the check's duration for the table, or a dash for a check that did not run."""
    if check.status is Status.SKIPPED:
        return "-"
    return f"{check.duration_seconds:.3f} s"


def _checks_table(report: Report, plain: bool) -> Table:
    """Build the table with one row per check."""
    table = Table(box=box.ASCII if plain else box.SIMPLE_HEAD, show_edge=plain)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("summary", overflow="fold")
    table.add_column("duration", justify="right", no_wrap=True)
    for check in report.checks:
        table.add_row(
            Text(escape_control(check.id)),
            _status_text(check.status),
            Text(escape_control(check.summary)),
            _duration(check),
        )
    return table


def _evidence_lines(finding: Finding) -> list[str]:
    """Return the last ``MAX_EVIDENCE_LINES`` evidence lines after a count of the rest.

    A transcript ends where the session failed, so the last lines are the ones to show.
    """
    lines = evidence_lines(finding.evidence)
    if len(lines) <= MAX_EVIDENCE_LINES:
        return lines
    hidden = len(lines) - MAX_EVIDENCE_LINES
    noun = "line" if hidden == 1 else "lines"
    return [f"… {hidden} earlier {noun}", *lines[-MAX_EVIDENCE_LINES:]]


def _labelled(label: str, value: str) -> Padding:
    """Return an indented ``label: value`` line whose wrapped parts keep the indent."""
    return Padding(
        Text.assemble((f"{label}: ", "bold"), escape_control(value)),
        (0, 0, 0, _INDENT),
        expand=False,
    )


def _finding_parts(finding: Finding) -> Iterator[RenderableType]:
    """Yield the lines of one finding block: title, cause, fix, facts, evidence and docs."""
    severity = finding.severity
    yield Text.assemble(
        (f"[{severity.value.upper()}]", SEVERITY_STYLES[severity]),
        " ",
        (escape_control(finding.code), "bold"),
        " — ",
        escape_control(finding.title),
    )
    yield _labelled("cause", finding.cause)
    yield _labelled("fix", finding.fix)
    if finding.facts:
        yield _labelled("facts", format_facts(finding.facts))
    if finding.evidence:
        yield Padding(Text("evidence:", style="bold"), (0, 0, 0, _INDENT), expand=False)
        for line in _evidence_lines(finding):
            yield Padding(Text(escape_control(line)), (0, 0, 0, 2 * _INDENT), expand=False)
    if finding.docs:
        yield _labelled("docs", finding.docs)


def _finding_block(finding: Finding) -> RenderableType:
    """Return one finding block, dimmed for an info finding."""
    block = Group(*_finding_parts(finding))
    if finding.severity is Severity.INFO:
        return Styled(block, "dim")
    return block


def render_table(report: Report, console: Console) -> None:
    """Print ``report`` to ``console``: header line, check table, then one block per finding."""
    plain = console.color_system is None
    console.print(_header(report))
    console.print(_checks_table(report, plain))
    for finding in report.findings:
        console.print()
        console.print(_finding_block(finding))


def render_decode(result: DecodeResult, console: Console) -> None:
    """Print a decode result: what the input was, its facts, then one block per finding."""
    header = Text("input: ")
    header.append(result.input_kind.value, style="bold")
    header.append("   status: ")
    header.append_text(_status_text(result.status))
    console.print(header)
    for key, value in result.facts.items():
        if key == "jwt" and isinstance(value, dict):
            _print_claims(value, console)
            continue
        # The reason of an unrecognised input is one sentence and is shown whole.
        limit = 500 if key == "reason" else MAX_FACT_LENGTH
        console.print(Text(escape_control(f"  {key}: {format_fact_value(value, limit)}")))
    if not result.findings and result.input_kind is not InputKind.UNKNOWN:
        console.print(Text("No problem found in this input.", style="green"))
    for finding in result.findings:
        console.print()
        console.print(_finding_block(finding))


def _print_claims(jwt: dict[str, object], console: Console) -> None:
    """Print a JWT's header and payload claims one per line, times as ISO 8601 UTC too."""
    from datetime import UTC, datetime

    for part in ("header", "payload"):
        claims = jwt.get(part)
        if not isinstance(claims, dict):
            continue
        console.print(Text(f"  jwt {part}:"))
        for name, value in claims.items():
            shown = format_fact_value(value)
            if name in {"exp", "iat", "nbf"} and isinstance(value, int | float):
                try:
                    moment = datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")
                except (OverflowError, OSError, ValueError):
                    moment = "not a valid time"
                shown = f"{value} ({moment})"
            console.print(Text(escape_control(f"    {name}: {shown}")))
