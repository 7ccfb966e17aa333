"""msmtp's log record: one line per message that msmtp tried to send.

msmtp writes the same record to its log file (``logfile``, behind a ``logfile_time_format``
timestamp, default ``%b %d %H:%M:%S``), to syslog (``syslog``, tag ``msmtp``) and, when it
cannot write the log file, to standard error after ``<argv0>: log info was:``::

    host=<host>|socket=<path> tls=on|off auth=on|off [user=<user>] from=<from>
    recipients=<r1>,<r2> [mailsize=<n>] [smtpstatus=<code> smtpmsg='<line1>\\n<line2>']
    [errormsg='<text>'] exitcode=EX_<NAME>

msmtp joins the lines of a multi-line reply with the two characters ``\\n`` and replaces
single quotes inside ``smtpmsg`` and ``errormsg`` with ``?``. A value taken from the
configuration keeps any quotes it had there (``user='user@example.com'``).

Counting rule:

* ``auth=on`` makes the record an attempt; ``exitcode=EX_OK`` is a success.
* A failure before or during AUTH is a failure. Its reason is the SMTP reply when the
  knowledge base classifies it to a specific ``auth.*`` kind, else a TLS error text in
  ``errormsg``, else the ``errormsg`` text and the exit code.
* A rejection after AUTH (envelope, recipients, message data) is a success for AUTH unless
  its reply names an AUTH or sender-permission problem (530, Microsoft's SendAsDenied).
* ``auth=off`` is no attempt, except that a ``530`` reply classified as
  ``auth.authentication_required`` is a failure: the server needed AUTH that msmtp was not
  configured to send.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from smtpdiag.logs import classify
from smtpdiag.logs.model import (
    LineResult,
    LogEvent,
    Outcome,
    Side,
    Source,
    SyslogRecord,
)
from smtpdiag.logs.timestamps import MONTHS, TimeReader

DEFAULT_TIME_FORMAT = "%b %d %H:%M:%S"
"""msmtp's default ``logfile_time_format``."""

_KEYS = "host|socket|tls|auth|user|from|recipients|mailsize|smtpstatus|smtpmsg|errormsg|exitcode"
_VALUE_END = rf"(?= (?:{_KEYS})=|\s*$)"
_FIELD = re.compile(rf"(?:^| )({_KEYS})=('.*?'{_VALUE_END}|.*?{_VALUE_END})", re.DOTALL)
_RECORD_START = ("host=", "socket=")
_STDERR_MARK = ": log info was: "
_MECHANISM = re.compile(r"authentication failed \(method ([A-Za-z0-9_-]+)\)")

UNCLASSIFIED = "auth.unclassified"
AUTHENTICATION_REQUIRED = "auth.authentication_required"
CREDENTIALS_REJECTED = "auth.credentials_rejected"
MECHANISM_UNSUPPORTED = "auth.mechanism_unsupported"
CONNECTION_FAILED = "auth_failure_rate.connection_failed"
SUBMISSION_FAILED = "auth_failure_rate.submission_failed"

_NOT_ABOUT_AUTH = frozenset(
    (UNCLASSIFIED, "auth.local_error", "auth.temporary_failure", "auth.line_too_long")
)
"""Reply kinds that, after AUTH succeeded, say nothing about AUTH: a rejected recipient, a
full mailbox, a temporary local problem, an over-long data line."""

# errormsg texts of msmtp 1.8 (src/smtp.c, src/net.c), by the stage of the session they
# belong to. Matching is by substring, in this order.
_AFTER_AUTH_TEXTS = (
    "envelope from address",
    "recipient address",
    "did not accept the mail",
    "delivery to one or more recipients failed",
    "could not send mail to all recipients",
)
# NOTE: "authentication method X needs a password" and "... needs a user name" match
# "authentication method" too, although they are msmtprc errors found before any reply
# (the msmtp_config check names them), so their log reason wrongly blames the server for
# refusing the mechanism.
_MECHANISM_TEXTS = (
    "does not support authentication",
    "authentication method",
    "cannot use a secure authentication method",
)
_CONNECTION_TEXTS = (
    "cannot connect",
    "cannot locate host",
    "network is unreachable",
    "connection refused",
    "timed out",
    "cannot get initial ok message",
    "network read error",
    "network write error",
    "connection reset",
)
_YEAR_DIRECTIVES = ("%Y", "%y", "%G", "%F", "%c", "%x", "%D")
_CONNECTION_EXIT_CODES = frozenset(("EX_IOERR", "EX_TEMPFAIL", "EX_NOHOST"))


