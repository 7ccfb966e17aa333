"""The shipped Prometheus rule file, as ``smtpdiag rules`` prints it.

Each ``runbook_url`` in the file is a path relative to the repository root
(``docs/runbooks/<AlertName>.md``); ``--runbook-base`` turns them into absolute URLs. The
alerts select the scrape job ``smtpdiag``; ``--job`` names another one, such as the job that
scrapes node_exporter when its textfile collector serves the metrics.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from urllib.parse import urljoin, urlsplit

from smtpdiag.errors import UsageError

RULES_RESOURCE = ("rules", "smtpdiag.rules.yml")
"""Location of the shipped rule file inside the ``exporters`` package."""

_RUNBOOK_LINE = re.compile(
    r"""^(?P<key>\s*runbook_url:\s*)(?P<quote>["']?)(?P<path>docs/runbooks/[^"'\s]+)(?P=quote)\s*$"""
)


DEFAULT_JOB = "smtpdiag"
"""Scrape job of the exporter's /metrics that the shipped rules select."""

EXPORTER_DOWN = "SmtpdiagExporterDown"
"""Alert on the exporter's own scrape, which ``--job`` leaves out."""

_JOB_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


def rules_text(runbook_base: str | None = None, job: str | None = None) -> str:
    """Return the shipped Prometheus rule file.

    With ``runbook_base`` (an http or https URL ending in ``/``), every ``runbook_url`` that
    is a relative ``docs/runbooks/...`` path becomes an absolute URL under it. With ``job``,
    every ``job="smtpdiag"`` selector selects that job instead. The file is edited line by
    line, so its comments and layout stay as they are.
    """
    resource = resources.files("exporters").joinpath(*RULES_RESOURCE)
    text = resource.read_text(encoding="utf-8")
    if job is not None:
        text = _select_job(text, job)
    if runbook_base is None:
        return text
    _check_runbook_base(runbook_base)
    lines = [_absolute_runbook(line, runbook_base) for line in text.splitlines(keepends=True)]
    return "".join(lines)


def _check_runbook_base(base: str) -> None:
    parts = urlsplit(base)
    valid = (
        parts.scheme in ("http", "https")
        and bool(parts.netloc)
        and parts.path.endswith("/")
        and not parts.query
        and not parts.fragment
        and base.isprintable()
        and " " not in base
    )
    if not valid:
        raise UsageError(
            f"Invalid --runbook-base {base!r}.",
            "Give an http or https URL that ends in '/', such as "
            "https://git.example.com/ops/smtpdiag/-/blob/main/.",
            value=base,
        )


def _absolute_runbook(line: str, base: str) -> str:
    match = _RUNBOOK_LINE.match(line.rstrip("\r\n"))
    if match is None:
        return line
    ending = line[len(line.rstrip("\r\n")) :]
    url = urljoin(base, match["path"])
    # A JSON string is also a valid double-quoted YAML scalar.
    return f"{match['key']}{json.dumps(url)}{ending}"


def _select_job(text: str, job: str) -> str:
    if _JOB_NAME.fullmatch(job) is None:
        raise UsageError(
            f"Invalid --job {job!r}.",
            "Give the job name as it appears in the Prometheus scrape configuration: letters, "
            "digits, '_', '.', ':' and '-', such as node.",
            value=job,
        )
    selected = text.replace(f'job="{DEFAULT_JOB}"', f'job="{job}"')
    note = (
        f"# Printed by `smtpdiag rules --job {job}`: the alerts below select the job {job}\n"
        f"# in place of {DEFAULT_JOB}, and {EXPORTER_DOWN} is left out: with another job\n"
        "# serving the metrics, that job's own up series tells whether the scrape works.\n"
    )
    return note + _without_alert(selected, EXPORTER_DOWN)


def _without_alert(text: str, name: str) -> str:
    """Return ``text`` without the rule item of alert ``name`` and its comment lines."""
    lines = text.splitlines(keepends=True)
    start = next(
        (index for index, line in enumerate(lines) if line.strip() == f"- alert: {name}"), None
    )
    if start is None:
        return text
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines):
        line = lines[end]
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        end += 1
    # Comment lines right above the item belong to it.
    while start > 0 and lines[start - 1].strip().startswith("#"):
        start -= 1
    return "".join(lines[:start] + lines[end:])
