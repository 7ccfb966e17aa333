"""Lab NTP responder: offsets seen by ntplib, reply fields, ignored packets, silent and garbage
modes, and stopping."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import ntplib
import pytest

from smtpdiag.lab.lab_clock import LabClock
from smtpdiag.lab.ntp_server import (
    GARBAGE_REPLY,
    NTP_EPOCH_OFFSET,
    PACKET_OCTETS,
    NtpServer,
    closed_udp_port,
    from_ntp_timestamp,
    to_ntp_timestamp,
)
from smtpdiag.lab.options import NtpMode

OFFSET_TOLERANCE_SECONDS = 0.05
SOCKET_TIMEOUT_SECONDS = 5.0


@pytest.fixture
def answering_server() -> Iterator[NtpServer]:
    with NtpServer(LabClock(0.0)) as server:
        yield server


def request_packet(version: int = 4, mode: int = 3, transmit: int = 0x0123456789ABCDEF) -> bytes:
    """Return a 48-octet NTP packet with only the first octet and the transmit timestamp set."""
    first = (version << 3) | mode
    return bytes([first]) + bytes(39) + struct.pack("!Q", transmit)


def exchange(server: NtpServer, *datagrams: bytes) -> bytes:
    """Send ``datagrams`` in order from one socket and return the first datagram received."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(SOCKET_TIMEOUT_SECONDS)
        for datagram in datagrams:
            client.sendto(datagram, ("127.0.0.1", server.port))
        return client.recv(1024)


@pytest.mark.parametrize("offset", [0.0, 90.0, -90.0, 3.0])
@pytest.mark.parametrize("version", [3, 4])
def test_ntplib_measures_offset(offset: float, version: int) -> None:
    with NtpServer(LabClock(offset)) as server:
        stats = ntplib.NTPClient().request(
            "127.0.0.1", version=version, port=server.port, timeout=SOCKET_TIMEOUT_SECONDS
        )
    assert abs(stats.offset - offset) < OFFSET_TOLERANCE_SECONDS


def test_ntplib_reply_fields(answering_server: NtpServer) -> None:
    stats = ntplib.NTPClient().request(
        "127.0.0.1", version=4, port=answering_server.port, timeout=SOCKET_TIMEOUT_SECONDS
    )
    assert stats.stratum == 2
    assert stats.mode == 4
    assert stats.leap == 0
    assert stats.version == 4


@pytest.mark.parametrize("version", [2, 3, 4])
def test_reply_repeats_request_version(answering_server: NtpServer, version: int) -> None:
    reply = exchange(answering_server, request_packet(version=version))
    assert (reply[0] >> 3) & 0b111 == version
    assert reply[0] & 0b111 == 4


def test_reply_origin_is_client_transmit(answering_server: NtpServer) -> None:
    request = request_packet(transmit=0x1122334455667788)
    reply = exchange(answering_server, request)
    assert len(reply) == PACKET_OCTETS
    assert reply[24:32] == request[40:48]


def test_reply_timestamps_follow_lab_clock() -> None:
    with NtpServer(LabClock(90.0)) as server:
        before = time.time()
        reply = exchange(server, request_packet())
        after = time.time()
    receive, transmit = struct.unpack("!QQ", reply[32:48])
    assert before + 90.0 <= from_ntp_timestamp(receive) <= after + 90.0
    assert from_ntp_timestamp(receive) <= from_ntp_timestamp(transmit) <= after + 90.0


def test_reply_reference_id_is_documentation_address(answering_server: NtpServer) -> None:
    reply = exchange(answering_server, request_packet())
    assert socket.inet_ntoa(reply[12:16]) == "192.0.2.1"


@pytest.mark.parametrize(
    "ignored",
    [
        pytest.param(request_packet(mode=1, transmit=1), id="symmetric-active-mode"),
        pytest.param(request_packet(mode=4, transmit=1), id="server-mode"),
        pytest.param(request_packet(version=1, transmit=1), id="version-1"),
        pytest.param(request_packet(version=5, transmit=1), id="version-5"),
        pytest.param(b"\x23" * 20, id="short-datagram"),
    ],
)
def test_invalid_request_gets_no_reply(answering_server: NtpServer, ignored: bytes) -> None:
    # The responder handles datagrams in order, so the first reply belongs to the valid request
    # only when the ignored datagram got none.
    valid = request_packet(transmit=2)
    reply = exchange(answering_server, ignored, valid)
    assert reply[24:32] == valid[40:48]


def test_silent_mode_sends_nothing() -> None:
    with NtpServer(LabClock(), NtpMode.SILENT) as server:
        with pytest.raises(ntplib.NTPException, match="No response"):
            ntplib.NTPClient().request("127.0.0.1", version=4, port=server.port, timeout=0.5)
        received = server.requests_received
    assert received == 1


def test_garbage_mode_reply_bytes() -> None:
    with NtpServer(LabClock(), NtpMode.GARBAGE) as server:
        reply = exchange(server, request_packet())
    assert reply == GARBAGE_REPLY


def test_garbage_mode_rejected_by_ntplib() -> None:
    client = ntplib.NTPClient()
    with (
        NtpServer(LabClock(), NtpMode.GARBAGE) as server,
        pytest.raises(ntplib.NTPException, match="Invalid NTP packet"),
    ):
        client.request("127.0.0.1", version=4, port=server.port, timeout=SOCKET_TIMEOUT_SECONDS)


def test_closed_mode_has_no_responder() -> None:
    with pytest.raises(ValueError, match="CLOSED"):
        NtpServer(LabClock(), NtpMode.CLOSED)


def refused(port: int) -> bool:
    """Return whether a UDP request to ``port`` gets ICMP port unreachable.

    A connected UDP socket reports the ICMP error as ``ConnectionRefusedError``.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(SOCKET_TIMEOUT_SECONDS)
        client.connect(("127.0.0.1", port))
        client.send(request_packet())
        try:
            client.recv(1024)
        except ConnectionRefusedError:
            return True
    return False


def test_closed_udp_port_refuses() -> None:
    assert refused(closed_udp_port())


def test_stopped_server_port_refuses() -> None:
    with NtpServer(LabClock()) as server:
        port = server.port
        address = server.address
    assert address == f"127.0.0.1:{port}"
    assert refused(port)


def test_port_is_zero_before_start() -> None:
    assert NtpServer(LabClock()).port == 0


def test_requests_counted(answering_server: NtpServer) -> None:
    exchange(answering_server, request_packet())
    exchange(answering_server, request_packet())
    assert answering_server.requests_received == 2


@pytest.mark.parametrize(
    ("unix_seconds", "expected"),
    [
        pytest.param(0.0, NTP_EPOCH_OFFSET << 32, id="unix-epoch"),
        pytest.param(1.5, (NTP_EPOCH_OFFSET + 1) << 32 | 1 << 31, id="half-second"),
        pytest.param(-float(NTP_EPOCH_OFFSET), 0, id="ntp-epoch"),
    ],
)
def test_to_ntp_timestamp(unix_seconds: float, expected: int) -> None:
    assert to_ntp_timestamp(unix_seconds) == expected


def test_ntp_timestamp_round_trip() -> None:
    moment = 1_796_000_000.25
    assert from_ntp_timestamp(to_ntp_timestamp(moment)) == moment
