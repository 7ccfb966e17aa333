"""Sample lines of each target's cached results, rendered when the results change.

A scrape at 200 targets would otherwise build and write some 6,000 samples. The lines of one
target change only when one of its jobs stores a result, a few times a minute, so they are
rendered then, in the probe worker that stored the result, and a scrape joins the stored
lines. A scrape renders only the targets whose results changed since, which no listener
rendered yet.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from itertools import groupby

from exporters.cache import CachedResult, ResultCache

RenderTarget = Callable[[Sequence[CachedResult]], Mapping[str, str]]
"""Return the sample lines of one target's results, by metric family name."""


class TargetTexts:
    """Rendered sample lines of every target, kept current by the result cache's listener."""

    def __init__(self, cache: ResultCache, render: RenderTarget) -> None:
        self._cache = cache
        self._render = render
        self._lock = threading.Lock()
        self._texts: dict[str, tuple[tuple[CachedResult, ...], Mapping[str, str]]] = {}
        """Per target: the results that were rendered and their lines by family."""
        cache.add_listener(self.refresh)

    def refresh(self, target: str) -> None:
        """Render the lines of ``target`` from its results in the cache now."""
        self._lines(target, self._cache.for_target(target))

    def lines(self, snapshot: Sequence[CachedResult]) -> list[Mapping[str, str]]:
        """Return the lines of every target in ``snapshot`` (sorted by target), in its order.

        Targets absent from ``snapshot``, such as those a reload removed, are forgotten.
        """
        grouped = [(target, tuple(group)) for target, group in groupby(snapshot, _target)]
        texts = [self._lines(target, results) for target, results in grouped]
        with self._lock:
            for removed in self._texts.keys() - {target for target, _ in grouped}:
                del self._texts[removed]
        return texts

    def _lines(self, target: str, results: tuple[CachedResult, ...]) -> Mapping[str, str]:
        with self._lock:
            stored = self._texts.get(target)
        # Results are immutable and replaced on every put, so identity shows a change.
        if stored is not None and _same(stored[0], results):
            return stored[1]
        texts = self._render(results)
        with self._lock:
            self._texts[target] = (results, texts)
        return texts


def _target(cached: CachedResult) -> str:
    return cached.target


def _same(old: tuple[CachedResult, ...], new: tuple[CachedResult, ...]) -> bool:
    return len(old) == len(new) and all(a is b for a, b in zip(old, new, strict=True))