def parse_record(record: SyslogRecord) -> LineResult:
    """Count one msmtp record: an AUTH success, an AUTH failure with its reason, or nothing.

    A record without ``exitcode=``, or behind a time prefix that ``split_logfile`` could not
    read, is a parse error.
    """
    if type(record) is _UnreadTimeRecord:
        return LineResult(source=Source.MSMTP, parse_error=True)
    fields = parse_fields(record.message)
    exit_code = fields.get("exitcode")
    if exit_code is None:
        return LineResult(source=Source.MSMTP, parse_error=True)

    host = fields.get("host") or fields.get("socket")
    reply = _reply(fields)
    auth_on = fields.get("auth") == "on"
    if exit_code == "EX_OK":
        if not auth_on:
            return LineResult(source=Source.MSMTP)
        return _result(record, Outcome.SUCCESS, host, None, reply, None)

    errormsg = fields.get("errormsg", "")
    reply_kind = _reply_kind(reply, host)
    if not auth_on:
        if reply_kind != AUTHENTICATION_REQUIRED:
            return LineResult(source=Source.MSMTP)
        return _result(record, Outcome.FAILURE, host, reply_kind, reply, None)

    mechanism = _mechanism(errormsg)
    if _after_auth(errormsg, exit_code) and (reply_kind is None or reply_kind in _NOT_ABOUT_AUTH):
        return _result(record, Outcome.SUCCESS, host, None, reply, mechanism)
    reason = _failure_reason(reply_kind, errormsg, exit_code, has_reply=reply is not None)
    return _result(record, Outcome.FAILURE, host, reason, reply, mechanism)


def parse_fields(message: str) -> dict[str, str]:
    """Return the ``key=value`` fields of a record, quotes around a value removed.

    A value ends where the next known key or the end of the line follows, so a value may
    contain spaces, quotes and ``key=`` text of its own when it is quoted.
    """
    fields: dict[str, str] = {}
    for key, raw in _FIELD.findall(message):
        quoted = len(raw) > 1 and raw[0] == "'" and raw[-1] == "'"
        fields[key] = raw[1:-1] if quoted else raw
    return fields


_NONE_PREFIX = "none "
"""Time prefix that msmtp 1.8.23 writes for ``logfile_time_format none``."""


def split_logfile(line: str, times: TimeReader, time_format: str | None) -> SyslogRecord | None:
    """Split a line of msmtp's own log file into its time and record; None if it is not one.

    ``time_format`` is msmtp's ``logfile_time_format``; None means the record starts the line.
    A format without ``%`` directives gives records without a time: msmtp 1.8.23 has no
    setting that drops the time, and ``logfile_time_format none`` writes the word ``none``.
    """
    if time_format is None:
        # msmtp writes the word "none" for logfile_time_format none.
        message = line[5:] if line.startswith(_NONE_PREFIX) else line
        if message.startswith(_RECORD_START):
            return SyslogRecord(message=message)
        return _record_behind_unread_time(line)
    if time_format == DEFAULT_TIME_FORMAT:
        record = _split_default_time(line, times)
    else:
        record = _split_custom_time(line, times, time_format)
    return record if record is not None else _record_behind_unread_time(line)


@dataclass(frozen=True, slots=True)
class _UnreadTimeRecord(SyslogRecord):
    """A record behind a time prefix that does not match the time format (or NUL bytes)."""


_RECORD_INSIDE = re.compile(r"(?:^|[\s\x00])((?:host|socket)=)")
_EXIT_MARK = " exitcode=EX_"


