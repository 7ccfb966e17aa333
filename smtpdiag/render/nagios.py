"""Nagios plugin renderer: one status line with performance data, then one line per finding.

Output format of the Monitoring Plugins guidelines: ``text | perfdata`` on the first line,
further lines are long text. Labels are quoted, values use no scientific notation, and the
``|`` character never appears in text because it starts performance data.
"""

from __future__ import annotations

from collections import Counter

from smtpdiag.models import CheckResult, Report, Status
from smtpdiag.render.text import one_line

# Indexed by Status.exit_code, so the word always agrees with the exit code.
_STATUS_WORDS = ("OK", "WARNING", "CRITICAL", "UNKNOWN")

# Thresholds and value range of the ``<check>_status`` metric: 0 ok, 1 warning, 2 critical,
# 3 unknown. In the plugin range syntax a threshold ``N`` alerts above N, so warn 0 and crit 1
# make a graphing tool flag 1 as warning and 2 or 3 as critical, matching the exit code.
_STATUS_PERFDATA_LEVELS = ";0;1;0;3"


def status_word(status: Status) -> str:
    """Return the plugin status word for ``status``. A run of only skipped checks is OK."""
    return _STATUS_WORDS[status.exit_code]


def _plain(text: str) -> str:
    """Return ``text`` on one line without the reserved ``|`` character."""
    return one_line(text).replace("|", "/")


def _format_number(value: float) -> str:
    """Return ``value`` in fixed-point notation with at most six decimals."""
    shown = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if shown in {"", "-0"} else shown


def _summary(report: Report) -> str:
    """Return the status line text: the worst checks and their summaries, or the counts."""
    status = report.status
    if status in {Status.WARNING, Status.CRITICAL, Status.UNKNOWN}:
        worst = [check for check in report.checks if check.status is status]
        return "; ".join(f"{check.id}: {_plain(check.summary)}" for check in worst)

    counts = Counter(check.status for check in report.checks)
    if not report.checks:
        return "no checks ran"
    if counts[Status.OK] == 0:
        skipped = counts[Status.SKIPPED]
        return f"all {skipped} checks skipped" if skipped > 1 else "the only check was skipped"
    ok = counts[Status.OK]
    text = f"{ok} checks ok" if ok > 1 else "1 check ok"
    if counts[Status.SKIPPED]:
        text += f", {counts[Status.SKIPPED]} skipped"
    return text


def _quote_label(label: str) -> str:
    """Return ``label`` in single quotes, doubling any quote inside it."""
    escaped = _plain(label).replace("'", "''").replace("=", "_")
    return f"'{escaped}'"


def _perfdata(check: CheckResult) -> list[str]:
    """Return the duration and status metrics of one check that ran."""
    duration = _format_number(max(0.0, check.duration_seconds))
    return [
        f"{_quote_label(check.id + '_duration')}={duration}s;;;0",
        f"{_quote_label(check.id + '_status')}={check.status.exit_code}{_STATUS_PERFDATA_LEVELS}",
    ]


def render_nagios(report: Report) -> str:
    """Render ``report`` as Nagios plugin output ending in a newline.

    Skipped checks have no performance data. Each finding of every check adds one long-text
    line ``<severity>: <code>: <title>``.
    """
    perfdata: list[str] = []
    for check in report.checks:
        if check.status is not Status.SKIPPED:
            perfdata.extend(_perfdata(check))

    first_line = f"SMTPDIAG {status_word(report.status)} - {_summary(report)}"
    if perfdata:
        first_line += " | " + " ".join(perfdata)

    long_text = [
        f"{finding.severity.value}: {_plain(finding.code)}: {_plain(finding.title)}"
        for finding in report.findings
    ]
    return "\n".join([first_line, *long_text]) + "\n"
