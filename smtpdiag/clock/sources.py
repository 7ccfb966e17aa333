"""Offset estimates from each time source, with the precision each one can give.

Every offset is local clock minus reference clock in seconds: positive when the local clock
is ahead. Every time is compared in UTC, so a server that writes its local time with a zone
offset (``+0700``) shows no skew when its clock is right.

Precision is the half-width of the interval in which the true offset lies:

- NTP: half the round-trip delay, because the server's timestamps fall somewhere within the
  round trip (RFC 5905), and at least 1 ms.
- HTTP ``Date``: 1 s, because the header has one-second resolution, plus half the request
  latency, because the server stamps the reply at an unknown point of it.
- SMTP reply timestamps: their resolution (1 s for RFC 5322 dates, the fraction digits of an
  ISO 8601 time) plus an allowance for network delay and server processing.

Servers truncate times to their resolution, so a time is taken to stand for the middle of its
interval: a ``Date`` of 09:00:00 stands for 09:00:00.5. A synchronised clock then measures
about 0 s instead of +0.5 s. The precision stays at the full resolution, so a server that
rounds instead of truncating is still covered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from smtpdiag.clock.ntp import NtpResult

HTTP_DATE_RESOLUTION_SECONDS = 1.0
"""Resolution of the HTTP ``Date`` header (RFC 9110 §5.6.7)."""

MIN_PRECISION_SECONDS = 0.001
"""Smallest precision reported: NTP offsets are shown to the millisecond."""

ZONE_STEP_SECONDS = 900.0
"""Time zone offsets are multiples of a quarter hour (+05:45, +05:30, +07:00)."""

ZONE_MIN_SECONDS = 1800.0
"""Smallest difference that counts as a time zone error rather than clock skew."""

ZONE_TOLERANCE_SECONDS = 2.0
"""Distance from a multiple of ``ZONE_STEP_SECONDS``, beyond the source's precision, within
which a difference counts as a time zone error."""

SMTP_REPLY_DELAY_SECONDS = 1.0
"""Allowance for the time between a server stamping a reply and this client reading it."""
# NOTE: the allowance is an estimate, not a measurement: a server that spends longer on a
# command (a slow token validation) stamps its reply earlier than the allowance assumes.


class ClockSource(StrEnum):
    """Reference clock that an offset was measured against; the ``clock_source`` fact."""

    NTP = "ntp"
    HTTP_DATE = "http_date"
    SMTP_REPLY = "smtp_reply"


_SOURCE_ORDER = {ClockSource.NTP: 0, ClockSource.HTTP_DATE: 1, ClockSource.SMTP_REPLY: 2}


@dataclass(frozen=True)
class OffsetEstimate:
    """One measurement of the local clock's offset."""

    source: ClockSource
    offset_seconds: float
    """Local clock minus reference clock: positive when the local clock is ahead."""
    precision_seconds: float
    """Half-width of the interval around ``offset_seconds`` that contains the true offset."""
    origin: str
    """The reference in words, e.g. ``NTP server 127.0.0.1:4123``."""


def ntp_estimate(result: NtpResult) -> OffsetEstimate | None:
    """Return the estimate of a successful NTP query, or None for a failed one."""
    if result.offset_seconds is None:
        return None
    precision = max((result.delay_seconds or 0.0) / 2, MIN_PRECISION_SECONDS)
    return OffsetEstimate(
        ClockSource.NTP, result.offset_seconds, precision, f"NTP server {result.server}"
    )


def http_date_estimate(
    server_date_offset_seconds: float, latency_seconds: float, origin: str
) -> OffsetEstimate:
    """Return the estimate from an HTTP ``Date`` header.

    ``server_date_offset_seconds`` is the ``Date`` value minus the local time at which the
    whole reply was read (the token check's fact of that name), so it is negated. The server's
    stamp is taken to be from the middle of the request and the middle of its second.
    """
    centred = server_date_offset_seconds + HTTP_DATE_RESOLUTION_SECONDS / 2
    offset = -centred - latency_seconds / 2
    precision = HTTP_DATE_RESOLUTION_SECONDS + latency_seconds / 2
    return OffsetEstimate(ClockSource.HTTP_DATE, offset, precision, origin)


