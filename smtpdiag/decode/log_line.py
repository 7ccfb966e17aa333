"""Explain pasted mail log lines: msmtp, msmtpd, Postfix, Exim, sasl-xoauth2 and journald JSON.

A line is taken for a log line only when its shape is unmistakable. That is a syslog header
(RFC 3164, RFC 3339 or RFC 5424), msmtpd's own ``YYYY-MM-DD HH:MM:SS msmtpd[PID]`` prefix, an
Exim main log line with a message id or an authenticator failure, an msmtp record
(``host=… exitcode=EX_…``) or a ``journalctl -o json`` object. Each such line goes through
the same parsers as ``smtpdiag logs``. A failure gives the finding of its reason, a success
gives facts only, and a secret in a line gives ``secrets.token_in_log`` with the secret
masked in the evidence.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from smtpdiag.decode.result import DecodeResult, InputKind
from smtpdiag.logs.classify import kind_for_reason, split_reply
from smtpdiag.logs.findings import omit_missing, reason_details
from smtpdiag.logs.kinds import TOKEN_IN_LOG
from smtpdiag.logs.leaks import Leak, find_leaks, mask_leaks
from smtpdiag.logs.model import LogEvent, Outcome
from smtpdiag.logs.timestamps import TimeReader
from smtpdiag.models import Finding

if TYPE_CHECKING:
    from smtpdiag.logs.dispatch import LineParser

PASTED = "the pasted text"
"""Path named in ``secrets.token_in_log`` for a secret found in decode's input."""

_PRI = r"(?:<\d{1,3}>)?"
_TAG = r"[\w./@-]+(?:\[\d+\])?: "
_SYSLOG_HEADER = re.compile(
    # RFC 3164 as rsyslog writes it, also with a weekday and year (OpenWrt logread).
    rf"^{_PRI}(?:[A-Z][a-z]{{2}} )?[A-Z][a-z]{{2}} [ \d]\d \d\d:\d\d:\d\d(?: \d{{4}})? \S+ {_TAG}"
    # RFC 3339 timestamps (rsyslog's newer default and journalctl -o short-iso).
    rf"|^{_PRI}\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)? \S+ {_TAG}"
    # RFC 5424: <PRI>1 TIMESTAMP HOST APP-NAME PROCID MSGID.
    r"|^<\d{1,3}>1 \S+ \S+ \S+ \S+ \S+ "
    # msmtpd --log=FILE.
    r"|^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d msmtpd\[\d+\] (?:info|error): "
    # Exim's main log: a message id (1abcDE-000123-AB, longer since Exim 4.97) or an
    # authenticator's failure after the time, optional milliseconds, zone and pid.
    r"|^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{3})?(?: [+-]\d{4})?(?: \[\d+\])? "
    r"(?:[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4} |\S+ authenticator failed )"
)
_MSMTP_RECORD = re.compile(r"(?:^|\s)(?:host|socket)=\S+ .*\bexitcode=EX_[A-Z]+")
_JOURNAL_FIELDS = ('"__REALTIME_TIMESTAMP"', '"SYSLOG_IDENTIFIER"', '"_COMM"')
_BODY = re.compile(r"\{.*\}", re.DOTALL)
_EXIT_CODE = re.compile(r"reported error (\d+)|exitcode=(EX_[A-Z]+)")

_SECRET_KINDS = {
    "xoauth2_response": "an XOAUTH2 client response (contains the access token)",
    "oauthbearer_response": "an OAUTHBEARER client response (contains the access token)",
    "bearer_token": "a Bearer access token",
    "jwt": "a JWT (a signed access or ID token)",
    "google_access_token": "a Google access token (ya29.)",
    "refresh_token": "a refresh token",
    "client_secret": "an OAuth2 client secret",
}
"""Descriptions of ``Leak.kind`` values, for the ``{secret_kind}`` field."""


def is_log_line(line: str) -> bool:
    """Return whether ``line`` has the unmistakable shape of a mail log line."""
    stripped = line.strip()
    if stripped.startswith("{"):
        return '"MESSAGE"' in stripped and any(field in stripped for field in _JOURNAL_FIELDS)
    return bool(_SYSLOG_HEADER.match(stripped) or _MSMTP_RECORD.search(stripped))


def looks_like_log(text: str) -> bool:
    """Return whether any line of ``text`` is clearly a mail log line."""
    return any(is_log_line(line) for line in text.splitlines())


def decode_log_lines(text: str) -> DecodeResult | None:
    """Decode the log lines of ``text``; None when no line yields an event or a secret.

    Lines that are not clearly log lines are ignored, so a log excerpt with a stray line of
    other output still decodes.
    """
    lines = [line.strip() for line in text.splitlines() if is_log_line(line)]
    if not lines:
        return None
    parsers = _parsers()
    events: list[tuple[LogEvent, str]] = []
    sources: list[str] = []
    findings: list[Finding] = []
    for number, line in enumerate(lines, start=1):
        leaks = find_leaks(line)
        masked = mask_leaks(line, leaks) if leaks else line
        # Parse the masked line, so that no reply text or title carries the secret.
        line_events, source = _parse(parsers, masked)
        if source is not None and source not in sources:
            sources.append(source)
        events += [(event, masked) for event in line_events]
        findings += _leak_findings(leaks, number, masked)
    if not events and not findings:
        return None
    findings = [*_event_findings(events), *findings]
    facts = _facts(events, sources)
    return DecodeResult(InputKind.LOG, facts, tuple(_unique(findings)))


