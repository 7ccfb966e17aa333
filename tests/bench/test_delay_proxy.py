"""Functional tests of bench/delay_proxy.py against echo and greeting servers on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import os
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

PROXY_FILE = Path(__file__).resolve().parents[2] / "bench" / "delay_proxy.py"
GREETING = b"220 upstream ready\r\n"
DELAY = 0.010
"""One-way delay of the proxies under test, in seconds."""
LOWER_BOUND_SHARE = 0.75
"""Share of the configured delay that a measurement must reach; timers may fire a bit early."""


def load_proxy_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("delay_proxy", PROXY_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


delay_proxy = load_proxy_module()


class EchoHandler(socketserver.BaseRequestHandler):
    """Send a greeting, then echo every byte until the client half-closes, then close."""

    def handle(self) -> None:
        self.request.sendall(GREETING)
        while chunk := self.request.recv(65536):
            self.request.sendall(chunk)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def upstream() -> Iterator[tuple[str, int]]:
    server = EchoServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[0], server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


def receive_exactly(connection: socket.socket, size: int) -> bytes:
    received = bytearray()
    while len(received) < size:
        chunk = connection.recv(size - len(received))
        if not chunk:
            break
        received += chunk
    return bytes(received)


def connect(address: tuple[str, int]) -> socket.socket:
    connection = socket.create_connection(address, timeout=10)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def test_proxy_relays_bytes_both_ways(upstream: tuple[str, int]) -> None:
    payload = os.urandom(300_000)
    with (
        delay_proxy.DelayProxy(*upstream, DELAY) as proxy,
        connect(proxy.address) as connection,
    ):
        greeting = receive_exactly(connection, len(GREETING))
        connection.sendall(payload)
        echoed = receive_exactly(connection, len(payload))

    assert greeting == GREETING
    assert echoed == payload


def test_proxy_adds_delay_to_round_trip(upstream: tuple[str, int]) -> None:
    with (
        delay_proxy.DelayProxy(*upstream, DELAY, delay_connect=False) as proxy,
        connect(proxy.address) as connection,
    ):
        receive_exactly(connection, len(GREETING))
        started = time.perf_counter()
        connection.sendall(b"ping\r\n")
        echoed = receive_exactly(connection, 6)
        round_trip = time.perf_counter() - started

    assert echoed == b"ping\r\n"
    assert round_trip >= 2 * DELAY * LOWER_BOUND_SHARE


@pytest.mark.parametrize(
    ("delay_connect", "delays_to_greeting"),
    [
        pytest.param(False, 1, id="greeting-one-delay"),
        pytest.param(True, 1 + delay_proxy.HANDSHAKE_DELAYS, id="greeting-after-handshake"),
    ],
)
def test_proxy_delays_greeting(
    upstream: tuple[str, int], delay_connect: bool, delays_to_greeting: int
) -> None:
    with delay_proxy.DelayProxy(*upstream, DELAY, delay_connect=delay_connect) as proxy:
        started = time.perf_counter()
        with connect(proxy.address) as connection:
            greeting = receive_exactly(connection, len(GREETING))
            waited = time.perf_counter() - started

    assert greeting == GREETING
    assert waited >= delays_to_greeting * DELAY * LOWER_BOUND_SHARE


def test_proxy_passes_half_close(upstream: tuple[str, int]) -> None:
    with (
        delay_proxy.DelayProxy(*upstream, DELAY) as proxy,
        connect(proxy.address) as connection,
    ):
        receive_exactly(connection, len(GREETING))
        connection.sendall(b"last words")
        connection.shutdown(socket.SHUT_WR)
        echoed = receive_exactly(connection, 10)
        after_end = connection.recv(1)

    assert echoed == b"last words"
    assert after_end == b""


def test_proxy_closes_client_when_upstream_refuses() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        closed_port = placeholder.getsockname()[1]
    with (
        delay_proxy.DelayProxy("127.0.0.1", closed_port, DELAY) as proxy,
        connect(proxy.address) as connection,
    ):
        received = connection.recv(1)

    assert received == b""


def test_proxy_counts_connections(upstream: tuple[str, int]) -> None:
    with delay_proxy.DelayProxy(*upstream, 0.0) as proxy:
        for _ in range(3):
            with connect(proxy.address) as connection:
                receive_exactly(connection, len(GREETING))

    assert proxy.connections == 3


def test_proxy_rejects_negative_delay() -> None:
    with pytest.raises(ValueError, match="delay must be 0 or more"):
        delay_proxy.DelayProxy("127.0.0.1", 1, -0.001)
