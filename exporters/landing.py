"""HTML landing page of the exporter (``GET /``).

The page lists each configured target with the latest status, summary and age of every cached
check result with the codes of its warning and critical findings, and links to the other
endpoints. Every value passes through ``redact`` and ``html.escape``. A finding shows only its
code, because its evidence can contain server replies and log lines.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

from exporters.settings import JOB_PUBLISHES
from smtpdiag.models import Severity
from smtpdiag.redact import redact

if TYPE_CHECKING:
    from exporters.cache import CachedResult
    from exporters.settings import ExporterConfig, ExporterTarget

_CHECK_ORDER = {
    check: index
    for index, check in enumerate(check for checks in JOB_PUBLISHES.values() for check in checks)
}
"""Rank of each check in a target's table: the order of the jobs and of the checks in each."""

_STYLE = (
    "body{font-family:sans-serif;margin:2em}"
    "table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}"
    ".ok{color:#070}.warning{color:#a60}.critical,.unknown{color:#b00}.skipped{color:#666}"
)


def render_landing(
    config: ExporterConfig,
    cached: Sequence[CachedResult],
    *,
    version: str,
    now: float,
    reload_success: bool = True,
) -> str:
    """Return the landing page for ``config`` and the cached results, at ``time.time()`` ``now``."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>smtpdiag exporter</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>smtpdiag exporter</h1>",
        f"<p>Version {_text(version)}. Configuration file {_text(config.path)}.</p>",
    ]
    if not reload_success:
        parts.append(
            "<p><strong>The last reload of the configuration failed; the previous "
            "configuration is in effect. The exporter's log names the problem.</strong></p>"
        )
    parts.append(_links())
    for target in config.targets:
        results = [item for item in cached if item.target == target.name]
        parts.append(_target_section(target, results, now))
    if not config.targets:
        parts.append("<p>No target is configured; the exporter follows log files only.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _links() -> str:
    items = [
        '<li><a href="metrics">/metrics</a>: cached check results and log counters</li>',
        '<li><a href="-/healthy">/-/healthy</a>: the process is running</li>',
        '<li><a href="-/ready">/-/ready</a>: every job has a first result</li>',
    ]
    return "<ul>" + "".join(items) + "</ul>"


def _target_section(target: ExporterTarget, results: Sequence[CachedResult], now: float) -> str:
    name = target.name
    probe_url = "probe?target=" + quote(name, safe="")
    ordered = sorted(results, key=lambda item: _CHECK_ORDER.get(item.result.id, len(_CHECK_ORDER)))
    rows = "".join(_result_row(item, now) for item in ordered)
    if not rows:
        rows = '<tr><td colspan="5">no result yet</td></tr>'
    return (
        f"<h2>Target {_text(name)}</h2>"
        f"<p>Server {_text(_server(target))}, provider {_text(target.provider)}. "
        f'<a href="{html.escape(probe_url, quote=True)}">Probe now</a>.</p>'
        "<table><tr><th>check</th><th>status</th><th>summary</th><th>findings</th>"
        "<th>age</th></tr>"
        f"{rows}</table>"
    )


def _server(target: ExporterTarget) -> str:
    """Return ``host:port``, or the mail domain when the host comes from SRV records."""
    host = target.target.host
    if not host:
        return f"domain {target.target.domain or '?'}"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{target.target.port}"


def _result_row(item: CachedResult, now: float) -> str:
    result = item.result
    status = result.status.value
    codes = dict.fromkeys(
        finding.code for finding in result.findings if finding.severity is not Severity.INFO
    )
    return (
        f"<tr><td>{_text(result.id)}</td>"
        f'<td class="{html.escape(status, quote=True)}">{_text(status)}</td>'
        f"<td>{_text(result.summary)}</td>"
        f"<td>{_text(' '.join(codes))}</td>"
        f"<td>{_text(format_age(now - item.finished_at))}</td></tr>"
    )


def format_age(seconds: float) -> str:
    """Return an age such as ``42 s ago``, ``5 min ago`` or ``3 h ago``."""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"


def _text(value: str) -> str:
    return html.escape(redact(value), quote=True)
