"""Syslog headers: RFC 3164, RFC 5424, rsyslog RFC 3339 files and OpenWrt logread."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smtpdiag.logs.model import SyslogRecord
from smtpdiag.logs.syslog import split_header, unescape
from smtpdiag.logs.timestamps import TimeReader

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC).timestamp()
TIMES = TimeReader(UTC, now=lambda: NOW)


def stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            "Mar 13 11:29:50 mail1 msmtp: host=smtp.example.com exitcode=EX_OK",
            SyslogRecord(
                message="host=smtp.example.com exitcode=EX_OK",
                timestamp=stamp("2026-03-13T11:29:50+00:00"),
                hostname="mail1",
                program="msmtp",
            ),
            id="rfc3164-without-pid",
        ),
        pytest.param(
            "Mar  3 09:05:01 mx postfix/submission/smtpd[4711]: warning: SASL LOGIN failed",
            SyslogRecord(
                message="warning: SASL LOGIN failed",
                timestamp=stamp("2026-03-03T09:05:01+00:00"),
                hostname="mx",
                program="postfix/submission/smtpd",
                pid=4711,
            ),
            id="rfc3164-space-padded-day-slashed-tag",
        ),
        pytest.param(
            "<22>Dec  4 10:00:00 mx msmtpd[12]: authenticated user relay",
            SyslogRecord(
                message="authenticated user relay",
                timestamp=stamp("2026-12-04T10:00:00+00:00"),
                hostname="mx",
                program="msmtpd",
                pid=12,
            ),
            id="rfc3164-with-pri",
        ),
        pytest.param(
            # Local syslog sockets (a forwarder without the host field) give no host name.
            "Dec  4 10:00:00 sasl-xoauth2[99]: auth failed:",
            SyslogRecord(
                message="auth failed:",
                timestamp=stamp("2026-12-04T10:00:00+00:00"),
                program="sasl-xoauth2",
                pid=99,
            ),
            id="rfc3164-without-host",
        ),
        pytest.param(
            "2026-12-04T10:00:00.123456+01:00 mx postfix/smtp[77]: 4F3: to=<a@example.net>",
            SyslogRecord(
                message="4F3: to=<a@example.net>",
                timestamp=stamp("2026-12-04T09:00:00.123456+00:00"),
                hostname="mx",
                program="postfix/smtp",
                pid=77,
            ),
            id="rsyslog-rfc3339",
        ),
        pytest.param(
            '<22>1 2026-12-04T10:00:00Z mx msmtpd 42 - [origin ip="192.0.2.1" x="a\\]b"] '
            "\ufeffauthenticated user relay",
            SyslogRecord(
                message="authenticated user relay",
                timestamp=stamp("2026-12-04T10:00:00+00:00"),
                hostname="mx",
                program="msmtpd",
                pid=42,
            ),
            id="rfc5424-structured-data-and-bom",
        ),
        pytest.param(
            "<22>1 - - msmtp - - - host=smtp.example.com exitcode=EX_OK",
            SyslogRecord(message="host=smtp.example.com exitcode=EX_OK", program="msmtp"),
            id="rfc5424-nil-values",
        ),
        pytest.param(
            "Mon Oct 14 23:35:55 2024 mail.info msmtp: host=smtp.gmail.com exitcode=EX_OK",
            SyslogRecord(
                message="host=smtp.gmail.com exitcode=EX_OK",
                timestamp=stamp("2024-10-14T23:35:55+00:00"),
                program="msmtp",
            ),
            id="openwrt-logread",
        ),
        pytest.param(
            "Dec  4 10:00:00 mx sasl-xoauth2[5]: auth failed:#012  TokenStore::Read: file=x",
            SyslogRecord(
                message="auth failed:\\n  TokenStore::Read: file=x",
                timestamp=stamp("2026-12-04T10:00:00+00:00"),
                hostname="mx",
                program="sasl-xoauth2",
                pid=5,
            ),
            id="rsyslog-newline-escape",
        ),
        pytest.param(
            "Dec 4 10:00:00 mx msmtp: host=smtp.example.com exitcode=EX_OK",
            SyslogRecord(
                message="host=smtp.example.com exitcode=EX_OK",
                timestamp=stamp("2026-12-04T10:00:00+00:00"),
                hostname="mx",
                program="msmtp",
            ),
            id="rfc3164-unpadded-day",
        ),
        pytest.param(
            "Feb 30 10:00:00 mx msmtp: host=smtp.example.com exitcode=EX_OK",
            SyslogRecord(
                message="host=smtp.example.com exitcode=EX_OK", hostname="mx", program="msmtp"
            ),
            id="rfc3164-impossible-date",
        ),
        pytest.param(
            "Dec  4 10:00:61 mx msmtp: host=smtp.example.com exitcode=EX_OK",
            SyslogRecord(
                message="host=smtp.example.com exitcode=EX_OK", hostname="mx", program="msmtp"
            ),
            id="rfc3164-impossible-second",
        ),
    ],
)
def test_split_header(line: str, expected: SyslogRecord) -> None:
    assert split_header(line, TIMES) == expected


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(
            "Dec 05 00:39:28 host=127.0.0.1 tls=on auth=on exitcode=EX_OK", id="msmtp-logfile"
        ),
        pytest.param("2026-12-04 10:00:00 msmtpd[12] info: connection closed", id="msmtpd-logfile"),
        pytest.param("2026-12-04 10:00:00 1vX-000 <= a@example.net", id="exim-mainlog"),
        pytest.param("host=smtp.example.com exitcode=EX_OK", id="msmtp-without-time"),
        pytest.param('{"MESSAGE": "x"}', id="journal-json"),
        pytest.param("<22>garbage", id="pri-without-header"),
        pytest.param("<x>Dec  4 10:00:00 mx msmtp: x", id="malformed-pri"),
        pytest.param("Foo  4 10:00:00 mx msmtp: x", id="unknown-month"),
        pytest.param("<22>Foo  4 10:00:00 mx msmtp: x", id="pri-and-unknown-month"),
        pytest.param("Sun  4 10:00:00 mx msmtp: x", id="weekday-in-place-of-month"),
        pytest.param("", id="empty"),
    ],
)
def test_line_without_syslog_header(line: str) -> None:
    assert split_header(line, TIMES) is None


def test_same_minute_gives_same_times_twice() -> None:
    times = TimeReader(UTC, now=lambda: NOW)
    lines = ["Dec  4 10:00:00 mx msmtp: a", "Dec  4 10:00:59 mx msmtp: b"] * 2
    records = [split_header(line, times) for line in lines]
    assert [record.timestamp if record else None for record in records] == [
        stamp("2026-12-04T10:00:00+00:00"),
        stamp("2026-12-04T10:00:59+00:00"),
    ] * 2


def test_pid_is_not_part_of_program() -> None:
    record = split_header("Dec  4 10:00:00 mx postfix-incoming/smtpd[3]: connect", TIMES)
    assert record is not None
    assert (record.program, record.pid) == ("postfix-incoming/smtpd", 3)


def test_rfc3339_without_offset_uses_reader_zone() -> None:
    record = split_header("2026-12-04T10:00:00 mx msmtp: host=x exitcode=EX_OK", TIMES)
    assert record is not None
    assert record.timestamp == stamp("2026-12-04T10:00:00+00:00")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param("a#012b", "a\\nb", id="newline-becomes-backslash-n"),
        pytest.param("a#011b", "a\tb", id="tab"),
        pytest.param("a#015#012b", "a\\nb", id="carriage-return-dropped"),
        pytest.param("no escapes #1", "no escapes #1", id="unchanged"),
    ],
)
def test_unescape(message: str, expected: str) -> None:
    assert unescape(message) == expected
