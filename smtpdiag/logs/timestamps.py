"""Turning log timestamps into POSIX time: zones for zone-less formats, years for year-less ones.

RFC 3164 syslog lines and msmtp's default ``%b %d %H:%M:%S`` carry neither a year nor a zone.
The zone is the one given with ``--timezone`` (default: the machine's local zone). The year is
the current one, unless that puts the time more than a day in the future. Then it is the year
before, so a December line read in January belongs to last year.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TypeVar

MONTHS: dict[str, int] = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}
"""Month abbreviations of the C locale, as syslog and ``%b`` write them."""

FUTURE_ALLOWANCE_SECONDS = 86_400.0
"""Seconds past the current time that an inferred year may put a line at. A later time takes
the year before. One day covers zone mistakes and clocks that differ between hosts."""

_CACHE_SIZE = 100_000
"""Maximum number of minutes in each cache of minute starts; a full cache is emptied."""

_Key = TypeVar("_Key")


class TimeReader:
    """Converts the parts of a log timestamp into POSIX time, with a per-minute cache.

    ``zone`` applies to timestamps without their own offset; None means the machine's local
    zone. ``now`` returns the current POSIX time and is read once, when the reader is made,
    so that one run infers one year for one date.
    """

    def __init__(self, zone: tzinfo | None = None, now: Callable[[], float] = time.time) -> None:
        self.zone = zone
        self._now = now()
        self._limit = self._now + FUTURE_ALLOWANCE_SECONDS
        self._year = datetime.fromtimestamp(self._now, UTC).year + 1
        self._minutes: dict[tuple[int, int, int, int, int, int], float | None] = {}
        self._year_less: dict[tuple[int, int, int, int], float] = {}
        self._year_less_texts: dict[str, float] = {}

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
            if len(self._minutes) > _CACHE_SIZE:
                self._minutes.clear()
            self._minutes[key] = start
        if start is None or not 0 <= second < 61:
            return None
        return start + second

    def without_year(
        self, month: int, day: int, hour: int, minute: int, second: float
    ) -> float | None:
        """Return the POSIX time of a year-less timestamp, inferring the year (never future)."""
        key = (month, day, hour, minute)
        start = self._year_less.get(key)
        if start is None:
            start = self._year_less_start(month, day, hour, minute)
            if start is None:
                return self._infer_year(month, day, hour, minute, second)
            _store(self._year_less, key, start)
        return start + second if 0 <= second < 61 else None

    def without_year_text(self, minute: str, second: str) -> float | None:
        """Return the POSIX time of a year-less ``%b %d %H:%M`` and ``%S`` text; None if invalid.

        ``minute`` is the text up to the minute, such as ``Dec  4 10:00``. Its day may be
        padded with a space or a zero, or not padded. ``second`` is the text of the seconds.
        The result equals that of ``without_year`` for the same numbers, and the reader
        caches the start of each minute text.
        """
        start = self._year_less_texts.get(minute)
        if start is None:
            numbers = _minute_numbers(minute)
            if numbers is None:
                return None
            start = self._year_less_start(*numbers)
            if start is None:
                return self._infer_year(*numbers, _seconds(second))
            _store(self._year_less_texts, minute, start)
        try:
            seconds = int(second)
        except ValueError:
            return None
        return start + seconds if 0 <= seconds < 61 else None

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

    def _infer_year(
        self, month: int, day: int, hour: int, minute: int, second: float
    ) -> float | None:
        for candidate in (self._year, self._year - 1, self._year - 2):
            stamp = self.local(candidate, month, day, hour, minute, second)
            if stamp is not None and stamp <= self._limit:
                return stamp
        # 29 February in a year that has none: try the leap years before.
        for candidate in range(self._year - 3, self._year - 9, -1):
            stamp = self.local(candidate, month, day, hour, minute, second)
            if stamp is not None:
                return stamp
        return None

    def _year_less_start(self, month: int, day: int, hour: int, minute: int) -> float | None:
        """Return the start of a year-less minute if one year fits every second of it.

        The year inferred for second 0 fits the whole minute unless the minute crosses the
        future limit. Such minutes and invalid dates give None, so their callers run the full
        inference for each timestamp.
        """
        start = self._infer_year(month, day, hour, minute, 0)
        if start is None or start + 61 > self._limit:
            return None
        return start


def _store(cache: dict[_Key, float], key: _Key, start: float) -> None:
    if len(cache) > _CACHE_SIZE:
        cache.clear()
    cache[key] = start


def _seconds(text: str) -> int:
    """Return the seconds of ``text``; -1, which no time has, if it is no number."""
    try:
        return int(text)
    except ValueError:
        return -1


def _minute_numbers(text: str) -> tuple[int, int, int, int] | None:
    """Return month, day, hour and minute of ``Mmm dd hh:mm``; None if unreadable."""
    month = MONTHS.get(text[:3])
    day, _, clock = text[4:].rpartition(" ")
    hour, _, minute = clock.partition(":")
    if month is None or text[3:4] != " ":
        return None
    try:
        return month, int(day), int(hour), int(minute)
    except ValueError:
        return None
