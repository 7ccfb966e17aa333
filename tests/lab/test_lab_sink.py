"""Lab SMTP sink: accepts mail on loopback without AUTH or TLS and counts it."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator

import pytest

from smtpdiag.lab.sink import ACCEPTED, SinkServer

MESSAGE = "Subject: sink test\r\n\r\nbody\r\n"


@pytest.fixture
def sink() -> Iterator[SinkServer]:
    with SinkServer() as server:
        yield server


def send(sink: SinkServer, count: int = 1) -> tuple[int, bytes]:
    reply: tuple[int, bytes] = (0, b"")
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as client:
        client.ehlo()
        for _ in range(count):
            client.mail("sender@example.com")
            client.rcpt("rcpt@example.com")
            reply = client.data(MESSAGE)
    return reply


def test_sink_listens_on_loopback(sink: SinkServer) -> None:
    assert sink.address == f"127.0.0.1:{sink.port}"


def test_sink_port_before_start() -> None:
    assert SinkServer().port == 0


def test_sink_reply_to_data(sink: SinkServer) -> None:
    assert send(sink) == (250, ACCEPTED.removeprefix("250 ").encode())


def test_sink_counts_messages(sink: SinkServer) -> None:
    send(sink, count=3)
    assert sink.message_count == 3


def test_sink_starts_at_zero(sink: SinkServer) -> None:
    assert sink.message_count == 0


def test_sink_wait_for_arrived(sink: SinkServer) -> None:
    send(sink, count=2)
    assert sink.wait_for(2, timeout=1.0) is True


def test_sink_wait_for_times_out(sink: SinkServer) -> None:
    send(sink)
    assert sink.wait_for(2, timeout=0.05) is False


def test_sink_offers_no_auth(sink: SinkServer) -> None:
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as client:
        client.ehlo()
        assert client.has_extn("auth") is False


def test_sink_stop_is_idempotent() -> None:
    server = SinkServer()
    server.start()
    server.stop()
    server.stop()
    assert server.message_count == 0


def test_sink_stop_before_start() -> None:
    SinkServer().stop()
    assert SinkServer().message_count == 0
