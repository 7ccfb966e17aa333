"""Read the times that error messages and log lines print: ISO 8601 times, Unix times, Java's
``Date.toString()`` form and timezone abbreviations.

A time with a zone becomes an aware ``datetime``, a time without one a naive ``datetime``.
A zone abbreviation is converted only when it names one UTC offset; an ambiguous or unknown
abbreviation is reported as such, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

# Offsets in minutes east of UTC. RFC 5322 section 4.3 defines UT, GMT and the US zones
# EST/EDT, MST/MDT and PST/PDT; the others are the abbreviations of the IANA tz database,
# which Java's Date.toString() prints too (WIB, Western Indonesia Time, is UTC+7).
ZONE_OFFSETS: dict[str, int] = {
    "UT": 0,
    "UTC": 0,
    "GMT": 0,
    "Z": 0,
    "WET": 0,
    "WEST": 60,
    "CET": 60,
    "CEST": 120,
    "EET": 120,
    "EEST": 180,
    "MSK": 180,
    "WAT": 60,
    "CAT": 120,
    "SAST": 120,
    "EAT": 180,
    "PKT": 300,
    "ICT": 420,
    "WIB": 420,
    "WITA": 480,
    "WIT": 540,
    "HKT": 480,
    "SGT": 480,
    "AWST": 480,
    "JST": 540,
    "KST": 540,
    "ACST": 570,
    "ACDT": 630,
    "AEST": 600,
    "AEDT": 660,
    "NZST": 720,
    "NZDT": 780,
    "HST": -600,
    "AKST": -540,
    "AKDT": -480,
    "PST": -480,
    "PDT": -420,
    "MST": -420,
    "MDT": -360,
    "EST": -300,
    "EDT": -240,
    "ADT": -180,
    "NST": -210,
    "NDT": -150,
}

AMBIGUOUS_ZONES: dict[str, str] = {
    "CST": "US Central (UTC-6), China (UTC+8) or Cuba (UTC-5)",
    "CDT": "US Central daylight (UTC-5) or Cuba daylight (UTC-4)",
    "IST": "India (UTC+5:30), Israel (UTC+2) or Irish summer time (UTC+1)",
    "BST": "British summer time (UTC+1) or Bangladesh (UTC+6)",
    "AST": "Atlantic (UTC-4) or Arabia (UTC+3)",
}
"""Abbreviations that stand for several UTC offsets, with the offsets they may mean."""

_ISO = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2})(?:[.,](?P<fraction>\d+))?"
    r"(?:\s?(?P<zone>Z|[+-]\d{2}:?\d{2}|UTC|GMT))?(?![\d:])"
)
_JAVA_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<month>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) "
    r"(?P<time>\d{2}:\d{2}:\d{2}) (?P<zone>[A-Z]{1,5}(?:[+-]\d{1,2}(?::?\d{2})?)?) "
    r"(?P<year>\d{4})"
)
_OFFSET_ZONE = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?$")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Zone:
    """A timezone as a message names it, and its UTC offset when the name gives exactly one."""

    name: str
    offset: timedelta | None
    note: str = ""
    """Why the offset is unknown: an ambiguous or unknown abbreviation."""

    @property
    def offset_text(self) -> str | None:
        """Offset in ``+07:00`` form, or None when unknown."""
        if self.offset is None:
            return None
        return offset_text(int(self.offset.total_seconds()) // 60)


@dataclass(frozen=True)
class ParsedTime:
    """A time read from text: the text as written, the time and the zone it was written in."""

    text: str
    value: datetime
    """Aware when ``zone`` has a known offset, otherwise naive (wall-clock time in the zone)."""
    zone: Zone | None
    """None when the text gives no zone at all."""


def zone_of(name: str) -> Zone:
    """Return the zone of an abbreviation or of an offset such as ``+0700`` or ``GMT+07:00``."""
    upper = name.upper()
    if upper in ZONE_OFFSETS:
        return Zone(name, timedelta(minutes=ZONE_OFFSETS[upper]))
    offset = _OFFSET_ZONE.match(upper)
    if offset is not None:
        hours, minutes = int(offset[2]), int(offset[3] or 0)
        if hours <= 14 and minutes < 60:
            sign = -1 if offset[1] == "-" else 1
            return Zone(name, sign * timedelta(hours=hours, minutes=minutes))
    if upper in AMBIGUOUS_ZONES:
        return Zone(name, None, f"{name} is ambiguous: it may be {AMBIGUOUS_ZONES[upper]}")
    return Zone(name, None, f"{name} is not a timezone abbreviation smtpdiag knows")


def parse_iso(text: str) -> ParsedTime | None:
    """Parse the first ISO 8601 date and time in ``text``, with up to 7 fraction digits as
    Microsoft prints them; None when there is none or it is not a valid date."""
    match = _ISO.search(text)
    if match is None:
        return None
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    try:
        value = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}")
    except ValueError:
        return None
    zone = zone_of(match["zone"]) if match["zone"] else None
    return _localise(match[0], value, zone)


def parse_java_date(text: str) -> ParsedTime | None:
    """Parse the first time in Java's ``Date.toString()`` form, ``Tue Apr 17 11:32:42 WIB 2018``."""
    match = _JAVA_DATE.search(text)
    if match is None or match["month"] not in _MONTHS:
        return None
    month = _MONTHS.index(match["month"]) + 1
    try:
        value = datetime.fromisoformat(
            f"{match['year']}-{month:02d}-{int(match['day']):02d}T{match['time']}"
        )
    except ValueError:
        return None
    return _localise(match[0], value, zone_of(match["zone"]))


