"""Output of ``smtpdiag logs``: the JSON document, the table, and the follow-mode views.

Like ``smtpdiag.render.table``, every log-derived text goes into ``rich.text.Text`` through
``escape_control``, because log lines hold brackets and can hold terminal escape sequences.
Callers redact the finished text (JSON) or pass summaries whose examples are already
redacted (table).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from smtpdiag.logs.kinds import RATE_CODES
from smtpdiag.logs.summary import (
    LogsSummary,
    RecentFailure,
    WindowCount,
    iso_time,
    window_dict,
)
from smtpdiag.models import Finding
from smtpdiag.render.table import SEVERITY_STYLES, STATUS_STYLES
from smtpdiag.render.text import escape_control

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text

SPARK_LEVELS = "▁▂▃▄▅▆▇█"
"""Block characters of the timeline, lowest ratio first; a window without attempts is a space."""

TIMELINE_WINDOWS = 96
"""Windows shown in the timeline: the last day with 15-minute windows."""

TOP_REASONS_SHOWN = 10


OVER_WINDOWS_SHOWN = 20
"""Windows over the threshold listed in the table, the latest ones; JSON lists them all."""


def render_logs_json(summary: LogsSummary) -> str:
    """Serialise ``summary`` as the indented ``smtpdiag.logs/1`` document ending in a newline."""
    return json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n"


def percent(ratio: float | None) -> str:
    """Return a ratio as a percentage with two decimals, or a dash for None."""
    return "-" if ratio is None else f"{ratio * 100:.2f} %"


def timeline_windows(
    windows: Sequence[WindowCount], window_seconds: float, count: int = TIMELINE_WINDOWS
) -> list[WindowCount | None]:
    """Return the last ``count`` window slots up to the newest window, None where a window
    had no attempts."""
    if not windows:
        return []
    by_index = {round(window.start / window_seconds): window for window in windows}
    last = round(windows[-1].start / window_seconds)
    first = max(round(windows[0].start / window_seconds), last - count + 1)
    return [by_index.get(index) for index in range(first, last + 1)]


def sparkline(
    windows: Sequence[WindowCount], window_seconds: float, count: int = TIMELINE_WINDOWS
) -> str:
    """Return one character per window for the last ``count`` windows up to the newest one.

    The height is the failure ratio relative to the highest ratio shown, so that one failure
    in a quiet day still shows. A window without attempts is a space.
    """
    shown = timeline_windows(windows, window_seconds, count)
    highest = max((window.failure_ratio for window in shown if window), default=0.0)
    return "".join(_spark_character(window, highest) for window in shown)


def _spark_character(window: WindowCount | None, highest: float) -> str:
    if window is None:
        return " "
    if window.failures == 0 or highest <= 0:
        return SPARK_LEVELS[0]
    level = math.ceil(window.failure_ratio / highest * (len(SPARK_LEVELS) - 1))
    return SPARK_LEVELS[min(level, len(SPARK_LEVELS) - 1)]


def render_logs_table(summary: LogsSummary, console: Console) -> None:
    """Print totals, sources, the rate verdict, top reasons, windows over the threshold, the
    timeline, leaks and the remaining findings."""
    from rich.text import Text

    plain = _plain(console)
    console.print(_header(summary))
    console.print(_sources_table(summary, plain))
    for line in _fate_lines(summary):
        console.print(Text(line))
    # The rate findings refer to "the reasons below", so they come before the reasons table.
    verdicts = [finding for finding in summary.findings if finding.code in RATE_CODES]
    for finding in verdicts:
        console.print()
        console.print(_finding_block(finding))
    if summary.by_reason:
        console.print()
        console.print(_reasons_table(summary, plain))
    over = [window for window in summary.windows if window.over_threshold]
    if over:
        console.print()
        console.print(_windows_table(over, plain))
    if summary.windows:
        console.print()
        console.print(_timeline(summary))
    if summary.leaks:
        console.print()
        for leak in summary.leaks:
            console.print(
                Text.assemble(
                    ("secret in log: ", "bold red"),
                    escape_control(f"{leak.path}:{leak.line_number}"),
                    f"  {leak.kind}  ({leak.count} {'line' if leak.count == 1 else 'lines'})",
                )
            )
    for finding in summary.findings:
        if finding in verdicts or finding.code in summary.by_reason:
            continue
        console.print()
        console.print(_finding_block(finding))


def _fate_lines(summary: LogsSummary) -> list[str]:
    """Return one line of bounced and deferred messages, or one per source when several
    sources logged fates: the logs of one chain (Postfix, msmtpd) each record the same
    message, so their sum would count it twice."""
    with_fates = {
        name: counts.fates
        for name, counts in summary.by_source.items()
        if counts.fates.get("bounced") or counts.fates.get("deferred")
    }
    lines = []
    for name, fates in with_fates.items():
        bounced, deferred = fates.get("bounced", 0), fates.get("deferred", 0)
        prefix = f"{name}: " if len(with_fates) > 1 else ""
        lines.append(
            f"{prefix}{_messages(bounced)} bounced (lost), {deferred} deferred (still queued)."
        )
    return lines


def _messages(count: int) -> str:
    return f"{count} message" if count == 1 else f"{count} messages"


def _plain(console: Console) -> bool:
    return console.color_system is None


def _header(summary: LogsSummary) -> Text:
    from rich.text import Text

    return Text.assemble(
        f"lines: {summary.lines}   attempts: {summary.attempts}   failures: {summary.failures} "
        f"({percent(summary.failure_ratio)})   parse errors: {summary.parse_errors}   status: ",
        (summary.status.value, STATUS_STYLES[summary.status]),
    )


def _new_table(plain: bool, *columns: str) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(box=box.ASCII if plain else box.SIMPLE_HEAD, show_edge=plain)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _sources_table(summary: LogsSummary, plain: bool) -> Table:
    table = _new_table(plain, "source", "lines", "attempts", "failures", "ratio", "parse errors")
    for name, counts in summary.by_source.items():
        ratio = counts.failures / counts.attempts if counts.attempts else None
        table.add_row(
            name,
            str(counts.lines),
            str(counts.attempts),
            str(counts.failures),
            percent(ratio),
            str(counts.parse_errors),
        )
    return table


def _reasons_table(summary: LogsSummary, plain: bool) -> Table:
    from rich.text import Text

    table = _new_table(plain, "reason", "count", "example and fix")
    for code, counts in list(summary.by_reason.items())[:TOP_REASONS_SHOWN]:
        explanation = Text.assemble(
            (escape_control(counts.example), "dim"),
            "\n",
            ("fix: ", "bold"),
            escape_control(counts.fix or "no fix known for this code"),
        )
        table.add_row(Text(escape_control(code)), str(counts.count), explanation)
    hidden = len(summary.by_reason) - TOP_REASONS_SHOWN
    if hidden > 0:
        table.add_row(Text(f"… {hidden} more reasons (--format json lists them)"), "", "")
    return table


def _windows_table(windows: Sequence[WindowCount], plain: bool) -> Table:
    from rich.text import Text

    table = _new_table(plain, "window over the threshold (UTC)", "attempts", "failures", "ratio")
    hidden = len(windows) - OVER_WINDOWS_SHOWN
    if hidden > 0:
        table.add_row(Text(f"… {hidden} earlier windows (--format json lists them)"), "", "", "")
    for window in windows[-OVER_WINDOWS_SHOWN:]:
        table.add_row(
            f"{iso_time(window.start)} to {iso_time(window.end)}",
            str(window.attempts),
            str(window.failures),
            percent(window.failure_ratio),
        )
    return table


def _timeline(summary: LogsSummary) -> Text:
    """Return the timeline heading and sparkline, windows over the threshold in red."""
    from rich.text import Text

    size = summary.options.window_seconds
    shown = timeline_windows(summary.windows, size)
    line = sparkline(summary.windows, size)
    first = summary.windows[-1].start - (len(shown) - 1) * size
    text = Text.assemble(
        ("failure ratio per window ", "bold"),
        f"({iso_time(first)} to {iso_time(summary.windows[-1].end)}):\n",
    )
    for character, window in zip(line, shown, strict=True):
        text.append(character, "red" if window is not None and window.over_threshold else "")
    return text


def _finding_block(finding: Finding) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    severity = finding.severity
    return Group(
        Text.assemble(
            (f"[{severity.value.upper()}]", SEVERITY_STYLES[severity]),
            " ",
            (escape_control(finding.code), "bold"),
            " — ",
            escape_control(finding.title),
        ),
        _labelled("cause", finding.cause),
        _labelled("fix", finding.fix),
    )


def _labelled(label: str, value: str) -> RenderableType:
    """Return an indented ``label: value`` line whose wrapped parts keep the indent."""
    from rich.padding import Padding
    from rich.text import Text

    line = Text.assemble((f"{label}: ", "bold"), escape_control(value))
    return Padding(line, (0, 0, 0, 2), expand=False)


def follow_line(
    now: float, window: WindowCount, failures: Sequence[RecentFailure], threshold: float
) -> str:
    """Return the plain follow-mode line of one interval: time and the current window, then
    one indented line per new failure."""
    mark = " OVER THRESHOLD" if window.over_threshold else ""
    lines = [
        f"{_clock(now)} window {iso_time(window.start)}: attempts {window.attempts}, failures "
        f"{window.failures}, ratio {percent(window.failure_ratio)} (threshold "
        f"{percent(threshold)}){mark}"
    ]
    lines.extend(f"  failure: {_failure_text(failure)}" for failure in failures)
    return escape_control("\n".join(lines))


def follow_json(now: float, window: WindowCount, attempts: int, failures: int) -> str:
    """Return the one-line JSON object that follow mode prints per interval: the time, the
    current window, and the attempts and failures counted since the start."""
    data = {
        "time": iso_time(now),
        "window": window_dict(window),
        "totals": {"attempts": attempts, "failures": failures},
    }
    return json.dumps(data, ensure_ascii=False)


def follow_view(
    now: float, window: WindowCount, failures: Sequence[RecentFailure], threshold: float
) -> RenderableType:
    """Return the live display: the current window's ratio and the last failures."""
    from rich.console import Group
    from rich.text import Text

    style = "bold red" if window.over_threshold else "green"
    header = Text.assemble(
        f"{_clock(now)}  window {iso_time(window.start)}  attempts {window.attempts}  "
        f"failures {window.failures}  ratio ",
        (percent(window.failure_ratio), style),
        f"  (threshold {percent(threshold)})",
    )
    rows = [Text(escape_control(_failure_text(failure)), style="dim") for failure in failures]
    if not rows:
        rows = [Text("no failures yet", style="dim")]
    return Group(header, Text("last failures:", style="bold"), *rows)


def _clock(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%H:%M:%S")


def _failure_text(failure: RecentFailure) -> str:
    moment = iso_time(failure.timestamp) or "no time"
    host = failure.host or "-"
    return f"{moment} {failure.source} {host} {failure.reason or 'reason not known'}"
