"""Settings of one log analysis run and the failure-rate threshold rule they configure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

MAX_WINDOW_MINUTES = 1440
"""Maximum failure-rate window in minutes: one day."""

MAX_MIN_ATTEMPTS = 1_000_000
"""Largest number of attempts a window may be required to have."""


@dataclass(frozen=True)
class AnalysisOptions:
    """Settings of one analysis run."""

    window_seconds: float = 900.0
    """Length of a window; windows start at multiples of it since the epoch."""
    threshold: float = 0.02
    """A window is over when failures / attempts is greater than this ratio (0 to 1)."""
    min_attempts: int = 20
    """... and it has at least this many attempts."""
    since: float | None = None
    """POSIX seconds; events before it are not counted. None: no lower bound."""
    until: float | None = None
    """POSIX seconds; events at or after it are not counted. None: no upper bound."""
    zone: tzinfo | None = None
    """Zone of timestamps that carry none; None means the machine's local zone."""
    msmtp_time_format: str | None = "%b %d %H:%M:%S"
    """strftime format of msmtp's ``logfile_time_format``; None when it is ``none``."""


THRESHOLD_TOLERANCE = 1e-9
"""Relative margin of the threshold comparison, larger than the rounding error of a percent
divided by 100 (0.7 / 100 is slightly below 7 / 1000 in floating point)."""


def exceeds_threshold(failures: int, attempts: int, threshold: float) -> bool:
    """Return whether ``failures`` of ``attempts`` is more than the ratio ``threshold``.

    The comparison multiplies instead of dividing and allows ``THRESHOLD_TOLERANCE``, so a
    ratio exactly at a threshold given in percent (7 of 1000 at 0.7 %) is not over it.
    """
    return failures > threshold * attempts * (1 + THRESHOLD_TOLERANCE)
