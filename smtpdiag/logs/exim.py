"""Exim's AUTH lines, from its own mainlog or from syslog (ident ``exim`` or ``exim4``).

Shapes as ``smtp_in.c`` and ``transports/smtp.c`` of Exim 4.9x write them::

    plain authenticator failed for (helo) [192.0.2.7]: 535 Incorrect authentication data (set_id=u)
    1rKXyz-000abc-12 <= a@example.com H=(helo) [192.0.2.7] P=esmtpsa A=plain:u S=912
    smtp_relay_login authenticator failed H=relay.example.net [192.0.2.16] 535 Error: ...
    1rKXyz-000abc-12 == b@example.net R=smarthost T=remote_smtp defer (-42): authentication ...
    1rKXyz-000abc-12 => b@example.net R=smarthost T=remote_smtp H=relay.example.net [192.0.2.16]
        A=smtp_relay_login

Server side: an ``authenticator failed for`` line is one failure; an arrival (``<=``) with an
``A=`` field is one success. Client side: an ``authenticator failed H=`` line is one failure,
and the following ``defer (-42)`` line only records that the message stays queued
(``Outcome.DELIVERY``, fate deferred). A delivery (``=>``) with ``A=`` is one success; ``->``
lines of further recipients of the same delivery are not counted.
"""

from __future__ import annotations

import calendar
import re
from functools import lru_cache

from smtpdiag.logs.classify import reply_reason, split_reply
from smtpdiag.logs.model import (
    Fate,
    LineResult,
    LogEvent,
    Outcome,
    Side,
    Source,
    SyslogRecord,
)
from smtpdiag.logs.timestamps import TimeReader

_RESULT = LineResult(source=Source.EXIM)

_MAINLOG = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d\d)-(?P<day>\d\d) (?P<hour>\d\d):(?P<minute>\d\d):"
    r"(?P<second>\d\d)(?P<fraction>\.\d{1,6})?"
    r"(?: (?P<sign>[+-])(?P<offset_hours>\d\d)(?P<offset_minutes>\d\d))?"
    r"(?: \[(?P<pid>\d+)\])? (?P<rest>\S.*)"
)
# Message ids: 4.96 and older 6-6-2 characters, 4.97 and newer 6-11-4.
_SYSLOG_TIMESTAMP = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [+-]\d{4})?(?: \[\d+\])? "
)
"""Exim's own time at the start of a syslog message: Exim keeps it unless syslog_timestamp is
false, and the syslog header's time is used instead."""
_MESSAGE_ID = re.compile(r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4} ")
_SERVER_FAILURE = re.compile(
    r"(?P<authenticator>\S+) authenticator failed for (?P<peer>.*?): "
    r"(?P<reply>[2-5]\d\d\b.*?)(?: \(set_id=(?P<set_id>[^)]*)\))?(?:: \d+ Time\(s\))?$"
)
_CLIENT_FAILURE = re.compile(
    r"(?P<authenticator>\S+) authenticator failed H=(?P<host>\S+) \[(?P<address>[^\]]+)\] "
    r"(?P<reply>.*)$"
)
# The client address is the first bracketed address after a space: "(helo) [192.0.2.7]",
# not the HELO name in "([192.0.2.7])" or the local address in "I=[192.0.2.1]:25".
_ADDRESS = re.compile(r"(?:^|\s)\[(?P<address>[0-9A-Fa-f:.]+)\]")
_HOST = re.compile(r" H=(?P<host>\S+)(?: \([^)]*\))? \[(?P<address>[^\]]+)\]")
_HELO_ONLY_HOST = re.compile(r" H=\((?P<helo>[^)]*)\) \[(?P<address>[^\]]+)\]")
_AUTHENTICATOR = re.compile(r" A=(?P<authenticator>[^\s:]+)")
_SMTP_ERROR = re.compile(
    r"SMTP error from remote mail server after (?P<command>.+?): (?P<reply>[2-5]\d\d[ -].*)$"
)
_MECHANISMS = ("XOAUTH2", "OAUTHBEARER", "PLAIN", "LOGIN", "CRAM-MD5")


@lru_cache(maxsize=64)
def is_exim(program: str) -> bool:
    """Return whether a syslog program name is Exim (``exim``, ``exim4``)."""
    return program in ("exim", "exim4")


def split_mainlog(line: str, times: TimeReader) -> SyslogRecord | None:
    """Split a line of Exim's own mainlog into time, pid and message; None for other lines
    and for impossible dates.

    The time is ``YYYY-MM-DD HH:MM:SS`` with optional fractional seconds and, with
    ``log_timezone``, an offset; ``[pid]`` follows with ``log_selector = +pid``. msmtpd's log
    lines start with the same time and are not Exim's.
    """
    if len(line) < 21 or line[4] != "-" or line[10] != " ":
        return None
    found = _MAINLOG.match(line)
    if found is None:
        return None
    rest = found["rest"]
    if rest.startswith("msmtpd["):
        return None
    timestamp = _timestamp(found, times)
    if timestamp is None:
        return None
    pid = found["pid"]
    return SyslogRecord(
        message=rest,
        timestamp=timestamp,
        program="exim",
        pid=int(pid) if pid is not None else None,
    )


def _timestamp(found: re.Match[str], times: TimeReader) -> float | None:
    second = int(found["second"]) + (float(found["fraction"]) if found["fraction"] else 0.0)
    parts = (
        int(found["year"]),
        int(found["month"]),
        int(found["day"]),
        int(found["hour"]),
        int(found["minute"]),
    )
    if found["sign"] is None:
        return times.local(*parts, second)
    offset = int(found["offset_hours"]) * 3600 + int(found["offset_minutes"]) * 60
    if found["sign"] == "-":
        offset = -offset
    try:
        return calendar.timegm((*parts, 0, 0, 0, 0)) + second - offset
    except (ValueError, OverflowError):
        return None


