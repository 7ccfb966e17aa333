"""Central redaction of secrets from every string that leaves the process.

Each ``Secret`` registers its value here when created; renderers, the log filter and error
messages pass their text through ``redact``. Besides the raw value, the registry contains the
forms in which a token travels: its URL-encoded forms and its base64 at each of the three
byte alignments. The alignments let redaction find a token inside any base64 blob, such as
an XOAUTH2 initial response.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, quote_plus

if TYPE_CHECKING:
    from smtpdiag.models import Finding, Report

MASK = "[REDACTED]"

# Shorter values are not registered: masking every "a" or "1" would destroy output and would
# not protect anything worth protecting.
MIN_SECRET_LENGTH = 6


def _base64_forms(value: bytes) -> set[str]:
    """Return the base64 characters that encode ``value`` at each byte offset modulo 3."""
    forms: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + value).decode("ascii")
        first = -(-8 * offset // 6)  # first character whose 6 bits lie inside value
        last = (8 * (offset + len(value))) // 6  # one past the last such character
        form = encoded[first:last]
        if len(form) >= MIN_SECRET_LENGTH:
            forms.add(form)
    return forms


def secret_forms(value: str) -> set[str]:
    """Return every form of ``value`` that redaction masks."""
    raw = value.encode("utf-8")
    forms = {value, quote(value, safe=""), quote_plus(value)}
    forms |= _base64_forms(raw)
    forms |= {form.replace("+", "-").replace("/", "_") for form in _base64_forms(raw)}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


class Redactor:
    """Thread-safe set of secret forms and the function that masks them."""

    def __init__(self) -> None:
        self._forms: list[str] = []
        self._lock = threading.Lock()

    def register(self, value: str) -> None:
        """Add ``value`` and its encoded forms to what ``redact`` masks."""
        if len(value) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            merged = set(self._forms) | secret_forms(value)
            # Longest first, so that a form containing a shorter one is masked whole.
            self._forms = sorted(merged, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """Return ``text`` with every registered secret form replaced by ``MASK``."""
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def clear(self) -> None:
        """Forget every registered secret (for tests)."""
        with self._lock:
            self._forms = []


REDACTOR = Redactor()


def redact(text: str) -> str:
    """Mask every secret known to the process in ``text``."""
    return REDACTOR.redact(text)


class RedactingFilter(logging.Filter):
    """Logging filter that renders each record's message, masks secrets and escapes controls."""

    def filter(self, record: logging.LogRecord) -> bool:
        from smtpdiag.render.text import escape_control

        # Log lines can carry peer bytes; escaping keeps terminal control sequences out.
        record.msg = escape_control(redact(record.getMessage()))
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def redact_data(value: object) -> object:
    """Return ``value`` with secrets masked in every string inside dicts, lists and tuples."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(key)): redact_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(item) for item in value]
    return value


def redact_report(report: Report) -> Report:
    """Return a copy of ``report`` with secrets masked in every text, fact and evidence line."""
    from dataclasses import replace

    checks = [
        replace(
            check,
            summary=redact(check.summary),
            findings=redact_findings(check.findings),
            facts=_redact_mapping(check.facts),
        )
        for check in report.checks
    ]
    return replace(report, target=_redact_mapping(report.target), checks=tuple(checks))


def redact_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Return copies of ``findings`` with secrets masked in every text, fact and evidence line."""
    from dataclasses import replace

    return tuple(
        replace(
            finding,
            title=redact(finding.title),
            cause=redact(finding.cause),
            fix=redact(finding.fix),
            facts=_redact_mapping(finding.facts),
            evidence=tuple(redact(line) for line in finding.evidence),
        )
        for finding in findings
    )


def _redact_mapping(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], redact_data(dict(mapping)))
