"""Log throttling of repeated events, driven by a fake monotonic clock."""

from __future__ import annotations

import pytest

from exporters.logthrottle import LogThrottle

PERIOD = 60.0


class Recorder:
    """A fake clock and the counts that a throttle logged."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.counts: list[tuple[str, int, float]] = []
        self.throttle: LogThrottle[str] = LogThrottle(
            self.log_count, PERIOD, monotonic=lambda: self.now
        )

    def log_count(self, key: str, count: int, seconds: float) -> None:
        self.counts.append((key, count, seconds))

    def record(self, key: str, times: int) -> list[bool]:
        return [self.throttle.record(key) for _ in range(times)]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def test_first_event_logged_in_full(recorder: Recorder) -> None:
    assert recorder.record("a", 5) == [True, False, False, False, False]


def test_no_count_within_period(recorder: Recorder) -> None:
    recorder.record("a", 5)
    recorder.now += PERIOD - 1
    recorder.throttle.flush()
    assert recorder.counts == []


def test_count_logged_when_period_ends(recorder: Recorder) -> None:
    recorder.record("a", 5)
    recorder.now += PERIOD + 1
    recorder.throttle.flush()
    assert recorder.counts == [("a", 4, PERIOD + 1)]


def test_count_logged_once(recorder: Recorder) -> None:
    recorder.record("a", 5)
    recorder.now += PERIOD + 1
    recorder.throttle.flush()
    recorder.now += PERIOD + 1
    recorder.throttle.flush()
    assert recorder.counts == [("a", 4, PERIOD + 1)]


def test_count_line_starts_next_period(recorder: Recorder) -> None:
    recorder.record("a", 5)
    recorder.now += PERIOD + 1
    recorder.throttle.flush()
    assert recorder.record("a", 3) == [False, False, False]


def test_steady_flood_one_count_per_period(recorder: Recorder) -> None:
    full = []
    for _ in range(180):
        full += recorder.record("a", 1)
        recorder.now += 1.0
        recorder.throttle.flush()
    assert full.count(True) == 1
    assert [count for _, count, _ in recorder.counts] == [59, 60, 60]


def test_quiet_period_ends_series(recorder: Recorder) -> None:
    recorder.record("a", 1)
    recorder.now += PERIOD + 1
    recorder.throttle.flush()
    assert recorder.record("a", 2) == [True, False]
    assert recorder.counts == []


def test_next_event_ends_period_without_flush(recorder: Recorder) -> None:
    recorder.record("a", 50)
    recorder.now += PERIOD + 1
    full = recorder.record("a", 1)
    assert full == [False]
    assert recorder.counts == [("a", 49, PERIOD + 1)]


def test_next_event_after_quiet_period_logged_in_full(recorder: Recorder) -> None:
    recorder.record("a", 1)
    recorder.now += PERIOD + 1
    assert recorder.record("a", 1) == [True]
    assert recorder.counts == []


def test_final_flush_logs_open_count(recorder: Recorder) -> None:
    recorder.record("a", 7)
    recorder.now += 5.0
    recorder.throttle.flush(final=True)
    assert recorder.counts == [("a", 6, 5.0)]


def test_final_flush_without_events_logs_nothing(recorder: Recorder) -> None:
    recorder.record("a", 1)
    recorder.throttle.flush(final=True)
    assert recorder.counts == []


def test_final_flush_forgets_keys(recorder: Recorder) -> None:
    recorder.record("a", 3)
    recorder.throttle.flush(final=True)
    assert recorder.record("a", 1) == [True]


def test_keys_counted_apart(recorder: Recorder) -> None:
    assert recorder.record("a", 3) + recorder.record("b", 2) == [True, False, False, True, False]
    recorder.throttle.flush(final=True)
    assert sorted(recorder.counts) == [("a", 2, 0.0), ("b", 1, 0.0)]
