"""Entries of ``journalctl -o json``: one JSON object per line.

Field values follow systemd's JSON export format: a string, an array of byte values when the
value is not valid UTF-8, an array of such values when a field repeats, or null when a field
is too large. ``__REALTIME_TIMESTAMP`` is microseconds since the epoch, as a string.
"""

from __future__ import annotations

import json
import re
from typing import Any

from smtpdiag.logs.model import SyslogRecord

MAX_MICROSECONDS = 253_402_300_799_999_999
"""Last microsecond of the year 9999; a later ``__REALTIME_TIMESTAMP`` is read as no time."""

_DEEP_NESTING = re.compile(r"[\[{](?:\s*[\[{]){2}")
"""Three arrays or objects opened in a row: journald's entries never nest that deep."""


def record_from_json(line: str) -> SyslogRecord | None:
    """Return the syslog record of one ``journalctl -o json`` line; None for lines that are
    not a JSON object with a readable MESSAGE field.

    journald's entries are flat objects whose values are strings, arrays of byte values or
    arrays of such values, so a line nested deeper is rejected before the JSON decoder
    runs into Python's recursion limit.
    """
    if _DEEP_NESTING.search(line, 0, 64) is not None:
        return None
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(entry, dict):
        return None
    message = _text(entry.get("MESSAGE"))
    if message is None:
        return None

    return SyslogRecord(
        message=message,
        timestamp=_timestamp(entry.get("__REALTIME_TIMESTAMP")),
        hostname=_text(entry.get("_HOSTNAME")),
        program=_text(entry.get("SYSLOG_IDENTIFIER")) or _text(entry.get("_COMM")),
        pid=_pid(entry.get("SYSLOG_PID")) or _pid(entry.get("_PID")),
    )


def _text(value: Any) -> str | None:
    """Return a field value as text; None when it is missing, null or unreadable.

    A repeated field gives its first value.
    """
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(item, int) and 0 <= item < 256 for item in value):
        return bytes(value).decode("utf-8", errors="replace")
    return _text(value[0]) if not isinstance(value[0], int) else None


def _timestamp(value: Any) -> float | None:
    text = _text(value)
    if text is None or not text.isdigit():
        return None
    microseconds = int(text)
    if microseconds > MAX_MICROSECONDS:
        return None
    return microseconds / 1_000_000


def _pid(value: Any) -> int | None:
    text = _text(value)
    if text is None or not text.isdigit():
        return None
    return int(text)
