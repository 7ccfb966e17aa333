"""Result cache: latest result per target and check, sorted snapshots, thread safety."""

from __future__ import annotations

import threading

from exporters.cache import CachedResult, ResultCache
from smtpdiag.models import CheckResult, Status


def cached(target: str, check_id: str, status: Status = Status.OK, at: float = 1.0) -> CachedResult:
    result = CheckResult(check_id, status, f"{check_id} {status.value}")
    return CachedResult(target, "generic", result, finished_at=at, interval=60.0)


def keys(results: tuple[CachedResult, ...]) -> list[tuple[str, str]]:
    return [(item.target, item.result.id) for item in results]


def filled() -> ResultCache:
    cache = ResultCache()
    for target, check_id in [("b", "tls"), ("a", "tls"), ("b", "dns"), ("a", "auth")]:
        cache.put(cached(target, check_id))
    return cache


def test_empty_snapshot() -> None:
    assert ResultCache().snapshot() == ()


def test_snapshot_sorted_by_target_and_check() -> None:
    assert keys(filled().snapshot()) == [("a", "auth"), ("a", "tls"), ("b", "dns"), ("b", "tls")]


def test_snapshot_is_tuple() -> None:
    assert isinstance(filled().snapshot(), tuple)


def test_put_replaces_previous_result() -> None:
    cache = ResultCache()
    cache.put(cached("a", "tls", Status.OK, at=1.0))
    cache.put(cached("a", "tls", Status.CRITICAL, at=2.0))
    assert [(item.result.status, item.finished_at) for item in cache.snapshot()] == [
        (Status.CRITICAL, 2.0)
    ]


def test_for_target_sorted_by_check() -> None:
    assert keys(filled().for_target("b")) == [("b", "dns"), ("b", "tls")]


def test_for_unknown_target_is_empty() -> None:
    assert filled().for_target("nope") == ()


def test_retain_drops_other_targets() -> None:
    cache = filled()
    cache.retain(["b", "c"])
    assert keys(cache.snapshot()) == [("b", "dns"), ("b", "tls")]


def test_retain_with_checks_drops_other_checks() -> None:
    cache = filled()
    cache.retain(["a", "b"], checks={"tls"})
    assert keys(cache.snapshot()) == [("a", "tls"), ("b", "tls")]


def test_snapshot_unchanged_by_later_put() -> None:
    cache = filled()
    before = cache.snapshot()
    cache.put(cached("c", "dns"))
    assert len(before) == 4


def test_concurrent_puts_and_reads() -> None:
    cache = ResultCache()
    errors: list[BaseException] = []
    start = threading.Barrier(9)

    def writer(index: int) -> None:
        start.wait()
        for number in range(300):
            cache.put(cached(f"t{index}", f"c{number % 50}", at=float(number)))
            if number % 30 == 0:
                cache.retain([f"t{n}" for n in range(8)])

    def reader() -> None:
        start.wait()
        try:
            for _ in range(300):
                snapshot = cache.snapshot()
                assert keys(snapshot) == sorted(keys(snapshot))
        except BaseException as error:  # collected so the main thread's assert reports it
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(8)]
    threads.append(threading.Thread(target=reader))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache.snapshot()) == 8 * 50