def parse_unix_time(text: str) -> ParsedTime | None:
    """Parse a Unix time in seconds, as Google's libraries print ``iat``; None when not one."""
    if not text.isdigit() or len(text) > 11:
        return None
    return ParsedTime(text, datetime.fromtimestamp(int(text), UTC), zone_of("UTC"))


def parse_time(text: str) -> ParsedTime | None:
    """Parse a time in any of the supported forms."""
    return parse_unix_time(text.strip()) or parse_iso(text) or parse_java_date(text)


def _localise(text: str, value: datetime, zone: Zone | None) -> ParsedTime:
    if zone is not None and zone.offset is not None:
        value = value.replace(tzinfo=timezone(zone.offset))
    return ParsedTime(text, value, zone)


def to_utc_text(time: ParsedTime) -> str | None:
    """Return the time in UTC as ``2018-04-17T04:32:42Z``, or None when its zone is unknown."""
    if time.value.tzinfo is None:
        return None
    utc = time.value.astimezone(UTC)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds").replace(
        "+00:00", "Z"
    )


def seconds_between(earlier: ParsedTime, later: ParsedTime) -> float | None:
    """Return ``later - earlier`` in seconds, or None when the two cannot be compared.

    Two aware times are compared in UTC, so a timezone offset is never a difference. Two
    naive times are compared as wall-clock times, which assumes that both are in the same
    zone; the caller says so. One aware and one naive time are not compared.
    """
    if (earlier.value.tzinfo is None) != (later.value.tzinfo is None):
        return None
    return (later.value - earlier.value).total_seconds()


def offset_text(minutes: int) -> str:
    """Return a UTC offset in minutes east of UTC in ``+05:30`` form."""
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def round_gap(seconds: float, first: ParsedTime, second: ParsedTime) -> int | float:
    """Round a difference between two times to whole seconds, or to 0.001 s when both times
    carry a fraction of a second (a fraction of zeros, as Microsoft prints, counts as none)."""
    if first.value.microsecond and second.value.microsecond:
        return round(seconds, 3) + 0.0  # adding 0.0 turns -0.0 into 0.0
    return round(seconds)


def format_duration(seconds: float) -> str:
    """Return a positive duration in words: ``23 seconds``, ``2.488 seconds``, ``55 minutes``,
    ``3 hours 32 minutes``; seconds are left out from 2 hours on."""
    whole = int(seconds)
    fraction = seconds - whole
    if whole < 120:
        return f"{_seconds_text(seconds)} second{'' if seconds == 1 else 's'}"
    minutes, rest = divmod(whole, 60)
    if minutes < 120:
        if rest == 0 and fraction == 0:
            return f"{minutes} minutes"
        return f"{minutes} minutes {_seconds_text(rest + fraction)} seconds"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} hours" + (f" {minutes} minutes" if minutes else "")


def _seconds_text(seconds: float) -> str:
    """Write seconds with up to 3 decimals and never in scientific notation."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def wall_clock_seconds_between(earlier: ParsedTime, later: ParsedTime) -> float:
    """Return ``later - earlier`` in seconds as wall-clock times, ignoring both zones."""
    return (later.value.replace(tzinfo=None) - earlier.value.replace(tzinfo=None)).total_seconds()