def smtp_reply_estimate(
    timestamp: str, received_at: datetime, origin: str
) -> OffsetEstimate | None:
    """Return the estimate from a server time in an SMTP reply read at ``received_at``.

    Returns None when ``timestamp`` is not a time with a zone, because a time without one
    cannot be compared in UTC.
    """
    parsed = parse_server_time(timestamp)
    if parsed is None:
        return None
    server_time, resolution = parsed
    # The time is truncated to its resolution, so its interval's middle is half of it later.
    offset = (received_at.astimezone(UTC) - server_time).total_seconds() - resolution / 2
    return OffsetEstimate(
        ClockSource.SMTP_REPLY, offset, resolution + SMTP_REPLY_DELAY_SECONDS, origin
    )


def best_estimate(estimates: Iterable[OffsetEstimate]) -> OffsetEstimate | None:
    """Return the most precise estimate; on a tie NTP comes first, then HTTP, then SMTP."""
    ranked = sorted(
        estimates, key=lambda item: (item.precision_seconds, _SOURCE_ORDER[item.source])
    )
    return ranked[0] if ranked else None


def zone_shift_seconds(estimate: OffsetEstimate) -> float | None:
    """Return the time zone offset that ``estimate`` most likely is, or None for skew.

    A difference counts when it is at least 30 minutes and lies within
    ``ZONE_TOLERANCE_SECONDS`` plus the precision of a multiple of 15 minutes. It comes from
    a time written with a wrong zone (local time labelled ``+0000``, for example), or from a
    clock set in local time as if it were UTC. Returns the multiple in seconds, signed like
    the offset.
    """
    shift = round(estimate.offset_seconds / ZONE_STEP_SECONDS) * ZONE_STEP_SECONDS
    if abs(shift) < ZONE_MIN_SECONDS:
        return None
    tolerance = ZONE_TOLERANCE_SECONDS + estimate.precision_seconds
    if abs(estimate.offset_seconds - shift) > tolerance:
        return None
    return shift


# ISO 8601 with a zone: Exchange writes 2023-09-12T20:59:57.214Z in its bracketed server id.
_ISO_TIME = re.compile(
    r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.(?P<fraction>\d{1,9}))?"
    r"(?:Z|[+-]\d{2}:?\d{2})(?![\w:])",
    re.IGNORECASE,
)

# RFC 5322 §3.3 date-time, as Sendmail and Exim put it in their default greetings:
# "Fri, 04 Dec 2026 10:00:00 +0100". The day name and the seconds are optional; the
# obsolete zone names (GMT, UT, EST … PDT) are accepted, military letters are not.
_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_RFC5322_TIME = re.compile(
    r"(?:\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),\s*)?"
    rf"\b\d{{1,2}}\s+(?:{_MONTHS})\s+\d{{4}}\s+\d{{2}}:\d{{2}}(?P<seconds>:\d{{2}})?"
    r"\s+(?:[+-]\d{4}|UT|GMT|[ECMP][SD]T)\b",
    re.IGNORECASE,
)


def find_server_time(text: str) -> str | None:
    """Return the first time with a zone inside a reply's text, as written, or None.

    ISO 8601 times are searched first, then RFC 5322 dates.
    """
    for pattern in (_ISO_TIME, _RFC5322_TIME):
        match = pattern.search(text)
        if match is not None and parse_server_time(match.group(0)) is not None:
            return match.group(0)
    return None


def parse_server_time(text: str) -> tuple[datetime, float] | None:
    """Parse an ISO 8601 time with a zone or an RFC 5322 date.

    Returns the time in UTC with its resolution in seconds, or None when ``text`` is neither.

    ``-0000`` (RFC 5322: UTC, local zone unknown) counts as UTC.
    """
    text = text.strip()
    iso = _ISO_TIME.fullmatch(text)
    if iso is not None:
        return _parse_iso(text, iso.group("fraction"))
    rfc = _RFC5322_TIME.fullmatch(text)
    if rfc is None:
        return None
    from email.utils import parsedate_to_datetime  # about 3 ms; only for a dated banner

    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    resolution = 1.0 if rfc.group("seconds") else 60.0
    return parsed.astimezone(UTC), resolution


def _parse_iso(text: str, fraction: str | None) -> tuple[datetime, float] | None:
    try:
        parsed = datetime.fromisoformat(text.upper())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    # datetime keeps microseconds, so a finer fraction (.NET writes seven digits) is cut there.
    resolution = 10.0 ** -min(len(fraction), 6) if fraction else 1.0
    return parsed.astimezone(UTC), resolution
