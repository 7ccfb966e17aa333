"""Year inference and zones of log timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from smtpdiag.logs.timestamps import TimeReader

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC).timestamp()


def reader(zone: timezone = UTC) -> TimeReader:
    return TimeReader(zone, now=lambda: NOW)


def iso(stamp: float | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat()


@pytest.mark.parametrize(
    ("month", "day", "expected"),
    [
        pytest.param(12, 4, "2026-12-04T11:29:50+00:00", id="today"),
        pytest.param(3, 13, "2026-03-13T11:29:50+00:00", id="earlier-this-year"),
        pytest.param(12, 5, "2026-12-05T11:29:50+00:00", id="tomorrow-within-a-day"),
        pytest.param(12, 6, "2025-12-06T11:29:50+00:00", id="two-days-ahead-is-last-year"),
        pytest.param(2, 29, "2024-02-29T11:29:50+00:00", id="leap-day-takes-a-leap-year"),
    ],
)
def test_year_is_inferred_without_future_dates(month: int, day: int, expected: str) -> None:
    assert iso(reader().without_year(month, day, 11, 29, 50)) == expected


@pytest.mark.parametrize(
    ("minute", "second", "expected"),
    [
        pytest.param("Dec  4 11:29", "50", "2026-12-04T11:29:50+00:00", id="space-padded-day"),
        pytest.param("Dec 04 11:29", "50", "2026-12-04T11:29:50+00:00", id="zero-padded-day"),
        pytest.param("Mar 13 11:29", "50", "2026-03-13T11:29:50+00:00", id="earlier-this-year"),
        pytest.param("Dec 6 11:29", "50", "2025-12-06T11:29:50+00:00", id="unpadded-day-last-year"),
        pytest.param("Feb 29 11:29", "50", "2024-02-29T11:29:50+00:00", id="leap-day"),
        pytest.param("Feb 30 11:29", "50", None, id="impossible-date"),
        pytest.param("Dec  4 11:29", "61", None, id="impossible-second"),
        pytest.param("Foo  4 11:29", "50", None, id="unknown-month"),
        pytest.param("Dec  4 11-29", "50", None, id="not-a-time"),
    ],
)
def test_year_less_text(minute: str, second: str, expected: str | None) -> None:
    assert iso(reader().without_year_text(minute, second)) == expected


def test_year_less_text_repeats_give_same_time() -> None:
    times = reader()
    stamps = [times.without_year_text("Dec  4 11:29", second) for second in ("50", "99", "50")]
    assert [iso(stamp) for stamp in stamps] == [
        "2026-12-04T11:29:50+00:00",
        None,
        "2026-12-04T11:29:50+00:00",
    ]


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        pytest.param(29, "2026-12-04T11:59:29+00:00", id="before-limit-this-year"),
        pytest.param(30, "2026-12-04T11:59:30+00:00", id="at-limit-this-year"),
        pytest.param(31, "2025-12-04T11:59:31+00:00", id="past-limit-last-year"),
    ],
)
def test_minute_across_future_limit(second: int, expected: str) -> None:
    # The limit lies one day after now: 2026-12-04 11:59:30, inside the minute 11:59.
    now = datetime(2026, 12, 3, 11, 59, 30, tzinfo=UTC).timestamp()
    times = TimeReader(UTC, now=lambda: now)
    for _ in range(2):
        assert iso(times.without_year(12, 4, 11, 59, second)) == expected
        assert iso(times.without_year_text("Dec  4 11:59", f"{second:02d}")) == expected


def test_december_line_read_in_january_is_last_year() -> None:
    january = TimeReader(UTC, now=lambda: datetime(2027, 1, 2, tzinfo=UTC).timestamp())
    assert iso(january.without_year(12, 31, 23, 59, 0)) == "2026-12-31T23:59:00+00:00"


def test_zone_applies_to_zone_less_times() -> None:
    plus_three = timezone(timedelta(hours=3))
    assert iso(reader(plus_three).local(2026, 3, 13, 11, 29, 50)) == "2026-03-13T08:29:50+00:00"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "2026-12-04T10:00:00.500+01:00", "2026-12-04T09:00:00.500000+00:00", id="offset"
        ),
        pytest.param("2026-12-04T10:00:00Z", "2026-12-04T10:00:00+00:00", id="zulu"),
        pytest.param("2026-12-04 10:00:00", "2026-12-04T10:00:00+00:00", id="zone-less"),
        pytest.param("2026-13-04T10:00:00Z", None, id="month-13"),
        pytest.param("yesterday", None, id="not-a-time"),
    ],
)
def test_iso_timestamps(text: str, expected: str | None) -> None:
    assert iso(reader().iso(text)) == expected


@pytest.mark.parametrize("second", [-1, 61, 99])
def test_impossible_seconds_give_none(second: int) -> None:
    assert reader().local(2026, 12, 4, 10, 0, second) is None


def test_invalid_date_gives_none() -> None:
    assert reader().local(2026, 2, 30, 10, 0, 0) is None
