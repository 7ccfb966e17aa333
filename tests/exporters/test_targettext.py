"""Pre-rendered target lines: the scrape text equals the collector's, and is rendered once."""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence

import pytest
from test_collector import (
    FINISHED,
    LOG_FILE,
    NOW,
    cached,
    config,
    fill,
    finding,
    full_results,
    result,
    status_of,
)

from exporters.cache import CachedResult, ResultCache
from exporters.collector import SmtpdiagCollector
from exporters.exposition import render_text
from exporters.logcounters import LogCounters
from exporters.targettext import TargetTexts
from smtpdiag.models import Severity, Status

SCRAPE_DURATION = b"smtpdiag_scrape_duration_seconds "


def without_scrape_duration(text: bytes) -> bytes:
    """Drop the one sample whose value is the previous scrape's duration."""
    return b"".join(
        line for line in text.splitlines(keepends=True) if not line.startswith(SCRAPE_DURATION)
    )


def collector_of(cache: ResultCache, counters: LogCounters | None = None) -> SmtpdiagCollector:
    exporter_config = config()
    return SmtpdiagCollector(cache, counters, lambda: status_of(exporter_config), wall=lambda: NOW)


def both_texts(collector: SmtpdiagCollector) -> tuple[bytes, bytes]:
    fast = without_scrape_duration(collector.exposition())
    slow = without_scrape_duration(render_text(collector.collect()))
    return fast, slow


def test_full_scrape_equals_collect() -> None:
    cache = fill(ResultCache(), *full_results("gmail_relay", "google"))
    collector = collector_of(cache, LogCounters([LOG_FILE], ["google"]))
    fill(cache, *full_results("office365", "microsoft"))  # after the collector: listener path
    fast, slow = both_texts(collector)
    assert fast == slow


def test_changed_result_shows_in_scrape() -> None:
    cache = fill(ResultCache(), *full_results("relay", "generic"))
    collector = collector_of(cache)
    collector.exposition()
    fill(cache, cached("relay", result("auth", Status.CRITICAL, [finding("auth.token_rejected")])))
    fast, slow = both_texts(collector)
    assert fast == slow
    assert b'smtpdiag_check_status{check="auth",target="relay"} 2.0' in fast


def test_removed_target_leaves_scrape() -> None:
    cache = fill(ResultCache(), *full_results("a", "generic"), *full_results("b", "generic"))
    collector = collector_of(cache)
    collector.exposition()
    cache.retain(["a"])
    fast, slow = both_texts(collector)
    assert fast == slow
    assert b'target="b"' not in fast


@pytest.mark.parametrize(
    ("dns", "connect"),
    [(Status.CRITICAL, Status.SKIPPED), (Status.OK, Status.SKIPPED), (Status.OK, Status.OK)],
    ids=["dns-failed", "connect-skipped", "reached"],
)
def test_up_variants_equal_collect(dns: Status, connect: Status) -> None:
    cache = fill(
        ResultCache(),
        cached("relay", result("dns", dns)),
        cached("relay", result("connect", connect)),
        cached("relay", result("scope", Status.OK, [finding("scope.unverifiable", Severity.INFO)])),
    )
    fast, slow = both_texts(collector_of(cache))
    assert fast == slow


def test_empty_cache_equals_collect() -> None:
    fast, slow = both_texts(collector_of(ResultCache()))
    assert fast == slow


class CountingRender:
    def __init__(self) -> None:
        self.targets: list[str] = []

    def __call__(self, results: Sequence[CachedResult]) -> Mapping[str, str]:
        self.targets.append(results[0].target)
        return {"family": f"{results[0].target}\n"}


def test_put_renders_in_putting_thread() -> None:
    cache = ResultCache()
    render = CountingRender()
    texts = TargetTexts(cache, render)
    fill(cache, cached("relay", result("connect")))
    assert render.targets == ["relay"]
    assert texts is not None


def test_scrape_reuses_rendered_lines() -> None:
    cache = ResultCache()
    render = CountingRender()
    texts = TargetTexts(cache, render)
    fill(cache, cached("a", result("connect")), cached("b", result("connect")))
    render.targets.clear()
    lines = texts.lines(cache.snapshot())
    assert (render.targets, [item["family"] for item in lines]) == ([], ["a\n", "b\n"])


def test_dead_listener_dropped() -> None:
    cache = ResultCache()
    render = CountingRender()
    TargetTexts(cache, render)  # not kept: the cache keeps only a weak reference
    gc.collect()
    fill(cache, CachedResult("relay", "generic", result("connect"), FINISHED, 60.0))
    assert render.targets == []
