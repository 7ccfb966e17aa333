"""Turning log timestamps into POSIX time: zones for zone-less formats, years for year-less ones.

RFC 3164 syslog lines and msmtp's default ``%b %d %H:%M:%S`` carry neither a year nor a zone.
The zone is the one given with ``--timezone`` (default: the machine's local zone). The year is
the current one, unless that puts the time more than a day in the future, in which case it is
the year before: a December line read in January belongs to last year, and no inferred time
lies in the future.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

MONTHS: dict[str, int] = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}
"""Month abbreviations of the C locale, as syslog and ``%b`` write them."""

FUTURE_ALLOWANCE_SECONDS = 86_400.0
"""How far past the current time an inferred year may put a line before the year before is
taken; a day covers zone mistakes and clocks that differ between hosts."""


class TimeReader:
    """Converts the parts of a log timestamp into POSIX time, with a per-minute cache.

    ``zone`` applies to timestamps without their own offset; None means the machine's local
    zone. ``now`` returns the current POSIX time and is read once, when the reader is made,
    so that one run infers one year for one date.
    """

    def __init__(self, zone: tzinfo | None = None, now: Callable[[], float] = time.time) -> None:
        self.zone = zone
        self._now = now()
        self._minutes: dict[tuple[int, int, int, int, int, int], float | None] = {}

    @property
    def now(self) -> float:
        """The current time the reader infers years against."""
        return self._now

    def local(
        self, year: int, month: int, day: int, hour: int, minute: int, second: float
    ) -> float | None:
        """Return the POSIX time of a wall-clock time in the reader's zone; None if invalid."""
        key = (year, month, day, hour, minute, 0)
        start = self._minutes.get(key)
        if start is None and key not in self._minutes:
            start = self._minute_start(year, month, day, hour, minute)
            if len(self._minutes) > 100_000:
                self._minutes.clear()
            self._minutes[key] = start
        if start is None or not 0 <= second < 61:
            return None
        return start + second

    def without_year(
        self, month: int, day: int, hour: int, minute: int, second: float
    ) -> float | None:
        """Return the POSIX time of a year-less timestamp, inferring the year (never future)."""
        year = datetime.fromtimestamp(self._now, UTC).year + 1
        for candidate in (year, year - 1, year - 2):
            stamp = self.local(candidate, month, day, hour, minute, second)
            if stamp is not None and stamp <= self._now + FUTURE_ALLOWANCE_SECONDS:
                return stamp
        # 29 February in a year that has none: try the leap years before.
        for candidate in range(year - 3, year - 9, -1):
            stamp = self.local(candidate, month, day, hour, minute, second)
            if stamp is not None:
                return stamp
        return None

    def iso(self, text: str) -> float | None:
        """Return the POSIX time of an ISO 8601 / RFC 3339 timestamp; None if unreadable.

        A timestamp without an offset is read in the reader's zone.
        """
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            return self.local(
                parsed.year,
                parsed.month,
                parsed.day,
                parsed.hour,
                parsed.minute,
                parsed.second + parsed.microsecond / 1e6,
            )
        return parsed.timestamp()

    def _minute_start(
        self, year: int, month: int, day: int, hour: int, minute: int
    ) -> float | None:
        try:
            # A wall-clock time without a zone; the offset is applied below.
            wall = datetime(year, month, day, hour, minute)
        except ValueError:
            return None
        if self.zone is None:
            return wall.astimezone().timestamp()
        offset = self.zone.utcoffset(wall) or timedelta(0)
        return (wall - offset).replace(tzinfo=UTC).timestamp()
