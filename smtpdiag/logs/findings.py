"""Findings of a log analysis, built from its counts and options.

A run gets one failure-rate verdict (or a finding that no attempt was counted), one finding per
frequent reason, one per kind of secret found in each file and one per unreadable file.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from smtpdiag.logs.classify import kind_for_reason, split_reply
from smtpdiag.logs.kinds import (
    FAILURES_BELOW_THRESHOLD,
    LOG_UNREADABLE,
    MAIL_BOUNCED,
    NO_ATTEMPTS,
    NO_ATTEMPTS_IN_RANGE,
    THRESHOLD_EXCEEDED,
    TOKEN_IN_LOG,
)
from smtpdiag.logs.model import LogEvent
from smtpdiag.logs.options import AnalysisOptions
from smtpdiag.logs.summary import LeakReport, ReasonCount, WindowCount, iso_time
from smtpdiag.models import Finding, Severity
from smtpdiag.redact import redact
from smtpdiag.spec import FindingKind

TOP_REASONS = 5
"""Reasons that get a finding of their own, the most frequent first."""

SECRET_KIND_NAMES = {
    "xoauth2_response": "an XOAUTH2 client response (user and access token in base64)",
    "oauthbearer_response": "an OAUTHBEARER client response (access token in base64)",
    "bearer_token": "a bearer access token",
    "jwt": "a JWT access or ID token",
    "google_access_token": "a Google access token (ya29.)",
    "refresh_token": "a refresh token",
    "client_secret": "an OAuth2 client secret",
}
"""Plain names of the kinds that ``leaks.find_leaks`` reports."""

MISSING_DETAIL = "(not in the log)"
"""Marker for a value that the log line does not give. Finding texts do not show it:
``omit_missing`` rewords them without the value."""

MISSING_PHRASES: tuple[tuple[str, str], ...] = (
    (" with exit code {exit_code}", ""),
    ("reported error {exit_code}'", "reported error N'"),
    ("accept AUTH {mechanism}", "accept the AUTH mechanism"),
    ("lacks the scope {scope}", "lacks a scope that the server requires"),
    ("requires the scope {scope}", "requires a scope"),
    ("{endpoint} did not answer", "The server did not answer"),
    ("Certificate does not cover {host}", "Certificate does not cover the server's host name"),
    ("certificate that includes {host}", "certificate that includes the server's host name"),
    ("and this one covers only: {names}", "and this one does not"),
    ("Certificate not valid before {not_before}", "Certificate not yet valid"),
    ("Server negotiated {tls_version}", "Server negotiated an outdated TLS version"),
    (" while in the state {state}", ""),
    ("reported '{sasl_text}'", "reported a failure"),
    (" in its {claim} claim", ""),
    (
        "belongs to {token_user}, not to the SMTP user {user}",
        "belongs to another account than the SMTP user",
    ),
    (
        "names {token_user}, and the SMTP login uses {user}",
        "names another account than the SMTP login",
    ),
    ("when {user} is a shared mailbox that {token_user} may use", "for a shared mailbox"),
)
"""Phrases of finding texts around a placeholder, and their wording when a placeholder in
them has no value. ``omit_missing`` leaves every other placeholder without a value out, with
the bracketed group or the ``: value`` ending that it sits in, or with its preposition."""

_EXIT_CODE = re.compile(r"(?:reported error|exit code|exitcode=EX_\w+ \()\s*(\d+)")
# Errors of Dovecot 2.3's oauth2 passdb after "Introspection failed: " (src/auth/db-oauth2.c):
# the login user comes first, then the user that the token check returned.
_DOVECOT_USER_MISMATCH = re.compile(r"Username '(?P<user>.*?)' did not match '(?P<token_user>.*)'")
_DOVECOT_SCOPE = re.compile(r"Token is not valid for scope '(?P<scope>[^']*)'")


def reason_details(event: LogEvent, masked_reply: str | None) -> dict[str, str]:
    """Return title placeholder values that one failure event supplies.

    ``masked_reply`` is the event's reply text with secrets masked.
    """
    details: dict[str, str] = {}
    reply_text = redact(masked_reply) if masked_reply else None
    if event.reply_code is not None:
        from smtpdiag.knowledge.replies import details_for_reply

        # Some parsers keep the codes in the reply text (Postfix), others strip them (msmtp).
        text = reply_text or ""
        split = split_reply(text) if text.startswith(str(event.reply_code)) else None
        if split is not None:
            text = split[2]
        details.update(details_for_reply(event.reply_code, event.enhanced_code, text))
    if event.host:
        details["host"] = event.host
    if event.mechanism:
        details["mechanism"] = event.mechanism
    if reply_text:
        details["detail"] = reply_text
        details["error"] = reply_text
        details["reason"] = reply_text
        details["sasl_text"] = reply_text
        exit_code = _EXIT_CODE.search(reply_text)
        if exit_code is not None:
            details["exit_code"] = exit_code[1]
        details.update(_dovecot_details(reply_text))
    return details


def _dovecot_details(text: str) -> dict[str, str]:
    """Return the users or the scope that an error of Dovecot's oauth2 passdb names."""
    users = _DOVECOT_USER_MISMATCH.search(text)
    if users is not None:
        return {"user": users["user"], "token_user": users["token_user"]}
    scope = _DOVECOT_SCOPE.search(text)
    return {"scope": scope["scope"]} if scope is not None else {}