def parse_message(record: SyslogRecord) -> LineResult:
    """Return the events of one Exim log message (mainlog rest or syslog message)."""
    message = record.message
    if message[:1].isdigit():
        stamp = _SYSLOG_TIMESTAMP.match(message)
        if stamp is not None:
            message = message[stamp.end() :]
    found = _MESSAGE_ID.match(message)
    if found is not None:
        message = message[found.end() :]

    if " authenticator failed " in message:
        return _authenticator_failure(message, record.timestamp)
    marker = message[:3]
    if marker == "<= ":
        return _arrival(message, record.timestamp)
    if marker == "=> ":
        return _delivery(message, record.timestamp)
    if marker in ("== ", "** "):
        return _delivery_failure(message, record.timestamp, marker)
    return _RESULT


def _authenticator_failure(message: str, timestamp: float | None) -> LineResult:
    server = _SERVER_FAILURE.match(message)
    if server is not None:
        peer = _ADDRESS.search(server["peer"])
        host = peer["address"] if peer is not None else None
        event = _failure(
            Side.SERVER, server["reply"], host, None, server["authenticator"], timestamp
        )
        return LineResult((event,), Source.EXIM)
    client = _CLIENT_FAILURE.match(message)
    if client is not None:
        event = _failure(
            Side.CLIENT, client["reply"], client["host"], None, client["authenticator"], timestamp
        )
        return LineResult((event,), Source.EXIM)
    return LineResult(source=Source.EXIM, parse_error=True)


def _arrival(message: str, timestamp: float | None) -> LineResult:
    """Return the server-side success of an arrival that names its authenticator."""
    authenticator = _AUTHENTICATOR.search(message)
    if authenticator is None:
        return _RESULT
    host = _HOST.search(message) or _HELO_ONLY_HOST.search(message)
    event = LogEvent(
        Source.EXIM,
        Side.SERVER,
        Outcome.SUCCESS,
        timestamp,
        host["address"] if host is not None else None,
        mechanism=_mechanism(authenticator["authenticator"]),
    )
    return LineResult((event,), Source.EXIM)


def _delivery(message: str, timestamp: float | None) -> LineResult:
    """Return the client-side success of a delivery that names its authenticator."""
    authenticator = _AUTHENTICATOR.search(message)
    if authenticator is None:
        return _RESULT
    host = _HOST.search(message)
    event = LogEvent(
        Source.EXIM,
        Side.CLIENT,
        Outcome.SUCCESS,
        timestamp,
        host["host"] if host is not None else None,
        mechanism=_mechanism(authenticator["authenticator"]),
        fate=Fate.SENT,
    )
    return LineResult((event,), Source.EXIM)


def _delivery_failure(message: str, timestamp: float | None, marker: str) -> LineResult:
    """Return the event of a deferral (``==``) or bounce (``**``) that concerns AUTH."""
    fate = Fate.BOUNCED if marker == "** " else Fate.DEFERRED
    if "defer (-42)" in message:
        # The authenticator failure logged just before is the counted attempt.
        event = LogEvent(Source.EXIM, Side.CLIENT, Outcome.DELIVERY, timestamp, fate=fate)
        return LineResult((event,), Source.EXIM)

    error = _SMTP_ERROR.search(message)
    if error is None:
        return _RESULT
    command = error["command"].removeprefix("pipelined ")
    host = _HOST.search(message)
    host_name = host["host"] if host is not None else None
    event = _failure(Side.CLIENT, error["reply"], host_name, fate, None, timestamp)
    if not command.startswith("AUTH") and event.reason in ("auth.unclassified", None):
        # A rejection after MAIL FROM, RCPT or DATA that is not about AUTH.
        return _RESULT
    return LineResult((event,), Source.EXIM)


def _failure(
    side: Side,
    reply: str,
    host: str | None,
    fate: Fate | None,
    authenticator: str | None,
    timestamp: float | None,
) -> LogEvent:
    """Return a failure event classified by the SMTP reply it carries."""
    reply = _join_reply(reply)
    parts = split_reply(reply)
    code, enhanced, text = parts if parts is not None else (None, None, reply)
    reason = None
    if code is not None:
        reason = reply_reason(code, enhanced, text, host)
    return LogEvent(
        Source.EXIM,
        side,
        Outcome.FAILURE,
        timestamp,
        host,
        reason=reason or "auth.unclassified",
        reply_code=code,
        enhanced_code=enhanced,
        reply_text=reply,
        mechanism=_mechanism(authenticator) if authenticator else None,
        fate=fate,
    )


def _join_reply(reply: str) -> str:
    """Join a multi-line reply that Exim wrote with literal ``\\n`` into one line.

    ``530-5.5.1 Authentication Required.\\n530 5.5.1 Learn more`` becomes
    ``530 5.5.1 Authentication Required. Learn more``.
    """
    if "\\n" not in reply:
        return reply
    lines = reply.split("\\n")
    first = lines[0]
    head = split_reply(first)
    if head is None:
        return " ".join(lines)
    code, enhanced, text = head
    texts = [text]
    for line in lines[1:]:
        parts = split_reply(line)
        texts.append(parts[2] if parts is not None else line.strip())
    prefix = f"{code} {enhanced}" if enhanced else str(code)
    return " ".join((prefix, *(part for part in texts if part)))


def _mechanism(authenticator: str) -> str | None:
    """Return the SASL mechanism in an authenticator's name, such as ``XOAUTH2`` for
    ``xoauth2_client``, or None when the name contains none. Exim's names are free-form."""
    upper = authenticator.upper().replace("_", "-")
    for mechanism in _MECHANISMS:
        if mechanism in upper:
            return mechanism
    return None
