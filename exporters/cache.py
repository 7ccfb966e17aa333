"""Latest result of every check of every target, shared by the scheduler and the collector.

The scheduler stores results as jobs finish. A scrape reads a snapshot, so it does not wait
for a running probe.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass

from smtpdiag.models import CheckResult


@dataclass(frozen=True)
class CachedResult:
    """One check result of one target and when it was produced."""

    target: str
    """Target name, used as the ``target`` metric label."""
    provider: str
    """The ``provider`` metric label of the target."""
    result: CheckResult
    finished_at: float
    """``time.time()`` when the run that produced the result ended."""
    interval: float
    """Seconds between runs of the job that produced the result."""


class ResultCache:
    """Latest ``CachedResult`` per (target, check id), safe to use from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: dict[tuple[str, str], CachedResult] = {}
        self._stored: dict[str, int] = {}
        """Results stored per check id since the cache was made; ``retain`` keeps them."""
        self._listeners: list[weakref.WeakMethod[Callable[[str], None]]] = []

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call the bound method ``listener`` with the target name after each ``put``, in the
        putting thread, for as long as its object lives: a collector that a reload replaced
        stops listening without being removed."""
        with self._lock:
            self._listeners.append(weakref.WeakMethod(listener))

    def put(self, cached: CachedResult) -> None:
        """Store ``cached`` in place of the previous result of its target and check."""
        check_id = cached.result.id
        with self._lock:
            self._results[(cached.target, check_id)] = cached
            self._stored[check_id] = self._stored.get(check_id, 0) + 1
            listeners = [reference() for reference in self._listeners]
            if None in listeners:
                self._listeners = [
                    ref for ref, live in zip(self._listeners, listeners, strict=True) if live
                ]
        for listener in listeners:
            if listener is not None:
                listener(cached.target)

    def snapshot(self) -> tuple[CachedResult, ...]:
        """Return every stored result, sorted by target and check id."""
        with self._lock:
            items = sorted(self._results.items())
        return tuple(cached for _key, cached in items)

    def stored_counts(self) -> dict[str, int]:
        """Return the number of results stored per check id, sorted by check id."""
        with self._lock:
            return dict(sorted(self._stored.items()))

    def for_target(self, target: str) -> tuple[CachedResult, ...]:
        """Return the stored results of ``target``, sorted by check id."""
        with self._lock:
            items = sorted(item for item in self._results.items() if item[0][0] == target)
        return tuple(cached for _key, cached in items)

    def retain(self, targets: Collection[str], checks: Collection[str] | None = None) -> None:
        """Drop the results of every target not in ``targets``.

        With ``checks``, drop as well the results of every check id not in ``checks``, such as
        the checks of a job that a reload disabled.
        """
        keep_targets = frozenset(targets)
        keep_checks = None if checks is None else frozenset(checks)
        with self._lock:
            for key in list(self._results):
                target, check_id = key
                if target not in keep_targets or (
                    keep_checks is not None and check_id not in keep_checks
                ):
                    del self._results[key]