def omit_missing(kind: FindingKind, details: Mapping[str, Any]) -> FindingKind:
    """Reword the title, cause and fix of ``kind`` so that they leave out every placeholder
    that ``details`` has no value for, as in ``Server rejected the OAuth2 token``."""
    return replace(
        kind,
        title=_omit_fields(kind.title, details),
        cause=_omit_fields(kind.cause, details),
        fix=_omit_fields(kind.fix, details),
    )


def _omit_fields(template: str, details: Mapping[str, Any]) -> str:
    missing = _field_names(template) - details.keys()
    if not missing:
        return template
    for phrase, wording in MISSING_PHRASES:
        if phrase in template and _field_names(phrase) & missing:
            template = template.replace(phrase, wording)
    for name in sorted(missing):
        field = rf"\{{{re.escape(name)}(?:![rsa])?(?::[^{{}}]*)?\}}"
        # A bracketed group: "Server rejected the OAuth2 token (status {status})".
        template = re.sub(rf" ?\([^()]*{field}[^()]*\)", "", template)
        # A sentence's end after a colon: "during AUTH: {reply}", "failed: {error}.".
        template = re.sub(rf": [^.:]*{field}[^.:]*(?=\.|$)", "", template)
        template = re.sub(rf" (?:at|by|for|from|in|on|to|with) {field}", "", template)
        template = re.sub(rf" ?{field}", "", template)
    return template.strip()


