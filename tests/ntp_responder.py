"""A minimal NTP server (RFC 5905 mode 4 replies) on a loopback UDP port, for tests."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

NTP_EPOCH_DELTA = 2_208_988_800
"""Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01)."""


def ntp_timestamp(unix_seconds: float) -> bytes:
    """Encode Unix time as a 64-bit NTP timestamp: 32-bit seconds and 32-bit fraction."""
    seconds = unix_seconds + NTP_EPOCH_DELTA
    whole = int(seconds)
    fraction = int((seconds - whole) * 2**32)
    # The seconds field wraps at the end of each 136-year era (2036-02-07 for era 0).
    return struct.pack("!II", whole % 2**32, fraction)


@dataclass
class Responder:
    """Behaviour of the responder; tests change it between queries."""

    port: int = 0
    offset_seconds: float = 0.0
    """Server clock minus the real clock: positive makes the local clock look behind."""
    mode: str = "reply"
    """``reply``, ``silent``, ``garbage``, ``short``, ``unsynchronised`` (leap indicator 3),
    ``stratum16`` or ``kiss`` (stratum 0 with kiss code RATE)."""
    requests: int = 0


def server_reply(
    request: bytes,
    offset_seconds: float,
    leap: int = 0,
    stratum: int = 2,
    reference_id: bytes = b"LOCL",
) -> bytes:
    """Build a version 4 server reply to ``request`` with the clock shifted by the offset."""
    now = time.time() + offset_seconds
    header = struct.pack(
        "!BBbb", (leap << 6) | (4 << 3) | 4, stratum, 6, -20
    )  # leap, version 4, mode 4 (server); stratum; poll; precision
    root = struct.pack("!II", 0, 0)  # root delay and root dispersion
    originate = request[40:48]  # the client's transmit timestamp, copied back
    return (
        header
        + root
        + reference_id
        + ntp_timestamp(now - 1)
        + originate
        + (ntp_timestamp(now) + ntp_timestamp(now))
    )


@contextmanager
def ntp_responder(offset_seconds: float = 0.0, mode: str = "reply") -> Iterator[Responder]:
    """Serve NTP on 127.0.0.1 on a free UDP port until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    state = Responder(port=sock.getsockname()[1], offset_seconds=offset_seconds, mode=mode)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                request, client = sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            state.requests += 1
            if state.mode == "silent":
                continue
            if state.mode == "garbage":
                reply = b"HTTP/1.1 400 Bad Request\r\n\r\n" + bytes(40)
            elif state.mode == "short":
                reply = b"\x24\x02"
            elif state.mode == "unsynchronised":
                reply = server_reply(request, state.offset_seconds, leap=3)
            elif state.mode == "stratum16":
                reply = server_reply(request, state.offset_seconds, stratum=16)
            elif state.mode == "kiss":
                reply = server_reply(request, state.offset_seconds, stratum=0, reference_id=b"RATE")
            else:
                reply = server_reply(request, state.offset_seconds)
            sock.sendto(reply, client)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join()
        sock.close()


def closed_udp_port() -> int:
    """Return a loopback UDP port on which nothing listens."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port
