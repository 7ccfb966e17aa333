"""Offset estimates and server time parsing: precision per source, always in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smtpdiag.clock.ntp import NtpResult
from smtpdiag.clock.sources import (
    ClockSource,
    OffsetEstimate,
    best_estimate,
    find_server_time,
    http_date_estimate,
    ntp_estimate,
    parse_server_time,
    smtp_reply_estimate,
    zone_shift_seconds,
)

RECEIVED = datetime(2026, 12, 4, 9, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "utc", "resolution"),
    [
        ("2023-09-12T20:59:57.214Z", datetime(2023, 9, 12, 20, 59, 57, 214000, tzinfo=UTC), 0.001),
        ("2023-09-12T20:59:57Z", datetime(2023, 9, 12, 20, 59, 57, tzinfo=UTC), 1.0),
        ("2023-09-13T03:59:57+07:00", datetime(2023, 9, 12, 20, 59, 57, tzinfo=UTC), 1.0),
        ("2023-09-12T16:59:57-0400", datetime(2023, 9, 12, 20, 59, 57, tzinfo=UTC), 1.0),
        (
            "2024-12-07T12:09:18.3149355Z",
            datetime(2024, 12, 7, 12, 9, 18, 314935, tzinfo=UTC),
            0.000001,
        ),
        ("Fri, 04 Dec 2026 10:00:00 +0100", datetime(2026, 12, 4, 9, 0, 0, tzinfo=UTC), 1.0),
        ("4 Dec 2026 16:00:00 +0700", datetime(2026, 12, 4, 9, 0, 0, tzinfo=UTC), 1.0),
        ("Fri, 04 Dec 2026 09:00:00 GMT", datetime(2026, 12, 4, 9, 0, 0, tzinfo=UTC), 1.0),
        ("Fri, 04 Dec 2026 09:00:00 -0000", datetime(2026, 12, 4, 9, 0, 0, tzinfo=UTC), 1.0),
        ("Fri, 04 Dec 2026 01:00:00 PST", datetime(2026, 12, 4, 9, 0, 0, tzinfo=UTC), 1.0),
        ("Fri, 04 Dec 2026 10:00 +0100", datetime(2026, 12, 4, 9, 0, 0, tzinfo=UTC), 60.0),
    ],
)
def test_parse_server_time_in_utc(text: str, utc: datetime, resolution: float) -> None:
    parsed = parse_server_time(text)
    assert parsed is not None
    assert parsed[0] == utc
    assert parsed[0].utcoffset() is not None
    assert parsed[1] == pytest.approx(resolution)


@pytest.mark.parametrize(
    "text",
    [
        "2023-09-12T20:59:57",  # no zone: cannot be compared in UTC
        "2023-13-12T20:59:57Z",  # no month 13
        "Fri, 04 Dec 2026 10:00:00",  # no zone
        "yesterday",
        "",
    ],
)
def test_parse_server_time_rejects(text: str) -> None:
    assert parse_server_time(text) is None


@pytest.mark.parametrize(
    ("reply", "found"),
    [
        (
            "220 mx.example.com ESMTP Postfix; Fri, 04 Dec 2026 10:00:00 +0100",
            "Fri, 04 Dec 2026 10:00:00 +0100",
        ),
        (
            "220 mx.example.com ESMTP Sendmail 8.17.1/8.17.1; Fri, 4 Dec 2026 10:00:00 +0100 (CET)",
            "Fri, 4 Dec 2026 10:00:00 +0100",
        ),
        (
            "220 mx.example.com ESMTP Exim 4.96 Fri, 04 Dec 2026 10:00:00 +0100",
            "Fri, 04 Dec 2026 10:00:00 +0100",
        ),
        (
            "235 2.7.0 Authentication successful "
            "[XX0PR00CA0000.namprd00.prod.outlook.com 2023-09-12T20:59:57.214Z 08DBB3C7B1F2A3D4]",
            "2023-09-12T20:59:57.214Z",
        ),
        ("220 smtp.gmail.com ESMTP a1b2c3 - gsmtp", None),
        ("220 mx.example.com ESMTP 2026-12-04 10:00:00", None),
    ],
)
def test_find_server_time_in_replies(reply: str, found: str | None) -> None:
    assert find_server_time(reply) == found


def test_banner_zone_offset_is_not_skew() -> None:
    # The server writes its local time in +0700, truncated to the second: read half a second
    # into that second, it matches the local clock's UTC time.
    received = RECEIVED.replace(microsecond=500000)
    estimate = smtp_reply_estimate("Fri, 04 Dec 2026 16:00:00 +0700", received, "the greeting")
    assert estimate is not None
    assert estimate.offset_seconds == 0.0
    assert estimate.source is ClockSource.SMTP_REPLY
    assert estimate.precision_seconds == pytest.approx(2.0)


def test_smtp_reply_local_ahead_is_positive() -> None:
    received = datetime(2023, 9, 12, 21, 1, 27, 214000, tzinfo=UTC)
    estimate = smtp_reply_estimate("2023-09-12T20:59:57.214Z", received, "the AUTH reply")
    assert estimate is not None
    # Centred in its millisecond: 90 s minus 0.5 ms.
    assert estimate.offset_seconds == pytest.approx(89.9995)
    assert estimate.precision_seconds == pytest.approx(1.001)


def test_smtp_reply_without_zone_is_ignored() -> None:
    assert smtp_reply_estimate("2023-09-12T20:59:57", RECEIVED, "the greeting") is None


def test_http_date_estimate() -> None:
    # The Date header was 90 s behind the local time at which the reply was read.
    estimate = http_date_estimate(-90.0, 0.4, "the Date header of https://login.example.test")
    assert estimate.source is ClockSource.HTTP_DATE
    # 90 s, minus half a second for the truncated Date, minus half the latency.
    assert estimate.offset_seconds == pytest.approx(89.3)
    assert estimate.precision_seconds == pytest.approx(1.2)


def test_http_date_of_synchronised_clock_is_zero() -> None:
    # The server stamped 09:00:00.5 as "09:00:00"; the reply was read 0.6 s after that second
    # began, 0.2 s after the request was sent.
    estimate = http_date_estimate(-0.6, 0.2, "the Date header")
    assert estimate.offset_seconds == pytest.approx(0.0)


def test_rfc5322_greeting_of_synchronised_clock_is_zero() -> None:
    received = datetime(2026, 12, 4, 9, 0, 0, 500000, tzinfo=UTC)
    estimate = smtp_reply_estimate("Fri, 04 Dec 2026 09:00:00 +0000", received, "the greeting")
    assert estimate is not None
    assert estimate.offset_seconds == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("offset", "precision", "shift"),
    [
        (-25199.3, 2.0, -25200.0),  # Jakarta wall time labelled +0000
        (25201.5, 1.2, 25200.0),
        (19800.4, 1.2, 19800.0),  # +05:30
        (-20702.0, 2.0, -20700.0),  # +05:45
        (1800.0, 1.0, 1800.0),
        (900.0, 1.0, None),  # below 30 minutes
        (90.0, 1.2, None),
        (25190.0, 2.0, None),  # 10 s from a whole hour: skew
        (3605.5, 1.2, None),  # 5.5 s from a whole hour, beyond 2 s plus the precision
        (3605.5, 4.0, 3600.0),
    ],
)
def test_zone_shift_seconds(offset: float, precision: float, shift: float | None) -> None:
    estimate = OffsetEstimate(ClockSource.SMTP_REPLY, offset, precision, "the greeting")
    assert zone_shift_seconds(estimate) == shift


def test_ntp_estimate_precision_is_half_delay() -> None:
    result = NtpResult(
        "127.0.0.1:4123", RECEIVED, offset_seconds=-90.0, delay_seconds=0.05, stratum=2
    )
    estimate = ntp_estimate(result)
    assert estimate is not None
    assert estimate.offset_seconds == -90.0
    assert estimate.precision_seconds == pytest.approx(0.025)
    assert estimate.origin == "NTP server 127.0.0.1:4123"


def test_ntp_estimate_precision_at_least_one_millisecond() -> None:
    result = NtpResult("127.0.0.1", RECEIVED, offset_seconds=0.0, delay_seconds=0.0001, stratum=2)
    estimate = ntp_estimate(result)
    assert estimate is not None
    assert estimate.precision_seconds == 0.001


def test_ntp_estimate_of_failed_query() -> None:
    assert ntp_estimate(NtpResult("127.0.0.1", RECEIVED, error="no reply within 1 s")) is None


def test_best_estimate_prefers_precision_then_ntp() -> None:
    date = OffsetEstimate(ClockSource.HTTP_DATE, 2.0, 1.1, "date")
    reply = OffsetEstimate(ClockSource.SMTP_REPLY, 3.0, 1.001, "reply")
    ntp = OffsetEstimate(ClockSource.NTP, 1.0, 1.001, "ntp")
    assert best_estimate([date, reply]) is reply
    assert best_estimate([date, reply, ntp]) is ntp
    assert best_estimate([]) is None