def _record_behind_unread_time(line: str) -> SyslogRecord | None:
    """Return the record of a line whose prefix cannot be read as a time; None if it has none.

    Such a record is a parse error and is not counted: without its time it could not be
    placed in a window, and a wrong ``--msmtp-time-format`` would otherwise count every old
    record as current.
    """
    if _EXIT_MARK not in line:
        return None
    found = _RECORD_INSIDE.search(line)
    if found is None:
        return None
    return _UnreadTimeRecord(message=line[found.start(1) :])


def parse_stderr(line: str) -> SyslogRecord | None:
    """Return the record in msmtp's ``<argv0>: log info was: <record>`` stderr line, or None.

    msmtp prints it when it cannot write its log file; ``argv0`` is ``msmtp``, ``sendmail``
    or the path it was started by.
    """
    mark = line.find(_STDERR_MARK)
    if mark < 0 or " " in line[:mark]:
        return None
    message = line[mark + len(_STDERR_MARK) :]
    return SyslogRecord(message=message) if message.startswith(_RECORD_START) else None


def _errormsg_reason(errormsg: str, exit_code: str, *, has_reply: bool) -> str:
    """Return the finding code of a failure from msmtp's error text and exit code alone."""
    tls = classify.tls_reason(errormsg) if "TLS" in errormsg or "certificate" in errormsg else None
    if tls is not None:
        return tls

    lowered = errormsg.lower()
    if "authentication failed" in lowered:
        return CREDENTIALS_REJECTED
    if any(text in lowered for text in _MECHANISM_TEXTS):
        return MECHANISM_UNSUPPORTED
    if any(text in lowered for text in _CONNECTION_TEXTS):
        return CONNECTION_FAILED
    if exit_code in _CONNECTION_EXIT_CODES and not has_reply:
        return CONNECTION_FAILED
    return SUBMISSION_FAILED


def _failure_reason(
    reply_kind: str | None, errormsg: str, exit_code: str, *, has_reply: bool
) -> str:
    if reply_kind is not None and reply_kind != UNCLASSIFIED:
        return reply_kind
    reason = _errormsg_reason(errormsg, exit_code, has_reply=has_reply)
    # A reply that the knowledge base does not know is still more specific than a generic
    # "submission failed" or than assuming the credentials were wrong.
    if reply_kind == UNCLASSIFIED and reason in (SUBMISSION_FAILED, CREDENTIALS_REJECTED):
        return UNCLASSIFIED
    return reason


def _after_auth(errormsg: str, exit_code: str) -> bool:
    """Return whether the failure happened after AUTH: envelope, recipients or data."""
    lowered = errormsg.lower()
    if any(text in lowered for text in _AFTER_AUTH_TEXTS):
        return True
    return not errormsg and exit_code == "EX_DATAERR"


@dataclass(frozen=True, slots=True)
class _Reply:
    """The SMTP reply attached to a record; ``text`` joins the lines' texts by spaces."""

    code: int
    enhanced_code: str | None
    text: str


def _reply(fields: dict[str, str]) -> _Reply | None:
    status = fields.get("smtpstatus", "")
    message = fields.get("smtpmsg")
    if message is None:
        return _Reply(int(status), None, "") if status.isdigit() else None

    texts: list[str] = []
    code: int | None = int(status) if status.isdigit() else None
    enhanced_code: str | None = None
    for index, reply_line in enumerate(message.split("\\n")):
        parts = classify.split_reply(reply_line)
        if parts is None:
            texts.append(reply_line.strip())
            continue
        if index == 0:
            code = code if code is not None else parts[0]
            enhanced_code = parts[1]
        texts.append(parts[2])
    if code is None:
        return None
    return _Reply(code, enhanced_code, " ".join(text for text in texts if text))


def _reply_kind(reply: _Reply | None, host: str | None) -> str | None:
    if reply is None:
        return None
    return classify.reply_reason(reply.code, reply.enhanced_code, reply.text, host)


def _mechanism(errormsg: str) -> str | None:
    found = _MECHANISM.search(errormsg) if errormsg else None
    return found[1].upper() if found is not None else None


