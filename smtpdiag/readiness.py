"""Wait until one descriptor is readable, with ``poll(2)``.

``select(2)`` cannot watch a descriptor numbered 1024 or higher, which a process reaches once
its soft ``RLIMIT_NOFILE`` is above 1024 and many files and sockets are open, as in the
exporter with many targets. ``poll(2)`` has no such limit and needs no descriptor of its own.
"""

from __future__ import annotations

import math
import select
from typing import Protocol


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


def wait_readable(source: int | _HasFileno, seconds: float | None) -> bool:
    """Wait up to ``seconds`` (forever with None) until ``source`` is readable.

    Returns True also for end of stream, a hang-up and an error on the descriptor, as
    ``select`` does, so that the next read returns them.
    """
    poller = select.poll()
    poller.register(source, select.POLLIN | select.POLLPRI)
    if seconds is None:
        return bool(poller.poll())
    # poll takes whole milliseconds; rounding up keeps a short wait from returning early.
    return bool(poller.poll(math.ceil(max(0.0, seconds) * 1000)))
