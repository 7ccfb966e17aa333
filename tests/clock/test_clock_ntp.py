"""NTP queries against a responder on loopback: offsets, failures and invalid replies."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest
from ntp_responder import closed_udp_port, ntp_responder

from smtpdiag.clock.ntp import NtpFailure, format_seconds, query_ntp, server_label


def real_now() -> datetime:
    return datetime.now(UTC)


@pytest.mark.parametrize("server_offset", [90.0, -90.0, 3.0, 0.0])
def test_offset_sign_local_minus_server(server_offset: float) -> None:
    with ntp_responder(offset_seconds=server_offset) as responder:
        result = query_ntp("127.0.0.1", responder.port, 2.0, real_now)
    assert result.error is None
    assert result.offset_seconds is not None
    # A server ahead by 90 s means the local clock is 90 s behind: offset -90.
    assert abs(result.offset_seconds + server_offset) < 0.5
    assert result.stratum == 2
    assert result.delay_seconds is not None
    assert result.delay_seconds >= 0
    assert result.server == f"127.0.0.1:{responder.port}"


def test_offset_follows_injected_clock() -> None:
    def ahead() -> datetime:
        return datetime.now(UTC) + timedelta(seconds=90)

    with ntp_responder() as responder:
        result = query_ntp("127.0.0.1", responder.port, 2.0, ahead)
    assert result.offset_seconds is not None
    assert abs(result.offset_seconds - 90) < 0.5


def test_silent_server_times_out() -> None:
    with ntp_responder(mode="silent") as responder:
        result = query_ntp("127.0.0.1", responder.port, 0.3, real_now)
    assert result.offset_seconds is None
    assert responder.requests == 1
    assert result.error is not None
    assert result.error.startswith("no reply within 0.3 s")
    assert result.failure is NtpFailure.NO_REPLY


def test_closed_port_is_unreachable() -> None:
    result = query_ntp("127.0.0.1", closed_udp_port(), 1.0, real_now)
    assert result.offset_seconds is None
    assert result.error is not None
    # Linux reports the ICMP port unreachable; other systems may only time out.
    assert "unreachable" in result.error or "no reply" in result.error


@pytest.mark.parametrize(
    ("mode", "reason", "failure"),
    [
        ("garbage", "invalid reply: mode 0 is not a server reply", NtpFailure.INVALID_REPLY),
        (
            "short",
            "invalid reply: not an NTP packet, because the datagram is shorter than the "
            "48-byte NTP header",
            NtpFailure.INVALID_REPLY,
        ),
        (
            "unsynchronised",
            "leap indicator 3: the server's clock is not synchronised",
            NtpFailure.UNSYNCHRONISED,
        ),
        (
            "stratum16",
            "stratum 16: the server's clock is not synchronised",
            NtpFailure.UNSYNCHRONISED,
        ),
        (
            "kiss",
            "kiss-o'-death reply (stratum 0) with code RATE",
            NtpFailure.KISS_OF_DEATH,
        ),
    ],
)
def test_unusable_replies(mode: str, reason: str, failure: NtpFailure) -> None:
    with ntp_responder(mode=mode) as responder:
        result = query_ntp("127.0.0.1", responder.port, 1.0, real_now)
    assert result.offset_seconds is None
    assert result.error == reason
    assert result.failure is failure
    assert not result.ok


def test_unresolvable_host(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # No resolver is asked: the lookup fails the way an unknown name does.
    monkeypatch.setattr(socket, "getaddrinfo", fail)
    result = query_ntp("ntp.example.test", 123, 0.5, real_now)
    assert result.offset_seconds is None
    assert result.error == "cannot resolve ntp.example.test: Name or service not known"
    assert result.failure is NtpFailure.UNRESOLVED


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.3, "0.3"), (1.0, "1"), (0.00001, "0"), (-0.0001, "0"), (12.5, "12.5")]
)
def test_format_seconds_plain(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


@pytest.mark.parametrize(
    ("host", "port", "label"),
    [("127.0.0.1", 123, "127.0.0.1"), ("127.0.0.1", 4123, "127.0.0.1:4123"), ("::1", 5, "[::1]:5")],
)
def test_server_label(host: str, port: int, label: str) -> None:
    assert server_label(host, port) == label


def test_server_time_after_2036_rollover() -> None:
    ten_years = 315_576_000.0  # the server's time lies past 2036-02-07, in NTP era 1
    with ntp_responder(offset_seconds=ten_years) as responder:
        result = query_ntp("127.0.0.1", responder.port, 2.0, real_now)
    assert result.error is None
    assert result.offset_seconds is not None
    assert abs(result.offset_seconds + ten_years) < 0.5