def _result(
    record: SyslogRecord,
    outcome: Outcome,
    host: str | None,
    reason: str | None,
    reply: _Reply | None,
    mechanism: str | None,
) -> LineResult:
    event = LogEvent(
        source=Source.MSMTP,
        side=Side.CLIENT,
        outcome=outcome,
        timestamp=record.timestamp,
        host=host,
        reason=reason,
        reply_code=reply.code if reply is not None else None,
        enhanced_code=reply.enhanced_code if reply is not None else None,
        reply_text=reply.text if reply is not None else None,
        mechanism=mechanism,
    )
    return LineResult(events=(event,), source=Source.MSMTP)


def _split_default_time(line: str, times: TimeReader) -> SyslogRecord | None:
    # "Dec 05 00:39:28 host=..." (msmtp pads the day with a zero, %d).
    month = MONTHS.get(line[:3])
    if month is None or line[6:7] != " " or line[15:16] != " ":
        return None
    if not line.startswith(_RECORD_START, 16):
        return None
    day, hour, minute, second = line[4:6], line[7:9], line[10:12], line[13:15]
    if not (day.strip().isdigit() and hour.isdigit() and minute.isdigit() and second.isdigit()):
        return None
    timestamp = times.without_year(month, int(day), int(hour), int(minute), int(second))
    return SyslogRecord(message=line[16:], timestamp=timestamp)


def _split_custom_time(line: str, times: TimeReader, time_format: str) -> SyslogRecord | None:
    word_count = _word_count(time_format)
    words = line.split(None, word_count)
    if len(words) <= word_count or not words[word_count].startswith(_RECORD_START):
        return None
    if "%" not in time_format:
        return SyslogRecord(message=words[word_count])
    try:
        parsed = datetime.strptime(" ".join(words[:word_count]), _strptime_format(time_format))
    except ValueError:
        return None
    return SyslogRecord(
        message=words[word_count], timestamp=_posix_time(parsed, times, time_format)
    )


@lru_cache(maxsize=16)
def _word_count(time_format: str) -> int:
    """Return how many space-separated words ``time_format`` produces."""
    sample = datetime(2026, 12, 24, 23, 59, 58, 123456)
    return len(sample.strftime(time_format).split())


@lru_cache(maxsize=16)
def _strptime_format(time_format: str) -> str:
    """Return ``time_format`` with the C shorthands that ``strptime`` lacks spelled out."""
    for short, long in _SHORTHANDS.items():
        time_format = time_format.replace(short, long)
    return time_format


_SHORTHANDS = {"%F": "%Y-%m-%d", "%T": "%H:%M:%S", "%e": "%d", "%h": "%b"}
"""C directives that ``strptime`` lacks, and what reads them (``%d`` takes a space-padded day)."""

READABLE_DIRECTIVES = frozenset("aAbBcdfFGhHIjmMpSTuUVwWxXyYzZ%e")
"""Letters after ``%`` in a ``logfile_time_format`` that smtpdiag can read back."""


def time_format_problem(time_format: str) -> str | None:
    """Return why smtpdiag cannot read times written with ``time_format``; None if it can.

    The format must not be empty, and every ``%`` must start a directive that ``strptime``
    reads (after the shorthands ``%F``, ``%T``, ``%e`` and ``%h`` are spelled out). GNU flags
    and widths (``%-d``, ``%_H``), ``%s`` and ``%k`` are not readable.
    """
    if not time_format.strip():
        return "the format is empty"
    index = time_format.find("%")
    while index >= 0:
        directive = time_format[index + 1 : index + 2]
        if not directive:
            return "it ends with a lone %"
        if directive not in READABLE_DIRECTIVES:
            return f"%{directive} is not a directive smtpdiag can read"
        index = time_format.find("%", index + 2)
    return None


def _posix_time(parsed: datetime, times: TimeReader, time_format: str) -> float | None:
    if parsed.tzinfo is not None:
        return parsed.timestamp()
    second = parsed.second + parsed.microsecond / 1e6
    if not any(directive in time_format for directive in _YEAR_DIRECTIVES):
        return times.without_year(parsed.month, parsed.day, parsed.hour, parsed.minute, second)
    return times.local(parsed.year, parsed.month, parsed.day, parsed.hour, parsed.minute, second)
