"""Log throttling for repeated events: the first event in full, then one count per period."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

_Key = TypeVar("_Key", bound=Hashable)

CountLogger = Callable[[_Key, int, float], None]
"""Callback that logs a count: (key, events since the last line, seconds since that line)."""


@dataclass
class _Period:
    started: float
    """Monotonic time of the last line about the key."""
    count: int = 0
    """Events since that line."""


class LogThrottle(Generic[_Key]):
    """Limit the log lines about repeated events to one per ``period`` seconds for each key.

    ``record`` returns True for the first event of a key, and the caller logs that event in
    full. Later events within ``period`` seconds of that line are only counted. When the period
    ends, ``log_count`` logs their number, and that line starts the next period. A period
    without events ends the series, so the next event is logged in full again.

    A period ends at the next ``record`` or ``flush`` call after it is over. Call ``flush``
    regularly, so that the count of a burst is logged when its period ends, and with
    ``final=True`` at stop, so that no count is lost.
    """

    def __init__(
        self,
        log_count: CountLogger[_Key],
        period: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log_count = log_count
        self._period = period
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._periods: dict[_Key, _Period] = {}

    def record(self, key: _Key) -> bool:
        """Count one event of ``key`` and return True when the caller should log it in full."""
        now = self._monotonic()
        ended: tuple[int, float] | None = None
        with self._lock:
            period = self._periods.get(key)
            if period is not None and now - period.started >= self._period:
                ended = self._end(key, period, now)
                period = self._periods.get(key)
            if period is None:
                self._periods[key] = _Period(now)
            else:
                period.count += 1
        # The count of the ended period goes out before the caller logs this event.
        if ended is not None:
            self._log_count(key, *ended)
        return period is None

    def flush(self, *, final: bool = False) -> None:
        """Log the count of every period that is over, or with ``final`` of every period."""
        now = self._monotonic()
        counts: list[tuple[_Key, int, float]] = []
        with self._lock:
            for key, period in list(self._periods.items()):
                if final:
                    if period.count:
                        counts.append((key, period.count, now - period.started))
                    del self._periods[key]
                elif now - period.started >= self._period:
                    ended = self._end(key, period, now)
                    if ended is not None:
                        counts.append((key, *ended))
        for key, count, seconds in counts:
            self._log_count(key, count, seconds)

    def _end(self, key: _Key, period: _Period, now: float) -> tuple[int, float] | None:
        """End ``period`` and return its count and length, or None when it had no events.

        After events, the next period starts now, and the line with the count is its first.
        Without events the key is forgotten, so its next event is logged in full."""
        if not period.count:
            del self._periods[key]
            return None
        self._periods[key] = _Period(now)
        return period.count, now - period.started