def _parsers() -> tuple[LineParser, LineParser]:
    """Return parsers for msmtp's default time format and for records without a time."""
    # The parsers load only for input that looks like a log line.
    from smtpdiag.logs.dispatch import LineParser

    times = TimeReader(None, time.time)
    return LineParser(times), LineParser(times, None)


def _parse(parsers: Sequence[LineParser], line: str) -> tuple[tuple[LogEvent, ...], str | None]:
    """Return the events of ``line`` and its source, trying each msmtp time format."""
    source: str | None = None
    for parser in parsers:
        result = parser.parse(line)
        if result.source is not None:
            source = source or result.source.value
        if result.events:
            return result.events, result.source.value if result.source is not None else source
    return (), source


def _event_findings(events: Iterable[tuple[LogEvent, str]]) -> list[Finding]:
    findings: list[Finding] = []
    for event, masked in events:
        # A cause event explains a failure another line counted (sasl-xoauth2's token refresh).
        if event.outcome is Outcome.SUCCESS or event.reason is None:
            continue
        finding = _body_finding(event, masked) or _reason_finding(event, event.reason, masked)
        if finding is not None:
            findings.append(finding)
    return findings


def _reason_finding(event: LogEvent, reason: str, masked: str) -> Finding | None:
    kind = kind_for_reason(reason)
    if kind is None:
        return None
    details = _details(event, masked)
    return omit_missing(kind, details).make(
        facts=event_facts(event), evidence=(masked,), details=details
    )


def _body_finding(event: LogEvent, masked: str) -> Finding | None:
    """Return the token check's finding for an identity provider's error body in the event.

    The token check's own builder fills the title from the body (the error, the AADSTS code),
    which the generic placeholders cannot.
    """
    text = event.reply_text or ""
    found = _BODY.search(text) if event.reason and event.reason.startswith("token.") else None
    if found is None:
        return None
    from smtpdiag.oauth.model import register_secret_fields
    from smtpdiag.oauth.token_errors import (
        finding_for_error_body,
        parse_error_body,
        provider_of_error_body,
    )

    try:
        data = json.loads(found[0])
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    register_secret_fields(data)
    body = parse_error_body(data)
    if body is None:
        return None
    finding = finding_for_error_body(body, provider_of_error_body(body), evidence=(masked,))
    return replace(finding, facts={**event_facts(event), **finding.facts})


def _details(event: LogEvent, line: str) -> dict[str, str]:
    """Return the placeholder values that a reason's title, cause and fix may name."""
    details = reason_details(event, event.reply_text)
    exit_code = _EXIT_CODE.search(line)
    if exit_code is not None and "exit_code" not in details:
        details["exit_code"] = exit_code.group(1) or exit_code.group(2)
    return details


def _reply_words(event: LogEvent) -> str:
    """Return the reply text without its codes: some formats log the whole reply line."""
    text = event.reply_text or ""
    split = split_reply(text)
    if split is not None and split[0] == event.reply_code:
        return split[2]
    return text


def _leak_findings(leaks: Sequence[Leak], number: int, masked: str) -> list[Finding]:
    findings: list[Finding] = []
    for kind in dict.fromkeys(leak.kind for leak in leaks):
        details = {
            "path": PASTED,
            "line_number": str(number),
            "secret_kind": _SECRET_KINDS.get(kind, kind.replace("_", " ")),
        }
        facts = {"secret_kind": kind, "line_number": number}
        findings.append(TOKEN_IN_LOG.make(facts=facts, evidence=(masked,), details=details))
    return findings


def event_facts(event: LogEvent) -> dict[str, Any]:
    """Return the facts of one log event under the names reports use; unknown parts are left out."""
    facts: dict[str, Any] = {"log_source": event.source.value, "outcome": event.outcome.value}
    values = {
        "reply_code": event.reply_code,
        "enhanced_code": event.enhanced_code,
        "reply_text": _reply_words(event) or None,
        "mechanism": event.mechanism,
        "host": event.host,
        "reason": event.reason,
        "fate": event.fate.value if event.fate is not None else None,
    }
    facts.update({name: value for name, value in values.items() if value is not None})
    if event.timestamp is not None:
        facts["timestamp"] = _iso(event.timestamp)
    return facts


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _facts(events: Sequence[tuple[LogEvent, str]], sources: Sequence[str]) -> dict[str, Any]:
    """Return the facts of the first event with a reason (else the first event), and counts
    of attempts and failures when there are several events."""
    attempts = [event for event, _ in events if event.outcome.is_attempt]
    failures = [event for event in attempts if event.outcome is Outcome.FAILURE]
    explained = [event for event, _ in events if event.reason is not None]
    chosen = explained[0] if explained else None
    if chosen is None and events:
        chosen = events[0][0]
    facts: dict[str, Any] = {"log_source": sources[0] if sources else None}
    if chosen is not None:
        facts = event_facts(chosen)
    if len(events) > 1:
        facts["attempts"] = len(attempts)
        facts["failures"] = len(failures)
        facts["log_sources"] = list(sources)
    return {name: value for name, value in facts.items() if value is not None}


def _unique(findings: Iterable[Finding]) -> list[Finding]:
    """Return the first finding of each code, in order."""
    seen: dict[str, Finding] = {}
    for finding in findings:
        seen.setdefault(finding.code, finding)
    return list(seen.values())
