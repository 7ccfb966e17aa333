"""Lines of sasl-xoauth2, the Cyrus SASL plugin that gives Postfix XOAUTH2.

The plugin buffers trace lines and writes them to syslog (ident ``sasl-xoauth2``, no pid,
LOG_WARNING) only when a login fails, as ``src/log.cc`` of sasl-xoauth2 does. Without
``log_full_trace_on_failure`` one failure gives::

    sasl-xoauth2: auth failed: 2024-03-01 10:00:00: TokenStore::Refresh: request failed
    sasl-xoauth2: set log_full_trace_on_failure to see full 7 line(s) of tracing.

With it, a bare ``auth failed:`` line is followed by every trace line, indented::

    sasl-xoauth2: auth failed:
    sasl-xoauth2:   2024-03-01 10:00:00: TokenStore::Refresh: code=400, response={"error": ...}
    sasl-xoauth2:   2024-03-01 10:00:00: TokenStore::Refresh: request failed

The same texts appear inside Postfix's own log as ``postfix/smtp[pid]: sasl-xoauth2: ...``.

Counting rule: these lines are never AUTH attempts. The plugin's failure always ends in
Postfix's own client line for the same login (``SASL authentication failed; cannot
authenticate to server ...: generic failure``, standalone or in the delivery status), and
that line is the one attempt. Each failure report gives one ``Outcome.CAUSE`` event that
carries the specific reason, so the totals stay one failure per failed login. The event comes
from the line that states why the login failed. Without full trace that is the summary
``auth failed: <line>``. With full trace it is the trace line that ends the token refresh:
the endpoint's error body, an HTTP error, or a missing or unreadable token file. These events
are not joined with Postfix's line: the plugin logs no pid, and it writes its lines when the
SASL connection is disposed of, which can be after Postfix has logged the failure.

The trace lines ``TokenStore::Refresh: request: ...`` (client secret and refresh token),
``TokenStore::Read: refresh=..., access=...`` (both tokens), ``Client::SendToken: response:``
(the XOAUTH2 response with the access token) and a ``code=200`` response (a new access token)
give no event, so no secret reaches ``reply_text``. The plugin cuts each trace line at 1023
bytes, so a long error body may be unreadable; its reason is then
``auth_failure_rate.token_refresh_failed``.
"""

from __future__ import annotations

import re

from smtpdiag.logs.classify import token_body_reason
from smtpdiag.logs.model import LineResult, LogEvent, Outcome, Side, Source, SyslogRecord

PREFIX = "sasl-xoauth2: "
"""Prefix of the plugin's lines inside Postfix's log."""

_RESULT = LineResult(source=Source.POSTFIX)
_TRACE_TIME = re.compile(r"\s*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: ")
_RESPONSE = re.compile(r"TokenStore::Refresh: code=(?P<http_status>\d+), response=")

_SECRET_LINES = (
    "TokenStore::Refresh: request:",
    "TokenStore::Read: refresh=",
    "Client::SendToken: response:",
)
_REFRESH_ENDS = (
    "TokenStore::Refresh: http error:",
    "TokenStore::Refresh: exceeded maximum attempts",
    "TokenStore::Refresh: response doesn't contain access_token",
    "TokenStore::Refresh: invalid expiry",
    "TokenStore::Refresh: exception=",
)
_LOCAL_ENDS = (
    "TokenStore::Read: failed to open file",
    "TokenStore::Read: missing refresh_token",
    "TokenStore::Read: exception=",
    "TokenStore::Write: ",
    "Exception during init",
)


def parse(record: SyslogRecord) -> LineResult:
    """Return the event of one sasl-xoauth2 line, from its own ident or inside Postfix's log."""
    message = record.message
    if message.startswith(PREFIX):
        message = message[len(PREFIX) :]

    # rsyslog escapes control characters as "#" and three octal digits: the trailing newline
    # of each syslog() call and the newlines of a pretty-printed response body. The syslog
    # header reader may already have turned "#012" into the two characters "\n".
    if "#01" in message or "\\" in message:
        message = _unescape(message)
    message = message.rstrip()
    if message.startswith("auth failed:"):
        summary = message[len("auth failed:") :].strip()
        if not summary:
            return _RESULT
        return _event(_without_time(summary), record.timestamp, summary_line=True)
    return _event(_without_time(message), record.timestamp, summary_line=False)


def _unescape(message: str) -> str:
    for escape in ("#012", "#011", "\\n", "\\t"):
        message = message.replace(escape, " ")
    return message


def _without_time(text: str) -> str:
    found = _TRACE_TIME.match(text)
    return text[found.end() :] if found is not None else text.strip()


def _event(text: str, timestamp: float | None, *, summary_line: bool) -> LineResult:
    """Return the event of a trace text that states why the login failed."""
    if text.startswith(_SECRET_LINES):
        return _RESULT
    reason = _reason(text, summary_line=summary_line)
    if reason is None:
        return _RESULT
    event = LogEvent(
        Source.POSTFIX,
        Side.CLIENT,
        Outcome.CAUSE,
        timestamp,
        reason=reason,
        reply_text=text,
        mechanism="XOAUTH2",
    )
    return LineResult((event,), Source.POSTFIX)


def _reason(text: str, *, summary_line: bool) -> str | None:
    """Return the finding code for a trace text; None for lines that end nothing."""
    response = _RESPONSE.match(text)
    if response is not None:
        if response["http_status"] == "200":
            return None
        return token_body_reason(text) or "auth_failure_rate.token_refresh_failed"
    if text.startswith(_REFRESH_ENDS):
        return "auth_failure_rate.token_refresh_failed"
    if text.startswith(_LOCAL_ENDS):
        return "auth_failure_rate.local_sasl_failure"
    if summary_line:
        # The summary is the last trace line, whatever it is. With full trace, "request
        # failed" only repeats the response line before it, so it counts in summaries only.
        if text.startswith("TokenStore::"):
            return "auth_failure_rate.token_refresh_failed"
        return "auth_failure_rate.local_sasl_failure"
    return None