def _field_names(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _percent(ratio: float) -> str:
    """Return a ratio as a percentage with at most two decimals: 0.04 -> '4 %'."""
    return f"{ratio * 100:.2f}".rstrip("0").rstrip(".") + " %"


def build_findings(
    options: AnalysisOptions,
    *,
    lines: int,
    attempts: int,
    failures: int,
    failure_ratio: float | None,
    windows: Sequence[WindowCount],
    reasons: Mapping[str, ReasonCount],
    leaks: Sequence[LeakReport],
    read_errors: Sequence[tuple[str, str]],
    outside: tuple[int, float | None] = (0, None),
    bounced: Mapping[str, int] | None = None,
) -> tuple[Finding, ...]:
    """Build the findings of a summary: the rate verdict, bounced mail, the top reasons, leaks
    and read errors.

    ``outside`` is the number of attempts outside ``since`` to ``until`` and the newest one's
    time. ``bounced`` is the number of bounced messages by source name.
    """
    findings: list[Finding | None] = [
        no_attempts_finding(lines, outside[0], outside[1], _period(options))
        if attempts == 0
        else _rate_finding(options, lines, attempts, failures, failure_ratio, windows)
    ]
    findings.append(_bounce_finding(bounced or {}))
    findings.extend(
        _reason_finding(code, counts) for code, counts in list(reasons.items())[:TOP_REASONS]
    )
    findings.extend(_leak_finding(leak) for leak in leaks)
    findings.extend(
        LOG_UNREADABLE.make(
            facts={"path": path, "error": error}, details={"path": path, "error": error}
        )
        for path, error in read_errors
    )
    return tuple(finding for finding in findings if finding is not None)


def _bounce_finding(bounced: Mapping[str, int]) -> Finding | None:
    """Report the messages bounced after failures, counted once across the sources."""
    counted = {name: count for name, count in bounced.items() if count > 0}
    if not counted:
        return None
    largest = max(counted.values())
    messages = f"{largest} message" if largest == 1 else f"{largest} messages"
    sources = ", ".join(f"{name}: {count}" for name, count in counted.items())
    facts = {"bounced": largest, "bounced_by_source": counted}
    return MAIL_BOUNCED.make(facts=facts, details={"messages": messages, "sources": sources})


def lines_text(count: int) -> str:
    """Return ``1 line`` or ``N lines``."""
    return f"{count} line" if count == 1 else f"{count} lines"


def _period(options: AnalysisOptions) -> str:
    """Name the time range of ``--since`` and ``--until``; empty when it is unbounded."""
    since, until = iso_time(options.since), iso_time(options.until)
    if since and until:
        return f"from {since} to {until}"
    if since:
        return f"since {since}"
    return f"before {until}" if until else ""


def no_attempts_finding(
    lines: int, outside: int, latest_outside: float | None, period: str
) -> Finding:
    """Report that no attempt was counted: none in the lines read, or none inside ``period``.

    ``outside`` attempts were read with a time outside ``period`` (``from ... to ...``, or
    ``in the last 15 minutes``); ``latest_outside`` is the newest one's time.
    """
    if not outside:
        return NO_ATTEMPTS.make(facts={"lines": lines}, details={"lines_read": lines_text(lines)})
    newest = iso_time(latest_outside)
    facts = {"lines": lines, "attempts_outside": outside, "latest_attempt": newest}
    details = {
        "lines_read": lines_text(lines).capitalize(),
        "attempts_read": f"{outside} AUTH {'attempt' if outside == 1 else 'attempts'}",
        "period": period,
        "newest": f"; the newest is from {newest}" if newest else "",
    }
    return NO_ATTEMPTS_IN_RANGE.make(facts=facts, details=details)


def _rule_details(options: AnalysisOptions) -> dict[str, Any]:
    return {
        "threshold_percent": _percent(options.threshold),
        "window_minutes": f"{options.window_seconds / 60:g}",
        "min_attempts": options.min_attempts,
    }


def _rate_finding(
    options: AnalysisOptions,
    lines: int,
    attempts: int,
    failures: int,
    failure_ratio: float | None,
    windows: Sequence[WindowCount],
) -> Finding:
    """Judge the failure rate: a window over the threshold, or failures below it."""
    if failure_ratio is None:
        return no_attempts_finding(lines, 0, None, "")
    over = [window for window in windows if window.over_threshold]
    if over:
        worst = max(over, key=lambda window: (window.failure_ratio, window.failures, window.start))
        facts = _window_facts(worst)
        facts["windows_over_threshold"] = [_window_facts(window) for window in over]
        facts["threshold"] = options.threshold
        facts["min_attempts"] = options.min_attempts
        facts["window_seconds"] = options.window_seconds
        details = {**_rule_details(options), **facts, "percent": _percent(worst.failure_ratio)}
        return THRESHOLD_EXCEEDED.make(facts=facts, details=details)
    # NOTE: a run without failures reports this kind too (0 of N failed): the catalog has no
    # kind of its own for it, and the kind is INFO either way.
    facts = {"attempts": attempts, "failures": failures, "failure_ratio": failure_ratio}
    judged = any(window.attempts >= options.min_attempts for window in windows)
    details = {
        **_rule_details(options),
        **facts,
        "percent": _percent(failure_ratio),
        "verdict": threshold_verdict(judged, options),
    }
    return FAILURES_BELOW_THRESHOLD.make(facts=facts, details=details)


def threshold_verdict(judged: bool, options: AnalysisOptions) -> str:
    """Return the ``{verdict}`` end of the ``failures_below_threshold`` title.

    ``judged`` is True when a window had the ``min_attempts`` that the rule needs. Without such
    a window the failures were not judged, whatever their share.
    """
    if judged:
        return ", within the threshold"
    threshold = _percent(options.threshold)
    return f", too few attempts in any window to judge against the {threshold} threshold"


def _window_facts(window: WindowCount) -> dict[str, Any]:
    return {
        "window_start": iso_time(window.start),
        "window_end": iso_time(window.end),
        "attempts": window.attempts,
        "failures": window.failures,
        "failure_ratio": window.failure_ratio,
    }


def _reason_finding(code: str, counts: ReasonCount) -> Finding | None:
    """Explain one frequent reason with its own kind, at INFO because the rate finding judges."""
    kind = kind_for_reason(code)
    if kind is None:
        return None
    details = dict(counts.details)
    kind = omit_missing(kind, details)
    facts: dict[str, Any] = {"log_source": counts.source, "failures": counts.count}
    if counts.reply_code is not None:
        facts["reply_code"] = counts.reply_code
    if counts.enhanced_code is not None:
        facts["enhanced_code"] = counts.enhanced_code
    return kind.make(
        facts=facts, evidence=(counts.example,), details=details, severity=Severity.INFO
    )


def _leak_finding(leak: LeakReport) -> Finding:
    secret_kind = SECRET_KIND_NAMES.get(leak.kind, leak.kind)
    return TOKEN_IN_LOG.make(
        facts={
            "path": leak.path,
            "line_number": leak.line_number,
            "secret_kind": leak.kind,
            "count": leak.count,
        },
        details={"path": leak.path, "line_number": leak.line_number, "secret_kind": secret_kind},
    )
