"""Syslog headers: the timestamp, host and tag in front of a program's message.

Recognised layouts:

* RFC 3164 as syslog daemons write files, ``Mar  3 10:00:00 host tag[pid]: message``, with
  or without a ``<PRI>`` prefix. The day may be space-padded and the host may be missing.
* RFC 5424, ``<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG``, where ``-`` is a nil value.
* rsyslog's RFC 3339 file format, ``2026-12-04T10:00:00.123456+01:00 host tag[pid]: message``.
* OpenWrt ``logread``, ``Mon Oct 14 23:35:55 2024 mail.info tag: message`` (no host).

rsyslog writes control characters in messages as ``#`` and three octal digits. A newline
(``#012``) becomes the two characters ``\\n``, the same separator msmtp writes between reply
lines, so one record stays one line. A tab (``#011``) becomes a tab, and a carriage return
(``#015``) is dropped.
"""

from __future__ import annotations

import re

from smtpdiag.logs.model import SyslogRecord
from smtpdiag.logs.timestamps import MONTHS, TimeReader

_TAG = r"(?P<tag>[\w./-]++)(?:\[(?P<pid>\d+)\])?:(?: |$)(?P<message>.*)"
"""A tag with an optional ``[pid]``, the colon, and the message.

The tag is possessive: ``[`` and ``:`` are not tag characters, so only the whole run of tag
characters can be followed by them, and giving back characters could never find a match.
"""

_RFC3164 = re.compile(
    r"(?:<\d{1,3}>)?(?P<minute>[A-Z][a-z]{2} [ \d]?\d \d\d:\d\d):(?P<second>\d\d)"
    r" (?:(?P<host>\S*[^\s:]) )??" + _TAG,
    re.DOTALL,
)
"""RFC 3164 with an optional ``<PRI>``, matched first because it is the common case."""
_RFC3339 = re.compile(
    r"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[Zz]|[+-]\d\d:?\d\d)?)"
    r" (?:(?P<host>\S*[^\s:]) )??" + _TAG,
    re.DOTALL,
)
_RFC5424 = re.compile(
    r"1 (?P<time>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) \S+"
    r" (?:-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: \ufeff?(?P<message>.*))?$",
    re.DOTALL,
)
_OPENWRT = re.compile(
    r"[A-Z][a-z]{2} (?P<month>[A-Z][a-z]{2}) (?P<day>[ \d]?\d)"
    r" (?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d) (?P<year>\d{4})"
    r" [a-z0-9]+\.[a-z]+ " + _TAG,
    re.DOTALL,
)
_PRI = re.compile(r"<\d{1,3}>")
_WEEKDAYS = frozenset(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))
_ESCAPES = {"#012": "\\n", "#011": "\t", "#015": ""}
_ESCAPE = re.compile("#01[125]")


def split_header(line: str, times: TimeReader) -> SyslogRecord | None:
    """Split a syslog line into header fields and message; None if it has no syslog header."""
    found = _RFC3164.match(line)
    if found is None:
        return _split_other(line, times)

    minute, second, host, tag, pid, message = found.groups()
    timestamp = times.without_year_text(minute, second)
    if timestamp is None and minute[:3] not in MONTHS:
        return None
    if "#01" in message:
        message = unescape(message)
    # Positional arguments, in field order: CPython 3.11 builds the record about a quarter
    # faster than with keywords.
    return SyslogRecord(message, timestamp, host, tag, None if pid is None else int(pid))


def _split_other(line: str, times: TimeReader) -> SyslogRecord | None:
    """Split a line that ``_RFC3164`` does not match: RFC 5424, RFC 3339 or OpenWrt."""
    start = 0
    if line.startswith("<"):
        found = _PRI.match(line)
        if found is None:
            return None
        start = found.end()
        if line.startswith("1 ", start):
            return _split_rfc5424(line, start, times)

    first = line[start : start + 3]
    if first in MONTHS:
        # A year-less time that _RFC3164 rejected, such as msmtp's own log file.
        return None
    if first[:1].isdigit():
        return _split_rfc3339(line, start, times)
    if first in _WEEKDAYS:
        return _split_openwrt(line, start, times)
    return None


def unescape(message: str) -> str:
    """Return ``message`` with rsyslog's ``#012``, ``#011`` and ``#015`` escapes replaced."""
    if "#01" not in message:
        return message
    return _ESCAPE.sub(lambda found: _ESCAPES[found[0]], message)


def _split_rfc3339(line: str, start: int, times: TimeReader) -> SyslogRecord | None:
    if line[start + 10 : start + 11] != "T":
        return None
    found = _RFC3339.match(line, start)
    if found is None:
        return None
    return _record(found, times.iso(found["time"]))


def _split_openwrt(line: str, start: int, times: TimeReader) -> SyslogRecord | None:
    found = _OPENWRT.match(line, start)
    if found is None or found["month"] not in MONTHS:
        return None
    timestamp = times.local(
        int(found["year"]),
        MONTHS[found["month"]],
        int(found["day"]),
        int(found["hour"]),
        int(found["minute"]),
        int(found["second"]),
    )
    return SyslogRecord(
        message=unescape(found["message"]),
        timestamp=timestamp,
        program=found["tag"],
        pid=_pid(found["pid"]),
    )


def _split_rfc5424(line: str, start: int, times: TimeReader) -> SyslogRecord | None:
    found = _RFC5424.match(line, start)
    if found is None:
        return None
    time_text = found["time"]
    return SyslogRecord(
        message=unescape(found["message"] or ""),
        timestamp=None if time_text == "-" else times.iso(time_text),
        hostname=_nil(found["host"]),
        program=_nil(found["app"]),
        pid=_pid(found["procid"]),
    )


def _record(found: re.Match[str], timestamp: float | None) -> SyslogRecord:
    return SyslogRecord(
        message=unescape(found["message"]),
        timestamp=timestamp,
        hostname=found["host"],
        program=found["tag"],
        pid=_pid(found["pid"]),
    )


def _nil(value: str) -> str | None:
    return None if value == "-" else value


def _pid(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None
