"""The wall clock of a lab's servers: the local clock plus the scenario's offset.

The NTP responder, the token endpoint (its ``Date`` header and the JWT claims it issues) and
the SMTP banner read the time from one ``LabClock``, so a scenario can put the lab ahead of
or behind the local clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class LabClock:
    """A wall clock that runs ``offset_seconds`` ahead of the local clock (behind when
    negative)."""

    offset_seconds: float = 0.0

    def time(self) -> float:
        """Return the lab time in seconds since the epoch."""
        return time.time() + self.offset_seconds

    def now(self) -> datetime:
        """Return the lab time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), UTC)
